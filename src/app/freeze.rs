//! `deployer freeze` and `unfreeze`: write or remove the freeze record on
//! every host of a stage, and record the attempt in the history. An
//! unfreeze of a stage that no host says is frozen changes nothing and
//! records nothing (it is not an attempt: nothing was changed or refused).
//! A freeze or unfreeze that changed hosts is announced to the team
//! (`[notify]`, events `freeze` and `unfreeze`) with who and why.

use crate::cli::Cli;
use crate::config::Config;
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::freeze::{clear_command, set_command, Freeze};
use crate::history::{self, HostRecord, HostResult, Outcome, Record};
use crate::transport::{self, Exec};

use super::setup::{load_config, stage_fleet};

/// What the command does to the stage, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// `deployer freeze STAGE --reason REASON`.
    Freeze(&'a str),
    /// `deployer unfreeze STAGE [--reason REASON]`.
    Unfreeze(Option<&'a str>),
}

/// `deployer freeze STAGE --reason REASON` or `unfreeze STAGE`: the
/// configuration loaded, the stage's hosts connected to, then [`apply`].
pub(super) fn command(
    cli: &Cli,
    console: &Console,
    stage: &str,
    change: Change<'_>,
) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    let fleet = stage_fleet(cli, &config, stage)?;
    apply(&config, console, fleet, stage, change)
}

