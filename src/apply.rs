//! Applying a plan: one remote script per change, in playbook order, then
//! each role's handlers. Files are written to a temp file beside the
//! destination, validated, and renamed into place; a config that fails its
//! whole-config check is put back as it was.

use std::time::Instant;

use serde::Serialize;

use crate::facts::{self, Facts, PENDING_HANDLERS};
use crate::inventory::Role;
use crate::lock::{self, Claim, Locked};
use crate::plan::{self, Change, MysqlChange, Planned};
use crate::playbook::{Handler, HandlerAction, RoleSteps};
use crate::progress::{Event, Reporter, StepStatus};
use crate::render::{Desired, Resolved};
use crate::secrets::Secrets;
use crate::shell::quote;
use crate::transport::{Transport, Unreachable};

/// Exit code our scripts use when a validate command rejects a file.
const VALIDATION_FAILED: i32 = 65;
/// Where previous versions of configs wait while the new one is checked;
/// outside include folders such as sites-enabled.
const BACKUP_DIR: &str = "/var/lib/foobar/backup";

/// Why a server's run stopped before it could finish.
#[derive(Debug, thiserror::Error)]
pub enum HostFailure {
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    #[error(transparent)]
    Locked(#[from] Locked),
}

impl HostFailure {
    /// The exit code when some servers stopped early: a lock held by
    /// another run outranks an unreachable server.
    pub fn exit_code(failures: &[HostFailure]) -> Option<u8> {
        if failures.iter().any(|f| matches!(f, HostFailure::Locked(_))) {
            Some(crate::cli::exit::LOCKED)
        } else if failures.is_empty() {
            None
        } else {
            Some(crate::cli::exit::UNREACHABLE)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub role: Role,
    pub step: String,
    pub status: StepStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostResult {
    pub host: String,
    pub steps: Vec<StepResult>,
    /// Why the host stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HostResult {
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
}

pub struct Applier<'a, T: Transport> {
    pub transport: &'a T,
    pub out: &'a dyn Reporter,
    pub secrets: &'a Secrets,
    /// `YYYYMMDD`, for SOA serials when re-planning.
    pub today: u32,
}

impl<T: Transport> Applier<'_, T> {
    /// Runs a script, reporting the command first (for -v).
    pub async fn run(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<crate::transport::Output, Unreachable> {
        self.out.report(Event::Command {
            host: self.transport.host().to_string(),
            command: self.secrets.redact(script),
        });
        self.transport.run(script, stdin).await
    }

    /// Gathers facts for `steps` in one call and plans them.
    pub async fn plan<'s>(
        &self,
        steps: &'s [Resolved],
    ) -> Result<(Vec<Planned<'s>>, Facts), Unreachable> {
        let out = self.run(&facts::script(steps), None).await?;
        let facts = facts::parse(&out.stdout_text());
        Ok((plan::plan(steps, &facts, self.today), facts))
    }

    /// Takes the server lock and gathers facts in the same call.
    pub async fn plan_under_lock<'s>(
        &self,
        steps: &'s [Resolved],
        claim: &Claim,
        break_lock: bool,
    ) -> Result<(Vec<Planned<'s>>, Facts), HostFailure> {
        let out = self
            .lock_then(claim, break_lock, &facts::script(steps))
            .await?;
        let facts = facts::parse(&out);
        Ok((plan::plan(steps, &facts, self.today), facts))
    }

    /// Takes the server lock, then runs `then` in the same call; returns
    /// its output. A lock left by a run of this machine that is gone (a
    /// killed run) is taken over, and said so.
    pub async fn lock_then(
        &self,
        claim: &Claim,
        break_lock: bool,
        then: &str,
    ) -> Result<String, HostFailure> {
        let out = self
            .run(&format!("{}{then}", claim.acquire_script(break_lock)), None)
            .await?;
        let Some(held) = lock::held_by(&out.stdout_text()) else {
            return Ok(out.stdout_text());
        };
        if !held.is_stale_here(claim) {
            return Err(Locked {
                host: self.transport.host().to_string(),
                owner: held.owner,
            }
            .into());
        }
        self.out.report(Event::Message {
            text: format!(
                "[{}] taking over the lock left by a run that is gone ({})",
                self.transport.host(),
                held.owner
            ),
        });
        let out = self
            .run(&format!("{}{then}", claim.acquire_script(true)), None)
            .await?;
        Ok(out.stdout_text())
    }

