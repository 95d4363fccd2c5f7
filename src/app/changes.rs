//! `deployer changes PKG [STAGE] [VERSION]`: what a deploy of VERSION to
//! STAGE would send out (or take back), from the changelog the target
//! version's package carries, without deploying.
//!
//! The defaults are `deploy`'s, so that `deployer changes fastpath` reviews
//! what `deployer deploy fastpath` would do: STAGE is the first stage,
//! VERSION the version apt would install there (the hosts' candidate; the
//! newest when they disagree, with a note). Read-only: no `apt-get update`,
//! no sudo, no lock; the changelog is read on one host (see
//! [`crate::changelog::fetch_command`]). Parsing and rendering are
//! [`crate::changelog`]'s.

use std::io::Write;

use crate::apt;
use crate::changelog::Review;
use crate::cli::Cli;
use crate::config::Config;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::version::Version;

use super::output::{emit, waiting};
use super::setup::{load_config, targets};

/// `deployer changes PKG [STAGE] [VERSION]`: status 3 when some host of
/// the stage did not answer (the review counts the others).
pub(super) fn command(cli: &Cli, request: &Request<'_>, json: bool) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    let outcome = gather(
        &config,
        |stage| {
            let mine = targets(cli, &config)?
                .into_iter()
                .filter(|t| t.stage == stage)
                .collect();
            Ok(Fleet::connect_watched(
                mine,
                config.parallelism,
                waiting(cli),
            ))
        },
        request,
    )?;
    if json {
        emit(|out| render_json(&outcome, out))?;
    } else {
        emit(|out| render_text(&outcome, out))?;
    }
    Ok(if outcome.unreachable.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Unreachable
    })
}

/// What was typed.
pub(crate) struct Request<'a> {
    /// The package, one of `deb_packages`.
    pub package: &'a str,
    /// The stage; the first one when `None`.
    pub stage: Option<&'a str>,
    /// The version; the hosts' candidate when `None`.
    pub version: Option<&'a str>,
}

/// The review, and what kept parts of it from being complete.
pub(crate) struct Outcome {
    /// The stage reviewed.
    pub stage: String,
    /// The review.
    pub review: Review,
    /// Hosts that did not answer, `host: why` (not counted in the review).
    pub unreachable: Vec<String>,
}

/// Check what was typed (before any connection), then read the hosts of
/// the stage and the changelog.
pub(crate) fn gather(
    config: &Config,
    fleet_of: impl FnOnce(&str) -> Result<Fleet, Fatal>,
    request: &Request<'_>,
) -> Result<Outcome, Fatal> {
    let package = deploy::check_package(config, request.package)?;
    let stage = match request.stage {
        Some(s) => deploy::check_stage(config, s)?,
        None => 0,
    };
    let stage = config.stages[stage].name.clone();
    let wanted = request.version.map(deploy::check_version).transpose()?;
    let mut fleet = fleet_of(&stage)?;
    let timeout = config.ssh.command_timeout;
    let reports = fleet.status(std::slice::from_ref(&package), timeout);
    let mut unreachable = Vec::new();
    let mut answered = Vec::new();
    for r in reports.iter().filter(|r| r.stage == stage) {
        match &r.result {
            Ok(s) => answered.push((
                r.host.clone(),
                s.packages.get(&package).and_then(|p| p.version().cloned()),
            )),
            Err(e) => unreachable.push(format!("{}: {e}", r.host)),
        }
    }
    if answered.is_empty() {
        let mut fatal = Fatal::usage(format!(
            "no host of `{stage}` answered; cannot read what they run"
        ))
        .status(ExitStatus::Unreachable);
        fatal.notes = unreachable;
        return Err(fatal);
    }
    let mut notes = Vec::new();
    let version = match wanted {
        Some(v) => v,
        None => candidate(&mut fleet, &stage, &package, timeout, &mut notes)?,
    };
    let mut review = deploy::preflight::review_of(
        &mut fleet,
        &stage,
        package.as_str(),
        &version,
        &answered,
        config.ssh.deploy_timeout,
    );
    review.notes.splice(0..0, notes);
    Ok(Outcome {
        stage,
        review,
        unreachable,
    })
}

/// The version `apt-get install PKG` would pick on the stage's hosts
/// (read-only `apt-cache policy`): the newest candidate, with a note when
/// the hosts disagree.
fn candidate(
    fleet: &mut Fleet,
    stage: &str,
    package: &crate::package::PackageName,
    timeout: std::time::Duration,
    notes: &mut Vec<String>,
) -> Result<Version, Fatal> {
    let answers = fleet.run_on_stage(stage, &apt::policy(package), timeout);
    let mut candidates: Vec<(String, Version)> = Vec::new();
    for (host, answer) in answers {
        let policy = answer
            .map_err(|e| e.to_string())
            .and_then(|out| apt::parse_policy(package, &out.stdout));
        if let Ok(Some(c)) = policy.map(|p| p.candidate) {
            candidates.push((host, c));
        }
    }
    let newest = candidates.iter().map(|(_, v)| v).max().cloned();
    let Some(newest) = newest else {
        return Err(Fatal::usage(format!(
            "no host of `{stage}` has a version of `{package}` to install"
        ))
        .note(format!(
            "name one: `deployer changes {package} {stage} VERSION`; `deployer versions {package} {stage}` lists them"
        )));
    };
    let others: Vec<String> = candidates
        .iter()
        .filter(|(_, v)| *v != newest)
        .map(|(h, v)| format!("{h} would install {v}"))
        .collect();
    if !others.is_empty() {
        notes.push(format!(
            "the hosts of `{stage}` disagree on the version to install ({}); showing {newest}",
            others.join(", ")
        ));
    }
    Ok(newest)
}

/// The review for people, after the stage; unreachable hosts last.
pub(crate) fn render_text(outcome: &Outcome, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "Stage: {}", outcome.stage)?;
    out.write_all(outcome.review.describe().as_bytes())?;
    for u in &outcome.unreachable {
        writeln!(out, "  not counted (no answer): {u}")?;
    }
    Ok(())
}

/// The review for scripts: the stage, the review's fields (every selected
/// entry with all its change lines), and the hosts that did not answer.
pub(crate) fn render_json(outcome: &Outcome, out: &mut dyn Write) -> std::io::Result<()> {
    let mut v = serde_json::to_value(&outcome.review).expect("a review is JSON");
    v["stage"] = serde_json::json!(outcome.stage);
    v["unreachable"] = serde_json::json!(outcome.unreachable);
    serde_json::to_writer_pretty(&mut *out, &v)?;
    writeln!(out)
}
