//! `template`: a file rendered from `templates/<src>`, written through a
//! temp file beside the destination, verified, validated and renamed into
//! place; a config that fails a whole-config check is put back as it was.

use serde::{Deserialize, Serialize};

use super::parts::{
    backup, deferred_fact_script, parse_path_fact, path_fact_script, remember, sha256_hex,
    verify_upload, PathFact,
    BACKUP_DIR, VALIDATION_FAILED,
};
use super::{Kind, PlanCx, RenderedFile, ResolveCx, Script};
use crate::error::InputError;
use crate::render::SOA_SERIAL_TOKEN;
use crate::shell::quote;

pub struct Template;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub src: String,
    pub dest: String,
    #[serde(default = "root")]
    pub owner: String,
    #[serde(default = "root")]
    pub group: String,
    #[serde(default = "file_mode")]
    pub mode: String,
    /// With `%s`: run on the new file before it replaces the old one.
    /// Without: run after it is in place; the old file is put back when it
    /// fails (for `nginx -t`, which checks the whole config).
    #[serde(default)]
    pub validate: Option<String>,
    /// The template holds `{{ soa_serial }}`: foobar keeps the serial while
    /// the zone is unchanged and raises it when it changes.
    #[serde(default)]
    pub soa_serial: bool,
    #[serde(default)]
    pub notify: Option<String>,
}

pub(crate) fn root() -> String {
    "root".into()
}

fn file_mode() -> String {
    "0644".into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub path: String,
    pub content: Vec<u8>,
    pub owner: String,
    pub group: String,
    pub mode: u32,
    pub validate: Option<String>,
    pub soa_serial: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fact {
    #[serde(default)]
    pub file: Option<PathFact>,
    /// The SOA serial in the file on the server (zones only).
    #[serde(default)]
    pub serial: Option<u32>,
}

/// Write the file: its content with the SOA serial filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFile {
    pub content: Vec<u8>,
    pub reason: String,
}

impl Kind for Template {
    type Args = Args;
    type Desired = Desired;
    type Fact = Fact;
    type Change = WriteFile;

    fn notify(args: &Args) -> Option<&str> {
        args.notify.as_deref()
    }

    fn resolve(args: &Args, cx: &ResolveCx) -> Result<Desired, InputError> {
        let path = cx.server_path("dest", &args.dest)?;
        let content = cx.template(&args.src)?;
        Ok(Desired {
            content: content.into_bytes(),
            owner: cx.unix_name("owner", &args.owner)?,
            group: cx.unix_name("group", &args.group)?,
            mode: cx.mode(&args.mode)?,
            validate: args
                .validate
                .as_deref()
                .map(|v| cx.field("validate", v))
                .transpose()?,
            soa_serial: args.soa_serial,
            path,
        })
    }

    fn label(d: &Desired) -> String {
        format!("template {}", d.path)
    }

    fn fact_script(d: &Desired) -> String {
        let mut s = path_fact_script(&d.path);
        if d.soa_serial {
            // In the background, beside the other facts.
            s.push_str(&deferred_fact_script(&format!(
                "printf 'S\\t%s\\n' \"$(sed -n 's/^[[:space:]]*\\([0-9]\\{{1,10\\}}\\)[[:space:]]*;[[:space:]]*serial.*/\\1/p' {} | head -n1)\"",
                quote(&d.path)
            )));
        }
        s
    }

    fn parse_fact(output: &str) -> Fact {
        Fact {
            file: parse_path_fact(output),
            serial: output
                .lines()
                .find_map(|l| l.strip_prefix("S\t"))
                .and_then(|s| s.parse().ok()),
        }
    }

    fn plan(d: &Desired, fact: &Fact, cx: &PlanCx) -> Option<WriteFile> {
        let current = fact.file.as_ref();
        let content = if d.soa_serial {
            zone_with_serial(
                &d.content,
                fact.serial,
                current.and_then(|c| c.sha256.as_deref()),
                cx.today,
            )
        } else {
            d.content.clone()
        };
        let reason = match current {
            None => "create".to_string(),
            Some(c) if c.sha256.as_deref() != Some(sha256_hex(&content).as_str()) => {
                "content differs".to_string()
            }
            Some(c) if c.owner != d.owner || c.group != d.group || c.mode != d.mode => format!(
                "{}:{} {:04o} -> {}:{} {:04o}",
                c.owner, c.group, c.mode, d.owner, d.group, d.mode
            ),
            Some(_) => return None,
        };
        Some(WriteFile { content, reason })
    }

