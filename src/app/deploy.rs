//! `deployer deploy`, `rollback` and `promote`: the options read, the request checked
//! before any host is contacted (a refused one recorded), then the stages
//! it needs connected to and the attempt handed to [`crate::deploy`].

use crate::cli::{Cli, DeployArgs};
use crate::console::Console;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::interrupt::Interrupt;

use super::setup::{load_config, targets};

pub(super) fn command(
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
        batch: args.batch,
        rollback_on_failure: args.rollback_on_failure,
        allow_dependency_changes: args.allow_dependency_changes,
        allow_held: args.allow_held,
        follow_logs: args.follow_logs,
        skip_unreachable: args.skip_unreachable,
        exclude: args.exclude.clone(),
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
