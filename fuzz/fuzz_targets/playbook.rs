#![no_main]
//! Any bytes as a playbook: an error or a playbook, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = foobar::playbook::parse(std::path::Path::new("fuzz.yml"), text);
    }
});
