//! OpenSSH client configuration (`~/.ssh/config`, then
//! `/etc/ssh/ssh_config`): parse, and resolve the options of one host the
//! way `ssh -G` does.
//!
//! This module owns the meaning of the ssh_config(5) options deployer
//! honours (`HostName`, `User`, `Port`, `IdentityFile`, `UserKnownHostsFile`,
//! `GlobalKnownHostsFile`, `StrictHostKeyChecking`, `HashKnownHosts`,
//! `ConnectTimeout`, `HostKeyAlias`, `IdentitiesOnly`, `ServerAliveInterval`,
//! `ServerAliveCountMax`, `ProxyJump`), and of the options that would change
//! where ssh connects, which it refuses rather than ignores (`ProxyCommand`,
//! `CanonicalizeHostname`, `Match` criteria it cannot evaluate). It follows
//! OpenSSH 9.2's readconf.c and ssh.c: keywords are case-insensitive, lines
//! apply under the last `Host` or `Match` line that matched, the first
//! value obtained for an option wins (the user's file is read before the
//! system file), `Host` patterns match the name as typed case-sensitively,
//! `Match host`/`originalhost` case-insensitively, and `%` tokens and
//! `${VAR}` are expanded in the options where ssh expands them.
//!
//! Parsing and resolving are pure: the local facts ssh would look up (user,
//! uid, host name, environment) arrive in a [`ResolveContext`]. Only
//! [`SshConfigFile::load`] reads files (the config, what it `Include`s, and
//! `/etc/services` for `Port ssh`) and checks their owner and permissions
//! as ssh does (with Debian's allowance for a group of the user's own).
//!
//! Keywords are those of OpenSSH 9.2's client as Debian builds it: an
//! unknown one refuses the configuration, as ssh's "Bad configuration
//! option" does, unless an `IgnoreUnknown` obtained before it lists it;
//! deprecated ones are accepted silently, unsupported ones with a warning.
//! The values of every keyword are checked as ssh checks them when it reads
//! a line, whether or not the line applies to the host (yes/no flags and
//! ssh's other value tables, numbers, times, ports, log levels, algorithm
//! names as `ssh -Q` lists them, forwardings, extra arguments…); the few
//! checks ssh makes only on the value it obtained (`ConnectionAttempts`,
//! `HostKeyAlgorithms`, a `ProxyJump` looping to the host itself) are made
//! when resolving, and `CanonicalizePermittedCNAMEs` refuses the host, as
//! following CNAMEs would change where it connects.
//!
//! It must not connect anywhere or run anything: a `Match exec` is
//! refused, never run or guessed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How deep `Include` may nest, as in OpenSSH.
const MAX_INCLUDE_DEPTH: usize = 16;

/// The system-wide client configuration, read after the user's.
pub const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

/// Every keyword OpenSSH 9.2's client knows (lowercase, sorted): its own,
/// the obsolete aliases it still maps to an option, the deprecated and
/// unsupported ones it reads and discards, and the ones Debian's build
/// adds (`GSSAPIKeyExchange`…, `UseBlacklistedKeys`, and the
/// `ServerAliveInterval` aliases `ProtocolKeepAlives` and `SetupTimeOut`). Any other keyword makes ssh
/// refuse the file ("Bad configuration option") unless `IgnoreUnknown`
/// lists it.
const KNOWN_KEYWORDS: &[&str] = &[
    "addkeystoagent",
    "addressfamily",
    "afstokenpassing",
    "batchmode",
    "bindaddress",
    "bindinterface",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "casignaturealgorithms",
    "certificatefile",
    "challengeresponseauthentication",
    "checkhostip",
    "cipher",
    "ciphers",
    "clearallforwardings",
    "compression",
    "compressionlevel",
    "connectionattempts",
    "connecttimeout",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dsaauthentication",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fallbacktorsh",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "globalknownhostsfile",
    "globalknownhostsfile2",
    "gssapiauthentication",
    "gssapiclientidentity",
    "gssapidelegatecredentials",
    "gssapikexalgorithms",
    "gssapikeyexchange",
    "gssapirenewalforcesrekey",
    "gssapiserveridentity",
    "gssapitrustdns",
    "hashknownhosts",
    "host",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostbasedkeytypes",
    "hostkeyalgorithms",
    "hostkeyalias",
    "hostname",
    "identitiesonly",
    "identityagent",
    "identityfile",
    "identityfile2",
    "ignoreunknown",
    "include",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "keepalive",
    "kerberosauthentication",
    "kerberostgtpassing",
    "kexalgorithms",
    "knownhostscommand",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "macs",
    "match",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "pkcs11provider",
    "port",
    "preferredauthentications",
    "protocol",
    "protocolkeepalives",
    "proxycommand",
    "proxyjump",
    "proxyusefdpass",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "pubkeyauthentication",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "requiredrsasize",
    "revokedhostkeys",
    "rhostsauthentication",
    "rhostsrsaauthentication",
    "rsaauthentication",
    "securitykeyprovider",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "sessiontype",
    "setenv",
    "setuptimeout",
    "skeyauthentication",
    "smartcarddevice",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "stricthostkeychecking",
    "syslogfacility",
    "tcpkeepalive",
    "tisauthentication",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    // Debian's build still reads and discards this one.
    "useblacklistedkeys",
    "useprivilegedport",
    "user",
    "userknownhostsfile",
    "userknownhostsfile2",
    "useroaming",
    "usersh",
    "verifyhostkeydns",
    "visualhostkey",
    "xauthlocation",
];

/// Keywords ssh accepts but says it does not support ("Unsupported
/// option"), and then ignores: deployer does the same, with a warning.
const UNSUPPORTED_KEYWORDS: &[&str] = &[
    "afstokenpassing",
    "compressionlevel",
    "kerberosauthentication",
    "kerberostgtpassing",
    "rhostsrsaauthentication",
    "rsaauthentication",
];

/// What `StrictHostKeyChecking` says to do with unknown or changed host
/// keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// `yes`/`true`: never add keys; refuse unknown hosts.
    Yes,
    /// `accept-new`: add keys of new hosts, refuse changed keys.
    AcceptNew,
    /// `no`/`false`/`off`: add new keys and connect even if a key changed.
    No,
    /// `ask`: ask the user (ssh's default).
    Ask,
}

/// One hop of `ProxyJump`: `[user@]host[:port]` or
/// `ssh://[user@]host[:port]`, as written (the host is resolved through
/// the ssh config again, like a target of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    /// The login user before `@`, if any.
    pub user: Option<String>,
    /// The host (alias) as written, brackets of an IPv6 literal removed.
    pub host: String,
    /// The port after `:`, if any.
    pub port: Option<u16>,
}

impl fmt::Display for JumpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

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

impl ResolveContext {
    /// The facts of this process: `home`, the account `local_user`, the
    /// uid, `gethostname` and the environment.
    pub fn of_this_process(home: &Path, local_user: &str) -> ResolveContext {
        ResolveContext {
            home: home.to_path_buf(),
            local_user: local_user.to_string(),
            uid: rustix::process::getuid().as_raw(),
            local_host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            env: std::env::vars().collect(),
            user: None,
            port: None,
            proxy_jump: None,
        }
    }
}

/// A parsed ssh client config: the user's file, then the system's.
#[derive(Debug, Clone, Default)]
pub struct SshConfigFile {
    files: Vec<Vec<Item>>,
    warnings: Vec<SshConfigWarning>,
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

/// One meaningful line of a file, in order.
#[derive(Debug, Clone)]
struct Item {
    kind: ItemKind,
    path: PathBuf,
    number: usize,
}

#[derive(Debug, Clone)]
enum ItemKind {
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
struct HostPattern {
    negated: bool,
    pattern: String,
}

#[derive(Debug, Clone)]
struct Criterion {
    negated: bool,
    what: Criterium,
}

#[derive(Debug, Clone)]
enum Criterium {
    All,
    Host(String),
    OriginalHost(String),
    User(String),
    LocalUser(String),
    /// `exec`, `canonical`, `final`, `localnetwork`… : cannot be evaluated
    /// without running or resolving something.
    Unsupported(String),
}

#[derive(Debug, Clone)]
enum Opt {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    UserKnownHostsFiles(Vec<String>),
    GlobalKnownHostsFiles(Vec<String>),
    StrictHostKeyChecking(StrictHostKeyChecking),
    HashKnownHosts(bool),
    ConnectTimeout(Duration),
    HostKeyAlias(String),
    IdentitiesOnly(bool),
    ServerAliveInterval(Duration),
    ServerAliveCountMax(u32),
    /// `None` for `none`.
    ProxyJump(Option<Vec<JumpHost>>),
    /// `none` or a command.
    ProxyCommand(String),
    CanonicalizeHostname(String),
    /// `IgnoreUnknown`: a pattern list of keywords.
    IgnoreUnknown(String),
    /// An option deployer does not use but whose obtained value ssh checks
    /// again after reading the files (`ConnectionAttempts`, algorithm
    /// lists, `CanonicalizePermittedCNAMEs`): canonical keyword, value.
    Checked(&'static str, String),
    /// `LocalForward`, `RemoteForward`, `DynamicForward`: canonical
    /// keyword and arguments, for the `%` tokens of their socket paths.
    Forward(&'static str, Vec<String>),
    /// `CertificateFile`: not used, but ssh expands its tokens and
    /// variables when it loads the keys, and refuses what it cannot.
    CertificateFile(String),
}

/// Matches `text` against an ssh pattern: `*` is any run of characters,
/// `?` exactly one; everything else matches itself, case-sensitively.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has swallowed.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// OpenSSH's `match_pattern_list`: a comma-separated list of patterns,
/// each possibly negated with `!`; a matching negated pattern vetoes, and
/// otherwise one positive match is needed. With `lower`, the patterns are
/// lowercased (the text must already be).
fn match_pattern_list(text: &str, list: &str, lower: bool) -> bool {
    let mut matched = false;
    for item in list.split(',') {
        let (negated, pattern) = match item.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, item),
        };
        let pattern = if lower {
            pattern.to_ascii_lowercase()
        } else {
            pattern.to_string()
        };
        if wildcard_match(&pattern, text) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// Splits a config line into its lowercased keyword and its arguments, the
/// way ssh does: `Keyword value`, `Keyword=value` or `Keyword = value`;
/// double or single quotes group words, and backslashes escape as in
/// ssh's `argv_split` (see below); `#` at the start of a word begins a
/// comment. Returns `None` for blank and comment lines, and the text after
/// the keyword (for `ProxyJump` and `ProxyCommand`, which take it whole).
fn split_line(line: &str) -> Result<Option<(String, Vec<String>, String)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    let raw = rest.to_string();

    // ssh's `argv_split`: words are separated by spaces and tabs; a
    // backslash escapes a quote or a backslash anywhere, and a space only
    // outside quotes (inside them `\ ` stays as written, as does a
    // backslash before anything else).
    let blank = |c: &char| *c == ' ' || *c == '\t';
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(blank).is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _)
                    if matches!(chars.peek(), Some('"' | '\'' | '\\'))
                        || (quote.is_none() && chars.peek() == Some(&' ')) =>
                {
                    word.extend(chars.next());
                }
                (c, None) if blank(&c) => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("unterminated quote `{q}`"));
        }
        args.push(word);
    }
    Ok(Some((keyword, args, raw)))
}

/// Parses an OpenSSH time value (`ConnectTimeout`): a number of seconds,
/// or numbers with units `s`, `m`, `h`, `d`, `w` such as `1m30s`.
fn parse_time(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        // `strtol` skips white space and takes a sign; ssh refuses only
        // negative numbers.
        rest = rest.trim_start_matches(C_SPACE);
        let negative = rest.starts_with('-');
        rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        if negative && number != 0 {
            return None;
        }
        rest = &rest[digits..];
        let unit = match rest.chars().next() {
            None => 1,
            Some(c) => {
                rest = &rest[1..];
                match c.to_ascii_lowercase() {
                    's' => 1,
                    'm' => 60,
                    'h' => 60 * 60,
                    'd' => 24 * 60 * 60,
                    'w' => 7 * 24 * 60 * 60,
                    _ => return None,
                }
            }
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
    }
    // ssh keeps times in a C int.
    i32::try_from(total)
        .ok()
        .map(|_| Duration::from_secs(total))
}

fn parse_strict(text: &str) -> Option<StrictHostKeyChecking> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(StrictHostKeyChecking::Yes),
        "accept-new" => Some(StrictHostKeyChecking::AcceptNew),
        "no" | "false" | "off" => Some(StrictHostKeyChecking::No),
        "ask" => Some(StrictHostKeyChecking::Ask),
        _ => None,
    }
}

fn parse_flag(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// A TCP port as ssh's `a2port` reads it: a number, or a service name
/// from `/etc/services` (`ssh`).
fn parse_port(text: &str) -> Option<u16> {
    if let Some(number) = c_integer(text).filter(|n| (0..=65535).contains(n)) {
        return u16::try_from(number).ok().filter(|&p| p != 0);
    }
    service_port(
        text,
        &std::fs::read_to_string("/etc/services").unwrap_or_default(),
    )
}

/// The TCP port of service `name` (or one of its aliases) in the text of
/// an `/etc/services` file.
fn service_port(name: &str, services: &str) -> Option<u16> {
    for line in services.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(service), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, "tcp")) = port_proto.split_once('/') else {
            continue;
        };
        if service == name || words.any(|alias| alias == name) {
            return port.parse().ok().filter(|&p| p != 0);
        }
    }
    None
}

/// One `ProxyJump` hop: `[user@]host[:port]`, `[user@][v6]:port`, or
/// `ssh://[user@]host[:port]`.
fn parse_jump_host(text: &str) -> Option<JumpHost> {
    let (text, uri) = match text.strip_prefix("ssh://") {
        Some(rest) => (rest.strip_suffix('/').unwrap_or(rest), true),
        None => (text, false),
    };
    let (user, rest) = match text.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return None,
        None => (None, text),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) if !uri || !p.contains(':') => (h, Some(p)),
            Some(_) => return None,
            None => (rest, None),
        }
    };
    // ssh checks a URI's host as a domain name, and only `/` and `@`
    // otherwise.
    if host.is_empty() || host.contains(['/', '@']) || (uri && !valid_domain(host)) {
        return None;
    }
    let port = match port {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Some(JumpHost {
        user,
        host: host.to_string(),
        port,
    })
}

/// `ProxyJump`'s value: `none`, or comma-separated hops, first hop first.
fn parse_proxy_jump(raw: &str) -> Option<Option<Vec<JumpHost>>> {
    let text = raw.split('#').next().unwrap_or("").trim_end();
    if text.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    text.split(',')
        .map(parse_jump_host)
        .collect::<Option<Vec<_>>>()
        .map(Some)
}

/// Parses a deployer.ini `ssh_proxy_jump` value, ssh's `-J` syntax:
/// `none`, or `[user@]host[:port]` hops separated by commas, first hop
/// first. `Ok(vec![])` is `none`.
///
/// # Errors
///
/// When a hop is not of that form.
pub fn parse_jump_list(text: &str) -> Result<Vec<JumpHost>, String> {
    match parse_proxy_jump(text) {
        Some(hops) => Ok(hops.unwrap_or_default()),
        None => Err(format!(
            "`{text}` is not `none` or a comma-separated list of `[user@]host[:port]`"
        )),
    }
}

/// The argument of a keyword that takes exactly one.
fn single<'a>(keyword: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [one] => Ok(one),
        [] => Err(format!("`{keyword}` needs a value")),
        _ => Err(format!(
            "`{keyword}` takes one value, found {} (quote values that contain spaces)",
            args.len()
        )),
    }
}

