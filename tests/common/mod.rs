//! Helpers shared by the integration tests, `mod common;` in each test
//! binary. Here what the hermetic tier uses (the real binary, its output,
//! the JSON schemas): nothing that needs root, a server or the network.
//! The lab harness is `lab` (tests/common/lab.rs), compiled only with the
//! `lab` feature, for the lab tier (tests/lab_*.rs): `use common::lab::*;`.

#![allow(dead_code)] // each test binary uses its own subset

use assert_cmd::Command;

#[cfg(feature = "lab")]
pub mod lab;

/// The main lab's inventory (also read, never provisioned, by hermetic
/// tests).
pub const LAB: &str = "inventory/lab.yml";

/// Longer than any one run of the suite takes (a pristine HA lab: ~6 min),
/// short enough that a run that hangs fails its test, named, instead of
/// holding its lab group until CI's deadline.
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// The foobar binary, run from the project root, without backtraces,
/// killed after [`RUN_LIMIT`].
pub fn foobar() -> Command {
    let mut cmd = Command::cargo_bin("foobar").unwrap();
    cmd.timeout(RUN_LIMIT)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "0")
        .env_remove("FOOBAR_INVENTORY")
        .env_remove("FOOBAR_PROJECT");
    cmd
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.json")),
    )
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// Runs foobar with `args` and `--json`; the document on stdout, valid
/// against `schemas/SCHEMA_NAME.json`.
pub fn valid_json(args: &[&str], schema_name: &str) -> (Option<i32>, serde_json::Value) {
    let out = foobar()
        .args(args)
        .arg("--json")
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let validator = json_schema(schema_name);
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{args:?} against {schema_name}: {errors:?}\n{doc:#}"
    );
    assert_eq!(doc["schema_version"], 1);
    (out.status.code(), doc)
}

/// A copy of `inventory` (a path in the repository) in `dir` with `changes`
/// made to its text, its code base path made absolute.
pub fn inventory_with(
    inventory: &str,
    dir: &std::path::Path,
    changes: &[(&str, &str)],
) -> std::path::PathBuf {
    let mut text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(inventory))
            .unwrap()
            .replace(
                "../apps/python",
                &format!("{}/apps/python", env!("CARGO_MANIFEST_DIR")),
            );
    for (from, to) in changes {
        assert!(text.contains(from), "{from} is in {inventory}");
        text = text.replace(from, to);
    }
    let p = dir.join("inventory.yml");
    std::fs::write(&p, text).unwrap();
    p
}
