//! The matrix as text for people and as JSON for scripts, written into any
//! writer. Pure apart from the writer: colour is decided by the caller and
//! passed in as a value. A package held with `apt-mark hold` shows as
//! `[held]` in its cell (`[held N/M]` when only N of the M answering hosts
//! hold it) and as `"held": true` on each host in the JSON. The dashboard
//! page (`index.html`) is in [`html`](fn@html), the metrics for
//! Prometheus in [`prometheus`](fn@prometheus).

use std::io::{self, Write};

use anstyle::{AnsiColor, Effects, Style};
use serde::Serialize;

use crate::matrix::{Cell, Marker, Matrix};
use crate::status::PackageState;

pub mod changes;
mod html;
mod prometheus;
pub use html::{html, Dashboard};
pub use prometheus::{prometheus, Extra as PrometheusExtra};

/// Whether to emit ANSI colours (decided once, by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// Plain text.
    #[default]
    Never,
    /// ANSI colours.
    Always,
}

#[derive(Clone, Copy)]
enum Paint {
    Green,
    Red,
    Yellow,
    Dim,
    Bold,
}

impl Color {
    fn paint(self, p: Paint, text: &str) -> String {
        let style = match p {
            Paint::Green => AnsiColor::Green.on_default(),
            Paint::Red => AnsiColor::Red.on_default(),
            Paint::Yellow => AnsiColor::Yellow.on_default(),
            Paint::Dim => Style::new().effects(Effects::DIMMED),
            Paint::Bold => Style::new().bold(),
        };
        self.styled(style, text)
    }

    fn styled(self, style: Style, text: &str) -> String {
        if self == Color::Never || text.is_empty() {
            return text.to_string();
        }
        format!("{}{text}{}", style.render(), style.render_reset())
    }

    /// `error`, the label of an error line: bold red when colouring.
    pub fn error_label(self) -> String {
        self.styled(AnsiColor::Red.on_default().bold(), "error")
    }

    /// `warning`, the label of a warning line: bold yellow when colouring.
    pub fn warning_label(self) -> String {
        self.styled(AnsiColor::Yellow.on_default().bold(), "warning")
    }
}

fn marker_text(m: Marker) -> (&'static str, Option<Paint>) {
    match m {
        Marker::Pending => ("►►", Some(Paint::Green)),
        Marker::Regression => ("⚠ ", Some(Paint::Red)),
        Marker::Equal | Marker::Unknown => ("  ", None),
    }
}

/// The cell's text, with the hold: `held` of the `answered` hosts hold it.
fn cell_text(cell: &Cell, held: usize, answered: usize) -> (String, Option<Paint>) {
    let (mut text, paint) = state_text(cell);
    if held > 0 && held == answered {
        text.push_str(" [held]");
    } else if held > 0 {
        text.push_str(&format!(" [held {held}/{answered}]"));
    }
    (text, paint)
}

fn state_text(cell: &Cell) -> (String, Option<Paint>) {
    match cell {
        Cell::Unknown => ("?".to_string(), Some(Paint::Dim)),
        Cell::Uniform(s @ PackageState::Broken { .. }) => (s.to_string(), Some(Paint::Red)),
        Cell::Uniform(s) if s.is_absent() => ("-".to_string(), None),
        Cell::Uniform(s) => (s.to_string(), None),
        Cell::Mixed { lowest, others } => {
            let base = if lowest.is_absent() {
                "-".to_string()
            } else {
                lowest.to_string()
            };
            let noun = if *others == 1 { "other" } else { "others" };
            (format!("{base} +{others} {noun}"), Some(Paint::Yellow))
        }
    }
}

