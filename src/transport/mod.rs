//! How commands reach a host: the [`Connection`] trait, and the two ways to
//! get one: [`ssh`] (the `ssh2` crate) and [`local`] (this machine, for a
//! host written as `local`).
//!
//! A connection is opened once per host per run and can run several
//! commands, feed them input (uploads) and keep one open (a held lock).
//! Everything here is I/O; what the commands mean is decided elsewhere.

#[cfg(test)]
pub mod fake;
pub mod local;
pub mod ssh;
mod target;

use std::time::Duration;

use crate::command::RemoteCommand;
use crate::error::HostError;

pub use target::{resolve_targets, HostKeyPolicy, LocalContext, SshTarget, Target, TargetKind};

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status (`-1` when the host reported none, e.g. killed by a signal).
    pub status: i32,
    /// Everything written to stdout, lossily decoded.
    pub stdout: String,
    /// Everything written to stderr, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Receives each chunk of a command's output as it arrives.
pub type OutputSink<'a> = &'a mut dyn FnMut(Stream, &[u8]);

/// How to run one command.
pub struct Exec<'a> {
    /// The command line.
    pub command: &'a RemoteCommand,
    /// Give up (and report a timeout) after this long.
    pub timeout: Duration,
    /// Bytes written to the command's stdin, then end of file.
    pub stdin: Option<&'a [u8]>,
    /// Called with each chunk of output as it arrives.
    pub on_output: Option<OutputSink<'a>>,
}

impl<'a> Exec<'a> {
    /// Run `command`, collecting its output, within `timeout`.
    pub fn new(command: &'a RemoteCommand, timeout: Duration) -> Self {
        Exec {
            command,
            timeout,
            stdin: None,
            on_output: None,
        }
    }
}

/// An open line to one host.
pub trait Connection: Send {
    /// Run a command to completion (or until its timeout).
    fn exec(&mut self, exec: Exec<'_>) -> Result<Output, HostError>;

    /// Start `command` and keep it running for as long as this connection
    /// lives, returning the first line it prints on stdout. Used for locks:
    /// the remote side holds the lock while its stdin stays open, so the lock
    /// goes away by itself when deployer exits or the connection drops.
    fn hold(&mut self, command: &RemoteCommand, timeout: Duration) -> Result<String, HostError>;

    /// Stop everything started by [`Connection::hold`].
    fn release(&mut self);
}

/// Open a connection to `target`.
pub fn connect(target: &Target) -> Result<Box<dyn Connection>, HostError> {
    match &target.kind {
        TargetKind::Local => Ok(Box::new(local::LocalConnection::new())),
        TargetKind::Ssh(ssh) => Ok(Box::new(ssh::SshConnection::open(ssh)?)),
    }
}

/// Run `command` on `conn` and return its output, whatever its status.
pub fn run(
    conn: &mut dyn Connection,
    command: &RemoteCommand,
    timeout: Duration,
) -> Result<Output, HostError> {
    conn.exec(Exec::new(command, timeout))
}

/// Whether `stderr` says that `sudo -n` wanted a password.
pub fn sudo_wants_password(stderr: &str) -> bool {
    stderr.contains("sudo: a password is required")
        || stderr.contains("sudo: a terminal is required")
}
