//! End-to-end tests of the status view on real Debian hosts (the testbed):
//! real sshd, real dpkg, real host keys. Each test brings up its own hosts.

use crate::common;

use std::process::Command;

use common::bin::run;
use common::testbed::{HostKind, Testbed};
use serde_json::Value;

const PACKAGES: [&str; 4] = ["ooni-api", "fastpath", "analysis", "detector"];

fn json(tb: &Testbed, extra: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = run(tb.deployer().arg("--json").args(extra));
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, v)
}

fn comparison(v: &Value, package: &str, left: &str) -> String {
    let p = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .unwrap_or_else(|| panic!("no package {package}"));
    let c = p["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["left"] == left)
        .unwrap_or_else(|| panic!("no comparison from {left}"));
    c["result"].as_str().unwrap().to_string()
}

fn host_json<'a>(v: &'a Value, stage: &str, host: &str) -> &'a Value {
    v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap()["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no host {host}"))
}

/// The scenario of the original tool's README, with every host counted:
/// test ahead of hel, a regression between test and hel, prod with drift
/// and one host down.
#[test]
fn status_of_three_stages_with_drift_and_a_host_down() {
    status_of_three_stages_on(&[
        ("test", 1, HostKind::Bookworm),
        ("hel", 1, HostKind::Bookworm),
        ("prod", 3, HostKind::Bookworm),
    ]);
}

/// The same on Debian 13 hosts, plain and systemd, and a stage mixing
/// releases; the host down is a systemd host whose ssh.service is stopped.
#[test]
fn status_of_three_stages_on_trixie_and_mixed_stages() {
    status_of_three_stages_on(&[
        ("test", 1, HostKind::Trixie),
        ("hel", 1, HostKind::TrixieSystemd),
        ("prod", 1, HostKind::Bookworm),
        ("prod", 1, HostKind::Trixie),
        ("prod", 1, HostKind::TrixieSystemd),
    ]);
}

fn status_of_three_stages_on(layout: &[(&str, usize, HostKind)]) {
    let Some(tb) = Testbed::start_kinds(layout) else {
        return;
    };
    tb.write_config(&PACKAGES, "connect_timeout = 5", "");
    let common = [("ooni-api", Some("1.0.79~pr751-194"))];
    tb.set_versions(
        "test-1",
        &[
            common[0],
            ("fastpath", Some("0.81~pr748-191")),
            ("analysis", Some("1.9~pr659-61")),
            ("detector", Some("1:1.0-1")),
        ],
    );
    tb.set_versions(
        "hel-1",
        &[
            common[0],
            ("fastpath", Some("0.77~pr705-119")),
            ("analysis", Some("1.10~pr692-102")),
            ("detector", Some("2.0-1")),
        ],
    );
    for (host, fp) in [
        ("prod-1", "0.77~pr705-119"),
        ("prod-2", "0.81~pr748-191"),
        ("prod-3", "0.77~pr705-119"),
    ] {
        tb.set_versions(
            host,
            &[
                common[0],
                ("fastpath", Some(fp)),
                ("analysis", Some("1.10~pr692-102")),
            ],
        );
    }
    let _down = tb.stop_sshd("prod-3");

    let (code, v) = json(&tb, &[]);
    assert_eq!(code, 3, "some hosts unreachable -> exit 3: {v}");
    assert_eq!(comparison(&v, "fastpath", "test"), "pending");
    assert_eq!(
        comparison(&v, "analysis", "test"),
        "regression",
        "1.10 is above 1.9 for dpkg"
    );
    assert_eq!(
        comparison(&v, "detector", "test"),
        "pending",
        "the epoch makes 1:1.0-1 newer than 2.0-1"
    );
    assert_eq!(comparison(&v, "ooni-api", "test"), "equal");
    // prod-2 runs a newer fastpath than hel: a regression, seen only because every host counts
    assert_eq!(comparison(&v, "fastpath", "hel"), "regression");
    assert_eq!(
        host_json(&v, "prod", "prod-2")["packages"]["fastpath"]["version"],
        "0.81~pr748-191"
    );
    assert_eq!(
        host_json(&v, "prod", "prod-1")["packages"]["detector"]["state"],
        "not-installed"
    );
    let unreachable = v["unreachable"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1);
    assert_eq!(unreachable[0]["host"], "prod-3");
    assert!(
        unreachable[0]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{}",
        unreachable[0]
    );
    assert_eq!(v["summary"]["drift"], 1);

    let (code, text, _) = run(tb.deployer().arg("--color=never"));
    assert_eq!(code, 3);
    let fastpath = text.lines().find(|l| l.starts_with("fastpath")).unwrap();
    assert!(fastpath.contains("►►"), "{text}");
    assert!(fastpath.contains("0.77~pr705-119 +1 other"), "{text}");
    assert!(text.contains("prod (1/3 down)"), "{text}");
    assert!(
        text.contains("Unreachable hosts:") && text.contains("prod-3 (prod)"),
        "{text}"
    );
    assert!(text.contains("fastpath on prod:"), "{text}");
}

