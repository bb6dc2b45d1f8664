//! Step kinds. Each kind is one module holding its schema (the playbook
//! arguments), how it resolves, its fact fragment and how that is parsed,
//! its plan rule and the script that applies it, all behind [`Kind`].
//! `registry!` at the bottom lists the kinds: adding one is a new file
//! plus one line there, and the compiler checks the rest.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::InputError;

mod parts;
mod resolve;

pub use parts::{
    backup_dir, mysql_native_hash, sha256_hex, PathFact, Script, FACTS_FLUSH, FACTS_PRELUDE,
    PEER_LINE, PEER_UNREACHABLE, PENDING_HANDLERS, VALIDATION_FAILED,
};
pub use resolve::ResolveCx;

/// What the plan needs besides facts.
#[derive(Debug, Clone, Copy)]
pub struct PlanCx {
    /// `YYYYMMDD` (UTC), for SOA serials.
    pub today: u32,
    /// A new release runs its build and release command whatever their
    /// inputs (`--rebuild`).
    pub rebuild: bool,
}

/// A file a step writes, as rendered (for `render`, snapshots and diffs).
#[derive(Debug, Clone, Copy)]
pub struct RenderedFile<'a> {
    pub path: &'a str,
    pub content: &'a [u8],
    pub mode: u32,
    /// The content holds the SOA serial token the plan fills in.
    pub soa_serial: bool,
}

/// One kind of step.
pub trait Kind: 'static {
    /// As written in the playbook (strict serde: unknown fields are errors).
    type Args: Debug + Clone + Serialize + DeserializeOwned + Send + Sync;
    /// What the server should have, every value rendered and checked.
    type Desired: Debug + Clone + PartialEq + Send + Sync;
    /// What the server has now, parsed from the kind's fact fragment.
    type Fact: Debug + Clone + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    /// What must change; absent when the server is already so.
    type Change: Debug + Clone + PartialEq + Send + Sync;

    /// The handler a change notifies.
    fn notify(_args: &Self::Args) -> Option<&str> {
        None
    }
    fn resolve(args: &Self::Args, cx: &ResolveCx) -> Result<Self::Desired, InputError>;
    /// A short description for progress lines, e.g. `template /etc/x`.
    fn label(desired: &Self::Desired) -> String;
    /// Shell that prints this step's facts (stderr is discarded).
    fn fact_script(desired: &Self::Desired) -> String;
    fn parse_fact(output: &str) -> Self::Fact;
    /// The plan rule: pure.
    fn plan(desired: &Self::Desired, fact: &Self::Fact, cx: &PlanCx) -> Option<Self::Change>;
    /// A few words for progress lines; never file contents or secrets.
    fn describe(change: &Self::Change) -> String;
    fn script(desired: &Self::Desired, change: &Self::Change, notify: Option<&str>) -> Script;
    /// The facts the server reports once `change` is applied: the plan of
    /// the same step over them must be empty (idempotence, tested).
    fn converged(desired: &Self::Desired, change: &Self::Change, before: &Self::Fact)
        -> Self::Fact;

    /// The rendered file, for kinds that write one.
    fn file(_desired: &Self::Desired) -> Option<RenderedFile<'_>> {
        None
    }
    /// Every file the step writes, as rendered: `file`'s, or several.
    fn files(desired: &Self::Desired) -> Vec<RenderedFile<'_>> {
        Self::file(desired).into_iter().collect()
    }
    /// The service this step keeps running, for restarts.
    fn service(_desired: &Self::Desired) -> Option<&str> {
        None
    }
    /// After this change the remaining steps are planned again from fresh
    /// facts (packages bring files and services of their own).
    fn refreshes_facts(_change: &Self::Change) -> bool {
        false
    }
    /// This change starts the step's service: it then runs what is on the
    /// server now, and a reload right after would race its start-up.
    fn starts_service(_change: &Self::Change) -> bool {
        false
    }
    /// The kind concerns the whole server (its firewall): listed under
    /// several roles, it runs once, where it first appears.
    fn once_per_server() -> bool {
        false
    }
    /// A change that could lock foobar out (a firewall) stays live only
    /// if this script, run over a fresh SSH connection, confirms it; it
    /// reverts by itself otherwise.
    fn confirm(_desired: &Self::Desired, _change: &Self::Change) -> Option<String> {
        None
    }
    /// The change only says why the step cannot go on (its script always
    /// fails): nothing converges, and the next run says so again.
    fn refuses(_change: &Self::Change) -> bool {
        false
    }
    /// Servers whose steps name the same group plan together: each sees
    /// the others' facts of the step (the engine appends them to its own
    /// as `PEER_LINE` / `PEER_UNREACHABLE` lines) and they apply one at a
    /// time, in `turn` order.
    fn peer_group(_desired: &Self::Desired) -> Option<&'static str> {
        None
    }
    /// This server's place among its peer group, from facts with peers.
    fn turn(_desired: &Self::Desired, _fact: &Self::Fact, _cx: &PlanCx) -> usize {
        0
    }
    /// The new content of a file this change writes, for `--diff`.
    fn new_content<'c>(_desired: &Self::Desired, _change: &'c Self::Change) -> Option<&'c [u8]> {
        None
    }
}

