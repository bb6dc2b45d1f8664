//! The engine over a fake transport: a pretend server that understands
//! just enough of foobar's scripts (facts, the lock, the `fixture` kind,
//! pending handlers, handlers) to prove the engine's order and guarantees
//! without root and without the lab.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::provision::HostOutcome;
use super::*;
use crate::inventory;
use crate::playbook;
use crate::progress::{Event, Reporter};
use crate::render::Renderer;
use crate::resolve::{self, Resolved};
use crate::steps::{sha256_hex, PlanCx, PENDING_HANDLERS};
use crate::transport::fake::{self, FakeConnector, FakeServer};
use crate::transport::Output;

const PLAYBOOK: &str = r#"
roles:
  - role: web
    steps:
      - fixture: {path: /etc/a, word: alpha, notify: reload a}
      - fixture: {path: /etc/b, word: beta}
    handlers:
      - {name: reload a, service: a, action: reload}
  - role: db
    steps:
      - fixture: {path: /etc/c, word: gamma, notify: restart c}
    handlers:
      - {name: restart c, service: c, action: restart}
"#;

/// What the pretend server holds.
#[derive(Default)]
struct State {
    files: BTreeMap<String, String>,
    pending: Vec<String>,
    /// (owner, holder)
    lock: Option<(String, String)>,
    /// Handlers whose service fails to come back.
    failing_services: Vec<String>,
    /// Files whose write fails.
    failing_writes: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

fn respond(state: &Shared, script: &str) -> Output {
    let mut s = state.lock().unwrap();
    let mut out = String::new();
    if script.contains("rm -rf /var/lib/foobar/lock\n") {
        s.lock = None;
    }
    if script.contains("if mkdir /var/lib/foobar/lock") {
        match &s.lock {
            Some((owner, holder)) => out.push_str(&format!("LOCKED\t{owner}\t{holder}\n")),
            None => {
                let word = |key: &str| {
                    script
                        .split(&format!("> /var/lib/foobar/lock/{key}"))
                        .next()
                        .and_then(|p| p.rsplit("printf '%s' ").next())
                        .unwrap_or_default()
                        .trim()
                        .trim_matches('\'')
                        .to_string()
                };
                s.lock = Some(("this run".into(), word("holder")));
            }
        }
    } else if script.starts_with("[ -d /var/lib/foobar/lock ]") {
        if let Some((owner, holder)) = &s.lock {
            out.push_str(&format!("LOCKED\t{owner}\t{holder}\n"));
        }
    }
    if script.contains("/var/lib/foobar/lock/token")
        && script.contains("rm -rf /var/lib/foobar/lock; fi")
    {
        s.lock = None;
    }
    if script.contains("exec 2>/dev/null") {
        for line in script.lines() {
            if let Some(marker) = line
                .strip_prefix("echo '")
                .and_then(|l| l.strip_suffix('\''))
            {
                out.push_str(marker);
                out.push('\n');
            }
            if let Some(path) = line.strip_prefix("pf ") {
                if let Some(content) = s.files.get(path) {
                    out.push_str(&format!(
                        "F\troot root 644 regular file\t{}\n",
                        sha256_hex(content.as_bytes())
                    ));
                }
            }
        }
        for h in &s.pending {
            out.push_str(&format!("H\t{h}\n"));
        }
        return fake::ok(&out);
    }
    if let Some(svc) = script.strip_prefix("svc=").and_then(|r| r.lines().next()) {
        if s.failing_services.iter().any(|f| f == svc) {
            return fake::failed(1, &format!("{svc} did not come back"));
        }
        let name = script
            .split("grep -vxF ")
            .nth(1)
            .and_then(|r| r.split(" /var").next())
            .unwrap_or_default()
            .trim_matches('\'')
            .to_string();
        s.pending.retain(|p| *p != name);
        return fake::ok("");
    }
    if let Some(rest) = script.strip_prefix("set -e\necho ") {
        let (word, rest) = rest.split_once(" > ").unwrap();
        let path = rest.lines().next().unwrap().to_string();
        if s.failing_writes.contains(&path) {
            return fake::failed(1, "disk full");
        }
        s.files.insert(path, format!("{word}\n"));
        if let Some(h) = rest.split("echo ").nth(1) {
            let h = h
                .split(" >> ")
                .next()
                .unwrap()
                .trim_matches('\'')
                .to_string();
            if !s.pending.contains(&h) {
                s.pending.push(h);
            }
        }
        return fake::ok("");
    }
    fake::ok(&out)
}

/// Events, collected.
#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl Reporter for Collect {
    fn report(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

struct World {
    state: Shared,
    server: FakeServer,
    inv: inventory::Loaded,
    pb: playbook::Loaded,
}

fn world() -> World {
    let state: Shared = Arc::default();
    let s = state.clone();
    let server = FakeServer::new("web1", move |script, _| respond(&s, script));
    let inv = inventory::load(Path::new("inventory/lab.yml")).unwrap();
    let pb = playbook::parse(Path::new("test.yml"), PLAYBOOK).unwrap();
    World {
        state,
        server,
        inv,
        pb,
    }
}

impl World {
    fn steps(&self) -> Vec<Resolved> {
        let renderer = Renderer::new(&crate::project::Project::at(Path::new(".")));
        let server = &self.inv.inventory.servers.0[0];
        resolve::resolve(&renderer, &self.pb, &self.inv, server, &Secrets::masked()).unwrap()
    }

    fn provision(&self, check: bool, break_lock: bool) -> HostOutcome {
        let jobs = [ProvisionJob {
            target: ssh_target(&self.inv, &self.inv.inventory.servers.0[0]),
            steps: self.steps(),
            checks: None,
            replica: false,
            wave: 0,
            roll_back: None,
            behind: Vec::new(),
        }];
        let out = Collect::default();
        let connector = FakeConnector(vec![self.server.clone()]);
        let engine = Engine {
            connector: &connector,
            out: &out,
            secrets: &Secrets::masked(),
            forks: 1,
        };
        let opts = ProvisionOptions {
            check,
            diff: false,
            break_lock,
            claim: Claim::new("provision").unwrap(),
            plan_cx: PlanCx {
                today: 20261126,
                rebuild: false,
            },
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(provision(&engine, &jobs, &self.pb.playbook.roles, &opts))
            .pop()
            .unwrap()
    }

    /// A short name for each script run, in order.
    fn trace(&self) -> Vec<String> {
        self.server
            .scripts()
            .iter()
            .map(|s| {
                if s.starts_with("[ -d /var/lib/foobar/lock ]") {
                    "facts".to_string()
                } else if s.contains("if mkdir /var/lib/foobar/lock") {
                    if s.contains("rm -rf /var/lib/foobar/lock\n") {
                        "break lock + facts".into()
                    } else {
                        "lock + facts".into()
                    }
                } else if s.contains("/var/lib/foobar/lock/token") {
                    "release".into()
                } else if let Some(svc) = s.strip_prefix("svc=") {
                    format!("handler {}", svc.lines().next().unwrap())
                } else if let Some(rest) = s.strip_prefix("set -e\necho ") {
                    format!(
                        "write {}",
                        rest.split(" > ").nth(1).unwrap().lines().next().unwrap()
                    )
                } else {
                    s.clone()
                }
            })
            .collect()
    }
}

fn changed(outcome: &HostOutcome) -> usize {
    let (host, _) = outcome.as_ref().unwrap();
    host.count(crate::progress::StepStatus::Changed)
}

#[test]
fn a_first_run_locks_applies_in_order_runs_handlers_per_role_and_releases() {
    let w = world();
    let r = w.provision(false, false);
    assert_eq!(changed(&r), 5, "three files and two handlers");
    assert_eq!(
        w.trace(),
        [
            "facts",
            "lock + facts",
            "write /etc/a",
            "write /etc/b",
            "handler a",
            "write /etc/c",
            "handler c",
            "release"
        ]
    );
    let s = w.state.lock().unwrap();
    assert!(s.lock.is_none(), "the lock is given back");
    assert!(
        s.pending.is_empty(),
        "handlers that ran are no longer pending"
    );
}

#[test]
fn a_no_op_is_one_call_and_takes_no_lock() {
    let w = world();
    w.provision(false, false).unwrap();
    let before = w.server.scripts().len();
    let r = w.provision(false, false);
    assert_eq!(changed(&r), 0);
    assert_eq!(w.trace()[before..], ["facts"]);
}

#[test]
fn check_mode_reports_changes_and_touches_nothing() {
    let w = world();
    let (host, _) = w.provision(true, false).unwrap();
    assert_eq!(host.count(crate::progress::StepStatus::Changed), 3);
    assert!(host
        .steps
        .iter()
        .all(|s| s.detail.as_deref().is_none_or(|d| d.starts_with("would "))));
    assert_eq!(w.trace(), ["facts"]);
    assert!(w.state.lock().unwrap().files.is_empty());
}

#[test]
fn a_failed_step_stops_the_run_and_leaves_its_handler_pending_for_the_next() {
    let w = world();
    w.state.lock().unwrap().failing_writes.push("/etc/b".into());
    let (host, _) = w.provision(false, false).unwrap();
    assert!(host.error.as_deref().unwrap().contains("fixture /etc/b"));
    assert!(
        !w.trace().iter().any(|t| t.starts_with("handler")),
        "no handler after a failure"
    );
    assert_eq!(
        w.trace().last().unwrap(),
        "release",
        "the lock is given back"
    );
    assert_eq!(w.state.lock().unwrap().pending, ["reload a"]);

    // The next run changes /etc/b only, and runs the pending handler.
    w.state.lock().unwrap().failing_writes.clear();
    let before = w.server.scripts().len();
    w.provision(false, false).unwrap();
    assert_eq!(
        w.trace()[before..],
        [
            "facts",
            "lock + facts",
            "write /etc/b",
            "handler a",
            "write /etc/c",
            "handler c",
            "release"
        ]
    );
    assert!(w.state.lock().unwrap().pending.is_empty());
}

#[test]
fn a_pending_handler_alone_takes_the_lock_and_runs() {
    let w = world();
    w.provision(false, false).unwrap();
    w.state.lock().unwrap().pending.push("restart c".into());
    let before = w.server.scripts().len();
    let r = w.provision(false, false);
    assert_eq!(changed(&r), 1);
    assert_eq!(
        w.trace()[before..],
        ["facts", "lock + facts", "handler c", "release"]
    );
}

#[test]
fn a_failing_handler_fails_the_run_and_stays_pending() {
    let w = world();
    w.state.lock().unwrap().failing_services.push("a".into());
    let (host, _) = w.provision(false, false).unwrap();
    assert!(host
        .error
        .as_deref()
        .unwrap()
        .starts_with("handler: reload a"));
    assert!(
        !w.trace().contains(&"write /etc/c".to_string()),
        "the db role never started"
    );
    assert!(w
        .state
        .lock()
        .unwrap()
        .pending
        .contains(&"reload a".to_string()));
}

#[test]
fn a_live_run_holding_the_lock_refuses_even_a_no_op() {
    let w = world();
    w.provision(false, false).unwrap();
    w.state.lock().unwrap().lock = Some(("alice@elsewhere".into(), "elsewhere 1".into()));
    let before = w.server.scripts().len();
    let r = w.provision(false, false);
    assert!(
        matches!(r, Err(HostFailure::Locked(ref l)) if l.owner == "alice@elsewhere"),
        "{:?}",
        r.err()
    );
    assert_eq!(
        w.trace()[before..],
        ["facts"],
        "nothing changed, nothing released"
    );
    assert!(w.state.lock().unwrap().lock.is_some());
}

#[test]
fn the_lock_of_a_killed_run_of_this_machine_is_taken_over() {
    let w = world();
    let mine = Claim::new("provision").unwrap();
    let space = mine.holder.split(' ').next().unwrap().to_string();
    // A pid that is not running.
    w.state.lock().unwrap().lock = Some(("a killed run".into(), format!("{space} 4000000 1")));
    let r = w.provision(false, false);
    assert_eq!(changed(&r), 5);
    assert_eq!(w.trace()[..2], ["facts", "break lock + facts"]);
    assert!(w.state.lock().unwrap().lock.is_none());
}

#[test]
fn break_lock_takes_any_lock() {
    let w = world();
    w.state.lock().unwrap().lock = Some(("alice@elsewhere".into(), "elsewhere 1".into()));
    let r = w.provision(false, true);
    assert_eq!(changed(&r), 5);
    assert_eq!(w.trace()[1], "break lock + facts");
}

#[test]
fn servers_fan_out_and_one_unreachable_server_hides_no_other() {
    let w = world();
    let renderer = Renderer::new(&crate::project::Project::at(Path::new(".")));
    let server = &w.inv.inventory.servers.0[0];
    let mut jobs = Vec::new();
    for name in ["web1", "ghost", "web1"] {
        let mut target = ssh_target(&w.inv, server);
        target.name = name.into();
        jobs.push(ProvisionJob {
            target,
            steps: resolve::resolve(&renderer, &w.pb, &w.inv, server, &Secrets::masked()).unwrap(),
            checks: None,
            replica: false,
            wave: 0,
            roll_back: None,
            behind: Vec::new(),
        });
    }
    let connector = FakeConnector(vec![w.server.clone()]);
    let out = Collect::default();
    let engine = Engine {
        connector: &connector,
        out: &out,
        secrets: &Secrets::masked(),
        forks: 2,
    };
    let opts = ProvisionOptions {
        check: true,
        diff: false,
        break_lock: false,
        claim: Claim::new("provision").unwrap(),
        plan_cx: PlanCx {
            today: 20261126,
            rebuild: false,
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let results = rt.block_on(provision(&engine, &jobs, &w.pb.playbook.roles, &opts));
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    assert!(matches!(&results[1], Err(HostFailure::Unreachable(u)) if u.host == "ghost"));
    assert!(results[2].is_ok());
}

#[test]
fn pending_handlers_are_recorded_by_the_change_that_notifies_them() {
    let w = world();
    let steps = w.steps();
    let facts = crate::facts::parse("", steps.len());
    let planned = crate::plan::plan(
        &steps,
        &facts,
        &PlanCx {
            today: 20261126,
            rebuild: false,
        },
    );
    let script = planned[0].change.as_ref().unwrap().script();
    assert!(
        script
            .text
            .contains(&format!("echo 'reload a' >> {PENDING_HANDLERS}")),
        "{}",
        script.text
    );
}

#[test]
fn a_connection_lost_while_reading_facts_is_made_again() {
    let w = world();
    w.provision(false, false).unwrap();
    w.server.lose_connection_at(1);
    let r = w.provision(false, false);
    assert_eq!(changed(&r), 0, "{:?}", r.as_ref().err());
    let trace = w.trace();
    assert_eq!(trace[trace.len() - 2..], ["(lost)", "facts"]);
}

#[test]
fn a_connection_lost_under_the_lock_is_not_made_again() {
    let w = world();
    w.provision(false, false).unwrap();
    w.state
        .lock()
        .unwrap()
        .files
        .insert("/etc/b".into(), "old\n".into());
    // facts, lock + facts, then the write is lost.
    w.server.lose_connection_at(3);
    let r = w.provision(false, false);
    let Err(HostFailure::Unreachable(e)) = r else {
        panic!("{:?}", r.map(|_| ()));
    };
    assert!(e.message.contains("lost"), "{e}");
    let trace = w.trace();
    assert_eq!(
        trace[trace.len() - 4..],
        ["facts", "lock + facts", "(lost)", "release"]
    );
}

/// A server of the backup lab's inventory, as the engine reaches it.
fn backup_lab_target(name: &str) -> SshTarget {
    let inv = inventory::load(Path::new("inventory/lab-backup.yml")).unwrap();
    let server = inv
        .inventory
        .servers
        .0
        .iter()
        .find(|s| s.name.as_str() == name)
        .unwrap();
    ssh_target(&inv, server)
}

/// A database snapshot of web1 as `backups` lists it.
fn web1_snapshot() -> backup::Snapshot {
    backup::Snapshot {
        id: "d1".into(),
        time: "2026-12-07T00:00:00Z".into(),
        kind: "db".into(),
        server: "web1".into(),
        bytes: None,
    }
}

/// A history that ends while a drill reads the stream (which runs on
/// through a drill) fails the drill: it may have replayed the wrong one.
#[test]
fn a_history_ended_while_a_drill_read_it_fails_the_drill() {
    let backup = FakeServer::new("backup1", |script, _| {
        fake::ok(if script.starts_with("ls /var/lib/foobar/backup/binlog") {
            "gap-20261207T010000Z-20261207T010500Z\ngtid\n"
        } else {
            ""
        })
    });
    let db = FakeServer::new("web1", |script, _| {
        fake::ok(if script.contains("mbstream -x") {
            "GTID\t0-1-5\n"
        } else if script.contains("REPLAYED") {
            "REPLAYED\t1 0-1-6 261207 01:01:00\n"
        } else if script.contains("mariadb-check") {
            "CHECK\n"
        } else {
            ""
        })
    });
    let job = backup::DrillJob {
        backup: backup_lab_target("backup1"),
        target: backup_lab_target("web1"),
        snapshot: web1_snapshot(),
        at: Some(backup::PointInTime {
            until: 261207010200,
            ended_by: None,
            histories: Vec::new(),
        }),
        database: "foobar".into(),
        stamp: "20261207T010600Z".into(),
        app: Err("not in this test".into()),
    };
    let out = Collect::default();
    let connector = FakeConnector(vec![backup.clone(), db.clone()]);
    let engine = Engine {
        connector: &connector,
        out: &out,
        secrets: &Secrets::masked(),
        forks: 1,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcome = rt.block_on(backup::drill(&engine, &job)).unwrap();
    assert_eq!(outcome.replayed.map(|r| r.transactions), Some(1));
    let failure = outcome.failure.unwrap();
    assert!(
        failure.contains("gap-20261207T010000Z-20261207T010500Z")
            && failure.contains("drill again"),
        "{failure}"
    );
    // Read after the replay, not before.
    let scripts = backup.scripts();
    assert!(
        scripts
            .last()
            .is_some_and(|s| s.starts_with("ls /var/lib/foobar/backup/binlog")),
        "{scripts:?}"
    );
}

/// A history that ends between the restore's plan and the stream's stop
/// (a gap found in between) may hold the time asked for: the restore
/// stops before it touches a database server, and the stream goes on.
#[test]
fn a_history_ended_after_the_plan_stops_the_restore_before_any_change() {
    let backup = FakeServer::new("backup1", |script, _| {
        fake::ok(if script.starts_with("ls /var/lib/foobar/backup/binlog") {
            "gap-20261207T010000Z-20261207T010500Z\ngtid\n"
        } else {
            ""
        })
    });
    let job = backup::RestoreJob {
        backup: backup_lab_target("backup1"),
        db: Some((backup_lab_target("web1"), web1_snapshot())),
        members: Vec::new(),
        files: None,
        app_root: "/srv/foobar".into(),
        release_server: None,
        web: Vec::new(),
        stamp: "20261207T010600Z".into(),
        at: Some(backup::PointInTime {
            until: 261207010200,
            ended_by: None,
            histories: Vec::new(),
        }),
    };
    let out = Collect::default();
    // web1 is not among the fake servers: reaching it fails the test.
    let connector = FakeConnector(vec![backup.clone()]);
    let engine = Engine {
        connector: &connector,
        out: &out,
        secrets: &Secrets::masked(),
        forks: 1,
    };
    let claim = Claim::new("restore").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let outcome = rt
        .block_on(backup::restore(&engine, &job, &claim, false))
        .unwrap();
    let failure = outcome.failure.unwrap();
    assert!(
        failure.contains("gap-20261207T010000Z-20261207T010500Z") && failure.contains("again"),
        "{failure}"
    );
    assert!(outcome.restored.is_empty());
    let scripts = backup.scripts();
    assert_eq!(
        scripts.first().map(String::as_str),
        Some("systemctl stop foobar-binlog\n")
    );
    assert_eq!(
        scripts.last().map(String::as_str),
        Some("systemctl start foobar-binlog\n"),
        "the stream goes on"
    );
}
