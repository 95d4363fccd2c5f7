//! Unit tests of the deploy orchestration through the fake transport:
//! batches, refusals, the rollback decisions, interrupts. What apt and
//! dpkg really do is proven by the end-to-end tests on the testbed.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::config::Config;
use crate::console::{Captured, Console, Scripted};
use crate::fleet::fake::{Fake, FakeHost};
use crate::fleet::Fleet;
use crate::history::{HostRecord, HostResult};
use crate::interrupt::Interrupt;
use crate::render::Color;
use crate::ssh_config::SshConfigFile;
use crate::transport::{resolve_targets, LocalContext};

const OLD: &str = "0.77~pr705-119";
const NEW: &str = "0.81~pr748-191";

/// A pipeline `test` (t1) → `prod` (p1..p4) with fastpath, a fake world
/// where every host runs OLD and the repository offers OLD and NEW.
struct Setup {
    dir: tempfile::TempDir,
    config: Config,
    fake: Fake,
    out: Captured,
    err: Captured,
    interrupt: Interrupt,
    /// The `--json` document of the last deploy.
    document: std::cell::RefCell<Option<Value>>,
}

impl Setup {
    fn new(extra_env: &str) -> Setup {
        Setup::with_package(extra_env, "")
    }

    /// With `extra_package` lines in `[package:fastpath]`.
    fn with_package(extra_env: &str, extra_package: &str) -> Setup {
        Setup::with_sections(extra_env, "", extra_package)
    }

    /// With `extra_prod` lines in `[stage:prod]`.
    fn with_prod(extra_env: &str, extra_prod: &str) -> Setup {
        Setup::with_sections(extra_env, extra_prod, "")
    }

    fn with_sections(extra_env: &str, extra_prod: &str, extra_package: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[environment]\ndeb_packages = fastpath\nstages = test prod\nbatch_size = 2\nhistory_file = {}\n{extra_env}\n[stage:test]\nhosts = t1\n[stage:prod]\nhosts = p1 p2 p3 p4\n{extra_prod}\n[package:fastpath]\nhealth_check = check-fastpath\n{extra_package}\n",
            dir.path().join("history.jsonl").display()
        );
        let config = crate::config::parse(&dir.path().join("deployer.ini"), &text).unwrap();
        let fake = Fake::default();
        {
            let mut w = fake.world();
            w.repository
                .insert("fastpath".into(), vec![OLD.into(), NEW.into()]);
            for h in ["t1", "p1", "p2", "p3", "p4"] {
                let mut host = FakeHost::default();
                host.installed.insert("fastpath".into(), OLD.into());
                w.hosts.insert(h.into(), host);
            }
            // the first stage already runs NEW, so prod may have it
            w.hosts
                .get_mut("t1")
                .unwrap()
                .installed
                .insert("fastpath".into(), NEW.into());
        }
        Setup {
            dir,
            config,
            fake,
            out: Captured::default(),
            err: Captured::default(),
            interrupt: Interrupt::new(),
            document: std::cell::RefCell::new(None),
        }
    }

    fn host(&self, name: &str) -> FakeHost {
        self.fake.world().hosts[name].clone()
    }

    fn version(&self, name: &str) -> Option<String> {
        self.host(name).installed.get("fastpath").cloned()
    }

    fn history(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `deploy fastpath STAGE [VERSION]` with `opts` and canned answers.
    fn deploy(
        &self,
        stage: &str,
        version: Option<&str>,
        opts: Options,
        answers: Vec<Option<String>>,
    ) -> Result<ExitStatus, Fatal> {
        let request = Request::Deploy {
            package: "fastpath".into(),
            stage: Some(stage.into()),
            version: version.map(str::to_string),
        };
        self.request(&request, opts, answers)
    }

    /// Carry out `request` with `opts` and canned answers.
    fn request(
        &self,
        request: &Request,
        opts: Options,
        answers: Vec<Option<String>>,
    ) -> Result<ExitStatus, Fatal> {
        let checked = validate(&self.config, request, &opts)?;
        let local = LocalContext {
            home: PathBuf::from("/nonexistent"),
            user: "op".into(),
            accept_new: false,
            resolve: None,
        };
        let wanted: Vec<String> = request::stages_needed(&checked)
            .unwrap()
            .iter()
            .map(|&i| self.config.stages[i].name.clone())
            .collect();
        let targets = resolve_targets(&self.config, &SshConfigFile::default(), &local)
            .expect("no ssh config")
            .into_iter()
            .filter(|t| wanted.contains(&t.stage))
            .collect();
        let fleet = Fleet::connect_with(targets, 8, Arc::new(self.fake.clone()));
        let console = Console::new(
            Box::new(self.out.clone()),
            Box::new(self.err.clone()),
            Box::new(Scripted(answers)),
            Color::Never,
        );
        let cx = Context {
            config: &self.config,
            console: &console,
            opts: &opts,
            interrupt: &self.interrupt,
        };
        let result = run(&cx, fleet, &checked);
        *self.document.borrow_mut() = console.take_document();
        result
    }
}

fn yes() -> Options {
    Options {
        yes: true,
        ..Options::default()
    }
}

fn results(record: &Value) -> Vec<(String, String)> {
    record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn installs(s: &Setup) -> Vec<String> {
    s.fake
        .world()
        .log
        .iter()
        .filter(|(_, c)| c.contains("apt-get install"))
        .map(|(h, _)| h.clone())
        .collect()
}

#[test]
fn canary_first_then_batches_of_batch_size() {
    let s = Setup::new("");
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success, "{}", s.out.text());
    let order = installs(&s);
    assert_eq!(order.len(), 4);
    assert_eq!(order[0], "p1", "the canary goes alone and first");
    let mut second: Vec<&str> = order[1..3].iter().map(String::as_str).collect();
    second.sort_unstable();
    assert_eq!(second, ["p2", "p3"]);
    assert_eq!(order[3], "p4");
    for h in ["p1", "p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(NEW));
        assert!(s.host(h).lock.is_none(), "{h}: the lock is released");
    }
    let text = s.out.text();
    assert!(text.contains("Batch 1/3: p1\n"), "{text}");
    assert!(text.contains("Batch 3/3: p4\n"), "{text}");
    let h = s.history();
    assert_eq!(h.last().unwrap()["outcome"], "success");
}

#[test]
fn a_stage_batch_size_in_percent_wins_over_the_environment_and_batch_over_both() {
    // 25% of the 4 hosts of prod: one at a time, the environment's 2 aside
    let s = Setup::with_prod("", "batch_size = 25%");
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success, "{}", s.out.text());
    assert_eq!(installs(&s), ["p1", "p2", "p3", "p4"]);
    let text = s.out.text();
    assert!(text.contains("Batch 4/4: p4\n"), "{text}");

    // --batch 75%: 3 of 4 after the canary, all at once
    let s = Setup::with_prod("", "batch_size = 25%");
    let opts = Options {
        batch: Some(crate::plan::Share::Percent(75)),
        ..yes()
    };
    let status = s.deploy("prod", Some(NEW), opts, vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success, "{}", s.out.text());
    let text = s.out.text();
    assert!(text.contains("Batch 2/2: p2, p3, p4\n"), "{text}");
}

#[test]
fn the_plan_shows_percent_batches_and_the_budget() {
    let s = Setup::with_prod("", "batch_size = 50%\nmax_failures = 25%");
    let opts = Options {
        dry_run: true,
        ..yes()
    };
    let status = s.deploy("prod", Some(NEW), opts, vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success);
    let text = s.out.text() + &s.err.text();
    assert!(
        text.contains("batches: the canary alone, then 2 host(s) at a time (batch_size 50% of 4 host(s) taking part, rounded up)"),
        "{text}"
    );
    assert!(
        text.contains("failure budget: 1 host(s) after the canary (max_failures 25% of 4 host(s) taking part, rounded down)"),
        "{text}"
    );
    let plan = s.document.borrow().clone().expect("the plan as JSON");
    assert_eq!(
        plan["batches"],
        serde_json::json!([["p1"], ["p2", "p3"], ["p4"]])
    );
    assert_eq!(plan["batch_size"], "50%");
    assert_eq!(plan["per_batch"], 2);
    assert_eq!(plan["max_failures"], "25%");
    assert_eq!(plan["failures_allowed"], 1);
    assert_eq!(plan["taking_part"], 4);
    assert!(installs(&s).is_empty(), "a dry run changes nothing");
}

