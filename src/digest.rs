//! SHA-256 in hex: what foobar compares files, releases and wheel caches
//! by, on this machine and (through `sha256sum`) on the servers.

use sha2::{Digest, Sha256};

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
