//! One module per subcommand.

mod converged;
pub mod deploy;
pub mod diagram;
pub mod dns_check;
pub mod init;
pub mod lab;
pub mod logs;
pub mod maintenance;
pub mod provision;
pub mod releases;
pub mod render;
pub mod restart;
pub mod rollback;
pub mod status;
