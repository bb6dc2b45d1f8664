//! The app's day-two operations on its servers: the releases listed, an
//! earlier release made live again (rollback, also after a deploy whose
//! checks fail), logs, and the state of every server (status).

use std::time::Instant;

use serde::Serialize;

use super::backup::{self, Failed, Taken};
use super::certs::{self, CertState};
use super::host::HostRun;
use super::lock::{self, Claim};
use super::{Engine, HostFailure};
use crate::checks::{CheckResult, Checks};
use crate::shell::quote;
use crate::steps::release::{LIVE, READY};
use crate::steps::{PlanCx, PENDING_HANDLERS};
use crate::transport::{Connector, SshTarget, Transport, Unreachable};

use crate::app_kinds::AppKind;
use crate::roles::{job_units, MAINTENANCE_FLAG, RESTART_PROCESSES};
use crate::steps::release::with_app_env;

/// Points `<root>/current` at release `to`, or at the newest other
/// ready release, then runs `then` (the app's reload); prints
/// `SWITCHED\t<from>\t<to>`, or `REFUSED\t<why>` and changes nothing.
pub fn switch_script(root: &str, to: Option<&str>, then: &str) -> String {
    let pick = match to {
        Some(id) => format!(
            "to={id}\n[ -e \"$root/releases/$to/{READY}\" ] || {{ printf 'REFUSED\\t%s\\n' \"release $to is not on this server (foobar releases lists them)\"; exit 0; }}\n",
            id = quote(id)
        ),
        None => format!(
            "to=$(cd \"$root/releases\" && for m in $(ls -1t */{LIVE} 2>/dev/null); do r=${{m%/*}}; [ \"$r\" != \"$from\" ] && [ -e \"$r/{READY}\" ] && {{ echo \"$r\"; break; }}; done; true)\n\
             [ -n \"$to\" ] || {{ printf 'REFUSED\\t%s\\n' 'there is no earlier release to go back to'; exit 0; }}\n"
        ),
    };
    format!(
        "root={root}\nfrom=$(basename \"$(readlink \"$root/current\")\")\n{pick}\
         ln -sfn \"releases/$to\" \"$root/.current.tmp\"\nmv -T \"$root/.current.tmp\" \"$root/current\"\n\
         touch \"$root/releases/$to/{LIVE}\"\n\
         {then} >&2 || {{ printf 'FAILED\\t%s\\t%s\\n' \"$from\" \"$to\"; exit 0; }}\n\
         printf 'SWITCHED\\t%s\\t%s\\n' \"$from\" \"$to\"\n",
        root = quote(root),
    )
}

/// What a switch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch {
    Switched {
        from: String,
        to: String,
    },
    /// Switched, but the app's reload failed.
    ReloadFailed {
        from: String,
        to: String,
    },
    Refused(String),
}

pub fn parse_switch(output: &str) -> Switch {
    for l in output.lines() {
        let mut f = l.split('\t');
        match (f.next(), f.next(), f.next()) {
            (Some("SWITCHED"), Some(from), Some(to)) => {
                return Switch::Switched {
                    from: from.into(),
                    to: to.into(),
                }
            }
            (Some("FAILED"), Some(from), Some(to)) => {
                return Switch::ReloadFailed {
                    from: from.into(),
                    to: to.into(),
                }
            }
            (Some("REFUSED"), Some(why), _) => return Switch::Refused(why.into()),
            _ => {}
        }
    }
    Switch::Refused("the server gave no answer to the switch".into())
}

/// One app server, for rollback.
pub struct AppServer {
    pub target: SshTarget,
    /// For web servers: the end-to-end checks.
    pub checks: Option<Checks>,
}

/// Where the app lives, how it reloads and whom it runs as.
pub struct AppLayout {
    pub root: String,
    pub unit: String,
    pub user: String,
    pub kind: AppKind,
}

impl AppLayout {
    pub fn of(inv: &crate::inventory::Inventory) -> Self {
        Self {
            root: inv.app.root.to_string(),
            unit: inv.app.kind.unit().to_string(),
            user: inv.app.user.to_string(),
            kind: inv.app.kind,
        }
    }

