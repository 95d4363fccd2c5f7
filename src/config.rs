//! `deployer.ini`: locating the file and turning its text into a [`Config`].
//! STUB: the types are the contract; parsing is replaced by the config work.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::package::PackageName;

/// File names looked for, in this order, in each directory.
pub const FILE_NAMES: [&str; 2] = ["deployer.ini", ".deployer.ini"];

/// The whole pipeline description read from `deployer.ini`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from.
    pub path: PathBuf,
    /// `badges_path`: where `refresh_badges` writes SVG badges.
    pub badges_path: Option<PathBuf>,
    /// `deb_packages`: the packages managed, in display order.
    pub packages: Vec<PackageName>,
    /// `stages`: the stages, least critical first, each with its hosts.
    pub stages: Vec<Stage>,
    /// SSH connection settings shared by every host.
    pub ssh: SshOptions,
    /// `parallelism`: how many hosts are contacted at once (default 64).
    pub parallelism: usize,
    /// `history_file`: the local audit log (default `deployer-history.jsonl`
    /// beside the configuration file).
    pub history_file: PathBuf,
    /// `batch_size`: after the first host, how many hosts are changed at once.
    pub batch_size: usize,
    /// `rollback_on_failure`: put changed hosts back when a rollout fails.
    pub rollback_on_failure: bool,
    /// `[package:NAME] health_check`: a command run on each host after install.
    pub health_checks: BTreeMap<PackageName, String>,
    /// Harmless oddities found while reading (unknown keys...), already
    /// worded for the operator.
    pub warnings: Vec<String>,
}

/// One stage of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Name as written in `stages`.
    pub name: String,
    /// Hosts as written in `[stage:NAME] hosts`; `local` means this machine.
    pub hosts: Vec<String>,
    /// Critical stages ask for confirmation before a deploy (default: the
    /// last stage only; `[stage:NAME] critical = yes|no` overrides).
    pub critical: bool,
}

/// SSH settings from `[environment]`; each is optional and falls back to
/// `~/.ssh/config` and then to OpenSSH's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// `ssh_user`: login user when `~/.ssh/config` names none.
    pub user: Option<String>,
    /// `ssh_port`: port when `~/.ssh/config` names none.
    pub port: Option<u16>,
    /// `ssh_identity_file`: private keys tried after the agent.
    pub identity_files: Vec<PathBuf>,
    /// `ssh_config`: the OpenSSH client config to read (default `~/.ssh/config`).
    pub ssh_config: Option<PathBuf>,
    /// `known_hosts`: the known hosts file (default `~/.ssh/known_hosts`).
    pub known_hosts: Option<PathBuf>,
    /// `connect_timeout`: TCP connect plus SSH handshake and auth (default 10 s).
    pub connect_timeout: Duration,
    /// `command_timeout`: a read-only command such as `dpkg-query` (default 30 s).
    pub command_timeout: Duration,
    /// `deploy_timeout`: one host's `apt-get` run (default 600 s).
    pub deploy_timeout: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            user: None,
            port: None,
            identity_files: Vec::new(),
            ssh_config: None,
            known_hosts: None,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            deploy_timeout: Duration::from_secs(600),
        }
    }
}

/// A configuration problem, with enough context to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// The file at fault, when there is one.
    pub path: Option<PathBuf>,
    /// 1-based line at fault, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What would be accepted, or how to fix it.
    pub note: Option<String>,
}

/// Find the configuration file: `explicit` (`--config`), else `env`
/// (`DEPLOYER_CONFIG`), else the nearest [`FILE_NAMES`] from `cwd` up to `/`.
pub fn locate(
    explicit: Option<&Path>,
    env: Option<OsString>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    let _ = (explicit, env, cwd);
    unimplemented!("config work")
}

/// Read and parse the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let _ = path;
    unimplemented!("config work")
}

/// Parse configuration text; `path` is used for messages and defaults only.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let _ = (path, text);
    unimplemented!("config work")
}
