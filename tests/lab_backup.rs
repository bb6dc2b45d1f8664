//! Backups on the backup lab (`inventory/lab-backup.yml`: web1 with the
//! whole stack, backup1 with the backup role): backup1 pulls the database
//! and the uploads into its encrypted restic repository; `backups` lists
//! them and `status` ages them; nothing on backup1 shows the data in
//! plain text; root on the database server cannot remove a backup; a
//! dropped table and a deleted upload come back with `restore`, what they
//! replaced moved aside.

mod common;

use common::lab::*;
use common::*;
use serde_json::Value;

const BACKUP: &str = "inventory/lab-backup.yml";

fn on(server: &str, command: &str) -> String {
    on_server_ok(BACKUP, server, command)
}

/// `foobar -i BACKUP ARGS` is bad input (exit 2) saying `why`.
fn refused(args: &[&str], why: &str) {
    let out = foobar().args(["-i", BACKUP]).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(
        text(&out.stderr).contains(why),
        "{args:?}: {}",
        text(&out.stderr)
    );
}

/// The snapshots in backup1's repository, as restic lists them (ids).
fn snapshot_ids() -> String {
    on(
        "backup1",
        "RESTIC_REPOSITORY=/var/lib/foobar/backup/repo RESTIC_PASSWORD_FILE=/etc/foobar/backup/password \
         restic snapshots --no-lock --json | tr ',' '\\n' | grep '\"id\"' | sort",
    )
}

