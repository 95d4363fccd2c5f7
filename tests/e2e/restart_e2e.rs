//! End-to-end: the service step of a deploy on the testbed's real hosts.
//! The testbed's hosts do not run systemd (a bash init in namespaces), so
//! the generic path is what runs for real here: `restart_command` and
//! `logs_command` (a restart that writes a log file, a log that is that
//! file), a failing restart failing its host and triggering the rollback,
//! the canary's log lines shown with its name, `--follow-logs` streaming
//! them beside the health check, the record keeping the restart outcomes
//! and a failed host's last log lines; and the note a host without
//! systemd gets when `units` is set. The systemd commands themselves are
//! unit-tested (`service`), the orchestration with the fake transport
//! (`deploy::tests`).

use crate::common;

use std::time::Duration;

use common::cli::{deployer, host_result, last, two_stages, NEW, OLD};
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
