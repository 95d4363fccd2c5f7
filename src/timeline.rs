//! `deployer timeline`'s core: what changed packages on the hosts, from
//! dpkg's log, apt's history and deployer's own records, merged into one
//! list of changes ordered by time, each attributed as far as the logs
//! allow.
//!
//! This module owns the one parser of `--since` ([`parse_since`], shared
//! with `deployer history`), the fixed command that reads a host's logs
//! ([`host_read_command`]) and the parsers of what it prints
//! ([`parse_host_logs`], [`parse_dpkg_log`], [`parse_apt_history`]), the
//! attribution of each dpkg change ([`attribute`]) and the rendering, as
//! text or JSON. Everything here is pure: reaching the hosts and printing
//! is `app::timeline`'s business.
//!
//! Times: dpkg and apt write the host's local time without an offset; the
//! command reports the host's offset (`date +%z`) and clock (`date +%s`),
//! so each change is placed on the host's clock and shown with the host's
//! offset. When the host's clock differs from this machine's, the times
//! are not corrected (they are what the host's logs say); the listing
//! notes the difference, and matching a dpkg change to a deployer attempt
//! allows for it.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::command::RemoteCommand;
use crate::history::{HostResult, Record};
use crate::text;
use crate::version::Version;

/// How many bytes of each log file (uncompressed) a host sends: the
/// newest ones. Bounded so that a huge or hostile log costs little; the
/// transport keeps at most [`crate::transport::OUTPUT_LIMIT`] of the whole
/// answer, the newest files last.
pub const FILE_LIMIT: usize = 256 * 1024;

/// How far a host's clock may be from this machine's before the listing
/// says so, in seconds.
pub const CLOCK_SLACK: i64 = 5;

/// `21600` → `6h`: a window in its largest whole unit.
pub fn format_window(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The default window of `deployer timeline`: two hours.
pub const DEFAULT_SINCE: &str = "2h";

// ---------------------------------------------------------------------------
// Times

/// The start of a window given as `--since`: a duration back from `now`
/// (`90s`, `30m`, `2h`, `3d`, `1w`), or a time: RFC 3339
/// (`2026-12-07T05:30:00Z`, `2026-12-07T06:30:00+01:00`) or the same with
/// a space and without seconds (`2026-12-07 05:30Z`). A time must carry
/// its offset (`Z` or `±HH:MM`): a bare time could be this machine's or a
/// host's, so it is refused rather than guessed. `now` and the result are
/// seconds since the Unix epoch.
pub fn parse_since(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if let Some(secs) = parse_duration(s) {
        return Ok(now - secs);
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) && s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return parse_time(s);
    }
    Err(format!(
        "`{}` is neither a duration nor a time",
        text::clipped_line(s, 60)
    ))
}

/// The note for a `--since` that [`parse_since`] refused.
pub const SINCE_NOTE: &str =
    "give a duration such as `30m`, `2h`, `3d` (s, m, h, d, w), or a time \
     with its offset such as `2026-12-07T05:30:00Z` or `2026-12-07 06:30+01:00`";

/// `30m` → 1800: a whole number and one unit (`s`, `m`, `h`, `d`, `w`).
pub fn parse_duration(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    if n < 0 {
        return None;
    }
    n.checked_mul(per)
}

/// A time with its offset, as [`parse_since`] takes it, in seconds since
/// the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("`{}` is not a time: {why}", text::clipped_line(s, 60));
    let (naive, offset) = if let Some(rest) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        (rest, 0)
    } else {
        let at = s
            .rfind(['+', '-'])
            .filter(|&i| i > 10)
            .ok_or_else(|| bad("it has no offset (add `Z` for UTC, or e.g. `+01:00`)"))?;
        let sign = if &s[at..=at] == "-" { -1 } else { 1 };
        let digits: String = s[at + 1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("its offset is not `±HH:MM`"));
        }
        let h: i64 = digits[..2].parse().unwrap_or(0);
        let m: i64 = digits[2..].parse().unwrap_or(0);
        (&s[..at], sign * (h * 3600 + m * 60))
    };
    let local = parse_naive(naive).ok_or_else(|| bad("expected `YYYY-MM-DD HH:MM[:SS]`"))?;
    Ok(local - offset)
}

