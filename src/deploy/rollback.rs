//! The rollback policy: when the rollout failed (halted) or stopped early,
//! and the policy is on, every host that may have changed is put back on
//! the state it had before, under the attempt's deploy lock. A rollout
//! that went to its end with failures within its failure budget
//! (`max_failures`) puts back only its failed hosts.

use crate::apt;
use crate::detach;
use crate::fleet::{Fleet, Member};
use crate::history::{HostRecord, HostResult};
use crate::plan::{Plan, Step};
use crate::status::PackageState;

use super::aftermath::syslog;
use super::attempt::Attempt;
use super::context::Context;
use super::host::{dpkg_audit, read_state};
use super::install::{lock_still_ours, mark, run_detached, Ran};
use super::keep::keep_running;
use super::outcome::{Done, Rollback, Rollout};
use super::preflight::{Lock, Prepared};
use super::record::Journal;
use super::restart::{probe_systemd, restart, Watch};

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
    // what the host runs now (the failed version) is kept too, as before
    // any change; a failure to keep it is only said
    if let Ok(now @ PackageState::Installed(_)) =
        read_state(member, &plan.package, config.ssh.command_timeout)
    {
        let running = Step {
            from: now,
            restore_from: None,
            ..step.clone()
        };
        if let Ok(Some(warning)) | Err(warning) =
            keep_running(cx, member, &plan.package, &running, false, attempt)
        {
            cx.console
                .say(&format!("  {}: warning: {warning}", member.host()));
        }
    }
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
            crate::debcache::install_refusal(&out.combined())
                .or_else(|| apt::failure_hint(&out.combined()))
                .unwrap_or_default()
        ))
    }
}

/// When the rollout failed (halted) or was stopped early, and the
/// rollback policy is on, put every host that may have changed back on
/// its previous version, all at once (bounded by `parallelism`); when it
/// went to its end with failures within its failure budget, only the
/// failed hosts. A host whose session was lost is reconnected once first.
/// One [`Rollback`] per step of the plan.
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
    // within the budget, the hosts that did change stay on the new version
    let only_failed = rollout.failed_within_budget();
    let touched: Vec<&str> = plan
        .steps
        .iter()
        .zip(done)
        .filter(|(_, d)| !only_failed || matches!(d, Done::Failed { .. }))
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
            gates: Vec::new(),
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