/// A host that accepts TCP but never speaks SSH must not hold up the others.
#[test]
fn hung_host_times_out_and_the_rest_are_shown() {
    let Some(tb) = Testbed::start(&[("test", 1), ("prod", 2)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 2", "");
    for h in ["test-1", "prod-1", "prod-2"] {
        tb.set_versions(h, &[("fastpath", Some("0.81~pr748-191"))]);
    }
    let _hang = tb.hang("prod-2");
    let (code, v) = json(&tb, &[]);
    assert_eq!(code, 3);
    let err = host_json(&v, "prod", "prod-2")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("timed out after 2s"), "{err}");
    assert_eq!(
        host_json(&v, "prod", "prod-1")["packages"]["fastpath"]["version"],
        "0.81~pr748-191"
    );
    assert_eq!(comparison(&v, "fastpath", "test"), "equal");
}

fn fingerprint(tb: &Testbed, host: &str) -> String {
    let address = tb.host(host).address.clone();
    let scan = Command::new("ssh-keyscan")
        .args(["-t", "ed25519", &address])
        .output()
        .expect("ssh-keyscan");
    let mut keygen = Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ssh-keygen");
    use std::io::Write;
    keygen
        .stdin
        .take()
        .unwrap()
        .write_all(&scan.stdout)
        .unwrap();
    let out = keygen.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}

/// A changed host key is refused, naming the host, the key type and the
/// fingerprint the operator must check; the other hosts are still shown.
#[test]
fn changed_host_key_is_refused_with_its_fingerprint() {
    let Some(tb) = Testbed::start(&[("test", 1), ("prod", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    tb.set_versions("test-1", &[("fastpath", Some("0.81~pr748-191"))]);
    let _changed = tb.change_host_key("prod-1");
    let new_fp = fingerprint(&tb, "prod-1");
    let (code, v) = json(&tb, &[]);
    assert_eq!(code, 3);
    let err = host_json(&v, "prod", "prod-1")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("HOST KEY CHANGED for `prod-1`"), "{err}");
    assert!(err.contains("ssh-ed25519"), "{err}");
    assert!(err.contains(&new_fp), "{err} should name {new_fp}");
    // even --accept-new-host-keys never accepts a changed key
    let (code, v) = json(&tb, &["--accept-new-host-keys"]);
    assert_eq!(code, 3);
    assert_eq!(host_json(&v, "prod", "prod-1")["reachable"], false);
    assert_eq!(
        host_json(&v, "test", "test-1")["packages"]["fastpath"]["version"],
        "0.81~pr748-191"
    );
}

/// An unknown host is refused until the operator asks to accept new keys;
/// then its key is recorded and later runs trust it.
#[test]
fn unknown_host_key_is_accepted_only_on_request() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    let known_hosts = tb.home().join(".ssh/known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let (code, v) = json(&tb, &[]);
    assert_eq!(code, 3);
    let err = host_json(&v, "test", "test-1")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("is not known") && err.contains("SHA256:"),
        "{err}"
    );

    let (code, _) = json(&tb, &["--accept-new-host-keys"]);
    assert_eq!(code, 0);
    // recorded for its address, hashed or not (Debian's system ssh_config
    // says HashKnownHosts yes): as ssh-keygen finds it
    let found = Command::new("ssh-keygen")
        .args(["-F", &tb.host("test-1").address, "-f"])
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{}",
        std::fs::read_to_string(&known_hosts).unwrap()
    );
    let (code, _) = json(&tb, &[]);
    assert_eq!(code, 0, "the recorded key is trusted afterwards");
}

/// Every dpkg state is told apart, including Multi-Arch names.
#[test]
fn dpkg_states_and_multiarch_names() {
    dpkg_states_and_multiarch_names_on(HostKind::Bookworm);
}

/// dpkg 1.22's states and names, as `dpkg-query` prints them on Debian 13.
#[test]
fn dpkg_states_and_multiarch_names_on_trixie() {
    dpkg_states_and_multiarch_names_on(HostKind::Trixie);
}

#[test]
fn dpkg_states_and_multiarch_names_on_trixie_with_systemd() {
    dpkg_states_and_multiarch_names_on(HostKind::TrixieSystemd);
}

fn dpkg_states_and_multiarch_names_on(kind: HostKind) {
    let Some(tb) = Testbed::start_as(kind, &[("test", 1)]) else {
        return;
    };
    tb.write_config(
        &["fastpath", "analysis", "detector", "ooni-api", "multilib"],
        "",
        "",
    );
    tb.set_versions(
        "test-1",
        &[
            ("fastpath", Some("0.81~pr748-191")),
            ("analysis", Some("1.9~pr659-61")),
            ("multilib", Some("1.1-1")),
        ],
    );
    tb.remove_keep_config("test-1", "analysis");
    tb.break_package("test-1", "detector", "2.0-1");
    let (code, v) = json(&tb, &[]);
    assert_eq!(code, 0, "{v}");
    let pk = &host_json(&v, "test", "test-1")["packages"];
    assert_eq!(pk["fastpath"]["state"], "installed");
    assert_eq!(pk["analysis"]["state"], "config-files");
    assert_eq!(pk["detector"]["state"], "broken");
    assert_eq!(pk["detector"]["dpkg_state"], "unpacked");
    assert_eq!(pk["ooni-api"]["state"], "not-installed");
    assert_eq!(pk["multilib"]["version"], "1.1-1");
    assert_eq!(v["summary"]["broken"], 1);
    // a broken package asks for attention under --check
    let (code, _, _) = run(tb.deployer().arg("--check"));
    assert_eq!(code, 5);
}

/// `--check` answers by exit status.
#[test]
fn check_flag_reports_pending_and_regressions() {
    let Some(tb) = Testbed::start(&[("test", 1), ("prod", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    tb.set_versions("test-1", &[("fastpath", Some("0.81~pr748-191"))]);
    tb.set_versions("prod-1", &[("fastpath", Some("0.81~pr748-191"))]);
    assert_eq!(run(tb.deployer().arg("--check")).0, 0);
    tb.set_versions("prod-1", &[("fastpath", Some("0.77~pr705-119"))]);
    assert_eq!(run(tb.deployer().arg("--check")).0, 4, "pending rollout");
    assert_eq!(
        run(&mut tb.deployer()).0,
        0,
        "without --check pending is fine"
    );
    tb.set_versions("test-1", &[("fastpath", Some("0.77~pr705-119"))]);
    tb.set_versions("prod-1", &[("fastpath", Some("0.81~pr748-191"))]);
    assert_eq!(run(tb.deployer().arg("--check")).0, 5, "regression");
}

/// `--stage`/`--host` filters contact only the hosts they keep: a hung
/// host outside them costs nothing, and the view shows only what is kept.
#[test]
fn status_filters_do_not_wait_on_hosts_they_leave_out() {
    let Some(tb) = Testbed::start(&[("test", 2), ("prod", 2)]) else {
        return;
    };
    tb.write_config(&PACKAGES, "connect_timeout = 20", "");
    tb.set_versions("test-1", &[("fastpath", Some(common::cli::OLD))]);
    let _hung = tb.hang("prod-1");
    let started = std::time::Instant::now();
    let (code, v) = json(&tb, &["--stage", "test", "--package", "fastpath"]);
    assert_eq!(code, 0, "{v}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "waited on the hung prod-1: {:?}",
        started.elapsed()
    );
    let stages: Vec<&str> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["test"]);
    let packages = host_json(&v, "test", "test-1")["packages"]
        .as_object()
        .unwrap();
    assert_eq!(packages.keys().collect::<Vec<_>>(), ["fastpath"]);
    assert_eq!(packages["fastpath"]["version"], common::cli::OLD, "{v}");
    // a host filter: prod-2 alone, its stage with one host
    let (code, v) = json(&tb, &["--host", "prod-2"]);
    assert_eq!(code, 0, "{v}");
    let hosts: Vec<&str> = v["stages"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["prod-2"], "{v}");
    assert_eq!(v["summary"]["hosts"], 1, "{v}");
}

/// Many names for few servers, few descriptors: 2 sshds reached under 40
/// names each (each name with its own `HostKeyAlias` and known_hosts
/// lines, so 80 connections, key checks and logins), read 16 at a time
/// under `ulimit -n 48`. Every name answers: a status run closes each
/// session once its host has answered (80 open sessions would not fit in
/// 48 descriptors), and starts at most `max_startups` connections at once
/// to one sshd (16 at once would trip its `MaxStartups 10:30:100`).
#[test]
fn many_names_of_few_servers_all_answer_under_a_low_descriptor_limit() {
    use std::os::unix::process::CommandExt;
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    let ssh = tb.home().join(".ssh");
    let known_path = ssh.join("known_hosts");
    let known = std::fs::read_to_string(&known_path).unwrap();
    let (mut config, mut lines, mut names) = (String::new(), String::new(), Vec::new());
    for h in tb.all_hosts() {
        tb.set_versions(&h.alias, &[("fastpath", Some("0.81~pr748-191"))]);
        let keys: Vec<&str> = known
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(h.address.as_str()))
            .map(|l| l.split_once(' ').unwrap().1)
            .collect();
        assert_eq!(keys.len(), 3, "the testbed lists 3 keys per host");
        for i in 1..=40 {
            let name = format!("{}-n{i}", h.alias);
            config.push_str(&format!(
                "Host {name}\n    HostName {}\n    HostKeyAlias {name}\n    User deployer\n    \
                 IdentityFile {}\n    IdentitiesOnly yes\n    UserKnownHostsFile {}\n    \
                 GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking yes\n\n",
                h.address,
                ssh.join("id_ed25519").display(),
                known_path.display()
            ));
            for key in &keys {
                lines.push_str(&format!("{name} {key}\n"));
            }
            names.push(name);
        }
    }
    tb.append_ssh_config(&config);
    std::fs::write(&known_path, format!("{known}{lines}")).unwrap();
    let ini = tb.dir().join("many.ini");
    std::fs::write(
        &ini,
        format!(
            "[environment]\ndeb_packages = fastpath\nstages = test\nparallelism = 16\n\
             connect_timeout = 30\n\n[stage:test]\nhosts = {}\n",
            names.join(" ")
        ),
    )
    .unwrap();
    let mut cmd = tb.deployer();
    cmd.arg("--config").arg(&ini).args(["status", "--json"]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 48,
                rlim_max: 48,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "every name answers\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    for name in &names {
        let host = host_json(&v, "test", name);
        assert_eq!(
            host["packages"]["fastpath"]["version"], "0.81~pr748-191",
            "{name}: {host}"
        );
    }
}
