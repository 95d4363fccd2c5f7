//! End-to-end tests of `deployer rollback` on real Debian hosts (the
//! testbed): the version before the stage's latest deploy, found in the
//! history its hosts keep across operators; hosts that disagree; a
//! rollback into a frozen stage. Each test reads the hosts afterwards (dpkg,
//! the history they keep) and the local history.

use crate::common;

use common::cli::{history, host_records, last, run, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// A version of `fastpath` between [`OLD`] and [`NEW`], published by each
/// test that needs it.
const MID: &str = "0.79~pr720-150";

/// A testbed with one stage `test` of `hosts` hosts, `fastpath` configured,
/// [`MID`] published beside [`OLD`] and [`NEW`], every host at [`OLD`].
fn one_stage(hosts: usize) -> Option<Testbed> {
    let tb = Testbed::start(&[("test", hosts)])?;
    tb.write_config(&["fastpath"], "", "");
    tb.publish("fastpath", MID);
    for h in tb.hosts("test") {
        tb.set_versions(&h.alias, &[("fastpath", Some(OLD))]);
    }
    Some(tb)
}

/// `deployer ARGS` run by `user` through sudo (deployer runs as root here,
/// so `SUDO_USER` says who it is), with `config` (in the testbed's
/// directory) as its configuration.
fn as_user(tb: &Testbed, user: &str, config: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tb.deployer();
    cmd.env("SUDO_USER", user)
        .env("USER", "root")
        .args(["--color=never", "--config", config])
        .args(args);
    run(&mut cmd)
}

/// A second operator's configuration: the testbed's, with its own local
/// history (`bob-history.jsonl`), as on another operator's machine.
fn second_operator(tb: &Testbed) -> &'static str {
    let text = std::fs::read_to_string(tb.dir().join("deployer.ini")).unwrap();
    assert!(text.contains("[environment]\n"), "{text}");
    let text = text.replacen(
        "[environment]\n",
        "[environment]\nhistory_file = bob-history.jsonl\n",
        1,
    );
    std::fs::write(tb.dir().join("bob.ini"), text).unwrap();
    "bob.ini"
}

/// The records of the history file `name` in the testbed's directory.
fn records(tb: &Testbed, name: &str) -> Vec<Value> {
    std::fs::read_to_string(tb.dir().join(name))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `deployer ARGS` by Alice is refused (exit status 6), saying each of
/// `says`, and `test-1` still runs `still`.
fn refused(tb: &Testbed, args: &[&str], says: &[&str], still: &str) {
    let (code, out, err) = as_user(tb, "alice", "deployer.ini", args);
    assert_eq!(code, 6, "{args:?}: {out}{err}");
    for said in says {
        assert!(err.contains(said), "{args:?}: `{said}` missing from {err}");
    }
    assert!(err.contains("no host was changed"), "{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(still));
}

#[test]
fn rollback_without_a_version_goes_back_before_the_latest_deploy_by_any_operator() {
    let Some(tb) = one_stage(2) else {
        return;
    };
    let bob = second_operator(&tb);
    let (code, out, err) = as_user(
        &tb,
        "alice",
        "deployer.ini",
        &["deploy", "fastpath", "test", MID],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Bob's deploy is in his own local history and on the hosts, not in Alice's
    let (code, out, err) = as_user(&tb, "bob", bob, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let bobs = records(&tb, "bob-history.jsonl");
    let bobs_deploy = bobs.last().expect("bob's record");
    assert_eq!(bobs_deploy["outcome"], "success");
    let id = bobs_deploy["id"].as_str().unwrap();
    assert!(
        history(&tb).iter().all(|r| r["id"] != id),
        "Alice's local history does not know Bob's deploy"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW));
    }

    let (code, out, err) = as_user(&tb, "alice", "deployer.ini", &["rollback", "fastpath"]);
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(
            tb.installed(h, "fastpath").as_deref(),
            Some(MID),
            "{h} runs what the stage ran before Bob's deploy"
        );
    }
    // the plan says where the version came from: the record, who, when
    let said = out
        .lines()
        .find(|l| l.starts_with("Rolling back `fastpath` to"))
        .unwrap_or_else(|| panic!("no origin line in {out}"));
    assert!(said.contains(MID) && said.contains(id), "{said}");
    assert!(said.contains("bob@"), "{said}");
    assert!(
        said.contains(bobs_deploy["time"].as_str().unwrap()),
        "{said}"
    );
    let r = last(&tb);
    assert_eq!(r["action"], "rollback");
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["version"], MID);
    assert_eq!(r["user"], "alice");
    assert_eq!(r["hosts"][0]["from"], NEW);
    assert!(r.get("under_freeze").is_none(), "not under freeze: {r}");
    // the hosts keep it too, as a rollback
    let kept = host_records(&tb, "test-2");
    assert!(
        kept.iter()
            .any(|k| k["id"] == r["id"] && k["action"] == "rollback" && k["outcome"] == "success"),
        "{kept:?}"
    );
}

