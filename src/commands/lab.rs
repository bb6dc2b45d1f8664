//! `foobar lab`: up, down, status, ssh, reset.

use std::os::unix::process::CommandExt;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::cli::{exit, outln, Global};
use crate::error::InputError;
use crate::lab::Lab;
use crate::progress;

#[derive(Debug, Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: LabAction,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Boot every lab server of the inventory (builds the image once).
    Up,
    /// Stop every lab server and remove bridge, namespaces and mounts.
    Down {
        /// Also delete the base image, the package cache and the lab key.
        #[arg(long)]
        purge: bool,
    },
    /// List lab servers, their addresses and state.
    Status,
    /// Open a shell on a lab server, or run one command there.
    Ssh {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Bring one lab server back to pristine.
    Reset { name: String },
    /// Pull the plug on one lab server: every process killed at once, its
    /// disk left as it was (a power cut); `up` boots it again.
    Kill { name: String },
}

pub fn run(g: &Global, args: LabArgs) -> anyhow::Result<u8> {
    let inv = super::inventory(g)?;
    // An inventory without a lab section is the wrong input for `lab`.
    let lab = Lab::from_inventory(&inv).map_err(|e| InputError::new(&inv.path, e.to_string()))?;
    let out = progress::reporter(g.verbosity());
    let command = match args.action {
        LabAction::Up => {
            lab.up(out.as_ref())?;
            "lab up"
        }
        LabAction::Down { purge } => {
            lab.down(purge, out.as_ref())?;
            "lab down"
        }
        LabAction::Status => {
            if !g.json {
                for s in lab.status() {
                    outln!("{:<12} {:<15} {}", s.name, s.address.to_string(), s.state)?;
                }
            }
            "lab status"
        }
        LabAction::Ssh { name, command } => {
            let err = lab.ssh_command(&name, &command)?.exec();
            return Err(err).context("running ssh");
        }
        LabAction::Reset { name } => {
            lab.reset(&name, out.as_ref())?;
            "lab reset"
        }
        LabAction::Kill { name } => {
            lab.kill(&name)?;
            "lab kill"
        }
    };
    // Every lab command reports the servers as they are afterwards.
    if g.json {
        crate::cli::print_json(command, &serde_json::json!({ "servers": lab.status() }))?;
    }
    Ok(exit::OK)
}
