//! The lab harness: the one way a test of the lab tier (tests/lab_*.rs)
//! brings lab servers up, takes its turn on them, provisions them, runs
//! commands on them and reaches their services. Compiled only with the
//! `lab` feature; everything here needs root and the lab (and some of it
//! wrk, nmap or curl).

use std::ffi::{OsStr, OsString};
use std::process::Output;
use std::sync::{Mutex, MutexGuard, OnceLock};

use assert_cmd::Command;

use super::{foobar, inventory_with, text, LAB};

/// The main lab's one server, and its address.
pub const LAB_SERVER: &str = "web1";
pub const LAB_ADDRESS: &str = "10.250.0.10";
/// Its `ipv6` in inventory/lab.yml.
pub const LAB_ADDRESS_V6: &str = "fd00:fb:afa::a";

/// Lab tests in one binary take turns: they share servers.
pub fn lab_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Brings the lab of `inventory` up once per test binary; a lab that is
/// already up is reused as it is.
pub fn lab_up(inventory: &str) {
    static UP: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let mut done = UP.get_or_init(Default::default).lock().unwrap();
    if done.iter().any(|i| i == inventory) {
        return;
    }
    let out = foobar()
        .args(["-i", inventory, "lab", "up"])
        .output()
        .unwrap();
    assert!(out.status.success(), "lab up failed: {}", text(&out.stderr));
    done.push(inventory.to_string());
}

/// Runs one command on a lab server over SSH (host key checked).
pub fn on_server(inventory: &str, server: &str, command: &str) -> Output {
    foobar()
        .args(["-i", inventory, "lab", "ssh", server, command])
        .output()
        .unwrap()
}

