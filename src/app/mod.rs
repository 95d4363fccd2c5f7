//! Glue between the command line and the modules: load the configuration,
//! reach the hosts, print, and choose the exit status. Errors end up here
//! and are printed once, as `error:` and `note:` lines.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

mod badges;
mod changes;
mod check;
pub mod completions;
mod freeze;
mod hosts;
mod init;
mod selection;
mod unlock;
mod versions;

use crate::cli::{Cli, ColorChoice, Command, DeployArgs, StatusArgs};
use crate::config::{self, Config};
use crate::console::Console;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::history;
use crate::interrupt::Interrupt;
use crate::matrix;
use crate::operator;
use crate::render::{self, Color};
use crate::ssh_config::{ResolveContext, SshConfigFile};
use crate::transport::{self, LocalContext, Target};

/// Run the tool and return the exit status; every error is printed here.
pub fn run(cli: Cli) -> ExitStatus {
    // One connection per host, all open at once: use all the descriptors
    // the system allows. Should this fail, running out is still reported
    // per host, with what to do about it.
    let _ = transport::raise_fd_limit();
    let color = decide_color(cli.color, io::stdout().is_terminal());
    start_logs(&cli);
    match dispatch(&cli, color) {
        Ok(status) => status,
        Err(fatal) => {
            print_fatal(&fatal, stderr_color(&cli));
            fatal.status
        }
    }
}

/// `-v` and `-vv`: log lines on stderr (`tracing`), every command run on
/// each host, then connections, timings and exit statuses. Nothing
/// without `-v`.
fn start_logs(cli: &Cli) {
    let level = match cli.verbose {
        0 => return,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(stderr_color(cli) == Color::Always)
        .try_init();
}

/// Colour on or off: `--color always|never`; otherwise off with
/// `NO_COLOR` (non-empty), on with `CLICOLOR_FORCE` (non-empty, as
/// `anstyle-query` and clap read it), off with `CLICOLOR=0`, else on for a
/// terminal whose `TERM` is not `dumb`.
pub fn decide_color(choice: ColorChoice, is_terminal: bool) -> Color {
    match choice {
        ColorChoice::Always => Color::Always,
        ColorChoice::Never => Color::Never,
        ColorChoice::Auto if anstyle_query::no_color() => Color::Never,
        ColorChoice::Auto if anstyle_query::clicolor_force() => Color::Always,
        ColorChoice::Auto if anstyle_query::clicolor() == Some(false) => Color::Never,
        ColorChoice::Auto if is_terminal && anstyle_query::term_supports_color() => Color::Always,
        ColorChoice::Auto => Color::Never,
    }
}

/// The colour decision for stderr.
fn stderr_color(cli: &Cli) -> Color {
    decide_color(cli.color, io::stderr().is_terminal())
}

/// The console of this run: stdout coloured as `color`, stderr as its own
/// decision.
fn console(cli: &Cli, color: Color) -> Console {
    Console::stdio_colors(color, stderr_color(cli))
        .quiet(cli.quiet)
        .with_waiting(crate::console::Waiting::on_terminal(cli.quiet))
}

/// What shows, on a terminal, the hosts a long fan-out waits for.
fn waiting(cli: &Cli) -> Option<std::sync::Arc<dyn crate::fleet::Watch>> {
    crate::console::Waiting::on_terminal(cli.quiet).map(|w| w as _)
}

/// Run `work` with the console of this run. With `json`, its words go to
/// stderr, and its result document is printed on stdout afterwards: for
/// deploys, promotions, rollbacks, freezes and unlocks the attempt's
/// history record, refused ones included; `null` only when there is none
/// (an error before any attempt, such as an unreadable configuration: the
/// error is on stderr, the exit status says which).
fn with_console(
    cli: &Cli,
    color: Color,
    json: bool,
    work: impl FnOnce(&Console) -> Result<ExitStatus, Fatal>,
) -> Result<ExitStatus, Fatal> {
    if !json {
        return work(&console(cli, color));
    }
    let console = Console::for_json(stderr_color(cli))
        .quiet(cli.quiet)
        .with_waiting(crate::console::Waiting::on_terminal(cli.quiet));
    let result = work(&console);
    let document = console.take_document().unwrap_or(serde_json::Value::Null);
    emit(|out| {
        serde_json::to_writer_pretty(&mut *out, &document)?;
        writeln!(out)
    })?;
    result
}

fn print_fatal(fatal: &Fatal, color: Color) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{}: {}", color.error_label(), fatal.message);
    for n in &fatal.notes {
        let _ = writeln!(err, "note: {n}");
    }
}

