//! From every host's answer to the version matrix: one cell per package and
//! stage, a marker between adjacent stages, and the details an operator
//! needs (drift inside a stage, broken packages, holds that differ inside a
//! stage, unreachable hosts). Holds (`apt-mark hold`) are counted beside the
//! cells; they change no cell and no marker.
//!
//! Pure: takes values, returns values. Rendering is `render`'s job.

use std::cmp::Ordering;

use serde::Serialize;

use crate::error::HostError;
use crate::package::PackageName;
use crate::status::{HostStatus, PackageState};
use crate::version::Version;

/// One host's answer, or why there is none.
#[derive(Debug, Clone)]
pub struct HostReport {
    /// The stage the host belongs to.
    pub stage: String,
    /// The host as written in the configuration.
    pub host: String,
    /// What it said.
    pub result: Result<HostStatus, HostError>,
}

/// What a stage runs, summarised over its answering hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// No host of the stage answered.
    Unknown,
    /// Every answering host is in the same state.
    Uniform(PackageState),
    /// The hosts disagree; `lowest` is the oldest state found, `others` the
    /// number of hosts not in it.
    Mixed {
        /// The lowest state found (absent counts lowest).
        lowest: PackageState,
        /// Hosts in another state.
        others: usize,
    },
}

/// The comparison of two adjacent stages for one package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Marker {
    /// Both run the same.
    Equal,
    /// The left stage runs a higher version: a rollout is pending (`►►`).
    Pending,
    /// The right stage runs a higher version than anything on the left (`⚠`).
    Regression,
    /// One side is unknown.
    Unknown,
}

/// One package across the stages.
#[derive(Debug, Clone)]
pub struct Row {
    /// The package.
    pub package: PackageName,
    /// One cell per stage, in stage order.
    pub cells: Vec<Cell>,
    /// One marker per pair of adjacent stages.
    pub markers: Vec<Marker>,
    /// One count per stage: its answering hosts that hold the package
    /// (`apt-mark hold`).
    pub held: Vec<usize>,
}

/// One stage's column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Stage name.
    pub name: String,
    /// Hosts configured.
    pub hosts: usize,
    /// Hosts that did not answer.
    pub down: usize,
    /// The freeze record, when a host of the stage carries one: one set
    /// for this stage if there is one, else any other (set under another
    /// stage's name, or unreadable). A deploy refuses every host that
    /// carries a record, whatever stage it names, so the view says so too.
    pub freeze: Option<crate::freeze::Freeze>,
    /// What Alertmanager says of the stage ([`crate::alerts::Hold`]):
    /// `None` when `[alerts]` is not configured (or not asked, by
    /// [`crate::alerts::mark_stages`]). The plain fact "held by alerts" is
    /// `alerts.as_ref().is_some_and(Hold::held)`.
    pub alerts: Option<crate::alerts::Hold>,
    /// Whether the stage's deploy windows are open now, and until when
    /// ([`crate::window::Shown`]); `None` without windows (or not asked,
    /// by [`crate::window::mark_stages`]).
    pub window: Option<crate::window::Shown>,
}

/// A package whose hosts disagree inside one stage (on the state, or on the
/// hold), or is broken somewhere.
#[derive(Debug, Clone)]
pub struct Detail {
    /// The package.
    pub package: PackageName,
    /// The stage.
    pub stage: String,
    /// Each answering host and its state.
    pub hosts: Vec<(String, PackageState)>,
    /// The hosts among `hosts` that hold the package.
    pub held: Vec<String>,
}

/// A host that did not answer.
#[derive(Debug, Clone)]
pub struct Unreachable {
    /// Its stage.
    pub stage: String,
    /// The host.
    pub host: String,
    /// Why.
    pub error: HostError,
}

/// The whole status view.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Stages, left to right.
    pub columns: Vec<Column>,
    /// Packages, in configuration order.
    pub rows: Vec<Row>,
    /// Drift inside a stage and broken packages.
    pub details: Vec<Detail>,
    /// Hosts that did not answer.
    pub unreachable: Vec<Unreachable>,
}

