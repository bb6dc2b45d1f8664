//! Rendering templates and templated playbook fields with minijinja, with
//! strict undefined values: a typo is an error naming template and line.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{path_loader, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::InputError;
use crate::inventory::{Inventory, Loaded, Role, Server, ServerPath, SqlName, UnixName};
use crate::playbook::{self, Step};
use crate::secrets::Secrets;
use sha2::{Digest, Sha256};

/// Stands for the SOA serial in a rendered zone until the plan, which
/// knows the serial on the server, picks the real one.
pub const SOA_SERIAL_TOKEN: &str = "@@FOOBAR_SOA_SERIAL@@";

pub struct Renderer {
    env: Environment<'static>,
    templates_dir: PathBuf,
}

/// Everything a template sees.
#[derive(Serialize)]
pub struct Context<'a> {
    #[serde(flatten)]
    pub inventory: &'a Inventory,
    pub server: &'a Server,
    pub secrets: &'a Secrets,
    /// `www.foobar.com`
    pub fqdn: String,
    pub web_address: String,
    pub nameservers: Vec<Nameserver>,
    /// The folder of the app socket under /run, for systemd's RuntimeDirectory.
    pub runtime_dir: String,
    pub soa_serial: &'static str,
}

#[derive(Serialize)]
pub struct Nameserver {
    /// `ns1.foobar.com`
    pub name: String,
    /// `ns1`
    pub label: String,
    pub address: String,
}

impl<'a> Context<'a> {
    pub fn new(inventory: &'a Inventory, server: &'a Server, secrets: &'a Secrets) -> Self {
        Self {
            inventory,
            server,
            secrets,
            fqdn: inventory.domain.fqdn(),
            web_address: inventory.web_address().to_string(),
            nameservers: inventory
                .nameservers()
                .into_iter()
                .map(|(name, address)| Nameserver {
                    label: name.split('.').next().unwrap_or_default().to_string(),
                    name,
                    address: address.to_string(),
                })
                .collect(),
            runtime_dir: inventory
                .app
                .socket
                .as_str()
                .split('/')
                .nth(2)
                .unwrap_or_default()
                .to_string(),
            soa_serial: SOA_SERIAL_TOKEN,
        }
    }
}

impl Renderer {
    pub fn new(project_root: &Path) -> Self {
        let templates_dir = project_root.join("templates");
        let mut env = Environment::new();
        env.set_loader(path_loader(&templates_dir));
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Config files, not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("static syntax config");
        env.set_syntax(syntax);
        Self { env, templates_dir }
    }

    /// Renders `templates/<name>`.
    pub fn file(&self, name: &str, ctx: &Context) -> Result<String, InputError> {
        let path = self.templates_dir.join(name);
        let tmpl = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&path, &e))?;
        tmpl.render(Serde(ctx))
            .map_err(|e| template_error(&path, &e))
    }

    /// Renders one templated playbook field; `what` says which, for errors.
    pub fn field(
        &self,
        playbook: &Path,
        what: &str,
        source: &str,
        ctx: &Context,
    ) -> Result<String, InputError> {
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(source.to_string());
        }
        self.env.render_str(source, Serde(ctx)).map_err(|e| {
            InputError::new(
                playbook,
                format!("{what}: cannot render `{source}`: {}", describe(&e)),
            )
        })
    }
}

impl Renderer {
    /// Evaluates a `when` expression; an error names the playbook.
    pub fn condition(
        &self,
        playbook: &Path,
        what: &str,
        expr: &str,
        ctx: &Context,
    ) -> Result<bool, InputError> {
        let fail = |e: minijinja::Error| {
            InputError::new(
                playbook,
                format!("{what}: cannot evaluate `{expr}`: {}", describe(&e)),
            )
        };
        let compiled = self.env.compile_expression(expr).map_err(fail)?;
        Ok(compiled.eval(Serde(ctx)).map_err(fail)?.is_true())
    }
}

fn template_error(path: &Path, e: &minijinja::Error) -> InputError {
    // Never `display_debug_info()`: it would print variable values,
    // secrets included.
    let message = format!("template error: {}", describe(e));
    match e.line() {
        Some(line) => InputError::at(path, line, 1, message),
        None => InputError::new(path, message),
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{} ({d})", e.kind()),
        None => e.kind().to_string(),
    }
}

