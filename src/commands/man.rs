//! `foobar man [PAGE]`: the manual. One page per command, made from the
//! command line's own definition (clap_mangen), foobar(1) with what the
//! definition cannot say (exit status, environment, files), and
//! foobar-inventory(5), the inventory's format.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use crate::cli::{exit, Cli, Global};
use crate::error::{did_you_mean, InputError};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page to print: a command (`provision`, `lab-up`), or `inventory`
    /// for foobar-inventory(5); default: foobar(1).
    #[arg(value_name = "PAGE", conflicts_with = "out")]
    pub page: Option<String>,
    /// Write every page under DIR, a manual's root: DIR/man1/foobar.1,
    /// DIR/man1/foobar-<command>.1, DIR/man5/foobar-inventory.5.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// One manual page.
pub struct Page {
    /// `foobar-provision`
    pub name: String,
    pub section: u8,
    /// roff
    pub text: String,
}

impl Page {
    /// `foobar-provision.1`
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.name, self.section)
    }
}

/// foobar-inventory(5), written by hand: the inventory's sections and keys.
const INVENTORY_PAGE: &str = include_str!("../../docs/foobar-inventory.5");

pub fn run(g: &Global, args: ManArgs) -> anyhow::Result<u8> {
    let pages = pages();
    if let Some(dir) = args.out {
        let mut written = Vec::new();
        for page in &pages {
            let folder = dir.join(format!("man{}", page.section));
            let path = folder.join(page.file_name());
            std::fs::create_dir_all(&folder)
                .and_then(|()| std::fs::write(&path, &page.text))
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path.display().to_string());
        }
        if g.json {
            crate::cli::print_json("man", &serde_json::json!({ "written": written }))?;
        }
        return Ok(exit::OK);
    }
    let wanted = match args.page.as_deref() {
        None | Some("foobar") => "foobar".to_string(),
        Some(p) => format!("foobar-{p}"),
    };
    let Some(page) = pages.iter().find(|p| p.name == wanted) else {
        let names: Vec<&str> = pages
            .iter()
            .filter_map(|p| p.name.strip_prefix("foobar-"))
            .collect();
        let asked = args.page.unwrap_or_default();
        let mut e = InputError::new(
            Path::new("PAGE"),
            format!(
                "no manual page `{asked}`: name a command or `inventory` ({})",
                names.join(", ")
            ),
        );
        if let Some(close) = did_you_mean(&asked, &names) {
            e = e.with_help(format!("did you mean `{close}`?"));
        }
        return Err(e.into());
    };
    if g.json {
        crate::cli::print_json(
            "man",
            &serde_json::json!({ "page": page.file_name(), "text": page.text }),
        )?;
    } else {
        crate::cli::write_stdout(format_args!("{}", page.text))?;
    }
    Ok(exit::OK)
}

/// Every page: foobar(1), one per command and subcommand, and
/// foobar-inventory(5). `help` has none: `foobar help X` is `foobar X
/// --help`, and no page lists it.
pub fn pages() -> Vec<Page> {
    fn without_help(cmd: clap::Command) -> clap::Command {
        cmd.disable_help_subcommand(true)
            .mut_subcommands(without_help)
    }
    fn walk(cmd: &clap::Command, pages: &mut Vec<Page>) {
        pages.push(Page {
            name: cmd
                .get_display_name()
                .unwrap_or_else(|| cmd.get_name())
                .to_string(),
            section: 1,
            text: command_page(cmd),
        });
        for sub in cmd.get_subcommands() {
            walk(sub, pages);
        }
    }
    let mut cmd = crate::cli::placed(without_help(Cli::command()));
    cmd.build();
    let mut pages = Vec::new();
    walk(&cmd, &mut pages);
    pages.push(Page {
        name: "foobar-inventory".into(),
        section: 5,
        text: INVENTORY_PAGE.to_string(),
    });
    pages
}

/// A command's page in the usual order of sections: clap_mangen's, with
/// foobar(1)'s own sections before its examples, and SEE ALSO last.
fn command_page(cmd: &clap::Command) -> String {
    type Section = fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let man = Man::new(cmd.clone());
    let root = cmd.get_name() == "foobar";
    let of = |sections: &[Section]| -> Vec<String> {
        sections
            .iter()
            .map(|render| {
                let mut out = Vec::new();
                render(&man, &mut out).expect("writing to memory");
                String::from_utf8_lossy(&out).into_owned()
            })
            .collect()
    };
    let mut parts = of(&[
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ]);
    if cmd.has_subcommands() {
        parts.extend(of(&[Man::render_subcommands_section]));
    }
    if root {
        parts.push(root_sections().render());
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        parts.extend(of(&[Man::render_extra_section]));
    }
    parts.push(see_also(root).render());
    if cmd.get_version().is_some() {
        parts.extend(of(&[Man::render_version_section]));
    }
    // Each part starts with roff's preamble: the page keeps the first.
    let preamble = Roff::new().render();
    let mut text = parts[0].clone();
    for part in &parts[1..] {
        text.push_str(part.strip_prefix(preamble.as_str()).unwrap_or(part));
    }
    text
}

