use super::*;
use crate::history::{HostRecord, Outcome};

const NOW: i64 = 1_796_622_400; // 2026-12-07T05:46:40Z

#[test]
fn since_takes_durations_and_times_with_their_offset() {
    assert_eq!(parse_since("2h", NOW), Ok(NOW - 7200));
    assert_eq!(parse_since("30m", NOW), Ok(NOW - 1800));
    assert_eq!(parse_since("3d", NOW), Ok(NOW - 3 * 86_400));
    assert_eq!(parse_since("90s", NOW), Ok(NOW - 90));
    assert_eq!(parse_since("1w", NOW), Ok(NOW - 7 * 86_400));
    assert_eq!(parse_since("2026-12-07T05:46:40Z", NOW), Ok(NOW));
    assert_eq!(parse_since("2026-12-07 06:46:40+01:00", NOW), Ok(NOW));
    assert_eq!(parse_since("2026-12-07 05:46Z", NOW), Ok(NOW - 40));
    assert_eq!(parse_since("2026-12-07T00:16:40-0530", NOW), Ok(NOW));
    assert_eq!(
        crate::history::format_rfc3339(parse_since("2024-02-29T23:59:59Z", 0).unwrap() as u64),
        "2024-02-29T23:59:59Z"
    );
}

#[test]
fn since_refuses_what_it_would_have_to_guess() {
    for bad in [
        "",
        "2",
        "h",
        "-2h",
        "2 h",
        "2y",
        "2026-12-07 05:46",
        "2026-12-07",
        "2026-13-07 05:46Z",
        "2026-12-07 25:00Z",
        "2026-12-07 05:46+1",
        "yesterday",
    ] {
        assert!(parse_since(bad, NOW).is_err(), "{bad:?} was taken");
    }
    let e = parse_since("2026-12-07 05:46", NOW).unwrap_err();
    assert!(e.contains("no offset"), "{e}");
}

#[test]
fn times_are_shown_on_the_hosts_clock() {
    assert_eq!(format_on_clock(NOW, 0), "2026-12-07 05:46:40 +0000");
    assert_eq!(format_on_clock(NOW, 3600), "2026-12-07 06:46:40 +0100");
    assert_eq!(format_on_clock(NOW, -19_800), "2026-12-07 00:16:40 -0530");
    assert_eq!(rfc3339_on_clock(NOW, 3600), "2026-12-07T06:46:40+01:00");
    assert_eq!(parse_offset("+0100"), Some(3600));
    assert_eq!(parse_offset("-0530"), Some(-19_800));
    assert_eq!(parse_offset("0100"), None);
}

const DPKG: &str = "\
2026-12-07 05:40:01 startup archives unpack
2026-12-07 05:40:01 install fastpath:amd64 <none> 1.0-1
2026-12-07 05:40:01 status half-installed fastpath:amd64 1.0-1
2026-12-07 05:40:01 status unpacked fastpath:amd64 1.0-1
2026-12-07 05:40:02 startup packages configure
2026-12-07 05:40:02 configure fastpath:amd64 1.0-1 <none>
2026-12-07 05:40:02 status installed fastpath:amd64 1.0-1
2026-12-07 05:41:00 upgrade fastpath:amd64 1.0-1 1.1-1
2026-12-07 05:41:00 status half-configured fastpath:amd64 1.1-1
2026-12-07 05:42:00 upgrade fastpath:amd64 1.1-1 1.0-1
2026-12-07 05:42:00 status installed fastpath:amd64 1.0-1
2026-12-07 05:43:00 remove fastpath:amd64 1.0-1 <none>
2026-12-07 05:43:00 status config-files fastpath:amd64 1.0-1
2026-12-07 05:43:01 purge fastpath:amd64 1.0-1 <none>
2026-12-07 05:43:01 status not-installed fastpath:amd64 <none>
2026-12-07 05:44:00 remove tool:all 2.0 <none>
2026-12-07 05:44:00 trigproc man-db:amd64 2.11.2-2 <none>
2026-12-07 05:44:00 conffile /etc/x.conf keep
garbage
";

