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

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, MethodType, Session};

use super::identity::{self, Attempt};
use super::jump::route;
use super::reach::{KnownHostsCache, Reach};
use super::{
    end_group_command, io_error, is_out_of_descriptors, lock, Connection, Exec, HostKeyPolicy,
    Output, SshTarget, Stream, Tail, Ticker, END_GRACE, KEEPALIVE, OUTPUT_LIMIT,
};
use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::known_hosts::{self, HostNames, KnownHostsFile, Verdict};
use crate::local_file;

const LIBSSH2_ERROR_EAGAIN: i32 = -37;
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
const LIBSSH2_ERROR_SOCKET_SEND: i32 = -7;
const LIBSSH2_ERROR_SOCKET_DISCONNECT: i32 = -13;
const LIBSSH2_ERROR_SOCKET_RECV: i32 = -43;
const LIBSSH2_CALLBACK_DISCONNECT: libc::c_int = 2;

extern "C" {
    // libssh2 (linked by libssh2-sys): the `ssh2` crate offers no way to
    // hear the reason a host gives when it disconnects.
    fn libssh2_session_callback_set2(
        session: *mut libc::c_void,
        cbtype: libc::c_int,
        callback: Option<unsafe extern "C" fn()>,
    ) -> Option<unsafe extern "C" fn()>;

    // libssh2: public key authentication with the signature made by the
    // caller (the `ssh2` crate does not offer it).
    fn libssh2_userauth_publickey(
        session: *mut libc::c_void,
        username: *const libc::c_char,
        pubkeydata: *const u8,
        pubkeydata_len: libc::size_t,
        sign_callback: Option<SignCallback>,
        abstract_: *mut *mut libc::c_void,
    ) -> libc::c_int;
}

/// libssh2's signing callback: sign `data` into `*sig` (allocated with
/// `malloc`, which libssh2 frees).
type SignCallback = unsafe extern "C" fn(
    *mut libc::c_void,
    *mut *mut u8,
    *mut libc::size_t,
    *const u8,
    libc::size_t,
    *mut *mut libc::c_void,
) -> libc::c_int;

/// Sign with the Ed25519 key `*abstract_` points to.
unsafe extern "C" fn sign_ed25519(
    _session: *mut libc::c_void,
    sig: *mut *mut u8,
    sig_len: *mut libc::size_t,
    data: *const u8,
    data_len: libc::size_t,
    abstract_: *mut *mut libc::c_void,
) -> libc::c_int {
    use ed25519_dalek::Signer;
    // SAFETY: `userauth_ed25519` passes a pointer to a pointer to the
    // signing key, alive for the whole call; libssh2 passes `data_len`
    // bytes at `data` and valid places for the signature and its length.
    unsafe {
        let key = &*(*abstract_).cast::<ed25519_dalek::SigningKey>();
        let message = std::slice::from_raw_parts(data, data_len);
        let signature = key.sign(message).to_bytes();
        let out = libc::malloc(signature.len()).cast::<u8>();
        if out.is_null() {
            return -1;
        }
        std::ptr::copy_nonoverlapping(signature.as_ptr(), out, signature.len());
        *sig = out;
        *sig_len = signature.len();
    }
    0
}

