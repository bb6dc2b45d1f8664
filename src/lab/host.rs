//! Helpers on the host: preflight checks, host tools, processes, files,
//! mounts, links and ports.

use super::*;

pub(super) fn preflight() -> Result<(), LabError> {
    if !cfg!(target_os = "linux") {
        return Err(LabError::NotLinux);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    Ok(())
}

/// Every server's systemd and user manager take inotify instances from the
/// host's per-user limit (128 by default): past about 18 servers some
/// never boot ("Too many open files"), and root's user manager fails on
/// the others, so every SSH login waits for it. Raised here, and said.
pub(super) fn ensure_inotify_limits(out: &dyn Reporter) -> Result<(), LabError> {
    for (name, least) in [
        ("max_user_instances", 8192u64),
        ("max_user_watches", 1_048_576),
    ] {
        let path = format!("/proc/sys/fs/inotify/{name}");
        let now: u64 = fs::read_to_string(&path)
            .map_err(io_err(format!("reading {path}")))?
            .trim()
            .parse()
            .unwrap_or(0);
        if now < least {
            fs::write(&path, format!("{least}\n")).map_err(io_err(format!("raising {path}")))?;
            out.report(Event::Message {
                text: format!(
                    "lab: raised fs.inotify.{name} on this machine from {now} to {least}"
                ),
            });
        }
    }
    Ok(())
}

/// Installs the host tools the lab needs, saying so.
pub(super) fn ensure_host_tools(out: &dyn Reporter) -> Result<(), LabError> {
    let needed = [
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("ip", "iproute2"),
        ("apt-cacher-ng", "apt-cacher-ng"),
        ("ssh-keygen", "openssh-client"),
        ("ssh", "openssh-client"),
        // The lab's ACME CA, and what fetches its root.
        ("pebble", "pebble"),
        ("curl", "curl"),
    ];
    let mut missing: Vec<&str> = needed
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    out.report(Event::Message {
        text: format!("lab: installing {} with apt-get", missing.join(" ")),
    });
    run("apt-get", &["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing);
    let status = Command::new("apt-get")
        .args(&args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .map_err(io_err("running apt-get"))?;
    if !status.status.success() {
        return Err(LabError::Command {
            command: format!("apt-get {}", args.join(" ")),
            status: status.status.to_string(),
            stderr: String::from_utf8_lossy(&status.stderr).trim().to_string(),
        });
    }
    Ok(())
}

pub(super) fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(tool).is_file())
}

/// The host's own Debian mirror, from its apt sources.
pub(super) fn host_mirror() -> String {
    let mut texts = vec![fs::read_to_string("/etc/apt/sources.list").unwrap_or_default()];
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for e in entries.flatten() {
            texts.push(fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    texts
        .iter()
        .flat_map(|t| t.split_whitespace())
        .find(|w| w.starts_with("http://") && w.trim_end_matches('/').ends_with("/debian"))
        .map(|w| w.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

pub(super) fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("running {program}")))?;
    if !output.status.success() {
        return Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Writes a file through a temp file and rename, with the given mode.
pub(super) fn write(path: &Path, content: &str, mode: u32) -> Result<(), LabError> {
    let tmp = path.with_extension("foobar-tmp");
    let what = || format!("writing {}", path.display());
    let mut f = fs::File::create(&tmp).map_err(io_err(what()))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(what()))?;
    f.write_all(content.as_bytes()).map_err(io_err(what()))?;
    f.sync_all().map_err(io_err(what()))?;
    fs::rename(&tmp, path).map_err(io_err(what()))
}

pub(super) fn random_token(len: usize) -> Result<String, LabError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("reading /dev/urandom"))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

pub(super) fn path_str(p: &Path) -> &str {
    p.to_str().expect("lab paths are UTF-8")
}

/// The host end of a server's veth pair: `fbh` and the address in hex.
pub(super) fn host_veth(address: Ipv4Addr) -> String {
    let hex: String = address
        .octets()
        .iter()
        .map(|o| format!("{o:02x}"))
        .collect();
    format!("fbh{hex}")
}

pub(super) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

pub(super) fn is_mounted(path: &Path) -> bool {
    let target = path_str(path);
    fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(target))
}

pub(super) fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(super) fn process_named(pid: u32, name: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(name))
        .unwrap_or(false)
}

/// A process of this machine, as /proc tells it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub args: Vec<String>,
    /// It is PID 1 of a PID namespace of its own: a container's init.
    pub leads_namespace: bool,
}

