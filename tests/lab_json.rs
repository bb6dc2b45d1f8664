//! `--json` as a contract, for every command that contacts servers: its
//! real output on the lab validates against its schema in schemas/ and
//! carries `schema_version`. Failures and commands without a server:
//! tests/json.rs.

mod common;

use common::lab::*;
use common::*;

#[test]
fn every_command_that_contacts_servers() {
    let _turn = lab_turn();
    converged(LAB);
    let (code, doc) = valid_json(&["-i", LAB, "provision"], "provision");
    assert_eq!(code, Some(0));
    let steps = doc["hosts"][0]["steps"].as_array().unwrap();
    assert!(steps
        .iter()
        .any(|s| s["kind"] == "template" && s["target"] == "/etc/nginx/sites-enabled/foobar.conf"));
    assert_eq!(
        valid_json(&["-i", LAB, "provision", "--check"], "provision").0,
        Some(0)
    );
    let (code, doc) = valid_json(&["-i", LAB, "restart", "web", "--force"], "restart");
    assert_eq!(code, Some(0));
    assert_eq!(doc["services"][0]["method"], "checked_reload");
    assert_eq!(
        valid_json(&["-i", LAB, "dns-check"], "dns-check").0,
        Some(0)
    );
    assert_eq!(
        valid_json(&["-i", LAB, "maintenance", "status"], "maintenance").0,
        Some(0)
    );
    assert_eq!(
        valid_json(&["-i", LAB, "lab", "status"], "lab-status").0,
        Some(0)
    );
    assert_eq!(valid_json(&["-i", LAB, "deploy"], "deploy").0, Some(0));
    assert_eq!(valid_json(&["-i", LAB, "status"], "status").0, Some(0));
    let (code, doc) = valid_json(&["-i", LAB, "releases"], "releases");
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
    let (_, doc) = valid_json(&["-i", LAB, "rollback", "0123456789ab"], "rollback");
    assert!(doc["servers"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("not on this server"));
}
