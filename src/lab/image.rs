//! The lab's base image (debootstrap, built once and shared) and its
//! SSH key and secrets.

use super::*;

impl Lab {
    pub(super) fn ensure_image(&self, out: &dyn Reporter) -> Result<(), LabError> {
        let image = self.image_dir();
        if image.join(".foobar-image").exists() {
            return Ok(());
        }
        if let Some(parent) = image.parent() {
            fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
        }
        // Labs come up side by side (the test suite's do): one builds the
        // shared image, the others wait for it and use it.
        let lock = fs::File::create(image.with_extension("lock"))
            .map_err(io_err("creating the image's lock"))?;
        lock.lock()
            .map_err(io_err("waiting for the image's lock"))?;
        if image.join(".foobar-image").exists() {
            return Ok(());
        }
        // A half-built image from a killed run is thrown away.
        let tmp = image.with_extension("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err("removing a half-built image"))?;
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

    pub(super) fn ensure_key_and_secrets(&self) -> Result<(), LabError> {
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
        fs::create_dir_all(self.dir.join("secrets")).map_err(io_err("creating secrets"))?;
        fs::set_permissions(self.dir.join("secrets"), fs::Permissions::from_mode(0o700))
            .map_err(io_err("securing secrets"))?;
        // 24 characters each; the zone's TSIG key 44, which BIND reads as
        // base64 (33 bytes); VRRP's 8, all keepalived reads.
        for (name, len) in [
            ("mysql_password", 24),
            ("replication_password", 24),
            ("app_secret_key", 24),
            ("transfer_key", 44),
            ("vrrp_password", 8),
            ("backup_password", 32),
        ] {
            let secret = self.dir.join("secrets").join(name);
            if !secret.exists() {
                write(&secret, &format!("{}\n", random_token(len)?), 0o600)?;
            }
        }
        Ok(())
    }
}
