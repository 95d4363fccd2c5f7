//! The deploy lock: one per host, so that two operators cannot change the
//! same hosts at once.
//!
//! The lock is a `flock` taken by a command that stays running on the host
//! for the whole deploy and reads its stdin until end of file. It goes away
//! by itself when deployer finishes, dies, or loses the connection — no
//! stale lock to clean up by hand. The holder's description is written next
//! to it so that the second operator is told who holds it and since when.

use crate::command::RemoteCommand;
use crate::text;

/// The root-owned directory of the lock (not the world-writable
/// `/run/lock`, where any local user could take or fake the lock); `/run`
/// is cleared at boot.
pub const LOCK_DIR: &str = "/run/deployer";
/// The lock file on each host.
pub const LOCK_FILE: &str = "/run/deployer/deploy.lock";
/// Who holds the lock, written once it is taken.
pub const HOLDER_FILE: &str = "/run/deployer/holder";

/// `flock`'s exit status when the lock is taken by someone else.
const BUSY_STATUS: &str = "75";

/// The command that takes the lock and holds it while its stdin is open.
/// Its first line of output is `LOCKED`, `BUSY <holder>` or `FAILED <status>`.
pub fn command(holder: &str) -> RemoteCommand {
    let hold = format!("printf '%s\\n' \"$1\" > {HOLDER_FILE}; echo LOCKED; exec cat >/dev/null");
    RemoteCommand::new("mkdir")
        .args(["-p", "-m", "0755", LOCK_DIR])
        .sudo()
        .then(
            RemoteCommand::new("flock")
                .args(["-n", "-E", BUSY_STATUS, LOCK_FILE, "sh", "-c", &hold, "deployer-lock", holder])
                .sudo(),
        )
        .then(RemoteCommand::trusted(
            &format!(
                "rc=$?; if [ \"$rc\" = {BUSY_STATUS} ]; then echo \"BUSY $(cat {HOLDER_FILE} 2>/dev/null)\"; else echo \"FAILED $rc\"; fi"
            ),
            "flock",
        ))
        .named("flock")
}

/// What the host said when asked for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// We hold it now.
    Locked,
    /// Someone else holds it; their description.
    Busy(String),
    /// The lock command failed (e.g. sudo refused); its words.
    Failed(String),
}

/// How many characters of the holder's description are shown.
const HOLDER_MAX: usize = 200;

/// Read the first line printed by [`command`]. The holder's description
/// and any other words come from the host: they are returned on one line,
/// control characters escaped, clipped, ready for a terminal.
pub fn parse(line: &str) -> Answer {
    let line = line.trim();
    let shown = |s: &str| text::clip(&text::one_line(s), HOLDER_MAX);
    if line == "LOCKED" {
        Answer::Locked
    } else if let Some(holder) = line.strip_prefix("BUSY") {
        let holder = holder.trim();
        Answer::Busy(if holder.is_empty() {
            "another deployer (holder unknown)".to_string()
        } else {
            shown(holder)
        })
    } else {
        Answer::Failed(shown(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_text_is_an_argument_not_code() {
        let c = command("eve@box since now; rm -rf /");
        assert!(c.as_str().starts_with(
            "sudo -n mkdir -p -m 0755 /run/deployer; sudo -n flock -n -E 75 /run/deployer/deploy.lock sh -c "
        ));
        assert!(c
            .as_str()
            .contains("deployer-lock 'eve@box since now; rm -rf /'"));
    }

    #[test]
    fn answers() {
        assert_eq!(parse("LOCKED\n"), Answer::Locked);
        assert_eq!(
            parse("BUSY alice@laptop since 2026-11-21T07:30:05Z"),
            Answer::Busy("alice@laptop since 2026-11-21T07:30:05Z".into())
        );
        assert_eq!(
            parse("BUSY "),
            Answer::Busy("another deployer (holder unknown)".into())
        );
        assert_eq!(parse("FAILED 1"), Answer::Failed("FAILED 1".into()));
        assert_eq!(parse(""), Answer::Failed(String::new()));
    }

    #[test]
    fn holder_text_cannot_drive_the_terminal() {
        assert_eq!(
            parse("BUSY eve\x1b]0;pwned\x07\x1b[2J since now"),
            Answer::Busy("eve\\x1b]0;pwned\\x07\\x1b[2J since now".into())
        );
        let Answer::Busy(long) = parse(&format!("BUSY {}", "x".repeat(5000))) else {
            panic!("not busy");
        };
        assert!(long.ends_with("… (4800 more characters)"), "{long}");
        assert_eq!(
            parse("sudo: \u{202e}oops"),
            Answer::Failed("sudo: \\u{202e}oops".into())
        );
    }

    /// The real thing, on this machine: a second holder is told who has it,
    /// and the lock goes away when the first holder's stdin closes.
    #[test]
    fn flock_protocol_works_with_a_real_shell() {
        use crate::transport::{local::LocalConnection, Connection};
        use std::time::Duration;
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: the lock lives in /run/lock and needs root");
            return;
        }
        let mut first = LocalConnection::new();
        let mut second = LocalConnection::new();
        let t = Duration::from_secs(10);
        assert_eq!(
            parse(&first.hold(&command("alice@a since t1"), t).unwrap()),
            Answer::Locked
        );
        assert_eq!(
            parse(&second.hold(&command("bob@b since t2"), t).unwrap()),
            Answer::Busy("alice@a since t1".into())
        );
        first.release();
        second.release();
        assert_eq!(
            parse(&second.hold(&command("bob@b since t3"), t).unwrap()),
            Answer::Locked
        );
    }
}
