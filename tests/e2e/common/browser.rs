//! Headless Chromium (Debian's `chromium`) for the tests of the dashboard
//! page: screenshots, and measurements of a page laid out at an exact size.
//! Shared by `dashboard_browser` (a page built from plain data) and
//! `dashboard_e2e` (the page `refresh-badges --output` wrote from real hosts).
//!
//! How a page is measured: the page has one script of its own (ages and
//! staleness), which runs as it would for anyone. [`Chromium::measure`]
//! writes a copy with a test-only script ([`PROBE`]) appended and loads that
//! copy in an `<iframe srcdoc>` of the exact size (headless Chromium will not
//! make its window narrower than 500 px; an iframe can be any width and
//! shares the outer page's origin). After load, the script writes its
//! measurements as JSON into the outer page, which `chromium --dump-dom`
//! prints.
//!
//! Without Chromium, [`Chromium::find`] prints `skipped: ...` and the test
//! returns, except under `CI=true`, where it fails (`tests/run-all` installs
//! `chromium` and `fonts-dejavu-core`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::skip::skip;
use serde_json::Value;

/// A laptop's screen, in CSS pixels.
pub const LAPTOP: (u32, u32) = (1280, 800);
/// A phone's screen, in CSS pixels.
pub const PHONE: (u32, u32) = (390, 844);
/// A wall screen (full HD), in CSS pixels.
pub const WALL: (u32, u32) = (1920, 1080);
/// A browser that has not finished by then has hung.
const TIMEOUT: Duration = Duration::from_secs(90);

/// Headless Chromium with a profile of its own.
pub struct Chromium {
    bin: PathBuf,
    /// The profile, the probe pages, the screenshots; a test may put its
    /// own files here too.
    pub dir: tempfile::TempDir,
}

impl Chromium {
    /// Chromium, or `None` after printing why the test is skipped (a
    /// panic under `CI=true`).
    pub fn find() -> Option<Chromium> {
        let bin = ["chromium", "chromium-browser"].iter().find_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        });
        let Some(bin) = bin else {
            skip("no chromium on PATH (Debian package `chromium`)");
            return None;
        };
        Some(Chromium {
            bin,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// Run Chromium headless on the file `page` with `args`; its stdout.
    pub fn run(&self, page: &Path, args: &[String]) -> String {
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
    /// module's doc and [`PROBE`] for what the JSON holds).
    pub fn measure(&self, page: &str, (width, height): (u32, u32)) -> Value {
        // the page's own script may run; nothing may load
        assert!(!page.contains("<script src"), "the page loads a script");
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
    pub fn screenshot(&self, page: &Path, (width, height): (u32, u32)) -> Vec<u8> {
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
/// into the outer page's `#probe`. Boxes are `{x, y, w, h}` in page
/// coordinates. It gives the frame's and the page's widths, the computed
/// `display` of a matrix row, the number of SVGs, and:
/// - `badges`: every `.badge`, its box, the size its SVG is drawn at
///   (`drawnW`, `drawnH`), the SVG's `aria-label` (`label`), and where it
///   sits: in the matrix, its row's package (`package`) and its cell's stage
///   (`stage`); in a list of hosts, the host (`host`) and the heading above
///   the list (`heading`); `""` when not there.
/// - `markers`: every `role=img` that is not an SVG (the ►► / ⚠ markers):
///   box, `aria-label`, `title`, text, and the package of its row.
/// - `matrix`: the matrix table's box; `cellFont` and `rowFont`: the
///   computed font size (px) of its first cell and of its first row
///   heading (a package's name).
/// - `banner`: the box of the frozen stages' banner (`null` without one).
/// - `stale`: whether the document has the `stale` class; `staleNote`:
///   the stale note's box when shown (`null` when hidden or absent).
/// - `refresh`: the `content` of `<meta http-equiv=refresh>` (`null`
///   without one).
/// - `text`: the page's visible text (`innerText`).
pub const PROBE: &str = r#"
addEventListener('load', function () {
  var box = function (e) {
    var r = e.getBoundingClientRect();
    return { x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height };
  };
  var all = function (sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); };
  var text = function (e) { return e ? e.textContent : ''; };
  var rowOf = function (e) {
    var tr = e.closest('.matrix tbody tr');
    return text(tr && tr.querySelector('th[scope=row]'));
  };
  var stageOf = function (e) {
    var s = e.closest('td.cell') && e.closest('td.cell').querySelector('.stage');
    return s && s.firstChild ? s.firstChild.textContent.trim() : '';
  };
  var headingOf = function (e) {
    var ul = e.closest('ul'), h = ul && ul.previousElementSibling;
    return h && /^H[1-6]$/.test(h.tagName) ? h.textContent : '';
  };
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
      b.package = rowOf(e); b.stage = stageOf(e);
      var li = e.closest('li');
      b.host = text(li && li.querySelector('.host'));
      b.heading = li ? headingOf(li) : '';
      return b;
    }),
    markers: all('[role=img]:not(svg)').map(function (e) {
      var b = box(e); b.label = e.getAttribute('aria-label'); b.title = e.getAttribute('title');
      b.text = e.textContent; b.package = rowOf(e); return b;
    }),
    matrix: box(document.querySelector('.matrix')),
    cellFont: parseFloat(getComputedStyle(document.querySelector('.matrix td.cell')).fontSize),
    rowFont: parseFloat(getComputedStyle(document.querySelector('.matrix th[scope=row]')).fontSize),
    banner: document.querySelector('.banner') ? box(document.querySelector('.banner')) : null,
    stale: document.documentElement.classList.contains('stale'),
    staleNote: (function () {
      var n = document.getElementById('stale');
      return n && !n.hidden ? box(n) : null;
    })(),
    refresh: (function () {
      var m = document.querySelector('meta[http-equiv=refresh]');
      return m ? m.getAttribute('content') : null;
    })(),
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
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG ({} bytes)",
        png.len()
    );
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The number `key` of the measurement `v`; panics naming it when absent.
pub fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` missing in {v}"))
}

/// The string `key` of the measurement `v`, `""` when absent.
pub fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// What every page must do at any size, checked on the measurements `got`
/// of a page at `size`: the frame has the width asked for, the matrix is
/// laid out as `layout` (the computed `display` of a matrix row:
/// `table-row` on a laptop, `block` for the phone's cards), no horizontal
/// overflow, and every badge drawn (no smaller than 3/4 of its 20 px height,
/// so readable), inside the screen and apart from the others.
pub fn check_layout(got: &Value, size: (u32, u32), layout: &str) {
    let at = format!("at {}x{}", size.0, size.1);
    assert_eq!(f(got, "innerWidth"), f64::from(size.0), "{at}: frame width");
    assert_eq!(got["rowDisplay"], layout, "{at}: layout of the matrix");
    let client = f(got, "clientWidth");
    assert!(
        f(got, "scrollWidth") <= client,
        "{at}: the page overflows horizontally: {got}"
    );
    let badges = got["badges"].as_array().unwrap();
    for b in badges {
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
}
