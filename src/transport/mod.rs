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

    /// Runs `script` as root with this process's standard input, output
    /// and error, on a pseudo-terminal of the server's when standard input
    /// is a terminal here (as `ssh -t`): an interactive session, which
    /// ends when the script does; returns its exit code. The script
    /// travels on the command line, not on stdin (which is the user's):
    /// it must hold no secret. A fake server's only runs it.
    fn interactive(&self, script: &str) -> impl Future<Output = Result<i32, Unreachable>> + Send {
        async move { Ok(self.run(script, None).await?.code) }
    }

    /// Runs `script` here and `sink` on `to` at once, this one's output
    /// streamed into the other's input (a backup from the backup server
    /// into the server it is restored on, through this machine, never
    /// held whole); returns both outcomes. Buffered by default, which a
    /// fake server's tests need only.
    fn pipe(
        &self,
        script: &str,
        to: &Self,
        sink: &str,
    ) -> impl Future<Output = Result<(Output, Output), Unreachable>> + Send
    where
        Self: Sized,
    {
        async move {
            let from = self.run(script, None).await?;
            let into = to.run(sink, Some(&from.stdout)).await?;
            Ok((
                Output {
                    stdout: Vec::new(),
                    ..from
                },
                into,
            ))
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
