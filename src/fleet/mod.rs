//! The host-access layer: the hosts of a run, one connection each, opened
//! concurrently and kept for the whole run, so that status, locks, apt and
//! health checks all travel over the same session.
//!
//! Every command reaches a host through a [`Member`] of a [`Fleet`], so
//! that timeouts and lost hosts are handled in one place: a command that
//! times out is only that command's failure, while a session that is really
//! gone marks the host lost (and may be reopened once, for a rollback).
//! Concurrency (`fanout`) is private to this module. How connections are
//! opened is a [`Connector`], injected at construction: the real one opens
//! SSH or local connections; unit tests of the deploy orchestration inject
//! a scripted one (`fake`, beside the trait it fakes).

#[cfg(test)]
pub mod fake;
mod fanout;

use std::sync::Arc;
use std::time::Duration;

use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::matrix::HostReport;
use crate::package::PackageName;
use crate::status;
use crate::transport::{self, Connection, Exec, Output, Target};

/// Opens a connection to a target.
pub trait Connector: Send + Sync {
    /// Connect, check the host key and log in.
    fn connect(&self, target: &Target) -> Result<Box<dyn Connection>, HostError>;
}

/// The real connector: SSH, or `sh -c` for `local`. It keeps what the
/// connections of the run share ([`transport::Reach`]): every target behind
/// a jump host goes through one session to it, however many start at
/// once; known_hosts files are parsed once; connection starts to one
/// server are paced.
#[derive(Default)]
pub struct Direct {
    reach: transport::Reach,
}

impl Connector for Direct {
    fn connect(&self, target: &Target) -> Result<Box<dyn Connection>, HostError> {
        transport::connect_with(target, &self.reach)
    }
}

/// One host and its connection (or why there is none).
pub struct Member {
    target: Target,
    conn: Result<Box<dyn Connection>, HostError>,
    /// Whether a connection was tried yet (see [`Fleet::unopened`]).
    opened: bool,
    /// Whether a [`Fleet::visit`] closed the session once its job was
    /// done: the next visit connects again.
    closed: bool,
    reconnected: bool,
    connector: Arc<dyn Connector>,
}

impl Member {
    /// Connect, unless this member has tried already.
    fn open(&mut self) {
        if self.opened {
            return;
        }
        self.opened = true;
        let started = std::time::Instant::now();
        self.conn = self.connector.connect(&self.target);
        let ms = started.elapsed().as_millis() as u64;
        match &self.conn {
            Ok(_) => tracing::debug!(host = %self.target.host, ms, "connected"),
            Err(e) => tracing::debug!(host = %self.target.host, ms, error = %e, "not connected"),
        }
    }

    /// End the session now (its commands are done): the descriptor, the
    /// memory and the keepalive thread go at once rather than at the end
    /// of the run. Later commands fail; nothing reconnects.
    fn close(&mut self) {
        if self.conn.is_ok() {
            self.conn = Err(HostError::Disconnected(
                "the session was closed once its answer was read".to_string(),
            ));
            self.reconnected = true;
            self.closed = true;
        }
    }

    /// Connect for a [`Fleet::visit`]: unless this member has tried
    /// already, or again when an earlier visit closed its session (a host
    /// that could not be reached is not tried twice). True when this call
    /// connected, so that the visit closes the session after its job.
    fn open_for_visit(&mut self) -> bool {
        if self.closed {
            self.closed = false;
            self.opened = false;
            self.reconnected = false;
        }
        let connecting = !self.opened;
        self.open();
        connecting
    }

    /// This host's package states, read with `command` (the
    /// [`status::query_command`] of `packages`).
    fn status(
        &mut self,
        command: &RemoteCommand,
        packages: &[PackageName],
        timeout: Duration,
    ) -> HostReport {
        HostReport {
            stage: self.target.stage.clone(),
            host: self.target.host.clone(),
            result: self
                .run(command, timeout)
                .and_then(|out| status::parse(packages, &out)),
        }
    }

