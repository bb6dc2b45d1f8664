//! `wheels`: the Python app's wheels on the server, in a store that keeps
//! each file under its SHA-256 (`<dest>/<sha256>/<file>.whl`) across
//! releases. Only the wheels the server lacks are sent; the release step
//! installs from the store with `--no-index`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::parts::verify_upload;
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::code_base::CodeBase;
use crate::error::InputError;
use crate::shell::quote;
use crate::wheels::{self, Wheel};

pub struct Wheels;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The code base; its `requirements.txt`, when there is one, says
    /// what to fetch.
    pub src: String,
}

/// Where the server keeps wheels, for every release.
pub const STORE: &str = "/var/lib/foobar/wheels";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub wheels: Vec<Wheel>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// The SHA-256 of every wheel in the store.
    #[serde(default)]
    pub present: BTreeSet<String>,
}

/// The wheels to send.
pub type Missing = Vec<Wheel>;

/// The wheels a code base needs: none without `requirements.txt`.
pub fn for_code_base(src: &std::path::Path, code: &CodeBase) -> Result<Vec<Wheel>, InputError> {
    match code.file("requirements.txt") {
        Some(text) => wheels::resolve(&src.join("requirements.txt"), text),
        None => Ok(Vec::new()),
    }
}

impl Kind for Wheels {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Missing;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let (src, code) = cx.code_base("src", &args.src)?;
        Ok(Desired {
            wheels: for_code_base(&src, &code)?,
        })
    }

    fn label(d: &Desired) -> String {
        format!("wheels {STORE} ({} files)", d.wheels.len())
    }

    fn fact_script(_: &Desired) -> String {
        format!(
            "for w in {STORE}/*/; do [ -d \"$w\" ] && printf 'W\\t%s\\n' \"$(basename \"$w\")\"; done; true\n"
        )
    }

    fn parse_fact(output: &str) -> Fact {
        Fact {
            present: output
                .lines()
                .filter_map(|l| l.strip_prefix("W\t"))
                .map(str::to_string)
                .collect(),
        }
    }

    fn plan(d: &Desired, fact: &Fact, _: &PlanCx) -> Option<Missing> {
        let missing: Vec<Wheel> = d
            .wheels
            .iter()
            .filter(|w| !fact.present.contains(&w.sha256))
            .cloned()
            .collect();
        (!missing.is_empty()).then_some(missing)
    }

    fn describe(missing: &Missing) -> String {
        format!("upload {} wheels", missing.len())
    }

    fn script(_: &Desired, missing: &Missing, _: Option<&str>) -> Script {
        let mut builder = tar::Builder::new(Vec::new());
        let mut unreadable = Vec::new();
        for w in missing {
            match std::fs::read(&w.path) {
                Ok(data) => {
                    let mut header = tar::Header::new_gnu();
                    header.set_size(data.len() as u64);
                    header.set_mode(0o644);
                    header.set_entry_type(tar::EntryType::Regular);
                    let name = format!("{}/{}", w.sha256, w.file);
                    if builder
                        .append_data(&mut header, name, data.as_slice())
                        .is_err()
                    {
                        unreadable.push(w.file.clone());
                    }
                }
                Err(_) => unreadable.push(w.file.clone()),
            }
        }
        if !unreadable.is_empty() {
            return Script::new(format!(
                "echo {} >&2\nexit 1\n",
                quote(&format!(
                    "the local wheel cache lost {}: run again to fetch them",
                    unreadable.join(", ")
                ))
            ));
        }
        let archive = builder.into_inner().unwrap_or_default();
        let checks: String = missing
            .iter()
            .map(|w| {
                format!(
                    "check {} {}\n",
                    w.sha256,
                    quote(&format!("{}/{}", w.sha256, w.file))
                )
            })
            .collect();
        Script::new(format!(
            r#"store={STORE}
mkdir -p "$store"
rm -rf "$store"/.incoming.*
tmp=$(mktemp -d "$store/.incoming.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$tmp/.archive"
{verify}tar -x -C "$tmp" --no-same-owner -f "$tmp/.archive"
# Each wheel goes in under its own hash, whole or not at all.
check() {{
  [ "$(sha256sum < "$tmp/$2" | cut -d' ' -f1)" = "$1" ] || {{ echo "wheel $2 arrived damaged" >&2; exit 1; }}
  [ -d "$store/$1" ] || {{ chmod 755 "$tmp/$1"; mv "$tmp/$1" "$store/$1"; }}
}}
{checks}"#,
            verify = verify_upload("\"$tmp/.archive\"", "the wheels", &archive),
        ))
        .with_stdin(archive)
    }

    fn converged(_: &Desired, missing: &Missing, before: &Fact) -> Fact {
        let mut present = before.present.clone();
        present.extend(missing.iter().map(|w| w.sha256.clone()));
        Fact { present }
    }
}
