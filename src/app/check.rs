//! `deployer check [STAGE]`: every host end to end, host by host, in
//! parallel (one session per host, through the [`Fleet`]): reachable, host
//! key known, login, `sudo -n`, the apt and dpkg tools, `badges_path`
//! writable, the stage the host believes it is in (`DEPLOYMENT=` in
//! `/etc/machine-info`), and the directories deployer writes as root (runs,
//! lock, freeze, history), which, like `badges_path`, must be reached
//! through no link and no directory another user can write (the very check
//! of [`crate::hostpath`] the writes make). Each failure comes with its fix.
//!
//! It changes nothing on a host: every command it sends only looks (the
//! `badges_path` probe tests the directory, or its nearest existing
//! parent, and creates nothing). Reading what hosts answer, deciding and
//! wording the checks, and rendering are pure functions of values; only
//! [`run`] talks to hosts.

use std::io::{self, Write};
use std::path::Path;

use crate::cli::Cli;
use crate::command::RemoteCommand;
use crate::config::Config;
use crate::deploy;
use crate::error::{ExitStatus, Fatal, HostError};
use crate::fleet::{Fleet, Member};
use crate::sudo;
use crate::transport::{Output, TargetKind};

use super::output::{emit, waiting};
use super::setup::{load_config, targets};

/// `deployer check [STAGE]`: the configuration loads (or this is an error,
/// status 2), then every host of STAGE (or of every stage) is checked;
/// status 3 when some host failed a check.
pub(super) fn command(cli: &Cli, stage: Option<&str>, json: bool) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    if let Some(stage) = stage {
        deploy::check_stage(&config, stage)?;
    }
    let mine = targets(cli, &config)?
        .into_iter()
        .filter(|t| stage.is_none_or(|s| t.stage == s))
        .collect();
    // each host connected to, checked and closed in one go: a check of
    // many hosts holds no more sessions than it works on at once
    let mut fleet = Fleet::unopened(mine, config.parallelism, waiting(cli));
    let checks = run(&config, &mut fleet);
    let failed = checks.iter().any(HostCheck::failed);
    // --quiet: the report only when some check failed
    if cli.quiet && !failed {
        return Ok(ExitStatus::Success);
    }
    if json {
        emit(|out| render_json(&config.path, &checks, out))?;
    } else {
        emit(|out| render_text(&config.path, &checks, out))?;
    }
    Ok(if failed {
        ExitStatus::Unreachable
    } else {
        ExitStatus::Success
    })
}

/// One thing checked on a host, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    /// A TCP connection and an SSH handshake (through jump hosts, if any).
    Reachable,
    /// The host's key is in known_hosts, unchanged.
    HostKey,
    /// The login user is let in with a key.
    Login,
    /// `sudo -n true` works.
    Sudo,
    /// `dpkg-query`, `apt-get` and `apt-cache` are there.
    Tools,
    /// `badges_path` (or its nearest existing parent) is writable by root,
    /// through no link or directory another user can write.
    BadgesPath,
    /// `DEPLOYMENT=` in `/etc/machine-info` names the configured stage.
    Stage,
    /// The directories deployer writes as root are reached through no link
    /// or directory another user can write.
    RootPaths,
}

impl Item {
    /// Every item, in order.
    pub(crate) const ALL: [Item; 8] = [
        Item::Reachable,
        Item::HostKey,
        Item::Login,
        Item::Sudo,
        Item::Tools,
        Item::BadgesPath,
        Item::Stage,
        Item::RootPaths,
    ];

    /// The name shown in text and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Item::Reachable => "reachable",
            Item::HostKey => "host-key",
            Item::Login => "login",
            Item::Sudo => "sudo",
            Item::Tools => "tools",
            Item::BadgesPath => "badges_path",
            Item::Stage => "stage",
            Item::RootPaths => "root-paths",
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It passed; what is worth saying about it (`not set` for a stage the
    /// host does not name), if anything.
    Passed(Option<String>),
    /// It failed: what is wrong, and what to run or change.
    Failed {
        /// What is wrong; host-provided text already made safe.
        problem: String,
        /// The fix, for the `note:` line.
        fix: String,
    },
    /// Not checked, because an earlier check failed.
    Skipped,
    /// Does not apply here, and why (`local`, `not set`).
    NotApplicable(&'static str),
}

/// Every check of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostCheck {
    /// The stage, as configured.
    pub stage: String,
    /// The host, as written in `deployer.ini`.
    pub host: String,
    /// One outcome per [`Item`], in order.
    pub items: Vec<(Item, Outcome)>,
}

impl HostCheck {
    /// Whether some check failed.
    pub(crate) fn failed(&self) -> bool {
        self.items
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Failed { .. }))
    }
}

/// Check every host of `fleet`, `parallelism` at a time, each connected to
/// (unless it was already) and closed once checked.
pub(crate) fn run(config: &Config, fleet: &mut Fleet) -> Vec<HostCheck> {
    fleet.visit(|_| true, |m| check_member(config, m))
}

