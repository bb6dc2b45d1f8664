//! Faults on a real lab server: a failure at any moment leaves the server
//! serving, nothing half-written, and the next run converges.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;
use foobar::steps::template::{Desired, Template, WriteFile};
use foobar::steps::Kind;

fn static_page_served() -> bool {
    http_get(LAB_ADDRESS, "www.foobar.com", "/index.html").0 == 200
}

/// The script foobar runs to write `path`, and the bytes it uploads.
fn write_script(path: &str, content: Vec<u8>) -> (String, Vec<u8>) {
    let desired = Desired {
        path: path.into(),
        content: content.clone(),
        owner: "root".into(),
        group: "root".into(),
        mode: 0o644,
        validate: None,
        soa_serial: false,
    };
    let change = WriteFile {
        content,
        reason: "test".into(),
    };
    let script = Template::script(&desired, &change, Some("reload nginx"));
    (script.text, script.stdin.unwrap())
}

fn ssh_script(script: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_foobar"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "-i",
        LAB,
        "lab",
        "ssh",
        LAB_SERVER,
        &format!("sh -c {}", foobar::shell::quote(script)),
    ]);
    c
}

/// The destination of the cut upload still holds the old file, and no temp
/// file is left beside it.
fn old_file_untouched() {
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "cat /etc/fault/site.conf").trim(),
        "old"
    );
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "ls -A /etc/fault").trim(),
        "site.conf",
        "no temp file left"
    );
}

#[test]
fn a_cut_upload_never_leaves_a_partial_file() {
    let _turn = lab_turn();
    converged(LAB);
    on_server_ok(
        LAB,
        LAB_SERVER,
        "rm -rf /etc/fault && mkdir /etc/fault && echo old > /etc/fault/site.conf",
    );
    let content: Vec<u8> = (0..400_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let (script, data) = write_script("/etc/fault/site.conf", content);

    // The stream ends early, as when the connection drops mid-upload.
    let mut child = ssh_script(&script)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&data[..data.len() / 3])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("was incomplete"),
        "{}",
        text(&out.stderr)
    );
    old_file_untouched();

    // The SSH client killed in the middle of the upload.
    let mut child = ssh_script(&script)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(&data[..data.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    drop(pipe);
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    old_file_untouched();
    on_server_ok(LAB, LAB_SERVER, "rm -rf /etc/fault; sed -i '/^reload nginx$/d' /var/lib/foobar/pending-handlers; rm -rf /var/lib/foobar/backup/reload_nginx");

    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_killed_run_is_converged_by_the_next() {
    let _turn = lab_turn();
    pristine();
    let mut run = spawn_verbose(&["-i", LAB, "provision"]);
    // Mid-way: MariaDB's packages are being installed.
    watch_for_line(&mut run, "--force-confold mariadb-server").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    run.kill().unwrap();
    run.wait().unwrap();
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("checks: 10 passed"), "{out}");
    // The killed run's lock was taken over: its process is gone.
    assert!(
        out.contains("taking over the lock left by a run that is gone"),
        "{out}"
    );
}

#[test]
fn a_server_rebooted_during_provision_is_converged_by_the_next_run() {
    let _turn = lab_turn();
    pristine();
    let mut run = spawn_verbose(&["-i", LAB, "provision"]);
    // While bind9 is being installed.
    watch_for_line(&mut run, "--force-confold bind9").unwrap();
    let _ = on_server(LAB, LAB_SERVER, "systemctl reboot");
    let first = run.wait_with_output().unwrap();
    assert!(!first.status.success(), "the run across the reboot fails");
    // The server comes back by itself.
    let start = Instant::now();
    while !on_server(LAB, LAB_SERVER, "systemctl is-system-running --wait")
        .status
        .success()
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the server did not come back"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("checks: 10 passed"), "{out}");
}

/// Provisions a project copy whose `template` gets `line` appended, which
/// breaks the service: the run fails, `live` (the file on the server) is
/// as it was before. Returns the run's output.
fn broken_config_is_kept_out(template: &str, line: &str, live: &str) -> String {
    converged(LAB);
    let before = on_server_ok(LAB, LAB_SERVER, &format!("cat {live}"));
    let p = project_copy();
    append(p.path(), template, line);
    let (code, out) = provision(p.path().join(LAB)).project(p.path()).text();
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, &format!("cat {live}")),
        before,
        "{out}"
    );
    out
}

#[test]
fn an_nginx_config_that_nginx_rejects_is_never_activated() {
    let _turn = lab_turn();
    let out = broken_config_is_kept_out(
        "templates/nginx/site.conf.j2",
        "this_is_not_a_directive on;\n",
        "/etc/nginx/sites-enabled/foobar.conf",
    );
    assert!(
        out.contains("unknown directive \"this_is_not_a_directive\""),
        "nginx's own error: {out}"
    );
    assert!(static_page_served());
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn mariadb_failing_to_start_gets_its_previous_config_back() {
    let _turn = lab_turn();
    let out = broken_config_is_kept_out(
        "templates/mariadb/foobar.cnf.j2",
        "no_such_option_at_all = 1\n",
        "/etc/mysql/mariadb.conf.d/60-foobar.cnf",
    );
    assert!(
        out.contains("no_such_option_at_all"),
        "MariaDB's log lines: {out}"
    );
    assert!(out.contains("restored what changed"), "{out}");
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "systemctl is-active mariadb").trim(),
        "active"
    );
    assert_eq!(http_get(LAB_ADDRESS, "www.foobar.com", "/visits").0, 200);
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_full_disk_during_a_release_leaves_nothing_half_written() {
    let _turn = lab_turn();
    converged(LAB);
    let current = on_server_ok(LAB, LAB_SERVER, "readlink /srv/foobar/current");
    // A small filesystem over the release folder, holding the live release.
    on_server_ok(
        LAB,
        LAB_SERVER,
        "cp -a /srv/foobar/releases /root/releases && mount -t tmpfs -o size=256k tmpfs /srv/foobar/releases && cp -a /root/releases/. /srv/foobar/releases/",
    );
    let p = project_copy();
    let big: String = (0..40_000).map(|i| format!("{i:08}\n")).collect();
    append(p.path(), "apps/python/static/big.txt", &big);
    let (code, out) = provision(p.path().join(LAB)).project(p.path()).text();
    on_server_ok(LAB, LAB_SERVER, "true");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "readlink /srv/foobar/current"),
        current
    );
    assert_eq!(
        on_server_ok(
            LAB,
            LAB_SERVER,
            "ls -A /srv/foobar/releases | grep -c incoming || true"
        )
        .trim(),
        "0"
    );
    assert!(static_page_served());
    // Room again: the next run converges to the new release.
    on_server_ok(
        LAB,
        LAB_SERVER,
        "umount /srv/foobar/releases && rm -rf /root/releases",
    );
    let (code, out) = provision(p.path().join(LAB)).project(p.path()).text();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(http_get(LAB_ADDRESS, "www.foobar.com", "/big.txt").0, 200);
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(0), "{out}");
}
