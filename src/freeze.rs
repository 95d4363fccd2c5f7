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
/// freeze from every other operator. The directory is entered through
/// [`crate::hostpath`] (created if missing) and the record written
/// relative to it, so no link another user planted is followed.
pub fn set_command(stage: &str) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", &crate::hostpath::script(SET), DIR, stage])
        .sudo()
}

/// The script of [`set_command`]: `$0` the directory, `$1` the stage.
const SET: &str = r#"set -eu
umask 022
hp_enter "$0" create
hp_file "$1.new"
hp_file "$1"
cat > "$1.new"
chmod 0644 -- "$1.new"
mv -f -T -- "$1.new" "$1"
"#;

/// Remove the record for `stage`, relative to the directory checked
/// through [`crate::hostpath`] (nothing to do when it is missing).
pub fn clear_command(stage: &str) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", &crate::hostpath::script(CLEAR), DIR, stage])
        .sudo()
}

/// The script of [`clear_command`]: `$0` the directory, `$1` the stage.
const CLEAR: &str = r#"set -eu
hp_enter "$0"
[ -z "$hp_missing" ] || exit 0
hp_file "$1"
rm -f -- "$1"
"#;

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
        let set = set_command("prod");
        assert!(set.as_str().starts_with("sudo -n sh -c "), "{set}");
        assert!(
            set.as_str().ends_with("' /var/lib/deployer/freeze prod"),
            "{set}"
        );
        let clear = clear_command("pr od");
        assert!(
            clear
                .as_str()
                .ends_with("' /var/lib/deployer/freeze 'pr od'"),
            "{clear}"
        );
    }

    /// Run `script` (of this module) with the record directory `dir` under
    /// `top`, trusted as a host trusts `/`.
    fn run(
        top: &std::path::Path,
        script: &str,
        dir: &str,
        stage: &str,
        stdin: &str,
    ) -> (i32, String) {
        let top = top.canonicalize().unwrap().display().to_string();
        let me = rustix::process::geteuid().as_raw();
        let c = RemoteCommand::new("sh").args([
            "-c",
            &crate::hostpath::script_in(&top, me, script),
            &format!("{top}/{dir}"),
            stage,
        ]);
        let (status, _, stderr) = crate::command::run_here(&c, stdin.as_bytes());
        (status, stderr)
    }

    #[test]
    fn set_and_clear_write_relative_to_a_checked_directory() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let (status, stderr) = run(tmp.path(), SET, "lib/freeze", "prod", "{}\n");
        assert_eq!(status, 0, "{stderr}");
        let record = tmp.path().join("lib/freeze/prod");
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "{}\n");
        let mode = std::fs::metadata(&record).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(run(tmp.path(), CLEAR, "lib/freeze", "prod", "").0, 0);
        assert!(!record.exists());
        assert_eq!(
            run(tmp.path(), CLEAR, "lib/none", "prod", "").0,
            0,
            "nothing to clear"
        );

        // a planted link: refused, nothing written or removed through it
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("prod"), "keep").unwrap();
        symlink(&elsewhere, tmp.path().join("lib/linked")).unwrap();
        for script in [SET, CLEAR] {
            let (status, stderr) = run(tmp.path(), script, "lib/linked", "prod", "{}\n");
            assert_eq!(status, crate::hostpath::REFUSED_STATUS, "{stderr}");
            let r = crate::hostpath::parse_refusal(&stderr).unwrap();
            assert!(r.path.ends_with("/lib/linked"), "{r:?}");
        }
        assert_eq!(
            std::fs::read_to_string(elsewhere.join("prod")).unwrap(),
            "keep"
        );
    }
}
