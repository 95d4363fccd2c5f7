//! `deployer.ini` -> [`Config`]: the typed description of the pipeline.
//!
//! [`parse`] is pure: text in, [`Config`] or one [`ConfigError`] out, with
//! every harmless oddity collected in [`Config::warnings`]; hosts come out
//! parsed once, as [`HostSpec`]s. [`load`] refuses a file that someone other
//! than the operator or root could have written ([`untrusted`]), reads it,
//! and expands `~/` against `HOME` ([`expand_home`], the one `~` expansion
//! of deployer.ini paths). This module must not decide what a deploy does:
//! it only says what the operator wrote, checked and typed.
//!
//! The work is split by job: [`locate()`] finds the file (and is the one place
//! that interprets `DEPLOYER_CONFIG`, handed in by the caller); `scan` reads
//! the text into sections and `key`/value/line entries, the one source of
//! values and line numbers; `schema` is the one table of section kinds and
//! their keys; `value` holds the grammar of each kind of value; `error` the
//! [`ConfigError`] they all report with. This file turns a scanned document
//! into a [`Config`].

mod error;
mod gates;
mod locate;
mod scan;
pub mod schema;
mod value;
mod windows;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::operator;
use crate::package::PackageName;
use crate::plan::Share;
use crate::ssh_config::JumpHost;

pub use error::ConfigError;
pub use locate::{locate, untrusted, FILE_NAMES};
pub use value::{webhook_shown, HostSpec, ACCEPTED_BATCH_SIZE, MIN_LOCK_EXPIRY};

use scan::Document;
use schema::{closest, Form, SectionKind};
use value::Invalid;

/// The default `history_file`, beside the configuration file.
pub const DEFAULT_HISTORY_FILE: &str = "deployer-history.jsonl";

/// The default `parallelism`.
pub const DEFAULT_PARALLELISM: usize = 64;

/// The largest accepted `parallelism`.
pub const MAX_PARALLELISM: usize = 1024;

/// The default `max_startups`: connections deployer has starting at once
/// (from the TCP connect to the end of the login) to one SSH server,
/// below the 10 at which sshd's default `MaxStartups 10:30:100` begins to
/// drop new ones.
pub const DEFAULT_MAX_STARTUPS: usize = 8;

/// The default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `dashboard_refresh` when not set: five minutes, the crontab line of
/// the guide (`*/5`).
pub const DEFAULT_DASHBOARD_REFRESH: Duration = Duration::from_secs(300);

/// The host name that means "this machine, without SSH".
pub const LOCAL_HOST: &str = "local";

/// The whole pipeline description read from `deployer.ini`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this configuration was read from.
    pub path: PathBuf,
    /// `badges_path`: the directory, on every host, where `refresh_badges`
    /// writes one SVG badge per package (an absolute path).
    pub badges_path: Option<PathBuf>,
    /// `badges_after_deploy`: refresh the badges of the hosts a deploy
    /// changed, over its sessions, when `badges_path` is set (default yes).
    pub badges_after_deploy: bool,
    /// `badges_png`: write a PNG beside each SVG badge (default no).
    pub badges_png: bool,
    /// `dashboard_changes`: the window of the dashboard's "Last changes"
    /// (the timeline of the hosts), in seconds; `None` (`no`) leaves the
    /// section and its reads out (default 6h).
    pub dashboard_changes: Option<u64>,
    /// `dashboard_refresh`: how often the dashboard page of
    /// `refresh_badges --output` reloads itself, and so how old it may be
    /// before it shows itself stale (three of these); `None` with `0`
    /// (default [`DEFAULT_DASHBOARD_REFRESH`]).
    pub dashboard_refresh: Option<Duration>,
    /// `deb_packages`: the packages managed, in display order.
    pub packages: Vec<PackageName>,
    /// `stages`: the stages, least critical first, each with its hosts.
    pub stages: Vec<Stage>,
    /// SSH connection settings shared by every host.
    pub ssh: SshOptions,
    /// `parallelism`: how many hosts are contacted at once (default 64).
    pub parallelism: usize,
    /// `history_file`: the local audit log (default `deployer-history.jsonl`
    /// beside the configuration file; a relative path is relative to the
    /// configuration file's directory).
    pub history_file: PathBuf,
    /// `batch_size`: after the first host, how many hosts are changed at once,
    /// a count or a percentage of the hosts taking part (default 1); a
    /// stage's own `batch_size` wins.
    pub batch_size: Share,
    /// `rollback_on_failure`: put changed hosts back when a rollout fails
    /// (default no).
    pub rollback_on_failure: bool,
    /// `[package:NAME] health_check`: a command run on each host after install.
    pub health_checks: BTreeMap<PackageName, String>,
    /// `[package:NAME] hold = yes`: the packages whose deployed version is
    /// pinned with `apt-mark hold` after each install, so that `apt-get
    /// upgrade` and unattended-upgrades cannot silently undo a rollback; a
    /// deploy of such a package releases and sets the hold itself
    /// (default no).
    pub holds: BTreeSet<PackageName>,
    /// `[package:NAME] units`, `restart`, `restart_command`,
    /// `logs_command`: the service that runs each package, for the
    /// packages that set any of them.
    pub services: BTreeMap<PackageName, crate::service::Service>,
    /// `[notify]`: who hears about deploys. Read and checked here; nothing
    /// sends notifications yet.
    pub notify: Notify,
    /// `[alerts]` (with the `alert_matchers` of stages and packages): the
    /// Alertmanager whose alerts hold forward deploys; `None` without the
    /// section.
    pub alerts: Option<crate::alerts::Settings>,
    /// `[gate:NAME]`: every gate defined, by NAME.
    pub gates: BTreeMap<String, crate::gate::Gate>,
    /// `[package:NAME] gates`: the gates of a package's deploys, added to
    /// the stage's.
    pub package_gates: BTreeMap<PackageName, Vec<String>>,
    /// Harmless oddities found while reading (unknown keys...), already
    /// worded for the operator.
    pub warnings: Vec<String>,
}

/// The `[notify]` section: where deploys are announced. Every key is
/// optional; without the section nothing is announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// `webhook_url`: an `http://` or `https://` URL that receives a POST
    /// for each event, as written (it may hold a token: never print it).
    pub webhook_url: Option<String>,
    /// `webhook_format`: the body of the POST (default
    /// [`WebhookFormat::Text`]).
    pub webhook_format: WebhookFormat,
    /// `notify_command`: a shell command run on this machine for each
    /// event, with the history record as JSON on its standard input. Taken
    /// as written, like `health_check`: this file is trusted.
    pub notify_command: Option<String>,
    /// `notify_on`: the events announced, in the order written (default:
    /// all of [`NotifyEvent::ALL`]).
    pub notify_on: Vec<NotifyEvent>,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            webhook_url: None,
            webhook_format: WebhookFormat::Text,
            notify_command: None,
            notify_on: NotifyEvent::ALL.to_vec(),
        }
    }
}

impl Notify {
    /// Whether `event` is to be announced, and there is anywhere to
    /// announce it.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        (self.webhook_url.is_some() || self.notify_command.is_some())
            && self.notify_on.contains(&event)
    }
}

/// `webhook_format`: how the webhook's POST body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `text`: the summary as a plain-text body (ntfy and the like).
    Text,
    /// `slack`: a JSON body `{"text": ...}`, as Slack-compatible incoming
    /// webhooks take.
    Slack,
}

/// A moment of a deploy, or a change of a stage's state, that can be
/// announced (`notify_on`). A record is announced when any of its events
/// is listed ([`crate::notify::events_of`]): a rollback's success is both
/// `success` and `rollback`, so a team may follow rollbacks, freezes and
/// unlocks without the noise of every deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyEvent {
    /// `start`: a deploy, promotion or rollback begins changing hosts.
    Start,
    /// `success`: every host was changed.
    Success,
    /// `failure`: the deploy failed on some host.
    Failure,
    /// `interrupt`: a signal stopped the deploy.
    Interrupt,
    /// `rollback`: a rollback began or ended (whatever its outcome),
    /// under a freeze or not.
    Rollback,
    /// `freeze`: a stage was frozen (`deployer freeze`).
    Freeze,
    /// `unfreeze`: a stage's freeze was lifted (`deployer unfreeze`).
    Unfreeze,
    /// `unlock`: a stage's deploy lock was broken (`deployer unlock`).
    Unlock,
}

impl NotifyEvent {
    /// Every event: those of a deploy in its order, then the changes of a
    /// stage's state; the default of `notify_on`.
    pub const ALL: [NotifyEvent; 8] = [
        NotifyEvent::Start,
        NotifyEvent::Success,
        NotifyEvent::Failure,
        NotifyEvent::Interrupt,
        NotifyEvent::Rollback,
        NotifyEvent::Freeze,
        NotifyEvent::Unfreeze,
        NotifyEvent::Unlock,
    ];

    /// The word used in `notify_on`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Start => "start",
            NotifyEvent::Success => "success",
            NotifyEvent::Failure => "failure",
            NotifyEvent::Interrupt => "interrupt",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::Freeze => "freeze",
            NotifyEvent::Unfreeze => "unfreeze",
            NotifyEvent::Unlock => "unlock",
        }
    }
}

impl std::fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stage of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Name as written in `stages`.
    pub name: String,
    /// Hosts of `[stage:NAME] hosts`, in order, parsed; each one's
    /// `Display` is the text as written. `local` means this machine.
    pub hosts: Vec<HostSpec>,
    /// Critical stages ask for confirmation before a deploy (default: every
    /// stage but the first; `[stage:NAME] critical = yes|no` overrides).
    pub critical: bool,
    /// `[stage:NAME] ssh_proxy_jump`: jump hosts for this stage's hosts
    /// (wins over the `[environment]` one); `Some(vec![])` for `none`.
    pub proxy_jump: Option<Vec<JumpHost>>,
    /// `[stage:NAME] gates`: the gates every batch must pass (names of
    /// [`Config::gates`]).
    pub gates: Vec<String>,
    /// `[stage:NAME] bake`: how long the canary must pass its gates
    /// (default [`crate::gate::DEFAULT_BAKE`]).
    pub bake: Option<Duration>,
    /// `[stage:NAME] batch_bake`: how long each later batch must pass its
    /// gates (default [`crate::gate::DEFAULT_BATCH_BAKE`]).
    pub batch_bake: Option<Duration>,
    /// `[stage:NAME] batch_size`: this stage's batch size (wins over the
    /// `[environment]` one; `--batch` wins over both).
    pub batch_size: Option<Share>,
    /// `[stage:NAME] max_failures`: hosts after the canary that may fail
    /// before the rollout halts, a count or a percentage of the hosts
    /// taking part (default 0: the first failure halts).
    pub max_failures: Share,
    /// `deploy_windows`, `freeze_dates` and `timezone`: when forward
    /// deploys and promotions go (`None`: any time).
    pub window: Option<crate::window::Rules>,
    /// `[stage:NAME] approvals`: how many people other than the operator
    /// must sign a plan before a forward deploy or promotion to this stage
    /// (default 0: none; see [`crate::approval`]).
    pub approvals: usize,
    /// `[stage:NAME] allowed_signers`: the OpenSSH `allowed_signers` file
    /// the approvals are verified against (relative to deployer.ini's
    /// directory); required when `approvals` is above 0.
    pub allowed_signers: Option<PathBuf>,
}

/// SSH settings from `[environment]`; each is optional and falls back to
/// `~/.ssh/config` and then to OpenSSH's defaults.
///
/// Paths are kept as written by [`parse`]; [`load`] expands a leading `~/`
/// (see [`SshOptions::expand_home`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// `ssh_user`: login user for every host (wins over `~/.ssh/config`).
    pub user: Option<String>,
    /// `ssh_port`: port for every host (wins over `~/.ssh/config`).
    pub port: Option<u16>,
    /// `ssh_identity_file`: private keys tried after the agent.
    pub identity_files: Vec<PathBuf>,
    /// `ssh_config`: the OpenSSH client config to read (default `~/.ssh/config`).
    pub ssh_config: Option<PathBuf>,
    /// `known_hosts`: the known hosts file (default `~/.ssh/known_hosts`).
    pub known_hosts: Option<PathBuf>,
    /// `accept_new_host_keys`: trust and record the key of a host that is not
    /// yet in `known_hosts` (like OpenSSH's `StrictHostKeyChecking=accept-new`);
    /// a changed key is always refused (default no).
    pub accept_new_host_keys: bool,
    /// `connect_timeout`: TCP connect plus SSH handshake and auth; wins over
    /// `ConnectTimeout` (default: `ConnectTimeout`, else
    /// [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Option<Duration>,
    /// `max_startups`: the most connections that are starting (not yet
    /// logged in) at once to one SSH server, an address and port (default
    /// [`DEFAULT_MAX_STARTUPS`]). The rest wait their turn instead of
    /// tripping the server's `MaxStartups`.
    pub max_startups: usize,
    /// `ssh_proxy_jump`: jump hosts for every host, first hop first, as
    /// ssh's `-J` (wins over `ProxyJump`); `Some(vec![])` for `none`.
    pub proxy_jump: Option<Vec<JumpHost>>,
    /// `command_timeout`: a read-only command such as `dpkg-query` (default 30 s).
    pub command_timeout: Duration,
    /// `deploy_timeout`: one host's `apt-get` run (default 600 s).
    pub deploy_timeout: Duration,
    /// `lock_timeout`: how long `apt-get` waits for the dpkg lock held by
    /// another process before giving up (default 60 s).
    pub lock_timeout: Duration,
    /// `lock_expiry`: how long a deploy lock outlives its holder's last
    /// heartbeat (a holder cut off by a network partition); heartbeats go
    /// out every sixth of it (default 90 s).
    pub lock_expiry: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            user: None,
            port: None,
            identity_files: Vec::new(),
            ssh_config: None,
            known_hosts: None,
            accept_new_host_keys: false,
            connect_timeout: None,
            max_startups: DEFAULT_MAX_STARTUPS,
            proxy_jump: None,
            command_timeout: Duration::from_secs(30),
            deploy_timeout: Duration::from_secs(600),
            lock_timeout: Duration::from_secs(60),
            lock_expiry: Duration::from_secs(90),
        }
    }
}

