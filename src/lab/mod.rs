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

mod host;
mod image;
mod net;
mod pebble;
mod proxy;
mod server;

use host::*;

pub(super) const PROXY_PORT: u16 = 3142;
pub(super) const IMAGE_PACKAGES: &str = "openssh-server,systemd,systemd-sysv,dbus,iproute2,ca-certificates,python3,sudo,procps,libpam-systemd";
pub(super) const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped or killed server may take to be gone.
pub(super) const GONE_TIMEOUT: Duration = Duration::from_secs(20);
/// The name the shell that supervises a server's nspawn runs as (`$0`).
pub(super) const SUPERVISOR: &str = "foobar-lab-server";

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
    #[error("lab server {name} stopped while booting, after {secs:.1} s; its console log ({log}) ends: {tail}")]
    BootFailed {
        name: String,
        secs: f64,
        log: String,
        tail: String,
    },
    #[error("lab server {name} is not gone {secs} s after it was stopped: {what}")]
    NotGone {
        name: String,
        secs: u64,
        what: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub(super) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// One lab server as the inventory declares it.
#[derive(Debug, Clone, Serialize)]
pub struct LabServer {
    pub name: String,
    pub address: Ipv4Addr,
    /// Its IPv6 address beside the IPv4 one (`ipv6:` in the inventory).
    pub ipv6: Option<std::net::Ipv6Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: String,
    pub address: Ipv4Addr,
    pub state: &'static str,
    /// The server's PID 1 (its systemd) as this machine sees it: killing
    /// it kills the server.
    pub leader_pid: Option<u32>,
}

pub struct Lab {
    dir: PathBuf,
    image: PathBuf,
    bridge_address: Ipv4Addr,
    /// The host's IPv6 address on the bridge (`schema::Lab::bridge_address_v6`).
    bridge_address_v6: std::net::Ipv6Addr,
    servers: Vec<LabServer>,
    /// The lab's first nameserver: the ACME CA resolves through it.
    nameserver: Option<Ipv4Addr>,
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
            bridge_address_v6: lab.bridge_address_v6(),
            servers: inv
                .inventory
                .servers
                .0
                .iter()
                .map(|s| LabServer {
                    name: s.name.to_string(),
                    address: s.address.v4().expect("load checks lab servers' addresses"),
                    ipv6: s.ipv6,
                })
                .collect(),
            nameserver: inv
                .inventory
                .servers_with(crate::inventory::Role::Dns)
                .find_map(|s| s.address.v4()),
        })
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    pub(super) fn image_dir(&self) -> PathBuf {
        self.image.clone()
    }

    /// Names of host links and namespaces carry the subnet, so that labs
    /// on different subnets never touch each other's.
    pub(super) fn subnet_hex(&self) -> String {
        let [a, b, c, _] = self.bridge_address.octets();
        format!("{a:02x}{b:02x}{c:02x}")
    }

    pub(super) fn bridge(&self) -> String {
        format!("fbbr{}", self.subnet_hex())
    }

    pub(super) fn netns_prefix(&self) -> String {
        format!("foobar-{}-", self.subnet_hex())
    }

    pub(super) fn netns(&self, address: Ipv4Addr) -> String {
        format!("{}{:02x}", self.netns_prefix(), address.octets()[3])
    }

    pub(super) fn server_dir(&self, name: &str) -> PathBuf {
        self.dir.join("servers").join(name)
    }

    pub(super) fn proxy_dir(&self) -> PathBuf {
        self.dir.join("apt-proxy")
    }

    pub(super) fn server(&self, name: &str) -> Result<&LabServer, LabError> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| LabError::UnknownServer(name.to_string()))
    }

    /// Brings every server of the inventory up; servers already running
    /// are left as they are, and a stopped or killed one boots again with
    /// its disk as it was.
    pub fn up(&self, out: &dyn Reporter) -> Result<(), LabError> {
        preflight()?;
        ensure_host_tools(out)?;
        self.clean_leftovers(out)?;
        self.ensure_image(out)?;
        self.ensure_key_and_secrets()?;
        self.ensure_bridge()?;
        self.ensure_proxy(out)?;
        self.ensure_pebble(out)?;
        ensure_inotify_limits(out)?;
        let mut started = Vec::new();
        for s in &self.servers {
            if self.supervisor_pid(&s.name).is_some()
                && self.recorded_address(&s.name) == Some(s.address)
            {
                continue;
            }
            self.stop_server(&s.name)?;
            self.start_server(s, false)?;
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
        self.stop_pebble();
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
        self.start_server(server, true)?;
        self.wait_ready(server, out)
    }

    /// Kills one server abruptly, like a power cut (see `kill_server`).
    pub fn kill(&self, name: &str) -> Result<(), LabError> {
        preflight()?;
        self.server(name)?;
        self.kill_server(name)
    }

    pub fn status(&self) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|s| {
                let leader_pid = self.leader_pid(&s.name);
                ServerStatus {
                    name: s.name.clone(),
                    address: s.address,
                    state: if leader_pid.is_some() {
                        "running"
                    } else {
                        "stopped"
                    },
                    leader_pid,
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
