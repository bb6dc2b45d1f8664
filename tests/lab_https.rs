//! HTTPS with a certificate from a real ACME CA: the lab's Pebble (from
//! Debian's packages, started by `foobar lab up`), HTTP-01 through nginx.
//! From a pristine server to HTTPS; the chain verifies against the lab's
//! roots and against nothing else; plain HTTP redirects; old protocols are
//! refused; a forced renewal under load drops no request; a renewal that
//! fails leaves the old certificate serving.

mod common;

use std::process::Command;

use common::lab::*;
use common::*;
use serde_json::Value;

const HTTPS: &str = "inventory/lab-https.yml";
const ADDRESS: &str = "10.247.0.10";
const SERVER: &str = "apps1";
const ROOTS: &str = "/var/lib/foobar/lab-apps/acme/roots.pem";
const CERT: &str = "/etc/foobar/tls/www.foobar.com.crt";

/// curl to the site over HTTPS, the name pinned to the lab server.
fn curl(extra: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--max-time", "10"])
        .args(["--resolve", &format!("www.foobar.com:443:{ADDRESS}")])
        .args(extra)
        .arg("https://www.foobar.com/healthz")
        .output()
        .unwrap()
}

fn serial() -> String {
    on_server_ok(
        HTTPS,
        SERVER,
        &format!("openssl x509 -in {CERT} -noout -serial"),
    )
}

/// The ACME accounts foobar keeps on this machine: (file, content), each
/// checked to be the user's alone.
fn kept_acme_accounts() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(&std::env::var_os("HOME").unwrap()).join(".local/share")
        });
    let dir = data.join("foobar/acme-accounts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
            let content = std::fs::read(&f).unwrap();
            (f, content)
        })
        .collect()
}

