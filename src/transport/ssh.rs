//! `Ssh`: the transport over one multiplexed OpenSSH connection per
//! server, with host keys always verified.

use std::path::PathBuf;
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
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
}

/// How often an idle connection asks the server whether it is there.
const KEEPALIVE: Duration = Duration::from_secs(5);

pub struct Ssh {
    name: String,
    /// The login user as the inventory names it, for messages.
    user: Option<String>,
    session: Session,
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
    fn as_root(&self, script: &str) -> openssh::Command<'_> {
        let mut cmd = match self.user.as_deref() {
            Some("root") => self.session.command("sh"),
            Some(_) => {
                let mut c = self.session.command("sudo");
                c.args(["-n", "sh"]);
                c
            }
            None => {
                let mut c = self.session.command("sh");
                c.args(["-c", AS_ROOT, "foobar"]);
                c
            }
        };
        if self.user.is_some() {
            cmd.arg("-c");
        }
        cmd.arg(format!("{SCRIPT_ENV}{script}"));
        cmd
    }

    /// The master connection gives up after ServerAliveCountMax (3)
    /// unanswered keepalives, ServerAliveInterval apart.
    fn lost(&self, e: openssh::Error) -> Unreachable {
        Unreachable {
            host: self.name.clone(),
            message: format!(
                "the SSH connection was lost (no answer within {} s, or the server closed it): {e}",
                3 * KEEPALIVE.as_secs()
            ),
            transient: true,
        }
    }

    /// Opens the master connection; every later command reuses it.
    pub async fn connect(t: &SshTarget) -> Result<Self, Unreachable> {
        let mut b = SessionBuilder::default();
        if let Some(user) = &t.user {
            b.user(user.clone());
        }
        if let Some(port) = t.port {
            b.port(port);
        }
        if let Some(config) = &t.config {
            b.config_file(config);
        }
        b.connect_timeout(t.connect_timeout)
            .server_alive_interval(KEEPALIVE)
            // A changed key is always refused; an unknown one only with
            // the explicit accept_new_host_keys setting.
            .known_hosts_check(if t.accept_new_host_keys {
                KnownHosts::Add
            } else {
                KnownHosts::Strict
            });
        if let Some(k) = &t.identity_file {
            b.keyfile(k);
        }
        if let Some(kh) = &t.known_hosts {
            b.user_known_hosts_file(kh);
        }
        let session = match b.connect_mux(&t.address).await {
            Ok(s) => s,
            Err(e) => {
                // The mux library reports only that the master failed;
                // ssh's own words (host key, refused key, timeout) come
                // from one plain attempt with the same options.
                let said = diagnose(t).await.unwrap_or_else(|| e.to_string());
                return Err(Unreachable {
                    host: t.name.clone(),
                    message: explain_connect_error(&said, t),
                    transient: !refused(&said),
                });
            }
        };
        Ok(Self {
            name: t.name.clone(),
            user: t.user.clone(),
            session,
        })
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

/// What ssh itself says when it tries to connect with `t`'s settings.
async fn diagnose(t: &SshTarget) -> Option<String> {
    let mut cmd = tokio::process::Command::new("ssh");
    let host_keys = if t.accept_new_host_keys {
        "StrictHostKeyChecking=accept-new"
    } else {
        "StrictHostKeyChecking=yes"
    };
    cmd.args([
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
        .arg("true")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(t.connect_timeout + Duration::from_secs(2), cmd.output())
        .await
        .ok()?
        .ok()?;
    let said = String::from_utf8_lossy(&out.stderr)
        .trim()
        .replace('\n', " ");
    (!said.is_empty()).then_some(said)
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
        &self.name
    }

    async fn close(self) {
        let _ = self.session.close().await;
    }

    async fn follow(
        &self,
        script: &str,
        line: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<i32, Unreachable> {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = self.as_root(&format!("exec 2>&1\n{script}"));
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = cmd.spawn().await.map_err(|e| self.lost(e))?;
        let stdout = child.stdout().take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            line(&l);
        }
        let status = child.wait().await.map_err(|e| self.lost(e))?;
        Ok(status.code().unwrap_or(-1))
    }

    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, Unreachable> {
        let lost = |e| self.lost(e);
        let mut cmd = self.as_root(script);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().await.map_err(lost)?;
        if let Some(data) = stdin {
            let mut pipe = child.stdin().take().expect("stdin is piped");
            // A script that fails early closes its stdin; its exit code
            // says what happened, so a broken pipe here is not the error.
            let _ = pipe.write_all(data).await;
            let _ = pipe.shutdown().await;
            drop(pipe);
        }
        let out = child.wait_with_output().await.map_err(lost)?;
        let out = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        };
        if sudo_needs_a_password(&out) {
            let user = self.user.as_deref().unwrap_or("the login user");
            return Err(Unreachable {
                host: self.name.clone(),
                transient: false,
                message: format!(
                    "{user} cannot run commands as root without a password; on {host} add \
                     `{name} ALL=(ALL) NOPASSWD: ALL` to /etc/sudoers.d/foobar (visudo -f), or log in as root",
                    host = self.name,
                    name = self.user.as_deref().unwrap_or("<user>"),
                ),
            });
        }
        Ok(out)
    }
}