    fn describe(w: &WriteFile) -> String {
        w.reason.clone()
    }

    fn script(d: &Desired, w: &WriteFile, notify: Option<&str>) -> Script {
        Script::new(write_file_script(d, &w.content, notify)).with_stdin(w.content.clone())
    }

    fn converged(d: &Desired, w: &WriteFile, _: &Fact) -> Fact {
        Fact {
            file: Some(PathFact {
                owner: d.owner.clone(),
                group: d.group.clone(),
                mode: d.mode,
                is_dir: false,
                sha256: Some(sha256_hex(&w.content)),
            }),
            serial: d
                .soa_serial
                .then(|| serial_in(&w.content))
                .flatten(),
        }
    }

    fn file(d: &Desired) -> Option<RenderedFile<'_>> {
        Some(RenderedFile {
            path: &d.path,
            content: &d.content,
            mode: d.mode,
            soa_serial: d.soa_serial,
        })
    }

    fn new_content<'c>(_: &Desired, w: &'c WriteFile) -> Option<&'c [u8]> {
        Some(&w.content)
    }
}

/// The serial on a `<number> ; serial` line, as the fact script reads it.
fn serial_in(zone: &[u8]) -> Option<u32> {
    String::from_utf8_lossy(zone).lines().find_map(|l| {
        let (number, comment) = l.split_once(';')?;
        comment
            .trim_start()
            .starts_with("serial")
            .then(|| number.trim().parse().ok())
            .flatten()
    })
}

fn write_file_script(d: &Desired, content: &[u8], notify: Option<&str>) -> String {
    // The temp file is named after its destination, so that one left by a
    // run whose server lost power (no trap runs then) is found and removed
    // by the next write of the same file; the server lock keeps writers
    // apart.
    let base = d.path.rsplit('/').next().unwrap_or_default();
    let mut s = format!(
        "dest={p}\ndir=$(dirname \"$dest\")\nmkdir -p \"$dir\"\n\
         rm -f \"$dir\"/.foobar.{b}.??????\n\
         tmp=$(mktemp \"$dir/.foobar.{b}.XXXXXX\")\ntrap 'rm -f \"$tmp\"' EXIT\ntrap 'exit 1' HUP INT TERM PIPE\n\
         cat > \"$tmp\"\n{verify}chown {o}:{g} \"$tmp\"\nchmod {mode:04o} \"$tmp\"\n",
        b = quote(base),
        p = quote(&d.path),
        o = quote(&d.owner),
        g = quote(&d.group),
        mode = d.mode,
        verify = verify_upload("\"$tmp\"", "$dest", content),
    );
    match d.validate.as_deref() {
        // The command checks the new file alone, before it goes live.
        Some(v) if v.contains("%s") => {
            s.push_str(&format!(
                "if ! {} >&2; then exit {VALIDATION_FAILED}; fi\n{}{}mv -f \"$tmp\" \"$dest\"\n",
                v.replace("%s", "\"$tmp\""),
                backup(notify),
                remember(notify),
            ));
        }
        // The command checks the whole configuration (nginx -t): put the
        // file in place, check, and put the old one back if it fails.
        Some(v) => {
            s.push_str(&format!(
                "mkdir -p {BACKUP_DIR}\nprev=$(mktemp {BACKUP_DIR}/prev.XXXXXX)\nhad=0\n\
                 if [ -e \"$dest\" ]; then cp -p \"$dest\" \"$prev\"; had=1; fi\n\
                 {keep}mv -f \"$tmp\" \"$dest\"\n\
                 if ! {v} >&2; then\n  if [ $had = 1 ]; then mv -f \"$prev\" \"$dest\"; else rm -f \"$dest\"; fi\n  exit {VALIDATION_FAILED}\nfi\n\
                 rm -f \"$prev\"\n{remember}",
                keep = backup(notify),
                remember = remember(notify),
            ));
        }
        None => {
            s.push_str(&backup(notify));
            s.push_str(&remember(notify));
            s.push_str("mv -f \"$tmp\" \"$dest\"\n");
        }
    }
    if d.path.starts_with("/etc/systemd/") {
        // systemd reads unit files only on daemon-reload.
        s.push_str("systemctl daemon-reload\n");
    }
    s
}

