//! Before a host's package is changed (an install, or the rollback
//! policy's reinstall), the `.deb` of the version it runs now is kept in
//! its cache ([`crate::debcache`]): under the deploy lock, proven on the
//! host in the same root shell that writes the cache (`lock::guarded`),
//! just before the change. A failure to keep it is a warning for the
//! host's record, not a failed deploy; except where a rollback relies on
//! the cached file (the repository no longer offers the version the host
//! runs): then the host is not changed.

use crate::debcache::{self, Kept, Meta};
use crate::fleet::Member;
use crate::lock;
use crate::plan::Step;
use crate::status::PackageState;

use super::attempt::Attempt;
use super::context::Context;

/// Keep the `.deb` of what `step`'s host runs now. `Ok(None)`: kept (or
/// nothing to keep: the package is not installed and configured);
/// `Ok(Some(warning))`: not kept, one line for the host's record; `Err`:
/// not kept, and a rollback of this host depends on it
/// ([`Step::restore_from`]), so the host must not be changed.
pub(super) fn keep_running(
    cx: &Context<'_>,
    member: &mut Member,
    package: &crate::package::PackageName,
    step: &Step,
    rollback_relies: bool,
    attempt: &Attempt,
) -> Result<Option<String>, String> {
    let PackageState::Installed(version) = &step.from else {
        return Ok(None);
    };
    let config = cx.config;
    let warn = |why: String| {
        let line = format!("{version} not kept in the host's .deb cache: {why}");
        if rollback_relies && step.restore_from.is_some() {
            Err(format!(
                "not changed: a rollback to {version} relies on the host's .deb cache, and {line}"
            ))
        } else {
            Ok(Some(line))
        }
    };
    let listed =
        match member.run(
            &debcache::listing_command(package),
            config.ssh.command_timeout,
        ) {
            Ok(out) if out.success() => debcache::parse_listing(package, &out.stdout),
            Ok(out) => {
                return warn(crate::hostpath::refused(&out.stderr).unwrap_or_else(|| {
                    format!("cannot list it: {}", crate::transport::failure(&out))
                }))
            }
            Err(e) => return warn(format!("cannot list it: {e}")),
        };
    let meta = match listed.iter().find(|c| c.version == *version) {
        Some(c) => Meta {
            arch: c.arch.clone(),
            sha256: c.sha256.clone(),
        },
        None => match member.run(
            &debcache::show_command(package, version),
            config.ssh.command_timeout,
        ) {
            Ok(out) if out.success() => match debcache::parse_show(&out.stdout, package, version) {
                Ok(meta) => meta,
                Err(why) => return warn(why),
            },
            Ok(out) => {
                return warn(format!(
                    "`apt-cache show` failed: {}",
                    crate::transport::failure(&out)
                ))
            }
            Err(e) => return warn(format!("`apt-cache show` failed: {e}")),
        },
    };
    let file = debcache::file_name(package, version, &meta.arch);
    let prune = debcache::to_prune(&listed, &file);
    let command = lock::guarded(
        attempt.id(),
        &debcache::keep_command(package, version, &meta, &prune),
    );
    // fetching the file may take as long as an install's download
    let out = match member.run(&command, config.ssh.deploy_timeout) {
        Ok(out) => out,
        Err(e) => return warn(e.to_string()),
    };
    if let Some(holder) = lock::lost(&out) {
        return Err(lock::lost_message(&holder));
    }
    if !out.success() {
        return warn(
            crate::hostpath::refused(&out.stderr)
                .map(|why| format!("refusing to write the cache: {why}"))
                .unwrap_or_else(|| crate::transport::failure(&out)),
        );
    }
    match debcache::parse_keep(&out.stdout) {
        Some(kept @ Kept::Kept { .. }) => {
            if cx.opts.verbose {
                cx.console
                    .say(&format!("  {}: {version}: {kept}", member.host()));
            }
            Ok(None)
        }
        Some(other) => warn(other.to_string()),
        None => warn("the cache script gave no answer".to_string()),
    }
}
