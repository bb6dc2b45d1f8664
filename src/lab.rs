//! The lab: disposable Debian 12 servers on this machine. Each one is an
//! overlay over a debootstrap'd base image, booted by systemd-nspawn with
//! systemd as PID 1, in its own network namespace on a host bridge, and
//! reached over real SSH with host-key checking on. Packages reach the
//! servers through apt-cacher-ng on the bridge, which forwards only to the
//! host's own Debian mirror.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::inventory::Loaded;
use crate::progress::{Event, Reporter};

const PROXY_PORT: u16 = 3142;
const IMAGE_PACKAGES: &str = "openssh-server,systemd,systemd-sysv,dbus,iproute2,ca-certificates,python3,sudo,procps,libpam-systemd";
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("foobar lab needs root: run it as root (sudo foobar lab ...)")]
    NotRoot,
    #[error("foobar lab runs on Linux only")]
    NotLinux,
    #[error("{0} has no `lab:` section: use a lab inventory such as inventory/lab.yml")]
    NotALab(PathBuf),
    #[error("no lab server is named `{0}`: see `foobar lab status`")]
    UnknownServer(String),
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("lab server {name} did not come up within {secs} s; its console log is {log}")]
    BootTimeout {
        name: String,
        secs: u64,
        log: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// One lab server as the inventory declares it.
#[derive(Debug, Clone, Serialize)]
pub struct LabServer {
    pub name: String,
    pub address: Ipv4Addr,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: String,
    pub address: Ipv4Addr,
    pub state: &'static str,
    pub pid: Option<u32>,
}

pub struct Lab {
    dir: PathBuf,
    image: PathBuf,
    bridge_address: Ipv4Addr,
    servers: Vec<LabServer>,
}

impl Lab {
    pub fn from_inventory(inv: &Loaded) -> Result<Self, LabError> {
        let lab = inv
            .inventory
            .lab
            .as_ref()
            .ok_or_else(|| LabError::NotALab(inv.path.clone()))?;
        Ok(Self {
            dir: inv.local_path(&lab.dir.0),
            image: inv.local_path(&lab.image.0),
            bridge_address: lab.bridge_address,
            servers: inv
                .inventory
                .servers
                .0
                .iter()
                .map(|s| LabServer {
                    name: s.name.to_string(),
                    address: s.address,
                })
                .collect(),
        })
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    fn image_dir(&self) -> PathBuf {
        self.image.clone()
    }

    /// Names of host links and namespaces carry the subnet, so that labs
    /// on different subnets never touch each other's.
    fn subnet_hex(&self) -> String {
        let [a, b, c, _] = self.bridge_address.octets();
        format!("{a:02x}{b:02x}{c:02x}")
    }

    fn bridge(&self) -> String {
        format!("fbbr{}", self.subnet_hex())
    }

    fn netns_prefix(&self) -> String {
        format!("foobar-{}-", self.subnet_hex())
    }

    fn netns(&self, address: Ipv4Addr) -> String {
        format!("{}{:02x}", self.netns_prefix(), address.octets()[3])
    }

    fn server_dir(&self, name: &str) -> PathBuf {
        self.dir.join("servers").join(name)
    }

    fn proxy_dir(&self) -> PathBuf {
        self.dir.join("apt-proxy")
    }

    fn server(&self, name: &str) -> Result<&LabServer, LabError> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| LabError::UnknownServer(name.to_string()))
    }

    /// Brings every server of the inventory up; servers already running
    /// are left as they are.
    pub fn up(&self, out: &dyn Reporter) -> Result<(), LabError> {
        preflight()?;
        ensure_host_tools(out)?;
        self.clean_leftovers(out)?;
        self.ensure_image(out)?;
        self.ensure_key_and_secrets()?;
        self.ensure_bridge()?;
        self.ensure_proxy(out)?;
        let mut started = Vec::new();
        for s in &self.servers {
            if self.running_pid(&s.name).is_some()
                && self.recorded_address(&s.name) == Some(s.address)
            {
                continue;
            }
            self.stop_server(&s.name)?;
            self.start_server(s)?;
            out.report(Event::Message {
                text: format!("lab: booting {} at {}", s.name, s.address),
            });
            started.push(s);
        }
        for s in started {
            self.wait_ready(s, out)?;
        }
        Ok(())
    }

    /// Stops every server found on disk (not only the inventory's) and
    /// removes bridge, proxy and mounts; `purge` also removes the image.
    pub fn down(&self, purge: bool, out: &dyn Reporter) -> Result<(), LabError> {
        preflight()?;
        for name in self.servers_on_disk() {
            self.stop_server(&name)?;
            fs::remove_dir_all(self.server_dir(&name)).map_err(io_err(format!(
                "removing {}",
                self.server_dir(&name).display()
            )))?;
            out.report(Event::Message {
                text: format!("lab: {name} removed"),
            });
        }
        for ns in self.leftover_netns() {
            let _ = run("ip", &["netns", "del", &ns]);
        }
        self.stop_proxy();
        if link_exists(&self.bridge()) {
            run("ip", &["link", "del", &self.bridge()])?;
        }
        if purge {
            for dir in [&self.dir, &self.image] {
                if dir.exists() {
                    fs::remove_dir_all(dir)
                        .map_err(io_err(format!("removing {}", dir.display())))?;
                    out.report(Event::Message {
                        text: format!("lab: purged {}", dir.display()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Brings one server back to pristine: its overlay is thrown away.
    pub fn reset(&self, name: &str, out: &dyn Reporter) -> Result<(), LabError> {
        preflight()?;
        let server = self.server(name)?;
        self.stop_server(name)?;
        self.ensure_bridge()?;
        self.ensure_proxy(out)?;
        self.start_server(server)?;
        self.wait_ready(server, out)
    }

    pub fn status(&self) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|s| {
                let pid = self.running_pid(&s.name);
                ServerStatus {
                    name: s.name.clone(),
                    address: s.address,
                    state: if pid.is_some() { "running" } else { "stopped" },
                    pid,
                }
            })
            .collect()
    }

    /// The ssh command line for a lab server, with the lab's key and
    /// known_hosts and strict host-key checking.
    pub fn ssh_command(&self, name: &str, command: &[String]) -> Result<Command, LabError> {
        let server = self.server(name)?;
        let mut cmd = Command::new("ssh");
        cmd.args(ssh_options(&self.key_path(), &self.known_hosts_path()))
            .arg(format!("root@{}", server.address));
        if !command.is_empty() {
            cmd.arg("--").args(command);
        }
        Ok(cmd)
    }

    /// The namespace a server on disk was given, if it still exists.
    fn netns_of(&self, name: &str) -> Option<String> {
        let ns = fs::read_to_string(self.server_dir(name).join("netns")).ok()?;
        let ns = ns.trim().to_string();
        Path::new("/run/netns").join(&ns).exists().then_some(ns)
    }

    fn leftover_netns(&self) -> Vec<String> {
        let prefix = self.netns_prefix();
        fs::read_dir("/run/netns")
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn servers_on_disk(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.dir.join("servers")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    fn running_pid(&self, name: &str) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.server_dir(name).join("nspawn.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        // The pid may have been reused by an unrelated process.
        String::from_utf8_lossy(&cmdline)
            .contains("systemd-nspawn")
            .then_some(pid)
    }

    fn recorded_address(&self, name: &str) -> Option<Ipv4Addr> {
        fs::read_to_string(self.server_dir(name).join("address"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// After a crash or a killed run: servers whose nspawn is gone still
    /// have mounts and namespaces; take them down so `up` starts clean.
    fn clean_leftovers(&self, out: &dyn Reporter) -> Result<(), LabError> {
        for name in self.servers_on_disk() {
            if self.running_pid(&name).is_none() {
                let merged = self.server_dir(&name).join("merged");
                if is_mounted(&merged) || self.netns_of(&name).is_some() {
                    out.report(Event::Message {
                        text: format!("lab: cleaning up after {name}, which is no longer running"),
                    });
                }
                self.stop_server(&name)?;
            }
        }
        Ok(())
    }

    fn ensure_image(&self, out: &dyn Reporter) -> Result<(), LabError> {
        let image = self.image_dir();
        if image.join(".foobar-image").exists() {
            return Ok(());
        }
        // A half-built image from a killed run is thrown away.
        let tmp = image.with_extension("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err("removing a half-built image"))?;
        }
        if let Some(parent) = image.parent() {
            fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
        }
        let mirror = host_mirror();
        out.report(Event::Message {
            text: format!(
                "lab: building the Debian 12 base image from {mirror} (about a minute, once)"
            ),
        });
        run(
            "debootstrap",
            &[
                "--variant=minbase",
                &format!("--include={IMAGE_PACKAGES}"),
                "bookworm",
                path_str(&tmp),
                &mirror,
            ],
        )?;
        let sources = format!(
            "deb {mirror} bookworm main\ndeb {mirror} bookworm-updates main\ndeb {security} bookworm-security main\n",
            security = mirror.trim_end_matches('/').trim_end_matches("/debian").to_string() + "/debian-security",
        );
        write(&tmp.join("etc/apt/sources.list"), &sources, 0o644)?;
        // Every server gets its own host keys and machine id at start.
        for entry in fs::read_dir(tmp.join("etc/ssh")).map_err(io_err("reading etc/ssh"))? {
            let path = entry.map_err(io_err("reading etc/ssh"))?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ssh_host_"))
            {
                fs::remove_file(&path).map_err(io_err("removing image host keys"))?;
            }
        }
        write(&tmp.join("etc/machine-id"), "", 0o444)?;
        let _ = fs::remove_file(tmp.join("var/lib/dbus/machine-id"));
        write(&tmp.join(".foobar-image"), "debian bookworm\n", 0o644)?;
        fs::rename(&tmp, &image).map_err(io_err("moving the image into place"))?;
        Ok(())
    }

    fn ensure_key_and_secrets(&self) -> Result<(), LabError> {
        fs::create_dir_all(&self.dir)
            .map_err(io_err(format!("creating {}", self.dir.display())))?;
        let key = self.key_path();
        if !key.exists() {
            run(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "foobar-lab",
                    "-f",
                    path_str(&key),
                ],
            )?;
        }
        if !self.known_hosts_path().exists() {
            write(&self.known_hosts_path(), "", 0o644)?;
        }
        let password = self.dir.join("secrets/mysql_password");
        if !password.exists() {
            fs::create_dir_all(self.dir.join("secrets")).map_err(io_err("creating secrets"))?;
            fs::set_permissions(self.dir.join("secrets"), fs::Permissions::from_mode(0o700))
                .map_err(io_err("securing secrets"))?;
            write(&password, &format!("{}\n", random_token(24)?), 0o600)?;
        }
        Ok(())
    }

    fn ensure_bridge(&self) -> Result<(), LabError> {
        let bridge = self.bridge();
        if !link_exists(&bridge) {
            run("ip", &["link", "add", &bridge, "type", "bridge"])?;
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("{}/24", self.bridge_address),
                    "dev",
                    &bridge,
                ],
            )?;
        }
        run("ip", &["link", "set", &bridge, "up"])?;
        Ok(())
    }

    fn ensure_proxy(&self, out: &dyn Reporter) -> Result<(), LabError> {
        let dir = self.proxy_dir();
        let pid_file = dir.join("pid");
        if let Some(pid) = read_pid(&pid_file) {
            if process_named(pid, "apt-cacher-ng") {
                return Ok(());
            }
        }
        for sub in ["conf", "cache", "log"] {
            fs::create_dir_all(dir.join(sub)).map_err(io_err("creating the apt proxy folders"))?;
        }
        let mirror = host_mirror();
        let host_path = mirror.trim_start_matches("http://").trim_end_matches('/');
        let security = host_path.trim_end_matches("/debian").to_string() + "/debian-security";
        // ForceManaged: the proxy forwards only to the host's own Debian
        // mirror, never to any other address a server might ask for.
        let conf = format!(
            "CacheDir: {cache}\nLogDir: {log}\nPort: {PROXY_PORT}\nBindAddress: {bridge}\nForceManaged: 1\nExThreshold: 30\nRemap-debrep: {host_path} ; {mirror}\nRemap-secrep: {security} ; http://{security}/\n",
            cache = path_str(&dir.join("cache")),
            log = path_str(&dir.join("log")),
            bridge = self.bridge_address,
            mirror = mirror.trim_end_matches('/').to_string() + "/",
        );
        write(&dir.join("conf/acng.conf"), &conf, 0o644)?;
        let _ = fs::remove_file(&pid_file);
        run(
            "apt-cacher-ng",
            &[
                "-c",
                path_str(&dir.join("conf")),
                "ForeGround=0",
                &format!("PidFile={}", path_str(&pid_file)),
            ],
        )?;
        wait_for_port(
            SocketAddr::from((self.bridge_address, PROXY_PORT)),
            Duration::from_secs(10),
        )
        .then_some(())
        .ok_or_else(|| LabError::Command {
            command: "apt-cacher-ng".into(),
            status: "not listening".into(),
            stderr: format!("see {}", path_str(&dir.join("log"))),
        })?;
        out.report(Event::Message {
            text: format!("lab: apt proxy on {}:{PROXY_PORT}", self.bridge_address),
        });
        Ok(())
    }

    fn stop_proxy(&self) {
        if let Some(pid) = read_pid(&self.proxy_dir().join("pid")) {
            if process_named(pid, "apt-cacher-ng") {
                let _ = run("kill", &[&pid.to_string()]);
            }
        }
    }

    /// Mounts a fresh overlay, gives the server its identity, network and
    /// host keys, and boots it. The server's old overlay is discarded.
    fn start_server(&self, s: &LabServer) -> Result<(), LabError> {
        let sdir = self.server_dir(&s.name);
        if sdir.exists() {
            fs::remove_dir_all(&sdir).map_err(io_err(format!("removing {}", sdir.display())))?;
        }
        let (upper, work, merged) = (sdir.join("upper"), sdir.join("work"), sdir.join("merged"));
        for d in [&upper, &work, &merged] {
            fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        write(&sdir.join("address"), &format!("{}\n", s.address), 0o644)?;
        run(
            "mount",
            &[
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!(
                    "lowerdir={},upperdir={},workdir={}",
                    path_str(&self.image_dir()),
                    path_str(&upper),
                    path_str(&work)
                ),
                path_str(&merged),
            ],
        )?;
        write(
            &merged.join("etc/hostname"),
            &format!("{}\n", s.name),
            0o644,
        )?;
        write(
            &merged.join("etc/hosts"),
            &format!("127.0.0.1 localhost\n127.0.1.1 {}\n::1 localhost\n", s.name),
            0o644,
        )?;
        // No resolver: lab servers have no way out, and a stray lookup
        // must fail at once rather than wait.
        write(&merged.join("etc/resolv.conf"), "", 0o644)?;
        write(
            &merged.join("etc/apt/apt.conf.d/01foobar-lab-proxy"),
            &format!(
                "// Lab servers have no route out: apt goes through the host.\nAcquire::http::Proxy \"http://{}:{PROXY_PORT}\";\n",
                self.bridge_address
            ),
            0o644,
        )?;
        // VERBOSE logs one line per SSH session: tests and benchmarks count them.
        write(
            &merged.join("etc/ssh/sshd_config.d/foobar-lab.conf"),
            "LogLevel VERBOSE\n",
            0o644,
        )?;
        let ssh_dir = merged.join("root/.ssh");
        fs::create_dir_all(&ssh_dir).map_err(io_err("creating root/.ssh"))?;
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("securing root/.ssh"))?;
        let pubkey = fs::read_to_string(self.key_path().with_extension("pub"))
            .map_err(io_err("reading the lab public key"))?;
        write(&ssh_dir.join("authorized_keys"), &pubkey, 0o600)?;
        run("ssh-keygen", &["-A", "-f", path_str(&merged)])?;
        let host_key = fs::read_to_string(merged.join("etc/ssh/ssh_host_ed25519_key.pub"))
            .map_err(io_err("reading the new host key"))?;
        self.record_host_key(s.address, &host_key)?;

        self.create_netns(s)?;
        let log =
            fs::File::create(sdir.join("console.log")).map_err(io_err("creating console.log"))?;
        let log2 = log.try_clone().map_err(io_err("opening console.log"))?;
        // A small supervisor: nspawn exits with 133 when the server reboots
        // itself; boot it again, as a real machine would come back. SIGTERM
        // is passed on, so that `down` halts the server cleanly.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "trap 'kill -TERM \"$child\" 2>/dev/null; wait \"$child\"; exit 0' TERM INT\n\
             while :; do \"$@\" & child=$!; wait \"$child\"; rc=$?; [ \"$rc\" = 133 ] || exit \"$rc\"; done",
            "foobar-lab-server",
            "systemd-nspawn",
        ]);
        cmd.args([
            "-b",
            "-D",
            path_str(&merged),
            "-M",
            &s.name,
            // Both are needed where the host has no systemd as PID 1.
            "--register=no",
            "--keep-unit",
            "--resolv-conf=off",
            "--console=read-only",
            &format!(
                "--network-namespace-path=/run/netns/{}",
                self.netns(s.address)
            ),
        ])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
        // Its own session: no terminal, and it outlives this command.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(io_err("starting systemd-nspawn"))?;
        write(
            &sdir.join("nspawn.pid"),
            &format!("{}\n", child.id()),
            0o644,
        )?;
        Ok(())
    }

    fn create_netns(&self, s: &LabServer) -> Result<(), LabError> {
        let ns = self.netns(s.address);
        write(
            &self.server_dir(&s.name).join("netns"),
            &format!("{ns}\n"),
            0o644,
        )?;
        let host_end = host_veth(s.address);
        let peer = host_end.replacen("fbh", "fbc", 1);
        run("ip", &["netns", "add", &ns])?;
        run(
            "ip",
            &[
                "link", "add", &host_end, "type", "veth", "peer", "name", &peer,
            ],
        )?;
        run(
            "ip",
            &["link", "set", &host_end, "master", &self.bridge(), "up"],
        )?;
        run("ip", &["link", "set", &peer, "netns", &ns])?;
        let [a, b, c, d] = s.address.octets();
        // A MAC derived from the address: re-creating a server on the same
        // address leaves no stale neighbour entry that disagrees.
        let mac = format!("02:fb:{a:02x}:{b:02x}:{c:02x}:{d:02x}");
        let in_ns = |args: &[&str]| -> Result<String, LabError> {
            let mut full = vec!["-n", ns.as_str()];
            full.extend_from_slice(args);
            run("ip", &full)
        };
        in_ns(&["link", "set", &peer, "name", "eth0"])?;
        in_ns(&["link", "set", "eth0", "address", &mac])?;
        in_ns(&["addr", "add", &format!("{}/24", s.address), "dev", "eth0"])?;
        in_ns(&["link", "set", "eth0", "up"])?;
        in_ns(&["link", "set", "lo", "up"])?;
        let _ = run("ip", &["neigh", "flush", "to", &s.address.to_string()]);
        Ok(())
    }

    /// Stops a server if it runs and removes its mount and namespace.
    fn stop_server(&self, name: &str) -> Result<(), LabError> {
        if let Some(pid) = self.running_pid(name) {
            // SIGTERM makes nspawn halt the server cleanly (about 1 s).
            let _ = run("kill", &["-TERM", &pid.to_string()]);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = run("kill", &["-KILL", &pid.to_string()]);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        if let Some(ns) = self.netns_of(name) {
            // After a crash the server's processes outlive nspawn and keep
            // its namespace and veth alive: end them first.
            for pid in run("ip", &["netns", "pids", &ns])
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = run("kill", &["-KILL", pid]);
            }
            run("ip", &["netns", "del", &ns])?;
        }
        if let Some(address) = self.recorded_address(name) {
            let host_end = host_veth(address);
            // Deleting the namespace removes the pair a moment later.
            if link_exists(&host_end)
                && run("ip", &["link", "del", &host_end]).is_err()
                && link_exists(&host_end)
            {
                run("ip", &["link", "del", &host_end])?;
            }
        }
        let merged = self.server_dir(name).join("merged");
        if is_mounted(&merged) && run("umount", &[path_str(&merged)]).is_err() {
            run("umount", &["-l", path_str(&merged)])?;
        }
        let _ = fs::remove_file(self.server_dir(name).join("nspawn.pid"));
        Ok(())
    }

    fn record_host_key(&self, address: Ipv4Addr, host_key: &str) -> Result<(), LabError> {
        let path = self.known_hosts_path();
        let old = fs::read_to_string(&path).unwrap_or_default();
        let prefix = format!("{address} ");
        let mut text: String = old
            .lines()
            .filter(|l| !l.starts_with(&prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut parts = host_key.split_whitespace();
        let (kind, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        text.push_str(&format!("{address} {kind} {key}\n"));
        write(&path, &text, 0o644)
    }

    /// Waits for sshd's banner, then for systemd to finish booting.
    fn wait_ready(&self, s: &LabServer, out: &dyn Reporter) -> Result<(), LabError> {
        let start = Instant::now();
        let timeout = || LabError::BootTimeout {
            name: s.name.clone(),
            secs: BOOT_TIMEOUT.as_secs(),
            log: path_str(&self.server_dir(&s.name).join("console.log")).to_string(),
        };
        loop {
            if ssh_banner(SocketAddr::from((s.address, 22))) {
                break;
            }
            if start.elapsed() > BOOT_TIMEOUT || self.running_pid(&s.name).is_none() {
                return Err(timeout());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = self
            .ssh_command(
                &s.name,
                &[
                    "timeout".into(),
                    "50".into(),
                    "systemctl".into(),
                    "is-system-running".into(),
                    "--wait".into(),
                ],
            )?
            .stdin(Stdio::null())
            .output()
            .map_err(io_err("running ssh"))?;
        let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let mut text = format!(
            "lab: {} at {} is {} ({:.1} s)",
            s.name,
            s.address,
            if state.is_empty() {
                "unreachable"
            } else {
                &state
            },
            start.elapsed().as_secs_f64()
        );
        match state.as_str() {
            "running" => {}
            "degraded" => {
                let failed = self
                    .ssh_command(
                        &s.name,
                        &[
                            "systemctl".into(),
                            "--failed".into(),
                            "--no-legend".into(),
                            "--plain".into(),
                        ],
                    )?
                    .stdin(Stdio::null())
                    .output()
                    .map_err(io_err("running ssh"))?;
                text.push_str(&format!(
                    "; failed units: {}",
                    String::from_utf8_lossy(&failed.stdout).trim()
                ));
            }
            _ => {
                return Err(LabError::Command {
                    command: format!("ssh root@{} systemctl is-system-running", s.address),
                    status: output.status.to_string(),
                    stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
                })
            }
        }
        out.report(Event::Message { text });
        Ok(())
    }
}

/// ssh options shared by every lab connection.
pub fn ssh_options(key: &Path, known_hosts: &Path) -> Vec<String> {
    vec![
        "-i".into(),
        path_str(key).into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", path_str(known_hosts)),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "ConnectTimeout=10".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
    ]
}

fn preflight() -> Result<(), LabError> {
    if !cfg!(target_os = "linux") {
        return Err(LabError::NotLinux);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    Ok(())
}

/// Installs the host tools the lab needs, saying so.
fn ensure_host_tools(out: &dyn Reporter) -> Result<(), LabError> {
    let needed = [
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("ip", "iproute2"),
        ("apt-cacher-ng", "apt-cacher-ng"),
        ("ssh-keygen", "openssh-client"),
        ("ssh", "openssh-client"),
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

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(tool).is_file())
}

/// The host's own Debian mirror, from its apt sources.
fn host_mirror() -> String {
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

fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
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
fn write(path: &Path, content: &str, mode: u32) -> Result<(), LabError> {
    let tmp = path.with_extension("foobar-tmp");
    let what = || format!("writing {}", path.display());
    let mut f = fs::File::create(&tmp).map_err(io_err(what()))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(what()))?;
    f.write_all(content.as_bytes()).map_err(io_err(what()))?;
    f.sync_all().map_err(io_err(what()))?;
    fs::rename(&tmp, path).map_err(io_err(what()))
}

fn random_token(len: usize) -> Result<String, LabError> {
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

fn path_str(p: &Path) -> &str {
    p.to_str().expect("lab paths are UTF-8")
}

/// The host end of a server's veth pair: `fbh` and the address in hex.
fn host_veth(address: Ipv4Addr) -> String {
    let hex: String = address
        .octets()
        .iter()
        .map(|o| format!("{o:02x}"))
        .collect();
    format!("fbh{hex}")
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn is_mounted(path: &Path) -> bool {
    let target = path_str(path);
    fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(target))
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn process_named(pid: u32, name: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(name))
        .unwrap_or(false)
}

fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn ssh_banner(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}
