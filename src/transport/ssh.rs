//! `Ssh`: the transport over one multiplexed OpenSSH connection per
//! server, with host keys always verified. A connection is kept for the
//! next run (OpenSSH's ControlPersist, as Ansible does) unless the
//! inventory says otherwise; a change that could lock foobar out is always
//! confirmed over a connection of its own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssh::{Child, OwningCommand, Session, Stdio};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Connector, Output, Transport, Unreachable};

/// How to reach one server.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub name: String,
    pub address: String,
    /// Left to the user's SSH configuration when None.
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
    /// An ssh_config file instead of `~/.ssh/config`.
    pub config: Option<PathBuf>,
    /// How long the connection is kept for the next run after its last
    /// use; None: a connection of this run's own, closed at its end.
    pub keep: Option<Duration>,
}

impl SshTarget {
    /// `user@address:port` as far as the inventory says.
    fn shown(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{user}{}{port}", self.address)
    }

    /// The same server over a connection of its own, never one kept from
    /// an earlier run: proves that a new login still gets in.
    pub fn fresh(&self) -> Self {
        Self {
            keep: None,
            ..self.clone()
        }
    }
}

/// How often an idle connection asks the server whether it is there.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// A connection of this run's own lives this long unused, so that one a
/// killed run left behind ends by itself; a run that was idle longer opens
/// another (see `Ssh::spawn`).
const OWN_IDLE: Duration = Duration::from_secs(60);
/// How long a kept master takes new runs after its login; then the next
/// run logs in afresh, its host key and configuration checked again.
const KEPT_MAX_LIFE: Duration = Duration::from_secs(15 * 60);

pub struct Ssh {
    target: SshTarget,
    master: Mutex<Master>,
}

/// An OpenSSH master connection, reached through its control socket.
struct Master {
    session: Arc<Session>,
    /// Kept for later runs; otherwise this run's own, closed at its end
    /// with the folder of its socket.
    kept: bool,
    _folder: Option<tempfile::TempDir>,
}

/// Runs its first argument as root: directly when the login user is root,
/// through `sudo -n` otherwise (the user comes from the inventory or from
/// the user's SSH configuration, so it is asked on the server).
const AS_ROOT: &str =
    r#"if [ "$(id -u)" = 0 ]; then exec sh -c "$1"; else exec sudo -n sh -c "$1"; fi"#;

/// libpam-tmpdir (os.harden) gives each login a TMPDIR of its own, which
/// the users scripts switch to (mysql, the app's) cannot write: scripts use
/// the system's temporary folder, as services do.
const SCRIPT_ENV: &str = "unset TMPDIR TMP TEMP TEMPDIR\n";

impl Ssh {
    /// `sh -c script` as root: the inventory's user decides (root, or
    /// through `sudo -n`); without one the server tells.
    fn as_root(&self, session: Arc<Session>, script: &str) -> OwningCommand<Arc<Session>> {
        let mut cmd = match self.target.user.as_deref() {
            Some("root") => session.arc_command("sh"),
            Some(_) => {
                let mut c = session.arc_command("sudo");
                c.args(["-n", "sh"]);
                c
            }
            None => {
                let mut c = session.arc_command("sh");
                c.args(["-c", AS_ROOT, "foobar"]);
                c
            }
        };
        if self.target.user.is_some() {
            cmd.arg("-c");
        }
        cmd.arg(format!("{SCRIPT_ENV}{script}"));
        cmd
    }

    /// The master connection gives up after ServerAliveCountMax (3)
    /// unanswered keepalives, ServerAliveInterval apart.
    fn lost(&self, e: openssh::Error) -> Unreachable {
        Unreachable {
            host: self.target.name.clone(),
            message: format!(
                "the SSH connection was lost (no answer within {} s, or the server closed it): {e}",
                3 * KEEPALIVE.as_secs()
            ),
            transient: true,
        }
    }

    /// Reaches the server over a kept connection when one is alive, else
    /// over a new one; every later command reuses it.
    pub async fn connect(t: &SshTarget) -> Result<Self, Unreachable> {
        Ok(Self {
            master: Mutex::new(open(t).await?),
            target: t.clone(),
        })
    }