#[test]
fn a_pristine_server_to_https_then_renewals() {
    let _turn = lab_turn();
    lab_up(HTTPS);
    foobar()
        .args(["-i", HTTPS, "lab", "reset", SERVER])
        .assert()
        .success();

    let (code, json, err) = provision(HTTPS).json();
    assert_eq!(code, Some(0), "{err}{json}");
    let cert = &json["certificate"];
    assert_eq!(cert["ok"], true, "{json}");
    assert!(
        cert["renewal"].as_str().unwrap().contains("placeholder"),
        "{json}"
    );
    assert!(
        cert["servers"][0]["issuer"]
            .as_str()
            .unwrap()
            .contains("Pebble"),
        "{json}"
    );
    // Every check went over HTTPS (foobar verified the chain and the name)
    // after one proving that plain HTTP redirects.
    let checks = json["checks"].as_array().unwrap();
    assert!(
        checks.len() >= 6 && checks.iter().all(|c| c["passed"] == true),
        "{json}"
    );
    assert_eq!(checks[0]["check"], "plain HTTP redirects to HTTPS");

    // The chain verifies against the lab's roots, and against nothing else.
    let ok = curl(&["--cacert", ROOTS]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("\"status\": \"ok\""));
    assert!(
        !curl(&[]).status.success(),
        "not trusted by the system roots"
    );
    // HSTS; TLS 1.1 refused, 1.2 and 1.3 taken.
    let headers = text(&curl(&["--cacert", ROOTS, "-D", "-", "-o", "/dev/null"]).stdout);
    assert!(
        headers.contains("strict-transport-security: max-age=63072000")
            || headers.contains("Strict-Transport-Security: max-age=63072000"),
        "{headers}"
    );
    // Security headers on every response; the app's own policy wins where
    // it sends one (the sample app sends Referrer-Policy: no-referrer), and
    // nginx keeps its version to itself.
    let headers = headers.to_lowercase();
    for header in [
        "x-content-type-options: nosniff",
        "x-frame-options: sameorigin",
        "referrer-policy: no-referrer",
        "server: nginx\r\n",
    ] {
        assert_eq!(headers.matches(header).count(), 1, "{header}: {headers}");
    }
    assert!(
        !headers.contains("strict-origin-when-cross-origin"),
        "{headers}"
    );
    let static_file = Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--max-time",
            "10",
            "--cacert",
            ROOTS,
        ])
        .args(["--resolve", &format!("www.foobar.com:443:{ADDRESS}")])
        .args([
            "-D",
            "-",
            "-o",
            "/dev/null",
            "https://www.foobar.com/style.css",
        ])
        .output()
        .unwrap();
    let static_headers = text(&static_file.stdout).to_lowercase();
    for header in [
        "referrer-policy: strict-origin-when-cross-origin",
        "x-content-type-options: nosniff",
        "x-frame-options: sameorigin",
    ] {
        assert!(
            static_headers.contains(header),
            "{header}: {static_headers}"
        );
    }
    assert!(!curl(&["--cacert", ROOTS, "--tls-max", "1.1", "--tlsv1.1"])
        .status
        .success());
    assert!(curl(&["--cacert", ROOTS, "--tlsv1.2", "--tls-max", "1.2"])
        .status
        .success());
    // Plain HTTP redirects to HTTPS; the challenge path is never redirected.
    let (status, _) = http_get(ADDRESS, "www.foobar.com", "/visits");
    assert_eq!(status, 301);
    let (status, _) = http_get(
        ADDRESS,
        "www.foobar.com",
        "/.well-known/acme-challenge/none",
    );
    assert_eq!(status, 404, "the challenge path is served, not redirected");
    // The key: root only.
    assert_eq!(
        on_server_ok(
            HTTPS,
            SERVER,
            &format!("stat -c %a {}", CERT.replace(".crt", ".key"))
        )
        .trim(),
        "600"
    );

    // The ACME account is kept (0600) for the next issuance.
    let accounts = kept_acme_accounts();
    assert!(!accounts.is_empty(), "no ACME account kept");

    // Nothing to do: no new certificate.
    let (code, json, _) = provision(HTTPS).json();
    assert_eq!(code, Some(0));
    assert!(json["certificate"]["renewal"].is_null(), "{json}");
    let before = serial();

    // A renewal forced (renew under 3650 days: every certificate) while
    // HTTPS is under load: no request fails.
    let dir = tempfile::tempdir().unwrap();
    let renew_all = ("      email:", "      renew_days: 3650\n      email:");
    let forced = inventory_with(HTTPS, dir.path(), &[renew_all]);
    let mut outcome = None;
    let (requests, failed) =
        wrk_under_load(&format!("https://{ADDRESS}/healthz"), 10, false, || {
            outcome = Some(provision(&forced).json())
        });
    let (code, json, err) = outcome.unwrap();
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(
        json["certificate"]["renewal"]
            .as_str()
            .unwrap()
            .contains("days left"),
        "{json}"
    );
    assert_ne!(serial(), before, "a new certificate serves");
    assert_eq!(
        kept_acme_accounts(),
        accounts,
        "the renewal made a new ACME account"
    );
    assert!(requests > 50, "only {requests} requests");
    assert_eq!(
        failed, 0,
        "{failed} of {requests} requests failed during the renewal"
    );

    // A renewal that fails (the CA cannot be reached): reported, and the
    // old certificate keeps serving.
    let current = serial();
    let unreachable = inventory_with(
        HTTPS,
        dir.path(),
        &[
            (
                "https://10.247.0.1:14000/dir",
                "https://10.247.0.1:14999/dir",
            ),
            renew_all,
        ],
    );
    let (code, json, _) = provision(&unreachable).json();
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["certificate"]["ok"], false, "{json}");
    assert!(json["certificate"]["detail"]
        .as_str()
        .unwrap()
        .contains("the old certificate keeps serving"));
    assert_eq!(serial(), current);
    assert!(curl(&["--cacert", ROOTS]).status.success());

    // `status` shows the days left.
    let out = foobar()
        .args(["-i", HTTPS, "status", "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        status["servers"][0]["certificate"]["days_left"]
            .as_i64()
            .unwrap()
            > 14,
        "{status}"
    );

    // The CA changes (Pebble started again: a new root, as when an
    // inventory moves from a staging CA to the real one): the certificate
    // it no longer trusts is replaced, though it has years left.
    let pid = std::fs::read_to_string("/var/lib/foobar/lab-apps/acme/pid").unwrap();
    assert!(Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap()
        .success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    foobar().args(["-i", HTTPS, "lab", "up"]).assert().success();
    let (code, json, err) = provision(HTTPS).json();
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(
        json["certificate"]["renewal"]
            .as_str()
            .unwrap()
            .contains("not trusted by the CA in use"),
        "{json}"
    );
    assert!(curl(&["--cacert", ROOTS]).status.success());
}
