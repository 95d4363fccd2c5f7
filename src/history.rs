//! The audit log: one JSON line per deploy, promote, freeze or unfreeze
//! attempt, whatever its outcome, appended durably to a local file.
//!
//! This module owns the record format, the append that survives crashes and
//! concurrent writers (one `O_APPEND` write under an exclusive `flock`, then
//! `fsync`), reading the log back, and rendering it as text or JSON. Deciding
//! *whether* to record (dry runs are not recorded) is the caller's business;
//! so is choosing the file. Apart from [`append`], [`read`], [`now_rfc3339`]
//! and [`local_identity`], everything here is pure.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One attempt at changing a stage, as written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the attempt started: RFC 3339, UTC, whole seconds
    /// (`2026-11-21T07:30:05Z`).
    pub time: String,
    /// Local login name of the operator.
    pub user: String,
    /// Local host name the command ran on.
    pub machine: String,
    /// `deploy`, `promote`, `freeze` or `unfreeze`.
    pub action: String,
    /// The package concerned, if the action is about one.
    #[serde(default)]
    pub package: Option<String>,
    /// The stage acted on.
    pub stage: String,
    /// The version the attempt aimed for.
    #[serde(default)]
    pub version: Option<String>,
    /// How the attempt ended as a whole.
    pub outcome: Outcome,
    /// Why it was refused or failed, or the `--force` / freeze reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether `--force` overrode a safety check.
    #[serde(default)]
    pub forced: bool,
    /// Wall-clock duration of the attempt.
    #[serde(default)]
    pub duration_ms: u64,
    /// What happened on each host (empty when nothing was contacted).
    #[serde(default)]
    pub hosts: Vec<HostRecord>,
}

/// How an attempt ended as a whole.
impl Record {
    /// A record of `action` on `stage` by the local operator, stamped now;
    /// the caller fills in the rest.
    pub fn begin(action: &str, stage: &str, outcome: Outcome) -> Record {
        let (user, machine) = local_identity();
        Record {
            time: now_rfc3339(),
            user,
            machine,
            action: action.to_string(),
            package: None,
            stage: stage.to_string(),
            version: None,
            outcome,
            reason: None,
            forced: false,
            duration_ms: 0,
            hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every host reached the target.
    Success,
    /// A check refused the attempt before any host was changed.
    Refused,
    /// The attempt failed and no host was left changed.
    Failed,
    /// The attempt failed after changing some hosts.
    Partial,
    /// A signal stopped the attempt before every host was done.
    Interrupted,
}

impl Outcome {
    /// The word used in the log and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Partial => "partial",
            Outcome::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one attempt did to one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The host, as named in the configuration.
    pub host: String,
    /// The version installed before (`None`: not installed, or unknown).
    #[serde(default)]
    pub from: Option<String>,
    /// The version aimed for on this host.
    #[serde(default)]
    pub to: Option<String>,
    /// What happened.
    pub result: HostResult,
    /// Details, typically the error when the host failed.
    #[serde(default)]
    pub message: Option<String>,
}

/// What happened on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostResult {
    /// The host now runs the target version.
    Changed,
    /// The host already ran the target version.
    Unchanged,
    /// The change failed on this host.
    Failed,
    /// The change was undone after a failure.
    RolledBack,
    /// The attempt stopped before reaching this host.
    Untouched,
    /// The host's state could not be determined afterwards.
    Unknown,
}

impl HostResult {
    /// The word used in the log and in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            HostResult::Changed => "changed",
            HostResult::Unchanged => "unchanged",
            HostResult::Failed => "failed",
            HostResult::RolledBack => "rolled-back",
            HostResult::Untouched => "untouched",
            HostResult::Unknown => "unknown",
        }
    }
}

impl fmt::Display for HostResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file exists but could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A line is not a record (hand-edited, or from an incompatible version).
    #[error("`{}` line {line}: not a history record: {message}", path.display())]
    Parse {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
}

