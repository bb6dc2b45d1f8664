//! `foobar lab`'s bad input: a lab command on an inventory without a lab.
//! The lab itself, on real servers and as root: tests/lab_lab.rs.

mod common;

use common::*;

#[test]
fn lab_commands_need_a_lab_inventory() {
    let out = foobar()
        .args(["-i", "inventory/foobar.yml", "lab", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bad input");
    assert!(
        text(&out.stderr).contains("has no `lab:` section"),
        "{}",
        text(&out.stderr)
    );
}
