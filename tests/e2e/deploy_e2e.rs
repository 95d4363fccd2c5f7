//! End-to-end tests of deploy, rollback, promote and freeze on real Debian
//! hosts (the testbed): real sudo, apt-get, dpkg and postinst scripts. Each
//! test checks the hosts' real state afterwards and the history file.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::deadline::output_within;
use common::testbed::{HostKind, Testbed};
use serde_json::Value;

use common::cli::{deployer, history, host_result, last, two_stages, two_stages_as, NEW, OLD};

/// Past this a deploy that waits on a host has hung, not merely run slow.
const HANG: Duration = Duration::from_secs(300);

#[test]
fn deploy_latest_to_the_first_stage() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    assert_eq!(
        tb.installed("prod-1", "fastpath"),
        None,
        "only the first stage"
    );
    assert!(out.starts_with("Before:"), "{out}");
    assert!(out.contains("After:"), "{out}");
    let r = last(&tb);
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["version"], NEW);
    assert_eq!(r["stage"], "test");
    assert_eq!(host_result(&r, "test-1"), "changed");
    assert_eq!(r["hosts"][0]["from"], OLD);
}

#[test]
fn deploy_given_version_then_roll_back() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    deploy_then_roll_back(&tb);
}

/// The same on Debian 13 (apt 3, dpkg 1.22).
#[test]
fn deploy_given_version_then_roll_back_on_trixie() {
    let Some(tb) = two_stages_as(HostKind::Trixie, 2, "", "") else {
        return;
    };
    deploy_then_roll_back(&tb);
}

/// The same on Debian 13 booting systemd.
#[test]
fn deploy_given_version_then_roll_back_on_trixie_with_systemd() {
    let Some(tb) = two_stages_as(HostKind::TrixieSystemd, 2, "", "") else {
        return;
    };
    deploy_then_roll_back(&tb);
}

/// The same with each stage mixing Debian 12 and 13, plain and systemd.
#[test]
fn deploy_given_version_then_roll_back_in_stages_mixing_releases() {
    let Some(tb) = Testbed::start_kinds(&[
        ("test", 1, HostKind::Bookworm),
        ("test", 1, HostKind::TrixieSystemd),
        ("prod", 1, HostKind::Trixie),
        ("prod", 1, HostKind::BookwormSystemd),
    ]) else {
        return;
    };
    tb.write_config(&["fastpath", "detector"], "", "");
    deploy_then_roll_back(&tb);
}

/// Stages `test` and `prod` of two hosts each, every host on detector
/// 2.0-1: deploy 1:1.0-1 to test, then roll test back to 0.3~pr651-98.
fn deploy_then_roll_back(tb: &Testbed) {
    for h in ["test-1", "test-2", "prod-1", "prod-2"] {
        tb.set_versions(h, &[("detector", Some("2.0-1"))]);
    }
    // the epoch version is an upgrade although its text looks smaller
    let (code, out, err) = deployer(tb, &["deploy", "detector", "test", "1:1.0-1"]);
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "detector").as_deref(), Some("1:1.0-1"));
    }
    // rollback on the critical stage needs --yes; to an older version is always allowed
    let (code, out, err) = deployer(tb, &["deploy", "detector", "test", "0.3~pr651-98"]);
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "detector").as_deref(), Some("0.3~pr651-98"));
    }
    let r = last(tb);
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["hosts"][0]["from"], "1:1.0-1");
    assert_eq!(r["hosts"][0]["to"], "0.3~pr651-98");
    assert_eq!(history(tb).len(), 2);
}

#[test]
fn rollback_on_a_critical_stage_needs_confirmation() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    tb.set_versions("prod-1", &[("fastpath", Some(NEW))]);
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "prod", OLD]);
    assert_eq!(code, 6, "no terminal, no --yes: refused");
    assert!(
        err.contains("critical stage") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(NEW));
    assert_eq!(last(&tb)["outcome"], "refused");

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", OLD, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));
    assert!(
        out.contains("(downgrade)") || out.contains("changed"),
        "{out}"
    );
}

