//! `foobar logs [GROUP]` (a role's group: web, app, db, dns, lb): the services' journals over SSH,
//! each line prefixed with its server's name when there are several;
//! `-f` follows them until interrupted.

use std::io::Write;

use clap::Args;

use crate::cli::{exit, Global};
use crate::engine::{self, app};
use crate::error::InputError;
use crate::inventory::{self, Role};
use crate::progress;
use crate::secrets::Secrets;
use crate::shell::quote;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Whose logs (a role's group: db is the primary and the replicas);
    /// default: every service of each server.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(Role::groups()))]
    pub source: Option<String>,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines newer than this: 30s, 10m, 2h, 1d.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub since: Option<String>,
    /// How many of the last lines per server.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: u32,
}

/// `10m` -> `-10m`, what journalctl's --since takes.
fn parse_age(s: &str) -> Result<String, String> {
    // At the last character, not byte: `é` is two bytes.
    let (digits, unit) = s.split_at(s.char_indices().last().map_or(0, |(i, _)| i));
    let ok = !digits.is_empty()
        && digits.len() <= 6
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(unit, "s" | "m" | "h" | "d");
    if ok {
        Ok(format!(
            "-{digits}{}",
            if unit == "d" { "days" } else { unit }
        ))
    } else {
        Err(format!(
            "`{}` is not an age: write a number and s, m, h or d, like 10m",
            s.escape_debug()
        ))
    }
}

pub async fn run(g: &Global, args: LogsArgs) -> anyhow::Result<u8> {
    let inv = inventory::load(&g.inventory)?;
    let mut jobs = Vec::new();
    for server in super::servers(g, &inv, None)? {
        let roles: Vec<Role> = match &args.source {
            Some(group) => Role::of_group(group)
                .into_iter()
                .filter(|r| server.has(*r))
                .collect(),
            None => server.roles.iter().copied().collect(),
        };
        // nginx sends its site's log lines to syslog: the journal files
        // them under nginx.service.
        let words: Vec<String> = inv
            .inventory
            .units(roles)
            .into_iter()
            .map(|unit| format!("-u {}", quote(unit)))
            .collect();
        if words.is_empty() {
            continue;
        }
        let command = format!(
            "journalctl --no-pager --no-hostname -o short-iso -n {}{}{} {}",
            args.lines,
            if args.follow { " -f" } else { "" },
            args.since
                .as_ref()
                .map(|s| format!(" --since {}", quote(s)))
                .unwrap_or_default(),
            words.join(" ")
        );
        jobs.push((engine::ssh_target(&inv, server), command));
    }
    if jobs.is_empty() {
        return Err(InputError::new(
            &inv.path,
            "no server of the inventory has that role: nothing to show",
        )
        .into());
    }
    let out = progress::reporter(g.verbosity());
    let secrets = Secrets::resolve(&inv)?;
    let engine = super::engine(g, out.as_ref(), &secrets);
    let several = jobs.len() > 1;
    let print = |host: &str, line: &str| {
        let mut stdout = std::io::stdout().lock();
        let _ = if several {
            writeln!(stdout, "{host} | {line}")
        } else {
            writeln!(stdout, "{line}")
        };
    };
    // Ctrl-C (or a TERM) ends the run cleanly: the SSH connections are
    // closed, not left behind.
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    };
    let results = app::follow(&engine, &jobs, &print, stop).await;
    let (codes, _, failures) = super::split(out.as_ref(), &results);
    Ok(exit::of(
        codes.iter().any(|c| matches!(c, Some(c) if *c != 0)),
        &failures,
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_become_journalctl_times() {
        assert_eq!(parse_age("10m").unwrap(), "-10m");
        assert_eq!(parse_age("2d").unwrap(), "-2days");
        for bad in ["", "m", "10", "10y", "-5m", "1 h", "$(x)m", "é", "1é"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
