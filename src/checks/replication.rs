//! The replication check of a MariaDB replica, over the server's own
//! connection: both threads running, how far behind, the last error.

use std::time::{Duration, Instant};

use super::CheckResult;
use crate::progress::{Event, Reporter, StepStatus};
use crate::steps::replica::{SlaveStatus, SHOW_STATUS};
use crate::transport::{Transport, Unreachable};

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
        let status = transport.run(SHOW_STATUS, None).await?.stdout_text();
        let state = SlaveStatus::parse(&status);
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
        let s = SlaveStatus::parse(out);
        assert!(s.healthy(), "{s:?}");
        assert_eq!(
            s.describe(),
            "from 10.249.0.31: IO Yes, SQL Yes, 0 s behind"
        );
        let stopped = out
            .replace("Slave_SQL_Running: Yes", "Slave_SQL_Running: No")
            .replace("Seconds_Behind_Master: 0", "Seconds_Behind_Master: NULL")
            .replace("Last_SQL_Error: ", "Last_SQL_Error: Duplicate entry");
        let s = SlaveStatus::parse(&stopped);
        assert!(!s.healthy());
        assert!(
            s.describe().contains("last error: Duplicate entry"),
            "{}",
            s.describe()
        );
        assert!(!SlaveStatus::parse("").healthy());
    }
}
