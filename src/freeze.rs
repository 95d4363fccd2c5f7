//! Stage freezes: a record on every host of a stage saying who froze it,
//! when and why. Kept on the hosts (not on one operator's laptop) so that
//! every copy of deployer and every cron job sees it. A frozen stage
//! refuses deploy and promote unless forced with a logged reason.

use serde::{Deserialize, Serialize};

use crate::command::RemoteCommand;

/// Where the record lives on each host.
pub const FILE: &str = "/var/lib/deployer/freeze";

/// Who froze a stage, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
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
            by: "unknown".to_string(),
            since: "unknown".to_string(),
            reason: text.trim().to_string(),
        })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        format!("frozen by {} since {}: {}", self.by, self.since, self.reason)
    }
}

/// Write the record read from stdin; atomically, so a reader never sees
/// half of it.
pub fn set_command() -> RemoteCommand {
    let script = format!("mkdir -p /var/lib/deployer && cat > {FILE}.new && mv -f {FILE}.new {FILE}");
    RemoteCommand::new("sh").args(["-c", &script]).sudo()
}

/// Remove the record.
pub fn clear_command() -> RemoteCommand {
    RemoteCommand::new("rm").args(["-f", FILE]).sudo()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_reads_well() {
        let f = Freeze {
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
    fn hand_written_record_still_freezes() {
        let f = Freeze::from_text("do not deploy, ask bob\n");
        assert_eq!(f.reason, "do not deploy, ask bob");
    }

    #[test]
    fn commands_take_no_operator_text() {
        assert_eq!(
            set_command().as_str(),
            "sudo -n sh -c 'mkdir -p /var/lib/deployer && cat > /var/lib/deployer/freeze.new && mv -f /var/lib/deployer/freeze.new /var/lib/deployer/freeze'"
        );
        assert_eq!(clear_command().as_str(), "sudo -n rm -f /var/lib/deployer/freeze");
    }
}
