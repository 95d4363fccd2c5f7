//! End-to-end tests of `deployer check` on real Debian hosts (the
//! testbed): a healthy host, and one host per fault, each failing exactly
//! the check it should, with its fix in a `note:` line.

use crate::common;

use common::cli::deployer;
use common::testbed::{HostKind, Testbed};
use serde_json::Value;

/// `checks` of `host` in the JSON report, as `name -> result`.
fn results(v: &Value, host: &str) -> Vec<(String, String)> {
    let h = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no {host} in {v}"));
    h["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The check of `host` named `name`, in the JSON report.
fn item<'v>(v: &'v Value, host: &str, name: &str) -> &'v Value {
    common::cli::check_item(v, host, name)
}

fn expect(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn check_names_each_hosts_fault_and_its_fix() {
    check_names_each_fault_on(&[
        ("test", 2, HostKind::Bookworm),
        ("prod", 4, HostKind::Bookworm),
    ]);
}

/// The same faults on Debian 13 and systemd hosts, stages mixing them:
/// sudo asking for a password on trixie, sshd stopped through systemd,
/// a changed key on OpenSSH 10.
#[test]
fn check_names_each_fault_on_trixie_and_systemd_hosts() {
    check_names_each_fault_on(&[
        ("test", 1, HostKind::TrixieSystemd),
        ("test", 1, HostKind::Trixie),
        ("prod", 1, HostKind::TrixieSystemd),
        ("prod", 1, HostKind::BookwormSystemd),
        ("prod", 1, HostKind::Trixie),
        ("prod", 1, HostKind::TrixieSystemd),
    ]);
}

fn check_names_each_fault_on(layout: &[(&str, usize, HostKind)]) {
    let Some(tb) = Testbed::start_kinds(layout) else {
        return;
    };
    tb.write_config(&["fastpath"], "badges_path = /var/www/badges", "");
    // test-1: healthy, and says it is in `test`
    let set = tb.exec(
        "test-1",
        "printf 'PRETTY_HOSTNAME=t\\nDEPLOYMENT=\"test\"\\n' > /etc/machine-info",
    );
    assert!(set.status.success());
    let _sudo = tb.sudo_requires_password("test-2");
    let _down = tb.stop_sshd("prod-1");
    let set = tb.exec("prod-2", "echo DEPLOYMENT=test > /etc/machine-info");
    assert!(set.status.success());
    let _key = tb.change_host_key("prod-3");
    let set = tb.exec("prod-4", "mkdir -p /var && echo x > /var/www");
    assert!(set.status.success());

    let (code, stdout, stderr) = deployer(&tb, &["check", "--json"]);
    assert_eq!(code, 3, "{stdout}{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["summary"], serde_json::json!({"hosts": 6, "failed": 5}));
    let all_ok = [
        ("reachable", "ok"),
        ("host-key", "ok"),
        ("login", "ok"),
        ("sudo", "ok"),
        ("tools", "ok"),
        ("badges_path", "ok"),
        ("stage", "ok"),
        ("root-paths", "ok"),
    ];
    assert_eq!(results(&v, "test-1"), expect(&all_ok));
    assert_eq!(item(&v, "test-1", "stage")["detail"], "DEPLOYMENT=test");
    assert_eq!(
        item(&v, "test-1", "badges_path")["detail"],
        "will be created in `/var`"
    );
    assert_eq!(
        tb.read_file("test-1", "/var/www"),
        None,
        "check creates nothing"
    );

    let mut sudo = all_ok;
    sudo[3].1 = "failed";
    sudo[5].1 = "skipped";
    assert_eq!(results(&v, "test-2"), expect(&sudo));
    assert_eq!(item(&v, "test-2", "stage")["detail"], "not set");
    let s = item(&v, "test-2", "sudo");
    assert!(
        s["problem"]
            .as_str()
            .unwrap()
            .contains("asks for a password"),
        "{s}"
    );
    assert!(s["fix"].as_str().unwrap().contains("NOPASSWD"), "{s}");

    let down = [
        ("reachable", "failed"),
        ("host-key", "skipped"),
        ("login", "skipped"),
        ("sudo", "skipped"),
        ("tools", "skipped"),
        ("badges_path", "skipped"),
        ("stage", "skipped"),
        ("root-paths", "skipped"),
    ];
    assert_eq!(results(&v, "prod-1"), expect(&down));
    let r = item(&v, "prod-1", "reachable");
    assert!(
        r["problem"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{r}"
    );

    let mut elsewhere = all_ok;
    elsewhere[6].1 = "failed";
    assert_eq!(results(&v, "prod-2"), expect(&elsewhere));
    let s = item(&v, "prod-2", "stage");
    assert!(s["problem"].as_str().unwrap().contains("`test`"), "{s}");
    assert!(
        s["fix"]
            .as_str()
            .unwrap()
            .contains("hostnamectl set-deployment prod"),
        "{s}"
    );

    let mut key = down;
    key[0].1 = "ok";
    key[1].1 = "failed";
    assert_eq!(results(&v, "prod-3"), expect(&key));
    let k = item(&v, "prod-3", "host-key");
    assert!(
        k["problem"].as_str().unwrap().contains("HOST KEY CHANGED"),
        "{k}"
    );
    assert!(k["fix"].as_str().unwrap().contains("ssh-keygen -R"), "{k}");

    let mut in_the_way = all_ok;
    in_the_way[5].1 = "failed";
    assert_eq!(results(&v, "prod-4"), expect(&in_the_way));
    let b = item(&v, "prod-4", "badges_path");
    assert!(
        b["problem"]
            .as_str()
            .unwrap()
            .contains("`/var/www` is in the way"),
        "{b}"
    );

    // the text: a line per host, every failure followed by its note
    let (code, text, stderr) = deployer(&tb, &["check"]);
    assert_eq!(code, 3, "{text}{stderr}");
    let lines: Vec<&str> = text.lines().collect();
    let healthy = lines.iter().find(|l| l.starts_with("test-1 ")).unwrap();
    assert!(!healthy.contains("FAILED"), "{text}");
    for (host, check) in [
        ("test-2", "sudo"),
        ("prod-1", "reachable"),
        ("prod-2", "stage"),
        ("prod-3", "host-key"),
        ("prod-4", "badges_path"),
    ] {
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("no line for {host}: {text}"));
        assert!(lines[at].contains(&format!("{check} FAILED")), "{text}");
        assert!(lines[at + 1].starts_with(&format!("  {check}: ")), "{text}");
        assert!(lines[at + 2].starts_with("  note: "), "{text}");
    }
    assert_eq!(
        lines.last(),
        Some(&"5 of 6 host(s) failed a check"),
        "{text}"
    );

    // one stage only, and a stage whose hosts all pass exits 0
    drop(_sudo);
    let (code, text, stderr) = deployer(&tb, &["check", "test"]);
    assert_eq!(code, 0, "{text}{stderr}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" (test) ")).count(),
        2,
        "{text}"
    );
    assert!(!text.contains("(prod)"), "{text}");
    assert!(
        text.ends_with("all 2 host(s) passed every check\n"),
        "{text}"
    );

    // --quiet: nothing at all when every check passed, the whole report
    // when one did not
    let (code, text, stderr) = deployer(&tb, &["check", "test", "-q"]);
    assert_eq!((code, text.as_str(), stderr.as_str()), (0, "", ""));
    let (code, text, _) = deployer(&tb, &["check", "--quiet"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("host(s) failed a check"), "{text}");
}
