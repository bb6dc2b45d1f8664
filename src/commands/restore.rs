//! `foobar restore [--snapshot ID] [--to SERVER] --yes`: the database and
//! the uploads back from the backup server: the newest backup (or the one
//! named), onto the server they came from (or another of the inventory's
//! database servers, a fresh one), under the server lock with the
//! maintenance page up while the database is replaced, the checks after.
//! What it replaces is moved aside, never deleted.

use std::io::IsTerminal;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::Input;
use crate::checks::Checks;
use crate::cli::{exit, outln, Global};
use crate::engine::backup::{
    self, DrillApp, DrillCheck, DrillJob, DrillOutcome, HistoryEnd, PointInTime, RestoreJob,
    RestoreOutcome, Snapshot,
};
use crate::engine::{self, Claim, HostError};
use crate::error::InputError;
use crate::inventory::{Inventory, Role, Server};
use crate::progress::{self, Event};
use crate::steps::release::with_app_env;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore, as `foobar backups` lists it (a database
    /// backup, with the uploads taken with it); default: the newest.
    #[arg(long, value_name = "ID", conflicts_with = "at")]
    pub snapshot: Option<String>,
    /// Restore to this moment: the newest backup before it, then the
    /// streamed binary log up to it. RFC 3339 with a zone
    /// (2026-12-06T05:34:24Z) or a time in the inventory's time zone
    /// (2026-12-06T05:34:24).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The database server to restore onto (default: the one backed up).
    #[arg(long, value_name = "SERVER")]
    pub to: Option<String>,
    /// Replace the live data without asking (it is moved aside, not
    /// deleted).
    #[arg(long)]
    pub yes: bool,
    /// Take the servers' locks even where another run holds one (a stale lock).
    #[arg(long)]
    pub break_lock: bool,
    /// A drill: bring the backup up as a throwaway database server on the
    /// target, beside what runs there, check every table, count the app's
    /// rows, remove it. Nothing live is touched.
    #[arg(long, conflicts_with = "break_lock")]
    pub drill: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    #[serde(flatten)]
    outcome: Option<RestoreOutcome>,
    errors: Vec<HostError>,
    elapsed_ms: u64,
}

fn bad(what: &str, message: String) -> anyhow::Error {
    InputError::new(std::path::Path::new(what), message).into()
}

