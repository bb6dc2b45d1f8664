//! An inventory's YAML as a tree whose every key and value knows where it
//! was written (file, line, column, width), across a stage and its bases.
//! Read here: duplicate keys (at the duplicate), merge keys (`<<:`),
//! aliases; stages merged (`merge`). Typed by serde through `deserialize`,
//! which reads the tree again as flow YAML and turns the place serde names
//! back into the file the user wrote, so that every mistake is shown
//! where it is and several are shown at once.

use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde::de::DeserializeOwned;

use crate::error::InputError;

/// The most mistakes shown at once.
pub const MAX_ERRORS: usize = 20;

/// The most values a file may expand to through its aliases: a few
/// aliases of aliases make billions (a "billion laughs").
const MAX_NODES: usize = 100_000;

/// The most levels of nesting.
const MAX_DEPTH: usize = 64;

/// A file read, with its text (errors show its lines).
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// Where a key or value was written: `file` indexes the document's sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub file: usize,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Characters on that line the value takes (at least 1).
    pub width: usize,
}

#[derive(Debug, Clone)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Scalar {
    pub text: String,
    /// Written without quotes: YAML may read it as a number, a boolean or
    /// nothing.
    pub plain: bool,
    pub tag: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    pub at: Origin,
}

impl Node {
    /// The text of a scalar.
    pub fn text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// Removes `key` from a mapping: its key and value.
    pub fn take(&mut self, key: &str) -> Option<(Node, Node)> {
        let Value::Map(entries) = &mut self.value else {
            return None;
        };
        let i = entries.iter().position(|(k, _)| k.text() == Some(key))?;
        Some(entries.remove(i))
    }

    /// The entry of a mapping at `key`.
    pub fn get(&self, key: &str) -> Option<&(Node, Node)> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.text() == Some(key)),
            _ => None,
        }
    }

    fn size(&self) -> usize {
        1 + match &self.value {
            Value::Scalar(_) => 0,
            Value::Seq(items) => items.iter().map(Node::size).sum(),
            Value::Map(entries) => entries.iter().map(|(k, v)| k.size() + v.size()).sum(),
        }
    }
}

/// A stage over its base: mappings merged key by key, anything else
/// (a list, a value) replaced whole by the stage's.
pub fn merge(base: Node, stage: Node) -> Node {
    let at = stage.at;
    match (base.value, stage.value) {
        (Value::Map(mut entries), Value::Map(over)) => {
            for (key, value) in over {
                match entries.iter().position(|(k, _)| k.text() == key.text()) {
                    // The key as the stage wrote it: errors about it go there.
                    Some(i) => {
                        let (_, old) = entries.remove(i);
                        entries.insert(i, (key, merge(old, value)));
                    }
                    None => entries.push((key, value)),
                }
            }
            Node {
                value: Value::Map(entries),
                at,
            }
        }
        (_, value) => Node { value, at },
    }
}

/// Reads `source` (the document's `file`-th) into a tree. YAML syntax is
/// checked by the parser serde reads with, so that its mistakes are told
/// in the words `InputError::from_yaml` knows.
pub fn parse(file: usize, source: &Source) -> Result<Node, Vec<InputError>> {
    let (path, text) = (&source.path, source.text.as_str());
    serde_yaml::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| vec![InputError::from_yaml(path, text, &e)])?;
    let mut builder = Builder {
        file,
        path,
        text,
        stack: Vec::new(),
        anchors: Vec::new(),
        nodes: 0,
        errors: Vec::new(),
        root: None,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            vec![InputError::at(
                path,
                m.line(),
                m.col() + 1,
                e.info().to_string(),
            )]
        })?;
        builder.event(event, span)?;
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors);
    }
    builder
        .root
        .ok_or_else(|| vec![InputError::new(path, "the file holds no YAML value")])
}

