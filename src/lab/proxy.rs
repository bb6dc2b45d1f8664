//! The apt proxy on the bridge (apt-cacher-ng), forwarding only to the
//! host's own Debian mirror.

use super::*;

impl Lab {
    pub(super) fn ensure_proxy(&self, out: &dyn Reporter) -> Result<(), LabError> {
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

    pub(super) fn stop_proxy(&self) {
        if let Some(pid) = read_pid(&self.proxy_dir().join("pid")) {
            if process_named(pid, "apt-cacher-ng") {
                let _ = run("kill", &[&pid.to_string()]);
            }
        }
    }
}
