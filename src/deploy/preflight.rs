//! The preflight phase: everything checked before the first host is
//! changed, in order. Reachability and freezes (on the first read, and
//! again under the lock), the alerts holding the stage (`[alerts]`,
//! [`super::alert_hold`]), sudo, the deploy lock, fresh apt lists (a list
//! that cannot be fetched is an error), the states read again once nobody
//! else can change them, dpkg idle on every host, what apt can install,
//! and the plan. Ends with the confirmation of critical stages.
//!
//! Any doubt refuses, with the reason, and is recorded; nothing here
//! changes a package.

use crate::apt;
use crate::changelog::{self, Review};
use crate::command::RemoteCommand;
use crate::debcache;
use crate::error::{Fatal, HostError};
use crate::fleet::{self, Fleet};
use crate::history;
use crate::lock;
use crate::package::PackageName;
use crate::plan::{self, HostCommands, HostFacts, Plan, Refusal};
use crate::status::PackageState;
use crate::sudo;
use crate::transport;

use super::attempt::Attempt;
use super::context::{read_facts, Context, Facts};
use super::host::run_waiting_for_lock;
use super::record;
use super::request::{Back, Target};

/// A decided deploy, ready to run.
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The commands each step of the plan runs, in step order.
    pub commands: Vec<HostCommands>,
    /// What `apt-get -s` said each step's install would do, in step order.
    pub simulations: Vec<Vec<String>>,
    /// The stage's position in `stages`.
    pub stage: usize,
    /// How this attempt takes the deploy lock of a host (again, after a
    /// reconnection).
    pub lock: Lock,
    /// The changelog entries between what the hosts run and the target
    /// (`None` when no host changes).
    pub review: Option<Review>,
    /// For a rollback: where its version comes from.
    pub back: Option<Back>,
    /// The freezes a rollback goes through (empty unless it goes into a
    /// frozen stage), as `host: frozen by ...` lines.
    pub freezes: Vec<String>,
    /// The alert check (`None` without `[alerts]`).
    pub alerts: Option<super::alert_hold::AlertCheck>,
    /// The deploy window check (`None` when the stage has no windows).
    pub window: Option<super::window_hold::WindowCheck>,
    /// Every host of the stage with the package's state the plan was made
    /// from (what `--plan-out` records).
    pub states: Vec<crate::approval::HostState>,
}

/// The deploy lock as this attempt takes it on each host.
pub struct Lock {
    /// The lock command, naming this attempt as the holder.
    pub command: RemoteCommand,
    /// How often the held command is sent a heartbeat.
    pub heartbeat: std::time::Duration,
}

/// The expiry the host applies, in whole seconds (rounded up, at least
/// one), and how often heartbeats go out: six per expiry, so that a late
/// heartbeat or two never lets a live holder's lock expire.
pub fn lock_timing(expiry: std::time::Duration) -> (u64, std::time::Duration) {
    let secs = u64::try_from(expiry.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1);
    let heartbeat = std::time::Duration::from_millis(secs.saturating_mul(1000) / 6);
    (secs, heartbeat)
}

impl Prepared {
    /// The plan for people: where the configuration comes from, the
    /// health check it will run, then the plan with each step's commands
    /// and apt's simulation lines.
    pub fn describe(&self, cx: &Context<'_>) -> String {
        let mut s = format!("Configuration: {}\n", cx.config.path.display());
        match cx.config.health_checks.get(&self.plan.package) {
            // its text may carry a token: named, never shown
            Some(_) => s.push_str(&format!(
                "Health check, run on each host after its install: `health_check` of \
                 `[package:{}]` (from the configuration, not shown)\n",
                self.plan.package
            )),
            None => s.push_str("Health check: none configured\n"),
        }
        if let Some(service) = cx.config.services.get(&self.plan.package) {
            s.push_str(&service.describe());
        }
        s.push_str(&super::bake::describe(
            cx.config,
            &self.plan,
            self.back.is_some(),
        ));
        if let Some(back) = &self.back {
            s.push_str(&format!("Rollback to {}\n", back.origin));
        }
        if !self.freezes.is_empty() {
            s.push_str(&format!(
                "Rolling back into frozen stage `{}` (a version it ran before):\n",
                self.plan.stage
            ));
            for f in &self.freezes {
                s.push_str(&format!("  {f}\n"));
            }
        }
        if let Some(alerts) = &self.alerts {
            s.push_str(&alerts.describe());
        }
        if let Some(window) = &self.window {
            s.push_str(&window.describe());
        }
        s.push_str(&self.plan.describe(&self.details()));
        if let Some(review) = &self.review {
            s.push_str(&review.describe());
        }
        s
    }

