//! Which badges the pipeline has and what each one says: one per package
//! and stage (the stage's cell of the version matrix), and one per package
//! and host (what that host runs). Pure: from the matrix and the hosts'
//! reports to [`Badge`] values; writing them is `publish`'s job.
//!
//! A badge's colour is its [`Meaning`], decided in this order: absent or
//! unknown (grey), broken, regression against the previous stage, hosts
//! of the stage that disagree, frozen stage, rollout pending towards the
//! next stage, in step.

use crate::badge::{Badge, Meaning};
use crate::error::HostError;
use crate::matrix::{Cell, HostReport, Marker, Matrix};
use crate::package::PackageName;
use crate::status::{HostStatus, PackageState};

/// A stage's badge for one package: `DIR/STAGE/PKG.svg`.
#[derive(Debug, Clone)]
pub struct StageBadge {
    /// The stage.
    pub stage: String,
    /// The package.
    pub package: PackageName,
    /// The badge.
    pub badge: Badge,
}

/// A host's badge for one package: `BADGES_PATH/PKG.svg` on the host, and
/// `DIR/host/HOST/PKG.svg` locally.
#[derive(Debug, Clone)]
pub struct HostBadge {
    /// The host's stage.
    pub stage: String,
    /// The host as written in the configuration.
    pub host: String,
    /// The package.
    pub package: PackageName,
    /// The badge.
    pub badge: Badge,
}

/// Every badge of the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// One per stage and package, stages left to right, packages in
    /// configuration order.
    pub stages: Vec<StageBadge>,
    /// One per host and package, hosts in report order.
    pub hosts: Vec<HostBadge>,
}

/// The badges of the matrix `m`, built from `reports`.
pub fn board(m: &Matrix, reports: &[HostReport]) -> Board {
    let mut b = Board::default();
    for (col, column) in m.columns.iter().enumerate() {
        for row in 0..m.rows.len() {
            b.stages.push(StageBadge {
                stage: column.name.clone(),
                package: m.rows[row].package.clone(),
                badge: stage_badge(m, row, col),
            });
        }
    }
    for report in reports {
        let Some(col) = m.columns.iter().position(|c| c.name == report.stage) else {
            continue;
        };
        for row in 0..m.rows.len() {
            b.hosts.push(HostBadge {
                stage: report.stage.clone(),
                host: report.host.clone(),
                package: m.rows[row].package.clone(),
                badge: host_badge(m, row, col, &report.result),
            });
        }
    }
    b
}

/// The badge of package `row` on stage `col`.
pub fn stage_badge(m: &Matrix, row: usize, col: usize) -> Badge {
    let cell = &m.rows[row].cells[col];
    let (message, own) = match cell {
        Cell::Unknown => ("unreachable".to_string(), Some(Meaning::Absent)),
        Cell::Uniform(s) => (state_message(s), state_meaning(s)),
        Cell::Mixed { lowest, others } => {
            let noun = if *others == 1 { "other" } else { "others" };
            let meaning = if matches!(lowest, PackageState::Broken { .. }) {
                Meaning::Broken
            } else {
                Meaning::Mixed
            };
            (
                format!("{} +{others} {noun}", state_message(lowest)),
                Some(meaning),
            )
        }
    };
    Badge {
        label: m.rows[row].package.to_string(),
        message,
        meaning: own.unwrap_or_else(|| pipeline_meaning(m, row, col)),
    }
}

/// The badge of package `row` on one host of stage `col`, from what the
/// host answered.
pub fn host_badge(
    m: &Matrix,
    row: usize,
    col: usize,
    result: &Result<HostStatus, HostError>,
) -> Badge {
    let label = m.rows[row].package.to_string();
    let state = match result {
        Ok(status) => status.packages.get(&m.rows[row].package),
        Err(_) => None,
    };
    let Some(state) = state else {
        return Badge {
            label,
            message: "unreachable".to_string(),
            meaning: Meaning::Absent,
        };
    };
    let meaning = state_meaning(state).unwrap_or_else(|| {
        if matches!(m.rows[row].cells[col], Cell::Mixed { .. }) {
            Meaning::Mixed
        } else {
            pipeline_meaning(m, row, col)
        }
    });
    Badge {
        label,
        message: state_message(state),
        meaning,
    }
}

/// The meaning a host's own state forces, whatever the pipeline says.
fn state_meaning(s: &PackageState) -> Option<Meaning> {
    match s {
        PackageState::Broken { .. } => Some(Meaning::Broken),
        s if s.is_absent() => Some(Meaning::Absent),
        _ => None,
    }
}

/// For an installed version that every host of the stage runs: how it
/// stands against the neighbouring stages and the freeze.
fn pipeline_meaning(m: &Matrix, row: usize, col: usize) -> Meaning {
    let markers = &m.rows[row].markers;
    if col > 0 && markers[col - 1] == Marker::Regression {
        Meaning::Regression
    } else if m.columns[col].freeze.is_some() {
        Meaning::Frozen
    } else if markers.get(col) == Some(&Marker::Pending) {
        Meaning::Pending
    } else {
        Meaning::InStep
    }
}

/// What a badge's message says for a state.
fn state_message(s: &PackageState) -> String {
    match s {
        PackageState::Installed(v) => v.to_string(),
        PackageState::NotInstalled => "not installed".to_string(),
        PackageState::ConfigFiles(_) => "removed".to_string(),
        PackageState::Broken {
            version: Some(v),
            state,
        } => format!("{v} {state}"),
        PackageState::Broken {
            version: None,
            state,
        } => state.clone(),
    }
}
