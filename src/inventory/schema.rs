//! What an inventory may say: the sections and their fields, with their
//! defaults. Values that reach a shell, a config or a zone are of the
//! checked types in `values`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use super::records::Record;
use super::values::*;
pub use crate::app_kinds::AppKind;
pub use crate::roles::Role;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Present in lab inventories: the subnet `foobar lab` builds.
    #[serde(default)]
    pub lab: Option<Lab>,
    #[serde(default)]
    pub ssh: Ssh,
    pub servers: Servers,
    pub domain: Domain,
    #[serde(default)]
    pub nginx: Nginx,
    pub app: App,
    pub mysql: Mysql,
    #[serde(default)]
    pub maintenance: Maintenance,
    /// The load balancers' settings, for servers with the `lb` role.
    #[serde(default)]
    pub lb: LoadBalancer,
    #[serde(default)]
    pub firewall: Firewall,
    #[serde(default)]
    pub os: Os,
    /// The backup server's settings, for a server with the `backup` role.
    #[serde(default)]
    pub backup: Option<Backup>,
}

/// Backups kept on the `backup` server: restic's encrypted repository,
/// filled by pulls over SSH from the servers backed up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// The restic repository's password: `env:NAME`, `file:PATH` or
    /// `cmd:COMMAND`.
    pub password: SecretRef,
    /// A folder on this machine for the key the backup server logs in to
    /// the servers it backs up with (made on first use; 0600 in 0700).
    pub keys: LocalPath,
    /// Minutes between two backups of the database and the uploads.
    #[serde(default = "default_backup_every")]
    pub every_minutes: BackupEvery,
    #[serde(default)]
    pub retention: Retention,
}

fn default_backup_every() -> BackupEvery {
    BackupEvery(60)
}

/// What restic keeps (`forget --keep-*`): the newest backup of each of
/// the last N hours, days, weeks and months.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default = "default_keep_hourly")]
    pub hourly: KeepCount,
    #[serde(default = "default_keep_daily")]
    pub daily: KeepCount,
    #[serde(default = "default_keep_weekly")]
    pub weekly: KeepCount,
    #[serde(default = "default_keep_monthly")]
    pub monthly: KeepCount,
}

fn default_keep_hourly() -> KeepCount {
    KeepCount(24)
}
fn default_keep_daily() -> KeepCount {
    KeepCount(7)
}
fn default_keep_weekly() -> KeepCount {
    KeepCount(4)
}
fn default_keep_monthly() -> KeepCount {
    KeepCount(12)
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            hourly: default_keep_hourly(),
            daily: default_keep_daily(),
            weekly: default_keep_weekly(),
            monthly: default_keep_monthly(),
        }
    }
}

/// The base system of every server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Os {
    /// The security suite's updates applied at provision, and daily by
    /// unattended-upgrades.
    #[serde(default = "yes")]
    pub security_updates: bool,
    /// Kernel, PAM and shell settings that shrink what an intruder or a
    /// crash can reach (README: Hardening).
    #[serde(default = "yes")]
    pub harden: bool,
}

impl Default for Os {
    fn default() -> Self {
        Self {
            security_updates: true,
            harden: true,
        }
    }
}

/// nftables on every server: input dropped but for what the server's roles
/// serve (SSH always). A change reverts by itself unless a fresh SSH
/// connection confirms it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    #[serde(default)]
    pub enabled: bool,
    /// Seconds a new ruleset has to be confirmed over a fresh SSH
    /// connection before the previous one comes back.
    #[serde(default = "default_confirm_within")]
    pub confirm_within_secs: ConfirmSecs,
    /// Ports opened besides the roles' own, like `8080/tcp`.
    #[serde(default)]
    pub open: Vec<PortSpec>,
    /// Ports kept closed although a role would open them.
    #[serde(default)]
    pub closed: Vec<PortSpec>,
}

fn default_confirm_within() -> ConfirmSecs {
    ConfirmSecs(30)
}

