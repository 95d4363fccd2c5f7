//! The install on one host: the deploy lock proven still the attempt's,
//! the `.deb` it runs kept ([`super::keep`]), the hold released and set
//! again, the install detached from the session
//! and followed to its end, its verification with dpkg, the service's
//! restart and the health check.

use std::time::{Duration, Instant};

use crate::apt;
use crate::command::RemoteCommand;
use crate::detach;
use crate::error::HostError;
use crate::fleet::Member;
use crate::lines::{self, Lines};
use crate::lock;
use crate::plan::{HostCommands, Plan};
use crate::service;
use crate::status::PackageState;
use crate::transport::{self, Exec, Stream};

use super::attempt::Attempt;
use super::context::Context;
use super::host::{dpkg_audit, read_state, run_waiting_for_lock};
use super::outcome::{Done, Watched};
use super::preflight::Lock;
use super::restart::{probe_systemd, restart, show_logs, show_states, LogLines, Watch};

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

/// Release or set the hold (`apt-mark`), waiting for dpkg's lock, only
/// while the host's deploy lock is the attempt's (`lock::guarded`); the
/// failure as one line.
pub(super) fn mark(
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
                    crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX)
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
pub(super) fn lock_still_ours(
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
                crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX)
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
pub(super) fn install_one(
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
    if let Some(step) = plan.steps.iter().find(|s| s.host == member.host()) {
        if let Some(c) = &step.install_from {
            cx.console.say(&format!(
                "  {}: installing {} from the host's cache, {}",
                member.host(),
                c.version,
                c.path()
            ));
        }
        match super::keep::keep_running(cx, member, &plan.package, step, plan.rollback, attempt) {
            Ok(None) => {}
            Ok(Some(warning)) => {
                cx.console
                    .say(&format!("  {}: warning: {warning}", member.host()));
                watched.kept = Some(warning);
            }
            Err(why) => {
                return Done::Failed {
                    why,
                    output: String::new(),
                    now: read_state(member, &plan.package, cx.config.ssh.command_timeout).ok(),
                }
            }
        }
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

/// The least time between the starts of two looks at a detached run (a
/// look itself waits on the host for the run to end, up to
/// `detach::POLL_WAIT_SECS`).
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// How a detached run ended, as far as deployer could see.
pub(super) enum Ran {
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
pub(super) fn run_detached(
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
                crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX)
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
    // a poll waits on the host for the run to end (`detach::POLL_WAIT_SECS`)
    let poll_timeout = ssh.command_timeout + Duration::from_secs(detach::POLL_WAIT_SECS);
    loop {
        let polled = Instant::now();
        match member.run(&detach::poll_command(dir, offset), poll_timeout) {
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
                    crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX)
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
        // a poll that could not wait on the host does not make this a loop
        // of sessions
        if let Some(rest) = POLL_INTERVAL.checked_sub(polled.elapsed()) {
            std::thread::sleep(rest);
        }
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
            crate::debcache::install_refusal(&combined)
                .or_else(|| apt::failure_hint(&combined))
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
        // the health check is the `command` gate evaluated once: on record
        // as such
        let (verdict, value, detail) = match &answer {
            Ok(o) if o.success() => ("pass", Some(0.0), "exit status 0".to_string()),
            Ok(o) => (
                "fail",
                Some(f64::from(o.status)),
                format!("exit status {}", o.status),
            ),
            Err(e) => ("error", None, format!("could not run: {e}")),
        };
        watched.gates.push(crate::history::GateRecord {
            gate: "health_check".to_string(),
            time: crate::history::now_rfc3339(),
            value,
            verdict: verdict.to_string(),
            detail: Some(detail),
        });
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
