//! `app`: the application server of the inventory's `app.kind`, running
//! the live release.

use super::{AfterRestart, Part, Recipe, RestartMethod, Role, ServerRole, Site};
use crate::shell::quote;

pub const NAME: &str = "app";

pub struct App;

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
            script: format!("systemctl reload {}", quote(unit)),
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
    /// The app server, the live code base, and where the database is.
    fn diagram(&self, site: &dyn Site, server: &str) -> Vec<Part> {
        let kind = site.app_kind().server();
        let primary = site.db_primary();
        let database = (primary == server).then(|| {
            let how = if site.db_networked() {
                "TCP :3306"
            } else {
                "localhost:3306"
            };
            (super::db::PART.to_string(), how)
        });
        let mut parts = vec![
            Part {
                calls: database.clone(),
                ..Part::new(
                    kind.label(),
                    format!("application server ({}), runs the code base", kind.hop()),
                )
            },
            Part::new(
                "code base",
                format!("{}/current: the live release", site.app_root()),
            ),
        ];
        if database.is_none() {
            let members = site.names_of(Role::DbCluster, "");
            parts.push(Part::new(
                "to MySQL",
                if members.is_empty() {
                    format!("the app uses the primary at {primary}:3306")
                } else {
                    format!(
                        "the app uses the Galera cluster ({}) through HAProxy at {}:3306",
                        members.join(", "),
                        site.cluster_address()
                            .map_or_else(|| "the load balancers".to_string(), |a| a.to_string())
                    )
                },
            ));
        }
        parts
    }
    fn requires(&self) -> &'static [(Role, &'static str)] {
        &[(
            Role::Web,
            "the web and app roles run together (nginx reaches the app by a unix socket); give it both",
        )]
    }
}
