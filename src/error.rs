//! Exit statuses and the errors that cross module boundaries.
//!
//! Each exit status has one documented meaning, so cron jobs and monitoring
//! can branch on it. [`EXIT_STATUSES`] is the one table of those meanings:
//! `--help`, the manual page's EXIT STATUS and docs/reference.md (checked
//! by a test) all come from it. Host-level failures are [`HostError`]s:
//! they are collected per host and never abort a whole run.

use std::path::PathBuf;
use std::time::Duration;

use crate::openssh::known_hosts::KnownKey;
use crate::text::{self, REMOTE_TEXT_MAX};

/// The process exit status. The numbers are part of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Everything worked; every host answered.
    Success = 0,
    /// An unexpected internal error.
    Internal = 1,
    /// Bad command line or bad configuration; nothing was contacted.
    Usage = 2,
    /// Some hosts could not be reached or queried, or were left out of a
    /// deploy; the others were served.
    Unreachable = 3,
    /// `--check`: a rollout is pending between two stages.
    Pending = 4,
    /// `--check`: a regression, drift inside a stage or a broken package.
    Attention = 5,
    /// A deploy was refused before any host was changed.
    Refused = 6,
    /// A deploy failed and no host was changed.
    FailedUnchanged = 7,
    /// A deploy failed after changing some hosts, or left a host in an
    /// unknown state; or went to its end with failed hosts within the
    /// stage's failure budget (`max_failures`).
    FailedPartial = 8,
    /// A deploy was interrupted by a signal (SIGINT, SIGTERM, SIGHUP); the
    /// report and the history say which hosts were changed.
    Interrupted = 9,
}

impl ExitStatus {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What this status means, from [`EXIT_STATUSES`].
    pub fn meaning(self) -> &'static str {
        EXIT_STATUSES
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, meaning)| meaning)
    }
}

/// The one table of exit statuses and their meanings, in order. `--help`,
/// the manual page and docs/reference.md are written from it.
pub const EXIT_STATUSES: &[(ExitStatus, &str)] = &[
    (ExitStatus::Success, "success; every host answered"),
    (
        ExitStatus::Internal,
        "internal error, or a failure on this machine: the output or a local file could not be written (`refresh-badges --output`, `man --output-dir`), `ansible-inventory` could not be run",
    ),
    (
        ExitStatus::Usage,
        "bad command line or configuration; nothing was contacted",
    ),
    (
        ExitStatus::Unreachable,
        "some hosts could not be reached (status view, `refresh-badges`), their badges could not be written (`refresh-badges`), their history or package logs could not be read (`history --hosts`, `timeline`), they failed a check (`check`, `hosts --check`), or they did not say what they can install (`versions`) or what a version changes (`changes`), or a deploy, promotion or rollback left them out (`--skip-unreachable`, `--exclude`: the stage is not done); the others were served",
    ),
    (
        ExitStatus::Pending,
        "`--check`: a rollout is pending between two stages",
    ),
    (
        ExitStatus::Attention,
        "`--check`: a regression, drift inside a stage, or a broken package",
    ),
    (
        ExitStatus::Refused,
        "deploy/promote/rollback refused before any host was changed (guard, freeze, firing alerts or an Alertmanager that cannot be asked, a closed deploy window or freeze date, lock, dpkg busy, sudo, hold, side effects, rollback promise, history not writable, unavailable version, no confirmation, no version to roll back to, approvals missing or a `--plan` expired or stale); also `approve` of an expired plan or not confirmed, `freeze` of a frozen stage, `unlock` without `--force`, and `freeze`, `unfreeze` or `unlock` where sudo does not work",
    ),
    (
        ExitStatus::FailedUnchanged,
        "deploy failed and no host was changed",
    ),
    (
        ExitStatus::FailedPartial,
        "deploy failed after changing some hosts, or left a host in an unknown state; also a rollout that went to its end with failed hosts within the stage's failure budget (`max_failures`)",
    ),
    (
        ExitStatus::Interrupted,
        "deploy stopped before its last batch by a signal (Ctrl-C, SIGTERM, SIGHUP), by a freeze set during the rollout, by alerts that started firing (`[alerts]`), or by the stage's deploy window closing (`deploy_windows`); the report and the history say which hosts changed",
    ),
];

