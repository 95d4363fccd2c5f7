//! Carrying out deploys, rollbacks and promotions through the fleet's
//! connections, with every safety rail checked before the first host is
//! touched: input validation, reachability, freeze, sudo, the deploy lock,
//! `apt-get update`, availability, the stage order guard and confirmation.
//!
//! The decisions are `plan`'s; this module performs them, reports what
//! happened host by host, and records every attempt in the history.

use std::io::{self, BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::apt;
use crate::command::RemoteCommand;
use crate::config::Config;
use crate::error::{ExitStatus, Fatal, HostError};
use crate::fanout;
use crate::fleet::{Fleet, Member};
use crate::history::{self, HostRecord, HostResult, Outcome, Record};
use crate::lock;
use crate::matrix::{Cell, Marker, Matrix};
use crate::package::PackageName;
use crate::plan::{self, HostFacts, Plan, Refusal, Step, Wanted};
use crate::render::{self, Color};
use crate::status::{self, PackageState};
use crate::transport::{self, Exec, Stream};
use crate::version::Version;

/// What the operator asked for.
#[derive(Debug, Clone)]
pub enum Request {
    /// `deploy PKG [STAGE [VERSION]]`.
    Deploy {
        /// Package as typed.
        package: String,
        /// Stage as typed; the first stage when omitted.
        stage: Option<String>,
        /// Version as typed; the newest installable when omitted.
        version: Option<String>,
    },
    /// `promote PKG [STAGE]`.
    Promote {
        /// Package as typed.
        package: String,
        /// Stage as typed; the first stage behind its left neighbour when
        /// omitted.
        stage: Option<String>,
    },
}

impl Request {
    /// The action's name and the text typed for package, stage and version.
    pub fn parts(&self) -> (&'static str, &str, Option<&str>, Option<&str>) {
        match self {
            Request::Deploy {
                package,
                stage,
                version,
            } => ("deploy", package, stage.as_deref(), version.as_deref()),
            Request::Promote { package, stage } => ("promote", package, stage.as_deref(), None),
        }
    }
}

/// What [`validate`] found the operator's text to mean.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The package, one of `deb_packages`.
    pub package: PackageName,
    /// The stage's position in `stages`, when one was named.
    pub stage: Option<usize>,
    /// The version, when one was named.
    pub version: Option<Version>,
}

/// How to carry it out.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Do not ask for confirmation on critical stages.
    pub yes: bool,
    /// Override the stage order guard and a freeze.
    pub force: bool,
    /// Why `--force` was used (required to deploy into a frozen stage).
    pub reason: Option<String>,
    /// Hosts changed at once after the first (overrides `batch_size`).
    pub batch: Option<usize>,
    /// Put changed hosts back when the rollout fails.
    pub rollback_on_failure: bool,
    /// Stream every host's apt output.
    pub verbose: bool,
    /// Colour for the matrices.
    pub color: Color,
}

