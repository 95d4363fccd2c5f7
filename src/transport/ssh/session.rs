//! SSH connections through the `ssh2` crate (libssh2): connect with a
//! deadline, verify the host key against known_hosts, authenticate with the
//! agent then key files, and run commands on channels of one session.
//!
//! Commands run in non-blocking mode with a poll loop, so that a deadline is
//! honoured even when a host stops answering mid-command, and stdout and
//! stderr are read together (a full stderr window cannot stall stdout).
//! Each command first names its process group on stderr (taken out before
//! anyone sees it), so that one that overruns its time is ended on the host
//! through a second channel, and the session stays usable.
//!
//! Besides the caller's thread, a keepalive thread and one heartbeat thread
//! per held command use the session: libssh2 serializes every call on the
//! session's lock, and each thread retries a call that would block.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, Session};

use super::ext::is_eagain;
use super::keepalive::{keepalive_interval, server_alive_limit, too_silent};
use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::transport::{
    end_group_command, lock, Connection, Exec, Output, SshTarget, Stream, Tail, Ticker, END_GRACE,
    OUTPUT_LIMIT,
};

/// An authenticated SSH session to one host.
pub struct SshConnection {
    session: Session,
    held: Vec<Held>,
    /// Why the session can no longer be used, once the host stopped
    /// answering; shared with the keepalive thread.
    lost: Arc<Mutex<Option<String>>>,
    keepalive: Option<Ticker>,
}

/// A command started by `hold`, kept fed by its heartbeat.
pub(super) struct Held {
    channel: Arc<Mutex<Channel>>,
    pgid: Option<u32>,
    heartbeat: Ticker,
}

/// Why waiting on the host stopped.
#[derive(Debug)]
pub(super) enum Stop {
    /// The deadline passed.
    Expired,
    /// The session failed; libssh2's words.
    Failed(String),
}

/// How much of a held command's first line is kept: its answer (a lock's
/// holder) is a few KiB at most, and a host must not fill memory with it.
pub(super) const HOLD_LINE_MAX: usize = 64 * 1024;

/// The first line every command prints on stderr: the process group the
/// host's sshd made for it (sshd starts each command in a new session, so
/// the login shell's PID is its process group), so that a command that
/// overruns its time can be ended, children and all.
pub(super) const PGID_MARK: &str = "deployer-pgid=";

/// `command` as sent to the host: announce the process group, then run.
pub(super) fn announced(command: &RemoteCommand) -> String {
    format!("printf '{PGID_MARK}%s\\n' \"$$\" >&2; {}", command.as_str())
}

/// Takes the [`PGID_MARK`] line out of a stderr stream and passes the rest
/// on. Lines before it (a login script's chatter) pass through; a stream
/// that has not shown it within its first 4 KiB is given up on.
#[derive(Debug, Default)]
pub(super) struct PgidFilter {
    pending: Vec<u8>,
    done: bool,
    pgid: Option<u32>,
}

impl PgidFilter {
    const SEARCH_LIMIT: usize = 4096;

    /// Feed a chunk of stderr; what is the command's own goes to `out`.
    fn feed(&mut self, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        if self.done {
            out(bytes);
            return;
        }
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line = &self.pending[..end];
            let pgid = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.strip_prefix(PGID_MARK))
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&n| n > 1);
            if let Some(pgid) = pgid {
                self.pgid = Some(pgid);
                self.done = true;
                let rest = self.pending.split_off(end + 1);
                self.pending.clear();
                if !rest.is_empty() {
                    out(&rest);
                }
                return;
            }
            out(&self.pending[..=end]);
            self.pending.drain(..=end);
        }
        if self.pending.len() > Self::SEARCH_LIMIT {
            self.finish(out);
        }
    }

    /// The stream ended: pass on what is still held back.
    fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        self.done = true;
        if !self.pending.is_empty() {
            out(&std::mem::take(&mut self.pending));
        }
    }
}

impl SshConnection {
    /// The connection over `session`, just logged in to `target` (see
    /// [`super::login::login`]), its keepalives started as `target` says.
    pub(in crate::transport) fn logged_in(session: Session, target: &SshTarget) -> SshConnection {
        let mut conn = SshConnection {
            session,
            held: Vec::new(),
            lost: Arc::new(Mutex::new(None)),
            keepalive: None,
        };
        conn.start_keepalive(keepalive_interval(target), server_alive_limit(target));
        conn
    }

