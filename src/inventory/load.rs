//! Reading an inventory file: size and encoding, strict YAML, and the
//! checks that need several fields at once.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::schema::*;
use crate::error::InputError;

/// Files larger than this are refused before parsing: an inventory is a
/// page of YAML, and a huge file is a mistake (or an attack on the parser).
const MAX_INVENTORY_BYTES: u64 = 1024 * 1024;

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
