//! Which version a rollback goes back to, and which versions a stage ran
//! before, both read from the stage's history: the local log merged with
//! the logs its hosts keep ([`history::read_stage`],
//! [`history::merge_sourced`]), so every operator's attempts count, as
//! `history --hosts STAGE` shows them.
//!
//! Pure apart from [`read`], which reads those logs. Only successful
//! records count; a host's record that another log contradicts is left
//! out, and so is a version that is not a valid Debian version (a host's
//! log is text root on that host could have written).

use crate::history::{self, HostResult, Outcome, Record, Sourced};
use crate::text;
use crate::version::Version;

use super::context::Context;

/// A version the stage ran, as its history shows it: on which hosts, and
/// the newest record that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The version.
    pub version: Version,
    /// The hosts the records show running it (before or after a change).
    pub hosts: Vec<String>,
    /// The newest record showing it.
    pub from: Origin,
}

/// A record, as a rollback's plan and refusals name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The attempt's id.
    pub id: String,
    /// `deploy`, `promote` or `rollback`.
    pub action: String,
    /// The version it aimed for.
    pub version: Option<String>,
    /// Who ran it ([`Record::who`]).
    pub who: String,
    /// When it started.
    pub time: String,
}

impl Origin {
    fn of(record: &Record) -> Origin {
        let safe = |s: &str| text::clipped_line(s, 120);
        Origin {
            id: safe(&record.id),
            action: safe(&record.action),
            version: record.version.as_deref().map(safe),
            who: safe(&record.who()),
            time: safe(&record.time),
        }
    }
}

impl std::fmt::Display for Origin {
    /// `deploy `ID` of 0.81 by alice@laptop at 2026-12-07T06:00:00Z`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}`", self.action, self.id)?;
        if let Some(v) = &self.version {
            write!(f, " of {v}")?;
        }
        write!(f, " by {} at {}", self.who, self.time)
    }
}

/// The version a rollback without a version goes back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// What the stage's changed hosts ran before that record.
    pub version: Version,
    /// The stage's most recent successful deploy or promotion of the
    /// package that changed a host.
    pub from: Origin,
}

/// Why no version could be chosen: a sentence, and the versions the stage
/// ran that the operator may pick from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoChoice {
    /// Why, for the `error:` line.
    pub why: String,
    /// The versions to pick from, newest record first.
    pub candidates: Vec<Candidate>,
}

/// Whether `s` counts: a successful record of `package` on `stage` that no
/// other log contradicts (the local history is trusted over a host's).
fn counts(s: &Sourced, package: &str, stage: &str) -> bool {
    let r = &s.record;
    r.outcome == Outcome::Success
        && r.package.as_deref() == Some(package)
        && r.stage == stage
        && (s.source == "local" || s.disagreements.is_empty())
}

/// The version the stage ran before its most recent successful `deploy`
/// or `promote` of `package` that changed a host: the `from` of that
/// record's changed hosts, when they all say the same version. `records`
/// is oldest first, as [`history::merge_sourced`] returns it. Rollbacks do
/// not count (a second rollback does not go further back), nor do
/// attempts that failed, were refused or changed nothing.
pub fn choose(records: &[Sourced], package: &str, stage: &str) -> Result<Choice, NoChoice> {
    let latest = records.iter().rev().find(|s| {
        counts(s, package, stage)
            && matches!(s.record.action.as_str(), "deploy" | "promote")
            && s.record
                .hosts
                .iter()
                .any(|h| h.result == HostResult::Changed)
    });
    let Some(latest) = latest else {
        return Err(NoChoice {
            why: format!(
                "no successful `deploy` or `promote` of `{package}` on `{stage}` is on record \
                 (in the local history or the hosts'), so there is no version before it"
            ),
            candidates: ran_before(records, package, stage),
        });
    };
    let record = &latest.record;
    let origin = Origin::of(record);
    let mut before: Vec<(Option<Version>, Vec<String>)> = Vec::new();
    for h in record
        .hosts
        .iter()
        .filter(|h| h.result == HostResult::Changed)
    {
        let version = h.from.as_deref().and_then(|v| v.parse::<Version>().ok());
        let host = text::clipped_line(&h.host, 120);
        match before.iter_mut().find(|(v, _)| *v == version) {
            Some((_, hosts)) => hosts.push(host),
            None => before.push((version, vec![host])),
        }
    }
    match before.as_slice() {
        [(Some(version), _)] => Ok(Choice {
            version: version.clone(),
            from: origin,
        }),
        [(None, _)] => Err(NoChoice {
            why: format!(
                "before {origin}, `{package}` was not installed on `{stage}` (or its version \
                 is not on record): there is no version to go back to"
            ),
            candidates: ran_before(records, package, stage),
        }),
        _ => Err(NoChoice {
            why: format!(
                "before {origin}, the hosts of `{stage}` it changed did not run one version"
            ),
            candidates: before
                .into_iter()
                .filter_map(|(v, hosts)| {
                    v.map(|version| Candidate {
                        version,
                        hosts,
                        from: origin.clone(),
                    })
                })
                .collect(),
        }),
    }
}

