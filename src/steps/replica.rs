//! `replica`: this MariaDB replicates the primary with GTID. A replica that
//! has not got the database yet is first seeded with a consistent copy
//! (mariadb-dump from the primary, with its GTID position), then
//! `CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos` and `START SLAVE`. The
//! replication password travels on stdin only; the server keeps its hash to
//! tell when it changed (MariaDB does not show it).

use serde::{Deserialize, Serialize};

use super::parts::{deferred_fact_script, mysql_fact, mysql_native_hash};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::inventory::SqlName;
use crate::shell::quote;

pub struct Replica;

/// The hash of the replication password this replica was set up with.
const AUTH: &str = "/var/lib/foobar/replica-auth";
/// Seconds between the replica's attempts to reach the primary (MariaDB's
/// default, 60, leaves a replica behind for a minute after every restart
/// of the primary).
const CONNECT_RETRY: u32 = 2;
/// How long the script waits for both replication threads to run.
const START_TIMEOUT_SECS: u32 = 20;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The primary's address (templated).
    pub primary: String,
    /// The replication user on the primary.
    pub user: String,
    /// The database a new replica is seeded with.
    pub database: String,
    /// This server's replication id, as its config file sets it: MariaDB
    /// is restarted first when it runs with another (a replica with the
    /// primary's id would skip every event as its own).
    pub server_id: String,
    /// The CA the primary's certificate is verified by: replication (and
    /// the seeding copy) over TLS. Empty: plaintext (templated).
    #[serde(default)]
    pub ssl_ca: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub primary: String,
    pub user: String,
    pub database: String,
    pub server_id: u32,
    pub password: String,
    /// None: no TLS.
    pub ssl_ca: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// MariaDB answered.
    #[serde(default)]
    pub up: bool,
    /// The database is here (seeded).
    #[serde(default)]
    pub seeded: bool,
    /// The id MariaDB runs with.
    #[serde(default)]
    pub server_id: u32,
    #[serde(default)]
    pub status: SlaveStatus,
    /// It was set up with the inventory's password (its hash compared on
    /// the server: no hash comes back in the output).
    #[serde(default)]
    pub password_matches: bool,
}

/// Prints the replica's status, which `SlaveStatus::parse` reads.
pub const SHOW_STATUS: &str = "mysql -e 'SHOW SLAVE STATUS\\G'";

/// `SHOW SLAVE STATUS\G`, as far as foobar reads it (the replication
/// check too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaveStatus {
    pub master_host: String,
    pub master_user: String,
    /// `Slave_Pos` when replicating by GTID.
    pub using_gtid: String,
    /// Seconds between attempts to reach the primary.
    pub connect_retry: u32,
    /// `Yes` when it reaches the primary over TLS.
    pub ssl_allowed: String,
    pub ssl_ca_file: String,
    /// `Yes` when the primary's certificate must name its address.
    pub ssl_verify_server_cert: String,
    /// `Yes`, `No` or `Connecting`.
    pub io_running: String,
    pub sql_running: String,
    /// None when replication is stopped (MariaDB shows NULL).
    pub seconds_behind: Option<u64>,
    pub last_error: String,
}

