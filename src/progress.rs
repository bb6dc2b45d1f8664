//! Progress as an event stream. The engine only emits events; a reporter
//! draws them: indicatif bars on a terminal, plain lines otherwise.
//! Progress goes to stderr so that stdout carries only results (--json).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use anstyle::AnsiColor;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    Changed,
    Failed,
}

impl StepStatus {
    fn word(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Changed => "changed",
            StepStatus::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A line for the user (lab set-up, notes).
    Message {
        text: String,
    },
    HostStarted {
        host: String,
        steps: usize,
    },
    StepStarted {
        host: String,
        step: String,
    },
    StepFinished {
        host: String,
        step: String,
        status: StepStatus,
        detail: Option<String>,
    },
    /// A command run on a server; shown with -v.
    Command {
        host: String,
        command: String,
    },
    /// What a command printed (secrets masked); shown with -vv.
    CommandOutput {
        host: String,
        code: i32,
        stdout: String,
        stderr: String,
    },
    /// A unified diff of a file (secrets already masked).
    Diff {
        host: String,
        path: String,
        diff: String,
    },
    HostFinished {
        host: String,
    },
    /// How long a phase of a server's run took (connect, facts, plan,
    /// lock, apply, checks); shown with -v.
    Phase {
        host: String,
        phase: &'static str,
        elapsed_ms: u64,
    },
}

pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

/// How much progress to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// What changed and what failed.
    Normal,
    /// `-v`: also unchanged steps, every command, the time of each phase.
    Verbose,
    /// `-vv`: also what each command printed.
    Debug,
}

/// Picks the reporter for this run: bars on a terminal, lines otherwise;
/// colour only where the terminal and `NO_COLOR`/`TERM` allow it.
pub fn reporter(level: Verbosity) -> Box<dyn Reporter> {
    let colour = anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never;
    if std::io::stderr().is_terminal()
        && std::env::var("TERM").as_deref() != Ok("dumb")
        && level > Verbosity::Quiet
    {
        Box::new(Bars::new(level, colour))
    } else {
        Box::new(Lines { level, colour })
    }
}

/// Plain lines, for CI logs and pipes.
pub struct Lines {
    pub level: Verbosity,
    pub colour: bool,
}

