#![no_main]
//! Any text as a template, rendered with the lab inventory: an error or a
//! rendering, never a panic.

use std::path::Path;
use std::sync::OnceLock;

use foobar::inventory::Inventory;
use foobar::render::{Context, Renderer};
use foobar::secrets::Secrets;
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static (Inventory, Renderer) {
    static FIXTURE: OnceLock<(Inventory, Renderer)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("inventory/lab.yml")).unwrap();
        let inv = foobar::inventory::parse(Path::new("lab.yml"), &text).unwrap();
        (inv, Renderer::new(&foobar::project::Project::at(&root)))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        let (inv, renderer) = fixture();
        let secrets = Secrets::masked();
        let ctx = Context::new(inv, &inv.servers.0[0], &secrets);
        let _ = renderer.field(Path::new("fuzz.yml"), "fuzz", source, &ctx);
    }
});