/// Fills in the outcomes of one host, check after check; once one fails
/// for want of a session, the rest are skipped.
struct Sheet {
    items: Vec<(Item, Outcome)>,
}

impl Sheet {
    fn set(&mut self, item: Item, outcome: Outcome) {
        self.items.push((item, outcome));
    }

    /// Every item not set yet, skipped.
    fn skip_rest(&mut self) {
        for item in Item::ALL {
            if !self.items.iter().any(|(i, _)| *i == item) {
                self.items.push((item, Outcome::Skipped));
            }
        }
    }

    fn finish(mut self, member: &Member) -> HostCheck {
        self.skip_rest();
        self.items
            .sort_by_key(|(i, _)| Item::ALL.iter().position(|a| a == i));
        HostCheck {
            stage: member.target().stage.clone(),
            host: member.host().to_string(),
            items: self.items,
        }
    }
}

fn check_member(config: &Config, m: &mut Member) -> HostCheck {
    let mut sheet = Sheet { items: Vec::new() };
    let stage = m.target().stage.clone();
    let user = sudo::user_of(m);
    let hint = Hint {
        host: m.host().to_string(),
        stage: stage.clone(),
        user: user.clone(),
    };
    if let Some(e) = m.error() {
        let (failed, passed) = connect_failure(e);
        for item in passed {
            sheet.set(item, Outcome::Passed(None));
        }
        sheet.set(
            failed,
            Outcome::Failed {
                problem: e.to_string(),
                fix: connect_fix(e, &hint),
            },
        );
        return sheet.finish(m);
    }
    for item in [Item::Reachable, Item::HostKey, Item::Login] {
        sheet.set(
            item,
            match m.target().kind {
                TargetKind::Local => Outcome::NotApplicable("local"),
                TargetKind::Ssh(_) => Outcome::Passed(None),
            },
        );
    }
    let timeout = config.ssh.command_timeout;
    // a session lost on the way: that check fails, the others are skipped
    let lost = |sheet: &mut Sheet, item: Item, e: &HostError| {
        sheet.set(
            item,
            Outcome::Failed {
                problem: e.to_string(),
                fix: connect_fix(e, &hint),
            },
        );
    };

    let sudo_ok = match sudo::ask(m, timeout).1 {
        Ok(verdict) => {
            let outcome = sudo_outcome(&verdict, &hint);
            let ok = matches!(outcome, Outcome::Passed(_));
            sheet.set(Item::Sudo, outcome);
            ok
        }
        Err(e) => {
            lost(&mut sheet, Item::Sudo, &e);
            return sheet.finish(m);
        }
    };

    match m.run(&tools_command(), timeout) {
        Ok(out) => sheet.set(Item::Tools, tools_outcome(&out.stdout, &hint)),
        Err(e) => {
            lost(&mut sheet, Item::Tools, &e);
            return sheet.finish(m);
        }
    }

    match (&config.badges_path, sudo_ok) {
        (None, _) => sheet.set(Item::BadgesPath, Outcome::NotApplicable("not set")),
        (Some(_), false) => sheet.set(Item::BadgesPath, Outcome::Skipped),
        (Some(dir), true) => match m.run(&badges_probe_command(dir, &config.packages), timeout) {
            Ok(out) => sheet.set(Item::BadgesPath, badges_outcome(dir, &out, &hint)),
            Err(e) => {
                lost(&mut sheet, Item::BadgesPath, &e);
                return sheet.finish(m);
            }
        },
    }

    match m.run(&machine_info_command(), timeout) {
        Ok(out) => sheet.set(Item::Stage, stage_outcome(&out, &hint)),
        Err(e) => {
            lost(&mut sheet, Item::Stage, &e);
            return sheet.finish(m);
        }
    }

    match m.run(&crate::hostpath::probe_command(&ROOT_PATHS), timeout) {
        Ok(out) => sheet.set(Item::RootPaths, root_paths_outcome(&out, &hint)),
        Err(e) => lost(&mut sheet, Item::RootPaths, &e),
    }
    sheet.finish(m)
}

/// What the fixes need to name.
struct Hint {
    host: String,
    stage: String,
    user: String,
}

/// The check a connection error fails, and the checks it shows passed.
fn connect_failure(e: &HostError) -> (Item, Vec<Item>) {
    match e {
        HostError::HostKeyUnknown { .. }
        | HostError::HostKeyChanged { .. }
        | HostError::HostKeyRevoked { .. }
        | HostError::HostKeyCertAuthority { .. }
        | HostError::KnownHostsUnreadable { .. }
        | HostError::HostKeyNotRecorded { .. } => (Item::HostKey, vec![Item::Reachable]),
        HostError::Auth { .. } | HostError::AuthClosed { .. } => {
            (Item::Login, vec![Item::Reachable, Item::HostKey])
        }
        HostError::Timeout { phase, .. } if phase == "authenticating" => {
            (Item::Login, vec![Item::Reachable, Item::HostKey])
        }
        _ => (Item::Reachable, Vec::new()),
    }
}

