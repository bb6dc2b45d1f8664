//! foobar from any folder, as `cargo install` leaves it: the playbook and
//! templates are built in, and a project folder overrides them file by
//! file.

mod common;

use std::path::Path;
use std::process::Command;

use common::text;

/// The binary copied out of the project once, like an installed one. Once
/// for both tests: a test thread that forks while the other still writes
/// its copy would make executing that copy fail ("text file busy").
fn installed() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    &BIN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("foobar");
        std::fs::copy(env!("CARGO_BIN_EXE_foobar"), &bin).unwrap();
        (dir, bin)
    })
    .1
}

/// A folder elsewhere with an inventory whose code base is given
/// absolutely, and the installed binary.
fn elsewhere() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = installed().to_path_buf();
    let root = env!("CARGO_MANIFEST_DIR");
    let inv = std::fs::read_to_string(Path::new(root).join("inventory/foobar.yml"))
        .unwrap()
        .replace("../apps/python", &format!("{root}/apps/python"));
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    std::fs::write(dir.path().join("site/inventory.yml"), inv).unwrap();
    (dir, bin)
}

fn render(bin: &Path, cwd: &Path, out: &Path) -> std::process::Output {
    Command::new(bin)
        .current_dir(cwd)
        .env_remove("FOOBAR_PROJECT")
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .env("RUST_BACKTRACE", "0")
        .args(["-i", "inventory.yml", "render", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn an_installed_binary_works_from_any_folder() {
    let (dir, bin) = elsewhere();
    let site = dir.path().join("site");
    let out = render(&bin, &site, &dir.path().join("out"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let nginx = std::fs::read_to_string(
        dir.path()
            .join("out/www/etc/nginx/sites-enabled/foobar.conf"),
    )
    .unwrap();
    assert!(nginx.contains("server_name www.foobar.com"), "{nginx}");
}

#[test]
fn a_project_folder_overrides_one_template_and_keeps_the_rest() {
    let (dir, bin) = elsewhere();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("templates/nginx")).unwrap();
    std::fs::write(
        site.join("templates/nginx/site.conf.j2"),
        "# my own site for {{ fqdn }}\n",
    )
    .unwrap();
    let read = |p: &str| std::fs::read_to_string(dir.path().join("out/www").join(p)).unwrap();

    // A folder with templates/ alone is an app's (Flask, Django), not a
    // project of foobar's: the built-in files, and nothing said.
    let out = render(&bin, &site, &dir.path().join("out"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(read("etc/nginx/sites-enabled/foobar.conf").contains("server_name www.foobar.com"));
    assert!(
        !text(&out.stderr).contains("note:"),
        "{}",
        text(&out.stderr)
    );

    // Marked as a project folder: its template wins, and the run says whose.
    std::fs::write(site.join("foobar-project"), "").unwrap();
    let out = render(&bin, &site, &dir.path().join("out"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        read("etc/nginx/sites-enabled/foobar.conf"),
        "# my own site for www.foobar.com\n"
    );
    assert!(read("etc/bind/named.conf.options").contains("recursion no"));
    assert!(
        text(&out.stderr).contains("note: playbook and templates from ."),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_reader_that_stops_early_ends_foobar_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_foobar"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before foobar writes anything: its first write meets EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
