//! Checked values: each is validated while it is parsed, inside the
//! deserializer, so that a refused value is reported at its own line and
//! column.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

/// Deserializes a string and checks it inside the deserializer's visitor,
/// so that a refused value is reported at its own line and column.
pub(super) fn checked_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        check: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.check)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { expecting, check })
}

/// Defines a string newtype whose value is checked while it is parsed,
/// and kept as written or in the form `$normal` gives it.
macro_rules! checked_string {
    (@normal $s:ident) => { $s.to_string() };
    (@normal $s:ident, $normal:expr) => { ($normal)($s) };
    ($(#[$doc:meta])* $name:ident, $check:expr $(, $normal:expr)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub(super) String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| Self(checked_string!(@normal s $(, $normal)?)))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                checked_str(d, "a string", Self::parse)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// One DNS label (server names, the `www` host).
    Label,
    check_label
);
checked_string!(
    /// A fully qualified domain name without the trailing dot.
    DomainName,
    |s| {
        if s.len() > 1 && s.ends_with('.') {
            return Err(format!(
                "`{}` ends with a dot: drop the trailing dot (foobar writes the zone's names fully qualified itself)",
                printable(s)
            ));
        }
        if s.len() > 253 || !s.contains('.') {
            return Err(format!(
                "`{}` is not a domain name: write it like `foobar.com`",
                printable(s)
            ));
        }
        s.split('.').try_for_each(check_label)
    },
    // DNS names are case-insensitive: kept as a zone file and a
    // certificate write them.
    str::to_ascii_lowercase
);
checked_string!(
    /// The name of a record of `domain.records`: `@` (the zone itself), a
    /// name relative to the zone (`blog`, `_dmarc`, `mail._domainkey`), or
    /// a full name with a trailing dot. Whether it is inside the zone is
    /// checked with the zone (`records`).
    RecordName,
    |s| {
        if s == "@" {
            return Ok(());
        }
        check_record_target(s).map_err(|_| {
            format!(
                "`{}` is not a record name: write `@` for the zone itself, a name in the zone like `blog` or `_dmarc`, or a full name with a trailing dot like `blog.foobar.com.` (letters, digits, `-` and `_`)",
                printable(s)
            )
        })
    }
);
checked_string!(
    /// The value of a record of `domain.records`, parsed by its type
    /// (`records`): one line.
    RecordValue,
    |s| {
        if s.trim().is_empty() || s.len() > 4096 || s.chars().any(|c| c.is_control()) {
            return Err(
                "a record's value must be one line of text (at most 4096 bytes), like `10 mail.example.net.` for an MX record".into(),
            );
        }
        Ok(())
    }
);
checked_string!(
    /// A user name on the server.
    UnixName,
    |s| {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a valid user name: lowercase letters, digits, `_` and `-`, at most 32",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// A MariaDB database or user name.
    SqlName,
    |s| {
        let ok = (1..=32).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a valid database name: letters, digits and `_`, at most 32",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// An absolute path on a server.
    ServerPath,
    check_server_path
);
checked_string!(
    /// The app server's unix socket: an absolute path in a folder under /run.
    RunSocket,
    |s| {
        check_server_path(s)?;
        let rest = s.strip_prefix("/run/").unwrap_or("");
        if rest.split('/').count() == 2 {
            Ok(())
        } else {
            Err(format!(
                "app.socket `{}` must be a file in a folder of /run, like /run/foobar/app.sock",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// One plain file or folder name (no `/`, no `..`).
    RelativeName,
    |s| {
        let ok = !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!("`{}` must be one plain folder name", printable(s)))
        }
    }
);
checked_string!(
    /// The path of a URL on the site, like `/healthz`: it reaches HAProxy's
    /// and nginx's configs, so only URL path characters.
    UrlPath,
    |s| {
        let ok = s.starts_with('/')
            && s.len() <= 200
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-~%".contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a URL path: write it like /healthz (letters, digits, / . _ - ~ %)",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// A path inside the code base (`public/index.php`, `media/uploads`):
    /// relative, plain characters, never climbing out with `..`.
    ReleasePath,
    |s| {
        let plain = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
        let climbs = s.split('/').any(|p| p == ".." || p == "." || p.is_empty());
        if s.is_empty() || s.len() > 200 || !plain || s.starts_with('/') || climbs {
            return Err(format!(
                "`{}` must be a path inside the release, like `media` or `public/index.php` (no leading /, no `..`)",
                printable(s)
            ));
        }
        Ok(())
    }
);
checked_string!(
    /// The folder of the release nginx serves at `/`: `.` (the release
    /// itself, a PHP code base) or a path inside it (`public`).
    WebRoot,
    |s| {
        if s == "." || ReleasePath::parse(s).is_ok() {
            return Ok(());
        }
        Err(format!(
            "`{}` must be `.` (the release itself) or a folder inside the release, like `public` (no leading /, no `..`)",
            printable(s)
        ))
    }
);
checked_string!(
    /// Where a folder is served on the site, like `/static/`: a clean URL
    /// path that ends with `/`, so that nginx's `alias` never reaches past
    /// the folder (`/static../`).
    UrlPrefix,
    |s| {
        let inner = s.strip_prefix('/').and_then(|s| s.strip_suffix('/'));
        let clean = inner.is_some_and(|inner| {
            inner.split('/').all(|seg| {
                !seg.is_empty()
                    && !seg.starts_with('.')
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
            })
        });
        if clean && s.len() <= 200 {
            return Ok(());
        }
        Err(format!(
            "`{}` is not a URL prefix: write it like /static/ or /media/uploads/ (starting and ending with /; letters, digits, . _ ~ -; no empty, `.` or `..` part, none hidden)",
            printable(s)
        ))
    }
);
checked_string!(
    /// A size as nginx and PHP write it: a whole number and K, M or G.
    ByteSize,
    |s| {
        let (number, unit) = s.split_at(if s.is_ascii() { s.len().saturating_sub(1) } else { 0 });
        let ok = matches!(unit, "K" | "M" | "G" | "k" | "m" | "g")
            && (1..=6).contains(&number.len())
            && number.chars().all(|c| c.is_ascii_digit())
            && number.parse::<u32>().is_ok_and(|n| n > 0);
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a size: write a whole number and K, M or G, like 16M",
                printable(s)
            ))
        }
    },
    // PHP reads only upper-case units; nginx reads both.
    str::to_ascii_uppercase
);
checked_string!(
    /// gunicorn's WSGI entry point: `module.path:callable`.
    WsgiEntry,
    |s| {
        let ident = |p: &str| {
            !p.is_empty()
                && !p.starts_with(|c: char| c.is_ascii_digit())
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        match s.split_once(':') {
            Some((module, callable)) if module.split('.').all(ident) && ident(callable) => Ok(()),
            _ => Err(format!(
                "`{}` is not a WSGI entry point: write `module:callable`, like `mysite.wsgi:application`",
                printable(s)
            )),
        }
    }
);
checked_string!(
    /// What of a git code base to deploy: a branch, a tag or a commit, as
    /// `git rev-parse` takes it (never an option, never a revision range).
    GitRef,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 255
            && !s.starts_with(['-', '/', '.'])
            && !s.ends_with(['/', '.'])
            && !s.ends_with(".lock")
            && !s.contains("..")
            && !s.contains("@{")
            && !s.contains("//")
            && s != "@"
            && !s
                .chars()
                .any(|c| c.is_ascii_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a git branch, tag or commit: write one like `main`, `v1.4` or a commit's hash",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// An environment variable's name.
    EnvName,
    |s| {
        let ok = (1..=64).contains(&s.len())
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "`{}` is not an environment variable name: letters, digits and `_`",
                printable(s)
            ));
        }
        // foobar sets these from `mysql` and where the database runs.
        const DATABASE: [&str; 6] = ["DB_NAME", "DB_USER", "DB_PASSWORD", "DB_HOST", "DB_PORT", "DB_SOCKET"];
        if DATABASE.contains(&s) {
            return Err(format!(
                "foobar sets {s} itself (from `mysql` and the database's server): leave it out of app.env"
            ));
        }
        Ok(())
    }
);
checked_string!(
    /// A Debian package name.
    PackageName,
    |s| {
        let ok = (2..=100).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a Debian package name: lowercase letters, digits, `+`, `-` and `.`",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// A command the app runs on the server (`app.build`,
    /// `app.release_command`): one line, run by `sh -c` in the release.
    AppCommand,
    |s| {
        if s.trim().is_empty() || s.len() > 1000 || s.chars().any(|c| c.is_control()) {
            return Err(format!(
                "`{}` must be one line of shell, like `python manage.py migrate --noinput`",
                printable(s)
            ));
        }
        Ok(())
    }
);

/// A glob over a code base's paths: `*` stays within a folder (as in
/// .gitignore); `**` crosses folders.
pub fn compile_glob(s: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(s).literal_separator(true).build()
}

checked_string!(
    /// Files of the code base a build or release command reads, as a glob
    /// over the release's paths (`**/migrations/*.py`, `static/**`):
    /// relative, never climbing out with `..`.
    InputGlob,
    |s| {
        let climbs = s.split('/').any(|p| p == "..");
        if s.is_empty() || s.len() > 200 || s.starts_with('/') || climbs || s.chars().any(char::is_control) {
            return Err(format!(
                "`{}` must be a glob of paths in the code base, like `**/migrations/*.py` or `static/**` (no leading /, no `..`)",
                printable(s)
            ));
        }
        compile_glob(s).map(|_| ()).map_err(|e| {
            format!("`{}` is not a glob: {}", printable(s), e.kind())
        })
    }
);

checked_string!(
    /// The name of one of the app's processes or scheduled jobs (a
    /// Procfile's names: `worker`, `clock`): its units are named by it.
    ProcessName,
    |s| {
        let ok = (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(format!(
                "`{}` is not a process name: lowercase letters, digits, `_` and `-`, starting with a letter, at most 40",
                printable(s)
            ));
        }
        match s {
            "web" => Err("`web` is the app server itself (app.kind runs it): name a process by what it does, like `worker` or `clock`".into()),
            "release" => Err("a Procfile's `release` command is app.release_command here (run once per release, before it goes live)".into()),
            _ => Ok(()),
        }
    }
);
checked_string!(
    /// When a scheduled job runs, as systemd's `OnCalendar=` takes it:
    /// `*-*-* 03:00:00`, `Mon..Fri 09:00`, `*:0/15`, `daily`.
    Calendar,
    super::calendar::check
);

checked_string!(
    /// An ACME CA's directory URL: https only.
    AcmeDirectory,
    |s| {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!(
                "`{}` is not a URL: write the CA's directory, like https://acme-v02.api.letsencrypt.org/directory",
                printable(s)
            ));
        };
        if scheme != "https" {
            return Err(format!(
                "unknown ACME directory scheme `{}`: ACME directories are https URLs",
                printable(scheme)
            ));
        }
        let plain = rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~:/?#[]@!&'()*+,;=%".contains(c));
        if rest.is_empty() || !plain || s.len() > 500 {
            return Err(format!("`{}` is not a plain https URL", printable(s)));
        }
        Ok(())
    }
);
checked_string!(
    /// An e-mail address, for the ACME account.
    Email,
    |s| {
        let ok = s.len() <= 254
            && s.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty()
                    && domain.contains('.')
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "@.+-_".contains(c))
            });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not an e-mail address like hostmaster@foobar.com",
                printable(s)
            ))
        }
    }
);

