//! The load balancers' pool of web servers, through HAProxy's runtime API
//! (its admin socket, local to each load balancer): take a server out by
//! draining it, wait until its sessions are done, put it back.

use std::time::Duration;

use crate::shell::quote;

/// The admin socket Debian's package and foobar's haproxy.cfg set.
const ADMIN_SOCKET: &str = "/run/haproxy/admin.sock";
/// The backend of the web servers in templates/haproxy/haproxy.cfg.j2.
pub const BACKEND: &str = "web";

/// Sends `command` to HAProxy and fails on an answer that is not empty
/// (the runtime API answers a successful `set server` with nothing).
fn api(command: &str) -> String {
    format!(
        "answer=$(echo {cmd} | socat stdio {sock})\n\
         if [ -n \"$answer\" ]; then echo \"HAProxy: $answer\" >&2; exit 1; fi\n",
        cmd = quote(command),
        sock = ADMIN_SOCKET,
    )
}

/// A `show stat` column of the server (CSV: 5 = scur, 18 = status).
fn stat(server: &str, column: u8) -> String {
    format!(
        "echo 'show stat' | socat stdio {ADMIN_SOCKET} | awk -F, -v s={server} '$1 == \"{BACKEND}\" && $2 == s {{ print ${column} }}'",
        server = quote(server),
    )
}

/// Out of balancing, still health-checked, current sessions finish; then
/// waits until none is left, failing loudly after `timeout`.
pub fn drain_script(server: &str, timeout: Duration) -> String {
    set_then_wait(server, "drain", 5, "0", "sessions", timeout)
}

/// Back in balancing; waits until HAProxy sees it up (its health check
/// went on while it was drained, so that is at once when it is healthy).
pub fn ready_script(server: &str, timeout: Duration) -> String {
    set_then_wait(server, "ready", 18, "UP", "its state", timeout)
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
        set = api(&format!("set server {BACKEND}/{server} state {state}")),
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
                "echo 'set server web/web1 state drain' | socat stdio /run/haproxy/admin.sock"
            ),
            "{d}"
        );
        assert!(d.contains("[ $i -gt 120 ]"), "{d}");
        assert!(d.contains("print $5"), "{d}");
        let r = ready_script("web2", Duration::from_secs(10));
        assert!(r.contains("state ready"), "{r}");
        assert!(r.contains("!= UP"), "{r}");
    }
}
