#![no_main]
//! Any text as what a server printed for the fact script of the shipped
//! playbook (lab inventory): split by step and parsed and planned by each
//! step's kind. A plan or nothing, never a panic.

use std::path::Path;
use std::sync::OnceLock;

use foobar::resolve::Resolved;
use foobar::steps::PlanCx;
use libfuzzer_sys::fuzz_target;

fn steps() -> &'static Vec<Resolved> {
    static STEPS: OnceLock<Vec<Resolved>> = OnceLock::new();
    STEPS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let inv = foobar::inventory::load(&root.join("inventory/lab.yml")).unwrap();
        let pb = foobar::playbook::load(&root.join("playbooks/provision.yml")).unwrap();
        let renderer = foobar::render::Renderer::new(&foobar::project::Project::at(&root));
        let secrets = foobar::secrets::Secrets::masked();
        foobar::resolve::resolve(&renderer, &pb, &inv, &inv.inventory.servers.0[0], &secrets)
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let steps = steps();
    let facts = foobar::facts::parse(&text, steps.len());
    let cx = PlanCx { today: 20261126 };
    let planned = foobar::plan::plan(steps, &facts, &cx);
    for p in &planned {
        if let Some(change) = &p.change {
            let _ = change.describe();
        }
    }
    // Each kind's parser alone, over the whole text.
    for step in steps {
        let _ = step.step.plan(&text, &cx);
    }
});
