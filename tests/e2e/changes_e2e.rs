//! End-to-end tests of the changelog review on real Debian hosts (the
//! testbed): the changelog read from the target version's own package
//! (`apt-get download` into a temporary directory, as the login user),
//! shown in the plan of a deploy and of a rollback, kept in the history
//! record, and by `deployer changes`; a package without one is a note.

use crate::common;

use common::cli::{deployer, history, two_stages, two_stages_as, NEW, OLD};
use common::testbed::{HostKind, Publish, Testbed};
use serde_json::Value;

const NEWER: &str = "0.82~pr760-200";

const CHANGELOG: &str = "\
fastpath (0.82~pr760-200) unstable; urgency=high

  * Faster ingest of measurements.
  * Second change of 0.82.
  * Third change of 0.82.
  * Fourth change, not shown in the plan.

 -- Alice Example <alice@example.org>  Mon, 23 Nov 2026 10:00:00 +0000

fastpath (0.81~pr748-191) unstable; urgency=medium

  * What 0.81 brought.

 -- Bob Example <bob@example.org>  Sun, 22 Nov 2026 10:00:00 +0000

fastpath (0.77~pr705-119) unstable; urgency=low

  * What 0.77 brought.

 -- Bob Example <bob@example.org>  Sat, 21 Nov 2026 10:00:00 +0000
";

fn versions(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|e| e["version"].as_str().unwrap().to_string())
        .collect()
}

fn update_lists(tb: &Testbed, hosts: &[&str]) {
    for h in hosts {
        let out = tb.exec(h, "apt-get update -q");
        assert!(out.status.success(), "{out:?}");
    }
}

fn json_of(stdout: &str, stderr: &str) -> Value {
    serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
}

#[test]
fn the_plan_of_a_deploy_shows_the_entries_going_out_and_the_record_keeps_them() {
    the_plan_of_a_deploy_shows_the_changelog_on(HostKind::Bookworm);
}

/// `apt-get download` and the changelog read on Debian 13 (apt 3).
#[test]
fn the_plan_of_a_deploy_shows_the_changelog_on_trixie() {
    the_plan_of_a_deploy_shows_the_changelog_on(HostKind::Trixie);
}

#[test]
fn the_plan_of_a_deploy_shows_the_changelog_on_trixie_with_systemd() {
    the_plan_of_a_deploy_shows_the_changelog_on(HostKind::TrixieSystemd);
}

fn the_plan_of_a_deploy_shows_the_changelog_on(kind: HostKind) {
    let Some(tb) = two_stages_as(kind, 2, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("test-2", &[("fastpath", Some(NEW))]);
    tb.publish_with(
        "fastpath",
        NEWER,
        &Publish {
            changelog: Some(CHANGELOG),
            ..Publish::default()
        },
    );
    update_lists(&tb, &["test-1", "test-2"]);

    // the plan for people
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("hosts run: 0.81~pr748-191 on 1 host, 0.77~pr705-119 on 1 host"),
        "{out}"
    );
    assert!(
        out.contains(
            "0.82~pr760-200 (high) Alice Example <alice@example.org>, Mon, 23 Nov 2026 10:00:00 +0000"
        ),
        "{out}"
    );
    assert!(out.contains("* Faster ingest of measurements."), "{out}");
    assert!(out.contains("(+1 more line)"), "{out}");
    assert!(
        !out.contains("Fourth change"),
        "only the first lines: {out}"
    );
    // test-1 runs 0.77: 0.81 goes out to it; 0.77 itself does not
    assert!(out.contains("* What 0.81 brought."), "{out}");
    assert!(!out.contains("What 0.77 brought"), "{out}");

    // the plan for scripts
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEWER, "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out, &err);
    let changes = &v["changes"];
    assert_eq!(versions(&changes["going_out"]), [NEWER, NEW]);
    assert_eq!(changes["taken_back"], serde_json::json!([]));
    assert_eq!(changes["going_out"][0]["urgency"], "high");
    assert_eq!(
        changes["going_out"][0]["author"],
        "Alice Example <alice@example.org>"
    );
    assert_eq!(
        changes["going_out"][0]["changes"].as_array().unwrap().len(),
        4
    );
    assert_eq!(changes["starting"][0]["from"], NEW);
    assert_eq!(changes["starting"][0]["hosts"], 1);
    assert_eq!(changes["starting"][1]["from"], OLD);
    // the temporary directory is gone from the host the changelog was read on
    let read_on = changes["read_on"].as_str().unwrap().to_string();
    let left = tb.exec(&read_on, "ls /tmp | grep '^tmp\\.' || true");
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "{left:?}"
    );

    // the deploy itself: its record carries the entries that went out
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("* Faster ingest of measurements."), "{out}");
    let records = history(&tb);
    let last = records.last().expect("a record");
    assert_eq!(last["outcome"], "success", "{last}");
    assert_eq!(versions(&last["changes"]), [NEWER, NEW], "{last}");
    assert_eq!(last["changes"][0]["direction"], "deploy");
    assert_eq!(
        last["changes"][0]["lines"][0],
        "* Faster ingest of measurements."
    );
}

