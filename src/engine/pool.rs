//! The load balancers' pools (the web servers; a Galera cluster's
//! members), through HAProxy's runtime API (its admin socket, local to
//! each load balancer): take a server out, wait until its sessions are
//! done, put it back.

use std::time::Duration;

use crate::shell::quote;

/// The admin socket Debian's package and foobar's haproxy.cfg set.
const ADMIN_SOCKET: &str = "/run/haproxy/admin.sock";
/// A pool: the backends of templates/haproxy/haproxy.cfg.j2 that hold
/// the same servers, and whether they keep one server for every
/// connection (a stick table).
pub struct Pool {
    /// The first one's state stands for all (they check a server alike).
    backends: &'static [&'static str],
    sticky: bool,
}

/// The web servers, over HTTP and HTTPS (TLS passed through).
pub const WEB: Pool = Pool {
    backends: &["web", "web_tls"],
    sticky: false,
};
/// A Galera cluster's members: the one writer is the stick table's entry.
pub const DB: Pool = Pool {
    backends: &["mysql"],
    sticky: true,
};

impl Pool {
    /// The pool as results name it.
    pub fn name(&self) -> &'static str {
        self.backends[0]
    }

    /// Sets the server's state in each backend of the pool HAProxy has,
    /// failing on an answer that is not empty (the runtime API answers a
    /// successful `set server` with nothing).
    fn set_state(&self, server: &str, state: &str) -> String {
        let names: Vec<String> = self.backends.iter().map(|b| format!("-e {b}")).collect();
        format!(
            "for b in $(echo 'show backend' | socat stdio {ADMIN_SOCKET} | grep -x {names}); do\n\
             \x20 answer=$(echo \"set server $b/\"{server}\" state {state}\" | socat stdio {ADMIN_SOCKET})\n\
             \x20 if [ -n \"$answer\" ]; then echo \"HAProxy: $answer\" >&2; exit 1; fi\n\
             done\n",
            names = names.join(" "),
            server = quote(server),
        )
    }

    /// A `show stat` column of the server (CSV: 5 = scur, 18 = status):
    /// the sum over the pool's backends for a count, the first one's
    /// otherwise.
    fn stat(&self, server: &str, column: u8) -> String {
        let pick = if column == SESSIONS {
            let any: Vec<String> = self
                .backends
                .iter()
                .map(|b| format!("$1 == \"{b}\""))
                .collect();
            format!(
                "({}) && $2 == s {{ n += ${column} }} END {{ print n + 0 }}",
                any.join(" || ")
            )
        } else {
            format!("$1 == \"{}\" && $2 == s {{ print ${column} }}", self.name())
        };
        format!(
            "echo 'show stat' | socat stdio {ADMIN_SOCKET} | awk -F, -v s={server} '{pick}'",
            server = quote(server),
        )
    }

    /// Out of balancing, still health-checked, current sessions finish;
    /// then waits until none is left, failing loudly after `timeout`. In
    /// a sticky pool the entry is cleared, so that the next connection
    /// picks (and keeps) another server, and the server goes into
    /// maintenance once it has no session left: its restart then fails
    /// no check that would cut a session (`on-marked-down
    /// shutdown-sessions`, kept for servers that die).
    pub fn drain_script(&self, server: &str, timeout: Duration) -> String {
        let mut script = self.set_state(server, "drain");
        if self.sticky {
            // Only when it holds the entry: the writer moves only then.
            for b in self.backends {
                script.push_str(&format!(
                    "if echo 'show table {b}' | socat stdio {ADMIN_SOCKET} | grep -q \"server_key=\"{server}\"$\"; then\n\
                     \x20 echo 'clear table {b}' | socat stdio {ADMIN_SOCKET} >/dev/null\n\
                     fi\n",
                    server = quote(server),
                ));
            }
        }
        script.push_str(&self.wait_for(server, SESSIONS, "0", "sessions", "drain", timeout));
        if self.sticky {
            script.push_str(&self.set_state(server, "maint"));
        }
        script
    }

    /// Back in balancing; waits until HAProxy sees it up (its health
    /// check went on while it was out, so that is at once when it is
    /// healthy).
    pub fn ready_script(&self, server: &str, timeout: Duration) -> String {
        self.set_state(server, "ready")
            + &self.wait_for(server, STATUS, "UP", "its state", "ready", timeout)
    }

    /// Polls a `show stat` column every 0.25 s until it reads `want`;
    /// after `timeout` fails saying what it read.
    fn wait_for(
        &self,
        server: &str,
        column: u8,
        want: &str,
        what: &str,
        state: &str,
        timeout: Duration,
    ) -> String {
        let tries = timeout.as_millis().div_ceil(250).max(1);
        format!(
            "i=0\n\
             while v=$({stat}); [ \"$v\" != {want} ]; do\n\
             \x20 i=$((i + 1))\n\
             \x20 if [ $i -gt {tries} ]; then echo \"{server} {state}: {what} ${{v:-unknown}}, not {want}, after {secs} s\" >&2; exit 1; fi\n\
             \x20 sleep 0.25\n\
             done\n",
            stat = self.stat(server, column),
            secs = timeout.as_secs(),
        )
    }
}

/// `show stat` columns.
const SESSIONS: u8 = 5;
const STATUS: u8 = 18;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_server_quoted_and_bound_their_wait() {
        let d = WEB.drain_script("web1", Duration::from_secs(30));
        assert!(
            d.contains(
                "echo \"set server $b/\"web1\" state drain\" | socat stdio /run/haproxy/admin.sock"
            ),
            "{d}"
        );
        assert!(d.contains("[ $i -gt 120 ]"), "{d}");
        assert!(d.contains("n += $5"), "{d}");
        assert!(d.contains("grep -x -e web -e web_tls"), "{d}");
        let r = WEB.ready_script("web2", Duration::from_secs(10));
        assert!(r.contains("state ready"), "{r}");
        assert!(r.contains("!= UP"), "{r}");
        let m = DB.drain_script("db1", Duration::from_secs(10));
        assert!(m.contains("grep -x -e mysql)"), "{m}");
        assert!(m.contains("clear table mysql"), "{m}");
        // Into maintenance only once its sessions are done.
        assert!(
            m.find("state drain") < m.find("!= 0") && m.find("!= 0") < m.find("state maint"),
            "{m}"
        );
        assert!(!WEB
            .drain_script("web1", Duration::from_secs(1))
            .contains("maint"));
    }
}
