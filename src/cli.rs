//! Command-line interface: argument parsing, the reporter, and the mapping
//! from errors to documented exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::commands;
use crate::engine::HostFailure;
use crate::error::{InputError, InputErrors};
use crate::transport::Unreachable;

/// The version of every `--json` document; raised when a field changes
/// meaning or goes away (new fields do not raise it).
pub const SCHEMA_VERSION: u32 = 1;

/// Standard output refused what a command printed (a full disk, a reader
/// gone): the run ends with this error, exit 1, where `println!` would
/// panic.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output: {0}")]
pub struct StdoutFailed(#[from] std::io::Error);

/// Writes to standard output, flushed: a failure is an error here, not a
/// line lost unseen when the buffer is dropped at exit.
pub fn write_stdout(text: std::fmt::Arguments) -> Result<(), StdoutFailed> {
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(text).and_then(|()| out.flush());
    if let Err(e) = &written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader stopped early (`foobar render | head`): ended by
            // SIGPIPE, quietly, as any Unix tool. Blocked by the parent, it
            // stays pending and the error is reported instead.
            // SAFETY: restoring the default action and raising a signal.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
    }
    Ok(written?)
}

/// `println!` that returns its failure (`StdoutFailed`) instead of
/// panicking: `outln!("...")?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// A `--json` document: `schema_version`, `command`, then the body's
/// fields.
#[derive(serde::Serialize)]
struct Doc<'a, T> {
    schema_version: u32,
    command: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

impl<'a, T> Doc<'a, T> {
    fn new(command: &'a str, body: &'a T) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            command,
            body,
        }
    }
}

/// Prints a command's result as a `--json` document.
pub fn print_json<T: serde::Serialize>(command: &str, body: &T) -> anyhow::Result<()> {
    outln!(
        "{}",
        serde_json::to_string_pretty(&Doc::new(command, body))?
    )?;
    Ok(())
}

/// Prints one `--json` document on one line, for a command that prints a
/// stream of them (`logs`: one per log line).
pub fn print_json_line<T: serde::Serialize>(command: &str, body: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string(&Doc::new(command, body))?)?;
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
    about = "Provision a web stack (DNS, nginx, app server, MariaDB) over SSH: on one server, or several without a single point of failure",
    after_help = "Examples:\n  foobar lab up                      # boot the local lab server(s)\n  foobar provision                   # the inventory here: inventory.yml or foobar.yml\n  foobar provision --check --diff    # show what would change\n  foobar -i inventory/foobar.yml render --out /tmp/rendered\n  foobar dns-check --json            # www and the apex at every nameserver\n  foobar restart app                 # graceful, inside a maintenance window\n  foobar lab ssh web1 systemctl status nginx"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Options of every command; those about the inventory and its servers
/// only where they mean something (`SERVER_OPTIONS`).
#[derive(Debug, Args)]
pub struct Global {
    /// Inventory file [default: $FOOBAR_INVENTORY, else inventory.yml or
    /// foobar.yml in the current folder, else inventory/lab.yml].
    #[arg(short, long, global = true)]
    pub inventory: Option<PathBuf>,
    /// Set an inventory value for this run (repeatable): KEY a dotted path
    /// into the inventory (app.workers, servers.web1.address), VALUE one
    /// YAML scalar.
    #[arg(short = 'e', long = "set", global = true, value_name = "KEY=VALUE", value_parser = crate::inventory::Override::parse)]
    pub set: Vec<crate::inventory::Override>,
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
    /// Only the servers these patterns pick (repeatable, or comma
    /// separated): a name, a glob (web*), a role (web) or all; !PATTERN
    /// leaves servers out, &PATTERN keeps only those it picks too.
    #[arg(
        short,
        long,
        global = true,
        value_name = "PATTERN",
        value_delimiter = ','
    )]
    pub limit: Vec<String>,
}

