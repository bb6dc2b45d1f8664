//! `foobar restart [GROUP|all]` (a role's group: web, app, db, dns, lb): for maintenance windows. Checks
//! the window, finds each server's services, and lets the engine restart
//! them (least disruptive way, checks, rollback, lock); prints the outcome.

use std::time::Instant;

use clap::Args;
use jiff::Timestamp;

use super::Input;
use crate::checks::Checks;
use crate::cli::{exit, outln, Global};
use crate::engine::{self, Claim, HostError, RestartJob, Rolling};
use crate::error::InputError;
use crate::inventory::Role;
use crate::progress::{self, Event};
use crate::windows;

/// What `restart` takes: a role's group (db: the replicas, then the
/// primary behind the maintenance page), or `all`.
fn targets() -> Vec<&'static str> {
    let mut names = Role::groups();
    names.push(ALL);
    names
}

const ALL: &str = "all";

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// What to restart: a role's group, or all of them.
    #[arg(default_value = ALL, value_parser = clap::builder::PossibleValuesParser::new(targets()))]
    pub target: String,
    /// Restart outside the maintenance windows too (said in the output).
    #[arg(long)]
    pub force: bool,
    /// The time to judge windows by, `YYYY-MM-DDTHH:MM` UTC or RFC 3339
    /// with an offset (for tests and dry thinking); default now.
    #[arg(long, value_name = "TIME", env = "FOOBAR_NOW", value_parser = windows::parse_moment)]
    pub now: Option<Timestamp>,
    /// Take the servers' locks even where another run holds one (a stale lock).
    #[arg(long)]
    pub break_lock: bool,
    /// Behind load balancers: how many web servers leave the pool at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub serial: u16,
    /// Behind load balancers: how long a drained web server's requests in
    /// flight may take before the restart fails, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u16).range(1..))]
    pub drain_timeout: u16,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    forced: bool,
    services: Vec<engine::ServiceResult>,
    errors: Vec<HostError>,
    elapsed_ms: u64,
}

pub async fn run(g: &Global, args: RestartArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let input = Input::load(g)?;
    let Input {
        inv,
        pb,
        secrets,
        renderer,
    } = &input;
    let now = args.now.unwrap_or_else(Timestamp::now);
    let out = progress::reporter(g.verbosity());
    let m = &inv.inventory.maintenance;
    let forced = !windows::inside(m, now);
    let shown = windows::show(m, now);
    if forced && !args.force {
        return Err(windows::OutsideWindow {
            now: shown,
            next: windows::next_opening(m, now).map(|t| windows::show(m, t)),
        }
        .into());
    }
    if forced {
        out.report(Event::Message {
            text: format!("restart: FORCED outside the maintenance windows ({shown})"),
        });
    }
    // Least disruptive first (each role's restart_order): reloads, then
    // the database, then DNS.
    let mut roles: Vec<Role> = if args.target == ALL {
        Role::ALL.to_vec()
    } else {
        Role::of_group(&args.target)
    };
    roles.sort_by_key(|r| r.module().restart_order());
    let mut jobs = Vec::new();
    for server in super::servers(g, inv, None)? {
        // Each role's first unit: the one it serves by (haproxy, not
        // keepalived, whose restart would move the floating address).
        let services: Vec<(Role, String)> = roles
            .iter()
            .filter(|r| server.has(**r))
            .filter_map(|r| {
                let units = r.module().units(&inv.inventory);
                units.first().map(|unit| (*r, unit.to_string()))
            })
            .collect();
        if services.is_empty() {
            continue;
        }
        let checks = Checks::resolve(renderer, pb, inv, server, secrets)?;
        jobs.push(RestartJob {
            server,
            target: engine::ssh_target(inv, server),
            services,
            checks,
        });
    }
    if jobs.is_empty() {
        return Err(InputError::new(&inv.path, "no server has the role to restart").into());
    }
    let claim = Claim::new(&format!("restart {}", args.target))?;
    let engine = super::engine(g, out.as_ref(), secrets);
    let load_balancers: Vec<_> = inv
        .inventory
        .servers_with(Role::Lb)
        .map(|s| engine::ssh_target(inv, s))
        .collect();
    let rolling = (!load_balancers.is_empty()).then(|| Rolling {
        load_balancers,
        serial: args.serial.into(),
        drain_timeout: std::time::Duration::from_secs(args.drain_timeout.into()),
    });
    // Web servers apart from the primary put the maintenance page up
    // themselves while it restarts.
    let primary = inv.inventory.db_primary();
    let remote_web: Vec<_> = inv
        .inventory
        .servers_with(Role::Web)
        .filter(|s| s.name != primary.name)
        .map(|s| engine::ssh_target(inv, s))
        .collect();
    let results = engine::restart(
        &engine,
        inv,
        &jobs,
        &claim,
        args.break_lock,
        rolling.as_ref(),
        &remote_web,
    )
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
                report.errors.push(HostError::from(&e));
                failures.push(e);
            }
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    if g.json {
        crate::cli::print_json("restart", &report)?;
    } else {
        for s in &report.services {
            outln!(
                "{}: {} ({}) by {}: {}{}",
                s.host,
                s.role,
                s.service,
                s.how,
                if s.ok { "ok" } else { "FAILED" },
                if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(" - {}", s.detail)
                }
            )?;
        }
        for e in &report.errors {
            outln!("error: {}", e.message)?;
        }
        if forced {
            outln!("forced outside the maintenance windows")?;
        }
        outln!("done in {:.1} s", report.elapsed_ms as f64 / 1000.0)?;
    }
    let failures: Vec<_> = failures.iter().collect();
    Ok(exit::of(
        report.services.iter().any(|s| !s.ok),
        &failures,
        false,
    ))
}
