//! `foobar provision`: load and render everything (bad input stops here,
//! before any connection), then per server: connect, gather facts, plan,
//! apply, and check every hop over HTTP.

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::apply::{Applier, HostFailure, HostResult, StepResult};
use crate::checks::{CheckResult, Checks};
use crate::cli::{exit, Global};
use crate::inventory::{self, Loaded, Role, Server};
use crate::lock::Claim;
use crate::plan::{self, Change};
use crate::playbook;
use crate::progress::{self, Event, Reporter, StepStatus};
use crate::render::{self, Desired, Renderer, Resolved};
use crate::secrets::Secrets;
use crate::transport::{Ssh, SshTarget, Transport};

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Change nothing; list what would change (exit 4 when changes are pending).
    #[arg(long)]
    pub check: bool,
    /// Show a unified diff of every file that changes (secrets masked).
    #[arg(long)]
    pub diff: bool,
    /// Print a machine-readable result on stdout.
    #[arg(long)]
    pub json: bool,
    /// Only these servers (repeatable).
    #[arg(long, value_name = "NAME")]
    pub limit: Vec<String>,
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
    errors: Vec<String>,
    totals: Totals,
    elapsed_ms: u64,
}

/// Everything one server needs, rendered before any connection.
struct Job<'a> {
    server: &'a Server,
    steps: Vec<Resolved>,
    /// For web servers: the end-to-end checks.
    checks: Option<Checks>,
}

pub async fn run(g: &Global, args: ProvisionArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let inv = inventory::load(&g.inventory)?;
    let pb = playbook::load(&g.project.join("playbooks/provision.yml"))?;
    let secrets = Secrets::resolve(&inv)?;
    let renderer = Renderer::new(&g.project);
    for name in &args.limit {
        if inv.server(name).is_none() {
            return Err(crate::error::InputError::new(
                &inv.path,
                format!("--limit {name}: no server of that name in the inventory"),
            )
            .into());
        }
    }
    let mut jobs = Vec::new();
    for server in inv.inventory.servers.0.iter() {
        if !args.limit.is_empty() && !args.limit.iter().any(|n| n == server.name.as_str()) {
            continue;
        }
        let steps = render::resolve(&renderer, &pb, &inv, server, &secrets)?;
        let checks = if server.has(Role::Web) {
            Some(Checks::resolve(&renderer, &pb, &inv, server, &secrets)?)
        } else {
            None
        };
        jobs.push(Job {
            server,
            steps,
            checks,
        });
    }

    let out = progress::reporter(g.verbose);
    let today = plan::today();
    let opts = RunOptions {
        check: args.check,
        diff: args.diff,
        today,
        break_lock: args.break_lock,
        claim: Claim::new("provision"),
    };
    let results = futures_util::future::join_all(
        jobs.iter()
            .map(|job| provision_host(&inv, &pb, job, &secrets, out.as_ref(), &opts)),
    )
    .await;

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
    for r in results {
        match r {
            Ok((host, checks)) => {
                summary.totals.ok += host.count(StepStatus::Ok);
                summary.totals.changed += host.count(StepStatus::Changed);
                summary.totals.failed += host.count(StepStatus::Failed);
                summary.hosts.push(host);
                summary.checks.extend(checks);
            }
            Err(e) => {
                out.report(Event::Message {
                    text: format!("error: {e}"),
                });
                summary.errors.push(e.to_string());
                failures.push(e);
            }
        }
    }
    summary.totals.checks_passed = summary.checks.iter().filter(|c| c.passed).count();
    summary.totals.checks_failed = summary.checks.iter().filter(|c| !c.passed).count();
    summary.elapsed_ms = started.elapsed().as_millis() as u64;

    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    let t = &summary.totals;
    Ok(if t.failed > 0 || t.checks_failed > 0 {
        exit::FAILED
    } else if let Some(code) = HostFailure::exit_code(&failures) {
        code
    } else if args.check && t.changed > 0 {
        exit::CHANGES_PENDING
    } else {
        exit::OK
    })
}

struct RunOptions {
    check: bool,
    diff: bool,
    today: u32,
    break_lock: bool,
    claim: Claim,
}

