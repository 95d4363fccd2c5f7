//! Telling the team: when a deploy starts changing hosts, succeeds, fails
//! or is interrupted, `[notify]` of `deployer.ini` may POST a summary to a
//! webhook (plain text, as ntfy takes it, or Slack-compatible JSON) and run
//! a local command with the history record as JSON on its stdin.
//!
//! Best effort: a notification that fails is a warning for the operator,
//! never a failed deploy. Each one is bounded by [`TIMEOUT`], and the
//! command leaves nothing running. The webhook URL may carry a token, so
//! it is never printed: problems name the webhook's scheme and host only;
//! nor is the command's text, which may carry one too.

use std::time::Duration;

use crate::command::RemoteCommand;
use crate::config::{Notify, NotifyEvent, WebhookFormat};
use crate::error::HostError;
use crate::history::{HostResult, Outcome, Record};
use crate::transport::Exec;

/// How long one notification (the POST, or the command, writing its
/// input included) may take; a command still running then is ended with
/// its whole process group, within [`crate::transport::END_GRACE`] more.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The events a record is announced under, the one that names it first
/// (empty for refusals and records nothing announces). A deploy's or
/// promotion's record is the event of its outcome; a rollback's is that
/// and `rollback`; a freeze's, an unfreeze's and an unlock's is their own
/// word, whatever their outcome (the summary tells it), so that a team
/// listing `success` keeps getting what it got before these were
/// announced.
pub fn events_of(record: &Record) -> Vec<NotifyEvent> {
    if record.outcome == Outcome::Refused {
        return Vec::new();
    }
    let own = match record.action.as_str() {
        "freeze" => Some(NotifyEvent::Freeze),
        "unfreeze" => Some(NotifyEvent::Unfreeze),
        "unlock" => Some(NotifyEvent::Unlock),
        _ => None,
    };
    if let Some(own) = own {
        return vec![own];
    }
    let mut events = vec![match record.outcome {
        Outcome::Started => NotifyEvent::Start,
        Outcome::Success => NotifyEvent::Success,
        Outcome::Failed | Outcome::Partial => NotifyEvent::Failure,
        Outcome::Interrupted => NotifyEvent::Interrupt,
        Outcome::Refused => unreachable!("returned above"),
    }];
    if record.action == "rollback" || record.under_freeze {
        events.push(NotifyEvent::Rollback);
    }
    events
}

/// The event `notify` announces `record` under: the first of the record's
/// events that `notify_on` lists, if any.
pub fn event_of(notify: &Notify, record: &Record) -> Option<NotifyEvent> {
    events_of(record)
        .into_iter()
        .find(|e| notify.notify_on.contains(e))
}

/// One line for people: who, what, where, how it went, and why (the
/// record's reason: the operator's for a freeze, an unlock, a forced
/// deploy or a rollback under freeze; the failure's for a failure).
pub fn summary(record: &Record) -> String {
    let who = match &record.as_user {
        Some(real) => format!("{real} (as {}@{})", record.user, record.machine),
        None => format!("{}@{}", record.user, record.machine),
    };
    let action = if record.under_freeze {
        format!("{} under freeze", record.action)
    } else {
        record.action.clone()
    };
    // a package's change happens on a stage; a stage's own change is of it
    let what = match (&record.package, &record.version) {
        (Some(p), Some(v)) => format!("{action} {p} {v} on {}", record.stage),
        (Some(p), None) => format!("{action} {p} on {}", record.stage),
        (None, _) => format!("{action} {}", record.stage),
    };
    let count = |r: HostResult| record.hosts.iter().filter(|h| h.result == r).count();
    let skipped = count(HostResult::Skipped);
    let hosts = record.hosts.len() - skipped;
    let tail = match record.outcome {
        Outcome::Started if skipped > 0 => format!(
            "started on {hosts} host{} ({skipped} skipped)",
            plural(hosts)
        ),
        Outcome::Started => format!("started on {hosts} host{}", plural(hosts)),
        outcome => {
            let mut parts = vec![format!("{} changed", count(HostResult::Changed))];
            for (n, word) in [
                (count(HostResult::Failed), "failed"),
                (count(HostResult::RolledBack), "rolled back"),
                (count(HostResult::Unknown), "unknown"),
                (count(HostResult::Untouched), "untouched"),
                (count(HostResult::Skipped), "skipped"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {word}"));
                }
            }
            format!("{} ({})", outcome.as_str(), parts.join(", "))
        }
    };
    let mut line = format!("deployer: {who}: {what}: {tail}");
    if let Some(reason) = record.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        line.push_str("; reason: ");
        line.push_str(&crate::text::clip(reason, crate::text::REMOTE_TEXT_MAX));
    }
    // the record's fields are this machine's and the hosts' words: one line
    crate::text::one_line(&line)
}

