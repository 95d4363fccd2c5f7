//! End-to-end tests of the faults production throws at a deploy, each on
//! the testbed's real hosts: the fault is injected, then the hosts
//! themselves (installed version, dpkg state, holds) and the history are
//! checked. Named after the issue's items ("fail closed").

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::cli::{deployer, history, host_result, last, two_stages, two_stages_as, NEW, OLD};
use common::deadline::process_within;
use common::testbed::{
    postinst_ended, postinst_started, HostKind, Publish, Testbed, TRANSLATING_LOCALE,
};
use serde_json::Value;

/// Past this a deploy that waits for a lock has hung, not merely run slow.
const HANG: Duration = Duration::from_secs(300);
const NEWER: &str = "0.82~pr760-200";

/// Item 5: apt must not remove or pull in other packages behind the
/// plan's back; `--allow-dependency-changes` allows it, and the plan shows
/// it.
#[test]
fn item5_dependency_changes_are_refused_unless_allowed() {
    dependency_changes_are_refused_unless_allowed_on(HostKind::Bookworm);
}

/// apt 3's `apt-get -s` on Debian 13: the same `Inst`/`Remv` lines read.
#[test]
fn item5_dependency_changes_are_refused_unless_allowed_on_trixie() {
    dependency_changes_are_refused_unless_allowed_on(HostKind::Trixie);
}

#[test]
fn item5_dependency_changes_are_refused_unless_allowed_on_trixie_with_systemd() {
    dependency_changes_are_refused_unless_allowed_on(HostKind::TrixieSystemd);
}

fn dependency_changes_are_refused_unless_allowed_on(kind: HostKind) {
    let Some(tb) = two_stages_as(kind, 1, "", "") else {
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
    held_packages_are_shown_and_refused_on(HostKind::Bookworm);
}

/// Holds (`apt-mark`, dpkg's selections) on Debian 13, booting systemd.
#[test]
fn item6_held_packages_are_shown_and_refused_on_trixie() {
    held_packages_are_shown_and_refused_on(HostKind::TrixieSystemd);
}

fn held_packages_are_shown_and_refused_on(kind: HostKind) {
    let Some(tb) = two_stages_as(kind, 1, "", "") else {
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
    hold_setting_pins_the_deployed_version_on(HostKind::Bookworm);
}

/// `hold = yes` on Debian 13: apt 3's upgrade leaves the pinned version.
#[test]
fn item6_hold_setting_pins_the_deployed_version_on_trixie() {
    hold_setting_pins_the_deployed_version_on(HostKind::Trixie);
}

fn hold_setting_pins_the_deployed_version_on(kind: HostKind) {
    let Some(tb) = two_stages_as(kind, 1, "", "[package:fastpath]\nhold = yes") else {
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
    let (rest, status) = process_within(child.id(), HANG, "the deploy after the lock", move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        (rest, child.wait().unwrap())
    });
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

/// A listener standing in for a host's syslog: a datagram socket bound at
/// the host's `/dev/log` (through its `/proc/<init>/root`), drained by a
/// thread (sudo and PAM log there too, and block when nobody reads), so
/// that `logger` on the host writes to this test.
struct Syslog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Syslog {
    fn on(tb: &Testbed, host: &str) -> Syslog {
        let path = format!("/proc/{}/root/dev/log", tb.host(host).init_pid);
        let _ = std::fs::remove_file(&path);
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // as syslog daemons do: every user may log
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push(text);
            }
        });
        Syslog(seen)
    }

    /// The messages from `logger -t deployer` received so far.
    fn messages(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains(" deployer: ") && !m.contains(" sudo: "))
            .cloned()
            .collect()
    }
}

/// The raw lines of the local history (not merged by id).
fn raw_history(tb: &Testbed) -> Vec<Value> {
    std::fs::read_to_string(tb.dir().join("deployer-history.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn slow(tb: &Testbed, secs: u32) {
    tb.publish_with(
        "fastpath",
        NEWER,
        &Publish {
            postinst_sleep: Some(secs),
            ..Publish::default()
        },
    );
}

/// Wait for `marker` on test-1; on failure stop deployer `pid` and say why.
fn started_or_explain(tb: &Testbed, pid: u32, marker: &str) {
    if tb.wait_for_file("test-1", marker, Duration::from_secs(60)) {
        return;
    }
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    panic!(
        "the canary's install did not start; history: {:?}",
        raw_history(tb)
    );
}

fn spawn(tb: &Testbed, args: &[&str]) -> std::process::Child {
    tb.deployer()
        .arg("--color=never")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill has no memory effects; the pid is our own child's.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Item 1: the first SIGINT lets the canary in flight finish, starts no
/// new batch, applies the rollback policy, records `interrupted` (with the
/// `started` record written before the change, same id) and exits 9; each
/// host's syslog line is sent as soon as that host is done.
#[test]
fn item1_sigint_mid_rollout_finishes_in_flight_and_rolls_back() {
    let Some(tb) = two_stages(3, "rollback_on_failure = yes", "") else {
        return;
    };
    for h in ["test-1", "test-2", "test-3"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    slow(&tb, 3);
    let logs: Vec<Syslog> = ["test-1", "test-2"]
        .iter()
        .map(|h| Syslog::on(&tb, h))
        .collect();
    let child = spawn(&tb, &["deploy", "fastpath", "test", NEWER]);
    started_or_explain(&tb, child.id(), &postinst_started("fastpath", NEWER));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stdout}{stderr}");
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    // the canary finished its install, then was rolled back; nobody else moved
    assert_eq!(
        tb.dpkg_status("test-1", "fastpath"),
        format!("ii {OLD}"),
        "{stdout}{stderr}"
    );
    for h in ["test-2", "test-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD));
    }
    let raw = raw_history(&tb);
    let started: Vec<&Value> = raw.iter().filter(|r| r["outcome"] == "started").collect();
    assert_eq!(started.len(), 1);
    let fin = raw.last().unwrap();
    assert_eq!(fin["id"], started[0]["id"]);
    assert_eq!(fin["outcome"], "interrupted");
    assert_eq!(host_result(fin, "test-1"), "rolled-back");
    assert_eq!(host_result(fin, "test-2"), "untouched");
    let canary = logs[0].messages().join("\n");
    assert!(
        canary.contains("this host changed") && canary.contains("this host rolled-back"),
        "{canary}"
    );
    assert!(
        logs[1].messages().is_empty(),
        "an untouched host gets no line at the end"
    );
}

/// Items 1 and 2: a second signal records what is known and exits at
/// once; the install runs on, detached, to its end, and holds the host
/// (no other deploy may start) until then.
#[test]
fn item1_second_signal_exits_at_once_and_the_install_finishes_on_the_host() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    slow(&tb, 10);
    let child = spawn(&tb, &["deploy", "fastpath", "test", NEWER]);
    let ended = postinst_ended("fastpath", NEWER);
    assert!(tb.wait_for_file(
        "test-1",
        &postinst_started("fastpath", NEWER),
        Duration::from_secs(60)
    ));
    signal(&child, libc::SIGINT);
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        tb.read_file("test-1", &ended).is_none(),
        "deployer did not wait for the install"
    );
    let r = last(&tb);
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(host_result(&r, "test-1"), "unknown");
    assert_eq!(host_result(&r, "test-2"), "untouched");

    // the host is still busy: another deploy is refused, naming the run
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("still running") && err.contains("/var/lib/deployer/runs/"),
        "{err}"
    );

    // the install ends on its own, configured
    assert!(tb.wait_for_file("test-1", &ended, Duration::from_secs(60)));
    assert!(tb.wait_no_process("test-1", "apt-get", Duration::from_secs(30)));
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEWER}"));
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
}

