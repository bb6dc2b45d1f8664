//! The code base as people keep it, through the real binary: `render`
//! reads and packs it as a deploy would, and contacts no server. A git
//! work tree with uncommitted changes, a link out of the code base and an
//! unknown `app.ref` are refused at the inventory's line (exit 2); a
//! virtualenv, `node_modules` and a link inside no longer stop anything.
//! Then the library function, `code_base::read`, on code bases made here
//! with the git command line: exactly what is shipped, and what is refused.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use foobar::code_base::{read, CodeBase, CodeBaseError};

/// `git ARGS` in `dir`, with no configuration of this machine's.
fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A code base at `dir/app` holding the sample app's entry point.
fn app(dir: &Path) -> std::path::PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.py"), "application = None\n").unwrap();
    app
}

/// `render` of the sample inventory with `app` as its code base and
/// `extra` lines after `source:`.
fn render(dir: &Path, app: &Path, extra: &str) -> std::process::Output {
    let inventory = inventory_with(
        "inventory/foobar.yml",
        dir,
        &[(
            &format!("source: {}/apps/python", env!("CARGO_MANIFEST_DIR")),
            &format!("source: {}{extra}", app.display()),
        )],
    );
    foobar()
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .env("NO_COLOR", "1")
        .arg("-i")
        .arg(inventory)
        .arg("render")
        .output()
        .unwrap()
}

/// Exit 2, and the message names `what` at the inventory's `key` line.
fn refused_at(out: &std::process::Output, key: &str, what: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("inventory.yml:"))
        .unwrap_or_default();
    let marked = err.lines().find(|l| l.contains(" | ") && l.contains(key));
    assert!(
        line.contains("inventory.yml:") && marked.is_some(),
        "{key} not pointed at: {err}"
    );
    for w in what {
        assert!(err.contains(w), "{w} missing: {err}");
    }
}

#[test]
fn a_plain_folder_with_a_virtualenv_and_links_inside_renders() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    for d in [".venv/lib", "node_modules/x", "__pycache__"] {
        std::fs::create_dir_all(app.join(d)).unwrap();
    }
    symlink("lib", app.join(".venv/lib64")).unwrap();
    std::fs::write(app.join("__pycache__/app.cpython-311.pyc"), "x").unwrap();
    std::fs::write(app.join(".foobarignore"), "*.log\n").unwrap();
    std::fs::write(app.join("debug.log"), "x").unwrap();
    symlink("app.py", app.join("wsgi.py")).unwrap();
    let out = render(dir.path(), &app, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_link_out_of_the_code_base_is_refused_at_the_source_line() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    symlink("../secrets", app.join("config")).unwrap();
    let out = render(dir.path(), &app, "");
    let link = app.join("config").display().to_string();
    refused_at(&out, "source:", &[&link, "outside the code base"]);
}

#[test]
fn a_git_work_tree_deploys_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    git(&app, &["init", "-q", "-b", "main"]);
    git(&app, &["add", "."]);
    git(&app, &["commit", "-q", "-m", "one"]);
    git(&app, &["tag", "v1"]);
    // Untracked files, even a link out of the code base, are not shipped.
    symlink("/etc/passwd", app.join("untracked")).unwrap();
    assert!(render(dir.path(), &app, "").status.success());

    std::fs::write(app.join("app.py"), "application = 1\n").unwrap();
    let dirty = render(dir.path(), &app, "");
    refused_at(
        &dirty,
        "source:",
        &["app.py", "commit", "git stash", "app.ref"],
    );
    // A named commit is deployed whatever the work tree holds.
    let tagged = render(dir.path(), &app, "\n  ref: v1");
    assert!(tagged.status.success(), "{}", text(&tagged.stderr));

    let unknown = render(dir.path(), &app, "\n  ref: v9");
    refused_at(&unknown, "ref: v9", &["`v9`", "branch, a tag or a commit"]);
    let option = render(dir.path(), &app, "\n  ref: --output=x");
    refused_at(
        &option,
        "ref: --output=x",
        &["not a git branch, tag or commit"],
    );
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A repository with `app.py` committed, an ignored and an untracked
/// file beside it.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "app.py", "v1\n");
    write(d, ".gitignore", "secret.env\n");
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "one"]);
    write(d, "secret.env", "KEY=1\n");
    write(d, "notes.txt", "mine\n");
    dir
}

/// The paths of the release's archive, and where its links lead.
fn shipped(code: &CodeBase) -> Vec<String> {
    let (_, archive) = code.pack().unwrap();
    let mut tar = tar::Archive::new(archive.as_slice());
    tar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            match e.link_name().unwrap() {
                Some(target) => format!("{path} -> {}", target.display()),
                None => path,
            }
        })
        .collect()
}

