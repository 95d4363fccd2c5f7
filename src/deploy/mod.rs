//! Deploys, rollbacks and promotions, carried out through the fleet with
//! every safety rail checked before the first host is touched.
//!
//! [`run`] reads as the list of phases, each in its own module:
//! - [`request`]: what was typed, validated before any connection, then
//!   turned into a target stage and version;
//! - [`preflight`]: reachability, freezes, sudo, the deploy lock, fresh apt
//!   lists, the states read again under the lock, dpkg idle, what apt can
//!   install, and the plan (`plan` decides; preflight gathers the facts);
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

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::history::{self, HostRecord, HostResult, Outcome, Record};
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
/// learn more. Every record of it shares its id and start time.
pub struct Attempt<'a> {
    inner: history::Attempt,
    pub(crate) action: &'static str,
    pub(crate) package: PackageName,
    pub(crate) stage: String,
    pub(crate) version: Option<Version>,
    pub(crate) forced: bool,
    /// The changelog entries this attempt sends out or takes back, once
    /// the plan is made.
    pub(crate) changes: Vec<crate::changelog::Summary>,
    dry_run: bool,
    history: std::path::PathBuf,
    /// Where a refusal's record goes for `--json`.
    console: &'a Console,
}

impl<'a> Attempt<'a> {
    fn new(
        cx: &Context<'a>,
        inner: &history::Attempt,
        checked: &Checked,
        stage: &str,
    ) -> Attempt<'a> {
        Attempt {
            inner: inner.clone(),
            action: checked.action,
            package: checked.package.clone(),
            stage: stage.to_string(),
            version: checked.version.clone(),
            forced: cx.opts.force || cx.opts.override_freeze,
            changes: Vec::new(),
            dry_run: cx.opts.dry_run,
            history: cx.config.history_file.clone(),
            console: cx.console,
        }
    }

    /// The version aimed for, once known.
    pub fn aim(&mut self, version: &Version) {
        self.version = Some(version.clone());
    }

    /// The attempt's id.
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// Who runs it, as `user@machine`.
    pub fn who(&self) -> String {
        self.inner.operator().display()
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
            hosts,
            changes: self.changes.clone(),
            ..self.inner.record(&self.stage, outcome)
        }
    }

    /// Append the record to the history (never for a dry run); returns it.
    pub fn record(
        &self,
        outcome: Outcome,
        reason: Option<String>,
        hosts: Vec<HostRecord>,
    ) -> Record {
        let record = self.to_record(outcome, reason, hosts);
        if !self.dry_run {
            history::append_or_warn(&self.history, &record);
        }
        record
    }

    /// Should a signal stop deployer before any host is changed, record
    /// this attempt (as known so far) as interrupted. Not for a dry run.
    fn record_if_stopped(&self, cx: &Context<'_>) {
        if self.dry_run {
            return;
        }
        let record = self.to_record(
            Outcome::Interrupted,
            Some("interrupted before any host was changed".into()),
            Vec::new(),
        );
        let path = self.history.clone();
        cx.interrupt
            .on_exit(move || history::append_or_warn(&path, &record));
    }

    /// Record an attempt that ends before any change, and make that record
    /// the command's `--json` document (a dry run records nothing, and
    /// prints no record).
    fn record_ended(&self, outcome: Outcome, message: &str) {
        let record = self.record(outcome, Some(message.to_string()), Vec::new());
        if !self.dry_run {
            self.console
                .document(serde_json::to_value(&record).expect("a record is JSON"));
        }
    }

    /// Refuse: record it (also as the `--json` document) and build the
    /// error (exit status 6).
    pub fn refuse(&self, message: String, notes: Vec<String>) -> Fatal {
        self.record_ended(Outcome::Refused, &message);
        let mut f = Fatal::usage(message).status(ExitStatus::Refused);
        f.notes = notes;
        f.notes.push("no host was changed".to_string());
        f
    }

    /// Fail before any change: record it (also as the `--json` document)
    /// and build the error (exit status 7).
    pub fn fail_unchanged(&self, message: String, notes: Vec<String>) -> Fatal {
        self.record_ended(Outcome::Failed, &message);
        let mut f = Fatal::usage(message).status(ExitStatus::FailedUnchanged);
        f.notes = notes;
        f.notes.push("no package was changed".to_string());
        f
    }
}

/// The attempt's record while hosts are being changed, kept current host
/// by host, so that a second signal can record what is known and exit.
#[derive(Clone)]
pub struct Journal {
    record: Arc<Mutex<Record>>,
    history: std::path::PathBuf,
}

/// What a host still in progress is recorded as when deployer is stopped
/// at once.
const IN_FLIGHT: &str = "in progress when deployer was stopped: check with `deployer status`";

/// What a host being rolled back is recorded as when deployer is stopped
/// at once.
const ROLLING_BACK: &str =
    "being rolled back when deployer was stopped: check with `deployer status`";

