//! Jump hosts (`ProxyJump`): sessions to jump hosts, kept and shared by
//! every target behind them, and the tunnels (`direct-tcpip` channels)
//! through which targets are reached.
//!
//! libssh2 needs a socket for a session, so each tunnel is one end of a
//! `UnixStream` pair: the target's session owns that end, and the jump
//! session's pump thread copies between the other end and the channel.
//! One pump thread per jump session serves all its tunnels (libssh2
//! serializes the session anyway), waiting on every socket at once. A jump
//! session is opened once per run and chain, however many targets start
//! at once behind it: a bastion's sshd (`MaxStartups`) drops connections
//! that arrive in a crowd.
//!
//! Each jump host is checked (host key, login) exactly as a target is;
//! nothing here decides trust.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, Session};

use super::known_cache::KnownHostsCache;
use super::lock;
use super::ssh::ext::is_session_gone;
use super::ssh::keepalive::{keepalive_interval, server_alive_limit, too_silent};
use super::ssh::login::login;
use super::ssh::network::tcp_connect;
use super::SshTarget;
use crate::error::HostError;
use crate::sys::pollfd;

/// The most jump hosts a target may be behind (OpenSSH has no limit, but
/// a jump host whose own `ProxyJump` leads back to itself would loop).
pub const MAX_HOPS: usize = 16;

/// The jump hosts to go through to reach `target`, first hop first: its
/// `jump` list, preceded by the first hop's own jump hosts (as OpenSSH
/// does for `-J a,b`: the later hops are reached through the earlier
/// ones, whatever their own `ProxyJump`; the first hop is reached as `ssh`
/// would reach it).
pub fn route(target: &SshTarget) -> Result<Vec<SshTarget>, HostError> {
    let too_many = || {
        HostError::Ssh(format!(
            "`{}` is behind more than {MAX_HOPS} jump hosts (does a ProxyJump lead back to itself?)",
            target.alias
        ))
    };
    let mut hops = target.jump.clone();
    while let Some(first) = hops.first_mut().filter(|h| !h.jump.is_empty()) {
        let before = std::mem::take(&mut first.jump);
        hops.splice(0..0, before);
        if hops.len() > MAX_HOPS {
            return Err(too_many());
        }
    }
    if hops.len() > MAX_HOPS {
        return Err(too_many());
    }
    // each hop is reached through those before it: its own list is done
    for hop in &mut hops {
        hop.jump.clear();
    }
    Ok(hops)
}

/// Sessions to jump hosts, kept for the run and shared by the targets
/// behind them; keyed by the chain of hops that leads to each.
#[derive(Default)]
pub struct Jumps {
    slots: Mutex<Vec<(Vec<SshTarget>, Arc<Slot>)>>,
}

/// The session to one jump host, as it is being opened or once open.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

#[derive(Default)]
enum SlotState {
    #[default]
    Empty,
    /// Being opened by one thread; attempt number.
    Opening(u64),
    Ready(Arc<JumpSession>),
    /// The attempt failed; the threads that waited for it share the error.
    Failed(u64, HostError),
}