    /// Starts `script` as root, with `io` saying which streams it gets.
    async fn spawn(
        &self,
        script: &str,
        io: impl Fn(&mut OwningCommand<Arc<Session>>),
    ) -> Result<Child<Arc<Session>>, Unreachable> {
        let session = self.master.lock().expect("not poisoned").session.clone();
        let mut cmd = self.as_root(session, script);
        io(&mut cmd);
        match cmd.spawn().await {
            Ok(child) => Ok(child),
            // The master is gone (it was idle longer than it lives, or the
            // server rebooted) or holds all the sessions sshd allows
            // (MaxSessions) for other runs: the session never opened, so
            // nothing ran, and the run goes on over a connection of its own.
            Err(_) => {
                let own = open(&self.target.fresh()).await?;
                let session = own.session.clone();
                let old = std::mem::replace(&mut *self.master.lock().expect("not poisoned"), own);
                close(old).await;
                let mut cmd = self.as_root(session, script);
                io(&mut cmd);
                cmd.spawn().await.map_err(|e| self.lost(e))
            }
        }
    }
}

/// Connects over SSH with the target's settings.
pub struct SshConnector;

impl Connector for SshConnector {
    type Transport = Ssh;

    async fn connect(&self, target: &SshTarget) -> Result<Ssh, Unreachable> {
        Ssh::connect(target).await
    }
}

/// A master for `t`: the kept one when it answers, else a new one (kept
/// when `t.keep` says so and there is a folder for it).
async fn open(t: &SshTarget) -> Result<Master, Unreachable> {
    let kept = kept_folder();
    if let (Some(keep), Some(folder)) = (t.keep, &kept) {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let socket = folder.join(kept_name(t, home.as_deref()));
        // Runs opening the same connection at once take turns, so that one
        // master is made and the others use it.
        let _turn = take_turn(socket.with_extension("lock")).await;
        let made = std::fs::symlink_metadata(&socket).and_then(|m| m.modified());
        if made.is_ok_and(outlived) {
            // No new sessions; the runs using it finish theirs.
            let _ = tokio::process::Command::new("ssh")
                .arg("-S")
                .arg(&socket)
                .args(["-O", "stop", "foobar-kept"])
                .output()
                .await;
            let _ = std::fs::remove_file(&socket);
        }
        let session = Session::resume_mux(socket.clone().into_boxed_path(), None);
        if session.check().await.is_err() {
            // A master killed without cleaning up leaves its socket.
            let _ = std::fs::remove_file(&socket);
            launch(t, &socket, keep).await?;
        }
        return Ok(Master {
            session: Arc::new(session),
            kept: true,
            _folder: None,
        });
    }
    let folder = tempfile::Builder::new()
        .prefix(".foobar-ssh")
        .tempdir_in(kept.unwrap_or_else(std::env::temp_dir))
        .map_err(|e| Unreachable {
            host: t.name.clone(),
            message: format!("cannot make a folder for the SSH control socket: {e}"),
            transient: false,
        })?;
    let socket = folder.path().join("master");
    launch(t, &socket, OWN_IDLE).await?;
    Ok(Master {
        session: Arc::new(Session::resume_mux(socket.into_boxed_path(), None)),
        kept: false,
        _folder: Some(folder),
    })
}

/// Ends a connection of this run's own; a kept one stays for the next run.
async fn close(master: Master) {
    if master.kept {
        return;
    }
    if let Ok(session) = Arc::try_unwrap(master.session) {
        let _ = session.close().await;
    }
}

/// Kept connections' sockets: `~/.cache/foobar/ssh`, the user's alone.
fn kept_folder() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let folder = PathBuf::from(std::env::var_os("HOME")?).join(".cache/foobar/ssh");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)
        .ok()?;
    let meta = std::fs::metadata(&folder).ok()?;
    // Anyone who can reach a socket runs commands as root on the server.
    (meta.uid() == unsafe { libc::geteuid() } && meta.mode() & 0o077 == 0).then_some(folder)
}

