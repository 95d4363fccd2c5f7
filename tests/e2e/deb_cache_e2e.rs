//! End-to-end tests of the `.deb` cache on real Debian hosts (the
//! testbed): the file of the version a host ran kept before each change,
//! checked against apt's metadata, root-owned; a rollback to a version the
//! repository dropped installed from it through apt; a corrupted file or a
//! planted link refused; the last three versions kept; the rollback promise
//! and `versions` counting it. Each test reads the hosts themselves.

use crate::common;

use common::cli::{deployer, host_result, last, two_stages, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

const DIR: &str = "/var/cache/deployer/debs";

/// A root shell command's stdout on `host`, trimmed; panics when it fails.
fn sh(tb: &Testbed, host: &str, cmd: &str) -> String {
    let out = tb.exec(host, cmd);
    assert!(
        out.status.success(),
        "`{cmd}` on {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The files of the cache on `host` (`.deb`s only), sorted.
fn cached(tb: &Testbed, host: &str) -> Vec<String> {
    let listing = sh(
        tb,
        host,
        &format!("cd {DIR} 2>/dev/null && ls -1 -- *.deb 2>/dev/null || true"),
    );
    let mut files: Vec<String> = listing.lines().map(str::to_string).collect();
    files.sort();
    files
}

/// The cached file of `pkg` `version` on `host`: it is there, root-owned,
/// `0644` in `0755` directories, and its content and sidecar have the
/// SHA256 apt's metadata gives (`sha`, read while the repository offered
/// it). Returns its name.
fn assert_kept(tb: &Testbed, host: &str, pkg: &str, version: &str, sha: &str) -> String {
    let prefix = format!("{pkg}_{}_", version.replace(':', "%3a"));
    let file = cached(tb, host)
        .into_iter()
        .find(|f| f.starts_with(&prefix))
        .unwrap_or_else(|| {
            panic!(
                "{host}: no {pkg} {version} in {DIR}: {:?}",
                cached(tb, host)
            )
        });
    let path = format!("{DIR}/{file}");
    assert_eq!(
        sh(
            tb,
            host,
            &format!("stat -c '%U:%G %a' /var/cache/deployer {DIR} {path} {path}.sha256")
        ),
        "root:root 755\nroot:root 755\nroot:root 644\nroot:root 644",
        "{host}: owners and modes"
    );
    assert_eq!(
        sh(tb, host, &format!("sha256sum < {path} | cut -c1-64")),
        sha,
        "{host}: the kept file is the repository's"
    );
    assert_eq!(sh(tb, host, &format!("cat {path}.sha256")), sha);
    file
}

/// The SHA256 apt's metadata gives for `pkg` `version` on `host` (after
/// an `apt-get update`, which every deploy runs).
fn repo_sha(tb: &Testbed, host: &str, pkg: &str, version: &str) -> String {
    let show = sh(tb, host, &format!("apt-cache show {pkg}={version}"));
    let sha = show
        .lines()
        .find_map(|l| l.strip_prefix("SHA256: "))
        .unwrap_or_else(|| panic!("no SHA256 in {show}"));
    assert_eq!(sha.len(), 64, "{sha}");
    sha.to_string()
}

/// `deployer deploy ARGS`.
fn deploy(tb: &Testbed, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["deploy"];
    all.extend_from_slice(args);
    deployer(tb, &all)
}

/// `deployer deploy ARGS`, which must succeed; its stdout.
fn deploy_ok(tb: &Testbed, args: &[&str]) -> String {
    let (code, out, err) = deploy(tb, args);
    assert_eq!(code, 0, "deploy {args:?}:\n{out}{err}");
    out
}

fn versions_row<'v>(v: &'v Value, stage: &str, version: &str) -> &'v Value {
    let stage = crate::versions_e2e::stage(v, stage);
    stage["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == version)
        .unwrap_or_else(|| panic!("no {version} in {stage}"))
}

#[test]
fn a_version_the_repository_dropped_is_installed_from_the_hosts_cache() {
    let Some(tb) = two_stages(2, "", "") else {
        return;
    };
    let hosts = ["test-1", "test-2"];
    deploy_ok(&tb, &["fastpath", "test", OLD]);
    let old_sha = repo_sha(&tb, "test-1", "fastpath", OLD);
    // nothing ran before: nothing to keep
    for h in hosts {
        assert!(cached(&tb, h).is_empty(), "{h}: {:?}", cached(&tb, h));
    }
    deploy_ok(&tb, &["fastpath", "test", NEW]);
    let mut file = String::new();
    for h in hosts {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW));
        file = assert_kept(&tb, h, "fastpath", OLD, &old_sha);
        assert_eq!(cached(&tb, h), [file.clone()], "{h}: only what it ran");
    }
    let record = last(&tb);
    for h in hosts {
        assert_eq!(host_result(&record, h), "changed");
    }

    tb.unpublish("fastpath", OLD);

    // a host that never ran OLD has no copy: refused as before, naming it
    let (code, out, err) = deploy(&tb, &["fastpath", "prod", OLD, "--yes"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("prod-1") && err.contains("lacks"), "{err}");
    assert!(err.contains("cache"), "{err}");
    for h in ["prod-1", "prod-2"] {
        assert_eq!(tb.installed(h, "fastpath"), None);
    }

    // a corrupted copy is refused before any host is changed
    let path = format!("{DIR}/{file}");
    sh(
        &tb,
        "test-2",
        &format!("cp -p {path} /root/good.deb && printf x >> {path}"),
    );
    let (code, out, err) = deploy(&tb, &["fastpath", "test", OLD]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("not the one recorded when it was kept"),
        "{out}{err}"
    );
    for h in hosts {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }

    // the good copy back: installed from the cache, through apt
    sh(&tb, "test-2", &format!("cp -p /root/good.deb {path}"));
    let plan = deploy_ok(&tb, &["fastpath", "test", OLD, "--dry-run"]);
    assert!(plan.contains("from: the host's cache"), "{plan}");
    assert!(plan.contains(&path), "{plan}");
    let json: Value = serde_json::from_str(&deploy_ok(
        &tb,
        &["fastpath", "test", OLD, "--dry-run", "--json"],
    ))
    .unwrap();
    for step in json["steps"].as_array().unwrap() {
        assert_eq!(step["from_cache"], path.as_str(), "{step}");
    }
    let out = deploy_ok(&tb, &["fastpath", "test", OLD]);
    assert!(
        out.contains(&format!(
            "test-1: installing {OLD} from the host's cache, {path}"
        )),
        "{out}"
    );
    for h in hosts {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
        let status = sh(&tb, h, "tail -n 40 /var/log/apt/history.log");
        assert!(
            status.contains(&path),
            "{h}: apt installed the file: {status}"
        );
    }

    // `versions` says what each host has cached, the dropped version too
    let (code, text, err) = deployer(&tb, &["versions", "fastpath", "test", "--json"]);
    assert_eq!(code, 0, "{text}{err}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let old = versions_row(&v, "test", OLD);
    assert_eq!(old["cached"], serde_json::json!(hosts), "{old}");
    assert_eq!(old["available"], serde_json::json!([]), "{old}");
    assert_eq!(old["installed"], serde_json::json!(hosts), "{old}");
    assert_eq!(
        versions_row(&v, "test", NEW)["cached"],
        serde_json::json!(hosts)
    );
    let (code, text, err) = deployer(&tb, &["versions", "fastpath", "test", "--no-update"]);
    assert_eq!(code, 0, "{text}{err}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(OLD))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("cached on every host") && line.contains("in no repository"),
        "{line}"
    );

    // the rollback promise counts the cache: OLD is only there
    let (code, out, err) = deploy(
        &tb,
        &[
            "fastpath",
            "test",
            NEW,
            "--rollback-on-failure",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "back: a rollback would install {OLD} from the host's cache"
        )),
        "{out}"
    );
}

const HEALTH: &str = "[package:healthd]\nhealth_check = /usr/bin/healthd-check";

#[test]
fn a_failed_rollout_rolls_back_from_the_cache_when_the_repository_dropped_the_version() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["healthd"], "", HEALTH);
    tb.publish("healthd", "1.5-1");
    // installed with dpkg: not in apt's archive cache, so fetched to keep it
    tb.set_versions("test-1", &[("healthd", Some("1.0-1"))]);
    deploy_ok(&tb, &["healthd", "test", "1.5-1"]);
    let sha = repo_sha(&tb, "test-1", "healthd", "1.0-1");
    assert_kept(&tb, "test-1", "healthd", "1.0-1", &sha);
    tb.unpublish("healthd", "1.0-1");
    deploy_ok(&tb, &["healthd", "test", "1.0-1"]);
    assert_eq!(tb.installed("test-1", "healthd").as_deref(), Some("1.0-1"));

    // without the promise counting the cache this would be refused
    let (code, out, err) = deploy(&tb, &["healthd", "test", "2.0-1", "--rollback-on-failure"]);
    assert_eq!(code, 8, "the health check of 2.0-1 fails:\n{out}{err}");
    assert!(out.contains("rolled back to 1.0-1"), "{out}");
    assert_eq!(tb.installed("test-1", "healthd").as_deref(), Some("1.0-1"));
    assert_eq!(host_result(&last(&tb), "test-1"), "rolled-back");
    // the failed version was kept too, before the rollback changed it
    let files = cached(&tb, "test-1");
    assert!(
        files.iter().any(|f| f.starts_with("healthd_2.0-1_")),
        "{files:?}"
    );

    // with the cached copy gone, the same promise is refused
    sh(&tb, "test-1", &format!("rm -f {DIR}/healthd_1.0-1_*"));
    let (code, out, err) = deploy(&tb, &["healthd", "test", "1.5-1", "--rollback-on-failure"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("its .deb cache lacks 1.0-1"), "{err}");
    assert_eq!(tb.installed("test-1", "healthd").as_deref(), Some("1.0-1"));
}

