//! `apt`: Debian packages present.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::parts::{installed_marker, package_fact_script};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Apt;

/// A run that was cut off may have left apt running (wait for it), dpkg
/// half-configured (finish it), or a package half-unpacked, which dpkg
/// leaves as it is, or refuses to configure what depends on it, until it
/// is installed again (apt unpacks it again, once; dpkg finishes the rest).
pub(super) const DPKG_READY: &str = "export DEBIAN_FRONTEND=noninteractive\n\
    waited=0\n\
    reinstalled=\n\
    while :; do\n\
    \x20 ok=1; err=$(dpkg --configure -a 2>&1) || ok=\n\
    \x20 if [ -z \"$ok\" ]; then case \"$err\" in *lock*)\n\
    \x20   waited=$((waited + 1)); [ $waited -lt 300 ] || { echo \"dpkg is locked by another process: $err\" >&2; exit 1; }\n\
    \x20   sleep 1; continue ;;\n\
    \x20 esac; fi\n\
    \x20 half=$(dpkg-query -W -f='${binary:Package} ${Status}\\n' 2>/dev/null | awk '/reinstreq|half-installed/ { print $1 }')\n\
    \x20 if [ -z \"$half\" ]; then [ -z \"$ok\" ] || break; echo \"$err\" >&2; exit 1; fi\n\
    \x20 if [ -n \"$reinstalled\" ]; then echo \"still half-installed after installing again: $half $err\" >&2; exit 1; fi\n\
    \x20 reinstalled=1\n\
    \x20 apt-get -q -o DPkg::Lock::Timeout=300 install --reinstall -y --no-install-recommends -o Dpkg::Options::=--force-confold $half >&2 || exit 1\n\
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

#[cfg(test)]
mod tests {
    use super::DPKG_READY;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// Runs DPKG_READY with dpkg, dpkg-query and apt-get played by shims:
    /// `dpkg --configure -a` fails with `configure_error` until apt-get
    /// ran (when `fixed_by_apt`); dpkg-query lists `half` as half-installed
    /// until then. Returns (exit code, what apt-get was asked, stderr).
    fn dpkg_ready(configure_error: &str, half: &str, fixed_by_apt: bool) -> (i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let shims = [
            (
                "dpkg",
                format!(
                    "#!/bin/sh\n[ \"$1 $2\" = '--configure -a' ] || exit 2\n\
                     if [ -z '{configure_error}' ] || {{ [ {fixed_by_apt} = true ] && [ -e {d}/apt-ran ]; }}; then exit 0; fi\n\
                     printf '%s\\n' '{configure_error}' >&2; exit 1\n"
                ),
            ),
            (
                "dpkg-query",
                format!(
                    "#!/bin/sh\necho 'less install ok installed'\n\
                     if [ -n '{half}' ] && ! [ -e {d}/apt-ran ]; then echo '{half} install reinstreq half-installed'; fi\n"
                ),
            ),
            ("apt-get", format!("#!/bin/sh\necho \"$*\" >> {d}/apt-log\ntouch {d}/apt-ran\n")),
        ];
        for (name, body) in shims {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{DPKG_READY}echo READY"))
            .env("PATH", format!("{d}:{}", std::env::var("PATH").unwrap()))
            .output()
            .unwrap();
        let apt = std::fs::read_to_string(dir.path().join("apt-log")).unwrap_or_default();
        assert_eq!(
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).contains("READY")
        );
        (
            out.status.code().unwrap_or(-1),
            apt,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    const HALF_UNPACKED: &str = "dpkg: error processing package libsigsegv2:amd64 (--configure): package is in a very bad inconsistent state; you should reinstall it before attempting configuration";

    #[test]
    fn a_package_cut_off_while_unpacking_is_installed_again_then_dpkg_finishes() {
        let (code, apt, err) = dpkg_ready(HALF_UNPACKED, "libsigsegv2:amd64", true);
        assert_eq!(code, 0, "{err}");
        assert!(
            apt.contains("install --reinstall") && apt.trim_end().ends_with(" libsigsegv2:amd64"),
            "only the half-unpacked package: {apt}"
        );
    }

    #[test]
    fn a_half_unpacked_package_dpkg_leaves_alone_is_installed_again() {
        // Nothing depends on it: `dpkg --configure -a` succeeds around it.
        let (code, apt, err) = dpkg_ready("", "mariadb-client", true);
        assert_eq!(code, 0, "{err}");
        assert!(apt.trim_end().ends_with("--reinstall -y --no-install-recommends -o Dpkg::Options::=--force-confold mariadb-client"), "{apt}");
        // Nothing half-unpacked: apt is not asked.
        let (code, apt, _) = dpkg_ready("", "", true);
        assert_eq!((code, apt.as_str()), (0, ""));
    }

    #[test]
    fn dpkg_that_still_fails_stops_the_step_with_its_words() {
        // Nothing half-unpacked: apt is not asked.
        let (code, apt, err) = dpkg_ready("dpkg: dependency problems", "", false);
        assert_eq!((code, apt.as_str()), (1, ""));
        assert!(err.contains("dependency problems"), "{err}");
        // Installed again once, still refused: no second try.
        let (code, apt, err) = dpkg_ready(HALF_UNPACKED, "libsigsegv2:amd64", false);
        assert_eq!(code, 1);
        assert_eq!(apt.lines().count(), 1, "{apt}");
        assert!(err.contains("very bad inconsistent state"), "{err}");
    }
}
