//! The backup server's day-two operations: a backup taken now (its job
//! started and waited for), the backups its restic repository holds, and
//! the last good backup of each kind, which `status` ages.

use serde::{Deserialize, Serialize};

use super::app::{host_run, run_once};
use super::{Engine, HostFailure};
use crate::steps::release::RELEASE_COMMAND_MARK;
use crate::transport::{Connector, Output, SshTarget, Transport, Unreachable};

/// What a backup holds: the database (mariadb-backup's stream) and the
/// uploads (`app.shared`, a tar stream).
pub const KINDS: [&str; 2] = ["db", "files"];

/// Where the backup job notes what it did (templates/backup/backup-take.j2).
const STATE: &str = "/var/lib/foobar/backup/state";
/// restic's repository and how to open it, as the job does.
const RESTIC_ENV: &str = "export RESTIC_REPOSITORY=/var/lib/foobar/backup/repo \
    RESTIC_PASSWORD_FILE=/etc/foobar/backup/password RESTIC_CACHE_DIR=/var/cache/foobar-backup\n";

/// The last good backup of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taken {
    pub kind: String,
    /// Unix time it finished.
    pub time: i64,
    /// restic's short id of the snapshot.
    pub snapshot: String,
    pub bytes: u64,
    /// The server it came from.
    pub server: String,
}

/// A kind whose last backup failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub kind: String,
    pub time: i64,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupState {
    pub last: Vec<Taken>,
    pub failed: Vec<Failed>,
}

impl BackupState {
    /// Each kind the site has was backed up within `limit_secs` of `now`,
    /// and the last try of none failed.
    pub fn fresh(&self, kinds: &[&str], now: i64, limit_secs: i64) -> bool {
        self.failed.is_empty()
            && kinds.iter().all(|k| {
                self.last
                    .iter()
                    .any(|t| t.kind == *k && now - t.time <= limit_secs)
            })
    }
}

/// Prints `B\t<kind>\t<state file's line>` and `X\t<kind>\t<line>`.
pub fn state_script() -> String {
    format!(
        "for k in {kinds}; do\n  [ -s {STATE}/last-$k ] && printf 'B\\t%s\\t%s\\n' \"$k\" \"$(cat {STATE}/last-$k)\"\n  \
         [ -s {STATE}/failed-$k ] && printf 'X\\t%s\\t%s\\n' \"$k\" \"$(cat {STATE}/failed-$k)\"\ndone\n",
        kinds = KINDS.join(" ")
    )
}

pub fn parse_state(out: &str) -> BackupState {
    let mut state = BackupState::default();
    for line in out.lines() {
        let mut f = line.splitn(3, '\t');
        match (f.next(), f.next(), f.next()) {
            (Some("B"), Some(kind), Some(rest)) => {
                let w: Vec<&str> = rest.split(' ').collect();
                if let [time, snapshot, bytes, server] = w[..] {
                    state.last.push(Taken {
                        kind: kind.into(),
                        time: time.parse().unwrap_or(0),
                        snapshot: snapshot.into(),
                        bytes: bytes.parse().unwrap_or(0),
                        server: server.into(),
                    });
                }
            }
            (Some("X"), Some(kind), Some(rest)) => {
                let (time, why) = rest.split_once(' ').unwrap_or((rest, ""));
                state.failed.push(Failed {
                    kind: kind.into(),
                    time: time.parse().unwrap_or(0),
                    why: why.trim().into(),
                });
            }
            _ => {}
        }
    }
    state
}

/// Runs the backup job now and waits for it (one that is running is
/// waited for, not doubled); returns whether it succeeded and the state
/// it left.
pub async fn take<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
) -> Result<(bool, BackupState, String), HostFailure> {
    let script = format!(
        "if systemctl start foobar-backup.service; then echo OK; else journalctl -u foobar-backup.service -n 5 --no-pager -o cat >&2; fi\n{}",
        state_script()
    );
    let out = run_once(engine, target, &script).await?;
    let text = out.stdout_text();
    Ok((
        text.lines().any(|l| l == "OK"),
        parse_state(&text),
        engine.secrets.redact(&out.stderr_text()),
    ))
}

/// Stops the backup server's timer and waits for a job that runs (at most
/// 30 min), so that no retention run forgets a snapshot a restore or a
/// drill is reading; `resume_schedule` starts it again.
pub async fn hold_schedule<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
) -> Result<Result<(), String>, HostFailure> {
    let out = run_once(
        engine,
        target,
        "systemctl stop foobar-backup.timer\n\
         i=0; while [ \"$(systemctl show -P ActiveState foobar-backup.service)\" = activating ]; do\n  \
         i=$((i + 1)); [ $i -lt 1800 ] || { echo 'the backup job still runs after 30 min' >&2; exit 1; }; sleep 1\n\
         done\n",
    )
    .await?;
    Ok(if out.success() {
        Ok(())
    } else {
        Err(engine.secrets.redact(&out.stderr_text()))
    })
}

/// Starts the backup timer again: its next backup a minute later, of what
/// a restore brought back. Err says why it did not start.
pub async fn resume_schedule<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
) -> Result<(), String> {
    let out = run_once(engine, target, "systemctl start foobar-backup.timer\n")
        .await
        .map_err(|e| e.to_string())?;
    if out.success() {
        Ok(())
    } else {
        Err(engine.secrets.redact(&out.stderr_text()))
    }
}

/// One backup in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// restic's short id.
    pub id: String,
    /// RFC 3339, as restic records it.
    pub time: String,
    pub kind: String,
    /// The server it came from.
    pub server: String,
    /// Bytes read from the server (before deduplication and compression).
    pub bytes: Option<u64>,
}

#[derive(Deserialize)]
struct ResticSnapshot {
    time: String,
    hostname: String,
    #[serde(default)]
    tags: Vec<String>,
    short_id: String,
}

/// The backups the repository holds, oldest first; those still being
/// taken (or cut off: tagged `pending`) left out.
pub async fn list<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
) -> Result<Result<Vec<Snapshot>, String>, HostFailure> {
    let script = format!(
        "{RESTIC_ENV}restic snapshots --json --no-lock\necho\ncat {STATE}/sizes 2>/dev/null | sed 's/^/Z /'\n"
    );
    let out = run_once(engine, target, &script).await?;
    if !out.success() {
        return Ok(Err(engine.secrets.redact(&out.stderr_text())));
    }
    Ok(parse_snapshots(&out.stdout_text()))
}

