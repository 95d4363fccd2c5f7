//! Where and how to reach each host: a host as parsed from `deployer.ini`,
//! completed by `~/.ssh/config` and the `[environment]` SSH keys.
//!
//! Paths from `deployer.ini` arrive with `~/` already expanded
//! ([`crate::config::load`]); nothing here parses host text again.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, HostSpec};
use crate::ssh_config::{SshConfigFile, StrictHostKeyChecking};

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
    /// Known-hosts files read after `known_hosts` (`GlobalKnownHostsFile`,
    /// by default `/etc/ssh/ssh_known_hosts` and `ssh_known_hosts2`); never
    /// written to.
    pub global_known_hosts: Vec<PathBuf>,
    /// Record accepted keys with hashed names (`HashKnownHosts`).
    pub hash_known_hosts: bool,
    /// Jump hosts to go through, first hop first (`ProxyJump`), each
    /// resolved and checked like a target of its own; empty to connect
    /// directly.
    pub jump: Vec<SshTarget>,
    /// `ServerAliveInterval` and `ServerAliveCountMax`: keepalives every
    /// interval, the host given up after that many unanswered; `None` for
    /// deployer's default.
    pub server_alive: Option<(Duration, u32)>,
}

/// How a host is reached.
// One value per configured host (at most a few thousand): the size of the
// SSH variant does not matter, and boxing it would only add noise.
#[allow(clippy::large_enum_variant)]
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

/// Inputs that come from this machine rather than from `deployer.ini`.
#[derive(Debug, Clone)]
pub struct LocalContext {
    /// The operator's home directory (`~`).
    pub home: PathBuf,
    /// The last-resort SSH user: as with OpenSSH, the account name of the
    /// real uid ([`crate::operator::login_name`]), never `$USER`.
    pub user: String,
    /// `--accept-new-host-keys` was given.
    pub accept_new: bool,
}

/// Work out how to reach every host of every stage. Precedence, as with
/// OpenSSH's command line over its config file: `user@`/`:port` in the host
/// entry, then the `[environment]` keys of `deployer.ini`, then
/// `~/.ssh/config`, then OpenSSH's defaults. Identity files accumulate, in
/// that order, followed by the default keys in `~/.ssh`.
pub fn resolve_targets(
    config: &Config,
    ssh_config: &SshConfigFile,
    local: &LocalContext,
) -> Vec<Target> {
    let mut targets = Vec::new();
    for stage in &config.stages {
        for host in &stage.hosts {
            let kind = if host.is_local() {
                TargetKind::Local
            } else {
                TargetKind::Ssh(resolve_one(host, config, ssh_config, local))
            };
            targets.push(Target {
                stage: stage.name.clone(),
                host: host.to_string(),
                kind,
            });
        }
    }
    targets
}

