//! End-to-end tests of `deployer timeline` and of `history --since`,
//! `--limit` and `--hosts` without a stage, on real Debian hosts: a
//! deployer deploy, a manual `apt-get install` made over ssh through sudo
//! outside deployer, a `dpkg -r`, a rotated gzipped dpkg log, a host down.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common;

use common::cli::{deployer, last, two_stages, NEW, OLD};
use common::testbed::{poll, Testbed};
use serde_json::Value;

fn json_of(tb: &Testbed, args: &[&str]) -> (i32, Value, String) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, stdout, stderr) = deployer(tb, &all);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, v, stderr)
}

fn events(v: &Value) -> &Vec<Value> {
    v.as_array().expect("an array of events")
}

fn hosts_of(e: &Value) -> Vec<&str> {
    e["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn timeline_lists_deployer_manual_and_removed_changes_each_attributed_once() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("test-2", &[("fastpath", Some(OLD))]);

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let attempt = last(&tb);
    let id = attempt["id"].as_str().unwrap().to_string();
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));

    // the deploy's dpkg lines of test-1 now live in a rotated, gzipped file
    ok(
        &tb.exec(
            "test-1",
            "gzip -c /var/log/dpkg.log > /var/log/dpkg.log.2.gz && : > /var/log/dpkg.log",
        ),
        "rotate dpkg.log",
    );

    // everything after this second is "since"
    let since = now() + 1;
    assert!(poll(Duration::from_secs(10), || now() > since));
    let since_arg = deployer::history::format_rfc3339(since);

    // outside deployer: a colleague's apt-get through sudo, and a dpkg -r
    ok(
        &tb.ssh(
            "test-1",
            "deployer",
            &format!(
                "sudo -n apt-get update -q && sudo -n apt-get install -y -q --allow-downgrades fastpath={OLD}"
            ),
        ),
        "manual apt-get install",
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    ok(&tb.exec("test-2", "dpkg -r fastpath"), "dpkg -r");
    assert_eq!(tb.installed("test-2", "fastpath"), None);

    let (code, v, err) = json_of(&tb, &["timeline", "test", "--package", "fastpath"]);
    assert_eq!(code, 0, "{v}\n{err}");
    let all = events(&v);
    // the deploy: once, as the attempt, on both hosts, confirmed by dpkg
    // (test-1's line read from the gzipped rotation)
    let deploys: Vec<&Value> = all
        .iter()
        .filter(|e| e["by"]["kind"] == "deployer")
        .collect();
    assert_eq!(deploys.len(), 1, "{v:#}");
    let d = deploys[0];
    assert_eq!(hosts_of(d), ["test-1", "test-2"], "{d:#}");
    assert_eq!(
        (d["from"].as_str(), d["to"].as_str()),
        (Some(OLD), Some(NEW))
    );
    assert_eq!(d["change"], "upgrade", "dpkg confirms it: {d:#}");
    let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["by", "change", "epoch", "from", "hosts", "package", "stage", "time", "to"],
        "the documented shape"
    );
    assert_eq!(d["by"]["attempt"], id.as_str());
    assert_eq!(d["by"]["action"], "deploy");
    assert_eq!(d["by"]["who"], attempt_who(&attempt));
    // not a second time as apt's or dpkg's
    assert!(
        !all.iter()
            .any(|e| e["by"]["kind"] != "deployer" && e["to"] == NEW && e["from"] == OLD),
        "{v:#}"
    );
    // the manual downgrade: apt's command line and who asked
    let manual: Vec<&Value> = all.iter().filter(|e| e["by"]["kind"] == "apt").collect();
    assert_eq!(manual.len(), 1, "{v:#}");
    let m = manual[0];
    assert_eq!(hosts_of(m), ["test-1"]);
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str()),
        (Some(NEW), Some(OLD))
    );
    assert_eq!(m["change"], "downgrade");
    let cmd = m["by"]["commandline"].as_str().unwrap();
    assert!(cmd.contains(&format!("fastpath={OLD}")), "{cmd}");
    let by = m["by"]["requested_by"].as_str().unwrap_or("");
    assert!(by.starts_with("deployer ("), "{m:#}");
    // the removal: dpkg alone
    let removed: Vec<&Value> = all
        .iter()
        .filter(|e| e["by"]["kind"] == "dpkg" && e["to"].is_null())
        .collect();
    assert_eq!(removed.len(), 1, "{v:#}");
    assert_eq!(hosts_of(removed[0]), ["test-2"]);
    assert_eq!(
        (removed[0]["from"].as_str(), removed[0]["change"].as_str()),
        (Some(NEW), Some("remove"))
    );
    // oldest first, times with the host's offset
    let epochs: Vec<i64> = all.iter().map(|e| e["epoch"].as_i64().unwrap()).collect();
    assert!(epochs.windows(2).all(|w| w[0] <= w[1]), "{epochs:?}");
    assert!(
        all.iter()
            .all(|e| e["time"].as_str().unwrap().ends_with("+00:00")),
        "{v:#}"
    );

    // the same for people
    let (code, text, err) = deployer(&tb, &["timeline", "test", "--package", "fastpath"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(&format!(
            "test: test-1,test-2  fastpath  {OLD} -> {NEW}  deploy by"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("(attempt {id}, success, changed")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "test: test-1  fastpath  {NEW} -> {OLD} (downgrade)  apt: "
        )),
        "{text}"
    );
    assert!(text.contains("requested by deployer ("), "{text}");
    assert!(
        text.contains(&format!(
            "test: test-2  fastpath  {NEW} -> removed  dpkg (unknown)"
        )),
        "{text}"
    );

    // --since: only what came after
    let (code, v, err) = json_of(
        &tb,
        &[
            "timeline",
            "test",
            "--package",
            "fastpath",
            "--since",
            &since_arg,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let kinds: Vec<&str> = events(&v)
        .iter()
        .map(|e| e["by"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["apt", "dpkg"], "{v:#}");
    // --host: only that host's, and only it is asked
    let (code, v, err) = json_of(
        &tb,
        &["timeline", "--host", "test-2", "--package", "fastpath"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!events(&v).is_empty());
    assert!(
        events(&v).iter().all(|e| hosts_of(e) == ["test-2"]),
        "{v:#}"
    );
    // --package: other packages are left out
    let (code, v, _) = json_of(&tb, &["timeline", "test", "--package", "no-such-package"]);
    assert_eq!(code, 0);
    assert!(events(&v).is_empty(), "{v:#}");
    // bad input: refused, naming it
    let (code, _, err) = deployer(&tb, &["timeline", "--since", "2026-12-07 05:30"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("error: `--since`") && err.contains("offset"),
        "{err}"
    );
    let (code, _, err) = deployer(&tb, &["timeline", "--package", "Fastpath"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("error: `--package`") && err.contains("Fastpath"),
        "{err}"
    );
    let (code, _, err) = deployer(&tb, &["timeline", "--host", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`--host nope`"), "{err}");

    // a host down: a warning naming it, status 3, the others still listed
    let down = tb.stop_sshd("prod-1");
    let (code, v, err) = json_of(&tb, &["timeline", "--package", "fastpath"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("warning: host `prod-1`"), "{err}");
    assert!(
        events(&v).iter().any(|e| e["by"]["kind"] == "deployer"),
        "{v:#}"
    );
    down.undo();
}

/// `user@machine`, as a record's `who()` writes it.
fn attempt_who(record: &Value) -> String {
    let base = format!(
        "{}@{}",
        record["user"].as_str().unwrap(),
        record["machine"].as_str().unwrap()
    );
    match record["as_user"].as_str() {
        Some(_) => format!("{base} (sudo)"),
        None => base,
    }
}

#[test]
fn history_since_limit_and_hosts_of_every_stage() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("prod-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let first = last(&tb)["id"].as_str().unwrap().to_string();
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", NEW, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let second = last(&tb)["id"].as_str().unwrap().to_string();

    // --hosts without a stage: every stage's hosts; moving the local log
    // away proves the records come from the hosts
    std::fs::rename(
        tb.dir().join("deployer-history.jsonl"),
        tb.dir().join("elsewhere.jsonl"),
    )
    .unwrap();
    let (code, v, err) = json_of(&tb, &["history", "--hosts"]);
    assert_eq!(code, 0, "{err}");
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [second.as_str(), first.as_str()],
        "newest first: {v:#}"
    );
    let sources: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source_host"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["prod-1", "test-1"]);
    // with --stage, that stage's hosts only
    let (code, v, _) = json_of(&tb, &["history", "--stage", "test", "--hosts"]);
    assert_eq!(code, 0);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v:#}");
    std::fs::rename(
        tb.dir().join("elsewhere.jsonl"),
        tb.dir().join("deployer-history.jsonl"),
    )
    .unwrap();

    // --limit: the newest N
    let (code, v, _) = json_of(&tb, &["history", "--limit", "1"]);
    assert_eq!(code, 0);
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str()]);
    // --since: a window that holds both, and one after both
    let (code, v, _) = json_of(&tb, &["history", "--since", "1h"]);
    assert_eq!(code, 0);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v:#}");
    let after = deployer::history::format_rfc3339(now() + 3600);
    let (code, v, _) = json_of(&tb, &["history", "--hosts", "--since", &after]);
    assert_eq!(code, 0);
    assert!(v.as_array().unwrap().is_empty(), "{v:#}");
    let (code, _, err) = deployer(&tb, &["history", "--since", "soon"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`soon` is neither a duration nor a time"),
        "{err}"
    );
}

#[test]
fn logs_the_login_user_cannot_read_are_read_through_sudo_or_said() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    ok(
        &tb.exec(
            "test-1",
            &format!(
                "apt-get update -q && apt-get install -y -q fastpath={NEW} && \
                 chown root:adm /var/log/apt/history.log && chmod 0640 /var/log/apt/history.log"
            ),
        ),
        "apt-get install as root, then apt's history made 0640 root:adm",
    );
    let denied = tb.ssh("test-1", "deployer", "cat /var/log/apt/history.log");
    assert!(!denied.status.success(), "the login user cannot read it");

    // read through sudo -n: apt's command line is there
    let (code, v, err) = json_of(&tb, &["timeline", "test", "--package", "fastpath"]);
    assert_eq!(code, 0, "{err}");
    let upgrade = events(&v)
        .iter()
        .find(|e| e["to"] == NEW)
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(upgrade["by"]["kind"], "apt", "{v:#}");
    assert!(upgrade["by"]["commandline"]
        .as_str()
        .unwrap()
        .contains(&format!("fastpath={NEW}")));

    // sudo wants a password: said, status 3, dpkg's changes still listed
    let fault = tb.sudo_requires_password("test-1");
    let (code, v, err) = json_of(&tb, &["timeline", "test", "--package", "fastpath"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("warning: host `test-1`: cannot read apt's history: /var/log/apt/history.log not readable by deployer, and sudo -n was refused"),
        "{err}"
    );
    assert!(err.contains("password is required"), "sudo's words: {err}");
    let upgrade = events(&v)
        .iter()
        .find(|e| e["to"] == NEW)
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(upgrade["by"]["kind"], "dpkg", "{v:#}");
    fault.undo();
}

#[test]
fn the_dashboard_lists_the_last_changes() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let who = attempt_who(&last(&tb));

    let dir = tb.dir().join("site");
    let (code, out, err) = deployer(
        &tb,
        &[
            "refresh-badges",
            "--no-host-badges",
            "--output",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let at = page
        .find("<h2 id=\"h-changes\">Last changes</h2>")
        .unwrap_or_else(|| panic!("{page}"));
    let section = &page[at..];
    let line = section
        .lines()
        .find(|l| l.contains("<strong>fastpath</strong>") && l.contains("deploy by"))
        .unwrap_or_else(|| panic!("{section}"));
    assert!(line.contains(&format!("{OLD} → {NEW}")), "{line}");
    assert!(
        line.contains("<span class=\"host\">test-1</span>"),
        "{line}"
    );
    assert!(line.contains(&who), "{line}");
    assert!(section.contains("in the last 6h"), "{section}");
    // after the matrix
    assert!(page.find("class=\"matrix\"").unwrap() < at);

    // `dashboard_changes = no`: no section, no reads
    tb.write_config(
        &[
            "fastpath",
            "analysis",
            "detector",
            "badpostinst",
            "healthd",
            "slowpkg",
        ],
        "dashboard_changes = no",
        "",
    );
    let (code, _, err) = deployer(
        &tb,
        &[
            "refresh-badges",
            "--no-host-badges",
            "--output",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(!page.contains("Last changes"), "{page}");
}
