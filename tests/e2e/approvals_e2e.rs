//! End-to-end tests of signed approvals (`approvals = N`, `--plan-out`,
//! `deployer approve`, `--plan`) on real Debian hosts (the testbed), with
//! keys made in the test by the real `ssh-keygen` (ed25519 files, and one
//! held by a real `ssh-agent` the test starts). Each test reads the hosts
//! with dpkg afterwards, and the history.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

use common::cli::{history, last, run, NEW, OLD};
use common::testbed::Testbed;

/// A version between [`OLD`] and [`NEW`], installed on one host to make a
/// plan stale.
const MID: &str = "0.79~pr720-150";

/// One stage `test` of two hosts running [`OLD`], with `approvals = 1`
/// and `allowed_signers = allowed_signers` (alice's and bob's keys);
/// keys `alice`, `bob`, `mallory` (not an allowed signer) in the
/// testbed's directory.
fn stage() -> Option<Testbed> {
    stages(&[("test", 2)])
}

/// [`stage`] for `stages`: the last one gets `approvals = 1`, every host
/// runs [`OLD`].
fn stages(stages: &[(&str, usize)]) -> Option<Testbed> {
    let tb = Testbed::start(stages)?;
    let path = tb.write_config(
        &["fastpath"],
        "",
        "[package:fastpath]\nhealth_check = true\n",
    );
    let text = std::fs::read_to_string(&path).expect("deployer.ini");
    let (head, tail) = text.split_once("\n[package:").expect("a package section");
    std::fs::write(
        &path,
        format!("{head}\napprovals = 1\nallowed_signers = allowed_signers\n\n[package:{tail}"),
    )
    .unwrap();
    tb.publish("fastpath", MID);
    let mut signers = String::new();
    for name in ["alice", "bob", "mallory"] {
        let key = tb.dir().join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "{out:?}");
        if name != "mallory" {
            let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
            signers.push_str(&format!("{name}@example.com {}", public.trim_end()));
            signers.push('\n');
        }
    }
    std::fs::write(tb.dir().join("allowed_signers"), signers).unwrap();
    for (name, _) in stages {
        for h in tb.hosts(name) {
            tb.set_versions(&h.alias, &[("fastpath", Some(OLD))]);
            // current lists, for the dry run (which never updates them)
            assert!(tb.exec(&h.alias, "apt-get update -q").status.success());
        }
    }
    Some(tb)
}

/// `deployer ARGS` run by `user` through sudo (deployer runs as root
/// here, so `SUDO_USER` names the operator).
fn as_user(tb: &Testbed, user: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tb.deployer();
    cmd.env("SUDO_USER", user)
        .env("USER", "root")
        .args(["--color=never"])
        .args(args);
    run(&mut cmd)
}

