//! The request phase: what the operator typed, checked against the
//! configuration before any host is contacted, and then (with the hosts'
//! states in hand) turned into a target stage and a wanted version.
//!
//! Pure apart from [`record_rejected`], which puts the rejection on record
//! as every refusal is.

use crate::config::Config;
use crate::console::Console;
use crate::error::Fatal;
use crate::history::{self, Record, Sourced};
use crate::matrix::{Cell, HostReport, Marker, Matrix};
use crate::package::PackageName;
use crate::plan::Wanted;
use crate::status::PackageState;
use crate::version::Version;

use super::previous::{self, Origin};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub enum Request {
    /// `deploy PKG [STAGE [VERSION]]`.
    Deploy {
        /// Package as typed.
        package: String,
        /// Stage as typed; the first stage when omitted.
        stage: Option<String>,
        /// Version as typed; the newest installable when omitted.
        version: Option<String>,
    },
    /// `rollback PKG [STAGE [VERSION]]`.
    Rollback {
        /// Package as typed.
        package: String,
        /// Stage as typed; the first stage when omitted.
        stage: Option<String>,
        /// Version as typed; when omitted, the version the stage ran before
        /// its most recent successful deploy or promotion.
        version: Option<String>,
    },
    /// `promote PKG [STAGE]`.
    Promote {
        /// Package as typed.
        package: String,
        /// Stage as typed; the first stage behind its left neighbour when
        /// omitted.
        stage: Option<String>,
    },
}

impl Request {
    /// The action's name and the text typed for package, stage and version.
    pub fn parts(&self) -> (&'static str, &str, Option<&str>, Option<&str>) {
        match self {
            Request::Deploy {
                package,
                stage,
                version,
            } => ("deploy", package, stage.as_deref(), version.as_deref()),
            Request::Rollback {
                package,
                stage,
                version,
            } => ("rollback", package, stage.as_deref(), version.as_deref()),
            Request::Promote { package, stage } => ("promote", package, stage.as_deref(), None),
        }
    }

    /// Whether this is a promotion.
    pub fn is_promote(&self) -> bool {
        matches!(self, Request::Promote { .. })
    }
}

/// What [`validate`] found the operator's text to mean.
#[derive(Debug, Clone)]
pub struct Checked {
    /// `deploy`, `rollback` or `promote`.
    pub action: &'static str,
    /// The package, one of `deb_packages`.
    pub package: PackageName,
    /// The stage's position in `stages`, when one was named.
    pub stage: Option<usize>,
    /// The version, when one was named.
    pub version: Option<Version>,
    /// Whether this is a promotion (the version comes from the stage before).
    pub promote: bool,
    /// Whether this is a rollback (never forward; the version from the
    /// stage's history when none was named).
    pub rollback: bool,
}

/// How to carry it out.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Do not ask for confirmation on critical stages.
    pub yes: bool,
    /// Override the stage order guard.
    pub force: bool,
    /// Deploy into a frozen stage.
    pub override_freeze: bool,
    /// Why `--force` or `--override-freeze` was used.
    pub reason: Option<String>,
    /// Hosts changed at once after the first, a count or a percentage of
    /// the hosts taking part (overrides `batch_size`).
    pub batch: Option<crate::plan::Share>,
    /// Put changed hosts back when the rollout fails.
    pub rollback_on_failure: bool,
    /// Let apt remove, install or upgrade other packages than the one
    /// deployed.
    pub allow_dependency_changes: bool,
    /// Deploy to hosts that hold the package (`apt-mark hold`).
    pub allow_held: bool,
    /// Stream every host's apt output.
    pub verbose: bool,
    /// Stream the service's logs on the canary while its health check
    /// runs (otherwise they are shown after it).
    pub follow_logs: bool,
    /// Go ahead on the hosts that answer, leaving out those that do not.
    pub skip_unreachable: bool,
    /// Hosts of the target stage to leave alone, as written in the
    /// configuration.
    pub exclude: Vec<String>,
    /// `--plan-out`: where a dry run writes its plan.
    pub plan_out: Option<std::path::PathBuf>,
    /// `--expires`: how long a plan written by `--plan-out` stays good.
    pub expires: std::time::Duration,
    /// `--plan`: the plan file carried out, as read.
    pub plan: Option<std::sync::Arc<crate::approval::Loaded>>,
}

