//! Applications of one's own, written with common frameworks and taken
//! from the package index as a user would, on a real lab server from
//! pristine: a Django project (a migration, collected static files,
//! uploads in a shared folder), a Flask app with SQLAlchemy, a PHP app
//! with a vendored library, a Sinatra app from Debian's packages; and a
//! third-party one, WordPress as Debian packages it. Then the day-two
//! commands: deploy, releases, rollback, a failing migration, logs and
//! status.

mod common;

use std::path::{Path, PathBuf};

use common::lab::*;
use common::*;
use serde_json::Value;

const DJANGO: &str = "inventory/lab-django.yml";
const FLASK: &str = "inventory/lab-flask.yml";
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
    let (status, _, body) = exchange(method, path, &[("Content-Type", content_type)], body);
    (status, body)
}

/// One HTTP request to the apps server with the site's Host header and
/// `headers`: (status, head, body). A body the server refuses before
/// reading it whole (413) still gets its answer.
fn exchange(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((ADDRESS, 80)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {SITE}\r\n");
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no answer: {raw:?}"));
    (status, head.to_string(), body.to_string())
}

/// A header's value in a response's head (the first, by name).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
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

/// A copy of an app of `apps/` and its inventory, to change.
struct AppCopy {
    dir: tempfile::TempDir,
    app: &'static str,
}

impl AppCopy {
    fn new(inventory: &str, app: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_tree(&root.join("apps").join(app), &dir.path().join(app));
        let inventory = std::fs::read_to_string(root.join(inventory))
            .unwrap()
            .replace(
                &format!("../apps/{app}"),
                dir.path().join(app).to_str().unwrap(),
            );
        std::fs::write(dir.path().join("inventory.yml"), inventory).unwrap();
        Self { dir, app }
    }

    fn django() -> Self {
        Self::new(DJANGO, "django")
    }

    fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yml")
    }

    /// The inventory's text with `from` replaced by `to`.
    fn edit_inventory(&self, from: &str, to: &str) {
        let path = self.inventory();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "the inventory holds {from}");
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.dir.path().join(self.app).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} holds {from}");
        std::fs::write(path, text.replace(from, to)).unwrap();
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.path().join(self.app).join(file), text).unwrap();
    }

    fn remove(&self, file: &str) {
        std::fs::remove_file(self.dir.path().join(self.app).join(file)).unwrap();
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
    let app = AppCopy::django();
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
    // Neither collectstatic's nor migrate's inputs changed: the collected
    // files are the first release's own (hard links), migrate is skipped.
    assert_eq!(
        release_detail(&json),
        "deploy and switch current; build: output linked from the live release (inputs unchanged); release command: skipped (inputs unchanged)",
        "{json}"
    );
    let second = live_release();
    assert_ne!(first, second);
    let inode = |release: &str| {
        on_apps(&format!(
            "stat -c %i /srv/foobar/releases/{release}/static/staticfiles.json"
        ))
    };
    assert_eq!(inode(&first), inode(&second));
    assert!(request("GET", "/", "text/plain", b"")
        .1
        .contains("Notes v2"));
    // nginx serves the upload from the shared folder (nginx.locations),
    // as it may change, and the collected files at the names the page
    // gives, hashed, kept a year.
    let (status, head, body) = exchange("GET", "/media/kept.txt", &[], b"");
    assert_eq!(
        (status, body.as_str()),
        (200, "an upload that outlives releases")
    );
    assert_eq!(header(&head, "Cache-Control"), None, "{head}");
    let page = request("GET", "/", "text/plain", b"").1;
    let css = page
        .split('"')
        .find(|s| s.starts_with("/static/notes/notes.") && s.ends_with(".css") && s.len() > 30)
        .unwrap_or_else(|| panic!("the page links its hashed stylesheet: {page}"))
        .to_string();
    let (status, head, body) = exchange("GET", &css, &[], b"");
    assert_eq!(status, 200, "{css}: {head}");
    assert!(body.contains("font-family"), "{body}");
    assert_eq!(
        header(&head, "Cache-Control"),
        Some("public, max-age=31536000, immutable"),
        "{head}"
    );
    assert_eq!(header(&head, "X-Content-Type-Options"), Some("nosniff"));
    // Nothing else is a file: the app answers (Django's own 404).
    let (status, _) = request("GET", "/manage.py", "text/plain", b"");
    assert_eq!(status, 404);
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

    // The stylesheet changes: collectstatic runs again (its inputs
    // changed) and the page links the new hashed name; migrate does not.
    app.edit("notes/views.py", "    raise RuntimeError('broken')\n", "");
    app.edit(
        "notes/static/notes/notes.css",
        "font-family",
        "font-weight: bold; font-family",
    );
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(
        release_detail(&json),
        "deploy and switch current; release command: skipped (inputs unchanged)",
        "{json}"
    );
    let page = request("GET", "/", "text/plain", b"").1;
    let new_css = page
        .split('"')
        .find(|s| s.starts_with("/static/notes/notes.") && s.ends_with(".css") && s.len() > 30)
        .unwrap_or_else(|| panic!("the page links its hashed stylesheet: {page}"));
    assert_ne!(new_css, css);
    let (status, _, body) = exchange("GET", new_css, &[], b"");
    assert_eq!(status, 200, "{new_css}");
    assert!(body.contains("font-weight: bold"), "{body}");

    // --rebuild runs both whatever their inputs.
    app.edit(
        "notes/templates/notes/index.html",
        "<h1>Notes v2</h1>",
        "<h1>Notes v3</h1>",
    );
    let (code, json, err) = run_json(&inv, "deploy", &["--rebuild"]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(release_detail(&json), "deploy and switch current", "{json}");
}

/// What the release step of a deploy's JSON says it did.
fn release_detail(json: &Value) -> &str {
    json["hosts"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "release")
        .and_then(|s| s["detail"].as_str())
        .unwrap_or_else(|| panic!("a release step: {json}"))
}

/// A requirements file naming a package that does not exist is bad input
/// before any connection, at its line.
#[test]
fn a_requirement_without_a_wheel_is_bad_input() {
    // The inventory's secrets are the apps lab's: it must be up.
    let _turn = lab_turn();
    lab_up(DJANGO);
    let app = AppCopy::django();
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
        (FLASK, "visits.visits", "Hello from Flask"),
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

/// Values as they come: a database password as `openssl rand -base64 24`
/// prints one (`/`, `+`) followed by quotes, a backslash, `$` and the
/// INI scanner's operators, and an environment value holding every
/// printable ASCII character after a `$` (which php-fpm's pool would take
/// for a variable's name). Each app connects to MariaDB with the password
/// (its page writes a row) and echoes the value exactly; Flask's release
/// command (its migration) and sh read the same file.
#[test]
fn values_with_any_printable_character_reach_each_app_exactly() {
    use std::os::unix::fs::PermissionsExt;
    let _turn = lab_turn();
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!("file:{}", path.display())
    };
    let password = "q0/+Vn3xZ8rT2kL9w+M/aB4cD5eF6gH7$'\"\\`!^~=#;${x} &|";
    let site: String = std::iter::once('$').chain(' '..='~').collect();
    let password_source = secret("db_password", password);
    let site_source = secret("site_name", &site);
    let apps = format!("{}/apps/", env!("CARGO_MANIFEST_DIR"));
    let in_env = format!("  env:\n    SITE_NAME: {site_source}\n  checks:\n");
    for (inventory, from, to) in [
        ("inventory/lab-flask.yml", "  checks:\n", in_env.clone()),
        (
            "inventory/lab-php-markdown.yml",
            "    SITE_NAME: Markdown pages\n",
            format!("    SITE_NAME: {site_source}\n"),
        ),
        ("inventory/lab-sinatra.yml", "  checks:\n", in_env.clone()),
    ] {
        pristine_apps_server();
        let inv = inventory_with(
            inventory,
            dir.path(),
            &[
                (
                    "file:/var/lib/foobar/lab-apps/secrets/mysql_password",
                    &password_source,
                ),
                (from, &to),
                ("../apps/", &apps),
            ],
        );
        let (code, json, err) = provision(&inv).json();
        assert_eq!(code, Some(0), "{inventory}: {err}{json}");
        assert_eq!(json["totals"]["checks_failed"], 0, "{inventory}: {json}");
        assert!(
            !json.to_string().contains("q0/+Vn3xZ8") && !err.contains("q0/+Vn3xZ8"),
            "{inventory}: the password never shows"
        );
        // The app reads the value exactly.
        let (status, body) = request("GET", "/healthz", "text/plain", b"");
        assert_eq!(status, 200, "{inventory}: {body}");
        let health: Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(health["site"], site.as_str(), "{inventory}: {body}");
        // It reaches MariaDB with the password: the page writes a row.
        let (status, body) = request("GET", "/", "text/plain", b"");
        assert_eq!(status, 200, "{inventory}: {body}");
        // sh, as the build and the release command source the file.
        assert_eq!(
            on_apps("sh -c 'set -a; . /etc/foobar/app.env; set +a; printf %s \"$SITE_NAME\"'"),
            site,
            "{inventory}"
        );
        if inventory.contains("php") {
            let pool = on_apps("cat /etc/php/8.2/fpm/pool.d/foobar.conf");
            assert!(
                pool.contains("env[DB_PASSWORD] = $DB_PASSWORD") && !pool.contains("q0/+Vn3xZ8"),
                "{pool}"
            );
        }
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

/// The WordPress code base of `inventory/lab-wordpress.yml`, made from
/// Debian's packages (tests/fixtures/wordpress.sh), and the inventory
/// pointing at it.
struct WordPress {
    dir: tempfile::TempDir,
}

impl WordPress {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("wordpress");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new(root.join("tests/fixtures/wordpress.sh"))
            .arg(&code)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let inventory = std::fs::read_to_string(root.join(WORDPRESS))
            .unwrap()
            .replace("/var/lib/foobar/lab-apps/wordpress", code.to_str().unwrap());
        std::fs::write(dir.path().join("inventory.yml"), inventory).unwrap();
        Self { dir }
    }

    fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yml")
    }
}

const WORDPRESS: &str = "inventory/lab-wordpress.yml";

/// The cookies a response sets, as a request's Cookie header.
fn cookies(head: &str) -> String {
    head.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("Set-Cookie")
                .then(|| value.trim().split(';').next().unwrap().to_string())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A third-party PHP application as its distribution packages it, not one
/// written here: WordPress from Debian's packages, the code base as the
/// site's root. Its installer runs over HTTP; its front controller answers
/// pretty URLs; its other scripts run where they lie; no PHP source
/// leaves, no upload runs; an upload of a few MB goes through.
#[test]
fn wordpress_from_debian_packages() {
    let _turn = lab_turn();
    pristine_apps_server();
    let wordpress = WordPress::new();
    let inv = wordpress.inventory();
    let (code, json, err) = provision(&inv).json();
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["totals"]["checks_failed"], 0, "{json}");

    // WordPress's own installer, as a browser posts it.
    let password = "correct-horse-battery-staple";
    let form = format!(
        "weblog_title=Foobar+blog&user_name=admin&admin_password={password}&admin_password2={password}&pw_weak=1&admin_email=admin%40foobar.com&blog_public=0&Submit=Install+WordPress&language="
    );
    let (status, body) = request(
        "POST",
        "/wp-admin/install.php?step=2",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Success!"), "{body}");
    let (status, body) = request("GET", "/", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello world!"), "{body}");

    // Pretty permalinks: a path that is no file is the front controller's.
    on_apps(
        "mysql wordpress -e \"UPDATE wp_options SET option_value='/%postname%/' WHERE option_name='permalink_structure'; UPDATE wp_options SET option_value='' WHERE option_name='rewrite_rules'\"",
    );
    let (status, body) = request("GET", "/hello-world/", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello world!"), "{body}");
    // A script run directly, and one that prints nothing: run, never sent.
    let (status, body) = request("GET", "/wp-login.php", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("user_login"), "the login form: {body}");
    for path in ["/wp-includes/version.php", "/wp-config.php"] {
        let (status, body) = request("GET", path, "text/plain", b"");
        assert_eq!(status, 200, "{path}: {body}");
        for source in ["<?php", "wp_version", "getenv", "DB_PASSWORD"] {
            assert!(!body.contains(source), "{path} shows its source: {body}");
        }
    }
    // An upload named like an image that holds PHP, and a script among
    // the uploads: served as a file at most, never run.
    on_apps(
        "cd /srv/foobar/shared/wp-content/uploads && for f in x.jpg evil.php; do echo \"<?php echo 'ran-', 6 * 7;\" > $f; done",
    );
    for path in [
        "/wp-content/uploads/x.jpg/.php",
        "/wp-content/uploads/x.jpg/x.php",
        "/wp-content/uploads/evil.php",
    ] {
        let (status, body) = request("GET", path, "text/plain", b"");
        assert!(matches!(status, 403 | 404), "{path}: {status} {body}");
        assert!(!body.contains("ran-42"), "{path} ran: {body}");
        assert!(!body.contains("<?php"), "{path} shows its source: {body}");
    }
    // Nor the code base's own files beside its pages: hidden ones, an
    // editor's copy, a log, a dump (put in the live release by hand).
    let planted = "wp-config.php~ wp-content/debug.log backup.sql";
    on_apps(&format!(
        "cd /srv/foobar/current && for f in {planted}; do echo DB_PASSWORD=planted-secret > $f; done"
    ));
    for path in [
        "/.htaccess",
        "/wp-config.php~",
        "/wp-content/debug.log",
        "/backup.sql",
    ] {
        let (status, body) = request("GET", path, "text/plain", b"");
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("planted-secret"), "{path}: {body}");
    }
    on_apps(&format!("cd /srv/foobar/current && rm {planted}"));

    // A request of 5 MB goes through nginx and PHP; one past
    // app.upload_max (16M) is refused by nginx.
    let (status, _) = request(
        "POST",
        "/wp-login.php",
        "application/x-www-form-urlencoded",
        &vec![b'a'; 5 << 20],
    );
    assert!(status != 413 && status < 500, "{status}");
    let (status, _) = request(
        "POST",
        "/wp-login.php",
        "application/x-www-form-urlencoded",
        &vec![b'a'; 20 << 20],
    );
    assert_eq!(status, 413);

    // Logged in, WordPress reads PHP's limit as the inventory set it, and
    // takes a 5 MB file into the shared folder, which nginx then serves.
    let login = format!("log=admin&pwd={password}&wp-submit=Log+In&testcookie=1");
    let (status, head, body) = exchange(
        "POST",
        "/wp-login.php",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", "wordpress_test_cookie=WP%20Cookie%20check"),
        ],
        login.as_bytes(),
    );
    assert_eq!(status, 302, "logged in: {head}{body}");
    let session = cookies(&head);
    let (status, _, page) = exchange(
        "GET",
        "/wp-admin/media-new.php",
        &[("Cookie", &session)],
        b"",
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Maximum upload file size: 16 MB."), "{page}");
    let nonce = page
        .split("\"_wpnonce\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the upload form's nonce: {page}"))
        .to_string();
    let boundary = "foobar-test-boundary";
    let mut body = Vec::new();
    for (name, value) in [
        ("name", "five-mb.txt"),
        ("post_id", "0"),
        ("_wpnonce", &nonce),
        ("short", "1"),
    ] {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .into_bytes(),
        );
    }
    body.extend(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"async-upload\"; filename=\"five-mb.txt\"\r\nContent-Type: text/plain\r\n\r\n")
            .into_bytes(),
    );
    // Text in lines, as a text file has it: WordPress checks the type with
    // libmagic, which calls 5 MB of one letter application/octet-stream
    // and WordPress then refuses a `.txt` of that type.
    let line = b"foobar uploads a file of a few megabytes\n";
    let text = line.repeat((5 << 20) / line.len() + 1);
    body.extend(&text);
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let (status, _, reply) = exchange(
        "POST",
        "/wp-admin/async-upload.php",
        &[("Content-Type", &content_type), ("Cookie", &session)],
        &body,
    );
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply.trim().parse::<u64>().is_ok(),
        "the attachment's id: {reply}"
    );
    let stored = on_apps("cd /srv/foobar/shared && find wp-content/uploads -name 'five-mb*.txt'");
    let stored = stored
        .lines()
        .next()
        .expect("the upload is in the shared folder");
    let (status, body) = request("GET", &format!("/{stored}"), "text/plain", b"");
    assert_eq!((status, body.len()), (200, text.len()));

    // Nothing new: a deploy changes nothing.
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["totals"]["changed"], 0, "{json}");
}

