//! One module per subcommand, and what every one that contacts servers
//! shares: to start, the input loaded and checked (`Input::load`, or the
//! inventory alone), the servers it works on (`servers`: a role, then
//! `--limit`) and the engine over SSH (`engine`); to end, the outcomes
//! split into results, errors to report and failures (`split`), and the
//! exit code by one rule (`cli::exit::of`).

mod converged;
pub mod deploy;
pub mod diagram;
pub mod dns_check;
pub mod init;
pub mod lab;
pub mod logs;
pub mod maintenance;
pub mod provision;
pub mod releases;
pub mod render;
pub mod restart;
pub mod rollback;
pub mod status;

use crate::cli::Global;
use crate::engine::{Engine, HostError, HostFailure};
use crate::error::InputError;
use crate::inventory::{self, Loaded, Role, Server};
use crate::playbook;
use crate::progress::{Event, Reporter};
use crate::project::Project;
use crate::render::Renderer;
use crate::secrets::Secrets;
use crate::transport::SshConnector;

/// What a command that renders for servers loads first; bad input stops
/// here, before any connection.
struct Input {
    inv: Loaded,
    pb: playbook::Loaded,
    secrets: Secrets,
    renderer: Renderer,
}

impl Input {
    fn load(g: &Global) -> anyhow::Result<Self> {
        let inv = inventory::load(&g.inventory)?;
        let project = project(g);
        let pb = playbook::of_project(&project)?;
        let secrets = Secrets::resolve(&inv)?;
        Ok(Self {
            inv,
            pb,
            secrets,
            renderer: Renderer::new(&project),
        })
    }
}

/// Where the playbook and templates come from; a project folder is named
/// on stderr, since its playbook runs as root on every server.
fn project(g: &Global) -> Project {
    let project = Project::discover(g.project.as_deref());
    if let (Some(dir), false) = (project.dir(), g.quiet) {
        eprintln!(
            "note: playbook and templates from {}: its files override the built-in ones",
            dir.display()
        );
    }
    project
}

/// The servers a command works on: those with `role` (every server
/// without one), narrowed by `--limit`; a name `--limit` gives that the
/// inventory lacks is bad input.
fn servers<'i>(
    g: &Global,
    inv: &'i Loaded,
    role: Option<Role>,
) -> Result<Vec<&'i Server>, InputError> {
    let selected = g.limit(inv)?;
    Ok(inv
        .inventory
        .servers
        .0
        .iter()
        .filter(|s| role.is_none_or(|r| s.has(r)) && selected(s))
        .collect())
}

/// The engine over SSH, with the global options.
fn engine<'a>(g: &Global, out: &'a dyn Reporter, secrets: &'a Secrets) -> Engine<'a, SshConnector> {
    Engine {
        connector: &SshConnector,
        out,
        secrets,
        forks: g.forks,
    }
}

/// Splits per-server outcomes: the results, the errors as reports show
/// them (each also reported as it is found), and the failures that decide
/// the exit code.
fn split<'r, T: Clone>(
    out: &dyn Reporter,
    outcomes: &'r [Result<T, HostFailure>],
) -> (Vec<T>, Vec<HostError>, Vec<&'r HostFailure>) {
    let (mut results, mut errors, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for o in outcomes {
        match o {
            Ok(r) => results.push(r.clone()),
            Err(e) => {
                out.report(Event::Message {
                    text: format!("error: {e}"),
                });
                errors.push(HostError::from(e));
                failures.push(e);
            }
        }
    }
    (results, errors, failures)
}
