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
use crate::inventory::{InputGlob, ReleaseStep};
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
    pub build: Option<ReleaseRun>,
    /// Set on one app server only.
    pub release_command: Option<ReleaseRun>,
    /// What the build and the release command get besides app.env, in
    /// the release being made (`AppKind::run_env`).
    pub run_env: Vec<(&'static str, String)>,
}

/// The build or the release command, as a release runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRun {
    pub command: String,
    /// A hash of all its result depends on: its inputs in the code base,
    /// the command, the output, the app's environment and virtualenv. When
    /// the live release's marker holds the same, it is not run again.
    /// None: it runs in every new release.
    pub key: Option<String>,
    /// What a build writes in the release: linked from the live release
    /// when the build is not run again.
    pub output: Vec<String>,
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
/// The key of the build that made a release's output (`ReleaseRun::key`).
pub const BUILD_MARK: &str = ".foobar-build";
/// The key of the release command run (or found needless) for a release:
/// the database is as the release's migrations make it. A restore removes
/// it, the database being then as the backup had it.
pub const RELEASE_COMMAND_MARK: &str = ".foobar-release-command";
/// How a deploy says the release command is not run (`describe`): a
/// deploy takes no backup before it then.
pub const RELEASE_COMMAND_SKIPPED: &str = "release command: skipped (inputs unchanged)";
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
    /// The live release's build key (`BUILD_MARK`).
    #[serde(default)]
    pub build_key: Option<String>,
    /// The live release's release command key (`RELEASE_COMMAND_MARK`).
    #[serde(default)]
    pub release_command_key: Option<String>,
}

/// Unpack the release and switch `current` to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deploy {
    /// The build's inputs are the live release's: its output is linked
    /// from there, the build is not run.
    pub build_linked: bool,
    /// The release command's inputs are the live release's: not run.
    pub release_command_skipped: bool,
}

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
        let build_command = app.build.as_ref().map(|c| c.command.to_string());
        // The id covers how the release is made as well as the code: a
        // changed build or dependency set is a new release.
        let wheel_files = venv.as_ref().map(|v| &v.wheels);
        let recipe = format!("{code_id}\n{wheel_files:?}\n{shared:?}\n{build_command:?}");
        let id = crate::steps::sha256_hex(recipe.as_bytes())[..12].to_string();
        let release_server = inv.release_server().map(|s| &s.name);
        let run_env = app.kind.run_env("$root", "$rel");
        let run = |key: &str, step: &ReleaseStep| -> Result<ReleaseRun, InputError> {
            let key = match &step.inputs {
                None => None,
                Some(inputs) => Some(step_key(cx, &code, key, step, inputs, &venv, &run_env)?),
            };
            Ok(ReleaseRun {
                command: step.command.to_string(),
                key,
                output: step.output.iter().map(|o| o.to_string()).collect(),
            })
        };
        if let Some(build) = &app.build {
            check_outputs(cx, &src, &code, build)?;
        }
        let build = app
            .build
            .as_ref()
            .map(|b| run("app.build", b))
            .transpose()?;
        let release_command = app
            .release_command
            .as_ref()
            .filter(|_| release_server == Some(&cx.ctx.server.name))
            .map(|c| run("app.release_command", c))
            .transpose()?;
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
            release_command,
            run_env,
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
             [ \"$(stat -c '%a %G' {releases} 2>/dev/null)\" = {closed} ] && echo C; \
             printf 'B\\t%s\\nM\\t%s\\n' \"$(cat {current}/{BUILD_MARK} 2>/dev/null)\" \"$(cat {current}/{RELEASE_COMMAND_MARK} 2>/dev/null)\"",
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
            build_key: marked(output, "B\t"),
            release_command_key: marked(output, "M\t"),
        }
    }

    fn plan(d: &Desired, fact: &Fact, cx: &PlanCx) -> Option<Deploy> {
        let live = fact.current.as_deref().is_some_and(|t| {
            t.trim_end_matches('/')
                .ends_with(&format!("releases/{}", d.id))
        });
        (!live || !fact.ready || !fact.closed).then(|| Deploy {
            // The live release itself (cut off, or open to others) is
            // made again whole, never from its own output.
            build_linked: !cx.rebuild && !live && unchanged(&d.build, &fact.build_key),
            release_command_skipped: !cx.rebuild
                && unchanged(&d.release_command, &fact.release_command_key),
        })
    }

    fn describe(c: &Deploy) -> String {
        let mut s = "deploy and switch current".to_string();
        if c.build_linked {
            s += "; build: output linked from the live release (inputs unchanged)";
        }
        if c.release_command_skipped {
            s += &format!("; {RELEASE_COMMAND_SKIPPED}");
        }
        s
    }

    fn script(d: &Desired, c: &Deploy, notify: Option<&str>) -> Script {
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
            prepare = prepare(d, c),
            prune_venvs = prune_venvs(),
            release_command = d
                .release_command
                .as_ref()
                .map(|r| release_command(d, r, c.release_command_skipped))
                .unwrap_or_default(),
        ))
        .with_stdin(d.archive.clone())
    }

    fn converged(d: &Desired, _: &Deploy, _: &Fact) -> Fact {
        let key = |r: &Option<ReleaseRun>| r.as_ref().and_then(|r| r.key.clone());
        Fact {
            current: Some(format!("releases/{}", d.id)),
            ready: true,
            closed: true,
            build_key: key(&d.build),
            release_command_key: key(&d.release_command),
        }
    }

    /// What comes after runs on the new release: the app's processes
    /// plan their restart from where `current` leads now.
    fn refreshes_facts(_: &Deploy) -> bool {
        true
    }
}

