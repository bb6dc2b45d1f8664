//! `dns`: BIND, authoritative for the zone.

use super::{checked_reload, AfterRestart, Call, Opening, Part, Recipe, Role, ServerRole, Site};

pub const NAME: &str = "dns";

pub struct Dns;

impl ServerRole for Dns {
    fn name(&self) -> &'static str {
        NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec!["named"]
    }
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        Recipe {
            after: AfterRestart::Dns,
            ..checked_reload("named-checkconf -z", "named-checkconf -z, then reload", unit)
        }
    }
    fn restart_order(&self) -> u8 {
        5
    }
    /// It tells the secondaries of every change; they transfer the zone.
    fn diagram(&self, site: &dyn Site, _: &str) -> Vec<Part> {
        vec![
            Part::new("BIND", format!("authoritative DNS :53 for {}", site.zone())).calling(
                vec![Call::to(
                    super::dns_secondary::PART,
                    site.names_of(Role::DnsSecondary, ""),
                    "NOTIFY, zone transfers (TSIG)",
                )],
            ),
        ]
    }
    fn ports(&self, _: &dyn Site, _: &str) -> Vec<Opening> {
        vec![Opening::anyone(53, "udp"), Opening::anyone(53, "tcp")]
    }
}
