//! `deploy_windows`, `freeze_dates` and `timezone` of `[stage:NAME]`, read
//! into a stage's [`crate::window::Rules`] (what they mean lives there).
//!
//! `deploy_windows` is a list of windows separated by commas, each `DAYS
//! HH:MM-HH:MM`: a day (`Mon` ... `Sun`) or a range of days (`Mon-Thu`;
//! a range may wrap around the week, `Fri-Mon` is Friday to Monday), the
//! start, and the end (exclusive; `24:00` is midnight at the day's end; an
//! end before the start crosses midnight). Windows may not overlap.
//! `freeze_dates` is a list of dates (`2027-04-05`) and inclusive ranges
//! (`2026-12-24..2027-01-02`) separated by commas. Both may go on in
//! indented lines, and both need `timezone`, an IANA name from the
//! system's time-zone data.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::window::{DateRange, Rules, Window, DAY, DAY_NAMES};

use super::value::Invalid;
use super::{ConfigError, Reader, Section};

const ACCEPTED_WINDOWS: &str = "accepted: windows separated by commas, each `DAYS HH:MM-HH:MM`: \
     a day `Mon` ... `Sun` or a range `Mon-Thu` (a range may wrap: `Fri-Mon`), a start and an \
     end from 00:00 to 24:00, the end exclusive; an end before the start crosses midnight \
     (`Fri 22:00-02:00`); windows may not overlap; e.g. `Mon-Thu 09:00-16:00, Fri 09:00-12:00`";

const ACCEPTED_DATES: &str = "accepted: dates `YYYY-MM-DD` and inclusive ranges \
     `YYYY-MM-DD..YYYY-MM-DD` separated by commas, in the stage's `timezone`; e.g. \
     `2026-12-24..2027-01-02, 2027-04-05`";

const ACCEPTED_ZONE: &str = "accepted: an IANA time zone name from the system's time-zone \
     data (/usr/share/zoneinfo), such as `Europe/Rome`, `America/New_York` or `UTC`";

/// A `timezone` value: the zone and its IANA name.
pub(crate) fn parse_timezone(s: &str) -> Result<(TimeZone, String), Invalid> {
    let name = s.trim();
    if name.contains(char::is_whitespace) || name.starts_with('/') || name.contains("..") {
        return Err(Invalid::new("not a time zone name", ACCEPTED_ZONE));
    }
    match TimeZone::get(name) {
        Ok(zone) => {
            let canonical = zone.iana_name().unwrap_or(name).to_string();
            Ok((zone, canonical))
        }
        Err(_) => Err(Invalid::new(
            "no such time zone in the system's time-zone data",
            ACCEPTED_ZONE,
        )),
    }
}

/// A `deploy_windows` value.
pub(crate) fn parse_windows(s: &str) -> Result<Vec<Window>, Invalid> {
    let bad = |part: &str, why: String| Invalid::new(format!("`{part}`: {why}"), ACCEPTED_WINDOWS);
    let mut windows: Vec<Window> = Vec::new();
    for raw in s.split(',') {
        let part = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if part.is_empty() {
            return Err(Invalid::new(
                "an empty window (two commas in a row, or one at an end)",
                ACCEPTED_WINDOWS,
            ));
        }
        let words: Vec<&str> = part.split(' ').collect();
        let [days, times] = words[..] else {
            return Err(bad(&part, "a window is `DAYS HH:MM-HH:MM`".into()));
        };
        let (days, days_text) = parse_days(days).map_err(|why| bad(&part, why))?;
        let Some((start, end)) = times.split_once('-') else {
            return Err(bad(&part, format!("`{times}` is not `HH:MM-HH:MM`")));
        };
        let start = parse_time(start).map_err(|why| bad(&part, why))?;
        let end = parse_time(end).map_err(|why| bad(&part, why))?;
        if start == DAY {
            return Err(bad(
                &part,
                "a window cannot start at 24:00; write 00:00 of the next day".into(),
            ));
        }
        if start == end {
            return Err(bad(
                &part,
                "the window is empty (it ends when it starts)".into(),
            ));
        }
        let w = Window {
            days,
            start,
            end,
            days_text,
        };
        if let Some(other) = windows.iter().find(|o| overlap(o, &w)) {
            return Err(bad(
                &part,
                format!("it overlaps `{other}`; merge them into one window, or shorten one"),
            ));
        }
        windows.push(w);
    }
    Ok(windows)
}

