//! `firewall`: the server's nftables ruleset, applied the way
//! `iptables-apply` does: checked with `nft -c`, made live with the
//! previous ruleset saved and a timer that brings it back; the engine then
//! opens a fresh SSH connection and, only through it, confirms the new
//! ruleset (stops the timer, installs `/etc/nftables.conf` for boot). A
//! ruleset that cuts SSH is never confirmed and reverts by itself.

use serde::{Deserialize, Serialize};

use super::parts::{
    confirm_script, parse_path_fact, path_fact_script, revert_timer, sha256_hex, verify_upload,
    PathFact,
};
use super::{Kind, PlanCx, RenderedFile, ResolveCx, Script, VALIDATION_FAILED};
use crate::error::InputError;

pub struct Firewall;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The ruleset's template, under templates/.
    pub src: String,
}

/// Where the confirmed ruleset lives: Debian's nftables.service loads it
/// at boot.
pub const RULESET: &str = "/etc/nftables.conf";
const WORK: &str = "/var/lib/foobar/firewall";
const REVERT_UNIT: &str = "foobar-firewall-revert";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub content: Vec<u8>,
    pub confirm_within_secs: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    #[serde(default)]
    pub installed: Option<PathFact>,
    /// A ruleset is live but not confirmed (its revert timer runs).
    #[serde(default)]
    pub pending: bool,
}

/// Make the new ruleset live, pending confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply;

impl Kind for Firewall {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Apply;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let src = cx.field("src", &args.src)?;
        Ok(Desired {
            content: cx.template(&src)?.into_bytes(),
            confirm_within_secs: cx.inventory.inventory.firewall.confirm_within_secs.0,
        })
    }

    fn label(_: &Desired) -> String {
        format!("firewall {RULESET}")
    }

    fn fact_script(_: &Desired) -> String {
        format!(
            "{}[ -e {WORK}/pending ] && echo P\ntrue\n",
            path_fact_script(RULESET)
        )
    }

    fn parse_fact(output: &str) -> Fact {
        Fact {
            installed: parse_path_fact(output),
            pending: output.lines().any(|l| l == "P"),
        }
    }

    fn plan(d: &Desired, fact: &Fact, _: &PlanCx) -> Option<Apply> {
        let same = fact
            .installed
            .as_ref()
            .and_then(|f| f.sha256.as_deref())
            .is_some_and(|sha| sha == sha256_hex(&d.content));
        (!same || fact.pending).then_some(Apply)
    }

    fn describe(_: &Apply) -> String {
        "new ruleset, live until confirmed over a fresh SSH connection".into()
    }

    fn script(d: &Desired, _: &Apply, _: Option<&str>) -> Script {
        Script::new(format!(
            r#"w={WORK}
mkdir -p "$w"
cat > "$w/new.nft.tmp"
{verify}if ! nft -c -f "$w/new.nft.tmp" >&2; then
  rm -f "$w/new.nft.tmp"
  echo "nft refused the new ruleset; nothing changed" >&2
  exit {VALIDATION_FAILED}
fi
mv -f "$w/new.nft.tmp" "$w/new.nft"
# What runs now comes back unless a fresh connection confirms the new one
# (kept from the first unconfirmed change: that is the one known to work).
if [ ! -e "$w/pending" ]; then
  {{ echo 'flush ruleset'; nft list ruleset; }} > "$w/previous.nft"
fi
{timer}nft -f "$w/new.nft"
"#,
            verify = verify_upload("\"$w/new.nft.tmp\"", "the ruleset", &d.content),
            timer = revert_timer(
                WORK,
                REVERT_UNIT,
                d.confirm_within_secs,
                &format!("nft -f {WORK}/previous.nft && rm -f {WORK}/new.nft")
            ),
        ))
        .with_stdin(d.content.clone())
    }

    fn once_per_server() -> bool {
        true
    }

    fn confirm(_: &Desired, _: &Apply) -> Option<String> {
        Some(confirm_script(
            WORK,
            REVERT_UNIT,
            &format!(
                "install -m 0644 \"$w/new.nft\" {RULESET}.tmp\nmv -f {RULESET}.tmp {RULESET}\n\
                 rm -f \"$w/new.nft\" \"$w/previous.nft\"\nsystemctl enable nftables.service >/dev/null 2>&1\n"
            ),
        ))
    }

    fn converged(d: &Desired, _: &Apply, _: &Fact) -> Fact {
        Fact {
            installed: Some(PathFact {
                owner: "root".into(),
                group: "root".into(),
                mode: 0o644,
                is_dir: false,
                sha256: Some(sha256_hex(&d.content)),
            }),
            pending: false,
        }
    }

    fn file(d: &Desired) -> Option<RenderedFile<'_>> {
        Some(RenderedFile {
            path: RULESET,
            content: &d.content,
            mode: 0o644,
            soa_serial: false,
        })
    }
}