/// Check a package name against the configuration (before any connection).
pub fn check_package(config: &Config, text: &str) -> Result<PackageName, Fatal> {
    let listed = || {
        config
            .packages
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name: PackageName = text
        .parse()
        .map_err(|e: crate::package::PackageNameError| {
            Fatal::usage(e.to_string()).note(format!("packages in `deb_packages`: {}", listed()))
        })?;
    if !config.packages.contains(&name) {
        return Err(Fatal::usage(format!(
            "package `{name}` is not one of `deb_packages` in {}",
            config.path.display()
        ))
        .note(format!("packages in `deb_packages`: {}", listed())));
    }
    Ok(name)
}

/// Check a stage name against the configuration (before any connection).
pub fn check_stage(config: &Config, text: &str) -> Result<usize, Fatal> {
    config
        .stages
        .iter()
        .position(|s| s.name == text)
        .ok_or_else(|| {
            let names: Vec<&str> = config.stages.iter().map(|s| s.name.as_str()).collect();
            let shown: String = text
                .chars()
                .take(64)
                .collect::<String>()
                .escape_debug()
                .to_string();
            Fatal::usage(format!(
                "stage `{shown}` is not in `stages` ({})",
                names.join(", ")
            ))
        })
}

/// Check a version's syntax (before any connection).
pub fn check_version(text: &str) -> Result<Version, Fatal> {
    text.parse::<Version>().map_err(|e| {
        Fatal::usage(e.to_string()).note(
            "a Debian version is [epoch:]upstream[-revision], e.g. `0.81~pr748-191` or `1:1.0-1`",
        )
    })
}

/// Check everything the operator typed, before any host is contacted.
pub fn validate(config: &Config, request: &Request, opts: &Options) -> Result<Checked, Fatal> {
    let (_, package, stage, version) = request.parts();
    let package = check_package(config, package)?;
    let stage = stage.map(|s| check_stage(config, s)).transpose()?;
    if stage == Some(0) && matches!(request, Request::Promote { .. }) {
        return Err(Fatal::usage(format!(
            "`{}` is the first stage: there is nothing before it to promote from",
            config.stages[0].name
        ))
        .note("use `deployer deploy` to put a version on the first stage"));
    }
    let version = version.map(check_version).transpose()?;
    if opts.force && opts.reason.is_none() && !opts.dry_run {
        return Err(Fatal::usage(
            "`--force` needs `--reason \"...\"`, which is kept in the history",
        ));
    }
    Ok(Checked {
        package,
        stage,
        version,
    })
}

/// Record an attempt rejected for its input (an unknown package, a
/// malformed version, perhaps an injection attempt) in the history, text
/// as typed: JSON escaping keeps it inert.
pub fn record_rejected(config: &Config, request: &Request, fatal: &Fatal) {
    let (action, package, stage, version) = request.parts();
    let record = Record {
        package: Some(package.to_string()),
        version: version.map(str::to_string),
        reason: Some(fatal.message.clone()),
        ..Record::begin(action, stage.unwrap_or_default(), Outcome::Refused)
    };
    history::append_or_warn(&config.history_file, &record);
}

struct Run<'a> {
    config: &'a Config,
    opts: &'a Options,
    started: Instant,
    user: String,
    machine: String,
    action: &'static str,
    package: PackageName,
    stage: String,
    version: Option<Version>,
    forced: bool,
}

impl Run<'_> {
    fn record(&self, outcome: Outcome, reason: Option<String>, hosts: Vec<HostRecord>) {
        if self.opts.dry_run {
            return;
        }
        let record = Record {
            package: Some(self.package.to_string()),
            version: self.version.as_ref().map(ToString::to_string),
            reason,
            forced: self.forced,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            hosts,
            ..Record::begin(self.action, &self.stage, outcome)
        };
        history::append_or_warn(&self.config.history_file, &record);
    }

    /// Refuse: record it and build the error.
    fn refuse(&self, message: String, notes: Vec<String>) -> Fatal {
        self.record(Outcome::Refused, Some(message.clone()), Vec::new());
        let mut f = Fatal::usage(message).status(ExitStatus::Refused);
        f.notes = notes;
        f.notes.push("no host was changed".to_string());
        f
    }
}

fn print_matrix(title: &str, m: &Matrix, color: Color) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{title}");
    let _ = render::text(m, color, &mut out);
    let _ = writeln!(out);
}

fn say(line: &str) {
    let _ = writeln!(io::stdout().lock(), "{line}");
}

/// Run `command` on every member at once; results in member order.
fn on_each(
    members: &mut [Member],
    parallelism: usize,
    command: &RemoteCommand,
    timeout: Duration,
) -> Vec<Result<transport::Output, HostError>> {
    fanout::map(members, parallelism, |m| m.run(command, timeout))
}

fn host_block(host: &str, text: &str) -> String {
    let body: Vec<String> = text
        .trim_end()
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|l| format!("    | {l}"))
        .collect();
    format!("{host} said:\n{}", body.join("\n"))
}