/// Whether two windows cover a common minute of the week.
fn overlap(a: &Window, b: &Window) -> bool {
    let (pa, pb) = (a.week_minutes(), b.week_minutes());
    pa.iter()
        .any(|&(f1, t1)| pb.iter().any(|&(f2, t2)| f1 < t2 && f2 < t1))
}

/// `Mon`, `mon-thu`, `Fri-Mon`: the days (Monday first) and the text,
/// normalised.
fn parse_days(s: &str) -> Result<([bool; 7], String), String> {
    let day = |d: &str| {
        DAY_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(d))
            .ok_or_else(|| format!("`{d}` is not a day (`Mon` ... `Sun`)"))
    };
    let mut days = [false; 7];
    match s.split_once('-') {
        None => {
            let d = day(s)?;
            days[d] = true;
            Ok((days, DAY_NAMES[d].to_string()))
        }
        Some((from, to)) => {
            let (from, to) = (day(from)?, day(to)?);
            if from == to {
                return Err(format!(
                    "`{s}` starts and ends on the same day; write `{}` for one day, or \
                     `Mon-Sun` for every day",
                    DAY_NAMES[from]
                ));
            }
            let mut d = from;
            loop {
                days[d] = true;
                if d == to {
                    break;
                }
                d = (d + 1) % 7;
            }
            Ok((days, format!("{}-{}", DAY_NAMES[from], DAY_NAMES[to])))
        }
    }
}

/// `09:00`, `9:30`, `24:00`: minutes after midnight.
fn parse_time(s: &str) -> Result<u16, String> {
    let not = || format!("`{s}` is not a time of day from 00:00 to 24:00");
    let (h, m) = s.split_once(':').ok_or_else(not)?;
    let digits = |t: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(not());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| not())?, m.parse().map_err(|_| not())?);
    if m > 59 || h > 24 || (h == 24 && m > 0) {
        return Err(not());
    }
    Ok(h * 60 + m)
}

/// A `freeze_dates` value.
pub(crate) fn parse_dates(s: &str) -> Result<Vec<DateRange>, Invalid> {
    let mut ranges = Vec::new();
    for raw in s.split(',') {
        let part = raw.trim();
        if part.is_empty() {
            return Err(Invalid::new(
                "an empty date (two commas in a row, or one at an end)",
                ACCEPTED_DATES,
            ));
        }
        let bad = |why: String| Invalid::new(format!("`{part}`: {why}"), ACCEPTED_DATES);
        let (first, last) = match part.split_once("..") {
            Some((a, b)) => (
                parse_date(a.trim()).map_err(bad)?,
                parse_date(b.trim()).map_err(bad)?,
            ),
            None => {
                let d = parse_date(part).map_err(bad)?;
                (d, d)
            }
        };
        if last < first {
            return Err(bad(format!(
                "the range ends ({last}) before it starts ({first})"
            )));
        }
        ranges.push(DateRange { first, last });
    }
    Ok(ranges)
}

/// `2027-04-05`, a date that exists.
fn parse_date(s: &str) -> Result<Date, String> {
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return Err(format!("`{s}` is not a date `YYYY-MM-DD`"));
    }
    s.parse::<Date>()
        .map_err(|_| format!("`{s}` is not a date of the calendar"))
}

