//! What versions of one package each stage's hosts can install, from
//! what `apt-cache policy` said on each host ([`crate::apt::Policy`]):
//! every version, newest first in dpkg order, with the hosts that run it,
//! the hosts whose candidate it is, and the hosts that can install it; and
//! where the hosts of a stage disagree on what they can install.
//!
//! Pure: it takes the parsed policies and returns values, and renders
//! into any writer. Running `apt-get update` and `apt-cache policy` on the
//! hosts is `app::versions`' job.

use std::io::{self, Write};

use crate::apt::Policy;
use crate::package::PackageName;
use crate::version::Version;

/// One version of the package, as seen by the hosts of one stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The version.
    pub version: Version,
    /// The hosts a repository offers it to (it can be installed there).
    pub available: Vec<String>,
    /// The hosts that run it.
    pub installed: Vec<String>,
    /// The hosts where `apt-get install PKG` would pick it.
    pub candidate: Vec<String>,
    /// The hosts that hold it in their `.deb` cache ([`crate::debcache`]),
    /// from where a rollback installs it when no repository offers it.
    pub cached: Vec<String>,
}

/// A host of a stage that cannot install versions other hosts of the
/// stage can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    /// The host.
    pub host: String,
    /// The versions other hosts of the stage are offered and it is not,
    /// newest first.
    pub missing: Vec<Version>,
}

/// One stage's view of the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageVersions {
    /// The stage.
    pub stage: String,
    /// The hosts that answered, in configuration order.
    pub answered: Vec<String>,
    /// Every version offered to or installed on a host, newest first.
    pub rows: Vec<Row>,
    /// The hosts that lack versions others are offered (empty when they
    /// all agree).
    pub disagreements: Vec<Disagreement>,
    /// The hosts whose `.deb` cache could not be read, and why (one line,
    /// made safe).
    pub caches_unread: Vec<(String, String)>,
}

/// A host that gave no usable answer, and why (one line, made safe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stage.
    pub stage: String,
    /// The host.
    pub host: String,
    /// Why.
    pub error: String,
}

/// Every stage asked about, and the hosts that did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The package.
    pub package: PackageName,
    /// Whether the package lists were refreshed (`apt-get update`) first.
    pub updated: bool,
    /// The stages, in configuration order.
    pub stages: Vec<StageVersions>,
    /// Hosts that did not answer.
    pub failures: Vec<Failure>,
}

/// One stage's rows and disagreements from each answered host's policy
/// (`(host, policy)`, in configuration order).
pub fn for_stage(stage: &str, policies: &[(String, Policy)]) -> StageVersions {
    let mut versions: Vec<&Version> = policies
        .iter()
        .flat_map(|(_, p)| p.available.iter().chain(&p.installed))
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    versions.dedup_by(|a, b| a == b);
    let hosts_where = |keep: &dyn Fn(&Policy) -> bool| -> Vec<String> {
        policies
            .iter()
            .filter(|(_, p)| keep(p))
            .map(|(h, _)| h.clone())
            .collect()
    };
    let rows = versions
        .into_iter()
        .map(|v| Row {
            version: v.clone(),
            available: hosts_where(&|p| p.available.contains(v)),
            installed: hosts_where(&|p| p.installed.as_ref() == Some(v)),
            candidate: hosts_where(&|p| p.candidate.as_ref() == Some(v)),
            cached: Vec::new(),
        })
        .collect::<Vec<_>>();
    let disagreements = policies
        .iter()
        .filter_map(|(host, p)| {
            let missing: Vec<Version> = rows
                .iter()
                .filter(|r| !r.available.is_empty() && !p.available.contains(&r.version))
                .map(|r| r.version.clone())
                .collect();
            (!missing.is_empty()).then(|| Disagreement {
                host: host.clone(),
                missing,
            })
        })
        .collect();
    StageVersions {
        stage: stage.to_string(),
        answered: policies.iter().map(|(h, _)| h.clone()).collect(),
        rows,
        disagreements,
        caches_unread: Vec::new(),
    }
}

