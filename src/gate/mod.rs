//! Gates: the evidence a canary (and each later batch) must show before a
//! rollout goes on. A `[gate:NAME]` section is one [`Gate`]: what to look
//! at ([`Check`]: a Prometheus query, an HTTP URL, or a command on the
//! host), how often and for how long ([`Gate::interval`], [`Span`]), how
//! many bad evaluations it tolerates, and what no data means
//! ([`NoData`], `fail` by default: no data is not success).
//!
//! The parts, pure but for [`probe`]:
//! - [`template`]: `{host}`, `{address}`, `{stage}`, `{package}`,
//!   `{version}` filled in per host, escaped for PromQL or URLs;
//! - [`condition`]: `< 0.01`, `>= 0.99`;
//! - [`engine`]: one gate on one host as a state machine fed with
//!   (time, reading), and [`engine::judge`], which turns what was observed
//!   (the host's value, and its peers' with `compare = others`) into a
//!   reading;
//! - [`probe`]: the observations themselves, from Prometheus' HTTP API
//!   and from an HTTP URL (I/O at the edge).
//!
//! The bake, which runs the engines of a batch against the clock, the
//! console and the operator, is a phase of the deploy (`deploy::bake`).

pub mod condition;
pub mod engine;
pub mod probe;
pub mod template;

use std::time::Duration;

pub use condition::Condition;
pub use template::Template;

/// The default `interval`: time between two evaluations of a gate.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The default `bake` of a stage with gates: how long its canary must stay
/// good before the next batch starts.
pub const DEFAULT_BAKE: Duration = Duration::from_secs(300);

/// The default `batch_bake`: later batches pass each gate once, with no
/// waiting; the canary carries the long look.
pub const DEFAULT_BATCH_BAKE: Duration = Duration::ZERO;

/// The default expected `status` of an `http` gate.
pub const DEFAULT_STATUS: u16 = 200;

/// One `[gate:NAME]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// NAME.
    pub name: String,
    /// What is looked at.
    pub check: Check,
    /// `interval`: time between two evaluations.
    pub interval: Duration,
    /// `bake` or `count`, when the gate sets its own (on the canary);
    /// `None`: the stage's `bake`.
    pub span: Option<Span>,
    /// `failure_limit`: failed evaluations tolerated before the gate
    /// fails (default 0).
    pub failure_limit: u32,
    /// `no_data`: what an evaluation without data counts as.
    pub no_data: NoData,
}

/// What a gate looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `kind = prometheus`: an instant query, one value per host.
    Prometheus {
        /// `url`: the server (templated).
        url: Template,
        /// `query`: the PromQL (templated, values escaped for PromQL).
        query: Template,
        /// `condition`: what the host's value must satisfy.
        condition: Option<Condition>,
        /// `compare = others`: the host against the stage's other hosts.
        compare: Option<Compare>,
    },
    /// `kind = http`: a GET from this machine.
    Http {
        /// `url` (templated, values percent-encoded).
        url: Template,
        /// `status`: the status expected (default 200).
        status: u16,
        /// `body`: text the body must contain.
        body: Option<String>,
    },
    /// `kind = command`: a shell command on the host, which must exit 0
    /// (its text is trusted configuration, never shown).
    Command {
        /// `command`.
        command: String,
    },
}

impl Check {
    /// `prometheus`, `http` or `command`.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Prometheus { .. } => "prometheus",
            Check::Http { .. } => "http",
            Check::Command { .. } => "command",
        }
    }
}

/// `compare = others`: the host's value against the mean of the values of
/// the stage's other hosts (the same query, templated for each). A higher
/// value is worse. With both limits, both must hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compare {
    /// `max_ratio`: the host's value may be at most this times the mean.
    pub max_ratio: Option<f64>,
    /// `max_delta`: the host's value may exceed the mean by at most this.
    pub max_delta: Option<f64>,
}

/// How long a gate is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// `bake`: every `interval` for this long (once, at the start, when
    /// zero), the last evaluation at its end.
    Bake(Duration),
    /// `count`: this many evaluations, `interval` apart.
    Count(u32),
}

/// `no_data`: what an evaluation without data (an empty answer, NaN)
/// counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoData {
    /// A failed evaluation (the default: no data is not success).
    #[default]
    Fail,
    /// The rollout pauses: on a terminal the operator decides; without
    /// one, the gate fails.
    Pause,
    /// A passed evaluation.
    Pass,
}

impl NoData {
    /// `fail`, `pause` or `pass`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoData::Fail => "fail",
            NoData::Pause => "pause",
            NoData::Pass => "pass",
        }
    }
}