    /// Start the keepalive thread: libssh2 sends a keepalive when one is
    /// due, also while no command runs; a send that fails (the socket is
    /// broken) marks the connection lost.
    fn start_keepalive(&mut self, every: Option<Duration>, silence: Option<Duration>) {
        let Some(every) = every else {
            return;
        };
        let secs = u32::try_from(every.as_secs()).unwrap_or(u32::MAX).max(1);
        self.session.set_keepalive(true, secs);
        let session = self.session.clone();
        let lost = Arc::clone(&self.lost);
        let check = (every / 3).max(Duration::from_secs(1));
        self.keepalive = Some(Ticker::start(check, move || {
            match session.keepalive_send() {
                Ok(_) => {}
                Err(e) if is_eagain(&e) => {}
                Err(e) => {
                    lose(&lost, format!("a keepalive failed: {}", e.message()));
                    return false;
                }
            }
            match too_silent(session.as_raw_fd(), silence) {
                Some(why) => {
                    lose(&lost, why);
                    false
                }
                None => true,
            }
        }));
    }

    /// Why the connection is lost, if it is.
    fn lost_reason(&self) -> Option<String> {
        lock(&self.lost).clone()
    }

    /// Mark the connection lost (the first reason stays).
    fn lose(&self, reason: &str) {
        lose(&self.lost, reason.to_string());
    }

    /// Wait until the socket is ready in the direction libssh2 is blocked
    /// on (at most 200 ms: other threads share the session); false once
    /// `deadline` has passed.
    fn wait(&self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let events = match self.session.block_directions() {
            BlockDirections::Outbound => libc::POLLOUT,
            BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
            _ => libc::POLLIN,
        };
        let mut fds = [crate::sys::pollfd(self.session.as_raw_fd(), events)];
        let wait = deadline.duration_since(now).min(Duration::from_millis(200));
        crate::sys::poll(&mut fds, wait.max(Duration::from_millis(1)));
        true
    }

