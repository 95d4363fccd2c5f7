//! The `local` host: the same commands, run by `sh -c` on this machine.
//!
//! When deployer itself runs as root, `sudo -n` is made a no-op for these
//! commands, so that a fresh root shell without sudo can still use `local`.
//! Each command runs in a process group of its own, so that a command that
//! overruns its time is ended with all its children.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use super::{
    end_group_command, io_error, Connection, Exec, Output, Stream, Tail, Ticker, END_GRACE,
    OUTPUT_LIMIT,
};
use crate::command::RemoteCommand;
use crate::error::HostError;

/// A "connection" to this machine.
#[derive(Default)]
pub struct LocalConnection {
    held: Vec<Held>,
}

/// A command started by `hold`, kept fed by its heartbeat.
struct Held {
    child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    heartbeat: Ticker,
}

impl LocalConnection {
    /// A new local connection; nothing is started yet.
    pub fn new() -> Self {
        Self::default()
    }
}

fn shell(command: &RemoteCommand) -> Command {
    let root = rustix::process::geteuid().is_root();
    let script = if root {
        format!("sudo() {{ [ \"$1\" = -n ] && shift; \"$@\"; }}; {command}")
    } else {
        command.to_string()
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    // its own process group (numbered after its PID), to be ended whole
    cmd.process_group(0);
    cmd
}

fn spawn_error(e: std::io::Error) -> HostError {
    io_error(
        &e,
        || "starting `sh`".to_string(),
        |e| HostError::Ssh(format!("cannot start sh: {e}")),
    )
}

/// Wait for `child` to exit until `deadline`; whether it did.
fn wait_until(child: &mut Child, deadline: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// End `child` and its process group: `SIGTERM`, then `SIGKILL` after the
/// grace (as root too for what runs under sudo), then reap it.
fn end(child: &mut Child) {
    end_group(child.id());
    // whatever happened above, the shell itself goes
    let _ = child.kill();
    let _ = child.wait();
}

/// End process group `pgid`: `SIGTERM`, then `SIGKILL` after the grace;
/// returns within about [`END_GRACE`].
fn end_group(pgid: u32) {
    let deadline = Instant::now() + END_GRACE;
    if let Ok(mut ender) = shell(&end_group_command(pgid))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        if !wait_until(&mut ender, deadline) {
            let _ = ender.kill();
            let _ = ender.wait();
        }
    }
}

/// Whether process group `pgid` still has a process we may signal.
fn group_alive(pgid: u32) -> bool {
    i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process_group(pid).is_ok())
}

/// Run a local helper (`notify_command`) as [`Connection::exec`] runs a
/// command, and then end whatever it left running in its process group:
/// nothing a helper starts outlives it, and the caller never waits past
/// `exec.timeout` (and [`END_GRACE`] to end it), whether the helper reads
/// its input or not.
pub fn run_helper(exec: Exec<'_>) -> Result<Output, HostError> {
    run(exec, true)
}

enum Event {
    Chunk(Stream, Vec<u8>),
    Closed,
}

fn pump(mut from: impl Read + Send + 'static, stream: Stream, tx: mpsc::SyncSender<Event>) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Event::Chunk(stream, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Event::Closed);
    });
}

/// [`Connection::exec`] on this machine; with `sweep`, the command's process
/// group is ended after the command itself has.
fn run(mut exec: Exec<'_>, sweep: bool) -> Result<Output, HostError> {
    let deadline = Instant::now() + exec.timeout;
    let phase = format!("running `{}`", exec.command.label());
    let mut child = shell(exec.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = exec.stdin.map(<[u8]>::to_vec).unwrap_or_default();
    thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    // bounded: a command printing faster than it is read waits
    let (tx, rx) = mpsc::sync_channel(16);
    pump(
        child.stdout.take().expect("piped stdout"),
        Stream::Stdout,
        tx.clone(),
    );
    pump(
        child.stderr.take().expect("piped stderr"),
        Stream::Stderr,
        tx,
    );
    let mut out = (Tail::new(OUTPUT_LIMIT), Tail::new(OUTPUT_LIMIT));
    let mut open = 2;
    while open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Event::Chunk(stream, bytes)) => {
                if let Some(cb) = exec.on_output.as_mut() {
                    cb(stream, &bytes);
                }
                match stream {
                    Stream::Stdout => out.0.push(&bytes),
                    Stream::Stderr => out.1.push(&bytes),
                }
            }
            Ok(Event::Closed) => open -= 1,
            Err(_) => {
                end(&mut child);
                return Err(HostError::Timeout {
                    phase,
                    after: exec.timeout,
                });
            }
        }
    }
    // output closed; the shell itself may still be running
    if !wait_until(&mut child, deadline) {
        end(&mut child);
        return Err(HostError::Timeout {
            phase,
            after: exec.timeout,
        });
    }
    let status = child
        .wait()
        .map_err(|e| HostError::Ssh(format!("waiting for sh: {e}")))?;
    if sweep && group_alive(child.id()) {
        // what it left behind still holds the group's number
        end_group(child.id());
    }
    let (stdout, stdout_dropped) = out.0.finish();
    let (stderr, stderr_dropped) = out.1.finish();
    Ok(Output {
        status: status.code().unwrap_or(-1),
        stdout,
        stderr,
        stdout_dropped,
        stderr_dropped,
    })
}

