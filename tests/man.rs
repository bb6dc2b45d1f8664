//! The manual: every page `foobar man --out` writes, every page they name
//! is written, foobar(1) says what the command line cannot (exit status as
//! README's table, the environment foobar reads, its files), and
//! foobar-inventory(5) names every key an inventory may hold.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// Every page, by file name (`foobar-provision.1`), as plain text: roff's
/// escapes and fonts taken out.
fn pages() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let out = foobar()
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut pages = Vec::new();
    for section in ["man1", "man5"] {
        for entry in std::fs::read_dir(dir.path().join(section)).unwrap() {
            let path = entry.unwrap().path();
            let roff = std::fs::read_to_string(&path).unwrap();
            let plain = roff
                .replace("\\-", "-")
                .replace("\\fB", "")
                .replace("\\fI", "")
                .replace("\\fR", "");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.ends_with(&section[3..]), "{name} is in {section}");
            pages.push((name, plain));
        }
    }
    pages
}

/// The pages `text` names: `foobar-provision(1)` -> `foobar-provision.1`.
fn references(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices('(') {
        let mut after = text[at + 1..].chars();
        let (Some(section), Some(')')) = (after.next(), after.next()) else {
            continue;
        };
        if !section.is_ascii_digit() {
            continue;
        }
        let name: String = text[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if name.starts_with("foobar") {
            found.insert(format!("{name}.{section}"));
        }
    }
    found
}

#[test]
fn every_page_named_is_written_and_help_has_none() {
    let pages = pages();
    let names: BTreeSet<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    for page in [
        "foobar.1",
        "foobar-provision.1",
        "foobar-lab-up.1",
        "foobar-inventory.5",
    ] {
        assert!(names.contains(page), "{page} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    let mut dangling = Vec::new();
    for (name, text) in &pages {
        for named in references(text) {
            if !names.contains(named.as_str()) {
                dangling.push(format!("{name} names {named}"));
            }
        }
    }
    assert!(dangling.is_empty(), "{dangling:?}");
    let root = &pages.iter().find(|(n, _)| n == "foobar.1").unwrap().1;
    assert!(references(root).contains("foobar-provision.1"), "{root}");
}

/// foobar(1)'s EXIT STATUS is README's table; its ENVIRONMENT names the
/// variables foobar reads, each of which the code reads.
#[test]
fn foobar_1_has_exit_status_environment_and_files() {
    let pages = pages();
    let root = &pages.iter().find(|(n, _)| n == "foobar.1").unwrap().1;
    let section = |title: &str| {
        let start = root
            .find(&format!(".SH \"{title}\""))
            .or_else(|| root.find(&format!(".SH {title}")))
            .unwrap_or_else(|| panic!("{title} in {root}"));
        let rest = &root[start + 4..];
        rest[..rest.find(".SH").unwrap_or(rest.len())].to_string()
    };
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table = readme.split("### Exit codes").nth(1).unwrap();
    let codes: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap().trim())
        .collect();
    assert_eq!(codes, ["0", "1", "2", "3", "4", "5", "6"]);
    let exit = section("EXIT STATUS");
    for code in codes {
        assert!(exit.contains(&format!(".TP\n{code}\n")), "{code} in {exit}");
    }
    let env = section("ENVIRONMENT");
    let code = source_text();
    for var in [
        "FOOBAR_INVENTORY",
        "FOOBAR_PROJECT",
        "FOOBAR_NOW",
        "FOOBAR_CACHE_DIR",
        "NO_COLOR",
    ] {
        assert!(env.contains(var), "{var} in {env}");
    }
    for var in env
        .split_whitespace()
        .filter(|w| w.starts_with("FOOBAR_") || w.starts_with("XDG_"))
    {
        let var = var.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
        // FOOBAR_DB_PASSWORD is the inventories' example of env:NAME.
        if var != "FOOBAR_DB_PASSWORD" {
            assert!(
                code.contains(&format!("\"{var}\"")),
                "{var} is read by src/"
            );
        }
    }
    let files = section("FILES");
    assert!(files.contains("foobar-project"), "{files}");
}

/// The text of every file under src/.
fn source_text() -> String {
    fn walk(dir: &Path, text: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, text);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut text = String::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut text,
    );
    text
}

/// Every key of the shipped inventories, with every section they use
/// filled in, is in foobar-inventory(5), in bold.
#[test]
fn the_inventory_page_names_every_key() {
    fn keys(value: &serde_json::Value, found: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    found.insert(k.clone());
                    match (k.as_str(), v.as_object()) {
                        // The processes' names are the user's; their
                        // fields are keys.
                        ("processes", Some(named)) => named.values().for_each(|p| keys(p, found)),
                        _ => keys(v, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, found)),
            _ => {}
        }
    }
    // The page's roff: each key in bold.
    let page = text(&foobar().args(["man", "inventory"]).output().unwrap().stdout);
    let mut found = BTreeSet::new();
    for inventory in [
        "foobar.yml",
        "foobar-ha.yml",
        "lab-backup.yml",
        "lab-https.yml",
        "lab-secure.yml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("inventory")
            .join(inventory);
        let inv = foobar::inventory::load(&path).unwrap();
        keys(&serde_json::to_value(&inv.inventory).unwrap(), &mut found);
    }
    assert!(found.len() > 80, "{found:?}");
    // Not keys: the app's environment's names (FOO_BAR) and where a secret
    // comes from (`Env`, as serde writes `env:NAME`).
    let missing: Vec<&String> = found
        .iter()
        .filter(|k| {
            !k.starts_with(|c: char| c.is_ascii_uppercase())
                && !page.contains(&format!("\\fB{k}\\fR"))
        })
        .collect();
    assert!(missing.is_empty(), "foobar-inventory(5) lacks {missing:?}");
}

#[test]
fn one_page_on_stdout_and_a_page_that_is_not_is_refused() {
    let out = foobar().args(["man", "inventory"]).output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(".TH foobar-inventory 5"));
    let out = foobar().args(["man", "lab-kill"]).output().unwrap();
    assert!(text(&out.stdout).contains("foobar\\-lab\\-kill"));
    let out = foobar().args(["man", "inventroy"]).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("did you mean `inventory`?"), "{err}");
}

/// The help says what foobar is now: one server, or several.
#[test]
fn help_describes_the_ha_design_too() {
    let out = foobar().arg("--help").output().unwrap();
    let help = text(&out.stdout);
    assert!(!help.contains("one-server"), "{help}");
    assert!(help.contains("several"), "{help}");
}
