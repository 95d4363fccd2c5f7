//! Runs that outlive the operator's connection: an install (or a
//! rollback) started on the host in its own session (`setsid`), with its
//! output, process id and exit status written under a per-run directory,
//! `/var/lib/deployer/runs/<attempt>-<what>/`. A dropped connection, a
//! timeout or a killed deployer then never interrupts dpkg half-way, and
//! the install holds `/run/deployer/install.lock` for as long as it runs,
//! so that no other deploy can start on the host meanwhile (see `lock`).
//!
//! Pure: command builders and the parser of what a poll prints. Works on
//! hosts with or without systemd (only `sh`, `setsid`, `flock` and
//! coreutils).

use crate::command::RemoteCommand;

/// Where runs are kept, one directory each (`0750 root:adm`, at most
/// [`RUNS_KEPT`] of them).
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

/// How many run directories a host keeps: starting a run removes the
/// oldest finished ones beyond this (never one without a status, which may
/// still run or died with its host).
pub const RUNS_KEPT: usize = 20;

/// The script that starts a run, as root: `$1` the run directory (must not
/// exist yet), `$2` the command line, `$3` the install lock (its directory
/// is the deploy lock's, and also holds `installing`, the run that has
/// it), `$4` the attempt, `$5` how many runs to keep. The install lock is
/// taken here, before anything else, and handed down to the run's shell,
/// so that it is held from before `STARTED` is printed until the run's
/// status is written: a deployer killed right after the start never leaves
/// a window in which another deploy could take the host. With it held, the
/// deploy lock is proven to be the attempt's (`lock::PROOF`): a deploy
/// whose lock expired or was broken starts nothing. The install lock is
/// not handed to the command itself, so that a daemon a maintainer script
/// starts does not keep it forever.
///
/// What a run writes may carry secrets (maintainer scripts' output): the
/// runs are `0750`, their files `0640`, owner root, group `adm`, as apt
/// keeps its own logs. The run records the host's boot id (`boot`) and
/// its shell's pid and start time (`pid`), so that a poll tells a run
/// that still goes on from one that died with the host. Prints `STARTED`
/// once the run is on its way (its `pid` written).
///
/// Both directories are entered through [`crate::hostpath`] (created if
/// missing) and every file is written relative to them: the deploy lock is
/// proven in the lock directory, old runs are pruned and the new run made
/// in the runs directory, and the run's shell starts in the run directory
/// and writes `pid`, `log` and `status` there; the command itself runs
/// from `/`.
const START: &str = r#"set -u
dir=$1 line=$2 lock=$3 attempt=$4 keep=$5
lockdir=${lock%/*} runs=${dir%/*} run=${dir##*/}
grp=adm
getent group adm > /dev/null 2>&1 || grp=root
umask 022
hp_enter "$lockdir" create
for f in "${lock##*/}" installing deploy.lock; do hp_file "$f"; done
umask 027
exec 9>>"${lock##*/}" || { echo "deployer: cannot open $lock" >&2; exit 1; }
if ! flock -n 9; then
    echo "deployer: another install or rollback still runs on this host ($(head -c 300 installing 2>/dev/null | tr '\n' ' ')); nothing was started" >&2
    exit 1
fi
deployer_lock_ours "$attempt" || deployer_lock_lost
printf '%s\n' "$dir" > installing
hp_enter "$runs" create
chgrp "$grp" . && chmod 0750 . || exit 1
n=0
for old in $(ls -1 | sort -r); do
    case $old in *[!0-9A-Za-z-]*) continue ;; esac
    [ -d "$old" ] && [ ! -L "$old" ] || continue
    n=$((n + 1))
    if [ "$n" -ge "$keep" ] && [ -f "$old/status" ]; then rm -rf -- "$old"; fi
