//! Asking Alertmanager for the alerts that hold a stage: one
//! `GET /api/v2/alerts?active=true&silenced=false&inhibited=false`, each
//! matcher a `filter` parameter (as `amtool alert query` asks), through
//! `ureq`. Alertmanager works out silences and inhibitions when it
//! answers, so a silence added a moment ago already counts.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use super::{Alert, Matcher};

/// How long one question to Alertmanager may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer read: more is not a list of alerts we can use.
const MAX_ANSWER: u64 = 8 << 20;

/// The alerts API's URL under Alertmanager's base URL `base`.
fn alerts_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim().trim_end_matches('/'))
}

/// The active alerts, neither silenced nor inhibited, that match every
/// one of `matchers`, as Alertmanager at `base` selects them. An error is
/// one safe line saying what went wrong (never the URL's credentials).
pub fn active_alerts(
    base: &str,
    matchers: &[Matcher],
    timeout: Duration,
) -> Result<Vec<Alert>, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .build();
    let mut request = agent
        .get(&alerts_url(base))
        .query("active", "true")
        .query("silenced", "false")
        .query("inhibited", "false")
        // an alert not yet processed may be firing: it counts
        .query("unprocessed", "true")
        .set("Accept", "application/json")
        .set(
            "User-Agent",
            concat!("deployer/", env!("CARGO_PKG_VERSION")),
        );
    for m in matchers {
        request = request.query("filter", &m.to_string());
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            // Alertmanager says why (a matcher it refuses) in its body
            let mut body = String::new();
            let _ = r.into_reader().take(400).read_to_string(&mut body);
            let why = if body.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", crate::text::clipped_line(body.trim(), 200))
            };
            return Err(format!("it answered HTTP {code}{why}"));
        }
        // the transport error's text may quote the URL: keep its kind
        Err(ureq::Error::Transport(t)) => {
            return Err(format!("it cannot be reached ({:?})", t.kind()))
        }
    };
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("its answer could not be read ({:?})", e.kind()))?;
    if body.len() as u64 > MAX_ANSWER {
        return Err(format!(
            "its answer is larger than {} MiB",
            MAX_ANSWER >> 20
        ));
    }
    read_alerts(&body)
}

/// An alert as API v2 gives it; only what deployer reads.
#[derive(serde::Deserialize)]
struct Gettable {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
}

/// The alerts in an answer of `GET /api/v2/alerts`: a JSON list of
/// alerts, or an error (not Alertmanager's alerts API, or garbage).
pub fn read_alerts(body: &[u8]) -> Result<Vec<Alert>, String> {
    let alerts: Vec<Gettable> = serde_json::from_slice(body).map_err(|e| {
        format!(
            "its answer is not a list of alerts (line {}, column {}: {:?})",
            e.line(),
            e.column(),
            e.classify()
        )
    })?;
    Ok(alerts
        .into_iter()
        .map(|g| Alert {
            summary: g.annotations.get("summary").cloned(),
            labels: g.labels,
            since: g.starts_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_answer_is_read() {
        let body = br#"[{"labels":{"alertname":"Down","severity":"page"},
            "annotations":{"summary":"it is down"},"startsAt":"2026-12-07T11:00:00.000Z",
            "endsAt":"2026-12-07T12:00:00.000Z","fingerprint":"x","receivers":[{"name":"n"}],
            "status":{"state":"active","silencedBy":[],"inhibitedBy":[]},"updatedAt":"x"}]"#;
        let alerts = read_alerts(body).unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].name(), "Down");
        assert_eq!(alerts[0].summary.as_deref(), Some("it is down"));
        assert_eq!(alerts[0].since, "2026-12-07T11:00:00.000Z");
        assert_eq!(read_alerts(b"[]").unwrap(), Vec::new());
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_list() {
        for body in [&b"<html>ok</html>"[..], b"{}", b"", b"[{\"labels\":1}]"] {
            let e = read_alerts(body).unwrap_err();
            assert!(e.contains("not a list of alerts"), "{e}");
        }
    }

    #[test]
    fn the_base_url_may_end_with_a_slash_or_carry_a_prefix() {
        assert_eq!(alerts_url("http://a:9093/"), "http://a:9093/api/v2/alerts");
        assert_eq!(alerts_url("http://a/am"), "http://a/am/api/v2/alerts");
    }
}
