//! `stopped`: a systemd service stopped and disabled (if it exists at all),
//! e.g. the app server of another kind after a switch.

use serde::{Deserialize, Serialize};

use super::parts::unit_fact_script;
use super::service::{parse_unit_fact, Fact};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Stopped;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
}

/// Stop and disable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop;

impl Kind for Stopped {
    type Args = Args;
    /// The unit name.
    type Desired = String;
    type Fact = Fact;
    type Change = Stop;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<String, InputError> {
        cx.unit(&args.name)
    }

    fn label(name: &String) -> String {
        format!("stopped {name}")
    }

    fn fact_script(name: &String) -> String {
        unit_fact_script(name)
    }

    fn parse_fact(output: &str) -> Fact {
        parse_unit_fact(output)
    }

    fn plan(_: &String, f: &Fact, _: &PlanCx) -> Option<Stop> {
        (f.enabled || f.active).then_some(Stop)
    }

    fn describe(_: &Stop) -> String {
        "stop and disable".into()
    }

    fn script(name: &String, _: &Stop, _: Option<&str>) -> Script {
        Script::new(format!("systemctl disable --now {} >&2\n", quote(name)))
    }

    fn converged(_: &String, _: &Stop, _: &Fact) -> Fact {
        Fact::default()
    }
}
