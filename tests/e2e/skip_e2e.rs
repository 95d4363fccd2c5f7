//! End-to-end tests of issue 19 item 3, hosts that are down: a deploy
//! refuses a stage with a host down unless told `--skip-unreachable`; then
//! it changes the hosts that answer and records the others as `skipped`;
//! `--exclude HOST` leaves a named host alone. Read back on the testbed's
//! hosts: dpkg, the hosts' own history, the status view, the order guard.

use crate::common;

use common::cli::{deployer, host_records, host_result, last, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// Where the badges go on the hosts, when a test asks for them.
const BADGES: &str = "/var/www/package_badges";

/// A stage `test` of three hosts and a `prod` of one, every host on OLD;
/// `extra_env` goes into `[environment]`.
fn three_and_one(extra_env: &str) -> Option<Testbed> {
    let tb = Testbed::start(&[("test", 3), ("prod", 1)])?;
    tb.write_config(&["fastpath"], extra_env, "");
    for h in ["test-1", "test-2", "test-3", "prod-1"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
        // what apt can install is read from the lists, even in a dry run
        assert!(tb.exec(h, "apt-get update -q").status.success());
    }
    Some(tb)
}

/// The entry of `host` in `record`.
fn entry<'r>(record: &'r Value, host: &str) -> &'r Value {
    record["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no hosts in {record}"))
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("{host} not in {record}"))
}