#[test]
fn promote_moves_the_previous_stage_version() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(NEW))]);
    }
    for h in ["prod-1", "prod-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["promote", "fastpath", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    for h in ["prod-1", "prod-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW));
    }
    let r = last(&tb);
    assert_eq!(
        (
            r["action"].as_str(),
            r["stage"].as_str(),
            r["version"].as_str()
        ),
        (Some("promote"), Some("prod"), Some(NEW))
    );

    // hosts of the source stage that disagree: refused, and shown
    tb.set_versions("test-2", &[("fastpath", Some(OLD))]);
    let (code, _, err) = deployer(&tb, &["promote", "fastpath", "prod", "--yes"]);
    assert_eq!(code, 6);
    assert!(
        err.contains("test-1: 0.81~pr748-191") && err.contains("test-2: 0.77~pr705-119"),
        "{err}"
    );
}

#[test]
fn order_guard_refuses_and_force_overrides() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("prod-1", &[("fastpath", Some(OLD))]);
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "prod", NEW, "--yes"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("previous stage `test`"), "{err}");
    assert!(err.contains("test-1 (test) runs 0.77~pr705-119"), "{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));
    assert_eq!(last(&tb)["outcome"], "refused");

    let (code, out, err) = deployer(
        &tb,
        &[
            "deploy",
            "fastpath",
            "prod",
            NEW,
            "--yes",
            "--force",
            "--reason",
            "hotfix for incident 7",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(NEW));
    let r = last(&tb);
    assert_eq!(r["forced"], true);
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("forced: hotfix for incident 7"),
        "{reason}"
    );
    assert!(reason.contains("overrode stage order"), "{reason}");
}

fn lists_fingerprint(tb: &Testbed, host: &str) -> String {
    let out = tb.exec(host, "ls -l --time-style=+%s.%N /var/lib/apt/lists/ && cat /var/lib/apt/lists/*Packages | md5sum");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dry_run_changes_nothing_not_even_apt_lists() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    // the hosts' lists are current as of before the new build is published
    for h in ["test-1", "test-2"] {
        assert!(tb.exec(h, "apt-get update -q").status.success());
    }
    tb.publish("fastpath", "0.82~pr760-200");
    let before: Vec<String> = ["test-1", "test-2"]
        .iter()
        .map(|h| lists_fingerprint(&tb, h))
        .collect();
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Plan: `fastpath` 0.81~pr748-191 on `test`"),
        "the lists were not updated, so 0.82 is unseen: {out}"
    );
    assert!(
        out.contains("batch 1:") && out.contains("batch 2:"),
        "{out}"
    );
    assert!(
        out.contains("runs: sudo -n env DEBIAN_FRONTEND=noninteractive"),
        "{out}"
    );
    assert!(
        out.contains("apt:  Inst fastpath [0.77~pr705-119] (0.81~pr748-191"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    for (h, b) in ["test-1", "test-2"].iter().zip(&before) {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD));
        assert_eq!(&lists_fingerprint(&tb, h), b, "apt lists of {h} changed");
    }
    assert!(history(&tb).is_empty(), "dry runs are not recorded");

    // a real deploy updates the lists first and so finds the published version
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some("0.82~pr760-200")
    );
}

#[test]
fn unavailable_version_changes_nothing() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", "9.9-1"]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("`fastpath` 9.9-1 cannot be installed on 2 host(s) of `test`"),
        "{err}"
    );
    assert!(
        err.contains("test-1 can install: 0.81~pr748-191, 0.77~pr705-119"),
        "{err}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD));
    }
    let r = last(&tb);
    assert_eq!(r["outcome"], "refused");
    assert_eq!(r["version"], "9.9-1");
}