/// Print `warning: MESSAGE` on stderr, coloured as stderr allows.
fn warn(cli: &Cli, message: &str) {
    let _ = writeln!(
        io::stderr(),
        "{}: {message}",
        stderr_color(cli).warning_label()
    );
}

fn dispatch(cli: &Cli, color: Color) -> Result<ExitStatus, Fatal> {
    // `--json` may come before or after the command that prints JSON; the
    // status view's own options only go with it
    let takes_json = |c: &Command| {
        !matches!(
            c,
            Command::RefreshBadges(_)
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Init { .. }
        )
    };
    if let Some(c) = cli
        .command
        .as_ref()
        .filter(|c| !matches!(c, Command::Status(_)))
    {
        if cli.status.check || cli.status.filtered() || (cli.status.json && !takes_json(c)) {
            return Err(Fatal::usage(
                "`--check`, `--stage`, `--package` and `--host` before a command go with the status view, \
                 and `--json` with a command that prints JSON",
            )
            .note("e.g. `deployer --json`, `deployer status --check`, or after the command: `deployer history --stage prod`"));
        }
    }
    let with_json = |own: bool| own || cli.status.json;
    match &cli.command {
        None => status_view(cli, &cli.status, color),
        Some(Command::Status(args)) => status_view(cli, &args.merged(&cli.status), color),
        Some(Command::Deploy {
            package,
            stage,
            version,
            opts,
        }) => {
            let request = deploy::Request::Deploy {
                package: package.clone(),
                stage: stage.clone(),
                version: version.clone(),
            };
            with_console(cli, color, with_json(opts.json), |console| {
                deploy_or_promote(cli, &request, opts, console)
            })
        }
        Some(Command::Promote {
            package,
            stage,
            opts,
        }) => {
            let request = deploy::Request::Promote {
                package: package.clone(),
                stage: stage.clone(),
            };
            with_console(cli, color, with_json(opts.json), |console| {
                deploy_or_promote(cli, &request, opts, console)
            })
        }
        Some(Command::Freeze {
            stage,
            reason,
            json,
        }) => with_console(cli, color, with_json(*json), |console| {
            let config = load_config(cli)?;
            let fleet = stage_fleet(cli, &config, stage)?;
            freeze::apply(&config, console, fleet, stage, Some(reason))
        }),
        Some(Command::Unlock {
            stage,
            force,
            reason,
            json,
        }) => with_console(cli, color, with_json(*json), |console| {
            let config = load_config(cli)?;
            let fleet = stage_fleet(cli, &config, stage)?;
            unlock::apply(&config, console, fleet, stage, *force, reason)
        }),
        Some(Command::Unfreeze { stage, json }) => {
            with_console(cli, color, with_json(*json), |console| {
                let config = load_config(cli)?;
                let fleet = stage_fleet(cli, &config, stage)?;
                freeze::apply(&config, console, fleet, stage, None)
            })
        }
        Some(Command::Hosts { stage, json, check }) => {
            let config = load_config(cli)?;
            if let Some(stage) = stage {
                deploy::check_stage(&config, stage)?;
            }
            let all: Vec<Target> = targets(cli, &config)?
                .into_iter()
                .filter(|t| stage.as_ref().is_none_or(|s| &t.stage == s))
                .collect();
            let verdicts = if *check {
                hosts::check(&all, config.parallelism)
            } else {
                vec![None; all.len()]
            };
            if with_json(*json) {
                emit(|out| hosts::render_json(&all, &verdicts, out))?;
            } else {
                emit(|out| hosts::render_text(&all, &verdicts, out))?;
            }
            Ok(if verdicts.iter().flatten().any(Result::is_err) {
                ExitStatus::Unreachable
            } else {
                ExitStatus::Success
            })
        }
        Some(Command::RefreshBadges(args)) => {
            let config = load_config(cli)?;
            badges::check(&config, args)?;
            let console = console(cli, color);
            let fleet =
                Fleet::connect_watched(targets(cli, &config)?, config.parallelism, console.watch());
            badges::refresh(&config, &console, fleet, args)
        }
        Some(Command::History {
            package,
            stage,
            hosts,
            json,
        }) => show_history(
            cli,
            package.as_deref(),
            stage.as_deref(),
            hosts.as_deref(),
            with_json(*json),
        ),
        Some(Command::Check { stage, json: own }) => {
            run_check(cli, stage.as_deref(), with_json(*own))
        }
        Some(Command::Versions {
            package,
            stage,
            no_update,
            json,
        }) => show_versions(
            cli,
            package,
            stage.as_deref(),
            !*no_update,
            with_json(*json),
        ),
        Some(Command::Changes {
            package,
            stage,
            version,
            json,
        }) => show_changes(
            cli,
            &changes::Request {
                package,
                stage: stage.as_deref(),
                version: version.as_deref(),
            },
            with_json(*json),
        ),
        Some(Command::Completions { shell, dynamic }) => completions::completions(*shell, *dynamic),
        Some(Command::Man { output_dir }) => completions::man(output_dir.as_deref()),
        Some(Command::Init {
            from_ansible,
            stages,
            allow_executable_inventory,
            packages,
        }) => {
            if let Some(path) = &cli.config {
                return Err(Fatal::usage(format!(
                    "`--config {}` does not go with `init`, which writes `deployer.ini` in the \
                     current directory",
                    path.display()
                ))
                .note("run `deployer init` in the directory the file belongs in"));
            }
            let cwd = std::env::current_dir()
                .map_err(|e| Fatal::usage(format!("cannot read the current directory: {e}")))?;
            let request = init::Request {
                from_ansible: from_ansible.as_deref(),
                stages: stages.as_deref(),
                packages,
                allow_executable: *allow_executable_inventory,
            };
            init::run(&cwd, &request)
        }
    }
}