fn parse_snapshots(out: &str) -> Result<Vec<Snapshot>, String> {
    let json = out.lines().next().unwrap_or("[]");
    let found: Vec<ResticSnapshot> =
        serde_json::from_str(json).map_err(|e| format!("restic's list: {e}"))?;
    let sizes: Vec<(&str, u64)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Z "))
        .filter_map(|l| {
            let (id, bytes) = l.split_once(' ')?;
            Some((id, bytes.trim().parse().ok()?))
        })
        .collect();
    let mut snapshots: Vec<Snapshot> = found
        .into_iter()
        .filter(|s| !s.tags.iter().any(|t| t == "pending"))
        .filter_map(|s| {
            let kind = s.tags.iter().find(|t| KINDS.contains(&t.as_str()))?.clone();
            let bytes = sizes
                .iter()
                .find(|(id, _)| *id == s.short_id)
                .map(|(_, b)| *b);
            Some(Snapshot {
                id: s.short_id,
                time: s.time,
                kind,
                server: s.hostname,
                bytes,
            })
        })
        .collect();
    snapshots.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(snapshots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_state_is_read_with_its_failures() {
        let out = "B\tdb\t1796604067 1a531f70 17634849 web1\nX\tfiles\t1796604069 ssh: connect to host 10.0.0.1 port 22: timed out\n";
        let state = parse_state(out);
        assert_eq!(
            state.last,
            vec![Taken {
                kind: "db".into(),
                time: 1_796_604_067,
                snapshot: "1a531f70".into(),
                bytes: 17_634_849,
                server: "web1".into(),
            }]
        );
        assert_eq!(state.failed[0].kind, "files");
        assert!(state.failed[0].why.starts_with("ssh: connect"));
        // A failure, or a kind too old or never backed up, is not fresh.
        assert!(!state.fresh(&["db"], 1_796_604_100, 3600));
        let ok = BackupState {
            failed: Vec::new(),
            ..state
        };
        assert!(ok.fresh(&["db"], 1_796_604_100, 3600));
        assert!(!ok.fresh(&["db"], 1_796_604_067 + 3601, 3600));
        assert!(!ok.fresh(&["db", "files"], 1_796_604_100, 3600));
    }

    #[test]
    fn the_histories_that_ended_are_their_kept_aside_folders() {
        let listing = "000001.enc\ngtid\nbefore-restore-20261207T164118Z\n\
            gap-20261207T015500Z-20261207T020000Z\nbefore-restore-x; rm -rf /\ngap-20261207T0155Z-x\n";
        let ends = parse_history_ends(listing);
        let folders: Vec<&str> = ends.iter().map(|e| e.folder.as_str()).collect();
        assert_eq!(
            folders,
            [
                "gap-20261207T015500Z-20261207T020000Z",
                "before-restore-20261207T164118Z"
            ]
        );
        assert_eq!(
            (
                ends[0].covered.as_str(),
                ends[0].ended.as_str(),
                ends[0].by_restore()
            ),
            ("20261207T015500Z", "20261207T020000Z", false)
        );
        assert_eq!(
            (
                ends[1].covered.as_str(),
                ends[1].ended.as_str(),
                ends[1].by_restore()
            ),
            ("20261207T164118Z", "20261207T164118Z", true)
        );
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let end_of = |taken| history_end(t(taken), &ends).map(|e| e.folder.as_str());
        assert_eq!(
            end_of("2026-12-07T01:00:00Z"),
            Some("gap-20261207T015500Z-20261207T020000Z")
        );
        assert_eq!(
            end_of("2026-12-07T16:00:00Z"),
            Some("before-restore-20261207T164118Z")
        );
        assert_eq!(end_of("2026-12-07T17:00:00Z"), None);
    }

    #[test]
    fn a_drill_asks_the_app_what_nginx_does_not_serve_as_files() {
        let check = |path: &str, contains: Option<&str>, nginx_folder| DrillCheck {
            path: path.into(),
            status: 200,
            contains: contains.map(str::to_string),
            nginx_folder,
            script: path.ends_with(".php"),
        };
        let app = DrillApp {
            root: "/srv/foo bar".into(),
            server: "gunicorn --bind 127.0.0.1:$port app:app".into(),
            host: "www.foobar.com".into(),
            checks: vec![
                check("/index.html", None, false),
                check("/static/x.css", None, true),
                check("/healthz", Some("it's \"ok\""), false),
                check("/visits", Some("visits"), false),
                check("/wp-login.php", None, false),
            ],
            files_root: Some("/srv/foo bar/current/static/".into()),
        };
        let script = drill_app_script("20261207T000000Z", &app);
        // Values reach the shell quoted; a folder nginx serves is not asked.
        assert!(script.contains("root='/srv/foo bar'\n"), "{script}");
        assert!(
            script.contains("if [ -f '/srv/foo bar/current/static'/index.html ]"),
            "{script}"
        );
        assert!(
            script.contains("if true; then printf 'FILE\\t1\\n'"),
            "{script}"
        );
        assert!(script.contains("grep -qF -- 'it'\\''s \"ok\"'"), "{script}");
        // A script php-fpm runs is asked, though a file of the web root.
        assert!(
            script.contains("if false; then printf 'FILE\\t4\\n'"),
            "{script}"
        );
        let results = parse_drill_app(
            &app,
            "FILE\t0\nFILE\t1\nAPP\t2\t200\t1\nAPP\t3\t500\t0\nAPP\t4\t200\t1\n",
        )
        .unwrap();
        let passed: Vec<Option<bool>> = results.iter().map(|r| r.passed).collect();
        assert_eq!(passed, [None, None, Some(true), Some(false), Some(true)]);
        assert_eq!(results[3].detail, "status 500, expected 200");
        let down = parse_drill_app(&app, "DOWN\tthe app server did not start: boom\n");
        assert_eq!(down.unwrap_err(), "the app server did not start: boom");
    }

    #[test]
    fn snapshots_are_listed_with_their_kind_and_size_pending_ones_left_out() {
        let out = concat!(
            r#"[{"time":"2026-12-07T00:41:17Z","hostname":"web1","tags":["files"],"original":"1759e6f9cd5","id":"aaa","short_id":"aaaa1111"},"#,
            r#"{"time":"2026-12-07T00:41:15Z","hostname":"web1","tags":["db"],"id":"27d26d8f3e09","short_id":"27d26d8f"},"#,
            r#"{"time":"2026-12-07T00:42:00Z","hostname":"web1","tags":["db","pending"],"id":"ccc","short_id":"cccc3333"}]"#,
            "\n\nZ aaaa1111 10240\nZ 27d26d8f 17634849\n"
        );
        let found = parse_snapshots(out).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].kind.as_str(), found[0].bytes),
            ("db", Some(17_634_849))
        );
        assert_eq!(
            (found[1].id.as_str(), found[1].bytes),
            ("aaaa1111", Some(10240))
        );
    }
}

/// What `restore` puts back, and where.
pub struct RestoreJob {
    /// The backup server.
    pub backup: SshTarget,
    /// The database server restored onto, and the snapshot.
    pub db: Option<(SshTarget, Snapshot)>,
    /// When it is a Galera member, the cluster's other members: stopped
    /// before it starts a new cluster on the restored copy, then started
    /// on an empty data folder (theirs moved aside), each filled by a
    /// state transfer from it.
    pub members: Vec<SshTarget>,
    /// The app server whose shared folders (`app.shared` under
    /// `<app root>/shared`) are restored, the snapshot and the app user.
    pub files: Option<(SshTarget, Snapshot, String)>,
    pub app_root: String,
    /// The app server that runs the release command: once the database is
    /// replaced, its releases no longer say their release command ran
    /// (the next deploy runs it, whatever its inputs).
    pub release_server: Option<SshTarget>,
    /// The web servers: the maintenance page while the database is
    /// replaced, then the checks.
    pub web: Vec<(SshTarget, Option<crate::checks::Checks>)>,
    /// Names what is moved aside: `<path>.before-restore-<stamp>`.
    pub stamp: String,
    /// A point in time to replay the streamed binary log up to, after the
    /// snapshot.
    pub at: Option<PointInTime>,
}

