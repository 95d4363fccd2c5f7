//! The bake: after a batch is installed (and its service restarted, and
//! its health check passed), every gate of the stage and the package is
//! evaluated on each of its hosts, every `interval`, for the canary's
//! `bake` (or a gate's own `bake` or `count`) or a later batch's
//! `batch_bake`, before the next batch starts. A failing gate fails its
//! host, so the rollout stops and the rollback policy applies; a gate
//! with `no_data = pause` that cannot conclude asks the operator on a
//! terminal (continue, roll back, keep waiting) and fails closed without
//! one. A signal stops the bake as it stops a rollout between batches.
//! A rollback runs only the `command` gates, once each, and waits no bake.
//!
//! Each evaluation is shown as it is made and kept in the host's record
//! ([`GateRecord`]). The judging is [`crate::gate::engine`]'s; this module
//! drives it with the clock, the hosts and the operator.

use std::time::{Duration, Instant};

use crate::command::RemoteCommand;
use crate::config::Config;
use crate::fleet::{Fleet, Member};
use crate::gate::engine::{self, Choice, Engine, Observation, Reading, Step, Verdict};
use crate::gate::template::{Escape, Values};
use crate::gate::{self, probe, Check, Gate, Span};
use crate::history::GateRecord;
use crate::plan::Plan;
use crate::text::{clipped_line, REMOTE_TEXT_MAX};
use crate::transport::TargetKind;

use super::context::Context;
use super::outcome::Watched;

/// How often a wait in the bake looks at the signals.
const POLL: Duration = Duration::from_millis(100);

/// How the bake of a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baked {
    /// Every gate passed on every host of the batch (or there was none).
    Passed,
    /// A gate failed on these hosts: (position in the plan's steps, why).
    Failed(Vec<(usize, String)>),
    /// A signal stopped the bake.
    Interrupted,
}

/// The gates of `plan`'s deploys: the stage's, then the package's, each
/// once; only the `command` ones for a rollback.
pub fn gates_of<'c>(config: &'c Config, plan: &Plan, rollback: bool) -> Vec<&'c Gate> {
    let stage = config.stage(&plan.stage).map(|s| s.gates.as_slice());
    let package = config.package_gates.get(&plan.package).map(Vec::as_slice);
    let mut names: Vec<&String> = Vec::new();
    for name in stage
        .unwrap_or_default()
        .iter()
        .chain(package.unwrap_or_default())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .filter_map(|n| config.gates.get(n))
        .filter(|g| !rollback || matches!(g.check, Check::Command { .. }))
        .collect()
}

/// How long `gate` is evaluated on a batch: the canary for the gate's own
/// span or the stage's `bake`, a later batch for the stage's
/// `batch_bake`, a rollback once.
pub fn span_of(config: &Config, plan: &Plan, gate: &Gate, canary: bool, rollback: bool) -> Span {
    let stage = config.stage(&plan.stage);
    if rollback {
        Span::Count(1)
    } else if canary {
        gate.span
            .unwrap_or_else(|| Span::Bake(stage.and_then(|s| s.bake).unwrap_or(gate::DEFAULT_BAKE)))
    } else {
        Span::Bake(
            stage
                .and_then(|s| s.batch_bake)
                .unwrap_or(gate::DEFAULT_BATCH_BAKE),
        )
    }
}

/// One gate on one host.
struct Run<'c> {
    step: usize,
    host: String,
    gate: &'c Gate,
    engine: Engine,
}

