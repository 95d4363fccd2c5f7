//! The service of one host during its deploy: whether the host runs
//! systemd, the restart and its units' states, and the service's logs
//! since the install (shown for the canary, kept for a failed host).

use std::time::Duration;

use crate::error::HostError;
use crate::fleet::Member;
use crate::history::RestartRecord;
use crate::lines::Lines;
use crate::lock;
use crate::service::{self, Service};
use crate::transport;

use super::attempt::Attempt;
use super::context::Context;

/// Why the host cannot serve the units (no systemd), if it cannot.
pub(super) fn probe_systemd(member: &mut Member, timeout: Duration) -> Option<String> {
    let host = member.host().to_string();
    match member.run(&service::systemd_probe(), timeout) {
        Ok(out) => service::without_systemd(&host, &out.stdout),
        Err(e) => Some(format!(
            "host `{host}`: cannot tell whether it runs systemd: {e}"
        )),
    }
}

/// The service of one host during its deploy.
pub(super) struct Watch<'s> {
    pub(super) service: &'s Service,
    /// The host's clock before the install.
    pub(super) since: u64,
    /// Why the host cannot serve the units, when the commands need
    /// systemd and it has none.
    pub(super) no_systemd: Option<String>,
}

impl Watch<'_> {
    /// Whether its logs can be read here.
    pub(super) fn has_logs(&self) -> bool {
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
                crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX)
            )),
            Err(e) => Err(format!("`{}` could not run: {e}", cmd.label())),
        }
    }

    /// The last [`service::TAIL_LINES`] log lines, for a failed host's
    /// record (or one line saying why there are none).
    pub(super) fn tail(&self, member: &mut Member, timeout: Duration) -> Vec<String> {
        match self.logs(member, service::TAIL_LINES, timeout) {
            Ok(text) => service::last_lines(&text, service::TAIL_LINES),
            Err(why) => vec![format!("(no log lines: {})", crate::text::one_line(&why))],
        }
    }
}

/// Restart the service on one host and check that its units run: the
/// record, and the failure (why, output) if it failed.
pub(super) fn restart(
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
                detail: Some(crate::text::clipped_line(&why, 500)),
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
            crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX)
        )),
        Err(e) => Err(format!("the units' state cannot be read: {e}")),
    }
}

/// Show the canary's log lines since the install, with its name in front.
pub(super) fn show_logs(cx: &Context<'_>, member: &mut Member, w: &Watch<'_>, host: &str) {
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
pub(super) fn show_states(cx: &Context<'_>, member: &mut Member, w: &Watch<'_>, host: &str) {
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
pub(super) struct LogLines<'a> {
    cx: &'a Context<'a>,
    host: &'a str,
    lines: Lines,
    shown: usize,
    dropped: usize,
}

impl<'a> LogLines<'a> {
    const MAX: usize = 500;

    pub(super) fn new(cx: &'a Context<'a>, host: &'a str) -> Self {
        LogLines {
            cx,
            host,
            lines: Lines::new(service::LINE_MAX),
            shown: 0,
            dropped: 0,
        }
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) {
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

    pub(super) fn finish(mut self) {
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
