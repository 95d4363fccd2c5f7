//! The key exchange: which algorithms deployer offers a host (the list
//! `KexAlgorithms` makes, see [`crate::openssh::kex`], kept to those the
//! linked libssh2 runs), and, when a host agrees on none, the list the
//! server offers, read from its first packet (`SSH_MSG_KEXINIT`, which
//! is sent in the clear) on a connection of its own, so the error can name
//! both lists.

use std::io::{self, Read, Write};

use ssh2::{MethodType, Session};

use crate::error::HostError;
use crate::transport::SshTarget;

/// libssh2's names that are not key exchanges but signals (RFC 8308's
/// extension negotiation, OpenSSH's strict key exchange): libssh2 always
/// sends its own, and a server's are not choices.
fn is_signal(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

/// The key exchange algorithms the linked libssh2 runs, in its order.
pub fn runnable() -> Vec<&'static str> {
    Session::new().map(|s| runnable_in(&s)).unwrap_or_default()
}

/// [`runnable`], asked of a session at hand.
fn runnable_in(session: &Session) -> Vec<&'static str> {
    session
        .supported_algs(MethodType::Kex)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !is_signal(n))
        .collect()
}

/// The algorithms to offer `target`, best first: its `KexAlgorithms`
/// list kept to `runnable`'s names.
///
/// # Errors
///
/// [`HostError::KexNoneRunnable`] when none is left: nothing is sent to
/// the host.
pub fn offered(target: &SshTarget, runnable: &[&str]) -> Result<Vec<String>, HostError> {
    let offered: Vec<String> = target
        .kex
        .iter()
        .filter(|n| runnable.contains(&n.as_str()))
        .cloned()
        .collect();
    if offered.is_empty() {
        return Err(HostError::KexNoneRunnable {
            host: target.alias.clone(),
            listed: target.kex.clone(),
            runnable: runnable.iter().map(|n| n.to_string()).collect(),
        });
    }
    Ok(offered)
}

/// Before the handshake: offer `target`'s key exchange algorithms
/// ([`offered`]), returning them for the error of a failed handshake.
pub fn prefer(session: &Session, target: &SshTarget) -> Result<Vec<String>, HostError> {
    let offered = offered(target, &runnable_in(session))?;
    session
        .method_pref(MethodType::Kex, &offered.join(","))
        .map_err(|e| HostError::Ssh(format!("setting the key exchange algorithms: {e}")))?;
    Ok(offered)
}

/// The most a line before the server's version line, and the packet
/// after it, may hold: far more than any real server sends.
const MAX_LINE: usize = 8 * 1024;
const MAX_PACKET: usize = 256 * 1024;

