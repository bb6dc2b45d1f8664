//! Secrets never leak; host keys are always verified; a wrong key is
//! refused quickly with exit 3.

mod common;

use std::time::{Duration, Instant};

use common::lab::*;
use common::*;

/// A unique secret for this run; never written in any file of the repo.
fn marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("Leak-Marker-{:x}-{}", nanos, std::process::id())
}

#[test]
fn secrets_appear_in_no_output_log_or_local_file() {
    let _turn = lab_turn();
    lab_up(LAB);
    let marker = marker();
    let marker = marker.as_str();
    let dir = tempfile::tempdir().unwrap();
    let inv = lab_inventory_with(
        dir.path(),
        &[(
            "file:/var/lib/foobar/lab/secrets/mysql_password",
            "env:FOOBAR_MARKER_PASSWORD",
        )],
    );
    let inv = inv.to_str().unwrap();
    let render_dir = dir.path().join("rendered");
    let runs: Vec<Vec<&str>> = vec![
        vec!["-v", "-i", inv, "provision", "--json"],
        vec!["-v", "-i", inv, "provision", "--check", "--diff", "--json"],
        vec!["-vv", "-i", inv, "provision", "--diff"],
        vec![
            "-v",
            "-i",
            inv,
            "render",
            "--out",
            render_dir.to_str().unwrap(),
        ],
        vec!["-v", "-i", inv, "render"],
        vec!["-v", "-i", inv, "dns-check", "--json"],
        vec!["-v", "-i", inv, "lab", "status", "--json"],
    ];
    let mut first = true;
    for args in runs {
        let out = foobar()
            .args(&args)
            .env("FOOBAR_MARKER_PASSWORD", marker)
            .output()
            .unwrap();
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success() || out.status.code() == Some(4),
            "{args:?}: {all}"
        );
        assert!(!all.contains(marker), "{args:?} printed the secret");
        if first {
            // The password really changed on the server: the run had work to do.
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(json["totals"]["changed"].as_u64().unwrap() > 0, "{all}");
            first = false;
        }
    }
    // Rendered files carry the mask, not the secret.
    let env = std::fs::read_to_string(render_dir.join("web1/etc/foobar/app.env")).unwrap();
    assert!(env.contains("DB_PASSWORD=\"********\""));
    // Local files: the project, the lab folder (the servers' own disks
    // under servers/ aside), the test's folder.
    let local = std::process::Command::new("grep")
        .args([
            "-rl",
            "--exclude-dir=target",
            "--exclude-dir=.git",
            "--exclude-dir=servers",
            marker,
            env!("CARGO_MANIFEST_DIR"),
            "/var/lib/foobar/lab",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(text(&local.stdout), "", "local files holding the secret");
    // The server: only the 0600 file that must hold it; no log has it.
    let holders = on_server_ok(
        LAB,
        LAB_SERVER,
        &format!(
            "grep -rl {marker} /etc /var/log /srv /var/lib/foobar /root /tmp 2>/dev/null || true"
        ),
    );
    assert_eq!(holders.trim(), "/etc/foobar/app.env");
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "stat -c '%a %U' /etc/foobar/app.env").trim(),
        "600 root"
    );
    let journal = on_server_ok(
        LAB,
        LAB_SERVER,
        &format!("journalctl --no-pager -o cat | grep -c {marker} || true"),
    );
    assert_eq!(journal.trim(), "0");
    // The lab's own secret file is 0600 too.
    let mode = std::fs::metadata("/var/lib/foobar/lab/secrets/mysql_password").unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // Rotating back: the server's files hold the marker as the old value,
    // which is no longer one of the run's secrets. Neither the diff nor -vv
    // shows it, nor the hash MariaDB keeps of it.
    let out = foobar()
        .args(["-vv", "-i", LAB, "provision", "--check", "--diff"])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("-DB_PASSWORD=********\n"), "{all}");
    assert!(all.contains("+DB_PASSWORD=******** (new value)"), "{all}");
    assert!(!all.contains(marker), "the old secret in a diff: {all}");
    assert!(!all.contains(&native_hash(marker)), "its hash: {all}");

    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "back to the lab password: {out}");
}

