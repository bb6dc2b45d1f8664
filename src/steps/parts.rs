//! Pieces several step kinds share: the script type, the fact of a path,
//! backups for handlers, pending handlers, verified uploads and hashes.

use serde::{Deserialize, Serialize};

pub use crate::digest::{mysql_native_hash, sha256_hex};

use crate::shell::quote;

/// Handlers notified by a change whose handler has not run yet are listed
/// here on the server, so a failed run does not lose them.
pub const PENDING_HANDLERS: &str = "/var/lib/foobar/pending-handlers";
/// Where previous versions of configs wait while the new one is checked;
/// outside include folders such as sites-enabled.
pub const BACKUP_DIR: &str = "/var/lib/foobar/backup";
/// A line of another server's facts of the same step (`Kind::peer_group`),
/// as the engine appends it: `@peer\t<server>\t<its line>`.
pub const PEER_LINE: &str = "@peer\t";
/// A server of the peer group whose facts could not be read:
/// `@unreachable\t<server>`.
pub const PEER_UNREACHABLE: &str = "@unreachable\t";
/// Exit code our scripts use when a validate command rejects a file.
pub const VALIDATION_FAILED: i32 = 65;

/// A script to run on the server as root, and what to feed its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub text: String,
    pub stdin: Option<Vec<u8>>,
}

impl Script {
    /// `set -e` and the body.
    pub fn new(body: String) -> Self {
        Self {
            text: format!("set -e\n{body}"),
            stdin: None,
        }
    }

    pub fn with_stdin(mut self, stdin: Vec<u8>) -> Self {
        self.stdin = Some(stdin);
        self
    }
}

/// Owner, group, mode and content hash of a path on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathFact {
    pub owner: String,
    pub group: String,
    /// Octal, e.g. `0644`.
    #[serde(with = "octal")]
    pub mode: u32,
    #[serde(default)]
    pub is_dir: bool,
    /// SHA-256 of a regular file's content.
    #[serde(default)]
    pub sha256: Option<String>,
}

mod octal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let text = String::deserialize(d)?;
        u32::from_str_radix(&text, 8).map_err(serde::de::Error::custom)
    }
}

/// Asks for the fact of a path: `F\t<owner> <group> <mode> <type>\t<sha256
/// or ->` in this step's section when it exists, nothing otherwise. The
/// paths of all steps are read at once by `FACTS_FLUSH` (one `stat`, one
/// `sha256sum`), not one process per file.
pub fn path_fact_script(path: &str) -> String {
    format!("pf {}\n", quote(path))
}

/// Asks for the state of a systemd unit: `V\t<unit file state>\t<active
/// state>`. All units are read at once by `FACTS_FLUSH`.
pub fn unit_fact_script(name: &str) -> String {
    format!("uf {}\n", quote(name))
}

/// Where foobar notes that it installed a package (before installing it,
/// so that an install cut off is noted too).
pub fn installed_marker(package: &str) -> String {
    format!("/var/lib/foobar/installed/{package}")
}

/// Asks for the state of Debian packages: `P\t<package>\t<status>` each.
/// All packages are read at once by `FACTS_FLUSH`.
pub fn package_fact_script(packages: &[String]) -> String {
    let names: Vec<String> = packages.iter().map(|p| quote(p)).collect();
    format!("pk {}\n", names.join(" "))
}

/// Runs `command` in the background, its output going to this step's
/// section once every fact is in (`FACTS_FLUSH`): for slow commands that
/// wait on a service (MariaDB), so that they overlap the rest.
pub fn deferred_fact_script(command: &str) -> String {
    format!("{{ {command}\n}} > \"$fd/d.$s\" &\n")
}

/// Runs `sql` through the mysql client, its rows tab-separated, then `Q`
/// (MariaDB answered); nothing when there is no client yet.
pub fn mysql_fact(sql: &str) -> String {
    format!(
        "command -v mysql >/dev/null && mysql -N -B -e {} && echo Q",
        quote(sql)
    )
}

/// Defines what the fact fragments call; `$s` is the current step index,
/// `$fd` a folder for what runs in the background.
/// Each list holds `<step> <name>` lines; the names alone go to one command.
pub const FACTS_PRELUDE: &str = "fd=$(mktemp -d /tmp/.foobar-facts.XXXXXX) || exit 1\n\
trap 'rm -rf \"$fd\"' EXIT\n\
pf_list=''\nuf_list=''\npk_list=''\npf_names=''\nuf_names=''\npk_names=''\n\
pf() { pf_list=\"$pf_list$s $1\n\"; pf_names=\"$pf_names $1\"; }\n\
uf() { uf_list=\"$uf_list$s $1\n\"; uf_names=\"$uf_names $1\"; }\n\
pk() { for p in \"$@\"; do pk_list=\"$pk_list$s $p\n\"; pk_names=\"$pk_names $p\"; done; }\n";

