//! Error types shared by the modules that read user input.

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
}

impl InputError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Converts a YAML error, keeping its position and dropping the
    /// " at line X column Y" suffix the message already carries.
    pub fn from_yaml(file: &Path, err: &serde_yaml::Error) -> Self {
        let text = err.to_string();
        let message = match text.rfind(" at line ") {
            Some(i) if err.location().is_some() => text[..i].to_string(),
            _ => text,
        };
        match err.location() {
            Some(loc) => Self::at(file, loc.line(), loc.column(), message),
            None => Self::new(file, message),
        }
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
            )
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

impl std::error::Error for InputError {}
