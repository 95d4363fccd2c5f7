//! The audit log: one JSON line per deploy, promote, rollback, freeze,
//! unfreeze or unlock attempt, whatever its outcome, appended durably to a
//! local file and to the hosts the attempt touched.
//!
//! This module owns the record format; attempts ([`Attempt`]: an id and a
//! start time fixed when the attempt begins, so that a `started` line
//! written before the first host is changed and the final line share them);
//! the local log's lines (appended through [`local_file::append_line`],
//! which survives crashes and concurrent writers); the commands
//! that append to and read the root-owned copy on each host
//! ([`HOST_LOG_FILE`]); reading logs back without ever failing on a torn or
//! corrupt line (it is skipped with a warning); merging the lines of one
//! attempt ([`merge`]); and rendering as text or JSON.
//!
//! Deciding *whether* to record (dry runs are not recorded), choosing the
//! file and sending the host commands are the caller's business. Apart from
//! [`append`], [`check_writable`], [`read`], [`Attempt::start`] and
//! [`now_rfc3339`], everything here is pure.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::command::RemoteCommand;
use crate::console::Console;
use crate::local_file;
use crate::operator::{self, Operator};
use crate::text;

/// The directory of the history kept on each host: root-owned, mode 0755.
pub const HOST_LOG_DIR: &str = "/var/log/deployer";

/// The history kept on each host: root-owned, mode 0644, so that anyone
/// who can log in may read it and only root may write it.
pub const HOST_LOG_FILE: &str = "/var/log/deployer/history.jsonl";

/// The file name of [`HOST_LOG_FILE`] inside [`HOST_LOG_DIR`].
const HOST_LOG_NAME: &str = "history.jsonl";

/// One attempt at changing a stage, as written to the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unique per attempt: the `started` line and the final line of one
    /// attempt share it (empty in lines written before ids existed).
    #[serde(default)]
    pub id: String,
    /// When the attempt started: RFC 3339, UTC, whole seconds
    /// (`2026-11-21T07:30:05Z`).
    pub time: String,
    /// The person who ran it: `SUDO_USER` under sudo, else the local
    /// account (see [`Operator`]).
    pub user: String,
    /// The account deployer ran as when that was not `user`: `root` under
    /// sudo.
    #[serde(default)]
    pub as_user: Option<String>,
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
    /// How the attempt ended as a whole (`started` until it has ended).
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
    /// What happened on each host (empty when nothing was contacted; the
    /// plan, every host `planned`, in a `started` record).
    #[serde(default)]
    pub hosts: Vec<HostRecord>,
    /// The changelog entries that went out (or were taken back, for a
    /// rollback) with a deploy: version and first lines, newest first.
    /// Empty for other records, and when the package has no changelog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::changelog::Summary>,
    /// A rollback carried out into a frozen stage (allowed, with
    /// `--reason`, because it goes back to a version the stage ran
    /// before): recorded and notified as a rollback under freeze.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub under_freeze: bool,
    /// The alerts (one line each: name, labels, since, summary) that held
    /// the stage and that `--override-freeze --reason` went through; or
    /// why Alertmanager could not be asked. Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts_overridden: Vec<String>,
    /// The failure budget of a rollout whose stage sets `max_failures`:
    /// how many hosts failed, and how many were allowed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_budget: Option<FailureBudget>,
    /// The closed deploy window (why the stage was closed) that
    /// `--override-freeze --reason` went through; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_overridden: Option<String>,
    /// The approvals a `--plan` deploy was carried out with (the stage's
    /// `approvals`): who signed the plan, with which key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// One approval of a plan: a signature verified against the stage's
/// `allowed_signers` (see [`crate::approval`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver: the principal `allowed_signers` names for the key.
    pub principal: String,
    /// The key's fingerprint (`SHA256:...`).
    pub fingerprint: String,
    /// When the signature was verified (an SSH signature carries no time):
    /// RFC 3339, UTC.
    pub verified_at: String,
}

/// How a rollout kept to its failure budget (`max_failures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureBudget {
    /// `max_failures` as written: a count (`2`) or a percentage (`25%`).
    pub max_failures: String,
    /// The hosts after the canary that could fail without halting the
    /// rollout: `max_failures` of the hosts taking part, rounded down.
    pub allowed: usize,
    /// The hosts that failed (the canary included).
    pub failed: usize,
    /// Whether the failures halted the rollout (a failing canary, a host
    /// in an unknown state, or more failures than allowed).
    pub halted: bool,
}

impl Record {
    /// A record of `action` on `stage` by the current operator, stamped now;
    /// the caller fills in the rest.
    ///
    /// Kept for callers written before [`Attempt`]: it starts an attempt
    /// and records it at once, so its time is when the record is built and
    /// its duration is zero. New code starts an [`Attempt`] when the work
    /// begins and calls [`Attempt::record`] at the end.
    pub fn begin(action: &str, stage: &str, outcome: Outcome) -> Record {
        Attempt::start(action).record(stage, outcome)
    }

    /// `user@machine`, with ` (sudo)` when run through sudo.
    pub fn who(&self) -> String {
        operator::display(&self.user, &self.machine, self.as_user.as_deref())
    }

    /// The record as written into the history kept on `host`, which
    /// every user of the host can read, and as a host's record is trusted
    /// when read back: with that host's own part of the attempt only (a
    /// host speaks for itself; a record naming every host of a stage on
    /// every host made the stage's logs grow with the square of its size),
    /// and without the service's log lines (`log_tail`), which come from
    /// root-only logs and may carry secrets. The local history and the
    /// operator's output keep them.
    pub fn for_host(&self, host: &str) -> Record {
        let mut shared = self.clone();
        // its first entry: a host that lists itself twice is not asked which
        let mine = shared.hosts.iter().position(|h| h.host == host);
        shared.hosts = mine
            .map(|i| shared.hosts.swap_remove(i))
            .into_iter()
            .collect();
        for h in &mut shared.hosts {
            h.log_tail.clear();
        }
        shared
    }
}

/// One attempt, from its start: its id, its start time and who runs it.
/// Every record of the attempt comes from [`Attempt::record`], so they all
/// share the id and the start time.
#[derive(Debug, Clone)]
pub struct Attempt {
    id: String,
    time: String,
    started: Instant,
    operator: Operator,
    action: String,
}

impl Attempt {
    /// Begin an attempt at `action` now, by the current operator.
    pub fn start(action: &str) -> Attempt {
        Attempt::start_as(action, Operator::current())
    }

    /// Begin an attempt at `action` now, by `operator`.
    pub fn start_as(action: &str, operator: Operator) -> Attempt {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let salt = random_u64().unwrap_or_else(|| {
            // No random source: the clock's nanoseconds still tell apart two
            // attempts of one process in the same second.
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::from(d.subsec_nanos()))
        });
        Attempt {
            id: attempt_id(secs, std::process::id(), salt),
            time: format_rfc3339(secs),
            started: Instant::now(),
            operator,
            action: action.to_string(),
        }
    }

    /// The attempt's id, shared by all its records.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the attempt started, as recorded.
    pub fn time(&self) -> &str {
        &self.time
    }

    /// Who runs it.
    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// A record of this attempt on `stage` with `outcome`: the attempt's id,
    /// start time and operator, and the time elapsed since it started. The
    /// caller fills in the rest, e.g.
    /// `Record { package, hosts, ..attempt.record(stage, Outcome::Success) }`.
    /// For the `started` record, pass [`Outcome::Started`] and the plan as
    /// hosts whose result is [`HostResult::Planned`].
    pub fn record(&self, stage: &str, outcome: Outcome) -> Record {
        Record {
            id: self.id.clone(),
            time: self.time.clone(),
            user: self.operator.user.clone(),
            as_user: self.operator.as_user.clone(),
            machine: self.operator.machine.clone(),
            action: self.action.clone(),
            package: None,
            stage: stage.to_string(),
            version: None,
            outcome,
            reason: None,
            forced: false,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            hosts: Vec::new(),
            changes: Vec::new(),
            under_freeze: false,
            alerts_overridden: Vec::new(),
            failure_budget: None,
            window_overridden: None,
            approvals: Vec::new(),
        }
    }

    /// The record of this attempt refused on `stage` before any host was
    /// changed: `reason` says why. Every command's refusal is made here
    /// (deploy's adds the package and version it aimed for) and put on
    /// record with [`put_on_record`].
    pub fn refused(&self, stage: &str, reason: String) -> Record {
        Record {
            reason: Some(reason),
            ..self.record(stage, Outcome::Refused)
        }
    }
}

/// `20261121T073005Z-4242-00c0ffee00c0ffee`: the start second, the process
/// id and 64 random bits, so that two attempts never share an id, even
/// from two machines in the same second.
fn attempt_id(unix_secs: u64, pid: u32, salt: u64) -> String {
    let compact: String = format_rfc3339(unix_secs)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    format!("{compact}-{pid}-{salt:016x}")
}

fn random_u64() -> Option<u64> {
    let mut bytes = [0u8; 8];
    match rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => Some(u64::from_le_bytes(bytes)),
        _ => None,
    }
}

