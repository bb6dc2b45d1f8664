//! Certificates from an ACME CA (Let's Encrypt, the lab's Pebble), by
//! HTTP-01 through nginx. One certificate for the site serves every web
//! server: the CA may reach any of them (behind load balancers, whichever
//! answers), so each challenge is put on all of them before the CA is
//! told to look. The key is made here and travels only over SSH (0600).
//! A certificate is renewed when a web server has none (or the
//! placeholder), the wrong names, or fewer days left than the inventory
//! says; a renewal that fails leaves the old certificate serving.

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use jiff::Timestamp;
use serde::Serialize;

use super::{Engine, HostFailure};
use crate::progress::{Event, StepStatus};
use crate::shell::quote;
use crate::steps::certificate::PLACEHOLDER;
use crate::transport::{Connector, SshTarget, Transport};

/// Where nginx serves the challenges from (templates/nginx/site.conf.j2).
pub const CHALLENGE_DIR: &str = "/var/lib/foobar/acme-challenge";

/// What the ACME phase needs, from the inventory.
pub struct AcmeJob {
    pub directory: String,
    pub email: Option<String>,
    /// A PEM file whose first certificate signs the directory's HTTPS
    /// (the lab's CA); None: the system roots.
    pub ca: Option<std::path::PathBuf>,
    /// The site's names: www first, then the apex.
    pub names: Vec<String>,
    pub certificate: String,
    pub key: String,
    pub renew_days: i64,
    /// Where ACME accounts are kept between runs (one per CA and email:
    /// CAs limit how many accounts an address makes); None: a new one
    /// each time.
    pub accounts: Option<std::path::PathBuf>,
}

/// A web server's certificate, as read from it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertState {
    pub host: String,
    /// RFC 3339; None when there is no certificate.
    pub not_after: Option<String>,
    pub days_left: Option<i64>,
    pub issuer: String,
    pub names: Vec<String>,
    /// The certificate file's chain, PEM, for the trust check.
    #[serde(skip)]
    pub chain_pem: String,
}

/// The phase's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CertOutcome {
    /// Why a new certificate was asked for (None: none was needed).
    pub renewal: Option<String>,
    pub ok: bool,
    pub detail: String,
    pub servers: Vec<CertState>,
}

/// Prints `C\t<notAfter>\t<issuer>\t<names>` for a certificate file, then
/// its chain's PEM lines, each behind `P\t`.
pub fn state_script(certificate: &str) -> String {
    format!(
        "c={}\n[ -f \"$c\" ] && printf 'C\\t%s\\t%s\\t%s\\n' \"$(openssl x509 -in \"$c\" -noout -enddate -dateopt iso_8601 | cut -d= -f2)\" \"$(openssl x509 -in \"$c\" -noout -issuer -nameopt RFC2253 | cut -d= -f2-)\" \"$(openssl x509 -in \"$c\" -noout -ext subjectAltName 2>/dev/null | tr ',' '\\n' | sed -n 's/^ *DNS://p' | tr '\\n' ' ')\" && sed -n '/-BEGIN CERTIFICATE-/,/-END CERTIFICATE-/s/^/P\\t/p' \"$c\"\ntrue\n",
        quote(certificate)
    )
}

/// Reads `state_script`'s line; `now` for the days left.
pub fn parse_state(host: &str, output: &str, now: Timestamp) -> CertState {
    let line = output.lines().find_map(|l| l.strip_prefix("C\t"));
    let mut state = CertState {
        host: host.to_string(),
        not_after: None,
        days_left: None,
        issuer: String::new(),
        names: Vec::new(),
        chain_pem: output
            .lines()
            .filter_map(|l| l.strip_prefix("P\t"))
            .flat_map(|l| [l, "\n"])
            .collect(),
    };
    let Some(line) = line else {
        return state;
    };
    let mut f = line.split('\t');
    let not_after = f
        .next()
        .and_then(|d| d.trim().replace(' ', "T").parse::<Timestamp>().ok());
    state.issuer = f.next().unwrap_or_default().to_string();
    state.names = f
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if let Some(t) = not_after {
        state.not_after = Some(t.to_string());
        state.days_left = Some((t.as_second() - now.as_second()).div_euclid(86_400));
    }
    state
}

