//! `foobar maintenance on|off|status`: the maintenance page by hand. nginx
//! checks the flag on every dynamic request, so no reload is needed.

use clap::{Args, ValueEnum};

use crate::cli::{exit, outln, Global};
use crate::engine::{self, MaintenanceSwitch};
use crate::inventory::Role;
use crate::progress;
use crate::secrets::Secrets;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
    Status,
}

#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    #[arg(value_enum)]
    pub switch: Switch,
}

pub async fn run(g: &Global, args: MaintenanceArgs) -> anyhow::Result<u8> {
    let inv = super::inventory_to_connect(g)?;
    let servers = super::servers(g, &inv, Some(Role::Web))?;
    let targets: Vec<_> = servers
        .iter()
        .map(|s| engine::ssh_target(&inv, s))
        .collect();
    let out = progress::reporter(g.verbosity());
    let secrets = Secrets::masked();
    let engine = super::engine(g, out.as_ref(), &secrets);
    let switch = match args.switch {
        Switch::On => MaintenanceSwitch::On,
        Switch::Off => MaintenanceSwitch::Off,
        Switch::Status => MaintenanceSwitch::Status,
    };
    let mut rows = Vec::new();
    for (server, result) in servers
        .iter()
        .zip(engine::maintenance(&engine, &targets, switch).await)
    {
        let on = result?;
        if !g.json {
            outln!(
                "{}: maintenance page {}",
                server.name,
                if on { "on" } else { "off" }
            )?;
        }
        rows.push(serde_json::json!({ "server": server.name.as_str(), "on": on }));
    }
    if g.json {
        crate::cli::print_json("maintenance", &serde_json::json!({ "servers": rows }))?;
    }
    Ok(exit::OK)
}