/// README's table of exit codes.
pub const EXIT_CODES: [(u8, &str); 7] = [
    (exit::OK, "Done: every step and every check passed (with --check: nothing to change)."),
    (exit::FAILED, "A step, a handler or an end-to-end check failed (the message names the step or hop), or output could not be written."),
    (exit::BAD_INPUT, "Bad input (inventory, playbook, template, argument), told as file:line:column; no server was contacted."),
    (exit::UNREACHABLE, "A server could not be reached (SSH refused, timed out, unknown or changed host key)."),
    (exit::CHANGES_PENDING, "provision --check: changes are pending."),
    (exit::OUTSIDE_WINDOW, "restart outside every maintenance window (without --force); the message names the next window."),
    (exit::LOCKED, "A server is locked by another foobar run (--break-lock takes a stale lock)."),
];

/// The environment foobar reads.
const ENVIRONMENT: [(&str, &str); 8] = [
    ("FOOBAR_INVENTORY", "The inventory file, when -i is not given (see FILES for where foobar looks without either)."),
    ("FOOBAR_PROJECT", "A project folder whose playbooks/ and templates/ override the built-in ones file by file, when --project is not given."),
    ("FOOBAR_NOW", "The time restart judges the maintenance windows by, when --now is not given."),
    ("FOOBAR_CACHE_DIR", "Where the Python app's downloaded wheels are kept (default $XDG_CACHE_HOME/foobar, else ~/.cache/foobar)."),
    ("NO_COLOR", "Set (to anything): no colour in errors and progress."),
    ("TERM", "dumb: no colour either."),
    ("XDG_CACHE_HOME, XDG_DATA_HOME, HOME", "Where foobar's caches, kept connections and ACME accounts live (see FILES); ~ and $HOME in the inventory's paths."),
    ("the inventory's env:NAME", "Secrets the inventory names as env:NAME (FOOBAR_DB_PASSWORD in its examples) are read from these variables."),
];

/// The files foobar reads and keeps on this machine, and what it keeps on
/// the servers.
const FILES: [(&str, &str); 11] = [
    (
        "inventory.yml, foobar.yml",
        "The inventory, in the current folder, when neither -i nor FOOBAR_INVENTORY names one (inventory.yml is what foobar init writes); -v says which file was used.",
    ),
    (
        "inventory/lab.yml",
        "Else the inventory of foobar's own lab, in its repository.",
    ),
    (
        "foobar-project",
        "Marks the current folder as a project folder (see --project).",
    ),
    (
        "playbooks/provision.yml, templates/",
        "In a project folder: the playbook and templates that override the built-in ones.",
    ),
    (
        ".foobarignore",
        "In a code base (app.source) that is not a git work tree, and its sub-folders: files never shipped, in gitignore's syntax.",
    ),
    (
        "~/.cache/foobar/ssh/",
        "SSH connections kept between runs (control sockets; mode 0700).",
    ),
    (
        "~/.cache/foobar/",
        "Downloaded wheels, by the requirements' content ($FOOBAR_CACHE_DIR).",
    ),
    (
        "~/.local/share/foobar/acme-accounts/",
        "One ACME account per CA and email ($XDG_DATA_HOME/foobar).",
    ),
    (
        "/var/lib/foobar/lab/, /var/lib/foobar/image/",
        "The lab: its servers, keys, secrets and base image.",
    ),
    (
        "/var/lib/foobar/lock",
        "On each server: the lock a run holds while it changes the server.",
    ),
    (
        "/srv/foobar/releases/, /srv/foobar/current",
        "On each app server: the releases and the live one (app.root).",
    ),
];

/// foobar(1)'s sections that the command line's definition cannot give.
fn root_sections() -> Roff {
    let mut roff = Roff::new();
    let codes: Vec<(String, &str)> = EXIT_CODES
        .iter()
        .map(|(code, text)| (code.to_string(), *text))
        .collect();
    let codes: Vec<(&str, &str)> = codes.iter().map(|(c, t)| (c.as_str(), *t)).collect();
    section(&mut roff, "EXIT STATUS", &codes);
    roff.control("PP", []);
    roff.text([roman(
        "When several apply, one rule holds for every command: 1 wins over 6, 6 over 3, 3 over 4.",
    )]);
    section(&mut roff, "ENVIRONMENT", &ENVIRONMENT);
    section(&mut roff, "FILES", &FILES);
    roff
}

/// A section of terms, each with its paragraph.
fn section(roff: &mut Roff, title: &str, rows: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, text) in rows {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

/// SEE ALSO: foobar(1) from a command's page; the inventory's format from
/// every page.
fn see_also(root: bool) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]);
    let mut refs = Vec::new();
    if !root {
        refs.extend([bold("foobar"), roman("(1), ")]);
    }
    refs.extend([
        bold("foobar-inventory"),
        roman("(5), "),
        bold("ssh"),
        roman("(1), "),
        italic("README.md"),
    ]);
    roff.text(refs);
    roff
}
