//! Reading an inventory (a stage over its bases): strict YAML with every
//! mistake at its place, and the checks that need several fields at once.

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::records::{self, RecordKind, ZoneRecord};
use super::schema::*;
use super::stages;
use super::tree::Document;
use super::values::ProcessName;
use super::values::WebRoot;
use crate::error::{InputError, InputErrors};
use crate::roles::Site;

/// An inventory with the files it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The inventory given (a stage, when it extends a base).
    pub path: PathBuf,
    pub inventory: Inventory,
    /// The files' keys and values with their places, to point errors
    /// found later at the line that holds them.
    pub document: Document,
    /// The app's code base, read once for every step that ships it.
    pub code_bases: crate::code_base::ReadOnce,
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
    /// `servers[0].ssh.identity_file`), pointing at its line in the file
    /// that holds it.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> InputError {
        self.document
            .error_at(key, format!("{key}: {}", message.into()))
    }

    /// The files ssh is given exist: each server's `identity_file`, and
    /// `known_hosts` and `config` under `ssh:`; a missing one would fail
    /// every connection later in ssh's own words. Asked by the commands
    /// that connect only: `lab up` makes the lab's key and known_hosts,
    /// and `render` needs neither.
    pub fn check_ssh_files(&self) -> Result<(), InputError> {
        for (i, server) in self.inventory.servers.0.iter().enumerate() {
            if let Some(key) = &server.ssh.identity_file {
                self.check_file(
                    &format!("servers[{i}].ssh.identity_file"),
                    &key.0,
                    "give the path of the private key, or leave identity_file out to use ~/.ssh/config and the agent",
                )?;
            }
        }
        let ssh = &self.inventory.ssh;
        if let Some(known_hosts) = &ssh.known_hosts {
            if ssh.accept_new_host_keys {
                // ssh makes the file when it records the first key, in a
                // folder that must exist.
                let path = self.local_path(&known_hosts.0);
                let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
                if let Some(folder) = folder.filter(|f| !f.is_dir()) {
                    return Err(self
                        .error_at(
                            "ssh.known_hosts",
                            format!("no such folder: {}", folder.display()),
                        )
                        .with_help(
                            "make the folder, or name a known_hosts file in one that exists",
                        ));
                }
            } else {
                self.check_file(
                    "ssh.known_hosts",
                    &known_hosts.0,
                    "put the servers' host keys there (`ssh-keyscan` them and compare the fingerprints), or set `accept_new_host_keys: true` to record them at the first connection",
                )?;
            }
        }
        if let Some(config) = &ssh.config {
            self.check_file(
                "ssh.config",
                &config.0,
                "give the path of an ssh_config file, or leave config out to use ~/.ssh/config",
            )?;
        }
        Ok(())
    }

    /// `path`, the value of `key`, names a file (or a device, like
    /// /dev/null); `help` says what to do when it does not.
    fn check_file(&self, key: &str, path: &Path, help: &str) -> Result<(), InputError> {
        let path = self.local_path(path);
        let problem = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => format!("{} is a folder, not a file", path.display()),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("no such file: {}", path.display())
            }
            Err(e) => format!("cannot use {}: {e}", path.display()),
        };
        Err(self.error_at(key, problem).with_help(help))
    }

    pub fn server(&self, name: &str) -> Option<&Server> {
        self.inventory
            .servers
            .0
            .iter()
            .find(|s| s.name.as_str() == name)
    }
}

/// Reads and checks an inventory file, and the bases it extends: every
/// independent mistake found.
pub fn load(path: &Path) -> Result<Loaded, InputErrors> {
    let document = stages::read(path)?;
    let inventory = typed(&document)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        inventory,
        document,
        code_bases: Default::default(),
    })
}

/// The document as an inventory, checked whole.
pub(super) fn typed(document: &Document) -> Result<Inventory, Vec<InputError>> {
    let inventory: Inventory = document.deserialize()?;
    let errors = check_whole(&inventory)
        .into_iter()
        .map(|(key, message)| document.error_at(&key, message))
        .collect::<Vec<_>>();
    if errors.is_empty() {
        Ok(inventory)
    } else {
        Err(errors)
    }
}

