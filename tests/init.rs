//! `foobar init`: what it writes provisions as is on the lab, and what a
//! production inventory needs is said, not guessed.

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

#[test]
fn a_lab_inventory_from_init_provisions_as_is() {
    let _turn = lab_turn();
    lab_up(LAB);
    let dir = tempfile::tempdir().unwrap();
    let out = init(&[
        dir.path().to_str().unwrap(),
        "--lab",
        "--domain",
        "mysite.test",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = foobar()
        .current_dir(dir.path())
        .args(["-i", "inventory.yml", "provision"])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("checks: 5 passed"), "{all}");
    assert_eq!(http_get(LAB_ADDRESS, "www.mysite.test", "/healthz").0, 200);
}
