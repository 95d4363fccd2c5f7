//! Where and how to reach each host: a host as written in `deployer.ini`,
//! completed by `~/.ssh/config` and the `[environment]` SSH keys.

use std::path::PathBuf;
use std::time::Duration;

/// What to do with a host key that no known_hosts file lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse the host (OpenSSH `StrictHostKeyChecking yes`, and `ask`,
    /// since deployer never prompts for keys).
    Strict,
    /// Record the key and go on (`accept-new`, `--accept-new-host-keys`).
    /// A changed key is refused whatever the policy.
    AcceptNew,
}

/// Everything needed to open an SSH connection to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The host as written in `deployer.ini` (for messages).
    pub alias: String,
    /// The name or address to connect to.
    pub host_name: String,
    /// TCP port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private keys to try after the agent, in order.
    pub identity_files: Vec<PathBuf>,
    /// Whether to ask the ssh-agent (off with `IdentitiesOnly yes`).
    pub use_agent: bool,
    /// known_hosts files to check; new keys are written to the first.
    pub known_hosts: Vec<PathBuf>,
    /// Name looked up in known_hosts instead of `host_name`.
    pub host_key_alias: Option<String>,
    /// Unknown-key policy.
    pub policy: HostKeyPolicy,
    /// TCP connect, handshake and authentication, together.
    pub connect_timeout: Duration,
}

/// How a host is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// This machine, without SSH.
    Local,
    /// Over SSH.
    Ssh(SshTarget),
}

/// One host of one stage, ready to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The stage the host belongs to.
    pub stage: String,
    /// The host as written in `deployer.ini`.
    pub host: String,
    /// How to reach it.
    pub kind: TargetKind,
}
