//! Command-line interface: argument parsing, the reporter, and the mapping
//! from errors to documented exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::commands;
use crate::engine::HostFailure;
use crate::error::InputError;
use crate::transport::Unreachable;

/// The version of every `--json` document; raised when a field changes
/// meaning or goes away (new fields do not raise it).
pub const SCHEMA_VERSION: u32 = 1;

/// Prints a command's result as a `--json` document.
pub fn print_json<T: serde::Serialize>(command: &str, body: &T) -> anyhow::Result<()> {
    #[derive(serde::Serialize)]
    struct Doc<'a, T> {
        schema_version: u32,
        command: &'a str,
        #[serde(flatten)]
        body: &'a T,
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&Doc {
            schema_version: SCHEMA_VERSION,
            command,
            body,
        })?
    );
    Ok(())
}

/// Exit codes, documented in README.
pub mod exit {
    pub const OK: u8 = 0;
    /// A step, a check or a command failed.
    pub const FAILED: u8 = 1;
    /// Bad input: nothing was contacted.
    pub const BAD_INPUT: u8 = 2;
    /// A server could not be reached.
    pub const UNREACHABLE: u8 = 3;
    /// `provision --check`: changes are pending.
    pub const CHANGES_PENDING: u8 = 4;
    /// `restart` outside a maintenance window (without --force).
    pub const OUTSIDE_WINDOW: u8 = 5;
    /// Another foobar run holds the server lock.
    pub const LOCKED: u8 = 6;

    /// The one rule of every command that contacts servers, when several
    /// codes apply (README's table says the same): something failed on a
    /// server that was reached (1) outranks a server locked by another run
    /// (6), which outranks an unreachable server (3), which outranks
    /// changes pending in check mode (4). A failure needs fixing whatever
    /// else happened; a lock or an unreachable server only needs another
    /// try.
    pub fn of(failed: bool, stopped: &[&crate::engine::HostFailure], pending: bool) -> u8 {
        use crate::engine::HostFailure;
        if failed {
            FAILED
        } else if stopped.iter().any(|f| matches!(f, HostFailure::Locked(_))) {
            LOCKED
        } else if !stopped.is_empty() {
            UNREACHABLE
        } else if pending {
            CHANGES_PENDING
        } else {
            OK
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "foobar",
    version,
    about = "Provision a one-server web stack (DNS, nginx, app server, MariaDB) over SSH",
    after_help = "Examples:\n  foobar lab up                      # boot the local lab server(s)\n  foobar provision                   # provision inventory/lab.yml\n  foobar provision --check --diff    # show what would change\n  foobar -i inventory/foobar.yml render --out /tmp/rendered\n  foobar dns-check --json            # www and the apex at every nameserver\n  foobar restart app                 # graceful, inside a maintenance window\n  foobar lab ssh web1 systemctl status nginx"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Inventory file.
    #[arg(
        short,
        long,
        global = true,
        env = "FOOBAR_INVENTORY",
        default_value = "inventory/lab.yml"
    )]
    pub inventory: PathBuf,
    /// A folder whose playbooks/ and templates/ override the built-in ones
    /// file by file (default: the current folder when it holds a `foobar-project` file).
    #[arg(long, global = true, env = "FOOBAR_PROJECT")]
    pub project: Option<PathBuf>,
    /// -v: every step, every command run on the servers and how long each
    /// phase took; -vv: also what each command printed.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Results (and failures) as JSON on stdout: `schema_version`, then the
    /// command's document; schemas in schemas/.
    #[arg(long, global = true)]
    pub json: bool,
    /// How many servers to work on at once.
    #[arg(long, global = true, default_value_t = crate::engine::DEFAULT_FORKS, value_parser = forks)]
    pub forks: usize,
    /// Only these servers (repeatable), for every command that contacts
    /// servers.
    #[arg(long, global = true, value_name = "NAME")]
    pub limit: Vec<String>,
}

