//! The replication check of a MariaDB replica, over the server's own
//! connection: both threads running, how far behind, the last error.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::CheckResult;
use crate::progress::{Event, Reporter, StepStatus};
use crate::transport::{Transport, Unreachable};

/// A replica's state as `SHOW SLAVE STATUS` tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicationState {
    pub primary: String,
    pub io_running: String,
    pub sql_running: String,
    /// None when replication is stopped (MariaDB shows NULL).
    pub seconds_behind: Option<u64>,
    pub last_error: String,
}

impl ReplicationState {
    pub fn parse(status: &str) -> Self {
        let mut s = Self::default();
        for line in status.lines() {
            let Some((key, value)) = line.trim_start().split_once(':') else {
                continue;
            };
            let value = value.trim().to_string();
            match key {
                "Master_Host" => s.primary = value,
                "Slave_IO_Running" => s.io_running = value,
                "Slave_SQL_Running" => s.sql_running = value,
                "Seconds_Behind_Master" => s.seconds_behind = value.parse().ok(),
                "Last_IO_Error" | "Last_SQL_Error" if !value.is_empty() => s.last_error = value,
                _ => {}
            }
        }
        s
    }

    pub fn healthy(&self) -> bool {
        self.io_running == "Yes" && self.sql_running == "Yes" && self.seconds_behind.is_some()
    }

    pub fn describe(&self) -> String {
        if self.primary.is_empty() {
            return "not replicating: no primary is set".into();
        }
        let mut s = format!(
            "from {}: IO {}, SQL {}, {}",
            self.primary,
            self.io_running,
            self.sql_running,
            match self.seconds_behind {
                Some(n) => format!("{n} s behind"),
                None => "lag unknown (stopped)".into(),
            }
        );
        if !self.last_error.is_empty() {
            s.push_str(&format!("; last error: {}", self.last_error));
        }
        s
    }
}

/// How long a replica may take to reconnect (after a restart of it or of
/// the primary) before the check fails.
const RECONNECT: Duration = Duration::from_secs(10);

/// Asks the replica how replication goes and reports it as a check.
pub async fn check<T: Transport>(
    transport: &T,
    out: &dyn Reporter,
) -> Result<CheckResult, Unreachable> {
    let host = transport.host().to_string();
    let deadline = Instant::now() + RECONNECT;
    let state = loop {
        let status = transport
            .run("mysql -e 'SHOW SLAVE STATUS\\G'", None)
            .await?
            .stdout_text();
        let state = ReplicationState::parse(&status);
        if state.healthy() || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let passed = state.healthy();
    let detail = state.describe();
    out.report(Event::StepFinished {
        host: host.clone(),
        step: "check: replication from the primary".into(),
        status: if passed {
            StepStatus::Ok
        } else {
            StepStatus::Failed
        },
        detail: Some(detail.clone()),
    });
    Ok(CheckResult {
        host,
        check: "replication from the primary".into(),
        hop: "database replica (MariaDB)".into(),
        passed,
        detail,
        logs: None,
        replication: Some(state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_show_slave_status() {
        let out = "*************************** 1. row ***************************\n\
                   \x20               Slave_IO_State: Waiting for master to send event\n\
                   \x20                  Master_Host: 10.249.0.31\n\
                   \x20            Slave_IO_Running: Yes\n\
                   \x20           Slave_SQL_Running: Yes\n\
                   \x20               Last_SQL_Error: \n\
                   \x20        Seconds_Behind_Master: 0\n";
        let s = ReplicationState::parse(out);
        assert!(s.healthy(), "{s:?}");
        assert_eq!(
            s.describe(),
            "from 10.249.0.31: IO Yes, SQL Yes, 0 s behind"
        );
        let stopped = out
            .replace("Slave_SQL_Running: Yes", "Slave_SQL_Running: No")
            .replace("Seconds_Behind_Master: 0", "Seconds_Behind_Master: NULL")
            .replace("Last_SQL_Error: ", "Last_SQL_Error: Duplicate entry");
        let s = ReplicationState::parse(&stopped);
        assert!(!s.healthy());
        assert!(
            s.describe().contains("last error: Duplicate entry"),
            "{}",
            s.describe()
        );
        assert!(!ReplicationState::parse("").healthy());
    }
}
