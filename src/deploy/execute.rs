//! The execute phase: the rollout batch by batch (the first host alone,
//! then `batch_size` at a time), each host's install, its verification
//! with dpkg, the service's restart and its health check; then the
//! rollback policy; and the aftermath: the syslog line and the history
//! record on each host, the start and end announced to the team
//! (`notify`), and the badges of the hosts refreshed.
//!
//! The rollout stops at the first failing batch, and before a new batch
//! when the operator asked to stop.

use std::time::{Duration, Instant};

use crate::apt;
use crate::badges::publish;
use crate::command::RemoteCommand;
use crate::detach;
use crate::error::Fatal;
use crate::error::HostError;
use crate::fleet::{Fleet, Member};
use crate::history::{self, HostRecord, HostResult, Outcome, Record, RestartRecord};
use crate::lines::{self, Lines};
use crate::lock;
use crate::package::PackageName;
use crate::plan::{HostCommands, Plan, Step};
use crate::service::{self, Service};
use crate::status::{self, PackageState};
use crate::transport::{self, Exec, Stream};

use super::preflight::{Lock, Prepared};
use super::{report, Attempt, Context, Journal};

/// What happened to one host of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Now runs the target version (and passed its health check).
    Changed,
    /// Failed; `now` is its state afterwards, `None` when unknown.
    Failed {
        /// Why, in one line.
        why: String,
        /// What the host printed (apt, dpkg, the health check).
        output: String,
        /// Its state afterwards, when it could be read.
        now: Option<PackageState>,
    },
    /// Not tried, because the rollout stopped.
    Untouched,
}

impl Done {
    /// Whether the host may no longer be in its state from before.
    pub fn touched(&self, from: &PackageState) -> bool {
        match self {
            Done::Changed => true,
            Done::Failed { now, .. } => !now.as_ref().is_some_and(|n| n.same_as(from)),
            Done::Untouched => false,
        }
    }
}

/// What the rollback policy did to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// Nothing to do (no failure, policy off, or the host was not touched).
    NotNeeded,
    /// The host runs its previous version again.
    Restored,
    /// The rollback failed; why.
    Failed(String),
}

/// What the service step left for one host's record: the restart, and
/// the service's last log lines when the host failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    /// How the restart went, when the package restarts its service.
    pub restart: Option<RestartRecord>,
    /// The last log lines ([`service::TAIL_LINES`]) of a failed host.
    pub log_tail: Vec<String>,
}

/// Read the package's state on one host.
pub fn read_state(
    member: &mut Member,
    package: &PackageName,
    timeout: Duration,
) -> Result<PackageState, HostError> {
    let out = member.run(
        &status::query_command(std::slice::from_ref(package)),
        timeout,
    )?;
    Ok(status::parse(std::slice::from_ref(package), &out)?.packages[package].clone())
}

/// Prints a host's output line by line with its name in front; each line
/// bounded ([`lines::LINE_KEPT`]), however long the host makes it.
struct Prefixer<'a> {
    cx: &'a Context<'a>,
    host: String,
    lines: Lines,
}

impl Prefixer<'_> {
    fn feed(&mut self, _stream: Stream, bytes: &[u8]) {
        let (cx, host) = (self.cx, &self.host);
        self.lines.feed(bytes, |text| {
            let shown = crate::text::settle_progress(&text);
            cx.console
                .say(&format!("{host} | {}", crate::text::for_terminal(&shown)));
        });
    }
}

/// Run `command`; while its output says that a lock it needs is busy
/// (`busy`), run it again, for up to `wait` in all. apt's own wait
/// (`DPkg::Lock::Timeout`) covers neither the package lists' lock nor
/// `apt-mark`. The first wait is announced on the console.
pub fn run_waiting_for_lock(
    cx: &Context<'_>,
    member: &mut Member,
    command: &RemoteCommand,
    timeout: Duration,
    busy: fn(&str) -> bool,
) -> Result<transport::Output, HostError> {
    let wait = cx.config.ssh.lock_timeout;
    member.run_waiting_for_lock(command, timeout, wait, busy, |host| {
        cx.console.say(&format!(
            "  {host}: `{}` waits for a lock held by another process (apt-daily, unattended-upgrades?), up to {}s",
            command.label(),
            wait.as_secs()
        ));
    })
}

