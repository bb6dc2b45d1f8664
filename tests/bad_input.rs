//! The bad-input corpus (tests/bad_inputs/): every broken inventory,
//! playbook and template is refused with exit 2, one clear message (with
//! file:line:column where it applies), no panic, and no connection made.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Counts every TCP connection to a local port that the corpus points at.
fn listener() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (port, count)
}

/// A corpus file made concrete: its port the listener's, its
/// `identity_file` a key file that exists (so that a case fails for its
/// own mistake, not for a missing key).
fn prepare(bytes: &[u8], port: u16, key: &Path) -> Vec<u8> {
    // Byte-wise, so that non-UTF-8 files stay as they are.
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\u{FFFD}') {
        return bytes.to_vec();
    }
    text.replace("@PORT@", &port.to_string())
        .replace("@KEY@", key.to_str().unwrap())
        .replace("../../../apps/python", &format!("{ROOT}/apps/python"))
        .into_bytes()
}

/// A project folder with the real templates and the given playbook.
fn project(dir: &Path, playbook: &[u8]) -> PathBuf {
    let p = dir.join("project");
    std::fs::create_dir_all(p.join("playbooks")).unwrap();
    std::os::unix::fs::symlink(format!("{ROOT}/templates"), p.join("templates")).unwrap();
    std::fs::write(p.join("playbooks/provision.yml"), playbook).unwrap();
    p
}

/// Runs foobar on one bad input; says what is wrong with its refusal.
fn refusal_problem(args: &[&str], file: &Path, expect: &str, loc: &str) -> Option<String> {
    let start = Instant::now();
    let out = foobar()
        .args(args)
        .env("FOOBAR_TEST_DB_PASSWORD", "a-good-password-123")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let err = text(&out.stderr);
    let file = file.display().to_string();
    let located = match loc {
        "-" => err.contains(&file),
        "*" => err.contains(&format!("{file}:")),
        lc => err.contains(&format!("--> {file}:{lc}\n")),
    };
    // One error, shown as rustc shows one (message, place, line, caret).
    let ok = out.status.code() == Some(2)
        && start.elapsed() < Duration::from_secs(10)
        && !err.contains("panicked")
        && err.lines().filter(|l| l.starts_with("error")).count() == 1
        && err.contains(expect)
        && located;
    (!ok).then(|| {
        format!(
            "exit {:?}, want `{expect}` at {loc}: {err}",
            out.status.code()
        )
    })
}

fn refused(args: &[&str], file: &Path, expect: &str, loc: &str, what: &str) {
    if let Some(problem) = refusal_problem(args, file, expect, loc) {
        panic!("{what}: {problem}");
    }
}

