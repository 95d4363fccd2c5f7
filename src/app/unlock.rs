//! `deployer unlock STAGE --force --reason TEXT`: break the deploy lock on
//! every host of a stage (a holder that is gone, or must be stopped), and
//! record it in the history. An install that still runs keeps its own
//! lock: that one is never broken. The unlock is announced to the team
//! (`[notify]`, event `unlock`) with who and why.

use crate::cli::Cli;
use crate::config::Config;
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::history::{self, HostRecord, HostResult, Outcome, Record};
use crate::lock::{self, Unlocked};

use super::setup::{load_config, stage_fleet};

/// `deployer unlock STAGE`: the configuration loaded, the stage's hosts
/// connected to, then [`apply`].
pub(super) fn command(
    cli: &Cli,
    console: &Console,
    stage: &str,
    force: bool,
    reason: &str,
) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    let fleet = stage_fleet(cli, &config, stage)?;
    apply(&config, console, fleet, stage, force, reason)
}

/// Break the locks of `stage` on the hosts of `fleet` (that stage's).
pub fn apply(
    config: &Config,
    console: &Console,
    mut fleet: Fleet,
    stage: &str,
    force: bool,
    reason: &str,
) -> Result<ExitStatus, Fatal> {
    let attempt = history::Attempt::start("unlock");
    if !force {
        let record = attempt.refused(stage, format!("refused without --force: {reason}"));
        history::put_on_record(&config.history_file, console, &record);
        return Err(Fatal::usage(format!(
            "breaking the deploy lock of `{stage}` needs `--force`"
        ))
        .note("the lock may belong to a deploy that is still running; `deployer` shows who holds it when a deploy is refused")
        .status(ExitStatus::Refused));
    }
    // the locks are root's: sudo must work on every host that answers
    let answers = crate::sudo::ask_stage(&mut fleet, stage, config.ssh.command_timeout);
    if let Some(f) = crate::sudo::refusal("unlock", stage, &answers) {
        let record = Record {
            forced: true,
            ..attempt.refused(stage, format!("{}: {reason}", f.message))
        };
        history::put_on_record(&config.history_file, console, &record);
        return Err(f);
    }
    let command = lock::unlock_command();
    let answers = fleet.run_on_stage(stage, &command, config.ssh.command_timeout);
    let mut hosts = Vec::new();
    let mut problems = Vec::new();
    for (host, answer) in &answers {
        let outcome = match answer {
            Ok(out) if out.success() => lock::parse_unlock(&out.stdout),
            Ok(out) => Err(crate::transport::failure(out)),
            Err(e) => Err(e.to_string()),
        };
        let (result, message) = match &outcome {
            Ok(Unlocked::Free) => (HostResult::Unchanged, "was not locked".to_string()),
            Ok(Unlocked::Broken(who)) => (HostResult::Changed, format!("broke the lock of {who}")),
            Err(e) => {
                problems.push(format!("{host}: {e}"));
                (HostResult::Failed, e.clone())
            }
        };
        console.say(&format!("  {host}: {message}"));
        hosts.push(HostRecord {
            host: host.clone(),
            from: None,
            to: None,
            result,
            message: Some(message),
            restart: None,
            log_tail: Vec::new(),
            gates: Vec::new(),
        });
    }
    let outcome = if problems.is_empty() {
        Outcome::Success
    } else {
        Outcome::Failed
    };
    let record = Record {
        reason: Some(reason.to_string()),
        forced: true,
        hosts,
        ..attempt.record(stage, outcome)
    };
    history::put_on_record(&config.history_file, console, &record);
    crate::notify::announce_or_warn(&config.notify, console, &record);
    if problems.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let mut f = Fatal::usage(format!(
        "could not break the lock of `{stage}` on {} host(s)",
        problems.len()
    ))
    .status(ExitStatus::FailedUnchanged);
    f.notes = problems;
    Err(f)
}
