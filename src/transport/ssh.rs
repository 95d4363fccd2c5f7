//! SSH connections through the `ssh2` crate (libssh2): connect with a
//! deadline, verify the host key against known_hosts, authenticate with the
//! agent then key files, and run commands on channels of one session.
//!
//! Commands run in non-blocking mode with a poll loop, so that a deadline is
//! honoured even when a host stops answering mid-command, and stdout and
//! stderr are read together (a full stderr window cannot stall stdout).

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ssh2::{
    BlockDirections, Channel, CheckResult, HashType, HostKeyType, KnownHostFileKind, MethodType,
    Session,
};

use super::{
    io_error, is_out_of_descriptors, Connection, Exec, HostKeyPolicy, Output, SshTarget, Stream,
    Tail, OUTPUT_LIMIT,
};
use crate::command::RemoteCommand;
use crate::error::HostError;

const LIBSSH2_ERROR_EAGAIN: i32 = -37;
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;

/// An authenticated SSH session to one host.
pub struct SshConnection {
    session: Session,
    held: Vec<Channel>,
}

/// The OpenSSH name of a host key type.
fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// Host key algorithms to offer, best first, limited to the types that
/// known_hosts already lists for this host (as OpenSSH does), so that a host
/// known by its ed25519 key is not reported unknown because the server
/// happened to prefer ECDSA.
pub fn host_key_preference(known_types: &[String]) -> String {
    const ORDER: [(&str, &str); 5] = [
        ("ssh-ed25519", "ssh-ed25519"),
        ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
        ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
        ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
        ("ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"),
    ];
    let wanted: Vec<&str> = ORDER
        .iter()
        .filter(|(t, _)| known_types.is_empty() || known_types.iter().any(|k| k == t))
        .map(|(_, algs)| *algs)
        .collect();
    if wanted.is_empty() {
        ORDER.iter().map(|(_, a)| *a).collect::<Vec<_>>().join(",")
    } else {
        wanted.join(",")
    }
}

/// The key types listed for `name` (plain, not hashed, entries) in
/// known_hosts text.
pub fn known_key_types(text: &str, name: &str) -> Vec<String> {
    let mut types = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(mut hosts) = fields.next() else {
            continue;
        };
        if hosts.starts_with('#') {
            continue;
        }
        if hosts.starts_with('@') {
            // @revoked / @cert-authority lines name no usable key type here
            continue;
        }
        if hosts.starts_with('|') {
            hosts = "";
        }
        if hosts.split(',').any(|h| h == name) {
            if let Some(t) = fields.next() {
                types.push(t.to_string());
            }
        }
    }
    types
}