fn resolve_one(
    spec: &HostSpec,
    config: &Config,
    ssh_config: &SshConfigFile,
    local: &LocalContext,
) -> SshTarget {
    let (user, name, port) = (spec.user.as_deref(), spec.name.as_str(), spec.port);
    let s = ssh_config.resolve(name, &local.home);
    let opts = &config.ssh;
    let home = &local.home;
    let mut identity_files: Vec<PathBuf> = opts.identity_files.clone();
    identity_files.extend(s.identity_files.iter().cloned());
    for default in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        identity_files.push(home.join(".ssh").join(default));
    }
    let mut seen = std::collections::HashSet::new();
    identity_files.retain(|p| seen.insert(p.clone()));
    let known_hosts = match &opts.known_hosts {
        Some(p) => vec![p.clone()],
        None if !s.user_known_hosts_files.is_empty() => s.user_known_hosts_files.clone(),
        None => vec![
            home.join(".ssh/known_hosts"),
            home.join(".ssh/known_hosts2"),
        ],
    };
    let accept_new = local.accept_new
        || opts.accept_new_host_keys
        || matches!(
            s.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew | StrictHostKeyChecking::No)
        );
    SshTarget {
        alias: spec.to_string(),
        host_name: s.host_name.clone().unwrap_or_else(|| name.to_string()),
        port: port.or(opts.port).or(s.port).unwrap_or(22),
        user: user
            .map(str::to_string)
            .or_else(|| opts.user.clone())
            .or_else(|| s.user.clone())
            .unwrap_or_else(|| local.user.clone()),
        identity_files,
        use_agent: s.identities_only != Some(true),
        known_hosts,
        host_key_alias: s.host_key_alias.clone(),
        policy: if accept_new {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: s
            .connect_timeout
            .filter(|d| !d.is_zero())
            .unwrap_or(opts.connect_timeout),
        global_known_hosts: vec![
            PathBuf::from("/etc/ssh/ssh_known_hosts"),
            PathBuf::from("/etc/ssh/ssh_known_hosts2"),
        ],
        hash_known_hosts: false,
        jump: Vec::new(),
        server_alive: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn local() -> LocalContext {
        LocalContext {
            home: PathBuf::from("/home/op"),
            user: "op".into(),
            accept_new: false,
        }
    }

    fn config(text: &str) -> Config {
        crate::config::parse(Path::new("/srv/deployer.ini"), text).expect("valid config")
    }

    const BASE: &str = "[environment]\ndeb_packages = fastpath\nstages = test prod\n[stage:test]\nhosts = local web1\n[stage:prod]\nhosts = root@db1:2200\n";

    #[test]
    fn ssh_config_fills_in_what_deployer_ini_leaves_open() {
        let sc = SshConfigFile::parse(
            "Host web1\n  HostName 127.0.1.5\n  User alice\n  Port 2022\n  IdentityFile ~/.ssh/web\n  UserKnownHostsFile ~/kh\n  StrictHostKeyChecking accept-new\n  ConnectTimeout 3\nHost *\n  User nobody\n",
            Path::new("/home/op/.ssh/config"),
        )
        .unwrap();
        let t = resolve_targets(&config(BASE), &sc, &local());
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].kind, TargetKind::Local);
        let TargetKind::Ssh(web) = &t[1].kind else {
            panic!("ssh")
        };
        assert_eq!(web.host_name, "127.0.1.5");
        assert_eq!((web.user.as_str(), web.port), ("alice", 2022));
        assert_eq!(web.identity_files[0], PathBuf::from("/home/op/.ssh/web"));
        assert_eq!(web.known_hosts, vec![PathBuf::from("/home/op/kh")]);
        assert_eq!(web.policy, HostKeyPolicy::AcceptNew);
        assert_eq!(web.connect_timeout, Duration::from_secs(3));
        let TargetKind::Ssh(db) = &t[2].kind else {
            panic!("ssh")
        };
        assert_eq!(
            (db.user.as_str(), db.port, db.host_name.as_str()),
            ("root", 2200, "db1")
        );
        // Named as written, for messages, the history and the matrix.
        assert_eq!(t[2].host, "root@db1:2200");
        assert_eq!(db.alias, "root@db1:2200");
        assert_eq!(db.policy, HostKeyPolicy::Strict);
    }

    #[test]
    fn deployer_ini_wins_over_ssh_config() {
        let text = BASE.replace(
            "stages = test prod\n",
            "stages = test prod\nssh_user = deploy\nssh_port = 2200\nknown_hosts = /etc/deployer/known_hosts\n",
        );
        let sc =
            SshConfigFile::parse("Host *\n  User alice\n  Port 22\n", Path::new("/x")).unwrap();
        let t = resolve_targets(&config(&text), &sc, &local());
        let TargetKind::Ssh(web) = &t[1].kind else {
            panic!("ssh")
        };
        assert_eq!((web.user.as_str(), web.port), ("deploy", 2200));
        assert_eq!(
            web.known_hosts,
            vec![PathBuf::from("/etc/deployer/known_hosts")]
        );
    }

    #[test]
    fn defaults_without_any_ssh_config() {
        let t = resolve_targets(&config(BASE), &SshConfigFile::default(), &local());
        let TargetKind::Ssh(web) = &t[1].kind else {
            panic!("ssh")
        };
        assert_eq!((web.user.as_str(), web.port), ("op", 22));
        assert_eq!(
            web.known_hosts[0],
            PathBuf::from("/home/op/.ssh/known_hosts")
        );
        assert_eq!(
            web.identity_files[0],
            PathBuf::from("/home/op/.ssh/id_ed25519")
        );
        assert!(web.use_agent);
        assert_eq!(web.connect_timeout, Duration::from_secs(10));
    }
}