/// How an attempt ended as a whole.
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
    /// Written before the first host is changed, with the plan; replaced
    /// by the attempt's final record. Alone, it means that the attempt was
    /// killed (or is still running).
    Started,
    /// Stopped before every host was done: by a signal (SIGINT, SIGTERM,
    /// SIGHUP), or by a freeze set during the rollout.
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
            Outcome::Started => "started",
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
    /// The service restart on this host, when the package restarts one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartRecord>,
    /// The service's last log lines, kept for a failed host (bounded, one
    /// safe line each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// Every evaluation of a gate on this host during the attempt's bake,
    /// oldest first (absent in records older than gates, and when no gate
    /// ran).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateRecord>,
}

/// One evaluation of a gate on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    /// The gate (`[gate:NAME]`).
    pub gate: String,
    /// When, RFC 3339 (UTC).
    pub time: String,
    /// The host's value, when there was one (an `http` gate's: the status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `pass`, `fail`, `no-data` or `error`; with `no_data = pause`, what
    /// the operator chose is in `detail`.
    pub verdict: String,
    /// In words: the value against the condition, or why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// How the service restart went on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRecord {
    /// What was restarted: the units, or `restart_command`.
    pub what: String,
    /// Whether it worked (and the units run afterwards).
    pub ok: bool,
    /// The units' state afterwards, or why the restart failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
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
    /// In a `started` record: the plan is to change this host.
    Planned,
    /// Left out of the attempt (`--skip-unreachable`, `--exclude`): not
    /// contacted, not changed, not locked; the record's `message` says why
    /// (`down: ...`, `excluded`).
    Skipped,
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
            HostResult::Planned => "planned",
            HostResult::Skipped => "skipped",
        }
    }
}

impl fmt::Display for HostResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the local log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file exists but could not be read.
    #[error("cannot read the history `{}`: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file cannot be created or appended to.
    #[error("cannot append to the history `{}`: {source}", path.display())]
    Write {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl HistoryError {
    /// How to fix it, for a `note:` line.
    pub fn note(&self) -> &'static str {
        match self {
            HistoryError::Io { .. } => {
                "check the file's permissions, or point `history_file` in deployer.ini elsewhere"
            }
            HistoryError::Write { .. } => {
                "every attempt must be recorded, so nothing was done; fix the permissions of \
                 the file and its directory, or point `history_file` in deployer.ini elsewhere"
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The local log (file system edge)

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

/// Put `record` on record, as every command does with an attempt's
/// record, refused ones first: appended to the history at `path` (a
/// failure to append is an error line: the attempt's outcome stands) and
/// kept as the command's `--json` document.
pub fn put_on_record(path: &Path, console: &Console, record: &Record) {
    append_or_warn(path, record);
    console.document(serde_json::to_value(record).expect("a record is JSON"));
}

/// Append `record` to the log at `path` as one line, durably.
///
/// Parent directories are created as needed and a new file gets mode 0644.
/// This is [`local_file::append_line`]: the file is opened as
/// [`local_file::open_append`] opens files (never through a final symbolic
/// link, nor in a directory that others than the user and root can write);
/// the line goes out in a single `O_APPEND` write while an exclusive `flock`
/// is held, so concurrent deployers never interleave; the file is then
/// `fsync`ed, and so is its directory when the file was just created. If a
/// crash left the last line unterminated, a newline is written first so
/// that this record still stands on a line of its own.
pub fn append(path: &Path, record: &Record) -> io::Result<()> {
    local_file::append_line(path, 0o644, to_line(record).as_bytes(), |_| Ok(()))
}

/// Prove that records can be appended to the log at `path`, without
/// adding one: create the missing directories and the file (mode 0644, made
/// durable), open it for appending and take its lock
/// ([`local_file::check_appendable`]). Run before taking the deploy lock,
/// so that an attempt that could not be recorded never starts.
pub fn check_writable(path: &Path) -> Result<(), HistoryError> {
    local_file::check_appendable(path, 0o644).map_err(|source| HistoryError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The record as one line of the log: compact JSON and `\n` (JSON strings
/// escape every newline, so a record is always exactly one line). This is
/// also what [`host_append_command`] expects on its stdin.
pub fn to_line(record: &Record) -> String {
    let mut line = serde_json::to_string(record).expect("a record always serializes");
    line.push('\n');
    line
}

/// A log as read back: one record per attempt, and what was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Log {
    /// The records, merged by id ([`merge`]), oldest first.
    pub records: Vec<Record>,
    /// One line per line that was skipped, naming the file and the line,
    /// ready to print after `warning: `.
    pub warnings: Vec<String>,
}

/// Read the log at `path`: every attempt once ([`merge`]), oldest first.
///
/// A missing file is an empty history. A line that is not a record (a
/// write torn by a crash, a hand edit) is skipped with a warning naming the
/// file and the line, so one bad line never hides the rest of an audit log;
/// only a file that cannot be read is an error.
pub fn read(path: &Path) -> Result<Log, HistoryError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Log::default()),
        Err(source) => {
            return Err(HistoryError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let (records, warnings) = parse_lines(&format!("`{}`", path.display()), &bytes);
    Ok(Log {
        records: merge([records]),
        warnings,
    })
}

/// The records of a log's text, in file order, and a warning for each line
/// that is not one; `origin` names the log in the warnings.
fn parse_lines(origin: &str, bytes: &[u8]) -> (Vec<Record>, Vec<String>) {
    parse_lines_with(origin, bytes, |r| r)
}

/// [`parse_lines`], each record passed through `keep` as soon as it is
/// read (a host's record cut to its own part holds one record of a whole
/// stage at a time, not the log's).
fn parse_lines_with(
    origin: &str,
    bytes: &[u8],
    keep: impl Fn(Record) -> Record,
) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(record) => records.push(keep(record)),
            // serde quotes the offending value, which may be anything
            Err(e) => warnings.push(format!(
                "{origin} line {}: skipped, not a history record: {}",
                i + 1,
                text::clipped_line(&e.to_string(), text::REMOTE_TEXT_MAX)
            )),
        }
    }
    (records, warnings)
}

/// Merge the records of one or more logs (the local one, each host's):
/// one record per attempt id, ordered by start time (stable, so records of
/// the same second keep their order).
///
/// For each id the last record wins, taking the lists in the order given
/// and each list in file order, except that a `started` record never
/// replaces a final one (a host that saw only the start of an attempt that
/// another log saw end). Records without an id (written before ids
/// existed) are all kept.
pub fn merge<I>(lists: I) -> Vec<Record>
where
    I: IntoIterator<Item = Vec<Record>>,
{
    let mut merged: Vec<Record> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for record in lists.into_iter().flatten() {
        if record.id.is_empty() {
            merged.push(record);
            continue;
        }
        match position.get(&record.id) {
            Some(&i) => {
                let stale =
                    record.outcome == Outcome::Started && merged[i].outcome != Outcome::Started;
                if !stale {
                    merged[i] = record;
                }
            }
            None => {
                position.insert(record.id.clone(), merged.len());
                merged.push(record);
            }
        }
    }
    merged.sort_by(|a, b| a.time.cmp(&b.time));
    merged
}

/// A record as `history --hosts` lists it: where it came from, and what
/// disagrees with it. In JSON, the record's own fields, then `source`
/// (`local` or `host`), `source_host` (the host's name, for a host's
/// record) and `disagreements` (when there are any).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced {
    /// The record, as its source holds it.
    #[serde(flatten)]
    pub record: Record,
    /// `local` (this machine's history) or `host` (a host's).
    pub source: &'static str,
    /// The host whose history holds it, for a host's record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_host: Option<String>,
    /// What other logs say against it, one sentence each (a host holding
    /// another record with this id, a record claiming a stage its host is
    /// not in); each was also given as a warning.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disagreements: Vec<String>,
}

impl AsRef<Record> for Record {
    fn as_ref(&self) -> &Record {
        self
    }
}

impl AsRef<Record> for Sourced {
    fn as_ref(&self) -> &Record {
        &self.record
    }
}

impl Sourced {
    /// Where it came from, for people: `local history`, `host `prod-1``.
    pub fn origin(&self) -> String {
        match &self.source_host {
            Some(host) => format!("host `{}`", text::one_line(host)),
            None => "local history".to_string(),
        }
    }
}

/// One host's history, as read for `history --hosts`.
#[derive(Debug, Clone)]
pub struct HostLog {
    /// The host.
    pub host: String,
    /// The stage it is in (the one whose hosts were asked).
    pub stage: String,
    /// Its records, in file order ([`parse_host_log`]).
    pub records: Vec<Record>,
}

/// Merge the local history (`local`, as [`read`] returns it) with hosts'
/// histories, trusting each host only with what it may know: the result,
/// oldest first, and one warning per disagreement.
///
/// Root on any one host can write anything into its history, so a host is
/// trusted with its own part of a record only ([`Record::for_host`]), and
/// a host's record never replaces a local one: for an id the local history
/// has, the local record is shown, and a host whose part differs from the
/// local record's is a disagreement (a host that saw only the `started`
/// line of an attempt the local history saw end agrees). Among hosts, the
/// parts of one attempt join into one record: the same record apart from
/// the hosts' parts adds this host's part; one host's `started` line agrees
/// with another's end, and the end is shown; anything else is a
/// disagreement. A host's record claiming a stage its host is not in is
/// shown, marked, or when another host holds its id, not joined and marked
/// there. Every record says where it came from.
pub fn merge_sourced(local: Vec<Record>, hosts: Vec<HostLog>) -> (Vec<Sourced>, Vec<String>) {
    let mut merged: Vec<Sourced> = local
        .into_iter()
        .map(|record| Sourced {
            record,
            source: "local",
            source_host: None,
            disagreements: Vec::new(),
        })
        .collect();
    let mut position: HashMap<String, usize> = merged
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.record.id.is_empty())
        .map(|(i, m)| (m.record.id.clone(), i))
        .collect();
    let mut warnings = Vec::new();
    for log in hosts {
        let host = text::one_line(&log.host);
        for record in merge([log.records]) {
            // a host is trusted with its own part only
            let record = record.for_host(&log.host);
            let id = text::one_line(&record.id);
            let misplaced = (record.stage != log.stage).then(|| {
                format!(
                    "host `{host}` is in stage `{}`, but its history holds a record (id `{id}`) \
                     of `{}` on stage `{}`, where it does not belong",
                    text::one_line(&log.stage),
                    text::one_line(&record.action),
                    text::one_line(&record.stage)
                )
            });
            if let Some(&i) = position.get(&record.id) {
                let kept = &mut merged[i];
                if let Some(said) = misplaced {
                    // a host of another stage adds nothing to the attempt
                    warnings.push(said.clone());
                    kept.disagreements.push(said);
                    continue;
                }
                let fits = match kept.source_host {
                    None => agrees(&kept.record.for_host(&log.host), &record),
                    Some(_) => {
                        let was = kept.record.outcome;
                        let fits = join(&mut kept.record, record.clone(), &log.host);
                        if was != kept.record.outcome {
                            // the end of the attempt, as this host saw it
                            kept.source_host = Some(log.host.clone());
                        }
                        fits
                    }
                };
                if !fits {
                    let said = format!(
                        "host `{host}` holds a different record with the id `{id}` ({} {} {} on \
                         `{}`); the one shown is from the {}",
                        text::one_line(&record.time),
                        text::one_line(&record.action),
                        record.outcome,
                        text::one_line(&record.stage),
                        kept.origin()
                    );
                    warnings.push(said.clone());
                    kept.disagreements.push(said);
                }
                continue;
            }
            let mut disagreements = Vec::new();
            if let Some(said) = misplaced {
                warnings.push(said.clone());
                disagreements.push(said);
            }
            if !record.id.is_empty() {
                position.insert(record.id.clone(), merged.len());
            }
            merged.push(Sourced {
                record,
                source: "host",
                source_host: Some(log.host.clone()),
                disagreements,
            });
        }
    }
    merged.sort_by(|a, b| a.record.time.cmp(&b.record.time));
    (merged, warnings)
}

/// Join `other`, host `host`'s part of an attempt, into `kept`, the same
/// attempt as other hosts told it: their parts together. True when they
/// agree: the same record apart from the hosts' parts (`host`'s is added),
/// or one is the `started` line of the attempt the other saw end (the
/// ended one is kept, with the parts of the hosts that saw the end).
fn join(kept: &mut Record, other: Record, host: &str) -> bool {
    let rest = |r: &Record| Record {
        hosts: Vec::new(),
        ..r.clone()
    };
    if rest(kept) == rest(&other) {
        if !kept.hosts.iter().any(|h| h.host == host) {
            kept.hosts.extend(other.hosts);
        }
        return true;
    }
    if agrees(kept, &other) {
        return true;
    }
    if agrees(&other, kept) {
        *kept = other;
        return true;
    }
    false
}

/// Whether `other`, from another log, agrees with `kept`: the same record,
/// or the `started` line of the attempt `kept` saw end (same start, by the
/// same person, of the same action on the same package, stage and version).
fn agrees(kept: &Record, other: &Record) -> bool {
    if kept == other {
        return true;
    }
    other.outcome == Outcome::Started
        && kept.outcome != Outcome::Started
        && (
            &kept.time,
            &kept.user,
            &kept.as_user,
            &kept.machine,
            &kept.action,
        ) == (
            &other.time,
            &other.user,
            &other.as_user,
            &other.machine,
            &other.action,
        )
        && (&kept.package, &kept.stage, &kept.version)
            == (&other.package, &other.stage, &other.version)
}

// ---------------------------------------------------------------------------
// The history kept on each host

/// The command that appends one record to [`HOST_LOG_FILE`] on a host, as
/// root (`sudo -n`). Send it [`to_line`] of the record on stdin.
///
/// It enters [`HOST_LOG_DIR`] through [`crate::hostpath`], creating it with
/// mode 0755 if missing, so that it refuses a link, or a directory on the
/// way that a user other than root could change (someone could have
/// prepared it to mislead, or to make root write elsewhere); then, relative
/// to that directory, creates the file with mode 0644, explicitly, whatever
/// the umask sudo runs with, refuses one that root does not own, that
/// others can write, or that is a link; appends under an exclusive `flock`
/// (starting a new line if a crash left the last one unterminated); and
/// asks for the file to be synced. It fails, saying why on stderr, when
/// stdin is not one JSON object.
pub fn host_append_command() -> RemoteCommand {
    host_command_with(&crate::hostpath::script(HOST_APPEND_SCRIPT), HOST_LOG_DIR).sudo()
}

/// The command that prints [`HOST_LOG_FILE`] (nothing if it does not exist
/// yet). It needs no root: the file is world-readable.
///
/// It fails, saying why on stderr, rather than print a log that root did
/// not write or call a log absent that it cannot see: it walks to
/// [`HOST_LOG_DIR`] as the append does ([`crate::hostpath`]), so a
/// component that is a symbolic link, not owned by root or writable by
/// others (any local user could have faked its records), or a directory
/// that cannot be entered (a hardened `/var/log`, which would hide the
/// file) is refused, and so is such a file.
pub fn host_read_command() -> RemoteCommand {
    host_command_with(&crate::hostpath::script(HOST_READ_SCRIPT), HOST_LOG_DIR)
}

/// The shell script of [`host_append_command`]; `$1` is the directory.
const HOST_APPEND_SCRIPT: &str = r#"set -u
dir=$1 file=$1/history.jsonl
fail() { printf 'deployer history: %s\n' "$*" >&2; exit 1; }
line=
IFS= read -r line || [ -n "$line" ] || fail "no record on stdin"
case $line in '{'*'}') ;; *) fail "stdin is not one JSON record" ;; esac
umask 022
hp_enter "$dir" create
hp_file history.jsonl
exec 9>>history.jsonl || fail "cannot open $file"
flock -w 60 9 || fail "cannot lock $file"
hp_file history.jsonl
chmod 0644 -- history.jsonl || fail "cannot set the mode of $file"
if [ -s history.jsonl ] && [ -n "$(tail -c 1 -- history.jsonl)" ]; then printf '\n' >&9; fi
printf '%s\n' "$line" >&9 || fail "cannot write to $file"
sync -- history.jsonl 2>/dev/null || :
"#;

