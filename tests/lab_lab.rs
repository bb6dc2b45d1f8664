//! `foobar lab` on real servers: a second lab on its own subnet, with two
//! servers side by side, so that the main lab stays up for other tests;
//! and, run as nobody (which takes root), its refusal without root.

mod common;

use std::path::Path;

use common::lab::*;
use common::*;

const PAIR: &str = "tests/fixtures/lab-pair.yml";
const PAIR_DIR: &str = "/var/lib/foobar/test-lab";

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

    // Status lists both as running, as JSON too.
    let status = foobar()
        .args(["-i", PAIR, "lab", "status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    let v = &v["servers"];
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["state"] == "running"));

    // Up again changes nothing: the same nspawn keeps running.
    let pid_before =
        std::fs::read_to_string(format!("{PAIR_DIR}/servers/pair2/nspawn.pid")).unwrap();
    foobar().args(["-i", PAIR, "lab", "up"]).assert().success();
    let pid_after =
        std::fs::read_to_string(format!("{PAIR_DIR}/servers/pair2/nspawn.pid")).unwrap();
    assert_eq!(pid_before, pid_after);

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

    // A killed server (a crash) is cleaned up and booted again by `up`.
    let pid = std::fs::read_to_string(format!("{PAIR_DIR}/servers/pair2/nspawn.pid")).unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
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
