//! `foobar init [DIR]`: a commented inventory for the user's domain, address
//! and app server kind, and a minimal app of that kind that answers the
//! built-in checks. Flags, no prompts; `--lab` for the local lab.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use clap::Args;
use include_dir::{include_dir, Dir};

use crate::cli::{exit, Global};
use crate::error::InputError;
use crate::inventory::{AppKind, DomainName, Label};

static APPS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/apps");

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
}

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
    let inventory = args.dir.join("inventory.yml");
    let app = args.dir.join("app");
    for p in [&inventory, &app] {
        if p.exists() && !args.force {
            return Err(InputError::new(p, "exists already: pass --force to overwrite it").into());
        }
    }
    std::fs::create_dir_all(&args.dir)?;
    std::fs::write(&inventory, inventory_text(&args, address))?;
    let sample = APPS
        .get_dir(args.kind.server().sample())
        .expect("the sample apps are built in");
    write_tree(sample, Path::new(args.kind.server().sample()), &app)?;
    if g.json {
        crate::cli::print_json(
            "init",
            &serde_json::json!({
                "inventory": inventory.display().to_string(),
                "app": app.display().to_string(),
                "kind": args.kind.name(),
            }),
        )?;
        return Ok(exit::OK);
    }
    println!("wrote {}", inventory.display());
    println!(
        "wrote {}/ (a minimal {} app)",
        app.display(),
        args.kind.name()
    );
    let i = inventory.display();
    if args.lab {
        println!("next: foobar -i {i} lab up && foobar -i {i} provision");
    } else {
        println!("next: export FOOBAR_DB_PASSWORD=...; foobar -i {i} provision --check --diff");
    }
    Ok(exit::OK)
}

/// Writes the files under `dir` to `to`, paths taken relative to `prefix`.
fn write_tree(dir: &Dir, prefix: &Path, to: &Path) -> std::io::Result<()> {
    for f in dir.files() {
        let dest = to.join(f.path().strip_prefix(prefix).expect("under its folder"));
        std::fs::create_dir_all(dest.parent().unwrap_or(to))?;
        std::fs::write(dest, f.contents())?;
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
            "  # Written by `foobar lab up`; mode 0600.\n  password: file:/var/lib/foobar/lab/secrets/mysql_password\n",
        )
    } else {
        (
            "",
            "ssh:\n  # Host keys are always checked: put the server's key here (ssh-keyscan it\n  # and compare the fingerprint), or set accept_new_host_keys: true once.\n  known_hosts: ~/.ssh/known_hosts\n",
            "  # The password comes from the environment (or file:PATH), never from here.\n  password: env:FOOBAR_DB_PASSWORD\n",
        )
    };
    let server_ssh = if args.lab {
        "    ssh:\n      user: root\n      identity_file: /var/lib/foobar/lab/id_ed25519\n"
    } else {
        "    # User, port and key come from ~/.ssh/config unless set here:\n    # ssh: {user: deploy, port: 22, identity_file: ~/.ssh/id_ed25519}\n"
    };
    format!(
        "# www.{domain} on one server: DNS (BIND), nginx, {kind}, MariaDB.\n\
         # Written by `foobar init`; see README for every key.\n\n\
         {lab}{ssh}\n\
         servers:\n  - name: {name}\n    address: {address}\n    roles: [web, app, db, dns]\n{server_ssh}\n\
         domain:\n  zone: {domain}\n  host: www\n  ttl: 300\n\n\
         app:\n  kind: {kind}\n  # The code base, relative to this file.\n  source: app\n  workers: 2\n\
         \x20 # Your own app (README: Your own application): its entry point\n\
         \x20 # (wsgi: mysite.wsgi:application, front_controller: public/index.php,\n\
         \x20 # rack: config.ru), env: {{NAME: value, SECRET: env:NAME}}, packages: [...],\n\
         \x20 # build: ..., release_command: ..., shared: [uploads],\n\
         \x20 # checks: [{{path: /healthz, contains: ok}}].\n\n\
         mysql:\n  database: app\n  user: app\n{password}\n\
         # `foobar restart` runs inside these windows only (or with --force).\n\
         maintenance:\n  time_zone: UTC\n  windows:\n    - days: [sun]\n      start: \"02:00\"\n      end: \"04:00\"\n",
        domain = args.domain,
        kind = args.kind.name(),
        name = args.name,
    )
}
