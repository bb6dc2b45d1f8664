//! `release`: the code base, pushed as a new release folder and made
//! ready there (shared folders linked, the virtualenv of its wheels, the
//! app's build), then the release command on one server; only then is
//! `current` switched atomically, and old releases are pruned. A release
//! is complete once it holds `.foobar-ready`: one cut off before that is
//! made again.
//!
//! A Python release's `.venv` is a link to a virtualenv that every release
//! of the same wheels and Python shares (`<root>/venvs/<id>-python3.X`):
//! a code change builds none. A virtualenv goes only once no release
//! left links to it, so a rollback's target always has its own.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::parts::{backup, deferred_fact_script, remember, verify_upload};
use super::wheels;
use super::{Kind, PlanCx, ResolveCx, Script};
use crate::code_base::CodeBase;
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
    /// The user the app runs as: owns the shared folders, runs the
    /// release command.
    pub app_user: String,
    /// Python apps: the virtualenv the release links to; None for other
    /// kinds.
    pub venv: Option<Venv>,
    pub shared: Vec<String>,
    pub build: Option<String>,
    /// Set on one app server only.
    pub release_command: Option<String>,
    /// What the build and the release command get besides app.env, in
    /// the release being made (`AppKind::run_env`).
    pub run_env: Vec<(&'static str, String)>,
}

/// A virtualenv shared by the releases of one dependency set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venv {
    /// The wheels it holds, from the store (paths on the server).
    pub wheels: Vec<String>,
    /// A hash of how it is made (`venv_build`); the server's Python
    /// version completes its name.
    pub id: String,
}

impl Venv {
    pub fn new(wheels: Vec<String>) -> Self {
        let id = crate::steps::sha256_hex(venv_build(&wheels).as_bytes())[..16].to_string();
        Venv { wheels, id }
    }
}

/// Where the shared virtualenvs live, under the app's root.
pub const VENVS: &str = "venvs";

