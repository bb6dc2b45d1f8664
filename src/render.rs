//! Rendering templates and templated playbook fields with minijinja, with
//! strict undefined values: a typo is an error naming template and line.

use std::path::Path;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::InputError;
use crate::inventory::{Cache, EnvValue, Inventory, Role, Server};
use crate::project::Project;
use crate::secrets::{Secrets, MASK};

/// Stands for the SOA serial in a rendered zone until the plan, which
/// knows the serial on the server, picks the real one.
pub const SOA_SERIAL_TOKEN: &str = "@@FOOBAR_SOA_SERIAL@@";

pub struct Renderer {
    env: Environment<'static>,
    project: Project,
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
    /// `A` or `AAAA`, for the web address.
    pub web_record: &'static str,
    /// The AAAA record beside an A one (`Inventory::web_address_v6`).
    pub web_address_v6: Option<String>,
    /// This server answers on IPv6 too: nginx and HAProxy listen on both
    /// families.
    pub dual_stack: bool,
    pub nameservers: Vec<Nameserver>,
    /// The zone's records besides foobar's own (`domain.records`, a
    /// default CAA), their data quoted and escaped for the zone file.
    pub zone_records: Vec<ZoneLine>,
    /// The folder of the app socket under /run, for systemd's RuntimeDirectory.
    pub runtime_dir: String,
    pub soa_serial: &'static str,
    pub db: DbLayout,
    /// The zone's primary and secondaries, as this server sees them.
    pub dns: DnsLayout,
    /// The web servers behind the load balancers.
    pub web_backends: Vec<Backend>,
    /// For a load balancer sharing the floating address: its VRRP
    /// priority and its peers.
    pub vrrp: Option<Vrrp>,
    /// The app's whole environment, in order: the database settings, then
    /// `app.env` with its secrets read. app/app.env.j2 writes it, which
    /// systemd and sh read; php-fpm's pool passes it on by name.
    pub app_environment: Vec<EnvVar>,
    /// The app server kind's own variables (puma's RACK_ENV).
    pub app_kind_env: Vec<EnvVar>,
    /// What every command of the app gets besides app.env, as its
    /// processes' and jobs' units give it: PATH (the live release's
    /// virtualenv first), HOME, LANG and the kind's own.
    pub app_run_env: Vec<EnvVar>,
    /// The app's language runs code it writes into memory (PHP): its
    /// units go without MemoryDenyWriteExecute.
    pub app_writes_executable_memory: bool,
    /// HTTPS, when `nginx.tls` is set: the files nginx reads.
    pub tls: Option<TlsFiles>,
    /// nftables rules (input) for this server's roles, beside SSH.
    pub firewall_rules: Vec<String>,
    /// The SSH port the inventory names (22 when it names none); the
    /// firewall also opens every port sshd listens on when it is applied.
    pub ssh_port: u16,
    /// sshd forwards TCP (a jump host, or `ssh.forwarding: true`).
    pub ssh_forwarding: bool,
    /// With a backup server: who it pulls from, and this server's part.
    pub backups: Option<BackupLayout>,
    /// What nginx serves itself.
    pub web: WebLayout,
}

/// The folders nginx serves itself, as paths on the server.
#[derive(Serialize)]
pub struct WebLayout {
    /// The folder served at `/`: the live release or a folder of it.
    /// None: every path outside the locations is the app's.
    pub root: Option<String>,
    /// The root is the release itself: the code base's own files
    /// (composer's, `vendor/`) are refused too.
    pub code_base: bool,
    /// The URL prefixes of the shared folders under the root: uploads,
    /// where no script runs.
    pub uploads: Vec<String>,
    pub locations: Vec<WebLocation>,
}

/// `nginx.locations`: a folder at a URL prefix.
#[derive(Serialize)]
pub struct WebLocation {
    /// Starts and ends with `/`.
    pub url: String,
    /// nginx's `alias`: ends with `/`, as the URL does.
    pub folder: String,
    pub immutable: bool,
}