/// Deploy, roll back or promote what [`validate`] accepted (`checked`, from
/// the same `request`). Returns the exit status; refusals and failures
/// before any change come back as [`Fatal`].
pub fn run(
    config: &Config,
    mut fleet: Fleet,
    request: &Request,
    checked: Checked,
    opts: &Options,
) -> Result<ExitStatus, Fatal> {
    let (user, machine) = history::local_identity();
    let (action, ..) = request.parts();
    let Checked {
        package,
        stage: mut stage_index,
        version: explicit,
    } = checked;

    let timeouts = &config.ssh;
    let reports = fleet.status(&config.packages, timeouts.command_timeout);
    let before = crate::app::build_matrix(config, &reports);
    print_matrix("Before:", &before, opts.color);
    let row = before
        .rows
        .iter()
        .position(|r| r.package == package)
        .expect("package is configured");

    // promote: which stage, and the version its left neighbour runs
    let mut wanted = explicit.clone().map_or(Wanted::Newest, Wanted::Exact);
    if let Request::Promote { .. } = request {
        let idx = match stage_index {
            Some(i) => i,
            None => match before.rows[row]
                .markers
                .iter()
                .position(|m| *m == Marker::Pending)
            {
                Some(i) => i + 1,
                None => {
                    say(&format!("Nothing to promote: no stage is behind its left neighbour for `{package}`."));
                    return Ok(ExitStatus::Success);
                }
            },
        };
        stage_index = Some(idx);
        let source = &config.stages[idx - 1].name;
        match &before.rows[row].cells[idx - 1] {
            Cell::Uniform(PackageState::Installed(v)) if before.columns[idx - 1].down == 0 => {
                wanted = Wanted::Exact(v.clone());
            }
            _ => {
                let detail: Vec<String> = reports
                    .iter()
                    .filter(|r| &r.stage == source)
                    .map(|r| match &r.result {
                        Ok(s) => format!("{}: {}", r.host, s.packages[&package]),
                        Err(e) => format!("{}: did not answer ({e})", r.host),
                    })
                    .collect();
                let run = Run {
                    config,
                    opts,
                    started: Instant::now(),
                    user,
                    machine,
                    action,
                    package: package.clone(),
                    stage: config.stages[idx].name.clone(),
                    version: None,
                    forced: opts.force,
                };
                return Err(run.refuse(
                    format!("cannot promote `{package}` to `{}`: the hosts of `{source}` do not all run one installed version", config.stages[idx].name),
                    detail,
                ));
            }
        }
    }
    let stage_index = stage_index.unwrap_or(0);
    let stage = &config.stages[stage_index];
    let mut run = Run {
        config,
        opts,
        started: Instant::now(),
        user: user.clone(),
        machine: machine.clone(),
        action,
        package: package.clone(),
        stage: stage.name.clone(),
        version: match &wanted {
            Wanted::Exact(v) => Some(v.clone()),
            Wanted::Newest => None,
        },
        forced: opts.force,
    };

    // a forced freeze is announced once, on the check the plan is made from
    ready(&run, &before, &reports, stage_index, opts, opts.dry_run)?;

    let range = fleet.stage_range(&stage.name);
    let parallelism = fleet.parallelism;

    // sudo must work without a password everywhere before anything starts
    let sudo = RemoteCommand::new("true").sudo();
    let checks = on_each(
        &mut fleet.members[range.clone()],
        parallelism,
        &sudo,
        timeouts.command_timeout,
    );
    let mut sudo_problems = Vec::new();
    for (m, r) in fleet.members[range.clone()].iter().zip(&checks) {
        match r {
            Ok(out) if out.success() => {}
            Ok(out) if transport::sudo_wants_password(&out.stderr) => sudo_problems.push(format!(
                "{}: {}",
                m.target.host,
                HostError::SudoPassword {
                    user: login_user(m)
                }
            )),
            Ok(out) => sudo_problems.push(format!(
                "{}: `sudo -n true` failed: {}",
                m.target.host,
                out.stderr.trim()
            )),
            Err(e) => sudo_problems.push(format!("{}: {e}", m.target.host)),
        }
    }
    if !sudo_problems.is_empty() {
        return Err(run.refuse(
            format!(
                "sudo does not work without a password on {} host(s) of `{}`",
                sudo_problems.len(),
                stage.name
            ),
            sudo_problems,
        ));
    }

    // the deploy lock, held until the end of the run
    if !opts.dry_run {
        let holder = format!(
            "{user}@{machine} since {} (pid {})",
            history::now_rfc3339(),
            std::process::id()
        );
        let command = lock::command(&holder);
        let answers = fanout::map(
            &mut fleet.members[range.clone()],
            parallelism,
            |m| match &mut m.conn {
                Ok(conn) => conn.hold(&command, timeouts.command_timeout),
                Err(e) => Err(e.clone()),
            },
        );
        let mut problems = Vec::new();
        for (m, a) in fleet.members[range.clone()].iter().zip(&answers) {
            match a.as_ref().map(|l| lock::parse(l)) {
                Ok(lock::Answer::Locked) => {}
                Ok(lock::Answer::Busy(who)) => problems.push(format!(
                    "{}: another deploy holds the lock: {who}",
                    m.target.host
                )),
                Ok(lock::Answer::Failed(what)) => problems.push(format!(
                    "{}: could not take the lock ({what})",
                    m.target.host
                )),
                Err(e) => problems.push(format!("{}: {e}", m.target.host)),
            }
        }
        if !problems.is_empty() {
            for m in &mut fleet.members[range.clone()] {
                if let Ok(conn) = &mut m.conn {
                    conn.release();
                }
            }
            return Err(run.refuse(
                format!("`{}` is being deployed to by someone else", stage.name),
                problems,
            ));
        }

        // fresh package lists on every host, as an operator would
        say(&format!(
            "Updating apt lists on {} host(s) of `{}`...",
            range.len(),
            stage.name
        ));
        let updates = on_each(
            &mut fleet.members[range.clone()],
            parallelism,
            &apt::update(),
            timeouts.deploy_timeout,
        );
        let failed: Vec<String> = fleet.members[range.clone()]
            .iter()
            .zip(&updates)
            .filter_map(|(m, r)| match r {
                Ok(out) if out.success() => None,
                Ok(out) => Some(host_block(
                    &m.target.host,
                    &format!("{}{}", out.stdout, out.stderr),
                )),
                Err(e) => Some(format!("{}: {e}", m.target.host)),
            })
            .collect();
        if !failed.is_empty() {
            let message = format!(
                "`apt-get update` failed on {} host(s) of `{}`",
                failed.len(),
                stage.name
            );
            run.record(Outcome::Failed, Some(message.clone()), Vec::new());
            let mut f = Fatal::usage(message).status(ExitStatus::FailedUnchanged);
            f.notes = failed;
            f.notes.push("no package was changed".to_string());
            return Err(f);
        }
    }

    // Facts read again now that the lock is held: nobody else can change
    // these hosts any more, and a freeze set meanwhile is seen.
    let reports = if opts.dry_run {
        reports
    } else {
        let fresh = fleet.status(&config.packages, timeouts.command_timeout);
        ready(
            &run,
            &crate::app::build_matrix(config, &fresh),
            &fresh,
            stage_index,
            opts,
            true,
        )?;
        fresh
    };

    // what apt can install on each host
    let policies = on_each(
        &mut fleet.members[range.clone()],
        parallelism,
        &apt::policy(&package),
        timeouts.command_timeout,
    );
    let mut hosts = Vec::new();
    for (m, r) in fleet.members[range.clone()].iter().zip(policies) {
        let state = reports
            .iter()
            .find(|r| r.host == m.target.host && r.stage == stage.name)
            .and_then(|r| r.result.as_ref().ok())
            .map(|s| s.packages[&package].clone())
            .unwrap_or(PackageState::NotInstalled);
        let policy = r
            .map_err(|e| e.to_string())
            .and_then(|out| apt::parse_policy(&package, &out.stdout))
            .map_err(|e| {
                run.refuse(
                    format!("cannot read what apt can install on `{}`", m.target.host),
                    vec![e],
                )
            })?;
        hosts.push(HostFacts {
            host: m.target.host.clone(),
            state,
            policy,
            // apt-checks: neutral until deploy/ wires holds and simulations
            held: false,
            simulation: None,
        });
    }
    let previous = (stage_index > 0).then(|| {
        let prev = &config.stages[stage_index - 1].name;
        let states = reports
            .iter()
            .filter(|r| &r.stage == prev)
            .map(|r| {
                (
                    r.host.clone(),
                    r.result.as_ref().ok().map(|s| s.packages[&package].clone()),
                )
            })
            .collect();
        (prev.clone(), states)
    });
    let input = plan::Input {
        package: package.clone(),
        stage: stage.name.clone(),
        critical: stage.critical,
        previous,
        hosts,
        wanted,
        force: opts.force,
        batch_size: opts.batch.unwrap_or(config.batch_size),
        // apt-checks: neutral until deploy/ wires these rails
        allow_dependency_changes: false,
        hold: false,
        allow_held: false,
        rollback: false,
    };
    let plan = match plan::make(&input) {
        Ok(p) => p,
        Err(refusal) => {
            let (message, notes) = refusal.explain(&package, &stage.name);
            if let Refusal::Unavailable { version, .. } | Refusal::OrderGuard { version, .. } =
                &refusal
            {
                run.version = Some(version.clone());
            }
            return Err(run.refuse(message, notes));
        }
    };
    run.version = Some(plan.version.clone());
    let lock_secs = timeouts.lock_timeout.as_secs().max(1);
    let commands: Vec<RemoteCommand> = plan
        .steps
        .iter()
        .map(|s| apt::install(&package, &plan.version, s.downgrade, lock_secs, false))
        .collect();

    if opts.dry_run {
        let mut details = Vec::new();
        for (step, cmd) in plan.steps.iter().zip(&commands) {
            let i = fleet.position(&stage.name, &step.host);
            let sim = apt::install(&package, &plan.version, step.downgrade, lock_secs, true);
            let lines = match fleet.members[i].run(&sim, timeouts.command_timeout) {
                Ok(out) if out.success() => apt::simulation_summary(&out.stdout),
                Ok(out) => vec![format!("apt-get -s failed: {}", out.stderr.trim())],
                Err(e) => vec![format!("apt-get -s failed: {e}")],
            };
            details.push((cmd.to_string(), lines));
        }
        say(&plan.describe(&details));
        say("Dry run: nothing was changed on any host (apt lists included).");
        return Ok(ExitStatus::Success);
    }

    if plan.steps.is_empty() {
        say(&plan.describe(&[]));
        let hosts = plan
            .unchanged
            .iter()
            .map(|h| HostRecord {
                host: h.clone(),
                from: Some(plan.version.to_string()),
                to: Some(plan.version.to_string()),
                result: HostResult::Unchanged,
                message: None,
            })
            .collect();
        run.record(Outcome::Success, Some("nothing to do".into()), hosts);
        return Ok(ExitStatus::Success);
    }

    if plan.critical && !opts.yes {
        let details: Vec<(String, Vec<String>)> = commands
            .iter()
            .map(|c| (c.to_string(), Vec::new()))
            .collect();
        say(&plan.describe(&details));
        if !io::stdin().is_terminal() {
            return Err(run.refuse(
                format!(
                    "`{}` is a critical stage and there is no terminal to confirm on",
                    stage.name
                ),
                vec![
                    "pass `--yes` to deploy without confirmation (e.g. from a script)".to_string(),
                ],
            ));
        }
        eprint!(
            "Deploy `{package}` {} to critical stage `{}`? Type `yes` to go on: ",
            plan.version, stage.name
        );
        let mut answer = String::new();
        let _ = io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            return Err(run.refuse("not confirmed".to_string(), Vec::new()));
        }
    }

    let outcomes = execute(config, &mut fleet, &plan, &commands, opts);
    finish(config, &mut fleet, &plan, outcomes, &run, opts)
}