/// The known_hosts name for a host on a port, as OpenSSH writes it.
fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
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
    /// `target.connect_timeout`.
    pub fn open(target: &SshTarget) -> Result<SshConnection, HostError> {
        let limit = target.connect_timeout;
        let deadline = Instant::now() + limit;
        let stream = tcp_connect(target, deadline, limit)?;
        let mut session = Session::new().map_err(|e| HostError::Ssh(e.message().to_string()))?;
        // libssh2 owns the socket, and `wait` polls it through
        // `Session::as_raw_fd`: one descriptor per host, not two.
        session.set_tcp_stream(stream);
        let left = deadline.saturating_duration_since(Instant::now());
        session.set_timeout(u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1));

        let lookup = target
            .host_key_alias
            .clone()
            .unwrap_or_else(|| target.host_name.clone());
        let lookup_name = known_hosts_name(&lookup, target.port);
        let known_texts = read_known_hosts(target)?;
        let types: Vec<String> = known_texts
            .iter()
            .flat_map(|(_, t)| known_key_types(t, &lookup_name))
            .collect();
        // An algorithm name libssh2 lacks is dropped by it; an error here only
        // means the defaults stay, which the key check below still guards.
        let _ = session.method_pref(MethodType::HostKey, &host_key_preference(&types));

        session
            .handshake()
            .map_err(|e| ssh_err("waiting for the SSH handshake", &e, limit))?;
        check_host_key(&session, target, &lookup, &known_texts)?;
        authenticate(&session, target, deadline)?;
        session.set_timeout(0);
        session.set_blocking(false);
        Ok(SshConnection {
            session,
            held: Vec::new(),
        })
    }

    /// Wait until the socket is ready in the direction libssh2 is blocked on,
    /// or fail once `deadline` has passed.
    fn wait(&self, deadline: Instant, phase: &str, limit: Duration) -> Result<(), HostError> {
        let now = Instant::now();
        if now >= deadline {
            return Err(HostError::Timeout {
                phase: phase.to_string(),
                after: limit,
            });
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
        let ms = deadline.duration_since(now).as_millis().min(1000) as libc::c_int;
        // SAFETY: one valid pollfd, a bounded timeout.
        unsafe { libc::poll(&mut fd, 1, ms.max(1)) };
        Ok(())
    }

    /// Retry a libssh2 call that may say "would block" until it completes.
    fn retry<T>(
        &self,
        deadline: Instant,
        phase: &str,
        limit: Duration,
        mut f: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, HostError> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_EAGAIN) => {
                    self.wait(deadline, phase, limit)?;
                }
                Err(e) => return Err(HostError::Disconnected(format!("{phase}: {}", e.message()))),
            }
        }
    }

    fn open_channel(
        &self,
        command: &RemoteCommand,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Channel, HostError> {
        let phase = format!("running `{}`", command.label());
        let mut channel = self.retry(deadline, &phase, limit, || self.session.channel_session())?;
        self.retry(deadline, &phase, limit, || channel.exec(command.as_str()))?;
        Ok(channel)
    }
}