#[test]
fn a_failure_within_the_budget_rolls_that_host_back_and_the_rollout_goes_on() {
    let s = Setup::with_prod("rollback_on_failure = yes", "max_failures = 1");
    // the canary passes; p2, in the second batch, is unhealthy
    s.fake.world().hosts.get_mut("p2").unwrap().unhealthy = true;
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    for h in ["p1", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(NEW), "{h} stays on NEW");
    }
    assert_eq!(s.version("p2").as_deref(), Some(OLD), "p2 is rolled back");
    let w = s.fake.world();
    assert_eq!(w.ran("p4", "apt-get install").len(), 1, "p4 was deployed");
    assert_eq!(
        w.ran("p1", "apt-get install").len(),
        1,
        "a changed host is not rolled back"
    );
    assert_eq!(
        w.ran("p2", "apt-get install").len(),
        2,
        "install + rollback"
    );
    drop(w);
    let text = s.out.text();
    assert!(
        text.contains("1 host(s) failed so far, within the failure budget of 1 (max_failures 1): the rollout goes on."),
        "{text}"
    );
    assert!(text.contains("Batch 3/3: p4\n"), "{text}");
    let r = s.history().pop().unwrap();
    assert_eq!(r["outcome"], "partial");
    assert_eq!(
        r["failure_budget"],
        serde_json::json!({"max_failures": "1", "allowed": 1, "failed": 1, "halted": false})
    );
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .starts_with("1 host(s) failed, within the failure budget of 1 (max_failures 1): the rollout went on"),
        "{r}"
    );
    let res = results(&r);
    assert_eq!(
        res,
        [
            ("p1".to_string(), "changed".to_string()),
            ("p2".into(), "rolled-back".into()),
            ("p3".into(), "changed".into()),
            ("p4".into(), "changed".into()),
        ]
    );
}

#[test]
fn without_the_rollback_policy_a_host_failed_within_the_budget_stays_as_it_is() {
    let s = Setup::with_prod("", "max_failures = 50%");
    s.fake.world().hosts.get_mut("p3").unwrap().unhealthy = true;
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    assert_eq!(installs(&s).len(), 4, "every host was deployed, once");
    let r = s.history().pop().unwrap();
    assert_eq!(r["failure_budget"]["allowed"], 2);
    assert_eq!(r["failure_budget"]["halted"], false);
    assert_eq!(results(&r)[2], ("p3".into(), "failed".into()));
}

#[test]
fn a_failure_beyond_the_budget_halts_and_applies_the_rollback_policy() {
    let s = Setup::with_prod("rollback_on_failure = yes", "max_failures = 1");
    // both hosts of the second batch fail: 2 > 1
    for h in ["p2", "p3"] {
        s.fake.world().hosts.get_mut(h).unwrap().unhealthy = true;
    }
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    for h in ["p1", "p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h} is on OLD");
    }
    assert!(
        s.fake.world().ran("p4", "apt-get install").is_empty(),
        "the third batch never started"
    );
    let text = s.out.text();
    assert!(
        text.contains(
            "2 host(s) failed, beyond the failure budget of 1 (max_failures 1): the rollout halts."
        ),
        "{text}"
    );
    let r = s.history().pop().unwrap();
    assert_eq!(r["failure_budget"]["failed"], 2);
    assert_eq!(r["failure_budget"]["halted"], true);
    let res = results(&r);
    assert_eq!(res[0], ("p1".into(), "rolled-back".into()));
    assert_eq!(res[3], ("p4".into(), "untouched".into()));
}

#[test]
fn a_host_in_an_unknown_state_halts_whatever_the_budget() {
    let s = Setup::with_prod("", "max_failures = 2");
    // p2, in the second batch, rebooted during its install
    s.fake.world().hosts.get_mut("p2").unwrap().runs_gone =
        Some("the host rebooted since the run started".into());
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    assert!(
        s.out.text().contains(
            "A host is in an unknown state: the rollout halts, whatever the failure budget."
        ),
        "{}",
        s.out.text()
    );
    assert!(
        s.fake.world().ran("p4", "apt-get install").is_empty(),
        "the third batch never started"
    );
    let r = s.history().pop().unwrap();
    assert_eq!(results(&r)[1], ("p2".to_string(), "unknown".to_string()));
    assert_eq!(r["failure_budget"]["halted"], true);
}

#[test]
fn a_failing_canary_halts_whatever_the_budget() {
    let s = Setup::with_prod("", "max_failures = 3");
    s.fake.world().hosts.get_mut("p1").unwrap().install_fails = true;
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial);
    assert_eq!(installs(&s), ["p1"]);
    assert!(
        s.out
            .text()
            .contains("The canary failed: the rollout halts, whatever the failure budget."),
        "{}",
        s.out.text()
    );
    let r = s.history().pop().unwrap();
    assert_eq!(r["failure_budget"]["halted"], true);
}

#[test]
fn failing_canary_stops_the_rollout_and_leaves_the_rest_untouched() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p1").unwrap().install_fails = true;
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial);
    assert_eq!(installs(&s), ["p1"]);
    for h in ["p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h}");
    }
    let r = s.history().pop().unwrap();
    assert_eq!(r["outcome"], "partial");
    let res = results(&r);
    assert_eq!(res[0], ("p1".into(), "failed".into()));
    assert!(res[1..].iter().all(|(_, r)| r == "untouched"), "{res:?}");
}

#[test]
fn rollback_policy_restores_exactly_the_touched_hosts() {
    let s = Setup::new("rollback_on_failure = yes");
    // the canary passes; a host of the second batch is unhealthy
    s.fake.world().hosts.get_mut("p3").unwrap().unhealthy = true;
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial);
    for h in ["p1", "p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h} is back on OLD");
    }
    let w = s.fake.world();
    assert!(
        w.ran("p4", "apt-get install").is_empty(),
        "p4 was never touched"
    );
    assert_eq!(
        w.ran("p1", "apt-get install").len(),
        2,
        "install + rollback"
    );
    drop(w);
    let r = s.history().pop().unwrap();
    let res = results(&r);
    assert_eq!(
        res,
        [
            ("p1".to_string(), "rolled-back".to_string()),
            ("p2".into(), "rolled-back".into()),
            ("p3".into(), "rolled-back".into()),
            ("p4".into(), "untouched".into()),
        ]
    );
}

#[test]
fn interrupt_during_a_batch_starts_no_new_batch() {
    let s = Setup::new("");
    let interrupt = s.interrupt.clone();
    s.fake.world().hooks.push(Box::new(move |_, host, line| {
        if host == "p1" && line.contains("apt-get install") {
            interrupt.raise();
        }
    }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(installs(&s), ["p1"], "the canary in flight finishes");
    assert_eq!(s.version("p1").as_deref(), Some(NEW));
    for h in ["p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD));
    }
    assert!(s.out.text().contains("Interrupted"), "{}", s.out.text());
    assert_eq!(status, ExitStatus::Interrupted);
    let r = s.history().pop().unwrap();
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(results(&r)[0], ("p1".to_string(), "changed".to_string()));
}

#[test]
fn unreachable_host_refuses_before_any_change() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p2").unwrap().down = true;
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(e.message.contains("cannot be reached"), "{}", e.message);
    assert!(installs(&s).is_empty());
    assert_eq!(s.history().pop().unwrap()["outcome"], "refused");
}

#[test]
fn busy_lock_refuses_and_releases_what_was_taken() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p3").unwrap().lock = Some("alice@laptop".into());
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("p3") && n.contains("alice@laptop")),
        "{:?}",
        e.notes
    );
    assert!(installs(&s).is_empty());
    for h in ["p1", "p2", "p4"] {
        assert!(s.host(h).lock.is_none(), "{h}: released after the refusal");
    }
}

#[test]
fn sudo_password_refuses_naming_the_host() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p4").unwrap().sudo_password = true;
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(
        e.notes.iter().any(|n| n.starts_with("p4: ")),
        "{:?}",
        e.notes
    );
    assert!(installs(&s).is_empty());
}

#[test]
fn order_guard_refuses_an_upgrade_the_previous_stage_lacks() {
    let s = Setup::new("");
    s.fake
        .world()
        .hosts
        .get_mut("t1")
        .unwrap()
        .installed
        .insert("fastpath".into(), OLD.into());
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(installs(&s).is_empty());
}

#[test]
fn critical_stage_asks_and_only_yes_goes_on() {
    let s = Setup::new("");
    let e = s.deploy("prod", Some(NEW), Options::default(), vec![None]);
    assert_eq!(e.unwrap_err().status, ExitStatus::Refused, "no terminal");
    let e = s.deploy(
        "prod",
        Some(NEW),
        Options::default(),
        vec![Some("y\n".into())],
    );
    assert_eq!(e.unwrap_err().message, "not confirmed");
    assert!(installs(&s).is_empty());
    let ok = s.deploy(
        "prod",
        Some(NEW),
        Options::default(),
        vec![Some("yes\n".into())],
    );
    assert_eq!(ok.unwrap(), ExitStatus::Success);
    assert!(
        s.out.text().contains("Plan: `fastpath`"),
        "the plan is shown"
    );
}