/// Where a replay of the streamed binary log ends, and the history it
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointInTime {
    /// UTC as the number `YYMMDDhhmmss`, how mariadb-binlog dates its
    /// events.
    pub until: i64,
    /// The folder the snapshot's history was kept aside in when it ended
    /// ([`history_end`]); None for the live history.
    pub ended_by: Option<String>,
    /// The ended histories' folders when the restore was planned: a
    /// history that ends before the stream is stopped (a gap found in
    /// between) may hold `until` instead of the one chosen.
    pub histories: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub kind: String,
    pub snapshot: String,
    pub host: String,
    /// Where the data it replaced was kept.
    pub moved_aside: Option<String>,
}

/// What the binary log replayed after the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Replayed {
    pub transactions: u64,
    /// The last transaction replayed: its GTID and its time (UTC,
    /// `YYMMDD hh:mm:ss` as mariadb-binlog gives it).
    pub last_gtid: Option<String>,
    pub last_time: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub restored: Vec<Restored>,
    /// With `--at`: what the streamed binary log added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Replayed>,
    pub checks: Vec<crate::checks::CheckResult>,
    /// What failed; empty when everything came back and the checks passed.
    pub failure: Option<String>,
}

/// Reads a database snapshot's stream (mariadb-backup's xbstream) on stdin
/// and makes it the server's data: unpacked and prepared beside the live
/// data first, then MariaDB stopped, the live data directory moved aside
/// (never deleted) and the copy moved in. A failure once the old data is
/// aside (the copy not moved in, or MariaDB not starting on it) puts it
/// back and starts MariaDB again. A Galera member whose
/// cluster is stopped starts a new one (on the copy, or on its old data
/// after a failure: it stopped last, so it holds every write).
fn db_sink(stamp: &str, cluster: bool) -> String {
    let start = if cluster {
        "galera_new_cluster mariadb"
    } else {
        "systemctl start mariadb"
    };
    format!(
        r#"{copy}aside=/var/lib/mysql.before-restore-{stamp}
systemctl stop mariadb
mv /var/lib/mysql "$aside"
mkdir /var/lib/mysql
if ! mariadb-backup --move-back --target-dir="$copy" >"$work/move.log" 2>&1; then
  tail -n 20 "$work/move.log" >&2
  rm -rf /var/lib/mysql; mv "$aside" /var/lib/mysql; {start}; rm -rf "$work"; exit 1
fi
chown -R mysql:mysql /var/lib/mysql
if ! {start}; then
  journalctl -u mariadb -n 20 --no-pager >&2
  systemctl stop mariadb
  mv /var/lib/mysql "$work/refused"; mv "$aside" /var/lib/mysql; {start}; exit 1
fi
rm -rf "$work"
echo "ASIDE	$aside"
"#,
        copy = prepared_copy(&format!("/var/lib/foobar/restore/{stamp}"))
    )
}

/// A Galera member after the target started a new cluster on the restored
/// copy: its data moved aside and an empty folder in its place, so that
/// it joins by a whole state transfer from the target.
fn member_refill(stamp: &str) -> String {
    format!(
        r#"aside=/var/lib/mysql.before-restore-{stamp}
mv /var/lib/mysql "$aside"
mkdir /var/lib/mysql
chown mysql:mysql /var/lib/mysql
{}echo "ASIDE	$aside"
"#,
        member_start()
    )
}

/// A Galera member started into the running cluster, waited for until it
/// is Synced.
fn member_start() -> String {
    format!(
        "systemctl start mariadb || {{ journalctl -u mariadb -n 20 --no-pager >&2; exit 1; }}
{}",
        crate::roles::SYNCED_WAIT
    )
}

/// Reads a database snapshot's stream on stdin into `$work/copy` (`$copy`)
/// under the folder `work` and prepares it (mariadb-backup); then prints
/// `GTID\t<the last transaction>` it holds (empty when the binary log had
/// none yet; nothing when it was off): where a replay of the streamed log
/// goes on from. mariadb-backup 10.11 still names that file after
/// xtrabackup.
fn prepared_copy(work: &str) -> String {
    format!(
        r#"work={work}
copy="$work/copy"
rm -rf "$work"; mkdir -p "$copy"
mbstream -x -C "$copy"
if ! mariadb-backup --prepare --target-dir="$copy" >"$work/prepare.log" 2>&1; then
  tail -n 20 "$work/prepare.log" >&2; rm -rf "$work"; exit 1
fi
for info in "$copy/xtrabackup_binlog_info" "$copy/mariadb_backup_binlog_info"; do
  [ -e "$info" ] && printf 'GTID\t%s\n' "$(cut -f 3 "$info")" && break
done
"#
    )
}

/// Reads the uploads' tar stream on stdin into a new shared folder, which
/// takes the live one's place; the live one is moved aside.
fn files_sink(root: &str, user: &str, stamp: &str) -> String {
    let shared = crate::shell::quote(&format!("{root}/shared"));
    format!(
        r#"new={shared}.restoring-{stamp}
aside={shared}.before-restore-{stamp}
rm -rf "$new"; mkdir -p "$new"
tar -x -C "$new" --no-same-owner -f - || {{ rm -rf "$new"; echo 'the uploads arrived incomplete: the live folder is unchanged' >&2; exit 1; }}
chown -R {user}: "$new"
chmod 750 "$new"
[ -e {shared} ] && mv {shared} "$aside"
mv "$new" {shared}
[ -e "$aside" ] && echo "ASIDE	$aside"
true
"#,
        user = crate::shell::quote(user),
    )
}

/// Where the backup server keeps the streamed binary log's segments.
const BINLOG_DIR: &str = "/var/lib/foobar/backup/binlog";

/// Stops the stream (it hangs up and writes what it holds: the segments
/// are whole), so that nothing from the restored server mixes with them.
const STREAM_STOP: &str = "systemctl stop foobar-binlog\n";
const STREAM_START: &str = "systemctl start foobar-binlog\n";

/// Every segment of a history, oldest first, decrypted, each ended by a
/// marker line: the live one's, or one that ended, kept aside in `ended_by`.
fn segments_script(ended_by: Option<&str>) -> String {
    let dir = match ended_by {
        Some(folder) => format!("{BINLOG_DIR}/{folder}"),
        None => BINLOG_DIR.to_string(),
    };
    format!(
        "for f in $(ls {dir}/*.enc 2>/dev/null | sort); do\n  \
         openssl enc -d -aes-256-ctr -pbkdf2 -pass file:/etc/foobar/backup/password -in \"$f\"\n  \
         printf '\\n# foobar: end of segment\\n'\ndone\n"
    )
}

