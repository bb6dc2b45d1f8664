//! `mysql`: a MariaDB database and a user with privileges on it only, or,
//! without a database, a user with global privileges (the replication
//! user). The
//! password is compared by its hash and travels on stdin only.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::parts::{deferred_fact_script, mysql_fact, mysql_native_hash};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::inventory::SqlName;

pub struct Mysql;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Made when missing; the privileges are on it. Without one, the
    /// privileges are global.
    #[serde(default)]
    pub database: Option<String>,
    pub user: String,
    /// Which of the inventory's secrets is the password.
    #[serde(default)]
    pub password: Password,
    pub privileges: Vec<String>,
    /// Where the user may connect from: `localhost` or IP addresses,
    /// separated by spaces (templated). Accounts of the user at any other
    /// host are dropped.
    #[serde(default = "localhost")]
    pub hosts: String,
}

fn localhost() -> String {
    "localhost".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Password {
    /// mysql.password
    #[default]
    MysqlPassword,
    /// mysql.replication_password
    ReplicationPassword,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub database: Option<String>,
    pub user: String,
    pub privileges: Vec<String>,
    pub hosts: Vec<String>,
    pub password: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// MariaDB answered the query; when it did not, everything is to be made.
    #[serde(default)]
    pub up: bool,
    #[serde(default)]
    pub database: bool,
    /// The user's accounts by host.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Its authentication_string is the hash of the inventory's password
    /// (compared on the server: no hash ever comes back in the output).
    #[serde(default)]
    pub password_matches: bool,
    /// Privileges on the database.
    #[serde(default)]
    pub grants: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub create_database: bool,
    pub accounts: Vec<AccountChange>,
    /// Hosts the user may no longer connect from.
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub host: String,
    pub create: bool,
    pub set_password: bool,
    pub grant: Vec<String>,
    pub revoke: Vec<String>,
}

/// Global privileges a playbook may grant: what replication and a
/// consistent copy of the primary (mariadb-dump) need.
const GRANTABLE_GLOBALLY: &[&str] = &[
    "REPLICATION SLAVE",
    "BINLOG MONITOR",
    "SELECT",
    "RELOAD",
    "LOCK TABLES",
    "SHOW VIEW",
    "TRIGGER",
    "EVENT",
];

/// Privileges a playbook may grant the app user on its own database.
const GRANTABLE: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "INDEX",
    "ALTER",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "CREATE VIEW",
    "SHOW VIEW",
    "TRIGGER",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "REFERENCES",
    "DELETE HISTORY",
];