/// What to do about a host that could not be reached, or was lost.
fn connect_fix(e: &HostError, hint: &Hint) -> String {
    let Hint { host, stage, user } = hint;
    let shown = format!("`deployer hosts {stage}` shows how deployer reaches `{host}`");
    match e {
        HostError::Resolve { .. } => format!(
            "check the name `{host}` in `[stage:{stage}] hosts` or its `HostName` in ~/.ssh/config; {shown}"
        ),
        HostError::Connect { .. } | HostError::Timeout { .. } | HostError::Ssh(_) => format!(
            "is the host up, and sshd listening on that address and port (firewall, jump hosts)? \
             {shown}; `ssh {host} true` tries the same by hand"
        ),
        HostError::HostKeyUnknown { .. } => format!(
            "check the fingerprint with whoever runs `{host}` (on the host: `ssh-keygen -lf \
             /etc/ssh/ssh_host_ed25519_key.pub`), then record it: `deployer \
             --accept-new-host-keys check {stage}` (or `accept_new_host_keys = yes`)"
        ),
        HostError::HostKeyChanged { .. } => format!(
            "if `{host}` was reinstalled, check the new fingerprint on the host itself, then \
             delete the known_hosts lines named above (`ssh-keygen -R NAME -f FILE`); \
             otherwise someone may be in the way: do not connect"
        ),
        HostError::HostKeyRevoked { .. } => {
            "the key was revoked on purpose: give the host a new key, and record that one".into()
        }
        HostError::HostKeyCertAuthority { .. } => format!(
            "add `{host}`'s own key to known_hosts (`ssh-keyscan`, checked against the host)"
        ),
        HostError::KnownHostsUnreadable { path, .. } => format!(
            "make `{}` readable by you (`ls -l` it), or point `known_hosts` elsewhere",
            path.display()
        ),
        HostError::HostKeyNotRecorded { known_hosts, .. } => format!(
            "make `{}` (and its directory) writable by you",
            known_hosts.display()
        ),
        HostError::Auth { .. } | HostError::AuthClosed { .. } => format!(
            "put your public key in `~{user}/.ssh/authorized_keys` on `{host}` \
             (`ssh-copy-id {user}@{host}`), load the key in your agent (`ssh-add`) or name it \
             (`ssh_identity_file`, `IdentityFile`); too many keys offered can close the \
             connection (sshd's `MaxAuthTries`): `IdentitiesOnly yes` with the right key"
        ),
        HostError::KexNoneRunnable { .. } | HostError::KexNoMatch { .. } => format!(
            "list a key exchange algorithm both ends run in `KexAlgorithms` for `{host}` in \
             ~/.ssh/config ({shown}), or enable one deployer offers in the server's \
             sshd_config `KexAlgorithms`"
        ),
        HostError::OutOfDescriptors { .. } => {
            "raise `ulimit -n`, or lower `parallelism` in deployer.ini".into()
        }
        HostError::Disconnected(_) => {
            format!("the session to `{host}` was lost: run `deployer check {stage}` again")
        }
        _ => format!("{shown}; run `deployer check {stage}` again"),
    }
}

/// The check's outcome for what the sudo probe found ([`sudo::read`]).
fn sudo_outcome(verdict: &sudo::Verdict, hint: &Hint) -> Outcome {
    match (
        verdict.problem(&hint.user),
        verdict.fix(&hint.user, &hint.host),
    ) {
        (Some(problem), Some(fix)) => Outcome::Failed { problem, fix },
        _ => Outcome::Passed(None),
    }
}

/// `: what it said`, made safe, or nothing.
fn said(text: &str) -> String {
    let text = crate::text::clipped_line(text.trim(), crate::text::REMOTE_TEXT_MAX);
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// The programs deployer runs on every host.
const TOOLS: [&str; 3] = ["dpkg-query", "apt-get", "apt-cache"];

/// `command -v` for each of [`TOOLS`]; prints the path of each one found.
fn tools_command() -> RemoteCommand {
    TOOLS
        .iter()
        .map(|t| RemoteCommand::new("command").args(["-v", t]))
        .reduce(RemoteCommand::then)
        .expect("tools")
        .named("command -v")
}

/// The tools of [`TOOLS`] that `command -v` did not print.
fn missing_tools(stdout: &str) -> Vec<&'static str> {
    TOOLS
        .iter()
        .copied()
        .filter(|t| {
            !stdout
                .lines()
                .map(str::trim)
                .any(|l| l == *t || l.strip_suffix(t).is_some_and(|p| p.ends_with('/')))
        })
        .collect()
}

