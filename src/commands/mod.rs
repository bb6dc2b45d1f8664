//! One module per subcommand.

pub mod diagram;
pub mod dns_check;
pub mod init;
pub mod lab;
pub mod maintenance;
pub mod provision;
pub mod render;
pub mod restart;