/// Log in as `user` with the Ed25519 key `seed` (public key `blob`),
/// signing here. libssh2 would parse the key file again for every host,
/// through OpenSSL's decoders, first as PEM, which the OpenSSH format is
/// not: half of the client's CPU time per host went there.
fn userauth_ed25519(
    session: &Session,
    user: &str,
    blob: &[u8],
    seed: &[u8; 32],
) -> Result<(), ssh2::Error> {
    let user = std::ffi::CString::new(user)
        .map_err(|_| ssh2::Error::new(ssh2::ErrorCode::Session(-1), "user name has a NUL"))?;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let mut key_ptr: *mut libc::c_void = std::ptr::from_ref(&key).cast_mut().cast();
    let mut raw = session.raw();
    let ptr: *mut _ = &mut *raw;
    // SAFETY: the session pointer is live (its lock is held); the user
    // name, the blob and the key outlive the call, which is blocking (the
    // session is in blocking mode until the login is done).
    let rc = unsafe {
        libssh2_userauth_publickey(
            ptr.cast(),
            user.as_ptr(),
            blob.as_ptr(),
            blob.len(),
            Some(sign_ed25519),
            &mut key_ptr,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(ssh2::Error::from_session_error_raw(ptr, rc))
    }
}

thread_local! {
    /// The reason the host gave in its last SSH_MSG_DISCONNECT, heard by
    /// the thread that was reading the session.
    static DISCONNECT_REASON: std::cell::RefCell<Option<String>> =
        const { std::cell::RefCell::new(None) };
}

/// libssh2's disconnect callback: keep the host's words for this thread.
unsafe extern "C" fn on_disconnect(
    _session: *mut libc::c_void,
    _reason: libc::c_int,
    message: *const libc::c_char,
    message_len: libc::c_int,
    _language: *const libc::c_char,
    _language_len: libc::c_int,
    _abstract: *mut *mut libc::c_void,
) {
    let len = usize::try_from(message_len).unwrap_or(0);
    let text = if message.is_null() || len == 0 {
        String::new()
    } else {
        // SAFETY: libssh2 passes `message_len` bytes at `message`, valid
        // for the duration of the call.
        let bytes = unsafe { std::slice::from_raw_parts(message.cast::<u8>(), len) };
        String::from_utf8_lossy(bytes).into_owned()
    };
    DISCONNECT_REASON.with(|r| *r.borrow_mut() = Some(text));
}

/// Have `session` report the reason of a disconnect (see
/// [`take_disconnect_reason`]).
fn hear_disconnects(session: &Session) {
    let mut raw = session.raw();
    let ptr: *mut _ = &mut *raw;
    type Callback = unsafe extern "C" fn(
        *mut libc::c_void,
        libc::c_int,
        *const libc::c_char,
        libc::c_int,
        *const libc::c_char,
        libc::c_int,
        *mut *mut libc::c_void,
    );
    let callback: Callback = on_disconnect;
    // SAFETY: the session pointer is live (its lock is held); libssh2 calls
    // a disconnect callback with exactly `Callback`'s arguments, and takes
    // it as a generic function pointer, as its C API does.
    unsafe {
        let generic = std::mem::transmute::<Callback, unsafe extern "C" fn()>(callback);
        libssh2_session_callback_set2(ptr.cast(), LIBSSH2_CALLBACK_DISCONNECT, Some(generic));
    }
}

/// The reason the last host disconnect heard on this thread gave, if any
/// (and forget it).
fn take_disconnect_reason() -> Option<String> {
    DISCONNECT_REASON.with(|r| r.borrow_mut().take())
}

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
struct Held {
    channel: Arc<Mutex<Channel>>,
    pgid: Option<u32>,
    heartbeat: Ticker,
}

/// How often to send keepalives to `target`: its `ServerAliveInterval`
/// when set (`None`, none at all, for 0, as with OpenSSH), else
/// [`KEEPALIVE`].
pub(super) fn keepalive_interval(target: &SshTarget) -> Option<Duration> {
    match target.server_alive {
        Some((every, _)) if every.is_zero() => None,
        Some((every, _)) => Some(every),
        None => Some(KEEPALIVE),
    }
}

/// How long the host may send nothing before it is given up on:
/// `ServerAliveInterval` times `ServerAliveCountMax`, when set (each
/// keepalive asks for a reply, so a host that answers none of that many
/// is gone, as OpenSSH has it); `None` when not set.
pub(super) fn server_alive_limit(target: &SshTarget) -> Option<Duration> {
    match target.server_alive {
        // as ssh: a keepalive goes out each silent interval, and the host is
        // given up on when more than `count` have gone unanswered
        Some((every, count)) if !every.is_zero() && count > 0 => Some(every * (count + 1)),
        _ => None,
    }
}

/// Why the host on TCP socket `fd` is given up on, when it has sent
/// nothing for longer than `limit`: the kernel's count of the time since
/// data last arrived (`TCP_INFO`). `None` when within the limit, when there
/// is no limit, or when `fd` is not a TCP socket (a tunnel: its jump host's
/// session is watched instead).
pub(super) fn too_silent(fd: std::os::fd::RawFd, limit: Option<Duration>) -> Option<String> {
    let limit = limit?;
    // SAFETY: an all-zero `tcp_info` is a valid value of that plain struct.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: `info` is writable for `len` bytes; getsockopt writes at most
    // that many and says how many in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            std::ptr::addr_of_mut!(info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    let silent = Duration::from_millis(u64::from(info.tcpi_last_data_recv));
    (silent > limit).then(|| {
        format!(
            "the host sent nothing for {}s, keepalives unanswered (ServerAliveInterval x ServerAliveCountMax: {}s)",
            silent.as_secs(),
            limit.as_secs()
        )
    })
}

/// The byte stream to a target: a TCP connection, or a tunnel through its
/// jump hosts.
enum Carrier {
    Direct(TcpStream),
    Tunnel(std::os::unix::net::UnixStream),
}

impl AsRawFd for Carrier {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            Carrier::Direct(s) => s.as_raw_fd(),
            Carrier::Tunnel(s) => s.as_raw_fd(),
        }
    }
}

/// Reach `target`: directly, or through the sessions to its jump hosts kept
/// in `reach`.
fn carrier(
    target: &SshTarget,
    reach: &Reach,
    deadline: Instant,
    limit: Duration,
) -> Result<Carrier, HostError> {
    let hops = route(target)?;
    if hops.is_empty() {
        return Ok(Carrier::Direct(tcp_connect(target, deadline, limit)?));
    }
    let jump = reach.jumps.session(&hops, &reach.known, deadline, limit)?;
    Ok(Carrier::Tunnel(jump.tunnel(target, deadline, limit)?))
}

/// A new SSH session over `stream`, the host-key algorithms chosen from
/// known_hosts (read through `known`), and the handshake done by
/// `deadline`. Returns the session and the known_hosts files, for
/// [`check_host_key`].
fn handshake<S: AsRawFd + 'static>(
    stream: S,
    target: &SshTarget,
    known: &KnownHostsCache,
    deadline: Instant,
    limit: Duration,
) -> Result<(Session, Vec<Arc<KnownHostsFile>>), HostError> {
    let mut session = Session::new().map_err(|e| HostError::Ssh(e.message().to_string()))?;
    hear_disconnects(&session);
    // libssh2 owns the socket, and `wait` polls it through
    // `Session::as_raw_fd`: one descriptor per host, not two.
    session.set_tcp_stream(stream);
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HostError::Timeout {
            phase: format!("connecting to `{}`", target.alias),
            after: limit,
        });
    }
    session.set_timeout(u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1));
    let files = prefer_known_host_keys(&session, target, known)?;
    let started = Instant::now();
    session
        .handshake()
        .map_err(|e| ssh_err("waiting for the SSH handshake", &e, limit))?;
    tracing::debug!(
        host = %target.alias,
        ms = started.elapsed().as_millis() as u64,
        kex = session.methods(MethodType::Kex).unwrap_or("?"),
        host_key = session.methods(MethodType::HostKey).unwrap_or("?"),
        cipher = session.methods(MethodType::CryptCs).unwrap_or("?"),
        mac = session.methods(MethodType::MacCs).unwrap_or("?"),
        "handshake"
    );
    Ok((session, files))
}