fn tools_outcome(stdout: &str, hint: &Hint) -> Outcome {
    let missing = missing_tools(stdout);
    if missing.is_empty() {
        return Outcome::Passed(None);
    }
    Outcome::Failed {
        problem: format!(
            "{} not found in the login user's PATH",
            missing
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        fix: format!(
            "deployer needs a Debian-like host with dpkg and apt: install them on `{}` \
             (`apt-get install dpkg apt`), or check the PATH of `{}`'s login shell",
            hint.host, hint.user
        ),
    }
}

/// Run as root: is the directory `$1`, or the nearest parent that exists
/// when it does not, a directory root can write to? Prints one line: a
/// word and, but for `writable`, the directory it is about. `env test`
/// runs coreutils' `test`, which asks the kernel (a read-only mount is
/// not writable, even for root), where the shell's builtin may not.
/// Creates nothing.
const BADGES_PROBE: &str = r#"( hp_enter "$1"; [ -n "$hp_missing" ] || { shift; for f; do hp_file "$f"; done; } ) 2>&1 || exit 0
d=$1
if [ -e "$d" ] && [ ! -d "$d" ]; then echo "not-a-directory $d"; exit 0; fi
while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
if [ ! -d "$d" ]; then echo "not-a-directory $d"
elif env test -w "$d"; then
  if [ "$d" = "$1" ]; then echo writable; else echo "creatable $d"; fi
else echo "not-writable $d"; fi
"#;

fn badges_probe_command(dir: &Path, packages: &[crate::package::PackageName]) -> RemoteCommand {
    badges_probe_with(&crate::hostpath::script(BADGES_PROBE), dir, packages).sudo()
}

/// [`badges_probe_command`] with `script` (the probe after the
/// [`crate::hostpath`] functions), without sudo.
fn badges_probe_with(
    script: &str,
    dir: &Path,
    packages: &[crate::package::PackageName],
) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", script, "deployer-check"])
        .arg(dir.to_string_lossy())
        .args(
            packages
                .iter()
                .flat_map(|p| [format!("{p}.svg"), format!("{p}.png")]),
        )
        .named("badges_path check")
}

/// What [`BADGES_PROBE`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BadgesDir {
    /// The directory is there and writable.
    Writable,
    /// It is absent; its nearest existing parent (named) is writable, so
    /// the first badge write will create it.
    Creatable(String),
    /// A file that is not a directory is in the way (named).
    NotADirectory(String),
    /// The directory (named) is not writable, even by root.
    NotWritable(String),
    /// A component on the way, or a badge's file, is a link or a directory
    /// another user can write ([`crate::hostpath`]).
    Refused(crate::hostpath::Refusal),
}

fn parse_badges_probe(stdout: &str) -> Option<BadgesDir> {
    let line = stdout.lines().next()?;
    if let Some(refusal) = crate::hostpath::parse_refusal(line) {
        return Some(BadgesDir::Refused(refusal));
    }
    let (word, path) = line.split_once(' ').unwrap_or((line, ""));
    let path = path.to_string();
    match word {
        "writable" => Some(BadgesDir::Writable),
        "creatable" => Some(BadgesDir::Creatable(path)),
        "not-a-directory" => Some(BadgesDir::NotADirectory(path)),
        "not-writable" => Some(BadgesDir::NotWritable(path)),
        _ => None,
    }
}

fn badges_outcome(dir: &Path, out: &Output, hint: &Hint) -> Outcome {
    let host = &hint.host;
    let probed = match parse_badges_probe(&out.stdout) {
        // a file on the way to the directory: said as before
        Some(BadgesDir::Refused(r))
            if r.kind == crate::hostpath::Kind::Type && dir.starts_with(&r.path) =>
        {
            Some(BadgesDir::NotADirectory(r.path))
        }
        other => other,
    };
    let dir = dir.display();
    let shown = |p: &str| crate::text::clipped_line(p, crate::text::REMOTE_TEXT_MAX);
    match probed {
        _ if !out.success() => Outcome::Failed {
            problem: format!(
                "cannot test `{dir}` (exit status {}){}",
                out.status,
                said(&out.stderr)
            ),
            fix: format!("run `sudo -n test -w {dir}` on `{host}` to see why"),
        },
        Some(BadgesDir::Writable) => Outcome::Passed(None),
        Some(BadgesDir::Creatable(parent)) => Outcome::Passed(Some(format!(
            "will be created in `{}`",
            shown(&parent)
        ))),
        Some(BadgesDir::NotADirectory(p)) => Outcome::Failed {
            problem: format!("`{}` is in the way of `{dir}`: it is not a directory", shown(&p)),
            fix: format!(
                "move that file away on `{host}`, or set `badges_path` in deployer.ini to another directory"
            ),
        },
        Some(BadgesDir::NotWritable(p)) => Outcome::Failed {
            problem: format!(
                "`{}` is not writable, even by root (a read-only mount?)",
                shown(&p)
            ),
            fix: format!(
                "make `{dir}` writable on `{host}`, or set `badges_path` in deployer.ini to a writable directory"
            ),
        },
        Some(BadgesDir::Refused(r)) => Outcome::Failed {
            problem: format!("root would not write the badges there: {r}"),
            fix: format!(
                "on `{host}`, {}; or set `badges_path` in deployer.ini to a directory only root can write",
                r.fix()
            ),
        },
        None => Outcome::Failed {
            problem: format!(
                "unexpected answer to the `badges_path` test{}",
                said(&out.stdout)
            ),
            fix: format!("run `sudo -n test -w {dir}` on `{host}` to see why"),
        },
    }
}