#[test]
fn failing_postinst_halts_the_rollout_with_a_partial_report() {
    let Some(tb) = two_stages(3, "", "") else {
        return;
    };
    for h in ["test-1", "test-2", "test-3"] {
        tb.set_versions(h, &[("badpostinst", Some("1.0-1"))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "badpostinst", "test", "2.0-1"]);
    assert_eq!(code, 8, "failed after changing a host: {out}{err}");
    assert!(out.contains("FAILED after changing hosts"), "{out}");
    assert!(
        out.contains("postinst"),
        "the report explains the failure: {out}"
    );
    assert!(
        out.contains("missing /etc/badpostinst.conf"),
        "the host's own words are shown: {out}"
    );
    assert!(
        tb.dpkg_status("test-1", "badpostinst").starts_with("iF"),
        "{}",
        tb.dpkg_status("test-1", "badpostinst")
    );
    for h in ["test-2", "test-3"] {
        assert_eq!(
            tb.installed(h, "badpostinst").as_deref(),
            Some("1.0-1"),
            "{h} untouched"
        );
    }
    let r = last(&tb);
    assert_eq!(r["outcome"], "partial");
    assert_eq!(host_result(&r, "test-1"), "failed");
    assert_eq!(host_result(&r, "test-2"), "untouched");
    assert_eq!(host_result(&r, "test-3"), "untouched");
}

const HEALTH: &str = "[package:healthd]\nhealth_check = /usr/bin/healthd-check";

#[test]
fn failing_health_check_stops_the_rollout() {
    let Some(tb) = two_stages(2, "", HEALTH) else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("healthd", Some("1.0-1"))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "healthd", "test", "2.0-1"]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(
        out.contains("the health check of `healthd` failed"),
        "{out}"
    );
    assert_eq!(
        tb.installed("test-1", "healthd").as_deref(),
        Some("2.0-1"),
        "left as it is without rollback"
    );
    assert_eq!(tb.installed("test-2", "healthd").as_deref(), Some("1.0-1"));
    let r = last(&tb);
    assert_eq!(host_result(&r, "test-1"), "failed");
    assert_eq!(host_result(&r, "test-2"), "untouched");
}

#[test]
fn failing_health_check_with_rollback_restores_the_host() {
    let Some(tb) = two_stages(2, "", HEALTH) else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("healthd", Some("1.0-1"))]);
    }
    let (code, out, err) = deployer(
        &tb,
        &[
            "deploy",
            "healthd",
            "test",
            "2.0-1",
            "--rollback-on-failure",
        ],
    );
    assert_eq!(code, 8, "{out}{err}");
    assert!(out.contains("rolled back to 1.0-1"), "{out}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "healthd").as_deref(), Some("1.0-1"));
    }
    let r = last(&tb);
    assert_eq!(host_result(&r, "test-1"), "rolled-back");
    assert_eq!(r["outcome"], "partial");
}

#[test]
fn concurrent_deploy_is_refused_by_the_lock_which_frees_itself() {
    let Some(tb) = two_stages(1, "deploy_timeout = 2m", "") else {
        return;
    };
    tb.set_versions("test-1", &[("slowpkg", Some("1.0-1"))]);
    let mut first = tb
        .deployer()
        .args(["--color=never", "deploy", "slowpkg", "test", "2.0-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        tb.wait_for_file(
            "test-1",
            "/tmp/slowpkg-postinst-started",
            Duration::from_secs(60)
        ),
        "the first deploy never reached the postinst"
    );
    let (code, _, err) = deployer(&tb, &["deploy", "slowpkg", "test", "2.0-1"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("another deploy holds the lock"), "{err}");
    let (user, machine) = (
        std::env::var("USER").unwrap_or_else(|_| "root".into()),
        String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap(),
    );
    assert!(
        err.contains(&format!("{user}@{}", machine.trim())),
        "names who holds it: {err}"
    );
    assert!(err.contains(" since "), "{err}");
    assert_eq!(last(&tb)["outcome"], "refused");

    // the first deployer dies: its lock goes with its connection
    first.kill().unwrap();
    first.wait().unwrap();
    let free = common::testbed::poll(Duration::from_secs(30), || {
        tb.exec("test-1", "flock -n /run/deployer/deploy.lock true")
            .status
            .success()
    });
    assert!(free, "the lock outlived the deployer that held it");
}

#[test]
fn sudo_asking_for_a_password_is_refused_up_front() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let _sudo = tb.sudo_requires_password("test-2");
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("test-2: sudo on the host asks for a password"),
        "{err}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(
            tb.installed(h, "fastpath").as_deref(),
            Some(OLD),
            "nothing changed on {h}"
        );
    }
    assert_eq!(last(&tb)["outcome"], "refused");
}