#[test]
fn rollback_refuses_when_the_hosts_ran_different_versions_before() {
    let Some(tb) = one_stage(2) else {
        return;
    };
    tb.set_versions("test-2", &[("fastpath", Some(MID))]);
    let (code, out, err) = as_user(
        &tb,
        "alice",
        "deployer.ini",
        &["deploy", "fastpath", "test", NEW],
    );
    assert_eq!(code, 0, "{out}{err}");
    let deploy_id = last(&tb)["id"].as_str().unwrap().to_string();

    let (code, out, err) = as_user(
        &tb,
        "alice",
        "deployer.ini",
        &["rollback", "fastpath", "test"],
    );
    assert_eq!(code, 6, "refused: {out}{err}");
    assert!(
        err.contains("error: cannot choose a version to roll back to"),
        "{err}"
    );
    assert!(err.contains("did not run one version"), "{err}");
    for (version, host) in [(OLD, "test-1"), (MID, "test-2")] {
        let note = err
            .lines()
            .find(|l| l.contains(&format!("candidate {version} ")))
            .unwrap_or_else(|| panic!("no candidate {version} in {err}"));
        assert!(note.contains(host) && note.contains(&deploy_id), "{note}");
        assert!(
            note.contains(&format!("`deployer rollback fastpath test {version}`")),
            "{note}"
        );
    }
    assert!(err.contains("no host was changed"), "{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(
            tb.installed(h, "fastpath").as_deref(),
            Some(NEW),
            "{h} untouched"
        );
    }
    let r = last(&tb);
    assert_eq!(
        (&r["action"], &r["outcome"]),
        (&"rollback".into(), &"refused".into())
    );

    // picking one as the note says works
    let (code, out, err) = as_user(
        &tb,
        "alice",
        "deployer.ini",
        &["rollback", "fastpath", "test", MID],
    );
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(MID));
    }
    // and a rollback never moves a host forward
    let says = [
        "never moves a host forward",
        "test-1: ",
        "`deployer deploy fastpath test",
    ];
    refused(&tb, &["rollback", "fastpath", "test", NEW], &says, MID);
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(MID));
}

#[test]
fn a_freeze_stops_changes_not_the_way_back() {
    let Some(tb) = one_stage(1) else {
        return;
    };
    let me = "deployer.ini";
    for v in [MID, NEW] {
        let (code, out, err) = as_user(&tb, "alice", me, &["deploy", "fastpath", "test", v]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, out, err) = as_user(
        &tb,
        "alice",
        me,
        &["freeze", "test", "--reason", "INC-7: parser crash"],
    );
    assert_eq!(code, 0, "{out}{err}");

    // without --reason: refused, the freeze shown, the note gives the command with it
    let with_reason = format!("`deployer rollback fastpath test {MID} --reason \"...\"`");
    let says = [
        "stage `test` is frozen",
        "needs `--reason`",
        "INC-7: parser crash",
        &with_reason,
    ];
    refused(&tb, &["rollback", "fastpath", "test"], &says, NEW);

    // confirmed as on a critical stage: without a terminal and --yes, refused
    let reason = "INC-7: back to the parser that worked";
    let args = ["rollback", "fastpath", "test", "--reason", reason];
    refused(&tb, &args, &["no terminal to confirm on", "--yes"], NEW);

    let (code, out, err) = as_user(&tb, "alice", me, &[&args[..], &["--yes"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("into frozen stage `test`"),
        "the freeze is shown: {out}"
    );
    assert!(out.contains("INC-7: parser crash"), "{out}");
    assert!(
        out.contains(&format!("Rolled back `fastpath` to {MID} on `test`:")),
        "{out}"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(MID));
    let r = last(&tb);
    assert_eq!(r["action"], "rollback");
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["under_freeze"], true);
    assert!(r["reason"].as_str().unwrap().contains(reason), "{r}");
    let kept = host_records(&tb, "test-1");
    let on_host = kept
        .iter()
        .rev()
        .find(|k| k["id"] == r["id"] && k["outcome"] == "success")
        .unwrap_or_else(|| panic!("the rollback is not on the host: {kept:?}"));
    assert_eq!(on_host["under_freeze"], true);
    assert!(
        on_host["reason"].as_str().unwrap().contains(reason),
        "{on_host}"
    );

    // forward stays refused, even as a deploy of a version the stage ran
    let forward = ["deploy", "fastpath", "test", NEW, "--reason", "x"];
    refused(&tb, &forward, &["stage `test` is frozen"], MID);
    // a deploy that goes back is pointed to `rollback`
    let instead = format!("`deployer rollback fastpath test {OLD} --reason \"...\"`");
    refused(&tb, &["deploy", "fastpath", "test", OLD], &[&instead], MID);
    // a rollback to a version the stage never ran stays refused
    let never = [
        "rollback",
        "fastpath",
        "test",
        "0.70~pr600-1",
        "--reason",
        "x",
        "--yes",
    ];
    refused(&tb, &never, &["stage `test` is frozen", "is not one"], MID);
    let outcomes: Vec<(String, String, bool)> = history(&tb)
        .iter()
        .skip(2)
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                r["under_freeze"] == true,
            )
        })
        .collect();
    let want = [
        ("freeze", "success", false),
        ("rollback", "refused", false),
        ("rollback", "refused", false),
        ("rollback", "success", true),
        ("deploy", "refused", false),
        ("deploy", "refused", false),
        ("rollback", "refused", false),
    ];
    assert_eq!(
        outcomes,
        want.map(|(a, o, u)| (a.to_string(), o.to_string(), u))
    );
}

#[test]
fn rollback_alone_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(common::bin::deployer(dir.path(), dir.path()).arg("rollback"));
    assert_eq!(code, 2, "{out}{err}");
    for said in [
        "Usage: deployer rollback",
        "How the version is chosen",
        "ran before its most recent successful `deploy` or `promote`",
        "Into a frozen stage",
        "deployer rollback fastpath prod",
    ] {
        assert!(err.contains(said), "`{said}` missing from {err}");
    }
    assert!(!err.contains("unrecognized subcommand"), "{err}");
}
