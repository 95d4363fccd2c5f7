//! The network: resolving a host name and connecting over TCP, both by a
//! deadline, every address tried in the resolver's order.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::error::HostError;
use crate::transport::{io_error, is_out_of_descriptors, SshTarget};

/// A TCP connection to `target`, by `deadline`: its name resolved (on a
/// thread, given up on at the deadline: the resolver cannot be
/// interrupted), then every address tried in the resolver's order, IPv6
/// and IPv4 alike, as OpenSSH does, until one answers.
pub(in crate::transport) fn tcp_connect(
    target: &SshTarget,
    deadline: Instant,
    limit: Duration,
) -> Result<TcpStream, HostError> {
    let addrs = resolve(&target.host_name, target.port, deadline, limit)?;
    connect_any(&target.host_name, &addrs, deadline, limit)
}

/// The addresses of `host` (a name or an IP literal, IPv6 with or without
/// brackets) on `port`, by `deadline`.
pub(super) fn resolve(
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
pub(super) fn connect_any(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
