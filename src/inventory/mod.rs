//! The inventory: what the servers are. Loaded strictly from YAML; every
//! value that later reaches a shell, a config file or a DNS zone is
//! validated while it is parsed, so that errors carry file, line and column.

mod calendar;
mod load;
mod overrides;
mod records;
mod schema;
mod stages;
mod tree;
mod values;

pub use load::{load, Loaded};
pub use overrides::{apply as with_overrides, Override};
pub use records::{Record, RecordData, RecordKind, ZoneRecord};
pub use schema::*;
pub use tree::{same_place, Document};
pub use values::{
    compile_glob, AcmeDirectory, Address, AppCommand, BackupEvery, ByteSize, Calendar, ClockTime,
    ConfirmSecs, DomainName, Email, EnvName, GitRef, InputGlob, KeepCount, KeepReleases, Label,
    LocalPath, PackageName, Port, PortSpec, PrefixLen, ProcessName, RelativeName, ReleasePath,
    RenewDays, RouterId, RunSocket, SecretCommand, ServerPath, SqlName, StopSecs, TimeZone, Ttl,
    UnixName, UrlPath, UrlPrefix, WebRoot, Workers, WsgiEntry,
};

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_located_in_the_text() {
        let text = std::fs::read_to_string("inventory/lab.yml").unwrap();
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let inv = load(Path::new("inventory/lab.yml")).unwrap();
        let at = |key: &str| inv.document.origin(key).map(|o| o.line);
        assert_eq!(at("app.source"), Some(line_of("source: ../apps/python")));
        assert_eq!(at("mysql.password"), Some(line_of("password: file:")));
        assert_eq!(
            at("servers[0].ssh.identity_file"),
            Some(line_of("identity_file:"))
        );
        assert_eq!(
            at("servers[0].address"),
            Some(line_of("address: 10.250.0.10"))
        );
        let source = inv.document.origin("app.source").unwrap();
        assert_eq!((source.column, source.width), (11, 14), "the value's place");
    }

    use std::net::Ipv4Addr;
    use std::path::Path;

    use super::*;
    use crate::error::InputError;

    const GOOD: &str = r#"
servers:
  - name: web1
    address: 10.250.0.10
    roles: [web, app, db, dns]
domain:
  zone: foobar.com
app:
  kind: gunicorn
  source: ../apps/python
mysql:
  database: foobar
  user: foobar
  password: env:FOOBAR_DB_PASSWORD
