//! `db`: the MariaDB primary, the database the app reads and writes.

use super::{
    maintenance_up, restart_mariadb, AfterRestart, Opening, Part, Recipe, RestartMethod, Role,
    ServerRole, Site, RESTART_FLAG,
};
use crate::shell::quote;

pub const NAME: &str = "db";
/// Its part in the diagram, which the app's part calls.
pub const PART: &str = "MySQL (MariaDB)";

pub struct Db;

impl ServerRole for Db {
    fn name(&self) -> &'static str {
        NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec!["mariadb"]
    }
    /// A real restart; meanwhile nginx serves the maintenance page for
    /// dynamic requests, and static files as ever.
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        Recipe {
            method: RestartMethod::RestartBehindMaintenancePage,
            how: "restart behind the maintenance page",
            script: format!(
                "{up}{restart}rm -f {flag}\n",
                up = maintenance_up(),
                restart = restart_mariadb(
                    unit,
                    "the database did not answer within 30 s; the maintenance page stays"
                ),
                flag = quote(RESTART_FLAG),
            ),
            after: AfterRestart::Checks,
        }
    }
    fn restart_order(&self) -> u8 {
        4
    }
    /// The app servers and replicas elsewhere reach it on 3306.
    fn ports(&self, site: &dyn Site, server: &str) -> Vec<Opening> {
        if !site.db_networked() {
            return Vec::new();
        }
        let mut from = site.addresses_of(Role::App, server);
        from.extend(site.addresses_of(Role::DbReplica, server));
        vec![Opening {
            port: 3306,
            protocol: "tcp",
            from: Some(from),
        }]
    }
    fn diagram(&self, site: &dyn Site, _: &str) -> Vec<Part> {
        let database = site.database();
        vec![Part::new(
            PART,
            if site.db_networked() {
                format!(
                    "database `{database}` (primary), :3306 from the app servers and replicas only"
                )
            } else {
                format!("database `{database}`, localhost:3306 only")
            },
        )]
    }
    fn excludes(&self) -> &'static [(Role, &'static str)] {
        &[(
            Role::DbReplica,
            "the db and db_replica roles cannot share a server: a replica copies the primary from another server",
        )]
    }
}