    /// The plan for scripts (`--dry-run --json`): the same facts as
    /// [`Prepared::describe`], as one JSON document.
    pub fn to_json(&self, cx: &Context<'_>) -> serde_json::Value {
        let plan = &self.plan;
        let steps: Vec<serde_json::Value> = plan
            .steps
            .iter()
            .zip(self.commands.iter().zip(&self.simulations))
            .map(|(step, (commands, apt))| {
                serde_json::json!({
                    "host": step.host,
                    "from": step.from,
                    "downgrade": step.downgrade,
                    "hold": format!("{:?}", step.hold).to_lowercase(),
                    "commands": commands.all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    "apt": apt,
                    "side_effects": step.side_effects.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                    "from_cache": step.install_from.as_ref().map(debcache::Cached::path),
                    "rollback_from_cache": step.restore_from.as_ref().map(debcache::Cached::path),
                })
            })
            .collect();
        let batches: Vec<Vec<&str>> = plan
            .batches
            .iter()
            .map(|b| b.iter().map(|&i| plan.steps[i].host.as_str()).collect())
            .collect();
        serde_json::json!({
            "dry_run": true,
            "configuration": cx.config.path,
            // whether there is one; its text may carry a token
            "health_check": cx.config.health_checks.contains_key(&plan.package),
            "gates": super::bake::to_json(cx.config, plan, self.back.is_some()),
            "package": plan.package.to_string(),
            "stage": plan.stage,
            "version": plan.version.to_string(),
            "critical": plan.critical,
            "steps": steps,
            "batches": batches,
            "batch_size": plan.sizing.batch_size.to_string(),
            "per_batch": plan.sizing.per_batch(),
            "max_failures": plan.sizing.max_failures.to_string(),
            "failures_allowed": plan.sizing.budget(),
            "taking_part": plan.sizing.taking_part,
            "unchanged": plan.unchanged,
            "overridden": plan.overridden,
            "allowed": plan.allowed,
            "allow_dependency_changes": plan.allow_dependency_changes,
            "rollback_on_failure": plan.rollback,
            "changes": self.review,
            "left_out": plan.left_out.iter().map(|l| serde_json::json!({
                "host": l.host,
                "reason": match l.why {
                    plan::Leave::Down(_) => "down",
                    plan::Leave::Excluded => "excluded",
                },
                "error": match &l.why {
                    plan::Leave::Down(e) => Some(crate::text::clipped_line(e, crate::text::REMOTE_TEXT_MAX)),
                    plan::Leave::Excluded => None,
                },
                "from": l.state.as_ref().and_then(|s| s.version()).map(ToString::to_string),
            })).collect::<Vec<_>>(),
            "rollback_to": self.back.as_ref().map(|b| &b.origin),
            "under_freeze": !self.freezes.is_empty(),
            "freezes": self.freezes,
            "alerts": self.alerts,
            "window": self.window,
        })
    }

    /// Per step: the commands as text, and apt's simulation lines.
    pub fn details(&self) -> Vec<(String, Vec<String>)> {
        self.commands
            .iter()
            .zip(&self.simulations)
            .map(|(c, sim)| (c.describe(), sim.clone()))
            .collect()
    }
}

