//! The preflight phase: everything checked before the first host is
//! changed, in order. Reachability and freezes (on the first read, and
//! again under the lock), sudo, the deploy lock, fresh apt lists, the
//! states read again once nobody else can change them, what apt can
//! install, and the plan. Ends with the confirmation of critical stages.
//!
//! Any doubt refuses, with the reason, and is recorded; nothing here
//! changes a package.

use crate::apt;
use crate::command::RemoteCommand;
use crate::error::{Fatal, HostError};
use crate::fleet::{self, Fleet};
use crate::history;
use crate::lock;
use crate::plan::{self, HostFacts, Plan, Refusal};
use crate::status::PackageState;
use crate::transport;

use super::request::Target;
use super::{read_facts, Attempt, Context, Facts};

/// A decided deploy, ready to run.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The command each step of the plan runs, in step order.
    pub commands: Vec<RemoteCommand>,
    /// The stage's position in `stages`.
    pub stage: usize,
}

/// The last lines of `text`, marked off and named after `host`.
pub fn host_block(host: &str, text: &str) -> String {
    let body: Vec<String> = text
        .trim_end()
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|l| format!("    | {l}"))
        .collect();
    format!("{host} said:\n{}", body.join("\n"))
}

/// Run every check, take the lock, and make the plan.
pub fn prepare(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &mut Attempt,
    target: &Target,
    before: Facts,
) -> Result<Prepared, Fatal> {
    let stage = &cx.config.stages[target.stage].name;
    // a forced freeze is announced once, on the check the plan is made from
    ready(cx, attempt, &before, target.stage, cx.opts.dry_run)?;
    sudo_works(cx, fleet, attempt, stage)?;
    let facts = if cx.opts.dry_run {
        before
    } else {
        take_lock(cx, fleet, attempt, stage)?;
        update_lists(cx, fleet, attempt, stage)?;
        // Read again now that the lock is held: nobody else can change these
        // hosts any more, and a freeze set meanwhile is seen.
        let stages: Vec<usize> = (target.stage.saturating_sub(1)..=target.stage).collect();
        let fresh = read_facts(cx, fleet, Some(&stages));
        ready(cx, attempt, &fresh, target.stage, true)?;
        fresh
    };
    let plan = make_plan(cx, fleet, attempt, target, &facts)?;
    let lock_secs = cx.config.ssh.lock_timeout.as_secs().max(1);
    let commands = plan
        .steps
        .iter()
        .map(|s| apt::install(&plan.package, &plan.version, s.downgrade, lock_secs, false))
        .collect();
    Ok(Prepared {
        plan,
        commands,
        stage: target.stage,
    })
}

/// The stage can be deployed to: every host answered and none carries a
/// freeze record, whatever stage it names (or `--override-freeze`
/// overrides it). `announce` prints the warning for an overridden freeze.
fn ready(
    cx: &Context<'_>,
    attempt: &Attempt,
    facts: &Facts,
    stage_index: usize,
    announce: bool,
) -> Result<(), Fatal> {
    let stage = &cx.config.stages[stage_index];
    let down: Vec<String> = facts
        .reports
        .iter()
        .filter(|r| r.stage == stage.name)
        .filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.host)))
        .collect();
    if !down.is_empty() {
        return Err(attempt.refuse(
            format!(
                "{} host(s) of `{}` cannot be reached; refusing a partial deploy",
                down.len(),
                stage.name
            ),
            down,
        ));
    }
    let frozen = freezes(&facts.reports, &stage.name);
    if frozen.is_empty() {
        return Ok(());
    }
    if !cx.opts.override_freeze {
        return Err(attempt.refuse(
            format!("stage `{}` is frozen", stage.name),
            frozen
                .into_iter()
                .chain([format!(
                    "`deployer unfreeze {}` lifts it; `--override-freeze --reason \"...\"` overrides it once, and is recorded",
                    stage.name
                )])
                .collect(),
        ));
    }
    if announce {
        cx.console.say(&format!(
            "Warning: deploying into frozen stage `{}` (--override-freeze):",
            stage.name
        ));
        for f in frozen {
            cx.console.say(&format!("  {f}"));
        }
    }
    Ok(())
}

