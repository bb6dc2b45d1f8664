//! Values as they come: environment values and secrets with any printable
//! character reach the app exactly. A corpus of generated values (every
//! printable ASCII character, Django secret keys, `openssl rand -base64`
//! passwords, shell and INI look-alikes) is rendered into the app's
//! environment file, read back as systemd reads it (a port of its parser)
//! and as sh reads it when the build and the release command source it;
//! php-fpm's pool passes every variable by name and holds no value.

use std::collections::BTreeMap;
use std::path::Path;

use foobar::inventory::{self, Loaded};
use foobar::playbook;
use foobar::project::Project;
use foobar::render::Renderer;
use foobar::resolve;
use foobar::secrets::Secrets;

/// Django's `get_random_secret_key()`: 50 characters of this alphabet.
const DJANGO: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)";

/// xorshift64: the same corpus every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    /// `openssl rand -base64 N`: N random bytes in base64.
    fn base64(&mut self, n: usize) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    B64[(n >> (18 - 6 * i) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        out
    }
}

fn all_printable_ascii() -> String {
    (' '..='~').collect()
}

/// The values to carry: each printable ASCII character alone and all of
/// them at once, generated Django keys and base64 passwords (one of each
/// starting with `$`, which php-fpm's pool would take for a variable's
/// name), and what shells, systemd and PHP's INI scanner would read as
/// something else.
fn corpus() -> Vec<String> {
    let mut rng = Rng(0x5eed_f00b_a4c0_ffee);
    let mut values: Vec<String> = (' '..='~').map(String::from).collect();
    values.push(all_printable_ascii());
    values.push(all_printable_ascii().chars().rev().collect());
    values.extend((0..40).map(|_| rng.string(DJANGO, 50)));
    values.extend((0..40).map(|_| rng.base64(24)));
    values.extend((0..10).map(|_| rng.base64(16)));
    values.push(format!("${}", rng.string(DJANGO, 49)));
    values.push(format!("${}", rng.base64(24)));
    for tricky in [
        "",
        "$HOME",
        "${PATH}",
        "$(id)",
        "`id`",
        "\\",
        "\\\\",
        "ends with a backslash\\",
        "\\\"",
        "\\$HOME",
        "\"quoted\"",
        "'single'",
        "it's",
        "  spaces around  ",
        "#not a comment",
        ";not a comment either",
        "a=b=c",
        "!event ^caret ~tilde",
        "${HOME:-x} $$ $? $0 $1",
        "*glob?[x]",
        "%s%n%%",
        "x\\ny",
        "café ☕ 𝄞",
    ] {
        values.push(tricky.to_string());
    }
    values
}

/// The assignments of an environment file as systemd reads it for
/// EnvironmentFile=: its parser (src/basic/env-file.c) state by state, a
/// backslash at a comment's end continuing the comment as in Debian 12's
/// systemd 252.
fn systemd_env_file(text: &str) -> BTreeMap<String, String> {
    #[derive(Clone, Copy, PartialEq)]
    enum S {
        PreKey,
        Key,
        PreValue,
        Value,
        ValueEscape,
        Single,
        Double,
        DoubleEscape,
        Comment,
        CommentEscape,
    }
    let ws = |c: char| " \t\n\r".contains(c);
    let nl = |c: char| "\n\r".contains(c);
    let mut vars = BTreeMap::new();
    let (mut key, mut value) = (String::new(), String::new());
    let (mut key_ws, mut value_ws): (Option<usize>, Option<usize>) = (None, None);
    let mut push =
        |key: &mut String, value: &mut String, key_ws: Option<usize>, chomp: Option<usize>| {
            if let Some(at) = key_ws {
                key.truncate(at);
            }
            if let Some(at) = chomp {
                value.truncate(at);
            }
            vars.insert(std::mem::take(key), std::mem::take(value));
        };
    let mut state = S::PreKey;
    for c in text.chars() {
        state = match state {
            S::PreKey if "#;".contains(c) => S::Comment,
            S::PreKey if !ws(c) => {
                key_ws = None;
                key.push(c);
                S::Key
            }
            S::PreKey => S::PreKey,
            S::Key if nl(c) => {
                key.clear();
                S::PreKey
            }
            S::Key if c == '=' => {
                value_ws = None;
                S::PreValue
            }
            S::Key => {
                if !ws(c) {
                    key_ws = None;
                } else if key_ws.is_none() {
                    key_ws = Some(key.len());
                }
                key.push(c);
                S::Key
            }
            S::PreValue if nl(c) => {
                push(&mut key, &mut value, key_ws, None);
                S::PreKey
            }
            S::PreValue if c == '\'' => S::Single,
            S::PreValue if c == '"' => S::Double,
            S::PreValue if c == '\\' => S::ValueEscape,
            S::PreValue if !ws(c) => {
                value.push(c);
                S::Value
            }
            S::PreValue => S::PreValue,
            S::Value if nl(c) => {
                push(&mut key, &mut value, key_ws, value_ws);
                S::PreKey
            }
            S::Value if c == '\\' => {
                value_ws = None;
                S::ValueEscape
            }
            S::Value => {
                if !ws(c) {
                    value_ws = None;
                } else if value_ws.is_none() {
                    value_ws = Some(value.len());
                }
                value.push(c);
                S::Value
            }
            S::ValueEscape => {
                if !nl(c) {
                    value.push(c);
                }
                S::Value
            }
            S::Single if c == '\'' => S::PreValue,
            S::Single => {
                value.push(c);
                S::Single
            }
            S::Double if c == '"' => S::PreValue,
            S::Double if c == '\\' => S::DoubleEscape,
            S::Double => {
                value.push(c);
                S::Double
            }
            S::DoubleEscape => {
                if "\"\\`$".contains(c) {
                    value.push(c);
                } else if c != '\n' {
                    value.push('\\');
                    value.push(c);
                }
                S::Double
            }
            S::Comment if c == '\\' => S::CommentEscape,
            S::Comment if nl(c) => S::PreKey,
            S::Comment => S::Comment,
            S::CommentEscape => S::Comment,
        };
    }
    match state {
        S::Value => push(&mut key, &mut value, key_ws, value_ws),
        S::PreValue | S::ValueEscape | S::Single | S::Double | S::DoubleEscape => {
            push(&mut key, &mut value, key_ws, None)
        }
        _ => {}
    }
    vars
}

