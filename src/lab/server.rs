//! One lab server's life: overlay, nspawn under a supervisor that
//! survives reboots, host keys, readiness.

use super::*;

impl Lab {
    pub(super) fn servers_on_disk(&self) -> Vec<String> {
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

    pub(super) fn running_pid(&self, name: &str) -> Option<u32> {
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

    pub(super) fn recorded_address(&self, name: &str) -> Option<Ipv4Addr> {
        fs::read_to_string(self.server_dir(name).join("address"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// After a crash or a killed run: servers whose nspawn is gone still
    /// have mounts and namespaces; take them down so `up` starts clean.
    pub(super) fn clean_leftovers(&self, out: &dyn Reporter) -> Result<(), LabError> {
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

    /// Mounts the server's overlay (a new one when it has none), gives the
    /// server its identity, network and host keys, and boots it. A server
    /// that was stopped or killed keeps its disk, like a machine after a
    /// power cut; `discard` throws the old overlay away first (pristine).
    pub(super) fn start_server(&self, s: &LabServer, discard: bool) -> Result<(), LabError> {
        let sdir = self.server_dir(&s.name);
        if sdir.exists() && (discard || self.recorded_address(&s.name) != Some(s.address)) {
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
                "// Lab servers have no route out: apt goes through the host.\nAcquire::http::Proxy \"http://{}:{PROXY_PORT}\";\n\
                 // Many servers updating at once can leave a request of the proxy\n\
                 // unanswered (apt-cacher-ng: \"Failure to move file ... out of the\n\
                 // way\"): give up on it and ask again.\n\
                 Acquire::http::Timeout \"20\";\nAcquire::Retries \"5\";\n",
                self.bridge_address
            ),
            0o644,
        )?;
        // Root's user manager lingers, as on a server someone is logged in
        // to: in a container its stop can hang ("Couldn't move remaining
        // userspace processes"), and while it hangs every new SSH login
        // waits for it (up to its 90 s stop timeout).
        fs::create_dir_all(merged.join("var/lib/systemd/linger"))
            .map_err(io_err("creating var/lib/systemd/linger"))?;
        write(&merged.join("var/lib/systemd/linger/root"), "", 0o644)?;
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
            // keepalived (VRRP) and nftables need it. Each server has its
            // own network namespace, so the grant reaches no host network.
            "--capability=CAP_NET_ADMIN",
            &format!(
                "--network-namespace-path=/run/netns/{}",
                self.netns(s.address)
            ),
        ])
        // The server's own network settings (sysctl net.*) are its own to
        // set, as on a real machine: its namespace is private. The rest of
        // /proc/sys stays read-only: it is the host's kernel.
        .env("SYSTEMD_NSPAWN_API_VFS_WRITABLE", "network")
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

    /// Pulls the plug: every process of the server is killed at once, with
    /// no shutdown, and its disk stays as it was; `up` boots it again.
    pub(super) fn kill_server(&self, name: &str) -> Result<(), LabError> {
        if let Some(ns) = self.netns_of(name) {
            for pid in run("ip", &["netns", "pids", &ns])
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = run("kill", &["-KILL", pid]);
            }
        }
        if let Some(pid) = self.running_pid(name) {
            // The supervisor leads its own process group, nspawn with it.
            let _ = run("kill", &["-KILL", "--", &format!("-{pid}")]);
        }
        Ok(())
    }

    /// Stops a server if it runs and removes its mount and namespace.
    pub(super) fn stop_server(&self, name: &str) -> Result<(), LabError> {
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

    pub(super) fn record_host_key(
        &self,
        address: Ipv4Addr,
        host_key: &str,
    ) -> Result<(), LabError> {
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
    pub(super) fn wait_ready(&self, s: &LabServer, out: &dyn Reporter) -> Result<(), LabError> {
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