/// Run every check, take the lock, and make the plan.
pub fn prepare(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &mut Attempt,
    target: &Target,
    before: Facts,
) -> Result<Prepared, Fatal> {
    let stage = &cx.config.stages[target.stage].name;
    let lock = lock_for(cx, attempt, stage);
    // the hosts left out are decided once, on the first read: not locked,
    // not asked, not changed
    let left_out = leave_out(cx, attempt, &before, target.stage)?;
    let names: Vec<&str> = left_out.iter().map(|l| l.host.as_str()).collect();
    fleet.leave_out(stage, &names);
    // a forced freeze is announced once, on the check the plan is made from
    ready(cx, attempt, &before, target, &left_out, cx.opts.dry_run)?;
    let alerts = super::alert_hold::before_lock(cx, attempt, target)?;
    let window = super::window_hold::before_lock(cx, attempt, target)?;
    sudo_works(cx, fleet, attempt, stage)?;
    let facts = if cx.opts.dry_run {
        before
    } else {
        // an attempt that cannot be recorded is not made
        if let Err(e) = history::check_writable(&cx.config.history_file) {
            return Err(record::refuse(
                cx,
                attempt,
                format!("the history cannot be written: {e}"),
                vec![e.note().to_string()],
            ));
        }
        take_lock(cx, fleet, attempt, stage, &lock)?;
        update_lists(cx, fleet, attempt, stage)?;
        // Read again now that the lock is held: nobody else can change these
        // hosts any more, and a freeze set meanwhile is seen.
        let stages: Vec<usize> = (target.stage.saturating_sub(1)..=target.stage).collect();
        let fresh = read_facts(cx, fleet, Some(&stages));
        ready(cx, attempt, &fresh, target, &left_out, true)?;
        // a `--plan` is carried out only on the states it was made from
        super::approvals::same_states(cx, attempt, &fresh, stage)?;
        dpkg_idle(cx, fleet, attempt, stage)?;
        fresh
    };
    let (plan, simulations) = make_plan(cx, fleet, attempt, target, &facts, left_out)?;
    let states = super::approvals::host_states(&facts, stage, &attempt.package);
    let lock_secs = lock_secs(cx);
    let commands = plan
        .steps
        .iter()
        .map(|s| plan.commands(s, lock_secs))
        .collect();
    let review = (!plan.steps.is_empty()).then(|| review(cx, fleet, &plan));
    attempt.changes = review.as_ref().map(Review::summary).unwrap_or_default();
    let freezes = if attempt.under_freeze {
        freezes(&facts.reports, stage)
    } else {
        Vec::new()
    };
    let prepared = Prepared {
        plan,
        commands,
        simulations,
        stage: target.stage,
        lock,
        review,
        back: target.back.clone(),
        freezes,
        alerts,
        window,
        states,
    };
    // a `--plan` is carried out only as it was planned
    super::approvals::same_plan(cx, attempt, &prepared)?;
    Ok(prepared)
}

/// The changelog review of `plan`: the target version's changelog, read on
/// the plan's first host, against what every host of the stage runs.
fn review(cx: &Context<'_>, fleet: &mut Fleet, plan: &Plan) -> Review {
    let mut hosts: Vec<(String, Option<crate::version::Version>)> = plan
        .steps
        .iter()
        .map(|s| (s.host.clone(), s.from.version().cloned()))
        .collect();
    hosts.extend(
        plan.unchanged
            .iter()
            .map(|h| (h.clone(), Some(plan.version.clone()))),
    );
    cx.console.say(&format!(
        "Reading the changelog of `{}` {} on {}...",
        plan.package, plan.version, hosts[0].0
    ));
    review_of(
        fleet,
        &plan.stage,
        plan.package.as_str(),
        &plan.version,
        &hosts,
        cx.config.ssh.deploy_timeout,
    )
}

/// The review of moving `hosts` (`(host, version it runs)`, of `stage`;
/// at least one) to `version`: the target's changelog is read on the first
/// host; when some hosts run a newer version (a rollback), the newest
/// one's changelog is read on a host that runs it, as only it lists what
/// is taken back.
pub fn review_of(
    fleet: &mut Fleet,
    stage: &str,
    package: &str,
    version: &crate::version::Version,
    hosts: &[(String, Option<crate::version::Version>)],
    timeout: std::time::Duration,
) -> Review {
    let first = hosts[0].0.clone();
    // a pure rollback needs only the newer changelog
    let below = hosts
        .iter()
        .any(|(_, v)| v.as_ref().is_none_or(|v| v < version));
    let fetched = if below {
        fetch_changelog(fleet, stage, &first, package, version, timeout)
    } else {
        Ok(changelog::Changelog::default())
    };
    let newest = hosts
        .iter()
        .filter(|(_, v)| v.as_ref().is_some_and(|v| v > version))
        .max_by(|a, b| a.1.cmp(&b.1));
    let newer = newest.map(|(host, from)| {
        let from = from.as_ref().expect("a version above the target");
        fetch_changelog(fleet, stage, host, package, from, timeout)
    });
    let starts: Vec<_> = hosts.iter().map(|(_, v)| v.clone()).collect();
    Review::new(package, version, &starts, fetched, newer, Some(first))
}

/// Read the changelog that `package` `version` carries, on `host` of
/// `stage` ([`changelog::fetch_command`]). Never fails: why there is none
/// comes back as the error text, one line, made safe.
pub fn fetch_changelog(
    fleet: &mut Fleet,
    stage: &str,
    host: &str,
    package: &str,
    version: &crate::version::Version,
    timeout: std::time::Duration,
) -> changelog::Fetched {
    let command = changelog::fetch_command(package, version);
    let answers = fleet.on_hosts(stage, &[host], |m| m.run(&command, timeout));
    match answers.into_iter().next() {
        Some((_, Ok(out))) => {
            changelog::read_fetched(out.status, &out.stdout, &out.stderr, out.stdout_dropped)
        }
        Some((_, Err(e))) => Err(crate::text::clipped_line(
            &e.to_string(),
            crate::text::REMOTE_TEXT_MAX,
        )),
        None => Err(format!("host `{host}` is not connected")),
    }
}