done
mkdir -m 0750 -- "$run" && cd -- "$run" || { echo "deployer: cannot create the run directory $dir" >&2; exit 1; }
printf '%s\n' "$line" > command
: > log
head -c 64 /proc/sys/kernel/random/boot_id > boot
chgrp "$grp" . command log boot || exit 1
setsid -f sh -c 'start=$(sed "s/.*) //" /proc/$$/stat | cut -d" " -f20); echo "$$ $start" > pid.new; chgrp "$3" pid.new; mv -f pid.new pid; (cd / && exec sh -c "$2") > log 2>&1 < /dev/null 9>&-; echo $? > status.new; chgrp "$3" status.new; mv -f status.new status' deployer-run "$dir" "$line" "$grp" < /dev/null > /dev/null 2>&1 || exit 1
i=0
while [ ! -s pid ]; do
    i=$((i + 1))
    if [ "$i" -gt 400 ]; then echo "deployer: the run in $dir wrote no pid in 20s" >&2; exit 1; fi
    sleep 0.05
done
echo STARTED"#;

/// Run as root already: `sudo -n` inside the command is a no-op (also on
/// a machine without sudo, such as a `local` host run by root).
pub(crate) const AS_ROOT: &str = r#"sudo() { [ "$1" = -n ] && shift; "$@"; }; "#;

/// Start `command` detached on the host, in run directory `dir`, if the
/// host's deploy lock is still `attempt`'s at that moment (else it exits
/// `lock::LOST_STATUS`, see `lock::lost`).
pub fn start_command(attempt: &str, dir: &str, command: &RemoteCommand) -> RemoteCommand {
    let script = crate::hostpath::script(&format!("{}{START}", crate::lock::PROOF));
    start_command_with(&script, attempt, dir, command, INSTALL_LOCK).sudo()
}

/// [`start_command`] with its directories under `top` (trusted as a host
/// trusts `/`, and owned by this user) and the install lock at `lock`,
/// without sudo (tests use a directory of their own).
#[cfg(test)]
fn start_command_in(
    top: &str,
    attempt: &str,
    dir: &str,
    command: &RemoteCommand,
    lock: &str,
) -> RemoteCommand {
    let me = rustix::process::geteuid().as_raw();
    let script = crate::hostpath::script_in(top, me, &format!("{}{START}", crate::lock::PROOF));
    start_command_with(&script, attempt, dir, command, lock)
}

fn start_command_with(
    script: &str,
    attempt: &str,
    dir: &str,
    command: &RemoteCommand,
    lock: &str,
) -> RemoteCommand {
    let line = format!("{AS_ROOT}{command}");
    RemoteCommand::new("sh")
        .args([
            "-c",
            script,
            "deployer-start",
            dir,
            &line,
            lock,
            attempt,
            &RUNS_KEPT.to_string(),
        ])
        .named("detached run")
}

/// The most log a single poll brings back, in bytes: well under what a
/// command's output keeps (`transport::OUTPUT_LIMIT`), so that a poll's
/// own header is never cut off, however much the run printed since the
/// last poll. Older bytes are skipped on the host, and counted.
pub const POLL_CHUNK: u64 = 256 * 1024;

/// The script that reports on a run, as root (its files are `0640`): its
/// status once it has one (read before the log, so a finished run's log is
/// complete); without one, `#gone WHY` when the run can no longer end
/// (the host rebooted since it started, by the boot id it recorded, or
/// its process is gone or the pid now someone else's, by the start time it
/// recorded); then `#log START END` and the log's bytes from `START` to
/// `END` (0-based; `END` is the log's size; `START` is `$2`, or later when
/// more than `$3` bytes are new). While the run has no status, the poll
/// first waits up to `$5` seconds for the install lock `$4`, which the
/// run holds until its status is written: it answers as soon as the run
/// ends, and a long run is looked at every `$5` seconds, not every few
/// hundred milliseconds (each look is a sudo session on the host, and a
/// batch of many hosts shares the host machines' cores with them). The
/// wait is `flock`'s, in the kernel, costing nothing; the lock file is
/// opened for reading only, and only a regular file (its directory is
/// root's, checked when the run started).
const POLL: &str = r##"dir=$1 from=$2 chunk=$3 lock=$4 wait=$5
if [ ! -d "$dir" ]; then echo '#missing'; exit 0; fi
if [ ! -f "$dir/status" ] && [ -f "$lock" ] && [ ! -L "$lock" ]; then
    { flock -s -w "$wait" 8 || :; } 2>/dev/null 8< "$lock"