impl Default for Firewall {
    fn default() -> Self {
        Self {
            enabled: false,
            confirm_within_secs: default_confirm_within(),
            open: Vec::new(),
            closed: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// An address the load balancers share through keepalived (VRRP):
    /// the one that holds it answers for the site.
    #[serde(default)]
    pub floating_address: Option<Ipv4Addr>,
    /// The prefix length of the load balancers' subnet, which the
    /// floating address must be in.
    #[serde(default = "default_prefix_len")]
    pub prefix_len: PrefixLen,
    /// An IPv6 address the load balancers share with `floating_address`
    /// (the zone's AAAA record), on the same interface; in the /64 of
    /// their `ipv6` addresses.
    #[serde(default)]
    pub floating_address_v6: Option<Ipv6Addr>,
    /// The network interface the floating address goes on.
    #[serde(default = "default_interface")]
    pub interface: RelativeName,
    /// VRRP's router id: unique among the VRRP groups of the subnet.
    #[serde(default = "default_router_id")]
    pub router_id: RouterId,
    /// A second shared address on the private network, where the app
    /// servers reach a Galera cluster (HAProxy :3306) when the floating
    /// address is public; on `private_interface`, `private_prefix_len`.
    #[serde(default)]
    pub private_floating_address: Option<Ipv4Addr>,
    #[serde(default = "default_prefix_len")]
    pub private_prefix_len: PrefixLen,
    #[serde(default = "default_interface")]
    pub private_interface: RelativeName,
    /// The password the load balancers' VRRP adverts carry (keepalived
    /// takes 8 characters), `env:`, `file:` or `cmd:`: an advert without
    /// it never moves the floating address. Needed with a floating address.
    #[serde(default)]
    pub vrrp_password: Option<SecretRef>,
}

fn default_prefix_len() -> PrefixLen {
    PrefixLen(24)
}

fn default_interface() -> RelativeName {
    RelativeName("eth0".into())
}

fn default_router_id() -> RouterId {
    RouterId(51)
}

impl Default for LoadBalancer {
    fn default() -> Self {
        Self {
            floating_address: None,
            prefix_len: default_prefix_len(),
            floating_address_v6: None,
            interface: default_interface(),
            router_id: default_router_id(),
            private_floating_address: None,
            private_prefix_len: default_prefix_len(),
            private_interface: default_interface(),
            vrrp_password: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// The host's address on the lab bridge; the subnet is its /24.
    pub bridge_address: Ipv4Addr,
    /// Where this lab's keys, secrets, package cache and servers live.
    #[serde(default = "default_lab_dir")]
    pub dir: LocalPath,
    /// The Debian 12 base image, built once and shared by every lab.
    #[serde(default = "default_lab_image")]
    pub image: LocalPath,
}

fn default_lab_dir() -> LocalPath {
    LocalPath(PathBuf::from("/var/lib/foobar/lab"))
}

fn default_lab_image() -> LocalPath {
    LocalPath(PathBuf::from("/var/lib/foobar/image"))
}

impl Lab {
    /// True when `addr` is in the bridge's /24 and is not the bridge,
    /// network or broadcast address.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let [a, b, c, d] = addr.octets();
        let [ba, bb, bc, bd] = self.bridge_address.octets();
        (a, b, c) == (ba, bb, bc) && d != bd && d != 0 && d != 255
    }

    /// The lab's IPv6 subnet, a /64 of unique local addresses made from
    /// the bridge's /24 (10.250.0.1: fd00:fb:afa::/64); the bridge holds
    /// the address ending as its IPv4 one does (fd00:fb:afa::1).
    pub fn bridge_address_v6(&self) -> Ipv6Addr {
        let [a, b, c, d] = self.bridge_address.octets();
        Ipv6Addr::new(
            0xfd00,
            0xfb,
            u16::from_be_bytes([a, b]),
            c.into(),
            0,
            0,
            0,
            d.into(),
        )
    }

    /// True when `addr` is in the lab's IPv6 /64, not the bridge's and
    /// not the subnet's first address.
    pub fn contains_v6(&self, addr: Ipv6Addr) -> bool {
        let bridge = self.bridge_address_v6().segments();
        let a = addr.segments();
        a[..4] == bridge[..4] && a != bridge && a[4..] != [0; 4]
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    /// known_hosts file used for every server; host keys are always checked.
    #[serde(default)]
    pub known_hosts: Option<LocalPath>,
    /// Accept and record the key of a server never seen before
    /// (StrictHostKeyChecking=accept-new). A changed key is still refused.
    #[serde(default)]
    pub accept_new_host_keys: bool,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u16,
    /// Seconds a connection stays open after a run for the next one
    /// (OpenSSH's ControlPersist; Ansible keeps 60 too); 0 closes it.
    #[serde(default = "default_control_persist")]
    pub control_persist_secs: u16,
    /// An ssh_config file to use instead of `~/.ssh/config`.
    #[serde(default)]
    pub config: Option<LocalPath>,
    /// Keys only on the servers: password and keyboard-interactive logins
    /// off, root by key only (an sshd drop-in, checked with `sshd -t`).
    #[serde(default = "yes")]
    pub harden: bool,
    /// Seconds a new sshd configuration has to be confirmed over a fresh
    /// SSH connection before the previous one comes back.
    #[serde(default = "default_ssh_confirm_within")]
    pub confirm_within_secs: ConfirmSecs,
}

fn yes() -> bool {
    true
}

fn default_ssh_confirm_within() -> ConfirmSecs {
    ConfirmSecs(30)
}

fn default_connect_timeout() -> u16 {
    10
}

fn default_control_persist() -> u16 {
    60
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            known_hosts: None,
            accept_new_host_keys: false,
            connect_timeout_secs: default_connect_timeout(),
            control_persist_secs: default_control_persist(),
            config: None,
            harden: true,
            confirm_within_secs: default_ssh_confirm_within(),
        }
    }
}

/// The servers, at least one (`load` checks).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Servers(pub Vec<Server>);

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: Label,
    /// Where foobar connects: an IP address or a host name.
    pub address: Address,
    /// The address the zone's records point at, when `address` is a host
    /// name (or a private address foobar reaches it by).
    #[serde(default)]
    pub ip: Option<std::net::IpAddr>,
    /// The address the other servers reach it by (the load balancer its
    /// web server, the app servers its database); `ip`, or `address`, when
    /// left out.
    #[serde(default)]
    pub private_ip: Option<std::net::IpAddr>,
    /// The server's IPv6 address beside its IPv4 one: the zone's AAAA
    /// record when it answers for the site, and nginx (or HAProxy)
    /// listens on IPv6 too.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    pub roles: BTreeSet<Role>,
    #[serde(default)]
    pub ssh: ServerSsh,
}

impl Server {
    /// What the zone's A or AAAA record for this server holds.
    pub fn record_ip(&self) -> Option<std::net::IpAddr> {
        self.ip.or(self.address.ip())
    }

