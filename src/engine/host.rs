//! One server's run: facts, the lock, applying a plan step by step, and
//! each role's handlers. Stops at the first failure; handlers notified so
//! far stay recorded on the server for the next run.

use std::time::Instant;

use serde::Serialize;

use super::lock::{self, Claim, Locked};
use super::HostFailure;
use crate::facts::{self, Facts};
use crate::plan::{self, Planned};
use crate::playbook::Scope;
use crate::playbook::{Handler, HandlerAction, RoleSteps};
use crate::progress::{Event, Reporter, StepStatus};
use crate::resolve::Resolved;
use crate::secrets::Secrets;
use crate::shell::quote;
use crate::steps::{backup_dir, PlanCx, PENDING_HANDLERS, VALIDATION_FAILED};
use crate::transport::{Output, Transport, Unreachable};

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub role: Scope,
    /// For people: `template /etc/nginx/...`, `handler: reload nginx`.
    pub step: String,
    /// For scripts: the step kind (`template`), or `handler`.
    pub kind: String,
    /// For scripts: what the step is about (`/etc/nginx/...`, `reload nginx`).
    pub target: String,
    pub status: StepStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub elapsed_ms: u64,
}

impl StepResult {
    /// A result for the step labelled `label` (`<kind> <target>`).
    pub fn new(
        role: Scope,
        label: &str,
        status: StepStatus,
        detail: Option<String>,
        elapsed_ms: u64,
    ) -> Self {
        let (kind, target) = label.split_once(' ').unwrap_or((label, ""));
        Self {
            role,
            step: label.to_string(),
            kind: kind.trim_end_matches(':').to_string(),
            target: target.to_string(),
            status,
            detail,
            elapsed_ms,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostResult {
    pub host: String,
    pub steps: Vec<StepResult>,
    /// Why the host stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The release made live again after the new one failed its checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<String>,
    /// Changes that revert by themselves unless confirmed over a fresh
    /// connection: (role, step label, confirming script).
    #[serde(skip)]
    pub to_confirm: Vec<(Scope, String, String)>,
}

impl HostResult {
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
}

/// What the engine needs to drive one server.
pub struct HostRun<'a, T: Transport> {
    pub transport: &'a T,
    pub out: &'a dyn Reporter,
    pub secrets: &'a Secrets,
    pub plan_cx: PlanCx,
}

impl<T: Transport> HostRun<'_, T> {
    pub fn host(&self) -> &str {
        self.transport.host()
    }

    /// Runs a script, reporting the command first (for -v).
    pub async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, Unreachable> {
        self.out.report(Event::Command {
            host: self.host().to_string(),
            command: self.secrets.redact(script),
        });
        let out = self.transport.run(script, stdin).await?;
        self.out.report(Event::CommandOutput {
            host: self.host().to_string(),
            code: out.code,
            stdout: self.secrets.redact(&out.stdout_text()),
            stderr: self.secrets.redact(&out.stderr_text()),
        });
        Ok(out)
    }

    /// Reports how long a phase took (shown with -v).
    pub fn phase(&self, phase: &'static str, since: Instant) {
        self.out.report(Event::Phase {
            host: self.host().to_string(),
            phase,
            elapsed_ms: since.elapsed().as_millis() as u64,
        });
    }

    /// Runs `prefix` and the fact script of `steps` in one call.
    pub async fn facts(&self, prefix: &str, steps: &[Resolved]) -> Result<Facts, Unreachable> {
        let out = self
            .run(&format!("{prefix}{}", facts::script(steps)), None)
            .await?;
        Ok(facts::parse(&out.stdout_text(), steps.len()))
    }

    /// Takes the server lock, then runs `then` in the same call; returns
    /// its output. A lock left by a run of this machine that is gone (a
    /// killed run) is taken over, and said so.
    pub async fn lock_then(
        &self,
        claim: &Claim,
        break_lock: bool,
        then: &str,
    ) -> Result<String, HostFailure> {
        let out = self
            .run(&format!("{}{then}", claim.acquire_script(break_lock)), None)
            .await?;
        let Some(held) = lock::held_by(&out.stdout_text()) else {
            return Ok(out.stdout_text());
        };
        self.take_over(claim, &held)?;
        let out = self
            .run(&format!("{}{then}", claim.acquire_script(true)), None)
            .await?;
        Ok(out.stdout_text())
    }

    /// Refuses a lock held by a live run; says so when taking over the lock
    /// of a run of this machine that is gone.
    pub fn take_over(&self, claim: &Claim, held: &lock::Held) -> Result<(), Locked> {
        if !held.is_stale_here(claim) {
            return Err(Locked {
                host: self.host().to_string(),
                owner: held.owner.clone(),
            });
        }
        self.out.report(Event::Message {
            text: format!(
                "[{}] taking over the lock left by a run that is gone ({})",
                self.host(),
                held.owner
            ),
        });
        Ok(())
    }

    /// Applies the plan role block by role block, each block's handlers
    /// after it. Returns at the first failure, recorded in `result`.
    /// `from_peers`: the lines of peer groups' facts, by step, added to
    /// facts read again.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply<'s>(
        &self,
        steps: &'s [Resolved],
        mut planned: Vec<Planned<'s>>,
        roles: &[RoleSteps],
        pending: &[String],
        from_peers: &[(usize, String)],
        result: &mut HostResult,
    ) -> Result<(), Unreachable> {
        for (block, role) in roles.iter().enumerate() {
            // A block whose `when` is false for this server resolved no
            // steps; its handlers are not this server's either.
            if !planned.iter().any(|p| p.step.block == block) {
                continue;
            }
            for i in 0..planned.len() {
                if planned[i].step.block != block {
                    continue;
                }
                let start = Instant::now();
                let step = planned[i].step;
                self.started(&step.label);
                let (status, detail, refresh) = match &planned[i].change {
                    None => (StepStatus::Ok, None, false),
                    Some(change) => {
                        let script = change.script();
                        let out = self.run(&script.text, script.stdin.as_deref()).await?;
                        if out.success() {
                            if let Some(confirm) = change.confirm() {
                                result
                                    .to_confirm
                                    .push((role.role, step.label.clone(), confirm));
                            }
                            let refresh = change.refreshes_facts();
                            (StepStatus::Changed, Some(change.describe()), refresh)
                        } else {
                            (StepStatus::Failed, Some(self.failure(&out)), false)
                        }
                    }
                };
                self.finish(result, role.role, &step.label, status, detail, start);
                if status == StepStatus::Failed {
                    return Ok(());
                }
                if refresh {
                    let rest = &steps[i + 1..];
                    let mut fresh = self.facts("", rest).await?;
                    for (step, lines) in from_peers.iter().filter(|(step, _)| *step > i) {
                        fresh.steps[step - i - 1].push_str(lines);
                    }
                    let replanned = plan::plan(rest, &fresh, &self.plan_cx);
                    for (slot, fresh) in planned[i + 1..].iter_mut().zip(replanned) {
                        *slot = fresh;
                    }
                }
            }
            for plan::HandlerRun { handler: h, signal } in
                plan::handlers_for(&planned, &role.handlers, role.role, pending)
            {
                let start = Instant::now();
                let label = format!("handler: {}", h.name);
                self.started(&label);
                let out = self.run(&handler_script(h, signal), None).await?;
                let (status, detail) = if out.success() {
                    (StepStatus::Changed, None)
                } else {
                    (StepStatus::Failed, Some(self.failure(&out)))
                };
                self.finish(result, role.role, &label, status, detail, start);
                if status == StepStatus::Failed {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn started(&self, label: &str) {
        self.out.report(Event::StepStarted {
            host: self.host().to_string(),
            step: label.to_string(),
        });
    }

    fn failure(&self, out: &Output) -> String {
        let why = if out.code == VALIDATION_FAILED {
            "validation failed, the previous file is kept"
        } else {
            "failed"
        };
        let err = self.secrets.redact(&out.stderr_text());
        format!("{why} (exit {}): {err}", out.code)
    }

    /// Reports a finished step and records it.
    pub fn finish(
        &self,
        result: &mut HostResult,
        role: Scope,
        label: &str,
        status: StepStatus,
        detail: Option<String>,
        start: Instant,
    ) {
        self.out.report(Event::StepFinished {
            host: self.host().to_string(),
            step: label.to_string(),
            status,
            detail: detail.clone(),
        });
        if status == StepStatus::Failed {
            result.error = Some(format!("{label}: {}", detail.clone().unwrap_or_default()));
        }
        result.steps.push(StepResult::new(
            role,
            label,
            status,
            detail,
            start.elapsed().as_millis() as u64,
        ));
    }
}

/// Runs a handler. When the service does not come back, what it watches
/// is put back as it was before this change (configs, the `current`
/// release), the service is started again, and the step fails with the
/// service's log lines. On success the backups are dropped.
/// `signal` false: the service was just (re)started; only check it runs.
pub fn handler_script(h: &Handler, signal: bool) -> String {
    let verb = match h.action {
        HandlerAction::Reload => "reload-or-restart",
        HandlerAction::Restart => "restart",
        HandlerAction::Rejoin => "rejoin",
    };
    let act = match h.action {
        _ if !signal => ": it has just started".to_string(),
        HandlerAction::Rejoin => format!("(\n{})", crate::roles::rejoin_script(&h.service)),
        _ => format!("systemctl {verb} \"$svc\" >&2"),
    };
    let settle = if h.reload_waits && h.action == HandlerAction::Reload && signal {
        ""
    } else {
        "sleep 0.3 && "
    };
    format!(
        r#"svc={s}
bk={bk}
done_pending() {{ if [ -f {f} ]; then grep -vxF {h} {f} > {f}.tmp || true; mv -f {f}.tmp {f}; fi; }}
if {act} && {settle}systemctl is-active --quiet "$svc"; then
  rm -rf "$bk"
  done_pending
  exit 0
fi
echo "$svc did not come back after {verb}; its log:" >&2
journalctl -u "$svc" -n 20 --no-pager >&2
if [ -d "$bk" ]; then
  for b in "$bk"/* "$bk"/.[!.]*; do
    [ -e "$b" ] || [ -L "$b" ] || continue
    name=$(basename "$b")
    case "$name" in
      *.absent) rm -f "$(printf %s "${{name%.absent}}" | tr % /)" ;;
      *) mv -f "$b" "$(printf %s "$name" | tr % /)" ;;
    esac
  done
  rm -rf "$bk"
  systemctl daemon-reload
  if systemctl restart "$svc" >&2 && sleep 0.3 && systemctl is-active --quiet "$svc"; then
    echo "restored what changed; $svc runs again on the previous version" >&2
    done_pending
  else
    echo "restored what changed, but $svc still does not start" >&2
  fi
fi
exit 1
"#,
        s = quote(&h.service),
        h = quote(&h.name),
        bk = quote(&backup_dir(&h.name)),
        f = PENDING_HANDLERS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_restore_backups_when_the_service_does_not_come_back() {
        let h = handler_script(
            &Handler {
                name: "restart mariadb".into(),
                service: "mariadb".into(),
                action: HandlerAction::Restart,
                reload_waits: false,
            },
            true,
        );
        assert!(
            h.contains("bk=/var/lib/foobar/backup/restart_mariadb"),
            "{h}"
        );
        assert!(h.contains("journalctl -u \"$svc\""));
    }

    #[test]
    fn a_reload_that_waits_for_the_service_is_not_followed_by_a_pause() {
        let mut h = Handler {
            name: "reload app".into(),
            service: "foobar-app".into(),
            action: HandlerAction::Reload,
            reload_waits: true,
        };
        assert!(handler_script(&h, true)
            .contains("if systemctl reload-or-restart \"$svc\" >&2 && systemctl is-active"));
        h.reload_waits = false;
        assert!(handler_script(&h, true).contains(">&2 && sleep 0.3 && systemctl is-active"));
    }
}
