//! Secrets: read from the environment, a file or a command named by the
//! inventory, kept out of every output by `redact`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backup_keys;
use crate::db_ca::{self, MemberTls};
use crate::digest::mysql_native_hash;
use crate::error::InputError;
use crate::inventory::{check_env_text, EnvValue, Loaded, Role, SecretCommand, SecretRef};
use crate::local_file::{read_capped, read_input, ReadError, MAX_INPUT_BYTES};
use crate::progress::terminal_safe;
use crate::roles::Site;
use crate::shell::{can_carry, env_escape};

/// What a secret looks like wherever it would otherwise be shown.
pub const MASK: &str = "********";

#[derive(Debug, Clone, Serialize)]
pub struct Secrets {
    pub mysql_password: String,
    /// Set when the inventory has replicas.
    pub replication_password: Option<String>,
    /// The zone's TSIG key, set when the inventory has secondaries.
    pub transfer_key: Option<String>,
    /// The load balancers' VRRP password, with a floating address.
    pub vrrp_password: Option<String>,
    /// With a backup server: its repository's password, its SSH key and
    /// the host keys of the servers it pulls from.
    pub backup: Option<BackupAccess>,
    /// The app's environment values that are secrets, by name.
    pub app_env: BTreeMap<String, String>,
    /// The database servers' certificates and keys, by server, from the
    /// CA foobar keeps (`mysql.tls_ca`); empty when masked.
    #[serde(skip)]
    pub db_tls: BTreeMap<String, MemberTls>,
    /// What reading them found worth fixing but no reason to stop (a
    /// secret file others may read), for the command to tell.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupAccess {
    /// restic's repository password.
    pub password: String,
    /// The key the backup server logs in to its sources with (OpenSSH's
    /// private key file; `public`: its authorized_keys form).
    pub private_key: String,
    pub public_key: String,
    /// known_hosts lines for the servers it pulls from, by the addresses
    /// it reaches them at.
    pub host_keys: Vec<String>,
}

impl BackupAccess {
    fn masked() -> Self {
        Self {
            password: MASK.into(),
            private_key: MASK.into(),
            public_key: format!("ssh-ed25519 {MASK} foobar-backup"),
            host_keys: Vec::new(),
        }
    }
}

