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
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::jump::Jumps;
use super::known_cache::KnownHostsCache;
use super::{lock, Server, SshTarget};

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
    use std::path::Path;
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
