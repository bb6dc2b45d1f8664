//! `foobar init`: what a production inventory needs is said, not guessed;
//! what it writes loads and renders. That a lab inventory from it
//! provisions as is: tests/lab_init.rs.

mod common;

use common::*;

fn init(args: &[&str]) -> std::process::Output {
    foobar().arg("init").args(args).output().unwrap()
}

/// `init` into `dir` for shop.example at 203.0.113.10, with `more`.
fn init_shop(dir: &std::path::Path, more: &[&str]) -> std::process::Output {
    let site = [
        dir.to_str().unwrap(),
        "--domain",
        "shop.example",
        "--address",
        "203.0.113.10",
    ];
    init(&[&site[..], more].concat())
}

#[test]
fn every_kind_writes_an_inventory_that_loads_and_an_app_of_its_kind() {
    for (kind, entry) in [
        ("gunicorn", "app.py"),
        ("php-fpm", "app.php"),
        ("puma", "config.ru"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = init_shop(dir.path(), &["--kind", kind]);
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
fn stages_are_a_base_and_one_inventory_each_that_render_merged() {
    let dir = tempfile::tempdir().unwrap();
    let out = init_shop(dir.path(), &["--stages", "staging,production"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stage = std::fs::read_to_string(dir.path().join("staging.yml")).unwrap();
    assert!(stage.starts_with("# The staging stage") && stage.contains("extends: base.yml"));
    // Each stage is the base with its own zone and password: the last
    // serves the domain.
    for (stage, zone) in [
        ("staging", "staging.shop.example"),
        ("production", "shop.example"),
    ] {
        let variable = format!("FOOBAR_{}_DB_PASSWORD", stage.to_uppercase());
        let out = foobar()
            .current_dir(dir.path())
            .env(&variable, "a-long-enough-password")
            .args(["-i", &format!("{stage}.yml"), "render"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{stage}: {}", text(&out.stderr));
        let out = foobar()
            .current_dir(dir.path())
            .args([
                "-i",
                &format!("{stage}.yml"),
                "diagram",
                "--format",
                "mermaid",
            ])
            .output()
            .unwrap();
        assert!(
            text(&out.stdout).contains(&format!("authoritative DNS :53 for {zone}\"")),
            "{stage}: {}",
            text(&out.stdout)
        );
    }
    let out = init_shop(dir.path(), &["--stages", "base"]);
    assert_eq!(out.status.code(), Some(2), "base is the shared file");
}