/// When dpkg last wrote the package's file list on `host`: a reinstall
/// changes it.
fn dpkg_touched(tb: &Testbed, host: &str) -> String {
    let out = tb.exec(host, "stat -c %z /var/lib/dpkg/info/fastpath.list");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The state of `fastpath`'s cell of `stage` in `deployer status --json`.
fn cell(tb: &Testbed, stage: &str) -> Value {
    let (_, out, err) = deployer(tb, &["status", "--json"]);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let package = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fastpath")
        .expect("fastpath in the status")
        .clone();
    package["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["stage"] == stage)
        .expect("the stage's cell")
        .clone()
}

/// A host down: refused without the flag; with `--skip-unreachable` the
/// others change and it is recorded as skipped, here and on the hosts; the
/// order guard holds the next stage while it is down and while it is back
/// but behind; once back, the status view shows the drift, and the same
/// command changes that host alone.
#[test]
fn a_host_down_is_skipped_recorded_and_finished_later() {
    let Some(tb) = three_and_one("") else {
        return;
    };
    let down = tb.stop_sshd("test-2");

    // never implicit
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("refusing a partial deploy"), "{err}");
    assert!(err.contains("test-2"), "{err}");
    assert!(err.contains("--skip-unreachable"), "the way on: {err}");
    for h in ["test-1", "test-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
    }
    assert_eq!(last(&tb)["outcome"], "refused");

    // the plan shows who is left out, and why
    let (code, out, err) = deployer(
        &tb,
        &[
            "deploy",
            "fastpath",
            "test",
            NEW,
            "--skip-unreachable",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let left = plan["left_out"].as_array().expect("left_out");
    assert_eq!(left.len(), 1, "{plan}");
    assert_eq!(left[0]["host"], "test-2");
    assert_eq!(left[0]["reason"], "down");
    assert!(left[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(err.contains("left out: test-2 (down: "), "{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));

    // with the flag: the two that answer change, the canary among them
    let (code, out, err) = deployer(
        &tb,
        &[
            "deploy",
            "fastpath",
            "test",
            NEW,
            "--skip-unreachable",
            "--json",
        ],
    );
    assert_eq!(code, 3, "the stage is not done: {out}{err}");
    assert!(err.contains("Batch 1/2: test-1\n"), "{err}");
    assert!(err.contains("the stage is not done"), "{err}");
    for h in ["test-1", "test-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
    let record: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let local = last(&tb);
    assert_eq!(local["id"], record["id"]);
    assert_eq!(local["outcome"], "success");
    for r in [&record, &local] {
        assert_eq!(host_result(r, "test-2"), "skipped");
        assert!(
            entry(r, "test-2")["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("down: ")),
            "{r}"
        );
        assert_eq!(host_result(r, "test-1"), "changed");
    }
    // the hosts that answered keep the record, each its own part of it,
    // its reason naming the one skipped
    for h in ["test-1", "test-3"] {
        let kept = host_records(&tb, h);
        let ours: Vec<&Value> = kept.iter().filter(|r| r["id"] == record["id"]).collect();
        assert_eq!(ours.len(), 2, "{h}: started and final: {kept:?}");
        for r in &ours {
            assert_eq!(r["hosts"].as_array().map(Vec::len), Some(1), "{h}: {r}");
            assert!(r["hosts"][0]["host"] == *h, "{h}: {r}");
        }
        assert_eq!(host_result(ours[1], h), "changed", "{h}");
        assert!(
            ours[1]["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("left out: test-2 (down: ")),
            "{h}: {}",
            ours[1]
        );
    }
    let done_on_1 = dpkg_touched(&tb, "test-1");

    // the stage order guard: a host down is not at the version
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", NEW, "--yes"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("test-2 (test) did not answer"), "{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));

    // back, but behind: drift inside the stage, and the guard still holds
    down.undo();
    let test = cell(&tb, "test");
    assert_eq!(test["state"], "mixed", "{test}");
    assert_eq!(test["lowest"], OLD, "{test}");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", NEW, "--yes"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains(&format!("test-2 (test) runs {OLD}")), "{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));

    // the same command again changes only the host not yet there
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEW, "--skip-unreachable"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(NEW));
    let again = last(&tb);
    assert_eq!(host_result(&again, "test-2"), "changed");
    for h in ["test-1", "test-3"] {
        assert_eq!(host_result(&again, h), "unchanged", "{again}");
    }
    assert_eq!(
        dpkg_touched(&tb, "test-1"),
        done_on_1,
        "test-1 not reinstalled"
    );
    assert_ne!(cell(&tb, "test")["state"], "mixed");

    // and the guard lets the next stage have it
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", NEW, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(NEW));
}

/// `--exclude HOST` leaves a named host alone (not the canary, no record
/// or badge written on it), is refused for a name that is not a host of the stage, and
/// may not leave out every host; the excluded host is finished later by
/// the same command without the flag.
#[test]
fn an_excluded_host_is_left_alone() {
    let Some(tb) = three_and_one(&format!("badges_path = {BADGES}")) else {
        return;
    };
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    let badge = |host: &str| {
        let out = tb.exec(host, &format!("stat -c %i {BADGES}/fastpath.svg"));
        assert!(out.status.success(), "{host}: no badge");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let badge_of_1 = badge("test-1");

    // usage errors name the value and the hosts that would do
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEW, "--exclude", "test-9"],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("`--exclude test-9`"), "{err}");
    assert!(
        err.contains("hosts of `test`: test-1, test-2, test-3"),
        "{err}"
    );
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEW, "--exclude", "prod-1"],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("in stage `prod`, not in `test`"), "{err}");
    let mut every = vec!["deploy", "fastpath", "test", NEW];
    for h in ["test-1", "test-2", "test-3"] {
        every.extend(["--exclude", h]);
    }
    let (code, out, err) = deployer(&tb, &every);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("every host of `test` would be left out"),
        "{err}"
    );
    for h in ["test-1", "test-2", "test-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
    }

    // the first host excluded: the canary is the first one taking part
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEW, "--exclude", "test-1"],
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("Batch 1/2: test-2\n"), "{out}");
    assert!(
        out.contains(&format!(
            "left out: test-1 (excluded; runs {OLD}; not locked, not changed)"
        )),
        "{out}"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    for h in ["test-2", "test-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }
    let record = last(&tb);
    assert_eq!(host_result(&record, "test-1"), "skipped");
    assert_eq!(entry(&record, "test-1")["message"], "excluded");
    assert_eq!(entry(&record, "test-1")["from"], OLD);
    assert!(
        host_records(&tb, "test-1")
            .iter()
            .all(|r| r["id"] != record["id"]),
        "nothing was written on the excluded host"
    );
    assert!(
        out.contains("Badges refreshed on 2 hosts of `test`"),
        "{out}"
    );
    assert_eq!(
        badge("test-1"),
        badge_of_1,
        "test-1's badge was not rewritten"
    );
    let done_on_2 = dpkg_touched(&tb, "test-2");

    // without the flag, the same command finishes the stage
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let again = last(&tb);
    assert_eq!(host_result(&again, "test-1"), "changed");
    assert_eq!(host_result(&again, "test-2"), "unchanged");
    assert_eq!(
        dpkg_touched(&tb, "test-2"),
        done_on_2,
        "test-2 not reinstalled"
    );
}
