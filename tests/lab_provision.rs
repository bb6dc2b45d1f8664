//! `foobar provision` end to end on the main lab server: from pristine to
//! a page served by nginx -> gunicorn -> MariaDB, then idempotence, check
//! mode and handler recovery.

mod common;

use common::lab::*;
use common::*;
use serde_json::Value;

#[test]
fn pristine_server_to_every_hop_then_nothing_to_change() {
    let _turn = lab_turn();
    pristine();

    // Check mode on a pristine server: changes pending, nothing changed.
    let (code, json, err) = provision(LAB).args(&["--check"]).json();
    assert_eq!(code, Some(4), "{err}");
    assert!(json["totals"]["changed"].as_u64().unwrap() > 10, "{json}");
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "dpkg-query -W nginx 2>/dev/null | wc -l").trim(),
        "0",
        "--check installed nothing"
    );
    assert_eq!(
        on_server_ok(
            LAB,
            LAB_SERVER,
            "ls -d /srv/foobar /etc/foobar 2>/dev/null | wc -l"
        )
        .trim(),
        "0"
    );

    // The real run: everything changes and every hop is proven.
    let (code, json, err) = provision(LAB).json();
    assert_eq!(code, Some(0), "{err}\n{json}");
    assert_eq!(json["totals"]["failed"], 0);
    assert_eq!(json["totals"]["checks_failed"], 0);
    assert_eq!(json["totals"]["checks_passed"], 10, "{json}");
    assert!(json["totals"]["changed"].as_u64().unwrap() > 10);

    // From outside: static from nginx, dynamic from the app with a value
    // that MySQL keeps between requests.
    let (status, body) = http_get(LAB_ADDRESS, "www.foobar.com", "/index.html");
    assert_eq!(status, 200);
    assert!(body.contains("www.foobar.com"));
    let count = |body: &str| -> u64 {
        let v: Value = serde_json::from_str(body.trim()).unwrap();
        v["visits"].as_u64().unwrap()
    };
    let (_, first) = http_get(LAB_ADDRESS, "www.foobar.com", "/visits");
    let (_, second) = http_get(LAB_ADDRESS, "www.foobar.com", "/visits");
    assert_eq!(count(&second), count(&first) + 1, "{first} then {second}");
    let stored = on_server_ok(
        LAB,
        LAB_SERVER,
        "mysql -N -B -e 'SELECT count FROM foobar.visits'",
    );
    assert_eq!(stored.trim().parse::<u64>().unwrap(), count(&second));
    // Over IPv6 (the server's `ipv6`) the same site and database; and
    // provision's checks ran there too.
    let (_, third) = http_get(LAB_ADDRESS_V6, "www.foobar.com", "/visits");
    assert_eq!(count(&third), count(&second) + 1, "over IPv6: {third}");
    assert_eq!(http_get(LAB_ADDRESS_V6, "foobar.com", "/").0, 301);
    assert!(
        json["checks"].as_array().unwrap().iter().any(|c| c["hop"]
            .as_str()
            .unwrap()
            .starts_with("IPv6 fd00:fb:afa::a -> ")),
        "{json}"
    );
    // The bare domain redirects to www.
    assert_eq!(http_get(LAB_ADDRESS, "foobar.com", "/").0, 301);

    // Least privilege: the app user has its own database only.
    let grants = on_server_ok(
        LAB,
        LAB_SERVER,
        "mysql -N -B -e \"SHOW GRANTS FOR 'foobar'@'localhost'\"",
    );
    assert!(grants.contains("ON `foobar`.*"), "{grants}");
    // ... and there, what a migration does, DROP included.
    on_server_ok(
        LAB,
        LAB_SERVER,
        "set -a; . /etc/foobar/app.env; mysql -u \"$DB_USER\" -p\"$DB_PASSWORD\" \"$DB_NAME\" -e \
         'CREATE TABLE m (id INT PRIMARY KEY); CREATE VIEW mv AS SELECT id FROM m; \
          CREATE TRIGGER mt BEFORE INSERT ON m FOR EACH ROW SET NEW.id = NEW.id; \
          DROP TRIGGER mt; DROP VIEW mv; DROP TABLE m'",
    );
    assert!(
        !grants.contains("ON *.*") || grants.contains("GRANT USAGE ON *.*"),
        "{grants}"
    );
    assert_eq!(
        on_server_ok(LAB, LAB_SERVER, "stat -c %a /etc/foobar/app.env").trim(),
        "600"
    );

    // Again: nothing changes, checks still pass.
    let (code, json, err) = provision(LAB).json();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json["totals"]["changed"], 0, "{json}");
    assert_eq!(json["totals"]["checks_passed"], 10);

    // Check mode on a converged server: nothing pending.
    let (code, json, _) = provision(LAB).args(&["--check"]).json();
    assert_eq!(code, Some(0));
    assert_eq!(json["totals"]["changed"], 0);
}

