//! `fixture` (unit tests only): a marker file holding one word. Written as
//! a new kind would be, to prove that one file and one registry line are
//! all a kind needs.

use serde::{Deserialize, Serialize};

use super::parts::{parse_path_fact, path_fact_script, remember, sha256_hex, PathFact};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Fixture;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub path: String,
    pub word: String,
    #[serde(default)]
    pub notify: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub path: String,
    pub word: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark;

impl Kind for Fixture {
    type Args = Args;
    type Desired = Desired;
    type Fact = Option<PathFact>;
    type Change = Mark;

    fn notify(args: &Args) -> Option<&str> {
        args.notify.as_deref()
    }

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let word = cx.field("word", &args.word)?;
        if !word.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(cx.error(format!("`{word}` is not one plain word")));
        }
        Ok(Desired {
            path: cx.server_path("path", &args.path)?,
            word,
        })
    }

    fn label(d: &Desired) -> String {
        format!("fixture {}", d.path)
    }

    fn fact_script(d: &Desired) -> String {
        path_fact_script(&d.path)
    }

    fn parse_fact(output: &str) -> Option<PathFact> {
        parse_path_fact(output)
    }

    fn plan(d: &Desired, fact: &Option<PathFact>, _: &PlanCx) -> Option<Mark> {
        let want = sha256_hex(format!("{}\n", d.word).as_bytes());
        (fact.as_ref().and_then(|f| f.sha256.as_deref()) != Some(want.as_str())).then_some(Mark)
    }

    fn describe(_: &Mark) -> String {
        "mark".into()
    }

    fn script(d: &Desired, _: &Mark, notify: Option<&str>) -> Script {
        Script::new(format!(
            "echo {} > {}\n{}",
            d.word,
            quote(&d.path),
            remember(notify)
        ))
    }

    fn converged(d: &Desired, _: &Mark, _: &Option<PathFact>) -> Option<PathFact> {
        Some(PathFact {
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            is_dir: false,
            sha256: Some(sha256_hex(format!("{}\n", d.word).as_bytes())),
        })
    }
}