/// apt's wait for dpkg's locks, in whole seconds.
pub fn lock_secs(cx: &Context<'_>) -> u64 {
    cx.config.ssh.lock_timeout.as_secs().max(1)
}

/// The hosts of the stage left out of the rollout (`--exclude`,
/// `--skip-unreachable`), decided on the first read of the hosts
/// ([`plan::leave_out`]); a host that did not answer without
/// `--skip-unreachable`, or leaving out every host, refuses (recorded).
fn leave_out(
    cx: &Context<'_>,
    attempt: &Attempt,
    facts: &Facts,
    stage_index: usize,
) -> Result<Vec<plan::LeftOut>, Fatal> {
    let stage = &cx.config.stages[stage_index].name;
    let package = &attempt.package;
    let answers: Vec<plan::HostAnswer> = facts
        .reports
        .iter()
        .filter(|r| &r.stage == stage)
        .map(|r| {
            let answer = match &r.result {
                Ok(s) => Ok(s.packages[package].clone()),
                Err(e) => Err(e.to_string()),
            };
            (r.host.clone(), answer)
        })
        .collect();
    plan::leave_out(&answers, &cx.opts.exclude, cx.opts.skip_unreachable).map_err(|refusal| {
        let (message, notes) = refusal.explain(package, stage);
        record::refuse(cx, attempt, message, notes)
    })
}

/// The stage can be deployed to: every host taking part (not in
/// `left_out`) answered, and none carries a freeze record, whatever stage
/// it names, or the freeze lets this attempt through ([`through_freeze`]).
/// `announce` prints the warning for a freeze gone through.
fn ready(
    cx: &Context<'_>,
    attempt: &mut Attempt,
    facts: &Facts,
    target: &Target,
    left_out: &[plan::LeftOut],
    announce: bool,
) -> Result<(), Fatal> {
    let stage = &cx.config.stages[target.stage];
    let down: Vec<(String, String)> = facts
        .reports
        .iter()
        .filter(|r| r.stage == stage.name && !left_out.iter().any(|l| l.host == r.host))
        .filter_map(|r| {
            r.result
                .as_ref()
                .err()
                .map(|e| (r.host.clone(), e.to_string()))
        })
        .collect();
    if !down.is_empty() {
        let (message, notes) =
            Refusal::Unreachable { hosts: down }.explain(&attempt.package, &stage.name);
        return Err(record::refuse(cx, attempt, message, notes));
    }
    let frozen = freezes(&facts.reports, &stage.name);
    attempt.under_freeze = false;
    if frozen.is_empty() {
        return Ok(());
    }
    let how = through_freeze(cx, attempt, facts, target, frozen.clone())?;
    attempt.under_freeze = target.back.is_some();
    if announce {
        cx.console.say(&format!(
            "Warning: {how} into frozen stage `{}`:",
            stage.name
        ));
        for f in frozen {
            cx.console.say(&format!("  {f}"));
        }
    }
    Ok(())
}

/// Whether an attempt may go into a frozen stage (`frozen`: its freezes),
/// and how, for the warning: a rollback to a version the stage ran before
/// (according to its history) with `--reason`, or anything with
/// `--override-freeze --reason`. Otherwise refused, with a note that
/// fits: the `--reason` a rollback lacks, the `rollback` command for a
/// deploy that goes back, or how to lift or override the freeze.
fn through_freeze(
    cx: &Context<'_>,
    attempt: &Attempt,
    facts: &Facts,
    target: &Target,
    frozen: Vec<String>,
) -> Result<&'static str, Fatal> {
    let stage = &cx.config.stages[target.stage].name;
    let package = &attempt.package;
    let version = match &target.wanted {
        crate::plan::Wanted::Exact(v) => v.to_string(),
        crate::plan::Wanted::Newest => "VERSION".to_string(),
    };
    let known = target.back.as_ref().and_then(|b| b.ran_before.as_ref());
    if let Some(origin) = known {
        if cx.opts.reason.is_some() || cx.opts.dry_run {
            return Ok("rolling back (to a version it ran before)");
        }
        let mut notes = frozen;
        notes.push(format!(
            "a rollback to {version}, which `{stage}` ran before ({origin}), may go into a \
             frozen stage with a reason: `deployer rollback {package} {stage} {version} --reason \"...\"`"
        ));
        return Err(record::refuse(
            cx,
            attempt,
            format!("stage `{stage}` is frozen, and a rollback into it needs `--reason`"),
            notes,
        ));
    }
    if cx.opts.override_freeze {
        return Ok("deploying (--override-freeze)");
    }
    let going_back = matches!(&target.wanted, crate::plan::Wanted::Exact(v) if facts
        .reports
        .iter()
        .filter(|r| &r.stage == stage)
        .filter_map(|r| r.result.as_ref().ok())
        .any(|s| s.packages[package].version().is_some_and(|now| now > v)));
    let hint = if target.back.is_some() {
        format!(
            "only a rollback to a version `{stage}` ran before (in its history, local or on its \
             hosts) goes into a frozen stage, and {version} is not one: \
             `deployer rollback {package} {stage}` without a version picks the one before the \
             latest deploy; `--override-freeze --reason \"...\"` overrides the freeze once, and is recorded"
        )
    } else if going_back {
        format!(
            "to go back to a version `{stage}` ran before, roll back instead: \
             `deployer rollback {package} {stage} {version} --reason \"...\"`"
        )
    } else {
        format!(
            "`deployer unfreeze {stage}` lifts it; `--override-freeze --reason \"...\"` overrides it once, and is recorded"
        )
    };
    let mut notes = frozen;
    notes.push(hint);
    Err(record::refuse(
        cx,
        attempt,
        format!("stage `{stage}` is frozen"),
        notes,
    ))
}

