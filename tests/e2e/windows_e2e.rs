//! End-to-end tests of deploy windows and freeze dates (issue 22, item 2)
//! on the testbed's real Debian hosts. The clock of the deployer process
//! is set by the test with Debian's libfaketime (`LD_PRELOAD`, the
//! `faketime` package), never by sleeping; the production binary has no
//! clock override of its own. Each test reads dpkg on the hosts
//! afterwards, and the histories.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::common;

use common::bin::run;
use common::cli::{host_last, last, stopped_after_the_canary, versions, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// libfaketime for multithreaded programs, from Debian's `libfaketime`.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// A version of `fastpath` between [`OLD`] and [`NEW`].
const MID: &str = "0.79~pr720-150";

/// The office hours of the issue, with its holidays.
const OFFICE: &str = "deploy_windows = Mon-Thu 09:00-16:00, Fri 09:00-12:00\n\
                      freeze_dates = 2026-12-24..2027-01-02, 2027-04-05\n\
                      timezone = Europe/Rome\n";

/// libfaketime is there (else the skip is recorded, a failure under
/// `CI=true`).
fn faketime() -> bool {
    if Path::new(LIBFAKETIME).exists() {
        return true;
    }
    common::skip::skip(&format!(
        "{LIBFAKETIME} is missing (Debian's `faketime` package)"
    ));
    false
}

/// One stage `test` of `hosts` hosts at [`OLD`] (with [`MID`] published),
/// `keys` added to `[stage:test]` and `sections` after it.
fn testbed(hosts: usize, keys: &str, sections: &str) -> Option<Testbed> {
    if !faketime() {
        return None;
    }
    let tb = Testbed::start(&[("test", hosts)])?;
    let path = tb.write_config(&["fastpath"], "", sections);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("[stage:test]\n", &format!("[stage:test]\n{keys}"), 1);
    std::fs::write(&path, text).unwrap();
    tb.publish("fastpath", MID);
    for h in tb.hosts("test") {
        tb.set_versions(&h.alias, &[("fastpath", Some(OLD))]);
    }
    Some(tb)
}

/// `deployer ARGS` with its clock at `utc` (`2026-12-10 10:00:00`, UTC)
/// and going on from there; this machine's zone is UTC for it.
fn at(tb: &Testbed, utc: &str, args: &[&str]) -> (i32, String, String) {
    run(tb
        .deployer()
        .env("TZ", "UTC")
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", format!("@{utc}"))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .arg("--color=never")
        .args(args))
}

/// Inside a window a deploy goes; outside it is refused naming the next
/// window (in the stage's zone and here), nothing changes on the hosts,
/// and `status` shows the stage closed and until when; a rollback goes
/// outside the window; `--override-freeze --reason` goes and is on record
/// locally and on the hosts; on a freeze date a deploy is refused.
#[test]
fn a_deploy_goes_inside_a_window_only_a_rollback_and_the_override_go_outside() {
    let Some(tb) = testbed(2, OFFICE, "") else {
        return;
    };
    // Thursday 2026-12-10 10:00 in Rome (09:00 UTC): open
    let thursday = "2026-12-10 09:00:00";
    let (code, out, err) = at(&tb, thursday, &["deploy", "fastpath", "test", MID, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&tb), [Some(MID.into()), Some(MID.into())]);
    assert_eq!(last(&tb)["outcome"], "success");
    let (_, out, _) = at(
        &tb,
        thursday,
        &["deploy", "fastpath", "test", NEW, "--dry-run"],
    );
    assert!(
        out.contains(
            "Deploy windows, checked before the lock and before every batch: Mon-Thu \
             09:00-16:00, Fri 09:00-12:00, Europe/Rome; freeze dates 2026-12-24..2027-01-02, \
             2027-04-05 (open until Thu 2026-12-10 16:00 CET (Europe/Rome))"
        ),
        "{out}"
    );

    // Friday 2026-12-11 12:30 in Rome: closed until Monday 09:00
    let friday = "2026-12-11 11:30:00";
    let (code, out, err) = at(&tb, friday, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains(
            "error: stage `test` is closed now: outside its deploy windows (Mon-Thu \
             09:00-16:00, Fri 09:00-12:00, Europe/Rome; freeze dates"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "the next window opens Mon 2026-12-14 09:00 CET (Europe/Rome), Mon 2026-12-14 \
             08:00 UTC here"
        ),
        "{err}"
    );
    assert!(err.contains("`deployer rollback fastpath test`"), "{err}");
    assert!(err.contains("no host was changed"), "{err}");
    assert_eq!(versions(&tb), [Some(MID.into()), Some(MID.into())]);
    let r = last(&tb);
    assert_eq!(r["outcome"], "refused", "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("stage `test` is closed now: outside its deploy windows"),
        "{r}"
    );

    // status, as text and JSON: closed, and until when
    let (code, out, err) = at(&tb, friday, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("test [closed]"), "{out}");
    assert!(
        out.contains("  test: outside its deploy windows (Mon-Thu 09:00-16:00, Fri 09:00-12:00, Europe/Rome); opens Mon 2026-12-14 09:00 CET (Europe/Rome)"),
        "{out}"
    );
    let (code, out, err) = at(&tb, friday, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let w = &v["stages"][0]["window"];
    assert_eq!(w["open"], false, "{v}");
    assert_eq!(w["closed_by"], "outside_windows", "{v}");
    assert_eq!(w["until"], "2026-12-14T09:00:00+01:00", "{v}");
    assert_eq!(w["timezone"], "Europe/Rome", "{v}");
    // and open on Thursday, until 16:00
    let (_, out, _) = at(&tb, thursday, &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stages"][0]["window"]["open"], true, "{v}");
    assert_eq!(
        v["stages"][0]["window"]["until"],
        "2026-12-10T16:00:00+01:00"
    );

    // a rollback goes outside the window
    let (code, out, err) = at(
        &tb,
        "2026-12-11 11:40:00",
        &["rollback", "fastpath", "test", "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&tb), [Some(OLD.into()), Some(OLD.into())]);
    let r = last(&tb);
    assert_eq!(
        (r["action"].as_str(), r["outcome"].as_str()),
        (Some("rollback"), Some("success"))
    );
    assert!(r.get("window_overridden").is_none(), "{r}");

    // the recorded break-glass
    let (code, out, err) = at(
        &tb,
        "2026-12-11 11:50:00",
        &[
            "deploy",
            "fastpath",
            "test",
            NEW,
            "--yes",
            "--override-freeze",
            "--reason",
            "security fix, cannot wait for Monday",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Warning: deploying (--override-freeze) into stage `test`, closed now: outside its deploy windows"),
        "{out}"
    );
    assert_eq!(versions(&tb), [Some(NEW.into()), Some(NEW.into())]);
    let r = last(&tb);
    assert_eq!(r["outcome"], "success", "{r}");
    assert!(r["forced"].as_bool().unwrap(), "{r}");
    let overridden = r["window_overridden"].as_str().expect("on record");
    assert!(
        overridden.starts_with("closed: outside its deploy windows"),
        "{r}"
    );
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("freeze overridden: security fix, cannot wait for Monday")
            && reason.contains("deploy window overridden: closed: outside its deploy windows"),
        "{reason}"
    );
    for host in ["test-1", "test-2"] {
        let on_host = host_last(&tb, host);
        assert_eq!(on_host["id"], r["id"], "{on_host}");
        assert_eq!(on_host["window_overridden"], r["window_overridden"]);
    }

    // Monday 2026-12-28, a freeze date, at 10:00 in Rome: refused
    let (code, out, err) = at(
        &tb,
        "2026-12-28 09:00:00",
        &["rollback", "fastpath", "test", "--dry-run"],
    );
    assert_eq!(code, 0, "a rollback is not held: {out}{err}");
    let (code, out, err) = at(
        &tb,
        "2026-12-28 09:00:00",
        &["deploy", "fastpath", "test", MID, "--yes"],
    );
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains(
            "error: stage `test` is closed now: on one of its freeze dates (2026-12-24..2027-01-02, Europe/Rome"
        ),
        "{err}"
    );
    assert!(
        err.contains("the next window opens Mon 2027-01-04 09:00 CET (Europe/Rome)"),
        "{err}"
    );
    assert_eq!(versions(&tb), [Some(NEW.into()), Some(NEW.into())]);
    assert_eq!(last(&tb)["outcome"], "refused");
    let (_, out, _) = at(&tb, "2026-12-28 09:00:00", &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stages"][0]["window"]["closed_by"], "freeze_date", "{v}");
    assert_eq!(
        v["stages"][0]["window"]["freeze_date"],
        "2026-12-24..2027-01-02"
    );
    assert_eq!(
        v["stages"][0]["window"]["until"],
        "2027-01-04T09:00:00+01:00"
    );
}

/// A window crossing midnight across the daylight-saving changes of
/// Europe/Rome, on the wall clock: in spring (2027-03-28, 02:00 CET
/// becomes 03:00 CEST) `Sat 22:00-03:30` is open after the jump until
/// 03:30 CEST; in autumn (2026-10-25, 03:00 CEST becomes 02:00 CET)
/// `Sat 22:00-02:30` closes at 02:30 CEST and opens again when the clock
/// shows 02:00 once more, the second time.
#[test]
fn a_window_across_midnight_and_the_daylight_saving_changes_follows_the_wall_clock() {
    let Some(tb) = testbed(
        1,
        "deploy_windows = Sat 22:00-03:30\ntimezone = Europe/Rome\n",
        "",
    ) else {
        return;
    };
    // Saturday 2027-03-27 21:59 CET: not yet
    let (code, _, err) = at(
        &tb,
        "2027-03-27 20:59:00",
        &["deploy", "fastpath", "test", MID, "--yes"],
    );
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("the next window opens Sat 2027-03-27 22:00 CET (Europe/Rome)"),
        "{err}"
    );
    // Sunday 03:15 CEST (01:15 UTC), after the jump: open (until 03:30)
    let (code, out, err) = at(
        &tb,
        "2027-03-28 01:15:00",
        &["deploy", "fastpath", "test", MID, "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&tb), [Some(MID.into())]);
    // 03:30 CEST: closed until next Saturday, in summer time
    let (code, _, err) = at(
        &tb,
        "2027-03-28 01:30:00",
        &["deploy", "fastpath", "test", NEW, "--yes"],
    );
    assert_eq!(code, 6, "{err}");
    assert!(
        err.contains("the next window opens Sat 2027-04-03 22:00 CEST (Europe/Rome), Sat 2027-04-03 20:00 UTC here"),
        "{err}"
    );
    assert_eq!(versions(&tb), [Some(MID.into())]);

    // autumn: the window is `Sat 22:00-02:30`
    let path = tb.dir().join("deployer.ini");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Sat 22:00-03:30", "Sat 22:00-02:30")).unwrap();
    // Sunday 2026-10-25 02:45 CEST (00:45 UTC), first pass: closed, and it
    // opens again at 02:00 CET, the second pass of the hour
    let (code, out, err) = at(
        &tb,
        "2026-10-25 00:45:00",
        &["deploy", "fastpath", "test", NEW, "--yes"],
    );
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("the next window opens Sun 2026-10-25 02:00 CET (Europe/Rome), Sun 2026-10-25 01:00 UTC here"),
        "{err}"
    );
    let (_, out, _) = at(&tb, "2026-10-25 00:45:00", &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["stages"][0]["window"]["until"], "2026-10-25T02:00:00+01:00",
        "{v}"
    );
    assert_eq!(versions(&tb), [Some(MID.into())]);
    // 02:10 CET (01:10 UTC), the second pass: open
    let (code, out, err) = at(
        &tb,
        "2026-10-25 01:10:00",
        &["deploy", "fastpath", "test", NEW, "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&tb), [Some(NEW.into())]);
}

/// A rollout started inside a window stops at the window's end: the
/// canary's health check moves deployer's clock past 16:00 (through a
/// listener of the test, which rewrites libfaketime's time file), and the
/// next batch is not started.
#[test]
fn a_rollout_stops_between_batches_when_the_window_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // bash's /dev/tcp, on the host: ask the test to move the clock, wait
    // for its answer
    let health = format!(
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo later >&3 && head -n 1 <&3 | grep -q moved'"
    );
    let sections = format!("[package:fastpath]\nhealth_check = {health}\n");
    let Some(tb) = testbed(3, OFFICE, &sections) else {
        return;
    };
    let clock: PathBuf = tb.dir().join("faketime");
    // Thursday 2026-12-10 14:00 in Rome, two hours before the window ends
    // (libfaketime lets the clock run on from there)
    std::fs::write(&clock, "@2026-12-10 13:00:00\n").unwrap();
    // the listener moves the clock, says so on `moved`, then answers the
    // health check; it is not joined (were the health check never run, it
    // would wait forever): once deployer has ended, `moved` says it all
    let (moved_tx, moved) = std::sync::mpsc::channel();
    {
        let clock = clock.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                // Thursday 16:05 in Rome: the window has closed
                std::fs::write(&clock, "@2026-12-10 15:05:00\n").unwrap();
                let _ = moved_tx.send(());
                stream.write_all(b"moved\n").unwrap();
            }
        });
    }
    let (code, out, err) = run(tb
        .deployer()
        .env("TZ", "UTC")
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", &clock)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .args(["--color=never", "deploy", "fastpath", "test", MID, "--yes"]));
    assert_eq!(
        moved.try_iter().count(),
        1,
        "the canary's health check alone moved the clock: {out}{err}"
    );
    assert_eq!(code, 9, "{out}{err}");
    assert!(
        out.contains("Stage `test` is closed now: batch 2/3 and later are not started."),
        "{out}"
    );
    assert!(
        out.contains("the next window opens Fri 2026-12-11 09:00 CET"),
        "{out}"
    );
    assert!(out.contains("STOPPED (the deploy window closed)"), "{out}");
    assert_eq!(
        versions(&tb),
        [Some(MID.into()), Some(OLD.into()), Some(OLD.into())]
    );
    stopped_after_the_canary(
        &tb,
        "the deploy window closed during the rollout: outside its deploy windows",
    );
}

/// The windows are per stage: outside `prod`'s window a deploy to `test`
/// (no windows) goes, the promotion into `prod` is refused and nothing is
/// installed there; the dashboard shows `prod` closed and until when.
#[test]
fn a_promotion_into_a_closed_stage_is_refused_and_the_dashboard_shows_it() {
    if !faketime() {
        return;
    }
    let Some(tb) = Testbed::start(&[("test", 1), ("prod", 1)]) else {
        return;
    };
    let path = tb.write_config(&["fastpath"], "", "");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[stage:prod]\n"), "{text}");
    std::fs::write(
        &path,
        text.replacen("[stage:prod]\n", &format!("[stage:prod]\n{OFFICE}"), 1),
    )
    .unwrap();
    for h in ["test-1", "prod-1"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    // Saturday 2026-12-12 10:00 in Rome
    let saturday = "2026-12-12 09:00:00";
    let (code, out, err) = at(&tb, saturday, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 0, "test has no windows: {out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let (code, out, err) = at(&tb, saturday, &["promote", "fastpath", "--yes"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("error: stage `prod` is closed now: outside its deploy windows"),
        "{err}"
    );
    assert!(
        err.contains("the next window opens Mon 2026-12-14 09:00 CET"),
        "{err}"
    );
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));
    let r = last(&tb);
    assert_eq!(
        (r["action"].as_str(), r["outcome"].as_str()),
        (Some("promote"), Some("refused"))
    );

    let dir = tb.dir().join("dashboard");
    let (code, out, err) = at(
        &tb,
        saturday,
        &["refresh-badges", "--output", dir.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        page.contains("Closed now (deploy windows): new deploys and promotions refused"),
        "{page}"
    );
    assert!(
        page.contains("<li><strong>prod</strong>: outside its deploy windows (Mon-Thu 09:00-16:00, Fri 09:00-12:00, Europe/Rome); opens Mon 2026-12-14 09:00 CET (Europe/Rome)</li>"),
        "{page}"
    );
    assert!(
        page.contains(">closed until Mon 2026-12-14 09:00 CET (Europe/Rome)</span>"),
        "{page}"
    );
    assert!(!page.contains("<li><strong>test</strong>: "), "{page}");
    // on Monday at 09:00 the promotion goes
    let (code, out, err) = at(
        &tb,
        "2026-12-14 08:00:00",
        &["promote", "fastpath", "--yes"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(NEW));
}