/// The value of a fact line starting with `tag`, unless empty.
fn marked(output: &str, tag: &str) -> Option<String> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(tag))
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

/// Whether a build or release command need not run again: it has inputs,
/// and the live release's marker holds the same key.
fn unchanged(run: &Option<ReleaseRun>, live: &Option<String>) -> bool {
    run.as_ref()
        .and_then(|r| r.key.as_ref())
        .is_some_and(|k| live.as_ref() == Some(k))
}

/// The key of a build or release command with `inputs` (`ReleaseRun::key`);
/// `at` is its place in the inventory, where an input that matches no file
/// of the code base is told (a typo would skip it for ever).
fn step_key(
    cx: &ResolveCx,
    code: &CodeBase,
    at: &str,
    step: &ReleaseStep,
    inputs: &[InputGlob],
    venv: &Option<Venv>,
    run_env: &[(&'static str, String)],
) -> Result<String, InputError> {
    let globs: Vec<globset::Glob> = inputs
        .iter()
        .map(|g| crate::inventory::compile_glob(g.as_str()).expect("checked when the inventory was read"))
        .collect();
    let read = code.digest_matching(&globs).map_err(|i| {
        cx.inventory.error_at(
            &format!("{at}.inputs[{i}]"),
            format!(
                "`{}` matches no file of the code base: fix the pattern (`**/migrations/*.py`), or remove it",
                inputs[i]
            ),
        )
    })?;
    let env = crate::render::app_environment_unread(&cx.inventory.inventory);
    let venv = venv.as_ref().map(|v| &v.id);
    let recipe = format!(
        "{STEP_KEY_VERSION}\n{at}\n{}\n{:?}\n{read}\n{venv:?}\n{run_env:?}\n{env:?}",
        step.command, step.output
    );
    Ok(crate::steps::sha256_hex(recipe.as_bytes()))
}

/// Changes when what a key covers changes, so that no marker of an older
/// foobar passes for a new one.
const STEP_KEY_VERSION: &str = "foobar release step key 1";

/// A build's outputs are the build's alone: the code base ships none of
/// them (linking one from the live release would nest it in what was
/// shipped).
fn check_outputs(
    cx: &ResolveCx,
    src: &Path,
    code: &CodeBase,
    build: &ReleaseStep,
) -> Result<(), InputError> {
    for (i, out) in build.output.iter().enumerate() {
        if code.ships_under(out.as_str()) {
            return Err(cx.inventory.error_at(
                &format!("app.build.output[{i}]"),
                format!(
                    "`{out}` is in the code base ({}): name a folder only the build writes, or stop shipping it (.gitignore, .foobarignore)",
                    src.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The release command in `$rel`, or (its inputs unchanged) none; either
/// way the release is marked with its key.
fn release_command(d: &Desired, r: &ReleaseRun, skipped: bool) -> String {
    // A release made before keeps no key of a run that then fails.
    let mut s = format!("rm -f \"$rel/{RELEASE_COMMAND_MARK}\"\n");
    if !skipped {
        s += &in_app_env(d, "the release command", &r.command, Some(&d.app_user));
    }
    if let Some(key) = &r.key {
        s += &format!("echo {key} > \"$rel/{RELEASE_COMMAND_MARK}\"\n");
    }
    s
}

/// What makes a fresh release ready, in `$rel`: shared folders linked in,
/// the virtualenv, the build (or its output linked from the live release).
fn prepare(d: &Desired, c: &Deploy) -> String {
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
        let run = in_app_env(d, "the build", &build.command, None);
        if c.build_linked {
            // Hard links: the live release's files, never written again
            // (a build that runs writes a release of its own), and kept
            // whole when that release is pruned. Anything amiss (an
            // output missing, a link into the live release, which would
            // dangle once it is pruned), the build runs after all.
            let outputs: Vec<String> = build.output.iter().map(|o| quote(o)).collect();
            s += &format!(
                "  live=$(readlink -f \"$dest\")\n  linked=yes\n  for o in {outs}; do\n    mkdir -p \"$(dirname \"$rel/$o\")\"\n    cp -al \"$live/$o\" \"$rel/$o\" 2>/dev/null && [ -z \"$(find \"$rel/$o\" -type l -lname \"$live/*\" | head -n 1)\" ] || {{ linked=; break; }}\n  done\n  if [ -z \"$linked\" ]; then\n    echo 'the live release'\\''s build output could not be linked: the build runs' >&2\n    for o in {outs}; do rm -rf \"$rel/$o\"; done\n{run}  fi\n",
                outs = outputs.join(" "),
                run = indent(&indent(&run)),
            );
        } else {
            s += &indent(&run);
        }
        if let Some(key) = &build.key {
            s += &format!("  echo {key} > \"$rel/{BUILD_MARK}\"\n");
        }
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
        deploy_as(d, &Deploy::default(), bin, log);
    }

    /// The same, as planned by `change`, with the app's environment file
    /// beside `log` (an empty one).
    fn deploy_as(d: &Desired, change: &Deploy, bin: &Path, log: &Path) {
        let app_env = log.with_extension("env");
        std::fs::write(&app_env, "").unwrap();
        let script = Release::script(d, change, None);
        let text = script.text.replace(APP_ENV, &app_env.display().to_string());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&text)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("LOG", log)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&script.stdin.unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "release {}: {}",
            d.id,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A code base of one file, packed under `dir`.
    fn code_archive(dir: &Path) -> Vec<u8> {
        let code = dir.join("code");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::write(code.join("app.py"), "").unwrap();
        Command::new("tar")
            .args(["-c", "-C"])
            .arg(&code)
            .arg(".")
            .output()
            .unwrap()
            .stdout
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
        let archive = code_archive(dir.path());

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

    #[test]
    fn a_build_whose_inputs_did_not_change_is_linked_from_the_live_release() {
        let dir = tempfile::tempdir().unwrap();
        let (root, bin, log) = (dir.path().join("app"), dir.path().join("bin"), dir.path().join("log"));
        std::fs::create_dir_all(&bin).unwrap();
        let archive = code_archive(dir.path());
        let release = |id: &str, key: &str| Desired {
            venv: None,
            build: Some(ReleaseRun {
                command: format!("mkdir -p static/css && echo {id} > static/css/site.css && echo {id} >> {}", log.display()),
                key: Some(key.into()),
                output: vec!["static".into()],
            }),
            ..desired(&root, id, &[], &archive)
        };
        let site_css = |id: &str| root.join("releases").join(id).join("static/css/site.css");
        let ino = |id: &str| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(site_css(id)).unwrap().ino()
        };
        let marker = |id: &str| std::fs::read_to_string(root.join("releases").join(id).join(BUILD_MARK)).unwrap();
        let linked = Deploy { build_linked: true, release_command_skipped: false };

        deploy(&release("aaaaaaaaaaaa", "k1"), &bin, &log);
        assert_eq!(marker("aaaaaaaaaaaa"), "k1\n");
        // The same inputs: the live release's output, the very files.
        deploy_as(&release("bbbbbbbbbbbb", "k1"), &linked, &bin, &log);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "aaaaaaaaaaaa\n", "the build ran");
        assert_eq!(ino("bbbbbbbbbbbb"), ino("aaaaaaaaaaaa"));
        assert_eq!(marker("bbbbbbbbbbbb"), "k1\n");
        // Planned as linked, but the live output is gone: the build runs.
        std::fs::remove_dir_all(root.join("releases/bbbbbbbbbbbb/static")).unwrap();
        deploy_as(&release("cccccccccccc", "k1"), &linked, &bin, &log);
        assert_eq!(std::fs::read_to_string(site_css("cccccccccccc")).unwrap(), "cccccccccccc\n");
        // A release keeps its output when the one it came from is pruned
        // (keep 1: the previous release stays, the older goes).
        deploy_as(&release("dddddddddddd", "k1"), &linked, &bin, &log);
        deploy_as(&release("eeeeeeeeeeee", "k1"), &linked, &bin, &log);
        assert!(!root.join("releases/cccccccccccc").exists());
        assert_eq!(std::fs::read_to_string(site_css("dddddddddddd")).unwrap(), "cccccccccccc\n");
        assert_eq!(ino("eeeeeeeeeeee"), ino("dddddddddddd"));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "aaaaaaaaaaaa\ncccccccccccc\n");
        // A link into the live release would dangle once it is pruned:
        // the build runs.
        let live_static = root.join("releases/eeeeeeeeeeee/static");
        std::os::unix::fs::symlink(live_static.join("css/site.css"), live_static.join("site.css"))
            .unwrap();
        deploy_as(&release("ffffffffffff", "k1"), &linked, &bin, &log);
        assert_eq!(std::fs::read_to_string(site_css("ffffffffffff")).unwrap(), "ffffffffffff\n");
    }
}
