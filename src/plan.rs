//! What a deploy will do, host by host, decided before anything changes:
//! the target version, which hosts move and in which batches, the exact
//! commands each host runs (holds included), what apt would change besides
//! the package, and every reason to refuse. Pure: takes what the hosts
//! said, returns a [`Plan`] or a [`Refusal`]; builds commands, never runs
//! them. `--dry-run` prints the very plan a real run executes.
//!
//! A plan is made twice: first without simulations, which decides the
//! version and the hosts to change; then each of those hosts simulates its
//! install ([`Plan::simulation`]) and the plan is made again with the
//! results in [`HostFacts::simulation`], which checks them. A plan whose
//! [`Plan::unsimulated`] is not empty must not be carried out.

use std::fmt::Write as _;

use crate::apt::{self, Policy, SideEffect, Simulation};
use crate::command::RemoteCommand;
use crate::debcache::{self, Cached};
use crate::package::PackageName;
use crate::status::PackageState;
use crate::text::{clipped_line, REMOTE_TEXT_MAX};
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
    /// Whether the host holds the package (`apt-mark hold`).
    pub held: bool,
    /// What `apt-get -s` says the plan's install would do on this host
    /// ([`Plan::simulation`]): `None` until it is simulated, `Err` with
    /// apt's words ([`apt::simulation_error`]) when the simulation failed.
    pub simulation: Option<Result<Simulation, String>>,
    /// The versions of the package in the host's `.deb` cache
    /// ([`crate::debcache`]), most recently kept first: a version the
    /// repository no longer offers is installed from there.
    pub cached: Vec<Cached>,
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
    /// Hosts changed at once after the first one (`--batch`, the stage's
    /// or the environment's `batch_size`): a count or a percentage of the
    /// hosts taking part.
    pub batch_size: Share,
    /// Hosts that may fail after the canary before the rollout halts (the
    /// stage's `max_failures`): a count or a percentage of the hosts
    /// taking part.
    pub max_failures: Share,
    /// `--allow-dependency-changes`: let apt remove, install or change
    /// packages other than the deployed one.
    pub allow_dependency_changes: bool,
    /// `[package:NAME] hold = yes`: deployer manages the package's hold,
    /// releasing it for the install and setting it after.
    pub hold: bool,
    /// `--allow-held`: deploy to hosts that hold the package, releasing the
    /// hold for the install and setting it again after.
    pub allow_held: bool,
    /// Whether changed hosts are put back when the rollout fails.
    pub rollback: bool,
    /// Whether this is a promotion (the version is the previous stage's):
    /// it may only move the stage forward.
    pub promote: bool,
    /// The hosts of the stage left out of the rollout ([`leave_out`]);
    /// they are not in `hosts`.
    pub left_out: Vec<LeftOut>,
}

/// Why a host of the target stage is left out of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leave {
    /// It could not be reached, or its state could not be read
    /// (`--skip-unreachable`); the error, one line.
    Down(String),
    /// The operator named it (`--exclude HOST`).
    Excluded,
}

impl std::fmt::Display for Leave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leave::Down(e) => write!(f, "down: {}", clipped_line(e, REMOTE_TEXT_MAX)),
            Leave::Excluded => f.write_str("excluded"),
        }
    }
}

/// A host of the target stage left out of a rollout: not locked, not
/// changed, recorded as `skipped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The host as written in the configuration.
    pub host: String,
    /// What it ran when it was last read (`None`: it did not answer).
    pub state: Option<PackageState>,
    /// Why it is left out.
    pub why: Leave,
}

/// One host of the target stage as first read, for [`leave_out`]: its
/// name, and its state or why it could not be read.
pub type HostAnswer = (String, Result<PackageState, String>);

/// Decide which hosts of `stage` are left out of the rollout: those named
/// in `exclude` (whatever they answered), and with `skip_unreachable` those
/// that did not answer. Never implicit: a host that did not answer without
/// `skip_unreachable` refuses the deploy ([`Refusal::Unreachable`]), and
/// so does leaving out every host ([`Refusal::NoHostLeft`]). The first
/// host taking part is the canary.
pub fn leave_out(
    stage: &[HostAnswer],
    exclude: &[String],
    skip_unreachable: bool,
) -> Result<Vec<LeftOut>, Refusal> {
    let mut left = Vec::new();
    let mut down = Vec::new();
    for (host, answer) in stage {
        let why = match answer {
            _ if exclude.contains(host) => Leave::Excluded,
            Ok(_) => continue,
            Err(e) if skip_unreachable => Leave::Down(e.clone()),
            Err(e) => {
                down.push((host.clone(), e.clone()));
                continue;
            }
        };
        left.push(LeftOut {
            host: host.clone(),
            state: answer.as_ref().ok().cloned(),
            why,
        });
    }
    if !down.is_empty() {
        return Err(Refusal::Unreachable { hosts: down });
    }
    if left.len() == stage.len() {
        return Err(Refusal::NoHostLeft { left_out: left });
    }
    Ok(left)
}

/// What happens to the package's hold (`apt-mark hold`) on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Not held, and deployer does not manage the hold.
    Untouched,
    /// Held: released before the install, set again after it, whatever
    /// its result.
    Release,
    /// Not held, and `hold = yes`: set after the install, whatever its
    /// result.
    Set,
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
    /// What happens to the hold.
    pub hold: Hold,
    /// What apt will change besides the package (only with
    /// `--allow-dependency-changes`; otherwise the plan is refused).
    pub side_effects: Vec<SideEffect>,
    /// The host's cached file of the target version, installed instead of
    /// the repository's when the repository no longer offers it.
    pub install_from: Option<Cached>,
    /// The host's cached file of the version it runs now, which puts it
    /// back (the rollback policy) when the repository no longer offers it.
    pub restore_from: Option<Cached>,
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
    /// [`Sizing::per_batch`] at a time.
    pub batches: Vec<Vec<usize>>,
    /// How the batches were cut, and the failure budget.
    pub sizing: Sizing,
    /// Safety rails overridden by `--force`, worded for the history.
    pub overridden: Vec<String>,
    /// Safety rails relaxed by `--allow-dependency-changes` or
    /// `--allow-held`, worded for the history.
    pub allowed: Vec<String>,
    /// Whether apt may change other packages (no `--no-remove`).
    pub allow_dependency_changes: bool,
    /// Whether changed hosts are put back when the rollout fails.
    pub rollback: bool,
    /// Hosts in `steps` whose install was not simulated yet: the plan of
    /// the first pass. Such a plan is only good for simulating.
    pub unsimulated: Vec<String>,
    /// Hosts of the stage left out of the rollout, and why.
    pub left_out: Vec<LeftOut>,
}

/// The commands one host runs for its step, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommands {
    /// `apt-mark unhold`, first, when the host holds the package.
    pub unhold: Option<RemoteCommand>,
    /// The install (for a rollback to nothing, the removal).
    pub main: RemoteCommand,
    /// `main` for people, when its text is a wrapper too long to read (the
    /// install of a cached file, [`debcache::install_shown`]).
    pub main_shown: Option<String>,
    /// `apt-mark hold`, last, whatever `main` did.
    pub hold: Option<RemoteCommand>,
}

impl HostCommands {
    /// Every command, in order.
    pub fn all(&self) -> Vec<&RemoteCommand> {
        self.unhold
            .iter()
            .chain([&self.main])
            .chain(self.hold.iter())
            .collect()
    }

