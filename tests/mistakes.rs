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
    (
        "password_command_fails",
        "file:/var/lib/foobar/lab/secrets/mysql_password",
        "cmd:sh -c 'echo the vault is sealed >&2; exit 1'",
    ),
    (
        "password_command_holds_a_colon",
        "file:/var/lib/foobar/lab/secrets/mysql_password",
        "cmd:sh -c 'echo vault: sealed >&2; exit 1'",
    ),
    ("code_base_missing", "source: APP_DIR", "source: ../app"),
    (
        "code_base_under_home",
        "source: APP_DIR",
        "source: ~/my-app",
    ),
    (
        "code_base_ref_unknown",
        "source: APP_DIR\n",
        "source: APP_DIR\n  ref: v0.0-never-tagged\n",
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
        "env_value_with_a_tab",
        "  user: foobar\n",
        "  user: foobar\n  env:\n    PRICE: \"costs\\t$5\"\n",
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
    ("duplicate_key", "  ttl: 300\n", "  ttl: 300\n  ttl: 600\n"),
    (
        "servers_empty",
        "servers:\n  - name: web1\n    address: 10.250.0.10\n    # Served on IPv6 too (the zone's AAAA records); the lab's IPv6 subnet\n    # is made from its bridge's (fd00:fb:afa::/64).\n    ipv6: fd00:fb:afa::a\n    roles: [web, app, db, dns]\n    ssh:\n      user: root\n      identity_file: /var/lib/foobar/lab/id_ed25519\n",
        "servers: []\n",
    ),
    ("zone_with_trailing_dot", "zone: foobar.com", "zone: mysite.com."),
    (
        "host_keys_yes",
        "  known_hosts: /var/lib/foobar/lab/known_hosts\n",
        "  known_hosts: /var/lib/foobar/lab/known_hosts\n  accept_new_host_keys: yes\n",
    ),
    (
        "record_cname_beside_other_records",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: blog, type: MX, value: \"10 mail.example.net.\" }\n    - { name: blog, type: CNAME, value: www }\n",
    ),
    (
        "record_cname_at_www",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: www, type: CNAME, value: shop.example.net. }\n",
    ),
    (
        "record_mx_preference",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: \"@\", type: MX, value: \"ten mail.example.net.\" }\n",
    ),
    (
        "record_txt_unescaped_quote",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: s1._domainkey, type: TXT, value: '\"v=DKIM1; k=rsa; \" \"p=MIGfMA0GCSqGSIb3\"' }\n",
    ),
    (
        "record_a_bad_address",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: mail, type: A, value: 10.250.0.300 }\n",
    ),
    (
        "record_name_with_a_space",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: \"my blog\", type: CNAME, value: www }\n",
    ),
    (
        "record_outside_the_zone",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: mail.example.net., type: A, value: 203.0.113.25 }\n",
    ),
    (
        "record_srv_without_weight",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: _sip._tcp, type: SRV, value: \"10 5060 sip.example.net.\" }\n",
    ),
    (
        "record_caa_tag",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: \"@\", type: CAA, value: '0 issuer \"letsencrypt.org\"' }\n",
    ),
    (
        "record_unknown_type",
        "  ttl: 300\n",
        "  ttl: 300\n  records:\n    - { name: \"@\", type: SPF, value: \"v=spf1 -all\" }\n",
    ),
    (
        "location_url_without_a_trailing_slash",
        "  static_dir: static\n",
        "  static_dir: static\n  locations:\n    - { url: /media, shared: media }\n",
    ),
    (
        "location_of_a_folder_not_shared",
        "  static_dir: static\n",
        "  static_dir: static\n  locations:\n    - { url: /media/, shared: media }\n",
    ),
    (
        "location_of_the_static_dir",
        "  static_dir: static\n",
        "  static_dir: static\n  locations:\n    - { url: /static/, folder: static, cache: immutable }\n",
    ),
    (
        "location_folder_escapes_the_release",
        "  static_dir: static\n",
        "  static_dir: static\n  locations:\n    - { url: /assets/, folder: ../assets }\n",
    ),
    (
        "locations_overlap",
        "  static_dir: static\n",
        "  static_dir: static\n  locations:\n    - { url: /assets/, folder: build }\n    - { url: /assets/img/, folder: img }\n",
    ),
    (
        "static_dir_is_the_python_code_base",
        "  static_dir: static\n",
        "  static_dir: .\n",
    ),
    (
        "upload_max_in_bytes",
        "  user: foobar\n",
        "  user: foobar\n  upload_max: 16000000\n",
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
        "ha_floating_address_without_vrrp_password",
        "  vrrp_password: file:/var/lib/foobar/lab-ha/secrets/vrrp_password\n",
        "",
    ),
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
        "ha_floating_address_v6_outside_the_lbs_64",
        "floating_address_v6: fd00:fb:af9::a",
        "floating_address_v6: fd00:fb:af9:1::a",
    ),
    (
        "ha_ipv6_link_local",
        "ipv6: fd00:fb:af9::c",
        "ipv6: fe80::c",
    ),
    (
        "ha_ipv6_outside_the_lab",
        "ipv6: fd00:fb:af9::c",
        "ipv6: 2001:db8::c",
    ),
    (
        "ha_two_servers_one_ipv6",
        "ipv6: fd00:fb:af9::c",
        "ipv6: fd00:fb:af9::b",
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

const BACKUP_MISTAKES: &[(&str, &str, &str)] = &[
    (
        "backup_retention_zero",
        "    hourly: 24\n",
        "    hourly: 0\n",
    ),
    (
        "backup_beside_the_database",
        "    roles: [backup]\n",
        "    roles: [backup, db_replica]\n",
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
    refused_before_any_connection(
        "inventory/lab-backup.yml",
        "../apps/python",
        BACKUP_MISTAKES,
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
        let message = refused_render(name, dir.path(), "inventory.yml");
        insta::assert_snapshot!(format!("mistake__{name}"), message);
    }
}

/// `foobar -i INVENTORY render` in `dir`, refused as bad input: what it
/// says, the project's folder written `<project>`.
fn refused_render(name: &str, dir: &std::path::Path, inventory: &str) -> String {
    let out = foobar()
        .current_dir(dir)
        .env("FOOBAR_MISTAKES_DB_PASSWORD", "a-long-enough-password")
        .env("HOME", "/home/alice")
        .env("NO_COLOR", "1")
        .args(["-i", inventory, "render"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
    text(&out.stderr).replace(env!("CARGO_MANIFEST_DIR"), "<project>")
}

/// Mistakes with stages: (name, the base's text replaced (was, now), the
/// stage's text). The base is the lab inventory; each mistake is shown in
/// the file that holds it, or where `extends:` names the file it is about.
const STAGE_MISTAKES: &[(&str, (&str, &str), &str)] = &[
    (
        "stage_base_missing",
        ("", ""),
        "extends: bsae.yml\ndomain:\n  ttl: 600\n",
    ),
    (
        "stage_extends_in_a_circle",
        ("servers:\n", "extends: production.yml\nservers:\n"),
        "extends: base.yml\ndomain:\n  ttl: 600\n",
    ),
    (
        "stage_type_error_in_the_stage",
        ("", ""),
        "extends: base.yml\napp:\n  workers: many\n",
    ),
    (
        "stage_error_in_the_base",
        ("  workers: 2\n", "  workers: two\n"),
        "extends: base.yml\ndomain:\n  ttl: 600\n",
    ),
];

#[test]
fn stage_mistakes_are_shown_in_the_file_that_holds_them() {
    let lab = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(LAB))
        .unwrap()
        .replace(
            "../apps/python",
            &format!("{}/apps/python", env!("CARGO_MANIFEST_DIR")),
        )
        .replace(
            "file:/var/lib/foobar/lab/secrets/mysql_password",
            "env:FOOBAR_MISTAKES_DB_PASSWORD",
        );
    for (name, (was, now), stage) in STAGE_MISTAKES {
        assert!(
            lab.contains(was),
            "{name}: the lab inventory no longer has {was:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.yml"), lab.replacen(was, now, 1)).unwrap();
        std::fs::write(dir.path().join("production.yml"), stage).unwrap();
        let message = refused_render(name, dir.path(), "production.yml");
        insta::assert_snapshot!(format!("mistake__{name}"), message);
    }
}

/// Several mistakes in one inventory: each shown, in one run, like cargo.
#[test]
fn every_mistake_of_an_inventory_is_shown_at_once() {
    let dir = tempfile::tempdir().unwrap();
    inventory_with(
        LAB,
        dir.path(),
        &[
            ("  workers: 2\n", "  wokers: 2\n"),
            ("kind: gunicorn", "kind: gunicron"),
            ("days: [sun]", "days: [sunday]"),
        ],
    );
    let message = refused_render("three_typos", dir.path(), "inventory.yml");
    assert_eq!(message.matches("\nerror").count() + 1, 4, "{message}");
    insta::assert_snapshot!("mistake__three_typos", message);
}

/// The lab's password file, there only once the lab has been up.
const LAB_PASSWORD: &str = "file:/var/lib/foobar/lab/secrets/mysql_password";

/// Mistakes in a project's playbook, each at its line there: a `when`
/// that cannot be read, a template that does not exist (at the `src`
/// naming it), a step's field, in the words the playbook is written in.
const PLAYBOOK_MISTAKES: &[(&str, &str, &str)] = &[
    (
        "when_syntax_error",
        "when: \"os.harden\"",
        "when: \"os.harden and\"",
    ),
    (
        "template_missing",
        "src: hardening/login.defs.j2",
        "src: hardening/login.def.j2",
    ),
    (
        "step_dest_relative",
        "dest: /etc/login.defs",
        "dest: etc/login.defs",
    ),
];

#[test]
fn playbook_mistakes_are_shown_at_their_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let playbook = std::fs::read_to_string(root.join("playbooks/provision.yml")).unwrap();
    for (name, was, now) in PLAYBOOK_MISTAKES {
        assert!(
            playbook.contains(was),
            "{name}: the playbook no longer has {was:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        inventory_with(
            LAB,
            dir.path(),
            &[(LAB_PASSWORD, "env:FOOBAR_MISTAKES_DB_PASSWORD")],
        );
        std::fs::create_dir(dir.path().join("playbooks")).unwrap();
        std::fs::write(
            dir.path().join("playbooks/provision.yml"),
            playbook.replacen(was, now, 1),
        )
        .unwrap();
        let out = foobar()
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("FOOBAR_MISTAKES_DB_PASSWORD", "a-long-enough-password")
            .args(["-q", "-i", "inventory.yml", "--project", ".", "render"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        insta::assert_snapshot!(format!("mistake__{name}"), text(&out.stderr));
    }
}

/// Outside foobar's repository, with no inventory or an empty one:
/// `foobar init` is what makes one.
#[test]
fn without_an_inventory_init_is_suggested() {
    let dir = tempfile::tempdir().unwrap();
    let out = foobar()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .arg("render")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // The folder is a new one each run.
    let here = dir.path().canonicalize().unwrap();
    let stderr = text(&out.stderr).replace(here.to_str().unwrap(), "<the current folder>");
    insta::assert_snapshot!("mistake__no_inventory_outside_the_repo", stderr);
    std::fs::write(dir.path().join("inventory.yml"), "\n").unwrap();
    let message = refused_render("empty_inventory", dir.path(), "inventory.yml");
    insta::assert_snapshot!("mistake__empty_inventory", message);
}