/// Whom foobar trusts for the CA in use: the system's roots plus the job's
/// CA file (the lab's, a company's), never that file alone.
fn verifier(job: &AcmeJob) -> Result<rustls_platform_verifier::Verifier, String> {
    let extra = match &job.ca {
        Some(path) => pem_certs(
            &std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )?,
        None => Vec::new(),
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
        .map_err(|e| e.to_string())
}

fn pem_certs(pem: &[u8]) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate chain: {e}"))
}

/// Whether a chain (PEM) is trusted for `name` by the CA in use: the
/// system's roots plus the job's CA file, as the checks trust them.
pub fn verify_chain(job: &AcmeJob, chain_pem: &str, name: &str) -> Result<(), String> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    let chain = pem_certs(chain_pem.as_bytes())?;
    let (leaf, intermediates) = chain.split_first().ok_or("no certificate")?;
    let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    verifier(job)?
        .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The HTTP client that talks to the CA, trusting what `verifier` trusts.
fn acme_http(job: &AcmeJob) -> Result<Box<dyn HttpClient>, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier(job)?))
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, BodyWrapper<bytes::Bytes>>(https);
    Ok(Box::new(client))
}

/// The file keeping the account for the job's CA and email.
fn account_file(job: &AcmeJob) -> Option<std::path::PathBuf> {
    let key = format!(
        "{}\0{}",
        job.directory,
        job.email.as_deref().unwrap_or_default()
    );
    let name = crate::steps::sha256_hex(key.as_bytes())[..16].to_string();
    Some(job.accounts.as_ref()?.join(format!("{name}.json")))
}

/// The account kept for the job's CA and email, if one is.
async fn kept_account(job: &AcmeJob) -> Option<Account> {
    let text = std::fs::read(account_file(job)?).ok()?;
    let credentials: AccountCredentials = serde_json::from_slice(&text).ok()?;
    Account::builder_with_http(acme_http(job).ok()?)
        .from_credentials(credentials)
        .await
        .ok()
}

/// A new account at the CA, kept (0600, in a 0700 folder) for later runs.
async fn new_account(job: &AcmeJob) -> Result<Account, String> {
    let contact: Vec<String> = job.email.iter().map(|e| format!("mailto:{e}")).collect();
    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = Account::builder_with_http(acme_http(job)?)
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            job.directory.clone(),
            None,
        )
        .await
        .map_err(|e| format!("account at {}: {e}", job.directory))?;
    if let Some(file) = account_file(job) {
        let text = serde_json::to_vec(&credentials).map_err(|e| e.to_string())?;
        let kept = file
            .parent()
            .map_or(Ok(()), crate::local_file::private_folder)
            .and_then(|()| crate::local_file::write_atomic(&file, &text, 0o600));
        kept.map_err(|e| format!("cannot keep the ACME account in {}: {e}", file.display()))?;
    }
    Ok(account)
}

/// Why the site needs a new certificate, if it does. `trust` checks a
/// chain for the site's name (see `verify_chain`): a certificate from
/// another CA (a staging one, the lab's previous one) is replaced too.
pub fn renewal_reason(
    states: &[CertState],
    job: &AcmeJob,
    trust: impl Fn(&str) -> Result<(), String>,
) -> Option<String> {
    for s in states {
        let Some(days) = s.days_left else {
            return Some(format!("{} has no certificate", s.host));
        };
        if s.issuer.contains(PLACEHOLDER) {
            return Some(format!("{} has the placeholder certificate", s.host));
        }
        let mut have = s.names.clone();
        have.sort();
        let mut want = job.names.clone();
        want.sort();
        if have != want {
            return Some(format!(
                "{}'s certificate names {}, the site is {}",
                s.host,
                s.names.join(", "),
                job.names.join(", ")
            ));
        }
        if days < job.renew_days {
            return Some(format!(
                "{}'s certificate has {days} days left (renewed under {})",
                s.host, job.renew_days
            ));
        }
        if let Err(e) = trust(&s.chain_pem) {
            return Some(format!(
                "{}'s certificate is not trusted by the CA in use: {e}",
                s.host
            ));
        }
    }
    None
}

