//! The load balancers' pool of web servers, through HAProxy's runtime API
//! (its admin socket, local to each load balancer): take a server out by
//! draining it, wait until its sessions are done, put it back.

use std::time::Duration;

use crate::shell::quote;

/// The admin socket Debian's package and foobar's haproxy.cfg set.
const ADMIN_SOCKET: &str = "/run/haproxy/admin.sock";
/// The backend of the web servers in templates/haproxy/haproxy.cfg.j2.
pub const BACKEND: &str = "web";
/// Its twin for HTTPS (TLS passed through), when the site has TLS.
const TLS_BACKEND: &str = "web_tls";

/// Sets the server's state in each web backend HAProxy has, failing on an
/// answer that is not empty (the runtime API answers a successful `set
/// server` with nothing).
fn set_state(server: &str, state: &str) -> String {
    format!(
        "for b in $(echo 'show backend' | socat stdio {ADMIN_SOCKET} | grep -x -e {BACKEND} -e {TLS_BACKEND}); do\n\
         \x20 answer=$(echo \"set server $b/\"{server}\" state {state}\" | socat stdio {ADMIN_SOCKET})\n\
         \x20 if [ -n \"$answer\" ]; then echo \"HAProxy: $answer\" >&2; exit 1; fi\n\
         done\n",
        server = quote(server),
    )
}

/// A `show stat` column of the server (CSV: 5 = scur, 18 = status): the
/// sum over both web backends for a count, the HTTP backend's otherwise
/// (both check the server the same way).
fn stat(server: &str, column: u8) -> String {
    let pick = if column == SESSIONS {
        format!("($1 == \"{BACKEND}\" || $1 == \"{TLS_BACKEND}\") && $2 == s {{ n += ${column} }} END {{ print n + 0 }}")
    } else {
        format!("$1 == \"{BACKEND}\" && $2 == s {{ print ${column} }}")
    };
    format!(
        "echo 'show stat' | socat stdio {ADMIN_SOCKET} | awk -F, -v s={server} '{pick}'",
        server = quote(server),
    )
}

/// `show stat` columns.
const SESSIONS: u8 = 5;
const STATUS: u8 = 18;

/// Out of balancing, still health-checked, current sessions finish; then
/// waits until none is left, failing loudly after `timeout`.
pub fn drain_script(server: &str, timeout: Duration) -> String {
    set_then_wait(server, "drain", SESSIONS, "0", "sessions", timeout)
}

/// Back in balancing; waits until HAProxy sees it up (its health check
/// went on while it was drained, so that is at once when it is healthy).
pub fn ready_script(server: &str, timeout: Duration) -> String {
    set_then_wait(server, "ready", STATUS, "UP", "its state", timeout)
}

/// Sets the server's state, then polls a `show stat` column every 0.25 s
/// until it reads `want`; after `timeout` fails saying what it read.
fn set_then_wait(
    server: &str,
    state: &str,
    column: u8,
    want: &str,
    what: &str,
    timeout: Duration,
) -> String {
    let tries = timeout.as_millis().div_ceil(250).max(1);
    format!(
        "{set}i=0\n\
         while v=$({stat}); [ \"$v\" != {want} ]; do\n\
         \x20 i=$((i + 1))\n\
         \x20 if [ $i -gt {tries} ]; then echo \"{server} {state}: {what} ${{v:-unknown}}, not {want}, after {secs} s\" >&2; exit 1; fi\n\
         \x20 sleep 0.25\n\
         done\n",
        set = set_state(server, state),
        stat = stat(server, column),
        secs = timeout.as_secs(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_server_quoted_and_bound_their_wait() {
        let d = drain_script("web1", Duration::from_secs(30));
        assert!(
            d.contains(
                "echo \"set server $b/\"web1\" state drain\" | socat stdio /run/haproxy/admin.sock"
            ),
            "{d}"
        );
        assert!(d.contains("[ $i -gt 120 ]"), "{d}");
        assert!(d.contains("n += $5"), "{d}");
        assert!(d.contains("grep -x -e web -e web_tls"), "{d}");
        let r = ready_script("web2", Duration::from_secs(10));
        assert!(r.contains("state ready"), "{r}");
        assert!(r.contains("!= UP"), "{r}");
    }
}