    /// A script that runs `command` (shell words) in the live release
    /// with the app's environment, as the app's user, as its processes
    /// run: `exec` and `console`. `env` adds variables (`TERM`).
    pub fn in_live_release(&self, command: &str, env: &[(&'static str, String)]) -> String {
        let current = format!("{}/current", self.root);
        let mut vars = self.kind.run_env(&self.root, &current);
        vars.extend(env.iter().cloned());
        format!(
            "cd {} || {{ echo 'no live release here: deploy first' >&2; exit 1; }}\numask 007\nexec {}\n",
            quote(&current),
            with_app_env(&vars, Some(&self.user), command)
        )
    }

    /// What `console` runs without a command: the app kind's console.
    pub fn console(&self) -> String {
        format!("sh -c {}", quote(self.kind.server().console()))
    }
}

/// After `current` moved: the app server told with `verb` (reload,
/// restart), then its processes restarted onto the release.
fn after_switch(verb: &str, unit: &str) -> String {
    format!(
        "{{ systemctl {verb} {} && {RESTART_PROCESSES}; }}",
        quote(unit)
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackResult {
    pub host: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub ok: bool,
    pub detail: String,
    pub checks: Vec<CheckResult>,
    pub elapsed_ms: u64,
}

/// Makes release `to` (or each server's previous one) live on every app
/// server, under the server lock, with a graceful reload; then the checks.
pub async fn rollback<C: Connector>(
    engine: &Engine<'_, C>,
    servers: &[AppServer],
    layout: &AppLayout,
    to: Option<&str>,
    claim: &Claim,
    break_lock: bool,
) -> Vec<Result<RollbackResult, HostFailure>> {
    engine
        .fan_out(servers, |s| async move {
            let start = Instant::now();
            let transport = engine.connector.connect(&s.target).await?;
            let run = host_run(engine, &transport);
            let reload = after_switch("reload", &layout.unit);
            let outcome = run
                .lock_then(claim, break_lock, &switch_script(&layout.root, to, &reload))
                .await;
            let result = match outcome {
                Ok(out) => finish_switch(&run, s, parse_switch(&out), start).await,
                Err(e) => Err(e),
            };
            let _ = run.run(&claim.release_script(), None).await;
            transport.close().await;
            result
        })
        .await
}

async fn finish_switch<T: Transport>(
    run: &HostRun<'_, T>,
    server: &AppServer,
    switch: Switch,
    start: Instant,
) -> Result<RollbackResult, HostFailure> {
    let mut result = RollbackResult {
        host: run.host().to_string(),
        from: None,
        to: None,
        ok: false,
        detail: String::new(),
        checks: Vec::new(),
        elapsed_ms: 0,
    };
    match switch {
        Switch::Refused(why) => result.detail = why,
        Switch::ReloadFailed { from, to } => {
            result.detail = format!("release {to} is live, but the app did not reload");
            result.from = Some(from);
            result.to = Some(to);
        }
        Switch::Switched { from, to } => {
            result.from = Some(from);
            result.to = Some(to);
            result.ok = true;
            if let Some(checks) = &server.checks {
                result.checks = checks.run(run.transport, run.out, run.secrets).await?;
                if let Some(c) = result.checks.iter().find(|c| !c.passed) {
                    result.ok = false;
                    result.detail = format!(
                        "check failed at the {} hop: {}: {}",
                        c.hop, c.check, c.detail
                    );
                }
            }
        }
    }
    result.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(result)
}

/// Connects to `target`, runs `script` there as [`host_run`] does, hangs up.
pub(super) async fn run_once<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
    script: &str,
) -> Result<crate::transport::Output, HostFailure> {
    let transport = engine.connector.connect(target).await?;
    let out = host_run(engine, &transport).run(script, None).await;
    transport.close().await;
    Ok(out?)
}

/// Whether deploying `release` (the release step resolved for `target`,
/// the server that runs the release command) would run its release
/// command: a new release goes live, and the command's inputs changed
/// since the live release (or it names none). Planned as the deploy will.
pub async fn release_command_runs<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
    release: &crate::resolve::Resolved,
    plan_cx: &PlanCx,
) -> Result<bool, HostFailure> {
    let transport = engine.connector.connect(target).await?;
    let facts = host_run(engine, &transport)
        .facts("", std::slice::from_ref(release))
        .await;
    transport.close().await;
    let facts = facts?;
    Ok(release
        .step
        .plan(&facts.steps[0], plan_cx)
        .is_some_and(|change| {
            !change
                .describe()
                .contains(crate::steps::release::RELEASE_COMMAND_SKIPPED)
        }))
}

pub(super) fn host_run<'a, C: Connector>(
    engine: &'a Engine<'_, C>,
    transport: &'a C::Transport,
) -> HostRun<'a, C::Transport> {
    HostRun {
        transport,
        out: engine.out,
        secrets: engine.secrets,
        plan_cx: PlanCx {
            today: crate::plan::today(),
            rebuild: false,
        },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Release {
    pub id: String,
    pub live: bool,
    /// Its preparation finished (a rollback may go to it).
    pub ready: bool,
    /// When it was last made or made live (Unix seconds).
    pub modified: i64,
}

/// The releases on every server, newest first.
pub async fn releases<C: Connector>(
    engine: &Engine<'_, C>,
    targets: &[SshTarget],
    root: &str,
) -> Vec<Result<Vec<Release>, HostFailure>> {
    let script = format!(
        "root={}\ncur=$(basename \"$(readlink \"$root/current\")\")\ncd \"$root/releases\" 2>/dev/null || exit 0\n\
         for r in $(ls -1t); do printf 'R\\t%s\\t%s\\t%s\\t%s\\n' \"$r\" \"$(stat -c %Y \"$r\")\" \"$([ \"$r\" = \"$cur\" ] && echo live)\" \"$([ -e \"$r/{READY}\" ] && echo ready)\"; done\n",
        quote(root)
    );
    engine
        .fan_out(targets, |t| {
            let script = &script;
            async move {
                Ok(run_once(engine, t, script)
                    .await?
                    .stdout_text()
                    .lines()
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split('\t').collect();
                        (f.len() == 5 && f[0] == "R").then(|| Release {
                            id: f[1].to_string(),
                            modified: f[2].parse().unwrap_or(0),
                            live: f[3] == "live",
                            ready: f[4] == "ready",
                        })
                    })
                    .collect())
            }
        })
        .await
}