/// `stage` with what each host holds in its `.deb` cache: `caches` gives,
/// per host in configuration order, its cached versions or why they could
/// not be read. A version only a cache holds gets its own row.
pub fn with_caches(
    mut stage: StageVersions,
    caches: &[(String, Result<Vec<Version>, String>)],
) -> StageVersions {
    for (host, cached) in caches {
        let versions = match cached {
            Ok(v) => v,
            Err(why) => {
                stage.caches_unread.push((host.clone(), why.clone()));
                continue;
            }
        };
        for v in versions {
            match stage.rows.iter_mut().find(|r| r.version == *v) {
                Some(row) => row.cached.push(host.clone()),
                None => stage.rows.push(Row {
                    version: v.clone(),
                    available: Vec::new(),
                    installed: Vec::new(),
                    candidate: Vec::new(),
                    cached: vec![host.clone()],
                }),
            }
        }
    }
    stage.rows.sort_by(|a, b| b.version.cmp(&a.version));
    stage
}

/// `every host`, or the hosts named.
fn hosts_text(hosts: &[String], all: &[String]) -> String {
    if hosts.len() == all.len() && all.len() > 1 {
        "every host".to_string()
    } else {
        hosts.join(", ")
    }
}

/// What a row says besides its version: `candidate`, `runs on …`, where
/// it can be installed when not everywhere.
fn row_marks(row: &Row, all: &[String]) -> Vec<String> {
    let mut marks = Vec::new();
    if !row.candidate.is_empty() {
        marks.push(if row.candidate.len() == all.len() {
            "candidate".to_string()
        } else {
            format!("candidate on {}", row.candidate.join(", "))
        });
    }
    if !row.installed.is_empty() {
        marks.push(format!("runs on {}", hosts_text(&row.installed, all)));
    }
    if !row.cached.is_empty() {
        marks.push(format!("cached on {}", hosts_text(&row.cached, all)));
    }
    if row.available.is_empty() {
        marks.push("in no repository".to_string());
    } else if row.available.len() < all.len() {
        marks.push(format!("offered to {} only", row.available.join(", ")));
    }
    marks
}

/// Text: per stage, its versions newest first with their marks, then
/// where its hosts disagree; then the hosts that did not answer.
pub fn render_text(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let lists = if report.updated {
        "after `apt-get update`"
    } else {
        "from the current package lists (--no-update)"
    };
    writeln!(
        out,
        "{}: what each stage can install, {lists}",
        report.package
    )?;
    for s in &report.stages {
        writeln!(out)?;
        let total = s.answered.len()
            + report
                .failures
                .iter()
                .filter(|f| f.stage == s.stage)
                .count();
        if total == s.answered.len() {
            writeln!(out, "{} ({total} host(s))", s.stage)?;
        } else {
            writeln!(
                out,
                "{} ({} of {total} host(s) answered)",
                s.stage,
                s.answered.len()
            )?;
        }
        if s.rows.is_empty() {
            if !s.answered.is_empty() {
                writeln!(
                    out,
                    "  no version: apt on these hosts knows no `{}`",
                    report.package
                )?;
            }
            continue;
        }
        let width = s
            .rows
            .iter()
            .map(|r| r.version.to_string().chars().count())
            .max()
            .unwrap_or(0);
        for r in &s.rows {
            let marks = row_marks(r, &s.answered).join(", ");
            let line = format!("  {:width$}  {marks}", r.version.to_string());
            writeln!(out, "{}", line.trim_end())?;
        }
        if !s.disagreements.is_empty() {
            writeln!(
                out,
                "  the hosts of `{}` disagree on what they can install:",
                s.stage
            )?;
            for d in &s.disagreements {
                let missing: Vec<String> = d.missing.iter().map(ToString::to_string).collect();
                writeln!(out, "    {} lacks {}", d.host, missing.join(", "))?;
            }
            writeln!(
                out,
                "  note: their apt sources or package lists differ; `apt-get update` there, and compare `/etc/apt/sources.list*`"
            )?;
        }
        for (host, why) in &s.caches_unread {
            writeln!(out, "  note: {host}: its .deb cache cannot be read: {why}")?;
        }
    }
    if !report.failures.is_empty() {
        writeln!(out)?;
        writeln!(out, "Hosts that did not answer:")?;
        for f in &report.failures {
            writeln!(out, "  {} ({})  {}", f.host, f.stage, f.error)?;
        }
    }
    Ok(())
}