    /// The server's IPv6 address, if it has one: `ipv6`, or its record
    /// address when that is IPv6.
    pub fn v6(&self) -> Option<Ipv6Addr> {
        self.ipv6.or(match self.record_ip() {
            Some(std::net::IpAddr::V6(a)) => Some(a),
            _ => None,
        })
    }

    /// It answers on IPv6: its services listen on both families.
    pub fn dual_stack(&self) -> bool {
        self.v6().is_some() || self.private_address().is_some_and(|a| a.is_ipv6())
    }

    /// Where the other servers reach this one.
    pub fn private_address(&self) -> Option<std::net::IpAddr> {
        self.private_ip.or(self.record_ip())
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// How to log in. What is left out comes from the user's own SSH
/// configuration (`~/.ssh/config`: User, Port, IdentityFile, ProxyJump),
/// as with plain `ssh`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSsh {
    /// Any user other than root runs steps through `sudo -n`.
    #[serde(default)]
    pub user: Option<UnixName>,
    #[serde(default)]
    pub port: Option<Port>,
    #[serde(default)]
    pub identity_file: Option<LocalPath>,
    /// Reach this server through another of the inventory's (a bastion),
    /// as `ssh -J` does, with that server's own user, port and key.
    #[serde(default)]
    pub proxy_jump: Option<Label>,
    /// TCP forwarding (local: `ssh -L` tunnels, jumps through this
    /// server) and OpenSSH's 10 sessions a connection. Off by default, on
    /// for a server another one jumps through.
    #[serde(default)]
    pub forwarding: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// The zone foobar serves, e.g. `foobar.com`.
    pub zone: DomainName,
    /// The web host inside the zone, e.g. `www`.
    #[serde(default = "default_host")]
    pub host: Label,
    #[serde(default = "default_ttl")]
    pub ttl: Ttl,
    /// The TSIG key the zone's secondaries transfer it with, base64 (as
    /// `openssl rand -base64 32` makes one): `env:`, `file:` or `cmd:`.
    /// Needed when a server has the `dns_secondary` role.
    #[serde(default)]
    pub transfer_key: Option<SecretRef>,
    /// The zone's other records (mail, SPF, DKIM, verification, CAA,
    /// services): any name, beside foobar's own apex, web host and
    /// nameservers.
    #[serde(default)]
    pub records: Vec<Record>,
}

fn default_host() -> Label {
    Label("www".into())
}

fn default_ttl() -> Ttl {
    Ttl(300)
}

impl Domain {
    /// `www.foobar.com`
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.host, self.zone)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Nginx {
    #[serde(default = "default_http_port")]
    pub listen: Port,
    /// The folder of each release nginx serves at `/`, what is not a file
    /// there going to the app: `.` is the release itself (a PHP code base);
    /// null, none (every path outside `locations` is the app's).
    #[serde(default = "default_static_dir")]
    pub static_dir: Option<WebRoot>,
    /// Folders served at URL prefixes besides (`/static/`, `/media/`).
    #[serde(default)]
    pub locations: Vec<Location>,
    #[serde(default)]
    pub tls: Option<Tls>,
}

fn default_http_port() -> Port {
    Port(80)
}

fn default_static_dir() -> Option<WebRoot> {
    Some(WebRoot("static".into()))
}

impl Default for Nginx {
    fn default() -> Self {
        Self {
            listen: default_http_port(),
            static_dir: default_static_dir(),
            locations: Vec::new(),
            tls: None,
        }
    }
}

/// A folder nginx serves itself at a URL prefix: one of the release's, or
/// one of the shared folders (`app.shared`). A file that is not there is
/// 404, never the app's; no script runs there.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub url: UrlPrefix,
    /// A folder of the release (`static`, `public/build`).
    #[serde(default)]
    pub folder: Option<ReleasePath>,
    /// One of `app.shared` (`media`).
    #[serde(default)]
    pub shared: Option<ReleasePath>,
    /// `immutable`: every file's name carries a hash of its content, so
    /// browsers keep it a year without asking again.
    #[serde(default)]
    pub cache: Option<Cache>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cache {
    Immutable,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A certificate already on the server (paths on the server), or
    /// `acme` to have foobar obtain and renew one.
    #[serde(default)]
    pub certificate: Option<ServerPath>,
    #[serde(default)]
    pub key: Option<ServerPath>,
    #[serde(default)]
    pub acme: Option<Acme>,
    #[serde(default = "default_https_port")]
    pub listen: Port,
    /// Strict-Transport-Security's max-age, in seconds (0: no header).
    #[serde(default = "default_hsts_max_age")]
    pub hsts_max_age: u32,
}

fn default_hsts_max_age() -> u32 {
    // Two years, as Mozilla's guidelines and the HSTS preload list ask.
    63_072_000
}

/// Where the certificate comes from when foobar obtains it: an ACME CA
/// (Let's Encrypt, or the lab's Pebble), by HTTP-01 through nginx.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// The CA's directory URL (https).
    pub directory: AcmeDirectory,
    /// Where the CA writes about expiry and problems.
    #[serde(default)]
    pub email: Option<Email>,
    /// A PEM file on this machine with roots to trust beside the system's:
    /// for the directory's own HTTPS and for the certificates it issues
    /// (the lab's CA). Unset: the system roots only.
    #[serde(default)]
    pub ca: Option<LocalPath>,
    /// A certificate with fewer days left than this is renewed.
    #[serde(default = "default_renew_days")]
    pub renew_days: RenewDays,
}

fn default_renew_days() -> RenewDays {
    RenewDays(30)
}

impl Tls {
    /// The certificate and key nginx uses: foobar's own with ACME.
    pub fn files(&self, fqdn: &str) -> (String, String) {
        match (&self.certificate, &self.key) {
            (Some(c), Some(k)) if self.acme.is_none() => (c.to_string(), k.to_string()),
            _ => (
                format!("{ACME_DIR}/{fqdn}.crt"),
                format!("{ACME_DIR}/{fqdn}.key"),
            ),
        }
    }
}

/// Where certificates foobar obtains live on the web servers.
pub const ACME_DIR: &str = "/etc/foobar/tls";

fn default_https_port() -> Port {
    Port(443)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub kind: AppKind,
    /// The code base on this machine, relative to the inventory file.
    pub source: LocalPath,
    /// A code base in a git work tree: the commit whose tracked files are
    /// deployed (a branch, tag or commit); HEAD when unset, which must
    /// then have no uncommitted changes.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<GitRef>,
    #[serde(default = "default_workers")]
    pub workers: Workers,
    /// Unix socket between nginx and gunicorn or puma; under /run/.
    /// (php-fpm listens on /run/php/foobar-fpm.sock.)
    #[serde(default = "default_socket")]
    pub socket: RunSocket,
    /// System user the app server runs as.
    #[serde(default = "default_app_user")]
    pub user: UnixName,
    /// Releases live in `<root>/releases/`, `<root>/current` is the live one.
    #[serde(default = "default_app_root")]
    pub root: ServerPath,
    #[serde(default = "default_keep_releases")]
    pub keep_releases: KeepReleases,
    /// Answers 200 when the app server is up; the load balancers' health
    /// check asks it of every web server.
    #[serde(default = "default_health_path")]
    pub health_path: UrlPath,
    /// gunicorn's entry point, `module:callable`.
    #[serde(default = "default_wsgi")]
    pub wsgi: WsgiEntry,
    /// php-fpm's front controller, in the release: every dynamic request
    /// goes to it.
    #[serde(default = "default_front_controller")]
    pub front_controller: ReleasePath,
    /// puma's Rack file, in the release.
    #[serde(default = "default_rack")]
    pub rack: ReleasePath,
    /// The app's environment: plain values, or secrets as `env:NAME`,
    /// `file:PATH` or `cmd:COMMAND` (read on this machine, never shown).
    #[serde(default)]
    pub env: BTreeMap<EnvName, EnvValue>,
    /// Extra Debian packages the app needs (php8.2-mbstring, ruby-sinatra).
    #[serde(default)]
    pub packages: Vec<PackageName>,
    /// Run as root in every new release before it goes live, with the
    /// app's environment (`python manage.py collectstatic --noinput`);
    /// with `inputs` and `output`, only when an input changed since the
    /// live release (its output is linked from there otherwise).
    #[serde(default)]
    pub build: Option<ReleaseStep>,
    /// Run once per release, before the switch, on the first app server
    /// only, as the app user (`python manage.py migrate --noinput`); with
    /// `inputs`, only when an input changed since the live release.
    #[serde(default)]
    pub release_command: Option<ReleaseStep>,
    /// Folders that live in `<root>/shared/` and are linked into every
    /// release (uploads, storage): kept across releases and rollbacks.
    #[serde(default)]
    pub shared: Vec<ReleasePath>,
    /// The largest request body nginx takes (an upload with its form),
    /// and PHP's `upload_max_filesize` and `post_max_size`.
    #[serde(default = "default_upload_max")]
    pub upload_max: ByteSize,
    /// php-fpm's settings.
    #[serde(default)]
    pub php: Php,
    /// What proves the app works, asked through nginx (and the load
    /// balancers) after provision, deploy, restart and rollback.
    #[serde(default = "default_app_checks")]
    pub checks: Vec<AppCheck>,
    /// Long-running processes beside the app server, named as a Procfile
    /// names them (`worker: celery -A proj worker`): each a systemd unit
    /// of its own running the live release with the app's environment.
    #[serde(default)]
    pub processes: BTreeMap<ProcessName, Process>,
    /// Commands run on a calendar (systemd timers) in the live release.
    #[serde(default)]
    pub schedule: Vec<ScheduledJob>,
}

/// `app.build` or `app.release_command`: a command, or `{ command,
/// inputs, output }`.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseStep {
    /// One line of shell, run with `sh -c` in the new release.
    pub command: AppCommand,
    /// What in the code base the command reads (globs over its paths).
    /// When none of it changed since the live release (nor the command,
    /// the output, the app's environment or its virtualenv), the command
    /// is not run again. None: it runs in every new release.
    pub inputs: Option<Vec<InputGlob>>,
    /// What a build writes in the release (folders): linked from the live
    /// release when the build is not run again.
    pub output: Vec<ReleasePath>,
}

