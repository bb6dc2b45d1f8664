//! What a step kind sees while it resolves: templated fields rendered with
//! the inventory, checked values, and errors that name the step.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::code_base::CodeBase;
use crate::error::InputError;
use crate::inventory::{Document, Loaded, ServerPath, UnixName};
use crate::render::{Context, Renderer};
use crate::secrets::Secrets;

pub struct ResolveCx<'a> {
    pub renderer: &'a Renderer,
    pub ctx: &'a Context<'a>,
    /// The playbook's keys with their places.
    pub playbook: &'a Document,
    pub inventory: &'a Loaded,
    pub secrets: &'a Secrets,
    /// The step's key path in the playbook, like
    /// `roles[3].steps[1].template`: where its errors point.
    pub step: String,
}

impl ResolveCx<'_> {
    /// The step as the playbook writes it: `the `template` step`.
    fn what(&self) -> String {
        let kind = self.step.rsplit('.').next().unwrap_or_default();
        format!("the `{kind}` step")
    }

    /// An error about this step, at its line.
    pub fn error(&self, message: impl std::fmt::Display) -> InputError {
        self.playbook
            .error_at(&self.step, format!("{}: {message}", self.what()))
    }

    /// An error about the step's field `name`, at its line.
    pub fn error_in(&self, name: &str, message: impl std::fmt::Display) -> InputError {
        self.playbook.error_at(
            &format!("{}.{name}", self.step),
            format!("{} {name}: {message}", self.what()),
        )
    }

    /// An error about a field's value. When the field is nothing but an
    /// inventory value (`{{ app.source }}`), the error points at that
    /// value's line in the inventory, where the fix goes.
    pub fn field_error(
        &self,
        name: &str,
        raw: &str,
        message: impl std::fmt::Display,
    ) -> InputError {
        let key = raw
            .trim()
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .map(str::trim)
            .filter(|k| {
                k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._".contains(c))
            });
        match key {
            Some(key) => self.inventory.error_at(
                key,
                format!(
                    "{message} (used by {} of the playbook: {name})",
                    self.what()
                ),
            ),
            None => self.error_in(name, message),
        }
    }

    /// A templated field, rendered.
    pub fn field(&self, name: &str, value: &str) -> Result<String, InputError> {
        self.renderer
            .field(value, self.ctx)
            .map_err(|m| self.error_in(name, m))
    }

    /// A templated absolute server path, rendered and checked.
    pub fn server_path(&self, name: &str, value: &str) -> Result<String, InputError> {
        let s = self.field(name, value)?;
        ServerPath::parse(&s)
            .map(|p| p.to_string())
            .map_err(|m| self.error_in(name, m))
    }

    /// A templated user or group name, rendered and checked.
    pub fn unix_name(&self, name: &str, value: &str) -> Result<String, InputError> {
        let s = self.field(name, value)?;
        UnixName::parse(&s)
            .map(|p| p.to_string())
            .map_err(|m| self.error_in(name, m))
    }

    /// An octal mode written as `"0644"` or `"644"`.
    pub fn mode(&self, value: &str) -> Result<u32, InputError> {
        let digits = value
            .strip_prefix('0')
            .filter(|d| d.len() == 3)
            .or((value.len() == 3).then_some(value));
        digits
            .and_then(|d| u32::from_str_radix(d, 8).ok())
            .ok_or_else(|| {
                self.error_in(
                    "mode",
                    format!("`{value}`: write an octal mode like \"0644\""),
                )
            })
    }

    /// `templates/<src>` rendered. A template that cannot be had (not
    /// found, unreadable) is shown at the step's `src`, where it is named;
    /// a mistake inside one, at its own line.
    pub fn template(&self, src: &str) -> Result<String, InputError> {
        self.placed("src", self.renderer.file(src, self.ctx))
    }

    /// The same for one item of a list, which the template sees as `key`;
    /// `field` is the step's field naming the template.
    pub fn template_with<T: serde::Serialize>(
        &self,
        field: &str,
        src: &str,
        key: &str,
        item: &T,
    ) -> Result<String, InputError> {
        self.placed(field, self.renderer.file_with(src, self.ctx, key, item))
    }

    fn placed(
        &self,
        field: &str,
        rendered: Result<String, InputError>,
    ) -> Result<String, InputError> {
        rendered.map_err(|e| {
            if e.line > 0 {
                e
            } else {
                self.error_in(field, format!("{}: {}", e.file.display(), e.message))
            }
        })
    }

    /// A path on this machine, relative to the inventory file.
    pub fn local_path(&self, p: &str) -> PathBuf {
        self.inventory.local_path(Path::new(p))
    }

    /// The code base a templated field names, on this machine, as a
    /// release ships it (at `app.ref` in a git work tree). A mistake in
    /// `app.ref` points at that key, any other at the field's value.
    pub fn code_base(&self, name: &str, raw: &str) -> Result<(PathBuf, Arc<CodeBase>), InputError> {
        let src = self.local_path(&self.field(name, raw)?);
        let git_ref = self.inventory.inventory.app.git_ref.as_ref();
        match self
            .inventory
            .code_bases
            .read(&src, git_ref.map(|r| r.as_str()))
        {
            Ok(code) => Ok((src, code)),
            Err(e) if e.about_ref() => Err(self.inventory.error_at(
                "app.ref",
                format!("{e} (used by {} of the playbook: {name})", self.what()),
            )),
            Err(e) => Err(self.field_error(name, raw, e)),
        }
    }

    /// A systemd unit name, rendered and checked.
    pub fn unit(&self, value: &str) -> Result<String, InputError> {
        let u = self.field("name", value)?;
        let ok = !u.is_empty()
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c));
        if ok {
            Ok(u)
        } else {
            Err(self.error_in("name", format!("`{u}` is not a systemd unit name")))
        }
    }
}
