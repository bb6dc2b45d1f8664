//! `foobar backup`: a backup taken now on the backup server (the same job
//! its timer runs), waited for, and what it took.

use clap::Args;
use serde::Serialize;

use crate::cli::{exit, outln, Global};
use crate::engine::backup::{self, Failed, Taken};
use crate::engine::{self, HostError};
use crate::progress;
use crate::secrets::Secrets;

#[derive(Debug, Args)]
pub struct BackupArgs {}

#[derive(Debug, Serialize)]
struct Report {
    host: String,
    ok: bool,
    taken: Vec<Taken>,
    failed: Vec<Failed>,
    errors: Vec<HostError>,
}

pub async fn run(g: &Global, _: BackupArgs) -> anyhow::Result<u8> {
    let inv = super::inventory(g)?;
    let server = super::backup_server(&inv)?;
    let out = progress::reporter(g.verbosity());
    let secrets = Secrets::resolve(&inv)?;
    super::warn(g, &secrets);
    let engine = super::engine(g, out.as_ref(), &secrets);
    let outcome = [backup::take(&engine, &engine::ssh_target(&inv, server)).await];
    let (found, errors, failures) = super::split(out.as_ref(), &outcome);
    let (ok, state, why) =
        found
            .into_iter()
            .next()
            .unwrap_or((false, Default::default(), String::new()));
    let report = Report {
        host: server.name.to_string(),
        ok,
        taken: state.last,
        failed: state.failed,
        errors,
    };
    if g.json {
        crate::cli::print_json("backup", &report)?;
    } else if failures.is_empty() {
        for t in &report.taken {
            outln!(
                "{}: snapshot {} ({} bytes from {})",
                t.kind,
                t.snapshot,
                t.bytes,
                t.server
            )?;
        }
        for f in &report.failed {
            outln!("{}: FAILED: {}", f.kind, f.why)?;
        }
        if !ok && !why.is_empty() {
            outln!("{why}")?;
        }
    }
    Ok(exit::of(!ok && failures.is_empty(), &failures, false))
}
