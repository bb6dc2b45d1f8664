//! What provision and deploy share: the engine's outcomes over servers
//! turned into a summary (lines or `--json`) and an exit code.

use std::time::Instant;

use serde::Serialize;

use crate::checks::CheckResult;
use crate::cli::{exit, Global};
use crate::engine::{HostError, HostOutcome, HostResult};
use crate::progress::{Event, Reporter, StepStatus};

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

/// Prints the summary of `command` and returns its exit code.
pub fn report(
    g: &Global,
    command: &str,
    out: &dyn Reporter,
    started: Instant,
    check_mode: bool,
    results: &[HostOutcome],
) -> anyhow::Result<u8> {
    let mut summary = Summary {
        check_mode,
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
    for r in results {
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
        crate::cli::print_json(command, &summary)?;
    } else {
        print_summary(&summary);
    }
    let t = &summary.totals;
    Ok(if t.failed > 0 || t.checks_failed > 0 {
        exit::FAILED
    } else if let Some(code) = exit::for_host_failures(&failures) {
        code
    } else if check_mode && t.changed > 0 {
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
        if let Some(r) = &h.rolled_back_to {
            println!("  the new release failed its checks: release {r} is live again");
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
