//! What provision and deploy share: their options, the engine run over
//! their jobs, and its outcomes turned into a summary (lines or `--json`)
//! and an exit code.

use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::Input;
use crate::checks::{CheckResult, Checks};
use crate::cli::{exit, outln, Global};
use crate::engine::certs::{self, AcmeJob, CertOutcome};
use crate::engine::{
    self, Claim, HostError, HostOutcome, HostResult, ProvisionJob, ProvisionOptions,
};
use crate::plan;
use crate::progress::{self, Event, Reporter, StepStatus};
use crate::steps::PlanCx;
use crate::transport::SshTarget;

#[derive(Debug, Args)]
pub struct ConvergeArgs {
    /// Change nothing; list what would change (exit 4 when changes are pending).
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show a unified diff of every file that changes (secrets masked).
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Take the servers' locks even where another run holds one (a stale lock).
    #[arg(long)]
    pub break_lock: bool,
    /// Run the app's build and release command in a new release even when
    /// their inputs did not change since the live release.
    #[arg(long)]
    pub rebuild: bool,
}

/// The site's certificate from an ACME CA, between convergence and the
/// deferred checks.
pub struct CertPhase {
    pub job: AcmeJob,
    pub web: Vec<SshTarget>,
}

/// Lets the engine converge `jobs` (then, with `certs`, obtain or renew
/// the certificate), then runs the checks that wait for every server
/// (`deferred`: the index of their job and their checks), then reports as
/// `command`.
#[allow(clippy::too_many_arguments)]
pub async fn converge(
    g: &Global,
    command: &str,
    input: &Input,
    jobs: &[ProvisionJob],
    args: &ConvergeArgs,
    started: Instant,
    certs: Option<CertPhase>,
    deferred: Vec<(usize, Checks)>,
) -> anyhow::Result<u8> {
    let out = progress::reporter(g.verbosity());
    let engine = super::engine(g, out.as_ref(), &input.secrets);
    let opts = ProvisionOptions {
        check: args.check,
        diff: args.diff,
        break_lock: args.break_lock,
        claim: Claim::new(command)?,
        plan_cx: PlanCx {
            today: plan::today(),
            rebuild: args.rebuild,
        },
    };
    let mut results = engine::provision(&engine, jobs, &input.pb.playbook.roles, &opts).await;
    let mut certificate = None;
    // Only servers that converged take part.
    let ready: Vec<bool> = results
        .iter()
        .map(|r| r.as_ref().is_ok_and(|(h, _)| h.error.is_none()))
        .collect();
    if let (Some(phase), false) = (certs, args.check) {
        let web: Vec<SshTarget> = phase
            .web
            .into_iter()
            .filter(|t| {
                jobs.iter()
                    .position(|j| j.target.name == t.name)
                    .is_some_and(|i| ready[i])
            })
            .collect();
        if !web.is_empty() {
            match certs::ensure(&engine, &web, &phase.job).await {
                Ok(outcome) => certificate = Some(outcome),
                Err(e) => out.report(Event::Message {
                    text: format!("error: the certificate phase stopped: {e}"),
                }),
            }
        }
    }
    for (i, checks) in deferred.iter().filter(|(i, _)| ready[*i] && !args.check) {
        let checked = engine::run_checks(&engine, &jobs[*i].target, checks).await;
        match (&mut results[*i], checked) {
            (Ok((_, list)), Ok(found)) => list.extend(found),
            (slot, Err(e)) => *slot = Err(e),
            _ => {}
        }
    }
    report(
        g,
        command,
        out.as_ref(),
        started,
        args.check,
        &results,
        certificate,
    )
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
    /// With ACME: the site's certificate, and whether it was renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate: Option<CertOutcome>,
}

/// Prints the summary of `command` and returns its exit code.
fn report(
    g: &Global,
    command: &str,
    out: &dyn Reporter,
    started: Instant,
    check_mode: bool,
    results: &[HostOutcome],
    certificate: Option<CertOutcome>,
) -> anyhow::Result<u8> {
    let mut summary = Summary {
        check_mode,
        certificate,
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
    let (done, errors, failures) = super::split(out, results);
    summary.errors = errors;
    for (host, checks) in done {
        summary.totals.ok += host.count(StepStatus::Ok);
        summary.totals.changed += host.count(StepStatus::Changed);
        summary.totals.failed += host.count(StepStatus::Failed);
        summary.hosts.push(host);
        summary.checks.extend(checks);
    }
    summary.totals.checks_passed = summary.checks.iter().filter(|c| c.passed).count();
    summary.totals.checks_failed = summary.checks.iter().filter(|c| !c.passed).count();
    summary.elapsed_ms = started.elapsed().as_millis() as u64;

    if g.json {
        crate::cli::print_json(command, &summary)?;
    } else {
        print_summary(&summary)?;
    }
    let t = &summary.totals;
    let cert_failed = summary.certificate.as_ref().is_some_and(|c| !c.ok);
    Ok(exit::of(
        t.failed > 0 || t.checks_failed > 0 || cert_failed,
        &failures,
        check_mode && t.changed > 0,
    ))
}

fn print_summary(s: &Summary) -> anyhow::Result<()> {
    for h in &s.hosts {
        outln!(
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
        )?;
        if let Some(e) = &h.error {
            outln!("  failed: {e}")?;
        }
        if let Some(r) = &h.rolled_back_to {
            outln!("  the new release failed its checks: release {r} is live again")?;
        }
    }
    for c in s.checks.iter().filter(|c| !c.passed) {
        outln!(
            "  check failed at the {} hop: {}: {}",
            c.hop,
            c.check,
            c.detail
        )?;
        if let Some(l) = &c.logs {
            outln!("  logs:\n{}", l.trim_end())?;
        }
    }
    if let Some(c) = &s.certificate {
        match (&c.renewal, c.ok) {
            (Some(why), true) => outln!("certificate: renewed ({why})")?,
            (_, false) => outln!("certificate: FAILED: {}", c.detail)?,
            (None, true) => {}
        }
        for server in &c.servers {
            if let Some(days) = server.days_left {
                outln!(
                    "certificate on {}: {days} days left{}",
                    server.host,
                    if days < 14 {
                        " (WARNING: under 14)"
                    } else {
                        ""
                    }
                )?;
            }
        }
    }
    for e in &s.errors {
        outln!("error: {}", e.message)?;
    }
    if !s.checks.is_empty() {
        outln!(
            "checks: {} passed, {} failed",
            s.totals.checks_passed,
            s.totals.checks_failed
        )?;
    }
    outln!("done in {:.1} s", s.elapsed_ms as f64 / 1000.0)?;
    Ok(())
}