/// The values of `names` after a POSIX sh (/bin/sh: dash on Debian)
/// sources `file` as the build and the release command do.
fn sh_sourced(file: &Path, names: &[String]) -> Vec<String> {
    let printed: Vec<String> = names.iter().map(|n| format!("\"${n}\"")).collect();
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "set -a; . ./{}; set +a; printf '%s\\0' {}",
            file.file_name().unwrap().to_str().unwrap(),
            printed.join(" ")
        ))
        .current_dir(file.parent().unwrap())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut values: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(values.pop().as_deref(), Some(""), "NUL-terminated");
    values
}

/// A copy of `inventory` in `dir` with `env` (name, YAML text of the
/// value) under `app:` and the lab's password file replaced by `password`
/// (a secret's source), its code base found from there.
fn inventory_with_env(
    dir: &Path,
    inventory: &str,
    env: &[(String, String)],
    password: &str,
) -> Loaded {
    let lines: String = env
        .iter()
        .map(|(name, value)| format!("    {name}: {value}\n"))
        .collect();
    let text = std::fs::read_to_string(inventory)
        .unwrap()
        .replace("../apps/", concat!(env!("CARGO_MANIFEST_DIR"), "/apps/"))
        .replace(
            "  keep_releases: 3\n",
            &format!("  keep_releases: 3\n  env:\n{lines}"),
        )
        .replace("file:/var/lib/foobar/lab/secrets/mysql_password", password);
    let path = dir.join("inventory.yml");
    std::fs::write(&path, text).unwrap();
    inventory::load(&path).unwrap()
}

/// The files the inventory's first server gets, by path.
fn rendered(inv: &Loaded, secrets: &Secrets) -> BTreeMap<String, String> {
    let pb = playbook::load(Path::new("playbooks/provision.yml")).unwrap();
    let renderer = Renderer::new(&Project::at(Path::new(".")));
    resolve::resolve(&renderer, &pb, inv, &inv.inventory.servers.0[0], secrets)
        .unwrap()
        .iter()
        .flat_map(|step| step.step.files())
        .map(|f| {
            (
                f.path.to_string(),
                String::from_utf8(f.content.to_vec()).unwrap(),
            )
        })
        .collect()
}

/// The corpus in `app.env`, one variable a value.
struct CorpusEnv {
    /// (name, YAML text): plain values double-quoted (as JSON writes
    /// strings), and a few secrets.
    yaml: Vec<(String, String)>,
    /// Every value, by name.
    expected: BTreeMap<String, String>,
    /// The secrets' values, by name.
    secrets: BTreeMap<String, String>,
}