enum Frame {
    Seq {
        items: Vec<Node>,
        at: Origin,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        at: Origin,
        anchor: usize,
        key: Option<Node>,
        /// What `<<:` merges in, applied at the mapping's end.
        merged: Vec<Node>,
    },
}

struct Builder<'a> {
    file: usize,
    path: &'a Path,
    text: &'a str,
    stack: Vec<Frame>,
    /// By anchor id: what it names.
    anchors: Vec<Option<Node>>,
    nodes: usize,
    errors: Vec<InputError>,
    root: Option<Node>,
}

impl Builder<'_> {
    fn origin(&self, span: Span) -> Origin {
        let (start, end) = (span.start, span.end);
        let width = if end.line() == start.line() {
            end.col().saturating_sub(start.col())
        } else {
            // To the end of the first line.
            self.text
                .lines()
                .nth(start.line().saturating_sub(1))
                .map_or(1, |l| l.chars().count().saturating_sub(start.col()))
        };
        Origin {
            file: self.file,
            line: start.line(),
            column: start.col() + 1,
            width: width.max(1),
        }
    }

    fn error(&self, at: Origin, message: impl Into<String>) -> InputError {
        InputError {
            width: at.width,
            ..InputError::at(self.path, at.line, at.column, message)
        }
    }

    fn event(&mut self, event: Event, span: Span) -> Result<(), Vec<InputError>> {
        let at = self.origin(span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    }),
                    at,
                };
                self.done(node, anchor)
            }
            Event::Alias(id) => {
                // Its values keep the places of the anchored ones: where
                // they are written, and a mistake in them is told once.
                let node = self.anchors.get(id).cloned().flatten().ok_or_else(|| {
                    vec![self.error(at, "this alias names no anchor defined above it")]
                })?;
                self.done(node, 0)
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Seq {
                items: Vec::new(),
                at,
                anchor,
            }),
            Event::MappingStart(anchor, _) => self.open(Frame::Map {
                entries: Vec::new(),
                at,
                anchor,
                key: None,
                merged: Vec::new(),
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop().expect("an open collection") {
                    Frame::Seq { items, at, anchor } => (
                        Node {
                            value: Value::Seq(items),
                            at,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        mut entries,
                        at,
                        anchor,
                        merged,
                        ..
                    } => {
                        // Keys written here win over merged ones; of the
                        // merged, the first named wins.
                        for (k, v) in merged.into_iter().flat_map(merged_entries) {
                            if !entries.iter().any(|(have, _)| have.text() == k.text()) {
                                entries.push((k, v));
                            }
                        }
                        (
                            Node {
                                value: Value::Map(entries),
                                at,
                            },
                            anchor,
                        )
                    }
                };
                self.done(node, anchor)
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), Vec<InputError>> {
        if self.stack.len() >= MAX_DEPTH {
            let at = match &frame {
                Frame::Seq { at, .. } | Frame::Map { at, .. } => *at,
            };
            return Err(vec![
                self.error(at, format!("nested deeper than {MAX_DEPTH} levels"))
            ]);
        }
        self.stack.push(frame);
        Ok(())
    }

    /// A finished value: named by its anchor, then put in its parent.
    fn done(&mut self, node: Node, anchor: usize) -> Result<(), Vec<InputError>> {
        self.nodes += node.size();
        if self.nodes > MAX_NODES {
            return Err(vec![self
                .error(
                    node.at,
                    format!("the file expands to more than {MAX_NODES} values through its aliases"),
                )
                .with_help(
                    "write the values out, or name fewer aliases of aliases",
                )]);
        }
        if anchor > 0 {
            if self.anchors.len() <= anchor {
                self.anchors.resize(anchor + 1, None);
            }
            self.anchors[anchor] = Some(node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { key: slot, .. }) if slot.is_none() => {
                if !matches!(node.value, Value::Scalar(_)) {
                    let e = self
                        .error(node.at, "a key must be text")
                        .with_help("write the key as a word, like `name:`");
                    return Err(vec![e]);
                }
                *slot = Some(node);
            }
            Some(Frame::Map {
                entries,
                key,
                merged,
                ..
            }) => {
                let key = key.take().expect("a key before its value");
                let merge_key = matches!(&key.value, Value::Scalar(s) if s.plain && s.text == "<<");
                if merge_key {
                    let mappings = match &node.value {
                        Value::Map(_) => true,
                        Value::Seq(items) => items.iter().all(|i| matches!(i.value, Value::Map(_))),
                        Value::Scalar(_) => false,
                    };
                    if mappings {
                        merged.push(node);
                    } else {
                        let e = self
                            .error(node.at, "`<<:` merges a mapping in, and this is not one")
                            .with_help("write `<<: *name` with `&name` on a mapping above, or a list of such aliases");
                        self.errors.push(e);
                    }
                } else if let Some((first, _)) =
                    entries.iter().find(|(k, _)| k.text() == key.text())
                {
                    let name = key.text().unwrap_or_default();
                    let e = InputError {
                        help: Some(format!(
                            "keep one `{name}:` (the first is at line {}), or merge what they hold",
                            first.at.line
                        )),
                        ..self.error(key.at, format!("`{name}` is written twice in this mapping"))
                    };
                    self.errors.push(e);
                } else {
                    entries.push((key, node));
                }
            }
        }
        Ok(())
    }
}

/// The entries a `<<:` value brings: a mapping's, or those of a list of
/// mappings, the first one's winning.
fn merged_entries(node: Node) -> Vec<(Node, Node)> {
    match node.value {
        Value::Map(entries) => entries,
        Value::Seq(items) => items.into_iter().flat_map(merged_entries).collect(),
        Value::Scalar(_) => Vec::new(),
    }
}

/// A document: its files (a stage first, then its bases) and the tree
/// merged from them.
#[derive(Debug, Clone)]
pub struct Document {
    pub sources: Vec<Source>,
    pub root: Node,
}

/// What serde's place in the flow text stands for in the tree.
#[derive(Debug, Clone)]
struct Place {
    /// Column in the flow text, 1-based.
    column: usize,
    /// Entry or item indexes from the root.
    path: Vec<usize>,
    /// The key of an entry, not its value.
    key: bool,
}

impl Document {
    /// A document of one file.
    pub fn read(path: &Path, text: &str) -> Result<Self, Vec<InputError>> {
        let source = Source {
            path: path.to_path_buf(),
            text: text.to_string(),
        };
        let root = parse(0, &source)?;
        Ok(Self {
            sources: vec![source],
            root,
        })
    }

    /// An error at `origin`.
    pub fn error(&self, origin: Origin, message: impl Into<String>) -> InputError {
        InputError {
            width: origin.width,
            ..InputError::at(
                &self.sources[origin.file].path,
                origin.line,
                origin.column,
                message,
            )
        }
    }

    /// An error about the file as a whole (the stage given).
    pub fn error_in_file(&self, message: impl Into<String>) -> InputError {
        InputError::new(&self.sources[0].path, message)
    }

    /// Where the value at a dotted key path is written (`app.source`,
    /// `servers[0].ssh.port`): a value's own place, a mapping's or list's
    /// key; for a path partly absent, the nearest part present.
    pub fn origin(&self, key: &str) -> Option<Origin> {
        let mut node = &self.root;
        let mut at = None;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some((k, value)) = node.get(name) else {
                break;
            };
            let whole = matches!(value.value, Value::Scalar(_));
            (node, at) = (value, Some(if whole { value.at } else { k.at }));
            if let (Some(i), Value::Seq(items)) = (index, &value.value) {
                let Some(item) = items.get(i) else {
                    break;
                };
                (node, at) = (item, Some(item.at));
            }
        }
        at
    }

    /// An error about the value at `key`, at its place (or the file's).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> InputError {
        match self.origin(key) {
            Some(origin) => self.error(origin, message),
            None => self.error_in_file(message),
        }
    }

    /// The tree as a `T`, or every independent mistake found: each one
    /// serde finds is taken out and the rest read again, until serde
    /// reads it whole, finds one that taking out would only hide (a
    /// missing key), or `MAX_ERRORS` are found.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Vec<InputError>> {
        let mut root = self.root.clone();
        let mut errors = Vec::new();
        // Dotted paths taken out: a key then "missing" is that mistake again.
        let mut taken: Vec<String> = Vec::new();
        loop {
            let mut flow = Flow::default();
            flow.node(&root, &mut Vec::new(), Role::Value);
            let e = match serde_yaml::from_str::<T>(&flow.text) {
                Ok(value) if errors.is_empty() => return Ok(value),
                Ok(_) => return Err(errors),
                Err(e) => e,
            };
            let column = e.location().map_or(1, |l| l.column());
            let place = flow
                .places
                .iter()
                .rev()
                .find(|p| p.column <= column)
                .cloned()
                .unwrap_or(Place {
                    column: 1,
                    path: Vec::new(),
                    key: false,
                });
            let words = InputError::yaml_words(&e);
            if let Some(field) = missing_field(&words) {
                // serde names the mapping that lacks it: its key is where it goes.
                let (holder, dotted) = (entry_key(&root, &place.path), dotted(&root, &place.path));
                let full = if dotted.is_empty() {
                    field.to_string()
                } else {
                    format!("{dotted}.{field}")
                };
                let inside = format!("{full}.");
                let told = taken
                    .iter()
                    .any(|t| same_mistake(t, &full) || t.starts_with(&inside));
                if !told {
                    // A list's item has no key: the item itself.
                    let item = (!place.path.is_empty()).then(|| node_at(&root, &place.path).at);
                    let origin = holder.map(|k| k.at).or(item);
                    errors.push(self.explained(origin, &words));
                }
                // The mapping taken out whole, the rest is read on; serde
                // asks for the root's keys last.
                if place.path.is_empty() || errors.len() >= MAX_ERRORS {
                    return Err(errors);
                }
                taken.push(dotted);
                remove(&mut root, &place.path);
                continue;
            }
            let here = dotted(&root, &place.path);
            // What holds a value taken out is wrong only for that.
            let holder = |t: &String| {
                t.strip_prefix(here.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
            };
            if taken.iter().any(holder) {
                return Err(errors);
            }
            let node = node_at(&root, &place.path);
            let origin = match (place.key, entry_key(&root, &place.path)) {
                (true, Some(key)) => key.at,
                _ => node.at,
            };
            let error = self.explained(Some(origin), &words);
            // A value named again by an alias is one mistake, told once.
            if !errors.iter().any(|e| same_place(e, &error)) {
                errors.push(error);
            }
            if place.path.is_empty() || errors.len() >= MAX_ERRORS {
                return Err(errors);
            }
            taken.push(here);
            remove(&mut root, &place.path);
        }
    }

    /// serde's words explained, at `origin` (the file's when None).
    fn explained(&self, origin: Option<Origin>, words: &str) -> InputError {
        let base = match origin {
            Some(o) => self.error(o, ""),
            None => self.error_in_file(""),
        };
        InputError::explain_at(base, words)
    }
}