/// Runs `command` on every server at once, each line of its output handed
/// to `line` with the server's name as it comes (`logs -f`, which runs
/// until interrupted; `exec`). When `stop` completes first (Ctrl-C), every
/// connection is closed cleanly. Returns each command's exit code (None
/// when stopped).
pub async fn follow<C: Connector>(
    engine: &Engine<'_, C>,
    jobs: &[(SshTarget, String)],
    line: &(dyn Fn(&str, &str) + Send + Sync),
    stop: impl std::future::Future<Output = ()>,
) -> Vec<Result<Option<i32>, HostFailure>> {
    let stop = futures_util::FutureExt::shared(Box::pin(stop));
    futures_util::future::join_all(jobs.iter().map(|(target, command)| {
        let stop = stop.clone();
        async move {
            let transport = engine.connector.connect(target).await?;
            let host = target.name.clone();
            let secrets = engine.secrets;
            let each = |l: &str| line(&host, &secrets.redact(l));
            let code = tokio::select! {
                code = transport.follow(command, &each) => Some(code),
                () = stop => None,
            };
            transport.close().await;
            Ok(code.transpose()?)
        }
    }))
    .await
}

/// Runs `script` on `target` with this process's terminal (a console):
/// what it prints goes straight there. Returns its exit code.
pub async fn interactive<C: Connector>(
    engine: &Engine<'_, C>,
    target: &SshTarget,
    script: &str,
) -> Result<i32, HostFailure> {
    let transport = engine.connector.connect(target).await?;
    let code = transport.interactive(script).await;
    transport.close().await;
    Ok(code?)
}

