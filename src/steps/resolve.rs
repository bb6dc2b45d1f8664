//! What a step kind sees while it resolves: templated fields rendered with
//! the inventory, checked values, and errors that name the step.

use std::path::{Path, PathBuf};

use crate::error::InputError;
use crate::inventory::{Loaded, ServerPath, UnixName};
use crate::render::{Context, Renderer};
use crate::secrets::Secrets;

pub struct ResolveCx<'a> {
    pub renderer: &'a Renderer,
    pub ctx: &'a Context<'a>,
    pub playbook: &'a Path,
    pub inventory: &'a Loaded,
    pub secrets: &'a Secrets,
    /// `role web step 3 (template)`, for errors.
    pub what: String,
}

impl ResolveCx<'_> {
    /// An error about this step.
    pub fn error(&self, message: impl std::fmt::Display) -> InputError {
        InputError::new(self.playbook, format!("{}: {message}", self.what))
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
            Some(key) => self
                .inventory
                .error_at(key, format!("{message} (used by {}: {name})", self.what)),
            None => self.error(format!("{name}: {message}")),
        }
    }

    /// A templated field, rendered.
    pub fn field(&self, name: &str, value: &str) -> Result<String, InputError> {
        self.renderer.field(
            self.playbook,
            &format!("{} {name}", self.what),
            value,
            self.ctx,
        )
    }

    /// A templated absolute server path, rendered and checked.
    pub fn server_path(&self, name: &str, value: &str) -> Result<String, InputError> {
        let s = self.field(name, value)?;
        ServerPath::parse(&s)
            .map(|p| p.to_string())
            .map_err(|m| self.error(format!("{name}: {m}")))
    }

    /// A templated user or group name, rendered and checked.
    pub fn unix_name(&self, name: &str, value: &str) -> Result<String, InputError> {
        let s = self.field(name, value)?;
        UnixName::parse(&s)
            .map(|p| p.to_string())
            .map_err(|m| self.error(format!("{name}: {m}")))
    }

    /// An octal mode written as `"0644"` or `"644"`.
    pub fn mode(&self, value: &str) -> Result<u32, InputError> {
        let digits = value
            .strip_prefix('0')
            .filter(|d| d.len() == 3)
            .or((value.len() == 3).then_some(value));
        digits
            .and_then(|d| u32::from_str_radix(d, 8).ok())
            .ok_or_else(|| self.error(format!("mode `{value}`: write an octal mode like \"0644\"")))
    }

    /// `templates/<src>` rendered.
    pub fn template(&self, src: &str) -> Result<String, InputError> {
        self.renderer.file(src, self.ctx)
    }

    /// A path on this machine, relative to the inventory file.
    pub fn local_path(&self, p: &str) -> PathBuf {
        self.inventory.local_path(Path::new(p))
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
            Err(self.error(format!("`{u}` is not a systemd unit name")))
        }
    }
}