/// The stage can be deployed to: every host answered and the stage is not
/// frozen (or `--force` overrides the freeze). Checked on the first status
/// read, and again once the lock is held; `announce` prints the warning
/// for a freeze overridden by `--force`.
fn ready(
    run: &Run<'_>,
    matrix: &Matrix,
    reports: &[crate::matrix::HostReport],
    stage_index: usize,
    opts: &Options,
    announce: bool,
) -> Result<(), Fatal> {
    let stage = &run.config.stages[stage_index];
    // every host of the stage must answer
    let down: Vec<String> = reports
        .iter()
        .filter(|r| r.stage == stage.name)
        .filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.host)))
        .collect();
    if !down.is_empty() {
        return Err(run.refuse(
            format!(
                "{} host(s) of `{}` cannot be reached; refusing a partial deploy",
                down.len(),
                stage.name
            ),
            down,
        ));
    }

    // freeze
    if let Some(freeze) = &matrix.columns[stage_index].freeze {
        if !opts.force {
            return Err(run.refuse(
                format!("stage `{}` is {}", stage.name, freeze.describe()),
                vec![format!(
                    "`deployer unfreeze {}` lifts it; `--force --reason \"...\"` overrides it once, and is recorded",
                    stage.name
                )],
            ));
        }
        if announce {
            say(&format!(
                "Warning: deploying into frozen stage `{}` ({}), forced.",
                stage.name,
                freeze.describe()
            ));
        }
    }

    Ok(())
}