#[test]
fn the_cache_keeps_the_three_most_recently_kept_versions() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    let newer = ["0.90-1", "0.91-1", "0.92-1"];
    for v in newer {
        tb.publish("fastpath", v);
    }
    let order = [OLD, NEW, newer[0], newer[1], newer[2]];
    for v in order {
        deploy_ok(&tb, &["fastpath", "test", v]);
    }
    let files = cached(&tb, "test-1");
    // OLD was kept first and is gone; the one just kept (0.91-1) stays
    let mut want = vec![NEW, newer[0], newer[1]];
    want.sort();
    assert_eq!(versions_in(&tb), want, "{files:?}");
    for f in &files {
        assert_eq!(
            sh(
                &tb,
                "test-1",
                &format!("test -f {DIR}/{f}.sha256 && echo ok")
            ),
            "ok"
        );
    }
    assert_eq!(
        sh(&tb, "test-1", &format!("ls {DIR} | grep -c sha256")),
        "3",
        "no sidecar left behind"
    );

    // the host runs 0.92-1: kept now, and NEW, kept longest ago, goes
    deploy_ok(&tb, &["fastpath", "test", newer[0]]);
    assert_eq!(versions_in(&tb), [newer[0], newer[1], newer[2]]);
    // a version found already cached counts as kept again: 0.90-1 then
    // 0.91-1 are kept (again) after 0.92-1, so 0.92-1, though the newest
    // version, is the one kept longest ago when OLD comes in
    deploy_ok(&tb, &["fastpath", "test", newer[1]]);
    deploy_ok(&tb, &["fastpath", "test", OLD]);
    assert_eq!(versions_in(&tb), [newer[0], newer[1], newer[2]]);
    deploy_ok(&tb, &["fastpath", "test", newer[2]]);
    let mut want = vec![OLD, newer[0], newer[1]];
    want.sort();
    assert_eq!(versions_in(&tb), want);
}