/// Bake the hosts of `batch` (positions in `plan.steps`): evaluate their
/// gates until each passed, one failed, or a signal came. Each evaluation
/// is added to the host's `watched` record.
pub fn bake(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    plan: &Plan,
    batch: &[usize],
    canary: bool,
    rollback: bool,
    watched: &mut [Watched],
) -> Baked {
    let config = cx.config;
    let gates = gates_of(config, plan, rollback);
    if gates.is_empty() {
        return Baked::Passed;
    }
    let mut runs: Vec<Run<'_>> = Vec::new();
    for &i in batch {
        for gate in &gates {
            let span = span_of(config, plan, gate, canary, rollback);
            runs.push(Run {
                step: i,
                host: plan.steps[i].host.clone(),
                gate,
                engine: Engine::new(gate.interval, span, gate.failure_limit, gate.no_data),
            });
        }
    }
    let hosts: Vec<&str> = batch.iter().map(|&i| plan.steps[i].host.as_str()).collect();
    let spans: Vec<String> = gates
        .iter()
        .map(|g| {
            let span = match span_of(config, plan, g, canary, rollback) {
                Span::Bake(d) if d.is_zero() => "once".to_string(),
                Span::Bake(d) => format!("for {}s, every {}s", d.as_secs(), g.interval.as_secs()),
                Span::Count(1) => "once".to_string(),
                Span::Count(n) => format!("{n} times, every {}s", g.interval.as_secs()),
            };
            format!("`{}` {span}", g.name)
        })
        .collect();
    cx.console.say(&format!(
        "Baking {} ({}): {}",
        hosts.join(", "),
        if canary { "the canary" } else { "batch" },
        spans.join(", ")
    ));
    let values = values_of(fleet, plan);
    let origin = Instant::now();
    loop {
        let mut failed: Vec<(usize, String)> = Vec::new();
        for r in &runs {
            if let Some(Step::Failed(why)) = r.engine.over() {
                if !failed.iter().any(|(i, _)| *i == r.step) {
                    failed.push((r.step, format!("gate `{}` failed: {why}", r.gate.name)));
                }
            }
        }
        if !failed.is_empty() {
            return Baked::Failed(failed);
        }
        if runs.iter().all(|r| r.engine.over().is_some()) {
            cx.console
                .say(&format!("  {}: every gate passed", hosts.join(", ")));
            return Baked::Passed;
        }
        if cx.interrupt.requested() {
            cx.console.say(&format!(
                "Interrupted during the bake of {}: later batches are not started.",
                hosts.join(", ")
            ));
            return Baked::Interrupted;
        }
        let now = origin.elapsed();
        let due: Vec<usize> = (0..runs.len())
            .filter(|&k| runs[k].engine.over().is_none() && runs[k].engine.due() <= now)
            .collect();
        if due.is_empty() {
            let next = runs
                .iter()
                .filter(|r| r.engine.over().is_none())
                .map(|r| r.engine.due())
                .min()
                .unwrap_or(now);
            let wait = next.saturating_sub(now).min(POLL);
            std::thread::sleep(wait.max(Duration::from_millis(10)));
            continue;
        }
        let readings = evaluate(cx, fleet, plan, &runs, &due, &values);
        let at = origin.elapsed();
        for (k, reading) in due.into_iter().zip(readings) {
            let run = &mut runs[k];
            let step = run.engine.feed(at, &reading);
            show(cx, &run.host, &run.gate.name, &reading);
            watched[run.step].gates.push(GateRecord {
                gate: run.gate.name.clone(),
                time: crate::history::now_rfc3339(),
                value: reading.value.filter(|v| v.is_finite()),
                verdict: reading.verdict.as_str().to_string(),
                detail: Some(reading.detail.clone()).filter(|d| !d.is_empty()),
            });
            if let Step::Inconclusive(why) = step {
                let choice = ask(cx, &run.host, &run.gate.name, &why);
                let said = match choice {
                    Some(Choice::Continue) => "the operator chose to continue",
                    Some(Choice::RollBack) => "the operator chose to roll back",
                    Some(Choice::KeepWaiting) => "the operator chose to keep waiting",
                    None => "no terminal to ask: failed closed",
                };
                if let Some(last) = watched[run.step].gates.last_mut() {
                    last.detail = Some(match &last.detail {
                        Some(d) => format!("{d}; {said}"),
                        None => said.to_string(),
                    });
                }
                match choice {
                    Some(c) => {
                        run.engine.resume(origin.elapsed(), c);
                    }
                    None => {
                        run.engine.fail(format!(
                            "inconclusive ({why}), and there is no terminal to ask whether to go \
                             on (`no_data = pause`): failing closed"
                        ));
                    }
                }
            }
        }
    }
}

/// Ask the operator what to do with an inconclusive gate; `None` when
/// nobody can answer.
fn ask(cx: &Context<'_>, host: &str, gate: &str, why: &str) -> Option<Choice> {
    let question = format!(
        "  {host}: gate `{gate}` is inconclusive ({}). [c]ontinue, [r]oll back, or [w]ait and \
         look again? ",
        clipped_line(why, REMOTE_TEXT_MAX)
    );
    loop {
        let answer = cx.console.ask(&question)?;
        match answer.trim().to_ascii_lowercase().as_str() {
            "c" | "continue" => return Some(Choice::Continue),
            "r" | "roll back" | "rollback" => return Some(Choice::RollBack),
            "w" | "wait" | "keep waiting" => return Some(Choice::KeepWaiting),
            // end of input: nobody there any more
            _ if answer.is_empty() => return None,
            _ => cx
                .console
                .say("  answer `c` (continue), `r` (roll back) or `w` (keep waiting)"),
        }
    }
}