/// The zone as it should be written. While the rest of the zone is what
/// the server has, the server's serial is kept, so nothing changes; when
/// the content changes, the serial rises to max(today's first, old + 1).
pub fn zone_with_serial(
    rendered: &[u8],
    current_serial: Option<u32>,
    current_sha: Option<&str>,
    today: u32,
) -> Vec<u8> {
    let text = String::from_utf8_lossy(rendered);
    if let Some(serial) = current_serial {
        let same = text.replace(SOA_SERIAL_TOKEN, &serial.to_string());
        if current_sha == Some(sha256_hex(same.as_bytes()).as_str()) {
            return same.into_bytes();
        }
    }
    let first_today = today.saturating_mul(100).saturating_add(1);
    let next = match current_serial {
        Some(s) if s >= first_today => s + 1,
        _ => first_today,
    };
    text.replace(SOA_SERIAL_TOKEN, &next.to_string())
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_serial_kept_while_unchanged_and_raised_on_change() {
        let tmpl = format!("@ SOA ns1 host (\n  {SOA_SERIAL_TOKEN} ; serial\n) A 10.0.0.1\n");
        let on_server = tmpl.replace(SOA_SERIAL_TOKEN, "2026112003");
        let sha = sha256_hex(on_server.as_bytes());
        // Unchanged zone keeps the old serial, whatever the date.
        let same = zone_with_serial(tmpl.as_bytes(), Some(2026112003), Some(&sha), 20261125);
        assert_eq!(same, on_server.as_bytes());
        let serial_of = |b: Vec<u8>| serial_in(&b);
        // Changed zone on a later day starts at today's 01.
        let changed = tmpl.replace("10.0.0.1", "10.0.0.2");
        let out = zone_with_serial(changed.as_bytes(), Some(2026112003), Some(&sha), 20261125);
        assert_eq!(serial_of(out), Some(2026112501));
        // Changed twice the same day: +1.
        let out = zone_with_serial(changed.as_bytes(), Some(2026112501), Some("x"), 20261125);
        assert_eq!(serial_of(out), Some(2026112502));
        // A serial ahead of the date still only goes up.
        let out = zone_with_serial(changed.as_bytes(), Some(2030010105), Some("x"), 20261125);
        assert_eq!(serial_of(out), Some(2030010106));
        // No zone yet.
        let out = zone_with_serial(tmpl.as_bytes(), None, None, 20261125);
        assert_eq!(serial_of(out), Some(2026112501));
    }

    fn desired(path: &str, validate: Option<&str>) -> Desired {
        Desired {
            path: path.into(),
            content: b"x\n".to_vec(),
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            validate: validate.map(str::to_string),
            soa_serial: false,
        }
    }

    fn file(path: &str, validate: Option<&str>, notify: Option<&str>) -> String {
        write_file_script(&desired(path, validate), b"x\n", notify)
    }

    #[test]
    fn whole_config_validation_restores_the_previous_file() {
        let s = file(
            "/etc/nginx/sites-enabled/foobar.conf",
            Some("nginx -t"),
            Some("reload nginx"),
        );
        let check = s.find("if ! nginx -t").unwrap();
        assert!(s.find("mv -f \"$tmp\" \"$dest\"").unwrap() < check);
        assert!(s[check..].contains("mv -f \"$prev\" \"$dest\""));
        assert!(s.contains(BACKUP_DIR), "backups stay out of include folders");
        // The handler is recorded only once the file passed its check.
        assert!(s.find("pending-handlers").unwrap() > check);
    }

    #[test]
    fn file_validation_runs_before_the_rename() {
        let s = file("/etc/bind/named.conf.local", Some("named-checkconf %s"), None);
        assert!(
            s.find("named-checkconf \"$tmp\"").unwrap()
                < s.find("mv -f \"$tmp\" \"$dest\"").unwrap()
        );
    }

    #[test]
    fn uploads_are_verified_before_they_go_live() {
        let s = file("/etc/x", None, None);
        let sha = sha256_hex(b"x\n");
        assert!(s.find(&sha).unwrap() < s.find("mv -f \"$tmp\" \"$dest\"").unwrap());
        assert!(s.contains("trap 'exit 1' HUP INT TERM PIPE"));
    }

    #[test]
    fn notified_changes_keep_the_previous_version_for_the_handler() {
        let s = file("/etc/mysql/mariadb.conf.d/60-foobar.cnf", None, Some("restart mariadb"));
        let keep = s.find("/var/lib/foobar/backup/restart_mariadb").unwrap();
        assert!(keep < s.find("mv -f \"$tmp\" \"$dest\"").unwrap());
    }

    #[test]
    fn unit_files_trigger_daemon_reload() {
        assert!(file("/etc/systemd/system/app.service", None, None).contains("daemon-reload"));
        assert!(!file("/etc/x", None, None).contains("daemon-reload"));
    }
}
