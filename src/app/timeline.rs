//! `deployer timeline`: what changed packages on the hosts. Reaches the
//! hosts (all at once, as the status view does), reads each one's dpkg
//! and apt logs with the one fixed command of
//! [`crate::timeline::host_read_command`] and the history it keeps
//! ([`super::history::read_host_logs`]), merges that with the local
//! history, and prints; parsing, attribution and rendering are
//! [`crate::timeline`]'s.

use std::time::{Duration, Instant};

use crate::cli::Cli;
use crate::command::RemoteCommand;
use crate::config::Config;
use crate::deploy;
use crate::error::{ExitStatus, Fatal, HostError};
use crate::fleet::{Fleet, Member};
use crate::history;
use crate::timeline::{self, Event, Filter, HostInput};
use crate::transport::{Output, Target};

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
    let since = timeline::parse_since(req.since, history::now_unix())
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
    let mut fleet = Fleet::unopened(mine, config.parallelism, None);
    let filter = Filter {
        since,
        hosts: req.hosts.to_vec(),
        packages: req.packages.to_vec(),
    };
    let reader = Reader::new(since, config.ssh.command_timeout);
    let reads = fleet.visit(|_| true, |m| reader.read(m));
    let (events, status, _) = gather(&config, reads, &filter, &|w| warn(cli, w));
    if json {
        emit(|out| timeline::render_json(&events, out))?;
    } else {
        emit(|out| timeline::render_text(&events, out))?;
    }
    Ok(status)
}

/// What the timeline reads on the hosts, each host in one visit over one
/// session: its package logs ([`timeline::host_read_command`]), timed
/// against this machine's clock, then, when they answered, the history it
/// keeps ([`history::host_read_command`]).
pub(super) struct Reader {
    logs: RemoteCommand,
    history: RemoteCommand,
    timeout: Duration,
}

/// What one host gave a [`Reader`].
pub(super) struct HostRead {
    stage: String,
    host: String,
    /// The answer to the logs' command.
    logs: Result<Output, HostError>,
    /// This machine's clock before the logs were asked for, and after
    /// (rounded up): the bounds of the host's clock reading.
    before: i64,
    after: i64,
    /// The answer to the history's command, when the logs answered.
    history: Option<history::HostAnswer>,
}

impl Reader {
    /// The reads of the changes since `since` (seconds since the epoch),
    /// each command given `timeout`.
    pub(super) fn new(since: i64, timeout: Duration) -> Reader {
        Reader {
            logs: timeline::host_read_command(since),
            history: history::host_read_command(),
            timeout,
        }
    }

    /// Read the host of `m`.
    pub(super) fn read(&self, m: &mut Member) -> HostRead {
        let before = history::now_unix();
        let started = Instant::now();
        let logs = m.run(&self.logs, self.timeout);
        let after = before + i64::try_from(started.elapsed().as_secs()).unwrap_or(0) + 1;
        let history = logs
            .as_ref()
            .is_ok_and(Output::success)
            .then(|| history::read_host(m, &self.history, self.timeout));
        let target = m.target();
        HostRead {
            stage: target.stage.clone(),
            host: target.host.clone(),
            logs,
            before,
            after,
            history,
        }
    }
}

/// The timeline from what the hosts gave a [`Reader`], merged with the
/// local history. Also [`ExitStatus::Unreachable`] when a host or one of
/// its logs could not be read, and the hosts that could not be read at
/// all. Warnings (hosts, logs, clocks) go to `warn`.
pub(super) fn gather(
    config: &Config,
    reads: Vec<HostRead>,
    filter: &Filter,
    warn: &dyn Fn(&str),
) -> (Vec<Event>, ExitStatus, Vec<String>) {
    let mut answers = Vec::new();
    let mut logs = Vec::new();
    for r in reads {
        answers.extend(r.history);
        logs.push((r.stage, r.host, r.logs, r.before, r.after));
    }
    let (inputs, unread, mut status) = read_logs(logs, filter.since, warn);
    let read = history::collect_hosts(answers);
    for w in &read.warnings {
        warn(w);
    }
    if read.unread {
        status = ExitStatus::Unreachable;
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
    let (records, disagreements) = history::merge_sourced(local, read.logs);
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

/// The hosts' answers to [`timeline::host_read_command`] (with the
/// bounds of each host's clock reading), parsed: what each said, the hosts
/// that could not be read, and the exit status.
#[allow(clippy::type_complexity)]
fn read_logs(
    answers: Vec<(String, String, Result<Output, HostError>, i64, i64)>,
    since: i64,
    warn: &dyn Fn(&str),
) -> (Vec<HostInput>, Vec<String>, ExitStatus) {
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