/// One evaluation on the console.
fn show(cx: &Context<'_>, host: &str, gate: &str, reading: &Reading) {
    let verdict = match reading.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::NoData => "no data",
        Verdict::Error => "ERROR",
    };
    cx.console.say(&format!(
        "  {host}: gate `{gate}` {verdict}: {}",
        clipped_line(&reading.detail, REMOTE_TEXT_MAX)
    ));
}

/// The address of each host of the plan's stage (as deployer connects to
/// it), by host.
fn values_of(fleet: &Fleet, plan: &Plan) -> Vec<Values> {
    fleet
        .members()
        .iter()
        .filter(|m| m.target().stage == plan.stage)
        .map(|m| Values {
            host: m.host().to_string(),
            address: address_of(m),
            stage: plan.stage.clone(),
            package: plan.package.to_string(),
            version: plan.version.to_string(),
        })
        .collect()
}

fn address_of(member: &Member) -> String {
    match &member.target().kind {
        TargetKind::Ssh(s) => s.host_name.clone(),
        TargetKind::Local => "localhost".to_string(),
    }
}

/// Evaluate the runs `due`: the `command` gates on their hosts (all at
/// once), the others from here. One reading per entry of `due`.
fn evaluate(
    cx: &Context<'_>,
    fleet: &mut Fleet,
    plan: &Plan,
    runs: &[Run<'_>],
    due: &[usize],
    values: &[Values],
) -> Vec<Reading> {
    let timeout = cx.config.ssh.command_timeout;
    let mut readings: Vec<Option<Reading>> = vec![None; due.len()];
    // the commands, host by host
    let mut on: Vec<&str> = Vec::new();
    for &k in due {
        if matches!(runs[k].gate.check, Check::Command { .. })
            && !on.contains(&runs[k].host.as_str())
        {
            on.push(&runs[k].host);
        }
    }
    if !on.is_empty() {
        let answers = fleet.on_hosts(&plan.stage, &on, |m| {
            let host = m.host().to_string();
            due.iter()
                .enumerate()
                .filter(|(_, &k)| runs[k].host == host)
                .filter_map(|(j, &k)| match &runs[k].gate.check {
                    Check::Command { command } => Some((j, command_reading(m, command, timeout))),
                    _ => None,
                })
                .collect::<Vec<_>>()
        });
        for (_, list) in answers {
            for (j, reading) in list {
                readings[j] = Some(reading);
            }
        }
    }
    let empty = Values::default();
    for (j, &k) in due.iter().enumerate() {
        let run = &runs[k];
        let own = values.iter().find(|v| v.host == run.host).unwrap_or(&empty);
        match &run.gate.check {
            Check::Command { .. } => {}
            Check::Http { url, status, body } => {
                readings[j] = Some(probe::http(
                    &url.render(own, Escape::Url),
                    *status,
                    body.as_deref(),
                    timeout,
                ));
            }
            Check::Prometheus {
                url,
                query,
                condition,
                compare,
            } => {
                let ask = |v: &Values| {
                    probe::prometheus(
                        &url.render(v, Escape::Url),
                        &query.render(v, Escape::PromQl),
                        timeout,
                    )
                };
                let seen = ask(own);
                let peers: Vec<(String, Observation)> = match compare {
                    Some(_) => values
                        .iter()
                        .filter(|v| v.host != run.host)
                        .map(|v| (v.host.clone(), ask(v)))
                        .collect(),
                    None => Vec::new(),
                };
                readings[j] = Some(engine::judge(
                    condition.as_ref(),
                    compare.as_ref(),
                    run.gate.no_data,
                    &seen,
                    &peers,
                ));
            }
        }
    }
    readings
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Reading::without_value(Verdict::Error, "the host could not be asked")
            })
        })
        .collect()
}

/// A `command` gate on `member`: exit status 0 passes. Its text is
/// trusted configuration and may carry a token: it is named, never shown.
fn command_reading(member: &mut Member, command: &str, timeout: Duration) -> Reading {
    match member.run(
        &RemoteCommand::from_config(command, "gate command"),
        timeout,
    ) {
        Ok(o) if o.success() => Reading {
            verdict: Verdict::Pass,
            value: Some(0.0),
            detail: "the command exited with status 0".into(),
        },
        Ok(o) => Reading {
            verdict: Verdict::Fail,
            value: Some(f64::from(o.status)),
            detail: format!("the command exited with status {}", o.status),
        },
        Err(e) => Reading::without_value(Verdict::Error, format!("the command could not run: {e}")),
    }
}

