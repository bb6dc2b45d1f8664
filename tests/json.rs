//! `--json` as a contract: every command's real output validates against
//! its schema in schemas/, failures included (bad input, bad arguments,
//! outside a window), and carries `schema_version`.

mod common;

use common::*;
use serde_json::Value;

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.json")),
    )
    .unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// Runs foobar with `args` and `--json`; the document on stdout, valid
/// against `schema`.
fn valid(args: &[&str], schema_name: &str) -> (Option<i32>, Value) {
    let out = foobar()
        .args(args)
        .arg("--json")
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let validator = schema(schema_name);
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{args:?} against {schema_name}: {errors:?}\n{doc:#}"
    );
    assert_eq!(doc["schema_version"], 1);
    (out.status.code(), doc)
}

#[test]
fn failures_are_json_too() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("inv.yml");
    std::fs::write(
        &bad,
        std::fs::read_to_string("inventory/foobar.yml")
            .unwrap()
            .replace("  workers: 4", "  wokers: 4"),
    )
    .unwrap();
    let (code, doc) = valid(&["-i", bad.to_str().unwrap(), "render"], "error");
    assert_eq!(code, Some(2));
    assert_eq!(doc["error"]["kind"], "bad_input");
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(doc["error"]["location"]["line"].as_u64().unwrap() > 0);
    assert_eq!(doc["error"]["help"], "did you mean `workers`?");

    let (code, doc) = valid(&["provision", "--frobnicate"], "error");
    assert_eq!(
        (code, doc["error"]["kind"].as_str()),
        (Some(2), Some("bad_input"))
    );

    let (code, doc) = valid(
        &[
            "-i",
            "inventory/lab.yml",
            "restart",
            "--now",
            "2026-11-25T12:00",
        ],
        "error",
    );
    assert_eq!(code, Some(5));
    assert_eq!(doc["error"]["kind"], "outside_window");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Sun 2026-11-29 02:00 UTC"));
}

#[test]
fn commands_without_a_server() {
    let (code, doc) = valid(&["-i", "inventory/foobar.yml", "render"], "render");
    assert_eq!(code, Some(0));
    assert!(doc["files"].as_array().unwrap().len() >= 8);
    let (code, doc) = valid(
        &[
            "-i",
            "inventory/foobar.yml",
            "diagram",
            "--format",
            "mermaid",
        ],
        "diagram",
    );
    assert_eq!((code, doc["format"].as_str()), (Some(0), Some("mermaid")));
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = valid(
        &[
            "init",
            dir.path().to_str().unwrap(),
            "--address",
            "203.0.113.10",
        ],
        "init",
    );
    assert_eq!(code, Some(0));
}

#[test]
fn every_command_that_contacts_servers() {
    let _turn = lab_turn();
    converged();
    let (code, doc) = valid(&["-i", LAB, "provision"], "provision");
    assert_eq!(code, Some(0));
    let steps = doc["hosts"][0]["steps"].as_array().unwrap();
    assert!(steps
        .iter()
        .any(|s| s["kind"] == "template" && s["target"] == "/etc/nginx/sites-enabled/foobar.conf"));
    assert_eq!(
        valid(&["-i", LAB, "provision", "--check"], "provision").0,
        Some(0)
    );
    let (code, doc) = valid(&["-i", LAB, "restart", "web", "--force"], "restart");
    assert_eq!(code, Some(0));
    assert_eq!(doc["services"][0]["method"], "checked_reload");
    assert_eq!(valid(&["-i", LAB, "dns-check"], "dns-check").0, Some(0));
    assert_eq!(
        valid(&["-i", LAB, "maintenance", "status"], "maintenance").0,
        Some(0)
    );
    assert_eq!(
        valid(&["-i", LAB, "lab", "status"], "lab-status").0,
        Some(0)
    );
    assert_eq!(valid(&["-i", LAB, "deploy"], "deploy").0, Some(0));
    assert_eq!(valid(&["-i", LAB, "status"], "status").0, Some(0));
    let (code, doc) = valid(&["-i", LAB, "releases"], "releases");
    assert_eq!(code, Some(0));
    let live = doc["servers"][0]["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["live"] == true)
        .count();
    assert_eq!(live, 1, "{doc}");
    // No release was live before this one on a converged lab: refused,
    // and the document says why.
    let (_, doc) = valid(&["-i", LAB, "rollback", "0123456789ab"], "rollback");
    assert!(doc["servers"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("not on this server"));
}