/// Every freeze record on the hosts of `stage`, whatever stage it was set
/// under, as `host: frozen by ...` lines.
pub fn freezes(reports: &[crate::matrix::HostReport], stage: &str) -> Vec<String> {
    reports
        .iter()
        .filter(|r| r.stage == stage)
        .filter_map(|r| r.result.as_ref().ok().map(|s| (&r.host, s)))
        .flat_map(|(host, s)| {
            s.freezes.iter().map(move |f| {
                let under = if f.applies_to(stage) {
                    String::new()
                } else {
                    format!(" (set under stage `{}`)", crate::text::one_line(&f.stage))
                };
                format!("{host}: {}{under}", f.describe())
            })
        })
        .collect()
}

/// sudo works without a password on every host of the stage (the one
/// [`sudo`] probe, as `check` runs it); a refusal names each host's fault
/// and its own fix.
fn sudo_works(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
) -> Result<(), Fatal> {
    let answers = sudo::ask_stage(fleet, stage, cx.config.ssh.command_timeout);
    let failing = answers
        .iter()
        .filter(|(_, (_, a))| !a.as_ref().is_ok_and(sudo::Verdict::works))
        .count();
    if failing == 0 {
        return Ok(());
    }
    Err(record::refuse(
        cx,
        attempt,
        format!("sudo does not work without a password on {failing} host(s) of `{stage}`"),
        sudo::refusal_notes(&answers, true),
    ))
}

/// The lock this attempt takes on each host: who, since when, what, why.
fn lock_for(cx: &Context<'_>, attempt: &Attempt, stage: &str) -> Lock {
    let holder = lock::Holder {
        by: attempt.who(),
        since: history::now_rfc3339(),
        pid: std::process::id(),
        action: attempt.action.to_string(),
        package: attempt.package.to_string(),
        stage: stage.to_string(),
        version: attempt.version.as_ref().map(ToString::to_string),
        attempt: attempt.id().to_string(),
        why: cx.opts.reason.clone(),
    };
    let (expiry, heartbeat) = lock_timing(cx.config.ssh.lock_expiry);
    Lock {
        command: lock::command(&holder, expiry),
        heartbeat,
    }
}

/// Take the deploy lock on every host of the stage, or refuse (releasing
/// what was taken). The lock is kept alive by heartbeats every sixth of
/// `lock_expiry`.
fn take_lock(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
    lock: &Lock,
) -> Result<(), Fatal> {
    let timeout = cx.config.ssh.command_timeout;
    let answers = fleet.on_stage(stage, |m| {
        m.hold_with(&lock.command, timeout, lock.heartbeat)
    });
    let problems = fleet::problems(&answers, lock_problem);
    if problems.is_empty() {
        return Ok(());
    }
    fleet.release(stage);
    let unsafe_dir = answers.iter().any(|(_, a)| {
        a.as_ref()
            .is_ok_and(|l| crate::hostpath::parse_refusal(l).is_some())
    });
    let headline = if unsafe_dir {
        format!("the deploy lock of `{stage}` cannot be taken safely")
    } else {
        format!("`{stage}` is being deployed to by someone else")
    };
    Err(record::refuse(cx, attempt, headline, problems))
}

