//! The dashboard page (`index.html`, `deployer::render::html`) in a real
//! browser: headless Chromium (Debian's `chromium`) opens it at laptop
//! (1280x800), phone (390x844) and wall screen (1920x1080) sizes, and the
//! test checks what it shows:
//! no horizontal overflow of the page, every badge drawn with a size and
//! apart from its neighbours and inside the screen, the ►► / ⚠ markers with
//! their text alternatives, and in the visible text every version, the
//! frozen reason (escaped markup shows as text), the unreachable host and
//! the time of the refresh. Screenshots at both sizes must be PNGs of the
//! size asked for.
//!
//! How the layout is measured: see `tests/e2e/common/browser.rs`.
//!
//! The README's example, `badges/dashboard.png` (laptop) and
//! `badges/dashboard-phone.png` (phone), are screenshots of the example
//! below; regenerate them with
//! `cargo test --test e2e dashboard_browser:: -- --ignored regenerate_readme_screenshots`.
//!
//! Without Chromium the tests print `skipped: ...` and pass, except under
//! `CI=true`, where they fail (`tests/run-all` installs `chromium` and
//! `fonts-dejavu-core`).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::browser::{check_layout, f, png_size, Chromium, LAPTOP, PHONE, WALL};
use deployer::error::HostError;
use deployer::freeze::Freeze;
use deployer::matrix::{build, HostReport, Matrix};
use deployer::status::{HostStatus, PackageState};
use serde_json::Value;

const REFRESHED: &str = "2026-11-22T01:00:00Z";
/// Shown in the frozen stage's reason: markup that must show as text.
const REASON: &str = "incident #412: <b>latency</b> & 5xx on \"prod\"";

/// One host's answer: `version` as installed, `-` absent, `VERSION!`
/// half-configured, `VERSION^` held.
fn host(stage: &str, name: &str, packages: &[(&str, &str)]) -> HostReport {
    let mut status = HostStatus::default();
    for (package, version) in packages {
        let package: deployer::package::PackageName = package.parse().unwrap();
        if let Some(v) = version.strip_suffix('^') {
            status.held.insert(package.clone());
            status
                .packages
                .insert(package, PackageState::Installed(v.parse().unwrap()));
            continue;
        }
        let state = match *version {
            "-" => PackageState::NotInstalled,
            v if v.ends_with('!') => PackageState::Broken {
                version: Some(v.trim_end_matches('!').parse().unwrap()),
                state: "half-configured".into(),
            },
            v => PackageState::Installed(v.parse().unwrap()),
        };
        status.packages.insert(package, state);
    }
    HostReport {
        stage: stage.into(),
        host: name.into(),
        result: Ok(status),
    }
}

