//! Where the playbook and the templates come from (files only: parsing
//! them is the playbook's and the renderer's): built into the binary,
//! so that foobar works from any folder (and from `cargo install`), and a
//! project folder that overrides them file by file — a user changes one
//! template without copying the rest.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use crate::error::InputError;
use crate::local_file::read_input;

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
const PLAYBOOK: &str = include_str!("../playbooks/provision.yml");
/// The file that makes the current folder a project folder.
pub const MARKER: &str = "foobar-project";
/// What a built-in file is called in messages.
const BUILT_IN: &str = "(built-in)";

/// Where the playbook comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaybookSource {
    /// A file of the project, read when loaded.
    File(PathBuf),
    /// Built into the binary; `path` names it in messages.
    BuiltIn { path: PathBuf, text: &'static str },
}

#[derive(Debug, Clone, Default)]
pub struct Project {
    /// The folder holding `playbooks/` and `templates/` overrides.
    dir: Option<PathBuf>,
}

impl Project {
    /// Files in `dir` override the built-in ones.
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The built-in files only.
    pub fn built_in() -> Self {
        Self::default()
    }

    /// `--project DIR` (or `FOOBAR_PROJECT`) when given; otherwise the
    /// current folder when it holds [`MARKER`]; otherwise the built-in
    /// files. A folder is never taken for having `templates/` alone: a
    /// Flask or Django code base has one, and the playbook runs as root.
    pub fn discover(explicit: Option<&Path>) -> Self {
        match explicit {
            Some(dir) => Self::at(dir),
            None if Path::new(MARKER).is_file() => Self::at(Path::new(".")),
            None => Self::built_in(),
        }
    }

    /// The folder whose files override the built-in ones, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn file(&self, rel: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(rel))
            .filter(|p| p.is_file())
    }

    /// The playbook's text and where it comes from: the project's
    /// `playbooks/provision.yml`, or the built-in one.
    pub fn playbook(&self) -> PlaybookSource {
        match self.file("playbooks/provision.yml") {
            Some(path) => PlaybookSource::File(path),
            None => PlaybookSource::BuiltIn {
                path: Path::new(BUILT_IN).join("playbooks/provision.yml"),
                text: PLAYBOOK,
            },
        }
    }

    /// Where template `name` comes from (for messages), and its text;
    /// None when neither the project nor the binary has it.
    pub fn template(&self, name: &str) -> Result<Option<(PathBuf, String)>, InputError> {
        let rel = format!("templates/{name}");
        if let Some(path) = self.file(&rel) {
            let bytes = read_input(&path)
                .map_err(|e| InputError::new(&path, format!("cannot read the template: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                InputError::new(&path, "the template is not UTF-8 text: save it as UTF-8")
            })?;
            return Ok(Some((path, text)));
        }
        Ok(TEMPLATES
            .get_file(name)
            .and_then(|f| f.contents_utf8())
            .map(|text| (Path::new(BUILT_IN).join(rel), text.to_string())))
    }

    /// The path a template is named by in messages, found or not; the
    /// file is not read.
    pub fn template_path(&self, name: &str) -> PathBuf {
        let rel = format!("templates/{name}");
        match (self.file(&rel), &self.dir) {
            (Some(path), _) => path,
            (None, Some(d)) if TEMPLATES.get_file(name).is_none() => d.join(rel),
            (None, _) => Path::new(BUILT_IN).join(rel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_files_match_the_project_and_a_project_file_overrides_one() {
        let built_in = Project::built_in();
        assert!(
            matches!(built_in.playbook(), PlaybookSource::BuiltIn { path, .. } if path.starts_with(BUILT_IN))
        );
        let (path, text) = built_in.template("nginx/site.conf.j2").unwrap().unwrap();
        assert!(path.starts_with(BUILT_IN));
        assert_eq!(
            text,
            std::fs::read_to_string("templates/nginx/site.conf.j2").unwrap()
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates/nginx")).unwrap();
        std::fs::write(dir.path().join("templates/nginx/site.conf.j2"), "mine\n").unwrap();
        let p = Project::at(dir.path());
        assert_eq!(
            p.template("nginx/site.conf.j2").unwrap().unwrap().1,
            "mine\n"
        );
        // The rest still comes from the binary.
        assert!(p
            .template("bind/zone.j2")
            .unwrap()
            .unwrap()
            .0
            .starts_with(BUILT_IN));
        assert!(matches!(p.playbook(), PlaybookSource::BuiltIn { .. }));
        assert!(p.template("nope.j2").unwrap().is_none());
        assert_eq!(
            p.template_path("nope.j2"),
            dir.path().join("templates/nope.j2")
        );
    }
}
