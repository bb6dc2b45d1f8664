//! The inventory: what the servers are. Loaded strictly from YAML; every
//! value that later reaches a shell, a config file or a DNS zone is
//! validated while it is parsed, so that errors carry file, line and column.

mod load;
mod schema;
mod values;

pub use load::{load, parse, Loaded};
pub use schema::*;
pub use values::{
    AcmeDirectory, Address, AppCommand, ClockTime, ConfirmSecs, DomainName, Email, EnvName,
    KeepReleases, Label, LocalPath, PackageName, Port, PortSpec, PrefixLen, RelativeName,
    ReleasePath, RenewDays, RouterId, RunSocket, ServerPath, SqlName, TimeZone, Ttl, UnixName,
    UrlPath, Workers, WsgiEntry,
};

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_located_in_the_text() {
        let text = std::fs::read_to_string("inventory/lab.yml").unwrap();
        let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let at = |key: &str| load::locate(&text, key).map(|(l, _)| l);
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
        assert_eq!(at("app.nope"), None);
        let (_, column) = load::locate(&text, "app.source").unwrap();
        assert_eq!(column, 11, "the value's column");
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
    fn empty_and_non_utf8_files_are_refused() {
        assert!(err("  \n").message.contains("empty"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.yml");
        std::fs::write(&p, b"servers:\n  - name: \xff\n").unwrap();
        let e = load(&p).unwrap_err();
        assert_eq!((e.line, e.column), (2, 11), "{e}");
    }
}