fn login_user(m: &Member) -> String {
    match &m.target.kind {
        transport::TargetKind::Ssh(s) => s.user.clone(),
        transport::TargetKind::Local => "this user".to_string(),
    }
}

/// What happened to one host of the plan.
#[derive(Debug, Clone)]
enum Done {
    /// Now runs the target version (and passed its health check).
    Changed,
    /// Failed; `now` is its state afterwards, `None` when unknown.
    Failed {
        why: String,
        output: String,
        now: Option<PackageState>,
    },
    /// Not tried, because the rollout stopped.
    Untouched,
}

fn read_state(
    member: &mut Member,
    package: &PackageName,
    timeout: Duration,
) -> Result<PackageState, HostError> {
    let out = member.run(
        &status::query_command(std::slice::from_ref(package)),
        timeout,
    )?;
    Ok(status::parse(std::slice::from_ref(package), &out)?.packages[package].clone())
}

/// Prints a host's output line by line with its name in front.
struct Prefixer<'a> {
    host: &'a str,
    partial: Vec<u8>,
}

impl Prefixer<'_> {
    fn feed(&mut self, _stream: Stream, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            // progress meters redraw with `\r`: keep what a terminal would show
            let shown = text
                .trim_end_matches(['\n', '\r'])
                .rsplit('\r')
                .next()
                .unwrap_or_default();
            let _ = writeln!(io::stdout().lock(), "{} | {shown}", self.host);
        }
    }
}

