//! End-to-end tests of `refresh-badges` on real Debian hosts (the testbed):
//! the badge files on each host (content, mode, atomic replacement, left
//! alone when unchanged), unreachable hosts and refused writes, badges
//! refreshed after a deploy, and the local `--output` tree.

use crate::common;

use std::time::Duration;

use common::cli::{deployer, two_stages, NEW, OLD};
use common::testbed::Testbed;
use deployer::badge::{Badge, Meaning};

const DIR: &str = "/var/www/package_badges";
const BADGES: &str = "badges_path = /var/www/package_badges";
/// The packages of `two_stages`, in configuration order.
const PACKAGES: [&str; 6] = [
    "fastpath",
    "analysis",
    "detector",
    "badpostinst",
    "healthd",
    "slowpkg",
];

fn badge_of(tb: &Testbed, host: &str, pkg: &str) -> Option<String> {
    tb.read_file(host, &format!("{DIR}/{pkg}.svg"))
}

/// The inode of a badge: a rename into place gives a new one, so the same
/// inode means the file was not rewritten.
fn inode(tb: &Testbed, host: &str, pkg: &str) -> String {
    let out = tb.exec(host, &format!("stat -c %i {DIR}/{pkg}.svg"));
    assert!(out.status.success(), "{host}: no badge for {pkg}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn svg(message: &str, meaning: Meaning) -> String {
    Badge {
        label: "fastpath".to_string(),
        message: message.to_string(),
        meaning,
    }
    .svg()
}

/// Every file in the badge directory of `host`, temporary ones included.
fn listing(tb: &Testbed, host: &str) -> Vec<String> {
    common::cli::listing(tb, host, DIR)
}

#[test]
fn each_host_gets_its_own_badges_mode_0644_and_unchanged_ones_are_left_alone() {
    let Some(tb) = two_stages(2, BADGES, "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    tb.set_versions("test-2", &[("fastpath", Some(NEW))]);
    tb.set_versions("prod-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("prod-2", &[("fastpath", Some(NEW))]);
    // a hardened sudo: what it creates would be 0600 without care
    let _umask = tb.sudo_umask("prod-1");

    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "{err}");
    for host in ["test-1", "test-2", "prod-1", "prod-2"] {
        assert!(out.contains(&format!("{host} (")), "{host}: {out}");
        let mut expected: Vec<String> = PACKAGES.iter().map(|p| format!("{p}.svg")).collect();
        expected.sort();
        assert_eq!(listing(&tb, host), expected, "{host}: no temporary left");
        for p in PACKAGES {
            assert_eq!(
                tb.file_mode(host, &format!("{DIR}/{p}.svg")),
                Some(0o644),
                "{host} {p}"
            );
        }
        assert_eq!(tb.file_mode(host, DIR), Some(0o755), "{host}");
    }
    // the content is the host's own version, coloured by its stage
    assert_eq!(
        badge_of(&tb, "test-1", "fastpath").unwrap(),
        svg(NEW, Meaning::InStep)
    );
    assert_eq!(
        badge_of(&tb, "prod-1", "fastpath").unwrap(),
        svg(OLD, Meaning::Mixed)
    );
    assert_eq!(
        badge_of(&tb, "prod-2", "fastpath").unwrap(),
        svg(NEW, Meaning::Mixed)
    );
    assert!(badge_of(&tb, "prod-2", "analysis")
        .unwrap()
        .contains("aria-label=\"analysis: not installed\""));

    // again, nothing changed: nothing is rewritten, and --quiet is silent
    let before: Vec<String> = ["test-1", "prod-1"]
        .iter()
        .map(|h| inode(&tb, h, "fastpath"))
        .collect();
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let after: Vec<String> = ["test-1", "prod-1"]
        .iter()
        .map(|h| inode(&tb, h, "fastpath"))
        .collect();
    assert_eq!(before, after);

    // prod catches up: only prod's fastpath badges are rewritten
    tb.set_versions("prod-1", &[("fastpath", Some(NEW))]);
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("prod-1 (prod)  1 written, 5 unchanged"),
        "{out}"
    );
    assert!(
        out.contains("prod-2 (prod)  1 written, 5 unchanged"),
        "{out}"
    );
    assert!(
        out.contains("test-1 (test)  0 written, 6 unchanged"),
        "{out}"
    );
    assert_eq!(inode(&tb, "test-1", "fastpath"), before[0]);
    assert_ne!(inode(&tb, "prod-1", "fastpath"), before[1]);
    assert_eq!(
        badge_of(&tb, "prod-1", "fastpath").unwrap(),
        svg(NEW, Meaning::InStep)
    );
}

#[test]
fn a_reader_never_sees_a_partial_or_missing_badge() {
    let Some(tb) = two_stages(1, BADGES, "") else {
        return;
    };
    tb.set_versions("prod-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    // a reader inside the host, as nginx would be, until told to stop (or
    // a minute has passed, should the test fail before it says so)
    let reader = format!(
        "touch /tmp/reader-started; good=0; bad=0; end=$(($(date +%s) + 60)); \
         while [ ! -e /tmp/reader-stop ] && [ $(date +%s) -lt $end ]; do \
           c=$(cat {DIR}/fastpath.svg 2>/dev/null) || c=; \
           case \"$c\" in '<svg'*'</svg>') good=$((good+1));; *) bad=$((bad+1));; esac; \
         done; echo \"$good $bad\""
    );
    let (count, verdict) = std::thread::scope(|s| {
        let handle = s.spawn(|| tb.exec("prod-1", &reader));
        // whatever happens below, the reader is told to stop
        struct Stop<'a>(&'a Testbed);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.exec("prod-1", "touch /tmp/reader-stop");
            }
        }
        let stop = Stop(&tb);
        assert!(tb.wait_for_file("prod-1", "/tmp/reader-started", Duration::from_secs(10)));
        // each write is a rename of a complete file into place (a new
        // inode each time), never a rewrite of the file nginx may be reading
        let mut inodes = vec![inode(&tb, "prod-1", "fastpath")];
        let mut writes = 0;
        for round in 0..6 {
            let v = if round % 2 == 0 { NEW } else { OLD };
            tb.set_versions("prod-1", &[("fastpath", Some(v))]);
            let (code, out, err) = deployer(&tb, &["refresh_badges"]);
            assert_eq!(code, 0, "{out}{err}");
            assert!(out.contains("prod-1 (prod)  1 written"), "{out}");
            writes += 1;
            let now = inode(&tb, "prod-1", "fastpath");
            // the new file exists before the old one goes, so they differ
            assert_ne!(inodes.last(), Some(&now), "rewritten in place: {inodes:?}");
            inodes.push(now);
        }
        drop(stop);
        let out = handle.join().unwrap();
        (
            writes,
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    });
    let (good, bad) = verdict.split_once(' ').expect("reader's counts");
    let good: u64 = good.parse().unwrap();
    assert_eq!(count, 6);
    assert!(good > 0, "the reader read: {verdict}");
    assert_eq!(bad, "0", "partial or missing reads: {verdict}");
}

