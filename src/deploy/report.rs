//! The report phase, pure: what happened to each host of a plan becomes the
//! lines shown to the operator, the history's host records, the outcome and
//! the exit status.

use crate::error::ExitStatus;
use crate::history::{FailureBudget, HostRecord, HostResult, Outcome};
use crate::plan::{Plan, Share};

use super::attempt::Attempt;
use super::outcome::{Done, Rollback, Rollout, Stop, Watched};
use super::request::Options;

/// The outcome of a rollout, ready to print and record.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The first line: deployed, or failed and how.
    pub heading: String,
    /// One line per host (and the hosts' output when they failed).
    pub lines: Vec<String>,
    /// One record per host of the stage.
    pub records: Vec<HostRecord>,
    /// The outcome as a whole.
    pub outcome: Outcome,
    /// The exit status that goes with it.
    pub status: ExitStatus,
}

/// Records of the hosts that already ran the version.
pub fn unchanged_records(plan: &Plan) -> Vec<HostRecord> {
    plan.unchanged
        .iter()
        .map(|h| HostRecord {
            host: h.clone(),
            from: Some(plan.version.to_string()),
            to: Some(plan.version.to_string()),
            result: HostResult::Unchanged,
            message: None,
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        })
        .collect()
}

/// Records of the hosts left out of the rollout: `skipped`, with why.
pub fn left_out_records(plan: &Plan) -> Vec<HostRecord> {
    plan.left_out
        .iter()
        .map(|l| HostRecord {
            host: l.host.clone(),
            from: l
                .state
                .as_ref()
                .and_then(|s| s.version())
                .map(ToString::to_string),
            to: None,
            result: HostResult::Skipped,
            message: Some(l.why.to_string()),
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        })
        .collect()
}

/// The records of a plan with nothing to change: the hosts already there,
/// and those left out.
pub fn nothing_to_do_records(plan: &Plan) -> Vec<HostRecord> {
    let mut records = unchanged_records(plan);
    records.extend(left_out_records(plan));
    records
}

/// The exit status of an attempt that did what it set out to do on the
/// hosts taking part: success, unless hosts were left out, when the stage
/// is not done (status 3: some hosts were not served, the others were).
pub fn done_status(plan: &Plan) -> ExitStatus {
    if plan.left_out.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Unreachable
    }
}

/// The plan as host records of the `started` record: every host to change
/// is planned, the others unchanged or skipped.
pub fn planned_records(plan: &Plan) -> Vec<HostRecord> {
    plan.steps
        .iter()
        .map(|step| HostRecord {
            host: step.host.clone(),
            from: step.from.version().map(ToString::to_string),
            to: Some(plan.version.to_string()),
            result: HostResult::Planned,
            message: None,
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        })
        .chain(nothing_to_do_records(plan))
        .collect()
}

/// The record of one host's outcome, as the summary words it, with its
/// service's restart and (failed hosts) last log lines.
pub fn host_record(
    plan: &Plan,
    step: &crate::plan::Step,
    done: &Done,
    watched: &Watched,
) -> HostRecord {
    let (result, message, to) = match done {
        Done::Changed => (HostResult::Changed, None, Some(plan.version.to_string())),
        Done::Untouched => (HostResult::Untouched, None, None),
        Done::Failed { why, now, .. } => match now {
            Some(now) if now.same_as(&step.from) => (HostResult::Failed, Some(why.clone()), None),
            Some(now) => (HostResult::Failed, Some(why.clone()), Some(now.to_string())),
            None => (HostResult::Unknown, Some(why.clone()), None),
        },
    };
    let message = match (message, &watched.kept) {
        (Some(m), Some(w)) => Some(format!("{m}; {w}")),
        (m, w) => m.or_else(|| w.clone()),
    };
    HostRecord {
        host: step.host.clone(),
        from: step.from.version().map(ToString::to_string),
        to,
        result,
        message,
        restart: watched.restart.clone(),
        log_tail: watched.log_tail.clone(),
        gates: watched.gates.clone(),
    }
}

