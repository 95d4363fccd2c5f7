//! End-to-end: the service step of a deploy on the testbed's real hosts.
//!
//! On the plain hosts (a bash init, no systemd) the generic path runs:
//! `restart_command` and `logs_command` (a restart that writes a log file,
//! a log that is that file), a failing restart failing its host and
//! triggering the rollback, the canary's log lines shown with its name,
//! `--follow-logs` streaming them beside the health check, the record
//! keeping the restart outcomes and a failed host's last log lines; and the
//! note a host without systemd gets when `units` is set.
//!
//! On the systemd hosts (systemd as PID 1, journald) the same steps run
//! with `units` and nothing else: `systemctl restart` of a real unit the
//! package ships (`Publish::service`), its journal on the canary, a unit
//! that fails to start rolled back with its journal lines in the report
//! and the record, and `journalctl -f` following it during the health
//! check and gone afterwards; on bookworm's systemd 252 and trixie's 257.
//! The orchestration is unit-tested with the fake transport
//! (`deploy::tests`).

use crate::common;

use std::time::Duration;

use common::cli::{deployer, host_result, last, two_stages, NEW, OLD};
use common::testbed::{poll, HostKind, Publish, Testbed};
use serde_json::Value;

/// The restart: appends to the service's log file; fails (exit 3, after
/// logging why) on a host where `/tmp/fastpath-broken` exists, when it
/// runs the new version (NEW is 0.81~…).
const SERVICE: &str = "[package:fastpath]\nrestart = yes\n\
    restart_command = if test -e /tmp/fastpath-broken && dpkg-query -W -f='${Version}' fastpath | grep -q '^0[.]81'; then echo \"fastpath: cannot bind :8080\" >> /tmp/fastpath.log; exit 3; fi; echo \"fastpath restarted on $(hostname)\" >> /tmp/fastpath.log\n\
    logs_command = cat /tmp/fastpath.log\n";

fn entry(record: &Value, host: &str) -> Value {
    record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .cloned()
        .unwrap_or_else(|| panic!("{host} not in {record}"))
}

#[test]
fn restarts_run_on_every_host_and_the_canary_shows_its_log() {
    let Some(tb) = two_stages(2, "", SERVICE) else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("test-1 log | fastpath restarted on test-1"),
        "{all}"
    );
    assert!(
        !all.contains("test-2 log |"),
        "only the canary's log is shown: {all}"
    );
    for h in ["test-1", "test-2"] {
        let log = tb.read_file(h, "/tmp/fastpath.log").unwrap_or_default();
        assert_eq!(log, format!("fastpath restarted on {h}\n"), "{h}");
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW));
    }
    let record = last(&tb);
    for h in ["test-1", "test-2"] {
        let e = entry(&record, h);
        assert_eq!(e["restart"]["ok"], true, "{e}");
        assert_eq!(e["restart"]["what"], "restart_command", "{e}");
        assert!(e.get("log_tail").is_none(), "{e}");
    }
}

#[test]
fn a_failing_restart_fails_the_host_and_the_rollback_follows() {
    let Some(tb) = two_stages(2, "rollback_on_failure = yes", SERVICE) else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let broken = tb.exec("test-2", "touch /tmp/fastpath-broken");
    assert!(broken.status.success());
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_ne!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    // the report shows the failed host's last log lines, with its name
    assert!(
        all.contains("test-2 log | fastpath: cannot bind :8080"),
        "{all}"
    );
    assert!(
        all.contains("test-2: restart of restart_command failed (exit status 3); rolled back"),
        "{all}"
    );
    assert!(all.contains("    restarted restart_command\n"), "{all}");
    for h in ["test-1", "test-2"] {
        assert_eq!(
            tb.installed(h, "fastpath").as_deref(),
            Some(OLD),
            "{h} is rolled back"
        );
    }
    let record = last(&tb);
    assert_eq!(host_result(&record, "test-2"), "rolled-back", "{record}");
    let e = entry(&record, "test-2");
    assert_eq!(e["restart"]["ok"], false, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("restart of restart_command failed (exit status 3)"),
        "{e}"
    );
    assert_eq!(
        e["log_tail"],
        serde_json::json!(["fastpath: cannot bind :8080"]),
        "{e}"
    );
    assert_eq!(entry(&record, "test-1")["restart"]["ok"], true);
    // the rollback restarted the service on the version put back
    let log = tb
        .read_file("test-2", "/tmp/fastpath.log")
        .unwrap_or_default();
    assert_eq!(
        log, "fastpath: cannot bind :8080\nfastpath restarted on test-2\n",
        "{log}"
    );
}