impl WebLayout {
    pub fn new(inventory: &Inventory) -> Self {
        let app_root = inventory.app.root.as_str();
        let dir = inventory.nginx.static_dir.as_ref().map(|d| d.as_str());
        let locations: Vec<WebLocation> = inventory
            .nginx
            .locations
            .iter()
            .map(|l| WebLocation {
                url: l.url.to_string(),
                folder: match (&l.folder, &l.shared) {
                    (_, Some(shared)) => format!("{app_root}/shared/{shared}/"),
                    (Some(folder), None) => format!("{app_root}/current/{folder}/"),
                    (None, None) => unreachable!("load checks a location's folder"),
                },
                immutable: l.cache == Some(Cache::Immutable),
            })
            .collect();
        // A location at the same URL serves uploads the same way already.
        let uploads = dir
            .map(|dir| {
                inventory
                    .app
                    .shared
                    .iter()
                    .filter_map(|s| match dir {
                        "." => Some(format!("/{s}/")),
                        _ => s
                            .as_str()
                            .strip_prefix(&format!("{dir}/"))
                            .map(|inside| format!("/{inside}/")),
                    })
                    .filter(|url| !locations.iter().any(|l| &l.url == url))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            root: dir.map(|dir| match dir {
                "." => format!("{app_root}/current"),
                _ => format!("{app_root}/current/{dir}"),
            }),
            code_base: dir == Some("."),
            uploads,
            locations,
        }
    }
}

/// The backup server and the servers it pulls from, as this server sees
/// them.
#[derive(Serialize)]
pub struct BackupLayout {
    /// The backup server's private address: the sources take its key
    /// from there only.
    pub server: String,
    /// Where it copies the database and the uploads from.
    pub db: Option<BackupSource>,
    pub files: Option<BackupSource>,
    /// This server is one of those sources, and which.
    pub db_here: bool,
    pub files_here: bool,
}

#[derive(Serialize)]
pub struct BackupSource {
    pub name: String,
    pub address: String,
    pub port: u16,
}

impl BackupLayout {
    fn new(inventory: &Inventory, server: &Server) -> Option<Self> {
        let backup_server = inventory.servers_with(Role::Backup).next()?;
        let source = |s: &Server| BackupSource {
            name: s.name.to_string(),
            address: private(s),
            port: s.ssh.port.map_or(22, |p| p.0),
        };
        let db = inventory.backup_db_source();
        let files = inventory.backup_files_source();
        Some(Self {
            server: private(backup_server),
            db_here: db.is_some_and(|s| s.name == server.name),
            files_here: files.is_some_and(|s| s.name == server.name),
            db: db.map(source),
            files: files.map(source),
        })
    }
}

#[derive(Serialize)]
pub struct TlsFiles {
    pub certificate: String,
    pub key: String,
    pub listen: u16,
    pub hsts_max_age: u32,
    /// foobar obtains the certificate (ACME, HTTP-01 through nginx).
    pub acme: bool,
}

#[derive(Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// A load balancer's part in sharing the floating address, on the
/// addresses the site is served on.
#[derive(Serialize)]
pub struct Vrrp {
    /// The first load balancer holds the address while it is healthy.
    pub priority: u8,
    pub address: String,
    pub peers: Vec<String>,
}

/// Where MariaDB listens and who may reach it, as this server sees it.
#[derive(Serialize)]
pub struct DbLayout {
    /// The primary's address for the app, when the database is on the
    /// network; unset, the app uses the local socket.
    pub host: Option<String>,
    /// What MariaDB binds on this server.
    pub bind: String,
    /// The hosts the app user is granted from.
    pub clients: Vec<String>,
    /// The primary's address, for replicas.
    pub primary: String,
    /// The replicas' addresses, for the replication user's grants.
    pub replicas: Vec<String>,
    /// This server's replication id: 1 for the primary, 2, 3, ... for
    /// the replicas in inventory order.
    pub server_id: usize,
    /// The Galera cluster's members (name, address), in inventory order;
    /// empty without one.
    pub cluster: Vec<Backend>,
    /// The same as `name=address` words, for the galera step.
    pub cluster_members: String,
    /// Where each member's clustercheck answers HAProxy.
    pub check_port: u16,
    /// When the database is networked: the CA's certificate (for database
    /// and app servers alike) and, on a database server, its own
    /// certificate and key (PEM; masked when secrets are).
    pub tls: Option<ClusterTlsFiles>,
}

#[derive(Serialize)]
pub struct ClusterTlsFiles {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// Who holds the zone: the primary, and the secondaries that copy it.
#[derive(Serialize)]
pub struct DnsLayout {
    /// This server is a secondary.
    pub secondary: bool,
    /// The primary's private address (transfers and NOTIFY go over it).
    pub primary: Option<String>,
    /// The secondaries' private addresses.
    pub secondaries: Vec<String>,
    /// The TSIG key's name in BIND's config.
    pub key_name: &'static str,
}

impl DnsLayout {
    fn new(inventory: &Inventory, server: &Server) -> Self {
        Self {
            secondary: server.has(Role::DnsSecondary),
            primary: inventory.servers_with(Role::Dns).next().map(private),
            secondaries: inventory
                .servers_with(Role::DnsSecondary)
                .map(private)
                .collect(),
            key_name: "foobar-transfer",
        }
    }
}

#[derive(Serialize)]
pub struct Backend {
    pub name: String,
    pub address: String,
}

/// One record of the zone file: `blog IN CNAME www.foobar.com.`
#[derive(Serialize)]
pub struct ZoneLine {
    /// Relative to the zone: `@`, `blog`, `_dmarc`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The data in zone-file syntax.
    pub data: String,
}

#[derive(Serialize)]
pub struct Nameserver {
    /// `ns1.foobar.com`
    pub name: String,
    /// `ns1`
    pub label: String,
    pub address: String,
    /// `A` or `AAAA`.
    pub record: &'static str,
    /// Its AAAA glue beside an A one.
    pub address_v6: Option<String>,
}

impl<'a> Context<'a> {
    pub fn new(inventory: &'a Inventory, server: &'a Server, secrets: &'a Secrets) -> Self {
        Self {
            inventory,
            server,
            secrets,
            fqdn: inventory.domain.fqdn(),
            web_address: inventory.web_address().to_string(),
            web_record: record(inventory.web_address()),
            web_address_v6: inventory.web_address_v6().map(|a| a.to_string()),
            dual_stack: server.dual_stack(),
            nameservers: inventory
                .nameservers()
                .into_iter()
                .zip(inventory.nameserver_hosts())
                .map(|((name, address), host)| Nameserver {
                    label: name.split('.').next().unwrap_or_default().to_string(),
                    name,
                    address: address.to_string(),
                    record: record(address),
                    address_v6: host.ipv6.map(|a| a.to_string()),
                })
                .collect(),
            zone_records: inventory
                .zone_records()
                .into_iter()
                .map(|r| ZoneLine {
                    data: r.data.zone_text(),
                    kind: r.kind.name(),
                    name: r.owner,
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
            db: DbLayout::new(inventory, server, secrets),
            dns: DnsLayout::new(inventory, server),
            web_backends: web_backends(inventory),
            vrrp: Vrrp::new(inventory, server),
            app_environment: app_environment(inventory, secrets),
            app_kind_env: env_vars(
                inventory
                    .app
                    .kind
                    .server()
                    .env()
                    .iter()
                    .map(|(k, v)| (*k, v.to_string())),
            ),
            app_run_env: env_vars(inventory.app.kind.run_env(
                inventory.app.root.as_str(),
                &format!("{}/current", inventory.app.root),
            )),
            app_writes_executable_memory: inventory.app.kind.server().writes_executable_memory(),
            tls: inventory.nginx.tls.as_ref().map(|t| {
                let (certificate, key) = t.files(&inventory.domain.fqdn());
                TlsFiles {
                    certificate,
                    key,
                    listen: t.listen.0,
                    hsts_max_age: t.hsts_max_age,
                    acme: t.acme.is_some(),
                }
            }),
            firewall_rules: firewall_rules(inventory, server),
            ssh_port: server.ssh.port.map_or(22, |p| p.0),
            ssh_forwarding: inventory.forwards(server),
            backups: BackupLayout::new(inventory, server),
            web: WebLayout::new(inventory),
        }
    }
}

fn env_vars(vars: impl IntoIterator<Item = (&'static str, String)>) -> Vec<EnvVar> {
    vars.into_iter()
        .map(|(name, value)| EnvVar {
            name: name.to_string(),
            value,
        })
        .collect()
}

impl Vrrp {
    fn new(inventory: &Inventory, server: &Server) -> Option<Self> {
        inventory.lb.floating_address?;
        let lbs: Vec<_> = inventory.servers_with(Role::Lb).collect();
        let index = lbs.iter().position(|s| s.name == server.name)?;
        let public = |s: &Server| {
            s.record_ip()
                .expect("load checks load balancers' addresses")
                .to_string()
        };
        Some(Self {
            priority: 150u8.saturating_sub(10 * index.min(14) as u8),
            address: public(server),
            peers: lbs
                .iter()
                .filter(|s| s.name != server.name)
                .map(|s| public(s))
                .collect(),
        })
    }
}

fn private(s: &Server) -> String {
    s.private_address()
        .expect("load checks every server's private address")
        .to_string()
}

fn web_backends(inventory: &Inventory) -> Vec<Backend> {
    inventory
        .servers_with(Role::Web)
        .map(|s| Backend {
            name: s.name.to_string(),
            address: private(s),
        })
        .collect()
}

impl DbLayout {
    /// The database's address for the app when it is on the network. A
    /// cluster is reached through HAProxy on the load balancers, which are
    /// its clients.
    fn host(inventory: &Inventory) -> Option<String> {
        match crate::roles::Site::cluster_address(inventory) {
            Some(address) => Some(address.to_string()),
            None => inventory
                .db_networked()
                .then(|| private(inventory.db_primary())),
        }
    }

    fn new(inventory: &Inventory, server: &Server, secrets: &Secrets) -> Self {
        let primary = private(inventory.db_primary());
        let networked = inventory.db_networked();
        let replicas: Vec<_> = inventory.servers_with(Role::DbReplica).collect();
        let cluster: Vec<Backend> = inventory
            .servers_with(Role::DbCluster)
            .map(|s| Backend {
                name: s.name.to_string(),
                address: private(s),
            })
            .collect();
        let load_balancers = || inventory.servers_with(Role::Lb).map(private);
        Self {
            host: Self::host(inventory),
            bind: if networked {
                private(server)
            } else {
                "127.0.0.1".into()
            },
            clients: if !cluster.is_empty() {
                load_balancers().collect()
            } else if networked {
                inventory.servers_with(Role::App).map(private).collect()
            } else {
                vec!["localhost".into()]
            },
            cluster_members: cluster
                .iter()
                .map(|m| format!("{}={}", m.name, m.address))
                .collect::<Vec<_>>()
                .join(" "),
            tls: networked.then(|| {
                let own = secrets.db_tls.get(server.name.as_str());
                ClusterTlsFiles {
                    ca: secrets.db_ca().unwrap_or(MASK).to_string(),
                    cert: own.map_or(MASK, |t| t.cert.as_str()).to_string(),
                    key: own.map_or(MASK, |t| t.key.as_str()).to_string(),
                }
            }),
            cluster,
            check_port: crate::roles::CHECK_PORT,
            server_id: replicas
                .iter()
                .position(|r| r.name == server.name)
                .map_or(1, |i| i + 2),
            replicas: replicas.into_iter().map(private).collect(),
            primary,
        }
    }
}

/// The app's environment: the database settings (as `DbLayout` sees the
/// database from an app server), then `app.env`, secrets read.
fn app_environment(inventory: &Inventory, secrets: &Secrets) -> Vec<EnvVar> {
    app_environment_with(inventory, &secrets.mysql_password, |name| {
        secrets
            .app_env
            .get(name)
            .cloned()
            .unwrap_or_else(|| MASK.to_string())
    })
}

/// The app's environment with every secret as a placeholder naming it,
/// never its value: what a release step's key covers (`steps::release`).
pub fn app_environment_unread(inventory: &Inventory) -> Vec<(String, String)> {
    app_environment_with(inventory, "(secret mysql.password)", |name| {
        format!("(secret {name})")
    })
    .into_iter()
    .map(|v| (v.name, v.value))
    .collect()
}

fn app_environment_with(
    inventory: &Inventory,
    mysql_password: &str,
    secret: impl Fn(&str) -> String,
) -> Vec<EnvVar> {
    let var = |name: &str, value: &str| EnvVar {
        name: name.to_string(),
        value: value.to_string(),
    };
    let mysql = &inventory.mysql;
    let mut env = vec![
        var("DB_NAME", mysql.database.as_str()),
        var("DB_USER", mysql.user.as_str()),
        var("DB_PASSWORD", mysql_password),
    ];
    match DbLayout::host(inventory) {
        Some(host) => {
            env.push(var("DB_HOST", &host));
            env.push(var("DB_PORT", "3306"));
            if inventory.db_networked() {
                // The CA's certificate, where the playbook puts it.
                env.push(var("DB_SSL_CA", "/etc/foobar/db-ca.pem"));
            }
        }
        None => env.push(var("DB_SOCKET", "/run/mysqld/mysqld.sock")),
    }
    env.extend(inventory.app.env.iter().map(|(name, value)| EnvVar {
        name: name.to_string(),
        value: match value {
            EnvValue::Plain(v) => v.clone(),
            EnvValue::Secret(_) => secret(name.as_str()),
        },
    }));
    env
}

/// What reaches this server through its firewall: every rule is built
/// from checked values (ports, addresses), one nftables rule a line.
fn firewall_rules(inv: &Inventory, server: &Server) -> Vec<String> {
    use std::collections::BTreeSet;
    let fw = &inv.firewall;
    let mut open: BTreeSet<(u16, &str)> = BTreeSet::new();
    // (port, protocol, from these addresses only)
    let mut from: Vec<(u16, &str, Vec<std::net::IpAddr>)> = Vec::new();
    for role in &server.roles {
        for o in role.module().ports(inv, server.name.as_str()) {
            match o.from {
                None => {
                    open.insert((o.port, o.protocol));
                }
                Some(addresses) => from.push((o.port, o.protocol, addresses)),
            }
        }
    }
    for p in &fw.open {
        let (port, proto) = p.as_str().split_once('/').expect("checked");
        open.insert((port.parse().expect("checked"), proto));
    }
    let closed = |port: u16, proto: &str| {
        fw.closed
            .iter()
            .any(|c| c.as_str() == format!("{port}/{proto}"))
    };
    let mut rules = Vec::new();
    for proto in ["tcp", "udp"] {
        let ports: Vec<String> = open
            .iter()
            .filter(|(p, pr)| *pr == proto && !closed(*p, pr))
            .map(|(p, _)| p.to_string())
            .collect();
        if !ports.is_empty() {
            rules.push(format!("{proto} dport {{ {} }} accept", ports.join(", ")));
        }
    }
    let family = |a: &std::net::IpAddr| if a.is_ipv4() { "ip" } else { "ip6" };
    for (port, proto, addrs) in from.iter().filter(|(p, pr, _)| !closed(*p, pr)) {
        for fam in ["ip", "ip6"] {
            let set: Vec<String> = addrs
                .iter()
                .filter(|a| family(a) == fam)
                .map(|a| a.to_string())
                .collect();
            if !set.is_empty() {
                rules.push(format!(
                    "{fam} saddr {{ {} }} {proto} dport {port} accept",
                    set.join(", ")
                ));
            }
        }
    }
    // The load balancers' VRRP adverts (protocol 112), from their peers only.
    if let Some(vrrp) = Vrrp::new(inv, server) {
        if !vrrp.peers.is_empty() {
            rules.push(format!(
                "ip saddr {{ {} }} ip protocol 112 accept",
                vrrp.peers.join(", ")
            ));
        }
    }
    rules
}

/// The zone record type for an address.
fn record(ip: std::net::IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "A"
    } else {
        "AAAA"
    }
}

impl Renderer {
    /// Templates come from `project` (its files, then the built-in ones).
    pub fn new(project: &Project) -> Self {
        let mut env = Environment::new();
        let source = project.clone();
        env.set_loader(move |name| match source.template(name) {
            Ok(found) => Ok(found.map(|(_, text)| text)),
            Err(e) => Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                e.message,
            )),
        });
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Config files, not HTML: never escape.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // A value of the app's environment file, as systemd and sh read it.
        env.add_filter("env_quote", |s: String| crate::shell::env_quote(&s));
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("static syntax config");
        env.set_syntax(syntax);
        env.add_filter("systemd_arg", |s: &str| crate::shell::systemd_arg(s));
        Self {
            env,
            project: project.clone(),
        }
    }

