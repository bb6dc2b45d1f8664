//! Reading an inventory file: size and encoding, strict YAML, and the
//! checks that need several fields at once.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::schema::*;
use crate::error::InputError;
use crate::roles::Site;

/// Files larger than this are refused before parsing: an inventory is a
/// page of YAML, and a huge file is a mistake (or an attack on the parser).
const MAX_INVENTORY_BYTES: u64 = 1024 * 1024;

/// An inventory with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub inventory: Inventory,
    /// The file's text, to point errors found later at their line.
    pub text: String,
}

impl Loaded {
    /// Resolves a path from the inventory: `~` and `$HOME` are the home
    /// folder, and a relative path is relative to the inventory's folder.
    pub fn local_path(&self, p: &Path) -> PathBuf {
        let p = expand_home(p);
        if p.is_absolute() {
            p
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// An error about the value at `key` (dotted, like `app.source` or
    /// `servers[0].ssh.identity_file`), pointing at its line.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> InputError {
        let (line, column) = locate(&self.text, key).unwrap_or((0, 0));
        InputError::at(
            &self.path,
            line,
            column,
            format!("{key}: {}", message.into()),
        )
    }

    pub fn server(&self, name: &str) -> Option<&Server> {
        self.inventory
            .servers
            .0
            .iter()
            .find(|s| s.name.as_str() == name)
    }
}

/// Reads and checks an inventory file.
pub fn load(path: &Path) -> Result<Loaded, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        InputError::new(
            path,
            format!("cannot read the inventory ({e}); pass one with -i FILE"),
        )
    })?;
    if meta.len() > MAX_INVENTORY_BYTES {
        return Err(InputError::new(
            path,
            format!(
                "the inventory is {} bytes; inventories over {MAX_INVENTORY_BYTES} bytes are refused",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(path, format!("cannot read the inventory: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let (line, column) = position_of(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        InputError::at(
            path,
            line,
            column,
            "the file is not UTF-8 text: save it as UTF-8",
        )
    })?;
    let inventory = parse(path, &text)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        inventory,
        text,
    })
}

/// Parses inventory text; `path` only names the source in errors.
pub fn parse(path: &Path, text: &str) -> Result<Inventory, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new(
            path,
            "the inventory is empty: see inventory/lab.yml for a complete example",
        ));
    }
    let inventory: Inventory =
        serde_yaml::from_str(text).map_err(|e| InputError::from_yaml(path, text, &e))?;
    check_whole(path, text, &inventory)?;
    Ok(inventory)
}