/// Whether two errors point at the same place.
pub fn same_place(a: &InputError, b: &InputError) -> bool {
    (&a.file, a.line, a.column) == (&b.file, b.line, b.column)
}

/// Whether a key missing at dotted path `missing` is the value `taken`
/// out before, or a key beside it misspelt (`domian` for `domain`).
fn same_mistake(taken: &str, missing: &str) -> bool {
    let split = |p: &str| match p.rsplit_once('.') {
        Some((parent, key)) => (parent.to_string(), key.to_string()),
        None => (String::new(), p.to_string()),
    };
    let ((parent, key), (missing_parent, field)) = (split(taken), split(missing));
    taken == missing
        || (parent == missing_parent && crate::error::did_you_mean(&key, &[&field]).is_some())
}

/// `missing field `x`` names x.
fn missing_field(words: &str) -> Option<&str> {
    let after = words.split("missing field `").nth(1)?;
    after.split('`').next()
}

fn node_at<'a>(root: &'a Node, path: &[usize]) -> &'a Node {
    path.iter().fold(root, |node, &i| match &node.value {
        Value::Seq(items) => &items[i],
        Value::Map(entries) => &entries[i].1,
        Value::Scalar(_) => node,
    })
}

/// The key of the entry at `path`, when it is an entry of a mapping.
fn entry_key<'a>(root: &'a Node, path: &[usize]) -> Option<&'a Node> {
    let (last, parent) = path.split_last()?;
    match &node_at(root, parent).value {
        Value::Map(entries) => Some(&entries[*last].0),
        _ => None,
    }
}

