//! `-l/--limit PATTERN`: the servers a command works on, picked as
//! Ansible picks hosts. A pattern is a server's name, a glob over the
//! names (`web*`, `db?`), a role (`web`: the servers that have it) or
//! `all`; `!PATTERN` leaves out what it picks, `&PATTERN` keeps only what
//! it picks too. Several patterns (`-l` repeated, or `web*,!web3`): the
//! servers the plain ones pick (every server when there is none), narrowed
//! by each `&` one, less each `!` one. Not a command.

use std::collections::BTreeSet;

use crate::error::{did_you_mean, InputError};
use crate::inventory::{Loaded, Role, Server};

/// Whether `-l` lets a server in (every server without one). A pattern
/// that picks no server, or patterns that leave none, are bad input,
/// found before any connection.
pub fn selection<'i>(
    patterns: &[String],
    inv: &'i Loaded,
) -> Result<impl Fn(&Server) -> bool + 'i, InputError> {
    let servers = &inv.inventory.servers.0;
    let names = |pattern: &str| -> Result<BTreeSet<&'i str>, InputError> {
        let picked: BTreeSet<&str> = servers
            .iter()
            .filter(|s| picks(pattern, s))
            .map(|s| s.name.as_str())
            .collect();
        if picked.is_empty() {
            return Err(unknown(pattern, inv));
        }
        Ok(picked)
    };
    let mut plain = Vec::new();
    let mut also = Vec::new();
    let mut not = Vec::new();
    for p in patterns {
        if let Some(p) = p.strip_prefix('!') {
            not.push(names(p)?);
        } else if let Some(p) = p.strip_prefix('&') {
            also.push(names(p)?);
        } else {
            plain.push(names(p)?);
        }
    }
    let mut chosen: BTreeSet<&str> = if plain.is_empty() {
        servers.iter().map(|s| s.name.as_str()).collect()
    } else {
        plain.into_iter().flatten().collect()
    };
    for set in &also {
        chosen.retain(|n| set.contains(n));
    }
    for set in &not {
        chosen.retain(|n| !set.contains(n));
    }
    if chosen.is_empty() {
        return Err(InputError::new(
            &inv.path,
            format!("--limit {}: leaves no server", patterns.join(",")),
        ));
    }
    let limited = !patterns.is_empty();
    Ok(move |s: &Server| !limited || chosen.contains(s.name.as_str()))
}

/// Whether `pattern` (without `!` or `&`) picks `server`.
fn picks(pattern: &str, server: &Server) -> bool {
    pattern == "all"
        || glob(pattern.as_bytes(), server.name.as_str().as_bytes())
        || Role::parse(pattern).is_some_and(|r| server.has(r))
}

/// `*` any run of characters, `?` any one; the rest as written.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob(rest, name) || name.split_first().is_some_and(|(_, n)| glob(pattern, n))
        }
        (Some((p, rest)), Some((n, name))) => (*p == b'?' || p == n) && glob(rest, name),
        _ => false,
    }
}

/// A pattern that picks no server: what the inventory has instead.
fn unknown(pattern: &str, inv: &Loaded) -> InputError {
    let servers: Vec<&str> = inv
        .inventory
        .servers
        .0
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let roles: BTreeSet<&str> = inv
        .inventory
        .servers
        .0
        .iter()
        .flat_map(|s| s.roles.iter().map(|r| r.name()))
        .collect();
    let candidates: Vec<&str> = servers.iter().chain(&roles).copied().collect();
    let mut e = InputError::new(
        &inv.path,
        format!(
            "--limit {pattern}: no server of the inventory has that name or role (servers: {}; roles: {})",
            servers.join(", "),
            roles.into_iter().collect::<Vec<_>>().join(", ")
        ),
    );
    if let Some(close) = did_you_mean(pattern, &candidates) {
        e = e.with_help(format!("did you mean `{close}`?"));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picked(patterns: &[&str]) -> Result<Vec<String>, InputError> {
        let inv = crate::inventory::load(std::path::Path::new("inventory/lab-ha.yml")).unwrap();
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        let keep = selection(&patterns, &inv)?;
        Ok(inv
            .inventory
            .servers
            .0
            .iter()
            .filter(|s| keep(s))
            .map(|s| s.name.to_string())
            .collect())
    }

    #[test]
    fn patterns_pick_as_ansible_s_do() {
        let all = picked(&[]).unwrap();
        assert_eq!(all.len(), 9, "{all:?}");
        assert_eq!(picked(&["all"]).unwrap(), all);
        assert_eq!(picked(&["web2"]).unwrap(), ["web2"]);
        assert_eq!(picked(&["web*"]).unwrap(), ["web1", "web2", "web3"]);
        assert_eq!(picked(&["web*", "!web3"]).unwrap(), ["web1", "web2"]);
        assert_eq!(picked(&["!web3"]).unwrap().len(), 8);
        assert_eq!(picked(&["lb"]).unwrap(), ["lb1", "lb2"]);
        assert_eq!(
            picked(&["db?", "lb1"]).unwrap(),
            ["lb1", "db1", "db2", "db3"]
        );
        assert_eq!(picked(&["all", "&dns"]).unwrap(), ["lb1"]);
        assert_eq!(picked(&["*1"]).unwrap(), ["lb1", "web1", "db1", "backup1"]);
    }

    #[test]
    fn a_pattern_that_picks_nothing_is_refused() {
        let e = picked(&["web9"]).unwrap_err();
        assert!(e.message.starts_with("--limit web9: no server"), "{e}");
        assert!(e.message.contains("lb1, lb2"), "{e}");
        assert_eq!(e.help.as_deref(), Some("did you mean `web`?"));
        let e = picked(&["!wbe1"]).unwrap_err();
        assert!(e.message.starts_with("--limit wbe1"), "{e}");
        let e = picked(&["web1", "!web*"]).unwrap_err();
        assert!(e.message.contains("leaves no server"), "{e}");
    }
}
