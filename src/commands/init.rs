//! `foobar init [DIR]`: a commented inventory for the user's domain, address
//! and app server kind, and a minimal app of that kind that answers the
//! built-in checks. Flags, no prompts; `--lab` for the local lab.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use include_dir::{include_dir, Dir};

use crate::cli::{exit, outln, Global};
use crate::error::InputError;
use crate::inventory::{AppKind, DomainName, Label};

static APPS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/apps");

/// The inventory `init` writes, where every command looks for one.
pub const INVENTORY: &str = "inventory.yml";

/// `--kind`: a name from the app kinds' registry (completions offer them).
fn kind_parser() -> impl clap::builder::TypedValueParser<Value = AppKind> {
    use clap::builder::TypedValueParser;
    let names: Vec<&'static str> = AppKind::ALL.iter().map(|k| k.name()).collect();
    clap::builder::PossibleValuesParser::new(names)
        .map(|name| AppKind::parse(&name).expect("a possible value"))
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write `inventory.yml` and `app/` (created if need be).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The site's zone; the site itself is `www.<domain>`.
    #[arg(long, default_value = "example.com", value_parser = DomainName::parse)]
    pub domain: DomainName,
    /// The server's IPv4 address (with --lab: an address in 10.250.0.0/24).
    #[arg(long)]
    pub address: Option<Ipv4Addr>,
    /// The application server.
    #[arg(long, default_value = "gunicorn", value_parser = kind_parser())]
    pub kind: AppKind,
    /// The server's name in the inventory.
    #[arg(long, default_value = "web1", value_parser = Label::parse)]
    pub name: Label,
    /// An inventory for the local lab (`foobar lab up` boots its server).
    #[arg(long)]
    pub lab: bool,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// Write `base.yml`, what the stages share, and one inventory per
    /// stage over it (`staging.yml`, `production.yml`): the last stage
    /// serves the domain, the others `<stage>.<domain>`.
    #[arg(long, value_name = "STAGE,...", value_delimiter = ',', value_parser = stage_name, conflicts_with = "lab")]
    pub stages: Vec<Label>,
}

/// A stage's name: a DNS label (it names a file and a subdomain), not
/// `base`, which holds what the stages share.
fn stage_name(s: &str) -> Result<Label, String> {
    if s == BASE {
        return Err(format!(
            "`{BASE}` holds what the stages share: name the stages otherwise"
        ));
    }
    Label::parse(s)
}

/// The name of what the stages share.
const BASE: &str = "base";

