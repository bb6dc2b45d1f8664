//! The layers of ARCHITECTURE.md are the imports of src/: every top-level
//! module is in the table, and none imports a layer above its own (unit
//! tests, `#[cfg(test)] mod tests`, may reach anywhere).

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level module -> layer index (0: the table's top row).
fn layers() -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string("ARCHITECTURE.md").unwrap();
    let table = text
        .split("## Layers")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .expect("ARCHITECTURE.md has a Layers section");
    let mut map = BTreeMap::new();
    let rows = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| layer") && !l.starts_with("|---"));
    for (i, row) in rows.enumerate() {
        let modules = row.split('|').nth(2).expect("a modules cell");
        for name in modules.split('`').skip(1).step_by(2) {
            let name = name.trim_end_matches('/').trim_end_matches(".rs");
            assert!(
                map.insert(name.to_string(), i).is_none(),
                "{name} is in two layers"
            );
        }
    }
    map
}

/// The crate's top-level modules named by `crate::NAME` in this text.
fn imports(text: &str, tops: &BTreeMap<String, usize>) -> Vec<String> {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(group.split(',').map(|n| {
                n.trim()
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found.retain(|n| tops.contains_key(n));
    found
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let layers = layers();
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix("src").unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue;
        }
        let Some(&mine) = layers.get(&top) else {
            panic!("src/{top} is in no layer of ARCHITECTURE.md's table");
        };
        let text = std::fs::read_to_string(file).unwrap();
        for import in imports(&text, &layers) {
            if layers[&import] < mine {
                upward.push(format!("{} imports {import}", file.display()));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports of a layer above:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    let layers = layers();
    assert!(layers["commands"] < layers["engine"], "the face is above");
    let found = imports("use crate::{cli::exit, engine};\nfn f() { crate::shell::quote(\"\"); }\n#[cfg(test)]\nmod tests {\n use crate::commands;\n}\n", &layers);
    assert_eq!(found, ["cli", "engine", "shell"]);
}
