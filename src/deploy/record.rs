//! The attempt on record in the local history: its end, its refusal or
//! failure before any change (also the command's `--json` document), what
//! a signal leaves on record, and the [`Journal`] kept host by host while
//! hosts are being changed. A dry run records nothing.

use std::sync::{Arc, Mutex};

use crate::error::{ExitStatus, Fatal};
use crate::history::{self, HostRecord, HostResult, Outcome, Record};

use super::attempt::Attempt;
use super::context::Context;

/// Append the attempt's record with `outcome` to the history (never for a
/// dry run); returns it.
pub fn record(
    cx: &Context<'_>,
    attempt: &Attempt,
    outcome: Outcome,
    reason: Option<String>,
    hosts: Vec<HostRecord>,
) -> Record {
    let record = attempt.to_record(outcome, reason, hosts);
    if !cx.opts.dry_run {
        history::append_or_warn(&cx.config.history_file, &record);
    }
    record
}

/// Should a signal stop deployer before any host is changed, record
/// the attempt (as known so far) as interrupted. Not for a dry run.
pub fn record_if_stopped(cx: &Context<'_>, attempt: &Attempt) {
    if cx.opts.dry_run {
        return;
    }
    let record = attempt.to_record(
        Outcome::Interrupted,
        Some("interrupted before any host was changed".into()),
        Vec::new(),
    );
    let path = cx.config.history_file.clone();
    cx.interrupt
        .on_exit(move || history::append_or_warn(&path, &record));
}

/// Put on record an attempt that ends before any change as every command
/// does ([`history::put_on_record`]: in the history, and as the `--json`
/// document); a dry run records nothing, and prints no record.
fn record_ended(cx: &Context<'_>, record: &Record) {
    if !cx.opts.dry_run {
        history::put_on_record(&cx.config.history_file, cx.console, record);
    }
}

/// Refuse: record it (also as the `--json` document) and build the
/// error (exit status 6).
pub fn refuse(cx: &Context<'_>, attempt: &Attempt, message: String, notes: Vec<String>) -> Fatal {
    record_ended(cx, &attempt.refused(message.clone()));
    let mut f = Fatal::usage(message).status(ExitStatus::Refused);
    f.notes = notes;
    f.notes.push("no host was changed".to_string());
    f
}

/// Reject what was typed once the target is known (a usage error, exit
/// status 2): record it as refused, and return `fatal` as it is.
pub fn reject(cx: &Context<'_>, attempt: &Attempt, fatal: Fatal) -> Fatal {
    record_ended(cx, &attempt.refused(fatal.message.clone()));
    fatal
}

/// Fail before any change: record it (also as the `--json` document)
/// and build the error (exit status 7).
pub fn fail_unchanged(
    cx: &Context<'_>,
    attempt: &Attempt,
    message: String,
    notes: Vec<String>,
) -> Fatal {
    record_ended(
        cx,
        &attempt.to_record(Outcome::Failed, Some(message.clone()), Vec::new()),
    );
    let mut f = Fatal::usage(message).status(ExitStatus::FailedUnchanged);
    f.notes = notes;
    f.notes.push("no package was changed".to_string());
    f
}

/// The attempt's record while hosts are being changed, kept current host
/// by host, so that a second signal can record what is known and exit.
#[derive(Clone)]
pub struct Journal {
    record: Arc<Mutex<Record>>,
    history: std::path::PathBuf,
}

/// What a host still in progress is recorded as when deployer is stopped
/// at once.
const IN_FLIGHT: &str = "in progress when deployer was stopped: check with `deployer status`";

/// What a host being rolled back is recorded as when deployer is stopped
/// at once.
const ROLLING_BACK: &str =
    "being rolled back when deployer was stopped: check with `deployer status`";

impl Journal {
    pub(super) fn new(started: &Record, history: &std::path::Path) -> Journal {
        Journal {
            record: Arc::new(Mutex::new(started.clone())),
            history: history.to_path_buf(),
        }
    }

    fn with(&self, change: impl FnOnce(&mut Record)) {
        change(&mut self.record.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// These hosts are being changed now.
    pub fn in_flight(&self, hosts: &[&str]) {
        self.unknown(hosts, IN_FLIGHT);
    }

    /// These hosts are being rolled back now.
    pub fn rolling_back(&self, hosts: &[&str]) {
        self.unknown(hosts, ROLLING_BACK);
    }

    fn unknown(&self, hosts: &[&str], why: &str) {
        self.with(|r| {
            for h in r
                .hosts
                .iter_mut()
                .filter(|h| hosts.contains(&h.host.as_str()))
            {
                h.result = HostResult::Unknown;
                h.message = Some(why.to_string());
            }
        });
    }

    /// This host is done.
    pub fn done(&self, host: HostRecord) {
        self.with(|r| {
            if let Some(h) = r.hosts.iter_mut().find(|h| h.host == host.host) {
                *h = host;
            }
        });
    }

    /// Record the attempt as interrupted at once (second signal): hosts not
    /// started are untouched, hosts in flight unknown.
    pub fn record_abandoned(&self) {
        let mut record = self
            .record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        record.outcome = Outcome::Interrupted;
        record.reason = Some(
            "a second signal stopped deployer at once; hosts in progress are in an unknown state"
                .to_string(),
        );
        for h in &mut record.hosts {
            if h.result == HostResult::Planned {
                h.result = HostResult::Untouched;
            }
        }
        history::append_or_warn(&self.history, &record);
    }
}