/// What follows the table wherever it is shown.
pub const EXIT_STATUS_PRECEDENCE: &str =
    "When several apply, status 3 takes precedence over 4 and 5. A closed pipe (`deployer | head`) exits quietly.";

/// The exit statuses `statuses` as `--help` shows them: a heading, then
/// one `N  meaning` line each, wrapped by clap. All of them when empty.
pub fn exit_status_help(statuses: &[ExitStatus]) -> String {
    let mut out = String::from("Exit status:");
    for (status, meaning) in EXIT_STATUSES {
        if statuses.is_empty() || statuses.contains(status) {
            out.push_str(&format!("\n  {}  {meaning}", status.code()));
        }
    }
    if statuses.is_empty() {
        out.push_str(&format!("\n\n{EXIT_STATUS_PRECEDENCE}"));
    }
    out
}

/// The table as a Markdown table, as docs/reference.md carries it.
pub fn exit_status_markdown() -> String {
    let mut out = String::from("| Status | Meaning |\n| --- | --- |\n");
    for (status, meaning) in EXIT_STATUSES {
        out.push_str(&format!("| {} | {meaning} |\n", status.code()));
    }
    out
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s as u8)
    }
}

/// Why one host could not be reached or could not run a command.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// The host name did not resolve.
    #[error("cannot resolve `{host}`: {message}")]
    Resolve {
        /// The name looked up.
        host: String,
        /// The resolver's words.
        message: String,
    },
    /// TCP connection failed (refused, unreachable...).
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The OS error.
        message: String,
    },
    /// Something took longer than allowed.
    #[error("timed out after {}s while {phase}", after.as_secs_f32())]
    Timeout {
        /// What was going on.
        phase: String,
        /// The limit that was hit.
        after: Duration,
    },
    /// The host offered a key that no known_hosts file lists.
    #[error(
        "host key for `{host}` is not known: {key_type} {fingerprint} (not in {})",
        known_hosts.display()
    )]
    HostKeyUnknown {
        /// The name looked up in known_hosts.
        host: String,
        /// Key algorithm, e.g. `ssh-ed25519`.
        key_type: String,
        /// `SHA256:...` fingerprint of the offered key.
        fingerprint: String,
        /// Where it was looked up (and where `accept-new` would write it).
        known_hosts: PathBuf,
    },
    /// The host offered a key different from the ones known_hosts lists
    /// for it.
    #[error(
        "HOST KEY CHANGED for `{host}`: it offered {key_type} {fingerprint}, but known_hosts lists {}",
        known.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    HostKeyChanged {
        /// The host as written in deployer.ini.
        host: String,
        /// Key algorithm, e.g. `ssh-ed25519`.
        key_type: String,
        /// `SHA256:...` fingerprint of the offered key.
        fingerprint: String,
        /// The keys listed for the host, with their file and line.
        known: Vec<KnownKey>,
    },
    /// The host offered a key that a known_hosts file marks `@revoked`.
    #[error(
        "host key for `{host}` is REVOKED: it offered {key_type} {fingerprint}, which {}:{line} marks `@revoked`",
        known_hosts.display()
    )]
    HostKeyRevoked {
        /// The host as written in deployer.ini.
        host: String,
        /// Key algorithm, e.g. `ssh-ed25519`.
        key_type: String,
        /// `SHA256:...` fingerprint of the offered key.
        fingerprint: String,
        /// The file revoking it.
        known_hosts: PathBuf,
        /// The `@revoked` line there.
        line: usize,
    },
    /// Only a `@cert-authority` line vouches for the host: its trust rests
    /// on host certificates, which deployer cannot check.
    #[error(
        "host key for `{host}` cannot be checked: it offered {key_type} {fingerprint}, and {}:{line} trusts a certificate authority (`@cert-authority`) for it, but deployer does not support host certificates; list the host's own key in known_hosts once you have checked it",
        known_hosts.display()
    )]
    HostKeyCertAuthority {
        /// The host as written in deployer.ini.
        host: String,
        /// Key algorithm, e.g. `ssh-ed25519`.
        key_type: String,
        /// `SHA256:...` fingerprint of the offered key.
        fingerprint: String,
        /// The file with the `@cert-authority` line.
        known_hosts: PathBuf,
        /// Its line there.
        line: usize,
    },
    /// A known_hosts file exists but cannot be read: the host key cannot
    /// be checked.
    #[error(
        "cannot read the known_hosts file `{}` ({message}), so the host key of `{host}` cannot be checked",
        path.display()
    )]
    KnownHostsUnreadable {
        /// The host as written in deployer.ini.
        host: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// accept-new could not record a new host key: the host is refused.
    #[error(
        "cannot record the new host key of `{host}` in `{}`: {message}",
        known_hosts.display()
    )]
    HostKeyNotRecorded {
        /// The host as written in deployer.ini.
        host: String,
        /// The file it would go to.
        known_hosts: PathBuf,
        /// Why not.
        message: String,
    },
    /// None of the key exchange algorithms `KexAlgorithms` leaves for the
    /// host is one the linked libssh2 runs: nothing was sent to it.
    #[error(
        "no key exchange algorithm for `{host}` that deployer can run: `KexAlgorithms` leaves {}, \
         and deployer runs {}",
        listed.join(","),
        runnable.join(",")
    )]
    KexNoneRunnable {
        /// The host as written in deployer.ini.
        host: String,
        /// The list `KexAlgorithms` makes for it.
        listed: Vec<String>,
        /// The algorithms deployer's SSH library runs.
        runnable: Vec<String>,
    },
    /// The host and deployer have no key exchange algorithm in common.
    #[error(
        "`{host}` and deployer have no key exchange algorithm in common: deployer offered {}; \
         the server offers {}",
        offered.join(","),
        server.as_deref().map_or_else(
            || "a list that could not be read".to_string(),
            |s| text::clipped_line(s, REMOTE_TEXT_MAX)
        )
    )]
    KexNoMatch {
        /// The host as written in deployer.ini.
        host: String,
        /// What deployer offered, best first.
        offered: Vec<String>,
        /// What the server offers (its own text), if it could be read.
        server: Option<String>,
    },
    /// No key was accepted.
    #[error("authentication failed for user `{user}` (tried: {})", tried.join(", "))]
    Auth {
        /// The login user.
        user: String,
        /// What was tried, in order.
        tried: Vec<String>,
    },
    /// The host closed the connection while keys were tried, e.g. after
    /// sshd's `MaxAuthTries` (6 by default) refused keys.
    #[error(
        "the host closed the connection while authenticating `{user}`: {} (tried: {})",
        text::clipped_line(reason, REMOTE_TEXT_MAX),
        tried.join(", ")
    )]
    AuthClosed {
        /// The login user.
        user: String,
        /// What the host said (its disconnect message).
        reason: String,
        /// What was tried, in order.
        tried: Vec<String>,
    },
    /// This machine ran out of file descriptors (`EMFILE`/`ENFILE`): a
    /// limit of this machine, not a fault of the host.
    #[error(
        "this machine ran out of file descriptors while {during}; raise `ulimit -n` or lower `parallelism` in deployer.ini"
    )]
    OutOfDescriptors {
        /// What was being opened, e.g. "connecting to 10.0.0.1:22".
        during: String,
    },
    /// A file of this machine needed to reach the host (known_hosts, a
    /// key) exists but cannot be read.
    #[error("cannot read `{}`: {message}", path.display())]
    LocalFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// sudo wanted a password (deployer runs `sudo -n`).
    #[error("sudo on the host asks for a password; deployer needs passwordless sudo for `{user}`")]
    SudoPassword {
        /// The login user.
        user: String,
    },
    /// The SSH layer failed (its words may come from the host: shown one
    /// line, escaped and clipped).
    #[error("ssh: {}", text::clipped_line(.0, REMOTE_TEXT_MAX))]
    Ssh(String),
    /// The connection dropped while a command ran.
    #[error("connection lost while {}", text::clipped_line(.0, REMOTE_TEXT_MAX))]
    Disconnected(String),
    /// A remote command exited non-zero where that is a failure; what it
    /// printed follows (one line, escaped and clipped).
    #[error(
        "`{command}` exited with status {status}{}{}",
        if output.trim().is_empty() { "" } else { ": " },
        text::clipped_line(output.trim(), REMOTE_TEXT_MAX)
    )]
    Command {
        /// A short name of the command.
        command: String,
        /// Its exit status.
        status: i32,
        /// What it printed on stderr (and stdout, for apt).
        output: String,
    },
    /// The remote output could not be understood.
    #[error(
        "unexpected output from `{command}`: {}",
        text::clipped_line(message, REMOTE_TEXT_MAX)
    )]
    Protocol {
        /// A short name of the command.
        command: String,
        /// What was wrong.
        message: String,
    },
}

