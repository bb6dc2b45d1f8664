//! `foobar deploy`: only the app: its configuration, its wheels, a new
//! release (build, release command, switch), a graceful reload, the
//! checks; a release that fails them is replaced by the previous one. No
//! packages, no other config. A deploy with nothing new is a no-op.

use std::time::Instant;

use super::converged::{self, ConvergeArgs};
use super::Input;
use crate::checks::Checks;
use crate::cli::Global;
use crate::engine::app::AppLayout;
use crate::engine::{self, ProvisionJob};
use crate::inventory::Role;
use crate::playbook::DEPLOY_TAG;
use crate::resolve;

pub type DeployArgs = ConvergeArgs;

pub async fn run(g: &Global, args: DeployArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let input = Input::load(g)?;
    let Input {
        inv,
        pb,
        secrets,
        renderer,
    } = &input;
    let mut jobs = Vec::new();
    for server in super::servers(g, inv, Some(Role::App))? {
        jobs.push(ProvisionJob {
            target: engine::ssh_target(inv, server),
            steps: resolve::resolve_tagged(renderer, pb, inv, server, secrets, Some(DEPLOY_TAG))?,
            checks: Checks::resolve(renderer, pb, inv, server, secrets)?,
            replica: false,
            wave: inv.inventory.wave(server),
            roll_back: Some(AppLayout::of(&inv.inventory)),
        });
    }
    converged::converge(g, "deploy", &input, &jobs, &args, started, None, Vec::new()).await
}