/// dpkg's lock held past `lock_timeout` is found in preflight: the
/// deploy is refused before the host is changed (issue 17, round 3,
/// item 7; `fail_closed_e2e::r3_item7_*` has the stage-wide cases).
#[test]
fn held_dpkg_lock_refuses_without_changing_the_host() {
    let Some(tb) = two_stages(1, "lock_timeout = 2s", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let _lock = tb.hold_dpkg_lock("test-1");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "refused, nothing changed: {out}{err}");
    assert!(
        err.contains("note: test-1: `/var/lib/dpkg/lock-frontend` is held by process"),
        "{err}"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    let r = last(&tb);
    assert_eq!(r["outcome"], "refused");
}

#[test]
fn host_hanging_mid_deploy_is_reported_as_unknown_state() {
    let Some(tb) = two_stages(2, "deploy_timeout = 4s\ncommand_timeout = 3s", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("slowpkg", Some("1.0-1"))]);
    }
    let child = tb
        .deployer()
        .args(["--color=never", "deploy", "slowpkg", "test", "2.0-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(tb.wait_for_file(
        "test-1",
        "/tmp/slowpkg-postinst-started",
        Duration::from_secs(60)
    ));
    let frozen = tb.freeze("test-1");
    let out = output_within(child, HANG, "a deploy to a host frozen mid-deploy");
    drop(frozen);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(8),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("test-1: FAILED: unknown state: check with `deployer status`"),
        "{stdout}"
    );
    assert!(!stdout.contains("test-1: changed"), "{stdout}");
    assert_eq!(
        tb.installed("test-2", "slowpkg").as_deref(),
        Some("1.0-1"),
        "the rollout stopped"
    );
    let r = last(&tb);
    assert_eq!(host_result(&r, "test-1"), "unknown");
    assert_eq!(host_result(&r, "test-2"), "untouched");
}

