//! `db_cluster`: a member of a MariaDB Galera cluster (three or more
//! servers). Every member takes writes and holds all the data; the app
//! reaches one writer at a time through HAProxy on the load balancers,
//! which asks each member's clustercheck whether it is Synced (or
//! donating a state transfer, which does not stop it serving).

use super::{AfterRestart, Call, Opening, Part, Recipe, RestartMethod, Role, ServerRole, Site};
use crate::shell::quote;

pub const NAME: &str = "db_cluster";
/// Galera's group communication, incremental and full state transfers.
pub const CLUSTER_PORTS: [u16; 3] = [4567, 4568, 4444];
/// Where clustercheck answers HAProxy (templates/systemd/foobar-clustercheck.socket.j2).
pub const CHECK_PORT: u16 = 9200;
const CHECK_UNIT: &str = "foobar-clustercheck.socket";

pub struct DbCluster;

/// Restarts a member; one alone in its primary component (the others
/// down) starts a new one from its own data instead of waiting for them.
/// Then waits until it is Synced again.
pub fn rejoin_script(unit: &str) -> String {
    let unit = quote(unit);
    format!(
        "alone=$(mariadb -N -B -e \"SELECT COUNT(*) FROM information_schema.GLOBAL_STATUS WHERE (VARIABLE_NAME = 'WSREP_CLUSTER_SIZE' AND VARIABLE_VALUE = '1') OR (VARIABLE_NAME = 'WSREP_CLUSTER_STATUS' AND VARIABLE_VALUE = 'Primary')\" 2>/dev/null || true)\n\
         if [ \"$alone\" = 2 ]; then galera_new_cluster {unit} >&2; else systemctl restart {unit} >&2; fi || {{ journalctl -u {unit} -n 20 --no-pager >&2; exit 1; }}\n\
         {}",
        SYNCED_WAIT
    )
}

/// Waits until this member is Synced and ready for clients: its unit
/// reports started while a joiner may still apply the writes it missed
/// (clients get "WSREP has not yet prepared node", error 1047).
pub const SYNCED_WAIT: &str = "i=0; until [ \"$(mariadb -N -B -e \"SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR ' ') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE_COMMENT', 'WSREP_READY')\" 2>/dev/null)\" = 'Synced ON' ]; do\n\
     \x20 i=$((i + 1)); [ $i -lt 600 ] || { echo 'the member is not Synced and ready after 300 s' >&2; exit 1; }; sleep 0.5\n\
     done\n";

impl ServerRole for DbCluster {
    fn name(&self) -> &'static str {
        NAME
    }
    fn group(&self) -> &'static str {
        super::db::NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec!["mariadb", CHECK_UNIT]
    }
    /// One member at a time, out of the load balancers' pool while it
    /// restarts; the others keep the site writing. Its health check's
    /// listener restarts in a blink (HAProxy's next check finds it).
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        if unit == CHECK_UNIT {
            return Recipe {
                method: RestartMethod::Restart,
                how: "restart (HAProxy's next check finds it)",
                script: format!("systemctl restart {}\n", quote(unit)),
                after: AfterRestart::Checks,
            };
        }
        Recipe {
            method: RestartMethod::Drain,
            how: "out of HAProxy, restart, Synced, back in",
            script: rejoin_script(unit),
            after: AfterRestart::Checks,
        }
    }
    /// Last in `restart all`: its members roll one at a time.
    fn restart_order(&self) -> u8 {
        8
    }
    /// Clients through HAProxy on the load balancers (and its check);
    /// the cluster's own traffic from the other members only.
    fn ports(&self, site: &dyn Site, server: &str) -> Vec<Opening> {
        let lbs = site.addresses_of(Role::Lb, server);
        let members = site.addresses_of(Role::DbCluster, server);
        let mut open = vec![
            Opening {
                port: 3306,
                protocol: "tcp",
                from: Some(lbs.clone()),
            },
            Opening {
                port: CHECK_PORT,
                protocol: "tcp",
                from: Some(lbs),
            },
        ];
        open.extend(CLUSTER_PORTS.iter().map(|&port| Opening {
            port,
            protocol: "tcp",
            from: Some(members.clone()),
        }));
        open
    }
    /// Every member replicates to every other (Galera).
    fn diagram(&self, site: &dyn Site, server: &str) -> Vec<Part> {
        let others = site.names_of(Role::DbCluster, server);
        vec![Part::new(
            super::db::PART,
            format!(
                "Galera member with {} (database `{}`), :3306 from the load balancers only",
                others.join(", "),
                site.database()
            ),
        )
        .calling(vec![Call::to(
            super::db::PART,
            others,
            "Galera replication",
        )])]
    }
    fn excludes(&self) -> &'static [(Role, &'static str)] {
        &[
            (
                Role::Db,
                "a server is either the primary (db) or a cluster member (db_cluster), not both",
            ),
            (
                Role::DbReplica,
                "a cluster member holds every write already; give the replica a server of its own",
            ),
            (
                Role::Lb,
                "the lb role serves the cluster on port 3306 itself; put cluster members on servers of their own",
            ),
        ]
    }
}
