//! What a deploy will do, host by host, decided before anything changes:
//! the target version, which hosts move and in which batches, and every
//! reason to refuse. Pure: takes what the hosts said, returns a [`Plan`] or
//! a [`Refusal`]. `--dry-run` prints the very plan a real run executes.

use std::fmt::Write as _;

use crate::apt::Policy;
use crate::package::PackageName;
use crate::status::PackageState;
use crate::version::Version;

/// Which version to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// Exactly this version (an upgrade or a rollback).
    Exact(Version),
    /// The newest version apt can install (the candidate), which must be the
    /// same on every host of the stage.
    Newest,
}

/// What one host of the target stage runs and can install.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// The host as written in the configuration.
    pub host: String,
    /// Its current state of the package.
    pub state: PackageState,
    /// What apt says it can install.
    pub policy: Policy,
}

/// A stage's name with each host's state (`None`: the host did not answer).
pub type StageStates = (String, Vec<(String, Option<PackageState>)>);

/// Everything the plan is decided from.
#[derive(Debug, Clone)]
pub struct Input {
    /// The package.
    pub package: PackageName,
    /// The target stage.
    pub stage: String,
    /// Whether the stage asks for confirmation.
    pub critical: bool,
    /// The stage before the target stage, with each host's state (`None`
    /// where the host did not answer); `None` for the first stage.
    pub previous: Option<StageStates>,
    /// The hosts of the target stage.
    pub hosts: Vec<HostFacts>,
    /// The version asked for.
    pub wanted: Wanted,
    /// `--force`: override the stage order guard.
    pub force: bool,
    /// Hosts changed at once after the first one.
    pub batch_size: usize,
}

/// One host to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The host.
    pub host: String,
    /// What it runs now.
    pub from: PackageState,
    /// Whether the target is older than what it runs (`--allow-downgrades`).
    pub downgrade: bool,
}

/// The decided deploy.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The package.
    pub package: PackageName,
    /// The target stage.
    pub stage: String,
    /// The version every host will run.
    pub version: Version,
    /// Whether the stage asks for confirmation.
    pub critical: bool,
    /// Hosts to change, in order.
    pub steps: Vec<Step>,
    /// Hosts already at the target version.
    pub unchanged: Vec<String>,
    /// Positions in `steps`, batch by batch: the first host alone, then
    /// `batch_size` at a time.
    pub batches: Vec<Vec<usize>>,
    /// Safety rails overridden by `--force`, worded for the history.
    pub overridden: Vec<String>,
}

/// Why a deploy is refused before any host is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// apt has no candidate on some hosts.
    NoCandidate {
        /// Hosts without a candidate.
        hosts: Vec<String>,
    },
    /// Hosts would install different "newest" versions.
    CandidatesDisagree {
        /// Each host's candidate.
        hosts: Vec<(String, Option<Version>)>,
    },
    /// Some hosts cannot install the version.
    Unavailable {
        /// The version asked for.
        version: Version,
        /// Hosts lacking it, with what they can install.
        hosts: Vec<(String, Vec<Version>)>,
    },
    /// The previous stage does not run the version yet.
    OrderGuard {
        /// The version asked for.
        version: Version,
        /// The previous stage.
        previous: String,
        /// Its hosts that run something older, or did not answer.
        hosts: Vec<(String, Option<PackageState>)>,
    },
}

