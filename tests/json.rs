//! `--json` as a contract: every command's real output validates against
//! its schema in schemas/, failures included (bad input, bad arguments,
//! outside a window), and carries `schema_version`. Here what needs no
//! server; the commands that contact servers: tests/lab_json.rs.

mod common;

use common::*;

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
    let (code, doc) = valid_json(&["-i", bad.to_str().unwrap(), "render"], "error");
    assert_eq!(code, Some(2));
    assert_eq!(doc["error"]["kind"], "bad_input");
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(doc["error"]["location"]["line"].as_u64().unwrap() > 0);
    assert_eq!(doc["error"]["help"], "did you mean `workers`?");

    let (code, doc) = valid_json(&["provision", "--frobnicate"], "error");
    assert_eq!(
        (code, doc["error"]["kind"].as_str()),
        (Some(2), Some("bad_input"))
    );

    let (code, doc) = valid_json(
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
    let (code, doc) = valid_json(&["-i", "inventory/foobar.yml", "render"], "render");
    assert_eq!(code, Some(0));
    assert!(doc["files"].as_array().unwrap().len() >= 8);
    let (code, doc) = valid_json(
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
    let (code, _) = valid_json(
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