/// What kept the lock from being taken on a host, in one line; `None`
/// when it was taken.
pub fn lock_problem(answer: &Result<String, HostError>) -> Option<String> {
    match answer.as_ref().map(|l| lock::parse(l)) {
        Ok(lock::Answer::Locked) => None,
        Ok(lock::Answer::Busy(who)) => Some(format!("another deploy holds the lock: {who}")),
        Ok(lock::Answer::Installing(run)) => Some(format!(
            "an install started by an earlier deploy is still running there ({run}); the lock is refused until it ends"
        )),
        Ok(lock::Answer::Failed(what)) => Some(format!("could not take the lock ({what})")),
        Err(e) => Some(e.to_string()),
    }
}

/// `apt-get update` on every host of the stage, as an operator would.
fn update_lists(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
) -> Result<(), Fatal> {
    let hosts = fleet.hosts_of(stage).len();
    cx.console.say(&format!(
        "Updating apt lists on {hosts} host(s) of `{stage}`..."
    ));
    let timeout = cx.config.ssh.deploy_timeout;
    let answers = fleet.on_stage(stage, |m| {
        run_waiting_for_lock(cx, m, &apt::update(), timeout, apt::update_lock_busy)
    });
    let mut fetch_failed = false;
    let mut failed: Vec<String> = answers
        .iter()
        .filter_map(|(host, r)| match r {
            Ok(out) if out.success() => None,
            Ok(out) => {
                let said = out.combined();
                fetch_failed |= apt::fetch_failed(&said);
                Some(format!("{host}: {}", apt::update_failure(&said)))
            }
            Err(e) => Some(format!("{host}: {e}")),
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let count = failed.len();
    if fetch_failed {
        failed.push(
            "a list that cannot be fetched would leave the host on stale lists (apt keeps the \
             old ones): fix that host's repository entry (`/etc/apt/sources.list*`) or its way \
             to the repository, check with `sudo apt-get update` there, then deploy again"
                .to_string(),
        );
    }
    Err(record::fail_unchanged(
        cx,
        attempt,
        format!("`apt-get update` failed on {count} host(s) of `{stage}`"),
        failed,
    ))
}

/// No other process holds dpkg's locks on any host of the stage: checked
/// under the deploy lock, before the first change, so that a busy host
/// further down the plan does not turn up only after the canary changed.
/// A busy host is asked again for up to `lock_timeout` (said on the
/// console); then the deploy is refused, naming each busy host, the
/// holder's pid and command as apt saw them.
fn dpkg_idle(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &Attempt,
    stage: &str,
) -> Result<(), Fatal> {
    let wait = cx.config.ssh.lock_timeout;
    let timeout = cx.config.ssh.command_timeout;
    let check = apt::dpkg_lock_check();
    let answers = fleet.on_stage(stage, |m| {
        m.run_waiting_for_lock(&check, timeout, wait, apt::dpkg_lock_busy, |host| {
            cx.console.say(&format!(
                "  {host}: another process holds dpkg's lock; waiting up to {}s (`lock_timeout`) \
                 for it to finish before any host of `{stage}` is changed",
                wait.as_secs()
            ));
        })
    });
    let busy = fleet::problems(&answers, |r| dpkg_lock_problem(r, wait));
    if busy.is_empty() {
        return Ok(());
    }
    let count = busy.len();
    let mut notes = busy;
    notes.push(
        "let that process finish (on the host, `ps -o pid,lstart,args -p PID` shows it), \
         or raise `lock_timeout` in deployer.ini, then deploy again"
            .to_string(),
    );
    Err(record::refuse(
        cx,
        attempt,
        format!("dpkg is busy on {count} host(s) of `{stage}`: another process holds its lock"),
        notes,
    ))
}

/// Why `host`'s dpkg cannot be counted on to be free, from the answer to
/// [`apt::dpkg_lock_check`] after waiting `wait`; `None` when it is free.
/// A check that failed after apt got the locks (broken dependencies, say)
/// says nothing against them: the plan's simulation reads the rest.
fn dpkg_lock_problem(
    answer: &Result<transport::Output, HostError>,
    wait: std::time::Duration,
) -> Option<String> {
    let out = match answer {
        Ok(out) if out.success() => return None,
        Ok(out) => out,
        Err(e) => return Some(format!("cannot check dpkg's lock: {e}")),
    };
    let said = out.combined();
    if let Some(holder) = apt::lock_holder(&said).filter(|_| apt::dpkg_lock_busy(&said)) {
        return Some(format!("{holder}, still after {}s", wait.as_secs()));
    }
    let lock_error = said
        .lines()
        .find(|l| l.starts_with("E: ") && l.to_ascii_lowercase().contains("lock"));
    lock_error.map(|l| {
        format!(
            "cannot check dpkg's lock: {}",
            crate::text::clipped_line(l, crate::text::REMOTE_TEXT_MAX)
        )
    })
}

/// Decide the plan from `input`, or refuse (recorded).
fn decide(cx: &Context<'_>, attempt: &mut Attempt, input: &plan::Input) -> Result<Plan, Fatal> {
    match plan::make(input) {
        Ok(p) => {
            attempt.aim(&p.version);
            Ok(p)
        }
        Err(refusal) => {
            let (message, notes) = refusal.explain(&input.package, &input.stage);
            if let Refusal::Unavailable { version, .. } | Refusal::OrderGuard { version, .. } =
                &refusal
            {
                attempt.aim(version);
            }
            Err(record::refuse(cx, attempt, message, notes))
        }
    }
}

/// What each host of `stage` has of `package` in its `.deb` cache
/// ([`debcache::listing_command`], read-only, no sudo). A host whose cache
/// cannot be read has none, said in a note: a version only the cache holds
/// is then refused as unavailable.
fn read_caches(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    stage: &str,
    package: &PackageName,
) -> std::collections::HashMap<String, Vec<debcache::Cached>> {
    let timeout = cx.config.ssh.command_timeout;
    let answers = fleet.run_on_stage(stage, &debcache::listing_command(package), timeout);
    let mut caches = std::collections::HashMap::new();
    for (host, r) in answers {
        match r {
            Ok(out) if out.success() => {
                caches.insert(host, debcache::parse_listing(package, &out.stdout));
            }
            Ok(out) => {
                let why = crate::hostpath::refused(&out.stderr)
                    .unwrap_or_else(|| crate::transport::failure(&out));
                cx.console.say(&format!(
                    "note: {host}: the .deb cache ({}) cannot be read, counted as empty: {why}",
                    debcache::DIR
                ));
            }
            Err(e) => cx.console.say(&format!(
                "note: {host}: the .deb cache ({}) cannot be read, counted as empty: {e}",
                debcache::DIR
            )),
        }
    }
    caches
}

/// Ask apt what each host can install, decide the plan, simulate each
/// host's install (`apt-get -s`: no root, no lock, no change), and decide
/// again with what apt would really do. Returns the plan and each step's
/// simulation lines.
fn make_plan(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    attempt: &mut Attempt,
    target: &Target,
    facts: &Facts,
    left_out: Vec<plan::LeftOut>,
) -> Result<(Plan, Vec<Vec<String>>), Fatal> {
    let config = cx.config;
    let stage = &config.stages[target.stage];
    let package = &attempt.package.clone();
    let timeout = config.ssh.command_timeout;
    let answers = fleet.run_on_stage(&stage.name, &apt::policy(package), timeout);
    let mut caches = read_caches(cx, fleet, &stage.name, package);
    let mut hosts = Vec::new();
    for (host, r) in answers {
        let status = facts
            .reports
            .iter()
            .find(|r| r.host == host && r.stage == stage.name)
            .and_then(|r| r.result.as_ref().ok());
        let state = status
            .map(|s| s.packages[package].clone())
            .unwrap_or(PackageState::NotInstalled);
        let held = status.is_some_and(|s| s.held.contains(package));
        let policy = r
            .map_err(|e| e.to_string())
            .and_then(|out| apt::parse_policy(package, &out.stdout))
            .map_err(|e| {
                record::refuse(
                    cx,
                    attempt,
                    format!("cannot read what apt can install on `{host}`"),
                    vec![crate::text::clipped_line(&e, crate::text::REMOTE_TEXT_MAX)],
                )
            })?;
        hosts.push(HostFacts {
            cached: caches.remove(&host).unwrap_or_default(),
            host,
            state,
            policy,
            held,
            simulation: None,
        });
    }
    let previous = (target.stage > 0).then(|| {
        let prev = &config.stages[target.stage - 1].name;
        let states = facts
            .reports
            .iter()
            .filter(|r| &r.stage == prev)
            .map(|r| {
                (
                    r.host.clone(),
                    r.result.as_ref().ok().map(|s| s.packages[package].clone()),
                )
            })
            .collect();
        (prev.clone(), states)
    });
    let mut input = plan::Input {
        package: package.clone(),
        stage: stage.name.clone(),
        critical: stage.critical,
        previous,
        hosts,
        wanted: target.wanted.clone(),
        force: cx.opts.force,
        batch_size: cx
            .opts
            .batch
            .or(stage.batch_size)
            .unwrap_or(config.batch_size),
        max_failures: stage.max_failures,
        allow_dependency_changes: cx.opts.allow_dependency_changes,
        hold: config.holds.contains(package),
        allow_held: cx.opts.allow_held,
        rollback: cx.opts.rollback_on_failure || config.rollback_on_failure,
        promote: attempt.action == "promote",
        left_out,
    };
    let first = decide(cx, attempt, &input)?;

    let lock = lock_secs(cx);
    let names: Vec<&str> = first.steps.iter().map(|s| s.host.as_str()).collect();
    let sims = fleet.on_hosts(&stage.name, &names, |m| {
        let step = first
            .steps
            .iter()
            .find(|s| s.host == m.host())
            .expect("a planned host");
        match m.run(&first.simulation(step, lock), timeout) {
            Ok(out) if out.success() => apt::parse_simulation(&out.stdout),
            Ok(out) if step.install_from.is_some() => Err(debcache::install_refusal(&out.stderr)
                .unwrap_or_else(|| {
                    apt::simulation_error(&format!("{}{}", out.stdout, out.stderr))
                })),
            Ok(out) => Err(apt::simulation_error(&format!(
                "{}{}",
                out.stdout, out.stderr
            ))),
            Err(e) => Err(e.to_string()),
        }
    });
    for (host, sim) in sims {
        if let Some(h) = input.hosts.iter_mut().find(|h| h.host == host) {
            h.simulation = Some(sim);
        }
    }
    let plan = decide(cx, attempt, &input)?;
    if !plan.unsimulated.is_empty() {
        return Err(record::refuse(
            cx,
            attempt,
            format!(
                "the install could not be simulated on {}",
                plan.unsimulated.join(", ")
            ),
            Vec::new(),
        ));
    }
    let simulations = plan
        .steps
        .iter()
        .map(|step| {
            input
                .hosts
                .iter()
                .find(|h| h.host == step.host)
                .and_then(|h| h.simulation.as_ref())
                .and_then(|s| s.as_ref().ok())
                .map(|s| s.lines().into_iter().map(crate::text::one_line).collect())
                .unwrap_or_default()
        })
        .collect();
    Ok((plan, simulations))
}

/// Print the plan with each host's commands and what `apt-get -s` says
/// they would do on the current lists. Changes nothing.
pub fn show_dry_run(cx: &Context<'_>, prepared: &Prepared) {
    cx.console.document(prepared.to_json(cx));
    cx.console.say(&prepared.describe(cx));
    cx.console
        .say("Dry run: nothing was changed on any host (apt lists included).");
}

/// A critical stage shows the plan (with its changelog review) and wants
/// `yes` typed (or `--yes`); elsewhere, the review alone is shown.
pub fn confirm(cx: &Context<'_>, attempt: &Attempt, prepared: &Prepared) -> Result<(), Fatal> {
    let plan = &prepared.plan;
    // a rollback into a frozen stage is confirmed as on a critical stage
    let critical = plan.critical || attempt.under_freeze;
    if !critical || cx.opts.yes {
        // what goes out, and where not, is shown even when nobody is asked
        if let Some(review) = &prepared.review {
            cx.console.say(review.describe().trim_end());
        }
        for line in plan.left_out_lines() {
            cx.console.say(&line);
        }
        return Ok(());
    }
    cx.console.say(&prepared.describe(cx));
    let only = match plan.left_out.len() {
        0 => String::new(),
        n => format!(
            " ({} host(s) left out: {})",
            n,
            plan.left_out
                .iter()
                .map(|l| l.host.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let question = if attempt.under_freeze {
        format!(
            "Roll `{}` back to {} on frozen stage `{}`{only}? Type `yes` to go on: ",
            plan.package, plan.version, plan.stage
        )
    } else {
        format!(
            "Deploy `{}` {} to critical stage `{}`{only}? Type `yes` to go on: ",
            plan.package, plan.version, plan.stage
        )
    };
    let what = if plan.critical {
        "a critical stage"
    } else {
        "frozen (a rollback into it is confirmed as on a critical stage)"
    };
    match cx.console.ask(&question) {
        None => Err(record::refuse(
            cx,
            attempt,
            format!(
                "`{}` is {what} and there is no terminal to confirm on",
                plan.stage
            ),
            vec!["pass `--yes` to deploy without confirmation (e.g. from a script)".to_string()],
        )),
        Some(answer) if answer.trim() == "yes" => Ok(()),
        Some(_) => Err(record::refuse(
            cx,
            attempt,
            "not confirmed".to_string(),
            Vec::new(),
        )),
    }
}