/// Item 2: a dropped connection does not interrupt dpkg; deployer opens a
/// new one and follows the install to its end. A slow install is reported
/// as still running, never killed.
#[test]
fn item2_the_install_outlives_a_dropped_connection_and_a_timeout() {
    let Some(tb) = two_stages(1, "deploy_timeout = 2s", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    slow(&tb, 5);
    let child = spawn(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert!(tb.wait_for_file(
        "test-1",
        &postinst_started("fastpath", NEWER),
        Duration::from_secs(60)
    ));
    assert!(tb.drop_sessions("test-1") > 0);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("reconnected"), "{stdout}");
    assert!(stdout.contains("still running on test-1"), "{stdout}");
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEWER}"));
    let r = last(&tb);
    assert_eq!(r["outcome"], "success");
    assert_eq!(host_result(&r, "test-1"), "changed");
}

/// Item 3: a health check that outlives `command_timeout` ends that
/// command only; the session stays, and the rollback runs on exactly that
/// host.
#[test]
fn item3_a_timed_out_health_check_is_rolled_back_on_the_same_host() {
    let Some(tb) = two_stages(
        2,
        "command_timeout = 3s\nrollback_on_failure = yes",
        "[package:fastpath]\nhealth_check = sleep 300",
    ) else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 8, "{out}{err}");
    assert!(out.contains("health check"), "{out}");
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {OLD}"));
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
    assert!(
        tb.wait_no_process("test-1", "sleep 300", Duration::from_secs(10)),
        "{:?}",
        tb.processes("test-1")
    );
    let r = last(&tb);
    assert_eq!(host_result(&r, "test-1"), "rolled-back");
    assert_eq!(host_result(&r, "test-2"), "untouched");
}

/// Item 4: a holder that goes silent (stopped, its TCP connection still
/// open) loses the lock within `lock_expiry`; meanwhile a refused operator
/// sees who, since when, what and why. A holder that is alive keeps it
/// past `lock_expiry` (heartbeats). `unlock --force --reason` breaks a
/// lock and is recorded.
#[test]
fn item4_a_silent_holder_loses_the_lock_and_unlock_breaks_one() {
    let Some(tb) = two_stages(1, "lock_expiry = 10s", "") else {
        return;
    };
    tb.set_versions(
        "test-1",
        &[("fastpath", Some(OLD)), ("slowpkg", Some("1.0-1"))],
    );
    slow(&tb, 8);
    let lock_free = || {
        tb.exec("test-1", "flock -n /run/deployer/deploy.lock true")
            .status
            .success()
    };
    let holder = spawn(
        &tb,
        &[
            "deploy", "fastpath", "test", NEWER, "--force", "--reason", "hotfix 7",
        ],
    );
    assert!(tb.wait_for_file(
        "test-1",
        &postinst_started("fastpath", NEWER),
        Duration::from_secs(60)
    ));
    signal(&holder, libc::SIGSTOP);
    let stopped = std::time::Instant::now();
    let (code, _, err) = deployer(&tb, &["deploy", "analysis", "test"]);
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("another deploy holds the lock")
            && err.contains("deploy fastpath")
            && err.contains(NEWER)
            && err.contains("hotfix 7")
            && err.contains(" since "),
        "{err}"
    );
    assert!(
        common::testbed::poll(Duration::from_secs(30), lock_free),
        "the lock of a silent holder expires"
    );
    assert!(
        stopped.elapsed() >= Duration::from_secs(3),
        "not before its expiry"
    );
    signal(&holder, libc::SIGKILL);
    let _ = holder.wait_with_output();
    assert!(tb.wait_for_file(
        "test-1",
        &postinst_ended("fastpath", NEWER),
        Duration::from_secs(60)
    ));

    // alive and well: heartbeats keep the lock past lock_expiry
    let holder = spawn(&tb, &["deploy", "slowpkg", "test", "2.0-1"]);
    assert!(tb.wait_for_file(
        "test-1",
        "/tmp/slowpkg-postinst-started",
        Duration::from_secs(60)
    ));
    // measured over more than lock_expiry (10 s)
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        !lock_free(),
        "a live holder keeps its lock past lock_expiry"
    );

    // broken on purpose
    let (code, _, err) = deployer(&tb, &["unlock", "test", "--reason", "x"]);
    assert_eq!(code, 6, "--force is required: {err}");
    let (code, out, err) = deployer(
        &tb,
        &["unlock", "test", "--force", "--reason", "operator gone"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("broke the lock of") && out.contains("slowpkg"),
        "{out}"
    );
    assert!(lock_free());
    let r = last(&tb);
    assert_eq!(r["action"], "unlock");
    assert_eq!(r["reason"], "operator gone");
    signal(&holder, libc::SIGKILL);
    let _ = holder.wait_with_output();
}

/// Item 11: every record is also kept on the hosts it touched, so a
/// teammate with another checkout (another local history) sees the deploy
/// with `history --hosts`; the host's log is root-owned and 0644.
#[test]
fn item11_a_teammates_deploy_is_visible_through_the_hosts() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let id = last(&tb)["id"].as_str().unwrap().to_string();
    for h in ["test-1", "test-2"] {
        assert_eq!(
            tb.file_mode(h, "/var/log/deployer/history.jsonl"),
            Some(0o644)
        );
        let text = tb.read_file(h, "/var/log/deployer/history.jsonl").unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{h}: started and final");
        assert!(lines.iter().all(|l| l["id"] == id.as_str()));
        assert_eq!(lines[1]["outcome"], "success");
    }
    // a teammate: the same pipeline, an empty local history of their own
    let mate = tb.dir().join("mate");
    std::fs::create_dir(&mate).unwrap();
    let ini = std::fs::read_to_string(tb.dir().join("deployer.ini")).unwrap();
    std::fs::write(
        mate.join("deployer.ini"),
        ini.replacen(
            "[environment]",
            "[environment]\nhistory_file = mine.jsonl",
            1,
        ),
    )
    .unwrap();
    let mut cmd = tb.deployer();
    cmd.current_dir(&mate)
        .args(["--color=never", "history", "--hosts", "test", "--json"]);
    let (code, out, err) = common::cli::run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{out}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["outcome"], "success");
}

/// Item 11: a host whose history cannot be written (full disk) refuses
/// the deploy before any change; a torn local line is skipped with a
/// warning naming it; under sudo the invoking user is recorded.
#[test]
fn item11_history_that_cannot_be_written_refuses_and_a_torn_line_is_skipped() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let full = tb.disk_full("test-2", "/var/log/deployer");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("cannot record the attempt") && err.contains("test-2"),
        "{err}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD));
    }
    assert_eq!(last(&tb)["outcome"], "refused");
    full.undo();

    // a crash mid-write left half a line; the next records still count
    let path = tb.dir().join("deployer-history.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"time\":\"2026-11-2");
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = run_as_sudo(&tb, "alice", &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, listing, err) = deployer(&tb, &["history"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("deployer-history.jsonl") && err.contains("line"),
        "{err}"
    );
    assert!(listing.contains("alice@"), "{listing}");
    let r = last(&tb);
    assert_eq!(r["user"], "alice");
    assert_eq!(r["as_user"], "root");
    assert_eq!(r["outcome"], "success");
}