/// The summary, then one line per changelog entry the attempt sent out or
/// took back (`  + VERSION: first line`, `  - VERSION: ...` for a
/// rollback): what a webhook receives.
pub fn message(record: &Record) -> String {
    let mut text = summary(record);
    for c in &record.changes {
        let sign = match c.direction {
            crate::changelog::Direction::Deploy => '+',
            crate::changelog::Direction::Rollback => '-',
        };
        let first = c.lines.first().map(String::as_str).unwrap_or("");
        let line = format!("{sign} {}: {first}", c.version);
        text.push_str("\n  ");
        // the changelog is the package's words: one line, clipped
        text.push_str(&crate::text::clipped_line(&line, 200));
    }
    text.push_str(&restarts(&record.hosts));
    text
}

/// The restarts of a record, for its message: how many hosts restarted
/// their service, and one line per host whose restart failed (never its
/// log lines). Empty when nothing was restarted.
fn restarts(hosts: &[crate::history::HostRecord]) -> String {
    let tried: Vec<_> = hosts
        .iter()
        .filter_map(|h| h.restart.as_ref().map(|r| (h, r)))
        .collect();
    let Some((_, first)) = tried.first() else {
        return String::new();
    };
    let ok = tried.iter().filter(|(_, r)| r.ok).count();
    let safe = |s: &str| crate::text::clipped_line(s, 200);
    let mut text = format!(
        "\n  restarted {} on {ok} of {} host{}",
        safe(&first.what),
        tried.len(),
        plural(tried.len())
    );
    for (h, r) in tried.iter().filter(|(_, r)| !r.ok) {
        text.push_str(&format!(
            "\n  restart FAILED on {}: {}",
            safe(&h.host),
            safe(r.detail.as_deref().unwrap_or("no detail"))
        ));
        // its log lines may carry secrets (they come from root-only logs):
        // the operator's output and local history have them, a chat does not
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The body and content type of the webhook's POST.
pub fn webhook_body(format: WebhookFormat, summary: &str) -> (&'static str, Vec<u8>) {
    match format {
        WebhookFormat::Text => ("text/plain; charset=utf-8", summary.as_bytes().to_vec()),
        WebhookFormat::Slack => (
            "application/json",
            serde_json::json!({ "text": slack_escape(summary) })
                .to_string()
                .into_bytes(),
        ),
    }
}

/// `text` for Slack's message markup: `&`, `<` and `>` as `&amp;`, `&lt;`
/// and `&gt;`, so that a changelog or log line cannot ping a channel
/// (`<!channel>`) or show a link under other words (`<url|text>`).
fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Announce `record` as `notify` says; returns the problems, worded for
/// a warning (never the webhook URL itself).
pub fn announce(notify: &Notify, record: &Record) -> Vec<String> {
    let Some(event) = event_of(notify, record) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if let Some(url) = &notify.webhook_url {
        if let Err(e) = post(url, notify.webhook_format, &message(record)) {
            problems.push(format!(
                "the webhook at {} was not told about the {}: {e}",
                host_of(url),
                event.as_str()
            ));
        }
    }
    if let Some(command) = &notify.notify_command {
        if let Err(e) = run_command(command, record) {
            problems.push(format!(
                "`notify_command` was not told about the {}: {e}",
                event.as_str()
            ));
        }
    }
    problems
}

/// [`announce`] `record`, each problem a warning on `console`
/// (`warning: notification: ...`): how every command tells the team,
/// deploys, rollbacks, freezes, unfreezes and unlocks alike. A
/// notification that fails never fails the command.
pub fn announce_or_warn(notify: &Notify, console: &crate::console::Console, record: &Record) {
    for problem in announce(notify, record) {
        console.warn(&format!("notification: {problem}"));
    }
}

/// A webhook named without its token: scheme and host, in backticks.
fn host_of(url: &str) -> String {
    format!(
        "`{}`",
        crate::text::one_line(&crate::config::webhook_shown(url))
    )
}

fn post(url: &str, format: WebhookFormat, summary: &str) -> Result<(), String> {
    let (content_type, body) = webhook_body(format, summary);
    let agent = ureq::AgentBuilder::new()
        .timeout(TIMEOUT)
        .redirects(0)
        .build();
    match agent
        .post(url)
        .set("Content-Type", content_type)
        .set(
            "User-Agent",
            concat!("deployer/", env!("CARGO_PKG_VERSION")),
        )
        .send_bytes(&body)
    {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, _)) => Err(format!("it answered HTTP {code}")),
        // the transport error's text may quote the URL: keep only its kind
        Err(ureq::Error::Transport(t)) => Err(format!("{:?}", t.kind())),
    }
}