/// A realistic pipeline with one of everything: a rollout pending
/// (fastpath, test ►► hel), a regression (analysis, hel ⚠ prod), hosts of
/// a stage that disagree (fastpath on prod), a broken package (detector on
/// hel), a held package, a frozen stage (prod) and an unreachable host.
fn example() -> (Matrix, Vec<HostReport>) {
    let mut reports = vec![
        host(
            "test",
            "test-1.ooni.example",
            &[
                ("ooni-api", "1.0.80~pr760-201"),
                ("fastpath", "0.81~pr748-191"),
                ("analysis", "1.9~pr659-61"),
                ("detector", "0.3~pr651-98"),
                ("oonireport", "0.9.2+really.0.9.1~pr33-7"),
            ],
        ),
        host(
            "hel",
            "hel-1.ooni.example",
            &[
                ("ooni-api", "1.0.79~pr751-194"),
                ("fastpath", "0.77~pr705-119"),
                ("analysis", "1.9~pr659-61"),
                ("detector", "0.3~pr651-98!"),
                ("oonireport", "0.9.2+really.0.9.1~pr33-7"),
            ],
        ),
        host(
            "prod",
            "prod-1.ooni.example",
            &[
                ("ooni-api", "1.0.79~pr751-194"),
                ("fastpath", "0.77~pr705-119"),
                ("analysis", "1.10~pr692-102"),
                ("detector", "0.2~pr640-90^"),
                ("oonireport", "-"),
            ],
        ),
        host(
            "prod",
            "prod-2.ooni.example",
            &[
                ("ooni-api", "1.0.79~pr751-194"),
                ("fastpath", "0.76~pr700-112"),
                ("analysis", "1.10~pr692-102"),
                ("detector", "0.2~pr640-90"),
                ("oonireport", "-"),
            ],
        ),
        HostReport {
            stage: "prod".into(),
            host: "prod-3.ooni.example".into(),
            result: Err(HostError::Connect {
                addr: "10.0.3.3:22".into(),
                message: "Connection timed out (os error 110)".into(),
            }),
        },
    ];
    if let Ok(s) = &mut reports[2].result {
        s.freezes.push(Freeze {
            stage: "prod".into(),
            by: "alice@ops-desk".into(),
            since: "2026-11-21T07:30:05Z".into(),
            reason: REASON.into(),
        });
    }
    let packages: Vec<_> = ["ooni-api", "fastpath", "analysis", "detector", "oonireport"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let stages: Vec<(String, usize)> = [("test", 1), ("hel", 1), ("prod", 3)]
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    let m = build(&packages, &stages, &reports);
    (m, reports)
}

fn page(m: &Matrix, reports: &[HostReport]) -> String {
    page_of(m, reports, REFRESHED, Some(Duration::from_secs(60)))
}

/// The page of `m`, refreshed at `refreshed`, reloading every `refresh`.
fn page_of(
    m: &Matrix,
    reports: &[HostReport],
    refreshed: &str,
    refresh: Option<Duration>,
) -> String {
    let board = deployer::badges::board(m, reports);
    let mut out = Vec::new();
    let dashboard = deployer::render::Dashboard {
        refreshed,
        refresh,
        changes: None,
    };
    deployer::render::html(m, &board, &dashboard, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Every installed (or broken) version any answering host reported.
fn versions(reports: &[HostReport]) -> Vec<String> {
    let mut all: Vec<String> = reports
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .flat_map(|s| s.packages.values())
        .filter_map(|s| s.version().map(ToString::to_string))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The page of `m` at `size` fits: laid out as `layout` (the computed
/// `display` of a matrix row: `table-row` on a laptop, `block` for the
/// phone's cards), no horizontal overflow, every badge drawn, inside the
/// screen and apart from the others, every version in the visible text.
/// Returns the measurements.
fn check_fit(
    chromium: &Chromium,
    (m, reports): (&Matrix, &[HostReport]),
    size: (u32, u32),
    layout: &str,
) -> Value {
    let page = page(m, reports);
    let got = chromium.measure(&page, size);
    let at = format!("at {}x{}", size.0, size.1);
    check_layout(&got, size, layout);

    let board = deployer::badges::board(m, reports);
    let detail_hosts: usize = m.details.iter().map(|d| d.hosts.len()).sum();
    let badges = got["badges"].as_array().unwrap();
    assert_eq!(badges.len(), board.stages.len() + detail_hosts, "{at}");
    for sb in &board.stages {
        let label = format!("{}: {}", sb.badge.label, sb.badge.message);
        assert!(
            badges.iter().any(|b| b["label"] == label.as_str()),
            "{at}: no badge `{label}`"
        );
    }
    let text = got["text"].as_str().unwrap();
    for v in versions(reports) {
        assert!(
            text.contains(&v),
            "{at}: version `{v}` not shown in:\n{text}"
        );
    }
    got
}

/// What a person sees of the example at `size`, beyond [`check_fit`]: the
/// markers with their text alternatives, the frozen stage, the unreachable
/// host and the time of the refresh.
fn check_example(chromium: &Chromium, size: (u32, u32), layout: &str) {
    let (m, reports) = example();
    let got = check_fit(chromium, (&m, &reports), size, layout);
    let at = format!("at {}x{}", size.0, size.1);
    let summary = m.summary();
    let markers = got["markers"].as_array().unwrap();
    for (label, symbol, count) in [
        ("rollout pending", "►►", summary.pending),
        ("regression", "⚠", summary.regressions),
    ] {
        let found: Vec<&Value> = markers.iter().filter(|v| v["label"] == label).collect();
        assert_eq!(found.len(), count, "{at}: `{label}` markers: {markers:?}");
        for v in found {
            assert_eq!(v["title"], label, "{at}");
            assert_eq!(v["text"], symbol, "{at}");
            assert!(
                f(v, "w") > 0.0 && f(v, "h") > 0.0,
                "{at}: marker not drawn: {v}"
            );
        }
    }

    let text = got["text"].as_str().unwrap();
    for w in [
        "►►",
        "⚠",
        REASON,
        "alice@ops-desk",
        "prod-3.ooni.example",
        "Connection timed out",
        "1/3 down",
        REFRESHED,
    ] {
        assert!(text.contains(w), "{at}: `{w}` not shown in:\n{text}");
    }
}

#[test]
fn on_a_laptop_the_matrix_is_a_table_that_shows_everything() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    check_example(&chromium, LAPTOP, "table-row");
}

#[test]
fn on_a_phone_the_matrix_is_cards_that_fit_the_screen() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    check_example(&chromium, PHONE, "block");
}

/// On a 1920x1080 wall screen, read from across a room: the matrix in
/// large type (its cells and package names at least 24 px, where a laptop
/// has 15 px: about what 12 pt is at arm's length, seen from 3-4 m), its
/// badges drawn at least 36 px high (the laptop's are 20 px), the table
/// filling at least 40% of the screen's width, and the banner of the
/// frozen stage above the fold, at the top. Everything else a laptop
/// shows is shown too (the checks of the laptop and the phone).
#[test]
fn on_a_wall_screen_the_matrix_is_large_and_the_freeze_above_the_fold() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    check_example(&chromium, WALL, "table-row");
    let (m, reports) = example();
    let got = chromium.measure(&page(&m, &reports), WALL);
    let (width, height) = (f64::from(WALL.0), f64::from(WALL.1));
    for key in ["cellFont", "rowFont"] {
        assert!(f(&got, key) >= 24.0, "{key} too small for a wall: {got}");
    }
    let matrix = &got["matrix"];
    assert!(
        f(matrix, "w") >= 0.4 * width,
        "the matrix fills too little of the screen: {matrix}"
    );
    for b in got["badges"].as_array().unwrap() {
        assert!(f(b, "drawnH") >= 36.0, "badge too small for a wall: {b}");
    }
    let banner = &got["banner"];
    assert!(
        f(banner, "h") > 0.0 && f(banner, "y") + f(banner, "h") <= height,
        "the banner is not above the fold: {banner}"
    );
    assert!(f(banner, "y") < f(matrix, "y"), "banner under the matrix");
    // the laptop keeps its size: the wall's type is the wall's alone
    let laptop = chromium.measure(&page(&m, &reports), LAPTOP);
    assert!(f(&laptop, "cellFont") < 20.0, "{laptop}");
    assert!(f(&laptop["banner"], "y") < f(&laptop["matrix"], "y"));
}

/// `secs_ago` seconds before now, in RFC 3339 UTC.
fn ago(secs_ago: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    deployer::history::format_rfc3339(now - secs_ago)
}

/// The page says how old it is, in words, and shows itself stale once
/// older than three reload intervals: a fresh page is not stale, one
/// written an hour ago with a reload every minute is (the note shown,
/// the document marked), and with reloading off nothing is ever stale.
#[test]
fn an_old_page_shows_itself_stale() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let (m, reports) = example();
    let minute = Some(Duration::from_secs(60));

    let fresh = chromium.measure(&page_of(&m, &reports, &ago(0), minute), LAPTOP);
    assert_eq!(fresh["refresh"], "60", "{fresh}");
    assert_eq!(fresh["stale"], false, "{fresh}");
    assert!(fresh["staleNote"].is_null(), "{fresh}");
    let text = fresh["text"].as_str().unwrap();
    // "(1 second ago)" or "(4 seconds ago)": how long the browser took
    assert!(
        text.contains(" second ago)") || text.contains(" seconds ago)"),
        "{text}"
    );
    assert!(!text.contains("Stale:"), "{text}");

    let old = chromium.measure(&page_of(&m, &reports, &ago(3600), minute), LAPTOP);
    assert_eq!(old["stale"], true, "{old}");
    let note = &old["staleNote"];
    assert!(
        f(note, "h") > 0.0 && f(note, "y") < f(&old["matrix"], "y"),
        "{old}"
    );
    let text = old["text"].as_str().unwrap();
    assert!(
        text.contains("Stale: this page is more than 3 minutes old"),
        "{text}"
    );
    assert!(
        text.contains("(1 hour ago)") || text.contains("(60 minutes ago)"),
        "{text}"
    );

    let off = chromium.measure(&page_of(&m, &reports, &ago(86_400 * 2), None), LAPTOP);
    assert!(off["refresh"].is_null(), "{off}");
    assert_eq!(off["stale"], false, "{off}");
    assert!(
        off["text"].as_str().unwrap().contains("(2 days ago)"),
        "{off}"
    );
}

/// The script this tool replaces guessed badge widths and long versions
/// overflowed; here a long version and a long stage name must still fit a
/// phone's screen (the badge shrinks to the card) and a laptop's page (the
/// table scrolls in its own box).
#[test]
fn a_very_long_version_and_stage_name_still_fit() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let long = "2:1.0.79~pr751-194+git20261121.0a1b2c3d4e5f60718293a4b5c6d7e8f9-1~bpo12+1";
    let stage = "production-europe-west-failover";
    let reports = [
        host("test", "t1", &[("fastpath", long)]),
        host(stage, "p1", &[("fastpath", "0.77~pr705-119")]),
    ];
    let m = build(
        &["fastpath".parse().unwrap()],
        &[("test".to_string(), 1), (stage.to_string(), 1)],
        &reports,
    );
    check_fit(&chromium, (&m, &reports), PHONE, "block");
    check_fit(&chromium, (&m, &reports), LAPTOP, "table-row");
}