/// What `status` asks of one server.
pub struct StatusJob {
    pub target: SshTarget,
    pub units: Vec<String>,
    /// App servers: where the releases are.
    pub app_root: Option<String>,
    pub checks: Option<Checks>,
    /// Web servers over HTTPS: the certificate nginx serves.
    pub certificate: Option<String>,
    /// A Galera member: its state in the cluster.
    pub cluster_member: bool,
    /// A load balancer in front of a Galera cluster: the member it sends
    /// the writes to.
    pub cluster_writer: bool,
    /// The backup server: what it must have backed up, and how recently.
    pub backup: Option<BackupDue>,
    /// The app's scheduled jobs it runs, by name.
    pub jobs: Vec<String>,
}

/// A scheduled job's timer and last run, as systemd tells them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStatus {
    pub name: String,
    /// Its timer waits for the next time.
    pub scheduled: bool,
    /// When it last started, as systemd says it; None: never.
    pub last_run: Option<String>,
    pub next_run: Option<String>,
    /// How its last run ended: `success`, `exit-code`, `signal`,
    /// `timeout`, ...; None before the first.
    pub result: Option<String>,
    /// The last run's exit status.
    pub exit_status: Option<i32>,
    /// It runs now.
    pub running: bool,
}

impl JobStatus {
    /// Scheduled, and its last run (if any) succeeded.
    pub fn ok(&self) -> bool {
        self.scheduled && self.result.as_deref().is_none_or(|r| r == "success")
    }
}

/// Prints `J\t<name>`, then `JT\t<property>=<value>` lines of its timer
/// and `JS\t...` of its service, for each job.
fn jobs_script(jobs: &[String]) -> String {
    jobs.iter()
        .map(|name| {
            let units = job_units(name);
            format!(
                "printf 'J\\t%s\\n' {n}\n\
                 systemctl show -p ActiveState -p LastTriggerUSec -p NextElapseUSecRealtime {t} 2>/dev/null | sed 's/^/JT\\t/'\n\
                 systemctl show -p ActiveState -p Result -p ExecMainStatus {s} 2>/dev/null | sed 's/^/JS\\t/'\n",
                n = quote(name),
                t = quote(&format!("{units}.timer")),
                s = quote(&format!("{units}.service")),
            )
        })
        .collect()
}

/// What the backup server must hold: a good backup of each kind no older
/// than `within_secs` (two of its intervals: one missed run is late, two
/// are a problem).
#[derive(Debug, Clone)]
pub struct BackupDue {
    pub kinds: Vec<&'static str>,
    pub within_secs: i64,
}

/// The backup server's last good backups, with their age.
#[derive(Debug, Clone, Serialize)]
pub struct BackupStatus {
    pub last: Vec<Taken>,
    pub failed: Vec<Failed>,
    /// Seconds since the last good backup of each kind, by kind.
    pub age_secs: std::collections::BTreeMap<String, i64>,
    /// Every kind backed up recently enough, the last try of none failed.
    pub fresh: bool,
}

/// A Galera member's state, as MariaDB reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterState {
    /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining, ...
    pub state: String,
    /// `wsrep_cluster_status`: Primary, or non-Primary (a minority).
    pub component: String,
    pub size: u32,
    pub ready: bool,
    /// `wsrep_desync`: taken out of flow control by hand.
    pub desync: bool,
}

impl ClusterState {
    /// It may take clients: what HAProxy's check (templates/mariadb/clustercheck.j2)
    /// asks too. A donor of a state transfer keeps serving (mariadb-backup
    /// and IST do not block it); a member desynced by hand does not.
    pub fn healthy(&self) -> bool {
        let serving = self.state == "Synced" || self.state == "Donor/Desynced";
        serving && !self.desync && self.component == "Primary" && self.ready
    }
}

