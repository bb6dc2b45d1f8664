//! `foobar provision`: load and render everything (bad input stops here,
//! before any connection), let the engine converge every server, and turn
//! its outcomes into a summary and an exit code.

use std::time::Instant;

use super::converged::{self, CertPhase, ConvergeArgs};
use super::Input;
use crate::checks::Checks;
use crate::cli::Global;
use crate::engine::certs::AcmeJob;
use crate::engine::{self, ProvisionJob};
use crate::inventory::{Loaded, Role};
use crate::resolve;

pub type ProvisionArgs = ConvergeArgs;

pub async fn run(g: &Global, args: ProvisionArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let input = Input::load(g)?;
    let Input {
        inv,
        pb,
        secrets,
        renderer,
    } = &input;
    let mut certs = acme_job(inv).map(|job| CertPhase {
        job,
        web: Vec::new(),
    });
    let mut deferred = Vec::new();
    let mut jobs = Vec::new();
    for server in super::servers(g, inv, None)? {
        let target = engine::ssh_target(inv, server);
        let mut checks = Checks::resolve(renderer, pb, inv, server, secrets)?;
        if let Some(phase) = &mut certs {
            if server.has(Role::Web) {
                phase.web.push(target.clone());
            }
        }
        // Over HTTPS the checks wait for the certificate; a load balancer
        // that goes before the web servers (it serves the database
        // cluster to the app) checks them once they are done.
        if certs.is_some() || (server.has(Role::Lb) && inv.inventory.db_cluster()) {
            if let Some(c) = checks.take() {
                deferred.push((jobs.len(), c));
            }
        }
        jobs.push(ProvisionJob {
            target,
            steps: resolve::resolve(renderer, pb, inv, server, secrets)?,
            checks,
            replica: server.has(Role::DbReplica),
            wave: inv.inventory.wave(server),
            roll_back: None,
            behind: engine::targets_behind(inv, server),
        });
    }
    converged::converge(
        g,
        "provision",
        &input,
        &jobs,
        &args,
        started,
        certs,
        deferred,
    )
    .await
}

/// The ACME phase's settings, when the inventory asks for it.
/// `$XDG_DATA_HOME/foobar/acme-accounts`, else under `~/.local/share`.
fn acme_accounts() -> Option<std::path::PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".local/share"))
        })?;
    Some(data.join("foobar/acme-accounts"))
}

fn acme_job(inv: &Loaded) -> Option<AcmeJob> {
    let tls = inv.inventory.nginx.tls.as_ref()?;
    let acme = tls.acme.as_ref()?;
    let fqdn = inv.inventory.domain.fqdn();
    let (certificate, key) = tls.files(&fqdn);
    Some(AcmeJob {
        directory: acme.directory.to_string(),
        email: acme.email.as_ref().map(|e| e.to_string()),
        ca: acme.ca.as_ref().map(|p| inv.local_path(&p.0)),
        names: vec![fqdn, inv.inventory.domain.zone.to_string()],
        certificate,
        key,
        renew_days: i64::from(acme.renew_days.0),
        accounts: acme_accounts(),
    })
}