#[test]
fn a_git_work_tree_ships_what_git_tracks() {
    let dir = repo();
    let code = read(dir.path(), None).unwrap();
    assert_eq!(shipped(&code), [".gitignore", "app.py"]);
    assert_eq!(code.file("app.py"), Some(&b"v1\n"[..]));
    // Files git does not track change nothing of the release.
    let (id, archive) = code.pack().unwrap();
    write(dir.path(), "more-untracked.txt", "x");
    assert_eq!(
        read(dir.path(), None).unwrap().pack().unwrap(),
        (id.clone(), archive)
    );
    write(dir.path(), "app.py", "v2\n");
    git(dir.path(), &["commit", "-q", "-am", "two"]);
    assert_ne!(read(dir.path(), None).unwrap().pack().unwrap().0, id);
}

#[test]
fn uncommitted_changes_are_refused_by_name() {
    let dir = repo();
    write(dir.path(), "app.py", "changed\n");
    let e = read(dir.path(), None).unwrap_err();
    assert!(matches!(&e, CodeBaseError::Dirty { files, .. } if files == &["app.py"]));
    let message = e.to_string();
    assert!(message.contains("app.py"), "{message}");
    assert!(
        message.contains("git stash") && message.contains("app.ref"),
        "{message}"
    );
    // Staged counts too.
    git(dir.path(), &["add", "app.py"]);
    assert!(matches!(
        read(dir.path(), None),
        Err(CodeBaseError::Dirty { .. })
    ));
    // A named commit is deployed as it is, whatever the work tree holds.
    let code = read(dir.path(), Some("main")).unwrap();
    assert_eq!(code.file("app.py"), Some(&b"v1\n"[..]));
}

#[test]
fn app_ref_deploys_the_tagged_content() {
    let dir = repo();
    git(dir.path(), &["tag", "v1"]);
    write(dir.path(), "app.py", "v2\n");
    write(dir.path(), "added.py", "new\n");
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "two"]);
    let tagged = read(dir.path(), Some("v1")).unwrap();
    assert_eq!(tagged.file("app.py"), Some(&b"v1\n"[..]));
    assert!(!tagged.has("added.py"));
    assert_eq!(
        read(dir.path(), None).unwrap().file("app.py"),
        Some(&b"v2\n"[..])
    );
    let e = read(dir.path(), Some("v9")).unwrap_err();
    assert!(e.about_ref() && e.to_string().contains("`v9`"), "{e}");
}

#[test]
fn a_code_base_below_the_top_of_a_work_tree_is_its_own_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    write(d, "README", "top\n");
    write(d, "site/app.py", "v1\n");
    write(d, "site/lib/util.py", "u\n");
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "one"]);
    let src = d.join("site");
    assert_eq!(
        shipped(&read(&src, None).unwrap()),
        ["app.py", "lib/util.py"]
    );
    // Changes outside the code base do not matter; inside, named from it.
    write(d, "README", "changed\n");
    read(&src, None).unwrap();
    write(d, "site/lib/util.py", "changed\n");
    let e = read(&src, None).unwrap_err();
    assert!(matches!(&e, CodeBaseError::Dirty { files, .. } if files == &["lib/util.py"]));
}

#[test]
fn a_folder_git_has_nothing_of_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    write(dir.path(), "tracked", "x");
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-q", "-m", "one"]);
    write(dir.path(), "app/app.py", "x");
    let e = read(&dir.path().join("app"), None).unwrap_err();
    assert!(matches!(e, CodeBaseError::NothingTracked { .. }), "{e}");
}

#[test]
fn a_plain_folder_skips_what_is_never_code_and_what_it_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "app.py", "x");
    write(d, ".venv/bin/python", "x");
    write(d, "node_modules/left-pad/index.js", "x");
    write(d, "pkg/__pycache__/m.cpython-311.pyc", "x");
    write(d, "pkg/m.py", "x");
    write(d, "pkg/local.log", "x");
    write(d, "build/out.txt", "x");
    write(d, "build/keep.txt", "x");
    write(d, ".foobarignore", "*.log\nbuild/*\n!build/keep.txt\n");
    // What blocked every command: a virtualenv's link to its lib.
    symlink("lib", d.join(".venv/lib64")).unwrap();
    let code = read(d, None).unwrap();
    assert_eq!(
        shipped(&code),
        [".foobarignore", "app.py", "build/keep.txt", "pkg/m.py"]
    );
    assert!(matches!(
        read(d, Some("main")),
        Err(CodeBaseError::RefWithoutGit(_))
    ));
}

