//! A Python app's dependencies, resolved on this machine: servers need no
//! access to a package index. pip downloads the wheels of
//! `requirements.txt` (and everything they depend on) for the servers'
//! Python and platform, Debian 12's CPython 3.11 on x86_64; the files are
//! kept in a local cache, and the resolution of a requirements file is
//! remembered by its content, so that an unchanged file asks no index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::InputError;

/// The servers' Python, as pip names it.
pub const TARGET: &str = "CPython 3.11 on manylinux x86_64 (Debian 12)";

/// What pip is told about the servers: Debian 12 has glibc 2.36, so
/// every manylinux wheel up to 2.36 runs there.
fn target_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]
    .map(String::from)
    .to_vec();
    let platforms = (17..=36)
        .map(|minor| format!("manylinux_2_{minor}_x86_64"))
        .chain(
            [
                "manylinux2014_x86_64",
                "manylinux2010_x86_64",
                "manylinux1_x86_64",
            ]
            .map(String::from),
        );
    for p in platforms {
        args.push("--platform".into());
        args.push(p);
    }
    args
}

/// One wheel of a resolution, in the local cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    pub file: String,
    pub sha256: String,
    pub path: PathBuf,
}

/// Where foobar keeps downloaded wheels: `$FOOBAR_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/foobar`, else `~/.cache/foobar`.
fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FOOBAR_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("foobar")
}

/// The wheels `requirements` needs on the servers, downloaded once;
/// `shipped` is its content as the release ships it (at `app.ref`, which
/// the work tree may not have: pip then reads a copy of it).
pub fn resolve(requirements: &Path, shipped: &[u8]) -> Result<Vec<Wheel>, InputError> {
    let text = std::str::from_utf8(shipped)
        .map_err(|_| InputError::new(requirements, "cannot read: it is not UTF-8"))?;
    let key = crate::digest::sha256_hex(format!("{TARGET}\n{text}").as_bytes());
    let cache = cache_dir();
    let index = cache.join("resolved").join(format!("{key}.txt"));
    if let Some(wheels) = read_index(&cache, &index) {
        return Ok(wheels);
    }
    let files = cache.join("files");
    let fail = |e: std::io::Error| {
        InputError::new(
            requirements,
            format!("cannot use the wheel cache {}: {e}", cache.display()),
        )
    };
    std::fs::create_dir_all(&files).map_err(fail)?;
    std::fs::create_dir_all(index.parent().expect("under cache")).map_err(fail)?;
    let download = tempfile::Builder::new()
        .prefix(".download-")
        .tempdir_in(&cache)
        .map_err(fail)?;
    let copy = if std::fs::read(requirements).is_ok_and(|on_disk| on_disk == shipped) {
        None
    } else {
        let mut copy = tempfile::NamedTempFile::new_in(&cache).map_err(fail)?;
        copy.write_all(shipped).map_err(fail)?;
        Some(copy)
    };
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--disable-pip-version-check", "--no-input", "-q"])
        .args(target_args())
        .arg("-d")
        .arg(download.path())
        .arg("-r")
        .arg(copy.as_ref().map_or(requirements, |c| c.path()))
        .output()
        .map_err(|e| {
            InputError::new(
                requirements,
                format!("cannot run `python3 -m pip` to fetch the app's wheels ({e}): install python3-pip"),
            )
        })?;
    if !out.status.success() {
        return Err(pip_error(
            requirements,
            text,
            &String::from_utf8_lossy(&out.stderr),
        ));
    }
    let mut lines = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(download.path())
        .map_err(fail)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        if !plain_wheel_name(&name) {
            return Err(InputError::new(
                requirements,
                format!("pip fetched `{name}`, which is not a wheel: only wheels are installed on the servers"),
            ));
        }
        let data = std::fs::read(download.path().join(&name)).map_err(fail)?;
        let sha = crate::digest::sha256_hex(&data);
        std::fs::rename(download.path().join(&name), files.join(&name)).map_err(fail)?;
        lines.push(format!("{sha} {name}"));
    }
    let tmp = index.with_extension("tmp");
    std::fs::write(&tmp, lines.join("\n") + "\n").map_err(fail)?;
    std::fs::rename(&tmp, &index).map_err(fail)?;
    read_index(&cache, &index).ok_or_else(|| {
        InputError::new(
            requirements,
            "the wheel cache changed while it was written: run again",
        )
    })
}

/// A remembered resolution, if every wheel of it is still in the cache
/// with its content.
fn read_index(cache: &Path, index: &Path) -> Option<Vec<Wheel>> {
    let text = std::fs::read_to_string(index).ok()?;
    text.lines()
        .map(|l| {
            let (sha, file) = l.split_once(' ')?;
            let path = cache.join("files").join(file);
            let ok = plain_wheel_name(file) && std::fs::metadata(&path).is_ok_and(|m| m.is_file());
            ok.then(|| Wheel {
                file: file.to_string(),
                sha256: sha.to_string(),
                path,
            })
        })
        .collect()
}

/// Wheel file names reach the servers' shell: only what PyPI's names use.
fn plain_wheel_name(name: &str) -> bool {
    name.ends_with(".whl")
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

/// pip's refusal in foobar's words, at the line of the requirement it
/// names when there is one.
fn pip_error(requirements: &Path, text: &str, stderr: &str) -> InputError {
    let missing = stderr
        .lines()
        .find_map(|l| l.split("No matching distribution found for ").nth(1))
        .map(|r| r.trim().to_string());
    let Some(requirement) = missing else {
        let last: Vec<&str> = stderr.lines().rev().take(5).collect();
        let detail: Vec<&str> = last.into_iter().rev().collect();
        return InputError::new(
            requirements,
            format!(
                "pip could not fetch the app's wheels for {TARGET}: {}",
                detail.join(" / ")
            ),
        );
    };
    let name = requirement
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .next()
        .unwrap_or(&requirement)
        .to_string();
    let normal = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    let place = text.lines().enumerate().find_map(|(i, l)| {
        let lower = normal(l);
        lower
            .find(&normal(&name))
            .filter(|_| !l.trim_start().starts_with('#'))
            .map(|c| (i + 1, c + 1))
    });
    let message = format!(
        "no wheel of `{requirement}` for {TARGET}: the package does not exist on the index, or publishes no wheel for the servers' platform (servers install wheels only; pick a version that has one)"
    );
    match place {
        Some((line, column)) => InputError::at(requirements, line, column, message),
        None => InputError::new(requirements, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_refusals_point_at_the_requirement() {
        let text = "# deps\nflask==3.0.0\nno_such-package-xyz>=1\n";
        let e = pip_error(
            Path::new("requirements.txt"),
            text,
            "ERROR: Could not find a version that satisfies the requirement no_such-package-xyz>=1 (from versions: none)\nERROR: No matching distribution found for no_such-package-xyz>=1\n",
        );
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.message.contains("no_such-package-xyz"), "{e}");
    }

    #[test]
    fn only_plain_wheel_names_are_taken() {
        assert!(plain_wheel_name("Django-5.1.4-py3-none-any.whl"));
        assert!(!plain_wheel_name("x.tar.gz"));
        assert!(!plain_wheel_name("a b.whl"));
        assert!(!plain_wheel_name("$(x).whl"));
    }

    #[test]
    fn the_servers_platform_is_debian_12() {
        let args = target_args().join(" ");
        assert!(args.contains("--python-version 3.11"));
        assert!(args.contains("manylinux_2_36_x86_64"));
        assert!(
            !args.contains("manylinux_2_37"),
            "newer than Debian 12's glibc"
        );
    }
}