    /// Where the host is.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The host as written in the configuration.
    pub fn host(&self) -> &str {
        &self.target.host
    }

    /// Why this host has no usable connection, if it has none.
    pub fn error(&self) -> Option<&HostError> {
        self.conn.as_ref().err()
    }

    /// The login user, for messages.
    pub fn login_user(&self) -> String {
        match &self.target.kind {
            transport::TargetKind::Ssh(s) => s.user.clone(),
            transport::TargetKind::Local => "this user".to_string(),
        }
    }

    /// Run `command` to completion, collecting its output.
    pub fn run(&mut self, command: &RemoteCommand, timeout: Duration) -> Result<Output, HostError> {
        self.exec(Exec::new(command, timeout))
    }

    /// Run a command as described by `exec`. A host without a connection
    /// answers with the reason it has none. A dropped session marks the host
    /// lost, so later commands fail at once instead of waiting again; a
    /// command that merely timed out leaves the session usable.
    pub fn exec(&mut self, exec: Exec<'_>) -> Result<Output, HostError> {
        self.open();
        let started = std::time::Instant::now();
        tracing::info!(host = %self.target.host, command = %exec.command.for_log(), "run");
        let result = match &mut self.conn {
            Ok(conn) => conn.exec(exec),
            Err(e) => Err(e.clone()),
        };
        match &result {
            Ok(out) => tracing::debug!(
                host = %self.target.host,
                status = out.status,
                ms = started.elapsed().as_millis() as u64,
                "done"
            ),
            Err(e) => tracing::debug!(host = %self.target.host, error = %e, "failed"),
        }
        self.note_loss(&result);
        result
    }

    /// A dropped session, or a connection that says it is closed, marks
    /// the host lost.
    fn note_loss<T>(&mut self, result: &Result<T, HostError>) {
        let lost = match (&self.conn, result) {
            (Err(_), _) => return,
            (_, Err(e @ HostError::Disconnected(_))) => Some(e.clone()),
            (Ok(conn), _) if !conn.is_open() => Some(HostError::Disconnected(
                "the connection was closed".to_string(),
            )),
            _ => None,
        };
        if let Some(e) = lost {
            self.conn = Err(e);
        }
    }