/// Release or set the hold (`apt-mark`), waiting for dpkg's lock, only
/// while the host's deploy lock is the attempt's (`lock::guarded`); the
/// failure as one line.
fn mark(
    cx: &Context<'_>,
    member: &mut Member,
    attempt: &Attempt,
    command: &RemoteCommand,
) -> Result<(), String> {
    let timeout = cx.config.ssh.command_timeout;
    let guarded = lock::guarded(attempt.id(), command);
    match run_waiting_for_lock(cx, member, &guarded, timeout, apt::mark_lock_busy) {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => Err(lock::lost(&out).map_or_else(
            || {
                format!(
                    "`{}` failed (exit status {}): {}",
                    command.label(),
                    out.status,
                    super::remote_text(out.stderr.trim())
                )
            },
            |holder| lock::lost_message(&holder),
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The deploy lock of `member` must still be this attempt's before the
/// host is changed: a deployer paused or cut off past `lock_expiry`, or
/// whose lock was broken with `deployer unlock`, must not go on once
/// someone else may have taken the host. A host reconnected during this
/// run lost its lock with its old session: it is taken again, unless
/// someone else holds it meanwhile. The failure as one line.
fn lock_still_ours(
    cx: &Context<'_>,
    member: &mut Member,
    attempt: &Attempt,
    lock: &Lock,
) -> Result<(), String> {
    let timeout = cx.config.ssh.command_timeout;
    let owner = match member.run(&lock::check_command(attempt.id()), timeout) {
        Ok(out) if out.success() => lock::parse_check(&out.stdout),
        Ok(out) => {
            return Err(format!(
                "cannot check the deploy lock (exit status {}): {}",
                out.status,
                super::remote_text(out.stderr.trim())
            ))
        }
        Err(e) => return Err(format!("cannot check the deploy lock: {e}")),
    };
    match owner {
        lock::Owner::Ours => Ok(()),
        lock::Owner::Free if member.was_reconnected() => {
            let answer = member.hold_with(&lock.command, timeout, lock.heartbeat);
            match super::preflight::lock_problem(&answer) {
                None => Ok(()),
                Some(why) => Err(format!(
                    "the deploy lock went with the lost connection and cannot be taken again: {why}"
                )),
            }
        }
        lock::Owner::Free => Err(
            "lock lost: this deploy no longer holds the host's deploy lock: it expired (no heartbeat for `lock_expiry`: was deployer paused or cut off?) or was broken with `deployer unlock`".to_string(),
        ),
        lock::Owner::Other(who) => Err(format!(
            "lock lost: the host's deploy lock is now held by {who}: this deploy's lock expired or was broken"
        )),
    }
}

/// Install on one host (releasing and setting its hold when the plan
/// says so), verify with dpkg, run the health check. Nothing is done
/// unless the host's deploy lock is still this attempt's.
#[allow(clippy::too_many_arguments)]
fn install_one(
    cx: &Context<'_>,
    member: &mut Member,
    plan: &Plan,
    commands: &HostCommands,
    attempt: &Attempt,
    lock: &Lock,
    canary: bool,
    watched: &mut Watched,
) -> Done {
    if let Err(why) = lock_still_ours(cx, member, attempt, lock) {
        return Done::Failed {
            why: format!("not changed: {why}"),
            output: String::new(),
            now: read_state(member, &plan.package, cx.config.ssh.command_timeout).ok(),
        };
    }
    if let Some(unhold) = &commands.unhold {
        if let Err(why) = mark(cx, member, attempt, unhold) {
            return Done::Failed {
                why: format!("could not release the hold: {why}"),
                output: String::new(),
                now: read_state(member, &plan.package, cx.config.ssh.command_timeout).ok(),
            };
        }
    }
    let done = install_and_check(cx, member, plan, &commands.main, attempt, canary, watched);
    if let Some(hold) = &commands.hold {
        if let Err(why) = mark(cx, member, attempt, hold) {
            if let Done::Failed {
                why: failed,
                output,
                now,
            } = done
            {
                return Done::Failed {
                    why: format!("{failed}; and it could not set the hold again: {why}"),
                    output,
                    now,
                };
            }
            return Done::Failed {
                why: format!("installed, but could not set the hold again: {why}"),
                output: String::new(),
                now: read_state(member, &plan.package, cx.config.ssh.command_timeout).ok(),
            };
        }
    }
    done
}

/// How long to wait between two looks at a detached run.
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// How a detached run ended, as far as deployer could see.
enum Ran {
    /// It ended: its exit status, and its log (a bounded tail) as stdout.
    Finished(transport::Output),
    /// It could not be started; nothing ran.
    NotStarted(String),
    /// deployer lost sight of it: it may still be running on the host.
    Lost(String),
    /// It is over without an exit status (it died with its host, or was
    /// killed): why, and its log (a bounded tail). Nothing is waited for.
    Gone(String, String),
}

/// Run `command` on the host detached from the session (see `detach`),
/// and follow it until it ends: a slow run is reported as still running
/// every `deploy_timeout`, never killed; a lost session is reopened once;
/// a run that can no longer end (its host rebooted, its process is gone)
/// is over. It starts only if the host's deploy lock is the attempt's at
/// that moment, proven on the host in the step that starts it.
fn run_detached(
    cx: &Context<'_>,
    member: &mut Member,
    attempt: &Attempt,
    dir: &str,
    command: &RemoteCommand,
) -> Ran {
    let ssh = &cx.config.ssh;
    let started = member.run(
        &detach::start_command(attempt.id(), dir, command),
        ssh.command_timeout,
    );
    if let Some(holder) = started.as_ref().ok().and_then(lock::lost) {
        return Ran::NotStarted(lock::lost_message(&holder));
    }
    match started {
        Ok(out) if out.success() && out.stdout.contains("STARTED") => {}
        Ok(out) if transport::sudo_wants_password(&out.stderr) => {
            return Ran::NotStarted(
                HostError::SudoPassword {
                    user: member.login_user(),
                }
                .to_string(),
            )
        }
        Ok(out) => {
            if let Some(why) = crate::hostpath::refused(&out.stderr) {
                return Ran::NotStarted(format!("refusing to start the run as root: {why}"));
            }
            return Ran::NotStarted(format!(
                "could not start the run (exit status {}): {}",
                out.status,
                crate::text::clip(
                    &crate::text::one_line(out.stderr.trim()),
                    crate::error::REMOTE_TEXT_MAX
                )
            ));
        }
        Err(e) => {
            return Ran::Lost(format!(
                "{e} while starting the run; it may have started: see {dir} on the host"
            ))
        }
    }
    let host = member.host().to_string();
    let mut prefixer = Prefixer {
        cx,
        host: host.clone(),
        lines: Lines::new(lines::LINE_KEPT),
    };
    let began = Instant::now();
    let mut notice = ssh.deploy_timeout;
    let mut offset = 0u64;
    let mut log = String::new();
    let mut dropped = 0u64;
    let mut slow_polls = false;
    loop {
        match member.run(&detach::poll_command(dir, offset), ssh.command_timeout) {
            Ok(out) if out.success() => match detach::parse_poll(&out.stdout) {
                Ok(detach::Poll::Seen {
                    status,
                    gone,
                    start,
                    end,
                    log: new,
                }) => {
                    // bytes the host skipped (a flood between two polls)
                    dropped += start.saturating_sub(offset);
                    offset = offset.max(end);
                    if cx.opts.verbose {
                        prefixer.feed(Stream::Stdout, new.as_bytes());
                    }
                    log.push_str(&new);
                    if log.len() > transport::OUTPUT_LIMIT {
                        let cut = log.len() - transport::OUTPUT_LIMIT;
                        let cut = (cut..log.len())
                            .find(|&i| log.is_char_boundary(i))
                            .unwrap_or(cut);
                        log.drain(..cut);
                        dropped += cut as u64;
                    }
                    if let Some(status) = status {
                        return Ran::Finished(transport::Output {
                            status,
                            stdout: log,
                            stdout_dropped: dropped,
                            ..transport::Output::default()
                        });
                    }
                    if let Some(why) = gone {
                        return Ran::Gone(
                            format!("the run in {dir} is over without an exit status: {why}"),
                            log,
                        );
                    }
                }
                Ok(detach::Poll::Missing) => {
                    return Ran::Lost(format!("the run's directory {dir} is gone from the host"))
                }
                Err(e) => return Ran::Lost(format!("cannot follow the run in {dir}: {e}")),
            },
            Ok(out) => {
                return Ran::Lost(format!(
                    "cannot follow the run in {dir} (exit status {}): {}",
                    out.status,
                    super::remote_text(out.stderr.trim())
                ))
            }
            // a slow host, not a lost one: the run goes on, and so does
            // the following of it
            Err(e @ HostError::Timeout { .. }) if member.error().is_none() => {
                if !slow_polls {
                    slow_polls = true;
                    cx.console.say(&format!(
                        "  {host}: a look at the run timed out ({e}); still following it"
                    ));
                }
            }
            Err(e) => {
                if member.error().is_some() && member.reconnect() {
                    cx.console.say(&format!(
                        "  {host}: connection lost ({e}); reconnected, still following the run"
                    ));
                    continue;
                }
                return Ran::Lost(format!(
                    "{e}; the run goes on on the host: see {dir}/status and {dir}/log there"
                ));
            }
        }
        if began.elapsed() >= notice {
            cx.console.say(&format!(
                "  {host}: still running on {host} after {}s; apt/dpkg is not interrupted, waiting (log: {dir}/log)",
                began.elapsed().as_secs()
            ));
            notice += ssh.deploy_timeout;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The install itself (detached, in `dir`), its verification with dpkg,
/// the service's restart, and the health check (on the `canary`, with the
/// service's logs since the install, and its units' state after).
fn install_and_check(
    cx: &Context<'_>,
    member: &mut Member,
    plan: &Plan,
    command: &RemoteCommand,
    attempt: &Attempt,
    canary: bool,
    watched: &mut Watched,
) -> Done {
    let config = cx.config;
    let dir = &detach::run_dir(attempt.id(), "install");
    let host = member.host().to_string();
    let started = Instant::now();
    let service = config.services.get(&plan.package).filter(|s| s.is_set());
    let since = service.map(|_| host_clock(member, config.ssh.command_timeout));
    let out = match run_detached(cx, member, attempt, dir, command) {
        Ran::Finished(out) => out,
        Ran::Gone(why, log) => {
            return Done::Failed {
                why: format!(
                    "unknown state: {why}; {}",
                    dpkg_audit(member, config.ssh.command_timeout)
                ),
                output: log,
                now: None,
            }
        }
        Ran::NotStarted(why) => {
            return Done::Failed {
                why,
                output: String::new(),
                now: read_state(member, &plan.package, config.ssh.command_timeout).ok(),
            }
        }
        Ran::Lost(why) => {
            return Done::Failed {
                why: format!("unknown state: check with `deployer status` ({why})"),
                output: String::new(),
                now: None,
            }
        }
    };
    let combined = out.combined();
    let now = read_state(member, &plan.package, config.ssh.command_timeout).ok();
    if !out.success() {
        let why = if transport::sudo_wants_password(&out.stderr) {
            HostError::SudoPassword {
                user: member.login_user(),
            }
            .to_string()
        } else {
            apt::failure_hint(&combined)
                .unwrap_or_else(|| format!("apt-get exited with status {}", out.status))
        };
        return Done::Failed {
            why,
            output: combined,
            now,
        };
    }
    match &now {
        Some(PackageState::Installed(v)) if *v == plan.version => {}
        Some(other) => {
            return Done::Failed {
                why: format!("apt-get succeeded but dpkg now shows {other}"),
                output: combined,
                now,
            }
        }
        None => {
            return Done::Failed {
                why: "unknown state: check with `deployer status` (could not read dpkg's state after the install)".into(),
                output: combined,
                now: None,
            }
        }
    }
    let watch = service.map(|s| Watch {
        service: s,
        since: since.unwrap_or_default(),
        no_systemd: if s.needs_systemd() {
            probe_systemd(member, config.ssh.command_timeout)
        } else {
            None
        },
    });
    if let Some(w) = &watch {
        if w.service.restarts() {
            let (record, failure) = restart(cx, member, attempt, w);
            watched.restart = Some(record);
            if let Some((why, output)) = failure {
                watched.log_tail = w.tail(member, config.ssh.command_timeout);
                return Done::Failed { why, output, now };
            }
        } else if let (true, Some(why)) = (canary, &w.no_systemd) {
            cx.console
                .say(&format!("  note: {why}; its logs are not shown"));
        }
    }
    let shows_logs = canary && watch.as_ref().is_some_and(Watch::has_logs);
    if let Some(check) = config.health_checks.get(&plan.package) {
        let follow = shows_logs && cx.opts.follow_logs;
        let answer = match (&watch, follow) {
            (Some(w), true) => {
                let logs = w
                    .service
                    .logs_command(w.since, service::CANARY_LINES, true)
                    .expect("has logs");
                cx.console.say(&format!(
                    "  {host}: following the service's logs during the health check"
                ));
                let mut shown = LogLines::new(cx, &host);
                let mut sink = |stream: Stream, bytes: &[u8]| {
                    if stream == Stream::Stdout {
                        shown.feed(bytes);
                    }
                };
                let answer = member.exec(Exec {
                    command: &service::beside(check, &logs),
                    timeout: config.ssh.command_timeout,
                    stdin: None,
                    on_output: Some(&mut sink),
                });
                shown.finish();
                // the check's own output is on stderr
                answer.map(|o| transport::Output {
                    stdout: String::new(),
                    ..o
                })
            }
            _ => member.run(
                &RemoteCommand::from_config(check, "health check"),
                config.ssh.command_timeout,
            ),
        };
        if shows_logs && !follow {
            show_logs(cx, member, watch.as_ref().expect("has logs"), &host);
        }
        let failure = match answer {
            Ok(o) if o.success() => None,
            Ok(o) => Some((
                format!("{} failed (exit status {})", check_name(plan), o.status),
                o.combined(),
            )),
            Err(e) => Some((
                format!("{} could not run: {e}", check_name(plan)),
                String::new(),
            )),
        };
        if canary {
            if let Some(w) = &watch {
                show_states(cx, member, w, &host);
            }
        }
        if let Some((why, output)) = failure {
            if let Some(w) = &watch {
                watched.log_tail = w.tail(member, config.ssh.command_timeout);
            }
            return Done::Failed { why, output, now };
        }
    } else if shows_logs {
        let w = watch.as_ref().expect("has logs");
        show_logs(cx, member, w, &host);
        show_states(cx, member, w, &host);
    }
    cx.console.say(&format!(
        "  {host}: now runs {} ({:.1}s)",
        plan.version,
        started.elapsed().as_secs_f32()
    ));
    Done::Changed
}

/// The health check of the plan's package, named for messages and records:
/// its text comes from the configuration and may carry a token, so it is
/// never shown.
fn check_name(plan: &Plan) -> String {
    format!("the health check of `{}`", plan.package)
}

/// The host's clock, in seconds since the epoch; this machine's when the
/// host cannot tell (the logs since then are then roughly those since the
/// install).
fn host_clock(member: &mut Member, timeout: Duration) -> u64 {
    let local = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    match member.run(&service::clock_command(), timeout) {
        Ok(out) if out.success() => out.stdout.trim().parse().unwrap_or_else(|_| local()),
        _ => local(),
    }
}

/// What `dpkg --audit` finds on the host, in one line for a host whose
/// install is over without a status: the packages dpkg left unfinished,
/// or that it found none, or why it could not be asked.
fn dpkg_audit(member: &mut Member, timeout: Duration) -> String {
    match member.run(&detach::audit_command(), timeout) {
        Ok(out) => detach::describe_audit(&out),
        Err(e) => format!("dpkg's state could not be read: {e}"),
    }
}

/// Why the host cannot serve the units (no systemd), if it cannot.
fn probe_systemd(member: &mut Member, timeout: Duration) -> Option<String> {
    let host = member.host().to_string();
    match member.run(&service::systemd_probe(), timeout) {
        Ok(out) => service::without_systemd(&host, &out.stdout),
        Err(e) => Some(format!(
            "host `{host}`: cannot tell whether it runs systemd: {e}"
        )),
    }
}

/// The service of one host during its deploy.
struct Watch<'s> {
    service: &'s Service,
    /// The host's clock before the install.
    since: u64,
    /// Why the host cannot serve the units, when the commands need
    /// systemd and it has none.
    no_systemd: Option<String>,
}

impl Watch<'_> {
    /// Whether its logs can be read here.
    fn has_logs(&self) -> bool {
        self.service.logs_command.is_some()
            || (!self.service.units.is_empty() && self.no_systemd.is_none())
    }

    /// The log lines since the install, at most `lines`; `Err` says why
    /// there are none.
    fn logs(&self, member: &mut Member, lines: usize, timeout: Duration) -> Result<String, String> {
        if !self.has_logs() {
            return Err(self
                .no_systemd
                .clone()
                .unwrap_or_else(|| "no `units` nor `logs_command`".into()));
        }
        let cmd = self
            .service
            .logs_command(self.since, lines, false)
            .expect("has logs");
        match member.run(&cmd, timeout) {
            Ok(out) if out.success() => Ok(out.stdout),
            Ok(out) => Err(format!(
                "`{}` failed (exit status {}): {}",
                cmd.label(),
                out.status,
                super::remote_text(out.stderr.trim())
            )),
            Err(e) => Err(format!("`{}` could not run: {e}", cmd.label())),
        }
    }

    /// The last [`service::TAIL_LINES`] log lines, for a failed host's
    /// record (or one line saying why there are none).
    fn tail(&self, member: &mut Member, timeout: Duration) -> Vec<String> {
        match self.logs(member, service::TAIL_LINES, timeout) {
            Ok(text) => service::last_lines(&text, service::TAIL_LINES),
            Err(why) => vec![format!("(no log lines: {})", crate::text::one_line(&why))],
        }
    }
}

/// Restart the service on one host and check that its units run: the
/// record, and the failure (why, output) if it failed.
fn restart(
    cx: &Context<'_>,
    member: &mut Member,
    attempt: &Attempt,
    w: &Watch<'_>,
) -> (RestartRecord, Option<(String, String)>) {
    let timeout = cx.config.ssh.command_timeout;
    let host = member.host().to_string();
    let s = w.service;
    let what = if s.restart_command.is_some() {
        "restart_command".to_string()
    } else {
        s.units
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let failed = |why: String, output: String| {
        (
            RestartRecord {
                what: what.clone(),
                ok: false,
                detail: Some(crate::text::clip(&crate::text::one_line(&why), 500)),
            },
            Some((why, output)),
        )
    };
    if s.restart_command.is_none() {
        if let Some(why) = &w.no_systemd {
            return failed(format!("cannot restart {what}: {why}"), String::new());
        }
    }
    let cmd = lock::guarded(attempt.id(), &s.restart_command());
    match member.run(&cmd, timeout) {
        Ok(out) if out.success() => {}
        Ok(out) => {
            let why = if let Some(holder) = lock::lost(&out) {
                format!("{what} not restarted: {}", lock::lost_message(&holder))
            } else if transport::sudo_wants_password(&out.stderr) {
                HostError::SudoPassword {
                    user: member.login_user(),
                }
                .to_string()
            } else {
                format!("restart of {what} failed (exit status {})", out.status)
            };
            return failed(why, out.combined());
        }
        Err(e) => {
            return failed(
                format!("restart of {what} could not run: {e}"),
                String::new(),
            )
        }
    }
    let mut detail = None;
    if s.restart_command.is_none() {
        let states = unit_states(member, w, timeout);
        match states {
            Ok(states) => {
                if let Some(down) = states.iter().find(|u| !u.is_up()) {
                    return failed(format!("restarted, but {down}"), String::new());
                }
                detail = Some(
                    states
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            Err(why) => return failed(format!("restarted, but {why}"), String::new()),
        }
    }
    cx.console.say(&format!("  {host}: restarted {what}"));
    (
        RestartRecord {
            what,
            ok: true,
            detail,
        },
        None,
    )
}

/// The units' states; `Err` says why they cannot be read.
fn unit_states(
    member: &mut Member,
    w: &Watch<'_>,
    timeout: Duration,
) -> Result<Vec<service::UnitState>, String> {
    if let Some(why) = &w.no_systemd {
        return Err(why.clone());
    }
    let Some(cmd) = w.service.state_command() else {
        return Ok(Vec::new());
    };
    match member.run(&cmd, timeout) {
        Ok(out) if out.success() => Ok(service::parse_states(&out.stdout)),
        Ok(out) => Err(format!(
            "the units' state cannot be read (exit status {}): {}",
            out.status,
            super::remote_text(out.stderr.trim())
        )),
        Err(e) => Err(format!("the units' state cannot be read: {e}")),
    }
}

/// Show the canary's log lines since the install, with its name in front.
fn show_logs(cx: &Context<'_>, member: &mut Member, w: &Watch<'_>, host: &str) {
    match w.logs(member, service::CANARY_LINES, cx.config.ssh.command_timeout) {
        Ok(text) => {
            let lines = service::last_lines(&text, service::CANARY_LINES);
            cx.console.say(&format!(
                "  {host}: the service's log since the install ({} line{}):",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" }
            ));
            for l in lines {
                cx.console.say(&format!("{host} log | {l}"));
            }
        }
        Err(why) => cx
            .console
            .say(&format!("  note: {host}: no service log: {why}")),
    }
}

/// Show the units' state on the canary after its health check.
fn show_states(cx: &Context<'_>, member: &mut Member, w: &Watch<'_>, host: &str) {
    if w.service.units.is_empty() || w.no_systemd.is_some() {
        return;
    }
    match unit_states(member, w, cx.config.ssh.command_timeout) {
        Ok(states) => {
            for st in states {
                cx.console.say(&format!("  {host}: {st}"));
            }
        }
        Err(why) => cx.console.say(&format!("  note: {host}: {why}")),
    }
}

/// Streams log lines to the console with the host's name in front, each
/// one safe line, at most [`LogLines::MAX`] of them.
struct LogLines<'a> {
    cx: &'a Context<'a>,
    host: &'a str,
    lines: Lines,
    shown: usize,
    dropped: usize,
}

impl<'a> LogLines<'a> {
    const MAX: usize = 500;

    fn new(cx: &'a Context<'a>, host: &'a str) -> Self {
        LogLines {
            cx,
            host,
            lines: Lines::new(service::LINE_MAX),
            shown: 0,
            dropped: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut complete = Vec::new();
        self.lines.feed(bytes, |l| complete.push(l));
        for l in complete {
            self.line(&l);
        }
    }

    fn line(&mut self, text: &str) {
        for l in service::last_lines(text, 1) {
            if self.shown < Self::MAX {
                self.shown += 1;
                self.cx.console.say(&format!("{} log | {l}", self.host));
            } else {
                self.dropped += 1;
            }
        }
    }

    fn finish(mut self) {
        let lines = std::mem::replace(&mut self.lines, Lines::new(0));
        if let Some(rest) = lines.finish() {
            self.line(&rest);
        }
        if self.dropped > 0 {
            self.cx.console.say(&format!(
                "  {}: {} more log lines not shown",
                self.host, self.dropped
            ));
        }
    }
}

/// Why a rollout stopped before its last batch without a host failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A signal (SIGINT, SIGTERM, SIGHUP).
    Signal,
    /// The stage was frozen during the rollout; the lines say by whom.
    Frozen(Vec<String>),
    /// Whether the stage was frozen could not be checked on some hosts;
    /// the lines say why.
    FreezeUnknown(Vec<String>),
}

/// What a rollout did.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// One entry per step of the plan.
    pub done: Vec<Done>,
    /// Why it stopped early, if it did.
    pub stopped: Option<Stop>,
    /// One entry per step of the plan: its service's restart and logs.
    pub watched: Vec<Watched>,
}

/// Before a batch: the stage must still be unfrozen (unless overridden),
/// and every host must say so.
fn still_unfrozen(cx: &Context<'_>, fleet: &mut Fleet, stage: &str) -> Result<(), Stop> {
    if cx.opts.override_freeze {
        return Ok(());
    }
    let reports = fleet.stage_status(stage, &cx.config.packages, cx.config.ssh.command_timeout);
    let frozen = super::preflight::freezes(&reports, stage);
    if !frozen.is_empty() {
        return Err(Stop::Frozen(frozen));
    }
    let unknown: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.result
                .as_ref()
                .err()
                .map(|e| format!("{}: cannot check for a freeze: {e}", r.host))
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Stop::FreezeUnknown(unknown))
    }
}

/// Change the hosts batch by batch; stop at the first failing batch, and
/// before a new batch once the operator asked to stop or the stage was
/// frozen meanwhile.
pub fn rollout(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    prepared: &Prepared,
    attempt: &Attempt,
    journal: &Journal,
) -> Rollout {
    let plan = &prepared.plan;
    let mut done: Vec<Done> = vec![Done::Untouched; plan.steps.len()];
    let mut watched: Vec<Watched> = vec![Watched::default(); plan.steps.len()];
    let mut stopped = None;
    for (b, batch) in plan.batches.iter().enumerate() {
        if cx.interrupt.requested() {
            cx.console.say(&format!(
                "Interrupted: batch {}/{} and later are not started.",
                b + 1,
                plan.batches.len()
            ));
            stopped = Some(Stop::Signal);
            break;
        }
        if let Err(stop) = still_unfrozen(cx, fleet, &plan.stage) {
            let (what, lines) = match &stop {
                Stop::Frozen(lines) => ("is frozen now", lines.as_slice()),
                Stop::FreezeUnknown(lines) => ("cannot be checked for a freeze", lines.as_slice()),
                Stop::Signal => ("was interrupted", &[][..]),
            };
            cx.console.say(&format!(
                "Stage `{}` {what}: batch {}/{} and later are not started.",
                plan.stage,
                b + 1,
                plan.batches.len()
            ));
            for l in lines {
                cx.console.say(&format!("  {l}"));
            }
            stopped = Some(stop);
            break;
        }
        let names: Vec<&str> = batch.iter().map(|&i| plan.steps[i].host.as_str()).collect();
        cx.console.say(&format!(
            "Batch {}/{}: {}",
            b + 1,
            plan.batches.len(),
            names.join(", ")
        ));
        journal.in_flight(&names);
        let results = fleet.on_hosts(&plan.stage, &names, |m| {
            let i = plan
                .steps
                .iter()
                .position(|s| s.host == m.host())
                .expect("a planned host");
            let mut seen = Watched::default();
            let canary = b == 0;
            let done = install_one(
                cx,
                m,
                plan,
                &prepared.commands[i],
                attempt,
                &prepared.lock,
                canary,
                &mut seen,
            );
            let record = report::host_record(plan, &plan.steps[i], &done, &seen);
            journal.done(record.clone());
            syslog(cx, m, attempt, plan, &record);
            (done, seen)
        });
        for (&i, (_, (result, seen))) in batch.iter().zip(results) {
            done[i] = result;
            watched[i] = seen;
        }
        if batch
            .iter()
            .any(|&i| matches!(done[i], Done::Failed { .. }))
        {
            break;
        }
    }
    Rollout {
        done,
        stopped,
        watched,
    }
}

/// Put one host back on the state it had before the deploy, if its deploy
/// lock is still this attempt's (taken again after a reconnection).
fn rollback_one(
    cx: &Context<'_>,
    member: &mut Member,
    plan: &Plan,
    step: &Step,
    attempt: &Attempt,
    lock: &Lock,
) -> Rollback {
    let config = cx.config;
    if let Err(why) = lock_still_ours(cx, member, attempt, lock) {
        return Rollback::Failed(format!("rollback not attempted: {why}"));
    }
    let dir = &detach::run_dir(attempt.id(), "rollback");
    let commands = plan.rollback_commands(step, super::preflight::lock_secs(cx));
    if let Some(unhold) = &commands.unhold {
        if let Err(why) = mark(cx, member, attempt, unhold) {
            return Rollback::Failed(format!("rollback could not release the hold: {why}"));
        }
    }
    let ran = match run_detached(cx, member, attempt, dir, &commands.main) {
        Ran::Finished(out) => Ok(out),
        Ran::Gone(why, _) => Err(format!(
            "{why}; {}",
            dpkg_audit(member, config.ssh.command_timeout)
        )),
        Ran::NotStarted(why) | Ran::Lost(why) => Err(why),
    };
    let out = match ran {
        Ok(out) => out,
        Err(why) => {
            // the hold released above is set again: the host stays pinned
            // on what it runs
            let rehold = commands
                .hold
                .clone()
                .or_else(|| commands.unhold.is_some().then(|| apt::hold(&plan.package)));
            let held = match rehold.map(|h| mark(cx, member, attempt, &h)) {
                Some(Err(e)) => format!("; and the hold could not be set again: {e}"),
                _ => String::new(),
            };
            return Rollback::Failed(format!("rollback: {why}{held}"));
        }
    };
    if let Some(hold) = &commands.hold {
        if let Err(why) = mark(cx, member, attempt, hold) {
            return Rollback::Failed(format!("rolled back, but could not set the hold: {why}"));
        }
    }
    let now = match read_state(member, &plan.package, config.ssh.command_timeout) {
        Ok(now) => now,
        Err(e) => return Rollback::Failed(format!("rollback: {e}")),
    };
    if out.success() && now.same_as(&step.from) {
        // the service runs the version put back, as it ran the new one
        if let Some(service) = config.services.get(&plan.package).filter(|s| s.restarts()) {
            let w = Watch {
                service,
                since: 0,
                no_systemd: if service.needs_systemd() {
                    probe_systemd(member, config.ssh.command_timeout)
                } else {
                    None
                },
            };
            if let (_, Some((why, _))) = restart(cx, member, attempt, &w) {
                return Rollback::Failed(format!("rolled back, but {why}"));
            }
        }
        Rollback::Restored
    } else {
        Rollback::Failed(format!(
            "rollback did not restore {}: dpkg shows {now}; {}",
            step.from,
            apt::failure_hint(&out.combined()).unwrap_or_default()
        ))
    }
}

/// When the rollout failed or was stopped early, and the rollback policy
/// is on, put every host that may have changed back on its previous
/// version, all at once (bounded by `parallelism`). A host whose session
/// was lost is reconnected once first. One [`Rollback`] per step of the
/// plan.
pub fn rollback_if_failed(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    prepared: &Prepared,
    rollout: &Rollout,
    attempt: &Attempt,
    journal: &Journal,
) -> Vec<Rollback> {
    let plan = &prepared.plan;
    let done = &rollout.done;
    let failed = done.iter().any(|d| matches!(d, Done::Failed { .. })) || rollout.stopped.is_some();
    let policy = cx.opts.rollback_on_failure || cx.config.rollback_on_failure;
    let mut result = vec![Rollback::NotNeeded; plan.steps.len()];
    if !failed || !policy {
        return result;
    }
    let touched: Vec<&str> = plan
        .steps
        .iter()
        .zip(done)
        .filter(|(step, d)| d.touched(&step.from))
        .map(|(step, _)| step.host.as_str())
        .collect();
    for host in &touched {
        if fleet.member(&plan.stage, host).error().is_some() {
            fleet.reconnect(&plan.stage, host);
        }
    }
    if !touched.is_empty() {
        cx.console.say(&format!(
            "Rolling back {} host(s): {}",
            touched.len(),
            touched.join(", ")
        ));
        journal.rolling_back(&touched);
    }
    let answers = fleet.on_hosts(&plan.stage, &touched, |m| {
        let step = plan
            .steps
            .iter()
            .find(|s| s.host == m.host())
            .expect("a planned host");
        let back = rollback_one(cx, m, plan, step, attempt, &prepared.lock);
        let (result, message) = match &back {
            Rollback::Restored => (HostResult::RolledBack, None),
            Rollback::Failed(why) => (HostResult::Failed, Some(why.clone())),
            Rollback::NotNeeded => (HostResult::Unchanged, None),
        };
        let record = HostRecord {
            host: step.host.clone(),
            from: step.from.version().map(ToString::to_string),
            // where the host is now, when known
            to: (back == Rollback::Restored).then(|| step.from.to_string()),
            result,
            message,
            restart: None,
            log_tail: Vec::new(),
        };
        journal.done(record.clone());
        syslog(cx, m, attempt, plan, &record);
        back
    });
    for (host, answer) in answers {
        let i = plan
            .steps
            .iter()
            .position(|s| s.host == host)
            .expect("a planned host");
        result[i] = answer;
    }
    result
}

/// Tell one host's syslog what just happened to it, as soon as it did.
fn syslog(
    cx: &Context<'_>,
    member: &mut Member,
    attempt: &Attempt,
    plan: &Plan,
    host: &HostRecord,
) {
    let from = host.from.as_deref().unwrap_or("-");
    let to = host.to.as_deref().unwrap_or("-");
    let mut line = format!(
        "{} {} {} to {} by {} (attempt {}): this host {} ({from} -> {to})",
        attempt.action,
        plan.package,
        plan.version,
        plan.stage,
        attempt.who(),
        attempt.id(),
        host.result,
    );
    if let Some(m) = &host.message {
        line.push_str(": ");
        line.push_str(m);
    }
    let logger = RemoteCommand::new("logger").args(["-t", "deployer", "--", &line]);
    let _ = member.run(&logger, cx.config.ssh.command_timeout);
}

/// Append `record` to the history kept on each host of the plan (as root,
/// under `/var/log/deployer`); the problems, one line per host.
fn record_on_hosts(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    plan: &Plan,
    record: &Record,
) -> Vec<String> {
    let line = history::to_line(&record.for_hosts());
    let command = history::host_append_command();
    let timeout = cx.config.ssh.command_timeout;
    let hosts: Vec<&str> = plan.steps.iter().map(|s| s.host.as_str()).collect();
    let answers = fleet.on_hosts(&plan.stage, &hosts, |m| {
        m.exec(Exec {
            command: &command,
            timeout,
            stdin: Some(line.as_bytes()),
            on_output: None,
        })
    });
    crate::fleet::problems(&answers, |a| match a {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "cannot append to {}: {}",
            history::HOST_LOG_FILE,
            crate::hostpath::refused(&out.stderr)
                .unwrap_or_else(|| super::remote_text(out.stderr.trim()))
        )),
        Err(e) => Some(e.to_string()),
    })
}

/// Put the attempt on record before the first host is changed: the
/// `started` record, with the plan, in the local history and on every host
/// to change. Either failing refuses the deploy: an attempt that cannot be
/// recorded is not made.
pub fn start(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    plan: &Plan,
) -> Result<Journal, Fatal> {
    let started = attempt.to_record(Outcome::Started, None, report::planned_records(plan));
    if let Err(e) = history::append(&cx.config.history_file, &started) {
        return Err(attempt.refuse(
            format!(
                "cannot record the attempt in `{}`: {e}",
                cx.config.history_file.display()
            ),
            Vec::new(),
        ));
    }
    let problems = record_on_hosts(cx, fleet, plan, &started);
    if !problems.is_empty() {
        return Err(attempt.refuse(
            format!(
                "cannot record the attempt on {} host(s) of `{}`",
                problems.len(),
                plan.stage
            ),
            problems,
        ));
    }
    announce(cx, &started);
    Ok(Journal::new(&started, &cx.config.history_file))
}

/// Tell `[notify]`'s webhook and command about `record` (start, success,
/// failure, interrupt); a notification that fails is a warning.
pub fn announce(cx: &Context<'_>, record: &Record) {
    for problem in crate::notify::announce(&cx.config.notify, record) {
        cx.console.warn(&format!("notification: {problem}"));
    }
}

/// Append the final record on every host of the plan; a failure is a
/// warning (the hosts have changed, and the local history has it).
pub fn publish(cx: &Context<'_>, fleet: &mut Fleet, plan: &Plan, record: &Record) {
    for problem in record_on_hosts(cx, fleet, plan, record) {
        cx.console
            .warn(&format!("the history on the host is incomplete: {problem}"));
    }
}

/// Refresh the badges of the stage's hosts after a deploy that touched
/// any (changed, failed, rolled back or left unknown), over the sessions
/// already open, when `badges_path` is set and `badges_after_deploy` is
/// on. A host's badge depends on its stage and the one before, which this
/// run read, so these are the badges `refresh-badges` would write; those
/// whose bytes did not change are left alone. A host that cannot be
/// written is a warning: the deploy's outcome stands. They are written
/// only under the attempt's deploy lock, proven on each host.
pub fn refresh_badges(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    after: &super::Facts,
    stage: &str,
    records: &[HostRecord],
) {
    let config = cx.config;
    let Some(dir) = config
        .badges_path
        .as_deref()
        .filter(|_| config.badges_after_deploy)
    else {
        return;
    };
    let touched = records.iter().any(|r| {
        !matches!(
            r.result,
            HostResult::Unchanged | HostResult::Untouched | HostResult::Planned
        )
    });
    if !touched {
        return;
    }
    let board = crate::badges::board(&after.matrix, &after.reports);
    // PNGs too when asked for; without a font, the SVGs alone, and a warning
    let fonts = if config.badges_png {
        crate::badge::Fonts::system()
            .inspect_err(|e| cx.console.warn(&format!("badges: no PNG: {e}")))
            .ok()
    } else {
        None
    };
    let files = match publish::host_files(&board, fonts.as_ref(), |s, _| s == stage) {
        Ok(files) => files,
        Err(e) => {
            cx.console.warn(&format!("badges not refreshed: {e}"));
            return;
        }
    };
    let outcomes = publish::to_hosts(
        fleet,
        &files,
        &after.reports,
        dir,
        config.ssh.command_timeout,
        Some(attempt.id()),
    );
    let written = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().ok())
        .map(|w| w.written.len())
        .sum::<usize>();
    for o in &outcomes {
        if let Err(e) = &o.result {
            cx.console
                .warn(&format!("host `{}`: badges not refreshed: {e}", o.host));
        }
    }
    let fine = outcomes.iter().filter(|o| o.result.is_ok()).count();
    if fine > 0 {
        cx.console.say(&format!(
            "Badges refreshed on {fine} host{} of `{stage}` in {} ({written} file{} written).",
            if fine == 1 { "" } else { "s" },
            dir.display(),
            if written == 1 { "" } else { "s" },
        ));
    }
}
