//! `app_units`: the app's processes (`app.processes`) and scheduled jobs
//! (`app.schedule`) this server runs, each a systemd unit of its own (a
//! job: a service and its timer), and no others: a process or job gone
//! from the inventory is stopped (gracefully: SIGTERM, then its stop
//! timeout) and its units removed. A process runs the live release with
//! the app's environment: one that runs another release (after a deploy),
//! or started before the environment file last changed, is restarted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parts::sha256_hex;
use super::release::APP_ENV;
use super::{Kind, PlanCx, RenderedFile, ResolveCx, Script};
use crate::error::InputError;
use crate::roles::{job_units, process_unit, JOB_UNITS, PROCESS_UNITS};
use crate::shell::quote;

pub struct AppUnits;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The template of a process's unit: it sees `process`.
    pub process: String,
    /// The templates of a scheduled job's service and timer: they see
    /// `job`.
    pub job: String,
    pub timer: String,
}

/// Where the units go.
const UNIT_DIR: &str = "/etc/systemd/system";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The processes', then each job's service and timer.
    pub units: Vec<Unit>,
    /// `<root>/current`: the processes run the release it leads to.
    pub current: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The unit's name, its file's in UNIT_DIR.
    pub name: String,
    pub path: String,
    pub content: String,
    pub role: UnitRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitRole {
    Process,
    /// A job's service: its timer starts it.
    JobService,
    /// A job's timer, with the calendar the server's systemd checks
    /// before it is written.
    Timer { job: String, calendar: String },
}

/// What a process's unit template sees as `process`.
#[derive(Serialize)]
struct ProcessItem<'a> {
    name: &'a str,
    unit: String,
    command: &'a str,
    stop_timeout_secs: u16,
}

/// What a job's templates see as `job`.
#[derive(Serialize)]
struct JobItem<'a> {
    name: &'a str,
    service: String,
    timer: String,
    command: &'a str,
    on_calendar: &'a str,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// The processes' and jobs' unit files there are: name -> SHA-256.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The states of the processes and timers the inventory names.
    #[serde(default)]
    pub units: BTreeMap<String, UnitState>,
    /// The release folder `current` leads to.
    #[serde(default)]
    pub current: Option<String>,
    /// When the app's environment file last changed (Unix seconds).
    #[serde(default)]
    pub env_changed: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitState {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub active: bool,
    /// The folder its main process runs in: a release's.
    #[serde(default)]
    pub cwd: Option<String>,
    /// When its main process started (Unix seconds).
    #[serde(default)]
    pub started: Option<i64>,
}

/// Why a process or timer is (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    NotRunning,
    UnitChanged,
    NewRelease,
    NewEnvironment,
}

