//! How commands reach a host: the [`Connection`] trait, and the two ways to
//! get one: [`ssh`] (the `ssh2` crate) and [`local`] (this machine, for a
//! host written as `local`).
//!
//! A connection is opened once per host per run and can run several
//! commands, feed them input (uploads) and keep one open (a held lock).
//! This is the I/O edge, with two pure helpers: `target` (where and how
//! to reach each host) and [`identity`] (which keys to offer); what the
//! commands mean is decided elsewhere. The scripted stand-in for unit
//! tests is `fleet::fake`, beside the [`crate::fleet::Connector`] it fakes.

pub mod identity;
pub mod jump;
mod known_cache;
pub mod local;
mod open;
mod reach;
pub mod ssh;
mod target;

use std::time::Duration;

use crate::command::RemoteCommand;
use crate::error::HostError;

pub use known_cache::KnownHostsCache;
pub use open::{probe_host_key, HostCheck};
pub use reach::{Reach, Starts, Turn};
pub use target::{
    resolve_targets, HostKeyPolicy, LocalContext, Server, SshTarget, Target, TargetKind,
};

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How much of each output stream a finished command keeps: its last MiB.
/// A host printing hundreds of megabytes must not make deployer hold them;
/// the end of the output is where a failure explains itself.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// What a finished command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status (`-1` when the host reported none, e.g. killed by a signal).
    pub status: i32,
    /// The last [`OUTPUT_LIMIT`] bytes written to stdout, lossily decoded.
    pub stdout: String,
    /// The last [`OUTPUT_LIMIT`] bytes written to stderr, lossily decoded.
    pub stderr: String,
    /// How many bytes of stdout came before what [`Output::stdout`] keeps.
    pub stdout_dropped: u64,
    /// How many bytes of stderr came before what [`Output::stderr`] keeps.
    pub stderr_dropped: u64,
}

impl Output {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// How many bytes of `stream` were dropped (only its tail is kept).
    pub fn dropped(&self, stream: Stream) -> u64 {
        match stream {
            Stream::Stdout => self.stdout_dropped,
            Stream::Stderr => self.stderr_dropped,
        }
    }

    /// `… N earlier bytes dropped`, to print before a stream's text when
    /// only its tail was kept; `None` when it was kept whole.
    pub fn dropped_note(&self, stream: Stream) -> Option<String> {
        match self.dropped(stream) {
            0 => None,
            n => Some(format!("… {n} earlier bytes dropped")),
        }
    }

    /// stdout then stderr, as one text for reports, followed by a line per
    /// stream saying how much of it was dropped (if any), so that the last
    /// lines shown still say it.
    pub fn combined(&self) -> String {
        let mut text = format!("{}{}", self.stdout, self.stderr);
        for (stream, name) in [(Stream::Stdout, "stdout"), (Stream::Stderr, "stderr")] {
            if let Some(note) = self.dropped_note(stream) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("[deployer: {note} from {name}]\n"));
            }
        }
        text
    }
}

/// The last `limit` bytes of a stream, and how many came before them.
/// Memory stays under twice the limit whatever the stream's length.
#[derive(Debug)]
pub(crate) struct Tail {
    buf: Vec<u8>,
    dropped: u64,
    limit: usize,
}

impl Tail {
    /// An empty tail keeping at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Tail {
            buf: Vec::new(),
            dropped: 0,
            limit,
        }
    }

    /// Append `bytes`, forgetting the oldest ones beyond the limit.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if bytes.len() >= self.limit {
            self.dropped += (self.buf.len() + bytes.len() - self.limit) as u64;
            self.buf.clear();
            self.buf
                .extend_from_slice(&bytes[bytes.len() - self.limit..]);
            return;
        }
        self.buf.extend_from_slice(bytes);
        // trim in batches, so that each byte is moved at most once or twice
        if self.buf.len() > 2 * self.limit {
            self.cut_to_limit();
        }
    }

    fn cut_to_limit(&mut self) {
        let excess = self.buf.len().saturating_sub(self.limit);
        self.buf.drain(..excess);
        self.dropped += excess as u64;
    }

    /// The kept text (lossily decoded, not starting inside a character)
    /// and the number of bytes dropped before it.
    pub(crate) fn finish(mut self) -> (String, u64) {
        self.cut_to_limit();
        let mut start = 0;
        if self.dropped > 0 {
            // the cut may have split a UTF-8 character: skip its remains
            while start < 3 && self.buf.get(start).is_some_and(|b| b & 0xc0 == 0x80) {
                start += 1;
            }
        }
        let text = String::from_utf8_lossy(&self.buf[start..]).into_owned();
        (text, self.dropped + start as u64)
    }
}