/// A `Match` line's criteria, checked as ssh checks them.
fn parse_match(args: &[String]) -> Result<Vec<Criterion>, String> {
    let mut criteria = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let (negated, name) = match word.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, word.as_str()),
        };
        let name = name.to_ascii_lowercase();
        if name == "all" {
            if criteria.len() > 1 || words.next().is_some() {
                return Err(format!(
                    "`Match {word}` cannot be combined with other `Match` criteria"
                ));
            }
            criteria.push(Criterion {
                negated,
                what: Criterium::All,
            });
            break;
        }
        if name == "canonical" || name == "final" {
            criteria.push(Criterion {
                negated,
                what: Criterium::Unsupported(name),
            });
            continue;
        }
        let Some(arg) = words.next() else {
            return Err(format!("`Match {name}` needs an argument"));
        };
        let what = match name.as_str() {
            "host" => Criterium::Host(arg.clone()),
            "originalhost" => Criterium::OriginalHost(arg.clone()),
            "user" => Criterium::User(arg.clone()),
            "localuser" => Criterium::LocalUser(arg.clone()),
            "exec" | "localnetwork" | "tagged" | "command" | "version" | "sessiontype" => {
                Criterium::Unsupported(format!("{name} {arg}"))
            }
            _ => return Err(format!("unsupported `Match` criterion `{name}`")),
        };
        criteria.push(Criterion { negated, what });
    }
    if criteria.is_empty() {
        return Err("`Match` needs criteria, such as `host NAME` or `all`".to_string());
    }
    Ok(criteria)
}

/// Parses one option line of ours; `None` for a keyword deployer does not
/// use.
fn parse_option(keyword: &str, args: &[String], raw: &str) -> Result<Option<Opt>, String> {
    let opt = match keyword {
        "hostname" => Opt::HostName(single("HostName", args)?.to_string()),
        "user" => Opt::User(single("User", args)?.to_string()),
        "port" => {
            let value = single("Port", args)?;
            Opt::Port(parse_port(value).ok_or_else(|| {
                format!(
                    "`Port` must be a number from 1 to 65535 or a service name from \
                     `/etc/services`, not `{value}`"
                )
            })?)
        }
        // `IdentityFile2` is an obsolete alias ssh still honours.
        "identityfile" | "identityfile2" => {
            Opt::IdentityFile(single("IdentityFile", args)?.to_string())
        }
        "userknownhostsfile" | "globalknownhostsfile" => {
            if args.is_empty() {
                return Err(format!("`{keyword}` needs a file name"));
            }
            if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
                return Err(format!("`{keyword}`: `none` must be its only value"));
            }
            if keyword == "userknownhostsfile" {
                Opt::UserKnownHostsFiles(args.to_vec())
            } else {
                Opt::GlobalKnownHostsFiles(args.to_vec())
            }
        }
        "stricthostkeychecking" => {
            let value = single("StrictHostKeyChecking", args)?;
            Opt::StrictHostKeyChecking(parse_strict(value).ok_or_else(|| {
                format!(
                    "`StrictHostKeyChecking` must be `yes`, `accept-new`, `no`, \
                     `ask` or `off`, not `{value}`"
                )
            })?)
        }
        // Debian's ssh also takes `ProtocolKeepAlives` and `SetupTimeOut`
        // for `ServerAliveInterval`.
        "connecttimeout" | "serveraliveinterval" | "protocolkeepalives" | "setuptimeout" => {
            let name = if keyword == "connecttimeout" {
                "ConnectTimeout"
            } else {
                "ServerAliveInterval"
            };
            let value = single(name, args)?;
            let time = if value == "none" {
                Some(Duration::ZERO)
            } else {
                parse_time(value)
            };
            let time = time.ok_or_else(|| {
                format!(
                    "`{name}` must be a number of seconds such as `10`, \
                     or a time with units such as `1m30s`, not `{value}`"
                )
            })?;
            if keyword == "connecttimeout" {
                Opt::ConnectTimeout(time)
            } else {
                Opt::ServerAliveInterval(time)
            }
        }
        "serveralivecountmax" => {
            let value = single("ServerAliveCountMax", args)?;
            Opt::ServerAliveCountMax(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| i32::try_from(n).is_ok())
                    .ok_or_else(|| {
                        format!("`ServerAliveCountMax` must be a whole number, not `{value}`")
                    })?,
            )
        }
        "hostkeyalias" => Opt::HostKeyAlias(single("HostKeyAlias", args)?.to_string()),
        "identitiesonly" | "hashknownhosts" => {
            let name = if keyword == "identitiesonly" {
                "IdentitiesOnly"
            } else {
                "HashKnownHosts"
            };
            let value = single(name, args)?;
            let flag = parse_flag(value)
                .ok_or_else(|| format!("`{name}` must be `yes` or `no`, not `{value}`"))?;
            if keyword == "identitiesonly" {
                Opt::IdentitiesOnly(flag)
            } else {
                Opt::HashKnownHosts(flag)
            }
        }
        "proxyjump" => {
            if args.is_empty() {
                return Err("`ProxyJump` needs a value".to_string());
            }
            Opt::ProxyJump(parse_proxy_jump(raw).ok_or_else(|| {
                format!(
                    "`ProxyJump` must be `none` or `[user@]host[:port]` hops separated \
                     by commas, not `{raw}`"
                )
            })?)
        }
        "proxycommand" => {
            if args.is_empty() {
                return Err("`ProxyCommand` needs a value".to_string());
            }
            Opt::ProxyCommand(raw.to_string())
        }
        "ignoreunknown" => Opt::IgnoreUnknown(single("IgnoreUnknown", args)?.to_string()),
        "canonicalizehostname" => {
            let value = single("CanonicalizeHostname", args)?;
            let lower = value.to_ascii_lowercase();
            if !["yes", "no", "true", "false", "always"].contains(&lower.as_str()) {
                return Err(format!(
                    "`CanonicalizeHostname` must be `yes`, `no` or `always`, not `{value}`"
                ));
            }
            Opt::CanonicalizeHostname(lower)
        }
        "connectionattempts"
        | "canonicalizepermittedcnames"
        | "hostkeyalgorithms"
        | "controlpath"
        | "identityagent"
        | "forwardagent" => {
            let canonical = match keyword {
                "connectionattempts" => "ConnectionAttempts",
                "canonicalizepermittedcnames" => "CanonicalizePermittedCNAMEs",
                "controlpath" => "ControlPath",
                "identityagent" => "IdentityAgent",
                "forwardagent" => "ForwardAgent",
                _ => "HostKeyAlgorithms",
            };
            Opt::Checked(canonical, args.join(" "))
        }
        "remotecommand" => Opt::Checked("RemoteCommand", raw.to_string()),
        "certificatefile" => Opt::CertificateFile(single("CertificateFile", args)?.to_string()),
        "localforward" => Opt::Forward("LocalForward", args.to_vec()),
        "remoteforward" => Opt::Forward("RemoteForward", args.to_vec()),
        "dynamicforward" => Opt::Forward("DynamicForward", args.to_vec()),
        // The values of ssh's other options are checked by `check_values`
        // and not used.
        _ => return Ok(None),
    };
    Ok(Some(opt))
}

/// ssh's yes/no table (`multistate_flag`), compared case-insensitively.
const FLAG: &[&str] = &["yes", "no", "true", "false"];
/// The names ssh's `Ciphers` accepts (`ssh -Q cipher` on Debian's 9.2p1).
const CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];
/// The names ssh's `MACs` accepts (`ssh -Q mac`).
const MACS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
/// The names ssh's `KexAlgorithms` accepts (`ssh -Q kex`).
const KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];
/// Key and signature algorithm names (`ssh -Q key-sig`), for
/// `HostKeyAlgorithms`, `PubkeyAcceptedAlgorithms` and the like.
const KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];
/// Debian's GSSAPI key exchange algorithms (`ssh -Q kex-gss`); a name
/// is accepted when it starts with one of them.
const GSS_KEX_PREFIXES: &[&str] = &[
    "gss-gex-sha1-",
    "gss-group1-sha1-",
    "gss-group14-sha1-",
    "gss-group14-sha256-",
    "gss-group16-sha512-",
    "gss-nistp256-sha256-",
    "gss-curve25519-sha256-",
];
/// Short key type names ssh also takes in key algorithm lists, any case.
const KEY_SHORT_NAMES: &[&str] = &["dsa", "ecdsa", "ecdsa-sk", "ed25519", "ed25519-sk", "rsa"];
const LOG_LEVELS: &[&str] = &[
    "quiet", "fatal", "error", "info", "verbose", "debug", "debug1", "debug2", "debug3",
];
const LOG_FACILITIES: &[&str] = &[
    "daemon", "user", "auth", "authpriv", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const IPQOS: &[&str] = &[
    "none",
    "af11",
    "af12",
    "af13",
    "af21",
    "af22",
    "af23",
    "af31",
    "af32",
    "af33",
    "af41",
    "af42",
    "af43",
    "cs0",
    "cs1",
    "cs2",
    "cs3",
    "cs4",
    "cs5",
    "cs6",
    "cs7",
    "ef",
    "le",
    "lowdelay",
    "throughput",
    "reliability",
];

/// What C's `isspace` calls white space.
const C_SPACE: &[char] = &[' ', '\t', '\n', '\x0b', '\x0c', '\r'];

/// A C `strtol`-style integer: optional sign, then decimal digits, nothing
/// after. `None` when it is not one (or does not fit in an `i64`).
fn c_integer(text: &str) -> Option<i64> {
    // `strtol` skips leading white space.
    let text = text.trim_start_matches(C_SPACE);
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = digits.parse().ok()?;
    Some(if text.starts_with('-') { -value } else { value })
}

/// ssh's `strtonum(text, 0, INT_MAX)`, used for its integer options.
fn c_count(text: &str) -> bool {
    c_integer(text).is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
}

/// ssh's `convtime`: `none` is not a time here.
fn c_time(text: &str) -> bool {
    parse_time(text).is_some()
}

/// The argument at `index`, or the "missing argument" error.
fn arg_at<'a>(keyword: &str, args: &'a [String], index: usize) -> Result<&'a str, String> {
    match args.get(index) {
        Some(arg) if !arg.is_empty() => Ok(arg),
        _ => Err(format!("`{keyword}` needs a value")),
    }
}