/// The SSH session over `stream` (a TCP connection, or a tunnel through a
/// jump host): handshake, host key check and login, by `deadline`.
pub(super) fn login<S: AsRawFd + 'static>(
    stream: S,
    target: &SshTarget,
    known: &KnownHostsCache,
    deadline: Instant,
    limit: Duration,
) -> Result<Session, HostError> {
    let (session, files) = handshake(stream, target, known, deadline, limit)?;
    check_host_key(&session, target, &files, known)?;
    let started = Instant::now();
    authenticate(&session, target, deadline, limit)?;
    tracing::debug!(
        host = %target.alias,
        ms = started.elapsed().as_millis() as u64,
        "authenticated"
    );
    session.set_timeout(0);
    session.set_blocking(false);
    Ok(session)
}

/// Why waiting on the host stopped.
#[derive(Debug)]
enum Stop {
    /// The deadline passed.
    Expired,
    /// The session failed; libssh2's words.
    Failed(String),
}

/// How much of a held command's first line is kept: its answer (a lock's
/// holder) is a few KiB at most, and a host must not fill memory with it.
const HOLD_LINE_MAX: usize = 64 * 1024;

/// The first line every command prints on stderr: the process group the
/// host's sshd made for it (sshd starts each command in a new session, so
/// the login shell's PID is its process group), so that a command that
/// overruns its time can be ended, children and all.
const PGID_MARK: &str = "deployer-pgid=";

/// `command` as sent to the host: announce the process group, then run.
fn announced(command: &RemoteCommand) -> String {
    format!("printf '{PGID_MARK}%s\\n' \"$$\" >&2; {}", command.as_str())
}

/// Takes the [`PGID_MARK`] line out of a stderr stream and passes the rest
/// on. Lines before it (a login script's chatter) pass through; a stream
/// that has not shown it within its first 4 KiB is given up on.
#[derive(Debug, Default)]
struct PgidFilter {
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

/// Host key algorithms to offer, best first: those of the key types that
/// known_hosts lists for the host first, then the others, as OpenSSH
/// orders them (`order_hostkeyalgs`). A host known only by its ECDSA key
/// thus negotiates ECDSA, and one that no longer offers the known type
/// shows up as changed, as with `ssh`.
pub fn host_key_preference(known_types: &[String]) -> String {
    const ORDER: [(&str, &str); 5] = [
        ("ssh-ed25519", "ssh-ed25519"),
        ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
        ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
        ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
        ("ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"),
    ];
    let known = |t: &str| known_types.iter().any(|k| k == t);
    let first = ORDER.iter().filter(|(t, _)| known(t));
    let last = ORDER.iter().filter(|(t, _)| !known(t));
    first
        .chain(last)
        .map(|(_, algs)| *algs)
        .collect::<Vec<_>>()
        .join(",")
}

/// The names `target`'s key is looked up under in known_hosts.
fn host_names(target: &SshTarget) -> HostNames {
    HostNames::new(
        &target.host_name,
        target.port,
        target.host_key_alias.as_deref(),
    )
}

fn ssh_err(phase: &str, e: &ssh2::Error, timeout: Duration) -> HostError {
    match e.code() {
        ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) => HostError::Timeout {
            phase: phase.to_string(),
            after: timeout,
        },
        _ => HostError::Ssh(format!("{phase}: {}", e.message())),
    }
}

impl SshConnection {
    /// Connect, check the host key and authenticate, all within
    /// `target.connect_timeout`; through the target's jump hosts, if any,
    /// with sessions to them of their own (see [`SshConnection::open_with`]
    /// to share them).
    pub fn open(target: &SshTarget) -> Result<SshConnection, HostError> {
        SshConnection::open_with(target, &Reach::default())
    }

