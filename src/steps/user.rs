//! `user`: a system user for a service, without login shell, and the
//! groups it must belong to (besides any others it has).

use serde::{Deserialize, Serialize};

use super::parts::{deferred_fact_script, remember};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct User;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: String,
    pub home: String,
    /// Its login shell: none by default; a shell for a user that runs an
    /// SSH forced command (sshd runs it through the shell).
    #[serde(default = "no_login")]
    pub shell: String,
    /// Groups it joins (nginx's user reads the app's files through the
    /// app's group).
    #[serde(default)]
    pub groups: Vec<String>,
    /// A handler to run once the user has changed (a service reads its
    /// groups when it starts).
    #[serde(default)]
    pub notify: Option<String>,
}

fn no_login() -> String {
    "/usr/sbin/nologin".into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub home: String,
    pub shell: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    pub exists: bool,
    /// The groups it belongs to now.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The user is created, or joins the groups it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create,
    Join(Vec<String>),
}

impl Kind for User {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Change;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        Ok(Desired {
            name: cx.unix_name("name", &args.name)?,
            home: cx.server_path("home", &args.home)?,
            shell: cx.server_path("shell", &args.shell)?,
            groups: args
                .groups
                .iter()
                .map(|g| cx.unix_name("groups", g))
                .collect::<Result<_, _>>()?,
        })
    }

    fn notify(args: &Args) -> Option<&str> {
        args.notify.as_deref()
    }

    fn label(d: &Desired) -> String {
        format!("user {}", d.name)
    }

    fn fact_script(d: &Desired) -> String {
        deferred_fact_script(&format!(
            "getent passwd {n} >/dev/null && echo U && printf 'G\\t%s\\n' $(id -nG {n})",
            n = quote(&d.name)
        ))
    }

    fn parse_fact(output: &str) -> Fact {
        Fact {
            exists: output.lines().any(|l| l == "U"),
            groups: output
                .lines()
                .filter_map(|l| l.strip_prefix("G\t"))
                .map(str::to_string)
                .collect(),
        }
    }

    fn plan(d: &Desired, fact: &Fact, _: &PlanCx) -> Option<Change> {
        if !fact.exists {
            return Some(Change::Create);
        }
        let missing: Vec<String> = d
            .groups
            .iter()
            .filter(|g| !fact.groups.contains(g))
            .cloned()
            .collect();
        (!missing.is_empty()).then_some(Change::Join(missing))
    }

    fn describe(c: &Change) -> String {
        match c {
            Change::Create => "create".into(),
            Change::Join(groups) => format!("join {}", groups.join(", ")),
        }
    }

    fn script(d: &Desired, c: &Change, notify: Option<&str>) -> Script {
        let join = |groups: &[String]| {
            groups
                .iter()
                .map(|g| format!("usermod -a -G {} {}\n", quote(g), quote(&d.name)))
                .collect::<String>()
        };
        Script::new(match c {
            Change::Create => format!(
                "useradd --system --home-dir {} --no-create-home --shell {} {}\n{}",
                quote(&d.home),
                quote(&d.shell),
                quote(&d.name),
                join(&d.groups)
            ),
            Change::Join(groups) => join(groups),
        } + &remember(notify))
    }

    fn converged(d: &Desired, _: &Change, fact: &Fact) -> Fact {
        let mut groups = fact.groups.clone();
        groups.extend(d.groups.iter().filter(|g| !fact.groups.contains(g)).cloned());
        Fact {
            exists: true,
            groups,
        }
    }
}
