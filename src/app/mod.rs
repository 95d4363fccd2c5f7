//! Glue between the command line and the modules: load the configuration,
//! reach the hosts, print, and choose the exit status. Errors end up here
//! and are printed once, as `error:` and `note:` lines.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

mod badges;
pub mod completions;
mod freeze;
mod hosts;
mod init;
mod unlock;

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
    match dispatch(&cli, color) {
        Ok(status) => status,
        Err(fatal) => {
            print_fatal(&fatal, decide_color(cli.color, io::stderr().is_terminal()));
            fatal.status
        }
    }
}

/// Colour on or off: `--color`, then `NO_COLOR`, then whether the output
/// is a terminal.
pub fn decide_color(choice: ColorChoice, is_terminal: bool) -> Color {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match choice {
        ColorChoice::Always => Color::Always,
        ColorChoice::Never => Color::Never,
        ColorChoice::Auto if is_terminal && !no_color => Color::Always,
        ColorChoice::Auto => Color::Never,
    }
}

fn print_fatal(fatal: &Fatal, color: Color) {
    let mut err = io::stderr().lock();
    let label = if color == Color::Always {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    let _ = writeln!(err, "{label}: {}", fatal.message);
    for n in &fatal.notes {
        let _ = writeln!(err, "note: {n}");
    }
}

fn warn(message: &str) {
    let _ = writeln!(io::stderr(), "warning: {message}");
}

fn dispatch(cli: &Cli, color: Color) -> Result<ExitStatus, Fatal> {
    if cli
        .command
        .as_ref()
        .is_some_and(|c| !matches!(c, Command::Status(_)))
        && (cli.status.json || cli.status.check)
    {
        return Err(Fatal::usage(
            "`--json` and `--check` go with the status view, not with a command",
        )
        .note("e.g. `deployer --json` or `deployer status --check`"));
    }
    match &cli.command {
        None => status_view(cli, &cli.status, color),
        Some(Command::Status(args)) => status_view(cli, args, color),
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
            deploy_or_promote(cli, &request, opts, color)
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
            deploy_or_promote(cli, &request, opts, color)
        }
        Some(Command::Freeze { stage, reason }) => {
            let config = load_config(cli)?;
            let fleet = stage_fleet(cli, &config, stage)?;
            freeze::apply(&config, &Console::stdio(color), fleet, stage, Some(reason))
        }
        Some(Command::Unlock {
            stage,
            force,
            reason,
        }) => {
            let config = load_config(cli)?;
            let fleet = stage_fleet(cli, &config, stage)?;
            unlock::apply(
                &config,
                &Console::stdio(color),
                fleet,
                stage,
                *force,
                reason,
            )
        }
        Some(Command::Unfreeze { stage }) => {
            let config = load_config(cli)?;
            let fleet = stage_fleet(cli, &config, stage)?;
            freeze::apply(&config, &Console::stdio(color), fleet, stage, None)
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
            if *json {
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
            let fleet = Fleet::connect(targets(cli, &config)?, config.parallelism);
            badges::refresh(&config, &Console::stdio(color), fleet, args)
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
            *json,
        ),
        Some(Command::Completions { shell, dynamic }) => completions::completions(*shell, *dynamic),
        Some(Command::Man { output_dir }) => completions::man(output_dir.as_deref()),
        Some(Command::Init {
            from_ansible,
            stages,
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
            };
            init::run(&cwd, &request)
        }
    }
}

fn deploy_or_promote(
    cli: &Cli,
    request: &deploy::Request,
    args: &DeployArgs,
    color: Color,
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
        verbose: args.verbose,
    };
    // everything typed is checked before any host is contacted
    let checked = deploy::validate(&config, request, &opts).inspect_err(|fatal| {
        if !opts.dry_run {
            deploy::record_rejected(&config, request, fatal);
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
    let console = Console::stdio(color);
    let cx = deploy::Context {
        config: &config,
        console: &console,
        opts: &opts,
        interrupt: &interrupt,
    };
    let fleet = Fleet::connect(targets, config.parallelism);
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
    let log = history::read(&config.history_file)
        .map_err(|e| Fatal::usage(e.to_string()).note(e.note()))?;
    for w in &log.warnings {
        warn(w);
    }
    let mut status = ExitStatus::Success;
    let records = match hosts_of {
        None => log.records,
        Some(name) => {
            let mut fleet = stage_fleet(cli, &config, name)?;
            let command = history::host_read_command();
            let mut lists = vec![log.records];
            let answers = fleet.run_on_stage(name, &command, config.ssh.command_timeout);
            for (host, answer) in answers {
                match answer {
                    Ok(out) if out.success() => {
                        let (records, warnings) =
                            history::parse_host_log(&host, &out.stdout, out.stdout_dropped);
                        for w in &warnings {
                            warn(w);
                        }
                        lists.push(records);
                    }
                    Ok(out) => {
                        // the host's words: one line, escaped, clipped
                        let why = crate::text::clip(
                            &crate::text::one_line(out.stderr.trim()),
                            crate::error::REMOTE_TEXT_MAX,
                        );
                        warn(&format!(
                            "host `{host}`: cannot read `{}` (exit status {}){}{why}",
                            history::HOST_LOG_FILE,
                            out.status,
                            if why.is_empty() { "" } else { ": " },
                        ));
                        status = ExitStatus::Unreachable;
                    }
                    Err(e) => {
                        warn(&format!("host `{host}`: cannot read its history: {e}"));
                        status = ExitStatus::Unreachable;
                    }
                }
            }
            history::merge(lists)
        }
    };
    let selected = history::select(&records, package, stage);
    if json {
        emit(|out| history::render_json(&selected, out))?;
    } else {
        emit(|out| history::render_text(&selected, out))?;
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
        warn(w);
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
        warn(&w.to_string());
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
    let mut fleet = Fleet::connect(targets(cli, &config)?, config.parallelism);
    let reports = fleet.status(&config.packages, config.ssh.command_timeout);
    let m = matrix::for_config(&config, None, &reports);
    if args.json {
        emit(|out| render::json(&m, &reports, out))?;
    } else {
        emit(|out| render::text(&m, color, out))?;
    }
    let s = m.summary();
    Ok(if s.answered < s.hosts {
        ExitStatus::Unreachable
    } else if args.check && (s.regressions > 0 || s.drift > 0 || s.broken > 0) {
        ExitStatus::Attention
    } else if args.check && s.pending > 0 {
        ExitStatus::Pending
    } else {
        ExitStatus::Success
    })
}
