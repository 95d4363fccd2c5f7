//! Stage freezes: a record on every host of a stage saying who froze it,
//! when and why. Kept on the hosts (not on one operator's laptop) so that
//! every copy of deployer and every cron job sees it. A frozen stage
//! refuses deploy and promote unless forced with a logged reason.

use serde::{Deserialize, Serialize};

use crate::command::RemoteCommand;

/// Where the records live on each host: one file per frozen stage, named
/// after the stage (a host may serve several stages, e.g. `local`).
pub const DIR: &str = "/var/lib/deployer/freeze";

/// Who froze a stage, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// The stage frozen (the record's file name on the host).
    #[serde(default)]
    pub stage: String,
    /// `user@machine` of the operator.
    pub by: String,
    /// RFC 3339 time.
    pub since: String,
    /// The reason given.
    pub reason: String,
}

impl Freeze {
    /// The record as stored on the hosts: one line of JSON.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("plain strings serialize");
        s.push('\n');
        s
    }

    /// Read a stored record; text that is not a record (edited by hand)
    /// still freezes the stage, with the text as its reason.
    pub fn from_text(text: &str) -> Freeze {
        serde_json::from_str(text.trim()).unwrap_or_else(|_| Freeze {
            stage: String::new(),
            by: "unknown".to_string(),
            since: "unknown".to_string(),
            reason: text.trim().to_string(),
        })
    }

    /// One line for people, for a terminal: the record comes from the
    /// hosts, so control characters are shown escaped (the JSON output
    /// serializes the fields themselves, unchanged).
    pub fn describe(&self) -> String {
        format!(
            "frozen by {} since {}: {}",
            crate::text::one_line(&self.by),
            crate::text::one_line(&self.since),
            crate::text::one_line(&self.reason)
        )
    }
}

/// Write the record for `stage` (a validated stage name) read from stdin;
/// atomically, so a reader never sees half of it.
pub fn set_command(stage: &str) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args([
            "-c",
            "mkdir -p \"$0\" && cat > \"$0/$1.new\" && mv -f \"$0/$1.new\" \"$0/$1\"",
            DIR,
            stage,
        ])
        .sudo()
}

/// Remove the record for `stage`.
pub fn clear_command(stage: &str) -> RemoteCommand {
    RemoteCommand::new("rm")
        .args(["-f", "--", &format!("{DIR}/{stage}")])
        .sudo()
}

/// Freeze (`reason` given) or unfreeze a stage on every one of its hosts,
/// and record it in the history. Every host must be reached: a freeze that
/// only some hosts know about would be worse than none.
pub fn apply(
    config: &crate::config::Config,
    mut fleet: crate::fleet::Fleet,
    stage: &str,
    reason: Option<&str>,
) -> Result<crate::error::ExitStatus, crate::error::Fatal> {
    use crate::error::{ExitStatus, Fatal};
    use crate::history::{self, HostRecord, HostResult, Outcome, Record};
    let started = std::time::Instant::now();
    let (user, machine) = history::local_identity();
    let record_line = reason.map(|r| {
        Freeze {
            stage: stage.to_string(),
            by: format!("{user}@{machine}"),
            since: history::now_rfc3339(),
            reason: r.to_string(),
        }
        .to_line()
    });
    let command = if record_line.is_some() {
        set_command(stage)
    } else {
        clear_command(stage)
    };
    let timeout = config.ssh.command_timeout;
    let results = crate::fanout::map(&mut fleet.members, fleet.parallelism, |m| {
        match &mut m.conn {
            Ok(conn) => conn.exec(crate::transport::Exec {
                command: &command,
                timeout,
                stdin: record_line.as_deref().map(str::as_bytes),
                on_output: None,
            }),
            Err(e) => Err(e.clone()),
        }
    });
    let mut hosts = Vec::new();
    let mut problems = Vec::new();
    for (m, r) in fleet.members.iter().zip(&results) {
        let failure = match r {
            Ok(out) if out.success() => None,
            Ok(out) if crate::transport::sudo_wants_password(&out.stderr) => {
                Some("sudo asks for a password".to_string())
            }
            Ok(out) => Some(format!(
                "exit status {}: {}",
                out.status,
                crate::text::clip(
                    &crate::text::one_line(out.stderr.trim()),
                    crate::error::REMOTE_TEXT_MAX
                )
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(f) = &failure {
            problems.push(format!("{}: {f}", m.target.host));
        }
        hosts.push(HostRecord {
            host: m.target.host.clone(),
            from: None,
            to: None,
            result: if failure.is_some() {
                HostResult::Failed
            } else {
                HostResult::Changed
            },
            message: failure,
        });
    }
    let action = if reason.is_some() {
        "freeze"
    } else {
        "unfreeze"
    };
    let outcome = match (problems.len(), hosts.len()) {
        (0, _) => Outcome::Success,
        (p, h) if p == h => Outcome::Failed,
        _ => Outcome::Partial,
    };
    let record = Record {
        reason: reason.map(str::to_string),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        hosts,
        ..Record::begin(action, stage, outcome)
    };
    history::append_or_warn(&config.history_file, &record);
    if problems.is_empty() {
        let done = if reason.is_some() {
            "frozen"
        } else {
            "unfrozen"
        };
        println!(
            "Stage `{stage}` is now {done} on {} host(s).",
            results.len()
        );
        return Ok(ExitStatus::Success);
    }
    let mut f = Fatal::usage(format!(
        "could not {action} `{stage}` on {} of {} host(s)",
        problems.len(),
        results.len()
    ))
    .status(if outcome == Outcome::Failed {
        ExitStatus::FailedUnchanged
    } else {
        ExitStatus::FailedPartial
    });
    f.notes = problems;
    f.notes.push(format!(
        "run `deployer {action} {stage}` again once the hosts are reachable"
    ));
    Err(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_reads_well() {
        let f = Freeze {
            stage: "prod".into(),
            by: "alice@laptop".into(),
            since: "2026-11-21T07:30:05Z".into(),
            reason: "incident 42: \"db\" overload".into(),
        };
        assert_eq!(Freeze::from_text(&f.to_line()), f);
        assert_eq!(
            f.describe(),
            "frozen by alice@laptop since 2026-11-21T07:30:05Z: incident 42: \"db\" overload"
        );
    }

    #[test]
    fn describe_escapes_what_the_host_wrote() {
        let f = Freeze {
            stage: "prod".into(),
            by: "eve\x1b]0;pwned\x07".into(),
            since: "now\r".into(),
            reason: "ok\x1b[2J\nerror: all hosts deployed".into(),
        };
        assert_eq!(
            f.describe(),
            "frozen by eve\\x1b]0;pwned\\x07 since now\\r: ok\\x1b[2J\\nerror: all hosts deployed"
        );
        // the record itself keeps the exact text
        assert_eq!(Freeze::from_text(&f.to_line()), f);
    }

    #[test]
    fn hand_written_record_still_freezes() {
        let f = Freeze::from_text("do not deploy, ask bob\n");
        assert_eq!(f.reason, "do not deploy, ask bob");
    }

    #[test]
    fn commands_quote_the_stage() {
        assert_eq!(
            set_command("prod").as_str(),
            "sudo -n sh -c 'mkdir -p \"$0\" && cat > \"$0/$1.new\" && mv -f \"$0/$1.new\" \"$0/$1\"' /var/lib/deployer/freeze prod"
        );
        assert_eq!(
            clear_command("prod").as_str(),
            "sudo -n rm -f -- /var/lib/deployer/freeze/prod"
        );
    }
}