#[test]
fn dpkg_log_gives_one_change_per_package_change() {
    let (changes, skipped) = parse_dpkg_log(DPKG.lines(), 3600);
    assert_eq!(skipped, 1, "the garbage line");
    let brief: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c.package.as_str(),
                c.from.as_deref(),
                c.to.as_deref(),
                c.change,
                c.unsettled.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            ("fastpath", None, Some("1.0-1"), Change::Install, None),
            (
                "fastpath",
                Some("1.0-1"),
                Some("1.1-1"),
                Change::Upgrade,
                Some("half-configured")
            ),
            (
                "fastpath",
                Some("1.1-1"),
                Some("1.0-1"),
                Change::Downgrade,
                None
            ),
            ("fastpath", Some("1.0-1"), None, Change::Purge, None),
            ("tool", Some("2.0"), None, Change::Remove, None),
        ]
    );
    // local time less the offset
    assert_eq!(
        changes[0].time,
        parse_time("2026-12-07T05:40:01+01:00").unwrap()
    );
    assert_eq!(changes[0].arch.as_deref(), Some("amd64"));
}

const APT: &str = "
Start-Date: 2026-12-07  05:40:00
Commandline: apt-get install -y fastpath=1.0-1
Requested-By: alice (1000)
Install: fastpath:amd64 (1.0-1), libx:amd64 (2.0, automatic)
End-Date: 2026-12-07  05:40:03

Start-Date: 2026-12-07  05:41:59
Commandline: /usr/bin/unattended-upgrade
Downgrade: fastpath:amd64 (1.1-1, 1.0-1)
End-Date: 2026-12-07  05:42:01

Start-Date: 2026-12-07  05:42:59
Commandline: apt-get purge fastpath
Purge: fastpath:amd64 (1.0-1)
";

#[test]
fn apt_history_gives_runs_with_who_and_what() {
    let (runs, skipped) = parse_apt_history(APT.lines(), 0);
    assert_eq!(skipped, 0);
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs[0].commandline.as_deref(),
        Some("apt-get install -y fastpath=1.0-1")
    );
    assert_eq!(runs[0].requested_by.as_deref(), Some("alice (1000)"));
    assert_eq!(
        runs[0].packages,
        [
            ("fastpath".to_string(), Some("1.0-1".to_string())),
            ("libx".to_string(), Some("2.0".to_string()))
        ]
    );
    assert_eq!(runs[0].start, parse_time("2026-12-07T05:40:00Z").unwrap());
    assert_eq!(runs[0].end, Some(runs[0].start + 3));
    assert_eq!(
        runs[1].packages,
        [("fastpath".to_string(), Some("1.0-1".to_string()))]
    );
    assert_eq!(runs[1].requested_by, None);
    assert_eq!(runs[2].packages, [("fastpath".to_string(), None)]);
    assert_eq!(runs[2].end, None, "a run that did not record its end");
}

fn answer(dpkg: &str, apt: &str, clock: &str) -> String {
    let pipe = |s: &str| s.lines().map(|l| format!("|{l}\n")).collect::<String>();
    format!(
        "deployer-timeline 1\nfile apt /var/log/apt/history.log\n{}end apt /var/log/apt/history.log\n\
         file dpkg /var/log/dpkg.log.2.gz\n{}end dpkg /var/log/dpkg.log.2.gz\n{clock}\n",
        pipe(apt),
        pipe(dpkg)
    )
}

#[test]
fn a_hosts_answer_is_parsed_file_by_file_with_its_clock() {
    let logs = parse_host_logs(&answer(DPKG, APT, "clock 1796622400 +0000"), 0, 0);
    assert_eq!(logs.clock, Some(NOW));
    assert_eq!(logs.offset, 0);
    assert_eq!(logs.dpkg.len(), 5);
    assert_eq!(logs.apt.len(), 3);
    assert!(!logs.unreadable);
    assert_eq!(logs.warnings.len(), 1, "{:?}", logs.warnings); // the garbage line
    assert!(logs.warnings[0].contains("dpkg.log.2.gz"));

    // a log line cannot pass for the command's own: it is always prefixed
    let forged = answer(
        "clock 1 +0500\nunreadable dpkg x",
        "",
        "clock 1796622400 +0100",
    );
    let logs = parse_host_logs(&forged, 0, 0);
    assert_eq!((logs.clock, logs.offset), (Some(NOW), 3600));
    assert!(!logs.unreadable);
}