    /// The commands on one line, for the plan's `runs:`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.unhold {
            let _ = write!(s, "{u} && ");
        }
        match &self.main_shown {
            Some(shown) => s.push_str(shown),
            None => {
                let _ = write!(s, "{}", self.main);
            }
        }
        if let Some(h) = &self.hold {
            let _ = write!(s, "; {h}");
        }
        s
    }
}

/// Why a deploy is refused before any host is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Some hosts of the stage did not answer, and `--skip-unreachable`
    /// was not given.
    Unreachable {
        /// Each such host, with why it did not answer.
        hosts: Vec<(String, String)>,
    },
    /// `--exclude` and `--skip-unreachable` would leave out every host of
    /// the stage.
    NoHostLeft {
        /// Every host, and why it would be left out.
        left_out: Vec<LeftOut>,
    },
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
    /// Some hosts cannot install the version: no repository offers it to
    /// them, and their `.deb` cache lacks it.
    Unavailable {
        /// The version asked for.
        version: Version,
        /// Hosts lacking it, with what they can install (from a
        /// repository or their cache).
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
    /// A promotion would move the stage backwards: some of its hosts run
    /// a newer version than the previous stage's. Never overridden
    /// (`--yes`, `--force`): a rollback is asked for by name.
    Backwards {
        /// The version promoted (the previous stage's).
        version: Version,
        /// The previous stage.
        previous: String,
        /// The hosts of the stage that run something newer, and what.
        hosts: Vec<(String, Version)>,
    },
    /// Some hosts to change hold the package (`apt-mark hold`), and
    /// neither `hold = yes` nor `--allow-held` lets deployer release it.
    Held {
        /// The hosts that hold it.
        hosts: Vec<String>,
    },
    /// Rollback is on, but some hosts to change run a version that apt
    /// can no longer install and their `.deb` cache lacks, so they could
    /// not be put back.
    RollbackImpossible {
        /// Each such host, the version it runs, and what apt can install.
        hosts: Vec<(String, Version, Vec<Version>)>,
    },
    /// The install's simulation failed on some hosts.
    SimulationFailed {
        /// Each such host, with apt's words.
        hosts: Vec<(String, String)>,
    },
    /// apt would also change other packages on some hosts, and
    /// `--allow-dependency-changes` was not given.
    SideEffects {
        /// Each such host, with what apt would change.
        hosts: Vec<(String, Vec<SideEffect>)>,
    },
}

impl Refusal {
    /// The message and notes for the operator.
    pub fn explain(&self, package: &PackageName, stage: &str) -> (String, Vec<String>) {
        match self {
            Refusal::Unreachable { hosts } => (
                format!(
                    "{} host(s) of `{stage}` cannot be reached; refusing a partial deploy",
                    hosts.len()
                ),
                hosts
                    .iter()
                    .map(|(h, e)| format!("{h}: {}", clipped_line(e, REMOTE_TEXT_MAX)))
                    .chain(["to go ahead on the hosts that answer, pass --skip-unreachable \
                             (the others are recorded as skipped, and the same command \
                             finishes them once they answer); --exclude HOST leaves a named \
                             host alone"
                        .to_string()])
                    .collect(),
            ),
            Refusal::NoHostLeft { left_out } => (
                format!("every host of `{stage}` would be left out; nothing to deploy to"),
                left_out
                    .iter()
                    .map(|l| format!("{}: {}", l.host, l.why))
                    .chain([
                        "bring a host back, or exclude fewer hosts (`deployer hosts` lists them)"
                            .to_string(),
                    ])
                    .collect(),
            ),
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
                        format!(
                            "{h} can install: {}; its .deb cache ({}) lacks {version} too",
                            list(avail),
                            debcache::DIR
                        )
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
            Refusal::Backwards {
                version,
                previous,
                hosts,
            } => {
                let mut notes: Vec<String> = hosts
                    .iter()
                    .map(|(h, running)| format!("{h} ({stage}) runs {running}"))
                    .collect();
                notes.push(format!(
                    "a promotion only moves a stage forward, and neither --yes nor --force \
                     changes that; to roll `{stage}` back on purpose, deploy the version: \
                     `deployer deploy {package} {stage} {version}`"
                ));
                (
                    format!(
                        "refusing to promote `{package}` to `{stage}`: it would move the stage \
                         backwards, to {version} (what `{previous}` runs), on {} host(s) that \
                         run a newer version",
                        hosts.len()
                    ),
                    notes,
                )
            }
            Refusal::Held { hosts } => (
                format!(
                    "`{package}` is held (`apt-mark hold`) on {} host(s) of `{stage}`: {}",
                    hosts.len(),
                    hosts.join(", ")
                ),
                vec![
                    "someone pinned that version on purpose; `apt-mark showhold` on the host lists the holds".to_string(),
                    format!(
                        "pass --allow-held to deploy anyway and keep the hold (it is recorded in the history), or set `hold = yes` in `[package:{package}]` to let deployer manage the hold"
                    ),
                ],
            ),
            Refusal::RollbackImpossible { hosts } => {
                let mut notes: Vec<String> = hosts
                    .iter()
                    .map(|(h, running, avail)| {
                        format!(
                            "{h} runs {running}; apt there can install: {}; its .deb cache lacks {running}",
                            list(avail)
                        )
                    })
                    .collect();
                notes.push(format!(
                    "publish the running version of `{package}` to the hosts' repository again, or deploy without rollback (no --rollback-on-failure, `rollback_on_failure = no`)"
                ));
                (
                    format!(
                        "rollback is on, but {} host(s) of `{stage}` run a version of `{package}` that apt can no longer install, so a failed deploy could not put them back",
                        hosts.len()
                    ),
                    notes,
                )
            }
            Refusal::SimulationFailed { hosts } => (
                format!(
                    "apt cannot install `{package}` as planned on {} host(s) of `{stage}` (`apt-get -s` failed)",
                    hosts.len()
                ),
                hosts
                    .iter()
                    .map(|(h, why)| format!("{h}: {}", clipped_line(why, REMOTE_TEXT_MAX)))
                    .collect(),
            ),
            Refusal::SideEffects { hosts } => {
                let mut notes: Vec<String> = hosts
                    .iter()
                    .map(|(h, effects)| {
                        let what: Vec<String> = effects.iter().map(ToString::to_string).collect();
                        let lines: Vec<String> = effects
                            .iter()
                            .map(|e| format!("    | {}", clipped_line(&e.line, REMOTE_TEXT_MAX)))
                            .collect();
                        format!("{h}: {}\n{}", what.join("; "), lines.join("\n"))
                    })
                    .collect();
                notes.push(format!(
                    "a deploy changes `{package}` and nothing else unless told; check these changes, then pass --allow-dependency-changes to accept them (it is recorded in the history)"
                ));
                (
                    format!(
                        "deploying `{package}` to `{stage}` would also change other packages on {} host(s)",
                        hosts.len()
                    ),
                    notes,
                )
            }
        }
    }
}

