//! A scripted stand-in for hosts, for unit tests of the deploy
//! orchestration only (batches, refusals, rollback decisions, a freeze
//! appearing between batches, an interrupt). It answers the commands this
//! crate sends (`dpkg-query`, `apt-cache policy`, `apt-get`, the lock,
//! `sudo -n true`, health checks) from a shared [`World`], by recognising
//! them in the command line. It proves nothing about apt, dpkg or SSH:
//! the testbed's real hosts do that.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Connector;
use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::freeze::Freeze;
use crate::transport::{Connection, Exec, Output, Target};

/// Called after every command with the world, the host and the command
/// line, to inject events (a freeze appears, an operator hits Ctrl-C).
pub type Hook = Box<dyn FnMut(&mut World, &str, &str) + Send>;

/// One pretend host.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    /// Installed packages and their versions.
    pub installed: BTreeMap<String, String>,
    /// Freeze records on the host.
    pub freezes: Vec<Freeze>,
    /// Who holds its deploy lock.
    pub lock: Option<String>,
    /// Refuse connections.
    pub down: bool,
    /// `sudo -n` wants a password.
    pub sudo_password: bool,
    /// `apt-get install` fails (as a failing postinst would, leaving the
    /// package half-configured at the new version).
    pub install_fails: bool,
    /// The health check fails.
    pub unhealthy: bool,
    /// Lines appended to the host's own history.
    pub history: Vec<String>,
    /// Appending to the host's history fails (a full disk).
    pub history_full: bool,
    /// What the failing append says on stderr, when not the default.
    pub history_error: Option<String>,
    /// Detached runs by directory: exit status and log (they end at once).
    pub runs: BTreeMap<String, (i32, String)>,
    /// The next command whose line contains this text loses the session
    /// (and the lock it held) instead of running.
    pub drop_session_on: Option<String>,
    /// The next command whose line contains this text times out (the
    /// session stays).
    pub time_out_on: Option<String>,
    /// The next command whose line contains this text fails (exit status
    /// 1) without doing anything.
    pub fail_on: Option<String>,
    /// Packages held with `apt-mark hold`.
    pub held: std::collections::BTreeSet<String>,
    /// Another process holds dpkg's lock: its pid and command, as apt
    /// names them (`4242 (unattended-upgr)`).
    pub dpkg_locked_by: Option<String>,
    /// Detached runs die without a status (the host rebooted): polls say
    /// `#gone` with this reason, and `dpkg --audit` finds the package
    /// half-configured.
    pub runs_gone: Option<String>,
}

/// Every pretend host, the repository, and what was run.
#[derive(Default)]
pub struct World {
    /// Hosts by name.
    pub hosts: BTreeMap<String, FakeHost>,
    /// Versions the repository offers, per package, any order.
    pub repository: BTreeMap<String, Vec<String>>,
    /// `(host, command line)` of every command, in order.
    pub log: Vec<(String, String)>,
    /// Run after every command.
    pub hooks: Vec<Hook>,
}

