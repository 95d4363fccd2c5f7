//! End-to-end tests of the faults production throws at a deploy, each on
//! the testbed's real hosts: the fault is injected, then the hosts
//! themselves (installed version, dpkg state, holds) and the history are
//! checked. Named after the items ("fail closed").

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::cli::{deployer, history, last, two_stages, NEW, OLD};
use common::testbed::{Publish, TRANSLATING_LOCALE};
use serde_json::Value;

const NEWER: &str = "0.82~pr760-200";

/// Item 5: apt must not remove or pull in other packages behind the
/// plan's back; `--allow-dependency-changes` allows it, and the plan shows
/// it.
#[test]
fn item5_dependency_changes_are_refused_unless_allowed() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions(
        "test-1",
        &[
            ("fastpath", Some(OLD)),
            ("healthd", Some("1.0-1")),
            ("analysis", Some("1.9~pr659-61")),
        ],
    );
    tb.publish_with(
        "fastpath",
        NEWER,
        &Publish {
            fields: &["Conflicts: healthd"],
            ..Publish::default()
        },
    );
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("Remv healthd"),
        "apt's own line is shown: {err}"
    );
    assert!(err.contains("--allow-dependency-changes"), "{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    assert_eq!(tb.installed("test-1", "healthd").as_deref(), Some("1.0-1"));
    assert_eq!(last(&tb)["outcome"], "refused");

    // a new dependency version pulled in is refused the same way
    tb.publish_with(
        "fastpath",
        "0.83~pr770-210",
        &Publish {
            fields: &["Depends: analysis (>= 1.10~pr692-102)"],
            ..Publish::default()
        },
    );
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", "0.83~pr770-210"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("Inst analysis"), "{err}");
    assert_eq!(
        tb.installed("test-1", "analysis").as_deref(),
        Some("1.9~pr659-61")
    );

    // allowed: the plan shows the removal, and apt carries it out
    let (code, out, err) = deployer(
        &tb,
        &[
            "deploy",
            "fastpath",
            "test",
            NEWER,
            "--allow-dependency-changes",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEWER));
    assert_eq!(tb.installed("test-1", "healthd"), None);
    let r = last(&tb);
    assert_eq!(r["outcome"], "success");
}

/// Item 6: a held package shows in the status view, refuses the deploy
/// naming the host, and `--allow-held` deploys and holds it again.
#[test]
fn item6_held_packages_are_shown_and_refused() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.hold_package("test-1", "fastpath");
    let (_, status, _) = deployer(&tb, &[]);
    assert!(status.contains("[held]"), "{status}");
    let (_, json, _) = deployer(&tb, &["--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let host = &v["stages"][0]["hosts"][0];
    assert_eq!(host["packages"]["fastpath"]["held"], true, "{host}");

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("test-1"), "{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--allow-held"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    assert!(
        tb.is_held("test-1", "fastpath"),
        "held again after the deploy"
    );
}

/// Item 6: `hold = yes` pins what deployer installs, so that unattended
/// upgrades cannot undo a rollback, and deploys move the pin.
#[test]
fn item6_hold_setting_pins_the_deployed_version() {
    let Some(tb) = two_stages(1, "", "[package:fastpath]\nhold = yes") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", OLD]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    assert!(tb.is_held("test-1", "fastpath"));
    // apt's own upgrade leaves the rolled-back version alone
    let up = tb.exec(
        "test-1",
        "apt-get update -q >/dev/null && apt-get upgrade -y -q",
    );
    assert!(up.status.success(), "{up:?}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    // and the next deploy moves it
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    assert!(tb.is_held("test-1", "fastpath"));
}

/// Item 7: with rollback on, a host whose current version apt can no
/// longer install refuses the deploy before anything changes.
#[test]
fn item7_rollback_promise_is_checked_before_any_change() {
    let Some(tb) = two_stages(2, "rollback_on_failure = yes", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    tb.unpublish("fastpath", OLD);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("test-1") && err.contains(OLD), "{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD));
    }
    assert_eq!(last(&tb)["outcome"], "refused");
}

/// Item 8: `apt-get update` waits for the package lists' lock (held by
/// apt-daily or unattended-upgrades) instead of failing the deploy.
#[test]
fn item8_update_waits_for_the_lists_lock() {
    let Some(tb) = two_stages(1, "lock_timeout = 60s", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let lock = tb.hold_apt_lists_lock("test-1");
    let mut child = tb
        .deployer()
        .args(["--color=never", "deploy", "fastpath", "test", NEW])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "deployer ended before waiting: {seen}"
        );
        seen.push_str(&line);
        if line.contains("waits for a lock") {
            break;
        }
    }
    // the first attempt failed on the lock; now apt-daily is done
    lock.undo();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}{rest}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    assert_eq!(last(&tb)["outcome"], "success");
}

/// Item 8: a host whose sessions get a translating locale (`LC_ALL` and
/// `LANGUAGE` from pam_env) overrides `LANG=C`; apt must still speak
/// English to deployer's parsers.
#[test]
fn item8_a_translating_locale_on_the_host_does_not_break_apt_parsing() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let _locale = tb.session_locale("test-1", &TRANSLATING_LOCALE);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let r = history(&tb).pop().unwrap();
    assert_eq!(r["outcome"], "success");
}