/// The versions of `fastpath` in test-1's cache, sorted as text.
fn versions_in(tb: &Testbed) -> Vec<String> {
    cached(tb, "test-1")
        .iter()
        .map(|f| f.split('_').nth(1).unwrap().to_string())
        .collect()
}

#[test]
fn a_planted_link_on_the_way_to_the_cache_is_refused_and_nothing_written_through_it() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    deploy_ok(&tb, &["fastpath", "test", OLD]);
    // a directory root must not write to, owned by someone else
    sh(
        &tb,
        "test-1",
        "mkdir -p /var/tmp/elsewhere && chown nobody: /var/tmp/elsewhere && ln -s /var/tmp/elsewhere /var/cache/deployer",
    );
    let out = deploy_ok(&tb, &["fastpath", "test", NEW]);
    assert!(out.contains("not kept in the host's .deb cache"), "{out}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let message = last(&tb)["hosts"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains("link") && message.contains("/var/cache/deployer"),
        "the warning is on record: {message}"
    );
    assert_eq!(sh(&tb, "test-1", "ls -A /var/tmp/elsewhere"), "");

    // the same one level down
    sh(
        &tb,
        "test-1",
        "rm /var/cache/deployer && mkdir -m 0755 /var/cache/deployer && ln -s /var/tmp/elsewhere /var/cache/deployer/debs",
    );
    let out = deploy_ok(&tb, &["fastpath", "test", OLD]);
    assert!(out.contains("not kept in the host's .deb cache"), "{out}");
    let message = last(&tb)["hosts"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("/var/cache/deployer/debs"), "{message}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    assert_eq!(sh(&tb, "test-1", "ls -A /var/tmp/elsewhere"), "");
}