/// A resolved step of any kind, as the engine sees it.
pub trait Step: Debug + Send + Sync {
    fn kind(&self) -> &'static str;
    fn label(&self) -> String;
    fn fact_script(&self) -> String;
    /// Parses this step's fact output and plans it.
    fn plan(&self, fact_output: &str, cx: &PlanCx) -> Option<Box<dyn Change + '_>>;
    fn files(&self) -> Vec<RenderedFile<'_>>;
    fn service(&self) -> Option<&str>;
    fn once_per_server(&self) -> bool;
    fn peer_group(&self) -> Option<&'static str>;
    /// Its place in its peer group, from its facts with the peers'.
    fn turn(&self, fact_output: &str, cx: &PlanCx) -> usize;
}

/// A planned change of any kind.
pub trait Change: Send + Sync {
    fn describe(&self) -> String;
    fn script(&self) -> Script;
    fn refreshes_facts(&self) -> bool;
    /// The service this change starts, if it starts one.
    fn started_service(&self) -> Option<&str>;
    /// The script that confirms this change over a fresh connection.
    fn confirm(&self) -> Option<String>;
    /// (path, new content) of a file this change writes.
    fn new_file(&self) -> Option<(&str, &[u8])>;
}

struct Resolved<K: Kind> {
    kind: &'static str,
    desired: K::Desired,
    notify: Option<String>,
}

impl<K: Kind> Debug for Resolved<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.kind)
            .field("desired", &self.desired)
            .field("notify", &self.notify)
            .finish()
    }
}

struct Planned<'a, K: Kind> {
    step: &'a Resolved<K>,
    change: K::Change,
}

impl<K: Kind> Step for Resolved<K> {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn label(&self) -> String {
        K::label(&self.desired)
    }
    fn fact_script(&self) -> String {
        K::fact_script(&self.desired)
    }
    fn plan(&self, fact_output: &str, cx: &PlanCx) -> Option<Box<dyn Change + '_>> {
        let fact = K::parse_fact(fact_output);
        K::plan(&self.desired, &fact, cx)
            .map(|change| Box::new(Planned { step: self, change }) as Box<dyn Change>)
    }
    fn files(&self) -> Vec<RenderedFile<'_>> {
        K::files(&self.desired)
    }
    fn service(&self) -> Option<&str> {
        K::service(&self.desired)
    }
    fn once_per_server(&self) -> bool {
        K::once_per_server()
    }
    fn peer_group(&self) -> Option<&'static str> {
        K::peer_group(&self.desired)
    }
    fn turn(&self, fact_output: &str, cx: &PlanCx) -> usize {
        K::turn(&self.desired, &K::parse_fact(fact_output), cx)
    }
}

impl<K: Kind> Change for Planned<'_, K> {
    fn describe(&self) -> String {
        K::describe(&self.change)
    }
    fn script(&self) -> Script {
        K::script(
            &self.step.desired,
            &self.change,
            self.step.notify.as_deref(),
        )
    }
    fn refreshes_facts(&self) -> bool {
        K::refreshes_facts(&self.change)
    }
    fn started_service(&self) -> Option<&str> {
        K::starts_service(&self.change)
            .then(|| K::service(&self.step.desired))
            .flatten()
    }
    fn confirm(&self) -> Option<String> {
        K::confirm(&self.step.desired, &self.change)
    }
    fn new_file(&self) -> Option<(&str, &[u8])> {
        let content = K::new_content(&self.step.desired, &self.change)?;
        Some((K::file(&self.step.desired)?.path, content))
    }
}