    /// Like [`SshConnection::open`], sharing with the other connections
    /// of the run what `reach` keeps: targets behind the same jump host
    /// share one session to it, known_hosts files are read once, and the
    /// connection waits for a turn among those starting to the same server
    /// (`max_startups`). `connect_timeout` bounds the whole chain, from
    /// the turn on.
    pub fn open_with(target: &SshTarget, reach: &Reach) -> Result<SshConnection, HostError> {
        let turn = reach.starts.turn(target);
        let limit = target.connect_timeout;
        let deadline = Instant::now() + limit;
        let session = login(
            carrier(target, reach, deadline, limit)?,
            target,
            &reach.known,
            deadline,
            limit,
        )?;
        drop(turn);
        let mut conn = SshConnection {
            session,
            held: Vec::new(),
            lost: Arc::new(Mutex::new(None)),
            keepalive: None,
        };
        conn.start_keepalive(keepalive_interval(target), server_alive_limit(target));
        Ok(conn)
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
        let mut fd = libc::pollfd {
            fd: self.session.as_raw_fd(),
            events,
            revents: 0,
        };
        let ms = deadline.duration_since(now).as_millis().min(200) as libc::c_int;
        // SAFETY: one valid pollfd, a bounded timeout.
        unsafe { libc::poll(&mut fd, 1, ms.max(1)) };
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
fn feed(channel: &Mutex<Channel>) -> bool {
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

/// Whether libssh2 said "would block".
fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_EAGAIN)
}

/// Lock `m`, whatever a panicking thread left in it.
/// Record why a connection is lost (the first reason stays).
fn lose(lost: &Mutex<Option<String>>, reason: String) {
    lock(lost).get_or_insert(reason);
}

/// What a command that overran `limit` during `phase` comes to, once
/// [`SshConnection::end`] said `ended`: a timeout of that command, the
/// session still usable; or, when it could not be ended, a lost host
/// ("it {overrun} {limit}s, then ...").
fn overran(ended: Result<(), String>, phase: String, limit: Duration, overrun: &str) -> HostError {
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
fn no_answer(limit: Duration) -> String {
    format!(
        "the host did not answer within {}s",
        (limit + END_GRACE).as_secs_f32()
    )
}

/// Words for a [`Stop`]: `expired` when the deadline passed.
fn describe_stop(stop: Stop, expired: &str) -> String {
    match stop {
        Stop::Expired => expired.to_string(),
        Stop::Failed(why) => why,
    }
}

/// A TCP connection to `target`, by `deadline`: its name resolved (on a
/// thread, given up on at the deadline: the resolver cannot be
/// interrupted), then every address tried in the resolver's order, IPv6
/// and IPv4 alike, as OpenSSH does, until one answers.
pub(super) fn tcp_connect(
    target: &SshTarget,
    deadline: Instant,
    limit: Duration,
) -> Result<TcpStream, HostError> {
    let addrs = resolve(&target.host_name, target.port, deadline, limit)?;
    connect_any(&target.host_name, &addrs, deadline, limit)
}

/// The addresses of `host` (a name or an IP literal, IPv6 with or without
/// brackets) on `port`, by `deadline`.
fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
    limit: Duration,
) -> Result<Vec<SocketAddr>, HostError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let timed_out = || HostError::Timeout {
        phase: format!("resolving `{host}`"),
        after: limit,
    };
    if Instant::now() >= deadline {
        return Err(timed_out());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let name = bare.to_string();
    let spawned = std::thread::Builder::new()
        .name("resolve".to_string())
        .spawn(move || {
            let found = (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>);
            let _ = tx.send(found);
        });
    if let Err(e) = spawned {
        return Err(io_error(
            &e,
            || format!("resolving `{host}`"),
            |e| HostError::Resolve {
                host: host.to_string(),
                message: e.to_string(),
            },
        ));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(Ok(addrs)) if addrs.is_empty() => Err(HostError::Resolve {
            host: host.to_string(),
            message: "no address found".to_string(),
        }),
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(io_error(
            &e,
            || format!("resolving `{host}`"),
            |e| HostError::Resolve {
                host: host.to_string(),
                message: e.to_string(),
            },
        )),
        Err(_) => Err(timed_out()),
    }
}

/// Connect to the first of `addrs` that answers by `deadline`, trying
/// each in turn; the error names every address tried and what it said.
fn connect_any(
    host: &str,
    addrs: &[SocketAddr],
    deadline: Instant,
    limit: Duration,
) -> Result<TcpStream, HostError> {
    let mut failures = Vec::new();
    let mut out_of_time = false;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            out_of_time = true;
            failures.push(format!("{addr} (not tried: out of time)"));
            continue;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if is_out_of_descriptors(&e) => {
                return Err(HostError::OutOfDescriptors {
                    during: format!("connecting to {addr}"),
                })
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                out_of_time = Instant::now() >= deadline;
                failures.push(format!("{addr} (timed out)"));
            }
            Err(e) => failures.push(format!("{addr} ({e})")),
        }
    }
    if out_of_time {
        return Err(HostError::Timeout {
            phase: format!("connecting to `{host}` (tried {})", failures.join(", ")),
            after: limit,
        });
    }
    if addrs.len() == 1 {
        let message = failures.pop().unwrap_or_default();
        let message = message
            .strip_prefix(&format!("{} (", addrs[0]))
            .and_then(|m| m.strip_suffix(')'))
            .unwrap_or(&message)
            .to_string();
        return Err(HostError::Connect {
            addr: addrs[0].to_string(),
            message,
        });
    }
    Err(HostError::Connect {
        addr: format!("`{host}`"),
        message: format!("every address failed: {}", failures.join(", ")),
    })
}

/// What deployer decides about `target`'s host key, found with a handshake
/// only (the target is not logged in to; its jump hosts are, with
/// `reach`, since the tunnel needs them). Nothing is recorded, whatever
/// the new-key policy: this is for `deployer hosts --check`.
pub fn probe_host_key(target: &SshTarget, reach: &Reach) -> Result<String, HostError> {
    let _turn = reach.starts.turn(target);
    let limit = target.connect_timeout;
    let deadline = Instant::now() + limit;
    let stream = carrier(target, reach, deadline, limit)?;
    let (session, files) = handshake(stream, target, &reach.known, deadline, limit)?;
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| HostError::Ssh("the host sent no host key".to_string()))?;
    let offered = format!(
        "{} {}",
        known_hosts::blob_key_type(blob).unwrap_or("unknown"),
        known_hosts::fingerprint(blob)
    );
    // decided as a connection would, but never recorded
    let strict = SshTarget {
        policy: HostKeyPolicy::Strict,
        ..target.clone()
    };
    let verdict = match check_host_key(&session, &strict, &files, &reach.known) {
        Ok(()) => Ok(format!("known: {offered}")),
        Err(HostError::HostKeyUnknown { .. }) if target.policy == HostKeyPolicy::AcceptNew => Ok(
            format!("not known: {offered}; the next connection records it (accept-new)"),
        ),
        Err(e) => Err(e),
    };
    let _ = session.disconnect(None, "deployer hosts --check", None);
    verdict
}

/// Before the handshake: read `target`'s known_hosts files (through the
/// run's `known`) and offer the host-key algorithms of the key types they
/// list for it first. Returns the files, for [`check_host_key`] after the
/// handshake.
pub fn prefer_known_host_keys(
    session: &Session,
    target: &SshTarget,
    known: &KnownHostsCache,
) -> Result<Vec<Arc<KnownHostsFile>>, HostError> {
    let files = known.files(target)?;
    let types = known_hosts::known_key_types(&files, &host_names(target).primary);
    // An algorithm name libssh2 lacks is dropped by it; an error here only
    // means the defaults stay, which the key check still guards.
    let _ = session.method_pref(MethodType::HostKey, &host_key_preference(&types));
    Ok(files)
}