pub fn on_server_ok(inventory: &str, server: &str, command: &str) -> String {
    let out = on_server(inventory, server, command);
    assert!(
        out.status.success(),
        "`{command}` failed on {server}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// What a lab server's sshd has logged so far: logins accepted, and
/// sessions started (one a command, also over a kept connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshContacts {
    pub logins: usize,
    pub sessions: usize,
}

impl SshContacts {
    /// The contacts since `before`, less the one login and session that
    /// counting itself makes.
    pub fn since(self, before: SshContacts) -> SshContacts {
        SshContacts {
            logins: self.logins - before.logins - 1,
            sessions: self.sessions - before.sessions - 1,
        }
    }
}

/// Counts from the server's sshd log (LogLevel VERBOSE), in one login.
pub fn ssh_contacts(inventory: &str, server: &str) -> SshContacts {
    let counts = on_server_ok(
        inventory,
        server,
        "journalctl -t sshd --no-pager -o cat > /tmp/.sshd.log; \
         grep -c 'Accepted publickey' /tmp/.sshd.log; grep -c 'Starting session' /tmp/.sshd.log; true",
    );
    let mut n = counts.split_whitespace().map(|c| c.parse().unwrap());
    SshContacts {
        logins: n.next().unwrap(),
        sessions: n.next().unwrap(),
    }
}

/// A plain HTTP GET to a lab server with a Host header; (status, body).
pub fn http_get(address: &str, host: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((address, 80)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A copy of the project (playbooks, templates, apps, inventory) to change
/// for one test; returns its folder. The lab inventory in it points at the
/// copy's code base.
pub fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["playbooks", "templates", "apps", "inventory"] {
        copy_tree(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(sub),
            &dir.path().join(sub),
        );
    }
    dir
}

/// `from` copied to `to`, folders and files.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Appends to (or creates) a file of a project copy.
pub fn append(dir: &std::path::Path, file: &str, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(file))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// `foobar -i INVENTORY [--project DIR] provision [--json] [ARGS]`: the one
/// way a test provisions lab servers. `.json()` runs it with `--json`,
/// `.text()` without; neither asserts anything.
///
/// ```ignore
/// let (code, json, err) = provision(LAB).args(&["--check"]).json();
/// let (code, out) = provision(copy.path().join(LAB)).project(copy.path()).text();
/// ```
pub fn provision(inventory: impl AsRef<OsStr>) -> Provision {
    Provision {
        inventory: inventory.as_ref().to_owned(),
        project: None,
        args: Vec::new(),
    }
}

/// A `foobar provision` to run: see [`provision`].
pub struct Provision {
    inventory: OsString,
    project: Option<OsString>,
    args: Vec<String>,
}

impl Provision {
    /// `--project DIR`: the playbook, templates and apps of a project
    /// copy (see [`project_copy`]).
    pub fn project(mut self, dir: impl AsRef<OsStr>) -> Self {
        self.project = Some(dir.as_ref().to_owned());
        self
    }

    /// More arguments after `provision`: `--check`, `--limit web2`...
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    fn command(&self, json: bool) -> Command {
        let mut cmd = foobar();
        cmd.arg("-i").arg(&self.inventory);
        if let Some(dir) = &self.project {
            cmd.arg("--project").arg(dir);
        }
        cmd.arg("provision");
        if json {
            cmd.arg("--json");
        }
        cmd.args(&self.args);
        cmd
    }

    /// With `--json`: (exit code, the JSON result or null, stderr).
    pub fn json(self) -> (Option<i32>, serde_json::Value, String) {
        let out = self.command(true).output().unwrap();
        (
            out.status.code(),
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
            text(&out.stderr),
        )
    }

    /// Without `--json`: (exit code, stdout then stderr).
    pub fn text(self) -> (Option<i32>, String) {
        let out = self.command(false).output().unwrap();
        (
            out.status.code(),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    }
}

/// The lab of `inventory` up and provisioned, exit 0.
pub fn converged(inventory: &str) {
    lab_up(inventory);
    let (code, out) = provision(inventory).text();
    assert_eq!(code, Some(0), "{out}");
}

/// A copy of the lab inventory in `dir` with `changes` made to its text;
/// the code base path made absolute so that the copy works from anywhere.
pub fn lab_inventory_with(dir: &std::path::Path, changes: &[(&str, &str)]) -> std::path::PathBuf {
    inventory_with(LAB, dir, changes)
}

/// `foobar -i INVENTORY restart --json ARGS`: (exit code, JSON result, stderr).
pub fn restart_json(inventory: &str, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    run_json(inventory, "restart", args)
}

/// `foobar -i INVENTORY COMMAND --json ARGS`, for commands other than
/// provision (see [`provision`]): (exit code, JSON result, stderr).
pub fn run_json(
    inventory: impl AsRef<OsStr>,
    command: &str,
    args: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    let out = foobar()
        .arg("-i")
        .arg(inventory)
        .args([command, "--json"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        text(&out.stderr),
    )
}

/// The lab server back to pristine (the lab brought up if need be).
pub fn pristine() {
    lab_up(LAB);
    foobar()
        .args(["-i", LAB, "lab", "reset", LAB_SERVER])
        .assert()
        .success();
}

/// Starts `foobar -v ARGS` from the project root, its progress (stderr)
/// piped for `watch_for_line`.
pub fn spawn_verbose(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_foobar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "0")
        .arg("-v")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads a run's progress (stderr, -v) until a line holds `needle`: the
/// moment it announces, whatever the machine's speed; Err after 300 s. The
/// rest of stderr keeps draining, so the run never blocks on a full pipe;
/// the handle gives every line once the run ends.
pub fn watch_for_line(
    run: &mut std::process::Child,
    needle: &str,
) -> Result<std::thread::JoinHandle<Vec<String>>, String> {
    use std::io::BufRead;
    let stderr = run.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = needle.to_string();
    let reader = std::thread::spawn(move || {
        let mut seen = false;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if !seen && line.contains(&wanted) {
                seen = true;
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(std::time::Duration::from_secs(300))
        .map(|()| reader)
        .map_err(|_| format!("the run never reached `{needle}`"))
}

/// wrk on `url` (Host: www.foobar.com) for `secs` seconds while `during`
/// runs; (requests, failures: non-2xx/3xx plus socket errors). Each
/// request on its own connection: nginx's reload can close an idle keep-alive connection as
/// a client reuses it (a race of nginx's own, which a load balancer's
/// drain removes), and that is not what this test is about.
pub fn wrk_under_load(url: &str, secs: u32, keep_alive: bool, during: impl FnOnce()) -> (u64, u64) {
    let child = std::process::Command::new("wrk")
        .args(["-t1", "-c4", &format!("-d{secs}s"), "--timeout", "5s"])
        .args(["-H", "Host: www.foobar.com"])
        .args(if keep_alive {
            &[][..]
        } else {
            &["-H", "Connection: close"][..]
        })
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    during();
    let out = text(&child.wait_with_output().unwrap().stdout);
    let number = |line: &str, key: &str| -> u64 {
        line.split(key)
            .nth(1)
            .and_then(|r| {
                r.split(|c: char| !c.is_ascii_digit())
                    .find(|s| !s.is_empty())
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let mut requests = 0;
    let mut failed = 0;
    for line in out.lines() {
        if line.contains("requests in") {
            requests = line.split_whitespace().next().unwrap().parse().unwrap();
        }
        if line.contains("Non-2xx or 3xx responses:") {
            failed += number(line, "responses:");
        }
        if line.contains("Socket errors:") {
            for key in ["connect", "read", "write", "timeout"] {
                failed += number(line, key);
            }
        }
    }
    (requests, failed)
}

/// Ports nmap finds open from this machine.
pub fn open_ports(address: &str, args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("nmap")
        .args(["-Pn", "-n", "--min-rate", "5000", "-T4", "-oG", "-"])
        .args(args)
        .arg(address)
        .output()
        .unwrap();
    let report = text(&out.stdout);
    report
        .lines()
        .filter_map(|l| l.split("Ports: ").nth(1))
        .flat_map(|ports| ports.split(", "))
        .filter(|p| p.split('/').nth(1) == Some("open"))
        .map(|p| p.split('/').next().unwrap().trim().to_string())
        .collect()
}

/// `systemd-analyze security`'s exposure of each service (0 to 10).
pub fn exposure(report: &str, unit: &str) -> f64 {
    report
        .lines()
        .find(|l| l.starts_with(&format!("{unit}.service")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{unit} in {report}"))
}
