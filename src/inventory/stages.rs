//! Stages: an inventory may say `extends: base.yml` (a path relative to
//! it) and override keys of its base, mappings merged key by key, lists
//! and values replaced whole. A base may extend another; a circle is
//! refused. Every file's keys keep their own places, so a mistake is shown
//! in the file that holds it.

use std::path::{Path, PathBuf};

use super::tree::{self, Document, Node, Origin, Source};
use crate::error::InputError;
use crate::local_file::{read_input, ReadError, MAX_INPUT_BYTES};

/// What makes an inventory for who has none.
const INIT: &str =
    "`foobar init --domain <your domain> --address <the server's IPv4>` writes a commented one";

/// The key that names a stage's base.
const EXTENDS: &str = "extends";

/// Reads the inventory at `path` and the bases it extends, merged.
pub fn read(path: &Path) -> Result<Document, Vec<InputError>> {
    let mut sources = Vec::new();
    let root = read_chain(path, None, &mut sources, &mut Vec::new())?;
    Ok(Document { sources, root })
}

/// The file at `path` over its bases. `named` is where the stage that
/// extends it names it; `chain` the files read on the way (the file
/// itself, and as named), to refuse a circle.
fn read_chain(
    path: &Path,
    named: Option<&Origin>,
    sources: &mut Vec<Source>,
    chain: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<Node, Vec<InputError>> {
    // A problem with a base is shown where the stage names it.
    let at_name = |sources: &[Source], message: String, help: &str| {
        let e = match named {
            Some(o) => InputError {
                width: o.width,
                ..InputError::at(&sources[o.file].path, o.line, o.column, message)
            },
            None => InputError::new(path, message),
        };
        vec![e.with_help(help)]
    };
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(first) = chain.iter().position(|(p, _)| *p == canonical) {
        let circle: Vec<String> = chain[first..]
            .iter()
            .map(|(_, shown)| shown.display().to_string())
            .chain([path.display().to_string()])
            .collect();
        return Err(at_name(
            sources,
            format!("`extends` goes round in a circle: {}", circle.join(" → ")),
            "a base cannot extend a stage built on it: remove one `extends`",
        ));
    }
    let text = read_text(path, named.is_some()).map_err(|problem| match named {
        // Unreadable or empty: where the stage names it.
        Some(_) if problem.line == 0 => at_name(
            sources,
            format!("extends: {}", problem.message),
            &a_file_beside(path).map_or_else(
                || "name the base inventory by its path relative to this file, like `extends: base.yml`".into(),
                |name| format!("did you mean `{name}`?"),
            ),
        ),
        _ => vec![problem],
    })?;
    let file = sources.len();
    sources.push(Source {
        path: path.to_path_buf(),
        text,
    });
    let mut root = tree::parse(file, &sources[file])?;
    let Some((_, base)) = root.take(EXTENDS) else {
        return Ok(root);
    };
    let Some(name) = base.text().filter(|t| !t.is_empty()) else {
        let e = InputError {
            width: base.at.width,
            ..InputError::at(
                path,
                base.at.line,
                base.at.column,
                "extends: expected the path of the base inventory",
            )
        };
        return Err(vec![e.with_help("write `extends: base.yml`")]);
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(name);
    chain.push((canonical, path.to_path_buf()));
    let base = read_chain(&base_path, Some(&base.at), sources, chain)?;
    Ok(tree::merge(base, root))
}

/// The text of an inventory file: at most `MAX_INPUT_BYTES`, UTF-8, not
/// empty. `base`: named by `extends`, not given with -i.
fn read_text(path: &Path, base: bool) -> Result<String, InputError> {
    let what = if base { "base inventory" } else { "inventory" };
    let bytes = read_input(path).map_err(|e| match e {
        ReadError::TooBig => InputError::new(
            path,
            format!(
                "the {what} is larger than {MAX_INPUT_BYTES} bytes: inventories over {MAX_INPUT_BYTES} bytes are refused"
            ),
        ),
        ReadError::Io(e) if base && e.kind() == std::io::ErrorKind::NotFound => {
            InputError::new(path, format!("no such file: {}", path.display()))
        }
        ReadError::Io(e) if base => {
            InputError::new(path, format!("cannot read {} ({e})", path.display()))
        }
        ReadError::Io(e) => InputError::new(path, format!("cannot read the inventory ({e})"))
            .with_help(format!("pass one with -i FILE, or {INIT}")),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = position_of(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        InputError::at(
            path,
            line,
            column,
            "the file is not UTF-8 text: save it as UTF-8",
        )
    })?;
    if text.trim().is_empty() {
        return Err(InputError::new(path, format!("the {what} is empty")).with_help(INIT));
    }
    Ok(text)
}

/// A YAML file beside `path` whose name is close to its name: what a
/// misspelt `extends` meant.
fn a_file_beside(path: &Path) -> Option<String> {
    let wanted = path.file_name()?.to_str()?;
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    let names: Vec<String> = std::fs::read_dir(folder.unwrap_or(Path::new(".")))
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    crate::error::did_you_mean(wanted, &names).map(str::to_string)
}

fn position_of(valid_prefix: &[u8]) -> (usize, usize) {
    let line = valid_prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = valid_prefix
        .iter()
        .rev()
        .take_while(|&&b| b != b'\n')
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_stage_over_a_chain_of_bases() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "common.yml", "a: {x: 1, y: 1}\nl: [1, 2]\n");
        write(dir.path(), "base.yml", "extends: common.yml\na: {y: 2}\n");
        let stage = write(
            dir.path(),
            "prod.yml",
            "extends: base.yml\na: {z: 3}\nl: [9]\n",
        );
        let doc = read(&stage).unwrap();
        assert_eq!(doc.sources.len(), 3);
        let origin = |key: &str| doc.origin(key).map(|o| (o.file, o.line));
        assert_eq!(origin("a.x"), Some((2, 1)), "common.yml");
        assert_eq!(origin("a.y"), Some((1, 2)), "base.yml");
        assert_eq!(origin("a.z"), Some((0, 2)), "prod.yml");
        assert_eq!(origin("l"), Some((0, 3)), "a list replaced whole");
    }

    #[test]
    fn a_missing_base_or_a_circle_is_shown_where_it_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let stage = write(dir.path(), "prod.yml", "a: 1\nextends: nope.yml\n");
        let e = read(&stage).unwrap_err();
        assert_eq!(
            (e[0].file.clone(), e[0].line, e[0].column),
            (stage.clone(), 2, 10)
        );
        assert!(e[0].message.contains("no such file"), "{e:?}");
        write(dir.path(), "a.yml", "extends: b.yml\n");
        write(dir.path(), "b.yml", "extends: a.yml\n");
        let e = read(&dir.path().join("a.yml")).unwrap_err();
        assert!(e[0].message.contains("circle"), "{e:?}");
        assert_eq!(e[0].file, dir.path().join("b.yml"));
    }
}
