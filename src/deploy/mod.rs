//! Deploys, rollbacks and promotions, carried out through the fleet with
//! every safety rail checked before the first host is touched.
//!
//! [`run`] reads as the list of phases, each in its own module:
//! - [`request`]: what was typed, validated before any connection, then
//!   turned into a target stage and version;
//! - [`preflight`]: reachability, freezes, sudo, the deploy lock, fresh apt
//!   lists, the states read again under the lock, what apt can install, and
//!   the plan (`plan` decides; preflight gathers the facts);
//! - [`execute`]: the batches, each host's install, verification and health
//!   check, and the rollback policy;
//! - [`report`]: the outcome as report lines, history records and an exit
//!   status (pure).
//!
//! Every attempt, whatever its outcome, is recorded in the history.

pub mod execute;
pub mod preflight;
pub mod report;
pub mod request;
#[cfg(test)]
mod tests;

use std::time::Instant;

use crate::config::Config;
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::history::{self, HostRecord, Outcome, Record};
use crate::interrupt::Interrupt;
use crate::matrix::{self, HostReport, Matrix};
use crate::package::PackageName;
use crate::plan::Wanted;
use crate::version::Version;

pub use request::{
    check_package, check_stage, check_version, record_rejected, validate, Checked, Options, Request,
};

/// What every phase needs: the configuration, where to talk, the options,
/// and whether the operator asked to stop.
pub struct Context<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// Output and prompt.
    pub console: &'a Console,
    /// How to carry it out.
    pub opts: &'a Options,
    /// Signals received.
    pub interrupt: &'a Interrupt,
}

/// One attempt, as the history will record it: filled in as the phases
/// learn more, recorded once (or at each milestone) by [`Attempt::record`].
pub struct Attempt {
    started: Instant,
    pub(crate) action: &'static str,
    pub(crate) package: PackageName,
    pub(crate) stage: String,
    pub(crate) version: Option<Version>,
    pub(crate) forced: bool,
    dry_run: bool,
    history: std::path::PathBuf,
}

impl Attempt {
    fn new(cx: &Context<'_>, checked: &Checked, stage: &str) -> Attempt {
        Attempt {
            started: Instant::now(),
            action: checked.action,
            package: checked.package.clone(),
            stage: stage.to_string(),
            version: checked.version.clone(),
            forced: cx.opts.force || cx.opts.override_freeze,
            dry_run: cx.opts.dry_run,
            history: cx.config.history_file.clone(),
        }
    }

    /// The version aimed for, once known.
    pub fn aim(&mut self, version: &Version) {
        self.version = Some(version.clone());
    }

    /// The history record of this attempt with `outcome`.
    pub fn to_record(
        &self,
        outcome: Outcome,
        reason: Option<String>,
        hosts: Vec<HostRecord>,
    ) -> Record {
        Record {
            package: Some(self.package.to_string()),
            version: self.version.as_ref().map(ToString::to_string),
            reason,
            forced: self.forced,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            hosts,
            ..Record::begin(self.action, &self.stage, outcome)
        }
    }

    /// Append the record to the history (never for a dry run).
    pub fn record(&self, outcome: Outcome, reason: Option<String>, hosts: Vec<HostRecord>) {
        if self.dry_run {
            return;
        }
        history::append_or_warn(&self.history, &self.to_record(outcome, reason, hosts));
    }

    /// Refuse: record it and build the error (exit status 6).
    pub fn refuse(&self, message: String, notes: Vec<String>) -> Fatal {
        self.record(Outcome::Refused, Some(message.clone()), Vec::new());
        let mut f = Fatal::usage(message).status(ExitStatus::Refused);
        f.notes = notes;
        f.notes.push("no host was changed".to_string());
        f
    }