#[test]
fn unreadable_cut_and_truncated_answers_are_said() {
    let out = "deployer-timeline 1\nunreadable apt /var/log/apt/history.log not readable by \
               deployer, and sudo -n was refused\nclock 1 +0000\n";
    let logs = parse_host_logs(out, 0, 0);
    assert!(logs.unreadable);
    assert!(
        logs.warnings[0].contains("apt's history"),
        "{:?}",
        logs.warnings
    );

    let logs = parse_host_logs("deployer-timeline 1\nfile dpkg /var/log/dpkg.log\n|x", 0, 0);
    assert!(logs.unreadable, "no clock line: incomplete");

    // the transport kept the tail: lines before the first marker are not
    // taken, and the loss is said
    let tail = format!(
        "|2026-12-07 05:40:01 install a:all <none> 1\n{}",
        answer(DPKG, "", "clock 1 +0000")
    );
    let after_the_oldest = parse_time("2026-12-07T06:00:00Z").unwrap();
    let logs = parse_host_logs(&tail, 4096, after_the_oldest);
    assert_eq!(logs.dpkg.len(), 5);
    assert!(
        logs.warnings.iter().all(|w| !w.contains("older bytes")),
        "the window starts after the oldest line read: {:?}",
        logs.warnings
    );
    let in_window = parse_time("2026-12-07T05:00:00Z").unwrap();
    let logs = parse_host_logs(&tail, 4096, in_window);
    assert!(
        logs.warnings.iter().any(|w| w.contains("4096 older bytes")),
        "{:?}",
        logs.warnings
    );

    // a file longer than the limit: its first (cut) line is left out
    let mut big = String::from("2026-12-07 05:40:01 install cut:all <none> 1\n");
    while big.len() <= FILE_LIMIT {
        big.push_str("2026-12-07 05:40:01 trigproc man-db:amd64 2.11.2-2 <none>\n");
    }
    let logs = parse_host_logs(&answer(&big, "", "clock 1 +0000"), 0, in_window);
    assert!(logs.dpkg.is_empty());
    assert!(
        logs.warnings.iter().any(|w| w.contains("only its newest")),
        "{:?}",
        logs.warnings
    );
}

fn record(id: &str, time: &str, hosts: &[(&str, Option<&str>, &str, HostResult)]) -> Record {
    Record {
        id: id.into(),
        time: time.into(),
        user: "alice".into(),
        as_user: None,
        machine: "laptop".into(),
        action: "deploy".into(),
        package: Some("fastpath".into()),
        stage: "test".into(),
        version: Some(hosts[0].2.into()),
        outcome: Outcome::Success,
        reason: Some("fix".into()),
        forced: false,
        duration_ms: 20_000,
        hosts: hosts
            .iter()
            .map(|(h, from, to, result)| HostRecord {
                host: h.to_string(),
                from: from.map(str::to_string),
                to: Some(to.to_string()),
                result: *result,
                message: None,
                restart: None,
                log_tail: Vec::new(),
                gates: Vec::new(),
            })
            .collect(),
        changes: Vec::new(),
        under_freeze: false,
        alerts_overridden: Vec::new(),
        failure_budget: None,
        window_overridden: None,
        approvals: Vec::new(),
    }
}

fn host(name: &str, dpkg: &str, apt: &str, skew: i64) -> HostInput {
    HostInput {
        stage: "test".into(),
        host: name.into(),
        logs: parse_host_logs(&answer(dpkg, apt, "clock 1796622400 +0000"), 0, 0),
        skew,
    }
}

const DEPLOYED: &str = "\
2026-12-07 05:30:05 upgrade fastpath:amd64 0.9 1.0-1
2026-12-07 05:30:06 status installed fastpath:amd64 1.0-1
";

