//! The matrix as one self-contained web page (`index.html` of
//! `refresh_badges --output DIR`): a banner of the frozen stages (who,
//! since when, why) at the top, each stage's badge inlined as SVG, the
//! ►► / ⚠ markers between stages, frozen and down stages in the headers,
//! the hosts that disagree or are broken, the unreachable hosts, the time
//! of the refresh and a legend of the colours.
//!
//! The page loads nothing: inline CSS, inline SVG, UTF-8, and one small
//! inline script. It reads on a laptop as a table, on a phone (below
//! 40rem) as one card per package, never wider than the screen, and on a
//! wall screen (from 100rem, 1600 px) in large type across the whole
//! width. It can reload itself (`<meta http-equiv="refresh">`, every
//! `dashboard_refresh`); the script only says how old the page is in
//! words and, once it is older than three reload intervals (the job that
//! writes it has stopped), marks it stale. Without JavaScript the page
//! reads the same, with the time of the refresh as written. Every text
//! that came from a host or the configuration is HTML-escaped, and host
//! text has its control characters shown escaped as on the terminal
//! (`text::one_line`).
//!
//! Pure apart from the writer: the time of the refresh is passed in, so
//! the same input gives the same bytes. It must not decide what a badge
//! says or which colour it has (that is `badges`), nor draw one (`badge`).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use crate::badge::{Badge, Meaning};
use crate::badges::Board;
use crate::matrix::{Column, Marker, Matrix};
use crate::package::PackageName;

/// What the page says about itself, beside the matrix.
#[derive(Debug, Clone, Copy)]
pub struct Dashboard<'a> {
    /// When the hosts were read: RFC 3339 UTC, shown as given.
    pub refreshed: &'a str,
    /// `dashboard_refresh`: how often the page reloads itself (`None`:
    /// never); older than [`STALE_AFTER`] of these, it shows itself stale.
    pub refresh: Option<Duration>,
    /// The last changes on the hosts (the timeline of `dashboard_changes`),
    /// listed under the matrix ([`super::changes`]); `None`: no section.
    pub changes: Option<&'a super::changes::LastChanges>,
}

/// How many reload intervals old a page may be before it shows itself
/// stale: the job that writes it may be late once or twice (a slow
/// host), not three times.
pub const STALE_AFTER: u32 = 3;

/// Write the dashboard page for the matrix `m` and its badges `board`, as
/// `dashboard` says.
pub fn html(
    m: &Matrix,
    board: &Board,
    dashboard: &Dashboard<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut page = Page::default();
    page.head(dashboard.refresh);
    page.header(m, dashboard);
    page.frozen(m);
    page.alerts(m);
    page.closed(m);
    page.matrix(m, board);
    if let Some(c) = dashboard.changes {
        super::changes::section(c, &mut page.s);
    }
    page.details(m, board);
    page.unreachable(m);
    page.legend();
    page.s.push_str("</main>\n<script>");
    page.s.push_str(SCRIPT);
    page.s.push_str("</script>\n</body>\n</html>\n");
    out.write_all(page.s.as_bytes())
}

/// The page being written, and how many badges it holds so far (each
/// inlined badge gets its own suffix for the ids inside it).
#[derive(Default)]
struct Page {
    s: String,
    badges: usize,
}

