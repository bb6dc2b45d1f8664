//! A first provision interrupted at any moment converges on the next run.
//! Moments are picked from the run's own progress (`-v` lines on stderr),
//! never from sleeps, so each is hit every time: a step boundary is the
//! line that reports a step finished; a moment inside a long step is the
//! line that sends its script, plus a little. Three interruptions: the SSH
//! connection cut (the ssh master killed), the server rebooted cleanly,
//! the server killed (its nspawn SIGKILLed, like a power loss). After each:
//! the lab brings the server back, a rerun exits 0 with every check
//! passing, a third run changes nothing, no temp file is left beside a
//! config, and nothing is left of a half-unpacked release.
//!
//! The default run tries one moment per role; `bench/interrupt.sh` runs
//! the whole matrix (`--ignored`) and writes the table in README.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;

/// The lab the cases run on: its inventory (`FOOBAR_INTERRUPT_LAB`, for
/// bench/interrupt.sh's parallel shards), its one server, its folder.
struct CutLab {
    inv: String,
    server: String,
    address: String,
    dir: String,
}

fn cut_lab() -> &'static CutLab {
    static LAB: std::sync::OnceLock<CutLab> = std::sync::OnceLock::new();
    LAB.get_or_init(|| {
        let inv = std::env::var("FOOBAR_INTERRUPT_LAB")
            .unwrap_or_else(|_| "tests/fixtures/lab-interrupt.yml".into());
        let loaded =
            foobar::inventory::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&inv))
                .unwrap();
        let server = &loaded.inventory.servers.0[0];
        CutLab {
            server: server.name.to_string(),
            address: server.address.to_string(),
            dir: loaded
                .inventory
                .lab
                .as_ref()
                .unwrap()
                .dir
                .0
                .display()
                .to_string(),
            inv,
        }
    })
}

fn inv() -> &'static str {
    &cut_lab().inv
}

fn server() -> &'static str {
    &cut_lab().server
}

fn address() -> &'static str {
    &cut_lab().address
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    CutSsh,
    Reboot,
    Kill,
}

impl How {
    fn name(self) -> &'static str {
        match self {
            How::CutSsh => "SSH cut",
            How::Reboot => "reboot",
            How::Kill => "killed",
        }
    }
}

/// A moment of a first provision: the first stderr line (of `-v`) holding
/// `line`, then `after_ms`.
#[derive(Debug, Clone)]
struct Moment {
    name: String,
    line: String,
    after_ms: u64,
}

fn moment(name: &str, line: &str, after_ms: u64) -> Moment {
    Moment {
        name: name.into(),
        line: line.into(),
        after_ms,
    }
}

fn foobar_lab(args: &[&str]) -> std::process::Output {
    foobar().args(["-i", inv()]).args(args).output().unwrap()
}

/// Runs `command` on the lab's server over SSH.
fn on_cut_server(command: &str) -> std::process::Output {
    foobar_lab(&["lab", "ssh", server(), command])
}

