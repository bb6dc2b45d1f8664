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
/// The SSH ports found live when the ruleset was applied; the ruleset
/// includes it, at boot too.
const SSH_PORTS: &str = "/etc/foobar/firewall-ssh.nft";
/// Declares foobar's table and deletes it: what a saved table is loaded
/// after, and alone the way back to no table of foobar's.
const FORGET: &str = "table inet foobar\\ndelete table inet foobar\\n";
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
mkdir -p "$w" "$(dirname {SSH_PORTS})"
cat > "$w/new.nft.tmp"
{verify}# SSH stays open on every port sshd listens on, the one this connection
# came in on among them (an ssh_config may name a port the inventory does
# not).
ports=$(ss -Hltnp | awk '/"sshd"/ {{ n = split($4, a, ":"); print a[n] }}' | sort -un | paste -sd, -)
printf 'add element inet foobar ssh {{ %s }}\n' "${{ports:-22}}" > {SSH_PORTS}.tmp
mv -f {SSH_PORTS}.tmp {SSH_PORTS}
if ! nft -c -f "$w/new.nft.tmp" >&2; then
  rm -f "$w/new.nft.tmp"
  echo "nft refused the new ruleset; nothing changed" >&2
  exit {VALIDATION_FAILED}
fi
mv -f "$w/new.nft.tmp" "$w/new.nft"
# What runs now comes back unless a fresh connection confirms the new one
# (kept from the first unconfirmed change: that is the one known to work).
# Only foobar's own table: the others are never touched. A saved table
# that nft cannot load back is no way back: then the way back is no table
# of foobar's at all, SSH open.
if [ ! -e "$w/pending" ]; then
  {{ printf '{FORGET}'; nft list table inet foobar 2>/dev/null || true; }} > "$w/previous.nft"
  nft -c -f "$w/previous.nft" >&2 || printf '{FORGET}' > "$w/previous.nft"
fi
{timer}nft -f "$w/new.nft"
"#,
            verify = verify_upload("\"$w/new.nft.tmp\"", "the ruleset", &d.content),
            timer = revert_timer(
                WORK,
                REVERT_UNIT,
                d.confirm_within_secs,
                // Fails open: should the saved table not load, foobar's
                // table goes and SSH with everything else is open.
                &format!(
                    "{{ nft -f {WORK}/previous.nft || nft delete table inet foobar; }} && rm -f {WORK}/new.nft"
                )
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
