//! deployer: take Debian packages through a pipeline of stages over SSH.
//!
//! The library owns everything; `main.rs` only parses arguments and calls
//! [`run`]. Pure modules (config, version, status, matrix, render, plan)
//! never touch the network or the terminal; I/O lives in `transport`,
//! `fanout` and the command modules.

pub mod apt;
pub mod cli;
pub mod command;
pub mod config;
pub mod error;
pub mod fanout;
pub mod history;
pub mod matrix;
pub mod package;
pub mod render;
pub mod ssh_config;
pub mod status;
pub mod transport;
pub mod version;

mod app;

pub use app::run;
pub use error::ExitStatus;