#[test]
fn a_link_inside_is_kept_as_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "app.py", "x");
    write(d, "assets/logo.png", "png");
    symlink("../assets/logo.png", {
        fs::create_dir_all(d.join("public")).unwrap();
        d.join("public/logo.png")
    })
    .unwrap();
    symlink("assets", d.join("static")).unwrap();
    symlink("static/logo.png", d.join("logo.png")).unwrap();
    let code = read(d, None).unwrap();
    assert_eq!(
        shipped(&code),
        [
            "app.py",
            "assets/logo.png",
            "logo.png -> static/logo.png",
            "public/logo.png -> ../assets/logo.png",
            "static -> assets",
        ]
    );
    let (id, _) = code.pack().unwrap();
    // Where a link leads is part of the release's id.
    fs::remove_file(d.join("static")).unwrap();
    symlink("public", d.join("static")).unwrap();
    assert_ne!(read(d, None).unwrap().pack().unwrap().0, id);
}

#[test]
fn a_link_out_of_the_code_base_is_refused_with_its_path() {
    for (target, name) in [
        ("../outside.txt", "up.txt"),
        ("/etc/passwd", "abs.txt"),
        ("here/..", "dot"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("app");
        write(&d, "app.py", "x");
        symlink(".", d.join("here")).unwrap();
        symlink(target, d.join(name)).unwrap();
        let e = read(&d, None).unwrap_err();
        let message = e.to_string();
        assert!(
            matches!(e, CodeBaseError::LinkOutside { .. }),
            "{target}: {message}"
        );
        assert!(
            message.contains(&d.join(name).display().to_string()) && message.contains(target),
            "{message}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "app.py", "x");
    symlink("b", dir.path().join("a")).unwrap();
    symlink("a", dir.path().join("b")).unwrap();
    assert!(matches!(
        read(dir.path(), None),
        Err(CodeBaseError::LinkLoop { .. })
    ));
}

#[test]
fn a_tracked_link_out_of_the_code_base_is_refused() {
    let dir = repo();
    symlink("../../etc", dir.path().join("etc")).unwrap();
    git(dir.path(), &["add", "etc"]);
    git(dir.path(), &["commit", "-q", "-m", "link"]);
    let e = read(dir.path(), None).unwrap_err();
    assert!(matches!(e, CodeBaseError::LinkOutside { .. }), "{e}");
}

#[test]
fn a_missing_or_empty_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read(&dir.path().join("nope"), None),
        Err(CodeBaseError::Missing(_))
    ));
    fs::create_dir(dir.path().join(".venv")).unwrap();
    write(dir.path(), ".venv/x", "x");
    assert!(matches!(
        read(dir.path(), None),
        Err(CodeBaseError::Empty(_))
    ));
}

#[test]
fn a_code_base_is_read_once_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = app(dir.path());
    let once = foobar::code_base::ReadOnce::default();
    let first = once.read(&src, None).unwrap();
    // Changed after the first read: the run keeps what it read, as every
    // step and server of it ships the same release.
    fs::write(src.join("app.py"), "application = 1\n").unwrap();
    let again = once.read(&src, None).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again));
    assert_eq!(again.file("app.py"), Some(&b"application = None\n"[..]));
    assert_eq!(
        read(&src, None).unwrap().file("app.py"),
        Some(&b"application = 1\n"[..])
    );
}

/// What a release step's key reads of the code base: the files its
/// globs match (path, mode, content), and nothing else; `*` stays in its
/// folder; a glob that matches nothing is named.
#[test]
fn a_release_steps_inputs_are_the_files_its_globs_match() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "shop/migrations/0001_initial.py", "one\n");
    write(d, "shop/views.py", "views\n");
    write(d, "settings.py", "DEBUG = False\n");
    let globs: Vec<_> = ["**/migrations/*.py", "*.py"]
        .iter()
        .map(|g| foobar::inventory::compile_glob(g).unwrap())
        .collect();
    let digest = || read(d, None).unwrap().digest_matching(&globs).unwrap();
    let first = digest();
    // A file no glob matches (`*` does not cross folders): the same.
    write(d, "shop/views.py", "other views\n");
    assert_eq!(digest(), first);
    // A matched file's content, or its mode: another.
    write(d, "shop/migrations/0002_more.py", "two\n");
    let second = digest();
    assert_ne!(second, first);
    write(d, "settings.py", "DEBUG = True\n");
    let third = digest();
    assert_ne!(third, second);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(d.join("settings.py"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(digest(), third);
    let typo = [foobar::inventory::compile_glob("migrashuns/*.py").unwrap()];
    assert_eq!(read(d, None).unwrap().digest_matching(&typo), Err(0));
}
