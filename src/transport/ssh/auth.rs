//! Authentication: the agent, then the key files (Ed25519 keys signed
//! here, see [`super::ext`]), as OpenSSH offers them, by a deadline.

use std::fs;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh2::Session;

use super::ext::{
    is_session_gone, take_disconnect_reason, userauth_ed25519, LIBSSH2_ERROR_TIMEOUT,
};
use crate::error::HostError;
use crate::transport::identity::{self, Attempt};
use crate::transport::{is_out_of_descriptors, SshTarget};

/// Give the next blocking libssh2 call only what is left of the connect
/// deadline, so that `connect_timeout` bounds the whole login, not each step.
pub(super) fn remaining(
    session: &Session,
    deadline: Instant,
    limit: Duration,
) -> Result<(), HostError> {
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
pub(super) fn authenticate(
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
pub(super) struct KeyFile {
    path: PathBuf,
    /// Its public key, when known without a passphrase.
    public: Option<Vec<u8>>,
    private: KeyText,
}

/// The private key of an identity file, or why it is not offered itself.
pub(super) enum KeyText {
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
pub(super) fn read_key_file(path: &Path, tried: &mut Vec<String>) -> Result<KeyFile, HostError> {
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
pub(super) fn session_alive(session: &Session) -> bool {
    let mut fds = [crate::sys::pollfd(session.as_raw_fd(), libc::POLLIN)];
    let ready = crate::sys::poll(&mut fds, Duration::ZERO);
    if ready <= 0 {
        return true;
    }
    if fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return false;
    }
    // readable: data, or end of file (a peek, which leaves the data for
    // libssh2, tells which)
    crate::sys::peek(fds[0].fd) != 0
}

/// Connect to the ssh-agent listening on `socket`. No agent there (the
/// socket is gone or refuses) is not an error: `tried` says so and the key
/// files are tried next. Running out of descriptors is an error.
pub(super) fn open_agent(
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
