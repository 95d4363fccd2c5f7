//! deployer: take Debian packages through a pipeline of stages over SSH.
//!
//! The library owns everything; `main.rs` only parses the command line
//! ([`cli::Cli::from_env`]) and calls [`run`]. The modules, by layer:
//!
//! - The commands: [`cli`] (the clap definitions, nothing else), `app`
//!   (glue, one module per command: load the configuration, reach the
//!   hosts, print, choose the exit status) and [`deploy`] (deploys,
//!   rollbacks and promotions: request, preflight, rollout and rollback,
//!   aftermath, report).
//! - The pure core, values in and values out, never a file, a socket or a
//!   terminal: [`version`] and [`package`] (Debian's rules for versions and
//!   package names), [`status`] (what dpkg says), [`matrix`] and [`render`]
//!   (the version matrix, written into any writer), [`plan`] (what a deploy
//!   will do), [`apt`], [`changelog`] and [`versions`] (apt's and dpkg's
//!   words), [`badge`] and [`badges`] (badges as SVG, and which ones the
//!   pipeline has; `badges::publish` writes them), [`init`] (the text
//!   `deployer init` writes), [`openssh`] (OpenSSH's rules: ssh_config,
//!   tokens, known_hosts),
//!   [`command`] (remote command lines, quoted), the host-side records and
//!   their commands ([`freeze`], [`lock`], [`detach`], [`service`],
//!   [`hostpath`] for every root write, [`debcache`] for the `.deb` cache
//!   on the hosts), and
//!   [`text`], [`lines`], `suggest` and [`error`]. These build commands;
//!   they never run them.
//! - The edges: [`config`] (`parse` is pure; `locate` and `load` find and
//!   read the file), [`ssh_config`] (OpenSSH's client configuration, read
//!   with its permission checks), [`transport`] (how commands reach a
//!   host: SSH or `local`), [`fleet`] (the hosts of a run, one session
//!   each, and the fan-out), [`sudo`] (the sudo probe), [`history`] (the
//!   audit log; its format is pure), [`local_file`] (files written on this
//!   machine), [`operator`] (who runs deployer), [`notify`] (the team's
//!   webhook and command), [`interrupt`] (signals), [`sys`] (the system calls nothing
//!   safe offers) and [`console`] (where words go: stdout, stderr, the
//!   prompt, the "waiting for" line).

// `unsafe` is allowed in two modules only: `sys` (the system calls
// nothing safe offers) and `transport::ssh::ext` (the libssh2 calls the
// `ssh2` crate lacks); each block there says why it is sound.
#![deny(unsafe_code)]

pub mod alerts;
pub mod approval;
pub mod apt;
pub mod badge;
pub mod badges;
pub mod changelog;
pub mod cli;
pub mod command;
pub mod config;
pub mod console;
pub mod debcache;
pub mod deploy;
pub mod detach;
pub mod error;
pub mod fleet;
pub mod freeze;
pub mod gate;
pub mod history;
pub mod hostpath;
pub mod init;
pub mod interrupt;
pub mod lines;
pub mod local_file;
pub mod lock;
pub mod manual;
pub mod matrix;
pub mod notify;
pub mod openssh;
pub mod operator;
pub mod package;
pub mod plan;
pub mod render;
pub mod service;
pub mod ssh_config;
pub mod status;
pub mod sudo;
pub(crate) mod suggest;
pub mod sys;
pub mod text;
pub mod timeline;
pub mod transport;
pub mod version;
pub mod versions;
pub mod window;

pub(crate) mod app;

pub use app::completions::{complete_from_env, write_man, write_script};
pub use app::run;
pub use error::ExitStatus;

/// How a test skips: the unit tests here and the integration tests in
/// `tests/e2e/` (which compile the same file).
#[cfg(test)]
pub(crate) mod test_skip;