impl Journal {
    fn new(started: &Record, history: &std::path::Path) -> Journal {
        Journal {
            record: Arc::new(Mutex::new(started.clone())),
            history: history.to_path_buf(),
        }
    }

    fn with(&self, change: impl FnOnce(&mut Record)) {
        change(&mut self.record.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// These hosts are being changed now.
    pub fn in_flight(&self, hosts: &[&str]) {
        self.unknown(hosts, IN_FLIGHT);
    }

    /// These hosts are being rolled back now.
    pub fn rolling_back(&self, hosts: &[&str]) {
        self.unknown(hosts, ROLLING_BACK);
    }

    fn unknown(&self, hosts: &[&str], why: &str) {
        self.with(|r| {
            for h in r
                .hosts
                .iter_mut()
                .filter(|h| hosts.contains(&h.host.as_str()))
            {
                h.result = HostResult::Unknown;
                h.message = Some(why.to_string());
            }
        });
    }

    /// This host is done.
    pub fn done(&self, host: HostRecord) {
        self.with(|r| {
            if let Some(h) = r.hosts.iter_mut().find(|h| h.host == host.host) {
                *h = host;
            }
        });
    }

    /// Record the attempt as interrupted at once (second signal): hosts not
    /// started are untouched, hosts in flight unknown.
    pub fn record_abandoned(&self) {
        let mut record = self
            .record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        record.outcome = Outcome::Interrupted;
        record.reason = Some(
            "a second signal stopped deployer at once; hosts in progress are in an unknown state"
                .to_string(),
        );
        for h in &mut record.hosts {
            if h.result == HostResult::Planned {
                h.result = HostResult::Untouched;
            }
        }
        history::append_or_warn(&self.history, &record);
    }
}

/// Host-provided text for a report or error line: one line, control
/// characters made visible, clipped to a readable length.
pub(crate) fn remote_text(s: &str) -> String {
    crate::text::clip(&crate::text::one_line(s), crate::error::REMOTE_TEXT_MAX)
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
    let started = history::Attempt::start(checked.action);
    // a signal while the hosts are read is an attempt too: on record
    let named = checked.stage.map_or("", |i| config.stages[i].name.as_str());
    Attempt::new(cx, &started, checked, named).record_if_stopped(cx);
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
            let attempt = Attempt::new(cx, &started, checked, name);
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
    let mut attempt = Attempt::new(cx, &started, checked, &stage.name);
    if let Wanted::Exact(v) = &target.wanted {
        attempt.aim(v);
    }
    attempt.record_if_stopped(cx);

    // 2. every check that needs no change, then the lock and what it guards
    let prepared = preflight::prepare(cx, &mut fleet, &mut attempt, &target, before)?;
    if cx.opts.dry_run {
        preflight::show_dry_run(cx, &prepared);
        return Ok(ExitStatus::Success);
    }
    let plan = &prepared.plan;
    if plan.steps.is_empty() {
        cx.console.say(&plan.describe(&[]));
        let record = attempt.record(
            Outcome::Success,
            Some("nothing to do".into()),
            report::unchanged_records(plan),
        );
        cx.console
            .document(serde_json::to_value(&record).expect("a record is JSON"));
        return Ok(ExitStatus::Success);
    }
    preflight::confirm(cx, &attempt, &prepared)?;
    if cx.interrupt.requested() {
        return Err(attempt.refuse("interrupted before any host was changed".into(), Vec::new()));
    }

    // 3. the attempt is on record, here and on its hosts, before any change
    let journal = execute::start(cx, &mut fleet, &attempt, plan)?;
    let last_words = journal.clone();
    cx.interrupt.on_exit(move || last_words.record_abandoned());
    cx.interrupt.changing();

    // 4. the rollout, and the rollback policy
    let rollout = execute::rollout(cx, &mut fleet, &prepared, &attempt, &journal);
    let rollback =
        execute::rollback_if_failed(cx, &mut fleet, &prepared, &rollout, &attempt, &journal);

    // 5. the outcome
    let after = read_facts(cx, &mut fleet, connected.as_deref());
    cx.console.matrix("\nAfter:", &after.matrix);
    let summary = report::summarize(plan, &rollout, &rollback);
    // a failure is reported even with --quiet
    let tell = |text: &str| match summary.status {
        ExitStatus::Success => cx.console.say(text),
        _ => cx.console.report(text),
    };
    tell(&summary.heading);
    for line in &summary.lines {
        tell(line);
    }
    let reason = report::reason(cx.opts, plan, &rollout, &summary.records);
    let record = attempt.record(summary.outcome, reason, summary.records.clone());
    execute::publish(cx, &mut fleet, plan, &record);
    execute::announce(cx, &record);
    cx.console
        .document(serde_json::to_value(&record).expect("a record is JSON"));
    execute::refresh_badges(
        cx,
        &mut fleet,
        &attempt,
        &after,
        &stage.name,
        &summary.records,
    );
    fleet.release(&stage.name);
    Ok(summary.status)
}
