//! The `local` host: the same commands, run by `sh -c` on this machine.
//!
//! When deployer itself runs as root, `sudo -n` is made a no-op for these
//! commands, so that a fresh root shell without sudo can still use `local`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{io_error, Connection, Exec, Output, Stream, Tail, OUTPUT_LIMIT};
use crate::command::RemoteCommand;
use crate::error::HostError;

/// A "connection" to this machine.
#[derive(Default)]
pub struct LocalConnection {
    held: Vec<(Child, Option<ChildStdin>)>,
}

impl LocalConnection {
    /// A new local connection; nothing is started yet.
    pub fn new() -> Self {
        Self::default()
    }
}

fn shell(command: &RemoteCommand) -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let script = if root {
        format!("sudo() {{ [ \"$1\" = -n ] && shift; \"$@\"; }}; {command}")
    } else {
        command.to_string()
    };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    cmd
}

fn spawn_error(e: std::io::Error) -> HostError {
    io_error(
        &e,
        || "starting `sh`".to_string(),
        |e| HostError::Ssh(format!("cannot start sh: {e}")),
    )
}

enum Event {
    Chunk(Stream, Vec<u8>),
    Closed,
}

fn pump(mut from: impl Read + Send + 'static, stream: Stream, tx: mpsc::Sender<Event>) {
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

impl Connection for LocalConnection {
    fn exec(&mut self, mut exec: Exec<'_>) -> Result<Output, HostError> {
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
        let (tx, rx) = mpsc::channel();
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
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HostError::Timeout {
                        phase,
                        after: exec.timeout,
                    });
                }
            }
        }
        let status = child
            .wait()
            .map_err(|e| HostError::Ssh(format!("waiting for sh: {e}")))?;
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

    fn hold(&mut self, command: &RemoteCommand, timeout: Duration) -> Result<String, HostError> {
        let mut child = shell(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_error)?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let stdin = child.stdin.take();
        match rx.recv_timeout(timeout) {
            Ok(line) => {
                self.held.push((child, stdin));
                Ok(line.trim_end().to_string())
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(HostError::Timeout {
                    phase: format!("starting `{}`", command.label()),
                    after: timeout,
                })
            }
        }
    }

    fn release(&mut self) {
        for (mut child, stdin) in self.held.drain(..) {
            drop(stdin);
            let _ = child.wait();
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

    /// Peak resident memory of this process so far, in KiB.
    fn max_rss_kib() -> i64 {
        // SAFETY: getrusage fills the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        usage.ru_maxrss
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
}
