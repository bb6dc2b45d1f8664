//! Secrets: read from the environment or a file named by the inventory,
//! kept out of every output by `redact`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::db_ca::{self, MemberTls};
use crate::digest::mysql_native_hash;
use crate::error::InputError;
use crate::inventory::{check_env_text, EnvValue, Loaded, Role, SecretRef};
use crate::roles::Site;

/// What a secret looks like wherever it would otherwise be shown.
pub const MASK: &str = "********";

#[derive(Debug, Clone, Serialize)]
pub struct Secrets {
    pub mysql_password: String,
    /// Set when the inventory has replicas.
    pub replication_password: Option<String>,
    /// The zone's TSIG key, set when the inventory has secondaries.
    pub transfer_key: Option<String>,
    /// The app's environment values that are secrets, by name.
    pub app_env: BTreeMap<String, String>,
    /// The database servers' certificates and keys, by server, from the
    /// CA foobar keeps (`mysql.tls_ca`); empty when masked.
    #[serde(skip)]
    pub db_tls: BTreeMap<String, MemberTls>,
}

impl Secrets {
    /// Placeholders, for rendering files that are only looked at.
    pub fn masked() -> Self {
        Self {
            mysql_password: MASK.to_string(),
            replication_password: Some(MASK.to_string()),
            transfer_key: Some(MASK.to_string()),
            app_env: BTreeMap::new(),
            db_tls: BTreeMap::new(),
        }
    }

    /// Placeholders for the inventory's secrets, after checking that each
    /// can be read: `render` shows files without ever holding a secret,
    /// but a secret that cannot be read is still bad input.
    pub fn checked_masked(inv: &Loaded) -> Result<Self, InputError> {
        let real = Self::resolve(inv)?;
        Ok(Self {
            app_env: real
                .app_env
                .keys()
                .map(|k| (k.clone(), MASK.into()))
                .collect(),
            ..Self::masked()
        })
    }

    pub fn resolve(inv: &Loaded) -> Result<Self, InputError> {
        let mysql = &inv.inventory.mysql;
        Ok(Self {
            mysql_password: read(inv, "mysql.password", &mysql.password)?,
            replication_password: mysql
                .replication_password
                .as_ref()
                .map(|source| read(inv, "mysql.replication_password", source))
                .transpose()?,
            transfer_key: inv
                .inventory
                .domain
                .transfer_key
                .as_ref()
                .map(|source| read_key(inv, "domain.transfer_key", source))
                .transpose()?,
            app_env: app_env_secrets(inv)?,
            db_tls: db_tls(inv)?,
        })
    }

    /// The database CA's certificate, which the app servers and replicas
    /// verify the database servers by; None when masked or not networked.
    pub fn db_ca(&self) -> Option<&str> {
        self.db_tls.values().next().map(|t| t.ca.as_str())
    }

    fn values(&self) -> impl Iterator<Item = &str> {
        // A member's key is masked whole and line by line (a diff shows
        // lines).
        let keys = self.db_tls.values().flat_map(|t| {
            std::iter::once(t.key.as_str()).chain(
                t.key
                    .lines()
                    .filter(|l| !l.is_empty() && !l.starts_with("-----")),
            )
        });
        std::iter::once(self.mysql_password.as_str())
            .chain(self.replication_password.as_deref())
            .chain(self.transfer_key.as_deref())
            .chain(self.app_env.values().map(String::as_str))
            .chain(keys)
            .filter(|v| !v.is_empty() && *v != MASK)
    }

    /// Every value to keep out of output: the secrets, and the hashes the
    /// database keeps of its passwords (a hash logs in as well as the
    /// password over MariaDB's native authentication). Longest first, so
    /// that a secret inside another never leaves a fragment.
    fn hidden(&self) -> Vec<String> {
        let hashes = std::iter::once(self.mysql_password.as_str())
            .chain(self.replication_password.as_deref())
            .filter(|p| !p.is_empty() && *p != MASK)
            .map(mysql_native_hash);
        let mut hidden: Vec<String> = self.values().map(str::to_string).chain(hashes).collect();
        hidden.sort_by_key(|s| std::cmp::Reverse(s.len()));
        hidden
    }

    /// Replaces every secret value in `text` with the mask.
    pub fn redact(&self, text: &str) -> String {
        mask_all(&self.hidden(), text)
    }