/// One step with every value rendered and checked: what the server should
/// look like, independent of what it looks like now.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub role: Role,
    /// Index of the playbook's role block the step comes from.
    pub block: usize,
    /// Short description for progress lines, e.g. `template /etc/nginx/...`.
    pub label: String,
    pub desired: Desired,
    pub notify: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    Packages(Vec<String>),
    User {
        name: String,
        home: String,
    },
    Directory {
        path: String,
        owner: String,
        group: String,
        mode: u32,
    },
    File {
        path: String,
        content: Vec<u8>,
        owner: String,
        group: String,
        mode: u32,
        validate: Option<String>,
        soa_serial: bool,
    },
    Absent {
        path: String,
    },
    Release {
        root: String,
        owner: String,
        /// Content hash of the code base; also the release's folder name.
        id: String,
        archive: Vec<u8>,
        keep: u8,
    },
    Service {
        name: String,
    },
    Stopped {
        name: String,
    },
    Mysql {
        database: String,
        user: String,
        privileges: Vec<String>,
        password: String,
    },
}

/// Privileges a playbook may grant the app user on its own database.
const GRANTABLE: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "INDEX",
    "ALTER",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "EXECUTE",
    "CREATE VIEW",
    "SHOW VIEW",
    "TRIGGER",
];

