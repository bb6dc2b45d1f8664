//! Step kinds as data, in the manner of pyinfra's tests/operations: each
//! file in tests/steps/cases/<kind>/ gives a playbook entry and the facts
//! the server reported, and expects a change (or none) and the exact
//! script. Every case also plans again over the facts the change leaves,
//! which must be empty. No server is needed.
//!
//! `FOOBAR_BLESS=1 cargo test --test steps` rewrites the expectations from
//! what the code produces now: read the diff before committing it.

use std::path::{Path, PathBuf};

use foobar::inventory;
use foobar::project::Project;
use foobar::render::{Context, Renderer};
use foobar::secrets::Secrets;
use foobar::steps::{self, PlanCx, ResolveCx, StepArgs};
use serde_json::{json, Value};

const ROOT: &str = "tests/steps";

fn cases() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in std::fs::read_dir(Path::new(ROOT).join("cases")).unwrap() {
        for case in std::fs::read_dir(kind.unwrap().path()).unwrap() {
            files.push(case.unwrap().path());
        }
    }
    files.sort();
    files
}

#[test]
fn every_step_kind_has_cases() {
    let dirs: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("cases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for kind in steps::kinds() {
        assert!(
            dirs.iter().any(|d| d == kind),
            "no cases for the `{kind}` kind"
        );
    }
}

#[test]
fn step_cases() {
    let bless = std::env::var_os("FOOBAR_BLESS").is_some();
    // The wheels of tests/steps/python_app are already in this cache: no
    // index is asked.
    std::env::set_var("FOOBAR_CACHE_DIR", Path::new(ROOT).join("wheel-cache"));
    let inv = inventory::load(&Path::new(ROOT).join("inventory.yml")).unwrap();
    let renderer = Renderer::new(&Project::at(Path::new(ROOT)));
    // A password the cases can see in their scripts: never a real one.
    let secrets = Secrets {
        mysql_password: "Case-Password-1".into(),
        replication_password: Some("Case-Replication-2".into()),
        transfer_key: None,
        vrrp_password: None,
        backup: None,
        app_env: Default::default(),
        db_tls: Default::default(),
        warnings: Vec::new(),
    };
    let server = &inv.inventory.servers.0[0];
    let ctx = Context::new(&inv.inventory, server, &secrets);
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 20, "only {} cases", all.len());
    // A case's step has no place in a playbook: its errors name the case.
    let playbook = foobar::inventory::Document::read(Path::new("case.yml"), "{}").unwrap();
    for file in all {
        let mut case: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let args: StepArgs = serde_json::from_value(case["step"].clone())
            .unwrap_or_else(|e| panic!("{}: step: {e}", file.display()));
        let kind_dir = file
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            args.kind(),
            kind_dir,
            "{}: the case sits in its kind's folder",
            file.display()
        );
        let cx = ResolveCx {
            renderer: &renderer,
            ctx: &ctx,
            playbook: &playbook,
            inventory: &inv,
            secrets: &secrets,
            step: file.display().to_string(),
        };
        let plan = PlanCx {
            today: case["today"].as_u64().unwrap_or(20261126) as u32,
            rebuild: case["rebuild"].as_bool().unwrap_or(false),
        };
        let outcome = steps::run_case(&args, &cx, &case["facts"], &plan)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let got = json!({
            "change": outcome.change,
            "script": outcome.script.map(|s| s.lines().map(str::to_string).collect::<Vec<_>>()),
            "stdin_sha256": outcome.stdin_sha256,
        });
        assert!(
            outcome.idempotent,
            "{}: planning again over the converged facts is not empty",
            file.display()
        );
        if bless {
            for key in ["change", "script", "stdin_sha256"] {
                case[key] = got[key].clone();
            }
            std::fs::write(&file, serde_json::to_string_pretty(&case).unwrap() + "\n").unwrap();
            continue;
        }
        for key in ["change", "script", "stdin_sha256"] {
            if case[key] != got[key] {
                failures.push(format!(
                    "{}: {key}\n  expected {}\n  got      {}",
                    file.display(),
                    case[key],
                    got[key]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