pub fn run(g: &Global, args: InitArgs) -> anyhow::Result<u8> {
    let lab_net = Ipv4Addr::new(10, 250, 0, 0);
    let address = match (args.address, args.lab) {
        (Some(a), true)
            if a.octets()[..3] != lab_net.octets()[..3] || [0, 1, 255].contains(&a.octets()[3]) =>
        {
            return Err(InputError::new(
                Path::new("--address"),
                format!(
                    "{a} is outside the lab subnet: give an address in 10.250.0.2 to 10.250.0.254"
                ),
            )
            .into())
        }
        (Some(a), _) => a,
        (None, true) => Ipv4Addr::new(10, 250, 0, 10),
        (None, false) => return Err(InputError::new(
            Path::new("--address"),
            "the server's address is needed: --address 203.0.113.10 (or --lab for the local lab)",
        )
        .into()),
    };
    // (path, text): one inventory, or a base and its stages.
    let files: Vec<(PathBuf, String)> = if args.stages.is_empty() {
        vec![(args.dir.join(INVENTORY), inventory_text(&args, address))]
    } else {
        std::iter::once((args.dir.join(format!("{BASE}.yml")), base_text(&args)))
            .chain(args.stages.iter().enumerate().map(|(i, stage)| {
                let live = i + 1 == args.stages.len();
                (
                    args.dir.join(format!("{stage}.yml")),
                    stage_text(&args, stage, live, address),
                )
            }))
            .collect()
    };
    let inventory = files[0].0.clone();
    let app = args.dir.join("app");
    for p in files.iter().map(|(p, _)| p).chain([&app]) {
        if p.exists() && !args.force {
            return Err(InputError::new(p, "exists already: pass --force to overwrite it").into());
        }
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot make {}", args.dir.display()))?;
    for (path, text) in &files {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let stages: Vec<String> = files[1..]
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    let sample = APPS
        .get_dir(args.kind.server().sample())
        .expect("the sample apps are built in");
    write_tree(sample, Path::new(args.kind.server().sample()), &app)?;
    if g.json {
        crate::cli::print_json(
            "init",
            &serde_json::json!({
                "inventory": inventory.display().to_string(),
                "stages": stages,
                "app": app.display().to_string(),
                "kind": args.kind.name(),
            }),
        )?;
        return Ok(exit::OK);
    }
    for (path, _) in &files {
        outln!("wrote {}", path.display())?;
    }
    outln!(
        "wrote {}/ (a minimal {} app)",
        app.display(),
        args.kind.name()
    )?;
    // From the folder it is in, every command finds `inventory.yml`; a
    // stage is named with -i.
    let go = match args.dir.as_os_str().to_str() {
        Some(".") => String::new(),
        _ => format!(
            "cd {} && ",
            crate::shell::quote(&args.dir.display().to_string())
        ),
    };
    let i = match args.stages.last() {
        Some(stage) => format!("-i {stage}.yml "),
        None => String::new(),
    };
    if args.lab {
        outln!("next: {go}foobar lab up && foobar provision")?;
    } else {
        let variable = password_variable(args.stages.last());
        outln!("next: {go}export {variable}=...; foobar {i}provision --check --diff")?;
    }
    Ok(exit::OK)
}

/// Writes the files under `dir` to `to`, paths taken relative to `prefix`.
fn write_tree(dir: &Dir, prefix: &Path, to: &Path) -> anyhow::Result<()> {
    for f in dir.files() {
        let dest = to.join(f.path().strip_prefix(prefix).expect("under its folder"));
        std::fs::create_dir_all(dest.parent().unwrap_or(to))
            .and_then(|()| std::fs::write(&dest, f.contents()))
            .with_context(|| format!("cannot write {}", dest.display()))?;
    }
    for d in dir.dirs() {
        write_tree(d, prefix, to)?;
    }
    Ok(())
}

fn inventory_text(args: &InitArgs, address: Ipv4Addr) -> String {
    let (lab, ssh, password) = if args.lab {
        (
            "# The local lab: `foobar lab up` boots this server on this machine.\n\
             lab:\n  bridge_address: 10.250.0.1\n  dir: /var/lib/foobar/lab\n\n",
            "ssh:\n  known_hosts: /var/lib/foobar/lab/known_hosts\n",
            "  # Written by `foobar lab up`; mode 0600.\n  password: file:/var/lib/foobar/lab/secrets/mysql_password\n".to_string(),
        )
    } else {
        ("", SSH, password_text(None))
    };
    format!(
        "# www.{domain} on one server: DNS (BIND), nginx, {kind}, MariaDB.\n\
         # Written by `foobar init`; see README for every key.\n\n\
         {lab}{ssh}\n{servers}\n\
         domain:\n  zone: {domain}\n{domain_rest}\n\
         {app}\n\
         mysql:\n{mysql}{password}\n\
         {MAINTENANCE}",
        domain = args.domain,
        kind = args.kind.name(),
        servers = servers_text(args, address),
        domain_rest = DOMAIN,
        app = app_text(args),
        mysql = MYSQL,
    )
}

/// What the stages share: all but their servers, zone and password.
fn base_text(args: &InitArgs) -> String {
    let stages: Vec<String> = args.stages.iter().map(|s| format!("{s}.yml")).collect();
    format!(
        "# What the stages of www.{domain} share ({kind}): each of {stages}\n\
         # says `extends: {BASE}.yml` and adds or overrides keys (mappings merged key by\n\
         # key, lists replaced whole). Written by `foobar init`; see README.\n\n\
         {SSH}\n\
         domain:\n{DOMAIN}\n\
         {app}\n\
         mysql:\n{MYSQL}\n\
         {MAINTENANCE}",
        domain = args.domain,
        kind = args.kind.name(),
        stages = stages.join(", "),
        app = app_text(args),
    )
}

/// One stage over the base: its servers, its zone, its own password.
fn stage_text(args: &InitArgs, stage: &Label, live: bool, address: Ipv4Addr) -> String {
    let zone = if live {
        args.domain.to_string()
    } else {
        format!("{stage}.{}", args.domain)
    };
    format!(
        "# The {stage} stage: {BASE}.yml, with these keys added or overridden.\n\
         # `foobar -i {stage}.yml provision` provisions it.\n\
         extends: {BASE}.yml\n\n\
         # Give each stage its own server(s): the list replaces the base's whole.\n\
         {servers}\n\
         domain:\n  zone: {zone}\n\n\
         mysql:\n{password}",
        servers = servers_text(args, address),
        password = password_text(Some(stage)),
    )
}

const SSH: &str = "ssh:\n  # Host keys are always checked: put the server's key here (ssh-keyscan it\n  # and compare the fingerprint), or set accept_new_host_keys: true once.\n  known_hosts: ~/.ssh/known_hosts\n";

/// mysql's password from the environment, with why.
fn password_text(stage: Option<&Label>) -> String {
    format!(
        "  # The password comes from the environment (or file:PATH, cmd:COMMAND), never from here.\n  password: env:{}\n",
        password_variable(stage)
    )
}

/// The variable the database password is read from: one per stage.
fn password_variable(stage: Option<&Label>) -> String {
    match stage {
        Some(s) => format!(
            "FOOBAR_{}_DB_PASSWORD",
            s.as_str().to_uppercase().replace('-', "_")
        ),
        None => "FOOBAR_DB_PASSWORD".into(),
    }
}

const DOMAIN: &str = "  host: www\n  ttl: 300\n";

const MYSQL: &str = "  database: app\n  user: app\n";

const MAINTENANCE: &str = "# `foobar restart` runs inside these windows only (or with --force).\n\
     maintenance:\n  time_zone: UTC\n  windows:\n    - days: [sun]\n      start: \"02:00\"\n      end: \"04:00\"\n";

fn servers_text(args: &InitArgs, address: Ipv4Addr) -> String {
    let ssh = if args.lab {
        "    ssh:\n      user: root\n      identity_file: /var/lib/foobar/lab/id_ed25519\n"
    } else {
        "    # User, port and key come from ~/.ssh/config unless set here:\n    # ssh: {user: deploy, port: 22, identity_file: ~/.ssh/id_ed25519}\n"
    };
    format!(
        "servers:\n  - name: {name}\n    address: {address}\n    roles: [web, app, db, dns]\n{ssh}",
        name = args.name,
    )
}

fn app_text(args: &InitArgs) -> String {
    format!(
        "app:\n  kind: {kind}\n  # The code base, relative to this file.\n  source: app\n  workers: 2\n\
         \x20 # Your own app (README: Your own application): its entry point\n\
         \x20 # (wsgi: mysite.wsgi:application, front_controller: public/index.php,\n\
         \x20 # rack: config.ru), env: {{NAME: value, SECRET: env:NAME}}, packages: [...],\n\
         \x20 # build: ..., release_command: ..., shared: [uploads],\n\
         \x20 # processes: {{worker: a queue worker's command}}, schedule: [{{name: cleanup,\n\
         \x20 # on_calendar: daily, command: ...}}], checks: [{{path: /healthz, contains: ok}}].\n",
        kind = args.kind.name(),
    )
}
