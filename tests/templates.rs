//! Snapshots of every rendered file over the fixture inventories. Secrets
//! are masked and the SOA serial stays a token, so snapshots are stable.

use std::path::Path;

use foobar::digest::sha256_hex;
use foobar::inventory;
use foobar::playbook;
use foobar::project::Project;
use foobar::render::Renderer;
use foobar::resolve;
use foobar::secrets::Secrets;
use foobar::steps::template::zone_with_serial;

/// `files`: how many files the inventory's servers get in all.
fn snapshot_inventory(tag: &str, inventory_path: &str, files: usize) {
    let inv = inventory::load(Path::new(inventory_path)).unwrap();
    let mut seen = 0;
    for server in &inv.inventory.servers.0 {
        for (path, content) in rendered(&inv, server) {
            let name = format!(
                "{tag}__{}__{}",
                server.name,
                path.trim_start_matches('/').replace('/', "_")
            );
            insta::assert_snapshot!(name, String::from_utf8(content).unwrap());
            seen += 1;
        }
    }
    assert_eq!(seen, files, "every template a server's roles use, once");
}

/// Every file `server` gets, (path, content), secrets masked.
fn rendered(inv: &inventory::Loaded, server: &inventory::Server) -> Vec<(String, Vec<u8>)> {
    let pb = playbook::load(Path::new("playbooks/provision.yml")).unwrap();
    let renderer = Renderer::new(&Project::at(Path::new(".")));
    resolve::resolve(&renderer, &pb, inv, server, &Secrets::masked())
        .unwrap()
        .iter()
        .flat_map(|step| step.step.files())
        .map(|file| (file.path.to_string(), file.content.to_vec()))
        .collect()
}

/// The zone is compared whole, `domain.records` included: a record
/// changed raises the serial, the same records keep it.
#[test]
fn a_changed_record_raises_the_zone_serial() {
    let text = std::fs::read_to_string("inventory/foobar.yml")
        .unwrap()
        .replace(
            "../apps/python",
            concat!(env!("CARGO_MANIFEST_DIR"), "/apps/python"),
        );
    let zone_of = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.yml");
        std::fs::write(&path, text).unwrap();
        let inv = inventory::load(&path).unwrap();
        rendered(&inv, &inv.inventory.servers.0[0])
            .into_iter()
            .find_map(|(path, content)| (path == "/var/lib/bind/db.foobar.com").then_some(content))
            .unwrap()
    };
    let before = zone_of(&text);
    let changed = zone_of(&text.replace("10 mx1.example.net.", "5 mx1.example.net."));
    assert_ne!(before, changed);
    let on_server = zone_with_serial(&before, None, None, 20260101);
    let (serial, sha) = (Some(2026010101), sha256_hex(&on_server));
    assert_eq!(
        zone_with_serial(&before, serial, Some(&sha), 20260102),
        on_server,
        "the same records keep the serial"
    );
    let raised =
        String::from_utf8(zone_with_serial(&changed, serial, Some(&sha), 20260102)).unwrap();
    assert!(raised.contains("2026010201 ; serial"), "{raised}");
}

#[test]
fn backup_inventory() {
    snapshot_inventory("backup", "inventory/lab-backup.yml", 41);
}

#[test]
fn lab_inventory() {
    snapshot_inventory("lab", "inventory/lab.yml", 21);
}

#[test]
fn production_inventory() {
    snapshot_inventory("foobar", "inventory/foobar.yml", 21);
}

#[test]
fn php_inventory() {
    snapshot_inventory("php", "inventory/lab-php.yml", 22);
}

#[test]
fn ruby_inventory() {
    snapshot_inventory("ruby", "inventory/lab-ruby.yml", 20);
}

#[test]
fn tls_inventory() {
    snapshot_inventory("tls", "tests/fixtures/tls.yml", 21);
}

/// HTTPS with a certificate foobar obtains (ACME, the lab's Pebble).
#[test]
fn acme_inventory() {
    snapshot_inventory("https", "inventory/lab-https.yml", 21);
}

/// The same with the firewall: its ruleset is a file too.
#[test]
fn secure_inventory() {
    snapshot_inventory("secure", "inventory/lab-secure.yml", 22);
}

#[test]
fn secrets_never_reach_rendered_files_unmasked() {
    let inv = inventory::load(Path::new("inventory/foobar.yml")).unwrap();
    let pb = playbook::load(Path::new("playbooks/provision.yml")).unwrap();
    let renderer = Renderer::new(&Project::at(Path::new(".")));
    let secrets = Secrets::masked();
    let steps =
        resolve::resolve(&renderer, &pb, &inv, &inv.inventory.servers.0[0], &secrets).unwrap();
    let env = steps
        .iter()
        .find_map(|s| {
            s.step
                .files()
                .into_iter()
                .find(|f| f.path == "/etc/foobar/app.env")
                .map(|f| (f.content.to_vec(), f.mode))
        })
        .unwrap();
    assert!(String::from_utf8(env.0)
        .unwrap()
        .contains("DB_PASSWORD=\"********\""));
    assert_eq!(env.1, 0o600, "the file holding the password is 0600");
}