    /// Both versions of a file, for a diff: a line of `new` that holds a
    /// secret makes the text before the secret a key (`DB_PASSWORD=`),
    /// and every line of either version that starts with a key is masked
    /// after it. So a rotated secret's old value never shows, although no
    /// longer one of the secrets. A line that is a secret alone masks both
    /// files whole.
    pub fn redact_pair(&self, old: &str, new: &str) -> (String, String) {
        let hidden = self.hidden();
        let mut keys = Vec::new();
        for line in new.lines() {
            if let Some(at) = hidden.iter().filter_map(|s| line.find(s.as_str())).min() {
                // Without its opening quote: an old value may be unquoted.
                keys.push(line[..at].trim_end_matches(['"', '\'']));
            }
        }
        let whole = keys.iter().any(|k| k.trim().is_empty());
        let old_lines: Vec<&str> = old.lines().collect();
        // A masked line of `new` that is not in `old` says so: the diff
        // still shows that a secret changed, never what it was or is.
        let mask = |text: &str, is_new: bool| -> String {
            text.split_inclusive('\n')
                .map(|line| {
                    let bare = line.trim_end_matches('\n');
                    let end = &line[bare.len()..];
                    let changed = if is_new && !old_lines.contains(&bare) {
                        " (new value)"
                    } else {
                        ""
                    };
                    match keys.iter().find(|k| bare.starts_with(**k)) {
                        _ if whole => format!("{MASK}{changed}{end}"),
                        Some(key) => format!("{key}{MASK}{changed}{end}"),
                        None => mask_all(&hidden, line),
                    }
                })
                .collect()
        };
        (mask(old, false), mask(new, true))
    }
}

/// `text` with each of `hidden` replaced by the mask.
fn mask_all(hidden: &[String], text: &str) -> String {
    hidden
        .iter()
        .fold(text.to_string(), |text, secret| text.replace(secret, MASK))
}

/// Every database server's certificate and key, made where missing:
/// each is named by its server name, its private address and, for a
/// cluster, the address the app servers reach it at.
fn db_tls(inv: &Loaded) -> Result<BTreeMap<String, MemberTls>, InputError> {
    let Some(dir) = &inv.inventory.mysql.tls_ca else {
        return Ok(BTreeMap::new());
    };
    if !inv.inventory.db_networked() {
        return Ok(BTreeMap::new());
    }
    let entry = inv.inventory.cluster_address();
    let members: Vec<(String, Vec<std::net::IpAddr>)> =
        [Role::Db, Role::DbReplica, Role::DbCluster]
            .into_iter()
            .flat_map(|r| inv.inventory.servers_with(r))
            .map(|s| {
                let own = s.private_address().into_iter();
                (s.name.to_string(), own.chain(entry).collect())
            })
            .collect();
    db_ca::ensure(&inv.local_path(&dir.0), &members).map_err(|e| {
        inv.error_at(
            "tls_ca",
            format!("the database servers' certificate authority: {e}: name a folder on this machine that foobar may write"),
        )
    })
}

/// The secrets of `app.env`, read and checked.
fn app_env_secrets(inv: &Loaded) -> Result<BTreeMap<String, String>, InputError> {
    let mut out = BTreeMap::new();
    for (name, value) in &inv.inventory.app.env {
        let EnvValue::Secret(source) = value else {
            continue;
        };
        let key = format!("app.env.{name}");
        let secret = read_secret(inv, &key, source)?;
        if secret.is_empty() || check_env_text(&secret).is_err() {
            // Never echo the value.
            return Err(inv.error_at(
                &key,
                format!(
                    "the value from {source} is empty or not usable: one line without \" \\ $ or `"
                ),
            ));
        }
        out.insert(name.to_string(), secret);
    }
    Ok(out)
}

/// One password, from the environment or a file, checked.
fn read(inv: &Loaded, key: &str, source: &SecretRef) -> Result<String, InputError> {
    let value = read_secret(inv, key, source)?;
    check_password(inv, key, source, &value)?;
    Ok(value)
}

/// A TSIG key: base64 of at least 16 bytes, as BIND reads it.
fn read_key(inv: &Loaded, key: &str, source: &SecretRef) -> Result<String, InputError> {
    let value = read_secret(inv, key, source)?;
    let base64 = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    if value.len() < 24 || value.len() > 256 || value.len() % 4 != 0 || !base64 {
        // Never echo the value.
        return Err(inv.error_at(
            key,
            format!(
                "the key from {source} is not usable: give base64 of 16 or more random bytes (`openssl rand -base64 32`)"
            ),
        ));
    }
    Ok(value)
}

/// One secret, from the environment or a file; `key` names it in errors.
fn read_secret(inv: &Loaded, key: &str, source: &SecretRef) -> Result<String, InputError> {
    let value = match source {
        SecretRef::Env(name) => std::env::var(name).map_err(|_| {
            inv.error_at(
                key,
                format!("the environment variable {name} is not set: export it, or use file:PATH"),
            )
        })?,
        SecretRef::File(p) => {
            let path = inv.local_path(p);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| inv.error_at(key, format!("cannot read {}: {e}", path.display())))?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
    };
    Ok(value)
}

