//! `foobar restart` and `foobar maintenance` on the lab server.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::lab::*;
use common::*;
use serde_json::Value;

const INSIDE: &str = "2026-11-29T02:30"; // Sunday, inside the lab's 02:00-04:00 window
const OUTSIDE: &str = "2026-11-25T20:00"; // a Wednesday evening

fn restart(args: &[&str]) -> (Option<i32>, Value, String) {
    restart_json(LAB, args)
}

/// (status, has Retry-After, body) of a GET through nginx.
fn get(path: &str) -> (u16, bool, String) {
    let mut s = std::net::TcpStream::connect((LAB_ADDRESS, 80)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: www.foobar.com\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_ascii_lowercase().contains("retry-after: 30"),
        body.to_string(),
    )
}

#[test]
fn windows_decide_and_force_overrides() {
    let _turn = lab_turn();
    converged(LAB);
    let before = ssh_contacts(LAB, LAB_SERVER);
    let (code, _, err) = restart(&["app", "--now", OUTSIDE]);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains("the next window opens Sun 2026-11-29 02:00 UTC"),
        "{err}"
    );
    assert_eq!(
        ssh_contacts(LAB, LAB_SERVER).since(before),
        SshContacts {
            logins: 0,
            sessions: 0
        },
        "refused before any connection"
    );

    let (code, json, err) = restart(&["app", "--now", INSIDE]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["forced"], false);
    assert_eq!(json["services"][0]["ok"], true);
    assert_eq!(json["services"][0]["how"], "graceful reload (HUP)");
    assert!(json["services"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["passed"] == true));

    let (code, json, err) = restart(&["web", "--now", OUTSIDE, "--force"]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["forced"], true);
    assert!(err.contains("FORCED"), "{err}");
    let out = foobar()
        .args(["-i", LAB, "restart", "dns", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("forced outside the maintenance windows"));
}

#[test]
fn a_held_lock_refuses_restart_and_provision_until_broken() {
    let _turn = lab_turn();
    converged(LAB);
    on_server_ok(LAB, LAB_SERVER, "mkdir /var/lib/foobar/lock && echo 'alice@laptop, foobar restart db' > /var/lib/foobar/lock/owner");
    let (code, _, err) = restart(&["app", "--force"]);
    assert_eq!(code, Some(6), "{err}");
    assert!(
        err.contains("locked by another foobar run (alice@laptop, foobar restart db)"),
        "{err}"
    );
    let (code, out) = provision(LAB).text();
    assert_eq!(code, Some(6), "{out}");
    // --check only reads: no lock needed.
    let out = foobar()
        .args(["-i", LAB, "provision", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (code, _, err) = restart(&["app", "--force", "--break-lock"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        on_server_ok(
            LAB,
            LAB_SERVER,
            "ls /var/lib/foobar/lock 2>/dev/null | wc -l"
        )
        .trim(),
        "0",
        "released"
    );
}

#[test]
fn a_failing_health_check_rolls_the_release_back() {
    let _turn = lab_turn();
    converged(LAB);
    let good = on_server_ok(LAB, LAB_SERVER, "readlink /srv/foobar/current");
    let p = project_copy();
    let app = p.path().join("apps/python/app.py");
    let code = std::fs::read_to_string(&app).unwrap().replace(
        "return _json(start_response, \"200 OK\", {\"status\": \"ok\"})",
        "return _json(start_response, \"500 Internal Server Error\", {\"status\": \"broken\"})",
    );
    std::fs::write(&app, code).unwrap();
    let (code, out) = provision(p.path().join(LAB)).project(p.path()).text();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("check failed at the app server (gunicorn) hop"),
        "{out}"
    );
    assert_ne!(
        on_server_ok(LAB, LAB_SERVER, "readlink /srv/foobar/current"),
        good
    );

    let (code, json, err) = restart(&["app", "--force"]);
    assert_eq!(code, Some(1), "{err}{json}");
    let s = &json["services"][0];
    assert_eq!(
        format!("releases/{}\n", s["rolled_back_to"].as_str().unwrap()),
        good,
        "{json}"
    );
    assert!(
        s["detail"].as_str().unwrap().contains("checks pass again"),
        "{json}"
    );
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "readlink /srv/foobar/current"),
        good
    );
    assert_eq!(get("/healthz").0, 200);
}

#[test]
fn a_database_restart_serves_the_maintenance_page_and_static_files() {
    let _turn = lab_turn();
    converged(LAB);
    let restarting = std::thread::spawn(|| restart(&["db", "--force"]));
    let start = Instant::now();
    let (mut maintenance_seen, mut static_statuses) = (false, Vec::new());
    while !restarting.is_finished() && start.elapsed() < Duration::from_secs(60) {
        let (status, retry_after, body) = get("/visits");
        if status == 503 && retry_after && body.contains("under maintenance") {
            maintenance_seen = true;
        }
        static_statuses.push(get("/index.html").0);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, json, err) = restarting.join().unwrap();
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(
        maintenance_seen,
        "the maintenance page was served during the restart"
    );
    assert!(
        static_statuses.iter().all(|s| *s == 200),
        "static files kept serving: {static_statuses:?}"
    );
    assert_eq!(
        get("/visits").0,
        200,
        "the page is gone once the database answers"
    );
}

#[test]
fn maintenance_page_by_hand() {
    let _turn = lab_turn();
    converged(LAB);
    foobar()
        .args(["-i", LAB, "maintenance", "on"])
        .assert()
        .success();
    let (status, retry_after, _) = get("/visits");
    assert_eq!((status, retry_after), (503, true));
    assert_eq!(get("/index.html").0, 200);
    let out = foobar()
        .args(["-i", LAB, "maintenance", "status"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("web1: maintenance page on"));
    foobar()
        .args(["-i", LAB, "maintenance", "off"])
        .assert()
        .success();
    assert_eq!(get("/visits").0, 200);
}