impl Global {
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
    /// Take a backup now on the backup server (the database and the
    /// uploads, into its restic repository) and wait for it.
    Backup(commands::backup::BackupArgs),
    /// List the backups the backup server holds: time, kind, size.
    Backups(commands::backups::BackupsArgs),
    /// Put the database and the uploads back from a backup (the newest,
    /// or --snapshot), under the maintenance page; what it replaces is
    /// moved aside.
    Restore(commands::restore::RestoreArgs),
    /// Show the services' logs (journal) over SSH; -f follows them.
    Logs(commands::logs::LogsArgs),
    /// Run a command in the app's live release on its servers, as the app
    /// runs (its user, its environment); output prefixed by server.
    Exec(commands::exec::ExecArgs),
    /// Open the app's console (manage.py shell, rails console, artisan
    /// tinker), or a command, in its live release, with a terminal.
    Console(commands::console::ConsoleArgs),
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
    Completions(commands::completions::CompletionsArgs),
    /// Print a manual page (roff), or write them all under DIR.
    Man(commands::man::ManArgs),
}

/// The options about the inventory and its servers: clap's id, and as a
/// user writes it. Each only where it means something (`takes`):
/// elsewhere it is hidden from the command's help and refused when given
/// on the command line; as an environment variable (FOOBAR_INVENTORY,
/// FOOBAR_PROJECT) it is a standing setting, and left alone.
const SERVER_OPTIONS: [(&str, &str); 5] = [
    ("inventory", "-i/--inventory"),
    ("set", "-e/--set"),
    ("project", "--project"),
    ("forks", "--forks"),
    ("limit", "-l/--limit"),
];

/// Whether `command` takes the option `id` of `SERVER_OPTIONS`.
fn takes(command: &str, id: &str) -> bool {
    // The commands that work on the servers `-l` picks, several at once.
    let fans_out = matches!(
        command,
        "provision"
            | "deploy"
            | "rollback"
            | "releases"
            | "logs"
            | "exec"
            | "status"
            | "restart"
            | "maintenance"
    );
    match id {
        // `completions`: the server names `--limit` completes.
        "inventory" | "set" => !matches!(command, "init" | "man"),
        "project" => matches!(
            command,
            "provision" | "deploy" | "rollback" | "restore" | "status" | "render" | "restart"
        ),
        "forks" => fans_out || matches!(command, "backup" | "backups" | "restore"),
        "limit" => fans_out || matches!(command, "dns-check" | "render" | "console"),
        _ => true,
    }
}

/// The command line as parsed: each command's help without the options
/// of `SERVER_OPTIONS` it does not take.
pub fn command() -> clap::Command {
    fn hide(cmd: clap::Command, id: &'static str) -> clap::Command {
        cmd.mut_args(|a| if a.get_id() == id { a.hide(true) } else { a })
            .mut_subcommands(|sub| hide(sub, id))
    }
    let mut cmd = Cli::command();
    // Built: the global options are in every command from here on.
    cmd.build();
    for (id, _) in SERVER_OPTIONS {
        cmd = cmd.mut_subcommands(|sub| match takes(sub.get_name(), id) {
            true => sub,
            false => hide(sub, id),
        });
    }
    cmd
}

/// `cmd` as documented and completed, where what is hidden still counts
/// (clap_complete offers hidden options): each option of `SERVER_OPTIONS`
/// before any command and in the commands that take it, nowhere else.
pub fn placed(cmd: clap::Command) -> clap::Command {
    fn add(cmd: clap::Command, arg: &clap::Arg) -> clap::Command {
        cmd.arg(arg.clone()).mut_subcommands(|sub| add(sub, arg))
    }
    let mut cmd = cmd;
    for (id, _) in SERVER_OPTIONS {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == id)
            .expect("an option of Global")
            .clone()
            .global(false);
        cmd = cmd.mut_arg(id, |a| a.global(false)).mut_subcommands(|sub| {
            match takes(sub.get_name(), id) {
                true => add(sub, &arg),
                false => sub,
            }
        });
    }
    cmd
}

