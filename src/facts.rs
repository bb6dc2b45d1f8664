//! Facts: what a server looks like now, gathered for every managed thing
//! in one remote script, one round trip per server per run.

use std::collections::{BTreeMap, BTreeSet};

use crate::render::{Desired, Resolved};
use crate::shell::quote;

/// Handlers notified by a change whose handler has not run yet are listed
/// here on the server, so a failed run does not lose them.
pub const PENDING_HANDLERS: &str = "/var/lib/foobar/pending-handlers";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Installed packages.
    pub packages: BTreeSet<String>,
    pub users: BTreeSet<String>,
    pub paths: BTreeMap<String, PathFact>,
    /// SOA serial found in zone files, by path.
    pub serials: BTreeMap<String, u32>,
    /// `<root>/current` link targets, by root.
    pub current_release: BTreeMap<String, String>,
    pub services: BTreeMap<String, ServiceFact>,
    /// None when MariaDB is not installed or not answering.
    pub mysql: Option<MysqlFacts>,
    pub pending_handlers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFact {
    pub owner: String,
    pub group: String,
    pub mode: u32,
    pub is_dir: bool,
    /// SHA-256 of a regular file's content.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFact {
    pub enabled: bool,
    pub active: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlFacts {
    pub databases: BTreeSet<String>,
    /// authentication_string by user name (users @localhost).
    pub users: BTreeMap<String, String>,
    /// Privileges by (user, database).
    pub grants: BTreeMap<(String, String), BTreeSet<String>>,
}

/// The script that prints every fact the steps need, one tab-separated
/// record a line. Values were validated at load and are quoted here.
pub fn script(steps: &[Resolved]) -> String {
    let mut s = String::from(
        r#"exec 2>/dev/null
p() { if [ -e "$1" ]; then
  set -- "$1" "$(stat -c '%U %G %a %F' "$1")"
  case "$2" in *directory) printf 'F\t%s\t%s\t-\n' "$1" "$2" ;;
  *) printf 'F\t%s\t%s\t%s\n' "$1" "$2" "$(sha256sum < "$1" | cut -d' ' -f1)" ;; esac
fi; }
"#,
    );
    let mut packages = Vec::new();
    let mut mysql = Vec::new();
    for step in steps {
        match &step.desired {
            Desired::Packages(names) => packages.extend(names.iter().map(|n| quote(n))),
            Desired::User { name, .. } => s.push_str(&format!(
                "getent passwd {q} >/dev/null && printf 'U\\t%s\\n' {q}\n",
                q = quote(name)
            )),
            Desired::Directory { path, .. } | Desired::Absent { path } => {
                s.push_str(&format!("p {}\n", quote(path)))
            }
            Desired::File {
                path, soa_serial, ..
            } => {
                s.push_str(&format!("p {}\n", quote(path)));
                if *soa_serial {
                    s.push_str(&format!(
                        "printf 'S\\t%s\\t%s\\n' {q} \"$(sed -n 's/^[[:space:]]*\\([0-9]\\{{1,10\\}}\\)[[:space:]]*;[[:space:]]*serial.*/\\1/p' {q} | head -n1)\"\n",
                        q = quote(path)
                    ));
                }
            }
            Desired::Release { root, .. } => s.push_str(&format!(
                "printf 'L\\t%s\\t%s\\n' {q} \"$(readlink {c})\"\n",
                q = quote(root),
                c = quote(&format!("{root}/current"))
            )),
            Desired::Service { name } | Desired::Stopped { name } => s.push_str(&format!(
                "printf 'V\\t%s\\t%s\\t%s\\n' {q} \"$(systemctl is-enabled {q})\" \"$(systemctl is-active {q})\"\n",
                q = quote(name)
            )),
            Desired::Mysql { database, user, .. } => mysql.push((database, user)),
        }
    }
    if !packages.is_empty() {
        s.push_str(&format!(
            "dpkg-query -W -f='P\\t${{Package}}\\t${{db:Status-Abbrev}}\\n' {}\n",
            packages.join(" ")
        ));
    }
    if !mysql.is_empty() {
        // Names are [A-Za-z0-9_] (checked at load), safe inside SQL quotes.
        let mut sql = String::new();
        for (db, user) in &mysql {
            sql.push_str(&format!(
                "SELECT 'D', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{db}';\
                 SELECT 'M', User, authentication_string FROM mysql.user WHERE User='{user}' AND Host='localhost';\
                 SELECT 'G', '{user}', TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE=\"'{user}'@'localhost'\" AND TABLE_SCHEMA='{db}';"
            ));
        }
        s.push_str(&format!(
            "if command -v mysql >/dev/null && mysqladmin ping --silent; then echo 'Q\tup'; mysql -N -B -e {}; fi\n",
            quote(&sql)
        ));
    }
    s.push_str(&format!(
        "[ -f {f} ] && sed 's/^/H\\t/' {f}\ntrue\n",
        f = PENDING_HANDLERS
    ));
    s
}

