//! Deploy windows holding a forward deploy ([`crate::window`]): asked
//! before the lock ([`before_lock`], beside the freezes and the alerts)
//! and again before every batch ([`before_batch`]): a rollout started
//! inside a window stops at the window's end, between two batches (the
//! batch running then finishes). Outside a window, or on a freeze date, a
//! deploy or promotion is refused; a rollback goes through (the safe
//! direction), and `--override-freeze --reason` is the recorded
//! break-glass: the record's `window_overridden` says which window rule
//! it went through.

use jiff::Timestamp;

use crate::error::Fatal;
use crate::window::{Closed, Rules, State};

use super::attempt::Attempt;
use super::context::Context;
use super::outcome::Stop;
use super::record;
use super::request::Target;

/// The window check of a deploy, for its plan (`--dry-run`, also JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WindowCheck {
    /// The stage's rules ([`Rules::describe`]).
    pub rules: String,
    /// What they said before the lock: `open until ...`, `overridden`,
    /// or `not checked: a rollback goes outside the windows`.
    pub now: String,
}

impl WindowCheck {
    /// The plan's line.
    pub fn describe(&self) -> String {
        format!(
            "Deploy windows, checked before the lock and before every batch: {} ({})\n",
            self.rules, self.now
        )
    }
}

/// Why `rules` keep the stage closed, in a sentence: "outside its deploy
/// windows (...)" or "2027-04-05 is one of its freeze dates".
pub fn closed_because(rules: &Rules, why: &Closed) -> String {
    match why {
        Closed::Outside => format!("outside its deploy windows ({})", rules.describe()),
        Closed::FreezeDate(r) => format!(
            "on one of its freeze dates ({r}, {}; its windows: {})",
            rules.zone_name,
            rules.windows_text()
        ),
    }
}

/// When the stage opens next, in its zone and in this machine's.
pub fn opens_line(rules: &Rules, opens: Option<Timestamp>) -> String {
    match opens {
        Some(t) => format!(
            "the next window opens {}, {} here",
            rules.show(t),
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%a %Y-%m-%d %H:%M %Z")
        ),
        None => "no window opens within the next two years".to_string(),
    }
}

/// Before the lock: whether the stage's deploy windows let this attempt
/// through now. `None` when the stage has none. A refusal is recorded; a
/// break-glass is noted on `attempt` and announced.
pub fn before_lock(
    cx: &Context<'_>,
    attempt: &mut Attempt,
    target: &Target,
) -> Result<Option<WindowCheck>, Fatal> {
    let stage = &cx.config.stages[target.stage];
    let Some(rules) = &stage.window else {
        return Ok(None);
    };
    let check = |now: String| {
        Ok(Some(WindowCheck {
            rules: rules.describe(),
            now,
        }))
    };
    if target.back.is_some() {
        return check("not checked: a rollback goes outside the windows".into());
    }
    let (why, opens) = match rules.at(crate::window::now()) {
        State::Open { until } => {
            return check(match until {
                Some(t) => format!("open until {}", rules.show(t)),
                None => "open".into(),
            })
        }
        State::Closed { why, opens } => (why, opens),
    };
    let name = &stage.name;
    let closed = closed_because(rules, &why);
    let next = opens_line(rules, opens);
    if cx.opts.override_freeze {
        cx.console.say(&format!(
            "Warning: deploying (--override-freeze) into stage `{name}`, closed now: {closed}; {next}"
        ));
        attempt.window_overridden = Some(format!("closed: {closed}"));
        return check("overridden".into());
    }
    let package = &attempt.package;
    Err(record::refuse(
        cx,
        attempt,
        format!("stage `{name}` is closed now: {closed}"),
        vec![
            next,
            format!(
                "a rollback still goes through: `deployer rollback {package} {name}`; \
                 `--override-freeze --reason \"...\"` deploys outside the window once, and is \
                 recorded"
            ),
        ],
    ))
}

/// Before a batch: the stage's window must still be open (unless this is
/// a rollback, or overridden). A window that closed during the rollout
/// stops it here.
pub fn before_batch(cx: &Context<'_>, stage: &str, rollback: bool) -> Result<(), Stop> {
    if rollback || cx.opts.override_freeze {
        return Ok(());
    }
    let Some(rules) = cx.config.stage(stage).and_then(|s| s.window.as_ref()) else {
        return Ok(());
    };
    match rules.at(crate::window::now()) {
        State::Open { .. } => Ok(()),
        State::Closed { why, opens } => Err(Stop::WindowClosed(vec![
            closed_because(rules, &why),
            opens_line(rules, opens),
        ])),
    }
}
