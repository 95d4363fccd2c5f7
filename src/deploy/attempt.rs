//! One attempt, as the history will record it: a value, filled in as the
//! phases learn more (the version aimed for, the changelog entries), from
//! which every record of the attempt is made. Putting those records on
//! file is [`super::record`]'s job.

use crate::history::{self, HostRecord, Outcome, Record};
use crate::package::PackageName;
use crate::version::Version;

use super::request::Checked;

/// One attempt, as the history will record it. Every record of it shares
/// its id and start time.
#[derive(Debug, Clone)]
pub struct Attempt {
    inner: history::Attempt,
    pub(crate) action: &'static str,
    pub(crate) package: PackageName,
    pub(crate) stage: String,
    pub(crate) version: Option<Version>,
    pub(crate) forced: bool,
    /// The changelog entries this attempt sends out or takes back, once
    /// the plan is made.
    pub(crate) changes: Vec<crate::changelog::Summary>,
    /// A rollback allowed into a frozen stage (a version the stage ran
    /// before), once the preflight has let it through.
    pub(crate) under_freeze: bool,
    /// The alerts `--override-freeze` went through (one line each), once
    /// the preflight has let it through ([`super::alert_hold`]).
    pub(crate) alerts_overridden: Vec<String>,
    /// How the rollout kept to the stage's failure budget, once it has
    /// run, when the stage sets `max_failures`.
    pub(crate) failure_budget: Option<history::FailureBudget>,
    /// The closed deploy window `--override-freeze` went through, once
    /// the preflight has let it through ([`super::window_hold`]).
    pub(crate) window_overridden: Option<String>,
    /// The approvals of a `--plan` attempt, once verified.
    pub(crate) approvals: Vec<history::Approval>,
}

impl Attempt {
    /// The attempt `started` at what `checked` asks for, on `stage`;
    /// `forced` when a safety check is overridden (`--force`,
    /// `--override-freeze`).
    pub fn new(
        started: &history::Attempt,
        checked: &Checked,
        stage: &str,
        forced: bool,
    ) -> Attempt {
        Attempt {
            inner: started.clone(),
            action: checked.action,
            package: checked.package.clone(),
            stage: stage.to_string(),
            version: checked.version.clone(),
            forced,
            changes: Vec::new(),
            under_freeze: false,
            alerts_overridden: Vec::new(),
            failure_budget: None,
            window_overridden: None,
            approvals: Vec::new(),
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
            reason,
            hosts,
            ..self.detailed(self.inner.record(&self.stage, outcome))
        }
    }

    /// The record of this attempt refused before any host was changed,
    /// made as every command's refusal is ([`history::Attempt::refused`]),
    /// with what a deploy adds: the package, the version aimed for.
    pub fn refused(&self, reason: String) -> Record {
        // refused, it was not carried out under any freeze
        Record {
            under_freeze: false,
            alerts_overridden: Vec::new(),
            window_overridden: None,
            ..self.detailed(self.inner.refused(&self.stage, reason))
        }
    }

    /// `base` with what a deploy's records add to every record.
    fn detailed(&self, base: Record) -> Record {
        Record {
            package: Some(self.package.to_string()),
            version: self.version.as_ref().map(ToString::to_string),
            forced: self.forced,
            changes: self.changes.clone(),
            under_freeze: self.under_freeze,
            alerts_overridden: self.alerts_overridden.clone(),
            failure_budget: self.failure_budget.clone(),
            window_overridden: self.window_overridden.clone(),
            approvals: self.approvals.clone(),
            ..base
        }
    }
}
