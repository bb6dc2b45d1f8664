//! Running scripts on a server. The engine sees only the `Connector` and
//! `Transport` traits: `ssh` implements them over OpenSSH, `fake` for
//! tests that need no server.

use std::future::Future;

#[cfg(test)]
pub mod fake;
mod ssh;

pub use ssh::{SshConnector, SshTarget};

/// What a remote script produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; -1 when the script was killed by a signal.
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// A server could not be reached (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {host}: {message}")]
pub struct Unreachable {
    pub host: String,
    pub message: String,
    /// Trying again may help (a lost or timed-out connection); not for a
    /// refused host key or login, which would fail the same way.
    pub transient: bool,
}

pub trait Transport: Send + Sync {
    /// The server's name, for messages.
    fn host(&self) -> &str;

    /// Runs `script` with `sh -c` as root (through sudo when the SSH user
    /// is not root), feeding `stdin` to it.
    fn run(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> impl Future<Output = Result<Output, Unreachable>> + Send;

    /// Runs `script` like `run`, handing each line of its output (stdout
    /// and stderr) to `line` as it comes; returns the exit code. For
    /// output that never ends (`journalctl -f`).
    fn follow(
        &self,
        script: &str,
        line: &(dyn Fn(&str) + Send + Sync),
    ) -> impl Future<Output = Result<i32, Unreachable>> + Send {
        async move {
            let out = self.run(script, None).await?;
            for l in out.stdout_text().lines().chain(out.stderr_text().lines()) {
                line(l);
            }
            Ok(out.code)
        }
    }

    /// Closes the connection.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Opens transports: the seam between the engine and the network.
pub trait Connector: Send + Sync {
    type Transport: Transport;

    fn connect(
        &self,
        target: &SshTarget,
    ) -> impl Future<Output = Result<Self::Transport, Unreachable>> + Send;
}