impl Kind for Mysql {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let database = args
            .database
            .as_ref()
            .map(|d| cx.field("database", d))
            .transpose()?;
        let user = cx.field("user", &args.user)?;
        for n in database.iter().chain([&user]) {
            SqlName::parse(n).map_err(|m| cx.error(m))?;
        }
        let grantable = if database.is_some() {
            GRANTABLE
        } else {
            GRANTABLE_GLOBALLY
        };
        let privileges = args
            .privileges
            .iter()
            .map(|p| {
                let up = p.to_ascii_uppercase();
                if grantable.contains(&up.as_str()) {
                    Ok(up)
                } else {
                    Err(cx.error(format!(
                        "privilege `{p}` is not one of {}",
                        grantable.join(", ")
                    )))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let hosts = cx
            .field("hosts", &args.hosts)?
            .split_whitespace()
            .map(|h| {
                if h == "localhost" || h.parse::<std::net::IpAddr>().is_ok() {
                    Ok(h.to_string())
                } else {
                    Err(cx.field_error(
                        "hosts",
                        &args.hosts,
                        format!("`{h}` is neither localhost nor an IP address"),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if hosts.is_empty() {
            return Err(cx.error("hosts: name at least one host (localhost or an IP address)"));
        }
        Ok(Desired {
            database,
            user,
            privileges,
            hosts,
            password: match args.password {
                Password::MysqlPassword => cx.secrets.mysql_password.clone(),
                Password::ReplicationPassword => {
                    cx.secrets.replication_password.clone().ok_or_else(|| {
                        cx.error("password: replication_password needs mysql.replication_password in the inventory")
                    })?
                }
            },
        })
    }

    fn label(d: &Desired) -> String {
        let on = match &d.database {
            Some(db) => format!("database {db}"),
            None => "global privileges".into(),
        };
        format!("mysql {on}, user {} from {}", d.user, d.hosts.join(", "))
    }

    fn fact_script(d: &Desired) -> String {
        // Names are [A-Za-z0-9_] (checked at resolve), safe inside SQL quotes.
        let user = &d.user;
        let (database, privileges) = match &d.database {
            Some(db) => (
                format!("SELECT 'D', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{db}';"),
                format!("information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA='{db}'"),
            ),
            None => (
                String::new(),
                "information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE <> 'USAGE'".into(),
            ),
        };
        let hash = mysql_native_hash(&d.password);
        let sql = format!(
            "{database}\
             SELECT 'M', Host, authentication_string = '{hash}' FROM mysql.user WHERE User='{user}';\
             SELECT 'G', GRANTEE, PRIVILEGE_TYPE FROM {privileges} \
             AND GRANTEE IN (SELECT CONCAT(\"'\", User, \"'@'\", Host, \"'\") FROM mysql.user WHERE User='{user}');"
        );
        // The slowest fact: it waits on MariaDB, so it runs beside the rest.
        deferred_fact_script(&mysql_fact(&sql))
    }

    fn parse_fact(output: &str) -> Fact {
        let mut f = Fact::default();
        let mut grants = Vec::new();
        for line in output.lines() {
            match line.split('\t').collect::<Vec<_>>()[..] {
                ["Q"] => f.up = true,
                ["D", _] => f.database = true,
                ["M", host, matches] => {
                    f.accounts
                        .entry(host.to_string())
                        .or_default()
                        .password_matches = matches == "1";
                }
                ["G", grantee, privilege] => grants.push((grantee, privilege)),
                _ => {}
            }
        }
        // GRANTEE is `'user'@'host'`, of this user only (the query says so).
        for (grantee, privilege) in grants {
            let host = grantee
                .rsplit_once("'@'")
                .map_or("", |(_, h)| h.trim_end_matches('\''));
            if let Some(account) = f.accounts.get_mut(host) {
                account.grants.insert(privilege.to_string());
            }
        }
        f
    }

    fn plan(d: &Desired, f: &Fact, _: &PlanCx) -> Option<Change> {
        let want: BTreeSet<String> = d.privileges.iter().cloned().collect();
        let accounts = d
            .hosts
            .iter()
            .filter_map(|host| {
                let (create, set_password, have) = match f.accounts.get(host) {
                    Some(a) => (false, !a.password_matches, a.grants.clone()),
                    None => (true, false, BTreeSet::new()),
                };
                let change = AccountChange {
                    host: host.clone(),
                    create,
                    set_password,
                    grant: want.difference(&have).cloned().collect(),
                    revoke: have.difference(&want).cloned().collect(),
                };
                (change != AccountChange { host: host.clone(), ..Default::default() })
                    .then_some(change)
            })
            .collect();
        let change = Change {
            create_database: d.database.is_some() && !f.database,
            accounts,
            drop: f
                .accounts
                .keys()
                .filter(|h| !d.hosts.contains(h))
                .cloned()
                .collect(),
        };
        (change != Change::default()).then_some(change)
    }

    fn describe(m: &Change) -> String {
        let mut parts = Vec::new();
        if m.create_database {
            parts.push("create database".to_string());
        }
        for a in &m.accounts {
            let mut what = Vec::new();
            if a.create {
                what.push("create user".to_string());
            } else if a.set_password {
                what.push("set password".to_string());
            }
            if !a.grant.is_empty() {
                what.push(format!("grant {}", a.grant.join(", ")));
            }
            if !a.revoke.is_empty() {
                what.push(format!("revoke {}", a.revoke.join(", ")));
            }
            parts.push(format!("{} at {}", what.join(", "), a.host));
        }
        if !m.drop.is_empty() {
            parts.push(format!("drop user at {}", m.drop.join(", ")));
        }
        parts.join("; ")
    }

    fn script(d: &Desired, m: &Change, _: Option<&str>) -> Script {
        Script::new("mysql --batch\n".into()).with_stdin(sql(m, d).into_bytes())
    }

    fn converged(d: &Desired, _: &Change, _: &Fact) -> Fact {
        let account = Account {
            password_matches: true,
            grants: d.privileges.iter().cloned().collect(),
        };
        Fact {
            up: true,
            database: d.database.is_some(),
            accounts: d
                .hosts
                .iter()
                .map(|h| (h.clone(), account.clone()))
                .collect(),
        }
    }
}

fn sql(m: &Change, d: &Desired) -> String {
    // Names are [A-Za-z0-9_] and hosts localhost or IP addresses (checked
    // at load), so they are safe inside SQL quotes. The password is set by
    // its hash: the statement goes to the binary log and every replica,
    // and a cleartext password would go with it. The SQL travels on stdin,
    // never on a command line.
    let hash = mysql_native_hash(&d.password);
    let account = |host: &str| format!("'{}'@'{host}'", d.user);
    let on = match &d.database {
        Some(db) => format!("`{db}`.*"),
        None => "*.*".into(),
    };
    let mut sql = String::new();
    if let (true, Some(database)) = (m.create_database, &d.database) {
        sql.push_str(&format!(
            "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        ));
    }
    for a in &m.accounts {
        let account = account(&a.host);
        if a.create {
            sql.push_str(&format!(
                "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY PASSWORD '{hash}';\n"
            ));
        }
        if a.set_password {
            sql.push_str(&format!(
                "ALTER USER {account} IDENTIFIED BY PASSWORD '{hash}';\n"
            ));
        }
        if !a.grant.is_empty() {
            sql.push_str(&format!(
                "GRANT {} ON {on} TO {account};\n",
                a.grant.join(", ")
            ));
        }
        if !a.revoke.is_empty() {
            sql.push_str(&format!(
                "REVOKE {} ON {on} FROM {account};\n",
                a.revoke.join(", ")
            ));
        }
    }
    for host in &m.drop {
        sql.push_str(&format!("DROP USER IF EXISTS {};\n", account(host)));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_set_by_its_hash_on_stdin() {
        let d = Desired {
            database: Some("foobar".into()),
            user: "app".into(),
            privileges: vec!["SELECT".into()],
            hosts: vec!["localhost".into()],
            password: "Secret-Marker-123".into(),
        };
        let change = Mysql::plan(&d, &Fact::default(), &PlanCx { today: 20261125, rebuild: false }).unwrap();
        let script = Mysql::script(&d, &change, None);
        let hash = mysql_native_hash("Secret-Marker-123");
        assert!(!script.text.contains("Secret-Marker-123") && !script.text.contains(&hash));
        let sql = String::from_utf8(script.stdin.unwrap()).unwrap();
        // The statement reaches the binary log: never the password itself.
        assert!(!sql.contains("Secret-Marker-123"), "{sql}");
        assert!(sql.contains(&format!(
            "CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY PASSWORD '{hash}';"
        )));
        assert!(sql.contains("GRANT SELECT ON `foobar`.* TO 'app'@'localhost';"));
    }

    #[test]
    fn any_printable_password_reaches_sql_only_as_its_hash() {
        for password in [
            r#"it's "a" \ pass; -- x"#,
            "$x^!(=#-_)*&%@+j9",
            "q0/+Vn3xZ8rT2kL9w+M/aB4cD5eF6gH7",
        ] {
            let d = Desired {
                database: Some("foobar".into()),
                user: "app".into(),
                privileges: vec!["SELECT".into()],
                hosts: vec!["localhost".into()],
                password: password.into(),
            };
            let change = Mysql::plan(&d, &Fact::default(), &PlanCx { today: 20261125, rebuild: false }).unwrap();
            let sql = String::from_utf8(Mysql::script(&d, &change, None).stdin.unwrap()).unwrap();
            let hash = mysql_native_hash(password);
            // `*` and 40 hex digits: nothing to escape in a SQL string.
            assert!(hash.starts_with('*') && hash[1..].chars().all(|c| c.is_ascii_hexdigit()));
            assert!(sql.contains(&format!("IDENTIFIED BY PASSWORD '{hash}';")), "{sql}");
            assert!(!sql.contains(password) && !Mysql::fact_script(&d).contains(password));
        }
    }
}