/// One value that must be one of `table` (any case), as ssh's
/// `parse_multistate`.
fn one_of(keyword: &str, args: &[String], table: &[&str]) -> Result<usize, String> {
    let value = arg_at(keyword, args, 0)?;
    if table.iter().any(|t| t.eq_ignore_ascii_case(value)) {
        Ok(1)
    } else {
        Err(format!(
            "`{keyword}` must be one of {}, not `{value}`",
            table
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// An algorithm list as ssh checks it: a leading `-` is not checked, a
/// leading `+` or `^` is dropped, then each comma-separated name up to the
/// first empty one must be one `known` accepts.
fn algorithm_list(
    keyword: &str,
    args: &[String],
    what: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<usize, String> {
    let value = arg_at(keyword, args, 0)?;
    if value.starts_with('-') {
        return Ok(1);
    }
    let list = value.strip_prefix(['+', '^']).unwrap_or(value);
    let bad = if list.is_empty() {
        Some("")
    } else {
        list.split(',')
            .take_while(|name| !name.is_empty())
            .find(|name| !known(name))
    };
    match bad {
        None => Ok(1),
        Some(name) => Err(format!(
            "`{keyword}`: `{name}` is not one of the {what} this ssh knows (see `ssh -Q {}`)",
            match what {
                "ciphers" => "cipher",
                "MACs" => "mac",
                "key exchange algorithms" => "kex",
                _ => "key-sig",
            }
        )),
    }
}

/// A key algorithm name, a short key type name, or a pattern (possibly
/// negated) that matches some key algorithm name.
fn key_algorithm_known(name: &str) -> bool {
    if KEY_ALGORITHMS.contains(&name)
        || KEY_SHORT_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
    {
        return true;
    }
    let pattern = name.strip_prefix('!').unwrap_or(name);
    KEY_ALGORITHMS.iter().any(|k| wildcard_match(pattern, k))
}

/// A list whose `none` must stand alone and whose values may not be empty.
fn list_with_none(keyword: &str, args: &[String]) -> Result<usize, String> {
    if args.iter().any(String::is_empty) {
        return Err(format!("`{keyword}` has an empty value"));
    }
    if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
        return Err(format!("`{keyword}`: `none` must be its only value"));
    }
    Ok(args.len())
}

/// ssh's `valid_domain` for `CanonicalDomains`.
fn valid_domain(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && !name.contains("..")
        && bytes
            .iter()
            .all(|&b| b == b'.' || b == b'-' || b == b'_' || b.is_ascii_alphanumeric())
}

/// ssh's `scan_scaled` for `RekeyLimit`: an optional sign, digits with at
/// most one `.` (none at all reads as 0), then optionally a unit `B`, `K`,
/// `M`, `G`, `T`, `P` or `E` (any case) not followed by a letter or digit.
/// The number of bytes, or `None` when ssh refuses it.
fn scaled_size(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, after) = rest.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || whole.len() >= 21 {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if whole > i128::from(i64::MAX) {
        return None;
    }
    let mut chars = after.chars();
    let shift = match chars.next().map(|c| c.to_ascii_uppercase()) {
        None => 0,
        Some('B') => 0,
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        Some('T') => 40,
        Some('P') => 50,
        Some('E') => 60,
        Some(_) => return None,
    };
    if chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let scale = 1i128 << shift;
    let mut total = whole * scale;
    if total > i128::from(i64::MAX) {
        return None;
    }
    if shift > 0 && !fraction.is_empty() {
        let digits = &fraction[..fraction.len().min(19)];
        let part: f64 = format!("0.{digits}").parse().ok()?;
        total += (part * scale as f64) as i128;
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).ok()
}

/// An environment expansion check as ssh makes for `IdentityAgent` and
/// `ForwardAgent` paths: every `${` must close, and a legacy `$NAME` must
/// be a valid name.
fn agent_path(keyword: &str, value: &str) -> Result<(), String> {
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        let Some(end) = rest[at..].find('}') else {
            return Err(format!("`{keyword}`: unterminated `${{` in `{value}`"));
        };
        rest = &rest[at + end + 1..];
    }
    if let Some(name) = value.strip_prefix('$') {
        if !name.starts_with('{')
            && (name.is_empty() || !name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()))
        {
            return Err(format!(
                "`{keyword}`: `{value}` is not a valid environment name"
            ));
        }
    }
    Ok(())
}

/// Checks the values of one option line as ssh's `process_config_line`
/// does, for every keyword ssh knows, whether or not the line applies to
/// the host (ssh checks them all when it reads the file). Errors name the
/// keyword, the value and what is accepted.
fn check_values(keyword: &str, args: &[String]) -> Result<(), String> {
    let k = keyword;
    let used = match keyword {
        "forwardx11"
        | "forwardx11trusted"
        | "gatewayports"
        | "exitonforwardfailure"
        | "passwordauthentication"
        | "kbdinteractiveauthentication"
        | "challengeresponseauthentication"
        | "skeyauthentication"
        | "tisauthentication"
        | "hostbasedauthentication"
        | "gssapiauthentication"
        | "gssapidelegatecredentials"
        | "batchmode"
        | "checkhostip"
        | "tcpkeepalive"
        | "keepalive"
        | "nohostauthenticationforlocalhost"
        | "clearallforwardings"
        | "enablesshkeysign"
        | "identitiesonly"
        | "hashknownhosts"
        | "permitlocalcommand"
        | "visualhostkey"
        | "stdinnull"
        | "forkafterauthentication"
        | "proxyusefdpass"
        | "canonicalizefallbacklocal"
        | "streamlocalbindunlink"
        | "enableescapecommandline"
        | "gssapikeyexchange"
        | "gssapirenewalforcesrekey"
        | "gssapitrustdns" => one_of(k, args, FLAG)?,
        "pubkeyauthentication" | "dsaauthentication" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "unbound", "host-bound"],
        )?,
        "verifyhostkeydns" | "updatehostkeys" => {
            one_of(k, args, &["yes", "no", "true", "false", "ask"])?
        }
        "stricthostkeychecking" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "ask", "off", "accept-new"],
        )?,
        "compression" => one_of(k, args, &["yes", "no"])?,
        "addressfamily" => one_of(k, args, &["inet", "inet6", "any"])?,
        "controlmaster" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "auto", "ask", "autoask"],
        )?,
        "tunnel" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "ethernet", "point-to-point"],
        )?,
        "requesttty" => one_of(k, args, &["yes", "no", "true", "false", "force", "auto"])?,
        "sessiontype" => one_of(k, args, &["none", "subsystem", "default"])?,
        "canonicalizehostname" => one_of(k, args, &["yes", "no", "true", "false", "always"])?,
        "connecttimeout"
        | "forwardx11timeout"
        | "serveraliveinterval"
        | "protocolkeepalives"
        | "setuptimeout" => {
            let value = arg_at(k, args, 0)?;
            if value != "none" && !c_time(value) {
                return Err(format!(
                    "`{k}` must be `none` or a time such as `10` or `1m30s`, not `{value}`"
                ));
            }
            1
        }
        "numberofpasswordprompts"
        | "connectionattempts"
        | "serveralivecountmax"
        | "canonicalizemaxdots"
        | "requiredrsasize" => {
            let value = args.first().map(String::as_str).unwrap_or("");
            if !c_count(value) {
                return Err(format!(
                    "`{k}` must be a whole number from 0 to 2147483647, not `{value}`"
                ));
            }
            1
        }
        "kbdinteractivedevices"
        | "xauthlocation"
        | "user"
        | "hostname"
        | "hostkeyalias"
        | "preferredauthentications"
        | "bindaddress"
        | "bindinterface"
        | "pkcs11provider"
        | "smartcarddevice"
        | "securitykeyprovider"
        | "controlpath"
        | "ignoreunknown"
        | "revokedhostkeys"
        | "identityfile"
        | "identityfile2"
        | "certificatefile"
        | "gssapiclientidentity"
        | "gssapiserveridentity" => {
            arg_at(k, args, 0)?;
            1
        }
        "globalknownhostsfile" | "userknownhostsfile" | "logverbose" => list_with_none(k, args)?,
        "port" => {
            let value = arg_at(k, args, 0)?;
            if parse_port(value).is_none() {
                return Err(format!(
                    "`Port` must be a number from 1 to 65535 or a service name from \
                     `/etc/services`, not `{value}`"
                ));
            }
            1
        }
        "ciphers" => algorithm_list(k, args, "ciphers", &|n| CIPHERS.contains(&n))?,
        "macs" => algorithm_list(k, args, "MACs", &|n| MACS.contains(&n))?,
        "kexalgorithms" => {
            algorithm_list(k, args, "key exchange algorithms", &|n| KEX.contains(&n))?
        }
        "hostkeyalgorithms"
        | "casignaturealgorithms"
        | "hostbasedacceptedalgorithms"
        | "hostbasedkeytypes"
        | "pubkeyacceptedalgorithms"
        | "pubkeyacceptedkeytypes" => {
            algorithm_list(k, args, "key algorithms", &key_algorithm_known)?
        }
        "loglevel" => one_of(k, args, LOG_LEVELS)?,
        "syslogfacility" => one_of(k, args, LOG_FACILITIES)?,
        "fingerprinthash" => one_of(k, args, &["md5", "sha1", "sha256", "sha384", "sha512"])?,
        "escapechar" => {
            let value = arg_at(k, args, 0)?;
            let b = value.as_bytes();
            let ok = value == "none"
                || b.len() == 1
                || (b.len() == 2 && b[0] == b'^' && (64..128).contains(&b[1]));
            if !ok {
                return Err(format!(
                    "`EscapeChar` must be `none`, one character or `^` and a character, \
                     not `{value}`"
                ));
            }
            1
        }
        "controlpersist" => {
            let value = arg_at(k, args, 0)?;
            if !["yes", "no", "true", "false"].contains(&value) && !c_time(value) {
                return Err(format!(
                    "`ControlPersist` must be `yes`, `no` or a time such as `10m`, not `{value}`"
                ));
            }
            1
        }
        "tunneldevice" => {
            let value = arg_at(k, args, 0)?;
            let id = |s: &str| {
                s.eq_ignore_ascii_case("any")
                    || c_integer(s).is_some_and(|n| (0..=0x7fff_fffd).contains(&n))
            };
            let ok = match value.split_once(':') {
                Some((local, remote)) => id(local) && id(remote),
                None => id(value),
            };
            if !ok {
                return Err(format!(
                    "`TunnelDevice` must be `local[:remote]`, each a number or `any`, \
                     not `{value}`"
                ));
            }
            1
        }
        "ipqos" => {
            let qos =
                |s: &str| IPQOS.iter().any(|q| q.eq_ignore_ascii_case(s)) || c_ipqos_number(s);
            for value in args.iter().take(2) {
                if !qos(value) {
                    return Err(format!(
                        "`IPQoS` must be DSCP names such as `af21` or `cs1`, `lowdelay`, \
                         `throughput`, `reliability`, `none` or a number 0-255, not `{value}`"
                    ));
                }
            }
            if args.is_empty() {
                return Err("`IPQoS` needs a value".to_string());
            }
            args.len().min(2)
        }
        "rekeylimit" => {
            let value = arg_at(k, args, 0)?;
            if value != "default" {
                let size = scaled_size(value).ok_or_else(|| {
                    format!("`RekeyLimit` must be a size such as `1G` or `default`, not `{value}`")
                })?;
                if size != 0 && size < 16 {
                    return Err(format!("`RekeyLimit` `{value}` is too small"));
                }
            }
            match args.get(1).map(String::as_str) {
                None => 1,
                Some("none") => 2,
                Some(time) if c_time(time) => 2,
                Some(time) => {
                    return Err(format!(
                        "`RekeyLimit`: `{time}` is not `none` or a time such as `1h`"
                    ))
                }
            }
        }
        "streamlocalbindmask" => {
            let value = arg_at(k, args, 0)?;
            let digits = value.strip_prefix('+').unwrap_or(value);
            let octal = digits
                .bytes()
                .position(|b| !(b'0'..=b'7').contains(&b))
                .unwrap_or(digits.len());
            let ok =
                octal > 0 && u32::from_str_radix(&digits[..octal], 8).is_ok_and(|m| m <= 0o777);
            if !ok {
                return Err(format!(
                    "`StreamLocalBindMask` must be an octal mode up to 0777, not `{value}`"
                ));
            }
            // ssh reads the octal prefix and ignores what follows.
            1
        }
        "addkeystoagent" => {
            let value = arg_at(k, args, 0)?;
            let table = ["yes", "no", "true", "false", "ask", "confirm"];
            let known = table.iter().find(|t| t.eq_ignore_ascii_case(value));
            let ok = match (known, args.get(1)) {
                (Some(&"confirm"), Some(time)) => c_time(time),
                (Some(_), None) => true,
                (None, None) => c_time(value),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "`AddKeysToAgent` must be `yes`, `no`, `ask`, `confirm` (optionally \
                     with a time) or a time, not `{}`",
                    args.join(" ")
                ));
            }
            args.len()
        }
        "identityagent" => {
            agent_path(k, arg_at(k, args, 0)?)?;
            1
        }
        "forwardagent" => {
            let value = arg_at(k, args, 0)?;
            if !FLAG.iter().any(|f| f.eq_ignore_ascii_case(value)) {
                agent_path(k, value)?;
            }
            1
        }
        "sendenv" => {
            if args.iter().any(|a| a.is_empty() || a.contains('=')) {
                return Err("`SendEnv` takes variable names (patterns), without `=`".to_string());
            }
            args.len()
        }
        "setenv" => {
            if args.iter().any(|a| !a.contains('=')) {
                return Err("`SetEnv` takes `NAME=VALUE` pairs".to_string());
            }
            args.len()
        }
        "canonicaldomains" => {
            list_with_none(k, args)?;
            if let Some(bad) = args
                .iter()
                .find(|a| !a.eq_ignore_ascii_case("none") && !valid_domain(a))
            {
                return Err(format!("`CanonicalDomains`: `{bad}` is not a domain name"));
            }
            args.len()
        }
        "canonicalizepermittedcnames" => {
            if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
                return Err(format!("`{k}`: `none` must be its only value"));
            }
            if let Some(bad) = args.iter().find(|a| {
                !a.eq_ignore_ascii_case("none")
                    && a.as_str() != "*"
                    && a.split_once(':').is_none_or(|(_, to)| to.is_empty())
            }) {
                return Err(format!(
                    "`{k}`: `{bad}` is not `none`, `*` or `source_domains:target_domains`"
                ));
            }
            args.len()
        }
        "localforward" | "remoteforward" | "dynamicforward" => {
            let remote = k == "remoteforward";
            let (spec, dynamic, used) = forward_spec(k, args)?;
            if !forward_is_valid(&spec, dynamic, remote) {
                return Err(format!(
                    "`{k}`: bad forwarding specification `{}` (ssh_config(5): \
                     `[bind_address:]port host:hostport` or socket paths)",
                    args[..used].join(" ")
                ));
            }
            used
        }
        "permitremoteopen" => {
            for (i, arg) in args.iter().enumerate() {
                if arg.eq_ignore_ascii_case("none") || arg.eq_ignore_ascii_case("any") {
                    if args.len() > 1 {
                        return Err(format!("`{k}`: `{arg}` must be its only value"));
                    }
                    continue;
                }
                let port = host_port_delimited(arg).and_then(|(_, port)| port);
                let ok = port.is_some_and(|p| p == "*" || a2port(p) > 0);
                if !ok {
                    return Err(format!(
                        "`{k}`: value {} `{arg}` is not `host:port` (port a number or `*`), \
                         `any` or `none`",
                        i + 1
                    ));
                }
            }
            args.len()
        }
        "gssapikexalgorithms" => {
            let value = arg_at(k, args, 0)?;
            if let Some(bad) = value
                .split(',')
                .take_while(|n| !n.is_empty())
                .find(|n| !GSS_KEX_PREFIXES.iter().any(|p| n.starts_with(p)))
            {
                return Err(format!(
                    "`GSSAPIKexAlgorithms`: `{bad}` is not one of this ssh's GSSAPI key \
                     exchange algorithms (see `ssh -Q kex-gss`)"
                ));
            }
            1
        }
        // Commands, `ProxyJump`, `PermitRemoteOpen`, and the keywords ssh
        // reads and discards take any words; ours are checked by
        // `parse_option`.
        _ => args.len(),
    };
    if args.len() > used {
        return Err(format!(
            "`{keyword}` takes {used} value{}, found {} (ssh refuses extra arguments)",
            if used == 1 { "" } else { "s" },
            args.len()
        ));
    }
    Ok(())
}

/// Why ssh, after reading the files, refuses the value obtained for one
/// of the [`Opt::Checked`] options, if it does.
fn refused_obtained_value(keyword: &str, value: &str) -> Option<String> {
    match keyword {
        "ConnectionAttempts" => (c_integer(value).unwrap_or(0) <= 0)
            .then(|| format!("`ConnectionAttempts {value}`: ssh refuses fewer than 1 attempt")),
        "CanonicalizePermittedCNAMEs" => (!value.eq_ignore_ascii_case("none")).then(|| {
            format!(
                "`CanonicalizePermittedCNAMEs {value}`: ssh would look the name up in \
                 DNS and follow CNAMEs to another name; deployer does not, so it refuses \
                 the host rather than reach another one"
            )
        }),
        // Expanded with the host's tokens in `finish`.
        "ControlPath" | "IdentityAgent" | "ForwardAgent" | "RemoteCommand" => None,
        // ssh expands `HostKeyAlgorithms` against the names it knows when
        // it connects (and for `-G`): `-` only removes names; otherwise a
        // negated name is an error, and so is a plain list matching none.
        _ => {
            if value.starts_with('-') {
                return None;
            }
            let list = value.strip_prefix(['+', '^']);
            let names = list.unwrap_or(value);
            if names.split(',').any(|n| n.starts_with('!')) {
                return Some(format!(
                    "`HostKeyAlgorithms {value}`: ssh refuses `!` here (use a `-` list \
                     to remove algorithms)"
                ));
            }
            let matches = KEY_ALGORITHMS
                .iter()
                .any(|k| names.split(',').any(|n| wildcard_match(n, k)));
            (list.is_none() && !matches).then(|| {
                format!(
                    "`HostKeyAlgorithms {value}` matches none of the algorithms this ssh \
                     supports (see `ssh -Q key-sig`), so ssh refuses it"
                )
            })
        }
    }
}

/// ssh's `a2port`: a port number (0 included) or a TCP service name, or
/// -1.
fn a2port(text: &str) -> i32 {
    if c_integer(text) == Some(0) {
        return 0;
    }
    parse_port(text).map_or(-1, i32::from)
}

/// ssh's `hpdelim`: splits `host[:rest]` or `[host]:rest`; `None` when the
/// text is not of that form (or uses `/` as the separator). The port part
/// is `None` when there is no `:`.
fn host_port_delimited(text: &str) -> Option<(&str, Option<&str>)> {
    let end = if text.starts_with('[') {
        text.find(']')? + 1
    } else {
        text.find([':', '/']).unwrap_or(text.len())
    };
    match text[end..].chars().next() {
        None => Some((&text[..end], None)),
        Some(':') => Some((&text[..end], Some(&text[end + 1..]))),
        _ => None,
    }
}

/// The fields of a forwarding specification, as ssh's `parse_fwd_field`
/// splits them: `(text, is a path)`, or `None` when malformed.
fn forward_fields(spec: &str) -> Option<Vec<(String, bool)>> {
    let mut fields = Vec::new();
    let mut rest: Vec<char> = spec.trim_start().chars().collect();
    while !rest.is_empty() {
        if fields.len() == 4 {
            return None;
        }
        if rest[0] == '[' {
            let close = rest.iter().position(|&c| c == ']')?;
            if !matches!(rest.get(close + 1), None | Some(':')) {
                return None;
            }
            let field: String = rest[1..close].iter().collect();
            let is_path = field.contains('/');
            fields.push((field, is_path));
            rest.drain(..(close + 2).min(rest.len()));
            continue;
        }
        let mut field = String::new();
        let mut is_path = false;
        let mut i = 0;
        while i < rest.len() {
            match rest[i] {
                '\\' => {
                    i += 1;
                    field.push(*rest.get(i)?);
                }
                ':' => break,
                c => {
                    is_path |= c == '/';
                    field.push(c);
                }
            }
            i += 1;
        }
        fields.push((field, is_path));
        rest.drain(..(i + 1).min(rest.len()));
    }
    Some(fields)
}

/// A forwarding's fields as ssh's `parse_forward` reads them: (listen
/// port, listen socket path, connect port, connect socket path, hosts);
/// `None` for a number of fields it refuses.
type ForwardParts<'a> = (i32, Option<&'a str>, i32, Option<&'a str>, Vec<&'a str>);

fn forward_parts(f: &[(String, bool)]) -> Option<ForwardParts<'_>> {
    Some(match f.len() {
        1 if f[0].1 => (-2, Some(&f[0].0), 0, None, vec![]),
        1 => (a2port(&f[0].0), None, 0, None, vec![]),
        2 if f[0].1 && f[1].1 => (-2, Some(&f[0].0), -2, Some(&f[1].0), vec![]),
        2 if f[1].1 => (a2port(&f[0].0), None, -2, Some(&f[1].0), vec![]),
        2 => (a2port(&f[1].0), None, 0, None, vec![&f[0].0]),
        3 if f[0].1 => (-2, Some(&f[0].0), a2port(&f[2].0), None, vec![&f[1].0]),
        3 if f[2].1 => (a2port(&f[1].0), None, -2, Some(&f[2].0), vec![&f[0].0]),
        3 => (a2port(&f[0].0), None, a2port(&f[2].0), None, vec![&f[1].0]),
        4 => (
            a2port(&f[1].0),
            None,
            a2port(&f[3].0),
            None,
            vec![&f[0].0, &f[2].0],
        ),
        _ => return None,
    })
}

/// The Unix socket paths of a forwarding (its listen and connect paths),
/// in which ssh expands `%` tokens.
fn forward_socket_paths(spec: &str) -> Vec<String> {
    let Some(f) = forward_fields(spec) else {
        return Vec::new();
    };
    let Some((_, listen, _, connect, _)) = forward_parts(&f) else {
        return Vec::new();
    };
    [listen, connect]
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect()
}

