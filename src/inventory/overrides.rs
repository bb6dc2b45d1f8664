//! `-e KEY=VALUE`: one inventory value set for one run, as Ansible's
//! `-e` sets a variable. KEY is a dotted path into the inventory
//! (`app.workers`, `servers.web1.address`: a list's entry by its `name` or
//! its index, `servers[0]` too), VALUE one YAML scalar. It is set in the
//! inventory as read (a stage merged over its bases, merge keys applied),
//! as if the stage wrote `KEY: VALUE`, and the whole is read again as
//! strictly as the files were; what it refuses is the override's fault,
//! and told as `-e KEY`'s.

use std::path::PathBuf;

use super::load::{typed, Loaded};
use super::tree::{self, Node, Origin, Scalar, Source, Value};
use crate::error::{InputError, InputErrors};

/// One `-e KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// `app.workers`
    pub key: String,
    pub value: serde_yaml::Value,
    /// VALUE as written, read as the inventory's own YAML is.
    text: String,
}

impl Override {
    /// Parses `KEY=VALUE`, the value as YAML (`4` a number, `true` a
    /// boolean, `web1` text); a list or a map is refused.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((key, text)) = s.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            return Err(
                "write KEY=VALUE, KEY a dotted path into the inventory: app.workers=4".into(),
            );
        };
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            format!("the value is not YAML ({e}): quote text that holds `: ` or ` #`")
        })?;
        if matches!(
            value,
            serde_yaml::Value::Sequence(_)
                | serde_yaml::Value::Mapping(_)
                | serde_yaml::Value::Tagged(_)
        ) {
            return Err(
                "the value is one YAML scalar (text, a number, true or false): lists and maps go in the inventory"
                    .into(),
            );
        }
        Ok(Self {
            key: key.trim().to_string(),
            value,
            text: text.to_string(),
        })
    }

    /// Where its errors point: the argument, by its key (its value may be
    /// a password refused for being written out).
    fn place(&self) -> PathBuf {
        format!("-e {}", self.key).into()
    }

    /// The value as a node of the inventory's tree, placed at `at`.
    fn node(&self, at: Origin) -> Result<Node, String> {
        let value = if self.text.trim().is_empty() {
            // Nothing written, as `key:` in a file.
            Value::Scalar(Scalar {
                text: String::new(),
                plain: true,
                tag: None,
            })
        } else {
            let source = Source {
                path: self.place(),
                text: self.text.clone(),
            };
            // Checked as YAML when parsed; a problem here is told
            // without the value.
            tree::parse(at.file, &source)
                .map_err(|_| "the value is not one YAML scalar".to_string())?
                .value
        };
        Ok(Node { value, at })
    }
}

/// The inventory with `overrides` set, in order; each is checked with the
/// ones before it, so an error names the first that breaks the inventory.
/// Later errors about a value set here point at its `-e` too.
pub fn apply(loaded: Loaded, overrides: &[Override]) -> Result<Loaded, InputErrors> {
    let Loaded {
        path,
        mut inventory,
        mut document,
        code_bases,
    } = loaded;
    for o in overrides {
        let place = o.place();
        let unplaced = |message: String| InputError::new(&place, message);
        // The argument as a file of the document without lines (nor its
        // value, which may be a secret).
        let at = Origin {
            file: document.sources.len(),
            line: 0,
            column: 0,
            width: 1,
        };
        document.sources.push(Source {
            path: place.clone(),
            text: String::new(),
        });
        let node = o.node(at).map_err(unplaced)?;
        set(&mut document.root, &o.key, node).map_err(unplaced)?;
        inventory = typed(&document).map_err(|errors| {
            // Whatever the files' lines say, the override broke it.
            let mut told: Vec<InputError> = Vec::new();
            for e in errors {
                let e = InputError {
                    file: place.clone(),
                    line: 0,
                    column: 0,
                    width: 1,
                    ..e
                };
                if !told.contains(&e) {
                    told.push(e);
                }
            }
            InputErrors(told)
        })?;
    }
    Ok(Loaded {
        path,
        inventory,
        document,
        code_bases,
    })
}

/// Whether `node` holds nothing (`key:`, `~`, `null`): a section to make.
fn is_null(node: &Node) -> bool {
    matches!(&node.value, Value::Scalar(s)
        if s.plain && s.tag.is_none() && ["", "~", "null", "Null", "NULL"].contains(&s.text.as_str()))
}