/// Prints `C\tNAME\tVALUE` lines of a member's state.
const CLUSTER_STATE_SCRIPT: &str = "mariadb -N -B -e \"SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_cluster_size', 'wsrep_ready'); SHOW GLOBAL VARIABLES WHERE Variable_name = 'wsrep_desync'\" 2>/dev/null | sed 's/^/C\\t/'\n";
/// Prints `W\tMEMBER`: the member HAProxy's stick table holds.
const WRITER_SCRIPT: &str = "echo 'show table mysql' | socat stdio /run/haproxy/admin.sock 2>/dev/null | sed -n 's/.*server_key=\\([^ ]*\\).*/W\\t\\1/p'\n";

#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub unit: String,
    /// systemd's ActiveState: `active`, `failed`, `inactive`, ...
    pub active: String,
    /// Since when, as systemd says it.
    pub since: String,
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub host: String,
    pub services: Vec<ServiceState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    pub disk_free_bytes: u64,
    pub disk_used_percent: u8,
    pub pending_handlers: Vec<String>,
    /// Who holds the server lock, when a run does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    pub maintenance_page: bool,
    pub checks: Vec<CheckResult>,
    /// Web servers over HTTPS: the certificate's days left (a warning
    /// under 14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertState>,
    /// A Galera member: its state in the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterState>,
    /// A load balancer of a Galera cluster: the member taking the writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_writer: Option<String>,
    /// The backup server: its last good backup of each kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<BackupStatus>,
    /// The app's scheduled jobs this server runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobStatus>,
    /// Every service active, every check passed, nothing pending, no
    /// lock, no maintenance page, disk under 90 %, a certificate that has
    /// not expired, a Galera member Synced in the primary component, every
    /// scheduled job waiting for its time and its last run a success.
    pub healthy: bool,
}

/// The state of every server, read at once: one remote call each, then
/// the checks of the web servers and load balancers.
pub async fn status<C: Connector>(
    engine: &Engine<'_, C>,
    jobs: &[StatusJob],
) -> Vec<Result<ServerStatus, HostFailure>> {
    engine
        .fan_out(jobs, |job| async move {
            let transport = engine.connector.connect(&job.target).await?;
            let result = server_status(&host_run(engine, &transport), job).await;
            transport.close().await;
            Ok(result?)
        })
        .await
}

async fn server_status<T: Transport>(
    run: &HostRun<'_, T>,
    job: &StatusJob,
) -> Result<ServerStatus, Unreachable> {
    let units: Vec<String> = job.units.iter().map(|u| quote(u)).collect();
    let script = format!(
        "systemctl show -p Id,ActiveState,ActiveEnterTimestamp,MemoryCurrent {units} 2>/dev/null | sed 's/^/S\\t/'\n\
         df -P -B1 / | awk 'NR==2 {{ printf \"D\\t%s\\t%s\\n\", $4, $5 }}'\n\
         {release}\
         [ -s {pending} ] && sed 's/^/P\\t/' {pending}\n\
         {lock}[ -e {flag} ] && echo M\n{cert}{cluster}{writer}{backups}{jobs}true\n",
        units = units.join(" "),
        release = job
            .app_root
            .as_ref()
            .map(|r| format!(
                "printf 'L\\t%s\\n' \"$(basename \"$(readlink {})\")\"\n",
                quote(&format!("{r}/current"))
            ))
            .unwrap_or_default(),
        pending = PENDING_HANDLERS,
        lock = Claim::status_script(),
        flag = MAINTENANCE_FLAG,
        cert = job
            .certificate
            .as_deref()
            .map(certs::state_script)
            .unwrap_or_default(),
        cluster = if job.cluster_member { CLUSTER_STATE_SCRIPT } else { "" },
        writer = if job.cluster_writer { WRITER_SCRIPT } else { "" },
        backups = if job.backup.is_some() {
            backup::state_script()
        } else {
            String::new()
        },
        jobs = jobs_script(&job.jobs),
    );
    let out = run.run(&script, None).await?.stdout_text();
    let mut status = parse_status(run.host(), &out);
    if !job.cluster_member {
        status.cluster = None;
    }
    status.certificate = job
        .certificate
        .as_ref()
        .map(|_| certs::parse_state(run.host(), &out, jiff::Timestamp::now()));
    status.backups = job.backup.as_ref().map(|due| {
        let state = backup::parse_state(&out);
        let now = jiff::Timestamp::now().as_second();
        BackupStatus {
            fresh: state.fresh(&due.kinds, now, due.within_secs),
            age_secs: state
                .last
                .iter()
                .map(|t| (t.kind.clone(), now - t.time))
                .collect(),
            last: state.last,
            failed: state.failed,
        }
    });
    if let Some(checks) = &job.checks {
        status.checks = checks.run(run.transport, run.out, run.secrets).await?;
    }
    status.healthy = status.services.iter().all(|s| s.active == "active")
        && status.checks.iter().all(|c| c.passed)
        && status.pending_handlers.is_empty()
        && status.lock.is_none()
        && !status.maintenance_page
        && status.disk_used_percent < 90
        && status
            .certificate
            .as_ref()
            .is_none_or(|c| c.days_left.is_some_and(|d| d >= 0))
        && status.cluster.as_ref().is_none_or(ClusterState::healthy)
        && status.backups.as_ref().is_none_or(|b| b.fresh)
        && status.jobs.iter().all(JobStatus::ok);
    Ok(status)
}