/// ssh's `parse_forward` verdict for a `LocalForward` (joined `listen:target`),
/// `RemoteForward` or `DynamicForward` specification. Specifications with
/// `${` are left to ssh's environment expansion and accepted.
fn forward_is_valid(spec: &str, dynamic: bool, remote: bool) -> bool {
    if spec.contains("${") {
        return true;
    }
    let Some(f) = forward_fields(spec) else {
        return false;
    };
    let Some((listen_port, listen_path, connect_port, connect_path, hosts)) = forward_parts(&f)
    else {
        return false;
    };
    if dynamic {
        if f.len() > 2 {
            return false;
        }
    } else {
        if f.len() < 3 && connect_path.is_none() && listen_path.is_none() {
            return false;
        }
        if connect_port <= 0 && connect_path.is_none() {
            return false;
        }
    }
    if (listen_port < 0 && listen_path.is_none()) || (!remote && listen_port == 0) {
        return false;
    }
    // NI_MAXHOST and the size of a socket path.
    hosts.iter().all(|h| h.len() < 1025)
        && [listen_path, connect_path]
            .iter()
            .flatten()
            .all(|p| p.len() < 108)
}

/// ssh's `parse_ipqos` number: `strtol` with base 0 (decimal, `0x` hex,
/// `0` octal), 0 to 255.
fn c_ipqos_number(text: &str) -> bool {
    let text = text.trim_start_matches(C_SPACE);
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        u32::from_str_radix(hex, 16).ok()
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        u32::from_str_radix(&unsigned[1..], 8).ok()
    } else if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        unsigned.parse().ok()
    } else {
        None
    };
    match value {
        Some(0) => true,
        Some(v) => !negative && v <= 255,
        None => false,
    }
}

/// Parses the text of one file into items (`Include`s unresolved); the
/// keywords ssh accepts but does not support add to `warnings`.
fn parse_items(
    text: &str,
    source: &Path,
    warnings: &mut Vec<SshConfigWarning>,
) -> Result<Vec<Item>, SshConfigError> {
    let mut items = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let invalid = |message: String| SshConfigError::Invalid {
            path: source.to_path_buf(),
            line: number,
            message,
        };
        let Some((keyword, args, rest)) = split_line(raw).map_err(invalid)? else {
            continue;
        };
        let needs = required_env(&keyword, &args);
        let kind = match keyword.as_str() {
            "host" => {
                if args.is_empty() {
                    return Err(invalid("`Host` needs at least one pattern".to_string()));
                }
                if args.iter().any(String::is_empty) {
                    return Err(invalid("`Host` has an empty pattern".to_string()));
                }
                ItemKind::Host(
                    args.iter()
                        .map(|arg| match arg.strip_prefix('!') {
                            Some(p) => HostPattern {
                                negated: true,
                                pattern: p.to_string(),
                            },
                            None => HostPattern {
                                negated: false,
                                pattern: arg.clone(),
                            },
                        })
                        .collect(),
                )
            }
            "match" => ItemKind::Match(parse_match(&args).map_err(invalid)?),
            "include" => {
                if args.is_empty() {
                    return Err(invalid("`Include` needs a file name".to_string()));
                }
                ItemKind::Include(args, Vec::new())
            }
            _ => match parse_option(&keyword, &args, &rest)
                .and_then(|opt| {
                    if is_known_keyword(&keyword) && !rest.is_empty() {
                        check_values(&keyword, &args)?;
                    }
                    Ok(opt)
                })
                .map_err(invalid)?
            {
                Some(opt) => ItemKind::Set(opt),
                None if rest.is_empty() => {
                    return Err(invalid(format!(
                        "`{keyword}` needs a value (ssh refuses a keyword without one)"
                    )))
                }
                None if is_known_keyword(&keyword) => {
                    if UNSUPPORTED_KEYWORDS.contains(&keyword.as_str()) {
                        warnings.push(SshConfigWarning {
                            path: source.to_path_buf(),
                            line: number,
                            message: format!(
                                "`{keyword}` is not supported by OpenSSH; ignored, as ssh does"
                            ),
                        });
                    }
                    ItemKind::NeedsEnv(Vec::new())
                }
                None => ItemKind::Unknown(keyword),
            },
        };
        let mut push = |kind| {
            items.push(Item {
                kind,
                path: source.to_path_buf(),
                number,
            })
        };
        match kind {
            ItemKind::NeedsEnv(_) if needs.is_empty() => {}
            ItemKind::NeedsEnv(_) => push(ItemKind::NeedsEnv(needs)),
            kind => {
                push(kind);
                if !needs.is_empty() {
                    push(ItemKind::NeedsEnv(needs));
                }
            }
        }
    }
    Ok(items)
}

/// A forwarding's specification as ssh parses it (`listen:target`, or
/// the listen part alone for a dynamic one), whether it is dynamic, and
/// how many arguments it takes. `keyword` is matched case-insensitively.
fn forward_spec(keyword: &str, args: &[String]) -> Result<(String, bool, usize), String> {
    let k = keyword.to_ascii_lowercase();
    let listen = arg_at(keyword, args, 0)?;
    Ok(match (k.as_str(), args.get(1).filter(|a| !a.is_empty())) {
        ("dynamicforward", _) => (listen.to_string(), true, 1),
        (_, Some(target)) => (format!("{listen}:{target}"), false, 2),
        ("remoteforward", None) => (listen.to_string(), true, 1),
        _ => return Err(format!("`{keyword}` needs a listen address and a target")),
    })
}

/// The `${VAR}` names ssh expands while reading a line (the agent socket
/// of `ForwardAgent` and `IdentityAgent`, forwarding specifications), which
/// it refuses when they are not set, whether or not the line applies.
fn required_env(keyword: &str, args: &[String]) -> Vec<String> {
    let values: &[String] = match keyword {
        "forwardagent"
            if args
                .first()
                .is_some_and(|a| FLAG.iter().any(|f| f.eq_ignore_ascii_case(a))) =>
        {
            &[]
        }
        "forwardagent" | "identityagent" => &args[..args.len().min(1)],
        "localforward" | "remoteforward" => &args[..args.len().min(2)],
        "dynamicforward" => &args[..args.len().min(1)],
        _ => &[],
    };
    let mut names = Vec::new();
    for value in values {
        let mut rest = value.as_str();
        while let Some(at) = rest.find("${") {
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else { break };
            names.push(after[..end].to_string());
            rest = &after[end + 1..];
        }
    }
    names
}

/// True when OpenSSH 9.2's client (Debian's build) knows `keyword`
/// (lowercase): as an option, an alias of one, or a keyword it reads and
/// discards (deprecated or unsupported). ssh refuses any other keyword
/// unless `IgnoreUnknown` lists it.
pub fn is_known_keyword(keyword: &str) -> bool {
    KNOWN_KEYWORDS.binary_search(&keyword).is_ok()
}

/// Every keyword [`is_known_keyword`] accepts, sorted.
pub fn known_keywords() -> &'static [&'static str] {
    KNOWN_KEYWORDS
}

impl SshConfigFile {
    /// Parses the text of one (user) config file; `source` is only used to
    /// say where problems are.
    ///
    /// `Include` lines are kept unresolved (and ignored by
    /// [`resolve`](Self::resolve)); [`load`](Self::load) resolves them.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Invalid`] for a line ssh would reject: an option
    /// of ours with a bad value, a `Host` without patterns, a bad `Match`,
    /// an unterminated quote.
    pub fn parse(text: &str, source: &Path) -> Result<SshConfigFile, SshConfigError> {
        let mut warnings = Vec::new();
        Ok(SshConfigFile {
            files: vec![parse_items(text, source, &mut warnings)?],
            warnings,
        })
    }

    /// Reads and parses the user's config at `path` and then the system
    /// config at `system` (each optional: a missing file is an empty one,
    /// as for ssh; pass `None` to read no system file, as `ssh -F` does),
    /// replacing each `Include` with the files it names: relative names
    /// are taken from `home/.ssh/` (from `/etc/ssh/` in the system file),
    /// `~` means `home`, `*` and `?` expand like a shell glob, and names
    /// that match nothing are skipped, as ssh does.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Read`] when a file cannot be read (see
    /// [`SshConfigError::is_not_found`] for a missing user file),
    /// [`SshConfigError::Permissions`] when the user's file or any
    /// included file is owned by another user (not root) or writable by
    /// group or others, as ssh checks for `~/.ssh/config` (the system file
    /// itself is not checked, its includes are),
    /// [`SshConfigError::Invalid`] for a bad line in any of the files, and
    /// [`SshConfigError::IncludeTooDeep`] for runaway `Include` chains.
    pub fn load_with_system(
        path: &Path,
        system: Option<&Path>,
        home: &Path,
    ) -> Result<SshConfigFile, SshConfigError> {
        let file = Self::load_user_file(path, home, true)?;
        match system {
            Some(system) => file.with_system(system, home),
            None => Ok(file),
        }
    }

    /// [`load_with_system`](Self::load_with_system) with no system file:
    /// only the user's `path` (`~/.ssh/config`) and what it includes.
    ///
    /// # Errors
    ///
    /// As for [`load_with_system`](Self::load_with_system).
    pub fn load(path: &Path, home: &Path) -> Result<SshConfigFile, SshConfigError> {
        Self::load_with_system(path, None, home)
    }

    /// Like [`load`](Self::load), for a file named explicitly (ssh's `-F`,
    /// deployer.ini's `ssh_config`): as ssh, its own owner and permissions
    /// are not checked, those of the files it includes are.
    ///
    /// # Errors
    ///
    /// As for [`load_with_system`](Self::load_with_system).
    ///
    /// Run as root through sudo, it is checked too: it decides where
    /// deployer connects as root, so only root may have written it.
    pub fn load_named(path: &Path, home: &Path) -> Result<SshConfigFile, SshConfigError> {
        Self::load_user_file(path, home, crate::operator::sudo_uid().is_some())
    }

    fn load_user_file(
        path: &Path,
        home: &Path,
        check_permissions: bool,
    ) -> Result<SshConfigFile, SshConfigError> {
        let mut warnings = Vec::new();
        let user = load_file(path, home, true, check_permissions, 0, &mut warnings)?;
        Ok(SshConfigFile {
            files: vec![user],
            warnings,
        })
    }

