//! `service`: a systemd service enabled and running.

use serde::{Deserialize, Serialize};

use super::parts::unit_fact_script;
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Service;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    pub enabled: bool,
    pub active: bool,
}

/// Enable and/or start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub enable: bool,
    pub start: bool,
}

/// Parses the `V` line of `unit_fact_script`; shared with `stopped`.
pub(super) fn parse_unit_fact(output: &str) -> Fact {
    output
        .lines()
        .find_map(|l| match l.split('\t').collect::<Vec<_>>()[..] {
            ["V", enabled, active] => Some(Fact {
                enabled: enabled == "enabled",
                active: active == "active",
            }),
            _ => None,
        })
        .unwrap_or_default()
}

impl Kind for Service {
    type Args = Args;
    /// The unit name.
    type Desired = String;
    type Fact = Fact;
    type Change = Start;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<String, InputError> {
        cx.unit(&args.name)
    }

    fn label(name: &String) -> String {
        format!("service {name}")
    }

    fn fact_script(name: &String) -> String {
        unit_fact_script(name)
    }

    fn parse_fact(output: &str) -> Fact {
        parse_unit_fact(output)
    }

    fn plan(_: &String, f: &Fact, _: &PlanCx) -> Option<Start> {
        (!f.enabled || !f.active).then_some(Start {
            enable: !f.enabled,
            start: !f.active,
        })
    }

    fn describe(c: &Start) -> String {
        match (c.enable, c.start) {
            (true, true) => "enable and start",
            (true, false) => "enable",
            _ => "start",
        }
        .into()
    }

    fn script(name: &String, c: &Start, _: Option<&str>) -> Script {
        let verb = match (c.enable, c.start) {
            (true, true) => "enable --now",
            (true, false) => "enable",
            _ => "start",
        };
        Script::new(format!(
            "systemctl {verb} {n} >&2 || {{ journalctl -u {n} -n 20 --no-pager >&2; exit 1; }}\n",
            n = quote(name)
        ))
    }

    fn converged(_: &String, _: &Start, _: &Fact) -> Fact {
        Fact {
            enabled: true,
            active: true,
        }
    }

    fn service(name: &String) -> Option<&str> {
        Some(name)
    }

    fn starts_service(c: &Start) -> bool {
        c.start
    }
}
