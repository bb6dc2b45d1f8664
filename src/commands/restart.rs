//! `foobar restart [web|app|db|dns|all]`: for maintenance windows. Each
//! service restarts in the least disruptive way there is, then the same
//! end-to-end checks as provision run; a failing app check rolls the
//! release back. A lock on the server keeps runs apart.

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::apply::{Applier, HostFailure};
use crate::checks::{CheckResult, Checks};
use crate::cli::{exit, Global};
use crate::commands::provision::ssh_target;
use crate::dns;
use crate::error::InputError;
use crate::inventory::{self, AppKind, Loaded, Role, Server};
use crate::lock::Claim;
use crate::maintenance::{self, Moment};
use crate::playbook::{self, Step, StepEntry};
use crate::progress::{self, Event, Reporter, StepStatus};
use crate::render::{self, Renderer};
use crate::secrets::Secrets;
use crate::shell::quote;
use crate::transport::{Ssh, Transport, Unreachable};

/// While this file exists, nginx answers dynamic requests with the
/// maintenance page (503, Retry-After); see templates/nginx/site.conf.j2.
pub const MAINTENANCE_FLAG: &str = "/var/lib/foobar/maintenance/on";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Web,
    App,
    Db,
    Dns,
    All,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// What to restart.
    #[arg(value_enum, default_value_t = Target::All)]
    pub target: Target,
    /// Restart outside the maintenance windows too (said in the output).
    #[arg(long)]
    pub force: bool,
    /// The time to judge windows by, `YYYY-MM-DDTHH:MM` UTC (for tests and
    /// dry thinking); default now.
    #[arg(long, value_name = "TIME", env = "FOOBAR_NOW", value_parser = Moment::parse)]
    pub now: Option<Moment>,
    /// Take the server lock even if another run holds it (a stale lock).
    #[arg(long)]
    pub break_lock: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ServiceResult {
    host: String,
    role: &'static str,
    service: String,
    method: &'static str,
    ok: bool,
    detail: String,
    checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back_to: Option<String>,
    elapsed_ms: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    forced: bool,
    services: Vec<ServiceResult>,
    errors: Vec<String>,
    elapsed_ms: u64,
}