/// Marks a release (and a shared virtualenv) whose every preparation
/// finished.
pub const READY: &str = ".foobar-ready";
/// Touched each time a release goes live: a rollback goes to the release
/// live most recently before the current one, never to one that was
/// built but never served (its release command failed).
pub const LIVE: &str = ".foobar-live";
/// The app's environment: its units read it, and so do the build, the
/// release command and `exec` (`with_app_env`).
pub const APP_ENV: &str = "/etc/foobar/app.env";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    /// Where `<root>/current` points, e.g. `releases/0123456789ab`.
    #[serde(default)]
    pub current: Option<String>,
    /// The live release finished its preparation.
    #[serde(default)]
    pub ready: bool,
    /// The releases folder is the app group's alone.
    #[serde(default)]
    pub closed: bool,
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
        let (src, code) = cx.code_base("src", &args.src)?;
        let (code_id, archive) = code
            .pack()
            .map_err(|e| cx.field_error("src", &args.src, e))?;
        let inv = &cx.inventory.inventory;
        let app = &inv.app;
        check_entry_point(cx, &src, &code)?;
        let venv = app
            .kind
            .server()
            .python_wheels()
            .then(|| wheels::for_code_base(&src, &code))
            .transpose()?
            .map(|ws| {
                Venv::new(
                    ws.iter()
                        .map(|w| format!("{}/{}/{}", wheels::STORE, w.sha256, w.file))
                        .collect(),
                )
            });
        let shared: Vec<String> = app.shared.iter().map(|p| p.to_string()).collect();
        let build = app.build.as_ref().map(|c| c.to_string());
        // The id covers how the release is made as well as the code: a
        // changed build or dependency set is a new release.
        let wheel_files = venv.as_ref().map(|v| &v.wheels);
        let recipe = format!("{code_id}\n{wheel_files:?}\n{shared:?}\n{build:?}");
        let id = crate::steps::sha256_hex(recipe.as_bytes())[..12].to_string();
        let release_server = inv.release_server().map(|s| &s.name);
        Ok(Desired {
            root: cx.server_path("root", &args.root)?,
            owner: cx.unix_name("owner", &args.owner)?,
            id,
            archive,
            keep: app.keep_releases.0,
            app_user: app.user.to_string(),
            venv,
            shared,
            build,
            release_command: app
                .release_command
                .as_ref()
                .filter(|_| release_server == Some(&cx.ctx.server.name))
                .map(|c| c.to_string()),
            run_env: app.kind.run_env("$root", "$rel"),
        })
    }

    fn label(d: &Desired) -> String {
        format!("release {}/releases/{}", d.root, d.id)
    }

    fn fact_script(d: &Desired) -> String {
        let current = quote(&format!("{}/current", d.root));
        let releases = quote(&format!("{}/releases", d.root));
        deferred_fact_script(&format!(
            "printf 'L\\t%s\\n' \"$(readlink {current})\"; [ -e {current}/{READY} ] && echo R; \
             [ \"$(stat -c '%a %G' {releases} 2>/dev/null)\" = {closed} ] && echo C",
            closed = quote(&format!("750 {}", d.app_user))
        ))
    }

    fn parse_fact(output: &str) -> Fact {
        Fact {
            current: output
                .lines()
                .find_map(|l| l.strip_prefix("L\t"))
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            ready: output.lines().any(|l| l == "R"),
            closed: output.lines().any(|l| l == "C"),
        }
    }

    fn plan(d: &Desired, fact: &Fact, _: &PlanCx) -> Option<Deploy> {
        let live = fact.current.as_deref().is_some_and(|t| {
            t.trim_end_matches('/')
                .ends_with(&format!("releases/{}", d.id))
        });
        (!live || !fact.ready || !fact.closed).then_some(Deploy)
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
# Only the app's group (nginx's user is in it) reaches the releases: code
# bases hold secrets (.env, keys).
chown {o}:{g} "$root/releases"
chmod 750 "$root/releases"
# Leftovers of a run that was cut off.
rm -rf "$root"/releases/.incoming.*
tmp=$(mktemp -d "$root/releases/.incoming.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$tmp/.archive"
{verify}if [ -e "$rel/{READY}" ]; then
  touch "$rel"
else
  # A release cut off before it was ready is made again from scratch.
  rm -rf "$rel"
  mkdir "$tmp/tree"
  tar -x -C "$tmp/tree" --no-same-owner -f "$tmp/.archive"
  mv "$tmp/tree" "$rel"
{prepare}  chown -R {o}:{g} "$rel"
  chmod -R o= "$rel"
  chmod 750 "$rel"
  touch "$rel/{READY}"
fi
{release_command}previous=$(readlink "$dest" || true)
{backup}{remember}touch "$rel/{LIVE}"
ln -sfn "releases/{id}" "$root/.current.tmp"
mv -T "$root/.current.tmp" "$dest"
cd "$root/releases"
ls -1t | tail -n +{first_pruned} | while read -r old; do
  [ "$old" = {id} ] || [ "releases/$old" = "$previous" ] || rm -rf -- "$old"
done
{prune_venvs}"#,
            r = quote(&d.root),
            id = d.id,
            o = quote(&d.owner),
            g = quote(&d.app_user),
            verify = verify_upload("\"$tmp/.archive\"", "the release", &d.archive),
            backup = backup(notify),
            remember = remember(notify),
            first_pruned = u32::from(d.keep) + 1,
            prepare = prepare(d),
            prune_venvs = prune_venvs(),
            release_command = d
                .release_command
                .as_deref()
                .map(|c| in_app_env(d, "the release command", c, Some(&d.app_user)))
                .unwrap_or_default(),
        ))
        .with_stdin(d.archive.clone())
    }

    fn converged(d: &Desired, _: &Deploy, _: &Fact) -> Fact {
        Fact {
            current: Some(format!("releases/{}", d.id)),
            ready: true,
            closed: true,
        }
    }

    /// What comes after runs on the new release: the app's processes
    /// plan their restart from where `current` leads now.
    fn refreshes_facts(_: &Deploy) -> bool {
        true
    }
}

/// What makes a fresh release ready, in `$rel`: shared folders linked in,
/// the virtualenv, the build.
fn prepare(d: &Desired) -> String {
    let mut s = String::new();
    for p in &d.shared {
        s += &format!(
            "  mkdir -p \"$root/shared/\"{p}\n  chown {u}: \"$root/shared/\"{p}\n  chmod 750 \"$root/shared/\"{p}\n  rm -rf \"$rel/\"{p}\n  mkdir -p \"$(dirname \"$rel/\"{p})\"\n  ln -s \"$root/shared/\"{p} \"$rel/\"{p}\n",
            p = quote(p),
            u = quote(&d.app_user),
        );
    }
    if let Some(venv) = &d.venv {
        // Made in place rather than elsewhere and moved: pip writes the
        // virtualenv's path into the scripts it installs (`celery`,
        // `django-admin`). Marked ready last, so that one cut off midway
        // is made again, never linked.
        s += &format!(
            r#"  venv="{VENVS}/{id}-$(basename "$(readlink -f "$(command -v python3)")")"
  if [ ! -e "$root/$venv/{READY}" ]; then
    rm -rf "$root/$venv"
    mkdir -p "$root/{VENVS}"
    chown {o}:{g} "$root/{VENVS}"
    chmod 750 "$root/{VENVS}"
{build}    chown -R {o}:{g} "$root/$venv"
    chmod -R o= "$root/$venv"
    touch "$root/$venv/{READY}"
  fi
  ln -s "../../$venv" "$rel/.venv"
"#,
            id = venv.id,
            o = quote(&d.owner),
            g = quote(&d.app_user),
            build = venv_build(&venv.wheels),
        );
    }
    if let Some(build) = &d.build {
        s += &indent(&in_app_env(d, "the build", build, None));
    }
    s
}