/// Run `command` with `sh -c`, the record as JSON on stdin, within
/// [`TIMEOUT`].
fn run_command(command: &str, record: &Record) -> Result<(), String> {
    let mut json = serde_json::to_vec(record).map_err(|e| e.to_string())?;
    json.push(b'\n');
    run_bounded(command, &json, TIMEOUT)
}

/// Run `command` here with `input` on its stdin. The bound covers writing
/// the input too; the command runs in a process group of its own, which is
/// ended at the bound, and after the command exits (nothing it started
/// outlives it). Its text comes from the configuration and may hold a
/// secret: it is named `notify_command`, never shown.
fn run_bounded(command: &str, input: &[u8], timeout: Duration) -> Result<(), String> {
    let command = RemoteCommand::from_config(command, "notify_command");
    let out = crate::transport::local::run_helper(Exec {
        command: &command,
        timeout,
        stdin: Some(input),
        on_output: None,
    });
    let out = match out {
        Ok(out) => out,
        Err(HostError::Timeout { .. }) => {
            return Err(format!(
                "it ran longer than {}s and was ended, with everything it started",
                timeout.as_secs()
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    if out.success() {
        return Ok(());
    }
    let said = crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX);
    Err(match out.status {
        -1 => "killed by a signal".to_string(),
        code if said.is_empty() => format!("exit status {code}"),
        code => format!("exit status {code}: {said}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::HostRecord;
    use std::io::{BufRead, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    fn record(outcome: Outcome) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "id": "1", "time": "2026-11-22T01:00:00Z", "user": "alice",
            "machine": "laptop", "action": "deploy", "package": "fastpath",
            "stage": "prod", "version": "0.81~pr748-191", "outcome": "success",
            "hosts": []
        }))
        .expect("a record");
        r.outcome = outcome;
        r.hosts = ["prod-1", "prod-2"]
            .iter()
            .map(|h| HostRecord {
                host: h.to_string(),
                from: None,
                to: None,
                result: HostResult::Changed,
                message: None,
                restart: None,
                log_tail: Vec::new(),
                gates: Vec::new(),
            })
            .collect();
        r
    }

    #[test]
    fn the_message_tells_the_restarts() {
        let mut r = record(Outcome::Partial);
        assert!(!message(&r).contains("restart"));
        r.hosts[0].restart = Some(crate::history::RestartRecord {
            what: "fastpath.service".into(),
            ok: true,
            detail: Some("fastpath.service is active (running)".into()),
        });
        r.hosts[1].restart = Some(crate::history::RestartRecord {
            what: "fastpath.service".into(),
            ok: false,
            detail: Some("restarted, but fastpath.service is failed (failed)".into()),
        });
        r.hosts[1].log_tail = vec!["bind: address in use, password=hunter2".into()];
        let m = message(&r);
        assert!(!m.contains("hunter2"), "the service's log stays out: {m}");
        assert!(
            m.ends_with(
                "\n  restarted fastpath.service on 1 of 2 hosts\
                 \n  restart FAILED on prod-2: restarted, but fastpath.service is failed (failed)"
            ),
            "{m}"
        );
    }

    /// A one-request HTTP server answering `status`; sends back what it got
    /// (request line, headers, body).
    fn server(status: u16) -> (String, mpsc::Receiver<(String, Vec<String>, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://token:secret@{}/hook/SECRET",
            listener.local_addr().unwrap()
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end().to_string();
                if h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                headers.push(h);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            tx.send((line, headers, String::from_utf8(body).unwrap()))
                .unwrap();
        });
        (url, rx)
    }

    fn notify(url: Option<String>, format: WebhookFormat, command: Option<&str>) -> Notify {
        Notify {
            webhook_url: url,
            webhook_format: format,
            notify_command: command.map(str::to_string),
            ..Notify::default()
        }
    }

    #[test]
    fn the_summary_says_who_what_where_and_how() {
        let s = summary(&record(Outcome::Success));
        assert_eq!(
            s,
            "deployer: alice@laptop: deploy fastpath 0.81~pr748-191 on prod: success (2 changed)"
        );
        let s = summary(&record(Outcome::Started));
        assert!(s.ends_with("on prod: started on 2 hosts"), "{s}");
        let mut r = record(Outcome::Partial);
        r.hosts[1].result = HostResult::Failed;
        r.user = "eve\x1b[2J".into();
        let s = summary(&r);
        assert!(s.contains("partial (1 changed, 1 failed)"), "{s}");
        assert!(s.contains("eve\\x1b[2J"), "escaped: {s}");
        // a host left out (`--skip-unreachable`, `--exclude`) is counted apart
        let mut r = record(Outcome::Started);
        r.hosts[1].result = HostResult::Skipped;
        assert!(
            summary(&r).ends_with("started on 1 host (1 skipped)"),
            "{r:?}"
        );
        r.outcome = Outcome::Success;
        assert!(
            summary(&r).ends_with("success (1 changed, 1 skipped)"),
            "{r:?}"
        );
        let all = Notify::default();
        assert_eq!(event_of(&all, &record(Outcome::Refused)), None);
        assert_eq!(
            event_of(&all, &record(Outcome::Interrupted)),
            Some(NotifyEvent::Interrupt)
        );
    }

    /// A record of `action` on prod with no package, by alice, for `reason`.
    fn stage_record(action: &str, reason: Option<&str>) -> Record {
        Record {
            action: action.into(),
            package: None,
            version: None,
            reason: reason.map(str::to_string),
            ..record(Outcome::Success)
        }
    }

    #[test]
    fn a_stage_change_says_who_what_where_and_why() {
        let s = summary(&stage_record("freeze", Some("incident 42: db failover")));
        assert_eq!(
            s,
            "deployer: alice@laptop: freeze prod: success (2 changed); reason: incident 42: db failover"
        );
        let s = summary(&stage_record("unfreeze", Some("fixed")));
        assert!(
            s.starts_with("deployer: alice@laptop: unfreeze prod: success"),
            "{s}"
        );
        assert!(s.ends_with("; reason: fixed"), "{s}");
        // no reason given: no empty "reason"
        let s = summary(&stage_record("unfreeze", None));
        assert!(!s.contains("reason"), "{s}");
        let mut r = stage_record("unlock", Some("holder \x1b[2J crashed\nline"));
        r.forced = true;
        r.as_user = Some("root".into());
        let s = summary(&r);
        assert!(
            s.starts_with("deployer: root (as alice@laptop): unlock prod: success"),
            "{s}"
        );
        assert!(
            s.ends_with("; reason: holder \\x1b[2J crashed\\nline"),
            "{s}"
        );
        assert!(!s.contains('\n') && !s.contains('\x1b'), "{s}");
        // a long reason is clipped
        let long = "x".repeat(1000);
        let s = summary(&stage_record("freeze", Some(&long)));
        assert!(s.len() < 500 && s.contains("more characters"), "{s}");
    }

    #[test]
    fn a_rollback_under_freeze_is_announced_as_such() {
        let mut r = record(Outcome::Success);
        r.action = "rollback".into();
        r.version = Some("0.80".into());
        r.under_freeze = true;
        r.reason = Some("0.81 drops connections".into());
        r.changes = vec![crate::changelog::Summary {
            version: "0.81~pr748-191".into(),
            direction: crate::changelog::Direction::Rollback,
            lines: vec!["* Faster ingest.".into()],
        }];
        let s = summary(&r);
        assert_eq!(
            s,
            "deployer: alice@laptop: rollback under freeze fastpath 0.80 on prod: \
             success (2 changed); reason: 0.81 drops connections"
        );
        let m = message(&r);
        assert_eq!(
            m.lines().collect::<Vec<_>>(),
            [s.as_str(), "  - 0.81~pr748-191: * Faster ingest."]
        );
        // its start too
        r.outcome = Outcome::Started;
        assert!(summary(&r)
            .contains(": rollback under freeze fastpath 0.80 on prod: started on 2 hosts"));
        // a plain rollback says rollback, not "under freeze"
        r.under_freeze = false;
        r.outcome = Outcome::Failed;
        let s = summary(&r);
        assert!(
            s.contains(": rollback fastpath 0.80 on prod: failed ("),
            "{s}"
        );
        assert!(!s.contains("under freeze"), "{s}");
    }

    #[test]
    fn each_record_has_its_events() {
        let mut rollback = record(Outcome::Success);
        rollback.action = "rollback".into();
        assert_eq!(
            events_of(&rollback),
            [NotifyEvent::Success, NotifyEvent::Rollback]
        );
        rollback.outcome = Outcome::Started;
        rollback.under_freeze = true;
        assert_eq!(
            events_of(&rollback),
            [NotifyEvent::Start, NotifyEvent::Rollback]
        );
        rollback.outcome = Outcome::Refused;
        assert!(events_of(&rollback).is_empty());
        assert_eq!(events_of(&record(Outcome::Partial)), [NotifyEvent::Failure]);
        for (action, event) in [
            ("freeze", NotifyEvent::Freeze),
            ("unfreeze", NotifyEvent::Unfreeze),
            ("unlock", NotifyEvent::Unlock),
        ] {
            let mut r = stage_record(action, Some("why"));
            assert_eq!(events_of(&r), [event]);
            // a freeze that failed somewhere is still a freeze
            r.outcome = Outcome::Partial;
            assert_eq!(events_of(&r), [event]);
            r.outcome = Outcome::Refused;
            assert!(events_of(&r).is_empty());
        }
    }

    #[test]
    fn a_team_can_follow_freezes_without_the_deploys() {
        let mut n = Notify {
            notify_on: vec![
                NotifyEvent::Freeze,
                NotifyEvent::Unfreeze,
                NotifyEvent::Rollback,
            ],
            ..Notify::default()
        };
        let mut rollback = record(Outcome::Success);
        rollback.action = "rollback".into();
        assert_eq!(event_of(&n, &record(Outcome::Success)), None);
        assert_eq!(event_of(&n, &record(Outcome::Failed)), None);
        assert_eq!(event_of(&n, &rollback), Some(NotifyEvent::Rollback));
        assert_eq!(
            event_of(&n, &stage_record("freeze", Some("x"))),
            Some(NotifyEvent::Freeze)
        );
        assert_eq!(event_of(&n, &stage_record("unlock", Some("x"))), None);
        // an old list keeps its meaning: the deploy events, not the new ones
        n.notify_on = vec![NotifyEvent::Success, NotifyEvent::Failure];
        assert_eq!(event_of(&n, &stage_record("freeze", Some("x"))), None);
        assert_eq!(event_of(&n, &stage_record("unlock", Some("x"))), None);
        assert_eq!(event_of(&n, &rollback), Some(NotifyEvent::Success));
        // none given: everything
        let all = Notify::default();
        for action in ["freeze", "unfreeze", "unlock"] {
            assert!(event_of(&all, &stage_record(action, None)).is_some());
        }
    }

    #[test]
    fn a_freeze_problem_names_the_freeze() {
        let n = notify(None, WebhookFormat::Text, Some("exit 4"));
        assert_eq!(
            announce(&n, &stage_record("freeze", Some("x"))),
            ["`notify_command` was not told about the freeze: exit status 4"]
        );
    }

    #[test]
    fn the_message_lists_the_changes_that_went_out() {
        let mut r = record(Outcome::Success);
        assert_eq!(message(&r), summary(&r));
        r.changes = vec![
            crate::changelog::Summary {
                version: "0.81~pr748-191".into(),
                direction: crate::changelog::Direction::Deploy,
                lines: vec!["* Faster \x1b[2Jingest.".into(), "* more".into()],
            },
            crate::changelog::Summary {
                version: "0.80".into(),
                direction: crate::changelog::Direction::Rollback,
                lines: Vec::new(),
            },
        ];
        let m = message(&r);
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[0], summary(&r));
        assert_eq!(lines[1], "  + 0.81~pr748-191: * Faster \\x1b[2Jingest.");
        assert_eq!(lines[2], "  - 0.80: ");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn a_text_webhook_gets_the_summary() {
        let (url, got) = server(200);
        let problems = announce(
            &notify(Some(url), WebhookFormat::Text, None),
            &record(Outcome::Success),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let (line, headers, body) = got.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(line.starts_with("POST /hook/SECRET HTTP/1.1"), "{line}");
        assert!(headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: text/plain; charset=utf-8")));
        assert_eq!(body, summary(&record(Outcome::Success)));
    }

    #[test]
    fn a_slack_webhook_gets_json() {
        let (url, got) = server(200);
        let problems = announce(
            &notify(Some(url), WebhookFormat::Slack, None),
            &record(Outcome::Started),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let (_, headers, body) = got.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: application/json")));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["text"], summary(&record(Outcome::Started)));
    }

    #[test]
    fn a_failing_webhook_is_a_problem_that_does_not_show_its_token() {
        let (url, got) = server(500);
        let problems = announce(
            &notify(Some(url.clone()), WebhookFormat::Text, None),
            &record(Outcome::Failed),
        );
        got.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("HTTP 500"), "{problems:?}");
        assert!(problems[0].contains("the failure"), "{problems:?}");
        assert!(!problems[0].contains("SECRET") && !problems[0].contains("secret"));
        // nobody listening
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let problems = announce(
            &notify(
                Some(format!("http://127.0.0.1:{port}/SECRET")),
                WebhookFormat::Text,
                None,
            ),
            &record(Outcome::Success),
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!problems[0].contains("SECRET"), "{problems:?}");
    }

    #[test]
    fn the_command_gets_the_record_as_json_and_its_failure_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got.json");
        let command = format!("cat > '{}'", out.display());
        let problems = announce(
            &notify(None, WebhookFormat::Text, Some(&command)),
            &record(Outcome::Success),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let got: Record = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(got, record(Outcome::Success));
        let problems = announce(
            &notify(None, WebhookFormat::Text, Some("echo nope >&2; exit 3")),
            &record(Outcome::Success),
        );
        assert_eq!(
            problems,
            ["`notify_command` was not told about the success: exit status 3: nope"]
        );
    }

    #[test]
    fn a_slack_webhook_gets_its_markup_escaped() {
        let (url, got) = server(200);
        let mut r = record(Outcome::Success);
        r.changes = vec![crate::changelog::Summary {
            version: "0.81".into(),
            direction: crate::changelog::Direction::Deploy,
            lines: vec!["* <!channel> see <https://evil.example|the docs> & more".into()],
        }];
        let problems = announce(&notify(Some(url), WebhookFormat::Slack, None), &r);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, _, body) = got.recv_timeout(Duration::from_secs(10)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.ends_with(
                "+ 0.81: * &lt;!channel&gt; see &lt;https://evil.example|the docs&gt; &amp; more"
            ),
            "{text}"
        );
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        // plain text is the text itself
        assert_eq!(
            webhook_body(WebhookFormat::Text, "a <b> & c").1,
            b"a <b> & c".to_vec()
        );
    }

    /// Whether process `pid` is gone (or a zombie about to be reaped).
    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    /// Wait (up to a generous 30 s) for process `pid` to be gone.
    fn poll_gone(pid: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !gone(pid) {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Run `command` with `input` in a thread, within a bound of one
    /// second; its answer, or a panic if the caller waited past the bound
    /// and the grace to end it (with a wide margin for a loaded machine).
    fn bounded(command: String, input: Vec<u8>) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(run_bounded(&command, &input, Duration::from_secs(1)));
        });
        rx.recv_timeout(Duration::from_secs(1) + crate::transport::END_GRACE * 6)
            .expect("the notification returned after its bound")
    }

    #[test]
    fn a_command_that_does_not_read_a_big_record_is_ended_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        // more than a pipe holds (64 KiB): writing it blocks until read
        let input = vec![b'x'; 300 * 1024];
        let answer = bounded(
            format!("sleep 600 & echo $! > '{}'; sleep 600", pid.display()),
            input,
        );
        let e = answer.unwrap_err();
        assert!(e.starts_with("it ran longer than 1s and was ended"), "{e}");
        let child = std::fs::read_to_string(&pid).unwrap();
        assert!(
            poll_gone(child.trim()),
            "its child {child} is still running"
        );
    }

    #[test]
    fn nothing_a_command_starts_outlives_it() {
        let dir = tempfile::tempdir().unwrap();
        let pid = dir.path().join("pid");
        let answer = bounded(
            format!(
                "sleep 600 </dev/null >/dev/null 2>&1 & echo $! > '{}'; exit 0",
                pid.display()
            ),
            vec![b'x'; 300 * 1024],
        );
        assert_eq!(answer, Ok(()));
        let child = std::fs::read_to_string(&pid).unwrap();
        assert!(
            poll_gone(child.trim()),
            "its child {child} is still running"
        );
    }

    #[test]
    fn only_the_events_asked_for_are_announced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ran");
        let mut n = notify(
            None,
            WebhookFormat::Text,
            Some(&format!("touch '{}'", out.display())),
        );
        n.notify_on = vec![NotifyEvent::Failure];
        assert!(announce(&n, &record(Outcome::Success)).is_empty());
        assert!(announce(&n, &record(Outcome::Refused)).is_empty());
        assert!(!out.exists());
        assert!(announce(&n, &record(Outcome::Partial)).is_empty());
        assert!(out.exists());
    }
}