/// An old history of the streamed binary log, kept aside in a folder of
/// its own when it ended: at a restore (`before-restore-<ended>`, the
/// database replaced), or when the source's log lost the place the stream
/// was at (`gap-<covered>-<ended>`: refilled by a Galera state transfer,
/// or purged; templates/backup/binlog-follow.j2). Stamps `YYYYMMDDThhmmssZ`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEnd {
    /// Its folder under the stream's.
    pub folder: String,
    /// Backups taken before it belong to this history.
    pub ended: String,
    /// The last moment it holds every acknowledged write of: the end of a
    /// restore's; a second before the last transaction received in a gap's.
    pub covered: String,
}

impl HistoryEnd {
    pub fn by_restore(&self) -> bool {
        self.folder.starts_with("before-restore-")
    }
}

/// The histories that ended (restores, gaps) on the backup server,
/// oldest first.
pub async fn history_ends<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
) -> Result<Vec<HistoryEnd>, HostFailure> {
    let out = run_once(engine, target, &list_histories_script()).await?;
    Ok(parse_history_ends(&out.stdout_text()))
}

/// The ended histories now, when they are not those `at` was planned
/// with: a history that ended since (a gap found in between) may hold the
/// moment instead of the one chosen, or have taken the segments read.
async fn history_ended_since<T: Transport>(
    backup: &T,
    at: &PointInTime,
) -> Result<Option<String>, Unreachable> {
    let listing = backup.run(&list_histories_script(), None).await?;
    let now: Vec<String> = parse_history_ends(&listing.stdout_text())
        .into_iter()
        .map(|e| e.folder)
        .collect();
    Ok((now != at.histories).then(|| now.join(", ")))
}

fn list_histories_script() -> String {
    format!("ls {BINLOG_DIR} 2>/dev/null || true\n")
}

fn parse_history_ends(listing: &str) -> Vec<HistoryEnd> {
    let mut ends: Vec<HistoryEnd> = listing
        .lines()
        .map(str::trim)
        .filter_map(|folder| {
            let (covered, ended) = match folder.strip_prefix("before-restore-") {
                Some(ended) => (ended, ended),
                None => folder.strip_prefix("gap-")?.split_once('-')?,
            };
            (is_stamp(covered) && is_stamp(ended)).then(|| HistoryEnd {
                folder: folder.to_string(),
                ended: ended.to_string(),
                covered: covered.to_string(),
            })
        })
        .collect();
    ends.sort_by(|a, b| a.ended.cmp(&b.ended));
    ends
}

/// `YYYYMMDDThhmmssZ`: how a restore names what it keeps aside.
fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// The end of the history a backup taken at `taken` belongs to (its
/// binary log kept aside), or None when that history is the live one.
pub fn history_end(taken: jiff::Timestamp, ends: &[HistoryEnd]) -> Option<&HistoryEnd> {
    let taken = stamp(taken);
    ends.iter().find(|e| e.ended > taken)
}

/// A moment as a restore names what it moves aside: `YYYYMMDDThhmmssZ`.
pub fn stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// After a restore the database has a new history: the segments of the
/// old one are kept aside and the stream starts again from the restored
/// server's binary log.
fn new_timeline_script(stamp: &str) -> String {
    format!(
        "old={BINLOG_DIR}/before-restore-{stamp}\nmkdir -p \"$old\"\n\
         mv {BINLOG_DIR}/*.enc {BINLOG_DIR}/*.part {BINLOG_DIR}/gtid {BINLOG_DIR}/gtid-time \"$old\"/ 2>/dev/null || true\n\
         {STREAM_START}"
    )
}

/// Keeps, from mariadb-binlog's text, every transaction after GTID
/// sequence number `skip` (what the snapshot holds) whose time is no later
/// than `until` (`YYMMDDhhmmss`, UTC), each once (segments overlap where
/// the stream started again), and what is outside transactions (the
/// format events row events need); a transaction a segment cut off is
/// dropped there (the next segment holds it whole). Writes "<count>
/// <last GTID> <its time>" to `stats`.
const REPLAY_FILTER: &str = r#"
function key(line,   a, t) {
  split(line, a, " "); split(a[2], t, ":")
  return (substr(a[1], 2) + 0) * 1000000 + t[1] * 10000 + t[2] * 100 + t[3]
}
function finish() {
  if (inside && !stopped) {
    if (tkey > until) stopped = 1
    else if (seq > last) { printf "%s", buf; last = seq; n++; lastg = gtid; lastt = when }
  }
  inside = 0; buf = ""; ended = 0
}
BEGIN { last = skip + 0; until = until + 0 }
/^# foobar: end of segment$/ { inside = 0; buf = ""; at = ""; next }
/^# at [0-9]+$/ { at = at $0 "\n"; next }
/^#[0-9][0-9][0-9][0-9][0-9][0-9] +[0-9]+:[0-9][0-9]:[0-9][0-9] server id / {
  if ($0 ~ /[ \t]GTID [0-9]+-[0-9]+-[0-9]+ /) {
    if (inside) finish()
    for (i = 1; i <= NF; i++) if ($i == "GTID") gtid = $(i + 1)
    split(gtid, g, "-"); seq = g[3] + 0
    kind = ($0 ~ / ddl$/) ? "ddl" : "trans"
    tkey = key($0); when = substr($1, 2) " " $2
    inside = 1; buf = at $0 "\n"; at = ""; ended = 0
    next
  }
  if (inside && kind == "ddl" && ended) finish()
  if (inside) buf = buf at $0 "\n"; else printf "%s", at $0 "\n"
  at = ""; next
}
{
  if (inside) {
    buf = buf at $0 "\n"
    if (kind == "trans" && $0 ~ /^COMMIT\/\*!\*\/;$/) finish()
    else if (kind == "ddl" && $0 == "/*!*/;") ended = 1
  } else printf "%s", at $0 "\n"
  at = ""
}
END {
  if (inside && kind == "ddl" && ended) finish()
  print "DELIMITER ;"
  printf "%d %s %s\n", n, lastg, lastt > stats
}
"#;

/// Replays the filtered binary log into the restored server, through
/// `client` (`mariadb`, with the socket of a drill's server).
fn replay_sink(skip: u64, until: i64, client: &str) -> String {
    format!(
        "work=$(mktemp -d)\n\
         awk -v skip={skip} -v until={until} -v stats=\"$work/stats\" {filter} | {client} --binary-mode\n\
         printf 'REPLAYED\\t%s\\n' \"$(cat \"$work/stats\")\"\nrm -rf \"$work\"\n",
        filter = crate::shell::quote(REPLAY_FILTER)
    )
}

/// The sequence number of the GTID a restored copy holds (the sink's
/// `GTID` line; 0 when the log had no transaction yet), where a replay
/// goes on from; None when the server's binary log was off.
fn restored_seq(out: &str) -> Option<u64> {
    let gtid = out.lines().find_map(|l| l.strip_prefix("GTID\t"))?;
    Some(gtid.rsplit('-').next()?.parse().unwrap_or(0))
}