fn install_one(
    config: &Config,
    member: &mut Member,
    plan: &Plan,
    command: &RemoteCommand,
    verbose: bool,
) -> Done {
    let host = member.target.host.clone();
    let timeouts = &config.ssh;
    let started = Instant::now();
    let mut prefixer = Prefixer {
        host: &host,
        partial: Vec::new(),
    };
    let mut sink = |s: Stream, b: &[u8]| prefixer.feed(s, b);
    let result = match &mut member.conn {
        Ok(conn) => conn.exec(Exec {
            command,
            timeout: timeouts.deploy_timeout,
            stdin: None,
            on_output: if verbose { Some(&mut sink) } else { None },
        }),
        Err(e) => Err(e.clone()),
    };
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            member.lose(e.clone());
            return Done::Failed {
                why: format!("unknown state: check with `deployer status` ({e})"),
                output: String::new(),
                now: None,
            };
        }
    };
    let combined = format!("{}{}", out.stdout, out.stderr);
    let now = read_state(member, &plan.package, timeouts.command_timeout).ok();
    if !out.success() {
        let why = if transport::sudo_wants_password(&out.stderr) {
            HostError::SudoPassword {
                user: login_user(member),
            }
            .to_string()
        } else {
            apt::failure_hint(&combined)
                .unwrap_or_else(|| format!("apt-get exited with status {}", out.status))
        };
        return Done::Failed {
            why,
            output: combined,
            now,
        };
    }
    match &now {
        Some(PackageState::Installed(v)) if *v == plan.version => {}
        Some(other) => {
            return Done::Failed {
                why: format!("apt-get succeeded but dpkg now shows {other}"),
                output: combined,
                now,
            }
        }
        None => {
            return Done::Failed {
                why: "unknown state: check with `deployer status` (could not read dpkg's state after the install)".into(),
                output: combined,
                now: None,
            }
        }
    }
    if let Some(check) = config.health_checks.get(&plan.package) {
        let cmd = RemoteCommand::trusted(check, "health check");
        match member.run(&cmd, timeouts.command_timeout) {
            Ok(o) if o.success() => {}
            Ok(o) => {
                return Done::Failed {
                    why: format!("health check `{check}` failed (exit status {})", o.status),
                    output: format!("{}{}", o.stdout, o.stderr),
                    now,
                }
            }
            Err(e) => {
                return Done::Failed {
                    why: format!("health check `{check}` could not run: {e}"),
                    output: String::new(),
                    now,
                }
            }
        }
    }
    say(&format!(
        "  {host}: now runs {} ({:.1}s)",
        plan.version,
        started.elapsed().as_secs_f32()
    ));
    Done::Changed
}

