//! The app's code base on this machine, as a release ships it. A code base
//! in a git work tree is what git tracks at a commit (`app.ref`, HEAD by
//! default, which must then have no uncommitted changes), read through the
//! git command line; any other folder is its files less what
//! `.foobarignore` lists (gitignore's syntax) and what is never code
//! (`.venv`, `node_modules`, `__pycache__`, `.git`, `*.pyc`). Links are
//! kept as links when they lead inside the code base and refused when they
//! lead out of it. The release's archive and its id are made from exactly
//! these files.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// The ignore file of a code base that is not in a git work tree.
pub const IGNORE_FILE: &str = ".foobarignore";

/// Never shipped from a plain folder: made where the app runs (a release
/// gets its own virtualenv), caches, or version control's own data.
const NEVER_SHIPPED: [&str; 4] = [".venv", "node_modules", "__pycache__", ".git"];

/// Every file of a release carries this modification time, so that the
/// same tree always packs to the same bytes (2000-01-01 UTC).
const RELEASE_MTIME: u64 = 946_684_800;

/// How many links one path may go through before it is taken for a loop
/// (Linux's own limit).
const MAX_HOPS: usize = 40;

/// Variables that would point git at another repository than the code
/// base's (set, for instance, when foobar runs from a git hook).
const GIT_ENV: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
];

#[derive(Debug, thiserror::Error)]
pub enum CodeBaseError {
    #[error("the code base folder {0} does not exist: name the folder that holds the app")]
    Missing(PathBuf),
    #[error("the code base folder {0} is empty")]
    Empty(PathBuf),
    #[error(
        "git tracks no file under {path} at {git_ref}: commit the app's files (`git add`, `git commit`), or set app.ref to a commit that has them"
    )]
    NothingTracked { path: PathBuf, git_ref: String },
    #[error(
        "the code base {path} has changes that HEAD does not have: {}; commit them, put them aside (`git stash`), or set app.ref to the commit to deploy",
        files.join(", ")
    )]
    Dirty { path: PathBuf, files: Vec<String> },
    #[error(
        "`{git_ref}` is not a commit of the git repository of {path}: name a branch, a tag or a commit it has (`git branch`, `git tag`, `git log`)"
    )]
    UnknownRef { path: PathBuf, git_ref: String },
    #[error(
        "set, but the code base {0} is not in a git work tree: remove app.ref, or make the code base a git repository"
    )]
    RefWithoutGit(PathBuf),
    #[error("{path} is in a git work tree but git cannot be run ({source}): install git")]
    NoGit {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`git {args}` failed in {path}: {stderr}")]
    Git {
        path: PathBuf,
        args: String,
        stderr: String,
    },
    #[error(
        "{link} is a link to {target}, outside the code base: a release holds only the code base; make it a relative link to a path inside it, copy what it points to into the code base, or leave it out (`{IGNORE_FILE}`, or `git rm`)"
    )]
    LinkOutside { link: PathBuf, target: String },
    #[error("{link} is a loop of links (to {target}): remove it or make it point to a file")]
    LinkLoop { link: PathBuf, target: String },
    #[error(
        "{0} is neither a file, a folder nor a link: list it in `{IGNORE_FILE}` to leave it out"
    )]
    Special(PathBuf),
    #[error("{0} is not UTF-8: rename it")]
    NotUtf8(PathBuf),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the code base: {0}")]
    Walk(#[from] ignore::Error),
}

impl CodeBaseError {
    /// The mistake is in `app.ref` rather than in the code base.
    pub fn about_ref(&self) -> bool {
        matches!(self, Self::UnknownRef { .. } | Self::RefWithoutGit(_))
    }
}

/// One path of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        data: Vec<u8>,
        executable: bool,
    },
    /// A link, kept as one; its target leads inside the code base.
    Link(String),
}

/// The files a release ships, by path relative to the code base's top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBase {
    entries: BTreeMap<PathBuf, Entry>,
}

/// Code bases read once a run: every app server's wheels and release
/// steps read the same one, and in a git work tree a read runs git four
/// times. Shared by the clones of one loaded inventory.
#[derive(Debug, Clone, Default)]
pub struct ReadOnce(Arc<Mutex<HashMap<ReadKey, Arc<CodeBase>>>>);