/// A failure that ends the run: printed as `error: ...` with `note:` lines,
/// then the process exits with `status`.
#[derive(Debug, Clone)]
pub struct Fatal {
    /// What went wrong, objects in backticks.
    pub message: String,
    /// How to fix it, or what would be accepted.
    pub notes: Vec<String>,
    /// The exit status.
    pub status: ExitStatus,
}

impl Fatal {
    /// A usage or configuration error (exit status 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Fatal {
            message: message.into(),
            notes: Vec::new(),
            status: ExitStatus::Usage,
        }
    }

    /// Add a `note:` line.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Change the exit status.
    #[must_use]
    pub fn status(mut self, status: ExitStatus) -> Self {
        self.status = status;
        self
    }
}

impl From<crate::config::ConfigError> for Fatal {
    fn from(e: crate::config::ConfigError) -> Self {
        let mut f = Fatal::usage(e.to_string());
        if let Some(n) = e.note {
            f.notes.push(n);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_text_in_host_errors_cannot_drive_the_terminal() {
        let cases = [
            (
                HostError::Ssh("Disconnected by server: \x1b]0;pwned\x07".into()),
                "ssh: Disconnected by server: \\x1b]0;pwned\\x07",
            ),
            (
                HostError::Disconnected("running `x`: \x1b[2J\nerror: fake".into()),
                "connection lost while running `x`: \\x1b[2J\\nerror: fake",
            ),
            (
                HostError::Protocol {
                    command: "dpkg-query".into(),
                    message: "bad line `\u{202e}evil`".into(),
                },
                "unexpected output from `dpkg-query`: bad line `\\u{202e}evil`",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    /// The host's own words are what explain a failed command: they are
    /// shown, made safe.
    #[test]
    fn a_failed_command_shows_what_it_said() {
        let e = HostError::Command {
            command: "dpkg-query".into(),
            status: 2,
            output: "dpkg-query: error: parsing file '/var/lib/dpkg/status'\x1b[2J\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "`dpkg-query` exited with status 2: dpkg-query: error: parsing file \
             '/var/lib/dpkg/status'\\x1b[2J"
        );
        let quiet = HostError::Command {
            command: "dpkg-query".into(),
            status: 2,
            output: " \n".into(),
        };
        assert_eq!(quiet.to_string(), "`dpkg-query` exited with status 2");
    }

    #[test]
    fn out_of_descriptors_says_what_to_do() {
        let e = HostError::OutOfDescriptors {
            during: "connecting to 10.0.0.1:22".into(),
        };
        let shown = e.to_string();
        assert!(shown.contains("ran out of file descriptors while connecting to 10.0.0.1:22"));
        assert!(shown.contains("`ulimit -n`") && shown.contains("`parallelism`"));
    }

    #[test]
    fn the_exit_status_table_lists_every_status_once_in_order() {
        let codes: Vec<u8> = EXIT_STATUSES.iter().map(|(s, _)| s.code()).collect();
        assert_eq!(codes, (0..=9).collect::<Vec<u8>>());
        assert_eq!(ExitStatus::Refused.code(), 6);
        assert!(ExitStatus::Pending.meaning().contains("rollout is pending"));
        let help = exit_status_help(&[ExitStatus::Success, ExitStatus::Unreachable]);
        assert!(help.starts_with("Exit status:\n  0  success"), "{help}");
        assert!(help.contains("\n  3  some hosts") && !help.contains("\n  6 "));
        assert!(exit_status_help(&[]).contains("\n  9  deploy stopped"));
        assert!(exit_status_markdown().contains("| 7 | deploy failed and no host was changed |"));
    }

    #[test]
    fn long_remote_text_is_clipped() {
        let e = HostError::Protocol {
            command: "dpkg-query".into(),
            message: "x".repeat(10_000),
        };
        let shown = e.to_string();
        assert!(shown.len() < REMOTE_TEXT_MAX + 100, "{}", shown.len());
        assert!(shown.ends_with("… (9700 more characters)"), "{shown}");
    }
}
