//! `sysctl`: kernel settings, written to a sysctl.d file (so that boot
//! applies them) and set live. A setting this server may not change (a
//! container, whose kernel is its host's) is written to the file but not
//! counted as a change: nothing could ever make it converge here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::parts::{parse_path_fact, path_fact_script};
use super::{sha256_hex, Kind, PlanCx, RenderedFile, ResolveCx, Script};
use crate::error::InputError;

pub struct Sysctl;

pub const FILE: &str = "/etc/sysctl.d/60-foobar.conf";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// `net.ipv4.conf.all.rp_filter: "1"`.
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub settings: BTreeMap<String, String>,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// The file's sha256, if it exists.
    #[serde(default)]
    pub file_sha256: Option<String>,
    /// Live values of the settings this server may change.
    #[serde(default)]
    pub writable: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub write_file: bool,
    /// The settings to set live, with their new values.
    pub set: BTreeMap<String, String>,
}

fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

impl Kind for Sysctl {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let mut content =
            String::from("# Managed by foobar (playbook step `sysctl`): edits here are overwritten.\n");
        for (key, value) in &args.settings {
            let key_ok = !key.is_empty()
                && !key.starts_with('.')
                && !key.contains("..")
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
            if !key_ok {
                return Err(cx.error(format!(
                    "`{key}` is not a sysctl name (dotted, like net.ipv4.tcp_syncookies)"
                )));
            }
            let value_ok =
                !value.trim().is_empty() && value.split_whitespace().all(|w| w.parse::<i64>().is_ok());
            if !value_ok {
                return Err(cx.error(format!(
                    "{key}: `{value}` is not a sysctl value (numbers, separated by spaces)"
                )));
            }
            content.push_str(&format!("{key} = {value}\n"));
        }
        Ok(Desired {
            settings: args.settings.clone(),
            content: content.into_bytes(),
        })
    }

    fn label(_: &Desired) -> String {
        format!("sysctl {FILE}")
    }

    fn fact_script(d: &Desired) -> String {
        // The file through the batched path facts; the live values by the
        // shell's own `read`: no process per setting.
        let mut s = path_fact_script(FILE);
        for key in d.settings.keys() {
            let p = proc_path(key);
            // dash's `read` says 1 on a /proc file, value read or not.
            s.push_str(&format!(
                "[ -w {p} ] && {{ v=; read -r v < {p}; printf 'W\\t%s\\t%s\\n' {key} \"$v\"; }}\n"
            ));
        }
        s.push_str("true\n");
        s
    }

    fn parse_fact(output: &str) -> Fact {
        let mut fact = Fact {
            file_sha256: parse_path_fact(output).and_then(|f| f.sha256),
            ..Fact::default()
        };
        for line in output.lines() {
            let mut f = line.splitn(3, '\t');
            if let (Some("W"), Some(key), Some(value)) = (f.next(), f.next(), f.next()) {
                let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
                fact.writable.insert(key.to_string(), value);
            }
        }
        fact
    }

    fn plan(d: &Desired, fact: &Fact, _: &PlanCx) -> Option<Change> {
        let write_file = fact.file_sha256.as_deref() != Some(sha256_hex(&d.content).as_str());
        let set: BTreeMap<String, String> = d
            .settings
            .iter()
            .filter(|(key, want)| {
                fact.writable.get(*key).is_some_and(|have| {
                    have.split_whitespace().ne(want.split_whitespace())
                })
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (write_file || !set.is_empty()).then_some(Change { write_file, set })
    }

    fn describe(c: &Change) -> String {
        let mut parts = Vec::new();
        if c.write_file {
            parts.push("file written".to_string());
        }
        if !c.set.is_empty() {
            parts.push(format!(
                "set live: {}",
                c.set.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        parts.join("; ")
    }

    fn script(d: &Desired, c: &Change, _: Option<&str>) -> Script {
        let mut s = String::new();
        if c.write_file {
            s.push_str(&format!(
                "mkdir -p /etc/sysctl.d\ncat > {FILE}.tmp\nchmod 0644 {FILE}.tmp\nmv -f {FILE}.tmp {FILE}\n"
            ));
        }
        for (key, value) in &c.set {
            s.push_str(&format!("sysctl -q -w {key}='{value}'\n"));
        }
        let script = Script::new(s);
        if c.write_file {
            script.with_stdin(d.content.clone())
        } else {
            script
        }
    }

    fn converged(d: &Desired, c: &Change, before: &Fact) -> Fact {
        let mut writable = before.writable.clone();
        writable.extend(c.set.clone());
        Fact {
            file_sha256: Some(sha256_hex(&d.content)),
            writable,
        }
    }

    fn file(d: &Desired) -> Option<RenderedFile<'_>> {
        Some(RenderedFile {
            path: FILE,
            content: &d.content,
            mode: 0o644,
            soa_serial: false,
        })
    }
}