/// Counts that decide the `--check` exit status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Hosts configured.
    pub hosts: usize,
    /// Hosts that answered.
    pub answered: usize,
    /// Adjacent-stage pairs with a pending rollout.
    pub pending: usize,
    /// Adjacent-stage pairs with a regression.
    pub regressions: usize,
    /// Package/stage cells whose hosts disagree.
    pub drift: usize,
    /// Package/host pairs in a broken dpkg state.
    pub broken: usize,
    /// Frozen stages.
    pub frozen: usize,
}

fn key(state: &PackageState) -> Option<&Version> {
    state.version()
}

/// Lowest and highest version present among `states` (absent is lowest).
fn bounds<'a>(states: &[&'a PackageState]) -> Option<(Option<&'a Version>, Option<&'a Version>)> {
    let lo = states.iter().map(|s| key(s)).min()?;
    let hi = states.iter().map(|s| key(s)).max()?;
    Some((lo, hi))
}

fn summarise(states: &[&PackageState]) -> Cell {
    let Some(first) = states.first() else {
        return Cell::Unknown;
    };
    if states.iter().all(|s| s.same_as(first)) {
        return Cell::Uniform((*first).clone());
    }
    let lowest = states
        .iter()
        .min_by(|a, b| key(a).cmp(&key(b)).then_with(|| broken_first(a, b)))
        .expect("non-empty");
    let others = states.iter().filter(|s| !s.same_as(lowest)).count();
    Cell::Mixed {
        lowest: (*lowest).clone(),
        others,
    }
}

fn broken_first(a: &PackageState, b: &PackageState) -> Ordering {
    let rank = |s: &PackageState| !matches!(s, PackageState::Broken { .. });
    rank(a).cmp(&rank(b))
}

/// Compare two stages: a regression when the right runs something newer
/// than anything on the left; pending when the left's lowest is above the
/// right's lowest. For uniform stages this is plain version comparison.
fn compare(left: &[&PackageState], right: &[&PackageState]) -> Marker {
    match (bounds(left), bounds(right)) {
        (Some((l_lo, l_hi)), Some((r_lo, r_hi))) => {
            if r_hi > l_hi {
                Marker::Regression
            } else if l_lo > r_lo {
                Marker::Pending
            } else {
                Marker::Equal
            }
        }
        _ => Marker::Unknown,
    }
}