/// `deployer ARGS` as if run by `sudo` from `user` (deployer runs as root
/// here, so SUDO_USER is what tells who it is).
fn run_as_sudo(tb: &Testbed, user: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tb.deployer();
    cmd.env("SUDO_USER", user)
        .env("USER", "root")
        .arg("--color=never")
        .args(args);
    common::cli::run(&mut cmd)
}

/// Item 12: what hosts print is bounded and made safe: escape sequences
/// from a health check never reach the terminal raw, and a host printing
/// tens of megabytes gives a report of readable size.
#[test]
fn item12_host_output_is_bounded_and_escaped() {
    let Some(tb) = two_stages(
        1,
        "",
        "[package:fastpath]\nhealth_check = printf 'boom\\033]0;pwned\\007\\033[2J\\n'; head -c 30000000 /dev/zero | tr '\\000' x; exit 1",
    ) else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 8, "{err}");
    assert!(
        !out.contains('\x1b') && !err.contains('\x1b'),
        "raw escape in the report"
    );
    assert!(!out.contains('\x07') && !err.contains('\x07'));
    assert!(out.len() < 200_000, "report of {} bytes", out.len());
    assert!(
        out.contains("earlier bytes dropped"),
        "says how much was dropped"
    );
    assert!(
        out.lines().all(|l| l.chars().count() < 2_000),
        "a line longer than 2000 characters"
    );
    let r = last(&tb);
    let message = r["hosts"][0]["message"].as_str().unwrap();
    assert!(
        message.len() < 2_000,
        "{} bytes in the history",
        message.len()
    );
}

/// Item 13: a deploy connects only to the stages it needs: a host of
/// another stage that is down does not matter.
#[test]
fn item13_a_deploy_connects_only_to_the_stages_it_needs() {
    let Some(tb) = Testbed::start(&[("test", 1), ("hel", 1), ("prod", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let _down = tb.stop_sshd("prod-1");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !out.contains("prod-1") && !err.contains("prod-1"),
        "{out}{err}"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
}

/// Item 14: the configuration runs commands and chooses which keys to
/// trust: one that others could have written is refused before any host
/// is contacted; `critical` defaults to every stage after the first.
#[test]
fn item14_an_unsafe_configuration_is_refused_and_middle_stages_ask() {
    let Some(tb) = Testbed::start(&[("test", 1), ("prodeu", 1), ("produs", 1)]) else {
        return;
    };
    let ini = tb.write_config(&["fastpath"], "", "");
    for h in ["test-1", "prodeu-1"] {
        tb.set_versions(h, &[("fastpath", Some(NEW))]);
    }
    tb.set_versions("produs-1", &[("fastpath", Some(OLD))]);
    // group-writable: refused, nothing changed, nothing contacted
    std::fs::set_permissions(&ini, std::os::unix::fs::PermissionsExt::from_mode(0o664)).unwrap();
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "prodeu", OLD, "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("deployer.ini") && err.contains("group can write"),
        "{err}"
    );
    assert_eq!(tb.installed("prodeu-1", "fastpath").as_deref(), Some(NEW));
    std::fs::set_permissions(&ini, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // prodeu is not the last stage, and still asks
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prodeu", OLD]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("critical stage"), "{err}");
    assert!(
        out.contains("Configuration: ") && out.contains("deployer.ini"),
        "{out}"
    );
    assert_eq!(tb.installed("prodeu-1", "fastpath").as_deref(), Some(NEW));
}

/// Item 1: a signal before any host is changed (here while `apt-get
/// update` waits for apt's lists lock) stops the deploy at once, records
/// it, and leaves every host and lock as it was.
#[test]
fn item1_a_signal_before_any_change_stops_at_once() {
    let Some(tb) = two_stages(1, "lock_timeout = 60s", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let _lists = tb.hold_apt_lists_lock("test-1");
    let mut child = spawn(&tb, &["deploy", "fastpath", "test", NEW]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("waits for a lock") {
        assert!(
            stdout.read_line(&mut seen).unwrap() > 0,
            "deployer ended before waiting: {seen}"
        );
    }
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(9), "{seen}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    let r = last(&tb);
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(r["reason"], "interrupted before any host was changed");
    let lock_free = common::testbed::poll(Duration::from_secs(10), || {
        tb.exec("test-1", "flock -n /run/deployer/deploy.lock true")
            .status
            .success()
    });
    assert!(lock_free, "the deploy lock went with deployer");
}

/// Items 4 and 2: a deploy whose lock is broken (`unlock --force`, or
/// expired while deployer was paused) changes no further host: the
/// install in flight ends on its host, the next host is not touched.
#[test]
fn item4_a_lock_broken_during_the_rollout_changes_no_further_host() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    slow(&tb, 6);
    let child = spawn(&tb, &["deploy", "fastpath", "test", NEWER]);
    started_or_explain(&tb, child.id(), &postinst_started("fastpath", NEWER));
    let (code, out, err) = deployer(
        &tb,
        &["unlock", "test", "--force", "--reason", "stop that deploy"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stdout}{stderr}");
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEWER}"));
    assert_eq!(
        tb.installed("test-2", "fastpath").as_deref(),
        Some(OLD),
        "{stdout}"
    );
    let deploy = history(&tb)
        .into_iter()
        .find(|r| r["action"] == "deploy")
        .unwrap();
    assert_eq!(host_result(&deploy, "test-1"), "changed");
    assert_eq!(host_result(&deploy, "test-2"), "failed");
    let message = deploy["hosts"][1]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("broken with `deployer unlock`"),
        "{deploy}"
    );
}

/// Item 2: an install that prints megabytes between two looks at it (a
/// chatty maintainer script, an apt hook) is followed to its end, not
/// lost: each look brings back a bounded tail of the log.
#[test]
fn item2_a_flood_of_install_output_does_not_lose_the_install() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let hook = tb.exec(
        "test-1",
        "cat > /etc/apt/apt.conf.d/99flood <<'X'\nDPkg::Pre-Invoke { \"yes deployer-flood | head -c 3000000\"; };\nX",
    );
    assert!(hook.status.success(), "{hook:?}");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.len() < 200_000, "a report of {} bytes", out.len());
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEW}"));
    assert_eq!(last(&tb)["outcome"], "success");
}

