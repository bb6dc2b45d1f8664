//! `foobar logs [GROUP]` (a role's group: web, app, db, dns, lb): the services' journals over SSH,
//! each line prefixed with its server's name when there are several;
//! `-f` follows them until interrupted. The app's group holds its
//! processes and scheduled jobs too; `--process` picks them by name.

use std::sync::OnceLock;

use clap::Args;

use crate::cli::{exit, outln, Global};
use crate::engine::{self, app};
use crate::error::InputError;
use crate::inventory::Role;
use crate::progress;
use crate::roles::{job_units, process_unit};
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
    /// Only the journal of this process or scheduled job of the app
    /// (app.processes, app.schedule), on the servers that run it
    /// (repeatable).
    #[arg(long = "process", value_name = "NAME", conflicts_with = "source")]
    pub processes: Vec<String>,
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
    let inv = super::inventory_to_connect(g)?;
    let app = &inv.inventory.app;
    if let Some(name) = args.processes.iter().find(|name| {
        !app.processes.keys().any(|p| p.as_str() == name.as_str())
            && !app
                .schedule
                .iter()
                .any(|j| j.name.as_str() == name.as_str())
    }) {
        let known: Vec<&str> = app
            .processes
            .keys()
            .map(|p| p.as_str())
            .chain(app.schedule.iter().map(|j| j.name.as_str()))
            .collect();
        return Err(InputError::new(
            &inv.path,
            format!(
                "the app has no process or scheduled job named `{}`: {}",
                name.escape_debug(),
                if known.is_empty() {
                    "app.processes and app.schedule name none".to_string()
                } else {
                    format!("it has {}", known.join(", "))
                }
            ),
        )
        .into());
    }
    let mut jobs = Vec::new();
    for server in super::servers(g, &inv, None)? {
        let roles: Vec<Role> = match &args.source {
            Some(group) => Role::of_group(group)
                .into_iter()
                .filter(|r| server.has(*r))
                .collect(),
            None => server.roles.iter().copied().collect(),
        };
        // The app's processes and jobs this server runs, by name; a job's
        // output is its service's.
        let app_units: Vec<(&str, String)> =
            if roles.contains(&Role::App) || !args.processes.is_empty() {
                let inv = &inv.inventory;
                inv.processes_on(server)
                    .into_iter()
                    .map(|(name, _)| (name.as_str(), process_unit(name.as_str())))
                    .chain(inv.jobs_on(server).into_iter().map(|j| {
                        (
                            j.name.as_str(),
                            format!("{}.service", job_units(j.name.as_str())),
                        )
                    }))
                    .collect()
            } else {
                Vec::new()
            };
        let units: Vec<String> = if args.processes.is_empty() {
            inv.inventory
                .units(roles)
                .into_iter()
                .map(str::to_string)
                .chain(app_units.into_iter().map(|(_, unit)| unit))
                .collect()
        } else {
            app_units
                .into_iter()
                .filter(|(name, _)| args.processes.iter().any(|p| p == name))
                .map(|(_, unit)| unit)
                .collect()
        };
        // nginx sends its site's log lines to syslog: the journal files
        // them under nginx.service.
        let words: Vec<String> = units
            .iter()
            .map(|unit| format!("-u {}", quote(unit)))
            .collect();
        if words.is_empty() {
            continue;
        }
        // As JSON: journald's own fields, one entry a line, none cut short.
        let format = if g.json {
            "-o json --all --output-fields=MESSAGE,UNIT,_SYSTEMD_UNIT"
        } else {
            "--no-hostname -o short-iso"
        };
        let command = format!(
            "journalctl --no-pager {format} -n {}{}{} {}",
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
            if args.processes.is_empty() {
                "no server of the inventory has that role: nothing to show"
            } else {
                "none of the servers picked runs that process or job: nothing to show"
            },
        )
        .into());
    }
    let out = progress::reporter(g.verbosity());
    let secrets = Secrets::resolve(&inv)?;
    super::warn(g, &secrets);
    let engine = super::engine(g, out.as_ref(), &secrets);
    let several = jobs.len() > 1;
    // A line standard output refuses ends the run: following on would
    // only lose more.
    let refused = OnceLock::new();
    let output_failed = tokio::sync::Notify::new();
    let print = |host: &str, line: &str| {
        let written = if g.json {
            crate::cli::print_json_line("logs", &entry(host, line, &|m| secrets.redact(m)))
        } else if several {
            outln!("{host} | {line}").map_err(Into::into)
        } else {
            outln!("{line}").map_err(Into::into)
        };
        if let Err(e) = written {
            let _ = refused.set(e);
            output_failed.notify_one();
        }
    };
    // Ctrl-C, a TERM or a refused line ends the run cleanly: the SSH
    // connections are closed, not left behind.
    let stop = super::interrupted(&output_failed);
    let results = app::follow(&engine, &jobs, &print, stop).await;
    if let Some(e) = refused.into_inner() {
        return Err(e);
    }
    let (codes, errors, failures) = super::split(out.as_ref(), &results);
    // A server whose logs could not be read is a document of its own.
    if g.json {
        for e in &errors {
            crate::cli::print_json_line(
                "logs",
                &serde_json::json!({
                    "server": e.host,
                    "error": { "kind": e.kind, "message": e.message },
                }),
            )?;
        }
    }
    Ok(exit::of(
        codes.iter().any(|c| matches!(c, Some(c) if *c != 0)),
        &failures,
        false,
    ))
}