impl Global {
    /// Whether `--limit` lets `server` in (every server without it). A name
    /// the inventory does not have is bad input, found before any
    /// connection.
    pub fn limit<'i>(
        &self,
        inv: &'i crate::inventory::Loaded,
    ) -> Result<impl Fn(&crate::inventory::Server) -> bool + 'i, crate::error::InputError> {
        for name in &self.limit {
            if inv.server(name).is_none() {
                return Err(crate::error::InputError::new(
                    &inv.path,
                    format!("--limit {name}: no server of that name in the inventory"),
                ));
            }
        }
        let names = self.limit.clone();
        Ok(move |s: &crate::inventory::Server| {
            names.is_empty() || names.iter().any(|n| n == s.name.as_str())
        })
    }

    pub fn verbosity(&self) -> crate::progress::Verbosity {
        use crate::progress::Verbosity;
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::Debug,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Install and configure the whole stack on the inventory's servers.
    Provision(commands::provision::ProvisionArgs),
    /// Ship the app alone: its config, dependencies, a new release (build,
    /// release command, switch), a graceful reload and the checks; a
    /// release that fails them is rolled back.
    Deploy(commands::deploy::DeployArgs),
    /// Make the previous (or the named) release live again, gracefully.
    Rollback(commands::rollback::RollbackArgs),
    /// List the releases on each app server, the live one marked.
    Releases(commands::releases::ReleasesArgs),
    /// Show the services' logs (journal) over SSH; -f follows them.
    Logs(commands::logs::LogsArgs),
    /// One screen for the whole inventory, read live; exit 0 only when
    /// everything is healthy.
    Status(commands::status::StatusArgs),
    /// Prove that the zone's names resolve to the inventory's address at
    /// every authoritative nameserver (and resolvers named here).
    DnsCheck(commands::dns_check::DnsCheckArgs),
    /// Render every file locally, without contacting any server.
    Render(commands::render::RenderArgs),
    /// Restart services inside a maintenance window, dropping no request
    /// it can avoid dropping; checks every hop after each, rolls back a
    /// failing release.
    Restart(commands::restart::RestartArgs),
    /// Show or take away the maintenance page by hand.
    Maintenance(commands::maintenance::MaintenanceArgs),
    /// Draw the inventory's design: browser, DNS, servers, ports (SVG or Mermaid).
    Diagram(commands::diagram::DiagramArgs),
    /// Write a commented inventory and a minimal app for your site.
    Init(commands::init::InitArgs),
    /// Disposable local Debian 12 servers for trying foobar and for tests.
    Lab(commands::lab::LabArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one per command into DIR.
    Man {
        /// Write foobar.1 and foobar-<command>.1 here.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Bad arguments are bad input (exit 2), in JSON too when asked.
            if e.use_stderr() && std::env::args().any(|a| a == "--json") {
                print_error_json(
                    "",
                    "bad_input",
                    &e.kind().to_string(),
                    None,
                    exit::BAD_INPUT,
                );
                return ExitCode::from(exit::BAD_INPUT);
            }
            e.exit();
        }
    };
    let json = cli.global.json;
    let command = command_name(&cli.command);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = exit_code_for(&err);
            if json {
                let input = err.chain().find_map(|c| c.downcast_ref::<InputError>());
                let message = input.map_or_else(|| chain(&err), |e| e.message.clone());
                print_error_json(command, error_kind(&err), &message, input, code);
            }
            match err.chain().find_map(|c| c.downcast_ref::<InputError>()) {
                // Bad input is shown as rustc shows errors: the line, a caret.
                Some(input) => {
                    // Lossy: a file that is not UTF-8 still shows its line.
                    let source = std::fs::read(&input.file)
                        .ok()
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    let colour = anstream::AutoStream::choice(&std::io::stderr())
                        != anstream::ColorChoice::Never;
                    eprintln!("{}", input.render(source.as_deref(), colour));
                }
                None => eprintln!("error: {}", chain(&err)),
            }
            ExitCode::from(code)
        }
    }
}

fn command_name(cmd: &Cmd) -> &'static str {
    match cmd {
        Cmd::Provision(_) => "provision",
        Cmd::Deploy(_) => "deploy",
        Cmd::Rollback(_) => "rollback",
        Cmd::Releases(_) => "releases",
        Cmd::Logs(_) => "logs",
        Cmd::Status(_) => "status",
        Cmd::DnsCheck(_) => "dns-check",
        Cmd::Render(_) => "render",
        Cmd::Restart(_) => "restart",
        Cmd::Maintenance(_) => "maintenance",
        Cmd::Lab(_) => "lab",
        Cmd::Init(_) => "init",
        Cmd::Diagram(_) => "diagram",
        Cmd::Completions { .. } => "completions",
        Cmd::Man { .. } => "man",
    }
}