/// Reads every web server's certificate and renews the site's when one
/// needs it; the web servers' connections are opened here.
pub async fn ensure<C: Connector>(
    engine: &Engine<'_, C>,
    targets: &[SshTarget],
    job: &AcmeJob,
) -> Result<CertOutcome, HostFailure> {
    let mut transports = Vec::new();
    for t in targets {
        transports.push(engine.connector.connect(t).await?);
    }
    let result = ensure_on(engine, &transports, job).await;
    for t in transports {
        t.close().await;
    }
    result
}

async fn read_states<T: Transport>(
    transports: &[T],
    job: &AcmeJob,
) -> Result<Vec<CertState>, HostFailure> {
    let script = state_script(&job.certificate);
    let outs =
        futures_util::future::join_all(transports.iter().map(|t| t.run(&script, None))).await;
    let now = Timestamp::now();
    let mut states = Vec::new();
    for (t, out) in transports.iter().zip(outs) {
        states.push(parse_state(t.host(), &out?.stdout_text(), now));
    }
    Ok(states)
}

async fn ensure_on<C: Connector>(
    engine: &Engine<'_, C>,
    transports: &[C::Transport],
    job: &AcmeJob,
) -> Result<CertOutcome, HostFailure> {
    let states = read_states(transports, job).await?;
    let trust = |pem: &str| verify_chain(job, pem, &job.names[0]);
    let Some(reason) = renewal_reason(&states, job, trust) else {
        return Ok(CertOutcome {
            renewal: None,
            ok: true,
            detail: String::new(),
            servers: states,
        });
    };
    let label = format!(
        "certificate for {} from {}",
        job.names.join(", "),
        job.directory
    );
    for t in transports {
        engine.out.report(Event::StepStarted {
            host: t.host().to_string(),
            step: label.clone(),
        });
    }
    let issued = obtain(transports, job).await;
    // Challenges are removed whatever happened.
    let clean = format!("rm -f {CHALLENGE_DIR}/*\n");
    for t in transports {
        let _ = t.run(&clean, None).await?;
    }
    let (ok, detail) = match issued {
        Ok((key, chain)) => match install(transports, job, &key, &chain).await? {
            None => (true, format!("new certificate ({reason})")),
            Some(e) => (false, e),
        },
        Err(e) => (
            false,
            format!("the CA did not issue a certificate ({reason}): {e}; the old certificate keeps serving"),
        ),
    };
    for t in transports {
        engine.out.report(Event::StepFinished {
            host: t.host().to_string(),
            step: label.clone(),
            status: if ok {
                StepStatus::Changed
            } else {
                StepStatus::Failed
            },
            detail: Some(detail.clone()),
        });
    }
    Ok(CertOutcome {
        renewal: Some(reason),
        ok,
        detail,
        servers: read_states(transports, job).await?,
    })
}

/// One order at the CA: every challenge on every web server first.
/// Returns (key PEM, certificate chain PEM).
async fn obtain<T: Transport>(transports: &[T], job: &AcmeJob) -> Result<(String, String), String> {
    let identifiers: Vec<Identifier> = job
        .names
        .iter()
        .map(|n| Identifier::Dns(n.clone()))
        .collect();
    // The kept account, unless the CA no longer knows it (a CA's test
    // instance forgets its accounts when it restarts).
    let kept = match kept_account(job).await {
        Some(account) => account.new_order(&NewOrder::new(&identifiers)).await.ok(),
        None => None,
    };
    let mut order = match kept {
        Some(order) => order,
        None => new_account(job)
            .await?
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {e}"))?,
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
        if authz.status == AuthorizationStatus::Valid {
            continue;
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or("the CA offers no HTTP-01 challenge")?;
        let token = challenge.token.clone();
        let proof = challenge.key_authorization().as_str().to_string();
        // Tokens are base64url; anything else never reaches a shell.
        if token.is_empty()
            || !token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "the CA sent an odd token `{}`",
                token.escape_debug()
            ));
        }
        let put = format!(
            "mkdir -p {CHALLENGE_DIR}\nprintf %s {} > {CHALLENGE_DIR}/{token}\nchmod 644 {CHALLENGE_DIR}/{token}\n",
            quote(&proof)
        );
        for t in transports {
            let out = t.run(&put, None).await.map_err(|e| e.to_string())?;
            if !out.success() {
                return Err(format!(
                    "cannot put the challenge on {}: {}",
                    t.host(),
                    out.stderr_text()
                ));
            }
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("challenge: {e}"))?;
    }
    let retry = RetryPolicy::new().timeout(Duration::from_secs(60));
    let status = order
        .poll_ready(&retry)
        .await
        .map_err(|e| format!("waiting for validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("the order is {status:?}: the CA could not reach the challenge at http://{}/.well-known/acme-challenge/", job.names[0]));
    }
    let key = order
        .finalize()
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    let chain = order
        .poll_certificate(&retry)
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    Ok((key, chain))
}

