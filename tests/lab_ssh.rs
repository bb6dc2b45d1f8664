//! SSH as users have it: what the inventory leaves out comes from the
//! user's SSH configuration (`ssh.config` names one), a login user
//! without passwordless sudo is found before the first step, and a
//! connection is kept for the next run (ControlPersist) but never past a
//! changed known_hosts.

mod common;

use common::lab::*;
use common::*;

/// The lab inventory with its `ssh:` blocks replaced: no user, port or key.
fn bare_inventory(dir: &std::path::Path, ssh_section: &str) -> std::path::PathBuf {
    let p = lab_inventory_with(
        dir,
        &[
            (
                "ssh:\n  known_hosts: /var/lib/foobar/lab/known_hosts\n",
                ssh_section,
            ),
            (
                "    ssh:\n      user: root\n      identity_file: /var/lib/foobar/lab/id_ed25519\n",
                "",
            ),
        ],
    );
    assert!(!std::fs::read_to_string(&p)
        .unwrap()
        .contains("identity_file"));
    p
}

#[test]
fn an_ssh_config_file_supplies_user_and_key() {
    let _turn = lab_turn();
    converged(LAB);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ssh_config");
    std::fs::write(
        &config,
        "Host 10.250.0.10\n  User root\n  IdentityFile /var/lib/foobar/lab/id_ed25519\n  IdentitiesOnly yes\n",
    )
    .unwrap();
    let inv = bare_inventory(
        dir.path(),
        &format!(
            "ssh:\n  known_hosts: /var/lib/foobar/lab/known_hosts\n  config: {}\n",
            config.display()
        ),
    );
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "provision", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Without the config, nothing tells ssh the key: refused, exit 3.
    let inv = bare_inventory(
        dir.path(),
        "ssh:\n  known_hosts: /var/lib/foobar/lab/known_hosts\n  config: /dev/null\n",
    );
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "provision", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn a_user_without_passwordless_sudo_is_named_before_the_first_step() {
    let _turn = lab_turn();
    converged(LAB);
    on_server_ok(
        LAB,
        LAB_SERVER,
        "id deploy >/dev/null 2>&1 || useradd -m -s /bin/sh deploy; \
         mkdir -p ~deploy/.ssh && cp /root/.ssh/authorized_keys ~deploy/.ssh/ && \
         chown -R deploy: ~deploy/.ssh && rm -f /etc/sudoers.d/foobar-test",
    );
    let dir = tempfile::tempdir().unwrap();
    let inv = lab_inventory_with(
        dir.path(),
        &[("      user: root\n", "      user: deploy\n")],
    );
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "provision"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("deploy cannot run commands as root without a password"),
        "{err}"
    );
    assert!(err.contains("deploy ALL=(ALL) NOPASSWD: ALL"), "{err}");

    // With passwordless sudo the same user provisions.
    on_server_ok(
        LAB,
        LAB_SERVER,
        "echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/foobar-test && chmod 0440 /etc/sudoers.d/foobar-test",
    );
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "provision"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    on_server_ok(LAB, LAB_SERVER, "rm -f /etc/sudoers.d/foobar-test");
}

#[test]
fn a_connection_is_kept_for_the_next_run_but_never_past_a_changed_host_key() {
    let _turn = lab_turn();
    converged(LAB);
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::copy("/var/lib/foobar/lab/known_hosts", &known).unwrap();
    let known_hosts = format!("known_hosts: {}", known.display());
    let kept = lab_inventory_with(
        dir.path(),
        &[("known_hosts: /var/lib/foobar/lab/known_hosts", &known_hosts)],
    );
    let kept = kept.to_str().unwrap();
    // (exit code, stderr, what the run cost the server)
    let run = |inventory: &str| {
        let before = ssh_contacts(LAB, LAB_SERVER);
        let out = foobar()
            .args(["-i", inventory, "provision"])
            .output()
            .unwrap();
        (
            out.status.code(),
            text(&out.stderr),
            ssh_contacts(LAB, LAB_SERVER).since(before),
        )
    };
    let cost = |logins, sessions| SshContacts { logins, sessions };

    // The first run logs in; the next one only opens its one session.
    let (code, err, _) = run(kept);
    assert_eq!(code, Some(0), "{err}");
    let (code, err, contacts) = run(kept);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(contacts, cost(0, 1));

    // A master killed without cleaning up (its socket left behind): the
    // next run logs in again.
    let killed = std::process::Command::new("pkill")
        .args([
            "-KILL",
            "-f",
            &format!("ssh .*-M -f -N .*UserKnownHostsFile={}", known.display()),
        ])
        .status()
        .unwrap();
    assert!(killed.success(), "a master was kept");
    let (code, err, contacts) = run(kept);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(contacts, cost(1, 1));

    // The same file naming another key: the kept connection is not used,
    // the new login refuses the server's key.
    let lab_known = std::fs::read_to_string("/var/lib/foobar/lab/known_hosts").unwrap();
    let other_key = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    std::fs::write(&known, format!("{LAB_ADDRESS} ssh-ed25519 {other_key}\n")).unwrap();
    let (code, err, contacts) = run(kept);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("host key of 10.250.0.10 is unknown or has changed"),
        "{err}"
    );
    assert_eq!(contacts, cost(0, 0));
    std::fs::write(&known, lab_known).unwrap();

    // control_persist_secs: 0 closes the connection with each run.
    let closed = lab_inventory_with(
        dir.path(),
        &[(
            "known_hosts: /var/lib/foobar/lab/known_hosts",
            &format!("{known_hosts}\n  control_persist_secs: 0"),
        )],
    );
    let closed = closed.to_str().unwrap();
    for _ in 0..2 {
        let (code, err, contacts) = run(closed);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(contacts, cost(1, 1));
    }
}

