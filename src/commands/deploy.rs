//! `foobar deploy`: only the app: its configuration, its wheels, a new
//! release (build, release command, switch), a graceful reload, the
//! checks; a release that fails them is replaced by the previous one. No
//! packages, no other config. A deploy with nothing new is a no-op. With
//! a backup server, a new release whose release command (a migration)
//! will run is preceded by a backup, named in the output.

use std::time::Instant;

use super::converged::{self, ConvergeArgs};
use super::Input;
use crate::checks::Checks;
use crate::cli::{exit, Global};
use crate::engine::app::{self, AppLayout};
use crate::engine::{self, backup, ProvisionJob};
use crate::inventory::Role;
use crate::plan;
use crate::playbook::DEPLOY_TAG;
use crate::progress::{self, Event};
use crate::resolve;
use crate::steps::{release, PlanCx};

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub converge: ConvergeArgs,
    /// No backup before a new release's release command (a migration).
    #[arg(long)]
    pub no_backup: bool,
}

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
            behind: engine::targets_behind(inv, server),
        });
    }
    if !args.converge.check && !args.no_backup {
        if let Some(code) = backup_first(g, &input, &jobs, args.converge.rebuild).await? {
            return Ok(code);
        }
    }
    converged::converge(
        g,
        "deploy",
        &input,
        &jobs,
        &args.converge,
        started,
        None,
        Vec::new(),
    )
    .await
}

/// With a backup server and a release command, a backup before a new
/// release goes live on the server that runs the command; the exit code
/// when it fails (the deploy does not go on).
async fn backup_first(
    g: &Global,
    input: &Input,
    jobs: &[ProvisionJob],
    rebuild: bool,
) -> anyhow::Result<Option<u8>> {
    let site = &input.inv.inventory;
    let (Some(backup_server), Some(_), Some(release_server)) = (
        site.servers_with(Role::Backup).next(),
        site.app.release_command.as_ref(),
        site.release_server(),
    ) else {
        return Ok(None);
    };
    let Some(job) = jobs
        .iter()
        .find(|j| j.target.name == release_server.name.as_str())
    else {
        return Ok(None);
    };
    let Some(step) = job
        .steps
        .iter()
        .find(|s| release::id_in_label(&s.label).is_some())
    else {
        return Ok(None);
    };
    let out = progress::reporter(g.verbosity());
    let engine = super::engine(g, out.as_ref(), &input.secrets);
    let plan_cx = PlanCx {
        today: plan::today(),
        rebuild,
    };
    let runs = [app::release_command_runs(&engine, &job.target, step, &plan_cx).await];
    let (found, _, failures) = super::split(out.as_ref(), &runs);
    if !failures.is_empty() {
        return Ok(Some(exit::of(false, &failures, false)));
    }
    if found.first() != Some(&true) {
        return Ok(None);
    }
    let taken = [backup::take(&engine, &engine::ssh_target(&input.inv, backup_server)).await];
    let (found, _, failures) = super::split(out.as_ref(), &taken);
    match found.into_iter().next() {
        Some((true, state, _)) => {
            for t in state.last {
                out.report(Event::Message {
                    text: format!(
                        "backup before the release command: {} snapshot {} ({} bytes from {})",
                        t.kind, t.snapshot, t.bytes, t.server
                    ),
                });
            }
            Ok(None)
        }
        Some((false, _, why)) => {
            out.report(Event::Message {
                text: format!(
                    "error: the backup before the release command failed, so the deploy stops (--no-backup deploys without one): {why}"
                ),
            });
            Ok(Some(exit::FAILED))
        }
        None => Ok(Some(exit::of(false, &failures, false))),
    }
}
