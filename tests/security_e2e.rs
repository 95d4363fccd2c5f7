//! End-to-end tests of issue 24 ("secrets and trust"), each on the
//! testbed's real hosts: the attack or leak is reproduced, and what the
//! hosts and the history show is checked. Named after the items.

mod common;

use common::cli::{deployer, two_stages, NEW, OLD};

const NEWER: &str = "0.82~pr760-200";

/// Issue 24 item 1 (run directories): a run's log (apt's and the
/// maintainer scripts' full output) is `0640 root:adm` in a `0750
/// root:adm` directory, as apt keeps the same text, so the deploy user
/// cannot read it without sudo; the runs are pruned to the last
/// `detach::RUNS_KEPT`, finished runs only.
#[test]
fn sec_item1_run_logs_are_root_and_adm_only_and_pruned() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    let kept = deployer::detach::RUNS_KEPT;
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    // earlier runs, finished, and one that never ended (died with its host)
    let extra = 4;
    let made = tb.exec(
        "test-1",
        &format!(
            "set -e; install -d -m 0750 -g adm /var/lib/deployer/runs; cd /var/lib/deployer/runs
             for i in $(seq 10 {}); do d=20200101T0000${{i}}Z-1-00-install; mkdir $d; echo 0 > $d/status; done
             mkdir 20190101T000000Z-1-00-install",
            9 + kept + extra
        ),
    );
    assert!(made.status.success(), "{made:?}");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let listing = tb.exec("test-1", "ls -1 /var/lib/deployer/runs");
    let runs: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(runs.len(), kept + 1, "{runs:?}");
    assert!(
        runs.contains(&"20190101T000000Z-1-00-install".to_string()),
        "an unfinished run is kept: {runs:?}"
    );
    assert!(
        !runs.contains(&"20200101T000010Z-1-00-install".to_string()),
        "the oldest finished run is gone: {runs:?}"
    );
    let run = runs
        .iter()
        .find(|r| {
            r.ends_with("-install") && !r.starts_with("20190101") && !r.starts_with("20200101")
        })
        .unwrap_or_else(|| panic!("the deploy's run: {runs:?}"));
    let stat = tb.exec(
        "test-1",
        &format!(
            "cd /var/lib/deployer/runs && stat -c '%a %U:%G %n' . {run} {run}/log {run}/status"
        ),
    );
    assert_eq!(
        String::from_utf8_lossy(&stat.stdout),
        format!("750 root:adm .\n750 root:adm {run}\n640 root:adm {run}/log\n640 root:adm {run}/status\n"),
        "{stat:?}"
    );
    let log = tb
        .read_file("test-1", &format!("/var/lib/deployer/runs/{run}/log"))
        .unwrap();
    assert!(log.contains("Setting up fastpath"), "{log}");
    let peek = tb.ssh(
        "test-1",
        "deployer",
        &format!("cat /var/lib/deployer/runs/{run}/log"),
    );
    assert!(
        !peek.status.success(),
        "the deploy user reads the log without sudo: {peek:?}"
    );

    // a second deploy: still the last `kept`, plus the unfinished one
    tb.publish("fastpath", NEWER);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "{out}{err}");
    let listing = tb.exec("test-1", "ls -1 /var/lib/deployer/runs");
    let after = String::from_utf8_lossy(&listing.stdout).lines().count();
    assert_eq!(after, kept + 1, "{listing:?}");
}