#[test]
fn dry_run_changes_nothing_and_records_nothing() {
    let s = Setup::new("");
    let opts = Options {
        dry_run: true,
        ..Options::default()
    };
    assert_eq!(
        s.deploy("prod", Some(NEW), opts, vec![]).unwrap(),
        ExitStatus::Success
    );
    let w = s.fake.world();
    assert!(w.log.iter().all(|(_, c)| !c.contains("apt-get install")
        && !c.contains("apt-get update")
        && !c.contains("flock")));
    drop(w);
    assert!(s.history().is_empty());
    assert!(
        s.out.text().contains("apt:  Inst fastpath"),
        "{}",
        s.out.text()
    );
}

fn freeze(stage: &str, by: &str) -> crate::freeze::Freeze {
    crate::freeze::Freeze {
        stage: stage.into(),
        by: by.into(),
        since: "2026-11-21T07:30:05Z".into(),
        reason: "incident 42".into(),
    }
}

#[test]
fn a_freeze_set_during_the_rollout_stops_it_at_the_next_batch() {
    let s = Setup::new("");
    s.fake.world().hooks.push(Box::new(|world, host, line| {
        if host == "p1" && line.contains("apt-get install") {
            world
                .hosts
                .get_mut("p4")
                .unwrap()
                .freezes
                .push(freeze("prod", "bob@desk"));
        }
    }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Interrupted);
    assert_eq!(installs(&s), ["p1"]);
    let r = s.history().pop().unwrap();
    assert_eq!(r["outcome"], "interrupted");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("frozen") && reason.contains("bob@desk"),
        "{reason}"
    );
    assert!(s.out.text().contains("is frozen now"), "{}", s.out.text());
}

#[test]
fn a_freeze_record_under_any_stage_name_refuses_and_force_does_not_override_it() {
    let s = Setup::new("");
    s.fake
        .world()
        .hosts
        .get_mut("p3")
        .unwrap()
        .freezes
        .push(freeze("hel", "carol@ops"));
    let forced = Options {
        force: true,
        reason: Some("hurry".into()),
        ..yes()
    };
    let e = s.deploy("prod", Some(NEW), forced, vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(
        e.notes
            .iter()
            .any(|n| n.starts_with("p3: ") && n.contains("set under stage `hel`")),
        "{:?}",
        e.notes
    );
    assert!(installs(&s).is_empty());
    let overriding = Options {
        override_freeze: true,
        reason: Some("the fix for incident 42".into()),
        ..yes()
    };
    assert_eq!(
        s.deploy("prod", Some(NEW), overriding, vec![]).unwrap(),
        ExitStatus::Success
    );
    let r = s.history().pop().unwrap();
    assert_eq!(r["forced"], true);
    assert!(r["reason"]
        .as_str()
        .unwrap()
        .contains("freeze overridden: the fix for incident 42"));
}

#[test]
fn override_freeze_needs_a_reason() {
    let s = Setup::new("");
    let opts = Options {
        override_freeze: true,
        ..yes()
    };
    let e = s.deploy("prod", Some(NEW), opts, vec![]).unwrap_err();
    assert!(
        e.message.contains("`--override-freeze` needs `--reason"),
        "{}",
        e.message
    );
}

#[test]
fn the_attempt_is_on_record_here_and_on_its_hosts_before_the_first_change() {
    let s = Setup::new("");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let history_file = s.dir.path().join("history.jsonl");
    let log = Arc::clone(&seen);
    s.fake
        .world()
        .hooks
        .push(Box::new(move |world, host, line| {
            if host == "p1" && line.contains("apt-get install") {
                let local = std::fs::read_to_string(&history_file).unwrap_or_default();
                log.lock()
                    .unwrap()
                    .push((local, world.hosts["p1"].history.clone()));
            }
        }));
    assert_eq!(
        s.deploy("prod", Some(NEW), yes(), vec![]).unwrap(),
        ExitStatus::Success
    );
    let seen = seen.lock().unwrap();
    let (local, on_host) = &seen[0];
    let started: Value = serde_json::from_str(local.lines().last().unwrap()).unwrap();
    assert_eq!(started["outcome"], "started");
    assert_eq!(
        results(&started)[0],
        ("p1".to_string(), "planned".to_string())
    );
    assert_eq!(on_host.len(), 1, "the started record is on the host");
    // the final record has the same id and start time, here and on hosts
    let h = s.history();
    let last = h.last().unwrap();
    assert_eq!(last["id"], started["id"]);
    assert_eq!(last["time"], started["time"]);
    assert_eq!(last["outcome"], "success");
    for p in ["p1", "p2", "p3", "p4"] {
        let lines = s.host(p).history;
        assert_eq!(lines.len(), 2, "{p}: started and final");
        let fin: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(fin["id"], started["id"]);
        assert_eq!(fin["outcome"], "success");
    }
}

#[test]
fn a_host_whose_history_cannot_be_written_refuses_before_any_change() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p2").unwrap().history_full = true;
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(
        e.notes.iter().any(|n| n.starts_with("p2: ")),
        "{:?}",
        e.notes
    );
    assert!(installs(&s).is_empty());
}

#[test]
fn an_unwritable_local_history_refuses_before_the_lock() {
    let mut s = Setup::new("");
    // a regular file where the history's directory should be
    let blocker = s.dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    s.config.history_file = blocker.join("history.jsonl");
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(e.message.contains("history"), "{}", e.message);
    let no_lock = s.fake.world().log.iter().all(|(_, c)| !c.contains("flock"));
    assert!(no_lock, "no lock taken");
    assert!(installs(&s).is_empty());
}

#[test]
fn journal_records_what_is_known_when_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let mut started = history::Attempt::start("deploy").record("prod", Outcome::Started);
    for h in ["p1", "p2", "p3"] {
        started.hosts.push(HostRecord {
            host: h.into(),
            from: Some(OLD.into()),
            to: Some(NEW.into()),
            result: HostResult::Planned,
            message: None,
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        });
    }
    let journal = Journal::new(&started, &path);
    journal.in_flight(&["p1"]);
    journal.done(HostRecord {
        result: HostResult::Changed,
        ..started.hosts[0].clone()
    });
    journal.in_flight(&["p2"]);
    journal.record_abandoned();
    let text = std::fs::read_to_string(&path).unwrap();
    let r: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(r["id"], started.id.as_str());
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(
        results(&r),
        [
            ("p1".to_string(), "changed".to_string()),
            ("p2".into(), "unknown".into()),
            ("p3".into(), "untouched".into()),
        ]
    );
}

