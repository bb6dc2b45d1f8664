//! The plan: what must change, computed from the desired steps and the
//! gathered facts. Pure: no I/O, so check mode and diffs come for free and
//! every rule is unit tested.

use std::collections::BTreeSet;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::facts::Facts;
use crate::render::{Desired, Resolved, SOA_SERIAL_TOKEN};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    InstallPackages(Vec<String>),
    CreateUser,
    /// Create the folder or fix its owner and mode.
    Directory,
    /// Write the file (content with the SOA serial filled in).
    WriteFile {
        content: Vec<u8>,
        reason: String,
    },
    Remove,
    Deploy,
    /// Stop and disable.
    StopService,
    /// Enable and/or start.
    StartService {
        enable: bool,
        start: bool,
    },
    Mysql(MysqlChange),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlChange {
    pub create_database: bool,
    pub create_user: bool,
    pub set_password: bool,
    pub grant: Vec<String>,
    pub revoke: Vec<String>,
}

impl Change {
    /// A few words for progress lines. Never includes file contents.
    pub fn describe(&self) -> String {
        match self {
            Change::InstallPackages(p) => format!("install {}", p.join(" ")),
            Change::CreateUser => "create".into(),
            Change::Directory => "create or fix owner/mode".into(),
            Change::WriteFile { reason, .. } => reason.clone(),
            Change::Remove => "remove".into(),
            Change::StopService => "stop and disable".into(),
            Change::Deploy => "deploy and switch current".into(),
            Change::StartService { enable, start } => match (enable, start) {
                (true, true) => "enable and start".into(),
                (true, false) => "enable".into(),
                _ => "start".into(),
            },
            Change::Mysql(m) => {
                let mut parts = Vec::new();
                if m.create_database {
                    parts.push("create database".to_string());
                }
                if m.create_user {
                    parts.push("create user".to_string());
                } else if m.set_password {
                    parts.push("set password".to_string());
                }
                if !m.grant.is_empty() {
                    parts.push(format!("grant {}", m.grant.join(", ")));
                }
                if !m.revoke.is_empty() {
                    parts.push(format!("revoke {}", m.revoke.join(", ")));
                }
                parts.join("; ")
            }
        }
    }
}

/// One step and what it needs; `change` is None when it is already so.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    pub step: &'a Resolved,
    pub change: Option<Change>,
}

/// Computes the plan for one server. `today` is `YYYYMMDD`, for serials.
pub fn plan<'a>(steps: &'a [Resolved], facts: &Facts, today: u32) -> Vec<Planned<'a>> {
    steps
        .iter()
        .map(|step| Planned {
            step,
            change: change_for(&step.desired, facts, today),
        })
        .collect()
}

/// Handlers to run for one role: those notified by its changes, and those
/// left pending on the server by an earlier run, in first-seen order.
pub fn handlers_for<'a>(
    planned: &[Planned],
    role_handlers: &'a [crate::playbook::Handler],
    role: crate::inventory::Role,
    pending: &[String],
) -> Vec<&'a crate::playbook::Handler> {
    let notified: BTreeSet<&str> = planned
        .iter()
        .filter(|p| p.step.role == role && p.change.is_some())
        .filter_map(|p| p.step.notify.as_deref())
        .chain(pending.iter().map(String::as_str))
        .collect();
    role_handlers
        .iter()
        .filter(|h| notified.contains(h.name.as_str()))
        .collect()
}

