//! What every phase asks one host: the package's state, a command run
//! while a lock it needs is busy, what `dpkg --audit` finds; and how the
//! text a host sends is put on a report line.

use std::time::Duration;

use crate::command::RemoteCommand;
use crate::detach;
use crate::error::HostError;
use crate::fleet::Member;
use crate::package::PackageName;
use crate::status::{self, PackageState};
use crate::transport;

use super::context::Context;

/// Read the package's state on one host.
pub fn read_state(
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

/// Run `command`; while its output says that a lock it needs is busy
/// (`busy`), run it again, for up to `wait` in all. apt's own wait
/// (`DPkg::Lock::Timeout`) covers neither the package lists' lock nor
/// `apt-mark`. The first wait is announced on the console.
pub fn run_waiting_for_lock(
    cx: &Context<'_>,
    member: &mut Member,
    command: &RemoteCommand,
    timeout: Duration,
    busy: fn(&str) -> bool,
) -> Result<transport::Output, HostError> {
    let wait = cx.config.ssh.lock_timeout;
    member.run_waiting_for_lock(command, timeout, wait, busy, |host| {
        cx.console.say(&format!(
            "  {host}: `{}` waits for a lock held by another process (apt-daily, unattended-upgrades?), up to {}s",
            command.label(),
            wait.as_secs()
        ));
    })
}

/// What `dpkg --audit` finds on the host, in one line for a host whose
/// install is over without a status: the packages dpkg left unfinished,
/// or that it found none, or why it could not be asked.
pub(super) fn dpkg_audit(member: &mut Member, timeout: Duration) -> String {
    match member.run(&detach::audit_command(), timeout) {
        Ok(out) => detach::describe_audit(&out),
        Err(e) => format!("dpkg's state could not be read: {e}"),
    }
}
