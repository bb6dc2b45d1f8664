//! Options where they mean something, in the forms Ansible's users type:
//! `-i`, `-e`, `--project`, `--forks` and `-l` only on the commands they
//! are for (refused elsewhere, and not in those commands' help or
//! completions), `-l` with patterns, `-C`/`-D`, `-e KEY=VALUE`, and
//! `--limit` completing the inventory's servers. No server is contacted.

mod common;

use common::*;

/// Runs foobar with `args`, which it must refuse as bad input (exit 2):
/// what it said.
fn refused(args: &[&str]) -> String {
    let out = foobar().args(args).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

/// What foobar prints on stdout with `args`.
fn stdout(args: &[&str]) -> String {
    text(&foobar().args(args).output().unwrap().stdout)
}

/// The servers whose files `render -l ...` lists, of the HA design's
/// nine (its secrets from the environment; the database CA it makes in a
/// home folder of its own).
fn rendered(limit: &[&str]) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = foobar();
    cmd.args(["-i", "inventory/foobar-ha.yml", "--json", "render"])
        .env("HOME", home.path())
        .env("FOOBAR_DB_PASSWORD", "a-long-enough-password")
        .env("FOOBAR_VRRP_PASSWORD", "abcdefgh")
        .env("FOOBAR_TRANSFER_KEY", "dGhpcyBpcyBhIFRTSUcga2V5IQ==")
        .env("FOOBAR_BACKUP_PASSWORD", "a-long-enough-backup-password");
    for l in limit {
        cmd.args(["-l", l]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{limit:?}: {}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut servers: Vec<String> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["server"].as_str().unwrap().to_string())
        .collect();
    servers.dedup();
    servers
}

#[test]
fn options_are_refused_where_they_mean_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let site = site.to_str().unwrap();
    for (args, flag) in [
        (vec!["init", site, "--lab", "-l", "web1"], "-l/--limit"),
        (vec!["-l", "web1", "man"], "-l/--limit"),
        (vec!["man", "--forks", "3"], "--forks"),
        (
            vec!["-i", "inventory/lab.yml", "init", site, "--lab"],
            "-i/--inventory",
        ),
        (vec!["completions", "bash", "--forks", "2"], "--forks"),
        (
            vec!["-i", "inventory/foobar.yml", "diagram", "-l", "www"],
            "-l/--limit",
        ),
        (
            vec!["-i", "inventory/foobar.yml", "diagram", "--project", "."],
            "--project",
        ),
        (
            vec!["-i", "inventory/foobar.yml", "dns-check", "--forks", "2"],
            "--forks",
        ),
    ] {
        let err = refused(&args);
        assert!(
            err.contains(&format!("unexpected argument '{flag}' found")),
            "{args:?}: {err}"
        );
        assert!(err.contains("does not take"), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new(site).exists(), "init wrote nothing");
    // As a standing setting, the environment is no mistake.
    let out = foobar()
        .env("FOOBAR_INVENTORY", "inventory/foobar.yml")
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // As JSON, which argument and why.
    let (code, doc) = valid_json(&["man", "--forks", "3"], "error");
    assert_eq!(code, Some(2));
    assert_eq!(doc["command"], "man");
    assert_eq!(doc["error"]["argument"]["name"], "--forks");
    assert!(doc["error"]["help"]
        .as_str()
        .unwrap()
        .contains("it is for provision"));
}

#[test]
fn help_and_completions_offer_only_what_a_command_takes() {
    for command in ["init", "man", "completions"] {
        let help = stdout(&[command, "--help"]);
        for flag in ["--limit", "--forks", "--project"] {
            assert!(!help.contains(flag), "{command} --help: {help}");
        }
    }
    let help = stdout(&["provision", "--help"]);
    for flag in [
        "-l, --limit",
        "--forks",
        "-i, --inventory",
        "-e, --set",
        "-C, --check",
        "-D, --diff",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    let script = stdout(&["completions", "bash"]);
    let opts = |command: &str| {
        let at = script.find(&format!("foobar__subcmd__{command})")).unwrap();
        script[at..].lines().nth(1).unwrap().to_string()
    };
    assert!(!opts("init").contains("--limit"), "{}", opts("init"));
    assert!(!opts("init").contains("--inventory"), "{}", opts("init"));
    assert!(
        opts("provision").contains("--limit"),
        "{}",
        opts("provision")
    );
}

#[test]
fn limit_takes_ansible_s_patterns() {
    let all = rendered(&[]);
    assert_eq!(all.len(), 9, "{all:?}");
    assert_eq!(rendered(&["web*,!web3"]), ["web1", "web2"]);
    assert_eq!(rendered(&["web*", "!web3"]), ["web1", "web2"]);
    assert_eq!(rendered(&["lb"]), ["lb1", "lb2"]);
    assert_eq!(rendered(&["db1", "lb2"]), ["lb2", "db1"]);
    assert_eq!(rendered(&["all", "&dns"]), ["lb1"]);

    let err = refused(&["-i", "inventory/foobar-ha.yml", "render", "-l", "web9"]);
    assert!(err.contains("--limit web9: no server"), "{err}");
    assert!(err.contains("did you mean `web`?"), "{err}");
}

#[test]
fn check_and_diff_have_ansible_s_short_forms() {
    // A missing inventory stops the run before any connection: the
    // arguments themselves were understood.
    let err = refused(&["-i", "/nonexistent/inventory.yml", "provision", "-C", "-D"]);
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(err.contains("/nonexistent/inventory.yml"), "{err}");
}

#[test]
fn set_overrides_an_inventory_value_for_one_run() {
    let (code, doc) = valid_json(
        &[
            "-i",
            "inventory/foobar.yml",
            "render",
            "-e",
            "domain.zone=example.org",
            "--set",
            "servers.www.address=203.0.113.7",
        ],
        "render",
    );
    assert_eq!(code, Some(0), "{doc:#}");
    let paths: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/var/lib/bind/db.example.org"), "{paths:?}");

    // A mistake is the argument's, with foobar's words and a suggestion.
    let err = refused(&["-i", "inventory/foobar.yml", "render", "-e", "app.wokers=2"]);
    assert!(err.contains("unknown key `wokers`"), "{err}");
    assert!(err.contains("in -e app.wokers"), "{err}");
    assert!(err.contains("did you mean `workers`?"), "{err}");
    let (code, doc) = valid_json(
        &[
            "-i",
            "inventory/foobar.yml",
            "render",
            "-e",
            "servers.web9.address=1.2.3.4",
        ],
        "error",
    );
    assert_eq!(code, Some(2));
    assert_eq!(doc["error"]["location"]["file"], "-e servers.web9.address");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no entry `web9`"));
    // Not KEY=VALUE, or not a scalar: clap's refusal, exit 2.
    for bad in ["app.workers", "app.workers=[1, 2]"] {
        let err = refused(&["-i", "inventory/foobar.yml", "render", "-e", bad]);
        assert!(err.contains("invalid value"), "{err}");
    }
}

/// `-e` sets a value in what a stage and its base make together, a key
/// the base wrote as well as one of the stage's.
#[test]
fn set_overrides_what_a_stage_inherits() {
    let dir = tempfile::tempdir().unwrap();
    let out = foobar()
        .args([
            "init",
            dir.path().to_str().unwrap(),
            "--domain",
            "shop.example",
            "--address",
            "203.0.113.10",
            "--stages",
            "staging,production",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let base = std::fs::read_to_string(dir.path().join("base.yml")).unwrap();
    assert!(base.contains("  host: www"), "the base's: {base}");
    let question = |more: &[&str]| {
        let out = foobar()
            .current_dir(dir.path())
            .args(["-i", "staging.yml", "diagram", "--format", "mermaid"])
            .args(more)
            .output()
            .unwrap();
        assert!(out.status.success(), "{more:?}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let line = stdout.lines().find(|l| l.contains("where is")).unwrap();
        line.split("where is ")
            .nth(1)
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(question(&[]), "www.staging.shop.example");
    // host from base.yml, zone from staging.yml.
    assert_eq!(
        question(&["-e", "domain.host=shop", "-e", "domain.zone=test.example"]),
        "shop.test.example"
    );
    // A mistake is still the argument's, though the key is the base's.
    let err = foobar()
        .current_dir(dir.path())
        .args(["-i", "staging.yml", "render", "-e", "app.wokers=3"])
        .output()
        .unwrap();
    let err = text(&err.stderr);
    assert!(err.contains("in -e app.wokers"), "{err}");
    assert!(!err.contains("base.yml"), "{err}");
}

#[test]
fn completions_offer_the_inventory_s_servers_for_limit() {
    let script = stdout(&["-i", "inventory/lab-ha.yml", "completions", "bash"]);
    assert!(
        script.contains("compgen -W \"lb1 lb2 web1 web2 web3 db1 db2 db3 "),
        "{script}"
    );
    // Without an inventory where one is looked for: no names, no error.
    let dir = tempfile::tempdir().unwrap();
    let out = foobar()
        .current_dir(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("web1"));
}