/// [`append`], and when the log cannot be written, say so on stderr: the
/// attempt itself has already happened and its outcome stands.
pub fn append_or_warn(path: &Path, record: &Record) {
    if let Err(e) = append(path, record) {
        eprintln!(
            "error: could not record this attempt in `{}`: {e}",
            path.display()
        );
    }
}

/// Append `record` to the log at `path` as one line, durably.
///
/// Parent directories are created as needed and a new file gets mode 0644.
/// The line goes out in a single `O_APPEND` write while an exclusive `flock`
/// is held, so concurrent deployers never interleave; the file is then
/// `fsync`ed, and so is its directory when the file was just created. If a
/// crash left the last line unterminated, a newline is written first so
/// that this record still stands on a line of its own.
pub fn append(path: &Path, record: &Record) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;

    let (file, created) = open_for_append(path)?;
    let _lock = Flock::exclusive(&file)?;

    let mut line = Vec::with_capacity(256);
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1)?;
        if last[0] != b'\n' {
            line.push(b'\n');
        }
    }
    serde_json::to_writer(&mut line, record)?;
    line.push(b'\n');
    // For a regular file this is one write(2) unless the disk is full.
    (&file).write_all(&line)?;
    file.sync_all()?;

    if created {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Opens the log for appending; `true` when this call created it.
fn open_for_append(path: &Path) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    // Readable too, to look at the last byte (see `append`).
    options.read(true).append(true).mode(0o644);
    match options.clone().create_new(true).open(path) {
        Ok(f) => Ok((f, true)),
        // Someone else created it first (or it was there all along).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok((options.create(true).open(path)?, false))
        }
        Err(e) => Err(e),
    }
}

/// An exclusive `flock` on a file, released when dropped.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn exclusive(file: &'a File) -> io::Result<Self> {
        loop {
            // SAFETY: flock on a file descriptor we own for the lifetime 'a.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Flock(file));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; closing the file would release it anyway.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Read every record of the log at `path`, in file (time) order.
///
/// A missing file is an empty history; blank lines are skipped. Any other
/// line that is not a record is an error naming the file and line, rather
/// than being silently dropped from an audit log.
pub fn read(path: &Path) -> Result<Vec<Record>, HistoryError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(HistoryError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse(path, &bytes)
}

/// The pure half of [`read`]: `path` is only used in error messages.
fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Record>, HistoryError> {
    let mut records = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice(line).map_err(|e| HistoryError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

/// The records about `package` (if given) on `stage` (if given), newest
/// first. The log is in time order, so newest first is reverse file order.
pub fn select<'a>(
    records: &'a [Record],
    package: Option<&str>,
    stage: Option<&str>,
) -> Vec<&'a Record> {
    records
        .iter()
        .rev()
        .filter(|r| package.is_none_or(|p| r.package.as_deref() == Some(p)))
        .filter(|r| stage.is_none_or(|s| r.stage == s))
        .collect()
}

/// Write `records` for people: a header line per attempt, then one indented
/// line per host and the reason, if any.
///
/// ```text
/// 2026-11-21T07:30:05Z  deploy    fastpath 0.81~pr748-191 -> prod  partial  alice@laptop  12.3s
///     prod-1  0.77~pr705-119 -> 0.81~pr748-191  changed
///     prod-2  0.77~pr705-119  failed: dpkg lock held
/// ```
pub fn render_text(records: &[&Record], out: &mut dyn Write) -> io::Result<()> {
    if records.is_empty() {
        return writeln!(out, "no matching history");
    }
    for r in records {
        let subject = match (&r.package, &r.version) {
            (Some(p), Some(v)) => format!("{p} {v} -> {}", r.stage),
            (None, Some(v)) => format!("{v} -> {}", r.stage),
            (Some(p), None) => format!("{p} on {}", r.stage),
            (None, None) => r.stage.clone(),
        };
        let forced = if r.forced { " (forced)" } else { "" };
        writeln!(
            out,
            "{}  {:<8}  {subject}  {}{forced}  {}@{}  {}",
            r.time,
            r.action,
            r.outcome,
            r.user,
            r.machine,
            format_duration(r.duration_ms)
        )?;
        let width = r
            .hosts
            .iter()
            .map(|h| h.host.chars().count())
            .max()
            .unwrap_or(0);
        for h in &r.hosts {
            let from = h.from.as_deref().unwrap_or("(none)");
            let versions = match (h.result, &h.to) {
                (HostResult::Changed, Some(to)) => format!("{from} -> {to}"),
                _ => from.to_string(),
            };
            write!(out, "    {:<width$}  {versions}  {}", h.host, h.result)?;
            match h
                .message
                .as_deref()
                .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
            {
                Some(first) => writeln!(out, ": {}", first.trim())?,
                None => writeln!(out)?,
            }
        }
        if let Some(reason) = &r.reason {
            let mut lines = reason.lines();
            writeln!(out, "    reason: {}", lines.next().unwrap_or(""))?;
            for more in lines {
                writeln!(out, "            {more}")?;
            }
        }
    }
    Ok(())
}

/// `12.3s`, `850ms`, `2m05s`: short, and exact enough to compare runs.
fn format_duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{}.{}s", ms / 1000, ms % 1000 / 100),
        _ => {
            let secs = ms / 1000;
            format!("{}m{:02}s", secs / 60, secs % 60)
        }
    }
}