/// Build the matrix from every host's report.
pub fn build(
    packages: &[PackageName],
    stages: &[(String, usize)],
    reports: &[HostReport],
) -> Matrix {
    let answered = |stage: &str| -> Vec<(&str, &HostStatus)> {
        reports
            .iter()
            .filter(|r| r.stage == stage)
            .filter_map(|r| r.result.as_ref().ok().map(|s| (r.host.as_str(), s)))
            .collect()
    };
    let columns = stages
        .iter()
        .map(|(name, hosts)| {
            let down = reports
                .iter()
                .filter(|r| &r.stage == name && r.result.is_err())
                .count();
            let records: Vec<&crate::freeze::Freeze> = answered(name)
                .iter()
                .flat_map(|(_, s)| &s.freezes)
                .collect();
            let freeze = records
                .iter()
                .find(|f| f.applies_to(name))
                .or_else(|| records.first())
                .map(|f| (*f).clone());
            Column {
                name: name.clone(),
                hosts: *hosts,
                down,
                freeze,
                alerts: None,
                window: None,
            }
        })
        .collect();
    let mut rows = Vec::new();
    let mut details = Vec::new();
    for package in packages {
        let per_stage: Vec<Vec<(&str, &PackageState)>> = stages
            .iter()
            .map(|(name, _)| {
                answered(name)
                    .into_iter()
                    .filter_map(|(h, s)| s.packages.get(package).map(|p| (h, p)))
                    .collect()
            })
            .collect();
        let states: Vec<Vec<&PackageState>> = per_stage
            .iter()
            .map(|v| v.iter().map(|(_, s)| *s).collect())
            .collect();
        let cells: Vec<Cell> = states.iter().map(|s| summarise(s)).collect();
        let markers = states.windows(2).map(|w| compare(&w[0], &w[1])).collect();
        let held_hosts: Vec<Vec<String>> = stages
            .iter()
            .map(|(name, _)| {
                answered(name)
                    .into_iter()
                    .filter(|(_, s)| s.held.contains(package))
                    .map(|(h, _)| h.to_string())
                    .collect()
            })
            .collect();
        for (i, (name, _)) in stages.iter().enumerate() {
            let drift = matches!(cells[i], Cell::Mixed { .. });
            let broken = states[i]
                .iter()
                .any(|s| matches!(s, PackageState::Broken { .. }));
            let some_held = !held_hosts[i].is_empty() && held_hosts[i].len() < states[i].len();
            if drift || broken || some_held {
                details.push(Detail {
                    package: package.clone(),
                    stage: name.clone(),
                    hosts: per_stage[i]
                        .iter()
                        .map(|(h, s)| (h.to_string(), (*s).clone()))
                        .collect(),
                    held: held_hosts[i].clone(),
                });
            }
        }
        rows.push(Row {
            package: package.clone(),
            cells,
            markers,
            held: held_hosts.iter().map(Vec::len).collect(),
        });
    }
    let unreachable = reports
        .iter()
        .filter_map(|r| {
            r.result.as_ref().err().map(|e| Unreachable {
                stage: r.stage.clone(),
                host: r.host.clone(),
                error: e.clone(),
            })
        })
        .collect();
    Matrix {
        columns,
        rows,
        details,
        unreachable,
    }
}

/// The matrix of the stages of `config` at positions `stages` (all of
/// them when `None`), from the reports of their hosts.
pub fn for_config(
    config: &crate::config::Config,
    stages: Option<&[usize]>,
    reports: &[HostReport],
) -> Matrix {
    let chosen: Vec<(String, usize)> = config
        .stages
        .iter()
        .enumerate()
        .filter(|(i, _)| stages.is_none_or(|s| s.contains(i)))
        .map(|(_, s)| (s.name.clone(), s.hosts.len()))
        .collect();
    build(&config.packages, &chosen, reports)
}