impl Secrets {
    /// Placeholders, for rendering files that are only looked at.
    pub fn masked() -> Self {
        Self {
            mysql_password: MASK.to_string(),
            replication_password: Some(MASK.to_string()),
            transfer_key: Some(MASK.to_string()),
            vrrp_password: Some(MASK.to_string()),
            backup: Some(BackupAccess::masked()),
            app_env: BTreeMap::new(),
            db_tls: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// Placeholders for the inventory's secrets, after checking that each
    /// can be read: `render` shows files without ever holding a secret,
    /// but a secret that cannot be read is still bad input.
    pub fn checked_masked(inv: &Loaded) -> Result<Self, InputError> {
        let real = Self::resolve(inv)?;
        Ok(Self {
            app_env: real
                .app_env
                .keys()
                .map(|k| (k.clone(), MASK.into()))
                .collect(),
            // Its public key and the host keys it trusts are no secret.
            backup: real.backup.map(|b| BackupAccess {
                password: MASK.into(),
                private_key: MASK.into(),
                ..b
            }),
            warnings: real.warnings,
            ..Self::masked()
        })
    }

    pub fn resolve(inv: &Loaded) -> Result<Self, InputError> {
        let mysql = &inv.inventory.mysql;
        let mut reader = Reader {
            inv,
            printed: HashMap::new(),
            warnings: Vec::new(),
        };
        let r = &mut reader;
        Ok(Self {
            mysql_password: read(r, "mysql.password", &mysql.password)?,
            replication_password: mysql
                .replication_password
                .as_ref()
                .map(|source| read(r, "mysql.replication_password", source))
                .transpose()?,
            transfer_key: inv
                .inventory
                .domain
                .transfer_key
                .as_ref()
                .map(|source| read_key(r, "domain.transfer_key", source))
                .transpose()?,
            vrrp_password: inv
                .inventory
                .lb
                .vrrp_password
                .as_ref()
                .map(|source| read_vrrp_password(r, source))
                .transpose()?,
            backup: backup_access(r)?,
            app_env: app_env_secrets(r)?,
            db_tls: db_tls(inv)?,
            warnings: reader.warnings,
        })
    }

    /// The database CA's certificate, which the app servers and replicas
    /// verify the database servers by; None when masked or not networked.
    pub fn db_ca(&self) -> Option<&str> {
        self.db_tls.values().next().map(|t| t.ca.as_str())
    }

    fn values(&self) -> impl Iterator<Item = &str> {
        // A member's key is masked whole and line by line (a diff shows
        // lines).
        // A private key is masked whole and line by line (a diff shows
        // lines).
        fn with_lines(key: &str) -> impl Iterator<Item = &str> {
            std::iter::once(key).chain(
                key.lines()
                    .filter(|l| !l.is_empty() && !l.starts_with("-----")),
            )
        }
        let keys = self
            .db_tls
            .values()
            .map(|t| t.key.as_str())
            .chain(self.backup.as_ref().map(|b| b.private_key.as_str()))
            .flat_map(with_lines);
        std::iter::once(self.mysql_password.as_str())
            .chain(self.replication_password.as_deref())
            .chain(self.transfer_key.as_deref())
            .chain(self.vrrp_password.as_deref())
            .chain(self.backup.as_ref().map(|b| b.password.as_str()))
            .chain(self.app_env.values().map(String::as_str))
            .chain(keys)
            .filter(|v| !v.is_empty() && *v != MASK)
    }

    /// Every value to keep out of output: the secrets, and the hashes the
    /// database keeps of its passwords (a hash logs in as well as the
    /// password over MariaDB's native authentication). Longest first, so
    /// that a secret inside another never leaves a fragment.
    fn hidden(&self) -> Vec<String> {
        let hashes = std::iter::once(self.mysql_password.as_str())
            .chain(self.replication_password.as_deref())
            .filter(|p| !p.is_empty() && *p != MASK)
            .map(mysql_native_hash);
        // A secret with `"`, `\`, `$` or a backquote appears escaped in the
        // app's environment file, and so in its diff.
        let escaped = self.values().filter_map(|v| {
            let e = env_escape(v);
            (e != v).then_some(e)
        });
        let mut hidden: Vec<String> = self
            .values()
            .map(str::to_string)
            .chain(escaped)
            .chain(hashes)
            .collect();
        hidden.sort_by_key(|s| std::cmp::Reverse(s.len()));
        hidden
    }

    /// Replaces every secret value in `text` with the mask.
    pub fn redact(&self, text: &str) -> String {
        mask_all(&self.hidden(), text)
    }

    /// Both versions of a file, for a diff: a line of `new` that holds a
    /// secret makes the text before the secret a key (`DB_PASSWORD=`),
    /// and every line of either version that starts with a key is masked
    /// after it. So a rotated secret's old value never shows, although no
    /// longer one of the secrets. A line that is a secret alone masks both
    /// files whole.
    pub fn redact_pair(&self, old: &str, new: &str) -> (String, String) {
        let hidden = self.hidden();
        let mut keys = Vec::new();
        for line in new.lines() {
            if let Some(at) = hidden.iter().filter_map(|s| line.find(s.as_str())).min() {
                // Without its opening quote: an old value may be unquoted.
                keys.push(line[..at].trim_end_matches(['"', '\'']));
            }
        }
        let whole = keys.iter().any(|k| k.trim().is_empty());
        let old_lines: Vec<&str> = old.lines().collect();
        // A masked line of `new` that is not in `old` says so: the diff
        // still shows that a secret changed, never what it was or is.
        let mask = |text: &str, is_new: bool| -> String {
            text.split_inclusive('\n')
                .map(|line| {
                    let bare = line.trim_end_matches('\n');
                    let end = &line[bare.len()..];
                    let changed = if is_new && !old_lines.contains(&bare) {
                        " (new value)"
                    } else {
                        ""
                    };
                    match keys.iter().find(|k| bare.starts_with(**k)) {
                        _ if whole => format!("{MASK}{changed}{end}"),
                        Some(key) => format!("{key}{MASK}{changed}{end}"),
                        None => mask_all(&hidden, line),
                    }
                })
                .collect()
        };
        (mask(old, false), mask(new, true))
    }
}

/// `text` with each of `hidden` replaced by the mask.
fn mask_all(hidden: &[String], text: &str) -> String {
    hidden
        .iter()
        .fold(text.to_string(), |text, secret| text.replace(secret, MASK))
}

/// Every database server's certificate and key, made where missing:
/// each is named by its server name, its private address and, for a
/// cluster, the address the app servers reach it at.
fn db_tls(inv: &Loaded) -> Result<BTreeMap<String, MemberTls>, InputError> {
    let Some(dir) = &inv.inventory.mysql.tls_ca else {
        return Ok(BTreeMap::new());
    };
    if !inv.inventory.db_networked() {
        return Ok(BTreeMap::new());
    }
    let entry = inv.inventory.cluster_address();
    let members: Vec<(String, Vec<std::net::IpAddr>)> =
        [Role::Db, Role::DbReplica, Role::DbCluster]
            .into_iter()
            .flat_map(|r| inv.inventory.servers_with(r))
            .map(|s| {
                let own = s.private_address().into_iter();
                (s.name.to_string(), own.chain(entry).collect())
            })
            .collect();
    db_ca::ensure(&inv.local_path(&dir.0), &members).map_err(|e| {
        inv.error_at(
            "tls_ca",
            format!("the database servers' certificate authority: {e}: name a folder on this machine that foobar may write"),
        )
    })
}

/// The secrets of `app.env`, read and checked.
fn app_env_secrets(reader: &mut Reader) -> Result<BTreeMap<String, String>, InputError> {
    let inv = reader.inv;
    let mut out = BTreeMap::new();
    for (name, value) in &inv.inventory.app.env {
        let EnvValue::Secret(source) = value else {
            continue;
        };
        let key = format!("app.env.{name}");
        let secret = read_secret(reader, &key, source)?;
        if secret.is_empty() || check_env_text(&secret).is_err() {
            // Never echo the value.
            return Err(inv.error_at(
                &key,
                format!(
                    "the value from {source} is empty or not usable: one line of printable characters, at most 4096 bytes (no newline, tab or other control character)"
                ),
            ));
        }
        out.insert(name.to_string(), secret);
    }
    Ok(out)
}

/// One password, checked.
fn read(reader: &mut Reader, key: &str, source: &SecretRef) -> Result<String, InputError> {
    let value = read_secret(reader, key, source)?;
    check_password(reader.inv, key, source, &value)?;
    Ok(value)
}

/// A TSIG key: base64 of at least 16 bytes, as BIND reads it.
fn read_key(reader: &mut Reader, key: &str, source: &SecretRef) -> Result<String, InputError> {
    let value = read_secret(reader, key, source)?;
    let base64 = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    if value.len() < 24 || value.len() > 256 || value.len() % 4 != 0 || !base64 {
        // Never echo the value.
        return Err(reader.inv.error_at(
            key,
            format!(
                "the key from {source} is not usable: give base64 of 16 or more random bytes (`openssl rand -base64 32`)"
            ),
        ));
    }
    Ok(value)
}

/// The backup server's password, key and trust, when there is one.
fn backup_access(reader: &mut Reader) -> Result<Option<BackupAccess>, InputError> {
    let inv = reader.inv;
    let Some(backup) = &inv.inventory.backup else {
        return Ok(None);
    };
    let password = read_secret(reader, "backup.password", &backup.password)?;
    if password.len() < 16 {
        // Never echo the value.
        return Err(inv.error_at(
            "backup.password",
            format!("the backup password from {} is too short: give 16 or more random characters (`openssl rand -base64 32`); it encrypts every backup", backup.password),
        ));
    }
    let key = backup_keys::ensure(&inv.local_path(&backup.keys.0)).map_err(|e| {
        inv.error_at(
            "keys",
            format!(
                "the backup server's key: {e}: name a folder on this machine that foobar may write"
            ),
        )
    })?;
    let known_hosts = inv
        .inventory
        .ssh
        .known_hosts
        .as_ref()
        .map(|p| inv.local_path(&p.0))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".ssh/known_hosts"))
        })
        .unwrap_or_default();
    let mut host_keys = Vec::new();
    for source in inv.inventory.backup_sources() {
        let reached_at = source
            .private_address()
            .map_or_else(|| source.address.to_string(), |a| a.to_string());
        let found = backup_keys::host_keys(
            &known_hosts,
            &source.address.to_string(),
            source.ssh.port.map(|p| p.0),
            &reached_at,
        )
        .map_err(|e| inv.error_at("backup:", format!("reading host keys: {e}")))?;
        // None yet (a first run that records them, accept_new_host_keys):
        // the backup server refuses that source until the next provision.
        host_keys.extend(found);
    }
    Ok(Some(BackupAccess {
        password,
        private_key: key.private,
        public_key: key.public,
        host_keys,
    }))
}