fn message(record: &Value, host: &str) -> String {
    record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .and_then(|h| h["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Regression: a deployer whose lock expired (laptop suspended, process
/// stopped, network partition) or was broken with `deployer unlock` went
/// on to its next batches, changing hosts that someone else may have
/// locked meanwhile. Each host's lock is checked before it is changed.
#[test]
fn a_lock_lost_during_the_rollout_changes_no_further_host() {
    let s = Setup::new("");
    s.fake.world().hooks.push(Box::new(|world, host, line| {
        if host == "p1" && line.contains("apt-get install") {
            // p2's lock expired and bob took it; p3's was broken
            world.hosts.get_mut("p2").unwrap().lock = Some("bob@desk".into());
            world.hosts.get_mut("p3").unwrap().lock = None;
        }
    }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    assert_eq!(installs(&s), ["p1"], "only the canary, locked, was changed");
    for h in ["p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h}");
    }
    let r = s.history().pop().unwrap();
    assert_eq!(r["outcome"], "partial");
    assert!(message(&r, "p2").contains("bob@desk"), "{r}");
    assert!(message(&r, "p3").contains("expired"), "{r}");
    assert_eq!(results(&r)[3], ("p4".to_string(), "untouched".to_string()));
}

/// Regression: a session lost while following an install was reopened,
/// but the deploy lock had gone with the old session, and the rollback
/// then ran on an unlocked host. The lock is taken again first.
#[test]
fn a_rollback_after_a_reconnection_runs_under_the_lock_again() {
    let s = Setup::new("rollback_on_failure = yes");
    {
        let mut w = s.fake.world();
        let p1 = w.hosts.get_mut("p1").unwrap();
        p1.drop_session_on = Some("deployer-poll".into());
        p1.unhealthy = true;
    }
    let locked_at_rollback = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&locked_at_rollback);
    s.fake
        .world()
        .hooks
        .push(Box::new(move |world, host, line| {
            if host == "p1" && line.contains("-rollback") && line.contains("deployer-start") {
                seen.lock().unwrap().push(world.hosts["p1"].lock.clone());
            }
        }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    assert!(s.out.text().contains("reconnected"), "{}", s.out.text());
    assert_eq!(
        *locked_at_rollback.lock().unwrap(),
        [Some("a fake operator".to_string())],
        "the rollback ran once, under the lock taken again"
    );
    assert_eq!(s.version("p1").as_deref(), Some(OLD));
    assert!(s.host("p1").lock.is_none(), "released at the end");
    let r = s.history().pop().unwrap();
    assert_eq!(
        results(&r)[0],
        ("p1".to_string(), "rolled-back".to_string())
    );
}

/// Regression: with `lock_expiry` of a second or so, heartbeats went out
/// as rarely as the lock expired, so a live holder's lock could expire.
#[test]
fn heartbeats_come_well_within_the_expiry() {
    use std::time::Duration;
    for ms in [1, 999, 1000, 1500, 2000, 5000, 6000, 90_000] {
        let (secs, heartbeat) = preflight::lock_timing(Duration::from_millis(ms));
        assert!(secs * 1000 >= ms, "{ms} ms: the host waits less ({secs} s)");
        assert!(
            heartbeat * 3 <= Duration::from_secs(secs),
            "{ms} ms: heartbeat {heartbeat:?} for an expiry of {secs} s"
        );
        assert!(!heartbeat.is_zero());
    }
}

/// Regression: one look at a detached install that timed out (a host busy
/// with the install itself) made deployer give up following it, and
/// report a host that was being installed normally as in an unknown state.
#[test]
fn a_slow_look_at_the_install_is_not_a_lost_install() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p1").unwrap().time_out_on = Some("deployer-poll".into());
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success, "{}", s.out.text());
    assert!(
        s.out.text().contains("still following it"),
        "{}",
        s.out.text()
    );
    assert_eq!(s.history().pop().unwrap()["outcome"], "success");
}

/// Regression: with `-v`, apt's and the maintainer scripts' output was
/// streamed to the terminal as the host sent it, escape sequences and all.
#[test]
fn streamed_host_output_cannot_drive_the_terminal() {
    let s = Setup::new("");
    s.fake.world().hooks.push(Box::new(|world, host, line| {
        if host == "p1" && line.contains("deployer-start") {
            for (_, log) in world.hosts.get_mut("p1").unwrap().runs.values_mut() {
                log.push_str("postinst: \x1b]0;pwned\x07\x1b[2Jdone\n");
            }
        }
    }));
    let opts = Options {
        verbose: true,
        ..yes()
    };
    assert_eq!(
        s.deploy("prod", Some(NEW), opts, vec![]).unwrap(),
        ExitStatus::Success
    );
    let out = s.out.text();
    assert!(out.contains("p1 | postinst: \\x1b]0;pwned"), "{out}");
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out}");
}

/// Regression: what a host said when its history could not be appended
/// to, and the name of a freeze record's file, reached the terminal raw
/// in the refusal's notes.
#[test]
fn host_words_in_refusals_cannot_drive_the_terminal() {
    let s = Setup::new("");
    {
        let mut w = s.fake.world();
        let p2 = w.hosts.get_mut("p2").unwrap();
        p2.history_full = true;
        p2.history_error = Some(format!("\x1b[2J{}\n", "x".repeat(5000)));
    }
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    let notes = e.notes.join("\n");
    assert!(
        notes.contains("p2: ") && notes.contains("\\x1b[2J"),
        "{notes}"
    );
    assert!(!notes.contains('\x1b'), "{notes}");
    assert!(notes.len() < 1000, "clipped: {} bytes", notes.len());

    let s = Setup::new("");
    s.fake
        .world()
        .hosts
        .get_mut("p3")
        .unwrap()
        .freezes
        .push(freeze("hel\x1b]0;pwned\x07", "carol@ops"));
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    let notes = e.notes.join("\n");
    assert!(
        notes.contains("set under stage `hel\\x1b]0;pwned"),
        "{notes}"
    );
    assert!(
        !notes.contains('\x1b') && !notes.contains('\x07'),
        "{notes}"
    );
}

/// The record a second signal writes at this moment (the last words run
/// by hand: a real second signal would exit the test process).
fn abandon_now(interrupt: &Interrupt) -> bool {
    match interrupt.take_last_words() {
        Some(words) => {
            words();
            true
        }
        None => false,
    }
}

/// Regression: a second signal during the rollback recorded the hosts
/// being rolled back as `changed` (their rollout result), although their
/// rollback was under way and their state unknown.
#[test]
fn a_second_signal_during_the_rollback_records_those_hosts_as_unknown() {
    let s = Setup::new("rollback_on_failure = yes");
    s.fake.world().hosts.get_mut("p3").unwrap().unhealthy = true;
    let interrupt = s.interrupt.clone();
    s.fake.world().hooks.push(Box::new(move |_, host, line| {
        if host == "p1" && line.contains("-rollback") && line.contains("deployer-start") {
            assert!(abandon_now(&interrupt), "last words registered");
        }
    }));
    s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    let abandoned = s
        .history()
        .into_iter()
        .find(|r| r["outcome"] == "interrupted")
        .expect("the record of the second signal");
    let res = results(&abandoned);
    assert_eq!(
        res[0],
        ("p1".to_string(), "unknown".to_string()),
        "{abandoned}"
    );
    assert!(
        message(&abandoned, "p1").contains("rolled back"),
        "{abandoned}"
    );
    assert_eq!(res[3], ("p4".to_string(), "untouched".to_string()));
}

/// Regression: a signal while the hosts were being connected to and read
/// (before the target was known) exited without any record.
#[test]
fn a_signal_while_the_hosts_are_read_is_recorded() {
    let s = Setup::new("");
    let interrupt = s.interrupt.clone();
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let once = Arc::clone(&fired);
    s.fake.world().hooks.push(Box::new(move |_, _, line| {
        if line.contains("dpkg-query") && !once.swap(true, std::sync::atomic::Ordering::SeqCst) {
            assert!(
                abandon_now(&interrupt),
                "last words registered before the first read"
            );
        }
    }));
    s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    let h = s.history();
    assert_eq!(h[0]["outcome"], "interrupted", "{h:?}");
    assert_eq!(h[0]["stage"], "prod");
    assert_eq!(h[0]["reason"], "interrupted before any host was changed");
}

/// Regression: a rollback released the hold, then could not start, and
/// returned without setting the hold again: the host was left unpinned,
/// for `apt upgrade` or unattended-upgrades to move.
#[test]
fn a_rollback_that_cannot_start_sets_the_hold_again() {
    let s = Setup::with_package("rollback_on_failure = yes", "hold = yes");
    {
        let mut w = s.fake.world();
        let p1 = w.hosts.get_mut("p1").unwrap();
        p1.unhealthy = true;
        p1.fail_on = Some("-rollback".into());
    }
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    assert_eq!(
        s.version("p1").as_deref(),
        Some(NEW),
        "the rollback never ran"
    );
    assert!(
        s.host("p1").held.contains("fastpath"),
        "p1 is held as the install left it"
    );
    let r = s.history().pop().unwrap();
    assert!(message(&r, "p1").contains("rollback"), "{r}");
}

/// Regression: when the install failed and the hold could not be set
/// again either, only the install's failure was reported: the host's
/// lost hold went unrecorded.
#[test]
fn a_hold_that_cannot_be_set_after_a_failed_install_is_reported() {
    let s = Setup::with_package("", "hold = yes");
    {
        let mut w = s.fake.world();
        let p1 = w.hosts.get_mut("p1").unwrap();
        p1.install_fails = true;
        p1.fail_on = Some("apt-mark hold".into());
    }
    s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    let r = s.history().pop().unwrap();
    let m = message(&r, "p1");
    assert!(m.contains("postinst failed"), "{m}");
    assert!(m.contains("could not set the hold"), "{m}");
}

/// Regression: a host that could not be checked for a freeze before a
/// batch stopped the rollout (rightly) with a report and a record saying
/// that the stage had been frozen, which nobody had done.
#[test]
fn a_freeze_that_cannot_be_checked_is_not_reported_as_a_freeze() {
    let s = Setup::new("");
    s.fake.world().hooks.push(Box::new(|world, host, line| {
        if host == "p1" && line.contains("apt-get install") {
            world.hosts.get_mut("p4").unwrap().drop_session_on = Some("dpkg-query".into());
        }
    }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Interrupted);
    assert_eq!(installs(&s), ["p1"]);
    let out = s.out.text();
    assert!(out.contains("cannot be checked for a freeze"), "{out}");
    assert!(
        !out.contains("frozen now") && !out.contains("the stage was frozen"),
        "{out}"
    );
    let r = s.history().pop().unwrap();
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("a freeze could not be checked"),
        "{reason}"
    );
}

fn host_entry(record: &Value, host: &str) -> Value {
    record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn restarts_happen_before_the_health_check_on_every_host() {
    let s = Setup::with_package(
        "",
        "restart = yes\nrestart_command = restart-fastpath\nlogs_command = show-fastpath-log",
    );
    let dry = Options {
        dry_run: true,
        ..yes()
    };
    s.deploy("prod", Some(NEW), dry, vec![]).unwrap();
    let out = s.out.text();
    assert!(
        out.contains("Restart, on each host after its install, before its health check: `restart_command`\nService log shown on the canary: `logs_command`\n"),
        "the plan says it: {out}"
    );
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success);
    let w = s.fake.world();
    for h in ["p1", "p2", "p3", "p4"] {
        let lines: Vec<&String> = w
            .log
            .iter()
            .filter(|(host, _)| host == h)
            .map(|(_, l)| l)
            .collect();
        let restart = lines.iter().position(|l| l.contains("restart-fastpath"));
        let check = lines.iter().position(|l| l.contains("check-fastpath"));
        let install = lines.iter().position(|l| l.contains("apt-get install"));
        assert!(
            install < restart && restart < check && install.is_some(),
            "{h}: install, restart, then health check: {lines:?}"
        );
    }
    // only the canary's logs are shown, with its name in front
    assert_eq!(w.ran("p1", "show-fastpath-log").len(), 1);
    assert!(w.ran("p2", "show-fastpath-log").is_empty());
    drop(w);
    let out = s.out.text();
    assert!(out.contains("p1 log | p1: service started"), "{out}");
    assert!(out.contains("p1: restarted restart_command"), "{out}");
    let r = s.history().pop().unwrap();
    for h in ["p1", "p2", "p3", "p4"] {
        let e = host_entry(&r, h);
        assert_eq!(e["restart"]["ok"], true, "{e}");
        assert_eq!(e["restart"]["what"], "restart_command", "{e}");
        assert!(e.get("log_tail").is_none(), "no tail for a fine host: {e}");
    }
}

#[test]
fn a_failed_restart_fails_the_host_and_triggers_the_rollback() {
    let s = Setup::with_package(
        "rollback_on_failure = yes",
        "restart = yes\nrestart_command = restart-fastpath\nlogs_command = show-fastpath-log",
    );
    s.fake.world().hosts.get_mut("p3").unwrap().fail_on = Some("restart-fastpath".into());
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial);
    for h in ["p1", "p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h} is back on OLD");
    }
    let w = s.fake.world();
    assert!(
        w.ran("p3", "check-fastpath").is_empty(),
        "no health check after a failed restart"
    );
    // after the install, and after the rollback: the old version runs
    assert_eq!(w.ran("p1", "restart-fastpath").len(), 2);
    assert_eq!(w.ran("p3", "restart-fastpath").len(), 2);
    assert!(w.ran("p4", "apt-get install").is_empty());
    drop(w);
    let r = s.history().pop().unwrap();
    let p3 = host_entry(&r, "p3");
    assert_eq!(p3["result"], "rolled-back", "{p3}");
    assert_eq!(p3["restart"]["ok"], false, "{p3}");
    assert!(
        message(&r, "p3").starts_with("restart of restart_command failed (exit status 1)"),
        "{p3}"
    );
    assert_eq!(p3["log_tail"][0], "p3: service started", "{p3}");
    assert_eq!(host_entry(&r, "p1")["restart"]["ok"], true);
    let out = s.out.text();
    assert!(out.contains("p3 log | p3: service started"), "{out}");
}