/// `2026-12-07 05:30:01` or `2026-12-07T05:30` (also with two spaces, as
/// apt writes it) as seconds since the epoch, taken as UTC.
pub fn parse_naive(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', ' '])?;
    let time = time.trim_start();
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || y.len() != 4 || mo.len() != 2 || da.len() != 2 {
        return None;
    }
    let num = |t: &str| -> Option<i64> {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let year: i64 = y
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| y.parse().ok())??;
    let (month, day) = (num(mo)?, num(da)?);
    let mut t = time.split(':');
    let (h, mi) = (num(t.next()?)?, num(t.next()?)?);
    let sec = match t.next() {
        Some(x) => num(x)?,
        None => 0,
    };
    if t.next().is_some()
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`, the inverse of the history's `civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-07 05:30:01 +0100`: `epoch` on a clock `offset` seconds east
/// of UTC.
pub fn format_on_clock(epoch: i64, offset: i32) -> String {
    let local = epoch + i64::from(offset);
    let days = local.div_euclid(86_400);
    let rem = local.rem_euclid(86_400);
    let date = crate::history::format_rfc3339(u64::try_from(days * 86_400).unwrap_or(0));
    format!(
        "{} {:02}:{:02}:{:02} {}",
        &date[..10],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        format_offset(offset)
    )
}

/// How far ahead of this machine's clock a host's is (negative: behind),
/// in seconds: the host read its `clock` while this machine's went from
/// `before` to `after`, so only a clock outside that span differs (0 when
/// the host did not say).
pub fn skew(clock: Option<i64>, before: i64, after: i64) -> i64 {
    match clock {
        Some(c) if c < before => c - before,
        Some(c) if c > after => c - after,
        _ => 0,
    }
}

/// `+0100`, `-0530`, `+0000`.
fn format_offset(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    format!("{sign}{:02}{:02}", a / 3600, a % 3600 / 60)
}

/// `+0100` → 3600, as `date +%z` prints it.
fn parse_offset(s: &str) -> Option<i32> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

// ---------------------------------------------------------------------------
// dpkg's log

/// What dpkg did to a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Installed where it was not (dpkg's `install`).
    Install,
    /// Replaced by a newer version, or the same one again (`upgrade`).
    Upgrade,
    /// Replaced by an older version (an `upgrade` line going down).
    Downgrade,
    /// Removed, its configuration files kept (`remove`).
    Remove,
    /// Removed with its configuration files (`purge`, alone or after a
    /// `remove` of the same run).
    Purge,
}

impl Change {
    /// The word used in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Install => "install",
            Change::Upgrade => "upgrade",
            Change::Downgrade => "downgrade",
            Change::Remove => "remove",
            Change::Purge => "purge",
        }
    }
}

/// One package change from dpkg's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgChange {
    /// When, on the host's clock, as seconds since the epoch (the log's
    /// local time less the host's offset).
    pub time: i64,
    /// The package, without its architecture.
    pub package: String,
    /// The architecture dpkg names (`amd64`, `all`), if any.
    pub arch: Option<String>,
    /// The version before (`None`: not installed).
    pub from: Option<String>,
    /// The version after (`None`: removed).
    pub to: Option<String>,
    /// What happened.
    pub change: Change,
    /// dpkg's last word on the package after the change, when it did not
    /// end in a settled state (`half-configured`, `unpacked`, …).
    pub unsettled: Option<String>,
}

/// dpkg's `<none>`, as `None`.
fn dpkg_version(s: &str) -> Option<String> {
    (s != "<none>").then(|| s.to_string())
}

/// `fastpath:amd64` → (`fastpath`, `amd64`).
fn split_arch(s: &str) -> (String, Option<String>) {
    match s.split_once(':') {
        Some((p, a)) => (p.to_string(), Some(a.to_string())),
        None => (s.to_string(), None),
    }
}

/// The package changes in the lines of dpkg's log (`/var/log/dpkg.log`),
/// whose local times are `offset` seconds east of UTC, in log order; and
/// how many lines were not understood (skipped).
///
/// One change per `install`, `upgrade`, `remove` or `purge` line (a
/// `purge` right after a `remove` of the same package and version is one
/// change, a purge); the `status` lines that follow say whether it
/// settled. Every other line (`startup`, `configure`, `trigproc`,
/// `conffile`) is part of a change already counted.
pub fn parse_dpkg_log<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    offset: i32,
) -> (Vec<DpkgChange>, usize) {
    let mut changes: Vec<DpkgChange> = Vec::new();
    let mut last: HashMap<String, usize> = HashMap::new();
    let mut skipped = 0;
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let Some(stamp) = line.get(..19).and_then(parse_naive) else {
            skipped += 1;
            continue;
        };
        let time = stamp - i64::from(offset);
        let words: Vec<&str> = line[19..].split_whitespace().collect();
        match words.as_slice() {
            ["status", state, pkg, _version] => {
                if let Some(&i) = last.get(*pkg) {
                    let settled = matches!(*state, "installed" | "not-installed" | "config-files");
                    changes[i].unsettled = (!settled).then(|| state.to_string());
                }
            }
            [action @ ("install" | "upgrade" | "remove" | "purge"), pkg, old, new] => {
                let (package, arch) = split_arch(pkg);
                let (from, to) = (dpkg_version(old), dpkg_version(new));
                let change = match *action {
                    "install" => Change::Install,
                    "upgrade" => match (&from, &to) {
                        (Some(f), Some(t)) if is_older(t, f) => Change::Downgrade,
                        _ => Change::Upgrade,
                    },
                    "remove" => Change::Remove,
                    _ => Change::Purge,
                };
                if change == Change::Purge {
                    if let Some(&i) = last.get(*pkg) {
                        let prev = &mut changes[i];
                        if prev.change == Change::Remove
                            && prev.from == from
                            && time - prev.time <= 600
                        {
                            prev.change = Change::Purge;
                            continue;
                        }
                    }
                }
                last.insert(pkg.to_string(), changes.len());
                changes.push(DpkgChange {
                    time,
                    package,
                    arch,
                    from,
                    to,
                    change,
                    unsettled: None,
                });
            }
            [word, ..]
                if matches!(
                    *word,
                    "startup" | "configure" | "trigproc" | "conffile" | "status"
                ) => {}
            _ => skipped += 1,
        }
    }
    (changes, skipped)
}

/// Whether Debian version `a` is older than `b` (false when either is not
/// a version).
fn is_older(a: &str, b: &str) -> bool {
    match (a.parse::<Version>(), b.parse::<Version>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// apt's history

/// One run of apt, from its history (`/var/log/apt/history.log`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptRun {
    /// `Start-Date`, on the host's clock (seconds since the epoch).
    pub start: i64,
    /// `End-Date`, when the run recorded its end.
    pub end: Option<i64>,
    /// `Commandline`: what was run.
    pub commandline: Option<String>,
    /// `Requested-By`: who ran it through sudo (`alice (1000)`).
    pub requested_by: Option<String>,
    /// The packages it changed, with the version each went to (`None`:
    /// removed).
    pub packages: Vec<(String, Option<String>)>,
}

/// The runs in the lines of apt's history, whose local times are `offset`
/// seconds east of UTC, in log order; and how many lines were not
/// understood (skipped).
pub fn parse_apt_history<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    offset: i32,
) -> (Vec<AptRun>, usize) {
    let mut runs = Vec::new();
    let mut current: Option<AptRun> = None;
    let mut skipped = 0;
    for line in lines {
        let Some((key, value)) = line.split_once(": ") else {
            if !line.trim().is_empty() {
                skipped += 1;
            }
            continue;
        };
        let value = value.trim();
        match key {
            "Start-Date" => {
                runs.extend(current.take());
                match parse_naive(value) {
                    Some(t) => {
                        current = Some(AptRun {
                            start: t - i64::from(offset),
                            ..AptRun::default()
                        })
                    }
                    None => skipped += 1,
                }
            }
            _ => {
                let Some(run) = current.as_mut() else {
                    skipped += 1;
                    continue;
                };
                match key {
                    "End-Date" => run.end = parse_naive(value).map(|t| t - i64::from(offset)),
                    "Commandline" => run.commandline = Some(value.to_string()),
                    "Requested-By" => run.requested_by = Some(value.to_string()),
                    "Install" | "Upgrade" | "Downgrade" | "Reinstall" => {
                        run.packages.extend(
                            apt_packages(value)
                                .into_iter()
                                .map(|(p, vs)| (p, vs.last().cloned())),
                        );
                    }
                    "Remove" | "Purge" => {
                        run.packages
                            .extend(apt_packages(value).into_iter().map(|(p, _)| (p, None)));
                    }
                    _ => {}
                }
            }
        }
    }
    runs.extend(current);
    (runs, skipped)
}

/// `fastpath:amd64 (1.0, 1.1), libx:amd64 (2.0, automatic)` → each
/// package (without its architecture) and its versions.
fn apt_packages(list: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some(open) = rest.find('(') {
        let name = rest[..open].trim().trim_start_matches(',').trim();
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let versions = rest[open + 1..open + close]
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "automatic")
            .map(str::to_string)
            .collect();
        out.push((split_arch(name).0, versions));
        rest = &rest[open + close + 1..];
    }
    out
}

// ---------------------------------------------------------------------------
// The command on each host

/// How long before the window's start the host still sends log lines
/// and files, in seconds: for a host's clock behind this machine's, and
/// for the start of an apt run whose changes fall in the window.
pub const SINCE_MARGIN: i64 = 3600;

/// The fixed command that prints a host's package logs for the timeline:
/// dpkg's (`/var/log/dpkg.log` and its rotations, gzipped or not) and
/// apt's history (`/var/log/apt/history.log*`), oldest file first, every
/// line of a file prefixed with `|` so that no log line can pass for the
/// command's own. Then the host's clock and offset.
///
/// Only what may fall in the window is sent: files last written before
/// `since` (less [`SINCE_MARGIN`]) are left out, and so are the lines
/// (dpkg) and runs (apt) dated before it, compared on the host in its own
/// local time (`date -d @SECONDS`); of what is left, each file's newest
/// [`FILE_LIMIT`] bytes. A quiet host sends a few lines however long its
/// logs are.
///
/// Read-only. It reads as the login user; a file that user may not read
/// (apt's history is `root:adm 0640` on some systems) is read through
/// `sudo -n` (never prompting; first a read of no bytes, `head -c 0`, to
/// learn whether sudo allows it), and when that is refused too, an
/// `unreadable` line says so with sudo's words. Gzipped files are
/// decompressed on the host (`gzip -dc`, always there on Debian). A
/// symbolic link is not followed.
pub fn host_read_command(since: i64) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args([
            "-c",
            READ_SCRIPT,
            "deployer-timeline",
            &since.saturating_sub(SINCE_MARGIN).to_string(),
            &FILE_LIMIT.to_string(),
        ])
        .named("timeline")
}

/// The script of [`host_read_command`]: `$1` the start of what to send
/// (seconds since the epoch), `$2` the bytes kept of each file.
const READ_SCRIPT: &str = r#"set -u
since=$1 max=$2
from=$(date -d "@$since" '+%Y-%m-%d %H:%M:%S' 2>/dev/null) || from=
echo 'deployer-timeline 1'
one() {
  kind=$1 f=$2
  [ -e "$f" ] || return 0
  if [ -L "$f" ]; then echo "unreadable $kind $f is a symbolic link"; return 0; fi
  m=$(stat -c %Y -- "$f" 2>/dev/null || echo 0)
  [ "$m" -ge "$since" ] || return 0
  case $f in *.gz) r='gzip -dc --' ;; *) r='cat --' ;; esac
  if [ -r "$f" ]; then su=
  elif e=$(sudo -n head -c 0 -- "$f" 2>&1 >/dev/null); then su='sudo -n'
  else
    echo "unreadable $kind $f not readable by $(id -un), and sudo -n was refused: $(printf '%s' "$e" | tr '\n' ' ')"
    return 0
  fi
  case $kind in
    dpkg) keep='from == "" || substr($0, 1, 19) >= from' ;;
    apt) keep='/^Start-Date: / { k = ($2 " " $3 >= from) } from == "" || k' ;;
  esac
  echo "file $kind $f"
  $su $r "$f" 2>/dev/null | awk -v from="$from" "$keep" | tail -c "$((max + 1))" | sed 's/^/|/'
  echo "end $kind $f"
}
n=20
while [ "$n" -ge 1 ]; do
  for k in apt dpkg; do
    case $k in apt) b=/var/log/apt/history.log ;; dpkg) b=/var/log/dpkg.log ;; esac
    one "$k" "$b.$n.gz"
    one "$k" "$b.$n"
  done
  n=$((n - 1))
done
one apt /var/log/apt/history.log
one dpkg /var/log/dpkg.log
echo "clock $(date +%s) $(date +%z)"
"#;

/// Which log a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// dpkg's log.
    Dpkg,
    /// apt's history.
    Apt,
}

/// What one host's answer to [`host_read_command`] holds.
#[derive(Debug, Clone, Default)]
pub struct HostLogs {
    /// dpkg's changes, every file's.
    pub dpkg: Vec<DpkgChange>,
    /// apt's runs, every file's.
    pub apt: Vec<AptRun>,
    /// The host's clock when it answered (seconds since the epoch).
    pub clock: Option<i64>,
    /// The host's offset from UTC, in seconds (`date +%z`).
    pub offset: i32,
    /// What the reader should know: files not readable, files or lines
    /// cut or skipped. Each says which file.
    pub warnings: Vec<String>,
    /// Whether a log could not be read at all (the answer is incomplete).
    pub unreadable: bool,
}

/// Parse what [`host_read_command`] printed on a host. `dropped` is how
/// many bytes of it the transport left out (only the tail is kept): then
/// the oldest files are missing. A file cut to its newest [`FILE_LIMIT`]
/// bytes, or files left out, are a warning when what was read starts
/// after `since` (the window asked for), so that changes in the window
/// may be missing; otherwise nothing of the window was lost. Pure.
pub fn parse_host_logs(out: &str, dropped: u64, since: i64) -> HostLogs {
    let mut logs = HostLogs::default();
    // the offset comes last: collect each file's lines first
    let mut files: Vec<(LogKind, String, Vec<&str>)> = Vec::new();
    let mut open: Option<(LogKind, String, Vec<&str>)> = None;
    for line in out.lines() {
        if let Some(content) = line.strip_prefix('|') {
            if let Some((_, _, lines)) = open.as_mut() {
                lines.push(content);
            }
            continue;
        }
        let mut words = line.splitn(3, ' ');
        let (tag, kind, rest) = (words.next(), words.next(), words.next().unwrap_or(""));
        let kind = match kind {
            Some("dpkg") => LogKind::Dpkg,
            Some("apt") => LogKind::Apt,
            _ => {
                if let (Some("clock"), Some(secs)) = (tag, kind) {
                    logs.clock = secs.parse().ok();
                    logs.offset = parse_offset(rest).unwrap_or(0);
                }
                continue;
            }
        };
        let path = text::clipped_line(rest, 200);
        match tag {
            Some("file") => open = Some((kind, path, Vec::new())),
            Some("end") => files.extend(open.take()),
            Some("unreadable") => {
                logs.unreadable = true;
                logs.warnings.push(format!(
                    "cannot read {}: {}",
                    match kind {
                        LogKind::Dpkg => "dpkg's log",
                        LogKind::Apt => "apt's history",
                    },
                    text::clipped_line(rest, text::REMOTE_TEXT_MAX)
                ));
            }
            _ => {}
        }
    }
    let oldest = files
        .iter()
        .filter_map(|(kind, _, lines)| first_stamp(*kind, lines))
        .min();
    if dropped > 0 && oldest.is_none_or(|t| t - i64::from(logs.offset) > since) {
        logs.warnings.push(format!(
            "only the newest {} bytes of its logs were read ({dropped} older bytes left out), \
             so changes early in the window may be missing",
            out.len()
        ));
    }
    if logs.clock.is_none() {
        logs.unreadable = true;
        logs.warnings.push(
            "its answer did not end as expected (no clock line): it may be incomplete".into(),
        );
    }
    for (kind, path, mut lines) in files {
        let size: usize = lines.iter().map(|l| l.len() + 1).sum();
        if size > FILE_LIMIT {
            // the first line is cut in the middle: leave it out
            lines.remove(0);
            let first = first_stamp(kind, &lines).map(|t| t - i64::from(logs.offset));
            if first.is_none_or(|t| t > since) {
                logs.warnings.push(format!(
                    "`{path}`: only its newest {FILE_LIMIT} bytes were read, and they start \
                     after the window does, so changes early in the window may be missing"
                ));
            }
        }
        let skipped = match kind {
            LogKind::Dpkg => {
                let (changes, skipped) = parse_dpkg_log(lines.iter().copied(), logs.offset);
                logs.dpkg.extend(changes);
                skipped
            }
            LogKind::Apt => {
                let (runs, skipped) = parse_apt_history(lines.iter().copied(), logs.offset);
                logs.apt.extend(runs);
                skipped
            }
        };
        if skipped > 0 {
            logs.warnings.push(format!(
                "`{path}`: {skipped} line(s) not understood, skipped"
            ));
        }
    }
    logs.dpkg.sort_by_key(|c| c.time);
    logs.apt.sort_by_key(|r| r.start);
    logs
}

/// The local time of the oldest entry among a log file's `lines` (the
/// first dated line of dpkg's log, the first `Start-Date` of apt's
/// history), as seconds since the epoch taken as UTC.
fn first_stamp(kind: LogKind, lines: &[&str]) -> Option<i64> {
    lines.iter().find_map(|l| match kind {
        LogKind::Dpkg => l.get(..19).and_then(parse_naive),
        LogKind::Apt => l.strip_prefix("Start-Date: ").and_then(parse_naive),
    })
}

// ---------------------------------------------------------------------------
// Attribution and the merged list

/// Who or what made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum By {
    /// A deployer attempt, from its record.
    Deployer {
        /// The attempt's id.
        attempt: String,
        /// `deploy`, `promote` or `rollback`.
        action: String,
        /// `user@machine`, as the history says.
        who: String,
        /// The attempt's outcome.
        outcome: String,
        /// Why, when the record says.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// What the attempt says happened on this host (`changed`,
        /// `failed`, `rolled-back`, …).
        result: String,
    },
    /// An apt run, from apt's history.
    Apt {
        /// Its `Commandline`.
        #[serde(skip_serializing_if = "Option::is_none")]
        commandline: Option<String>,
        /// Its `Requested-By`.
        #[serde(skip_serializing_if = "Option::is_none")]
        requested_by: Option<String>,
    },
    /// dpkg's log alone: neither a deployer attempt nor an apt run
    /// accounts for it (`dpkg -i`, or apt's history rotated away).
    Dpkg,
}

/// One change in the timeline: on one host, or on several hosts of a
/// stage when identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// When, on the (first) host's clock, with its offset:
    /// `2026-12-07T05:30:01+01:00`.
    pub time: String,
    /// The same instant as seconds since the epoch, on the host's clock.
    pub epoch: i64,
    /// The stage.
    pub stage: String,
    /// The hosts (several when the change was the same on each).
    pub hosts: Vec<String>,
    /// The package.
    pub package: String,
    /// The version before (`null`: not installed).
    pub from: Option<String>,
    /// The version after (`null`: removed).
    pub to: Option<String>,
    /// What dpkg did (`install`, `upgrade`, `downgrade`, `remove`,
    /// `purge`), or `null` for a deployer record that no dpkg line
    /// confirms.
    pub change: Option<Change>,
    /// dpkg's last state for the package when the change did not settle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsettled: Option<String>,
    /// Who or what made it.
    pub by: By,
    /// The host's offset, seconds east of UTC (for rendering).
    #[serde(skip)]
    pub offset: i32,
}

/// One host's inputs to [`attribute`].
#[derive(Debug, Clone)]
pub struct HostInput {
    /// The stage.
    pub stage: String,
    /// The host.
    pub host: String,
    /// Its logs.
    pub logs: HostLogs,
    /// How far ahead of this machine its clock is, in seconds (negative:
    /// behind), when measured.
    pub skew: i64,
}

/// What to keep: changes at or after `since` (host clock), of these
/// hosts and packages when given.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The start of the window, seconds since the epoch.
    pub since: i64,
    /// Only these hosts (empty: every host).
    pub hosts: Vec<String>,
    /// Only these packages (empty: every package).
    pub packages: Vec<String>,
}

impl Filter {
    fn keeps(&self, host: &str, package: &str, epoch: i64) -> bool {
        epoch >= self.since
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h == host))
            && (self.packages.is_empty() || self.packages.iter().any(|p| p == package))
    }
}

/// How long after an attempt's recorded end, or before its start, a dpkg
/// change may still be its own (seconds; the host's measured clock
/// difference is added).
const ATTEMPT_SLACK: i64 = 30;

/// How long before an apt run's start or after its end a dpkg change may
/// be its own (apt writes whole seconds).
const APT_SLACK: i64 = 2;

/// A deployer record's part on one host.
struct Part<'a> {
    record: &'a Record,
    result: HostResult,
    from: Option<&'a str>,
    to: Option<&'a str>,
    start: i64,
    end: i64,
    seen: bool,
}

impl Part<'_> {
    /// Whether dpkg's change `c` is the one this part made: from the
    /// version it found to the one it aimed for, or, on a host it rolled
    /// back (or failed on), the way back.
    fn owns(&self, c: &DpkgChange) -> bool {
        let (from, to) = (c.from.as_deref(), c.to.as_deref());
        let forward = to.is_some() && to == self.to && (self.from.is_none() || from == self.from);
        let back = matches!(self.result, HostResult::RolledBack | HostResult::Failed)
            && from == self.to
            && to == self.from
            && to.is_some();
        forward || back
    }
}

/// Merge each host's dpkg changes with deployer's records and apt's runs:
/// every dpkg change once, attributed to the deployer attempt it belongs
/// to (same host and package, from the version the attempt found to the
/// one it aimed for, or back on a host it rolled back, within the
/// attempt's time allowing for the host's clock), else to the apt run it
/// belongs to (its time, the package and the version it went to), else to
/// dpkg alone. A deployer record's change on a host that no
/// dpkg line confirms (the log rotated away, or unreadable) is still
/// listed, at the attempt's start. Then identical changes on several
/// hosts of a stage are grouped: those of one deployer attempt, or those
/// at the same second by the same apt command or by dpkg alone. Oldest
/// first.
pub fn attribute(hosts: &[HostInput], records: &[Record], filter: &Filter) -> Vec<Event> {
    let mut events = Vec::new();
    for h in hosts {
        let mut parts: Vec<Part<'_>> = records
            .iter()
            .filter(|r| matches!(r.action.as_str(), "deploy" | "promote" | "rollback"))
            .filter(|r| r.stage == h.stage)
            .filter_map(|r| {
                let start = parse_time(&r.time).ok()?;
                Some((r, start))
            })
            .flat_map(|(r, start)| {
                r.hosts
                    .iter()
                    .filter(|hr| hr.host == h.host)
                    .filter(|hr| {
                        matches!(
                            hr.result,
                            HostResult::Changed
                                | HostResult::Failed
                                | HostResult::RolledBack
                                | HostResult::Unknown
                        )
                    })
                    .map(move |hr| Part {
                        record: r,
                        result: hr.result,
                        from: hr.from.as_deref(),
                        to: hr.to.as_deref(),
                        start: start + h.skew - ATTEMPT_SLACK - h.skew.abs(),
                        end: start
                            + h.skew
                            + i64::try_from(r.duration_ms / 1000).unwrap_or(i64::MAX / 4)
                            + 1
                            + ATTEMPT_SLACK
                            + h.skew.abs(),
                        seen: false,
                    })
            })
            .collect();
        for c in &h.logs.dpkg {
            let package = c.package.as_str();
            let mine = parts.iter_mut().find(|p| {
                p.record.package.as_deref() == Some(package)
                    && (p.start..=p.end).contains(&c.time)
                    && p.owns(c)
            });
            // a second dpkg change of one attempt (the way back after a
            // failure) is the attempt's too, on a line of its own
            let by = if let Some(p) = mine {
                p.seen = true;
                deployer_by(p.record, p.result)
            } else if let Some(run) = h.logs.apt.iter().find(|run| apt_owns(run, c)) {
                By::Apt {
                    commandline: run.commandline.clone(),
                    requested_by: run.requested_by.clone(),
                }
            } else {
                By::Dpkg
            };
            if !filter.keeps(&h.host, package, c.time) {
                continue;
            }
            events.push(Event {
                time: String::new(),
                epoch: c.time,
                stage: h.stage.clone(),
                hosts: vec![h.host.clone()],
                package: package.to_string(),
                from: c.from.clone(),
                to: c.to.clone(),
                change: Some(c.change),
                unsettled: c.unsettled.clone(),
                by,
                offset: h.logs.offset,
            });
        }
        for p in parts.iter().filter(|p| !p.seen) {
            let package = p.record.package.as_deref().unwrap_or("");
            let epoch = p.start + ATTEMPT_SLACK + h.skew.abs();
            if !filter.keeps(&h.host, package, epoch) {
                continue;
            }
            events.push(Event {
                time: String::new(),
                epoch,
                stage: h.stage.clone(),
                hosts: vec![h.host.clone()],
                package: package.to_string(),
                from: p.from.map(str::to_string),
                to: p.to.map(str::to_string),
                change: None,
                unsettled: None,
                by: deployer_by(p.record, p.result),
                offset: h.logs.offset,
            });
        }
    }
    events.sort_by(|a, b| (a.epoch, &a.stage, &a.hosts).cmp(&(b.epoch, &b.stage, &b.hosts)));
    let mut grouped: Vec<Event> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    for e in events {
        // what must be the same: everything but the host, and the second
        // unless it is one deployer attempt's
        let second = (!matches!(e.by, By::Deployer { .. })).then_some(e.epoch);
        let key = format!(
            "{:?}",
            (&e.stage, &e.package, &e.from, &e.to, e.change, &e.by, e.offset, second)
        );
        match group_of.get(&key) {
            Some(&i) if !grouped[i].hosts.contains(&e.hosts[0]) => {
                grouped[i].hosts.extend(e.hosts);
            }
            _ => {
                group_of.insert(key, grouped.len());
                grouped.push(e);
            }
        }
    }
    for e in &mut grouped {
        e.time = rfc3339_on_clock(e.epoch, e.offset);
    }
    grouped
}

fn deployer_by(r: &Record, result: HostResult) -> By {
    By::Deployer {
        attempt: r.id.clone(),
        action: r.action.clone(),
        who: r.who(),
        outcome: r.outcome.as_str().to_string(),
        reason: r.reason.clone(),
        result: result.as_str().to_string(),
    }
}

/// Whether apt's `run` made dpkg's change `c`: within its time, the
/// package listed with the version dpkg went to (none for a removal).
fn apt_owns(run: &AptRun, c: &DpkgChange) -> bool {
    let end = run.end.unwrap_or(run.start + 3600);
    (run.start - APT_SLACK..=end + APT_SLACK).contains(&c.time)
        && run
            .packages
            .iter()
            .any(|(p, v)| *p == c.package && *v == c.to)
}

/// `2026-12-07T05:30:01+01:00`.
fn rfc3339_on_clock(epoch: i64, offset: i32) -> String {
    let shown = format_on_clock(epoch, offset);
    let o = format_offset(offset);
    format!("{}T{}{}:{}", &shown[..10], &shown[11..19], &o[..3], &o[3..])
}

// ---------------------------------------------------------------------------
// Rendering

/// Write `events` for people, one line each (time on the host's clock,
/// stage: hosts, package, versions, who or what):
///
/// ```text
/// 2026-12-07 05:30:01 +0000  test: test-1,test-2  fastpath  1.0 -> 1.1  deploy by alice@laptop (attempt 2026…, success)
/// 2026-12-07 05:41:12 +0000  test: test-1  fastpath  1.1 -> 1.0 (downgrade)  apt: apt-get install fastpath=1.0, requested by alice (1000)
/// 2026-12-07 05:42:00 +0000  test: test-1  fastpath  1.0 -> removed  dpkg (unknown)
/// ```
///
/// Every text from a host or a record goes through
/// [`text::clipped_line`].
pub fn render_text(events: &[Event], out: &mut dyn Write) -> io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "no package changes in this window");
    }
    let safe = |s: &str| text::clipped_line(s, text::REMOTE_TEXT_MAX);
    for e in events {
        let from = e.from.as_deref().map_or("(none)".to_string(), safe);
        let to = e.to.as_deref().map_or_else(
            || match e.change {
                Some(Change::Purge) => "purged".to_string(),
                _ => "removed".to_string(),
            },
            safe,
        );
        let kind = match e.change {
            Some(Change::Downgrade) => " (downgrade)",
            _ => "",
        };
        let unsettled = e
            .unsettled
            .as_deref()
            .map(|s| format!(" [left {}]", safe(s)))
            .unwrap_or_default();
        let hosts: Vec<String> = e.hosts.iter().map(|h| safe(h)).collect();
        let by = match &e.by {
            By::Deployer {
                attempt,
                action,
                who,
                outcome,
                reason,
                result,
            } => {
                let reason = reason
                    .as_deref()
                    .map(|r| format!(", reason: {}", safe(r)))
                    .unwrap_or_default();
                let unconfirmed = if e.change.is_none() {
                    ", not in dpkg's log"
                } else {
                    ""
                };
                format!(
                    "{} by {} (attempt {}, {}, {}{unconfirmed}{reason})",
                    safe(action),
                    safe(who),
                    safe(attempt),
                    safe(outcome),
                    safe(result)
                )
            }
            By::Apt {
                commandline,
                requested_by,
            } => {
                let cmd = commandline
                    .as_deref()
                    .map_or("(no command line)".into(), safe);
                match requested_by {
                    Some(r) => format!("apt: {cmd}, requested by {}", safe(r)),
                    None => format!("apt: {cmd}"),
                }
            }
            By::Dpkg => "dpkg (unknown)".to_string(),
        };
        writeln!(
            out,
            "{}  {}: {}  {}  {from} -> {to}{kind}{unsettled}  {by}",
            format_on_clock(e.epoch, e.offset),
            safe(&e.stage),
            hosts.join(","),
            safe(&e.package),
        )?;
    }
    Ok(())
}

/// Write `events` for scripts: a pretty-printed JSON array, then a
/// newline.
pub fn render_json(events: &[Event], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, events)?;
    writeln!(out)
}

#[cfg(test)]
mod tests;