/// The directories deployer writes as root on every host, checked as the
/// writes check them.
const ROOT_PATHS: [&str; 5] = [
    crate::detach::RUNS_DIR,
    crate::lock::LOCK_DIR,
    crate::freeze::DIR,
    crate::history::HOST_LOG_DIR,
    crate::debcache::DIR,
];

/// What the [`crate::hostpath::probe_command`] of [`ROOT_PATHS`] says:
/// passed when none is refused, else the refusals and their fixes.
fn root_paths_outcome(out: &Output, hint: &Hint) -> Outcome {
    let host = &hint.host;
    let probed = crate::hostpath::parse_probe(&out.stdout);
    let refused: Vec<&crate::hostpath::Refusal> = probed
        .iter()
        .filter_map(|p| match p {
            crate::hostpath::Probed::Refused(r) => Some(r),
            _ => None,
        })
        .collect();
    if let Some(first) = refused.first() {
        return Outcome::Failed {
            problem: refused
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            fix: format!("on `{host}`, {}", first.fix()),
        };
    }
    if !out.success() || probed.len() != ROOT_PATHS.len() {
        return Outcome::Failed {
            problem: format!(
                "unexpected answer to the test of {}{}",
                ROOT_PATHS.join(", "),
                said(&out.stdout)
            ),
            fix: format!(
                "check that `sh` and `stat` work for `{}` on `{host}`",
                hint.user
            ),
        };
    }
    Outcome::Passed(None)
}

/// Where a host says which deployment it belongs to (machine-info(5)).
const MACHINE_INFO: &str = "/etc/machine-info";

/// Prints `/etc/machine-info`; exits 3 when there is none. Needs no root.
fn machine_info_command() -> RemoteCommand {
    RemoteCommand::new("sh")
        .args([
            "-c",
            "test -e \"$1\" || exit 3; exec cat -- \"$1\"",
            "deployer-check",
            MACHINE_INFO,
        ])
        .named("cat /etc/machine-info")
}

/// The value of `DEPLOYMENT=` in the text of `/etc/machine-info`
/// (shell-like `KEY=VALUE` lines, the value perhaps quoted; the last one
/// wins, as when the file is sourced). `None` when absent or empty.
pub(crate) fn deployment(machine_info: &str) -> Option<String> {
    let mut found = None;
    for line in machine_info.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "DEPLOYMENT" {
            continue;
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        found = Some(unquoted.to_string());
    }
    found.filter(|v| !v.is_empty())
}

fn stage_outcome(out: &Output, hint: &Hint) -> Outcome {
    let Hint { host, stage, .. } = hint;
    if out.status == 3 {
        return Outcome::Passed(Some("not set".into()));
    }
    if !out.success() {
        return Outcome::Failed {
            problem: format!(
                "cannot read `{MACHINE_INFO}` (exit status {}){}",
                out.status,
                said(&out.stderr)
            ),
            fix: format!(
                "make `{MACHINE_INFO}` readable on `{host}` (mode 0644, as systemd writes it)"
            ),
        };
    }
    match deployment(&out.stdout) {
        None => Outcome::Passed(Some("not set".into())),
        Some(d) if &d == stage => Outcome::Passed(Some(format!("DEPLOYMENT={d}"))),
        Some(d) => {
            let d = crate::text::clipped_line(&d, crate::text::REMOTE_TEXT_MAX);
            Outcome::Failed {
                problem: format!(
                    "the host says it is in `{d}` (DEPLOYMENT= in {MACHINE_INFO}), deployer.ini puts it in `{stage}`"
                ),
                fix: format!(
                    "if `{host}` belongs to `{stage}`, run `sudo hostnamectl set-deployment {stage}` \
                     there (or edit DEPLOYMENT= in {MACHINE_INFO}); otherwise move it to the hosts \
                     of the right stage in deployer.ini"
                ),
            }
        }
    }
}

/// `reachable ok`, `sudo FAILED`, `login -`, `reachable local`...
fn outcome_word(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed(None) => "ok".into(),
        Outcome::Passed(Some(detail)) if detail == "not set" => "not set".into(),
        Outcome::Passed(Some(_)) => "ok".into(),
        Outcome::Failed { .. } => "FAILED".into(),
        Outcome::Skipped => "-".into(),
        Outcome::NotApplicable(why) => (*why).into(),
    }
}

