//! `foobar status`: one screen for the whole inventory, read live: the
//! DNS answer at every nameserver, every check, each service (active,
//! since when, memory; the app's processes among them), the app's
//! scheduled jobs (their last run and its result), the live release, disk
//! free, pending handlers, the lock, the maintenance page. Exit 0 only
//! when all is healthy.

use clap::Args;
use serde::Serialize;

use super::Input;
use crate::checks::dns::{self, ServerKind, Verdict};
use crate::checks::Checks;
use crate::cli::{exit, outln, Global};
use crate::engine::app::{self, BackupDue, ServerStatus, StatusJob};
use crate::engine::{self, HostError};
use crate::inventory::Role;
use crate::progress;
use crate::roles::process_unit;

#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Debug, Serialize)]
struct DnsAnswer {
    nameserver: String,
    name: String,
    #[serde(flatten)]
    verdict: Verdict,
}

#[derive(Debug, Serialize)]
struct Report {
    healthy: bool,
    dns: Vec<DnsAnswer>,
    servers: Vec<ServerStatus>,
    errors: Vec<HostError>,
}

pub async fn run(g: &Global, _: StatusArgs) -> anyhow::Result<u8> {
    let input = Input::load(g)?;
    let Input {
        inv,
        pb,
        secrets,
        renderer,
    } = &input;
    let mut jobs = Vec::new();
    for server in super::servers(g, inv, None)? {
        jobs.push(StatusJob {
            target: engine::ssh_target(inv, server),
            units: inv
                .inventory
                .units(server.roles.iter().copied())
                .into_iter()
                .map(str::to_string)
                .chain(
                    inv.inventory
                        .processes_on(server)
                        .into_iter()
                        .map(|(name, _)| process_unit(name.as_str())),
                )
                .collect(),
            app_root: server
                .has(Role::App)
                .then(|| inv.inventory.app.root.to_string()),
            checks: Checks::resolve(renderer, pb, inv, server, secrets)?,
            certificate: inv
                .inventory
                .nginx
                .tls
                .as_ref()
                .filter(|_| server.has(Role::Web))
                .map(|t| t.files(&inv.inventory.domain.fqdn()).0),
            cluster_member: server.has(Role::DbCluster),
            cluster_writer: server.has(Role::Lb) && inv.inventory.db_cluster(),
            backup: inv
                .inventory
                .backup
                .as_ref()
                .filter(|_| server.has(Role::Backup))
                .map(|b| BackupDue {
                    kinds: std::iter::once("db")
                        .chain(inv.inventory.backup_files_source().map(|_| "files"))
                        .collect(),
                    within_secs: 2 * 60 * i64::from(b.every_minutes.0),
                }),
            jobs: inv
                .inventory
                .jobs_on(server)
                .into_iter()
                .map(|j| j.name.to_string())
                .collect(),
        });
    }
    let out = progress::reporter(g.verbosity());
    let engine = super::engine(g, out.as_ref(), secrets);
    let fqdn = inv.inventory.domain.fqdn();
    let expected = inv.inventory.web_address();
    let dns_answers = futures_util::future::join_all(inv.inventory.nameservers().into_iter().map(
        |(name, ip)| {
            let fqdn = fqdn.clone();
            async move {
                let (verdict, _) = dns::ask(
                    (ip, 53).into(),
                    ServerKind::Authoritative,
                    &fqdn,
                    &dns::Expected::address(expected),
                    dns::NAMESERVER_TIMEOUT,
                )
                .await;
                DnsAnswer {
                    nameserver: name,
                    name: fqdn,
                    verdict,
                }
            }
        },
    ));
    let (results, dns) = tokio::join!(app::status(&engine, &jobs), dns_answers);
    let (servers, errors, failures) = super::split(out.as_ref(), &results);
    let mut report = Report {
        healthy: false,
        dns,
        servers,
        errors,
    };
    report.healthy = report.errors.is_empty()
        && report.servers.iter().all(|s| s.healthy)
        && report.dns.iter().all(|d| d.verdict == Verdict::Match);
    if g.json {
        crate::cli::print_json("status", &report)?;
    } else {
        print_report(&report)?;
    }
    // Unhealthy on a server that answered, or at a nameserver, is a
    // failure; a server that could not be asked is one of `failures`.
    let failed = report.servers.iter().any(|s| !s.healthy)
        || report.dns.iter().any(|d| d.verdict != Verdict::Match);
    Ok(exit::of(failed, &failures, false))
}