fn pristine_server() {
    lab_up(inv());
    let out = foobar_lab(&["lab", "reset", server()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn interrupt(how: How) {
    match how {
        How::CutSsh => {
            // The client side of the connection: foobar's ssh master.
            let _ = Command::new("pkill")
                .args(["-KILL", "-f", &format!("ssh .*-M -f -N .*{}", address())])
                .status();
        }
        How::Reboot => {
            let _ = on_cut_server("systemctl reboot");
        }
        How::Kill => {
            let out = foobar_lab(&["lab", "kill", server()]);
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    }
}

/// The server answering SSH and fully booted again.
fn back_up(how: How) -> Result<(), String> {
    if how == How::Kill {
        let out = foobar_lab(&["lab", "up"]);
        if !out.status.success() {
            return Err(format!("lab up failed: {}", text(&out.stderr)));
        }
    }
    let start = Instant::now();
    // Booted: "degraded" counts, a unit the cut left failed is for the
    // rerun to mend.
    let booted =
        "s=$(systemctl is-system-running --wait); [ \"$s\" = running ] || [ \"$s\" = degraded ]";
    while !on_cut_server(booted).status.success() {
        if start.elapsed() > Duration::from_secs(300) {
            return Err("the server did not come back within 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// Interrupts a first provision at `m` by `how`; Err says what went wrong
/// after it.
fn interrupted_run_converges(m: &Moment, how: How) -> Result<(), String> {
    pristine_server();
    let mut run = spawn_verbose(&["-i", inv(), "provision"]);
    let reader = match watch_for_line(&mut run, &m.line) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = run.kill();
            let _ = run.wait();
            return Err(e);
        }
    };
    std::thread::sleep(Duration::from_millis(m.after_ms));
    interrupt(how);
    let first = run.wait().unwrap();
    let log = reader.join().unwrap();
    if how != How::CutSsh && first.success() {
        // The run finished before the interruption reached it: still a
        // valid case, the rest must hold all the same.
        eprintln!("{} / {}: the run finished first", m.name, how.name());
    }
    back_up(how)?;
    let (code, json, err) = provision(inv()).json();
    if code != Some(0) {
        return Err(format!(
            "the rerun exited {code:?}: {}\n{err}\nfirst run's last lines:\n{}",
            json["hosts"][0]["error"],
            log[log.len().saturating_sub(8)..].join("\n")
        ));
    }
    if json["totals"]["checks_failed"] != 0 || json["totals"]["checks_passed"] == 0 {
        return Err(format!("checks after the rerun: {}", json["checks"]));
    }
    let (code, json, err) = provision(inv()).json();
    if code != Some(0) || json["totals"]["changed"] != 0 {
        return Err(format!(
            "the third run changed {} (exit {code:?}): {err}",
            json["totals"]["changed"]
        ));
    }
    let leftovers = on_cut_server("find /etc /var/lib/bind /var/lib/foobar /srv/foobar \\( -name '.foobar.*' -o -name '.incoming.*' -o -name '.current.tmp' \\) -print");
    let leftovers = text(&leftovers.stdout);
    if !leftovers.trim().is_empty() {
        return Err(format!("left behind: {leftovers}"));
    }
    Ok(())
}

/// One moment per role, the three interruptions among them: for the
/// default test run.
fn reduced() -> Vec<(Moment, How)> {
    vec![
        // dns: between two steps.
        (
            moment(
                "dns: after the zone",
                "changed: template /var/lib/bind/db.",
                0,
            ),
            How::CutSsh,
        ),
        // db: MariaDB's postinst bootstrapping its data directory.
        (
            moment(
                "db: inside the mariadb-server install",
                "--force-confold mariadb-server",
                4000,
            ),
            How::Kill,
        ),
        // app: the release upload.
        (
            moment(
                "app: inside the release upload",
                "cat > \"$tmp/.archive\"",
                0,
            ),
            How::Reboot,
        ),
        // web: nginx's reload handler.
        (
            moment("web: inside the nginx reload", "svc=nginx", 0),
            How::Kill,
        ),
    ]
}

/// Every step boundary of a first provision and a moment inside every long
/// step, in each of the three ways.
fn matrix() -> Vec<(Moment, How)> {
    let mut moments = Vec::new();
    // Boundaries: after each step that a first run changes, by its label (a
    // label the run no longer prints fails the case: "never reached").
    for label in [
        "apt bind9 bind9-utils",
        "template /etc/bind/named.conf.options",
        "template /var/lib/bind/db.foobar.com",
        "template /etc/bind/named.conf.local",
        "service named",
        "handler: reload bind",
        "apt mariadb-server mariadb-client",
        "mariadb_datadir /var/lib/mysql",
        "template /etc/mysql/mariadb.conf.d/60-foobar.cnf",
        "mysql database foobar, user foobar",
        "handler: restart mariadb",
        "user foobar",
        "directory /srv/foobar",
        "directory /etc/foobar",
        "template /etc/foobar/app.env",
        "release /srv/foobar/releases/",
        "apt gunicorn python3-pymysql",
        "template /etc/systemd/system/foobar-app.service",
        "service foobar-app",
        "handler: restart app",
        "apt nginx",
        "directory /var/lib/foobar/maintenance",
        "template /var/lib/foobar/maintenance/index.html",
        "absent /etc/nginx/sites-enabled/default",
        "template /etc/nginx/sites-enabled/foobar.conf",
        "handler: reload nginx",
    ] {
        // `ok:` or `changed:`, as the step went.
        moments.push(moment(&format!("after {label}"), &format!(": {label}"), 0));
    }
    // Inside long steps: a moment after their script was sent.
    for (name, line, ms) in [
        (
            "inside the bind9 install",
            "--force-confold bind9 bind9-utils",
            1500,
        ),
        (
            "inside the mariadb-server install",
            "--force-confold mariadb-server",
            2000,
        ),
        (
            "inside MariaDB's first initialisation",
            "--force-confold mariadb-server",
            4000,
        ),
        (
            "inside the gunicorn install",
            "--force-confold gunicorn",
            1500,
        ),
        ("inside the nginx install", "--force-confold nginx", 1000),
        ("inside the release upload", "cat > \"$tmp/.archive\"", 0),
        ("inside the bind reload", "svc=named", 0),
        ("inside the mariadb restart", "svc=mariadb", 0),
        ("inside the app restart", "svc=foobar-app", 0),
        ("inside the nginx reload", "svc=nginx", 0),
    ] {
        moments.push(moment(name, line, ms));
    }
    let mut cases = Vec::new();
    for m in moments {
        for how in [How::CutSsh, How::Reboot, How::Kill] {
            cases.push((m.clone(), how));
        }
    }
    // `k/n`: this process runs every n-th case from the k-th.
    let shard = std::env::var("FOOBAR_INTERRUPT_SHARD").unwrap_or_else(|_| "0/1".into());
    let (k, n) = shard
        .split_once('/')
        .expect("FOOBAR_INTERRUPT_SHARD is k/n");
    let (k, n): (usize, usize) = (k.parse().unwrap(), n.parse().unwrap());
    cases.into_iter().skip(k).step_by(n).collect()
}

fn run_cases(cases: Vec<(Moment, How)>) {
    let _turn = lab_turn();
    let mut failures = Vec::new();
    let results = std::env::var("FOOBAR_INTERRUPT_RESULTS").ok();
    for (m, how) in &cases {
        let result = interrupted_run_converges(m, *how);
        eprintln!(
            "interrupt: {} / {}: {}",
            m.name,
            how.name(),
            match &result {
                Ok(()) => "converged".to_string(),
                Err(e) => format!("FAILED: {e}"),
            }
        );
        // Each row as soon as it is known: a long matrix cut short still
        // tells what it saw.
        if let Some(path) = &results {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            let verdict = if result.is_ok() {
                "converged"
            } else {
                "FAILED"
            };
            writeln!(f, "{}\t{}\t{verdict}", m.name, how.name()).unwrap();
        }
        if let Err(e) = result {
            failures.push(format!("{} / {}: {e}", m.name, how.name()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_first_provision_interrupted_once_per_role_converges() {
    run_cases(reduced());
}

#[test]
#[ignore = "the whole matrix takes over an hour: bench/interrupt.sh"]
fn a_first_provision_interrupted_at_every_moment_converges() {
    run_cases(matrix());
}

/// The lab's inventory inside a project copy, its code base the copy's.
fn copy_inventory(project: &std::path::Path) -> std::path::PathBuf {
    let p = project.join("inventory/cut.yml");
    std::fs::write(
        &p,
        std::fs::read_to_string(inv())
            .unwrap()
            .replace("../../apps/python", "../apps/python"),
    )
    .unwrap();
    p
}

/// Rows in the app's database before an interruption: the visit counter
/// (through the app) and a ledger of rows written directly.
fn rows() -> (u64, u64) {
    let out = on_cut_server("mysql -N -B -e 'SELECT (SELECT COUNT(*) FROM foobar.ledger), (SELECT count FROM foobar.visits WHERE id = 1)'");
    let t = text(&out.stdout);
    let mut n = t.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

/// Runs foobar with `args` (-v), kills the server at the first stderr line
/// holding `line`, and brings it back.
fn kill_during(args: &[&str], line: &str) {
    let mut run = spawn_verbose(args);
    watch_for_line(&mut run, line).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    interrupt(How::Kill);
    let _ = run.wait();
    back_up(How::Kill).unwrap();
}

#[test]
fn rows_written_before_an_abrupt_kill_survive_it() {
    let _turn = lab_turn();
    pristine_server();
    let (code, _, err) = provision(inv()).json();
    assert_eq!(code, Some(0), "{err}");
    let sql = "CREATE TABLE foobar.ledger (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40)); \
               INSERT INTO foobar.ledger (note) SELECT CONCAT('row ', seq) FROM seq_1_to_500;";
    let out = on_cut_server(&format!("mysql foobar -e \"{sql}\""));
    assert!(out.status.success(), "{}", text(&out.stderr));
    for _ in 0..20 {
        assert_eq!(http_get(address(), "www.foobar.com", "/visits").0, 200);
    }
    let before = rows();
    assert_eq!(before.0, 500);
    // Each provision's checks count a visit too: the counter only grows.
    let kept = |what: &str| {
        let now = rows();
        assert!(
            now.0 == before.0 && now.1 >= before.1,
            "{what}: {now:?}, before {before:?}"
        );
    };

    // A copy of the project whose MariaDB config and code base change.
    let p = project_copy();
    let copy_inv = copy_inventory(p.path());
    let copy_inv = copy_inv.to_str().unwrap().to_string();
    let project = p.path().to_str().unwrap().to_string();

    // 1. `restart db`, killed while MariaDB restarts.
    kill_during(
        &["-i", inv(), "restart", "db", "--force"],
        "systemctl restart mariadb",
    );
    let (code, _, err) = provision(inv()).json();
    assert_eq!(code, Some(0), "after restart db: {err}");
    kept("after restart db");

    // A provision of the copy killed at `line`, then run again to the end.
    let killed_then_rerun = |line: &str, what: &str| {
        let args = ["-i", &copy_inv, "--project", &project, "provision"];
        kill_during(&args, line);
        let out = foobar().args(args).output().unwrap();
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        kept(what);
    };
    // 2. A provision that changes MariaDB's config, killed in its handler.
    append(p.path(), "templates/mariadb/foobar.cnf.j2", "# a change\n");
    killed_then_rerun("svc=mariadb", "after the config change");
    // 3. A deploy of a new release, killed while the app restarts on it.
    append(p.path(), "apps/python/app.py", "# a new release\n");
    killed_then_rerun("svc=foobar-app", "after the deploy");
    assert_eq!(http_get(address(), "www.foobar.com", "/index.html").0, 200);

    // 4. A package cut off while dpkg unpacked it (half-installed, which
    // `dpkg --configure -a` refuses until it is installed again): the next
    // provision unpacks it again and goes on. Made here by dpkg's own
    // status, the moment a kill hits being a matter of luck.
    let out = on_cut_server(
        "sed -i '/^Package: mariadb-client$/,/^$/ s/^Status: install ok installed$/Status: install reinstreq half-installed/' /var/lib/dpkg/status && \
         dpkg-query -W -f='${db:Status-Abbrev}' mariadb-client",
    );
    assert_eq!(text(&out.stdout).trim(), "iHR", "{}", text(&out.stderr));
    let (code, _, err) = provision(inv()).json();
    assert_eq!(code, Some(0), "after a half-unpacked package: {err}");
    let out = on_cut_server("dpkg-query -W -f='${db:Status-Abbrev}' mariadb-client");
    assert_eq!(text(&out.stdout).trim(), "ii", "installed again");
    kept("after a half-unpacked package");
}

#[test]
fn mariadb_killed_during_its_first_initialisation_is_initialised_again() {
    let _turn = lab_turn();
    pristine_server();
    // The moment InnoDB creates ibdata1 during the package's bootstrap,
    // seen on the server's disk from the host: a power cut then leaves a
    // zeroed header, and MariaDB refuses to start on it ever after.
    let ibdata = format!(
        "{}/servers/{}/upper/var/lib/mysql/ibdata1",
        cut_lab().dir,
        server()
    );
    let mut run = Command::new(env!("CARGO_BIN_EXE_foobar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-i", inv(), "provision"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !std::path::Path::new(&ibdata).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no bootstrap seen"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    interrupt(How::Kill);
    let _ = run.wait();
    back_up(How::Kill).unwrap();
    let out = foobar().args(["-i", inv(), "provision"]).output().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("moved aside and initialised again"), "{all}");
    assert!(all.contains("checks: 5 passed"), "{all}");
    // Moved aside, never deleted.
    let aside = on_cut_server("ls -d /var/lib/mysql.interrupted-*");
    assert!(aside.status.success(), "{}", text(&aside.stderr));
    let (code, json, err) = provision(inv()).json();
    assert_eq!(
        (code, json["totals"]["changed"].as_u64()),
        (Some(0), Some(0)),
        "{err}"
    );
}

#[test]
fn a_second_provision_cut_before_its_handler_keeps_serving_and_the_rerun_runs_it() {
    let _turn = lab_turn();
    pristine_server();
    let (code, _, err) = provision(inv()).json();
    assert_eq!(code, Some(0), "{err}");
    let p = project_copy();
    let copy_inv = copy_inventory(p.path());
    append(p.path(), "templates/nginx/site.conf.j2", "# a change\n");
    let args = [
        "-i",
        copy_inv.to_str().unwrap(),
        "--project",
        p.path().to_str().unwrap(),
        "provision",
    ];
    // Cut right after the new config is in place, before its handler.
    let mut run = spawn_verbose(&args);
    watch_for_line(
        &mut run,
        "changed: template /etc/nginx/sites-enabled/foobar.conf",
    )
    .unwrap();
    interrupt(How::CutSsh);
    assert!(!run.wait().unwrap().success(), "the cut run fails");
    // nginx keeps serving.
    assert_eq!(http_get(address(), "www.foobar.com", "/index.html").0, 200);
    // The handler's script may have reached the server just before the
    // cut and finish there on its own: wait for it, then read what is left.
    let pending = on_cut_server("while pgrep -f '[s]vc=nginx' >/dev/null; do sleep 0.1; done; cat /var/lib/foobar/pending-handlers");
    let was_pending = text(&pending.stdout).contains("reload nginx");
    let out = foobar().args(args).output().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    // A handler left pending runs now; one that ran before is not run again.
    assert_eq!(all.contains("handler: reload nginx"), was_pending, "{all}");
    let pending = on_cut_server("cat /var/lib/foobar/pending-handlers");
    assert!(!text(&pending.stdout).contains("reload nginx"));
}
