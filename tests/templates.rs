//! Snapshots of every rendered file over the fixture inventories. Secrets
//! are masked and the SOA serial stays a token, so snapshots are stable.

use std::path::Path;

use foobar::inventory;
use foobar::playbook;
use foobar::project::Project;
use foobar::render::Renderer;
use foobar::resolve;
use foobar::secrets::Secrets;

/// `files`: how many files the inventory's servers get in all.
fn snapshot_inventory(tag: &str, inventory_path: &str, files: usize) {
    let inv = inventory::load(Path::new(inventory_path)).unwrap();
    let pb = playbook::load(Path::new("playbooks/provision.yml")).unwrap();
    let renderer = Renderer::new(&Project::at(Path::new(".")));
    let mut seen = 0;
    for server in &inv.inventory.servers.0 {
        for step in resolve::resolve(&renderer, &pb, &inv, server, &Secrets::masked()).unwrap() {
            if let Some(file) = step.step.file() {
                let name = format!(
                    "{tag}__{}__{}",
                    server.name,
                    file.path.trim_start_matches('/').replace('/', "_")
                );
                insta::assert_snapshot!(name, String::from_utf8(file.content.to_vec()).unwrap());
                seen += 1;
            }
        }
    }
    assert_eq!(seen, files, "every template a server's roles use, once");
}

#[test]
fn lab_inventory() {
    snapshot_inventory("lab", "inventory/lab.yml", 20);
}

#[test]
fn production_inventory() {
    snapshot_inventory("foobar", "inventory/foobar.yml", 20);
}

#[test]
fn php_inventory() {
    snapshot_inventory("php", "inventory/lab-php.yml", 21);
}

#[test]
fn ruby_inventory() {
    snapshot_inventory("ruby", "inventory/lab-ruby.yml", 20);
}

#[test]
fn tls_inventory() {
    snapshot_inventory("tls", "tests/fixtures/tls.yml", 20);
}

/// HTTPS with a certificate foobar obtains (ACME, the lab's Pebble).
#[test]
fn acme_inventory() {
    snapshot_inventory("https", "inventory/lab-https.yml", 20);
}

/// The same with the firewall: its ruleset is a file too.
#[test]
fn secure_inventory() {
    snapshot_inventory("secure", "inventory/lab-secure.yml", 21);
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
                .file()
                .filter(|f| f.path == "/etc/foobar/app.env")
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
    snapshot_inventory("lab-ha", "inventory/lab-ha.yml", 127);
}

#[test]
fn ha_production_inventory() {
    // As the lab, with DNS on both load balancers.
    snapshot_inventory("foobar-ha", "inventory/foobar-ha.yml", 127);
}