impl SshOptions {
    /// Replace a leading `~/` (or a lone `~`) in `ssh_identity_file`,
    /// `ssh_config` and `known_hosts` by `home`.
    pub fn expand_home(&mut self, home: &Path) {
        for path in &mut self.identity_files {
            *path = expand_home(path, home);
        }
        for path in [&mut self.ssh_config, &mut self.known_hosts]
            .into_iter()
            .flatten()
        {
            *path = expand_home(path, home);
        }
    }
}

impl Config {
    /// Replace a leading `~/` (or a lone `~`) by `home` in every path of the
    /// configuration: `history_file` and the SSH paths (`badges_path` is a
    /// path on the hosts, always absolute).
    pub fn expand_home(&mut self, home: &Path) {
        self.history_file = expand_home(&self.history_file, home);
        self.ssh.expand_home(home);
    }

    /// The stage called `name`, if it is listed in `stages`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Every path of the configuration that [`Config::expand_home`] expands.
    fn paths(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(&self.history_file)
            .chain(&self.ssh.identity_files)
            .chain(&self.ssh.ssh_config)
            .chain(&self.ssh.known_hosts)
            .map(PathBuf::as_path)
    }
}

/// `path` with a leading `~` component replaced by `home`; any other path is
/// returned unchanged. (`~user/` is refused by [`parse`].) The one `~`
/// expansion of paths written in deployer.ini: [`load`] applies it to all
/// of them, so later code receives paths it can use as they are.
pub fn expand_home(path: &Path, home: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

/// Read and parse the file at `path`, then expand `~/` in its paths against
/// `HOME` (left as written, with a warning, when `HOME` is unset).
///
/// The file is refused, before anything in it is read, when someone other
/// than the operator or root could have written it ([`untrusted`], with the
/// owners of [`operator::trusted_owners`]): it names the commands deployer
/// runs (`health_check`) and the host keys it trusts. Like git with a
/// repository owned by someone else, but checked for every file, however
/// it was found: `--config` and `DEPLOYER_CONFIG` carry the same risk.
/// Under sudo the operator's own file is refused too: only root's is
/// trusted to say what runs as root.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    load_with(
        path,
        &operator::trusted_owners(),
        home.as_deref().map(Path::new),
    )
}

/// [`load`], trusting files owned by `trusted` uids, with `home` as `~`.
fn load_with(path: &Path, trusted: &[u32], home: Option<&Path>) -> Result<Config, ConfigError> {
    let cannot_read = |err: std::io::Error| {
        let note = match err.kind() {
            std::io::ErrorKind::NotFound => "check the path, or pass `--config PATH`",
            std::io::ErrorKind::PermissionDenied => {
                "check the file's permissions: the user running deployer must be able to read it"
            }
            std::io::ErrorKind::InvalidData => "the file must be UTF-8 text",
            _ => "check that the file is a readable text file",
        };
        ConfigError::new(
            Some(path),
            None,
            format!("cannot read the configuration: {err}"),
        )
        .note(note)
    };
    // Checked on the open file, so that what is read is what was checked.
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    let meta = file.metadata().map_err(cannot_read)?;
    if let Some(refusal) = untrusted(path, meta.uid(), meta.mode(), trusted, operator::user_name) {
        return Err(refusal);
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot_read)?;
    let mut config = parse(path, &text)?;
    match home {
        Some(home) => config.expand_home(home),
        None => {
            if config.paths().any(|p| p.starts_with("~")) {
                config.warnings.push(format!(
                    "`{}`: `HOME` is not set, so paths starting with `~/` are used as written",
                    path.display()
                ));
            }
        }
    }
    Ok(config)
}

/// Parse configuration text; `path` is used for messages and defaults only.
///
/// Paths are kept as written, except that a relative `history_file` is
/// joined to the directory of `path`; `~/` is left for [`load`] (or
/// [`Config::expand_home`]) to expand.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let doc = scan::scan(text, &looks_like_own_line)
        .map_err(|e| ConfigError::new(Some(path), Some(e.line), e.message).note(e.note))?;
    Reader {
        path,
        doc: &doc,
        warnings: Vec::new(),
    }
    .build()
}

/// One section of a known kind, as scanned.
struct Section<'a> {
    raw: &'a scan::Section,
    kind: &'static SectionKind,
}

impl<'a> Section<'a> {
    fn name(&self) -> &'a str {
        &self.raw.name
    }

    fn line(&self) -> usize {
        self.raw.line
    }
}

