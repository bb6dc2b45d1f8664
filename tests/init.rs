//! `foobar init`: what a production inventory needs is said, not guessed;
//! what it writes loads and renders. That a lab inventory from it
//! provisions as is: tests/lab_init.rs.

mod common;

use common::*;

fn init(args: &[&str]) -> std::process::Output {
    foobar().arg("init").args(args).output().unwrap()
}

#[test]
fn every_kind_writes_an_inventory_that_loads_and_an_app_of_its_kind() {
    for (kind, entry) in [
        ("gunicorn", "app.py"),
        ("php-fpm", "app.php"),
        ("puma", "config.ru"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = init(&[
            dir.path().to_str().unwrap(),
            "--domain",
            "shop.example",
            "--address",
            "203.0.113.10",
            "--kind",
            kind,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(dir.path().join("app").join(entry).is_file(), "{kind}");
        let inv = std::fs::read_to_string(dir.path().join("inventory.yml")).unwrap();
        assert!(inv.contains(&format!("kind: {kind}")) && inv.contains("zone: shop.example"));
        assert!(
            inv.contains("env:FOOBAR_DB_PASSWORD"),
            "no secret in the file"
        );
        // It renders: every template, locally.
        let out = foobar()
            .current_dir(dir.path())
            .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
            .args(["-i", "inventory.yml", "render"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind}: {}", text(&out.stderr));
        // Nothing is overwritten without --force.
        let again = init(&[dir.path().to_str().unwrap(), "--address", "203.0.113.10"]);
        assert_eq!(again.status.code(), Some(2));
    }
    let out = init(&["--domain", "shop.example"]);
    assert_eq!(out.status.code(), Some(2), "an address is needed");
    assert!(text(&out.stderr).contains("--address"));
}