fn parse_replayed(out: &str) -> Option<Replayed> {
    let line = out.lines().find_map(|l| l.strip_prefix("REPLAYED\t"))?;
    let mut w = line.split_whitespace();
    let transactions = w.next()?.parse().ok()?;
    let last_gtid = w.next().map(str::to_string);
    let last_time = {
        let rest: Vec<&str> = w.collect();
        (!rest.is_empty()).then(|| rest.join(" "))
    };
    Some(Replayed {
        transactions,
        last_gtid,
        last_time,
    })
}

/// `restic dump` of a snapshot's one file, to stdout.
fn dump_script(snapshot: &Snapshot) -> String {
    let file = if snapshot.kind == "db" {
        "/db.xbstream"
    } else {
        "/shared.tar"
    };
    format!(
        "{RESTIC_ENV}restic dump --no-lock {} {file}\n",
        crate::shell::quote(&snapshot.id)
    )
}

/// Restores the job's snapshots, the database under the maintenance page
/// and the server lock, then runs the web servers' checks.
pub async fn restore<C: Connector>(
    engine: &Engine<'_, C>,
    job: &RestoreJob,
    claim: &super::lock::Claim,
    break_lock: bool,
) -> Result<RestoreOutcome, HostFailure> {
    let backup = engine.connector.connect(&job.backup).await?;
    let mut outcome = RestoreOutcome {
        restored: Vec::new(),
        replayed: None,
        checks: Vec::new(),
        failure: None,
    };
    // Before the database is touched, the releases forget that their
    // release command ran (the database will be the backup's): the next
    // deploy of a new release runs it. A restore that then fails costs
    // one needless run; one that cannot forget changes nothing.
    if let (Some(target), Some(_)) = (&job.release_server, &job.db) {
        let forget = format!(
            "rm -f {}/releases/*/{RELEASE_COMMAND_MARK}\n",
            crate::shell::quote(&job.app_root),
        );
        let why = match run_once(engine, target, &forget).await {
            Ok(forgot) if forgot.success() => None,
            Ok(forgot) => Some(forgot.stderr_text()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            backup.close().await;
            outcome.failure = Some(format!(
                "on {}, the releases' record that their release command ran could not be removed, so nothing was restored (the next deploy would skip a migration the restored database may need): {why}",
                target.name
            ));
            return Ok(outcome);
        }
    }
    backup.run(STREAM_STOP, None).await?;
    if let Some(at) = &job.at {
        let ended = match history_ended_since(&backup, at).await {
            Ok(ended) => ended,
            Err(e) => {
                let _ = backup.run(STREAM_START, None).await;
                return Err(e.into());
            }
        };
        if let Some(now) = ended {
            backup.run(STREAM_START, None).await?;
            backup.close().await;
            outcome.failure = Some(format!(
                "the streamed binary log's history ended while this restore was planned (kept aside now: {now}); nothing was changed: run the restore again"
            ));
            return Ok(outcome);
        }
    }
    if let Some((target, snapshot)) = &job.db {
        let web: Vec<SshTarget> = job.web.iter().map(|(t, _)| t.clone()).collect();
        // Every database server reached and locked before the page goes
        // up: one that cannot be leaves the site as it was.
        let locked = lock_all(engine, target, &job.members, claim, break_lock).await;
        let (db, members) = match locked {
            Ok(hosts) => hosts,
            Err(e) => {
                let _ = backup.run(STREAM_START, None).await;
                return Err(e);
            }
        };
        let restored = restore_db(&backup, job, &db, &members, snapshot);
        // The page goes away after a failed restore too: the old data is
        // back and MariaDB runs on it.
        let done = super::rolling::behind_maintenance_pages(engine, &web, restored, |_| true).await;
        let hosts: Vec<&C::Transport> = std::iter::once(&db).chain(&members).collect();
        release_all(engine, &hosts, claim).await;
        db.close().await;
        for t in members {
            t.close().await;
        }
        let done = match done {
            Ok(done) => done,
            Err(e) => {
                let _ = backup.run(STREAM_START, None).await;
                return Err(e);
            }
        };
        match done.copied {
            Ok((from, into)) => record(&mut outcome, "db", snapshot, target, &from, &into),
            Err(why) => fail(&mut outcome, why),
        }
        match done.replayed {
            Some(Ok(r)) => outcome.replayed = r,
            Some(Err(why)) => fail(&mut outcome, why),
            None => {}
        }
        let replaced = outcome
            .restored
            .iter()
            .any(|r| r.kind == "db" && r.host == target.name);
        for (member, into) in job.members.iter().zip(&done.members) {
            if replaced {
                record_into(&mut outcome, "db", snapshot, member, into);
            } else if !into.success() {
                fail(
                    &mut outcome,
                    format!(
                        "{} did not rejoin the cluster: {}",
                        member.name,
                        into.stderr_text()
                    ),
                );
            }
        }
    }
    let db_replaced = outcome.restored.iter().any(|r| r.kind == "db");
    if let (Some((target, _, _)), Some(_)) = (&job.files, &outcome.failure) {
        fail(
            &mut outcome,
            format!("the uploads on {} were not restored", target.name),
        );
    } else if let Some((target, snapshot, user)) = &job.files {
        let app = engine.connector.connect(target).await?;
        let (from, into) = backup
            .pipe(
                &dump_script(snapshot),
                &app,
                &files_sink(&job.app_root, user, &job.stamp),
            )
            .await?;
        app.close().await;
        record(&mut outcome, "files", snapshot, target, &from, &into);
    }
    // The stream goes on: from the restored server's log when the data was
    // replaced (a new history), else where it stopped.
    let stream = if db_replaced {
        new_timeline_script(&job.stamp)
    } else {
        STREAM_START.to_string()
    };
    backup.run(&stream, None).await?;
    backup.close().await;
    if outcome.failure.is_none() {
        for (target, checks) in &job.web {
            if let Some(checks) = checks {
                outcome
                    .checks
                    .extend(super::run_checks(engine, target, checks).await?);
            }
        }
        if let Some(c) = outcome.checks.iter().find(|c| !c.passed) {
            outcome.failure = Some(format!("check failed: {}: {}", c.check, c.detail));
        }
    }
    Ok(outcome)
}

/// What a replay gave: None without `--at`; the replay's outcome or why
/// there was none.
type ReplayResult = Option<Result<Option<Replayed>, String>>;

/// What a database restore did on the servers it touched.
struct DbRestore {
    /// The snapshot read on the backup server and written on the target;
    /// why not, when the cluster's other members could not be stopped.
    copied: Result<(Output, Output), String>,
    replayed: ReplayResult,
    /// Each other member of a cluster, in the job's order: its state
    /// transfer from the target, or its return after a failure.
    members: Vec<Output>,
}

/// Connects to the restore's target and its cluster's other members and
/// takes each one's server lock; on any failure the locks taken so far
/// are given back.
async fn lock_all<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
    members: &[SshTarget],
    claim: &super::lock::Claim,
    break_lock: bool,
) -> Result<(C::Transport, Vec<C::Transport>), HostFailure> {
    let db = engine.connector.connect(target).await?;
    let mut others = Vec::new();
    for m in members {
        others.push(engine.connector.connect(m).await?);
    }
    let mut locked = 0;
    let mut failed = None;
    for t in std::iter::once(&db).chain(&others) {
        match host_run(engine, t)
            .lock_then(claim, break_lock, "true\n")
            .await
        {
            Ok(_) => locked += 1,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failed {
        let hosts: Vec<&C::Transport> = std::iter::once(&db).chain(&others).collect();
        release_all(engine, &hosts[..locked], claim).await;
        return Err(e);
    }
    Ok((db, others))
}

/// Gives back the server lock on each of `hosts`.
async fn release_all<C: Connector>(
    engine: &Engine<'_, C>,
    hosts: &[&C::Transport],
    claim: &super::lock::Claim,
) {
    for t in hosts {
        let _ = host_run(engine, *t)
            .run(&claim.release_script(), None)
            .await;
    }
}

/// The database snapshot streamed onto `db` (locked, as the cluster's
/// other `members` are), then (with `--at`) the binary log replayed onto
/// it; a cluster's other members stopped first and filled from it after.
async fn restore_db<T: Transport>(
    backup: &T,
    job: &RestoreJob,
    db: &T,
    members: &[T],
    snapshot: &Snapshot,
) -> Result<DbRestore, HostFailure> {
    // The others stop first: the target, stopping last, holds every
    // write, and none of them can pass it the old data again.
    for (t, m) in members.iter().zip(&job.members) {
        let stopped = t.run("systemctl stop mariadb\n", None).await?;
        if !stopped.success() {
            // Back as they were: into the cluster the target still runs.
            for t in members {
                t.run(&member_start(), None).await?;
            }
            return Ok(DbRestore {
                copied: Err(format!(
                    "stopping MariaDB on {} before the restore: {}",
                    m.name,
                    stopped.stderr_text()
                )),
                replayed: None,
                members: Vec::new(),
            });
        }
    }
    let copied = async {
        let (from, into) = backup
            .pipe(
                &dump_script(snapshot),
                db,
                &db_sink(&job.stamp, !job.members.is_empty()),
            )
            .await?;
        let replayed = match &job.at {
            Some(at) if from.success() && into.success() => {
                Some(replay(backup, db, &into, snapshot, at, "mariadb").await?)
            }
            _ => None,
        };
        Ok::<_, Unreachable>((from, into, replayed))
    }
    .await;
    // Every other member comes back whatever happened on the target:
    // filled from the copy, or into the cluster its old data runs.
    let script = match &copied {
        Ok((from, into, _)) if from.success() && into.success() => member_refill(&job.stamp),
        _ => member_start(),
    };
    let mut joined = Vec::new();
    for t in members {
        joined.push(t.run(&script, None).await);
    }
    let (from, into, replayed) = copied?;
    let joined = joined.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(DbRestore {
        copied: Ok((from, into)),
        replayed,
        members: joined,
    })
}

/// After a snapshot was brought up on `target` (`copied`: its sink's
/// output), replays the streamed binary log up to `until` through `client`.
async fn replay<T: Transport>(
    backup: &T,
    target: &T,
    copied: &Output,
    snapshot: &Snapshot,
    at: &PointInTime,
    client: &str,
) -> Result<Result<Option<Replayed>, String>, Unreachable> {
    let Some(skip) = restored_seq(&copied.stdout_text()) else {
        return Ok(Err(format!(
            "snapshot {} was taken while the binary log was off: it restores as it is, with no point in time after it",
            snapshot.id
        )));
    };
    let (_, r) = backup
        .pipe(
            &segments_script(at.ended_by.as_deref()),
            target,
            &replay_sink(skip, at.until, client),
        )
        .await?;
    Ok(if r.success() {
        Ok(parse_replayed(&r.stdout_text()))
    } else {
        Err(format!(
            "replaying the binary log on {}: {}",
            target.host(),
            r.stderr_text()
        ))
    })
}

/// Adds `why` to what failed.
fn fail(outcome: &mut RestoreOutcome, why: String) {
    outcome.failure = Some(match outcome.failure.take() {
        Some(first) => format!("{first}; {why}"),
        None => why,
    });
}

/// Notes one restore's result, or the first failure.
fn record(
    outcome: &mut RestoreOutcome,
    kind: &str,
    snapshot: &Snapshot,
    target: &SshTarget,
    from: &Output,
    into: &Output,
) {
    if !from.success() {
        fail(
            outcome,
            format!(
                "reading snapshot {} on the backup server: {}",
                snapshot.id,
                from.stderr_text()
            ),
        );
    } else {
        record_into(outcome, kind, snapshot, target, into);
    }
}

/// Notes what `target` did with the snapshot, or its failure.
fn record_into(
    outcome: &mut RestoreOutcome,
    kind: &str,
    snapshot: &Snapshot,
    target: &SshTarget,
    into: &Output,
) {
    if !into.success() {
        fail(
            outcome,
            format!(
                "restoring {kind} on {}: {}",
                target.name,
                into.stderr_text()
            ),
        );
    } else {
        outcome.restored.push(Restored {
            kind: kind.into(),
            snapshot: snapshot.id.clone(),
            host: target.name.clone(),
            moved_aside: into
                .stdout_text()
                .lines()
                .find_map(|l| l.strip_prefix("ASIDE\t"))
                .map(str::to_string),
        });
    }
}

/// A restore drill: a backup brought up as a throwaway MariaDB server (its
/// own data folder and socket, no network, no binary log) beside whatever
/// runs on `target`, checked, then removed. The live site is not touched.
pub struct DrillJob {
    pub backup: SshTarget,
    pub target: SshTarget,
    pub snapshot: Snapshot,
    /// As `RestoreJob::at`.
    pub at: Option<PointInTime>,
    /// The app's database, whose tables are counted.
    pub database: String,
    pub stamp: String,
    /// The app's checks against the copy, or why they are not run.
    pub app: Result<DrillApp, String>,
}

/// The app's checks in a drill: its app server started as a throwaway on
/// the drill's server, from the live release, as the app's user with the
/// app's environment but the copy for its database, and asked over
/// loopback; then stopped.
pub struct DrillApp {
    /// `app.root`: the live release is `<root>/current`.
    pub root: String,
    /// Shell words that run it, answering at `127.0.0.1:$port`, its
    /// database the copy's socket under `$work` (the drill's folder).
    pub server: String,
    /// Host header.
    pub host: String,
    pub checks: Vec<DrillCheck>,
    /// nginx's folder at `/` (`WebLayout::root`): a check of a file there
    /// is nginx's, not the app's, and is not asked.
    pub files_root: Option<String>,
}

/// One of `app.checks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillCheck {
    pub path: String,
    pub status: u16,
    pub contains: Option<String>,
    /// Under a folder nginx serves itself (`nginx.locations`, uploads).
    pub nginx_folder: bool,
    /// A script the app server runs though it is a file under nginx's
    /// root (php-fpm's `.php`): asked.
    pub script: bool,
}

/// What one of the app's checks found in a drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillCheckResult {
    pub path: String,
    /// None: not asked, a file nginx serves itself (no data behind it).
    pub passed: Option<bool>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillOutcome {
    pub host: String,
    pub snapshot: String,
    /// When the snapshot was taken (RFC 3339).
    pub snapshot_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Replayed>,
    /// Every table of every database passed CHECK TABLE.
    pub tables_check: bool,
    /// The app database's tables and their rows.
    pub tables: Vec<(String, u64)>,
    /// The latest value in the app database's timestamp and datetime
    /// columns that is not in the future, as MariaDB prints it (UTC on
    /// foobar's servers): how recent the restored data is. None when it
    /// has no such column or no row.
    pub newest_row: Option<String>,
    /// The app's checks against the copy (`app.checks`, asked of a
    /// throwaway app server).
    pub app_checks: Vec<DrillCheckResult>,
    /// Why the app's checks did not run, when they did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_checks_not_run: Option<String>,
    pub elapsed_ms: u64,
    pub failure: Option<String>,
}

/// The drill's own folder on its server: the copy, its socket (`sock`),
/// the logs; removed at the end.
fn drill_dir(stamp: &str) -> String {
    format!("/var/lib/foobar/drill/{stamp}")
}

/// Unpacks and prepares the stream in a folder of the drill's own, then
/// starts a throwaway server on it; prints the copy's GTID.
fn drill_sink(stamp: &str) -> String {
    format!(
        r#"{copy}chown -R mysql:mysql "$work"
setsid mariadbd --no-defaults --user=mysql --datadir="$copy" --socket="$work/sock" \
  --pid-file="$work/pid" --skip-networking --skip-log-bin --innodb-buffer-pool-size=64M \
  </dev/null >"$work/server.log" 2>&1 &
i=0
until mariadb-admin --socket="$work/sock" ping >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -gt 120 ]; then tail -n 20 "$work/server.log" >&2; exit 1; fi
  sleep 0.5
done
"#,
        copy = prepared_copy(&drill_dir(stamp))
    )
}