/// Puts the key (0600) and chain on every web server, each checked to
/// belong together, then reloads nginx gracefully. Returns a failure.
async fn install<T: Transport>(
    transports: &[T],
    job: &AcmeJob,
    key: &str,
    chain: &str,
) -> Result<Option<String>, HostFailure> {
    let mut stdin = Vec::new();
    stdin.extend_from_slice(chain.as_bytes());
    stdin.extend_from_slice(b"\n@@foobar-key@@\n");
    stdin.extend_from_slice(key.as_bytes());
    let script = format!(
        r#"set -e
cert={c}
key={k}
mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/in"
sed '/^@@foobar-key@@$/,$d' "$tmp/in" > "$tmp/cert"
sed '1,/^@@foobar-key@@$/d' "$tmp/in" > "$tmp/key"
# The certificate and the key must belong together before either goes live.
[ "$(openssl x509 -in "$tmp/cert" -noout -pubkey | sha256sum)" = "$(openssl pkey -in "$tmp/key" -pubout | sha256sum)" ] || {{ echo "the certificate and key do not match" >&2; exit 1; }}
cp -p "$cert" "$tmp/cert.old" 2>/dev/null || true
cp -p "$key" "$tmp/key.old" 2>/dev/null || true
chmod 600 "$tmp/key"
chmod 644 "$tmp/cert"
mv -f "$tmp/key" "$key.new" && mv -f "$key.new" "$key"
mv -f "$tmp/cert" "$cert.new" && mv -f "$cert.new" "$cert"
if ! nginx -t 2>/dev/null; then
  # The old pair comes back: the site keeps serving.
  [ -f "$tmp/cert.old" ] && mv -f "$tmp/cert.old" "$cert"
  [ -f "$tmp/key.old" ] && mv -f "$tmp/key.old" "$key"
  echo "nginx refused the new certificate; the old one is back" >&2
  exit 1
fi
systemctl reload nginx
"#,
        c = quote(&job.certificate),
        k = quote(&job.key),
    );
    for t in transports {
        let out = t.run(&script, Some(&stdin)).await?;
        if !out.success() {
            return Ok(Some(format!(
                "installing the new certificate on {} failed: {}",
                t.host(),
                out.stderr_text()
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> AcmeJob {
        AcmeJob {
            directory: "https://acme.test/dir".into(),
            email: None,
            ca: None,
            names: vec!["www.foobar.com".into(), "foobar.com".into()],
            certificate: "/etc/foobar/tls/www.foobar.com.crt".into(),
            key: "/etc/foobar/tls/www.foobar.com.key".into(),
            renew_days: 30,
            accounts: None,
        }
    }

    fn trusted(_: &str) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn a_certificate_is_read_with_its_days_left() {
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let s = parse_state(
            "web1",
            "C\t2027-02-24 12:00:00Z\tCN=Pebble Intermediate CA 1a2b3c\twww.foobar.com foobar.com \n",
            now,
        );
        assert_eq!(s.days_left, Some(90));
        assert_eq!(s.names, ["www.foobar.com", "foobar.com"]);
        assert!(renewal_reason(std::slice::from_ref(&s), &job(), trusted).is_none());
        let soon = parse_state(
            "web1",
            "C\t2026-12-10 12:00:00Z\tCN=x\twww.foobar.com foobar.com\n",
            now,
        );
        assert!(renewal_reason(&[s.clone(), soon], &job(), trusted)
            .unwrap()
            .contains("14 days left"));
        // From another CA: replaced, saying why.
        let reason = renewal_reason(&[s], &job(), |_| Err("UnknownIssuer".into())).unwrap();
        assert!(
            reason.contains("not trusted by the CA in use: UnknownIssuer"),
            "{reason}"
        );
    }

    #[test]
    fn the_chain_is_read_and_verified_against_the_ca_in_use() {
        let now = Timestamp::now();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["www.foobar.com".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = cert.pem();
        let output = format!(
            "C\t2099-01-01 00:00:00Z\tCN=x\twww.foobar.com\n{}",
            pem.lines().map(|l| format!("P\t{l}\n")).collect::<String>()
        );
        let state = parse_state("web1", &output, now);
        assert_eq!(state.chain_pem.trim(), pem.trim());
        // Self-signed: no root trusts it...
        assert!(verify_chain(&job(), &state.chain_pem, "www.foobar.com").is_err());
        // ...unless it is the CA in use, and then for its own name only.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &pem).unwrap();
        let lab = AcmeJob {
            ca: Some(ca),
            ..job()
        };
        assert_eq!(
            verify_chain(&lab, &state.chain_pem, "www.foobar.com"),
            Ok(())
        );
        assert!(verify_chain(&lab, &state.chain_pem, "www.other.com").is_err());
    }

    #[test]
    fn the_ca_file_is_trusted_beside_the_system_roots_not_instead() {
        let self_signed = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            rcgen::CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .pem()
        };
        let dir = tempfile::tempdir().unwrap();
        // The system's roots, as rustls-native-certs reads them.
        let system = self_signed("public.example");
        std::fs::write(dir.path().join("system.pem"), &system).unwrap();
        std::env::set_var("SSL_CERT_FILE", dir.path().join("system.pem"));
        let lab = self_signed("www.foobar.com");
        std::fs::write(dir.path().join("lab.pem"), &lab).unwrap();
        let job = AcmeJob {
            ca: Some(dir.path().join("lab.pem")),
            ..job()
        };
        assert_eq!(verify_chain(&job, &lab, "www.foobar.com"), Ok(()));
        assert_eq!(verify_chain(&job, &system, "public.example"), Ok(()));
        assert!(acme_http(&job).is_ok());
    }

    #[test]
    fn an_account_is_kept_per_ca_and_email() {
        let dir = tempfile::tempdir().unwrap();
        let at = |directory: &str, email: Option<&str>| {
            account_file(&AcmeJob {
                directory: directory.into(),
                email: email.map(str::to_string),
                accounts: Some(dir.path().to_path_buf()),
                ..job()
            })
            .unwrap()
        };
        let ca = "https://acme.example/dir";
        assert_eq!(at(ca, Some("a@x.com")), at(ca, Some("a@x.com")));
        assert_ne!(at(ca, Some("a@x.com")), at(ca, Some("b@x.com")));
        assert_ne!(
            at(ca, Some("a@x.com")),
            at("https://other.example/dir", Some("a@x.com"))
        );
        assert!(at(ca, None).starts_with(dir.path()));
        assert_eq!(account_file(&job()), None);
    }

    #[test]
    fn no_certificate_a_placeholder_or_other_names_renew() {
        let now = Timestamp::now();
        let none = parse_state("web1", "", now);
        assert!(renewal_reason(&[none], &job(), trusted)
            .unwrap()
            .contains("no certificate"));
        let placeholder = parse_state(
            "web1",
            &format!("C\t2099-01-01 00:00:00Z\tCN={PLACEHOLDER}\twww.foobar.com\n"),
            now,
        );
        assert!(renewal_reason(&[placeholder], &job(), trusted)
            .unwrap()
            .contains("placeholder"));
        let other = parse_state(
            "web1",
            "C\t2099-01-01 00:00:00Z\tCN=x\twww.other.com\n",
            now,
        );
        assert!(renewal_reason(&[other], &job(), trusted)
            .unwrap()
            .contains("www.other.com"));
    }
}
