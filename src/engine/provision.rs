//! Provisioning: per server, facts and plan in one call, then (only when
//! something is to change) the lock, the changes, the handlers; then the
//! end-to-end checks. A no-op is one remote call.

use std::time::Instant;

use super::app::roll_back_release;
use super::app::AppLayout;
use super::host::{HostResult, HostRun, StepResult};
use super::lock::{self, Claim, Locked};
use super::peers::{self, Peers};
use super::{Engine, HostFailure};
use crate::checks::{replication, CheckResult, Checks};
use crate::plan::{self, Planned};
use crate::playbook::RoleSteps;
use crate::progress::{Event, StepStatus};
use crate::resolve::Resolved;
use crate::shell::quote;
use crate::steps::PlanCx;
use crate::transport::{Connector, SshTarget, Transport, Unreachable};

/// Everything one server needs, rendered before any connection.
pub struct ProvisionJob {
    pub target: SshTarget,
    pub steps: Vec<Resolved>,
    /// For web servers and load balancers: the end-to-end checks.
    pub checks: Option<Checks>,
    /// A MariaDB replica: its replication is checked.
    pub replica: bool,
    /// Servers run wave after wave (the database primary before its
    /// replicas, the web servers before the load balancers); the servers
    /// of one wave run side by side.
    pub wave: u8,
    /// `deploy`: when a new release fails its checks, the previous one
    /// goes back live.
    pub roll_back: Option<AppLayout>,
    /// The servers reached through this one: a change that reverts by
    /// itself is confirmed through it to each of them too.
    pub behind: Vec<SshTarget>,
}

pub struct ProvisionOptions {
    /// Change nothing; report what would change.
    pub check: bool,
    /// Report a diff of every file that changes.
    pub diff: bool,
    pub break_lock: bool,
    pub claim: Claim,
    pub plan_cx: PlanCx,
}

pub type HostOutcome = Result<(HostResult, Vec<CheckResult>), HostFailure>;

