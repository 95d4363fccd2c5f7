//! Self-tests of the testbed (`tests/common/testbed.rs`): every promise it
//! makes to the end-to-end tests, checked with the system OpenSSH client
//! (`ssh -F`, `BatchMode=yes`, strict host key checking) and dpkg/apt inside
//! the hosts. Each test skips when not root, and fails on CI instead.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::testbed::{poll, Testbed};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Panic with the command's stderr unless it succeeded; return its stdout.
#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// PIDs (as this machine sees them) of every process of a host but its init.
fn host_processes(init_pid: u32) -> Vec<u32> {
    let ns = std::fs::read_link(format!("/proc/{init_pid}/ns/pid")).expect("init's pid ns");
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != init_pid)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .ok()
                .as_ref()
                == Some(&ns)
        })
        .collect()
}

/// The state letter (R, S, T...) of a process, if it still exists.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn hosts_are_reachable_as_deployer_and_root_with_strict_host_keys() {
    let Some(tb) = Testbed::start(&[("test", 2), ("prod", 1)]) else {
        return;
    };
    let aliases: Vec<String> = tb.all_hosts().iter().map(|h| h.alias.clone()).collect();
    assert_eq!(aliases, ["test-1", "test-2", "prod-1"]);
    assert_eq!(tb.hosts("test").len(), 2);

    let addresses: BTreeSet<&str> = tb.all_hosts().iter().map(|h| h.address.as_str()).collect();
    assert_eq!(addresses.len(), 3, "every host has its own address");

    for host in tb.all_hosts() {
        let out = ok(tb.ssh(
            &host.alias,
            "deployer",
            "id -un; hostname; sudo -n true && echo sudo-ok",
        ));
        assert_eq!(out, format!("deployer\n{}\nsudo-ok", host.alias));
        assert_eq!(ok(tb.ssh(&host.alias, "root", "id -u")), "0");
        // The alias, the address and the key all agree: what `ssh` reached is
        // the host with that address.
        let seen = ok(tb.ssh(&host.alias, "deployer", "echo $SSH_CONNECTION"));
        assert_eq!(seen.split_whitespace().nth(2), Some(host.address.as_str()));
    }

    // known_hosts: every key type of every host, keyed by address.
    let known = std::fs::read_to_string(tb.home().join(".ssh/known_hosts")).unwrap();
    for host in tb.all_hosts() {
        let types: BTreeSet<&str> = known
            .lines()
            .filter(|l| l.starts_with(&format!("{} ", host.address)))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(
            types,
            BTreeSet::from(["ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"]),
            "{}",
            host.alias
        );
    }

    // Hosts are alike but not the same machine: keys differ per host.
    let fingerprint = |alias: &str| ok(tb.exec(alias, "cat /etc/ssh/ssh_host_ed25519_key.pub"));
    assert_ne!(fingerprint("test-1"), fingerprint("test-2"));

    // Nothing but the testbed's repository, and apt-get update works offline.
    let sources = ok(tb.ssh(
        "test-1",
        "root",
        "cat /etc/apt/sources.list; ls /etc/apt/sources.list.d",
    ));
    assert_eq!(sources, "deb [trusted=yes] file:/srv/repo ./");
    ok(tb.ssh("test-1", "deployer", "sudo -n apt-get update -q"));
}

