//! The plan: what must change, computed from the resolved steps and the
//! gathered facts by each step kind's rule. Pure: no I/O, so check mode
//! and diffs come for free.

use std::collections::BTreeSet;

use crate::facts::Facts;
use crate::playbook::Scope;
use crate::playbook::{Handler, HandlerAction};
use crate::resolve::Resolved;
use crate::steps::{Change, PlanCx};

/// One step and what it needs; `change` is None when it is already so.
pub struct Planned<'a> {
    pub step: &'a Resolved,
    pub change: Option<Box<dyn Change + 'a>>,
}

/// Plans every step from its section of the facts.
pub fn plan<'a>(steps: &'a [Resolved], facts: &Facts, cx: &PlanCx) -> Vec<Planned<'a>> {
    steps
        .iter()
        .zip(&facts.steps)
        .map(|(step, fact)| Planned {
            step,
            change: step.step.plan(fact, cx),
        })
        .collect()
}

/// A handler to run, and whether it signals its service: a reload is
/// not sent when the same service is restarted by another handler or was
/// started by a step of this run. It runs what is on the server already,
/// and a reload during its start-up could kill it (a signal that arrives
/// before its handler is installed); the handler still checks that the
/// service runs and clears its pending mark.
pub struct HandlerRun<'h> {
    pub handler: &'h Handler,
    pub signal: bool,
}

/// Handlers to run for one role: those notified by its changes, and those
/// left pending on the server by an earlier run, in the playbook's order.
pub fn handlers_for<'h>(
    planned: &[Planned],
    role_handlers: &'h [Handler],
    role: Scope,
    pending: &[String],
) -> Vec<HandlerRun<'h>> {
    let notified: BTreeSet<&str> = planned
        .iter()
        .filter(|p| p.step.role == role && p.change.is_some())
        .filter_map(|p| p.step.notify.as_deref())
        .chain(pending.iter().map(String::as_str))
        .collect();
    let chosen: Vec<&Handler> = role_handlers
        .iter()
        .filter(|h| notified.contains(h.name.as_str()))
        .collect();
    let started: BTreeSet<&str> = planned
        .iter()
        .filter_map(|p| p.change.as_ref()?.started_service())
        .collect();
    let restarted: BTreeSet<&str> = chosen
        .iter()
        .filter(|h| h.action != HandlerAction::Reload)
        .map(|h| h.service.as_str())
        .collect();
    chosen
        .into_iter()
        .map(|handler| {
            let service = handler.service.as_str();
            let signal = match handler.action {
                HandlerAction::Restart => true,
                // A member the galera step just started runs its config.
                HandlerAction::Rejoin => !started.contains(service),
                HandlerAction::Reload => !started.contains(service) && !restarted.contains(service),
            };
            HandlerRun { handler, signal }
        })
        .collect()
}

/// Today's date in UTC as `YYYYMMDD`, for SOA serials.
pub fn today() -> u32 {
    let d = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    (d.year() as u32) * 10_000 + (d.month() as u32) * 100 + d.day() as u32
}
