//! Deploy windows: when a stage takes forward deploys and promotions.
//!
//! A stage's [`Rules`] (`deploy_windows`, `freeze_dates` and `timezone` of
//! `[stage:NAME]`, parsed by `config`) say, for any instant, whether the
//! stage is open and until when, or closed and when it next opens
//! ([`Rules::at`]). This module is pure: the instant is given, never read
//! from a clock, so tests set it.
//!
//! Everything is wall-clock time in the stage's zone (the system's IANA
//! time-zone data, through `jiff`):
//!
//! - a window `Fri 22:00-02:00` (end before start) crosses midnight: it
//!   starts on Friday and ends on Saturday at 02:00; the end is exclusive;
//! - on a freeze date the stage is closed from 00:00 to 24:00 of that
//!   date, including the part of a window that started the day before;
//! - at a daylight-saving change, the stage is open whenever the wall
//!   clock shows a time inside a window. Spring forward: the skipped hour
//!   never shows, so a window starting inside it opens at the first time
//!   after the gap (03:00 in Europe), and one lying wholly inside it does
//!   not open that day. Fall back: the repeated hour shows twice, so a
//!   window covering it is open during both passes (an hour longer).

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// Minutes in a day; a window's end may be `24:00`.
pub const DAY: u16 = 24 * 60;

/// How far ahead the next opening (or closing) is looked for: two years.
const HORIZON_DAYS: i64 = 732;

/// The days of the week, Monday first, as written in `deploy_windows`.
pub const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// One window: on each of `days`, from `start` to `end` (minutes after
/// midnight; `end` exclusive, up to [`DAY`]). An `end` not after `start`
/// crosses midnight into the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after midnight, `0..DAY`.
    pub start: u16,
    /// Minutes after midnight, `0..=DAY`.
    pub end: u16,
    /// The days as written, normalised (`Mon-Thu`, `Fri-Mon`, `Sat`).
    pub days_text: String,
}

impl Window {
    /// Whether it goes on past midnight into the next day.
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// The minutes of the week it covers, as `[from, to)` pieces of
    /// `0..7*DAY` (one wrapping past Sunday is split in two).
    pub fn week_minutes(&self) -> Vec<(u32, u32)> {
        let week = 7 * u32::from(DAY);
        let len = if self.crosses_midnight() {
            u32::from(DAY - self.start + self.end)
        } else {
            u32::from(self.end - self.start)
        };
        let mut pieces = Vec::new();
        for (d, on) in self.days.iter().enumerate() {
            if !on {
                continue;
            }
            let from = d as u32 * u32::from(DAY) + u32::from(self.start);
            let to = from + len;
            if to <= week {
                pieces.push((from, to));
            } else {
                pieces.push((from, week));
                pieces.push((0, to - week));
            }
        }
        pieces
    }

    /// Whether it is open at minute `m` of `date` (counting the part of a
    /// window that started the day before).
    fn covers(&self, date: Date, m: u16) -> bool {
        let today = self.days[weekday(date.weekday())];
        let yesterday = self.days[weekday(date.weekday().previous())];
        if self.crosses_midnight() {
            (today && m >= self.start) || (yesterday && m < self.end)
        } else {
            today && m >= self.start && m < self.end
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}-{}",
            self.days_text,
            clock(self.start),
            clock(self.end)
        )
    }
}

/// `HH:MM` of minutes after midnight (`24:00` for [`DAY`]).
pub fn clock(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// An inclusive range of dates (one date when `first == last`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRange {
    /// The first date closed.
    pub first: Date,
    /// The last date closed.
    pub last: Date,
}

impl DateRange {
    /// Whether `d` is in the range.
    pub fn contains(&self, d: Date) -> bool {
        self.first <= d && d <= self.last
    }
}

impl std::fmt::Display for DateRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

/// A stage's deploy windows and freeze dates, in its time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// The stage's zone.
    pub zone: TimeZone,
    /// Its IANA name, as written in `timezone`.
    pub zone_name: String,
    /// The windows; empty means open at any time but the freeze dates.
    pub windows: Vec<Window>,
    /// The dates closed all day.
    pub freeze_dates: Vec<DateRange>,
}