/// The command of [`host_append_command`] or [`host_read_command`],
/// without sudo: `script` (after the [`crate::hostpath`] functions) on the
/// log in `dir`.
fn host_command_with(script: &str, dir: &str) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", script, "deployer-history", dir])
        .named("history")
}

/// The shell script of [`host_read_command`]; `$1` is the directory.
const HOST_READ_SCRIPT: &str = r#"set -u
hp_enter "$1"
[ -z "$hp_missing" ] || exit 0
hp_file history.jsonl
[ -e history.jsonl ] || exit 0
exec cat -- history.jsonl
"#;

/// The records of the history that [`host_read_command`] printed on
/// `host`, in file order, and a warning naming the host, the file and the
/// line for each line that is not a record (such lines are skipped, as by
/// [`read`]). Combine the hosts' lists and the local log with [`merge`].
///
/// `dropped` is how many bytes came before `text` ([`Output::stdout_dropped`]:
/// only the tail of a long log is kept). Then the older records are not
/// there, which a warning says, the first line (cut in the middle) is left
/// out silently, and line numbers count from the first line kept.
///
/// [`Output::stdout_dropped`]: crate::transport::Output::stdout_dropped
pub fn parse_host_log(host: &str, text: &str, dropped: u64) -> (Vec<Record>, Vec<String>) {
    parse_host_log_with(host, text, dropped, |r| r)
}

/// [`parse_host_log`], each record passed through `keep` as it is read.
fn parse_host_log_with(
    host: &str,
    text: &str,
    dropped: u64,
    keep: impl Fn(Record) -> Record,
) -> (Vec<Record>, Vec<String>) {
    let origin = format!("host `{host}`: `{HOST_LOG_DIR}/{HOST_LOG_NAME}`");
    if dropped == 0 {
        return parse_lines_with(&origin, text.as_bytes(), keep);
    }
    let rest = text.split_once('\n').map_or("", |(_, rest)| rest);
    let (records, mut warnings) =
        parse_lines_with(&format!("{origin} (its tail)"), rest.as_bytes(), keep);
    warnings.insert(
        0,
        format!(
            "{origin}: only its newest {} bytes were read, so its older records are not listed \
             ({dropped} bytes before them were dropped)",
            text.len()
        ),
    );
    (records, warnings)
}

