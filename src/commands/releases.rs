//! `foobar releases`: the releases on each app server, newest first, the
//! live one marked.

use clap::Args;
use serde::Serialize;

use crate::cli::{exit, outln, Global};
use crate::engine::app::{self, Release};
use crate::engine::{self, HostError};
use crate::inventory::Role;
use crate::progress;
use crate::secrets::Secrets;

#[derive(Debug, Args)]
pub struct ReleasesArgs {}

#[derive(Debug, Serialize)]
struct Server {
    host: String,
    releases: Vec<Release>,
}

#[derive(Debug, Serialize)]
struct Report {
    servers: Vec<Server>,
    errors: Vec<HostError>,
}

pub async fn run(g: &Global, _: ReleasesArgs) -> anyhow::Result<u8> {
    let inv = super::inventory_to_connect(g)?;
    let servers = super::servers(g, &inv, Some(Role::App))?;
    let targets: Vec<_> = servers
        .iter()
        .map(|s| engine::ssh_target(&inv, s))
        .collect();
    let out = progress::reporter(g.verbosity());
    let secrets = Secrets::masked();
    let engine = super::engine(g, out.as_ref(), &secrets);
    let results = app::releases(&engine, &targets, inv.inventory.app.root.as_str()).await;
    let (found, errors, failures) = super::split(out.as_ref(), &results);
    let report = Report {
        servers: servers
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .zip(found)
            .map(|((s, _), releases)| Server {
                host: s.name.to_string(),
                releases,
            })
            .collect(),
        errors,
    };
    if g.json {
        crate::cli::print_json("releases", &report)?;
    } else {
        for s in &report.servers {
            outln!("{}:", s.host)?;
            if s.releases.is_empty() {
                outln!("  no releases yet")?;
            }
            for r in &s.releases {
                let when = jiff::Timestamp::from_second(r.modified)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                outln!(
                    "  {} {}  {when}{}",
                    if r.live { "*" } else { " " },
                    r.id,
                    match (r.live, r.ready) {
                        (true, _) => "  (live)",
                        (false, false) => "  (incomplete)",
                        _ => "",
                    }
                )?;
            }
        }
    }
    Ok(exit::of(false, &failures, false))
}