#[test]
fn each_change_is_attributed_once_deployer_then_apt_then_dpkg() {
    let manual = "\
2026-12-07 05:40:01 upgrade fastpath:amd64 1.0-1 1.1-1
2026-12-07 05:45:00 remove fastpath:amd64 1.1-1 <none>
";
    let apt = "Start-Date: 2026-12-07  05:40:00\nCommandline: apt-get install fastpath=1.1-1\n\
               Requested-By: bob (1001)\nUpgrade: fastpath:amd64 (1.0-1, 1.1-1)\nEnd-Date: 2026-12-07  05:40:02\n";
    // the deploy's apt run is in apt's history too: deployer's record wins
    let deploy_apt =
        "Start-Date: 2026-12-07  05:30:04\nCommandline: apt-get install fastpath=1.0-1\n\
                      Upgrade: fastpath:amd64 (0.9, 1.0-1)\nEnd-Date: 2026-12-07  05:30:07\n\n";
    let hosts = [
        host(
            "test-1",
            &format!("{DEPLOYED}{manual}"),
            &format!("{deploy_apt}{apt}"),
            0,
        ),
        host("test-2", DEPLOYED, deploy_apt, 3),
    ];
    let records = [record(
        "A1",
        "2026-12-07T05:30:00Z",
        &[
            ("test-1", Some("0.9"), "1.0-1", HostResult::Changed),
            ("test-2", Some("0.9"), "1.0-1", HostResult::Changed),
        ],
    )];
    let events = attribute(&hosts, &records, &Filter::default());
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(
        events[0].hosts,
        ["test-1", "test-2"],
        "one attempt, grouped"
    );
    assert!(
        matches!(&events[0].by, By::Deployer { attempt, who, .. } if attempt == "A1" && who == "alice@laptop")
    );
    assert_eq!(
        (events[0].from.as_deref(), events[0].to.as_deref()),
        (Some("0.9"), Some("1.0-1"))
    );
    assert_eq!(events[0].time, "2026-12-07T05:30:05+00:00");
    assert!(matches!(&events[1].by, By::Apt { requested_by: Some(r), .. } if r == "bob (1001)"));
    assert_eq!(events[1].hosts, ["test-1"]);
    assert_eq!(events[2].by, By::Dpkg);
    assert_eq!(
        (events[2].to.as_deref(), events[2].change),
        (None, Some(Change::Remove))
    );

    let mut text = Vec::new();
    render_text(&events, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(
            "test: test-1,test-2  fastpath  0.9 -> 1.0-1  deploy by alice@laptop (attempt A1"
        ),
        "{text}"
    );
    assert!(
        text.contains("apt: apt-get install fastpath=1.1-1, requested by bob (1001)"),
        "{text}"
    );
    assert!(text.contains("1.1-1 -> removed  dpkg (unknown)"), "{text}");
}

#[test]
fn a_change_outside_the_attempts_time_or_versions_is_not_the_attempts() {
    let later = "2026-12-07 05:50:00 upgrade fastpath:amd64 0.9 1.0-1\n";
    let other = "2026-12-07 05:30:10 upgrade fastpath:amd64 0.9 0.95\n";
    let records = [record(
        "A1",
        "2026-12-07T05:30:00Z",
        &[("test-1", Some("0.9"), "1.0-1", HostResult::Changed)],
    )];
    let events = attribute(
        &[host("test-1", &format!("{other}{later}"), "", 0)],
        &records,
        &Filter::default(),
    );
    // neither dpkg change is the attempt's; the attempt is still listed, unconfirmed
    assert_eq!(events.len(), 3, "{events:#?}");
    assert!(matches!(events[0].by, By::Deployer { .. }));
    assert_eq!(events[0].change, None);
    assert_eq!(events[1].by, By::Dpkg);
    assert_eq!(events[2].by, By::Dpkg);
    // a host whose clock is ahead still has its change matched
    let events = attribute(
        &[host(
            "test-1",
            "2026-12-07 05:32:00 upgrade fastpath:amd64 0.9 1.0-1\n",
            "",
            90,
        )],
        &records,
        &Filter::default(),
    );
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(matches!(events[0].by, By::Deployer { .. }));
}

#[test]
fn the_filter_keeps_the_window_hosts_and_packages_asked_for() {
    let log =
        "2026-12-07 05:30:00 install a:all <none> 1\n2026-12-07 05:40:00 install b:all <none> 1\n";
    let hosts = [host("test-1", log, "", 0), host("test-2", log, "", 0)];
    let since = parse_time("2026-12-07T05:35:00Z").unwrap();
    let f = |hosts: &[&str], packages: &[&str], since| Filter {
        since,
        hosts: hosts.iter().map(|s| s.to_string()).collect(),
        packages: packages.iter().map(|s| s.to_string()).collect(),
    };
    let all = attribute(&hosts, &[], &f(&[], &[], 0));
    assert_eq!(all.len(), 2, "grouped by second: {all:#?}");
    assert_eq!(all[0].hosts, ["test-1", "test-2"]);
    let recent = attribute(&hosts, &[], &f(&[], &[], since));
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].package, "b");
    let one = attribute(&hosts, &[], &f(&["test-2"], &["a"], 0));
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0].hosts.as_slice(), one[0].package.as_str()),
        (&["test-2".to_string()][..], "a")
    );
}

