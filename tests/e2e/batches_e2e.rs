//! End-to-end tests of batches in percent and the failure budget
//! (`batch_size = 25%`, `max_failures`) on real Debian hosts: the order in
//! which hosts were changed is read from the times their health checks
//! wrote on each host, the versions from dpkg, the outcome from the local
//! history and the records the hosts keep.

use crate::common;

use common::cli::{deployer, host_last, host_result, last, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// The health check of these tests: it writes when it starts and ends
/// (nanoseconds since the epoch) into the host's `/tmp/checked`, and fails
/// where the test created `/tmp/unhealthy`.
const CHECK: &str = "[package:fastpath]\nhealth_check = date +%s%N >> /tmp/checked; sleep 0.2; \
                     date +%s%N >> /tmp/checked; test ! -e /tmp/unhealthy";

/// One stage `test` of `hosts` hosts running OLD, their apt lists
/// current, with `extra_env` in
/// `[environment]`, `extra_stage` in `[stage:test]` and [`CHECK`].
fn stage(hosts: usize, extra_env: &str, extra_stage: &str) -> Option<Testbed> {
    let tb = Testbed::start(&[("test", hosts)])?;
    let path = tb.write_config(&["fastpath"], extra_env, CHECK);
    let text = std::fs::read_to_string(&path).expect("deployer.ini");
    let (head, tail) = text.split_once("\n[package:").expect("a package section");
    std::fs::write(&path, format!("{head}\n{extra_stage}\n\n[package:{tail}")).unwrap();
    for n in 1..=hosts {
        let host = format!("test-{n}");
        tb.set_versions(&host, &[("fastpath", Some(OLD))]);
        // current lists, for the dry run (which never updates them)
        assert!(tb.exec(&host, "apt-get update -q").status.success());
    }
    Some(tb)
}

/// When `host`'s health check started and ended, as it wrote them.
fn checked(tb: &Testbed, host: &str) -> (u128, u128) {
    let text = tb
        .read_file(host, "/tmp/checked")
        .unwrap_or_else(|| panic!("{host} ran no health check"));
    let times: Vec<u128> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(times.len(), 2, "{host} checked once: {text}");
    (times[0], times[1])
}

#[test]
fn a_quarter_of_eight_hosts_goes_two_by_two_and_a_failure_within_the_budget_goes_on() {
    let Some(tb) = stage(
        8,
        "batch_size = 25%\nrollback_on_failure = yes",
        "max_failures = 25%",
    ) else {
        return;
    };
    tb.exec("test-4", "touch /tmp/unhealthy");

    // the plan shows the batches and the budget
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEW, "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).expect("the plan as JSON");
    let hosts = |b: &[&str]| b.iter().map(|h| Value::from(*h)).collect::<Vec<_>>();
    let batches = [
        &["test-1"][..],
        &["test-2", "test-3"],
        &["test-4", "test-5"],
        &["test-6", "test-7"],
        &["test-8"],
    ];
    assert_eq!(
        plan["batches"],
        Value::Array(batches.iter().map(|b| Value::Array(hosts(b))).collect())
    );
    assert_eq!(plan["per_batch"], 2);
    assert_eq!(plan["failures_allowed"], 2);
    assert!(
        err.contains("batches: the canary alone, then 2 host(s) at a time (batch_size 25% of 8 host(s) taking part, rounded up)"),
        "{err}"
    );
    for n in 1..=8 {
        let host = format!("test-{n}");
        assert_eq!(tb.installed(&host, "fastpath").as_deref(), Some(OLD));
    }

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 8, "the partial status: {out}{err}");
    for (b, batch) in batches.iter().enumerate() {
        let line = format!("Batch {}/5: {}\n", b + 1, batch.join(", "));
        assert!(out.contains(&line), "{line}{out}");
    }
    assert!(
        out.contains("1 host(s) failed so far, within the failure budget of 2 (max_failures 25%): the rollout goes on."),
        "{out}"
    );
    // each batch's checks ended before the next batch's began
    for pair in batches.windows(2) {
        let ended = pair[0].iter().map(|h| checked(&tb, h).1).max().unwrap();
        let began = pair[1].iter().map(|h| checked(&tb, h).0).min().unwrap();
        assert!(ended < began, "{pair:?}: {ended} >= {began}");
    }
    // dpkg: the failed host is back on OLD (the rollback policy), the
    // others run NEW
    for n in 1..=8 {
        let host = format!("test-{n}");
        let want = if n == 4 { OLD } else { NEW };
        assert_eq!(
            tb.installed(&host, "fastpath").as_deref(),
            Some(want),
            "{host}"
        );
    }
    let r = last(&tb);
    assert_eq!(r["outcome"], "partial");
    assert_eq!(
        r["failure_budget"],
        serde_json::json!({"max_failures": "25%", "allowed": 2, "failed": 1, "halted": false})
    );
    assert_eq!(host_result(&r, "test-4"), "rolled-back");
    assert_eq!(host_result(&r, "test-8"), "changed");
    // the hosts keep the same record, each host its own part of it
    let kept = host_last(&tb, "test-8");
    assert_eq!(kept["id"], r["id"]);
    assert_eq!(kept["failure_budget"], r["failure_budget"]);
    assert_eq!(host_result(&kept, "test-8"), "changed");
    assert_eq!(kept["hosts"].as_array().map(Vec::len), Some(1), "{kept}");
    assert_eq!(
        host_result(&host_last(&tb, "test-4"), "test-4"),
        "rolled-back"
    );
}

#[test]
fn a_failure_beyond_the_budget_halts_the_rollout_and_rolls_back() {
    let Some(tb) = stage(
        4,
        "rollback_on_failure = yes",
        "batch_size = 50%\nmax_failures = 1",
    ) else {
        return;
    };
    // the second batch (test-2, test-3) fails on both hosts: 2 > 1
    for h in ["test-2", "test-3"] {
        tb.exec(h, "touch /tmp/unhealthy");
    }
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(out.contains("Batch 2/3: test-2, test-3\n"), "{out}");
    assert!(
        out.contains(
            "2 host(s) failed, beyond the failure budget of 1 (max_failures 1): the rollout halts."
        ),
        "{out}"
    );
    assert!(!out.contains("Batch 3/3"), "{out}");
    for h in ["test-1", "test-2", "test-3", "test-4"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
    }
    assert!(
        tb.read_file("test-4", "/tmp/checked").is_none(),
        "test-4 was never deployed"
    );
    let r = last(&tb);
    assert_eq!(r["outcome"], "partial");
    assert_eq!(r["failure_budget"]["failed"], 2);
    assert_eq!(r["failure_budget"]["halted"], true);
    for h in ["test-1", "test-2", "test-3"] {
        assert_eq!(host_result(&r, h), "rolled-back", "{h}");
    }
    assert_eq!(host_result(&r, "test-4"), "untouched");
}
