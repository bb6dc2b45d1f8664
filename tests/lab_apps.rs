//! Applications of one's own, written with common frameworks and taken
//! from the package index as a user would, on a real lab server from
//! pristine: a Django project (a migration, collected static files,
//! uploads in a shared folder), a Flask app with SQLAlchemy, a PHP app
//! with a vendored library, a Sinatra app from Debian's packages. Then the
//! day-two commands: deploy, releases, rollback, a failing migration,
//! logs and status.

mod common;

use std::path::{Path, PathBuf};

use common::lab::*;
use common::*;
use serde_json::Value;

const DJANGO: &str = "inventory/lab-django.yml";
const ADDRESS: &str = "10.247.0.10";
const SERVER: &str = "apps1";
const SITE: &str = "www.foobar.com";

fn pristine_apps_server() {
    lab_up(DJANGO);
    foobar()
        .args(["-i", DJANGO, "lab", "reset", SERVER])
        .assert()
        .success();
}

fn on_apps(command: &str) -> String {
    on_server_ok(DJANGO, SERVER, command)
}

/// One HTTP request to the apps server with the site's Host header.
fn request(method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((ADDRESS, 80)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {SITE}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn upload(name: &str, content: &str) {
    let boundary = "foobar-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    let (status, reply) = request(
        "POST",
        "/upload",
        &format!("multipart/form-data; boundary={boundary}"),
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{reply}");
}

/// A copy of the Django project and its inventory, to change.
struct DjangoCopy {
    dir: tempfile::TempDir,
}

impl DjangoCopy {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_tree(&root.join("apps/django"), &dir.path().join("django"));
        let inventory = std::fs::read_to_string(root.join(DJANGO)).unwrap().replace(
            "../apps/django",
            dir.path().join("django").to_str().unwrap(),
        );
        std::fs::write(dir.path().join("inventory.yml"), inventory).unwrap();
        Self { dir }
    }

    fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yml")
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.dir.path().join("django").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} holds {from}");
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.path().join("django").join(file), text).unwrap();
    }

    fn remove(&self, file: &str) {
        std::fs::remove_file(self.dir.path().join("django").join(file)).unwrap();
    }
}

fn live_release() -> String {
    on_apps("basename \"$(readlink /srv/foobar/current)\"")
        .trim()
        .to_string()
}

