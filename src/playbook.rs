//! The playbook: ordered roles of typed steps, their handlers, and the
//! end-to-end checks. Strict YAML: an unknown step kind or field is an
//! error at its line and column.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{InputError, InputErrors};
use crate::inventory::Role;
use crate::inventory::{same_place, Document};
use crate::local_file::read_input;
use crate::project::{PlaybookSource, Project};
use crate::steps::StepArgs;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub roles: Vec<RoleSteps>,
    #[serde(default)]
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSteps {
    pub role: Scope,
    /// A template expression (`app.kind == 'php-fpm'`): the block applies
    /// only where it is true. Handlers run at the end of the block that
    /// defines them, for changes in any block of the same role.
    #[serde(default)]
    pub when: Option<String>,
    pub steps: Vec<StepEntry>,
    #[serde(default)]
    pub handlers: Vec<Handler>,
    /// Words that select the block for commands that run part of the
    /// playbook: `foobar deploy` runs the blocks tagged `deploy`.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The servers a block runs on: those with one role, or `all` of them
/// (what concerns every server: updates, SSH, the firewall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Role(Role),
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name == "all" {
            return Ok(Scope::All);
        }
        Role::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&name))
            .map(Scope::Role)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or `all` (every server)")))
    }
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Role(role) => role.name(),
        }
    }

    /// Whether the block runs on a server with these roles.
    pub fn covers(self, has: impl Fn(Role) -> bool) -> bool {
        match self {
            Scope::All => true,
            Scope::Role(role) => has(role),
        }
    }
}

/// The tag of the blocks `foobar deploy` runs.
pub const DEPLOY_TAG: &str = "deploy";

/// A step written as a one-key map (`- template: {...}`), the way
/// Ansible users write tasks, rather than as a YAML tag. The kinds and
/// their fields are the step kinds' own (src/steps/).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct StepEntry(#[serde(with = "serde_yaml::with::singleton_map")] pub StepArgs);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HandlerAction {
    Reload,
    Restart,
    /// A Galera member restarted in its cluster (`roles::rejoin_script`).
    Rejoin,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Handler {
    pub name: String,
    pub service: String,
    pub action: HandlerAction,
    /// The service's reload returns only once it serves again (gunicorn's
    /// ExecReload waits for its new workers): no pause to see that it
    /// stays up.
    #[serde(default)]
    pub reload_waits: bool,
}

/// An HTTP request from the machine running foobar to the web server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    /// The hop this check proves; named when it fails.
    pub hop: String,
    pub path: String,
    /// Host header; defaults to the www name.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "ok_status")]
    pub expect_status: u16,
    #[serde(default)]
    pub expect_body: Option<String>,
    /// Command whose output is shown when the check fails.
    #[serde(default)]
    pub logs: Option<String>,
}

fn ok_status() -> u16 {
    200
}

/// A playbook with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub playbook: Playbook,
    /// Its keys and values with their places, for errors found later (a
    /// step's, a `when`'s).
    pub document: Document,
}

impl Loaded {
    /// The key path of step `step` of block `block`, like
    /// `roles[3].steps[1].template`.
    pub fn step_key(&self, block: usize, step: usize) -> String {
        let kind = self.playbook.roles[block].steps[step].0.kind();
        format!("roles[{block}].steps[{step}].{kind}")
    }
}

/// The project's playbook, or the built-in one.
pub fn of_project(project: &Project) -> Result<Loaded, InputErrors> {
    match project.playbook() {
        PlaybookSource::File(path) => load(&path),
        PlaybookSource::BuiltIn { path, text } => parse(&path, text),
    }
}