/// Versions for people: `1.0, 0.9`, or `nothing`.
fn list(versions: &[Version]) -> String {
    if versions.is_empty() {
        "nothing".to_string()
    } else {
        versions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
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

impl HostFacts {
    /// Where the host can install `version` from: `Some(None)` from a
    /// repository, `Some(Some(file))` only from its `.deb` cache, `None`
    /// from nowhere.
    fn source_of(&self, version: &Version) -> Option<Option<&Cached>> {
        if self.policy.available.contains(version) {
            return Some(None);
        }
        self.cached.iter().find(|c| c.version == *version).map(Some)
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
        .flat_map(|h| {
            h.policy
                .available
                .iter()
                .chain(h.cached.iter().map(|c| &c.version))
        })
        .find(|v| **v == chosen)
        .cloned()
        .unwrap_or(chosen);
    let runs_target = |s: &PackageState| matches!(s, PackageState::Installed(v) if *v == version);

    let lacking: Vec<(String, Vec<Version>)> = input
        .hosts
        .iter()
        .filter(|h| !runs_target(&h.state) && h.source_of(&version).is_none())
        .map(|h| {
            let mut can = h.policy.available.clone();
            can.extend(h.cached.iter().map(|c| c.version.clone()));
            can.sort_by(|a, b| b.cmp(a));
            can.dedup();
            (h.host.clone(), can)
        })
        .collect();
    if !lacking.is_empty() {
        return Err(Refusal::Unavailable {
            version,
            hosts: lacking,
        });
    }

    if input.promote {
        let ahead: Vec<(String, Version)> = input
            .hosts
            .iter()
            .filter_map(|h| {
                let running = h.state.version().filter(|v| **v > version)?;
                Some((h.host.clone(), running.clone()))
            })
            .collect();
        if !ahead.is_empty() {
            return Err(Refusal::Backwards {
                version,
                previous: input
                    .previous
                    .as_ref()
                    .map(|(name, _)| name.clone())
                    .unwrap_or_default(),
                hosts: ahead,
            });
        }
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

    // The hosts to change, with their facts.
    let changing: Vec<&HostFacts> = input
        .hosts
        .iter()
        .filter(|h| !runs_target(&h.state))
        .collect();

    let held: Vec<String> = changing
        .iter()
        .filter(|h| h.held)
        .map(|h| h.host.clone())
        .collect();
    let mut allowed = Vec::new();
    if !held.is_empty() && !input.hold {
        if !input.allow_held {
            return Err(Refusal::Held { hosts: held });
        }
        allowed.push(format!(
            "`{}` is held on {} host(s) ({}): --allow-held releases the hold for the install and sets it again",
            input.package,
            held.len(),
            held.join(", ")
        ));
    }

    if input.rollback {
        // A host rolls back by installing what it runs now, or by removing
        // the package when it runs nothing (always possible).
        let stuck: Vec<(String, Version, Vec<Version>)> = changing
            .iter()
            .filter_map(|h| {
                let running = h.state.version()?;
                h.source_of(running)
                    .is_none()
                    .then(|| (h.host.clone(), running.clone(), h.policy.available.clone()))
            })
            .collect();
        if !stuck.is_empty() {
            return Err(Refusal::RollbackImpossible { hosts: stuck });
        }
    }

    // A simulation counts only if it is this plan's: it installs (or, for
    // a broken host, configures) the package at `version`.
    let of_this_plan = |sim: &Simulation| {
        sim.actions.iter().any(|a| {
            a.package == input.package.as_str()
                && matches!(
                    a.kind,
                    apt::ActionKind::Install | apt::ActionKind::Configure
                )
                && a.new.as_ref() == Some(&version)
        })
    };
    let failed: Vec<(String, String)> = changing
        .iter()
        .filter_map(|h| match &h.simulation {
            Some(Err(why)) => Some((h.host.clone(), why.clone())),
            Some(Ok(sim)) if !of_this_plan(sim) => Some((
                h.host.clone(),
                format!(
                    "`apt-get -s` does not install `{}` {version} there",
                    input.package
                ),
            )),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(Refusal::SimulationFailed { hosts: failed });
    }
    let effects: Vec<(String, Vec<SideEffect>)> = changing
        .iter()
        .filter_map(|h| match &h.simulation {
            Some(Ok(sim)) => Some((h.host.clone(), apt::side_effects(sim, &input.package))),
            _ => None,
        })
        .filter(|(_, e)| !e.is_empty())
        .collect();
    if !effects.is_empty() {
        if !input.allow_dependency_changes {
            return Err(Refusal::SideEffects { hosts: effects });
        }
        let names: Vec<&str> = effects.iter().map(|(h, _)| h.as_str()).collect();
        allowed.push(format!(
            "other packages change on {} host(s) ({}): --allow-dependency-changes",
            names.len(),
            names.join(", ")
        ));
    }

    let steps: Vec<Step> = changing
        .iter()
        .map(|h| Step {
            install_from: h.source_of(&version).flatten().cloned(),
            restore_from: h
                .state
                .version()
                .and_then(|v| h.source_of(v))
                .flatten()
                .cloned(),
            host: h.host.clone(),
            from: h.state.clone(),
            downgrade: h.state.version().is_some_and(|v| *v > version),
            hold: match (h.held, input.hold) {
                (true, _) => Hold::Release,
                (false, true) => Hold::Set,
                (false, false) => Hold::Untouched,
            },
            side_effects: effects
                .iter()
                .find(|(host, _)| *host == h.host)
                .map(|(_, e)| e.clone())
                .unwrap_or_default(),
        })
        .collect();
    let unchanged = input
        .hosts
        .iter()
        .filter(|h| runs_target(&h.state))
        .map(|h| h.host.clone())
        .collect();
    let unsimulated = changing
        .iter()
        .filter(|h| h.simulation.is_none())
        .map(|h| h.host.clone())
        .collect();
    let sizing = Sizing {
        batch_size: input.batch_size,
        max_failures: input.max_failures,
        taking_part: input.hosts.len(),
    };
    let batches = batches(steps.len(), sizing.per_batch());
    Ok(Plan {
        package: input.package.clone(),
        stage: input.stage.clone(),
        version,
        critical: input.critical,
        steps,
        unchanged,
        batches,
        sizing,
        overridden,
        allowed,
        allow_dependency_changes: input.allow_dependency_changes,
        rollback: input.rollback,
        unsimulated,
        left_out: input.left_out.clone(),
    })
}

/// A number of hosts, as `batch_size`, `--batch` and `max_failures` are
/// written: a count (`3`), or a percentage of the hosts taking part in the
/// rollout (`25%`, those of the stage not left out by `--exclude` or
/// `--skip-unreachable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// This many hosts.
    Hosts(usize),
    /// This percentage (0 to 100) of the hosts taking part.
    Percent(u8),
}

impl Share {
    /// `text` as a count of at least `min`, or as a percentage from
    /// `min`% to 100%, the `%` written right after the digits (`25%`, not
    /// `25 %`). The error says what is wrong, in a few words.
    pub fn parse(text: &str, min: usize) -> Result<Share, &'static str> {
        let (digits, percent) = match text.strip_suffix('%') {
            Some(d) => (d, true),
            None => (text, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("not a whole number of hosts or a percentage");
        }
        let n: usize = digits.parse().map_err(|_| "out of range")?;
        match percent {
            _ if n < min => Err("out of range"),
            true if n > 100 => Err("more than 100%"),
            true => Ok(Share::Percent(u8::try_from(n).expect("at most 100"))),
            false => Ok(Share::Hosts(n)),
        }
    }

    /// As a batch size of `taking_part` hosts: a percentage rounded up,
    /// and never less than 1.
    pub fn per_batch(self, taking_part: usize) -> usize {
        match self {
            Share::Hosts(n) => n,
            Share::Percent(p) => (taking_part * usize::from(p)).div_ceil(100),
        }
        .max(1)
    }

    /// As a failure budget of `taking_part` hosts: a percentage rounded
    /// down.
    pub fn budget(self, taking_part: usize) -> usize {
        match self {
            Share::Hosts(n) => n,
            Share::Percent(p) => taking_part * usize::from(p) / 100,
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Share::Hosts(n) => write!(f, "{n}"),
            Share::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Default for Share {
    fn default() -> Self {
        Share::Hosts(0)
    }
}

/// How a plan's batches are cut and how many failures it tolerates, from
/// the settings as written and the number of hosts taking part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// `batch_size` (or `--batch`) as written.
    pub batch_size: Share,
    /// `max_failures` as written.
    pub max_failures: Share,
    /// The hosts of the stage taking part in the rollout (not left out),
    /// those already at the version included: what percentages are of.
    pub taking_part: usize,
}

impl Sizing {
    /// Hosts changed at once after the canary.
    pub fn per_batch(&self) -> usize {
        self.batch_size.per_batch(self.taking_part)
    }

    /// Hosts after the canary that may fail without halting the rollout.
    pub fn budget(&self) -> usize {
        self.max_failures.budget(self.taking_part)
    }

    /// Whether a rollout with `failed` failed hosts so far must halt: the
    /// canary failed (it is the canary), or the failures went beyond the
    /// budget.
    pub fn halts(&self, canary_failed: bool, failed: usize) -> bool {
        canary_failed || failed > self.budget()
    }

    /// The plan's lines about batches and the budget.
    pub fn describe(&self) -> Vec<String> {
        let of = |share: Share, rounded: &str| match share {
            Share::Hosts(_) => String::new(),
            Share::Percent(_) => format!(" of {} host(s) taking part, {rounded}", self.taking_part),
        };
        let per_batch = self.per_batch();
        let budget = self.budget();
        vec![
            format!(
                "batches: the canary alone, then {per_batch} host(s) at a time (batch_size {}{})",
                self.batch_size,
                of(self.batch_size, "rounded up")
            ),
            if budget == 0 {
                format!(
                    "failure budget: none (max_failures {}{}): the first failure halts the rollout",
                    self.max_failures,
                    of(self.max_failures, "rounded down")
                )
            } else {
                format!(
                    "failure budget: {budget} host(s) after the canary (max_failures {}{}); a failing \
                     canary, or one failure more, halts the rollout",
                    self.max_failures,
                    of(self.max_failures, "rounded down")
                )
            },
        ]
    }
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
    /// The install of `version` on `step`'s host: from a repository, or
    /// the cached file `from` (checked against its recorded SHA256 first).
    fn install(
        &self,
        step: &Step,
        version: &Version,
        from: Option<&Cached>,
        lock_timeout_secs: u64,
    ) -> (RemoteCommand, Option<String>) {
        let install = apt::Install {
            package: &self.package,
            version,
            downgrade: step.downgrade,
            allow_removals: self.allow_dependency_changes,
            lock_timeout_secs,
        };
        match from {
            Some(c) => {
                let words = install.file_words(&c.path(), false);
                (
                    debcache::install_command(c, &words, true),
                    Some(debcache::install_shown(c, &words, true)),
                )
            }
            None => (install.command(), None),
        }
    }

    /// The simulation of `step`'s install (`apt-get -s`, no root, no
    /// lock), whose parsed output goes into [`HostFacts::simulation`]; of
    /// the cached file when the install is from the host's cache.
    pub fn simulation(&self, step: &Step, lock_timeout_secs: u64) -> RemoteCommand {
        let install = apt::Install {
            package: &self.package,
            version: &self.version,
            downgrade: step.downgrade,
            allow_removals: self.allow_dependency_changes,
            lock_timeout_secs,
        };
        match &step.install_from {
            Some(c) => debcache::install_command(c, &install.file_words(&c.path(), true), false),
            None => install.simulation(),
        }
    }

    /// What `step`'s host runs: the install (with `--no-remove` unless
    /// dependency changes are allowed), between releasing and setting the
    /// hold when [`Step::hold`] says so. The hold is set whatever the
    /// install did.
    pub fn commands(&self, step: &Step, lock_timeout_secs: u64) -> HostCommands {
        let (main, main_shown) = self.install(
            step,
            &self.version,
            step.install_from.as_ref(),
            lock_timeout_secs,
        );
        HostCommands {
            unhold: (step.hold == Hold::Release).then(|| apt::unhold(&self.package)),
            main,
            main_shown,
            hold: (step.hold != Hold::Untouched).then(|| apt::hold(&self.package)),
        }
    }

    /// What puts `step`'s host back on what it ran before: the same install
    /// of its previous version, or the removal of the package when it ran
    /// none. A host whose hold deployer touched is released first and held
    /// again after, unless it had no hold and is back to no package.
    pub fn rollback_commands(&self, step: &Step, lock_timeout_secs: u64) -> HostCommands {
        let (main, main_shown) = match step.from.version() {
            Some(previous) => {
                let back = Step {
                    downgrade: *previous < self.version,
                    ..step.clone()
                };
                self.install(
                    &back,
                    previous,
                    step.restore_from.as_ref(),
                    lock_timeout_secs,
                )
            }
            None => (apt::remove(&self.package, lock_timeout_secs), None),
        };
        let rehold = match step.hold {
            Hold::Untouched => false,
            Hold::Release => true,
            Hold::Set => step.from.version().is_some(),
        };
        HostCommands {
            unhold: (step.hold != Hold::Untouched).then(|| apt::unhold(&self.package)),
            main,
            main_shown,
            hold: rehold.then(|| apt::hold(&self.package)),
        }
    }

    /// One line per host left out of the rollout: `left out: HOST (why;
    /// not locked, not changed)`.
    pub fn left_out_lines(&self) -> Vec<String> {
        self.left_out
            .iter()
            .map(|l| {
                let ran = match &l.state {
                    Some(state) => format!("runs {state}; "),
                    None => String::new(),
                };
                format!(
                    "left out: {} ({}; {ran}not locked, not changed)",
                    l.host, l.why
                )
            })
            .collect()
    }

    /// The plan for people; `details` gives, per host in `steps`, the
    /// command that will run ([`HostCommands::describe`]) and what apt says
    /// it would do.
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
            let taking_part = if self.left_out.is_empty() {
                ""
            } else {
                " taking part"
            };
            let _ = writeln!(
                s,
                "  every host{taking_part} already runs {}; nothing to do",
                self.version
            );
        } else {
            for line in self.sizing.describe() {
                let _ = writeln!(s, "  {line}");
            }
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
                if let Some(c) = &step.install_from {
                    let _ = writeln!(
                        s,
                        "      from: the host's cache, {} (no repository offers {} any more; SHA256 checked before the install)",
                        c.path(),
                        self.version
                    );
                }
                if let (Some(c), true) = (&step.restore_from, self.rollback) {
                    let _ = writeln!(
                        s,
                        "      back: a rollback would install {} from the host's cache, {}",
                        c.version,
                        c.path()
                    );
                }
                if let Some((command, apt)) = details.get(i) {
                    let _ = writeln!(s, "      runs: {command}");
                    for line in apt {
                        let _ = writeln!(s, "      apt:  {}", clipped_line(line, REMOTE_TEXT_MAX));
                    }
                }
                match step.hold {
                    Hold::Untouched => {}
                    Hold::Release => {
                        let _ = writeln!(s, "      hold: released for the install, then set again");
                    }
                    Hold::Set => {
                        let _ = writeln!(s, "      hold: set after the install (hold = yes)");
                    }
                }
                for effect in &step.side_effects {
                    let _ = writeln!(s, "      also: {effect}");
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
        for line in self.left_out_lines() {
            let _ = writeln!(s, "  {line}");
        }
        for o in &self.overridden {
            let _ = writeln!(s, "  forced past: {o}");
        }
        for a in &self.allowed {
            let _ = writeln!(s, "  allowed: {a}");
        }
        if self.rollback && self.steps.iter().any(|st| !st.side_effects.is_empty()) {
            let _ = writeln!(
                s,
                "  note: a rollback puts back `{}` only; the other packages' changes stay",
                self.package
            );
        }
        if !self.unsimulated.is_empty() {
            let _ = writeln!(s, "  not simulated yet: {}", self.unsimulated.join(", "));
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
            held: false,
            simulation: None,
            cached: Vec::new(),
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
            batch_size: Share::Hosts(2),
            max_failures: Share::Hosts(0),
            allow_dependency_changes: false,
            hold: false,
            allow_held: false,
            rollback: false,
            promote: false,
            left_out: Vec::new(),
        }
    }

    fn fixture(file: &str) -> String {
        let path = format!("{}/tests/data/apt/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The parsed simulation a scenario of tests/data/apt/capture.sh printed.
    fn simulated(scenario: &str) -> Option<Result<Simulation, String>> {
        Some(Ok(apt::parse_simulation(&fixture(&format!(
            "{scenario}.txt"
        )))
        .unwrap()))
    }

    fn with(mut f: HostFacts, change: impl FnOnce(&mut HostFacts)) -> HostFacts {
        change(&mut f);
        f
    }

    fn fastpath() -> PackageName {
        "fastpath".parse().unwrap()
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
        assert_eq!(
            notes[0],
            "p2 can install: 0.77~pr705-119; its .deb cache (/var/cache/deployer/debs) lacks 0.81~pr748-191 too"
        );
    }

    fn cached(version: &str) -> Cached {
        let package = fastpath();
        Cached {
            version: v(version),
            arch: "all".into(),
            file: debcache::file_name(&package, &v(version), "all"),
            sha256: "ab".repeat(32),
            kept_at: 1,
        }
    }

    #[test]
    fn a_version_only_the_hosts_cache_holds_is_installed_from_the_cache() {
        let old = "0.77~pr705-119";
        let new = "0.81~pr748-191";
        let mut i = input(
            vec![with(facts("p1", installed(new), new, &[new]), |f| {
                f.cached = vec![cached(old)];
            })],
            Wanted::Exact(v(old)),
        );
        let p = make(&i).unwrap();
        let step = &p.steps[0];
        assert_eq!(
            step.install_from.as_ref().map(|c| c.version.clone()),
            Some(v(old))
        );
        assert!(step.downgrade);
        let commands = p.commands(step, 5);
        let main = commands.main.to_string();
        assert!(main.starts_with("sudo -n sh -c "), "{main}");
        assert!(
            main.ends_with(" '/var/cache/deployer/debs/fastpath_0.77~pr705-119_all.deb'"),
            "{main}"
        );
        let shown = commands.describe();
        assert!(
            shown.starts_with("[check /var/cache/deployer/debs/fastpath_0.77~pr705-119_all.deb against its SHA256 abab")
                && shown.ends_with("] && sudo -n env LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=5 --no-remove --allow-downgrades '/var/cache/deployer/debs/fastpath_0.77~pr705-119_all.deb'"),
            "{shown}"
        );
        assert!(main.contains(" --allow-downgrades "), "{main}");
        assert!(!main.contains("fastpath=0.77"), "{main}");
        let sim = p.simulation(step, 5).to_string();
        assert!(
            sim.starts_with("sh -c ") && sim.contains(" -s install "),
            "{sim}"
        );
        let shown = p.describe(&[]);
        assert!(
            shown.contains(
                "from: the host's cache, /var/cache/deployer/debs/fastpath_0.77~pr705-119_all.deb"
            ),
            "{shown}"
        );

        // a version the repository offers comes from the repository
        i.hosts[0].policy.available.push(v(old));
        let p = make(&i).unwrap();
        assert_eq!(p.steps[0].install_from, None);
        assert!(p
            .commands(&p.steps[0], 5)
            .main
            .to_string()
            .contains("fastpath=0.77~pr705-119"));
    }

    #[test]
    fn the_rollback_promise_counts_the_cache() {
        let old = "0.77~pr705-119";
        let new = "0.81~pr748-191";
        let mut i = input(
            vec![facts("p1", installed(old), new, &[new])],
            Wanted::Exact(v(new)),
        );
        i.rollback = true;
        assert!(matches!(make(&i), Err(Refusal::RollbackImpossible { .. })));
        i.hosts[0].cached = vec![cached(old)];
        let p = make(&i).unwrap();
        let step = &p.steps[0];
        assert_eq!(
            step.restore_from.as_ref().map(|c| c.version.clone()),
            Some(v(old))
        );
        assert_eq!(step.install_from, None);
        let back = p.rollback_commands(step, 5).main.to_string();
        assert!(
            back.ends_with(" '/var/cache/deployer/debs/fastpath_0.77~pr705-119_all.deb'"),
            "{back}"
        );
        assert!(p
            .describe(&[])
            .contains("back: a rollback would install 0.77~pr705-119 from the host's cache"));
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

    /// A regression test for a promotion that moved a stage backwards
    /// (the previous stage ran an older version): refused, whatever
    /// `--force` says, with the rollback to ask for by name; the same
    /// version asked for as a deploy is a rollback, which passes.
    #[test]
    fn a_promotion_never_moves_a_stage_backwards() {
        let mut i = with_previous(
            input(
                vec![
                    facts("p1", installed("0.81~pr748-191"), "", &BOTH),
                    facts("p2", installed("0.77~pr705-119"), "", &BOTH),
                ],
                Wanted::Exact(v("0.77~pr705-119")),
            ),
            vec![("h1", Some(installed("0.77~pr705-119")))],
        );
        i.promote = true;
        i.force = true;
        let e = make(&i).unwrap_err();
        assert_eq!(
            e,
            Refusal::Backwards {
                version: v("0.77~pr705-119"),
                previous: "hel".into(),
                hosts: vec![("p1".into(), v("0.81~pr748-191"))],
            }
        );
        let (msg, notes) = e.explain(&"fastpath".parse().unwrap(), "prod");
        assert!(
            msg.contains("refusing to promote `fastpath` to `prod`: it would move the stage backwards, to 0.77~pr705-119 (what `hel` runs)"),
            "{msg}"
        );
        assert_eq!(notes[0], "p1 (prod) runs 0.81~pr748-191");
        assert!(
            notes[1].contains("`deployer deploy fastpath prod 0.77~pr705-119`"),
            "{notes:?}"
        );
        i.promote = false;
        let p = make(&i).unwrap();
        assert_eq!(p.steps.len(), 1);
        assert!(p.steps[0].downgrade);
        // forward is fine
        let mut forward = with_previous(
            input(
                vec![facts("p1", installed("0.77~pr705-119"), "", &BOTH)],
                Wanted::Exact(v("0.81~pr748-191")),
            ),
            vec![("h1", Some(installed("0.81~pr748-191")))],
        );
        forward.promote = true;
        assert!(make(&forward).is_ok());
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

    fn answers(hosts: &[(&str, Result<&str, &str>)]) -> Vec<HostAnswer> {
        hosts
            .iter()
            .map(|(h, a)| (h.to_string(), a.map(installed).map_err(str::to_string)))
            .collect()
    }

    #[test]
    fn a_host_down_refuses_unless_skip_unreachable_leaves_it_out() {
        let stage = answers(&[
            ("p1", Ok("1.0")),
            ("p2", Err("connection refused")),
            ("p3", Ok("1.0")),
        ]);
        // never implicit
        let refused = leave_out(&stage, &[], false).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Unreachable {
                hosts: vec![("p2".into(), "connection refused".into())]
            }
        );
        let (message, notes) = refused.explain(&"fastpath".parse().unwrap(), "prod");
        assert!(message.contains("refusing a partial deploy"), "{message}");
        assert!(
            notes.iter().any(|n| n.contains("--skip-unreachable")),
            "{notes:?}"
        );
        let left = leave_out(&stage, &[], true).unwrap();
        assert_eq!(
            left,
            [LeftOut {
                host: "p2".into(),
                state: None,
                why: Leave::Down("connection refused".into()),
            }]
        );
        assert_eq!(left[0].why.to_string(), "down: connection refused");
    }

    #[test]
    fn an_excluded_host_is_left_out_whatever_it_answered() {
        let stage = answers(&[
            ("p1", Ok("1.0")),
            ("p2", Err("timed out")),
            ("p3", Ok("0.9")),
        ]);
        // excluding the host that is down needs no --skip-unreachable
        let left = leave_out(&stage, &["p2".into(), "p1".into()], false).unwrap();
        let names: Vec<(&str, String)> = left
            .iter()
            .map(|l| (l.host.as_str(), l.why.to_string()))
            .collect();
        assert_eq!(
            names,
            [("p1", "excluded".into()), ("p2", "excluded".into())]
        );
        assert_eq!(
            left[0].state,
            Some(installed("1.0")),
            "what it runs is kept"
        );
    }

    #[test]
    fn leaving_out_every_host_is_refused() {
        let stage = answers(&[("p1", Err("refused")), ("p2", Ok("1.0"))]);
        let refused = leave_out(&stage, &["p2".into()], true).unwrap_err();
        let Refusal::NoHostLeft { left_out } = &refused else {
            panic!("{refused:?}")
        };
        assert_eq!(left_out.len(), 2);
        let (message, notes) = refused.explain(&"fastpath".parse().unwrap(), "prod");
        assert!(message.contains("every host of `prod`"), "{message}");
        assert!(notes.iter().any(|n| n == "p1: down: refused"), "{notes:?}");
        assert!(notes.iter().any(|n| n == "p2: excluded"), "{notes:?}");
    }

    #[test]
    fn the_canary_is_the_first_host_taking_part_and_the_plan_lists_those_left_out() {
        let mut i = input(
            vec![
                facts("p2", installed("1.0"), "2.0", &["1.0", "2.0"]),
                facts("p3", installed("2.0"), "2.0", &["1.0", "2.0"]),
                facts("p4", installed("1.0"), "2.0", &["1.0", "2.0"]),
            ],
            Wanted::Exact(v("2.0")),
        );
        i.left_out = vec![
            LeftOut {
                host: "p1".into(),
                state: Some(installed("1.0")),
                why: Leave::Excluded,
            },
            LeftOut {
                host: "p5".into(),
                state: None,
                why: Leave::Down("connection refused\x1b[31m".into()),
            },
        ];
        let p = make(&i).unwrap();
        assert_eq!(p.steps[p.batches[0][0]].host, "p2", "the canary takes part");
        assert_eq!(p.unchanged, ["p3"]);
        let text = p.describe(&[]);
        assert!(
            text.contains("left out: p1 (excluded; runs 1.0; not locked, not changed)"),
            "{text}"
        );
        assert!(
            text.contains("left out: p5 (down: connection refused\\x1b[31m; not locked"),
            "host words are made safe: {text}"
        );
        assert!(!text.contains('\x1b'));
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
    fn shares_parse_as_counts_or_percentages() {
        assert_eq!(Share::parse("3", 1), Ok(Share::Hosts(3)));
        assert_eq!(Share::parse("25%", 1), Ok(Share::Percent(25)));
        assert_eq!(Share::parse("100%", 1), Ok(Share::Percent(100)));
        assert_eq!(Share::parse("0", 0), Ok(Share::Hosts(0)));
        assert_eq!(Share::parse("0%", 0), Ok(Share::Percent(0)));
        assert_eq!(Share::parse("0%", 1), Err("out of range"));
        assert_eq!(Share::parse("0", 1), Err("out of range"));
        assert_eq!(Share::parse("150%", 1), Err("more than 100%"));
        for bad in ["25 %", " 25%", "%", "", "2.5%", "-1", "25%%", "a%", "25x"] {
            assert_eq!(
                Share::parse(bad, 1),
                Err("not a whole number of hosts or a percentage"),
                "{bad:?}"
            );
        }
        assert_eq!(
            Share::parse("99999999999999999999999", 1),
            Err("out of range")
        );
        assert_eq!(Share::Percent(25).to_string(), "25%");
        assert_eq!(Share::Hosts(3).to_string(), "3");
    }

    #[test]
    fn percent_batches_round_up_and_budgets_round_down() {
        // 25% of 8: the canary, then batches of 2
        assert_eq!(Share::Percent(25).per_batch(8), 2);
        assert_eq!(
            batches(8, Share::Percent(25).per_batch(8)),
            vec![vec![0], vec![1, 2], vec![3, 4], vec![5, 6], vec![7]]
        );
        assert_eq!(Share::Percent(25).per_batch(9), 3, "2.25 rounds up");
        assert_eq!(Share::Percent(1).per_batch(3), 1, "at least 1");
        assert_eq!(Share::Percent(10).per_batch(0), 1, "at least 1");
        assert_eq!(Share::Percent(100).per_batch(5), 5);
        assert_eq!(Share::Hosts(3).per_batch(100), 3, "a count is a count");
        assert_eq!(Share::Percent(25).budget(8), 2);
        assert_eq!(Share::Percent(25).budget(7), 1, "1.75 rounds down");
        assert_eq!(Share::Percent(10).budget(9), 0, "0.9 rounds down to none");
        assert_eq!(Share::Hosts(2).budget(1), 2);
        let sizing = Sizing {
            batch_size: Share::Percent(25),
            max_failures: Share::Percent(25),
            taking_part: 8,
        };
        assert!(!sizing.halts(false, 0));
        assert!(!sizing.halts(false, 2), "within the budget of 2");
        assert!(sizing.halts(false, 3), "beyond the budget");
        assert!(sizing.halts(true, 1), "a failing canary always halts");
        let none = Sizing {
            max_failures: Share::Hosts(0),
            ..sizing
        };
        assert!(
            none.halts(false, 1),
            "max_failures 0 halts on the first failure"
        );
    }

    #[test]
    fn percentages_are_of_the_hosts_taking_part() {
        let hosts: Vec<HostFacts> = (1..=8)
            .map(|n| {
                facts(
                    &format!("p{n}"),
                    installed("0.77~pr705-119"),
                    "0.81~pr748-191",
                    &BOTH,
                )
            })
            .collect();
        let mut i = input(hosts, Wanted::Exact(v("0.81~pr748-191")));
        i.batch_size = Share::Percent(25);
        i.max_failures = Share::Percent(25);
        let p = make(&i).unwrap();
        let sizes: Vec<usize> = p.batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 2, 2, 2, 1]);
        assert_eq!(p.sizing.budget(), 2);
        let text = p.describe(&[]);
        assert!(
            text.contains(
                "batches: the canary alone, then 2 host(s) at a time (batch_size 25% of 8 \
                 host(s) taking part, rounded up)"
            ),
            "{text}"
        );
        assert!(
            text.contains("failure budget: 2 host(s) after the canary (max_failures 25% of 8"),
            "{text}"
        );
        // two hosts left out: 25% of the 6 taking part rounds up to 2, the
        // budget down to 1
        i.hosts.truncate(6);
        let p = make(&i).unwrap();
        assert_eq!(p.sizing.taking_part, 6);
        assert_eq!(p.sizing.per_batch(), 2);
        assert_eq!(p.sizing.budget(), 1);
    }

    #[test]
    fn description_lists_batches_commands_and_apt() {
        let i = input(
            vec![
                with(
                    facts("p1", installed("0.77~pr705-119"), "0.81~pr748-191", &BOTH),
                    |f| f.simulation = simulated("sim-upgrade-only"),
                ),
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

    #[test]
    fn held_hosts_are_refused_unless_released_by_flag_or_config() {
        let hosts = vec![
            with(facts("p1", installed("0.77~pr705-119"), "", &BOTH), |f| {
                f.held = true
            }),
            facts("p2", PackageState::NotInstalled, "", &BOTH),
            // already at the target: its hold is nobody's business
            with(facts("p3", installed("0.81~pr748-191"), "", &BOTH), |f| {
                f.held = true
            }),
        ];
        let i = input(hosts, Wanted::Exact(v("0.81~pr748-191")));
        let e = make(&i).unwrap_err();
        assert_eq!(
            e,
            Refusal::Held {
                hosts: vec!["p1".into()]
            }
        );
        let (msg, notes) = e.explain(&fastpath(), "prod");
        assert_eq!(
            msg,
            "`fastpath` is held (`apt-mark hold`) on 1 host(s) of `prod`: p1"
        );
        assert!(notes[1].contains("--allow-held"), "{notes:?}");
        assert!(
            notes[1].contains("`hold = yes` in `[package:fastpath]`"),
            "{notes:?}"
        );

        // --allow-held: released for the install, held again after
        let mut allowed = i.clone();
        allowed.allow_held = true;
        let p = make(&allowed).unwrap();
        let holds: Vec<Hold> = p.steps.iter().map(|s| s.hold).collect();
        assert_eq!(holds, [Hold::Release, Hold::Untouched]);
        assert_eq!(p.allowed.len(), 1);
        assert_eq!(
            p.allowed,
            ["`fastpath` is held on 1 host(s) (p1): --allow-held releases the hold for the install and sets it again"]
        );
        let c = p.commands(&p.steps[0], 60);
        assert_eq!(
            c.unhold.as_ref().map(RemoteCommand::as_str),
            Some("sudo -n env DEBIAN_FRONTEND=noninteractive env LC_ALL=C apt-mark unhold -- fastpath")
        );
        assert_eq!(
            c.hold.as_ref().map(RemoteCommand::as_str),
            Some(
                "sudo -n env DEBIAN_FRONTEND=noninteractive env LC_ALL=C apt-mark hold -- fastpath"
            )
        );
        assert_eq!(c.all().len(), 3);
        assert_eq!(p.commands(&p.steps[1], 60).all().len(), 1);

        // hold = yes: deployer manages the hold; every changed host ends held
        let mut managed = i.clone();
        managed.hold = true;
        let p = make(&managed).unwrap();
        let holds: Vec<Hold> = p.steps.iter().map(|s| s.hold).collect();
        assert_eq!(holds, [Hold::Release, Hold::Set]);
        assert!(p.allowed.is_empty());
        let c = p.commands(&p.steps[1], 60);
        assert!(c.unhold.is_none());
        assert!(c.hold.is_some());
    }

    #[test]
    fn rollback_needs_the_running_version_to_be_installable() {
        // Real policy: bash 5.2.15-2+b8 runs, but only +b13 is offered.
        let bash: PackageName = "bash".parse().unwrap();
        let policy = apt::parse_policy(&bash, &fixture("policy-bash-bookworm.txt")).unwrap();
        let stuck = HostFacts {
            host: "p1".into(),
            state: installed("5.2.15-2+b8"),
            policy: policy.clone(),
            held: false,
            simulation: None,
            cached: Vec::new(),
        };
        let absent = HostFacts {
            host: "p2".into(),
            state: PackageState::ConfigFiles(Some(v("5.2.15-2+b1"))),
            ..stuck.clone()
        };
        let mut i = input(vec![stuck, absent], Wanted::Exact(v("5.2.15-2+b13")));
        i.package = bash.clone();
        assert!(make(&i).is_ok(), "without rollback, nothing to check");
        i.rollback = true;
        let e = make(&i).unwrap_err();
        assert_eq!(
            e,
            Refusal::RollbackImpossible {
                hosts: vec![("p1".into(), v("5.2.15-2+b8"), vec![v("5.2.15-2+b13")])]
            }
        );
        let (msg, notes) = e.explain(&bash, "prod");
        assert!(msg.starts_with("rollback is on, but 1 host(s) of `prod` run a version of `bash` that apt can no longer install"), "{msg}");
        assert_eq!(
            notes[0],
            "p1 runs 5.2.15-2+b8; apt there can install: 5.2.15-2+b13; its .deb cache lacks 5.2.15-2+b8"
        );
        assert!(notes[1].contains("--rollback-on-failure"), "{notes:?}");

        // a broken host rolls back to its version too; an absent one by removal
        let mut broken = input(
            vec![facts(
                "p1",
                PackageState::Broken {
                    version: Some(v("0.70-1")),
                    state: "half-configured".into(),
                },
                "",
                &BOTH,
            )],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        broken.rollback = true;
        assert!(matches!(
            make(&broken),
            Err(Refusal::RollbackImpossible { .. })
        ));
        let mut fresh = input(
            vec![facts("p1", PackageState::NotInstalled, "", &BOTH)],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        fresh.rollback = true;
        assert!(make(&fresh).is_ok());
    }

    #[test]
    fn side_effects_are_refused_with_apt_lines_unless_allowed() {
        let i = input(
            vec![
                with(facts("p1", installed("0.77~pr705-119"), "", &BOTH), |f| {
                    f.simulation = simulated("sim-side-effects");
                }),
                with(facts("p2", installed("0.77~pr705-119"), "", &BOTH), |f| {
                    f.simulation = simulated("sim-upgrade-only");
                }),
            ],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        let e = make(&i).unwrap_err();
        let Refusal::SideEffects { hosts } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].0, "p1");
        assert_eq!(hosts[0].1.len(), 3);
        let (msg, notes) = e.explain(&fastpath(), "prod");
        assert_eq!(
            msg,
            "deploying `fastpath` to `prod` would also change other packages on 1 host(s)"
        );
        assert_eq!(
            notes[0],
            "p1: removes `fastpath-legacy` 0.1-1; upgrades `libfastpath` 1.0-1 -> 2.0-1; installs `fastpath-data` 1.0-1\n    \
             | Remv fastpath-legacy [0.1-1]\n    \
             | Inst libfastpath [1.0-1] (2.0-1 deployer-fixtures:localhost [all])\n    \
             | Inst fastpath-data (1.0-1 deployer-fixtures:localhost [all])"
        );
        assert!(notes[1].contains("--allow-dependency-changes"));

        // allowed: the plan carries them, and the install may remove
        let mut allowed = i.clone();
        allowed.allow_dependency_changes = true;
        let p = make(&allowed).unwrap();
        assert_eq!(p.steps[0].side_effects.len(), 3);
        assert!(p.steps[1].side_effects.is_empty());
        assert_eq!(
            p.allowed,
            ["other packages change on 1 host(s) (p1): --allow-dependency-changes"]
        );
        assert!(!p
            .commands(&p.steps[0], 60)
            .main
            .as_str()
            .contains("--no-remove"));
        assert!(p.unsimulated.is_empty());

        // and only the package itself changes: nothing to refuse
        let mut plain = i;
        plain.hosts.truncate(1);
        plain.hosts[0].simulation = simulated("sim-upgrade-only");
        let p = make(&plain).unwrap();
        assert!(p
            .commands(&p.steps[0], 60)
            .main
            .as_str()
            .contains(" --no-remove "));
    }

    #[test]
    fn failed_simulations_are_refused_with_apt_words() {
        let out = format!(
            "{}{}",
            fixture("sim-unsatisfiable.txt"),
            fixture("sim-unsatisfiable.stderr.txt")
        );
        let i = input(
            vec![with(
                facts("p1", installed("0.81~pr748-191"), "", &["0.70-1"]),
                |f| {
                    f.simulation = Some(Err(apt::simulation_error(&out)));
                },
            )],
            Wanted::Exact(v("0.70-1")),
        );
        let e = make(&i).unwrap_err();
        let (msg, notes) = e.explain(&fastpath(), "prod");
        assert_eq!(
            msg,
            "apt cannot install `fastpath` as planned on 1 host(s) of `prod` (`apt-get -s` failed)"
        );
        assert_eq!(
            notes,
            [
                "p1: apt cannot satisfy the package's dependencies on this host: \
              fastpath : Depends: libfastpath (= 1.0-1) but 2.0-1 is to be installed"
            ]
        );
    }

    /// apt's words come from the host (a mirror names its releases): in a
    /// refusal or a plan, nothing of them may drive the terminal.
    #[test]
    fn apt_words_in_refusals_and_plans_cannot_drive_the_terminal() {
        let evil = "Inst libfastpath [1.0-1] (2.0-1 \x1b]0;pwned\x07 [all])\n\
                    Inst fastpath [0.77~pr705-119] (0.81~pr748-191 x [all])\n";
        let facts_with = |sim: Option<Result<Simulation, String>>| {
            with(facts("p1", installed("0.77~pr705-119"), "", &BOTH), |f| {
                f.simulation = sim
            })
        };
        let failed = input(
            vec![facts_with(Some(Err("E: no\x1b[2J\nerror: forged".into())))],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        let effects = input(
            vec![facts_with(Some(apt::parse_simulation(evil)))],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        for i in [failed, effects] {
            let (msg, notes) = make(&i).unwrap_err().explain(&fastpath(), "prod");
            let shown = format!("{msg}\n{}", notes.join("\n"));
            assert!(
                !shown.contains('\x1b') && !shown.contains('\x07'),
                "{shown:?}"
            );
            assert!(!shown.contains("\nerror: forged"), "{shown:?}");
        }
        let mut allowed = input(
            vec![facts_with(Some(apt::parse_simulation(evil)))],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        allowed.allow_dependency_changes = true;
        let plan = make(&allowed).unwrap();
        let shown = plan.describe(&[("cmd".into(), vec![evil.lines().next().unwrap().into()])]);
        assert!(!shown.contains('\x1b'), "{shown:?}");
        assert!(
            shown.contains("apt:  Inst libfastpath [1.0-1] (2.0-1 \\x1b]0;pwned\\x07 [all])"),
            "{shown}"
        );
    }

    #[test]
    fn plan_is_made_twice_simulating_in_between() {
        let mut i = input(
            vec![
                facts("p1", installed("0.81~pr748-191"), "", &BOTH),
                facts("p2", installed("0.81~pr748-191"), "", &BOTH),
            ],
            Wanted::Exact(v("0.77~pr705-119")),
        );
        let first = make(&i).unwrap();
        assert_eq!(first.unsimulated, ["p1", "p2"]);
        assert!(first.describe(&[]).contains("not simulated yet: p1, p2"));
        let sims: Vec<String> = first
            .steps
            .iter()
            .map(|s| first.simulation(s, 60).to_string())
            .collect();
        assert_eq!(
            sims[0],
            "env LC_ALL=C apt-get -s install -q -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 \
             --allow-downgrades 'fastpath=0.77~pr705-119'"
        );
        for h in &mut i.hosts {
            h.simulation = simulated("sim-downgrade");
        }
        let second = make(&i).unwrap();
        assert!(second.unsimulated.is_empty());
        assert_eq!(second.version, first.version);
        assert_eq!(second.steps, first.steps);
    }

    #[test]
    fn rollback_commands_put_back_the_previous_state_and_hold() {
        let i = input(
            vec![
                with(facts("p1", installed("0.81~pr748-191"), "", &BOTH), |f| {
                    f.held = true;
                }),
                facts("p2", PackageState::NotInstalled, "", &BOTH),
                facts(
                    "p3",
                    installed("0.70-1"),
                    "",
                    &["0.81~pr748-191", "0.77~pr705-119", "0.70-1"],
                ),
            ],
            Wanted::Exact(v("0.77~pr705-119")),
        );
        let mut managed = i.clone();
        managed.hold = true;
        let p = make(&managed).unwrap();
        let back: Vec<HostCommands> = p.steps.iter().map(|s| p.rollback_commands(s, 30)).collect();
        // p1 was held: released, upgraded back to 0.81, held again
        assert!(back[0].unhold.is_some() && back[0].hold.is_some());
        assert_eq!(
            back[0].main.as_str(),
            "sudo -n env DEBIAN_FRONTEND=noninteractive env LC_ALL=C apt-get install -y -q \
             -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
             -o DPkg::Lock::Timeout=30 --no-remove 'fastpath=0.81~pr748-191'"
        );
        // p2 had nothing: removed, and not held
        assert!(back[1].unhold.is_some() && back[1].hold.is_none());
        assert_eq!(
            back[1].main.as_str(),
            "sudo -n env DEBIAN_FRONTEND=noninteractive env LC_ALL=C apt-get remove -y -q \
             -o DPkg::Lock::Timeout=30 fastpath"
        );
        // p3 goes back down from 0.77 to 0.70, pinned again (hold = yes)
        assert!(back[2]
            .main
            .as_str()
            .contains("--allow-downgrades fastpath=0.70-1"));
        assert!(back[2].hold.is_some());

        // without holds, only the install or removal
        let mut plain = i;
        plain.hosts[0].held = false;
        let p = make(&plain).unwrap();
        for s in &p.steps {
            assert_eq!(p.rollback_commands(s, 30).all().len(), 1);
        }
    }

    #[test]
    fn description_shows_holds_and_dependency_changes() {
        let mut i = input(
            vec![
                with(facts("p1", installed("0.77~pr705-119"), "", &BOTH), |f| {
                    f.held = true;
                    f.simulation = simulated("sim-side-effects");
                }),
                with(facts("p2", PackageState::NotInstalled, "", &BOTH), |f| {
                    f.simulation = simulated("sim-fresh-install");
                }),
            ],
            Wanted::Exact(v("0.81~pr748-191")),
        );
        i.hold = true;
        i.rollback = true;
        i.allow_dependency_changes = true;
        let p = make(&i).unwrap();
        let details: Vec<(String, Vec<String>)> = p
            .steps
            .iter()
            .map(|s| (p.commands(s, 60).describe(), Vec::new()))
            .collect();
        insta::assert_snapshot!(p.describe(&details));
    }
}