/// The long form of a release step.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseStepFields {
    command: AppCommand,
    #[serde(default)]
    inputs: Option<Vec<InputGlob>>,
    #[serde(default)]
    output: Vec<ReleasePath>,
}

/// A command, or a map with `command`, `inputs` and `output`; read inside
/// the visitor, so that a mistake keeps its place.
impl<'de> Deserialize<'de> for ReleaseStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ReleaseStep;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command, or a map with `command` (and `inputs`, `output`)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ReleaseStep, E> {
                AppCommand::parse(s)
                    .map(|command| ReleaseStep {
                        command,
                        inputs: None,
                        output: Vec::new(),
                    })
                    .map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ReleaseStep, A::Error> {
                let f = ReleaseStepFields::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ReleaseStep {
                    command: f.command,
                    inputs: f.inputs,
                    output: f.output,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One of `app.processes`: a command, or the command with its settings.
#[derive(Debug, Clone, Serialize)]
pub struct Process {
    /// One line of shell, run with `sh -c` in the live release.
    pub command: AppCommand,
    pub on: RunsOn,
    /// Seconds it has to stop after SIGTERM (a worker finishing its job)
    /// before it is killed.
    pub stop_timeout_secs: StopSecs,
}

/// The long form of a process, `{ command, on, stop_timeout_secs }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessFields {
    command: AppCommand,
    #[serde(default = "every_app_server")]
    on: RunsOn,
    #[serde(default = "default_stop_timeout")]
    stop_timeout_secs: StopSecs,
}

fn every_app_server() -> RunsOn {
    RunsOn::All
}

fn default_stop_timeout() -> StopSecs {
    StopSecs(30)
}

/// A Procfile's line (`worker: celery -A proj worker`), or a map with
/// `command` and the settings; read inside the visitor, so that a mistake
/// keeps its place.
impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command, or a map with `command` (and `on`, `stop_timeout_secs`)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Process, E> {
                AppCommand::parse(s)
                    .map(|command| Process {
                        command,
                        on: every_app_server(),
                        stop_timeout_secs: default_stop_timeout(),
                    })
                    .map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Process, A::Error> {
                let f =
                    ProcessFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Process {
                    command: f.command,
                    on: f.on,
                    stop_timeout_secs: f.stop_timeout_secs,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Which app servers run a process or a scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunsOn {
    /// Every app server (workers that share a queue).
    All,
    /// The first app server only, the one that runs the release command
    /// (a scheduler such as Celery beat, which must run once).
    First,
}

/// One of `app.schedule`: a command run on a calendar.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledJob {
    pub name: ProcessName,
    /// When, as systemd's `OnCalendar=` takes it: `*-*-* 03:00:00`,
    /// `Mon..Fri 09:00`, `*:0/15`, `daily`.
    pub on_calendar: Calendar,
    /// One line of shell, run with `sh -c` in the live release.
    pub command: AppCommand,
    /// The first app server by default: a job runs once, not once per
    /// server.
    #[serde(default = "first_app_server")]
    pub on: RunsOn,
}

fn first_app_server() -> RunsOn {
    RunsOn::First
}

impl App {
    /// The value of one of `app`'s keys, as written (an app server kind's
    /// entry point, which the kind names by key).
    pub fn setting(&self, key: &str) -> String {
        match serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get(key).cloned())
        {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

/// One HTTP check of the app.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppCheck {
    pub path: UrlPath,
    #[serde(default = "default_check_status")]
    pub status: u16,
    /// Text the body must contain.
    #[serde(default)]
    pub contains: Option<String>,
}

fn default_check_status() -> u16 {
    200
}

/// The sample apps' checks: nginx serves their static files, the app
/// answers, and it reads and writes MySQL.
fn default_app_checks() -> Vec<AppCheck> {
    vec![
        AppCheck {
            path: UrlPath("/index.html".into()),
            status: 200,
            contains: Some("www.foobar.com".into()),
        },
        AppCheck {
            path: UrlPath("/style.css".into()),
            status: 200,
            contains: Some("body".into()),
        },
        AppCheck {
            path: UrlPath("/healthz".into()),
            status: 200,
            contains: Some("\"status\": \"ok\"".into()),
        },
        AppCheck {
            path: UrlPath("/visits".into()),
            status: 200,
            contains: Some("\"visits\": ".into()),
        },
    ]
}

fn default_upload_max() -> ByteSize {
    ByteSize("16M".into())
}

/// PHP's own limits, for the php-fpm kind.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Php {
    /// What one request may use (`memory_limit`); the app may raise it.
    #[serde(default = "default_memory_limit")]
    pub memory_limit: ByteSize,
}

fn default_memory_limit() -> ByteSize {
    // WordPress's own admin limit: room to resize a photo of a few MB.
    ByteSize("256M".into())
}

impl Default for Php {
    fn default() -> Self {
        Self {
            memory_limit: default_memory_limit(),
        }
    }
}

fn default_wsgi() -> WsgiEntry {
    WsgiEntry("app:application".into())
}

fn default_front_controller() -> ReleasePath {
    ReleasePath("app.php".into())
}

fn default_rack() -> ReleasePath {
    ReleasePath("config.ru".into())
}

/// An environment value: plain text, or a secret read on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    Plain(String),
    Secret(SecretRef),
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a string", |s| {
            if SecretRef::names_a_source(s) {
                return SecretRef::parse(s).map(EnvValue::Secret);
            }
            check_env_text(s).map(|()| EnvValue::Plain(s.to_string()))
        })
    }
}