#[test]
fn a_held_package_stays_held_through_an_install_from_the_cache() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    deploy_ok(&tb, &["fastpath", "test", OLD]);
    deploy_ok(&tb, &["fastpath", "test", NEW]);
    tb.unpublish("fastpath", OLD);
    tb.hold_package("test-1", "fastpath");
    let file = cached(&tb, "test-1")
        .into_iter()
        .find(|f| f.starts_with(&format!("fastpath_{OLD}_")))
        .expect("OLD cached");
    let path = format!("{DIR}/{file}");

    // apt itself respects the hold of a package given as a file
    let out = tb.exec(
        "test-1",
        &format!("apt-get update -q >/dev/null 2>&1; LC_ALL=C apt-get install -y -q --allow-downgrades {path} 2>&1"),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("Held packages were changed"), "{said}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));

    // and so does deployer: refused, then released and set again
    let (code, out, err) = deploy(&tb, &["fastpath", "test", OLD]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("held"), "{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    deploy_ok(&tb, &["fastpath", "test", OLD, "--allow-held"]);
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    assert!(tb.is_held("test-1", "fastpath"));
}

/// Issue 19 on Debian 13 (issue 20): on trixie hosts booted with systemd
/// (apt 3, dpkg 1.22), `deployer rollback` without a version finds the
/// version before the latest deploy and, the repository having dropped
/// it, installs it from the hosts' `.deb` cache through apt.
#[test]
fn a_rollback_on_trixie_installs_the_dropped_version_from_the_cache() {
    let Some(tb) = common::cli::two_stages_as(common::testbed::HostKind::TrixieSystemd, 2, "", "")
    else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        let files = cached(&tb, h);
        assert!(
            files
                .iter()
                .any(|f| f.starts_with(&format!("fastpath_{OLD}_"))),
            "{h}: {files:?}"
        );
    }
    tb.unpublish("fastpath", OLD);
    let (code, out, err) = deployer(&tb, &["rollback", "fastpath", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    for h in ["test-1", "test-2"] {
        let said = format!("{h}: installing {OLD} from the host's cache, {DIR}/fastpath_{OLD}_");
        assert!(out.contains(&said), "{out}");
    }
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
        assert_eq!(tb.dpkg_status(h, "fastpath"), format!("ii {OLD}"), "{h}");
    }
    let record = last(&tb);
    assert_eq!(record["action"], "rollback", "{record}");
    assert_eq!(host_result(&record, "test-2"), "changed", "{record}");
}