/// A code base's folder and the git ref it was read at.
type ReadKey = (PathBuf, Option<String>);

impl ReadOnce {
    /// `read`, or what it gave for the same folder and ref before.
    pub fn read(&self, src: &Path, git_ref: Option<&str>) -> Result<Arc<CodeBase>, CodeBaseError> {
        let key = (src.to_path_buf(), git_ref.map(str::to_string));
        if let Some(code) = self
            .0
            .lock()
            .expect("no reader panics holding it")
            .get(&key)
        {
            return Ok(code.clone());
        }
        let code = Arc::new(read(src, git_ref)?);
        self.0
            .lock()
            .expect("no reader panics holding it")
            .insert(key, code.clone());
        Ok(code)
    }
}

/// A shipped file's mode in the release.
fn file_mode(executable: bool) -> u32 {
    if executable {
        0o755
    } else {
        0o644
    }
}

/// Adds one entry (its path, mode and content, or its link) to a digest.
fn digest_entry(hasher: &mut Sha256, name: &str, entry: &Entry) {
    match entry {
        Entry::File { data, executable } => {
            let mode = file_mode(*executable);
            hasher.update(format!("{name}\0{mode:o}\0{}\0", data.len()));
            hasher.update(data);
        }
        Entry::Link(target) => hasher.update(format!("{name}\0link\0{target}\0")),
    }
}

/// The code base at `src`: what git tracks at `git_ref` (HEAD when None)
/// in a git work tree, the folder's files less the ignored ones otherwise.
pub fn read(src: &Path, git_ref: Option<&str>) -> Result<CodeBase, CodeBaseError> {
    if !src.is_dir() {
        return Err(CodeBaseError::Missing(src.to_path_buf()));
    }
    let entries = if in_git_work_tree(src) {
        from_git(src, git_ref)?
    } else if git_ref.is_some() {
        return Err(CodeBaseError::RefWithoutGit(src.to_path_buf()));
    } else {
        from_folder(src)?
    };
    if entries.is_empty() {
        return Err(CodeBaseError::Empty(src.to_path_buf()));
    }
    let code = CodeBase { entries };
    code.check_links(src)?;
    Ok(code)
}

