//! `deployer timeline`: what changed packages on the hosts. Reaches the
//! hosts (all at once, as the status view does), reads each one's dpkg
//! and apt logs with the one fixed command of
//! [`crate::timeline::host_read_command`] and the history it keeps
//! ([`super::history::read_host_logs`]), merges that with the local
//! history, and prints; parsing, attribution and rendering are
//! [`crate::timeline`]'s.

use std::time::Instant;

use crate::cli::Cli;
use crate::config::Config;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::history;
use crate::timeline::{self, Event, Filter, HostInput};
use crate::transport::Target;

use super::history::{now, read_host_logs};
use super::output::{emit, warn};
use super::setup::{load_config, targets};

/// What `deployer timeline` was asked for.
pub(super) struct Request<'a> {
    /// Only this stage.
    pub stage: Option<&'a str>,
    /// `--since`, as given.
    pub since: &'a str,
    /// `--host`: only these hosts.
    pub hosts: &'a [String],
    /// `--package`: only these packages.
    pub packages: &'a [String],
}

/// `deployer timeline`: the changes, oldest first. Hosts that could not
/// be read, or whose logs could not all be read, are warnings and make
/// the exit status 3.
pub(super) fn command(cli: &Cli, req: &Request<'_>, json: bool) -> Result<ExitStatus, Fatal> {
    let since = timeline::parse_since(req.since, now())
        .map_err(|e| Fatal::usage(format!("`--since`: {e}")).note(timeline::SINCE_NOTE))?;
    // any package may have changed, but not a name dpkg could never log
    for p in req.packages {
        p.parse::<crate::package::PackageName>().map_err(|e| {
            Fatal::usage(format!("`--package`: {e}"))
                .note("give a Debian package name, e.g. `--package openssl`")
        })?;
    }
    let config = load_config(cli)?;
    if let Some(s) = req.stage {
        deploy::check_stage(&config, s)?;
    }
    let mine: Vec<Target> = targets(cli, &config)?
        .into_iter()
        .filter(|t| req.stage.is_none_or(|s| t.stage == s))
        .collect();
    if let Some(unknown) = req
        .hosts
        .iter()
        .find(|h| !mine.iter().any(|t| &t.host == *h))
    {
        let known: Vec<&str> = mine.iter().map(|t| t.host.as_str()).collect();
        return Err(Fatal::usage(format!(
            "`--host {}`: no such host{}",
            crate::text::one_line(unknown),
            req.stage
                .map(|s| format!(" in stage `{s}`"))
                .unwrap_or_default()
        ))
        .note(format!("the hosts are: {}", known.join(", "))));
    }
    let mine = mine
        .into_iter()
        .filter(|t| req.hosts.is_empty() || req.hosts.contains(&t.host))
        .collect();
    let mut fleet = Fleet::connect(mine, config.parallelism);
    let filter = Filter {
        since,
        hosts: req.hosts.to_vec(),
        packages: req.packages.to_vec(),
    };
    let (events, status, _) = gather(&config, &mut fleet, &filter, |_| true, &|w| warn(cli, w));
    if json {
        emit(|out| timeline::render_json(&events, out))?;
    } else {
        emit(|out| timeline::render_text(&events, out))?;
    }
    Ok(status)
}

/// The timeline of the hosts of `fleet` (already connected) whose target
/// `keep` accepts: each host's package logs read with one command, its
/// history with another (over the same session), merged with the local
/// history. Also [`ExitStatus::Unreachable`] when a host or one of its
/// logs could not be read, and the hosts that could not be read at all.
/// Warnings (hosts, logs, clocks) go to `warn`.
pub(super) fn gather(
    config: &Config,
    fleet: &mut Fleet,
    filter: &Filter,
    keep: impl Fn(&Target) -> bool,
    warn: &dyn Fn(&str),
) -> (Vec<Event>, ExitStatus, Vec<String>) {
    let (inputs, unread, mut status) = read_logs(config, fleet, filter.since, keep, warn);
    let answered: Vec<(String, String)> = inputs
        .iter()
        .map(|h| (h.stage.clone(), h.host.clone()))
        .collect();
    let (host_logs, history_status) = read_host_logs(
        config,
        fleet,
        |t| answered.iter().any(|(s, h)| *s == t.stage && *h == t.host),
        warn,
    );
    if history_status != ExitStatus::Success {
        status = history_status;
    }
    let local = match history::read(&config.history_file) {
        Ok(log) => {
            for w in &log.warnings {
                warn(w);
            }
            log.records
        }
        Err(e) => {
            warn(&format!("{e}; deployer's local records are left out"));
            Vec::new()
        }
    };
    let (records, disagreements) = history::merge_sourced(local, host_logs);
    for d in &disagreements {
        warn(d);
    }
    let records: Vec<history::Record> = records.into_iter().map(|s| s.record).collect();
    (
        timeline::attribute(&inputs, &records, filter),
        status,
        unread,
    )
}

/// Run [`timeline::host_read_command`] on the hosts of `fleet` that
/// `keep` accepts, timing each answer against this machine's clock: what
/// each said, the hosts that could not be read, and the exit status.
fn read_logs(
    config: &Config,
    fleet: &mut Fleet,
    since: i64,
    keep: impl Fn(&Target) -> bool,
    warn: &dyn Fn(&str),
) -> (Vec<HostInput>, Vec<String>, ExitStatus) {
    let command = timeline::host_read_command(since);
    let timeout = config.ssh.command_timeout;
    let answers = fleet.on_each(keep, |m| {
        let before = now();
        let started = Instant::now();
        let out = m.run(&command, timeout);
        let after = before + i64::try_from(started.elapsed().as_secs()).unwrap_or(0) + 1;
        let target = m.target();
        (
            target.stage.clone(),
            target.host.clone(),
            out,
            before,
            after,
        )
    });
    let mut status = ExitStatus::Success;
    let mut inputs = Vec::new();
    let mut unread = Vec::new();
    for (stage, host, answer, before, after) in answers {
        let out = match answer {
            Ok(out) if out.success() => out,
            Ok(out) => {
                warn(&format!(
                    "host `{host}`: cannot read its package logs: {}",
                    crate::transport::failure(&out)
                ));
                status = ExitStatus::Unreachable;
                unread.push(host);
                continue;
            }
            Err(e) => {
                warn(&format!("host `{host}`: cannot read its package logs: {e}"));
                status = ExitStatus::Unreachable;
                unread.push(host);
                continue;
            }
        };
        let logs = timeline::parse_host_logs(&out.stdout, out.stdout_dropped, since);
        for w in &logs.warnings {
            warn(&format!("host `{host}`: {w}"));
        }
        if logs.unreadable {
            status = ExitStatus::Unreachable;
        }
        let skew = timeline::skew(logs.clock, before, after);
        if skew.abs() > timeline::CLOCK_SLACK {
            warn(&format!(
                "host `{host}`: its clock is {}s {} this machine's; its times are shown as \
                 its own clock and logs give them",
                skew.abs(),
                if skew > 0 { "ahead of" } else { "behind" }
            ));
        }
        inputs.push(HostInput {
            stage,
            host,
            logs,
            skew,
        });
    }
    (inputs, unread, status)
}
