//! Alerts holding a forward deploy ([`crate::alerts`]): asked before the
//! lock ([`before_lock`], beside the freezes) and again before every batch
//! ([`before_batch`], beside the freeze check). A firing alert refuses, as
//! does an Alertmanager that cannot be asked (unless `on_unreachable =
//! allow`); a rollback goes through (the safe direction), and
//! `--override-freeze --reason` is the recorded break-glass: the record's
//! `alerts_overridden` names the alerts it went through.

use crate::alerts::{OnUnreachable, Settings, Verdict};
use crate::error::Fatal;

use super::attempt::Attempt;
use super::context::Context;
use super::outcome::Stop;
use super::record;
use super::request::Target;

/// The alert check of a deploy, for its plan (`--dry-run`, also JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertCheck {
    /// What is asked, of which Alertmanager ([`crate::alerts::Settings::describe`]).
    pub asks: String,
    /// What it said before the lock: `clear`, `overridden`,
    /// `unreachable, allowed`, or `not checked (rollback)`.
    pub now: &'static str,
}

impl AlertCheck {
    /// The plan's line.
    pub fn describe(&self) -> String {
        format!(
            "Alerts, asked before the lock and before every batch: {} ({} now)\n",
            self.asks, self.now
        )
    }
}

/// Before the lock: whether alerts let this attempt through. `None`
/// without `[alerts]`. A refusal is recorded; a break-glass is noted on
/// `attempt` (its record names the alerts overridden) and announced.
pub fn before_lock(
    cx: &Context<'_>,
    attempt: &mut Attempt,
    target: &Target,
) -> Result<Option<AlertCheck>, Fatal> {
    let Some(settings) = &cx.config.alerts else {
        return Ok(None);
    };
    let stage = &cx.config.stages[target.stage].name;
    let package = attempt.package.clone();
    let asks = settings.describe(stage, Some(&package));
    if target.back.is_some() {
        return Ok(Some(AlertCheck {
            asks,
            now: "not checked: a rollback goes through alerts",
        }));
    }
    let verdict = settings.check(stage, Some(&package));
    let now = match &verdict {
        Verdict::Clear => "clear",
        _ if cx.opts.override_freeze => {
            let lines = overridden(&verdict);
            cx.console.say(&format!(
                "Warning: deploying (--override-freeze) into stage `{stage}` held by alerts:"
            ));
            for l in &lines {
                cx.console.say(&format!("  {l}"));
            }
            attempt.alerts_overridden = lines;
            "overridden"
        }
        Verdict::Unreachable(why) if settings.on_unreachable == OnUnreachable::Allow => {
            warn_allowed(cx, settings, stage, why);
            "unreachable, allowed"
        }
        Verdict::Unreachable(why) => {
            return Err(record::refuse(
                cx,
                attempt,
                format!(
                    "cannot check the alerts holding stage `{stage}`: Alertmanager at {}: {why}",
                    settings.shown_url()
                ),
                unreachable_notes(),
            ))
        }
        Verdict::Firing(alerts) => {
            let names: Vec<String> = alerts
                .iter()
                .map(|a| crate::text::clipped_line(a.name(), 80))
                .collect();
            let mut notes = verdict.lines();
            notes.push(format!(
                "a rollback still goes through: `deployer rollback {package} {stage}`; once the \
                 alerts are resolved, silenced or inhibited in Alertmanager, deploy again; \
                 `--override-freeze --reason \"...\"` overrides them once, and is recorded"
            ));
            return Err(record::refuse(
                cx,
                attempt,
                format!(
                    "stage `{stage}` is held by {} firing in Alertmanager: {}",
                    plural(alerts.len()),
                    names.join(", ")
                ),
                notes,
            ));
        }
    };
    Ok(Some(AlertCheck { asks, now }))
}

/// Before a batch: the alerts must still be clear (unless this is a
/// rollback, or overridden); an Alertmanager that cannot be asked stops
/// the rollout unless `on_unreachable = allow` (then a warning).
pub fn before_batch(
    cx: &Context<'_>,
    attempt: &Attempt,
    stage: &str,
    rollback: bool,
) -> Result<(), Stop> {
    let Some(settings) = &cx.config.alerts else {
        return Ok(());
    };
    if rollback || cx.opts.override_freeze {
        return Ok(());
    }
    match settings.check(stage, Some(&attempt.package)) {
        Verdict::Clear => Ok(()),
        v @ Verdict::Firing(_) => Err(Stop::Alerts(v.lines())),
        Verdict::Unreachable(why) if settings.on_unreachable == OnUnreachable::Allow => {
            warn_allowed(cx, settings, stage, &why);
            Ok(())
        }
        Verdict::Unreachable(why) => Err(Stop::AlertsUnknown(vec![format!(
            "Alertmanager at {}: {why}",
            settings.shown_url()
        )])),
    }
}

/// The warning of a deploy that goes on while Alertmanager cannot be
/// asked, as `on_unreachable = allow` lets it.
fn warn_allowed(cx: &Context<'_>, settings: &Settings, stage: &str, why: &str) {
    cx.console.warn(&format!(
        "the alerts holding stage `{stage}` cannot be checked: Alertmanager at {}: {why}; \
         going on, as `on_unreachable = allow` in `[alerts]` says",
        settings.shown_url()
    ));
}

/// The record's `alerts_overridden`: each alert's line, or why
/// Alertmanager could not be asked.
fn overridden(verdict: &Verdict) -> Vec<String> {
    match verdict {
        Verdict::Unreachable(why) => vec![format!("Alertmanager could not be asked: {why}")],
        v => v.lines(),
    }
}

/// The notes of a refusal for an Alertmanager that cannot be asked.
fn unreachable_notes() -> Vec<String> {
    vec![
        "deployer refuses while it cannot ask Alertmanager (`on_unreachable = refuse` in \
         `[alerts]`, the default); bring Alertmanager back, or set `on_unreachable = allow` in \
         `[alerts]` to deploy with a warning instead, or override once with \
         `--override-freeze --reason \"...\"` (recorded)"
            .to_string(),
    ]
}

/// "1 alert", "3 alerts".
fn plural(n: usize) -> String {
    if n == 1 {
        "1 alert".into()
    } else {
        format!("{n} alerts")
    }
}
