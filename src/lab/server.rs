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

    /// The shell that runs the server's systemd-nspawn and boots it again
    /// when it reboots: `nspawn.pid` holds its pid.
    pub(super) fn supervisor_pid(&self, name: &str) -> Option<u32> {
        let pid = read_pid(&self.server_dir(name).join("nspawn.pid"))?;
        // The pid may have been reused by an unrelated process.
        process_named(pid, SUPERVISOR).then_some(pid)
    }

    /// The server's systemd-nspawn, found by the tree it boots: also when
    /// its supervisor is gone.
    pub(super) fn nspawn_pid(&self, name: &str) -> Option<u32> {
        let merged = self.server_dir(name).join("merged");
        processes()
            .into_iter()
            .find(|p| p.runs("systemd-nspawn", &["-D", path_str(&merged)]))
            .map(|p| p.pid)
    }

    /// The server's own leader: its PID 1 (its systemd) as this machine
    /// sees it, the child of its systemd-nspawn that leads the server's
    /// PID namespace. Killing it kills every process of the server.
    pub(super) fn leader_pid(&self, name: &str) -> Option<u32> {
        let nspawn = self.nspawn_pid(name)?;
        processes()
            .into_iter()
            .find(|p| p.ppid == nspawn && p.leads_namespace)
            .map(|p| p.pid)
    }

    /// The processes in the server's network namespace: all of its own,
    /// including those that outlived its nspawn after a crash.
    fn netns_pids(&self, name: &str) -> Vec<String> {
        self.netns_of(name)
            .and_then(|ns| run("ip", &["netns", "pids", &ns]).ok())
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// What is left of a server that should be gone, in words; None when
    /// nothing is.
    fn left_of(&self, name: &str) -> Option<String> {
        if let Some(pid) = self.supervisor_pid(name) {
            return Some(format!("its supervisor (pid {pid}) is still running"));
        }
        if let Some(pid) = self.nspawn_pid(name) {
            return Some(format!("its systemd-nspawn (pid {pid}) is still running"));
        }
        let pids = self.netns_pids(name);
        if !pids.is_empty() {
            return Some(format!(
                "processes {} are still running in its network namespace",
                pids.join(", ")
            ));
        }
        // nspawn locks the tree it boots (a file beside it): another
        // nspawn refuses it while the lock is held ("Directory tree ...
        // is currently busy").
        let lock = self.server_dir(name).join(".#merged.lck");
        locked(&lock).then(|| format!("{} is still locked", lock.display()))
    }

    /// Waits for a stopped or killed server to be gone: its supervisor,
    /// its systemd-nspawn and its processes ended, the lock on its tree
    /// released. Only then may it boot again.
    pub(super) fn wait_gone(&self, name: &str) -> Result<(), LabError> {
        let deadline = Instant::now() + GONE_TIMEOUT;
        loop {
            match self.left_of(name) {
                None => return Ok(()),
                Some(what) if Instant::now() >= deadline => {
                    return Err(LabError::NotGone {
                        name: name.to_string(),
                        secs: GONE_TIMEOUT.as_secs(),
                        what,
                    })
                }
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
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
            if self.supervisor_pid(&name).is_none() {
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
            SUPERVISOR,
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
    /// Returns once it is gone.
    pub(super) fn kill_server(&self, name: &str) -> Result<(), LabError> {
        self.kill_processes(name);
        self.wait_gone(name)
    }

    /// SIGKILL to the server's processes, its supervisor and its nspawn.
    fn kill_processes(&self, name: &str) {
        let pids = self.netns_pids(name).into_iter().chain(
            [self.supervisor_pid(name), self.nspawn_pid(name)]
                .into_iter()
                .flatten()
                .map(|pid| pid.to_string()),
        );
        for pid in pids {
            let _ = run("kill", &["-KILL", &pid]);
        }
    }

    /// Stops a server if it runs, waits for it to be gone and removes its
    /// mount and namespace.
    pub(super) fn stop_server(&self, name: &str) -> Result<(), LabError> {
        // SIGTERM makes nspawn halt the server cleanly (about 1 s); the
        // supervisor passes it on, and one that was killed left nspawn to
        // be told itself.
        if let Some(pid) = self.supervisor_pid(name).or_else(|| self.nspawn_pid(name)) {
            let _ = run("kill", &["-TERM", &pid.to_string()]);
            let deadline = Instant::now() + Duration::from_secs(15);
            while self.nspawn_pid(name).is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // What did not halt in time, and after a crash the server's
        // processes that outlived nspawn (keeping its namespace and veth
        // alive), are ended.
        self.kill_processes(name);
        self.wait_gone(name)?;
        if let Some(ns) = self.netns_of(name) {
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

    /// A server whose nspawn exited while it booted: after how long, and
    /// the end of its console log, which says why.
    fn boot_failed(&self, s: &LabServer, after: Duration) -> LabError {
        let log = self.server_dir(&s.name).join("console.log");
        let text = fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        LabError::BootFailed {
            name: s.name.clone(),
            secs: after.as_secs_f64(),
            log: path_str(&log).to_string(),
            tail: lines[lines.len().saturating_sub(3)..].join(" / "),
        }
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
            if self.supervisor_pid(&s.name).is_none() {
                return Err(self.boot_failed(s, start.elapsed()));
            }
            if start.elapsed() > BOOT_TIMEOUT {
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
