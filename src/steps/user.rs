//! `user`: a system user for a service, without login shell.

use serde::{Deserialize, Serialize};

use super::parts::deferred_fact_script;
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct User;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub home: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    pub exists: bool,
}

/// The user is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create;

impl Kind for User {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Create;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        Ok(Desired {
            name: cx.unix_name("name", &args.name)?,
            home: cx.server_path("home", &args.home)?,
        })
    }

    fn label(d: &Desired) -> String {
        format!("user {}", d.name)
    }

    fn fact_script(d: &Desired) -> String {
        deferred_fact_script(&format!(
            "getent passwd {} >/dev/null && echo U",
            quote(&d.name)
        ))
    }

    fn parse_fact(output: &str) -> Fact {
        Fact {
            exists: output.lines().any(|l| l == "U"),
        }
    }

    fn plan(_: &Desired, fact: &Fact, _: &PlanCx) -> Option<Create> {
        (!fact.exists).then_some(Create)
    }

    fn describe(_: &Create) -> String {
        "create".into()
    }

    fn script(d: &Desired, _: &Create, _: Option<&str>) -> Script {
        Script::new(format!(
            "useradd --system --home-dir {} --no-create-home --shell /usr/sbin/nologin {}\n",
            quote(&d.home),
            quote(&d.name)
        ))
    }

    fn converged(_: &Desired, _: &Create, _: &Fact) -> Fact {
        Fact { exists: true }
    }
}