/// The password lands in a systemd EnvironmentFile and in SQL: a plain
/// character set keeps both free of quoting mistakes.
fn check_password(
    inv: &Loaded,
    key: &str,
    source: &SecretRef,
    value: &str,
) -> Result<(), InputError> {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.,:+=@%^!~*".contains(c));
    if value.len() < 12 || value.len() > 128 || !plain {
        return Err(inv.error_at(
            key,
            format!(
                "the password from {source} is not usable: use 12 to 128 characters of letters, digits and -_.,:+=@%^!~*"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_every_occurrence() {
        let s = Secrets {
            mysql_password: "s3cret-Value-42".into(),
            replication_password: Some("Repl-Value-77-x".into()),
            transfer_key: Some("dGhpcyBpcyBhIFRTSUcga2V5IQ==".into()),
            app_env: BTreeMap::new(),
            db_tls: BTreeMap::new(),
        };
        assert_eq!(
            s.redact("a=s3cret-Value-42 b=s3cret-Value-42 c=Repl-Value-77-x d=dGhpcyBpcyBhIFRTSUcga2V5IQ=="),
            "a=******** b=******** c=******** d=********"
        );
    }

    #[test]
    fn redact_hides_password_hashes_and_nested_secrets_whole() {
        let s = Secrets {
            mysql_password: "password".into(),
            replication_password: None,
            transfer_key: None,
            app_env: BTreeMap::from([("API".into(), "xx-password-yy".into())]),
            db_tls: BTreeMap::new(),
        };
        // SELECT PASSWORD('password') in MariaDB.
        assert_eq!(
            s.redact("auth *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19 key xx-password-yy"),
            "auth ******** key ********"
        );
    }

    #[test]
    fn a_members_key_is_hidden_whole_and_line_by_line_and_its_old_one_too() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
        let s = Secrets {
            db_tls: BTreeMap::from([(
                "db1".into(),
                MemberTls {
                    ca: "CA".into(),
                    cert: "CERT".into(),
                    key: key.into(),
                },
            )]),
            ..Secrets::masked()
        };
        assert!(!s.redact(key).contains("MIGHAgEA"));
        assert!(!s
            .redact("line: MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg")
            .contains("MIGH"));
        let old = "-----BEGIN PRIVATE KEY-----\nOLDKEYOLDKEYOLDKEYOLDKEYOLDKEY\n-----END PRIVATE KEY-----\n";
        let (old, new) = s.redact_pair(old, key);
        assert!(
            !old.contains("OLDKEY") && !new.contains("MIGH"),
            "{old}{new}"
        );
    }

    #[test]
    fn a_rotated_secret_shows_neither_its_old_nor_its_new_value_in_a_diff() {
        let s = Secrets {
            mysql_password: "New-Password-2".into(),
            replication_password: None,
            transfer_key: Some("a2V5IG9uIGl0cyBvd24gbGluZQ==".into()),
            app_env: BTreeMap::new(),
            db_tls: BTreeMap::new(),
        };
        let (old, new) = s.redact_pair(
            "A=1\nDB_PASSWORD=\"Old-Password-1\"\nB=2\n",
            "A=1\nDB_PASSWORD=\"New-Password-2\"\nB=3\n",
        );
        assert_eq!(old, "A=1\nDB_PASSWORD=********\nB=2\n");
        assert_eq!(new, "A=1\nDB_PASSWORD=******** (new value)\nB=3\n");
        // An old value without quotes is masked all the same.
        let (old, _) = s.redact_pair("DB_PASSWORD=stale\n", "DB_PASSWORD=\"New-Password-2\"\n");
        assert_eq!(old, "DB_PASSWORD=********\n");
        // A file that is a secret alone is masked whole, old and new.
        let (old, new) = s.redact_pair("b2xkIGtleQ==\n", "a2V5IG9uIGl0cyBvd24gbGluZQ==\n");
        assert_eq!(
            (old.as_str(), new.as_str()),
            ("********\n", "******** (new value)\n")
        );
        // Unchanged, a secret's line is the same on both sides.
        let (old, new) = s.redact_pair(
            "DB_PASSWORD=\"New-Password-2\"\n",
            "DB_PASSWORD=\"New-Password-2\"\n",
        );
        assert_eq!(old, new);
    }

    #[test]
    fn weak_or_odd_passwords_are_refused_without_echo() {
        let src = SecretRef::Env("P".into());
        let inv = crate::inventory::load(std::path::Path::new("inventory/lab.yml")).unwrap();
        for bad in ["short", "has space in it ok", "quote'inside-long"] {
            let e = check_password(&inv, "mysql.password", &src, bad).unwrap_err();
            assert!(!e.to_string().contains(bad), "{e}");
            assert!(e.line > 0, "points at mysql.password: {e}");
        }
        assert!(check_password(&inv, "mysql.password", &src, "Abcdefgh1234").is_ok());
    }
}