/// Renders the playbook's steps for one server: only the roles it has.
pub fn resolve(
    renderer: &Renderer,
    playbook: &playbook::Loaded,
    inv: &Loaded,
    server: &Server,
    secrets: &Secrets,
) -> Result<Vec<Resolved>, InputError> {
    let ctx = Context::new(&inv.inventory, server, secrets);
    let pb = &playbook.path;
    let mut out = Vec::new();
    for (block, role) in playbook.playbook.roles.iter().enumerate() {
        if !server.has(role.role) || !block_applies(renderer, playbook, block, &ctx)? {
            continue;
        }
        for (i, playbook::StepEntry(step)) in role.steps.iter().enumerate() {
            let what = format!("role {} step {} ({})", role.role.name(), i + 1, step.kind());
            let field =
                |name: &str, v: &str| renderer.field(pb, &format!("{what} {name}"), v, &ctx);
            let path = |name: &str, v: &str| -> Result<String, InputError> {
                let s = field(name, v)?;
                ServerPath::parse(&s)
                    .map(|p| p.to_string())
                    .map_err(|m| InputError::new(pb, format!("{what} {name}: {m}")))
            };
            let unix = |name: &str, v: &str| -> Result<String, InputError> {
                let s = field(name, v)?;
                UnixName::parse(&s)
                    .map(|p| p.to_string())
                    .map_err(|m| InputError::new(pb, format!("{what} {name}: {m}")))
            };
            let mode = |v: &str| {
                parse_mode(v).ok_or_else(|| {
                    InputError::new(
                        pb,
                        format!("{what} mode `{v}`: write an octal mode like \"0644\""),
                    )
                })
            };
            let (label, desired) = match step {
                Step::Apt { packages } => {
                    let names = packages
                        .iter()
                        .map(|p| {
                            let p = field("packages", p)?;
                            check_package(&p)
                                .map_err(|m| InputError::new(pb, format!("{what}: {m}")))?;
                            Ok(p)
                        })
                        .collect::<Result<Vec<_>, InputError>>()?;
                    (format!("apt {}", names.join(" ")), Desired::Packages(names))
                }
                Step::User { name, home } => {
                    let name = unix("name", name)?;
                    (
                        format!("user {name}"),
                        Desired::User {
                            home: path("home", home)?,
                            name,
                        },
                    )
                }
                Step::Directory {
                    path: p,
                    owner,
                    group,
                    mode: m,
                } => {
                    let p = path("path", p)?;
                    (
                        format!("directory {p}"),
                        Desired::Directory {
                            owner: unix("owner", owner)?,
                            group: unix("group", group)?,
                            mode: mode(m)?,
                            path: p,
                        },
                    )
                }
                Step::Template {
                    src,
                    dest,
                    owner,
                    group,
                    mode: m,
                    validate,
                    soa_serial,
                    notify: _,
                } => {
                    let dest = path("dest", dest)?;
                    let content = renderer.file(src, &ctx)?;
                    let validate = validate
                        .as_deref()
                        .map(|v| field("validate", v))
                        .transpose()?;
                    (
                        format!("template {dest}"),
                        Desired::File {
                            content: content.into_bytes(),
                            owner: unix("owner", owner)?,
                            group: unix("group", group)?,
                            mode: mode(m)?,
                            validate,
                            soa_serial: *soa_serial,
                            path: dest,
                        },
                    )
                }
                Step::Absent { path: p, notify: _ } => {
                    let p = path("path", p)?;
                    (format!("absent {p}"), Desired::Absent { path: p })
                }
                Step::Release {
                    src,
                    root,
                    owner,
                    notify: _,
                } => {
                    let src = inv.local_path(Path::new(&field("src", src)?));
                    let (id, archive) = release_archive(&src).map_err(|m| {
                        InputError::new(pb, format!("{what} src {}: {m}", src.display()))
                    })?;
                    let root = path("root", root)?;
                    (
                        format!("release {root}/releases/{id}"),
                        Desired::Release {
                            root,
                            owner: unix("owner", owner)?,
                            id,
                            archive,
                            keep: inv.inventory.app.keep_releases.0,
                        },
                    )
                }
                Step::Service { name } => {
                    let name = field("name", name)?;
                    check_unit(&name).map_err(|m| InputError::new(pb, format!("{what}: {m}")))?;
                    (format!("service {name}"), Desired::Service { name })
                }
                Step::Stopped { name } => {
                    let name = field("name", name)?;
                    check_unit(&name).map_err(|m| InputError::new(pb, format!("{what}: {m}")))?;
                    (format!("stopped {name}"), Desired::Stopped { name })
                }
                Step::Mysql {
                    database,
                    user,
                    privileges,
                } => {
                    let database = field("database", database)?;
                    let user = field("user", user)?;
                    for n in [&database, &user] {
                        SqlName::parse(n)
                            .map_err(|m| InputError::new(pb, format!("{what}: {m}")))?;
                    }
                    let privileges = privileges
                        .iter()
                        .map(|p| {
                            let up = p.to_ascii_uppercase();
                            if GRANTABLE.contains(&up.as_str()) {
                                Ok(up)
                            } else {
                                Err(InputError::new(
                                    pb,
                                    format!(
                                        "{what}: privilege `{p}` is not one of {}",
                                        GRANTABLE.join(", ")
                                    ),
                                ))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    (
                        format!("mysql database {database}, user {user}"),
                        Desired::Mysql {
                            database,
                            user,
                            privileges,
                            password: secrets.mysql_password.clone(),
                        },
                    )
                }
            };
            out.push(Resolved {
                role: role.role,
                block,
                label,
                desired,
                notify: step.notify().map(str::to_string),
            });
        }
    }
    Ok(out)
}

/// Whether role block `block` applies, by its `when` expression.
pub fn block_applies(
    renderer: &Renderer,
    playbook: &playbook::Loaded,
    block: usize,
    ctx: &Context,
) -> Result<bool, InputError> {
    let Some(expr) = &playbook.playbook.roles[block].when else {
        return Ok(true);
    };
    renderer.condition(
        &playbook.path,
        &format!("role block {} `when`", block + 1),
        expr,
        ctx,
    )
}

fn parse_mode(s: &str) -> Option<u32> {
    let digits = s
        .strip_prefix('0')
        .filter(|d| d.len() == 3)
        .or((s.len() == 3).then_some(s))?;
    u32::from_str_radix(digits, 8).ok()
}

fn check_package(p: &str) -> Result<(), String> {
    let ok = p.len() >= 2
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    ok.then_some(())
        .ok_or_else(|| format!("`{p}` is not a Debian package name"))
}

fn check_unit(u: &str) -> Result<(), String> {
    let ok = !u.is_empty()
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c));
    ok.then_some(())
        .ok_or_else(|| format!("`{u}` is not a systemd unit name"))
}

/// Packs the code base as a tar archive (sorted, so the same tree always
/// gives the same id) and returns its id: the first 12 hex digits of a
/// SHA-256 over every path, mode and content.
pub fn release_archive(src: &Path) -> Result<(String, Vec<u8>), String> {
    let mut files = Vec::new();
    collect_files(src, src, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    let mut builder = tar::Builder::new(Vec::new());
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for rel in &files {
        let full = src.join(rel);
        let data = std::fs::read(&full).map_err(|e| format!("reading {}: {e}", full.display()))?;
        let executable = std::fs::metadata(&full)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        let mode = if executable { 0o755 } else { 0o644 };
        let name = rel
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", rel.display()))?;
        hasher.update(format!("{name}\0{mode:o}\0{}\0", data.len()));
        hasher.update(&data);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, data.as_slice())
            .map_err(|e| format!("packing {name}: {e}"))?;
    }
    if files.is_empty() {
        return Err("the code base folder is empty".into());
    }
    let archive = builder.into_inner().map_err(|e| e.to_string())?;
    let id: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((id, archive))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Caches and VCS folders are not part of a release.
        if name == "__pycache__" || name == ".git" || name.ends_with(".pyc") {
            continue;
        }
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
        } else {
            return Err(format!(
                "{} is neither a file nor a folder: releases hold plain files",
                path.display()
            ));
        }
    }
    Ok(())
}