pub fn ssh_target(inv: &Loaded, server: &Server) -> SshTarget {
    let ssh = &inv.inventory.ssh;
    SshTarget {
        name: server.name.to_string(),
        address: server.address.to_string(),
        port: server.ssh.port.0,
        user: server.ssh.user.to_string(),
        identity_file: server
            .ssh
            .identity_file
            .as_ref()
            .map(|p| inv.local_path(&p.0)),
        known_hosts: ssh.known_hosts.as_ref().map(|p| inv.local_path(&p.0)),
        accept_new_host_keys: ssh.accept_new_host_keys,
        connect_timeout: Duration::from_secs(ssh.connect_timeout_secs.into()),
    }
}

async fn provision_host(
    inv: &Loaded,
    pb: &playbook::Loaded,
    job: &Job<'_>,
    secrets: &Secrets,
    out: &dyn Reporter,
    opts: &RunOptions,
) -> Result<(HostResult, Vec<CheckResult>), HostFailure> {
    let host = job.server.name.to_string();
    let ssh = Ssh::connect(&ssh_target(inv, job.server)).await?;
    let result = converge(&ssh, pb, job, secrets, out, opts).await;
    if !opts.check && !matches!(result, Err(HostFailure::Locked(_))) {
        // Best effort: a server that went away keeps a lock that names
        // this run, for --break-lock.
        let _ = ssh.run(&opts.claim.release_script(), None).await;
    }
    ssh.close().await;
    out.report(Event::HostFinished { host });
    result
}

async fn converge<T: Transport>(
    t: &T,
    pb: &playbook::Loaded,
    job: &Job<'_>,
    secrets: &Secrets,
    out: &dyn Reporter,
    opts: &RunOptions,
) -> Result<(HostResult, Vec<CheckResult>), HostFailure> {
    let applier = Applier {
        transport: t,
        out,
        secrets,
        today: opts.today,
    };
    let host = t.host().to_string();
    // Check mode changes nothing, so it needs no lock.
    let (planned, facts) = if opts.check {
        applier.plan(&job.steps).await?
    } else {
        applier
            .plan_under_lock(&job.steps, &opts.claim, opts.break_lock)
            .await?
    };
    let mut result = HostResult {
        host: host.clone(),
        ..Default::default()
    };
    out.report(Event::HostStarted {
        host: host.clone(),
        steps: planned.len(),
    });
    if opts.diff {
        for p in &planned {
            if let (Some(Change::WriteFile { content, .. }), Desired::File { path, .. }) =
                (&p.change, &p.step.desired)
            {
                let old = applier
                    .run(
                        &format!("cat {} 2>/dev/null || true", crate::shell::quote(path)),
                        None,
                    )
                    .await?;
                out.report(Event::Diff {
                    host: host.clone(),
                    path: path.clone(),
                    diff: secrets.redact(&unified_diff(
                        &old.stdout_text(),
                        &String::from_utf8_lossy(content),
                        path,
                    )),
                });
            }
        }
    }
    if opts.check {
        for p in &planned {
            let (status, detail) = match &p.change {
                Some(c) => (StepStatus::Changed, Some(format!("would {}", c.describe()))),
                None => (StepStatus::Ok, None),
            };
            out.report(Event::StepFinished {
                host: host.clone(),
                step: p.step.label.clone(),
                status,
                detail: detail.clone(),
            });
            result.steps.push(StepResult {
                role: p.step.role,
                step: p.step.label.clone(),
                status,
                detail,
                elapsed_ms: 0,
            });
        }
        return Ok((result, Vec::new()));
    }
    applier
        .apply(
            &job.steps,
            planned,
            &pb.playbook.roles,
            &facts.pending_handlers,
            &mut result,
        )
        .await?;
    if result.error.is_some() {
        return Ok((result, Vec::new()));
    }
    let checks = match &job.checks {
        Some(c) => c.run(&applier).await?,
        None => Vec::new(),
    };
    Ok((result, checks))
}

fn unified_diff(old: &str, new: &str, path: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (server)"), &format!("{path} (foobar)"))
        .to_string()
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
        println!("error: {e}");
    }
    if !s.checks.is_empty() {
        println!(
            "checks: {} passed, {} failed",
            s.totals.checks_passed, s.totals.checks_failed
        );
    }
    println!("done in {:.1} s", s.elapsed_ms as f64 / 1000.0);
}