#[test]
fn set_versions_is_what_dpkg_query_reports_over_ssh() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    tb.set_versions(
        "test-1",
        &[
            ("ooni-api", Some("1.0.78~pr740-180")),
            ("fastpath", Some("0.81~pr748-191")),
            ("detector", Some("1:1.0-1")),
            ("multilib", Some("1.1-1")),
        ],
    );
    let query = "dpkg-query -W -f '${binary:Package} ${Version} ${db:Status-Abbrev}\\n' \
                 ooni-api fastpath detector multilib";
    assert_eq!(
        ok(tb.ssh("test-1", "deployer", query)),
        "detector 1:1.0-1 ii \nfastpath 0.81~pr748-191 ii \nmultilib:amd64 1.1-1 ii \nooni-api 1.0.78~pr740-180 ii"
    );
    assert_eq!(
        tb.installed("test-1", "ooni-api").as_deref(),
        Some("1.0.78~pr740-180")
    );
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), "ii 0.81~pr748-191");
    // The other host is untouched.
    assert_eq!(tb.installed("test-2", "ooni-api"), None);
    assert_eq!(tb.dpkg_status("test-2", "ooni-api"), "");

    // Down and up again, and purge.
    tb.set_versions(
        "test-1",
        &[("ooni-api", Some("1.0.79~pr751-194")), ("fastpath", None)],
    );
    assert_eq!(
        tb.installed("test-1", "ooni-api").as_deref(),
        Some("1.0.79~pr751-194")
    );
    assert_eq!(tb.dpkg_status("test-1", "fastpath"), "");
    tb.set_versions("test-1", &[("ooni-api", Some("1.0.78~pr740-180"))]);
    assert_eq!(
        tb.installed("test-1", "ooni-api").as_deref(),
        Some("1.0.78~pr740-180")
    );

    // Removed with its configuration left, and unpacked but not configured.
    tb.remove_keep_config("test-1", "detector");
    assert_eq!(tb.dpkg_status("test-1", "detector"), "rc 1:1.0-1");
    assert_eq!(tb.installed("test-1", "detector"), None);
    tb.break_package("test-1", "analysis", "1.10~pr692-102");
    assert_eq!(tb.dpkg_status("test-1", "analysis"), "iU 1.10~pr692-102");
    assert_eq!(tb.installed("test-1", "analysis"), None);

    // The packages behave as the end-to-end tests expect.
    tb.set_versions("test-2", &[("healthd", Some("1.0-1"))]);
    assert_eq!(ok(tb.ssh("test-2", "deployer", "healthd-check")), "healthy");
    tb.set_versions("test-2", &[("healthd", Some("2.0-1"))]);
    let out = tb.ssh("test-2", "deployer", "healthd-check");
    assert_eq!(
        (out.status.code(), stdout(&out).as_str()),
        (Some(1), "unhealthy")
    );
    let out = tb.exec("test-2", "dpkg -i /srv/repo/badpostinst_2.0-1_all.deb");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("badpostinst: cannot configure"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tb.dpkg_status("test-2", "badpostinst"), "iF 2.0-1");
}

#[test]
fn apt_prefers_the_epoch_version() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.set_versions("test-1", &[("detector", Some("2.0-1"))]);
    ok(tb.ssh(
        "test-1",
        "deployer",
        "sudo -n apt-get update -q && sudo -n apt-get install -y -q detector",
    ));
    assert_eq!(
        tb.installed("test-1", "detector").as_deref(),
        Some("1:1.0-1")
    );
}

#[test]
fn publish_is_seen_after_apt_get_update_and_only_in_its_testbed() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let Some(other) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let candidate = |tb: &Testbed| {
        let policy = ok(tb.ssh("test-1", "deployer", "apt-cache policy ooni-api"));
        policy
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate: "))
            .expect("a candidate line")
            .to_string()
    };
    let update = "sudo -n apt-get update -q";
    ok(tb.ssh("test-1", "deployer", update));
    assert_eq!(candidate(&tb), "1.0.79~pr751-194");

    tb.publish("ooni-api", "1.0.80~pr760-201");
    assert_eq!(
        candidate(&tb),
        "1.0.79~pr751-194",
        "seen before apt-get update"
    );
    ok(tb.ssh("test-1", "deployer", update));
    assert_eq!(candidate(&tb), "1.0.80~pr760-201");
    ok(tb.ssh(
        "test-1",
        "deployer",
        "sudo -n apt-get install -y -q ooni-api",
    ));
    assert_eq!(
        tb.installed("test-1", "ooni-api").as_deref(),
        Some("1.0.80~pr760-201")
    );
    // set_versions can use a published version too.
    tb.set_versions("test-1", &[("ooni-api", Some("1.0.79~pr751-194"))]);
    tb.set_versions("test-1", &[("ooni-api", Some("1.0.80~pr760-201"))]);

    ok(other.ssh("test-1", "deployer", update));
    assert_eq!(candidate(&other), "1.0.79~pr751-194");
}

