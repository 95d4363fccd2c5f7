//! Which badges the pipeline has and what each one says: one per package
//! and stage (the stage's cell of the version matrix), and one per package
//! and host (what that host runs). Pure: from the matrix and the hosts'
//! reports to [`Badge`] values; writing them is `publish`'s job.
//!
//! A badge's colour is its [`Meaning`], decided in this order: absent or
//! unknown (grey), broken, regression against the previous stage, hosts
//! of the stage that disagree, frozen stage, rollout pending towards the
//! next stage, in step.
//!
//! A host's badge depends only on the host, its own stage and the stage
//! before it, never on the next stage: so the badges a deploy refreshes
//! over its sessions (it reads the stage and the one before) are exactly
//! those `refresh-badges` writes. A pending rollout shows on the stage's
//! badge and on the dashboard.

pub mod publish;

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
        meaning: own.unwrap_or_else(|| pipeline_meaning(m, row, col, true)),
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
            pipeline_meaning(m, row, col, false)
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
/// stands against the previous stage, the freeze, and (`toward_next`) the
/// next stage.
fn pipeline_meaning(m: &Matrix, row: usize, col: usize, toward_next: bool) -> Meaning {
    let markers = &m.rows[row].markers;
    if col > 0 && markers[col - 1] == Marker::Regression {
        Meaning::Regression
    } else if m.columns[col].freeze.is_some() {
        Meaning::Frozen
    } else if toward_next && markers.get(col) == Some(&Marker::Pending) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::tests::{down, host};
    use crate::matrix::{build, HostReport};

    const STAGES: [&str; 3] = ["test", "hel", "prod"];

    fn matrix(reports: &[HostReport]) -> Matrix {
        let stages: Vec<(String, usize)> = STAGES
            .iter()
            .map(|s| {
                let n = reports.iter().filter(|r| r.stage == *s).count();
                (s.to_string(), n)
            })
            .collect();
        build(&["fastpath".parse().unwrap()], &stages, reports)
    }

    /// (message, meaning) of fastpath's badge on each stage.
    fn stages_of(reports: &[HostReport]) -> Vec<(String, Meaning)> {
        let m = matrix(reports);
        (0..STAGES.len())
            .map(|c| {
                let b = stage_badge(&m, 0, c);
                assert_eq!(b.label, "fastpath");
                (b.message, b.meaning)
            })
            .collect()
    }

    fn one(stage: &str, name: &str, v: &str) -> HostReport {
        host(stage, name, &[("fastpath", v)])
    }

    #[test]
    fn in_step_pending_and_regression() {
        let got = stages_of(&[
            one("test", "t1", "0.81"),
            one("hel", "h1", "0.77"),
            one("prod", "p1", "0.79"),
        ]);
        assert_eq!(
            got,
            [
                ("0.81".to_string(), Meaning::Pending),
                ("0.77".to_string(), Meaning::InStep),
                ("0.79".to_string(), Meaning::Regression),
            ]
        );
        let got = stages_of(&[
            one("test", "t1", "1.0"),
            one("hel", "h1", "1.0"),
            one("prod", "p1", "1.0"),
        ]);
        assert!(got.iter().all(|(_, m)| *m == Meaning::InStep), "{got:?}");
    }

    #[test]
    fn absent_broken_mixed_and_unreachable() {
        let got = stages_of(&[
            one("test", "t1", "-"),
            one("hel", "h1", "0.3!"),
            one("prod", "p1", "0.81"),
            one("prod", "p2", "0.77"),
        ]);
        assert_eq!(got[0], ("not installed".to_string(), Meaning::Absent));
        assert_eq!(got[1], ("0.3 half-configured".to_string(), Meaning::Broken));
        assert_eq!(got[2], ("0.77 +1 other".to_string(), Meaning::Mixed));
        let got = stages_of(&[
            one("test", "t1", "rc"),
            down("hel", "h1"),
            one("prod", "p1", "1"),
        ]);
        assert_eq!(got[0], ("removed".to_string(), Meaning::Absent));
        assert_eq!(got[1], ("unreachable".to_string(), Meaning::Absent));
    }

    #[test]
    fn frozen_stage() {
        let mut reports = vec![one("test", "t1", "0.81"), one("hel", "h1", "0.81")];
        if let Ok(s) = &mut reports[1].result {
            s.freezes.push(crate::freeze::Freeze {
                stage: "hel".into(),
                by: "alice@laptop".into(),
                since: "2026-11-21T07:30:05Z".into(),
                reason: "incident 42".into(),
            });
        }
        reports.push(one("prod", "p1", "0.81"));
        let got = stages_of(&reports);
        assert_eq!(got[1].1, Meaning::Frozen);
        assert_eq!(got[2].1, Meaning::InStep);
    }

    #[test]
    fn host_badges_follow_the_host_and_its_stage_but_not_the_next_stage() {
        let reports = [
            one("test", "t1", "0.81"),
            one("hel", "h1", "0.77"),
            one("hel", "h2", "0.77"),
            one("prod", "p1", "0.79"),
            one("prod", "p2", "-"),
            down("prod", "p3"),
        ];
        let m = matrix(&reports);
        let b = board(&m, &reports);
        assert_eq!(b.stages.len(), 3);
        assert_eq!(b.hosts.len(), reports.len());
        let of = |h: &str| {
            let x = b.hosts.iter().find(|x| x.host == h).unwrap();
            (x.badge.message.as_str(), x.badge.meaning)
        };
        // test is ahead of hel: its stage badge says pending, its hosts not
        assert_eq!(b.stages[0].badge.meaning, Meaning::Pending);
        assert_eq!(of("t1"), ("0.81", Meaning::InStep));
        assert_eq!(of("h1"), ("0.77", Meaning::InStep));
        // prod disagrees: its installed host is mixed, the absent one grey
        assert_eq!(of("p1"), ("0.79", Meaning::Mixed));
        assert_eq!(of("p2"), ("not installed", Meaning::Absent));
        assert_eq!(of("p3"), ("unreachable", Meaning::Absent));
        // the host badges of hel do not change when only the next stage is known
        let without_prod = matrix(&reports[..3]);
        let b2 = board(&without_prod, &reports[..3]);
        for h in &b2.hosts {
            let full = b.hosts.iter().find(|x| x.host == h.host).unwrap();
            assert_eq!(full.badge, h.badge, "{}", h.host);
        }
    }
}