/// Receives each chunk of a command's output as it arrives.
pub type OutputSink<'a> = &'a mut dyn FnMut(Stream, &[u8]);

/// How to run one command.
pub struct Exec<'a> {
    /// The command line.
    pub command: &'a RemoteCommand,
    /// Give up (and report a timeout) after this long.
    pub timeout: Duration,
    /// Bytes written to the command's stdin, then end of file.
    pub stdin: Option<&'a [u8]>,
    /// Called with each chunk of output as it arrives.
    pub on_output: Option<OutputSink<'a>>,
}

impl<'a> Exec<'a> {
    /// Run `command`, collecting its output, within `timeout`.
    pub fn new(command: &'a RemoteCommand, timeout: Duration) -> Self {
        Exec {
            command,
            timeout,
            stdin: None,
            on_output: None,
        }
    }
}

/// How long a timed-out command is given, after `SIGTERM`, before its
/// process group gets `SIGKILL`.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long ending a timed-out command may take in all (signals, the
/// channel closing) before the host is declared lost: a command given
/// `timeout` returns within about `timeout + END_GRACE`, whatever the host.
pub const END_GRACE: Duration = Duration::from_secs(5);

/// How often a held command is sent a newline on its stdin (see
/// [`Connection::hold`]).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// How often an SSH session sends a keepalive, busy or idle.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// An open line to one host.
///
/// A command that overruns its timeout is ended on the host — its whole
/// process group, `SIGTERM` then `SIGKILL` after [`KILL_GRACE`], under sudo
/// too — and `exec` returns [`HostError::Timeout`]; the connection stays
/// usable. When the host itself stops answering, `exec` returns
/// [`HostError::Disconnected`] within about `timeout + END_GRACE`, and the
/// connection is closed for good ([`Connection::is_open`] is false).
pub trait Connection: Send {
    /// Run a command to completion (or until its timeout).
    fn exec(&mut self, exec: Exec<'_>) -> Result<Output, HostError>;

    /// Start `command` and keep it running for as long as this connection
    /// lives, returning the first line it prints on stdout. Used for locks:
    /// the remote side holds the lock while its stdin stays open, so the lock
    /// goes away by itself when deployer exits or the connection drops.
    /// While held, the command is sent a newline every `heartbeat`.
    fn hold_with(
        &mut self,
        command: &RemoteCommand,
        timeout: Duration,
        heartbeat: Duration,
    ) -> Result<String, HostError>;

    /// [`Connection::hold_with`] with a newline every [`HEARTBEAT`].
    fn hold(&mut self, command: &RemoteCommand, timeout: Duration) -> Result<String, HostError> {
        self.hold_with(command, timeout, HEARTBEAT)
    }

    /// Stop everything started by [`Connection::hold`]: stop the
    /// heartbeats, close the commands' stdin, wait for them to end (and
    /// end them if they do not).
    fn release(&mut self);

    /// Whether the connection can still run commands. False once the host
    /// stopped answering (an `exec` returned [`HostError::Disconnected`],
    /// or a keepalive failed); a new connection is then needed.
    fn is_open(&self) -> bool {
        true
    }
}

/// Ends process group `$1` and everything in it: `SIGTERM`, up to `$2`
/// tenths of a second for it to go, then `SIGKILL`. As the login user and,
/// for processes started through `sudo -n`, as root; a host where sudo
/// asks for a password has no such processes, so the failure is ignored.
/// The argument is a number and the script a literal: nothing is
/// interpolated.
const END_GROUP_SCRIPT: &str = r#"pg=$1 ticks=$2
sudo -n sh -c 'kill -s TERM -- "-$1"' sh "$pg" 2>/dev/null
kill -s TERM -- "-$pg" 2>/dev/null
i=0
while [ "$i" -lt "$ticks" ] && kill -s 0 -- "-$pg" 2>/dev/null; do
    sleep 0.1
    i=$((i + 1))
done
kill -s KILL -- "-$pg" 2>/dev/null
sudo -n sh -c 'kill -s 0 -- "-$1" 2>/dev/null && kill -s KILL -- "-$1"' sh "$pg" 2>/dev/null
exit 0"#;

/// The command that ends process group `pgid` (see [`KILL_GRACE`]).
pub(crate) fn end_group_command(pgid: u32) -> RemoteCommand {
    let ticks = KILL_GRACE.as_millis() / 100;
    RemoteCommand::new("sh")
        .args([
            "-c",
            END_GROUP_SCRIPT,
            "deployer-end",
            &pgid.to_string(),
            &ticks.to_string(),
        ])
        .named("ending a timed-out command")
}

/// A thread that calls `tick` every `every` until stopped (or until `tick`
/// returns false): SSH keepalives, heartbeats of held commands. Stopping
/// waits for the current tick to finish.
pub(crate) struct Ticker {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Start ticking; the first tick comes after `every`.
    pub(crate) fn start(every: Duration, mut tick: impl FnMut() -> bool + Send + 'static) -> Self {
        use std::sync::mpsc::RecvTimeoutError;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // a message or a dropped sender both mean stop
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if !tick() {
                    break;
                }
            }
        });
        Ticker {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stop ticking and wait for the thread to end.
    pub(crate) fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Open a connection to `target` (through sessions of its own to its jump
/// hosts, if any).
pub fn connect(target: &Target) -> Result<Box<dyn Connection>, HostError> {
    connect_with(target, &Reach::default())
}

/// Open a connection to `target`, sharing what `reach` keeps for the run:
/// the sessions to jump hosts (opened there when not open yet, so that
/// the targets behind one jump host share one session to it), the parsed
/// known_hosts files, and the turns to start connections to each server.
pub fn connect_with(target: &Target, reach: &Reach) -> Result<Box<dyn Connection>, HostError> {
    match &target.kind {
        TargetKind::Local => Ok(Box::new(local::LocalConnection::new())),
        TargetKind::Ssh(ssh) => Ok(Box::new(ssh::SshConnection::open_with(ssh, reach)?)),
    }
}

/// Run `command` on `conn` and return its output, whatever its status.
pub fn run(
    conn: &mut dyn Connection,
    command: &RemoteCommand,
    timeout: Duration,
) -> Result<Output, HostError> {
    conn.exec(Exec::new(command, timeout))
}

/// Raise this process's soft limit on open files (`RLIMIT_NOFILE`) to its
/// hard limit, so that a run over many hosts is limited by what the system
/// allows rather than by a shell's cautious default (often 1024). Returns
/// the soft limit now in force, `None` for unlimited.
///
/// Every descriptor deployer opens is waited on with `poll`, never
/// `select` (libssh2 is built with `HAVE_POLL`), so numbers above 1024 are
/// safe.
pub fn raise_fd_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) if soft < hard => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                },
            )?;
            Ok(Some(hard))
        }
        (soft, _) => Ok(soft),
    }
}