/// Item 1: with stderr gone (the terminal hung up, which is what SIGHUP
/// says), the first signal's notice cannot be written; a second signal
/// must still stop deployer at once.
#[test]
fn item1_a_second_signal_stops_deployer_even_with_stderr_gone() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    slow(&tb, 15);
    let mut child = spawn(&tb, &["deploy", "fastpath", "test", NEWER]);
    drop(child.stderr.take());
    started_or_explain(&tb, child.id(), &postinst_started("fastpath", NEWER));
    signal(&child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let stopped = common::testbed::poll(Duration::from_secs(8), || {
        child.try_wait().unwrap().is_some()
    });
    if !stopped {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(stopped, "the second signal did not stop deployer");
    assert_eq!(status.code(), Some(9));
    assert!(
        tb.read_file("test-1", &postinst_ended("fastpath", NEWER))
            .is_none(),
        "deployer waited for the install"
    );
    let r = last(&tb);
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(host_result(&r, "test-1"), "unknown");
    assert_eq!(host_result(&r, "test-2"), "untouched");
}

// Issue 17, third round: stale lists, sudo advice, dpkg's lock before the
// first change, refusals under --json.

/// A second apt source on `host` whose port is closed: `apt-get update`
/// cannot fetch it, as with a repository unreachable from that host only.
fn unreachable_repository(tb: &Testbed, host: &str) {
    let out = tb.exec(
        host,
        "echo 'deb [trusted=yes] http://127.0.0.1:9/ ./' > /etc/apt/sources.list.d/unreachable.list",
    );
    assert!(out.status.success(), "{out:?}");
}

/// Round 3, item 3: a list that cannot be fetched on one host fails the
/// deploy before any host is changed, naming that host and apt's own
/// line; `versions` reports the same instead of answering from the old
/// lists.
#[test]
fn r3_item3_a_repository_unreachable_from_one_host_changes_no_host() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    // lists that apt would keep on a failed fetch: fresh ones, with NEW
    let out = tb.exec("test-2", "apt-get update -q");
    assert!(out.status.success(), "{out:?}");
    unreachable_repository(&tb, "test-2");

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 7, "failed before any change: {out}{err}");
    assert!(
        err.contains("`apt-get update` failed on 1 host(s) of `test`"),
        "{err}"
    );
    assert!(
        err.contains("note: test-2: E: Failed to fetch http://127.0.0.1:9/"),
        "the host and apt's own line: {err}"
    );
    assert!(!err.contains("test-1: E:"), "{err}");
    assert!(err.contains("stale lists"), "{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.dpkg_status(h, "fastpath"), format!("ii {OLD}"), "{h}");
    }
    let r = last(&tb);
    assert_eq!(r["outcome"], "failed");
    assert!(r["hosts"].as_array().is_none_or(Vec::is_empty), "{r}");

    let (code, out, err) = deployer(&tb, &["versions", "fastpath", "test"]);
    assert_ne!(code, 0, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("test-2 (test)"))
        .unwrap_or_else(|| panic!("test-2 not reported: {out}"));
    assert!(
        line.contains("`apt-get update` failed")
            && line.contains("E: Failed to fetch http://127.0.0.1:9/"),
        "{line}"
    );
    assert!(!out.contains("test-1 (test)  `apt-get update`"), "{out}");
}

/// One of the faults of sudo that item 6 tells apart, made on a testbed
/// host as root.
struct SudoFault {
    /// Makes the fault (a `sh -c` script run as root in the host).
    on: &'static str,
    /// Undoes it.
    off: &'static str,
    /// What `check` and the refusals say is wrong.
    problem: &'static str,
    /// What the `note:` says to do.
    fix: &'static str,
}

const SUDO_FAULTS: [SudoFault; 4] = [
    SudoFault {
        on: "sed -i 's/NOPASSWD: //' /etc/sudoers.d/deployer",
        off: "echo 'deployer ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/deployer",
        problem: "sudo on the host asks for a password; deployer needs passwordless sudo for `deployer`",
        fix: "allow `deployer` to run commands as root without a password on `test-2`: a line `deployer ALL=(ALL) NOPASSWD: ALL`",
    },
    SudoFault {
        on: "echo 'Defaults requiretty' > /etc/sudoers.d/zz-requiretty && chmod 0440 /etc/sudoers.d/zz-requiretty",
        off: "rm -f /etc/sudoers.d/zz-requiretty",
        problem: "sudo on the host wants a terminal (`Defaults requiretty`)",
        fix: "exempt `deployer` from `requiretty` on `test-2`: a line `Defaults:deployer !requiretty`",
    },
    SudoFault {
        on: "mv /etc/sudoers.d/deployer /root/deployer.sudoers",
        off: "mv /root/deployer.sudoers /etc/sudoers.d/deployer",
        problem: "`deployer` may not run commands as root through sudo: sudo said `Sorry, user deployer may not run sudo on test-2.`",
        fix: "give `deployer` the right to run every command as root on `test-2`",
    },
    SudoFault {
        on: "mv /usr/bin/sudo /usr/bin/sudo.away",
        off: "mv /usr/bin/sudo.away /usr/bin/sudo",
        problem: "`sudo` is not installed",
        fix: "install sudo on `test-2` as root (`apt-get install sudo`)",
    },
];

/// Round 3, item 6: each fault of sudo gets its own diagnosis and fix,
/// the same from `check` and from the deploy's refusal (whose probe also
/// runs in the C locale); nothing changes on any host.
#[test]
fn r3_item6_each_sudo_fault_gets_its_own_fix_in_check_and_deploy() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    for fault in &SUDO_FAULTS {
        let on = tb.exec("test-2", fault.on);
        assert!(on.status.success(), "{}: {on:?}", fault.on);

        let (code, out, err) = deployer(&tb, &["check", "test"]);
        assert_ne!(code, 0, "{}: {out}{err}", fault.on);
        let row = |host: &str| {
            out.lines()
                .find(|l| l.starts_with(&format!("{host} (test)")))
                .unwrap_or_else(|| panic!("no row for {host}: {out}"))
                .to_string()
        };
        assert!(row("test-1").contains("sudo ok"), "{out}");
        assert!(row("test-2").contains("sudo FAILED"), "{out}");
        assert!(
            out.contains(&format!("  sudo: {}", fault.problem)),
            "{}: {out}",
            fault.on
        );
        assert!(
            out.contains(&format!("  note: {}", fault.fix)),
            "{}: {out}",
            fault.on
        );
        // each fault is told apart from the others: no other fix shows
        for other in SUDO_FAULTS.iter().filter(|o| o.on != fault.on) {
            assert!(!out.contains(other.fix), "{}: {out}", fault.on);
        }

        let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
        assert_eq!(code, 6, "{}: {out}{err}", fault.on);
        assert!(
            err.contains(&format!("note: test-2: {}", fault.problem)),
            "{err}"
        );
        assert!(err.contains(&format!("note: {}", fault.fix)), "{err}");
        assert!(!err.contains("test-1:"), "{err}");
        assert_eq!(last(&tb)["outcome"], "refused");

        let off = tb.exec("test-2", fault.off);
        assert!(off.status.success(), "{}: {off:?}", fault.off);
    }
    // a host whose sessions speak German: the deploy's probe still reads
    // sudo, and still gives the fix
    let _german = tb.session_locale("test-2", &TRANSLATING_LOCALE);
    let _password = tb.sudo_requires_password("test-2");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains(&format!("note: test-2: {}", SUDO_FAULTS[0].problem)),
        "{err}"
    );
    assert!(err.contains(SUDO_FAULTS[0].fix), "{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.dpkg_status(h, "fastpath"), format!("ii {OLD}"), "{h}");
    }
}