/// Every freeze record on the hosts of `stage`, whatever stage it was set
/// under, as `host: frozen by ...` lines.
pub fn freezes(reports: &[crate::matrix::HostReport], stage: &str) -> Vec<String> {
    reports
        .iter()
        .filter(|r| r.stage == stage)
        .filter_map(|r| r.result.as_ref().ok().map(|s| (&r.host, s)))
        .flat_map(|(host, s)| {
            s.freezes.iter().map(move |f| {
                let under = if f.applies_to(stage) {
                    String::new()
                } else {
                    format!(" (set under stage `{}`)", f.stage)
                };
                format!("{host}: {}{under}", f.describe())
            })
        })
        .collect()
}

/// `sudo -n true` works on every host of the stage.
fn sudo_works(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
) -> Result<(), Fatal> {
    let sudo = RemoteCommand::new("true").sudo();
    let timeout = cx.config.ssh.command_timeout;
    let answers = fleet.on_stage(stage, |m| {
        let user = m.login_user();
        (m.run(&sudo, timeout), user)
    });
    let problems = fleet::problems(&answers, |(r, user)| match r {
        Ok(out) if out.success() => None,
        Ok(out) if transport::sudo_wants_password(&out.stderr) => {
            Some(HostError::SudoPassword { user: user.clone() }.to_string())
        }
        Ok(out) => Some(format!("`sudo -n true` failed: {}", out.stderr.trim())),
        Err(e) => Some(e.to_string()),
    });
    if problems.is_empty() {
        return Ok(());
    }
    Err(attempt.refuse(
        format!(
            "sudo does not work without a password on {} host(s) of `{stage}`",
            problems.len()
        ),
        problems,
    ))
}

/// Take the deploy lock on every host of the stage, or refuse (releasing
/// what was taken).
fn take_lock(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
) -> Result<(), Fatal> {
    let (user, machine) = history::local_identity();
    let holder = format!(
        "{user}@{machine} since {} (pid {})",
        history::now_rfc3339(),
        std::process::id()
    );
    let command = lock::command(&holder);
    let timeout = cx.config.ssh.command_timeout;
    let answers = fleet.on_stage(stage, |m| m.hold(&command, timeout));
    let problems = fleet::problems(&answers, |a| match a.as_ref().map(|l| lock::parse(l)) {
        Ok(lock::Answer::Locked) => None,
        Ok(lock::Answer::Busy(who)) => Some(format!("another deploy holds the lock: {who}")),
        Ok(lock::Answer::Failed(what)) => Some(format!("could not take the lock ({what})")),
        Err(e) => Some(e.to_string()),
    });
    if problems.is_empty() {
        return Ok(());
    }
    fleet.release(stage);
    Err(attempt.refuse(
        format!("`{stage}` is being deployed to by someone else"),
        problems,
    ))
}