checked_string!(
    /// A port and its protocol, like `8080/tcp` or `123/udp`.
    PortSpec,
    |s| {
        let ok = s.split_once('/').is_some_and(|(port, proto)| {
            port.parse::<u16>().is_ok_and(|p| p > 0) && matches!(proto, "tcp" | "udp")
        });
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a port: write it like 8080/tcp or 123/udp",
                printable(s)
            ))
        }
    }
);

checked_string!(
    /// `HH:MM`, 24-hour.
    ClockTime,
    |s| {
        let ok = s.len() == 5
            && s.as_bytes()[2] == b':'
            && s[..2].parse::<u8>().is_ok_and(|h| h < 24)
            && s[3..].parse::<u8>().is_ok_and(|m| m < 60);
        if ok {
            Ok(())
        } else {
            Err(format!("`{}` is not a time: write HH:MM, like 02:30", printable(s)))
        }
    }
);
checked_string!(
    /// A time zone of the tz database, like `UTC` or `Europe/Berlin`.
    TimeZone,
    |s| {
        jiff::tz::TimeZone::get(s).map(|_| ()).map_err(|_| {
            format!(
                "time zone `{}` is not in the tz database: write a name like UTC or Europe/Berlin",
                printable(s)
            )
        })
    }
);

/// Defines an integer newtype with an inclusive range, checked inside the
/// visitor so that errors keep their position.
macro_rules! ranged_int {
    ($(#[$doc:meta])* $name:ident, $int:ty, $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $int);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "a whole number from {} to {}", $min, $max)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        if v < $min as i64 || v > $max as i64 {
                            return Err(E::custom(format!(
                                "{} {v} is out of range: use {} to {}",
                                $what, $min, $max
                            )));
                        }
                        Ok($name(v as $int))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
                    }
                }
                d.deserialize_i64(V)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