/// keepalived reads 8 characters of a VRRP password and ignores the rest:
/// a longer one would not be the secret it seems. Its configuration
/// takes `#` and `!` anywhere as the start of a comment, and quotes and
/// backslashes as syntax: those cannot be in it.
fn read_vrrp_password(reader: &mut Reader, source: &SecretRef) -> Result<String, InputError> {
    let value = read_secret(reader, "lb.vrrp_password", source)?;
    if !vrrp_password_usable(&value) {
        // Never echo the value.
        return Err(reader.inv.error_at(
            "lb.vrrp_password",
            format!(
                "the VRRP password from {source} is not usable: give 6 to 8 printable characters without spaces, `#`, `!`, quotes or backslashes (keepalived reads 8; `openssl rand -base64 6`)"
            ),
        ));
    }
    Ok(value)
}

fn vrrp_password_usable(value: &str) -> bool {
    let usable = |c: char| c.is_ascii_graphic() && !matches!(c, '#' | '!' | '"' | '\\' | '\'');
    (6..=8).contains(&value.len()) && value.chars().all(usable)
}

/// Reads the inventory's secrets: each command once a run, however many
/// keys name it, and what is worth a warning gathered on the way.
struct Reader<'a> {
    inv: &'a Loaded,
    /// What each `cmd:` command printed, by its command line.
    printed: HashMap<String, String>,
    warnings: Vec<String>,
}