fn execute(
    config: &Config,
    fleet: &mut Fleet,
    plan: &Plan,
    commands: &[RemoteCommand],
    opts: &Options,
) -> Vec<Done> {
    let mut done: Vec<Done> = vec![Done::Untouched; plan.steps.len()];
    for (b, batch) in plan.batches.iter().enumerate() {
        let names: Vec<&str> = batch.iter().map(|&i| plan.steps[i].host.as_str()).collect();
        say(&format!(
            "Batch {}/{}: {}",
            b + 1,
            plan.batches.len(),
            names.join(", ")
        ));
        let mut slots: Vec<(usize, Option<Member>)> = Vec::new();
        for &i in batch {
            let at = fleet.position(&plan.stage, &plan.steps[i].host);
            let placeholder = Member {
                target: fleet.members[at].target.clone(),
                conn: Err(HostError::Ssh("in use".into())),
            };
            slots.push((
                i,
                Some(std::mem::replace(&mut fleet.members[at], placeholder)),
            ));
        }
        let results = fanout::map(&mut slots, fleet.parallelism, |(i, member)| {
            install_one(
                config,
                member.as_mut().expect("member"),
                plan,
                &commands[*i],
                opts.verbose,
            )
        });
        for ((i, member), result) in slots.into_iter().zip(results) {
            let at = fleet.position(&plan.stage, &plan.steps[i].host);
            fleet.members[at] = member.expect("member");
            done[i] = result;
        }
        if batch
            .iter()
            .any(|&i| matches!(done[i], Done::Failed { .. }))
        {
            break;
        }
    }
    done
}

fn rollback_one(
    config: &Config,
    member: &mut Member,
    plan: &Plan,
    step: &Step,
) -> Result<(), String> {
    let lock_secs = config.ssh.lock_timeout.as_secs().max(1);
    let command = match &step.from {
        PackageState::Installed(v)
        | PackageState::Broken {
            version: Some(v), ..
        } => apt::install(&plan.package, v, *v < plan.version, lock_secs, false),
        _ => apt::remove(&plan.package, lock_secs),
    };
    let out = member
        .run(&command, config.ssh.deploy_timeout)
        .map_err(|e| e.to_string())?;
    let now =
        read_state(member, &plan.package, config.ssh.command_timeout).map_err(|e| e.to_string())?;
    if out.success() && now.same_as(&step.from) {
        Ok(())
    } else {
        Err(format!(
            "rollback did not restore {}: dpkg shows {now}; {}",
            step.from,
            apt::failure_hint(&format!("{}{}", out.stdout, out.stderr)).unwrap_or_default()
        ))
    }
}