pub fn load(path: &Path) -> Result<Loaded, InputErrors> {
    let bytes = read_input(path)
        .map_err(|e| InputError::new(path, format!("cannot read the playbook: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| InputError::new(path, "the playbook is not UTF-8 text: save it as UTF-8"))?;
    parse(path, &text)
}

/// The playbook in `text`; `path` names it in errors. Every independent
/// mistake is reported, each at its place.
pub fn parse(path: &Path, text: &str) -> Result<Loaded, InputErrors> {
    if text.trim().is_empty() {
        return Err(InputError::new(path, "the playbook is empty").into());
    }
    let document = Document::read(path, text)?;
    let playbook: Playbook = document.deserialize()?;
    let mut errors = Vec::new();
    for (b, role) in playbook.roles.iter().enumerate() {
        for (i, h) in role.handlers.iter().enumerate() {
            // Handler names end up in shell words and backup folder names.
            let plain = |v: &str, extra: &str| {
                !v.is_empty()
                    && !v.starts_with(['-', ' '])
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
            };
            for (field, value, ok) in [
                ("name", &h.name, plain(&h.name, " _-")),
                ("service", &h.service, plain(&h.service, "@._-")),
            ] {
                if !ok {
                    push_once(&mut errors, document.error_at(
                        &format!("roles[{b}].handlers[{i}].{field}"),
                        format!(
                            "handler {field} `{}` may hold only letters, digits, spaces, `_` and `-`",
                            value.escape_debug()
                        ),
                    ));
                }
            }
        }
    }
    // A step that notifies a handler whose name is refused would only say
    // so again.
    if !errors.is_empty() {
        return Err(errors.into());
    }
    for (b, role) in playbook.roles.iter().enumerate() {
        let names: BTreeSet<&str> = playbook
            .roles
            .iter()
            .filter(|r| r.role == role.role)
            .flat_map(|r| r.handlers.iter().map(|h| h.name.as_str()))
            .collect();
        for (i, StepEntry(step)) in role.steps.iter().enumerate() {
            if let Some(n) = step.notify() {
                if !names.contains(n) {
                    push_once(&mut errors, document.error_at(
                        &format!("roles[{b}].steps[{i}].{}.notify", step.kind()),
                        format!(
                            "this `{}` step notifies `{n}`, which is not a handler of the blocks of `role: {}`: add it under their handlers",
                            step.kind(),
                            role.role.name()
                        ),
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        playbook,
        document,
    })
}

/// A step or handler named again by an alias (`*bind_options`) is one
/// mistake at one place: told once.
fn push_once(errors: &mut Vec<InputError>, error: InputError) {
    if !errors.iter().any(|e| same_place(e, &error)) {
        errors.push(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> InputError {
        parse(Path::new("p.yml"), text).unwrap_err().0.remove(0)
    }

    #[test]
    fn shipped_playbook_parses() {
        let p = load(Path::new("playbooks/provision.yml")).unwrap();
        let scopes: Vec<Scope> = p.playbook.roles.iter().map(|r| r.role).collect();
        for role in [
            Role::Dns,
            Role::Db,
            Role::DbReplica,
            Role::DbCluster,
            Role::App,
            Role::Web,
            Role::Lb,
        ] {
            assert!(scopes.contains(&Scope::Role(role)), "{role:?}");
        }
        // Every server: security updates and hardening first, SSH by keys
        // only and the firewall last (between them, only what a backup
        // server pulls from a server); then only a cluster member, which
        // joins once the firewall lets the members in.
        let all: Vec<usize> = (0..scopes.len())
            .filter(|&i| scopes[i] == Scope::All)
            .collect();
        let last = scopes.len() - 1;
        assert_eq!(all[..2], [0, 1]);
        assert_eq!(all[all.len() - 2..], [last - 4, last - 3]);
        assert!(scopes[last - 2..]
            .iter()
            .all(|s| *s == Scope::Role(Role::DbCluster)));
        // Two per app server kind (packages, then its service), Python's
        // wheels, the app's own packages, the database CA on the app
        // servers, the TLS files of a primary and of a replica, the
        // primary's replication user,
        // HTTPS by ACME, the load balancers' floating address, what a
        // backup server pulls from a server (two), and the four blocks of
        // every server.
        let conditional = p.playbook.roles.iter().filter(|r| r.when.is_some()).count();
        assert_eq!(conditional, 20);
        // The app's checks come from the inventory.
        assert_eq!(p.playbook.checks.len(), 1);
        // `foobar deploy`: the code, its configuration, the app's services
        // and its processes and jobs, nothing else.
        let deploy: Vec<_> = p
            .playbook
            .roles
            .iter()
            .filter(|r| r.tags.iter().any(|t| t == DEPLOY_TAG))
            .collect();
        assert_eq!(deploy.len(), 6);
        assert!(deploy.iter().all(|r| r.role == Scope::Role(Role::App)));
    }

    #[test]
    fn unknown_step_kind_is_located() {
        let e = err("roles:\n  - role: web\n    steps:\n      - copy: {src: a}\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("unknown value `copy`"), "{e}");
    }

    #[test]
    fn unknown_field_is_located() {
        let e =
            err("roles:\n  - role: web\n    steps:\n      - service: {name: nginx, state: on}\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("unknown key `state`"), "{e}");
    }

    #[test]
    fn notify_must_name_a_handler() {
        let e = err(
            "roles:\n  - role: web\n    steps:\n      - absent: {path: /x, notify: reload nginx}\n",
        );
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("not a handler"), "{e}");
    }
}