/// Parses what `script` printed. Unknown lines are ignored.
pub fn parse(output: &str) -> Facts {
    let mut f = Facts::default();
    for line in output.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols.as_slice() {
            ["P", name, status] if status.starts_with("ii") => {
                f.packages.insert(name.to_string());
            }
            ["U", name] => {
                f.users.insert(name.to_string());
            }
            ["F", path, stat, sha] => {
                let parts: Vec<&str> = stat.splitn(4, ' ').collect();
                if let [owner, group, mode, kind] = parts.as_slice() {
                    f.paths.insert(
                        path.to_string(),
                        PathFact {
                            owner: owner.to_string(),
                            group: group.to_string(),
                            mode: u32::from_str_radix(mode, 8).unwrap_or(0),
                            is_dir: *kind == "directory",
                            sha256: (*sha != "-").then(|| sha.to_string()),
                        },
                    );
                }
            }
            ["S", path, serial] => {
                if let Ok(n) = serial.parse() {
                    f.serials.insert(path.to_string(), n);
                }
            }
            ["L", root, target] if !target.is_empty() => {
                f.current_release
                    .insert(root.to_string(), target.to_string());
            }
            ["V", name, enabled, active] => {
                f.services.insert(
                    name.to_string(),
                    ServiceFact {
                        enabled: *enabled == "enabled",
                        active: *active == "active",
                    },
                );
            }
            ["Q", "up"] => f.mysql = Some(MysqlFacts::default()),
            ["D", db] => {
                f.mysql
                    .get_or_insert_with(Default::default)
                    .databases
                    .insert(db.to_string());
            }
            ["M", user, auth] => {
                f.mysql
                    .get_or_insert_with(Default::default)
                    .users
                    .insert(user.to_string(), auth.to_string());
            }
            ["G", user, db, privilege] => {
                f.mysql
                    .get_or_insert_with(Default::default)
                    .grants
                    .entry((user.to_string(), db.to_string()))
                    .or_default()
                    .insert(privilege.to_string());
            }
            ["H", name] if !name.is_empty() && !f.pending_handlers.iter().any(|h| h == name) => {
                f.pending_handlers.push(name.to_string());
            }
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_record_kind() {
        let out = "P\tnginx\tii \nP\tbind9\tun \nU\tfoobar\n\
F\t/etc/x\troot bind 644 regular file\tabc123\nF\t/srv\troot root 755 directory\t-\n\
S\t/var/lib/bind/db.foobar.com\t2026112501\nL\t/srv/foobar\treleases/0123abcd\n\
V\tnginx\tenabled\tactive\nV\tnamed\tdisabled\tinactive\nQ\tup\nD\tfoobar\n\
M\tfoobar\t*ABC\nG\tfoobar\tfoobar\tSELECT\nH\treload nginx\nH\treload nginx\n";
        let f = parse(out);
        assert_eq!(f.packages, BTreeSet::from(["nginx".to_string()]));
        assert!(f.users.contains("foobar"));
        let x = &f.paths["/etc/x"];
        assert_eq!((x.group.as_str(), x.mode, x.is_dir), ("bind", 0o644, false));
        assert_eq!(x.sha256.as_deref(), Some("abc123"));
        assert!(f.paths["/srv"].is_dir);
        assert_eq!(f.serials["/var/lib/bind/db.foobar.com"], 2026112501);
        assert_eq!(f.current_release["/srv/foobar"], "releases/0123abcd");
        assert_eq!(
            f.services["nginx"],
            ServiceFact {
                enabled: true,
                active: true
            }
        );
        assert_eq!(f.services["named"], ServiceFact::default());
        let m = f.mysql.unwrap();
        assert!(m.databases.contains("foobar"));
        assert_eq!(m.users["foobar"], "*ABC");
        assert!(m.grants[&("foobar".into(), "foobar".into())].contains("SELECT"));
        assert_eq!(f.pending_handlers, vec!["reload nginx".to_string()]);
    }

    #[test]
    fn empty_output_means_a_bare_server() {
        assert_eq!(parse(""), Facts::default());
    }
}