/// A kept connection's name: the server, the login and every file that
/// decides whom it trusts (the inventory's, or else the user's and the
/// system's defaults that ssh reads then), so that a changed known_hosts,
/// key or ssh_config never reuses a connection made under the old one.
fn kept_name(t: &SshTarget, home: Option<&Path>) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}\0{:?}\0{:?}\0", t.address, t.port, t.user));
    let home_file = |rel: &str| home.map(|h| h.join(rel));
    let mut files = vec![t.identity_file.clone()];
    match &t.known_hosts {
        Some(file) => files.push(Some(file.clone())),
        None => files.extend([
            home_file(".ssh/known_hosts"),
            home_file(".ssh/known_hosts2"),
        ]),
    }
    files.push(Some(PathBuf::from("/etc/ssh/ssh_known_hosts")));
    match &t.config {
        Some(file) => files.push(Some(file.clone())),
        None => files.extend([
            home_file(".ssh/config"),
            Some(PathBuf::from("/etc/ssh/ssh_config")),
        ]),
    }
    for file in files {
        h.update(format!("{file:?}\0"));
        if let Some(content) = file.as_ref().and_then(|f| std::fs::read(f).ok()) {
            h.update(content);
        }
    }
    h.update([u8::from(t.accept_new_host_keys)]);
    // Short: a socket's path has room for about 100 bytes.
    format!("{:x}", h.finalize())[..24].to_string()
}

/// True when a kept master made at `made` has served long enough: runs a
/// minute apart would otherwise keep one login (and the trust it was made
/// under) alive for ever.
fn outlived(made: std::time::SystemTime) -> bool {
    made.elapsed().is_ok_and(|age| age > KEPT_MAX_LIFE)
}

/// An exclusive lock on `path` until the file is dropped; None when the
/// file cannot be made (then runs may race to make a master, harmlessly).
async fn take_turn(path: PathBuf) -> Option<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ok()?;
        file.lock().ok()?;
        Some(file)
    })
    .await
    .ok()
    .flatten()
}

/// Starts an ssh master for `t` listening on `socket`, living `idle` after
/// its last session; ssh's own words (host key, refused key, timeout) when
/// it cannot.
async fn launch(t: &SshTarget, socket: &Path, idle: Duration) -> Result<(), Unreachable> {
    let log = socket.with_extension("log");
    let _ = std::fs::remove_file(&log);
    let mut cmd = tokio::process::Command::new("ssh");
    let host_keys = if t.accept_new_host_keys {
        "StrictHostKeyChecking=accept-new"
    } else {
        "StrictHostKeyChecking=yes"
    };
    cmd.arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(socket)
        .args(["-M", "-f", "-N"])
        .args(["-o", &format!("ControlPersist={}s", idle.as_secs().max(1))])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            host_keys,
        ])
        .args([
            "-o",
            &format!("ConnectTimeout={}", t.connect_timeout.as_secs().max(1)),
            "-o",
            &format!("ServerAliveInterval={}", KEEPALIVE.as_secs()),
        ]);
    if let Some(port) = t.port {
        cmd.args(["-p", &port.to_string()]);
    }
    if let Some(user) = &t.user {
        cmd.args(["-l", user]);
    }
    if let Some(config) = &t.config {
        cmd.arg("-F").arg(config);
    }
    if let Some(k) = &t.identity_file {
        cmd.arg("-i").arg(k).args(["-o", "IdentitiesOnly=yes"]);
    }
    if let Some(kh) = &t.known_hosts {
        cmd.arg("-o")
            .arg(format!("UserKnownHostsFile={}", kh.display()));
    }
    cmd.arg(&t.address)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    // ssh forks into the background once logged in; the parent's exit says
    // whether it got that far.
    let status =
        tokio::time::timeout(t.connect_timeout + Duration::from_secs(2), cmd.status()).await;
    let said = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .trim()
        .replace('\n', " ");
    let _ = std::fs::remove_file(&log);
    let said = match status {
        Ok(Ok(s)) if s.success() => return Ok(()),
        _ if !said.is_empty() => said,
        Ok(Ok(s)) => format!("ssh exited with {s}"),
        Ok(Err(e)) => format!("cannot run ssh: {e}"),
        Err(_) => format!("no login within {} s", t.connect_timeout.as_secs() + 2),
    };
    Err(Unreachable {
        host: t.name.clone(),
        message: explain_connect_error(&said, t),
        transient: !refused(&said),
    })
}