/// Environment values reach the app's environment file, which systemd
/// and sh both read, quoted so that each reads them exactly
/// (`shell::env_quote`): any printable character goes, a control
/// character (a newline, a tab) cannot be carried.
pub fn check_env_text(s: &str) -> Result<(), String> {
    if s.len() > 4096 || !s.chars().all(crate::shell::can_carry) {
        return Err(
            "an environment value must be one line of printable characters, at most 4096 bytes (no newline, tab or other control character)"
                .into(),
        );
    }
    Ok(())
}

fn default_health_path() -> UrlPath {
    UrlPath("/healthz".into())
}

fn default_workers() -> Workers {
    Workers(2)
}
fn default_socket() -> RunSocket {
    RunSocket("/run/foobar/app.sock".into())
}
fn default_app_user() -> UnixName {
    UnixName("foobar".into())
}
fn default_app_root() -> ServerPath {
    ServerPath("/srv/foobar".into())
}
fn default_keep_releases() -> KeepReleases {
    KeepReleases(3)
}

impl<'de> Deserialize<'de> for AppKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an app server kind", |s| {
            // Worded as serde words an unknown variant, so that the message
            // gets the same "did you mean" and list of what is allowed.
            AppKind::parse(s).ok_or_else(|| {
                format!(
                    "unknown variant `{}`, expected one of {}",
                    printable(s),
                    AppKind::listed()
                )
            })
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mysql {
    pub database: SqlName,
    pub user: SqlName,
    /// `env:NAME`, `file:PATH` or `cmd:COMMAND`: the password itself never
    /// sits in the inventory.
    pub password: SecretRef,
    /// The replication user's password, needed when a server has the
    /// `db_replica` role; `env:`, `file:` or `cmd:`.
    #[serde(default)]
    pub replication_password: Option<SecretRef>,
    /// A folder on this machine where foobar keeps the database servers'
    /// certificate authority and their certificates (made on first use;
    /// keys 0600); needed when the database is reached over the network.
    #[serde(default)]
    pub tls_ca: Option<LocalPath>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// The zone the windows' days and hours are read in (tz database name).
    #[serde(default = "default_time_zone")]
    pub time_zone: TimeZone,
    #[serde(default)]
    pub windows: Vec<Window>,
}

