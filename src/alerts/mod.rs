//! Alerts that hold forward deploys (`[alerts]` in deployer.ini): which
//! alerts count ([`Settings::matchers_for`]: `[alerts] matchers`, plus a
//! stage's and a package's `alert_matchers`), asking Alertmanager for
//! them ([`client`]), and the verdict ([`Verdict`]).
//!
//! An alert holds a stage when Alertmanager reports it active, neither
//! silenced nor inhibited, and it matches every matcher. The matchers are
//! not applied here: each goes to Alertmanager as a `filter` of
//! `GET /api/v2/alerts` (as `amtool alert query` sends them), so the
//! alerts selected are the ones Alertmanager itself selects, with its own
//! regular expressions (Go's RE2) and its own reading of an empty value.
//! That is why there is no regular expression engine in deployer:
//! `regex-syntax` only checks, when the configuration is read, that a
//! regular expression is one (see [`matcher`]).
//!
//! An Alertmanager that cannot be asked, or whose answer is not a list of
//! alerts, gives [`Verdict::Unreachable`]: that refuses (fail closed)
//! unless `on_unreachable = allow`.

pub mod client;
pub mod matcher;

use std::collections::BTreeMap;

use crate::package::PackageName;

pub use matcher::Matcher;

/// What to do when Alertmanager cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnreachable {
    /// Refuse the deploy (the default: fail closed).
    #[default]
    Refuse,
    /// Go on, with a warning.
    Allow,
}

impl OnUnreachable {
    /// The value as written in deployer.ini.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnreachable::Refuse => "refuse",
            OnUnreachable::Allow => "allow",
        }
    }
}

/// `[alerts]`, and the `alert_matchers` of stages and packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Alertmanager's base URL (`http://alertmanager:9093`, perhaps with
    /// its route prefix).
    pub url: String,
    /// `[alerts] matchers`: for every stage and package (may be empty:
    /// then every alert counts).
    pub matchers: Vec<Matcher>,
    /// `on_unreachable`.
    pub on_unreachable: OnUnreachable,
    /// `alert_matchers` of `[stage:NAME]`, by stage.
    pub stages: BTreeMap<String, Vec<Matcher>>,
    /// `alert_matchers` of `[package:NAME]`, by package.
    pub packages: BTreeMap<PackageName, Vec<Matcher>>,
}

impl Settings {
    /// The matchers an alert must meet to hold `stage` (for `package`,
    /// when given): `[alerts]`' own, then the stage's, then the package's.
    pub fn matchers_for(&self, stage: &str, package: Option<&PackageName>) -> Vec<Matcher> {
        let mut all = self.matchers.clone();
        all.extend(self.stages.get(stage).into_iter().flatten().cloned());
        if let Some(p) = package {
            all.extend(self.packages.get(p).into_iter().flatten().cloned());
        }
        all
    }

    /// Ask Alertmanager which alerts hold `stage` (for `package`).
    pub fn check(&self, stage: &str, package: Option<&PackageName>) -> Verdict {
        let matchers = self.matchers_for(stage, package);
        match client::active_alerts(&self.url, &matchers, client::TIMEOUT) {
            Ok(alerts) if alerts.is_empty() => Verdict::Clear,
            Ok(alerts) => Verdict::Firing(alerts),
            Err(why) => Verdict::Unreachable(why),
        }
    }

    /// The URL as shown in messages: without any `user:password@`.
    pub fn shown_url(&self) -> String {
        crate::config::webhook_shown(&self.url)
    }

    /// The check as the plan describes it: where, with which matchers.
    pub fn describe(&self, stage: &str, package: Option<&PackageName>) -> String {
        let matchers = self.matchers_for(stage, package);
        let which = if matchers.is_empty() {
            "every active alert".to_string()
        } else {
            format!("active alerts matching {}", matcher::describe(&matchers))
        };
        format!(
            "{which}, neither silenced nor inhibited, at {} (on_unreachable = {})",
            self.shown_url(),
            self.on_unreachable.as_str()
        )
    }
}

/// One alert as Alertmanager reports it, its texts as received (external:
/// shown only through [`Alert::describe`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// Its labels (`alertname` among them).
    pub labels: BTreeMap<String, String>,
    /// When it started firing (`startsAt`), as Alertmanager wrote it.
    pub since: String,
    /// Its `summary` annotation, if any.
    pub summary: Option<String>,
}

