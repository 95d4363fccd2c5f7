//! `deployer refresh-badges` (also `refresh_badges`, as cron jobs call it):
//! read every host as the status view does, write each host's badges into
//! `badges_path` over its session, and with `--output DIR` write the badges
//! of every stage and host and the dashboard into DIR.

use std::path::{Path, PathBuf};

use crate::badge::{Fonts, PngError};
use crate::badges::publish::{self, HostOutcome};
use crate::badges::{self, Board};
use crate::cli::{BadgeArgs, Cli};
use crate::config::Config;
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::matrix::{self, Matrix};
use crate::render::changes::LastChanges;
use crate::render::{self, Color};
use crate::sudo;

use super::output::console;
use super::setup::{load_config, targets};
use super::timeline::{HostRead, Reader};

/// `deployer refresh-badges`: the options checked before any host is
/// contacted, then the badges of every host written ([`refresh`]).
pub(super) fn command(cli: &Cli, color: Color, args: &BadgeArgs) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    check(&config, args)?;
    let console = console(cli, color);
    let fleet = Fleet::unopened(targets(cli, &config)?, config.parallelism, console.watch());
    refresh(&config, &console, fleet, args)
}

/// The directory, under `--output DIR`, that holds one directory per host.
const HOSTS_DIR: &str = "host";

/// Everything refresh-badges does, given the fleet (not connected yet):
/// every host visited once to read its states (and, for the dashboard's
/// last changes, its logs), then each host with badges to write visited
/// again to write them, each session closed once its work is done, so that
/// no more sessions are open than hosts worked on at once.
pub fn refresh(
    config: &Config,
    console: &Console,
    mut fleet: Fleet,
    args: &BadgeArgs,
) -> Result<ExitStatus, Fatal> {
    let on_hosts = config
        .badges_path
        .as_deref()
        .filter(|_| !args.no_host_badges);
    let fonts = if args.png || config.badges_png {
        Some(Fonts::system().map_err(|e| Fatal::usage(format!("PNG badges: {e}")).note(e.note()))?)
    } else {
        None
    };
    let timeout = config.ssh.command_timeout;
    // the dashboard's last changes are read in the same visit as the states
    let reader = args
        .output
        .as_ref()
        .and(config.dashboard_changes)
        .map(|window| {
            let since = crate::history::now_unix() - i64::try_from(window).unwrap_or(i64::MAX / 2);
            (window, since, Reader::new(since, timeout))
        });
    let (reports, reads): (Vec<_>, Vec<_>) = fleet
        .survey_with(&config.packages, timeout, |m, report| {
            let (_, _, reader) = reader.as_ref()?;
            report.result.is_ok().then(|| reader.read(m))
        })
        .into_iter()
        .unzip();
    let mut m = matrix::for_config(config, None, &reports);
    // the dashboard shows the stages held by alerts
    if args.output.is_some() {
        crate::alerts::mark_stages(config.alerts.as_ref(), &mut m);
        crate::window::mark_stages(config, &mut m, crate::window::now());
    }
    let board = badges::board(&m, &reports);
    let refreshed = crate::history::now_rfc3339();
    let mut status = if reports.iter().any(|r| r.result.is_err()) {
        ExitStatus::Unreachable
    } else {
        ExitStatus::Success
    };
    if let Some(dir) = on_hosts {
        let files = publish::host_files(&board, fonts.as_ref(), |_, _| true).map_err(png_failed)?;
        let outcomes = publish::to_hosts(&mut fleet, &files, &reports, dir, timeout, None, |m| {
            sudo_refusal(m, timeout)
        });
        if outcomes.iter().any(|o| o.result.is_err()) {
            status = ExitStatus::Unreachable;
        }
        report_hosts(console, dir, &outcomes);
    } else {
        // no writes on the hosts to report them: say which did not answer
        for r in &reports {
            if let Err(e) = &r.result {
                console.warn(&format!(
                    "host `{}` ({}): unreachable: {e}",
                    r.host, r.stage
                ));
            }
        }
    }
    if let Some(out) = &args.output {
        let changes = reader.map(|(window, since, _)| {
            last_changes(
                config,
                console,
                reads.into_iter().flatten().collect(),
                &reports,
                window,
                since,
            )
        });
        let dashboard = render::Dashboard {
            refreshed: &refreshed,
            refresh: config.dashboard_refresh,
            changes: changes.as_ref(),
        };
        let (written, unchanged) = write_tree(out, &m, &board, fonts.as_ref(), &dashboard)?;
        console.say(&format!(
            "{}: {written} written, {unchanged} unchanged; the dashboard is {}",
            out.display(),
            out.join("index.html").display()
        ));
    }
    Ok(status)
}

/// The dashboard's "Last changes": the timeline of the last `window`
/// seconds (since `since`) from what the hosts whose status was read gave
/// in the same visit (`reads`). Hosts that did not answer are listed as
/// not read; what the others' logs lacked is a warning.
fn last_changes(
    config: &Config,
    console: &Console,
    reads: Vec<HostRead>,
    reports: &[crate::matrix::HostReport],
    window: u64,
    since: i64,
) -> LastChanges {
    let filter = crate::timeline::Filter {
        since,
        ..Default::default()
    };
    let (events, _, mut unread) = super::timeline::gather(config, reads, &filter, &|w| {
        console.warn(&format!("the dashboard's last changes: {w}"))
    });
    unread.extend(
        reports
            .iter()
            .filter(|r| r.result.is_err())
            .map(|r| r.host.clone()),
    );
    LastChanges {
        window: crate::timeline::format_window(window),
        events,
        unread,
    }
}