fn print_report(r: &Report) -> anyhow::Result<()> {
    let mark = |ok: bool| if ok { "ok  " } else { "FAIL" };
    for d in &r.dns {
        let (ok, why) = match &d.verdict {
            Verdict::Match => (true, String::new()),
            Verdict::Mismatch(w) | Verdict::Unreachable(w) => (false, format!(": {w}")),
        };
        outln!("{} dns {} answers {}{why}", mark(ok), d.nameserver, d.name)?;
    }
    for s in &r.servers {
        outln!(
            "{} {}{}  disk {} free ({}% used){}{}",
            mark(s.healthy),
            s.host,
            s.release
                .as_ref()
                .map(|r| format!("  release {r}"))
                .unwrap_or_default(),
            human_bytes(s.disk_free_bytes),
            s.disk_used_percent,
            if s.maintenance_page {
                "  MAINTENANCE PAGE ON"
            } else {
                ""
            },
            s.lock
                .as_ref()
                .map(|l| format!("  locked by {l}"))
                .unwrap_or_default(),
        )?;
        for svc in &s.services {
            outln!(
                "     {} {:<12} {:<8} since {}{}",
                mark(svc.active == "active"),
                svc.unit,
                svc.active,
                if svc.since.is_empty() {
                    "-"
                } else {
                    &svc.since
                },
                svc.memory_bytes
                    .map(|m| format!(", {} memory", human_bytes(m)))
                    .unwrap_or_default()
            )?;
        }
        if let Some(c) = &s.certificate {
            match c.days_left {
                Some(days) => outln!(
                    "     {} certificate: {days} days left ({}){}",
                    mark(days >= 0),
                    c.issuer,
                    if (0..14).contains(&days) {
                        "  WARNING: under 14 days"
                    } else {
                        ""
                    }
                )?,
                None => outln!("     {} certificate: none", mark(false))?,
            }
        }
        if let Some(c) = &s.cluster {
            outln!(
                "     {} cluster: {}, {} component of {}{}",
                mark(c.healthy()),
                if c.state.is_empty() { "down" } else { &c.state },
                if c.component.is_empty() {
                    "no"
                } else {
                    &c.component
                },
                c.size,
                if c.ready { "" } else { ", not ready" }
            )?;
        }
        if let Some(w) = &s.cluster_writer {
            outln!("     ok   writes go to {w}")?;
        }
        if let Some(b) = &s.backups {
            for t in &b.last {
                let age = b.age_secs.get(&t.kind).copied().unwrap_or_default();
                outln!(
                    "     {} last {} backup {:#} ago: snapshot {} ({} bytes from {})",
                    mark(b.fresh),
                    t.kind,
                    jiff::SignedDuration::from_secs(age),
                    t.snapshot,
                    t.bytes,
                    t.server
                )?;
            }
            for f in &b.failed {
                outln!(
                    "     {} last {} backup FAILED: {}",
                    mark(false),
                    f.kind,
                    f.why
                )?;
            }
            if b.last.is_empty() && b.failed.is_empty() {
                outln!("     {} no backup yet", mark(false))?;
            }
        }
        for j in &s.jobs {
            let last = match (&j.last_run, &j.result) {
                (Some(when), Some(result)) => format!(
                    "last run {when}: {result}{}",
                    j.exit_status
                        .filter(|c| *c != 0)
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default()
                ),
                _ => "not run yet".to_string(),
            };
            outln!(
                "     {} job {}: {last}{}{}",
                mark(j.ok()),
                j.name,
                if j.running { ", running now" } else { "" },
                match (&j.next_run, j.scheduled) {
                    (_, false) => ", NOT SCHEDULED".to_string(),
                    (Some(next), true) => format!(", next {next}"),
                    (None, true) => String::new(),
                }
            )?;
        }
        for c in &s.checks {
            outln!(
                "     {} check {} ({}): {}",
                mark(c.passed),
                c.check,
                c.hop,
                c.detail
            )?;
        }
        if !s.pending_handlers.is_empty() {
            outln!(
                "     FAIL pending handlers: {}",
                s.pending_handlers.join(", ")
            )?;
        }
    }
    for e in &r.errors {
        outln!("FAIL {}", e.message)?;
    }
    outln!("{}", if r.healthy { "healthy" } else { "NOT healthy" })?;
    Ok(())
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}