/// `deployer versions PKG [STAGE]`: status 3 when some host did not answer.
fn show_versions(
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
    let report = versions::gather(&config, &mut fleet, &stages, &package, update);
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

/// `deployer changes PKG [STAGE] [VERSION]`: status 3 when some host of
/// the stage did not answer (the review counts the others).
fn show_changes(
    cli: &Cli,
    request: &changes::Request<'_>,
    json: bool,
) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    let outcome = changes::gather(
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
        emit(|out| changes::render_json(&outcome, out))?;
    } else {
        emit(|out| changes::render_text(&outcome, out))?;
    }
    Ok(if outcome.unreachable.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Unreachable
    })
}

/// `deployer check [STAGE]`: the configuration loads (or this is an error,
/// status 2), then every host of STAGE (or of every stage) is checked;
/// status 3 when some host failed a check.
fn run_check(cli: &Cli, stage: Option<&str>, json: bool) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    if let Some(stage) = stage {
        deploy::check_stage(&config, stage)?;
    }
    let mine = targets(cli, &config)?
        .into_iter()
        .filter(|t| stage.is_none_or(|s| t.stage == s))
        .collect();
    let mut fleet = Fleet::connect_watched(mine, config.parallelism, waiting(cli));
    let checks = check::run(&config, &mut fleet);
    let failed = checks.iter().any(check::HostCheck::failed);
    // --quiet: the report only when some check failed
    if cli.quiet && !failed {
        return Ok(ExitStatus::Success);
    }
    if json {
        emit(|out| check::render_json(&config.path, &checks, out))?;
    } else {
        emit(|out| check::render_text(&config.path, &checks, out))?;
    }
    Ok(if failed {
        ExitStatus::Unreachable
    } else {
        ExitStatus::Success
    })
}