impl Reporter for Lines {
    fn report(&self, event: Event) {
        if let Some(line) = line_for(&event, self.level, self.colour) {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    }
}

/// The text shown for an event, or None when it is not shown.
fn line_for(event: &Event, level: Verbosity, colour: bool) -> Option<String> {
    let verbose = level >= Verbosity::Verbose;
    let quiet = level == Verbosity::Quiet;
    match event {
        Event::Message { text } if quiet && !text.starts_with("error") => None,
        Event::Message { text } => Some(terminal_safe(text)),
        Event::HostStarted { .. } if quiet => None,
        Event::HostStarted { host, steps } => Some(format!("[{host}] {steps} steps")),
        Event::StepStarted { .. } | Event::HostFinished { .. } => None,
        Event::StepFinished {
            host,
            step,
            status,
            detail,
        } => {
            let shown = match status {
                StepStatus::Failed => true,
                StepStatus::Changed => !quiet,
                StepStatus::Ok => verbose,
            };
            if !shown {
                return None;
            }
            let word = paint(
                colour,
                match status {
                    StepStatus::Changed => AnsiColor::Yellow,
                    StepStatus::Failed => AnsiColor::Red,
                    StepStatus::Ok => AnsiColor::Green,
                },
                status.word(),
            );
            let mut line = format!("[{host}] {word}: {step}");
            if let Some(d) = detail {
                line.push_str(&format!(" ({})", terminal_safe(d)));
            }
            Some(line)
        }
        Event::Command { host, command } if verbose => Some(format!("[{host}] $ {command}")),
        Event::Command { .. } => None,
        Event::CommandOutput {
            host,
            code,
            stdout,
            stderr,
        } if level >= Verbosity::Debug => {
            let mut text = format!("[{host}] exit {code}");
            for (name, out) in [("stdout", stdout), ("stderr", stderr)] {
                for l in terminal_safe(out).lines() {
                    text.push_str(&format!("\n[{host}] {name}| {l}"));
                }
            }
            Some(text)
        }
        Event::CommandOutput { .. } => None,
        Event::Phase {
            host,
            phase,
            elapsed_ms,
        } if verbose => Some(format!("[{host}] {phase}: {elapsed_ms} ms")),
        Event::Phase { .. } => None,
        Event::Diff { host, path, diff } => Some(format!(
            "[{host}] --- diff {path}\n{}",
            if colour {
                colourise(&terminal_safe(diff))
            } else {
                terminal_safe(diff)
            }
        )),
    }
}

/// Text that came from a server or a command, safe for a terminal:
/// control characters (an escape sequence's ESC among them) shown escaped,
/// so output cannot move the cursor, retitle the window or hide lines; new
/// lines and tabs are kept.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn paint(colour: bool, c: AnsiColor, text: &str) -> String {
    if colour {
        let style = c.on_default();
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

fn colourise(diff: &str) -> String {
    diff.lines()
        .map(|l| {
            if l.starts_with('+') && !l.starts_with("+++") {
                paint(true, AnsiColor::Green, l)
            } else if l.starts_with('-') && !l.starts_with("---") {
                paint(true, AnsiColor::Red, l)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One bar per host on a terminal; notable lines printed above the bars.
pub struct Bars {
    level: Verbosity,
    colour: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new(level: Verbosity, colour: bool) -> Self {
        Self {
            level,
            colour,
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Reporter for Bars {
    fn report(&self, event: Event) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match &event {
            Event::HostStarted { host, steps } => {
                let bar = self.multi.add(ProgressBar::new(*steps as u64));
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{prefix}] {bar:30} {pos}/{len} {msg}")
                        .expect("static template"),
                );
                bar.set_prefix(host.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(host.clone(), bar);
            }
            Event::StepStarted { host, step } => {
                if let Some(bar) = bars.get(host) {
                    bar.set_message(step.clone());
                }
            }
            Event::StepFinished { host, .. } => {
                if let Some(bar) = bars.get(host) {
                    bar.inc(1);
                }
            }
            Event::HostFinished { host } => {
                if let Some(bar) = bars.remove(host) {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
        if let Some(line) = line_for(&event, self.level, self.colour) {
            let _ = self.multi.println(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(status: StepStatus) -> Event {
        Event::StepFinished {
            host: "web1".into(),
            step: "service nginx".into(),
            status,
            detail: None,
        }
    }

    #[test]
    fn a_servers_text_cannot_drive_the_terminal() {
        let failed = Event::StepFinished {
            host: "web1".into(),
            step: "service nginx".into(),
            status: StepStatus::Failed,
            detail: Some("boom\u{1b}]0;owned\u{7}\u{1b}[2J".into()),
        };
        let output = Event::CommandOutput {
            host: "web1".into(),
            code: 1,
            stdout: "a\tb\nc\u{1b}[1A\r".into(),
            stderr: String::new(),
        };
        for (event, colour) in [(&failed, true), (&output, false)] {
            let line = line_for(event, Verbosity::Debug, colour).unwrap();
            // Only the colour codes foobar writes itself stay raw.
            let raw_escapes = line.matches('\u{1b}').count();
            assert_eq!(raw_escapes, if colour { 2 } else { 0 }, "{line:?}");
            assert!(!line.contains('\u{7}') && !line.contains('\r'), "{line:?}");
        }
        let line = line_for(&output, Verbosity::Debug, false).unwrap();
        assert!(
            line.contains("a\tb\n[web1] stdout| c\\u{1b}[1A\\r"),
            "{line:?}"
        );
    }

    #[test]
    fn each_level_shows_its_events() {
        let output = Event::CommandOutput {
            host: "web1".into(),
            code: 0,
            stdout: "hello".into(),
            stderr: String::new(),
        };
        let command = Event::Command {
            host: "web1".into(),
            command: "true".into(),
        };
        let shown = |e: &Event, l: Verbosity| line_for(e, l, false).is_some();
        use Verbosity::*;
        assert_eq!(
            [Quiet, Normal, Verbose, Debug].map(|l| shown(&step(StepStatus::Failed), l)),
            [true; 4]
        );
        assert_eq!(
            [Quiet, Normal, Verbose, Debug].map(|l| shown(&step(StepStatus::Changed), l)),
            [false, true, true, true]
        );
        assert_eq!(
            [Quiet, Normal, Verbose, Debug].map(|l| shown(&step(StepStatus::Ok), l)),
            [false, false, true, true]
        );
        assert_eq!(
            [Quiet, Normal, Verbose, Debug].map(|l| shown(&command, l)),
            [false, false, true, true]
        );
        assert_eq!(
            [Quiet, Normal, Verbose, Debug].map(|l| shown(&output, l)),
            [false, false, false, true]
        );
        let error = Event::Message {
            text: "error: cannot reach web1".into(),
        };
        assert!(shown(&error, Quiet));
        assert!(!shown(
            &Event::Message {
                text: "lab: booting".into()
            },
            Quiet
        ));
    }

    #[test]
    fn plain_text_without_colour() {
        let line = line_for(&step(StepStatus::Changed), Verbosity::Normal, false).unwrap();
        assert_eq!(line, "[web1] changed: service nginx");
        let line = line_for(&step(StepStatus::Changed), Verbosity::Normal, true).unwrap();
        assert!(line.contains("\x1b["), "colour on request");
    }
}