/// Turns the scanned [`Document`] into a [`Config`], collecting warnings.
struct Reader<'a> {
    path: &'a Path,
    doc: &'a Document,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn error(&self, line: Option<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::new(Some(self.path), line, message)
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings
            .push(format!("`{}` line {line}: {message}", self.path.display()));
    }

    /// The section called `name`, when it is present and of a known kind.
    fn section(&self, name: &str) -> Option<Section<'a>> {
        let raw = self.doc.section(name)?;
        let (kind, _) = schema::kind_of(&raw.name)?;
        Some(Section { raw, kind })
    }

    /// The sections of the named `kind`, each with its NAME.
    fn sections_of(
        &self,
        kind: &'static SectionKind,
    ) -> impl Iterator<Item = (&'a scan::Section, &'a str)> + 'a {
        self.doc
            .sections
            .iter()
            .filter_map(move |s| match schema::kind_of(&s.name) {
                Some((k, Some(name))) if k.kind == kind.kind => Some((s, name)),
                _ => None,
            })
    }

    /// "`[a]`, `[b]`", or "none".
    fn sections_found<'s>(sections: impl Iterator<Item = &'s scan::Section>) -> String {
        let found: Vec<String> = sections.map(|s| format!("`[{}]`", s.name)).collect();
        if found.is_empty() {
            "none".into()
        } else {
            found.join(", ")
        }
    }

    /// The value of `key` in `section` and its line, if the key is present.
    fn get(
        &self,
        section: &Section<'a>,
        key: &str,
    ) -> Result<Option<(&'a str, Option<usize>)>, ConfigError> {
        let form = section.kind.key(key).map_or(Form::Single, |k| k.form);
        debug_assert!(
            section.kind.key(key).is_some(),
            "`{key}` is not in the schema"
        );
        let Some(entry) = section.raw.get(key) else {
            return Ok(None);
        };
        let name = section.name();
        if form != Form::List {
            if let Some((line, _)) = entry.continued.first() {
                return Err(self
                    .error(
                        Some(*line),
                        format!(
                            "`{key}` in `[{name}]` takes a single value, but line {line} \
                             is indented and so continues it"
                        ),
                    )
                    .note(
                        "only lists (such as `hosts`) go on in indented lines; write the \
                         value on the key's line, or remove the indentation at the start of \
                         the next line if it is a setting of its own",
                    ));
            }
        }
        if form != Form::Command {
            let key_line = entry.value.lines().next().unwrap_or_default();
            let pieces = std::iter::once((entry.line, key_line))
                .chain(entry.continued.iter().map(|(l, t)| (*l, t.as_str())));
            let comment = pieces
                .filter_map(|(line, text)| comment_start(text).map(|at| (line, &text[at..])))
                .next();
            if let Some((line, rest)) = comment {
                let mark = &rest[..1];
                return Err(self
                    .error(
                        Some(line),
                        format!(
                            "`{key}` in `[{name}]` has `{rest}` after its value, which looks \
                             like a comment: a `{mark}` after a value is part of the value, \
                             not a comment"
                        ),
                    )
                    .note(
                        "put the comment on its own line, starting with `#` or `;` (Python's \
                         ConfigParser, which read the original file, reads it the same way)",
                    ));
            }
        }
        Ok(Some((entry.value.as_str(), Some(entry.line))))
    }

    fn build(mut self) -> Result<Config, ConfigError> {
        self.check_section_kinds()?;
        let Some(env) = self.section(schema::ENVIRONMENT.kind) else {
            let mut note = format!(
                "`[environment]` holds `deb_packages` and `stages`; sections found: {}",
                Self::sections_found(self.doc.sections.iter())
            );
            let names = self.doc.sections.iter().map(|s| s.name.as_str());
            if let Some(close) = closest(schema::ENVIRONMENT.kind, names) {
                note = format!("did you mean `[environment]` instead of `[{close}]`? {note}");
            }
            return Err(self
                .error(None, "there is no `[environment]` section")
                .note(note));
        };
        self.check_unknown_keys(&env);

        let packages = self.packages(&env)?;
        let gates = self.gates()?;
        let stages = self.stages(&env, &gates)?;
        let (health_checks, holds, services) = self.package_options(&packages)?;
        let package_gates = self.package_gates(&packages, &gates)?;
        let notify = self.notify()?;
        let alerts = self.alerts(&stages, &packages)?;

        let ssh = SshOptions {
            user: self.value(&env, "ssh_user", value::parse_user)?,
            port: self.value(&env, "ssh_port", value::parse_port)?,
            identity_files: self
                .value(&env, "ssh_identity_file", value::parse_path_list)?
                .unwrap_or_default(),
            ssh_config: self.value(&env, "ssh_config", value::parse_path)?,
            known_hosts: self.value(&env, "known_hosts", value::parse_path)?,
            accept_new_host_keys: self
                .value(&env, "accept_new_host_keys", value::parse_bool)?
                .unwrap_or(false),
            connect_timeout: self.value(&env, "connect_timeout", value::parse_duration)?,
            max_startups: self
                .value(&env, "max_startups", value::parse_max_startups)?
                .unwrap_or(DEFAULT_MAX_STARTUPS),
            proxy_jump: self.value(&env, "ssh_proxy_jump", value::parse_proxy_jump)?,
            command_timeout: self
                .value(&env, "command_timeout", value::parse_duration)?
                .unwrap_or(Duration::from_secs(30)),
            deploy_timeout: self
                .value(&env, "deploy_timeout", value::parse_duration)?
                .unwrap_or(Duration::from_secs(600)),
            lock_timeout: self
                .value(&env, "lock_timeout", value::parse_duration)?
                .unwrap_or(Duration::from_secs(60)),
            lock_expiry: self
                .value(&env, "lock_expiry", value::parse_lock_expiry)?
                .unwrap_or(Duration::from_secs(90)),
        };
        let config_dir = self.path.parent().unwrap_or(Path::new(""));
        let history_file = match self.value(&env, "history_file", value::parse_path)? {
            Some(p) if p.is_relative() && !p.starts_with("~") => config_dir.join(p),
            Some(p) => p,
            None => config_dir.join(DEFAULT_HISTORY_FILE),
        };
        Ok(Config {
            path: self.path.to_path_buf(),
            badges_path: self.value(&env, "badges_path", value::parse_host_dir)?,
            badges_after_deploy: self
                .value(&env, "badges_after_deploy", value::parse_bool)?
                .unwrap_or(true),
            badges_png: self
                .value(&env, "badges_png", value::parse_bool)?
                .unwrap_or(false),
            dashboard_changes: self
                .value(&env, "dashboard_changes", value::parse_window)?
                .unwrap_or(Some(value::DEFAULT_DASHBOARD_CHANGES)),
            dashboard_refresh: self
                .value(&env, "dashboard_refresh", value::parse_dashboard_refresh)?
                .unwrap_or(Some(DEFAULT_DASHBOARD_REFRESH)),
            packages,
            stages,
            parallelism: self
                .value(&env, "parallelism", value::parse_parallelism)?
                .unwrap_or(DEFAULT_PARALLELISM),
            history_file,
            batch_size: self
                .value(&env, "batch_size", value::parse_batch_size)?
                .unwrap_or(Share::Hosts(1)),
            rollback_on_failure: self
                .value(&env, "rollback_on_failure", value::parse_bool)?
                .unwrap_or(false),
            health_checks,
            holds,
            services,
            ssh,
            notify,
            alerts,
            gates,
            package_gates,
            warnings: self.warnings,
        })
    }

    /// The `[notify]` section, or the defaults without one.
    fn notify(&mut self) -> Result<Notify, ConfigError> {
        let Some(section) = self.section(schema::NOTIFY.kind) else {
            return Ok(Notify::default());
        };
        self.check_unknown_keys(&section);
        let notify = Notify {
            webhook_url: self.value_shown(
                &section,
                "webhook_url",
                value::parse_webhook_url,
                value::webhook_shown,
            )?,
            webhook_format: self
                .value(&section, "webhook_format", value::parse_webhook_format)?
                .unwrap_or(WebhookFormat::Text),
            notify_command: self.value(&section, "notify_command", |v| Ok(v.trim().to_string()))?,
            notify_on: self
                .value(&section, "notify_on", value::parse_notify_on)?
                .unwrap_or_else(|| NotifyEvent::ALL.to_vec()),
        };
        let line_of = |key: &str| section.raw.get(key).map(|e| e.line);
        let allow_http = self.value(&section, "webhook_allow_http", value::parse_bool)?;
        if let Some(url) = &notify.webhook_url {
            let plain = url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
            if plain && allow_http != Some(true) {
                return Err(self
                    .error(
                        line_of("webhook_url"),
                        format!(
                            "`webhook_url` in `[notify]` is a plain `http://` URL ({}): it \
                             would carry the URL, and any token in it, in clear",
                            value::webhook_shown(url)
                        ),
                    )
                    .note(
                        "use an `https://` URL, or, if the network between here and the \
                         webhook is trusted (e.g. the webhook listens on this machine), set \
                         `webhook_allow_http = yes` in `[notify]`",
                    ));
            }
        } else if let Some(line) = line_of("webhook_allow_http") {
            self.warn(
                line,
                "`webhook_allow_http` in `[notify]` has no effect without `webhook_url`".into(),
            );
        }
        if notify.webhook_url.is_none() {
            if let Some(line) = line_of("webhook_format") {
                self.warn(
                    line,
                    "`webhook_format` in `[notify]` has no effect without `webhook_url`".into(),
                );
            }
        }
        if notify.webhook_url.is_none() && notify.notify_command.is_none() {
            if let Some(line) = line_of("notify_on") {
                self.warn(
                    line,
                    "`notify_on` in `[notify]` has no effect without `webhook_url` or \
                     `notify_command`"
                        .into(),
                );
            }
        }
        Ok(notify)
    }

    /// `[alerts]`, and the `alert_matchers` of `[stage:NAME]` and
    /// `[package:NAME]` sections (which need `[alerts]`).
    fn alerts(
        &mut self,
        stages: &[Stage],
        packages: &[PackageName],
    ) -> Result<Option<crate::alerts::Settings>, ConfigError> {
        let section = self.section(schema::ALERTS.kind);
        if let Some(section) = &section {
            self.check_unknown_keys(section);
        }
        let mut by_stage = BTreeMap::new();
        let mut by_package = BTreeMap::new();
        let mut first_use: Option<(String, Option<usize>)> = None;
        let named = stages
            .iter()
            .map(|s| (schema::STAGE.section_name(&s.name), None))
            .chain(
                packages
                    .iter()
                    .map(|p| (schema::PACKAGE.section_name(p.as_str()), Some(p))),
            );
        for (name, package) in named.collect::<Vec<_>>() {
            let Some(s) = self.section(&name) else {
                continue;
            };
            let Some(matchers) = self.value(&s, "alert_matchers", value::parse_matchers)? else {
                continue;
            };
            let line = self.get(&s, "alert_matchers")?.and_then(|(_, l)| l);
            first_use.get_or_insert((name.clone(), line));
            match package {
                Some(p) => by_package.insert(p.clone(), matchers),
                None => by_stage.insert(name["stage:".len()..].to_string(), matchers),
            };
        }
        let Some(section) = section else {
            if let Some((name, line)) = first_use {
                return Err(self
                    .error(
                        line,
                        format!("`alert_matchers` in `[{name}]` needs an `[alerts]` section"),
                    )
                    .note(
                        "add `[alerts]` with `alertmanager_url = http://...` (the Alertmanager \
                         to ask), or remove `alert_matchers`",
                    ));
            }
            return Ok(None);
        };
        let Some(url) = self.value_shown(
            &section,
            "alertmanager_url",
            value::parse_webhook_url,
            value::webhook_shown,
        )?
        else {
            return Err(self
                .error(
                    Some(section.line()),
                    "`[alerts]` has no `alertmanager_url` key",
                )
                .note(
                    "add a line like `alertmanager_url = http://alertmanager.example.org:9093`",
                ));
        };
        Ok(Some(crate::alerts::Settings {
            url,
            matchers: self
                .value(&section, "matchers", value::parse_matchers)?
                .unwrap_or_default(),
            on_unreachable: self
                .value(&section, "on_unreachable", value::parse_on_unreachable)?
                .unwrap_or_default(),
            stages: by_stage,
            packages: by_package,
        }))
    }

    /// Warn about keys outside any section and sections of unknown kinds;
    /// refuse `[DEFAULT]`, whose meaning in ConfigParser deployer does not
    /// give it.
    fn check_section_kinds(&mut self) -> Result<(), ConfigError> {
        let doc = self.doc;
        for key in &doc.general {
            let hint = schema::home_of_key(&key.key)
                .map(|home| format!("; it belongs under `{home}`"))
                .unwrap_or_default();
            let message = format!(
                "key `{}` is outside any section and is ignored{hint}",
                key.written
            );
            self.warn(key.line, message);
        }
        for section in &doc.sections {
            let name = section.name.as_str();
            if schema::kind_of(name).is_some() {
                continue;
            }
            // In ConfigParser every section inherits `[DEFAULT]`'s keys:
            // ignoring it would silently change what the other sections say.
            if name == "DEFAULT" && !section.entries.is_empty() {
                return Err(self
                    .error(
                        Some(section.line),
                        "`[DEFAULT]` is not supported: deployer does not copy its keys into \
                         every other section, as Python's ConfigParser does",
                    )
                    .note("write each key in the sections that need it, and remove `[DEFAULT]`"));
            }
            let mut message = format!("unknown section `[{name}]` is ignored");
            match schema::meant_section(name) {
                Some(s) => message.push_str(&format!("; did you mean `{s}`?")),
                None => message.push_str(&format!(
                    "; known sections are {}",
                    schema::known_sections()
                )),
            }
            self.warn(section.line, message);
        }
        Ok(())
    }

    fn check_unknown_keys(&mut self, section: &Section<'_>) {
        for entry in &section.raw.entries {
            if section.kind.key(&entry.key).is_some() {
                continue;
            }
            let name = &entry.written;
            let mut message = format!("unknown key `{name}` in `[{}]` is ignored", section.name());
            if let Some(close) = closest(&entry.key, section.kind.key_names()) {
                message.push_str(&format!("; did you mean `{close}`?"));
            } else if let Some(home) = schema::home_of_key(&entry.key) {
                message.push_str(&format!("; `{name}` belongs in `{home}`"));
            }
            self.warn(entry.line, message);
        }
    }

    /// An optional value: absent is `None`, empty or invalid is an error.
    fn value<T>(
        &self,
        section: &Section<'a>,
        key: &str,
        parse: fn(&str) -> Result<T, Invalid>,
    ) -> Result<Option<T>, ConfigError> {
        self.value_shown(section, key, parse, str::to_string)
    }

    /// Like [`Parser::value`], for a value that may hold a secret: an
    /// invalid one is shown in the error as `shown` gives it.
    fn value_shown<T>(
        &self,
        section: &Section<'a>,
        key: &str,
        parse: fn(&str) -> Result<T, Invalid>,
        shown: fn(&str) -> String,
    ) -> Result<Option<T>, ConfigError> {
        let Some((text, line)) = self.get(section, key)? else {
            return Ok(None);
        };
        if text.trim().is_empty() {
            return Err(self
                .error(line, format!("`{key}` in `[{}]` is empty", section.name()))
                .note("give a value, or remove the line to use the default"));
        }
        parse(text).map(Some).map_err(|invalid| {
            self.error(
                line,
                format!(
                    "`{key}` in `[{}]` has an invalid value `{}`: {}",
                    section.name(),
                    shown(text),
                    invalid.reason
                ),
            )
            .note(invalid.accepted)
        })
    }

    /// A required whitespace-separated list, which must not be empty.
    fn required_list(
        &self,
        section: &Section<'a>,
        key: &str,
        example: &str,
    ) -> Result<(Vec<&'a str>, Option<usize>), ConfigError> {
        let Some((text, line)) = self.get(section, key)? else {
            return Err(self
                .error(
                    Some(section.line()),
                    format!("`[{}]` has no `{key}` key", section.name()),
                )
                .note(format!("add a line like `{key} = {example}`")));
        };
        let items: Vec<&'a str> = text.split_whitespace().collect();
        if items.is_empty() {
            return Err(self
                .error(line, format!("`{key}` in `[{}]` is empty", section.name()))
                .note(format!(
                    "list at least one, separated by spaces: `{key} = {example}`"
                )));
        }
        Ok((items, line))
    }

    fn packages(&self, env: &Section<'a>) -> Result<Vec<PackageName>, ConfigError> {
        let (items, line) = self.required_list(env, "deb_packages", "ooni-api fastpath")?;
        let mut packages: Vec<PackageName> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                return Err(self
                    .error(
                        line,
                        format!("package `{item}` is listed twice in `deb_packages`"),
                    )
                    .note("list each package once"));
            }
            let name = item.parse::<PackageName>().map_err(|err| {
                self.error(
                    line,
                    format!(
                        "`deb_packages` lists `{}`, which is not a valid Debian package name: {}",
                        err.input, err.reason
                    ),
                )
                .note(value::ACCEPTED_PACKAGE)
            })?;
            packages.push(name);
        }
        Ok(packages)
    }

    fn stages(
        &mut self,
        env: &Section<'a>,
        gates: &BTreeMap<String, crate::gate::Gate>,
    ) -> Result<Vec<Stage>, ConfigError> {
        let (names, line) = self.required_list(env, "stages", "test prod")?;
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(self
                    .error(line, format!("stage `{name}` is listed twice in `stages`"))
                    .note("list each stage once, least critical first"));
            }
            if !value::is_stage_name(name) {
                return Err(self
                    .error(
                        line,
                        format!("`stages` lists `{name}`, which is not a valid stage name"),
                    )
                    .note(value::ACCEPTED_STAGE));
            }
        }
        let mut stages = Vec::with_capacity(names.len());
        // Where each machine (lowercase name and port) was first seen.
        let mut seen: BTreeMap<(String, Option<u16>), FirstSeen<'a>> = BTreeMap::new();
        for (index, name) in names.iter().enumerate() {
            let section_name = schema::STAGE.section_name(name);
            let Some(section) = self.section(&section_name) else {
                let found = Self::sections_found(self.sections_of(&schema::STAGE).map(|(s, _)| s));
                let mut note = format!("sections found: {found}");
                if let Some(close) = closest(name, self.sections_of(&schema::STAGE).map(|(_, n)| n))
                {
                    note = format!("did you mean `{close}`? {note}");
                }
                return Err(self
                    .error(
                        line,
                        format!(
                            "stage `{name}` is listed in `stages` but there is no `[{section_name}]` section"
                        ),
                    )
                    .note(note));
            };
            self.check_unknown_keys(&section);
            let (hosts, hosts_line) =
                self.required_list(&section, "hosts", "web1.example.org web2.example.org")?;
            let hosts_line = hosts_line.or(Some(section.line()));
            let mut specs = Vec::with_capacity(hosts.len());
            for (i, host) in hosts.iter().enumerate() {
                let spec = HostSpec::parse(host).map_err(|reason| {
                    self.error(
                        hosts_line,
                        format!("`hosts` in `[{section_name}]` lists `{host}`, which is not a valid host: {reason}"),
                    )
                    .note("a host is `name`, `user@name`, `name:port` or `user@name:port`, \
                           or `local` for this machine without SSH; use `~/.ssh/config` for anything else")
                })?;
                if hosts[..i].contains(host) {
                    return Err(self
                        .error(
                            hosts_line,
                            format!("host `{host}` is listed twice in `[{section_name}] hosts`"),
                        )
                        .note("list each host once"));
                }
                // `local` stands for whatever machine runs deployer, so a
                // try-out pipeline may use it in every stage; a real machine
                // in two stages would be deployed to twice.
                if spec.is_local() {
                    specs.push(spec);
                    continue;
                }
                let machine = (spec.name.to_ascii_lowercase(), spec.port);
                if let Some(first) = seen.get(&machine) {
                    let message = if first.stage == *name {
                        format!(
                            "hosts `{}` and `{host}` in `[{section_name}] hosts` are the same machine",
                            first.host
                        )
                    } else {
                        let line = first
                            .line
                            .map(|l| format!(" (line {l})"))
                            .unwrap_or_default();
                        format!(
                            "host `{host}` is in stage `{name}` and also in stage `{}` as `{}`{line}",
                            first.stage, first.host
                        )
                    };
                    return Err(self
                        .error(hosts_line, message)
                        .note("a machine belongs to one stage, once; remove the extra entry"));
                }
                seen.insert(
                    machine,
                    FirstSeen {
                        stage: names[index],
                        host,
                        line: hosts_line,
                    },
                );
                specs.push(spec);
            }
            // Every stage after the first is someone's production: a stage
            // only stays unguarded when the file says so.
            let critical = self
                .value(&section, "critical", value::parse_bool)?
                .unwrap_or(index > 0);
            let proxy_jump = self.value(&section, "ssh_proxy_jump", value::parse_proxy_jump)?;
            let batch_size = self.value(&section, "batch_size", value::parse_batch_size)?;
            let max_failures = self
                .value(&section, "max_failures", value::parse_max_failures)?
                .unwrap_or_default();
            let window = self.deploy_windows(&section)?;
            let approvals = self
                .value(&section, "approvals", |s| {
                    value::parse_count(s, 0, 100, "accepted: a whole number from 0 to 100")
                })?
                .unwrap_or(0);
            let config_dir = self.path.parent().unwrap_or(Path::new(""));
            let allowed_signers = self
                .value(&section, "allowed_signers", value::parse_path)?
                .map(|p| {
                    if p.is_relative() {
                        config_dir.join(p)
                    } else {
                        p
                    }
                });
            if approvals > 0 && allowed_signers.is_none() {
                let line = self.get(&section, "approvals")?.and_then(|(_, l)| l);
                return Err(self
                    .error(
                        line,
                        format!("`approvals = {approvals}` in `[stage:{name}]` needs `allowed_signers`"),
                    )
                    .note("add `allowed_signers = PATH`: an OpenSSH allowed_signers file (one `principal key` line per approver), relative to deployer.ini's directory"));
            }
            stages.push(Stage {
                name: name.to_string(),
                hosts: specs,
                critical,
                proxy_jump,
                gates: self.gate_names(&section, gates)?,
                bake: self.value(&section, "bake", gates::parse_bake)?,
                batch_bake: self.value(&section, "batch_bake", gates::parse_bake)?,
                batch_size,
                max_failures,
                window,
                approvals,
                allowed_signers,
            });
        }
        Ok(stages)
    }

    /// The `gates` of the `[package:NAME]` sections (checked by
    /// [`Reader::package_options`] otherwise).
    fn package_gates(
        &self,
        packages: &[PackageName],
        gates: &BTreeMap<String, crate::gate::Gate>,
    ) -> Result<BTreeMap<PackageName, Vec<String>>, ConfigError> {
        let mut named = BTreeMap::new();
        for package in packages {
            let Some(section) = self.section(&schema::PACKAGE.section_name(package.as_str()))
            else {
                continue;
            };
            let names = self.gate_names(&section, gates)?;
            if !names.is_empty() {
                named.insert(package.clone(), names);
            }
        }
        Ok(named)
    }

    /// The `[package:NAME]` sections: health checks, the packages whose
    /// hold deployer manages, and the services.
    #[allow(clippy::type_complexity)]
    fn package_options(
        &mut self,
        packages: &[PackageName],
    ) -> Result<
        (
            BTreeMap<PackageName, String>,
            BTreeSet<PackageName>,
            BTreeMap<PackageName, crate::service::Service>,
        ),
        ConfigError,
    > {
        let mut services = BTreeMap::new();
        let mut checks = BTreeMap::new();
        let mut holds = BTreeSet::new();
        let package_sections: Vec<_> = self.sections_of(&schema::PACKAGE).collect();
        for (raw, name) in package_sections {
            let Some(package) = packages.iter().find(|p| p.as_str() == name) else {
                let listed = packages.iter().map(PackageName::as_str);
                let mut note = format!(
                    "`deb_packages` lists: {}",
                    packages
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if let Some(close) = closest(name, listed) {
                    let meant = schema::PACKAGE.section_name(close);
                    note = format!("did you mean `[{meant}]`? {note}");
                }
                return Err(self
                    .error(
                        Some(raw.line),
                        format!(
                            "section `[{}]` is for a package not listed in `deb_packages`",
                            raw.name
                        ),
                    )
                    .note(note));
            };
            let Some(section) = self.section(&raw.name) else {
                continue;
            };
            self.check_unknown_keys(&section);
            if let Some(command) =
                self.value(&section, "health_check", |v| Ok(v.trim().to_string()))?
            {
                checks.insert(package.clone(), command);
            }
            if self.value(&section, "hold", value::parse_bool)? == Some(true) {
                holds.insert(package.clone());
            }
            let command = |v: &str| Ok(v.trim().to_string());
            let service = crate::service::Service {
                units: self
                    .value(&section, "units", value::parse_units)?
                    .unwrap_or_default(),
                restart: self
                    .value(&section, "restart", value::parse_bool)?
                    .unwrap_or(false),
                restart_command: self.value(&section, "restart_command", command)?,
                logs_command: self.value(&section, "logs_command", command)?,
            };
            if service.restart && !service.restarts() {
                let line = self.get(&section, "restart")?.and_then(|(_, line)| line);
                return Err(self
                    .error(
                        line,
                        format!(
                            "`restart = yes` in `[{}]` has nothing to restart",
                            section.name()
                        ),
                    )
                    .note("name the systemd units in `units`, or give a `restart_command`"));
            }
            if service.is_set() || service.restart {
                services.insert(package.clone(), service);
            }
        }
        Ok((checks, holds, services))
    }
}