/// After the handshake: decide on the key the host offered, as OpenSSH
/// would with `files` ([`known_hosts::check`]); under accept-new, record
/// the key of a host no line names (and have `known` read that file
/// again).
pub fn check_host_key(
    session: &Session,
    target: &SshTarget,
    files: &[Arc<KnownHostsFile>],
    known: &KnownHostsCache,
) -> Result<(), HostError> {
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| HostError::Ssh("the host sent no host key".to_string()))?;
    let key_type = known_hosts::blob_key_type(blob)
        .unwrap_or("unknown")
        .to_string();
    let fingerprint = known_hosts::fingerprint(blob);
    let host = target.alias.clone();
    let names = host_names(target);
    // where accept-new writes: the first user file, as with OpenSSH (with
    // none, nothing is recorded)
    let primary = target.known_hosts.first();
    match known_hosts::check(files, &names, blob) {
        Verdict::Match { .. } => Ok(()),
        Verdict::Revoked { file, line } => Err(HostError::HostKeyRevoked {
            host,
            key_type,
            fingerprint,
            known_hosts: file,
            line,
        }),
        Verdict::Changed { known } => Err(HostError::HostKeyChanged {
            host,
            key_type,
            fingerprint,
            known,
        }),
        Verdict::CertAuthority { file, line } => Err(HostError::HostKeyCertAuthority {
            host,
            key_type,
            fingerprint,
            known_hosts: file,
            line,
        }),
        Verdict::Unknown => match (target.policy, primary) {
            (HostKeyPolicy::AcceptNew, Some(path)) => {
                let recorded = record_host_key(target, &names.primary, blob, path);
                known.forget(path);
                recorded
            }
            (HostKeyPolicy::AcceptNew, None) => Err(HostError::HostKeyNotRecorded {
                host,
                known_hosts: PathBuf::from("UserKnownHostsFile"),
                message: "no user known_hosts file is configured".to_string(),
            }),
            (HostKeyPolicy::Strict, _) => Err(HostError::HostKeyUnknown {
                host,
                key_type,
                fingerprint,
                known_hosts: primary
                    .or(target.global_known_hosts.first())
                    .cloned()
                    .unwrap_or_default(),
            }),
        },
    }
}

/// accept-new: append `blob` for `name` to `path`, hashed when
/// `HashKnownHosts yes`.
fn record_host_key(
    target: &SshTarget,
    name: &str,
    blob: &[u8],
    path: &Path,
) -> Result<(), HostError> {
    let refuse = |message: String| HostError::HostKeyNotRecorded {
        host: target.alias.clone(),
        known_hosts: path.to_path_buf(),
        message,
    };
    // As OpenSSH: a name that would not read back as itself is not written
    // (and an unknown key that cannot be recorded is refused).
    let names = [
        Some(("host name", target.host_name.as_str())),
        target
            .host_key_alias
            .as_deref()
            .map(|a| ("HostKeyAlias", a)),
    ];
    if let Some((what, bad)) = names
        .into_iter()
        .flatten()
        .find(|(_, n)| !known_hosts::recordable(n))
    {
        return Err(refuse(format!(
            "the {what} `{}` cannot be written into a known_hosts file: a name recorded \
             there has only letters, digits and `.-_:%`, so nothing else is written, whatever \
             the configuration says (check `HostName` and `HostKeyAlias` in the ssh \
             configuration)",
            crate::text::one_line(bad)
        )));
    }
    let mut salt = [0u8; 20];
    if target.hash_known_hosts {
        fill_random(&mut salt).map_err(|e| refuse(format!("no random salt: {e}")))?;
    }
    let line = known_hosts::entry_line(name, blob, target.hash_known_hosts.then_some(&salt[..]))
        .ok_or_else(|| refuse("the host key does not name its type".to_string()))?;
    append_known_host(path, &line).map_err(|e| {
        io_error(
            &e,
            || format!("recording the new host key in `{}`", path.display()),
            |e| refuse(e.to_string()),
        )
    })
}

fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        filled +=
            rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    Ok(())
}

/// Append `line` to the known_hosts file `path` in one `O_APPEND` write
/// (which lands whole at the end, beside writers such as `ssh` that take
/// no lock), under an exclusive `flock` among deployer's own writers, so
/// that the check of what the file holds and the write are one step.
/// A file whose last line lacks its newline gets one first, so the new
/// line stays a line of its own.
///
/// The file is opened as [`local_file::open_append`] opens files (no
/// final symbolic link, a directory only the user and root can write),
/// and nothing is appended to a file with a line that is not a known_hosts
/// line ([`known_hosts::foreign_line`]): it may be another file named by
/// mistake or by a hostile configuration, such as a shell's start-up file.
pub fn append_known_host(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let (mut f, _) = local_file::open_append(path, 0o600)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
    let mut held = Vec::new();
    f.read_to_end(&mut held)?;
    if let Some(number) = known_hosts::foreign_line(&held) {
        return Err(std::io::Error::other(format!(
            "line {number} of `{}` is not a known_hosts line, so it may not be a known_hosts \
             file at all: nothing is appended to it (check `known_hosts` in deployer.ini and \
             `UserKnownHostsFile` in the ssh configuration, or remove that line)",
            path.display()
        )));
    }
    let mut text = Vec::with_capacity(line.len() + 1);
    if held.last().is_some_and(|&b| b != b'\n') {
        text.push(b'\n');
    }
    text.extend_from_slice(line.as_bytes());
    f.write_all(&text)?;
    f.sync_all()
}