#[test]
fn follow_logs_streams_the_canary_log_during_the_health_check() {
    // the health check waits until the log follower runs, then logs a
    // line: only a follower running beside the check can show it
    let sections = "[package:fastpath]\n\
        logs_command = touch /tmp/fastpath.log; exec tail -n 0 -f /tmp/fastpath.log\n\
        health_check = i=0; until grep -qx tail /proc/[0-9]*/comm 2>/dev/null; do i=$((i+1)); test $i -lt 100 || exit 9; sleep 0.1; done; echo \"health probe on $(hostname)\" >> /tmp/fastpath.log\n";
    let Some(tb) = two_stages(1, "", sections) else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "--follow-logs", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("test-1 log | health probe on test-1"), "{all}");
    assert!(
        tb.wait_no_process("test-1", "tail -n 0 -f", Duration::from_secs(10)),
        "the log follower is stopped after the check: {:?}",
        tb.processes("test-1")
    );
}

#[test]
fn units_on_a_host_without_systemd_get_a_clear_note() {
    let sections = "[package:fastpath]\nunits = fastpath.service\n";
    let Some(tb) = two_stages(1, "", sections) else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("note: host `test-1` does not run systemd"),
        "{all}"
    );
    assert!(
        all.contains("set `restart_command` and `logs_command`"),
        "{all}"
    );
    assert!(entry(&last(&tb), "test-1").get("restart").is_none());
}

/// `fastpath` versions with a real systemd unit (`Publish::service`): the
/// one the hosts start with, the one deployed, and one whose unit fails to
/// start (`Publish::service_fail`).
const UNIT_OLD: &str = "0.82-1";
const UNIT_NEW: &str = "0.83-1";
const UNIT_BROKEN: &str = "0.84-1";

/// Stages `test` and `prod` of `n` systemd hosts of `kind`, `fastpath`
/// configured with `sections`, its unit versions published, and every host
/// running `fastpath` UNIT_OLD, its service started.
fn systemd_stages(kind: HostKind, n: usize, extra_env: &str, sections: &str) -> Option<Testbed> {
    let tb = Testbed::start_kinds(&[("test", n, kind), ("prod", n, kind)])?;
    tb.write_config(&["fastpath"], extra_env, sections);
    let unit = Publish {
        service: true,
        ..Publish::default()
    };
    tb.publish_with("fastpath", UNIT_OLD, &unit);
    tb.publish_with("fastpath", UNIT_NEW, &unit);
    tb.publish_with(
        "fastpath",
        UNIT_BROKEN,
        &Publish {
            service_fail: true,
            ..Publish::default()
        },
    );
    for h in tb.all_hosts() {
        tb.set_versions(&h.alias, &[("fastpath", Some(UNIT_OLD))]);
        let started = tb.exec(&h.alias, "systemctl start fastpath.service");
        assert!(started.status.success(), "{started:?}");
    }
    Some(tb)
}

