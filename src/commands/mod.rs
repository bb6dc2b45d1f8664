//! One module per subcommand, and what several of them share to start
//! (load and render everything, an engine over SSH) and to end (outcomes
//! split into results, errors to report and failures for the exit code).

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
use crate::inventory::{self, Loaded};
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
        let project = Project::discover(g.project.as_deref());
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