#[test]
fn stopped_sshd_refuses_connections_until_undone() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    let key_before = ok(tb.exec("test-1", "cat /etc/ssh/ssh_host_ed25519_key.pub"));
    tb.set_versions("test-1", &[("fastpath", Some("0.77~pr705-119"))]);
    let fault = tb.stop_sshd("test-1");
    let t0 = Instant::now();
    let out = tb.ssh("test-1", "deployer", "true");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "refused, not timed out"
    );
    ok(tb.ssh("test-2", "deployer", "true"));
    fault.undo();
    ok(tb.ssh("test-1", "deployer", "true"));
    // The host kept its state and its keys (strict checking passed above).
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some("0.77~pr705-119")
    );
    assert_eq!(
        ok(tb.exec("test-1", "cat /etc/ssh/ssh_host_ed25519_key.pub")),
        key_before
    );
}

#[test]
fn hung_sshd_accepts_but_never_answers_until_undone() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    {
        let _fault = tb.hang("test-1");
        let t0 = Instant::now();
        let out = tb.ssh_with("test-1", "deployer", &["-o", "ConnectTimeout=2"], "true");
        let elapsed = t0.elapsed();
        assert!(!out.status.success());
        // TCP is accepted (the kernel completes the handshake), the banner
        // never comes.
        assert!(
            stderr(&out).contains("banner exchange"),
            "not a banner timeout: {}",
            stderr(&out)
        );
        assert!(
            elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10),
            "{elapsed:?}"
        );
    }
    // Dropping the guard undid it.
    ok(tb.ssh("test-1", "deployer", "true"));
}

#[test]
fn frozen_host_stops_every_process_until_undone() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let init = tb.host("test-1").init_pid;
    // A process of a session, as a deploy in progress would have.
    let mut session = Command::new("ssh")
        .arg("-F")
        .arg(tb.ssh_config())
        .args([
            "-o",
            "BatchMode=yes",
            "test-1",
            "touch /tmp/started; sleep 600",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    assert!(tb.wait_for_file("test-1", "/tmp/started", Duration::from_secs(10)));
    let fault = tb.freeze("test-1");
    let pids = host_processes(init);
    assert!(pids.len() >= 3, "sshd, the session and sleep: {pids:?}");
    for pid in &pids {
        assert_eq!(
            process_state(*pid),
            Some('T'),
            "process {pid} is not stopped"
        );
    }
    let out = tb.ssh_with("test-1", "deployer", &["-o", "ConnectTimeout=2"], "true");
    assert!(stderr(&out).contains("banner exchange"), "{}", stderr(&out));
    fault.undo();
    for pid in host_processes(init) {
        assert_ne!(
            process_state(pid),
            Some('T'),
            "process {pid} is still stopped"
        );
    }
    ok(tb.ssh("test-1", "deployer", "true"));
    session.kill().unwrap();
    session.wait().unwrap();
}

#[test]
fn changed_host_key_fails_verification_until_undone() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let known_before = std::fs::read_to_string(tb.home().join(".ssh/known_hosts")).unwrap();
    let fault = tb.change_host_key("test-1");
    let out = tb.ssh("test-1", "deployer", "true");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("HOST IDENTIFICATION HAS CHANGED"),
        "{}",
        stderr(&out)
    );
    let known_during = std::fs::read_to_string(tb.home().join(".ssh/known_hosts")).unwrap();
    assert_eq!(known_before, known_during, "known_hosts keeps the old keys");
    fault.undo();
    ok(tb.ssh("test-1", "deployer", "true"));
}

#[test]
fn held_dpkg_lock_makes_apt_wait_and_fail_until_undone() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    ok(tb.ssh("test-1", "deployer", "sudo -n apt-get update -q"));
    let install = "sudo -n apt-get -o DPkg::Lock::Timeout=1 install -y -q fastpath";
    {
        let _lock = tb.hold_dpkg_lock("test-1");
        let t0 = Instant::now();
        let out = tb.ssh("test-1", "deployer", install);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("/var/lib/dpkg/lock-frontend"),
            "{}",
            stderr(&out)
        );
        assert!(t0.elapsed() >= Duration::from_secs(1), "apt did not wait");
        // dpkg itself too.
        let out = tb.ssh("test-1", "deployer", "sudo -n dpkg --configure -a");
        assert!(!out.status.success());
        assert!(stderr(&out).contains("lock"), "{}", stderr(&out));
    }
    ok(tb.ssh("test-1", "deployer", install));
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some("0.81~pr748-191")
    );
}