#[test]
fn without_restart_nothing_is_restarted() {
    let s = Setup::with_package("", "restart = no\nrestart_command = restart-fastpath");
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success);
    assert!(s.fake.world().ran("p1", "restart-fastpath").is_empty());
    let r = s.history().pop().unwrap();
    assert!(host_entry(&r, "p1").get("restart").is_none());
}

#[test]
fn units_on_a_host_without_systemd_fail_with_a_clear_note() {
    // the fake hosts have no systemctl: the probe does not say SYSTEMD
    let s = Setup::with_package(
        "rollback_on_failure = yes",
        "units = fastpath\nrestart = yes",
    );
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial);
    assert_eq!(s.version("p1").as_deref(), Some(OLD), "rolled back");
    let r = s.history().pop().unwrap();
    let m = message(&r, "p1");
    assert!(
        m.contains("cannot restart fastpath.service: host `p1`"),
        "{m}"
    );
    assert!(s.fake.world().ran("p1", "systemctl restart").is_empty());
}

#[test]
fn the_unhealthy_canary_keeps_its_last_log_lines() {
    let s = Setup::with_package("", "logs_command = show-fastpath-log");
    s.fake.world().hosts.get_mut("p1").unwrap().unhealthy = true;
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial);
    let r = s.history().pop().unwrap();
    let p1 = host_entry(&r, "p1");
    assert_eq!(
        p1["log_tail"],
        serde_json::json!(["p1: service started"]),
        "{p1}"
    );
    assert!(p1.get("restart").is_none());
}

#[test]
fn follow_logs_runs_the_logs_beside_the_check() {
    let s = Setup::with_package("", "logs_command = show-fastpath-log");
    let opts = Options {
        follow_logs: true,
        ..yes()
    };
    let status = s.deploy("prod", Some(NEW), opts, vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success);
    let w = s.fake.world();
    let p1 = w.ran("p1", "check-fastpath");
    assert_eq!(p1.len(), 1);
    assert!(p1[0].starts_with("setsid sh -c 'DEPLOYER_SINCE="), "{p1:?}");
    assert!(!w.ran("p2", "check-fastpath")[0].contains("setsid"));
}

#[test]
fn a_refusal_is_the_json_document_and_the_history_record() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p2").unwrap().sudo_password = true;
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    let document = s.document.borrow().clone().expect("a document");
    assert_eq!(document["outcome"], "refused");
    assert_eq!(&document, s.history().last().unwrap());
}

#[test]
fn dpkg_busy_on_a_later_host_refuses_before_the_canary() {
    let s = Setup::new("lock_timeout = 1s");
    s.fake.world().hosts.get_mut("p3").unwrap().dpkg_locked_by =
        Some("4242 (unattended-upgr)".into());
    let e = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused, "{e:?}");
    assert!(
        e.message.contains("dpkg is busy on 1 host(s) of `prod`"),
        "{}",
        e.message
    );
    assert!(
        e.notes.iter().any(|n| n
            == "p3: `/var/lib/dpkg/lock-frontend` is held by process 4242 (`unattended-upgr`), still after 1s"),
        "{:?}",
        e.notes
    );
    assert!(
        installs(&s).is_empty(),
        "no host changed, the canary included"
    );
    assert!(
        s.out
            .text()
            .contains("p3: another process holds dpkg's lock; waiting up to 1s"),
        "{}",
        s.out.text()
    );
    assert_eq!(s.history().last().unwrap()["outcome"], "refused");
    // checked under the deploy lock: after it was taken, released after
    let log = s.fake.world().log.clone();
    let locked = log
        .iter()
        .position(|(_, c)| c.contains("deployer-lock"))
        .unwrap();
    let checked = log
        .iter()
        .position(|(_, c)| c.contains("apt-get check"))
        .unwrap();
    assert!(locked < checked, "{log:?}");
    assert!(s.host("p3").lock.is_none());
}