#[test]
fn django_from_pristine_then_deploy_rollback_and_a_failing_migration() {
    let _turn = lab_turn();
    pristine_apps_server();
    let app = DjangoCopy::new();
    let inv = app.inventory();

    // A pristine server to the whole stack; every check of the inventory
    // passes (the app, its collected static files through nginx).
    let (code, json, err) = provision(&inv).json();
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["totals"]["checks_failed"], 0, "{json}");
    assert_eq!(json["totals"]["checks_passed"], 5, "{json}");
    // The wheels came from this machine: the server has no index, and
    // Django is in the release's own virtualenv.
    assert!(on_apps("ls /var/lib/foobar/wheels/*/").contains("Django-5.1.4-py3-none-any.whl"));
    assert!(
        on_apps("ls /srv/foobar/current/.venv/site-packages/").contains("django"),
        "Django in the release's virtualenv"
    );
    // The migration made its table; the app writes through it.
    let (status, reply) = request(
        "POST",
        "/notes",
        "application/x-www-form-urlencoded",
        b"text=first+note",
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        on_apps("mysql -N -B -e 'SELECT text FROM notes.notes_note'").trim(),
        "first note"
    );
    // The secret key is in the app's environment, never in output.
    let key = std::fs::read_to_string("/var/lib/foobar/lab-apps/secrets/app_secret_key").unwrap();
    assert!(!json.to_string().contains(key.trim()));
    assert_eq!(on_apps("stat -c %a /etc/foobar/app.env").trim(), "600");
    upload("kept.txt", "an upload that outlives releases");
    let first = live_release();

    // Nothing new: a deploy changes nothing.
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["totals"]["changed"], 0, "{json}");

    // A code change: only the app's steps run (no apt), the new release
    // serves, the upload is still there.
    app.edit(
        "notes/templates/notes/index.html",
        "<h1>Notes</h1>",
        "<h1>Notes v2</h1>",
    );
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    let kinds: Vec<&str> = json["hosts"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(
        !kinds.contains(&"apt"),
        "deploy installs no packages: {kinds:?}"
    );
    assert!(kinds.contains(&"release"), "{kinds:?}");
    let second = live_release();
    assert_ne!(first, second);
    assert!(request("GET", "/", "text/plain", b"")
        .1
        .contains("Notes v2"));
    assert_eq!(
        request("GET", "/media/kept.txt", "text/plain", b"").1,
        "an upload that outlives releases"
    );
    // `releases` lists both, the new one live.
    let (code, json, _) = run_json(&inv, "releases", &[]);
    assert_eq!(code, Some(0));
    let releases = json["servers"][0]["releases"].as_array().unwrap();
    let live: Vec<&str> = releases
        .iter()
        .filter(|r| r["live"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(live, [second.as_str()]);
    assert!(releases.iter().any(|r| r["id"] == first.as_str()));

    // Rollback: the first release live again, gracefully, checked; the
    // upload is still there.
    let (code, json, err) = run_json(&inv, "rollback", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["servers"][0]["to"], first.as_str(), "{json}");
    assert_eq!(live_release(), first);
    assert!(!request("GET", "/", "text/plain", b"")
        .1
        .contains("Notes v2"));
    assert_eq!(
        request("GET", "/media/kept.txt", "text/plain", b"").0,
        200,
        "the upload survives a rollback"
    );
    // A named release, and one that does not exist.
    let (code, _, err) = run_json(&inv, "rollback", &[&second]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(live_release(), second);
    let (code, json, _) = run_json(&inv, "rollback", &["0123456789ab"]);
    assert_eq!(code, Some(1));
    assert!(json["servers"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("not on this server"));
    assert_eq!(live_release(), second);

    // A migration that fails: its output is shown, the live release stays.
    app.write(
        "notes/migrations/0002_broken.py",
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"notes\", \"0001_initial\")]\n    operations = [migrations.RunSQL(\"THIS IS NOT SQL\")]\n",
    );
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(1), "{err}{json}");
    let error = json["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("release command failed"), "{error}");
    assert!(
        error.contains("THIS IS NOT SQL"),
        "the migration's output: {error}"
    );
    assert_eq!(live_release(), second, "the live release is untouched");
    assert!(request("GET", "/", "text/plain", b"")
        .1
        .contains("Notes v2"));
    app.remove("notes/migrations/0002_broken.py");

    // A release that fails its checks goes back to the previous one.
    app.edit(
        "notes/views.py",
        "def healthz(request):\n",
        "def healthz(request):\n    raise RuntimeError('broken')\n",
    );
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(1), "{err}{json}");
    assert_eq!(
        json["hosts"][0]["rolled_back_to"],
        second.as_str(),
        "{json}"
    );
    assert_eq!(live_release(), second);
}

/// A requirements file naming a package that does not exist is bad input
/// before any connection, at its line.
#[test]
fn a_requirement_without_a_wheel_is_bad_input() {
    // The inventory's secrets are the apps lab's: it must be up.
    let _turn = lab_turn();
    lab_up(DJANGO);
    let app = DjangoCopy::new();
    app.write(
        "requirements.txt",
        "Django==5.1.4\nno-such-package-foobar-test==1.0\n",
    );
    let out = foobar()
        .args(["-i", app.inventory().to_str().unwrap(), "deploy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("requirements.txt:2:1"), "{err}");
    assert!(err.contains("no-such-package-foobar-test"), "{err}");
}

#[test]
fn flask_php_and_sinatra_from_pristine() {
    let _turn = lab_turn();
    for (inventory, table, page) in [
        (
            "inventory/lab-flask.yml",
            "visits.visits",
            "Hello from Flask",
        ),
        (
            "inventory/lab-php-markdown.yml",
            "pages.page_views",
            "<strong>Markdown</strong>",
        ),
        (
            "inventory/lab-sinatra.yml",
            "guestbook.signatures",
            "Sinatra guestbook",
        ),
    ] {
        pristine_apps_server();
        let (code, json, err) = provision(inventory).json();
        assert_eq!(code, Some(0), "{inventory}: {err}{json}");
        assert_eq!(json["totals"]["checks_failed"], 0, "{json}");
        // The page was written to the database through the app.
        let (status, body) = request("GET", "/", "text/plain", b"");
        assert_eq!(status, 200, "{inventory}: {body}");
        assert!(body.contains(page), "{inventory}: {body}");
        // The front controller under the static root (public/index.php)
        // runs when asked for by name (its router knows only `/`, so it
        // answers its own "not found"); its source never leaves.
        if inventory.contains("php") {
            let (status, body) = request("GET", "/index.php", "text/plain", b"");
            assert_eq!((status, body.as_str()), (404, "not found\n"));
        }
        let rows: u64 = on_apps(&format!("mysql -N -B -e 'SELECT COUNT(*) FROM {table}'"))
            .trim()
            .parse()
            .unwrap();
        assert!(
            rows >= 2,
            "{inventory}: the checks and this request wrote rows"
        );
        let (code, json, _) = run_json(Path::new(inventory), "deploy", &[]);
        assert_eq!(
            (code, &json["totals"]["changed"]),
            (Some(0), &Value::from(0))
        );
    }
}

#[test]
fn status_and_logs_read_the_live_server() {
    let _turn = lab_turn();
    lab_up(DJANGO);
    let inv = Path::new("inventory/lab-flask.yml");
    let (code, json, err) = provision(inv).json();
    assert_eq!(code, Some(0), "{err}{json}");

    let (code, json, err) = run_json(inv, "status", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["healthy"], true);
    let server = &json["servers"][0];
    let units: Vec<&str> = server["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["nginx", "foobar-app", "mariadb", "named"]);
    assert_eq!(server["release"].as_str().unwrap(), live_release());
    assert_eq!(json["dns"][0]["verdict"], "match", "{json}");

    // The app stopped: status says which service and fails.
    on_apps("systemctl stop foobar-app");
    let (code, json, _) = run_json(inv, "status", &[]);
    assert_eq!(code, Some(1), "{json}");
    let app = json["servers"][0]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["unit"] == "foobar-app")
        .unwrap()
        .clone();
    assert_ne!(app["active"], "active", "{json}");
    // Its stop is in the app's log; nginx's request lines in web's.
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "logs", "app", "-n", "20"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("Stopped foobar-app.service"),
        "{}",
        text(&out.stdout)
    );
    on_apps("systemctl start foobar-app");
    let out = foobar()
        .args(["-i", inv.to_str().unwrap(), "logs", "web", "--since", "10m"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("GET /healthz"),
        "{}",
        text(&out.stdout)
    );

    // -f follows: a request made after it started shows up.
    let masters_before = ssh_masters();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_foobar"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-i", inv.to_str().unwrap(), "logs", "web", "-f", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let seen = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("/followed-by-foobar"))
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    request("GET", "/followed-by-foobar", "text/plain", b"");
    std::thread::sleep(std::time::Duration::from_secs(2));
    // As Ctrl-C would: foobar closes its connections and ends.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(seen.join().unwrap(), "the new request line was followed");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        ssh_masters(),
        masters_before,
        "no SSH connection is left behind"
    );
}

/// foobar's SSH master connections to the apps server.
fn ssh_masters() -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("ssh .*-M -f -N .*{ADDRESS}")])
        .output()
        .unwrap();
    text(&out.stdout).lines().count()
}
