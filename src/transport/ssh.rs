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
use crate::shell::quote;

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
    /// The server this one is reached through (`ssh -J`), with its own
    /// settings.
    pub jump: Option<Box<SshTarget>>,
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

/// Every script starts here. libpam-tmpdir (os.harden) gives each login a
/// TMPDIR of its own, which the users scripts switch to (mysql, the app's)
/// cannot write: scripts use the system's temporary folder, as services do.
/// The umask is foobar's own, not the login's (os.harden sets 027 for
/// logins): files meant to be private get their mode explicitly.
const SCRIPT_ENV: &str = "unset TMPDIR TMP TEMP TEMPDIR\numask 022\n";

/// What travels on stdin ahead of a script's own input: the script itself,
/// so that no secret it holds shows in `ps` or sudo's log. It ends with a
/// comment, which keeps its last newline from the shell's stripping and
/// leaves its exit code alone.
fn payload(script: &str) -> Vec<u8> {
    format!("{SCRIPT_ENV}{script}\n# end of script\n").into_bytes()
}

/// The command line a script runs under: reads the script's `len` bytes
/// from stdin (GNU head reads no further) and runs them, the rest of stdin
/// left to the script.
fn bootstrap(len: usize) -> String {
    format!(r#"eval "$(head -c {len})""#)
}

impl Ssh {
    /// The words that run the script given after them as root: the
    /// inventory's user decides (root, or through `sudo -n`); without one
    /// the server tells.
    fn as_root_words(&self) -> &'static [&'static str] {
        match self.target.user.as_deref() {
            Some("root") => &["sh", "-c"],
            Some(_) => &["sudo", "-n", "sh", "-c"],
            None => &["sh", "-c", AS_ROOT, "foobar"],
        }
    }

    /// The bootstrap of a script of `len` bytes, as root.
    fn as_root(&self, session: Arc<Session>, len: usize) -> OwningCommand<Arc<Session>> {
        let words = self.as_root_words();
        let mut cmd = session.arc_command(words[0]);
        cmd.args(&words[1..]);
        cmd.arg(bootstrap(len));
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

    /// Starts `script` as root, with `io` saying which output streams it
    /// gets; the script and then `input` go to its stdin, closed after.
    async fn spawn(
        &self,
        script: &str,
        input: &[u8],
        io: impl Fn(&mut OwningCommand<Arc<Session>>),
    ) -> Result<Child<Arc<Session>>, Unreachable> {
        let (child, mut pipe) = self.spawn_open(script, io).await?;
        // A script that fails early closes its stdin; its exit code says
        // what happened, so a broken pipe here is not the error.
        let _ = pipe.write_all(input).await;
        let _ = pipe.shutdown().await;
        Ok(child)
    }

    /// Starts `script` as root, the script sent on its stdin, which stays
    /// open for the caller.
    async fn spawn_open(
        &self,
        script: &str,
        io: impl Fn(&mut OwningCommand<Arc<Session>>),
    ) -> Result<(Child<Arc<Session>>, openssh::ChildStdin), Unreachable> {
        let payload = payload(script);
        let command = |session| {
            let mut cmd = self.as_root(session, payload.len());
            cmd.stdin(Stdio::piped());
            io(&mut cmd);
            cmd
        };
        let session = self.master.lock().expect("not poisoned").session.clone();
        let mut child = match command(session).spawn().await {
            Ok(child) => child,
            // The master is gone (it was idle longer than it lives, or the
            // server rebooted) or holds all the sessions sshd allows
            // (MaxSessions) for other runs: the session never opened, so
            // nothing ran, and the run goes on over a connection of its own.
            Err(_) => {
                let own = open(&self.target.fresh()).await?;
                let session = own.session.clone();
                let old = std::mem::replace(&mut *self.master.lock().expect("not poisoned"), own);
                close(old).await;
                command(session).spawn().await.map_err(|e| self.lost(e))?
            }
        };
        let mut pipe = child.stdin().take().expect("stdin is piped");
        let _ = pipe.write_all(&payload).await;
        Ok((child, pipe))
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
        if !ours(&socket).await || session.check().await.is_err() {
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
/// Anyone who can reach a socket, or put one of theirs in its place, runs
/// commands as root on the server: every folder from the home folder down
/// must be a real folder (no symlink) that only the user (or root) can
/// write, the last one the user's alone.
fn kept_folder() -> Option<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let folder = home.join(".cache/foobar/ssh");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&folder)
        .ok()?;
    let me = unsafe { libc::geteuid() };
    let chain = [
        home.clone(),
        home.join(".cache"),
        home.join(".cache/foobar"),
    ];
    (chain.iter().all(|f| safe_folder(f, me, 0o022)) && safe_folder(&folder, me, 0o077))
        .then_some(folder)
}

/// `path` is a folder, not a symlink, owned by `me` or root, with none of
/// the `denied` mode bits.
fn safe_folder(path: &Path, me: u32, denied: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| {
        m.file_type().is_dir() && (m.uid() == me || m.uid() == 0) && m.mode() & denied == 0
    })
}

/// A kept socket is used only when it is a socket of the user's whose
/// listener runs as the user: never one another user put there.
async fn ours(socket: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let me = unsafe { libc::geteuid() };
    let file_is_ours =
        std::fs::symlink_metadata(socket).is_ok_and(|m| m.file_type().is_socket() && m.uid() == me);
    if !file_is_ours {
        return false;
    }
    match tokio::net::UnixStream::connect(socket).await {
        Ok(stream) => stream.peer_cred().is_ok_and(|c| c.uid() == me),
        Err(_) => false,
    }
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
    if let Some(jump) = &t.jump {
        h.update(kept_name(jump, home));
    }
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
    cmd.arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(socket)
        .args(["-M", "-f", "-N"])
        .args(["-o", &format!("ControlPersist={}s", idle.as_secs().max(1))])
        .args(["-o", "LogLevel=ERROR"])
        .args([
            "-o",
            &format!("ServerAliveInterval={}", KEEPALIVE.as_secs()),
        ])
        .args(login_options(t));
    if let Some(jump) = &t.jump {
        cmd.args(["-o", &format!("ProxyCommand={}", proxy_command(jump))]);
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

/// The options that decide how ssh logs in to `t` and whom it trusts.
fn login_options(t: &SshTarget) -> Vec<std::ffi::OsString> {
    let host_keys = if t.accept_new_host_keys {
        "StrictHostKeyChecking=accept-new"
    } else {
        "StrictHostKeyChecking=yes"
    };
    let mut o: Vec<std::ffi::OsString> = Vec::new();
    let mut add = |words: &[&std::ffi::OsStr]| o.extend(words.iter().map(|w| w.to_os_string()));
    let timeout = format!("ConnectTimeout={}", t.connect_timeout.as_secs().max(1));
    add(&[
        "-o".as_ref(),
        "BatchMode=yes".as_ref(),
        "-o".as_ref(),
        host_keys.as_ref(),
    ]);
    add(&["-o".as_ref(), timeout.as_ref()]);
    if let Some(port) = t.port {
        add(&["-p".as_ref(), port.to_string().as_ref()]);
    }
    if let Some(user) = &t.user {
        add(&["-l".as_ref(), user.as_ref()]);
    }
    if let Some(config) = &t.config {
        add(&["-F".as_ref(), config.as_os_str()]);
    }
    if let Some(k) = &t.identity_file {
        add(&[
            "-i".as_ref(),
            k.as_os_str(),
            "-o".as_ref(),
            "IdentitiesOnly=yes".as_ref(),
        ]);
    }
    if let Some(kh) = &t.known_hosts {
        let file = format!("UserKnownHostsFile={}", kh.display());
        add(&["-o".as_ref(), file.as_ref()]);
    }
    o
}

/// ssh's ProxyCommand reaching the target through `jump` (as `ssh -J`
/// does, but with the jump server's own key, port and trust): each word
/// quoted for the shell ssh runs it with, `%` doubled against ssh's own
/// expansion but in `%h:%p`, the target.
fn proxy_command(jump: &SshTarget) -> String {
    // ssh itself runs it with `exec`.
    let mut words: Vec<String> = vec!["ssh".into()];
    words.extend(
        login_options(jump)
            .iter()
            .map(|w| quote(&w.to_string_lossy()).replace('%', "%%")),
    );
    words.extend([
        "-W".into(),
        "%h:%p".into(),
        quote(&jump.address).replace('%', "%%"),
    ]);
    words.join(" ")
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
            .spawn(&format!("exec 2>&1\n{script}"), &[], |cmd| {
                cmd.stdout(Stdio::piped());
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

    /// OpenSSH's own client through the master's socket (the crate's
    /// sessions have no terminal), with the same login options should it
    /// have to log in afresh.
    async fn interactive(&self, script: &str) -> Result<i32, Unreachable> {
        let socket = {
            let master = self.master.lock().expect("not poisoned");
            master.session.control_socket().to_path_buf()
        };
        let remote: Vec<String> = self
            .as_root_words()
            .iter()
            .map(|w| quote(w))
            .chain([quote(&format!("{SCRIPT_ENV}{script}"))])
            .collect();
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.arg("-S")
            .arg(&socket)
            .args(["-o", "ControlMaster=no", "-o", "LogLevel=ERROR", "-t"])
            .args(login_options(&self.target));
        if let Some(jump) = &self.target.jump {
            cmd.args(["-o", &format!("ProxyCommand={}", proxy_command(jump))]);
        }
        cmd.arg(&self.target.address).arg(remote.join(" "));
        let status = cmd.status().await.map_err(|e| Unreachable {
            host: self.target.name.clone(),
            message: format!("cannot run ssh: {e}"),
            transient: false,
        })?;
        Ok(status.code().unwrap_or(-1))
    }

    async fn pipe(
        &self,
        script: &str,
        to: &Self,
        sink: &str,
    ) -> Result<(Output, Output), Unreachable> {
        let mut from = self
            .spawn(script, &[], |cmd| {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            })
            .await?;
        let (into, mut input) = to
            .spawn_open(sink, |cmd| {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            })
            .await?;
        let mut stream = from.stdout().take().expect("stdout is piped");
        // The sink may stop reading early (it failed); its exit code says so.
        let _ = tokio::io::copy(&mut stream, &mut input).await;
        let _ = input.shutdown().await;
        drop(input);
        let (from, into) = tokio::join!(from.wait_with_output(), into.wait_with_output());
        let done = |o: std::process::Output| Output {
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: o.stderr,
        };
        Ok((
            done(from.map_err(|e| self.lost(e))?),
            done(into.map_err(|e| to.lost(e))?),
        ))
    }

    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, Unreachable> {
        let child = self
            .spawn(script, stdin.unwrap_or_default(), |cmd| {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            })
            .await?;
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
            jump: None,
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
    fn a_script_travels_on_stdin_ahead_of_its_input_with_its_exit_code() {
        use std::io::Write;
        let script = "read -r line\necho \"got $line\"\numask\nexit 3";
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("umask 027; {}", bootstrap(payload(script).len())),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&payload(script)).unwrap();
        stdin.write_all(b"secret input\n").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "got secret input\n0022\n"
        );
        assert_eq!(out.status.code(), Some(3));
        assert!(!bootstrap(payload(script).len()).contains("echo"));
    }

    #[test]
    fn a_socket_folder_that_is_a_symlink_or_open_to_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let me = unsafe { libc::geteuid() };
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(safe_folder(&real, me, 0o077));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(!safe_folder(&link, me, 0o077));
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(!safe_folder(&real, me, 0o022));
    }

    #[tokio::test]
    async fn a_socket_is_ours_only_when_we_listen_on_it() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("master");
        assert!(!ours(&socket).await);
        let _listener = tokio::net::UnixListener::bind(&socket).unwrap();
        assert!(ours(&socket).await);
        std::fs::write(dir.path().join("plain"), "").unwrap();
        assert!(!ours(&dir.path().join("plain")).await);
    }

    #[test]
    fn a_jump_runs_ssh_with_the_jump_servers_own_settings() {
        let jump = SshTarget {
            name: "bastion".into(),
            address: "10.0.0.9".into(),
            port: Some(2222),
            identity_file: Some(PathBuf::from("/keys/100%/id")),
            ..target()
        };
        let command = proxy_command(&jump);
        // ssh runs a ProxyCommand with `exec` itself.
        assert!(command.starts_with("ssh -o BatchMode=yes"), "{command}");
        assert!(command.contains(" -p 2222 "), "{command}");
        assert!(command.contains("/keys/100%%/id"), "{command}");
        assert!(command.ends_with(" -W %h:%p 10.0.0.9"), "{command}");
        let behind = SshTarget {
            jump: Some(Box::new(jump)),
            ..target()
        };
        assert_ne!(kept_name(&behind, None), kept_name(&target(), None));
    }

    #[test]
    fn a_kept_master_serves_fifteen_minutes_at_most() {
        let now = std::time::SystemTime::now();
        assert!(!outlived(now - Duration::from_secs(14 * 60)));
        assert!(outlived(now - Duration::from_secs(16 * 60)));
    }
}