/// The commands that make a virtualenv of `wheels` in `$root/$venv`; a
/// virtualenv's id is their hash.
fn venv_build(wheels: &[String]) -> String {
    let mut s =
        // Without pip of its own (making one takes seconds): Debian's pip
        // wheel (python3-venv brings it) installs into it.
        "    python3 -m venv --system-site-packages --without-pip \"$root/$venv\" >&2\n".to_string();
    if !wheels.is_empty() {
        // Only the wheels: their dependencies were resolved on the
        // machine running foobar, and the index is never asked.
        let files: Vec<String> = wheels.iter().map(|w| quote(w)).collect();
        s += &format!(
            "    \"$root/$venv/bin/python3\" \"$(ls /usr/share/python-wheels/pip-*.whl | tail -n 1)/pip\" install --quiet --no-index --no-deps --disable-pip-version-check {} >&2\n",
            files.join(" ")
        );
    }
    // gunicorn (Debian's) finds the release's packages through this
    // fixed path, whatever the Python version.
    s += "    ln -sfn \"$(cd \"$root/$venv\" && echo lib/python3*/site-packages)\" \"$root/$venv/site-packages\"\n";
    s
}

/// After the releases are pruned (in `$root/releases`): the shared
/// virtualenvs no release links to any more go, a rollback's target keeps
/// its own. Also for other kinds: an app that was Python once.
fn prune_venvs() -> String {
    format!(
        r#"if [ -d "$root/{VENVS}" ]; then
  linked=$(for l in */.venv; do if [ -L "$l" ]; then basename "$(readlink "$l")"; fi; done)
  for v in "$root"/{VENVS}/*; do
    [ -e "$v" ] || continue
    printf '%s\n' "$linked" | grep -qxF "$(basename "$v")" || rm -rf -- "$v"
  done
fi
"#
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Runs `command` in the release with the app's environment, as `user`
/// (root when None); its output is the script's error output, so that a
/// failure shows it, and a failure stops the script before the switch.
fn in_app_env(d: &Desired, what: &str, command: &str, user: Option<&str>) -> String {
    format!(
        "(cd \"$rel\" && {}) >&2 || {{ echo {failed} >&2; exit 1; }}\n",
        with_app_env(&d.run_env, user, &format!("sh -c {}", quote(command))),
        failed = quote(&format!("{what} failed: the live release is unchanged")),
    )
}

/// The words that run `command` (shell words) with the app's environment
/// as its units get it, as `user` (root when None): app.env read into an
/// empty environment holding `env` (`AppKind::run_env`), whose values go
/// in double quotes, so that shell variables in them (`$rel`) expand.
pub fn with_app_env(env: &[(&str, String)], user: Option<&str>, command: &str) -> String {
    let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    let drop = user
        .map(|u| format!("setpriv --reuid={u} --regid={u} --init-groups ", u = quote(u)))
        .unwrap_or_default();
    // app.env's values are double-quoted with `"`, `\`, `$` and backquotes
    // escaped (`shell::env_quote`): sourcing it gives exactly what systemd
    // gives the app, whatever printable characters they hold.
    format!(
        "env -i {} sh -c 'set -a; . {APP_ENV}; set +a; exec \"$@\"' sh {drop}{command}",
        vars.join(" ")
    )
}

/// The app server's entry point must be in the code base.
fn check_entry_point(cx: &ResolveCx, src: &Path, code: &CodeBase) -> Result<(), InputError> {
    let app = &cx.inventory.inventory.app;
    let kind = app.kind.server();
    let key = kind.entry_key();
    let entry = app.setting(key);
    let candidates = kind.entry_files(&entry);
    if candidates.iter().any(|c| code.has(c)) {
        return Ok(());
    }
    Err(cx.inventory.error_at(
        &format!("app.{key}"),
        format!(
            "`{entry}` is not in the code base: {} has no {}",
            src.display(),
            candidates.join(" or ")
        ),
    ))
}

/// The release id a release step's label names (see `Kind::label`).
pub fn id_in_label(label: &str) -> Option<&str> {
    label
        .strip_prefix("release ")
        .and_then(|path| path.rsplit_once("/releases/"))
        .map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    fn id_of(flag: &str) -> String {
        let out = Command::new("id").arg(flag).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A release of `wheels` under `root`, run as this user.
    fn desired(root: &Path, id: &str, wheels: &[&str], archive: &[u8]) -> Desired {
        Desired {
            root: root.display().to_string(),
            owner: id_of("-un"),
            id: id.into(),
            archive: archive.to_vec(),
            keep: 1,
            app_user: id_of("-gn"),
            venv: Some(Venv::new(wheels.iter().map(|w| w.to_string()).collect())),
            shared: Vec::new(),
            build: None,
            release_command: None,
            run_env: Vec::new(),
        }
    }

    /// Runs the release's script with a `python3` that logs each
    /// virtualenv it makes, in `log`.
    fn deploy(d: &Desired, bin: &Path, log: &Path) {
        let script = Release::script(d, &Deploy, None);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script.text)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("LOG", log)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&script.stdin.unwrap())
            .unwrap();
        assert!(child.wait().unwrap().success(), "release {}", d.id);
    }

    fn builds(log: &Path) -> Vec<String> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| Path::new(l).file_name().unwrap().to_string_lossy().into())
            .collect()
    }

    #[test]
    fn releases_of_the_same_wheels_share_one_virtualenv_until_none_links_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let (root, bin, log) = (dir.path().join("app"), dir.path().join("bin"), dir.path().join("log"));
        std::fs::create_dir_all(&bin).unwrap();
        let python = bin.join("python3");
        std::fs::write(
            &python,
            "#!/bin/sh\n[ \"$1 $2\" = '-m venv' ] || exit 1\nfor a; do d=$a; done\n\
             mkdir -p \"$d/lib/python3.11/site-packages\" \"$d/bin\"\nln -s /bin/true \"$d/bin/python3\"\n\
             echo \"$d\" >> \"$LOG\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("app.py"), "").unwrap();
        let archive = Command::new("tar")
            .args(["-c", "-C"])
            .arg(&code)
            .arg(".")
            .output()
            .unwrap()
            .stdout;

        let a = desired(&root, "aaaaaaaaaaaa", &["/w/django.whl"], &archive);
        let old = a.venv.as_ref().unwrap().id.clone();
        let venv = |id: &str| root.join(VENVS).join(format!("{id}-python3"));
        // A build cut off midway is made again, never linked as it is.
        std::fs::create_dir_all(venv(&old).join("bin")).unwrap();
        deploy(&a, &bin, &log);
        assert_eq!(builds(&log), [format!("{old}-python3")]);
        assert!(venv(&old).join(READY).exists());

        // New code, the same wheels: no build, the same virtualenv.
        let b = desired(&root, "bbbbbbbbbbbb", &["/w/django.whl"], &archive);
        deploy(&b, &bin, &log);
        assert_eq!(builds(&log).len(), 1, "a code change built a virtualenv");
        let linked = |id: &str| std::fs::canonicalize(root.join("releases").join(id).join(".venv"));
        assert_eq!(linked("bbbbbbbbbbbb").unwrap(), venv(&old).canonicalize().unwrap());

        // New wheels: a virtualenv of their own; the previous release (the
        // rollback's target) keeps its.
        let c = desired(&root, "cccccccccccc", &["/w/django2.whl"], &archive);
        let new = c.venv.as_ref().unwrap().id.clone();
        assert_ne!(new, old);
        deploy(&c, &bin, &log);
        assert_eq!(builds(&log).len(), 2);
        assert!(linked("bbbbbbbbbbbb").is_ok());
        assert!(!root.join("releases/aaaaaaaaaaaa").exists());

        // Once the last release linking to it is pruned, it goes.
        let d = desired(&root, "dddddddddddd", &["/w/django2.whl"], &archive);
        deploy(&d, &bin, &log);
        assert_eq!(builds(&log).len(), 2);
        assert!(!root.join("releases/bbbbbbbbbbbb").exists());
        assert!(!venv(&old).exists());
        assert!(venv(&new).join(READY).exists());
    }
}
