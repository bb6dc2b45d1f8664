//! `foobar lab` on real servers: a second lab on its own subnet, with two
//! servers side by side, so that the main lab stays up for other tests;
//! and, run as nobody (which takes root), its refusal without root.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;

const PAIR: &str = "tests/fixtures/lab-pair.yml";
const PAIR_DIR: &str = "/var/lib/foobar/test-lab";

/// `lab status --json`'s servers.
fn status() -> Vec<serde_json::Value> {
    let out = foobar()
        .args(["-i", PAIR, "lab", "status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    v["servers"].as_array().unwrap().clone()
}

/// What `lab status --json` says of `name`.
fn status_of(name: &str) -> serde_json::Value {
    status().into_iter().find(|s| s["name"] == name).unwrap()
}

/// The leader pid `lab status --json` gives `name`.
fn leader_pid(name: &str) -> Option<u64> {
    status_of(name)["leader_pid"].as_u64()
}

fn nothing_left_behind() -> Vec<String> {
    let mut left = Vec::new();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(PAIR_DIR))
            .map(str::to_string),
    );
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        left.extend(
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("foobar-0afb00-")),
        );
    }
    for link in ["fbbr0afb00", "fbh0afb000a", "fbh0afb000b"] {
        if Path::new("/sys/class/net").join(link).exists() {
            left.push(link.to_string());
        }
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(PAIR_DIR)
                && (cmd.contains("systemd-nspawn") || cmd.contains("apt-cacher-ng"))
            {
                left.push(cmd);
            }
        }
    }
    left
}

#[test]
fn two_servers_up_reachable_reset_and_down_without_leftovers() {
    let _turn = lab_turn();
    // Up: both servers answer over SSH with host-key checking, and systemd
    // runs as PID 1 inside.
    let out = foobar().args(["-i", PAIR, "lab", "up"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (name, addr) in [("pair1", "10.251.0.10"), ("pair2", "10.251.0.11")] {
        let state = on_server(PAIR, name, "systemctl is-system-running");
        let state = text(&state.stdout);
        assert!(
            state.trim() == "running" || state.trim() == "degraded",
            "{name}: {state}"
        );
        assert_eq!(on_server_ok(PAIR, name, "hostname").trim(), name);
        assert!(on_server_ok(PAIR, name, "ip -4 addr show eth0").contains(addr));
        assert!(
            on_server_ok(PAIR, name, "ip route")
                .lines()
                .all(|l| !l.starts_with("default")),
            "lab servers have no default route"
        );
        assert_eq!(
            on_server_ok(PAIR, name, "cat /proc/1/comm").trim(),
            "systemd"
        );
    }

    // Host keys are checked: without the lab's known_hosts, ssh refuses.
    let refused = std::process::Command::new("ssh")
        .args([
            "-i",
            &format!("{PAIR_DIR}/id_ed25519"),
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "root@10.251.0.10",
            "true",
        ])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "an unknown host key must be refused"
    );

    // Status lists both as running, as JSON too, each with its leader:
    // the server's own PID 1, its systemd, as this machine numbers it.
    let servers = status();
    assert_eq!(servers.len(), 2);
    for s in &servers {
        assert_eq!(s["state"], "running", "{s}");
        let leader = s["leader_pid"].as_u64().unwrap();
        let comm = std::fs::read_to_string(format!("/proc/{leader}/comm")).unwrap();
        assert_eq!(comm.trim(), "systemd", "{s}");
        let nspid = std::fs::read_to_string(format!("/proc/{leader}/status")).unwrap();
        assert!(
            nspid
                .lines()
                .any(|l| l.starts_with("NSpid:") && l.ends_with("\t1")),
            "{s}: {nspid}"
        );
    }

    // Up again changes nothing: the same server keeps running.
    let leader_before = leader_pid("pair2");
    foobar().args(["-i", PAIR, "lab", "up"]).assert().success();
    assert_eq!(leader_pid("pair2"), leader_before);

    // Reset brings a server back to pristine, with new host keys on record.
    on_server_ok(
        PAIR,
        "pair1",
        "touch /root/dirty && apt-get --version >/dev/null",
    );
    foobar()
        .args(["-i", PAIR, "lab", "reset", "pair1"])
        .assert()
        .success();
    assert_eq!(
        on_server_ok(PAIR, "pair1", "ls /root/dirty 2>/dev/null || echo clean").trim(),
        "clean"
    );

    // A crash: `kill -9` of the pid status gives takes the server down,
    // as status sees within seconds, and `up` boots it again.
    let leader = leader_pid("pair2").expect("pair2 runs");
    assert!(std::process::Command::new("kill")
        .args(["-KILL", &leader.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while leader_pid("pair2").is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pair2 = status_of("pair2");
    assert_eq!(pair2["state"], "stopped", "{pair2}");
    assert!(pair2["leader_pid"].is_null(), "{pair2}");
    assert!(!on_server(PAIR, "pair2", "true").status.success());
    let out = foobar().args(["-i", PAIR, "lab", "up"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(on_server_ok(PAIR, "pair2", "hostname").trim(), "pair2");

    // `lab kill` returns once the server is gone, and `up` right after it
    // boots it again (it waits for nspawn's lock on the tree to be free).
    let killed = foobar()
        .args(["-i", PAIR, "--json", "lab", "kill", "pair2"])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{}", text(&killed.stderr));
    let killed: serde_json::Value = serde_json::from_slice(&killed.stdout).unwrap();
    assert!(
        killed["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "pair2" && s["state"] == "stopped" && s["leader_pid"].is_null()),
        "{killed}"
    );
    let out = foobar().args(["-i", PAIR, "lab", "up"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(on_server_ok(PAIR, "pair2", "hostname").trim(), "pair2");

    // Down leaves nothing: no mount, namespace, link or process.
    foobar()
        .args(["-i", PAIR, "lab", "down"])
        .assert()
        .success();
    let left = nothing_left_behind();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn the_lab_needs_root_and_says_so() {
    // setpriv (util-linux) runs foobar as nobody.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_foobar"))
        .args(["-i", LAB, "lab", "up"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("foobar lab needs root"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}