#[test]
fn dpkg_released_within_lock_timeout_lets_the_deploy_go_on() {
    let s = Setup::new("lock_timeout = 30s");
    s.fake.world().hosts.get_mut("p4").unwrap().dpkg_locked_by = Some("4242 (apt-get)".into());
    let mut asked = 0;
    s.fake
        .world()
        .hooks
        .push(Box::new(move |world, host, line| {
            if host == "p4" && line.contains("apt-get check") {
                asked += 1;
                if asked == 2 {
                    world.hosts.get_mut("p4").unwrap().dpkg_locked_by = None;
                }
            }
        }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success, "{}", s.out.text());
    assert!(s
        .out
        .text()
        .contains("p4: another process holds dpkg's lock"));
    assert_eq!(installs(&s).len(), 4);
    assert_eq!(s.version("p4").as_deref(), Some(NEW));
}

/// A failed install's output quoted in the report: real `apt-get install`
/// output (tests/data/apt/), whose dpkg lines end in `\r\n` and whose
/// database meter redraws with `\r`, shows as the terminal showed it, with
/// no `\r` left, escaped or not.
#[test]
fn quoted_apt_output_carries_no_carriage_return() {
    let captured = include_str!("../../tests/data/apt/hold-cycle-install.txt");
    let block = super::report::host_block("test-1", captured);
    assert!(!block.contains('\r') && !block.contains("\\r"), "{block}");
    assert!(block.starts_with("test-1 said:\n"), "{block}");
    assert!(
        block.ends_with("    | Setting up fastpath (0.77~pr705-119) ..."),
        "{block}"
    );
    assert!(
        block.contains(
            "    | (Reading database ... 6713 files and directories currently installed.)\n"
        ),
        "{block}"
    );
}

/// Issue 17 item 1: the lock check said "ours", then (a stalled operator)
/// the lock expired and bob took the host before the install started.
/// The start proves the lock on the host in the same step, so nothing is
/// installed, nothing is rolled back, no further host is tried, and the
/// record says the lock was lost and to whom.
#[test]
fn a_lock_lost_between_its_check_and_the_install_changes_nothing() {
    let s = Setup::new("rollback_on_failure = yes");
    s.fake.world().hooks.push(Box::new(|world, host, line| {
        if host == "p1" && line.contains("deployer-lock-check") {
            world.hosts.get_mut("p1").unwrap().lock = Some("bob@desk".into());
        }
    }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_ne!(status, ExitStatus::Success, "{}", s.out.text());
    assert!(s.host("p1").runs.is_empty(), "no run was started on p1");
    assert!(
        s.fake.world().ran("p1", "-rollback").is_empty(),
        "no rollback"
    );
    for h in ["p1", "p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h}");
    }
    let r = s.history().pop().unwrap();
    let m = message(&r, "p1");
    assert!(m.contains("lock lost") && m.contains("bob@desk"), "{r}");
    assert!(m.contains("nothing was changed"), "{r}");
    assert_eq!(results(&r)[0], ("p1".to_string(), "failed".to_string()));
    assert_eq!(results(&r)[2], ("p3".to_string(), "untouched".to_string()));
}

/// Issue 17 item 1: setting the hold again after the install is a change
/// under the lock too: once the lock is lost it is not made, and the
/// record says why.
#[test]
fn a_hold_is_not_set_once_the_lock_is_lost() {
    let s = Setup::with_package("", "hold = yes");
    s.fake.world().hooks.push(Box::new(|world, host, line| {
        if host == "p1" && line.contains("deployer-poll") {
            world.hosts.get_mut("p1").unwrap().lock = None;
        }
    }));
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_ne!(status, ExitStatus::Success, "{}", s.out.text());
    assert_eq!(
        s.version("p1").as_deref(),
        Some(NEW),
        "installed under the lock"
    );
    assert!(
        !s.host("p1").held.contains("fastpath"),
        "the hold was not set"
    );
    let r = s.history().pop().unwrap();
    let m = message(&r, "p1");
    assert!(m.contains("lock lost") && m.contains("nobody"), "{r}");
}

/// Issue 17 item 2: an install that is over without a status (its host
/// rebooted) is not waited for: the host is `unknown`, with what dpkg
/// says, and no further host is changed.
#[test]
fn an_install_gone_with_its_host_is_unknown_and_stops_the_rollout() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p1").unwrap().runs_gone =
        Some("the host rebooted since the run started".into());
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_ne!(status, ExitStatus::Success, "{}", s.out.text());
    let r = s.history().pop().unwrap();
    assert_eq!(results(&r)[0], ("p1".to_string(), "unknown".to_string()));
    let m = message(&r, "p1");
    assert!(
        m.contains("over without an exit status") && m.contains("rebooted"),
        "{r}"
    );
    assert!(m.contains("half configured"), "dpkg --audit's words: {r}");
    for h in ["p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h}");
    }
    assert_eq!(installs(&s), ["p1"]);
}

fn skipping(exclude: &[&str], skip_unreachable: bool) -> Options {
    Options {
        skip_unreachable,
        exclude: exclude.iter().map(ToString::to_string).collect(),
        ..yes()
    }
}

/// Issue 19 item 3: `--skip-unreachable` goes ahead on the hosts that
/// answer; the one down is recorded as skipped with why, in the `started`
/// record and the final one, and the exit status says the stage is not
/// done.
#[test]
fn skip_unreachable_changes_the_others_and_records_the_host_down_as_skipped() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p1").unwrap().down = true;
    let status = s
        .deploy("prod", Some(NEW), skipping(&[], true), vec![])
        .unwrap();
    assert_eq!(status, ExitStatus::Unreachable, "{}", s.out.text());
    let order = installs(&s);
    assert_eq!(order[0], "p2", "the canary is the first host taking part");
    assert_eq!(order.len(), 3);
    for h in ["p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(NEW), "{h}");
    }
    let text = s.out.text();
    assert!(text.contains("left out: p1 (down: "), "{text}");
    assert!(text.contains("the stage is not done"), "{text}");
    let h = s.history();
    let started = &h[h.len() - 2];
    assert_eq!(started["outcome"], "started");
    assert!(results(started).contains(&("p1".into(), "skipped".into())));
    let last = h.last().unwrap();
    assert_eq!(last["outcome"], "success");
    assert!(results(last).contains(&("p1".into(), "skipped".into())));
    assert!(message(last, "p1").starts_with("down: "), "{last}");
    let reason = last["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("left out: p1 (down: "), "{last}");
    // the hosts that answered keep the record, each its own part of it;
    // the reason still names the host left out
    let kept = s.host("p2").history.join("\n");
    assert!(kept.contains("left out: p1 (down: "), "{kept}");
    assert!(kept.contains("\"host\":\"p2\""), "{kept}");
    assert!(!kept.contains("\"host\":\"p3\""), "{kept}");
}

/// Issue 19 item 3: an excluded host is left alone: not locked, not asked
/// anything but its state, not changed; the canary is the first host that
/// is in the rollout.
#[test]
fn an_excluded_host_is_left_alone_and_is_not_the_canary() {
    let s = Setup::new("");
    let status = s
        .deploy("prod", Some(NEW), skipping(&["p1"], false), vec![])
        .unwrap();
    assert_eq!(status, ExitStatus::Unreachable, "{}", s.out.text());
    assert_eq!(s.version("p1").as_deref(), Some(OLD));
    assert_eq!(installs(&s)[0], "p2");
    let w = s.fake.world();
    let asked: Vec<&String> = w
        .log
        .iter()
        .filter(|(h, _)| h == "p1")
        .map(|(_, c)| c)
        .filter(|c| !c.contains("dpkg-query"))
        .collect();
    assert!(
        asked.is_empty(),
        "p1 was asked more than its state: {asked:?}"
    );
    drop(w);
    let r = s.history().pop().unwrap();
    assert_eq!(message(&r, "p1"), "excluded");
    assert_eq!(host_entry(&r, "p1")["from"], OLD);
    // the same deploy again: nothing left to do but p1, which is excluded
    let status = s
        .deploy("prod", Some(NEW), skipping(&["p1"], false), vec![])
        .unwrap();
    assert_eq!(status, ExitStatus::Unreachable);
    assert_eq!(installs(&s).len(), 3, "no host was installed again");
    // and without the exclusion, p1 alone
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success);
    assert_eq!(installs(&s).len(), 4);
    assert_eq!(installs(&s)[3], "p1");
}

/// Issue 19 item 3: leaving out every host refuses; an unknown host or one
/// of another stage is a usage error naming the value and the stage's
/// hosts.
#[test]
fn exclude_errors_and_leaving_out_every_host() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p4").unwrap().down = true;
    let e = s
        .deploy(
            "prod",
            Some(NEW),
            skipping(&["p1", "p2", "p3"], true),
            vec![],
        )
        .unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(e.message.contains("every host of `prod`"), "{}", e.message);
    assert!(installs(&s).is_empty());
    let e = s
        .deploy("prod", Some(NEW), skipping(&["p9"], false), vec![])
        .unwrap_err();
    assert_eq!(e.status, ExitStatus::Usage);
    assert!(e.message.contains("`--exclude p9`"), "{}", e.message);
    assert!(
        e.notes
            .iter()
            .any(|n| n == "hosts of `prod`: p1, p2, p3, p4"),
        "{:?}",
        e.notes
    );
    let e = s
        .deploy("prod", Some(NEW), skipping(&["t1"], false), vec![])
        .unwrap_err();
    assert_eq!(e.status, ExitStatus::Usage);
    assert!(
        e.message.contains("in stage `test`, not in `prod`"),
        "{}",
        e.message
    );
    assert!(installs(&s).is_empty());
}