impl Jumps {
    /// The session to the last of `hops`, reached through the others;
    /// opened unless open already (or being opened: then waited for, until
    /// `deadline`).
    pub(super) fn session(
        &self,
        hops: &[SshTarget],
        known: &KnownHostsCache,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Arc<JumpSession>, HostError> {
        let slot = {
            let mut slots = lock(&self.slots);
            match slots.iter().find(|(chain, _)| chain.as_slice() == hops) {
                Some((_, slot)) => Arc::clone(slot),
                None => {
                    let slot = Arc::new(Slot::default());
                    slots.push((hops.to_vec(), Arc::clone(&slot)));
                    slot
                }
            }
        };
        let hop = hops.last().expect("at least one hop");
        let mut state = lock(&slot.state);
        let mut waited = None;
        let attempt = loop {
            match &*state {
                SlotState::Ready(j) if j.is_alive() => return Ok(Arc::clone(j)),
                SlotState::Opening(n) => {
                    waited = Some(*n);
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(HostError::Timeout {
                            phase: format!("waiting for the jump host `{}`", hop.alias),
                            after: limit,
                        });
                    }
                    state = slot
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                SlotState::Failed(n, e) if Some(*n) == waited => return Err(e.clone()),
                SlotState::Failed(n, _) => break n + 1,
                SlotState::Empty | SlotState::Ready(_) => break waited.unwrap_or(0) + 1,
            }
        };
        *state = SlotState::Opening(attempt);
        drop(state);
        let opened = self.open(hops, known, deadline, limit);
        let mut state = lock(&slot.state);
        *state = match &opened {
            Ok(j) => SlotState::Ready(Arc::clone(j)),
            Err(e) => SlotState::Failed(attempt, e.clone()),
        };
        slot.changed.notify_all();
        opened
    }

    fn open(
        &self,
        hops: &[SshTarget],
        known: &KnownHostsCache,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Arc<JumpSession>, HostError> {
        let (hop, before) = hops.split_last().expect("at least one hop");
        let session = if before.is_empty() {
            let stream = tcp_connect(hop, deadline, limit)?;
            login(stream, hop, known, deadline, limit)?
        } else {
            let through = self.session(before, known, deadline, limit)?;
            login(
                through.tunnel(hop, deadline, limit)?,
                hop,
                known,
                deadline,
                limit,
            )?
        };
        JumpSession::start(session, hop)
    }
}

/// An open session to a jump host, and its pump thread.
pub(super) struct JumpSession {
    alias: String,
    requests: Mutex<Sender<Request>>,
    /// A byte written here wakes the pump; dropped, it tells it to end
    /// once its tunnels are closed.
    wake: UnixStream,
    alive: Arc<AtomicBool>,
}

/// A tunnel wanted to `host:port`; the answer is the target's end.
struct Request {
    host: String,
    port: u16,
    answer: Sender<Result<UnixStream, String>>,
}

impl JumpSession {
    fn start(session: Session, hop: &SshTarget) -> Result<Arc<JumpSession>, HostError> {
        let failed = |e: std::io::Error| HostError::Ssh(format!("starting a tunnel pump: {e}"));
        let (wake, woken) = UnixStream::pair().map_err(failed)?;
        woken.set_nonblocking(true).map_err(failed)?;
        let (requests, incoming) = mpsc::channel();
        let alive = Arc::new(AtomicBool::new(true));
        let pump = Pump {
            session,
            incoming,
            woken,
            alive: Arc::clone(&alive),
            pending: VecDeque::new(),
            tunnels: Vec::new(),
            keepalive: keepalive_interval(hop),
            silence: server_alive_limit(hop),
            orphaned: false,
        };
        std::thread::Builder::new()
            .name(format!("jump {}", hop.alias))
            .spawn(move || pump.run())
            .map_err(failed)?;
        Ok(Arc::new(JumpSession {
            alias: hop.alias.clone(),
            requests: Mutex::new(requests),
            wake,
            alive,
        }))
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// A tunnel through this jump host to `target` (its host name is
    /// resolved by the jump host, as OpenSSH has it), by `deadline`.
    pub(super) fn tunnel(
        &self,
        target: &SshTarget,
        deadline: Instant,
        limit: Duration,
    ) -> Result<UnixStream, HostError> {
        let (answer, answered) = mpsc::channel();
        let gone = || {
            HostError::Disconnected(format!(
                "opening a tunnel to `{}`: the session to the jump host `{}` is gone",
                target.alias, self.alias
            ))
        };
        let request = Request {
            host: target.host_name.clone(),
            port: target.port,
            answer,
        };
        lock(&self.requests).send(request).map_err(|_| gone())?;
        let _ = (&self.wake).write(&[1]);
        let left = deadline.saturating_duration_since(Instant::now());
        match answered.recv_timeout(left) {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(why)) => Err(HostError::Connect {
                addr: format!(
                    "{}:{} through the jump host `{}`",
                    target.host_name, target.port, self.alias
                ),
                message: why,
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(HostError::Timeout {
                phase: format!(
                    "opening a tunnel to `{}` through the jump host `{}`",
                    target.alias, self.alias
                ),
                after: limit,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}

/// One tunnel: a channel and the pump's end of the target's socket.
struct Tunnel {
    channel: Channel,
    socket: UnixStream,
    /// Read from the channel, not yet written to the socket.
    to_socket: Vec<u8>,
    /// Read from the socket, not yet written to the channel.
    to_channel: Vec<u8>,
    /// The channel reached end of file (the socket was shut for writing).
    channel_done: bool,
    /// The target's session closed its socket: the channel is closing.
    socket_done: bool,
    closed: bool,
}

/// The pump thread's state: the jump session and its tunnels.
struct Pump {
    session: Session,
    incoming: Receiver<Request>,
    woken: UnixStream,
    alive: Arc<AtomicBool>,
    pending: VecDeque<Request>,
    tunnels: Vec<Tunnel>,
    keepalive: Option<Duration>,
    /// How long the jump host may send nothing (`ServerAliveCountMax`).
    silence: Option<Duration>,
    /// The [`JumpSession`] is gone: no more requests, no wake-ups.
    orphaned: bool,
}

/// Why the pump stopped.
enum End {
    /// No one wants more tunnels and none is open.
    Done,
    /// The jump session failed.
    Lost(String),
}

const CHUNK: usize = 32 * 1024;

/// The longest a pump with open tunnels sleeps (see [`Pump::wait`]).
const RECHECK: Duration = Duration::from_millis(50);

impl Pump {
    fn run(mut self) {
        if let Some(every) = self.keepalive {
            let secs = u32::try_from(every.as_secs()).unwrap_or(u32::MAX).max(1);
            self.session.set_keepalive(true, secs);
        }
        let end = self.pump();
        self.alive.store(false, Ordering::SeqCst);
        let why = match end {
            End::Done => {
                let _ = self.session.disconnect(None, "deployer done", None);
                return;
            }
            End::Lost(why) => why,
        };
        for request in self.pending.drain(..) {
            let _ = request.answer.send(Err(why.clone()));
        }
        while let Ok(request) = self.incoming.try_recv() {
            let _ = request.answer.send(Err(why.clone()));
        }
        // the tunnels' sockets close as they are dropped: their sessions
        // see the end of the stream at once
    }

    fn pump(&mut self) -> End {
        let mut buf = vec![0u8; CHUNK];
        let mut next_keepalive = Instant::now();
        loop {
            let mut progressed = false;
            loop {
                match self.incoming.try_recv() {
                    Ok(r) => self.pending.push_back(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.orphaned = true;
                        break;
                    }
                }
            }
            let mut drained = [0u8; 64];
            while matches!((&self.woken).read(&mut drained), Ok(n) if n > 0) {}
            if let Err(why) = self.open_pending(&mut progressed) {
                return End::Lost(why);
            }
            for tunnel in &mut self.tunnels {
                match tunnel.step(&self.session, &mut buf) {
                    Ok(moved) => progressed |= moved,
                    Err(e) if is_session_gone(&e) => {
                        return End::Lost(format!("the jump session failed: {}", e.message()))
                    }
                    Err(_) => tunnel.closed = true,
                }
            }
            self.tunnels.retain(|t| !t.closed);
            if self.orphaned && self.pending.is_empty() && self.tunnels.is_empty() {
                return End::Done;
            }
            if self.keepalive.is_some() && Instant::now() >= next_keepalive {
                match self.session.keepalive_send() {
                    Ok(secs) => {
                        next_keepalive =
                            Instant::now() + Duration::from_secs(u64::from(secs.max(1)))
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => return End::Lost(format!("a keepalive failed: {}", e.message())),
                }
                if let Some(why) = too_silent(self.session.as_raw_fd(), self.silence) {
                    return End::Lost(why);
                }
            }
            if !progressed {
                let until = match self.keepalive {
                    Some(_) => next_keepalive,
                    None => Instant::now() + Duration::from_secs(1),
                };
                self.wait(until);
            }
        }
    }

    /// Go on opening the first requested tunnel (libssh2 opens one
    /// channel at a time); an error only when the session failed.
    fn open_pending(&mut self, progressed: &mut bool) -> Result<(), String> {
        let Some(request) = self.pending.front() else {
            return Ok(());
        };
        let opened = self
            .session
            .channel_direct_tcpip(&request.host, request.port, None);
        let channel = match opened {
            Err(e) if is_eagain(&e) => return Ok(()),
            Err(e) if is_session_gone(&e) => {
                return Err(format!("the jump session failed: {}", e.message()))
            }
            Err(e) => {
                let request = self.pending.pop_front().expect("a request");
                let _ = request.answer.send(Err(e.message().to_string()));
                *progressed = true;
                return Ok(());
            }
            Ok(channel) => channel,
        };
        let request = self.pending.pop_front().expect("a request");
        *progressed = true;
        let pair = UnixStream::pair().and_then(|(mine, theirs)| {
            mine.set_nonblocking(true)?;
            Ok((mine, theirs))
        });
        match pair {
            Ok((mine, theirs)) => {
                // an answer no one waits for any more: the tunnel closes
                if request.answer.send(Ok(theirs)).is_ok() {
                    self.tunnels.push(Tunnel {
                        channel,
                        socket: mine,
                        to_socket: Vec::new(),
                        to_channel: Vec::new(),
                        channel_done: false,
                        socket_done: false,
                        closed: false,
                    });
                } else {
                    self.tunnels.push(Tunnel::closing(channel, mine));
                }
            }
            Err(e) => {
                // the channel is dropped: libssh2 closes it
                let _ = request
                    .answer
                    .send(Err(format!("cannot make a socket pair: {e}")));
            }
        }
        Ok(())
    }

    /// Wait (at most until `until`) for the jump session's socket or a
    /// tunnel's socket to be ready, or for a request. With tunnels open, at
    /// most [`RECHECK`]: reading one channel may have queued, inside
    /// libssh2, data for a channel already read in the same pass, which no
    /// socket will announce.
    fn wait(&self, until: Instant) {
        let mut fds = Vec::with_capacity(self.tunnels.len() + 2);
        let session_events = match self.session.block_directions() {
            BlockDirections::Outbound => libc::POLLOUT,
            BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
            _ => libc::POLLIN,
        };
        fds.push(pollfd(self.session.as_raw_fd(), session_events));
        if !self.orphaned {
            // once orphaned, the wake socket is at end of file for good
            fds.push(pollfd(self.woken.as_raw_fd(), libc::POLLIN));
        }
        for t in &self.tunnels {
            let mut events = 0;
            if t.to_channel.is_empty() && !t.socket_done {
                events |= libc::POLLIN;
            }
            if !t.to_socket.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(pollfd(t.socket.as_raw_fd(), events));
        }
        let most = if self.tunnels.is_empty() {
            Duration::from_secs(1)
        } else {
            RECHECK
        };
        let left = until.saturating_duration_since(Instant::now()).min(most);
        crate::sys::poll(&mut fds, left.max(Duration::from_millis(1)));
    }
}

impl Tunnel {
    /// A tunnel no one wants: close its channel.
    fn closing(channel: Channel, socket: UnixStream) -> Tunnel {
        Tunnel {
            channel,
            socket,
            to_socket: Vec::new(),
            to_channel: Vec::new(),
            channel_done: true,
            socket_done: true,
            closed: false,
        }
    }

    /// Move what can be moved, both ways, without blocking; whether
    /// anything moved. An error is libssh2's, about the channel or the
    /// whole session.
    fn step(&mut self, session: &Session, buf: &mut [u8]) -> Result<bool, ssh2::Error> {
        let mut moved = false;
        if !self.socket_done {
            // channel -> socket
            if self.to_socket.is_empty() && !self.channel_done {
                match self.channel.read(buf) {
                    Ok(0) => {
                        if self.channel.eof() {
                            self.channel_done = true;
                            let _ = self.socket.shutdown(std::net::Shutdown::Write);
                            moved = true;
                        }
                    }
                    Ok(n) => {
                        self.to_socket.extend_from_slice(&buf[..n]);
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return Err(channel_error(session)),
                }
            }
            if !self.to_socket.is_empty() {
                match self.socket.write(&self.to_socket) {
                    Ok(n) => {
                        self.to_socket.drain(..n);
                        moved = true;
                        if self.to_socket.is_empty() && self.channel_done {
                            let _ = self.socket.shutdown(std::net::Shutdown::Write);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    // the target's session is gone
                    Err(_) => self.socket_done = true,
                }
            }
            // socket -> channel
            if self.to_channel.is_empty() && !self.socket_done {
                match self.socket.read(buf) {
                    Ok(0) => {
                        self.socket_done = true;
                        moved = true;
                    }
                    Ok(n) => {
                        self.to_channel.extend_from_slice(&buf[..n]);
                        moved = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => {
                        self.socket_done = true;
                        moved = true;
                    }
                }
            }
            if !self.to_channel.is_empty() {
                match self.channel.write(&self.to_channel) {
                    Ok(n) => {
                        self.to_channel.drain(..n);
                        moved |= n > 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return Err(channel_error(session)),
                }
            }
        }
        if self.socket_done {
            // the target's session ended: what it sent last, then close
            if !self.to_channel.is_empty() {
                match self.channel.write(&self.to_channel) {
                    Ok(n) => {
                        self.to_channel.drain(..n);
                        return Ok(n > 0);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(moved),
                    Err(_) => return Err(channel_error(session)),
                }
            }
            match self.channel.close() {
                Ok(()) => {
                    self.closed = true;
                    moved = true;
                }
                Err(e) if is_eagain(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(moved)
    }
}

/// What failed when a channel call did: the session's last error (the
/// `ssh2` crate's I/O errors keep only libssh2's words, not its code).
fn channel_error(session: &Session) -> ssh2::Error {
    ssh2::Error::last_session_error(session).unwrap_or_else(ssh2::Error::unknown)
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(-37)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, jump: Vec<SshTarget>) -> SshTarget {
        SshTarget {
            jump,
            ..SshTarget::example(name, name)
        }
    }

    fn names(hops: &[SshTarget]) -> Vec<&str> {
        hops.iter().map(|h| h.alias.as_str()).collect()
    }

    #[test]
    fn route_puts_the_first_hops_own_jump_hosts_first() {
        assert!(route(&host("t", vec![])).unwrap().is_empty());
        let two = host("t", vec![host("a", vec![]), host("b", vec![])]);
        assert_eq!(names(&route(&two).unwrap()), ["a", "b"]);
        // a's own ProxyJump (z) counts; b's is overridden by the chain
        let nested = host(
            "t",
            vec![
                host("a", vec![host("z", vec![])]),
                host("b", vec![host("y", vec![])]),
            ],
        );
        let hops = route(&nested).unwrap();
        assert_eq!(names(&hops), ["z", "a", "b"]);
        assert!(hops.iter().all(|h| h.jump.is_empty()));
    }

    #[test]
    fn route_refuses_a_loop() {
        let mut deep = host("a", vec![]);
        for _ in 0..=MAX_HOPS {
            deep = host("a", vec![deep]);
        }
        let e = route(&host("t", vec![deep])).unwrap_err();
        assert!(e.to_string().contains("more than 16 jump hosts"), "{e}");
    }
}
