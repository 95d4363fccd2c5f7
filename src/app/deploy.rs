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
        plan_out: args.plan_out.clone(),
        expires: args.expires,
        plan: None,
    };
    // `--plan FILE`: the request is the plan's
    let (request, opts) = match &args.plan {
        None => (request.clone(), opts),
        Some(file) => {
            let loaded = crate::approval::load(file).map_err(|e| {
                Fatal::usage(e).note(
                    "a plan is written by `deployer deploy PKG STAGE --dry-run --plan-out FILE`",
                )
            })?;
            let request = plan_request(request, &loaded.plan)?;
            let opts = deploy::Options {
                plan: Some(std::sync::Arc::new(loaded)),
                ..opts
            };
            (request, opts)
        }
    };
    let request = &request;
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

/// The request a plan file stands for, checked against what was typed
/// beside `--plan`: the same command, and the package, stage and version
/// when typed.
fn plan_request(
    typed: &deploy::Request,
    plan: &crate::approval::PlanFile,
) -> Result<deploy::Request, Fatal> {
    let (action, package, stage, version) = typed.parts();
    if action != plan.action {
        return Err(Fatal::usage(format!(
            "this plan is a `{}`, not a `{action}`",
            plan.action
        ))
        .note(format!("run `deployer {} --plan FILE`", plan.action)));
    }
    for (what, typed, planned) in [
        (
            "package",
            Some(package).filter(|p| !p.is_empty()),
            plan.package.as_str(),
        ),
        ("stage", stage, plan.stage.as_str()),
        ("version", version, plan.version.as_str()),
    ] {
        if let Some(t) = typed.filter(|t| *t != planned) {
            return Err(Fatal::usage(format!(
                "the {what} typed, `{}`, is not the plan's, `{planned}`",
                crate::text::clipped_line(t, 64)
            ))
            .note("with `--plan`, leave out the package, stage and version: the plan names them"));
        }
    }
    let package = plan.package.clone();
    let stage = Some(plan.stage.clone());
    Ok(match typed {
        deploy::Request::Deploy { .. } => deploy::Request::Deploy {
            package,
            stage,
            version: Some(plan.version.clone()),
        },
        deploy::Request::Rollback { .. } => deploy::Request::Rollback {
            package,
            stage,
            version: Some(plan.version.clone()),
        },
        deploy::Request::Promote { .. } => deploy::Request::Promote { package, stage },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(action: &str) -> crate::approval::PlanFile {
        serde_json::from_value(serde_json::json!({
            "format": 1, "action": action, "package": "foo", "stage": "prod",
            "version": "1.1-1", "hosts": [],
            "configuration": {"path": "/d.ini", "sha256": "00"},
            "made_by": "alice", "made_by_display": "alice@laptop",
            "made_at": "2026-12-07T10:00:00Z", "expires_at": "2026-12-08T10:00:00Z",
            "plan": {}
        }))
        .unwrap()
    }

    #[test]
    fn a_plan_names_the_request_and_what_is_typed_must_agree() {
        let typed = deploy::Request::Deploy {
            package: String::new(),
            stage: None,
            version: None,
        };
        let request = plan_request(&typed, &plan("deploy")).unwrap();
        assert_eq!(
            request.parts(),
            ("deploy", "foo", Some("prod"), Some("1.1-1"))
        );
        let promote = deploy::Request::Promote {
            package: "foo".into(),
            stage: None,
        };
        let request = plan_request(&promote, &plan("promote")).unwrap();
        assert_eq!(request.parts(), ("promote", "foo", Some("prod"), None));
        // another command, another package
        let e = plan_request(&typed, &plan("promote")).unwrap_err();
        assert!(e.message.contains("this plan is a `promote`"), "{e:?}");
        let other = deploy::Request::Deploy {
            package: "bar".into(),
            stage: None,
            version: None,
        };
        let e = plan_request(&other, &plan("deploy")).unwrap_err();
        assert!(e.message.contains("the package typed, `bar`"), "{e:?}");
    }
}
