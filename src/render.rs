//! Rendering templates and templated playbook fields with minijinja, with
//! strict undefined values: a typo is an error naming template and line.

use std::path::Path;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::InputError;
use crate::inventory::{EnvValue, Inventory, Role, Server};
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
    pub nameservers: Vec<Nameserver>,
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
    /// `app.env` with its secrets read: what the app's environment holds
    /// besides the database settings.
    pub app_env: Vec<EnvVar>,
    /// HTTPS, when `nginx.tls` is set: the files nginx reads.
    pub tls: Option<TlsFiles>,
    /// nftables rules (input) for this server's roles, beside SSH.
    pub firewall_rules: Vec<String>,
    /// The SSH port the inventory names (22 when it names none); the
    /// firewall also opens every port sshd listens on when it is applied.
    pub ssh_port: u16,
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

#[derive(Serialize)]
pub struct Nameserver {
    /// `ns1.foobar.com`
    pub name: String,
    /// `ns1`
    pub label: String,
    pub address: String,
    /// `A` or `AAAA`.
    pub record: &'static str,
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
            nameservers: inventory
                .nameservers()
                .into_iter()
                .map(|(name, address)| Nameserver {
                    label: name.split('.').next().unwrap_or_default().to_string(),
                    name,
                    address: address.to_string(),
                    record: record(address),
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
            app_env: inventory
                .app
                .env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.to_string(),
                    value: match value {
                        EnvValue::Plain(v) => v.clone(),
                        EnvValue::Secret(_) => secrets
                            .app_env
                            .get(name.as_str())
                            .cloned()
                            .unwrap_or_else(|| MASK.to_string()),
                    },
                })
                .collect(),
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
        }
    }
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
        // A cluster is reached through HAProxy on the load balancers,
        // which are its clients.
        let host = match crate::roles::Site::cluster_address(inventory) {
            Some(address) => Some(address.to_string()),
            None => networked.then(|| primary.clone()),
        };
        Self {
            host,
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
        env.set_loader(move |name| Ok(source.template(name).map(|(_, text)| text)));
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
        Self {
            env,
            project: project.clone(),
        }
    }

    /// Renders `templates/<name>`.
    pub fn file(&self, name: &str, ctx: &Context) -> Result<String, InputError> {
        let path = self.project.template_path(name);
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