/// Write `records` for scripts: a pretty-printed JSON array of the records
/// exactly as stored, followed by a newline.
pub fn render_json(records: &[&Record], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, records)?;
    writeln!(out)
}

/// The current time as [`format_rfc3339`] writes it.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339 in UTC, whole seconds:
/// `1795246205` gives `2026-11-21T07:30:05Z`.
pub fn format_rfc3339(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian (year, month, day) of the day `days` after
/// 1970-01-01. Works in 400-year eras of 146097 days, with years starting
/// on 1 March so that the leap day falls at the end (H. Hinnant's
/// `civil_from_days`, restricted to non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, the start of an era.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March ... 11 = February.
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Who is deploying from where: `(user, machine)`.
///
/// The user is `$USER` or `$LOGNAME`, else the name of the effective uid in
/// the password database, else the uid number; the machine is the host name.
pub fn local_identity() -> (String, String) {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_else(user_from_passwd);
    (user, host_name())
}

fn user_from_passwd() -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage; on
    // success pw_name points into `buf`, which outlives its use below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: pw_name is a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        if let Ok(name) = name.to_str() {
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    uid.to_string()
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(
        name: &str,
        from: Option<&str>,
        to: Option<&str>,
        result: HostResult,
        message: Option<&str>,
    ) -> HostRecord {
        HostRecord {
            host: name.to_string(),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            result,
            message: message.map(str::to_string),
        }
    }

    fn record(
        time: &str,
        action: &str,
        package: Option<&str>,
        stage: &str,
        outcome: Outcome,
    ) -> Record {
        Record {
            time: time.to_string(),
            user: "alice".to_string(),
            machine: "laptop".to_string(),
            action: action.to_string(),
            package: package.map(str::to_string),
            stage: stage.to_string(),
            version: None,
            outcome,
            reason: None,
            forced: false,
            duration_ms: 0,
            hosts: Vec::new(),
        }
    }

    /// A small but varied log, oldest first.
    fn sample() -> Vec<Record> {
        let mut deploy = record(
            "2026-11-21T07:30:05Z",
            "deploy",
            Some("fastpath"),
            "prod",
            Outcome::Partial,
        );
        deploy.version = Some("0.81~pr748-191".to_string());
        deploy.duration_ms = 12_345;
        deploy.hosts = vec![
            host(
                "prod-1",
                Some("0.77~pr705-119"),
                Some("0.81~pr748-191"),
                HostResult::Changed,
                None,
            ),
            host(
                "prod-22",
                Some("0.77~pr705-119"),
                Some("0.81~pr748-191"),
                HostResult::Failed,
                Some("E: Could not get lock /var/lib/dpkg/lock-frontend.\nmore detail"),
            ),
            host(
                "prod-3",
                None,
                Some("0.81~pr748-191"),
                HostResult::Untouched,
                None,
            ),
        ];

        let mut refused = record(
            "2026-11-21T08:00:00Z",
            "promote",
            Some("fastpath"),
            "prod",
            Outcome::Refused,
        );
        refused.version = Some("0.82~pr750-3".to_string());
        refused.reason = Some("stage `prod` is frozen: release week".to_string());
        refused.duration_ms = 850;

        let mut freeze = record(
            "2026-11-21T09:00:00Z",
            "freeze",
            None,
            "prod",
            Outcome::Success,
        );
        freeze.reason = Some("release week\nask bob before unfreezing".to_string());

        let mut forced = record(
            "2026-11-22T10:15:00Z",
            "deploy",
            Some("ooni-backend"),
            "test",
            Outcome::Success,
        );
        forced.version = Some("1:2.0-1".to_string());
        forced.forced = true;
        forced.reason = Some("hotfix for #123".to_string());
        forced.duration_ms = 125_000;
        forced.hosts = vec![host(
            "test-1",
            Some("1:1.9-1"),
            Some("1:2.0-1"),
            HostResult::Changed,
            None,
        )];

        vec![deploy, refused, freeze, forced]
    }

    #[test]
    fn appended_records_read_back_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/deployer-history.jsonl");
        let records = sample();
        for r in &records {
            append(&path, r).unwrap();
        }
        assert_eq!(read(&path).unwrap(), records);

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), records.len());
        for line in text.lines() {
            assert!(line.starts_with("{\"time\":"), "{line}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // The umask may only take bits away.
        assert_eq!(mode & !0o644, 0, "mode {mode:o}");
    }

    #[test]
    fn append_after_a_torn_last_line_starts_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let records = sample();
        append(&path, &records[0]).unwrap();
        // A crash in the middle of a write.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"time\":\"2026-")
            .unwrap();
        append(&path, &records[1]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1], "{\"time\":\"2026-");
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 2: not a history record"), "{err}");
    }

    #[test]
    fn concurrent_appenders_do_not_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let mut big = sample().remove(0);
        big.reason = Some("x".repeat(20_000));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10 {
                        append(&path, &big).unwrap();
                    }
                });
            }
        });
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 40);
        assert!(back.iter().all(|r| *r == big));
    }

    #[test]
    fn missing_file_is_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&dir.path().join("nope.jsonl")).unwrap(), Vec::new());
    }

    #[test]
    fn corrupt_line_is_reported_with_file_and_line() {
        let good = serde_json::to_string(&sample()[0]).unwrap();
        let text = format!("{good}\n\n{good}\n{{\"time\": 3}}\n{good}\n");
        let err = parse(Path::new("/x/deployer-history.jsonl"), text.as_bytes()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("`/x/deployer-history.jsonl` line 4: not a history record: "),
            "{msg}"
        );
        assert!(matches!(err, HistoryError::Parse { line: 4, .. }));
    }

    #[test]
    fn blank_lines_and_short_old_records_are_accepted() {
        let text = "\n  \n{\"time\":\"2026-01-01T00:00:00Z\",\"user\":\"u\",\"machine\":\"m\",\
                    \"action\":\"unfreeze\",\"stage\":\"prod\",\"outcome\":\"success\"}\n\n";
        let records = parse(Path::new("h"), text.as_bytes()).unwrap();
        let mut want = record(
            "2026-01-01T00:00:00Z",
            "unfreeze",
            None,
            "prod",
            Outcome::Success,
        );
        want.user = "u".to_string();
        want.machine = "m".to_string();
        assert_eq!(records, vec![want]);
    }

    #[test]
    fn select_is_newest_first_and_filters() {
        let records = sample();
        let times = |package, stage| -> Vec<&str> {
            select(&records, package, stage)
                .iter()
                .map(|r| r.time.as_str())
                .collect()
        };
        let cases: [(Option<&str>, Option<&str>, &[&str]); 6] = [
            (
                None,
                None,
                &[
                    "2026-11-22T10:15:00Z",
                    "2026-11-21T09:00:00Z",
                    "2026-11-21T08:00:00Z",
                    "2026-11-21T07:30:05Z",
                ],
            ),
            (
                Some("fastpath"),
                None,
                &["2026-11-21T08:00:00Z", "2026-11-21T07:30:05Z"],
            ),
            (
                None,
                Some("prod"),
                &[
                    "2026-11-21T09:00:00Z",
                    "2026-11-21T08:00:00Z",
                    "2026-11-21T07:30:05Z",
                ],
            ),
            (
                Some("ooni-backend"),
                Some("test"),
                &["2026-11-22T10:15:00Z"],
            ),
            (Some("ooni-backend"), Some("prod"), &[]),
            (Some("unknown"), None, &[]),
        ];
        for (package, stage, want) in cases {
            assert_eq!(
                times(package, stage),
                want,
                "package {package:?}, stage {stage:?}"
            );
        }
    }

    #[test]
    fn json_names_are_kebab_case() {
        let line = serde_json::to_string(&sample()[0]).unwrap();
        assert!(line.contains("\"outcome\":\"partial\""), "{line}");
        let rolled = serde_json::to_string(&HostResult::RolledBack).unwrap();
        assert_eq!(rolled, "\"rolled-back\"");
        for r in [
            HostResult::Changed,
            HostResult::Unchanged,
            HostResult::Failed,
            HostResult::RolledBack,
            HostResult::Untouched,
            HostResult::Unknown,
        ] {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        for o in [
            Outcome::Success,
            Outcome::Refused,
            Outcome::Failed,
            Outcome::Partial,
        ] {
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{o}\""));
        }
    }

    fn text(records: &[&Record]) -> String {
        let mut out = Vec::new();
        render_text(records, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_listing() {
        let records = sample();
        insta::assert_snapshot!(text(&select(&records, None, None)));
    }

    #[test]
    fn text_listing_when_nothing_matches() {
        assert_eq!(text(&[]), "no matching history\n");
    }

    #[test]
    fn json_listing_is_an_array_of_records() {
        let records = sample();
        let mut out = Vec::new();
        render_json(&select(&records, Some("fastpath"), None), &mut out).unwrap();
        let back: Vec<Record> = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, vec![records[1].clone(), records[0].clone()]);
        let mut out = Vec::new();
        render_json(&[], &mut out).unwrap();
        assert_eq!(out, b"[]\n");
    }

    #[test]
    fn durations() {
        let cases = [
            (0, "0ms"),
            (850, "850ms"),
            (1_000, "1.0s"),
            (12_345, "12.3s"),
            (59_999, "59.9s"),
            (60_000, "1m00s"),
            (125_000, "2m05s"),
            (3_600_000, "60m00s"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_duration(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn rfc3339_of_known_instants() {
        // Checked with `date -u -d @N +%Y-%m-%dT%H:%M:%SZ`.
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (86_399, "1970-01-01T23:59:59Z"),
            (68_169_600, "1972-02-29T00:00:00Z"),
            (946_684_799, "1999-12-31T23:59:59Z"),
            (951_825_600, "2000-02-29T12:00:00Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_735_689_599, "2024-12-31T23:59:59Z"),
            (1_795_246_205, "2026-11-21T07:30:05Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(format_rfc3339(secs), want, "{secs}");
        }
    }

    #[test]
    fn now_is_well_formed() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }

    #[test]
    fn local_identity_is_never_empty() {
        let (user, machine) = local_identity();
        assert!(!user.is_empty());
        assert!(!machine.is_empty());
        assert!(!user_from_passwd().is_empty());
    }
}