/// What [`read_hosts`] found on the hosts: each host's log that
/// could be read, a warning per line skipped or host not read (one line
/// each, made safe), and whether some host could not be read at all.
#[derive(Debug, Clone, Default)]
pub struct StageLogs {
    /// The hosts' histories that were read.
    pub logs: Vec<HostLog>,
    /// Lines skipped, logs cut, hosts not read: one sentence each.
    pub warnings: Vec<String>,
    /// Whether some host's history could not be read.
    pub unread: bool,
}

/// Read the history kept on every connected host of `stage`
/// ([`host_read_command`], without root), as a rollback looking for the
/// version before does; merge the result with the local log through
/// [`merge_sourced`].
pub fn read_stage(
    fleet: &mut crate::fleet::Fleet,
    stage: &str,
    timeout: std::time::Duration,
) -> StageLogs {
    read_hosts(fleet, |t| t.stage == stage, timeout)
}

/// Read the history kept on every host of the fleet that `keep` accepts,
/// all at once ([`host_read_command`], without root): each host's records
/// with the stage it is in, for [`merge_sourced`]; lines skipped and hosts
/// not read as warnings. The one reader of the hosts' histories, for
/// `history --hosts`, `timeline` and a rollback looking for the version
/// before. A host not connected yet is connected to, read and closed
/// ([`crate::fleet::Fleet::visit`]); one already connected stays so.
pub fn read_hosts(
    fleet: &mut crate::fleet::Fleet,
    keep: impl Fn(&crate::transport::Target) -> bool,
    timeout: std::time::Duration,
) -> StageLogs {
    let command = host_read_command();
    collect_hosts(fleet.visit(keep, |m| read_host(m, &command, timeout)))
}

/// What one host's history gave ([`read_host`]), for [`collect_hosts`]:
/// its log parsed (each record cut to the host's own part), or why it
/// could not be read.
pub struct HostAnswer {
    host: String,
    stage: String,
    /// The records and the warnings about lines skipped, or the warning
    /// that says why the log could not be read.
    read: Result<(Vec<Record>, Vec<String>), String>,
}

/// Read the history of the host of `m` with `command`
/// ([`host_read_command`]) and parse it there and then, each record cut to
/// the host's own part ([`Record::for_host`]: all it is trusted with), so
/// that a run over many hosts holds records, not logs, and each host's
/// records only about itself. For work that reads the history along with
/// other things over one session (the timeline); [`collect_hosts`] gathers
/// the answers.
pub fn read_host(
    m: &mut crate::fleet::Member,
    command: &RemoteCommand,
    timeout: std::time::Duration,
) -> HostAnswer {
    let (host, stage) = (m.host().to_string(), m.target().stage.clone());
    let read = match m.run(command, timeout) {
        Ok(out) if out.success() => Ok(parse_host_log_with(
            &host,
            &out.stdout,
            out.stdout_dropped,
            |r| r.for_host(&host),
        )),
        // the host's words: one line, escaped, clipped
        Ok(out) => Err(format!(
            "host `{}`: cannot read `{HOST_LOG_FILE}`: {}",
            text::one_line(&host),
            crate::transport::failure(&out)
        )),
        Err(e) => Err(format!(
            "host `{}`: cannot read its history: {e}",
            text::one_line(&host)
        )),
    };
    HostAnswer { host, stage, read }
}

/// The hosts' answers ([`read_host`]) together: the logs read, a warning
/// per line skipped or host not read.
pub fn collect_hosts(answers: impl IntoIterator<Item = HostAnswer>) -> StageLogs {
    let mut found = StageLogs::default();
    for HostAnswer { host, stage, read } in answers {
        match read {
            Ok((records, warnings)) => {
                found.warnings.extend(warnings);
                found.logs.push(HostLog {
                    host,
                    stage,
                    records,
                });
            }
            Err(warning) => {
                found.warnings.push(warning);
                found.unread = true;
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------
// Listing (pure)

/// The records about `package` (if given) on `stage` (if given), newest
/// first. `records` is oldest first, as [`read`] and [`merge`] return them.
pub fn select<'a, T: AsRef<Record>>(
    records: &'a [T],
    package: Option<&str>,
    stage: Option<&str>,
) -> Vec<&'a T> {
    records
        .iter()
        .rev()
        .filter(|r| package.is_none_or(|p| r.as_ref().package.as_deref() == Some(p)))
        .filter(|r| stage.is_none_or(|s| r.as_ref().stage == s))
        .collect()
}

/// How a listing words an outcome: a lone `started` record is an attempt
/// whose end was never recorded.
fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Started => "started, no end recorded (killed, or still running)",
        other => other.as_str(),
    }
}

/// Write `records` for people: a header line per attempt, then one indented
/// line per host and the reason, if any.
///
/// ```text
/// 2026-11-21T07:30:05Z  deploy    fastpath 0.81~pr748-191 -> prod  partial  alice@laptop  12.3s
///     prod-1  0.77~pr705-119 -> 0.81~pr748-191  changed
///     prod-2  0.77~pr705-119  failed: dpkg lock held
/// ```
///
/// Every field is shown through [`text::one_line`]: a record may come from
/// a host's log (`--hosts`), or carry a host's own words (an error in
/// `message`), so none of it may drive the terminal or forge a line.
pub fn render_text(records: &[&Record], out: &mut dyn Write) -> io::Result<()> {
    if records.is_empty() {
        return writeln!(out, "no matching history");
    }
    for r in records {
        write_record(r, None, out)?;
    }
    Ok(())
}

/// [`render_text`] for a merged listing (`history --hosts`): after each
/// record's header, where it came from, and a `WARNING:` line for each
/// disagreement.
///
/// ```text
/// 2026-11-21T07:30:05Z  deploy    fastpath 0.81~pr748-191 -> prod  success  alice@laptop  12.3s
///     from: host `prod-1`
///     WARNING: host `prod-1` is in stage `prod`, but its history holds a record ...
/// ```
pub fn render_sourced_text(records: &[&Sourced], out: &mut dyn Write) -> io::Result<()> {
    if records.is_empty() {
        return writeln!(out, "no matching history");
    }
    for r in records {
        write_record(&r.record, Some(r), out)?;
    }
    Ok(())
}

