//! foobar from any folder, as `cargo install` leaves it: the playbook and
//! templates are built in, and a project folder overrides them file by
//! file.

mod common;

use std::path::Path;
use std::process::Command;

use common::text;

/// The binary copied out of the project, like an installed one: once per
/// run (a test thread that forks while the other still writes its copy
/// would make executing that copy fail, "text file busy"), to a folder
/// named after the build it comes from and replaced in one rename, so
/// that runs leave one copy behind, not one each (a static's temporary
/// folder is never dropped).
fn installed() -> &'static Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let built = env!("CARGO_BIN_EXE_foobar");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        built.hash(&mut h);
        let dir = std::env::temp_dir().join(format!("foobar-installed-{:x}", h.finish()));
        std::fs::create_dir_all(&dir).unwrap();
        let part = dir.join(format!("foobar.{}", std::process::id()));
        std::fs::copy(built, &part).unwrap();
        let bin = dir.join("foobar");
        std::fs::rename(&part, &bin).unwrap();
        bin
    })
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

/// The installed binary in `dir`, without -i and without
/// FOOBAR_INVENTORY unless `env` sets it.
fn here(dir: &Path, args: &[&str], env: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(installed());
    cmd.current_dir(dir)
        .env_remove("FOOBAR_PROJECT")
        .env_remove("FOOBAR_INVENTORY")
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .env("RUST_BACKTRACE", "0")
        .args(args);
    if let Some(inventory) = env {
        cmd.env("FOOBAR_INVENTORY", inventory);
    }
    cmd.output().unwrap()
}

/// Asserts that foobar said `what` on stderr.
fn said(out: &std::process::Output, what: &str) {
    let err = text(&out.stderr);
    assert!(err.contains(what), "{what} in {err}");
}

/// As Kamal finds config/deploy.yml: the inventory `foobar init` writes
/// is found from its folder, foobar.yml too; `-v` says which file, and
/// -i and FOOBAR_INVENTORY still come first.
#[test]
fn the_inventory_is_found_where_init_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path();
    let out = here(site, &["init", "--address", "203.0.113.10"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("next: export FOOBAR_DB_PASSWORD=...; foobar provision"),
        "{}",
        text(&out.stdout)
    );

    let out = here(site, &["-v", "render"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("/etc/nginx/sites-enabled/foobar.conf"));
    said(
        &out,
        "note: inventory inventory.yml (found in the current folder)",
    );
    // Quiet without -v.
    let out = here(site, &["render"], None);
    assert!(!text(&out.stderr).contains("note: inventory"));

    std::fs::rename(site.join("inventory.yml"), site.join("foobar.yml")).unwrap();
    let out = here(site, &["-v", "render"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    said(&out, "note: inventory foobar.yml");

    // The environment before the folder, -i before the environment.
    let out = here(site, &["-v", "render"], Some("elsewhere.yml"));
    assert_eq!(out.status.code(), Some(2));
    said(&out, "note: inventory elsewhere.yml ($FOOBAR_INVENTORY)");
    let out = here(
        site,
        &["-v", "-i", "foobar.yml", "render"],
        Some("elsewhere.yml"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    said(&out, "note: inventory foobar.yml (-i)");
}

#[test]
fn no_inventory_here_says_where_foobar_looked() {
    let dir = tempfile::tempdir().unwrap();
    let out = here(dir.path(), &["render"], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no inventory here: foobar looks for inventory.yml, foobar.yml or inventory/lab.yml in the current folder"),
        "{err}"
    );
    assert!(err.contains("foobar init"), "{err}");
}