/// Issue 19 item 3: a critical stage's confirmation shows the hosts left
/// out, and why, before `yes` is asked for.
#[test]
fn the_confirmation_names_the_hosts_left_out() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p3").unwrap().down = true;
    let opts = Options {
        skip_unreachable: true,
        exclude: vec!["p4".into()],
        ..Options::default()
    };
    let e = s.deploy("prod", Some(NEW), opts, vec![Some("no\n".into())]);
    assert_eq!(e.unwrap_err().message, "not confirmed");
    let text = s.out.text();
    assert!(text.contains("left out: p3 (down: "), "{text}");
    assert!(
        text.contains(&format!(
            "left out: p4 (excluded; runs {OLD}; not locked, not changed)"
        )),
        "{text}"
    );
    assert!(installs(&s).is_empty());
}

/// `rollback fastpath STAGE [VERSION]`.
fn rollback(stage: &str, version: Option<&str>) -> Request {
    Request::Rollback {
        package: "fastpath".into(),
        stage: Some(stage.into()),
        version: version.map(str::to_string),
    }
}

/// Stage `test` (t1, not critical): OLD, then NEW through a deploy on
/// record, then frozen by bob.
fn deployed_then_frozen() -> Setup {
    let s = Setup::new("");
    let mut world = s.fake.world();
    let t1 = world.hosts.get_mut("t1").expect("t1");
    t1.installed.insert("fastpath".into(), OLD.into());
    drop(world);
    assert_eq!(
        s.deploy("test", Some(NEW), yes(), vec![]).unwrap(),
        ExitStatus::Success
    );
    s.fake
        .world()
        .hosts
        .get_mut("t1")
        .unwrap()
        .freezes
        .push(freeze("test", "bob@desk"));
    s
}

#[test]
fn a_rollback_into_a_frozen_stage_is_confirmed_as_on_a_critical_stage() {
    let s = deployed_then_frozen();
    let reason = || Options {
        reason: Some("incident 42: back".into()),
        ..Options::default()
    };
    // without --reason: refused, nothing asked
    let e = s
        .request(&rollback("test", None), Options::default(), vec![])
        .unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(e.message.contains("needs `--reason`"), "{}", e.message);
    // with it, asked as on a critical stage: anything but `yes` stops it
    let e = s
        .request(&rollback("test", None), reason(), vec![Some("no\n".into())])
        .unwrap_err();
    assert_eq!(e.message, "not confirmed");
    assert_eq!(s.version("t1").as_deref(), Some(NEW));
    let refused = s.history().pop().unwrap();
    assert_eq!(refused["action"], "rollback");
    assert!(refused.get("under_freeze").is_none(), "{refused}");
    let text = s.out.text();
    assert!(
        text.contains("Rollback to 0.77"),
        "the plan says where from: {text}"
    );
    assert!(
        text.contains("Rolling back into frozen stage `test`"),
        "{text}"
    );
    assert!(text.contains("t1: frozen by bob@desk"), "{text}");

    let ok = s.request(
        &rollback("test", None),
        reason(),
        vec![Some("yes\n".into())],
    );
    assert_eq!(ok.unwrap(), ExitStatus::Success);
    assert_eq!(s.version("t1").as_deref(), Some(OLD));
    let r = s.history().pop().unwrap();
    assert_eq!(
        (&r["action"], &r["outcome"]),
        (&"rollback".into(), &"success".into())
    );
    assert_eq!(r["under_freeze"], true);
    // (the fake host cannot keep a .deb: its warning follows the reason)
    let why = r["reason"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("rollback under freeze: incident 42: back"),
        "{r}"
    );
    let on_host = s.host("t1").history.last().cloned().unwrap();
    let on_host: Value = serde_json::from_str(&on_host).unwrap();
    assert_eq!(
        (&on_host["id"], &on_host["under_freeze"]),
        (&r["id"], &true.into())
    );
}

#[test]
fn a_rollback_finds_a_deploy_only_the_hosts_recorded() {
    let s = Setup::new("");
    // another operator's deploy of t1, OLD -> NEW, is only in t1's history
    let theirs = history::Record {
        package: Some("fastpath".into()),
        version: Some(NEW.into()),
        hosts: vec![HostRecord {
            host: "t1".into(),
            from: Some(OLD.into()),
            to: Some(NEW.into()),
            result: HostResult::Changed,
            message: None,
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        }],
        ..history::Attempt::start("deploy").record("test", history::Outcome::Success)
    };
    s.fake
        .world()
        .hosts
        .get_mut("t1")
        .unwrap()
        .history
        .push(history::to_line(&theirs).trim_end().to_string());
    let status = s.request(&rollback("test", None), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success);
    assert_eq!(s.version("t1").as_deref(), Some(OLD));
    assert!(s.out.text().contains(&theirs.id), "{}", s.out.text());
    // nothing on record for prod: refused, nothing changed
    let e = s
        .request(&rollback("prod", None), yes(), vec![])
        .unwrap_err();
    assert_eq!(e.status, ExitStatus::Refused);
    assert!(e.message.contains("no successful"), "{}", e.message);
    assert!(e
        .notes
        .iter()
        .any(|n| n.contains("deployer rollback fastpath prod VERSION")));
    assert_eq!(installs(&s), ["t1"]);
}

/// A `command` gate named by the package: evaluated once on each batch
/// (the canary's `count = 1`, later batches' `batch_bake` of 0).
const PROBE: &str =
    "gates = probe\n[gate:probe]\nkind = command\ncommand = gate-probe\ncount = 1\n";

/// The position of the first command of `host` containing `needle` in the
/// fake world's log.
fn ran_at(s: &Setup, host: &str, needle: &str) -> usize {
    s.fake
        .world()
        .log
        .iter()
        .position(|(h, c)| h == host && c.contains(needle))
        .unwrap_or_else(|| panic!("{host} never ran `{needle}`"))
}

#[test]
fn each_batch_bakes_on_its_gates_before_the_next_starts() {
    let s = Setup::with_package("", PROBE);
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::Success, "{}", s.out.text());
    let canary_gate = ran_at(&s, "p1", "gate-probe");
    assert!(ran_at(&s, "p1", "apt-get install") < canary_gate);
    for h in ["p2", "p3"] {
        assert!(
            canary_gate < ran_at(&s, h, "apt-get install"),
            "{h} starts after the canary's bake"
        );
        assert!(ran_at(&s, h, "gate-probe") < ran_at(&s, "p4", "apt-get install"));
    }
    let text = s.out.text();
    assert!(
        text.contains("Baking p1 (the canary): `probe` once"),
        "{text}"
    );
    assert!(text.contains("  p1: gate `probe` pass: "), "{text}");
    let r = s.history().pop().unwrap();
    for h in r["hosts"].as_array().unwrap() {
        // the health check first, on record as the `command` gate it is
        let gates = h["gates"].as_array().expect("gate records");
        assert_eq!(gates.len(), 2, "{h}");
        assert_eq!(gates[0]["gate"], "health_check");
        assert_eq!(gates[1]["gate"], "probe");
        assert_eq!(gates[1]["verdict"], "pass");
        assert!(gates[1]["time"].as_str().unwrap().ends_with('Z'), "{h}");
    }
}

#[test]
fn a_failing_gate_on_the_canary_stops_the_rollout_and_the_policy_rolls_it_back() {
    let s = Setup::with_package("rollback_on_failure = yes", PROBE);
    s.fake.world().hosts.get_mut("p1").unwrap().fail_on = Some("gate-probe".into());
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    assert_eq!(s.version("p1").as_deref(), Some(OLD), "rolled back");
    for h in ["p2", "p3", "p4"] {
        assert!(s.fake.world().ran(h, "apt-get install").is_empty(), "{h}");
    }
    let r = s.history().pop().unwrap();
    let p1 = &r["hosts"][0];
    assert_eq!(p1["result"], "rolled-back", "{p1}");
    assert!(
        p1["message"]
            .as_str()
            .unwrap()
            .starts_with("gate `probe` failed: the command exited with status 1"),
        "{p1}"
    );
    assert_eq!(p1["gates"][0]["gate"], "health_check", "{p1}");
    assert_eq!(p1["gates"][0]["verdict"], "pass", "{p1}");
    assert_eq!(p1["gates"][1]["verdict"], "fail", "{p1}");
}

