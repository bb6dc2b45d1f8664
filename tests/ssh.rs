//! SSH as users have it: what the inventory leaves out comes from the
//! user's SSH configuration (`ssh.config` names one), and a login user
//! without passwordless sudo is found before the first step.

mod common;

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
    converged();
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
    converged();
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
