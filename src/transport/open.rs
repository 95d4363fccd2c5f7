//! Opening an SSH connection to a target: the byte stream to it (a TCP
//! connection, or a tunnel through its jump hosts, see [`super::jump`]),
//! then the login over it ([`super::ssh`]), sharing what the run's
//! [`Reach`] keeps.

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::jump::route;
use super::reach::Reach;
use super::ssh::hostkeys::check_host_key;
use super::ssh::kex;
use super::ssh::login::{handshake, login};
use super::ssh::network::tcp_connect;
use super::ssh::SshConnection;
use super::{HostKeyPolicy, SshTarget};
use crate::error::HostError;
use crate::openssh::known_hosts;

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

impl Carrier {
    /// The key exchange list of the server at the other end of this fresh
    /// stream ([`kex::server_offer`]), read by `deadline`; `None` when it
    /// cannot be read.
    fn server_kex(self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        match self {
            Carrier::Direct(mut s) => {
                s.set_nonblocking(false).ok()?;
                s.set_read_timeout(Some(left)).ok()?;
                s.set_write_timeout(Some(left)).ok()?;
                kex::server_offer(&mut s).ok()
            }
            Carrier::Tunnel(mut s) => {
                s.set_nonblocking(false).ok()?;
                s.set_read_timeout(Some(left)).ok()?;
                s.set_write_timeout(Some(left)).ok()?;
                kex::server_offer(&mut s).ok()
            }
        }
    }
}

/// A handshake that found no key exchange in common, completed with the
/// list the server offers (read on a connection of its own, by a new
/// `limit`); any other error as it is.
fn with_server_kex(e: HostError, target: &SshTarget, reach: &Reach, limit: Duration) -> HostError {
    match e {
        HostError::KexNoMatch {
            host,
            offered,
            server: None,
        } => {
            let deadline = Instant::now() + limit;
            let server = carrier(target, reach, deadline, limit)
                .ok()
                .and_then(|c| c.server_kex(deadline));
            HostError::KexNoMatch {
                host,
                offered,
                server,
            }
        }
        e => e,
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
        )
        .map_err(|e| with_server_kex(e, target, reach, limit))?;
        drop(turn);
        Ok(SshConnection::logged_in(session, target))
    }
}

/// What `deployer hosts --check` learns of a host with a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCheck {
    /// The decision on its host key: `known: TYPE SHA256:…`, or that
    /// accept-new would record it.
    pub key: String,
    /// The key exchange algorithm negotiated (libssh2's name for it).
    pub kex: String,
}

/// What deployer decides about `target`'s host key, and the key exchange
/// negotiated, found with a handshake only (the target is not logged in
/// to; its jump hosts are, with `reach`, since the tunnel needs them).
/// Nothing is recorded, whatever the new-key policy: this is for
/// `deployer hosts --check`.
pub fn probe_host_key(target: &SshTarget, reach: &Reach) -> Result<HostCheck, HostError> {
    let _turn = reach.starts.turn(target);
    let limit = target.connect_timeout;
    let deadline = Instant::now() + limit;
    let stream = carrier(target, reach, deadline, limit)?;
    let (session, files) = handshake(stream, target, &reach.known, deadline, limit)
        .map_err(|e| with_server_kex(e, target, reach, limit))?;
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
    let kex = session
        .methods(ssh2::MethodType::Kex)
        .unwrap_or("unknown")
        .to_string();
    let verdict = match check_host_key(&session, &strict, &files, &reach.known) {
        Ok(()) => Ok(format!("known: {offered}")),
        Err(HostError::HostKeyUnknown { .. }) if target.policy == HostKeyPolicy::AcceptNew => Ok(
            format!("not known: {offered}; the next connection records it (accept-new)"),
        ),
        Err(e) => Err(e),
    };
    let _ = session.disconnect(None, "deployer hosts --check", None);
    verdict.map(|key| HostCheck { key, kex })
}