#[test]
fn screenshots_are_pngs_of_the_size_asked_for() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let (m, reports) = example();
    let path = chromium.dir.path().join("index.html");
    std::fs::write(&path, page(&m, &reports)).unwrap();
    for size in [LAPTOP, PHONE] {
        let png = chromium.screenshot(&path, size);
        assert_eq!(png_size(&png), size);
        // a blank page compresses to almost nothing; this one has badges
        assert!(png.len() > 10_000, "{} bytes at {size:?}", png.len());
    }
}

/// The README's example: `badges/dashboard.png` (laptop width, the whole
/// page) and `badges/dashboard-phone.png` (phone width, the whole page).
#[test]
#[ignore = "rewrites badges/*.png in the source tree; run by hand"]
fn regenerate_readme_screenshots() {
    let Some(chromium) = Chromium::find() else {
        panic!("regenerating the screenshots needs Chromium");
    };
    let (m, reports) = example();
    // written a minute ago: the example's own time would show it stale
    let page = page_of(&m, &reports, &ago(60), Some(Duration::from_secs(300)));
    let path = chromium.dir.path().join("index.html");
    std::fs::write(&path, &page).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("badges");
    std::fs::create_dir_all(&dir).unwrap();
    for (size, name) in [(LAPTOP, "dashboard.png"), (PHONE, "dashboard-phone.png")] {
        // as tall as the page, so the image shows all of it
        let height = f(&chromium.measure(&page, size), "scrollHeight") as u32;
        let png = chromium.screenshot(&path, (size.0, height));
        assert_eq!(png_size(&png), (size.0, height));
        std::fs::write(dir.join(name), png).unwrap();
    }
}

#[test]
fn the_example_has_one_of_everything() {
    let (m, reports) = example();
    let s = m.summary();
    assert!(s.pending > 0 && s.regressions > 0, "{s:?}");
    assert!(s.drift > 0 && s.broken > 0 && s.frozen > 0, "{s:?}");
    assert!(!m.unreachable.is_empty());
    assert!(m.rows.iter().any(|r| r.held.iter().any(|&n| n > 0)));
    let by_host: BTreeMap<&str, bool> = reports
        .iter()
        .map(|r| (r.host.as_str(), r.result.is_ok()))
        .collect();
    assert_eq!(by_host.len(), reports.len(), "host names are unique");
}
