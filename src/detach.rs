//! Runs that outlive the operator's connection: an install (or a
//! rollback) started on the host in its own session (`setsid`), with its
//! output, process id and exit status written under a per-run directory,
//! `/var/lib/deployer/runs/<attempt>-<what>/`. A dropped connection, a
//! timeout or a killed deployer then never interrupts dpkg half-way, and
//! the install holds `/run/deployer/install.lock` for as long as it runs,
//! so that no other deploy can start on the host meanwhile (see `lock`).
//!
//! Pure: command builders and the parser of what a poll prints. Works on
//! hosts with or without systemd (only `sh`, `setsid` and `flock`).

use crate::command::RemoteCommand;

/// Where runs are kept, one directory each (root-owned, world-readable).
pub const RUNS_DIR: &str = "/var/lib/deployer/runs";

/// Held by a detached install for as long as it runs.
pub const INSTALL_LOCK: &str = "/run/deployer/install.lock";

/// The directory of the run `what` (`install`, `rollback`) of an attempt.
/// Attempt ids are `[0-9A-Za-z-]` (see `history`), so the path needs no
/// quoting beyond what `RemoteCommand` does anyway.
pub fn run_dir(attempt: &str, what: &str) -> String {
    let safe: String = attempt
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{RUNS_DIR}/{safe}-{what}")
}

/// The script that starts a run, as root: `$1` the run directory (must not
/// exist yet), `$2` the command line, `$3` the install lock. The run's
/// shell takes the install lock, records its pid, runs the command with
/// output to `log` and stdin from /dev/null, then writes `status`
/// atomically. Prints `STARTED` once it is on its way.
const START: &str = r#"set -u
dir=$1 line=$2 lock=$3
umask 022
install -d -m 0755 /var/lib/deployer /var/lib/deployer/runs /run/deployer || exit 1
mkdir -m 0755 -- "$dir" || { echo "deployer: cannot create the run directory $dir" >&2; exit 1; }
printf '%s\n' "$line" > "$dir/command"
: > "$dir/log"
setsid -f sh -c 'exec 9>>"$3"; flock -x 9; echo $$ > "$1/pid"; echo "$1" > /run/deployer/installing; sh -c "$2" > "$1/log" 2>&1 < /dev/null; echo $? > "$1/status.new"; mv -f "$1/status.new" "$1/status"' deployer-run "$dir" "$line" "$lock" < /dev/null > /dev/null 2>&1 || exit 1
echo STARTED"#;

/// Run as root already: `sudo -n` inside the command is a no-op (also on
/// a machine without sudo, such as a `local` host run by root).
const AS_ROOT: &str = r#"sudo() { [ "$1" = -n ] && shift; "$@"; }; "#;

/// Start `command` detached on the host, in run directory `dir`.
pub fn start_command(dir: &str, command: &RemoteCommand) -> RemoteCommand {
    let line = format!("{AS_ROOT}{command}");
    RemoteCommand::new("sh")
        .args(["-c", START, "deployer-start", dir, &line, INSTALL_LOCK])
        .sudo()
        .named("detached run")
}

/// The script that reports on a run without root: its status once it has
/// one (read before the log, so a finished run's log is complete), then
/// its log from byte `$2` (1-based) on.
const POLL: &str = r#"dir=$1 from=$2
if [ ! -d "$dir" ]; then echo '#missing'; exit 0; fi
if [ -f "$dir/status" ]; then printf '#status %s\n' "$(cat "$dir/status")"; fi
echo '#log'
tail -c "+$from" "$dir/log" 2>/dev/null
true"#;

/// Ask how the run in `dir` is doing, with its log from byte `offset` on
/// (0-based).
pub fn poll_command(dir: &str, offset: u64) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", POLL, "deployer-poll", dir, &(offset + 1).to_string()])
        .named("poll")
}

/// What one poll said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// The run directory is gone (the host was reinstalled?).
    Missing,
    /// The run goes on, or has ended with `status`; `log` is the new output.
    Seen {
        /// The exit status, once the run has ended.
        status: Option<i32>,
        /// The log from the offset asked for.
        log: String,
    },
}

/// Read what [`poll_command`] printed.
pub fn parse_poll(stdout: &str) -> Result<Poll, String> {
    if stdout.starts_with("#missing") {
        return Ok(Poll::Missing);
    }
    let (status, rest) = match stdout.strip_prefix("#status ") {
        Some(after) => {
            let (value, rest) = after.split_once('\n').unwrap_or((after, ""));
            let status = value
                .trim()
                .parse::<i32>()
                .map_err(|_| format!("the run's status is not a number: `{}`", value.trim()))?;
            (Some(status), rest)
        }
        None => (None, stdout),
    };
    let log = rest
        .strip_prefix("#log\n")
        .ok_or_else(|| "the poll's answer lacks its `#log` line".to_string())?;
    Ok(Poll::Seen {
        status,
        log: log.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn run_dirs_keep_only_safe_characters() {
        assert_eq!(
            run_dir("20261121T073005Z-42-00c0ffee", "install"),
            "/var/lib/deployer/runs/20261121T073005Z-42-00c0ffee-install"
        );
        assert_eq!(run_dir("../../etc", "x"), "/var/lib/deployer/runs/etc-x");
    }

    #[test]
    fn polls_are_parsed() {
        assert_eq!(parse_poll("#missing\n"), Ok(Poll::Missing));
        assert_eq!(
            parse_poll("#log\nSetting up x\n"),
            Ok(Poll::Seen {
                status: None,
                log: "Setting up x\n".into()
            })
        );
        assert_eq!(
            parse_poll("#status 100\n#log\n"),
            Ok(Poll::Seen {
                status: Some(100),
                log: String::new()
            })
        );
        assert!(parse_poll("#status x\n#log\n").is_err());
        assert!(parse_poll("garbage").is_err());
    }

    /// The poll script, run by a real shell on a run directory made by
    /// hand: offsets, status, and a missing directory.
    #[test]
    fn poll_script_reports_status_and_log_from_an_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let dir_text = dir.display().to_string();
        let poll = |offset: u64| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(poll_command(&dir_text, offset).as_str())
                .output()
                .unwrap();
            parse_poll(&String::from_utf8_lossy(&out.stdout)).unwrap()
        };
        assert_eq!(poll(0), Poll::Missing);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("log"), "abcdef").unwrap();
        assert_eq!(
            poll(2),
            Poll::Seen {
                status: None,
                log: "cdef".into()
            }
        );
        std::fs::write(dir.join("status"), "0\n").unwrap();
        assert_eq!(
            poll(6),
            Poll::Seen {
                status: Some(0),
                log: String::new()
            }
        );
    }
}
