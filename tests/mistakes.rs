//! Realistic mistakes in an inventory, each made once in a copy of the lab
//! inventory, and the whole message foobar shows for it (snapshots): the
//! line with a caret, foobar's words, a suggestion where there is one.
//! Nothing is contacted (the command is `render`).

mod common;

use common::*;

/// (name, text in inventory/lab.yml, what the user wrote instead)
const MISTAKES: &[(&str, &str, &str)] = &[
    ("key_typo", "  workers: 2\n", "  wokers: 2\n"),
    ("section_typo", "domain:\n", "domian:\n"),
    ("top_level_singular", "servers:\n", "server:\n"),
    ("app_kind_typo", "kind: gunicorn", "kind: gunicron"),
    (
        "role_typo",
        "roles: [web, app, db, dns]",
        "roles: [web, app, db, dsn]",
    ),
    (
        "roles_as_text",
        "roles: [web, app, db, dns]",
        "roles: web, app, db, dns",
    ),
    ("workers_in_words", "  workers: 2\n", "  workers: two\n"),
    ("keep_releases_zero", "keep_releases: 3", "keep_releases: 0"),
    (
        "port_too_big",
        "      user: root\n",
        "      user: root\n      port: 70000\n",
    ),
    (
        "address_out_of_range",
        "address: 10.250.0.10",
        "address: 10.250.0.300",
    ),
    ("zone_without_dot", "zone: foobar.com", "zone: foobar"),
    ("host_with_dot", "host: www", "host: www.shop"),
    (
        "database_with_dash",
        "  database: foobar",
        "  database: my-shop",
    ),
    (
        "password_in_the_inventory",
        "password: file:/var/lib/foobar/lab/secrets/mysql_password",
        "password: hunter2-hunter2",
    ),
    (
        "password_file_missing",
        "file:/var/lib/foobar/lab/secrets/mysql_password",
        "file:/var/lib/foobar/lab/secrets/nope",
    ),
    ("code_base_missing", "source: APP_DIR", "source: ../app"),
    (
        "code_base_under_home",
        "source: APP_DIR",
        "source: ~/my-app",
    ),
    ("window_hour_25", "start: \"02:00\"", "start: \"25:00\""),
    ("weekday_in_full", "days: [sun]", "days: [sunday]"),
    (
        "time_zone_typo",
        "time_zone: UTC",
        "time_zone: Europe/Berln",
    ),
    ("tab_indentation", "  ttl: 300\n", "\tttl: 300\n"),
    (
        "unknown_app_key",
        "  user: foobar\n",
        "  user: foobar\n  python: \"3.12\"\n",
    ),
    (
        "wsgi_entry_not_in_code_base",
        "  user: foobar\n",
        "  user: foobar\n  wsgi: mysite.wsgi:application\n",
    ),
    (
        "shared_folder_escapes_the_release",
        "  user: foobar\n",
        "  user: foobar\n  shared: [../uploads]\n",
    ),
    (
        "env_secret_file_missing",
        "  user: foobar\n",
        "  user: foobar\n  env:\n    SECRET_KEY: file:/var/lib/foobar/lab/secrets/nope\n",
    ),
    (
        "env_value_with_dollar",
        "  user: foobar\n",
        "  user: foobar\n  env:\n    PRICE: \"costs $5\"\n",
    ),
    (
        "env_sets_the_database_password",
        "  user: foobar\n",
        "  user: foobar\n  env:\n    DB_PASSWORD: hunter2\n",
    ),
    (
        "tls_certificate_and_acme_at_once",
        "  listen: 80\n",
        "  listen: 80\n  tls:\n    certificate: /etc/ssl/site.pem\n    key: /etc/ssl/site.key\n    acme:\n      directory: https://acme-v02.api.letsencrypt.org/directory\n",
    ),
    (
        "acme_directory_over_http",
        "  listen: 80\n",
        "  listen: 80\n  tls:\n    acme:\n      directory: http://acme-v02.api.letsencrypt.org/directory\n",
    ),
    (
        "port_open_and_closed",
        "maintenance:\n",
        "firewall:\n  enabled: true\n  open: [8080/tcp, 9000/tcp]\n  closed: [9000/tcp]\n\nmaintenance:\n",
    ),
    (
        "app_package_name",
        "  user: foobar\n",
        "  user: foobar\n  packages: [PHP8.2-mbstring]\n",
    ),
];