impl World {
    /// The command lines run on `host` that contain `needle`.
    pub fn ran(&self, host: &str, needle: &str) -> Vec<String> {
        self.log
            .iter()
            .filter(|(h, c)| h == host && c.contains(needle))
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// Connects to the hosts of a shared [`World`].
#[derive(Clone, Default)]
pub struct Fake(pub Arc<Mutex<World>>);

impl Fake {
    /// Lock the world for a look or a change.
    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Connector for Fake {
    fn connect(&self, target: &Target) -> Result<Box<dyn Connection>, HostError> {
        let down = self.world().hosts.get(&target.host).is_none_or(|h| h.down);
        if down {
            return Err(HostError::Connect {
                addr: target.host.clone(),
                message: "Connection refused (fake)".into(),
            });
        }
        Ok(Box::new(FakeConnection {
            host: target.host.clone(),
            world: Arc::clone(&self.0),
            holding: false,
            lost: false,
        }))
    }
}

struct FakeConnection {
    host: String,
    world: Arc<Mutex<World>>,
    holding: bool,
    lost: bool,
}

fn ok(stdout: String) -> Output {
    Output {
        status: 0,
        stdout,
        ..Output::default()
    }
}

fn fail(status: i32, stderr: &str) -> Output {
    Output {
        status,
        stderr: stderr.to_string(),
        ..Output::default()
    }
}

/// The `PKG=VERSION` argument of an apt-get line, unquoted.
fn pin(line: &str) -> Option<(String, String)> {
    let word = line
        .split_whitespace()
        .rev()
        .find(|w| w.contains('=') && !w.contains("::") && !w.starts_with("LC_"))?;
    let word = word.trim_matches(|c| c == '\'' || c == '\\');
    let (p, v) = word.split_once('=')?;
    Some((p.to_string(), v.to_string()))
}

/// The word after `marker` in `line`.
fn word_after<'a>(line: &'a str, marker: &str) -> &'a str {
    line.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
}

/// Who holds a lock taken through a fake connection.
const FAKE_HOLDER: &str = "a fake operator";

fn answer(world: &mut World, host: &str, line: &str, label: &str, stdin: &[u8]) -> Output {
    let h = world.hosts.get(host).cloned().unwrap_or_default();
    // a change under the lock proves the lock first (lock::guarded,
    // detach::start_command)
    if (line.contains("deployer-guard ") || line.contains("deployer-start "))
        && h.lock.as_deref() != Some(FAKE_HOLDER)
    {
        let holder = h.lock.as_deref().unwrap_or_default();
        return fail(
            crate::lock::LOST_STATUS,
            &format!("DEPLOYER-LOCK-LOST {holder}\n"),
        );
    }
    if line.contains("deployer-guard ") {
        let inner = line.replace("deployer-guard ", "");
        let inner = inner
            .strip_suffix(" root")
            .or_else(|| inner.strip_suffix(" user"))
            .unwrap_or(&inner);
        return answer(world, host, inner, label, stdin);
    }
    if line.contains("deployer-start ") {
        let dir = word_after(line, "deployer-start ").to_string();
        let inner = line.replace("deployer-start ", "");
        let out = answer(world, host, &inner, label, stdin);
        let host = world.hosts.entry(host.to_string()).or_default();
        host.runs
            .insert(dir, (out.status, format!("{}{}", out.stdout, out.stderr)));
        return ok("STARTED\n".into());
    }
    if line.contains("deployer-poll ") {
        let mut words = line
            .split("deployer-poll ")
            .nth(1)
            .unwrap_or_default()
            .split_whitespace();
        let dir = words.next().unwrap_or_default();
        let from: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        return match h.runs.get(dir) {
            Some((_, log)) if h.runs_gone.is_some() => ok(format!(
                "#gone {}\n#log 0 {}\n{log}",
                h.runs_gone.as_deref().unwrap_or_default(),
                log.len()
            )),
            Some((status, log)) => {
                let from = from.min(log.len());
                ok(format!(
                    "#status {status}\n#log {from} {}\n{}",
                    log.len(),
                    &log[from..]
                ))
            }
            None => ok("#missing\n".into()),
        };
    }
    if line.contains("deployer-lock-check ") {
        return ok(match h.lock.as_deref() {
            None => "FREE\n".into(),
            Some(FAKE_HOLDER) => "OURS\n".into(),
            Some(other) => format!("OTHER {other}\n"),
        });
    }
    if line.contains(crate::history::HOST_LOG_DIR) {
        // the read sends nothing on stdin; the append, one record
        if stdin.is_empty() {
            return ok(h.history.iter().map(|l| format!("{l}\n")).collect());
        }
        if h.history_full {
            return fail(
                1,
                h.history_error
                    .as_deref()
                    .unwrap_or("deployer history: No space left on device\n"),
            );
        }
        let host = world.hosts.entry(host.to_string()).or_default();
        host.history
            .push(String::from_utf8_lossy(stdin).trim_end().to_string());
        return ok(String::new());
    }
    if line.contains(crate::sudo::MARKER) {
        return ok(if h.sudo_password {
            "failed\nsudo: a password is required\n#validate\nsudo: a password is required\n".into()
        } else {
            "ok\n".into()
        });
    }
    if line.contains("apt-mark unhold") || line.contains("apt-mark hold") {
        let package = line
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .trim_matches(|c| c == '\'' || c == '\\')
            .to_string();
        let host = world.hosts.entry(host.to_string()).or_default();
        if line.contains("apt-mark unhold") {
            host.held.remove(&package);
        } else {
            host.held.insert(package);
        }
        return ok(String::new());
    }
    if line.contains("dpkg --audit") {
        return ok(match &h.runs_gone {
            Some(_) => {
                "The following packages are only half configured:\n fastpath  a fake package\n"
                    .into()
            }
            None => String::new(),
        });
    }
    if line.contains("dpkg-query -W") {
        let mut out = String::new();
        for (p, v) in &h.installed {
            let want = if h.held.contains(p) { 'h' } else { 'i' };
            out.push_str(&format!("{p}\t{v}\t{want}i \n"));
        }
        out.push_str("#dpkg-query-exit 1\n#freeze\n");
        for f in &h.freezes {
            out.push_str(&format!("#file {}\n{}\n", f.stage, f.to_line()));
        }
        return ok(out);
    }
    if line.contains("apt-cache policy") {
        let package = line.split_whitespace().last().unwrap_or_default();
        let versions = world.repository.get(package).cloned().unwrap_or_default();
        let mut parsed: Vec<crate::version::Version> =
            versions.iter().filter_map(|v| v.parse().ok()).collect();
        parsed.sort_by(|a, b| b.cmp(a));
        let installed = h.installed.get(package);
        let mut out = format!(
            "{package}:\n  Installed: {}\n  Candidate: {}\n  Version table:\n",
            installed.map_or("(none)", String::as_str),
            parsed.first().map_or("(none)".into(), ToString::to_string)
        );
        for v in parsed {
            let mark = if installed.is_some_and(|i| *i == v.to_string()) {
                " *** "
            } else {
                "     "
            };
            out.push_str(&format!(
                "{mark}{v} 500\n        500 file:/srv/repo ./ Packages\n"
            ));
        }
        return ok(out);
    }
    if line.contains("apt-get check") {
        return match &h.dpkg_locked_by {
            Some(holder) => fail(
                100,
                &format!(
                    "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process {holder}\n\
                     E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n"
                ),
            ),
            None => ok("Reading package lists...\n".into()),
        };
    }
    if line.contains("apt-get update") {
        return ok("Reading package lists...\n".into());
    }
    if line.contains("apt-get -s install") {
        let (p, v) = pin(line).unwrap_or_default();
        return ok(format!(
            "Inst {p} ({v} repo [all])\nConf {p} ({v} repo [all])\n"
        ));
    }
    if line.contains("apt-get install") {
        let Some((p, v)) = pin(line) else {
            return fail(100, "E: no package given (fake)\n");
        };
        let host = world.hosts.entry(host.to_string()).or_default();
        host.installed.insert(p.clone(), v);
        if h.install_fails {
            return fail(100, &format!("dpkg: error processing package {p} (--configure):\n installed {p} package post-installation script subprocess returned error exit status 1\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n"));
        }
        return ok(format!("Setting up {p}\n"));
    }
    if line.contains("apt-get remove") {
        let package = line
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .trim_matches(|c| c == '\'' || c == '\\');
        if let Some(host) = world.hosts.get_mut(host) {
            host.installed.remove(package);
        }
        return ok(String::new());
    }
    if label == "health check" {
        return if h.unhealthy {
            fail(1, "unhealthy\n")
        } else {
            ok("healthy\n".into())
        };
    }
    // a package's `restart_command` and `logs_command` (deploy::restart)
    if label == "restart command" {
        return ok("restarted\n".into());
    }
    // a `command` gate passes (`fail_on` makes it fail)
    if label == "gate command" {
        return ok("good\n".into());
    }
    if label == "logs command" {
        return ok(format!("{host}: service started\n"));
    }
    if line.starts_with("logger") {
        return ok(String::new());
    }
    fail(127, &format!("fake host cannot run `{line}`\n"))
}

impl Connection for FakeConnection {
    fn exec(&mut self, exec: Exec<'_>) -> Result<Output, HostError> {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let line = exec.command.as_str().to_string();
        if self.lost {
            return Err(HostError::Disconnected("the fake session is gone".into()));
        }
        let host = world.hosts.entry(self.host.clone()).or_default();
        if host
            .drop_session_on
            .as_ref()
            .is_some_and(|needle| line.contains(needle.as_str()))
        {
            // as a real session: what it held goes with it
            host.drop_session_on = None;
            if self.holding {
                host.lock = None;
                self.holding = false;
            }
            self.lost = true;
            return Err(HostError::Disconnected(format!(
                "running `{}`: the fake session dropped",
                exec.command.label()
            )));
        }
        if host
            .time_out_on
            .as_ref()
            .is_some_and(|needle| line.contains(needle.as_str()))
        {
            host.time_out_on = None;
            return Err(HostError::Timeout {
                phase: format!("running `{}`", exec.command.label()),
                after: exec.timeout,
            });
        }
        if host
            .fail_on
            .as_ref()
            .is_some_and(|needle| line.contains(needle.as_str()))
        {
            host.fail_on = None;
            world.log.push((self.host.clone(), line.clone()));
            return Ok(fail(1, "fake failure\n"));
        }
        world.log.push((self.host.clone(), line.clone()));
        let out = answer(
            &mut world,
            &self.host,
            &line,
            exec.command.label(),
            exec.stdin.unwrap_or_default(),
        );
        let mut hooks = std::mem::take(&mut world.hooks);
        for hook in &mut hooks {
            hook(&mut world, &self.host, &line);
        }
        hooks.append(&mut world.hooks);
        world.hooks = hooks;
        Ok(out)
    }

    fn hold_with(
        &mut self,
        command: &RemoteCommand,
        _timeout: Duration,
        _heartbeat: Duration,
    ) -> Result<String, HostError> {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        world
            .log
            .push((self.host.clone(), command.as_str().to_string()));
        let host = world.hosts.entry(self.host.clone()).or_default();
        match &host.lock {
            Some(holder) if !self.holding => Ok(format!("BUSY {holder}")),
            _ => {
                host.lock = Some(FAKE_HOLDER.into());
                self.holding = true;
                Ok("LOCKED".into())
            }
        }
    }

    fn is_open(&self) -> bool {
        !self.lost
    }

    fn release(&mut self) {
        if !self.holding {
            return;
        }
        self.holding = false;
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = world.hosts.get_mut(&self.host) {
            h.lock = None;
        }
    }
}

impl Drop for FakeConnection {
    // as a real connection: the lock goes when the connection does
    fn drop(&mut self) {
        self.release();
    }
}