#[test]
fn a_failed_run_leaves_its_handler_pending_and_the_next_run_runs_it() {
    let _turn = lab_turn();
    lab_up(LAB);
    let (code, _, err) = provision(LAB).json();
    assert_eq!(code, Some(0), "{err}");
    // A stale default site comes back and nginx is stopped by hand, with a
    // broken extra config that keeps it from starting. The run removes the
    // default site (recording `reload nginx`), then fails to start nginx
    // before the handler could run.
    on_server_ok(
        LAB,
        LAB_SERVER,
        "systemctl stop nginx && ln -s /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default && \
         echo 'this is not nginx config' > /etc/nginx/conf.d/broken.conf",
    );
    let (code, json, _) = provision(LAB).json();
    assert_eq!(code, Some(1), "{json}");
    assert!(
        json["hosts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("service nginx"),
        "{json}"
    );
    let pending = on_server_ok(
        LAB,
        LAB_SERVER,
        "cat /var/lib/foobar/pending-handlers 2>/dev/null || true",
    );
    assert!(pending.contains("reload nginx"), "pending: {pending:?}");

    // Fixed by hand; the next run changes no file, yet runs the handler
    // left pending, and converges.
    on_server_ok(LAB, LAB_SERVER, "rm /etc/nginx/conf.d/broken.conf");
    let (code, json, err) = provision(LAB).json();
    assert_eq!(code, Some(0), "{err}\n{json}");
    let steps = json["hosts"][0]["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "handler: reload nginx" && s["status"] == "changed"),
        "{json}"
    );
    assert_eq!(
        on_server_ok(
            LAB,
            LAB_SERVER,
            "cat /var/lib/foobar/pending-handlers 2>/dev/null || true"
        )
        .trim(),
        ""
    );
}

#[test]
fn diff_shows_changes_with_the_password_masked() {
    let _turn = lab_turn();
    lab_up(LAB);
    let (code, _, err) = provision(LAB).json();
    assert_eq!(code, Some(0), "{err}");
    on_server_ok(
        LAB,
        LAB_SERVER,
        "sed -i 's/^DB_PASSWORD=.*/DB_PASSWORD=stale/' /etc/foobar/app.env",
    );
    let out = foobar()
        .args(["-i", LAB, "provision", "--check", "--diff"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    let password = std::fs::read_to_string("/var/lib/foobar/lab/secrets/mysql_password").unwrap();
    // The old value too is masked: it may be a secret's earlier value.
    assert!(!stderr.contains("stale"), "{stderr}");
    assert!(stderr.contains("-DB_PASSWORD=********\n"), "{stderr}");
    assert!(
        stderr.contains("+DB_PASSWORD=******** (new value)"),
        "{stderr}"
    );
    assert!(!stderr.contains(password.trim()));
    assert!(!text(&out.stdout).contains(password.trim()));
    let (code, _, err) = provision(LAB).json();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn bad_inventory_exits_2_with_its_location_and_contacts_no_server() {
    let _turn = lab_turn();
    lab_up(LAB);
    let before = ssh_contacts(LAB, LAB_SERVER);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    let text_in = std::fs::read_to_string(LAB)
        .unwrap()
        .replace("  ttl: 300", "  ttl: 5");
    let line = 1 + text_in
        .lines()
        .position(|l| l == "  ttl: 5")
        .expect("the lab inventory has a ttl");
    std::fs::write(&bad, text_in).unwrap();
    let out = foobar()
        .args(["-i", bad.to_str().unwrap(), "provision"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("--> {}:{line}:8\n", bad.display()))
            && err.contains("domain.ttl: ttl 5 is out of range"),
        "{err}"
    );
    // Not even over a connection kept from an earlier run.
    assert_eq!(
        ssh_contacts(LAB, LAB_SERVER).since(before),
        SshContacts {
            logins: 0,
            sessions: 0
        }
    );
}
