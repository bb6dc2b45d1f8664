//! `certificate`: a certificate and key for nginx exist. Where foobar
//! obtains the real one through ACME (after nginx serves the challenge),
//! a server that has none yet gets a self-signed placeholder first, made
//! on the server (its key never leaves it), so that nginx's TLS config is
//! valid from the first run. The ACME phase replaces it.

use serde::{Deserialize, Serialize};

use super::parts::{parse_path_fact, path_fact_script, PathFact};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Certificate;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub path: String,
    pub key: String,
    /// The name the placeholder carries.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub path: String,
    pub key: String,
    pub name: String,
}

/// What a placeholder's subject says: the ACME phase replaces it.
pub const PLACEHOLDER: &str = "foobar placeholder";

/// Make the placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder;

impl Kind for Certificate {
    type Args = Args;
    type Desired = Desired;
    type Fact = Option<PathFact>;
    type Change = Placeholder;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let name = cx.field("name", &args.name)?;
        crate::inventory::DomainName::parse(&name)
            .map_err(|m| cx.error(format!("name: {m}")))?;
        Ok(Desired {
            path: cx.server_path("path", &args.path)?,
            key: cx.server_path("key", &args.key)?,
            name,
        })
    }

    fn label(d: &Desired) -> String {
        format!("certificate {}", d.path)
    }

    fn fact_script(d: &Desired) -> String {
        path_fact_script(&d.path)
    }

    fn parse_fact(output: &str) -> Option<PathFact> {
        parse_path_fact(output)
    }

    fn plan(_: &Desired, fact: &Option<PathFact>, _: &PlanCx) -> Option<Placeholder> {
        fact.is_none().then_some(Placeholder)
    }

    fn describe(_: &Placeholder) -> String {
        "self-signed placeholder until the CA's certificate comes".into()
    }

    fn script(d: &Desired, _: &Placeholder, _: Option<&str>) -> Script {
        Script::new(format!(
            r#"cert={c}
key={k}
mkdir -p "$(dirname "$cert")" "$(dirname "$key")"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj {subject} -addext {san} -keyout "$key.tmp" -out "$cert.tmp" 2>/dev/null
chmod 600 "$key.tmp"
chmod 644 "$cert.tmp"
mv -f "$key.tmp" "$key"
mv -f "$cert.tmp" "$cert"
"#,
            c = quote(&d.path),
            k = quote(&d.key),
            subject = quote(&format!("/CN={PLACEHOLDER}")),
            san = quote(&format!("subjectAltName=DNS:{}", d.name)),
        ))
    }

    fn converged(_: &Desired, _: &Placeholder, _: &Option<PathFact>) -> Option<PathFact> {
        Some(PathFact {
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            is_dir: false,
            sha256: None,
        })
    }
}
