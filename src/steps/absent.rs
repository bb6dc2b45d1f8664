//! `absent`: a file that must not exist.

use serde::{Deserialize, Serialize};

use super::parts::{backup, parse_path_fact, path_fact_script, remember, PathFact};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Absent;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub path: String,
    #[serde(default)]
    pub notify: Option<String>,
}

/// The file is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remove;

impl Kind for Absent {
    type Args = Args;
    /// The path.
    type Desired = String;
    type Fact = Option<PathFact>;
    type Change = Remove;

    fn notify(args: &Args) -> Option<&str> {
        args.notify.as_deref()
    }

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<String, InputError> {
        cx.server_path("path", &args.path)
    }

    fn label(path: &String) -> String {
        format!("absent {path}")
    }

    fn fact_script(path: &String) -> String {
        path_fact_script(path)
    }

    fn parse_fact(output: &str) -> Option<PathFact> {
        parse_path_fact(output)
    }

    fn plan(_: &String, fact: &Option<PathFact>, _: &PlanCx) -> Option<Remove> {
        fact.is_some().then_some(Remove)
    }

    fn describe(_: &Remove) -> String {
        "remove".into()
    }

    fn script(path: &String, _: &Remove, notify: Option<&str>) -> Script {
        Script::new(format!(
            "dest={}\n{}rm -f \"$dest\"\n{}",
            quote(path),
            backup(notify),
            remember(notify)
        ))
    }

    fn converged(_: &String, _: &Remove, _: &Option<PathFact>) -> Option<PathFact> {
        None
    }
}