/// Why a stage is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// Outside every window.
    Outside,
    /// On a freeze date (the range it is in).
    FreezeDate(DateRange),
}

/// Whether a stage is open at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Open; `until` is when it next closes (`None`: not within two years).
    Open {
        /// When it closes.
        until: Option<Timestamp>,
    },
    /// Closed; `opens` is when it next opens (`None`: not within two years).
    Closed {
        /// Why.
        why: Closed,
        /// When it opens.
        opens: Option<Timestamp>,
    },
}

impl State {
    /// Whether deploys go now.
    pub fn is_open(&self) -> bool {
        matches!(self, State::Open { .. })
    }
}

impl Rules {
    /// Open or closed at `now`, and until when.
    pub fn at(&self, now: Timestamp) -> State {
        let here = self.zone.to_datetime(now);
        if self.open_at(here) {
            State::Open {
                until: self.next(now, false),
            }
        } else {
            let why = match self.freeze_dates.iter().find(|r| r.contains(here.date())) {
                Some(r) => Closed::FreezeDate(r.clone()),
                None => Closed::Outside,
            };
            State::Closed {
                why,
                opens: self.next(now, true),
            }
        }
    }

    /// The windows as configured: `Mon-Thu 09:00-16:00, Fri 09:00-12:00`
    /// (`any time` without `deploy_windows`).
    pub fn windows_text(&self) -> String {
        if self.windows.is_empty() {
            return "any time".into();
        }
        let all: Vec<String> = self.windows.iter().map(Window::to_string).collect();
        all.join(", ")
    }

    /// The freeze dates as configured (`none` without).
    pub fn freeze_dates_text(&self) -> String {
        if self.freeze_dates.is_empty() {
            return "none".into();
        }
        let all: Vec<String> = self.freeze_dates.iter().map(DateRange::to_string).collect();
        all.join(", ")
    }