/// Alice makes the plan of deploying [`NEW`] to `test` into `name`.
fn make_plan(tb: &Testbed, name: &str, extra: &[&str]) {
    let mut args = vec![
        "deploy",
        "fastpath",
        "test",
        NEW,
        "--dry-run",
        "--plan-out",
        name,
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = as_user(tb, "alice", &args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(tb.dir().join(name).is_file(), "{out}{err}");
}

/// `user` approves `plan` with the key file `key` in the testbed's
/// directory.
fn approve_with(tb: &Testbed, user: &str, plan: &str, key: &str) {
    let key = tb.dir().join(key);
    let (code, out, err) = as_user(
        tb,
        user,
        &["approve", plan, "-i", key.to_str().unwrap(), "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
}

/// Alice's `deploy --plan PLAN` is refused (exit status 6), saying each
/// of `says`; no host changed, and the refusal is on record.
fn refused(tb: &Testbed, plan: &str, says: &[&str]) {
    let (code, out, err) = as_user(tb, "alice", &["deploy", "--plan", plan]);
    assert_eq!(code, 6, "{out}{err}");
    for said in says {
        assert!(err.contains(said), "`{said}` missing from {err}");
    }
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    let r = last(tb);
    assert_eq!(r["outcome"], "refused", "{r}");
}

/// A real `ssh-agent` in the foreground, killed (by its pid) on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !agent.socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .expect("ssh-add");
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fingerprint `ssh-keygen -l` gives the public key `key`.pub.
fn fingerprint(tb: &Testbed, key: &str) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(tb.dir().join(format!("{key}.pub")))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn an_approved_plan_goes_through_and_no_self_or_unknown_approval_counts() {
    let Some(tb) = stage() else {
        return;
    };
    // without a plan, a forward deploy is refused with the workflow
    let (code, out, err) = as_user(&tb, "alice", &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("needs 1 approval(s) of the exact plan"),
        "{err}"
    );
    assert!(err.contains("--plan-out plan.json"), "{err}");
    assert!(err.contains("deployer approve plan.json"), "{err}");

    make_plan(&tb, "plan.json", &[]);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tb.dir().join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["package"], "fastpath");
    assert_eq!(plan["version"], NEW);
    assert_eq!(plan["made_by"], "alice");
    assert_eq!(plan["hosts"][0]["state"], OLD, "{plan}");
    assert_eq!(plan["plan"]["steps"].as_array().unwrap().len(), 2, "{plan}");

    // nothing signed yet
    refused(
        &tb,
        "plan.json",
        &["has 0 of the 1 approval(s)", "holds no signature"],
    );
    // alice's own signature never counts
    approve_with(&tb, "alice", "plan.json", "alice");
    refused(&tb, "plan.json", &["no self-approval", "alice@example.com"]);
    // a key not in allowed_signers does not count
    approve_with(&tb, "mallory", "plan.json", "mallory");
    refused(
        &tb,
        "plan.json",
        &["is not in", "allowed_signers", "signature 2"],
    );

    // bob approves with the key his agent holds
    let agent = Agent::start(tb.dir());
    agent.add(&tb.dir().join("bob"));
    let (code, out, err) = run(tb
        .deployer()
        .env("SUDO_USER", "bob")
        .env("SSH_AUTH_SOCK", &agent.socket)
        .args(["--color=never", "approve", "plan.json", "--yes"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("the agent's key"), "{out}");
    // the plan is shown readably: what changes where
    assert!(out.contains(&format!("test-1: {OLD} -> {NEW}")), "{out}");
    assert!(out.contains("made by alice@"), "{out}");
    // the real ssh-keygen agrees: bob's signature (the third) is good
    let sigs = std::fs::read_to_string(tb.dir().join("plan.json.sig")).unwrap();
    let third = sigs
        .split_inclusive("-----END SSH SIGNATURE-----\n")
        .nth(2)
        .expect("three signatures");
    std::fs::write(tb.dir().join("bob.sig"), third).unwrap();
    let verify = Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "deployer-plan",
            "-I",
            "bob@example.com",
            "-f",
        ])
        .arg(tb.dir().join("allowed_signers"))
        .arg("-s")
        .arg(tb.dir().join("bob.sig"))
        .stdin(std::fs::File::open(tb.dir().join("plan.json")).unwrap())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    // the plan is carried out as it was made, not with other options
    let (code, out, err) = as_user(
        &tb,
        "alice",
        &["deploy", "--plan", "plan.json", "--exclude", "test-2"],
    );
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("the plan decided now is not the plan in"),
        "{err}"
    );
    assert!(
        err.contains("`left_out`: the plan has no host, now test-2"),
        "{err}"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));

    let (code, out, err) = as_user(&tb, "alice", &["deploy", "--plan", "plan.json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Approved by bob@example.com"), "{out}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }
    let r = last(&tb);
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["user"], "alice");
    let approvals = r["approvals"].as_array().expect("approvals on record");
    assert_eq!(approvals.len(), 1, "{r}");
    assert_eq!(approvals[0]["principal"], "bob@example.com");
    assert_eq!(approvals[0]["fingerprint"], fingerprint(&tb, "bob"));
    let (code, out, err) = as_user(&tb, "alice", &["history", "fastpath"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved by: bob@example.com"), "{out}");

    // a rollback to the version the stage ran before needs no approval
    let (code, out, err) = as_user(&tb, "alice", &["rollback", "fastpath", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
    }
    assert_eq!(last(&tb)["action"], "rollback");
}

#[test]
fn an_expired_reconfigured_or_stale_plan_is_refused_and_nothing_changes() {
    let Some(tb) = stage() else {
        return;
    };
    // --override-freeze does not bypass approvals
    let (code, out, err) = as_user(
        &tb,
        "alice",
        &[
            "deploy",
            "fastpath",
            "test",
            NEW,
            "--override-freeze",
            "--reason",
            "hurry",
        ],
    );
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("approval(s) of the exact plan"), "{err}");

    // expired: a plan good for one second, approved, then past its expiry
    make_plan(&tb, "short.json", &["--expires", "1s"]);
    approve_with(&tb, "bob", "short.json", "bob");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tb.dir().join("short.json")).unwrap()).unwrap();
    let expires = plan["expires_at"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&now.stdout).trim() >= expires.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the clock never reached {expires}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    refused(&tb, "short.json", &["expired at", &expires]);

    // the configuration changed since the plan
    make_plan(&tb, "plan.json", &[]);
    approve_with(&tb, "bob", "plan.json", "bob");
    let ini = tb.dir().join("deployer.ini");
    let original = std::fs::read(&ini).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"# one more line\n");
    std::fs::write(&ini, &changed).unwrap();
    refused(
        &tb,
        "plan.json",
        &["the configuration changed since the plan"],
    );
    std::fs::write(&ini, &original).unwrap();

    // a host changed since the plan: another version installed on test-2
    tb.set_versions("test-2", &[("fastpath", Some(MID))]);
    refused(
        &tb,
        "plan.json",
        &[
            "the hosts of `test` changed since the plan",
            &format!("test-2: the plan was made with {OLD}, it now runs {MID}"),
        ],
    );
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(MID));
    // no allowed_signers file: nothing can be verified
    std::fs::remove_file(tb.dir().join("allowed_signers")).unwrap();
    refused(
        &tb,
        "plan.json",
        &["cannot read", "the `allowed_signers` of stage `test`"],
    );
    // every refusal is on record
    let refusals = history(&tb)
        .iter()
        .filter(|r| r["outcome"] == "refused")
        .count();
    assert!(refusals >= 5, "{:?}", history(&tb));
}