impl Refusal {
    /// The message and notes for the operator.
    pub fn explain(&self, package: &PackageName, stage: &str) -> (String, Vec<String>) {
        match self {
            Refusal::NoCandidate { hosts } => (
                format!(
                    "apt on {} has no installable version of `{package}`",
                    hosts.join(", ")
                ),
                vec!["check the hosts' apt sources, or name a VERSION".to_string()],
            ),
            Refusal::CandidatesDisagree { hosts } => {
                let list = hosts
                    .iter()
                    .map(|(h, v)| {
                        format!(
                            "{h}: {}",
                            v.as_ref().map_or("(none)".to_string(), ToString::to_string)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    format!("the hosts of `{stage}` would install different versions of `{package}`: {list}"),
                    vec!["name the VERSION to deploy explicitly".to_string()],
                )
            }
            Refusal::Unavailable { version, hosts } => {
                let mut notes: Vec<String> = hosts
                    .iter()
                    .map(|(h, avail)| {
                        let list = if avail.is_empty() {
                            "nothing".to_string()
                        } else {
                            avail
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        format!("{h} can install: {list}")
                    })
                    .collect();
                notes.push(
                    "nothing was changed; publish the version to the hosts' repository first"
                        .to_string(),
                );
                (
                    format!(
                        "`{package}` {version} cannot be installed on {} host(s) of `{stage}`",
                        hosts.len()
                    ),
                    notes,
                )
            }
            Refusal::OrderGuard {
                version,
                previous,
                hosts,
            } => {
                let mut notes: Vec<String> = hosts
                    .iter()
                    .map(|(h, s)| match s {
                        Some(s) => format!("{h} ({previous}) runs {s}"),
                        None => format!("{h} ({previous}) did not answer"),
                    })
                    .collect();
                notes.push(format!(
                    "deploy {version} to `{previous}` first, or pass --force to override (it is recorded in the history)"
                ));
                (
                    format!(
                        "refusing to deploy `{package}` {version} to `{stage}`: not every host of the previous stage `{previous}` runs it yet"
                    ),
                    notes,
                )
            }
        }
    }
}

fn choose_version(input: &Input) -> Result<Version, Refusal> {
    match &input.wanted {
        Wanted::Exact(v) => Ok(v.clone()),
        Wanted::Newest => {
            let missing: Vec<String> = input
                .hosts
                .iter()
                .filter(|h| h.policy.candidate.is_none())
                .map(|h| h.host.clone())
                .collect();
            if !missing.is_empty() {
                return Err(Refusal::NoCandidate { hosts: missing });
            }
            let first = input.hosts.first().and_then(|h| h.policy.candidate.clone());
            let all_same = input.hosts.iter().all(|h| h.policy.candidate == first);
            match first {
                Some(v) if all_same => Ok(v),
                _ => Err(Refusal::CandidatesDisagree {
                    hosts: input
                        .hosts
                        .iter()
                        .map(|h| (h.host.clone(), h.policy.candidate.clone()))
                        .collect(),
                }),
            }
        }
    }
}

/// Decide the plan, or why not.
pub fn make(input: &Input) -> Result<Plan, Refusal> {
    let chosen = choose_version(input)?;
    // apt matches `PKG=VERSION` by text: send the spelling apt knows
    // (`1.0-1`), not an equal one typed differently (`0:1.0-1`, `1.00-1`).
    let version = input
        .hosts
        .iter()
        .flat_map(|h| &h.policy.available)
        .find(|v| **v == chosen)
        .cloned()
        .unwrap_or(chosen);
    let runs_target = |s: &PackageState| matches!(s, PackageState::Installed(v) if *v == version);

    let lacking: Vec<(String, Vec<Version>)> = input
        .hosts
        .iter()
        .filter(|h| !runs_target(&h.state) && !h.policy.available.contains(&version))
        .map(|h| (h.host.clone(), h.policy.available.clone()))
        .collect();
    if !lacking.is_empty() {
        return Err(Refusal::Unavailable {
            version,
            hosts: lacking,
        });
    }

    let mut overridden = Vec::new();
    // The guard concerns rollouts: a host would move up to `version`.
    let upgrades = input
        .hosts
        .iter()
        .any(|h| h.state.version().is_none_or(|v| *v < version));
    if let (true, Some((previous, prev_hosts))) = (upgrades, &input.previous) {
        let behind: Vec<(String, Option<PackageState>)> = prev_hosts
            .iter()
            // only an installed and configured version counts as running it
            .filter(|(_, s)| !matches!(s, Some(PackageState::Installed(v)) if *v >= version))
            .cloned()
            .collect();
        if !behind.is_empty() {
            if input.force {
                overridden.push(format!(
                    "stage order: {} host(s) of `{previous}` do not run {version}",
                    behind.len()
                ));
            } else {
                return Err(Refusal::OrderGuard {
                    version,
                    previous: previous.clone(),
                    hosts: behind,
                });
            }
        }
    }

    let mut steps = Vec::new();
    let mut unchanged = Vec::new();
    for h in &input.hosts {
        if runs_target(&h.state) {
            unchanged.push(h.host.clone());
        } else {
            steps.push(Step {
                host: h.host.clone(),
                from: h.state.clone(),
                downgrade: h.state.version().is_some_and(|v| *v > version),
            });
        }
    }
    let batches = batches(steps.len(), input.batch_size);
    Ok(Plan {
        package: input.package.clone(),
        stage: input.stage.clone(),
        version,
        critical: input.critical,
        steps,
        unchanged,
        batches,
        overridden,
    })
}

/// The first host alone (a canary), then `size` hosts at a time.
pub fn batches(count: usize, size: usize) -> Vec<Vec<usize>> {
    if count == 0 {
        return Vec::new();
    }
    let mut out = vec![vec![0]];
    let rest: Vec<usize> = (1..count).collect();
    out.extend(rest.chunks(size.max(1)).map(<[usize]>::to_vec));
    out
}

impl Plan {
    /// The plan for people; `details` gives, per host in `steps`, the
    /// command that will run and what apt says it would do.
    pub fn describe(&self, details: &[(String, Vec<String>)]) -> String {
        let mut s = String::new();
        let critical = if self.critical {
            " (critical stage)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "Plan: `{}` {} on `{}`{critical}",
            self.package, self.version, self.stage
        );
        if self.steps.is_empty() {
            let _ = writeln!(
                s,
                "  every host already runs {}; nothing to do",
                self.version
            );
        }
        for (b, batch) in self.batches.iter().enumerate() {
            let _ = writeln!(s, "  batch {}:", b + 1);
            for &i in batch {
                let step = &self.steps[i];
                let what = if step.downgrade {
                    "downgrade"
                } else {
                    "install"
                };
                let _ = writeln!(
                    s,
                    "    {}: {} -> {} ({what})",
                    step.host, step.from, self.version
                );
                if let Some((command, apt)) = details.get(i) {
                    let _ = writeln!(s, "      runs: {command}");
                    for line in apt {
                        let _ = writeln!(s, "      apt:  {line}");
                    }
                }
            }
        }
        if !self.unchanged.is_empty() {
            let _ = writeln!(
                s,
                "  already at {} (left alone): {}",
                self.version,
                self.unchanged.join(", ")
            );
        }
        for o in &self.overridden {
            let _ = writeln!(s, "  forced past: {o}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn installed(s: &str) -> PackageState {
        PackageState::Installed(v(s))
    }

    fn facts(host: &str, state: PackageState, candidate: &str, available: &[&str]) -> HostFacts {
        HostFacts {
            host: host.into(),
            state,
            policy: Policy {
                installed: None,
                candidate: (!candidate.is_empty()).then(|| v(candidate)),
                available: available.iter().map(|a| v(a)).collect(),
            },
        }
    }

    fn input(hosts: Vec<HostFacts>, wanted: Wanted) -> Input {
        Input {
            package: "fastpath".parse().unwrap(),
            stage: "prod".into(),
            critical: true,
            previous: None,
            hosts,
            wanted,
            force: false,
            batch_size: 2,
        }
    }

    const BOTH: [&str; 2] = ["0.81~pr748-191", "0.77~pr705-119"];

    #[test]
    fn newest_is_the_common_candidate() {
        let i = input(
            vec![
                facts("p1", installed("0.77~pr705-119"), "0.81~pr748-191", &BOTH),
                facts("p2", PackageState::NotInstalled, "0.81~pr748-191", &BOTH),
            ],
            Wanted::Newest,
        );
        let p = make(&i).unwrap();
        assert_eq!(p.version, v("0.81~pr748-191"));
        assert_eq!(p.steps.len(), 2);
        assert!(!p.steps[0].downgrade);
    }

    #[test]
    fn disagreeing_candidates_are_refused() {
        let i = input(
            vec![
                facts("p1", PackageState::NotInstalled, "0.81~pr748-191", &BOTH),
                facts("p2", PackageState::NotInstalled, "0.77~pr705-119", &BOTH),
            ],
            Wanted::Newest,
        );
        assert!(matches!(make(&i), Err(Refusal::CandidatesDisagree { .. })));
        let none = input(
            vec![facts("p1", PackageState::NotInstalled, "", &[])],
            Wanted::Newest,
        );
        assert_eq!(
            make(&none).unwrap_err(),
            Refusal::NoCandidate {
                hosts: vec!["p1".into()]
            }
        );
    }

    #[test]
    fn rollback_is_a_downgrade_and_skips_hosts_already_there() {
        let i = input(
            vec![
                facts("p1", installed("0.81~pr748-191"), "0.81~pr748-191", &BOTH),
                facts("p2", installed("0.77~pr705-119"), "0.81~pr748-191", &BOTH),
            ],
            Wanted::Exact(v("0.77~pr705-119")),
        );
        let p = make(&i).unwrap();
        assert_eq!(p.steps.len(), 1);
        assert!(p.steps[0].downgrade);
        assert_eq!(p.unchanged, vec!["p2".to_string()]);
    }

    #[test]
    fn unavailable_version_names_each_host_and_what_it_has() {
        let i = input(
            vec![
                facts("p1", installed("0.77~pr705-119"), "0.81~pr748-191", &BOTH),
                facts(
                    "p2",
                    installed("0.77~pr705-119"),
                    "0.77~pr705-119",
                    &["0.77~pr705-119"],
                ),
            ],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        let e = make(&i).unwrap_err();
        assert_eq!(
            e,
            Refusal::Unavailable {
                version: v("0.81~pr748-191"),
                hosts: vec![("p2".into(), vec![v("0.77~pr705-119")])]
            }
        );
        let (msg, notes) = e.explain(&"fastpath".parse().unwrap(), "prod");
        assert!(
            msg.contains("cannot be installed on 1 host(s) of `prod`"),
            "{msg}"
        );
        assert_eq!(notes[0], "p2 can install: 0.77~pr705-119");
    }

    fn with_previous(mut i: Input, prev: Vec<(&str, Option<PackageState>)>) -> Input {
        i.previous = Some((
            "hel".into(),
            prev.into_iter().map(|(h, s)| (h.to_string(), s)).collect(),
        ));
        i
    }

    #[test]
    fn order_guard_refuses_a_version_the_previous_stage_lacks() {
        let base = input(
            vec![facts("p1", installed("0.77~pr705-119"), "", &BOTH)],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        let i = with_previous(
            base.clone(),
            vec![
                ("h1", Some(installed("0.81~pr748-191"))),
                ("h2", Some(installed("0.77~pr705-119"))),
            ],
        );
        let e = make(&i).unwrap_err();
        assert!(
            matches!(&e, Refusal::OrderGuard { hosts, .. } if hosts.len() == 1 && hosts[0].0 == "h2")
        );
        let (msg, notes) = e.explain(&"fastpath".parse().unwrap(), "prod");
        assert!(msg.contains("previous stage `hel`"), "{msg}");
        assert!(notes.last().unwrap().contains("--force"));

        let mut forced = i.clone();
        forced.force = true;
        let p = make(&forced).unwrap();
        assert_eq!(p.overridden.len(), 1);

        let unknown = with_previous(base.clone(), vec![("h1", None)]);
        assert!(matches!(make(&unknown), Err(Refusal::OrderGuard { .. })));

        let ok = with_previous(base, vec![("h1", Some(installed("0.81~pr748-191")))]);
        assert!(make(&ok).is_ok());
    }

    #[test]
    fn rollback_passes_the_order_guard() {
        let i = with_previous(
            input(
                vec![facts("p1", installed("0.81~pr748-191"), "", &BOTH)],
                Wanted::Exact(v("0.77~pr705-119")),
            ),
            vec![("h1", Some(installed("0.70-1")))],
        );
        assert!(make(&i).is_ok());
    }

    #[test]
    fn epoch_version_is_newer() {
        let i = input(
            vec![facts(
                "p1",
                installed("2.0-1"),
                "1:1.0-1",
                &["1:1.0-1", "2.0-1"],
            )],
            Wanted::Newest,
        );
        let p = make(&i).unwrap();
        assert_eq!(p.version, v("1:1.0-1"));
        assert!(!p.steps[0].downgrade);
    }

    #[test]
    fn version_is_sent_as_apt_spells_it() {
        let i = input(
            vec![facts(
                "p1",
                installed("0.77~pr705-119"),
                "",
                &["0.81~pr748-191"],
            )],
            Wanted::Exact(v("0:0.81~pr748-191")),
        );
        assert_eq!(make(&i).unwrap().version.to_string(), "0.81~pr748-191");
    }

    #[test]
    fn broken_previous_host_does_not_count_as_running_the_version() {
        let broken = PackageState::Broken {
            version: Some(v("0.81~pr748-191")),
            state: "half-configured".into(),
        };
        let i = with_previous(
            input(
                vec![facts("p1", installed("0.77~pr705-119"), "", &BOTH)],
                Wanted::Exact(v("0.81~pr748-191")),
            ),
            vec![("h1", Some(broken))],
        );
        assert!(matches!(make(&i), Err(Refusal::OrderGuard { .. })));
    }

    #[test]
    fn batches_start_with_one_canary() {
        assert_eq!(batches(0, 3), Vec::<Vec<usize>>::new());
        assert_eq!(batches(1, 3), vec![vec![0]]);
        assert_eq!(batches(5, 2), vec![vec![0], vec![1, 2], vec![3, 4]]);
        assert_eq!(batches(3, 1), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(batches(3, 0), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn description_lists_batches_commands_and_apt() {
        let i = input(
            vec![
                facts("p1", installed("0.77~pr705-119"), "0.81~pr748-191", &BOTH),
                facts("p2", installed("0.81~pr748-191"), "0.81~pr748-191", &BOTH),
            ],
            Wanted::Newest,
        );
        let p = make(&i).unwrap();
        let text = p.describe(&[(
            "sudo -n apt-get install".into(),
            vec!["Inst fastpath [0.77] (0.81)".into()],
        )]);
        insta::assert_snapshot!(text);
    }
}
