//! `foobar provision`: load and render everything (bad input stops here,
//! before any connection), let the engine converge every server, and turn
//! its outcomes into a summary and an exit code.

use std::time::Instant;

use super::converged::{self, ConvergeArgs};
use super::Input;
use crate::checks::Checks;
use crate::cli::Global;
use crate::engine::{self, ProvisionJob};
use crate::inventory::Role;
use crate::resolve;

pub type ProvisionArgs = ConvergeArgs;

pub async fn run(g: &Global, args: ProvisionArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let input = Input::load(g)?;
    let Input {
        inv,
        pb,
        secrets,
        renderer,
    } = &input;
    let selected = g.limit(inv)?;
    let mut jobs = Vec::new();
    for server in inv.inventory.servers.0.iter().filter(|s| selected(s)) {
        jobs.push(ProvisionJob {
            target: engine::ssh_target(inv, server),
            steps: resolve::resolve(renderer, pb, inv, server, secrets)?,
            checks: Checks::resolve(renderer, pb, inv, server, secrets)?,
            replica: server.has(Role::DbReplica),
            wave: inv.inventory.wave(server),
            roll_back: None,
        });
    }
    converged::converge(g, "provision", &input, &jobs, &args, started).await
}