fn change_for(desired: &Desired, facts: &Facts, today: u32) -> Option<Change> {
    match desired {
        Desired::Packages(names) => {
            let missing: Vec<String> = names
                .iter()
                .filter(|n| !facts.packages.contains(*n))
                .cloned()
                .collect();
            (!missing.is_empty()).then_some(Change::InstallPackages(missing))
        }
        Desired::User { name, .. } => (!facts.users.contains(name)).then_some(Change::CreateUser),
        Desired::Directory {
            path,
            owner,
            group,
            mode,
        } => {
            let ok = facts.paths.get(path).is_some_and(|f| {
                f.is_dir && &f.owner == owner && &f.group == group && f.mode == *mode
            });
            (!ok).then_some(Change::Directory)
        }
        Desired::File {
            path,
            content,
            owner,
            group,
            mode,
            soa_serial,
            ..
        } => {
            let current = facts.paths.get(path);
            let content = if *soa_serial {
                zone_with_serial(
                    content,
                    facts.serials.get(path).copied(),
                    current.and_then(|c| c.sha256.as_deref()),
                    today,
                )
            } else {
                content.clone()
            };
            let reason = match current {
                None => "create".to_string(),
                Some(c) if c.sha256.as_deref() != Some(sha256_hex(&content).as_str()) => {
                    "content differs".to_string()
                }
                Some(c) if &c.owner != owner || &c.group != group || c.mode != *mode => format!(
                    "{}:{} {:04o} -> {owner}:{group} {mode:04o}",
                    c.owner, c.group, c.mode
                ),
                Some(_) => return None,
            };
            Some(Change::WriteFile { content, reason })
        }
        Desired::Absent { path } => facts.paths.contains_key(path).then_some(Change::Remove),
        Desired::Release { root, id, .. } => {
            let live = facts
                .current_release
                .get(root)
                .is_some_and(|t| t.trim_end_matches('/').ends_with(&format!("releases/{id}")));
            (!live).then_some(Change::Deploy)
        }
        Desired::Service { name } => {
            let f = facts.services.get(name).cloned().unwrap_or_default();
            (!f.enabled || !f.active).then_some(Change::StartService {
                enable: !f.enabled,
                start: !f.active,
            })
        }
        Desired::Stopped { name } => {
            let f = facts.services.get(name).cloned().unwrap_or_default();
            (f.enabled || f.active).then_some(Change::StopService)
        }
        Desired::Mysql {
            database,
            user,
            privileges,
            password,
        } => {
            let m = facts.mysql.clone().unwrap_or_default();
            let auth = m.users.get(user);
            let have: BTreeSet<String> = m
                .grants
                .get(&(user.clone(), database.clone()))
                .cloned()
                .unwrap_or_default();
            let want: BTreeSet<String> = privileges.iter().cloned().collect();
            let change = MysqlChange {
                create_database: !m.databases.contains(database),
                create_user: auth.is_none(),
                set_password: auth.is_some_and(|a| *a != mysql_native_hash(password)),
                grant: want.difference(&have).cloned().collect(),
                revoke: have.difference(&want).cloned().collect(),
            };
            (change != MysqlChange::default()).then_some(Change::Mysql(change))
        }
    }
}

/// The zone as it should be written. While the rest of the zone is what
/// the server has, the server's serial is kept, so nothing changes; when
/// the content changes, the serial rises to max(today's first, old + 1).
pub fn zone_with_serial(
    rendered: &[u8],
    current_serial: Option<u32>,
    current_sha: Option<&str>,
    today: u32,
) -> Vec<u8> {
    let text = String::from_utf8_lossy(rendered);
    if let Some(serial) = current_serial {
        let same = text.replace(SOA_SERIAL_TOKEN, &serial.to_string());
        if current_sha == Some(sha256_hex(same.as_bytes()).as_str()) {
            return same.into_bytes();
        }
    }
    let first_today = today.saturating_mul(100).saturating_add(1);
    let next = match current_serial {
        Some(s) if s >= first_today => s + 1,
        _ => first_today,
    };
    text.replace(SOA_SERIAL_TOKEN, &next.to_string())
        .into_bytes()
}