/// The key exchange algorithms the server at the other end of `stream`
/// offers, as it lists them (unchecked host text, for
/// [`crate::text::clipped_line`]), its signals left out: sends a version
/// line, reads the server's, then its first packet.
///
/// # Errors
///
/// An I/O error, or [`io::ErrorKind::InvalidData`] when the server sends
/// no version line or a first packet that is not a key exchange init.
pub fn server_offer<S: Read + Write>(stream: &mut S) -> io::Result<String> {
    stream.write_all(b"SSH-2.0-deployer\r\n")?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    // lines before the version line are allowed (RFC 4253, 4.2)
    let mut lines = 0;
    loop {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while line.len() < MAX_LINE {
            stream.read_exact(&mut byte)?;
            line.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        if line.starts_with(b"SSH-") {
            break;
        }
        lines += 1;
        if lines > 32 || line.len() >= MAX_LINE {
            return Err(bad("no SSH version line"));
        }
    }
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_be_bytes(length) as usize;
    if length > MAX_PACKET {
        return Err(bad("an oversized first packet"));
    }
    let mut packet = vec![0u8; length];
    stream.read_exact(&mut packet)?;
    kexinit_kex_list(&packet).ok_or_else(|| bad("a first packet that is not SSH_MSG_KEXINIT"))
}

/// The key exchange list of an unencrypted packet (after its length):
/// padding length, payload, padding; the payload is `SSH_MSG_KEXINIT`
/// (20), a 16-byte cookie, then the list as a string.
fn kexinit_kex_list(packet: &[u8]) -> Option<String> {
    let padding = usize::from(*packet.first()?);
    let payload = packet.get(1..packet.len().checked_sub(padding)?)?;
    if payload.first() != Some(&20) {
        return None;
    }
    let rest = payload.get(17..)?;
    let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let list = rest.get(4..4usize.checked_add(length)?)?;
    let text = String::from_utf8_lossy(list);
    Some(
        text.split(',')
            .filter(|n| !is_signal(n))
            .collect::<Vec<_>>()
            .join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linked_libssh2_runs_ml_kem() {
        // Built against OpenSSL 3.5 or newer (the vendored one), libssh2
        // compiles `mlkem768x25519-sha256` in; against Debian 12's 3.0 it
        // would not.
        let names = runnable();
        assert!(names.contains(&"mlkem768x25519-sha256"), "{names:?}");
        assert!(names.contains(&"curve25519-sha256"), "{names:?}");
        assert!(!names.iter().any(|n| is_signal(n)), "{names:?}");
    }

    #[test]
    fn the_default_offer_is_openssh_10s_order_kept_to_what_libssh2_runs() {
        let target = SshTarget::example("web-1", "10.0.0.1");
        let offered = offered(&target, &runnable()).unwrap();
        assert_eq!(
            offered,
            [
                "mlkem768x25519-sha256",
                "curve25519-sha256",
                "curve25519-sha256@libssh.org",
                "ecdh-sha2-nistp256",
                "ecdh-sha2-nistp384",
                "ecdh-sha2-nistp521",
                "diffie-hellman-group-exchange-sha256",
                "diffie-hellman-group16-sha512",
                "diffie-hellman-group18-sha512",
                "diffie-hellman-group14-sha256",
            ]
        );
    }

    #[test]
    fn a_list_of_nothing_libssh2_runs_is_refused_naming_both_lists() {
        let target = SshTarget {
            kex: vec!["sntrup761x25519-sha512@openssh.com".into()],
            ..SshTarget::example("web-1", "10.0.0.1")
        };
        let e = offered(&target, &runnable()).unwrap_err().to_string();
        assert!(e.contains("`web-1`"), "{e}");
        assert!(e.contains("sntrup761x25519-sha512@openssh.com"), "{e}");
        assert!(e.contains("mlkem768x25519-sha256"), "{e}");
    }

    fn kexinit(list: &str, padding: u8) -> Vec<u8> {
        let mut p = vec![padding, 20];
        p.extend([7u8; 16]);
        p.extend((list.len() as u32).to_be_bytes());
        p.extend(list.as_bytes());
        p.extend(0u32.to_be_bytes());
        p.extend(vec![0u8; usize::from(padding)]);
        p
    }

    #[test]
    fn the_servers_list_is_read_from_its_kexinit() {
        let p = kexinit("mlkem768x25519-sha256,curve25519-sha256,ext-info-s", 6);
        assert_eq!(
            kexinit_kex_list(&p).as_deref(),
            Some("mlkem768x25519-sha256,curve25519-sha256")
        );
        // not a KEXINIT, a cut packet, a list longer than the packet
        let mut other = p.clone();
        other[1] = 21;
        assert_eq!(kexinit_kex_list(&other), None);
        assert_eq!(kexinit_kex_list(&p[..10]), None);
        assert_eq!(kexinit_kex_list(&[200, 20]), None);
        let mut long = kexinit("a", 0);
        long[20] = 0xff;
        assert_eq!(kexinit_kex_list(&long), None);
    }

    #[test]
    fn the_server_offer_is_read_after_the_version_exchange() {
        struct Server(io::Cursor<Vec<u8>>, Vec<u8>);
        impl Read for Server {
            fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                self.0.read(b)
            }
        }
        impl Write for Server {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.1.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let packet = kexinit("curve25519-sha256", 4);
        let mut bytes = b"hello\r\nSSH-2.0-OpenSSH_9.2p1\r\n".to_vec();
        bytes.extend((packet.len() as u32).to_be_bytes());
        bytes.extend(&packet);
        let mut server = Server(io::Cursor::new(bytes), Vec::new());
        assert_eq!(server_offer(&mut server).unwrap(), "curve25519-sha256");
        assert!(server.1.starts_with(b"SSH-2.0-"));
        let mut silent = Server(io::Cursor::new(b"no ssh here\n".to_vec()), Vec::new());
        assert!(server_offer(&mut silent).is_err());
    }
}
