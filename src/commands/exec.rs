//! `foobar exec [--role ROLE] -- COMMAND...`: a command in the app's live
//! release on its servers (the app servers, or those of `--role`,
//! narrowed by `-l`), as the app's processes run: its user, its
//! environment. Each line of output comes as it comes, prefixed with its
//! server's name; the exit code is the worst of the servers'.

use std::sync::{Mutex, OnceLock};

use clap::Args;
use serde::Serialize;

use crate::cli::{exit, outln, Global};
use crate::engine::app::{self, AppLayout};
use crate::engine::{self, HostError};
use crate::error::InputError;
use crate::inventory::Role;
use crate::progress;
use crate::secrets::Secrets;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The servers with this role, which must run the app [default: app].
    #[arg(long, value_name = "ROLE", value_parser = clap::builder::PossibleValuesParser::new(Role::ALL.iter().map(|r| r.name())))]
    pub role: Option<String>,
    /// The command and its arguments, after `--`; one argument holding
    /// spaces is a line of shell (`sh -c`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct ServerRun {
    host: String,
    /// None: interrupted before it ended.
    exit_code: Option<i32>,
    /// Its standard output and error, as they came, secrets masked.
    output: String,
}

#[derive(Debug, Serialize)]
struct Report {
    servers: Vec<ServerRun>,
    errors: Vec<HostError>,
}

/// A command cut off by Ctrl-C, as a shell says it (128 + SIGINT).
const INTERRUPTED: u8 = 130;

pub async fn run(g: &Global, args: ExecArgs) -> anyhow::Result<u8> {
    let inv = super::inventory_to_connect(g)?;
    let role = args
        .role
        .as_deref()
        .and_then(Role::parse)
        .unwrap_or(Role::App);
    let servers = super::servers(g, &inv, Some(role))?;
    if servers.is_empty() {
        return Err(InputError::new(
            &inv.path,
            format!(
                "no server {}has the {} role: nothing to run the command on",
                if g.limit.is_empty() {
                    ""
                } else {
                    "that -l picks "
                },
                role.name()
            ),
        )
        .into());
    }
    if let Some(s) = servers.iter().find(|s| !s.has(Role::App)) {
        return Err(InputError::new(
            &inv.path,
            format!(
                "server `{}` does not run the app: exec runs in the app's live release, on app servers",
                s.name
            ),
        )
        .into());
    }
    let script =
        AppLayout::of(&inv.inventory).in_live_release(&super::command_words(&args.command), &[]);
    let jobs: Vec<_> = servers
        .iter()
        .map(|s| (engine::ssh_target(&inv, s), script.clone()))
        .collect();
    let out = progress::reporter(g.verbosity());
    // The app's environment holds its secrets: output masks them.
    let secrets = Secrets::resolve(&inv)?;
    super::warn(g, &secrets);
    let engine = super::engine(g, out.as_ref(), &secrets);
    let collected: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let refused = OnceLock::new();
    let output_failed = tokio::sync::Notify::new();
    let print = |host: &str, line: &str| {
        if g.json {
            let mut lines = collected.lock().expect("not poisoned");
            lines.push((host.to_string(), line.to_string()));
            return;
        }
        if let Err(e) = outln!("[{host}] {line}") {
            let _ = refused.set(e);
            output_failed.notify_one();
        }
    };
    let results = app::follow(&engine, &jobs, &print, super::interrupted(&output_failed)).await;
    if let Some(e) = refused.into_inner() {
        return Err(e.into());
    }
    let (codes, errors, failures) = super::split(out.as_ref(), &results);
    if g.json {
        let lines = collected.into_inner().expect("not poisoned");
        let report = Report {
            servers: servers
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_ok())
                .zip(&codes)
                .map(|((s, _), code)| ServerRun {
                    host: s.name.to_string(),
                    exit_code: *code,
                    output: lines
                        .iter()
                        .filter(|(host, _)| host == s.name.as_str())
                        .map(|(_, line)| format!("{line}\n"))
                        .collect(),
                })
                .collect(),
            errors,
        };
        crate::cli::print_json("exec", &report)?;
    }
    Ok(worst(&codes).unwrap_or_else(|| exit::of(false, &failures, false)))
}

/// The worst of the commands' exit codes, when one did not succeed: the
/// highest, as ssh passes one on (killed by a signal: 1); an interrupted
/// one, 130.
fn worst(codes: &[Option<i32>]) -> Option<u8> {
    codes
        .iter()
        .map(|code| match code {
            None => INTERRUPTED,
            Some(c) if *c < 0 => 1,
            Some(c) => u8::try_from(*c).unwrap_or(u8::MAX),
        })
        .max()
        .filter(|worst| *worst > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_exit_code_wins() {
        assert_eq!(worst(&[Some(0), Some(0)]), None);
        assert_eq!(worst(&[Some(0), Some(3), Some(1)]), Some(3));
        assert_eq!(worst(&[Some(-1)]), Some(1));
        assert_eq!(worst(&[Some(0), None]), Some(INTERRUPTED));
        assert_eq!(worst(&[]), None);
    }
}