/// Today's date in UTC as `YYYYMMDD`, for SOA serials.
pub fn today() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    (y as u32) * 10_000 + m * 100 + d
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// MariaDB's mysql_native_password hash: `*` + upper hex SHA1(SHA1(pw)).
/// Comparing hashes lets the plan see a password change without reading
/// or sending the password.
pub fn mysql_native_hash(password: &str) -> String {
    let inner = Sha1::digest(password.as_bytes());
    let outer = Sha1::digest(inner);
    format!(
        "*{}",
        outer.iter().map(|b| format!("{b:02X}")).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{MysqlFacts, PathFact, ServiceFact};
    use crate::inventory::Role;

    fn step(desired: Desired) -> Resolved {
        Resolved {
            role: Role::Web,
            block: 0,
            label: "test".into(),
            desired,
            notify: Some("reload nginx".into()),
        }
    }

    fn file(content: &str) -> Desired {
        Desired::File {
            path: "/etc/x".into(),
            content: content.as_bytes().to_vec(),
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            validate: None,
            soa_serial: false,
        }
    }

    fn facts_with_file(content: &str, mode: u32) -> Facts {
        let mut f = Facts::default();
        f.paths.insert(
            "/etc/x".into(),
            PathFact {
                owner: "root".into(),
                group: "root".into(),
                mode,
                is_dir: false,
                sha256: Some(sha256_hex(content.as_bytes())),
            },
        );
        f
    }

    fn one(desired: Desired, facts: &Facts) -> Option<Change> {
        let steps = [step(desired)];
        plan(&steps, facts, 20261125)[0].change.clone()
    }

    #[test]
    fn same_file_is_unchanged_and_other_content_or_mode_changes() {
        assert_eq!(one(file("a\n"), &facts_with_file("a\n", 0o644)), None);
        let c = one(file("b\n"), &facts_with_file("a\n", 0o644)).unwrap();
        assert_eq!(c.describe(), "content differs");
        let c = one(file("a\n"), &facts_with_file("a\n", 0o600)).unwrap();
        assert_eq!(c.describe(), "root:root 0600 -> root:root 0644");
        let c = one(file("a\n"), &Facts::default()).unwrap();
        assert_eq!(c.describe(), "create");
    }

    #[test]
    fn packages_only_missing_ones() {
        let mut f = Facts::default();
        f.packages.insert("nginx".into());
        let c = one(Desired::Packages(vec!["nginx".into(), "bind9".into()]), &f);
        assert_eq!(c, Some(Change::InstallPackages(vec!["bind9".into()])));
        f.packages.insert("bind9".into());
        assert_eq!(
            one(Desired::Packages(vec!["nginx".into(), "bind9".into()]), &f),
            None
        );
    }

    #[test]
    fn service_needs_enabled_and_active() {
        let d = || Desired::Service {
            name: "nginx".into(),
        };
        let mut f = Facts::default();
        assert_eq!(
            one(d(), &f),
            Some(Change::StartService {
                enable: true,
                start: true
            })
        );
        f.services.insert(
            "nginx".into(),
            ServiceFact {
                enabled: true,
                active: false,
            },
        );
        assert_eq!(
            one(d(), &f),
            Some(Change::StartService {
                enable: false,
                start: true
            })
        );
        f.services.insert(
            "nginx".into(),
            ServiceFact {
                enabled: true,
                active: true,
            },
        );
        assert_eq!(one(d(), &f), None);
    }

    #[test]
    fn stopped_service_is_stopped_only_when_it_runs_or_is_enabled() {
        let d = || Desired::Stopped {
            name: "php8.2-fpm".into(),
        };
        let mut f = Facts::default();
        assert_eq!(one(d(), &f), None, "absent or stopped: nothing to do");
        f.services.insert(
            "php8.2-fpm".into(),
            ServiceFact {
                enabled: true,
                active: false,
            },
        );
        assert_eq!(one(d(), &f), Some(Change::StopService));
    }

    #[test]
    fn release_is_deployed_unless_current_points_at_it() {
        let d = || Desired::Release {
            root: "/srv/foobar".into(),
            owner: "root".into(),
            id: "0123456789ab".into(),
            archive: vec![],
            keep: 3,
        };
        let mut f = Facts::default();
        assert_eq!(one(d(), &f), Some(Change::Deploy));
        f.current_release
            .insert("/srv/foobar".into(), "releases/0123456789ab".into());
        assert_eq!(one(d(), &f), None);
    }

    #[test]
    fn zone_serial_kept_while_unchanged_and_raised_on_change() {
        let tmpl = format!("@ SOA ns1 host ( {SOA_SERIAL_TOKEN} ; serial\n) A 10.0.0.1\n");
        let on_server = tmpl.replace(SOA_SERIAL_TOKEN, "2026112003");
        let sha = sha256_hex(on_server.as_bytes());
        // Unchanged zone keeps the old serial, whatever the date.
        let same = zone_with_serial(tmpl.as_bytes(), Some(2026112003), Some(&sha), 20261125);
        assert_eq!(same, on_server.as_bytes());
        // Changed zone on a later day starts at today's 01.
        let changed = tmpl.replace("10.0.0.1", "10.0.0.2");
        let out = zone_with_serial(changed.as_bytes(), Some(2026112003), Some(&sha), 20261125);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("2026112501 ; serial"));
        // Changed twice the same day: +1.
        let out = zone_with_serial(
            changed.as_bytes(),
            Some(2026112501),
            Some("other"),
            20261125,
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("2026112502 ; serial"));
        // A serial ahead of the date still only goes up.
        let out = zone_with_serial(
            changed.as_bytes(),
            Some(2030010105),
            Some("other"),
            20261125,
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("2030010106 ; serial"));
        // No zone yet.
        let out = zone_with_serial(tmpl.as_bytes(), None, None, 20261125);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("2026112501 ; serial"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(19_416), (2023, 2, 28));
        assert_eq!(civil_from_days(19_417), (2023, 3, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn mysql_native_hash_matches_mariadb() {
        // SELECT PASSWORD('password') in MariaDB.
        assert_eq!(
            mysql_native_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }

    #[test]
    fn mysql_converges_on_database_user_password_and_grants() {
        let d = || Desired::Mysql {
            database: "foobar".into(),
            user: "foobar".into(),
            privileges: vec!["SELECT".into(), "INSERT".into()],
            password: "correct-horse-1".into(),
        };
        let c = one(d(), &Facts::default()).unwrap();
        assert_eq!(
            c.describe(),
            "create database; create user; grant INSERT, SELECT"
        );
        let mut m = MysqlFacts::default();
        m.databases.insert("foobar".into());
        m.users
            .insert("foobar".into(), mysql_native_hash("old-password-1"));
        m.grants.insert(
            ("foobar".into(), "foobar".into()),
            ["SELECT", "DROP"].iter().map(|s| s.to_string()).collect(),
        );
        let f = Facts {
            mysql: Some(m.clone()),
            ..Facts::default()
        };
        let c = one(d(), &f).unwrap();
        assert_eq!(c.describe(), "set password; grant INSERT; revoke DROP");
        m.users
            .insert("foobar".into(), mysql_native_hash("correct-horse-1"));
        m.grants.insert(
            ("foobar".into(), "foobar".into()),
            ["SELECT", "INSERT"].iter().map(|s| s.to_string()).collect(),
        );
        let f = Facts {
            mysql: Some(m),
            ..Facts::default()
        };
        assert_eq!(one(d(), &f), None);
    }

    #[test]
    fn handlers_run_for_changes_and_for_pending_ones() {
        use crate::playbook::{Handler, HandlerAction};
        let handlers = vec![
            Handler {
                name: "reload nginx".into(),
                service: "nginx".into(),
                action: HandlerAction::Reload,
            },
            Handler {
                name: "restart app".into(),
                service: "app".into(),
                action: HandlerAction::Restart,
            },
        ];
        let steps = [step(file("a\n"))];
        let unchanged = plan(&steps, &facts_with_file("a\n", 0o644), 20261125);
        assert!(handlers_for(&unchanged, &handlers, Role::Web, &[]).is_empty());
        let changed = plan(&steps, &Facts::default(), 20261125);
        let names: Vec<_> = handlers_for(&changed, &handlers, Role::Web, &[])
            .iter()
            .map(|h| h.name.clone())
            .collect();
        assert_eq!(names, vec!["reload nginx"]);
        let pending = vec!["restart app".to_string()];
        let names: Vec<_> = handlers_for(&unchanged, &handlers, Role::Web, &pending)
            .iter()
            .map(|h| h.name.clone())
            .collect();
        assert_eq!(names, vec!["restart app"]);
    }
}
