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
/// exist yet), `$2` the command line, `$3` the install lock (its directory
/// also holds `installing`, the run that has it). The install lock is
/// taken here, before anything else, and handed down to the run's shell,
/// so that it is held from before `STARTED` is printed until the run's
/// status is written: a deployer killed right after the start never leaves
/// a window in which another deploy could take the host. It is not handed
/// to the command itself, so that a daemon a maintainer script starts does
/// not keep it forever. Prints `STARTED` once the run is on its way.
///
/// Both directories are entered through [`crate::hostpath`] (created if
/// missing) and every file is written relative to them: the run's shell
/// starts in the run directory and writes `pid`, `log` and `status` there;
/// the command itself runs from `/`.
const START: &str = r#"set -u
dir=$1 line=$2 lock=$3
umask 022
hp_enter "${lock%/*}" create
hp_file "${lock##*/}"
hp_file installing
exec 9>>"${lock##*/}" || { echo "deployer: cannot open $lock" >&2; exit 1; }
if ! flock -n 9; then
    echo "deployer: another install or rollback still runs on this host ($(head -c 300 installing 2>/dev/null | tr '\n' ' ')); nothing was started" >&2
    exit 1
fi
printf '%s\n' "$dir" > installing
hp_enter "${dir%/*}" create
mkdir -m 0755 -- "${dir##*/}" && cd -- "${dir##*/}" || { echo "deployer: cannot create the run directory $dir" >&2; exit 1; }
printf '%s\n' "$line" > command
: > log
setsid -f sh -c 'echo $$ > pid; (cd / && exec sh -c "$2") > log 2>&1 < /dev/null 9>&-; echo $? > status.new; mv -f status.new status' deployer-run "$dir" "$line" < /dev/null > /dev/null 2>&1 || exit 1
echo STARTED"#;

/// Run as root already: `sudo -n` inside the command is a no-op (also on
/// a machine without sudo, such as a `local` host run by root).
const AS_ROOT: &str = r#"sudo() { [ "$1" = -n ] && shift; "$@"; }; "#;

/// Start `command` detached on the host, in run directory `dir`.
pub fn start_command(dir: &str, command: &RemoteCommand) -> RemoteCommand {
    let line = format!("{AS_ROOT}{command}");
    RemoteCommand::new("sh")
        .args([
            "-c",
            &crate::hostpath::script(START),
            "deployer-start",
            dir,
            &line,
            INSTALL_LOCK,
        ])
        .sudo()
        .named("detached run")
}

/// The most log a single poll brings back, in bytes: well under what a
/// command's output keeps (`transport::OUTPUT_LIMIT`), so that a poll's
/// own header is never cut off, however much the run printed since the
/// last poll. Older bytes are skipped on the host, and counted.
pub const POLL_CHUNK: u64 = 256 * 1024;

/// The script that reports on a run without root: its status once it has
/// one (read before the log, so a finished run's log is complete), then
/// `#log START END` and the log's bytes from `START` to `END` (0-based;
/// `END` is the log's size; `START` is `$2`, or later when more than `$3`
/// bytes are new).
const POLL: &str = r##"dir=$1 from=$2 chunk=$3
if [ ! -d "$dir" ]; then echo '#missing'; exit 0; fi
if [ -f "$dir/status" ]; then printf '#status %s\n' "$(cat "$dir/status")"; fi
size=$({ wc -c < "$dir/log"; } 2>/dev/null)
size=$((${size:-0} + 0))
start=$from
if [ "$start" -gt "$size" ]; then start=$size; fi
if [ $((size - start)) -gt "$chunk" ]; then start=$((size - chunk)); fi
echo "#log $start $size"
tail -c "+$((start + 1))" "$dir/log" 2>/dev/null | head -c "$((size - start))"
true"##;

