//! Restarts for maintenance windows, one server: each service by its
//! role's recipe (the least disruptive way there is), then the same
//! end-to-end checks as provision; a failing app check rolls the release
//! back. The order over many servers is `rolling.rs`'s.

use std::time::Instant;

use serde::Serialize;

use super::app::roll_back_release;
use super::host::HostRun;
use super::lock::Claim;
use super::{Engine, HostFailure};
use crate::checks::{dns, CheckResult, Checks};
use crate::inventory::{Loaded, Role, Server};
use crate::progress::{Event, StepStatus};
pub use crate::roles::RestartMethod;
use crate::roles::{AfterRestart, Recipe};
use crate::steps::PlanCx;
use crate::transport::{Connector, SshTarget, Transport, Unreachable};

/// One server's services to restart, in order.
pub struct RestartJob<'a> {
    pub server: &'a Server,
    pub target: SshTarget,
    pub services: Vec<(Role, String)>,
    pub checks: Option<Checks>,
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

pub(super) async fn restart_host<C: Connector>(
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
            rebuild: false,
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
        let ip = job
            .server
            .record_ip()
            .expect("load checks that nameservers have IPs");
        let (verdict, _) = dns::ask(
            (ip, 53).into(),
            dns::ServerKind::Authoritative,
            &fqdn,
            &dns::Expected::address(expected),
            dns::NAMESERVER_TIMEOUT,
        )
        .await;
        return Ok(match verdict {
            dns::Verdict::Match => (Vec::new(), None),
            dns::Verdict::Mismatch(why) | dns::Verdict::Unreachable(why) => (
                Vec::new(),
                Some(format!("DNS check of {fqdn} failed: {why}")),
            ),
        });
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
