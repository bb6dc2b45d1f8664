//! The inventory: what the servers are. Loaded strictly from YAML; every
//! value that later reaches a shell, a config file or a DNS zone is
//! validated while it is parsed, so that errors carry file, line and column.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::InputError;

/// Files larger than this are refused before parsing: an inventory is a
/// page of YAML, and a huge file is a mistake (or an attack on the parser).
const MAX_INVENTORY_BYTES: u64 = 1024 * 1024;

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
}

fn default_connect_timeout() -> u16 {
    10
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            known_hosts: None,
            accept_new_host_keys: false,
            connect_timeout_secs: default_connect_timeout(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Servers(pub Vec<Server>);

impl<'de> Deserialize<'de> for Servers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let servers = Vec::<Server>::deserialize(d)?;
        if servers.is_empty() {
            return Err(D::Error::custom(
                "servers is empty: list at least one server",
            ));
        }
        let mut names = BTreeSet::new();
        let mut addresses = BTreeSet::new();
        for s in &servers {
            if !names.insert(s.name.as_str()) {
                return Err(D::Error::custom(format!(
                    "server name `{}` appears twice: give each server its own name",
                    s.name
                )));
            }
            if !addresses.insert(s.address) {
                return Err(D::Error::custom(format!(
                    "address {} is given to two servers: give each server its own address",
                    s.address
                )));
            }
        }
        Ok(Servers(servers))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: Label,
    /// Where foobar connects, and what the A records point at.
    pub address: Ipv4Addr,
    pub roles: BTreeSet<Role>,
    #[serde(default)]
    pub ssh: ServerSsh,
}

impl Server {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Web,
    App,
    Db,
    Dns,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::App => "app",
            Role::Db => "db",
            Role::Dns => "dns",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSsh {
    #[serde(default = "default_ssh_user")]
    pub user: UnixName,
    #[serde(default = "default_ssh_port")]
    pub port: Port,
    #[serde(default)]
    pub identity_file: Option<LocalPath>,
}

fn default_ssh_user() -> UnixName {
    UnixName("root".into())
}

fn default_ssh_port() -> Port {
    Port(22)
}

impl Default for ServerSsh {
    fn default() -> Self {
        Self {
            user: default_ssh_user(),
            port: default_ssh_port(),
            identity_file: None,
        }
    }
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
    /// Folder inside each release that nginx serves directly.
    #[serde(default = "default_static_dir")]
    pub static_dir: RelativeName,
    #[serde(default)]
    pub tls: Option<Tls>,
}

fn default_http_port() -> Port {
    Port(80)
}

fn default_static_dir() -> RelativeName {
    RelativeName("static".into())
}

impl Default for Nginx {
    fn default() -> Self {
        Self {
            listen: default_http_port(),
            static_dir: default_static_dir(),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Paths on the server.
    pub certificate: ServerPath,
    pub key: ServerPath,
    #[serde(default = "default_https_port")]
    pub listen: Port,
}

fn default_https_port() -> Port {
    Port(443)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub kind: AppKind,
    /// The code base on this machine, relative to the inventory file.
    pub source: LocalPath,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppKind {
    Gunicorn,
    PhpFpm,
    Puma,
}

impl<'de> Deserialize<'de> for AppKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "an app server kind", |s| match s {
            "gunicorn" => Ok(AppKind::Gunicorn),
            "php-fpm" => Ok(AppKind::PhpFpm),
            "puma" => Ok(AppKind::Puma),
            other => Err(format!(
                "app.kind `{}` is unknown: use gunicorn (Python), php-fpm (PHP) or puma (Ruby)",
                printable(other)
            )),
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mysql {
    pub database: SqlName,
    pub user: SqlName,
    /// `env:NAME` or `file:PATH`: the password itself never sits in the inventory.
    pub password: SecretRef,
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
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "env:NAME or file:PATH", SecretRef::parse)
    }
}

impl SecretRef {
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
        // Never echo the value: it may be the password itself.
        Err("a secret must be written as `env:NAME` or `file:PATH`; secrets never go in the inventory text".into())
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// Deserializes a string and checks it inside the deserializer's visitor,
/// so that a refused value is reported at its own line and column.
fn checked_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        check: fn(&str) -> Result<T, String>,
    }
    impl<T> serde::de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.check)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V { expecting, check })
}

/// Defines a string newtype whose value is checked while it is parsed.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| Self(s.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                checked_str(d, "a string", Self::parse)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// One DNS label (server names, the `www` host).
    Label,
    check_label
);
checked_string!(
    /// A fully qualified domain name without the trailing dot.
    DomainName,
    |s| {
        if s.len() > 253 || !s.contains('.') {
            return Err(format!(
                "`{}` is not a domain name: write it like `foobar.com`",
                printable(s)
            ));
        }
        s.split('.').try_for_each(check_label)
    }
);
checked_string!(
    /// A user name on the server.
    UnixName,
    |s| {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a valid user name: lowercase letters, digits, `_` and `-`, at most 32",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// A MariaDB database or user name.
    SqlName,
    |s| {
        let ok = (1..=32).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`{}` is not a valid database name: letters, digits and `_`, at most 32",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// An absolute path on a server.
    ServerPath,
    check_server_path
);
checked_string!(
    /// The app server's unix socket: an absolute path in a folder under /run.
    RunSocket,
    |s| {
        check_server_path(s)?;
        let rest = s.strip_prefix("/run/").unwrap_or("");
        if rest.split('/').count() == 2 {
            Ok(())
        } else {
            Err(format!(
                "app.socket `{}` must be a file in a folder of /run, like /run/foobar/app.sock",
                printable(s)
            ))
        }
    }
);
checked_string!(
    /// One plain file or folder name (no `/`, no `..`).
    RelativeName,
    |s| {
        let ok = !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!("`{}` must be one plain folder name", printable(s)))
        }
    }
);
checked_string!(
    /// `HH:MM`, 24-hour.
    ClockTime,
    |s| {
        let ok = s.len() == 5
            && s.as_bytes()[2] == b':'
            && s[..2].parse::<u8>().is_ok_and(|h| h < 24)
            && s[3..].parse::<u8>().is_ok_and(|m| m < 60);
        if ok {
            Ok(())
        } else {
            Err(format!("`{}` is not a time: write HH:MM, like 02:30", printable(s)))
        }
    }
);
checked_string!(
    /// A time zone of the tz database, like `UTC` or `Europe/Berlin`.
    TimeZone,
    |s| {
        jiff::tz::TimeZone::get(s).map(|_| ()).map_err(|_| {
            format!(
                "time zone `{}` is not in the tz database: write a name like UTC or Europe/Berlin",
                printable(s)
            )
        })
    }
);

