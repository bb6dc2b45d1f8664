//! Bad input: one error type for every inventory, playbook, template and
//! argument mistake, found before any server is contacted (exit 2). It
//! carries the place, a message in foobar's words (not serde's), and a help
//! line ("did you mean ..."); `render` draws it the way rustc does.

use std::fmt;
use std::path::{Path, PathBuf};

/// Bad input: an inventory, playbook, template or argument that cannot be
/// used. Always reported before any server is contacted (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no position (a missing file).
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// How many characters the caret covers (at least 1).
    pub width: usize,
    /// What to write instead, when foobar can tell.
    pub help: Option<String>,
    /// What is allowed here.
    pub note: Option<String>,
}

impl InputError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self::at(file, 0, 0, message)
    }

    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            width: 1,
            help: None,
            note: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// serde's words for a YAML error, without the place it appends.
    pub fn yaml_words(err: &serde_yaml::Error) -> String {
        let text = err.to_string();
        match text.rfind(" at line ") {
            Some(i) if err.location().is_some() => text[..i].to_string(),
            _ => text,
        }
    }

    /// Converts a YAML error: its position, and its words turned into
    /// foobar's ("unknown key", "expected a number, found text"), with a
    /// suggestion for a misspelt key or value.
    pub fn from_yaml(file: &Path, source: &str, err: &serde_yaml::Error) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        // A tab is what YAML's "cannot start any token" most often means.
        let tab = line > 0
            && source
                .lines()
                .nth(line - 1)
                .and_then(|text| text.chars().nth(column.saturating_sub(1)))
                == Some('\t');
        let at = Self::at(file, line, column, "");
        if tab {
            return Self {
                message: "a tab in the indentation".into(),
                help: Some("indent YAML with spaces".into()),
                ..at
            };
        }
        Self::explain_at(at, &Self::yaml_words(err))
    }

    /// serde's `words` in foobar's, at the place of `at` (its message
    /// replaced); the caret as wide as the word explained, else as `at`'s.
    pub fn explain_at(at: Self, words: &str) -> Self {
        let explained = explain(words);
        Self {
            width: if explained.width > 1 {
                explained.width
            } else {
                at.width
            },
            message: explained.message,
            help: explained.help,
            note: explained.note,
            ..at
        }
    }
}

/// Several independent mistakes, found in one run, each with its place:
/// all of them are shown, as cargo shows every error of a crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct InputErrors(pub Vec<InputError>);

impl From<InputError> for InputErrors {
    fn from(e: InputError) -> Self {
        Self(vec![e])
    }
}

