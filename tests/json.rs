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
    assert_eq!(doc["errors"][0]["location"], doc["error"]["location"]);

    // Every mistake found, the first `error`'s.
    let text = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("  ttl: 3600", "  tll: 3600");
    std::fs::write(&bad, text).unwrap();
    let (code, doc) = valid_json(&["-i", bad.to_str().unwrap(), "render"], "error");
    assert_eq!(code, Some(2));
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{doc:#}");
    assert_eq!(errors[0]["message"], doc["error"]["message"]);
    assert!(errors
        .iter()
        .all(|e| e["location"]["line"].as_u64().unwrap() > 0));
    let helps: Vec<&str> = errors.iter().map(|e| e["help"].as_str().unwrap()).collect();
    assert!(helps.contains(&"did you mean `ttl`?"), "{doc:#}");
    assert!(helps.contains(&"did you mean `workers`?"), "{doc:#}");

    let (code, doc) = valid_json(&["provision", "--frobnicate"], "error");
    assert_eq!(
        (code, doc["error"]["kind"].as_str()),
        (Some(2), Some("bad_input"))
    );
    assert_eq!(doc["command"], "provision");
    assert_eq!(doc["error"]["argument"]["name"], "--frobnicate");

    // The lab's key, known_hosts and password exist only once `lab up`
    // made them, and a command that connects reads them first.
    let inventory = inventory_with(
        LAB,
        dir.path(),
        &[
            ("/var/lib/foobar/lab/id_ed25519", "/dev/null"),
            ("/var/lib/foobar/lab/known_hosts", "/dev/null"),
            (
                "file:/var/lib/foobar/lab/secrets/mysql_password",
                "env:FOOBAR_DB_PASSWORD",
            ),
        ],
    );
    let (code, doc) = valid_json(
        &[
            "-i",
            inventory.to_str().unwrap(),
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

/// Bad arguments keep clap's detail: which argument, why, the suggestion,
/// and the command they were given to.
#[test]
fn bad_arguments_say_which_and_why() {
    let (code, doc) = valid_json(&["provison"], "error");
    assert_eq!(code, Some(2));
    assert_eq!(doc["command"], serde_json::Value::Null, "{doc:#}");
    let e = &doc["error"];
    assert_eq!(
        e["message"], "unrecognized subcommand 'provison'",
        "{doc:#}"
    );
    assert_eq!(e["argument"]["name"], "provison");
    assert!(
        e["help"].as_str().unwrap().contains("'provision'"),
        "{doc:#}"
    );

    let (code, doc) = valid_json(&["--forks", "0", "status"], "error");
    assert_eq!(code, Some(2));
    assert_eq!(doc["command"], "status");
    let e = &doc["error"];
    assert_eq!(e["argument"]["name"], "--forks <FORKS>", "{doc:#}");
    assert_eq!(e["argument"]["value"], "0");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("not a number of servers"),
        "{doc:#}"
    );

    let (_, doc) = valid_json(&["lab", "status", "--frobnicate"], "error");
    assert_eq!(doc["command"], "lab status", "{doc:#}");
    let (_, doc) = valid_json(&["restart", "--serial"], "error");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("a value is required for '--serial <SERIAL>'"),
        "{doc:#}"
    );
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
    let svg = dir.path().join("d.svg");
    let (code, doc) = valid_json(
        &[
            "-i",
            "inventory/foobar.yml",
            "diagram",
            "-o",
            svg.to_str().unwrap(),
        ],
        "diagram",
    );
    assert_eq!(code, Some(0));
    assert_eq!(doc["written_to"], svg.to_str().unwrap());
    assert_eq!(
        doc["bytes"].as_u64(),
        Some(std::fs::metadata(&svg).unwrap().len())
    );

    let (code, doc) = valid_json(&["man", "provision"], "man");
    assert_eq!(
        (code, doc["page"].as_str()),
        (Some(0), Some("foobar-provision.1"))
    );
    assert!(doc["text"].as_str().unwrap().contains(".SH OPTIONS"));
    let (code, doc) = valid_json(
        &["man", "--out", dir.path().join("man").to_str().unwrap()],
        "man",
    );
    assert_eq!(code, Some(0));
    let written = doc["written"].as_array().unwrap();
    assert!(written
        .iter()
        .all(|p| std::path::Path::new(p.as_str().unwrap()).is_file()));
    let (code, doc) = valid_json(&["completions", "zsh"], "completions");
    assert_eq!((code, doc["shell"].as_str()), (Some(0), Some("zsh")));
    assert!(doc["script"].as_str().unwrap().contains("#compdef foobar"));

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

/// Every schema closes its objects (a field the code adds must be added
/// to its schema, or the tests fail) and says what each field means.
#[test]
fn schemas_close_their_objects_and_describe_every_field() {
    fn walk(schema: &serde_json::Value, at: &str, problems: &mut Vec<String>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        if let Some(properties) = object.get("properties").and_then(|p| p.as_object()) {
            if object.get("additionalProperties").is_none() {
                problems.push(format!("{at}: additionalProperties is not said"));
            }
            for (name, property) in properties {
                if property.get("description").is_none() {
                    problems.push(format!("{at}/{name}: no description"));
                }
                walk(property, &format!("{at}/{name}"), problems);
            }
        }
        if let Some(items) = object.get("items") {
            walk(items, &format!("{at}[]"), problems);
        }
    }
    let mut problems = Vec::new();
    let mut schemas = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas")).unwrap() {
        let path = entry.unwrap().path();
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        walk(&schema, &path.display().to_string(), &mut problems);
        schemas += 1;
    }
    assert!(schemas >= 19, "{schemas} schemas");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
