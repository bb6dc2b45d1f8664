//! A transport for tests that need no server: every script is recorded,
//! and a responder written by the test answers it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{Connector, Output, SshTarget, Transport, Unreachable};

type Responder = dyn Fn(&str, Option<&[u8]>) -> Output + Send + Sync;

/// One pretend server. Clones share the record of scripts.
#[derive(Clone)]
pub struct FakeServer {
    name: String,
    scripts: Arc<Mutex<Vec<String>>>,
    responder: Arc<Responder>,
    /// The run with this number (1 = the first) loses the connection
    /// instead of running; 0 for never.
    lost_at: Arc<AtomicUsize>,
}

impl FakeServer {
    /// A server named `name` whose answers come from `responder`.
    pub fn new(
        name: &str,
        responder: impl Fn(&str, Option<&[u8]>) -> Output + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.to_string(),
            scripts: Arc::default(),
            responder: Arc::new(responder),
            lost_at: Arc::default(),
        }
    }

    /// The `n`th run from now on (1 = the next) finds the connection gone.
    pub fn lose_connection_at(&self, n: usize) {
        let runs = self.scripts().len();
        self.lost_at.store(runs + n, Ordering::SeqCst);
    }

    /// Every script run so far, in order.
    pub fn scripts(&self) -> Vec<String> {
        self.scripts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// An answer with exit code 0 and `stdout`.
pub fn ok(stdout: &str) -> Output {
    Output {
        code: 0,
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
    }
}

/// An answer with exit `code` and `stderr`.
pub fn failed(code: i32, stderr: &str) -> Output {
    Output {
        code,
        stdout: Vec::new(),
        stderr: stderr.as_bytes().to_vec(),
    }
}

impl Transport for FakeServer {
    fn host(&self) -> &str {
        &self.name
    }

    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<Output, Unreachable> {
        let mut scripts = self.scripts.lock().unwrap_or_else(|p| p.into_inner());
        if scripts.len() + 1 == self.lost_at.load(Ordering::SeqCst) {
            // Counted as a run, never answered.
            scripts.push("(lost)".into());
            return Err(Unreachable {
                host: self.name.clone(),
                message: "the SSH connection was lost".into(),
                transient: true,
            });
        }
        scripts.push(script.to_string());
        drop(scripts);
        Ok((self.responder)(script, stdin))
    }

    async fn close(self) {}
}

/// Connects to the fake servers by name; any other name is unreachable.
pub struct FakeConnector(pub Vec<FakeServer>);

impl Connector for FakeConnector {
    type Transport = FakeServer;

    async fn connect(&self, target: &SshTarget) -> Result<FakeServer, Unreachable> {
        self.0
            .iter()
            .find(|s| s.name == target.name)
            .cloned()
            .ok_or_else(|| Unreachable {
                host: target.name.clone(),
                message: "no such fake server".into(),
                transient: false,
            })
    }
}