/// Round 3, item 6: freeze, unlock and refresh-badges ask sudo through
/// the same probe, refuse (or skip the host) with the fault's own fix,
/// and write nothing.
#[test]
fn r3_item6_freeze_unlock_and_badges_give_the_same_sudo_advice() {
    let Some(tb) = two_stages(2, "badges_path = /var/www/package_badges", "") else {
        return;
    };
    let tty = &SUDO_FAULTS[1];
    let on = tb.exec("test-2", tty.on);
    assert!(on.status.success(), "{on:?}");

    let (code, out, err) = deployer(&tb, &["freeze", "test", "--reason", "r3 item 6", "--json"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains(&format!("note: test-2: {}", tty.problem)),
        "{err}"
    );
    assert!(err.contains(&format!("note: {}", tty.fix)), "{err}");
    let record: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(record["outcome"], "refused");
    assert_eq!(record, last(&tb));
    for h in ["test-1", "test-2"] {
        assert_eq!(
            tb.read_file(h, "/var/lib/deployer/freeze/test"),
            None,
            "{h}"
        );
    }

    let (code, out, err) = deployer(
        &tb,
        &[
            "unlock",
            "test",
            "--force",
            "--reason",
            "r3 item 6",
            "--json",
        ],
    );
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains(&format!("note: {}", tty.fix)), "{err}");
    let record: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(record["action"], "unlock");
    assert_eq!(record["outcome"], "refused");

    let (code, out, err) = deployer(&tb, &["refresh-badges"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("host `test-2` (test): badges not written"),
        "{err}"
    );
    assert!(err.contains(tty.fix), "{err}");
    assert!(
        tb.read_file("test-1", "/var/www/package_badges/fastpath.svg")
            .is_some(),
        "{out}{err}"
    );
    assert!(tb
        .read_file("test-2", "/var/www/package_badges/fastpath.svg")
        .is_none());
}

/// Round 3, item 6: the `local` transport run by root on a machine
/// without sudo (a fresh root shell, which the README supports): `check`
/// passes its sudo check, since root needs no sudo.
#[test]
fn r3_item6_local_root_without_sudo_passes_check() {
    if !is_root() {
        common::skip::skip("not root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // a PATH with everything of /usr/bin but sudo
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for entry in std::fs::read_dir("/usr/bin").unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "sudo" {
            std::os::unix::fs::symlink(entry.path(), bin.join(entry.file_name())).unwrap();
        }
    }
    let path = format!("{}:/usr/sbin:/sbin", bin.display());
    let no_sudo = std::process::Command::new("/bin/sh")
        .args(["-c", "command -v sudo"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(!no_sudo.status.success(), "sudo still on the PATH");
    let config = dir.path().join("deployer.ini");
    std::fs::write(
        &config,
        "[environment]\ndeb_packages = dpkg\nstages = test\n[stage:test]\nhosts = local\n",
    )
    .unwrap();
    let out = common::bin::deployer(dir.path(), dir.path())
        .arg("--config")
        .arg(&config)
        .args(["--color=never", "check"])
        .env("PATH", &path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("sudo ok"), "{stdout}");
    assert!(stdout.contains("tools ok"), "{stdout}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Round 3, item 7: another apt run holds dpkg's lock on the second host
/// of the stage: the deploy waits `lock_timeout` for it, saying so, then
/// refuses before changing any host (the canary included), naming the
/// host and the holder's pid and command.
#[test]
fn r3_item7_dpkg_busy_on_the_second_host_refuses_before_the_canary() {
    let Some(tb) = two_stages(2, "lock_timeout = 3s", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    // a real apt-get on test-2, in slowpkg's postinst (30 s) with dpkg
    // locked
    let started = tb.exec(
        "test-2",
        "apt-get update -q >/dev/null 2>&1 && { setsid apt-get install -y -q slowpkg=2.0-1 \
         </dev/null >/tmp/r3-holder.log 2>&1 & }",
    );
    assert!(started.status.success(), "{started:?}");
    assert!(
        tb.wait_for_file(
            "test-2",
            "/tmp/slowpkg-postinst-started",
            Duration::from_secs(60)
        ),
        "the other apt run did not start: {:?}",
        tb.read_file("test-2", "/tmp/r3-holder.log")
    );
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("dpkg is busy on 1 host(s) of `test`"), "{err}");
    let note = err
        .lines()
        .find(|l| l.starts_with("note: test-2: `/var/lib/dpkg/lock"))
        .unwrap_or_else(|| panic!("no note for test-2: {err}"));
    let pid: String = note
        .split("held by process ")
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 1), "{note}");
    // the pid named is the other apt run's, as the host numbers it
    let holders = tb.exec(
        "test-2",
        "for d in /proc/[0-9]*; do c=$(cat $d/comm 2>/dev/null); \
         case $c in apt-get|dpkg) echo \"${d#/proc/} $c\";; esac; done",
    );
    let holders = String::from_utf8_lossy(&holders.stdout).to_string();
    let named = holders
        .lines()
        .find(|l| l.split_whitespace().next() == Some(pid.as_str()))
        .unwrap_or_else(|| panic!("pid {pid} is no apt-get or dpkg of test-2: {holders}"));
    let command = named.split_whitespace().nth(1).unwrap();
    assert!(note.contains(&format!("(`{command}`)")), "{note} / {named}");
    assert!(note.ends_with("still after 3s"), "{note}");
    assert!(
        out.contains("test-2: another process holds dpkg's lock; waiting up to 3s"),
        "the wait is said: {out}"
    );
    assert!(!err.contains("note: test-1:"), "{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.dpkg_status(h, "fastpath"), format!("ii {OLD}"), "{h}");
    }
    let r = last(&tb);
    assert_eq!(r["outcome"], "refused");
    assert!(
        r["reason"].as_str().unwrap().contains("dpkg is busy"),
        "{r}"
    );
    // the other run is left to finish
    assert!(tb.wait_no_process("test-2", "apt-get install", Duration::from_secs(90)));
    assert_eq!(tb.dpkg_status("test-2", "slowpkg"), "ii 2.0-1");
}

/// Round 3, item 7: dpkg's lock released within `lock_timeout` lets the
/// deploy go ahead on every host.
#[test]
fn r3_item7_dpkg_released_within_lock_timeout_lets_the_deploy_go_on() {
    let Some(tb) = two_stages(2, "lock_timeout = 120s", "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let lock = tb.hold_dpkg_lock("test-2");
    let mut child = spawn(&tb, &["deploy", "fastpath", "test", NEW]);
    let stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains("test-2: another process holds dpkg's lock; waiting up to 120s") {
            break;
        }
    }
    assert!(
        seen.contains("another process holds dpkg's lock"),
        "never waited: {seen}{}",
        err.join().unwrap()
    );
    // nothing changed while waiting, the canary included
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {OLD}"));
    lock.undo();
    let (rest, status) = process_within(
        child.id(),
        HANG,
        "the deploy after dpkg's lock",
        move || {
            (
                std::io::read_to_string(stdout).unwrap(),
                child.wait().unwrap(),
            )
        },
    );
    let err = err.join().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}{rest}{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.dpkg_status(h, "fastpath"), format!("ii {NEW}"), "{h}");
    }
    assert_eq!(last(&tb)["outcome"], "success");
}

/// Round 3, item 8: under `--json`, every refused attempt prints its
/// history record, exactly as recorded: deploy, promote, rollback by
/// deploy, freeze, unlock, and a request rejected for its input.
#[test]
fn r3_item8_every_refusal_prints_its_history_record_under_json() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    tb.set_versions("prod-1", &[("fastpath", Some(OLD))]);
    // both stages frozen: each attempt below is refused for it, or for
    // its own reason (an existing freeze, no --force, an unknown package)
    for stage in ["test", "prod"] {
        let (code, out, err) = deployer(&tb, &["freeze", stage, "--reason", "incident 8"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let refusals: [(&[&str], &str, i32); 6] = [
        (&["deploy", "fastpath", "prod", NEW, "--yes"], "deploy", 6),
        (&["promote", "fastpath", "prod", "--yes"], "promote", 6),
        (&["deploy", "fastpath", "test", OLD], "deploy", 6),
        (&["freeze", "prod", "--reason", "again"], "freeze", 6),
        (&["unlock", "prod", "--reason", "no force"], "unlock", 6),
        (&["deploy", "no-such-package", "test"], "deploy", 2),
    ];
    for (args, action, status) in refusals {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = deployer(&tb, &all);
        assert_eq!(code, status, "{args:?}: {out}{err}");
        let document: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        assert_eq!(document["outcome"], "refused", "{args:?}: {out}");
        assert_eq!(document["action"], action, "{args:?}: {out}");
        assert_eq!(document, last(&tb), "{args:?}: the document is the record");
        assert!(err.contains("error: "), "{args:?}: {err}");
    }
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEW}"));
    assert_eq!(tb.dpkg_status("prod-1", "fastpath"), format!("ii {OLD}"));
}

// ---------------------------------------------------------------------------
// Issue 17, third round: items 4 and 5 (root writes on hosts, new badges)

/// Run `cmd` as root inside `host`, asserting that it worked.
fn r3_on(tb: &Testbed, host: &str, cmd: &str) {
    let out = tb.exec(host, cmd);
    assert!(out.status.success(), "{host}: `{cmd}`: {out:?}");
}

/// Whether `path` exists inside `host` (as a link, too), looked at from
/// inside, where the host's own links resolve.
fn r3_exists(tb: &Testbed, host: &str, path: &str) -> bool {
    tb.exec(host, &format!("test -e '{path}' || test -L '{path}'"))
        .status
        .success()
}

/// Item 4: a badge directory planted as a link, by a web server's account
/// that owns its parent (the issue's case), or under a root-owned parent,
/// and a badge's own name planted as a link: each is refused, naming the
/// path and its owner; nothing is written through the link (no
/// `/root/.ssh/fastpath.svg`); `check` reports the same; a host without a
/// plant gets its badges.
#[test]
fn r3_item4_badges_are_never_written_through_a_planted_link() {
    let Some(tb) = two_stages(2, "badges_path = /var/www/badges", "") else {
        return;
    };
    let before = common::cli::listing(&tb, "test-1", "/root/.ssh");
    // test-1: www-data owns /var/www and swapped the directory for a link
    r3_on(
        &tb,
        "test-1",
        "mkdir -p /var/www && chown www-data: /var/www && ln -s /root/.ssh /var/www/badges && chown -h www-data: /var/www/badges",
    );
    // test-2: a link at the badge directory itself, under a root-owned parent
    r3_on(
        &tb,
        "test-2",
        "mkdir -p /var/www && ln -s /root/.ssh /var/www/badges && chown -h www-data: /var/www/badges",
    );
    // prod-1: a link at a badge's own name
    r3_on(
        &tb,
        "prod-1",
        "mkdir -p /var/www/badges && ln -s /root/.ssh/fastpath.svg /var/www/badges/fastpath.svg && chown -h www-data: /var/www/badges/fastpath.svg",
    );
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_ne!(code, 0, "{out}{err}");
    for (host, path, owner) in [
        ("test-1", "/var/www", "www-data"),
        ("test-2", "/var/www/badges", "www-data"),
        ("prod-1", "/var/www/badges/fastpath.svg", "www-data"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("host `{host}`")))
            .unwrap_or_else(|| panic!("{host} not refused: {err}"));
        assert!(
            line.contains("refusing to write the badges in `/var/www/badges` as root")
                && line.contains(&format!("`{path}` (owner {owner}, uid 33,")),
            "{host}: {err}"
        );
        assert!(!r3_exists(&tb, host, "/root/.ssh/fastpath.svg"), "{host}");
        assert_eq!(
            common::cli::listing(&tb, host, "/root/.ssh"),
            before,
            "{host}"
        );
    }
    assert!(err.contains("note: "), "{err}");
    assert!(
        common::cli::listing(&tb, "prod-2", "/var/www/badges")
            .contains(&"fastpath.svg".to_string()),
        "the host without a plant got its badges: {out}{err}"
    );

    // check reports the same problems, and changes nothing
    let (code, out, err) = deployer(&tb, &["check", "--json"]);
    assert_eq!(code, 3, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let badges = |host: &str| common::cli::check_item(&v, host, "badges_path").clone();
    for (host, path) in [
        ("test-1", "`/var/www` (owner www-data"),
        ("test-2", "`/var/www/badges` (owner www-data"),
        ("prod-1", "`/var/www/badges/fastpath.svg` (owner www-data"),
    ] {
        let b = badges(host);
        assert_eq!(b["result"], "failed", "{host}: {b}");
        assert!(b["problem"].as_str().unwrap().contains(path), "{host}: {b}");
    }
    assert_eq!(badges("prod-2")["result"], "ok");
    assert_eq!(common::cli::listing(&tb, "test-1", "/root/.ssh"), before);
}

/// Item 4: the lock directory, the host history, the run directories and
/// the freeze directory, each planted as a link to `/root/.ssh` by another
/// user: the deploy (or freeze) is refused naming the path and its owner,
/// the host is not changed, nothing is written through the link, and
/// `check` names the plant.
#[test]
fn r3_item4_lock_history_run_and_freeze_directories_refuse_a_planted_link() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let before = common::cli::listing(&tb, "test-1", "/root/.ssh");
    // a link to /root/.ssh, or into it for a file, owned by www-data
    let plant = |path: &str| {
        let target = if path.ends_with(".jsonl") {
            "/root/.ssh/authorized_keys"
        } else {
            "/root/.ssh"
        };
        r3_on(
            &tb,
            "test-1",
            &format!(
                "rm -rf '{path}' && mkdir -p \"$(dirname '{path}')\" && ln -s {target} '{path}' && chown -h www-data: '{path}'"
            ),
        );
    };
    let keys = tb.read_file("test-1", "/root/.ssh/authorized_keys");
    assert!(keys.is_some(), "root's authorized_keys is there to be kept");
    let unplant = |path: &str| r3_on(&tb, "test-1", &format!("rm -f '{path}'"));
    let named = |err: &str, path: &str| {
        assert!(
            err.contains(&format!("`{path}` (owner www-data, uid 33,"))
                && err.contains("is a symbolic link"),
            "{path}: {err}"
        );
    };

    // the lock directory, then the host history (its directory, its file):
    // refused before any change
    for (path, headline) in [
        (
            "/run/deployer",
            "the deploy lock of `test` cannot be taken safely",
        ),
        (
            "/var/log/deployer",
            "cannot record the attempt on 1 host(s) of `test`",
        ),
        (
            "/var/log/deployer/history.jsonl",
            "cannot record the attempt on 1 host(s) of `test`",
        ),
    ] {
        plant(path);
        let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
        assert_ne!(code, 0, "{out}{err}");
        assert!(err.contains(headline), "{err}");
        named(&err, path);
        assert_eq!(last(&tb)["outcome"], "refused");
        assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
        assert_eq!(common::cli::listing(&tb, "test-1", "/root/.ssh"), before);
        assert_eq!(tb.read_file("test-1", "/root/.ssh/authorized_keys"), keys);
        unplant(path);
    }

    // the run directories
    plant("/var/lib/deployer/runs");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_ne!(code, 0, "{out}{err}");
    named(&format!("{out}{err}"), "/var/lib/deployer/runs");
    let r = last(&tb);
    assert_ne!(r["outcome"], "success", "{r}");
    assert_ne!(host_result(&r, "test-1"), "changed", "{r}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    assert_eq!(common::cli::listing(&tb, "test-1", "/root/.ssh"), before);
    unplant("/var/lib/deployer/runs");

    // the freeze directory
    plant("/var/lib/deployer/freeze");
    let (code, out, err) = deployer(&tb, &["freeze", "test", "--reason", "r3 item 4"]);
    assert_ne!(code, 0, "{out}{err}");
    named(&format!("{out}{err}"), "/var/lib/deployer/freeze");
    assert!(!r3_exists(&tb, "test-1", "/root/.ssh/test"));
    assert_eq!(common::cli::listing(&tb, "test-1", "/root/.ssh"), before);

    // check names the plant; the host without one passes
    let (code, out, err) = deployer(&tb, &["check"]);
    assert_eq!(code, 3, "{out}{err}");
    let at = out
        .lines()
        .position(|l| l.starts_with("test-1 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        out.lines().nth(at).unwrap().contains("root-paths FAILED"),
        "{out}"
    );
    named(out.lines().nth(at + 1).unwrap(), "/var/lib/deployer/freeze");
    assert!(
        out.lines()
            .nth(at + 2)
            .unwrap()
            .starts_with("  note: on `test-1`, replace the link"),
        "{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.starts_with("prod-1 ") && l.contains("FAILED")),
        "{out}"
    );
    unplant("/var/lib/deployer/freeze");

    // with every plant gone, the same deploy goes through
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
}

/// Item 5: a package added to `deb_packages` gets its badge at the next
/// refresh (the others are left alone), and so does every package when the
/// badge directory exists but is empty.
#[test]
fn r3_item5_a_new_package_and_an_empty_directory_get_their_badges() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    let env = "badges_path = /var/www/badges";
    tb.write_config(&["fastpath"], env, "");
    // test-2: the directory exists, empty
    r3_on(&tb, "test-2", "mkdir -p /var/www/badges");
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    for host in ["test-1", "test-2"] {
        assert_eq!(
            common::cli::listing(&tb, host, "/var/www/badges"),
            ["fastpath.svg"],
            "{host}"
        );
    }
    let inode = |host: &str| {
        let out = tb.exec(host, "stat -c %i /var/www/badges/fastpath.svg");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let kept = inode("test-1");
    // a package added to the configuration
    tb.write_config(&["fastpath", "detector"], env, "");
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("cannot write the badges"), "{err}");
    for host in ["test-1", "test-2"] {
        assert_eq!(
            common::cli::listing(&tb, host, "/var/www/badges"),
            ["detector.svg", "fastpath.svg"],
            "{host}"
        );
        assert!(out.contains("1 written, 1 unchanged"), "{out}");
    }
    assert_eq!(inode("test-1"), kept, "the unchanged badge was left alone");
    let badge = tb
        .read_file("test-1", "/var/www/badges/detector.svg")
        .unwrap();
    assert!(badge.contains("detector"), "{badge}");
}

// ---------------------------------------------------------------------------
// Issue 17 ("fail closed, third round"), items 1 and 2.

/// A gate on `host`'s `sudo` (first on the deploy user's PATH): the
/// `nth` command whose line contains `pattern` runs, then its answer is
/// held back until `/gate/go` exists, with `/gate/reached` saying it is
/// held (`/gate` is writable by all and not sticky: the deploy user keeps
/// its count there). Every other command goes straight through.
fn gate_sudo(tb: &Testbed, host: &str, pattern: &str, nth: u32) {
    let out = tb.exec(
        host,
        &format!(
            r#"cat > /usr/local/bin/sudo <<'X'
#!/bin/sh
case "$*" in
*{pattern}*)
    n=$(($(cat /gate/count 2>/dev/null || echo 0) + 1))
    echo "$n" > /gate/count
    if [ "$n" = {nth} ]; then
        out=$(/usr/bin/sudo "$@"); rc=$?
        touch /gate/reached
        while [ ! -e /gate/go ]; do sleep 0.1; done
        printf '%s\n' "$out"
        exit $rc
    fi ;;
esac
exec /usr/bin/sudo "$@"
X
chmod 755 /usr/local/bin/sudo && mkdir -m 0777 /gate"#
        ),
    );
    assert!(out.status.success(), "{out:?}");
    let which = tb.ssh(host, "deployer", "command -v sudo");
    assert_eq!(
        String::from_utf8_lossy(&which.stdout).trim(),
        "/usr/local/bin/sudo",
        "the gate must come first on the deploy user's PATH: {which:?}"
    );
}

/// Run `args`, wait for the gate of [`gate_sudo`] on `host`, and stop
/// that deployer there (SIGSTOP: a closed laptop lid) until its lock on
/// `host` has expired.
fn stall_at_the_gate(tb: &Testbed, host: &str, args: &[&str]) -> std::process::Child {
    let child = spawn(tb, args);
    if !tb.wait_for_file(host, "/gate/reached", Duration::from_secs(120)) {
        signal(&child, libc::SIGKILL);
        let out = child.wait_with_output().unwrap();
        panic!(
            "the deploy never reached the gate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    signal(&child, libc::SIGSTOP);
    assert!(
        common::testbed::poll(Duration::from_secs(60), || {
            tb.exec(host, "flock -n /run/deployer/deploy.lock true")
                .status
                .success()
        }),
        "the stalled deploy's lock expires"
    );
    child
}

/// Let the deployer stalled by [`stall_at_the_gate`] go on; its output.
fn resume(tb: &Testbed, host: &str, child: std::process::Child) -> (Option<i32>, String) {
    assert!(tb.exec(host, "touch /gate/go").status.success());
    signal(&child, libc::SIGCONT);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Issue 17 item 1: deployer checks that the host's deploy lock is still
/// its own, then stalls (SIGSTOP, a closed laptop lid) past `lock_expiry`;
/// the lock expires and a second deploy changes the host. When the first
/// resumes, its install does not go ahead: the lock is proven on the host
/// in the step that starts dpkg. The second deploy's result stands (the
/// version, dpkg's state), and the first's record says the lock was lost.
#[test]
fn r3_item1_a_stalled_deploy_whose_lock_expired_leaves_the_second_deploys_result() {
    let Some(tb) = two_stages(1, "lock_expiry = 10s", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.publish("fastpath", NEWER);
    // the first lock check is answered "ours", then the operator stalls
    gate_sudo(&tb, "test-1", "deployer-lock-check", 1);
    let first = stall_at_the_gate(
        &tb,
        "test-1",
        &["deploy", "fastpath", "test", NEW, "--reason", "first"],
    );
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEWER, "--reason", "second"],
    );
    assert_eq!(code, 0, "the second deploy: {out}{err}");
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEWER}"));

    // resume the first: its check said "ours", but the lock is gone
    let (code, output) = resume(&tb, "test-1", first);
    assert_ne!(code, Some(0), "{output}");
    assert!(output.contains("lock lost"), "{output}");

    // the host: the second deploy's version, dpkg clean
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEWER}"));
    let audit = tb.exec("test-1", "dpkg --audit");
    assert!(
        audit.status.success() && audit.stdout.is_empty(),
        "{audit:?}"
    );
    // the history of both
    let h = history(&tb);
    let second = h.iter().find(|r| r["version"] == NEWER).unwrap();
    let first = h.iter().find(|r| r["version"] == NEW).unwrap();
    assert_eq!(second["outcome"], "success", "{second}");
    assert_eq!(host_result(second, "test-1"), "changed");
    assert_ne!(first["outcome"], "success", "{first}");
    assert_eq!(host_result(first, "test-1"), "failed", "{first}");
    let message = first["hosts"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("lock lost") && message.contains("nothing was changed"),
        "{first}"
    );
}

/// Deploy NEWER (a postinst that sleeps) to `test-1` and `test-2`, both on
/// OLD, and "reboot" `test-1` during its postinst: the install and the lock
/// die, `/run/deployer` is emptied, the sessions are cut. The run directory
/// recorded the boot and the process identity first. What deployer did,
/// and how long it took after the reboot.
fn deploy_and_reboot_the_canary(tb: &Testbed) -> (std::process::Output, Duration) {
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    slow(tb, 47);
    let child = spawn(tb, &["deploy", "fastpath", "test", NEWER]);
    started_or_explain(tb, child.id(), &postinst_started("fastpath", NEWER));
    let run = tb
        .read_file("test-1", "/run/deployer/installing")
        .expect("the run is named")
        .trim()
        .to_string();
    let boot = tb
        .read_file("test-1", "/proc/sys/kernel/random/boot_id")
        .unwrap();
    assert_eq!(
        tb.read_file("test-1", &format!("{run}/boot")).as_deref(),
        Some(boot.as_str()),
        "the run records the boot it runs in"
    );
    let identity = tb.read_file("test-1", &format!("{run}/pid")).unwrap();
    assert_eq!(
        identity.split_whitespace().count(),
        2,
        "pid and start time: {identity}"
    );

    // the "reboot": the sessions are cut first (as a reboot cuts them
    // before a poll could see the run gone over a live session), then the
    // install and the lock die and /run is emptied
    let began = std::time::Instant::now();
    tb.drop_sessions("test-1");
    for pattern in [
        "deployer-run",
        "deployer-lock",
        "apt-get",
        "dpkg",
        "sleep 47",
    ] {
        tb.kill_processes("test-1", pattern, libc::SIGKILL);
    }
    assert!(tb.exec("test-1", "rm -rf /run/deployer").status.success());

    let out = child.wait_with_output().unwrap();
    (out, began.elapsed())
}

/// Issue 17 item 2, with the rollback policy on: after the reconnection
/// the lock (gone with `/run`) is taken again and the rollback is tried,
/// but dpkg's state (an interrupted run, the new version half-configured)
/// does not allow it: apt refuses before changing anything, the host is
/// left as dpkg left it (`unknown`), the record says why and what to run,
/// and the other host is never touched.
#[test]
fn r3_item2_a_rollback_after_a_reboot_goes_only_where_dpkg_allows() {
    let Some(tb) = two_stages(2, "rollback_on_failure = yes", "") else {
        return;
    };
    let (out, took) = deploy_and_reboot_the_canary(&tb);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(60), "{said}");
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("Rolling back 1 host(s): test-1"), "{said}");
    assert_eq!(
        tb.dpkg_status("test-1", "fastpath"),
        format!("iF {NEWER}"),
        "{said}"
    );
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
    let r = last(&tb);
    assert_eq!(host_result(&r, "test-1"), "unknown", "{r}");
    assert_eq!(host_result(&r, "test-2"), "untouched", "{r}");
    let message = r["hosts"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("over without an exit status")
            && message.contains("rollback did not restore")
            && message.contains("dpkg --configure -a"),
        "{r}"
    );
    assert!(!message.contains("lock"), "the lock was taken again: {r}");
}

