//! The aftermath of each step of a deploy: the syslog line on each host as
//! it is done, the attempt's records kept on the hosts (the `started` one
//! before any change, the final one after), the start and end announced to
//! the team (`notify`), and the badges of the hosts refreshed.

use crate::badges::publish;
use crate::command::RemoteCommand;
use crate::error::Fatal;
use crate::fleet::{Fleet, Member};
use crate::history::{self, HostRecord, HostResult, Outcome, Record};
use crate::plan::Plan;
use crate::transport::Exec;

use super::attempt::Attempt;
use super::context::{Context, Facts};
use super::record::{self, Journal};
use super::report;

/// Tell one host's syslog what just happened to it, as soon as it did.
pub(super) fn syslog(
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
/// under `/var/log/deployer`), each host's own part of it
/// ([`Record::for_host`]); the problems, one line per host.
fn record_on_hosts(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    plan: &Plan,
    record: &Record,
) -> Vec<String> {
    let command = history::host_append_command();
    let timeout = cx.config.ssh.command_timeout;
    let hosts: Vec<&str> = plan.steps.iter().map(|s| s.host.as_str()).collect();
    let answers = fleet.on_hosts(&plan.stage, &hosts, |m| {
        // each host keeps its own part of the attempt
        let line = history::to_line(&record.for_host(m.host()));
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
            crate::hostpath::refused(&out.stderr).unwrap_or_else(|| crate::text::clipped_line(
                out.stderr.trim(),
                crate::text::REMOTE_TEXT_MAX
            ))
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
        return Err(record::refuse(
            cx,
            attempt,
            format!(
                "cannot record the attempt in `{}`: {e}",
                cx.config.history_file.display()
            ),
            Vec::new(),
        ));
    }
    let problems = record_on_hosts(cx, fleet, plan, &started);
    if !problems.is_empty() {
        return Err(record::refuse(
            cx,
            attempt,
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
/// failure, interrupt), as every command does
/// ([`crate::notify::announce_or_warn`]); a notification that fails is a
/// warning.
pub fn announce(cx: &Context<'_>, record: &Record) {
    crate::notify::announce_or_warn(&cx.config.notify, cx.console, record);
}

/// Append the final record on every host of the plan; a failure is a
/// warning (the hosts have changed, and the local history has it).
pub fn publish(cx: &Context<'_>, fleet: &mut Fleet, plan: &Plan, record: &Record) {
    for problem in record_on_hosts(cx, fleet, plan, record) {
        cx.console
            .warn(&format!("the history on the host is incomplete: {problem}"));
    }
}

/// Refresh the badges of the stage's hosts (but those left out) after a
/// deploy that touched any (changed, failed, rolled back or left unknown),
/// over the sessions
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
    after: &Facts,
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
            HostResult::Unchanged
                | HostResult::Untouched
                | HostResult::Planned
                | HostResult::Skipped
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
    // a host left out is left alone: it does not hold this attempt's lock
    let skipped = |host: &str| {
        records
            .iter()
            .any(|r| r.host == host && r.result == HostResult::Skipped)
    };
    let files = match publish::host_files(&board, fonts.as_ref(), |s, h| s == stage && !skipped(h))
    {
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
        |_| None,
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