/// Lists the kinds: `module::Type`, the module named as in the playbook.
macro_rules! registry {
    ($($(#[$attr:meta])* $module:ident :: $kind:ident),* $(,)?) => {
        $($(#[$attr])* pub mod $module;)*

        /// One step as written in the playbook.
        #[derive(Debug, Clone, Deserialize, Serialize)]
        #[serde(rename_all = "snake_case", deny_unknown_fields)]
        pub enum StepArgs {
            $($(#[$attr])* $kind(<$module::$kind as Kind>::Args),)*
        }

        /// Every kind's playbook name, in registry order.
        #[allow(clippy::vec_init_then_push)] // a kind may be cfg'd out
        pub fn kinds() -> Vec<&'static str> {
            let mut names = Vec::new();
            $($(#[$attr])* names.push(stringify!($module));)*
            names
        }

        impl StepArgs {
            pub fn kind(&self) -> &'static str {
                match self {
                    $($(#[$attr])* Self::$kind(_) => stringify!($module),)*
                }
            }

            pub fn notify(&self) -> Option<&str> {
                match self {
                    $($(#[$attr])* Self::$kind(a) => <$module::$kind as Kind>::notify(a),)*
                }
            }

            /// Renders and checks every value; the result knows its kind.
            pub fn resolve(&self, cx: &ResolveCx) -> Result<Box<dyn Step>, InputError> {
                let notify = self.notify().map(str::to_string);
                Ok(match self {
                    $($(#[$attr])* Self::$kind(a) => Box::new(Resolved::<$module::$kind> {
                        kind: stringify!($module),
                        desired: <$module::$kind as Kind>::resolve(a, cx)?,
                        notify,
                    }),)*
                })
            }
        }

        /// Runs one data-driven case (see tests/steps/): the kind is picked
        /// by the case's playbook entry.
        #[doc(hidden)]
        pub fn run_case(args: &StepArgs, cx: &ResolveCx, fact: &serde_json::Value, plan: &PlanCx)
            -> Result<CaseOutcome, String> {
            match args {
                $($(#[$attr])* StepArgs::$kind(a) => case::<$module::$kind>(a, cx, fact, plan),)*
            }
        }
    };
}

/// What a data-driven case produced: the change and script for the given
/// facts, and whether planning again over the converged facts is empty.
#[doc(hidden)]
#[derive(Debug)]
pub struct CaseOutcome {
    pub change: Option<String>,
    pub script: Option<String>,
    pub stdin_sha256: Option<String>,
    pub idempotent: bool,
}

fn case<K: Kind>(
    args: &K::Args,
    cx: &ResolveCx,
    fact: &serde_json::Value,
    plan: &PlanCx,
) -> Result<CaseOutcome, String> {
    let desired = K::resolve(args, cx).map_err(|e| e.to_string())?;
    let fact: K::Fact = serde_json::from_value(fact.clone()).map_err(|e| e.to_string())?;
    let Some(change) = K::plan(&desired, &fact, plan) else {
        return Ok(CaseOutcome {
            change: None,
            script: None,
            stdin_sha256: None,
            idempotent: true,
        });
    };
    let script = K::script(&desired, &change, K::notify(args));
    let after = K::converged(&desired, &change, &fact);
    Ok(CaseOutcome {
        change: Some(K::describe(&change)),
        script: Some(script.text),
        stdin_sha256: script.stdin.as_deref().map(parts::sha256_hex),
        idempotent: K::refuses(&change) || K::plan(&desired, &after, plan).is_none(),
    })
}

registry! {
    apt::Apt,
    user::User,
    directory::Directory,
    template::Template,
    absent::Absent,
    wheels::Wheels,
    release::Release,
    service::Service,
    stopped::Stopped,
    app_units::AppUnits,
    mysql::Mysql,
    mariadb_datadir::MariadbDatadir,
    replica::Replica,
    galera::Galera,
    certificate::Certificate,
    firewall::Firewall,
    sshd::Sshd,
    sysctl::Sysctl,
    security_updates::SecurityUpdates,
    // A kind that exists only in unit tests: proof that a new kind is one
    // file plus this line.
    #[cfg(test)]
    fixture::Fixture,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_named_as_in_the_playbook() {
        for name in kinds() {
            let yaml = format!("{name}: {{}}");
            let parsed = serde_yaml::with::singleton_map::deserialize::<StepArgs, _>(
                serde_yaml::Deserializer::from_str(&yaml),
            );
            match parsed {
                Ok(args) => assert_eq!(args.kind(), name),
                Err(e) => assert!(!e.to_string().contains("unknown variant"), "{name}: {e}"),
            }
        }
    }
}