/// CHECK TABLE on everything, the app database's row counts and its
/// newest row's time (the latest value of its tables' date-time columns
/// that is not in the future, as an expiry date is): before the app's
/// checks, which may write.
fn drill_check(stamp: &str, database: &str) -> String {
    let work = drill_dir(stamp);
    let db = crate::shell::quote(database);
    format!(
        r#"work={work}
s="$work/sock"
if mariadb-check --socket="$s" --all-databases --check >"$work/check.log" 2>&1 && ! grep -qv ' OK$' "$work/check.log"; then echo CHECK; fi
for t in $(mariadb --socket="$s" -N -B -e "SELECT table_name FROM information_schema.tables WHERE table_schema = '{database}' AND table_type = 'BASE TABLE'"); do
  printf 'ROWS	%s	%s
' "$t" "$(mariadb --socket="$s" -N -B {db} -e "SELECT COUNT(*) FROM \`$t\`")"
done
newest=$(mariadb --socket="$s" -N -B -e "SET SESSION group_concat_max_len = 1000000; SELECT GROUP_CONCAT(CONCAT('SELECT MAX(\`', REPLACE(column_name, '\`', '\`\`'), '\`) AS t FROM \`', REPLACE(table_name, '\`', '\`\`'), '\` WHERE \`', REPLACE(column_name, '\`', '\`\`'), '\` <= NOW()') SEPARATOR ' UNION ALL ') FROM information_schema.columns JOIN information_schema.tables USING (table_schema, table_name) WHERE table_schema = '{database}' AND table_type = 'BASE TABLE' AND data_type IN ('timestamp', 'datetime')")
if [ -n "$newest" ] && [ "$newest" != NULL ]; then
  printf 'NEWEST	%s\n' "$(mariadb --socket="$s" -N -B {db} -e "SELECT MAX(t) FROM ($newest) AS u")"
fi
"#
    )
}