/// Check a package name against the configuration (before any connection).
pub fn check_package(config: &Config, text: &str) -> Result<PackageName, Fatal> {
    let listed = || {
        config
            .packages
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let with_notes = |fatal: Fatal| {
        let names = config.packages.iter().map(PackageName::as_str);
        let fatal = match crate::suggest::did_you_mean(text, names) {
            Some(guess) => fatal.note(guess),
            None => fatal,
        };
        fatal.note(format!("packages in `deb_packages`: {}", listed()))
    };
    let name: PackageName = text
        .parse()
        .map_err(|e: crate::package::PackageNameError| with_notes(Fatal::usage(e.to_string())))?;
    if !config.packages.contains(&name) {
        return Err(with_notes(Fatal::usage(format!(
            "package `{name}` is not one of `deb_packages` in {}",
            config.path.display()
        ))));
    }
    Ok(name)
}

/// Check a stage name against the configuration (before any connection).
pub fn check_stage(config: &Config, text: &str) -> Result<usize, Fatal> {
    config
        .stages
        .iter()
        .position(|s| s.name == text)
        .ok_or_else(|| {
            let names: Vec<&str> = config.stages.iter().map(|s| s.name.as_str()).collect();
            let shown: String = text
                .chars()
                .take(64)
                .collect::<String>()
                .escape_debug()
                .to_string();
            let fatal = Fatal::usage(format!(
                "stage `{shown}` is not in `stages` ({})",
                names.join(", ")
            ));
            match crate::suggest::did_you_mean(text, names.iter().copied()) {
                Some(guess) => fatal.note(guess),
                None => fatal,
            }
        })
}

/// Check a version's syntax (before any connection).
pub fn check_version(text: &str) -> Result<Version, Fatal> {
    text.parse::<Version>().map_err(|e| {
        Fatal::usage(e.to_string()).note(
            "a Debian version is [epoch:]upstream[-revision], e.g. `0.81~pr748-191` or `1:1.0-1`",
        )
    })
}

/// Check everything the operator typed, before any host is contacted.
pub fn validate(config: &Config, request: &Request, opts: &Options) -> Result<Checked, Fatal> {
    let (action, package, stage, version) = request.parts();
    let package = check_package(config, package)?;
    let stage = stage.map(|s| check_stage(config, s)).transpose()?;
    if stage == Some(0) && request.is_promote() {
        return Err(Fatal::usage(format!(
            "`{}` is the first stage: there is nothing before it to promote from",
            config.stages[0].name
        ))
        .note("use `deployer deploy` to put a version on the first stage"));
    }
    let version = version.map(check_version).transpose()?;
    // a promotion without a stage finds it later, and checks again then
    let known = stage.or((!request.is_promote()).then_some(0));
    check_excluded(config, known, &opts.exclude)?;
    for (flag, given) in [
        ("--force", opts.force),
        ("--override-freeze", opts.override_freeze),
    ] {
        if given && opts.reason.is_none() && !opts.dry_run {
            return Err(Fatal::usage(format!(
                "`{flag}` needs `--reason \"...\"`, which is kept in the history"
            )));
        }
    }
    Ok(Checked {
        action,
        package,
        stage,
        version,
        promote: request.is_promote(),
        rollback: matches!(request, Request::Rollback { .. }),
    })
}

/// Check `--exclude`'s hosts: each one a host of `stage` as written in the
/// configuration (of any stage when `stage` is not known yet), else a
/// usage error naming the value and the hosts that would be accepted.
pub fn check_excluded(
    config: &Config,
    stage: Option<usize>,
    exclude: &[String],
) -> Result<(), Fatal> {
    let stages: Vec<&crate::config::Stage> = match stage {
        Some(i) => vec![&config.stages[i]],
        None => config.stages.iter().collect(),
    };
    let hosts: Vec<String> = stages
        .iter()
        .flat_map(|s| s.hosts.iter().map(ToString::to_string))
        .collect();
    let Some(unknown) = exclude.iter().find(|h| !hosts.contains(h)) else {
        return Ok(());
    };
    let shown = crate::text::clipped_line(unknown, 64);
    let (message, listed) = match stage {
        Some(i) => {
            let name = &config.stages[i].name;
            let elsewhere = config
                .stages
                .iter()
                .find(|s| s.hosts.iter().any(|h| h.to_string() == *unknown));
            let message = match elsewhere {
                Some(other) => format!(
                    "`--exclude {shown}`: that host is in stage `{}`, not in `{name}`",
                    other.name
                ),
                None => format!("`--exclude {shown}`: no host of stage `{name}` is called that"),
            };
            (message, format!("hosts of `{name}`: {}", hosts.join(", ")))
        }
        None => (
            format!("`--exclude {shown}`: no host in the configuration is called that"),
            format!("hosts: {}", hosts.join(", ")),
        ),
    };
    let fatal = Fatal::usage(message);
    let fatal = match crate::suggest::did_you_mean(unknown, hosts.iter().map(String::as_str)) {
        Some(guess) => fatal.note(guess),
        None => fatal,
    };
    Err(fatal
        .note(listed)
        .note("name hosts as `deployer hosts` lists them (as written in `[stage:NAME] hosts`)"))
}

/// Record an attempt rejected for its input (an unknown package, a
/// malformed version, perhaps an injection attempt) as every refusal is
/// recorded ([`history::put_on_record`]: in the history, and as the
/// command's `--json` document), text as typed: JSON escaping keeps it
/// inert. Returns the record.
pub fn record_rejected(
    config: &Config,
    console: &Console,
    request: &Request,
    fatal: &Fatal,
) -> Record {
    let (action, package, stage, version) = request.parts();
    let refused =
        history::Attempt::start(action).refused(stage.unwrap_or_default(), fatal.message.clone());
    let record = Record {
        package: Some(package.to_string()),
        version: version.map(str::to_string),
        ..refused
    };
    history::put_on_record(&config.history_file, console, &record);
    record
}

/// The stages a request needs connections to: the target stage and the
/// one before it (for the order guard and promotion). `None` when every
/// stage is needed (a promotion that must find its stage first).
pub fn stages_needed(checked: &Checked) -> Option<Vec<usize>> {
    match (checked.stage, checked.promote) {
        (None, true) => None,
        (Some(i), _) => Some(if i > 0 { vec![i - 1, i] } else { vec![i] }),
        (None, false) => Some(vec![0]),
    }
}

/// Where to deploy and what, once the hosts' states are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The stage's position in `stages`.
    pub stage: usize,
    /// The version wanted.
    pub wanted: Wanted,
    /// For a rollback: where its version comes from.
    pub back: Option<Back>,
}