/// Every version the stage ran according to its history: the `from` and
/// the `to` of each host of each successful record (deploy, promote or
/// rollback) of `package` on `stage`, newest record first.
pub fn ran_before(records: &[Sourced], package: &str, stage: &str) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = Vec::new();
    for s in records.iter().rev().filter(|s| counts(s, package, stage)) {
        let record = &s.record;
        for h in &record.hosts {
            let reached = matches!(h.result, HostResult::Changed | HostResult::Unchanged);
            let versions = [Some(&h.from), reached.then_some(&h.to)];
            for version in versions.into_iter().flatten().flatten() {
                let Ok(version) = version.parse::<Version>() else {
                    continue;
                };
                let host = text::clipped_line(&h.host, 120);
                match found.iter_mut().find(|c| c.version == version) {
                    Some(c) if !c.hosts.contains(&host) => c.hosts.push(host),
                    Some(_) => {}
                    None => found.push(Candidate {
                        version,
                        hosts: vec![host],
                        from: Origin::of(record),
                    }),
                }
            }
        }
    }
    found
}

/// The candidates as `note:` lines, each with the command that picks it.
pub fn candidate_notes(candidates: &[Candidate], package: &str, stage: &str) -> Vec<String> {
    if candidates.is_empty() {
        return vec![format!(
            "the history holds no version of `{package}` on `{stage}`; name one: \
             `deployer rollback {package} {stage} VERSION` (`deployer versions {package} {stage}` \
             lists what apt can install)"
        )];
    }
    let mut notes: Vec<String> = candidates
        .iter()
        .map(|c| {
            format!(
                "candidate {} (on {}; {}): `deployer rollback {package} {stage} {}`",
                c.version,
                c.hosts.join(", "),
                c.from,
                c.version
            )
        })
        .collect();
    notes.push(format!(
        "pick one with `deployer rollback {package} {stage} VERSION`"
    ));
    notes
}