/// A failure as a `--json` document: `error.kind` is stable, `exit_code`
/// is the process's, `location` is there for bad input with a place.
fn print_error_json(
    command: &str,
    kind: &str,
    message: &str,
    input: Option<&InputError>,
    exit_code: u8,
) {
    let location = input.map(|e| {
        serde_json::json!({
            "file": e.file.display().to_string(),
            "line": (e.line > 0).then_some(e.line),
            "column": (e.line > 0).then_some(e.column),
        })
    });
    let doc = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "error": {
            "kind": kind,
            "message": message,
            "location": location,
            "help": input.and_then(|e| e.help.clone()),
            "exit_code": exit_code,
        }
    });
    println!("{doc:#}");
}

fn error_kind(err: &anyhow::Error) -> &'static str {
    match exit_code_for(err) {
        exit::BAD_INPUT => "bad_input",
        exit::UNREACHABLE => "unreachable",
        exit::LOCKED => "locked",
        exit::OUTSIDE_WINDOW => "outside_window",
        _ => "failed",
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = &cli.global;
    match cli.command {
        Cmd::Provision(args) => commands::provision::run(g, args).await,
        Cmd::Deploy(args) => commands::deploy::run(g, args).await,
        Cmd::Rollback(args) => commands::rollback::run(g, args).await,
        Cmd::Releases(args) => commands::releases::run(g, args).await,
        Cmd::Logs(args) => commands::logs::run(g, args).await,
        Cmd::Status(args) => commands::status::run(g, args).await,
        Cmd::Render(args) => commands::render::run(g, args),
        Cmd::DnsCheck(args) => commands::dns_check::run(g, args).await,
        Cmd::Restart(args) => commands::restart::run(g, args).await,
        Cmd::Maintenance(args) => commands::maintenance::run(g, args).await,
        Cmd::Lab(args) => commands::lab::run(g, args),
        Cmd::Init(args) => commands::init::run(g, args),
        Cmd::Diagram(args) => commands::diagram::run(g, args),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "foobar", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Cmd::Man { out: None } => {
            // `foobar man | head` closes the pipe early: not an error.
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
            Ok(exit::OK)
        }
        Cmd::Man { out: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(Cli::command(), &dir)?;
            Ok(exit::OK)
        }
    }
}

/// `--forks`: 1 to 256 servers at once.
fn forks(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a number of servers from 1 to 256")),
    }
}

/// The error and its causes on one line, without a backtrace.
fn chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<InputError>()) {
        exit::BAD_INPUT
    } else if err.chain().any(|c| c.is::<crate::windows::OutsideWindow>()) {
        exit::OUTSIDE_WINDOW
    } else if err.chain().any(|c| {
        c.is::<Unreachable>()
            || c.downcast_ref::<HostFailure>()
                .is_some_and(|f| matches!(f, HostFailure::Unreachable(_)))
    }) {
        exit::UNREACHABLE
    } else {
        exit::FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's exit-code table: 1 over 6 over 3 over 4.
    #[test]
    fn one_exit_code_rule_when_several_apply() {
        use crate::engine::{HostFailure, Locked};
        use crate::transport::Unreachable;
        let locked = HostFailure::Locked(Locked {
            host: "a".into(),
            owner: "b".into(),
        });
        let unreachable = HostFailure::Unreachable(Unreachable {
            host: "c".into(),
            message: "down".into(),
            transient: false,
        });
        let both = [&unreachable, &locked];
        assert_eq!(exit::of(true, &both, true), exit::FAILED);
        assert_eq!(exit::of(false, &both, true), exit::LOCKED);
        assert_eq!(exit::of(false, &[&unreachable], true), exit::UNREACHABLE);
        assert_eq!(exit::of(false, &[], true), exit::CHANGES_PENDING);
        assert_eq!(exit::of(false, &[], false), exit::OK);
    }

    /// Every command that contacts servers ends by the one rule.
    #[test]
    fn commands_decide_their_exit_code_by_the_rule() {
        for cmd in [
            "converged",
            "releases",
            "rollback",
            "status",
            "logs",
            "restart",
        ] {
            let text = std::fs::read_to_string(format!("src/commands/{cmd}.rs")).unwrap();
            assert!(text.contains("exit::of("), "{cmd}");
            assert!(!text.contains("exit::FAILED"), "{cmd} decides on its own");
        }
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn man_pages_for_every_command() {
        let dir = tempfile::tempdir().unwrap();
        clap_mangen::generate_to(Cli::command(), dir.path()).unwrap();
        for page in [
            "foobar.1",
            "foobar-provision.1",
            "foobar-restart.1",
            "foobar-lab-up.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(
                text.starts_with(".ie"),
                "{page}: {}",
                &text[..40.min(text.len())]
            );
            assert!(text.contains(".TH"), "{page}");
        }
    }
}