/// Where a rollback's version comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Back {
    /// One sentence for the plan: the version, and the record it was
    /// found in (or that it was named).
    pub origin: String,
    /// The newest successful record showing the stage running this
    /// version, if any: only such a version may go into a frozen stage.
    pub ran_before: Option<Origin>,
}

/// Why a request has no target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoTarget {
    /// `promote PKG` without a stage: no stage is behind its left neighbour.
    NothingToPromote,
    /// The stage to promote from does not run one installed version on
    /// every host; one line per host.
    SourceDisagrees {
        /// The stage promoted to.
        stage: usize,
        /// Each host of the source stage and what it runs.
        hosts: Vec<String>,
    },
    /// `rollback` without a version: the history names no one version
    /// to go back to.
    NoPrevious {
        /// The stage rolled back.
        stage: usize,
        /// Why, one sentence.
        why: String,
        /// The candidates, each with the command that picks it.
        notes: Vec<String>,
    },
    /// `rollback` to a version some hosts of the stage do not run yet: a
    /// rollback never moves a host forward.
    Forward {
        /// The stage rolled back.
        stage: usize,
        /// The version asked for.
        version: Version,
        /// Each such host and what it runs.
        hosts: Vec<String>,
    },
}

/// Decide the target stage and version: for `deploy`, what was typed (the
/// first stage by default); for `rollback`, the stage as for `deploy` and
/// the version typed or else the one `history` (the stage's merged
/// history, oldest first) shows it ran before its latest deploy or
/// promotion ([`previous::choose`]); for `promote`, the stage (the first
/// one behind its left neighbour by default) and the version every host of
/// the stage before it runs. `matrix` and `reports` cover at least those
/// stages.
pub fn target(
    config: &Config,
    checked: &Checked,
    matrix: &Matrix,
    reports: &[HostReport],
    history: &[Sourced],
) -> Result<Target, NoTarget> {
    let wanted = checked
        .version
        .clone()
        .map_or(Wanted::Newest, Wanted::Exact);
    if checked.rollback {
        return rollback_target(config, checked, reports, history);
    }
    if !checked.promote {
        return Ok(Target {
            stage: checked.stage.unwrap_or(0),
            wanted,
            back: None,
        });
    }
    let column = |name: &str| matrix.columns.iter().position(|c| c.name == name);
    let row = matrix
        .rows
        .iter()
        .find(|r| r.package == checked.package)
        .expect("the package is configured");
    let stage = match checked.stage {
        Some(i) => i,
        None => {
            // markers[i] sits between columns i and i+1 of the matrix
            let pending = row
                .markers
                .iter()
                .position(|m| *m == Marker::Pending)
                .ok_or(NoTarget::NothingToPromote)?;
            let name = &matrix.columns[pending + 1].name;
            config
                .stages
                .iter()
                .position(|s| &s.name == name)
                .expect("matrix columns are configured stages")
        }
    };
    let source = &config.stages[stage - 1].name;
    let at = column(source).expect("the source stage is in the matrix");
    match &row.cells[at] {
        Cell::Uniform(PackageState::Installed(v)) if matrix.columns[at].down == 0 => Ok(Target {
            stage,
            wanted: Wanted::Exact(v.clone()),
            back: None,
        }),
        _ => Err(NoTarget::SourceDisagrees {
            stage,
            hosts: reports
                .iter()
                .filter(|r| &r.stage == source)
                .map(|r| match &r.result {
                    Ok(s) => format!("{}: {}", r.host, s.packages[&checked.package]),
                    Err(e) => format!("{}: did not answer ({e})", r.host),
                })
                .collect(),
        }),
    }
}