    /// Run `command`; while it fails and `busy` finds in its output
    /// (stdout and stderr) that a lock it needs is held by another process,
    /// run it again, every half second, for up to `wait` in all. apt's own
    /// wait (`DPkg::Lock::Timeout`) covers neither the package lists' lock
    /// nor `apt-mark`. `on_first_wait` is told the host's name before the
    /// first wait, to announce it.
    pub fn run_waiting_for_lock(
        &mut self,
        command: &RemoteCommand,
        timeout: Duration,
        wait: Duration,
        busy: fn(&str) -> bool,
        on_first_wait: impl FnOnce(&str),
    ) -> Result<Output, HostError> {
        let deadline = std::time::Instant::now() + wait;
        let mut announce = Some(on_first_wait);
        loop {
            let out = self.run(command, timeout)?;
            if out.success() || !busy(&out.combined()) || std::time::Instant::now() >= deadline {
                return Ok(out);
            }
            if let Some(announce) = announce.take() {
                announce(&self.target.host);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Start `command` and keep it running while the connection lives;
    /// returns its first line (see [`Connection::hold`]).
    pub fn hold(
        &mut self,
        command: &RemoteCommand,
        timeout: Duration,
    ) -> Result<String, HostError> {
        self.open();
        let result = match &mut self.conn {
            Ok(conn) => conn.hold(command, timeout),
            Err(e) => Err(e.clone()),
        };
        self.note_loss(&result);
        result
    }

    /// Like [`Member::hold`], with a heartbeat every `heartbeat`.
    pub fn hold_with(
        &mut self,
        command: &RemoteCommand,
        timeout: Duration,
        heartbeat: Duration,
    ) -> Result<String, HostError> {
        self.open();
        let result = match &mut self.conn {
            Ok(conn) => conn.hold_with(command, timeout, heartbeat),
            Err(e) => Err(e.clone()),
        };
        self.note_loss(&result);
        result
    }

    /// Stop every held command of this host.
    pub fn release(&mut self) {
        if let Ok(conn) = &mut self.conn {
            conn.release();
        }
    }

    /// Open a new connection if the session was lost; only once per host
    /// and run. True when the host has a usable connection afterwards.
    pub fn reconnect(&mut self) -> bool {
        if self.conn.is_ok() {
            return true;
        }
        if self.reconnected {
            return false;
        }
        self.reconnected = true;
        self.conn = self.connector.connect(&self.target);
        self.conn.is_ok()
    }

    /// Whether this host's session was lost and opened again during this
    /// run (and the new one is usable): what the old session held, such as
    /// the deploy lock, went with it.
    pub fn was_reconnected(&self) -> bool {
        self.reconnected && self.conn.is_ok()
    }

    /// Give up on this host: later commands fail at once with `error`.
    pub fn lose(&mut self, error: HostError) {
        self.conn = Err(error);
    }
}

/// The hosts of a run, in configuration order (one stage's hosts are
/// contiguous).
pub struct Fleet {
    members: Vec<Member>,
    parallelism: usize,
    watch: Option<Arc<dyn Watch>>,
    /// Hosts left out of the work on their stage ([`Fleet::leave_out`]),
    /// as (stage, host).
    left_out: Vec<(String, String)>,
}

/// Told, while the fleet works on its hosts, which ones it still waits
/// for: a terminal shows "waiting for 1 host: prod-3 (8 s)".
pub trait Watch: Send + Sync {
    /// Called every [`WATCH_TICK`] while hosts are pending: those not done
    /// yet, in fleet order, and how long the work has been going on.
    fn waiting(&self, hosts: &[String], elapsed: Duration);
    /// The work on the hosts ended.
    fn done(&self);
}

/// How often a [`Watch`] is told who is still pending.
pub const WATCH_TICK: Duration = Duration::from_millis(250);

/// The round in which to take up each of `targets`: round robin over the
/// SSH servers they lead to (the first host of each server in round 0,
/// the second of each in round 1, and so on; `local` in round 0). sshd
/// drops connections starting at once past its `MaxStartups`, and a
/// server's connections beyond `max_startups` wait for a turn (see
/// [`transport::Reach`]); spreading the work keeps the workers busy with
/// other servers meanwhile. Hosts on servers of their own keep their order.
fn rounds<'a>(targets: impl Iterator<Item = &'a Target>) -> Vec<usize> {
    let mut seen: std::collections::HashMap<transport::Server, usize> =
        std::collections::HashMap::new();
    targets
        .map(|t| match &t.kind {
            transport::TargetKind::Ssh(s) => {
                let n = seen.entry(s.server()).or_default();
                *n += 1;
                *n - 1
            }
            transport::TargetKind::Local => 0,
        })
        .collect()
}

/// `results`, computed for `numbered` (in the order worked on), put back
/// in the order of the indices `numbered` carries.
fn in_fleet_order<M, O>(numbered: &[(usize, M)], results: Vec<O>) -> Vec<O> {
    let mut slots: Vec<Option<O>> = (0..results.len()).map(|_| None).collect();
    for ((i, _), out) in numbered.iter().zip(results) {
        slots[*i] = Some(out);
    }
    slots
        .into_iter()
        .map(|o| o.expect("one result per host"))
        .collect()
}

/// Whether `target` is a host of `stage` that is not in `left_out`
/// ([`Fleet::leave_out`]).
fn takes_part(left_out: &[(String, String)], stage: &str, target: &Target) -> bool {
    target.stage == stage
        && !left_out
            .iter()
            .any(|(s, h)| *s == target.stage && *h == target.host)
}

/// What one host answered, with the host's name.
pub type Answer<T> = (String, T);

impl Fleet {
    /// Connect to every target at once, for real.
    pub fn connect(targets: Vec<Target>, parallelism: usize) -> Fleet {
        Fleet::connect_with(targets, parallelism, Arc::new(Direct::default()))
    }

    /// Connect to every target at once through `connector`.
    pub fn connect_with(
        targets: Vec<Target>,
        parallelism: usize,
        connector: Arc<dyn Connector>,
    ) -> Fleet {
        let mut fleet = Fleet::unopened_with(targets, parallelism, connector);
        fleet.on_each(|_| true, Member::open);
        fleet
    }

    /// Connect to every target at once, for real, telling `watch` (when
    /// given) which hosts are still pending, connections included.
    pub fn connect_watched(
        targets: Vec<Target>,
        parallelism: usize,
        watch: Option<Arc<dyn Watch>>,
    ) -> Fleet {
        let mut fleet = Fleet::unopened(targets, parallelism, watch);
        fleet.on_each(|_| true, Member::open);
        fleet
    }

    /// The hosts, not connected to yet: each host is connected to when a
    /// command first needs it, so that [`Fleet::survey`] can connect, read
    /// and close each host in one go. `watch` as for
    /// [`Fleet::connect_watched`].
    pub fn unopened(
        targets: Vec<Target>,
        parallelism: usize,
        watch: Option<Arc<dyn Watch>>,
    ) -> Fleet {
        let mut fleet = Fleet::unopened_with(targets, parallelism, Arc::new(Direct::default()));
        fleet.watch = watch;
        fleet
    }

    /// The hosts, not connected to yet, to be reached through `connector`.
    pub fn unopened_with(
        targets: Vec<Target>,
        parallelism: usize,
        connector: Arc<dyn Connector>,
    ) -> Fleet {
        let members: Vec<Member> = targets
            .into_iter()
            .map(|target| Member {
                target,
                conn: Err(HostError::Ssh("not connected yet".into())),
                opened: false,
                closed: false,
                reconnected: false,
                connector: Arc::clone(&connector),
            })
            .collect();
        Fleet {
            members,
            parallelism,
            watch: None,
            left_out: Vec::new(),
        }
    }

    /// The same fleet, telling `watch` which hosts it waits for.
    pub fn watched(mut self, watch: Arc<dyn Watch>) -> Fleet {
        self.watch = Some(watch);
        self
    }

    /// How many hosts are worked on at once.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Every member, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Leave `hosts` of `stage` out of the work on the stage from now on
    /// ([`Fleet::on_stage`], [`Fleet::hosts_of`]): a deploy's
    /// `--skip-unreachable` and `--exclude`. Reading every host's state
    /// ([`Fleet::status`]) still reads them.
    pub fn leave_out(&mut self, stage: &str, hosts: &[&str]) {
        self.left_out
            .extend(hosts.iter().map(|h| (stage.to_string(), h.to_string())));
    }

    /// The names of `stage`'s hosts taking part, in order.
    pub fn hosts_of(&self, stage: &str) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| takes_part(&self.left_out, stage, &m.target))
            .map(|m| m.target.host.clone())
            .collect()
    }