/// Text: the configuration's verdict, then one line per host with every
/// check's result, each failure below it with its `note:`, and a summary.
pub(crate) fn render_text(
    config_path: &Path,
    checks: &[HostCheck],
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "configuration `{}`: ok", config_path.display())?;
    let label = |c: &HostCheck| format!("{} ({})", c.host, c.stage);
    let width = checks
        .iter()
        .map(|c| label(c).chars().count())
        .max()
        .unwrap_or(0);
    for c in checks {
        let words: Vec<String> = c
            .items
            .iter()
            .map(|(item, o)| format!("{} {}", item.name(), outcome_word(o)))
            .collect();
        writeln!(out, "{:width$}  {}", label(c), words.join("  "))?;
        for (item, o) in &c.items {
            if let Outcome::Failed { problem, fix } = o {
                writeln!(out, "  {}: {problem}", item.name())?;
                writeln!(out, "  note: {fix}")?;
            }
        }
    }
    let failed = checks.iter().filter(|c| c.failed()).count();
    if failed == 0 {
        writeln!(out, "all {} host(s) passed every check", checks.len())
    } else {
        writeln!(out, "{failed} of {} host(s) failed a check", checks.len())
    }
}

/// JSON: `{"config", "ok", "hosts": [{"stage", "host", "ok", "checks":
/// [{"check", "result", "detail"?, "problem"?, "fix"?}]}], "summary":
/// {"hosts", "failed"}}`; `result` is `ok`, `failed`, `skipped` or
/// `not-applicable`.
pub(crate) fn render_json(
    config_path: &Path,
    checks: &[HostCheck],
    out: &mut dyn Write,
) -> io::Result<()> {
    let hosts: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            let items: Vec<serde_json::Value> = c
                .items
                .iter()
                .map(|(item, o)| match o {
                    Outcome::Passed(detail) => serde_json::json!({
                        "check": item.name(), "result": "ok", "detail": detail,
                    }),
                    Outcome::Failed { problem, fix } => serde_json::json!({
                        "check": item.name(), "result": "failed", "problem": problem, "fix": fix,
                    }),
                    Outcome::Skipped => serde_json::json!({
                        "check": item.name(), "result": "skipped",
                    }),
                    Outcome::NotApplicable(why) => serde_json::json!({
                        "check": item.name(), "result": "not-applicable", "detail": why,
                    }),
                })
                .collect();
            serde_json::json!({
                "stage": c.stage,
                "host": c.host,
                "ok": !c.failed(),
                "checks": items,
            })
        })
        .collect();
    let failed = checks.iter().filter(|c| c.failed()).count();
    let doc = serde_json::json!({
        "config": config_path,
        "ok": failed == 0,
        "hosts": hosts,
        "summary": { "hosts": checks.len(), "failed": failed },
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(status: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status,
            stdout: stdout.into(),
            stderr: stderr.into(),
            stdout_dropped: 0,
            stderr_dropped: 0,
        }
    }

    fn hint() -> Hint {
        Hint {
            host: "prod-1".into(),
            stage: "prod".into(),
            user: "deployer".into(),
        }
    }

    #[test]
    fn deployment_is_read_as_a_shell_assignment() {
        let cases = [
            ("", None),
            ("PRETTY_HOSTNAME=x\n", None),
            ("DEPLOYMENT=prod\n", Some("prod")),
            ("DEPLOYMENT=\"prod\"\n", Some("prod")),
            ("DEPLOYMENT='staging'\n", Some("staging")),
            ("  DEPLOYMENT = prod  \n", Some("prod")),
            ("# DEPLOYMENT=test\nDEPLOYMENT=prod", Some("prod")),
            ("DEPLOYMENT=test\nDEPLOYMENT=prod\n", Some("prod")),
            ("DEPLOYMENT=\n", None),
            ("DEPLOYMENT=\"\"\n", None),
            ("XDEPLOYMENT=prod\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(deployment(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn stage_check_passes_when_unset_and_fails_on_another_stage() {
        let h = hint();
        assert_eq!(
            stage_outcome(&output(3, "", ""), &h),
            Outcome::Passed(Some("not set".into()))
        );
        assert_eq!(
            stage_outcome(&output(0, "DEPLOYMENT=prod\n", ""), &h),
            Outcome::Passed(Some("DEPLOYMENT=prod".into()))
        );
        let Outcome::Failed { problem, fix } =
            stage_outcome(&output(0, "DEPLOYMENT=\"te\x1b[2Jst\"\n", ""), &h)
        else {
            panic!("a host in another stage fails")
        };
        assert!(problem.contains("`te\\x1b[2Jst`"), "{problem}");
        assert!(fix.contains("hostnamectl set-deployment prod"), "{fix}");
        assert!(matches!(
            stage_outcome(&output(1, "", "cat: Permission denied"), &h),
            Outcome::Failed { .. }
        ));
    }

    #[test]
    fn missing_tools_are_named() {
        assert_eq!(
            missing_tools("/usr/bin/dpkg-query\n/usr/bin/apt-get\n/usr/bin/apt-cache\n"),
            Vec::<&str>::new()
        );
        assert_eq!(
            missing_tools("/usr/bin/dpkg-query\n/usr/local/bin/not-apt-get\n"),
            ["apt-get", "apt-cache"]
        );
        // a function or alias of that name counts
        assert_eq!(
            missing_tools("dpkg-query\napt-get\napt-cache\n"),
            Vec::<&str>::new()
        );
        let c = tools_command();
        assert_eq!(
            c.as_str(),
            "command -v dpkg-query; command -v apt-get; command -v apt-cache"
        );
    }

    #[test]
    fn sudo_faults_each_say_how_to_fix_them() {
        let h = hint();
        assert_eq!(
            sudo_outcome(&sudo::Verdict::Works, &h),
            Outcome::Passed(None)
        );
        let failed = |v: sudo::Verdict| match sudo_outcome(&v, &h) {
            Outcome::Failed { problem, fix } => (problem, fix),
            o => panic!("{v:?} passed: {o:?}"),
        };
        let (problem, fix) = failed(sudo::Verdict::Password);
        assert_eq!(
            problem,
            "sudo on the host asks for a password; deployer needs passwordless sudo for `deployer`"
        );
        assert!(fix.contains("NOPASSWD"), "{fix}");
        let (problem, fix) = failed(sudo::Verdict::NoTty);
        assert!(problem.contains("requiretty"), "{problem}");
        assert!(fix.contains("!requiretty"), "{fix}");
    }

    #[test]
    fn connection_errors_fail_the_right_check() {
        let h = hint();
        let refused = HostError::Connect {
            addr: "127.0.0.1:22".into(),
            message: "Connection refused".into(),
        };
        assert_eq!(connect_failure(&refused), (Item::Reachable, vec![]));
        let unknown = HostError::HostKeyUnknown {
            host: "prod-1".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:x".into(),
            known_hosts: "/k".into(),
        };
        assert_eq!(
            connect_failure(&unknown),
            (Item::HostKey, vec![Item::Reachable])
        );
        assert!(connect_fix(&unknown, &h).contains("--accept-new-host-keys"));
        let auth = HostError::Auth {
            user: "deployer".into(),
            tried: vec![],
        };
        assert_eq!(
            connect_failure(&auth),
            (Item::Login, vec![Item::Reachable, Item::HostKey])
        );
        assert!(connect_fix(&auth, &h).contains("authorized_keys"));
    }

    #[test]
    fn root_paths_pass_unless_one_is_refused() {
        let h = Hint {
            host: "prod-1".into(),
            stage: "prod".into(),
            user: "deployer".into(),
        };
        let out = |stdout: &str| output(0, stdout, "");
        let fine = "ok /var/lib/deployer/runs\nok /run/deployer\nmissing /var/lib/deployer/freeze /var/lib/deployer/freeze\nok /var/log/deployer\nmissing /var/cache/deployer /var/cache/deployer/debs\n";
        assert_eq!(root_paths_outcome(&out(fine), &h), Outcome::Passed(None));
        let planted = fine.replace(
            "ok /run/deployer",
            "deployer-hostpath link 1000 eve 777 /run/deployer",
        );
        match root_paths_outcome(&out(&planted), &h) {
            Outcome::Failed { problem, fix } => {
                assert!(
                    problem.starts_with(
                        "`/run/deployer` (owner eve, uid 1000, mode 777) is a symbolic link"
                    ),
                    "{problem}"
                );
                assert!(
                    fix.starts_with("on `prod-1`, replace the link `/run/deployer`"),
                    "{fix}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            root_paths_outcome(&out("ok /run/deployer\n"), &h),
            Outcome::Failed { .. }
        ));
    }

    /// The probe, run here (as this user, without sudo) on real
    /// directories: it tells the cases apart and creates nothing.
    #[test]
    fn badges_probe_tells_the_cases_apart_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::write(base.join("file"), "").unwrap();
        let run = |p: &Path| {
            let top = base.canonicalize().unwrap().display().to_string();
            let me = rustix::process::geteuid().as_raw();
            let script = crate::hostpath::script_in(&top, me, BADGES_PROBE);
            let c = badges_probe_with(
                &script,
                &Path::new(&top).join(p.strip_prefix(base).unwrap()),
                &[],
            );
            let (status, stdout, stderr) = crate::command::run_here(&c, b"");
            assert_eq!(status, 0, "{stderr}");
            parse_badges_probe(&stdout)
        };
        assert_eq!(run(base), Some(BadgesDir::Writable));
        assert_eq!(
            run(&base.join("a/b/c")),
            Some(BadgesDir::Creatable(base.display().to_string()))
        );
        assert!(!base.join("a").exists(), "nothing created");
        let refused = |p: &Path| match run(p) {
            Some(BadgesDir::Refused(r)) => (r.kind, r.path),
            other => panic!("{other:?}"),
        };
        use crate::hostpath::Kind;
        let file = base.join("file").display().to_string();
        assert_eq!(refused(&base.join("file")), (Kind::Type, file.clone()));
        assert_eq!(refused(&base.join("file/x")), (Kind::Type, file));
        // a planted link, at the directory or at a badge's name
        std::fs::create_dir(base.join("target")).unwrap();
        std::os::unix::fs::symlink(base.join("target"), base.join("linked")).unwrap();
        let linked = base.join("linked").display().to_string();
        assert_eq!(refused(&base.join("linked")), (Kind::Link, linked.clone()));
        assert_eq!(refused(&base.join("linked/badges")), (Kind::Link, linked));
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", base.join("real/fastpath.svg")).unwrap();
        let top = base.canonicalize().unwrap().display().to_string();
        let me = rustix::process::geteuid().as_raw();
        let c = badges_probe_with(
            &crate::hostpath::script_in(&top, me, BADGES_PROBE),
            &Path::new(&top).join("real"),
            &["fastpath".parse().unwrap()],
        );
        let (_, stdout, _) = crate::command::run_here(&c, b"");
        match parse_badges_probe(&stdout) {
            Some(BadgesDir::Refused(r)) => {
                assert_eq!(
                    (r.kind, r.path),
                    (Kind::Link, format!("{top}/real/fastpath.svg"))
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_dir(base.join("target")).unwrap().count(), 0);
        if !rustix::process::geteuid().is_root() {
            let locked = base.join("locked");
            std::fs::create_dir(&locked).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
            assert_eq!(
                run(&locked.join("badges")),
                Some(BadgesDir::NotWritable(locked.display().to_string()))
            );
        }
        let spaced = base.join("with space");
        std::fs::create_dir(&spaced).unwrap();
        assert_eq!(run(&spaced), Some(BadgesDir::Writable));
    }

    fn sample() -> Vec<HostCheck> {
        let ok = |i| (i, Outcome::Passed(None));
        vec![
            HostCheck {
                stage: "test".into(),
                host: "test-1".into(),
                items: vec![
                    ok(Item::Reachable),
                    ok(Item::HostKey),
                    ok(Item::Login),
                    ok(Item::Sudo),
                    ok(Item::Tools),
                    (Item::BadgesPath, Outcome::NotApplicable("not set")),
                    (Item::Stage, Outcome::Passed(Some("not set".into()))),
                ],
            },
            HostCheck {
                stage: "prod".into(),
                host: "prod-10".into(),
                items: vec![
                    ok(Item::Reachable),
                    ok(Item::HostKey),
                    ok(Item::Login),
                    (
                        Item::Sudo,
                        Outcome::Failed {
                            problem: "sudo asks".into(),
                            fix: "NOPASSWD".into(),
                        },
                    ),
                    ok(Item::Tools),
                    (Item::BadgesPath, Outcome::Skipped),
                    (Item::Stage, Outcome::Passed(Some("DEPLOYMENT=prod".into()))),
                ],
            },
        ]
    }

    #[test]
    fn text_has_one_line_per_host_and_a_note_per_failure() {
        let mut out = Vec::new();
        render_text(Path::new("/d/deployer.ini"), &sample(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "configuration `/d/deployer.ini`: ok\n\
             test-1 (test)   reachable ok  host-key ok  login ok  sudo ok  tools ok  badges_path not set  stage not set\n\
             prod-10 (prod)  reachable ok  host-key ok  login ok  sudo FAILED  tools ok  badges_path -  stage ok\n\
             \x20 sudo: sudo asks\n\
             \x20 note: NOPASSWD\n\
             1 of 2 host(s) failed a check\n"
        );
    }

    #[test]
    fn json_names_every_check_and_result() {
        let mut out = Vec::new();
        render_json(Path::new("/d/deployer.ini"), &sample(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["summary"], serde_json::json!({"hosts": 2, "failed": 1}));
        assert_eq!(v["hosts"][0]["ok"], true);
        let sudo = &v["hosts"][1]["checks"][3];
        assert_eq!(
            *sudo,
            serde_json::json!({"check": "sudo", "result": "failed", "problem": "sudo asks", "fix": "NOPASSWD"})
        );
        assert_eq!(v["hosts"][1]["checks"][5]["result"], "skipped");
        assert_eq!(v["hosts"][0]["checks"][5]["result"], "not-applicable");
        assert_eq!(v["hosts"][1]["checks"][6]["detail"], "DEPLOYMENT=prod");
    }
}
