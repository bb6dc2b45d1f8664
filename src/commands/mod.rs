//! One module per subcommand.

pub mod lab;
pub mod provision;
pub mod render;
