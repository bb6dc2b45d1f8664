//! `apt`: Debian packages present.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::parts::{installed_marker, package_fact_script};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Apt;

/// A run that was cut off may have left apt running (wait for it) or dpkg
/// half-configured (finish it) on the server.
pub(super) const DPKG_READY: &str = "export DEBIAN_FRONTEND=noninteractive\n\
    waited=0\n\
    until err=$(dpkg --configure -a 2>&1); do\n\
    \x20 case \"$err\" in *lock*) ;; *) echo \"$err\" >&2; exit 1 ;; esac\n\
    \x20 waited=$((waited + 1)); [ $waited -lt 300 ] || { echo \"dpkg is locked by another process: $err\" >&2; exit 1; }\n\
    \x20 sleep 1\n\
    done\n";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub packages: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// Those of the step's packages that are installed.
    pub installed: BTreeSet<String>,
}

impl Kind for Apt {
    type Args = Args;
    type Desired = Vec<String>;
    type Fact = Fact;
    /// The packages to install.
    type Change = Vec<String>;

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Vec<String>, InputError> {
        // An entry may render to several names (`{{ app.packages | join(' ') }}`).
        let mut names = Vec::new();
        for p in &args.packages {
            names.extend(
                cx.field("packages", p)?
                    .split_whitespace()
                    .map(str::to_string),
            );
        }
        names
            .into_iter()
            .map(|p| {
                let ok = p.len() >= 2
                    && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
                if ok {
                    Ok(p)
                } else {
                    Err(cx.error(format!("`{p}` is not a Debian package name")))
                }
            })
            .collect()
    }

    fn label(packages: &Vec<String>) -> String {
        format!("apt {}", packages.join(" "))
    }

    fn fact_script(packages: &Vec<String>) -> String {
        package_fact_script(packages)
    }

    fn parse_fact(output: &str) -> Fact {
        let installed = output
            .lines()
            .filter_map(|l| match l.split('\t').collect::<Vec<_>>()[..] {
                ["P", name, status] if status.starts_with("ii") => Some(name.to_string()),
                _ => None,
            })
            .collect();
        Fact { installed }
    }

    fn plan(packages: &Vec<String>, fact: &Fact, _: &PlanCx) -> Option<Vec<String>> {
        let missing: Vec<String> = packages
            .iter()
            .filter(|n| !fact.installed.contains(*n))
            .cloned()
            .collect();
        (!missing.is_empty()).then_some(missing)
    }

    fn describe(missing: &Vec<String>) -> String {
        format!("install {}", missing.join(" "))
    }

    fn script(_: &Vec<String>, missing: &Vec<String>, _: Option<&str>) -> Script {
        let names: Vec<String> = missing.iter().map(|n| quote(n)).collect();
        Script::new(format!(
            "{DPKG_READY}\
             apt_opts='-q -o DPkg::Lock::Timeout=300'\n\
             if [ -z \"$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -60)\" ]; then apt-get $apt_opts update >&2; fi\n\
             mkdir -p /var/lib/foobar/installed\n\
             touch {}\n\
             apt-get $apt_opts install -y --no-install-recommends -o Dpkg::Options::=--force-confold {} >&2\n",
            missing
                .iter()
                .map(|p| quote(&installed_marker(p)))
                .collect::<Vec<_>>()
                .join(" "),
            names.join(" ")
        ))
    }

    fn converged(packages: &Vec<String>, _: &Vec<String>, _: &Fact) -> Fact {
        Fact {
            installed: packages.iter().cloned().collect(),
        }
    }

    fn refreshes_facts(_: &Vec<String>) -> bool {
        true
    }
}