impl Process {
    /// From its `/proc/PID/cmdline` and `/proc/PID/status`.
    fn parse(pid: u32, cmdline: &[u8], status: &str) -> Option<Self> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::split_whitespace)
        };
        let nspid: Vec<&str> = field("NSpid")?.collect();
        Some(Self {
            pid,
            ppid: field("PPid")?.next()?.parse().ok()?,
            args: cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
            leads_namespace: nspid.len() > 1 && nspid.last() == Some(&"1"),
        })
    }

    /// Runs `program` (by its base name) with `args` among its arguments,
    /// one after the other.
    pub(super) fn runs(&self, program: &str, args: &[&str]) -> bool {
        self.args
            .first()
            .is_some_and(|a0| Path::new(a0).file_name() == Some(program.as_ref()))
            && self.args.windows(args.len()).any(|w| w == args)
    }
}

/// Every process of this machine (those that end while read are left out).
pub(super) fn processes() -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            Process::parse(pid, &cmdline, &status)
        })
        .collect()
}

/// Some process holds a lock on `path` (systemd's lock files are OFD
/// locks; /proc/locks names a lock's file by device and inode).
pub(super) fn locked(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    let locks = fs::read_to_string("/proc/locks").unwrap_or_default();
    locks_name(&locks, meta.dev(), meta.ino())
}

/// `/proc/locks` (its `locks` text) holds a lock on the file with inode
/// `ino` of device `dev`.
fn locks_name(locks: &str, dev: u64, ino: u64) -> bool {
    let file = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    locks
        .lines()
        .any(|l| l.split_whitespace().any(|w| w == file))
}

pub(super) fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub(super) fn ssh_banner(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_s_init_leads_its_pid_namespace() {
        let status = "Name:\tsystemd\nPid:\t4242\nPPid:\t4240\nNSpid:\t4242\t1\n";
        let init = Process::parse(4242, b"/sbin/init\0", status).unwrap();
        assert_eq!(
            init,
            Process {
                pid: 4242,
                ppid: 4240,
                args: vec!["/sbin/init".into()],
                leads_namespace: true,
            }
        );
        // A process of the host, and one deeper in the container.
        let host = "PPid:\t1\nNSpid:\t4240\n";
        assert!(!Process::parse(4240, b"x\0", host).unwrap().leads_namespace);
        let inside = "PPid:\t4242\nNSpid:\t4250\t7\n";
        assert!(
            !Process::parse(4250, b"x\0", inside)
                .unwrap()
                .leads_namespace
        );
        // Kernels without NSpid (before 4.1) tell nothing: left out.
        assert_eq!(Process::parse(1, b"x\0", "PPid:\t0\n"), None);
    }

    #[test]
    fn nspawn_is_told_from_the_shell_that_supervises_it() {
        let cmdline = |args: &[&str]| args.join("\0").into_bytes();
        let status = "PPid:\t1\nNSpid:\t10\n";
        let merged = "/var/lib/foobar/lab/servers/web1/merged";
        let nspawn = Process::parse(
            10,
            &cmdline(&["systemd-nspawn", "-b", "-D", merged, "-M", "web1"]),
            status,
        )
        .unwrap();
        assert!(nspawn.runs("systemd-nspawn", &["-D", merged]));
        assert!(!nspawn.runs(
            "systemd-nspawn",
            &["-D", "/var/lib/foobar/lab/servers/web2/merged"]
        ));
        let shell = Process::parse(
            9,
            &cmdline(&[
                "sh",
                "-c",
                "...",
                "foobar-lab-server",
                "systemd-nspawn",
                "-D",
                merged,
            ]),
            status,
        )
        .unwrap();
        assert!(!shell.runs("systemd-nspawn", &["-D", merged]));
    }

    #[test]
    fn a_lock_is_found_by_its_file_s_device_and_inode() {
        let locks = "1: OFDLCK ADVISORY  WRITE -1 fe:00:787097 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 812 00:19:1024 0 EOF\n";
        let dev = libc::makedev(0xfe, 0);
        assert!(locks_name(locks, dev, 787097));
        assert!(!locks_name(locks, dev, 78709));
        assert!(!locks_name(locks, libc::makedev(0xfe, 1), 787097));
        assert!(locks_name(locks, libc::makedev(0, 0x19), 1024));
    }
}
