//! What the SSH connections of one run share: the sessions to jump hosts
//! ([`Jumps`]), the known_hosts files, read and parsed once per run rather
//! than once per host ([`KnownHostsCache`]), and the pacing of connection
//! starts to each SSH server ([`Starts`]).
//!
//! Pacing: sshd drops connections that are still starting (connected but
//! not yet logged in) once more than its `MaxStartups` are (by default it
//! begins at 10, at random, and drops every one past 100). A fleet whose
//! names lead to few servers (many aliases of one address, many hosts
//! behind one port forward) would otherwise start them in a crowd and
//! lose some to "connection reset" or "failed getting banner". So at most
//! `max_startups` connections start at once to one server; the others wait
//! for a turn, and their `connect_timeout` begins when their turn does.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::jump::Jumps;
use super::{io_error, lock, Server, SshTarget};
use crate::error::HostError;
use crate::known_hosts::{self, KnownHostsFile};

/// What the connections of one run share; one per run, handed to every
/// connection opened (see [`crate::transport::connect_with`]).
#[derive(Default)]
pub struct Reach {
    pub(super) jumps: Jumps,
    pub(super) known: KnownHostsCache,
    pub(super) starts: Starts,
}

impl Reach {
    /// A new, empty state: nothing read, no session open.
    pub fn new() -> Reach {
        Reach::default()
    }
}

/// known_hosts files, each read and parsed the first time a connection
/// needs it, then shared by every connection of the run. A file a key is
/// recorded into (accept-new) is read again by the next connection.
#[derive(Default)]
pub struct KnownHostsCache {
    files: Mutex<HashMap<PathBuf, Arc<Mutex<Cached>>>>,
}

/// One path's state: not read yet, missing, or parsed.
#[derive(Default)]
enum Cached {
    #[default]
    Unread,
    Missing,
    Parsed(Arc<KnownHostsFile>),
}

impl KnownHostsCache {
    /// Every known_hosts file of `target` that exists, parsed: the user's
    /// files, then the global ones. A missing file lists no host; any
    /// other failure to read one refuses the host (never "key unknown",
    /// which accept-new would record), and is not remembered: the next
    /// connection tries again.
    pub fn files(&self, target: &SshTarget) -> Result<Vec<Arc<KnownHostsFile>>, HostError> {
        let mut files = Vec::new();
        for path in target.known_hosts.iter().chain(&target.global_known_hosts) {
            let slot = self.slot(path);
            // one reader per file; the others wait for its parse
            let mut cached = lock(&slot);
            if let Cached::Unread = *cached {
                *cached = read(target, path)?;
            }
            if let Cached::Parsed(file) = &*cached {
                files.push(Arc::clone(file));
            }
        }
        Ok(files)
    }

    /// Read `path` again on its next use: a key was written into it.
    pub fn forget(&self, path: &Path) {
        *lock(&self.slot(path)) = Cached::Unread;
    }

    fn slot(&self, path: &Path) -> Arc<Mutex<Cached>> {
        let mut files = lock(&self.files);
        Arc::clone(files.entry(path.to_path_buf()).or_default())
    }
}

/// `path`, read and parsed, for `target`'s messages.
fn read(target: &SshTarget, path: &Path) -> Result<Cached, HostError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Cached::Parsed(Arc::new(known_hosts::parse(path, &bytes)))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Cached::Missing),
        Err(e) => Err(io_error(
            &e,
            || format!("reading `{}`", path.display()),
            |e| HostError::KnownHostsUnreadable {
                host: target.alias.clone(),
                path: path.to_path_buf(),
                message: e.to_string(),
            },
        )),
    }
}

/// The connections starting to each SSH server, counted so that no more
/// than a target's `max_startups` start at once.
#[derive(Default)]
pub struct Starts {
    servers: Mutex<HashMap<Server, Arc<Gate>>>,
}

#[derive(Default)]
struct Gate {
    starting: Mutex<usize>,
    freed: Condvar,
}

