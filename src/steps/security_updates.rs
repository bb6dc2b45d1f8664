//! `security_updates`: the updates the server's security suite has, applied.
//! A stamp records the last check: a no-op run only compares it with the
//! package lists (new ones from apt's daily timer mean a new check) and its
//! age (a day: the lists are fetched again). Between runs,
//! unattended-upgrades applies the same suite (its drop-in is a template).
//! An update that cannot be applied (a held package) fails the step, named.

use serde::{Deserialize, Serialize};

use super::apt::DPKG_READY;
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;

pub struct SecurityUpdates;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {}

const STAMP: &str = "/var/lib/foobar/security-updates.checked";
/// Package lists older than this are fetched again.
const LISTS_MAX_AGE_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// When the last check finished (Unix seconds).
    #[serde(default)]
    pub checked: Option<i64>,
    /// The newest package list's date.
    #[serde(default)]
    pub newest_list: Option<i64>,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Fetch the package lists first.
    pub refresh: bool,
    pub why: String,
}

/// Prints the packages whose update comes from a security suite.
const PENDING: &str = "apt-get -s -o Debug::NoLocking=1 dist-upgrade 2>/dev/null | sed -n 's/^Inst \\([^ ]*\\) .*-security[] ,].*/\\1/p' | tr '\\n' ' '";

impl Kind for SecurityUpdates {
    type Args = Args;
    type Desired = ();
    type Fact = Fact;
    type Change = Check;

    fn resolve(_: &Args, _: &ResolveCx) -> Result<(), InputError> {
        Ok(())
    }

    fn label(_: &()) -> String {
        "security_updates apt".into()
    }

    fn fact_script(_: &()) -> String {
        format!(
            "[ -f {STAMP} ] && printf 'S\\t%s\\n' \"$(stat -c %Y {STAMP})\"\n\
             l=$(stat -c %Y /var/lib/apt/lists/*Release 2>/dev/null | sort -n | tail -n 1)\n\
             [ -n \"$l\" ] && printf 'L\\t%s\\n' \"$l\"\n\
             printf 'N\\t%s\\n' \"$(date +%s)\"\n"
        )
    }

    fn parse_fact(output: &str) -> Fact {
        let mut fact = Fact::default();
        for line in output.lines() {
            let Some((tag, value)) = line.split_once('\t') else {
                continue;
            };
            let value = value.trim().parse::<i64>().ok();
            match tag {
                "S" => fact.checked = value,
                "L" => fact.newest_list = value,
                "N" => fact.now = value.unwrap_or_default(),
                _ => {}
            }
        }
        fact
    }

    fn plan(_: &(), f: &Fact, _: &PlanCx) -> Option<Check> {
        let Some(checked) = f.checked else {
            return Some(Check {
                refresh: true,
                why: "never checked".into(),
            });
        };
        let age = f.now - checked;
        if age > LISTS_MAX_AGE_SECS {
            return Some(Check {
                refresh: true,
                why: format!("last checked {} h ago", age / 3600),
            });
        }
        f.newest_list.filter(|l| *l > checked).map(|_| Check {
            refresh: false,
            why: "new package lists".into(),
        })
    }

    fn describe(c: &Check) -> String {
        format!("checked and applied ({})", c.why)
    }

    fn script(_: &(), c: &Check, _: Option<&str>) -> Script {
        let refresh = if c.refresh {
            "apt-get $opts update >&2\n"
        } else {
            ""
        };
        Script::new(format!(
            r#"{DPKG_READY}opts="-q -y --no-install-recommends -o Dpkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
{refresh}pending=$({PENDING})
if [ -n "$pending" ]; then
  echo "security updates: $pending" >&2
  # Split on purpose: one word a package.
  apt-get $opts install --only-upgrade $pending >&2
fi
left=$({PENDING})
if [ -n "$left" ]; then
  echo "security updates that could not be applied: $left(apt-get dist-upgrade shows why)" >&2
  exit 1
fi
mkdir -p "$(dirname {STAMP})"
touch {STAMP}
"#
        ))
    }

    fn converged(_: &(), _: &Check, before: &Fact) -> Fact {
        Fact {
            checked: Some(before.now),
            ..before.clone()
        }
    }
}
