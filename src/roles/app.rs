//! `app`: the application server of the inventory's `app.kind`, running
//! the live release.

use super::{AfterRestart, Call, Part, Recipe, RestartMethod, Role, ServerRole, Site};
use crate::shell::quote;

pub const NAME: &str = "app";
/// Its part in the diagram that holds the uploads the backup server copies.
pub const CODE_BASE: &str = "code base";

pub struct App;

/// The unit of one of the app's processes (`app.processes`).
pub fn process_unit(name: &str) -> String {
    format!("foobar-app-{name}.service")
}

/// A scheduled job's units (`app.schedule`), without their suffix: the
/// `.service` that runs it, the `.timer` that starts it.
pub fn job_units(name: &str) -> String {
    format!("foobar-job-{name}")
}

/// The units of `process_unit` and `job_units`, as shell patterns: those
/// foobar wrote, the ones no longer in the inventory among them.
pub const PROCESS_UNITS: &str = "foobar-app-*.service";
pub const JOB_UNITS: [&str; 2] = ["foobar-job-*.service", "foobar-job-*.timer"];

/// Restarts the app's processes that run: after `current` has moved (a
/// rollback) they start on the release it points at now; with the app
/// server's own restart (`restart app`) they come back with it.
pub const RESTART_PROCESSES: &str = "systemctl try-restart 'foobar-app-*.service'";

impl ServerRole for App {
    fn name(&self) -> &'static str {
        NAME
    }
    fn units(&self, site: &dyn Site) -> Vec<&'static str> {
        vec![site.app_kind().unit()]
    }
    fn restart(&self, site: &dyn Site, unit: &str) -> Recipe {
        let reload = site.app_kind().server().reload();
        Recipe {
            method: if reload.phased {
                RestartMethod::PhasedRestart
            } else {
                RestartMethod::GracefulReload
            },
            how: reload.how,
            // The app's processes (workers, a clock) are the app too.
            script: format!("systemctl reload {} && {RESTART_PROCESSES}", quote(unit)),
            after: AfterRestart::ChecksElseRollBack,
        }
    }
    fn restart_order(&self) -> u8 {
        2
    }
    /// The release command (a migration) needs the database, and runs
    /// before any other app server runs the new code.
    fn wave(&self, site: &dyn Site, server: &str) -> u8 {
        if site.db_primary() == server {
            0
        } else if site.is_release_server(server) {
            1
        } else {
            2
        }
    }
    /// The app server, which calls the database, and the live code base.
    fn diagram(&self, site: &dyn Site, _: &str) -> Vec<Part> {
        let kind = site.app_kind().server();
        let database = match site.cluster_address() {
            // A Galera cluster, through HAProxy on the load balancers: at
            // their floating address, or at the first one's.
            Some(address) => {
                let mut lbs = site.names_of(Role::Lb, "");
                let floating = site.floating_address().is_some();
                if !floating {
                    lbs.truncate(1);
                }
                Call {
                    via: floating.then_some(address),
                    ..Call::to(super::lb::DB_PART, lbs, "TCP :3306")
                }
            }
            None => Call::to(
                super::db::PART,
                vec![site.db_primary()],
                if site.db_networked() {
                    "TCP :3306"
                } else {
                    "localhost:3306"
                },
            ),
        };
        vec![
            Part::new(
                kind.label(),
                format!("application server ({}), runs the code base", kind.hop()),
            )
            .calling(vec![database]),
            Part::new(
                CODE_BASE,
                format!("{}/current: the live release", site.app_root()),
            ),
        ]
    }
    fn requires(&self) -> &'static [(Role, &'static str)] {
        &[(
            Role::Web,
            "the web and app roles run together (nginx reaches the app by a unix socket); give it both",
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patterns find the units the names make, and not the app
    /// server's own (foobar-app.service).
    #[test]
    fn the_unit_patterns_match_the_units_names() {
        let glob = |pattern: &str, name: &str| {
            let (head, tail) = pattern.split_once('*').unwrap();
            name.len() > head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        };
        assert!(glob(PROCESS_UNITS, &process_unit("worker")));
        assert!(!glob(PROCESS_UNITS, "foobar-app.service"));
        assert!(glob(JOB_UNITS[0], &format!("{}.service", job_units("cleanup"))));
        assert!(glob(JOB_UNITS[1], &format!("{}.timer", job_units("cleanup"))));
        assert!(RESTART_PROCESSES.contains(&format!("'{PROCESS_UNITS}'")));
    }
}
