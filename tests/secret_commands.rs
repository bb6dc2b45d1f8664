//! Secrets from commands (`cmd:`) as a user meets them: the lab
//! inventory with its password from a command, rendered (nothing is
//! contacted). The value never shows; a command that fails is bad input at
//! its line.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const VALUE: &str = "From-A-Command-4711";

/// The lab inventory in `dir` with its password written as `password`;
/// the line it is on.
fn inventory(dir: &Path, password: &str) -> (PathBuf, usize) {
    let path = inventory_with(
        LAB,
        dir,
        &[(
            "password: file:/var/lib/foobar/lab/secrets/mysql_password",
            &format!("password: {password}"),
        )],
    );
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l.contains("password: cmd:"))
        .unwrap()
        + 1;
    (path, line)
}

/// Every file under `dir`, as text.
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    found
}

#[test]
fn a_secret_from_a_command_is_read_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (inv, _) = inventory(dir.path(), &format!("cmd:printf %s {VALUE}"));
    let out_dir = dir.path().join("out");
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "render", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout) + &text(&out.stderr);
    assert!(!shown.contains(VALUE), "{shown}");
    let files = files_under(&out_dir);
    for (path, content) in &files {
        assert!(!content.contains(VALUE), "{}: {content}", path.display());
    }
    let masked = files
        .iter()
        .find(|(path, _)| path.ends_with("etc/foobar/app.env"))
        .map(|(_, content)| content.as_str())
        .unwrap_or_default();
    assert!(masked.contains("DB_PASSWORD=\"********\""), "{masked}");

    let (code, doc) = valid_json(&["-i", inv.to_str().unwrap(), "render"], "render");
    assert_eq!(code, Some(0), "{doc:#}");
    assert!(!doc.to_string().contains(VALUE), "{doc:#}");
}

#[test]
fn a_failing_command_is_bad_input_at_its_line_with_what_it_said() {
    let dir = tempfile::tempdir().unwrap();
    let (_, line) = inventory(
        dir.path(),
        "cmd:sh -c 'echo the vault is sealed >&2; exit 3'",
    );
    let out = foobar()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["-i", "inventory.yml", "render"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for expected in [
        "error: mysql.password: the command `sh -c 'echo the vault is sealed >&2; exit 3'` failed (exit status: 3):",
        "the vault is sealed\n",
        &format!("--> inventory.yml:{line}:13\n"),
        "help: run the command yourself",
    ] {
        assert!(err.contains(expected), "no {expected:?} in:\n{err}");
    }
}
