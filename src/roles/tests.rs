use std::net::IpAddr;

use super::*;

/// A site of one server per role, named after the role.
struct FakeSite {
    networked: bool,
    floating: bool,
    /// The database is a Galera cluster (db_cluster servers).
    cluster: bool,
}

impl Site for FakeSite {
    fn app_kind(&self) -> AppKind {
        AppKind::Puma
    }
    fn floating_address(&self) -> Option<IpAddr> {
        self.floating.then(|| IpAddr::from([10, 0, 0, 100]))
    }
    fn db_networked(&self) -> bool {
        self.networked
    }
    fn site_ports(&self) -> Vec<u16> {
        vec![80, 443]
    }
    fn addresses_of(&self, role: Role, except: &str) -> Vec<IpAddr> {
        let i = Role::ALL.iter().position(|r| *r == role).unwrap() as u8;
        (role.name() != except && (role != Role::DbCluster || self.cluster))
            .then(|| IpAddr::from([10, 0, 0, 10 + i]))
            .into_iter()
            .collect()
    }
    fn names_of(&self, role: Role, except: &str) -> Vec<String> {
        (role.name() != except && (role != Role::DbCluster || self.cluster))
            .then(|| role.name().to_string())
            .into_iter()
            .collect()
    }
    fn db_primary(&self) -> String {
        "db".into()
    }
    fn backup_db_source(&self) -> Option<String> {
        Some("db".into())
    }
    fn backup_files_source(&self) -> Option<String> {
        Some("app".into())
    }
    fn cluster_address(&self) -> Option<IpAddr> {
        self.cluster.then(|| IpAddr::from([10, 0, 0, 100]))
    }
    fn is_release_server(&self, server: &str) -> bool {
        server == "app"
    }
    fn health_path(&self) -> String {
        "/healthz".into()
    }
    fn app_root(&self) -> String {
        "/srv/foobar".into()
    }
    fn database(&self) -> String {
        "foobar".into()
    }
    fn zone(&self) -> String {
        "foobar.com".into()
    }
}

const SITE: FakeSite = FakeSite {
    networked: true,
    floating: true,
    cluster: false,
};

const CLUSTER: FakeSite = FakeSite {
    networked: true,
    floating: true,
    cluster: true,
};

#[test]
fn names_parse_back_and_the_test_role_is_registered() {
    for role in Role::ALL {
        assert_eq!(Role::parse(role.name()), Some(*role));
        let yaml: Role = serde_yaml::from_str(role.name()).unwrap();
        assert_eq!(yaml, *role);
    }
    // What restart and logs offer comes from the registry alone.
    assert_eq!(
        Role::groups(),
        ["web", "app", "db", "dns", "lb", "backup", "fixture"]
    );
    assert_eq!(Role::of_group("fixture"), [Role::Fixture]);
    assert_eq!(Role::of_group("dns"), [Role::Dns, Role::DnsSecondary]);
    let err = serde_yaml::from_str::<Role>("dsn").unwrap_err().to_string();
    assert!(err.contains("unknown variant `dsn`"), "{err}");
    assert!(err.contains("`fixture`"), "{err}");
}

#[test]
fn units_follow_the_site() {
    assert_eq!(Role::App.module().units(&SITE), ["foobar-puma"]);
    assert_eq!(Role::Lb.module().units(&SITE), ["haproxy", "keepalived"]);
    let no_floating = FakeSite {
        networked: true,
        floating: false,
        cluster: false,
    };
    assert_eq!(Role::Lb.module().units(&no_floating), ["haproxy"]);
}

#[test]
fn restart_recipes_and_their_checks() {
    let app = Role::App.module().restart(&SITE, "foobar-puma");
    assert_eq!(app.method, RestartMethod::PhasedRestart);
    assert_eq!(app.after, AfterRestart::ChecksElseRollBack);
    assert_eq!(
        app.script,
        "systemctl reload foobar-puma && systemctl try-restart 'foobar-app-*.service'"
    );
    let dns = Role::Dns.module().restart(&SITE, "named");
    assert_eq!(dns.after, AfterRestart::Dns);
    assert!(dns.script.starts_with("named-checkconf -z >&2 && "));
    let db = Role::Db.module().restart(&SITE, "mariadb");
    assert_eq!(db.method, RestartMethod::RestartBehindMaintenancePage);
    assert!(db.script.starts_with(&maintenance_up()), "{}", db.script);
    assert!(db.script.ends_with(&format!("rm -f {RESTART_FLAG}\n")));
    let member = Role::DbCluster.module().restart(&CLUSTER, "mariadb");
    assert_eq!(member.method, RestartMethod::Drain);
    assert!(
        member.script.contains("galera_new_cluster mariadb"),
        "{}",
        member.script
    );
    assert!(member.script.ends_with(SYNCED_WAIT), "{}", member.script);
    // Every role has an order of its own in `restart all`.
    let mut orders: Vec<u8> = Role::ALL
        .iter()
        .map(|r| r.module().restart_order())
        .collect();
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len(), Role::ALL.len());
}

