//! The dashboard page (`index.html`, `deployer::render::html`) in a real
//! browser: headless Chromium (Debian's `chromium`) opens it at laptop
//! (1280x800) and phone (390x844) sizes, and the test checks what it shows:
//! no horizontal overflow of the page, every badge drawn with a size and
//! apart from its neighbours and inside the screen, the ►► / ⚠ markers with
//! their text alternatives, and in the visible text every version, the
//! frozen reason (escaped markup shows as text), the unreachable host and
//! the time of the refresh. Screenshots at both sizes must be PNGs of the
//! size asked for.
//!
//! How the layout is measured: the page itself has no script. The test
//! writes a copy with a test-only script appended and loads that copy in an
//! `<iframe srcdoc>` of the exact size (headless Chromium will not make its
//! window narrower than 500 px; an iframe can be any width and shares the
//! outer page's origin). After load, the script writes its measurements as
//! JSON into the outer page, which `chromium --dump-dom` prints.
//!
//! The README's example, `badges/dashboard.png` (laptop) and
//! `badges/dashboard-phone.png` (phone), are screenshots of the example
//! below; regenerate them with
//! `cargo test --test dashboard_browser -- --ignored regenerate_readme_screenshots`.
//!
//! Without Chromium the tests print `skipped: ...` and pass, except under
//! `CI=true`, where they fail (`tests/run-all` installs `chromium` and
//! `fonts-dejavu-core`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deployer::error::HostError;
use deployer::freeze::Freeze;
use deployer::matrix::{build, HostReport, Matrix};
use deployer::status::{HostStatus, PackageState};
use serde_json::Value;

const REFRESHED: &str = "2026-11-22T01:00:00Z";
const LAPTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);
/// A browser that has not finished by then has hung.
const TIMEOUT: Duration = Duration::from_secs(90);
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
    let board = deployer::badges::board(m, reports);
    let mut out = Vec::new();
    deployer::render::html(m, &board, REFRESHED, &mut out).unwrap();
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

/// Headless Chromium with a profile of its own.
struct Chromium {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Chromium {
    /// Chromium, or `None` after printing why the test is skipped (a
    /// panic under `CI=true`).
    fn find() -> Option<Chromium> {
        let bin = ["chromium", "chromium-browser"].iter().find_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        });
        let Some(bin) = bin else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: Chromium (Debian package `chromium`) is needed"
            );
            eprintln!("skipped: no chromium on PATH (Debian package `chromium`)");
            return None;
        };
        Some(Chromium {
            bin,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// Run Chromium headless on the file `page` with `args`; its stdout.
    fn run(&self, page: &Path, args: &[String]) -> String {
        let out = self.dir.path().join("stdout");
        let err = self.dir.path().join("stderr");
        let mut child = Command::new(&self.bin)
            .args([
                "--headless",
                // as root Chromium refuses to start with its sandbox
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--force-device-scale-factor=1",
            ])
            .arg(format!(
                "--user-data-dir={}",
                self.dir.path().join("profile").display()
            ))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.bin.display()));
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium {args:?} did not finish within {TIMEOUT:?}; stderr:\n{}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        assert!(
            status.success(),
            "chromium {args:?} failed: {status}; stderr:\n{}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        std::fs::read_to_string(&out).unwrap()
    }

    /// Load `page` in a `width` x `height` frame and measure it (see the
    /// module's doc).
    fn measure(&self, page: &str, (width, height): (u32, u32)) -> Value {
        assert!(!page.contains("<script"), "the page itself has a script");
        let copy = page.replacen("</body>", &format!("<script>{PROBE}</script>\n</body>"), 1);
        assert_ne!(copy, page, "no </body> in the page");
        let outer = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>\
             <body style=\"margin:0\"><iframe style=\"border:0;display:block\" \
             width=\"{width}\" height=\"{height}\" srcdoc=\"{}\"></iframe>\
             <pre id=\"probe\"></pre></body></html>",
            attribute(&copy)
        );
        let path = self.dir.path().join(format!("probe-{width}x{height}.html"));
        std::fs::write(&path, outer).unwrap();
        let dom = self.run(
            &path,
            &[
                format!("--window-size={},{}", width + 40, height + 40),
                "--dump-dom".into(),
            ],
        );
        let start = dom
            .find("<pre id=\"probe\">")
            .expect("probe element in the DOM")
            + "<pre id=\"probe\">".len();
        let end = start + dom[start..].find("</pre>").unwrap();
        let json = percent_decode(&dom[start..end]);
        assert!(!json.is_empty(), "the probe wrote nothing: {dom}");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// A screenshot of the file `page` at `width` x `height`; its bytes.
    fn screenshot(&self, page: &Path, (width, height): (u32, u32)) -> Vec<u8> {
        let png = self.dir.path().join(format!("shot-{width}x{height}.png"));
        let _ = std::fs::remove_file(&png);
        self.run(
            page,
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={width},{height}"),
                "--hide-scrollbars".into(),
            ],
        );
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()))
    }
}