#[test]
fn frozen_stage_refuses_until_unfrozen() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(
        &tb,
        &["freeze", "test", "--reason", "incident 12: db overload"],
    );
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        let rec = tb.exec(h, "cat /var/lib/deployer/freeze/test");
        assert!(
            String::from_utf8_lossy(&rec.stdout).contains("incident 12"),
            "recorded on {h}"
        );
    }
    let (_, status, _) = deployer(&tb, &[]);
    assert!(status.contains("test [frozen]"), "{status}");
    assert!(status.contains("incident 12: db overload"), "{status}");

    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("stage `test` is frozen")
            && err.contains("test-1: frozen by ")
            && err.contains("incident 12"),
        "{err}"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));

    // --force overrides the order guard, never a freeze
    let (code, _, err) = deployer(
        &tb,
        &[
            "deploy", "fastpath", "test", NEW, "--force", "--reason", "hurry",
        ],
    );
    assert_eq!(code, 6, "{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));

    // a second freeze does not replace the first one's reason
    let (code, _, err) = deployer(&tb, &["freeze", "test", "--reason", "mine now"]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("already frozen") && err.contains("incident 12"),
        "{err}"
    );
    let rec = tb.exec("test-2", "cat /var/lib/deployer/freeze/test");
    assert!(String::from_utf8_lossy(&rec.stdout).contains("incident 12"));

    let (code, out, err) = deployer(
        &tb,
        &[
            "deploy",
            "fastpath",
            "test",
            NEW,
            "--override-freeze",
            "--reason",
            "the fix for incident 12",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    assert_eq!(
        last(&tb)["reason"],
        "freeze overridden: the fix for incident 12"
    );

    let (code, _, _) = deployer(&tb, &["unfreeze", "test"]);
    assert_eq!(code, 0);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", OLD]);
    assert_eq!(code, 0, "{out}{err}");
    let actions = actions(&tb);
    let want = [
        ("freeze", "success"),
        ("deploy", "refused"),
        ("deploy", "refused"),
        ("freeze", "refused"),
        ("deploy", "success"),
        ("unfreeze", "success"),
        ("deploy", "success"),
    ];
    assert_eq!(actions, want.map(|(a, o)| (a.to_string(), o.to_string())));

    // the history command lists them newest first
    let (code, text, _) = deployer(&tb, &["history", "fastpath", "--json"]);
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4, "the fastpath deploys");
    assert_eq!(listed[0]["version"], OLD);
}

/// libssh2 reports status 0 for a command killed by a signal; a crashing
/// health check must still stop the rollout.
#[test]
fn health_check_killed_by_a_signal_is_a_failure() {
    let Some(tb) = two_stages(2, "", "[package:fastpath]\nhealth_check = kill -SEGV $$") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(
        out.contains("the health check of `fastpath` failed"),
        "{out}"
    );
    assert_eq!(
        tb.installed("test-2", "fastpath").as_deref(),
        Some(OLD),
        "the rollout stopped"
    );
    assert_eq!(host_result(&last(&tb), "test-1"), "failed");
}

/// Item 9: sudo with `Defaults umask=0077` (CIS baselines) must not create
/// a freeze record the unprivileged status query cannot read; and a
/// freeze directory that exists but cannot be read counts as frozen.
#[test]
fn freezes_hold_under_a_restrictive_sudo_umask_and_when_unreadable() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let umask = tb.exec(
        "test-1",
        "printf 'Defaults umask=0077\\nDefaults umask_override\\n' > /etc/sudoers.d/umask && chmod 0440 /etc/sudoers.d/umask && su deployer -s /bin/sh -c 'sudo -n sh -c umask'",
    );
    assert_eq!(
        String::from_utf8_lossy(&umask.stdout).trim(),
        "0077",
        "{umask:?}"
    );
    tb.exec("test-1", "rm -rf /var/lib/deployer");

    let (code, out, err) = deployer(&tb, &["freeze", "test", "--reason", "incident 7"]);
    assert_eq!(code, 0, "{out}{err}");
    let modes = tb.exec(
        "test-1",
        "stat -c '%a %n' /var/lib/deployer /var/lib/deployer/freeze /var/lib/deployer/freeze/test",
    );
    assert_eq!(
        String::from_utf8_lossy(&modes.stdout),
        "755 /var/lib/deployer\n755 /var/lib/deployer/freeze\n644 /var/lib/deployer/freeze/test\n"
    );
    let (_, status, _) = deployer(&tb, &[]);
    assert!(status.contains("test [frozen]"), "{status}");
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("incident 7"), "{err}");

    // unreadable: whatever it holds, the stage counts as frozen
    tb.exec("test-1", "chmod 0700 /var/lib/deployer/freeze");
    let (_, status, _) = deployer(&tb, &[]);
    assert!(status.contains("test [frozen]"), "{status}");
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("cannot be read"), "{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    assert_eq!(last(&tb)["outcome"], "refused");
}