fn parse_status(host: &str, out: &str) -> ServerStatus {
    let mut status = ServerStatus {
        host: host.to_string(),
        services: Vec::new(),
        release: None,
        disk_free_bytes: 0,
        disk_used_percent: 0,
        pending_handlers: Vec::new(),
        lock: lock::held_by(out).map(|h| h.owner),
        maintenance_page: out.lines().any(|l| l == "M"),
        checks: Vec::new(),
        certificate: None,
        cluster: Some(ClusterState::default()),
        cluster_writer: None,
        backups: None,
        jobs: Vec::new(),
        healthy: false,
    };
    for l in out.lines() {
        let Some((tag, rest)) = l.split_once('\t') else {
            continue;
        };
        match tag {
            "S" => {
                let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
                if key == "Id" {
                    status.services.push(ServiceState {
                        unit: value.trim_end_matches(".service").to_string(),
                        active: String::new(),
                        since: String::new(),
                        memory_bytes: None,
                    });
                }
                let Some(s) = status.services.last_mut() else {
                    continue;
                };
                match key {
                    "ActiveState" => s.active = value.to_string(),
                    "ActiveEnterTimestamp" => s.since = value.to_string(),
                    "MemoryCurrent" => s.memory_bytes = value.parse().ok(),
                    _ => {}
                }
            }
            "D" => {
                let mut f = rest.split('\t');
                status.disk_free_bytes = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                status.disk_used_percent = f
                    .next()
                    .and_then(|v| v.trim_end_matches('%').parse().ok())
                    .unwrap_or(100);
            }
            "L" if !rest.is_empty() => status.release = Some(rest.to_string()),
            "W" => status.cluster_writer = Some(rest.to_string()),
            "C" => {
                let (name, value) = rest.split_once('\t').unwrap_or((rest, ""));
                let c = status.cluster.get_or_insert_with(Default::default);
                match name {
                    "wsrep_local_state_comment" => c.state = value.to_string(),
                    "wsrep_cluster_status" => c.component = value.to_string(),
                    "wsrep_cluster_size" => c.size = value.parse().unwrap_or(0),
                    "wsrep_ready" => c.ready = value == "ON",
                    "wsrep_desync" => c.desync = value == "ON",
                    _ => {}
                }
            }
            "P" => status.pending_handlers.push(rest.to_string()),
            "J" => status.jobs.push(JobStatus {
                name: rest.to_string(),
                ..JobStatus::default()
            }),
            "JT" | "JS" => {
                let Some(j) = status.jobs.last_mut() else {
                    continue;
                };
                // systemd's words for a time that is not: empty, or n/a.
                let time = |v: &str| (!v.is_empty() && v != "n/a").then(|| v.to_string());
                match (tag, rest.split_once('=').unwrap_or((rest, ""))) {
                    ("JT", ("ActiveState", v)) => j.scheduled = v == "active",
                    ("JT", ("LastTriggerUSec", v)) => j.last_run = time(v),
                    ("JT", ("NextElapseUSecRealtime", v)) => j.next_run = time(v),
                    ("JS", ("ActiveState", v)) => j.running = v == "activating",
                    ("JS", ("Result", v)) => j.result = Some(v.to_string()),
                    ("JS", ("ExecMainStatus", v)) => j.exit_status = v.parse().ok(),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    // Never run: systemd says `success` of a service that has not run.
    for j in &mut status.jobs {
        if j.last_run.is_none() {
            j.result = None;
            j.exit_status = None;
        }
    }
    status
}

/// Points `current` at the newest other release and restarts the app
/// (a reload would keep the failing workers' imports). Returns the release.
pub(super) async fn roll_back_release<T: Transport>(
    run: &HostRun<'_, T>,
    root: &str,
    service: &str,
) -> Result<Option<String>, Unreachable> {
    let restart = after_switch("restart", service);
    let out = run.run(&switch_script(root, None, &restart), None).await?;
    Ok(match parse_switch(&out.stdout_text()) {
        Switch::Switched { to, .. } => Some(to),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_reports_what_it_did() {
        assert_eq!(
            parse_switch("SWITCHED\tabc\tdef\n"),
            Switch::Switched {
                from: "abc".into(),
                to: "def".into()
            }
        );
        assert!(matches!(
            parse_switch("REFUSED\tthere is no earlier release to go back to\n"),
            Switch::Refused(w) if w.contains("no earlier")
        ));
        assert!(matches!(parse_switch(""), Switch::Refused(_)));
    }

    #[test]
    fn a_named_release_must_be_ready() {
        let s = switch_script(
            "/srv/foobar",
            Some("0123456789ab"),
            "systemctl reload foobar-app",
        );
        assert!(s.contains("to=0123456789ab\n"), "{s}");
        assert!(s.contains("$to/.foobar-ready"), "{s}");
        let s = switch_script("/srv/foobar", None, "true");
        // The release live most recently before: not one never served.
        assert!(s.contains("ls -1t */.foobar-live"), "{s}");
    }

    #[test]
    fn status_output_is_read() {
        let out = "S\tId=nginx.service\nS\tActiveState=active\nS\tActiveEnterTimestamp=Thu 2026-11-26 12:00:00 UTC\nS\tMemoryCurrent=1048576\nS\t\nS\tId=foobar-app.service\nS\tActiveState=failed\nS\tActiveEnterTimestamp=\nS\tMemoryCurrent=[not set]\nD\t1000\t42%\nL\tabcdef012345\nP\trestart app\nM\n";
        let s = parse_status("web1", out);
        assert_eq!(s.services.len(), 2);
        assert_eq!(s.services[0].unit, "nginx");
        assert_eq!(s.services[0].memory_bytes, Some(1_048_576));
        assert_eq!(s.services[1].active, "failed");
        assert_eq!(s.services[1].memory_bytes, None);
        assert_eq!((s.disk_free_bytes, s.disk_used_percent), (1000, 42));
        assert_eq!(s.release.as_deref(), Some("abcdef012345"));
        assert_eq!(s.pending_handlers, ["restart app"]);
        assert!(s.maintenance_page);
        assert!(s.lock.is_none());
    }

    #[test]
    fn a_donor_serves_and_a_member_desynced_by_hand_does_not() {
        let member = |state: &str, desync: &str| {
            let out = format!(
                "C\twsrep_local_state_comment\t{state}\nC\twsrep_cluster_status\tPrimary\n\
                 C\twsrep_cluster_size\t3\nC\twsrep_ready\tON\nC\twsrep_desync\t{desync}\n"
            );
            parse_status("db1", &out).cluster.unwrap()
        };
        assert!(member("Synced", "OFF").healthy());
        // A state transfer's donor: mariadb-backup and IST keep it serving.
        assert!(member("Donor/Desynced", "OFF").healthy());
        assert!(
            !member("Donor/Desynced", "ON").healthy(),
            "desynced by hand"
        );
        assert!(!member("Joined", "OFF").healthy());
        assert!(!member("Joining", "OFF").healthy());
        assert_eq!(member("Synced", "OFF").size, 3);
    }

    /// HAProxy's check (the shell of clustercheck.j2, run against a
    /// stand-in `mariadb` printing each state) and `status` agree on which
    /// member may take clients.
    #[test]
    fn the_load_balancers_check_and_status_agree_on_every_member_state() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let check = dir.path().join("clustercheck");
        std::fs::write(
            &check,
            include_str!("../../templates/mariadb/clustercheck.j2"),
        )
        .unwrap();
        let mariadb = dir.path().join("mariadb");
        // The check's query orders the values by name: cluster status,
        // desync, local state, ready.
        std::fs::write(&mariadb, "#!/bin/sh\nprintf '%s\\n' \"$STATE\"\n").unwrap();
        std::fs::set_permissions(&mariadb, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        let mut asked = 0;
        for component in ["Primary", "non-Primary"] {
            for desync in ["OFF", "ON"] {
                for state in [
                    "Synced",
                    "Donor/Desynced",
                    "Joined",
                    "Joining",
                    "Joining: receiving State Transfer",
                ] {
                    for ready in ["ON", "OFF"] {
                        let out = std::process::Command::new("sh")
                            .arg(&check)
                            .env("PATH", &path)
                            .env("STATE", format!("{component} {desync} {state} {ready}"))
                            .output()
                            .unwrap();
                        let answer = String::from_utf8_lossy(&out.stdout).to_string();
                        let status = format!(
                            "C\twsrep_local_state_comment\t{state}\nC\twsrep_cluster_status\t{component}\n\
                             C\twsrep_cluster_size\t3\nC\twsrep_ready\t{ready}\nC\twsrep_desync\t{desync}\n"
                        );
                        let healthy = parse_status("db1", &status).cluster.unwrap().healthy();
                        assert_eq!(
                            answer.starts_with("HTTP/1.1 200 OK\r\n"),
                            healthy,
                            "{component} {desync} {state} {ready}: {answer}"
                        );
                        asked += 1;
                    }
                }
            }
        }
        assert_eq!(asked, 40);
    }

    #[test]
    fn a_jobs_last_run_is_read() {
        let out = "J\ttick\nJT\tActiveState=active\nJT\tLastTriggerUSec=Sun 2026-12-06 03:00:01 UTC\n\
                   JT\tNextElapseUSecRealtime=Mon 2026-12-07 03:00:00 UTC\nJS\tActiveState=inactive\n\
                   JS\tResult=exit-code\nJS\tExecMainStatus=2\n\
                   J\tnever\nJT\tActiveState=active\nJT\tLastTriggerUSec=n/a\nJT\tNextElapseUSecRealtime=\n\
                   JS\tActiveState=inactive\nJS\tResult=success\nJS\tExecMainStatus=0\n";
        let s = parse_status("web1", out);
        let [tick, never] = &s.jobs[..] else {
            panic!("{:?}", s.jobs)
        };
        assert_eq!(
            tick.last_run.as_deref(),
            Some("Sun 2026-12-06 03:00:01 UTC")
        );
        assert_eq!(
            (tick.result.as_deref(), tick.exit_status),
            (Some("exit-code"), Some(2))
        );
        assert!(tick.scheduled && !tick.ok(), "its last run failed");
        assert_eq!(
            (never.last_run.as_deref(), never.result.as_deref()),
            (None, None)
        );
        assert!(never.ok(), "scheduled, not run yet");
    }
}
