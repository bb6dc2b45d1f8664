//! Resolving the playbook for one server: the role blocks that apply to
//! it, every step rendered and checked by its kind. Everything happens
//! here, locally, before any connection; a mistake is bad input.

use crate::error::InputError;
use crate::inventory::{Loaded, Server};
use crate::playbook;
use crate::playbook::Scope;
use crate::render::{Context, Renderer};
use crate::secrets::Secrets;
use crate::steps::{ResolveCx, Step};

/// One step of the playbook, resolved for one server.
#[derive(Debug)]
pub struct Resolved {
    pub role: Scope,
    /// Index of the playbook's role block the step comes from.
    pub block: usize,
    /// Short description for progress lines, e.g. `template /etc/nginx/...`.
    pub label: String,
    pub notify: Option<String>,
    pub step: Box<dyn Step>,
}

/// Renders the playbook's steps for one server: only the roles it has.
pub fn resolve(
    renderer: &Renderer,
    playbook: &playbook::Loaded,
    inv: &Loaded,
    server: &Server,
    secrets: &Secrets,
) -> Result<Vec<Resolved>, InputError> {
    resolve_tagged(renderer, playbook, inv, server, secrets, None)
}

/// The same, for the blocks that carry `tag` only (all when None).
pub fn resolve_tagged(
    renderer: &Renderer,
    playbook: &playbook::Loaded,
    inv: &Loaded,
    server: &Server,
    secrets: &Secrets,
    tag: Option<&str>,
) -> Result<Vec<Resolved>, InputError> {
    let ctx = Context::new(&inv.inventory, server, secrets);
    let mut out = Vec::new();
    for (block, role) in playbook.playbook.roles.iter().enumerate() {
        let tagged = tag.is_none_or(|t| role.tags.iter().any(|have| have == t));
        if !tagged
            || !role.role.covers(|r| server.has(r))
            || !block_applies(renderer, playbook, block, &ctx)?
        {
            continue;
        }
        for (i, playbook::StepEntry(args)) in role.steps.iter().enumerate() {
            let cx = ResolveCx {
                renderer,
                ctx: &ctx,
                playbook: &playbook.document,
                inventory: inv,
                secrets,
                step: playbook.step_key(block, i),
            };
            let step = args.resolve(&cx)?;
            let seen = |r: &Resolved| r.step.kind() == step.kind() && r.label == step.label();
            if step.once_per_server() && out.iter().any(seen) {
                continue;
            }
            out.push(Resolved {
                role: role.role,
                block,
                label: step.label(),
                notify: args.notify().map(str::to_string),
                step,
            });
        }
    }
    Ok(out)
}

/// Whether role block `block` applies, by its `when` expression.
pub fn block_applies(
    renderer: &Renderer,
    playbook: &playbook::Loaded,
    block: usize,
    ctx: &Context,
) -> Result<bool, InputError> {
    let Some(expr) = &playbook.playbook.roles[block].when else {
        return Ok(true);
    };
    renderer.condition(expr, ctx).map_err(|why| {
        playbook
            .document
            .error_at(&format!("roles[{block}].when"), format!("when: {why}"))
    })
}