#[test]
fn unreachable_hosts_and_refused_writes_do_not_stop_the_others() {
    let Some(tb) = two_stages(2, BADGES, "") else {
        return;
    };
    let _down = tb.stop_sshd("prod-2");
    let _password = tb.sudo_requires_password("test-2");
    let (code, out, err) = deployer(&tb, &["refresh_badges", "--quiet"]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("host `prod-2` (prod): badges not written: cannot connect"),
        "{err}"
    );
    assert!(
        err.contains("host `test-2` (test): badges not written: cannot write the badges in `/var/www/package_badges`: sudo on the host asks for a password; deployer needs passwordless sudo for `deployer`; allow `deployer` to run commands as root without a password on `test-2`"),
        "{err}"
    );
    for host in ["test-1", "prod-1"] {
        assert!(badge_of(&tb, host, "fastpath").is_some(), "{host}");
    }
    assert!(badge_of(&tb, "test-2", "fastpath").is_none());
}

#[test]
fn a_deploy_refreshes_the_badges_of_its_stage_as_refresh_badges_would() {
    let Some(tb) = two_stages(2, BADGES, "") else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "Badges refreshed on 2 hosts of `test` in /var/www/package_badges (2 files written)."
        ),
        "{out}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(
            badge_of(&tb, h, "fastpath").unwrap(),
            svg(NEW, Meaning::InStep),
            "{h}"
        );
    }
    // exactly what refresh-badges writes: it finds nothing to change
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("test-1 (test)  0 written, 6 unchanged"),
        "{out}"
    );
    assert!(
        out.contains("test-2 (test)  0 written, 6 unchanged"),
        "{out}"
    );

    // a rollback too, unless turned off
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", OLD]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        badge_of(&tb, "test-1", "fastpath").unwrap(),
        svg(OLD, Meaning::InStep)
    );
    tb.write_config(
        &PACKAGES,
        &format!("{BADGES}\nbadges_after_deploy = no"),
        "",
    );
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("Badges refreshed"), "{out}");
    assert_eq!(
        badge_of(&tb, "test-1", "fastpath").unwrap(),
        svg(OLD, Meaning::InStep)
    );
}