/// Provisions every job's server, at most `engine.forks` at once. Every
/// server connects and reads its facts at once; one that has something to
/// change (or checks to run) waits first until the servers of every
/// earlier wave are done: the database primary before its replicas, the
/// web servers before the load balancers. A failed server does not stop
/// the others (a replica of a failed primary fails on its own). Outcomes
/// come in the order of `jobs`.
pub async fn provision<C: Connector>(
    engine: &Engine<'_, C>,
    jobs: &[ProvisionJob],
    roles: &[RoleSteps],
    opts: &ProvisionOptions,
) -> Vec<HostOutcome> {
    let waves = Waves::new(jobs.iter().map(|j| j.wave));
    let peers = Peers::new(jobs);
    // Started in wave order: a server waiting for an earlier wave never
    // holds a slot that wave needs.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| jobs[i].wave);
    let done = engine
        .fan_out(&order, |&i| {
            let (waves, peers) = (&waves, &peers);
            async move {
                let outcome = provision_host(engine, &jobs[i], roles, opts, waves, peers).await;
                peers.finished(&jobs[i]);
                waves.finished(jobs[i].wave);
                outcome
            }
        })
        .await;
    let mut outcomes: Vec<Option<HostOutcome>> = jobs.iter().map(|_| None).collect();
    for (i, outcome) in order.into_iter().zip(done) {
        outcomes[i] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every job ran"))
        .collect()
}

/// How many servers of each wave are still running.
struct Waves(tokio::sync::watch::Sender<Vec<usize>>);

impl Waves {
    fn new(waves: impl Iterator<Item = u8>) -> Self {
        let mut running = Vec::new();
        for w in waves {
            let w = usize::from(w);
            if running.len() <= w {
                running.resize(w + 1, 0);
            }
            running[w] += 1;
        }
        Self(tokio::sync::watch::Sender::new(running))
    }

    fn finished(&self, wave: u8) {
        self.0
            .send_modify(|running| running[usize::from(wave)] -= 1);
    }

    /// Returns once every server of the waves before `wave` is done.
    async fn before(&self, wave: u8) {
        let mut rx = self.0.subscribe();
        let _ = rx
            .wait_for(|running| running[..usize::from(wave)].iter().all(|&n| n == 0))
            .await;
    }
}

/// Connections that fail before the server lock is taken (nothing has
/// changed yet) are made again this many times in all.
const ATTEMPTS: u32 = 2;

async fn provision_host<C: Connector>(
    engine: &Engine<'_, C>,
    job: &ProvisionJob,
    roles: &[RoleSteps],
    opts: &ProvisionOptions,
    waves: &Waves,
    peers: &Peers,
) -> HostOutcome {
    let host = job.target.name.clone();
    let mut attempt = 1;
    let result = loop {
        let start = Instant::now();
        let transport = match engine.connector.connect(&job.target).await {
            Ok(t) => t,
            Err(e) if attempt < ATTEMPTS && e.transient => {
                retrying(engine, &host, &e, &mut attempt);
                continue;
            }
            Err(e) => break Err(e.into()),
        };
        let run = HostRun {
            transport: &transport,
            out: engine.out,
            secrets: engine.secrets,
            plan_cx: opts.plan_cx,
        };
        run.phase("connect", start);
        let mut locked = false;
        let result = converge(engine, &run, job, roles, opts, waves, peers, &mut locked).await;
        if locked {
            // Best effort: a server that went away keeps a lock that names
            // this run, for --break-lock.
            let _ = run.run(&opts.claim.release_script(), None).await;
        }
        let start = Instant::now();
        transport.close().await;
        engine.out.report(Event::Phase {
            host: host.clone(),
            phase: "close",
            elapsed_ms: start.elapsed().as_millis() as u64,
        });
        match result {
            // Lost before the lock: only facts were read, so reading them
            // again on a new connection is safe.
            Err(HostFailure::Unreachable(e)) if !locked && attempt < ATTEMPTS && e.transient => {
                retrying(engine, &host, &e, &mut attempt);
            }
            result => break result,
        }
    };
    engine.out.report(Event::HostFinished { host });
    result
}

fn retrying<C: Connector>(engine: &Engine<'_, C>, host: &str, e: &Unreachable, attempt: &mut u32) {
    *attempt += 1;
    engine.out.report(Event::Message {
        text: format!(
            "[{host}] {}; connecting again (attempt {attempt} of {ATTEMPTS})",
            e.message
        ),
    });
}

#[allow(clippy::too_many_arguments)]
async fn converge<C: Connector>(
    engine: &Engine<'_, C>,
    run: &HostRun<'_, C::Transport>,
    job: &ProvisionJob,
    roles: &[RoleSteps],
    opts: &ProvisionOptions,
    waves: &Waves,
    peers: &Peers,
    locked: &mut bool,
) -> HostOutcome {
    let start = Instant::now();
    // Facts and the lock's state in one call; the lock is taken only when
    // something is to change, so a no-op stays one round trip.
    let mut facts = run.facts(&Claim::status_script(), &job.steps).await?;
    run.phase("facts", start);
    let start = Instant::now();
    let from_peers = peers.exchange(job, &mut facts).await;
    let mut planned = plan::plan(&job.steps, &facts, &opts.plan_cx);
    run.phase("plan", start);
    let start = Instant::now();
    waves.before(job.wave).await;
    peers.turn(job, &facts, &opts.plan_cx).await;
    if job.wave > 0 {
        run.phase("wait for earlier servers", start);
    }
    let held = lock::held_by(&facts.engine);
    if !opts.check {
        // A live holder is refused; a killed run's lock (or any, with
        // --break-lock) is taken over.
        let take_over = match &held {
            Some(h) if !opts.break_lock => run.take_over(&opts.claim, h).map(|()| true)?,
            Some(_) => true,
            None => false,
        };
        let changes = planned.iter().any(|p| p.change.is_some());
        if changes || !facts.pending_handlers.is_empty() || take_over {
            // Under the lock the facts are read again: another run may
            // have changed the server in between.
            let start = Instant::now();
            facts = run
                .facts(&opts.claim.acquire_script(take_over), &job.steps)
                .await?;
            peers::append(&mut facts, &from_peers);
            if let Some(held) = lock::held_by(&facts.engine) {
                return Err(Locked {
                    host: run.host().to_string(),
                    owner: held.owner,
                }
                .into());
            }
            *locked = true;
            planned = plan::plan(&job.steps, &facts, &opts.plan_cx);
            run.phase("lock", start);
        }
    }
    let mut result = HostResult {
        host: run.host().to_string(),
        ..Default::default()
    };
    run.out.report(Event::HostStarted {
        host: run.host().to_string(),
        steps: planned.len(),
    });
    if opts.diff {
        report_diffs(run, &planned).await?;
    }
    if opts.check {
        report_check_mode(run, &planned, &mut result);
        return Ok((result, Vec::new()));
    }
    let start = Instant::now();
    run.apply(
        &job.steps,
        planned,
        roles,
        &facts.pending_handlers,
        &from_peers,
        &mut result,
    )
    .await?;
    run.phase("apply", start);
    if result.error.is_none() {
        confirm_changes(engine, run, job, &mut result).await;
    }
    if result.error.is_some() {
        return Ok((result, Vec::new()));
    }
    let start = Instant::now();
    let mut checks = match &job.checks {
        Some(c) => c.run(run.transport, run.out, run.secrets).await?,
        None => Vec::new(),
    };
    if job.replica {
        checks.push(replication::check(run.transport, run.out).await?);
    }
    run.phase("checks", start);
    let released = result
        .steps
        .iter()
        .any(|s| s.kind == "release" && s.status == StepStatus::Changed);
    if let (Some(layout), true) = (&job.roll_back, released) {
        if checks.iter().any(|c| !c.passed) {
            result.rolled_back_to = roll_back_release(run, &layout.root, &layout.unit).await?;
            if let Some(c) = &job.checks {
                checks.extend(c.run(run.transport, run.out, run.secrets).await?);
            }
        }
    }
    Ok((result, checks))
}

/// A unified diff of every file that would change, secrets masked.
async fn report_diffs<T: Transport>(
    run: &HostRun<'_, T>,
    planned: &[Planned<'_>],
) -> Result<(), HostFailure> {
    for p in planned {
        let Some((path, content)) = p.change.as_ref().and_then(|c| c.new_file()) else {
            continue;
        };
        // Read unreported: the server's copy may hold a secret's old value,
        // which redact_pair masks and redact would not.
        let old = run
            .transport
            .run(&format!("cat {} 2>/dev/null || true", quote(path)), None)
            .await?;
        let (old, new) = run
            .secrets
            .redact_pair(&old.stdout_text(), &String::from_utf8_lossy(content));
        let diff = similar::TextDiff::from_lines(old.as_str(), new.as_str())
            .unified_diff()
            .context_radius(3)
            .header(&format!("{path} (server)"), &format!("{path} (foobar)"))
            .to_string();
        run.out.report(Event::Diff {
            host: run.host().to_string(),
            path: path.to_string(),
            diff,
        });
    }
    Ok(())
}

fn report_check_mode<T: Transport>(
    run: &HostRun<'_, T>,
    planned: &[Planned<'_>],
    result: &mut HostResult,
) {
    for p in planned {
        let (status, detail) = match &p.change {
            Some(c) => (StepStatus::Changed, Some(format!("would {}", c.describe()))),
            None => (StepStatus::Ok, None),
        };
        run.out.report(Event::StepFinished {
            host: run.host().to_string(),
            step: p.step.label.clone(),
            status,
            detail: detail.clone(),
        });
        result.steps.push(StepResult::new(
            p.step.role,
            &p.step.label,
            status,
            detail,
            0,
        ));
    }
}

/// The end-to-end checks of one server on a connection of their own (a
/// failed check shows the server's logs): for checks that wait for a
/// later phase, the certificate.
pub async fn run_checks<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
    checks: &Checks,
) -> Result<Vec<CheckResult>, HostFailure> {
    let transport = engine.connector.connect(target).await?;
    let found = checks.run(&transport, engine.out, engine.secrets).await;
    transport.close().await;
    Ok(found?)
}

/// Fresh connections through the job's server to each server behind it.
async fn reach_behind<C: Connector>(
    engine: &Engine<'_, C>,
    job: &ProvisionJob,
) -> Result<(), String> {
    for target in &job.behind {
        let fresh = engine
            .connector
            .connect(&target.fresh())
            .await
            .map_err(|e| format!("{} through this server: {}", target.name, e.message))?;
        fresh.close().await;
    }
    Ok(())
}

/// Confirms the changes that revert by themselves (a firewall) over a
/// fresh SSH connection: one that the new rules let through. When none
/// can be made, the change is not confirmed and reverts on its own.
async fn confirm_changes<C: Connector>(
    engine: &Engine<'_, C>,
    run: &HostRun<'_, C::Transport>,
    job: &ProvisionJob,
    result: &mut HostResult,
) {
    for (role, label, script) in std::mem::take(&mut result.to_confirm) {
        let start = Instant::now();
        let step = format!("confirm {label}");
        run.out.report(Event::StepStarted {
            host: run.host().to_string(),
            step: step.clone(),
        });
        let confirmed = match engine.connector.connect(&job.target.fresh()).await {
            Ok(fresh) => {
                // A jump host's change is confirmed only once every server
                // behind it is reached through it as well.
                let out = match reach_behind(engine, job).await {
                    Ok(()) => fresh.run(&script, None).await.map_err(|e| e.message),
                    Err(why) => Err(why),
                };
                fresh.close().await;
                match out {
                    Ok(o) if o.success() => Ok(()),
                    Ok(o) => Err(o.stderr_text()),
                    Err(why) => Err(why),
                }
            }
            Err(e) => Err(e.message),
        };
        let how = if job.behind.is_empty() {
            "confirmed over a fresh SSH connection".to_string()
        } else {
            let names: Vec<&str> = job.behind.iter().map(|t| t.name.as_str()).collect();
            format!(
                "confirmed over a fresh SSH connection, and through it to {}",
                names.join(", ")
            )
        };
        let (status, detail) = match confirmed {
            Ok(()) => (StepStatus::Changed, Some(how)),
            Err(why) => (
                StepStatus::Failed,
                Some(format!(
                    "not confirmed: a fresh SSH connection failed ({why}); the change reverts by itself"
                )),
            ),
        };
        run.finish(result, role, &step, status, detail, start);
        if status == StepStatus::Failed {
            return;
        }
    }
}