impl CodeBase {
    /// A shipped file's content (`requirements.txt`); None for a path that
    /// is not a shipped file.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        match self.entries.get(Path::new(path)) {
            Some(Entry::File { data, .. }) => Some(data),
            _ => None,
        }
    }

    /// Whether `path` is shipped, as a file or a link.
    pub fn has(&self, path: &str) -> bool {
        self.entries.contains_key(Path::new(path))
    }

    /// The release's tar archive (in path order, fixed times: the same
    /// files always give the same bytes) and its id: the first 12 hex
    /// digits of a SHA-256 over every path, mode, content and link.
    pub fn pack(&self) -> Result<(String, Vec<u8>), CodeBaseError> {
        let mut hasher = Sha256::new();
        let mut builder = tar::Builder::new(Vec::new());
        let packing = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CodeBaseError::Io { path, source }
        };
        for (path, entry) in &self.entries {
            let name = path
                .to_str()
                .ok_or_else(|| CodeBaseError::NotUtf8(path.clone()))?;
            let mut header = tar::Header::new_gnu();
            header.set_mtime(RELEASE_MTIME);
            match entry {
                Entry::File { data, executable } => {
                    let mode = file_mode(*executable);
                    digest_entry(&mut hasher, name, entry);
                    header.set_size(data.len() as u64);
                    header.set_mode(mode);
                    header.set_entry_type(tar::EntryType::Regular);
                    builder
                        .append_data(&mut header, name, data.as_slice())
                        .map_err(packing(path))?;
                }
                Entry::Link(target) => {
                    digest_entry(&mut hasher, name, entry);
                    header.set_size(0);
                    header.set_mode(0o777);
                    header.set_entry_type(tar::EntryType::Symlink);
                    builder
                        .append_link(&mut header, name, target)
                        .map_err(packing(path))?;
                }
            }
        }
        let archive = builder.into_inner().map_err(packing(Path::new("")))?;
        let id = crate::digest::hex(&hasher.finalize()[..6]);
        Ok((id, archive))
    }

    /// A SHA-256 (hex) over the path, mode and content of every shipped
    /// entry one of `globs` matches, in path order: what a release step
    /// reads of the code base. Err(i) when `globs[i]` matches nothing.
    pub fn digest_matching(&self, globs: &[globset::Glob]) -> Result<String, usize> {
        let matchers: Vec<_> = globs.iter().map(|g| g.compile_matcher()).collect();
        let mut used = vec![false; globs.len()];
        let mut hasher = Sha256::new();
        for (path, entry) in &self.entries {
            let mut matched = false;
            for (m, used) in matchers.iter().zip(used.iter_mut()) {
                if m.is_match(path) {
                    *used = true;
                    matched = true;
                }
            }
            if matched {
                digest_entry(&mut hasher, &path.to_string_lossy(), entry);
            }
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(i);
        }
        Ok(crate::digest::hex(&hasher.finalize()))
    }

    /// Whether the code base ships `path` or anything under it.
    pub fn ships_under(&self, path: &str) -> bool {
        let path = Path::new(path);
        self.entries.keys().any(|p| p.starts_with(path))
    }

    /// Every link leads inside the code base, as the release will have it.
    fn check_links(&self, src: &Path) -> Result<(), CodeBaseError> {
        for (path, entry) in &self.entries {
            if let Entry::Link(target) = entry {
                let fault = |e: LinkFault| {
                    let link = src.join(path);
                    let target = target.clone();
                    match e {
                        LinkFault::Outside => CodeBaseError::LinkOutside { link, target },
                        LinkFault::Loop => CodeBaseError::LinkLoop { link, target },
                    }
                };
                self.follow(path, target, 0).map_err(fault)?;
            }
        }
        Ok(())
    }

    /// Where the link at `link` to `target` leads, as the path's
    /// components from the code base's top, following the links on the
    /// way as the server will.
    fn follow(&self, link: &Path, target: &str, hops: usize) -> Result<PathBuf, LinkFault> {
        if hops > MAX_HOPS {
            return Err(LinkFault::Loop);
        }
        let target = Path::new(target);
        if target.is_absolute() {
            return Err(LinkFault::Outside);
        }
        let mut at = link.parent().map(Path::to_path_buf).unwrap_or_default();
        for part in target.components() {
            match part {
                // Above the top: out of the code base.
                Component::ParentDir => at.pop().then_some(()).ok_or(LinkFault::Outside)?,
                Component::Normal(name) => {
                    at.push(name);
                    if let Some(Entry::Link(next)) = self.entries.get(&at) {
                        at = self.follow(&at, next, hops + 1)?;
                    }
                }
                _ => {}
            }
        }
        Ok(at)
    }
}

enum LinkFault {
    Outside,
    Loop,
}

/// A `.git` in the folder or one above it.
fn in_git_work_tree(src: &Path) -> bool {
    let src = src.canonicalize().unwrap_or_else(|_| src.to_path_buf());
    src.ancestors().any(|dir| dir.join(".git").exists())
}

