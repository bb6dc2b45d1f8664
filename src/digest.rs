//! SHA-256 in hex: what foobar compares files, releases and wheel caches
//! by, on this machine and (through `sha256sum`) on the servers; and
//! MariaDB's password hash.

use sha1::Sha1;
use sha2::{Digest, Sha256};

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MariaDB's mysql_native_password hash: `*` + upper hex SHA1(SHA1(pw)).
/// Comparing hashes lets the plan see a password change without reading
/// or sending the password.
pub fn mysql_native_hash(password: &str) -> String {
    let inner = Sha1::digest(password.as_bytes());
    let outer = Sha1::digest(inner);
    format!(
        "*{}",
        outer.iter().map(|b| format!("{b:02X}")).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_native_hash_matches_mariadb() {
        // SELECT PASSWORD('password') in MariaDB.
        assert_eq!(
            mysql_native_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }
}