impl Matrix {
    /// Counts over the whole matrix.
    pub fn summary(&self) -> Summary {
        let count = |m: Marker| {
            self.rows
                .iter()
                .flat_map(|r| &r.markers)
                .filter(|x| **x == m)
                .count()
        };
        Summary {
            hosts: self.columns.iter().map(|c| c.hosts).sum(),
            answered: self.columns.iter().map(|c| c.hosts - c.down).sum(),
            pending: count(Marker::Pending),
            regressions: count(Marker::Regression),
            drift: self
                .rows
                .iter()
                .flat_map(|r| &r.cells)
                .filter(|c| matches!(c, Cell::Mixed { .. }))
                .count(),
            broken: self
                .details
                .iter()
                .flat_map(|d| &d.hosts)
                .filter(|(_, s)| matches!(s, PackageState::Broken { .. }))
                .count(),
            frozen: self.columns.iter().filter(|c| c.freeze.is_some()).count(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A host's report; a version ending in `^` is held (`apt-mark hold`),
    /// one ending in `!` is half-configured.
    pub(crate) fn host(stage: &str, name: &str, pkgs: &[(&str, &str)]) -> HostReport {
        let mut packages = BTreeMap::new();
        let mut held = std::collections::BTreeSet::new();
        for (p, v) in pkgs {
            if v.ends_with('^') {
                held.insert(p.parse().unwrap());
            }
            let v = &v.trim_end_matches('^');
            let state = match *v {
                "-" => PackageState::NotInstalled,
                "rc" => PackageState::ConfigFiles(None),
                v if v.ends_with("!") => PackageState::Broken {
                    version: Some(v.trim_end_matches('!').parse().unwrap()),
                    state: "half-configured".into(),
                },
                v => PackageState::Installed(v.parse().unwrap()),
            };
            packages.insert(p.parse().unwrap(), state);
        }
        HostReport {
            stage: stage.into(),
            host: name.into(),
            result: Ok(HostStatus {
                packages,
                held,
                freezes: Vec::new(),
            }),
        }
    }

    pub(crate) fn down(stage: &str, name: &str) -> HostReport {
        HostReport {
            stage: stage.into(),
            host: name.into(),
            result: Err(HostError::Connect {
                addr: "127.0.1.9:22".into(),
                message: "Connection refused (os error 111)".into(),
            }),
        }
    }

    pub(crate) fn pk(names: &[&str]) -> Vec<PackageName> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    pub(crate) fn stages(list: &[(&str, usize)]) -> Vec<(String, usize)> {
        list.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    /// A deploy refuses any host carrying a freeze record, whatever stage
    /// it was set under (a renamed stage, a host shared by two): the status
    /// view, which cron jobs watch, must not call that stage unfrozen.
    #[test]
    fn a_freeze_under_another_stage_name_still_freezes_the_column() {
        let freeze = |stage: &str| crate::freeze::Freeze {
            stage: stage.into(),
            by: "bob@desk".into(),
            since: "2026-11-21T07:30:05Z".into(),
            reason: "incident".into(),
        };
        let mut p1 = host("prod", "p1", &[("fastpath", "1.0-1")]);
        let mut p2 = host("prod", "p2", &[("fastpath", "1.0-1")]);
        if let Ok(s) = &mut p1.result {
            s.freezes.push(freeze("production"));
        }
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1), ("prod", 2)]),
            &[
                host("test", "t1", &[("fastpath", "1.0-1")]),
                p1.clone(),
                p2.clone(),
            ],
        );
        assert!(m.columns[0].freeze.is_none());
        assert_eq!(m.columns[1].freeze, Some(freeze("production")));
        assert_eq!(m.summary().frozen, 1);
        // a record for the stage itself is the one shown
        if let Ok(s) = &mut p2.result {
            s.freezes.push(freeze("prod"));
        }
        let m = build(&pk(&["fastpath"]), &stages(&[("prod", 2)]), &[p1, p2]);
        assert_eq!(m.columns[0].freeze, Some(freeze("prod")));
    }

    fn markers(m: &Matrix) -> Vec<Vec<Marker>> {
        m.rows.iter().map(|r| r.markers.clone()).collect()
    }

    #[test]
    fn markers_follow_dpkg_order_not_text_order() {
        let m = build(
            &pk(&["fastpath", "analysis", "ooni-api", "detector"]),
            &stages(&[("test", 1), ("prod", 1)]),
            &[
                host(
                    "test",
                    "t1",
                    &[
                        ("fastpath", "0.81~pr748-191"),
                        ("analysis", "1.9~pr659-61"),
                        ("ooni-api", "1.0.79~pr751-194"),
                        ("detector", "1:1.0-1"),
                    ],
                ),
                host(
                    "prod",
                    "p1",
                    &[
                        ("fastpath", "0.77~pr705-119"),
                        ("analysis", "1.10~pr692-102"),
                        ("ooni-api", "1.0.79~pr751-194"),
                        ("detector", "2.0-1"),
                    ],
                ),
            ],
        );
        assert_eq!(
            markers(&m),
            vec![
                vec![Marker::Pending],
                vec![Marker::Regression],
                vec![Marker::Equal],
                vec![Marker::Pending]
            ]
        );
        let s = m.summary();
        assert_eq!((s.pending, s.regressions, s.drift), (2, 1, 0));
    }

