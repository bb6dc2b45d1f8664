//! One module per subcommand, and what every one that contacts servers
//! shares: to start, the input loaded and checked (`Input::load`, or the
//! inventory alone: `inventory_to_connect`; both check the files ssh is
//! given), the servers it works on (`servers`: a role, then
//! `--limit`) and the engine over SSH (`engine`); while output streams,
//! what ends it (`interrupted`); to end, the outcomes split into results,
//! errors to report and failures (`split`), and the exit code by one rule
//! (`cli::exit::of`). What `exec` and `console` run: `command_words`.

pub mod backup;
pub mod backups;
pub mod completions;
pub mod console;
mod converged;
pub mod deploy;
pub mod diagram;
pub mod dns_check;
pub mod exec;
pub mod init;
pub mod lab;
mod limit;
pub mod logs;
pub mod maintenance;
pub mod man;
pub mod provision;
pub mod releases;
pub mod render;
pub mod restart;
pub mod restore;
pub mod rollback;
pub mod status;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::Global;
use crate::engine::{Engine, HostError, HostFailure};
use crate::error::{InputError, InputErrors};
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
        let inv = inventory_to_connect(g)?;
        let project = project(g);
        let pb = playbook::of_project(&project)?;
        let secrets = Secrets::resolve(&inv)?;
        warn(g, &secrets);
        Ok(Self {
            inv,
            pb,
            secrets,
            renderer: Renderer::new(&project),
        })
    }
}

/// Where a command looks for the inventory when neither `-i` nor
/// `$FOOBAR_INVENTORY` names one, in the current folder, as Kamal looks
/// for config/deploy.yml: what `foobar init` writes, `foobar.yml`, and
/// last foobar's own lab (in its repository).
const LOOKED_FOR: [&str; 3] = [init::INVENTORY, "foobar.yml", "inventory/lab.yml"];

/// The inventory file and how it was chosen: `-i`, else
/// `$FOOBAR_INVENTORY`, else the first of `LOOKED_FOR` that is there;
/// None when none is.
fn inventory_file(g: &Global) -> Option<(PathBuf, &'static str)> {
    if let Some(path) = &g.inventory {
        return Some((path.clone(), "-i"));
    }
    if let Some(path) = std::env::var_os("FOOBAR_INVENTORY").filter(|p| !p.is_empty()) {
        return Some((path.into(), "$FOOBAR_INVENTORY"));
    }
    LOOKED_FOR
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .map(|p| (p.to_path_buf(), "found in the current folder"))
}

/// The inventory (`-v` says which file), with the values `-e` sets.
fn inventory(g: &Global) -> Result<Loaded, InputErrors> {
    let Some((path, how)) = inventory_file(g) else {
        let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
        return Err(InputError::new(
            &here,
            format!(
                "no inventory here: foobar looks for {}, {} or {} in the current folder",
                LOOKED_FOR[0], LOOKED_FOR[1], LOOKED_FOR[2]
            ),
        )
        .with_help(format!(
            "pass one with -i FILE (or FOOBAR_INVENTORY=FILE), or write {} here with `foobar init --domain example.com --address 203.0.113.10`",
            init::INVENTORY
        ))
        .into());
    };
    if g.verbose > 0 && !g.quiet {
        // A note that cannot be shown is no reason to stop.
        let _ = writeln!(
            std::io::stderr(),
            "note: inventory {} ({how})",
            path.display()
        );
    }
    inventory::with_overrides(inventory::load(&path)?, &g.set)
}

/// The inventory of a command that connects over SSH, with the files
/// ssh is given checked: a missing one is bad input, found before any
/// connection.
fn inventory_to_connect(g: &Global) -> Result<Loaded, InputErrors> {
    let inv = inventory(g)?;
    inv.check_ssh_files()?;
    Ok(inv)
}

/// Where the playbook and templates come from; a project folder is named
/// on stderr, since its playbook runs as root on every server.
fn project(g: &Global) -> Project {
    let project = Project::discover(g.project.as_deref());
    if let (Some(dir), false) = (project.dir(), g.quiet) {
        // A note that cannot be shown is no reason to stop.
        let _ = writeln!(
            std::io::stderr(),
            "note: playbook and templates from {}: its files override the built-in ones",
            dir.display()
        );
    }
    project
}

/// What reading the secrets found worth fixing, on stderr unless `-q`: no
/// reason to stop. A warning that cannot be shown is none either.
fn warn(g: &Global, secrets: &Secrets) {
    if g.quiet {
        return;
    }
    for warning in &secrets.warnings {
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
}

/// The servers a command works on: those with `role` (every server
/// without one), narrowed by `--limit`; a pattern of `--limit` that picks
/// no server is bad input.
fn servers<'i>(
    g: &Global,
    inv: &'i Loaded,
    role: Option<Role>,
) -> Result<Vec<&'i Server>, InputError> {
    let selected = limit::selection(&g.limit, inv)?;
    Ok(inv
        .inventory
        .servers
        .0
        .iter()
        .filter(|s| role.is_none_or(|r| s.has(r)) && selected(s))
        .collect())
}

/// The server with the backup role, which `backup`, `backups` and
/// `restore` work with.
fn backup_server(inv: &Loaded) -> Result<&Server, InputError> {
    inv.inventory.servers_with(Role::Backup).next().ok_or_else(|| {
        InputError::new(
            &inv.path,
            "no server has the backup role: add `backup` to the roles of the server that keeps the backups, and a `backup:` section",
        )
    })
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

/// Completes at Ctrl-C, a TERM, or when `output_failed` is notified (a
/// line standard output refused: going on would only lose more), for a
/// command whose output streams until then (`logs -f`, `exec`).
async fn interrupted(output_failed: &tokio::sync::Notify) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
        () = output_failed.notified() => {}
    }
}

/// A command given after `--` (`exec`, `console`) as shell words: each
/// word quoted, run as it is; a single word holding a space is a line of
/// shell, run by `sh -c` as the app's other commands are (`foobar exec --
/// 'python manage.py migrate && python manage.py check'`).
fn command_words(words: &[String]) -> String {
    match words {
        [line] if line.contains(char::is_whitespace) => {
            format!("sh -c {}", crate::shell::quote(line))
        }
        _ => words
            .iter()
            .map(|w| crate::shell::quote(w))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::command_words;

    #[test]
    fn a_command_is_quoted_word_by_word_and_a_line_runs_in_a_shell() {
        let words =
            |w: &[&str]| command_words(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(words(&["env"]), "env");
        assert_eq!(words(&["python", "-c", "print(1)"]), "python -c 'print(1)'");
        assert_eq!(words(&["echo", "$(id)"]), "echo '$(id)'");
        assert_eq!(
            words(&["python manage.py migrate"]),
            "sh -c 'python manage.py migrate'"
        );
    }
}