/// The throwaway server stopped and its folder removed.
fn drill_stop(stamp: &str) -> String {
    let work = drill_dir(stamp);
    format!(
        r#"work={work}
[ -e "$work/pid" ] && {{ mariadb-admin --socket="$work/sock" shutdown >/dev/null 2>&1 || kill "$(cat "$work/pid")"; }}
sleep 0.5
rm -rf "$work"
"#
    )
}

/// Starts the app server as a throwaway (`DrillApp`) on a free loopback
/// port and asks it the checks: prints `APP\t<i>\t<status>\t<1 if the
/// text is in the reply>`, `FILE\t<i>` for a file nginx serves, or
/// `DOWN\t<why>` when it did not start; then stops it. It runs in
/// network and mount namespaces of its own, where the copy's socket is
/// MariaDB's usual one (/run/mysqld/mysqld.sock) and nothing else is
/// reachable: an app that ignores `DB_SOCKET`, or dials a database by
/// address, cannot reach the live one.
fn drill_app_script(stamp: &str, app: &DrillApp) -> String {
    let work = drill_dir(stamp);
    let listening = r#"bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _"#;
    let mut asks = String::new();
    for (i, c) in app.checks.iter().enumerate() {
        let path = crate::shell::quote(&c.path);
        let file = match &app.files_root {
            _ if c.script => "false".to_string(),
            Some(r) if !c.nginx_folder => {
                let r = crate::shell::quote(r.trim_end_matches('/'));
                format!("[ -f {r}{path} ] || [ -f {r}{path}/index.html ]")
            }
            _ => c.nginx_folder.to_string(),
        };
        let contains = match &c.contains {
            Some(t) => format!(
                "sed '1,/^\\r$/d' \"$work/reply\" | grep -qF -- {} && echo 1 || echo 0",
                crate::shell::quote(t)
            ),
            None => "echo 1".into(),
        };
        asks += &format!(
            "if {file}; then printf 'FILE\\t{i}\\n'; else\n  \
             bash -c 'exec 3<>\"/dev/tcp/127.0.0.1/$1\" || exit 1; printf \"GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n\" \"$2\" \"$3\" >&3; timeout 30 cat <&3' _ \"$port\" {path} {host} >\"$work/reply\" 2>&1\n  \
             printf 'APP\\t{i}\\t%s\\t%s\\n' \"$(head -n 1 \"$work/reply\" | cut -d ' ' -f 2)\" \"$({contains})\"\nfi\n",
            host = crate::shell::quote(&app.host),
        );
    }
    format!(
        r#"work={work}
mkdir -p "$work/run"
ln -sfn "$work/sock" "$work/run/mysqld.sock"
unshare --mount --net sh <<'DRILL' || printf 'DOWN\tno namespaces of its own (unshare) to run the app in\n'
work={work}
ip link set lo up && mount --bind "$work/run" /run/mysqld || exit 1
root={root}
rel="$root/current"
port=
for p in $(shuf -i 20000-60999 -n 20); do
  {listening} "$p" 2>/dev/null || {{ port=$p; break; }}
done
[ -n "$port" ] || {{ printf 'DOWN\tno free port on 127.0.0.1\n'; exit 0; }}
cd "$rel" || {{ printf 'DOWN\tno live release at %s\n' "$rel"; exit 0; }}
{server} </dev/null >"$work/app.log" 2>&1 &
app=$!
trap 'kill -TERM $app 2>/dev/null' EXIT
trap 'exit 1' HUP INT TERM PIPE
i=0
until {listening} "$port" 2>/dev/null; do
  i=$((i + 1))
  if ! kill -0 $app 2>/dev/null || [ $i -gt 600 ]; then
    printf 'DOWN\tthe app server did not start: %s\n' "$(tail -n 5 "$work/app.log" | tr '\n\t' '  ')"
    exit 0
  fi
  sleep 0.1
done
{asks}kill -TERM $app; wait $app 2>/dev/null
trap - EXIT
DRILL
"#,
        root = crate::shell::quote(&app.root),
        server = app.server,
    )
}

