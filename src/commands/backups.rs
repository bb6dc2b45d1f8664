//! `foobar backups`: the backups the backup server's repository holds,
//! oldest first: time, kind, server, size, id.

use clap::Args;
use serde::Serialize;

use crate::cli::{exit, outln, Global};
use crate::engine::backup::{self, Snapshot};
use crate::engine::{self, HostError};
use crate::progress;
use crate::secrets::Secrets;

#[derive(Debug, Args)]
pub struct BackupsArgs {}

#[derive(Debug, Serialize)]
struct Report {
    host: String,
    backups: Vec<Snapshot>,
    errors: Vec<HostError>,
}

pub async fn run(g: &Global, _: BackupsArgs) -> anyhow::Result<u8> {
    let inv = super::inventory(g)?;
    let server = super::backup_server(&inv)?;
    let out = progress::reporter(g.verbosity());
    let secrets = Secrets::masked();
    let engine = super::engine(g, out.as_ref(), &secrets);
    let outcome = [backup::list(&engine, &engine::ssh_target(&inv, server)).await];
    let (found, errors, failures) = super::split(out.as_ref(), &outcome);
    let (backups, unreadable) = match found.into_iter().next() {
        Some(Ok(list)) => (list, None),
        Some(Err(why)) => (Vec::new(), Some(why)),
        None => (Vec::new(), None),
    };
    let report = Report {
        host: server.name.to_string(),
        backups,
        errors,
    };
    if g.json {
        crate::cli::print_json("backups", &report)?;
    } else {
        if let Some(why) = &unreadable {
            outln!("{}: cannot read the repository: {why}", report.host)?;
        } else if report.backups.is_empty() && failures.is_empty() {
            outln!("{}: no backups yet", report.host)?;
        }
        for b in &report.backups {
            let size = b.bytes.map(|n| format!("{n} bytes")).unwrap_or_default();
            outln!(
                "{}  {:<5}  {:<12}  {:>16}  {}",
                b.time,
                b.kind,
                b.server,
                size,
                b.id
            )?;
        }
    }
    Ok(exit::of(unreadable.is_some(), &failures, false))
}
