//! `foobar completions SHELL`: the shell's completion script. `--limit`
//! completes the servers and roles of the inventory found when the script
//! is made (`-i`, or where every command looks for one): make it again
//! after adding servers.

use clap::builder::PossibleValuesParser;
use clap::{Args, CommandFactory};

use crate::cli::{exit, Global};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(g: &Global, args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = crate::cli::placed(crate::cli::Cli::command());
    // No inventory where one is looked for: no names to offer.
    if super::inventory_file(g).is_some() {
        let inv = super::inventory(g)?;
        let servers = &inv.inventory.servers.0;
        let mut names: Vec<String> = servers.iter().map(|s| s.name.to_string()).collect();
        let mut roles: Vec<String> = servers
            .iter()
            .flat_map(|s| s.roles.iter().map(|r| r.name().to_string()))
            .collect();
        roles.sort();
        roles.dedup();
        names.extend(roles);
        names.push("all".into());
        cmd = offer(cmd, &names);
    }
    // Made whole first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "foobar", &mut script);
    let script = String::from_utf8_lossy(&script);
    if g.json {
        crate::cli::print_json(
            "completions",
            &serde_json::json!({ "shell": args.shell.to_string(), "script": script }),
        )?;
    } else {
        crate::cli::write_stdout(format_args!("{script}"))?;
    }
    Ok(exit::OK)
}

/// `cmd` with `names` as what `--limit` completes, in every command.
fn offer(cmd: clap::Command, names: &[String]) -> clap::Command {
    cmd.mut_args(|a| {
        if a.get_id() == "limit" {
            a.value_parser(PossibleValuesParser::new(names.iter().cloned()))
        } else {
            a
        }
    })
    .mut_subcommands(|sub| offer(sub, names))
}