#[test]
fn every_bad_input_is_refused_cleanly_without_a_connection() {
    let (port, connections) = listener();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    std::fs::write(&key, "").unwrap();
    let good = prepare(
        &std::fs::read(format!("{ROOT}/tests/bad_inputs/good.yml")).unwrap(),
        port,
        &key,
    );
    let good_path = dir.path().join("good.yml");
    std::fs::write(&good_path, &good).unwrap();
    let index = std::fs::read_to_string(format!("{ROOT}/tests/bad_inputs/expect.tsv")).unwrap();
    let mut cases = 0;
    let mut problems = Vec::new();
    for line in index.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, expect, loc) = (cols[0], cols[1], cols[2]);
        let raw = std::fs::read(format!("{ROOT}/tests/bad_inputs/{file}")).unwrap();
        let raw = if file.ends_with(".patch") {
            patched_playbook(file, &String::from_utf8(raw).unwrap()).into_bytes()
        } else {
            raw
        };
        let bytes = prepare(&raw, port, &key);
        let case_dir = dir.path().join(file.replace('/', "_"));
        std::fs::create_dir_all(&case_dir).unwrap();
        if file.starts_with("inventory/") {
            let inv = case_dir.join("inventory.yml");
            std::fs::write(&inv, &bytes).unwrap();
            problems.extend(
                refusal_problem(
                    &["-i", inv.to_str().unwrap(), "--project", ROOT, "provision"],
                    &inv,
                    expect,
                    loc,
                )
                .map(|p| format!("{file}: {p}")),
            );
        } else {
            let p = project(&case_dir, &bytes);
            let named = p.join("playbooks/provision.yml");
            problems.extend(
                refusal_problem(
                    &[
                        "-i",
                        good_path.to_str().unwrap(),
                        "--project",
                        p.to_str().unwrap(),
                        "provision",
                    ],
                    &named,
                    expect,
                    loc,
                )
                .map(|p| format!("{file}: {p}")),
            );
        }
        cases += 1;
    }
    assert!(
        problems.is_empty(),
        "{} of {cases} cases:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(cases >= 70, "corpus has {cases} cases");

    // A huge inventory is refused before it is parsed.
    let huge = dir.path().join("huge.yml");
    let mut big = good.clone();
    big.extend(std::iter::repeat_n(b'#', 2 * 1024 * 1024));
    std::fs::write(&huge, big).unwrap();
    refused(
        &["-i", huge.to_str().unwrap(), "provision"],
        &huge,
        "inventories over",
        "-",
        "huge",
    );
    // A device claims no size: the cap holds while reading.
    refused(
        &["-i", "/dev/zero", "provision"],
        Path::new("/dev/zero"),
        "inventories over",
        "-",
        "endless",
    );

    // Broken templates name the template and the line.
    let pb = std::fs::read(format!("{ROOT}/playbooks/provision.yml")).unwrap();
    for (name, body, expect) in [
        ("syntax", "line one\n{% if %}\n", "syntax error"),
        ("undefined", "a\nb\n{{ mysql.nope }}\n", "undefined value"),
    ] {
        let case_dir = dir.path().join(format!("template_{name}"));
        let p = case_dir.join("project");
        std::fs::create_dir_all(p.join("playbooks")).unwrap();
        std::fs::write(p.join("playbooks/provision.yml"), &pb).unwrap();
        copy_dir(
            Path::new(&format!("{ROOT}/templates")),
            &p.join("templates"),
        );
        let t = p.join("templates/mariadb/foobar.cnf.j2");
        std::fs::write(&t, body).unwrap();
        let line = if name == "syntax" { "2:1" } else { "3:1" };
        refused(
            &[
                "-i",
                good_path.to_str().unwrap(),
                "--project",
                p.to_str().unwrap(),
                "provision",
            ],
            &t,
            expect,
            line,
            name,
        );
    }

    // Bad arguments are bad input too.
    let out = foobar()
        .args([
            "provision",
            "--limit",
            "nosuch",
            "-i",
            good_path.to_str().unwrap(),
        ])
        .env("FOOBAR_TEST_DB_PASSWORD", "a-good-password-123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = foobar()
        .args(["provision", "--frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // An argument that is not UTF-8 too, with or without --json.
    let not_utf8 = std::ffi::OsStr::from_bytes(b"\xff");
    for json in [&[][..], &["--json"]] {
        let out = foobar()
            .arg("render")
            .args(json)
            .arg(not_utf8)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    }
    // An impossible date is refused, not rolled over into March.
    let out = foobar()
        .args([
            "-i",
            good_path.to_str().unwrap(),
            "restart",
            "--now",
            "2026-02-31T00:00",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2026-02-31"),
        "{}",
        text(&out.stderr)
    );
    let out = foobar()
        .args([
            "-i",
            good_path.to_str().unwrap(),
            "provision",
            "--forks",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "no bad input may lead to a connection"
    );
    // The listener works: a real connection is counted.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.read(&mut [0u8; 1]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

/// The shipped playbook with a case's hunks applied: each hunk's `-` lines
/// are replaced by its `+` lines at their first occurrence. A hunk whose
/// `-` lines the playbook no longer has fails the test, so a case cannot
/// drift from the playbook it breaks.
fn patched_playbook(case: &str, patch: &str) -> String {
    let mut text = std::fs::read_to_string(format!("{ROOT}/playbooks/provision.yml")).unwrap();
    for hunk in patch
        .split("@@\n")
        .filter(|h| h.lines().any(|l| !l.starts_with('#')))
    {
        let side = |mark: char| -> String {
            hunk.lines()
                .filter_map(|l| l.strip_prefix(mark))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let (old, new) = (side('-'), side('+'));
        assert!(
            text.contains(&old),
            "{case}: the playbook no longer has these lines; update the case:\n{old}"
        );
        text = text.replacen(&old, &new, 1);
    }
    text
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