/// The stage's merged history (the local log and the logs its connected
/// hosts keep), oldest first; warnings about lines skipped and hosts not
/// read are printed. Fails when the local history cannot be read.
pub fn read(
    cx: &Context<'_>,
    fleet: &mut crate::fleet::Fleet,
    stage: &str,
) -> Result<Vec<Sourced>, String> {
    let local = history::read(&cx.config.history_file).map_err(|e| e.to_string())?;
    let hosts = history::read_stage(fleet, stage, cx.config.ssh.command_timeout);
    for w in local.warnings.iter().chain(&hosts.warnings) {
        cx.console.warn(w);
    }
    let (merged, disagreements) = history::merge_sourced(local.records, hosts.logs);
    for d in &disagreements {
        cx.console.warn(d);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HostRecord;

    const PKG: &str = "fastpath";

    fn host(name: &str, from: Option<&str>, to: &str, result: HostResult) -> HostRecord {
        HostRecord {
            host: name.into(),
            from: from.map(Into::into),
            to: Some(to.into()),
            result,
            message: None,
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        }
    }

    /// A record of `fastpath` on `prod` on day `day` of December, by the
    /// user and of the action `by_what` names (`"alice deploy"`).
    fn record(
        id: &str,
        day: u32,
        by_what: &str,
        outcome: Outcome,
        hosts: Vec<HostRecord>,
    ) -> Record {
        let (user, action) = by_what.split_once(' ').expect("user action");
        Record {
            id: id.into(),
            time: format!("2026-12-{day:02}T10:00:00Z"),
            user: user.into(),
            machine: "desk".into(),
            package: Some(PKG.into()),
            version: hosts.first().and_then(|h| h.to.clone()),
            hosts,
            ..history::Attempt::start(action).record("prod", outcome)
        }
    }

    /// Both hosts of `prod` changed from `from` to `to`.
    fn changed(from: &str, to: &str) -> Vec<HostRecord> {
        ["prod-1", "prod-2"]
            .map(|h| host(h, Some(from), to, HostResult::Changed))
            .to_vec()
    }

    /// `local` as the local history, `on_host` as the history `prod-1` keeps.
    fn merged(local: Vec<Record>, on_host: Vec<Record>) -> Vec<Sourced> {
        let log = history::HostLog {
            host: "prod-1".into(),
            stage: "prod".into(),
            records: on_host,
        };
        history::merge_sourced(local, vec![log]).0
    }

    const OK: Outcome = Outcome::Success;
    const FAILED: Outcome = Outcome::Failed;

    #[test]
    fn the_version_before_the_latest_success_by_any_operator() {
        // Alice's records are in the local history, Bob's only on a host
        let alice = vec![
            record("a1", 1, "alice deploy", OK, changed("1.0", "1.1")),
            record("a2", 3, "alice deploy", OK, changed("1.2", "1.3")),
        ];
        let bob = vec![
            record("b1", 2, "bob deploy", OK, changed("1.1", "1.2")),
            record("b2", 4, "bob promote", OK, changed("1.3", "1.4")),
        ];
        let choice = choose(&merged(alice, bob), PKG, "prod").unwrap();
        assert_eq!(choice.version.to_string(), "1.3");
        assert_eq!(choice.from.id, "b2");
        assert_eq!(choice.from.action, "promote");
        assert_eq!(choice.from.who, "bob@desk");
        assert_eq!(choice.from.time, "2026-12-04T10:00:00Z");
        assert!(choice
            .from
            .to_string()
            .contains("promote `b2` of 1.4 by bob@desk"));
    }

    #[test]
    fn failures_refusals_rollbacks_and_no_ops_do_not_count() {
        let unchanged = vec![host("prod-1", Some("1.0"), "1.0", HostResult::Unchanged)];
        let local = vec![
            record("a1", 1, "alice deploy", OK, changed("1.0", "1.1")),
            record("a2", 2, "alice deploy", FAILED, changed("1.1", "1.2")),
            record("a3", 3, "alice rollback", OK, changed("1.1", "1.0")),
            record("a4", 4, "alice deploy", Outcome::Refused, Vec::new()),
            record("a5", 5, "alice deploy", OK, unchanged),
        ];
        let choice = choose(&merged(local, Vec::new()), PKG, "prod").unwrap();
        assert_eq!(choice.version.to_string(), "1.0");
        assert_eq!(choice.from.id, "a1");
    }

    #[test]
    fn other_packages_and_stages_do_not_count() {
        let mut other = record("x", 5, "alice deploy", OK, changed("2.0", "2.1"));
        other.package = Some("ooni-api".into());
        let mut staging = record("y", 6, "alice deploy", OK, changed("3.0", "3.1"));
        staging.stage = "staging".into();
        let local = vec![
            record("a1", 1, "alice deploy", OK, changed("1.0", "1.1")),
            other,
            staging,
        ];
        let choice = choose(&merged(local, Vec::new()), PKG, "prod").unwrap();
        assert_eq!(choice.from.id, "a1");
    }

    #[test]
    fn hosts_that_disagree_are_refused_with_each_version() {
        let apart = vec![
            host("prod-1", Some("1.0"), "1.2", HostResult::Changed),
            host("prod-2", Some("1.1"), "1.2", HostResult::Changed),
            host("prod-3", Some("1.1"), "1.2", HostResult::Changed),
        ];
        let local = vec![
            record("a1", 1, "alice deploy", OK, changed("1.0", "1.1")),
            record("a2", 2, "alice deploy", OK, apart),
        ];
        let no = choose(&merged(local, Vec::new()), PKG, "prod").unwrap_err();
        assert!(no.why.contains("did not run one version"), "{}", no.why);
        let found: Vec<(String, Vec<String>, String)> = no
            .candidates
            .iter()
            .map(|c| (c.version.to_string(), c.hosts.clone(), c.from.id.clone()))
            .collect();
        let want = [
            ("1.0", vec!["prod-1"], "a2"),
            ("1.1", vec!["prod-2", "prod-3"], "a2"),
        ]
        .map(|(v, h, id)| {
            (
                v.to_string(),
                h.iter().map(ToString::to_string).collect(),
                id.to_string(),
            )
        });
        assert_eq!(found, want);
        let notes = candidate_notes(&no.candidates, PKG, "prod");
        assert!(
            notes[0].contains("`deployer rollback fastpath prod 1.0`"),
            "{notes:?}"
        );
        assert!(notes[1].contains("prod-2, prod-3"), "{notes:?}");
    }

    #[test]
    fn nothing_on_record_is_refused_with_what_the_stage_ran() {
        let none = choose(&[], PKG, "prod").unwrap_err();
        assert!(none.why.contains("no successful"), "{}", none.why);
        assert!(none.candidates.is_empty());
        assert!(candidate_notes(&none.candidates, PKG, "prod")[0].contains("VERSION"));
        // only a rollback on record: nothing to go back before, but its
        // versions are candidates
        let local = vec![record("r", 1, "alice rollback", OK, changed("1.1", "1.0"))];
        let no = choose(&merged(local, Vec::new()), PKG, "prod").unwrap_err();
        let versions: Vec<String> = no
            .candidates
            .iter()
            .map(|c| c.version.to_string())
            .collect();
        assert_eq!(versions, ["1.1", "1.0"]);
    }

    #[test]
    fn a_package_not_installed_before_has_no_version_to_go_back_to() {
        let fresh = vec![host("prod-1", None, "1.0", HostResult::Changed)];
        let local = vec![record("a1", 1, "alice deploy", OK, fresh)];
        let no = choose(&merged(local, Vec::new()), PKG, "prod").unwrap_err();
        assert!(no.why.contains("was not installed"), "{}", no.why);
    }

    #[test]
    fn a_host_record_another_log_contradicts_does_not_count() {
        // a host of `staging` holding a record of `prod` is marked
        let claimed = record("h1", 2, "mallory deploy", OK, changed("0.1", "1.1"));
        let local = vec![record("a1", 1, "alice deploy", OK, changed("1.0", "1.1"))];
        let log = history::HostLog {
            host: "staging-1".into(),
            stage: "staging".into(),
            records: vec![claimed],
        };
        let (records, warnings) = history::merge_sourced(local, vec![log]);
        assert!(!warnings.is_empty());
        assert_eq!(choose(&records, PKG, "prod").unwrap().from.id, "a1");
    }

    #[test]
    fn the_versions_a_stage_ran_are_froms_and_tos_of_successes() {
        let local = vec![
            record("a1", 1, "alice deploy", OK, changed("1.0", "1.1")),
            record("a2", 2, "alice deploy", FAILED, changed("1.1", "9.9")),
            record("a3", 3, "alice rollback", OK, changed("1.1", "1.0")),
        ];
        let ran = ran_before(&merged(local, Vec::new()), PKG, "prod");
        let versions: Vec<String> = ran.iter().map(|c| c.version.to_string()).collect();
        assert_eq!(versions, ["1.1", "1.0"]);
        assert_eq!(ran[0].from.id, "a3");
        assert_eq!(ran[0].hosts, ["prod-1", "prod-2"]);
    }
}