#[test]
fn ports_and_who_may_reach_them() {
    let db = Role::Db.module().ports(&SITE, "db");
    assert_eq!(db.len(), 1);
    assert_eq!((db[0].port, db[0].protocol), (3306, "tcp"));
    assert_eq!(
        db[0].from.as_deref(),
        Some(&["10.0.0.11".parse().unwrap(), "10.0.0.13".parse().unwrap()][..]),
        "the app servers and the replicas only"
    );
    let local = FakeSite {
        networked: false,
        floating: false,
        cluster: false,
    };
    assert!(Role::Db.module().ports(&local, "db").is_empty());
    assert_eq!(Role::Web.module().ports(&SITE, "web").len(), 2);
    assert_eq!(Role::Fixture.module().ports(&SITE, "fixture")[0].port, 7000);
    // A cluster: clients and the health check from the load balancers,
    // the cluster's own ports from the other members; the load balancers
    // serve 3306 to the app servers only.
    let lb: IpAddr = "10.0.0.17".parse().unwrap();
    let member: IpAddr = "10.0.0.14".parse().unwrap();
    let app: IpAddr = "10.0.0.11".parse().unwrap();
    let open = Role::DbCluster.module().ports(&CLUSTER, "db1");
    let from = |port| {
        open.iter()
            .find(|o| o.port == port)
            .and_then(|o| o.from.clone())
            .unwrap()
    };
    assert_eq!(from(3306), [lb]);
    assert_eq!(from(CHECK_PORT), [lb]);
    for port in [4567, 4568, 4444] {
        assert_eq!(from(port), [member], "{port}");
    }
    let at_lb = Role::Lb.module().ports(&CLUSTER, "lb");
    let db = at_lb.iter().find(|o| o.port == 3306).unwrap();
    assert_eq!(db.from.as_deref(), Some(&[app][..]));
    assert!(!Role::Lb
        .module()
        .ports(&SITE, "lb")
        .iter()
        .any(|o| o.port == 3306));
}

#[test]
fn waves_and_combinations() {
    assert_eq!(Role::App.module().wave(&SITE, "app"), 1);
    assert_eq!(Role::App.module().wave(&SITE, "web2"), 2);
    assert_eq!(
        Role::App.module().wave(&SITE, "db"),
        0,
        "beside the database"
    );
    assert_eq!(Role::Lb.module().wave(&SITE, "lb"), 3);
    assert_eq!(
        Role::Lb.module().wave(&CLUSTER, "lb"),
        0,
        "before the app servers' release command, which needs the cluster"
    );
    assert!(Role::Lb
        .module()
        .excludes()
        .iter()
        .any(|(r, _)| *r == Role::Web));
    assert!(Role::Web
        .module()
        .requires()
        .iter()
        .any(|(r, _)| *r == Role::App));
}

#[test]
fn diagram_parts_name_what_they_call() {
    let nginx = &Role::Web.module().diagram(&SITE, "web")[0];
    assert_eq!(
        nginx.calls,
        [Call::to("Puma", vec!["web".into()], "unix socket")]
    );
    let app = &Role::App.module().diagram(&SITE, "app")[0];
    assert_eq!(
        app.calls,
        [Call::to(super::db::PART, vec!["db".into()], "TCP :3306")]
    );
    // A cluster is reached through HAProxy at the floating address.
    let app = &Role::App.module().diagram(&CLUSTER, "app")[0];
    assert_eq!(
        app.calls,
        [Call {
            via: Some(IpAddr::from([10, 0, 0, 100])),
            ..Call::to(super::lb::DB_PART, vec!["lb".into()], "TCP :3306")
        }]
    );
    let lb = Role::Lb.module().diagram(&CLUSTER, "lb");
    assert_eq!(lb[0].calls[0].on, ["web"]);
    assert_eq!(lb[1].calls[0].on, ["db_cluster"]);
    assert!(lb[2].detail.starts_with("VRRP: shares 10.0.0.100"));
    // A Galera member calls the others, not itself.
    let member = &Role::DbCluster.module().diagram(&CLUSTER, "db_cluster")[0];
    assert!(member.calls[0].on.is_empty());
    let backup = &Role::Backup.module().diagram(&SITE, "backup")[0];
    let pulled: Vec<_> = backup
        .calls
        .iter()
        .map(|c| (c.part.as_str(), c.on[0].as_str()))
        .collect();
    assert_eq!(
        pulled,
        [(super::db::PART, "db"), (super::app::CODE_BASE, "app")]
    );
}
