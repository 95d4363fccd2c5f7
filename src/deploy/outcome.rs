//! What a rollout and its rollback did, as values: per host, what was done
//! ([`Done`]), what the rollback policy did ([`Rollback`]) and what the
//! service step left ([`Watched`]); for the rollout, why it stopped early
//! ([`Stop`]). Pure: [`super::rollout`] and [`super::rollback`] fill them
//! in, [`super::report`] reads them.

use crate::history::{GateRecord, RestartRecord};
use crate::status::PackageState;

/// What happened to one host of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Now runs the target version (and passed its health check).
    Changed,
    /// Failed; `now` is its state afterwards, `None` when unknown.
    Failed {
        /// Why, in one line.
        why: String,
        /// What the host printed (apt, dpkg, the health check).
        output: String,
        /// Its state afterwards, when it could be read.
        now: Option<PackageState>,
    },
    /// Not tried, because the rollout stopped.
    Untouched,
}

impl Done {
    /// Whether the host may no longer be in its state from before.
    pub fn touched(&self, from: &PackageState) -> bool {
        match self {
            Done::Changed => true,
            Done::Failed { now, .. } => !now.as_ref().is_some_and(|n| n.same_as(from)),
            Done::Untouched => false,
        }
    }
}

/// What the rollback policy did to one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// Nothing to do (no failure, policy off, or the host was not touched).
    NotNeeded,
    /// The host runs its previous version again.
    Restored,
    /// The rollback failed; why.
    Failed(String),
}

/// What the service step left for one host's record: the restart, and
/// the service's last log lines when the host failed; and the warning of
/// a `.deb` not kept in its cache; and its gates' evaluations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    /// How the restart went, when the package restarts its service.
    pub restart: Option<RestartRecord>,
    /// The last log lines ([`crate::service::TAIL_LINES`]) of a failed host.
    pub log_tail: Vec<String>,
    /// Why the `.deb` the host ran could not be kept in its cache (a
    /// warning for its record), when it could not.
    pub kept: Option<String>,
    /// Every evaluation of a gate on the host during its batch's bake.
    pub gates: Vec<GateRecord>,
}

/// Why a rollout stopped before its last batch without a host failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A signal (SIGINT, SIGTERM, SIGHUP).
    Signal,
    /// The stage was frozen during the rollout; the lines say by whom.
    Frozen(Vec<String>),
    /// Whether the stage was frozen could not be checked on some hosts;
    /// the lines say why.
    FreezeUnknown(Vec<String>),
    /// Alerts started firing during the rollout; the lines name them.
    Alerts(Vec<String>),
    /// Alertmanager could not be asked during the rollout (and
    /// `on_unreachable = refuse`); the line says why.
    AlertsUnknown(Vec<String>),
    /// The stage's deploy window closed during the rollout; the lines say
    /// why and when it opens again.
    WindowClosed(Vec<String>),
}

/// What a rollout did.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// One entry per step of the plan.
    pub done: Vec<Done>,
    /// Why it stopped early, if it did.
    pub stopped: Option<Stop>,
    /// One entry per step of the plan: its service's restart and logs.
    pub watched: Vec<Watched>,
    /// Whether failures halted it: the canary failed, a host was left in
    /// an unknown state, or more hosts failed than the failure budget
    /// allows ([`crate::plan::Sizing::halts`]).
    /// Failed hosts in a rollout not halted were within the budget.
    pub halted: bool,
}

impl Rollout {
    /// How many hosts failed.
    pub fn failures(&self) -> usize {
        self.done
            .iter()
            .filter(|d| matches!(d, Done::Failed { .. }))
            .count()
    }

    /// Whether it went to its end with failed hosts, all within the
    /// failure budget.
    pub fn failed_within_budget(&self) -> bool {
        !self.halted && self.stopped.is_none() && self.failures() > 0
    }
}
