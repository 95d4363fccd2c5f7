//! End-to-end tests of `deployer versions` on real Debian hosts (the
//! testbed): real `apt-get update` through `sudo -n`, real `apt-cache
//! policy`, a repository that gains a version, hosts whose lists differ.

use crate::common;

use common::cli::{deployer, two_stages_as, NEW, OLD};
use common::testbed::HostKind;
use serde_json::{json, Value};

fn versions_json(tb: &common::testbed::Testbed, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["versions"];
    all.extend_from_slice(args);
    all.push("--json");
    let (code, stdout, stderr) = deployer(tb, &all);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, v, stderr)
}

/// The stage `name` of a `versions --json` document.
pub(crate) fn stage<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {v}"))
}

fn listed(s: &Value) -> Vec<String> {
    s["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn versions_lists_what_each_stage_can_install_newest_first() {
    versions_lists_newest_first_on(HostKind::Bookworm);
}

/// apt 3's `apt-cache policy` and `apt-get update` on Debian 13.
#[test]
fn versions_lists_newest_first_on_trixie() {
    versions_lists_newest_first_on(HostKind::Trixie);
}

#[test]
fn versions_lists_newest_first_on_trixie_with_systemd() {
    versions_lists_newest_first_on(HostKind::TrixieSystemd);
}

fn versions_lists_newest_first_on(kind: HostKind) {
    let Some(tb) = two_stages_as(kind, 2, "lock_timeout = 2s", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("prod-1", &[("fastpath", Some(NEW))]);
    tb.set_versions("prod-2", &[("fastpath", Some(OLD))]);

    // fresh hosts have empty lists: the update is what makes them known
    let (code, v, stderr) = versions_json(&tb, &["fastpath"]);
    assert_eq!(code, 0, "{v}{stderr}");
    assert_eq!(v["updated"], true);
    let test = stage(&v, "test");
    assert_eq!(listed(test), [NEW, OLD]);
    assert_eq!(test["agree"], true);
    assert_eq!(
        test["versions"][0],
        json!({"version": NEW, "candidate": ["test-1", "test-2"], "installed": [], "available": ["test-1", "test-2"], "cached": []})
    );
    assert_eq!(test["versions"][1]["installed"], json!(["test-1"]));
    let prod = stage(&v, "prod");
    assert_eq!(prod["versions"][0]["installed"], json!(["prod-1"]));
    assert_eq!(prod["versions"][1]["installed"], json!(["prod-2"]));

    // a new build: unseen until the lists are refreshed, on one host only
    let newer = "0.82~pr760-200";
    tb.publish("fastpath", newer);
    let (code, v, _) = versions_json(&tb, &["fastpath", "prod", "--no-update"]);
    assert_eq!(code, 0);
    assert_eq!(v["updated"], false);
    assert_eq!(v["stages"].as_array().unwrap().len(), 1, "only prod: {v}");
    assert_eq!(listed(stage(&v, "prod")), [NEW, OLD], "--no-update: {v}");
    let refreshed = tb.exec("prod-1", "apt-get update -q");
    assert!(refreshed.status.success(), "{refreshed:?}");
    let (code, v, _) = versions_json(&tb, &["fastpath", "prod", "--no-update"]);
    assert_eq!(code, 0);
    let prod = stage(&v, "prod");
    assert_eq!(listed(prod), [newer, NEW, OLD]);
    assert_eq!(prod["agree"], false);
    assert_eq!(
        prod["disagreements"],
        json!([{"host": "prod-2", "missing": [newer]}])
    );
    assert_eq!(prod["versions"][0]["candidate"], json!(["prod-1"]));
    let (code, text, _) = deployer(&tb, &["versions", "fastpath", "prod", "--no-update"]);
    assert_eq!(code, 0);
    assert!(
        text.contains(&format!(
            "  {newer}  candidate on prod-1, offered to prod-1 only\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  the hosts of `prod` disagree on what they can install:\n    prod-2 lacks {newer}\n"
        )),
        "{text}"
    );

    // with the update, they agree again
    let (code, v, _) = versions_json(&tb, &["fastpath", "prod"]);
    assert_eq!(code, 0);
    assert_eq!(stage(&v, "prod")["agree"], true, "{v}");
    assert_eq!(
        stage(&v, "prod")["versions"][0]["candidate"],
        json!(["prod-1", "prod-2"])
    );

    // hosts that cannot answer are named, the others still listed
    let _sudo = tb.sudo_requires_password("test-2");
    let _lock = tb.hold_apt_lists_lock("test-1");
    let _down = tb.stop_sshd("prod-2");
    let (code, v, stderr) = versions_json(&tb, &["fastpath"]);
    assert_eq!(code, 3, "{v}{stderr}");
    let why = |host: &str| {
        v["unreachable"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["host"] == host)
            .unwrap_or_else(|| panic!("{host} not unreachable: {v}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(why("test-2").contains("sudo"), "{v}");
    assert!(why("test-1").contains("lock"), "{v}");
    assert!(
        stderr.contains("test-1: `apt-get update` waits for a lock"),
        "the wait is announced, on stderr: {stderr}"
    );
    assert!(why("prod-2").contains("Connection refused"), "{v}");
    assert_eq!(stage(&v, "prod")["hosts"], json!(["prod-1"]));
    assert_eq!(listed(stage(&v, "prod")), [newer, NEW, OLD]);
}
