//! `foobar maintenance on|off|status`: the maintenance page by hand. nginx
//! checks the flag on every dynamic request, so no reload is needed.

use clap::{Args, ValueEnum};

use crate::cli::{exit, Global};
use crate::commands::provision::ssh_target;
use crate::commands::restart::MAINTENANCE_FLAG;
use crate::inventory::{self, Role};
use crate::shell::quote;
use crate::transport::{Ssh, Transport};

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
    let inv = inventory::load(&g.inventory)?;
    let flag = quote(MAINTENANCE_FLAG);
    let script = match args.switch {
        Switch::On => format!("mkdir -p \"$(dirname {flag})\" && touch {flag} && echo on"),
        Switch::Off => format!("rm -f {flag} && echo off"),
        Switch::Status => format!("if [ -e {flag} ]; then echo on; else echo off; fi"),
    };
    for server in inv.inventory.servers_with(Role::Web) {
        let ssh = Ssh::connect(&ssh_target(&inv, server)).await?;
        let out = ssh.run(&script, None).await?;
        ssh.close().await;
        if !out.success() {
            anyhow::bail!("{}: {}", server.name, out.stderr_text());
        }
        println!(
            "{}: maintenance page {}",
            server.name,
            out.stdout_text().trim()
        );
    }
    Ok(exit::OK)
}
