//! The server lock: one provision or restart at a time per server. A
//! folder made atomically with mkdir, holding who took it, when, for what.

use crate::shell::quote;

pub const LOCK_DIR: &str = "/var/lib/foobar/lock";

/// Another run holds the server (exit code 6).
#[derive(Debug, thiserror::Error)]
#[error("{host} is locked by another foobar run ({owner}); wait for it, or pass --break-lock if that run is gone")]
pub struct Locked {
    pub host: String,
    pub owner: String,
}

/// This run's identity on the lock.
#[derive(Debug, Clone)]
pub struct Claim {
    pub token: String,
    pub owner: String,
    /// `<machine> <pid>`: lets a later run on this machine see that the
    /// holder is gone (killed) and take the lock over.
    pub holder: String,
}

/// The lock as another run left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub owner: String,
    pub holder: String,
}

impl Held {
    /// True when the holder ran on this machine and its process is gone.
    pub fn is_stale_here(&self, claim: &Claim) -> bool {
        let (Some((machine, pid)), Some((mine, _))) =
            (self.holder.split_once(' '), claim.holder.split_once(' '))
        else {
            return false;
        };
        let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains("foobar"))
            .unwrap_or(false);
        machine == mine && !alive
    }
}

/// The system gave no randomness for the lock token.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw a random lock token: {0}")]
pub struct NoRandomness(getrandom::Error);

impl Claim {
    /// `command` says what this run does, e.g. `restart app`.
    pub fn new(command: &str) -> Result<Self, NoRandomness> {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).map_err(NoRandomness)?;
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let machine: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
            .collect();
        let when = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_default();
        let owner: String = format!(
            "{user}@{} pid {}, since {when}, foobar {command}",
            host.trim(),
            std::process::id()
        )
        .chars()
        .filter(|c| !c.is_control())
        .collect();
        let holder = format!("{machine} {}", std::process::id());
        Ok(Self {
            token,
            owner,
            holder,
        })
    }

    /// Prints `LOCKED\t<owner>\t<holder>` when a run holds the lock; takes
    /// nothing. For runs that take the lock only when they change something.
    pub fn status_script() -> String {
        format!(
            "[ -d {d} ] && printf 'LOCKED\\t%s\\t%s\\n' \"$(cat {d}/owner 2>/dev/null)\" \"$(cat {d}/holder 2>/dev/null)\"\n",
            d = LOCK_DIR
        )
    }

    /// Takes the lock, or prints `LOCKED\t<owner>\t<holder>` when another
    /// run has it.
    pub fn acquire_script(&self, break_lock: bool) -> String {
        format!(
            "mkdir -p /var/lib/foobar\n{brk}if mkdir {d} 2>/dev/null; then printf '%s\\n' {o} > {d}/owner; printf '%s' {t} > {d}/token; printf '%s' {h} > {d}/holder; \
             else printf 'LOCKED\\t%s\\t%s\\n' \"$(cat {d}/owner 2>/dev/null)\" \"$(cat {d}/holder 2>/dev/null)\"; fi\n",
            brk = if break_lock { format!("rm -rf {LOCK_DIR}\n") } else { String::new() },
            d = LOCK_DIR,
            o = quote(&self.owner),
            t = quote(&self.token),
            h = quote(&self.holder),
        )
    }

    /// Gives the lock back, only if it is still this run's.
    pub fn release_script(&self) -> String {
        format!(
            "if [ \"$(cat {d}/token 2>/dev/null)\" = {t} ]; then rm -rf {d}; fi\n",
            d = LOCK_DIR,
            t = quote(&self.token)
        )
    }
}

/// Who holds the lock, from an acquire script's output, when it was held.
pub fn held_by(output: &str) -> Option<Held> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("LOCKED\t"))
        .map(|rest| {
            let (owner, holder) = rest.split_once('\t').unwrap_or((rest, ""));
            Held {
                owner: if owner.is_empty() {
                    "owner unknown".to_string()
                } else {
                    owner.to_string()
                },
                holder: holder.to_string(),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_scripts_quote_the_owner_and_check_the_token() {
        let c = Claim {
            token: "abc123".into(),
            owner: "me@host; rm -rf /".into(),
            holder: "box 42".into(),
        };
        let a = c.acquire_script(false);
        assert!(a.contains("'me@host; rm -rf /'"), "{a}");
        assert!(!a.contains("rm -rf /var/lib/foobar/lock"));
        assert!(c
            .acquire_script(true)
            .contains("rm -rf /var/lib/foobar/lock"));
        assert!(c.release_script().contains("= abc123 ]"));
        let held = held_by("F\tx\nLOCKED\tyou, since then\tbox 4000000\n").unwrap();
        assert_eq!(held.owner, "you, since then");
        let here = Claim {
            holder: format!("box {}", std::process::id()),
            ..c.clone()
        };
        assert!(
            held.is_stale_here(&here),
            "pid 4000000 on this machine is gone"
        );
        let elsewhere = Held {
            owner: "x".into(),
            holder: "other-box 1".into(),
        };
        assert!(
            !elsewhere.is_stale_here(&here),
            "another machine's lock is never taken over"
        );
        // This test's own process (target/debug/deps/foobar-...) is alive.
        let alive = Held {
            owner: "x".into(),
            holder: format!("box {}", std::process::id()),
        };
        assert!(!alive.is_stale_here(&here));
        assert_eq!(held_by("F\tx\n"), None);
    }
}
