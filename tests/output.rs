//! Output that cannot be written is an error, never a panic. With stdout
//! on a full device, every command that prints exits 1 naming standard
//! output; with stdout's reader gone, foobar ends as Unix tools do (by
//! SIGPIPE), or exits 1 the same way when SIGPIPE is blocked and the write
//! fails with EPIPE. Here the commands that need no server.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};

mod common;

use common::*;

/// Where stdout goes.
#[derive(Debug, Clone, Copy)]
enum Stdout {
    /// /dev/full: every write fails with ENOSPC.
    Full,
    /// A pipe whose reader is gone.
    Closed,
    /// The same with SIGPIPE blocked: writes fail with EPIPE.
    ClosedSigpipeBlocked,
}

fn run(args: &[&str], stdout: Stdout) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_foobar"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .env_remove("FOOBAR_INVENTORY")
        .env_remove("FOOBAR_PROJECT")
        .env_remove("RUST_BACKTRACE")
        .args(args)
        .stderr(Stdio::piped());
    match stdout {
        Stdout::Full => {
            cmd.stdout(std::fs::File::create("/dev/full").unwrap());
        }
        Stdout::Closed | Stdout::ClosedSigpipeBlocked => {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            cmd.stdout(writer);
        }
    }
    if let Stdout::ClosedSigpipeBlocked = stdout {
        // SAFETY: between fork and exec only async-signal-safe calls
        // (sigemptyset, sigaddset, sigprocmask), on this process's memory.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGPIPE);
                if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.output().unwrap()
}

#[test]
fn output_that_cannot_be_written_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let init_dir = dir.path().join("site");
    let init_dir = init_dir.to_str().unwrap();
    let missing = dir.path().join("missing.yml");
    let missing = missing.to_str().unwrap();
    let foobar_yml = ["-i", "inventory/foobar.yml"];
    // (what, arguments, whether the command prints on stdout)
    let cases: Vec<(&str, Vec<&str>, bool)> = vec![
        ("render", [&foobar_yml[..], &["render"]].concat(), true),
        (
            "--json render",
            [&foobar_yml[..], &["--json", "render"]].concat(),
            true,
        ),
        ("diagram", [&foobar_yml[..], &["diagram"]].concat(), true),
        (
            "diagram as mermaid",
            [&foobar_yml[..], &["diagram", "--format", "mermaid"]].concat(),
            true,
        ),
        (
            "--json diagram",
            [&foobar_yml[..], &["--json", "diagram"]].concat(),
            true,
        ),
        ("--help", vec!["--help"], true),
        ("a command's --help", vec!["render", "--help"], true),
        ("--version", vec!["--version"], true),
        ("man", vec!["man"], true),
        ("completions", vec!["completions", "bash"], true),
        ("--json man", vec!["--json", "man"], true),
        (
            "--json completions",
            vec!["--json", "completions", "bash"],
            true,
        ),
        ("init", vec!["init", init_dir, "--lab", "--force"], true),
        (
            "--json init",
            vec!["--json", "init", init_dir, "--lab", "--force"],
            true,
        ),
        // Bad input is told on stderr; as JSON, on stdout.
        ("bad input", vec!["-i", missing, "render"], false),
        (
            "--json bad input",
            vec!["-i", missing, "--json", "render"],
            true,
        ),
        (
            "--json bad arguments",
            vec!["--json", "render", "--frobnicate"],
            true,
        ),
    ];
    let mut problems = Vec::new();
    for (what, args, prints) in &cases {
        for stdout in [Stdout::Full, Stdout::Closed, Stdout::ClosedSigpipeBlocked] {
            let out = run(args, stdout);
            let err = text(&out.stderr);
            let code = out.status.code();
            let names_stdout = code == Some(1) && err.contains("cannot write to standard output");
            let fine = match (stdout, prints) {
                (_, false) => code == Some(2),
                (Stdout::Full | Stdout::ClosedSigpipeBlocked, true) => names_stdout,
                (Stdout::Closed, true) => {
                    out.status.signal() == Some(libc::SIGPIPE) || names_stdout
                }
            };
            if !fine || code == Some(101) || err.contains("panicked") {
                problems.push(format!(
                    "{what} with stdout {stdout:?}: {:?}\n{err}",
                    out.status
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_file_that_cannot_be_written_is_named() {
    let out = foobar()
        .args(["-i", "inventory/foobar.yml", "render", "--out", "/dev/full"])
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write /dev/full/"), "{err}");
    let out = foobar()
        .args([
            "-i",
            "inventory/foobar.yml",
            "diagram",
            "--out",
            "/dev/full",
        ])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write /dev/full:"), "{err}");
}