fn finish(
    config: &Config,
    fleet: &mut Fleet,
    plan: &Plan,
    done: Vec<Done>,
    run: &Run<'_>,
    opts: &Options,
) -> Result<ExitStatus, Fatal> {
    let failed = done.iter().any(|d| matches!(d, Done::Failed { .. }));
    let rollback = failed && (opts.rollback_on_failure || config.rollback_on_failure);
    let mut records = Vec::new();
    let mut changed_any = false;
    let mut report = Vec::new();
    let range = fleet.stage_range(&plan.stage);
    for (step, d) in plan.steps.iter().zip(&done) {
        let at = fleet.position(&plan.stage, &step.host);
        let (mut result, mut message, mut to) = match d {
            Done::Changed => (HostResult::Changed, None, Some(plan.version.to_string())),
            Done::Untouched => (HostResult::Untouched, None, None),
            Done::Failed { why, now, .. } => match now {
                Some(now) if now.same_as(&step.from) => {
                    (HostResult::Failed, Some(why.clone()), None)
                }
                Some(now) => (HostResult::Failed, Some(why.clone()), Some(now.to_string())),
                None => (HostResult::Unknown, Some(why.clone()), None),
            },
        };
        let touched = matches!(d, Done::Changed)
            || matches!(d, Done::Failed { now, .. } if !now.as_ref().is_some_and(|n| n.same_as(&step.from)));
        if touched && rollback {
            match rollback_one(config, &mut fleet.members[at], plan, step) {
                Ok(()) => {
                    result = HostResult::RolledBack;
                    to = Some(step.from.to_string());
                    message = Some(match message {
                        Some(m) => format!("{m}; rolled back to {}", step.from),
                        None => format!("rolled back to {}", step.from),
                    });
                }
                Err(e) => {
                    message = Some(match message {
                        Some(m) => format!("{m}; {e}"),
                        None => e,
                    });
                }
            }
        }
        changed_any |= touched;
        let line = match (&result, &message) {
            (HostResult::Changed, _) => {
                format!("  {}: changed {} -> {}", step.host, step.from, plan.version)
            }
            (HostResult::Untouched, _) => {
                format!("  {}: untouched (still {})", step.host, step.from)
            }
            (HostResult::RolledBack, Some(m)) => format!("  {}: {m}", step.host),
            (_, Some(m)) => format!("  {}: FAILED: {m}", step.host),
            (_, None) => format!("  {}: {:?}", step.host, result),
        };
        report.push(line);
        if let Done::Failed { output, .. } = d {
            if !output.trim().is_empty() {
                for l in host_block(&step.host, output).lines() {
                    report.push(format!("    {l}"));
                }
            }
        }
        records.push(HostRecord {
            host: step.host.clone(),
            from: step.from.version().map(ToString::to_string),
            to,
            result,
            message,
        });
    }
    for h in &plan.unchanged {
        records.push(HostRecord {
            host: h.clone(),
            from: Some(plan.version.to_string()),
            to: Some(plan.version.to_string()),
            result: HostResult::Unchanged,
            message: None,
        });
    }

    let reports = fleet.status(&config.packages, config.ssh.command_timeout);
    let after = crate::app::build_matrix(config, &reports);
    print_matrix("\nAfter:", &after, opts.color);

    let outcome = match (failed, changed_any) {
        (false, _) => Outcome::Success,
        (true, false) => Outcome::Failed,
        (true, true) => Outcome::Partial,
    };
    let heading = match outcome {
        Outcome::Success => format!(
            "Deployed `{}` {} to `{}`:",
            plan.package, plan.version, plan.stage
        ),
        Outcome::Failed => format!(
            "Deploy of `{}` {} to `{}` FAILED; no host was changed:",
            plan.package, plan.version, plan.stage
        ),
        _ => format!(
            "Deploy of `{}` {} to `{}` FAILED after changing hosts:",
            plan.package, plan.version, plan.stage
        ),
    };
    say(&heading);
    for l in &report {
        say(l);
    }
    let mut reasons: Vec<String> = Vec::new();
    if run.forced {
        reasons.push(format!(
            "forced: {}",
            opts.reason.as_deref().unwrap_or_default()
        ));
        reasons.extend(plan.overridden.iter().map(|o| format!("overrode {o}")));
    }
    reasons.extend(records.iter().find_map(|r| r.message.clone()));
    let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    run.record(outcome, reason, records.clone());

    // tell each host's syslog what happened
    let summary = format!(
        "{} {} {} to {} by {}@{}: {:?}",
        run.action, plan.package, plan.version, plan.stage, run.user, run.machine, outcome
    );
    let logger = RemoteCommand::new("logger").args(["-t", "deployer", "--", &summary]);
    let _ = on_each(
        &mut fleet.members[range],
        fleet.parallelism,
        &logger,
        config.ssh.command_timeout,
    );

    Ok(match outcome {
        Outcome::Success => ExitStatus::Success,
        Outcome::Failed => ExitStatus::FailedUnchanged,
        _ => ExitStatus::FailedPartial,
    })
}
