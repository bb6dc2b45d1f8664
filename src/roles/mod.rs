//! Server roles. Each role is one module behind [`ServerRole`]: its name in
//! the inventory, the units it runs, its restart recipe and the check
//! after it, the ports it opens and to whom, when it is provisioned
//! relative to the others, which roles it cannot share a server with, and
//! the group `logs` and `restart` name it by. `registry!` at the bottom
//! lists them: a new role is one file plus one line there (and its
//! playbook block, templates and tests).
//!
//! Roles sit below the inventory: they see the site through [`Site`],
//! which the inventory implements.

use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::app_kinds::AppKind;
use crate::shell::quote;

/// What a role needs to know of the site it is part of.
pub trait Site {
    fn app_kind(&self) -> AppKind;
    /// The address the load balancers share (keepalived), if they do.
    fn floating_address(&self) -> Option<IpAddr>;
    /// MariaDB is reached over the network (app servers elsewhere, replicas).
    fn db_networked(&self) -> bool;
    /// The ports the site is served on: HTTP, and HTTPS when it is on.
    fn site_ports(&self) -> Vec<u16>;
    /// The private addresses of the servers with `role`, but `except`.
    fn addresses_of(&self, role: Role, except: &str) -> Vec<IpAddr>;
    /// The names of the servers with `role`, but `except`.
    fn names_of(&self, role: Role, except: &str) -> Vec<String>;
    /// The name of the server holding the database primary.
    fn db_primary(&self) -> String;
    /// The servers the backup server copies the database and the uploads
    /// from, when the site has backups.
    fn backup_db_source(&self) -> Option<String>;
    fn backup_files_source(&self) -> Option<String>;
    /// Where the app servers reach a Galera cluster (HAProxy :3306 on
    /// the load balancers); None without a cluster.
    fn cluster_address(&self) -> Option<IpAddr>;
    /// The server runs the release command (the first app server).
    fn is_release_server(&self, server: &str) -> bool;
    /// For the diagram: the path load balancers check, the app's root,
    /// the database's name, the zone.
    fn health_path(&self) -> String;
    fn app_root(&self) -> String;
    fn database(&self) -> String;
    fn zone(&self) -> String;
}

/// What a role draws on its server in `foobar diagram`: one thing running
/// there, what it does, and what it sends requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub detail: String,
    pub calls: Vec<Call>,
}

impl Part {
    fn new(name: &str, detail: String) -> Self {
        Self {
            name: name.to_string(),
            detail,
            calls: Vec::new(),
        }
    }

    fn calling(self, calls: Vec<Call>) -> Self {
        Self { calls, ..self }
    }
}

/// A part's requests to the part named `part` on each of the servers `on`
/// (the caller's own server among them, or others), or, `via` a floating
/// address, to the one of them holding it; `how` says with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub part: String,
    pub on: Vec<String>,
    pub via: Option<IpAddr>,
    pub how: String,
}

impl Call {
    fn to(part: &str, on: Vec<String>, how: impl Into<String>) -> Self {
        Self {
            part: part.to_string(),
            on,
            via: None,
            how: how.into(),
        }
    }
}

/// How a service was restarted, for scripts; `how` says it in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartMethod {
    /// Check the config, then reload: old workers finish their requests.
    CheckedReload,
    /// New workers, old ones finish (HUP, USR2).
    GracefulReload,
    /// Workers restarted one at a time (USR1).
    PhasedRestart,
    /// A real restart while nginx serves the maintenance page.
    RestartBehindMaintenancePage,
    /// A real restart of what no request waits on (a replica).
    Restart,
    /// Out of the load balancers' pool until its sessions are done, back
    /// in once its restart passed its checks.
    Drain,
}

/// What proves a restart worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRestart {
    /// The site's end-to-end checks through this server.
    Checks,
    /// The same; when they fail, the previous release goes live again.
    ChecksElseRollBack,
    /// The server answers for the site's name as a nameserver.
    Dns,
}

/// How a role's unit restarts: the least disruptive way there is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub method: RestartMethod,
    pub how: &'static str,
    /// Shell, run with `set -e`.
    pub script: String,
    pub after: AfterRestart,
}

/// A port a role opens in the firewall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub port: u16,
    pub protocol: &'static str,
    /// Only from these addresses; `None`: from anywhere.
    pub from: Option<Vec<IpAddr>>,
}

impl Opening {
    fn anyone(port: u16, protocol: &'static str) -> Self {
        Self {
            port,
            protocol,
            from: None,
        }
    }
}