/// JSON: `{"package", "updated", "stages": [{"stage", "hosts", "agree",
/// "versions": [{"version", "candidate", "installed", "available",
/// "cached"}], "disagreements": [{"host", "missing"}], "caches_unread":
/// [{"host", "error"}]}], "unreachable": [{"stage", "host", "error"}]}`;
/// host lists are arrays of names, versions newest first.
pub fn render_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let stages: Vec<serde_json::Value> = report
        .stages
        .iter()
        .map(|s| {
            serde_json::json!({
                "stage": s.stage,
                "hosts": s.answered,
                "agree": s.disagreements.is_empty(),
                "versions": s.rows.iter().map(|r| serde_json::json!({
                    "version": r.version,
                    "candidate": r.candidate,
                    "installed": r.installed,
                    "available": r.available,
                    "cached": r.cached,
                })).collect::<Vec<_>>(),
                "disagreements": s.disagreements.iter().map(|d| serde_json::json!({
                    "host": d.host,
                    "missing": d.missing,
                })).collect::<Vec<_>>(),
                "caches_unread": s.caches_unread.iter().map(|(host, error)| serde_json::json!({
                    "host": host,
                    "error": error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "package": report.package.as_str(),
        "updated": report.updated,
        "stages": stages,
        "unreachable": report.failures.iter().map(|f| serde_json::json!({
            "stage": f.stage, "host": f.host, "error": f.error,
        })).collect::<Vec<_>>(),
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn policy(installed: Option<&str>, candidate: Option<&str>, available: &[&str]) -> Policy {
        let mut available: Vec<Version> = available.iter().map(|a| v(a)).collect();
        available.sort_by(|a, b| b.cmp(a));
        Policy {
            installed: installed.map(v),
            candidate: candidate.map(v),
            available,
        }
    }

    #[test]
    fn versions_are_listed_newest_first_in_dpkg_order() {
        let hosts = [(
            "h1".to_string(),
            policy(
                Some("1.9~pr659-61"),
                Some("1:1.0-1"),
                &[
                    "1.9~pr659-61",
                    "1.10~pr692-102",
                    "1:1.0-1",
                    "2.0-1",
                    "1.10~rc1-1",
                ],
            ),
        )];
        let s = for_stage("test", &hosts);
        let order: Vec<String> = s.rows.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(
            order,
            // after `~`, `rc1` sorts after `pr692`: letters compare as in ASCII
            [
                "1:1.0-1",
                "2.0-1",
                "1.10~rc1-1",
                "1.10~pr692-102",
                "1.9~pr659-61"
            ]
        );
        assert_eq!(s.rows[0].candidate, ["h1"]);
        assert_eq!(s.rows[4].installed, ["h1"]);
        assert!(s.disagreements.is_empty());
    }

    #[test]
    fn hosts_that_lack_versions_others_have_disagree() {
        let hosts = [
            (
                "p1".to_string(),
                policy(Some("0.77"), Some("0.81"), &["0.81", "0.77"]),
            ),
            (
                "p2".to_string(),
                policy(Some("0.77"), Some("0.77"), &["0.77"]),
            ),
            (
                "p3".to_string(),
                policy(None, Some("0.81"), &["0.81", "0.77"]),
            ),
        ];
        let s = for_stage("prod", &hosts);
        assert_eq!(
            s.disagreements,
            [Disagreement {
                host: "p2".into(),
                missing: vec![v("0.81")],
            }]
        );
        let newest = &s.rows[0];
        assert_eq!(newest.available, ["p1", "p3"]);
        assert_eq!(newest.candidate, ["p1", "p3"]);
        assert_eq!(
            row_marks(newest, &s.answered),
            ["candidate on p1, p3", "offered to p1, p3 only"]
        );
        assert_eq!(
            row_marks(&s.rows[1], &s.answered),
            ["candidate on p2", "runs on p1, p2"]
        );
    }

    #[test]
    fn an_installed_version_no_repository_offers_is_listed() {
        let hosts = [
            (
                "a".to_string(),
                policy(Some("3.0-1"), Some("3.0-1"), &["2.0-1"]),
            ),
            ("b".to_string(), policy(None, Some("2.0-1"), &["2.0-1"])),
        ];
        let s = for_stage("test", &hosts);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(
            row_marks(&s.rows[0], &s.answered),
            ["candidate on a", "runs on a", "in no repository"]
        );
        assert!(s.disagreements.is_empty(), "3.0-1 is offered to nobody");
    }

    fn sample() -> Report {
        let hosts = [
            (
                "test-1".to_string(),
                policy(Some("0.77"), Some("0.81"), &["0.81", "0.77"]),
            ),
            (
                "test-2".to_string(),
                policy(Some("0.77"), Some("0.81"), &["0.81", "0.77"]),
            ),
        ];
        let prod = [
            (
                "prod-1".to_string(),
                policy(Some("0.81"), Some("0.81"), &["0.81", "0.77"]),
            ),
            ("prod-2".to_string(), policy(None, Some("0.77"), &["0.77"])),
        ];
        Report {
            package: "fastpath".parse().unwrap(),
            updated: true,
            stages: vec![for_stage("test", &hosts), for_stage("prod", &prod)],
            failures: vec![Failure {
                stage: "prod".into(),
                host: "prod-3".into(),
                error: "cannot connect".into(),
            }],
        }
    }

    #[test]
    fn text_lists_stages_versions_marks_and_disagreements() {
        let mut out = Vec::new();
        render_text(&sample(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "fastpath: what each stage can install, after `apt-get update`\n\
             \n\
             test (2 host(s))\n\
             \x20 0.81  candidate\n\
             \x20 0.77  runs on every host\n\
             \n\
             prod (2 of 3 host(s) answered)\n\
             \x20 0.81  candidate on prod-1, runs on prod-1, offered to prod-1 only\n\
             \x20 0.77  candidate on prod-2\n\
             \x20 the hosts of `prod` disagree on what they can install:\n\
             \x20   prod-2 lacks 0.81\n\
             \x20 note: their apt sources or package lists differ; `apt-get update` there, and compare `/etc/apt/sources.list*`\n\
             \n\
             Hosts that did not answer:\n\
             \x20 prod-3 (prod)  cannot connect\n"
        );
    }

    #[test]
    fn json_has_every_stage_version_and_host() {
        let mut out = Vec::new();
        render_json(&sample(), &mut out).unwrap();
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["package"], "fastpath");
        assert_eq!(j["updated"], true);
        assert_eq!(j["stages"][0]["agree"], true);
        assert_eq!(
            j["stages"][0]["versions"][1],
            serde_json::json!({"version": "0.77", "candidate": [], "installed": ["test-1", "test-2"], "available": ["test-1", "test-2"], "cached": []})
        );
        assert_eq!(j["stages"][1]["agree"], false);
        assert_eq!(
            j["stages"][1]["disagreements"],
            serde_json::json!([{"host": "prod-2", "missing": ["0.81"]}])
        );
        assert_eq!(j["unreachable"][0]["host"], "prod-3");
    }

    #[test]
    fn cached_versions_are_marked_and_a_version_only_a_cache_holds_has_its_row() {
        let policies = [
            (
                "t1".to_string(),
                policy(Some("0.81"), Some("0.81"), &["0.81"]),
            ),
            (
                "t2".to_string(),
                policy(Some("0.81"), Some("0.81"), &["0.81"]),
            ),
            (
                "t3".to_string(),
                policy(Some("0.81"), Some("0.81"), &["0.81"]),
            ),
        ];
        let s = with_caches(
            for_stage("test", &policies),
            &[
                ("t1".into(), Ok(vec![v("0.77"), v("0.81")])),
                ("t2".into(), Ok(vec![v("0.77")])),
                (
                    "t3".into(),
                    Err("`/var/cache/deployer` is a symbolic link".into()),
                ),
            ],
        );
        let versions: Vec<String> = s.rows.iter().map(|r| r.version.to_string()).collect();
        assert_eq!(versions, ["0.81", "0.77"]);
        assert_eq!(s.rows[1].cached, ["t1", "t2"]);
        assert!(s.rows[1].available.is_empty());
        assert_eq!(s.rows[0].cached, ["t1"]);
        assert_eq!(
            row_marks(&s.rows[1], &s.answered),
            ["cached on t1, t2", "in no repository"]
        );
        assert_eq!(s.caches_unread.len(), 1);
        let report = Report {
            package: "fastpath".parse().unwrap(),
            updated: false,
            stages: vec![s],
            failures: Vec::new(),
        };
        let mut out = Vec::new();
        render_text(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("  note: t3: its .deb cache cannot be read: `/var/cache/deployer` is a symbolic link"),
            "{text}"
        );
        let mut out = Vec::new();
        render_json(&report, &mut out).unwrap();
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            j["stages"][0]["versions"][1]["cached"],
            serde_json::json!(["t1", "t2"])
        );
        assert_eq!(j["stages"][0]["caches_unread"][0]["host"], "t3");
    }
}