#[test]
fn the_plan_of_a_rollback_shows_the_entries_taken_back() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    tb.publish_with(
        "fastpath",
        NEWER,
        &Publish {
            changelog: Some(CHANGELOG),
            ..Publish::default()
        },
    );
    update_lists(&tb, &["test-1", "test-2"]);
    // both hosts run 0.82 (installed through apt, as a deploy does)
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", OLD, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("taken back (rollback), newest first:"),
        "{out}"
    );
    assert!(out.contains("* Faster ingest of measurements."), "{out}");
    assert!(out.contains("* What 0.81 brought."), "{out}");
    assert!(!out.contains("What 0.77 brought"), "{out}");
    assert!(!out.contains("going out"), "{out}");

    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", OLD, "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out, &err);
    assert_eq!(versions(&v["changes"]["taken_back"]), [NEWER, NEW]);
    assert_eq!(v["changes"]["starting"][0]["direction"], "rollback");
    assert_eq!(v["changes"]["starting"][0]["hosts"], 2);
}

#[test]
fn changes_shows_the_review_without_deploying() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    tb.set_versions("prod-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("prod-2", &[("fastpath", Some(OLD))]);
    update_lists(&tb, &["prod-1", "prod-2"]);

    // no version: the one apt would install (NEW, from the base repository,
    // whose default changelog has one entry per version up to it)
    let (code, out, err) = deployer(&tb, &["changes", "fastpath", "prod"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Stage: prod"), "{out}");
    assert!(
        out.contains(&format!("Changes for `fastpath` {NEW}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("hosts run: {OLD} on 2 hosts")),
        "{out}"
    );
    assert!(
        out.contains(&format!("* Release {NEW} of fastpath.")),
        "{out}"
    );
    assert!(!out.contains(&format!("Release {OLD}")), "{out}");

    let (code, out, err) = deployer(&tb, &["changes", "fastpath", "prod", NEW, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v = json_of(&out, &err);
    assert_eq!(v["stage"], "prod");
    assert_eq!(v["version"], NEW);
    assert_eq!(versions(&v["going_out"]), [NEW]);
    assert_eq!(
        v["going_out"][0]["author"],
        "deployer testbed <testbed@example.invalid>"
    );
    assert_eq!(v["notes"], serde_json::json!([]));
    // nothing was installed
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));
    assert!(history(&tb).is_empty(), "changes is not recorded");

    // an unknown version is a note, not a failure
    let (code, out, err) = deployer(&tb, &["changes", "fastpath", "prod", "9.9-1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("note: no changelog for fastpath 9.9-1: the package could not be fetched"),
        "{out}"
    );
}

#[test]
fn a_package_without_a_changelog_is_a_note_not_a_failure() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.publish_with(
        "fastpath",
        NEWER,
        &Publish {
            no_changelog: true,
            ..Publish::default()
        },
    );
    update_lists(&tb, &["test-1"]);
    let (code, out, err) = deployer(&tb, &["changes", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "note: no changelog for fastpath 0.82~pr760-200: the package carries no changelog"
        ),
        "{out}"
    );
    // the deploy goes on, with the note in its plan
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("the package carries no changelog"), "{out}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEWER));
    let records = history(&tb);
    assert!(records.last().unwrap().get("changes").is_none());
}