/// Defines an integer newtype with an inclusive range, checked inside the
/// visitor so that errors keep their position.
macro_rules! ranged_int {
    ($(#[$doc:meta])* $name:ident, $int:ty, $min:expr, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $int);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "a whole number from {} to {}", $min, $max)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        if v < $min as i64 || v > $max as i64 {
                            return Err(E::custom(format!(
                                "{} {v} is out of range: use {} to {}",
                                $what, $min, $max
                            )));
                        }
                        Ok($name(v as $int))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
                    }
                }
                d.deserialize_i64(V)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

ranged_int!(Port, u16, 1, 65535, "port");
ranged_int!(Ttl, u32, 60, 604_800, "ttl");
ranged_int!(Workers, u8, 1, 64, "workers");
ranged_int!(KeepReleases, u8, 1, 20, "keep_releases");

/// A path on the machine running foobar; relative paths are relative to
/// the inventory file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LocalPath(pub PathBuf);

impl<'de> Deserialize<'de> for LocalPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a path", |s| {
            check_local_path(s).map(|()| LocalPath(PathBuf::from(s)))
        })
    }
}

fn check_local_path(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().any(|c| c.is_control()) {
        return Err("a path must be non-empty and without control characters".into());
    }
    Ok(())
}

fn check_label(s: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid DNS label: letters, digits and `-`, 1 to 63 characters",
            printable(s)
        ))
    }
}

fn check_server_path(s: &str) -> Result<(), String> {
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if !s.starts_with('/') || !safe || s.len() > 255 {
        return Err(format!(
            "`{}` is not an absolute server path of letters, digits, `/`, `.`, `_` and `-`",
            printable(s)
        ));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(format!(
            "`{}` climbs out with `..`: write the path plainly",
            printable(s)
        ));
    }
    Ok(())
}

/// Shows a bad value safely: control characters escaped, long values cut.
fn printable(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 60 {
        format!("{}…", escaped.chars().take(60).collect::<String>())
    } else {
        escaped
    }
}

/// An inventory with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub inventory: Inventory,
}

impl Loaded {
    /// Resolves a path from the inventory against the inventory's folder.
    pub fn local_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
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
        serde_yaml::from_str(text).map_err(|e| InputError::from_yaml(path, &e))?;
    check_whole(path, text, &inventory)?;
    Ok(inventory)
}

