//! The matrix in Prometheus' text exposition format (version 0.0.4), for
//! node_exporter's textfile collector (`deployer status --format
//! prometheus`). Pure apart from the writer.
//!
//! Every family has its `# HELP` and `# TYPE` lines, and is written even
//! when it has no sample. Every label value goes through [`label`]: what a
//! host said (a version) only ever appears there, escaped as the format
//! wants (backslash, double quote, newline), never as a line of its own.
//! A fact that could not be read (a host that did not answer, a stage
//! none of whose hosts answered) has no sample: absent, not 0.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::matrix::{Cell, HostReport, Marker, Matrix};
use crate::status::PackageState;

/// One metric family: its name, type and help text.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

/// A family of gauges (every family here: the status is a snapshot).
const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "gauge",
        help,
    }
}

/// `deployer_package_info{stage,host,package,version} 1`.
const PACKAGE_INFO: Family = gauge(
    "deployer_package_info",
    "The version of a package a host runs, as dpkg says (always 1; hosts without the package have no sample).",
);
/// `deployer_pending{stage,package}`.
const PENDING: Family = gauge(
    "deployer_pending",
    "1 when a rollout of the package is pending into the stage from the stage before it (the matrix's >>), else 0.",
);
/// `deployer_regression{stage,package}`.
const REGRESSION: Family = gauge(
    "deployer_regression",
    "1 when a host of the stage runs a newer version of the package than any host of the stage before it, else 0.",
);
/// `deployer_drift{stage,package}`.
const DRIFT: Family = gauge(
    "deployer_drift",
    "1 when the answering hosts of the stage do not all run the same version of the package, else 0.",
);
/// `deployer_broken{stage,host,package}`.
const BROKEN: Family = gauge(
    "deployer_broken",
    "1 when dpkg shows the package half-installed, half-configured or otherwise broken on the host, else 0.",
);
/// `deployer_frozen{stage}`.
const FROZEN: Family = gauge(
    "deployer_frozen",
    "1 when the stage is frozen (a host of the stage carries a freeze record), else 0.",
);
/// `deployer_held_by_alerts{stage}`: written only when the caller knows it
/// (the alerts check, issue 21 item 4).
const HELD_BY_ALERTS: Family = gauge(
    "deployer_held_by_alerts",
    "1 when active alerts hold the stage (forward deploys refused), else 0.",
);
/// `deployer_host_up{stage,host}`.
const HOST_UP: Family = gauge(
    "deployer_host_up",
    "1 when deployer reached the host and read its packages, else 0.",
);
/// `deployer_status_read_timestamp_seconds`.
const READ_AT: Family = gauge(
    "deployer_status_read_timestamp_seconds",
    "When deployer read the hosts, in seconds since the Unix epoch.",
);

/// What [`prometheus`] writes besides the matrix.
#[derive(Debug, Clone, Default)]
pub struct Extra<'a> {
    /// When the hosts were read, in seconds since the Unix epoch.
    pub read_at: u64,
    /// Per stage, whether active alerts hold it: the family
    /// `deployer_held_by_alerts`, written only when this is `Some`.
    pub held_by_alerts: Option<&'a [(String, bool)]>,
}