/// Whether sudo works on the host of `m` for writing its badges (the one
/// [`sudo`] probe): when it does not, the fault and its fix. A host that
/// cannot answer is left to the write to report.
fn sudo_refusal(m: &mut crate::fleet::Member, timeout: std::time::Duration) -> Option<String> {
    let (user, answer) = sudo::ask(m, timeout);
    let verdict = answer.ok()?;
    let problem = verdict.problem(&user)?;
    let fix = verdict.fix(&user, m.host())?;
    Some(format!("{problem}; {fix}"))
}

/// Check, before any host is contacted, that refresh-badges has somewhere
/// to write and that every stage and host gives a usable file name.
pub fn check(config: &Config, args: &BadgeArgs) -> Result<(), Fatal> {
    if config.badges_path.is_none() && args.output.is_none() {
        return Err(Fatal::usage(format!(
            "`{}` sets no `badges_path`, and no `--output DIR` was given: there is nowhere to write badges",
            config.path.display()
        ))
        .note(
            "set `badges_path = /var/www/package_badges` in `[environment]` for badges on every \
             host, or give `--output DIR` for the badges and the dashboard on this machine",
        ));
    }
    if args.output.is_none() {
        return Ok(());
    }
    if config.stage(HOSTS_DIR).is_some() {
        return Err(Fatal::usage(format!(
            "stage `{HOSTS_DIR}` would share `--output DIR/{HOSTS_DIR}/` with the per-host badges"
        ))
        .note("rename the stage in deployer.ini to use `--output`"));
    }
    for stage in &config.stages {
        for host in &stage.hosts {
            let name = host.to_string();
            if !is_file_name(&name) {
                return Err(Fatal::usage(format!(
                    "host `{}` of stage `{}` cannot name a directory under `--output DIR/{HOSTS_DIR}/`",
                    crate::text::one_line(&name),
                    stage.name
                ))
                .note("a host used with `--output` must not be `.`, `..` or contain `/`"));
            }
        }
    }
    Ok(())
}

/// Whether `s` can be one file name: not empty, `.` or `..`, no `/`, no
/// control character.
fn is_file_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.chars().any(char::is_control)
}

/// One line per host (none with `--quiet`), and each problem on stderr.
fn report_hosts(console: &Console, dir: &Path, outcomes: &[HostOutcome]) {
    console.say(&format!("Badges on the hosts, in {}:", dir.display()));
    let width = outcomes
        .iter()
        .map(|o| o.host.chars().count() + o.stage.chars().count() + 3)
        .max()
        .unwrap_or(0);
    for o in outcomes {
        match &o.result {
            Ok(w) => {
                let who = format!("{} ({})", o.host, o.stage);
                console.say(&format!(
                    "  {who:<width$}  {} written, {} unchanged",
                    w.written.len(),
                    w.unchanged.len()
                ));
            }
            Err(e) => console.warn(&format!(
                "host `{}` ({}): badges not written: {e}",
                o.host, o.stage
            )),
        }
    }
}

/// Write the local tree: `DIR/STAGE/PKG.svg`, `DIR/host/HOST/PKG.svg`
/// (and `.png` beside them with `png`) and `DIR/index.html`. Returns how
/// many files were written and how many were left unchanged.
fn write_tree(
    out: &Path,
    m: &Matrix,
    board: &Board,
    png: Option<&Fonts>,
    dashboard: &render::Dashboard<'_>,
) -> Result<(usize, usize), Fatal> {
    let stages = board
        .stages
        .iter()
        .map(|b| (out.join(&b.stage), &b.package, &b.badge));
    let hosts = board
        .hosts
        .iter()
        .map(|b| (out.join(HOSTS_DIR).join(&b.host), &b.package, &b.badge));
    let mut files: Vec<(PathBuf, publish::File)> = Vec::new();
    for (dir, package, badge) in stages.chain(hosts) {
        for f in publish::badge_files(package, badge, png).map_err(png_failed)? {
            files.push((dir.clone(), f));
        }
    }
    let mut page = Vec::new();
    render::html(m, board, dashboard, &mut page).expect("writing into memory cannot fail");
    files.push((
        out.to_path_buf(),
        publish::File {
            name: "index.html".to_string(),
            bytes: page,
        },
    ));
    let (mut written, mut unchanged) = (0, 0);
    for (dir, f) in &files {
        match publish::write_local(dir, &f.name, &f.bytes) {
            Ok(true) => written += 1,
            Ok(false) => unchanged += 1,
            Err(e) => {
                return Err(Fatal::usage(format!(
                    "cannot write `{}`: {e}",
                    dir.join(&f.name).display()
                ))
                .status(ExitStatus::Internal))
            }
        }
    }
    Ok((written, unchanged))
}

/// A badge that cannot be drawn as PNG.
fn png_failed(e: PngError) -> Fatal {
    Fatal::usage(format!("cannot draw a PNG badge: {e}"))
        .note(e.note())
        .status(ExitStatus::Internal)
}
