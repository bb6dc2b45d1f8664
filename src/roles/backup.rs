//! `backup`: the server that holds the site's backups, in a restic
//! repository (encrypted, deduplicated, forgotten by the inventory's
//! retention). It pulls: on its own timer it logs in to the database
//! server (and the first app server, for the uploads) with a key of its
//! own that those servers allow one forced command only, so none of them
//! holds a way to reach, let alone rewrite, the backups.

use super::{AfterRestart, Call, Part, Recipe, RestartMethod, Role, ServerRole, Site};

pub const NAME: &str = "backup";

/// The timer that takes a backup every `backup.every_minutes`.
pub const TIMER: &str = "foobar-backup.timer";
/// The service that streams the database's binary log here.
pub const STREAM: &str = "foobar-binlog";

pub struct Backup;

impl ServerRole for Backup {
    fn name(&self) -> &'static str {
        NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec![TIMER, STREAM]
    }
    /// Neither holds state: the timer starts counting again, the stream
    /// goes on from the last transaction it received.
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        Recipe {
            method: RestartMethod::Restart,
            how: "restart (the backup job is a unit of its own; the stream goes on where it stopped)",
            script: format!("systemctl restart {}", crate::shell::quote(unit)),
            after: AfterRestart::Checks,
        }
    }
    fn restart_order(&self) -> u8 {
        9
    }
    /// It reads what the servers it backs up hold once they hold it.
    fn wave(&self, _: &dyn Site, _: &str) -> u8 {
        2
    }
    /// It logs in to the servers it backs up and pulls.
    fn diagram(&self, site: &dyn Site, _: &str) -> Vec<Part> {
        let calls = [
            site.backup_db_source()
                .map(|db| Call::to(super::db::PART, vec![db], "SSH: mariadb-backup")),
            site.backup_files_source()
                .map(|app| Call::to(super::app::CODE_BASE, vec![app], "SSH: uploads")),
        ]
        .into_iter()
        .flatten()
        .collect();
        vec![Part::new(
            "restic",
            "encrypted backups of the database and the uploads, pulled over SSH".into(),
        )
        .calling(calls)]
    }
    fn excludes(&self) -> &'static [(Role, &'static str)] {
        const SAME_DISK: &str =
            "a backup on the server it backs up is lost with it: put the backup role on a server of its own";
        &[
            (Role::Db, SAME_DISK),
            (Role::DbCluster, SAME_DISK),
            (Role::DbReplica, SAME_DISK),
            (Role::App, SAME_DISK),
        ]
    }
}
