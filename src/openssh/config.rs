//! An ssh client configuration as a value ([`SshConfigFile`]), what
//! resolving one host yields ([`HostSettings`]) and the local facts it
//! needs ([`ResolveContext`]), and what can go wrong ([`SshConfigError`]).

use super::include::MAX_INCLUDE_DEPTH;
use super::options::Opt;
use super::values::{JumpHost, StrictHostKeyChecking};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The options deployer uses, as resolved for one host, after ssh's own
/// processing: `None` (or an empty list) means neither the config nor the
/// caller's command-line values set the option, and the caller applies
/// ssh's default.
///
/// `host_name` is the name ssh connects to (`HostName` with `%h`
/// expanded, lowercased unless it is an address); `host_key_alias` is
/// lowercased; paths have `~` and every `%` token and `${VAR}` ssh expands
/// in them replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// `HostName`: the real host to connect to (always set by
    /// [`SshConfigFile::resolve`]: the alias itself, lowercased, when the
    /// config names none).
    pub host_name: Option<String>,
    /// `User`: the remote login name (the caller's value when it gave one).
    pub user: Option<String>,
    /// `Port`: the remote TCP port (the caller's value when it gave one).
    pub port: Option<u16>,
    /// `IdentityFile`: every private key named by a matching block, in
    /// order, without duplicates (unlike other options, these accumulate).
    /// A file named twice is listed (and offered) once, at its first place,
    /// also when two lines spell it differently (`~/.ssh/k`, `%d/.ssh/k`),
    /// where ssh 9.2 would load and offer it twice.
    pub identity_files: Vec<PathBuf>,
    /// The files of `identity_files` that lines spelling them differently
    /// named more than once (see there).
    pub identity_files_repeated: Vec<PathBuf>,
    /// `UserKnownHostsFile`: the files to check host keys against; the
    /// first is where new keys are written. `none` is given as `/dev/null`,
    /// which behaves the same: nothing is trusted or recorded.
    pub user_known_hosts_files: Vec<PathBuf>,
    /// `GlobalKnownHostsFile`: read-only known_hosts files; `None` when not
    /// set (ssh's default is `/etc/ssh/ssh_known_hosts` and
    /// `ssh_known_hosts2`), `Some(vec![])` for `none`.
    pub global_known_hosts_files: Option<Vec<PathBuf>>,
    /// `StrictHostKeyChecking`.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// `HashKnownHosts`: write new known_hosts entries with hashed names.
    pub hash_known_hosts: Option<bool>,
    /// `ConnectTimeout`; zero (also for `none`) means ssh applies no
    /// timeout of its own.
    pub connect_timeout: Option<Duration>,
    /// `HostKeyAlias`: the name to look the host key up under instead of
    /// the host name, lowercased as ssh does.
    pub host_key_alias: Option<String>,
    /// `IdentitiesOnly`: use only the configured identity files, not every
    /// key the agent offers.
    pub identities_only: Option<bool>,
    /// `ServerAliveInterval` (zero: no keepalives).
    pub server_alive_interval: Option<Duration>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<u32>,
    /// `KexAlgorithms`, as written (`+`, `-` and `^` lists included):
    /// [`super::kex::assemble`] makes the list of it. Checked when
    /// resolving: the list it makes of [`super::kex::DEFAULT`] is not empty.
    pub kex_algorithms: Option<String>,
    /// `ProxyJump`: the jump hosts, first hop first; `Some(vec![])` for
    /// `none` (connect directly), `None` when not set.
    pub proxy_jump: Option<Vec<JumpHost>>,
}

/// The local facts ssh consults while resolving a host, and the values
/// given "on the command line" (which win over every config line, and are
/// what `Match user` sees).
#[derive(Debug, Clone, Default)]
pub struct ResolveContext {
    /// The operator's home directory: `~` and `%d`.
    pub home: PathBuf,
    /// The local account name (`%u`, `Match localuser`, and the remote
    /// user when nothing sets one).
    pub local_user: String,
    /// The local uid (`%i`).
    pub uid: u32,
    /// This machine's host name as `gethostname` gives it (`%l`; `%L` is
    /// its first label).
    pub local_host: String,
    /// Environment variables for `${VAR}`.
    pub env: BTreeMap<String, String>,
    /// A user that wins over `User` (ssh's `-l`/`user@`).
    pub user: Option<String>,
    /// A port that wins over `Port` (ssh's `-p`).
    pub port: Option<u16>,
    /// Jump hosts that win over `ProxyJump`/`ProxyCommand` (ssh's `-J`);
    /// `Some(vec![])` means connect directly.
    pub proxy_jump: Option<Vec<JumpHost>>,
}

