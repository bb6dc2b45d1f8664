//! `foobar provision`: load and render everything (bad input stops here,
//! before any connection), let the engine converge every server, and turn
//! its outcomes into a summary and an exit code.

use std::time::Instant;

use clap::Args;
use serde::Serialize;

use crate::checks::{CheckResult, Checks};
use crate::cli::{exit, Global};
use crate::engine::{self, Claim, Engine, HostError, HostResult, ProvisionJob, ProvisionOptions};
use crate::inventory::{self, Role};
use crate::plan;
use crate::progress::{self, Event, StepStatus};
use crate::project::Project;
use crate::render::Renderer;
use crate::resolve;
use crate::secrets::Secrets;
use crate::steps::PlanCx;
use crate::transport::SshConnector;

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Change nothing; list what would change (exit 4 when changes are pending).
    #[arg(long)]
    pub check: bool,
    /// Show a unified diff of every file that changes (secrets masked).
    #[arg(long)]
    pub diff: bool,
    /// Take the server lock even if another run holds it (a stale lock).
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Debug, Serialize)]
struct Totals {
    ok: usize,
    changed: usize,
    failed: usize,
    checks_passed: usize,
    checks_failed: usize,
}

#[derive(Debug, Serialize)]
struct Summary {
    check_mode: bool,
    hosts: Vec<HostResult>,
    checks: Vec<CheckResult>,
    /// Servers that could not be reached or were locked.
    errors: Vec<HostError>,
    totals: Totals,
    elapsed_ms: u64,
}

pub async fn run(g: &Global, args: ProvisionArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let inv = inventory::load(&g.inventory)?;
    let project = Project::discover(g.project.as_deref());
    let pb = project.playbook()?;
    let secrets = Secrets::resolve(&inv)?;
    let renderer = Renderer::new(&project);
    let selected = g.limit(&inv)?;
    let mut jobs = Vec::new();
    for server in inv.inventory.servers.0.iter() {
        if !selected(server) {
            continue;
        }
        let steps = resolve::resolve(&renderer, &pb, &inv, server, &secrets)?;
        let checks = Checks::resolve(&renderer, &pb, &inv, server, &secrets)?;
        jobs.push(ProvisionJob {
            target: engine::ssh_target(&inv, server),
            steps,
            checks,
            replica: server.has(Role::DbReplica),
            wave: inv.inventory.wave(server),
        });
    }

    let out = progress::reporter(g.verbosity());
    let engine = Engine {
        connector: &SshConnector,
        out: out.as_ref(),
        secrets: &secrets,
        forks: g.forks,
    };
    let opts = ProvisionOptions {
        check: args.check,
        diff: args.diff,
        break_lock: args.break_lock,
        claim: Claim::new("provision")?,
        plan_cx: PlanCx {
            today: plan::today(),
        },
    };
    let results = engine::provision(&engine, &jobs, &pb.playbook.roles, &opts).await;

    let mut summary = Summary {
        check_mode: args.check,
        hosts: Vec::new(),
        checks: Vec::new(),
        errors: Vec::new(),
        totals: Totals {
            ok: 0,
            changed: 0,
            failed: 0,
            checks_passed: 0,
            checks_failed: 0,
        },
        elapsed_ms: 0,
    };
    let mut failures = Vec::new();
    for r in &results {
        match r {
            Ok((host, checks)) => {
                summary.totals.ok += host.count(StepStatus::Ok);
                summary.totals.changed += host.count(StepStatus::Changed);
                summary.totals.failed += host.count(StepStatus::Failed);
                summary.hosts.push(host.clone());
                summary.checks.extend(checks.iter().cloned());
            }
            Err(e) => {
                out.report(Event::Message {
                    text: format!("error: {e}"),
                });
                summary.errors.push(HostError::from(e));
                failures.push(e);
            }
        }
    }
    summary.totals.checks_passed = summary.checks.iter().filter(|c| c.passed).count();
    summary.totals.checks_failed = summary.checks.iter().filter(|c| !c.passed).count();
    summary.elapsed_ms = started.elapsed().as_millis() as u64;

    if g.json {
        crate::cli::print_json("provision", &summary)?;
    } else {
        print_summary(&summary);
    }
    let t = &summary.totals;
    Ok(if t.failed > 0 || t.checks_failed > 0 {
        exit::FAILED
    } else if let Some(code) = exit::for_host_failures(&failures) {
        code
    } else if args.check && t.changed > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}

fn print_summary(s: &Summary) {
    for h in &s.hosts {
        println!(
            "{}: ok={} changed={} failed={}{}",
            h.host,
            h.count(StepStatus::Ok),
            h.count(StepStatus::Changed),
            h.count(StepStatus::Failed),
            if s.check_mode {
                " (check mode: nothing was changed)"
            } else {
                ""
            }
        );
        if let Some(e) = &h.error {
            println!("  failed: {e}");
        }
    }
    for c in s.checks.iter().filter(|c| !c.passed) {
        println!(
            "  check failed at the {} hop: {}: {}",
            c.hop, c.check, c.detail
        );
        if let Some(l) = &c.logs {
            println!("  logs:\n{}", l.trim_end());
        }
    }
    for e in &s.errors {
        println!("error: {}", e.message);
    }
    if !s.checks.is_empty() {
        println!(
            "checks: {} passed, {} failed",
            s.totals.checks_passed, s.totals.checks_failed
        );
    }
    println!("done in {:.1} s", s.elapsed_ms as f64 / 1000.0);
}