impl<'a> Reader<'a> {
    /// The deploy windows of a `[stage:NAME]` section: `None` without
    /// `deploy_windows` and `freeze_dates`.
    pub(super) fn deploy_windows(
        &mut self,
        section: &Section<'a>,
    ) -> Result<Option<Rules>, ConfigError> {
        let windows = self.value(section, "deploy_windows", parse_windows)?;
        let dates = self.value(section, "freeze_dates", parse_dates)?;
        let zone = self.value(section, "timezone", parse_timezone)?;
        let name = section.name();
        if windows.is_none() && dates.is_none() {
            if zone.is_some() {
                let line = self.get(section, "timezone")?.and_then(|(_, l)| l);
                self.warn(
                    line.unwrap_or(section.line()),
                    format!(
                        "`timezone` in `[{name}]` has no effect without `deploy_windows` or \
                         `freeze_dates`"
                    ),
                );
            }
            return Ok(None);
        }
        let Some((zone, zone_name)) = zone else {
            let key = if windows.is_some() {
                "deploy_windows"
            } else {
                "freeze_dates"
            };
            let line = self.get(section, key)?.and_then(|(_, l)| l);
            return Err(self
                .error(
                    line,
                    format!("`{key}` in `[{name}]` needs `timezone`, the zone its times are in"),
                )
                .note(format!(
                    "add a line like `timezone = Europe/Rome` to `[{name}]` ({})",
                    ACCEPTED_ZONE.trim_start_matches("accepted: ")
                )));
        };
        Ok(Some(Rules {
            zone,
            zone_name,
            windows: windows.unwrap_or_default(),
            freeze_dates: dates.unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of a parse that must succeed (`Invalid` has no `Debug`).
    #[track_caller]
    fn ok<T>(r: Result<T, Invalid>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("{}; {}", e.reason, e.accepted),
        }
    }

    #[test]
    fn the_issue_example_parses_and_reads_back() {
        let w = ok(parse_windows("Mon-Thu 09:00-16:00, Fri 09:00-12:00"));
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].days, [true, true, true, true, false, false, false]);
        assert_eq!((w[0].start, w[0].end), (540, 960));
        assert_eq!(w[1].to_string(), "Fri 09:00-12:00");
        let d = ok(parse_dates("2026-12-24..2027-01-02, 2027-04-05"));
        assert_eq!(d[0].to_string(), "2026-12-24..2027-01-02");
        assert_eq!(d[1].first, d[1].last);
        let (_, name) = ok(parse_timezone("Europe/Rome"));
        assert_eq!(name, "Europe/Rome");
    }

    #[test]
    fn windows_cross_midnight_wrap_the_week_and_go_on_over_lines() {
        let w = ok(parse_windows(
            "Fri 22:00-02:00,\n  fri-mon 03:00-04:00, Sat 12:00-24:00",
        ));
        assert!(w[0].crosses_midnight());
        assert_eq!(w[1].days_text, "Fri-Mon");
        assert_eq!(w[1].days, [true, false, false, false, true, true, true]);
        assert_eq!(w[2].end, DAY);
        assert!(!w[2].crosses_midnight());
        // 9:05 with one hour digit is a time; 22:00-00:00 ends at midnight
        assert_eq!(ok(parse_windows("Sun 9:05-10:00"))[0].start, 545);
        assert!(ok(parse_windows("Sun 22:00-00:00"))[0].crosses_midnight());
    }

    #[track_caller]
    fn refused(s: &str, says: &str) {
        let e = parse_windows(s).unwrap_err();
        assert!(e.reason.contains(says), "{s}: {}", e.reason);
        assert!(e.accepted.contains("Mon-Thu 09:00-16:00"), "{}", e.accepted);
    }

    #[test]
    fn bad_windows_are_refused_naming_the_part_at_fault() {
        refused(
            "Mon 25:00-26:00",
            "`Mon 25:00-26:00`: `25:00` is not a time of day",
        );
        refused("Mon 09:60-10:00", "`09:60` is not a time");
        refused("Mon 24:00-02:00", "cannot start at 24:00");
        refused("Mon 9h-10h", "`9h` is not a time of day");
        refused("Mon 0900", "`0900` is not `HH:MM-HH:MM`");
        refused("Mon 09:00-09:00", "the window is empty");
        refused("Mon-Fri 09:00-17:00,", "an empty window");
        refused("Mon-Fri 09:00-17:00,, Sat 10:00-11:00", "an empty window");
        refused("Monday 09:00-17:00", "`Monday` is not a day");
        refused("Mon-Mon 09:00-17:00", "starts and ends on the same day");
        refused("Mon 09:00-17:00 Tue", "a window is `DAYS HH:MM-HH:MM`");
        ok(parse_windows("Mon-Fri 09:00-17:00"));
        refused(
            "Mon-Fri 09:00-17:00, Fri 09:00-12:00",
            "`Fri 09:00-12:00`: it overlaps `Mon-Fri 09:00-17:00`",
        );
        // a crossing window overlapping the next morning's, and across Sunday
        refused(
            "Mon 22:00-10:00, Tue 09:00-12:00",
            "overlaps `Mon 22:00-10:00`",
        );
        refused(
            "Sun 23:00-02:00, Mon 01:00-03:00",
            "overlaps `Sun 23:00-02:00`",
        );
        // touching is not overlapping
        ok(parse_windows("Mon 09:00-12:00, Mon 12:00-16:00"));
    }

    #[test]
    fn bad_dates_and_zones_are_refused() {
        let e = parse_dates("2027-01-02..2026-12-24").unwrap_err();
        assert!(
            e.reason
                .contains("ends (2026-12-24) before it starts (2027-01-02)"),
            "{}",
            e.reason
        );
        assert!(e.accepted.contains("YYYY-MM-DD..YYYY-MM-DD"));
        for (s, says) in [
            ("2027-02-30", "`2027-02-30` is not a date of the calendar"),
            ("27-04-05", "`27-04-05` is not a date `YYYY-MM-DD`"),
            ("2027-04-05,", "an empty date"),
            ("2027/04/05", "not a date"),
        ] {
            let e = parse_dates(s).unwrap_err();
            assert!(e.reason.contains(says), "{s}: {}", e.reason);
        }
        for z in [
            "Europe/Nowhere",
            "CET CEST",
            "/etc/passwd",
            "../../etc/passwd",
            "Mars/Olympus",
        ] {
            let e = parse_timezone(z).unwrap_err();
            assert!(e.accepted.contains("/usr/share/zoneinfo"), "{z}");
        }
    }

    const INI: &str = "[environment]\ndeb_packages = foo\nstages = test prod\n\
                       [stage:test]\nhosts = t1\n[stage:prod]\nhosts = p1\n";

    fn parse(text: &str) -> Result<crate::config::Config, ConfigError> {
        crate::config::parse(std::path::Path::new("/etc/deployer.ini"), text)
    }

    #[test]
    fn a_stage_reads_its_rules_and_errors_name_the_file_line_and_key() {
        let c = parse(&format!(
            "{INI}deploy_windows = Mon-Thu 09:00-16:00,\n  Fri 09:00-12:00\n\
             freeze_dates = 2026-12-24..2027-01-02, 2027-04-05\ntimezone = Europe/Rome\n"
        ))
        .unwrap();
        assert!(c.stages[0].window.is_none());
        let r = c.stages[1].window.as_ref().unwrap();
        assert_eq!(
            r.describe(),
            "Mon-Thu 09:00-16:00, Fri 09:00-12:00, Europe/Rome; freeze dates \
             2026-12-24..2027-01-02, 2027-04-05"
        );
        let e = parse(&format!(
            "{INI}timezone = Europe/Rome\ndeploy_windows = Fri 22:00-25:00\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`/etc/deployer.ini` line 9: `deploy_windows` in `[stage:prod]` has an invalid value \
             `Fri 22:00-25:00`: `Fri 22:00-25:00`: `25:00` is not a time of day from 00:00 to 24:00"
        );
        assert!(e
            .note
            .unwrap()
            .starts_with("accepted: windows separated by commas"));
        let e = parse(&format!("{INI}freeze_dates = 2027-04-05\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`/etc/deployer.ini` line 8: `freeze_dates` in `[stage:prod]` needs `timezone`, the \
             zone its times are in"
        );
        assert!(e.note.unwrap().contains("timezone = Europe/Rome"));
        let e = parse(&format!(
            "{INI}deploy_windows = Mon 09:00-10:00\ntimezone = Europe/Roma\n"
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "line 9: `timezone` in `[stage:prod]` has an invalid value `Europe/Roma`: no such \
                 time zone"
            ),
            "{e}"
        );
        let e = parse(&format!("{INI}deploy_windows =\ntimezone = UTC\n")).unwrap_err();
        assert!(
            e.to_string()
                .contains("`deploy_windows` in `[stage:prod]` is empty"),
            "{e}"
        );
        // a zone alone does nothing, and says so
        let c = parse(&format!("{INI}timezone = UTC\n")).unwrap();
        assert!(c.stages[1].window.is_none());
        assert!(
            c.warnings[0].contains("`timezone` in `[stage:prod]` has no effect"),
            "{:?}",
            c.warnings
        );
    }
}
