//! Glue between the command line and the modules: [`run`] reads the
//! command and hands it to the module under `app/` that does it, and every
//! error ends up here, printed once as `error:` and `note:` lines.
//!
//! This file only dispatches. What a run shows (colours, the console,
//! warnings, stdout) is `output`'s; loading the configuration and
//! resolving the hosts is `setup`'s; each command's body is in its own
//! module (`deploy`, `history`, `status`, `check`...).

use std::io::{self, IsTerminal};

mod approve;
mod badges;
mod changes;
mod check;
pub mod completions;
mod deploy;
mod freeze;
mod history;
mod hosts;
mod init;
mod output;
mod selection;
mod setup;
mod status;
mod timeline;
mod unlock;
mod versions;

use crate::cli::{Cli, Command};
use crate::error::{ExitStatus, Fatal};
use crate::render::Color;
use crate::transport;

use output::{decide_color, print_fatal, start_logs, stderr_color, with_console};

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

/// Refuse the status view's options given to another command, then hand
/// the command to its module.
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
        if cli.status.check
            || cli.status.format.is_some()
            || cli.status.filtered()
            || (cli.status.json && !takes_json(c))
        {
            return Err(Fatal::usage(
                "`--check`, `--format`, `--stage`, `--package` and `--host` before a command go with the status view, \
                 and `--json` with a command that prints JSON",
            )
            .note("e.g. `deployer --json`, `deployer status --check`, or after the command: `deployer history --stage prod`"));
        }
    }
    let with_json = |own: bool| own || cli.status.json;
    // deploy, rollback and promote: one pipeline
    let deploy = |request: &crate::deploy::Request, opts: &crate::cli::DeployArgs| {
        with_console(cli, color, with_json(opts.json), |console| {
            deploy::command(cli, request, opts, console)
        })
    };
    match &cli.command {
        None => status::command(cli, &cli.status, color),
        Some(Command::Status(args)) => status::command(cli, &args.merged(&cli.status), color),
        Some(Command::Deploy {
            package,
            stage,
            version,
            opts,
        }) => {
            let request = crate::deploy::Request::Deploy {
                package: package.clone().unwrap_or_default(),
                stage: stage.clone(),
                version: version.clone(),
            };
            deploy(&request, opts)
        }
        Some(Command::Rollback {
            package,
            stage,
            version,
            opts,
        }) => {
            let request = crate::deploy::Request::Rollback {
                package: package.clone().unwrap_or_default(),
                stage: stage.clone(),
                version: version.clone(),
            };
            deploy(&request, opts)
        }
        Some(Command::Promote {
            package,
            stage,
            opts,
        }) => {
            let request = crate::deploy::Request::Promote {
                package: package.clone().unwrap_or_default(),
                stage: stage.clone(),
            };
            deploy(&request, opts)
        }
        Some(Command::Approve {
            file,
            identity,
            yes,
        }) => with_console(cli, color, false, |console| {
            approve::command(console, file, identity.as_deref(), *yes)
        }),
        Some(Command::Freeze {
            stage,
            reason,
            json,
        }) => with_console(cli, color, with_json(*json), |console| {
            freeze::command(cli, console, stage, freeze::Change::Freeze(reason))
        }),
        Some(Command::Unlock {
            stage,
            force,
            reason,
            json,
        }) => with_console(cli, color, with_json(*json), |console| {
            unlock::command(cli, console, stage, *force, reason)
        }),
        Some(Command::Unfreeze {
            stage,
            reason,
            json,
        }) => with_console(cli, color, with_json(*json), |console| {
            freeze::command(
                cli,
                console,
                stage,
                freeze::Change::Unfreeze(reason.as_deref()),
            )
        }),
        Some(Command::Hosts { stage, json, check }) => {
            hosts::command(cli, stage.as_deref(), with_json(*json), *check)
        }
        Some(Command::RefreshBadges(args)) => badges::command(cli, color, args),
        Some(Command::History {
            package,
            stage,
            hosts,
            since,
            limit,
            json,
        }) => history::command(
            cli,
            &history::Request {
                package: package.as_deref(),
                stage: stage.as_deref(),
                hosts_of: hosts.as_deref(),
                since: since.as_deref(),
                limit: *limit,
            },
            with_json(*json),
        ),
        Some(Command::Timeline {
            stage,
            since,
            host,
            package,
            json,
        }) => timeline::command(
            cli,
            &timeline::Request {
                stage: stage.as_deref(),
                since,
                hosts: host,
                packages: package,
            },
            with_json(*json),
        ),
        Some(Command::Check { stage, json: own }) => {
            check::command(cli, stage.as_deref(), with_json(*own))
        }
        Some(Command::Versions {
            package,
            stage,
            no_update,
            json,
        }) => versions::command(
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
        }) => changes::command(
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
        }) => init::command(
            cli,
            &init::Request {
                from_ansible: from_ansible.as_deref(),
                stages: stages.as_deref(),
                packages,
                allow_executable: *allow_executable_inventory,
            },
        ),
    }
}
