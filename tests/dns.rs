//! `foobar dns-check`'s bad input, refused before any query. Its checks
//! against real BIND are in tests/lab_dns.rs.

mod common;

use common::*;

#[test]
fn bad_resolver_value_is_bad_input() {
    let out = foobar()
        .args(["-i", LAB, "dns-check", "--resolver", "10.0.0.1:notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("write IP or IP:PORT"));
}