/// Reads every package, path and unit asked for, each kind by one command,
/// the commands side by side with the deferred fragments; then one awk
/// prints each fact under its step's section marker (server paths and unit
/// names were validated: no spaces, quotes or glob characters).
pub const FACTS_FLUSH: &str = r#": > "$fd/pk"; : > "$fd/st"; : > "$fd/sum"; : > "$fd/uf"
[ -n "$pk_names" ] && dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\n' $pk_names > "$fd/pk" &
[ -n "$pf_names" ] && stat --printf '%n\t%U %G %a %F\n' $pf_names > "$fd/st" &
[ -n "$pf_names" ] && sha256sum $pf_names > "$fd/sum" &
[ -n "$uf_names" ] && systemctl show -p UnitFileState -p ActiveState $uf_names > "$fd/uf" &
wait
printf '%s' "$pk_list" > "$fd/pkl"; printf '%s' "$pf_list" > "$fd/pfl"; printf '%s' "$uf_list" > "$fd/ufl"
set -- "$fd"/d.*
[ -e "$1" ] || set --
awk 'FNR == 1 { n = split(FILENAME, part, "/"); f = part[n]; blk = 1 }
f == "pk" { t = index($0, "\t"); if (t) PK[substr($0, 1, t - 1)] = substr($0, t + 1); next }
f == "st" { t = index($0, "\t"); if (t) ST[substr($0, 1, t - 1)] = substr($0, t + 1); next }
f == "sum" { H[substr($0, 67)] = substr($0, 1, 64); next }
f == "uf" { if ($0 == "") { blk++; next }
  if ($0 ~ /^UnitFileState=/) UFS[blk] = substr($0, 15)
  if ($0 ~ /^ActiveState=/) ACT[blk] = substr($0, 13); next }
f == "pkl" { if (NF == 2 && ($2 in PK)) { print "@@foobar-step " $1; print "P\t" $2 "\t" PK[$2] } next }
f == "pfl" { if (NF == 2 && ($2 in ST)) { h = (ST[$2] ~ /directory$/ || !($2 in H)) ? "-" : H[$2]
  print "@@foobar-step " $1; print "F\t" ST[$2] "\t" h } next }
f == "ufl" { if (NF == 2) { u++; print "@@foobar-step " $1; print "V\t" UFS[u] "\t" ACT[u] } next }
f ~ /^d\./ { if (FNR == 1) print "@@foobar-step " substr(f, 3); print }' "$fd/pk" "$fd/st" "$fd/sum" "$fd/uf" "$fd/pkl" "$fd/pfl" "$fd/ufl" "$@"
"#;

/// Parses what `path_fact_script` printed.
pub fn parse_path_fact(output: &str) -> Option<PathFact> {
    output.lines().find_map(|line| {
        let [_, stat, sha] = line.split('\t').collect::<Vec<_>>()[..] else {
            return None;
        };
        let [owner, group, mode, kind] = stat.splitn(4, ' ').collect::<Vec<_>>()[..] else {
            return None;
        };
        line.starts_with("F\t").then(|| PathFact {
            owner: owner.to_string(),
            group: group.to_string(),
            mode: u32::from_str_radix(mode, 8).unwrap_or(0),
            is_dir: kind == "directory",
            sha256: (sha != "-").then(|| sha.to_string()),
        })
    })
}

/// Records a handler as pending on the server, in the same script as the
/// change that notifies it.
pub fn remember(notify: Option<&str>) -> String {
    match notify {
        Some(h) => format!(
            "mkdir -p /var/lib/foobar && {{ grep -qxF {h} {f} 2>/dev/null || echo {h} >> {f}; }}\n",
            h = quote(h),
            f = PENDING_HANDLERS
        ),
        None => String::new(),
    }
}

/// Where the last good versions of what a handler watches wait until the
/// handler has run: `<BACKUP_DIR>/<handler>/<path with / as %>`.
pub fn backup_dir(handler: &str) -> String {
    format!("{BACKUP_DIR}/{}", handler.replace(' ', "_"))
}