/// Freeze or unfreeze `stage` on every host of `fleet` (the stage's
/// hosts). Every host must be reached: a freeze that only some hosts know
/// about would be worse than none.
pub fn apply(
    config: &Config,
    console: &Console,
    mut fleet: Fleet,
    stage: &str,
    change: Change<'_>,
) -> Result<ExitStatus, Fatal> {
    // `reason`: the freeze's own (written on the hosts); `why`: the record's
    let (action, reason, why) = match change {
        Change::Freeze(r) => ("freeze", Some(r), Some(r)),
        Change::Unfreeze(r) => ("unfreeze", None, r),
    };
    let attempt = history::Attempt::start(action);
    let record_line = reason.map(|r| {
        Freeze {
            stage: stage.to_string(),
            by: attempt.operator().display(),
            since: history::now_rfc3339(),
            reason: r.to_string(),
        }
        .to_line()
    });
    let command = if record_line.is_some() {
        set_command(stage)
    } else {
        clear_command(stage)
    };
    let timeout = config.ssh.command_timeout;
    let reports = fleet.stage_status(stage, &config.packages, timeout);
    if reason.is_none() && not_frozen(&reports, stage) {
        // nothing to undo: no host is written, and no record claims a
        // change (nor a refusal: the stage is as the operator wants it)
        console.say(&format!(
            "Stage `{stage}` is not frozen on any of its {} host(s); nothing changed.",
            reports.len()
        ));
        return Ok(ExitStatus::Success);
    }
    // a freeze is written where it is missing: on every host the first
    // time; a second freeze completes one a host that was down missed,
    // with the record that stands, and never replaces its reason
    let mut record_line = record_line;
    let mut why = why.map(str::to_string);
    let mut only: Option<Vec<String>> = None;
    if reason.is_some() {
        let existing: Vec<(&String, &Freeze)> = reports
            .iter()
            .filter_map(|r| r.result.as_ref().ok().map(|s| (&r.host, s)))
            .flat_map(|(host, s)| {
                s.freezes
                    .iter()
                    .filter(|f| f.applies_to(stage))
                    .map(move |f| (host, f))
            })
            .collect();
        let lacking: Vec<String> = reports
            .iter()
            .filter(|r| {
                r.result
                    .as_ref()
                    .map_or(true, |s| !s.freezes.iter().any(|f| f.applies_to(stage)))
            })
            .map(|r| r.host.clone())
            .collect();
        // the record to complete with: the stage's own, readable, one
        let standing = existing.iter().map(|(_, f)| *f).find(|f| f.stage == stage);
        match (existing.is_empty(), standing) {
            (true, _) => {}
            (false, Some(first)) if !lacking.is_empty() => {
                console.say(&format!(
                    "Stage `{stage}` is already frozen on {} of {} host(s) ({}); completing the \
                     freeze on {} with that record (the reason given now is not used).",
                    existing.len(),
                    reports.len(),
                    first.describe(),
                    lacking.join(", ")
                ));
                record_line = Some(first.to_line());
                why = Some(format!(
                    "completing the freeze: {}",
                    crate::text::one_line(&first.reason)
                ));
                only = Some(lacking);
            }
            _ => {
                let reason = reason.unwrap_or_default().to_string();
                let record = attempt.refused(stage, reason);
                history::put_on_record(&config.history_file, console, &record);
                let mut f = Fatal::usage(format!("stage `{stage}` is already frozen"))
                    .status(ExitStatus::Refused);
                f.notes = existing
                    .iter()
                    .map(|(host, f)| format!("{host}: {}", f.describe()))
                    .collect();
                f.notes.push(format!(
                    "the first freeze stands; to change its reason, `deployer unfreeze {stage}` and freeze again"
                ));
                return Err(f);
            }
        }
    }
    // root writes the record: sudo must work wherever it is written
    let answers = crate::sudo::ask_stage(&mut fleet, stage, timeout);
    if let Some(f) = crate::sudo::refusal(action, stage, &answers) {
        let why = match &why {
            Some(r) => format!("{}: {r}", f.message),
            None => f.message.clone(),
        };
        history::put_on_record(&config.history_file, console, &attempt.refused(stage, why));
        return Err(f);
    }
    let results = fleet.on_each(
        |t| t.stage == stage && only.as_ref().is_none_or(|o| o.contains(&t.host)),
        |m| {
            let answer = m.exec(Exec {
                command: &command,
                timeout,
                stdin: record_line.as_deref().map(str::as_bytes),
                on_output: None,
            });
            (m.host().to_string(), answer)
        },
    );
    let mut hosts = Vec::new();
    let mut problems = Vec::new();
    // hosts that could not be reached at all, apart from those that
    // failed the change: a freeze the others have still holds
    let mut unreached = 0;
    for (host, r) in &results {
        let failure = match r {
            Ok(out) if out.success() => None,
            Ok(out) => Some(transport::failure(out)),
            Err(e) => {
                unreached += 1;
                Some(e.to_string())
            }
        };
        if let Some(f) = &failure {
            problems.push(format!("{host}: {f}"));
        }
        hosts.push(HostRecord {
            host: host.clone(),
            from: None,
            to: None,
            result: if failure.is_some() {
                HostResult::Failed
            } else {
                HostResult::Changed
            },
            message: failure,
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        });
    }
    let outcome = match (problems.len(), hosts.len()) {
        (0, _) => Outcome::Success,
        (p, h) if p == h => Outcome::Failed,
        _ => Outcome::Partial,
    };
    let record = Record {
        reason: why,
        hosts,
        ..attempt.record(stage, outcome)
    };
    history::put_on_record(&config.history_file, console, &record);
    crate::notify::announce_or_warn(&config.notify, console, &record);
    let done = if reason.is_some() {
        "frozen"
    } else {
        "unfrozen"
    };
    let changed = results.len() - problems.len();
    if problems.is_empty() {
        console.say(&format!(
            "Stage `{stage}` is now {done} on {changed} host(s)."
        ));
        return Ok(ExitStatus::Success);
    }
    let again = format!(
        "run `deployer {action} {stage}` again once those hosts answer: it completes the {action} there"
    );
    if unreached == problems.len() && (changed > 0 || only.is_some()) {
        // the hosts that answered are done; those down are named, and
        // the status (3, as for any command that served only some hosts)
        // says so
        console.say(&match &only {
            Some(_) => format!(
                "The freeze of `{stage}` is now completed on {changed} of the {} host(s) that lacked it.",
                results.len()
            ),
            None => format!(
                "Stage `{stage}` is now {done} on {changed} of {} host(s).",
                results.len()
            ),
        });
        console.warn(&format!(
            "{} host(s) of `{stage}` could not be reached and are not {done}; {again}",
            problems.len()
        ));
        for p in &problems {
            console.report(&format!("  not {done}: {p}"));
        }
        return Ok(ExitStatus::Unreachable);
    }
    let mut f = Fatal::usage(format!(
        "could not {action} `{stage}` on {} of {} host(s)",
        problems.len(),
        results.len()
    ))
    .status(if outcome == Outcome::Failed {
        ExitStatus::FailedUnchanged
    } else {
        ExitStatus::FailedPartial
    });
    f.notes = problems;
    f.notes.push(again);
    Err(f)
}

/// Whether every host of `stage` answered and none holds a freeze of it
/// (an unreadable record counts as one). A host that did not answer
/// leaves the question open: the unfreeze then goes ahead, and fails
/// there as any change does.
fn not_frozen(reports: &[crate::matrix::HostReport], stage: &str) -> bool {
    reports.iter().all(|r| {
        r.result
            .as_ref()
            .is_ok_and(|s| !s.freezes.iter().any(|f| f.applies_to(stage)))
    })
}