/// Sum up the rollout: `done` and `rollback` have one entry per step.
/// `action` is the attempt's (`deploy`, `rollback`, `promote`), for the
/// heading.
pub fn summarize(plan: &Plan, action: &str, rollout: &Rollout, rollback: &[Rollback]) -> Summary {
    let done = &rollout.done;
    let failed = done.iter().any(|d| matches!(d, Done::Failed { .. }));
    let mut records = Vec::new();
    let mut lines = Vec::new();
    let mut changed_any = false;
    let none = Watched::default();
    for (i, ((step, d), rb)) in plan.steps.iter().zip(done).zip(rollback).enumerate() {
        let watched = rollout.watched.get(i).unwrap_or(&none);
        let HostRecord {
            mut result,
            mut message,
            mut to,
            restart,
            log_tail,
            gates,
            ..
        } = host_record(plan, step, d, watched);
        let touched = d.touched(&step.from);
        match rb {
            Rollback::NotNeeded => {}
            Rollback::Restored => {
                result = HostResult::RolledBack;
                to = Some(step.from.to_string());
                message = Some(match message {
                    Some(m) => format!("{m}; rolled back to {}", step.from),
                    None => format!("rolled back to {}", step.from),
                });
            }
            Rollback::Failed(e) => {
                message = Some(match message {
                    Some(m) => format!("{m}; {e}"),
                    None => e.clone(),
                });
            }
        }
        changed_any |= touched;
        lines.push(match (&result, &message) {
            (HostResult::Changed, _) => {
                format!("  {}: changed {} -> {}", step.host, step.from, plan.version)
            }
            (HostResult::Untouched, _) => {
                format!("  {}: untouched (still {})", step.host, step.from)
            }
            (HostResult::RolledBack, Some(m)) => {
                format!("  {}: {}", step.host, crate::text::one_line(m))
            }
            (_, Some(m)) => format!("  {}: FAILED: {}", step.host, crate::text::one_line(m)),
            (_, None) => format!("  {}: {}", step.host, result),
        });
        if let Done::Failed { output, .. } = d {
            if !output.trim().is_empty() {
                for l in host_block(&step.host, output).lines() {
                    lines.push(format!("    {l}"));
                }
            }
        }
        // a failed restart is the host's message already
        if let Some(r) = restart.as_ref().filter(|r| r.ok) {
            lines.push(format!(
                "    restarted {}{}",
                r.what,
                r.detail
                    .as_deref()
                    .map(|d| format!(": {}", crate::text::one_line(d)))
                    .unwrap_or_default()
            ));
        }
        if !log_tail.is_empty() {
            lines.push(format!(
                "    last {} log line{} of {}:",
                log_tail.len(),
                if log_tail.len() == 1 { "" } else { "s" },
                step.host
            ));
            for l in &log_tail {
                // kept as safe single lines already
                lines.push(format!(
                    "    {} log | {}",
                    step.host,
                    crate::text::one_line(l)
                ));
            }
        }
        records.push(HostRecord {
            host: step.host.clone(),
            from: step.from.version().map(ToString::to_string),
            to,
            result,
            message,
            restart,
            log_tail,
            gates,
        });
    }
    records.extend(nothing_to_do_records(plan));
    for l in plan.left_out_lines() {
        lines.push(format!("  {l}"));
    }

    let outcome = match (failed, changed_any) {
        _ if rollout.stopped.is_some() => Outcome::Interrupted,
        (false, _) => Outcome::Success,
        (true, false) => Outcome::Failed,
        (true, true) => Outcome::Partial,
    };
    let noun = if action == "rollback" {
        "Rollback"
    } else {
        "Deploy"
    };
    let heading = match outcome {
        Outcome::Success if !plan.left_out.is_empty() && action == "rollback" => format!(
            "Rolled back `{}` to {} on `{}` except {} host(s) left out; the stage is not done:",
            plan.package,
            plan.version,
            plan.stage,
            plan.left_out.len()
        ),
        Outcome::Success if !plan.left_out.is_empty() => format!(
            "Deployed `{}` {} to `{}` except {} host(s) left out; the stage is not done:",
            plan.package,
            plan.version,
            plan.stage,
            plan.left_out.len()
        ),
        Outcome::Success if action == "rollback" => format!(
            "Rolled back `{}` to {} on `{}`:",
            plan.package, plan.version, plan.stage
        ),
        Outcome::Success => format!(
            "Deployed `{}` {} to `{}`:",
            plan.package, plan.version, plan.stage
        ),
        Outcome::Partial if rollout.failed_within_budget() => format!(
            "{noun} of `{}` {} to `{}` went to its end with {} FAILED host(s), within the \
             failure budget of {} (max_failures {}):",
            plan.package,
            plan.version,
            plan.stage,
            rollout.failures(),
            plan.sizing.budget(),
            plan.sizing.max_failures
        ),
        Outcome::Failed => format!(
            "{noun} of `{}` {} to `{}` FAILED; no host was changed:",
            plan.package, plan.version, plan.stage
        ),
        Outcome::Interrupted => format!(
            "{noun} of `{}` {} to `{}` STOPPED ({}); later batches were not started:",
            plan.package,
            plan.version,
            plan.stage,
            match &rollout.stopped {
                Some(Stop::Frozen(_)) => "the stage was frozen",
                Some(Stop::FreezeUnknown(_)) => "a freeze could not be checked",
                Some(Stop::Alerts(_)) => "alerts are firing",
                Some(Stop::AlertsUnknown(_)) => "the alerts could not be checked",
                Some(Stop::WindowClosed(_)) => "the deploy window closed",
                _ => "interrupted",
            }
        ),
        _ => format!(
            "{noun} of `{}` {} to `{}` FAILED after changing hosts:",
            plan.package, plan.version, plan.stage
        ),
    };
    let status = match outcome {
        Outcome::Success => done_status(plan),
        Outcome::Failed => ExitStatus::FailedUnchanged,
        Outcome::Interrupted => ExitStatus::Interrupted,
        _ => ExitStatus::FailedPartial,
    };
    Summary {
        heading,
        lines,
        records,
        outcome,
        status,
    }
}