/// A span in words: `for 300s`, `3 times`, `once`.
fn span_words(span: Span) -> String {
    match span {
        Span::Bake(d) if d.is_zero() => "once".to_string(),
        Span::Bake(d) => format!("for {}s", d.as_secs()),
        Span::Count(1) => "once".to_string(),
        Span::Count(n) => format!("{n} times"),
    }
}

/// A span as JSON: `{"bake": SECONDS}` or `{"count": N}`.
fn span_json(span: Span) -> serde_json::Value {
    match span {
        Span::Bake(d) => serde_json::json!({ "bake": d.as_secs() }),
        Span::Count(n) => serde_json::json!({ "count": n }),
    }
}

/// The gates the plan will run, for people: one line each (empty when
/// none). A server is named by its scheme and host; a command is named,
/// never shown.
pub fn describe(config: &Config, plan: &Plan, rollback: bool) -> String {
    let gates = gates_of(config, plan, rollback);
    if gates.is_empty() {
        return String::new();
    }
    let mut s = if rollback {
        "Gates (a rollback runs its `command` gates once, and bakes nothing):\n".to_string()
    } else {
        "Gates, each batch passing them before the next starts:\n".to_string()
    };
    for g in gates {
        let what = match &g.check {
            Check::Prometheus {
                url,
                query,
                condition,
                compare,
            } => {
                let mut judged = Vec::new();
                if let Some(c) = condition {
                    judged.push(c.to_string());
                }
                if let Some(c) = compare {
                    let mut limits = Vec::new();
                    if let Some(r) = c.max_ratio {
                        limits.push(format!("at most {r} times"));
                    }
                    if let Some(d) = c.max_delta {
                        limits.push(format!("at most {d} above"));
                    }
                    judged.push(format!("{} the others' mean", limits.join(" and ")));
                }
                format!(
                    "`{}` on {}, {}",
                    clipped_line(query.as_str(), REMOTE_TEXT_MAX),
                    probe::server_shown(url.as_str()),
                    judged.join(", ")
                )
            }
            Check::Http { url, status, body } => format!(
                "GET {} from here, HTTP {status}{}",
                probe::server_shown(url.as_str()),
                body.as_ref()
                    .map(|b| format!(" with `{}` in the body", clipped_line(b, 80)))
                    .unwrap_or_default()
            ),
            Check::Command { .. } => {
                "a command on each host (from the configuration, not shown)".to_string()
            }
        };
        let when = if rollback {
            "once".to_string()
        } else {
            format!(
                "the canary {}, later batches {}, every {}s",
                span_words(span_of(config, plan, g, true, false)),
                span_words(span_of(config, plan, g, false, false)),
                g.interval.as_secs()
            )
        };
        s.push_str(&format!(
            "  `{}` ({}): {what}; {when}; failure_limit {}, no_data {}\n",
            g.name,
            g.check.kind(),
            g.failure_limit,
            g.no_data.as_str()
        ));
    }
    s
}

/// The gates the plan will run, for scripts (`--dry-run --json`).
pub fn to_json(config: &Config, plan: &Plan, rollback: bool) -> serde_json::Value {
    let gates: Vec<serde_json::Value> = gates_of(config, plan, rollback)
        .into_iter()
        .map(|g| {
            let mut v = serde_json::json!({
                "name": g.name,
                "kind": g.check.kind(),
                "interval": g.interval.as_secs(),
                "canary": span_json(span_of(config, plan, g, true, rollback)),
                "batches": span_json(span_of(config, plan, g, false, rollback)),
                "failure_limit": g.failure_limit,
                "no_data": g.no_data.as_str(),
            });
            match &g.check {
                Check::Prometheus {
                    url,
                    query,
                    condition,
                    compare,
                } => {
                    v["server"] = probe::server_shown(url.as_str()).into();
                    v["query"] = query.as_str().into();
                    v["condition"] = condition.map(|c| c.to_string()).into();
                    v["compare"] = compare
                        .map(|c| {
                            serde_json::json!({
                                "others": true,
                                "max_ratio": c.max_ratio,
                                "max_delta": c.max_delta,
                            })
                        })
                        .into();
                }
                Check::Http { url, status, body } => {
                    v["server"] = probe::server_shown(url.as_str()).into();
                    v["status"] = (*status).into();
                    v["body"] = body.clone().into();
                }
                Check::Command { .. } => {}
            }
            v
        })
        .collect();
    serde_json::Value::Array(gates)
}