pub async fn run(g: &Global, args: RestartArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let inv = inventory::load(&g.inventory)?;
    let pb = playbook::load(&g.project.join("playbooks/provision.yml"))?;
    let renderer = Renderer::new(&g.project);
    let now = args.now.unwrap_or_else(Moment::now);
    let out = progress::reporter(g.verbose);
    let m = &inv.inventory.maintenance;
    let forced = !maintenance::inside(m, now);
    if forced && !args.force {
        let next = maintenance::next_opening(m, now)
            .map(|t| format!("the next window opens {t}"))
            .unwrap_or_else(|| "the inventory declares no maintenance window".into());
        eprintln!("error: {now} is outside every maintenance window; {next}. Use --force to restart anyway.");
        return Ok(exit::OUTSIDE_WINDOW);
    }
    if forced {
        out.report(Event::Message {
            text: format!("restart: FORCED outside the maintenance windows ({now})"),
        });
    }
    let secrets = Secrets::masked();
    let roles: Vec<Role> = match args.target {
        // Least disruptive first: reloads, then the database, then DNS.
        Target::All => vec![Role::Web, Role::App, Role::Db, Role::Dns],
        Target::Web => vec![Role::Web],
        Target::App => vec![Role::App],
        Target::Db => vec![Role::Db],
        Target::Dns => vec![Role::Dns],
    };
    let mut plans = Vec::new();
    for server in &inv.inventory.servers.0 {
        let ctx = render::Context::new(&inv.inventory, server, &secrets);
        let mut services = Vec::new();
        for role in roles.iter().filter(|r| server.has(**r)) {
            if let Some(s) = service_of(&renderer, &pb, *role, &ctx)? {
                services.push((*role, s));
            }
        }
        if services.is_empty() {
            continue;
        }
        let checks = if server.has(Role::Web) {
            Some(Checks::resolve(&renderer, &pb, &inv, server, &secrets)?)
        } else {
            None
        };
        plans.push((server, services, checks));
    }
    if plans.is_empty() {
        return Err(InputError::new(&inv.path, "no server has the role to restart").into());
    }
    let claim = Claim::new(&format!("restart {:?}", args.target).to_lowercase());
    let results = futures_util::future::join_all(plans.iter().map(|(server, services, checks)| {
        restart_host(
            &inv,
            server,
            services,
            checks.as_ref(),
            &claim,
            args.break_lock,
            &secrets,
            out.as_ref(),
        )
    }))
    .await;
    let mut report = Report {
        forced,
        services: Vec::new(),
        errors: Vec::new(),
        elapsed_ms: 0,
    };
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(mut s) => report.services.append(&mut s),
            Err(e) => {
                out.report(Event::Message {
                    text: format!("error: {e}"),
                });
                report.errors.push(e.to_string());
                failures.push(e);
            }
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for s in &report.services {
            println!(
                "{}: {} ({}) by {}: {}{}",
                s.host,
                s.role,
                s.service,
                s.method,
                if s.ok { "ok" } else { "FAILED" },
                if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(" - {}", s.detail)
                }
            );
        }
        for e in &report.errors {
            println!("error: {e}");
        }
        if forced {
            println!("forced outside the maintenance windows");
        }
        println!("done in {:.1} s", report.elapsed_ms as f64 / 1000.0);
    }
    Ok(if let Some(code) = HostFailure::exit_code(&failures) {
        code
    } else if report.services.iter().any(|s| !s.ok) {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// The service a role runs on this server, from the `service` steps of
/// the role's blocks that apply to it.
fn service_of(
    renderer: &Renderer,
    pb: &playbook::Loaded,
    role: Role,
    ctx: &render::Context,
) -> Result<Option<String>, InputError> {
    for (block, steps) in pb.playbook.roles.iter().enumerate() {
        if steps.role != role || !render::block_applies(renderer, pb, block, ctx)? {
            continue;
        }
        let found = steps.steps.iter().find_map(|StepEntry(s)| match s {
            Step::Service { name } => Some(name.clone()),
            _ => None,
        });
        if let Some(name) = found {
            return Ok(Some(renderer.field(
                &pb.path,
                "service name",
                &name,
                ctx,
            )?));
        }
    }
    Ok(None)
}

#[allow(clippy::too_many_arguments)]
async fn restart_host(
    inv: &Loaded,
    server: &Server,
    services: &[(Role, String)],
    checks: Option<&Checks>,
    claim: &Claim,
    break_lock: bool,
    secrets: &Secrets,
    out: &dyn Reporter,
) -> Result<Vec<ServiceResult>, HostFailure> {
    let ssh = Ssh::connect(&ssh_target(inv, server)).await?;
    let applier = Applier {
        transport: &ssh,
        out,
        secrets,
        today: crate::plan::today(),
    };
    if let Err(e) = applier.lock_then(claim, break_lock, "").await {
        ssh.close().await;
        return Err(e);
    }
    let mut results = Vec::new();
    let mut outcome = Ok(());
    for (role, service) in services {
        match restart_one(&applier, inv, server, *role, service, checks).await {
            Ok(r) => {
                let ok = r.ok;
                results.push(r);
                if !ok {
                    break;
                }
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let _ = applier.run(&claim.release_script(), None).await;
    ssh.close().await;
    outcome?;
    Ok(results)
}

async fn restart_one<T: Transport>(
    applier: &Applier<'_, T>,
    inv: &Loaded,
    server: &Server,
    role: Role,
    service: &str,
    checks: Option<&Checks>,
) -> Result<ServiceResult, Unreachable> {
    let start = Instant::now();
    let host = server.name.to_string();
    let svc = quote(service);
    let (method, script) = match role {
        // Old workers finish their requests; a bad config never loads.
        Role::Web => ("nginx -t, then reload", format!("nginx -t >&2 && systemctl reload {svc}")),
        // New workers start, old ones finish their requests in flight.
        Role::App => (
            match inv.inventory.app.kind {
                AppKind::Gunicorn => "graceful reload (HUP)",
                AppKind::PhpFpm => "graceful reload (USR2)",
                AppKind::Puma => "phased restart (USR1)",
            },
            format!("systemctl reload {svc}"),
        ),
        // A real restart; meanwhile nginx serves the maintenance page for
        // dynamic requests, and static files as ever.
        Role::Db => (
            "restart behind the maintenance page",
            format!(
                "mkdir -p \"$(dirname {flag})\" && touch {flag}\n\
                 sleep 1 # requests already at the app finish before the database goes\n\
                 systemctl restart {svc} >&2 || {{ journalctl -u {svc} -n 20 --no-pager >&2; exit 1; }}\n\
                 i=0; until mysqladmin ping --silent; do i=$((i + 1)); [ $i -lt 60 ] || {{ echo 'the database did not answer within 30 s; the maintenance page stays' >&2; exit 1; }}; sleep 0.5; done\n\
                 rm -f {flag}\n",
                flag = MAINTENANCE_FLAG
            ),
        ),
        Role::Dns => ("named-checkconf -z, then reload", format!("named-checkconf -z >&2 && systemctl reload {svc}")),
    };
    applier.out.report(Event::StepStarted {
        host: host.clone(),
        step: format!("restart {service}"),
    });
    let ran = applier.run(&format!("set -e\n{script}"), None).await?;
    let mut result = ServiceResult {
        host: host.clone(),
        role: role.name(),
        service: service.to_string(),
        method,
        ok: ran.success(),
        detail: if ran.success() {
            String::new()
        } else {
            applier.secrets.redact(&ran.stderr_text())
        },
        checks: Vec::new(),
        rolled_back_to: None,
        elapsed_ms: 0,
    };
    if result.ok {
        let verdict = verify(applier, inv, server, role, checks).await?;
        result.checks = verdict.0;
        if let Some(failure) = verdict.1 {
            result.ok = false;
            result.detail = failure;
            if role == Role::App {
                result.rolled_back_to = roll_back_release(applier, inv, service).await?;
                if let Some(rel) = &result.rolled_back_to {
                    let again = verify(applier, inv, server, role, checks).await?;
                    result.detail = format!(
                        "{}; rolled back to release {rel}: checks {}",
                        result.detail,
                        if again.1.is_none() {
                            "pass again"
                        } else {
                            "still fail"
                        }
                    );
                    result.checks.extend(again.0);
                }
            }
        }
    }
    result.elapsed_ms = start.elapsed().as_millis() as u64;
    applier.out.report(Event::StepFinished {
        host,
        step: format!("restart {service} ({method})"),
        status: if result.ok {
            StepStatus::Changed
        } else {
            StepStatus::Failed
        },
        detail: (!result.detail.is_empty()).then(|| result.detail.clone()),
    });
    Ok(result)
}

/// The checks after a restart: HTTP on web servers, and for DNS a query
/// for www at this server. Returns the results and the first failure.
async fn verify<T: Transport>(
    applier: &Applier<'_, T>,
    inv: &Loaded,
    server: &Server,
    role: Role,
    checks: Option<&Checks>,
) -> Result<(Vec<CheckResult>, Option<String>), Unreachable> {
    if role == Role::Dns {
        let fqdn = inv.inventory.domain.fqdn();
        let expected = inv.inventory.web_address();
        let reply = dns::query(
            (server.address, 53).into(),
            &fqdn,
            hickory_proto::rr::RecordType::A,
            false,
            Duration::from_secs(2),
        )
        .await;
        return Ok(
            match dns::judge(dns::ServerKind::Authoritative, expected, &reply) {
                dns::Verdict::Match => (Vec::new(), None),
                dns::Verdict::Mismatch(why) | dns::Verdict::Unreachable(why) => (
                    Vec::new(),
                    Some(format!("DNS check of {fqdn} failed: {why}")),
                ),
            },
        );
    }
    let Some(checks) = checks else {
        return Ok((Vec::new(), None));
    };
    let results = checks.run(applier).await?;
    let failure = results.iter().find(|c| !c.passed).map(|c| {
        format!(
            "check failed at the {} hop: {}: {}",
            c.hop, c.check, c.detail
        )
    });
    Ok((results, failure))
}

/// Points `current` at the newest other release and restarts the app
/// (a reload would keep the failing workers' imports). Returns the release.
async fn roll_back_release<T: Transport>(
    applier: &Applier<'_, T>,
    inv: &Loaded,
    service: &str,
) -> Result<Option<String>, Unreachable> {
    let root = quote(inv.inventory.app.root.as_str());
    let svc = quote(service);
    let script = format!(
        "set -e\nroot={root}\ncur=$(readlink \"$root/current\")\ncd \"$root/releases\"\n\
         prev=$(ls -1t | grep -vx \"${{cur#releases/}}\" | head -n1)\n\
         [ -n \"$prev\" ] || {{ echo 'no earlier release to roll back to' >&2; exit 1; }}\n\
         ln -sfn \"releases/$prev\" \"$root/.current.tmp\"\nmv -T \"$root/.current.tmp\" \"$root/current\"\n\
         systemctl restart {svc} >&2\necho \"$prev\"\n"
    );
    let out = applier.run(&script, None).await?;
    Ok(out.success().then(|| out.stdout_text().trim().to_string()))
}