    /// The rules in one line: `Mon-Thu 09:00-16:00, Fri 09:00-12:00,
    /// Europe/Rome; freeze dates 2026-12-24..2027-01-02`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}, {}", self.windows_text(), self.zone_name);
        if !self.freeze_dates.is_empty() {
            s.push_str(&format!("; freeze dates {}", self.freeze_dates_text()));
        }
        s
    }

    /// `t` in the stage's zone: `Mon 2026-12-07 09:00 CET (Europe/Rome)`.
    pub fn show(&self, t: Timestamp) -> String {
        format!(
            "{} ({})",
            t.to_zoned_datetime(self.zone.clone())
                .strftime("%a %Y-%m-%d %H:%M %Z"),
            self.zone_name
        )
    }

    /// `t` in the stage's zone, RFC 3339 with its offset, for JSON.
    pub fn rfc3339(&self, t: Timestamp) -> String {
        t.to_zoned_datetime(self.zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// Whether the wall-clock time `here` is open.
    fn open_at(&self, here: DateTime) -> bool {
        let date = here.date();
        if self.freeze_dates.iter().any(|r| r.contains(date)) {
            return false;
        }
        let m = minute_of(here);
        self.windows.is_empty() || self.windows.iter().any(|w| w.covers(date, m))
    }

    /// The first wall-clock time after `here` at which [`Rules::open_at`]
    /// may change: a window's start or end, or a midnight.
    fn next_boundary(&self, here: DateTime) -> DateTime {
        let date = here.date();
        let midnight = date.tomorrow().map_or(DateTime::MAX, |d| d.at(0, 0, 0, 0));
        let mut best = midnight;
        let days = [date.yesterday().ok(), Some(date)];
        for day in days.into_iter().flatten() {
            for w in &self.windows {
                let end_day = if w.crosses_midnight() {
                    day.tomorrow().ok()
                } else {
                    Some(day)
                };
                let points = [Some(at(day, w.start)), end_day.map(|d| at(d, w.end))];
                for p in points.into_iter().flatten() {
                    if p > here && p < best {
                        best = p;
                    }
                }
            }
        }
        best
    }

    /// The first instant at or after `from` at which the stage is open
    /// (`want_open`) or closed, within the horizon. The offset is constant
    /// between two transitions of the zone, so there the wall clock moves
    /// with the instant, from boundary to boundary.
    fn next(&self, from: Timestamp, want_open: bool) -> Option<Timestamp> {
        let limit = from
            .checked_add(jiff::SignedDuration::from_hours(24 * HORIZON_DAYS))
            .ok()?;
        let mut t = from;
        while t <= limit {
            let offset: Offset = self.zone.to_offset(t);
            let change = self.zone.following(t).next().map(|tr| tr.timestamp());
            let mut here = offset.to_datetime(t);
            loop {
                if self.open_at(here) == want_open {
                    let found = offset.to_timestamp(here).ok()?;
                    return (found <= limit).then_some(found.max(from));
                }
                let boundary = self.next_boundary(here);
                let at_boundary = offset.to_timestamp(boundary).ok()?;
                if at_boundary > limit {
                    return None;
                }
                match change {
                    Some(c) if at_boundary >= c => {
                        t = c;
                        break;
                    }
                    _ => here = boundary,
                }
            }
        }
        None
    }
}

/// Monday = 0.
fn weekday(d: Weekday) -> usize {
    d.to_monday_zero_offset() as usize
}

/// Minutes after midnight of a wall-clock time (seconds dropped: open
/// until 15:59:59 for an end of 16:00).
fn minute_of(here: DateTime) -> u16 {
    (here.hour() as u16) * 60 + here.minute() as u16
}

/// The wall-clock time `m` minutes after midnight of `d` (`24:00` is the
/// next midnight).
fn at(d: Date, m: u16) -> DateTime {
    if m >= DAY {
        return d.tomorrow().map_or(DateTime::MAX, |n| n.at(0, 0, 0, 0));
    }
    d.at((m / 60) as i8, (m % 60) as i8, 0, 0)
}

/// A stage's deploy windows as `status` and the dashboard show them: open
/// or closed at the time asked, and until when (`status --json`'s
/// `window`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shown {
    /// Whether forward deploys and promotions go now.
    pub open: bool,
    /// When that changes, RFC 3339 in the stage's zone (`None`: not within
    /// two years).
    pub until: Option<String>,
    /// The same, for people: `Mon 2026-12-07 09:00 CET (Europe/Rome)`.
    pub until_shown: Option<String>,
    /// Closed: `outside_windows` or `freeze_date`; `None` when open.
    pub closed_by: Option<&'static str>,
    /// Closed by a freeze date: the range it is in.
    pub freeze_date: Option<String>,
    /// `deploy_windows` (`any time` without).
    pub deploy_windows: String,
    /// `freeze_dates` (`none` without).
    pub freeze_dates: String,
    /// `timezone`.
    pub timezone: String,
}

impl Shown {
    /// A stage closed outside its windows (`Mon-Fri 09:00-12:00`,
    /// Europe/Rome) until Monday 2026-12-14 09:00: what the views' tests
    /// show.
    #[cfg(test)]
    pub(crate) fn closed_example() -> Shown {
        Shown {
            open: false,
            until: Some("2026-12-14T09:00:00+01:00".into()),
            until_shown: Some("Mon 2026-12-14 09:00 CET (Europe/Rome)".into()),
            closed_by: Some("outside_windows"),
            freeze_date: None,
            deploy_windows: "Mon-Fri 09:00-12:00".into(),
            freeze_dates: "none".into(),
            timezone: "Europe/Rome".into(),
        }
    }