    /// Adds the system file (or another file read after the others) to an
    /// already loaded config; a missing file is an empty one.
    ///
    /// # Errors
    ///
    /// As for [`load_with_system`](Self::load_with_system).
    pub fn with_system(mut self, system: &Path, home: &Path) -> Result<Self, SshConfigError> {
        match load_file(system, home, false, false, 0, &mut self.warnings) {
            Ok(items) => self.files.push(items),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        Ok(self)
    }

    /// Constructs deployer ignores, to show the user.
    pub fn warnings(&self) -> &[SshConfigWarning] {
        &self.warnings
    }

    /// The settings for `alias` (the host as typed, e.g. in deployer.ini),
    /// as `ssh -G` would print them with `context`'s user, port and jump
    /// hosts given on its command line.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Unsupported`] when the answer depends on what
    /// deployer does not do as ssh would: a `Match exec` (or `canonical`,
    /// `final`, `localnetwork`, `tagged`…) whose outcome matters,
    /// `ProxyCommand`, `CanonicalizeHostname yes`; and
    /// [`SshConfigError::Invalid`] for a value ssh would refuse once
    /// expanded (an unknown `%` token, an unset `${VAR}`, a `~user` path).
    pub fn resolve(
        &self,
        alias: &str,
        context: &ResolveContext,
    ) -> Result<HostSettings, SshConfigError> {
        let mut state = State {
            alias,
            context,
            found: Found {
                user: context.user.clone(),
                port: context.port,
                route: context.proxy_jump.clone().map(|hops| Route {
                    jump: Some(hops),
                    command: None,
                    path: PathBuf::new(),
                    number: 0,
                }),
                ..Found::default()
            },
        };
        for file in &self.files {
            let mut active = true;
            state.walk(file, &mut active, false)?;
        }
        state.finish()
    }
}

/// Reads one file and, recursively, what it includes (whose owner and
/// permissions are always checked, as ssh does).
fn load_file(
    path: &Path,
    home: &Path,
    user_file: bool,
    check_permissions: bool,
    depth: usize,
    warnings: &mut Vec<SshConfigWarning>,
) -> Result<Vec<Item>, SshConfigError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let read_error = |source| SshConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    if check_permissions {
        // The file as opened (fstat), so it cannot be swapped in between.
        let meta = file.metadata().map_err(read_error)?;
        let me = rustix::process::getuid().as_raw();
        let owner_ok = meta.uid() == 0 || meta.uid() == me;
        let mode_ok = meta.mode() & 0o002 == 0
            && (meta.mode() & 0o020 == 0
                || group_write_is_harmless(&group_facts(meta.gid(), meta.uid()), me));
        if !owner_ok || !mode_ok {
            return Err(SshConfigError::Permissions {
                path: path.to_path_buf(),
                uid: meta.uid(),
                mode: meta.mode() & 0o7777,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    let mut items = parse_items(&text, path, warnings)?;
    for item in &mut items {
        let ItemKind::Include(names, files) = &mut item.kind else {
            continue;
        };
        if depth + 1 >= MAX_INCLUDE_DEPTH {
            return Err(SshConfigError::IncludeTooDeep {
                path: item.path.clone(),
                line: item.number,
            });
        }
        for name in names.iter() {
            if name.starts_with('~') && !user_file {
                return Err(SshConfigError::Invalid {
                    path: item.path.clone(),
                    line: item.number,
                    message: format!("bad include path `{name}`: `~` only in the user's file"),
                });
            }
            let base = if user_file {
                home.join(".ssh")
            } else {
                PathBuf::from("/etc/ssh")
            };
            for included in expand_include(name, home, &base) {
                match load_file(&included, home, user_file, true, depth + 1, warnings) {
                    Ok(f) => files.push(f),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(items)
}

/// What the user and group databases say about a group-writable file's
/// group, for [`group_write_is_harmless`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct GroupFacts {
    /// The group's supplementary members, `None` when the group is unknown.
    members: Option<Vec<String>>,
    /// The uids of every account whose primary group it is.
    primary_of: Vec<u32>,
    /// The file owner's account name, `None` when the uid has no entry.
    owner_name: Option<String>,
}

/// Debian's rule for a group-writable config file (its OpenSSH patch
/// "Allow harmless group-writability", for user-private groups): harmless
/// when the group exists, every account with it as primary group is the
/// running user (`me`), it lists at most one supplementary member and that
/// member is the file's owner, and it has at least one member of either
/// kind. Anything unknown is not harmless.
fn group_write_is_harmless(facts: &GroupFacts, me: u32) -> bool {
    let (Some(members), Some(owner)) = (&facts.members, &facts.owner_name) else {
        return false;
    };
    if facts.primary_of.iter().any(|&uid| uid != me) {
        return false;
    }
    match members.as_slice() {
        [] => !facts.primary_of.is_empty(),
        [only] => only == owner,
        _ => false,
    }
}

/// Asks the system's user and group databases (NSS, as ssh does) about
/// group `gid` and the file owner `owner`: `getgrgid`, every `getpwent`
/// entry, `getpwuid`.
fn group_facts(gid: u32, owner: u32) -> GroupFacts {
    use std::ffi::CStr;
    // getpwent has one cursor per process.
    static PWENT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let mut facts = GroupFacts {
        owner_name: crate::operator::user_name(owner),
        ..GroupFacts::default()
    };
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: an all-zero group is a valid value for getgrgid_r to fill
        // in; `buf` outlives every use of the pointers it fills.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc =
            unsafe { libc::getgrgid_r(gid, &mut group, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc == 0 && !result.is_null() {
            let mut members = Vec::new();
            let mut at = group.gr_mem;
            // SAFETY: gr_mem is a NULL-terminated array of C strings in `buf`.
            while !at.is_null() && unsafe { !(*at).is_null() } {
                members.push(
                    unsafe { CStr::from_ptr(*at) }
                        .to_string_lossy()
                        .into_owned(),
                );
                at = unsafe { at.add(1) };
            }
            facts.members = Some(members);
        }
        break;
    }
    let _cursor = PWENT.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: setpwent/getpwent/endpwent under the lock above; each entry is
    // read before the next call.
    unsafe {
        libc::setpwent();
        loop {
            let pw = libc::getpwent();
            if pw.is_null() {
                break;
            }
            if (*pw).pw_gid == gid {
                facts.primary_of.push((*pw).pw_uid);
            }
        }
        libc::endpwent();
    }
    facts
}

/// The route options, which share one slot in ssh: whichever of
/// `ProxyJump` and `ProxyCommand` comes first wins.
#[derive(Debug, Clone)]
struct Route {
    /// `ProxyJump`: `Some(vec![])` for `none`.
    jump: Option<Vec<JumpHost>>,
    /// `ProxyCommand` (when not `none`).
    command: Option<String>,
    path: PathBuf,
    number: usize,
}

/// Options as found so far (first value wins).
#[derive(Debug, Default)]
struct Found {
    host_name: Option<String>,
    /// Where the `HostName` obtained was set.
    host_name_at: Option<(PathBuf, usize)>,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<String>,
    user_known_hosts: Option<Vec<String>>,
    global_known_hosts: Option<Vec<String>>,
    strict: Option<StrictHostKeyChecking>,
    hash_known_hosts: Option<bool>,
    connect_timeout: Option<Duration>,
    host_key_alias: Option<String>,
    identities_only: Option<bool>,
    server_alive_interval: Option<Duration>,
    server_alive_count_max: Option<u32>,
    route: Option<Route>,
    canonicalize: Option<(String, PathBuf, usize)>,
    ignore_unknown: Option<String>,
    /// Where each `IdentityFile` and `UserKnownHostsFile` value obtained
    /// was set (key: keyword and value).
    lines: BTreeMap<String, (PathBuf, usize)>,
    /// First values of the options in [`Opt::Checked`], with where.
    checked: BTreeMap<&'static str, (String, PathBuf, usize)>,
    /// Every forwarding of the blocks that apply (they accumulate), with
    /// where: canonical keyword, arguments.
    forwards: Vec<(&'static str, Vec<String>, PathBuf, usize)>,
    /// Every `CertificateFile` of the blocks that apply, with where.
    certificate_files: Vec<(String, PathBuf, usize)>,
}

struct State<'a> {
    alias: &'a str,
    context: &'a ResolveContext,
    found: Found,
}

impl State<'_> {
    fn unsupported(&self, item: &Item, message: String) -> SshConfigError {
        SshConfigError::Unsupported {
            host: self.alias.to_string(),
            path: item.path.clone(),
            line: item.number,
            message,
        }
    }

    /// Walks the items of one file; `active` is shared with the including
    /// file, as in ssh; `never` is set inside an `Include` from an inactive
    /// block (its `Host` and `Match` lines never activate anything).
    fn walk(
        &mut self,
        items: &[Item],
        active: &mut bool,
        never: bool,
    ) -> Result<(), SshConfigError> {
        for item in items {
            match &item.kind {
                ItemKind::Host(patterns) => {
                    *active = !never && host_line_matches(patterns, self.alias);
                }
                // Inside an `Include` from a block that does not apply,
                // nothing can apply, whatever the criteria say.
                ItemKind::Match(_) if never => *active = false,
                ItemKind::Match(criteria) => *active = self.match_line(item, criteria)?,
                ItemKind::Include(_, files) => {
                    let outer = *active;
                    for file in files {
                        self.walk(file, active, never || !outer)?;
                        *active = outer;
                    }
                }
                ItemKind::NeedsEnv(names) => {
                    if let Some(name) = names.iter().find(|n| !self.context.env.contains_key(*n)) {
                        return Err(SshConfigError::Invalid {
                            path: item.path.clone(),
                            line: item.number,
                            message: format!(
                                "`${{{name}}}` is not set; ssh expands it when it reads this \
                                 line and refuses the file (\"env var has no value\")"
                            ),
                        });
                    }
                }
                ItemKind::Set(opt) if *active => self.set(item, opt),
                ItemKind::Set(_) => {}
                // ssh checks every line, whether its block applies or not,
                // against the `IgnoreUnknown` obtained so far.
                ItemKind::Unknown(keyword) => {
                    let ignored = self
                        .found
                        .ignore_unknown
                        .as_deref()
                        .is_some_and(|list| match_pattern_list(keyword, list, true));
                    if !ignored {
                        return Err(SshConfigError::Invalid {
                            path: item.path.clone(),
                            line: item.number,
                            message: format!(
                                "`{keyword}` is not an option of OpenSSH 9.2, which refuses the \
                                 file (\"Bad configuration option\"); list it in `IgnoreUnknown` \
                                 before this line if it is meant for another ssh"
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Evaluates a `Match` line with the options found so far, as ssh
    /// does; refuses when the outcome depends on a criterion deployer
    /// cannot evaluate.
    fn match_line(&self, item: &Item, criteria: &[Criterion]) -> Result<bool, SshConfigError> {
        let host = match &self.found.host_name {
            Some(h) => expand_host_name(h, self.alias)
                .map_err(|m| host_name_error(self.found.host_name_at.as_ref(), item, m))?,
            None => self.alias.to_string(),
        }
        .to_ascii_lowercase();
        let original = self.alias.to_ascii_lowercase();
        let user = self
            .found
            .user
            .as_deref()
            .unwrap_or(&self.context.local_user);
        let mut result = true;
        let mut unknown: Option<&str> = None;
        for c in criteria {
            let r = match &c.what {
                Criterium::All => {
                    // `all` ends the line, and only counts when all before
                    // it matched.
                    if result {
                        result = !c.negated;
                    }
                    break;
                }
                Criterium::Host(list) => match_pattern_list(&host, list, true),
                Criterium::OriginalHost(list) => match_pattern_list(&original, list, true),
                Criterium::User(list) => match_pattern_list(user, list, false),
                Criterium::LocalUser(list) => {
                    match_pattern_list(&self.context.local_user, list, false)
                }
                Criterium::Unsupported(what) => {
                    if what == "final" || what == "canonical" {
                        // Their mere presence makes ssh read the config
                        // twice, which changes what matches.
                        return Err(self.refuse_match(item, what));
                    }
                    unknown.get_or_insert(what);
                    continue;
                }
            };
            if r == c.negated {
                result = false;
            }
        }
        match (result, unknown) {
            (true, Some(what)) => Err(self.refuse_match(item, what)),
            _ => Ok(result),
        }
    }

    fn refuse_match(&self, item: &Item, what: &str) -> SshConfigError {
        self.unsupported(
            item,
            format!(
                "`Match {what}`: whether this block applies depends on something deployer \
                 does not evaluate (it never runs commands or resolves names to decide), \
                 so the host is refused rather than reached with other settings than ssh's; \
                 use `Host` or `Match host`/`user` instead"
            ),
        )
    }

    fn set(&mut self, item: &Item, opt: &Opt) {
        let f = &mut self.found;
        match opt {
            Opt::HostName(v) => {
                if f.host_name.is_none() {
                    f.host_name = Some(v.clone());
                    f.host_name_at = Some((item.path.clone(), item.number));
                }
            }
            Opt::User(v) => {
                f.user.get_or_insert_with(|| v.clone());
            }
            Opt::Port(p) => {
                f.port.get_or_insert(*p);
            }
            Opt::IdentityFile(v) => {
                if !f.identity_files.contains(v) {
                    f.identity_files.push(v.clone());
                    f.lines.insert(
                        format!("IdentityFile {v}"),
                        (item.path.clone(), item.number),
                    );
                }
            }
            Opt::UserKnownHostsFiles(v) => {
                if f.user_known_hosts.is_none() {
                    f.user_known_hosts = Some(v.clone());
                    for file in v {
                        f.lines.insert(
                            format!("UserKnownHostsFile {file}"),
                            (item.path.clone(), item.number),
                        );
                    }
                }
            }
            Opt::GlobalKnownHostsFiles(v) => {
                f.global_known_hosts.get_or_insert_with(|| v.clone());
            }
            Opt::StrictHostKeyChecking(s) => {
                f.strict.get_or_insert(*s);
            }
            Opt::HashKnownHosts(b) => {
                f.hash_known_hosts.get_or_insert(*b);
            }
            Opt::ConnectTimeout(t) => {
                f.connect_timeout.get_or_insert(*t);
            }
            Opt::HostKeyAlias(v) => {
                f.host_key_alias.get_or_insert_with(|| v.clone());
            }
            Opt::IdentitiesOnly(b) => {
                f.identities_only.get_or_insert(*b);
            }
            Opt::ServerAliveInterval(t) => {
                f.server_alive_interval.get_or_insert(*t);
            }
            Opt::ServerAliveCountMax(n) => {
                f.server_alive_count_max.get_or_insert(*n);
            }
            Opt::ProxyJump(hops) => {
                f.route.get_or_insert_with(|| Route {
                    jump: Some(hops.clone().unwrap_or_default()),
                    command: None,
                    path: item.path.clone(),
                    number: item.number,
                });
            }
            Opt::ProxyCommand(command) => {
                f.route.get_or_insert_with(|| Route {
                    jump: None,
                    command: (!command.eq_ignore_ascii_case("none")).then(|| command.clone()),
                    path: item.path.clone(),
                    number: item.number,
                });
            }
            Opt::CanonicalizeHostname(v) => {
                f.canonicalize
                    .get_or_insert_with(|| (v.clone(), item.path.clone(), item.number));
            }
            Opt::IgnoreUnknown(v) => {
                f.ignore_unknown.get_or_insert_with(|| v.clone());
            }
            Opt::Checked(keyword, v) => {
                f.checked
                    .entry(keyword)
                    .or_insert_with(|| (v.clone(), item.path.clone(), item.number));
            }
            Opt::CertificateFile(v) => {
                f.certificate_files
                    .push((v.clone(), item.path.clone(), item.number));
            }
            Opt::Forward(keyword, args) => {
                f.forwards
                    .push((keyword, args.clone(), item.path.clone(), item.number));
            }
        }
    }

    /// What ssh does after reading the files: fill in the host name,
    /// refuse what deployer cannot do, expand tokens in paths.
    fn finish(self) -> Result<HostSettings, SshConfigError> {
        let f = self.found;
        let cx = self.context;
        let alias = self.alias;
        let at = |path: &Path, line: usize, message: String| SshConfigError::Unsupported {
            host: alias.to_string(),
            path: path.to_path_buf(),
            line,
            message,
        };
        for (keyword, (value, path, line)) in &f.checked {
            if let Some(message) = refused_obtained_value(keyword, value) {
                return Err(at(path, *line, message));
            }
        }
        if let Some((value, path, line)) = &f.canonicalize {
            if value != "no" && value != "false" {
                return Err(at(
                    path,
                    *line,
                    format!(
                        "`CanonicalizeHostname {value}`: ssh would look the name up in DNS \
                         and read the configuration again for the name it finds; deployer \
                         does not, so it refuses the host rather than reach another one \
                         (set `CanonicalizeHostname no` for this host, or write its full \
                         name in deployer.ini)"
                    ),
                ));
            }
        }
        if let Some(Route {
            command: Some(command),
            path,
            number,
            ..
        }) = &f.route
        {
            return Err(at(
                path,
                *number,
                format!(
                    "`ProxyCommand {command}` is not supported: deployer never runs a \
                     command to connect, and never ignores one that decides the route; \
                     use `ProxyJump` (supported) instead, or `ProxyCommand none` for a \
                     host that must be reached directly"
                ),
            ));
        }
        let mut host = match (&f.host_name, &f.host_name_at) {
            (Some(h), Some((path, line))) => {
                expand_host_name(h, alias).map_err(|m| SshConfigError::Invalid {
                    path: path.clone(),
                    line: *line,
                    message: m,
                })?
            }
            _ => alias.to_string(),
        };
        if !is_address(&host) {
            host = host.to_ascii_lowercase();
        }
        let user = f.user.clone().unwrap_or_else(|| cx.local_user.clone());
        let port = f.port.unwrap_or(22);
        let host_key_alias = f.host_key_alias.as_ref().map(|a| a.to_ascii_lowercase());
        let short = cx.local_host.split('.').next().unwrap_or("").to_string();
        let port_text = port.to_string();
        let uid = cx.uid.to_string();
        let home = cx.home.to_string_lossy().into_owned();
        let conn_hash = sha1_hex(format!("{}{host}{port}{user}", cx.local_host).as_bytes());
        let tokens: [(char, &str); 11] = [
            ('C', &conn_hash),
            ('L', &short),
            ('i', &uid),
            ('k', host_key_alias.as_deref().unwrap_or(alias)),
            ('l', &cx.local_host),
            ('n', alias),
            ('p', &port_text),
            ('d', &home),
            ('h', &host),
            ('r', &user),
            ('u', &cx.local_user),
        ];
        debug_assert!(tokens
            .iter()
            .map(|(k, _)| *k)
            .eq(CLIENT_TOKENS.iter().copied()));
        let path_of = |text: &str, what: &str| -> Result<PathBuf, SshConfigError> {
            let (path, line) = f
                .lines
                .get(&format!("{what} {text}"))
                .cloned()
                .unwrap_or_else(|| (PathBuf::from(what), 0));
            let tilde = expand_tilde(text, &cx.home).map_err(|m| SshConfigError::Invalid {
                path: path.clone(),
                line,
                message: format!("`{what} {text}`: {m}"),
            })?;
            expand_percent_dollar(&tilde, &tokens, Some(&cx.env))
                .map(PathBuf::from)
                .map_err(|m| SshConfigError::Unsupported {
                    host: alias.to_string(),
                    path,
                    line,
                    message: format!("`{what} {text}`: {m}"),
                })
        };
        let identity_files = f
            .identity_files
            .iter()
            .map(|p| path_of(p, "IdentityFile"))
            .collect::<Result<Vec<_>, _>>()?;
        // ssh drops a line naming a file exactly as an earlier one did,
        // but offers a file twice when two lines spell it differently: a
        // second offer of a key the server refused cannot succeed and
        // spends one of its `MaxAuthTries`, so deployer offers it once.
        let mut unique = Vec::new();
        let mut repeated = Vec::new();
        for p in identity_files {
            if !unique.contains(&p) {
                unique.push(p);
            } else if !repeated.contains(&p) {
                repeated.push(p);
            }
        }
        let user_known_hosts_files = match &f.user_known_hosts {
            Some(list) if list.len() == 1 && list[0].eq_ignore_ascii_case("none") => {
                vec![PathBuf::from("/dev/null")]
            }
            Some(list) => list
                .iter()
                .map(|p| path_of(p, "UserKnownHostsFile"))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let global_known_hosts_files = match &f.global_known_hosts {
            Some(list) if list.len() == 1 && list[0].eq_ignore_ascii_case("none") => Some(vec![]),
            Some(list) => Some(
                list.iter()
                    .map(|p| {
                        expand_tilde(p, &cx.home).map(PathBuf::from).map_err(|m| {
                            SshConfigError::Invalid {
                                path: PathBuf::from("GlobalKnownHostsFile"),
                                line: 0,
                                message: m,
                            }
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        // ssh expands these paths (unless `none`, or a flag) before it
        // connects, and refuses unknown `%` tokens and unset variables.
        for keyword in ["ControlPath", "IdentityAgent", "ForwardAgent"] {
            let Some((value, path, line)) = f.checked.get(keyword) else {
                continue;
            };
            let skip = match keyword {
                "ControlPath" => value.eq_ignore_ascii_case("none"),
                "ForwardAgent" => FLAG.iter().any(|v| v.eq_ignore_ascii_case(value)),
                _ => false,
            };
            if !skip {
                if let Err(m) = expand_percent_dollar(value, &tokens, Some(&cx.env)) {
                    return Err(at(
                        path,
                        *line,
                        format!("`{keyword} {value}`: {m}; ssh refuses it when connecting"),
                    ));
                }
            }
        }
        // ssh expands `RemoteCommand` and the socket paths of forwardings
        // before it connects (without `${VAR}`, which it expanded when
        // reading the line), and `CertificateFile` (with `${VAR}`) when
        // it loads the keys.
        let mut expanded: Vec<(String, &PathBuf, usize, String, bool)> = Vec::new();
        if let Some((value, path, line)) = f.checked.get("RemoteCommand") {
            if !value.eq_ignore_ascii_case("none") {
                let what = format!("RemoteCommand {value}");
                expanded.push((what, path, *line, value.clone(), false));
            }
        }
        for (keyword, args, path, line) in &f.forwards {
            let args: Vec<String> = args.iter().map(|a| expand_dollar(a, &cx.env)).collect();
            if let Ok((spec, _, _)) = forward_spec(keyword, &args) {
                for socket in forward_socket_paths(&spec) {
                    let what = format!("{keyword} {}", args.join(" "));
                    expanded.push((what, path, *line, socket, false));
                }
            }
        }
        for (value, path, line) in &f.certificate_files {
            let what = format!("CertificateFile {value}");
            expanded.push((what, path, *line, value.clone(), true));
        }
        for (what, path, line, value, dollar) in expanded {
            let env = dollar.then_some(&cx.env);
            if let Err(m) = expand_percent_dollar(&value, &tokens, env) {
                return Err(SshConfigError::Invalid {
                    path: path.clone(),
                    line,
                    message: format!("`{what}`: {m}"),
                });
            }
        }
        // ssh refuses a last hop that is the destination itself.
        if let Some(Route {
            jump: Some(hops),
            path,
            number,
            ..
        }) = &f.route
        {
            if let Some(last) = hops.last() {
                if last.host == host
                    && last.port.unwrap_or(22) == port
                    && last.user.as_deref().unwrap_or(&user) == user
                {
                    return Err(at(
                        path,
                        *number,
                        format!(
                            "`ProxyJump`: the last jump host `{last}` is `{user}@{host}:{port}` \
                             itself (ssh refuses this \"jumphost loop\")"
                        ),
                    ));
                }
            }
        }
        Ok(HostSettings {
            host_name: Some(host),
            user: f.user,
            port: f.port,
            identity_files: unique,
            identity_files_repeated: repeated,
            user_known_hosts_files,
            global_known_hosts_files,
            strict_host_key_checking: f.strict,
            hash_known_hosts: f.hash_known_hosts,
            connect_timeout: f.connect_timeout,
            host_key_alias,
            identities_only: f.identities_only,
            server_alive_interval: f.server_alive_interval,
            server_alive_count_max: f.server_alive_count_max,
            proxy_jump: f.route.and_then(|r| r.jump),
        })
    }
}

/// Whether ssh's `Host` line matches: any matching negated pattern vetoes
/// the line, and otherwise one positive match is needed; patterns are
/// matched against the name as typed, case-sensitively.
fn host_line_matches(patterns: &[HostPattern], alias: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if wildcard_match(&p.pattern, alias) {
            if p.negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// The `%` tokens ssh expands (besides `%%`) in `IdentityFile`,
/// `CertificateFile`, `UserKnownHostsFile`, `ControlPath`,
/// `IdentityAgent`, `ForwardAgent`, `RemoteCommand` and the socket paths of
/// forwardings: OpenSSH 9.2's `DEFAULT_CLIENT_PERCENT_EXPAND_ARGS`. Any
/// other token there makes ssh refuse the configuration.
const CLIENT_TOKENS: &[char] = &['C', 'L', 'i', 'k', 'l', 'n', 'p', 'd', 'h', 'r', 'u'];

/// `HostName` with `%h` (the alias) and `%%` expanded, the only tokens
/// ssh expands there (ssh refuses the configuration for any other, and
/// leaves `${VAR}` as written).
fn expand_host_name(value: &str, alias: &str) -> Result<String, String> {
    expand_percent_dollar(value, &[('h', alias)], None)
        .map_err(|m| format!("`HostName {value}`: {m}"))
}

/// A `HostName` ssh refuses (a token other than `%h`), at its own line
/// (`item`, the line being evaluated, when it was not recorded).
fn host_name_error(at: Option<&(PathBuf, usize)>, item: &Item, message: String) -> SshConfigError {
    let (path, line) = at
        .cloned()
        .unwrap_or_else(|| (item.path.clone(), item.number));
    SshConfigError::Invalid {
        path,
        line,
        message,
    }
}

/// `${VAR}` replaced from `env` (an unset one by nothing: lines that need
/// one are refused before, see `required_env`), as ssh does when it reads
/// a forwarding.
fn expand_dollar(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else { break };
        out.push_str(&rest[..at]);
        out.push_str(env.get(&after[..end]).map_or("", String::as_str));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// An IPv4 or IPv6 address literal (which ssh does not lowercase).
fn is_address(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// `%` tokens from `tokens`, `%%`, and `${VAR}` from `env`, as ssh's
/// `percent_dollar_expand`: an unknown token, a lone `%`, an unterminated
/// or empty `${` or an unset variable is an error. Without `env`, as ssh's
/// `percent_expand`: `${VAR}` stays as written.
fn expand_percent_dollar(
    text: &str,
    tokens: &[(char, &str)],
    env: Option<&BTreeMap<String, String>>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let (Some(after), Some(env)) = (rest.strip_prefix("${"), env) {
            let Some(end) = after.find('}') else {
                return Err("`${` without a closing `}`".to_string());
            };
            let name = &after[..end];
            if name.is_empty() {
                return Err("empty `${}`".to_string());
            }
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => return Err(format!("environment variable `{name}` is not set")),
            }
            rest = &after[end + 1..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(t) = rest.chars().next() else {
            return Err("a lone `%` at the end (write `%%`)".to_string());
        };
        rest = &rest[t.len_utf8()..];
        if t == '%' {
            out.push('%');
        } else if let Some((_, v)) = tokens.iter().find(|(k, _)| *k == t) {
            out.push_str(v);
        } else {
            let known: Vec<String> = tokens.iter().map(|(k, _)| format!("`%{k}`")).collect();
            return Err(format!(
                "ssh refuses the token `%{t}` here (\"unknown key %{t}\"); it expands only {} \
                 and `%%` (a literal `%`)",
                known.join(", ")
            ));
        }
    }
    Ok(out)
}

/// `~` or `~/...` relative to `home`; `~user` is refused; anything else
/// unchanged.
fn expand_tilde(path: &str, home: &Path) -> Result<String, String> {
    let Some(rest) = path.strip_prefix('~') else {
        return Ok(path.to_string());
    };
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(format!(
            "`{path}`: `~user` paths are not supported; write the full path"
        ));
    }
    let rest = rest.trim_start_matches('/');
    let home = home.to_string_lossy();
    let home = home.trim_end_matches('/');
    Ok(format!("{home}/{rest}"))
}

/// The files an `Include` argument names, as ssh's `glob(3)` finds them:
/// each path component with a `*`, `?` or `[` set is matched against its
/// directory's entries (see [`compile_glob`] and [`glob_match`]), the
/// others are taken as written (backslashes removed); only regular files
/// are kept, sorted byte by byte as glob(3) sorts them.
fn expand_include(name: &str, home: &Path, base: &Path) -> Vec<PathBuf> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let path = match expand_tilde(name, home) {
        Ok(p) => PathBuf::from(p),
        Err(_) => return Vec::new(),
    };
    let path = if path.is_absolute() {
        path
    } else {
        base.join(path)
    };
    let mut candidates = vec![PathBuf::new()];
    for component in path.components() {
        let Some(items) = compile_glob(component.as_os_str().as_bytes()) else {
            return Vec::new();
        };
        let literal: Option<Vec<u8>> = items
            .iter()
            .map(|item| match item {
                GlobItem::Byte { byte, .. } => Some(*byte),
                _ => None,
            })
            .collect();
        if let Some(literal) = literal {
            for c in &mut candidates {
                c.push(OsStr::from_bytes(&literal));
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &candidates {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            // glob(3) reads `.` and `..` too, which `read_dir` leaves out.
            let dots = [".", ".."].map(std::ffi::OsString::from);
            let names = entries.flatten().map(|e| e.file_name()).chain(dots);
            for file_name in names {
                if glob_match(&items, file_name.as_bytes()) {
                    next.push(dir.join(&file_name));
                }
            }
        }
        candidates = next;
    }
    candidates.retain(|p| p.is_file());
    candidates.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    candidates
}

/// One element of a pattern for one path component, as OpenSSH's
/// `glob(3)` (OpenBSD's, which Debian's ssh is built with) compiles it.
#[derive(Debug, Clone, PartialEq)]
enum GlobItem {
    /// A byte that must be there; `quoted` when a backslash protected it
    /// (then it is never special, not even a leading `.`).
    Byte { byte: u8, quoted: bool },
    /// `?`: any one byte.
    One,
    /// `*`: any run of bytes.
    All,
    /// `[...]` or `[!...]`: one byte in (or not in) the set.
    Set {
        negated: bool,
        members: Vec<SetMember>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum SetMember {
    Byte(u8),
    /// `a-z`: from and to, inclusive, compared as unsigned bytes.
    Range(u8, u8),
    /// `[:alpha:]`…, in the C locale: its index in [`GLOB_CLASSES`].
    Class(usize),
}

/// Whether a byte is in a glob(3) `[:name:]` class.
type ByteClass = fn(&u8) -> bool;

/// The `[:name:]` classes glob(3) knows.
const GLOB_CLASSES: &[(&str, ByteClass)] = &[
    ("alnum", u8::is_ascii_alphanumeric),
    ("alpha", u8::is_ascii_alphabetic),
    ("blank", |b| *b == b' ' || *b == b'\t'),
    ("cntrl", u8::is_ascii_control),
    ("digit", u8::is_ascii_digit),
    ("graph", u8::is_ascii_graphic),
    ("lower", u8::is_ascii_lowercase),
    ("print", |b| b.is_ascii_graphic() || *b == b' '),
    ("punct", u8::is_ascii_punctuation),
    ("space", |b| b" \t\n\x0b\x0c\r".contains(b)),
    ("upper", u8::is_ascii_uppercase),
    ("xdigit", u8::is_ascii_hexdigit),
];

/// Compiles one path component of an `Include` pattern by glob(3)'s rules:
/// a backslash quotes the next byte; `*` and `?` are wildcards; `[` opens
/// a set only when an unquoted `]` follows (after the first member, so a
/// `]` first is a member), `!` first negates it (`^` does not), `a-z` is
/// a range unless the `-` is last, `[:alpha:]`… are classes. `None` for
/// an unknown class name, with which glob(3) matches nothing.
fn compile_glob(component: &[u8]) -> Option<Vec<GlobItem>> {
    // (byte, quoted)
    let mut chars = Vec::with_capacity(component.len());
    let mut bytes = component.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => chars.push((bytes.next().unwrap_or(b'\\'), true)),
            _ => chars.push((b, false)),
        }
    }
    let plain = |i: usize, want: u8| chars.get(i) == Some(&(want, false));
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (b, quoted) = chars[i];
        i += 1;
        match (b, quoted) {
            (b'?', false) => items.push(GlobItem::One),
            (b'*', false) => {
                if items.last() != Some(&GlobItem::All) {
                    items.push(GlobItem::All);
                }
            }
            (b'[', false) => {
                let negated = plain(i, b'!');
                let first = i + usize::from(negated);
                let closed = first < chars.len() && chars[first + 1..].contains(&(b']', false));
                if !closed {
                    items.push(GlobItem::Byte { byte: b'[', quoted });
                    continue;
                }
                let mut members = Vec::new();
                let mut j = first;
                // The first member may be `]` itself.
                let mut at_start = true;
                while j < chars.len() {
                    if !at_start && plain(j, b']') {
                        j += 1;
                        break;
                    }
                    at_start = false;
                    if plain(j, b'[') && plain(j + 1, b':') {
                        match glob_class(&chars, j + 2) {
                            Some(Ok((class, next))) => {
                                members.push(SetMember::Class(class));
                                j = next;
                                continue;
                            }
                            Some(Err(())) => return None,
                            // Not a class: `[` is a member.
                            None => {}
                        }
                    }
                    let (c, _) = chars[j];
                    match chars.get(j + 2) {
                        Some(&(end, _)) if plain(j + 1, b'-') && !plain(j + 2, b']') => {
                            members.push(SetMember::Range(c, end));
                            j += 3;
                        }
                        _ => {
                            members.push(SetMember::Byte(c));
                            j += 1;
                        }
                    }
                }
                items.push(GlobItem::Set { negated, members });
                i = j;
            }
            _ => items.push(GlobItem::Byte { byte: b, quoted }),
        }
    }
    Some(items)
}

/// A `[:name:]` class whose name starts at `start` (after `[:`): the
/// class and where the set goes on, `Err` for an unknown name, `None`
/// when no unquoted `:]` follows (then it is no class).
fn glob_class(chars: &[(u8, bool)], start: usize) -> Option<Result<(usize, usize), ()>> {
    let colon = start + chars[start..].iter().position(|&c| c == (b':', false))?;
    if chars.get(colon + 1) != Some(&(b']', false)) {
        return None;
    }
    let name: Vec<u8> = chars[start..colon].iter().map(|&(b, _)| b).collect();
    let quoted = chars[start..colon].iter().any(|&(_, q)| q);
    Some(
        GLOB_CLASSES
            .iter()
            .position(|(n, _)| !quoted && n.as_bytes() == name.as_slice())
            .map(|class| (class, colon + 2))
            .ok_or(()),
    )
}

/// Whether a compiled component matches a directory entry's name, byte
/// by byte; a name starting with `.` only matches a pattern starting with
/// an unquoted `.` (never a wildcard or a set).
fn glob_match(items: &[GlobItem], name: &[u8]) -> bool {
    if name.first() == Some(&b'.')
        && items.first()
            != Some(&GlobItem::Byte {
                byte: b'.',
                quoted: false,
            })
    {
        return false;
    }
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and where its next try starts in the name.
    let mut star: Option<(usize, usize)> = None;
    loop {
        let step = match items.get(pi) {
            None if ni == name.len() => return true,
            None => false,
            Some(GlobItem::All) => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(item) => name.get(ni).is_some_and(|&k| match item {
                GlobItem::Byte { byte, .. } => *byte == k,
                GlobItem::One | GlobItem::All => true,
                GlobItem::Set { negated, members } => {
                    let hit = members.iter().any(|m| match m {
                        SetMember::Byte(b) => *b == k,
                        SetMember::Range(from, to) => (*from..=*to).contains(&k),
                        SetMember::Class(class) => (GLOB_CLASSES[*class].1)(&k),
                    });
                    hit != *negated
                }
            }),
        };
        if step {
            pi += 1;
            ni += 1;
            continue;
        }
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
}

/// SHA-1 of `data` in lower-case hex: ssh's `%C` is the SHA-1 of the local
/// host name, remote host, port and user.
fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "/home/op";

    fn parse(text: &str) -> SshConfigFile {
        SshConfigFile::parse(text, Path::new("config")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn context() -> ResolveContext {
        ResolveContext {
            home: PathBuf::from(HOME),
            local_user: "op".into(),
            uid: 1000,
            local_host: "laptop.example.org".into(),
            env: [("HOME".to_string(), HOME.to_string())].into(),
            ..ResolveContext::default()
        }
    }

    fn resolve(text: &str, alias: &str) -> HostSettings {
        parse(text)
            .resolve(alias, &context())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn with_home(home: &Path) -> ResolveContext {
        ResolveContext {
            home: home.to_path_buf(),
            ..context()
        }
    }

    #[test]
    fn wildcard_patterns() {
        let table: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("*.ooni.org", "ams-pg.ooni.org", true),
            ("*.ooni.org", "ooni.org", false),
            ("ams-*", "ams-pg.ooni.org", true),
            ("ams-?", "ams-1", true),
            ("ams-?", "ams-12", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*x", "xxxx", true),
            ("web", "web", true),
            ("web", "Web", false),
            ("web", "web1", false),
        ];
        for &(pattern, text, expected) in table {
            assert_eq!(
                wildcard_match(pattern, text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn host_lines_with_several_patterns_and_negation() {
        let config = "Host *.ooni.org !ams-* backend\n  User matched\n";
        let table: &[(&str, Option<&str>)] = &[
            ("fsn.ooni.org", Some("matched")),
            ("backend", Some("matched")),
            ("ams-pg.ooni.org", None),
            ("example.com", None),
        ];
        for &(alias, user) in table {
            assert_eq!(resolve(config, alias).user.as_deref(), user, "{alias}");
        }
        // A negated pattern alone never selects anything.
        assert_eq!(resolve("Host !foo\n User x\n", "bar").user, None);
    }

    #[test]
    fn first_obtained_value_wins_and_defaults_go_last() {
        let config = "\
# global options apply to every host
ConnectTimeout 5

Host web*
  User deploy
  Port 2222

Host web1
  User other
  Port 22
  HostName 10.0.0.1

Host *
  User fallback
  Port 2200
  StrictHostKeyChecking accept-new
";
        let web1 = resolve(config, "web1");
        assert_eq!(web1.user.as_deref(), Some("deploy"));
        assert_eq!(web1.port, Some(2222));
        assert_eq!(web1.host_name.as_deref(), Some("10.0.0.1"));
        assert_eq!(web1.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            web1.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );

        let db = resolve(config, "db");
        assert_eq!(db.user.as_deref(), Some("fallback"));
        assert_eq!(db.port, Some(2200));
        assert_eq!(db.host_name.as_deref(), Some("db"));
    }

    #[test]
    fn nothing_set_gives_defaults() {
        let defaults = HostSettings {
            host_name: Some("any".into()),
            ..HostSettings::default()
        };
        assert_eq!(resolve("", "Any"), defaults);
        assert_eq!(resolve("Host other\n User x\n", "any"), defaults);
    }

    #[test]
    fn host_name_tokens() {
        let table: &[(&str, &str, &str)] = &[
            ("HostName %h.example.org", "web", "web.example.org"),
            ("HostName %h.example.org", "Web", "web.example.org"),
            ("HostName 100%%.%h", "x", "100%.x"),
            ("HostName EXAMPLE.org", "x", "example.org"),
        ];
        for &(line, alias, expected) in table {
            let config = format!("Host *\n {line}\n");
            assert_eq!(
                resolve(&config, alias).host_name.as_deref(),
                Some(expected),
                "{line}"
            );
        }
    }

    #[test]
    fn line_syntax_variants() {
        let table: &[(&str, &str)] = &[
            ("User alice", "alice"),
            ("User=alice", "alice"),
            ("User = alice", "alice"),
            ("  user\talice  ", "alice"),
            ("USER alice", "alice"),
            ("uSeR=alice # who we are", "alice"),
            ("User \"alice\"", "alice"),
            ("User 'alice'", "alice"),
            ("User \"al ice\"", "al ice"),
            ("User al\"ice\"", "alice"),
            ("User \"#notacomment\"", "#notacomment"),
        ];
        for &(line, user) in table {
            assert_eq!(resolve(line, "h").user.as_deref(), Some(user), "{line:?}");
        }
    }

    #[test]
    fn all_options_with_paths_expanded() {
        let config = r#"
Host ams-pg
  HostName ams-pg.ooni.org
  IdentityFile ~/.ssh/id_%h
  IdentityFile "/keys/with space"
  UserKnownHostsFile ~/.ssh/known_hosts_deploy %d/.ssh/known_hosts
  StrictHostKeyChecking yes
  ConnectTimeout 1m30s
  HostKeyAlias ams-pg-key
  IdentitiesOnly yes
  BatchMode yes
  ControlMaster auto
Host *
  IdentityFile ~/.ssh/id_ed25519
  IdentityFile ~/.ssh/id_%h
  IdentityFile %n.key
  UserKnownHostsFile /ignored
"#;
        let settings = resolve(config, "ams-pg");
        assert_eq!(
            settings,
            HostSettings {
                host_name: Some("ams-pg.ooni.org".into()),
                user: None,
                port: None,
                identity_files: vec![
                    "/home/op/.ssh/id_ams-pg.ooni.org".into(),
                    "/keys/with space".into(),
                    "/home/op/.ssh/id_ed25519".into(),
                    "ams-pg.key".into(),
                ],
                user_known_hosts_files: vec![
                    "/home/op/.ssh/known_hosts_deploy".into(),
                    "/home/op/.ssh/known_hosts".into(),
                ],
                strict_host_key_checking: Some(StrictHostKeyChecking::Yes),
                connect_timeout: Some(Duration::from_secs(90)),
                host_key_alias: Some("ams-pg-key".into()),
                identities_only: Some(true),
                ..HostSettings::default()
            }
        );
    }

    #[test]
    fn strict_host_key_checking_values() {
        use StrictHostKeyChecking::*;
        let table: &[(&str, StrictHostKeyChecking)] = &[
            ("yes", Yes),
            ("true", Yes),
            ("accept-new", AcceptNew),
            ("Accept-New", AcceptNew),
            ("no", No),
            ("false", No),
            ("off", No),
            ("ask", Ask),
        ];
        for &(value, expected) in table {
            let config = format!("StrictHostKeyChecking {value}");
            assert_eq!(
                resolve(&config, "h").strict_host_key_checking,
                Some(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn connect_timeout_values() {
        let table: &[(&str, u64)] = &[
            ("10", 10),
            ("0", 0),
            ("1m", 60),
            ("1m30s", 90),
            ("1M30S", 90),
            ("2h", 7200),
            ("1d", 86400),
            ("1w", 604_800),
            ("5s5", 10),
        ];
        for &(value, seconds) in table {
            let config = format!("ConnectTimeout {value}");
            assert_eq!(
                resolve(&config, "h").connect_timeout,
                Some(Duration::from_secs(seconds)),
                "{value}"
            );
        }
    }

    #[test]
    fn known_hosts_none_trusts_and_records_nothing() {
        let settings = resolve("UserKnownHostsFile none", "h");
        assert_eq!(
            settings.user_known_hosts_files,
            vec![PathBuf::from("/dev/null")]
        );
    }

    #[test]
    fn match_criteria_as_ssh_evaluates_them() {
        let config = "\
Match originalhost WEB*,!web9 user op
  Port 2000
Match host *.internal localuser op
  User inside
Match host *,!db* all
  IdentitiesOnly yes
Match !localuser op
  ServerAliveInterval 5
Host db1
  HostName db1.internal
Match host db1.internal
  HashKnownHosts yes
Match all
  ServerAliveCountMax 7
";
        let web = resolve(config, "web1");
        assert_eq!(web.port, Some(2000));
        assert_eq!(web.user, None);
        assert_eq!(web.identities_only, Some(true));
        assert_eq!(web.server_alive_interval, None);
        assert_eq!(web.server_alive_count_max, Some(7));
        assert_eq!(resolve(config, "web9").port, None);

        let db = resolve(config, "db1");
        assert_eq!(db.port, None);
        // `Match host` sees the HostName set so far, lowercased.
        assert_eq!(db.hash_known_hosts, Some(true));
        assert_eq!(db.identities_only, None);
        assert_eq!(db.host_name.as_deref(), Some("db1.internal"));

        // `Match user` sees the user given on the command line.
        let file = parse("Match user deploy\n  Port 2222\n");
        let mut cx = context();
        assert_eq!(file.resolve("h", &cx).unwrap().port, None);
        cx.user = Some("deploy".into());
        assert_eq!(file.resolve("h", &cx).unwrap().port, Some(2222));
    }

    #[test]
    fn hosts_ssh_cannot_be_matched_without_running_something_are_refused() {
        let config = "\
Host web*
  User web
Match host web* exec \"test -e /tmp/vpn\"
  ProxyJump bastion
Match host other !exec \"true\"
  Port 1
";
        let file = parse(config);
        let err = file.resolve("web1", &context()).unwrap_err();
        assert_eq!(
            err.to_string()
                .split(':')
                .take(3)
                .collect::<Vec<_>>()
                .join(":"),
            "host `web1`: config:3"
        );
        assert!(
            err.to_string().contains("`Match exec test -e /tmp/vpn`"),
            "{err}"
        );
        // When another criterion already fails, the outcome is known.
        assert_eq!(file.resolve("db", &context()).unwrap().port, None);
        for refused in [
            "Match final\n",
            "Match canonical host x\n",
            "Match localnetwork 10.0.0.0/8\n",
            "Match tagged x\n",
            "ProxyCommand ssh -W %h:%p bastion\n",
            "CanonicalizeHostname yes\n",
            "CanonicalizeHostname always\n",
        ] {
            let err = parse(refused).resolve("h", &context()).unwrap_err();
            assert!(
                matches!(err, SshConfigError::Unsupported { line: 1, .. }),
                "{refused}: {err}"
            );
        }
        // ProxyJump first wins over a later ProxyCommand, and the reverse.
        let jump = resolve("ProxyJump a\nProxyCommand nc %h %p\n", "h");
        assert_eq!(jump.proxy_jump.unwrap()[0].host, "a");
        assert!(parse("ProxyCommand nc %h %p\nProxyJump a\n")
            .resolve("h", &context())
            .is_err());
        assert_eq!(
            resolve("ProxyCommand none\nProxyJump a\n", "h").proxy_jump,
            None
        );
        assert_eq!(resolve("CanonicalizeHostname no\n", "h").port, None);
    }

    #[test]
    fn tokens_expanded_per_option() {
        let config = "\
Host *
  HostName %h.example.org
  User bob
  Port 2222
  IdentityFile ~/.ssh/id_%h_%r_%p_%u_%n_%L_%l_%i_%%
  UserKnownHostsFile %d/kh_%k ${HOME}/second
  GlobalKnownHostsFile ~/global
";
        let s = resolve(config, "Web");
        assert_eq!(s.host_name.as_deref(), Some("web.example.org"));
        assert_eq!(
            s.identity_files,
            vec![PathBuf::from(
                "/home/op/.ssh/id_web.example.org_bob_2222_op_Web_laptop_laptop.example.org_1000_%"
            )]
        );
        assert_eq!(
            s.user_known_hosts_files,
            vec![
                PathBuf::from("/home/op/kh_Web"),
                PathBuf::from("/home/op/second")
            ]
        );
        assert_eq!(
            s.global_known_hosts_files,
            Some(vec![PathBuf::from("/home/op/global")])
        );
        // %k is the HostKeyAlias when there is one, lowercased.
        let s = resolve("HostKeyAlias KeyName\nUserKnownHostsFile /kh_%k\n", "h");
        assert_eq!(s.user_known_hosts_files, vec![PathBuf::from("/kh_keyname")]);
        // ssh refuses unknown tokens and unset variables.
        for bad in [
            "IdentityFile /k_%z",
            "IdentityFile /k_${NOPE}",
            "UserKnownHostsFile /k_%",
            "HostName %r.example",
            "IdentityFile ~other/key",
        ] {
            assert!(parse(bad).resolve("h", &context()).is_err(), "{bad}");
        }
    }

    #[test]
    fn match_exec_in_a_block_that_does_not_apply_is_not_refused() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(
            ssh.join("vpn"),
            "Match exec \"test -e /run/vpn\"\n  Port 1\n",
        )
        .unwrap();
        std::fs::write(
            ssh.join("config"),
            "Host office-*\n  Include vpn\nHost *\n  User u\n",
        )
        .unwrap();
        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        let cx = with_home(home.path());
        assert_eq!(file.resolve("web", &cx).unwrap().user.as_deref(), Some("u"));
        assert!(file.resolve("office-1", &cx).is_err());
    }

    #[test]
    fn values_are_checked_as_ssh_checks_them_even_where_no_line_applies() {
        let refused = |text: &str| {
            SshConfigFile::parse(text, Path::new("/cfg"))
                .err()
                .map(|e| e.to_string())
        };
        for text in [
            "Compression maybe\n",
            "Host other\n  ForwardAgent ${X\n",
            "Match host other\n  LogLevel LOUD\n",
            "Port 0\n",
            "Host x\n  Port 70000\n",
            "ConnectTimeout -1\n",
            "AddressFamily inet7\n",
            "RequestTTY sometimes\n",
            "ControlMaster maybe\n",
            "Ciphers aes128-ctr,bogus\n",
            "HostKeyAlgorithms foo*\n",
            "ForwardX11 yes no\n",
            "LocalForward 8080\n",
            "PermitRemoteOpen host\n",
            "IPQoS af21 cs1 ef\n",
        ] {
            let message = refused(text).unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(message.starts_with("/cfg:"), "{message}");
        }
        let message = refused("Host a\n  AddressFamily inet7\n").unwrap();
        assert!(
            message.contains("/cfg:2") && message.contains("`inet6`"),
            "{message}"
        );
        for text in [
            "Compression yes\nForwardAgent $SSH_AUTH_SOCK\nLogLevel debug3\n",
            "Ciphers -bogus\nMACs +hmac-sha1\nHostKeyAlgorithms ssh-ed25519*,rsa\n",
            "LocalForward 127.0.0.1:8080 [::1]:80\nRemoteForward 0\nDynamicForward 1080\n",
            "ConnectTimeout +5\nPort +22\nRekeyLimit 1G 1h\nIPQoS 0x10\n",
        ] {
            assert_eq!(refused(text), None, "{text}");
        }
        // What ssh checks only on the value it obtained.
        assert!(resolve_err("ConnectionAttempts 0\n").contains("ConnectionAttempts"));
        assert!(resolve_err("HostKeyAlgorithms !ssh-rsa\n").contains("HostKeyAlgorithms"));
        assert!(resolve_err("ProxyJump h\n").contains("jumphost loop"));
        let _ = resolve("Host other\n  ConnectionAttempts 0\n", "h");
        // `${VAR}` ssh expands while reading: set or not, on every line.
        let err = resolve_err("Host other\n  IdentityAgent ${UNSET}/a\n");
        assert!(err.contains(":2") && err.contains("${UNSET}"), "{err}");
        let _ = resolve("Host other\n  LocalForward 1 ${HOME}:2\n", "h");
        // Tokens ssh expands in the obtained value only.
        assert!(resolve_err("ControlPath /a/%Z\n").contains("%Z"));
        let _ = resolve("Host other\n  ControlPath /a/%Z\n", "h");
    }

    fn resolve_err(text: &str) -> String {
        parse(text)
            .resolve("h", &context())
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn sha1_of_known_vectors() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1_hex(&[b'a'; 1000]),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
    }

    #[test]
    fn ports_as_ssh_reads_them() {
        let services =
            "ssh\t\t22/tcp\t\t\t# SSH Remote Login Protocol\nhttp 80/tcp www\ndomain 53/udp\n";
        assert_eq!(service_port("ssh", services), Some(22));
        assert_eq!(service_port("www", services), Some(80));
        assert_eq!(service_port("domain", services), None);
        assert_eq!(parse_port("2222"), Some(2222));
        assert_eq!(parse_port("0"), None);
    }

    #[test]
    fn proxy_jump_values() {
        let s = resolve(
            "ProxyJump ops@bastion:2222,[2001:db8::1]:22,ssh://u@inner # c\n",
            "h",
        );
        let hops: Vec<String> = s
            .proxy_jump
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(hops, ["ops@bastion:2222", "[2001:db8::1]:22", "u@inner"]);
        assert_eq!(resolve("ProxyJump none\n", "h").proxy_jump, Some(vec![]));
        assert!(SshConfigFile::parse("ProxyJump a,,b\n", Path::new("config")).is_err());
    }

    #[test]
    fn errors_name_file_line_and_what_is_accepted() {
        let table: &[(&str, &str)] = &[
            (
                "Host a\n  Port nosuchservice\n",
                "config:2: `Port` must be a number from 1 to 65535 or a service name \
                 from `/etc/services`, not `nosuchservice`",
            ),
            (
                "Port 0",
                "config:1: `Port` must be a number from 1 to 65535 or a service name \
                 from `/etc/services`, not `0`",
            ),
            (
                "Port 65536",
                "config:1: `Port` must be a number from 1 to 65535 or a service name \
                 from `/etc/services`, not `65536`",
            ),
            (
                "\n\n\nConnectTimeout 5x",
                "config:4: `ConnectTimeout` must be a number of seconds such as `10`, \
                 or a time with units such as `1m30s`, not `5x`",
            ),
            (
                "ConnectTimeout -1",
                "config:1: `ConnectTimeout` must be a number of seconds such as `10`, \
                 or a time with units such as `1m30s`, not `-1`",
            ),
            (
                "StrictHostKeyChecking maybe",
                "config:1: `StrictHostKeyChecking` must be `yes`, `accept-new`, `no`, \
                 `ask` or `off`, not `maybe`",
            ),
            (
                "IdentitiesOnly sometimes",
                "config:1: `IdentitiesOnly` must be `yes` or `no`, not `sometimes`",
            ),
            ("Host", "config:1: `Host` needs at least one pattern"),
            ("User", "config:1: `User` needs a value"),
            (
                "IdentityFile ~/a b",
                "config:1: `IdentityFile` takes one value, found 2 \
                 (quote values that contain spaces)",
            ),
            ("User \"alice", "config:1: unterminated quote `\"`"),
        ];
        for &(config, message) in table {
            let err = SshConfigFile::parse(config, Path::new("config"))
                .expect_err(&format!("{config:?} should be rejected"));
            assert_eq!(err.to_string(), message, "{config:?}");
        }
    }

    #[test]
    fn keywords_of_ssh_that_deployer_does_not_use_are_accepted() {
        let config = "ForwardAgent yes\nControlPath ~/.ssh/cm-%C\nCipher x\nProtocol 2\n\
                      GSSAPIKeyExchange yes\n";
        assert_eq!(resolve(config, "h").host_name.as_deref(), Some("h"));
        assert!(parse(config).warnings().is_empty());
        assert!(KNOWN_KEYWORDS.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert!(UNSUPPORTED_KEYWORDS.iter().all(|k| is_known_keyword(k)));
    }

    #[test]
    fn unsupported_keywords_are_accepted_with_a_warning() {
        let file = parse("Host x\n  KerberosAuthentication yes\n");
        assert_eq!(
            file.warnings()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["config:2: `kerberosauthentication` is not supported by OpenSSH; ignored, as ssh does"]
        );
        assert!(file.resolve("h", &context()).is_ok());
    }

    #[test]
    fn aliases_ssh_still_honours() {
        let s = resolve("IdentityFile2 /k\nSetupTimeOut 7\n", "h");
        assert_eq!(s.identity_files, vec![PathBuf::from("/k")]);
        assert_eq!(s.server_alive_interval, Some(Duration::from_secs(7)));
        let s = resolve("ProtocolKeepAlives 9\n", "h");
        assert_eq!(s.server_alive_interval, Some(Duration::from_secs(9)));
    }

    #[test]
    fn unknown_keywords_are_refused_unless_ignore_unknown_lists_them_first() {
        let refused = |text: &str, alias: &str| {
            parse(text)
                .resolve(alias, &context())
                .expect_err(text)
                .to_string()
        };
        // Wherever it is, whichever host: ssh checks every line.
        assert_eq!(
            refused("Host other\n  SomeFutureOption x y\n", "h"),
            "config:2: `somefutureoption` is not an option of OpenSSH 9.2, which refuses \
             the file (\"Bad configuration option\"); list it in `IgnoreUnknown` before \
             this line if it is meant for another ssh"
        );
        // Listed (patterns, any case) before it, in a block that applies.
        let ok = "IgnoreUnknown useKeychain,Future*\nUseKeychain yes\nFutureThing 1\nUser u\n";
        assert_eq!(resolve(ok, "h").user.as_deref(), Some("u"));
        // Listed after it.
        assert!(refused("UseKeychain yes\nIgnoreUnknown UseKeychain\n", "h").contains(":1:"));
        // Listed in a block that does not apply to this host.
        let per_host = "Host mac\n  IgnoreUnknown UseKeychain\nHost *\n  UseKeychain yes\n";
        assert!(parse(per_host).resolve("mac", &context()).is_ok());
        assert!(refused(per_host, "h").contains(":4:"));
        // The first `IgnoreUnknown` obtained wins; a negation vetoes.
        assert!(refused("IgnoreUnknown a\nIgnoreUnknown b\nB 1\n", "h").contains(":3:"));
        assert!(refused("IgnoreUnknown *,!b\nB 1\n", "h").contains(":2:"));
        // Without a value, even a listed keyword is refused at once.
        let err = SshConfigFile::parse("IgnoreUnknown x\nX\n", Path::new("config")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config:2: `x` needs a value (ssh refuses a keyword without one)"
        );
    }

    #[test]
    fn unresolved_includes_are_ignored_by_parse() {
        let settings = resolve("Include config.d/*\nUser me\n", "h");
        assert_eq!(settings.user.as_deref(), Some("me"));
    }

    #[test]
    fn load_splices_includes_under_their_host_block() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("config.d")).unwrap();
        std::fs::write(
            ssh.join("config"),
            "Host *.ooni.org\n  Include config.d/*.conf\nHost *\n  User fallback\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/a.conf"), "Port 2222\nMatch all\n").unwrap();
        std::fs::write(
            ssh.join("config.d/b.conf"),
            "Host ams-*\n  User ams\nHost *\n  IdentityFile ~/.ssh/ooni\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/ignored.txt"), "User wrong\n").unwrap();

        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        let ams = file
            .resolve("ams-pg.ooni.org", &with_home(home.path()))
            .unwrap();
        assert_eq!(ams.port, Some(2222));
        assert_eq!(ams.user.as_deref(), Some("ams"));
        assert_eq!(ams.identity_files, vec![ssh.join("ooni")]);

        let fsn = file
            .resolve("fsn.ooni.org", &with_home(home.path()))
            .unwrap();
        assert_eq!(fsn.user.as_deref(), Some("fallback"));
        assert_eq!(fsn.port, Some(2222));

        // Included lines do not escape the Host block that included them.
        let other = file
            .resolve("example.com", &with_home(home.path()))
            .unwrap();
        assert_eq!(other.port, None);
        assert!(other.identity_files.is_empty());

        // `Match all` in an included file does not escape it either.
        assert!(file.warnings().is_empty());
    }

    #[test]
    fn files_others_can_write_are_refused_except_a_named_top_file() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let config = ssh.join("config");
        let part = ssh.join("part");
        std::fs::write(&config, format!("Include {}\n", part.display())).unwrap();
        std::fs::write(&part, "User me\n").unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(&config, 0o644);
        mode(&part, 0o600);
        assert!(SshConfigFile::load(&config, home.path()).is_ok());

        mode(&config, 0o666);
        let err = SshConfigFile::load(&config, home.path()).unwrap_err();
        assert!(
            matches!(&err, SshConfigError::Permissions { path, mode: 0o666, .. } if *path == config),
            "{err}"
        );
        // Named explicitly (ssh -F), the file itself is not checked...
        assert!(SshConfigFile::load_named(&config, home.path()).is_ok());
        // ...but what it includes is, and so are the system file's includes.
        mode(&part, 0o606);
        for err in [
            SshConfigFile::load_named(&config, home.path()).unwrap_err(),
            SshConfigFile::default()
                .with_system(&config, home.path())
                .unwrap_err(),
        ] {
            assert!(
                matches!(&err, SshConfigError::Permissions { path, mode: 0o606, .. } if *path == part),
                "{err}"
            );
        }
        assert!(
            err.to_string().contains("; `chown` it to yourself"),
            "{err}"
        );
    }

    #[test]
    fn group_write_is_harmless_only_in_a_private_group_of_the_user() {
        let facts =
            |members: Option<&[&str]>, primary_of: &[u32], owner: Option<&str>| GroupFacts {
                members: members.map(|m| m.iter().map(|s| s.to_string()).collect()),
                primary_of: primary_of.to_vec(),
                owner_name: owner.map(str::to_string),
            };
        // alice's own group, primary for her alone.
        assert!(group_write_is_harmless(
            &facts(Some(&[]), &[1000], Some("alice")),
            1000
        ));
        // Or listing her alone as a supplementary member.
        assert!(group_write_is_harmless(
            &facts(Some(&["alice"]), &[], Some("alice")),
            1000
        ));
        assert!(group_write_is_harmless(
            &facts(Some(&["alice"]), &[1000], Some("alice")),
            1000
        ));
        // Someone else's primary group, another member, two members, no one.
        assert!(!group_write_is_harmless(
            &facts(Some(&[]), &[1000, 1001], Some("alice")),
            1000
        ));
        assert!(!group_write_is_harmless(
            &facts(Some(&["bob"]), &[1000], Some("alice")),
            1000
        ));
        assert!(!group_write_is_harmless(
            &facts(Some(&["alice", "bob"]), &[], Some("alice")),
            1000
        ));
        assert!(!group_write_is_harmless(
            &facts(Some(&[]), &[], Some("alice")),
            1000
        ));
        // An unknown group or owner.
        assert!(!group_write_is_harmless(
            &facts(None, &[1000], Some("alice")),
            1000
        ));
        assert!(!group_write_is_harmless(
            &facts(Some(&[]), &[1000], None),
            1000
        ));
    }

    #[test]
    fn load_reports_missing_files_and_include_loops() {
        let home = tempfile::tempdir().unwrap();
        let missing = SshConfigFile::load(&home.path().join("nope"), home.path()).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");

        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("config"), "Include config\n").unwrap();
        let err = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap_err();
        assert!(
            matches!(err, SshConfigError::IncludeTooDeep { line: 1, .. }),
            "{err}"
        );

        // A missing include is skipped, as ssh does.
        std::fs::write(ssh.join("config"), "Include absent\nUser me\n").unwrap();
        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        assert_eq!(
            file.resolve("h", &with_home(home.path()))
                .unwrap()
                .user
                .as_deref(),
            Some("me")
        );
    }

    #[test]
    fn backslashes_split_as_ssh_argv_split() {
        let words = |line: &str| split_line(line).unwrap().unwrap().1;
        // Inside quotes `\ ` keeps its backslash; outside it escapes.
        assert_eq!(words(r#"IdentityFile "/k/a\ b""#), [r"/k/a\ b"]);
        assert_eq!(words(r"IdentityFile /k/a\ b"), ["/k/a b"]);
        // Quotes and backslashes are escaped anywhere.
        assert_eq!(
            words(r#"IdentityFile "a\"b" 'c\'d' e\\f"#),
            [r#"a"b"#, "c'd", r"e\f"]
        );
        // Before anything else the backslash stays.
        assert_eq!(words(r#"IdentityFile a\qb "c\qd""#), [r"a\qb", r"c\qd"]);
        // Words split at spaces and tabs only.
        assert_eq!(words("User a\u{b}b\tc"), ["a\u{b}b", "c"]);
        assert!(split_line(r#"IdentityFile "a\""#).is_err());
    }

    #[test]
    fn include_globs_follow_glob3() {
        let m = |pattern: &str, name: &str| {
            compile_glob(pattern.as_bytes()).is_some_and(|g| glob_match(&g, name.as_bytes()))
        };
        let table: &[(&str, &str, bool)] = &[
            ("a[0-9]", "a7", true),
            ("a[0-9]", "ab", false),
            ("a[!0-9]", "ab", true),
            ("a[!0-9]", "a7", false),
            // `^` does not negate in OpenBSD's glob(3).
            ("[^a]x", "^x", true),
            ("[^a]x", "bx", false),
            // `]` first is a member; `-` last is one.
            ("[]]x", "]x", true),
            ("[!]]x", "]x", false),
            ("[a-]x", "-x", true),
            ("[z-a]x", "mx", false),
            // An unclosed `[` is itself.
            ("a[", "a[", true),
            ("[!", "[!", true),
            ("[[:digit:]]1", "71", true),
            ("[[:alpha:]x]1", "x1", true),
            ("[[:alpha:]x]1", "71", false),
            // A leading `.` only by a literal, unquoted `.`.
            ("*", ".hidden", false),
            ("?hidden", ".hidden", false),
            ("[.]hidden", ".hidden", false),
            ("\\.hidden", ".hidden", false),
            (".h*", ".hidden", true),
            // Backslash quotes.
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("a\\1", "a1", true),
            // Bytes, not characters.
            ("??", "\u{e9}", true),
            ("?1", "\u{e9}1", false),
            ("*[0-9]", "ab12", true),
            ("*[0-9]", "ab1x", false),
        ];
        for (pattern, name, want) in table {
            assert_eq!(m(pattern, name), *want, "`{pattern}` against `{name}`");
        }
        // An unknown class matches nothing at all.
        assert!(compile_glob(b"[[:bogus:]]").is_none());
    }

    #[test]
    fn include_glob_classes_select_files_in_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["a1", "a2", "ab", ".a3", "b1"] {
            std::fs::write(d.join(name), "").unwrap();
        }
        for sub in ["s-", "s"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            std::fs::write(d.join(sub).join("x"), "").unwrap();
        }
        std::fs::create_dir_all(d.join("a4")).unwrap();
        let found = |pattern: &str| -> Vec<String> {
            expand_include(pattern, d, d)
                .iter()
                .map(|p| p.strip_prefix(d).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(found("a[0-9]"), ["a1", "a2"]);
        assert_eq!(found("[!b]*"), ["a1", "a2", "ab"]);
        assert_eq!(found(".a[0-9]"), [".a3"]);
        // strcmp order: `s-/x` before `s/x`.
        assert_eq!(found("s*/x"), ["s-/x", "s/x"]);
    }

    #[test]
    fn host_name_tokens_ssh_refuses_are_refused_at_their_line() {
        let config = "Host other\n  HostName %r.never\nHost *\n  User u\n  HostName %r.example\n";
        let e = parse(config)
            .resolve("h", &context())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config:5: `HostName %r.example`"), "{e}");
        assert!(e.contains("`%r`") && e.contains("only `%h`"), "{e}");
        // Found before a `Match host` line that needs it, still at its line.
        let config = "HostName x%u\nMatch host x*\n  User u\n";
        let e = parse(config)
            .resolve("h", &context())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config:1: `HostName x%u`"), "{e}");
        // `${VAR}` stays as written in `HostName`, as ssh leaves it.
        assert_eq!(
            resolve("HostName a${B}", "h").host_name.as_deref(),
            Some("a${b}")
        );
        // `RemoteCommand` and forwarding socket paths take ssh's client tokens.
        for (line, token) in [
            ("RemoteCommand echo %T", "%T"),
            ("LocalForward /s/%j /t", "%j"),
            ("RemoteForward 8080 /t/%z", "%z"),
            ("CertificateFile /c/%j", "%j"),
        ] {
            let e = parse(line)
                .resolve("h", &context())
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("config:1: `") && e.contains(&format!("`{token}`")),
                "{e}"
            );
        }
        let s = resolve(
            "RemoteCommand echo %h %% ${X}\nLocalForward /s/%C /t/%r\n",
            "h",
        );
        assert_eq!(s.host_name.as_deref(), Some("h"));
    }

    #[test]
    fn a_key_file_spelled_twice_is_listed_once_and_marked() {
        let s = resolve(
            "Host h\n  IdentityFile ~/.ssh/k\nHost *\n  IdentityFile ~/.ssh/k\n  \
             IdentityFile %d/.ssh/k\n  IdentityFile /home/op/.ssh/k\n  IdentityFile /j\n",
            "h",
        );
        let key = PathBuf::from("/home/op/.ssh/k");
        assert_eq!(s.identity_files, [key.clone(), PathBuf::from("/j")]);
        assert_eq!(s.identity_files_repeated, [key]);
        // The same line twice (ssh drops the repeat too) is no repetition
        // to report.
        let s = resolve("IdentityFile /j\nHost *\n  IdentityFile /j\n", "h");
        assert_eq!(s.identity_files, [PathBuf::from("/j")]);
        assert!(s.identity_files_repeated.is_empty());
    }
}