/// How long a secret's command may take: a password manager's or a
/// vault's round trip, not a prompt nobody answers.
const COMMAND_TIME_LIMIT: Duration = Duration::from_secs(30);

/// One secret, from the environment, a file or a command; `key` names it
/// in errors.
fn read_secret(reader: &mut Reader, key: &str, source: &SecretRef) -> Result<String, InputError> {
    let inv = reader.inv;
    let value = match source {
        SecretRef::Env(name) => std::env::var(name).map_err(|_| {
            inv.error_at(
                key,
                format!("the environment variable {name} is not set: export it, or use file:PATH"),
            )
        })?,
        SecretRef::File(p) => {
            let path = inv.local_path(p);
            let text = read_input(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8 text".into()))
                .map_err(|why| {
                    inv.error_at(key, format!("cannot read {}: {why}", path.display()))
                })?;
            if let Some(mode) = readable_by_others(&path) {
                let path = path.display();
                reader.warnings.push(format!(
                    "{key}: {path} is readable by its group or others (mode {mode:04o}): `chmod 600 {path}`; ssh would refuse a key file this open"
                ));
            }
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        SecretRef::Command(command) => {
            if let Some(value) = reader.printed.get(command.line()) {
                return Ok(value.clone());
            }
            // From the inventory's folder: its relative paths are relative
            // to the inventory, as `file:` paths are.
            let dir = inv.local_path(Path::new("."));
            let value = run_secret_command(command, &dir, COMMAND_TIME_LIMIT).map_err(|e| {
                inv.error_at(key, format!("the command `{}` {e}", command.line()))
                    .with_help(e.help())
            })?;
            reader
                .printed
                .insert(command.line().to_string(), value.clone());
            value
        }
    };
    Ok(value)
}

/// The permission bits of a regular file that its group or others may
/// read; None for a private file, a pipe or a device.
fn readable_by_others(path: &Path) -> Option<u32> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o044 != 0).then_some(mode)
}

/// Why a secret's command gave no secret. Never holds what it printed on
/// standard output: that may be the secret, or part of it.
#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error("cannot start: `{0}` was not found")]
    NotFound(String),
    #[error("could not be run: {0}")]
    CannotRun(std::io::Error),
    #[error("failed ({status}){}", shown_after_colon(.error_output))]
    Failed {
        status: ExitStatus,
        /// The last lines of its error output, terminal-safe.
        error_output: Vec<String>,
    },
    #[error("did not finish within {0:?}")]
    TimedOut(Duration),
    #[error("printed more than {MAX_INPUT_BYTES} bytes, the most foobar reads")]
    TooMuchOutput,
    #[error("printed output that could not be read: {0}")]
    Unreadable(std::io::Error),
    #[error("printed something that is not UTF-8 text")]
    NotUtf8,
    #[error("printed nothing")]
    Empty,
}

impl CommandError {
    /// What to do about it.
    fn help(&self) -> &'static str {
        match self {
            CommandError::NotFound(_) => "install the program, or write its full path: the command runs on this machine, without a shell",
            CommandError::CannotRun(_) => "give a program this user may run",
            CommandError::Failed { .. } | CommandError::Unreadable(_) => "run the command yourself, from the inventory's folder: it must print the secret and exit 0",
            CommandError::TimedOut(_) => "it runs without input: sign in or unlock first (`op signin`, gpg-agent), then run foobar again",
            CommandError::TooMuchOutput => "print the secret alone (with sops: `--extract` one value)",
            CommandError::NotUtf8 => "print the secret as text (a binary key as base64)",
            CommandError::Empty => "it must print the secret on standard output",
        }
    }
}

/// Lines shown after a message's colon, one a line; nothing when there
/// are none.
fn shown_after_colon(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!(":\n{}", lines.join("\n"))
}

/// How many of a failed command's last error lines are shown: where it
/// says why, without pages of it.
const ERROR_LINES_SHOWN: usize = 5;
/// The longest error line shown, in characters.
const ERROR_LINE_CHARS: usize = 200;
/// How much of a command's error output is kept; the rest is read and
/// dropped, so that a talkative command is not stopped by a full pipe.
const ERROR_OUTPUT_KEPT: u64 = 64 * 1024;

