//! `foobar dns-check`: asks every authoritative nameserver of the zone (and
//! any resolver named on the command line) for the apex and www, and for
//! every name and type of the zone's other records, and compares the
//! answers with the inventory. Only addresses named in the inventory or on
//! the command line are ever queried.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use clap::Args;
use hickory_proto::rr::RecordType;
use serde::Serialize;

use crate::checks::dns::{self, Expected, Reply, ServerKind, Verdict};
use crate::cli::{exit, outln, Global};
use crate::progress::{self, Event};

#[derive(Debug, Args)]
pub struct DnsCheckArgs {
    /// Also check this recursive resolver (repeatable); its NS answer for
    /// the zone is compared with the inventory's nameservers.
    #[arg(long, value_name = "IP[:PORT]", value_parser = dns::parse_server)]
    pub resolver: Vec<SocketAddr>,
    /// Poll until every answer agrees or SECS run out (propagation).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub wait: u64,
    /// Timeout of one query.
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    server: String,
    address: SocketAddr,
    kind: ServerKind,
    name: String,
    #[serde(rename = "type")]
    record_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<Reply>,
    #[serde(flatten)]
    verdict: Verdict,
}

#[derive(Debug, Serialize)]
struct Report {
    zone: String,
    expected: IpAddr,
    /// The AAAA beside an A record, when the site has IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_v6: Option<Ipv6Addr>,
    rows: Vec<Row>,
    serials: Vec<(String, Option<u32>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_problem: Option<String>,
    /// Nameserver problems found through resolvers (NS set differs).
    notes: Vec<String>,
    result: &'static str,
    attempts: u32,
    elapsed_ms: u64,
}

struct Target {
    label: String,
    address: SocketAddr,
    kind: ServerKind,
}

pub async fn run(g: &Global, args: DnsCheckArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let inv = super::inventory(g)?;
    let zone = inv.inventory.domain.zone.to_string();
    let expected = inv.inventory.web_address();
    // The apex and the web host point at the web address; then each name
    // and type of the zone's other records.
    let expected_v6 = inv.inventory.web_address_v6();
    let mut checks = Vec::new();
    for address in std::iter::once(expected).chain(expected_v6.map(IpAddr::V6)) {
        checks.push((zone.clone(), Expected::address(address)));
        checks.push((inv.inventory.domain.fqdn(), Expected::address(address)));
    }
    checks.extend(Expected::of_records(&inv.inventory.zone_records(), &zone));
    let timeout = Duration::from_millis(args.timeout_ms);
    let selected = super::limit::selection(&g.limit, &inv)?;
    let mut targets: Vec<Target> = inv
        .inventory
        .nameservers()
        .into_iter()
        .zip(inv.inventory.nameserver_hosts())
        .filter(|(_, server)| selected(server))
        .map(|((name, addr), _)| Target {
            label: name,
            address: SocketAddr::from((addr, 53)),
            kind: ServerKind::Authoritative,
        })
        .collect();
    targets.extend(args.resolver.iter().map(|r| Target {
        label: format!("resolver {r}"),
        address: *r,
        kind: ServerKind::Resolver,
    }));
    let out = progress::reporter(g.verbosity());
    let deadline = started + Duration::from_secs(args.wait);
    let mut attempts = 0;
    let report = loop {
        attempts += 1;
        let report = check_once(
            &targets,
            &zone,
            &checks,
            (expected, expected_v6),
            timeout,
            attempts,
            started,
        )
        .await;
        if report.result == "match" || Instant::now() + Duration::from_secs(1) > deadline {
            break report;
        }
        let bad = report
            .rows
            .iter()
            .filter(|r| r.verdict != Verdict::Match)
            .count();
        out.report(Event::Message {
            text: format!(
                "dns-check: {bad} of {} answers disagree; asking again ({} s left)",
                report.rows.len(),
                deadline.saturating_duration_since(Instant::now()).as_secs()
            ),
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    if g.json {
        crate::cli::print_json("dns-check", &report)?;
    } else {
        print_table(&report)?;
    }
    Ok(match report.result {
        "match" => exit::OK,
        "unreachable" => exit::UNREACHABLE,
        _ => exit::FAILED,
    })
}

async fn check_once(
    targets: &[Target],
    zone: &str,
    checks: &[(String, Expected)],
    (expected, expected_v6): (IpAddr, Option<Ipv6Addr>),
    timeout: Duration,
    attempts: u32,
    started: Instant,
) -> Report {
    let per_target = targets.iter().map(|t| async move {
        let recursion = t.kind == ServerKind::Resolver;
        let answers = futures_util::future::join_all(
            checks
                .iter()
                .map(|(n, e)| dns::ask(t.address, t.kind, n, e, timeout)),
        );
        let soa = dns::query(t.address, zone, RecordType::SOA, recursion, timeout);
        // Resolvers are also asked for the zone's NS set.
        let ns = async {
            if recursion {
                Some(dns::query(t.address, zone, RecordType::NS, recursion, timeout).await)
            } else {
                None
            }
        };
        let (answers, soa, ns) = tokio::join!(answers, soa, ns);
        (t, answers, soa, ns)
    });
    let results = futures_util::future::join_all(per_target).await;
    let mut rows = Vec::new();
    let mut serials = Vec::new();
    let mut notes = Vec::new();
    let inventory_ns: BTreeSet<String> = targets
        .iter()
        .filter(|t| t.kind == ServerKind::Authoritative)
        .map(|t| t.label.clone())
        .collect();
    for (t, answers, soa, ns) in results {
        for ((name, e), (verdict, reply)) in checks.iter().zip(answers) {
            rows.push(Row {
                server: t.label.clone(),
                address: t.address,
                kind: t.kind,
                name: name.clone(),
                record_type: e.record_type.to_string(),
                verdict,
                reply,
            });
        }
        match t.kind {
            ServerKind::Authoritative => {
                serials.push((t.label.clone(), soa.ok().and_then(|s| s.soa_serial)))
            }
            ServerKind::Resolver => {
                if let Some(Ok(ns)) = ns {
                    let found: BTreeSet<String> = ns.ns_names.into_iter().collect();
                    if !found.is_empty() && found != inventory_ns {
                        notes.push(format!(
                            "{} lists nameservers {} but the inventory has {}",
                            t.label,
                            found.into_iter().collect::<Vec<_>>().join(", "),
                            inventory_ns.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                }
            }
        }
    }
    let serial_problem = dns::serials_disagree(&serials);
    // As exit::of ranks them: a wrong answer outranks a silent server.
    let result = if rows
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Mismatch(_)))
        || serial_problem.is_some()
        || !notes.is_empty()
    {
        "mismatch"
    } else if rows.iter().any(|r| r.verdict != Verdict::Match) {
        "unreachable"
    } else {
        "match"
    };
    Report {
        zone: zone.to_string(),
        expected,
        expected_v6,
        rows,
        serials,
        serial_problem,
        notes,
        result,
        attempts,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

fn print_table(r: &Report) -> anyhow::Result<()> {
    outln!(
        "{:<34} {:<20} {:<5} {:<16} {:>6} {:<3} {:<11} RESULT",
        "SERVER",
        "NAME",
        "TYPE",
        "ANSWER",
        "TTL",
        "AA",
        "SERIAL"
    )?;
    for row in &r.rows {
        let serial = r
            .serials
            .iter()
            .find(|(n, _)| *n == row.server)
            .and_then(|(_, s)| *s)
            .map_or("-".to_string(), |s| s.to_string());
        let (answer, ttl, aa) = match &row.reply {
            Some(rep) if !rep.data.is_empty() => (
                shortened(&rep.data.iter().cloned().collect::<Vec<_>>().join(", ")),
                rep.ttl.map_or("-".into(), |t| t.to_string()),
                if rep.authoritative { "yes" } else { "no" },
            ),
            Some(rep) => (
                rep.rcode.to_string(),
                "-".into(),
                if rep.authoritative { "yes" } else { "no" },
            ),
            None => ("(no answer)".into(), "-".into(), "-"),
        };
        let verdict = match &row.verdict {
            Verdict::Match => "ok".to_string(),
            Verdict::Mismatch(why) => format!("MISMATCH: {why}"),
            Verdict::Unreachable(why) => format!("UNREACHABLE: {why}"),
        };
        outln!(
            "{:<34} {:<20} {:<5} {:<16} {:>6} {:<3} {:<11} {verdict}",
            format!("{} ({})", row.server, row.address),
            row.name,
            row.record_type,
            answer,
            ttl,
            aa,
            serial
        )?;
    }
    if let Some(p) = &r.serial_problem {
        outln!("FLAGGED: {p}")?;
    }
    for n in &r.notes {
        outln!("FLAGGED: {n}")?;
    }
    outln!(
        "{}: every answer {} the inventory, www at {}{} ({} attempt(s), {} ms)",
        r.zone,
        if r.result == "match" {
            "matches"
        } else {
            "should match"
        },
        r.expected,
        r.expected_v6
            .map(|a| format!(" and {a}"))
            .unwrap_or_default(),
        r.attempts,
        r.elapsed_ms
    )?;
    Ok(())
}

/// An answer cut to fit the table (a DKIM key runs to hundreds of
/// characters; `--json` has it whole).
fn shortened(answer: &str) -> String {
    const WIDTH: usize = 48;
    if answer.chars().count() <= WIDTH {
        answer.to_string()
    } else {
        format!("{}…", answer.chars().take(WIDTH - 1).collect::<String>())
    }
}
