//! The order of a restart over many servers: the load balancers one at a
//! time; behind them, the web servers a batch at a time out of the pool;
//! a Galera cluster's members one at a time out of theirs; the database
//! primary last, behind the maintenance page.

use std::time::{Duration, Instant};

use super::lock::Claim;
use super::pool;
use super::restart::{restart_host, HostRestart, RestartJob, RestartMethod, ServiceResult};
use super::Engine;
use super::HostFailure;
use crate::inventory::{Loaded, Role};
use crate::roles::{maintenance_up, RESTART_FLAG};
use crate::shell::quote;
use crate::transport::{Connector, SshTarget, Transport, Unreachable};

/// Web servers behind load balancers restart a batch at a time, each
/// drained at every load balancer first and put back after its checks.
pub struct Rolling {
    pub load_balancers: Vec<SshTarget>,
    /// Servers per batch.
    pub serial: usize,
    /// How long a drained server's sessions may take to finish.
    pub drain_timeout: Duration,
}

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
                        &pool::WEB,
                        false,
                        format!("not restarted: the roll stopped at {at}"),
                    )]));
                }
                continue;
            }
            let rolled = roll_batch(engine, jobs, batch, rolling, &pool::WEB, &one).await;
            for (&i, result) in batch.iter().zip(rolled) {
                if !all_ok(&result) && stopped_at.is_none() {
                    stopped_at = Some(jobs[i].server.name.to_string());
                }
                results[i] = Some(result);
            }
        }
    }
    // A Galera cluster's members one at a time, each out of HAProxy's
    // pool while it restarts: the others keep taking writes.
    if let Some(rolling) = rolling {
        let members: Vec<usize> = (0..jobs.len())
            .filter(|&i| results[i].is_none() && has(&jobs[i], Role::DbCluster))
            .collect();
        let mut stopped_at: Option<String> = None;
        for i in members {
            results[i] = Some(match &stopped_at {
                Some(at) => Ok(vec![pool_result(
                    &jobs[i],
                    &pool::DB,
                    false,
                    format!("not restarted: the roll stopped at {at}"),
                )]),
                None => {
                    let rolled = roll_batch(engine, jobs, &[i], rolling, &pool::DB, &one).await;
                    let result = rolled.into_iter().next().expect("one server, one result");
                    if !all_ok(&result) {
                        stopped_at = Some(jobs[i].server.name.to_string());
                    }
                    result
                }
            });
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
        results[i] = Some(
            behind_maintenance_pages(engine, remote_web, one(&jobs[i]), |s| {
                s.iter().all(|s| s.ok)
            })
            .await,
        );
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

/// Runs `work` on a database primary (its restart, a restore) while `web`
/// serve the maintenance page for dynamic requests; the page goes away once
/// it `passed`, and stays when it failed (the database does not answer).
pub(super) async fn behind_maintenance_pages<C: Connector, T>(
    engine: &Engine<'_, C>,
    web: &[SshTarget],
    work: impl std::future::Future<Output = Result<T, HostFailure>>,
    passed: impl FnOnce(&T) -> bool,
) -> Result<T, HostFailure> {
    let flag = quote(RESTART_FLAG);
    if let Err(why) = on_servers(engine, web, &maintenance_up()).await {
        let _ = on_servers(engine, web, &format!("rm -f {flag}\n")).await;
        return Err(HostFailure::Unreachable(Unreachable {
            host: why.0,
            message: format!("could not put the maintenance page up: {}", why.1),
            transient: false,
        }));
    }
    let result = work.await;
    if result.as_ref().is_ok_and(passed) {
        let _ = on_servers(engine, web, &format!("rm -f {flag}\n")).await;
    }
    result
}

/// One batch of a pool's servers: out of it at every load balancer,
/// restarted, put back when their checks pass.
async fn roll_batch<'j, C, F, Fut>(
    engine: &Engine<'_, C>,
    jobs: &'j [RestartJob<'j>],
    batch: &[usize],
    rolling: &Rolling,
    pool: &pool::Pool,
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
        .map(|n| pool.drain_script(n, rolling.drain_timeout))
        .collect();
    if let Err(why) = on_servers(engine, &rolling.load_balancers, &drain).await {
        // Whatever was drained goes back: nothing was restarted.
        let ready: String = names
            .iter()
            .map(|n| pool.ready_script(n, rolling.drain_timeout))
            .collect();
        let _ = on_servers(engine, &rolling.load_balancers, &ready).await;
        return batch
            .iter()
            .map(|&i| {
                Ok(vec![pool_result(
                    &jobs[i],
                    pool,
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
                &pool.ready_script(name, rolling.drain_timeout),
            )
            .await
            {
                Ok(()) => pool_result(
                    &jobs[i],
                    pool,
                    true,
                    format!(
                        "drained at {} in {drained_ms} ms, back in the pool",
                        lbs.join(", ")
                    ),
                ),
                Err((lb, why)) => pool_result(
                    &jobs[i],
                    pool,
                    false,
                    format!("not back in the pool at {lb}: {why}"),
                ),
            }
        } else {
            pool_result(
                &jobs[i],
                pool,
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

/// The pool's part of a server's rolling restart, as a result line.
fn pool_result(job: &RestartJob, pool: &pool::Pool, ok: bool, detail: String) -> ServiceResult {
    ServiceResult {
        host: job.server.name.to_string(),
        role: Role::Lb.name(),
        service: format!("haproxy {}/{}", pool.name(), job.server.name),
        method: RestartMethod::Drain,
        how: "out of the pool at every load balancer, put back after its checks",
        ok,
        detail,
        checks: Vec::new(),
        rolled_back_to: None,
        elapsed_ms: 0,
    }
}