ranged_int!(Port, u16, 1, 65535, "port");
ranged_int!(Ttl, u32, 60, 604_800, "ttl");
ranged_int!(Workers, u8, 1, 64, "workers");
ranged_int!(KeepReleases, u8, 1, 20, "keep_releases");
ranged_int!(PrefixLen, u8, 8, 30, "prefix_len");
ranged_int!(RouterId, u8, 1, 255, "router_id");
ranged_int!(RenewDays, u16, 1, 3650, "renew_days");
ranged_int!(ConfirmSecs, u16, 3, 600, "confirm_within_secs");
ranged_int!(BackupEvery, u16, 5, 1440, "every_minutes");
ranged_int!(StopSecs, u16, 1, 3600, "stop_timeout_secs");
ranged_int!(
    KeepCount,
    u16,
    1,
    1000,
    "a retention count (0 would keep nothing of that period)"
);

/// A path on the machine running foobar; relative paths are relative to
/// the inventory file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LocalPath(pub PathBuf);

impl<'de> Deserialize<'de> for LocalPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a path", |s| {
            check_local_path(s).map(|()| LocalPath(PathBuf::from(s)))
        })
    }
}

/// A secret's command line (`cmd:`), run on this machine. Its words are
/// split as a POSIX shell splits them, but no shell runs it: no
/// variables, globs, pipes or redirections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretCommand {
    line: String,
    words: Vec<String>,
}