/// One record of a text listing, with its source when it has one.
fn write_record(r: &Record, sourced: Option<&Sourced>, out: &mut dyn Write) -> io::Result<()> {
    let safe = |s: &str| text::one_line(s);
    let stage = safe(&r.stage);
    let subject = match (&r.package, &r.version) {
        (Some(p), Some(v)) => format!("{} {} -> {stage}", safe(p), safe(v)),
        (None, Some(v)) => format!("{} -> {stage}", safe(v)),
        (Some(p), None) => format!("{} on {stage}", safe(p)),
        (None, None) => stage,
    };
    let forced = if r.forced { " (forced)" } else { "" };
    writeln!(
        out,
        "{}  {:<8}  {subject}  {}{forced}  {}  {}",
        safe(&r.time),
        safe(&r.action),
        outcome_text(r.outcome),
        safe(&r.who()),
        format_duration(r.duration_ms)
    )?;
    if let Some(sourced) = sourced {
        writeln!(out, "    from: {}", sourced.origin())?;
        for d in &sourced.disagreements {
            writeln!(out, "    WARNING: {}", safe(d))?;
        }
    }
    let hosts: Vec<String> = r.hosts.iter().map(|h| safe(&h.host)).collect();
    let width = hosts.iter().map(|h| h.chars().count()).max().unwrap_or(0);
    for (h, name) in r.hosts.iter().zip(&hosts) {
        let from = safe(h.from.as_deref().unwrap_or("(none)"));
        let versions = match (h.result, &h.to) {
            (HostResult::Changed | HostResult::Planned, Some(to)) => {
                format!("{from} -> {}", safe(to))
            }
            _ => from,
        };
        write!(out, "    {name:<width$}  {versions}  {}", h.result)?;
        match h
            .message
            .as_deref()
            .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
        {
            Some(first) => writeln!(out, ": {}", safe(first.trim()))?,
            None => writeln!(out)?,
        }
        if let Some(restart) = &h.restart {
            let done = if restart.ok {
                "restarted"
            } else {
                "restart FAILED"
            };
            writeln!(
                out,
                "      {done}: {}",
                text::clipped_line(&restart.what, 120)
            )?;
        }
        if let Some(last) = h.log_tail.last() {
            writeln!(
                out,
                "      last log line ({} kept): {}",
                h.log_tail.len(),
                text::clipped_line(last, 120)
            )?;
        }
        if let Some(last) = h.gates.last() {
            writeln!(
                out,
                "      gates: {} evaluation(s), the last: {} {} {}",
                h.gates.len(),
                text::clipped_line(&last.gate, 60),
                text::clipped_line(&last.verdict, 20),
                text::clipped_line(last.detail.as_deref().unwrap_or_default(), 120)
            )?;
        }
    }
    for c in &r.changes {
        let sign = match c.direction {
            crate::changelog::Direction::Deploy => "went out",
            crate::changelog::Direction::Rollback => "taken back",
        };
        let first = c.lines.first().map(String::as_str).unwrap_or("");
        writeln!(
            out,
            "    {sign}: {}  {}",
            safe(&c.version),
            text::clipped_line(first, 120)
        )?;
    }
    for a in &r.approvals {
        writeln!(
            out,
            "    approved by: {} ({}), verified {}",
            safe(&a.principal),
            safe(&a.fingerprint),
            safe(&a.verified_at)
        )?;
    }
    if let Some(reason) = &r.reason {
        let mut lines = reason.lines();
        writeln!(out, "    reason: {}", safe(lines.next().unwrap_or("")))?;
        for more in lines {
            writeln!(out, "            {}", safe(more))?;
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
/// exactly as stored (merged by id), followed by a newline. A merged
/// listing ([`Sourced`]) adds each record's source.
pub fn render_json<T: Serialize>(records: &[&T], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, records)?;
    writeln!(out)
}

/// The current time as [`format_rfc3339`] writes it.
pub fn now_rfc3339() -> String {
    format_rfc3339(u64::try_from(now_unix()).unwrap_or(0))
}

/// Now, in whole seconds since the Unix epoch (0 for a clock set before
/// it): the one reading of the clock for times kept and compared.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

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
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
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
            id: String::new(),
            time: time.to_string(),
            user: "alice".to_string(),
            as_user: None,
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
            changes: Vec::new(),
            under_freeze: false,
            alerts_overridden: Vec::new(),
            failure_budget: None,
            window_overridden: None,
            approvals: Vec::new(),
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
        assert_eq!(
            read(&path).unwrap(),
            Log {
                records: records.clone(),
                warnings: Vec::new()
            }
        );

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), records.len());
        for line in text.lines() {
            assert!(line.starts_with("{\"id\":\"\",\"time\":"), "{line}");
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
        // The torn line is skipped, named, and hides nothing else.
        let log = read(&path).unwrap();
        assert_eq!(log.records, records[..2]);
        assert_eq!(log.warnings.len(), 1, "{:?}", log.warnings);
        assert!(
            log.warnings[0].starts_with(&format!(
                "`{}` line 2: skipped, not a history record: ",
                path.display()
            )),
            "{:?}",
            log.warnings
        );
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
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        assert_eq!(back.records.len(), 40);
        assert!(back.records.iter().all(|r| *r == big));
    }

    #[test]
    fn missing_file_is_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read(&dir.path().join("nope.jsonl")).unwrap(),
            Log::default()
        );
    }

    #[test]
    fn corrupt_lines_are_skipped_with_file_and_line() {
        let good = serde_json::to_string(&sample()[0]).unwrap();
        let text = format!("{good}\n\n{good}\n{{\"time\": 3}}\n{good}\nnot json\n{{\"time\":\"20");
        let (records, warnings) = parse_lines("`/x/h.jsonl`", text.as_bytes());
        assert_eq!(records.len(), 3);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        for (warning, line) in warnings.iter().zip([4, 6, 7]) {
            let want = format!("`/x/h.jsonl` line {line}: skipped, not a history record: ");
            assert!(warning.starts_with(&want), "{warning}");
        }
    }

    #[test]
    fn an_unreadable_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be read as a file, even by root.
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, HistoryError::Io { .. }));
        assert!(
            err.to_string().starts_with(&format!(
                "cannot read the history `{}`: ",
                dir.path().display()
            )),
            "{err}"
        );
    }

    #[test]
    fn blank_lines_and_short_old_records_are_accepted() {
        let text = "\n  \n{\"time\":\"2026-01-01T00:00:00Z\",\"user\":\"u\",\"machine\":\"m\",\
                    \"action\":\"unfreeze\",\"stage\":\"prod\",\"outcome\":\"success\"}\n\n";
        let (records, warnings) = parse_lines("h", text.as_bytes());
        assert!(warnings.is_empty(), "{warnings:?}");
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
            HostResult::Planned,
            HostResult::Skipped,
        ] {
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        for o in [
            Outcome::Success,
            Outcome::Refused,
            Outcome::Failed,
            Outcome::Partial,
            Outcome::Started,
            Outcome::Interrupted,
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
    fn text_listing_shows_restarts_and_the_last_log_line() {
        let mut r = record(
            "2026-11-21T07:30:05Z",
            "deploy",
            Some("fastpath"),
            "prod",
            Outcome::Partial,
        );
        let mut fine = host("p1", Some("1"), Some("2"), HostResult::Changed, None);
        fine.restart = Some(RestartRecord {
            what: "fastpath.service".into(),
            ok: true,
            detail: None,
        });
        let mut bad = host(
            "p2",
            Some("1"),
            None,
            HostResult::Failed,
            Some("restart failed"),
        );
        bad.restart = Some(RestartRecord {
            what: "fastpath.service".into(),
            ok: false,
            detail: Some("restart failed".into()),
        });
        bad.log_tail = vec!["first".into(), "bind: in use \x1b[2J".into()];
        r.hosts = vec![fine, bad];
        let shown = text(&[&r]);
        assert!(
            shown.contains("    p1  1 -> 2  changed\n      restarted: fastpath.service\n"),
            "{shown}"
        );
        assert!(
            shown.contains("      restart FAILED: fastpath.service\n      last log line (2 kept): bind: in use \\x1b[2J\n"),
            "{shown}"
        );
        // and reads back, fields included
        let back: Record = serde_json::from_str(&to_line(&r)).unwrap();
        assert_eq!(back.hosts, r.hosts);
    }

    #[test]
    fn gate_evaluations_are_kept_shown_and_absent_from_older_records() {
        let mut r = record(
            "2026-12-07T12:00:00Z",
            "deploy",
            Some("fastpath"),
            "prod",
            Outcome::Failed,
        );
        let mut canary = host("p1", Some("1"), Some("2"), HostResult::Failed, None);
        canary.gates = vec![
            GateRecord {
                gate: "errors".into(),
                time: "2026-12-07T12:00:01Z".into(),
                value: Some(0.002),
                verdict: "pass".into(),
                detail: Some("0.002; < 0.01".into()),
            },
            GateRecord {
                gate: "errors".into(),
                time: "2026-12-07T12:00:02Z".into(),
                value: None,
                verdict: "no-data".into(),
                detail: Some("no series\x1b[2J".into()),
            },
        ];
        r.hosts = vec![canary];
        let line = to_line(&r);
        assert!(
            line.contains(r#""gates":[{"gate":"errors","time":"2026-12-07T12:00:01Z","value":0.002,"verdict":"pass","detail":"0.002; < 0.01"},{"gate":"errors","time":"2026-12-07T12:00:02Z","verdict":"no-data""#),
            "{line}"
        );
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back.hosts, r.hosts);
        let shown = text(&[&r]);
        assert!(
            shown.contains(
                "      gates: 2 evaluation(s), the last: errors no-data no series\\x1b[2J\n"
            ),
            "{shown}"
        );
        // a record from before gates reads, without any
        let old = line.replace(
            &line[line.find(r#","gates""#).unwrap()..line.find("]}]").unwrap() + 1],
            "",
        );
        assert!(!old.contains("gates"), "{old}");
        let back: Record = serde_json::from_str(&old).unwrap();
        assert!(back.hosts[0].gates.is_empty());
        let none = to_line(&back);
        assert!(!none.contains("gates"), "not written when empty: {none}");
    }

    #[test]
    fn text_listing_shows_the_changes_that_went_out() {
        let mut r = record(
            "2026-11-21T07:30:05Z",
            "deploy",
            Some("fastpath"),
            "prod",
            Outcome::Success,
        );
        r.changes = vec![crate::changelog::Summary {
            version: "0.82~pr760-200".into(),
            direction: crate::changelog::Direction::Deploy,
            lines: vec!["* Faster \x1b[2J ingest.".into()],
        }];
        let shown = text(&[&r]);
        assert!(
            shown.contains("    went out: 0.82~pr760-200  * Faster \\x1b[2J ingest."),
            "{shown}"
        );
        // and a record with changes reads back
        let line = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back.changes, r.changes);
    }

    /// A host's log is read by `history --hosts`, and records carry host
    /// words: nothing in them may reach the terminal raw, nor start a line
    /// that looks like another record.
    #[test]
    fn text_listing_escapes_what_records_carry() {
        let mut r = record(
            "2026-11-21T07:30:05Z\x1b[2J",
            "deploy\x1b]0;pwned\x07",
            Some("fastpath\u{202e}"),
            "prod\r",
            Outcome::Failed,
        );
        r.user = "eve\x1b[31m".to_string();
        r.machine = "box\nerror: forged".to_string();
        r.version = Some("1.0\u{9b}".to_string());
        r.reason = Some("first\x1b[1A\nsecond\x07".to_string());
        r.hosts = vec![host(
            "prod-1\x1b[K",
            Some("0.9\x08"),
            Some("1.0\x1b"),
            HostResult::Changed,
            Some("E: broken \x1b]8;;http://evil\x07link"),
        )];
        let shown = text(&[&r]);
        for bad in ['\x1b', '\x07', '\x08', '\r', '\u{9b}', '\u{202e}'] {
            assert!(
                !shown.contains(bad),
                "{bad:?} reached the terminal: {shown:?}"
            );
        }
        assert!(
            shown.contains("eve\\x1b[31m@box\\nerror: forged"),
            "{shown}"
        );
        assert!(shown.contains("    reason: first\\x1b[1A\n"), "{shown}");
        assert!(
            shown.contains("E: broken \\x1b]8;;http://evil\\x07link"),
            "{shown}"
        );
        // one header line, one host line, two reason lines
        assert_eq!(shown.lines().count(), 4, "{shown}");
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
        render_json::<Record>(&[], &mut out).unwrap();
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

    fn operator() -> Operator {
        Operator {
            user: "alice".to_string(),
            machine: "laptop".to_string(),
            as_user: Some("root".to_string()),
        }
    }

    #[test]
    fn attempt_ids_are_start_second_pid_and_random_bits() {
        assert_eq!(
            attempt_id(1_795_246_205, 4242, 0x00c0_ffee),
            "20261121T073005Z-4242-0000000000c0ffee"
        );
        let a = Attempt::start_as("deploy", operator());
        let b = Attempt::start_as("deploy", operator());
        assert_ne!(a.id(), b.id());
        let pid = format!("-{}-", std::process::id());
        assert!(a.id().contains(&pid), "{}", a.id());
        assert_eq!(a.id().len(), "20261121T073005Z".len() + pid.len() + 16);
    }

    #[test]
    fn every_record_of_an_attempt_shares_its_id_and_start_time() {
        let attempt = Attempt::start_as("deploy", operator());
        let started = Record {
            hosts: vec![host(
                "prod-1",
                Some("1.0"),
                Some("1.1"),
                HostResult::Planned,
                None,
            )],
            ..attempt.record("prod", Outcome::Started)
        };
        let ended = attempt.record("prod", Outcome::Success);
        assert_eq!(started.id, attempt.id());
        assert_eq!(ended.id, attempt.id());
        assert_eq!(started.time, attempt.time());
        assert_eq!(ended.time, attempt.time());
        assert!(ended.duration_ms >= started.duration_ms);
        assert_eq!(
            (ended.user.as_str(), ended.machine.as_str()),
            ("alice", "laptop")
        );
        assert_eq!(ended.as_user.as_deref(), Some("root"));
        assert_eq!(ended.who(), "alice@laptop (sudo)");
        assert_eq!(attempt.operator(), &operator());
        // The old entry point still gives a complete record.
        let old = Record::begin("freeze", "prod", Outcome::Refused);
        assert!(!old.id.is_empty());
        assert_eq!(old.stage, "prod");
    }

    fn with_id(mut r: Record, id: &str) -> Record {
        r.id = id.to_string();
        r
    }

    #[test]
    fn merge_keeps_one_record_per_attempt() {
        let at = |time: &str, id: &str, outcome| {
            with_id(record(time, "deploy", Some("p"), "prod", outcome), id)
        };
        let started_a = at("2026-01-01T00:00:02Z", "a", Outcome::Started);
        let ended_a = at("2026-01-01T00:00:02Z", "a", Outcome::Success);
        let started_b = at("2026-01-01T00:00:01Z", "b", Outcome::Started);
        let interrupted_b = at("2026-01-01T00:00:01Z", "b", Outcome::Interrupted);
        let old_1 = at("2026-01-01T00:00:00Z", "", Outcome::Failed);
        let old_2 = at("2026-01-01T00:00:00Z", "", Outcome::Refused);
        let mut retried_a = ended_a.clone();
        retried_a.reason = Some("written twice".into());

        // (lists, (id, outcome) oldest first)
        type Case<'a> = (Vec<Vec<Record>>, Vec<(&'a str, Outcome)>);
        let cases: Vec<Case> = vec![
            // The usual case: started, then the end, in one log.
            (
                vec![vec![started_a.clone(), ended_a.clone()]],
                vec![("a", Outcome::Success)],
            ),
            // No end recorded: the attempt is listed as started.
            (vec![vec![started_a.clone()]], vec![("a", Outcome::Started)]),
            // A host that only saw the start never hides the end seen elsewhere.
            (
                vec![vec![ended_a.clone()], vec![started_a.clone()]],
                vec![("a", Outcome::Success)],
            ),
            (
                vec![vec![started_a.clone()], vec![ended_a.clone()]],
                vec![("a", Outcome::Success)],
            ),
            // Ordered by start time, whatever order the logs came in.
            (
                vec![
                    vec![started_a.clone(), ended_a.clone()],
                    vec![started_b.clone(), interrupted_b.clone()],
                ],
                vec![("b", Outcome::Interrupted), ("a", Outcome::Success)],
            ),
            // Lines without an id are never merged.
            (
                vec![vec![old_1.clone(), old_2.clone()], vec![old_1.clone()]],
                vec![
                    ("", Outcome::Failed),
                    ("", Outcome::Refused),
                    ("", Outcome::Failed),
                ],
            ),
        ];
        for (lists, want) in cases {
            let merged = merge(lists.clone());
            let got: Vec<(&str, Outcome)> =
                merged.iter().map(|r| (r.id.as_str(), r.outcome)).collect();
            assert_eq!(got, want, "{lists:?}");
        }
        // Two final records: the last one written wins.
        let merged = merge([vec![ended_a, retried_a.clone()]]);
        assert_eq!(merged, vec![retried_a]);
    }

    /// Issue 23: each host keeps its own part of an attempt. Read back
    /// without the local record, the hosts' parts make one record, and a
    /// host is trusted with its own part only (what it says of others is
    /// dropped); a host that saw only the start agrees with one that saw
    /// the end, whose record is shown; the local record agrees with each
    /// host's part, whose log lines were never written there.
    #[test]
    fn the_hosts_parts_of_an_attempt_make_one_record() {
        let part = |name: &str, result| host(name, Some("1"), Some("2"), result, None);
        let mut ended = with_id(
            record(
                "2026-01-01T00:00:02Z",
                "deploy",
                Some("p"),
                "prod",
                Outcome::Success,
            ),
            "a",
        );
        ended.hosts = ["p1", "p2", "p3"]
            .map(|h| part(h, HostResult::Changed))
            .to_vec();
        ended.hosts[1].log_tail = vec!["a line only root may read".into()];
        let mut started = ended.clone();
        started.outcome = Outcome::Started;
        for h in &mut started.hosts {
            h.result = HostResult::Planned;
        }
        // what each host was given to keep
        let kept_on = |r: &Record, h: &str| r.for_host(h);
        assert_eq!(kept_on(&ended, "p2").hosts.len(), 1);
        assert!(kept_on(&ended, "p2").hosts[0].log_tail.is_empty());
        // p3 also claims (falsely) a result for p1
        let mut p3 = kept_on(&ended, "p3");
        let mut lie = part("p1", HostResult::Failed);
        lie.message = Some("forged".into());
        p3.hosts.insert(0, lie);
        let part_of = |r: &Record, h: &str| {
            let mut r = r.for_host("p1");
            r.hosts[0].host = h.into();
            r
        };
        let log = |h: &str, records: Vec<Record>| HostLog {
            host: h.into(),
            stage: "prod".into(),
            records,
        };
        let logs = || {
            vec![
                log("p1", vec![kept_on(&started, "p1")]),
                log("p2", vec![kept_on(&started, "p2"), kept_on(&ended, "p2")]),
                log("p3", vec![kept_on(&started, "p3"), p3.clone()]),
            ]
        };
        let (merged, warnings) = merge_sourced(Vec::new(), logs());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(merged.len(), 1);
        let m = &merged[0];
        assert_eq!((m.source, m.source_host.as_deref()), ("host", Some("p2")));
        assert_eq!(m.record.outcome, Outcome::Success);
        let parts: Vec<(&str, HostResult)> = m
            .record
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.result))
            .collect();
        assert_eq!(
            parts,
            vec![("p2", HostResult::Changed), ("p3", HostResult::Changed)],
            "p1 saw only the start; p3's word about p1 is not taken"
        );
        // with the local record: it is the one shown, every part agrees
        let (merged, warnings) = merge_sourced(vec![ended.clone()], logs());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].record, ended);
        // a part that differs from the local record is a disagreement
        let mut wrong = kept_on(&ended, "p2");
        wrong.hosts[0].result = HostResult::Failed;
        let (_, warnings) = merge_sourced(vec![ended.clone()], vec![log("p2", vec![wrong])]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("host `p2` holds a different record with the id `a`"));
        // a host of another stage holding the attempt adds no part to it,
        // and is marked there, whichever host was read first
        let mut elsewhere = log("t1", vec![part_of(&ended, "t1")]);
        elsewhere.stage = "test".into();
        let (merged, warnings) = merge_sourced(
            Vec::new(),
            vec![log("p2", vec![kept_on(&ended, "p2")]), elsewhere],
        );
        assert_eq!(merged.len(), 1);
        assert_eq!(
            merged[0].record.hosts.len(),
            1,
            "{:?}",
            merged[0].record.hosts
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("host `t1` is in stage `test`"),
            "{warnings:?}"
        );
        assert_eq!(merged[0].disagreements, warnings);
        // a host that lists itself twice: its first entry only
        let mut twice = kept_on(&ended, "p2");
        let mut again = twice.hosts[0].clone();
        again.from = Some("0.1".into());
        twice.hosts.push(again);
        assert_eq!(twice.for_host("p2").hosts, kept_on(&ended, "p2").hosts);
    }

    /// A regression test for host records that replaced local ones: root
    /// on a host may write anything into its history.
    #[test]
    fn a_host_record_never_replaces_a_local_one_and_disagreements_are_marked() {
        let at = |time: &str, id: &str, stage: &str, outcome| {
            with_id(record(time, "deploy", Some("p"), stage, outcome), id)
        };
        let mine = at("2026-01-01T00:00:02Z", "a", "prod", Outcome::Success);
        let mut forged = mine.clone();
        forged.user = "mallory".into();
        let started = at("2026-01-01T00:00:02Z", "a", "prod", Outcome::Started);
        let claim = at("2026-01-01T00:00:01Z", "b", "test", Outcome::Success);
        let theirs = at("2026-01-01T00:00:03Z", "c", "prod", Outcome::Success);
        let mut other_c = theirs.clone();
        other_c.reason = Some("rewritten".into());
        let log = |host: &str, records: Vec<Record>| HostLog {
            host: host.into(),
            stage: "prod".into(),
            records,
        };
        let (merged, warnings) = merge_sourced(
            vec![mine.clone()],
            vec![
                log(
                    "prod-1",
                    vec![started, forged, claim.clone(), theirs.clone()],
                ),
                log("prod-2", vec![mine.clone(), other_c]),
            ],
        );
        let got: Vec<(&str, &str, Option<&str>, usize)> = merged
            .iter()
            .map(|m| {
                (
                    m.record.id.as_str(),
                    m.source,
                    m.source_host.as_deref(),
                    m.disagreements.len(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("b", "host", Some("prod-1"), 1),
                ("a", "local", None, 1),
                ("c", "host", Some("prod-1"), 1),
            ]
        );
        assert_eq!(merged[1].record, mine);
        assert_eq!(merged[2].record, theirs);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(merged[0].disagreements[0].contains(
            "host `prod-1` is in stage `prod`, but its history holds a record (id `b`) of `deploy` on stage `test`"
        ));
        assert!(merged[1].disagreements[0]
            .contains("host `prod-1` holds a different record with the id `a`"));
        assert!(merged[1].disagreements[0].contains("the one shown is from the local history"));
        assert!(merged[2].disagreements[0].contains("host `prod-2` holds a different record"));
        assert!(merged[2].disagreements[0].contains("from the host `prod-1`"));

        // listed with its source, and the warning, in text and JSON
        let mut out = Vec::new();
        render_sourced_text(&select(&merged, None, None), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("    from: local history\n    WARNING: host `prod-1`"),
            "{out}"
        );
        assert!(out.contains("    from: host `prod-1`\n"), "{out}");
        let mut json = Vec::new();
        render_json(&select(&merged, None, Some("test")), &mut json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v[0]["id"], "b");
        assert_eq!(v[0]["source"], "host");
        assert_eq!(v[0]["source_host"], "prod-1");
        assert_eq!(v[0]["disagreements"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn reading_merges_the_started_line_with_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let attempt = Attempt::start_as("deploy", operator());
        let killed = Attempt::start_as("promote", operator());
        append(&path, &attempt.record("prod", Outcome::Started)).unwrap();
        append(&path, &killed.record("test", Outcome::Started)).unwrap();
        append(&path, &attempt.record("prod", Outcome::Partial)).unwrap();
        let log = read(&path).unwrap();
        let got: Vec<(&str, Outcome)> = log
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.outcome))
            .collect();
        assert_eq!(
            got,
            [
                (attempt.id(), Outcome::Partial),
                (killed.id(), Outcome::Started)
            ]
        );
        assert!(log.warnings.is_empty());
    }

    #[test]
    fn listing_of_unfinished_interrupted_and_sudo_attempts() {
        let mut started = with_id(
            record(
                "2026-11-23T10:00:00Z",
                "deploy",
                Some("fastpath"),
                "prod",
                Outcome::Started,
            ),
            "x",
        );
        started.version = Some("0.82".into());
        started.as_user = Some("root".into());
        started.hosts = vec![
            host(
                "prod-1",
                Some("0.81"),
                Some("0.82"),
                HostResult::Planned,
                None,
            ),
            host("prod-2", None, Some("0.82"), HostResult::Planned, None),
        ];
        let mut interrupted = started.clone();
        interrupted.id = "y".into();
        interrupted.outcome = Outcome::Interrupted;
        interrupted.duration_ms = 4_200;
        interrupted.hosts = vec![
            host(
                "prod-1",
                Some("0.81"),
                Some("0.82"),
                HostResult::Changed,
                None,
            ),
            host("prod-2", None, Some("0.82"), HostResult::Untouched, None),
        ];
        assert_eq!(
            text(&[&started, &interrupted]),
            "\
2026-11-23T10:00:00Z  deploy    fastpath 0.82 -> prod  started, no end recorded (killed, or still running)  alice@laptop (sudo)  0ms
    prod-1  0.81 -> 0.82  planned
    prod-2  (none) -> 0.82  planned
2026-11-23T10:00:00Z  deploy    fastpath 0.82 -> prod  interrupted  alice@laptop (sudo)  4.2s
    prod-1  0.81 -> 0.82  changed
    prod-2  (none)  untouched
"
        );
    }

    #[test]
    fn records_from_before_ids_and_sudo_still_read() {
        let line = r#"{"time":"2026-01-01T00:00:00Z","user":"u","machine":"m","action":"deploy","stage":"prod","outcome":"success"}"#;
        let record: Record = serde_json::from_str(line).unwrap();
        assert_eq!(record.id, "");
        assert_eq!(record.as_user, None);
        assert_eq!(record.who(), "u@m");
        // And new ones say who ran them as whom.
        let new =
            to_line(&Attempt::start_as("deploy", operator()).record("prod", Outcome::Started));
        assert!(
            new.ends_with("}\n") && new.matches('\n').count() == 1,
            "{new}"
        );
        assert!(new.contains(r#""as_user":"root""#), "{new}");
        assert!(new.contains(r#""outcome":"started""#), "{new}");
    }

    #[test]
    fn check_writable_creates_the_log_without_writing_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/h.jsonl");
        check_writable(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        append(&path, &sample()[0]).unwrap();
        let before = fs::read(&path).unwrap();
        check_writable(&path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn check_writable_names_the_log_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, "").unwrap();
        // A directory where the file should be, and a file where a directory should be.
        for path in [dir.path().to_path_buf(), blocker.join("h.jsonl")] {
            let err = check_writable(&path).unwrap_err();
            assert!(matches!(err, HistoryError::Write { .. }), "{err:?}");
            assert!(
                err.to_string().starts_with(&format!(
                    "cannot append to the history `{}`: ",
                    path.display()
                )),
                "{err}"
            );
            assert!(err.note().contains("history_file"));
        }
    }

    // --- the history kept on each host, run by a real `sh` ------------------

    /// Run `command` as a host would, under `umask 077` (as sudo may), with
    /// `stdin`: (status, stderr).
    fn sh(command: &RemoteCommand, stdin: &str) -> (i32, String) {
        let (status, _, stderr) = crate::command::run_here(command, stdin.as_bytes());
        (status, stderr)
    }

    fn me() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// Run the host read of the log in `dir`, which `owner` must own:
    /// (status, stdout, stderr).
    fn try_read_host(dir: &Path, owner: u32) -> (i32, String, String) {
        use std::process::Command;
        let out = Command::new("sh")
            .arg("-c")
            .arg(host_command(HOST_READ_SCRIPT, dir.to_str().unwrap(), owner).to_string())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// The append of the log in `dir`, which `owner` must own, trusting
    /// the nearest existing directory above `dir` as a host trusts `/`.
    fn host_append(dir: &str, owner: u32) -> RemoteCommand {
        host_command(HOST_APPEND_SCRIPT, dir, owner)
    }

    /// The command of `script` (append or read) for the log in `dir`,
    /// which `owner` must own, trusting the nearest existing directory
    /// above `dir` as a host trusts `/`.
    fn host_command(script: &str, dir: &str, owner: u32) -> RemoteCommand {
        let dir = Path::new(dir);
        let mut above = dir.parent().unwrap();
        while !above.is_dir() {
            above = above.parent().unwrap();
        }
        let top = above.canonicalize().unwrap();
        let dir = top.join(dir.strip_prefix(above).unwrap());
        let script = crate::hostpath::script_in(top.to_str().unwrap(), owner, script);
        host_command_with(&script, dir.to_str().unwrap())
    }

    fn read_host(dir: &Path) -> String {
        let (status, stdout, stderr) = try_read_host(dir, me());
        assert_eq!(status, 0, "{stderr}");
        stdout
    }

    #[test]
    fn host_commands_are_sudo_sh_with_quoted_arguments() {
        let append = host_append_command();
        assert!(
            append.as_str().starts_with("sudo -n sh -c 'hp_top="),
            "{append}"
        );
        assert!(
            append
                .as_str()
                .ends_with(" deployer-history /var/log/deployer"),
            "{append}"
        );
        let read = host_read_command();
        assert!(read.as_str().starts_with("sh -c "), "{read}");
        assert!(
            read.as_str()
                .ends_with(" deployer-history /var/log/deployer"),
            "{read}"
        );
        assert_eq!(format!("{HOST_LOG_DIR}/{HOST_LOG_NAME}"), HOST_LOG_FILE);
    }

    #[test]
    fn host_append_creates_modes_explicitly_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log/deployer");
        let records = sample();
        let command = host_append(dir.to_str().unwrap(), me());
        for r in &records[..2] {
            let (status, stderr) = sh(&command, &to_line(r));
            assert_eq!(status, 0, "{stderr}");
        }
        assert_eq!(mode(&dir), 0o755);
        assert_eq!(mode(&dir.join(HOST_LOG_NAME)), 0o644);
        let text = read_host(&dir);
        assert_eq!(text.lines().count(), 2);
        let (back, warnings) = parse_host_log("prod-1", &text, 0);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(back, records[..2]);
    }

    #[test]
    fn host_append_starts_a_new_line_after_a_torn_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("deployer");
        let command = host_append(dir.to_str().unwrap(), me());
        let records = sample();
        assert_eq!(sh(&command, &to_line(&records[0])).0, 0);
        OpenOptions::new()
            .append(true)
            .open(dir.join(HOST_LOG_NAME))
            .unwrap()
            .write_all(b"{\"time\":\"20")
            .unwrap();
        // A record without its final newline is still one record.
        let line = to_line(&records[1]);
        let (status, stderr) = sh(&command, line.trim_end());
        assert_eq!(status, 0, "{stderr}");
        let (back, warnings) = parse_host_log("prod-1", &read_host(&dir), 0);
        assert_eq!(back, records[..2]);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with(
                "host `prod-1`: `/var/log/deployer/history.jsonl` line 2: skipped, not a history record: "
            ),
            "{warnings:?}"
        );
    }

    #[test]
    fn concurrent_host_appends_do_not_interleave() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("deployer");
        let command = host_append(dir.to_str().unwrap(), me());
        let mut big = sample().remove(0);
        big.reason = Some("x".repeat(100_000));
        let line = to_line(&big);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    let (status, stderr) = sh(&command, &line);
                    assert_eq!(status, 0, "{stderr}");
                });
            }
        });
        let (back, warnings) = parse_host_log("h", &read_host(&dir), 0);
        assert!(warnings.is_empty(), "{}", warnings.len());
        assert_eq!(back.len(), 6);
        assert!(back.iter().all(|r| *r == big));
    }

    #[test]
    fn host_append_refuses_what_it_cannot_trust() {
        let line = to_line(&sample()[0]);
        // (what is wrong, set-up, owner required, stdin, stderr says)
        type Setup = fn(&Path);
        let cases: [(&str, Setup, bool, &str, &str); 6] = [
            (
                "group-writable directory",
                |d| {
                    fs::create_dir(d).unwrap();
                    fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o775))
                        .unwrap();
                },
                true,
                &line,
                "deployer-hostpath mode ",
            ),
            (
                "someone else's directory",
                |d| fs::create_dir(d).unwrap(),
                false,
                &line,
                "deployer-hostpath owner ",
            ),
            (
                "symbolic link as the file",
                |d| {
                    fs::create_dir(d).unwrap();
                    std::os::unix::fs::symlink("/etc/passwd", d.join(HOST_LOG_NAME)).unwrap();
                },
                true,
                &line,
                "deployer-hostpath link ",
            ),
            (
                "symbolic link as the directory",
                |d| {
                    std::os::unix::fs::symlink("/tmp", d).unwrap();
                },
                true,
                &line,
                "deployer-hostpath link ",
            ),
            (
                "not JSON",
                |_| {},
                true,
                "rm -rf /\n",
                "stdin is not one JSON record",
            ),
            ("nothing", |_| {}, true, "", "no record on stdin"),
        ];
        for (what, setup, owned, stdin, says) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("deployer");
            setup(&dir);
            let owner = if owned { me() } else { 4242 };
            let (status, stderr) = sh(&host_append(dir.to_str().unwrap(), owner), stdin);
            assert_ne!(status, 0, "{what}: accepted");
            assert!(stderr.contains(says), "{what}: {stderr}");
            assert!(
                stderr.starts_with("deployer history: ")
                    || crate::hostpath::parse_refusal(&stderr).is_some(),
                "{what}: {stderr}"
            );
            let file = dir.join(HOST_LOG_NAME);
            if !fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
                assert!(
                    fs::read(&file).unwrap_or_default().is_empty(),
                    "{what}: written"
                );
            }
        }
    }

    /// A log that root did not write, or that cannot be seen, is an
    /// error: never someone else's records, never "no history".
    #[test]
    fn host_read_refuses_a_log_it_cannot_trust_or_see() {
        let append = |d: &Path| {
            let line = to_line(&sample()[0]);
            let (status, stderr) = sh(&host_append(d.to_str().unwrap(), me()), &line);
            assert_eq!(status, 0, "{stderr}");
        };
        type Setup = Box<dyn Fn(&Path)>;
        let chmod = |p: &Path, m: u32| {
            fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
        };
        // (what is wrong, set-up of the log's directory, owner required, stderr says)
        let cases: [(&str, Setup, bool, &str); 6] = [
            (
                "a log in someone else's directory",
                Box::new(append),
                false,
                "deployer-hostpath owner ",
            ),
            (
                "a group-writable directory",
                Box::new(move |d| {
                    append(d);
                    chmod(d, 0o775);
                }),
                true,
                "deployer-hostpath mode ",
            ),
            (
                "a world-writable log",
                Box::new(move |d| {
                    append(d);
                    chmod(&d.join(HOST_LOG_NAME), 0o666);
                }),
                true,
                "deployer-hostpath mode ",
            ),
            (
                "a symbolic link as the log",
                Box::new(|d| {
                    fs::create_dir(d).unwrap();
                    std::os::unix::fs::symlink("/etc/passwd", d.join(HOST_LOG_NAME)).unwrap();
                }),
                true,
                "deployer-hostpath link ",
            ),
            (
                "a symbolic link as the directory",
                Box::new(|d| std::os::unix::fs::symlink("/tmp", d).unwrap()),
                true,
                "deployer-hostpath link ",
            ),
            (
                "a parent that cannot be looked into",
                Box::new(|d| {
                    fs::write(d.parent().unwrap(), "").unwrap();
                }),
                true,
                "deployer-hostpath type ",
            ),
        ];
        for (what, setup, owned, says) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dir = if what.contains("parent") {
                tmp.path().join("log/deployer")
            } else {
                tmp.path().join("deployer")
            };
            setup(&dir);
            let owner = if owned { me() } else { 4242 };
            let (status, stdout, stderr) = try_read_host(&dir, owner);
            assert_ne!(status, 0, "{what}: read as a history: {stdout:?}");
            assert_eq!(stdout, "", "{what}");
            assert!(
                crate::hostpath::parse_refusal(&stderr).is_some(),
                "{what}: {stderr}"
            );
            assert!(stderr.contains(says), "{what}: {stderr}");
        }
    }

    /// serde's message quotes the bad value, which a host chose.
    #[test]
    fn a_skipped_line_is_named_without_its_control_characters() {
        let mut line = serde_json::to_value(&sample()[0]).unwrap();
        line["outcome"] = serde_json::Value::String("\x1b]0;pwned\x07".into());
        let text = format!("{line}\n");
        let (records, warnings) = parse_host_log("prod-1", &text, 0);
        assert!(records.is_empty());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(!warnings[0].contains('\x1b'), "{warnings:?}");
        assert!(warnings[0].contains("\\x1b]0;pwned\\x07"), "{warnings:?}");
    }

    /// Only the tail of a long host log is kept: the older records are
    /// said to be missing, and the line cut in two is no "torn line".
    #[test]
    fn a_host_log_read_in_part_says_so() {
        let records = sample();
        let whole: String = records.iter().map(to_line).collect();
        let cut = whole.len() - to_line(&records[3]).len() - to_line(&records[2]).len() - 10;
        let (back, warnings) = parse_host_log("prod-1", &whole[cut..], cut as u64);
        assert_eq!(back, records[2..]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with("host `prod-1`: `/var/log/deployer/history.jsonl`: only its newest ")
                && warnings[0].ends_with(&format!("({cut} bytes before them were dropped)")),
            "{warnings:?}"
        );
        // a torn line further on is still named, counted from the tail
        let text = format!("{}\n{{\"torn", &whole[cut..]);
        let (_, warnings) = parse_host_log("prod-1", &text, cut as u64);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[1].starts_with(
                "host `prod-1`: `/var/log/deployer/history.jsonl` (its tail) line 4: skipped"
            ),
            "{warnings:?}"
        );
    }

    #[test]
    fn host_read_of_a_host_without_history_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_host(&tmp.path().join("deployer")), "");
        let dir = tmp.path().join("deployer");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert_eq!(read_host(&dir), "");
        assert_eq!(parse_host_log("h", "", 0), (Vec::new(), Vec::new()));
    }

    #[test]
    fn a_refusal_is_put_on_record_in_the_history_and_as_the_json_document() {
        use crate::console::{Captured, Scripted};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployer-history.jsonl");
        let console = Console::new(
            Box::new(Captured::default()),
            Box::new(Captured::default()),
            Box::new(Scripted(Vec::new())),
            crate::render::Color::Never,
        );
        let attempt = Attempt::start("unlock");
        let refused = attempt.refused("prod", "refused without --force: stuck".into());
        assert_eq!(refused.outcome, Outcome::Refused);
        assert_eq!(refused.id, attempt.id());
        assert_eq!(refused.stage, "prod");
        assert_eq!(refused.action, "unlock");
        assert_eq!(
            refused.reason.as_deref(),
            Some("refused without --force: stuck")
        );
        assert!(refused.hosts.is_empty());

        put_on_record(&path, &console, &refused);
        assert_eq!(read(&path).unwrap().records, vec![refused.clone()]);
        assert_eq!(
            console.take_document(),
            Some(serde_json::to_value(&refused).unwrap())
        );
    }
}
