//! `deployer hosts [STAGE]`: for every host, what deployer will use to
//! reach it (address, port, user, keys, known_hosts files, jump hosts,
//! keepalives, key exchange algorithms), the "ssh -G" of this tool.
//! Connects to nothing, unless `--check` asks for each host-key verdict and
//! the key exchange negotiated (a handshake with each host, through its
//! jump hosts; nothing is recorded).

use std::io::{self, Write};

use crate::cli::Cli;
use crate::deploy;
use crate::error::{ExitStatus, Fatal};
use crate::transport::{HostCheck, SshTarget, Target, TargetKind};

use super::output::emit;
use super::setup::{load_config, targets};

/// `deployer hosts [STAGE]`: what deployer resolves for each host of
/// `stage` (or of every stage); with `check`, each host-key verdict too,
/// and status 3 when some host's key is refused.
pub(super) fn command(
    cli: &Cli,
    stage: Option<&str>,
    json: bool,
    check_keys: bool,
) -> Result<ExitStatus, Fatal> {
    let config = load_config(cli)?;
    if let Some(stage) = stage {
        deploy::check_stage(&config, stage)?;
    }
    let all: Vec<Target> = targets(cli, &config)?
        .into_iter()
        .filter(|t| stage.is_none_or(|s| t.stage == s))
        .collect();
    let verdicts = if check_keys {
        check(&all, config.parallelism)
    } else {
        vec![None; all.len()]
    };
    if json {
        emit(|out| render_json(&all, &verdicts, out))?;
    } else {
        emit(|out| render_text(&all, &verdicts, out))?;
    }
    Ok(if verdicts.iter().flatten().any(Result::is_err) {
        ExitStatus::Unreachable
    } else {
        ExitStatus::Success
    })
}

/// What deployer decides about a host's key (`known: …`) and the key
/// exchange negotiated, or why it is refused. `None` when not asked (or
/// for `local`).
pub(crate) type Verdict = Option<Result<HostCheck, String>>;

/// Ask every SSH host for its key (a handshake each, `parallelism` at a
/// time, sharing jump host sessions), in `targets` order.
pub(crate) fn check(targets: &[Target], parallelism: usize) -> Vec<Verdict> {
    let reach = crate::transport::Reach::default();
    crate::fleet::each_target(targets, parallelism, |t| match &t.kind {
        TargetKind::Ssh(s) => {
            Some(crate::transport::probe_host_key(s, &reach).map_err(|e| e.to_string()))
        }
        TargetKind::Local => None,
    })
}

fn verdict_text(v: &Verdict) -> Option<String> {
    v.as_ref().map(|r| match r {
        Ok(check) => crate::text::one_line(&check.key),
        Err(why) => format!("REFUSED: {}", crate::text::one_line(why)),
    })
}

fn hop(t: &SshTarget) -> String {
    if t.host_name.contains(':') {
        format!("{}@[{}]:{}", t.user, t.host_name, t.port)
    } else {
        format!("{}@{}:{}", t.user, t.host_name, t.port)
    }
}