    /// Retry a libssh2 call that may say "would block" until it completes.
    fn retry<T>(
        &self,
        deadline: Instant,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, Stop> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if is_eagain(&e) => {
                    if !self.wait(deadline) {
                        return Err(Stop::Expired);
                    }
                }
                Err(e) => return Err(Stop::Failed(e.message().to_string())),
            }
        }
    }

    /// Open a channel and start `line` on it.
    fn start(&self, line: &str, deadline: Instant) -> Result<Channel, Stop> {
        let mut channel = self.retry(deadline, || self.session.channel_session())?;
        self.retry(deadline, || channel.exec(line))?;
        Ok(channel)
    }

    /// Write `stdin` then end of file, and read both output streams into
    /// `sink` until the command is done and its channel closed; return its
    /// exit status.
    fn drive(
        &self,
        channel: &mut Channel,
        stdin: Option<&[u8]>,
        deadline: Instant,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<i32, Stop> {
        let mut to_write = stdin.unwrap_or_default();
        let mut eof_sent = false;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // a command that never stops talking must still meet its deadline
            if Instant::now() >= deadline {
                return Err(Stop::Expired);
            }
            let mut progressed = false;
            for stream in [Stream::Stdout, Stream::Stderr] {
                let read = match stream {
                    Stream::Stdout => channel.read(&mut buf),
                    Stream::Stderr => channel.stderr().read(&mut buf),
                };
                match read {
                    Ok(0) => {}
                    Ok(n) => {
                        progressed = true;
                        sink(stream, &buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(Stop::Failed(e.to_string())),
                }
            }
            // Written after reading, so that a command busy writing its
            // output is not waited on, and the socket is polled for what
            // the write needs. A write refused because the command is gone
            // (it exited without reading everything) ends the writing; a
            // broken session shows in the reads.
            if !eof_sent && channel.eof() && channel.wait_close().is_ok() {
                // the host closed the channel: the command ended without
                // reading all its input, which no one will read now
                to_write = &[];
                eof_sent = true;
            }
            if !eof_sent {
                if !to_write.is_empty() {
                    match channel.write(to_write) {
                        Ok(n) => {
                            to_write = &to_write[n..];
                            progressed |= n > 0;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => {
                            to_write = &[];
                            eof_sent = true;
                        }
                    }
                }
                if to_write.is_empty() && !eof_sent {
                    match channel.send_eof() {
                        Ok(()) => {
                            eof_sent = true;
                            progressed = true;
                        }
                        Err(e) if is_eagain(&e) => {}
                        Err(_) => eof_sent = true,
                    }
                }
            }
            if !progressed {
                if eof_sent && channel.eof() {
                    break;
                }
                if !self.wait(deadline) {
                    return Err(Stop::Expired);
                }
            }
        }
        self.retry(deadline, || channel.wait_close())?;
        // libssh2 reports status 0 for a command killed by a signal: a
        // crashed health check must not count as a passed one.
        let killed = channel
            .exit_signal()
            .map(|s| s.exit_signal.is_some())
            .unwrap_or(false);
        Ok(if killed {
            -1
        } else {
            channel.exit_status().unwrap_or(-1)
        })
    }

    /// End a command that overran its time: its process group on the host
    /// (through a second channel), then its channel. `Ok` when both went
    /// by `deadline`; else why not, and the connection is lost.
    fn end(
        &self,
        channel: &mut Channel,
        pgid: Option<u32>,
        deadline: Instant,
    ) -> Result<(), String> {
        let Some(pgid) = pgid else {
            return Err("the host never said which processes to end".to_string());
        };
        let killer = end_group_command(pgid);
        let mut ender = self
            .start(killer.as_str(), deadline)
            .map_err(|s| describe_stop(s, "the host did not answer when asked to end it"))?;
        self.drive(&mut ender, None, deadline, &mut |_, _| {})
            .map_err(|s| describe_stop(s, "the host did not finish ending it"))?;
        // closing waits for the host to close its side, which it does once
        // the command's processes are gone
        self.retry(deadline, || channel.close())
            .map_err(|s| describe_stop(s, "the command's channel did not close"))
    }

    /// Run `command` as [`Connection::exec`] does, the connection known usable.
    fn exec_open(&self, exec: &mut Exec<'_>) -> Result<Output, HostError> {
        let limit = exec.timeout;
        let deadline = Instant::now() + limit;
        let phase = format!("running `{}`", exec.command.label());
        let lost = |why: String| HostError::Disconnected(format!("{phase}: {why}"));
        // a host slow to open a channel is given the grace too, so that
        // only one that does not answer at all is lost
        let mut channel = self
            .start(&announced(exec.command), deadline + END_GRACE)
            .map_err(|s| lost(describe_stop(s, &no_answer(limit))))?;
        let mut out = (Tail::new(OUTPUT_LIMIT), Tail::new(OUTPUT_LIMIT));
        let mut filter = PgidFilter::default();
        let on_output = &mut exec.on_output;
        let mut deliver = |stream: Stream, bytes: &[u8]| {
            if let Some(cb) = on_output.as_mut() {
                cb(stream, bytes);
            }
            match stream {
                Stream::Stdout => out.0.push(bytes),
                Stream::Stderr => out.1.push(bytes),
            }
        };
        let driven =
            self.drive(
                &mut channel,
                exec.stdin,
                deadline,
                &mut |stream, bytes| match stream {
                    Stream::Stdout => deliver(stream, bytes),
                    Stream::Stderr => filter.feed(bytes, &mut |b| deliver(Stream::Stderr, b)),
                },
            );
        filter.finish(&mut |b| deliver(Stream::Stderr, b));
        let status = match driven {
            Ok(status) => status,
            Err(Stop::Failed(why)) => return Err(lost(why)),
            Err(Stop::Expired) => {
                let ended = self.end(&mut channel, filter.pgid, deadline + END_GRACE);
                return Err(overran(ended, phase, limit, "ran past its"));
            }
        };
        let (stdout, stdout_dropped) = out.0.finish();
        let (stderr, stderr_dropped) = out.1.finish();
        Ok(Output {
            status,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
        })
    }

    /// Start `command` and read its first line, the connection known usable.
    fn hold_open(
        &mut self,
        command: &RemoteCommand,
        timeout: Duration,
        heartbeat: Duration,
    ) -> Result<String, HostError> {
        let deadline = Instant::now() + timeout;
        let phase = format!("starting `{}`", command.label());
        let lost = |why: String| HostError::Disconnected(format!("{phase}: {why}"));
        let mut channel = self
            .start(&announced(command), deadline + END_GRACE)
            .map_err(|s| lost(describe_stop(s, &no_answer(timeout))))?;
        let mut filter = PgidFilter::default();
        let mut line = Vec::new();
        let mut buf = [0u8; 1024];
        let read = loop {
            if Instant::now() >= deadline {
                break Err(Stop::Expired);
            }
            let mut progressed = false;
            // stderr only for the process group: the rest is not needed
            match channel.stderr().read(&mut buf) {
                Ok(n) if n > 0 => {
                    progressed = true;
                    filter.feed(&buf[..n], &mut |_| {});
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => break Err(Stop::Failed(e.to_string())),
            }
            // one byte at a time: what follows the line is the command's;
            // a line longer than the limit keeps only its start
            match channel.read(&mut buf[..1]) {
                Ok(0) => {}
                Ok(_) if buf[0] == b'\n' => break Ok(()),
                Ok(_) => {
                    progressed = true;
                    if line.len() < HOLD_LINE_MAX {
                        line.push(buf[0]);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => break Err(Stop::Failed(e.to_string())),
            }
            if !progressed {
                if channel.eof() {
                    break Ok(());
                }
                if !self.wait(deadline) {
                    break Err(Stop::Expired);
                }
            }
        };
        match read {
            Ok(()) => {}
            Err(Stop::Failed(why)) => return Err(lost(why)),
            Err(Stop::Expired) => {
                let ended = self.end(&mut channel, filter.pgid, deadline + END_GRACE);
                return Err(overran(ended, phase, timeout, "gave no answer within"));
            }
        }
        let channel = Arc::new(Mutex::new(channel));
        let fed = Arc::clone(&channel);
        let beat = Ticker::start(heartbeat, move || feed(&fed));
        self.held.push(Held {
            channel,
            pgid: filter.pgid,
            heartbeat: beat,
        });
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Close a held command's stdin and wait for it to end; end it if it
    /// does not within [`END_GRACE`].
    fn release_one(&self, mut held: Held) {
        held.heartbeat.stop();
        let channel = Arc::clone(&held.channel);
        let mut channel = lock(&channel);
        let deadline = Instant::now() + END_GRACE;
        // end of file on stdin, then whatever it still prints, then the close
        let ended = self.drive(&mut channel, None, deadline, &mut |_, _| {});
        if let Err(Stop::Expired) = ended {
            if let Err(why) = self.end(&mut channel, held.pgid, Instant::now() + END_GRACE) {
                self.lose(&format!("releasing a held command: {why}"));
            }
        } else if let Err(Stop::Failed(why)) = ended {
            self.lose(&format!("releasing a held command: {why}"));
        }
    }
}

/// Send one newline to a held command; false once that is no longer
/// possible. A write the session cannot take now is retried for a while:
/// libssh2 must finish sending a packet it started before any other.
pub(super) fn feed(channel: &Mutex<Channel>) -> bool {
    let give_up = Instant::now() + END_GRACE;
    loop {
        match lock(channel).write(b"\n") {
            Ok(1) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        if Instant::now() >= give_up {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lock `m`, whatever a panicking thread left in it.
/// Record why a connection is lost (the first reason stays).
pub(super) fn lose(lost: &Mutex<Option<String>>, reason: String) {
    lock(lost).get_or_insert(reason);
}

/// What a command that overran `limit` during `phase` comes to, once
/// [`SshConnection::end`] said `ended`: a timeout of that command, the
/// session still usable; or, when it could not be ended, a lost host
/// ("it {overrun} {limit}s, then ...").
pub(super) fn overran(
    ended: Result<(), String>,
    phase: String,
    limit: Duration,
    overrun: &str,
) -> HostError {
    match ended {
        Ok(()) => HostError::Timeout {
            phase,
            after: limit,
        },
        Err(why) => HostError::Disconnected(format!(
            "{phase}: it {overrun} {}s, then {why}",
            limit.as_secs_f32()
        )),
    }
}

/// The words for a host that did not start a command given `limit`.
pub(super) fn no_answer(limit: Duration) -> String {
    format!(
        "the host did not answer within {}s",
        (limit + END_GRACE).as_secs_f32()
    )
}

/// Words for a [`Stop`]: `expired` when the deadline passed.
pub(super) fn describe_stop(stop: Stop, expired: &str) -> String {
    match stop {
        Stop::Expired => expired.to_string(),
        Stop::Failed(why) => why,
    }
}

impl SshConnection {
    /// Run `f` (`doing` names it) only if the connection is not lost, and
    /// mark it lost when `f` finds the host gone.
    fn unless_lost<T>(
        &mut self,
        doing: impl FnOnce() -> String,
        f: impl FnOnce(&mut Self) -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        if let Some(why) = self.lost_reason() {
            return Err(HostError::Disconnected(format!(
                "{}: the connection was lost earlier ({why})",
                doing()
            )));
        }
        let result = f(self);
        if let Err(HostError::Disconnected(why)) = &result {
            self.lose(why);
        }
        result
    }
}

impl Connection for SshConnection {
    fn exec(&mut self, mut exec: Exec<'_>) -> Result<Output, HostError> {
        let label = exec.command.label().to_string();
        self.unless_lost(
            || format!("running `{label}`"),
            |conn| conn.exec_open(&mut exec),
        )
    }

    fn hold_with(
        &mut self,
        command: &RemoteCommand,
        timeout: Duration,
        heartbeat: Duration,
    ) -> Result<String, HostError> {
        self.unless_lost(
            || format!("starting `{}`", command.label()),
            |conn| conn.hold_open(command, timeout, heartbeat),
        )
    }

    fn release(&mut self) {
        for held in std::mem::take(&mut self.held) {
            if self.lost_reason().is_some() {
                // nothing to wait for: the host does not answer
                drop(held);
                continue;
            }
            self.release_one(held);
        }
    }

    fn is_open(&self) -> bool {
        self.lost_reason().is_none()
    }
}

impl Drop for SshConnection {
    fn drop(&mut self) {
        self.release();
        if let Some(mut k) = self.keepalive.take() {
            k.stop();
        }
        if self.lost_reason().is_none() {
            let _ = self.session.disconnect(None, "deployer done", None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the filter passes on, and the process group it found, when
    /// fed `chunks`.
    fn filtered(chunks: &[&str]) -> (String, Option<u32>) {
        let mut f = PgidFilter::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c.as_bytes(), &mut |b| out.extend_from_slice(b));
        }
        f.finish(&mut |b| out.extend_from_slice(b));
        (String::from_utf8(out).unwrap(), f.pgid)
    }

    #[test]
    fn process_group_line_is_taken_out_of_stderr() {
        let cases: [(&[&str], &str, Option<u32>); 7] = [
            (&["deployer-pgid=41\n"], "", Some(41)),
            (&["deployer-pgid=41\nE: oops\n"], "E: oops\n", Some(41)),
            // split anywhere, even inside the number
            (
                &["deploy", "er-pgid=4", "1\nE: ", "oops"],
                "E: oops",
                Some(41),
            ),
            // a login script's chatter first
            (&["motd\ndeployer-pgid=7\nE\n"], "motd\nE\n", Some(7)),
            // only the first mark counts; later ones are the command's
            (
                &["deployer-pgid=7\ndeployer-pgid=9\n"],
                "deployer-pgid=9\n",
                Some(7),
            ),
            // no mark: everything passes, nothing to end
            (&["E: oops"], "E: oops", None),
            // never process group 0 or 1 (kill -- -1 means every process)
            (&["deployer-pgid=1\n"], "deployer-pgid=1\n", None),
        ];
        for (chunks, passed, pgid) in cases {
            assert_eq!(filtered(chunks), (passed.to_string(), pgid), "{chunks:?}");
        }
    }

    #[test]
    fn process_group_search_gives_up_on_a_flood() {
        let flood = "x".repeat(10_000);
        let (passed, pgid) = filtered(&[&flood, "\ndeployer-pgid=5\n"]);
        assert_eq!(pgid, None);
        assert_eq!(passed, format!("{flood}\ndeployer-pgid=5\n"));
    }

    #[test]
    fn commands_announce_their_process_group() {
        let line = announced(&RemoteCommand::new("true"));
        let out = std::process::Command::new("setsid")
            .args(["sh", "-c", &line])
            .output()
            .unwrap();
        let (passed, pgid) = filtered(&[&String::from_utf8_lossy(&out.stderr)]);
        assert_eq!(passed, "");
        assert!(pgid.is_some_and(|p| p > 1), "{:?}", out);
    }
}
