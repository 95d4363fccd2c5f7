//! End-to-end: a deploy on the testbed's real hosts announces its start and
//! its outcome through `[notify]`: a POST to a webhook served here, and a
//! local command that gets each history record on stdin. A webhook that
//! fails is a warning, never a failed deploy.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use common::cli::{deployer, history, two_stages, webhook_server as server, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// A testbed set up by [`deployed_with_notify`].
struct Notified {
    tb: Testbed,
    /// The webhook's POSTs: request line and body.
    posts: Receiver<(String, String)>,
    /// The file `notify_command` appends each record to.
    log: PathBuf,
    /// The deploy's stderr.
    err: String,
}

/// A testbed of two stages whose `[notify]` posts to a webhook served
/// here and appends each record to a file (`name` in the temporary
/// directory), with `extra` lines; then `fastpath` deployed on `test`.
fn deployed_with_notify(name: &str, extra: &str) -> Option<Notified> {
    let (url, posts) = server(200);
    let log = std::env::temp_dir().join(format!("deployer-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let sections = format!(
        "[notify]\nwebhook_url = {url}\nwebhook_allow_http = yes\nnotify_command = cat >> {}\n{extra}",
        log.display()
    );
    let tb = two_stages(1, "", &sections)?;
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    Some(Notified {
        tb,
        posts,
        log,
        err,
    })
}

/// The records the command was given, from the file it appended them
/// to (removed then).
fn given(log: &Path) -> Vec<Value> {
    let records = std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_file(log);
    records
}

#[test]
fn a_deploy_announces_its_start_and_its_outcome() {
    let Some(Notified {
        tb: _tb,
        posts,
        log,
        err,
    }) = deployed_with_notify("notify", "")
    else {
        return;
    };
    assert!(!err.contains("notification"), "{err}");
    let got: Vec<(String, String)> = (0..2)
        .map(|_| posts.recv_timeout(Duration::from_secs(10)).expect("a POST"))
        .collect();
    assert!(got[0].0.starts_with("POST /hook "), "{got:?}");
    assert!(got[0]
        .1
        .contains(": deploy fastpath 0.81~pr748-191 on test: started on 1 host"));
    assert!(
        got[1]
            .1
            .lines()
            .next()
            .unwrap()
            .ends_with("on test: success (1 changed)"),
        "{got:?}"
    );
    // under the summary, the changelog entries that went out
    for (_, body) in &got {
        let changes: Vec<&str> = body.lines().skip(1).collect();
        assert_eq!(
            changes,
            ["  + 0.81~pr748-191: * Release 0.81~pr748-191 of fastpath."],
            "{got:?}"
        );
    }
    let records = given(&log);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["outcome"], "started");
    assert_eq!(records[1]["outcome"], "success");
    assert_eq!(records[0]["id"], records[1]["id"]);
    assert_eq!(records[1]["hosts"][0]["to"], NEW);
    assert_eq!(records[1]["changes"][0]["version"], NEW);
}

#[test]
fn a_failing_webhook_is_a_warning_and_the_deploy_goes_on() {
    let (url, posts) = server(503);
    let sections = format!(
        "[notify]\nwebhook_url = {url}\nwebhook_allow_http = yes\nnotify_on = success failure\n"
    );
    let Some(tb) = two_stages(1, "", &sections) else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let (_, body) = posts.recv_timeout(Duration::from_secs(10)).expect("a POST");
    assert!(body.contains("success"), "only the outcome: {body}");
    assert!(
        err.contains("warning: notification: the webhook at `http://127.0.0.1:")
            && err.contains("was not told about the success: it answered HTTP 503"),
        "{err}"
    );
}