fn header_text(c: &crate::matrix::Column) -> String {
    let mut h = c.name.clone();
    if c.freeze.is_some() {
        h.push_str(" [frozen]");
    }
    match &c.alerts {
        Some(crate::alerts::Hold::Held { .. }) => h.push_str(" [held by alerts]"),
        Some(crate::alerts::Hold::Unreachable { .. }) => h.push_str(" [alerts unknown]"),
        _ => {}
    }
    if c.window.as_ref().is_some_and(|w| !w.open) {
        h.push_str(" [closed]");
    }
    if c.down > 0 {
        h.push_str(&format!(" ({}/{} down)", c.down, c.hosts));
    }
    h
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(text: &str, paint: Option<Paint>, to: usize, color: Color) -> String {
    let fill = " ".repeat(to.saturating_sub(width(text)));
    match paint {
        Some(p) => format!("{}{fill}", color.paint(p, text)),
        None => format!("{text}{fill}"),
    }
}

/// Write the matrix table followed by the details an operator needs.
pub fn text(m: &Matrix, color: Color, out: &mut dyn Write) -> io::Result<()> {
    let first = "Package";
    let name_w = m
        .rows
        .iter()
        .map(|r| width(r.package.as_str()))
        .chain([width(first)])
        .max()
        .unwrap_or(0);
    let cells: Vec<Vec<(String, Option<Paint>)>> = m
        .rows
        .iter()
        .map(|r| {
            r.cells
                .iter()
                .zip(&m.columns)
                .enumerate()
                .map(|(i, (cell, c))| {
                    let held = r.held.get(i).copied().unwrap_or(0);
                    cell_text(cell, held, c.hosts - c.down)
                })
                .collect()
        })
        .collect();
    let headers: Vec<String> = m.columns.iter().map(header_text).collect();
    let col_w: Vec<usize> = (0..m.columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| width(&r[i].0))
                .chain([width(&headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let last = m.columns.len().saturating_sub(1);

    let mut line = pad(first, Some(Paint::Bold), name_w, color);
    for (i, h) in headers.iter().enumerate() {
        line.push_str("  ");
        let w = if i == last { 0 } else { col_w[i] };
        line.push_str(&pad(h, Some(Paint::Bold), w, color));
        if i != last {
            line.push_str("    ");
        }
    }
    writeln!(out, "{}", line.trim_end())?;
    for (r, row) in m.rows.iter().enumerate() {
        let mut line = pad(row.package.as_str(), None, name_w, color);
        for (i, (text, paint)) in cells[r].iter().enumerate() {
            line.push_str("  ");
            let w = if i == last { 0 } else { col_w[i] };
            line.push_str(&pad(text, *paint, w, color));
            if let Some(marker) = row.markers.get(i) {
                let (t, p) = marker_text(*marker);
                line.push(' ');
                line.push_str(&pad(t, p, 2, color));
                line.push(' ');
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }

    if !m.details.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            color.paint(Paint::Yellow, "Hosts that disagree or are broken:")
        )?;
        for d in &m.details {
            writeln!(out, "  {} on {}:", d.package, d.stage)?;
            let host_w = d.hosts.iter().map(|(h, _)| width(h)).max().unwrap_or(0);
            for (h, s) in &d.hosts {
                let held = if d.held.contains(h) { " [held]" } else { "" };
                writeln!(out, "    {}  {s}{held}", pad(h, None, host_w, color))?;
            }
        }
    }
    let frozen: Vec<_> = m.columns.iter().filter(|c| c.freeze.is_some()).collect();
    if !frozen.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            color.paint(Paint::Yellow, "Frozen stages (deploy and promote refused):")
        )?;
        for c in frozen {
            if let Some(f) = &c.freeze {
                // a record set under another stage's name freezes too
                let under = if f.applies_to(&c.name) {
                    String::new()
                } else {
                    format!(
                        " (a record for stage `{}`)",
                        crate::text::one_line(&f.stage)
                    )
                };
                writeln!(out, "  {}: {}{under}", c.name, f.describe())?;
            }
        }
    }
    alerts_text(m, color, out)?;
    closed_text(m, color, out)?;
    if !m.unreachable.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", color.paint(Paint::Red, "Unreachable hosts:"))?;
        let host_w = m
            .unreachable
            .iter()
            .map(|u| width(&u.host) + width(&u.stage) + 3)
            .max()
            .unwrap_or(0);
        for u in &m.unreachable {
            let label = format!("{} ({})", u.host, u.stage);
            // the reason may quote the host (sshd banners, stderr)
            let reason = crate::text::one_line(&u.error.to_string());
            writeln!(out, "  {}  {reason}", pad(&label, None, host_w, color))?;
        }
    }
    Ok(())
}

/// The stages held by alerts (or whose Alertmanager could not be asked),
/// one line per alert (the lines are safe already:
/// [`crate::alerts::Alert::describe`]).
fn alerts_text(m: &Matrix, color: Color, out: &mut dyn Write) -> io::Result<()> {
    use crate::alerts::Hold;
    let mut lines = Vec::new();
    for c in &m.columns {
        match &c.alerts {
            Some(Hold::Held { alerts }) => {
                lines.extend(alerts.iter().map(|a| format!("{}: {a}", c.name)));
            }
            Some(Hold::Unreachable { error }) => lines.push(format!(
                "{}: Alertmanager could not be asked ({error}): not known to be clear",
                c.name
            )),
            _ => {}
        }
    }
    holding_text(
        "Stages held by alerts (deploy and promote refused; rollback allowed):",
        &lines,
        color,
        out,
    )
}

/// The stages closed now by their deploy windows or freeze dates, and
/// when each opens.
fn closed_text(m: &Matrix, color: Color, out: &mut dyn Write) -> io::Result<()> {
    let lines: Vec<String> = m
        .columns
        .iter()
        .filter_map(|c| c.window.as_ref().filter(|w| !w.open).map(|w| (c, w)))
        .map(|(c, w)| format!("{}: {}", c.name, w.closed_line()))
        .collect();
    holding_text(
        "Stages closed now (deploy and promote refused; rollback allowed):",
        &lines,
        color,
        out,
    )
}

/// A list of what holds stages under its heading, after a blank line;
/// nothing when `lines` is empty.
fn holding_text(
    heading: &str,
    lines: &[String],
    color: Color,
    out: &mut dyn Write,
) -> io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "{}", color.paint(Paint::Yellow, heading))?;
    for l in lines {
        writeln!(out, "  {l}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonHost<'a> {
    host: &'a str,
    reachable: bool,
    error: Option<String>,
    packages:
        Option<std::collections::BTreeMap<&'a crate::package::PackageName, JsonHostPackage<'a>>>,
}

/// A package on a host: its state (`state`, `version`, `dpkg_state`) and,
/// like `dpkg_state` only when it applies, `"held": true`.
#[derive(Serialize)]
struct JsonHostPackage<'a> {
    #[serde(flatten)]
    state: &'a PackageState,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    held: bool,
}