impl SecretCommand {
    pub fn parse(line: &str) -> Result<Self, String> {
        // The line is not echoed: the error shows it where it is written.
        if line.len() > 1000 || line.chars().any(|c| c.is_control()) {
            return Err(
                "a secret's command must be one line of at most 1000 characters, like `cmd:pass show foobar/db`".into(),
            );
        }
        // YAML ends a plain value at `: ` or ` #`, which often is why.
        let words = shlex::split(line).ok_or(
            "the command line has a quote left open, or ends with `\\`: a value holding `: ` or ` #` must be in quotes whole in YAML",
        )?;
        if words.is_empty() {
            return Err("`cmd:` needs a command line, like `cmd:pass show foobar/db`".into());
        }
        // Without a shell, `|` or `>` would reach the program as an
        // argument and fail in the program's own words.
        if let Some(operator) = words.iter().find(|w| is_shell_operator(w)) {
            return Err(format!(
                "`{}` needs a shell, and none runs the command: write `cmd:sh -c '...'`",
                printable(operator)
            ));
        }
        Ok(Self {
            line: line.to_string(),
            words,
        })
    }

    /// The command line as written.
    pub fn line(&self) -> &str {
        &self.line
    }

    pub fn program(&self) -> &str {
        &self.words[0]
    }