/// Issue 17 item 2: the host "reboots" during the install (every process
/// of the install and the lock is killed, `/run/deployer` emptied, the
/// sessions cut). deployer reconnects, sees from the run's recorded
/// process identity (pid and start time) that the install is gone, and
/// stops waiting: the host is `unknown` with what `dpkg --audit` says, no
/// further host is changed, and the record says all of it. (A changed boot
/// id, which a testbed host cannot fake since `/proc` is the kernel's, is
/// covered by `detach::tests::a_poll_tells_a_run_that_died_from_one_that_runs`.)
#[test]
fn r3_item2_an_install_that_died_with_its_host_is_not_waited_for() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    let (out, took) = deploy_and_reboot_the_canary(&tb);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        took < Duration::from_secs(40),
        "deployer waited for an install that no longer exists: {stdout}{stderr}"
    );
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("still running on"), "{stdout}{stderr}");
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
    let r = last(&tb);
    assert_eq!(host_result(&r, "test-1"), "unknown", "{r}");
    assert_eq!(host_result(&r, "test-2"), "untouched", "{r}");
    let message = r["hosts"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("over without an exit status") && message.contains("is gone"),
        "{r}"
    );
    assert!(message.contains("dpkg --audit"), "{r}");
    // killed in its postinst: dpkg left it half-configured, and says so
    let state = tb.dpkg_status("test-1", "fastpath");
    assert_eq!(state, format!("iF {NEWER}"));
    assert!(message.contains("half configured"), "{r}");
}