#[test]
fn ha_lab_inventory() {
    // lb1: 3 bind, haproxy, keepalived; lb2: haproxy, keepalived; 3 web/app
    // servers: 4 each; db1, db2: the MariaDB fragment; every server its
    // seven files of security updates and hardening.
    snapshot_inventory("lab-ha", "inventory/lab-ha.yml", 155);
}

#[test]
fn ha_production_inventory() {
    // As the lab, with DNS on both load balancers, and the app's processes:
    // a worker on each web/app server, a scheduler and a job's service
    // and timer on the first.
    snapshot_inventory("foobar-ha", "inventory/foobar-ha.yml", 161);
}

/// The nginx site and PHP pool of `inventory` (one of `inventory/`), its
/// code base a stand-in holding `files`: the layouts of apps whose code
/// is not in the project (WordPress is made from Debian's packages by the
/// lab test) or needs a package index (Django's wheels).
fn layout(inventory: &str, files: &[&str]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    for file in files {
        let path = code.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }
    let text = std::fs::read_to_string(inventory).unwrap();
    let source = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("source: "))
        .unwrap();
    let path = dir.path().join("inventory.yml");
    std::fs::write(
        &path,
        text.replace(
            &format!("source: {source}"),
            &format!("source: {}", code.display()),
        ),
    )
    .unwrap();
    let inv = inventory::load(&path).unwrap();
    rendered(&inv, &inv.inventory.servers.0[0])
        .into_iter()
        .filter(|(path, _)| path.contains("/sites-enabled/") || path.contains("/pool.d/"))
        .map(|(path, content)| (path, String::from_utf8(content).unwrap()))
        .collect()
}

/// The layouts of the shipped apps of one's own: (tag, inventory, the
/// files its code base must hold).
const LAYOUTS: &[(&str, &str, &[&str])] = &[
    // The code base is the root: every script runs where it lies, uploads
    // run none.
    (
        "wordpress",
        "inventory/lab-wordpress.yml",
        &["index.php", "wp-login.php"],
    ),
    // PHP under public/ (Laravel, Symfony), the front controller there.
    (
        "php-public",
        "inventory/lab-php-markdown.yml",
        &["public/index.php"],
    ),
    // Django as `startproject` lays it out: nothing at /, the collected
    // static files and the shared uploads at their URL prefixes.
    (
        "django",
        "inventory/lab-django.yml",
        &[
            "notes_site/wsgi.py",
            "notes_site/settings.py",
            "notes/static/notes/notes.css",
            "notes/migrations/0001_initial.py",
        ],
    ),
];

#[test]
fn web_layouts() {
    for (tag, inventory, files) in LAYOUTS {
        let rendered = layout(inventory, files);
        assert!(!rendered.is_empty(), "{inventory}");
        for (path, content) in rendered {
            let name = format!(
                "layout__{tag}__{}",
                path.trim_start_matches('/').replace('/', "_")
            );
            insta::assert_snapshot!(name, content);
        }
    }
}

/// Where nginx is on this machine (never installed for the tests): each
/// site rendered is one it accepts (`nginx -t`), in a configuration of its
/// own with the logs in a temporary folder.
#[test]
fn nginx_accepts_every_site_when_it_is_here() {
    let Some(nginx) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .chain([std::path::PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("nginx"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("nginx is not on this machine: nothing to check");
        return;
    };
    let mut sites: Vec<(String, String)> = LAYOUTS
        .iter()
        .flat_map(|(tag, inventory, files)| {
            layout(inventory, files)
                .into_iter()
                .map(move |(path, content)| (format!("{tag} {path}"), content))
        })
        .collect();
    // TLS needs its certificate files: the plain HTTP sites only.
    for inventory in [
        "inventory/lab.yml",
        "inventory/lab-php.yml",
        "inventory/lab-ruby.yml",
    ] {
        let inv = inventory::load(Path::new(inventory)).unwrap();
        sites.extend(rendered(&inv, &inv.inventory.servers.0[0]).into_iter().map(
            |(path, content)| {
                (
                    format!("{inventory} {path}"),
                    String::from_utf8(content).unwrap(),
                )
            },
        ));
    }
    let sites = sites
        .into_iter()
        .filter(|(path, _)| path.contains("/sites-enabled/"));
    let mut checked = 0;
    for (what, site) in sites {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("fastcgi_params"), "").unwrap();
        std::fs::write(
            dir.path().join("site.conf"),
            site.replace("/var/log/nginx/", &format!("{d}/")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "error_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\nhttp {{\n    access_log {d}/access.log;\n{}    include site.conf;\n}}\n",
                ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
                    .map(|t| format!("    {t}_temp_path {d}/{t};\n"))
                    .concat()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(&nginx)
            .arg("-t")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 6);
}