/// Mistakes in the HA design (inventory/lab-ha.yml) and the
/// primary/replica one (tests/fixtures/lab-pair.yml), each text replaced
/// wherever it appears.
const HA_MISTAKES: &[(&str, &str, &str)] = &[
    (
        "ha_cluster_of_two",
        "  - name: db3\n    address: 10.249.0.33\n    roles: [db_cluster]\n    ssh: *root\n",
        "",
    ),
    (
        "ha_cluster_beside_a_primary",
        "address: 10.249.0.31\n    roles: [db_cluster]",
        "address: 10.249.0.31\n    roles: [db]",
    ),
    (
        "ha_cluster_member_on_a_load_balancer",
        "roles: [lb, dns_secondary]",
        "roles: [lb, dns_secondary, db_cluster]",
    ),
    (
        "ha_lb_without_web_servers",
        "roles: [web, app]",
        "roles: [dns]",
    ),
    (
        "ha_lb_on_a_web_server",
        "roles: [lb, dns_secondary]",
        "roles: [lb, web, app]",
    ),
    (
        "ha_dns_secondary_without_primary",
        "roles: [lb, dns]",
        "roles: [lb]",
    ),
    (
        "ha_two_zone_primaries",
        "roles: [lb, dns_secondary]",
        "roles: [lb, dns]",
    ),
    (
        "ha_dns_secondary_without_transfer_key",
        "  transfer_key: file:/var/lib/foobar/lab-ha/secrets/transfer_key\n",
        "",
    ),
    (
        "ha_two_servers_one_address",
        "address: 10.249.0.22",
        "address: 10.249.0.21",
    ),
    (
        "ha_floating_address_outside_the_subnet",
        "floating_address: 10.249.0.10",
        "floating_address: 10.250.0.10",
    ),
    (
        "ha_floating_address_of_a_server",
        "floating_address: 10.249.0.10",
        "floating_address: 10.249.0.21",
    ),
    (
        "ha_private_floating_address_outside_the_subnet",
        "  floating_address: 10.249.0.10\n",
        "  floating_address: 10.249.0.10\n  private_floating_address: 10.250.0.10\n",
    ),
];

const REPLICA_MISTAKES: &[(&str, &str, &str)] = &[
    (
        "ha_replica_without_primary",
        "roles: [web, app, db, dns]",
        "roles: [web, app, dns]",
    ),
    (
        "ha_two_primaries",
        "roles: [dns_secondary, db_replica]",
        "roles: [dns_secondary, db]",
    ),
    (
        "ha_replica_without_replication_password",
        "  replication_password: file:/var/lib/foobar/test-lab/secrets/replication_password\n",
        "",
    ),
];

#[test]
fn every_ha_mistake_is_refused_before_any_connection() {
    refused_before_any_connection("inventory/lab-ha.yml", "../apps/python", HA_MISTAKES);
    refused_before_any_connection(
        "tests/fixtures/lab-pair.yml",
        "../../apps/python",
        REPLICA_MISTAKES,
    );
}

fn refused_before_any_connection(inventory: &str, app: &str, mistakes: &[(&str, &str, &str)]) {
    let base =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(inventory))
            .unwrap()
            .replace(app, &format!("{}/apps/python", env!("CARGO_MANIFEST_DIR")));
    for (name, was, now) in mistakes {
        assert!(
            base.contains(was),
            "{name}: {inventory} no longer has {was:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inventory.yml"), base.replace(was, now)).unwrap();
        // provision: refused while loading, so no server is contacted.
        let out = foobar()
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .args(["-i", "inventory.yml", "provision"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        insta::assert_snapshot!(format!("mistake__{name}"), text(&out.stderr));
    }
}

#[test]
fn every_mistake_gets_one_clear_message() {
    let base = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(LAB))
        .unwrap()
        .replace("../apps/python", "APP_DIR");
    let app_dir = format!("{}/apps/python", env!("CARGO_MANIFEST_DIR"));
    assert!(MISTAKES.len() >= 20);
    for (name, was, now) in MISTAKES {
        assert!(
            base.contains(was),
            "{name}: the lab inventory no longer has {was:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        // The lab's password file exists only once the lab has been up:
        // where a case leaves it, a password from the environment instead.
        let inventory = base
            .replacen(was, now, 1)
            .replace("APP_DIR", &app_dir)
            .replace(
                "file:/var/lib/foobar/lab/secrets/mysql_password",
                "env:FOOBAR_MISTAKES_DB_PASSWORD",
            );
        std::fs::write(dir.path().join("inventory.yml"), inventory).unwrap();
        let out = foobar()
            .current_dir(dir.path())
            .env("FOOBAR_MISTAKES_DB_PASSWORD", "a-long-enough-password")
            .env("HOME", "/home/alice")
            .env("NO_COLOR", "1")
            .args(["-i", "inventory.yml", "render"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        let message = text(&out.stderr).replace(env!("CARGO_MANIFEST_DIR"), "<project>");
        insta::assert_snapshot!(format!("mistake__{name}"), message);
    }
}