fn deploy_or_promote(
    cli: &Cli,
    request: &deploy::Request,
    args: &DeployArgs,
    console: &Console,
) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    let opts = deploy::Options {
        dry_run: args.dry_run,
        yes: args.yes,
        force: args.force,
        override_freeze: args.override_freeze,
        reason: args.reason.clone(),
        batch: args.batch.map(usize::from),
        rollback_on_failure: args.rollback_on_failure,
        allow_dependency_changes: args.allow_dependency_changes,
        allow_held: args.allow_held,
        follow_logs: args.follow_logs,
        verbose: cli.verbose > 0,
    };
    // everything typed is checked before any host is contacted
    let checked = deploy::validate(&config, request, &opts).inspect_err(|fatal| {
        if !opts.dry_run {
            deploy::record_rejected(&config, console, request, fatal);
        }
    })?;
    // only the stages the request needs are connected to
    let needed = deploy::request::stages_needed(&checked);
    let names: Option<Vec<&str>> = needed
        .as_ref()
        .map(|s| s.iter().map(|&i| config.stages[i].name.as_str()).collect());
    let targets = targets(cli, &config)?
        .into_iter()
        .filter(|t| names.as_ref().is_none_or(|n| n.contains(&t.stage.as_str())))
        .collect();
    let interrupt = if opts.dry_run {
        Interrupt::new()
    } else {
        Interrupt::install().map_err(|e| {
            Fatal::usage(format!("cannot catch signals: {e}")).status(ExitStatus::Internal)
        })?
    };
    let cx = deploy::Context {
        config: &config,
        console,
        opts: &opts,
        interrupt: &interrupt,
    };
    let fleet = Fleet::connect_watched(targets, config.parallelism, console.watch());
    deploy::run(&cx, fleet, &checked)
}

/// Connections to the hosts of one stage only.
fn stage_fleet(cli: &Cli, config: &Config, stage: &str) -> Result<Fleet, Fatal> {
    deploy::check_stage(config, stage)?;
    let all = targets(cli, config)?;
    let mine = all.into_iter().filter(|t| t.stage == stage).collect();
    Ok(Fleet::connect(mine, config.parallelism))
}