#[test]
fn host_text_is_made_safe_for_the_terminal() {
    let apt = "Start-Date: 2026-12-07  05:40:00\nCommandline: evil \u{1b}]0;pwned\u{7}\nInstall: a:all (1)\nEnd-Date: 2026-12-07  05:40:01\n";
    let events = attribute(
        &[host(
            "test-1",
            "2026-12-07 05:40:00 install a:all <none> 1\n",
            apt,
            0,
        )],
        &[],
        &Filter::default(),
    );
    let mut text = Vec::new();
    render_text(&events, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("apt: evil"), "{text}");
    let mut json = Vec::new();
    render_json(&events, &mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v[0]["by"]["kind"], "apt");
    assert_eq!(v[0]["change"], "install");
    assert_eq!(v[0]["hosts"][0], "test-1");
}

#[test]
fn a_change_to_the_version_an_attempt_found_is_not_the_attempts() {
    // set by hand just before the deploy, and taken back just after it
    let log = "\
2026-12-07 05:29:50 install fastpath:amd64 <none> 0.9
2026-12-07 05:30:05 upgrade fastpath:amd64 0.9 1.0-1
2026-12-07 05:30:25 upgrade fastpath:amd64 1.0-1 0.9
";
    let changed = [record(
        "A1",
        "2026-12-07T05:30:00Z",
        &[("test-1", Some("0.9"), "1.0-1", HostResult::Changed)],
    )];
    let events = attribute(&[host("test-1", log, "", 0)], &changed, &Filter::default());
    let kinds: Vec<bool> = events
        .iter()
        .map(|e| matches!(e.by, By::Deployer { .. }))
        .collect();
    assert_eq!(kinds, [false, true, false], "{events:#?}");
    // a host the attempt rolled back: the way back is the attempt's too
    let rolled = [record(
        "A1",
        "2026-12-07T05:30:00Z",
        &[("test-1", Some("0.9"), "1.0-1", HostResult::RolledBack)],
    )];
    let events = attribute(&[host("test-1", log, "", 0)], &rolled, &Filter::default());
    let kinds: Vec<bool> = events
        .iter()
        .map(|e| matches!(e.by, By::Deployer { .. }))
        .collect();
    assert_eq!(kinds, [false, true, true], "{events:#?}");
}

#[test]
fn an_apt_run_owns_only_the_changes_it_lists() {
    // a dpkg -r just after an apt run that upgraded the same package
    let log = "\
2026-12-07 05:40:01 upgrade fastpath:amd64 1.0-1 1.1-1
2026-12-07 05:40:03 remove fastpath:amd64 1.1-1 <none>
";
    let apt = "Start-Date: 2026-12-07  05:40:00\nCommandline: apt-get install fastpath\n\
               Upgrade: fastpath:amd64 (1.0-1, 1.1-1)\nEnd-Date: 2026-12-07  05:40:02\n";
    let events = attribute(&[host("test-1", log, apt, 0)], &[], &Filter::default());
    assert!(matches!(events[0].by, By::Apt { .. }), "{events:#?}");
    assert_eq!(events[1].by, By::Dpkg, "{events:#?}");
}

#[test]
fn a_clock_differs_only_outside_the_span_of_the_call() {
    assert_eq!(skew(Some(105), 100, 110), 0);
    assert_eq!(skew(Some(100), 100, 110), 0);
    assert_eq!(skew(Some(130), 100, 110), 20);
    assert_eq!(skew(Some(40), 100, 110), -60);
    assert_eq!(skew(None, 100, 110), 0);
}

#[test]
fn one_attempt_on_many_hosts_is_one_line_whatever_comes_between() {
    let names: Vec<String> = (1..=100).map(|i| format!("test-{i}")).collect();
    let hosts: Vec<HostInput> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // one host after the other, each also changing a library of its own second
            let t = 5 + i as i64 / 10;
            let log = format!(
                "2026-12-07 05:30:{t:02} upgrade fastpath:amd64 0.9 1.0-1\n\
                 2026-12-07 05:30:{t:02} upgrade lib{i}:amd64 1 2\n"
            );
            host(name, &log, "", 0)
        })
        .collect();
    let parts: Vec<(&str, Option<&str>, &str, HostResult)> = names
        .iter()
        .map(|n| (n.as_str(), Some("0.9"), "1.0-1", HostResult::Changed))
        .collect();
    let records = [record("A1", "2026-12-07T05:30:00Z", &parts)];
    let events = attribute(&hosts, &records, &Filter::default());
    let deploys: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.by, By::Deployer { .. }))
        .collect();
    assert_eq!(deploys.len(), 1);
    assert_eq!(deploys[0].hosts.len(), 100);
    assert_eq!(events.len(), 101, "each library its own line");
}
