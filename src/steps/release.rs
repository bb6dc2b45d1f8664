//! `release`: the code base, pushed as a new release folder; `current` is
//! switched atomically and old releases are pruned.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::parts::{backup, deferred_fact_script, remember, verify_upload};
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::error::InputError;
use crate::shell::quote;

pub struct Release;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub src: String,
    pub root: String,
    pub owner: String,
    #[serde(default)]
    pub notify: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub root: String,
    pub owner: String,
    /// Content hash of the code base; also the release's folder name.
    pub id: String,
    pub archive: Vec<u8>,
    pub keep: u8,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// Where `<root>/current` points, e.g. `releases/0123456789ab`.
    #[serde(default)]
    pub current: Option<String>,
}

/// Unpack the release and switch `current` to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy;

impl Kind for Release {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = Deploy;

    fn notify(args: &Args) -> Option<&str> {
        args.notify.as_deref()
    }

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let src = cx.local_path(&cx.field("src", &args.src)?);
        let (id, archive) =
            release_archive(&src).map_err(|m| cx.field_error("src", &args.src, m))?;
        Ok(Desired {
            root: cx.server_path("root", &args.root)?,
            owner: cx.unix_name("owner", &args.owner)?,
            id,
            archive,
            keep: cx.inventory.inventory.app.keep_releases.0,
        })
    }

    fn label(d: &Desired) -> String {
        format!("release {}/releases/{}", d.root, d.id)
    }

    fn fact_script(d: &Desired) -> String {
        deferred_fact_script(&format!(
            "printf 'L\\t%s\\n' \"$(readlink {})\"",
            quote(&format!("{}/current", d.root))
        ))
    }

    fn parse_fact(output: &str) -> Fact {
        Fact {
            current: output
                .lines()
                .find_map(|l| l.strip_prefix("L\t"))
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        }
    }

    fn plan(d: &Desired, fact: &Fact, _: &PlanCx) -> Option<Deploy> {
        let live = fact.current.as_deref().is_some_and(|t| {
            t.trim_end_matches('/')
                .ends_with(&format!("releases/{}", d.id))
        });
        (!live).then_some(Deploy)
    }

    fn describe(_: &Deploy) -> String {
        "deploy and switch current".into()
    }

    fn script(d: &Desired, _: &Deploy, notify: Option<&str>) -> Script {
        Script::new(format!(
            r#"root={r}
rel="$root/releases/{id}"
dest="$root/current"
mkdir -p "$root/releases"
# Leftovers of a run that was cut off.
rm -rf "$root"/releases/.incoming.*
tmp=$(mktemp -d "$root/releases/.incoming.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$tmp/.archive"
{verify}if [ -d "$rel" ]; then
  touch "$rel"
else
  mkdir "$tmp/tree"
  tar -x -C "$tmp/tree" --no-same-owner -f "$tmp/.archive"
  chown -R {o}: "$tmp/tree"
  chmod 755 "$tmp/tree"
  mv "$tmp/tree" "$rel"
fi
previous=$(readlink "$dest" || true)
{backup}{remember}ln -sfn "releases/{id}" "$root/.current.tmp"
mv -T "$root/.current.tmp" "$dest"
cd "$root/releases"
ls -1t | tail -n +{first_pruned} | while read -r old; do
  [ "$old" = {id} ] || [ "releases/$old" = "$previous" ] || rm -rf -- "$old"
done
"#,
            r = quote(&d.root),
            id = d.id,
            o = quote(&d.owner),
            verify = verify_upload("\"$tmp/.archive\"", "the release", &d.archive),
            backup = backup(notify),
            remember = remember(notify),
            first_pruned = u32::from(d.keep) + 1,
        ))
        .with_stdin(d.archive.clone())
    }

    fn converged(d: &Desired, _: &Deploy, _: &Fact) -> Fact {
        Fact {
            current: Some(format!("releases/{}", d.id)),
        }
    }
}

/// Every file of a release carries this modification time, so that the
/// same tree always packs to the same bytes (2000-01-01 UTC).
const RELEASE_MTIME: u64 = 946_684_800;

/// Packs the code base as a tar archive (sorted, fixed times: the same tree
/// always gives the same bytes) and returns its id: the first 12 hex digits
/// of a SHA-256 over every path, mode and content.
pub fn release_archive(src: &Path) -> Result<(String, Vec<u8>), String> {
    if !src.is_dir() {
        return Err(format!(
            "the code base folder {} does not exist: name the folder that holds the app",
            src.display()
        ));
    }
    let mut files = Vec::new();
    collect_files(src, src, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(format!("the code base folder {} is empty", src.display()));
    }
    let mut hasher = Sha256::new();
    let mut builder = tar::Builder::new(Vec::new());
    for rel in &files {
        let full = src.join(rel);
        let data = std::fs::read(&full).map_err(|e| format!("reading {}: {e}", full.display()))?;
        let executable = std::fs::metadata(&full)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        let mode = if executable { 0o755 } else { 0o644 };
        let name = rel
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", rel.display()))?;
        hasher.update(format!("{name}\0{mode:o}\0{}\0", data.len()));
        hasher.update(&data);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(RELEASE_MTIME);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, data.as_slice())
            .map_err(|e| format!("packing {name}: {e}"))?;
    }
    let archive = builder.into_inner().map_err(|e| e.to_string())?;
    let id: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((id, archive))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Caches and VCS folders are not part of a release.
        if name == "__pycache__" || name == ".git" || name.ends_with(".pyc") {
            continue;
        }
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
        } else {
            return Err(format!(
                "{} is neither a file nor a folder: releases hold plain files",
                path.display()
            ));
        }
    }
    Ok(())
}