/// Puts `value` at the dotted `key` of `root`, making the maps on the way
/// (their keys placed where `value` is).
fn set(root: &mut Node, key: &str, value: Node) -> Result<(), String> {
    let key_path = key.replace('[', ".").replace(']', "");
    let parts: Vec<&str> = key_path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}` is not a dotted path like app.workers"));
    }
    let origin = value.at;
    let made = |text: &str| Node {
        value: Value::Scalar(Scalar {
            text: text.to_string(),
            plain: true,
            tag: None,
        }),
        at: origin,
    };
    let mut at = root;
    let mut value = Some(value);
    for (i, part) in parts.iter().enumerate() {
        let done = &parts[..i];
        let last = i + 1 == parts.len();
        if is_null(at) {
            at.value = Value::Map(Vec::new());
        }
        at = match &mut at.value {
            Value::Map(entries) => {
                let index = match entries.iter().position(|(k, _)| k.text() == Some(part)) {
                    Some(index) => index,
                    None => {
                        entries.push((made(part), made("")));
                        entries.len() - 1
                    }
                };
                if last {
                    entries[index].1 = value.take().expect("set once");
                    return Ok(());
                }
                &mut entries[index].1
            }
            Value::Seq(list) => {
                let names: Vec<String> = list
                    .iter()
                    .filter_map(|e| e.get("name").and_then(|(_, v)| v.text()))
                    .map(str::to_string)
                    .collect();
                let index = part
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n < list.len())
                    .or_else(|| {
                        list.iter()
                            .position(|e| e.get("name").and_then(|(_, v)| v.text()) == Some(part))
                    });
                let Some(index) = index else {
                    return Err(format!(
                        "`{}` has no entry `{part}`: name one ({}) or give its index, from 0",
                        done.join("."),
                        names.join(", ")
                    ));
                };
                if last {
                    list[index] = value.take().expect("set once");
                    return Ok(());
                }
                &mut list[index]
            }
            Value::Scalar(_) => {
                return Err(format!(
                    "`{}` is a value, not a section: it has no `{part}`",
                    done.join(".")
                ))
            }
        };
    }
    unreachable!("the last part returns")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn good() -> Loaded {
        super::super::load(Path::new("inventory/lab-ha.yml")).unwrap()
    }

    fn parsed(overrides: &[&str]) -> Vec<Override> {
        overrides
            .iter()
            .map(|o| Override::parse(o).unwrap())
            .collect()
    }

    /// lab-ha.yml with `overrides`; an error, the first.
    fn with(overrides: &[&str]) -> Result<Loaded, InputError> {
        apply(good(), &parsed(overrides)).map_err(|mut e| e.0.remove(0))
    }

    #[test]
    fn values_are_set_by_dotted_keys_names_and_indexes() {
        let inv = with(&[
            "app.workers=7",
            "servers.web2.address=10.249.0.99",
            "servers[0].ssh.port=2222",
            "firewall.enabled=true",
        ])
        .unwrap();
        assert_eq!(inv.inventory.app.workers.0, 7);
        assert_eq!(
            inv.server("web2").unwrap().address.to_string(),
            "10.249.0.99"
        );
        assert_eq!(inv.inventory.servers.0[0].ssh.port.unwrap().0, 2222);
        assert!(inv.inventory.firewall.enabled);
        // Later errors about a value set point at its argument, the
        // others at the file's lines.
        let e = inv.error_at("app.workers", "too many");
        assert_eq!((e.file.as_path(), e.line), (Path::new("-e app.workers"), 0));
        let e = inv.error_at("app.source", "missing");
        assert_eq!(e.file, Path::new("inventory/lab-ha.yml"));
        assert!(e.line > 0);
    }

    #[test]
    fn a_stage_s_values_are_set_after_its_bases_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize("inventory/lab-ha.yml").unwrap();
        let stage = dir.path().join("stage.yml");
        std::fs::write(
            &stage,
            format!("extends: {}\napp:\n  <<: {{workers: 3}}\n", base.display()),
        )
        .unwrap();
        let merged = || super::super::load(&stage).unwrap();
        assert_eq!(merged().inventory.app.workers.0, 3, "the stage's merge key");
        let inv = apply(
            merged(),
            &parsed(&["app.workers=5", "servers.web2.address=10.249.0.99"]),
        )
        .unwrap();
        // Both over what the stage merged: the stage's value (through its
        // merge key), the base's server list.
        assert_eq!(inv.inventory.app.workers.0, 5);
        assert_eq!(
            inv.server("web2").unwrap().address.to_string(),
            "10.249.0.99"
        );
        // The rest of the base stays.
        assert_eq!(
            inv.inventory.servers.0.len(),
            good().inventory.servers.0.len()
        );
        assert_eq!(
            inv.inventory.app.kind.name(),
            good().inventory.app.kind.name()
        );
        // A mistake is still the argument's, not the base's.
        let e = apply(merged(), &parsed(&["mysql.pasword=x"])).unwrap_err();
        assert_eq!(e.0[0].file, Path::new("-e mysql.pasword"), "{e}");
    }

    #[test]
    fn a_bad_override_is_told_as_the_argument_s() {
        let e = with(&["app.wokers=2"]).unwrap_err();
        assert_eq!(e.file, Path::new("-e app.wokers"), "{e}");
        assert_eq!(e.line, 0);
        assert!(e.message.contains("unknown key `wokers`"), "{e}");
        assert_eq!(e.help.as_deref(), Some("did you mean `workers`?"));

        let e = with(&["app.workers=many"]).unwrap_err();
        assert!(e.message.contains("expected a whole number"), "{e}");

        let e = with(&["servers.web9.address=10.249.0.9"]).unwrap_err();
        assert!(e.message.contains("no entry `web9`"), "{e}");
        assert!(e.message.contains("web1"), "{e}");

        let e = with(&["app.kind.x=1"]).unwrap_err();
        assert!(e.message.contains("`app.kind` is a value"), "{e}");

        // A password written out is refused, and not shown.
        let e = with(&["mysql.password=hunter2-hunter2"]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");

        // Checks across keys see the override too.
        let e = with(&["servers.web2.name=web1"]).unwrap_err();
        assert!(e.message.contains("appears twice"), "{e}");
    }

    #[test]
    fn arguments_are_key_equals_scalar() {
        assert_eq!(
            Override::parse("a.b=4").unwrap().value,
            serde_yaml::Value::from(4)
        );
        assert_eq!(
            Override::parse("a.b=x=y").unwrap().value,
            serde_yaml::Value::from("x=y")
        );
        for bad in ["novalue", "=4", "a=[1, 2]", "a={b: 1}", "a=: x"] {
            assert!(Override::parse(bad).is_err(), "{bad}");
        }
    }
}