    /// Renders `templates/<name>`.
    pub fn file(&self, name: &str, ctx: &Context) -> Result<String, InputError> {
        self.render_file(name, Serde(ctx).into())
    }

    /// Renders `templates/<name>` for one item of a list (a process of
    /// the app), which the template sees as `key` beside the context.
    pub fn file_with<T: Serialize>(
        &self,
        name: &str,
        ctx: &Context,
        key: &str,
        item: &T,
    ) -> Result<String, InputError> {
        let item = Serde(std::collections::BTreeMap::from([(key, item)])).into();
        self.render_file(
            name,
            minijinja::value::merge_maps([item, minijinja::Value::from(Serde(ctx))]),
        )
    }

    fn render_file(&self, name: &str, ctx: minijinja::Value) -> Result<String, InputError> {
        let path = self.project.template_path(name);
        let tmpl = self.env.get_template(name).map_err(|e| match e.kind() {
            minijinja::ErrorKind::TemplateNotFound => InputError::new(
                &path,
                "no such template (neither the project nor foobar has it)",
            ),
            _ => template_error(&path, &e),
        })?;
        tmpl.render(ctx).map_err(|e| template_error(&path, &e))
    }

    /// Renders one templated playbook field; an error says why, for the
    /// caller to place.
    pub fn field(&self, source: &str, ctx: &Context) -> Result<String, String> {
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(source.to_string());
        }
        self.env
            .render_str(source, Serde(ctx))
            .map_err(|e| format!("cannot render `{source}`: {}", describe(&e)))
    }

    /// Evaluates a `when` expression; an error says why, for the caller
    /// to place.
    pub fn condition(&self, expr: &str, ctx: &Context) -> Result<bool, String> {
        let fail = |e: minijinja::Error| format!("cannot evaluate `{expr}`: {}", describe(&e));
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