/// Where a comment would start in `value` if deployer read comments after
/// values: a `#` or `;` at the start or after whitespace. Neither
/// deployer nor `ConfigParser` (with its default `inline_comment_prefixes`)
/// does, so such a value is refused rather than misread.
fn comment_start(value: &str) -> Option<usize> {
    value.char_indices().find_map(|(i, c)| {
        let starts_word = value[..i]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        (matches!(c, '#' | ';') && starts_word).then_some(i)
    })
}

/// What the continuation line `text` of a value looks like, when it looks
/// like a line of its own: a known section header, or a setting of a key
/// deployer knows (`web2:22`, a host and its port, is neither).
fn looks_like_own_line(text: &str) -> Option<String> {
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let name: String = inner.split_whitespace().collect();
        if schema::kind_of(&name).is_some() {
            return Some(format!("the section header `{text}`"));
        }
    }
    let (key, _) = text.split_once(['=', ':'])?;
    let key = key.trim().to_lowercase();
    schema::home_of_key(&key).map(|_| format!("a setting of `{key}`"))
}

/// Where a machine was first listed, to name both places of a duplicate.
struct FirstSeen<'a> {
    stage: &'a str,
    host: &'a str,
    line: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::value::{ACCEPTED_BOOL, ACCEPTED_DURATION, ACCEPTED_PACKAGE, ACCEPTED_STAGE};
    use super::*;

    const PATH: &str = "/srv/deployer/deployer.ini";

    /// The file the tool was born with; it must keep working unchanged.
    const ORIGINAL: &str = "\
## deployer configuration
[environment]
badges_path = /var/www/package_badges
deb_packages = ooni-api fastpath analysis detector
stages = test hel prod
[stage:alpha]
hosts = localhost
[stage:test]
hosts = ams-pg-test.ooni.org
[stage:hel]
hosts = backend-hel.ooni.org
[stage:prod]
hosts = backend-fsn.ooni.org backend-fsn2.ooni.org
";

    /// The smallest valid file, to which tests add one thing.
    const MINIMAL: &str = "\
[environment]
deb_packages = foo bar
stages = test prod
[stage:test]
hosts = t1
[stage:prod]
hosts = p1 p2
";

    fn ok(text: &str) -> Config {
        match parse(Path::new(PATH), text) {
            Ok(config) => config,
            Err(e) => panic!("expected success, got: {e}\nnote: {:?}", e.note),
        }
    }

    fn err(text: &str) -> ConfigError {
        match parse(Path::new(PATH), text) {
            Ok(config) => panic!("expected an error, got {config:#?}"),
            Err(e) => e,
        }
    }

    /// MINIMAL with `extra` lines added at the end of `[environment]`
    /// (line 4 onwards).
    fn with_env(extra: &str) -> String {
        MINIMAL.replacen(
            "stages = test prod\n",
            &format!("stages = test prod\n{extra}\n"),
            1,
        )
    }

    fn note(e: &ConfigError) -> &str {
        e.note.as_deref().unwrap_or("")
    }

    #[test]
    fn original_example_parses_unchanged() {
        let config = ok(ORIGINAL);
        assert_eq!(config.path, PathBuf::from(PATH));
        assert_eq!(
            config.badges_path,
            Some(PathBuf::from("/var/www/package_badges"))
        );
        let packages: Vec<&str> = config.packages.iter().map(PackageName::as_str).collect();
        assert_eq!(packages, ["ooni-api", "fastpath", "analysis", "detector"]);
        let stages: Vec<(&str, Vec<&str>, bool)> = config
            .stages
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.hosts.iter().map(HostSpec::as_str).collect(),
                    s.critical,
                )
            })
            .collect();
        assert_eq!(
            stages,
            [
                ("test", vec!["ams-pg-test.ooni.org"], false),
                ("hel", vec!["backend-hel.ooni.org"], true),
                (
                    "prod",
                    vec!["backend-fsn.ooni.org", "backend-fsn2.ooni.org"],
                    true
                ),
            ]
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn defaults_when_optional_keys_are_absent() {
        let config = ok(MINIMAL);
        assert_eq!(config.badges_path, None);
        assert_eq!(config.ssh, SshOptions::default());
        assert_eq!(config.ssh.connect_timeout, None);
        assert_eq!(config.ssh.command_timeout, Duration::from_secs(30));
        assert_eq!(config.ssh.deploy_timeout, Duration::from_secs(600));
        assert!(!config.ssh.accept_new_host_keys);
        assert_eq!(config.parallelism, 64);
        assert_eq!(config.batch_size, Share::Hosts(1));
        assert!(!config.rollback_on_failure);
        assert_eq!(
            config.history_file,
            PathBuf::from("/srv/deployer/deployer-history.jsonl")
        );
        assert!(config.health_checks.is_empty());
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn example_file_parses_without_warnings() {
        let config = ok(include_str!("../../deployer.ini.example"));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let names: Vec<&str> = config.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["test", "prod"]);
        for stage in &config.stages {
            assert_eq!(
                stage.hosts,
                ["local"],
                "stage {} must work without SSH",
                stage.name
            );
        }
        let packages: Vec<&str> = config.packages.iter().map(PackageName::as_str).collect();
        assert_eq!(packages, ["dpkg", "apt", "bash"]);
        assert_eq!(config.ssh, SshOptions::default());
    }

    /// The example documents every key: each known key appears in it, at
    /// least commented out.
    #[test]
    fn example_file_mentions_every_key() {
        let example = include_str!("../../deployer.ini.example");
        for key in schema::SECTIONS.iter().flat_map(|kind| kind.key_names()) {
            assert!(
                example.contains(&format!("{key} = ")),
                "`{key}` is not shown"
            );
        }
    }

    // --- structure ---------------------------------------------------------

    #[test]
    fn missing_environment_section() {
        let e = err("[stage:test]\nhosts = a\n");
        assert_eq!(e.message, "there is no `[environment]` section");
        assert_eq!(e.path, Some(PathBuf::from(PATH)));
        assert_eq!(e.line, None);
        assert!(note(&e).contains("sections found: `[stage:test]`"), "{e:?}");
    }

    #[test]
    fn misspelt_environment_section_is_suggested() {
        let e = err(&MINIMAL.replace("[environment]", "[enviroment]"));
        assert!(
            note(&e).starts_with("did you mean `[environment]` instead of `[enviroment]`?"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_required_keys_point_at_the_section() {
        let e = err(&MINIMAL.replace("deb_packages = foo bar\n", ""));
        assert_eq!(e.message, "`[environment]` has no `deb_packages` key");
        assert_eq!(e.line, Some(1));
        assert!(note(&e).contains("deb_packages = "), "{e:?}");

        let e = err(&MINIMAL.replace("stages = test prod\n", ""));
        assert_eq!(e.message, "`[environment]` has no `stages` key");
        assert_eq!(e.line, Some(1));
        assert!(note(&e).contains("stages = "), "{e:?}");
    }

    #[test]
    fn empty_required_lists() {
        let e = err(&MINIMAL.replace("stages = test prod", "stages ="));
        assert_eq!(e.message, "`stages` in `[environment]` is empty");
        assert_eq!(e.line, Some(3));
        let e = err(&MINIMAL.replace("deb_packages = foo bar", "deb_packages =   "));
        assert_eq!(e.message, "`deb_packages` in `[environment]` is empty");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn listed_stage_without_section() {
        let e = err(&MINIMAL.replace("stages = test prod", "stages = test prdo"));
        assert_eq!(
            e.message,
            "stage `prdo` is listed in `stages` but there is no `[stage:prdo]` section"
        );
        assert_eq!(e.line, Some(3));
        assert_eq!(
            note(&e),
            "did you mean `prod`? sections found: `[stage:test]`, `[stage:prod]`"
        );
    }

    #[test]
    fn unlisted_stage_sections_are_ignored_silently() {
        let config = ok(&format!(
            "{MINIMAL}[stage:later]\nhosts = x\nwhatever = 1\n"
        ));
        assert_eq!(config.stages.len(), 2);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn stage_without_hosts() {
        let e = err(&MINIMAL.replace("hosts = t1\n", ""));
        assert_eq!(e.message, "`[stage:test]` has no `hosts` key");
        assert_eq!(e.line, Some(4));
        assert!(note(&e).contains("hosts = "), "{e:?}");

        let e = err(&MINIMAL.replace("hosts = t1", "hosts ="));
        assert_eq!(e.message, "`hosts` in `[stage:test]` is empty");
        assert_eq!(e.line, Some(5));
    }

    #[test]
    fn duplicate_stage() {
        let e = err(&MINIMAL.replace("stages = test prod", "stages = test prod test"));
        assert_eq!(e.message, "stage `test` is listed twice in `stages`");
        assert_eq!(e.line, Some(3));
        assert!(note(&e).contains("once"));
    }

    #[test]
    fn duplicate_package() {
        let e = err(&MINIMAL.replace("deb_packages = foo bar", "deb_packages = foo bar foo"));
        assert_eq!(e.message, "package `foo` is listed twice in `deb_packages`");
        assert_eq!(e.line, Some(2));
        assert!(note(&e).contains("once"));
    }

    #[test]
    fn duplicate_host_in_a_stage() {
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 p2 p1"));
        assert_eq!(
            e.message,
            "host `p1` is listed twice in `[stage:prod] hosts`"
        );
        assert_eq!(e.line, Some(7));
        assert!(note(&e).contains("once"));
    }

    #[test]
    fn host_in_two_stages_names_both() {
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 t1"));
        assert_eq!(
            e.message,
            "host `t1` is in stage `prod` and also in stage `test` as `t1` (line 5)"
        );
        assert_eq!(e.line, Some(7));
        assert!(note(&e).contains("one stage"), "{e:?}");
    }

    #[test]
    fn same_machine_twice_in_a_stage_under_two_spellings() {
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 deploy@P1"));
        assert_eq!(
            e.message,
            "hosts `p1` and `deploy@P1` in `[stage:prod] hosts` are the same machine"
        );
        assert_eq!(e.line, Some(7));
    }

    #[test]
    fn host_in_two_stages_despite_user_and_case() {
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 root@T1"));
        assert!(
            e.message.starts_with("host `root@T1` is in stage `prod`"),
            "{e:?}"
        );
    }

    #[test]
    fn same_name_on_other_ports_is_another_machine() {
        let config = ok(&MINIMAL
            .replace("hosts = t1", "hosts = vm:2201")
            .replace("hosts = p1 p2", "hosts = vm:2202 vm:2203"));
        assert_eq!(config.stages[1].hosts, ["vm:2202", "vm:2203"]);
    }

    #[test]
    fn local_may_serve_every_stage() {
        let config = ok(&MINIMAL
            .replace("hosts = t1", "hosts = local")
            .replace("hosts = p1 p2", "hosts = local"));
        assert_eq!(config.stages[0].hosts, ["local"]);
        assert_eq!(config.stages[1].hosts, ["local"]);
        let e = err(&MINIMAL.replace("hosts = t1", "hosts = local local"));
        assert_eq!(
            e.message,
            "host `local` is listed twice in `[stage:test] hosts`"
        );
    }

    #[test]
    fn invalid_package_names_are_rejected() {
        for bad in ["Fast_Path", "a", "x;rm"] {
            let e = err(&MINIMAL.replace(
                "deb_packages = foo bar",
                &format!("deb_packages = foo {bad}"),
            ));
            assert!(
                e.message.starts_with(&format!(
                    "`deb_packages` lists `{bad}`, which is not a valid Debian package name: "
                )),
                "{bad}: {e:?}"
            );
            assert_eq!(e.line, Some(2));
            assert_eq!(note(&e), ACCEPTED_PACKAGE);
        }
        // Whitespace splits lists, so `x;rm -rf /` is three items; the first
        // bad one is reported.
        let e = err(&MINIMAL.replace("deb_packages = foo bar", "deb_packages = x;rm -rf /"));
        assert!(e.message.contains("`x;rm`"), "{e:?}");
    }

    #[test]
    fn invalid_stage_names() {
        for bad in ["-x", "a/b", "..", ".hidden", "a$b", "_x", "pr*d"] {
            let text = MINIMAL
                .replace("stages = test prod", &format!("stages = test {bad}"))
                .replace("[stage:prod]", &format!("[stage:{bad}]"));
            let e = err(&text);
            assert_eq!(
                e.message,
                format!("`stages` lists `{bad}`, which is not a valid stage name"),
                "{bad}"
            );
            assert_eq!(e.line, Some(3));
            assert_eq!(note(&e), ACCEPTED_STAGE);
        }
        let config = ok(&MINIMAL
            .replace("stages = test prod", "stages = test_1 Prod.eu-2")
            .replace("[stage:test]", "[stage:test_1]")
            .replace("[stage:prod]", "[stage:Prod.eu-2]"));
        assert_eq!(config.stages[1].name, "Prod.eu-2");
    }

    #[test]
    fn invalid_host_is_an_error_with_the_grammar() {
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 -oProxyCommand=x"));
        assert!(
            e.message.starts_with(
                "`hosts` in `[stage:prod]` lists `-oProxyCommand=x`, which is not a valid host: "
            ),
            "{e:?}"
        );
        assert_eq!(e.line, Some(7));
        assert!(note(&e).contains("`user@name:port`"), "{e:?}");
    }

    /// There are no comments after values: `# primary` would otherwise
    /// become two hosts named `#` and `primary`.
    #[test]
    fn trailing_comment_after_hosts_is_explained() {
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 p2 # primary"));
        assert!(e.message.contains("looks like a comment"), "{e:?}");
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        let e = err(&MINIMAL.replace("hosts = t1\n", "hosts = t1\nhosts = t2\n"));
        assert_eq!(
            e.message,
            "key `hosts` appears twice in `[stage:test]`, on lines 5 and 6"
        );
        assert_eq!(e.line, Some(6));
        assert!(note(&e).contains("keep one"));
    }

    #[test]
    fn duplicate_section_names_both_lines() {
        let e = err(&format!("{MINIMAL}[stage:test]\nhosts = t3\n"));
        assert_eq!(
            e.message,
            "section `[stage:test]` appears twice, on lines 4 and 8"
        );
        assert_eq!(e.line, Some(8));
        assert!(note(&e).contains("merge"));
    }

    #[test]
    fn malformed_lines() {
        let cases = [
            (
                "[environment\n",
                1,
                "section header `[environment` has no closing `]`",
            ),
            (
                "[environment] # main\n",
                1,
                "unexpected `# main` after the section header `[environment]`",
            ),
            ("[]\n", 1, "empty section header `[]`"),
            (
                "[environment]\nstages\n",
                2,
                "`stages` is neither a `[section]` header nor a `key = value` setting",
            ),
            (
                "[environment]\n= x\n",
                2,
                "the setting `= x` has no key before `=`",
            ),
        ];
        for (text, line, message) in cases {
            let e = err(text);
            assert_eq!(e.message, message, "{text:?}");
            assert_eq!(e.line, Some(line), "{text:?}");
            assert!(e.note.is_some(), "{text:?}");
        }
    }

    /// Indented comments are comments, and a key indented no deeper than
    /// the previous one is a key of its own (as in `ConfigParser`).
    #[test]
    fn indented_comments_and_keys_are_fine() {
        let config = ok("[environment]\n  # the packages\n  deb_packages = foo\n\t; stages\nstages = s\n[stage:s]\n   hosts = h\n");
        assert_eq!(config.stages[0].hosts, ["h"]);
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn crlf_line_ends() {
        let config = ok(&ORIGINAL.replace('\n', "\r\n"));
        assert_eq!(config.stages.len(), 3);
        assert_eq!(config.stages[2].hosts.len(), 2);
    }

    #[test]
    fn continued_lines_keep_line_numbers_right() {
        let text = MINIMAL.replace("hosts = p1 p2", "hosts = p1 \\\n  p2\ncritical = maybe");
        let e = err(&text);
        assert_eq!(e.line, Some(9), "{e:?}");
        let config = ok(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 \\\n  p2"));
        assert_eq!(config.stages[1].hosts, ["p1", "p2"]);
    }

    #[test]
    fn spaces_inside_section_headers_are_ignored() {
        let text = MINIMAL
            .replace("[stage:test]", "[ stage : test ]")
            .replace("[stage:prod]", "[stage:\tprod]")
            + "[package: foo]\nhealth_check = true\n";
        let config = ok(&text);
        assert_eq!(config.stages[0].hosts, ["t1"]);
        assert_eq!(config.stages[1].hosts, ["p1", "p2"]);
        assert_eq!(config.health_checks.len(), 1);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let e = err(&format!("{MINIMAL}[stage: test]\nhosts = t3\n"));
        assert_eq!(
            e.message,
            "section `[stage:test]` appears twice, on lines 4 and 8"
        );
    }

    #[test]
    fn colon_separator_works_like_equals() {
        let config = ok(&MINIMAL.replace("hosts = t1", "hosts: t1"));
        assert_eq!(config.stages[0].hosts, ["t1"]);
    }

    // --- Python ConfigParser compatibility ----------------------------------

    /// A file saved by an editor that writes a byte order mark used to fail
    /// with an error about an invisible character.
    #[test]
    fn a_utf8_bom_at_the_start_is_ignored() {
        let config = ok(&format!("\u{feff}{MINIMAL}"));
        assert_eq!(config.stages.len(), 2);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let config = ok(&format!("\u{feff}{}", ORIGINAL.replace('\n', "\r\n")));
        assert_eq!(config.stages.len(), 3);
    }

    #[test]
    fn keys_are_case_insensitive_like_configparser() {
        let text = MINIMAL
            .replace("deb_packages", "Deb_Packages")
            .replace("stages =", "STAGES =")
            .replace("hosts = t1", "Hosts = t1\nCritical = Yes");
        let config = ok(&text);
        assert_eq!(config.packages.len(), 2);
        assert_eq!(config.stages[0].hosts, ["t1"]);
        assert!(config.stages[0].critical);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        // The same key in two spellings is the same key twice.
        let e = err(&MINIMAL.replace("hosts = t1", "hosts = t1\nHOSTS = t2"));
        assert_eq!(
            e.message,
            "key `hosts` appears twice in `[stage:test]`, on lines 5 and 6"
        );
    }

    /// ConfigParser compares section names as written: `[Environment]` is
    /// another section, so it is reported (with a hint), never guessed.
    #[test]
    fn section_names_keep_their_case() {
        let e = err(&MINIMAL.replace("[environment]", "[Environment]"));
        assert_eq!(e.message, "there is no `[environment]` section");
        assert!(
            note(&e).starts_with("did you mean `[environment]` instead of `[Environment]`?"),
            "{e:?}"
        );
        let e = err(&MINIMAL.replace("[stage:prod]", "[Stage:prod]"));
        assert_eq!(
            e.message,
            "stage `prod` is listed in `stages` but there is no `[stage:prod]` section"
        );
    }

    #[test]
    fn colon_and_equals_and_the_first_one_wins() {
        let config = ok(&MINIMAL
            .replace("deb_packages = foo bar", "deb_packages: foo bar")
            .replace("hosts = p1 p2", "hosts : p1:2222 p2"));
        assert_eq!(config.packages.len(), 2);
        assert_eq!(config.stages[1].hosts, ["p1:2222", "p2"]);
    }

    #[test]
    fn indented_lines_continue_a_list() {
        let text = MINIMAL
            .replace("deb_packages = foo bar", "deb_packages =\n    foo\n    bar")
            .replace(
                "hosts = p1 p2",
                "hosts = p1\n  # the second data centre\n\n  p2 [2001:db8::1]:22\ncritical = no",
            );
        let config = ok(&text);
        let packages: Vec<&str> = config.packages.iter().map(PackageName::as_str).collect();
        assert_eq!(packages, ["foo", "bar"]);
        assert_eq!(config.stages[1].hosts, ["p1", "p2", "[2001:db8::1]:22"]);
        assert!(!config.stages[1].critical);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        // Errors about a list name the key's line.
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1\n    p2 p1"));
        assert_eq!(
            e.message,
            "host `p1` is listed twice in `[stage:prod] hosts`"
        );
        assert_eq!(e.line, Some(7));
    }

    #[test]
    fn a_single_value_cannot_continue() {
        let e = err(&with_env("parallelism = 8\n  16"));
        assert_eq!(
            e.message,
            "`parallelism` in `[environment]` takes a single value, but line 5 is indented and so continues it"
        );
        assert_eq!(e.line, Some(5));
        assert!(note(&e).contains("only lists"), "{e:?}");
        let e = err(&format!(
            "{MINIMAL}[package:foo]\nhealth_check = true\n    && false\n"
        ));
        assert_eq!(e.line, Some(10));
        assert!(e.message.contains("`health_check`"), "{e:?}");
    }

    /// In ConfigParser an indented line after a setting is part of its
    /// value, whatever it looks like; deployer says so instead of reading
    /// `stages` as a package name.
    #[test]
    fn an_indented_setting_or_header_is_explained() {
        let e = err(&MINIMAL.replace("stages = test prod", "  stages = test prod"));
        assert_eq!(
            e.message,
            "line 3 is indented, so it continues the value of `deb_packages` from line 2, but it looks like a setting of `stages`"
        );
        assert_eq!(e.line, Some(3));
        assert!(note(&e).contains("remove the indentation"), "{e:?}");
        let e = err(&MINIMAL.replace("[stage:prod]", "  [stage:prod]"));
        assert_eq!(
            e.message,
            "line 6 is indented, so it continues the value of `hosts` from line 5, but it looks like the section header `[stage:prod]`"
        );
        // A key indented like the one before it is a key of its own.
        let config =
            ok("[environment]\n  deb_packages = foo\n  stages = s\n[stage:s]\n  hosts = h\n");
        assert_eq!(config.stages[0].hosts, ["h"]);
    }

    /// `x = a # comment`: the `#` is part of the value in ConfigParser too,
    /// so the value would be wrong; the error says why.
    #[test]
    fn a_comment_after_a_value_is_refused_with_the_reason() {
        for (extra, rest, mark) in [
            ("parallelism = 8 # more later", "# more later", "#"),
            ("parallelism = 8 ; more later", "; more later", ";"),
            ("ssh_user = deploy #ops", "#ops", "#"),
        ] {
            let e = err(&with_env(extra));
            let key = extra.split(' ').next().unwrap();
            assert_eq!(
                e.message,
                format!("`{key}` in `[environment]` has `{rest}` after its value, which looks like a comment: a `{mark}` after a value is part of the value, not a comment")
            );
            assert_eq!(e.line, Some(4));
            assert!(
                note(&e).starts_with("put the comment on its own line"),
                "{e:?}"
            );
        }
        // On a continuation line, that line is named.
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1\n  p2 # backup"));
        assert_eq!(e.line, Some(8));
        // `#` and `;` inside a word are fine, and a command keeps both.
        let config = ok(&format!(
            "{MINIMAL}[package:foo]\nhealth_check = test -f /x; echo ok # fine\n"
        ));
        let foo: PackageName = "foo".parse().unwrap();
        assert_eq!(config.health_checks[&foo], "test -f /x; echo ok # fine");
        assert_eq!(
            ok(&with_env("history_file = logs/#1;a.jsonl")).history_file,
            PathBuf::from("/srv/deployer/logs/#1;a.jsonl")
        );
    }

    /// ConfigParser copies `[DEFAULT]`'s keys into every section; deployer
    /// does not, so it refuses the section rather than drop its meaning.
    #[test]
    fn a_default_section_with_keys_is_refused() {
        let e = err(&format!("[DEFAULT]\ncritical = no\n{MINIMAL}"));
        assert_eq!(e.line, Some(1));
        assert!(
            e.message.starts_with("`[DEFAULT]` is not supported"),
            "{e:?}"
        );
        assert!(note(&e).contains("remove `[DEFAULT]`"), "{e:?}");
        let config = ok(&format!("[DEFAULT]\n{MINIMAL}"));
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    }

    #[test]
    fn an_unindented_line_after_a_backslash_is_refused() {
        let e = err(&MINIMAL.replace("hosts = p1 p2", "hosts = p1 \\\np2"));
        assert_eq!(
            e.message,
            "the value of `hosts` ends with `\\`, but line 8 does not continue it"
        );
        assert_eq!(e.line, Some(7));
    }

    // --- [notify] ------------------------------------------------------------

    #[test]
    fn notify_defaults_without_the_section() {
        let notify = ok(MINIMAL).notify;
        assert_eq!(notify, Notify::default());
        assert_eq!(notify.webhook_url, None);
        assert_eq!(notify.notify_command, None);
        assert_eq!(notify.webhook_format, WebhookFormat::Text);
        assert_eq!(notify.notify_on, NotifyEvent::ALL);
        assert!(!notify.wants(NotifyEvent::Start), "nowhere to send it");
    }

    #[test]
    fn notify_keys() {
        let config = ok(&format!(
            "{MINIMAL}[notify]\nwebhook_url = https://hooks.example.org/T0/B1?x=1#f\nWebhook_Format = Slack\nnotify_command = jq -c . | logger -t deploy; true\nnotify_on = failure\n  interrupt freeze\n"
        ));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let notify = &config.notify;
        assert_eq!(
            notify.webhook_url.as_deref(),
            Some("https://hooks.example.org/T0/B1?x=1#f")
        );
        assert_eq!(notify.webhook_format, WebhookFormat::Slack);
        assert_eq!(
            notify.notify_command.as_deref(),
            Some("jq -c . | logger -t deploy; true")
        );
        assert_eq!(
            notify.notify_on,
            [
                NotifyEvent::Failure,
                NotifyEvent::Interrupt,
                NotifyEvent::Freeze
            ]
        );
        assert!(notify.wants(NotifyEvent::Failure));
        assert!(!notify.wants(NotifyEvent::Start));
        let notify = ok(&format!("{MINIMAL}[notify]\nnotify_command = cat\n")).notify;
        assert!(NotifyEvent::ALL.iter().all(|e| notify.wants(*e)));
    }

    #[test]
    fn webhook_urls() {
        for good in [
            "http://localhost:8080/hook",
            "https://ntfy.sh/my-topic",
            "HTTPS://Example.org",
            "https://user:token@example.org/x",
            "http://[::1]:8080/h",
            "http://10.0.0.1/h",
        ] {
            let notify = ok(&format!(
                "{MINIMAL}[notify]\nwebhook_url = {good}\nwebhook_allow_http = yes\n"
            ))
            .notify;
            assert_eq!(notify.webhook_url.as_deref(), Some(good));
        }
        // (value, as the error shows it, why it is refused)
        for (bad, shown, reason) in [
            (
                "ftp://example.org/x",
                "ftp://example.org/…",
                "the scheme `ftp` is neither `http` nor `https`",
            ),
            (
                "example.org/hook",
                "(not shown: it may hold a token)",
                "not a URL",
            ),
            (
                "T0KEN@https://example.org/x",
                "…://example.org/…",
                "not a URL",
            ),
            ("https:///path", "https:///…", "it has no host"),
            (
                "https://exa mple.org/T0KEN",
                "https://exa/…",
                "a URL has no spaces or control characters",
            ),
            (
                "https://-x.org/T0KEN",
                "https://-x.org/…",
                "`-x.org` is not a host name",
            ),
            (
                "https://h:0/T0KEN",
                "https://h:0/…",
                "the port must be a number from 1 to 65535",
            ),
            (
                "https://user:T0KEN@h:99999/",
                "https://h:99999/…",
                "the port must be a number from 1 to 65535",
            ),
            (
                "http://[nope]/T0KEN",
                "http://[nope]/…",
                "the IPv6 address in brackets is not valid",
            ),
        ] {
            let e = err(&format!("{MINIMAL}[notify]\nwebhook_url = {bad}\n"));
            assert_eq!(
                e.message,
                format!("`webhook_url` in `[notify]` has an invalid value `{shown}`: {reason}")
            );
            assert!(!format!("{e:?}").contains("T0KEN"), "{e:?}");
            assert_eq!(e.line, Some(9));
            assert!(note(&e).contains("`https://"), "{e:?}");
        }
    }

    #[test]
    fn a_plain_http_webhook_is_refused_unless_allowed() {
        let e = err(&format!(
            "{MINIMAL}[notify]\nwebhook_url = http://user:T0KEN@hooks.example.org/T0KEN\n"
        ));
        assert_eq!(e.line, Some(9));
        assert_eq!(
            e.message,
            "`webhook_url` in `[notify]` is a plain `http://` URL (http://hooks.example.org/…): \
             it would carry the URL, and any token in it, in clear"
        );
        assert!(note(&e).contains("`webhook_allow_http = yes`"), "{e:?}");
        assert!(!format!("{e:?}").contains("T0KEN"), "{e:?}");
        let e = err(&format!(
            "{MINIMAL}[notify]\nwebhook_url = HTTP://h.example.org/x\nwebhook_allow_http = no\n"
        ));
        assert!(e.message.contains("plain `http://`"), "{e:?}");
        let c = ok(&format!(
            "{MINIMAL}[notify]\nwebhook_url = http://127.0.0.1:8080/x\nwebhook_allow_http = yes\n"
        ));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = ok(&format!(
            "{MINIMAL}[notify]\nwebhook_allow_http = yes\nnotify_command = true\n"
        ));
        assert_eq!(
            c.warnings,
            [format!(
                "`{PATH}` line 9: `webhook_allow_http` in `[notify]` has no effect without `webhook_url`"
            )]
        );
    }

    #[test]
    fn webhook_format_and_notify_on_are_checked() {
        let e = err(&format!("{MINIMAL}[notify]\nwebhook_format = json\n"));
        assert_eq!(
            e.message,
            "`webhook_format` in `[notify]` has an invalid value `json`: expected `text` or `slack`"
        );
        assert!(note(&e).contains("default `text`"), "{e:?}");
        for (bad, reason) in [
            ("start finish", "`finish` is not an event"),
            ("start Start", "`Start` is not an event"),
            ("failure failure", "`failure` is listed twice"),
        ] {
            let e = err(&format!(
                "{MINIMAL}[notify]\nnotify_command = cat\nnotify_on = {bad}\n"
            ));
            assert_eq!(
                e.message,
                format!("`notify_on` in `[notify]` has an invalid value `{bad}`: {reason}")
            );
            assert_eq!(e.line, Some(10));
            assert_eq!(
                note(&e),
                "accepted: one or more of `start`, `success`, `failure`, `interrupt`, `rollback`, `freeze`, `unfreeze`, `unlock`, separated by spaces (default: all)"
            );
        }
        let e = err(&format!("{MINIMAL}[notify]\nnotify_on =\n"));
        assert_eq!(e.message, "`notify_on` in `[notify]` is empty");
        let e = err(&format!("{MINIMAL}[notify]\nnotify_command =\n"));
        assert_eq!(e.message, "`notify_command` in `[notify]` is empty");
    }

    #[test]
    fn notify_settings_without_a_destination_warn() {
        let config = ok(&format!(
            "{MINIMAL}[notify]\nwebhook_format = slack\nnotify_on = start\nwebhok_url = https://x.org\n"
        ));
        assert_eq!(
            config.warnings,
            [
                format!("`{PATH}` line 11: unknown key `webhok_url` in `[notify]` is ignored; did you mean `webhook_url`?"),
                format!("`{PATH}` line 9: `webhook_format` in `[notify]` has no effect without `webhook_url`"),
                format!("`{PATH}` line 10: `notify_on` in `[notify]` has no effect without `webhook_url` or `notify_command`"),
            ]
        );
        let config = ok(&format!("{MINIMAL}[notfy]\nwebhook_url = https://x.org\n"));
        assert_eq!(
            config.warnings,
            [format!(
                "`{PATH}` line 8: unknown section `[notfy]` is ignored; did you mean `[notify]`?"
            )]
        );
    }

    // --- warnings ----------------------------------------------------------

    #[test]
    fn unknown_keys_warn_with_suggestions() {
        let text = with_env("paralelism = 8\nfrobnicate = 1\nhosts = x")
            .replace("hosts = t1", "hosts = t1\nhsots = t2\ncritcal = no")
            + "[package:foo]\nhealth_chek = true\n";
        let config = ok(&text);
        assert_eq!(
            config.warnings,
            [
                format!("`{PATH}` line 4: unknown key `paralelism` in `[environment]` is ignored; did you mean `parallelism`?"),
                format!("`{PATH}` line 5: unknown key `frobnicate` in `[environment]` is ignored"),
                format!("`{PATH}` line 6: unknown key `hosts` in `[environment]` is ignored; `hosts` belongs in `[stage:NAME]`"),
                format!("`{PATH}` line 9: unknown key `hsots` in `[stage:test]` is ignored; did you mean `hosts`?"),
                format!("`{PATH}` line 10: unknown key `critcal` in `[stage:test]` is ignored; did you mean `critical`?"),
                format!("`{PATH}` line 14: unknown key `health_chek` in `[package:foo]` is ignored; did you mean `health_check`?"),
            ]
        );
        // The typo means the real key is absent: the default applies.
        assert_eq!(config.parallelism, 64);
    }

    #[test]
    fn keys_are_case_insensitive_but_unknown_ones_keep_their_spelling() {
        let config = ok(&with_env("Parallelism = 8\nParalelism = 9"));
        assert_eq!(config.parallelism, 8);
        assert_eq!(
            config.warnings,
            [format!("`{PATH}` line 5: unknown key `Paralelism` in `[environment]` is ignored; did you mean `parallelism`?")]
        );
    }

    #[test]
    fn unknown_sections_warn() {
        let text = format!("{MINIMAL}[stages:test]\nhosts = a\n[global]\nx = 1\n");
        let config = ok(&text);
        assert_eq!(
            config.warnings,
            [
                format!("`{PATH}` line 8: unknown section `[stages:test]` is ignored; did you mean `[stage:test]`?"),
                format!("`{PATH}` line 10: unknown section `[global]` is ignored; known sections are `[environment]`, `[stage:NAME]`, `[package:NAME]`, `[notify]`, `[alerts]` and `[gate:NAME]`"),
            ]
        );
    }

    #[test]
    fn keys_before_any_section_warn() {
        let config = ok(&format!("parallelism = 4\ncolour = red\n{MINIMAL}"));
        assert_eq!(
            config.warnings,
            [
                format!("`{PATH}` line 1: key `parallelism` is outside any section and is ignored; it belongs under `[environment]`"),
                format!("`{PATH}` line 2: key `colour` is outside any section and is ignored"),
            ]
        );
        assert_eq!(config.parallelism, 64);
    }

    // --- new keys ----------------------------------------------------------

    #[test]
    fn every_environment_key() {
        let config = ok(&with_env(
            "ssh_user = deploy
ssh_port = 2222
ssh_identity_file = ~/.ssh/id_ed25519 /etc/deployer/key
ssh_config = ssh/config
known_hosts = /etc/deployer/known_hosts
accept_new_host_keys = yes
connect_timeout = 5
command_timeout = 45s
deploy_timeout = 15m
parallelism = 8
max_startups = 4
history_file = logs/history.jsonl
batch_size = 3
rollback_on_failure = on",
        ));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(
            config.ssh,
            SshOptions {
                user: Some("deploy".into()),
                port: Some(2222),
                identity_files: vec![
                    PathBuf::from("~/.ssh/id_ed25519"),
                    PathBuf::from("/etc/deployer/key")
                ],
                ssh_config: Some(PathBuf::from("ssh/config")),
                known_hosts: Some(PathBuf::from("/etc/deployer/known_hosts")),
                accept_new_host_keys: true,
                connect_timeout: Some(Duration::from_secs(5)),
                max_startups: 4,
                proxy_jump: None,
                command_timeout: Duration::from_secs(45),
                deploy_timeout: Duration::from_secs(900),
                lock_timeout: Duration::from_secs(60),
                lock_expiry: Duration::from_secs(90),
            }
        );
        assert_eq!(config.parallelism, 8);
        assert_eq!(
            config.history_file,
            PathBuf::from("/srv/deployer/logs/history.jsonl")
        );
        assert_eq!(config.batch_size, Share::Hosts(3));
        assert!(config.rollback_on_failure);
    }

    #[test]
    fn history_file_paths() {
        let at = |value: &str| ok(&with_env(&format!("history_file = {value}"))).history_file;
        assert_eq!(at("/var/log/d.jsonl"), PathBuf::from("/var/log/d.jsonl"));
        assert_eq!(at("h.jsonl"), PathBuf::from("/srv/deployer/h.jsonl"));
        assert_eq!(at("../h.jsonl"), PathBuf::from("/srv/deployer/../h.jsonl"));
        assert_eq!(at("~/h.jsonl"), PathBuf::from("~/h.jsonl"));
        // A bare file name as the config path: history sits beside it.
        let config = parse(Path::new("deployer.ini"), MINIMAL).unwrap();
        assert_eq!(config.history_file, PathBuf::from("deployer-history.jsonl"));
    }

    #[test]
    fn expand_home_touches_only_tilde_paths() {
        let mut config = ok(&with_env(
            "ssh_identity_file = ~/.ssh/a /k/b\nssh_config = ~/.ssh/cfg\nknown_hosts = kh\nhistory_file = ~/h.jsonl",
        ));
        config.expand_home(Path::new("/home/op"));
        assert_eq!(
            config.ssh.identity_files,
            [PathBuf::from("/home/op/.ssh/a"), PathBuf::from("/k/b")]
        );
        assert_eq!(
            config.ssh.ssh_config,
            Some(PathBuf::from("/home/op/.ssh/cfg"))
        );
        assert_eq!(config.ssh.known_hosts, Some(PathBuf::from("kh")));
        assert_eq!(config.history_file, PathBuf::from("/home/op/h.jsonl"));
        // `~user` is not a home we know.
        assert_eq!(
            expand_home(Path::new("~x/a"), Path::new("/h")),
            PathBuf::from("~x/a")
        );
    }

    #[test]
    fn booleans() {
        for (text, value) in [
            ("yes", true),
            ("YES", true),
            ("true", true),
            ("On", true),
            ("1", true),
            ("no", false),
            ("False", false),
            ("off", false),
            ("0", false),
        ] {
            let config = ok(&with_env(&format!("rollback_on_failure = {text}")));
            assert_eq!(config.rollback_on_failure, value, "{text}");
        }
        for bad in ["y", "2", "enabled", "yes please"] {
            let e = err(&with_env(&format!("accept_new_host_keys = {bad}")));
            assert_eq!(
                e.message,
                format!("`accept_new_host_keys` in `[environment]` has an invalid value `{bad}`: expected yes or no")
            );
            assert_eq!(e.line, Some(4));
            assert_eq!(note(&e), ACCEPTED_BOOL);
        }
    }

    #[test]
    fn badges_keys() {
        let config = ok(MINIMAL);
        assert_eq!(config.badges_path, None);
        assert!(config.badges_after_deploy);
        assert!(!config.badges_png);
        let config = ok(&with_env(
            "badges_path = /var/www/b\nbadges_after_deploy = no\nbadges_png = yes",
        ));
        assert_eq!(config.badges_path, Some(PathBuf::from("/var/www/b")));
        assert!(!config.badges_after_deploy);
        assert!(config.badges_png);
        for relative in ["www/badges", "~/badges", "./b"] {
            let e = err(&with_env(&format!("badges_path = {relative}")));
            assert!(
                e.message.contains("`badges_path`") && e.message.contains(relative),
                "{}",
                e.message
            );
            assert_eq!(e.line, Some(4), "{relative}");
        }
    }

    #[test]
    fn dashboard_refresh() {
        let config = ok(MINIMAL);
        assert_eq!(config.dashboard_refresh, Some(DEFAULT_DASHBOARD_REFRESH));
        for (text, want) in [
            ("60", Some(60)),
            ("90s", Some(90)),
            ("5m", Some(300)),
            ("10", Some(10)),
            ("1440m", Some(86_400)),
            ("0", None),
            (" 0 ", None),
        ] {
            let config = ok(&with_env(&format!("dashboard_refresh = {text}")));
            assert_eq!(
                config.dashboard_refresh,
                want.map(Duration::from_secs),
                "{text}"
            );
        }
        for (bad, reason) in [
            ("9", "too short"),
            ("1441m", "too long"),
            ("off", "not a duration"),
            ("0s", "it must be longer than zero"),
            ("-1", "not a duration"),
            ("1h", "not a duration"),
        ] {
            let e = err(&with_env(&format!("dashboard_refresh = {bad}")));
            assert_eq!(
                e.message,
                format!(
                    "`dashboard_refresh` in `[environment]` has an invalid value `{bad}`: {reason}"
                )
            );
            assert_eq!(e.line, Some(4), "{bad}");
            assert!(
                e.to_string().starts_with(&format!("`{PATH}` line 4: ")),
                "{e}"
            );
            assert!(
                note(&e).starts_with(
                    "accepted: `0` (the page never reloads itself), or a duration from 10s"
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("10", 10),
            ("10s", 10),
            ("2m", 120),
            ("1", 1),
            ("0600", 600),
        ] {
            let config = ok(&with_env(&format!("deploy_timeout = {text}")));
            assert_eq!(
                config.ssh.deploy_timeout,
                Duration::from_secs(secs),
                "{text}"
            );
        }
        for (bad, reason) in [
            ("0", "it must be longer than zero"),
            ("0s", "it must be longer than zero"),
            ("0m", "it must be longer than zero"),
            ("-5", "not a duration"),
            ("1.5", "not a duration"),
            ("10 s", "not a duration"),
            ("1h", "not a duration"),
            ("s", "not a duration"),
            ("ten", "not a duration"),
            ("99999999999999999999", "too large"),
            ("999999999999999999m", "too large"),
        ] {
            for key in ["connect_timeout", "command_timeout", "deploy_timeout"] {
                let e = err(&with_env(&format!("{key} = {bad}")));
                assert_eq!(
                    e.message,
                    format!("`{key}` in `[environment]` has an invalid value `{bad}`: {reason}")
                );
                assert_eq!(e.line, Some(4));
                assert_eq!(note(&e), ACCEPTED_DURATION);
            }
        }
    }

    /// `text` is refused: `key` in `section` on `line` has the invalid
    /// value `bad` for `reason`, and the note says `accepted`.
    fn invalid(text: &str, section: &str, line: usize, case: (&str, &str, &str, &str)) {
        let (key, bad, reason, accepted) = case;
        let e = err(text);
        assert_eq!(
            e.message,
            format!("`{key}` in `{section}` has an invalid value `{bad}`: {reason}")
        );
        assert_eq!(e.line, Some(line));
        assert!(note(&e).contains(accepted), "{key} {bad}: {e:?}");
    }

    #[test]
    fn numbers_out_of_range() {
        let cases = [
            ("ssh_port", "0", "out of range", "1 to 65535"),
            ("ssh_port", "65536", "out of range", "1 to 65535"),
            ("ssh_port", "22a", "not a whole number", "1 to 65535"),
            ("parallelism", "0", "out of range", "1 to 1024"),
            ("parallelism", "1025", "out of range", "1 to 1024"),
            ("parallelism", "-1", "not a whole number", "1 to 1024"),
            ("batch_size", "0", "out of range", "at least 1"),
            ("lock_expiry", "6s", "too short", "at least 10s"),
            (
                "batch_size",
                "two",
                "not a whole number of hosts or a percentage",
                "at least 1",
            ),
            ("batch_size", "0%", "out of range", "from 1% to 100%"),
            ("batch_size", "150%", "more than 100%", "from 1% to 100%"),
            (
                "batch_size",
                "25 %",
                "not a whole number of hosts or a percentage",
                "without a space (`25%`)",
            ),
        ];
        for case in cases {
            invalid(
                &with_env(&format!("{} = {}", case.0, case.1)),
                "[environment]",
                4,
                case,
            );
        }
        assert_eq!(ok(&with_env("parallelism = 1024")).parallelism, 1024);
        assert_eq!(ok(&with_env("ssh_port = 65535")).ssh.port, Some(65535));
    }

    #[test]
    fn approvals_need_allowed_signers_relative_to_the_file() {
        let config = ok(&format!(
            "{MINIMAL}approvals = 2\nallowed_signers = keys/signers\n"
        ));
        assert_eq!(config.stages[0].approvals, 0);
        assert_eq!(config.stages[0].allowed_signers, None);
        assert_eq!(config.stages[1].approvals, 2);
        let dir = Path::new(PATH).parent().unwrap();
        assert_eq!(
            config.stages[1].allowed_signers.as_deref(),
            Some(dir.join("keys/signers").as_path())
        );
        let absolute = ok(&format!(
            "{MINIMAL}approvals = 1\nallowed_signers = /etc/s\n"
        ));
        assert_eq!(
            absolute.stages[1].allowed_signers.as_deref(),
            Some(Path::new("/etc/s"))
        );
        let e = err(&format!("{MINIMAL}approvals = 1\n"));
        assert!(e.message.contains("needs `allowed_signers`"), "{e:?}");
        assert_eq!(e.line, Some(8));
        let e = err(&format!("{MINIMAL}approvals = two\nallowed_signers = s\n"));
        assert!(e.to_string().contains("approvals"), "{e:?}");
    }

    #[test]
    fn batch_size_and_max_failures_per_stage() {
        let config = ok(&format!("{MINIMAL}batch_size = 25%\nmax_failures = 10%\n"));
        assert_eq!(config.batch_size, Share::Hosts(1));
        assert_eq!(config.stages[0].batch_size, None);
        assert_eq!(config.stages[0].max_failures, Share::Hosts(0));
        assert_eq!(config.stages[1].batch_size, Some(Share::Percent(25)));
        assert_eq!(config.stages[1].max_failures, Share::Percent(10));
        assert_eq!(
            ok(&with_env("batch_size = 50%")).batch_size,
            Share::Percent(50)
        );
        assert_eq!(
            ok(&format!("{MINIMAL}max_failures = 2\n")).stages[1].max_failures,
            Share::Hosts(2)
        );
        // MINIMAL ends on line 8; the stage's keys follow
        for case in [
            ("batch_size", "0%", "out of range", "from 1% to 100%"),
            ("batch_size", "150%", "more than 100%", "rounded up"),
            ("max_failures", "101%", "more than 100%", "rounded down"),
            (
                "max_failures",
                "10 %",
                "not a whole number of hosts or a percentage",
                "without a space (`10%`)",
            ),
            (
                "max_failures",
                "-1",
                "not a whole number of hosts or a percentage",
                "0, the default, halts on the first failure",
            ),
        ] {
            let text = format!("{MINIMAL}{} = {}\n", case.0, case.1);
            invalid(&text, "[stage:prod]", 8, case);
        }
    }

    #[test]
    fn invalid_user_and_paths() {
        let e = err(&with_env("ssh_user = -oProxyCommand=x"));
        assert!(
            e.message
                .ends_with("has an invalid value `-oProxyCommand=x`: not a user name"),
            "{e:?}"
        );
        let e = err(&with_env("ssh_user = root admin"));
        assert!(e.message.contains("not a user name"), "{e:?}");
        let e = err(&with_env("known_hosts = ~bob/.ssh/known_hosts"));
        assert!(
            e.message.ends_with("only `~/` (your own home) is expanded"),
            "{e:?}"
        );
        assert!(note(&e).contains("full path"));
        let e = err(&with_env("ssh_identity_file = ~/.ssh/a ~alice/b"));
        assert!(e.message.contains("`ssh_identity_file`"), "{e:?}");
    }

    #[test]
    fn empty_optional_values_are_errors() {
        for key in [
            "ssh_user",
            "ssh_port",
            "history_file",
            "badges_path",
            "connect_timeout",
        ] {
            let e = err(&with_env(&format!("{key} =")));
            assert_eq!(e.message, format!("`{key}` in `[environment]` is empty"));
            assert_eq!(e.line, Some(4));
            assert!(note(&e).contains("remove the line to use the default"));
        }
    }

    #[test]
    fn critical_defaults_to_every_stage_after_the_first_and_can_be_overridden() {
        let critical =
            |config: &Config| config.stages.iter().map(|s| s.critical).collect::<Vec<_>>();
        assert_eq!(critical(&ok(MINIMAL)), [false, true]);
        // A middle stage is someone's production too (was: last stage only).
        assert_eq!(critical(&ok(ORIGINAL)), [false, true, true]);
        let single = "[environment]\ndeb_packages = foo\nstages = only\n[stage:only]\nhosts = h\n";
        assert_eq!(critical(&ok(single)), [false]);
        let config = ok(&ORIGINAL.replace(
            "hosts = backend-hel.ooni.org",
            "hosts = backend-hel.ooni.org\ncritical = no",
        ));
        assert_eq!(critical(&config), [false, false, true]);
        let config = ok(&MINIMAL
            .replace("hosts = t1", "hosts = t1\ncritical = yes")
            .replace("hosts = p1 p2", "hosts = p1 p2\ncritical = no"));
        assert_eq!(
            config.stages.iter().map(|s| s.critical).collect::<Vec<_>>(),
            [true, false]
        );
        let e = err(&MINIMAL.replace("hosts = t1", "hosts = t1\ncritical = sometimes"));
        assert_eq!(
            e.message,
            "`critical` in `[stage:test]` has an invalid value `sometimes`: expected yes or no"
        );
        assert_eq!(e.line, Some(6));
    }

    #[test]
    fn health_checks_are_kept_as_written() {
        let text = format!(
            "{MINIMAL}[package:bar]\nhealth_check = curl -fs \"http://localhost:8080/health\" | grep -q 'ok' && test \\d\n"
        );
        let config = ok(&text);
        let bar: PackageName = "bar".parse().unwrap();
        assert_eq!(
            config.health_checks.get(&bar).map(String::as_str),
            Some("curl -fs \"http://localhost:8080/health\" | grep -q 'ok' && test \\d")
        );
        assert_eq!(config.health_checks.len(), 1);
    }

    #[test]
    fn services_are_read_and_unit_names_checked() {
        let config = ok(&format!(
            "{MINIMAL}[package:foo]\nunits = foo worker@1.service\n  foo.socket\nrestart = yes\n\
             [package:bar]\nlogs_command = tail -n 50 /var/log/bar.log # all\nrestart_command = /etc/init.d/bar restart\n"
        ));
        let foo = &config.services[&"foo".parse::<PackageName>().unwrap()];
        let names: Vec<&str> = foo.units.iter().map(|u| u.as_str()).collect();
        assert_eq!(names, ["foo.service", "worker@1.service", "foo.socket"]);
        assert!(foo.restart && foo.restarts());
        let bar = &config.services[&"bar".parse::<PackageName>().unwrap()];
        assert!(!bar.restart, "restart is off by default");
        assert_eq!(
            bar.logs_command.as_deref(),
            Some("tail -n 50 /var/log/bar.log # all")
        );
        assert!(ok(MINIMAL).services.is_empty());

        let e = err(&format!(
            "{MINIMAL}[package:foo]\nunits = foo.service bad;name\n"
        ));
        assert_eq!(e.line, Some(9));
        assert_eq!(
            e.to_string(),
            format!("`{PATH}` line 9: `units` in `[package:foo]` has an invalid value `foo.service bad;name`: `bad;name` is not a unit name: `;` is not allowed in a unit name")
        );
        assert!(
            e.note.as_deref().unwrap().contains("`worker@2.service`"),
            "{e:?}"
        );
        let e = err(&format!(
            "{MINIMAL}[package:foo]\nunits = worker@.service\n"
        ));
        assert!(e.message.contains("is a template"), "{e:?}");

        let e = err(&format!(
            "{MINIMAL}[package:foo]\nhealth_check = true\nrestart = yes\n"
        ));
        assert_eq!(e.line, Some(10));
        assert_eq!(
            e.message,
            "`restart = yes` in `[package:foo]` has nothing to restart"
        );
        assert!(e.note.as_deref().unwrap().contains("`units`"));
    }

    #[test]
    fn hold_is_per_package_and_off_by_default() {
        let config = ok(&format!(
            "{MINIMAL}[package:foo]\nhold = yes\n[package:bar]\nhold = no\nhealth_check = true\n"
        ));
        let foo: PackageName = "foo".parse().unwrap();
        assert_eq!(config.holds, [foo].into_iter().collect());
        assert_eq!(config.health_checks.len(), 1);
        assert!(ok(MINIMAL).holds.is_empty());
        let config = ok(&format!("{MINIMAL}[package:bar]\nhold = On\n"));
        assert_eq!(config.holds.len(), 1);
    }

    #[test]
    fn hold_must_be_yes_or_no() {
        let e = err(&format!("{MINIMAL}[package:foo]\nhold = always\n"));
        assert_eq!(e.line, Some(9));
        assert!(e.message.contains("`hold`"), "{}", e.message);
        assert!(e.message.contains("always"), "{}", e.message);
        assert_eq!(note(&e), ACCEPTED_BOOL);
    }

    #[test]
    fn package_section_for_unlisted_package() {
        let e = err(&format!("{MINIMAL}[package:baz]\nhealth_check = true\n"));
        assert_eq!(
            e.message,
            "section `[package:baz]` is for a package not listed in `deb_packages`"
        );
        assert_eq!(e.line, Some(8));
        assert_eq!(
            note(&e),
            "did you mean `[package:bar]`? `deb_packages` lists: `foo`, `bar`"
        );
    }

    #[test]
    fn empty_health_check_is_an_error() {
        let e = err(&format!("{MINIMAL}[package:foo]\nhealth_check =\n"));
        assert_eq!(e.message, "`health_check` in `[package:foo]` is empty");
        assert_eq!(e.line, Some(9));
    }

    // --- load --------------------------------------------------------------

    #[test]
    fn load_expands_home_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployer.ini");
        std::fs::write(&path, with_env("known_hosts = ~/kh")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let me = [rustix::process::geteuid().as_raw()];
        let config = load_with(&path, &me, Some(Path::new("/home/op"))).unwrap();
        assert_eq!(config.ssh.known_hosts, Some(PathBuf::from("/home/op/kh")));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let config = load_with(&path, &me, None).unwrap();
        assert_eq!(config.ssh.known_hosts, Some(PathBuf::from("~/kh")));
        assert_eq!(
            config.warnings,
            [format!(
                "`{}`: `HOME` is not set, so paths starting with `~/` are used as written",
                path.display()
            )]
        );
        // Not trusted: refused before it is parsed.
        let e = load_with(&path, &[4242], None).unwrap_err();
        assert!(
            e.message.starts_with("refusing to use this configuration"),
            "{e:?}"
        );
    }

    // --- [alerts] ------------------------------------------------------------

    #[test]
    fn alerts_with_matchers_per_stage_and_package() {
        let text = format!(
            "{MINIMAL}alert_matchers = env=\"prod\"\n[package:foo]\nalert_matchers = {{service=~\"foo|api\"}}\n\
             [alerts]\nalertmanager_url = http://127.0.0.1:9093/\n\
             matchers = severity=~\"critical|page\", team != db\non_unreachable = allow\n"
        );
        let config = ok(&text);
        let alerts = config.alerts.expect("[alerts] is read");
        assert_eq!(alerts.url, "http://127.0.0.1:9093/");
        assert_eq!(alerts.on_unreachable, crate::alerts::OnUnreachable::Allow);
        let foo: PackageName = "foo".parse().unwrap();
        assert_eq!(
            crate::alerts::matcher::describe(&alerts.matchers_for("prod", Some(&foo))),
            r#"severity=~"critical|page", team!="db", env="prod", service=~"foo|api""#
        );
        assert_eq!(
            crate::alerts::matcher::describe(&alerts.matchers_for("test", None)),
            r#"severity=~"critical|page", team!="db""#
        );
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        // without the section: none, and the default is to refuse
        assert!(ok(MINIMAL).alerts.is_none());
        let plain = ok(&format!(
            "{MINIMAL}[alerts]\nalertmanager_url = http://am:9093\n"
        ));
        let plain = plain.alerts.unwrap();
        assert_eq!(plain.on_unreachable, crate::alerts::OnUnreachable::Refuse);
        assert!(plain.matchers.is_empty());
    }

    #[test]
    fn a_bad_matcher_names_the_file_line_and_matcher() {
        let e = err(&format!(
            "{MINIMAL}[alerts]\nalertmanager_url = http://am:9093\nmatchers = a=\"x\", 9b=y\n"
        ));
        assert_eq!(e.line, Some(10));
        assert!(
            e.to_string().starts_with(&format!(
                "`{PATH}` line 10: `matchers` in `[alerts]` has an invalid value"
            )),
            "{e}"
        );
        assert!(
            e.message
                .contains("the matcher `9b=y`: it does not start with a label name"),
            "{e}"
        );
        assert!(note(&e).contains("`label=~regex`"), "{:?}", e.note);
        let e = err(&format!(
            "{MINIMAL}alert_matchers = sev=~\"(page\"\n[alerts]\nalertmanager_url = http://am:9093\n"
        ));
        assert_eq!(e.line, Some(8));
        assert!(
            e.message.contains("`alert_matchers` in `[stage:prod]`"),
            "{e}"
        );
        assert!(e.message.contains("not a valid regular expression"), "{e}");
    }

    #[test]
    fn alerts_need_a_url_and_alert_matchers_need_alerts() {
        let e = err(&format!("{MINIMAL}[alerts]\nmatchers = a=b\n"));
        assert!(
            e.message.contains("`[alerts]` has no `alertmanager_url`"),
            "{e}"
        );
        assert_eq!(e.line, Some(8));
        let e = err(&format!("{MINIMAL}alert_matchers = a=b\n"));
        assert_eq!(e.line, Some(8));
        assert!(
            e.message
                .contains("`alert_matchers` in `[stage:prod]` needs an `[alerts]` section"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}[alerts]\nalertmanager_url = http://am:9093\non_unreachable = ignore\n"
        ));
        assert!(e.message.contains("`on_unreachable` in `[alerts]`"), "{e}");
        assert!(note(&e).contains("`refuse`"), "{:?}", e.note);
        let e = err(&format!("{MINIMAL}[alerts]\nalertmanager_url = am:9093\n"));
        assert!(
            e.message.contains("`alertmanager_url` in `[alerts]`"),
            "{e}"
        );
    }
}
