//! Where and how to reach each host: a host as parsed from `deployer.ini`,
//! completed by `~/.ssh/config` and the `[environment]` SSH keys.
//!
//! Paths from `deployer.ini` arrive with `~/` already expanded
//! ([`crate::config::load`]); nothing here parses host text again.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, DEFAULT_CONNECT_TIMEOUT};
use crate::ssh_config::{
    JumpHost, ResolveContext, SshConfigError, SshConfigFile, StrictHostKeyChecking,
};

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
    /// Private keys to try after the agent, in order, each once.
    pub identity_files: Vec<PathBuf>,
    /// The files of `identity_files` named more than once (by
    /// `ssh_identity_file` and `IdentityFile`, or by `IdentityFile` lines
    /// spelling them differently): still offered once, where ssh would
    /// offer one named by two spellings twice.
    pub identity_files_repeated: Vec<PathBuf>,
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
    /// interval, the host given up after that many unanswered (a zero
    /// interval: none, as ssh); `None` when the ssh config sets no interval,
    /// for deployer's default.
    pub server_alive: Option<(Duration, u32)>,
    /// The key exchange algorithms, best first, as OpenSSH names them:
    /// the list `KexAlgorithms` makes of OpenSSH 10's default
    /// ([`crate::openssh::kex`]); deployer offers those its SSH library
    /// runs.
    pub kex: Vec<String>,
    /// `max_startups`: connections at most starting at once to this
    /// target's server (`host_name` and `port`), see
    /// [`crate::transport::Reach`].
    pub max_startups: usize,
}

/// An SSH server as connections reach it: the jump hosts in between (a
/// private address behind one bastion is not the same one behind
/// another), the name to connect to (case-insensitive), and the port. What
/// sshd's `MaxStartups` counts is per server, and so are deployer's turns
/// to start connections ([`crate::transport::Starts`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Server {
    through: Vec<String>,
    host: String,
    port: u16,
}

impl SshTarget {
    /// The server this target's connections reach.
    pub fn server(&self) -> Server {
        Server {
            through: self.jump.iter().map(|j| j.alias.clone()).collect(),
            host: self.host_name.to_ascii_lowercase(),
            port: self.port,
        }
    }
}

#[cfg(test)]
impl SshTarget {
    /// A target for unit tests: `alias` at `host_name`, port 22, user
    /// `deploy`, no keys and no known_hosts files, strict, 1 s to connect,
    /// no jump hosts, `max_startups` 8. Tests change what they need with
    /// struct update syntax.
    pub(crate) fn example(alias: &str, host_name: &str) -> SshTarget {
        SshTarget {
            alias: alias.into(),
            host_name: host_name.into(),
            port: 22,
            user: "deploy".into(),
            identity_files: Vec::new(),
            identity_files_repeated: Vec::new(),
            use_agent: false,
            known_hosts: Vec::new(),
            host_key_alias: None,
            policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(1),
            global_known_hosts: Vec::new(),
            hash_known_hosts: false,
            jump: Vec::new(),
            server_alive: None,
            kex: crate::openssh::kex::DEFAULT
                .iter()
                .map(|n| n.to_string())
                .collect(),
            max_startups: 8,
        }
    }
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
    /// What the ssh config's tokens and `Match` lines see (uid, host name,
    /// environment); `None` for just `home` and `user`.
    pub resolve: Option<ResolveContext>,
}

