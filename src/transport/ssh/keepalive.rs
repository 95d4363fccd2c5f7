//! Keepalives and silence: how often to send keepalives to a host, and
//! when a host that sends nothing is given up on (`ServerAliveInterval`,
//! `ServerAliveCountMax`, the kernel's count of the time since data last
//! arrived).

use std::time::Duration;

use crate::transport::{SshTarget, KEEPALIVE};

/// How often to send keepalives to `target`: its `ServerAliveInterval`
/// when set (`None`, none at all, for 0, as with OpenSSH), else
/// [`KEEPALIVE`].
pub(in crate::transport) fn keepalive_interval(target: &SshTarget) -> Option<Duration> {
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
pub(in crate::transport) fn server_alive_limit(target: &SshTarget) -> Option<Duration> {
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
pub(in crate::transport) fn too_silent(
    fd: std::os::fd::RawFd,
    limit: Option<Duration>,
) -> Option<String> {
    let limit = limit?;
    let silent = crate::sys::tcp_last_data_recv(fd)?;
    (silent > limit).then(|| {
        format!(
            "the host sent nothing for {}s, keepalives unanswered (ServerAliveInterval x ServerAliveCountMax: {}s)",
            silent.as_secs(),
            limit.as_secs()
        )
    })
}