/// A parsed ssh client config: the user's file, then the system's.
#[derive(Debug, Clone, Default)]
pub struct SshConfigFile {
    pub(crate) files: Vec<Vec<Item>>,
    pub(crate) warnings: Vec<SshConfigWarning>,
}

/// Something in the config that deployer ignores but the user should know
/// about, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfigWarning {
    /// The file the construct is in.
    pub path: PathBuf,
    /// Its 1-based line number.
    pub line: usize,
    /// What is ignored and why.
    pub message: String,
}

impl fmt::Display for SshConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// Why an ssh config could not be used, or a host cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    /// A line ssh itself would reject.
    #[error("{}:{}: {}", .path.display(), .line, .message)]
    Invalid {
        /// The file with the bad line.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// A config file exists but cannot be read.
    #[error("cannot read ssh config `{}`", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `Include` chains deeper than OpenSSH allows (probably a loop).
    #[error(
        "{}:{}: `Include` nests more than {MAX_INCLUDE_DEPTH} files deep (does a file include itself?)",
        .path.display(), .line
    )]
    IncludeTooDeep {
        /// The file with the innermost `Include`.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },
    /// A config file (other than one named explicitly, as with `ssh -F`)
    /// or a file it includes is owned by someone other than the user or
    /// root, or is writable by group or others: ssh refuses to read it.
    #[error(
        "bad owner or permissions on ssh config `{}` (owner uid {uid}, mode {mode:04o}): \
         ssh refuses a config file that is not owned by you or root, or that others (or a \
         group not your own) can write (and under sudo, deployer trusts only root's); \
         `chown` it to yourself (root, under sudo) and `chmod go-w` it",
        .path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// The host depends on something deployer does not do the way ssh
    /// would (`Match exec`, `ProxyCommand`, `CanonicalizeHostname`…), so
    /// it is refused rather than reached another way.
    #[error("host `{host}`: {}:{}: {message}", .path.display(), .line)]
    Unsupported {
        /// The host as typed.
        host: String,
        /// The file with the line.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
        /// What it is and why deployer refuses it.
        message: String,
    },
}

impl SshConfigError {
    /// True when the top-level file does not exist, which ssh treats as an
    /// empty config.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SshConfigError::Read { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound)
    }
}

impl SshConfigFile {
    /// Constructs deployer ignores, to show the user.
    pub fn warnings(&self) -> &[SshConfigWarning] {
        &self.warnings
    }
}

/// One meaningful line of a file, in order.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) kind: ItemKind,
    pub(crate) path: PathBuf,
    pub(crate) number: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    /// A `Host` line's patterns.
    Host(Vec<HostPattern>),
    /// A `Match` line's criteria, in order.
    Match(Vec<Criterion>),
    /// An `Include`: its arguments, and (after [`SshConfigFile::load`])
    /// the items of each file it names, in order.
    Include(Vec<String>, Vec<Vec<Item>>),
    /// An option.
    Set(Opt),
    /// A keyword ssh does not know (lowercased): refused unless an
    /// `IgnoreUnknown` obtained before it lists it.
    Unknown(String),
    /// The `${VAR}` names a line needs set (see `required_env`), checked
    /// whether or not the line applies.
    NeedsEnv(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct HostPattern {
    pub(crate) negated: bool,
    pub(crate) pattern: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Criterion {
    pub(crate) negated: bool,
    pub(crate) what: Criterium,
}

#[derive(Debug, Clone)]
pub(crate) enum Criterium {
    All,
    Host(String),
    OriginalHost(String),
    User(String),
    LocalUser(String),
    /// `exec`, `canonical`, `final`, `localnetwork`… : cannot be evaluated
    /// without running or resolving something.
    Unsupported(String),
}