    /// `rules` at `now`.
    pub fn of(rules: &Rules, now: Timestamp) -> Shown {
        let (open, until, closed_by, freeze_date) = match rules.at(now) {
            State::Open { until } => (true, until, None, None),
            State::Closed {
                why: Closed::Outside,
                opens,
            } => (false, opens, Some("outside_windows"), None),
            State::Closed {
                why: Closed::FreezeDate(r),
                opens,
            } => (false, opens, Some("freeze_date"), Some(r.to_string())),
        };
        Shown {
            open,
            until: until.map(|t| rules.rfc3339(t)),
            until_shown: until.map(|t| rules.show(t)),
            closed_by,
            freeze_date,
            deploy_windows: rules.windows_text(),
            freeze_dates: rules.freeze_dates_text(),
            timezone: rules.zone_name.clone(),
        }
    }

    /// Closed, in a line: `outside its deploy windows (...); opens ...`.
    pub fn closed_line(&self) -> String {
        let why = match &self.freeze_date {
            Some(r) => format!("freeze date {r} ({})", self.timezone),
            None => format!(
                "outside its deploy windows ({}, {})",
                self.deploy_windows, self.timezone
            ),
        };
        match &self.until_shown {
            Some(t) => format!("{why}; opens {t}"),
            None => format!("{why}; no window opens within two years"),
        }
    }
}

/// Mark every stage of `m` that has deploy windows or freeze dates with
/// whether it is open at `now`, for `status` and the dashboard.
pub fn mark_stages(config: &crate::config::Config, m: &mut crate::matrix::Matrix, now: Timestamp) {
    for c in &mut m.columns {
        c.window = config
            .stage(&c.name)
            .and_then(|s| s.window.as_ref())
            .map(|r| Shown::of(r, now));
    }
}

