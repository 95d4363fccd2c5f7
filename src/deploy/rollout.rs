//! The rollout, batch by batch: the first host alone (the canary), then
//! `batch_size` at a time, each batch baked on its gates ([`super::bake`])
//! before the next starts (a host whose install failed is not baked). It
//! halts after a failing canary, a host left in an unknown state, or once
//! more hosts failed (install or gates) than the stage's failure budget
//! (`max_failures`, 0 by default: the first failure) allows; and before a
//! new batch when the operator asked to stop, the stage was frozen
//! meanwhile, alerts started firing ([`super::alert_hold`]), or its deploy
//! window closed ([`super::window_hold`]).

use crate::fleet::Fleet;
use crate::status::PackageState;

use super::aftermath::syslog;
use super::attempt::Attempt;
use super::bake::{bake, Baked};
use super::context::Context;
use super::install::install_one;
use super::outcome::{Done, Rollout, Stop, Watched};
use super::preflight::Prepared;
use super::record::Journal;
use super::report;
use crate::plan::Plan;

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

/// Change the hosts batch by batch; halt after a batch whose failures go
/// beyond the failure budget (or a failing canary), and stop before a new
/// batch once the operator asked to stop or the stage was frozen
/// meanwhile.
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
    let mut halted = false;
    let rollback = prepared.back.is_some();
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
        // the failure budget (install failures), then the batch's gates
        // (on the hosts that did not fail), then the budget again
        if beyond_budget(cx, plan, &done, batch, b) {
            halted = true;
            break;
        }
        let baking: Vec<usize> = batch
            .iter()
            .copied()
            .filter(|&i| !matches!(done[i], Done::Failed { .. }))
            .collect();
        let baked = bake(cx, fleet, plan, &baking, b == 0, rollback, &mut watched);
        if let Baked::Failed(failures) = &baked {
            for (i, why) in failures {
                done[*i] = Done::Failed {
                    why: why.clone(),
                    output: String::new(),
                    now: Some(PackageState::Installed(plan.version.clone())),
                };
            }
        }
        for &i in &baking {
            if !watched[i].gates.is_empty() {
                journal.done(report::host_record(
                    plan,
                    &plan.steps[i],
                    &done[i],
                    &watched[i],
                ));
            }
        }
        match baked {
            Baked::Passed => {}
            Baked::Failed(_) => {
                if beyond_budget(cx, plan, &done, batch, b) {
                    halted = true;
                    break;
                }
            }
            Baked::Interrupted => {
                stopped = Some(Stop::Signal);
                break;
            }
        }
    }
    Rollout {
        done,
        stopped,
        watched,
        halted,
    }
}

/// After batch `b` (positions `batch`): whether its failures halt the
/// rollout — a failing canary, a host left in an unknown state (doubt), or
/// one failure more than the stage's failure budget allows — saying so;
/// failures within the budget let the rollout go on.
fn beyond_budget(cx: &Context<'_>, plan: &Plan, done: &[Done], batch: &[usize], b: usize) -> bool {
    if !batch
        .iter()
        .any(|&i| matches!(done[i], Done::Failed { .. }))
    {
        return false;
    }
    let failed = done
        .iter()
        .filter(|d| matches!(d, Done::Failed { .. }))
        .count();
    let unknown = batch
        .iter()
        .any(|&i| matches!(done[i], Done::Failed { now: None, .. }));
    let (budget, written) = (plan.sizing.budget(), plan.sizing.max_failures);
    if unknown || plan.sizing.halts(b == 0, failed) {
        if unknown && budget > 0 {
            cx.console.say(
                "A host is in an unknown state: the rollout halts, whatever the failure budget.",
            );
        } else if b == 0 && budget > 0 {
            cx.console
                .say("The canary failed: the rollout halts, whatever the failure budget.");
        } else if budget > 0 {
            cx.console.say(&format!(
                "{failed} host(s) failed, beyond the failure budget of {budget} \
                 (max_failures {written}): the rollout halts."
            ));
        }
        return true;
    }
    cx.console.say(&format!(
        "{failed} host(s) failed so far, within the failure budget of {budget} \
         (max_failures {written}): the rollout goes on."
    ));
    false
}