/// Work out how to reach every host of every stage.
///
/// The one precedence, for every setting: the host entry (`user@`,
/// `:port`), then the `[stage:X]` and `[environment]` keys of
/// `deployer.ini`, then `~/.ssh/config`, then `/etc/ssh/ssh_config`, then
/// OpenSSH's defaults. Values from `deployer.ini` reach the ssh config as
/// ssh's command-line options would (`-l`, `-p`, `-J`): they win, and
/// `Match user` sees them. Identity files accumulate, in that order,
/// followed by the default keys in `~/.ssh`. Jump hosts are resolved like
/// targets of their own (their user and port come from the `ProxyJump`
/// hop and the ssh config, not from `ssh_user`/`ssh_port`).
///
/// # Errors
///
/// The first host that the ssh config refuses (a `Match exec`,
/// `ProxyCommand`, `CanonicalizeHostname`...) or jump hosts that loop.
pub fn resolve_targets(
    config: &Config,
    ssh_config: &SshConfigFile,
    local: &LocalContext,
) -> Result<Vec<Target>, SshConfigError> {
    let mut targets = Vec::new();
    for stage in &config.stages {
        for host in &stage.hosts {
            let kind = if host.is_local() {
                TargetKind::Local
            } else {
                let jump = stage
                    .proxy_jump
                    .clone()
                    .or_else(|| config.ssh.proxy_jump.clone());
                let query = Query {
                    alias: &host.name,
                    written: host.to_string(),
                    user: host.user.clone().or_else(|| config.ssh.user.clone()),
                    port: host.port.or(config.ssh.port),
                    jump,
                };
                TargetKind::Ssh(resolve_one(&query, config, ssh_config, local, 0)?)
            };
            targets.push(Target {
                stage: stage.name.clone(),
                host: host.to_string(),
                kind,
            });
        }
    }
    Ok(targets)
}

/// One host to resolve, with what the caller gives "on the command line".
struct Query<'a> {
    alias: &'a str,
    written: String,
    user: Option<String>,
    port: Option<u16>,
    jump: Option<Vec<JumpHost>>,
}

/// How many jump hosts a chain may have before it is taken for a loop.
const MAX_JUMP_DEPTH: usize = 8;

/// The context for the ssh config: the process's facts, from `local`.
fn base_context(local: &LocalContext) -> ResolveContext {
    local.resolve.clone().unwrap_or_else(|| ResolveContext {
        home: local.home.clone(),
        local_user: local.user.clone(),
        ..ResolveContext::default()
    })
}

