//! What the backup server logs in with, kept on the machine running foobar
//! in the folder `backup.keys` names: an Ed25519 key made on first use
//! (0600 in a 0700 folder) whose public half the servers it backs up allow
//! one forced command; and the host keys it checks them by, taken from
//! the known_hosts foobar itself trusts them by.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The key pair, OpenSSH's formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupKey {
    pub private: String,
    pub public: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ssh-keygen {what}: {detail}")]
    Keygen { what: String, detail: String },
}

/// The key in `dir`, made there if missing.
pub fn ensure(dir: &Path) -> Result<BackupKey, KeyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    crate::local_file::private_folder(dir).map_err(io(dir))?;
    let private = dir.join("id_ed25519");
    if !private.exists() {
        keygen(
            "making the backup key",
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "foobar-backup", "-f"])
                .arg(&private),
        )?;
    }
    let public = private.with_extension("pub");
    Ok(BackupKey {
        private: std::fs::read_to_string(&private).map_err(io(&private))?,
        public: std::fs::read_to_string(&public)
            .map_err(io(&public))?
            .trim()
            .to_string(),
    })
}

/// The host keys `known_hosts` holds for `address` (and `port`, when not
/// 22), as lines naming the server `as_name` instead: the backup server
/// reaches it by its private address. `ssh-keygen -F` reads hashed
/// entries too.
pub fn host_keys(
    known_hosts: &Path,
    address: &str,
    port: Option<u16>,
    as_name: &str,
) -> Result<Vec<String>, KeyError> {
    let host = match port {
        Some(p) if p != 22 => format!("[{address}]:{p}"),
        _ => address.to_string(),
    };
    let out = Command::new("ssh-keygen")
        .args(["-F", &host, "-f"])
        .arg(known_hosts)
        .output()
        .map_err(|source| KeyError::Io {
            path: known_hosts.to_path_buf(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(' ').map(|(_, key)| format!("{as_name} {key}")))
        .collect())
}

fn keygen(what: &str, cmd: &mut Command) -> Result<(), KeyError> {
    let out = cmd.output().map_err(|e| KeyError::Keygen {
        what: what.into(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(KeyError::Keygen {
            what: what.into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_then_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = ensure(&keys).unwrap();
        assert!(first.public.starts_with("ssh-ed25519 "), "{}", first.public);
        assert!(first.private.contains("OPENSSH PRIVATE KEY"));
        assert_eq!(ensure(&keys).unwrap(), first);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys), 0o700);
        assert_eq!(mode(&keys.join("id_ed25519")), 0o600);
    }

    #[test]
    fn host_keys_are_found_hashed_or_not_and_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            "10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheTestOnly00000000000000000000\n\
             [10.0.0.6]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyForTheTest000000000000000000000\n",
        )
        .unwrap();
        let found = host_keys(&file, "10.0.0.5", None, "db1.private").unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("db1.private ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake"));
        assert_eq!(
            host_keys(&file, "10.0.0.6", Some(2222), "x").unwrap().len(),
            1
        );
        assert!(host_keys(&file, "10.0.0.7", None, "x").unwrap().is_empty());
        // Hashed, as HashKnownHosts writes them.
        assert!(Command::new("ssh-keygen")
            .args(["-H", "-f"])
            .arg(&file)
            .output()
            .unwrap()
            .status
            .success());
        assert_eq!(host_keys(&file, "10.0.0.5", None, "db1").unwrap().len(), 1);
    }
}
