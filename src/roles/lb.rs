//! `lb`: HAProxy in front of the web servers, and keepalived sharing the
//! floating address between the load balancers when there is one.

use super::{checked_reload, Call, Opening, Part, Recipe, Role, ServerRole, Site};

pub const NAME: &str = "lb";
/// Its part in the diagram that the app servers reach a Galera cluster by.
pub const DB_PART: &str = "HAProxy (MariaDB)";
const KEEPALIVED: &str = "keepalived";

pub struct Lb;

impl ServerRole for Lb {
    fn name(&self) -> &'static str {
        NAME
    }
    fn units(&self, site: &dyn Site) -> Vec<&'static str> {
        if site.floating_address().is_some() {
            vec!["haproxy", "keepalived"]
        } else {
            vec!["haproxy"]
        }
    }
    /// The master starts new workers on the same sockets; the old ones
    /// finish their requests (idle-close-on-response).
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        checked_reload(
            "haproxy -c -q -f /etc/haproxy/haproxy.cfg",
            "haproxy -c, then seamless reload",
            unit,
        )
    }
    fn restart_order(&self) -> u8 {
        0
    }
    /// The site to anyone; a Galera cluster's one writer to the app
    /// servers only.
    fn ports(&self, site: &dyn Site, server: &str) -> Vec<Opening> {
        let mut open: Vec<Opening> = site
            .site_ports()
            .into_iter()
            .map(|p| Opening::anyone(p, "tcp"))
            .collect();
        if !site.addresses_of(Role::DbCluster, server).is_empty() {
            open.push(Opening {
                port: 3306,
                protocol: "tcp",
                from: Some(site.addresses_of(Role::App, server)),
            });
        }
        open
    }
    fn diagram(&self, site: &dyn Site, server: &str) -> Vec<Part> {
        let webs = site.names_of(Role::Web, "");
        let ports: Vec<String> = ["HTTP", "HTTPS"]
            .iter()
            .zip(site.site_ports())
            .map(|(protocol, port)| format!("{protocol} :{port}"))
            .collect();
        let mut parts = vec![Part::new(
            "HAProxy",
            format!(
                "load balancer :{} to {} (health check {})",
                site.site_ports()[0],
                webs.join(", "),
                site.health_path()
            ),
        )
        .calling(vec![Call::to(super::web::PART, webs, ports.join(", "))])];
        let members = site.names_of(Role::DbCluster, server);
        if !members.is_empty() {
            parts.push(
                Part::new(
                    DB_PART,
                    format!(
                        ":3306 from the app servers to one writer of {} (Galera-aware check)",
                        members.join(", ")
                    ),
                )
                .calling(vec![Call::to(
                    super::db::PART,
                    members,
                    "TCP :3306 (one writer)",
                )]),
            );
        }
        if let Some(floating) = site.floating_address() {
            let peers = site.names_of(Role::Lb, server);
            parts.push(
                Part::new(
                    KEEPALIVED,
                    format!("VRRP: shares {floating} with {}", peers.join(", ")),
                )
                .calling(vec![Call::to(KEEPALIVED, peers, "VRRP adverts")]),
            );
        }
        parts
    }
    /// It puts the web servers in service: they come first; but before
    /// the app servers when it serves them a Galera cluster (their
    /// release command needs it). Its checks then wait for every server.
    fn wave(&self, site: &dyn Site, server: &str) -> u8 {
        if site.addresses_of(Role::DbCluster, server).is_empty() {
            3
        } else {
            0
        }
    }
    fn excludes(&self) -> &'static [(Role, &'static str)] {
        &[(
            Role::Web,
            "the lb and web roles both serve port 80; put the load balancer on a server of its own",
        )]
    }
}