/// One server role.
pub trait ServerRole: Sync {
    /// As written in the inventory and the playbook.
    fn name(&self) -> &'static str;
    /// What `foobar logs GROUP` and `foobar restart GROUP` call it: roles
    /// of one service share a group (`db`: the primary and its replicas).
    fn group(&self) -> &'static str {
        self.name()
    }
    /// The systemd units it runs, the one `restart` restarts first; the
    /// playbook's `service` steps of the role's blocks keep the same list
    /// (tested).
    fn units(&self, site: &dyn Site) -> Vec<&'static str>;
    /// How `foobar restart` restarts `unit`, and what proves it worked.
    fn restart(&self, site: &dyn Site, unit: &str) -> Recipe;
    /// Among every role, `restart all` goes in this order: least
    /// disruptive first.
    fn restart_order(&self) -> u8;
    /// What it opens in the firewall of `server`.
    fn ports(&self, _site: &dyn Site, _server: &str) -> Vec<Opening> {
        Vec::new()
    }
    /// When `server` may be provisioned: a server goes in the wave of its
    /// latest role (0, the first, when no role waits for another).
    fn wave(&self, _site: &dyn Site, _server: &str) -> u8 {
        0
    }
    /// What it draws on `server` in the diagram, front to back.
    fn diagram(&self, site: &dyn Site, server: &str) -> Vec<Part>;
    /// Roles that cannot share a server with it, and why.
    fn excludes(&self) -> &'static [(Role, &'static str)] {
        &[]
    }
    /// Roles a server with it must have too, and why.
    fn requires(&self) -> &'static [(Role, &'static str)] {
        &[]
    }
}

/// Lists the roles: `module::Type` becomes the variant `Type`.
macro_rules! registry {
    ($($(#[$attr:meta])* $module:ident :: $role:ident),* $(,)?) => {
        $($(#[$attr])* mod $module;)*

        /// A server role, as the inventory names it. Ordered as listed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Role {
            $($(#[$attr])* $role,)*
        }

        impl Role {
            /// Every role, in registry order.
            pub const ALL: &'static [Role] = &[$($(#[$attr])* Role::$role,)*];
            const NAMES: &'static [&'static str] = &[$($(#[$attr])* $module::NAME,)*];

            pub fn module(self) -> &'static dyn ServerRole {
                match self {
                    $($(#[$attr])* Role::$role => &$module::$role,)*
                }
            }
        }
    };
}

impl Role {
    pub fn name(self) -> &'static str {
        self.module().name()
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// The groups `logs` and `restart` take, in registry order.
    pub fn groups() -> Vec<&'static str> {
        let mut groups: Vec<&'static str> = Vec::new();
        for r in Role::ALL {
            if !groups.contains(&r.module().group()) {
                groups.push(r.module().group());
            }
        }
        groups
    }

    /// The roles of a group, in registry order.
    pub fn of_group(group: &str) -> Vec<Role> {
        Role::ALL
            .iter()
            .copied()
            .filter(|r| r.module().group() == group)
            .collect()
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Checked inside the visitor, so that an unknown role is reported at its
/// own line and column.
impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Role;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a role")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Role, E> {
                Role::parse(v).ok_or_else(|| E::unknown_variant(v, Role::NAMES))
            }
        }
        d.deserialize_str(Name)
    }
}

/// Restarts MariaDB and waits until it answers, up to 30 s, failing with
/// `failure`.
fn restart_mariadb(unit: &str, failure: &str) -> String {
    let unit = quote(unit);
    format!(
        "systemctl restart {unit} >&2 || {{ journalctl -u {unit} -n 20 --no-pager >&2; exit 1; }}\n\
         i=0; until mysqladmin ping --silent; do i=$((i + 1)); [ $i -lt 60 ] || {{ echo {failure} >&2; exit 1; }}; sleep 0.5; done\n",
        failure = quote(failure),
    )
}

/// A config check, then a reload: a bad config never loads.
fn checked_reload(check: &str, how: &'static str, unit: &str) -> Recipe {
    Recipe {
        method: RestartMethod::CheckedReload,
        how,
        script: format!("{check} >&2 && systemctl reload {}", quote(unit)),
        after: AfterRestart::Checks,
    }
}

/// While this file exists, nginx answers dynamic requests with the
/// maintenance page (503, Retry-After); see templates/nginx/site.conf.j2.
pub const MAINTENANCE_FLAG: &str = "/var/lib/foobar/maintenance/on";
/// The same, put by a database restart; a provision removes it when the
/// restart's run was killed before it could.
pub const RESTART_FLAG: &str = "/var/lib/foobar/maintenance/restarting";

/// Creates a flag file (and its folder).
pub fn raise_flag(flag: &str) -> String {
    let flag = quote(flag);
    format!("mkdir -p \"$(dirname {flag})\" && touch {flag}\n")
}

/// Puts up the page of a database restart (RESTART_FLAG), then lets the
/// requests already at the app finish before the database goes.
pub fn maintenance_up() -> String {
    format!("{}sleep 1\n", raise_flag(RESTART_FLAG))
}

pub use app::{job_units, process_unit, JOB_UNITS, PROCESS_UNITS, RESTART_PROCESSES};
pub use db_cluster::{rejoin_script, CHECK_PORT, SYNCED_WAIT};

registry! {
    web::Web,
    app::App,
    db::Db,
    db_replica::DbReplica,
    db_cluster::DbCluster,
    dns::Dns,
    dns_secondary::DnsSecondary,
    lb::Lb,
    backup::Backup,
    // A role that exists only in unit tests: proof that a new role is one
    // file plus this line.
    #[cfg(test)]
    fixture::Fixture,
}

#[cfg(test)]
mod tests;
