//! `directory`: a folder with owner and mode.

use serde::{Deserialize, Serialize};

use super::parts::{parse_path_fact, path_fact_script, PathFact};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Directory;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub path: String,
    #[serde(default = "super::template::root")]
    pub owner: String,
    #[serde(default = "super::template::root")]
    pub group: String,
    #[serde(default = "dir_mode")]
    pub mode: String,
}

fn dir_mode() -> String {
    "0755".into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

/// Create the folder or fix its owner and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix;

impl Kind for Directory {
    type Args = Args;
    type Desired = Desired;
    type Fact = Option<PathFact>;
    type Change = Fix;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        Ok(Desired {
            path: cx.server_path("path", &args.path)?,
            owner: cx.unix_name("owner", &args.owner)?,
            group: cx.unix_name("group", &args.group)?,
            mode: cx.mode(&args.mode)?,
        })
    }

    fn label(d: &Desired) -> String {
        format!("directory {}", d.path)
    }

    fn fact_script(d: &Desired) -> String {
        path_fact_script(&d.path)
    }

    fn parse_fact(output: &str) -> Option<PathFact> {
        parse_path_fact(output)
    }

    fn plan(d: &Desired, fact: &Option<PathFact>, _: &PlanCx) -> Option<Fix> {
        let ok = fact
            .as_ref()
            .is_some_and(|f| f.is_dir && f.owner == d.owner && f.group == d.group && f.mode == d.mode);
        (!ok).then_some(Fix)
    }

    fn describe(_: &Fix) -> String {
        "create or fix owner/mode".into()
    }

    fn script(d: &Desired, _: &Fix, _: Option<&str>) -> Script {
        Script::new(format!(
            "mkdir -p {p}\nchown {o}:{g} {p}\nchmod {mode:04o} {p}\n",
            p = quote(&d.path),
            o = quote(&d.owner),
            g = quote(&d.group),
            mode = d.mode
        ))
    }

    fn converged(d: &Desired, _: &Fix, _: &Option<PathFact>) -> Option<PathFact> {
        Some(PathFact {
            owner: d.owner.clone(),
            group: d.group.clone(),
            mode: d.mode,
            is_dir: true,
            sha256: None,
        })
    }
}
