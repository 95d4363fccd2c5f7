//! `deployer history`: the local log, or merged with the logs kept on the
//! hosts of a stage (or of every stage); the records themselves are
//! [`crate::history`]'s. [`read_host_logs`] reads the hosts' logs for any
//! command that needs them.

use std::io::{self, Write};

use crate::cli::Cli;
use crate::config::Config;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::history::{self, Record};
use crate::transport::Target;

use super::output::{emit, warn};
use super::setup::{load_config, targets};

/// What `deployer history` was asked for.
pub(super) struct Request<'a> {
    /// Only this package.
    pub package: Option<&'a str>,
    /// Only this stage.
    pub stage: Option<&'a str>,
    /// `--hosts`: the stage whose hosts to read, empty for `--stage`'s or
    /// every stage's; `None` for the local log alone.
    pub hosts_of: Option<&'a str>,
    /// `--since`, as given.
    pub since: Option<&'a str>,
    /// `--limit`.
    pub limit: Option<usize>,
}

/// `deployer history`: the local log, merged with the logs kept on the
/// hosts when `--hosts` is given. Skipped lines and hosts that could not
/// be read are warnings; the latter also make the exit status 3.
pub(super) fn command(cli: &Cli, req: &Request<'_>, json: bool) -> Result<ExitStatus, Fatal> {
    let since = req
        .since
        .map(|s| {
            crate::timeline::parse_since(s, history::now_unix()).map_err(|e| {
                Fatal::usage(format!("`--since`: {e}")).note(crate::timeline::SINCE_NOTE)
            })
        })
        .transpose()?;
    let config = load_config(cli)?;
    let (package, stage) = (req.package, req.stage);
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
    let in_window = |r: &Record| {
        since.is_none_or(|s| crate::timeline::parse_time(&r.time).is_ok_and(|t| t >= s))
    };
    let Some(named) = req.hosts_of else {
        let mut selected = history::select(&log.records, package, stage);
        selected.retain(|r| in_window(r));
        selected.truncate(req.limit.unwrap_or(usize::MAX));
        if json {
            emit(|out| history::render_json(&selected, out))?;
        } else {
            emit(|out| history::render_text(&selected, out))?;
        }
        return Ok(ExitStatus::Success);
    };
    // `--hosts STAGE`, else `--hosts` with `--stage`, else every stage
    let of: Option<&str> = Some(named).filter(|s| !s.is_empty()).or(stage);
    if let Some(s) = of {
        deploy::check_stage(&config, s)?;
    }
    let mut fleet = Fleet::unopened(
        targets(cli, &config)?
            .into_iter()
            .filter(|t| of.is_none_or(|s| t.stage == s))
            .collect(),
        config.parallelism,
        None,
    );
    let (hosts, status) = read_host_logs(&config, &mut fleet, |_| true, &|w| warn(cli, w));
    let (records, disagreements) = history::merge_sourced(log.records, hosts);
    for d in &disagreements {
        warn(cli, d);
    }
    let mut selected = history::select(&records, package, stage);
    selected.retain(|r| in_window(&r.record));
    selected.truncate(req.limit.unwrap_or(usize::MAX));
    if json {
        emit(|out| history::render_json(&selected, out))?;
    } else {
        emit(|out| history::render_sourced_text(&selected, out))?;
    }
    Ok(status)
}

/// Read the history kept on each host of `fleet` whose target `keep`
/// accepts ([`history::read_hosts`], the one reader), for a command: lines
/// skipped and hosts not read are warnings, given to `warn`, and make the
/// status [`ExitStatus::Unreachable`] (else success).
pub(super) fn read_host_logs(
    config: &Config,
    fleet: &mut Fleet,
    keep: impl Fn(&Target) -> bool,
    warn: &dyn Fn(&str),
) -> (Vec<history::HostLog>, ExitStatus) {
    let read = history::read_hosts(fleet, keep, config.ssh.command_timeout);
    for w in &read.warnings {
        warn(w);
    }
    let status = if read.unread {
        ExitStatus::Unreachable
    } else {
        ExitStatus::Success
    };
    (read.logs, status)
}
