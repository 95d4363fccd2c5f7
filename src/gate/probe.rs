//! The observations of `prometheus` and `http` gates, made from this
//! machine with `ureq`: the I/O edge of gates. [`parse_instant`], which
//! reads Prometheus' answer, is pure.
//!
//! Text that came from a server (an error message) is clipped to one
//! line ([`crate::text::clipped_line`]) before it goes anywhere; a body is
//! never shown.

use std::io::Read;
use std::time::Duration;

use super::engine::{Observation, Reading, Verdict};
use crate::text::{clipped_line, REMOTE_TEXT_MAX};

/// The most of a body read from an `http` gate's URL.
const BODY_LIMIT: u64 = 1 << 20;

/// An agent that follows no redirect (an `http` gate judges the URL it
/// names, not a login page it redirects to).
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("deployer/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How a server is named in messages: its scheme and host, never a path
/// or user part that may hold a token.
pub fn server_shown(url: &str) -> String {
    crate::config::webhook_shown(url)
}

/// Ask the Prometheus server at `server` for the instant `query`: one
/// value, no data, or an error naming the server and the query.
pub fn prometheus(server: &str, query: &str, timeout: Duration) -> Observation {
    let endpoint = format!("{}/api/v1/query", server.trim_end_matches('/'));
    let named = || {
        format!(
            "Prometheus at {} for `{}`",
            server_shown(server),
            clipped_line(query, REMOTE_TEXT_MAX)
        )
    };
    let body = match agent(timeout).get(&endpoint).query("query", query).call() {
        Ok(response) => read_body(response),
        Err(ureq::Error::Status(code, response)) => {
            // Prometheus explains a bad query in its JSON
            let why = read_body(response)
                .ok()
                .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .map(|e| format!(": {}", clipped_line(&e, REMOTE_TEXT_MAX)))
                .unwrap_or_default();
            return Observation::Error(format!("{} answered HTTP {code}{why}", named()));
        }
        Err(ureq::Error::Transport(t)) => {
            return Observation::Error(format!(
                "{} cannot be asked: {}",
                named(),
                clipped_line(&t.to_string(), REMOTE_TEXT_MAX)
            ))
        }
    };
    match body {
        Ok(body) => match parse_instant(&body) {
            Observation::Error(why) => Observation::Error(format!("{}: {why}", named())),
            seen => seen,
        },
        Err(e) => Observation::Error(format!("{}: cannot read the answer: {e}", named())),
    }
}

fn read_body(response: ureq::Response) -> Result<String, String> {
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(BODY_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Prometheus' answer to an instant query -> an observation: a vector of
/// one series, or a scalar, is its value (NaN is no data); an empty vector
/// is no data; several series is an error (which one would be this host's?
/// the gate fails closed rather than guess).
pub fn parse_instant(body: &str) -> Observation {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return Observation::Error("the answer is not JSON".into());
    };
    if json.get("status").and_then(|s| s.as_str()) != Some("success") {
        let why = json
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no error given");
        return Observation::Error(format!(
            "the query failed: {}",
            clipped_line(why, REMOTE_TEXT_MAX)
        ));
    }
    let data = &json["data"];
    let sample = match data["resultType"].as_str() {
        Some("vector") => {
            let Some(series) = data["result"].as_array() else {
                return Observation::Error("the answer has no result".into());
            };
            match series.as_slice() {
                [] => return Observation::NoData("the query returned no series".into()),
                [one] => &one["value"],
                many => {
                    return Observation::Error(format!(
                        "the query returned {} series where one was expected: narrow it to \
                         the host (e.g. with `{{host}}`) or aggregate it (`sum`, `max`)",
                        many.len()
                    ))
                }
            }
        }
        Some("scalar") => &data["result"],
        Some(other) => {
            return Observation::Error(format!(
                "the query returned a {}, not an instant vector or a scalar",
                clipped_line(other, 40)
            ))
        }
        None => return Observation::Error("the answer has no result type".into()),
    };
    // [ <time>, "<value>" ]
    match sample
        .get(1)
        .and_then(|v| v.as_str())
        .map(str::parse::<f64>)
    {
        Some(Ok(v)) if v.is_nan() => Observation::NoData("the value is NaN".into()),
        Some(Ok(v)) => Observation::Value(v),
        _ => Observation::Error("the answer's sample has no number".into()),
    }
}

/// GET `url` from this machine: the gate passes when the answer has
/// `status` and, when `body` is given, contains it. No answer is a failed
/// evaluation (the service is not serving), not missing data.
pub fn http(url: &str, status: u16, body: Option<&str>, timeout: Duration) -> Reading {
    let shown = server_shown(url);
    let response = match agent(timeout).get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            return Reading::without_value(
                Verdict::Fail,
                format!(
                    "{shown} did not answer: {}",
                    clipped_line(&t.to_string(), REMOTE_TEXT_MAX)
                ),
            )
        }
    };
    let got = response.status();
    let value = Some(f64::from(got));
    if got != status {
        return Reading {
            verdict: Verdict::Fail,
            value,
            detail: format!("{shown} answered HTTP {got}, not {status}"),
        };
    }
    if let Some(wanted) = body {
        match read_body(response) {
            Ok(text) if text.contains(wanted) => {}
            Ok(_) => {
                return Reading {
                    verdict: Verdict::Fail,
                    value,
                    detail: format!(
                        "{shown} answered HTTP {got}, but its body does not contain `{}`",
                        clipped_line(wanted, REMOTE_TEXT_MAX)
                    ),
                }
            }
            Err(e) => {
                return Reading {
                    verdict: Verdict::Fail,
                    value,
                    detail: format!(
                        "{shown}: cannot read the body: {}",
                        clipped_line(&e, REMOTE_TEXT_MAX)
                    ),
                }
            }
        }
    }
    Reading {
        verdict: Verdict::Pass,
        value,
        detail: format!("HTTP {got}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_series_is_its_value() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"host":"test-1"},"value":[1700000000.1,"0.002"]}]}}"#;
        assert_eq!(parse_instant(body), Observation::Value(0.002));
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(parse_instant(scalar), Observation::Value(f64::INFINITY));
    }

    #[test]
    fn nothing_or_nan_is_no_data() {
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(parse_instant(empty), Observation::NoData(_)));
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1,"NaN"]}]}}"#;
        assert!(matches!(parse_instant(nan), Observation::NoData(_)));
    }

    #[test]
    fn several_series_and_odd_answers_are_errors() {
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"host":"a"},"value":[1,"1"]},{"metric":{"host":"b"},"value":[1,"2"]}]}}"#;
        match parse_instant(two) {
            Observation::Error(why) => assert!(why.contains("2 series"), "{why}"),
            other => panic!("{other:?}"),
        }
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(parse_instant(matrix), Observation::Error(_)));
        let failed =
            "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\\u001b[2J\"}";
        match parse_instant(failed) {
            Observation::Error(why) => {
                assert!(why.contains("parse error"), "{why}");
                assert!(!why.contains('\u{1b}'), "escapes are made visible: {why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_instant("<html>"), Observation::Error(_)));
        let text = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1,"abc"]}]}}"#;
        assert!(matches!(parse_instant(text), Observation::Error(_)));
    }

    #[test]
    fn an_unreachable_server_is_an_error_naming_it_and_the_query() {
        // a port nobody listens on: bind one, then let it go
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        match prometheus(&server, "up{job=\"x\"}", Duration::from_secs(5)) {
            Observation::Error(why) => {
                assert!(why.contains(&format!("127.0.0.1:{port}")), "{why}");
                assert!(why.contains("up{job=\"x\"}"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let r = http(
            &format!("{server}/health"),
            200,
            None,
            Duration::from_secs(5),
        );
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
    }
}
