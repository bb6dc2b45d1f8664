//! `security_updates`: the updates the server's security suite has, applied.
//! A stamp records the last check: a no-op run only compares it with the
//! package lists (new ones from apt's daily timer mean a new check) and its
//! age (a day: the lists are fetched again), with one process. Between runs,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// A check finished once (the stamp exists).
    #[serde(default)]
    pub checked: bool,
    /// ...over a day ago: the package lists are fetched again.
    #[serde(default)]
    pub stale: bool,
    /// apt fetched package lists newer than the last check.
    #[serde(default)]
    pub new_lists: bool,
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

    /// One `find`; the lists are compared by the shell's own `-nt`.
    fn fact_script(_: &()) -> String {
        format!(
            "if [ -f {STAMP} ]; then\n\
             \x20 echo S\n\
             \x20 find {STAMP} -mmin +1440 -printf 'O\\n'\n\
             \x20 for f in /var/lib/apt/lists/*Release; do [ \"$f\" -nt {STAMP} ] && {{ echo L; break; }}; done\n\
             fi\n\
             true\n"
        )
    }

    fn parse_fact(output: &str) -> Fact {
        let has = |tag: &str| output.lines().any(|l| l.trim() == tag);
        Fact {
            checked: has("S"),
            stale: has("O"),
            new_lists: has("L"),
        }
    }

    fn plan(_: &(), f: &Fact, _: &PlanCx) -> Option<Check> {
        let (refresh, why) = if !f.checked {
            (true, "never checked")
        } else if f.stale {
            (true, "last checked over a day ago")
        } else if f.new_lists {
            (false, "new package lists")
        } else {
            return None;
        };
        Some(Check {
            refresh,
            why: why.into(),
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

    fn converged(_: &(), _: &Check, _: &Fact) -> Fact {
        Fact {
            checked: true,
            stale: false,
            new_lists: false,
        }
    }
}