/// How the rollout kept to the stage's failure budget, for the history;
/// `None` when the stage sets no `max_failures`.
pub fn failure_budget(plan: &Plan, rollout: &Rollout) -> Option<FailureBudget> {
    (plan.sizing.max_failures != Share::Hosts(0)).then(|| FailureBudget {
        max_failures: plan.sizing.max_failures.to_string(),
        allowed: plan.sizing.budget(),
        failed: rollout.failures(),
        halted: rollout.halted,
    })
}

/// The history's reason: what `--force` overrode, why a rollback was made
/// (into a frozen stage, or not), the hosts left out and why, and the first
/// host message of a host taking part (the first of a host not changed, if
/// any: a failure before a changed host's warning).
pub fn reason(
    opts: &Options,
    attempt: &Attempt,
    plan: &Plan,
    rollout: &Rollout,
    records: &[HostRecord],
) -> Option<String> {
    let mut reasons: Vec<String> = Vec::new();
    match &rollout.stopped {
        Some(Stop::Signal) => reasons.push("interrupted by a signal".to_string()),
        Some(Stop::Frozen(lines)) => reasons.push(format!(
            "stage frozen during the rollout: {}",
            lines.join("; ")
        )),
        Some(Stop::FreezeUnknown(lines)) => reasons.push(format!(
            "a freeze could not be checked during the rollout: {}",
            lines.join("; ")
        )),
        Some(Stop::Alerts(lines)) => reasons.push(format!(
            "alerts fired during the rollout: {}",
            lines.join("; ")
        )),
        Some(Stop::AlertsUnknown(lines)) => reasons.push(format!(
            "the alerts could not be checked during the rollout: {}",
            lines.join("; ")
        )),
        Some(Stop::WindowClosed(lines)) => reasons.push(format!(
            "the deploy window closed during the rollout: {}",
            lines.join("; ")
        )),
        None => {}
    }
    if let Some(budget) = failure_budget(plan, rollout).filter(|b| b.failed > 0) {
        let (within, what) = if budget.halted {
            ("beyond", "halted")
        } else {
            ("within", "went on")
        };
        reasons.push(format!(
            "{} host(s) failed, {within} the failure budget of {} (max_failures {}): the rollout {what}",
            budget.failed, budget.allowed, budget.max_failures
        ));
    }
    if opts.force {
        reasons.push(format!(
            "forced: {}",
            opts.reason.as_deref().unwrap_or_default()
        ));
        reasons.extend(plan.overridden.iter().map(|o| format!("overrode {o}")));
    }
    if opts.override_freeze {
        reasons.push(format!(
            "freeze overridden: {}",
            opts.reason.as_deref().unwrap_or_default()
        ));
        if !attempt.alerts_overridden.is_empty() {
            reasons.push(format!(
                "alerts overridden: {}",
                attempt.alerts_overridden.join("; ")
            ));
        }
        if let Some(window) = &attempt.window_overridden {
            reasons.push(format!("deploy window overridden: {window}"));
        }
    } else if attempt.under_freeze {
        reasons.push(format!(
            "rollback under freeze: {}",
            opts.reason.as_deref().unwrap_or_default()
        ));
    } else if let (false, "rollback", Some(why)) = (opts.force, attempt.action, &opts.reason) {
        reasons.push(why.clone());
    }
    if !plan.left_out.is_empty() {
        let hosts: Vec<String> = plan
            .left_out
            .iter()
            .map(|l| format!("{} ({})", l.host, l.why))
            .collect();
        reasons.push(format!("left out: {}", hosts.join(", ")));
    }
    // a failure's message before a changed host's warning (a `.deb` not
    // kept in its cache); a host left out is named above
    let taking_part = || records.iter().filter(|r| r.result != HostResult::Skipped);
    let failed = taking_part()
        .filter(|r| r.result != HostResult::Changed)
        .find_map(|r| r.message.clone());
    reasons.extend(failed.or_else(|| taking_part().find_map(|r| r.message.clone())));
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The longest line of a host's output shown in a report, in characters.
const LINE_MAX: usize = 500;

/// The last lines of `text`, marked off and named after `host`, each cut
/// to a readable length, progress meters settled, control characters
/// escaped.
pub fn host_block(host: &str, text: &str) -> String {
    let text = crate::text::for_terminal(&crate::text::settle_progress(text));
    let body: Vec<String> = text
        .trim_end()
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|l| format!("    | {}", crate::text::clip(l, LINE_MAX)))
        .collect();
    format!("{host} said:\n{}", body.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(host: &str, result: HostResult, message: Option<&str>) -> HostRecord {
        HostRecord {
            host: host.into(),
            from: None,
            to: None,
            result,
            message: message.map(String::from),
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        }
    }

    #[test]
    fn a_failure_is_the_reason_before_a_changed_hosts_cache_warning() {
        let plan = Plan {
            package: "fastpath".parse().unwrap(),
            stage: "test".into(),
            version: "1.0".parse().unwrap(),
            critical: false,
            steps: Vec::new(),
            unchanged: Vec::new(),
            batches: Vec::new(),
            sizing: crate::plan::Sizing {
                batch_size: crate::plan::Share::Hosts(1),
                max_failures: crate::plan::Share::Hosts(0),
                taking_part: 0,
            },
            overridden: Vec::new(),
            allowed: Vec::new(),
            allow_dependency_changes: false,
            rollback: false,
            unsimulated: Vec::new(),
            left_out: Vec::new(),
        };
        let rollout = Rollout {
            done: Vec::new(),
            stopped: None,
            watched: Vec::new(),
            halted: false,
        };
        let warned = record(
            "t1",
            HostResult::Changed,
            Some("0.9 not kept in the host's .deb cache: …"),
        );
        let failed = record(
            "t2",
            HostResult::Failed,
            Some("apt-get exited with status 100"),
        );
        let opts = Options::default();
        let checked = crate::deploy::Checked {
            action: "deploy",
            package: plan.package.clone(),
            stage: Some(0),
            version: Some(plan.version.clone()),
            promote: false,
            rollback: false,
        };
        let started = crate::history::Attempt::start("deploy");
        let attempt = Attempt::new(&started, &checked, "test", false);
        assert_eq!(
            reason(&opts, &attempt, &plan, &rollout, &[warned.clone(), failed]).as_deref(),
            Some("apt-get exited with status 100")
        );
        assert_eq!(
            reason(&opts, &attempt, &plan, &rollout, &[warned]).as_deref(),
            Some("0.9 not kept in the host's .deb cache: …")
        );
    }
}