fn parse_drill_app(app: &DrillApp, out: &str) -> Result<Vec<DrillCheckResult>, String> {
    if let Some(why) = out.lines().find_map(|l| l.strip_prefix("DOWN\t")) {
        return Err(why.trim().to_string());
    }
    let results = app.checks.iter().enumerate().map(|(i, c)| {
        let file = format!("FILE\t{i}");
        let prefix = format!("APP\t{i}\t");
        let (passed, detail) = if out.lines().any(|l| l == file) {
            (None, "a file nginx serves: no data behind it".to_string())
        } else if let Some(l) = out.lines().find_map(|l| l.strip_prefix(&prefix)) {
            let (status, found) = l.split_once('\t').unwrap_or((l, "0"));
            let status_ok = status == c.status.to_string();
            let found = found == "1";
            let detail = match (&c.contains, status_ok, found) {
                (_, false, _) => format!("status {status}, expected {}", c.status),
                (Some(t), true, false) => format!("status {status}, without {t:?}"),
                _ => format!("status {status}"),
            };
            (Some(status_ok && found), detail)
        } else {
            (
                Some(false),
                "not asked: the drill stopped before it".to_string(),
            )
        };
        DrillCheckResult {
            path: c.path.clone(),
            passed,
            detail,
        }
    });
    Ok(results.collect())
}

/// What a drill does with the copy up: the binary log replayed (`--at`),
/// the tables checked and counted, then the app's checks.
async fn drill_on_copy<T: Transport>(
    backup: &T,
    target: &T,
    into: &Output,
    job: &DrillJob,
    outcome: &mut DrillOutcome,
) -> Result<(), Unreachable> {
    if outcome.failure.is_some() {
        outcome.app_checks_not_run = Some("the copy did not come up".into());
        return Ok(());
    }
    if let Some(at) = &job.at {
        let socket = format!("{}/sock", drill_dir(&job.stamp));
        let client = format!("mariadb --socket={}", crate::shell::quote(&socket));
        match replay(backup, target, into, &job.snapshot, at, &client).await? {
            Ok(r) => outcome.replayed = r,
            Err(why) => outcome.failure = Some(why),
        }
        // The stream runs on through a drill: a history that ended while
        // it was read fails the drill rather than pass off the wrong one.
        if let Some(now) = history_ended_since(backup, at).await? {
            outcome.failure.get_or_insert(format!(
                "the streamed binary log's history ended while this drill read it (kept aside now: {now}): run the drill again"
            ));
        }
    }
    let checked = target
        .run(&drill_check(&job.stamp, &job.database), None)
        .await?
        .stdout_text();
    outcome.tables_check = checked.lines().any(|l| l == "CHECK");
    outcome.tables = checked
        .lines()
        .filter_map(|l| l.strip_prefix("ROWS\t"))
        .filter_map(|l| {
            let (t, n) = l.split_once('\t')?;
            Some((t.to_string(), n.trim().parse().ok()?))
        })
        .collect();
    outcome.newest_row = checked
        .lines()
        .find_map(|l| l.strip_prefix("NEWEST\t"))
        .filter(|t| !t.is_empty() && *t != "NULL")
        .map(str::to_string);
    if outcome.failure.is_none() && !outcome.tables_check {
        outcome.failure = Some("CHECK TABLE found a problem in the restored copy".into());
    }
    match &job.app {
        Err(why) => outcome.app_checks_not_run = Some(why.clone()),
        Ok(_) if outcome.failure.is_some() => {
            outcome.app_checks_not_run = Some("the drill failed before them".into())
        }
        Ok(app) => {
            let out = target.run(&drill_app_script(&job.stamp, app), None).await?;
            match parse_drill_app(app, &out.stdout_text()) {
                Ok(results) => outcome.app_checks = results,
                Err(why) => {
                    outcome.failure = Some(format!("the app on the copy: {why}"));
                    outcome.app_checks_not_run = Some(why);
                }
            }
        }
    }
    if let Some(c) = outcome.app_checks.iter().find(|c| c.passed == Some(false)) {
        outcome.failure.get_or_insert(format!(
            "the app's check of {} on the copy: {}",
            c.path, c.detail
        ));
    }
    Ok(())
}

/// Runs a restore drill; the throwaway servers are removed whatever
/// happens.
pub async fn drill<C: Connector>(
    engine: &Engine<'_, C>,
    job: &DrillJob,
) -> Result<DrillOutcome, HostFailure> {
    let start = std::time::Instant::now();
    let backup = engine.connector.connect(&job.backup).await?;
    let target = engine.connector.connect(&job.target).await?;
    let mut outcome = DrillOutcome {
        host: job.target.name.clone(),
        snapshot: job.snapshot.id.clone(),
        snapshot_time: job.snapshot.time.clone(),
        replayed: None,
        tables_check: false,
        tables: Vec::new(),
        newest_row: None,
        app_checks: Vec::new(),
        app_checks_not_run: None,
        elapsed_ms: 0,
        failure: None,
    };
    // The throwaway servers go whatever happens before.
    let checked = async {
        let (from, into) = backup
            .pipe(
                &dump_script(&job.snapshot),
                &target,
                &drill_sink(&job.stamp),
            )
            .await?;
        if !from.success() || !into.success() {
            outcome.failure = Some(format!(
                "bringing snapshot {} up on {}: {} {}",
                job.snapshot.id,
                job.target.name,
                from.stderr_text(),
                into.stderr_text()
            ));
        }
        drill_on_copy(&backup, &target, &into, job, &mut outcome).await
    }
    .await;
    let stopped = target.run(&drill_stop(&job.stamp), None).await;
    checked?;
    stopped?;
    // What the app logged, when it did not start, may name a secret.
    let redact = |t: Option<String>| t.map(|t| engine.secrets.redact(&t));
    outcome.failure = redact(outcome.failure);
    outcome.app_checks_not_run = redact(outcome.app_checks_not_run);
    backup.close().await;
    target.close().await;
    outcome.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(outcome)
}