fn corpus_env() -> CorpusEnv {
    let mut env = CorpusEnv {
        yaml: Vec::new(),
        expected: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    for (i, value) in corpus().into_iter().enumerate() {
        let name = format!("V{i:03}");
        if i % 50 == 7 {
            env.yaml
                .push((name.clone(), "env:FOOBAR_TEST_NEVER_READ".to_string()));
            env.secrets.insert(name.clone(), value.clone());
        } else {
            env.yaml
                .push((name.clone(), serde_json::to_string(&value).unwrap()));
        }
        env.expected.insert(name, value);
    }
    assert!(!env.secrets.is_empty());
    env
}

#[test]
fn every_printable_value_reaches_systemd_and_sh_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let CorpusEnv {
        yaml,
        mut expected,
        secrets: app_env,
    } = corpus_env();
    let inv = inventory_with_env(dir.path(), "inventory/lab.yml", &yaml, "env:UNREAD");
    let mut rng = Rng(42);
    for password in [
        all_printable_ascii(),
        format!("${}", rng.string(DJANGO, 49)),
        rng.base64(24),
        "ends with a backslash\\".to_string(),
    ] {
        let secrets = Secrets {
            mysql_password: password.clone(),
            app_env: app_env.clone(),
            ..Secrets::masked()
        };
        let file = rendered(&inv, &secrets)
            .remove("/etc/foobar/app.env")
            .expect("app.env rendered");
        expected.insert("DB_PASSWORD".into(), password.clone());

        let systemd = systemd_env_file(&file);
        for (name, value) in &expected {
            assert_eq!(systemd.get(name), Some(value), "systemd reads {name}");
        }

        let path = dir.path().join("app.env");
        std::fs::write(&path, &file).unwrap();
        let names: Vec<String> = expected.keys().cloned().collect();
        let sh = sh_sourced(&path, &names);
        for (name, got) in names.iter().zip(&sh) {
            assert_eq!(got, &expected[name], "sh reads {name}");
        }
        // The whole environment, nothing more.
        let mut names: Vec<&str> = vec!["DB_NAME", "DB_SOCKET", "DB_USER"];
        names.extend(expected.keys().map(String::as_str));
        names.sort();
        assert_eq!(systemd.keys().collect::<Vec<_>>(), names);
    }
}

#[test]
fn php_fpms_pool_passes_the_environment_by_name_and_holds_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let CorpusEnv {
        yaml,
        expected,
        secrets: app_env,
    } = corpus_env();
    let inv = inventory_with_env(dir.path(), "inventory/lab-php.yml", &yaml, "env:UNREAD");
    let password = format!("${}", Rng(7).base64(24));
    let secrets = Secrets {
        mysql_password: password.clone(),
        app_env,
        ..Secrets::masked()
    };
    let files = rendered(&inv, &secrets);
    let names: Vec<String> = systemd_env_file(&files["/etc/foobar/app.env"])
        .into_keys()
        .collect();
    let pool = &files["/etc/php/8.2/fpm/pool.d/foobar.conf"];
    let mut passed: Vec<String> = pool
        .lines()
        .filter(|l| l.starts_with("env["))
        .map(|l| {
            let (name, value) = l
                .strip_prefix("env[")
                .and_then(|l| l.split_once("] = "))
                .unwrap();
            // php-fpm copies `$NAME` from its own environment.
            assert_eq!(value, format!("${name}"), "{l}");
            name.to_string()
        })
        .collect();
    passed.sort();
    assert_eq!(passed, names, "every variable of app.env, by name");
    for value in expected.values().chain([&password]) {
        if value.len() >= 8 {
            assert!(!pool.contains(value.as_str()), "{value} in the pool");
        }
    }
    // php-fpm's own environment is app.env, read when it starts.
    let drop_in = &files["/etc/systemd/system/php8.2-fpm.service.d/70-foobar-env.conf"];
    assert!(
        drop_in.contains("\nEnvironmentFile=/etc/foobar/app.env\n"),
        "{drop_in}"
    );
}

#[test]
fn a_secret_that_cannot_be_carried_is_refused_at_its_key_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        format!("file:{}", path.display())
    };
    let password = write("password", &format!("{}\n", all_printable_ascii()));
    let good = write("good", "$x^!(=#-_)*&%@+j9 \"'\\`\n");
    let inv = inventory_with_env(
        dir.path(),
        "inventory/lab.yml",
        &[("GOOD".into(), good)],
        &password,
    );
    let secrets = Secrets::resolve(&inv).unwrap();
    assert_eq!(secrets.mysql_password, all_printable_ascii());
    assert_eq!(secrets.app_env["GOOD"], "$x^!(=#-_)*&%@+j9 \"'\\`");

    let tab = write("tab", "one\tvalue-42\n");
    let inv = inventory_with_env(
        dir.path(),
        "inventory/lab.yml",
        &[("TABBED".into(), tab)],
        &password,
    );
    let e = Secrets::resolve(&inv).unwrap_err();
    assert!(e.message.starts_with("app.env.TABBED: "), "{e}");
    assert!(e.message.contains("printable"), "{e}");
    assert!(e.line > 0, "{e}");
    assert!(!e.to_string().contains("value-42"), "{e}");
}