impl Alert {
    /// The alert's `alertname` label (empty when it has none).
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// One safe line: `HighErrorRate {service="fastpath", severity="page"}
    /// since 2026-12-07T11:00:00Z: Error rate above 5%`, each external
    /// text made safe and clipped ([`crate::text::clipped_line`]).
    pub fn describe(&self) -> String {
        let safe = |s: &str| crate::text::clipped_line(s, crate::text::REMOTE_TEXT_MAX);
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{}=\"{}\"", safe(k), safe(v)))
            .collect();
        let name = if self.name().is_empty() {
            "(no alertname)".to_string()
        } else {
            safe(self.name())
        };
        let summary = self
            .summary
            .as_deref()
            .map(|s| format!(": {}", safe(s)))
            .unwrap_or_default();
        crate::text::clip(
            &format!(
                "{name} {{{}}} since {}{summary}",
                labels.join(", "),
                safe(&self.since)
            ),
            4 * crate::text::REMOTE_TEXT_MAX,
        )
    }
}

/// What Alertmanager says about a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No alert holds it.
    Clear,
    /// These alerts hold it.
    Firing(Vec<Alert>),
    /// Alertmanager could not be asked, or answered something else than a
    /// list of alerts: why, in one safe line.
    Unreachable(String),
}

impl Verdict {
    /// The alerts as lines, one per alert ([`Alert::describe`]).
    pub fn lines(&self) -> Vec<String> {
        match self {
            Verdict::Firing(alerts) => alerts.iter().map(Alert::describe).collect(),
            Verdict::Unreachable(why) => vec![why.clone()],
            Verdict::Clear => Vec::new(),
        }
    }
}

/// What `status` and the dashboard show of a stage's alerts (only when
/// `[alerts]` is set): [`Verdict`] for the stage (`[alerts] matchers` and
/// the stage's `alert_matchers`; a package's own are for its deploys).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Hold {
    /// No alert holds the stage.
    Clear,
    /// Alerts hold it: one line each.
    Held {
        /// The alerts, one safe line each.
        alerts: Vec<String>,
    },
    /// Alertmanager could not be asked: why. Not "clear".
    Unreachable {
        /// Why, in one safe line.
        error: String,
    },
}

impl Hold {
    /// The hold `verdict` describes.
    pub fn of(verdict: &Verdict) -> Hold {
        match verdict {
            Verdict::Clear => Hold::Clear,
            Verdict::Firing(_) => Hold::Held {
                alerts: verdict.lines(),
            },
            Verdict::Unreachable(why) => Hold::Unreachable { error: why.clone() },
        }
    }

    /// Whether alerts hold the stage (the metric `deployer_held_by_alerts`).
    pub fn held(&self) -> bool {
        matches!(self, Hold::Held { .. })
    }
}

/// Ask Alertmanager about every stage of `m` (with `[alerts] matchers`
/// and each stage's `alert_matchers`), for `status` and the dashboard;
/// nothing without `[alerts]`.
pub fn mark_stages(settings: Option<&Settings>, m: &mut crate::matrix::Matrix) {
    let Some(settings) = settings else {
        return;
    };
    for c in &mut m.columns {
        c.alerts = Some(Hold::of(&settings.check(&c.name, None)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let list = |t: &str| matcher::parse_list(t).unwrap();
        Settings {
            url: "http://user:pw@am.example:9093".into(),
            matchers: list(r#"severity=~"critical|page""#),
            on_unreachable: OnUnreachable::Refuse,
            stages: [("prod".to_string(), list("env=prod"))].into(),
            packages: [("fastpath".parse().unwrap(), list("service=fastpath"))].into(),
        }
    }

    #[test]
    fn a_stage_and_a_package_add_their_matchers() {
        let s = settings();
        let names = |v: Vec<Matcher>| v.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(s.matchers_for("test", None)), ["severity"]);
        assert_eq!(names(s.matchers_for("prod", None)), ["severity", "env"]);
        let fastpath: PackageName = "fastpath".parse().unwrap();
        assert_eq!(
            names(s.matchers_for("prod", Some(&fastpath))),
            ["severity", "env", "service"]
        );
        let other: PackageName = "other".parse().unwrap();
        assert_eq!(names(s.matchers_for("test", Some(&other))), ["severity"]);
    }

    #[test]
    fn the_description_hides_credentials() {
        let d = settings().describe("prod", None);
        assert!(!d.contains("pw"), "{d}");
        assert!(
            d.contains(r#"severity=~"critical|page", env="prod""#),
            "{d}"
        );
        assert!(d.contains("on_unreachable = refuse"), "{d}");
    }

    #[test]
    fn an_alert_is_one_safe_line() {
        let a = Alert {
            labels: [
                ("alertname".to_string(), "Boom\x1b[31m".to_string()),
                ("severity".to_string(), "page\nnext".to_string()),
            ]
            .into(),
            since: "2026-12-07T11:00:00Z".into(),
            summary: Some("rate\r\nhigh".into()),
        };
        let line = a.describe();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.starts_with("Boom"), "{line}");
        assert!(line.contains("since 2026-12-07T11:00:00Z: rate"), "{line}");
        let hold = Hold::of(&Verdict::Firing(vec![a]));
        assert!(hold.held());
        assert!(!Hold::of(&Verdict::Unreachable("x".into())).held());
    }
}
