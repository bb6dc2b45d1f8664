//! foobar: provision the one-server web stack (DNS, nginx, app server,
//! application files, MariaDB) over SSH.
//!
//! The flow is load (inventory, playbook) -> resolve (render every file
//! locally) -> facts (one batched remote call) -> plan (pure) -> apply.

pub mod apply;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod dns;
pub mod error;
pub mod facts;
pub mod http;
pub mod inventory;
pub mod lab;
pub mod lock;
pub mod maintenance;
pub mod plan;
pub mod playbook;
pub mod progress;
pub mod render;
pub mod secrets;
pub mod shell;
pub mod transport;