fn paths(v: &[std::path::PathBuf]) -> String {
    v.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The key exchange algorithms deployer offers `t`, or why none.
fn kex_offer(t: &SshTarget) -> String {
    let runnable = crate::transport::ssh::kex::runnable();
    match crate::transport::ssh::kex::offered(t, &runnable) {
        Ok(offered) => offered.join(","),
        Err(e) => format!("NONE: {e}"),
    }
}

fn keepalive(t: &SshTarget) -> String {
    match t.server_alive {
        None => "deployer's default".to_string(),
        Some((i, _)) if i.is_zero() => "off (ServerAliveInterval 0)".to_string(),
        Some((i, n)) => format!("every {}s, given up after {n} unanswered", i.as_secs()),
    }
}

/// Text: one block per host.
pub(crate) fn render_text(
    targets: &[Target],
    verdicts: &[Verdict],
    out: &mut dyn Write,
) -> io::Result<()> {
    for (t, verdict) in targets.iter().zip(verdicts) {
        writeln!(out, "{} ({})", t.host, t.stage)?;
        let TargetKind::Ssh(s) = &t.kind else {
            writeln!(out, "  local: this machine, without SSH\n")?;
            continue;
        };
        writeln!(out, "  connect      {}", hop(s))?;
        if !s.jump.is_empty() {
            let chain: Vec<String> = s.jump.iter().map(hop).collect();
            writeln!(out, "  through      {}", chain.join(" -> "))?;
        }
        let agent = if s.use_agent { "agent, then " } else { "" };
        let repeated = if s.identity_files_repeated.is_empty() {
            String::new()
        } else {
            format!(
                " (each offered once; named more than once: {})",
                paths(&s.identity_files_repeated)
            )
        };
        writeln!(
            out,
            "  keys         {agent}{}{repeated}",
            paths(&s.identity_files)
        )?;
        writeln!(out, "  known_hosts  {}", paths(&s.known_hosts))?;
        writeln!(out, "  global       {}", paths(&s.global_known_hosts))?;
        if let Some(alias) = &s.host_key_alias {
            writeln!(out, "  key alias    {alias}")?;
        }
        writeln!(
            out,
            "  new keys     {}{}",
            match s.policy {
                crate::transport::HostKeyPolicy::Strict => "refused",
                crate::transport::HostKeyPolicy::AcceptNew => "accepted and recorded",
            },
            if s.hash_known_hosts { " (hashed)" } else { "" }
        )?;
        writeln!(out, "  timeout      {}s", s.connect_timeout.as_secs())?;
        writeln!(out, "  keepalive    {}", keepalive(s))?;
        writeln!(out, "  kex          {}", kex_offer(s))?;
        if let Some(v) = verdict_text(verdict) {
            writeln!(out, "  host key     {v}")?;
        }
        if let Some(Ok(check)) = verdict {
            writeln!(out, "  negotiated   {}", crate::text::one_line(&check.kex))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn ssh_json(s: &SshTarget) -> serde_json::Value {
    serde_json::json!({
        "host_name": s.host_name,
        "port": s.port,
        "user": s.user,
        "agent": s.use_agent,
        "identity_files": s.identity_files,
        "identity_files_repeated": s.identity_files_repeated,
        "known_hosts": s.known_hosts,
        "global_known_hosts": s.global_known_hosts,
        "host_key_alias": s.host_key_alias,
        "accept_new_host_keys": s.policy == crate::transport::HostKeyPolicy::AcceptNew,
        "hash_known_hosts": s.hash_known_hosts,
        "connect_timeout_secs": s.connect_timeout.as_secs(),
        "server_alive": s.server_alive.map(|(i, n)| serde_json::json!({"interval_secs": i.as_secs(), "count_max": n})),
        "kex": crate::transport::ssh::kex::offered(s, &crate::transport::ssh::kex::runnable()).unwrap_or_default(),
        "jump": s.jump.iter().map(ssh_json).collect::<Vec<_>>(),
    })
}

/// JSON: `{"hosts": [{"stage", "host", "local", "ssh": {...}}]}`.
pub(crate) fn render_json(
    targets: &[Target],
    verdicts: &[Verdict],
    out: &mut dyn Write,
) -> io::Result<()> {
    let hosts: Vec<serde_json::Value> = targets
        .iter()
        .zip(verdicts)
        .map(|(t, verdict)| {
            serde_json::json!({
                "stage": t.stage,
                "host": t.host,
                "local": matches!(t.kind, TargetKind::Local),
                "ssh": match &t.kind {
                    TargetKind::Ssh(s) => ssh_json(s),
                    TargetKind::Local => serde_json::Value::Null,
                },
                "host_key": match verdict {
                    None => serde_json::Value::Null,
                    Some(Ok(check)) => serde_json::json!({ "ok": true, "verdict": check.key, "kex": check.kex }),
                    Some(Err(why)) => serde_json::json!({ "ok": false, "verdict": why }),
                },
            })
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &serde_json::json!({ "hosts": hosts }))?;
    writeln!(out)
}
