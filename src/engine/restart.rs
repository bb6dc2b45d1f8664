//! Restarts for maintenance windows: each service in the least disruptive
//! way there is, then the same end-to-end checks as provision; a failing
//! app check rolls the release back. And the maintenance page by hand.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::app::{parse_switch, switch_script, Switch};
use super::host::HostRun;
use super::lock::Claim;
use super::pool;
use super::{Engine, HostFailure};
use crate::checks::{dns, CheckResult, Checks};
use crate::inventory::{Loaded, Role, Server};
use crate::progress::{Event, StepStatus};
pub use crate::roles::RestartMethod;
use crate::roles::{
    maintenance_up, raise_flag, AfterRestart, Recipe, MAINTENANCE_FLAG, RESTART_FLAG,
};
use crate::shell::quote;
use crate::steps::PlanCx;
use crate::transport::{Connector, SshTarget, Transport, Unreachable};

/// One server's services to restart, in order.
pub struct RestartJob<'a> {
    pub server: &'a Server,
    pub target: SshTarget,
    pub services: Vec<(Role, String)>,
    pub checks: Option<Checks>,
}

/// Web servers behind load balancers restart a batch at a time, each
/// drained at every load balancer first and put back after its checks.
pub struct Rolling {
    pub load_balancers: Vec<SshTarget>,
    /// Servers per batch.
    pub serial: usize,
    /// How long a drained server's sessions may take to finish.
    pub drain_timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct ServiceResult {
    pub host: String,
    pub role: &'static str,
    pub service: String,
    pub method: RestartMethod,
    pub how: &'static str,
    pub ok: bool,
    pub detail: String,
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<String>,
    pub elapsed_ms: u64,
}

pub type HostRestart = Result<Vec<ServiceResult>, HostFailure>;

/// Restarts every job's services under the server lock: the load
/// balancers one at a time; behind load balancers, the web servers a batch
/// at a time out of the pool (a web server whose restart fails stays out
/// and the roll stops there: the servers after it are not restarted);
/// then the rest at once, but the database primary last, with the
/// maintenance page up on `remote_web` (the web servers it does not share
/// a server with) while it restarts.
pub async fn restart<C: Connector>(
    engine: &Engine<'_, C>,
    inv: &Loaded,
    jobs: &[RestartJob<'_>],
    claim: &Claim,
    break_lock: bool,
    rolling: Option<&Rolling>,
    remote_web: &[SshTarget],
) -> Vec<HostRestart> {
    let one = |job| restart_host(engine, inv, job, claim, break_lock);
    let has = |j: &RestartJob, role: Role| j.services.iter().any(|(r, _)| *r == role);
    let mut results: Vec<Option<HostRestart>> = jobs.iter().map(|_| None).collect();
    if let Some(rolling) = rolling {
        for (i, job) in jobs.iter().enumerate().filter(|(_, j)| has(j, Role::Lb)) {
            results[i] = Some(one(job).await);
        }
        let pool: Vec<usize> = (0..jobs.len())
            .filter(|&i| results[i].is_none())
            .filter(|&i| has(&jobs[i], Role::Web) || has(&jobs[i], Role::App))
            .collect();
        let mut stopped_at: Option<String> = None;
        for batch in pool.chunks(rolling.serial.max(1)) {
            if let Some(at) = &stopped_at {
                for &i in batch {
                    results[i] = Some(Ok(vec![pool_result(
                        &jobs[i],
                        false,
                        format!("not restarted: the roll stopped at {at}"),
                    )]));
                }
                continue;
            }
            let rolled = roll_batch(engine, jobs, batch, rolling, &one).await;
            for (&i, result) in batch.iter().zip(rolled) {
                if !all_ok(&result) && stopped_at.is_none() {
                    stopped_at = Some(jobs[i].server.name.to_string());
                }
                results[i] = Some(result);
            }
        }
    }
    let (primary, rest): (Vec<usize>, Vec<usize>) = (0..jobs.len())
        .filter(|&i| results[i].is_none())
        .partition(|&i| has(&jobs[i], Role::Db) && !remote_web.is_empty());
    let done = engine.fan_out(&rest, |&i| one(&jobs[i])).await;
    for (i, r) in rest.into_iter().zip(done) {
        results[i] = Some(r);
    }
    for i in primary {
        results[i] = Some(behind_maintenance_pages(engine, remote_web, one(&jobs[i])).await);
    }
    results
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// Every service of a server restarted and passed its checks.
fn all_ok(result: &HostRestart) -> bool {
    matches!(result, Ok(services) if services.iter().all(|s| s.ok))
}

/// Runs a primary's restart while `web` serve the maintenance page for
/// dynamic requests; the page goes away once it passed, and stays when it
/// failed (the database does not answer).
async fn behind_maintenance_pages<C: Connector>(
    engine: &Engine<'_, C>,
    web: &[SshTarget],
    restart: impl std::future::Future<Output = HostRestart>,
) -> HostRestart {
    let flag = quote(RESTART_FLAG);
    if let Err(why) = on_servers(engine, web, &maintenance_up()).await {
        let _ = on_servers(engine, web, &format!("rm -f {flag}\n")).await;
        return Err(HostFailure::Unreachable(Unreachable {
            host: why.0,
            message: format!("could not put the maintenance page up: {}", why.1),
            transient: false,
        }));
    }
    let result = restart.await;
    if all_ok(&result) {
        let _ = on_servers(engine, web, &format!("rm -f {flag}\n")).await;
    }
    result
}

/// One batch of web servers: drained at every load balancer, restarted,
/// put back when their checks pass.
async fn roll_batch<'j, C, F, Fut>(
    engine: &Engine<'_, C>,
    jobs: &'j [RestartJob<'j>],
    batch: &[usize],
    rolling: &Rolling,
    one: &F,
) -> Vec<HostRestart>
where
    C: Connector,
    F: Fn(&'j RestartJob<'j>) -> Fut,
    Fut: std::future::Future<Output = HostRestart>,
{
    let names: Vec<&str> = batch
        .iter()
        .map(|&i| jobs[i].server.name.as_str())
        .collect();
    let start = Instant::now();
    let drain: String = names
        .iter()
        .map(|n| pool::drain_script(n, rolling.drain_timeout))
        .collect();
    if let Err(why) = on_servers(engine, &rolling.load_balancers, &drain).await {
        // Whatever was drained goes back: nothing was restarted.
        let ready: String = names
            .iter()
            .map(|n| pool::ready_script(n, rolling.drain_timeout))
            .collect();
        let _ = on_servers(engine, &rolling.load_balancers, &ready).await;
        return batch
            .iter()
            .map(|&i| {
                Ok(vec![pool_result(
                    &jobs[i],
                    false,
                    format!("could not drain at {}: {}", why.0, why.1),
                )])
            })
            .collect();
    }
    let drained_ms = start.elapsed().as_millis() as u64;
    let lbs: Vec<&str> = rolling
        .load_balancers
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let restarted = futures_util::future::join_all(batch.iter().map(|&i| one(&jobs[i]))).await;
    let mut out = Vec::new();
    for (&i, result) in batch.iter().zip(restarted) {
        let name = jobs[i].server.name.as_str();
        let pool_entry = if all_ok(&result) {
            match on_servers(
                engine,
                &rolling.load_balancers,
                &pool::ready_script(name, rolling.drain_timeout),
            )
            .await
            {
                Ok(()) => pool_result(
                    &jobs[i],
                    true,
                    format!(
                        "drained at {} in {drained_ms} ms, back in the pool",
                        lbs.join(", ")
                    ),
                ),
                Err((lb, why)) => pool_result(
                    &jobs[i],
                    false,
                    format!("not back in the pool at {lb}: {why}"),
                ),
            }
        } else {
            pool_result(
                &jobs[i],
                false,
                format!(
                    "left out of the pool at {}: its restart failed",
                    lbs.join(", ")
                ),
            )
        };
        out.push(result.map(|mut services| {
            services.insert(0, pool_entry);
            services
        }));
    }
    out
}

/// Runs `script` on every server at once; the first failure, as (server,
/// what went wrong).
async fn on_servers<C: Connector>(
    engine: &Engine<'_, C>,
    servers: &[SshTarget],
    script: &str,
) -> Result<(), (String, String)> {
    let outcomes = futures_util::future::join_all(servers.iter().map(|t| async move {
        let failed = |message: String| (t.name.clone(), message);
        let transport = engine
            .connector
            .connect(t)
            .await
            .map_err(|e| failed(e.message))?;
        let out = transport.run(&format!("set -e\n{script}"), None).await;
        transport.close().await;
        let out = out.map_err(|e| failed(e.message))?;
        if out.success() {
            Ok(())
        } else {
            Err(failed(out.stderr_text()))
        }
    }))
    .await;
    outcomes.into_iter().collect()
}

/// The pool's part of a web server's rolling restart, as a result line.
fn pool_result(job: &RestartJob, ok: bool, detail: String) -> ServiceResult {
    ServiceResult {
        host: job.server.name.to_string(),
        role: Role::Lb.name(),
        service: format!("haproxy {}/{}", pool::BACKEND, job.server.name),
        method: RestartMethod::Drain,
        how: "drained at every load balancer, put back after its checks",
        ok,
        detail,
        checks: Vec::new(),
        rolled_back_to: None,
        elapsed_ms: 0,
    }
}

async fn restart_host<C: Connector>(
    engine: &Engine<'_, C>,
    inv: &Loaded,
    job: &RestartJob<'_>,
    claim: &Claim,
    break_lock: bool,
) -> Result<Vec<ServiceResult>, HostFailure> {
    let transport = engine.connector.connect(&job.target).await?;
    let run = HostRun {
        transport: &transport,
        out: engine.out,
        secrets: engine.secrets,
        plan_cx: PlanCx {
            today: crate::plan::today(),
        },
    };
    if let Err(e) = run.lock_then(claim, break_lock, "").await {
        transport.close().await;
        return Err(e);
    }
    let mut results = Vec::new();
    let mut outcome = Ok(());
    for (role, service) in &job.services {
        match restart_one(&run, inv, job, *role, service).await {
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
    let _ = run.run(&claim.release_script(), None).await;
    transport.close().await;
    outcome?;
    Ok(results)
}

async fn restart_one<T: Transport>(
    run: &HostRun<'_, T>,
    inv: &Loaded,
    job: &RestartJob<'_>,
    role: Role,
    service: &str,
) -> Result<ServiceResult, Unreachable> {
    let start = Instant::now();
    let host = run.host().to_string();
    let Recipe {
        method,
        how,
        script,
        after,
    } = role.module().restart(&inv.inventory, service);
    run.out.report(Event::StepStarted {
        host: host.clone(),
        step: format!("restart {service}"),
    });
    let ran = run.run(&format!("set -e\n{script}"), None).await?;
    let mut result = ServiceResult {
        host: host.clone(),
        role: role.name(),
        service: service.to_string(),
        method,
        how,
        ok: ran.success(),
        detail: if ran.success() {
            String::new()
        } else {
            run.secrets.redact(&ran.stderr_text())
        },
        checks: Vec::new(),
        rolled_back_to: None,
        elapsed_ms: 0,
    };
    if result.ok {
        let (checks, failure) = verify(run, inv, job, after).await?;
        result.checks = checks;
        if let Some(failure) = failure {
            result.ok = false;
            result.detail = failure;
            if after == AfterRestart::ChecksElseRollBack {
                result.rolled_back_to =
                    roll_back_release(run, inv.inventory.app.root.as_str(), service).await?;
                if let Some(rel) = &result.rolled_back_to {
                    let (checks, still) = verify(run, inv, job, after).await?;
                    result.detail = format!(
                        "{}; rolled back to release {rel}: checks {}",
                        result.detail,
                        if still.is_none() {
                            "pass again"
                        } else {
                            "still fail"
                        }
                    );
                    result.checks.extend(checks);
                }
            }
        }
    }
    result.elapsed_ms = start.elapsed().as_millis() as u64;
    run.out.report(Event::StepFinished {
        host,
        step: format!("restart {service} ({how})"),
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
    run: &HostRun<'_, T>,
    inv: &Loaded,
    job: &RestartJob<'_>,
    after: AfterRestart,
) -> Result<(Vec<CheckResult>, Option<String>), Unreachable> {
    if after == AfterRestart::Dns {
        let fqdn = inv.inventory.domain.fqdn();
        let expected = inv.inventory.web_address();
        let reply = dns::query(
            (
                job.server
                    .record_ip()
                    .expect("load checks that nameservers have IPs"),
                53,
            )
                .into(),
            &fqdn,
            dns::record_type(expected),
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
    let Some(checks) = &job.checks else {
        return Ok((Vec::new(), None));
    };
    let results = checks.run(run.transport, run.out, run.secrets).await?;
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
pub(super) async fn roll_back_release<T: Transport>(
    run: &HostRun<'_, T>,
    root: &str,
    service: &str,
) -> Result<Option<String>, Unreachable> {
    let restart = format!("systemctl restart {}", quote(service));
    let out = run.run(&switch_script(root, None, &restart), None).await?;
    Ok(match parse_switch(&out.stdout_text()) {
        Switch::Switched { to, .. } => Some(to),
        _ => None,
    })
}

/// The maintenance page by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceSwitch {
    On,
    Off,
    Status,
}

/// Switches (or reads) the maintenance page on every target; per server,
/// whether the page is on afterwards.
pub async fn maintenance<C: Connector>(
    engine: &Engine<'_, C>,
    targets: &[SshTarget],
    switch: MaintenanceSwitch,
) -> Vec<Result<bool, MaintenanceError>> {
    let flag = quote(MAINTENANCE_FLAG);
    let script = match switch {
        MaintenanceSwitch::On => raise_flag(MAINTENANCE_FLAG),
        MaintenanceSwitch::Off => format!("rm -f {flag}"),
        MaintenanceSwitch::Status => String::new(),
    } + &format!("\nif [ -e {flag} ]; then echo on; else echo off; fi\n");
    engine
        .fan_out(targets, |target| {
            let script = &script;
            async move {
                let transport = engine.connector.connect(target).await?;
                let out = transport.run(&format!("set -e\n{script}"), None).await;
                transport.close().await;
                let out = out?;
                if !out.success() {
                    return Err(MaintenanceError::Failed {
                        host: target.name.clone(),
                        message: out.stderr_text(),
                    });
                }
                Ok(out.stdout_text().trim() == "on")
            }
        })
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    #[error("{host}: {message}")]
    Failed { host: String, message: String },
}
