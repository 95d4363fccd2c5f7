//! End-to-end: `--json` on the commands that change hosts, on the
//! testbed's real hosts. Stdout carries one JSON document (the history
//! record, or the plan of a dry run); the progress goes to stderr.

use crate::common;

use common::cli::{deployer, two_stages, NEW, OLD};
use serde_json::Value;

fn parse(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON document ({e}): {out}"))
}

#[test]
fn deploy_dry_run_and_freeze_print_json_on_stdout() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    // the result, with --json before the command
    let (code, out, err) = deployer(&tb, &["--json", "deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let record = parse(&out);
    assert_eq!(record["outcome"], "success");
    assert_eq!(record["version"], NEW);
    let hosts = record["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert!(hosts
        .iter()
        .all(|h| h["result"] == "changed" && h["from"] == OLD));
    assert!(err.contains("After:"), "{err}");

    // the plan of a rollback (the deploy above updated apt's lists)
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", OLD, "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let plan = parse(&out);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["version"], OLD);
    assert_eq!(plan["stage"], "test");
    assert_eq!(plan["steps"].as_array().unwrap().len(), 2);
    assert_eq!(plan["steps"][0]["host"], "test-1");
    assert_eq!(plan["steps"][0]["from"]["version"], NEW);
    assert_eq!(plan["steps"][0]["downgrade"], true);
    assert!(plan["steps"][0]["commands"][0]
        .as_str()
        .unwrap()
        .contains("apt-get"));
    assert!(!plan["steps"][0]["apt"].as_array().unwrap().is_empty());
    assert_eq!(plan["batches"][0], serde_json::json!(["test-1"]));
    assert!(
        err.contains("Dry run: nothing was changed"),
        "progress on stderr: {err}"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));

    // freeze, and a refusal: its record is the document, the error on stderr
    let (code, out, err) = deployer(&tb, &["freeze", "prod", "--reason", "incident 7", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let record = parse(&out);
    assert_eq!(record["action"], "freeze");
    assert_eq!(record["reason"], "incident 7");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", NEW, "--yes", "--json"]);
    assert_eq!(code, 6, "{out}{err}");
    let refused = parse(&out);
    assert_eq!(refused["outcome"], "refused", "{out}");
    assert_eq!(refused["action"], "deploy", "{out}");
    assert_eq!(refused["stage"], "prod", "{out}");
    assert!(
        refused["reason"].as_str().unwrap().contains("frozen"),
        "{out}"
    );
    assert_eq!(
        refused,
        common::cli::last(&tb),
        "the document is the history record"
    );
    assert!(err.contains("frozen"), "{err}");
}

/// `--quiet`: a deploy that goes well prints nothing; one that fails still
/// reports what happened, with the host's own words.
#[test]
fn quiet_deploys_speak_only_of_failures() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions(
        "test-1",
        &[("fastpath", Some(OLD)), ("badpostinst", Some("1.0-1"))],
    );
    let (code, out, err) = deployer(&tb, &["-q", "deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let (code, out, err) = deployer(&tb, &["deploy", "badpostinst", "test", "2.0-1", "--quiet"]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(out.contains("FAILED after changing hosts"), "{out}");
    assert!(out.contains("missing /etc/badpostinst.conf"), "{out}");
    assert!(!out.contains("Before:"), "{out}");
}