/// The sample app's checks in a drill: the pages nginx serves as files
/// not asked (passed: null); the app's answer, and its count of visits
/// read from and written to the copy, asked and passed.
fn the_sample_apps_checks_were_asked(doc: &Value) {
    let asked: Vec<(&str, &Value)> = doc["drill"]["app_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), &c["passed"]))
        .collect();
    assert_eq!(
        asked,
        [
            ("/index.html", &Value::Null),
            ("/style.css", &Value::Null),
            ("/healthz", &Value::Bool(true)),
            ("/visits", &Value::Bool(true)),
        ],
        "{doc:#}"
    );
}

#[test]
fn backups_are_pulled_listed_aged_kept_from_the_database_server_and_restored() {
    let _turn = lab_turn();
    lab_up(BACKUP);
    let (code, out) = provision(BACKUP).text();
    assert_eq!(code, Some(0), "{out}");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let marker = format!("Backup-Marker-{nanos:x}");
    on(
        "web1",
        &format!(
            "mysql foobar -e \"DROP TABLE IF EXISTS kept; CREATE TABLE kept (v VARCHAR(64), at TIMESTAMP DEFAULT CURRENT_TIMESTAMP); INSERT INTO kept (v) VALUES ('{marker}')\" && \
             mkdir -p /srv/foobar/shared/uploads && echo {marker} > /srv/foobar/shared/uploads/photo.txt"
        ),
    );

    // A backup now: the database and the uploads.
    let (code, doc) = valid_json(&["-i", BACKUP, "backup"], "backup");
    assert_eq!(code, Some(0), "{doc:#}");
    let kinds: Vec<&str> = doc["taken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"db") && kinds.contains(&"files"), "{doc:#}");
    let (code, doc) = valid_json(&["-i", BACKUP, "backups"], "backups");
    assert_eq!(code, Some(0), "{doc:#}");
    let db = doc["backups"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|b| b["kind"] == "db")
        .expect("a database backup")
        .clone();
    assert!(db["bytes"].as_u64().unwrap() > 1_000_000, "{db}");
    let (code, doc) = valid_json(&["-i", BACKUP, "status"], "status");
    assert_eq!(code, Some(0), "{doc:#}");
    let backup1 = doc["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == "backup1")
        .unwrap()
        .clone();
    assert_eq!(backup1["backups"]["fresh"], true, "{backup1:#}");

    // No plain text of the data on backup1: the repository is encrypted
    // and nothing is staged beside it.
    let found = on(
        "backup1",
        &format!("grep -r -l -a {marker} / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null || true"),
    );
    assert_eq!(found.trim(), "", "backup1 holds the data in plain text");

    // Root on the database server tries to remove a backup: it holds no
    // key to backup1 (backup1 pulls), nor the repository's password.
    let before = snapshot_ids();
    let attempt = on_server(
        BACKUP,
        "web1",
        "for k in /root/.ssh/id_* /etc/ssh/ssh_host_*_key /var/lib/foobar-backup/.ssh/*; do \
           for u in root foobar-backup; do \
             ssh -i \"$k\" -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5 \"$u@10.245.0.20\" \
               'rm -rf /var/lib/foobar/backup/repo/snapshots/*' 2>/dev/null && echo REMOVED; \
           done; \
         done; true",
    );
    assert!(
        !text(&attempt.stdout).contains("REMOVED"),
        "{}",
        text(&attempt.stdout)
    );
    let password = on("backup1", "cat /etc/foobar/backup/password");
    let holders = on(
        "web1",
        &format!(
            "grep -r -l -F {} /etc /root /var/lib /srv 2>/dev/null || true",
            password.trim()
        ),
    );
    assert_eq!(
        holders.trim(),
        "",
        "the repository's password on the database server"
    );
    assert_eq!(snapshot_ids(), before, "a backup changed");

    // A dropped table and a deleted upload come back.
    on(
        "web1",
        "mysql foobar -e 'DROP TABLE kept' && rm /srv/foobar/shared/uploads/photo.txt",
    );
    let (code, doc) = valid_json(&["-i", BACKUP, "restore", "--yes"], "restore");
    assert_eq!(code, Some(0), "{doc:#}");
    assert!(doc["failure"].is_null(), "{doc:#}");
    assert!(doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["passed"] == true));
    assert_eq!(
        on("web1", "mysql -N -B foobar -e 'SELECT v FROM kept'").trim(),
        marker
    );
    assert_eq!(
        on("web1", "cat /srv/foobar/shared/uploads/photo.txt").trim(),
        marker
    );
    // What the restore replaced is kept: the data without the table.
    let aside = doc["restored"][0]["moved_aside"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        aside.starts_with("/var/lib/mysql.before-restore-"),
        "{doc:#}"
    );
    on("web1", &format!("test -d {aside}/foobar && rm -rf /var/lib/mysql.before-restore-* /srv/foobar/shared.before-restore-*"));

    // Point in time: a row written after the backup and before T comes
    // back from the streamed binary log; a row and a DROP after T do not.
    valid_json(&["-i", BACKUP, "backup"], "backup");
    on(
        "web1",
        "mysql foobar -e \"INSERT INTO kept (v) VALUES ('before-T')\"",
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let t = jiff::Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    on(
        "web1",
        "mysql foobar -e \"INSERT INTO kept (v) VALUES ('after-T'); DROP TABLE kept\"",
    );
    let at = t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (code, doc) = valid_json(&["-i", BACKUP, "restore", "--yes", "--at", &at], "restore");
    assert_eq!(code, Some(0), "{doc:#}");
    assert!(
        doc["replayed"]["transactions"].as_u64().unwrap() >= 1,
        "{doc:#}"
    );
    let rows = on("web1", "mysql -N -B foobar -e 'SELECT v FROM kept'");
    assert!(
        rows.contains("before-T") && rows.contains(&marker),
        "{rows}"
    );
    assert!(!rows.contains("after-T"), "{rows}");

    // A moment after that restore and before any later backup is in no
    // backup's history: refused.
    let just_after = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    refused(
        &["restore", "--yes", "--at", &just_after],
        "a time no backup holds",
    );
    // T again, now before the last restore: the backup's own history (the
    // log that restore kept aside) is replayed, not the live one.
    on(
        "web1",
        "mysql foobar -e \"INSERT INTO kept (v) VALUES ('after-the-restore')\"",
    );
    let (code, doc) = valid_json(&["-i", BACKUP, "restore", "--yes", "--at", &at], "restore");
    assert_eq!(code, Some(0), "{doc:#}");
    let again = on("web1", "mysql -N -B foobar -e 'SELECT v FROM kept'");
    assert!(
        again.contains("before-T") && again.contains(&marker),
        "{again}"
    );
    assert!(
        !again.contains("after-T") && !again.contains("after-the-restore"),
        "{again}"
    );
    on(
        "web1",
        "rm -rf /var/lib/mysql.before-restore-* /srv/foobar/shared.before-restore-*",
    );
    // The database server's log loses the stream's place (purged while
    // the stream was down), found while a backup runs: the history ends
    // there, and a backup after that one begins the next (a start while
    // it runs would merge into it).
    let pos = on(
        "web1",
        "mysql foobar -e \"INSERT INTO kept (v) VALUES ('streamed')\" && mysql -N -B -e 'SELECT @@gtid_binlog_pos'",
    );
    let wait = std::time::Instant::now();
    while on(
        "backup1",
        "cat /var/lib/foobar/backup/binlog/gtid 2>/dev/null || true",
    )
    .trim()
        != pos.trim()
    {
        assert!(
            wait.elapsed() < std::time::Duration::from_secs(30),
            "the stream never received {pos}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    on("backup1", "systemctl stop foobar-binlog");
    let logs = on(
        "web1",
        "mysql foobar -e \"INSERT INTO kept (v) VALUES ('purged')\" && mysql -e 'FLUSH BINARY LOGS'
         # MariaDB keeps a log a binlog dump still reads: the stream's goes.
         i=0
         until [ \"$(mysql -N -B -e \"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'\")\" = 0 ]; do
           i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.1
         done
         mysql -e \"PURGE BINARY LOGS TO '$(mysql -N -B -e 'SHOW MASTER STATUS' | cut -f1)'\" && mysql -N -B -e 'SHOW BINARY LOGS' | wc -l",
    );
    assert_eq!(logs.trim(), "1", "the log the stream was at is purged");
    let since = on("backup1", "date +%s");
    let found_during = on(
        "backup1",
        "systemctl start --no-block foobar-backup.service
         until [ \"$(systemctl show -P ActiveState foobar-backup.service)\" = activating ]; do sleep 0.1; done
         systemctl start foobar-binlog
         i=0
         until ls -d /var/lib/foobar/backup/binlog/gap-* >/dev/null 2>&1; do
           i=$((i + 1)); [ $i -lt 300 ] || { echo no gap found; exit 0; }; sleep 0.1
         done
         systemctl show -P ActiveState foobar-backup.service",
    );
    assert_eq!(
        found_during.trim(),
        "activating",
        "the gap was found after the backup ended: nothing here was proven"
    );
    // Counted by the runs that finished: retention keeps one snapshot an
    // hour, so the list does not grow.
    let finished = format!(
        "journalctl -u foobar-backup --since @{} --no-pager | grep -c 'Finished foobar-backup.service' || true",
        since.trim()
    );
    let wait = std::time::Instant::now();
    while on("backup1", &finished).trim().parse::<u32>().unwrap_or(0) < 2 {
        assert!(
            wait.elapsed() < std::time::Duration::from_secs(120),
            "no backup began the new history: {}",
            on("backup1", "journalctl -u foobar-binlog -u foobar-backup -u foobar-backup-after-gap -n 30 --no-pager")
        );
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    on("backup1", "rm -rf /var/lib/foobar/backup/binlog/gap-*");

    // A history that ended before the oldest backup replays onto nothing:
    // the backup job removes it; those this test's restores ended stay.
    let binlog = "/var/lib/foobar/backup/binlog";
    on(
        "backup1",
        &format!("mkdir -p {binlog}/gap-20000101T000000Z-20000101T000001Z {binlog}/before-restore-20000101T000002Z"),
    );
    // A drill brings the newest backup up beside the live server, checks
    // it, counts the rows, says how recent its newest row is, and leaves
    // nothing behind.
    valid_json(&["-i", BACKUP, "backup"], "backup");
    let ended = on(
        "backup1",
        &format!("cd {binlog} && ls -d before-restore-* gap-* 2>/dev/null || true"),
    );
    assert!(!ended.contains("2000010"), "{ended}");
    assert!(
        ended.lines().any(|l| l.starts_with("before-restore-")),
        "{ended}"
    );
    let live = on("web1", "mysql -N -B foobar -e 'SELECT v FROM kept'");
    let visits = "mysql -N -B foobar -e 'SELECT count FROM visits WHERE id = 1'";
    let live_visits = on("web1", visits);
    let newest = on("web1", "mysql -N -B foobar -e 'SELECT MAX(at) FROM kept'");
    let (code, doc) = valid_json(&["-i", BACKUP, "restore", "--drill"], "restore");
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(doc["drill"]["tables_check"], true, "{doc:#}");
    assert_eq!(doc["drill"]["newest_row"], newest.trim(), "{doc:#}");
    // The app's checks, asked of the app started beside the copy.
    the_sample_apps_checks_were_asked(&doc);
    assert!(
        doc["drill"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t[0] == "visits"),
        "{doc:#}"
    );
    assert_eq!(
        on("web1", "ls /var/lib/foobar/drill 2>/dev/null | wc -l").trim(),
        "0"
    );
    assert_eq!(
        on("web1", "pgrep -c mariadbd").trim(),
        "1",
        "a throwaway server was left running"
    );
    assert_eq!(
        on("web1", "pgrep -fc -- '[-]-bind 127[.]0[.]0[.]1:' || true").trim(),
        "0",
        "a throwaway app server was left running"
    );
    assert_eq!(
        on("web1", "mysql -N -B foobar -e 'SELECT v FROM kept'"),
        live
    );
    // The drill's GET /visits counted on the copy, not on the live data.
    assert_eq!(on("web1", visits), live_visits);

    // A time in the future, or before every backup, is refused.
    refused(
        &["restore", "--yes", "--at", "2099-01-01T00:00:00Z"],
        "in the future",
    );
    refused(
        &["restore", "--yes", "--at", "2001-01-01T00:00:00Z"],
        "possible times are from",
    );

    // A deploy of a new release with a release command (a migration)
    // takes a backup first and names it; one with nothing new does not.
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    copy_tree(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("apps/python"),
        &app,
    );
    std::fs::write(app.join("NEW"), &marker).unwrap();
    let source = format!("{}/apps/python", env!("CARGO_MANIFEST_DIR"));
    let migrating = format!("{}\n  release_command: \"true\"", app.display());
    let inv = inventory_with(BACKUP, dir.path(), &[(source.as_str(), migrating.as_str())]);
    let deploy = |inv: &std::path::Path| {
        let out = foobar().arg("-i").arg(inv).arg("deploy").output().unwrap();
        (
            out.status.code(),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    };
    let (code, out) = deploy(&inv);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("backup before the release command: db snapshot"),
        "{out}"
    );
    let (code, out) = deploy(&inv);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("backup before"),
        "a no-op deploy took a backup: {out}"
    );
    // The release command with its inputs: the next new release runs it
    // (the live one has no key), the one after skips it, and the backup.
    let text_of = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        text_of.replace(
            "release_command: \"true\"",
            "release_command: { command: \"true\", inputs: [app.py] }",
        ),
    )
    .unwrap();
    std::fs::write(app.join("NEW"), format!("{marker} 1")).unwrap();
    let (code, out) = deploy(&inv);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("backup before the release command: db snapshot"),
        "{out}"
    );
    std::fs::write(app.join("NEW"), format!("{marker} 2")).unwrap();
    let (code, out) = deploy(&inv);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("release command: skipped"), "{out}");
    assert!(!out.contains("backup before"), "{out}");
    // A restore replaces the database: the releases forget their release
    // command ran, and the next deploy runs it (a backup first).
    let (code, doc) = valid_json(&["-i", BACKUP, "restore", "--yes"], "restore");
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(
        on(
            "web1",
            "ls /srv/foobar/releases/*/.foobar-release-command 2>/dev/null | wc -l"
        )
        .trim(),
        "0"
    );
    std::fs::write(app.join("NEW"), format!("{marker} 3")).unwrap();
    let (code, out) = deploy(&inv);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("release command: skipped"), "{out}");
    assert!(
        out.contains("backup before the release command: db snapshot"),
        "{out}"
    );

    // Bad input: a server not in the inventory, no confirmation.
    refused(
        &["restore", "--yes", "--to", "db9"],
        "`db9` is not a server of the inventory",
    );
    refused(&["restore"], "pass --yes");

    // A PHP app's drill: php-fpm speaks FastCGI only, so the drill asks
    // PHP's built-in web server running the live release.
    let php_dir = tempfile::tempdir().unwrap();
    let python = format!("{}/apps/python", env!("CARGO_MANIFEST_DIR"));
    let php_app = format!("{}/apps/php", env!("CARGO_MANIFEST_DIR"));
    let php = inventory_with(
        BACKUP,
        php_dir.path(),
        &[
            ("kind: gunicorn", "kind: php-fpm"),
            (python.as_str(), php_app.as_str()),
        ],
    );
    let (code, out) = provision(&php).text();
    assert_eq!(code, Some(0), "{out}");
    let live_visits = on("web1", visits);
    let (code, doc) = valid_json(
        &["-i", php.to_str().unwrap(), "restore", "--drill"],
        "restore",
    );
    assert_eq!(code, Some(0), "{doc:#}");
    the_sample_apps_checks_were_asked(&doc);
    assert_eq!(
        on("web1", visits),
        live_visits,
        "the drill counted on the copy"
    );
    assert_eq!(
        on("web1", "pgrep -fc -- '[-]S 127[.]0[.]0[.]1:' || true").trim(),
        "0",
        "a throwaway PHP server was left running"
    );
    // Back to the app the inventory names.
    let (code, out) = provision(BACKUP).text();
    assert_eq!(code, Some(0), "{out}");
}
