#![no_main]
//! Any bytes as an inventory: an error or an inventory, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = foobar::inventory::parse(std::path::Path::new("fuzz.yml"), text);
    }
});
