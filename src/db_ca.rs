//! The database servers' own certificate authority, kept on the machine
//! running foobar in the folder `mysql.tls_ca` names: made on first use,
//! then reused, so a server's certificate changes only when its names do.
//! Keys are 0600 in a 0700 folder; the CA's key never leaves it. Database
//! servers prove themselves to each other (a cluster's group traffic and
//! state transfers, replication) and to the app (client connections) with
//! certificates it signed.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// One member's files, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTls {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Cert { path: PathBuf, source: rcgen::Error },
}

/// The CA's own parameters: the same every time, so that a key read back
/// signs as the CA it made.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "foobar database CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2026, 1, 1);
    params.not_after = rcgen::date_time_ymd(2046, 1, 1);
    params
}

/// Every member's certificate and key, made where missing or where the
/// member's names changed; `members`: (name, the addresses it is reached
/// at).
pub fn ensure(
    dir: &Path,
    members: &[(String, Vec<IpAddr>)],
) -> Result<BTreeMap<String, MemberTls>, CaError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CaError::Io { path, source }
    };
    crate::local_file::private_folder(dir).map_err(io(dir))?;
    let ca_key_path = dir.join("ca.key");
    let ca_cert_path = dir.join("ca.pem");
    let cert_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CaError::Cert { path, source }
    };
    if !ca_key_path.exists() || !ca_cert_path.exists() {
        let key = KeyPair::generate().map_err(cert_err(&ca_key_path))?;
        let cert = ca_params()
            .self_signed(&key)
            .map_err(cert_err(&ca_cert_path))?;
        write(&ca_key_path, &key.serialize_pem(), 0o600)?;
        write(&ca_cert_path, &cert.pem(), 0o644)?;
    }
    let ca_key = read(&ca_key_path)?;
    let ca_key = KeyPair::from_pem(&ca_key).map_err(cert_err(&ca_key_path))?;
    let ca = read(&ca_cert_path)?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let mut out = BTreeMap::new();
    for (name, addresses) in members {
        let key_path = dir.join(format!("{name}.key"));
        let cert_path = dir.join(format!("{name}.pem"));
        let names_path = dir.join(format!("{name}.names"));
        let names = std::iter::once(name.clone())
            .chain(addresses.iter().map(IpAddr::to_string))
            .collect::<Vec<_>>()
            .join(" ");
        let current = fs::read_to_string(&names_path).unwrap_or_default();
        if current.trim() != names || !key_path.exists() || !cert_path.exists() {
            let key = KeyPair::generate().map_err(cert_err(&key_path))?;
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, name);
            params.subject_alt_names = std::iter::once(
                name.clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(cert_err(&cert_path)),
            )
            .chain(addresses.iter().map(|a| Ok(SanType::IpAddress(*a))))
            .collect::<Result<_, _>>()?;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            // Each member is a server to some peers and a client of others.
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            params.use_authority_key_identifier_extension = true;
            params.not_before = rcgen::date_time_ymd(2026, 1, 1);
            params.not_after = rcgen::date_time_ymd(2046, 1, 1);
            let cert = params
                .signed_by(&key, &issuer)
                .map_err(cert_err(&cert_path))?;
            write(&key_path, &key.serialize_pem(), 0o600)?;
            write(&cert_path, &cert.pem(), 0o644)?;
            write(&names_path, &format!("{names}\n"), 0o644)?;
        }
        out.insert(
            name.clone(),
            MemberTls {
                ca: ca.clone(),
                cert: read(&cert_path)?,
                key: read(&key_path)?,
            },
        );
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, content: &str, mode: u32) -> Result<(), CaError> {
    crate::local_file::write_atomic(path, content.as_bytes(), mode).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_kept_and_remade_only_when_a_members_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let a: IpAddr = "10.0.0.31".parse().unwrap();
        let members = vec![("db1".to_string(), vec![a])];
        let first = ensure(&ca, &members).unwrap();
        let again = ensure(&ca, &members).unwrap();
        assert_eq!(first, again, "kept");
        let mode = |p: &str| fs::metadata(ca.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ca.key"), 0o600);
        assert_eq!(mode("db1.key"), 0o600);
        assert_eq!(
            fs::metadata(&ca).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let moved = vec![("db1".to_string(), vec!["10.0.0.41".parse().unwrap()])];
        let remade = ensure(&ca, &moved).unwrap();
        assert_ne!(remade["db1"].cert, first["db1"].cert);
        assert_eq!(remade["db1"].ca, first["db1"].ca, "one CA");
        assert!(first["db1"].key.starts_with("-----BEGIN PRIVATE KEY-----"));
    }
}