/// `apt-get update` on every host of the stage, as an operator would.
fn update_lists(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
) -> Result<(), Fatal> {
    let hosts = fleet.hosts_of(stage).len();
    cx.console.say(&format!(
        "Updating apt lists on {hosts} host(s) of `{stage}`..."
    ));
    let answers = fleet.run_on_stage(stage, &apt::update(), cx.config.ssh.deploy_timeout);
    let failed: Vec<String> = answers
        .iter()
        .filter_map(|(host, r)| match r {
            Ok(out) if out.success() => None,
            Ok(out) => Some(host_block(host, &format!("{}{}", out.stdout, out.stderr))),
            Err(e) => Some(format!("{host}: {e}")),
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(attempt.fail_unchanged(
        format!(
            "`apt-get update` failed on {} host(s) of `{stage}`",
            failed.len()
        ),
        failed,
    ))
}

/// Ask apt what each host can install, and decide the plan.
fn make_plan(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &mut Attempt,
    target: &Target,
    facts: &Facts,
) -> Result<Plan, Fatal> {
    let config = cx.config;
    let stage = &config.stages[target.stage];
    let package = &attempt.package.clone();
    let answers = fleet.run_on_stage(
        &stage.name,
        &apt::policy(package),
        config.ssh.command_timeout,
    );
    let mut hosts = Vec::new();
    for (host, r) in answers {
        let state = facts
            .reports
            .iter()
            .find(|r| r.host == host && r.stage == stage.name)
            .and_then(|r| r.result.as_ref().ok())
            .map(|s| s.packages[package].clone())
            .unwrap_or(PackageState::NotInstalled);
        let policy = r
            .map_err(|e| e.to_string())
            .and_then(|out| apt::parse_policy(package, &out.stdout))
            .map_err(|e| {
                attempt.refuse(
                    format!("cannot read what apt can install on `{host}`"),
                    vec![e],
                )
            })?;
        hosts.push(HostFacts {
            host,
            state,
            policy,
        });
    }
    let previous = (target.stage > 0).then(|| {
        let prev = &config.stages[target.stage - 1].name;
        let states = facts
            .reports
            .iter()
            .filter(|r| &r.stage == prev)
            .map(|r| {
                (
                    r.host.clone(),
                    r.result.as_ref().ok().map(|s| s.packages[package].clone()),
                )
            })
            .collect();
        (prev.clone(), states)
    });
    let input = plan::Input {
        package: package.clone(),
        stage: stage.name.clone(),
        critical: stage.critical,
        previous,
        hosts,
        wanted: target.wanted.clone(),
        force: cx.opts.force,
        batch_size: cx.opts.batch.unwrap_or(config.batch_size),
    };
    match plan::make(&input) {
        Ok(p) => {
            attempt.aim(&p.version);
            Ok(p)
        }
        Err(refusal) => {
            let (message, notes) = refusal.explain(package, &stage.name);
            if let Refusal::Unavailable { version, .. } | Refusal::OrderGuard { version, .. } =
                &refusal
            {
                attempt.aim(version);
            }
            Err(attempt.refuse(message, notes))
        }
    }
}

/// Print the plan with each host's command and what `apt-get -s` says it
/// would do on the current lists. Changes nothing.
pub fn show_dry_run(cx: &Context<'_>, fleet: &mut Fleet, prepared: &Prepared) {
    let plan = &prepared.plan;
    let lock_secs = cx.config.ssh.lock_timeout.as_secs().max(1);
    let hosts: Vec<&str> = plan.steps.iter().map(|s| s.host.as_str()).collect();
    let timeout = cx.config.ssh.command_timeout;
    let sims = fleet.on_hosts(&plan.stage, &hosts, |m| {
        let step = plan
            .steps
            .iter()
            .find(|s| s.host == m.host())
            .expect("a planned host");
        let sim = apt::install(
            &plan.package,
            &plan.version,
            step.downgrade,
            lock_secs,
            true,
        );
        match m.run(&sim, timeout) {
            Ok(out) if out.success() => apt::simulation_summary(&out.stdout),
            Ok(out) => vec![format!("apt-get -s failed: {}", out.stderr.trim())],
            Err(e) => vec![format!("apt-get -s failed: {e}")],
        }
    });
    let details: Vec<(String, Vec<String>)> = prepared
        .commands
        .iter()
        .zip(sims)
        .map(|(c, (_, lines))| (c.to_string(), lines))
        .collect();
    cx.console.say(&plan.describe(&details));
    cx.console
        .say("Dry run: nothing was changed on any host (apt lists included).");
}

/// A critical stage shows the plan and wants `yes` typed (or `--yes`).
pub fn confirm(cx: &Context<'_>, attempt: &Attempt, prepared: &Prepared) -> Result<(), Fatal> {
    let plan = &prepared.plan;
    if !plan.critical || cx.opts.yes {
        return Ok(());
    }
    let details: Vec<(String, Vec<String>)> = prepared
        .commands
        .iter()
        .map(|c| (c.to_string(), Vec::new()))
        .collect();
    cx.console.say(&plan.describe(&details));
    let question = format!(
        "Deploy `{}` {} to critical stage `{}`? Type `yes` to go on: ",
        plan.package, plan.version, plan.stage
    );
    match cx.console.ask(&question) {
        None => Err(attempt.refuse(
            format!(
                "`{}` is a critical stage and there is no terminal to confirm on",
                plan.stage
            ),
            vec!["pass `--yes` to deploy without confirmation (e.g. from a script)".to_string()],
        )),
        Some(answer) if answer.trim() == "yes" => Ok(()),
        Some(_) => Err(attempt.refuse("not confirmed".to_string(), Vec::new())),
    }
}
