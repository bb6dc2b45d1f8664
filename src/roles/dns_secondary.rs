//! `dns_secondary`: a BIND secondary of the zone, on another server than
//! the primary: it copies the zone by transfers signed with the site's
//! TSIG key, and the primary tells it of every change (NOTIFY). Both are
//! in the zone's NS records, so the name keeps resolving when either
//! server is gone.

use super::{checked_reload, AfterRestart, Opening, Part, Recipe, Role, ServerRole, Site};

pub const NAME: &str = "dns_secondary";
/// Its part in the diagram, which the primary's transfers reach.
pub const PART: &str = "BIND secondary";

pub struct DnsSecondary;

impl ServerRole for DnsSecondary {
    fn name(&self) -> &'static str {
        NAME
    }
    fn group(&self) -> &'static str {
        super::dns::NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec!["named"]
    }
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        Recipe {
            after: AfterRestart::Dns,
            ..checked_reload("named-checkconf", "named-checkconf, then reload", unit)
        }
    }
    fn restart_order(&self) -> u8 {
        6
    }
    fn ports(&self, _: &dyn Site, _: &str) -> Vec<Opening> {
        vec![Opening::anyone(53, "udp"), Opening::anyone(53, "tcp")]
    }
    /// It copies the zone from the primary.
    fn wave(&self, _: &dyn Site, _: &str) -> u8 {
        1
    }
    fn diagram(&self, site: &dyn Site, _: &str) -> Vec<Part> {
        vec![Part::new(
            PART,
            format!(
                "authoritative DNS :53 for {}, copied from {} (TSIG transfers, NOTIFY)",
                site.zone(),
                site.names_of(Role::Dns, "").join(", ")
            ),
        )]
    }
    fn excludes(&self) -> &'static [(Role, &'static str)] {
        &[(
            Role::Dns,
            "the dns and dns_secondary roles cannot share a server: a secondary copies the zone from the primary on another server",
        )]
    }
}