/// `servers[0].ssh.port`, as serde and the inventory's errors write it.
fn dotted(root: &Node, path: &[usize]) -> String {
    let mut out = String::new();
    let mut node = root;
    for &i in path {
        match &node.value {
            Value::Seq(items) => {
                out.push_str(&format!("[{i}]"));
                node = &items[i];
            }
            Value::Map(entries) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(entries[i].0.text().unwrap_or_default());
                node = &entries[i].1;
            }
            Value::Scalar(_) => break,
        }
    }
    out
}

fn remove(root: &mut Node, path: &[usize]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for &i in parent {
        node = match &mut node.value {
            Value::Seq(items) => &mut items[i],
            Value::Map(entries) => &mut entries[i].1,
            Value::Scalar(_) => return,
        };
    }
    match &mut node.value {
        Value::Seq(items) => {
            items.remove(*last);
        }
        Value::Map(entries) => {
            entries.remove(*last);
        }
        Value::Scalar(_) => {}
    }
}

/// The tree written again as one line of flow YAML for serde, with the
/// column each key and value starts at.
#[derive(Default)]
struct Flow {
    text: String,
    /// Characters written so far (columns count characters).
    chars: usize,
    places: Vec<Place>,
}

/// What a value is to the collection around it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Item,
}

impl Flow {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.chars += s.chars().count();
    }

    fn node(&mut self, node: &Node, path: &mut Vec<usize>, role: Role) {
        self.places.push(Place {
            column: self.chars + 1,
            path: path.clone(),
            key: role == Role::Key,
        });
        match &node.value {
            Value::Scalar(s) => {
                if let Some(tag) = &s.tag {
                    self.push(tag);
                    self.push(" ");
                }
                let text = flow_scalar(s);
                // A flow list has no empty item: `~` is one.
                let empty_item = text.is_empty() && role == Role::Item;
                self.push(if empty_item { "~" } else { &text });
            }
            Value::Seq(items) => {
                self.push("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    path.push(i);
                    self.node(item, path, Role::Item);
                    path.pop();
                }
                self.push("]");
            }
            Value::Map(entries) => {
                self.push("{");
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    path.push(i);
                    self.node(k, path, Role::Key);
                    self.push(": ");
                    self.node(v, path, Role::Value);
                    path.pop();
                }
                self.push("}");
            }
        }
    }
}

