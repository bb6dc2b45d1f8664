//! The lab's network: one host bridge per subnet, one network namespace
//! per server, with a veth pair and no default route.

use super::*;

impl Lab {
    /// The namespace a server on disk was given, if it still exists.
    pub(super) fn netns_of(&self, name: &str) -> Option<String> {
        let ns = fs::read_to_string(self.server_dir(name).join("netns")).ok()?;
        let ns = ns.trim().to_string();
        Path::new("/run/netns").join(&ns).exists().then_some(ns)
    }

    pub(super) fn leftover_netns(&self) -> Vec<String> {
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

    pub(super) fn ensure_bridge(&self) -> Result<(), LabError> {
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
        // Also on a bridge made before the lab had IPv6; nodad: usable at
        // once, and no other host on the bridge claims it.
        run(
            "ip",
            &[
                "-6",
                "addr",
                "replace",
                &format!("{}/64", self.bridge_address_v6),
                "dev",
                &bridge,
                "nodad",
            ],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        Ok(())
    }

    pub(super) fn create_netns(&self, s: &LabServer) -> Result<(), LabError> {
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
        if let Some(v6) = s.ipv6 {
            in_ns(&[
                "-6",
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "eth0",
                "nodad",
            ])?;
        }
        in_ns(&["link", "set", "eth0", "up"])?;
        in_ns(&["link", "set", "lo", "up"])?;
        let _ = run("ip", &["neigh", "flush", "to", &s.address.to_string()]);
        if let Some(v6) = s.ipv6 {
            let _ = run("ip", &["-6", "neigh", "flush", "to", &v6.to_string()]);
        }
        Ok(())
    }
}
