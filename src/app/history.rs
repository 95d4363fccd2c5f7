//! `deployer history`: the local log, or merged with the logs kept on the
//! hosts of a stage; the records themselves are [`crate::history`]'s.

use std::io::{self, Write};

use crate::cli::Cli;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::history;

use super::output::{emit, warn};
use super::setup::{load_config, stage_fleet};

/// `deployer history`: the local log, merged with the logs kept on the
/// hosts of `hosts_of` when given. Skipped lines and hosts that could not
/// be read are warnings; the latter also make the exit status 3.
pub(super) fn command(
    cli: &Cli,
    package: Option<&str>,
    stage: Option<&str>,
    hosts_of: Option<&str>,
    json: bool,
) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    // a stage or package no longer configured still has its history: a
    // name that is not configured is a warning (a likely typo), not an error
    let unknown = [
        stage.map(|s| deploy::check_stage(&config, s).err()),
        package.map(|p| deploy::check_package(&config, p).err()),
    ];
    for fatal in unknown.into_iter().flatten().flatten() {
        warn(
            cli,
            &format!("{}; showing its records anyway", fatal.message),
        );
        for n in &fatal.notes {
            let _ = writeln!(io::stderr(), "note: {n}");
        }
    }
    let log = history::read(&config.history_file)
        .map_err(|e| Fatal::usage(e.to_string()).note(e.note()))?;
    for w in &log.warnings {
        warn(cli, w);
    }
    let Some(name) = hosts_of else {
        let selected = history::select(&log.records, package, stage);
        if json {
            emit(|out| history::render_json(&selected, out))?;
        } else {
            emit(|out| history::render_text(&selected, out))?;
        }
        return Ok(ExitStatus::Success);
    };
    let mut fleet = stage_fleet(cli, &config, name)?;
    let read = history::read_stage(&mut fleet, name, config.ssh.command_timeout);
    for w in &read.warnings {
        warn(cli, w);
    }
    let status = if read.unread {
        ExitStatus::Unreachable
    } else {
        ExitStatus::Success
    };
    let (records, disagreements) = history::merge_sourced(log.records, read.logs);
    for d in &disagreements {
        warn(cli, d);
    }
    let selected = history::select(&records, package, stage);
    if json {
        emit(|out| history::render_json(&selected, out))?;
    } else {
        emit(|out| history::render_sourced_text(&selected, out))?;
    }
    Ok(status)
}