const CSS: &str = "\
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--card:#f6f8fa}
.pending{color:#2c7a14}
.regression{color:#c9301c}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--line:#30363d;--card:#161b22}.pending{color:#56d364}.regression{color:#ff7b72}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0 auto;max-width:80rem;padding:1rem;font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",\"DejaVu Sans\",sans-serif;color:var(--fg);background:var(--bg);overflow-wrap:anywhere}
h1{font-size:1.4rem;margin:0 0 .2rem}
h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
h3{font-size:1rem;margin:.8rem 0 .3rem}
ul{margin:0;padding-left:1.2rem}
li{margin:.2rem 0}
.meta{color:var(--muted);margin:0 0 1rem}
.scroll{display:inline-block;max-width:100%;overflow-x:auto;border:1px solid var(--line);border-radius:6px}
.matrix{border-collapse:collapse}
.matrix th,.matrix td{padding:.45rem .6rem;text-align:left;vertical-align:middle;white-space:nowrap}
.matrix thead th{background:var(--card);border-bottom:1px solid var(--line);font-weight:600}
.matrix thead td{background:var(--card);border-bottom:1px solid var(--line)}
.matrix tbody tr+tr>*{border-top:1px solid var(--line)}
.matrix td.mk{padding:.45rem .15rem;text-align:center;font-size:1.1rem}
.sym{display:inline-block}
.mk-label,.cell .stage{display:none}
.badge{display:inline-block;vertical-align:middle;max-width:100%;line-height:0;overflow-x:auto}
.badge svg{display:block;max-width:100%;height:auto}
.tag{display:inline-block;font-size:.75rem;line-height:1.4;padding:0 .35rem;border-radius:3px;margin-left:.35rem;font-weight:600;vertical-align:middle;white-space:nowrap}
.tag.frozen{background:#9cd3f5;color:#0b3954}
.tag.alerts{background:#f7c6c6;color:#6b0f0f}
.tag.closed{background:#e8dcf5;color:#3b1f5c}
.tag.down{background:#e05d44;color:#fff}
.tag.held{border:1px solid var(--line);color:var(--muted);font-weight:400}
.hosts{list-style:none;padding:0}
.hosts li{display:flex;flex-wrap:wrap;align-items:center;gap:.3rem .6rem}
.host{font-family:ui-monospace,\"DejaVu Sans Mono\",monospace;min-width:8rem}
.legend{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(18rem,1fr));gap:.2rem 1.5rem}
.legend li{display:flex;align-items:baseline;gap:.5rem}
.swatch{flex:none;display:inline-block;width:1.6rem;height:.9rem;border-radius:3px;position:relative;top:.1rem}
.banner{margin:0 0 1.2rem;padding:.6rem 1rem;border-left:.4rem solid #1f6feb;border-radius:6px;background:#9cd3f5;color:#0b3954}
.banner h2{margin:0 0 .3rem;font-size:1.15em}
.banner ul{list-style:none;padding:0}
.banner li{margin:.15rem 0}
.stale-note{margin:0 0 1rem;padding:.5rem 1rem;border-radius:6px;background:#c9301c;color:#fff;font-weight:700}
html.stale main>:not(.banner){opacity:.6}
html.stale body{outline:.4rem dashed #c9301c;outline-offset:-.4rem}
@media (min-width:100rem){
body{max-width:none;padding:1.5rem 2.5rem;font-size:clamp(15px,1.25vw,40px)}
h1{font-size:1.8em}
h2{font-size:1.3em}
h3{font-size:1.1em}
.scroll{display:block}
.matrix{width:100%;font-size:clamp(24px,1.6vw,48px)}
.matrix th,.matrix td{padding:.35em .5em}
.matrix td.mk{font-size:1em}
.badge svg{width:auto;height:1.6em}
.tag{font-size:.6em}
}
@media (max-width:40rem){
body{padding:.75rem}
.scroll{display:block;border:0;overflow:visible}
.matrix,.matrix tbody,.matrix tr,.matrix th,.matrix td{display:block}
.matrix thead{display:none}
.matrix tbody tr{border:1px solid var(--line);border-radius:6px;margin:0 0 .75rem;padding:.5rem .75rem}
.matrix tbody tr+tr>*{border-top:0}
.matrix th,.matrix td{padding:.2rem 0;white-space:normal}
.matrix th[scope=row]{padding:0 0 .3rem;font-size:1.05rem}
.matrix td.cell{display:grid;grid-template-columns:5rem minmax(0,1fr);align-items:center;gap:.25rem .5rem}
.matrix td.cell .stage{display:block;color:var(--muted);font-size:.85rem;line-height:1.6}
.matrix td.cell .stage .tag{margin-left:0;margin-right:.3rem}
.matrix td.cell .badge{justify-self:start}
.matrix td.cell .tag.held{grid-column:2;justify-self:start;margin-left:0}
.matrix td.mk{text-align:left;padding:0 0 0 5.5rem;font-size:.9rem}
.matrix td.mk:empty{display:none}
.mk .pending .sym{transform:rotate(90deg)}
.mk-label{display:inline;color:var(--muted);margin-left:.4rem}
}
";

impl Page {
    fn head(&mut self, refresh: Option<Duration>) {
        self.s.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        );
        if let Some(every) = refresh {
            let _ = writeln!(
                self.s,
                "<meta http-equiv=\"refresh\" content=\"{}\">",
                every.as_secs()
            );
        }
        self.s
            .push_str("<title>Pipeline status · deployer</title>\n<style>\n");
        self.s.push_str(CSS);
        for meaning in Meaning::ALL {
            let _ = writeln!(
                self.s,
                ".m-{}{{background:{}}}",
                meaning.name(),
                meaning.colour()
            );
        }
        self.s.push_str("</style>\n</head>\n");
    }

    /// The `<body>`, the title, and the line that says when the page was
    /// made (the script adds how long ago, and whether that is stale) and
    /// what the hosts said.
    fn header(&mut self, m: &Matrix, dashboard: &Dashboard<'_>) {
        let sum = m.summary();
        let t = escape(dashboard.refreshed);
        let stale_after = dashboard
            .refresh
            .map_or(0, |every| every.as_secs() * u64::from(STALE_AFTER));
        let _ = write!(
            self.s,
            "<body data-stale-after=\"{stale_after}\">\n<header>\n<h1>Pipeline status</h1>\n"
        );
        if stale_after > 0 {
            // shown by the script only: without it, the time below says it
            let _ = writeln!(
                self.s,
                "<p class=\"stale-note\" id=\"stale\" role=\"alert\" hidden>Stale: this page is \
                 more than {} old (it reloads every {}). The job that writes it \
                 (<code>deployer refresh_badges --output</code>) may have stopped: what it shows may no \
                 longer be true.</p>",
                words(stale_after),
                words(stale_after / u64::from(STALE_AFTER))
            );
        }
        let _ = write!(
            self.s,
            "<p class=\"meta\">Refreshed <time datetime=\"{t}\" data-generated>{t}</time><span data-ago=\"{t}\"></span> · {} of {} hosts answered",
            sum.answered, sum.hosts
        );
        let counts = [
            (sum.pending, "rollout pending", "rollouts pending"),
            (sum.regressions, "regression", "regressions"),
            (sum.drift, "stage disagrees", "stages disagree"),
            (sum.broken, "broken package", "broken packages"),
            (sum.frozen, "stage frozen", "stages frozen"),
        ];
        for (n, one, many) in counts {
            if n > 0 {
                let _ = write!(self.s, " · {n} {}", if n == 1 { one } else { many });
            }
        }
        self.s.push_str("</p>\n</header>\n<main>\n");
    }

    fn matrix(&mut self, m: &Matrix, board: &Board) {
        self.s.push_str(
            "<section aria-labelledby=\"h-matrix\">\n<h2 id=\"h-matrix\">Versions by stage</h2>\n\
             <div class=\"scroll\" tabindex=\"0\">\n<table class=\"matrix\">\n<thead>\n<tr><th scope=\"col\">Package</th>",
        );
        for (i, c) in m.columns.iter().enumerate() {
            if i > 0 {
                self.s.push_str("<td class=\"mk\"></td>");
            }
            let _ = write!(self.s, "<th scope=\"col\">{}</th>", stage_heading(c));
        }
        self.s.push_str("</tr>\n</thead>\n<tbody>\n");
        for (r, row) in m.rows.iter().enumerate() {
            let _ = write!(
                self.s,
                "<tr><th scope=\"row\">{}</th>",
                escape(row.package.as_str())
            );
            for (i, c) in m.columns.iter().enumerate() {
                if i > 0 {
                    self.marker(row.markers.get(i - 1).copied());
                }
                // the phone's cards have no header row: each cell names its stage
                let _ = write!(
                    self.s,
                    "<td class=\"cell\"><span class=\"stage\">{}</span>",
                    stage_heading(c)
                );
                let badge = stage_badge(board, &c.name, &row.package)
                    .cloned()
                    .unwrap_or_else(|| crate::badges::stage_badge(m, r, i));
                self.badge(&badge);
                let held = row.held.get(i).copied().unwrap_or(0);
                let answered = c.hosts.saturating_sub(c.down);
                if held > 0 && held >= answered {
                    self.s.push_str("<span class=\"tag held\">held</span>");
                } else if held > 0 {
                    let _ = write!(
                        self.s,
                        "<span class=\"tag held\">held {held}/{answered}</span>"
                    );
                }
                self.s.push_str("</td>");
            }
            self.s.push_str("</tr>\n");
        }
        self.s.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    }

    /// The cell between two stages: empty unless a rollout is pending or
    /// a regression shows (`:empty` hides it on a phone).
    fn marker(&mut self, marker: Option<Marker>) {
        let (class, sym, label) = match marker {
            Some(Marker::Pending) => ("pending", "►►", "rollout pending"),
            Some(Marker::Regression) => ("regression", "⚠", "regression"),
            Some(Marker::Equal | Marker::Unknown) | None => {
                self.s.push_str("<td class=\"mk\"></td>");
                return;
            }
        };
        let _ = write!(
            self.s,
            "<td class=\"mk\"><span class=\"{class}\" role=\"img\" aria-label=\"{label}\" title=\"{label}\"><span class=\"sym\">{sym}</span></span><span class=\"mk-label\" aria-hidden=\"true\">{label}</span></td>"
        );
    }

    fn badge(&mut self, badge: &Badge) {
        self.badges += 1;
        let svg = inline_svg(&badge.svg(), &format!("b{}", self.badges));
        // CSS shrinks a badge wider than a phone's card, but to no less
        // than 4/5 of its size: past that it scrolls inside its own box
        let svg = match root_number(&svg, "width") {
            Some(w) if svg.starts_with("<svg") => format!(
                "<svg style=\"min-width:{}px\"{}",
                (w * 0.8).floor(),
                &svg[4..]
            ),
            _ => svg,
        };
        let _ = write!(self.s, "<span class=\"badge\">{svg}</span>");
    }

    fn details(&mut self, m: &Matrix, board: &Board) {
        if m.details.is_empty() {
            return;
        }
        self.s.push_str(
            "<section aria-labelledby=\"h-details\">\n<h2 id=\"h-details\">Hosts that disagree or are broken</h2>\n",
        );
        for d in &m.details {
            let _ = writeln!(
                self.s,
                "<h3>{} on {}</h3>\n<ul class=\"hosts\">",
                escape(d.package.as_str()),
                escape(&d.stage)
            );
            for (host, state) in &d.hosts {
                let _ = write!(
                    self.s,
                    "<li><span class=\"host\">{}</span>",
                    host_text(host)
                );
                match host_badge(board, &d.stage, host, &d.package) {
                    Some(b) => {
                        let b = b.clone();
                        self.badge(&b);
                    }
                    None => {
                        let _ = write!(self.s, "<span>{}</span>", host_text(&state.to_string()));
                    }
                }
                if d.held.contains(host) {
                    self.s.push_str("<span class=\"tag held\">held</span>");
                }
                self.s.push_str("</li>\n");
            }
            self.s.push_str("</ul>\n");
        }
        self.s.push_str("</section>\n");
    }

    /// The banner of the stages held by alerts (only with `[alerts]`): each
    /// alert's line, or that Alertmanager could not be asked (not "clear").
    fn alerts(&mut self, m: &Matrix) {
        use crate::alerts::Hold;
        let held: Vec<&Column> = m
            .columns
            .iter()
            .filter(|c| matches!(c.alerts, Some(Hold::Held { .. } | Hold::Unreachable { .. })))
            .collect();
        if held.is_empty() {
            return;
        }
        self.s.push_str(
            "<section class=\"banner alerts\" aria-labelledby=\"h-alerts\">\n<h2 id=\"h-alerts\">Held by alerts: new deploys and promotions refused</h2>\n<ul>\n",
        );
        for c in held {
            match &c.alerts {
                Some(Hold::Held { alerts }) => {
                    for a in alerts {
                        let _ = writeln!(
                            self.s,
                            "<li><strong>{}</strong>: {}</li>",
                            escape(&c.name),
                            host_text(a)
                        );
                    }
                }
                Some(Hold::Unreachable { error }) => {
                    let _ = writeln!(
                        self.s,
                        "<li><strong>{}</strong>: Alertmanager could not be asked ({}): not known to be clear</li>",
                        escape(&c.name),
                        host_text(error)
                    );
                }
                _ => {}
            }
        }
        self.s.push_str("</ul>\n</section>\n");
    }

    /// The banner of the stages closed now by their deploy windows or
    /// freeze dates, and when each opens.
    fn closed(&mut self, m: &Matrix) {
        let closed: Vec<(&Column, &crate::window::Shown)> = m
            .columns
            .iter()
            .filter_map(|c| c.window.as_ref().filter(|w| !w.open).map(|w| (c, w)))
            .collect();
        if closed.is_empty() {
            return;
        }
        self.s.push_str(
            "<section class=\"banner closed\" aria-labelledby=\"h-closed\">\n<h2 id=\"h-closed\">Closed now (deploy windows): new deploys and promotions refused</h2>\n<ul>\n",
        );
        for (c, w) in closed {
            let _ = writeln!(
                self.s,
                "<li><strong>{}</strong>: {}</li>",
                escape(&c.name),
                escape(&w.closed_line())
            );
        }
        self.s.push_str("</ul>\n</section>\n");
    }

    /// The banner of the frozen stages, at the top: who froze each, since
    /// when, and why (the hosts' words, escaped).
    fn frozen(&mut self, m: &Matrix) {
        let frozen: Vec<&Column> = m.columns.iter().filter(|c| c.freeze.is_some()).collect();
        if frozen.is_empty() {
            return;
        }
        self.s.push_str(
            "<section class=\"banner\" aria-labelledby=\"h-frozen\">\n<h2 id=\"h-frozen\">Frozen: new deploys and promotions refused</h2>\n<ul>\n",
        );
        for c in frozen {
            let Some(f) = &c.freeze else { continue };
            let since = host_text(&f.since);
            let _ = write!(
                self.s,
                "<li><strong>{}</strong>: frozen by {} since <time datetime=\"{since}\">{since}</time>: {}",
                escape(&c.name),
                host_text(&f.by),
                host_text(&f.reason)
            );
            // a record set under another stage's name freezes too
            if !f.applies_to(&c.name) {
                let _ = write!(
                    self.s,
                    " (a record for stage <code>{}</code>)",
                    host_text(&f.stage)
                );
            }
            let _ = write!(self.s, "<span data-ago=\"{since}\"></span>");
            self.s.push_str("</li>\n");
        }
        self.s.push_str("</ul>\n</section>\n");
    }

    fn unreachable(&mut self, m: &Matrix) {
        if m.unreachable.is_empty() {
            return;
        }
        self.s.push_str(
            "<section aria-labelledby=\"h-unreachable\">\n<h2 id=\"h-unreachable\">Unreachable hosts</h2>\n<ul class=\"hosts\">\n",
        );
        for u in &m.unreachable {
            let _ = writeln!(
                self.s,
                "<li><span class=\"host\">{}</span><span>({}) {}</span></li>",
                host_text(&u.host),
                escape(&u.stage),
                host_text(&u.error.to_string())
            );
        }
        self.s.push_str("</ul>\n</section>\n");
    }

    fn legend(&mut self) {
        self.s.push_str(
            "<section aria-labelledby=\"h-legend\">\n<h2 id=\"h-legend\">What the colours mean</h2>\n<ul class=\"legend\">\n",
        );
        for meaning in Meaning::ALL {
            let _ = writeln!(
                self.s,
                "<li><span class=\"swatch m-{}\"></span><span><strong>{}</strong>: {}</span></li>",
                meaning.name(),
                meaning.name().replace('-', " "),
                escape(meaning.legend())
            );
        }
        self.s.push_str("</ul>\n</section>\n");
    }
}

/// `secs` in words, for people: `45 seconds`, `1 minute`, `5 minutes`,
/// `2 hours`, `1 day` (the largest unit that fits, whole).
fn words(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 => (s / 86_400, "day"),
        s if s >= 3_600 => (s / 3_600, "hour"),
        s if s >= 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The page's one script, run as it loads and every 15 seconds: after
/// each `data-ago` element, how long ago its time was, in words; and,
/// when the page is older than the body's `data-stale-after` seconds
/// (not 0), the `stale` class on the document and the stale note shown.
/// It reads the page's own attributes only, and loads nothing.
const SCRIPT: &str = "
(function () {
  var d = document, made = d.querySelector('time[data-generated]');
  var after = Number(d.body.getAttribute('data-stale-after')) || 0;
  var units = [[86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  function words(s) {
    s = Math.max(0, Math.floor(s));
    for (var i = 0; i < units.length; i++) {
      if (s >= units[i][0] || i === units.length - 1) {
        var n = Math.floor(s / units[i][0]);
        return n + ' ' + units[i][1] + (n === 1 ? '' : 's');
      }
    }
  }
  function tick() {
    var now = Date.now();
    d.querySelectorAll('[data-ago]').forEach(function (e) {
      var t = Date.parse(e.getAttribute('data-ago'));
      e.textContent = isNaN(t) ? '' : ' (' + words((now - t) / 1000) + ' ago)';
    });
    var t = made ? Date.parse(made.getAttribute('datetime')) : NaN;
    var stale = after > 0 && !isNaN(t) && (now - t) / 1000 > after;
    d.documentElement.classList.toggle('stale', stale);
    var note = d.getElementById('stale');
    if (note) { note.hidden = !stale; }
  }
  tick();
  setInterval(tick, 15000);
})();
";

/// A stage's name with its `frozen` (who, since, why on hover) and
/// `N/M down` tags, as HTML.
fn stage_heading(c: &Column) -> String {
    let mut h = escape(&c.name).into_owned();
    if let Some(f) = &c.freeze {
        let _ = write!(
            h,
            " <span class=\"tag frozen\" title=\"{}\">frozen</span>",
            host_text(&f.describe())
        );
    }
    match &c.alerts {
        Some(crate::alerts::Hold::Held { alerts }) => {
            let _ = write!(
                h,
                " <span class=\"tag alerts\" title=\"{}\">held by alerts</span>",
                host_text(&alerts.join("; "))
            );
        }
        Some(crate::alerts::Hold::Unreachable { error }) => {
            let _ = write!(
                h,
                " <span class=\"tag alerts\" title=\"{}\">alerts unknown</span>",
                host_text(error)
            );
        }
        _ => {}
    }
    if let Some(w) = c.window.as_ref().filter(|w| !w.open) {
        let until = w
            .until_shown
            .as_deref()
            .map_or(String::new(), |t| format!(" until {t}"));
        let _ = write!(
            h,
            " <span class=\"tag closed\" title=\"{}\">closed{}</span>",
            escape(&w.closed_line()),
            escape(&until)
        );
    }
    if c.down > 0 {
        let _ = write!(
            h,
            " <span class=\"tag down\">{}/{} down</span>",
            c.down, c.hosts
        );
    }
    h
}

fn stage_badge<'a>(board: &'a Board, stage: &str, package: &PackageName) -> Option<&'a Badge> {
    board
        .stages
        .iter()
        .find(|b| b.stage == stage && &b.package == package)
        .map(|b| &b.badge)
}

fn host_badge<'a>(
    board: &'a Board,
    stage: &str,
    host: &str,
    package: &PackageName,
) -> Option<&'a Badge> {
    board
        .hosts
        .iter()
        .find(|b| b.stage == stage && b.host == host && &b.package == package)
        .map(|b| &b.badge)
}

/// `s` safe inside HTML text and quoted attribute values.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::escape_markup(s)
}

/// Text from a host: control characters (bidirectional overrides,
/// newlines) shown escaped as on the terminal, then HTML-escaped.
fn host_text(s: &str) -> String {
    escape(&crate::text::one_line(s)).into_owned()
}

/// A standalone badge SVG made fit to sit inside the page: without an XML
/// declaration, with a `viewBox` so CSS can shrink a very wide badge to the
/// screen, and with every id suffixed by `-{suffix}` (and the references to
/// it), so that two identical badges on one page do not share an id.
fn inline_svg(svg: &str, suffix: &str) -> String {
    let mut s = svg.trim();
    if s.starts_with("<?xml") {
        if let Some(end) = s.find("?>") {
            s = s[end + 2..].trim_start();
        }
    }
    let mut s = with_view_box(s);
    for id in ids(&s) {
        let new = format!("{id}-{suffix}");
        s = s
            .replace(&format!(" id=\"{id}\""), &format!(" id=\"{new}\""))
            .replace(&format!("url(#{id})"), &format!("url(#{new})"))
            .replace(&format!("href=\"#{id}\""), &format!("href=\"#{new}\""))
            .replace(
                &format!("aria-labelledby=\"{id}\""),
                &format!("aria-labelledby=\"{new}\""),
            );
    }
    s
}

/// `svg` with `viewBox="0 0 W H"` on its root element when it has a
/// numeric width and height but no view box.
fn with_view_box(svg: &str) -> String {
    if !svg.starts_with("<svg") || root_attr(svg, "viewBox").is_some() {
        return svg.to_string();
    }
    match (root_number(svg, "width"), root_number(svg, "height")) {
        (Some(w), Some(h)) => format!("<svg viewBox=\"0 0 {w} {h}\"{}", &svg[4..]),
        _ => svg.to_string(),
    }
}

/// The value of the attribute `name` of the root element of `svg`.
fn root_attr<'a>(svg: &'a str, name: &str) -> Option<&'a str> {
    let root = &svg[..svg.find('>')?];
    let at = root.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&root[at..at + root[at..].find('"')?])
}

/// [`root_attr`], if it is a number.
fn root_number(svg: &str, name: &str) -> Option<f64> {
    root_attr(svg, name)?.parse().ok()
}

/// The values of the `id` attributes in `svg`, in order, each once.
fn ids(svg: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(at) = rest.find(" id=\"") {
        rest = &rest[at + 5..];
        let Some(end) = rest.find('"') else { break };
        let id = &rest[..end];
        if !id.is_empty() && !found.iter().any(|f| f == id) {
            found.push(id.to_string());
        }
        rest = &rest[end..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::badges::board;
    use crate::matrix::tests::{down, host, pk, stages};
    use crate::matrix::{build, HostReport};

    const NOW: &str = "2026-11-22T01:02:03Z";

    /// Pending (fastpath test ►► hel), regression (analysis hel ⚠ prod),
    /// a mixed stage (prod's fastpath), a broken package (hel's detector),
    /// a frozen stage with a hostile reason, an unreachable host.
    fn sample() -> (Matrix, Vec<HostReport>) {
        let mut reports = vec![
            host(
                "test",
                "test-1",
                &[
                    ("ooni-api", "1.0.79~pr751-194"),
                    ("fastpath", "0.81~pr748-191"),
                    ("analysis", "1.9~pr659-61"),
                    ("detector", "-"),
                ],
            ),
            host(
                "hel",
                "hel-1",
                &[
                    ("ooni-api", "1.0.79~pr751-194"),
                    ("fastpath", "0.77~pr705-119"),
                    ("analysis", "1.9~pr659-61"),
                    ("detector", "0.3~pr651-98!"),
                ],
            ),
            host(
                "prod",
                "prod-1",
                &[
                    ("ooni-api", "1.0.79~pr751-194^"),
                    ("fastpath", "0.77~pr705-119"),
                    ("analysis", "1.10~pr692-102"),
                    ("detector", "-"),
                ],
            ),
            host(
                "prod",
                "prod-2",
                &[
                    ("ooni-api", "1.0.79~pr751-194"),
                    ("fastpath", "0.76~pr700-100"),
                    ("analysis", "1.10~pr692-102"),
                    ("detector", "-"),
                ],
            ),
            down("prod", "prod-3"),
        ];
        if let Ok(s) = &mut reports[2].result {
            s.freezes.push(crate::freeze::Freeze {
                stage: "prod".into(),
                by: "bob@desk".into(),
                since: "2026-11-21T07:30:05Z".into(),
                reason: "<script>alert(1)</script> & \"incident\" 'A'".into(),
            });
        }
        let m = build(
            &pk(&["ooni-api", "fastpath", "analysis", "detector"]),
            &stages(&[("test", 1), ("hel", 1), ("prod", 3)]),
            &reports,
        );
        (m, reports)
    }

    fn page(m: &Matrix, reports: &[HostReport]) -> String {
        page_every(m, reports, Some(Duration::from_secs(60)))
    }

    fn page_every(m: &Matrix, reports: &[HostReport], refresh: Option<Duration>) -> String {
        let mut buf = Vec::new();
        let dashboard = Dashboard {
            refreshed: NOW,
            refresh,
            changes: None,
        };
        html(m, &board(m, reports), &dashboard, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn the_page_reloads_itself_as_configured_and_says_when_it_is_stale() {
        let (m, reports) = sample();
        let out = page_every(&m, &reports, Some(Duration::from_secs(90)));
        let head = &out[..out.find("</head>").unwrap()];
        assert_eq!(
            head.matches("<meta http-equiv=\"refresh\" content=\"90\">")
                .count(),
            1,
            "{head}"
        );
        assert!(out.contains("<body data-stale-after=\"270\">"), "{out}");
        assert!(out.contains(
            "<p class=\"stale-note\" id=\"stale\" role=\"alert\" hidden>Stale: this page is more than 4 minutes old (it reloads every 1 minute)."
        ));
        // the time, machine-readable, and a place for "(N minutes ago)"
        assert!(out.contains(&format!(
            "Refreshed <time datetime=\"{NOW}\" data-generated>{NOW}</time><span data-ago=\"{NOW}\"></span>"
        )));
        // off: no reload, no stale note, the time still there
        let out = page_every(&m, &reports, None);
        assert!(!out.contains("http-equiv"), "{out}");
        assert!(!out.contains("id=\"stale\""), "{out}");
        assert!(out.contains("<body data-stale-after=\"0\">"), "{out}");
        assert!(out.contains(&format!("<time datetime=\"{NOW}\" data-generated>")));
    }

    #[test]
    fn stages_closed_by_their_windows_are_a_banner_and_a_tag() {
        let (mut m, reports) = sample();
        assert!(!page(&m, &reports).contains("h-closed"));
        m.columns[2].window = Some(crate::window::Shown::closed_example());
        let out = page(&m, &reports);
        assert!(out.contains("<h2 id=\"h-closed\">Closed now (deploy windows): new deploys and promotions refused</h2>"), "{out}");
        assert!(out.contains("<li><strong>prod</strong>: outside its deploy windows (Mon-Fri 09:00-12:00, Europe/Rome); opens Mon 2026-12-14 09:00 CET (Europe/Rome)</li>"), "{out}");
        assert!(
            out.contains(">closed until Mon 2026-12-14 09:00 CET (Europe/Rome)</span>"),
            "{out}"
        );
    }

    #[test]
    fn stages_held_by_alerts_are_a_banner_and_a_tag() {
        use crate::alerts::Hold;
        let (mut m, reports) = sample();
        assert!(!page(&m, &reports).contains("h-alerts"));
        m.columns[0].alerts = Some(Hold::Clear);
        assert!(!page(&m, &reports).contains("h-alerts"));
        m.columns[1].alerts = Some(Hold::Unreachable {
            error: "HTTP 500".into(),
        });
        m.columns[2].alerts = Some(Hold::Held {
            alerts: vec!["Down <b> {} since x: \u{202e}".into()],
        });
        let out = page(&m, &reports);
        assert!(
            out.contains(
                "<h2 id=\"h-alerts\">Held by alerts: new deploys and promotions refused</h2>"
            ),
            "{out}"
        );
        assert!(
            out.contains("<li><strong>prod</strong>: Down &lt;b&gt; {} since x: \\u{202e}</li>"),
            "{out}"
        );
        assert!(out.contains("<li><strong>hel</strong>: Alertmanager could not be asked (HTTP 500): not known to be clear</li>"), "{out}");
        assert!(
            out.contains("<span class=\"tag alerts\" title=\"HTTP 500\">alerts unknown</span>"),
            "{out}"
        );
        assert!(out.contains(">held by alerts</span>"), "{out}");
        assert!(!out.contains('\u{202e}'));
    }

    #[test]
    fn frozen_stages_are_a_banner_above_the_matrix() {
        let (m, reports) = sample();
        let out = page(&m, &reports);
        let banner = out.find("<section class=\"banner\"").expect("a banner");
        assert!(banner < out.find("<table class=\"matrix\">").unwrap());
        assert!(out.find("</header>").unwrap() < banner);
        assert_eq!(out.matches("<section class=\"banner\"").count(), 1);
        let banner = &out[banner..banner + out[banner..].find("</section>").unwrap()];
        assert!(
            banner.contains(
                "<li><strong>prod</strong>: frozen by bob@desk since <time datetime=\"2026-11-21T07:30:05Z\">2026-11-21T07:30:05Z</time>: \
                 &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;incident&quot; &apos;A&apos;<span data-ago=\"2026-11-21T07:30:05Z\"></span></li>"
            ),
            "{banner}"
        );
        // no freeze, no banner
        let reports = [host("test", "t1", &[("fastpath", "1.0")])];
        let m = build(&pk(&["fastpath"]), &stages(&[("test", 1)]), &reports);
        assert!(!page(&m, &reports).contains("class=\"banner\""));
    }

    #[test]
    fn a_freeze_time_from_a_host_cannot_break_out_of_its_attribute() {
        let (_, mut reports) = sample();
        if let Ok(s) = &mut reports[2].result {
            s.freezes[0].since = "now\"><script>x</script>".into();
        }
        let m = build(
            &pk(&["ooni-api", "fastpath", "analysis", "detector"]),
            &stages(&[("test", 1), ("hel", 1), ("prod", 3)]),
            &reports,
        );
        let out = page(&m, &reports);
        assert_eq!(out.matches("<script").count(), 1, "{out}");
        assert!(out.contains("datetime=\"now&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
    }

    #[test]
    fn ages_in_words() {
        for (secs, want) in [
            (0, "0 seconds"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "1 minute"),
            (270, "4 minutes"),
            (3_600, "1 hour"),
            (7_199, "1 hour"),
            (86_400 * 3, "3 days"),
        ] {
            assert_eq!(words(secs), want, "{secs}");
        }
    }

    #[test]
    fn host_text_is_escaped() {
        let (mut m, reports) = sample();
        m.unreachable[0].error = crate::error::HostError::Connect {
            addr: "10.0.0.1:22".into(),
            message: "refused <b>&\u{202e}\nerror".into(),
        };
        let out = page(&m, &reports);
        // the page's own script only
        assert_eq!(out.matches("<script").count(), 1, "{out}");
        assert!(!out.contains("<script>alert"), "{out}");
        assert!(!out.contains("<b>"), "{out}");
        assert!(!out.contains('\u{202e}'), "{out}");
        assert!(
            out.contains(
                "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;incident&quot; &apos;A&apos;"
            ),
            "{out}"
        );
        assert!(
            out.contains("refused &lt;b&gt;&amp;\\u{202e}\\nerror"),
            "{out}"
        );
    }

    #[test]
    fn configured_names_are_escaped() {
        let stage = "prod<i>\"&";
        let reports = [host(stage, "h<1>", &[("fastpath", "1.0-1!")])];
        let m = build(&pk(&["fastpath"]), &stages(&[(stage, 2)]), &reports);
        let out = page(&m, &reports);
        assert!(!out.contains("<i>"), "{out}");
        assert!(
            out.contains("<th scope=\"col\">prod&lt;i&gt;&quot;&amp;"),
            "{out}"
        );
        assert!(
            out.contains("<span class=\"host\">h&lt;1&gt;</span>"),
            "{out}"
        );
        assert!(
            out.contains("<h3>fastpath on prod&lt;i&gt;&quot;&amp;</h3>"),
            "{out}"
        );
    }

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape("a<b>&\"c'"),
            "a&lt;b&gt;&amp;&quot;c&apos;".to_string()
        );
        assert_eq!(escape("0.81~pr748-191"), "0.81~pr748-191");
    }

    #[test]
    fn every_package_stage_and_badge_is_on_the_page() {
        let (m, reports) = sample();
        let b = board(&m, &reports);
        let out = page(&m, &reports);
        for p in ["ooni-api", "fastpath", "analysis", "detector"] {
            assert!(out.contains(&format!("<th scope=\"row\">{p}</th>")), "{p}");
        }
        for s in ["test", "hel", "prod"] {
            assert!(out.contains(&format!("<th scope=\"col\">{s}")), "{s}");
        }
        // one badge per stage and package, plus one per host of each detail
        let detail_hosts: usize = m.details.iter().map(|d| d.hosts.len()).sum();
        assert_eq!(
            out.matches("<span class=\"badge\"><svg").count(),
            b.stages.len() + detail_hosts
        );
        for sb in &b.stages {
            let message = escape(&sb.badge.message);
            assert!(out.contains(message.as_ref()), "{message}");
        }
        for v in ["1.0.79~pr751-194", "0.81~pr748-191", "0.76~pr700-100"] {
            assert!(out.contains(v), "{v}");
        }
        assert!(out.contains("<span class=\"tag down\">1/3 down</span>"));
        assert!(out.contains("<span class=\"tag frozen\" title=\"frozen by bob@desk"));
        assert!(out.contains("<span class=\"tag held\">held 1/2</span>"));
        assert!(out.contains("<span class=\"host\">prod-3</span>"));
        assert!(out.contains(&format!(
            "<time datetime=\"{NOW}\" data-generated>{NOW}</time>"
        )));
        for meaning in Meaning::ALL {
            assert!(out.contains(meaning.legend()), "{meaning:?}");
            assert!(out.contains(&format!(
                ".m-{}{{background:{}}}",
                meaning.name(),
                meaning.colour()
            )));
        }
    }

    #[test]
    fn markers_have_a_text_alternative() {
        let (m, reports) = sample();
        let out = page(&m, &reports);
        let pending = "role=\"img\" aria-label=\"rollout pending\"";
        let regression = "role=\"img\" aria-label=\"regression\"";
        let s = m.summary();
        assert!(s.pending > 0 && s.regressions > 0, "{s:?}");
        assert_eq!(out.matches(pending).count(), s.pending);
        assert_eq!(out.matches(regression).count(), s.regressions);
        assert!(out.contains("<span class=\"sym\">►►</span>"));
        assert!(out.contains("<span class=\"sym\">⚠</span>"));
    }

    #[test]
    fn same_input_same_bytes() {
        let (m, reports) = sample();
        assert_eq!(page(&m, &reports), page(&m, &reports));
        let (m2, reports2) = sample();
        assert_eq!(page(&m, &reports), page(&m2, &reports2));
    }

    #[test]
    fn self_contained_with_its_one_script() {
        let (m, reports) = sample();
        let out = page(&m, &reports);
        assert!(out.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(out.contains("<meta charset=\"utf-8\">"));
        assert!(out.contains("<meta name=\"viewport\""));
        // badges shrink on a phone, down to 4/5 of their width
        assert_eq!(
            out.matches("<span class=\"badge\"><svg style=\"min-width:")
                .count(),
            out.matches("<span class=\"badge\">").count()
        );
        assert!(out.contains(" viewBox=\"0 0 "));
        for external in [" src=", "<link", "<img", "<iframe", "@import", "url(h"] {
            assert!(!out.contains(external), "{external}");
        }
        // one inline script, the page's own, at the end: it loads nothing
        assert_eq!(out.matches("<script").count(), 1);
        assert!(out.contains(&format!("<script>{SCRIPT}</script>\n</body>")));
        for call in [
            "fetch(",
            "XMLHttpRequest",
            "import(",
            "eval(",
            ".src",
            "innerHTML",
        ] {
            assert!(!SCRIPT.contains(call), "{call}");
        }
        // the only addresses are XML namespace names, which load nothing
        // (and the reload's `http-equiv`, which names a header)
        let namespaces = out.matches("=\"http://www.w3.org/").count();
        let reload = out.matches("<meta http-equiv=\"refresh\"").count();
        assert_eq!(reload, 1);
        assert_eq!(out.matches("http").count(), namespaces + reload, "{out}");
    }

    #[test]
    fn an_empty_pipeline_is_still_a_page() {
        let m = build(&[], &[], &[]);
        let out = page(&m, &[]);
        assert!(out.ends_with("</html>\n"));
        assert!(out.contains("0 of 0 hosts answered"));
    }

    #[test]
    fn identical_badges_get_distinct_ids() {
        let svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"90.5\" height=\"20\" aria-labelledby=\"t1\"><title id=\"t1\">a</title><linearGradient id=\"s1\"/><rect stroke-width=\"2\" fill=\"url(#s1)\"/><use href=\"#s1\"/></svg>";
        let a = inline_svg(svg, "b1");
        let b = inline_svg(svg, "b2");
        assert!(a.starts_with("<svg viewBox=\"0 0 90.5 20\" xmlns="), "{a}");
        for (s, n) in [(&a, "b1"), (&b, "b2")] {
            assert!(s.contains(&format!("aria-labelledby=\"t1-{n}\"")), "{s}");
            assert!(s.contains(&format!("<title id=\"t1-{n}\">")), "{s}");
            assert!(s.contains(&format!("id=\"s1-{n}\"")), "{s}");
            assert!(s.contains(&format!("fill=\"url(#s1-{n})\"")), "{s}");
            assert!(s.contains(&format!("href=\"#s1-{n}\"")), "{s}");
        }
        // a view box already there is kept as it is
        let boxed = "<svg viewBox=\"0 0 10 20\" width=\"10\" height=\"20\"></svg>";
        assert_eq!(inline_svg(boxed, "b3"), boxed);
    }
}
