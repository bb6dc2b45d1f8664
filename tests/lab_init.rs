//! `foobar init`: what it writes provisions as is on the lab. The rest of
//! `init`, without a server: tests/init.rs.

mod common;

use common::lab::*;
use common::*;

fn init(args: &[&str]) -> std::process::Output {
    foobar().arg("init").args(args).output().unwrap()
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