#[test]
fn output_writes_the_stage_and_host_tree_and_the_dashboard() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    tb.set_versions("prod-1", &[("fastpath", Some(OLD))]);
    // no badges_path and no --output: nowhere to write, nothing contacted
    let (code, out, err) = deployer(&tb, &["refresh_badges"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("nowhere to write badges"), "{err}");

    let dir = tb.dir().join("site");
    let d = dir.to_str().unwrap();
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--output", d]);
    assert_eq!(code, 0, "{out}{err}");
    let read =
        |p: &str| std::fs::read_to_string(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("test/fastpath.svg"), svg(NEW, Meaning::Pending));
    assert_eq!(read("prod/fastpath.svg"), svg(OLD, Meaning::InStep));
    assert_eq!(read("host/test-1/fastpath.svg"), svg(NEW, Meaning::InStep));
    assert_eq!(read("host/prod-1/fastpath.svg"), svg(OLD, Meaning::InStep));
    let page = read("index.html");
    for text in [NEW, OLD, "test", "prod"] {
        assert!(page.contains(text), "{text} not in the dashboard");
    }
    // nothing on the hosts: no badges_path
    assert!(badge_of(&tb, "test-1", "fastpath").is_none());
    // a second run rewrites no badge (only the page, which shows the time)
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(dir.join(p)).unwrap().ino();
    let before = (ino("test/fastpath.svg"), ino("host/prod-1/fastpath.svg"));
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--output", d]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        before,
        (ino("test/fastpath.svg"), ino("host/prod-1/fastpath.svg"))
    );
    // 24 badges; the page is rewritten when the time it shows changed
    let badges = 2 * PACKAGES.len() + 2 * PACKAGES.len();
    assert!(
        out.contains(&format!("1 written, {badges} unchanged"))
            || out.contains(&format!("0 written, {} unchanged", badges + 1)),
        "{out}"
    );

    // --png: a PNG beside every SVG, here and on the hosts
    tb.write_config(&PACKAGES, BADGES, "");
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--png", "--output", d]);
    assert_eq!(code, 0, "{out}{err}");
    let png = std::fs::read(dir.join("host/prod-1/fastpath.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(std::fs::read(dir.join("test/analysis.png"))
        .unwrap()
        .starts_with(b"\x89PNG"));
    let on_host = tb.read_file("prod-1", &format!("{DIR}/fastpath.png"));
    assert!(on_host.is_some_and(|p| p.starts_with("\u{fffd}PNG")));
    assert_eq!(
        tb.file_mode("prod-1", &format!("{DIR}/fastpath.png")),
        Some(0o644)
    );
}
