//! foobar: provision the one-server web stack (DNS, nginx, app server,
//! application files, MariaDB) over SSH.
//!
//! The flow is load (inventory, playbook) -> resolve (render every step
//! locally) -> facts (one batched remote call) -> plan (pure) -> apply ->
//! checks. ARCHITECTURE.md says which layer may use which.

pub mod app_kinds;
pub(crate) mod checks;
pub mod cli;
pub(crate) mod commands;
pub mod db_ca;
pub(crate) mod diagram;
pub mod digest;
pub(crate) mod engine;
pub mod error;
pub mod facts;
pub mod inventory;
pub(crate) mod lab;
pub mod plan;
pub mod playbook;
pub(crate) mod progress;
pub mod project;
pub mod render;
pub mod resolve;
pub mod roles;
pub mod secrets;
pub mod shell;
pub mod steps;
pub(crate) mod transport;
pub mod wheels;
pub(crate) mod windows;