fn tcp_connect(
    target: &SshTarget,
    deadline: Instant,
    limit: Duration,
) -> Result<TcpStream, HostError> {
    let addrs: Vec<SocketAddr> = (target.host_name.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| {
            io_error(
                &e,
                || format!("resolving `{}`", target.host_name),
                |e| HostError::Resolve {
                    host: target.host_name.clone(),
                    message: e.to_string(),
                },
            )
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                last = Some(HostError::Timeout {
                    phase: format!("connecting to {addr}"),
                    after: limit,
                });
            }
            Err(e) if is_out_of_descriptors(&e) => {
                return Err(HostError::OutOfDescriptors {
                    during: format!("connecting to {addr}"),
                })
            }
            Err(e) => {
                last = Some(HostError::Connect {
                    addr: addr.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Err(last.unwrap_or_else(|| HostError::Resolve {
        host: target.host_name.clone(),
        message: "no address found".to_string(),
    }))
}

/// The text of every known_hosts file that exists. A missing file lists no
/// host; any other failure to read one is an error, never "key unknown".
fn read_known_hosts(target: &SshTarget) -> Result<Vec<(PathBuf, String)>, HostError> {
    let system = PathBuf::from("/etc/ssh/ssh_known_hosts");
    let mut texts = Vec::new();
    for path in target.known_hosts.iter().chain(std::iter::once(&system)) {
        match fs::read(path) {
            Ok(bytes) => texts.push((path.clone(), String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_error(
                    &e,
                    || format!("reading `{}`", path.display()),
                    |e| HostError::LocalFile {
                        path: path.clone(),
                        message: e.to_string(),
                    },
                ))
            }
        }
    }
    Ok(texts)
}

fn check_host_key(
    session: &Session,
    target: &SshTarget,
    lookup: &str,
    known_texts: &[(PathBuf, String)],
) -> Result<(), HostError> {
    let (key, kind) = session
        .host_key()
        .ok_or_else(|| HostError::Ssh("the host sent no host key".to_string()))?;
    let key_type = key_type_name(kind).to_string();
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|h| {
            format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
            )
        })
        .unwrap_or_default();
    let primary = target
        .known_hosts
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("~/.ssh/known_hosts"));
    for (path, text) in known_texts {
        let mut kh = session
            .known_hosts()
            .map_err(|e| HostError::Ssh(e.message().to_string()))?;
        for line in text.lines() {
            // Lines libssh2 cannot read (certificates, new key types) are
            // skipped one by one instead of losing the whole file.
            let _ = kh.read_str(line, KnownHostFileKind::OpenSSH);
        }
        match kh.check_port(lookup, target.port, key) {
            CheckResult::Match => return Ok(()),
            CheckResult::Mismatch => {
                return Err(HostError::HostKeyChanged {
                    host: target.alias.clone(),
                    key_type,
                    fingerprint,
                    known_hosts: path.clone(),
                })
            }
            CheckResult::NotFound | CheckResult::Failure => {}
        }
    }
    if target.policy == HostKeyPolicy::AcceptNew {
        let line = format!(
            "{} {} {}\n",
            known_hosts_name(lookup, target.port),
            key_type,
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        append_known_host(&primary, &line).map_err(|e| {
            io_error(
                &e,
                || format!("recording the new host key in `{}`", primary.display()),
                |e| {
                    HostError::Ssh(format!(
                        "cannot record the new host key in {}: {e}",
                        primary.display()
                    ))
                },
            )
        })?;
        return Ok(());
    }
    Err(HostError::HostKeyUnknown {
        host: target.alias.clone(),
        key_type,
        fingerprint,
        known_hosts: primary,
    })
}

fn append_known_host(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(line.as_bytes())?;
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

fn authenticate(session: &Session, target: &SshTarget, deadline: Instant) -> Result<(), HostError> {
    let user = &target.user;
    let limit = target.connect_timeout;
    let timed_out = |e: &ssh2::Error| e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT);
    let timeout = || HostError::Timeout {
        phase: "authenticating".to_string(),
        after: limit,
    };
    let mut tried = Vec::new();
    if target.use_agent {
        if let Some(socket) = std::env::var_os("SSH_AUTH_SOCK") {
            if let Some(agent) = open_agent(session, Path::new(&socket), &mut tried)? {
                let ids = agent.identities().unwrap_or_default();
                for id in &ids {
                    remaining(session, deadline, limit)?;
                    match agent.userauth(user, id) {
                        Ok(()) => return Ok(()),
                        Err(e) if timed_out(&e) => return Err(timeout()),
                        Err(_) => {}
                    }
                }
                tried.push(format!("ssh-agent ({} keys)", ids.len()));
            }
        }
    }
    for file in &target.identity_files {
        // Read here rather than by libssh2, which would report a file it
        // cannot open (say, for want of descriptors) as a refused key.
        let key = match fs::read(file) {
            Ok(key) => key,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) if is_out_of_descriptors(&e) => {
                return Err(HostError::OutOfDescriptors {
                    during: format!("reading the key `{}`", file.display()),
                })
            }
            Err(e) => {
                tried.push(format!("{} (unreadable: {e})", file.display()));
                continue;
            }
        };
        let Ok(key) = String::from_utf8(key) else {
            tried.push(format!("{} (not a key file)", file.display()));
            continue;
        };
        remaining(session, deadline, limit)?;
        match session.userauth_pubkey_memory(user, None, &key, None) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => {}
            Err(e) if timed_out(&e) => return Err(timeout()),
            Err(_) => {}
        }
        tried.push(file.display().to_string());
    }
    if tried.is_empty() {
        tried.push("no agent and no key file found".to_string());
    }
    Err(HostError::Auth {
        user: user.clone(),
        tried,
    })
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

impl Connection for SshConnection {
    fn exec(&mut self, mut exec: Exec<'_>) -> Result<Output, HostError> {
        let limit = exec.timeout;
        let deadline = Instant::now() + limit;
        let phase = format!("running `{}`", exec.command.label());
        let mut channel = self.open_channel(exec.command, deadline, limit)?;
        if let Some(mut data) = exec.stdin {
            while !data.is_empty() {
                match channel.write(data) {
                    Ok(n) => data = &data[n..],
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.wait(deadline, &phase, limit)?
                    }
                    Err(e) => return Err(HostError::Disconnected(format!("{phase}: {e}"))),
                }
            }
        }
        self.retry(deadline, &phase, limit, || channel.send_eof())?;
        let mut out = (Tail::new(OUTPUT_LIMIT), Tail::new(OUTPUT_LIMIT));
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // a command that never stops talking must still meet its deadline
            if Instant::now() >= deadline {
                return Err(HostError::Timeout {
                    phase: phase.clone(),
                    after: limit,
                });
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
                        if let Some(cb) = exec.on_output.as_mut() {
                            cb(stream, &buf[..n]);
                        }
                        match stream {
                            Stream::Stdout => out.0.push(&buf[..n]),
                            Stream::Stderr => out.1.push(&buf[..n]),
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(HostError::Disconnected(format!("{phase}: {e}"))),
                }
            }
            if !progressed {
                if channel.eof() {
                    break;
                }
                self.wait(deadline, &phase, limit)?;
            }
        }
        self.retry(deadline, &phase, limit, || channel.wait_close())?;
        // libssh2 reports status 0 for a command killed by a signal: a
        // crashed health check must not count as a passed one.
        let killed = channel
            .exit_signal()
            .map(|s| s.exit_signal.is_some())
            .unwrap_or(false);
        let status = if killed {
            -1
        } else {
            channel.exit_status().unwrap_or(-1)
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

    fn hold(&mut self, command: &RemoteCommand, timeout: Duration) -> Result<String, HostError> {
        let deadline = Instant::now() + timeout;
        let phase = format!("starting `{}`", command.label());
        let mut channel = self.open_channel(command, deadline, timeout)?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if Instant::now() >= deadline {
                return Err(HostError::Timeout {
                    phase: phase.clone(),
                    after: timeout,
                });
            }
            match channel.read(&mut byte) {
                Ok(0) => break,
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.wait(deadline, &phase, timeout)?
                }
                Err(e) => return Err(HostError::Disconnected(format!("{phase}: {e}"))),
            }
        }
        self.held.push(channel);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn release(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for mut channel in std::mem::take(&mut self.held) {
            let limit = Duration::from_secs(5);
            let _ = self.retry(deadline, "releasing", limit, || channel.send_eof());
            let _ = self.retry(deadline, "releasing", limit, || channel.wait_close());
        }
    }
}