/// Give the next blocking libssh2 call only what is left of the connect
/// deadline, so that `connect_timeout` bounds the whole login, not each step.
fn remaining(session: &Session, deadline: Instant, limit: Duration) -> Result<(), HostError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HostError::Timeout {
            phase: "authenticating".to_string(),
            after: limit,
        });
    }
    session.set_timeout(u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1));
    Ok(())
}

/// Log in to `target` in OpenSSH's order (see [`identity::order`]): agent
/// keys named by an identity file, the other agent keys (unless
/// `IdentitiesOnly`), then key files. A host that closes the connection
/// (sshd's `MaxAuthTries`) ends the attempts, and its reason is reported.
fn authenticate(
    session: &Session,
    target: &SshTarget,
    deadline: Instant,
    limit: Duration,
) -> Result<(), HostError> {
    let user = &target.user;
    let timeout = || HostError::Timeout {
        phase: "authenticating".to_string(),
        after: limit,
    };
    let mut tried = Vec::new();
    // each file's public key, as OpenSSH finds it, and its private key text
    let mut files: Vec<KeyFile> = Vec::new();
    for path in &target.identity_files {
        files.push(read_key_file(path, &mut tried)?);
    }
    let mut agent = None;
    let mut agent_keys: Vec<ssh2::PublicKey> = Vec::new();
    let wants_agent = target.use_agent || files.iter().any(|f| f.public.is_some());
    if wants_agent {
        if let Some(socket) = std::env::var_os("SSH_AUTH_SOCK") {
            if let Some(a) = open_agent(session, Path::new(&socket), &mut tried)? {
                agent_keys = a.identities().unwrap_or_default();
                agent = Some(a);
            }
        }
    }
    let blobs: Vec<Vec<u8>> = agent_keys.iter().map(|k| k.blob().to_vec()).collect();
    let publics: Vec<Option<Vec<u8>>> = files.iter().map(|f| f.public.clone()).collect();
    let attempts = identity::order(&blobs, &publics, !target.use_agent);
    let mut from_agent = 0;
    take_disconnect_reason();
    for attempt in attempts {
        remaining(session, deadline, limit)?;
        let (result, what) = match attempt {
            Attempt::Agent(j) => {
                let Some(agent) = &agent else { continue };
                from_agent += 1;
                let what = format!("agent key {}", agent_keys[j].comment());
                (agent.userauth(user, &agent_keys[j]).map(|()| true), what)
            }
            Attempt::File(i) => {
                let file = &files[i];
                let what = file.path.display().to_string();
                match &file.private {
                    KeyText::Ed25519 { seed, blob } => (
                        userauth_ed25519(session, user, blob, seed)
                            .map(|()| session.authenticated()),
                        what,
                    ),
                    KeyText::Usable(text) => (
                        session
                            .userauth_pubkey_memory(user, None, text, None)
                            .map(|()| session.authenticated()),
                        what,
                    ),
                    KeyText::Skipped(why) => {
                        tried.push(format!("{what} ({why})"));
                        continue;
                    }
                    KeyText::Missing => continue,
                }
            }
        };
        match result {
            Ok(true) => return Ok(()),
            Ok(false) => tried.push(what),
            Err(e) if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) => {
                return Err(timeout())
            }
            Err(e) if is_session_gone(&e) => {
                tried.push(what);
                let reason = take_disconnect_reason()
                    .unwrap_or_else(|| format!("the connection ended ({})", e.message()));
                return Err(HostError::AuthClosed {
                    user: user.clone(),
                    reason,
                    tried,
                });
            }
            Err(e) => {
                tried.push(what);
                // the agent's errors do not always say that the session is
                // gone; a disconnect the host sent does
                if let Some(reason) = take_disconnect_reason() {
                    return Err(HostError::AuthClosed {
                        user: user.clone(),
                        reason,
                        tried,
                    });
                }
                if !session_alive(session) {
                    return Err(HostError::AuthClosed {
                        user: user.clone(),
                        reason: format!("the connection ended ({})", e.message()),
                        tried,
                    });
                }
            }
        }
    }
    if agent.is_some() && from_agent == 0 && !agent_keys.is_empty() {
        tried.push(format!(
            "ssh-agent ({} keys, none named by an identity file: IdentitiesOnly)",
            agent_keys.len()
        ));
    } else if agent.is_some() && agent_keys.is_empty() {
        tried.push("ssh-agent (no keys)".to_string());
    }
    if tried.is_empty() {
        tried.push("no agent and no key file found".to_string());
    }
    Err(HostError::Auth {
        user: user.clone(),
        tried,
    })
}

/// An identity file as read for authentication.
struct KeyFile {
    path: PathBuf,
    /// Its public key, when known without a passphrase.
    public: Option<Vec<u8>>,
    private: KeyText,
}

/// The private key of an identity file, or why it is not offered itself.
enum KeyText {
    /// A plain Ed25519 key in OpenSSH's format: its seed and public key
    /// blob, signed with here.
    Ed25519 { seed: [u8; 32], blob: Vec<u8> },
    /// Another private key, which libssh2 can use as it is.
    Usable(String),
    /// Not offered (a public key only, passphrase-protected): why.
    Skipped(String),
    /// No such file (the default keys often are not there).
    Missing,
}