fi
gone() {
    then=$(head -c 64 "$dir/boot" 2>/dev/null)
    now=$(head -c 64 /proc/sys/kernel/random/boot_id 2>/dev/null)
    if [ -n "$then" ] && [ "$then" != "$now" ]; then
        echo "the host rebooted since the run started (boot id $then then, $now now)"
        return
    fi
    read -r pid start < "$dir/pid" 2>/dev/null || return
    case $pid$start in ''|*[!0-9]*) return ;; esac
    if [ ! -r "/proc/$pid/stat" ]; then
        echo "its process (pid $pid) is gone without writing a status"
        return
    fi
    if [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)" != "$start" ]; then
        echo "its process (pid $pid) is gone without writing a status; the pid is now another process's"
    fi
}
if [ ! -f "$dir/status" ]; then
    why=$(gone)
    if [ -n "$why" ] && [ ! -f "$dir/status" ]; then printf '#gone %s\n' "$why"; fi
fi
if [ -f "$dir/status" ]; then printf '#status %s\n' "$(cat "$dir/status")"; fi
size=$({ wc -c < "$dir/log"; } 2>/dev/null)
size=$((${size:-0} + 0))
start=$from
if [ "$start" -gt "$size" ]; then start=$size; fi
if [ $((size - start)) -gt "$chunk" ]; then start=$((size - chunk)); fi
echo "#log $start $size"
tail -c "+$((start + 1))" "$dir/log" 2>/dev/null | head -c "$((size - start))"
true"##;

/// How long a poll waits on the host for a run to end before it answers,
/// in seconds: also how often a long run's output shows with `-v`.
pub const POLL_WAIT_SECS: u64 = 2;

/// Ask (as root: the run's files are not world-readable) how the run in
/// `dir` is doing, with its log from byte `offset` on (0-based), at most
/// [`POLL_CHUNK`] bytes of it; a run still going is waited for up to
/// [`POLL_WAIT_SECS`] first (see [`POLL`]).
pub fn poll_command(dir: &str, offset: u64) -> RemoteCommand {
    poll_command_in(dir, offset, INSTALL_LOCK, POLL_WAIT_SECS).sudo()
}

fn poll_command_in(dir: &str, offset: u64, lock: &str, wait: u64) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args([
            "-c",
            POLL,
            "deployer-poll",
            dir,
            &offset.to_string(),
            &POLL_CHUNK.to_string(),
            lock,
            &wait.to_string(),
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
        /// Why the run, without a status, can no longer end (it died with
        /// the host or was killed): nothing is left to wait for.
        gone: Option<String>,
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
    let (gone, stdout) = match stdout.strip_prefix("#gone ") {
        Some(after) => {
            let (why, rest) = after.split_once('\n').unwrap_or((after, ""));
            (Some(crate::text::one_line(why.trim())), rest)
        }
        None => (None, stdout),
    };
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
        gone,
        start,
        end,
        log: log.to_string(),
    })
}

/// `dpkg --audit`, as root (it checks dpkg's lock) and in the C locale:
/// what dpkg left unfinished on a host whose run is over without a status
/// (see [`Poll::Seen`]'s `gone`).
pub fn audit_command() -> RemoteCommand {
    RemoteCommand::new("dpkg")
        .arg("--audit")
        .env("LC_ALL", "C")
        .sudo()
        .merge_stderr()
        .named("dpkg --audit")
}

