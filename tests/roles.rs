//! Roles as modules: every role's units come from its module, and the
//! playbook's `service` steps keep the same list, so status, logs and
//! restart (which read the module) agree with what provision starts.

use std::path::Path;

use foobar::inventory::{self, Role};
use foobar::playbook::{self, Scope};
use foobar::project::Project;
use foobar::render::Renderer;
use foobar::resolve;
use foobar::secrets::Secrets;

/// Inventories whose secrets are all files the lab writes are skipped
/// when those files are absent (they load only on a lab machine).
const INVENTORIES: &[&str] = &[
    "inventory/foobar.yml",
    "inventory/foobar-ha.yml",
    "inventory/lab.yml",
    "inventory/lab-ha.yml",
    "inventory/lab-php.yml",
    "inventory/lab-ruby.yml",
    "inventory/lab-https.yml",
    "inventory/lab-secure.yml",
    "tests/fixtures/tls.yml",
];

#[test]
fn the_playbook_starts_what_each_role_module_names() {
    let pb = playbook::load(Path::new("playbooks/provision.yml")).unwrap();
    let renderer = Renderer::new(&Project::at(Path::new(".")));
    let mut compared = 0;
    for path in INVENTORIES {
        let inv = inventory::load(Path::new(path)).unwrap();
        for server in &inv.inventory.servers.0 {
            let steps = resolve::resolve(&renderer, &pb, &inv, server, &Secrets::masked()).unwrap();
            for role in &server.roles {
                let mut started: Vec<&str> = steps
                    .iter()
                    .filter(|s| s.role == Scope::Role(*role))
                    .filter(|s| s.step.kind() == "service")
                    .filter_map(|s| s.step.service())
                    .collect();
                started.dedup();
                let mut named = role.module().units(&inv.inventory);
                named.sort();
                started.sort();
                assert_eq!(started, named, "{path}: {} on {}", role.name(), server.name);
                compared += 1;
            }
        }
    }
    assert!(compared > 20, "{compared}");
}

/// status, logs and restart take a server's units from the same place:
/// every unit of every role of a server, each once.
#[test]
fn a_servers_units_are_its_roles_units() {
    let inv = inventory::load(Path::new("inventory/lab-ha.yml")).unwrap();
    let units = |name: &str| {
        let s = inv.server(name).unwrap();
        inv.inventory.units(s.roles.iter().copied())
    };
    assert_eq!(units("lb1"), ["named", "haproxy", "keepalived"]);
    assert_eq!(
        units("lb2"),
        ["named", "haproxy", "keepalived"],
        "the secondary"
    );
    assert_eq!(units("web1"), ["nginx", "foobar-app"]);
    assert_eq!(units("db1"), ["mariadb", "foobar-clustercheck.socket"]);
    let one = inventory::load(Path::new("inventory/lab.yml")).unwrap();
    let s = &one.inventory.servers.0[0];
    assert_eq!(
        one.inventory.units(s.roles.iter().copied()),
        ["nginx", "foobar-app", "mariadb", "named"]
    );
    // `logs db` and `restart db`: the primary's, the replicas' and the
    // cluster members' group.
    assert_eq!(
        Role::of_group("db"),
        [Role::Db, Role::DbReplica, Role::DbCluster]
    );
}

/// The order servers are provisioned in, from the roles' waves.
#[test]
fn waves_follow_the_roles() {
    let inv = inventory::load(Path::new("tests/fixtures/lab-pair.yml")).unwrap();
    let wave = |name: &str| inv.inventory.wave(inv.server(name).unwrap());
    assert_eq!(wave("pair1"), 0, "the primary first");
    assert_eq!(wave("pair2"), 1, "a replica after it");
    let inv = inventory::load(Path::new("inventory/foobar-ha.yml")).unwrap();
    let wave = |name: &str| inv.inventory.wave(inv.server(name).unwrap());
    assert_eq!(wave("db1"), 0, "the cluster first (its members take turns)");
    assert_eq!(
        wave("lb1"),
        0,
        "load balancers with it: the release command needs their :3306"
    );
    assert_eq!(wave("web1"), 1, "the release server after the database");
    assert_eq!(wave("web2"), 2);
}
