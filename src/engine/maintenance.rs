//! The maintenance page by hand (`foobar maintenance on|off|status`).

use crate::roles::{raise_flag, MAINTENANCE_FLAG};
use crate::shell::quote;
use crate::transport::{Connector, SshTarget, Transport, Unreachable};

use super::Engine;

/// The maintenance page by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceSwitch {
    On,
    Off,
    Status,
}

/// Switches (or reads) the maintenance page on every target; per server,
/// whether the page is on afterwards.
pub async fn maintenance<C: Connector>(
    engine: &Engine<'_, C>,
    targets: &[SshTarget],
    switch: MaintenanceSwitch,
) -> Vec<Result<bool, MaintenanceError>> {
    let flag = quote(MAINTENANCE_FLAG);
    let script = match switch {
        MaintenanceSwitch::On => raise_flag(MAINTENANCE_FLAG),
        MaintenanceSwitch::Off => format!("rm -f {flag}"),
        MaintenanceSwitch::Status => String::new(),
    } + &format!("\nif [ -e {flag} ]; then echo on; else echo off; fi\n");
    engine
        .fan_out(targets, |target| {
            let script = &script;
            async move {
                let transport = engine.connector.connect(target).await?;
                let out = transport.run(&format!("set -e\n{script}"), None).await;
                transport.close().await;
                let out = out?;
                if !out.success() {
                    return Err(MaintenanceError::Failed {
                        host: target.name.clone(),
                        message: out.stderr_text(),
                    });
                }
                Ok(out.stdout_text().trim() == "on")
            }
        })
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    #[error("{host}: {message}")]
    Failed { host: String, message: String },
}
