//! deployer: take Debian packages through a pipeline of stages over SSH.
//!
//! The library owns everything; `main.rs` only parses arguments and calls
//! [`run`]. Pure modules (config, version, status, matrix, render, plan,
//! apt) never touch the network or the terminal; I/O lives in `transport`,
//! `fleet` (which owns fan-out) and the command modules (`deploy`, `app`).

pub mod apt;
pub mod badge;
pub mod badges;
pub mod changelog;
pub mod cli;
pub mod command;
pub mod config;
pub mod console;
pub mod deploy;
pub mod detach;
pub mod error;
pub mod fleet;
pub mod freeze;
pub mod history;
pub mod hostpath;
pub mod init;
pub mod interrupt;
pub mod known_hosts;
pub mod lines;
pub mod local_file;
pub mod lock;
pub mod matrix;
pub mod notify;
pub mod operator;
pub mod package;
pub mod plan;
pub mod render;
pub mod service;
pub mod ssh_config;
pub mod status;
pub mod sudo;
pub(crate) mod suggest;
pub mod text;
pub mod transport;
pub mod version;
pub mod versions;

pub(crate) mod app;

pub use app::completions::{complete_from_env, write_man, write_script};
pub use app::run;
pub use error::ExitStatus;

/// How a test skips: the unit tests here and the integration tests in
/// `tests/e2e/` (which compile the same file).
#[cfg(test)]
pub(crate) mod test_skip;