#[test]
fn a_rollback_runs_only_the_command_gates_once_and_bakes_nothing() {
    let s = Setup::with_package(
        "",
        "gates = probe web\n[gate:probe]\nkind = command\ncommand = gate-probe\nbake = 10m\n\
         [gate:web]\nkind = http\nurl = http://{address}:1/health\n",
    );
    let plan_of = |rollback| {
        let plan = crate::plan::Plan {
            package: "fastpath".parse().unwrap(),
            stage: "prod".into(),
            version: NEW.parse().unwrap(),
            critical: true,
            steps: Vec::new(),
            unchanged: Vec::new(),
            batches: Vec::new(),
            overridden: Vec::new(),
            allowed: Vec::new(),
            allow_dependency_changes: false,
            rollback: false,
            unsimulated: Vec::new(),
            left_out: Vec::new(),
            sizing: crate::plan::Sizing {
                batch_size: crate::plan::Share::Hosts(1),
                max_failures: crate::plan::Share::Hosts(0),
                taking_part: 0,
            },
        };
        bake::gates_of(&s.config, &plan, rollback)
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    bake::span_of(&s.config, &plan, g, true, rollback),
                )
            })
            .collect::<Vec<_>>()
    };
    use crate::gate::Span;
    use std::time::Duration;
    assert_eq!(
        plan_of(false),
        [
            ("probe".to_string(), Span::Bake(Duration::from_secs(600))),
            ("web".to_string(), Span::Bake(crate::gate::DEFAULT_BAKE))
        ]
    );
    assert_eq!(plan_of(true), [("probe".to_string(), Span::Count(1))]);
}

#[test]
fn the_dry_run_shows_the_gates_and_their_bakes() {
    let s = Setup::with_package(
        "",
        "gates = probe errors\n[gate:probe]\nkind = command\ncommand = gate-probe --token=s3cret\n\
         count = 3\ninterval = 2s\n[gate:errors]\nkind = prometheus\n\
         url = https://user:pw@prom.example.org/x\nquery = rate(e{host=\"{host}\"}[1m])\n\
         condition = < 0.01\ncompare = others\nmax_ratio = 2\nno_data = pause\n",
    );
    let opts = Options {
        dry_run: true,
        ..yes()
    };
    s.deploy("prod", Some(NEW), opts, vec![]).unwrap();
    let text = s.out.text();
    assert!(
        text.contains("Gates, each batch passing them before the next starts:\n"),
        "{text}"
    );
    assert!(
        text.contains("  `probe` (command): a command on each host (from the configuration, not shown); the canary 3 times, later batches once, every 2s; failure_limit 0, no_data fail\n"),
        "{text}"
    );
    assert!(
        text.contains("  `errors` (prometheus): `rate(e{host=\"{host}\"}[1m])` on https://prom.example.org/…, < 0.01, at most 2 times the others' mean; the canary for 300s, later batches once, every 30s; failure_limit 0, no_data pause\n"),
        "{text}"
    );
    assert!(!text.contains("s3cret") && !text.contains("pw@"), "{text}");
    let doc = s.document.borrow().clone().unwrap();
    let gates = doc["gates"].as_array().unwrap();
    assert_eq!(gates[0]["name"], "probe");
    assert_eq!(gates[0]["canary"], serde_json::json!({"count": 3}));
    assert_eq!(gates[0]["batches"], serde_json::json!({"bake": 0}));
    assert_eq!(gates[1]["canary"], serde_json::json!({"bake": 300}));
    assert_eq!(gates[1]["compare"]["max_ratio"], 2.0);
    assert_eq!(gates[1]["server"], "https://prom.example.org/…");
    assert!(!doc.to_string().contains("s3cret"));
}

#[test]
fn a_signal_during_the_bake_stops_it_as_between_batches() {
    // a bake of 10 minutes: only the signal can end it within the test
    let s = Setup::with_package(
        "rollback_on_failure = yes",
        "gates = probe\n[gate:probe]\nkind = command\ncommand = gate-probe\nbake = 10m\n\
         interval = 1s\n",
    );
    let interrupt = s.interrupt.clone();
    s.fake.world().hooks.push(Box::new(move |_, host, line| {
        if host == "p1" && line.contains("gate-probe") {
            interrupt.raise();
        }
    }));
    let started = std::time::Instant::now();
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(status, ExitStatus::Interrupted, "{}", s.out.text());
    assert!(
        s.out.text().contains("Interrupted during the bake of p1"),
        "{}",
        s.out.text()
    );
    assert_eq!(installs(&s)[0], "p1");
    for h in ["p2", "p3", "p4"] {
        assert!(s.fake.world().ran(h, "apt-get install").is_empty(), "{h}");
    }
    // the rollback policy applies, as for any stop
    assert_eq!(s.version("p1").as_deref(), Some(OLD));
    let r = s.history().pop().unwrap();
    assert_eq!(r["outcome"], "interrupted");
    assert_eq!(r["hosts"][0]["result"], "rolled-back", "{r}");
    assert_eq!(r["hosts"][0]["gates"][1]["gate"], "probe", "{r}");
    assert_eq!(r["hosts"][0]["gates"][1]["verdict"], "pass", "{r}");
}

#[test]
fn a_pause_asks_and_without_anyone_to_answer_fails_closed() {
    // `no_data = pause` needs a gate without data: an http gate never has
    // none, a command gate neither; a prometheus gate on a closed port is
    // an error, which pauses as no data does
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gate = format!(
        "gates = errors\n[gate:errors]\nkind = prometheus\nurl = http://127.0.0.1:{port}\n\
         query = up\ncondition = == 1\nno_data = pause\ncount = 1\n"
    );
    // an answer that is no choice is asked again; then continue
    let s = Setup::with_package("", &gate);
    let answers = ["maybe\n", "c\n", "c\n", "c\n", "c\n"]
        .iter()
        .map(|a| Some(a.to_string()))
        .collect();
    let status = s.deploy("prod", Some(NEW), yes(), answers).unwrap();
    assert_eq!(status, ExitStatus::Success, "{}", s.out.text());
    assert!(
        s.out.text().contains("answer `c` (continue)"),
        "{}",
        s.out.text()
    );
    // nobody to ask
    let s = Setup::with_package("rollback_on_failure = yes", &gate);
    let status = s.deploy("prod", Some(NEW), yes(), vec![None]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    assert_eq!(s.version("p1").as_deref(), Some(OLD));
    let r = s.history().pop().unwrap();
    let message = r["hosts"][0]["message"].as_str().unwrap();
    assert!(message.contains("no terminal to ask"), "{message}");
    assert!(message.contains("cannot be asked"), "{message}");
}

#[test]
fn the_health_check_is_on_record_as_a_command_gate_evaluated_once() {
    let s = Setup::new("");
    s.fake.world().hosts.get_mut("p1").unwrap().unhealthy = true;
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial);
    assert_eq!(
        s.fake.world().ran("p1", "check-fastpath").len(),
        1,
        "run once, as before"
    );
    let r = s.history().pop().unwrap();
    let gates = r["hosts"][0]["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert_eq!(gates[0]["gate"], "health_check");
    assert_eq!(gates[0]["verdict"], "fail");
    assert_eq!(gates[0]["value"], 1.0);
    let message = r["hosts"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the health check of `fastpath` failed (exit status 1)"),
        "the message is today's: {message}"
    );
}

#[test]
fn a_host_failing_its_gates_counts_against_the_failure_budget() {
    // p2 (second batch) fails its gate: within `max_failures = 1` the
    // rollout goes on and only p2 is put back; with the budget spent, a
    // second failing host (p4) halts it
    let s = Setup::with_sections("rollback_on_failure = yes", "max_failures = 1", PROBE);
    s.fake.world().hosts.get_mut("p2").unwrap().fail_on = Some("gate-probe".into());
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    for h in ["p1", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(NEW), "{h} stays on NEW");
    }
    assert_eq!(s.version("p2").as_deref(), Some(OLD), "p2 is rolled back");
    let text = s.out.text();
    assert!(
        text.contains("within the failure budget of 1 (max_failures 1): the rollout goes on."),
        "{text}"
    );
    let r = s.history().pop().unwrap();
    assert_eq!(r["failure_budget"]["failed"], 1, "{r}");
    assert_eq!(r["failure_budget"]["halted"], false, "{r}");

    let s = Setup::with_sections("rollback_on_failure = yes", "max_failures = 1", PROBE);
    for h in ["p2", "p4"] {
        s.fake.world().hosts.get_mut(h).unwrap().fail_on = Some("gate-probe".into());
    }
    let status = s.deploy("prod", Some(NEW), yes(), vec![]).unwrap();
    assert_eq!(status, ExitStatus::FailedPartial, "{}", s.out.text());
    let text = s.out.text();
    assert!(
        text.contains(
            "2 host(s) failed, beyond the failure budget of 1 (max_failures 1): the rollout halts."
        ),
        "{text}"
    );
    for h in ["p1", "p2", "p3", "p4"] {
        assert_eq!(s.version(h).as_deref(), Some(OLD), "{h} put back");
    }
    let r = s.history().pop().unwrap();
    assert_eq!(r["failure_budget"]["halted"], true, "{r}");
}