impl SlaveStatus {
    pub fn parse(text: &str) -> Self {
        let mut s = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.trim_start().split_once(':') else {
                continue;
            };
            let value = value.trim().to_string();
            match key {
                "Master_Host" => s.master_host = value,
                "Master_User" => s.master_user = value,
                "Using_Gtid" => s.using_gtid = value,
                "Connect_Retry" => s.connect_retry = value.parse().unwrap_or_default(),
                "Master_SSL_Allowed" => s.ssl_allowed = value,
                "Master_SSL_CA_File" => s.ssl_ca_file = value,
                "Master_SSL_Verify_Server_Cert" => s.ssl_verify_server_cert = value,
                "Slave_IO_Running" => s.io_running = value,
                "Slave_SQL_Running" => s.sql_running = value,
                "Seconds_Behind_Master" => s.seconds_behind = value.parse().ok(),
                "Last_IO_Error" | "Last_SQL_Error" if !value.is_empty() => s.last_error = value,
                _ => {}
            }
        }
        s
    }

    /// Both threads run and the lag is known.
    pub fn healthy(&self) -> bool {
        self.io_running == "Yes" && self.sql_running == "Yes" && self.seconds_behind.is_some()
    }

    pub fn describe(&self) -> String {
        if self.master_host.is_empty() {
            return "not replicating: no primary is set".into();
        }
        let mut s = format!(
            "from {}: IO {}, SQL {}, {}",
            self.master_host,
            self.io_running,
            self.sql_running,
            match self.seconds_behind {
                Some(n) => format!("{n} s behind"),
                None => "lag unknown (stopped)".into(),
            }
        );
        if !self.last_error.is_empty() {
            s.push_str(&format!("; last error: {}", self.last_error));
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Point it at the primary (restarting MariaDB first when it runs
    /// with another id, seeding it when `seed`) and start.
    Setup { restart: bool, seed: bool },
    /// Set up right, but a thread is stopped: start it again.
    Start { error: String },
}

impl Kind for Replica {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let primary = cx.field("primary", &args.primary)?;
        if primary.parse::<std::net::IpAddr>().is_err() {
            return Err(cx.field_error("primary", &args.primary, "not an IP address"));
        }
        let user = cx.field("user", &args.user)?;
        let database = cx.field("database", &args.database)?;
        for n in [&user, &database] {
            SqlName::parse(n).map_err(|m| cx.error(m))?;
        }
        let server_id = cx
            .field("server_id", &args.server_id)?
            .parse::<u32>()
            .ok()
            .filter(|id| *id > 1)
            .ok_or_else(|| cx.error("server_id: a replica's id is a whole number above 1"))?;
        let password = cx.secrets.replication_password.clone().ok_or_else(|| {
            cx.error("a replica needs mysql.replication_password in the inventory")
        })?;
        let ssl_ca = Some(cx.field("ssl_ca", &args.ssl_ca)?)
            .filter(|p| !p.is_empty())
            .map(|p| {
                crate::inventory::ServerPath::parse(&p)
                    .map(|p| p.to_string())
                    .map_err(|m| cx.error(format!("ssl_ca: {m}")))
            })
            .transpose()?;
        Ok(Desired {
            primary,
            user,
            database,
            server_id,
            password,
            ssl_ca,
        })
    }

    fn label(d: &Desired) -> String {
        format!("replica of {} as {}", d.primary, d.user)
    }

    fn fact_script(d: &Desired) -> String {
        let seeded = format!(
            "SELECT 'I', @@server_id; SELECT 'D', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{}'",
            d.database
        );
        deferred_fact_script(&format!(
            "{query} && {SHOW_STATUS}\n\
             [ \"$(cat {AUTH} 2>/dev/null)\" = {hash} ] && echo M",
            query = mysql_fact(&seeded),
            hash = quote(&mysql_native_hash(&d.password)),
        ))
    }

    fn parse_fact(output: &str) -> Fact {
        let mut f = Fact {
            status: SlaveStatus::parse(output),
            ..Fact::default()
        };
        for line in output.lines() {
            match line.split('\t').collect::<Vec<_>>()[..] {
                ["Q"] => f.up = true,
                ["D", _] => f.seeded = true,
                ["I", id] => f.server_id = id.parse().unwrap_or_default(),
                ["M"] => f.password_matches = true,
                _ => {}
            }
        }
        f
    }

    fn plan(d: &Desired, f: &Fact, _: &PlanCx) -> Option<Change> {
        let st = &f.status;
        let tls = match &d.ssl_ca {
            Some(ca) => {
                st.ssl_allowed == "Yes" && &st.ssl_ca_file == ca && st.ssl_verify_server_cert == "Yes"
            }
            None => st.ssl_allowed != "Yes",
        };
        let set_up = st.master_host == d.primary
            && st.master_user == d.user
            && st.using_gtid == "Slave_Pos"
            && st.connect_retry == CONNECT_RETRY
            && tls
            && f.password_matches;
        let restart = f.server_id != d.server_id;
        if !f.up || !f.seeded || !set_up || restart {
            return Some(Change::Setup {
                restart,
                seed: !f.seeded,
            });
        }
        // `Connecting` is a running IO thread waiting on the network.
        (st.io_running == "No" || st.sql_running != "Yes").then(|| Change::Start {
            error: st.last_error.clone(),
        })
    }

    fn describe(c: &Change) -> String {
        match c {
            Change::Setup { restart, seed } => format!(
                "{}{}replicate",
                if *restart { "restart MariaDB with its replica id, " } else { "" },
                if *seed { "seed from the primary, " } else { "point at the primary, " },
            ),
            Change::Start { error } if error.is_empty() => "start replication".into(),
            Change::Start { error } => format!("start replication (it stopped: {error})"),
        }
    }

    fn script(d: &Desired, c: &Change, _: Option<&str>) -> Script {
        let (primary, user) = (quote(&d.primary), quote(&d.user));
        let seed = match c {
            // A consistent copy at one GTID position, loaded without
            // writing this server's binary log; the position is where
            // replication starts.
            Change::Setup { seed: true, .. } => format!(
                "copy=$(mktemp /var/lib/foobar/.replica-seed.XXXXXX)\n\
                 trap 'rm -f \"$copy\"' EXIT\n\
                 MYSQL_PWD=\"$pw\" mariadb-dump -h {primary} -u {user}{tls} --single-transaction --gtid --master-data=2 --databases {db} > \"$copy\"\n\
                 pos=$(sed -n \"s/^-- SET GLOBAL gtid_slave_pos='\\([0-9,-]*\\)';.*/\\1/p\" \"$copy\" | head -n 1)\n\
                 {{ echo 'SET sql_log_bin = 0;'; cat \"$copy\"; }} | mysql\n\
                 mysql -e \"SET GLOBAL gtid_slave_pos = '$pos'\"\n",
                db = quote(&d.database),
                tls = match &d.ssl_ca {
                    Some(ca) => format!(" --ssl --ssl-ca={} --ssl-verify-server-cert", quote(ca)),
                    None => String::new(),
                },
            ),
            _ => String::new(),
        };
        let setup = match c {
            Change::Setup { restart, .. } => format!(
                "{restart}mysql -e 'STOP SLAVE' >&2 || true\n{seed}\
                 printf \"CHANGE MASTER TO MASTER_HOST='%s', MASTER_USER='%s', MASTER_PASSWORD='%s', MASTER_CONNECT_RETRY={CONNECT_RETRY}, MASTER_USE_GTID=slave_pos{tls};\\n\" {primary} {user} \"$pw_sql\" | mysql\n\
                 (umask 077; printf '%s\\n' {hash} > {AUTH})\n",
                hash = quote(&mysql_native_hash(&d.password)),
                // A path checked at resolve: letters, digits, / . _ -.
                tls = match &d.ssl_ca {
                    Some(ca) => format!(
                        ", MASTER_SSL=1, MASTER_SSL_CA='{ca}', MASTER_SSL_VERIFY_SERVER_CERT=1"
                    ),
                    None => ", MASTER_SSL=0".into(),
                },
                restart = if *restart {
                    "systemctl restart mariadb >&2\n"
                } else {
                    ""
                },
            ),
            Change::Start { .. } => String::new(),
        };
        Script::new(format!(
            "IFS= read -r pw\nIFS= read -r pw_sql\nmkdir -p /var/lib/foobar\n{setup}mysql -e 'START SLAVE'\n\
             i=0\n\
             until st=$({SHOW_STATUS}); printf '%s\\n' \"$st\" | grep -q '^ *Slave_SQL_Running: Yes' \
             && printf '%s\\n' \"$st\" | grep -q '^ *Slave_IO_Running: Yes'; do\n\
             \x20 i=$((i + 1))\n\
             \x20 if [ $i -gt {wait} ]; then\n\
             \x20   printf '%s\\n' \"$st\" | grep -E 'Running|Last_.*Error|Master_Host' >&2\n\
             \x20   echo 'replication did not start' >&2; exit 1\n\
             \x20 fi\n\
             \x20 sleep 0.5\n\
             done\n",
            wait = START_TIMEOUT_SECS * 2,
        ))
        // The password as it is (for mariadb-dump), then as the body of an
        // SQL string (for CHANGE MASTER): on stdin, never a command line.
        .with_stdin(format!("{}\n{}\n", d.password, sql_string_body(&d.password)).into_bytes())
    }

    fn converged(d: &Desired, _: &Change, _: &Fact) -> Fact {
        Fact {
            up: true,
            seeded: true,
            server_id: d.server_id,
            status: SlaveStatus {
                master_host: d.primary.clone(),
                master_user: d.user.clone(),
                using_gtid: "Slave_Pos".into(),
                connect_retry: CONNECT_RETRY,
                ssl_allowed: if d.ssl_ca.is_some() { "Yes" } else { "No" }.into(),
                ssl_ca_file: d.ssl_ca.clone().unwrap_or_default(),
                ssl_verify_server_cert: if d.ssl_ca.is_some() { "Yes" } else { "No" }.into(),
                io_running: "Yes".into(),
                sql_running: "Yes".into(),
                seconds_behind: Some(0),
                last_error: String::new(),
            },
            password_matches: true,
        }
    }
}

/// `s` inside a single-quoted SQL string: `''` is a quote in any SQL mode,
/// `\\` a backslash in MariaDB's default one (foobar sets no other), so
/// any printable password is carried exactly.
fn sql_string_body(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_reaches_change_master_as_an_escaped_sql_string() {
        assert_eq!(sql_string_body("plain-Password-1"), "plain-Password-1");
        assert_eq!(
            sql_string_body(r#"it's "a" \ pass\%_"#),
            r#"it''s "a" \\ pass\\%_"#
        );
        let d = Desired {
            primary: "10.0.0.31".into(),
            user: "replication".into(),
            database: "foobar".into(),
            server_id: 2,
            password: r"o'k\pw".into(),
            ssl_ca: None,
        };
        let script = Replica::script(
            &d,
            &Change::Setup {
                restart: false,
                seed: true,
            },
            None,
        );
        assert_eq!(script.stdin.unwrap(), b"o'k\\pw\no''k\\\\pw\n");
        assert!(script.text.contains("MYSQL_PWD=\"$pw\" mariadb-dump"));
        assert!(script.text.contains("MASTER_PASSWORD='%s'"));
        assert!(script.text.contains("\"$pw_sql\" | mysql"));
        assert!(!script.text.contains("o'k"), "never on a command line");
    }
}