#[test]
fn a_promotion_goes_by_its_plan_and_not_when_the_stage_before_moved() {
    let Some(tb) = stages(&[("test", 1), ("prod", 1)]) else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    let (code, out, err) = as_user(
        &tb,
        "alice",
        &[
            "promote",
            "fastpath",
            "prod",
            "--dry-run",
            "--plan-out",
            "promote.json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    approve_with(&tb, "bob", "promote.json", "bob");
    // a deploy of a promotion's plan is the wrong command
    let (code, out, err) = as_user(&tb, "alice", &["deploy", "--plan", "promote.json"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("this plan is a `promote`"), "{err}");

    // the stage before now runs another version: the candidate changed
    tb.set_versions("test-1", &[("fastpath", Some(MID))]);
    let (code, out, err) = as_user(
        &tb,
        "alice",
        &["promote", "--plan", "promote.json", "--yes"],
    );
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("the candidate version changed since the plan"),
        "{err}"
    );
    assert!(err.contains(&format!("the plan installs {NEW}")), "{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));

    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    let (code, out, err) = as_user(
        &tb,
        "alice",
        &["promote", "--plan", "promote.json", "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(NEW));
    let r = last(&tb);
    assert_eq!(r["action"], "promote", "{r}");
    assert_eq!(r["approvals"][0]["principal"], "bob@example.com", "{r}");
}