    /// Read every host's package states, all hosts at once.
    pub fn status(&mut self, packages: &[PackageName], timeout: Duration) -> Vec<HostReport> {
        self.status_where(|_| true, packages, timeout)
    }

    /// Read every host's package states, `parallelism` hosts at a time,
    /// each connected to, asked and disconnected from in one go: a run
    /// over many hosts holds no more sessions (descriptors, memory,
    /// threads) than it works on at once. The hosts are closed afterwards.
    pub fn survey(&mut self, packages: &[PackageName], timeout: Duration) -> Vec<HostReport> {
        self.survey_with(packages, timeout, |_, _| ())
            .into_iter()
            .map(|(report, ())| report)
            .collect()
    }

    /// [`Fleet::survey`], and over the same session, once a host's states
    /// are read, `more` (given the member and its report): for work that
    /// reads more of each host than its states (the dashboard's last
    /// changes).
    pub fn survey_with<O, F>(
        &mut self,
        packages: &[PackageName],
        timeout: Duration,
        more: F,
    ) -> Vec<(HostReport, O)>
    where
        O: Send,
        F: Fn(&mut Member, &HostReport) -> O + Sync,
    {
        let command = status::query_command(packages);
        self.visit(
            |_| true,
            |m| {
                let report = m.status(&command, packages, timeout);
                let more = more(m, &report);
                (report, more)
            },
        )
    }

