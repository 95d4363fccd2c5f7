//! Stage freezes: a record on every host of a stage saying who froze it,
//! when and why. Kept on the hosts (not on one operator's laptop) so that
//! every copy of deployer and every cron job sees it. A frozen stage
//! refuses deploy and promote unless forced with a logged reason.

use serde::{Deserialize, Serialize};

use crate::command::RemoteCommand;

/// Where the records live on each host: one file per frozen stage, named
/// after the stage (a host may serve several stages, e.g. `local`).
pub const DIR: &str = "/var/lib/deployer/freeze";

/// Who froze a stage, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// The stage frozen (the record's file name on the host).
    #[serde(default)]
    pub stage: String,
    /// `user@machine` of the operator.
    pub by: String,
    /// RFC 3339 time.
    pub since: String,
    /// The reason given.
    pub reason: String,
}

impl Freeze {
    /// The record as stored on the hosts: one line of JSON.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("plain strings serialize");
        s.push('\n');
        s
    }

    /// Read a stored record; text that is not a record (edited by hand)
    /// still freezes the stage, with the text as its reason.
    pub fn from_text(text: &str) -> Freeze {
        serde_json::from_str(text.trim()).unwrap_or_else(|_| Freeze {
            stage: String::new(),
            by: "unknown".to_string(),
            since: "unknown".to_string(),
            reason: text.trim().to_string(),
        })
    }

    /// A record that exists on a host but cannot be read (`path`): it
    /// counts as a freeze of every stage.
    pub fn unreadable(path: &str) -> Freeze {
        Freeze {
            stage: UNREADABLE.to_string(),
            by: "unknown".to_string(),
            since: "unknown".to_string(),
            reason: format!(
                "`{path}` exists but cannot be read, so it counts as frozen (fix its permissions: directories 0755, records 0644)"
            ),
        }
    }

    /// Whether this record freezes `stage`.
    pub fn applies_to(&self, stage: &str) -> bool {
        self.stage == stage || self.stage == UNREADABLE
    }

    /// One line for people, for a terminal: the record comes from the
    /// hosts, so control characters are shown escaped (the JSON output
    /// serializes the fields themselves, unchanged).
    pub fn describe(&self) -> String {
        format!(
            "frozen by {} since {}: {}",
            crate::text::one_line(&self.by),
            crate::text::one_line(&self.since),
            crate::text::one_line(&self.reason)
        )
    }
}

/// The stage name of a record that could not be read: it freezes every
/// stage, since nobody can tell which one it was meant for.
pub const UNREADABLE: &str = "*";

/// Write the record for `stage` (a validated stage name) read from stdin;
/// atomically, so a reader never sees half of it. Directories and the
/// record get explicit modes (0755, 0644), whatever umask sudo runs with:
/// a record the unprivileged status query cannot read would hide the
/// freeze from every other operator.
pub fn set_command(stage: &str) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args([
            "-c",
            "umask 022 && install -d -m 0755 \"${0%/*}\" \"$0\" && cat > \"$0/$1.new\" && chmod 0644 \"$0/$1.new\" && mv -f \"$0/$1.new\" \"$0/$1\"",
            DIR,
            stage,
        ])
        .sudo()
}

/// Remove the record for `stage`.
pub fn clear_command(stage: &str) -> RemoteCommand {
    RemoteCommand::new("rm")
        .args(["-f", "--", &format!("{DIR}/{stage}")])
        .sudo()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_reads_well() {
        let f = Freeze {
            stage: "prod".into(),
            by: "alice@laptop".into(),
            since: "2026-11-21T07:30:05Z".into(),
            reason: "incident 42: \"db\" overload".into(),
        };
        assert_eq!(Freeze::from_text(&f.to_line()), f);
        assert_eq!(
            f.describe(),
            "frozen by alice@laptop since 2026-11-21T07:30:05Z: incident 42: \"db\" overload"
        );
    }

    #[test]
    fn describe_escapes_what_the_host_wrote() {
        let f = Freeze {
            stage: "prod".into(),
            by: "eve\x1b]0;pwned\x07".into(),
            since: "now\r".into(),
            reason: "ok\x1b[2J\nerror: all hosts deployed".into(),
        };
        assert_eq!(
            f.describe(),
            "frozen by eve\\x1b]0;pwned\\x07 since now\\r: ok\\x1b[2J\\nerror: all hosts deployed"
        );
        // the record itself keeps the exact text
        assert_eq!(Freeze::from_text(&f.to_line()), f);
    }

    #[test]
    fn hand_written_record_still_freezes() {
        let f = Freeze::from_text("do not deploy, ask bob\n");
        assert_eq!(f.reason, "do not deploy, ask bob");
    }

    #[test]
    fn commands_quote_the_stage() {
        assert_eq!(
            set_command("prod").as_str(),
            "sudo -n sh -c 'umask 022 && install -d -m 0755 \"${0%/*}\" \"$0\" && cat > \"$0/$1.new\" && chmod 0644 \"$0/$1.new\" && mv -f \"$0/$1.new\" \"$0/$1\"' /var/lib/deployer/freeze prod"
        );
        assert_eq!(
            clear_command("prod").as_str(),
            "sudo -n rm -f -- /var/lib/deployer/freeze/prod"
        );
    }
}