pub async fn run(g: &Global, args: RestoreArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let input = Input::load(g)?;
    let Input {
        inv,
        pb,
        secrets,
        renderer,
    } = &input;
    let site = &inv.inventory;
    let backup_server = super::backup_server(inv)?;
    let target = match &args.to {
        Some(name) => inv.server(name).ok_or_else(|| {
            bad(
                "--to",
                format!(
                    "`{}` is not a server of the inventory: name one of {}",
                    name.escape_debug(),
                    site.servers
                        .0
                        .iter()
                        .map(|s| s.name.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
        None => site
            .backup_db_source()
            .expect("a backup server implies a database server"),
    };
    if !target.has(Role::Db) && !target.has(Role::DbCluster) {
        return Err(bad(
            "--to",
            format!(
                "`{}` has no db or db_cluster role: a backup is restored onto a database primary or a member of the Galera cluster",
                target.name
            ),
        ));
    }
    // Everything that can be refused is, before any server is contacted.
    let at = args
        .at
        .as_deref()
        .map(|s| moment(s, &site.maintenance))
        .transpose()?;
    let mut web = Vec::new();
    if !args.drill {
        for s in super::servers(g, inv, Some(Role::Web))? {
            web.push((
                engine::ssh_target(inv, s),
                Checks::resolve(renderer, pb, inv, s, secrets)?,
            ));
        }
    }
    let claim = Claim::new("restore")?;
    if !args.yes && !args.drill {
        confirm(target.name.as_str())?;
    }
    let out = progress::reporter(g.verbosity());
    let engine = super::engine(g, out.as_ref(), secrets);
    let backup_target = engine::ssh_target(inv, backup_server);
    // The schedule waits while the repository is read: no retention run
    // forgets a snapshot between its pick and the end of its restore.
    let held = [backup::hold_schedule(&engine, &backup_target).await];
    let (ok, _, failures) = super::split(out.as_ref(), &held);
    match ok.into_iter().next() {
        None => return Ok(exit::of(false, &failures, false)),
        Some(Err(why)) => {
            let _ = backup::resume_schedule(&engine, &backup_target).await;
            return Err(anyhow::anyhow!(
                "cannot hold the backup server's schedule: {why}"
            ));
        }
        Some(Ok(())) => {}
    }
    // The restore or the drill, with the schedule held.
    let result = async {
        let engine = &engine;
        let out = out.as_ref();
        let listed = [backup::list(engine, &backup_target).await];
        let (found, errors, failures) = super::split(out, &listed);
        let Some(list) = found.into_iter().next() else {
            return Ok(exit::of(false, &failures, false));
        };
        let list = list.map_err(|why| anyhow::anyhow!("cannot read the backups: {why}"))?;
        let (db, files, at) = match at {
            Some(t) => {
                let ends = backup::history_ends(engine, &backup_target).await?;
                let (db, files, ended_by) = pick_before(&list, t, &ends)?;
                let at = PointInTime {
                    until: key(t),
                    ended_by: ended_by.map(|e| e.folder.clone()),
                    histories: ends.iter().map(|e| e.folder.clone()).collect(),
                };
                (db, files, Some(at))
            }
            None => {
                let (db, files) = pick(&list, args.snapshot.as_deref())?;
                (db, files, None)
            }
        };
        if args.drill {
            let job = DrillJob {
                backup: backup_target.clone(),
                target: engine::ssh_target(inv, target),
                snapshot: db.clone(),
                at,
                database: site.mysql.database.to_string(),
                stamp: backup::stamp(jiff::Timestamp::now()),
                app: drill_app(site, target),
            };
            let outcome = [backup::drill(engine, &job).await];
            let (done, mut more, failures2) = super::split(out, &outcome);
            let mut errors = errors;
            errors.append(&mut more);
            return report_drill(
                g,
                done.into_iter().next(),
                errors,
                failures.into_iter().chain(failures2).collect(),
            );
        }
        let files_server = site.backup_files_source();
        let job = RestoreJob {
            backup: backup_target.clone(),
            db: Some((engine::ssh_target(inv, target), db.clone())),
            members: site
                .servers_with(Role::DbCluster)
                .filter(|s| target.has(Role::DbCluster) && s.name != target.name)
                .map(|s| engine::ssh_target(inv, s))
                .collect(),
            files: files.zip(files_server).map(|(snapshot, server)| {
                (
                    engine::ssh_target(inv, server),
                    snapshot.clone(),
                    site.app.user.to_string(),
                )
            }),
            app_root: site.app.root.to_string(),
            release_server: site.release_server().map(|s| engine::ssh_target(inv, s)),
            web,
            stamp: backup::stamp(jiff::Timestamp::now()),
            at,
        };
        let outcome = [backup::restore(engine, &job, &claim, args.break_lock).await];
        let (done, mut more, failures2) = super::split(out, &outcome);
        let outcome = done.into_iter().next();
        let mut all_errors = errors;
        all_errors.append(&mut more);
        let report = Report {
            outcome,
            errors: all_errors,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        let failed = report.outcome.as_ref().is_some_and(|o| o.failure.is_some());
        if g.json {
            crate::cli::print_json("restore", &report)?;
        } else if let Some(o) = &report.outcome {
            for r in &o.restored {
                outln!(
                    "{}: restored {} from snapshot {}{}",
                    r.host,
                    r.kind,
                    r.snapshot,
                    r.moved_aside
                        .as_ref()
                        .map(|p| format!(" (what it replaced: {p})"))
                        .unwrap_or_default()
                )?;
            }
            for c in &o.checks {
                outln!(
                    "{} check {} ({}): {}",
                    if c.passed { "ok  " } else { "FAIL" },
                    c.check,
                    c.hop,
                    c.detail
                )?;
            }
            if let Some(r) = &o.replayed {
                outln!(
                    "binary log replayed: {} transactions after the backup{}",
                    r.transactions,
                    match (&r.last_gtid, &r.last_time) {
                        (Some(g), Some(t)) => format!(", the last {g} at {t} UTC"),
                        _ => String::new(),
                    }
                )?;
            }
            if let Some(why) = &o.failure {
                outln!("FAILED: {why}")?;
            }
            outln!("done in {:.1} s", report.elapsed_ms as f64 / 1000.0)?;
        }
        let all_failures: Vec<_> = failures.into_iter().chain(failures2).collect();
        Ok::<u8, anyhow::Error>(exit::of(failed, &all_failures, false))
    }
    .await;
    if let Err(e) = backup::resume_schedule(&engine, &backup_target).await {
        out.report(Event::Message {
            text: format!("warning: the backup timer was not started again: {e}"),
        });
    }
    result
}

/// The database backup to restore (the one named, or the newest) and the
/// uploads taken with it: the newest files backup no later than a minute
/// after it.
fn pick<'a>(
    list: &'a [Snapshot],
    wanted: Option<&str>,
) -> anyhow::Result<(&'a Snapshot, Option<&'a Snapshot>)> {
    let dbs: Vec<&Snapshot> = list.iter().filter(|s| s.kind == "db").collect();
    let db = match wanted {
        Some(id) => *dbs.iter().find(|s| s.id.starts_with(id)).ok_or_else(|| {
            bad(
                "--snapshot",
                format!(
                    "no database backup `{}`: `foobar backups` lists them ({})",
                    id.escape_debug(),
                    dbs.iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
        None => *dbs.last().ok_or_else(|| {
            anyhow::anyhow!(
                "the backup server holds no database backup yet: take one with `foobar backup`"
            )
        })?,
    };
    let until = db
        .time
        .parse::<jiff::Timestamp>()
        .map(|t| t + jiff::SignedDuration::from_secs(60))
        .ok();
    let files = list.iter().rfind(|s| {
        s.kind == "files"
            && until.is_none_or(|u| s.time.parse::<jiff::Timestamp>().is_ok_and(|t| t <= u))
    });
    Ok((db, files))
}

/// A moment as mariadb-binlog dates events: UTC, the number `YYMMDDhhmmss`.
fn key(t: jiff::Timestamp) -> i64 {
    t.strftime("%y%m%d%H%M%S")
        .to_string()
        .parse()
        .expect("digits only")
}

#[derive(Debug, Serialize)]
struct DrillReport {
    drill: Option<DrillOutcome>,
    errors: Vec<HostError>,
}

fn report_drill(
    g: &Global,
    drill: Option<DrillOutcome>,
    errors: Vec<HostError>,
    failures: Vec<&crate::engine::HostFailure>,
) -> anyhow::Result<u8> {
    let failed = drill.as_ref().is_some_and(|d| d.failure.is_some());
    let report = DrillReport { drill, errors };
    if g.json {
        crate::cli::print_json("restore", &report)?;
    } else if let Some(d) = &report.drill {
        outln!(
            "drill on {}: snapshot {} (taken {}) up as a throwaway server in {:.1} s",
            d.host,
            d.snapshot,
            d.snapshot_time,
            d.elapsed_ms as f64 / 1000.0
        )?;
        if let Some(r) = &d.replayed {
            outln!(
                "binary log replayed: {} transactions, the newest {}",
                r.transactions,
                r.last_time.as_deref().unwrap_or("(none)")
            )?;
        }
        outln!(
            "CHECK TABLE: {}",
            if d.tables_check {
                "every table OK"
            } else {
                "FAILED"
            }
        )?;
        for (table, rows) in &d.tables {
            outln!("  {table}: {rows} rows")?;
        }
        if let Some(t) = &d.newest_row {
            outln!("newest row: {t}")?;
        }
        if !d.app_checks.is_empty() {
            outln!("the app's checks, against the copy:")?;
        }
        for c in &d.app_checks {
            let verdict = match c.passed {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "not asked",
            };
            outln!("  GET {}: {verdict} ({})", c.path, c.detail)?;
        }
        if let Some(why) = &d.app_checks_not_run {
            outln!("the app's checks: not run: {why}")?;
        }
        if let Some(why) = &d.failure {
            outln!("FAILED: {why}")?;
        }
    }
    Ok(exit::of(failed, &failures, false))
}

/// `--at`: RFC 3339 with a zone, or a civil time in the inventory's time
/// zone; never in the future.
fn moment(s: &str, m: &crate::inventory::Maintenance) -> anyhow::Result<jiff::Timestamp> {
    let t = match s.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => s
            .parse::<jiff::civil::DateTime>()
            .and_then(|d| d.to_zoned_datetime(crate::windows::time_zone(m)))
            .map(|z| z.timestamp())
            .map_err(|e| {
                bad(
                    "--at",
                    format!("`{}` is not a time ({e}): write RFC 3339 with a zone (2026-12-06T05:34:24Z) or a time in the inventory's time zone ({})", s.escape_debug(), m.time_zone),
                )
            })?,
    };
    if t > jiff::Timestamp::now() {
        return Err(bad(
            "--at",
            format!("{t} is in the future: nothing is backed up from there yet"),
        ));
    }
    Ok(t)
}

/// With `--at`: the newest database backup taken before the moment (the
/// binary log replays the rest), and the uploads taken with it; a moment
/// before every backup says which moments are possible.
fn pick_before<'a, 'r>(
    list: &'a [Snapshot],
    at: jiff::Timestamp,
    ends: &'r [HistoryEnd],
) -> anyhow::Result<(&'a Snapshot, Option<&'a Snapshot>, Option<&'r HistoryEnd>)> {
    let time = |s: &Snapshot| s.time.parse::<jiff::Timestamp>().ok();
    let dbs: Vec<&Snapshot> = list.iter().filter(|s| s.kind == "db").collect();
    let Some((db, taken)) = dbs
        .iter()
        .filter_map(|s| Some((*s, time(s)?)))
        .rfind(|(_, t)| *t <= at)
    else {
        let oldest = dbs
            .first()
            .map(|s| s.time.as_str())
            .unwrap_or("(no backup yet)");
        return Err(bad(
            "--at",
            format!("{at} is before the oldest database backup: possible times are from {oldest} until now"),
        ));
    };
    // The backup's history holds every write up to its end (a restore),
    // or up to the last one its stream received (a gap); a moment after
    // that and before the next backup is in no history.
    let ended_by = backup::history_end(taken, ends);
    if let Some(end) = ended_by.filter(|end| backup::stamp(at) > end.covered) {
        let next = dbs
            .iter()
            .find(|s| time(s).is_some_and(|t| backup::stamp(t) >= end.ended))
            .map(|s| format!("from {} (the next backup) on", s.time))
            .unwrap_or_else(|| "after the next backup".into());
        let between = if end.by_restore() {
            format!("the restore of {}", end.ended)
        } else {
            format!(
                "the last write the streamed binary log holds before its source lost its log ({}, a state transfer or a purge)",
                end.covered
            )
        };
        return Err(bad(
            "--at",
            format!("{at} falls between {between} and the first backup after it, a time no backup holds: pick one up to {}, or {next}", end.covered),
        ));
    }
    let (db, files) = pick(list, Some(&db.id))?;
    Ok((db, files, ended_by))
}

/// The app's checks in a drill on `target`: its app server started there
/// from the live release, its database the copy's socket; or why not.
fn drill_app(site: &Inventory, target: &Server) -> Result<DrillApp, String> {
    if !target.has(Role::App) {
        return Err(format!(
            "{} runs no app server: the app's checks run in a drill on a server that holds both the database and the app",
            target.name
        ));
    }
    let app = &site.app;
    let kind = app.kind.server();
    let server = kind.drill_server(&app.setting(kind.entry_key()), "127.0.0.1:$port");
    // app.env's database settings give way to MariaDB's usual socket,
    // which in the drill's namespaces is the copy's.
    let server = format!(
        "env -u DB_HOST -u DB_PORT -u DB_SSL_CA DB_SOCKET=/run/mysqld/mysqld.sock {server}"
    );
    let web = crate::render::WebLayout::new(site);
    Ok(DrillApp {
        root: app.root.to_string(),
        server: with_app_env(
            &app.kind.run_env("$root", "$rel"),
            Some(app.user.as_str()),
            &server,
        ),
        host: site.domain.fqdn(),
        checks: app
            .checks
            .iter()
            .map(|c| DrillCheck {
                path: c.path.to_string(),
                status: c.status,
                contains: c.contains.clone(),
                nginx_folder: web
                    .locations
                    .iter()
                    .map(|l| &l.url)
                    .chain(&web.uploads)
                    .any(|url| c.path.as_str().starts_with(url.as_str())),
                script: kind.runs_web_root_scripts()
                    && c.path
                        .as_str()
                        .split('?')
                        .next()
                        .is_some_and(|p| p.ends_with(".php")),
            })
            .collect(),
        files_root: web.root,
    })
}

/// Without `--yes`: the server's name typed at the terminal, or nothing.
fn confirm(server: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(bad(
            "--yes",
            format!("restore replaces the live data on {server} (moved aside, not deleted): pass --yes to go on without a terminal to confirm at"),
        ));
    }
    eprint!("restore replaces the live data on {server} (it is moved aside, not deleted). Type `{server}` to go on: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() == server {
        Ok(())
    } else {
        Err(anyhow::anyhow!("not confirmed: nothing was changed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, kind: &str, time: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            time: time.into(),
            kind: kind.into(),
            server: "web1".into(),
            bytes: None,
        }
    }

    #[test]
    fn the_uploads_taken_with_the_database_backup_are_picked() {
        let list = [
            snap("d1", "db", "2026-12-07T00:41:15.1Z"),
            snap("f1", "files", "2026-12-07T00:41:17.7Z"),
            snap("d2", "db", "2026-12-07T01:41:15.1Z"),
            snap("f2", "files", "2026-12-07T01:41:17.7Z"),
        ];
        let (db, files) = pick(&list, None).unwrap();
        assert_eq!((db.id.as_str(), files.unwrap().id.as_str()), ("d2", "f2"));
        let (db, files) = pick(&list, Some("d1")).unwrap();
        assert_eq!((db.id.as_str(), files.unwrap().id.as_str()), ("d1", "f1"));
        let err = pick(&list, Some("zz")).unwrap_err().to_string();
        assert!(err.contains("d1, d2"), "{err}");
        assert!(pick(&[], None).is_err());
    }

    #[test]
    fn a_moment_is_read_from_the_history_its_backup_belongs_to() {
        let list = [
            snap("d1", "db", "2026-12-07T01:00:00Z"),
            snap("d2", "db", "2026-12-07T03:00:00Z"),
        ];
        let restore = HistoryEnd {
            folder: "before-restore-20261207T020000Z".into(),
            ended: "20261207T020000Z".into(),
            covered: "20261207T020000Z".into(),
        };
        let restores = [restore.clone()];
        let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
        // Before the restore: d1 and the log the restore kept aside.
        let (db, _, ended_by) = pick_before(&list, at("2026-12-07T01:30:00Z"), &restores).unwrap();
        assert_eq!((db.id.as_str(), ended_by), ("d1", Some(&restore)));
        // After the next backup: d2 and the live log.
        let (db, _, ended_by) = pick_before(&list, at("2026-12-07T03:30:00Z"), &restores).unwrap();
        assert_eq!((db.id.as_str(), ended_by), ("d2", None));
        // Between the restore and the next backup: no backup holds it.
        let err = pick_before(&list, at("2026-12-07T02:30:00Z"), &restores)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pick one up to 20261207T020000Z, or from 2026-12-07T03:00:00Z (the next backup) on"),
            "{err}"
        );
        // A gap: the history holds writes up to its last one received, not
        // up to when the gap was found.
        let gap = [HistoryEnd {
            folder: "gap-20261207T013000Z-20261207T020000Z".into(),
            ended: "20261207T020000Z".into(),
            covered: "20261207T013000Z".into(),
        }];
        assert!(pick_before(&list, at("2026-12-07T01:29:59Z"), &gap).is_ok());
        let err = pick_before(&list, at("2026-12-07T01:45:00Z"), &gap)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("its source lost its log (20261207T013000Z")
                && err.contains("pick one up to 20261207T013000Z, or from 2026-12-07T03:00:00Z"),
            "{err}"
        );
        assert!(pick_before(&list, at("2026-12-07T00:30:00Z"), &restores).is_err());
    }
}