/// The clock of the running process, for the checks of a deploy and
/// `status`: the one place deployer reads the time for deploy windows.
pub fn now() -> Timestamp {
    Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[usize], start: &str, end: &str, text: &str) -> Window {
        let mut on = [false; 7];
        for &d in days {
            on[d] = true;
        }
        let m = |s: &str| {
            let (h, mm) = s.split_once(':').unwrap();
            h.parse::<u16>().unwrap() * 60 + mm.parse::<u16>().unwrap()
        };
        Window {
            days: on,
            start: m(start),
            end: m(end),
            days_text: text.into(),
        }
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn rules(zone: &str, windows: Vec<Window>, freeze: &[(&str, &str)]) -> Rules {
        Rules {
            zone: TimeZone::get(zone).unwrap(),
            zone_name: zone.into(),
            windows,
            freeze_dates: freeze
                .iter()
                .map(|(a, b)| DateRange {
                    first: date(a),
                    last: date(b),
                })
                .collect(),
        }
    }

    /// The office hours of the issue, in Rome.
    fn office() -> Rules {
        rules(
            "Europe/Rome",
            vec![
                window(&[0, 1, 2, 3], "09:00", "16:00", "Mon-Thu"),
                window(&[4], "09:00", "12:00", "Fri"),
            ],
            &[("2026-12-24", "2027-01-02"), ("2027-04-05", "2027-04-05")],
        )
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[track_caller]
    fn open_until(r: &Rules, now: &str, until: &str) {
        assert_eq!(
            r.at(ts(now)),
            State::Open {
                until: Some(ts(until))
            },
            "at {now}"
        );
    }

    #[track_caller]
    fn closed(r: &Rules, now: &str, why: Closed, opens: &str) {
        assert_eq!(
            r.at(ts(now)),
            State::Closed {
                why,
                opens: Some(ts(opens))
            },
            "at {now}"
        );
    }

    #[test]
    fn inside_a_window_it_is_open_until_its_end_which_is_exclusive() {
        let r = office();
        // Monday 2026-12-07, Rome is UTC+1 in winter
        open_until(&r, "2026-12-07T09:00:00+01:00", "2026-12-07T16:00:00+01:00");
        open_until(&r, "2026-12-07T15:59:59+01:00", "2026-12-07T16:00:00+01:00");
        closed(
            &r,
            "2026-12-07T16:00:00+01:00",
            Closed::Outside,
            "2026-12-08T09:00:00+01:00",
        );
        closed(
            &r,
            "2026-12-07T08:59:59+01:00",
            Closed::Outside,
            "2026-12-07T09:00:00+01:00",
        );
    }

    #[test]
    fn friday_afternoon_and_the_weekend_wait_for_monday() {
        let r = office();
        open_until(&r, "2026-12-11T11:00:00+01:00", "2026-12-11T12:00:00+01:00");
        for now in [
            "2026-12-11T12:00:00+01:00",
            "2026-12-12T10:00:00+01:00",
            "2026-12-13T23:59:59+01:00",
        ] {
            closed(&r, now, Closed::Outside, "2026-12-14T09:00:00+01:00");
        }
    }

    #[test]
    fn the_stage_zone_not_utc_decides() {
        let r = office();
        // 08:30 UTC is 09:30 in Rome: open; 15:30 UTC is 16:30 there: closed
        assert!(r.at(ts("2026-12-07T08:30:00Z")).is_open());
        assert!(!r.at(ts("2026-12-07T15:30:00Z")).is_open());
        let ny = rules(
            "America/New_York",
            vec![window(&[0], "09:00", "10:00", "Mon")],
            &[],
        );
        // 14:30 UTC is 09:30 in New York (UTC-5 in December)
        open_until(&ny, "2026-12-07T14:30:00Z", "2026-12-07T15:00:00Z");
    }

    #[test]
    fn a_freeze_date_inside_a_window_closes_the_whole_day() {
        let r = office();
        // Monday 2027-04-05 (Easter Monday) is a freeze date; CEST = UTC+2
        closed(
            &r,
            "2027-04-05T10:00:00+02:00",
            Closed::FreezeDate(DateRange {
                first: date("2027-04-05"),
                last: date("2027-04-05"),
            }),
            "2027-04-06T09:00:00+02:00",
        );
        // the Thursday before: open until the window's end, not affected
        open_until(&r, "2027-04-01T10:00:00+02:00", "2027-04-01T16:00:00+02:00");
    }

    #[test]
    fn a_freeze_across_the_year_boundary_opens_on_the_first_window_after_it() {
        let r = office();
        let holidays = Closed::FreezeDate(DateRange {
            first: date("2026-12-24"),
            last: date("2027-01-02"),
        });
        // Wednesday 2026-12-23 closes at 16:00 as usual
        open_until(&r, "2026-12-23T15:00:00+01:00", "2026-12-23T16:00:00+01:00");
        closed(
            &r,
            "2026-12-23T16:00:00+01:00",
            Closed::Outside,
            "2027-01-04T09:00:00+01:00",
        );
        // 2027-01-02 is a Saturday, so the first window is Monday the 4th
        for now in [
            "2026-12-24T09:30:00+01:00",
            "2026-12-31T23:59:00+01:00",
            "2027-01-01T10:00:00+01:00",
        ] {
            closed(&r, now, holidays.clone(), "2027-01-04T09:00:00+01:00");
        }
    }

    #[test]
    fn a_window_crossing_midnight_runs_into_the_next_day() {
        let r = rules(
            "Europe/Rome",
            vec![window(&[4], "22:00", "02:00", "Fri")],
            &[],
        );
        // Friday 2026-12-11 22:00 to Saturday 02:00
        closed(
            &r,
            "2026-12-11T21:59:00+01:00",
            Closed::Outside,
            "2026-12-11T22:00:00+01:00",
        );
        open_until(&r, "2026-12-11T22:00:00+01:00", "2026-12-12T02:00:00+01:00");
        open_until(&r, "2026-12-12T01:59:59+01:00", "2026-12-12T02:00:00+01:00");
        closed(
            &r,
            "2026-12-12T02:00:00+01:00",
            Closed::Outside,
            "2026-12-18T22:00:00+01:00",
        );
        // Friday early morning is not Saturday's: closed
        assert!(!r.at(ts("2026-12-11T01:00:00+01:00")).is_open());
        // a freeze on the Saturday cuts the window at midnight
        let mut f = r.clone();
        f.freeze_dates.push(DateRange {
            first: date("2026-12-12"),
            last: date("2026-12-12"),
        });
        open_until(&f, "2026-12-11T23:00:00+01:00", "2026-12-12T00:00:00+01:00");
    }

    #[test]
    fn a_window_from_sunday_into_monday_wraps_the_week() {
        let r = rules("UTC", vec![window(&[6], "23:00", "01:00", "Sun")], &[]);
        open_until(&r, "2026-12-14T00:30:00Z", "2026-12-14T01:00:00Z");
        open_until(&r, "2026-12-13T23:00:00Z", "2026-12-14T01:00:00Z");
        assert_eq!(
            r.windows[0].week_minutes(),
            vec![(6 * 1440 + 1380, 7 * 1440), (0, 60)]
        );
    }

    #[test]
    fn adjacent_windows_make_one_opening_and_a_whole_week_never_closes() {
        let r = rules(
            "UTC",
            vec![
                window(&[0], "09:00", "12:00", "Mon"),
                window(&[0], "12:00", "14:00", "Mon"),
            ],
            &[],
        );
        open_until(&r, "2026-12-07T10:00:00Z", "2026-12-07T14:00:00Z");
        let always = rules(
            "UTC",
            vec![window(&[0, 1, 2, 3, 4, 5, 6], "00:00", "24:00", "Mon-Sun")],
            &[],
        );
        assert_eq!(
            always.at(ts("2026-12-07T10:00:00Z")),
            State::Open { until: None }
        );
        // only freeze dates: open but on them
        let only = rules("UTC", vec![], &[("2026-12-24", "2026-12-26")]);
        open_until(&only, "2026-12-07T10:00:00Z", "2026-12-24T00:00:00Z");
        closed(
            &only,
            "2026-12-25T10:00:00Z",
            Closed::FreezeDate(only.freeze_dates[0].clone()),
            "2026-12-27T00:00:00Z",
        );
    }

    #[test]
    fn a_stage_that_never_opens_within_the_horizon_says_so() {
        let r = rules(
            "UTC",
            vec![window(&[0], "09:00", "10:00", "Mon")],
            &[("2026-01-01", "2030-01-01")],
        );
        assert!(matches!(
            r.at(ts("2026-12-07T09:30:00Z")),
            State::Closed { opens: None, .. }
        ));
    }

    #[test]
    fn spring_forward_skips_the_hour_on_the_wall_clock() {
        // Rome, Sunday 2027-03-28: 02:00 CET becomes 03:00 CEST
        let r = rules(
            "Europe/Rome",
            vec![
                window(&[6], "01:00", "02:30", "Sun"),
                window(&[6], "02:15", "02:45", "Sun"),
            ],
            &[],
        );
        // not this: two windows overlap; use them one at a time
        let first = Rules {
            windows: vec![r.windows[0].clone()],
            ..r.clone()
        };
        // 01:00 to 02:30 wall clock: 02:00 jumps to 03:00, past 02:30, so
        // the window closes at the jump, after one hour
        open_until(
            &first,
            "2027-03-28T01:30:00+01:00",
            "2027-03-28T03:00:00+02:00",
        );
        // a window starting in the gap opens at the first time after it;
        // one wholly inside the gap does not open that day
        let inside = rules(
            "Europe/Rome",
            vec![window(&[6], "02:15", "03:30", "Sun")],
            &[],
        );
        closed(
            &inside,
            "2027-03-28T01:30:00+01:00",
            Closed::Outside,
            "2027-03-28T03:00:00+02:00",
        );
        open_until(
            &inside,
            "2027-03-28T03:00:00+02:00",
            "2027-03-28T03:30:00+02:00",
        );
        let lost = Rules {
            windows: vec![r.windows[1].clone()],
            ..r
        };
        closed(
            &lost,
            "2027-03-28T01:30:00+01:00",
            Closed::Outside,
            "2027-04-04T02:15:00+02:00",
        );
        // an office window on that Sunday keeps its wall-clock hours
        let day = rules(
            "Europe/Rome",
            vec![window(&[6], "09:00", "16:00", "Sun")],
            &[],
        );
        closed(
            &day,
            "2027-03-28T01:00:00+01:00",
            Closed::Outside,
            "2027-03-28T09:00:00+02:00",
        );
        open_until(
            &day,
            "2027-03-28T09:00:00+02:00",
            "2027-03-28T16:00:00+02:00",
        );
    }

    #[test]
    fn fall_back_repeats_the_hour_and_a_window_over_it_is_open_twice() {
        // Rome, Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET
        let r = rules(
            "Europe/Rome",
            vec![window(&[6], "02:00", "02:30", "Sun")],
            &[],
        );
        // first pass: 02:00-02:30 CEST (00:00-00:30 UTC)
        closed(
            &r,
            "2026-10-25T01:30:00+02:00",
            Closed::Outside,
            "2026-10-25T02:00:00+02:00",
        );
        open_until(&r, "2026-10-25T02:10:00+02:00", "2026-10-25T02:30:00+02:00");
        // between the passes: closed until 02:00 CET, an hour after the first
        closed(
            &r,
            "2026-10-25T02:45:00+02:00",
            Closed::Outside,
            "2026-10-25T02:00:00+01:00",
        );
        // second pass
        open_until(&r, "2026-10-25T02:10:00+01:00", "2026-10-25T02:30:00+01:00");
        // a window covering the repeated hour is an hour longer
        let long = rules(
            "Europe/Rome",
            vec![window(&[6], "01:00", "04:00", "Sun")],
            &[],
        );
        open_until(
            &long,
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T04:00:00+01:00",
        );
        assert_eq!(
            ts("2026-10-25T04:00:00+01:00")
                .duration_since(ts("2026-10-25T01:00:00+02:00"))
                .as_hours(),
            4
        );
        // a crossing window over the change keeps its wall-clock end
        let night = rules(
            "Europe/Rome",
            vec![window(&[5], "22:00", "06:00", "Sat")],
            &[],
        );
        open_until(
            &night,
            "2026-10-24T23:00:00+02:00",
            "2026-10-25T06:00:00+01:00",
        );
    }

    #[test]
    fn status_shows_closed_until_and_why() {
        let r = office();
        let s = Shown::of(&r, ts("2026-12-11T13:00:00+01:00"));
        assert!(!s.open);
        assert_eq!(s.closed_by, Some("outside_windows"));
        assert_eq!(s.until.as_deref(), Some("2026-12-14T09:00:00+01:00"));
        assert_eq!(
            s.closed_line(),
            "outside its deploy windows (Mon-Thu 09:00-16:00, Fri 09:00-12:00, Europe/Rome); \
             opens Mon 2026-12-14 09:00 CET (Europe/Rome)"
        );
        let s = Shown::of(&r, ts("2026-12-28T10:00:00+01:00"));
        assert_eq!(s.closed_by, Some("freeze_date"));
        assert_eq!(s.freeze_date.as_deref(), Some("2026-12-24..2027-01-02"));
        assert!(s.closed_line().starts_with(
            "freeze date 2026-12-24..2027-01-02 (Europe/Rome); opens Mon 2027-01-04 09:00 CET"
        ));
        let s = Shown::of(&r, ts("2026-12-10T10:00:00+01:00"));
        assert!(s.open && s.closed_by.is_none());
        assert_eq!(s.until.as_deref(), Some("2026-12-10T16:00:00+01:00"));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["timezone"], "Europe/Rome");
        assert_eq!(v["freeze_dates"], "2026-12-24..2027-01-02, 2027-04-05");
    }

    #[test]
    fn descriptions_and_times_are_shown_in_the_stage_zone() {
        let r = office();
        assert_eq!(
            r.describe(),
            "Mon-Thu 09:00-16:00, Fri 09:00-12:00, Europe/Rome; freeze dates \
             2026-12-24..2027-01-02, 2027-04-05"
        );
        assert_eq!(
            r.show(ts("2026-12-07T08:00:00Z")),
            "Mon 2026-12-07 09:00 CET (Europe/Rome)"
        );
        assert_eq!(
            r.rfc3339(ts("2027-04-06T07:00:00Z")),
            "2027-04-06T09:00:00+02:00"
        );
    }
}