/// `deployer history`: the local log, merged with the logs kept on the
/// hosts of `hosts_of` when given. Skipped lines and hosts that could not
/// be read are warnings; the latter also make the exit status 3.
fn show_history(
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
    let mut status = ExitStatus::Success;
    let mut fleet = stage_fleet(cli, &config, name)?;
    let command = history::host_read_command();
    let mut hosts = Vec::new();
    let answers = fleet.run_on_stage(name, &command, config.ssh.command_timeout);
    for (host, answer) in answers {
        match answer {
            Ok(out) if out.success() => {
                let (records, warnings) =
                    history::parse_host_log(&host, &out.stdout, out.stdout_dropped);
                for w in &warnings {
                    warn(cli, w);
                }
                hosts.push(history::HostLog {
                    host,
                    stage: name.to_string(),
                    records,
                });
            }
            Ok(out) => {
                // the host's words: one line, escaped, clipped
                warn(
                    cli,
                    &format!(
                        "host `{host}`: cannot read `{}`: {}",
                        history::HOST_LOG_FILE,
                        crate::transport::failure(&out)
                    ),
                );
                status = ExitStatus::Unreachable;
            }
            Err(e) => {
                warn(cli, &format!("host `{host}`: cannot read its history: {e}"));
                status = ExitStatus::Unreachable;
            }
        }
    }
    let (records, disagreements) = history::merge_sourced(log.records, hosts);
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

/// The operator's home directory, and the login name OpenSSH would use by
/// default: the account of the real uid, not `$USER`.
fn local_context(cli: &Cli) -> LocalContext {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    let user = operator::login_name();
    LocalContext {
        resolve: Some(ResolveContext::of_this_process(&home, &user)),
        home,
        user,
        accept_new: cli.accept_new_host_keys,
    }
}

/// Find and read `deployer.ini`, printing its warnings.
pub(crate) fn load_config(cli: &Cli) -> Result<Config, Fatal> {
    let cwd = std::env::current_dir()
        .map_err(|e| Fatal::usage(format!("cannot read the current directory: {e}")))?;
    let path = config::locate(
        cli.config.as_deref(),
        std::env::var_os("DEPLOYER_CONFIG"),
        &cwd,
    )?;
    let config = config::load(&path)?;
    for w in &config.warnings {
        warn(cli, w);
    }
    Ok(config)
}

/// Every host of every stage, resolved through `~/.ssh/config`.
pub(crate) fn targets(cli: &Cli, config: &Config) -> Result<Vec<Target>, Fatal> {
    let local = local_context(cli);
    // `~/` in deployer.ini was expanded when it was loaded.
    let path = config
        .ssh
        .ssh_config
        .clone()
        .unwrap_or_else(|| local.home.join(".ssh/config"));
    // The user's file, then the system's, as ssh reads them.
    // As ssh, the permissions of `~/.ssh/config` are checked, not those of
    // a file named explicitly (`ssh -F`); included files always are.
    let loaded = match config.ssh.ssh_config {
        None => SshConfigFile::load(&path, &local.home),
        Some(_) => SshConfigFile::load_named(&path, &local.home),
    };
    let user_file = match loaded {
        Ok(f) => Ok(f),
        Err(e) if e.is_not_found() && config.ssh.ssh_config.is_none() => {
            Ok(SshConfigFile::default())
        }
        Err(e) => Err(e),
    };
    let system = std::path::Path::new(crate::ssh_config::SYSTEM_CONFIG);
    // As `ssh -F`, a config named in deployer.ini replaces both.
    let both = user_file.and_then(|f| match config.ssh.ssh_config {
        None => f.with_system(system, &local.home),
        Some(_) => Ok(f),
    });
    let ssh_config = match both {
        Ok(f) => f,
        Err(e) => {
            return Err(
                Fatal::usage(format!("cannot use the ssh client configuration: {e}"))
                    .note("fix the file, or point `ssh_config` in deployer.ini at another one"),
            )
        }
    };
    for w in ssh_config.warnings() {
        warn(cli, &w.to_string());
    }
    transport::resolve_targets(config, &ssh_config, &local).map_err(|e| {
        Fatal::usage(format!("cannot reach a host as ssh would: {e}")).note(
            "deployer follows ~/.ssh/config and /etc/ssh/ssh_config as `ssh -G` does, and \
             refuses a host rather than reach it another way; `deployer hosts` shows what \
             it resolves for each host",
        )
    })
}

/// Write to stdout; a closed pipe (`deployer | head`) is not an error.
pub(crate) fn emit(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), Fatal> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            Err(Fatal::usage(format!("cannot write the output: {e}")).status(ExitStatus::Internal))
        }
    }
}

fn status_view(cli: &Cli, args: &StatusArgs, color: Color) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    // the filters are checked before any host is contacted, and only the
    // hosts they keep are
    let only = selection::Selection::new(&config, &args.stages, &args.packages, &args.hosts)?;
    let mine = targets(cli, &config)?
        .into_iter()
        .filter(|t| only.keeps(t))
        .collect();
    let mut fleet = Fleet::unopened(mine, config.parallelism, waiting(cli));
    let reports = fleet.survey(&only.packages, config.ssh.command_timeout);
    let m = matrix::build(&only.packages, &only.columns, &reports);
    let s = m.summary();
    let status = if s.answered < s.hosts {
        ExitStatus::Unreachable
    } else if args.check && (s.regressions > 0 || s.drift > 0 || s.broken > 0) {
        ExitStatus::Attention
    } else if args.check && s.pending > 0 {
        ExitStatus::Pending
    } else {
        ExitStatus::Success
    };
    // --quiet: the view only when it says something is wrong
    if cli.quiet && status == ExitStatus::Success {
        return Ok(status);
    }
    if args.json {
        emit(|out| render::json(&m, &reports, out))?;
    } else {
        emit(|out| render::text(&m, color, out))?;
    }
    Ok(status)
}