/// The test-only script: after load, the measurements as URI-encoded JSON
/// into the outer page's `#probe`.
const PROBE: &str = r#"
addEventListener('load', function () {
  var box = function (e) {
    var r = e.getBoundingClientRect();
    return { x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height };
  };
  var all = function (sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); };
  var result = {
    innerWidth: innerWidth,
    clientWidth: document.documentElement.clientWidth,
    scrollWidth: document.documentElement.scrollWidth,
    scrollHeight: document.documentElement.scrollHeight,
    rowDisplay: getComputedStyle(document.querySelector('.matrix tbody tr')).display,
    svgs: document.querySelectorAll('svg').length,
    badges: all('.badge').map(function (e) {
      var s = e.querySelector('svg'), b = box(e), d = box(s);
      b.drawnW = d.w; b.drawnH = d.h; b.label = s.getAttribute('aria-label') || '';
      return b;
    }),
    markers: all('[role=img]:not(svg)').map(function (e) {
      var b = box(e); b.label = e.getAttribute('aria-label'); b.title = e.getAttribute('title');
      b.text = e.textContent; return b;
    }),
    text: document.body.innerText
  };
  parent.document.getElementById('probe').textContent = encodeURIComponent(JSON.stringify(result));
});
"#;

/// `s` inside a double-quoted HTML attribute.
fn attribute(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;")
}

fn percent_decode(s: &str) -> String {
    let b = s.trim().as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A PNG's width and height, from its IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        png.len()
    );
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` missing in {v}"))
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

    assert_eq!(
        f(&got, "innerWidth"),
        f64::from(size.0),
        "{at}: frame width"
    );
    assert_eq!(got["rowDisplay"], layout, "{at}: layout of the matrix");
    let client = f(&got, "clientWidth");
    assert!(
        f(&got, "scrollWidth") <= client,
        "{at}: the page overflows horizontally: {got}"
    );

    let board = deployer::badges::board(m, reports);
    let detail_hosts: usize = m.details.iter().map(|d| d.hosts.len()).sum();
    let badges = got["badges"].as_array().unwrap();
    assert_eq!(badges.len(), board.stages.len() + detail_hosts, "{at}");
    for b in badges {
        // drawn, and no smaller than 3/4 of its 20 px height (readable)
        assert!(
            f(b, "drawnW") >= 10.0 && f(b, "drawnH") >= 15.0 && f(b, "h") >= 15.0,
            "{at}: badge not drawn, or too small: {b}"
        );
        assert!(
            f(b, "x") >= 0.0 && f(b, "x") + f(b, "w") <= client + 0.5,
            "{at}: badge outside the screen (width {client}): {b}"
        );
    }
    for (i, a) in badges.iter().enumerate() {
        for b in &badges[i + 1..] {
            let across =
                (f(a, "x") + f(a, "w")).min(f(b, "x") + f(b, "w")) - f(a, "x").max(f(b, "x"));
            let down =
                (f(a, "y") + f(a, "h")).min(f(b, "y") + f(b, "h")) - f(a, "y").max(f(b, "y"));
            assert!(
                across <= 0.5 || down <= 0.5,
                "{at}: badges overlap:\n  {a}\n  {b}"
            );
        }
    }
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
    let page = page(&m, &reports);
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