fn resolve_one(
    query: &Query<'_>,
    config: &Config,
    ssh_config: &SshConfigFile,
    local: &LocalContext,
    depth: usize,
) -> Result<SshTarget, SshConfigError> {
    let mut context = base_context(local);
    context.user.clone_from(&query.user);
    context.port = query.port;
    context.proxy_jump.clone_from(&query.jump);
    let s = ssh_config.resolve(query.alias, &context)?;
    let opts = &config.ssh;
    let home = &local.home;
    let mut identity_files: Vec<PathBuf> = opts.identity_files.clone();
    identity_files.extend(s.identity_files.iter().cloned());
    let mut identity_files_repeated = s.identity_files_repeated.clone();
    let mut named = std::collections::HashSet::new();
    for p in &identity_files {
        if !named.insert(p) && !identity_files_repeated.contains(p) {
            identity_files_repeated.push(p.clone());
        }
    }
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
    let jump = match s.proxy_jump.as_deref() {
        None | Some([]) => Vec::new(),
        Some(hops) => {
            if depth >= MAX_JUMP_DEPTH {
                return Err(SshConfigError::Unsupported {
                    host: query.written.clone(),
                    path: PathBuf::from("ProxyJump"),
                    line: 0,
                    message: format!(
                        "the jump hosts lead through more than {MAX_JUMP_DEPTH} hops \
                         (does a jump host's `ProxyJump` lead back to itself?)"
                    ),
                });
            }
            // As ssh: the last hop is reached through the hops before it
            // (given to it as `-J`); the first hop through its own
            // `ProxyJump`, if it has one.
            let (last, before) = hops.split_last().expect("not empty");
            let hop = Query {
                alias: &last.host,
                written: last.to_string(),
                user: last.user.clone(),
                port: last.port,
                jump: (!before.is_empty()).then(|| before.to_vec()),
            };
            let mut hop = resolve_one(&hop, config, ssh_config, local, depth + 1)?;
            let mut chain = std::mem::take(&mut hop.jump);
            chain.push(hop);
            chain
        }
    };
    Ok(SshTarget {
        alias: query.written.clone(),
        host_name: s
            .host_name
            .clone()
            .unwrap_or_else(|| query.alias.to_string()),
        port: s.port.unwrap_or(22),
        user: s.user.clone().unwrap_or_else(|| local.user.clone()),
        identity_files,
        identity_files_repeated,
        use_agent: s.identities_only != Some(true),
        known_hosts,
        host_key_alias: s.host_key_alias.clone(),
        policy: if accept_new {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        connect_timeout: opts
            .connect_timeout
            .or(s.connect_timeout.filter(|d| !d.is_zero()))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        global_known_hosts: s.global_known_hosts_files.clone().unwrap_or_else(|| {
            vec![
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts2"),
            ]
        }),
        hash_known_hosts: s.hash_known_hosts.unwrap_or(false),
        jump,
        server_alive: s
            .server_alive_interval
            .map(|interval| (interval, s.server_alive_count_max.unwrap_or(3))),
        // checked when resolving: the list is not empty
        kex: crate::openssh::kex::assemble(
            s.kex_algorithms.as_deref(),
            crate::openssh::kex::DEFAULT,
        )
        .unwrap_or_default(),
        max_startups: opts.max_startups,
    })
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
            resolve: None,
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
        let t = resolve_targets(&config(BASE), &sc, &local()).unwrap();
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
        let t = resolve_targets(&config(&text), &sc, &local()).unwrap();
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
    fn a_key_file_named_twice_is_offered_once_and_marked() {
        // `ssh_identity_file` and `IdentityFile` naming the same file, and
        // `IdentityFile` naming a default key: each offered once, and only
        // the file named twice by the configuration is reported.
        let text = BASE.replace(
            "stages = test prod\n",
            "stages = test prod\nssh_identity_file = /home/op/.ssh/web\n",
        );
        let sc = SshConfigFile::parse(
            "Host web1\n  IdentityFile ~/.ssh/web\n  IdentityFile ~/.ssh/id_rsa\n",
            Path::new("/home/op/.ssh/config"),
        )
        .unwrap();
        let t = resolve_targets(&config(&text), &sc, &local()).unwrap();
        let TargetKind::Ssh(web) = &t[1].kind else {
            panic!("ssh")
        };
        let ssh = Path::new("/home/op/.ssh");
        assert_eq!(
            web.identity_files,
            ["web", "id_rsa", "id_ed25519", "id_ecdsa"].map(|k| ssh.join(k))
        );
        assert_eq!(web.identity_files_repeated, [ssh.join("web")]);
    }

    #[test]
    fn defaults_without_any_ssh_config() {
        let t = resolve_targets(&config(BASE), &SshConfigFile::default(), &local()).unwrap();
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

    fn ssh(targets: &[Target], index: usize) -> &SshTarget {
        match &targets[index].kind {
            TargetKind::Ssh(s) => s,
            TargetKind::Local => panic!("local"),
        }
    }

    #[test]
    fn connect_timeout_in_deployer_ini_wins_over_connect_timeout() {
        let sc = SshConfigFile::parse("Host *\n  ConnectTimeout 3\n", Path::new("/x")).unwrap();
        let text = BASE.replace(
            "stages = test prod\n",
            "stages = test prod\nconnect_timeout = 20\n",
        );
        let t = resolve_targets(&config(&text), &sc, &local()).unwrap();
        assert_eq!(ssh(&t, 1).connect_timeout, Duration::from_secs(20));
        let t = resolve_targets(&config(BASE), &sc, &local()).unwrap();
        assert_eq!(ssh(&t, 1).connect_timeout, Duration::from_secs(3));
    }

    #[test]
    fn jump_hosts_resolved_like_targets_first_hop_first() {
        let sc = SshConfigFile::parse(
            "\
Host web1
  HostName 10.0.0.5
  ProxyJump ops@bastion:2200,inner
Host inner
  HostName inner.internal
  User jumper
  ProxyJump elsewhere
Host bastion
  HostName bastion.example.org
  ProxyJump outer
Host outer
  Port 2022
Host db1
  ProxyCommand none
  ProxyJump ignored
",
            Path::new("/x"),
        )
        .unwrap();
        let t = resolve_targets(&config(BASE), &sc, &local()).unwrap();
        let web = ssh(&t, 1);
        let hops: Vec<(&str, &str, u16)> = web
            .jump
            .iter()
            .map(|j| (j.user.as_str(), j.host_name.as_str(), j.port))
            .collect();
        // bastion's own ProxyJump first; `inner` is reached through
        // `ops@bastion:2200`, so its own ProxyJump does not apply.
        assert_eq!(
            hops,
            [
                ("op", "outer", 2022),
                ("ops", "bastion.example.org", 2200),
                ("jumper", "inner.internal", 22)
            ]
        );
        assert!(web.jump.iter().all(|j| j.jump.is_empty()));
        assert_eq!(web.host_name, "10.0.0.5");
        // ProxyCommand none came first: direct.
        assert!(ssh(&t, 2).jump.is_empty());
    }

    #[test]
    fn ssh_proxy_jump_per_stage_wins_over_environment_and_ssh_config() {
        let sc = SshConfigFile::parse(
            "Host * !from-config\n  ProxyJump from-config\n",
            Path::new("/x"),
        )
        .unwrap();
        let text = BASE
            .replace(
                "stages = test prod\n",
                "stages = test prod\nssh_proxy_jump = env-bastion\n",
            )
            .replace(
                "hosts = root@db1:2200\n",
                "hosts = root@db1:2200\nssh_proxy_jump = none\n",
            );
        let t = resolve_targets(&config(&text), &sc, &local()).unwrap();
        let web = ssh(&t, 1);
        assert_eq!(web.jump.len(), 2, "{:?}", web.jump);
        // The jump host's own ProxyJump (from `Host *`) still applies to it.
        assert_eq!(web.jump[0].host_name, "from-config");
        assert_eq!(web.jump[1].host_name, "env-bastion");
        assert!(ssh(&t, 2).jump.is_empty());
    }

    #[test]
    fn jump_loops_are_refused() {
        let sc = SshConfigFile::parse(
            "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\nHost web1\n  ProxyJump a\n",
            Path::new("/x"),
        )
        .unwrap();
        let err = resolve_targets(&config(BASE), &sc, &local()).unwrap_err();
        assert!(err.to_string().contains("more than 8 hops"), "{err}");
    }

    #[test]
    fn keepalives_known_hosts_and_hashing_from_ssh_config() {
        let sc = SshConfigFile::parse(
            "Host web1\n  ServerAliveInterval 15\n  ServerAliveCountMax 4\n  GlobalKnownHostsFile /etc/kh\n  HashKnownHosts yes\nHost db1\n  ServerAliveInterval 0\n",
            Path::new("/x"),
        )
        .unwrap();
        let t = resolve_targets(&config(BASE), &sc, &local()).unwrap();
        let web = ssh(&t, 1);
        assert_eq!(web.server_alive, Some((Duration::from_secs(15), 4)));
        assert_eq!(web.global_known_hosts, vec![PathBuf::from("/etc/kh")]);
        assert!(web.hash_known_hosts);
        assert_eq!(ssh(&t, 2).server_alive, Some((Duration::ZERO, 3)));
        let t = resolve_targets(&config(BASE), &SshConfigFile::default(), &local()).unwrap();
        assert_eq!(ssh(&t, 1).server_alive, None);
        assert!(!ssh(&t, 1).hash_known_hosts);
    }

    #[test]
    fn refusals_name_the_host_file_and_line() {
        let sc = SshConfigFile::parse(
            "Host web1\n  ProxyCommand ssh -W %h:%p bastion\n",
            Path::new("/home/op/.ssh/config"),
        )
        .unwrap();
        let err = resolve_targets(&config(BASE), &sc, &local()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("host `web1`: /home/op/.ssh/config:2: `ProxyCommand ssh -W %h:%p bastion` is not supported"),
            "{err}"
        );
    }

    #[test]
    fn match_user_sees_the_user_from_deployer_ini() {
        let sc = SshConfigFile::parse("Match user root\n  Port 2022\n", Path::new("/x")).unwrap();
        let t = resolve_targets(&config(BASE), &sc, &local()).unwrap();
        assert_eq!(ssh(&t, 1).port, 22);
        // root@db1:2200: the entry's port wins, and Match user saw root.
        let text = BASE.replace("hosts = root@db1:2200", "hosts = root@db1");
        let t = resolve_targets(&config(&text), &sc, &local()).unwrap();
        assert_eq!(ssh(&t, 2).port, 2022);
    }
}
