//! `foobar deploy`: only the app: its configuration, its wheels, a new
//! release (build, release command, switch), a graceful reload, the
//! checks; a release that fails them is replaced by the previous one. No
//! packages, no other config. A deploy with nothing new is a no-op.

use std::time::Instant;

use clap::Args;

use super::converged;
use crate::checks::Checks;
use crate::cli::Global;
use crate::engine::app::AppLayout;
use crate::engine::{self, Claim, Engine, ProvisionJob, ProvisionOptions};
use crate::inventory::{self, Role};
use crate::plan;
use crate::playbook::DEPLOY_TAG;
use crate::progress;
use crate::project::Project;
use crate::render::Renderer;
use crate::resolve;
use crate::secrets::Secrets;
use crate::steps::PlanCx;
use crate::transport::SshConnector;

#[derive(Debug, Args)]
pub struct DeployArgs {
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

pub async fn run(g: &Global, args: DeployArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let inv = inventory::load(&g.inventory)?;
    let project = Project::discover(g.project.as_deref());
    let pb = project.playbook()?;
    let secrets = Secrets::resolve(&inv)?;
    let renderer = Renderer::new(&project);
    let selected = g.limit(&inv)?;
    let app = &inv.inventory.app;
    let mut jobs = Vec::new();
    for server in inv.inventory.servers_with(Role::App) {
        if !selected(server) {
            continue;
        }
        jobs.push(ProvisionJob {
            target: engine::ssh_target(&inv, server),
            steps: resolve::resolve_tagged(
                &renderer,
                &pb,
                &inv,
                server,
                &secrets,
                Some(DEPLOY_TAG),
            )?,
            checks: Checks::resolve(&renderer, &pb, &inv, server, &secrets)?,
            replica: false,
            wave: inv.inventory.wave(server),
            roll_back: Some(AppLayout {
                root: app.root.to_string(),
                unit: app.kind.unit().to_string(),
            }),
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
        claim: Claim::new("deploy")?,
        plan_cx: PlanCx {
            today: plan::today(),
        },
    };
    let results = engine::provision(&engine, &jobs, &pb.playbook.roles, &opts).await;
    converged::report(g, "deploy", out.as_ref(), started, args.check, &results)
}