#[derive(Serialize)]
struct JsonStage<'a> {
    name: &'a str,
    frozen: Option<&'a crate::freeze::Freeze>,
    /// Only with `[alerts]`: `{"state": "clear" | "held" | "unreachable", ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<&'a crate::alerts::Hold>,
    /// Only for a stage with deploy windows or freeze dates.
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<&'a crate::window::Shown>,
    hosts: Vec<JsonHost<'a>>,
}

#[derive(Serialize)]
struct JsonCell {
    stage: String,
    state: &'static str,
    lowest: Option<String>,
    highest: Option<String>,
    mixed: bool,
}

#[derive(Serialize)]
struct JsonCompare<'a> {
    left: &'a str,
    right: &'a str,
    result: Marker,
}

#[derive(Serialize)]
struct JsonPackage<'a> {
    name: &'a str,
    stages: Vec<JsonCell>,
    comparisons: Vec<JsonCompare<'a>>,
}

#[derive(Serialize)]
struct JsonUnreachable<'a> {
    stage: &'a str,
    host: &'a str,
    error: String,
}

#[derive(Serialize)]
struct JsonStatus<'a> {
    stages: Vec<JsonStage<'a>>,
    packages: Vec<JsonPackage<'a>>,
    unreachable: Vec<JsonUnreachable<'a>>,
    summary: crate::matrix::Summary,
}

