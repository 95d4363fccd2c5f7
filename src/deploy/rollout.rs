//! The rollout, batch by batch: the first host alone (the canary), then
//! `batch_size` at a time. It stops at the first failing batch, and before
//! a new batch when the operator asked to stop, the stage was frozen
//! meanwhile, alerts started firing ([`super::alert_hold`]), or its
//! deploy window closed ([`super::window_hold`]).

use crate::fleet::Fleet;

use super::aftermath::syslog;
use super::attempt::Attempt;
use super::context::Context;
use super::install::install_one;
use super::outcome::{Done, Rollout, Stop, Watched};
use super::preflight::Prepared;
use super::record::Journal;
use super::report;

/// Before a batch: the stage must still be unfrozen (unless overridden, or
/// a rollback the preflight let into the frozen stage), and every host
/// taking part must say so.
fn still_unfrozen(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
) -> Result<(), Stop> {
    if cx.opts.override_freeze || attempt.under_freeze {
        return Ok(());
    }
    let reports = fleet.stage_status(stage, &cx.config.packages, cx.config.ssh.command_timeout);
    let frozen = super::preflight::freezes(&reports, stage);
    if !frozen.is_empty() {
        return Err(Stop::Frozen(frozen));
    }
    // a host left out of the rollout is read for its freezes, but may
    // stay silent (it is down, or not ours to wait for)
    let taking_part = fleet.hosts_of(stage);
    let unknown: Vec<String> = reports
        .iter()
        .filter(|r| taking_part.contains(&r.host))
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
        let rollback = prepared.back.is_some();
        let checked = still_unfrozen(cx, fleet, attempt, &plan.stage)
            .and_then(|()| super::alert_hold::before_batch(cx, attempt, &plan.stage, rollback))
            .and_then(|()| super::window_hold::before_batch(cx, &plan.stage, rollback));
        if let Err(stop) = checked {
            let (what, lines) = match &stop {
                Stop::Frozen(lines) => ("is frozen now", lines.as_slice()),
                Stop::FreezeUnknown(lines) => ("cannot be checked for a freeze", lines.as_slice()),
                Stop::Alerts(lines) => ("is held by alerts now", lines.as_slice()),
                Stop::AlertsUnknown(lines) => ("cannot be checked for alerts", lines.as_slice()),
                Stop::WindowClosed(lines) => ("is closed now", lines.as_slice()),
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