/// An option of `SERVER_OPTIONS` given on the command line to a command
/// it means nothing to: refused as clap refuses an option it does not
/// know, with the commands it is for.
fn refuse_misplaced(matches: &clap::ArgMatches) -> Result<(), clap::Error> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(());
    };
    for (id, flag) in SERVER_OPTIONS {
        if takes(name, id) || sub.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let mut cmd = command();
        let for_whom: Vec<&str> = cmd
            .get_subcommands()
            .map(|c| c.get_name())
            .filter(|c| takes(c, id))
            .collect();
        let for_whom = for_whom.join(", ");
        let usage = cmd
            .find_subcommand_mut(name)
            .expect("the command parsed")
            .render_usage();
        let mut e = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(&cmd);
        e.insert(ContextKind::InvalidArg, ContextValue::String(flag.into()));
        e.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![format!(
                "{name} does not take {flag}; it is for {for_whom}"
            )
            .into()]),
        );
        e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
        return Err(e);
    }
    Ok(())
}

pub fn main() -> ExitCode {
    use clap::FromArgMatches;
    let parsed = command()
        .try_get_matches()
        .and_then(|m| refuse_misplaced(&m).and_then(|()| Cli::from_arg_matches(&m)));
    let cli = match parsed {
        Ok(cli) => cli,
        // --help and --version: output like any other, whose failure is told.
        Err(e) if !e.use_stderr() => {
            return match e.print() {
                Ok(()) => ExitCode::from(exit::OK),
                Err(failed) => {
                    tell(format_args!("error: {}", StdoutFailed(failed)));
                    ExitCode::from(exit::FAILED)
                }
            };
        }
        Err(e) => {
            // Bad arguments are bad input (exit 2), in JSON too when asked.
            if std::env::args_os().any(|a| a == "--json") {
                let written = print_argument_error_json(&e);
                return ExitCode::from(match written {
                    Ok(()) => exit::BAD_INPUT,
                    Err(failed) => {
                        tell(format_args!("error: {failed}"));
                        exit::FAILED
                    }
                });
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
            let mut code = exit_code_for(&err);
            let inputs = input_errors(&err);
            let input = inputs.first().copied();
            if inputs.is_empty() {
                tell(format_args!("error: {}", chain(&err)));
            }
            // Bad input is shown as rustc shows errors: the line, a caret;
            // every mistake found, then how many.
            let colour =
                anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
            for input in &inputs {
                // Only an error with a line needs the text (a file refused
                // for its size has none), read capped as it was loaded.
                // Lossy: a file that is not UTF-8 still shows its line.
                let source = (input.line > 0)
                    .then(|| crate::local_file::read_input(&input.file).ok())
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                tell(input.render(source.as_deref(), colour));
            }
            if inputs.len() > 1 {
                tell(format_args!(
                    "error: {} mistakes, nothing was contacted",
                    inputs.len()
                ));
            }
            // The error document goes to standard output, unless that is
            // what failed.
            if json && !err.chain().any(|c| c.is::<StdoutFailed>()) {
                let message = input.map_or_else(|| chain(&err), |e| e.message.clone());
                if let Err(failed) =
                    print_error_json(command, error_kind(&err), &message, &inputs, code)
                {
                    tell(format_args!("error: {failed}"));
                    code = exit::FAILED;
                }
            }
            ExitCode::from(code)
        }
    }
}

/// A failure told on stderr. When stderr fails too there is nowhere left
/// to tell it: ignored, never a panic as `eprintln!`'s.
fn tell(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn command_name(cmd: &Cmd) -> &'static str {
    match cmd {
        Cmd::Provision(_) => "provision",
        Cmd::Deploy(_) => "deploy",
        Cmd::Rollback(_) => "rollback",
        Cmd::Releases(_) => "releases",
        Cmd::Backup(_) => "backup",
        Cmd::Backups(_) => "backups",
        Cmd::Restore(_) => "restore",
        Cmd::Logs(_) => "logs",
        Cmd::Exec(_) => "exec",
        Cmd::Console(_) => "console",
        Cmd::Status(_) => "status",
        Cmd::DnsCheck(_) => "dns-check",
        Cmd::Render(_) => "render",
        Cmd::Restart(_) => "restart",
        Cmd::Maintenance(_) => "maintenance",
        Cmd::Lab(_) => "lab",
        Cmd::Init(_) => "init",
        Cmd::Diagram(_) => "diagram",
        Cmd::Completions(_) => "completions",
        Cmd::Man(_) => "man",
    }
}

/// A failure as a `--json` document: `error.kind` is stable, `exit_code`
/// is the process's, `location` is there for bad input with a place;
/// `errors` holds every mistake of bad input found (the first is
/// `error`'s), or the one failure.
fn print_error_json(
    command: &str,
    kind: &str,
    message: &str,
    inputs: &[&InputError],
    exit_code: u8,
) -> Result<(), StdoutFailed> {
    let location = |e: &InputError| {
        serde_json::json!({
            "file": e.file.display().to_string(),
            "line": (e.line > 0).then_some(e.line),
            "column": (e.line > 0).then_some(e.column),
        })
    };
    let input = inputs.first().copied();
    let errors: Vec<serde_json::Value> = if inputs.is_empty() {
        vec![mistake_json(message, None, None)]
    } else {
        inputs
            .iter()
            .map(|e| mistake_json(&e.message, Some(location(e)), e.help.as_deref()))
            .collect()
    };
    let doc = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "error": {
            "kind": kind,
            "message": message,
            "location": input.map(location),
            "help": input.and_then(|e| e.help.clone()),
            "exit_code": exit_code,
        },
        "errors": errors,
    });
    outln!("{doc:#}")
}

