//! `mariadb_datadir`: MariaDB's data directory is one that has run. A data
//! directory whose first initialisation was cut off (the server rebooted or
//! lost power while the package's postinst bootstrapped it) never starts:
//! InnoDB finds a zeroed header. When foobar installed the package, MariaDB
//! has never run since, and the directory holds no database but the system
//! ones, it is moved aside (never deleted) and initialised again. A data
//! directory holding any other database is never touched: the step fails
//! and says what it found.

use serde::{Deserialize, Serialize};

use super::parts::{installed_marker, unit_fact_script};
use super::service::parse_unit_fact;
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct MariadbDatadir;

const SERVICE: &str = "mariadb";
const PACKAGE: &str = "mariadb-server";
/// Written once MariaDB has been seen running on this data directory.
const RAN: &str = "/var/lib/foobar/mariadb-ran";
/// Databases every data directory has.
const SYSTEM_DATABASES: &[&str] = &["mysql", "performance_schema", "sys", "test"];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_path() -> String {
    "/var/lib/mysql".into()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    #[serde(default)]
    pub active: bool,
    /// MariaDB has been seen running here (the marker).
    #[serde(default)]
    pub ran: bool,
    /// foobar installed the package (in this run or an earlier one).
    #[serde(default)]
    pub installed_by_foobar: bool,
    /// Databases in the data directory besides the system ones.
    #[serde(default)]
    pub databases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// MariaDB runs: remember that this data directory is good.
    Mark,
    /// The first initialisation never finished: move it aside, start over.
    Reinitialise,
    /// MariaDB never ran here, yet the directory holds databases.
    Refuse { databases: Vec<String> },
}

impl Kind for MariadbDatadir {
    type Args = Args;
    /// The data directory.
    type Desired = String;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<String, InputError> {
        cx.server_path("path", &args.path)
    }

    fn label(path: &String) -> String {
        format!("mariadb_datadir {path}")
    }

    fn fact_script(path: &String) -> String {
        format!(
            "{unit}[ -e {RAN} ] && echo RAN\n[ -e {installed} ] && echo INSTALLED\n\
             for d in {dir}/*/; do [ -d \"$d\" ] || continue; d=${{d%/}}; printf 'DB\\t%s\\n' \"${{d##*/}}\"; done\n",
            unit = unit_fact_script(SERVICE),
            installed = installed_marker(PACKAGE),
            dir = quote(path),
        )
    }

    fn parse_fact(output: &str) -> Fact {
        let mut f = Fact {
            active: parse_unit_fact(output).active,
            ..Fact::default()
        };
        for line in output.lines() {
            match line.split('\t').collect::<Vec<_>>()[..] {
                ["RAN"] => f.ran = true,
                ["INSTALLED"] => f.installed_by_foobar = true,
                ["DB", name]
                    if !SYSTEM_DATABASES.contains(&name)
                        && !name.starts_with('#')
                        && name != "lost+found" =>
                {
                    f.databases.push(name.to_string())
                }
                _ => {}
            }
        }
        f
    }

    fn plan(_: &String, f: &Fact, _: &PlanCx) -> Option<Change> {
        match (f.active, f.ran) {
            (true, true) | (false, true) => None,
            (true, false) => Some(Change::Mark),
            (false, false) if !f.databases.is_empty() => Some(Change::Refuse {
                databases: f.databases.clone(),
            }),
            (false, false) if f.installed_by_foobar => Some(Change::Reinitialise),
            // Not installed yet (or not by foobar): nothing to judge.
            (false, false) => None,
        }
    }

    fn describe(c: &Change) -> String {
        match c {
            Change::Mark => "MariaDB runs on it".into(),
            Change::Reinitialise => {
                "its first initialisation never finished: moved aside and initialised again".into()
            }
            Change::Refuse { databases } => format!(
                "MariaDB never ran here, yet it holds {}: left untouched",
                databases.join(", ")
            ),
        }
    }

    fn script(path: &String, c: &Change, _: Option<&str>) -> Script {
        let dir = quote(path);
        Script::new(match c {
            Change::Mark => format!("mkdir -p /var/lib/foobar\ntouch {RAN}\n"),
            Change::Reinitialise => format!(
                "systemctl stop {SERVICE} >&2 || true\n\
                 aside={dir}.interrupted-$(date -u +%Y%m%dT%H%M%SZ)\n\
                 mv {dir} \"$aside\"\n\
                 echo \"the data directory's first initialisation never finished: moved it to $aside\" >&2\n\
                 mkdir -m 0755 {dir}\nchown mysql:mysql {dir}\n\
                 for flag in \"$aside\"/debian-*.flag; do if [ -e \"$flag\" ]; then cp -p \"$flag\" {dir}/; fi; done\n\
                 mariadb-install-db --user=mysql --datadir={dir} --skip-test-db --auth-root-authentication-method=socket >&2\n\
                 systemctl start {SERVICE} >&2 || {{ journalctl -u {SERVICE} -n 20 --no-pager >&2; exit 1; }}\n\
                 mkdir -p /var/lib/foobar\ntouch {RAN}\n"
            ),
            Change::Refuse { databases } => format!(
                "echo {} >&2\nexit 1\n",
                quote(&format!(
                    "MariaDB has never run on {path}, yet it holds the database(s) {}: foobar will not touch a data directory with data in it. \
                     Read `journalctl -u {SERVICE}`; if the data is not needed, move {path} aside yourself and run foobar again.",
                    databases.join(", ")
                ))
            ),
        })
    }

    fn converged(_: &String, c: &Change, before: &Fact) -> Fact {
        match c {
            Change::Mark | Change::Reinitialise => Fact {
                active: true,
                ran: true,
                databases: Vec::new(),
                ..before.clone()
            },
            Change::Refuse { .. } => before.clone(),
        }
    }

    fn refuses(c: &Change) -> bool {
        matches!(c, Change::Refuse { .. })
    }
}
