//! `sshd`: foobar's sshd drop-in, applied so that it can never lock foobar
//! out: checked with `sshd -t` (the previous file back if it fails), made
//! live by a reload with a timer that puts the previous file back, and
//! confirmed only over a fresh SSH connection. A boot-time guard puts the
//! previous file back too, should the server restart before confirming.

use serde::{Deserialize, Serialize};

use super::parts::{confirm_script, revert_timer, verify_upload, GuardedFact, GuardedFile};
use super::{Kind, PlanCx, RenderedFile, ResolveCx, Script, VALIDATION_FAILED};
use crate::error::InputError;

pub struct Sshd;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The drop-in's template, under templates/.
    pub src: String,
}

pub const DROP_IN: &str = "/etc/ssh/sshd_config.d/60-foobar.conf";
const WORK: &str = "/var/lib/foobar/sshd";
const REVERT_UNIT: &str = "foobar-sshd-revert";
const GUARD: &str = "/etc/systemd/system/foobar-sshd-guard.service";

/// Make the new drop-in live, pending confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply;

/// Puts the previous drop-in back (or none, if there was none).
fn restore() -> String {
    format!("if [ -e {WORK}/previous.conf ]; then cp -p {WORK}/previous.conf {DROP_IN}; else rm -f {DROP_IN}; fi")
}

impl Kind for Sshd {
    type Args = Args;
    type Desired = GuardedFile;
    type Fact = GuardedFact;
    type Change = Apply;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<GuardedFile, InputError> {
        let src = cx.field("src", &args.src)?;
        Ok(GuardedFile {
            content: cx.template(&src)?.into_bytes(),
            confirm_within_secs: cx.inventory.inventory.ssh.confirm_within_secs.0,
        })
    }

    fn label(_: &GuardedFile) -> String {
        format!("sshd {DROP_IN}")
    }

    fn fact_script(_: &GuardedFile) -> String {
        GuardedFile::fact_script(DROP_IN, WORK)
    }

    fn parse_fact(output: &str) -> GuardedFact {
        GuardedFile::parse_fact(output)
    }

    fn plan(d: &GuardedFile, fact: &GuardedFact, _: &PlanCx) -> Option<Apply> {
        d.needs_change(fact).then_some(Apply)
    }

    fn describe(_: &Apply) -> String {
        "keys only, live until confirmed over a fresh SSH connection".into()
    }

    fn once_per_server() -> bool {
        true
    }

    fn script(d: &GuardedFile, _: &Apply, _: Option<&str>) -> Script {
        Script::new(format!(
            r#"w={WORK}
mkdir -p "$w" "$(dirname {DROP_IN})"
cat > "$w/new.conf"
{verify}# The last confirmed file is what comes back.
if [ ! -e "$w/pending" ]; then
  if [ -e {DROP_IN} ]; then cp -p {DROP_IN} "$w/previous.conf"; else rm -f "$w/previous.conf"; fi
fi
# A restart before the confirmation puts the previous file back at boot.
cat > {GUARD}.tmp <<'GUARD'
[Unit]
Description=foobar: an sshd change never confirmed goes back at boot
Before=ssh.service
ConditionPathExists={WORK}/pending

[Service]
Type=oneshot
ExecStart=/bin/sh -c '{restore} && rm -f {WORK}/pending'

[Install]
WantedBy=multi-user.target
GUARD
mv -f {GUARD}.tmp {GUARD}
systemctl daemon-reload
systemctl enable foobar-sshd-guard.service >/dev/null 2>&1
# Armed before the file is written: a new file never stands without the
# timer and the mark that take it back.
{timer}install -m 0644 "$w/new.conf" {DROP_IN}.tmp
mv -f {DROP_IN}.tmp {DROP_IN}
if ! sshd -t >&2; then
  {restore}
  systemctl stop {REVERT_UNIT}.timer >/dev/null 2>&1 || true
  rm -f "$w/pending"
  echo "sshd -t refused the new configuration; the previous one is back" >&2
  exit {VALIDATION_FAILED}
fi
systemctl reload ssh
# sshd executes itself again on a reload, its listening sockets closed for
# a moment: the confirming connection comes only once it listens again.
i=0
until ss -Hltnp | grep -q '"sshd"'; do
  i=$((i + 1)); [ $i -gt 100 ] && break
  sleep 0.05
done
"#,
            verify = verify_upload("\"$w/new.conf\"", "the sshd configuration", &d.content),
            restore = restore(),
            timer = revert_timer(
                WORK,
                REVERT_UNIT,
                d.confirm_within_secs,
                &format!("{{ {}; }} && systemctl reload ssh", restore())
            ),
        ))
        .with_stdin(d.content.clone())
    }

    fn confirm(_: &GuardedFile, _: &Apply) -> Option<String> {
        Some(confirm_script(
            WORK,
            REVERT_UNIT,
            "rm -f \"$w/new.conf\" \"$w/previous.conf\"\n",
        ))
    }

    fn converged(d: &GuardedFile, _: &Apply, _: &GuardedFact) -> GuardedFact {
        d.converged()
    }

    fn file(d: &GuardedFile) -> Option<RenderedFile<'_>> {
        Some(RenderedFile {
            path: DROP_IN,
            content: &d.content,
            mode: 0o644,
            soa_serial: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revert_is_armed_before_the_new_file_is_written() {
        let d = GuardedFile {
            content: b"PasswordAuthentication no\n".to_vec(),
            confirm_within_secs: 30,
        };
        let script = Sshd::script(&d, &Apply, None).text;
        let at = |what: &str| {
            script
                .find(what)
                .unwrap_or_else(|| panic!("{what} in {script}"))
        };
        let written = at(&format!("mv -f {DROP_IN}.tmp {DROP_IN}"));
        assert!(at("systemd-run") < written, "{script}");
        assert!(at(&format!("touch {WORK}/pending")) < written, "{script}");
        assert!(at("systemctl enable foobar-sshd-guard") < written, "{script}");
    }
}