/// The pair lab with pair2 reached through pair1 (`proxy_jump`), in `dir`,
/// changes to sshd confirmed (or reverted) within 10 s.
fn pair_behind_a_bastion(dir: &std::path::Path) -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/tests/fixtures/lab-pair.yml"))
        .unwrap()
        .replace("../../apps/python", &format!("{root}/apps/python"))
        .replace(
            "ssh:\n  known_hosts: /var/lib/foobar/test-lab/known_hosts\n",
            "ssh:\n  known_hosts: /var/lib/foobar/test-lab/known_hosts\n  confirm_within_secs: 10\n",
        )
        .replace(
            "    roles: [dns_secondary, db_replica]\n    ssh:\n",
            "    roles: [dns_secondary, db_replica]\n    ssh:\n      proxy_jump: pair1\n",
        );
    assert!(text.contains("proxy_jump: pair1") && text.contains("confirm_within_secs"));
    let p = dir.join("inventory.yml");
    std::fs::write(&p, text).unwrap();
    p
}

/// sshd's effective setting on a server of the pair lab; empty while
/// sshd does not answer (a revert reloads it).
fn sshd_setting(server: &str, key: &str) -> String {
    let out = on_server(
        "tests/fixtures/lab-pair.yml",
        server,
        &format!("sshd -T | grep -i '^{key} '"),
    );
    text(&out.stdout).trim().to_string()
}

#[test]
fn a_server_behind_a_bastion_is_reached_through_it_and_a_bastion_change_that_cuts_it_off_reverts() {
    let _turn = lab_turn();
    lab_up("tests/fixtures/lab-pair.yml");
    let dir = tempfile::tempdir().unwrap();
    let inv = pair_behind_a_bastion(dir.path());
    let (code, out) = provision(&inv).text();
    assert_eq!(code, Some(0), "{out}");
    // The bastion forwards (locally only) and allows tunnels' sessions;
    // the server behind it does neither.
    assert_eq!(
        sshd_setting("pair1", "allowtcpforwarding"),
        "allowtcpforwarding local"
    );
    assert_eq!(sshd_setting("pair1", "maxsessions"), "maxsessions 10");
    assert_eq!(
        sshd_setting("pair2", "allowtcpforwarding"),
        "allowtcpforwarding no"
    );
    // foobar's logins to pair2 came from pair1.
    let logins = on_server_ok(
        "tests/fixtures/lab-pair.yml",
        "pair2",
        "journalctl -u ssh --no-pager -o cat --since '-10min' | grep 'Accepted publickey' | tail -n 3",
    );
    assert!(logins.contains("from 10.251.0.10 "), "{logins}");

    // A bastion template that turns forwarding off still lets foobar log
    // in to the bastion, but not through it: not confirmed, it reverts.
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("templates/ssh")).unwrap();
    let built_in = std::fs::read_to_string(format!(
        "{}/templates/ssh/foobar.conf.j2",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("AllowTcpForwarding local", "AllowTcpForwarding no");
    std::fs::write(
        project.path().join("templates/ssh/foobar.conf.j2"),
        built_in,
    )
    .unwrap();
    let (code, out) = provision(&inv).project(project.path()).text();
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("not confirmed") && out.contains("pair2 through this server"),
        "{out}"
    );
    let start = std::time::Instant::now();
    while sshd_setting("pair1", "allowtcpforwarding") != "allowtcpforwarding local" {
        assert!(
            start.elapsed().as_secs() < 60,
            "the bastion's change did not revert"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let (code, out) = provision(&inv).text();
    assert_eq!(code, Some(0), "reached through the bastion again: {out}");
}
