//! The dashboard of a real refresh, in a real browser: on the testbed's
//! hosts, a pipeline with one of everything (a rollout pending, a
//! regression, hosts of a stage that disagree, a broken package, a stage
//! frozen through the tool, a host down); `refresh-badges --output DIR`
//! writes the page, and headless Chromium opens `DIR/index.html` at laptop
//! and phone sizes. What the page shows is checked against what the status
//! view (`deployer --json`, `deployer`) says of the same hosts, and its
//! stage and host badges against the files `DIR/STAGE/PKG.svg` and
//! `DIR/host/HOST/PKG.svg` written beside it.
//!
//! Needs the testbed (root) and Chromium; without either the test prints
//! `skipped: ...` and passes, except under `CI=true`. One testbed at a time
//! on a shared machine: `flock /tmp/deployer-testbed-turn.lock cargo test
//! --test e2e dashboard_e2e::`.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use common::browser::{check_layout, f, field, Chromium, LAPTOP, PHONE, WALL};
use common::cli::{deployer, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// In configuration order.
const PACKAGES: [&str; 4] = ["ooni-api", "fastpath", "analysis", "detector"];
const STAGES: [&str; 3] = ["test", "hel", "prod"];
/// Markup that must show as text on the page.
const REASON: &str = "incident #412: <b>latency</b> & 5xx on \"prod\"";
const DOWN: &str = "prod-2";

/// The pipeline: fastpath test ►► hel (pending); analysis on hel differs
/// between hel-1 and hel-2; detector unpacked but not configured on test-1
/// (broken), and newer on prod than on hel (regression); prod frozen with
/// [`REASON`]; prod-2 down.
fn pipeline(tb: &Testbed) {
    let api = ("ooni-api", Some("1.0.79~pr751-194"));
    tb.set_versions(
        "test-1",
        &[
            api,
            ("fastpath", Some(NEW)),
            ("analysis", Some("1.9~pr659-61")),
        ],
    );
    tb.break_package("test-1", "detector", "2.0-1");
    for (host, analysis) in [("hel-1", "1.10~pr692-102"), ("hel-2", "1.9~pr659-61")] {
        tb.set_versions(
            host,
            &[
                api,
                ("fastpath", Some(OLD)),
                ("analysis", Some(analysis)),
                ("detector", Some("0.3~pr651-98")),
            ],
        );
    }
    tb.set_versions(
        "prod-1",
        &[
            api,
            ("fastpath", Some(OLD)),
            ("analysis", Some("1.10~pr692-102")),
            ("detector", Some("2.0-1")),
        ],
    );
}

/// The stage and host badges of the page and of `DIR`, the markers and the
/// text, at `size`, checked against the status view `status` (JSON) and
/// its text `view`.
fn check_page(
    chromium: &Chromium,
    dir: &Path,
    (status, view): (&Value, &str),
    size: (u32, u32),
    layout: &str,
) {
    let at = format!("at {}x{}", size.0, size.1);
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let got = chromium.measure(&page, size);
    check_layout(&got, size, layout);
    let badges = got["badges"].as_array().unwrap();
    let text = got["text"].as_str().unwrap();

    // one badge per stage and package in the matrix, the very badge of
    // DIR/STAGE/PKG.svg
    let in_matrix: Vec<&Value> = badges
        .iter()
        .filter(|b| !field(b, "package").is_empty())
        .collect();
    let cells: BTreeSet<(&str, &str)> = in_matrix
        .iter()
        .map(|b| (field(b, "package"), field(b, "stage")))
        .collect();
    let expected: BTreeSet<(&str, &str)> = PACKAGES
        .iter()
        .flat_map(|p| STAGES.iter().map(move |s| (*p, *s)))
        .collect();
    assert_eq!(in_matrix.len(), expected.len(), "{at}: {in_matrix:?}");
    assert_eq!(cells, expected, "{at}");
    let badge_in = |package: &str, stage: &str| -> &Value {
        in_matrix
            .iter()
            .find(|b| field(b, "package") == package && field(b, "stage") == stage)
            .unwrap()
    };
    for (package, stage) in &expected {
        let file = read(dir, &format!("{stage}/{package}.svg"));
        assert_eq!(
            field(badge_in(package, stage), "label"),
            aria_label(&file),
            "{at}: the badge of {package} on {stage} is not {stage}/{package}.svg"
        );
    }

    // every version every answering host runs: on its stage's badge when
    // the stage agrees, else on the host's own badge in the list of hosts
    // that disagree (the very badge of DIR/host/HOST/PKG.svg)
    let cell = |package: &str, stage: &str| -> Value {
        status["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == package)
            .unwrap()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["stage"] == stage)
            .unwrap()
            .clone()
    };
    let mut shown = 0;
    for stage in status["stages"].as_array().unwrap() {
        let name = stage["name"].as_str().unwrap();
        for host in stage["hosts"].as_array().unwrap() {
            let h = host["host"].as_str().unwrap();
            let Some(packages) = host["packages"].as_object() else {
                continue;
            };
            for (package, state) in packages {
                let Some(version) = state["version"].as_str() else {
                    continue;
                };
                let want = format!("{package}: {version}");
                let broken = state["state"] == "broken";
                let file = read(dir, &format!("host/{h}/{package}.svg"));
                assert!(aria_label(&file).starts_with(&want), "{h}: {file}");
                let own = badges
                    .iter()
                    .find(|b| field(b, "host") == h && field(b, "label").starts_with(&want));
                if cell(package, name)["mixed"] == true || broken {
                    let own = own.unwrap_or_else(|| {
                        panic!("{at}: no badge `{want}` for {h} in the list of hosts: {badges:?}")
                    });
                    assert_eq!(
                        field(own, "heading"),
                        format!("{package} on {name}"),
                        "{at}"
                    );
                    assert_eq!(field(own, "label"), aria_label(&file), "{at}: {h}");
                    if broken {
                        let dpkg = state["dpkg_state"].as_str().unwrap();
                        assert_eq!(field(own, "label"), format!("{want} {dpkg}"), "{at}");
                    }
                } else {
                    assert_eq!(field(badge_in(package, name), "label"), want, "{at}: {h}");
                }
                shown += 1;
            }
        }
    }
    assert_eq!(shown, PACKAGES.len() * 4, "{at}: four hosts answered");

    // ►► and ⚠ exactly where the status view has them
    let mut markers: Vec<(String, String)> = got["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let (label, symbol) = (field(m, "label"), field(m, "text"));
            assert_eq!(field(m, "title"), label, "{at}");
            assert_eq!(
                symbol,
                if label == "regression" {
                    "⚠"
                } else {
                    "►►"
                },
                "{at}"
            );
            assert!(f(m, "w") > 0.0 && f(m, "h") > 0.0, "{at}: not drawn: {m}");
            (field(m, "package").to_string(), label.to_string())
        })
        .collect();
    let mut expected: Vec<(String, String)> = Vec::new();
    for p in status["packages"].as_array().unwrap() {
        for c in p["comparisons"].as_array().unwrap() {
            let label = match c["result"].as_str().unwrap() {
                "pending" => "rollout pending",
                "regression" => "regression",
                _ => continue,
            };
            expected.push((p["name"].as_str().unwrap().to_string(), label.to_string()));
        }
    }
    markers.sort();
    expected.sort();
    assert_eq!(markers, expected, "{at}");
    for (symbol, label) in [("►►", "rollout pending"), ("⚠", "regression")] {
        let on_page = markers.iter().filter(|m| m.1 == label).count();
        assert_eq!(
            view.matches(symbol).count(),
            on_page,
            "{at}: `{symbol}` in the text view:\n{view}"
        );
    }

    // the frozen stage, the host down, the time of the refresh (after the
    // freeze: both times are the tool's, RFC 3339 in UTC)
    let prod = &status["stages"][2];
    assert_eq!(prod["frozen"]["reason"], REASON);
    // ... in the banner, at the top: above the matrix, inside the screen
    let banner = &got["banner"];
    assert!(!banner.is_null(), "{at}: no banner: {got}");
    assert!(
        f(banner, "h") > 0.0 && f(banner, "y") < f(&got["matrix"], "y"),
        "{at}: the banner is not above the matrix: {got}"
    );
    assert!(
        f(banner, "y") + f(banner, "h") <= f64::from(size.1),
        "{at}: the banner is below the fold: {banner}"
    );
    let frozen = format!(
        "prod: frozen by {} since {}: {REASON}",
        prod["frozen"]["by"].as_str().unwrap(),
        prod["frozen"]["since"].as_str().unwrap()
    );
    let unreachable = &status["unreachable"][0];
    assert_eq!(unreachable["host"], DOWN);
    let refreshed = {
        let at = page
            .find("<time datetime=\"")
            .expect("the time of the refresh")
            + 16;
        &page[at..at + page[at..].find('"').unwrap()]
    };
    assert!(
        refreshed.ends_with('Z') && refreshed >= prod["frozen"]["since"].as_str().unwrap(),
        "{refreshed}"
    );
    for w in [
        frozen.as_str(),
        "1/2 down",
        DOWN,
        unreachable["error"].as_str().unwrap(),
        &format!("Refreshed {refreshed}"),
        "4 of 5 hosts answered",
    ] {
        assert!(text.contains(w), "{at}: `{w}` not shown in:\n{text}");
    }
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `aria-label` of an SVG's root element, markup unescaped as a
/// browser reads it.
fn aria_label(svg: &str) -> String {
    let root = &svg[..svg.find('>').expect("an element")];
    let at = root.find(" aria-label=\"").expect("an aria-label") + 13;
    let value = &root[at..at + root[at..].find('"').unwrap()];
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The stage badges inlined in the page's matrix are the files
/// `DIR/STAGE/PKG.svg`, byte for byte, apart from what inlining adds: a
/// `min-width` style and a `viewBox` on the root, and a `-bN` suffix on
/// every id (and reference to it).
fn check_inlined_stage_badges(dir: &Path, page: &str) {
    let tbody = &page[page.find("<tbody>").unwrap()..page.find("</tbody>").unwrap()];
    let mut seen = 0;
    for row in tbody.split("<tr><th scope=\"row\">").skip(1) {
        let package = &row[..row.find("</th>").unwrap()];
        for cell in row
            .split("<td class=\"cell\"><span class=\"stage\">")
            .skip(1)
        {
            let stage = cell[..cell.find('<').unwrap()].trim_end();
            let start = cell.find("<span class=\"badge\">").unwrap() + 20;
            let end = start + cell[start..].find("</svg>").unwrap() + 6;
            let file = read(dir, &format!("{stage}/{package}.svg"));
            assert_eq!(
                uninline(&cell[start..end]),
                file.trim_end(),
                "{package} on {stage}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, PACKAGES.len() * STAGES.len());
}

/// An inlined badge back as the file it came from.
fn uninline(svg: &str) -> String {
    let rest = svg.strip_prefix("<svg style=\"min-width:").expect(svg);
    let rest = &rest[rest.find("px\"").unwrap() + 3..];
    let rest = rest.strip_prefix(" viewBox=\"").expect(svg);
    let rest = &rest[rest.find('"').unwrap() + 1..];
    // the clip path's id `{id}-r` names the suffix: `{id}-r-bN`
    let at = svg.find("-r-b").expect("a clip path id") + 2;
    let n: String = svg[at + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let suffix = format!("-b{n}");
    format!("<svg{rest}")
        .replace(&format!("{suffix}\""), "\"")
        .replace(&format!("{suffix})"), ")")
}

#[test]
fn the_dashboard_of_a_real_refresh_shows_what_the_status_view_shows() {
    let Some(chromium) = Chromium::find() else {
        return;
    };
    let Some(tb) = Testbed::start(&[("test", 1), ("hel", 2), ("prod", 2)]) else {
        return;
    };
    tb.write_config(
        &PACKAGES,
        &format!("connect_timeout = 5\ndashboard_refresh = {RELOAD}"),
        "",
    );
    pipeline(&tb);
    let (code, out, err) = deployer(&tb, &["freeze", "prod", "--reason", REASON]);
    assert_eq!(code, 0, "{out}{err}");
    let _down = tb.stop_sshd(DOWN);

    let dir = tb.dir().join("site");
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--output", dir.to_str().unwrap()]);
    assert_eq!(code, 3, "a host is down: {out}{err}");
    assert!(out.contains("the dashboard is "), "{out}");
    assert!(
        err.contains(&format!(
            "warning: host `{DOWN}` (prod): unreachable: cannot connect"
        )),
        "{err}"
    );

    let (code, json, err) = deployer(&tb, &["--json"]);
    assert_eq!(code, 3, "{err}");
    let status: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let (code, view, err) = deployer(&tb, &[]);
    assert_eq!(code, 3, "{err}");
    // the pipeline has one of everything
    let sum = &status["summary"];
    for key in ["pending", "regressions", "drift", "broken", "frozen"] {
        assert!(sum[key].as_u64() > Some(0), "no {key}: {sum}");
    }
    assert_eq!(
        (sum["answered"].as_u64(), sum["hosts"].as_u64()),
        (Some(4), Some(5))
    );

    // the host down has badges too, saying so
    for package in PACKAGES {
        let file = read(&dir, &format!("host/{DOWN}/{package}.svg"));
        assert_eq!(aria_label(&file), format!("{package}: unreachable"));
    }
    check_inlined_stage_badges(&dir, &read(&dir, "index.html"));
    check_page(&chromium, &dir, (&status, &view), LAPTOP, "table-row");
    check_page(&chromium, &dir, (&status, &view), PHONE, "block");
    check_page(&chromium, &dir, (&status, &view), WALL, "table-row");
    let page = read(&dir, "index.html");
    let got = chromium.measure(&page, WALL);
    assert_eq!(got["refresh"], RELOAD, "{got}");
    assert!(f(&got, "cellFont") >= 24.0, "{got}");
    // written just now: not stale
    assert_eq!(got["stale"], false, "{got}");

    // `dashboard_refresh = 0`: the page does not reload itself
    tb.write_config(&PACKAGES, "connect_timeout = 5\ndashboard_refresh = 0", "");
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--output", dir.to_str().unwrap()]);
    assert_eq!(code, 3, "a host is down: {out}{err}");
    let page = read(&dir, "index.html");
    assert!(!page.contains("http-equiv"), "{page}");
    assert!(page.contains("<section class=\"banner\""), "{page}");
    assert!(chromium.measure(&page, LAPTOP)["refresh"].is_null());

    // a value out of range: refused, naming the file, the line, what is
    // accepted, and nothing written
    let ini = tb.write_config(&PACKAGES, "connect_timeout = 5\ndashboard_refresh = 5", "");
    std::fs::remove_file(dir.join("index.html")).unwrap();
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--output", dir.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}{err}");
    let line = std::fs::read_to_string(&ini)
        .unwrap()
        .lines()
        .position(|l| l.trim() == "dashboard_refresh = 5")
        .expect("the line")
        + 1;
    assert!(
        err.contains(&format!(
            "error: `{}` line {line}: `dashboard_refresh` in `[environment]` has an invalid value `5`: too short",
            ini.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("note: accepted: `0` (the page never reloads itself), or a duration from 10s"),
        "{err}"
    );
    assert!(
        !dir.join("index.html").exists(),
        "written despite the error"
    );
}

/// The configured `dashboard_refresh`, in seconds.
const RELOAD: &str = "45";