    #[test]
    fn absent_counts_below_every_version() {
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("a", 1), ("b", 1), ("c", 1)]),
            &[
                host("a", "a1", &[("fastpath", "1.0-1")]),
                host("b", "b1", &[("fastpath", "-")]),
                host("c", "c1", &[("fastpath", "rc")]),
            ],
        );
        assert_eq!(markers(&m), vec![vec![Marker::Pending, Marker::Equal]]);
    }

    #[test]
    fn every_host_counts_not_only_the_first() {
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1), ("prod", 3)]),
            &[
                host("test", "t1", &[("fastpath", "0.81~pr748-191")]),
                host("prod", "p1", &[("fastpath", "0.81~pr748-191")]),
                host("prod", "p2", &[("fastpath", "0.77~pr705-119")]),
                host("prod", "p3", &[("fastpath", "0.81~pr748-191")]),
            ],
        );
        assert_eq!(
            m.rows[0].cells[1],
            Cell::Mixed {
                lowest: PackageState::Installed("0.77~pr705-119".parse().unwrap()),
                others: 2
            }
        );
        // prod's lowest host is behind test: still pending
        assert_eq!(m.rows[0].markers, vec![Marker::Pending]);
        assert_eq!(m.details.len(), 1);
        assert_eq!(m.details[0].hosts.len(), 3);
        assert_eq!(m.summary().drift, 1);
    }

    #[test]
    fn one_newer_host_on_the_right_is_a_regression() {
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1), ("prod", 2)]),
            &[
                host("test", "t1", &[("fastpath", "1.0-1")]),
                host("prod", "p1", &[("fastpath", "1.0-1")]),
                host("prod", "p2", &[("fastpath", "1.1-1")]),
            ],
        );
        assert_eq!(m.rows[0].markers, vec![Marker::Regression]);
    }

    #[test]
    fn unreachable_stage_is_unknown_and_listed() {
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1), ("prod", 1)]),
            &[
                host("test", "t1", &[("fastpath", "1.0-1")]),
                down("prod", "p1"),
            ],
        );
        assert_eq!(m.rows[0].cells[1], Cell::Unknown);
        assert_eq!(m.rows[0].markers, vec![Marker::Unknown]);
        assert_eq!(m.unreachable.len(), 1);
        assert_eq!(m.columns[1].down, 1);
        assert_eq!(m.summary().answered, 1);
    }

    #[test]
    fn broken_package_is_a_detail_even_when_uniform() {
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1)]),
            &[host("test", "t1", &[("fastpath", "1.0-1!")])],
        );
        assert!(matches!(
            m.rows[0].cells[0],
            Cell::Uniform(PackageState::Broken { .. })
        ));
        assert_eq!(m.details.len(), 1);
        assert_eq!(m.summary().broken, 1);
    }

    #[test]
    fn holds_are_counted_per_stage_and_partial_holds_are_details() {
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1), ("prod", 3)]),
            &[
                host("test", "t1", &[("fastpath", "1.0-1^")]),
                host("prod", "p1", &[("fastpath", "1.0-1^")]),
                host("prod", "p2", &[("fastpath", "1.0-1")]),
                host("prod", "p3", &[("fastpath", "1.0-1^")]),
            ],
        );
        assert_eq!(m.rows[0].held, vec![1, 2]);
        // a hold changes no cell and no marker
        assert!(matches!(m.rows[0].cells[1], Cell::Uniform(_)));
        assert_eq!(m.rows[0].markers, vec![Marker::Equal]);
        // every host of `test` holds it: nothing to detail; `prod` differs
        assert_eq!(m.details.len(), 1);
        assert_eq!(m.details[0].stage, "prod");
        assert_eq!(m.details[0].held, vec!["p1".to_string(), "p3".to_string()]);
        assert_eq!(m.summary().drift, 0);
    }

    #[test]
    fn absent_and_config_files_are_not_drift() {
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("prod", 2)]),
            &[
                host("prod", "p1", &[("fastpath", "-")]),
                host("prod", "p2", &[("fastpath", "rc")]),
            ],
        );
        assert!(matches!(m.rows[0].cells[0], Cell::Uniform(_)));
        assert_eq!(m.summary().drift, 0);
    }
}
