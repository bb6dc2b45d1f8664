//! `fixture` (unit tests only): a role written as a new one would be, to
//! prove that one file and one registry line are all a role needs.

use super::{AfterRestart, Opening, Part, Recipe, RestartMethod, ServerRole, Site};

pub const NAME: &str = "fixture";

pub struct Fixture;

impl ServerRole for Fixture {
    fn name(&self) -> &'static str {
        NAME
    }
    fn units(&self, _: &dyn Site) -> Vec<&'static str> {
        vec!["fixture"]
    }
    fn restart(&self, _: &dyn Site, _: &str) -> Recipe {
        Recipe {
            method: RestartMethod::Restart,
            how: "restart",
            script: "systemctl restart fixture".into(),
            after: AfterRestart::Checks,
        }
    }
    fn restart_order(&self) -> u8 {
        7
    }
    fn ports(&self, _: &dyn Site, _: &str) -> Vec<Opening> {
        vec![Opening::anyone(7000, "tcp")]
    }
    fn diagram(&self, _: &dyn Site, _: &str) -> Vec<Part> {
        vec![Part::new("fixture", "a test's own service".into())]
    }
    fn wave(&self, _: &dyn Site, _: &str) -> u8 {
        1
    }
}
