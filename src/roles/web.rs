//! `web`: nginx, serving the release's static files and passing the rest
//! to the app server on the same server.

use super::{checked_reload, Call, Opening, Part, Recipe, Role, ServerRole, Site};

pub const NAME: &str = "web";
/// Its part in the diagram, which the load balancers call.
pub const PART: &str = "nginx";

pub struct Web;

impl ServerRole for Web {
    fn name(&self) -> &'static str {
        NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec!["nginx"]
    }
    fn restart(&self, _: &dyn Site, unit: &str) -> Recipe {
        // Old workers finish their requests; a bad config never loads.
        checked_reload("nginx -t", "nginx -t, then reload", unit)
    }
    fn restart_order(&self) -> u8 {
        1
    }
    fn ports(&self, site: &dyn Site, _: &str) -> Vec<Opening> {
        site.site_ports()
            .into_iter()
            .map(|p| Opening::anyone(p, "tcp"))
            .collect()
    }
    fn diagram(&self, site: &dyn Site, server: &str) -> Vec<Part> {
        let ports: Vec<String> = site.site_ports().iter().map(|p| format!(":{p}")).collect();
        let kind = site.app_kind().server();
        vec![Part::new(
            PART,
            format!(
                "web server {}: static files itself, the rest to the app",
                ports.join(" and ")
            ),
        )
        .calling(vec![Call::to(
            kind.label(),
            vec![server.to_string()],
            kind.hop(),
        )])]
    }
    fn requires(&self) -> &'static [(Role, &'static str)] {
        &[(
            Role::App,
            "the web and app roles run together (nginx reaches the app by a unix socket); give it both",
        )]
    }
}
