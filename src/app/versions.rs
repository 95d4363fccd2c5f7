//! `deployer versions PKG [STAGE]`: refresh the package lists of the
//! stage's hosts (`apt-get update`, waiting for the lists lock as deploys
//! do) unless `--no-update`, read `apt-cache policy PKG` and the `.deb`
//! cache's listing (read-only, no sudo) on each, and hand
//! the answers to [`crate::versions`], which orders and renders them.
//!
//! The commands and their parsing are `apt`'s; nothing here is installed
//! or removed.

use std::io::{self, Write};

use crate::apt::{self, Policy};
use crate::cli::Cli;
use crate::config::Config;
use crate::debcache;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::package::PackageName;
use crate::transport;
use crate::version::Version;
use crate::versions::{self, Failure, Report};

use super::output::{emit, waiting};
use super::setup::{load_config, targets};

/// `deployer versions PKG [STAGE]`: status 3 when some host did not answer.
pub(super) fn command(
    cli: &Cli,
    package: &str,
    stage: Option<&str>,
    update: bool,
    json: bool,
) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    let package = deploy::check_package(&config, package)?;
    if let Some(stage) = stage {
        deploy::check_stage(&config, stage)?;
    }
    let stages: Vec<&str> = config
        .stages
        .iter()
        .map(|s| s.name.as_str())
        .filter(|s| stage.is_none_or(|only| *s == only))
        .collect();
    let mine = targets(cli, &config)?
        .into_iter()
        .filter(|t| stages.contains(&t.stage.as_str()))
        .collect();
    let mut fleet = Fleet::connect_watched(mine, config.parallelism, waiting(cli));
    let report = gather(&config, &mut fleet, &stages, &package, update);
    if json {
        emit(|out| crate::versions::render_json(&report, out))?;
    } else {
        emit(|out| crate::versions::render_text(&report, out))?;
    }
    Ok(if report.failures.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Unreachable
    })
}

/// What one host answered: its policy, or why there is none (one line,
/// made safe); and its cached versions, or why they could not be read.
type Answer = (Result<Policy, String>, Result<Vec<Version>, String>);

/// Ask every host of `fleet` what it can install of `package`, stage by
/// stage in configuration order (`stages`: the names asked about).
pub(crate) fn gather(
    config: &Config,
    fleet: &mut Fleet,
    stages: &[&str],
    package: &PackageName,
    update: bool,
) -> Report {
    let lock_wait = config.ssh.lock_timeout;
    let update_timeout = config.ssh.deploy_timeout;
    let policy_timeout = config.ssh.command_timeout;
    let policy_command = apt::policy(package);
    let cache_command = debcache::listing_command(package);
    let answers: Vec<(String, String, Answer)> = fleet.on_each(
        |_| true,
        |m| {
            let stage = m.target().stage.clone();
            let host = m.host().to_string();
            if update {
                let updated = m.run_waiting_for_lock(
                    &apt::update(),
                    update_timeout,
                    lock_wait,
                    apt::update_lock_busy,
                    |host| {
                        let _ = writeln!(
                            io::stderr(),
                            "  {host}: `apt-get update` waits for a lock held by another process (apt-daily, unattended-upgrades?), up to {}s",
                            lock_wait.as_secs()
                        );
                    },
                );
                let failed = match updated {
                    Ok(out) if out.success() => None,
                    Ok(out) => Some(format!(
                        "`apt-get update` failed (exit status {}): {}{}",
                        out.status,
                        apt::update_failure(&out.combined()),
                        apt::failure_hint(&out.combined())
                            .map(|h| format!("; {h}"))
                            .unwrap_or_default()
                    )),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(why) = failed {
                    return (stage, host, (Err(why), Ok(Vec::new())));
                }
            }
            let answer = match m.run(&policy_command, policy_timeout) {
                Ok(out) if out.success() => apt::parse_policy(package, &out.stdout)
                    .map_err(|e| {
                        format!(
                            "cannot read `apt-cache policy`: {}",
                            crate::text::clipped_line(&e, crate::text::REMOTE_TEXT_MAX)
                        )
                    }),
                Ok(out) => Err(format!(
                    "`apt-cache policy` failed ({})",
                    transport::failure(&out)
                )),
                Err(e) => Err(e.to_string()),
            };
            let cached = match m.run(&cache_command, policy_timeout) {
                Ok(out) if out.success() => Ok(debcache::parse_listing(package, &out.stdout)
                    .into_iter()
                    .map(|c| c.version)
                    .collect()),
                Ok(out) => Err(crate::hostpath::refused(&out.stderr)
                    .unwrap_or_else(|| transport::failure(&out))),
                Err(e) => Err(e.to_string()),
            };
            (stage, host, (answer, cached))
        },
    );
    let mut failures = Vec::new();
    let per_stage = stages
        .iter()
        .map(|&stage| {
            let policies: Vec<(String, Policy)> = answers
                .iter()
                .filter(|(s, _, _)| s == stage)
                .filter_map(|(_, host, (a, _))| match a {
                    Ok(p) => Some((host.clone(), p.clone())),
                    Err(e) => {
                        failures.push(Failure {
                            stage: stage.to_string(),
                            host: host.clone(),
                            error: e.clone(),
                        });
                        None
                    }
                })
                .collect();
            let caches: Vec<(String, Result<Vec<Version>, String>)> = answers
                .iter()
                .filter(|(s, _, (a, _))| s == stage && a.is_ok())
                .map(|(_, host, (_, c))| (host.clone(), c.clone()))
                .collect();
            versions::with_caches(versions::for_stage(stage, &policies), &caches)
        })
        .collect();
    Report {
        package: package.clone(),
        updated: update,
        stages: per_stage,
        failures,
    }
}