/// Item 10: a freeze record refuses a deploy whatever stage name it was
/// set under (the host may also serve another pipeline's stage).
#[test]
fn a_freeze_record_under_another_stage_name_refuses() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    tb.exec(
        "test-2",
        "mkdir -p /var/lib/deployer/freeze && echo '{\"by\":\"carol@ops\",\"since\":\"t\",\"reason\":\"db migration\"}' > /var/lib/deployer/freeze/hel",
    );
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("test-2: frozen by carol@ops") && err.contains("set under stage `hel`"),
        "{err}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD));
    }
    assert_eq!(last(&tb)["outcome"], "refused");
}

/// Item 10: freezing a stage while a rollout runs stops it before its
/// next batch; the hosts of later batches are untouched.
#[test]
fn freezing_during_a_rollout_stops_it_at_the_next_batch() {
    let Some(tb) = two_stages(3, "", "") else {
        return;
    };
    for h in ["test-1", "test-2", "test-3"] {
        tb.set_versions(h, &[("slowpkg", Some("1.0-1"))]);
    }
    let child = tb
        .deployer()
        .args(["--color=never", "deploy", "slowpkg", "test", "2.0-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        tb.wait_for_file(
            "test-1",
            "/tmp/slowpkg-postinst-started",
            Duration::from_secs(60)
        ),
        "the canary's install started"
    );
    let (code, out, err) = deployer(&tb, &["freeze", "test", "--reason", "stop it"]);
    assert_eq!(code, 0, "{out}{err}");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(9),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("is frozen now"), "{stdout}");
    assert_eq!(tb.installed("test-1", "slowpkg").as_deref(), Some("2.0-1"));
    for h in ["test-2", "test-3"] {
        assert_eq!(tb.installed(h, "slowpkg").as_deref(), Some("1.0-1"), "{h}");
    }
    let r = history(&tb)
        .into_iter()
        .rev()
        .find(|r| r["action"] == "deploy")
        .unwrap();
    assert_eq!(r["outcome"], "interrupted");
    assert!(r["reason"].as_str().unwrap().contains("stop it"), "{r}");
    assert_eq!(host_result(&r, "test-1"), "changed");
    assert_eq!(host_result(&r, "test-2"), "untouched");
}

/// `unfreeze` of a stage that no host says is frozen: it says so, exits
/// 0, writes nothing on any host (it does not even ask for root, which is
/// broken here on purpose) and records nothing in the history: nothing
/// changed and nothing was refused. A freeze that is there is lifted as
/// before, and recorded.
#[test]
fn unfreeze_of_a_stage_not_frozen_says_so_and_changes_nothing() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    let sudo = tb.sudo_requires_password("test-2");
    let (code, out, err) = deployer(&tb, &["unfreeze", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Stage `test` is not frozen on any of its 2 host(s); nothing changed."),
        "{out}{err}"
    );
    assert!(history(&tb).is_empty(), "{:?}", history(&tb));
    let (code, out, err) = deployer(&tb, &["unfreeze", "test", "--json"]);
    assert_eq!((code, out.trim()), (0, "null"), "{err}");
    assert!(err.contains("is not frozen"), "{err}");
    let (code, out, err) = deployer(&tb, &["unfreeze", "test", "--quiet"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    drop(sudo);

    // frozen on one host only (by hand): lifted, and recorded
    let put = tb.exec(
        "test-1",
        "mkdir -p /var/lib/deployer/freeze && echo hand-made > /var/lib/deployer/freeze/test",
    );
    assert!(put.status.success());
    let (code, out, err) = deployer(&tb, &["unfreeze", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is now unfrozen on 2 host(s)"), "{out}");
    assert!(!tb
        .exec("test-1", "test -e /var/lib/deployer/freeze/test")
        .status
        .success());
    assert_eq!(
        actions(&tb),
        [("unfreeze".to_string(), "success".to_string())]
    );
}

/// Each attempt of the local history as (action, outcome).
fn actions(tb: &Testbed) -> Vec<(String, String)> {
    history(tb)
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
