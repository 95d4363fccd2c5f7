//! `deployer versions PKG [STAGE]`: refresh the package lists of the
//! stage's hosts (`apt-get update`, waiting for the lists lock as deploys
//! do) unless `--no-update`, read `apt-cache policy PKG` on each, and hand
//! the answers to [`crate::versions`], which orders and renders them.
//!
//! The commands and their parsing are `apt`'s; nothing here is installed
//! or removed.

use std::io::{self, Write};

use crate::apt::{self, Policy};
use crate::config::Config;
use crate::fleet::Fleet;
use crate::package::PackageName;
use crate::transport;
use crate::versions::{self, Failure, Report};

/// What one host answered: its policy, or why there is none (one line,
/// made safe).
type Answer = Result<Policy, String>;

/// Ask every host of `fleet` what it can install of `package`, stage by
/// stage in configuration order (`stages`: the names asked about).
pub(crate) fn gather(
    config: &Config,
    fleet: &mut Fleet,
    stages: &[&str],
    package: &PackageName,
    update: bool,
) -> Report {
    let lock_wait = config.ssh.lock_timeout;
    let update_timeout = config.ssh.deploy_timeout;
    let policy_timeout = config.ssh.command_timeout;
    let policy_command = apt::policy(package);
    let answers: Vec<(String, String, Answer)> = fleet.on_each(
        |_| true,
        |m| {
            let stage = m.target().stage.clone();
            let host = m.host().to_string();
            if update {
                let updated = m.run_waiting_for_lock(
                    &apt::update(),
                    update_timeout,
                    lock_wait,
                    apt::update_lock_busy,
                    |host| {
                        let _ = writeln!(
                            io::stderr(),
                            "  {host}: `apt-get update` waits for a lock held by another process (apt-daily, unattended-upgrades?), up to {}s",
                            lock_wait.as_secs()
                        );
                    },
                );
                let failed = match updated {
                    Ok(out) if out.success() => None,
                    Ok(out) => Some(format!(
                        "`apt-get update` failed (exit status {}): {}{}",
                        out.status,
                        apt::update_failure(&out.combined()),
                        apt::failure_hint(&out.combined())
                            .map(|h| format!("; {h}"))
                            .unwrap_or_default()
                    )),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(why) = failed {
                    return (stage, host, Err(why));
                }
            }
            let answer = match m.run(&policy_command, policy_timeout) {
                Ok(out) if out.success() => apt::parse_policy(package, &out.stdout)
                    .map_err(|e| {
                        format!(
                            "cannot read `apt-cache policy`: {}",
                            crate::text::clipped_line(&e, crate::text::REMOTE_TEXT_MAX)
                        )
                    }),
                Ok(out) => Err(format!(
                    "`apt-cache policy` failed ({})",
                    transport::failure(&out)
                )),
                Err(e) => Err(e.to_string()),
            };
            (stage, host, answer)
        },
    );
    let mut failures = Vec::new();
    let per_stage = stages
        .iter()
        .map(|&stage| {
            let policies: Vec<(String, Policy)> = answers
                .iter()
                .filter(|(s, _, _)| s == stage)
                .filter_map(|(_, host, a)| match a {
                    Ok(p) => Some((host.clone(), p.clone())),
                    Err(e) => {
                        failures.push(Failure {
                            stage: stage.to_string(),
                            host: host.clone(),
                            error: e.clone(),
                        });
                        None
                    }
                })
                .collect();
            versions::for_stage(stage, &policies)
        })
        .collect();
    Report {
        package: package.clone(),
        updated: update,
        stages: per_stage,
        failures,
    }
}