#[test]
fn sudo_demands_a_password_until_undone() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let fault = tb.sudo_requires_password("test-1");
    let out = tb.ssh("test-1", "deployer", "sudo -n true");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a password is required"),
        "{}",
        stderr(&out)
    );
    fault.undo();
    ok(tb.ssh("test-1", "deployer", "sudo -n true"));
}

#[test]
fn slow_postinst_can_be_caught_mid_deploy_and_torn_down() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let init = tb.host("test-1").init_pid;
    let mut deploy = Command::new("ssh")
        .arg("-F")
        .arg(tb.ssh_config())
        .args(["-o", "BatchMode=yes", "test-1"])
        .arg("sudo -n dpkg -i /srv/repo/slowpkg_2.0-1_all.deb")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(tb.wait_for_file(
        "test-1",
        "/tmp/slowpkg-postinst-started",
        Duration::from_secs(20)
    ));
    assert_eq!(tb.dpkg_status("test-1", "slowpkg"), "iF 2.0-1");
    assert!(!tb.wait_for_file("test-1", "/nonexistent", Duration::from_millis(100)));
    // Teardown with dpkg in the middle of a postinst, and the host frozen.
    let _frozen = tb.freeze("test-1");
    drop(_frozen);
    drop(tb);
    assert!(!Path::new(&format!("/proc/{init}")).exists());
    let status = deploy.wait().unwrap();
    assert!(!status.success(), "the deploy cannot have finished");
}

#[test]
fn drop_leaves_nothing_running_mounted_or_allocated() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    let dir = tb.dir().to_path_buf();
    let inits: Vec<u32> = tb.all_hosts().iter().map(|h| h.init_pid).collect();
    let mut pids = inits.clone();
    for &init in &inits {
        pids.extend(host_processes(init));
    }
    let slot = std::fs::read_to_string(dir.join("slot")).unwrap();
    let slot_file = format!("/run/deployer-testbed/slot-{}", slot.trim());
    assert!(Path::new(&slot_file).exists());
    let mounts_inside = std::fs::read_to_string(format!("/proc/{}/mounts", inits[0])).unwrap();
    assert!(mounts_inside.contains("overlay"), "{mounts_inside}");
    drop(tb);
    for pid in pids {
        assert!(
            process_state(pid).is_none(),
            "process {pid} outlived the testbed"
        );
    }
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(!Path::new(&slot_file).exists(), "slot left allocated");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(&dir.display().to_string()), "{mounts}");
}

#[test]
fn sixty_four_hosts_at_once() {
    let stages = [("test", 16), ("hel", 16), ("prod", 16), ("s4", 16)];
    let t0 = Instant::now();
    let Some(tb) = Testbed::start(&stages) else {
        return;
    };
    let up = t0.elapsed();
    assert_eq!(tb.all_hosts().len(), 64);
    let t1 = Instant::now();
    let tb_ref = &tb;
    let results: Vec<(String, Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = tb_ref
            .all_hosts()
            .iter()
            .map(|h| {
                s.spawn(move || {
                    (
                        h.alias.clone(),
                        tb_ref.ssh(&h.alias, "deployer", "hostname"),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (alias, out) in results {
        assert_eq!(ok(out), alias);
    }
    let reached = t1.elapsed();
    let t2 = Instant::now();
    let inits: Vec<u32> = tb.all_hosts().iter().map(|h| h.init_pid).collect();
    drop(tb);
    let down = t2.elapsed();
    assert!(poll(Duration::from_secs(5), || inits
        .iter()
        .all(|p| process_state(*p).is_none())));
    eprintln!(
        "64 hosts: up in {:.2} s, all reached over ssh in {:.2} s, down in {:.2} s",
        up.as_secs_f64(),
        reached.as_secs_f64(),
        down.as_secs_f64()
    );
}