/// Keeps the current `$dest` (file or symlink; or the fact that it did not
/// exist) before it changes, unless a backup for this handler is already
/// there: the last version that the service ran with is what counts.
pub fn backup(notify: Option<&str>) -> String {
    match notify {
        Some(h) => format!(
            "bk={d}\nmkdir -p \"$bk\"\nb=\"$bk/$(printf %s \"$dest\" | tr / %)\"\n\
             if [ ! -e \"$b\" ] && [ ! -L \"$b\" ] && [ ! -e \"$b.absent\" ]; then\n\
             \x20 if [ -e \"$dest\" ] || [ -L \"$dest\" ]; then cp -pP \"$dest\" \"$b\"; else : > \"$b.absent\"; fi\nfi\n",
            d = quote(&backup_dir(h))
        ),
        None => String::new(),
    }
}

/// Fails unless the uploaded temp file (a shell word) is exactly what was
/// sent: a cut connection ends stdin early, and a short file must never go
/// live.
pub fn verify_upload(file: &str, what: &str, content: &[u8]) -> String {
    format!(
        "[ \"$(sha256sum < {file} | cut -d' ' -f1)\" = {} ] || {{ echo \"upload of {what} was incomplete\" >&2; exit 1; }}\n",
        sha256_hex(content)
    )
}

/// A file that can lock foobar out (the firewall's ruleset, sshd's
/// drop-in): what it should hold, and how long a new version has to be
/// confirmed over a fresh connection before the previous one comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedFile {
    pub content: Vec<u8>,
    pub confirm_within_secs: u16,
}

/// Such a file on the server: as installed, and whether a change of it is
/// live but not confirmed yet (its revert timer runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardedFact {
    #[serde(default)]
    pub installed: Option<PathFact>,
    #[serde(default)]
    pub pending: bool,
}

impl GuardedFile {
    /// The fact of `path`, with `work` the change's work folder.
    pub fn fact_script(path: &str, work: &str) -> String {
        format!(
            "{}[ -e {work}/pending ] && echo P\ntrue\n",
            path_fact_script(path)
        )
    }

    pub fn parse_fact(output: &str) -> GuardedFact {
        GuardedFact {
            installed: parse_path_fact(output),
            pending: output.lines().any(|l| l == "P"),
        }
    }

    /// Whether the file differs, or a change of it waits for confirmation.
    pub fn needs_change(&self, fact: &GuardedFact) -> bool {
        let same = fact
            .installed
            .as_ref()
            .and_then(|f| f.sha256.as_deref())
            .is_some_and(|sha| sha == sha256_hex(&self.content));
        !same || fact.pending
    }

    /// The fact once the change is applied and confirmed.
    pub fn converged(&self) -> GuardedFact {
        GuardedFact {
            installed: Some(PathFact {
                owner: "root".into(),
                group: "root".into(),
                mode: 0o644,
                is_dir: false,
                sha256: Some(sha256_hex(&self.content)),
            }),
            pending: false,
        }
    }
}

/// Starts (again) the timer that runs `revert` in `secs` seconds unless
/// the change is confirmed first (see `confirm_script`), and marks the
/// change pending in its work folder `work`.
pub fn revert_timer(work: &str, unit: &str, secs: u16, revert: &str) -> String {
    format!(
        "systemctl stop {unit}.timer >/dev/null 2>&1 || true\n\
         systemctl reset-failed {unit}.timer {unit}.service >/dev/null 2>&1 || true\n\
         systemd-run --quiet --unit={unit} --on-active={secs} --timer-property=AccuracySec=100ms \\\n  /bin/sh -c {}\n\
         touch {work}/pending\n",
        crate::shell::quote(&format!("{revert} && rm -f {work}/pending"))
    )
}

/// Run over a fresh SSH connection: stops the revert timer of a change
/// still pending, then `then` (make it permanent).
pub fn confirm_script(work: &str, unit: &str, then: &str) -> String {
    format!(
        "set -e\nw={work}\n[ -e \"$w/pending\" ] || {{ echo \"the change was reverted before it could be confirmed\" >&2; exit 1; }}\n\
         systemctl stop {unit}.timer >/dev/null 2>&1 || true\n{then}rm -f \"$w/pending\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_facts_parse_files_and_folders() {
        let f = parse_path_fact("F\troot bind 644 regular file\tabc123\n").unwrap();
        assert_eq!((f.group.as_str(), f.mode, f.is_dir), ("bind", 0o644, false));
        assert_eq!(f.sha256.as_deref(), Some("abc123"));
        assert!(
            parse_path_fact("F\troot root 755 directory\t-\n")
                .unwrap()
                .is_dir
        );
        assert_eq!(parse_path_fact(""), None);
    }
}