/// Polls `ready` twice a second for up to `secs` seconds.
fn wait_until(secs: u64, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if ready() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `doc` is what schemas/NAME.json says.
fn assert_valid(doc: &Value, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{doc:#}");
}

/// `foobar -i INVENTORY ARGS`: (exit code, stdout and stderr).
fn foobar_text(inventory: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = foobar()
        .arg("-i")
        .arg(inventory)
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

/// The Flask app with a worker (apps/flask/worker.py: a heartbeat a second
/// in a shared folder, a note when SIGTERM stops it) and a job every ten
/// seconds: both run the live release as the app's user, follow a deploy
/// and a rollback, show in status, and go when the inventory drops them;
/// `exec` runs a command as the app runs, `console` on a terminal.
#[test]
fn flask_processes_and_jobs_follow_the_release_and_exec_runs_as_the_app() {
    let _turn = lab_turn();
    lab_up(DJANGO);
    let app = AppCopy::new(FLASK, "flask");
    let plain = std::fs::read_to_string(app.inventory()).unwrap();
    app.edit_inventory(
        "  release_command: python migrate.py\n",
        "  release_command: python migrate.py\n  shared: [heartbeat]\n  processes:\n    worker: python worker.py\n  schedule:\n    - name: tick\n      on_calendar: \"*:*:0/10\"\n      command: echo \"$(date +%s) $(basename \"$(pwd -P)\") $(id -un)\" >> heartbeat/ticks\n",
    );
    let inv = app.inventory();
    let (code, json, err) = provision(&inv).json();
    assert_eq!(code, Some(0), "{err}{json}");
    let first = live_release();
    let heartbeat = || on_apps("cat /srv/foobar/shared/heartbeat/worker 2>/dev/null || true");
    let ticks = || on_apps("cat /srv/foobar/shared/heartbeat/ticks 2>/dev/null || true");

    // The worker runs the live release, as the app's user, sandboxed as
    // the app server is.
    assert!(
        wait_until(15, || heartbeat().starts_with(&first)),
        "{}",
        heartbeat()
    );
    assert_eq!(
        on_apps("ps -o user= -p \"$(systemctl show -P MainPID foobar-app-worker)\"").trim(),
        "foobar"
    );
    assert_eq!(
        on_apps("systemctl show -P ProtectSystem foobar-app-worker").trim(),
        "strict"
    );
    // Nothing new: a deploy changes nothing, processes and timer included.
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(json["totals"]["changed"], 0, "{json}");

    // The job ran in the live release as the app's user; status shows
    // the worker among the services and the job's last run.
    let job = || run_json(&inv, "status", &[]).1["servers"][0]["jobs"][0].clone();
    assert!(wait_until(40, || !job()["last_run"].is_null()), "{}", job());
    let (code, json, err) = run_json(&inv, "status", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    let server = &json["servers"][0];
    assert_eq!(server["jobs"][0]["name"], "tick", "{json}");
    assert_eq!(server["jobs"][0]["result"], "success", "{json}");
    assert_eq!(server["jobs"][0]["scheduled"], true, "{json}");
    assert!(
        server["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["unit"] == "foobar-app-worker" && s["active"] == "active"),
        "{json}"
    );
    assert!(
        ticks()
            .lines()
            .any(|l| l.ends_with(&format!(" {first} foobar"))),
        "{}",
        ticks()
    );
    let (code, out) = foobar_text(&inv, &["status"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("job tick: last run "), "{out}");
    assert_valid(&json, "status");
    let (code, out) = foobar_text(&inv, &["logs", "--process", "tick", "-n", "20"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("foobar-job-tick") || out.contains("scheduled job tick"),
        "{out}"
    );

    // A deploy: the worker stops gracefully (SIGTERM, its note) and runs
    // the new release; the job's next run too.
    app.edit("visits.py", "Hello from Flask", "Hello from Flask v2");
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    let second = live_release();
    assert_ne!(first, second);
    let units = json["hosts"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "app_units")
        .unwrap()
        .clone();
    assert!(
        units["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("restart foobar-app-worker.service (a new release)"),
        "{units}"
    );
    assert!(
        wait_until(15, || heartbeat().starts_with(&second)),
        "{}",
        heartbeat()
    );
    assert!(
        on_apps("cat /srv/foobar/shared/heartbeat/stops").contains(&format!("stopped {first}")),
        "the worker finished on SIGTERM"
    );
    assert!(
        wait_until(25, || ticks().contains(&format!(" {second} foobar"))),
        "{}",
        ticks()
    );

    // `restart app` restarts the worker with the app server.
    let pid = || {
        on_apps("systemctl show -P MainPID foobar-app-worker")
            .trim()
            .to_string()
    };
    let before = pid();
    let (code, out) = foobar_text(&inv, &["restart", "app", "--force"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        wait_until(15, || {
            let now = pid();
            now != before && now != "0"
        }),
        "the worker was not restarted: {before}"
    );

    // A rollback takes the worker back with the release.
    let (code, json, err) = run_json(&inv, "rollback", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(live_release(), first);
    assert!(
        wait_until(15, || heartbeat().starts_with(&first)),
        "{}",
        heartbeat()
    );

    // exec: in the live release, as the app's user, with the app's
    // environment, its secret masked in the output.
    let (code, env) = foobar_text(&inv, &["exec", "--", "env"]);
    assert_eq!(code, Some(0), "{env}");
    assert!(env.contains("[apps1] DB_NAME=visits\n"), "{env}");
    assert!(
        env.contains("[apps1] DB_PASSWORD=********\n"),
        "the database password is there, masked: {env}"
    );
    let password =
        std::fs::read_to_string("/var/lib/foobar/lab-apps/secrets/mysql_password").unwrap();
    assert!(!env.contains(password.trim()), "{env}");
    assert!(
        env.contains("[apps1] PATH=/srv/foobar/current/.venv/bin:"),
        "{env}"
    );
    let (code, out) = foobar_text(
        &inv,
        &["exec", "--", "sh", "-c", "echo \"$(id -un) $(pwd -P)\""],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("[apps1] foobar /srv/foobar/releases/{first}\n")),
        "{out}"
    );
    // The worst exit code is foobar's; --json gives each server's.
    let (code, json, err) = run_json(&inv, "exec", &["--", "sh", "-c", "echo out; exit 3"]);
    assert_eq!(code, Some(3), "{err}{json}");
    assert_eq!(json["servers"][0]["exit_code"], 3, "{json}");
    assert_eq!(json["servers"][0]["output"], "out\n", "{json}");
    assert_valid(&json, "exec");

    // console: on a terminal (script(1) gives foobar one), in the live
    // release with the app's environment.
    let console = format!(
        "{} -i {} console -- python -c 'import os, sys; print(\"tty:\", sys.stdin.isatty(), os.environ[\"DB_NAME\"], 6 * 7)'",
        env!("CARGO_BIN_EXE_foobar"),
        inv.display()
    );
    // Bounded: a console that never ends would hold the whole group.
    let out = std::process::Command::new("timeout")
        .args(["120", "script", "-qec", &console, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("tty: True visits 42"),
        "{}",
        text(&out.stdout)
    );

    // Dropped from the inventory: stopped gracefully, units removed.
    std::fs::write(&inv, &plain).unwrap();
    let (code, json, err) = run_json(&inv, "deploy", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert_eq!(
        on_apps("ls /etc/systemd/system | grep -c '^foobar-\\(app\\|job\\)-' || true").trim(),
        "0"
    );
    assert_eq!(
        on_apps("tail -n 1 /srv/foobar/shared/heartbeat/stops").trim(),
        format!("stopped {first}")
    );
    let (code, json, err) = run_json(&inv, "status", &[]);
    assert_eq!(code, Some(0), "{err}{json}");
    assert!(json["servers"][0].get("jobs").is_none(), "{json}");
}
