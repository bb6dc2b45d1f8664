//! `foobar provision`: load and render everything (bad input stops here,
//! before any connection), then per server: connect, gather facts, plan,
//! apply, and check every hop over HTTP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::apply::{Applier, HostResult, StepResult};
use crate::cli::{exit, Global};
use crate::http;
use crate::inventory::{self, Loaded, Role, Server};
use crate::plan::{self, Change};
use crate::playbook::{self, Check};
use crate::progress::{self, Event, Reporter, StepStatus};
use crate::render::{self, Desired, Renderer, Resolved};
use crate::secrets::Secrets;
use crate::transport::{Ssh, SshTarget, Transport, Unreachable};

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
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub host: String,
    pub check: String,
    pub hop: String,
    pub passed: bool,
    pub detail: String,
    /// Log lines from the server, when the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
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
    unreachable: Vec<String>,
    totals: Totals,
    elapsed_ms: u64,
}

/// Everything one server needs, rendered before any connection.
struct Job<'a> {
    server: &'a Server,
    steps: Vec<Resolved>,
    checks: Vec<(Check, String)>,
    http_port: u16,
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
            resolve_checks(&renderer, &pb, &inv, server, &secrets)?
        } else {
            Vec::new()
        };
        jobs.push(Job {
            server,
            steps,
            checks,
            http_port: inv.inventory.nginx.listen.0,
        });
    }

    let out = progress::reporter(g.verbose);
    let today = plan::today();
    let opts = RunOptions {
        check: args.check,
        diff: args.diff,
        today,
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
        unreachable: Vec::new(),
        totals: Totals {
            ok: 0,
            changed: 0,
            failed: 0,
            checks_passed: 0,
            checks_failed: 0,
        },
        elapsed_ms: 0,
    };
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
                summary.unreachable.push(e.to_string());
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
    } else if !summary.unreachable.is_empty() {
        exit::UNREACHABLE
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
}

fn resolve_checks(
    renderer: &Renderer,
    pb: &playbook::Loaded,
    inv: &Loaded,
    server: &Server,
    secrets: &Secrets,
) -> Result<Vec<(Check, String)>, crate::error::InputError> {
    let ctx = render::Context::new(&inv.inventory, server, secrets);
    pb.playbook
        .checks
        .iter()
        .map(|c| {
            let host = match &c.host {
                Some(h) => {
                    renderer.field(&pb.path, &format!("check `{}` host", c.name), h, &ctx)?
                }
                None => inv.inventory.domain.fqdn(),
            };
            Ok((c.clone(), host))
        })
        .collect()
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
) -> Result<(HostResult, Vec<CheckResult>), Unreachable> {
    let host = job.server.name.to_string();
    let ssh = Ssh::connect(&ssh_target(inv, job.server)).await?;
    let result = converge(&ssh, pb, job, secrets, out, opts).await;
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
) -> Result<(HostResult, Vec<CheckResult>), Unreachable> {
    let applier = Applier {
        transport: t,
        out,
        secrets,
        today: opts.today,
    };
    let host = t.host().to_string();
    let (planned, facts) = applier.plan(&job.steps).await?;
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
    let checks = run_checks(&applier, job).await?;
    Ok((result, checks))
}

/// The end-to-end checks; the first failure names its hop and brings the
/// server's log lines, and the rest are not tried.
async fn run_checks<T: Transport>(
    applier: &Applier<'_, T>,
    job: &Job<'_>,
) -> Result<Vec<CheckResult>, Unreachable> {
    let host = job.server.name.to_string();
    let addr: SocketAddr = (job.server.address, job.http_port).into();
    let mut results = Vec::new();
    for (check, host_header) in &job.checks {
        // nginx may still be finishing a reload: retry for a few seconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        let verdict = loop {
            let verdict =
                match http::get(addr, host_header, &check.path, Duration::from_secs(5)).await {
                    Ok(r) if r.status != check.expect_status => Err(format!(
                        "expected HTTP {}, got {}: {}",
                        check.expect_status,
                        r.status,
                        first_line(&r.body)
                    )),
                    Ok(r) => match &check.expect_body {
                        Some(want) if !r.body.contains(want.as_str()) => Err(format!(
                            "HTTP {} but the body lacks `{want}`: {}",
                            r.status,
                            first_line(&r.body)
                        )),
                        _ => Ok(format!("HTTP {}", r.status)),
                    },
                    Err(e) => Err(e),
                };
            if verdict.is_ok() || Instant::now() > deadline {
                break verdict;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let passed = verdict.is_ok();
        let detail = verdict.unwrap_or_else(|e| e);
        let logs = match (&check.logs, passed) {
            (Some(cmd), false) => Some(
                applier
                    .secrets
                    .redact(&applier.run(cmd, None).await?.stdout_text()),
            ),
            _ => None,
        };
        applier.out.report(Event::StepFinished {
            host: host.clone(),
            step: format!(
                "check: {} ({} {}{})",
                check.name, check.hop, host_header, check.path
            ),
            status: if passed {
                StepStatus::Ok
            } else {
                StepStatus::Failed
            },
            detail: Some(match &logs {
                Some(l) => format!("{detail}\n--- logs from {host}:\n{}", l.trim_end()),
                None => detail.clone(),
            }),
        });
        results.push(CheckResult {
            host: host.clone(),
            check: check.name.clone(),
            hop: check.hop.clone(),
            passed,
            detail,
            logs,
        });
        if !passed {
            break;
        }
    }
    Ok(results)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
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
    for u in &s.unreachable {
        println!("unreachable: {u}");
    }
    if !s.checks.is_empty() {
        println!(
            "checks: {} passed, {} failed",
            s.totals.checks_passed, s.totals.checks_failed
        );
    }
    println!("done in {:.1} s", s.elapsed_ms as f64 / 1000.0);
}
