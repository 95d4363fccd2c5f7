//! Deploys, rollbacks and promotions, carried out through the fleet with
//! every safety rail checked before the first host is touched.
//!
//! [`run`] reads as the list of phases, each in its own module:
//! - [`request`]: what was typed, validated before any connection, then
//!   turned into a target stage and version (a rollback's from the stage's
//!   history, [`previous`]);
//! - [`preflight`]: reachability, freezes, alerts ([`alert_hold`]), deploy
//!   windows ([`window_hold`]), sudo, the deploy lock, fresh apt
//!   lists, the states read again under the lock, dpkg idle, what apt can
//!   install, and the plan (`plan` decides; preflight gathers the facts);
//! - [`rollout`]: the batches, each host's [`install`] (first the `.deb`
//!   it runs kept in its cache, [`keep`]; then the service's [`restart`],
//!   its verification and health check), each batch then baked on its
//!   gates ([`bake`]);
//! - [`approvals`]: a plan written for approval (`--plan-out`), and one
//!   carried out (`--plan`), checked before the lock, under it, and once
//!   decided again;
//! - [`rollback`]: the rollback policy;
//! - [`aftermath`]: the syslog line and the records on the hosts, the
//!   team told, the badges refreshed;
//! - [`report`]: the outcome as report lines, history records and an exit
//!   status (pure).
//!
//! Beside them, the values they share: [`context`] (what every phase
//! needs, and the hosts' states), [`attempt`] (the attempt, from which
//! every record is made), [`outcome`] (what the rollout and the rollback
//! did, per host); and [`record`] (the attempt on record in the local
//! history), [`host`] (what every phase asks one host). Imports go one
//! way: this module uses the phases, the phases use the shared values,
//! and no module here imports this one.
//!
//! Every attempt, whatever its outcome, is recorded in the history.

pub mod aftermath;
pub mod alert_hold;
pub mod approvals;
pub mod attempt;
pub mod bake;
pub mod context;
pub mod host;
pub mod install;
pub mod keep;
pub mod outcome;
pub mod preflight;
pub mod previous;
pub mod record;
pub mod report;
pub mod request;
pub mod restart;
pub mod rollback;
pub mod rollout;
#[cfg(test)]
mod tests;
pub mod window_hold;

use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::history::{self, Outcome};
use crate::plan::Wanted;

pub use attempt::Attempt;
pub use context::{read_facts, Context, Facts};
pub use record::Journal;
pub use request::{
    check_package, check_stage, check_version, record_rejected, validate, Checked, Options, Request,
};