/// Ask how the run in `dir` is doing, with its log from byte `offset` on
/// (0-based), at most [`POLL_CHUNK`] bytes of it.
pub fn poll_command(dir: &str, offset: u64) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args([
            "-c",
            POLL,
            "deployer-poll",
            dir,
            &offset.to_string(),
            &POLL_CHUNK.to_string(),
        ])
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
        /// Where in the log `log` starts (bytes before it that were not
        /// asked for before were skipped).
        start: u64,
        /// Where it ends: the log's size.
        end: u64,
        /// The log from `start` to `end`, lossily decoded.
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
    let lacks = || "the poll's answer lacks its `#log START END` line".to_string();
    let after = rest.strip_prefix("#log ").ok_or_else(lacks)?;
    let (range, log) = after.split_once('\n').ok_or_else(lacks)?;
    let (start, end) = range.split_once(' ').ok_or_else(lacks)?;
    let (Ok(start), Ok(end)) = (start.trim().parse::<u64>(), end.trim().parse::<u64>()) else {
        return Err(lacks());
    };
    if start > end {
        return Err(lacks());
    }
    Ok(Poll::Seen {
        status,
        start,
        end,
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
            parse_poll("#log 3 15\nSetting up x\n"),
            Ok(Poll::Seen {
                status: None,
                start: 3,
                end: 15,
                log: "Setting up x\n".into()
            })
        );
        assert_eq!(
            parse_poll("#status 100\n#log 0 0\n"),
            Ok(Poll::Seen {
                status: Some(100),
                start: 0,
                end: 0,
                log: String::new()
            })
        );
        assert!(parse_poll("#status x\n#log 0 0\n").is_err());
        assert!(parse_poll("#log\n").is_err());
        assert!(parse_poll("#log 5 2\n").is_err());
        assert!(parse_poll("garbage").is_err());
    }

    fn sh(script: &str, args: &[&str]) -> std::process::Output {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .unwrap()
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
                start: 2,
                end: 6,
                log: "cdef".into()
            }
        );
        std::fs::write(dir.join("status"), "0\n").unwrap();
        assert_eq!(
            poll(6),
            Poll::Seen {
                status: Some(0),
                start: 6,
                end: 6,
                log: String::new()
            }
        );
    }

    /// Regression: a poll sent back the whole of the log that was new, and
    /// a run that printed more than a command's output keeps (1 MiB)
    /// between two polls lost the poll's header with the front of it:
    /// deployer then lost sight of an install that was going well.
    #[test]
    fn a_flood_of_output_is_skipped_on_the_host_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        let size = 3 * 1024 * 1024 + 7;
        let mut log = vec![b'x'; size - 4];
        log.extend_from_slice(b"END\n");
        std::fs::write(dir.join("log"), &log).unwrap();
        std::fs::write(dir.join("status"), "0\n").unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(poll_command(&dir.display().to_string(), 10).as_str())
            .output()
            .unwrap();
        assert!(
            out.stdout.len() < POLL_CHUNK as usize + 100,
            "{} bytes in one poll",
            out.stdout.len()
        );
        match parse_poll(&String::from_utf8_lossy(&out.stdout)).unwrap() {
            Poll::Seen {
                status,
                start,
                end,
                log,
            } => {
                assert_eq!(status, Some(0));
                assert_eq!(end, size as u64);
                assert_eq!(start, end - POLL_CHUNK);
                assert_eq!(log.len() as u64, POLL_CHUNK);
                assert!(log.ends_with("END\n"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A run dir, command line and install lock in a directory of the test.
    fn start_in(tmp: &std::path::Path, line: &str) -> (String, String, std::process::Output) {
        let top = tmp.canonicalize().unwrap().display().to_string();
        let dir = format!("{top}/runs/a-install");
        let lock = format!("{top}/run/install.lock");
        let me = rustix::process::geteuid().as_raw();
        let out = sh(
            &crate::hostpath::script_in(&top, me, START),
            &["deployer-start", &dir, line, &lock],
        );
        (dir, lock, out)
    }

    fn lock_is_free(lock: &str) -> bool {
        Command::new("flock")
            .args(["-n", lock, "true"])
            .status()
            .unwrap()
            .success()
    }

    fn wait_for(path: &std::path::Path) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !path.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never came",
                path.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Regression: `STARTED` was printed before the run took the install
    /// lock (its detached shell took it later, and waited for it), so a
    /// deployer killed right after the start let another deploy lock the
    /// host while the install was about to run. The lock is taken before
    /// the start says anything, and a host whose install lock is taken
    /// starts nothing.
    #[test]
    fn a_run_holds_the_install_lock_before_it_says_started() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("run")).unwrap();
        let lock = tmp.path().join("run/install.lock").display().to_string();
        let mut other = Command::new("flock")
            .args(["-o", &lock, "sleep", "30"])
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while lock_is_free(&lock) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (dir, _, out) = start_in(tmp.path(), "true");
        let _ = other.kill();
        let _ = other.wait();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && !stdout.contains("STARTED"),
            "{stdout}{stderr}"
        );
        assert!(stderr.contains("still runs"), "{stderr}");
        assert!(!std::path::Path::new(&dir).exists(), "nothing was started");

        // free: the lock is held as soon as STARTED is printed
        let (dir, lock, out) = start_in(tmp.path(), "sleep 1");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("STARTED"),
            "{out:?}"
        );
        assert!(
            !lock_is_free(&lock),
            "the install lock is held from the start"
        );
        wait_for(&std::path::Path::new(&dir).join("status"));
        // the runner writes its status, then exits and lets the lock go
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !lock_is_free(&lock) {
            assert!(
                std::time::Instant::now() < deadline,
                "the install lock is freed once the run ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Regression: the command inherited the install lock's descriptor,
    /// so a daemon started by a maintainer script (on a host without
    /// systemd) held the host's install lock, and refused every later
    /// deploy, for as long as it ran.
    #[test]
    fn a_daemon_started_by_the_run_does_not_keep_the_install_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let pidfile = tmp.path().join("daemon.pid");
        let line = format!("sleep 30 & echo $! > {}", pidfile.display());
        let (dir, lock, out) = start_in(tmp.path(), &line);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("STARTED"),
            "{out:?}"
        );
        wait_for(&std::path::Path::new(&dir).join("status"));
        let free = lock_is_free(&lock);
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let _ = Command::new("kill").arg(pid.trim()).status();
        assert!(free, "the daemon kept the install lock");
    }

    /// Issue 17 item 4: a link planted at the runs directory, or at the
    /// lock directory, is refused before anything is created or started,
    /// and nothing is written where it points.
    #[test]
    fn a_planted_link_at_the_runs_or_lock_directory_starts_nothing() {
        use std::os::unix::fs::symlink;
        for planted in ["runs", "run"] {
            let tmp = tempfile::tempdir().unwrap();
            let elsewhere = tmp.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            symlink(&elsewhere, tmp.path().join(planted)).unwrap();
            let (dir, _, out) = start_in(tmp.path(), "touch /nonexistent-deployer-test");
            assert_eq!(
                out.status.code(),
                Some(crate::hostpath::REFUSED_STATUS),
                "{out:?}"
            );
            let r = crate::hostpath::parse_refusal(&String::from_utf8_lossy(&out.stderr)).unwrap();
            assert_eq!(r.kind, crate::hostpath::Kind::Link);
            assert!(r.path.ends_with(&format!("/{planted}")), "{r:?}");
            assert!(!std::path::Path::new(&dir).exists());
            assert_eq!(
                std::fs::read_dir(&elsewhere).unwrap().count(),
                0,
                "{planted}"
            );
        }
    }
}