/// A host key or a login refused: connecting again would fail the same way.
fn refused(said: &str) -> bool {
    said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || said.contains("Host key verification failed")
        || said.contains("Permission denied")
}

fn explain_connect_error(raw: &str, t: &SshTarget) -> String {
    let raw = raw.trim();
    let hint = if raw.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || raw.contains("Host key verification failed")
    {
        format!(
            "the host key of {} is unknown or has changed; check it, then update {}",
            t.address,
            t.known_hosts
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "~/.ssh/known_hosts".into())
        )
    } else if raw.contains("Permission denied") {
        "the login was refused: check the user and identity_file (or ~/.ssh/config)".to_string()
    } else if raw.contains("timed out") || raw.contains("No route") || raw.contains("refused") {
        format!("is sshd running on {}?", t.shown())
    } else {
        "check the address, port, user and key in the inventory".into()
    };
    format!("ssh {} failed: {raw} ({hint})", t.shown())
}

/// sudo's own words when it would need a password.
fn sudo_needs_a_password(out: &Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    out.code == 1 && err.starts_with("sudo:") && err.contains("password")
}

impl Transport for Ssh {
    fn host(&self) -> &str {
        &self.target.name
    }

    async fn close(self) {
        close(self.master.into_inner().expect("not poisoned")).await;
    }

    async fn follow(
        &self,
        script: &str,
        line: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<i32, Unreachable> {
        use tokio::io::AsyncBufReadExt;
        let mut child = self
            .spawn(&format!("exec 2>&1\n{script}"), |cmd| {
                cmd.stdin(Stdio::null()).stdout(Stdio::piped());
            })
            .await?;
        let stdout = child.stdout().take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            line(&l);
        }
        let status = child.wait().await.map_err(|e| self.lost(e))?;
        Ok(status.code().unwrap_or(-1))
    }

    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, Unreachable> {
        let mut child = self
            .spawn(script, |cmd| {
                cmd.stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            })
            .await?;
        if let Some(data) = stdin {
            let mut pipe = child.stdin().take().expect("stdin is piped");
            // A script that fails early closes its stdin; its exit code
            // says what happened, so a broken pipe here is not the error.
            let _ = pipe.write_all(data).await;
            let _ = pipe.shutdown().await;
            drop(pipe);
        }
        let out = child.wait_with_output().await.map_err(|e| self.lost(e))?;
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        };
        if sudo_needs_a_password(&out) {
            let user = self.target.user.as_deref().unwrap_or("the login user");
            return Err(Unreachable {
                host: self.target.name.clone(),
                transient: false,
                message: format!(
                    "{user} cannot run commands as root without a password; on {host} add \
                     `{name} ALL=(ALL) NOPASSWD: ALL` to /etc/sudoers.d/foobar (visudo -f), or log in as root",
                    host = self.target.name,
                    name = self.target.user.as_deref().unwrap_or("<user>"),
                ),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            name: "web1".into(),
            address: "10.0.0.1".into(),
            port: None,
            user: None,
            identity_file: None,
            known_hosts: None,
            config: None,
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(5),
            keep: Some(Duration::from_secs(60)),
        }
    }

    #[test]
    fn a_kept_connection_is_retired_when_the_default_trust_files_change() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".ssh")).unwrap();
        let write = |file: &str, text: &str| {
            std::fs::write(home.path().join(".ssh").join(file), text).unwrap()
        };
        write("known_hosts", "10.0.0.1 ssh-ed25519 AAAA-old\n");
        let first = kept_name(&target(), Some(home.path()));
        assert_eq!(first, kept_name(&target(), Some(home.path())));
        // A distrusted key removed from ~/.ssh/known_hosts.
        write("known_hosts", "");
        let second = kept_name(&target(), Some(home.path()));
        assert_ne!(first, second);
        write("config", "Host *\n  Port 2222\n");
        assert_ne!(second, kept_name(&target(), Some(home.path())));
    }

    #[test]
    fn a_kept_master_serves_fifteen_minutes_at_most() {
        let now = std::time::SystemTime::now();
        assert!(!outlived(now - Duration::from_secs(14 * 60)));
        assert!(outlived(now - Duration::from_secs(16 * 60)));
    }
}