/// A turn to start a connection; the next waiting one may start when it
/// is dropped (once the host is logged in to, or has failed).
pub struct Turn {
    gate: Arc<Gate>,
}

impl Starts {
    /// Wait until fewer than `target.max_startups` connections are
    /// starting to `target`'s server, then take a turn.
    pub fn turn(&self, target: &SshTarget) -> Turn {
        let gate = Arc::clone(lock(&self.servers).entry(target.server()).or_default());
        let limit = target.max_startups.max(1);
        let mut starting = lock(&gate.starting);
        if *starting >= limit {
            let waited = Instant::now();
            while *starting >= limit {
                starting = gate
                    .freed
                    .wait(starting)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            tracing::debug!(
                host = %target.alias,
                ms = waited.elapsed().as_millis() as u64,
                limit,
                "waited for a turn to connect (max_startups)"
            );
        }
        *starting += 1;
        drop(starting);
        Turn { gate }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *lock(&self.gate.starting) -= 1;
        self.gate.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn target(alias: &str, host: &str, limit: usize, dir: &Path) -> SshTarget {
        SshTarget {
            known_hosts: vec![dir.join("missing"), dir.join("user")],
            global_known_hosts: vec![dir.join("global")],
            max_startups: limit,
            ..SshTarget::example(alias, host)
        }
    }

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    /// Each file is parsed once and shared; a forgotten one is read again,
    /// so a key recorded during the run is seen by the next connection.
    #[test]
    fn known_hosts_files_are_read_once_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let t = target("a", "10.0.0.1", 8, dir.path());
        fs::write(dir.path().join("user"), format!("10.0.0.1 {KEY}\n")).unwrap();
        let cache = KnownHostsCache::default();
        let first = cache.files(&t).unwrap();
        assert_eq!(first.len(), 1, "the missing files list nothing");
        fs::write(dir.path().join("global"), format!("10.0.0.2 {KEY}\n")).unwrap();
        let second = cache.files(&t).unwrap();
        assert!(Arc::ptr_eq(&first[0], &second[0]), "parsed once");
        assert_eq!(second.len(), 1, "a missing file is remembered as missing");
        cache.forget(&dir.path().join("global"));
        let third = cache.files(&t).unwrap();
        assert_eq!(third.len(), 2);
        assert_eq!(third[1].lines_naming("10.0.0.2"), [1]);
    }

    /// A file that cannot be read refuses the host, and is tried again by
    /// the next connection rather than remembered.
    #[test]
    fn unreadable_known_hosts_refuse_and_are_retried() {
        let dir = tempfile::tempdir().unwrap();
        let t = target("a", "10.0.0.1", 8, dir.path());
        fs::create_dir(dir.path().join("user")).unwrap();
        let cache = KnownHostsCache::default();
        let e = cache.files(&t).unwrap_err();
        assert!(matches!(e, HostError::KnownHostsUnreadable { .. }), "{e}");
        fs::remove_dir(dir.path().join("user")).unwrap();
        fs::write(dir.path().join("user"), format!("10.0.0.1 {KEY}\n")).unwrap();
        assert_eq!(cache.files(&t).unwrap().len(), 1);
    }

    /// No more than `max_startups` turns to one server at once; another
    /// server has turns of its own.
    #[test]
    fn turns_are_limited_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let starts = Starts::default();
        let busy = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for i in 0..24 {
                let (starts, busy, peak) = (&starts, &busy, &peak);
                let t = target(&format!("alias-{i}"), "10.0.0.1", 3, dir.path());
                scope.spawn(move || {
                    let _turn = starts.turn(&t);
                    let now = busy.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    busy.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 3, "{peak:?}");
        // another server is not held up by this one's turns
        let a = starts.turn(&target("a", "10.0.0.1", 1, dir.path()));
        let b = starts.turn(&target("b", "10.0.0.2", 1, dir.path()));
        drop((a, b));
    }
}