/// Read `path` and its `.pub` as OpenSSH does. Read here rather than by
/// libssh2, which would report a file it cannot open (say, for want of
/// descriptors) as a refused key.
fn read_key_file(path: &Path, tried: &mut Vec<String>) -> Result<KeyFile, HostError> {
    // The owner and mode of the key as opened (fstat), for ssh's rule.
    let mut stat = None;
    let mut read = |p: &Path| -> Result<Option<Vec<u8>>, HostError> {
        let opened = fs::File::open(p).and_then(|mut f| {
            let meta = f.metadata()?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok((bytes, meta))
        });
        match opened {
            Ok((bytes, meta)) => {
                if p == path {
                    stat = Some((meta.uid(), meta.mode()));
                }
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) if is_out_of_descriptors(&e) => Err(HostError::OutOfDescriptors {
                during: format!("reading the key `{}`", p.display()),
            }),
            Err(e) => {
                tried.push(format!("{} (unreadable: {e})", p.display()));
                Ok(None)
            }
        }
    };
    let text = read(path)?;
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let beside = read(Path::new(&pub_path))?;
    let info = text.as_deref().and_then(identity::private_key_info);
    let public = text
        .as_deref()
        .and_then(identity::public_key_blob)
        .or_else(|| beside.as_deref().and_then(identity::public_key_blob))
        .or_else(|| info.as_ref().and_then(|i| i.public.clone()));
    let refusal = stat.and_then(|(owner, mode)| {
        identity::key_file_refusal(
            owner,
            mode,
            rustix::process::getuid().as_raw(),
            crate::operator::sudo_uid().is_some(),
        )
    });
    let private = match (&text, &info, refusal) {
        (None, ..) => KeyText::Missing,
        // a private key ssh would not use (its mode, or its owner under sudo)
        (Some(_), Some(_), Some(why)) => KeyText::Skipped(why),
        (Some(_), Some(i), None) if i.encrypted => KeyText::Skipped(
            "passphrase-protected and not in the ssh-agent: add it with ssh-add".to_string(),
        ),
        (Some(bytes), Some(_), None) => match identity::ed25519_secret(bytes) {
            Some((seed, blob)) => KeyText::Ed25519 { seed, blob },
            None => match String::from_utf8(bytes.clone()) {
                Ok(s) => KeyText::Usable(s),
                Err(_) => KeyText::Skipped("not a key file".to_string()),
            },
        },
        (Some(_), None, _) if public.is_some() => {
            KeyText::Skipped("a public key, not in the ssh-agent".to_string())
        }
        (Some(_), None, _) => KeyText::Skipped("not a key file".to_string()),
    };
    Ok(KeyFile {
        path: path.to_path_buf(),
        public,
        private,
    })
}

/// Whether libssh2 says the host closed the connection (or its socket
/// failed): the session is gone.
/// Whether the session's socket is still open: a host that ended the
/// login (sshd's `MaxAuthTries`) has closed it.
fn session_alive(session: &Session) -> bool {
    let mut fd = libc::pollfd {
        fd: session.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the session's own descriptor, no wait.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    if ready <= 0 {
        return true;
    }
    if fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return false;
    }
    // readable: data, or end of file (a peek tells which)
    let mut byte = [0u8; 1];
    // SAFETY: a one-byte buffer of our own; MSG_PEEK leaves the data for
    // libssh2, MSG_DONTWAIT never blocks.
    let n = unsafe {
        libc::recv(
            fd.fd,
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n != 0
}

pub(super) fn is_session_gone(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ssh2::ErrorCode::Session(
            LIBSSH2_ERROR_SOCKET_DISCONNECT | LIBSSH2_ERROR_SOCKET_RECV | LIBSSH2_ERROR_SOCKET_SEND
        )
    )
}

