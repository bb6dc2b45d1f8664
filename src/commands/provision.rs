//! `foobar provision`: load and render everything (bad input stops here,
//! before any connection), let the engine converge every server, and turn
//! its outcomes into a summary and an exit code.

use std::time::Instant;

use clap::Args;

use super::converged;
use crate::checks::Checks;
use crate::cli::Global;
use crate::engine::{self, Claim, Engine, ProvisionJob, ProvisionOptions};
use crate::inventory::{self, Role};
use crate::plan;
use crate::progress;
use crate::project::Project;
use crate::render::Renderer;
use crate::resolve;
use crate::secrets::Secrets;
use crate::steps::PlanCx;
use crate::transport::SshConnector;

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Change nothing; list what would change (exit 4 when changes are pending).
    #[arg(long)]
    pub check: bool,
    /// Show a unified diff of every file that changes (secrets masked).
    #[arg(long)]
    pub diff: bool,
    /// Take the server lock even if another run holds it (a stale lock).
    #[arg(long)]
    pub break_lock: bool,
}

pub async fn run(g: &Global, args: ProvisionArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let inv = inventory::load(&g.inventory)?;
    let project = Project::discover(g.project.as_deref());
    let pb = project.playbook()?;
    let secrets = Secrets::resolve(&inv)?;
    let renderer = Renderer::new(&project);
    let selected = g.limit(&inv)?;
    let mut jobs = Vec::new();
    for server in inv.inventory.servers.0.iter() {
        if !selected(server) {
            continue;
        }
        let steps = resolve::resolve(&renderer, &pb, &inv, server, &secrets)?;
        let checks = Checks::resolve(&renderer, &pb, &inv, server, &secrets)?;
        jobs.push(ProvisionJob {
            target: engine::ssh_target(&inv, server),
            steps,
            checks,
            replica: server.has(Role::DbReplica),
            wave: inv.inventory.wave(server),
            roll_back: None,
        });
    }

    let out = progress::reporter(g.verbosity());
    let engine = Engine {
        connector: &SshConnector,
        out: out.as_ref(),
        secrets: &secrets,
        forks: g.forks,
    };
    let opts = ProvisionOptions {
        check: args.check,
        diff: args.diff,
        break_lock: args.break_lock,
        claim: Claim::new("provision")?,
        plan_cx: PlanCx {
            today: plan::today(),
        },
    };
    let results = engine::provision(&engine, &jobs, &pb.playbook.roles, &opts).await;
    converged::report(g, "provision", out.as_ref(), started, args.check, &results)
}