/// Runs a secret's command from `dir` (no shell, no input) and returns
/// what it printed, one trailing newline trimmed.
fn run_secret_command(
    command: &SecretCommand,
    dir: &Path,
    limit: Duration,
) -> Result<String, CommandError> {
    // A relative program path is taken from `dir` too, whatever the
    // platform's spawn does with it.
    let program = match command.program() {
        p if p.contains('/') => dir.join(p),
        p => p.into(),
    };
    let mut child = Command::new(program)
        .args(command.args())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CommandError::NotFound(command.program().into()),
            _ => CommandError::CannotRun(e),
        })?;
    // Both pipes are read while it runs: one left full would stop it.
    let stdout = read_in_background(child.stdout.take().expect("piped"), read_capped);
    let stderr = read_in_background(child.stderr.take().expect("piped"), |mut pipe| {
        let mut kept = Vec::new();
        let _ = pipe.by_ref().take(ERROR_OUTPUT_KEPT).read_to_end(&mut kept);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        kept
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().map_err(CommandError::CannotRun)? {
            Some(status) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::TimedOut(limit));
            }
        }
    };
    // A program it started in the background may hold the pipes open
    // past its end: the time limit still holds.
    let left = || deadline.saturating_duration_since(Instant::now());
    let output = stdout
        .recv_timeout(left())
        .map_err(|_| CommandError::TimedOut(limit))?
        .map_err(|e| match e {
            ReadError::TooBig => CommandError::TooMuchOutput,
            ReadError::Io(e) => CommandError::Unreadable(e),
        });
    // Too much output is told first: it may have ended the command (a
    // closed pipe) and made it fail.
    let output = match output {
        Err(e @ CommandError::TooMuchOutput) => return Err(e),
        other => other,
    };
    if !status.success() {
        let error_output = stderr.recv_timeout(left()).unwrap_or_default();
        return Err(CommandError::Failed {
            status,
            error_output: last_lines(&error_output),
        });
    }
    let text = String::from_utf8(output?).map_err(|_| CommandError::NotUtf8)?;
    let value = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(CommandError::Empty);
    }
    Ok(value.to_string())
}

/// `read` run over `pipe` on a thread of its own; its result arrives on
/// the channel.
fn read_in_background<P: Send + 'static, T: Send + 'static>(
    pipe: P,
    read: fn(P) -> T,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver gone (the command timed out) leaves nothing to do.
        let _ = tx.send(read(pipe));
    });
    rx
}

/// The last non-blank lines of a command's error output, safe for a
/// terminal and cut to a readable length.
fn last_lines(error_output: &[u8]) -> Vec<String> {
    let text = terminal_safe(&String::from_utf8_lossy(error_output));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let shown = &lines[lines.len().saturating_sub(ERROR_LINES_SHOWN)..];
    let mut out = Vec::new();
    if shown.len() < lines.len() {
        out.push(format!(
            "({} earlier lines left out)",
            lines.len() - shown.len()
        ));
    }
    out.extend(shown.iter().map(|line| {
        let line = line.trim_end();
        match line.char_indices().nth(ERROR_LINE_CHARS) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_string(),
        }
    }));
    out
}

