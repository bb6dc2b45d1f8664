//! `mysql`: a MariaDB database and a user with privileges on it only. The
//! password is compared by its hash and travels on stdin only.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::parts::{deferred_fact_script, mysql_native_hash};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::inventory::SqlName;
use crate::shell::quote;

pub struct Mysql;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub database: String,
    pub user: String,
    pub privileges: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub database: String,
    pub user: String,
    pub privileges: Vec<String>,
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
    /// authentication_string of the user @localhost.
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub grants: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub create_database: bool,
    pub create_user: bool,
    pub set_password: bool,
    pub grant: Vec<String>,
    pub revoke: Vec<String>,
}

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
];

impl Kind for Mysql {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let database = cx.field("database", &args.database)?;
        let user = cx.field("user", &args.user)?;
        for n in [&database, &user] {
            SqlName::parse(n).map_err(|m| cx.error(m))?;
        }
        let privileges = args
            .privileges
            .iter()
            .map(|p| {
                let up = p.to_ascii_uppercase();
                if GRANTABLE.contains(&up.as_str()) {
                    Ok(up)
                } else {
                    Err(cx.error(format!(
                        "privilege `{p}` is not one of {}",
                        GRANTABLE.join(", ")
                    )))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Desired {
            database,
            user,
            privileges,
            password: cx.secrets.mysql_password.clone(),
        })
    }

    fn label(d: &Desired) -> String {
        format!("mysql database {}, user {}", d.database, d.user)
    }

    fn fact_script(d: &Desired) -> String {
        // Names are [A-Za-z0-9_] (checked at resolve), safe inside SQL quotes.
        let (db, user) = (&d.database, &d.user);
        let sql = format!(
            "SELECT 'D', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{db}';\
             SELECT 'M', authentication_string FROM mysql.user WHERE User='{user}' AND Host='localhost';\
             SELECT 'G', PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE=\"'{user}'@'localhost'\" AND TABLE_SCHEMA='{db}';"
        );
        // The slowest fact: it waits on MariaDB, so it runs beside the rest.
        deferred_fact_script(&format!(
            "command -v mysql >/dev/null && mysql -N -B -e {} && echo Q",
            quote(&sql)
        ))
    }

    fn parse_fact(output: &str) -> Fact {
        let mut f = Fact::default();
        for line in output.lines() {
            match line.split('\t').collect::<Vec<_>>()[..] {
                ["Q"] => f.up = true,
                ["D", _] => f.database = true,
                ["M", auth] => f.auth = Some(auth.to_string()),
                ["G", privilege] => {
                    f.grants.insert(privilege.to_string());
                }
                _ => {}
            }
        }
        f
    }

    fn plan(d: &Desired, f: &Fact, _: &PlanCx) -> Option<Change> {
        let want: BTreeSet<String> = d.privileges.iter().cloned().collect();
        let change = Change {
            create_database: !f.database,
            create_user: f.auth.is_none(),
            set_password: f
                .auth
                .as_ref()
                .is_some_and(|a| *a != mysql_native_hash(&d.password)),
            grant: want.difference(&f.grants).cloned().collect(),
            revoke: f.grants.difference(&want).cloned().collect(),
        };
        (change != Change::default()).then_some(change)
    }

    fn describe(m: &Change) -> String {
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

    fn script(d: &Desired, m: &Change, _: Option<&str>) -> Script {
        Script::new("mysql --batch\n".into()).with_stdin(sql(m, d).into_bytes())
    }

    fn converged(d: &Desired, _: &Change, _: &Fact) -> Fact {
        Fact {
            up: true,
            database: true,
            auth: Some(mysql_native_hash(&d.password)),
            grants: d.privileges.iter().cloned().collect(),
        }
    }
}

fn sql(m: &Change, d: &Desired) -> String {
    // Names are [A-Za-z0-9_] and the password has no quote or backslash
    // (both checked at load), so they are safe inside SQL quotes. The SQL
    // travels on stdin, never on a command line.
    let (database, password) = (&d.database, &d.password);
    let account = format!("'{}'@'localhost'", d.user);
    let mut sql = String::new();
    if m.create_database {
        sql.push_str(&format!(
            "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        ));
    }
    if m.create_user {
        sql.push_str(&format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}';\n"
        ));
    }
    if m.set_password {
        sql.push_str(&format!(
            "ALTER USER {account} IDENTIFIED BY '{password}';\n"
        ));
    }
    if !m.grant.is_empty() {
        sql.push_str(&format!(
            "GRANT {} ON `{database}`.* TO {account};\n",
            m.grant.join(", ")
        ));
    }
    if !m.revoke.is_empty() {
        sql.push_str(&format!(
            "REVOKE {} ON `{database}`.* FROM {account};\n",
            m.revoke.join(", ")
        ));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_travels_on_stdin_only() {
        let d = Desired {
            database: "foobar".into(),
            user: "app".into(),
            privileges: vec!["SELECT".into()],
            password: "Secret-Marker-123".into(),
        };
        let change = Mysql::plan(&d, &Fact::default(), &PlanCx { today: 20261125 }).unwrap();
        let script = Mysql::script(&d, &change, None);
        assert!(!script.text.contains("Secret-Marker-123"));
        let sql = String::from_utf8(script.stdin.unwrap()).unwrap();
        assert!(sql.contains(
            "CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY 'Secret-Marker-123';"
        ));
        assert!(sql.contains("GRANT SELECT ON `foobar`.* TO 'app'@'localhost';"));
    }
}
