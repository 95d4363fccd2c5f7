//! The login over a byte stream (TCP or a tunnel through a jump host):
//! the SSH handshake, the host key check and authentication, by a deadline.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh2::{MethodType, Session};

use super::auth::authenticate;
use super::ext::{hear_disconnects, ssh_err, LIBSSH2_ERROR_KEX_FAILURE};
use super::hostkeys::{check_host_key, prefer_known_host_keys};
use super::kex;
use crate::error::HostError;
use crate::openssh::known_hosts::KnownHostsFile;
use crate::transport::known_cache::KnownHostsCache;
use crate::transport::SshTarget;

/// A new SSH session over `stream`, the host-key algorithms chosen from
/// known_hosts (read through `known`), and the handshake done by
/// `deadline`. Returns the session and the known_hosts files, for
/// [`check_host_key`]. No key exchange in common is
/// [`HostError::KexNoMatch`] without the server's list (the caller may
/// read it, see [`kex::server_offer`]).
pub(in crate::transport) fn handshake<S: AsRawFd + 'static>(
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
    let offered = kex::prefer(&session, target)?;
    let started = Instant::now();
    session.handshake().map_err(|e| {
        if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_KEX_FAILURE) {
            HostError::KexNoMatch {
                host: target.alias.clone(),
                offered,
                server: None,
            }
        } else {
            ssh_err("waiting for the SSH handshake", &e, limit)
        }
    })?;
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
pub(in crate::transport) fn login<S: AsRawFd + 'static>(
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