impl Connection for LocalConnection {
    fn exec(&mut self, exec: Exec<'_>) -> Result<Output, HostError> {
        run(exec, false)
    }

    fn hold_with(
        &mut self,
        command: &RemoteCommand,
        timeout: Duration,
        heartbeat: Duration,
    ) -> Result<String, HostError> {
        let mut child = shell(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_error)?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // keep reading: a command that prints more must not get SIGPIPE
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let Ok(line) = rx.recv_timeout(timeout) else {
            end(&mut child);
            return Err(HostError::Timeout {
                phase: format!("starting `{}`", command.label()),
                after: timeout,
            });
        };
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let fed = Arc::clone(&stdin);
        let heartbeat = Ticker::start(heartbeat, move || {
            let mut stdin = fed.lock().unwrap_or_else(PoisonError::into_inner);
            stdin
                .as_mut()
                .is_some_and(|s| s.write_all(b"\n").and_then(|()| s.flush()).is_ok())
        });
        self.held.push(Held {
            child,
            stdin,
            heartbeat,
        });
        Ok(line.trim_end().to_string())
    }

    fn release(&mut self) {
        for mut held in self.held.drain(..) {
            held.heartbeat.stop();
            // end of file on its stdin: the command's signal to finish
            drop(
                held.stdin
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
            if !wait_until(&mut held.child, Instant::now() + END_GRACE) {
                end(&mut held.child);
            }
        }
    }
}

impl Drop for LocalConnection {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peak resident memory of this process so far, in KiB (`VmHWM`).
    fn max_rss_kib() -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/self/status")
    }

    /// A host that prints hundreds of megabytes must not make deployer
    /// hold them: the streaming callback sees every byte, the result keeps
    /// the last MiB and says how much came before.
    #[test]
    fn a_flood_of_output_keeps_only_its_tail() {
        const FLOOD: u64 = 300_000_000;
        let before = max_rss_kib();
        let cmd = RemoteCommand::trusted(
            "head -c 300000000 /dev/zero | tr '\\0' x; echo done >&2",
            "flood",
        );
        let mut seen = 0u64;
        let mut sink = |stream: Stream, bytes: &[u8]| {
            if stream == Stream::Stdout {
                seen += bytes.len() as u64;
            }
        };
        let out = LocalConnection::new()
            .exec(Exec {
                command: &cmd,
                timeout: Duration::from_secs(300),
                stdin: None,
                on_output: Some(&mut sink),
            })
            .expect("the flood runs");
        assert!(out.success());
        assert_eq!(seen, FLOOD);
        assert_eq!(out.stdout.len(), OUTPUT_LIMIT);
        assert!(out.stdout.bytes().all(|b| b == b'x'));
        assert_eq!(out.stdout_dropped, FLOOD - OUTPUT_LIMIT as u64);
        assert_eq!((out.stderr.as_str(), out.stderr_dropped), ("done\n", 0));
        let grown_mib = (max_rss_kib() - before) / 1024;
        assert!(grown_mib < 64, "memory grew by {grown_mib} MiB");
    }

    /// Processes of this machine whose command line contains `needle`.
    fn running(needle: &str) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| {
                let line = String::from_utf8_lossy(c).replace('\0', " ");
                line.contains(needle)
            })
            .count()
    }

    /// Poll `check` every 20 ms until it holds or `within` has passed.
    fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if check() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_timed_out_command_is_ended_with_its_children() {
        let mut conn = LocalConnection::new();
        let cmd = RemoteCommand::trusted("sleep 3117 & sleep 3118", "sleepers");
        let started = Instant::now();
        let e = conn
            .exec(Exec::new(&cmd, Duration::from_millis(500)))
            .unwrap_err();
        assert!(matches!(e, HostError::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_millis(500) + END_GRACE);
        assert!(
            eventually(Duration::from_secs(2), || running("sleep 311") == 0),
            "a sleep outlived its timed-out command"
        );
        assert!(conn.is_open());
        let out = conn
            .exec(Exec::new(
                &RemoteCommand::new("true"),
                Duration::from_secs(5),
            ))
            .unwrap();
        assert!(out.success());
    }

    /// A held command is sent a newline every heartbeat until released:
    /// one that gives up after 1 s without input stays alive for 3 s, and
    /// goes once released.
    #[test]
    fn a_held_command_is_kept_fed_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let beats = dir.path().join("beats");
        let script =
            "echo ready; while read -t 1 l; do echo beat >> \"$1\"; done; echo gone >> \"$1\"";
        let cmd =
            RemoteCommand::new("bash").args(["-c", script, "beater", beats.to_str().unwrap()]);
        let mut conn = LocalConnection::new();
        let line = conn
            .hold_with(&cmd, Duration::from_secs(5), Duration::from_millis(200))
            .unwrap();
        assert_eq!(line, "ready");
        let read = || std::fs::read_to_string(&beats).unwrap_or_default();
        thread::sleep(Duration::from_secs(3));
        let text = read();
        assert!(text.matches("beat").count() >= 5, "{text:?}");
        assert!(!text.contains("gone"), "it gave up while held: {text:?}");
        conn.release();
        assert!(
            eventually(Duration::from_secs(2), || read().contains("gone")),
            "not ended by the release: {:?}",
            read()
        );
    }
}