/// A scalar as flow YAML reads it the way the file's YAML did: a plain one
/// as written (quoted when flow syntax needs it, which only text can), the
/// others double-quoted.
fn flow_scalar(s: &Scalar) -> String {
    if s.plain {
        // Nothing written (`key:`): nothing, which YAML reads as an empty
        // mapping where one is expected, as the file's YAML did.
        if s.text.is_empty() {
            return String::new();
        }
        let needs_quotes = s.text.contains(['\n', ',', '[', ']', '{', '}', '#'])
            || s.text.contains(": ")
            || s.text.ends_with(':');
        if !needs_quotes {
            return s.text.clone();
        }
    }
    serde_json::to_string(&s.text).expect("a string serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Result<Document, Vec<InputError>> {
        Document::read(Path::new("inv.yml"), text)
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct App {
        #[allow(dead_code)] // read to be required
        kind: String,
        #[serde(default)]
        workers: u8,
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        app: App,
        #[serde(default)]
        on: bool,
    }

    #[test]
    fn values_read_as_yaml_reads_them() {
        let d = doc("app: {kind: x, workers: 7, env: {A: \"1, 2\", B: 'y', C: a b}}\non: true\n")
            .unwrap();
        let top: Top = d.deserialize().unwrap();
        assert_eq!(top.app.workers, 7);
        assert_eq!(top.app.env["A"], "1, 2");
        assert_eq!(top.app.env["C"], "a b");
        assert!(top.on);
        let d = doc("app:\n  kind: \"7\"\n  workers: \"7\"\n").unwrap();
        let e = d.deserialize::<Top>().unwrap_err();
        assert_eq!((e[0].line, e[0].column, e[0].width), (3, 12, 3), "{e:?}");
    }

    #[test]
    fn every_independent_mistake_at_its_place() {
        let d =
            doc("app:\n  kind: x\n  wokers: 2\n  env: {A: [1]}\non: yes\ncolour: blue\n").unwrap();
        let e = d.deserialize::<Top>().unwrap_err();
        let at: Vec<(usize, usize)> = e.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(at, [(3, 3), (4, 12), (5, 5), (6, 1)], "{e:?}");
        // A key with a bad value is not then reported missing.
        let d = doc("app:\n  kind: [x]\n").unwrap();
        assert_eq!(d.deserialize::<Top>().unwrap_err().len(), 1);
        // Nor does it hide the mistakes after it.
        let d = doc("app:\n  kind: [x]\n  wokers: 1\non: maybe\n").unwrap();
        let e = d.deserialize::<Top>().unwrap_err();
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4], "{e:?}");
        let d = doc("app:\n  workers: 2\n").unwrap();
        let e = d.deserialize::<Top>().unwrap_err();
        assert_eq!((e[0].line, e[0].column), (1, 1), "{e:?}");
        assert!(e[0].message.contains("`kind` is missing"), "{e:?}");
    }

    #[test]
    fn duplicates_at_the_duplicate_and_merge_keys_merged() {
        let e = doc("app:\n  kind: x\nb: 1\napp:\n  kind: y\n").unwrap_err();
        assert_eq!((e[0].line, e[0].column, e[0].width), (4, 1, 3), "{e:?}");
        assert!(e[0].help.as_ref().unwrap().contains("line 1"));
        let d = doc("base: &b {kind: x, workers: 2}\napp:\n  <<: *b\n  workers: 3\n").unwrap();
        let app = &d.root.get("app").unwrap().1;
        assert_eq!(app.get("kind").unwrap().1.text(), Some("x"));
        assert_eq!(app.get("workers").unwrap().1.text(), Some("3"));
        assert!(doc("a: {<<: 1}\n").is_err());
    }

    #[test]
    fn aliases_cannot_explode() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in ["b", "c", "d", "e", "f", "g"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f"])
        {
            text.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{prev}"); 10].join(", ")
            ));
        }
        let e = doc(&text).unwrap_err();
        assert!(e[0].message.contains("expands to more than"), "{e:?}");
    }

    #[test]
    fn stages_merge_maps_and_replace_lists() {
        let base = doc("app: {kind: x, workers: 2}\nlist: [1, 2]\n")
            .unwrap()
            .root;
        let stage = doc("app: {workers: 3}\nlist: [3]\n").unwrap().root;
        let merged = merge(base, stage);
        let app = &merged.get("app").unwrap().1;
        assert_eq!(app.get("kind").unwrap().1.text(), Some("x"));
        assert_eq!(app.get("workers").unwrap().1.text(), Some("3"));
        let Value::Seq(list) = &merged.get("list").unwrap().1.value else {
            panic!()
        };
        assert_eq!(list.len(), 1);
    }
}
