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
    /// `<boot id>/<pid namespace> <pid> <start time>`: lets a later run
    /// that sees the same processes (same kernel boot, same pid namespace)
    /// prove the holder gone and take the lock over. A host name would not
    /// do: containers and CI runners share them.
    pub holder: String,
}

/// The lock as another run left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub owner: String,
    pub holder: String,
}

/// The processes this run can see: the kernel's boot and its pid
/// namespace. None when either cannot be read (then no lock is ever
/// taken over).
fn process_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let ns: String = ns
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    Some(format!("{}/{ns}", boot.trim()))
}

/// When process `pid` started (clock ticks after boot), if it runs.
fn start_time(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces: the 22nd
    // field of the line is the 20th after it.
    let after_name = stat.rsplit_once(") ")?.1;
    after_name.split(' ').nth(19).map(str::to_string)
}

impl Held {
    /// True only when the holder provably ran where this run can see its
    /// process, and that process is gone (its pid unused or reused).
    pub fn is_stale_here(&self, claim: &Claim) -> bool {
        let parts = |h: &str| -> Option<(String, String, String)> {
            let mut it = h.split(' ');
            Some((it.next()?.into(), it.next()?.into(), it.next()?.into()))
        };
        let (Some((space, pid, started)), Some((mine, _, _))) =
            (parts(&self.holder), parts(&claim.holder))
        else {
            return false;
        };
        space == mine && start_time(&pid).as_deref() != Some(started.as_str())
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
        let token = crate::digest::hex(&bytes);
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
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
        let pid = std::process::id().to_string();
        // Without a readable process space the holder can never be proven
        // gone: a random name no other run shares.
        let space = process_space().unwrap_or_else(|| format!("unknown-{token}"));
        let holder = format!(
            "{space} {pid} {}",
            start_time(&pid).unwrap_or_else(|| "0".into())
        );
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
        let here = Claim::new("provision").unwrap();
        let space = here.holder.split(' ').next().unwrap().to_string();
        let held = held_by(&format!(
            "F\tx\nLOCKED\tyou, since then\t{space} 4000000 1\n"
        ))
        .unwrap();
        assert_eq!(held.owner, "you, since then");
        assert!(
            held.is_stale_here(&here),
            "pid 4000000 where this run sees every process is gone"
        );
        // The same host name, another container or runner: never taken.
        let elsewhere = Held {
            owner: "x".into(),
            holder: format!("{space}0 1 1"),
        };
        assert!(!elsewhere.is_stale_here(&here));
        // An older foobar's holder (`<host> <pid>`) proves nothing.
        let old_style = Held {
            owner: "x".into(),
            holder: "box 4000000".into(),
        };
        assert!(!old_style.is_stale_here(&here));
        // This test's own process is alive; a reused pid is not the holder.
        let alive = Held {
            owner: "x".into(),
            holder: here.holder.clone(),
        };
        assert!(!alive.is_stale_here(&here));
        let reused = Held {
            owner: "x".into(),
            holder: format!("{space} {} 1", std::process::id()),
        };
        assert!(reused.is_stale_here(&here));
        assert_eq!(held_by("F\tx\n"), None);
    }
}