/// What [`audit_command`] said, in one line safe for a terminal and a
/// record.
pub fn describe_audit(out: &crate::transport::Output) -> String {
    let text = out.stdout.trim();
    if text.is_empty() && out.status == 0 {
        "`dpkg --audit` finds nothing unfinished".to_string()
    } else if text.is_empty() {
        format!("`dpkg --audit` failed (exit status {})", out.status)
    } else {
        // dpkg wraps its words over lines: one line of words
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        format!(
            "`dpkg --audit` says: {}",
            crate::text::clipped_line(&words, crate::text::REMOTE_TEXT_MAX)
        )
    }
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
                gone: None,
                start: 3,
                end: 15,
                log: "Setting up x\n".into()
            })
        );
        assert_eq!(
            parse_poll("#status 100\n#log 0 0\n"),
            Ok(Poll::Seen {
                status: Some(100),
                gone: None,
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
                .arg(poll_command_in(&dir_text, offset, "/nonexistent/lock", 2).as_str())
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
                gone: None,
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
                gone: None,
                start: 6,
                end: 6,
                log: String::new()
            }
        );
    }

    /// Issue 23: a poll of a run still going waits on the host for the
    /// install lock the run holds: it answers as soon as the run ends (the
    /// lock let go, the status written), and after its wait when the run
    /// goes on, without a status.
    #[test]
    fn a_poll_waits_on_the_host_for_the_run_to_end() {
        use std::os::unix::process::CommandExt;
        use std::time::{Duration, Instant};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("log"), "").unwrap();
        let lock = tmp.path().join("install.lock");
        std::fs::write(&lock, "").unwrap();
        let (dir_text, lock_text) = (dir.display().to_string(), lock.display().to_string());
        let poll = |wait: u64| {
            let started = Instant::now();
            let out = Command::new("sh")
                .arg("-c")
                .arg(poll_command_in(&dir_text, 0, &lock_text, wait).as_str())
                .output()
                .unwrap();
            let seen = parse_poll(&String::from_utf8_lossy(&out.stdout)).unwrap();
            (seen, started.elapsed())
        };
        // a run holding the lock (it says so in `held` once it has it),
        // which writes its status after `secs`, then lets go
        let held = dir.join("held");
        let run = |secs: &str| {
            let _ = std::fs::remove_file(&held);
            let child = Command::new("flock")
                .arg(&lock)
                .arg("sh")
                .arg("-c")
                .arg(format!("touch held; sleep {secs}; echo 0 > status"))
                .current_dir(&dir)
                .process_group(0)
                .spawn()
                .unwrap();
            // the poll starts only once the run holds the lock
            let deadline = Instant::now() + Duration::from_secs(60);
            while !held.exists() {
                assert!(Instant::now() < deadline, "the run never took the lock");
                std::thread::sleep(Duration::from_millis(10));
            }
            child
        };
        let mut child = run("1");
        let (seen, took) = poll(30);
        child.wait().unwrap();
        assert!(
            matches!(
                seen,
                Poll::Seen {
                    status: Some(0),
                    ..
                }
            ),
            "{seen:?}"
        );
        assert!(
            took < Duration::from_secs(25),
            "answered at the end, not after its wait: {took:?}"
        );
        assert!(took >= Duration::from_millis(500), "it waited: {took:?}");
        // a run that goes on: the poll answers after its wait, no status
        std::fs::remove_file(dir.join("status")).unwrap();
        let mut child = run("4");
        let (seen, took) = poll(1);
        assert!(matches!(seen, Poll::Seen { status: None, .. }), "{seen:?}");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        // the run and what it started, all gone before the directory is
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        child.wait().unwrap();
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
            .arg(poll_command_in(&dir.display().to_string(), 10, "/nonexistent/lock", 2).as_str())
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
                ..
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

    const ATTEMPT: &str = "20261121T073005Z-42-00c0ffee";

    /// Whether this test can do what the start does as root (`chgrp`,
    /// `install -o root`); CI runs as root, so there it always can.
    fn root_or_skip() -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI runs as root"
        );
        eprintln!("skipped: a run's directory is root:adm and needs root");
        false
    }

    /// The deploy lock of `attempt`, held in `tmp/run` as the host's lock
    /// shell holds it, for as long as the connection is kept.
    fn hold_lock(tmp: &std::path::Path, attempt: &str) -> crate::transport::local::LocalConnection {
        use crate::transport::Connection;
        let dir = tmp.join("run");
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap().display().to_string();
        let holder = crate::lock::Holder {
            by: "alice@laptop".into(),
            since: "2026-11-21T07:30:05Z".into(),
            pid: 42,
            action: "deploy".into(),
            package: "fastpath".into(),
            stage: "test".into(),
            version: None,
            attempt: attempt.into(),
            why: None,
        };
        let mut conn = crate::transport::local::LocalConnection::new();
        let first = conn
            .hold(
                &crate::lock::command_in(&dir, &format!("{dir}/install.lock"), &holder, 60),
                std::time::Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(crate::lock::parse(&first), crate::lock::Answer::Locked);
        conn
    }

    /// Start `line` as `attempt`, in run `name` under `tmp/runs`, with the
    /// install lock in `tmp/run`: (run dir, install lock, what it printed).
    fn start_as(
        tmp: &std::path::Path,
        attempt: &str,
        name: &str,
        line: &str,
    ) -> (String, String, std::process::Output) {
        let top = tmp.canonicalize().unwrap().display().to_string();
        let dir = format!("{top}/runs/{name}");
        let lock = format!("{top}/run/install.lock");
        let command = RemoteCommand::trusted(line, "test");
        let out = Command::new("sh")
            .arg("-c")
            .arg(start_command_in(&top, attempt, &dir, &command, &lock).as_str())
            .output()
            .unwrap();
        (dir, lock, out)
    }

    /// A run dir, command line and install lock in a directory of the test.
    fn start_in(tmp: &std::path::Path, line: &str) -> (String, String, std::process::Output) {
        start_as(tmp, ATTEMPT, "a-install", line)
    }

    fn lock_is_free(lock: &str) -> bool {
        Command::new("flock")
            .args(["-n", lock, "true"])
            .status()
            .unwrap()
            .success()
    }

    /// Whether `lock` is free within 10 seconds: the runner writes its
    /// status, then exits, and only then lets the lock go.
    fn freed_in_time(lock: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !lock_is_free(lock) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
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
        if !root_or_skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut held = hold_lock(tmp.path(), ATTEMPT);
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
        assert!(
            freed_in_time(&lock),
            "the install lock is freed once the run ended"
        );
        crate::transport::Connection::release(&mut held);
    }

    /// Regression: the command inherited the install lock's descriptor,
    /// so a daemon started by a maintainer script (on a host without
    /// systemd) held the host's install lock, and refused every later
    /// deploy, for as long as it ran.
    #[test]
    fn a_daemon_started_by_the_run_does_not_keep_the_install_lock() {
        if !root_or_skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut held = hold_lock(tmp.path(), ATTEMPT);
        let pidfile = tmp.path().join("daemon.pid");
        let line = format!("sleep 30 & echo $! > {}", pidfile.display());
        let (dir, lock, out) = start_in(tmp.path(), &line);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("STARTED"),
            "{out:?}"
        );
        wait_for(&std::path::Path::new(&dir).join("status"));
        // the daemon (`sleep 30`) outlives this wait: were it holding the
        // lock, the lock would stay taken past the deadline
        let free = freed_in_time(&lock);
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let _ = Command::new("kill").arg(pid.trim()).status();
        crate::transport::Connection::release(&mut held);
        assert!(free, "the daemon kept the install lock");
    }

    /// Issue 17 item 4: a link planted at the runs directory, or at the
    /// lock directory, is refused before anything is created or started,
    /// and nothing is written where it points (the lock directory is
    /// checked before the deploy lock is proven, the runs directory
    /// after).
    #[test]
    fn a_planted_link_at_the_runs_or_lock_directory_starts_nothing() {
        use std::os::unix::fs::symlink;
        for planted in ["runs", "run"] {
            let tmp = tempfile::tempdir().unwrap();
            let elsewhere = tmp.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            symlink(&elsewhere, tmp.path().join(planted)).unwrap();
            // the runs directory is entered once the deploy lock is proven
            let held = (planted == "runs").then(|| hold_lock(tmp.path(), ATTEMPT));
            let (dir, _, out) = start_in(tmp.path(), "touch /nonexistent-deployer-test");
            if let Some(mut held) = held {
                crate::transport::Connection::release(&mut held);
            }
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

    #[test]
    fn what_dpkg_audit_says_is_one_safe_line() {
        let said = |status, stdout: &str| {
            describe_audit(&crate::transport::Output {
                status,
                stdout: stdout.into(),
                ..Default::default()
            })
        };
        assert_eq!(said(0, ""), "`dpkg --audit` finds nothing unfinished");
        assert_eq!(said(2, ""), "`dpkg --audit` failed (exit status 2)");
        assert_eq!(
            said(0, "The following packages are only half configured\nconfigure them:\n fastpath   \x1b[31mx\n"),
            "`dpkg --audit` says: The following packages are only half configured configure them: fastpath \\x1b[31mx"
        );
    }

    /// What a local shell printed, as a host's answer.
    fn answer(out: &std::process::Output) -> crate::transport::Output {
        crate::transport::Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            ..Default::default()
        }
    }

    /// Issue 17 item 1: the start proves, with the install lock held, that
    /// the deploy lock is the attempt's; a deploy whose lock expired (free)
    /// or was taken by another attempt starts nothing, and says so.
    #[test]
    fn a_start_without_the_deploy_lock_starts_nothing() {
        if !root_or_skip() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("run")).unwrap();
        let (dir, lock, out) = start_in(tmp.path(), "true");
        let free = crate::lock::lost(&answer(&out)).expect("lost: nobody holds it");
        assert!(free.starts_with("nobody"), "{free}");
        assert!(!std::path::Path::new(&dir).exists(), "nothing was started");
        assert!(lock_is_free(&lock), "the install lock is let go");

        let mut other = hold_lock(tmp.path(), "20261121T080000Z-7-ff");
        let (dir, _, out) = start_in(tmp.path(), "true");
        crate::transport::Connection::release(&mut other);
        let who = crate::lock::lost(&answer(&out)).expect("lost to another attempt");
        assert!(who.contains("20261121T080000Z-7-ff"), "{who}");
        assert!(!std::path::Path::new(&dir).exists(), "nothing was started");
    }

    /// Issue 24 item 1: a run's files are 0640 and its directory 0750,
    /// root:adm, as apt keeps its logs; starting a run keeps the newest
    /// [`RUNS_KEPT`] runs and removes older finished ones, never one
    /// without a status.
    #[test]
    fn runs_are_private_to_root_and_adm_and_pruned() {
        use std::os::unix::fs::MetadataExt;
        if !root_or_skip() {
            return;
        }
        let adm = Command::new("getent")
            .args(["group", "adm"])
            .output()
            .unwrap();
        let adm_gid: u32 = String::from_utf8_lossy(&adm.stdout)
            .split(':')
            .nth(2)
            .and_then(|g| g.trim().parse().ok())
            .unwrap_or(0);
        let tmp = tempfile::tempdir().unwrap();
        let mut held = hold_lock(tmp.path(), ATTEMPT);
        // an old run that never wrote a status (it died with its host)
        let dead = tmp.path().join("runs/20200101T000000Z-1-00-install");
        std::fs::create_dir_all(&dead).unwrap();
        let extra = 3;
        let mut last = String::new();
        for i in 0..RUNS_KEPT + extra {
            let name = format!("20261121T0730{i:02}Z-42-00-install");
            let (dir, _, out) = start_as(tmp.path(), ATTEMPT, &name, "echo secret");
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("STARTED"),
                "{out:?}"
            );
            wait_for(&std::path::Path::new(&dir).join("status"));
            last = dir;
        }
        let runs: Vec<String> = std::fs::read_dir(tmp.path().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(runs.len(), RUNS_KEPT + 1, "{runs:?}");
        assert!(dead.exists(), "a run without a status is kept");
        assert!(
            !tmp.path()
                .join("runs/20261121T073000Z-42-00-install")
                .exists(),
            "the oldest finished run is removed"
        );
        let last = std::path::Path::new(&last);
        for (path, mode) in [
            (tmp.path().join("runs"), 0o750),
            (last.to_path_buf(), 0o750),
            (last.join("log"), 0o640),
            (last.join("status"), 0o640),
            (last.join("command"), 0o640),
        ] {
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(meta.mode() & 0o777, mode, "{}", path.display());
            assert_eq!((meta.uid(), meta.gid()), (0, adm_gid), "{}", path.display());
        }
        assert_eq!(
            std::fs::read_to_string(last.join("log")).unwrap(),
            "secret\n"
        );
        crate::transport::Connection::release(&mut held);
    }

    /// Issue 17 item 2: a run without a status whose host rebooted (its
    /// recorded boot id is not the host's), whose process is gone, or
    /// whose pid is now another process's is `#gone`: nothing is left to
    /// wait for. A live run is not.
    #[test]
    fn a_poll_tells_a_run_that_died_from_one_that_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("log"), "Unpacking\n").unwrap();
        let poll = || {
            let out = Command::new("sh")
                .arg("-c")
                .arg(
                    poll_command_in(&dir.display().to_string(), 0, "/nonexistent/lock", 2).as_str(),
                )
                .output()
                .unwrap();
            match parse_poll(&String::from_utf8_lossy(&out.stdout)).unwrap() {
                Poll::Seen {
                    gone, status, log, ..
                } => {
                    assert_eq!(log, "Unpacking\n");
                    (gone, status)
                }
                Poll::Missing => panic!("missing"),
            }
        };
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let stat_start = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let after = &stat[stat.rfind(") ").unwrap() + 2..];
            after.split(' ').nth(19).unwrap().to_string()
        };
        let mut live = Command::new("sleep").arg("30").spawn().unwrap();
        let start = stat_start(live.id());
        std::fs::write(dir.join("boot"), &boot).unwrap();
        std::fs::write(dir.join("pid"), format!("{} {start}\n", live.id())).unwrap();
        assert_eq!(poll(), (None, None), "a live run goes on");

        std::fs::write(dir.join("pid"), format!("{} 1\n", live.id())).unwrap();
        let (gone, _) = poll();
        assert!(
            gone.unwrap().contains("now another process's"),
            "pid reused"
        );

        let _ = live.kill();
        let _ = live.wait();
        std::fs::write(dir.join("pid"), format!("{} {start}\n", live.id())).unwrap();
        let (gone, _) = poll();
        assert!(gone.unwrap().contains("is gone"), "process gone");

        std::fs::write(dir.join("boot"), "00000000-0000-0000-0000-000000000000\n").unwrap();
        let (gone, _) = poll();
        assert!(gone.unwrap().contains("rebooted"), "another boot");

        std::fs::write(dir.join("status"), "0\n").unwrap();
        assert_eq!(
            poll(),
            (None, Some(0)),
            "a run with a status is over, not gone"
        );

        assert_eq!(
            parse_poll("#gone the host rebooted\n#log 0 0\n"),
            Ok(Poll::Seen {
                status: None,
                gone: Some("the host rebooted".into()),
                start: 0,
                end: 0,
                log: String::new()
            })
        );
    }
}