"#;

    fn parse(path: &Path, text: &str) -> Result<Inventory, InputError> {
        let document = Document::read(path, text).map_err(|e| e[0].clone())?;
        load::typed(&document).map_err(|e| e[0].clone())
    }

    fn err(text: &str) -> InputError {
        parse(Path::new("inv.yml"), text).unwrap_err()
    }

    #[test]
    fn good_inventory_gets_defaults() {
        let inv = parse(Path::new("inv.yml"), GOOD).unwrap();
        assert_eq!(inv.domain.fqdn(), "www.foobar.com");
        assert_eq!(inv.domain.ttl.0, 300);
        assert_eq!(inv.nginx.listen.0, 80);
        assert_eq!(inv.app.socket.as_str(), "/run/foobar/app.sock");
        assert!(inv.servers.0[0].ssh.user.is_none(), "left to ~/.ssh/config");
        assert_eq!(
            inv.nameservers(),
            vec![(
                "ns1.foobar.com".to_string(),
                Ipv4Addr::new(10, 250, 0, 10).into()
            )]
        );
    }

    #[test]
    fn every_app_kind_names_an_entry_point_key_of_app() {
        let inv = parse(Path::new("inv.yml"), GOOD).unwrap();
        for kind in AppKind::ALL {
            let key = kind.server().entry_key();
            assert!(!inv.app.setting(key).is_empty(), "app.{key}");
        }
    }

    #[test]
    fn the_zone_is_kept_in_lower_case() {
        let inv = parse(
            Path::new("inv.yml"),
            &GOOD.replace("foobar.com", "FooBar.COM"),
        )
        .unwrap();
        assert_eq!(inv.domain.fqdn(), "www.foobar.com");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = err(&GOOD.replace("  zone: foobar.com", "  zone: foobar.com\n  colour: blue"));
        assert_eq!((e.line, e.column), (8, 3), "{e}");
        assert!(e.message.contains("unknown key `colour`"), "{e}");
    }

    #[test]
    fn addresses_may_be_ipv6_or_names_with_an_ip_for_the_zone() {
        let v6 = parse(
            Path::new("inv.yml"),
            &GOOD.replace("10.250.0.10", "\"2001:db8::10\""),
        )
        .unwrap();
        assert_eq!(v6.web_address().to_string(), "2001:db8::10");
        let named = GOOD.replace("address: 10.250.0.10", "address: web1.example.net");
        let e = err(&named);
        assert!(e.message.contains("the zone needs its IP address"), "{e}");
        let with_ip = named.replace(
            "address: web1.example.net",
            "address: web1.example.net\n    ip: 203.0.113.10",
        );
        let inv = parse(Path::new("inv.yml"), &with_ip).unwrap();
        assert_eq!(inv.web_address().to_string(), "203.0.113.10");
    }

    #[test]
    fn bad_address_is_located() {
        let e = err(&GOOD.replace("10.250.0.10", "10.250.0.300"));
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("not a valid IP address"), "{e}");
    }

    #[test]
    fn plain_password_is_refused_without_echoing_it() {
        let e = err(&GOOD.replace("env:FOOBAR_DB_PASSWORD", "hunter2"));
        assert_eq!(e.line, 14, "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.message.contains("env:NAME"), "{e}");
    }

    #[test]
    fn shell_metacharacters_in_names_are_refused() {
        let e = err(&GOOD.replace("user: foobar", "user: \"foo;rm -rf /\""));
        assert!(e.message.contains("not a valid database name"), "{e}");
        let e = err(&GOOD.replace("name: web1", "name: \"web 1\""));
        assert!(e.message.contains("DNS label"), "{e}");
    }

    #[test]
    fn duplicate_servers_are_refused() {
        let twice = GOOD.replace(
            "servers:\n",
            "servers:\n  - name: web1\n    address: 10.250.0.11\n    roles: [dns]\n",
        );
        assert!(err(&twice).message.contains("appears twice"));
    }

    #[test]
    fn lab_addresses_stay_in_the_lab_subnet() {
        let text =
            format!("lab:\n  bridge_address: 10.250.0.1\n{GOOD}").replace("10.250.0.10", "8.8.8.8");
        let e = err(&text);
        assert!(e.message.contains("outside the lab subnet"), "{e}");
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn split_roles_are_refused() {
        let e = err(&GOOD.replace("[web, app, db, dns]", "[web, dns]"));
        assert!(e.message.contains("no server has the `db` role"), "{e}");
    }

    #[test]
    fn the_files_ssh_is_given_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "").unwrap();
        let check = |ssh: &str, key: &str| {
            let text = format!("ssh:\n{ssh}{GOOD}").replace(
                "    roles: [web, app, db, dns]\n",
                &format!("    roles: [web, app, db, dns]\n    ssh:\n      identity_file: {key}\n"),
            );
            let path = dir.path().join("inv.yml");
            std::fs::write(&path, text).unwrap();
            load(&path).unwrap().check_ssh_files()
        };
        // Relative to the inventory's folder, as ssh is given them.
        assert_eq!(check("  config: key\n", "key"), Ok(()));
        let e = check("", "missing").unwrap_err();
        assert!(e.message.contains("identity_file: no such file"), "{e}");
        assert!(e.help.unwrap().contains("leave identity_file out"));
        let e = check("  known_hosts: known_hosts\n", "key").unwrap_err();
        assert_eq!((e.line, e.column), (2, 16), "{e}");
        // ssh makes the file at its first new key, not the folder.
        let new_keys = "  accept_new_host_keys: true\n";
        assert_eq!(
            check(&format!("  known_hosts: known_hosts\n{new_keys}"), "key"),
            Ok(())
        );
        let e = check(&format!("  known_hosts: no/known_hosts\n{new_keys}"), "key").unwrap_err();
        assert!(e.message.contains("no such folder"), "{e}");
        let e = check("  config: .\n", "key").unwrap_err();
        assert!(e.message.contains("is a folder"), "{e}");
    }

    /// `GOOD` with `nginx` and more of `app` (its kind first).
    fn web(kind: &str, nginx: &str, app: &str) -> String {
        GOOD.replace("kind: gunicorn", &format!("kind: {kind}\n{app}"))
            .replace("app:\n", &format!("nginx:\n{nginx}app:\n"))
    }

    #[test]
    fn web_layouts_are_read_with_their_defaults() {
        let inv = parse(Path::new("inv.yml"), GOOD).unwrap();
        assert_eq!(inv.nginx.static_dir.unwrap().as_str(), "static");
        assert_eq!(inv.app.upload_max.as_str(), "16M");
        assert_eq!(inv.app.php.memory_limit.as_str(), "256M");
        let django = web(
            "gunicorn",
            "  static_dir: null\n  locations:\n    - { url: /static/, folder: static, cache: immutable }\n    - { url: /media/, shared: media }\n",
            "  shared: [media]\n  upload_max: 64m\n",
        );
        let inv = parse(Path::new("inv.yml"), &django).unwrap();
        assert!(inv.nginx.static_dir.is_none());
        assert_eq!(inv.nginx.locations.len(), 2);
        assert_eq!(inv.nginx.locations[0].cache, Some(Cache::Immutable));
        assert_eq!(inv.app.upload_max.as_str(), "64M", "as PHP reads it");
        let wordpress = web(
            "php-fpm",
            "  static_dir: .\n",
            "  shared: [wp-content/uploads]\n  php: { memory_limit: 512M }\n",
        );
        let inv = parse(Path::new("inv.yml"), &wordpress).unwrap();
        assert_eq!(inv.nginx.static_dir.unwrap().as_str(), ".");
    }

    #[test]
    fn web_layout_mistakes_are_located() {
        // (kind, nginx, app, line, what the message says)
        let cases = [
            (
                "php-fpm",
                "  static_dir: null\n",
                "",
                9,
                "php-fpm runs the scripts",
            ),
            ("gunicorn", "  static_dir: .\n", "", 9, "whole code base"),
            ("puma", "  static_dir: ../etc\n", "", 9, "must be `.`"),
            (
                "php-fpm",
                "  static_dir: public\n",
                "  shared: [public]\n",
                12,
                "site's root would be uploads",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /static, folder: static }\n",
                "",
                10,
                "not a URL prefix",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /a/../b/, folder: static }\n",
                "",
                10,
                "not a URL prefix",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /.git/, folder: static }\n",
                "",
                10,
                "not a URL prefix",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /s/, folder: ../static }\n",
                "",
                10,
                "inside the release",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /s/, folder: .venv/lib }\n",
                "",
                10,
                "hidden",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /static/, folder: static }\n",
                "",
                10,
                "served at / already",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /m/, shared: media }\n",
                "",
                10,
                "not one of app.shared (none)",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /m/, folder: m, shared: media }\n",
                "  shared: [media]\n",
                10,
                "one of `folder`",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /m/ }\n",
                "",
                10,
                "one of `folder`",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /a/, folder: a }\n    - { url: /a/b/, folder: b }\n",
                "",
                11,
                "/a/b/ overlaps /a/",
            ),
            (
                "gunicorn",
                "  locations:\n    - { url: /a/, folder: a, cache: forever }\n",
                "",
                10,
                "forever",
            ),
            ("gunicorn", "", "  upload_max: 16MB\n", 11, "not a size"),
            (
                "php-fpm",
                "",
                "  php: { memory_limit: -1 }\n",
                11,
                "not a size",
            ),
        ];
        for (kind, nginx, app, line, says) in cases {
            let e = err(&web(kind, nginx, app));
            assert_eq!(e.line, line, "{kind} {nginx} {app}: {e}");
            assert!(e.message.contains(says), "{kind} {nginx} {app}: {e}");
        }
    }

    #[test]
    fn empty_and_non_utf8_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.yml");
        std::fs::write(&p, "  \n").unwrap();
        assert!(load(&p).unwrap_err().0[0].message.contains("empty"));
        std::fs::write(&p, b"servers:\n  - name: \xff\n").unwrap();
        let e = &load(&p).unwrap_err().0[0];
        assert_eq!((e.line, e.column), (2, 11), "{e}");
    }
}
