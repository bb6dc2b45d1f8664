//! `db_replica`: a MariaDB replica of the primary (GTID replication, read
//! only), for reports and as a copy; the app does not use it.

use super::{restart_mariadb, AfterRestart, Call, Part, Recipe, RestartMethod, ServerRole, Site};

pub const NAME: &str = "db_replica";

pub struct DbReplica;

impl ServerRole for DbReplica {
    fn name(&self) -> &'static str {
        NAME
    }
    fn group(&self) -> &'static str {
        super::db::NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec!["mariadb"]
    }
    /// Replication catches up after the restart.
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        Recipe {
            method: RestartMethod::Restart,
            how: "restart (the app does not use replicas)",
            script: restart_mariadb(unit, "the replica did not answer within 30 s"),
            after: AfterRestart::Checks,
        }
    }
    fn restart_order(&self) -> u8 {
        3
    }
    /// It connects to the primary and reads its binary log.
    fn diagram(&self, site: &dyn Site, _: &str) -> Vec<Part> {
        let primary = site.db_primary();
        vec![Part::new(
            "MariaDB replica",
            format!("read-only copy of {primary} (GTID replication)"),
        )
        .calling(vec![Call::to(
            super::db::PART,
            vec![primary],
            "replication: reads the binary log",
        )])]
    }
    /// It copies the primary.
    fn wave(&self, _: &dyn Site, _: &str) -> u8 {
        1
    }
}