/// Deploy, roll back or promote what [`validate`] accepted. `fleet` holds
/// the stages [`request::stages_needed`] names (or every stage). Returns
/// the exit status; refusals and failures before any change come back as
/// [`Fatal`].
pub fn run(cx: &Context<'_>, mut fleet: Fleet, checked: &Checked) -> Result<ExitStatus, Fatal> {
    let config = cx.config;
    let started = history::Attempt::start(checked.action);
    // a signal while the hosts are read is an attempt too: on record
    let named = checked.stage.map_or("", |i| config.stages[i].name.as_str());
    let forced = cx.opts.force || cx.opts.override_freeze;
    record::record_if_stopped(cx, &Attempt::new(&started, checked, named, forced));
    let connected = request::stages_needed(checked);
    let before = read_facts(cx, &mut fleet, connected.as_deref());
    cx.console.matrix("Before:", &before.matrix);

    // 1. which stage, which version (a rollback's from the stage's history)
    let history = if checked.rollback {
        let stage = checked.stage.unwrap_or(0);
        let name = &config.stages[stage].name;
        previous::read(cx, &mut fleet, name).map_err(|e| {
            let attempt = Attempt::new(&started, checked, name, forced);
            record::refuse(
                cx,
                &attempt,
                format!(
                    "cannot read the history to roll back `{}`: {e}",
                    checked.package
                ),
                Vec::new(),
            )
        })?
    } else {
        Vec::new()
    };
    let found = request::target(config, checked, &before.matrix, &before.reports, &history);
    let target = match found {
        Ok(t) => t,
        Err(request::NoTarget::NothingToPromote) => {
            cx.console.say(&format!(
                "Nothing to promote: no stage is behind its left neighbour for `{}`.",
                checked.package
            ));
            return Ok(ExitStatus::Success);
        }
        Err(request::NoTarget::SourceDisagrees { stage, hosts }) => {
            let name = &config.stages[stage].name;
            let attempt = Attempt::new(&started, checked, name, forced);
            return Err(record::refuse(
                cx,
                &attempt,
                format!(
                    "cannot promote `{}` to `{name}`: the hosts of `{}` do not all run one installed version",
                    checked.package,
                    config.stages[stage - 1].name
                ),
                hosts,
            ));
        }
        Err(request::NoTarget::NoPrevious { stage, why, notes }) => {
            let attempt = Attempt::new(&started, checked, &config.stages[stage].name, forced);
            return Err(record::refuse(
                cx,
                &attempt,
                format!("cannot choose a version to roll back to: {why}"),
                notes,
            ));
        }
        Err(request::NoTarget::Forward {
            stage,
            version,
            hosts,
        }) => {
            let name = &config.stages[stage].name;
            let mut attempt = Attempt::new(&started, checked, name, forced);
            attempt.aim(&version);
            let mut notes = hosts;
            notes.push(format!(
                "a rollback never moves a host forward; to install {version} there, use \
                 `deployer deploy {} {name} {version}`",
                checked.package
            ));
            return Err(record::refuse(
                cx,
                &attempt,
                format!(
                    "cannot roll `{}` back to {version} on `{name}`: some hosts run an older \
                     version or none",
                    checked.package
                ),
                notes,
            ));
        }
    };
    let stage = &config.stages[target.stage];
    let mut attempt = Attempt::new(&started, checked, &stage.name, forced);
    // a promotion's stage is known only now
    if let Err(fatal) = request::check_excluded(config, Some(target.stage), &cx.opts.exclude) {
        return Err(record::reject(cx, &attempt, fatal));
    }
    if let Wanted::Exact(v) = &target.wanted {
        attempt.aim(v);
    }
    // a plan given with `--plan`, and the approvals the stage asks for
    approvals::before(cx, &mut attempt, &target)?;
    if let Some(back) = &target.back {
        cx.console.say(&format!(
            "Rolling back `{}` to {}.",
            checked.package, back.origin
        ));
    }
    record::record_if_stopped(cx, &attempt);

    // 2. every check that needs no change, then the lock and what it guards
    let prepared = preflight::prepare(cx, &mut fleet, &mut attempt, &target, before)?;
    if cx.opts.dry_run {
        preflight::show_dry_run(cx, &prepared);
        approvals::write_plan(cx, &attempt, &prepared)?;
        return Ok(ExitStatus::Success);
    }
    let plan = &prepared.plan;
    if plan.steps.is_empty() {
        cx.console.say(&plan.describe(&[]));
        let record = record::record(
            cx,
            &attempt,
            Outcome::Success,
            Some("nothing to do".into()),
            report::nothing_to_do_records(plan),
        );
        cx.console
            .document(serde_json::to_value(&record).expect("a record is JSON"));
        return Ok(report::done_status(plan));
    }
    preflight::confirm(cx, &attempt, &prepared)?;
    if cx.interrupt.requested() {
        return Err(record::refuse(
            cx,
            &attempt,
            "interrupted before any host was changed".into(),
            Vec::new(),
        ));
    }

    // 3. the attempt is on record, here and on its hosts, before any change
    let journal = aftermath::start(cx, &mut fleet, &attempt, plan)?;
    let last_words = journal.clone();
    cx.interrupt.on_exit(move || last_words.record_abandoned());
    cx.interrupt.changing();

    // 4. the rollout, and the rollback policy
    let rollout = rollout::rollout(cx, &mut fleet, &prepared, &attempt, &journal);
    let rollback =
        rollback::rollback_if_failed(cx, &mut fleet, &prepared, &rollout, &attempt, &journal);

    // 5. the outcome
    attempt.failure_budget = report::failure_budget(plan, &rollout);
    let after = read_facts(cx, &mut fleet, connected.as_deref());
    cx.console.matrix("\nAfter:", &after.matrix);
    let summary = report::summarize(plan, checked.action, &rollout, &rollback);
    // a failure is reported even with --quiet
    let tell = |text: &str| match summary.status {
        ExitStatus::Success => cx.console.say(text),
        _ => cx.console.report(text),
    };
    tell(&summary.heading);
    for line in &summary.lines {
        tell(line);
    }
    let reason = report::reason(cx.opts, &attempt, plan, &rollout, &summary.records);
    let record = record::record(
        cx,
        &attempt,
        summary.outcome,
        reason,
        summary.records.clone(),
    );
    aftermath::publish(cx, &mut fleet, plan, &record);
    aftermath::announce(cx, &record);
    cx.console
        .document(serde_json::to_value(&record).expect("a record is JSON"));
    aftermath::refresh_badges(
        cx,
        &mut fleet,
        &attempt,
        &after,
        &stage.name,
        &summary.records,
    );
    fleet.release(&stage.name);
    Ok(summary.status)
}
