//! foobar: provision a web stack (DNS, nginx, app server, application
//! files, MariaDB) over SSH, on one server or on several (load balancers,
//! app servers, a database cluster, two nameservers).
//!
//! The flow is load (inventory, playbook) -> resolve (render every step
//! locally) -> facts (one batched remote call) -> plan (pure) -> apply ->
//! checks. ARCHITECTURE.md says which layer may use which.

pub mod app_kinds;
pub mod backup_keys;
pub(crate) mod checks;
pub mod cli;
pub mod code_base;
pub(crate) mod commands;
pub mod db_ca;
pub(crate) mod diagram;
pub mod digest;
pub(crate) mod engine;
pub mod error;
pub mod facts;
pub mod inventory;
pub(crate) mod lab;
pub mod local_file;
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
