//! The lab's ACME CA: Debian's Pebble on the bridge, so that foobar gets
//! certificates the way it does from Let's Encrypt. Its HTTPS certificate
//! comes from a lab CA made here (the package ships none); it resolves
//! through the lab's BIND and validates HTTP-01 on port 80. Its root is new
//! at every start: it is fetched then, and written after the lab CA into
//! `<lab dir>/acme/roots.pem`, the file lab inventories name as `acme.ca`.

use super::*;

pub(super) const ACME_PORT: u16 = 14000;
const MANAGEMENT_PORT: u16 = 15000;

impl Lab {
    fn acme_dir(&self) -> PathBuf {
        self.dir.join("acme")
    }

    pub(super) fn ensure_pebble(&self, out: &dyn Reporter) -> Result<(), LabError> {
        // Pebble resolves the site's names through the lab's nameserver.
        let Some(dns) = self.nameserver else {
            return Ok(());
        };
        let dir = self.acme_dir();
        let pid_file = dir.join("pid");
        if let Some(pid) = read_pid(&pid_file) {
            if process_named(pid, "pebble") {
                return Ok(());
            }
        }
        fs::create_dir_all(&dir).map_err(io_err("creating the ACME folder"))?;
        self.make_pebble_certificate()?;
        let config = format!(
            r#"{{"pebble": {{"listenAddress": "{b}:{ACME_PORT}", "managementListenAddress": "{b}:{MANAGEMENT_PORT}", "certificate": "{c}", "privateKey": "{k}", "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}}}"#,
            b = self.bridge_address,
            c = path_str(&dir.join("pebble.pem")),
            k = path_str(&dir.join("pebble.key")),
        );
        write(&dir.join("pebble.json"), &config, 0o644)?;
        let log =
            fs::File::create(dir.join("pebble.log")).map_err(io_err("creating pebble.log"))?;
        let child = Command::new("pebble")
            .args(["-config", path_str(&dir.join("pebble.json"))])
            .args(["-dnsserver", &format!("{dns}:53")])
            // No random wait before validating, no nonces refused on purpose.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io_err("pebble.log"))?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(io_err("starting pebble"))?;
        write(&pid_file, &format!("{}\n", child.id()), 0o644)?;
        let up = wait_for_port(
            SocketAddr::from((self.bridge_address, MANAGEMENT_PORT)),
            Duration::from_secs(10),
        );
        if !up {
            return Err(LabError::Command {
                command: "pebble".into(),
                status: "not listening".into(),
                stderr: format!("see {}", path_str(&dir.join("pebble.log"))),
            });
        }
        // Pebble's root is new at every start: fetch it, never pin it.
        let root = run(
            "curl",
            &[
                "-sSf",
                "--noproxy",
                "*",
                "--cacert",
                path_str(&dir.join("ca.pem")),
                &format!("https://{}:{MANAGEMENT_PORT}/roots/0", self.bridge_address),
            ],
        )?;
        let ca = fs::read_to_string(dir.join("ca.pem")).map_err(io_err("reading the lab CA"))?;
        write(&dir.join("roots.pem"), &format!("{ca}{root}"), 0o644)?;
        out.report(Event::Message {
            text: format!(
                "lab: ACME CA (Pebble) on https://{}:{ACME_PORT}/dir, roots in {}",
                self.bridge_address,
                path_str(&dir.join("roots.pem"))
            ),
        });
        Ok(())
    }

    /// The lab CA and Pebble's certificate for the bridge address, made
    /// once.
    fn make_pebble_certificate(&self) -> Result<(), LabError> {
        let dir = self.acme_dir();
        if dir.join("pebble.pem").exists() && dir.join("ca.pem").exists() {
            return Ok(());
        }
        let fail = |e: rcgen::Error| LabError::Command {
            command: "making the lab CA".into(),
            status: "failed".into(),
            stderr: e.to_string(),
        };
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "foobar lab CA");
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_key = rcgen::KeyPair::generate().map_err(fail)?;
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).map_err(fail)?;
        let mut leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(fail)?;
        leaf.subject_alt_names
            .push(rcgen::SanType::IpAddress(std::net::IpAddr::V4(
                self.bridge_address,
            )));
        let leaf_key = rcgen::KeyPair::generate().map_err(fail)?;
        let leaf = leaf.signed_by(&leaf_key, &ca).map_err(fail)?;
        write(&dir.join("pebble.key"), &leaf_key.serialize_pem(), 0o600)?;
        write(&dir.join("pebble.pem"), &leaf.pem(), 0o644)?;
        write(&dir.join("ca.pem"), &ca.pem(), 0o644)?;
        Ok(())
    }

    pub(super) fn stop_pebble(&self) {
        if let Some(pid) = read_pid(&self.acme_dir().join("pid")) {
            if process_named(pid, "pebble") {
                let _ = run("kill", &[&pid.to_string()]);
            }
        }
    }
}