/// Whether `e` means that this process or system has no file descriptor
/// left (`EMFILE`, `ENFILE`).
pub fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// `e`, met while `during`, as a [`HostError`]: [`HostError::OutOfDescriptors`]
/// when descriptors ran out, else what `other` makes of it.
pub(crate) fn io_error(
    e: &std::io::Error,
    during: impl FnOnce() -> String,
    other: impl FnOnce(&std::io::Error) -> HostError,
) -> HostError {
    if is_out_of_descriptors(e) {
        HostError::OutOfDescriptors { during: during() }
    } else {
        other(e)
    }
}

/// Lock `m`, whatever a thread that panicked while holding it left: the
/// data kept here (sessions, counters, caches) stays usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `stderr` says that `sudo -n` wanted a password.
pub fn sudo_wants_password(stderr: &str) -> bool {
    stderr.contains("sudo: a password is required")
        || stderr.contains("sudo: a terminal is required")
}

/// Why a command that ran did not succeed, as one line of a report: a
/// password request of `sudo -n` or a path refused by [`crate::hostpath`]
/// said as such, otherwise the exit status and the command's stderr (one
/// line, escaped, clipped).
pub fn failure(out: &Output) -> String {
    if sudo_wants_password(&out.stderr) {
        return "sudo asks for a password".to_string();
    }
    if let Some(why) = crate::hostpath::refused(&out.stderr) {
        return format!("refused: {why}");
    }
    let said = crate::text::clipped_line(out.stderr.trim(), crate::text::REMOTE_TEXT_MAX);
    if said.is_empty() {
        format!("exit status {}", out.status)
    } else {
        format!("exit status {}: {said}", out.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(chunks: &[&[u8]], limit: usize) -> (String, u64) {
        let mut t = Tail::new(limit);
        for c in chunks {
            t.push(c);
        }
        t.finish()
    }

    #[test]
    fn tail_keeps_the_end_and_counts_the_rest() {
        let cases: [(&[&[u8]], usize, &str, u64); 6] = [
            (&[b"hello"], 10, "hello", 0),
            (&[b"hello", b"world"], 10, "helloworld", 0),
            (&[b"hello", b"world", b"!"], 10, "elloworld!", 1),
            (&[b"0123456789abcdefghijklmnopqrstuvwxyz"], 4, "wxyz", 32),
            (&[b"ab", b"cd", b"ef", b"gh", b"ij"], 3, "hij", 7),
            (&[], 3, "", 0),
        ];
        for (chunks, limit, text, dropped) in cases {
            assert_eq!(
                tail_of(chunks, limit),
                (text.to_string(), dropped),
                "{chunks:?}"
            );
        }
    }

    #[test]
    fn tail_does_not_start_inside_a_character() {
        // "é" is c3 a9: a cut after c3 leaves a9, which is skipped
        assert_eq!(tail_of(&["xé€".as_bytes()], 4), ("€".to_string(), 3));
        assert_eq!(tail_of(&["xé€".as_bytes()], 5), ("é€".to_string(), 1));
    }

    #[test]
    fn tail_memory_stays_bounded() {
        let mut t = Tail::new(1000);
        let chunk = [b'x'; 333];
        for _ in 0..10_000 {
            t.push(&chunk);
            assert!(t.buf.len() <= 2000 + chunk.len());
        }
        let (text, dropped) = t.finish();
        assert_eq!(text.len(), 1000);
        assert_eq!(dropped, 333 * 10_000 - 1000);
    }

    #[test]
    fn fd_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let hard = getrlimit(Resource::Nofile)
            .maximum
            .expect("a finite hard limit on open files");
        // make room to raise it (one below the hard limit harms no other test)
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(hard - 1),
                maximum: Some(hard),
            },
        )
        .unwrap();
        assert_eq!(raise_fd_limit().unwrap(), Some(hard));
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
        // already raised: nothing to do, same answer
        assert_eq!(raise_fd_limit().unwrap(), Some(hard));
    }

    #[test]
    fn descriptor_exhaustion_is_recognised() {
        let cases = [
            (libc::EMFILE, true),
            (libc::ENFILE, true),
            (libc::ENOENT, false),
            (libc::EACCES, false),
        ];
        for (errno, want) in cases {
            let e = std::io::Error::from_raw_os_error(errno);
            assert_eq!(is_out_of_descriptors(&e), want, "{e}");
        }
    }

    #[test]
    fn dropped_note_names_the_count() {
        let out = Output {
            stdout_dropped: 42,
            ..Output::default()
        };
        assert_eq!(
            out.dropped_note(Stream::Stdout).as_deref(),
            Some("… 42 earlier bytes dropped")
        );
        assert_eq!(out.dropped_note(Stream::Stderr), None);
        let both = Output {
            stdout: "tail\n".into(),
            stderr: "err\n".into(),
            ..out
        };
        assert_eq!(
            both.combined(),
            "tail\nerr\n[deployer: … 42 earlier bytes dropped from stdout]\n"
        );
    }
}
