//! The engine: runs servers. Per server it connects, reads facts, plans,
//! applies, runs handlers and checks, under the server lock; over servers
//! it fans out with a concurrency limit. It knows no command line: it
//! returns outcomes, and the commands turn them into output and exit codes.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;

use crate::inventory::{Loaded, Server};
use crate::progress::Reporter;
use crate::secrets::Secrets;
use crate::transport::{Connector, SshTarget, Unreachable};

pub mod app;
pub mod backup;
pub mod certs;
mod host;
pub mod lock;
mod maintenance;
mod peers;
mod pool;
mod provision;
mod restart;
mod rolling;

pub use host::HostResult;
pub use lock::{Claim, Locked};
pub use maintenance::{maintenance, MaintenanceSwitch};
pub use provision::{provision, run_checks, HostOutcome, ProvisionJob, ProvisionOptions};
pub use restart::{RestartJob, ServiceResult};
pub use rolling::{restart, Rolling};

/// sshd's default MaxStartups (10:30:100) starts refusing unauthenticated
/// connections past 10 at once: stay under it.
pub const DEFAULT_FORKS: usize = 10;

/// Why a server's run stopped before it could finish.
#[derive(Debug, thiserror::Error)]
pub enum HostFailure {
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    #[error(transparent)]
    Locked(#[from] Locked),
}

/// A server that stopped early, as reports show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostError {
    pub host: String,
    /// `unreachable` or `locked`.
    pub kind: &'static str,
    pub message: String,
}

impl From<&HostFailure> for HostError {
    fn from(f: &HostFailure) -> Self {
        Self {
            host: f.host().to_string(),
            kind: f.kind(),
            message: f.to_string(),
        }
    }
}

/// What every run shares: how to connect, where progress goes, the secrets
/// to mask, and how many servers run at once.
pub struct Engine<'a, C: Connector> {
    pub connector: &'a C,
    pub out: &'a dyn Reporter,
    pub secrets: &'a Secrets,
    pub forks: usize,
}

impl HostFailure {
    /// The server the failure is about.
    pub fn host(&self) -> &str {
        match self {
            HostFailure::Unreachable(u) => &u.host,
            HostFailure::Locked(l) => &l.host,
        }
    }

    /// A stable word for scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            HostFailure::Unreachable(_) => "unreachable",
            HostFailure::Locked(_) => "locked",
        }
    }
}

impl<C: Connector> Engine<'_, C> {
    /// Runs `run` for every item, at most `forks` at once; results come
    /// back in the items' order.
    pub(crate) async fn fan_out<I, F, Fut, T>(&self, items: I, run: F) -> Vec<T>
    where
        I: IntoIterator,
        F: FnMut(I::Item) -> Fut,
        Fut: Future<Output = T>,
    {
        futures_util::stream::iter(items)
            .map(run)
            .buffered(self.forks.max(1))
            .collect()
            .await
    }
}

/// How to reach the servers that jump through `server`.
pub fn targets_behind(inv: &Loaded, server: &Server) -> Vec<SshTarget> {
    inv.inventory
        .jumped_through(server)
        .map(|s| ssh_target(inv, s))
        .collect()
}

/// How to reach `server`, from the inventory.
pub fn ssh_target(inv: &Loaded, server: &Server) -> SshTarget {
    let ssh = &inv.inventory.ssh;
    SshTarget {
        name: server.name.to_string(),
        address: server.address.to_string(),
        port: server.ssh.port.map(|p| p.0),
        user: server.ssh.user.as_ref().map(|u| u.to_string()),
        identity_file: server
            .ssh
            .identity_file
            .as_ref()
            .map(|p| inv.local_path(&p.0)),
        known_hosts: ssh.known_hosts.as_ref().map(|p| inv.local_path(&p.0)),
        accept_new_host_keys: ssh.accept_new_host_keys,
        config: ssh.config.as_ref().map(|p| inv.local_path(&p.0)),
        connect_timeout: Duration::from_secs(ssh.connect_timeout_secs.into()),
        keep: (ssh.control_persist_secs > 0)
            .then(|| Duration::from_secs(ssh.control_persist_secs.into())),
        jump: server
            .ssh
            .proxy_jump
            .as_ref()
            .and_then(|name| inv.server(name.as_str()))
            .map(|jump| Box::new(ssh_target(inv, jump))),
    }
}

#[cfg(test)]
mod tests;