/// Connect to the ssh-agent listening on `socket`. No agent there (the
/// socket is gone or refuses) is not an error: `tried` says so and the key
/// files are tried next. Running out of descriptors is an error.
fn open_agent(
    session: &Session,
    socket: &Path,
    tried: &mut Vec<String>,
) -> Result<Option<ssh2::Agent>, HostError> {
    let during = || "connecting to the ssh-agent".to_string();
    // libssh2 says only "failed connecting with agent": ask the OS first.
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(probe) => drop(probe),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if is_out_of_descriptors(&e) => {
            return Err(HostError::OutOfDescriptors { during: during() })
        }
        Err(e) => {
            tried.push(format!("ssh-agent at `{}` ({e})", socket.display()));
            return Ok(None);
        }
    }
    let mut agent = session
        .agent()
        .map_err(|e| HostError::Ssh(format!("ssh-agent: {}", e.message())))?;
    if let Err(e) = agent.connect() {
        // the probe worked, so this is most likely a descriptor limit: the
        // OS error is still the thread's last one
        let os = std::io::Error::last_os_error();
        if is_out_of_descriptors(&os) {
            return Err(HostError::OutOfDescriptors { during: during() });
        }
        tried.push(format!(
            "ssh-agent at `{}` ({})",
            socket.display(),
            e.message()
        ));
        return Ok(None);
    }
    if let Err(e) = agent.list_identities() {
        tried.push(format!("ssh-agent (cannot list keys: {})", e.message()));
        return Ok(None);
    }
    Ok(Some(agent))
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

    fn target(dir: &Path) -> SshTarget {
        SshTarget {
            port: 2222,
            known_hosts: vec![dir.join("missing"), dir.join("user")],
            global_known_hosts: vec![dir.join("global")],
            ..SshTarget::example("prod-1", "10.0.0.1")
        }
    }

    /// Every file is read, the global ones too, as bytes; a missing one
    /// is none; one that cannot be read refuses the host.
    #[test]
    fn known_hosts_files_are_read_as_bytes_and_unreadable_ones_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        fs::write(dir.path().join("user"), b"# caf\xe9\n").unwrap();
        fs::write(dir.path().join("global"), b"").unwrap();
        let files = KnownHostsCache::default().files(&t).unwrap();
        let paths: Vec<&Path> = files.iter().map(|f| f.path()).collect();
        assert_eq!(paths, [dir.path().join("user"), dir.path().join("global")]);

        fs::create_dir(dir.path().join("missing")).unwrap();
        let e = KnownHostsCache::default().files(&t).unwrap_err();
        assert!(matches!(e, HostError::KnownHostsUnreadable { .. }), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains(&format!("`{}`", dir.path().join("missing").display()))
                && shown.contains("prod-1"),
            "{shown}"
        );
    }

    /// A known_hosts line for `name` with an Ed25519 key told apart by `n`.
    fn key_line(name: &str, n: u8) -> String {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[n; 32]);
        known_hosts::entry_line(name, &blob, None).unwrap()
    }

    /// Appending gives a file without a final newline one first.
    #[test]
    fn recorded_keys_are_lines_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".ssh/known_hosts");
        let (a, b, c) = (key_line("a", 1), key_line("b", 2), key_line("c", 3));
        append_known_host(&path, &a).unwrap();
        fs::write(&path, a.trim_end()).unwrap();
        append_known_host(&path, &b).unwrap();
        append_known_host(&path, &c).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{a}{b}{c}"));
    }

    /// A regression test for a checkout whose deployer.ini pointed
    /// `known_hosts` at a shell's start-up file: nothing is appended to a
    /// file with a line that is not a known_hosts line, nor through a
    /// symbolic link.
    #[test]
    fn keys_are_never_appended_to_a_file_that_is_not_a_known_hosts_file() {
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join(".bashrc");
        let text = "# ~/.bashrc\nexport PATH=$PATH:~/bin\n";
        fs::write(&rc, text).unwrap();
        let e = append_known_host(&rc, &key_line("web", 1)).unwrap_err();
        assert!(
            e.to_string().contains("line 2 of") && e.to_string().contains("not a known_hosts line"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&rc).unwrap(), text);

        let known = dir.path().join("known_hosts");
        std::os::unix::fs::symlink(&rc, &known).unwrap();
        let e = append_known_host(&known, &key_line("web", 1)).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&rc).unwrap(), text);
    }

    #[test]
    fn revoked_keys_name_their_line() {
        let e = HostError::HostKeyRevoked {
            host: "prod-1".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
            known_hosts: PathBuf::from("/etc/ssh/ssh_known_hosts"),
            line: 3,
        };
        assert_eq!(
            e.to_string(),
            "host key for `prod-1` is REVOKED: it offered ssh-ed25519 SHA256:abc, which \
             /etc/ssh/ssh_known_hosts:3 marks `@revoked`"
        );
    }

    /// Every resolved address is tried, in order, until one answers: a
    /// first address that refuses does not end the attempt, and when all
    /// fail, the error names each.
    #[test]
    fn every_address_is_tried_in_order() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        // a port that refuses: bound, then released
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let v6_closed: SocketAddr = format!("[::1]:{}", closed.port()).parse().unwrap();
        let limit = Duration::from_secs(5);
        let deadline = Instant::now() + limit;
        let stream = connect_any("web", &[v6_closed, closed, open], deadline, limit)
            .expect("the third address answers");
        assert_eq!(stream.peer_addr().unwrap(), open);
        drop(listener);

        let e = connect_any("web", &[v6_closed, closed], deadline, limit).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("cannot connect to `web`: every address failed: "),
            "{text}"
        );
        assert!(text.contains(&format!("{v6_closed} (")), "{text}");
        assert!(text.contains(&format!("{closed} (")), "{text}");
        // one address: the error is that address's
        let e = connect_any("web", &[closed], deadline, limit).unwrap_err();
        assert!(
            matches!(&e, HostError::Connect { addr, .. } if *addr == closed.to_string()),
            "{e}"
        );
        // out of time: a timeout naming what was tried
        let e = connect_any("web", &[closed], Instant::now(), limit).unwrap_err();
        assert!(matches!(e, HostError::Timeout { .. }), "{e}");
    }

    /// Names resolve within the deadline; literals (IPv6 with or without
    /// brackets) need no resolver.
    #[test]
    fn names_resolve_within_the_deadline() {
        let limit = Duration::from_secs(5);
        let soon = Instant::now() + limit;
        assert_eq!(
            resolve("[2001:db8::1]", 22, soon, limit).unwrap(),
            vec!["[2001:db8::1]:22".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve("2001:db8::1", 2222, soon, limit).unwrap(),
            vec!["[2001:db8::1]:2222".parse::<SocketAddr>().unwrap()]
        );
        assert!(resolve("localhost", 22, soon, limit)
            .unwrap()
            .iter()
            .all(|a| a.ip().is_loopback()));
        // past the deadline, the resolver is not waited for
        let started = Instant::now();
        let e = resolve("localhost", 22, Instant::now(), limit).unwrap_err();
        assert!(matches!(e, HostError::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn host_key_preference_puts_known_types_first() {
        assert_eq!(
            host_key_preference(&["ecdsa-sha2-nistp256".into()]),
            "ecdsa-sha2-nistp256,ssh-ed25519,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,\
             rsa-sha2-512,rsa-sha2-256,ssh-rsa"
        );
        assert!(
            host_key_preference(&["ssh-rsa".into(), "ssh-ed25519".into()])
                .starts_with("ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa,ecdsa")
        );
        let all = host_key_preference(&[]);
        assert!(all.starts_with("ssh-ed25519,ecdsa"), "{all}");
        // a type we cannot negotiate leaves the usual order
        assert_eq!(
            host_key_preference(&["sk-ssh-ed25519@openssh.com".into()]),
            all
        );
    }
}
