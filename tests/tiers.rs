//! The two tiers of tests stay apart (README, Tests). A test binary of the
//! lab tier is tests/lab_<topic>.rs, listed in Cargo.toml with
//! `required-features = ["lab"]`; every other tests/*.rs is hermetic: it
//! calls nothing of the lab harness (tests/common/lab.rs) and runs no
//! `foobar lab` command that boots, reaches or changes a lab server.

use std::collections::BTreeSet;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap()
}

/// The test targets that Cargo.toml builds only with the `lab` feature.
fn lab_targets() -> BTreeSet<String> {
    let mut lab = BTreeSet::new();
    for block in read("Cargo.toml").split("[[test]]").skip(1) {
        // The block ends where the next table begins.
        let block = block.split("\n[").next().unwrap();
        let name = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string());
        let needs_lab = block.lines().any(|l| {
            let l = l.replace(' ', "");
            l.starts_with("required-features=") && l.contains("\"lab\"")
        });
        if let (Some(name), true) = (name, needs_lab) {
            lab.insert(name);
        }
    }
    lab
}

/// The test binaries: tests/*.rs, by name.
fn test_binaries() -> BTreeSet<String> {
    std::fs::read_dir(Path::new(ROOT).join("tests"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// What tests/common/lab.rs offers: its public functions (true), types
/// and constants (false).
fn harness_names() -> BTreeSet<(String, bool)> {
    read("tests/common/lab.rs")
        .lines()
        .filter_map(|l| {
            [
                ("pub fn ", true),
                ("pub struct ", false),
                ("pub const ", false),
            ]
            .iter()
            .find_map(|(p, is_fn)| l.strip_prefix(p).map(|rest| (rest, *is_fn)))
        })
        .map(|(rest, is_fn)| {
            let name = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (name, is_fn)
        })
        .collect()
}

/// Every place in `source` that uses the lab harness or runs a `foobar
/// lab` command that boots, reaches or changes a server.
fn lab_uses(source: &str, harness: &BTreeSet<(String, bool)>) -> Vec<String> {
    let mut uses = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap();
        let mut found: Vec<String> = Vec::new();
        if code.contains("common::lab") || code.contains("common/lab.rs") {
            found.push("common::lab".into());
        }
        // A function called (not a method, not a word in a string), a type
        // or a constant named.
        for (name, is_fn) in harness {
            let mut rest = code;
            while let Some(at) = rest.find(name.as_str()) {
                let before = rest[..at].chars().next_back();
                let after = rest[at + name.len()..].chars().next();
                let whole = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    && if *is_fn {
                        after == Some('(')
                    } else {
                        !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    };
                if whole {
                    found.push(name.clone());
                    break;
                }
                rest = &rest[at + name.len()..];
            }
        }
        for command in ["up", "ssh", "reset", "kill", "down"] {
            if code.contains(&format!("\"lab\", \"{command}\"")) {
                found.push(format!("foobar lab {command}"));
            }
        }
        uses.extend(found.into_iter().map(|f| format!("{}: {f}", n + 1)));
    }
    uses
}

#[test]
fn lab_binaries_are_named_lab_and_built_only_with_the_lab_feature() {
    let lab = lab_targets();
    let binaries = test_binaries();
    assert!(lab.len() >= 10, "Cargo.toml's lab targets: {lab:?}");
    for name in &lab {
        assert!(
            name.starts_with("lab_"),
            "Cargo.toml's lab target `{name}` is not named lab_<topic>"
        );
        assert!(
            binaries.contains(name),
            "Cargo.toml's lab target `{name}` has no tests/{name}.rs"
        );
    }
    for name in binaries.iter().filter(|b| b.starts_with("lab_")) {
        assert!(
            lab.contains(name),
            "tests/{name}.rs needs a [[test]] name = \"{name}\" with required-features = [\"lab\"] in Cargo.toml"
        );
    }
}

#[test]
fn hermetic_binaries_use_nothing_of_the_lab() {
    let harness = harness_names();
    for name in ["lab_up", "lab_turn", "on_server", "provision"] {
        assert!(
            harness.contains(&(name.into(), true)),
            "{name} in {harness:?}"
        );
    }
    assert!(harness.contains(&("LAB_ADDRESS".into(), false)));
    // The scan finds what it looks for.
    assert_eq!(
        lab_uses(
            "use common::lab::*;\nlet _t = lab_turn(); // lab_up(LAB)\nfoobar().args([\"-i\", LAB, \"lab\", \"up\"]);\nx.provision(1); \"provision\"; LAB_ADDRESS\n",
            &harness
        ),
        ["1: common::lab", "2: lab_turn", "3: foobar lab up", "4: LAB_ADDRESS"]
    );

    let lab = lab_targets();
    let this = Path::new(file!()).file_stem().unwrap().to_string_lossy();
    let mut problems = Vec::new();
    for name in test_binaries() {
        if lab.contains(&name) || name == this {
            continue;
        }
        for place in lab_uses(&read(&format!("tests/{name}.rs")), &harness) {
            problems.push(format!("tests/{name}.rs:{place}"));
        }
    }
    assert!(
        problems.is_empty(),
        "hermetic test binaries reaching for the lab (move these tests to a tests/lab_*.rs):\n{}",
        problems.join("\n")
    );
}