    /// Apply `job` to the members `keep` selects, as [`Fleet::on_each`]
    /// does, each connected to first; a member this call connected to is
    /// closed as soon as its job is done, so that a run over many hosts
    /// holds no more sessions than it works on at once (a member connected
    /// before stays connected, for the work that follows). A later visit
    /// connects again to the hosts an earlier one closed.
    pub fn visit<O, F>(&mut self, keep: impl Fn(&Target) -> bool, job: F) -> Vec<O>
    where
        O: Send,
        F: Fn(&mut Member) -> O + Sync,
    {
        self.on_each(keep, |m| {
            let connected_here = m.open_for_visit();
            let out = job(m);
            if connected_here {
                m.close();
            }
            out
        })
    }

    /// Read the package states of the hosts of `stage` only.
    pub fn stage_status(
        &mut self,
        stage: &str,
        packages: &[PackageName],
        timeout: Duration,
    ) -> Vec<HostReport> {
        self.status_where(|t| t.stage == stage, packages, timeout)
    }

    /// Read the package states of the hosts whose target `keep` accepts,
    /// all at once; reports in fleet order.
    fn status_where(
        &mut self,
        keep: impl Fn(&Target) -> bool,
        packages: &[PackageName],
        timeout: Duration,
    ) -> Vec<HostReport> {
        let command = status::query_command(packages);
        self.on_each(keep, |m| m.status(&command, packages, timeout))
    }

    /// Apply `job` to every host of `stage` taking part (not left out) at
    /// once; answers in host order.
    pub fn on_stage<O, F>(&mut self, stage: &str, job: F) -> Vec<Answer<O>>
    where
        O: Send,
        F: Fn(&mut Member) -> O + Sync,
    {
        let left_out = self.left_out.clone();
        self.on_each(
            |t| takes_part(&left_out, stage, t),
            |m| (m.target.host.clone(), job(m)),
        )
    }

    /// Apply `job` to every member whose target `keep` accepts, all at
    /// once; results in fleet order. The hosts are taken up round by round
    /// ([`rounds`]), so that the hosts worked on at once lead to as many
    /// different servers as can be.
    pub fn on_each<O, F>(&mut self, keep: impl Fn(&Target) -> bool, job: F) -> Vec<O>
    where
        O: Send,
        F: Fn(&mut Member) -> O + Sync,
    {
        let mine: Vec<&mut Member> = self
            .members
            .iter_mut()
            .filter(|m| keep(&m.target))
            .collect();
        let pending: std::sync::Mutex<Vec<Option<String>>> =
            std::sync::Mutex::new(mine.iter().map(|m| Some(m.target.host.clone())).collect());
        let round = rounds(mine.iter().map(|m| &m.target));
        let mut numbered: Vec<(usize, &mut Member)> = mine.into_iter().enumerate().collect();
        // stable: fleet order within a round
        numbered.sort_by_key(|(i, _)| round[*i]);
        let Some(watch) = self.watch.clone() else {
            let results = fanout::map(&mut numbered, self.parallelism, |(_, m)| job(m));
            return in_fleet_order(&numbered, results);
        };
        let (stop, ticks) = std::sync::mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let results = std::thread::scope(|scope| {
            let (pending, watch) = (&pending, &watch);
            scope.spawn(move || {
                // until the sender goes: the work is over
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    ticks.recv_timeout(WATCH_TICK)
                {
                    let hosts: Vec<String> = pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .flatten()
                        .cloned()
                        .collect();
                    watch.waiting(&hosts, started.elapsed());
                }
            });
            let results = fanout::map(&mut numbered, self.parallelism, |(i, m)| {
                let out = job(m);
                pending.lock().unwrap_or_else(|e| e.into_inner())[*i] = None;
                out
            });
            drop(stop);
            results
        });
        watch.done();
        in_fleet_order(&numbered, results)
    }