/// MariaDB's mysql_native_password hash, as `authentication_string` holds it.
fn native_hash(password: &str) -> String {
    use sha1::{Digest, Sha1};
    let twice = Sha1::digest(Sha1::digest(password.as_bytes()));
    format!(
        "*{}",
        twice.iter().map(|b| format!("{b:02X}")).collect::<String>()
    )
}

/// A fresh ed25519 key pair in `dir`; returns the private key's path.
fn new_key(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(made.success());
    key
}

#[test]
fn a_changed_host_key_is_refused() {
    let _turn = lab_turn();
    lab_up(LAB);
    let dir = tempfile::tempdir().unwrap();
    let other = new_key(dir.path(), "other");
    let fake = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut parts = fake.split_whitespace();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "{LAB_ADDRESS} {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();
    let known_hosts = format!("known_hosts: {}", known.display());
    let inv = lab_inventory_with(
        dir.path(),
        &[(
            "known_hosts: /var/lib/foobar/lab/known_hosts",
            known_hosts.as_str(),
        )],
    );
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "provision"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("host key of 10.250.0.10 is unknown or has changed"),
        "{all}"
    );
}

#[test]
fn a_wrong_key_is_refused_quickly_with_exit_3() {
    let _turn = lab_turn();
    lab_up(LAB);
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "wrong");
    let identity = format!("identity_file: {}", key.display());
    let inv = lab_inventory_with(
        dir.path(),
        &[(
            "identity_file: /var/lib/foobar/lab/id_ed25519",
            identity.as_str(),
        )],
    );
    let start = Instant::now();
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "provision"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("cannot reach web1"), "{all}");
}

#[test]
fn a_release_is_readable_by_the_apps_group_only_and_nginx_still_serves_it() {
    let _turn = lab_turn();
    lab_up(LAB);
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
    // Nothing of the code base is open to other users...
    let releases = on_server_ok(LAB, LAB_SERVER, "stat -c '%a %U %G' /srv/foobar/releases");
    assert_eq!(releases.trim(), "750 root foobar");
    let as_nobody = on_server(
        LAB,
        LAB_SERVER,
        "setpriv --reuid=nobody --regid=nogroup --clear-groups cat /srv/foobar/current/app.py",
    );
    assert!(!as_nobody.status.success(), "another user read the code");
    // ... yet the app and nginx (through the app's group) read it.
    let (status, body) = http_get(LAB_ADDRESS, "www.foobar.com", "/style.css");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(LAB_ADDRESS, "www.foobar.com", "/");
    assert_eq!(status, 200, "{body}");
}

/// ssh-audit (from PyPI, installed by scripts/host-setup.sh): what each
/// algorithm the server offers is marked with.
fn ssh_audit(address: &str) -> serde_json::Value {
    let out = std::process::Command::new("/var/lib/foobar/tools/venv/bin/ssh-audit")
        .args(["-j", "-t", "20", address])
        .output()
        .expect("ssh-audit (scripts/host-setup.sh installs it)");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn ssh_audit_fails_no_algorithm_and_clients_still_connect() {
    let _turn = lab_turn();
    lab_up(LAB);
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
    let audit = ssh_audit(LAB_ADDRESS);
    let mut failed = Vec::new();
    for kind in ["kex", "key", "enc", "mac"] {
        for alg in audit[kind].as_array().unwrap() {
            if alg["notes"]["fail"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
            {
                failed.push(format!("{kind} {}", alg["algorithm"]));
            }
        }
    }
    assert_eq!(failed, Vec::<String>::new(), "ssh-audit failures");
    // The post-quantum exchange is offered first.
    assert_eq!(
        audit["kex"][0]["algorithm"],
        "sntrup761x25519-sha512@openssh.com"
    );
    // An ordinary client, and one that knows no post-quantum exchange
    // (OpenSSH before 8.5), still log in.
    for kex in [None, Some("curve25519-sha256")] {
        let mut ssh = std::process::Command::new("ssh");
        ssh.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "UserKnownHostsFile=/var/lib/foobar/lab/known_hosts",
            "-i",
            "/var/lib/foobar/lab/id_ed25519",
        ]);
        if let Some(kex) = kex {
            ssh.args(["-o", &format!("KexAlgorithms={kex}")]);
        }
        let out = ssh
            .args([&format!("root@{LAB_ADDRESS}"), "true"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{kex:?}: {}", text(&out.stderr));
    }
}