impl From<Vec<InputError>> for InputErrors {
    fn from(errors: Vec<InputError>) -> Self {
        Self(errors)
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// The error as rustc shows one: the message, the place, the line with
    /// a caret under the span, then help and what is allowed. `source` is
    /// the file's text when it can be read.
    pub fn render(&self, source: Option<&str>, colour: bool) -> String {
        use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
        let renderer = if colour {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let path = self.file.display().to_string();
        let line_text = source
            .filter(|_| self.line > 0)
            .and_then(|s| s.lines().nth(self.line - 1));
        let mut group = Group::with_title(Level::ERROR.primary_title(self.message.as_str()));
        match line_text {
            Some(text) => {
                // Columns count characters; spans are byte offsets.
                let start: usize = text
                    .chars()
                    .take(self.column.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                // Without a known width, the caret covers the token.
                let rest = &text[start.min(text.len())..];
                let width = if self.width > 1 {
                    self.width
                } else {
                    rest.chars()
                        .take_while(|c| !c.is_whitespace() && !",]}#".contains(*c))
                        .count()
                        .max(1)
                };
                let end: usize =
                    start + rest.chars().take(width).map(char::len_utf8).sum::<usize>();
                let end = end.max(start + usize::from(start < text.len()));
                group = group.element(
                    Snippet::source(text)
                        .line_start(self.line)
                        .path(path.as_str())
                        .annotation(AnnotationKind::Primary.span(start..end)),
                );
            }
            None => {
                let place = if self.line > 0 {
                    format!("{path}:{}:{}", self.line, self.column)
                } else {
                    path.clone()
                };
                group = group.element(Level::NOTE.message(format!("in {place}")));
            }
        }
        if let Some(h) = &self.help {
            group = group.element(Level::HELP.message(h.as_str()));
        }
        if let Some(n) = &self.note {
            group = group.element(Level::NOTE.message(n.as_str()));
        }
        renderer.render(&[group]).to_string()
    }
}

/// The closest of `candidates` to `value`, when it is close enough to be
/// what was meant.
pub fn did_you_mean<'a>(value: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // The word in full (`sunday` for `sun`) or cut short; else a typo: a
    // few letters off (swapped, missing, extra), or another ending.
    if let Some(c) = candidates
        .iter()
        .find(|c| c.len() >= 3 && (value.starts_with(**c) || c.starts_with(value)))
    {
        return Some(c);
    }
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(value, c), *c))
        .filter(|(d, c)| {
            *d <= (c.chars().count() / 3).max(1) || strsim::jaro_winkler(value, c) >= 0.9
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A serde/YAML message in foobar's words.
struct Explained {
    message: String,
    width: usize,
    help: Option<String>,
    note: Option<String>,
}

fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

fn explain(raw: &str) -> Explained {
    // yaml_serde puts the key path first: `app.workers: ...`.
    let (key, rest) = match raw.split_once(": ") {
        Some((k, r)) if !k.contains(' ') && !k.is_empty() => (Some(k), r),
        _ => (None, raw),
    };
    let within = |what: &str| match key {
        Some(k) if k != "." => format!("{what} in `{k}`"),
        _ => what.to_string(),
    };
    let at = |what: String| match key {
        Some(k) if k != "." => format!("{k}: {what}"),
        _ => what,
    };
    let plain = |message: String| Explained {
        message,
        width: 1,
        help: None,
        note: None,
    };
    for (serde_words, ours) in [
        ("unknown field", "unknown key"),
        ("unknown variant", "unknown value"),
    ] {
        if let Some(after) = rest.strip_prefix(serde_words) {
            let names = backticked(after);
            let Some((bad, allowed)) = names.split_first() else {
                break;
            };
            let help = did_you_mean(bad, allowed).map(|s| format!("did you mean `{s}`?"));
            return Explained {
                message: within(&format!("{ours} `{bad}`")),
                width: bad.chars().count(),
                help,
                note: (!allowed.is_empty())
                    .then(|| format!("allowed here: {}", allowed.join(", "))),
            };
        }
    }
    if let Some(after) = rest.strip_prefix("missing field ") {
        let field = backticked(after).first().copied().unwrap_or(after);
        return Explained {
            help: Some(format!("add `{field}:` here")),
            ..plain(within(&format!("`{field}` is missing")))
        };
    }
    if let Some(after) = rest
        .strip_prefix("invalid type: ")
        .or(rest.strip_prefix("invalid value: "))
    {
        if let Some((found, expected)) = after.split_once(", expected ") {
            let found = found
                .replace("string ", "text ")
                .replace("sequence", "a list")
                .replace("map", "a mapping (key: value)")
                .replace("unit value", "nothing");
            // serde names the Rust type (`struct Inventory`): say what
            // is written instead.
            let expected = match expected.strip_prefix("struct ") {
                Some(_) => "a mapping (key: value)".to_string(),
                None => expected
                    .replace("a sequence", "a list")
                    .replace("sequence", "a list"),
            };
            // YAML 1.1's yes, no, on and off are text in YAML 1.2.
            let help = (expected == "a boolean").then(|| "write true or false".to_string());
            return Explained {
                help,
                ..plain(at(format!("expected {expected}, found {found}")))
            };
        }
    }
    let syntax = [
        (
            "found character that cannot start any token",
            "this character cannot start a YAML value",
            "put the value in quotes, like \"@value\"",
        ),
        (
            "mapping values are not allowed in this context",
            "a `: ` inside a value",
            "put the value in quotes, or check the indentation of this line",
        ),
        (
            "did not find expected key",
            "the indentation does not match the keys above",
            "line this key up with the keys of its mapping",
        ),
        (
            "did not find expected",
            "a bracket or quote is not closed",
            "close the list with `]`, the mapping with `}`, the text with its quote",
        ),
    ];
    for (serde_words, ours, help) in syntax {
        if rest.contains(serde_words) {
            return Explained {
                help: Some(help.into()),
                ..plain(at(ours.into()))
            };
        }
    }
    plain(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_get_a_suggestion_and_the_allowed_list() {
        let e = explain("app: unknown field `wokers`, expected one of `kind`, `source`, `workers`");
        assert_eq!(e.message, "unknown key `wokers` in `app`");
        assert_eq!(e.help.as_deref(), Some("did you mean `workers`?"));
        assert_eq!(
            e.note.as_deref(),
            Some("allowed here: kind, source, workers")
        );
        assert_eq!(e.width, 6);
        let e = explain(
            "servers[0].roles[3]: unknown variant `dsn`, expected one of `web`, `app`, `db`, `dns`",
        );
        assert_eq!(e.message, "unknown value `dsn` in `servers[0].roles[3]`");
        assert_eq!(e.help.as_deref(), Some("did you mean `dns`?"));
        let e = explain("app: unknown field `colour`, expected one of `kind`, `source`");
        assert_eq!(e.help, None, "nothing close");
    }

    #[test]
    fn serde_words_do_not_leak() {
        let e = explain(
            "app.workers: invalid type: string \"two\", expected a whole number from 1 to 64",
        );
        assert_eq!(
            e.message,
            "app.workers: expected a whole number from 1 to 64, found text \"two\""
        );
        let e = explain("invalid type: sequence, expected struct Inventory");
        assert_eq!(e.message, "expected a mapping (key: value), found a list");
        let e =
            explain("ssh.accept_new_host_keys: invalid type: string \"yes\", expected a boolean");
        assert_eq!(e.help.as_deref(), Some("write true or false"));
        let e = explain("app: missing field `source`");
        assert_eq!(e.message, "`source` is missing in `app`");
        let e = explain("found character that cannot start any token while scanning");
        assert!(e.message.contains("cannot start a YAML value"));
        assert!(e.help.unwrap().contains("quotes"));
    }

    #[test]
    fn rendered_like_rustc() {
        let mut e = InputError::at(Path::new("inv.yml"), 2, 3, "unknown key `wokers` in `app`");
        e.width = 6;
        e.help = Some("did you mean `workers`?".into());
        let out = e.render(Some("app:\n  wokers: 2\n"), false);
        assert!(out.contains("inv.yml:2:3"), "{out}");
        assert!(out.contains("  wokers: 2"), "{out}");
        assert!(out.contains("^^^^^^"), "{out}");
        assert!(out.contains("help: did you mean `workers`?"), "{out}");
    }
}