fn default_time_zone() -> TimeZone {
    TimeZone("UTC".into())
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            time_zone: default_time_zone(),
            windows: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub days: BTreeSet<Weekday>,
    pub start: ClockTime,
    pub end: ClockTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Where a secret comes from. Plain text is refused at load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    /// What the command prints (a password manager, a vault, sops).
    Command(SecretCommand),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "env:NAME, file:PATH or cmd:COMMAND", SecretRef::parse)
    }
}

impl SecretRef {
    /// Whether `s` names where a secret comes from, rather than being
    /// plain text.
    pub fn names_a_source(s: &str) -> bool {
        ["env:", "file:", "cmd:"].iter().any(|p| s.starts_with(p))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(name) = s.strip_prefix("env:") {
            let ok = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(format!(
                    "`env:{}` is not a valid environment variable name (letters, digits, _)",
                    printable(name)
                ));
            }
            return Ok(SecretRef::Env(name.to_string()));
        }
        if let Some(path) = s.strip_prefix("file:") {
            check_local_path(path)?;
            return Ok(SecretRef::File(PathBuf::from(path)));
        }
        if let Some(line) = s.strip_prefix("cmd:") {
            return SecretCommand::parse(line).map(SecretRef::Command);
        }
        // Never echo the value: it may be the password itself.
        Err("a secret must be written as `env:NAME`, `file:PATH` or `cmd:COMMAND`; secrets never go in the inventory text".into())
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
            SecretRef::Command(c) => write!(f, "cmd:{}", c.line()),
        }
    }
}
