//! `deployer refresh-badges` (also `refresh_badges`, as cron jobs call it):
//! read every host as the status view does, write each host's badges into
//! `badges_path` over its session, and with `--output DIR` write the badges
//! of every stage and host and the dashboard into DIR.

use std::path::Path;

use crate::badges::publish::{self, HostOutcome};
use crate::badges::{self, Board};
use crate::cli::BadgeArgs;
use crate::config::Config;
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::matrix::{self, Matrix};

/// The directory, under `--output DIR`, that holds one directory per host.
const HOSTS_DIR: &str = "host";

/// Everything refresh-badges does, given the connected fleet.
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
    let reports = fleet.status(&config.packages, config.ssh.command_timeout);
    let m = matrix::for_config(config, None, &reports);
    let board = badges::board(&m, &reports);
    let mut status = if reports.iter().any(|r| r.result.is_err()) {
        ExitStatus::Unreachable
    } else {
        ExitStatus::Success
    };
    if let Some(dir) = on_hosts {
        let outcomes = publish::to_hosts(
            &mut fleet,
            &board,
            &reports,
            dir,
            |_, _| true,
            config.ssh.command_timeout,
        );
        if outcomes.iter().any(|o| o.result.is_err()) {
            status = ExitStatus::Unreachable;
        }
        report_hosts(console, dir, &outcomes, args.quiet);
    }
    if let Some(out) = &args.output {
        let (written, unchanged) = write_tree(out, &m, &board)?;
        if !args.quiet {
            console.say(&format!(
                "{}: {written} written, {unchanged} unchanged; the dashboard is {}",
                out.display(),
                out.join("index.html").display()
            ));
        }
    }
    Ok(status)
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

/// One line per host, or only the problems with `quiet` (on stderr).
fn report_hosts(console: &Console, dir: &Path, outcomes: &[HostOutcome], quiet: bool) {
    if !quiet {
        console.say(&format!("Badges on the hosts, in {}:", dir.display()));
    }
    for o in outcomes {
        match &o.result {
            Ok(w) if !quiet => console.say(&format!(
                "  {} ({})  {} written, {} unchanged",
                o.host,
                o.stage,
                w.written.len(),
                w.unchanged.len()
            )),
            Ok(_) => {}
            Err(e) => console.warn(&format!(
                "host `{}` ({}): badges not written: {e}",
                o.host, o.stage
            )),
        }
    }
}

/// Write the local tree: `DIR/STAGE/PKG.svg`, `DIR/host/HOST/PKG.svg` and
/// `DIR/index.html`. Returns how many files were written and unchanged.
fn write_tree(out: &Path, m: &Matrix, board: &Board) -> Result<(usize, usize), Fatal> {
    let mut files: Vec<(std::path::PathBuf, String, Vec<u8>)> = Vec::new();
    for b in &board.stages {
        files.push((
            out.join(&b.stage),
            format!("{}.svg", b.package),
            b.badge.svg().into_bytes(),
        ));
    }
    for b in &board.hosts {
        files.push((
            out.join(HOSTS_DIR).join(&b.host),
            format!("{}.svg", b.package),
            b.badge.svg().into_bytes(),
        ));
    }
    files.push((out.to_path_buf(), "index.html".to_string(), index(m, board)));
    let (mut written, mut unchanged) = (0, 0);
    for (dir, name, bytes) in &files {
        match publish::write_local(dir, name, bytes) {
            Ok(true) => written += 1,
            Ok(false) => unchanged += 1,
            Err(e) => {
                return Err(Fatal::usage(format!(
                    "cannot write `{}`: {e}",
                    dir.join(name).display()
                ))
                .status(ExitStatus::Internal))
            }
        }
    }
    Ok((written, unchanged))
}

/// The dashboard page.
fn index(_m: &Matrix, board: &Board) -> Vec<u8> {
    let mut page = String::from("<!doctype html><meta charset=\"utf-8\"><title>deployer</title>\n");
    for b in &board.stages {
        page.push_str(&b.badge.svg());
        page.push('\n');
    }
    page.into_bytes()
}