    /// Apply `job` to the given hosts of `stage` at once; answers in the
    /// order of `hosts`.
    ///
    /// # Panics
    /// When a host is not in the fleet: callers only name configured hosts.
    pub fn on_hosts<O, F>(&mut self, stage: &str, hosts: &[&str], job: F) -> Vec<Answer<O>>
    where
        O: Send,
        F: Fn(&mut Member) -> O + Sync,
    {
        let mut mine: Vec<(usize, &mut Member)> = self
            .members
            .iter_mut()
            .filter(|m| m.target.stage == stage)
            .filter_map(|m| {
                let at = hosts.iter().position(|h| *h == m.target.host)?;
                Some((at, m))
            })
            .collect();
        assert_eq!(
            mine.len(),
            hosts.len(),
            "hosts of `{stage}` not in the fleet: {hosts:?}"
        );
        mine.sort_by_key(|(at, _)| *at);
        fanout::map(&mut mine, self.parallelism, |(_, m)| {
            (m.target.host.clone(), job(m))
        })
    }

    /// Run `command` on every host of `stage` at once.
    pub fn run_on_stage(
        &mut self,
        stage: &str,
        command: &RemoteCommand,
        timeout: Duration,
    ) -> Vec<Answer<Result<Output, HostError>>> {
        self.on_stage(stage, |m| m.run(command, timeout))
    }

    /// The member for `host` of `stage`.
    ///
    /// # Panics
    /// When the host is not in the fleet.
    pub fn member(&mut self, stage: &str, host: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.target.stage == stage && m.target.host == host)
            .unwrap_or_else(|| panic!("`{host}` of `{stage}` is not in the fleet"))
    }

    /// Open a new connection to a host whose session was lost; only once per
    /// host and run. True when the host has a usable connection afterwards.
    pub fn reconnect(&mut self, stage: &str, host: &str) -> bool {
        self.member(stage, host).reconnect()
    }

    /// Stop every held command (locks) on the hosts of `stage`.
    pub fn release(&mut self, stage: &str) {
        for m in self.members.iter_mut().filter(|m| m.target.stage == stage) {
            m.release();
        }
    }
}

/// Apply `job` to every target at once (at most `parallelism` at a time),
/// without opening the fleet's connections; results in target order. For
/// work that opens connections of its own kind (`deployer hosts --check`).
pub fn each_target<O, F>(targets: &[Target], parallelism: usize, job: F) -> Vec<O>
where
    O: Send,
    F: Fn(&Target) -> O + Sync,
{
    let mut refs: Vec<&Target> = targets.iter().collect();
    fanout::map(&mut refs, parallelism, |t| job(t))
}