impl Why {
    /// What is done to `units` for this reason, in words.
    fn done_to(self, units: &str) -> String {
        match self {
            Why::NotRunning => format!("start {units}"),
            Why::UnitChanged => format!("restart {units} (its unit changed)"),
            Why::NewRelease => format!("restart {units} (a new release)"),
            Why::NewEnvironment => format!("restart {units} (a new environment)"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Unit files written, new or changed.
    pub write: Vec<String>,
    /// Units of what the inventory no longer has: stopped, then removed.
    pub remove: Vec<String>,
    pub enable: Vec<String>,
    /// Processes and timers (re)started.
    pub restart: Vec<(String, Why)>,
}

impl Kind for AppUnits {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let inv = &cx.inventory.inventory;
        let server = cx.ctx.server;
        let unit = |name: String, content: String, role: UnitRole| Unit {
            path: format!("{UNIT_DIR}/{name}"),
            name,
            content,
            role,
        };
        let mut units = Vec::new();
        for (name, p) in inv.processes_on(server) {
            let item = ProcessItem {
                name: name.as_str(),
                unit: process_unit(name.as_str()),
                command: p.command.as_str(),
                stop_timeout_secs: p.stop_timeout_secs.0,
            };
            let content = cx.template_with("process", &args.process, "process", &item)?;
            units.push(unit(item.unit, content, UnitRole::Process));
        }
        for job in inv.jobs_on(server) {
            let stem = job_units(job.name.as_str());
            let item = JobItem {
                name: job.name.as_str(),
                service: format!("{stem}.service"),
                timer: format!("{stem}.timer"),
                command: job.command.as_str(),
                on_calendar: job.on_calendar.as_str(),
            };
            let service = cx.template_with("job", &args.job, "job", &item)?;
            let timer = cx.template_with("timer", &args.timer, "job", &item)?;
            units.push(unit(item.service, service, UnitRole::JobService));
            units.push(unit(
                item.timer,
                timer,
                UnitRole::Timer {
                    job: item.name.to_string(),
                    calendar: item.on_calendar.to_string(),
                },
            ));
        }
        Ok(Desired {
            units,
            current: format!("{}/current", inv.app.root),
        })
    }

    fn label(d: &Desired) -> String {
        let names: Vec<&str> = d
            .units
            .iter()
            .filter(|u| u.role != UnitRole::JobService)
            .map(|u| u.name.as_str())
            .collect();
        if names.is_empty() {
            "app_units none".into()
        } else {
            format!("app_units {}", names.join(" "))
        }
    }

    /// The unit files there are (every one foobar could have written,
    /// found by their names' patterns), where `current` leads, when the
    /// environment changed; then, for the processes and timers wanted,
    /// their state, and the folder and start of each main process.
    fn fact_script(d: &Desired) -> String {
        let mut s = format!(
            "(cd {UNIT_DIR} && for f in {PROCESS_UNITS} {jobs}; do [ -f \"$f\" ] && printf 'U\\t%s\\t%s\\n' \"$f\" \"$(sha256sum < \"$f\" | cut -c1-64)\"; done)\n\
             printf 'C\\t%s\\n' \"$(readlink -f {current})\"\n\
             printf 'E\\t%s\\n' \"$(stat -c %Y {APP_ENV})\"\n",
            jobs = JOB_UNITS.join(" "),
            current = quote(&d.current),
        );
        let watched: Vec<String> = d
            .units
            .iter()
            .filter(|u| u.role != UnitRole::JobService)
            .map(|u| quote(&u.name))
            .collect();
        if !watched.is_empty() {
            s += &format!(
                r#"systemctl show --timestamp=unix -p Id -p UnitFileState -p ActiveState -p MainPID -p ExecMainStartTimestamp {} | awk -F= '
function out() {{ if (id != "") print id, (f == "" ? "-" : f), (a == "" ? "-" : a), (p == "" ? 0 : p), (t ~ /^@[0-9]+$/ ? substr(t, 2) : "-"); id = f = a = p = t = "" }}
$0 == "" {{ out(); next }}
$1 == "Id" {{ id = $2 }} $1 == "UnitFileState" {{ f = $2 }} $1 == "ActiveState" {{ a = $2 }} $1 == "MainPID" {{ p = $2 }} $1 == "ExecMainStartTimestamp" {{ t = $2 }}
END {{ out() }}' | while read -r u f a p t; do
  c=; [ "$p" -gt 0 ] && c=$(readlink "/proc/$p/cwd")
  printf 'S\t%s\t%s\t%s\t%s\t%s\n' "$u" "$f" "$a" "${{c:--}}" "$t"
done
"#,
                watched.join(" ")
            );
        }
        s
    }

    fn parse_fact(output: &str) -> Fact {
        let mut fact = Fact::default();
        for line in output.lines() {
            match line.split('\t').collect::<Vec<_>>()[..] {
                ["U", name, sha] => {
                    fact.files.insert(name.to_string(), sha.to_string());
                }
                ["C", path] if !path.is_empty() => fact.current = Some(path.to_string()),
                ["E", secs] => fact.env_changed = secs.parse().ok(),
                ["S", unit, file_state, active, cwd, started] => {
                    fact.units.insert(
                        unit.to_string(),
                        UnitState {
                            enabled: file_state == "enabled",
                            active: active == "active",
                            cwd: (cwd != "-").then(|| cwd.to_string()),
                            started: started.parse().ok(),
                        },
                    );
                }
                _ => {}
            }
        }
        fact
    }

    fn plan(d: &Desired, f: &Fact, _: &PlanCx) -> Option<Change> {
        let mut c = Change::default();
        for u in &d.units {
            let written = f
                .files
                .get(&u.name)
                .is_some_and(|sha| *sha == sha256_hex(u.content.as_bytes()));
            if !written {
                c.write.push(u.name.clone());
            }
            if u.role == UnitRole::JobService {
                continue;
            }
            let state = f.units.get(&u.name).cloned().unwrap_or_default();
            if !state.enabled {
                c.enable.push(u.name.clone());
            }
            let why = if !state.active {
                Some(Why::NotRunning)
            } else if !written {
                Some(Why::UnitChanged)
            } else if u.role != UnitRole::Process {
                None
            } else if state.cwd != f.current {
                Some(Why::NewRelease)
            } else if matches!((state.started, f.env_changed), (Some(s), Some(e)) if s < e) {
                // In the same second counts as after: a process started
                // by the run that wrote the file is not started again.
                Some(Why::NewEnvironment)
            } else {
                None
            };
            if let Some(why) = why {
                c.restart.push((u.name.clone(), why));
            }
        }
        c.remove = f
            .files
            .keys()
            .filter(|name| !d.units.iter().any(|u| u.name == **name))
            .cloned()
            .collect();
        (c != Change::default()).then_some(c)
    }

    fn describe(c: &Change) -> String {
        let mut parts = Vec::new();
        if !c.write.is_empty() {
            parts.push(format!("write {}", c.write.join(", ")));
        }
        if !c.remove.is_empty() {
            parts.push(format!("stop and remove {}", c.remove.join(", ")));
        }
        if !c.enable.is_empty() {
            parts.push(format!("enable {}", c.enable.join(", ")));
        }
        for why in [
            Why::NotRunning,
            Why::UnitChanged,
            Why::NewRelease,
            Why::NewEnvironment,
        ] {
            let units: Vec<&str> = c
                .restart
                .iter()
                .filter(|(_, w)| *w == why)
                .map(|(u, _)| u.as_str())
                .collect();
            if !units.is_empty() {
                parts.push(why.done_to(&units.join(", ")));
            }
        }
        parts.join("; ")
    }

    fn script(d: &Desired, c: &Change, _: Option<&str>) -> Script {
        let names = |units: &mut dyn Iterator<Item = &String>| {
            units.map(|u| quote(u)).collect::<Vec<_>>().join(" ")
        };
        let mut s = format!("d={UNIT_DIR}\n");
        let written = || d.units.iter().filter(|u| c.write.contains(&u.name));
        for u in written() {
            if let UnitRole::Timer { job, calendar } = &u.role {
                s += &format!(
                    "systemd-analyze calendar -- {} >/dev/null 2>&1 || {{ echo {} >&2; exit 1; }}\n",
                    quote(calendar),
                    quote(&format!(
                        "app.schedule: the on_calendar of `{job}`, `{calendar}`, is not a calendar expression this server's systemd takes (systemd-analyze calendar)"
                    ))
                );
            }
        }
        if !c.remove.is_empty() {
            // Stopped while their files are there, by their own stop
            // settings: SIGTERM, then the time they were given.
            let gone = names(&mut c.remove.iter());
            s += &format!("systemctl disable --now {gone} >&2 || true\n");
            for u in &c.remove {
                s += &format!("rm -f \"$d\"/{}\n", quote(u));
            }
        }
        for u in written() {
            let name = quote(&u.name);
            s += &format!(
                "printf '%s' {} > \"$d\"/.{name}.tmp\nmv -f \"$d\"/.{name}.tmp \"$d\"/{name}\n",
                quote(&u.content)
            );
        }
        if !c.write.is_empty() || !c.remove.is_empty() {
            s += "systemctl daemon-reload\n";
        }
        if !c.remove.is_empty() {
            s += &format!(
                "systemctl reset-failed {} >/dev/null 2>&1 || true\n",
                names(&mut c.remove.iter())
            );
        }
        if !c.enable.is_empty() {
            s += &format!(
                "systemctl enable {} >&2\n",
                names(&mut c.enable.iter())
            );
        }
        if !c.restart.is_empty() {
            let started = names(&mut c.restart.iter().map(|(u, _)| u));
            // One command: processes stop (and start) side by side, each
            // within its own stop timeout. One that does not stay up fails
            // the step, with its log.
            s += &format!(
                "systemctl restart {started} >&2 || true\nsleep 1\nbad=\n\
                 for u in {started}; do systemctl is-active --quiet \"$u\" || bad=\"$bad $u\"; done\n\
                 for u in $bad; do echo \"$u is not running; its log:\" >&2; journalctl -u \"$u\" -n 20 --no-pager >&2; done\n\
                 [ -z \"$bad\" ]\n"
            );
        }
        Script::new(s)
    }

    fn converged(d: &Desired, _: &Change, before: &Fact) -> Fact {
        Fact {
            files: d
                .units
                .iter()
                .map(|u| (u.name.clone(), sha256_hex(u.content.as_bytes())))
                .collect(),
            units: d
                .units
                .iter()
                .filter(|u| u.role != UnitRole::JobService)
                .map(|u| {
                    let state = UnitState {
                        enabled: true,
                        active: true,
                        cwd: before.current.clone(),
                        started: before.env_changed,
                    };
                    (u.name.clone(), state)
                })
                .collect(),
            current: before.current.clone(),
            env_changed: before.env_changed,
        }
    }

    fn files(d: &Desired) -> Vec<RenderedFile<'_>> {
        d.units
            .iter()
            .map(|u| RenderedFile {
                path: &u.path,
                content: u.content.as_bytes(),
                mode: 0o644,
                soa_serial: false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fact script over what systemd prints (a `systemctl` of the
    /// test's own, whose main PID is the script's shell): each unit's
    /// state, its main process's folder and start.
    #[test]
    fn the_fact_script_reads_what_systemd_says() {
        let unit = |name: &str, role: UnitRole| Unit {
            name: name.into(),
            path: format!("{UNIT_DIR}/{name}"),
            content: String::new(),
            role,
        };
        let d = Desired {
            units: vec![
                unit("foobar-app-worker.service", UnitRole::Process),
                unit("foobar-job-tick.service", UnitRole::JobService),
                unit(
                    "foobar-job-tick.timer",
                    UnitRole::Timer {
                        job: "tick".into(),
                        calendar: "daily".into(),
                    },
                ),
            ],
            current: "/nonexistent/current".into(),
        };
        // systemd prints a unit's own properties before the common ones.
        let systemctl = "systemctl() { printf 'MainPID=%s\\nExecMainStartTimestamp=@1764158400\\nId=foobar-app-worker.service\\nUnitFileState=enabled\\nActiveState=active\\n\\nId=foobar-job-tick.timer\\nUnitFileState=disabled\\nActiveState=inactive\\n' $$; }\n";
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{systemctl}{}", AppUnits::fact_script(&d)))
            .current_dir(dir.path())
            .output()
            .unwrap();
        let fact = AppUnits::parse_fact(&String::from_utf8_lossy(&out.stdout));
        let here = dir.path().canonicalize().unwrap();
        assert_eq!(
            fact.units["foobar-app-worker.service"],
            UnitState {
                enabled: true,
                active: true,
                cwd: Some(here.display().to_string()),
                started: Some(1_764_158_400),
            }
        );
        assert_eq!(
            fact.units["foobar-job-tick.timer"],
            UnitState::default(),
            "a timer has no process"
        );
        assert!(!fact.units.contains_key("foobar-job-tick.service"));
    }
}