/// `systemctl is-active fastpath.service` on `host`.
fn unit_state(tb: &Testbed, host: &str) -> String {
    let out = tb.exec(host, "systemctl is-active fastpath.service || true");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The messages of `fastpath.service`'s journal on `host`, oldest first.
fn unit_journal(tb: &Testbed, host: &str) -> Vec<String> {
    let out = tb.exec(
        host,
        "journalctl --no-pager -o cat -u fastpath.service | grep '^fastpath 0[.]'",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

const UNITS: &str = "[package:fastpath]\nunits = fastpath.service\nrestart = yes\n";

#[test]
fn systemctl_restarts_a_real_unit_and_the_canary_shows_its_journal() {
    restarts_a_real_unit_on(HostKind::BookwormSystemd);
}

#[test]
fn systemctl_restarts_a_real_unit_on_trixie() {
    restarts_a_real_unit_on(HostKind::TrixieSystemd);
}

fn restarts_a_real_unit_on(kind: HostKind) {
    // the health check waits until the service says it serves the version
    // installed (`systemctl restart` does not wait for that), so that the
    // canary's journal, read after it, has the line
    let sections = format!(
        "{UNITS}health_check = v=$(dpkg-query -W -f='${{Version}}' fastpath); i=0; until sudo -n journalctl --no-pager -o cat -u fastpath.service | grep -qx \"fastpath $v serving on $(hostname)\"; do i=$((i+1)); test $i -lt 300 || exit 9; sleep 0.1; done\n"
    );
    let Some(tb) = systemd_stages(kind, 2, "", &sections) else {
        return;
    };
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", UNIT_NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("restarted fastpath.service"), "{all}");
    // the canary's journal, with its name: the new version's first line
    let canary = all
        .lines()
        .find(|l| l.contains("test-1 log | ") && l.ends_with("fastpath 0.83-1 serving on test-1"));
    assert!(canary.is_some(), "{all}");
    assert!(!all.contains("test-2 log |"), "only the canary's: {all}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(UNIT_NEW));
        assert_eq!(unit_state(&tb, h), "active", "{h}");
        let want = [
            format!("fastpath 0.82-1 serving on {h}"),
            format!("fastpath 0.83-1 serving on {h}"),
        ];
        // the service logs its line once started, which `systemctl
        // restart` does not wait for
        assert!(
            poll(Duration::from_secs(30), || unit_journal(&tb, h) == want),
            "{h}: restarted once, on the new version: {:?}",
            unit_journal(&tb, h)
        );
    }
    let record = last(&tb);
    for h in ["test-1", "test-2"] {
        let e = entry(&record, h);
        assert_eq!(e["restart"]["ok"], true, "{e}");
        assert_eq!(e["restart"]["what"], "fastpath.service", "{e}");
        assert_eq!(
            e["restart"]["detail"], "fastpath.service is active (running)",
            "{e}"
        );
    }
}

#[test]
fn a_unit_that_fails_to_start_is_rolled_back_with_its_journal() {
    a_failing_unit_is_rolled_back_on(HostKind::BookwormSystemd);
}

#[test]
fn a_unit_that_fails_to_start_is_rolled_back_on_trixie() {
    a_failing_unit_is_rolled_back_on(HostKind::TrixieSystemd);
}

fn a_failing_unit_is_rolled_back_on(kind: HostKind) {
    let Some(tb) = systemd_stages(kind, 1, "rollback_on_failure = yes", UNITS) else {
        return;
    };
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", UNIT_BROKEN]);
    assert_ne!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    // the report shows the unit's journal lines, with the host's name
    assert!(
        all.lines()
            .any(|l| l.trim_start().starts_with("test-1 log | ")
                && l.ends_with("fastpath 0.84-1: cannot bind :8080")),
        "{all}"
    );
    assert!(
        all.contains("test-1: restart of fastpath.service failed (exit status 1); rolled back"),
        "{all}"
    );
    // rolled back, and the version put back runs again
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some(UNIT_OLD)
    );
    assert_eq!(unit_state(&tb, "test-1"), "active");
    let serving = |journal: &[String]| {
        journal.last().map(String::as_str) == Some("fastpath 0.82-1 serving on test-1")
    };
    assert!(
        poll(Duration::from_secs(30), || serving(&unit_journal(
            &tb, "test-1"
        ))),
        "{:?}",
        unit_journal(&tb, "test-1")
    );
    let journal = unit_journal(&tb, "test-1");
    assert!(
        journal.contains(&"fastpath 0.84-1: cannot bind :8080".to_string()),
        "{journal:?}"
    );
    let record = last(&tb);
    assert_eq!(host_result(&record, "test-1"), "rolled-back", "{record}");
    let e = entry(&record, "test-1");
    assert_eq!(e["restart"]["ok"], false, "{e}");
    assert_eq!(e["restart"]["what"], "fastpath.service", "{e}");
    let tail: Vec<&str> = e["log_tail"]
        .as_array()
        .unwrap_or_else(|| panic!("a log tail: {e}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tail.iter()
            .any(|l| l.ends_with("fastpath 0.84-1: cannot bind :8080")),
        "{e}"
    );
    assert_eq!(
        tb.installed("prod-1", "fastpath").as_deref(),
        Some(UNIT_OLD)
    );
}

#[test]
fn follow_logs_follows_the_journal_during_the_health_check_and_stops() {
    follow_logs_follows_the_journal_on(HostKind::BookwormSystemd);
}

#[test]
fn follow_logs_follows_the_journal_on_trixie() {
    follow_logs_follows_the_journal_on(HostKind::TrixieSystemd);
}

fn follow_logs_follows_the_journal_on(kind: HostKind) {
    // the health check waits until journalctl follows, then has the
    // service log a line (SIGUSR1), and ends once the line is in the
    // journal: only a follower running beside the check can show it
    let sections = format!(
        "{UNITS}health_check = i=0; until grep -qx journalctl /proc/[0-9]*/comm 2>/dev/null; do i=$((i+1)); test $i -lt 200 || exit 9; sleep 0.1; done; sudo -n systemctl kill --kill-who=main -s USR1 fastpath.service; until sudo -n journalctl --no-pager -o cat -u fastpath.service | grep -q 'health probe answered'; do i=$((i+1)); test $i -lt 400 || exit 8; sleep 0.1; done\n"
    );
    let Some(tb) = systemd_stages(kind, 1, "", &sections) else {
        return;
    };
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "--follow-logs", "fastpath", "test", UNIT_NEW],
    );
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.lines()
            .any(|l| l.trim_start().starts_with("test-1 log | ")
                && l.ends_with("fastpath 0.83-1: health probe answered on test-1")),
        "{all}"
    );
    assert!(
        tb.wait_no_process("test-1", "journalctl", Duration::from_secs(10)),
        "the journal follower is stopped after the check: {:?}",
        tb.processes("test-1")
    );
    assert_eq!(unit_state(&tb, "test-1"), "active");
}