/// One entry of an error document's `errors`.
fn mistake_json(
    message: &str,
    location: Option<serde_json::Value>,
    help: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "message": message,
        "location": location,
        "help": help,
    })
}

/// Bad arguments as a `--json` failure: clap's own words (what is wrong,
/// its tips as `help`), the argument and value concerned and the values
/// allowed, and the command they were given to (null when that is what
/// was not understood).
fn print_argument_error_json(e: &clap::Error) -> Result<(), StdoutFailed> {
    use clap::error::{ContextKind, ContextValue};
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::StyledStr(s)) => vec![s.to_string()],
        Some(ContextValue::StyledStrs(v)) => v.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    let (message, tips) = clap_words(&e.render().to_string());
    let name = strings(ContextKind::InvalidArg)
        .into_iter()
        .chain(strings(ContextKind::InvalidSubcommand))
        .next();
    let argument = name.map(|name| {
        let allowed = [ContextKind::ValidValue, ContextKind::ValidSubcommand]
            .into_iter()
            .flat_map(strings)
            .collect::<Vec<_>>();
        serde_json::json!({
            "name": name,
            "value": strings(ContextKind::InvalidValue).into_iter().next(),
            "possible_values": allowed,
        })
    });
    // The command the arguments were meant for, as far as they say.
    let command = Cli::command()
        .ignore_errors(true)
        .try_get_matches()
        .ok()
        .and_then(|m| {
            let mut names = Vec::new();
            let mut at = &m;
            while let Some((name, sub)) = at.subcommand() {
                names.push(name.to_string());
                at = sub;
            }
            (!names.is_empty()).then(|| names.join(" "))
        });
    let help = (!tips.is_empty()).then(|| tips.join("; "));
    let doc = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "error": {
            "kind": "bad_input",
            "message": message,
            "location": null,
            "help": help,
            "argument": argument,
            "exit_code": exit::BAD_INPUT,
        },
        "errors": [mistake_json(&message, None, help.as_deref())],
    });
    outln!("{doc:#}")
}

