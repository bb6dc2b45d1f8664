//! `foobar rollback [RELEASE]`: the previous release (or the one named)
//! live again on every app server, gracefully, then checked. A migration
//! the newer release ran is not undone.

use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::Input;
use crate::checks::Checks;
use crate::cli::{exit, outln, Global};
use crate::engine::app::{self, AppLayout, AppServer, RollbackResult};
use crate::engine::{self, Claim, HostError};
use crate::error::InputError;
use crate::inventory::Role;
use crate::progress;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The release to make live (as `foobar releases` lists it); default:
    /// the newest release before the live one.
    #[arg(value_name = "RELEASE")]
    pub release: Option<String>,
    /// Take the servers' locks even where another run holds one (a stale lock).
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    servers: Vec<RollbackResult>,
    errors: Vec<HostError>,
    elapsed_ms: u64,
}

pub async fn run(g: &Global, args: RollbackArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    if let Some(r) = &args.release {
        let ok = r.len() == 12 && r.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return Err(InputError::new(
                std::path::Path::new("RELEASE"),
                format!("`{}` is not a release: they are 12 hex digits, as `foobar releases` lists them", r.escape_debug()),
            )
            .into());
        }
    }
    let input = Input::load(g)?;
    let Input {
        inv,
        pb,
        secrets,
        renderer,
    } = &input;
    let mut servers = Vec::new();
    for server in super::servers(g, inv, Some(Role::App))? {
        servers.push(AppServer {
            target: engine::ssh_target(inv, server),
            checks: Checks::resolve(renderer, pb, inv, server, secrets)?,
        });
    }
    let layout = AppLayout::of(&inv.inventory);
    let out = progress::reporter(g.verbosity());
    let engine = super::engine(g, out.as_ref(), secrets);
    let claim = Claim::new("rollback")?;
    let results = app::rollback(
        &engine,
        &servers,
        &layout,
        args.release.as_deref(),
        &claim,
        args.break_lock,
    )
    .await;
    let (servers, errors, failures) = super::split(out.as_ref(), &results);
    let mut report = Report {
        servers,
        errors,
        elapsed_ms: 0,
    };
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    if g.json {
        crate::cli::print_json("rollback", &report)?;
    } else {
        for s in &report.servers {
            match (&s.from, &s.to, s.ok) {
                (Some(from), Some(to), true) => outln!(
                    "{}: release {to} is live again (was {from}); checks passed",
                    s.host
                )?,
                _ => outln!("{}: rollback failed: {}", s.host, s.detail)?,
            }
        }
        outln!("done in {:.1} s", report.elapsed_ms as f64 / 1000.0)?;
    }
    Ok(exit::of(
        report.servers.iter().any(|s| !s.ok),
        &failures,
        false,
    ))
}