/// Write the full status as one JSON document (shape: docs/reference.md,
/// "JSON shapes").
pub fn json(
    m: &Matrix,
    reports: &[crate::matrix::HostReport],
    out: &mut dyn Write,
) -> io::Result<()> {
    let stages = m
        .columns
        .iter()
        .map(|c| JsonStage {
            name: &c.name,
            frozen: c.freeze.as_ref(),
            alerts: c.alerts.as_ref(),
            window: c.window.as_ref(),
            hosts: reports
                .iter()
                .filter(|r| r.stage == c.name)
                .map(|r| JsonHost {
                    host: &r.host,
                    reachable: r.result.is_ok(),
                    error: r.result.as_ref().err().map(ToString::to_string),
                    packages: r.result.as_ref().ok().map(|s| {
                        s.packages
                            .iter()
                            .map(|(name, state)| {
                                let held = s.held.contains(name);
                                (name, JsonHostPackage { state, held })
                            })
                            .collect()
                    }),
                })
                .collect(),
        })
        .collect();
    let packages = m
        .rows
        .iter()
        .map(|row| JsonPackage {
            name: row.package.as_str(),
            stages: row
                .cells
                .iter()
                .zip(&m.columns)
                .map(|(cell, col)| {
                    let versions: Vec<_> = reports
                        .iter()
                        .filter(|r| r.stage == col.name)
                        .filter_map(|r| r.result.as_ref().ok())
                        .filter_map(|s| s.packages.get(&row.package))
                        .filter_map(PackageState::version)
                        .collect();
                    JsonCell {
                        stage: col.name.clone(),
                        state: match cell {
                            Cell::Unknown => "unknown",
                            Cell::Uniform(s) => s.kind(),
                            Cell::Mixed { .. } => "mixed",
                        },
                        lowest: versions.iter().min().map(ToString::to_string),
                        highest: versions.iter().max().map(ToString::to_string),
                        mixed: matches!(cell, Cell::Mixed { .. }),
                    }
                })
                .collect(),
            comparisons: row
                .markers
                .iter()
                .enumerate()
                .map(|(i, mk)| JsonCompare {
                    left: &m.columns[i].name,
                    right: &m.columns[i + 1].name,
                    result: *mk,
                })
                .collect(),
        })
        .collect();
    let doc = JsonStatus {
        stages,
        packages,
        unreachable: m
            .unreachable
            .iter()
            .map(|u| JsonUnreachable {
                stage: &u.stage,
                host: &u.host,
                error: u.error.to_string(),
            })
            .collect(),
        summary: m.summary(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::build;
    use crate::matrix::tests::{down, host, pk, stages};

    fn sample() -> (Matrix, Vec<crate::matrix::HostReport>) {
        let reports = vec![
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
                    ("analysis", "1.10~pr692-102"),
                    ("detector", "0.3~pr651-98!"),
                ],
            ),
            host(
                "prod",
                "prod-1",
                &[
                    ("ooni-api", "1.0.79~pr751-194"),
                    ("fastpath", "0.81~pr748-191"),
                    ("analysis", "1.10~pr692-102"),
                    ("detector", "-"),
                ],
            ),
            host(
                "prod",
                "prod-2",
                &[
                    ("ooni-api", "1.0.79~pr751-194"),
                    ("fastpath", "0.77~pr705-119"),
                    ("analysis", "1.10~pr692-102"),
                    ("detector", "-"),
                ],
            ),
            down("prod", "prod-3"),
        ];
        let m = build(
            &pk(&["ooni-api", "fastpath", "analysis", "detector"]),
            &stages(&[("test", 1), ("hel", 1), ("prod", 3)]),
            &reports,
        );
        (m, reports)
    }

    /// Holds on every host of a stage, and on one host of two.
    fn with_holds() -> (Matrix, Vec<crate::matrix::HostReport>) {
        let reports = vec![
            host("test", "test-1", &[("fastpath", "0.81~pr748-191^")]),
            host("prod", "prod-1", &[("fastpath", "0.77~pr705-119^")]),
            host("prod", "prod-2", &[("fastpath", "0.77~pr705-119")]),
        ];
        let m = build(
            &pk(&["fastpath"]),
            &stages(&[("test", 1), ("prod", 2)]),
            &reports,
        );
        (m, reports)
    }

    #[test]
    fn text_shows_holds() {
        let (m, _) = with_holds();
        insta::assert_snapshot!(render(&m, Color::Never));
    }

    #[test]
    fn json_marks_held_packages_only() {
        let (m, reports) = with_holds();
        let mut buf = Vec::new();
        json(&m, &reports, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let fastpath = |stage: usize, host: usize| {
            v["stages"][stage]["hosts"][host]["packages"]["fastpath"].clone()
        };
        assert_eq!(
            fastpath(0, 0),
            serde_json::json!({ "state": "installed", "version": "0.81~pr748-191", "held": true })
        );
        assert_eq!(fastpath(1, 0)["held"], true);
        assert_eq!(
            fastpath(1, 1),
            serde_json::json!({ "state": "installed", "version": "0.77~pr705-119" })
        );
    }

    fn render(m: &Matrix, color: Color) -> String {
        let mut buf = Vec::new();
        text(m, color, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn stages_closed_by_their_windows_say_until_when() {
        let (mut m, reports) = sample();
        let closed = crate::window::Shown::closed_example();
        m.columns[0].window = Some(crate::window::Shown {
            open: true,
            ..closed.clone()
        });
        m.columns[2].window = Some(closed);
        let out = render(&m, Color::Never);
        assert!(out.contains("prod [closed]"), "{out}");
        assert!(!out.contains("test [closed]"), "{out}");
        assert!(out.contains(
            "Stages closed now (deploy and promote refused; rollback allowed):\n  prod: outside \
             its deploy windows (Mon-Fri 09:00-12:00, Europe/Rome); opens Mon 2026-12-14 09:00 \
             CET (Europe/Rome)\n"
        ), "{out}");
        let mut buf = Vec::new();
        json(&m, &reports, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["stages"][0]["window"]["open"], true);
        assert_eq!(v["stages"][2]["window"]["open"], false);
        assert_eq!(
            v["stages"][2]["window"]["until"],
            "2026-12-14T09:00:00+01:00"
        );
        assert_eq!(v["stages"][2]["window"]["closed_by"], "outside_windows");
        assert!(v["stages"][1].get("window").is_none(), "{v}");
    }

    #[test]
    fn stages_held_by_alerts_are_named_and_an_unknown_hold_is_not_clear() {
        use crate::alerts::Hold;
        let (mut m, reports) = sample();
        let plain = render(&m, Color::Never);
        m.columns[0].alerts = Some(Hold::Clear);
        m.columns[1].alerts = Some(Hold::Unreachable {
            error: "it cannot be reached (ConnectionFailed)".into(),
        });
        m.columns[2].alerts = Some(Hold::Held {
            alerts: vec!["Down {severity=\"page\"} since 2026-12-07T11:00:00Z: down".into()],
        });
        let out = render(&m, Color::Never);
        assert!(out.contains("hel [alerts unknown]"), "{out}");
        assert!(out.contains("prod [held by alerts] (1/3 down)"), "{out}");
        assert!(!out.contains("test [") && plain.len() < out.len(), "{out}");
        assert!(out.contains(
            "Stages held by alerts (deploy and promote refused; rollback allowed):\n  \
             hel: Alertmanager could not be asked (it cannot be reached (ConnectionFailed)): not known to be clear\n  \
             prod: Down {severity=\"page\"} since 2026-12-07T11:00:00Z: down\n"
        ), "{out}");
        let mut buf = Vec::new();
        json(&m, &reports, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v["stages"][0]["alerts"],
            serde_json::json!({"state": "clear"})
        );
        assert_eq!(v["stages"][1]["alerts"]["state"], "unreachable");
        assert_eq!(v["stages"][2]["alerts"]["state"], "held");
        assert_eq!(
            v["stages"][2]["alerts"]["alerts"][0],
            "Down {severity=\"page\"} since 2026-12-07T11:00:00Z: down"
        );
        // without [alerts], no key at all
        m.columns.iter_mut().for_each(|c| c.alerts = None);
        let mut buf = Vec::new();
        json(&m, &reports, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert!(v["stages"][0].get("alerts").is_none(), "{v}");
    }

    #[test]
    fn text_without_colour() {
        let (m, _) = sample();
        insta::assert_snapshot!(render(&m, Color::Never));
    }

    #[test]
    fn text_with_colour() {
        let (m, _) = sample();
        insta::assert_snapshot!(render(&m, Color::Always));
    }

    #[test]
    fn columns_line_up_with_long_versions_and_markers() {
        let (m, _) = sample();
        let out = render(&m, Color::Never);
        let table: Vec<&str> = out.lines().take(5).collect();
        // every row's `hel` column starts where its header does
        let col = table[0].find("hel").unwrap();
        for row in &table[1..] {
            let chars: Vec<char> = row.chars().collect();
            let before: String = chars[..col].iter().collect();
            assert!(before.ends_with("  "), "row {row:?} not aligned at {col}");
            assert_ne!(chars[col], ' ', "row {row:?} has no value at {col}");
        }
    }

    #[test]
    fn no_escape_codes_without_colour() {
        let (m, _) = sample();
        assert!(!render(&m, Color::Never).contains('\x1b'));
        assert!(render(&m, Color::Always).contains("\x1b[32m►►"));
    }

    #[test]
    fn host_text_cannot_drive_the_terminal() {
        let (mut m, _) = sample();
        m.columns[2].freeze = Some(crate::freeze::Freeze {
            stage: "prod".into(),
            by: "eve\x1b]0;pwned\x07".into(),
            since: "now".into(),
            reason: "\x1b[2J\u{202e}ok".into(),
        });
        m.unreachable[0].error = crate::error::HostError::Connect {
            addr: "10.0.0.1:22".into(),
            message: "refused\x1b[2J\nerror: fake line".into(),
        };
        for color in [Color::Never, Color::Always] {
            let out = render(&m, color);
            let stripped = out
                .replace("\x1b[0m", "")
                .replace("\x1b[1m", "")
                .replace("\x1b[2m", "")
                .replace("\x1b[31m", "")
                .replace("\x1b[32m", "")
                .replace("\x1b[33m", "");
            assert!(!stripped.contains('\x1b'), "{out}");
            assert!(!out.contains('\u{202e}'), "{out}");
            assert!(!out.contains("\nerror: fake"), "{out}");
            assert!(
                out.contains(
                    "prod: frozen by eve\\x1b]0;pwned\\x07 since now: \\x1b[2J\\u{202e}ok"
                ),
                "{out}"
            );
            assert!(out.contains("refused\\x1b[2J\\nerror: fake line"), "{out}");
        }
    }

    #[test]
    fn a_freeze_for_another_stage_names_it() {
        let (mut m, _) = sample();
        m.columns[2].freeze = Some(crate::freeze::Freeze {
            stage: "production".into(),
            by: "bob@desk".into(),
            since: "now".into(),
            reason: "renamed".into(),
        });
        let out = render(&m, Color::Never);
        assert!(out.contains("prod [frozen]"), "{out}");
        assert!(
            out.contains(
                "  prod: frozen by bob@desk since now: renamed (a record for stage `production`)"
            ),
            "{out}"
        );
    }

    #[test]
    fn json_shape() {
        let (m, reports) = sample();
        let mut buf = Vec::new();
        json(&m, &reports, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        insta::assert_json_snapshot!(v);
    }
}
