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