#[test]
fn freeze_unfreeze_and_unlock_are_announced_with_who_and_why() {
    // only the stage's changes: the deploy must stay quiet
    let Some(Notified { tb, posts, log, .. }) =
        deployed_with_notify("notify-stage", "notify_on = freeze unfreeze unlock\n")
    else {
        return;
    };
    let steps: [(&[&str], &str, &str); 3] = [
        (
            &["freeze", "prod", "--reason", "incident 42: db failover"],
            "freeze prod: success (1 changed); reason: incident 42: db failover",
            "freeze",
        ),
        (
            &[
                "unlock",
                "prod",
                "--force",
                "--reason",
                "holder's laptop died",
            ],
            "unlock prod: success (0 changed); reason: holder's laptop died",
            "unlock",
        ),
        (
            &["unfreeze", "prod", "--reason", "db is back"],
            "unfreeze prod: success (1 changed); reason: db is back",
            "unfreeze",
        ),
    ];
    for (args, said, _) in &steps {
        let (code, out, err) = deployer(&tb, args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        assert!(!err.contains("notification"), "{err}");
        let (_, body) = posts
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no POST for {args:?}"));
        // who (this machine's user, as the history has it), what, why
        let record = history(&tb).pop().expect("a record");
        let who = format!(
            "deployer: {}@{}: ",
            record["user"].as_str().unwrap(),
            record["machine"].as_str().unwrap()
        );
        assert_eq!(body, format!("{who}{said}"), "{args:?}");
    }
    // the deploy (before) was not announced: only the three POSTs came
    assert!(
        posts.recv_timeout(Duration::from_millis(500)).is_err(),
        "a POST more than asked for"
    );
    let records = given(&log);
    assert_eq!(records.len(), 3, "{records:?}");
    for ((_, _, action), record) in steps.iter().zip(&records) {
        assert_eq!(record["action"], *action, "{records:?}");
        assert_eq!(record["stage"], "prod");
        assert_eq!(record["outcome"], "success");
        assert!(record["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(record["user"].as_str().is_some_and(|u| !u.is_empty()));
    }
    assert_eq!(records[0]["reason"], "incident 42: db failover");
    assert_eq!(records[1]["forced"], true);
    assert_eq!(records[2]["reason"], "db is back");
}

/// Issue 19 item 7: a rollback into a frozen stage is announced as a
/// rollback under freeze, with who and why, at its start and its end; a
/// team following `rollback freeze` gets it and the freeze, not the
/// deploy before them.
#[test]
fn a_rollback_under_freeze_is_announced_as_such() {
    let Some(Notified { tb, posts, log, .. }) =
        deployed_with_notify("notify-rollback", "notify_on = rollback freeze\n")
    else {
        return;
    };
    let (code, out, err) = deployer(&tb, &["freeze", "test", "--reason", "incident 7"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = deployer(
        &tb,
        &[
            "rollback",
            "fastpath",
            "test",
            "--reason",
            "bad release",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let (_, body) = posts
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("only {} POST(s): {bodies:?}", bodies.len()));
        bodies.push(body);
    }
    assert!(
        posts.recv_timeout(Duration::from_millis(500)).is_err(),
        "a POST more than asked for: {bodies:?}"
    );
    let record = history(&tb).pop().expect("a record");
    let who = format!(
        "deployer: {}@{}: ",
        record["user"].as_str().unwrap(),
        record["machine"].as_str().unwrap()
    );
    assert!(
        bodies[0].starts_with(&format!("{who}freeze test: ")),
        "{bodies:?}"
    );
    let rollback = format!("{who}rollback under freeze fastpath {OLD} on test: ");
    assert!(
        bodies[1].starts_with(&format!("{rollback}started on 1 host")),
        "{bodies:?}"
    );
    assert!(
        bodies[2].starts_with(&format!("{rollback}success (1 changed)")),
        "{bodies:?}"
    );
    assert!(bodies[2].contains("bad release"), "why: {bodies:?}");
    let records = given(&log);
    assert_eq!(records.len(), 3, "{records:?}");
    for r in &records[1..] {
        assert_eq!(r["action"], "rollback", "{records:?}");
        assert_eq!(r["under_freeze"], true, "{records:?}");
    }
}