/// Checks that need several fields at once.
fn check_whole(path: &Path, text: &str, inv: &Inventory) -> Result<(), InputError> {
    let at_key = |key: &str, message: String| {
        let (line, column) = find_key(text, key);
        InputError::at(path, line, column, message)
    };
    for role in [Role::Web, Role::Db, Role::Dns] {
        if !inv.servers.0.iter().any(|s| s.has(role)) {
            return Err(at_key(
                "servers",
                format!(
                    "no server has the `{}` role: add it to one server's roles",
                    role.name()
                ),
            ));
        }
    }
    for s in &inv.servers.0 {
        // nginx reaches the app by a unix socket and the app reaches
        // MariaDB on localhost, so these three share a server.
        let web_app_db = [Role::Web, Role::App, Role::Db].map(|r| s.has(r));
        if web_app_db.iter().any(|&b| b) && !web_app_db.iter().all(|&b| b) {
            return Err(at_key(
                &format!("name: {}", s.name),
                format!(
                    "server `{}`: the web, app and db roles run together on one server (unix socket and localhost database); give it all three",
                    s.name
                ),
            ));
        }
        if let Some(lab) = &inv.lab {
            if !lab.contains(s.address) {
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
    Ok(())
}

/// Line and column (1-based) of the first line containing `needle`, for
/// errors about a whole entry; (1, 1) when it is not found.
fn find_key(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, line)| line.find(needle).map(|col| (i + 1, col + 1)))
        .unwrap_or((1, 1))
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

    /// The address www (and the apex) point at: the first web server.
    pub fn web_address(&self) -> Ipv4Addr {
        self.servers_with(Role::Web)
            .next()
            .map(|s| s.address)
            .expect("load checks that a web server exists")
    }

    /// Name servers of the zone: `ns1.<zone>`, `ns2.<zone>`, ... in order.
    pub fn nameservers(&self) -> Vec<(String, Ipv4Addr)> {
        self.servers_with(Role::Dns)
            .enumerate()
            .map(|(i, s)| (format!("ns{}.{}", i + 1, self.domain.zone), s.address))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
servers:
  - name: web1
    address: 10.250.0.10
    roles: [web, app, db, dns]
domain:
  zone: foobar.com
app:
  kind: gunicorn
  source: ../apps/python
mysql:
  database: foobar
  user: foobar
  password: env:FOOBAR_DB_PASSWORD
"#;

    fn err(text: &str) -> InputError {
        parse(Path::new("inv.yml"), text).unwrap_err()
    }

    #[test]
    fn good_inventory_gets_defaults() {
        let inv = parse(Path::new("inv.yml"), GOOD).unwrap();
        assert_eq!(inv.domain.fqdn(), "www.foobar.com");
        assert_eq!(inv.domain.ttl.0, 300);
        assert_eq!(inv.nginx.listen.0, 80);
        assert_eq!(inv.app.socket.as_str(), "/run/foobar/app.sock");
        assert_eq!(inv.servers.0[0].ssh.user.as_str(), "root");
        assert_eq!(
            inv.nameservers(),
            vec![("ns1.foobar.com".to_string(), Ipv4Addr::new(10, 250, 0, 10))]
        );
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = err(&GOOD.replace("  zone: foobar.com", "  zone: foobar.com\n  colour: blue"));
        assert_eq!((e.line, e.column), (8, 3), "{e}");
        assert!(e.message.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn bad_address_is_located() {
        let e = err(&GOOD.replace("10.250.0.10", "10.250.0.300"));
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("invalid IPv4 address"), "{e}");
    }

    #[test]
    fn plain_password_is_refused_without_echoing_it() {
        let e = err(&GOOD.replace("env:FOOBAR_DB_PASSWORD", "hunter2"));
        assert_eq!(e.line, 14, "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.message.contains("env:NAME"), "{e}");
    }

    #[test]
    fn shell_metacharacters_in_names_are_refused() {
        let e = err(&GOOD.replace("user: foobar", "user: \"foo;rm -rf /\""));
        assert!(e.message.contains("not a valid database name"), "{e}");
        let e = err(&GOOD.replace("name: web1", "name: \"web 1\""));
        assert!(e.message.contains("DNS label"), "{e}");
    }

    #[test]
    fn duplicate_servers_are_refused() {
        let twice = GOOD.replace(
            "servers:\n",
            "servers:\n  - name: web1\n    address: 10.250.0.11\n    roles: [dns]\n",
        );
        assert!(err(&twice).message.contains("appears twice"));
    }

    #[test]
    fn lab_addresses_stay_in_the_lab_subnet() {
        let text =
            format!("lab:\n  bridge_address: 10.250.0.1\n{GOOD}").replace("10.250.0.10", "8.8.8.8");
        let e = err(&text);
        assert!(e.message.contains("outside the lab subnet"), "{e}");
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn split_roles_are_refused() {
        let e = err(&GOOD.replace("[web, app, db, dns]", "[web, dns]"));
        assert!(e.message.contains("no server has the `db` role"), "{e}");
    }

    #[test]
    fn empty_and_non_utf8_files_are_refused() {
        assert!(err("  \n").message.contains("empty"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.yml");
        std::fs::write(&p, b"servers:\n  - name: \xff\n").unwrap();
        let e = load(&p).unwrap_err();
        assert_eq!((e.line, e.column), (2, 11), "{e}");
    }
}