/// Issue 17 item 1: the badges written after a deploy are a change under
/// its lock too. A deploy stalled (after its install, before its badges)
/// past `lock_expiry` while a second deploy changes the host and writes
/// its badges does not, when it resumes, put its own older badges over
/// them: it warns that the lock was lost.
#[test]
fn r3_item1_badges_after_a_deploy_are_written_only_under_its_lock() {
    let Some(tb) = two_stages(
        1,
        "lock_expiry = 10s\nbadges_path = /var/www/package_badges",
        "",
    ) else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.publish("fastpath", NEWER);
    // the second append to the host's history is the first deploy's final
    // record, just before its badges
    gate_sudo(&tb, "test-1", "/var/log/deployer", 2);
    let first = stall_at_the_gate(&tb, "test-1", &["deploy", "fastpath", "test", NEW]);
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEW}"));
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "the second deploy: {out}{err}");
    let badge = "/var/www/package_badges/fastpath.svg";
    let written = tb
        .read_file("test-1", badge)
        .expect("the second deploy's badge");
    assert!(written.contains(NEWER), "{written}");

    let (code, output) = resume(&tb, "test-1", first);
    assert_eq!(code, Some(0), "its install had gone well: {output}");
    assert!(
        output.contains("badges not refreshed") && output.contains("lock lost"),
        "{output}"
    );
    assert_eq!(
        tb.read_file("test-1", badge).as_deref(),
        Some(written.as_str()),
        "the second deploy's badge stands"
    );
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), format!("ii {NEWER}"));
}