/// The password lands in the app's environment file (quoted as systemd and
/// sh read it), MariaDB's account by its hash, a replica's CHANGE MASTER
/// as an escaped SQL string: any printable character is carried exactly,
/// a control character (a newline, a tab) is not.
fn check_password(
    inv: &Loaded,
    key: &str,
    source: &SecretRef,
    value: &str,
) -> Result<(), InputError> {
    let length = value.chars().count();
    if !(12..=128).contains(&length) || !value.chars().all(can_carry) {
        return Err(inv.error_at(
            key,
            format!(
                "the password from {source} is not usable: use 12 to 128 printable characters, no newline, tab or other control character (`openssl rand -base64 24` makes one)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_every_occurrence() {
        let s = Secrets {
            mysql_password: "s3cret-Value-42".into(),
            replication_password: Some("Repl-Value-77-x".into()),
            transfer_key: Some("dGhpcyBpcyBhIFRTSUcga2V5IQ==".into()),
            vrrp_password: None,
            backup: None,
            app_env: BTreeMap::new(),
            db_tls: BTreeMap::new(),
            warnings: Vec::new(),
        };
        assert_eq!(
            s.redact("a=s3cret-Value-42 b=s3cret-Value-42 c=Repl-Value-77-x d=dGhpcyBpcyBhIFRTSUcga2V5IQ=="),
            "a=******** b=******** c=******** d=********"
        );
    }

    #[test]
    fn redact_hides_password_hashes_and_nested_secrets_whole() {
        let s = Secrets {
            mysql_password: "password".into(),
            replication_password: None,
            transfer_key: None,
            vrrp_password: None,
            backup: None,
            app_env: BTreeMap::from([("API".into(), "xx-password-yy".into())]),
            db_tls: BTreeMap::new(),
            warnings: Vec::new(),
        };
        // SELECT PASSWORD('password') in MariaDB.
        assert_eq!(
            s.redact("auth *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19 key xx-password-yy"),
            "auth ******** key ********"
        );
    }

    #[test]
    fn a_secret_escaped_in_the_environment_file_is_masked_there_too() {
        let password = r#"pa"ss\w$rd`it"#;
        let s = Secrets {
            mysql_password: password.into(),
            app_env: BTreeMap::from([("API".into(), "$api-key".into())]),
            ..Secrets::masked()
        };
        let file = format!(
            "DB_PASSWORD={}\nAPI={}\n",
            crate::shell::env_quote(password),
            crate::shell::env_quote("$api-key")
        );
        assert_eq!(
            s.redact(&file),
            "DB_PASSWORD=\"********\"\nAPI=\"********\"\n"
        );
        let (old, new) = s.redact_pair("DB_PASSWORD=\"old-one\"\nAPI=\"old\"\n", &file);
        assert_eq!(old, "DB_PASSWORD=********\nAPI=********\n");
        assert_eq!(
            new,
            "DB_PASSWORD=******** (new value)\nAPI=******** (new value)\n"
        );
    }

    #[test]
    fn a_members_key_is_hidden_whole_and_line_by_line_and_its_old_one_too() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
        let s = Secrets {
            db_tls: BTreeMap::from([(
                "db1".into(),
                MemberTls {
                    ca: "CA".into(),
                    cert: "CERT".into(),
                    key: key.into(),
                },
            )]),
            ..Secrets::masked()
        };
        assert!(!s.redact(key).contains("MIGHAgEA"));
        assert!(!s
            .redact("line: MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg")
            .contains("MIGH"));
        let old = "-----BEGIN PRIVATE KEY-----\nOLDKEYOLDKEYOLDKEYOLDKEYOLDKEY\n-----END PRIVATE KEY-----\n";
        let (old, new) = s.redact_pair(old, key);
        assert!(
            !old.contains("OLDKEY") && !new.contains("MIGH"),
            "{old}{new}"
        );
    }

    #[test]
    fn a_rotated_secret_shows_neither_its_old_nor_its_new_value_in_a_diff() {
        let s = Secrets {
            mysql_password: "New-Password-2".into(),
            replication_password: None,
            transfer_key: Some("a2V5IG9uIGl0cyBvd24gbGluZQ==".into()),
            vrrp_password: None,
            backup: None,
            app_env: BTreeMap::new(),
            db_tls: BTreeMap::new(),
            warnings: Vec::new(),
        };
        let (old, new) = s.redact_pair(
            "A=1\nDB_PASSWORD=\"Old-Password-1\"\nB=2\n",
            "A=1\nDB_PASSWORD=\"New-Password-2\"\nB=3\n",
        );
        assert_eq!(old, "A=1\nDB_PASSWORD=********\nB=2\n");
        assert_eq!(new, "A=1\nDB_PASSWORD=******** (new value)\nB=3\n");
        // An old value without quotes is masked all the same.
        let (old, _) = s.redact_pair("DB_PASSWORD=stale\n", "DB_PASSWORD=\"New-Password-2\"\n");
        assert_eq!(old, "DB_PASSWORD=********\n");
        // A file that is a secret alone is masked whole, old and new.
        let (old, new) = s.redact_pair("b2xkIGtleQ==\n", "a2V5IG9uIGl0cyBvd24gbGluZQ==\n");
        assert_eq!(
            (old.as_str(), new.as_str()),
            ("********\n", "******** (new value)\n")
        );
        // Unchanged, a secret's line is the same on both sides.
        let (old, new) = s.redact_pair(
            "DB_PASSWORD=\"New-Password-2\"\n",
            "DB_PASSWORD=\"New-Password-2\"\n",
        );
        assert_eq!(old, new);
    }

    #[test]
    fn weak_or_odd_passwords_are_refused_without_echo() {
        let src = SecretRef::Env("P".into());
        let inv = crate::inventory::load(std::path::Path::new("inventory/lab.yml")).unwrap();
        for bad in [
            "short",
            "a newline\nin-it-long",
            "a\ttab-in-it-long",
            "\u{1b}[2J-escape-long",
        ] {
            let e = check_password(&inv, "mysql.password", &src, bad).unwrap_err();
            assert!(!e.to_string().contains(bad), "{e}");
            assert!(e.line > 0, "points at mysql.password: {e}");
        }
        // Any printable character: `openssl rand -base64 24`, Django's
        // secret key alphabet, quotes and backslashes, spaces.
        for good in [
            "Abcdefgh1234",
            "q0/+Vn3xZ8rT2kL9w+M/aB4cD5eF6gH7",
            "$x^!(=#-_)*&%@+j9",
            r#"it's "quoted" \ `tick` $HOME ${PATH}"#,
            " spaces around ",
        ] {
            assert!(
                check_password(&inv, "mysql.password", &src, good).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn a_vrrp_password_keepalived_would_cut_at_a_comment_is_refused() {
        for good in ["Ab3+/xYz", "q0/+Vn", "a-b_c.d="] {
            assert!(vrrp_password_usable(good), "{good}");
        }
        for bad in [
            "ab#cdefg",
            "ab!cdefg",
            "ab\"cdefg",
            "ab\\cdefg",
            "ab'cdefg",
            "ab cdefg",
            "short",
            "ninechars",
        ] {
            assert!(!vrrp_password_usable(bad), "{bad}");
        }
    }

    /// The lab inventory in `dir`, its password written as `password`
    /// (any lines of the `mysql:` section after it).
    fn inventory_in(dir: &Path, password: &str) -> Loaded {
        let text = std::fs::read_to_string("inventory/lab.yml")
            .unwrap()
            .replace(
                "../apps/python",
                concat!(env!("CARGO_MANIFEST_DIR"), "/apps/python"),
            )
            .replace(
                "password: file:/var/lib/foobar/lab/secrets/mysql_password",
                password,
            );
        let path = dir.join("inventory.yml");
        std::fs::write(&path, text).unwrap();
        crate::inventory::load(&path).unwrap()
    }

    fn command(line: &str) -> SecretCommand {
        match SecretRef::parse(&format!("cmd:{line}")).unwrap() {
            SecretRef::Command(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn run(line: &str) -> Result<String, CommandError> {
        run_secret_command(&command(line), Path::new("."), COMMAND_TIME_LIMIT)
    }

    #[test]
    fn a_command_line_is_split_into_words_as_a_shell_splits_them() {
        let op = command("op read op://Prod/db/password");
        assert_eq!(
            (op.program(), op.args()),
            (
                "op",
                &["read".to_string(), "op://Prod/db/password".into()][..]
            )
        );
        let sops = command(r#"sops -d --extract '["db"]["password"]' "my secrets.yaml""#);
        assert_eq!(
            sops.args(),
            [
                "-d",
                "--extract",
                r#"["db"]["password"]"#,
                "my secrets.yaml"
            ]
        );
        // Written back as it was written, for errors and the cache.
        let written = r#"cmd:sops -d --extract '["db"]["password"]' secrets.yaml"#;
        assert_eq!(SecretRef::parse(written).unwrap().to_string(), written);
        assert!(SecretRef::names_a_source("cmd:pass show foobar/db"));
        // A digit alone is an argument, not a redirection.
        assert_eq!(command("printf %s 2").args(), ["%s", "2"]);
    }

    #[test]
    fn a_command_line_that_needs_a_shell_or_is_broken_is_refused() {
        for (line, expect) in [
            ("", "needs a command line"),
            ("   ", "needs a command line"),
            ("printf 'abc", "quote left open"),
            ("printf abc\\", "ends with"),
            ("sops -d s.yaml | yq .db", "`|` needs a shell"),
            ("pass show db > out", "`>` needs a shell"),
            ("pass show db 2>&1", "`2>&1` needs a shell"),
            ("pass show db && true", "`&&` needs a shell"),
            ("pass show\ndb", "one line"),
        ] {
            let e = SecretRef::parse(&format!("cmd:{line}")).unwrap_err();
            assert!(e.contains(expect), "{line:?}: {e}");
        }
    }

    #[test]
    fn a_command_prints_the_secret_with_one_trailing_newline_trimmed() {
        assert_eq!(run("printf %s s3cret").unwrap(), "s3cret");
        assert_eq!(run(r"printf 's3cret\n'").unwrap(), "s3cret");
        assert_eq!(run(r"printf 's3cret\r\n'").unwrap(), "s3cret");
        assert_eq!(run(r"printf 'two\nlines\n\n'").unwrap(), "two\nlines\n");
    }

    #[test]
    fn a_command_runs_in_the_folder_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db_password"), "from-the-folder\n").unwrap();
        let read = run_secret_command(&command("cat db_password"), dir.path(), COMMAND_TIME_LIMIT);
        assert_eq!(read.unwrap(), "from-the-folder");
        // A program named by a relative path is found there too.
        let printf = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join("printf"))
            .find(|p| p.is_file())
            .unwrap();
        std::os::unix::fs::symlink(printf, dir.path().join("say")).unwrap();
        let read = run_secret_command(
            &command("./say %s from-the-folder"),
            dir.path(),
            COMMAND_TIME_LIMIT,
        );
        assert_eq!(read.unwrap(), "from-the-folder");
    }

    #[test]
    fn a_failing_command_is_told_with_its_error_output_never_its_output() {
        // The value is computed, so that the command line does not hold it.
        let failures = [
            (
                "sh -c 'echo value-$((6*7))-x; echo vault is sealed >&2; exit 3'",
                "failed (exit status: 3):\nvault is sealed",
            ),
            (
                "sh -c 'echo value-$((6*7))-x; kill -9 $$'",
                "failed (signal: 9",
            ),
            (
                "foobar-no-such-program --flag",
                "`foobar-no-such-program` was not found",
            ),
            ("printf ''", "printed nothing"),
            (r"printf '\n'", "printed nothing"),
            (r"sh -c 'printf value-$((6*7))-x\\377'", "not UTF-8"),
            ("yes", "printed more than 1048576 bytes"),
        ];
        for (line, expect) in failures {
            let e = run(line).unwrap_err();
            let message = format!("{e} ({})", e.help());
            assert!(message.contains(expect), "{line}: {message}");
            assert!(!message.contains("value-42-x"), "{line}: {message}");
        }
    }

    #[test]
    fn a_failing_commands_error_output_is_cut_to_its_last_lines() {
        let e = run("sh -c 'for i in 1 2 3 4 5 6 7 8; do echo line$i >&2; done; exit 1'")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(":\n(3 earlier lines left out)\nline4\nline5\nline6\nline7\nline8"),
            "{e}"
        );
        let e = run("sh -c 'printf \"\\033[2J%0300d\\n\" 0 >&2; exit 1'")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\u{1b}') && e.contains("\\u{1b}[2J"), "{e}");
        assert!(e.ends_with("0…"), "{e}");
    }

    #[test]
    fn a_command_that_runs_too_long_is_stopped() {
        let start = Instant::now();
        let e = run_secret_command(
            &command("sleep 20"),
            Path::new("."),
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(matches!(e, CommandError::TimedOut(_)), "{e}");
        assert!(e.to_string().contains("did not finish within 200ms"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_command_runs_once_a_run_from_the_inventorys_folder_and_its_value_is_masked() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = "cmd:sh -c 'echo ran >> runs; echo Value-$((6*7))-secret'";
        let inv = inventory_in(
            dir.path(),
            &format!("password: {cmd}\n  replication_password: {cmd}"),
        );
        let secrets = Secrets::resolve(&inv).unwrap();
        assert_eq!(secrets.mysql_password, "Value-42-secret");
        assert_eq!(
            secrets.replication_password.as_deref(),
            Some("Value-42-secret")
        );
        let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
        assert_eq!(runs, "ran\n", "once, in the inventory's folder");
        assert_eq!(secrets.redact("pw=Value-42-secret"), "pw=********");
    }

    #[test]
    fn a_failing_command_is_bad_input_at_its_key_without_its_value() {
        let dir = tempfile::tempdir().unwrap();
        for (password, expect) in [
            (
                "cmd:sh -c 'echo Value-$((6*7))-secret; exit 4'",
                "failed (exit status: 4)",
            ),
            // Read, but not a usable password: tabs cannot be carried.
            (
                "cmd:sh -c 'printf \"Value\\t$((6*7))\\tsecret\"'",
                "is not usable",
            ),
        ] {
            let inv = inventory_in(dir.path(), &format!("password: {password}"));
            let e = Secrets::resolve(&inv).unwrap_err();
            let line = inv.document.sources[0]
                .text
                .lines()
                .position(|l| l.contains("password: cmd:"))
                .unwrap()
                + 1;
            assert_eq!((e.line, e.column), (line, 13), "{e}");
            assert!(e.message.starts_with("mysql.password: "), "{e}");
            assert!(e.to_string().contains(expect), "{e}");
            assert!(
                !e.to_string().contains("Value-42") && !e.to_string().contains("Value\t42"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_secret_file_others_may_read_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db_password");
        std::fs::write(&file, "a-long-enough-password\n").unwrap();
        let inv = inventory_in(dir.path(), "password: file:db_password");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let warnings = Secrets::resolve(&inv).unwrap().warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let shown = file.display().to_string();
        assert!(
            warnings[0].starts_with("mysql.password: ")
                && warnings[0].contains("(mode 0640)")
                && warnings[0].contains(&format!("`chmod 600 {shown}`")),
            "{warnings:?}"
        );
        // render's placeholders carry the warning too.
        assert_eq!(Secrets::checked_masked(&inv).unwrap().warnings, warnings);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Secrets::resolve(&inv).unwrap().warnings.is_empty());
    }
}