/// Checks that need several fields at once.
fn check_whole(path: &Path, text: &str, inv: &Inventory) -> Result<(), InputError> {
    let at_key = |key: &str, message: String| {
        let (line, column) = find_key(text, key);
        InputError::at(path, line, column, message)
    };
    // A duplicate is shown where it appears the second time.
    let twice = |needle: String, message: String| {
        let (line, column) = find_last_key(text, &needle);
        InputError::at(path, line, column, message)
    };
    if let Some((_, s)) = duplicate(&inv.servers.0, |s| s.name.clone()) {
        return Err(twice(
            format!("name: {}", s.name),
            format!(
                "server name `{}` appears twice: give each server its own name",
                s.name
            ),
        ));
    }
    if let Some((_, s)) = duplicate(&inv.servers.0, |s| s.address.clone()) {
        return Err(twice(
            format!("address: {}", s.address),
            format!(
                "address {} is given to two servers: give each server its own address",
                s.address
            ),
        ));
    }
    if let Some(s) = inv.servers_with(Role::DnsSecondary).next() {
        if inv.servers_with(Role::Dns).next().is_none() {
            return Err(at_key(
                &format!("name: {}", s.name),
                format!(
                    "server `{}` has the dns_secondary role, but no server has `dns`: a secondary copies the zone from the primary; give one server the dns role",
                    s.name
                ),
            ));
        }
    }
    for role in [Role::Web, Role::Db, Role::Dns] {
        let covered = |s: &Server| s.has(role) || (role == Role::Db && s.has(Role::DbCluster));
        if !inv.servers.0.iter().any(covered) {
            return Err(at_key(
                "servers:",
                format!(
                    "no server has the `{}` role: add it to one server's roles{}",
                    role.name(),
                    if role == Role::Db {
                        " (or `db_cluster` to three servers' roles, for a Galera cluster)"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    for s in &inv.servers.0 {
        // The zone holds the web server's address (www) and each
        // nameserver's (glue): those need an IP.
        let in_zone =
            s.has(Role::Dns) || s.has(Role::DnsSecondary) || inv.front_server().name == s.name;
        if in_zone && s.record_ip().is_none() {
            return Err(at_key(
                &format!("address: {}", s.address),
                format!(
                    "server `{}` is reached by the name {}, but the zone needs its IP address: add `ip: <its public address>` to it",
                    s.name, s.address
                ),
            ));
        }
        if let Some(lab) = &inv.lab {
            if !s.address.v4().is_some_and(|a| lab.contains(a)) {
                return Err(at_key(
                    &format!("address: {}", s.address),
                    format!(
                        "server `{}` has address {}, outside the lab subnet {}/24: lab servers take addresses in the lab subnet",
                        s.name, s.address, lab.bridge_address
                    ),
                ));
            }
        }
    }
    check_tls(inv).map_err(|(needle, message)| at_key(&needle, message))?;
    check_firewall(inv).map_err(|(needle, message)| at_key(&needle, message))?;
    check_roles(inv).map_err(|(needle, message)| at_key(&needle, message))
}

/// A port is open or closed, not both; the SSH port stays open.
fn check_firewall(inv: &Inventory) -> Result<(), (String, String)> {
    let fw = &inv.firewall;
    if let Some(p) = fw.closed.iter().find(|p| fw.open.contains(p)) {
        return Err((
            p.to_string(),
            format!("firewall: port {p} is both open and closed: keep it in one list"),
        ));
    }
    for s in &inv.servers.0 {
        let ssh = format!("{}/tcp", s.ssh.port.map_or(22, |p| p.0));
        if fw.closed.iter().any(|p| p.as_str() == ssh) {
            return Err((
                ssh.clone(),
                format!("firewall: closing {ssh} would lock foobar out of {}: foobar keeps its SSH port open", s.name),
            ));
        }
    }
    Ok(())
}

/// A certificate comes from files on the server or from ACME: one way.
fn check_tls(inv: &Inventory) -> Result<(), (String, String)> {
    let Some(tls) = &inv.nginx.tls else {
        return Ok(());
    };
    match (&tls.certificate, &tls.key, &tls.acme) {
        (Some(_), Some(_), None) | (None, None, Some(_)) => Ok(()),
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err((
            "acme:".into(),
            "nginx.tls names a certificate path and ACME at once: keep `certificate` and `key` (a certificate you manage) or `acme` (foobar obtains and renews one), not both".into(),
        )),
        _ => Err((
            "tls:".into(),
            "nginx.tls needs `certificate` and `key` (paths on the server), or `acme` for foobar to obtain the certificate".into(),
        )),
    }
}

/// Line and column (1-based) of the first line containing `needle`, for
/// errors about a whole entry; (1, 1) when it is not found.
/// Comment lines are skipped; a needle that appears twice (a duplicate) is
/// found at its last appearance by `find_last_key`.
fn find_key(text: &str, needle: &str) -> (usize, usize) {
    key_lines(text, needle).next().unwrap_or((1, 1))
}

fn find_last_key(text: &str, needle: &str) -> (usize, usize) {
    key_lines(text, needle).last().unwrap_or((1, 1))
}

fn key_lines<'t>(text: &'t str, needle: &'t str) -> impl Iterator<Item = (usize, usize)> + 't {
    text.lines().enumerate().filter_map(move |(i, line)| {
        if line.trim_start().starts_with('#') {
            return None;
        }
        line.find(needle).map(|col| (i + 1, col + 1))
    })
}

/// `~/x`, `$HOME/x` and `${HOME}/x` with the home folder.
fn expand_home(p: &Path) -> PathBuf {
    let Some(s) = p.to_str() else {
        return p.to_path_buf();
    };
    let home = std::env::var("HOME").unwrap_or_default();
    for prefix in ["~", "$HOME", "${HOME}"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            if (rest.is_empty() || rest.starts_with('/')) && !home.is_empty() {
                return PathBuf::from(format!("{home}{rest}"));
            }
        }
    }
    p.to_path_buf()
}

/// Line and column (1-based) of the value of a dotted key path in YAML
/// text written in block style, like every inventory foobar ships.
pub fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    // (first line, end line, minimum indent) of the block searched.
    let (mut from, mut to, mut min) = (0usize, lines.len(), 0usize);
    let mut found = None;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let at = (from..to).find(|&i| {
            let l = lines[i];
            let t = l.trim_start().trim_start_matches("- ");
            indent(l) >= min && t.starts_with(&format!("{name}:"))
        })?;
        let key_indent = indent(lines[at]) + lines[at].trim_start().len()
            - lines[at].trim_start().trim_start_matches("- ").len();
        let end = (at + 1..to)
            .find(|&i| !lines[i].trim().is_empty() && indent(lines[i]) <= key_indent)
            .unwrap_or(to);
        let column = lines[at].find(&format!("{name}:")).unwrap_or(0) + name.len() + 3;
        found = Some((at + 1, column.min(lines[at].len().max(1))));
        (from, to, min) = (at + 1, end, key_indent + 1);
        if let Some(n) = index {
            // The n-th `- ` item of the list under the key.
            let base = (from..to)
                .filter(|&i| !lines[i].trim().is_empty())
                .map(|i| indent(lines[i]))
                .min()?;
            let item = (from..to)
                .filter(|&i| indent(lines[i]) == base && lines[i].trim_start().starts_with("- "))
                .nth(n)?;
            let item_end = (item + 1..to)
                .find(|&i| !lines[i].trim().is_empty() && indent(lines[i]) <= indent(lines[item]))
                .unwrap_or(to);
            found = Some((item + 1, indent(lines[item]) + 3));
            (from, to, min) = (item, item_end, indent(lines[item]));
        }
    }
    found
}

fn position_of(valid_prefix: &[u8]) -> (usize, usize) {
    let line = valid_prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = valid_prefix
        .iter()
        .rev()
        .take_while(|&&b| b != b'\n')
        .count()
        + 1;
    (line, column)
}

impl Inventory {
    pub fn servers_with(&self, role: Role) -> impl Iterator<Item = &Server> {
        self.servers.0.iter().filter(move |s| s.has(role))
    }

    /// The address www (and the apex) point at: the first web server's.
    /// The server the site's name points at: the first load balancer, or
    /// the first web server when there is none.
    pub fn front_server(&self) -> &Server {
        self.servers_with(Role::Lb)
            .chain(self.servers_with(Role::Web))
            .next()
            .expect("load checks that a server has the web role")
    }

    /// What `www` and the apex hold: the load balancers' floating address,
    /// or the front server's address.
    pub fn web_address(&self) -> IpAddr {
        self.lb.floating_address.map(IpAddr::V4).unwrap_or_else(|| {
            self.front_server()
                .record_ip()
                .expect("load checks that the front server has an IP")
        })
    }

    /// The MariaDB primary, or the first member of the Galera cluster.
    pub fn db_primary(&self) -> &Server {
        self.servers_with(Role::Db)
            .chain(self.servers_with(Role::DbCluster))
            .next()
            .expect("load checks that one server has the db or db_cluster role")
    }

    /// The database is a Galera cluster (`db_cluster` servers).
    pub fn db_cluster(&self) -> bool {
        self.servers_with(Role::DbCluster).next().is_some()
    }

    /// True when MariaDB is reached over the network (by app servers on
    /// other servers, replicas, cluster members); otherwise it listens on
    /// localhost only and the app uses its socket.
    pub fn db_networked(&self) -> bool {
        let primary = &self.db_primary().name;
        self.db_cluster()
            || self.servers_with(Role::DbReplica).next().is_some()
            || self.servers_with(Role::App).any(|s| &s.name != primary)
    }

    /// The order servers are provisioned in: each server in the wave of
    /// its latest role (`ServerRole::wave`): the primary and servers
    /// without a dependency first; then the replicas, which copy it, and
    /// the app server that runs the release command; then the other app
    /// servers; then the load balancers, which put the web servers in
    /// service.
    pub fn wave(&self, server: &Server) -> u8 {
        server
            .roles
            .iter()
            .map(|r| r.module().wave(self, server.name.as_str()))
            .max()
            .unwrap_or(0)
    }

    /// The units that serve these roles, each once, in role order: what
    /// status shows, logs reads and restart restarts.
    pub fn units(&self, roles: impl IntoIterator<Item = Role>) -> Vec<&'static str> {
        let mut units = Vec::new();
        for role in roles {
            for unit in role.module().units(self) {
                if !units.contains(&unit) {
                    units.push(unit);
                }
            }
        }
        units
    }

    /// The app server that runs `app.release_command`: the first one.
    pub fn release_server(&self) -> Option<&Server> {
        self.servers_with(Role::App).next()
    }

    /// The servers that answer for the zone: the primary, then the secondaries.
    pub fn nameserver_hosts(&self) -> impl Iterator<Item = &Server> {
        self.servers_with(Role::Dns)
            .chain(self.servers_with(Role::DnsSecondary))
    }

    /// Name servers of the zone: `ns1.<zone>` (the primary), `ns2.<zone>`,
    /// ... (the secondaries, in order), as nameserver_hosts lists them.
    pub fn nameservers(&self) -> Vec<(String, IpAddr)> {
        self.nameserver_hosts()
            .enumerate()
            .map(|(i, s)| {
                let ip = s
                    .record_ip()
                    .expect("load checks that nameservers have IPs");
                (format!("ns{}.{}", i + 1, self.domain.zone), ip)
            })
            .collect()
    }
}

impl Site for Inventory {
    fn app_kind(&self) -> crate::app_kinds::AppKind {
        self.app.kind
    }
    fn floating_address(&self) -> Option<IpAddr> {
        self.lb.floating_address.map(IpAddr::V4)
    }
    fn db_networked(&self) -> bool {
        Inventory::db_networked(self)
    }
    fn site_ports(&self) -> Vec<u16> {
        std::iter::once(self.nginx.listen.0)
            .chain(self.nginx.tls.as_ref().map(|t| t.listen.0))
            .collect()
    }
    fn addresses_of(&self, role: Role, except: &str) -> Vec<IpAddr> {
        self.servers_with(role)
            .filter(|s| s.name.as_str() != except)
            .filter_map(Server::private_address)
            .collect()
    }
    fn names_of(&self, role: Role, except: &str) -> Vec<String> {
        self.servers_with(role)
            .filter(|s| s.name.as_str() != except)
            .map(|s| s.name.to_string())
            .collect()
    }
    fn db_primary(&self) -> String {
        Inventory::db_primary(self).name.to_string()
    }
    /// The load balancers' private floating address, else their floating
    /// address, else the first one's private address.
    fn cluster_address(&self) -> Option<IpAddr> {
        if !self.db_cluster() {
            return None;
        }
        self.lb
            .private_floating_address
            .or(self.lb.floating_address)
            .map(IpAddr::V4)
            .or_else(|| {
                self.servers_with(Role::Lb)
                    .find_map(Server::private_address)
            })
    }
    fn is_release_server(&self, server: &str) -> bool {
        self.release_server()
            .is_some_and(|s| s.name.as_str() == server)
    }
    fn health_path(&self) -> String {
        self.app.health_path.to_string()
    }
    fn app_root(&self) -> String {
        self.app.root.to_string()
    }
    fn database(&self) -> String {
        self.mysql.database.to_string()
    }
    fn zone(&self) -> String {
        self.domain.zone.to_string()
    }
}

/// The first server whose `key` an earlier one has: (the earlier, it).
fn duplicate<K: Ord>(servers: &[Server], key: impl Fn(&Server) -> K) -> Option<(&Server, &Server)> {
    let mut seen = std::collections::BTreeMap::new();
    servers
        .iter()
        .find_map(|s| seen.insert(key(s), s).map(|earlier| (earlier, s)))
}

/// How roles may be combined, as (a needle to find the line, message).
fn check_roles(inv: &Inventory) -> Result<(), (String, String)> {
    let servers = &inv.servers.0;
    let entry = |s: &Server| format!("name: {}", s.name);
    for s in servers {
        if let Some(why) = broken_combination(s) {
            return Err((entry(s), format!("server `{}`: {why}", s.name)));
        }
        // Servers reach each other only when there are several.
        if servers.len() > 1 && s.private_address().is_none() {
            return Err((
                entry(s),
                format!(
                    "server `{}` is reached by a name: add `private_ip: <the address the other servers reach it by>`",
                    s.name
                ),
            ));
        }
    }
    let members: Vec<_> = inv.servers_with(Role::DbCluster).collect();
    if let Some(first) = members.first() {
        if let Some(primary) = inv.servers_with(Role::Db).next() {
            return Err((
                entry(primary),
                format!(
                    "server `{}` has the db role and `{}` db_cluster: the database is either a primary (db, with db_replica copies) or a Galera cluster (db_cluster on every member); choose one",
                    primary.name, first.name
                ),
            ));
        }
        if members.len() < 3 {
            return Err((
                entry(members[members.len() - 1]),
                format!(
                    "a Galera cluster needs three db_cluster servers or more ({} here): with two, either one's loss stops the other taking writes",
                    members.len()
                ),
            ));
        }
        if inv.servers_with(Role::Lb).next().is_none() {
            return Err((
                entry(first),
                "a Galera cluster is reached through HAProxy on the load balancers: give a server the lb role".into(),
            ));
        }
    }
    let primaries: Vec<_> = inv.servers_with(Role::Db).collect();
    if primaries.len() > 1 {
        return Err((
            entry(primaries[1]),
            format!(
                "servers `{}` and `{}` both have the db role: one server is the primary; give the others `db_replica`",
                primaries[0].name, primaries[1].name
            ),
        ));
    }
    let zone_primaries: Vec<_> = inv.servers_with(Role::Dns).collect();
    if zone_primaries.len() > 1 {
        return Err((
            entry(zone_primaries[1]),
            format!(
                "servers `{}` and `{}` both have the dns role: one server is the zone's primary; give the others `dns_secondary`",
                zone_primaries[0].name, zone_primaries[1].name
            ),
        ));
    }
    if inv.servers_with(Role::DnsSecondary).next().is_some() && inv.domain.transfer_key.is_none() {
        return Err((
            "domain:".into(),
            "a server has the dns_secondary role, so domain needs `transfer_key: env:NAME` or `file:PATH` (base64, `openssl rand -base64 32`)".into(),
        ));
    }
    if inv.db_networked() && inv.mysql.tls_ca.is_none() {
        return Err((
            "mysql:".into(),
            "the database is reached over the network (a cluster, replicas, or app servers on other servers), so mysql needs `tls_ca: <a folder on this machine>`, where foobar keeps the database servers' certificate authority (made on first use, keys 0600): their traffic goes over TLS".into(),
        ));
    }
    if inv.servers_with(Role::DbReplica).next().is_some()
        && inv.mysql.replication_password.is_none()
    {
        return Err((
            "mysql:".into(),
            "a server has the db_replica role, so mysql needs `replication_password: env:NAME` or `file:PATH`".into(),
        ));
    }
    if servers.len() > 1 {
        if let Some((other, s)) = duplicate(servers, Server::private_address) {
            return Err((
                entry(s),
                format!(
                    "servers `{}` and `{}` have the same private address {}: give each its own",
                    other.name,
                    s.name,
                    s.private_address().expect("checked above"),
                ),
            ));
        }
    }
    if let Some(floating) = inv.lb.floating_address {
        let lbs: Vec<_> = inv.servers_with(Role::Lb).collect();
        if lbs.is_empty() {
            return Err((
                "floating_address".into(),
                "lb.floating_address is set but no server has the lb role: add `lb` to the load balancers' roles".into(),
            ));
        }
        let prefix = inv.lb.prefix_len.0;
        // VRRP runs where the site is served: on the public addresses.
        for s in &lbs {
            let Some(IpAddr::V4(ip)) = s.record_ip() else {
                return Err((
                    entry(s),
                    format!(
                        "load balancer `{}` needs an IPv4 address (`ip:`) to share {floating}",
                        s.name
                    ),
                ));
            };
            if !same_subnet(ip, floating, prefix) {
                return Err((
                    "floating_address".into(),
                    format!(
                        "floating address {floating} is outside the subnet {}/{prefix} of load balancer `{}`: pick a free address in that subnet",
                        subnet(ip, prefix),
                        s.name
                    ),
                ));
            }
        }
        if let Some(s) = servers.iter().find(|s| {
            s.private_address() == Some(IpAddr::V4(floating))
                || s.record_ip() == Some(IpAddr::V4(floating))
        }) {
            return Err((
                "floating_address".into(),
                format!(
                    "floating address {floating} is server `{}`'s own address: pick a free one",
                    s.name
                ),
            ));
        }
        if let Some(lab) = &inv.lab {
            if !lab.contains(floating) {
                return Err((
                    "floating_address".into(),
                    format!(
                        "floating address {floating} is outside the lab subnet {}/24",
                        lab.bridge_address
                    ),
                ));
            }
        }
    }
    if let Some(private) = inv.lb.private_floating_address {
        if inv.lb.floating_address.is_none() {
            return Err((
                "private_floating_address".into(),
                "lb.private_floating_address goes with lb.floating_address: set that too (the load balancers share both)".into(),
            ));
        }
        let prefix = inv.lb.private_prefix_len.0;
        for s in inv.servers_with(Role::Lb) {
            let Some(IpAddr::V4(ip)) = s.private_address() else {
                continue;
            };
            if !same_subnet(ip, private, prefix) {
                return Err((
                    "private_floating_address".into(),
                    format!(
                        "private floating address {private} is outside the subnet {}/{prefix} of load balancer `{}`'s private address: pick a free address in that subnet",
                        subnet(ip, prefix),
                        s.name
                    ),
                ));
            }
        }
        if let Some(s) = servers
            .iter()
            .find(|s| s.private_address() == Some(IpAddr::V4(private)))
        {
            return Err((
                "private_floating_address".into(),
                format!(
                    "private floating address {private} is server `{}`'s own address: pick a free one",
                    s.name
                ),
            ));
        }
    }
    Ok(())
}

/// Why a server's roles cannot go together, if they cannot: first a
/// role another excludes, then one another requires (each role says which).
fn broken_combination(s: &Server) -> Option<&'static str> {
    let roles = || s.roles.iter().map(|r| r.module());
    roles()
        .flat_map(|m| m.excludes())
        .find(|(other, _)| s.has(*other))
        .or_else(|| {
            roles()
                .flat_map(|m| m.requires())
                .find(|(other, _)| !s.has(*other))
        })
        .map(|(_, why)| *why)
}

fn subnet(ip: std::net::Ipv4Addr, prefix: u8) -> std::net::Ipv4Addr {
    let mask = u32::MAX << (32 - u32::from(prefix));
    std::net::Ipv4Addr::from(u32::from(ip) & mask)
}

fn same_subnet(a: std::net::Ipv4Addr, b: std::net::Ipv4Addr, prefix: u8) -> bool {
    subnet(a, prefix) == subnet(b, prefix)
}