/// `servers[i].<field>`: the key path of a field of `server`.
fn of(inv: &Inventory, server: &Server, field: &str) -> String {
    let i = inv
        .servers
        .0
        .iter()
        .position(|s| std::ptr::eq(s, server))
        .expect("a server of the inventory");
    format!("servers[{i}].{field}")
}

/// Checks that need several fields at once: every mistake, as (the key
/// path of the value to fix, message). Those that later checks rely on
/// (a server for each role) come first and stop the rest.
fn check_whole(inv: &Inventory) -> Vec<(String, String)> {
    let servers = &inv.servers.0;
    if servers.is_empty() {
        return vec![(
            "servers".into(),
            "servers is empty: list at least one server".into(),
        )];
    }
    let mut errors = Vec::new();
    // A duplicate is shown where it appears the second time.
    if let Some((_, i)) = duplicate(servers, |s| Some(s.name.clone())) {
        errors.push((
            format!("servers[{i}].name"),
            format!(
                "server name `{}` appears twice: give each server its own name",
                servers[i].name
            ),
        ));
    }
    if let Some((_, i)) = duplicate(servers, |s| Some(s.address.clone())) {
        errors.push((
            format!("servers[{i}].address"),
            format!(
                "address {} is given to two servers: give each server its own address",
                servers[i].address
            ),
        ));
    }
    let secondary = inv.servers_with(Role::DnsSecondary).next();
    if let Some(s) = secondary {
        if inv.servers_with(Role::Dns).next().is_none() {
            errors.push((
                of(inv, s, "name"),
                format!(
                    "server `{}` has the dns_secondary role, but no server has `dns`: a secondary copies the zone from the primary; give one server the dns role",
                    s.name
                ),
            ));
        }
    }
    for role in [Role::Web, Role::Db, Role::Dns] {
        let covered = |s: &Server| s.has(role) || (role == Role::Db && s.has(Role::DbCluster));
        // A secondary without its primary is told above.
        let told = role == Role::Dns && secondary.is_some();
        if !(servers.iter().any(covered) || told) {
            errors.push((
                "servers".into(),
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
    if !errors.is_empty() {
        return errors;
    }
    for s in servers {
        // The zone holds the web server's address (www) and each
        // nameserver's (glue): those need an IP.
        let in_zone =
            s.has(Role::Dns) || s.has(Role::DnsSecondary) || inv.front_server().name == s.name;
        if in_zone && s.record_ip().is_none() {
            errors.push((
                of(inv, s, "address"),
                format!(
                    "server `{}` is reached by the name {}, but the zone needs its IP address: add `ip: <its public address>` to it",
                    s.name, s.address
                ),
            ));
        }
        if let Some(why) = ipv6_mistake(inv, s) {
            errors.push((of(inv, s, "ipv6"), why));
        }
        if let Some(lab) = &inv.lab {
            if !s.address.v4().is_some_and(|a| lab.contains(a)) {
                errors.push((
                    of(inv, s, "address"),
                    format!(
                        "server `{}` has address {}, outside the lab subnet {}/24: lab servers take addresses in the lab subnet",
                        s.name, s.address, lab.bridge_address
                    ),
                ));
            }
        }
    }
    let zone = inv.domain.zone.as_str();
    if let Err(e) = records::parse_all(&inv.domain.records, zone, &inv.foobar_names()) {
        errors.push((
            format!("domain.records[{}].{}", e.index, e.field),
            e.message,
        ));
    }
    errors.extend(check_tls(inv));
    errors.extend(check_web(inv));
    errors.extend(check_firewall(inv));
    errors.extend(check_jumps(inv));
    errors.extend(check_backup(inv));
    errors.extend(check_roles(inv));
    errors.extend(check_schedule(inv));
    errors.extend(check_release_steps(inv));
    errors
}

/// Whether the release path `path` is the folder `folder` or lies in it.
fn within(path: &str, folder: &str) -> bool {
    path == folder || path.starts_with(&format!("{folder}/"))
}

/// A build that may be skipped names what it writes, which it can only
/// link from the live release if the release itself ships none of it and
/// it is the release's own (not the virtualenv, not a shared folder); a
/// release command writes to the database, never to the release.
fn check_release_steps(inv: &Inventory) -> Vec<(String, String)> {
    let app = &inv.app;
    let mut errors = Vec::new();
    for (key, step) in [
        ("build", &app.build),
        ("release_command", &app.release_command),
    ] {
        if step
            .as_ref()
            .is_some_and(|s| s.inputs.as_ref().is_some_and(Vec::is_empty))
        {
            errors.push((
                format!("app.{key}.inputs"),
                "no inputs would mean it never runs again: list the files it reads, or leave `inputs` out to run it in every new release".into(),
            ));
        }
    }
    if let Some(build) = &app.build {
        if build.inputs.is_some() && build.output.is_empty() {
            errors.push((
                "app.build.inputs".into(),
                "a build whose inputs did not change is not run again, and its output is taken from the live release: name that output (`output: [static]`)".into(),
            ));
        }
        if build.inputs.is_none() && !build.output.is_empty() {
            errors.push((
                "app.build.output".into(),
                "an output is only taken from the live release when the build's inputs did not change: name them too (`inputs: [\"static/**\", \"**/settings.py\"]`)".into(),
            ));
        }
        for (i, out) in build.output.iter().enumerate() {
            let o = out.as_str();
            let clash = if within(o, ".venv") {
                Some("the virtualenv (`.venv`), which foobar makes".to_string())
            } else if let Some(other) = build.output[..i]
                .iter()
                .find(|p| within(o, p.as_str()) || within(p.as_str(), o))
            {
                Some(format!("the output `{other}` named before it"))
            } else {
                app.shared
                    .iter()
                    .find(|s| within(o, s.as_str()) || within(s.as_str(), o))
                    .map(|s| format!("the shared folder `{s}`, which every release links to"))
            };
            if let Some(clash) = clash {
                errors.push((
                    format!("app.build.output[{i}]"),
                    format!("`{o}` overlaps {clash}: name a folder only the build writes"),
                ));
            }
        }
    }
    if let Some(rc) = &app.release_command {
        if !rc.output.is_empty() {
            errors.push((
                "app.release_command.output".into(),
                "a release command writes to the database, not the release: only a build has an output".into(),
            ));
        }
    }
    errors
}

/// Each scheduled job has a name of its own, which no process has either:
/// `logs --process` picks either by its name.
fn check_schedule(inv: &Inventory) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for (i, job) in inv.app.schedule.iter().enumerate() {
        let key = format!("app.schedule[{i}].name");
        if inv.app.schedule[..i].iter().any(|j| j.name == job.name) {
            errors.push((
                key,
                format!(
                    "scheduled job `{}` appears twice: give each job its own name",
                    job.name
                ),
            ));
        } else if inv.app.processes.contains_key(&job.name) {
            errors.push((
                key,
                format!(
                    "`{}` names both a process and a scheduled job: give each its own name",
                    job.name
                ),
            ));
        }
    }
    errors
}

/// A port is open or closed, not both; the SSH port stays open.
fn check_firewall(inv: &Inventory) -> Vec<(String, String)> {
    let fw = &inv.firewall;
    let mut errors = Vec::new();
    for (i, p) in fw.closed.iter().enumerate() {
        if fw.open.contains(p) {
            errors.push((
                format!("firewall.closed[{i}]"),
                format!("firewall: port {p} is both open and closed: keep it in one list"),
            ));
        }
        for s in &inv.servers.0 {
            let ssh = format!("{}/tcp", s.ssh.port.map_or(22, |p| p.0));
            if p.as_str() == ssh {
                errors.push((
                    format!("firewall.closed[{i}]"),
                    format!("firewall: closing {ssh} would lock foobar out of {}: foobar keeps its SSH port open", s.name),
                ));
            }
        }
    }
    errors
}

/// One backup server, with its settings, and a database for it to back up.
fn check_backup(inv: &Inventory) -> Option<(String, String)> {
    let servers: Vec<_> = inv.servers_with(Role::Backup).collect();
    match (servers.as_slice(), &inv.backup) {
        ([], None) => None,
        ([], Some(_)) => Some((
            "backup".into(),
            "`backup:` is set but no server has the backup role: add `backup` to the roles of the server that keeps the backups".into(),
        )),
        ([s], None) => Some((
            of(inv, s, "name"),
            format!("server `{}` has the backup role: add a `backup:` section with `password` (env:NAME or file:PATH) and `keys` (a folder on this machine)", s.name),
        )),
        ([s], Some(_)) => {
            let has_db = inv.servers_with(Role::Db).next().is_some()
                || inv.servers_with(Role::DbCluster).next().is_some();
            (!has_db).then(|| (
                of(inv, s, "name"),
                format!("server `{}` has the backup role but no server has a database to back up (db or db_cluster)", s.name),
            ))
        }
        ([_, second, ..], _) => Some((
            of(inv, second, "name"),
            format!("servers `{}` and `{}` both have the backup role: one server keeps the backups", servers[0].name, second.name),
        )),
    }
}

/// A server jumped through is another of the inventory's, reached
/// directly, and forwards.
fn check_jumps(inv: &Inventory) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for s in &inv.servers.0 {
        let Some(via) = &s.ssh.proxy_jump else {
            continue;
        };
        let key = of(inv, s, "ssh.proxy_jump");
        let Some(jump) = inv.servers.0.iter().find(|j| j.name == *via) else {
            errors.push((
                key,
                format!("server `{}` jumps through `{via}`, which is not in the inventory: name one of its servers", s.name),
            ));
            continue;
        };
        if jump.name == s.name || jump.ssh.proxy_jump.is_some() {
            errors.push((
                key,
                format!("server `{}` jumps through `{via}`, which is itself reached through a jump: jump through a server foobar reaches directly", s.name),
            ));
        } else if jump.ssh.forwarding == Some(false) {
            errors.push((
                key,
                format!("server `{}` jumps through `{via}`, whose `ssh.forwarding` is false: a jump needs forwarding there (remove `forwarding: false`)", s.name),
            ));
        }
    }
    errors
}

impl Inventory {
    /// Whether sshd on `server` forwards: as the inventory says, else when
    /// another server jumps through it.
    pub fn forwards(&self, server: &Server) -> bool {
        server
            .ssh
            .forwarding
            .unwrap_or_else(|| self.jumped_through(server).next().is_some())
    }

    /// The servers reached through `server`.
    pub fn jumped_through<'a>(&'a self, server: &'a Server) -> impl Iterator<Item = &'a Server> {
        self.servers
            .0
            .iter()
            .filter(move |s| s.ssh.proxy_jump.as_ref() == Some(&server.name))
    }
}

/// A certificate comes from files on the server or from ACME: one way.
fn check_tls(inv: &Inventory) -> Option<(String, String)> {
    let tls = inv.nginx.tls.as_ref()?;
    match (&tls.certificate, &tls.key, &tls.acme) {
        (Some(_), Some(_), None) | (None, None, Some(_)) => None,
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Some((
            "nginx.tls.acme".into(),
            "nginx.tls names a certificate path and ACME at once: keep `certificate` and `key` (a certificate you manage) or `acme` (foobar obtains and renews one), not both".into(),
        )),
        _ => Some((
            "nginx.tls".into(),
            "nginx.tls needs `certificate` and `key` (paths on the server), or `acme` for foobar to obtain the certificate".into(),
        )),
    }
}

/// What nginx serves: a root that shows no code but PHP's (which runs),
/// uploads that are not the root, and each location one folder at a URL
/// no other location's overlaps. Each message begins with its key, as a
/// checked value's does.
fn check_web(inv: &Inventory) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut error = |key: String, message: String| {
        let message = format!("{key}: {message}");
        errors.push((key, message));
    };
    let root = inv.nginx.static_dir.as_ref().map(WebRoot::as_str);
    let server = inv.app.kind.server();
    match root {
        None if server.runs_web_root_scripts() => error(
            "nginx.static_dir".into(),
            format!(
                "{} runs the scripts of the folder served at /: name it (`.` for the release itself, or a folder like `public`)",
                server.name()
            ),
        ),
        Some(".") if !server.runs_web_root_scripts() => error(
            "nginx.static_dir".into(),
            format!(
                "`.` would serve the whole code base, its source and settings included: name the folder of its public files (like `static`), or leave static_dir out; only php-fpm, whose scripts never leave as files, serves its release itself ({} here)",
                server.name()
            ),
        ),
        _ => {}
    }
    if let Some(root) = root.filter(|r| *r != ".") {
        for (i, shared) in inv.app.shared.iter().enumerate() {
            let s = shared.as_str();
            if within(root, s) {
                error(
                    format!("app.shared[{i}]"),
                    format!("`{s}` holds nginx.static_dir `{root}`: the site's root would be uploads; share a folder inside it, like `{root}/uploads`"),
                );
            }
        }
    }
    let locations = &inv.nginx.locations;
    for (i, l) in locations.iter().enumerate() {
        let at = |field: &str| format!("nginx.locations[{i}]{field}");
        match (&l.folder, &l.shared) {
            (Some(_), Some(_)) | (None, None) => error(
                at(""),
                format!(
                    "{} needs one of `folder` (a folder of the release) or `shared` (one of app.shared)",
                    l.url
                ),
            ),
            (Some(folder), None) => {
                let f = folder.as_str();
                if f.split('/').any(|part| part.starts_with('.')) {
                    error(
                        at(".folder"),
                        format!("`{f}` is hidden (like .git, .venv): hidden folders are never served"),
                    );
                } else if root == Some(f) {
                    error(
                        at(".folder"),
                        format!("`{f}` is nginx.static_dir, served at / already: set `static_dir: null` to serve it only at {} (every other path is then the app's), or name another folder", l.url),
                    );
                }
            }
            (None, Some(shared)) if !inv.app.shared.contains(shared) => {
                let listed: Vec<&str> = inv.app.shared.iter().map(|s| s.as_str()).collect();
                error(
                    at(".shared"),
                    format!(
                        "`{shared}` is not one of app.shared ({}): add it there, so that it outlives releases",
                        if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
                    ),
                );
            }
            (None, Some(_)) => {}
        }
        let overlapping = locations[..i].iter().find(|e| {
            let (a, b) = (e.url.as_str(), l.url.as_str());
            a.starts_with(b) || b.starts_with(a)
        });
        if let Some(earlier) = overlapping {
            error(
                at(".url"),
                format!(
                    "{} overlaps {}: give each location a URL prefix of its own, neither inside the other",
                    l.url, earlier.url
                ),
            );
        }
    }
    errors
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

    /// What `www` and the apex hold in their AAAA record beside
    /// `web_address`: the load balancers' shared IPv6 address, or the
    /// front server's `ipv6`.
    pub fn web_address_v6(&self) -> Option<Ipv6Addr> {
        match self.lb.floating_address {
            Some(_) => self.lb.floating_address_v6,
            None => self.front_server().ipv6,
        }
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

    /// Whether `server` runs what `on` says: an app server, every one or
    /// the first.
    fn runs(&self, on: RunsOn, server: &Server) -> bool {
        server.has(Role::App)
            && (on == RunsOn::All || self.release_server().is_some_and(|s| s.name == server.name))
    }

    /// The app's processes `server` runs, by name.
    pub fn processes_on(&self, server: &Server) -> Vec<(&ProcessName, &Process)> {
        self.app
            .processes
            .iter()
            .filter(|(_, p)| self.runs(p.on, server))
            .collect()
    }

    /// The app's scheduled jobs `server` runs.
    pub fn jobs_on(&self, server: &Server) -> Vec<&ScheduledJob> {
        self.app
            .schedule
            .iter()
            .filter(|j| self.runs(j.on, server))
            .collect()
    }

    /// The server the backup server copies the database from: the primary,
    /// or the cluster's last member (the writer is the first one up).
    pub fn backup_db_source(&self) -> Option<&Server> {
        self.backup.as_ref()?;
        self.servers_with(Role::Db)
            .next()
            .or_else(|| self.servers_with(Role::DbCluster).last())
    }

    /// The server the backup server copies the uploads (`app.shared`)
    /// from: the first app server, which runs the release command too.
    pub fn backup_files_source(&self) -> Option<&Server> {
        self.backup.as_ref()?;
        self.release_server()
            .filter(|_| !self.app.shared.is_empty())
    }

    /// Every server the backup server pulls from, once each.
    pub fn backup_sources(&self) -> Vec<&Server> {
        let mut sources: Vec<&Server> = self.backup_db_source().into_iter().collect();
        if let Some(files) = self.backup_files_source() {
            if !sources.iter().any(|s| s.name == files.name) {
                sources.push(files);
            }
        }
        sources
    }

    /// The servers that answer for the zone: the primary, then the secondaries.
    pub fn nameserver_hosts(&self) -> impl Iterator<Item = &Server> {
        self.servers_with(Role::Dns)
            .chain(self.servers_with(Role::DnsSecondary))
    }

    /// The names foobar writes address records for itself: the zone
    /// (`@`), the web host and the nameservers (`ns1`, ...).
    fn foobar_names(&self) -> Vec<String> {
        // Named as `nameservers` names them; counted only, so that a
        // nameserver still missing its IP (reported beside) is no panic.
        let nameservers = (1..=self.nameserver_hosts().count()).map(|i| format!("ns{i}"));
        [
            "@".to_string(),
            self.domain.host.as_str().to_ascii_lowercase(),
        ]
        .into_iter()
        .chain(nameservers)
        .collect()
    }

    /// The zone's records besides foobar's own: `domain.records`, and with
    /// an ACME CA foobar knows and no CAA record given, one that lets only
    /// that CA issue the site's certificates.
    pub fn zone_records(&self) -> Vec<ZoneRecord> {
        let mut zone_records = records::parse_all(
            &self.domain.records,
            self.domain.zone.as_str(),
            &self.foobar_names(),
        )
        .expect("load checks domain.records");
        if !zone_records.iter().any(|r| r.kind == RecordKind::CAA) {
            let acme = self.nginx.tls.as_ref().and_then(|t| t.acme.as_ref());
            zone_records.extend(acme.and_then(|a| records::default_caa(a.directory.as_str())));
        }
        zone_records
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
    fn backup_db_source(&self) -> Option<String> {
        Inventory::backup_db_source(self).map(|s| s.name.to_string())
    }
    fn backup_files_source(&self) -> Option<String> {
        Inventory::backup_files_source(self).map(|s| s.name.to_string())
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

/// The first server whose `key` an earlier one has, by index: (the
/// earlier, it).
/// Servers without the key (None) are no duplicates of each other.
fn duplicate<K: Ord>(
    servers: &[Server],
    key: impl Fn(&Server) -> Option<K>,
) -> Option<(usize, usize)> {
    let mut seen = std::collections::BTreeMap::new();
    servers
        .iter()
        .enumerate()
        .find_map(|(i, s)| seen.insert(key(s)?, i).map(|earlier| (earlier, i)))
}

/// How roles may be combined: every mistake, as (key path, message).
fn check_roles(inv: &Inventory) -> Vec<(String, String)> {
    let servers = &inv.servers.0;
    let entry = |s: &Server| of(inv, s, "name");
    let mut errors = Vec::new();
    for s in servers {
        if let Some(why) = broken_combination(s) {
            errors.push((entry(s), format!("server `{}`: {why}", s.name)));
        }
    }
    // What the roles then need follows from roles that are wrong.
    if !errors.is_empty() {
        return errors;
    }
    for s in servers {
        // Servers reach each other only when there are several.
        if servers.len() > 1 && s.private_address().is_none() {
            errors.push((
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
            errors.push((
                entry(primary),
                format!(
                    "server `{}` has the db role and `{}` db_cluster: the database is either a primary (db, with db_replica copies) or a Galera cluster (db_cluster on every member); choose one",
                    primary.name, first.name
                ),
            ));
        } else if members.len() < 3 {
            errors.push((
                entry(members[members.len() - 1]),
                format!(
                    "a Galera cluster needs three db_cluster servers or more ({} here): with two, either one's loss stops the other taking writes",
                    members.len()
                ),
            ));
        }
        if inv.servers_with(Role::Lb).next().is_none() {
            errors.push((
                entry(first),
                "a Galera cluster is reached through HAProxy on the load balancers: give a server the lb role".into(),
            ));
        }
    }
    let primaries: Vec<_> = inv.servers_with(Role::Db).collect();
    if primaries.len() > 1 {
        errors.push((
            entry(primaries[1]),
            format!(
                "servers `{}` and `{}` both have the db role: one server is the primary; give the others `db_replica`",
                primaries[0].name, primaries[1].name
            ),
        ));
    }
    let zone_primaries: Vec<_> = inv.servers_with(Role::Dns).collect();
    if zone_primaries.len() > 1 {
        errors.push((
            entry(zone_primaries[1]),
            format!(
                "servers `{}` and `{}` both have the dns role: one server is the zone's primary; give the others `dns_secondary`",
                zone_primaries[0].name, zone_primaries[1].name
            ),
        ));
    }
    if inv.servers_with(Role::DnsSecondary).next().is_some() && inv.domain.transfer_key.is_none() {
        errors.push((
            "domain".into(),
            "a server has the dns_secondary role, so domain needs `transfer_key: env:NAME` or `file:PATH` (base64, `openssl rand -base64 32`)".into(),
        ));
    }
    if inv.db_networked() && inv.mysql.tls_ca.is_none() {
        errors.push((
            "mysql".into(),
            "the database is reached over the network (a cluster, replicas, or app servers on other servers), so mysql needs `tls_ca: <a folder on this machine>`, where foobar keeps the database servers' certificate authority (made on first use, keys 0600): their traffic goes over TLS".into(),
        ));
    }
    if inv.servers_with(Role::DbReplica).next().is_some()
        && inv.mysql.replication_password.is_none()
    {
        errors.push((
            "mysql".into(),
            "a server has the db_replica role, so mysql needs `replication_password: env:NAME` or `file:PATH`".into(),
        ));
    }
    if servers.len() > 1 {
        if let Some((other, i)) = duplicate(servers, |s| s.ipv6) {
            errors.push((
                of(inv, &servers[i], "ipv6"),
                format!(
                    "servers `{}` and `{}` have the same ipv6: give each its own",
                    servers[other].name, servers[i].name
                ),
            ));
        }
        if let Some((other, i)) = duplicate(servers, Server::private_address) {
            let s = &servers[i];
            errors.push((
                entry(s),
                format!(
                    "servers `{}` and `{}` have the same private address {}: give each its own",
                    servers[other].name,
                    s.name,
                    s.private_address().expect("checked above"),
                ),
            ));
        }
    }
    errors.extend(check_floating(inv));
    errors
}

/// The load balancers' floating addresses: in their subnets, no server's.
fn check_floating(inv: &Inventory) -> Vec<(String, String)> {
    let servers = &inv.servers.0;
    let mut errors = Vec::new();
    if let Some(floating) = inv.lb.floating_address {
        let at = || "lb.floating_address".to_string();
        let lbs: Vec<_> = inv.servers_with(Role::Lb).collect();
        if lbs.is_empty() {
            errors.push((
                at(),
                "lb.floating_address is set but no server has the lb role: add `lb` to the load balancers' roles".into(),
            ));
        }
        if inv.lb.vrrp_password.is_none() {
            errors.push((
                at(),
                "the load balancers share a floating address: add `vrrp_password: file:PATH` (or `env:NAME`) under `lb:`, 8 random characters (`openssl rand -base64 6`) that their VRRP adverts carry".into(),
            ));
        }
        let prefix = inv.lb.prefix_len.0;
        // VRRP runs where the site is served: on the public addresses.
        for s in &lbs {
            if !matches!(s.record_ip(), Some(IpAddr::V4(_))) {
                errors.push((
                    of(inv, s, "name"),
                    format!(
                        "load balancer `{}` needs an IPv4 address (`ip:`) to share {floating}",
                        s.name
                    ),
                ));
            }
        }
        // One mistake told once: the first of these that applies.
        let outside = lbs.iter().find_map(|s| match s.record_ip() {
            Some(IpAddr::V4(ip)) if !same_subnet(ip, floating, prefix) => Some((ip, s)),
            _ => None,
        });
        let own = servers.iter().find(|s| {
            s.private_address() == Some(IpAddr::V4(floating))
                || s.record_ip() == Some(IpAddr::V4(floating))
        });
        if let Some((ip, s)) = outside {
            errors.push((
                at(),
                format!(
                    "floating address {floating} is outside the subnet {}/{prefix} of load balancer `{}`: pick a free address in that subnet",
                    subnet(ip, prefix),
                    s.name
                ),
            ));
        } else if let Some(s) = own {
            errors.push((
                at(),
                format!(
                    "floating address {floating} is server `{}`'s own address: pick a free one",
                    s.name
                ),
            ));
        } else if let Some(lab) = inv.lab.as_ref().filter(|lab| !lab.contains(floating)) {
            errors.push((
                at(),
                format!(
                    "floating address {floating} is outside the lab subnet {}/24",
                    lab.bridge_address
                ),
            ));
        }
    }
    if let Some(floating) = inv.lb.floating_address_v6 {
        errors.extend(check_floating_v6(inv, floating));
    }
    if let Some(private) = inv.lb.private_floating_address {
        let at = || "lb.private_floating_address".to_string();
        if inv.lb.floating_address.is_none() {
            errors.push((
                at(),
                "lb.private_floating_address goes with lb.floating_address: set that too (the load balancers share both)".into(),
            ));
        }
        let prefix = inv.lb.private_prefix_len.0;
        let outside = inv
            .servers_with(Role::Lb)
            .find_map(|s| match s.private_address() {
                Some(IpAddr::V4(ip)) if !same_subnet(ip, private, prefix) => Some((ip, s)),
                _ => None,
            });
        if let Some((ip, s)) = outside {
            errors.push((
                at(),
                format!(
                    "private floating address {private} is outside the subnet {}/{prefix} of load balancer `{}`'s private address: pick a free address in that subnet",
                    subnet(ip, prefix),
                    s.name
                ),
            ));
        } else if let Some(s) = servers
            .iter()
            .find(|s| s.private_address() == Some(IpAddr::V4(private)))
        {
            errors.push((
                at(),
                format!(
                    "private floating address {private} is server `{}`'s own address: pick a free one",
                    s.name
                ),
            ));
        }
    }
    errors
}

/// The load balancers' shared IPv6 address: beside the IPv4 one, in the
/// /64 of every load balancer's own IPv6 address, no server's.
fn check_floating_v6(inv: &Inventory, floating: Ipv6Addr) -> Vec<(String, String)> {
    let at = "lb.floating_address_v6".to_string();
    let same_64 = |a: Ipv6Addr| a.segments()[..4] == floating.segments()[..4];
    let why = if let Some(why) = unusable_v6(floating) {
        format!("floating address {floating} is {why}: pick a free global address in the load balancers' /64")
    } else if inv.lb.floating_address.is_none() {
        "lb.floating_address_v6 goes with lb.floating_address: set that too (the load balancers share both)".into()
    } else if let Some(s) = inv
        .servers_with(Role::Lb)
        // A load balancer whose own ipv6 is wrong is told about that.
        .find(|s| !s.v6().is_some_and(same_64) && ipv6_mistake(inv, s).is_none())
    {
        match s.v6() {
            Some(own) => format!(
                "floating address {floating} is outside the /64 of load balancer `{}`'s ipv6 {own}: pick a free address in it",
                s.name
            ),
            None => format!(
                "load balancer `{}` needs an IPv6 address (`ipv6:`) in the /64 of {floating} to share it",
                s.name
            ),
        }
    } else if let Some(s) = inv.servers.0.iter().find(|s| s.v6() == Some(floating)) {
        format!(
            "floating address {floating} is server `{}`'s own address: pick a free one",
            s.name
        )
    } else {
        return Vec::new();
    };
    vec![(at, why)]
}

/// What is wrong with a server's `ipv6`, if anything.
fn ipv6_mistake(inv: &Inventory, s: &Server) -> Option<String> {
    let v6 = s.ipv6?;
    if let Some(why) = unusable_v6(v6) {
        Some(format!(
            "ipv6 {v6} is {why}: give the server's global IPv6 address"
        ))
    } else if let Some(IpAddr::V6(own)) = s.record_ip() {
        Some(format!(
            "server `{}` already has the IPv6 address {own}; `ipv6` is an address beside an IPv4 one: drop it",
            s.name
        ))
    } else {
        let lab = inv.lab.as_ref().filter(|lab| !lab.contains_v6(v6))?;
        let bridge = lab.bridge_address_v6().segments();
        let subnet = Ipv6Addr::new(bridge[0], bridge[1], bridge[2], bridge[3], 0, 0, 0, 0);
        Some(format!(
            "server `{}` has ipv6 {v6}, outside the lab's IPv6 subnet {subnet}/64: lab servers take addresses in it",
            s.name
        ))
    }
}

/// Why an address cannot be a server's IPv6 address, if it cannot.
fn unusable_v6(a: Ipv6Addr) -> Option<&'static str> {
    let first = a.segments()[0];
    if a.is_unspecified() || a.is_loopback() {
        Some("not a server's address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local (fe80::/10), which names no server off its own link")
    } else if a.to_ipv4_mapped().is_some() {
        Some("an IPv4 address written as IPv6: give it as `ip:`")
    } else {
        None
    }
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