/// One line of `journalctl -o json` from `server` as `--json` shows it:
/// the unit the entry is about (`UNIT`, for systemd's own lines about a
/// unit, else the unit that wrote it), its time (RFC 3339, UTC) and its
/// message, secrets masked by `redact` (again: escaped in JSON, a secret
/// can escape the mask the raw line got). A line that is not an entry (journalctl's own
/// complaint) is the message alone.
fn entry(server: &str, line: &str, redact: &dyn Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value;
    let fields: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap_or_default();
    let text = |key: &str| fields.get(key).and_then(Value::as_str);
    let message = match fields.get("MESSAGE") {
        Some(Value::String(s)) => s.clone(),
        // Not UTF-8: journald gives the bytes.
        Some(Value::Array(bytes)) => String::from_utf8_lossy(
            &bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Vec<u8>>(),
        )
        .into_owned(),
        _ if fields.is_empty() => line.to_string(),
        _ => String::new(),
    };
    let time = text("__REALTIME_TIMESTAMP")
        .and_then(|us| us.parse::<i64>().ok())
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map(|t| t.to_string());
    serde_json::json!({
        "server": server,
        "unit": text("UNIT").or_else(|| text("_SYSTEMD_UNIT")),
        "time": time,
        "message": redact(&message),
    })
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

    /// `--json`'s documents, from journald's lines, are what
    /// schemas/logs.json says, secrets masked.
    #[test]
    fn journal_lines_become_documents_of_the_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string("schemas/logs.json").unwrap()).unwrap();
        let schema = jsonschema::validator_for(&schema).unwrap();
        let redact = |m: &str| m.replace("s3cret-Value-42", "********");
        let doc = |line: &str| {
            let body = entry("web1", line, &redact);
            let mut doc = serde_json::json!({ "schema_version": 1, "command": "logs" });
            doc.as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            let errors: Vec<String> = schema.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
            doc
        };
        let line = doc(
            r#"{"__REALTIME_TIMESTAMP":"1764072000123456","_SYSTEMD_UNIT":"foobar-app.service","MESSAGE":"login with s3cret-Value-42"}"#,
        );
        assert_eq!(line["unit"], "foobar-app.service");
        assert_eq!(line["time"], "2025-11-25T12:00:00.123456Z");
        assert_eq!(line["message"], "login with ********");
        // systemd's line about a unit names that unit; bytes that are not
        // UTF-8 come as an array.
        let line = doc(
            r#"{"__REALTIME_TIMESTAMP":"1764072000000000","_SYSTEMD_UNIT":"init.scope","UNIT":"nginx.service","MESSAGE":[104,105,255]}"#,
        );
        assert_eq!(line["unit"], "nginx.service");
        assert_eq!(line["message"], "hi\u{fffd}");
        // journalctl's own words.
        let line = doc("No journal files were found.");
        assert_eq!(line["message"], "No journal files were found.");
        assert_eq!(line["unit"], serde_json::Value::Null);
    }
}