    /// Fail before any change: record it and build the error (exit status 7).
    pub fn fail_unchanged(&self, message: String, notes: Vec<String>) -> Fatal {
        self.record(Outcome::Failed, Some(message.clone()), Vec::new());
        let mut f = Fatal::usage(message).status(ExitStatus::FailedUnchanged);
        f.notes = notes;
        f.notes.push("no package was changed".to_string());
        f
    }
}

/// The hosts' states, and the matrix of the stages connected to.
pub struct Facts {
    /// What each host said.
    pub reports: Vec<HostReport>,
    /// The matrix of those stages.
    pub matrix: Matrix,
}

/// Read every connected host's state and build the matrix.
pub fn read_facts(cx: &Context<'_>, fleet: &mut Fleet, stages: Option<&[usize]>) -> Facts {
    let reports = fleet.status(&cx.config.packages, cx.config.ssh.command_timeout);
    let matrix = matrix::for_config(cx.config, stages, &reports);
    Facts { reports, matrix }
}

/// Deploy, roll back or promote what [`validate`] accepted. `fleet` holds
/// the stages [`request::stages_needed`] names (or every stage). Returns
/// the exit status; refusals and failures before any change come back as
/// [`Fatal`].
pub fn run(cx: &Context<'_>, mut fleet: Fleet, checked: &Checked) -> Result<ExitStatus, Fatal> {
    let config = cx.config;
    let connected = request::stages_needed(checked);
    let before = read_facts(cx, &mut fleet, connected.as_deref());
    cx.console.matrix("Before:", &before.matrix);

    // 1. which stage, which version
    let target = match request::target(config, checked, &before.matrix, &before.reports) {
        Ok(t) => t,
        Err(request::NoTarget::NothingToPromote) => {
            cx.console.say(&format!(
                "Nothing to promote: no stage is behind its left neighbour for `{}`.",
                checked.package
            ));
            return Ok(ExitStatus::Success);
        }
        Err(request::NoTarget::SourceDisagrees { stage, hosts }) => {
            let name = &config.stages[stage].name;
            let attempt = Attempt::new(cx, checked, name);
            return Err(attempt.refuse(
                format!(
                    "cannot promote `{}` to `{name}`: the hosts of `{}` do not all run one installed version",
                    checked.package,
                    config.stages[stage - 1].name
                ),
                hosts,
            ));
        }
    };
    let stage = &config.stages[target.stage];
    let mut attempt = Attempt::new(cx, checked, &stage.name);
    if let Wanted::Exact(v) = &target.wanted {
        attempt.aim(v);
    }

    // 2. every check that needs no change, then the lock and what it guards
    let prepared = preflight::prepare(cx, &mut fleet, &mut attempt, &target, before)?;
    if cx.opts.dry_run {
        preflight::show_dry_run(cx, &prepared);
        return Ok(ExitStatus::Success);
    }
    let plan = &prepared.plan;
    if plan.steps.is_empty() {
        cx.console.say(&plan.describe(&[]));
        attempt.record(
            Outcome::Success,
            Some("nothing to do".into()),
            report::unchanged_records(plan),
        );
        return Ok(ExitStatus::Success);
    }
    preflight::confirm(cx, &attempt, &prepared)?;

    // 3. the rollout, and the rollback policy
    let rollout = execute::rollout(cx, &mut fleet, &prepared);
    let rollback = execute::rollback_if_failed(cx, &mut fleet, plan, &rollout);

    // 4. the outcome
    let after = read_facts(cx, &mut fleet, connected.as_deref());
    cx.console.matrix("\nAfter:", &after.matrix);
    let summary = report::summarize(plan, &rollout, &rollback);
    cx.console.say(&summary.heading);
    for line in &summary.lines {
        cx.console.say(line);
    }
    let reason = report::reason(cx.opts, plan, &rollout, &summary.records);
    attempt.record(summary.outcome, reason, summary.records.clone());
    execute::tell_syslog(cx, &mut fleet, &attempt, plan, summary.outcome);
    fleet.release(&stage.name);
    Ok(summary.status)
}