    pub fn args(&self) -> &[String] {
        &self.words[1..]
    }
}

/// `|`, `&&`, `;`, `>`, `2>&1` and their like.
fn is_shell_operator(word: &str) -> bool {
    let operator = word.trim_start_matches(|c: char| c.is_ascii_digit());
    !operator.is_empty()
        && operator
            .chars()
            .all(|c| "|&;<>".contains(c) || c.is_ascii_digit())
}

pub(super) fn check_local_path(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().any(|c| c.is_control()) {
        return Err("a path must be non-empty and without control characters".into());
    }
    Ok(())
}

pub(super) fn check_label(s: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid DNS label: letters, digits and `-`, 1 to 63 characters",
            printable(s)
        ))
    }
}

/// A name in a record, relative or absolute (a trailing dot): labels of
/// letters, digits, `-` and `_` (`_dmarc`, `s1._domainkey`, `_sip._tcp`).
pub(super) fn check_record_target(s: &str) -> Result<(), String> {
    let body = s.strip_suffix('.').unwrap_or(s);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if body.is_empty() || s.len() > 253 || !body.split('.').all(label_ok) {
        return Err(format!(
            "`{}` is not a domain name: labels of letters, digits, `-` and `_` joined by dots, like `mail.example.net.`",
            printable(s)
        ));
    }
    Ok(())
}

pub(super) fn check_server_path(s: &str) -> Result<(), String> {
    let safe = s
        .chars()
        // `@`: systemd's template units (name@.service).
        .all(|c| c.is_ascii_alphanumeric() || "/._-@".contains(c));
    if !s.starts_with('/') || !safe || s.len() > 255 {
        return Err(format!(
            "`{}` is not an absolute server path of letters, digits, `/`, `.`, `_`, `-` and `@`",
            printable(s)
        ));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(format!(
            "`{}` climbs out with `..`: write the path plainly",
            printable(s)
        ));
    }
    Ok(())
}

/// Shows a bad value safely: control characters escaped, long values cut.
pub(super) fn printable(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 60 {
        format!("{}…", escaped.chars().take(60).collect::<String>())
    } else {
        escaped
    }
}

/// Where foobar connects to a server: an IPv4 or IPv6 address, or a host
/// name (resolved by ssh, and by the system for the HTTP checks).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    Ip(std::net::IpAddr),
    Name(String),
}

impl Address {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<std::net::IpAddr>() {
            return Ok(Address::Ip(ip));
        }
        // A name: letters first somewhere (a dotted quad that failed to
        // parse as IPv4 is a bad address, not a name).
        let looks_numeric = s.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()));
        if looks_numeric || s.contains(':') {
            return Err(format!(
                "`{}` is not a valid IP address: write an IPv4 (203.0.113.10), an IPv6 (2001:db8::10) or a host name",
                printable(s)
            ));
        }
        if s.len() > 253 {
            return Err(format!("`{}` is too long for a host name", printable(s)));
        }
        s.split('.').try_for_each(check_label)?;
        Ok(Address::Name(s.to_ascii_lowercase()))
    }

    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            Address::Name(_) => None,
        }
    }

    pub fn v4(&self) -> Option<std::net::Ipv4Addr> {
        match self {
            Address::Ip(std::net::IpAddr::V4(v4)) => Some(*v4),
            _ => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => ip.fmt(f),
            Address::Name(n) => f.write_str(n),
        }
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an IP address or a host name", Address::parse)
    }
}