/// `git -C src ARGS`, its output; never through a shell, with git's own
/// variables of this environment left out.
fn git(src: &Path, args: &[&str]) -> Result<Vec<u8>, CodeBaseError> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(src).args(args).stdin(Stdio::null());
    for var in GIT_ENV {
        cmd.env_remove(var);
    }
    let out = cmd.output().map_err(|source| CodeBaseError::NoGit {
        path: src.to_path_buf(),
        source,
    })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(CodeBaseError::Git {
            path: src.to_path_buf(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn git_text(src: &Path, args: &[&str]) -> Result<String, CodeBaseError> {
    let out = git(src, args)?;
    String::from_utf8(out).map_err(|_| CodeBaseError::NotUtf8(src.to_path_buf()))
}

/// What git tracks under `src` at `git_ref`.
fn from_git(src: &Path, git_ref: Option<&str>) -> Result<BTreeMap<PathBuf, Entry>, CodeBaseError> {
    let prefix = git_text(src, &["rev-parse", "--show-prefix"])?;
    let prefix = prefix.trim_end_matches('\n');
    let wanted = git_ref.unwrap_or("HEAD");
    let commit = git_text(
        src,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{wanted}^{{commit}}"),
        ],
    )
    .map_err(|_| CodeBaseError::UnknownRef {
        path: src.to_path_buf(),
        git_ref: wanted.to_string(),
    })?;
    if wanted == "HEAD" {
        refuse_changes(src, prefix)?;
    }
    // Run in a sub-folder of the work tree, git archives that folder.
    let archive = git(src, &["archive", "--format=tar", commit.trim()])?;
    let entries = unpack(src, &archive)?;
    if entries.is_empty() {
        return Err(CodeBaseError::NothingTracked {
            path: src.to_path_buf(),
            git_ref: wanted.to_string(),
        });
    }
    Ok(entries)
}

/// Refuses tracked files under `src` (at `prefix` in the work tree) that
/// differ from HEAD, staged or not.
fn refuse_changes(src: &Path, prefix: &str) -> Result<(), CodeBaseError> {
    let status = git(
        src,
        &[
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=no",
            "--no-renames",
            "--",
            ".",
        ],
    )?;
    let files: Vec<String> = status
        .split(|b| *b == 0)
        .filter(|e| e.len() > 3)
        .map(|e| {
            let path = String::from_utf8_lossy(&e[3..]);
            path.strip_prefix(prefix).unwrap_or(&path).to_string()
        })
        .collect();
    if files.is_empty() {
        Ok(())
    } else {
        Err(CodeBaseError::Dirty {
            path: src.to_path_buf(),
            files,
        })
    }
}

/// The files and links of `git archive`'s tar.
fn unpack(src: &Path, archive: &[u8]) -> Result<BTreeMap<PathBuf, Entry>, CodeBaseError> {
    let io = |source| CodeBaseError::Io {
        path: src.to_path_buf(),
        source,
    };
    let mut entries = BTreeMap::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let kind = entry.header().entry_type();
        let shipped = if kind.is_file() {
            let executable = entry.header().mode().map_err(io)? & 0o111 != 0;
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(io)?;
            Entry::File { data, executable }
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(io)?
                .unwrap_or_default()
                .into_owned();
            Entry::Link(link_text(&path, &target)?)
        } else {
            // Folders, and git's own header holding the commit.
            continue;
        };
        entries.insert(path, shipped);
    }
    Ok(entries)
}

fn link_text(link: &Path, target: &Path) -> Result<String, CodeBaseError> {
    target
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| CodeBaseError::NotUtf8(link.to_path_buf()))
}

/// The folder's files, less `.foobarignore`'s and those never shipped.
fn from_folder(src: &Path) -> Result<BTreeMap<PathBuf, Entry>, CodeBaseError> {
    let walk = ignore::WalkBuilder::new(src)
        .standard_filters(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .follow_links(false)
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0 || !(NEVER_SHIPPED.contains(&name.as_ref()) || name.ends_with(".pyc"))
        })
        .build();
    let mut entries = BTreeMap::new();
    for found in walk {
        let found = found?;
        let full = found.path();
        let io = |source| CodeBaseError::Io {
            path: full.to_path_buf(),
            source,
        };
        let kind = found
            .file_type()
            .ok_or_else(|| CodeBaseError::Special(full.into()))?;
        let path = full.strip_prefix(src).expect("under the code base");
        let shipped = if kind.is_dir() {
            continue;
        } else if kind.is_file() {
            let data = std::fs::read(full).map_err(io)?;
            let executable = found.metadata()?.permissions().mode() & 0o111 != 0;
            Entry::File { data, executable }
        } else if kind.is_symlink() {
            Entry::Link(link_text(full, &std::fs::read_link(full).map_err(io)?)?)
        } else {
            return Err(CodeBaseError::Special(full.to_path_buf()));
        };
        entries.insert(path.to_path_buf(), shipped);
    }
    Ok(entries)
}
