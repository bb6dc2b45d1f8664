//! `foobar releases`: the releases on each app server, newest first, the
//! live one marked.

use clap::Args;
use serde::Serialize;

use crate::cli::{exit, Global};
use crate::engine::app::{self, Release};
use crate::engine::{self, Engine, HostError};
use crate::inventory::{self, Role};
use crate::progress::{self, Event};
use crate::secrets::Secrets;
use crate::transport::SshConnector;

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
    let inv = inventory::load(&g.inventory)?;
    let selected = g.limit(&inv)?;
    let servers: Vec<_> = inv
        .inventory
        .servers_with(Role::App)
        .filter(|s| selected(s))
        .collect();
    let targets: Vec<_> = servers
        .iter()
        .map(|s| engine::ssh_target(&inv, s))
        .collect();
    let out = progress::reporter(g.verbosity());
    let secrets = Secrets::masked();
    let engine = Engine {
        connector: &SshConnector,
        out: out.as_ref(),
        secrets: &secrets,
        forks: g.forks,
    };
    let results = app::releases(&engine, &targets, inv.inventory.app.root.as_str()).await;
    let mut report = Report {
        servers: Vec::new(),
        errors: Vec::new(),
    };
    let mut failures = Vec::new();
    for (server, r) in servers.iter().zip(&results) {
        match r {
            Ok(releases) => report.servers.push(Server {
                host: server.name.to_string(),
                releases: releases.clone(),
            }),
            Err(e) => {
                out.report(Event::Message {
                    text: format!("error: {e}"),
                });
                report.errors.push(HostError::from(e));
                failures.push(e);
            }
        }
    }
    if g.json {
        crate::cli::print_json("releases", &report)?;
    } else {
        for s in &report.servers {
            println!("{}:", s.host);
            if s.releases.is_empty() {
                println!("  no releases yet");
            }
            for r in &s.releases {
                let when = jiff::Timestamp::from_second(r.modified)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                println!(
                    "  {} {}  {when}{}",
                    if r.live { "*" } else { " " },
                    r.id,
                    match (r.live, r.ready) {
                        (true, _) => "  (live)",
                        (false, false) => "  (incomplete)",
                        _ => "",
                    }
                );
            }
        }
    }
    Ok(exit::for_host_failures(&failures).unwrap_or(exit::OK))
}