/// `host: problem` for every answer in which `problem` finds one.
pub fn problems<T>(answers: &[Answer<T>], problem: impl Fn(&T) -> Option<String>) -> Vec<String> {
    answers
        .iter()
        .filter_map(|(host, a)| problem(a).map(|p| format!("{host}: {p}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::fake::{Fake, FakeHost};
    use crate::transport::TargetKind;
    use std::sync::Mutex;
    use std::time::Instant;

    #[derive(Default)]
    struct Recorder {
        waits: Mutex<Vec<Vec<String>>>,
        done: Mutex<usize>,
    }

    impl Watch for Recorder {
        fn waiting(&self, hosts: &[String], _: Duration) {
            self.waits.lock().unwrap().push(hosts.to_vec());
        }
        fn done(&self) {
            *self.done.lock().unwrap() += 1;
        }
    }

    /// Connections through `inner`, counted while open.
    struct Counting {
        inner: Fake,
        open: Arc<std::sync::atomic::AtomicUsize>,
        peak: Arc<std::sync::atomic::AtomicUsize>,
    }

    struct Counted {
        inner: Box<dyn Connection>,
        open: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Connector for Counting {
        fn connect(&self, target: &Target) -> Result<Box<dyn Connection>, HostError> {
            use std::sync::atomic::Ordering::SeqCst;
            let inner = self.inner.connect(target)?;
            let now = self.open.fetch_add(1, SeqCst) + 1;
            self.peak.fetch_max(now, SeqCst);
            Ok(Box::new(Counted {
                inner,
                open: Arc::clone(&self.open),
            }))
        }
    }

    impl Connection for Counted {
        fn exec(&mut self, exec: Exec<'_>) -> Result<Output, HostError> {
            // long enough for the other workers to be connected meanwhile
            std::thread::sleep(Duration::from_millis(5));
            self.inner.exec(exec)
        }
        fn hold_with(
            &mut self,
            command: &RemoteCommand,
            timeout: Duration,
            heartbeat: Duration,
        ) -> Result<String, HostError> {
            self.inner.hold_with(command, timeout, heartbeat)
        }
        fn release(&mut self) {
            self.inner.release();
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// `n` hosts (`h0`...), each with fastpath 1.0, not connected to yet,
    /// 4 worked on at once, their sessions counted: the fleet, the number
    /// open now and the most open at once.
    fn counted_fleet(
        n: usize,
    ) -> (
        Fleet,
        Arc<std::sync::atomic::AtomicUsize>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let fake = Fake::default();
        let targets: Vec<Target> = (0..n)
            .map(|i| {
                let host = format!("h{i}");
                let mut h = FakeHost::default();
                h.installed.insert("fastpath".into(), "1.0".into());
                fake.world().hosts.insert(host.clone(), h);
                Target {
                    stage: "test".into(),
                    host,
                    kind: TargetKind::Local,
                }
            })
            .collect();
        let counting = Counting {
            inner: fake,
            open: Arc::default(),
            peak: Arc::default(),
        };
        let (open, peak) = (Arc::clone(&counting.open), Arc::clone(&counting.peak));
        let fleet = Fleet::unopened_with(targets, 4, Arc::new(counting));
        (fleet, open, peak)
    }

    /// A survey connects to each host when it gets to it and closes the
    /// session once the host has answered: never more sessions open than
    /// hosts worked on at once, none left at the end, every host read.
    #[test]
    fn a_survey_holds_no_more_sessions_than_it_works_on() {
        use std::sync::atomic::Ordering::SeqCst;
        let (mut fleet, open, peak) = counted_fleet(40);
        assert_eq!(
            peak.load(SeqCst),
            0,
            "nothing is connected before the survey"
        );
        let packages: [PackageName; 1] = ["fastpath".parse().unwrap()];
        let reports = fleet.survey(&packages, Duration::from_secs(5));
        assert_eq!(reports.len(), 40);
        assert!(reports.iter().all(|r| r.result.is_ok()), "{:?}", reports[0]);
        assert!(peak.load(SeqCst) <= 4, "peak {}", peak.load(SeqCst));
        assert!(peak.load(SeqCst) >= 2, "hosts are read concurrently");
        assert_eq!(open.load(SeqCst), 0, "every session was closed");
    }

    /// `visit` closes what it connected to, and only that: a fleet
    /// connected before (for work that follows) keeps its sessions; an
    /// unopened one (`check`'s) ends with none, never more open than hosts
    /// worked on at once.
    #[test]
    fn a_visit_closes_only_the_sessions_it_opened() {
        use std::sync::atomic::Ordering::SeqCst;
        let counted = |connected_first: bool| {
            let (mut fleet, open, peak) = counted_fleet(24);
            if connected_first {
                fleet.on_each(|_| true, Member::open);
            }
            let command = RemoteCommand::trusted("true", "true");
            let answers = fleet.visit(
                |_| true,
                |m| m.run(&command, Duration::from_secs(5)).is_ok(),
            );
            assert_eq!(answers, vec![true; 24]);
            (open.load(SeqCst), peak.load(SeqCst))
        };
        let (open, peak) = counted(false);
        assert_eq!(open, 0, "every session it opened was closed");
        assert!((2..=4).contains(&peak), "peak {peak}");
        let (open, _) = counted(true);
        assert_eq!(open, 24, "the sessions opened before stay open");
    }

    /// A second visit reaches again the hosts a first one closed (refresh-
    /// badges reads every host, then writes to each), and closes them again.
    #[test]
    fn a_second_visit_connects_again() {
        use std::sync::atomic::Ordering::SeqCst;
        let (mut fleet, open, peak) = counted_fleet(12);
        let command = RemoteCommand::trusted("true", "true");
        for round in 0..2 {
            let answers = fleet.visit(
                |_| true,
                |m| m.run(&command, Duration::from_secs(5)).is_ok(),
            );
            assert_eq!(answers, vec![true; 12], "round {round}");
            assert_eq!(open.load(SeqCst), 0, "round {round}: all closed");
        }
        assert!(peak.load(SeqCst) <= 4);
    }

    fn ssh(host: &str, address: &str, port: u16) -> Target {
        Target {
            stage: "test".into(),
            host: host.into(),
            kind: TargetKind::Ssh(transport::SshTarget {
                port,
                ..transport::SshTarget::example(host, address)
            }),
        }
    }

    /// Names of one server are taken up one per round; a different port
    /// is a different server; fleet order otherwise.
    #[test]
    fn work_is_spread_over_servers() {
        let targets = [
            ssh("a1", "10.0.0.1", 22),
            ssh("a2", "10.0.0.1", 22),
            ssh("a3", "10.0.0.1", 22),
            ssh("b1", "10.0.0.2", 22),
            ssh("b2", "10.0.0.2", 22),
            ssh("c1", "10.0.0.1", 2222),
            Target {
                stage: "test".into(),
                host: "local".into(),
                kind: TargetKind::Local,
            },
        ];
        let round = rounds(targets.iter());
        assert_eq!(round, [0, 1, 2, 0, 1, 0, 0]);
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by_key(|&i| round[i]);
        let order: Vec<&str> = order.iter().map(|&i| targets[i].host.as_str()).collect();
        assert_eq!(order, ["a1", "b1", "c1", "local", "a2", "b2", "a3"]);
        let results = in_fleet_order(&[(2, ()), (0, ()), (1, ())], vec!["c", "a", "b"]);
        assert_eq!(results, ["a", "b", "c"]);
    }

    #[test]
    fn a_watch_hears_which_hosts_are_still_pending_then_done() {
        let fake = Fake::default();
        let targets: Vec<Target> = ["fast", "slow"]
            .iter()
            .map(|h| {
                fake.world()
                    .hosts
                    .insert(h.to_string(), FakeHost::default());
                Target {
                    stage: "test".into(),
                    host: h.to_string(),
                    kind: TargetKind::Local,
                }
            })
            .collect();
        let recorder = Arc::new(Recorder::default());
        let mut fleet = Fleet::connect_with(targets, 8, Arc::new(fake)).watched(recorder.clone());
        let answers = fleet.on_stage("test", |m| {
            if m.host() == "slow" {
                // slow until the watch was told that only this host is left
                let deadline = Instant::now() + Duration::from_secs(10);
                while !recorder
                    .waits
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|w| w == &["slow".to_string()])
                {
                    assert!(Instant::now() < deadline, "never told");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            m.host().len()
        });
        assert_eq!(answers, [("fast".into(), 4), ("slow".into(), 4)]);
        assert_eq!(*recorder.done.lock().unwrap(), 1);
        // nothing after the end
        let seen = recorder.waits.lock().unwrap().len();
        std::thread::sleep(WATCH_TICK * 2);
        assert_eq!(recorder.waits.lock().unwrap().len(), seen);
    }
}