/// clap's error text split into what is wrong (after `error: `, up to the
/// first blank line, on one line) and its tips.
fn clap_words(rendered: &str) -> (String, Vec<String>) {
    let mut paragraphs = rendered.split("\n\n");
    let first = paragraphs.next().unwrap_or_default();
    let message = first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let tips = paragraphs
        .flat_map(str::lines)
        .filter_map(|l| l.trim_start().strip_prefix("tip: "))
        .map(str::to_string)
        .collect();
    (message, tips)
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
        Cmd::Backup(args) => commands::backup::run(g, args).await,
        Cmd::Backups(args) => commands::backups::run(g, args).await,
        Cmd::Restore(args) => commands::restore::run(g, args).await,
        Cmd::Logs(args) => commands::logs::run(g, args).await,
        Cmd::Exec(args) => commands::exec::run(g, args).await,
        Cmd::Console(args) => commands::console::run(g, args).await,
        Cmd::Status(args) => commands::status::run(g, args).await,
        Cmd::Render(args) => commands::render::run(g, args),
        Cmd::DnsCheck(args) => commands::dns_check::run(g, args).await,
        Cmd::Restart(args) => commands::restart::run(g, args).await,
        Cmd::Maintenance(args) => commands::maintenance::run(g, args).await,
        Cmd::Lab(args) => commands::lab::run(g, args),
        Cmd::Init(args) => commands::init::run(g, args),
        Cmd::Diagram(args) => commands::diagram::run(g, args),
        Cmd::Completions(args) => commands::completions::run(g, args),
        Cmd::Man(args) => commands::man::run(g, args),
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

/// The bad input an error is, each mistake (none when it is not).
fn input_errors(err: &anyhow::Error) -> Vec<&InputError> {
    err.chain()
        .find_map(|c| {
            c.downcast_ref::<InputErrors>()
                .map(|all| all.0.iter().collect())
                .or_else(|| c.downcast_ref::<InputError>().map(|one| vec![one]))
        })
        .unwrap_or_default()
}

fn exit_code_for(err: &anyhow::Error) -> u8 {
    if !input_errors(err).is_empty() {
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
            "backup",
            "backups",
            "restore",
            "rollback",
            "status",
            "logs",
            "exec",
            "restart",
        ] {
            let text = std::fs::read_to_string(format!("src/commands/{cmd}.rs")).unwrap();
            assert!(text.contains("exit::of("), "{cmd}");
            assert!(!text.contains("exit::FAILED"), "{cmd} decides on its own");
        }
    }

    #[test]
    fn cli_is_consistent() {
        command().debug_assert();
        placed(Cli::command()).debug_assert();
    }

    /// Every option of `SERVER_OPTIONS` is for some command, and not for
    /// `init`.
    #[test]
    fn server_options_are_for_some_commands() {
        let cmd = Cli::command();
        for (id, _) in SERVER_OPTIONS {
            assert!(
                cmd.get_subcommands().any(|c| takes(c.get_name(), id)),
                "{id}"
            );
            assert!(!takes("init", id), "{id}");
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        use clap::FromArgMatches;
        let m = command().try_get_matches_from(args)?;
        refuse_misplaced(&m)?;
        Cli::from_arg_matches(&m)
    }

    /// exec's and console's commands come after `--`, whatever their own
    /// options; exec needs one, console does not.
    #[test]
    fn exec_and_console_take_a_command_after_a_double_dash() {
        let cli = parse(&[
            "foobar", "exec", "--role", "app", "-l", "web1", "--", "python", "-m", "x", "-l",
        ])
        .unwrap();
        let Cmd::Exec(args) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(args.role.as_deref(), Some("app"));
        assert_eq!(args.command, ["python", "-m", "x", "-l"]);
        assert_eq!(cli.global.limit, ["web1"]);
        for bad in [
            &["foobar", "exec"][..],
            &["foobar", "exec", "env"],
            &["foobar", "exec", "--role", "mail", "--", "env"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let cli = parse(&["foobar", "console"]).unwrap();
        let Cmd::Console(args) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert!(args.command.is_empty());
        let cli = parse(&[
            "foobar", "console", "-l", "web2", "--", "python", "-c", "print(1)",
        ])
        .unwrap();
        let Cmd::Console(args) = cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(args.command, ["python", "-c", "print(1)"]);
        assert_eq!(cli.global.limit, ["web2"]);
        // One server: no --forks.
        assert!(parse(&["foobar", "console", "--forks", "3"]).is_err());
        assert!(parse(&["foobar", "exec", "--forks", "3", "--", "env"]).is_ok());
    }

    #[test]
    fn man_pages_for_every_command() {
        let pages = commands::man::pages();
        for name in [
            "foobar.1",
            "foobar-provision.1",
            "foobar-restart.1",
            "foobar-lab-up.1",
            "foobar-exec.1",
            "foobar-console.1",
            "foobar-inventory.5",
        ] {
            let page = pages.iter().find(|p| p.file_name() == name).expect(name);
            assert!(page.text.starts_with(".ie"), "{name}: {}", &page.text[..40]);
            assert_eq!(page.text.matches(".ie").count(), 1, "{name}: one preamble");
            assert!(page.text.contains(".TH"), "{name}");
        }
    }
}