/// The target of a rollback: the version typed, or the one before the
/// stage's latest deploy or promotion; refused when it would move a host
/// that answered forward (a host that did not answer is the preflight's
/// business).
fn rollback_target(
    config: &Config,
    checked: &Checked,
    reports: &[HostReport],
    history: &[Sourced],
) -> Result<Target, NoTarget> {
    let stage = checked.stage.unwrap_or(0);
    let name = &config.stages[stage].name;
    let package = checked.package.as_str();
    let (version, origin) = match &checked.version {
        Some(v) => (v.clone(), format!("{v}, as named")),
        None => match previous::choose(history, package, name) {
            Ok(choice) => {
                let origin = format!(
                    "{}, what `{name}` ran before {}",
                    choice.version, choice.from
                );
                (choice.version, origin)
            }
            Err(no) => {
                return Err(NoTarget::NoPrevious {
                    stage,
                    notes: previous::candidate_notes(&no.candidates, package, name),
                    why: no.why,
                })
            }
        },
    };
    let forward: Vec<String> = reports
        .iter()
        .filter(|r| &r.stage == name)
        .filter_map(|r| {
            let state = &r.result.as_ref().ok()?.packages[&checked.package];
            match state.version() {
                Some(v) if *v >= version => None,
                _ => Some(format!("{}: {state}", r.host)),
            }
        })
        .collect();
    if !forward.is_empty() {
        return Err(NoTarget::Forward {
            stage,
            version,
            hosts: forward,
        });
    }
    let ran_before = previous::ran_before(history, package, name)
        .into_iter()
        .find(|c| c.version == version)
        .map(|c| c.from);
    Ok(Target {
        stage,
        wanted: Wanted::Exact(version),
        back: Some(Back { origin, ran_before }),
    })
}