/// `value` as a label value: `\`, `"` and newlines escaped.
pub fn label(value: &str) -> String {
    // the backslash first, so that the escapes added after stay as they are
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A family's samples as they are collected: one line each.
struct Lines(String);

impl Lines {
    fn family(&mut self, f: &Family) {
        let _ = writeln!(self.0, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(self.0, "# TYPE {} {}", f.name, f.kind);
    }

    fn sample(&mut self, f: &Family, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.0, "{}", f.name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }
}

fn flag(b: bool) -> u8 {
    u8::from(b)
}

/// Write the matrix `m`, made from `reports`, as metrics.
pub fn prometheus(
    m: &Matrix,
    reports: &[HostReport],
    extra: &Extra<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut l = Lines(String::new());
    let answered = || {
        reports
            .iter()
            .filter_map(|r| r.result.as_ref().ok().map(|s| (r, s)))
    };

    l.family(&PACKAGE_INFO);
    for (r, status) in answered() {
        for (package, state) in &status.packages {
            if let Some(version) = state.version() {
                let version = version.to_string();
                l.sample(
                    &PACKAGE_INFO,
                    &[
                        ("stage", &r.stage),
                        ("host", &r.host),
                        ("package", package.as_str()),
                        ("version", &version),
                    ],
                    1,
                );
            }
        }
    }

    // the comparisons name the stage on their right: the one a rollout
    // goes into
    for (family, wanted) in [
        (&PENDING, Marker::Pending),
        (&REGRESSION, Marker::Regression),
    ] {
        l.family(family);
        for row in &m.rows {
            for (i, marker) in row.markers.iter().enumerate() {
                if *marker == Marker::Unknown {
                    continue;
                }
                let stage = &m.columns[i + 1].name;
                l.sample(
                    family,
                    &[("stage", stage), ("package", row.package.as_str())],
                    flag(*marker == wanted),
                );
            }
        }
    }

    l.family(&DRIFT);
    for row in &m.rows {
        for (cell, column) in row.cells.iter().zip(&m.columns) {
            if *cell == Cell::Unknown {
                continue;
            }
            l.sample(
                &DRIFT,
                &[("stage", &column.name), ("package", row.package.as_str())],
                flag(matches!(cell, Cell::Mixed { .. })),
            );
        }
    }

    l.family(&BROKEN);
    for (r, status) in answered() {
        for (package, state) in &status.packages {
            l.sample(
                &BROKEN,
                &[
                    ("stage", &r.stage),
                    ("host", &r.host),
                    ("package", package.as_str()),
                ],
                flag(matches!(state, PackageState::Broken { .. })),
            );
        }
    }

    l.family(&FROZEN);
    for column in &m.columns {
        // a freeze is read from the hosts: none answered, nothing known
        if column.down < column.hosts {
            l.sample(
                &FROZEN,
                &[("stage", &column.name)],
                flag(column.freeze.is_some()),
            );
        }
    }

    if let Some(held) = extra.held_by_alerts {
        l.family(&HELD_BY_ALERTS);
        for (stage, is_held) in held {
            l.sample(&HELD_BY_ALERTS, &[("stage", stage)], flag(*is_held));
        }
    }

    l.family(&HOST_UP);
    for r in reports {
        l.sample(
            &HOST_UP,
            &[("stage", &r.stage), ("host", &r.host)],
            flag(r.result.is_ok()),
        );
    }

    l.family(&READ_AT);
    l.sample(&READ_AT, &[], extra.read_at);

    out.write_all(l.0.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::build;
    use crate::matrix::tests::{down, host, pk, stages};

    fn text(m: &Matrix, reports: &[HostReport], extra: &Extra<'_>) -> String {
        let mut out = Vec::new();
        prometheus(m, reports, extra, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("plain-1.0~rc1"), "plain-1.0~rc1");
        assert_eq!(label("a\\b"), "a\\\\b");
        assert_eq!(label("say \"hi\""), "say \\\"hi\\\"");
        assert_eq!(label("two\nlines"), "two\\nlines");
        assert_eq!(label("\\\"\n"), "\\\\\\\"\\n");
    }

    #[test]
    fn every_fact_of_the_matrix_is_a_sample() {
        let reports = vec![
            host("test", "t1", &[("fastpath", "0.81"), ("analysis", "1.0")]),
            host("test", "t2", &[("fastpath", "0.81"), ("analysis", "1.1")]),
            host("prod", "p1", &[("fastpath", "0.77"), ("analysis", "1.0!")]),
            down("prod", "p2"),
        ];
        let m = build(
            &pk(&["fastpath", "analysis"]),
            &stages(&[("test", 2), ("prod", 2)]),
            &reports,
        );
        let held = [("test".to_string(), false), ("prod".to_string(), true)];
        let out = text(
            &m,
            &reports,
            &Extra {
                read_at: 1_796_622_400,
                held_by_alerts: Some(&held),
            },
        );
        for line in [
            "deployer_package_info{stage=\"test\",host=\"t1\",package=\"fastpath\",version=\"0.81\"} 1",
            "deployer_package_info{stage=\"prod\",host=\"p1\",package=\"fastpath\",version=\"0.77\"} 1",
            "deployer_pending{stage=\"prod\",package=\"fastpath\"} 1",
            "deployer_regression{stage=\"prod\",package=\"fastpath\"} 0",
            "deployer_pending{stage=\"prod\",package=\"analysis\"} 0",
            "deployer_drift{stage=\"test\",package=\"analysis\"} 1",
            "deployer_drift{stage=\"test\",package=\"fastpath\"} 0",
            "deployer_drift{stage=\"prod\",package=\"fastpath\"} 0",
            "deployer_broken{stage=\"prod\",host=\"p1\",package=\"analysis\"} 1",
            "deployer_broken{stage=\"prod\",host=\"p1\",package=\"fastpath\"} 0",
            "deployer_package_info{stage=\"prod\",host=\"p1\",package=\"analysis\",version=\"1.0\"} 1",
            "deployer_frozen{stage=\"prod\"} 0",
            "deployer_held_by_alerts{stage=\"prod\"} 1",
            "deployer_host_up{stage=\"prod\",host=\"p1\"} 1",
            "deployer_host_up{stage=\"prod\",host=\"p2\"} 0",
            "deployer_status_read_timestamp_seconds 1796622400",
            "# TYPE deployer_package_info gauge",
            "# HELP deployer_host_up 1 when deployer reached the host and read its packages, else 0.",
        ] {
            assert!(out.lines().any(|l| l == line), "{line}\n{out}");
        }
        // the host that did not answer has no package samples
        assert!(!out.contains("host=\"p2\",package"), "{out}");
        // one HELP and one TYPE per family, before its samples
        for name in [
            "deployer_package_info",
            "deployer_pending",
            "deployer_regression",
            "deployer_drift",
            "deployer_broken",
            "deployer_frozen",
            "deployer_held_by_alerts",
            "deployer_host_up",
            "deployer_status_read_timestamp_seconds",
        ] {
            let help = format!("# HELP {name} ");
            let kind = format!("# TYPE {name} gauge");
            assert_eq!(out.matches(&help).count(), 1, "{name}");
            assert_eq!(out.lines().filter(|l| *l == kind).count(), 1, "{name}");
            let first = out.lines().position(|l| {
                l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))
            });
            let typed = out.lines().position(|l| l == kind).unwrap();
            assert!(first.is_none_or(|f| f > typed), "{name}");
        }
        let without = text(&m, &reports, &Extra::default());
        assert!(!without.contains("deployer_held_by_alerts"), "{without}");
    }

    #[test]
    fn a_stage_no_host_answered_has_no_comparison_drift_or_freeze() {
        let reports = vec![
            host("test", "t1", &[("fastpath", "0.81")]),
            down("prod", "p1"),
        ];
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1), ("prod", 1)]),
            &reports,
        );
        let out = text(&m, &reports, &Extra::default());
        assert!(!out.contains("stage=\"prod\",package"), "{out}");
        assert!(!out.contains("deployer_frozen{stage=\"prod\"}"), "{out}");
        assert!(out.contains("deployer_frozen{stage=\"test\"} 0"), "{out}");
        assert!(
            out.contains("deployer_pending "),
            "the family is there: {out}"
        );
    }
}
