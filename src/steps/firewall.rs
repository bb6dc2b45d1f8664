//! `firewall`: the server's nftables ruleset, applied the way
//! `iptables-apply` does: checked with `nft -c`, made live with the
//! previous ruleset saved and a timer that brings it back; the engine then
//! opens a fresh SSH connection and, only through it, confirms the new
//! ruleset (stops the timer, installs `/etc/nftables.conf` for boot). A
//! ruleset that cuts SSH is never confirmed and reverts by itself.

use serde::{Deserialize, Serialize};

use super::parts::{confirm_script, revert_timer, verify_upload, GuardedFact, GuardedFile};
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

/// Make the new ruleset live, pending confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply;

impl Kind for Firewall {
    type Args = Args;
    type Desired = GuardedFile;
    type Fact = GuardedFact;
    type Change = Apply;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<GuardedFile, InputError> {
        let src = cx.field("src", &args.src)?;
        Ok(GuardedFile {
            content: cx.template(&src)?.into_bytes(),
            confirm_within_secs: cx.inventory.inventory.firewall.confirm_within_secs.0,
        })
    }

    fn label(_: &GuardedFile) -> String {
        format!("firewall {RULESET}")
    }

    fn fact_script(_: &GuardedFile) -> String {
        GuardedFile::fact_script(RULESET, WORK)
    }

    fn parse_fact(output: &str) -> GuardedFact {
        GuardedFile::parse_fact(output)
    }

    fn plan(d: &GuardedFile, fact: &GuardedFact, _: &PlanCx) -> Option<Apply> {
        d.needs_change(fact).then_some(Apply)
    }

    fn describe(_: &Apply) -> String {
        "new ruleset, live until confirmed over a fresh SSH connection".into()
    }

    fn script(d: &GuardedFile, _: &Apply, _: Option<&str>) -> Script {
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

    fn confirm(_: &GuardedFile, _: &Apply) -> Option<String> {
        Some(confirm_script(
            WORK,
            REVERT_UNIT,
            &format!(
                "install -m 0644 \"$w/new.nft\" {RULESET}.tmp\nmv -f {RULESET}.tmp {RULESET}\n\
                 rm -f \"$w/new.nft\" \"$w/previous.nft\"\nsystemctl enable nftables.service >/dev/null 2>&1\n"
            ),
        ))
    }

    fn converged(d: &GuardedFile, _: &Apply, _: &GuardedFact) -> GuardedFact {
        d.converged()
    }

    fn file(d: &GuardedFile) -> Option<RenderedFile<'_>> {
        Some(RenderedFile {
            path: RULESET,
            content: &d.content,
            mode: 0o644,
            soa_serial: false,
        })
    }
}