    /// Applies the plan role by role. Stops at the first failure; handlers
    /// notified so far stay recorded on the server for the next run.
    pub async fn apply<'s>(
        &self,
        steps: &'s [Resolved],
        mut planned: Vec<Planned<'s>>,
        roles: &[RoleSteps],
        pending: &[String],
        result: &mut HostResult,
    ) -> Result<(), Unreachable> {
        let host = self.transport.host().to_string();
        for (block, role) in roles.iter().enumerate() {
            // A block whose `when` is false for this server resolved no
            // steps; its handlers are not this server's either.
            if !planned.iter().any(|p| p.step.block == block) {
                continue;
            }
            for i in 0..planned.len() {
                if planned[i].step.block != block {
                    continue;
                }
                let start = Instant::now();
                let step = planned[i].step;
                self.out.report(Event::StepStarted {
                    host: host.clone(),
                    step: step.label.clone(),
                });
                let (status, detail) = match &planned[i].change {
                    None => (StepStatus::Ok, None),
                    Some(change) => {
                        let (script, stdin) =
                            script_for(change, &step.desired, step.notify.as_deref());
                        let out = self.run(&script, stdin.as_deref()).await?;
                        if out.success() {
                            (StepStatus::Changed, Some(change.describe()))
                        } else {
                            (StepStatus::Failed, Some(self.failure(&out)))
                        }
                    }
                };
                self.finish(result, role.role, &step.label, status, detail, start);
                if status == StepStatus::Failed {
                    return Ok(());
                }
                if matches!(planned[i].change, Some(Change::InstallPackages(_))) {
                    // Packages bring files and services of their own (nginx
                    // its default site): plan the rest again from fresh facts.
                    let (replanned, _) = self.plan(&steps[i + 1..]).await?;
                    for (slot, fresh) in planned[i + 1..].iter_mut().zip(replanned) {
                        *slot = fresh;
                    }
                }
            }
            for h in crate::plan::handlers_for(&planned, &role.handlers, role.role, pending) {
                let start = Instant::now();
                let label = format!("handler: {}", h.name);
                self.out.report(Event::StepStarted {
                    host: host.clone(),
                    step: label.clone(),
                });
                let out = self.run(&handler_script(h), None).await?;
                let (status, detail) = if out.success() {
                    (StepStatus::Changed, None)
                } else {
                    (StepStatus::Failed, Some(self.failure(&out)))
                };
                self.finish(result, role.role, &label, status, detail, start);
                if status == StepStatus::Failed {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn failure(&self, out: &crate::transport::Output) -> String {
        let why = if out.code == VALIDATION_FAILED {
            "validation failed, the previous file is kept"
        } else {
            "failed"
        };
        let err = self.secrets.redact(&out.stderr_text());
        format!("{why} (exit {}): {err}", out.code)
    }

    fn finish(
        &self,
        result: &mut HostResult,
        role: Role,
        label: &str,
        status: StepStatus,
        detail: Option<String>,
        start: Instant,
    ) {
        self.out.report(Event::StepFinished {
            host: self.transport.host().to_string(),
            step: label.to_string(),
            status,
            detail: detail.clone(),
        });
        if status == StepStatus::Failed {
            result.error = Some(format!("{label}: {}", detail.clone().unwrap_or_default()));
        }
        result.steps.push(StepResult {
            role,
            step: label.to_string(),
            status,
            detail,
            elapsed_ms: start.elapsed().as_millis() as u64,
        });
    }
}

/// Records a handler as pending on the server, in the same script as the
/// change that notifies it.
fn remember(notify: Option<&str>) -> String {
    match notify {
        Some(h) => format!(
            "mkdir -p /var/lib/foobar && {{ grep -qxF {h} {f} 2>/dev/null || echo {h} >> {f}; }}\n",
            h = quote(h),
            f = PENDING_HANDLERS
        ),
        None => String::new(),
    }
}

/// Where the last good versions of what a handler watches wait until the
/// handler has run: `<BACKUP_DIR>/<handler>/<path with / as %>`.
fn backup_dir(handler: &str) -> String {
    format!("{BACKUP_DIR}/{}", handler.replace(' ', "_"))
}

/// Keeps the current `$dest` (file or symlink; or the fact that it did not
/// exist) before it changes, unless a backup for this handler is already
/// there: the last version that the service ran with is what counts.
fn backup(notify: Option<&str>) -> String {
    match notify {
        Some(h) => format!(
            "bk={d}\nmkdir -p \"$bk\"\nb=\"$bk/$(printf %s \"$dest\" | tr / %)\"\n\
             if [ ! -e \"$b\" ] && [ ! -L \"$b\" ] && [ ! -e \"$b.absent\" ]; then\n\
             \x20 if [ -e \"$dest\" ] || [ -L \"$dest\" ]; then cp -pP \"$dest\" \"$b\"; else : > \"$b.absent\"; fi\nfi\n",
            d = quote(&backup_dir(h))
        ),
        None => String::new(),
    }
}

/// Fails unless the uploaded temp file (a shell word) is exactly what was
/// sent: a cut connection ends stdin early, and a short file must never go
/// live.
fn verify_upload(file: &str, what: &str, content: &[u8]) -> String {
    format!(
        "[ \"$(sha256sum < {file} | cut -d' ' -f1)\" = {} ] || {{ echo \"upload of {what} was incomplete\" >&2; exit 1; }}\n",
        crate::plan::sha256_hex(content)
    )
}

/// The script (and its stdin) that makes one change.
pub fn script_for(
    change: &Change,
    desired: &Desired,
    notify: Option<&str>,
) -> (String, Option<Vec<u8>>) {
    let mut s = String::from("set -e\n");
    let mut stdin = None;
    match (change, desired) {
        (Change::InstallPackages(names), _) => {
            let names: Vec<String> = names.iter().map(|n| quote(n)).collect();
            // A run that was cut off may have left apt running (wait for
            // it) or dpkg half-configured (finish it) on the server.
            s.push_str(
                "export DEBIAN_FRONTEND=noninteractive\n\
                 waited=0\n\
                 until err=$(dpkg --configure -a 2>&1); do\n\
                 \x20 case \"$err\" in *lock*) ;; *) echo \"$err\" >&2; exit 1 ;; esac\n\
                 \x20 waited=$((waited + 1)); [ $waited -lt 300 ] || { echo \"dpkg is locked by another process: $err\" >&2; exit 1; }\n\
                 \x20 sleep 1\n\
                 done\n\
                 apt_opts='-q -o DPkg::Lock::Timeout=300'\n\
                 if [ -z \"$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -60)\" ]; then apt-get $apt_opts update >&2; fi\n",
            );
            s.push_str(&format!(
                "apt-get $apt_opts install -y --no-install-recommends -o Dpkg::Options::=--force-confold {} >&2\n",
                names.join(" ")
            ));
        }
        (Change::CreateUser, Desired::User { name, home }) => s.push_str(&format!(
            "useradd --system --home-dir {} --no-create-home --shell /usr/sbin/nologin {}\n",
            quote(home),
            quote(name)
        )),
        (
            Change::Directory,
            Desired::Directory {
                path,
                owner,
                group,
                mode,
            },
        ) => s.push_str(&format!(
            "mkdir -p {p}\nchown {o}:{g} {p}\nchmod {mode:04o} {p}\n",
            p = quote(path),
            o = quote(owner),
            g = quote(group)
        )),
        (
            Change::WriteFile { content, .. },
            Desired::File {
                path,
                owner,
                group,
                mode,
                validate,
                ..
            },
        ) => {
            s.push_str(&write_file_script(
                path,
                content,
                owner,
                group,
                *mode,
                validate.as_deref(),
                notify,
            ));
            stdin = Some(content.clone());
        }
        (Change::Remove, Desired::Absent { path }) => {
            s.push_str(&format!("dest={}\n", quote(path)));
            s.push_str(&backup(notify));
            s.push_str("rm -f \"$dest\"\n");
            s.push_str(&remember(notify));
        }
        (
            Change::Deploy,
            Desired::Release {
                root,
                owner,
                id,
                archive,
                keep,
            },
        ) => {
            s.push_str(&deploy_script(root, owner, id, archive, *keep, notify));
            stdin = Some(archive.clone());
        }
        (Change::StartService { enable, start }, Desired::Service { name }) => {
            let verb = match (enable, start) {
                (true, true) => "enable --now",
                (true, false) => "enable",
                _ => "start",
            };
            s.push_str(&format!(
                "systemctl {verb} {n} >&2 || {{ journalctl -u {n} -n 20 --no-pager >&2; exit 1; }}\n",
                n = quote(name)
            ));
        }
        (Change::StopService, Desired::Stopped { name }) => {
            s.push_str(&format!("systemctl disable --now {} >&2\n", quote(name)));
        }
        (
            Change::Mysql(m),
            Desired::Mysql {
                database,
                user,
                privileges: _,
                password,
            },
        ) => {
            s.push_str("mysql --batch\n");
            stdin = Some(mysql_sql(m, database, user, password).into_bytes());
        }
        _ => unreachable!("plan pairs each change with its own kind of step"),
    }
    (s, stdin)
}

fn write_file_script(
    path: &str,
    content: &[u8],
    owner: &str,
    group: &str,
    mode: u32,
    validate: Option<&str>,
    notify: Option<&str>,
) -> String {
    let mut s = format!(
        "dest={p}\ndir=$(dirname \"$dest\")\nmkdir -p \"$dir\"\n\
         tmp=$(mktemp \"$dir/.foobar.XXXXXX\")\ntrap 'rm -f \"$tmp\"' EXIT\ntrap 'exit 1' HUP INT TERM PIPE\n\
         cat > \"$tmp\"\n{verify}chown {o}:{g} \"$tmp\"\nchmod {mode:04o} \"$tmp\"\n",
        p = quote(path),
        o = quote(owner),
        g = quote(group),
        verify = verify_upload("\"$tmp\"", "$dest", content),
    );
    match validate {
        // The command checks the new file alone, before it goes live.
        Some(v) if v.contains("%s") => {
            s.push_str(&format!(
                "if ! {} >&2; then exit {VALIDATION_FAILED}; fi\n{}{}mv -f \"$tmp\" \"$dest\"\n",
                v.replace("%s", "\"$tmp\""),
                backup(notify),
                remember(notify),
            ));
        }
        // The command checks the whole configuration (nginx -t): put the
        // file in place, check, and put the old one back if it fails.
        Some(v) => {
            s.push_str(&format!(
                "mkdir -p {BACKUP_DIR}\nprev=$(mktemp {BACKUP_DIR}/prev.XXXXXX)\nhad=0\n\
                 if [ -e \"$dest\" ]; then cp -p \"$dest\" \"$prev\"; had=1; fi\n\
                 {keep}mv -f \"$tmp\" \"$dest\"\n\
                 if ! {v} >&2; then\n  if [ $had = 1 ]; then mv -f \"$prev\" \"$dest\"; else rm -f \"$dest\"; fi\n  exit {VALIDATION_FAILED}\nfi\n\
                 rm -f \"$prev\"\n{remember}",
                keep = backup(notify),
                remember = remember(notify),
            ));
        }
        None => {
            s.push_str(&backup(notify));
            s.push_str(&remember(notify));
            s.push_str("mv -f \"$tmp\" \"$dest\"\n");
        }
    }
    if path.starts_with("/etc/systemd/") {
        // systemd reads unit files only on daemon-reload.
        s.push_str("systemctl daemon-reload\n");
    }
    s
}

fn deploy_script(
    root: &str,
    owner: &str,
    id: &str,
    archive: &[u8],
    keep: u8,
    notify: Option<&str>,
) -> String {
    format!(
        r#"root={r}
rel="$root/releases/{id}"
dest="$root/current"
mkdir -p "$root/releases"
# Leftovers of a run that was cut off.
rm -rf "$root"/releases/.incoming.*
tmp=$(mktemp -d "$root/releases/.incoming.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$tmp/.archive"
{verify}if [ -d "$rel" ]; then
  touch "$rel"
else
  mkdir "$tmp/tree"
  tar -x -C "$tmp/tree" --no-same-owner -f "$tmp/.archive"
  chown -R {o}: "$tmp/tree"
  chmod 755 "$tmp/tree"
  mv "$tmp/tree" "$rel"
fi
previous=$(readlink "$dest" || true)
{backup}{remember}ln -sfn "releases/{id}" "$root/.current.tmp"
mv -T "$root/.current.tmp" "$dest"
cd "$root/releases"
ls -1t | tail -n +{first_pruned} | while read -r old; do
  [ "$old" = {id} ] || [ "releases/$old" = "$previous" ] || rm -rf -- "$old"
done
"#,
        r = quote(root),
        o = quote(owner),
        verify = verify_upload("\"$tmp/.archive\"", "the release", archive),
        backup = backup(notify),
        remember = remember(notify),
        first_pruned = u32::from(keep) + 1,
    )
}

fn mysql_sql(m: &MysqlChange, database: &str, user: &str, password: &str) -> String {
    // Names are [A-Za-z0-9_] and the password has no quote or backslash
    // (both checked at load), so they are safe inside SQL quotes. The SQL
    // travels on stdin, never on a command line.
    let account = format!("'{user}'@'localhost'");
    let mut sql = String::new();
    if m.create_database {
        sql.push_str(&format!(
            "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        ));
    }
    if m.create_user {
        sql.push_str(&format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}';\n"
        ));
    }
    if m.set_password {
        sql.push_str(&format!(
            "ALTER USER {account} IDENTIFIED BY '{password}';\n"
        ));
    }
    if !m.grant.is_empty() {
        sql.push_str(&format!(
            "GRANT {} ON `{database}`.* TO {account};\n",
            m.grant.join(", ")
        ));
    }
    if !m.revoke.is_empty() {
        sql.push_str(&format!(
            "REVOKE {} ON `{database}`.* FROM {account};\n",
            m.revoke.join(", ")
        ));
    }
    sql
}

/// Runs a handler. When the service does not come back, what it watches
/// is put back as it was before this change (configs, the `current`
/// release), the service is started again, and the step fails with the
/// service's log lines. On success the backups are dropped.
pub fn handler_script(h: &Handler) -> String {
    let verb = match h.action {
        HandlerAction::Reload => "reload-or-restart",
        HandlerAction::Restart => "restart",
    };
    format!(
        r#"svc={s}
bk={bk}
done_pending() {{ if [ -f {f} ]; then grep -vxF {h} {f} > {f}.tmp || true; mv -f {f}.tmp {f}; fi; }}
if systemctl {verb} "$svc" >&2 && sleep 0.3 && systemctl is-active --quiet "$svc"; then
  rm -rf "$bk"
  done_pending
  exit 0
fi
echo "$svc did not come back after {verb}; its log:" >&2
journalctl -u "$svc" -n 20 --no-pager >&2
if [ -d "$bk" ]; then
  for b in "$bk"/* "$bk"/.[!.]*; do
    [ -e "$b" ] || [ -L "$b" ] || continue
    name=$(basename "$b")
    case "$name" in
      *.absent) rm -f "$(printf %s "${{name%.absent}}" | tr % /)" ;;
      *) mv -f "$b" "$(printf %s "$name" | tr % /)" ;;
    esac
  done
  rm -rf "$bk"
  systemctl daemon-reload
  if systemctl restart "$svc" >&2 && sleep 0.3 && systemctl is-active --quiet "$svc"; then
    echo "restored what changed; $svc runs again on the previous version" >&2
    done_pending
  else
    echo "restored what changed, but $svc still does not start" >&2
  fi
fi
exit 1
"#,
        s = quote(&h.service),
        h = quote(&h.name),
        bk = quote(&backup_dir(&h.name)),
        f = PENDING_HANDLERS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_travels_on_stdin_only() {
        let m = MysqlChange {
            create_database: true,
            create_user: true,
            grant: vec!["SELECT".into()],
            ..Default::default()
        };
        let d = Desired::Mysql {
            database: "foobar".into(),
            user: "app".into(),
            privileges: vec!["SELECT".into()],
            password: "Secret-Marker-123".into(),
        };
        let (script, stdin) = script_for(&Change::Mysql(m), &d, None);
        assert!(!script.contains("Secret-Marker-123"));
        let sql = String::from_utf8(stdin.unwrap()).unwrap();
        assert!(sql.contains(
            "CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY 'Secret-Marker-123';"
        ));
        assert!(sql.contains("GRANT SELECT ON `foobar`.* TO 'app'@'localhost';"));
    }

    fn file(path: &str, validate: Option<&str>, notify: Option<&str>) -> String {
        write_file_script(path, b"x\n", "root", "root", 0o644, validate, notify)
    }

    #[test]
    fn whole_config_validation_restores_the_previous_file() {
        let s = file(
            "/etc/nginx/sites-enabled/foobar.conf",
            Some("nginx -t"),
            Some("reload nginx"),
        );
        let check = s.find("if ! nginx -t").unwrap();
        assert!(s.find("mv -f \"$tmp\" \"$dest\"").unwrap() < check);
        assert!(s[check..].contains("mv -f \"$prev\" \"$dest\""));
        assert!(
            s.contains(BACKUP_DIR),
            "backups stay out of include folders"
        );
        // The handler is recorded only once the file passed its check.
        assert!(s.find("pending-handlers").unwrap() > check);
    }

    #[test]
    fn file_validation_runs_before_the_rename() {
        let s = file(
            "/etc/bind/named.conf.local",
            Some("named-checkconf %s"),
            None,
        );
        assert!(
            s.find("named-checkconf \"$tmp\"").unwrap()
                < s.find("mv -f \"$tmp\" \"$dest\"").unwrap()
        );
    }

    #[test]
    fn uploads_are_verified_before_they_go_live() {
        let s = file("/etc/x", None, None);
        let sha = crate::plan::sha256_hex(b"x\n");
        assert!(s.find(&sha).unwrap() < s.find("mv -f \"$tmp\" \"$dest\"").unwrap());
        assert!(s.contains("trap 'exit 1' HUP INT TERM PIPE"));
    }

    #[test]
    fn notified_changes_keep_the_previous_version_for_the_handler() {
        let s = file(
            "/etc/mysql/mariadb.conf.d/60-foobar.cnf",
            None,
            Some("restart mariadb"),
        );
        let keep = s.find("/var/lib/foobar/backup/restart_mariadb").unwrap();
        assert!(keep < s.find("mv -f \"$tmp\" \"$dest\"").unwrap());
        let h = handler_script(&Handler {
            name: "restart mariadb".into(),
            service: "mariadb".into(),
            action: HandlerAction::Restart,
        });
        assert!(
            h.contains("bk=/var/lib/foobar/backup/restart_mariadb"),
            "{h}"
        );
        assert!(h.contains("journalctl -u \"$svc\""));
    }

    #[test]
    fn unit_files_trigger_daemon_reload() {
        assert!(file("/etc/systemd/system/app.service", None, None).contains("daemon-reload"));
        assert!(!file("/etc/x", None, None).contains("daemon-reload"));
    }

    #[test]
    fn notified_changes_record_the_handler_on_the_server() {
        let d = Desired::Absent {
            path: "/etc/nginx/sites-enabled/default".into(),
        };
        let (s, _) = script_for(&Change::Remove, &d, Some("reload nginx"));
        assert!(
            s.contains("echo 'reload nginx' >> /var/lib/foobar/pending-handlers"),
            "{s}"
        );
    }
}