impl Drop for SshConnection {
    fn drop(&mut self) {
        self.release();
        let _ = self.session.disconnect(None, "deployer done", None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_preference_follows_known_types() {
        assert_eq!(host_key_preference(&["ssh-ed25519".into()]), "ssh-ed25519");
        assert_eq!(
            host_key_preference(&["ssh-rsa".into(), "ecdsa-sha2-nistp256".into()]),
            "ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256,ssh-rsa"
        );
        assert!(host_key_preference(&[]).starts_with("ssh-ed25519,ecdsa"));
        // a type we cannot negotiate must not leave us with an empty list
        assert!(
            host_key_preference(&["sk-ssh-ed25519@openssh.com".into()]).starts_with("ssh-ed25519")
        );
    }

    #[test]
    fn known_key_types_reads_plain_entries_only() {
        let text = "\
# comment
127.0.1.5 ssh-ed25519 AAAA
other,127.0.1.5 ecdsa-sha2-nistp256 AAAA
[127.0.1.5]:2222 ssh-rsa AAAA
|1|salt|hash ssh-rsa AAAA
@cert-authority * ssh-rsa AAAA
127.0.1.50 ssh-rsa AAAA
";
        assert_eq!(
            known_key_types(text, "127.0.1.5"),
            vec!["ssh-ed25519".to_string(), "ecdsa-sha2-nistp256".to_string()]
        );
        assert_eq!(
            known_key_types(text, "[127.0.1.5]:2222"),
            vec!["ssh-rsa".to_string()]
        );
    }
}
