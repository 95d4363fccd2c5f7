//! The deploy lock: one per host, so that two operators cannot change the
//! same hosts at once.
//!
//! The lock is a `flock` held by a root shell on the host that stays
//! running for the whole deploy and reads heartbeats (newlines) on its
//! stdin. It goes away by itself when deployer finishes, dies, or loses
//! the connection (end of file), and also when the heartbeats stop for
//! `lock_expiry`: an operator cut off by a network partition, whose TCP
//! connection the host still believes in, holds it no longer than that.
//! A detached install (see `detach`) holds `install.lock` for as long as
//! it runs, and the lock is refused while it does, so a lock never frees
//! a host that dpkg is still changing.
//!
//! Who holds it (who, since when, which package and version, why) is
//! written next to it as one JSON line, so that a refused operator is
//! told all of it; `deployer unlock` breaks a lock on purpose.
//!
//! Every change made under the lock proves it in the step that makes the
//! change ([`guarded`], and the start of a detached run): a root shell
//! takes the install lock, checks that the deploy lock's live holder is
//! the attempt, and only then runs the change, so that no other deploy can
//! come between the check and the change.
//!
//! Pure: command builders and the parsers of what they print.

use serde::{Deserialize, Serialize};

use crate::command::RemoteCommand;
use crate::detach;
use crate::text;

/// The root-owned directory of the lock (not the world-writable
/// `/run/lock`, where any local user could take or fake the lock); `/run`
/// is cleared at boot.
pub const LOCK_DIR: &str = "/run/deployer";
/// The lock file on each host.
pub const LOCK_FILE: &str = "/run/deployer/deploy.lock";
/// Who holds the lock: one JSON line ([`Holder`]).
pub const HOLDER_FILE: &str = "/run/deployer/holder";
/// The pid of the shell holding the lock, for `deployer unlock`.
pub const PID_FILE: &str = "/run/deployer/holder.pid";

/// Who holds a lock, and for what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@machine` of the operator.
    pub by: String,
    /// When the lock was taken (RFC 3339).
    pub since: String,
    /// The deployer process on the operator's machine.
    pub pid: u32,
    /// `deploy` or `promote`.
    pub action: String,
    /// The package.
    pub package: String,
    /// The stage.
    pub stage: String,
    /// The version asked for, when one was named.
    #[serde(default)]
    pub version: Option<String>,
    /// The attempt's id in the history.
    #[serde(default)]
    pub attempt: String,
    /// The reason given (`--reason`), if any.
    #[serde(default)]
    pub why: Option<String>,
}

impl Holder {
    /// One line for people (host-provided text made safe for a terminal).
    pub fn describe(&self) -> String {
        let version = self.version.as_deref().unwrap_or("(newest)");
        let mut s = format!(
            "{} since {} (pid {}): {} {} {} to {} (attempt {})",
            self.by,
            self.since,
            self.pid,
            self.action,
            self.package,
            version,
            self.stage,
            self.attempt
        );
        if let Some(why) = &self.why {
            s.push_str(": ");
            s.push_str(why);
        }
        text::clipped_line(&s, HOLDER_MAX)
    }
}

/// The lock script: `$1` the lock directory, `$2` the holder (one JSON
/// line), `$3` the expiry in seconds, `$4` the install lock. Prints
/// `LOCKED`, `BUSY <holder>`, `INSTALLING <run>` or `FAILED ...`, then
/// (locked) keeps the lock while lines arrive at least every `$3` seconds.
/// End of file or silence ends it; so does `deployer unlock`, which checks
/// that the pid it ends has the lock open on descriptor 8.
///
/// The directory is entered through [`crate::hostpath`] (created if
/// missing; a refusal is the first line printed) and every file is named
/// relative to it; the install lock lives there too (only its name is
/// used).
const SCRIPT: &str = r#"set -u
dir=$1 holder=$2 expiry=$3 install=${4##*/}
umask 022
{ hp_enter "$dir" create; for f in deploy.lock holder holder.new holder.pid "$install"; do hp_file "$f"; done; } 2>&1
exec 8>>deploy.lock || { echo "FAILED cannot open $dir/deploy.lock"; exit 0; }
if ! flock -n 8; then
    echo "BUSY $(head -c 4096 holder 2>/dev/null | tr '\n' ' ')"
    exit 0
fi
if ! flock -n "$install" true; then
    echo "INSTALLING $(head -c 1024 installing 2>/dev/null | tr '\n' ' ')"
    exit 0
fi
printf '%s\n' "$holder" > holder.new && mv -f holder.new holder
echo $$ > holder.pid
echo LOCKED
while IFS= read -r -t "$expiry" _; do :; done
rm -f holder holder.pid"#;

/// The command that takes the lock for `holder` and keeps it while
/// heartbeats arrive at least every `expiry_secs`. Its first line of
/// output is `LOCKED`, `BUSY <holder>`, `INSTALLING <run>` or `FAILED ...`.
pub fn command(holder: &Holder, expiry_secs: u64) -> RemoteCommand {
    command_with(
        &crate::hostpath::script(SCRIPT),
        LOCK_DIR,
        detach::INSTALL_LOCK,
        holder,
        expiry_secs,
    )
    .sudo()
}

/// [`command`] with its files in `dir` (trusted as a host trusts `/`, and
/// owned by this user) and the install lock at `install`, without sudo
/// (tests use a directory of their own).
#[cfg(test)]
pub(crate) fn command_in(
    dir: &str,
    install: &str,
    holder: &Holder,
    expiry_secs: u64,
) -> RemoteCommand {
    let script = crate::hostpath::script_in(dir, rustix::process::geteuid().as_raw(), SCRIPT);
    command_with(&script, dir, install, holder, expiry_secs)
}

fn command_with(
    script: &str,
    dir: &str,
    install: &str,
    holder: &Holder,
    expiry_secs: u64,
) -> RemoteCommand {
    let line = serde_json::to_string(holder).expect("plain strings serialize");
    RemoteCommand::new("bash")
        .args([
            "-c",
            script,
            "deployer-lock",
            dir,
            &line,
            &expiry_secs.max(1).to_string(),
            install,
        ])
        .named("flock")
}

/// What the host said when asked for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// We hold it now.
    Locked,
    /// Someone else holds it; their description.
    Busy(String),
    /// An install started by an earlier deploy still runs; its run.
    Installing(String),
    /// The lock command failed (e.g. sudo refused); its words.
    Failed(String),
}

/// How many characters of the holder's description are shown.
const HOLDER_MAX: usize = 300;

/// Describe a holder as stored (JSON, or text from an older deployer).
fn holder_text(stored: &str) -> String {
    match serde_json::from_str::<Holder>(stored.trim()) {
        Ok(h) => h.describe(),
        Err(_) if stored.trim().is_empty() => "another deployer (holder unknown)".to_string(),
        Err(_) => text::clipped_line(stored.trim(), HOLDER_MAX),
    }
}

/// Read the first line printed by [`command`]. The holder's description
/// and any other words come from the host: they are returned on one line,
/// control characters escaped, clipped, ready for a terminal.
pub fn parse(line: &str) -> Answer {
    let line = line.trim();
    if line == "LOCKED" {
        Answer::Locked
    } else if let Some(holder) = line.strip_prefix("BUSY") {
        Answer::Busy(holder_text(holder))
    } else if let Some(run) = line.strip_prefix("INSTALLING") {
        let run = run.trim();
        Answer::Installing(if run.is_empty() {
            "an install whose run is unknown".to_string()
        } else {
            text::clipped_line(run, HOLDER_MAX)
        })
    } else if let Some(refusal) = crate::hostpath::parse_refusal(line) {
        Answer::Failed(format!(
            "refusing to lock as root: {refusal}; {}",
            refusal.fix()
        ))
    } else if line.is_empty() {
        Answer::Failed(
            "the lock command ended without a word (are `bash` and `flock` installed there?)"
                .to_string(),
        )
    } else {
        Answer::Failed(text::clipped_line(line, HOLDER_MAX))
    }
}

/// The script of [`unlock_command`] (`$1` the lock directory): print the
/// holder, then end the shell holding the lock; `NONE` when nobody holds
/// it. The pid in `holder.pid` is ended only if that process has the lock
/// file open on descriptor 8, as the lock shell has: a stale pid file, or
/// one read before the new holder wrote its own, must never get an
/// unrelated process killed as root.
const UNLOCK: &str = r#"dir=$1
hp_enter "$dir"
if [ -n "$hp_missing" ]; then echo NONE; exit 0; fi
hp_file deploy.lock
if [ ! -e deploy.lock ] || flock -n deploy.lock true 2>/dev/null; then echo NONE; exit 0; fi
echo "HELD $(head -c 4096 holder 2>/dev/null | tr '\n' ' ')"
pid=$(cat holder.pid 2>/dev/null)
case $pid in ''|*[!0-9]*) echo "deployer unlock: no holder pid in $dir/holder.pid" >&2; exit 1 ;; esac
if [ "$(readlink "/proc/$pid/fd/8" 2>/dev/null)" != "$dir/deploy.lock" ]; then
    echo "deployer unlock: process $pid (from $dir/holder.pid) is not the shell holding $dir/deploy.lock; nothing was ended, try again" >&2
    exit 1
fi
kill -TERM "$pid" 2>/dev/null
i=0
while ! flock -n deploy.lock true 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 50 ]; then echo "deployer unlock: the lock is still held" >&2; exit 1; fi
    sleep 0.1
done
echo BROKEN"#;

/// Break the deploy lock of a host (as root): ends the shell that holds
/// it. An install that is still running keeps its own lock.
pub fn unlock_command() -> RemoteCommand {
    unlock_command_with(&crate::hostpath::script(UNLOCK), LOCK_DIR).sudo()
}

#[cfg(test)]
fn unlock_command_in(dir: &str) -> RemoteCommand {
    let script = crate::hostpath::script_in(dir, rustix::process::geteuid().as_raw(), UNLOCK);
    unlock_command_with(&script, dir)
}

fn unlock_command_with(script: &str, dir: &str) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", script, "deployer-unlock", dir])
        .named("unlock")
}

/// The script of [`check_command`] (`$1` the lock directory, `$2` the
/// attempt): whether the lock is held, and by that attempt. A lock file
/// that is not there (`/run` emptied by a reboot) is free, not held by
/// someone unknown.
const CHECK: &str = r#"dir=$1 attempt=$2
{ hp_enter "$dir"; hp_file deploy.lock; } 2>&1
if [ -n "$hp_missing" ]; then echo FREE; exit 0; fi
if [ ! -e deploy.lock ] || flock -n deploy.lock true 2>/dev/null; then echo FREE; exit 0; fi
holder=$(head -c 4096 holder 2>/dev/null | tr '\n' ' ')
case $holder in
    *"\"attempt\":\"$attempt\""*) echo OURS ;;
    *) echo "OTHER $holder" ;;
esac"#;

/// Ask (as root) whether the deploy lock of a host is still held by
/// `attempt`: a holder that was paused or cut off past `lock_expiry`, or
/// whose lock was broken with `deployer unlock`, must not go on changing
/// the host. Prints `OURS`, `FREE` or `OTHER <holder>`.
pub fn check_command(attempt: &str) -> RemoteCommand {
    check_command_with(&crate::hostpath::script(CHECK), LOCK_DIR, attempt).sudo()
}

#[cfg(test)]
fn check_command_in(dir: &str, attempt: &str) -> RemoteCommand {
    let script = crate::hostpath::script_in(dir, rustix::process::geteuid().as_raw(), CHECK);
    check_command_with(&script, dir, attempt)
}

fn check_command_with(script: &str, dir: &str, attempt: &str) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", script, "deployer-lock-check", dir, attempt])
        .named("lock check")
}

/// Who holds a host's deploy lock, as [`check_command`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The attempt asked about.
    Ours,
    /// Nobody: it expired, was broken, or went with a lost connection.
    Free,
    /// Someone else; their description (safe for a terminal).
    Other(String),
}

/// Read what [`check_command`] printed; anything else is not "ours".
pub fn parse_check(stdout: &str) -> Owner {
    let line = stdout.lines().next().unwrap_or("").trim();
    if line == "OURS" {
        Owner::Ours
    } else if line == "FREE" {
        Owner::Free
    } else if let Some(holder) = line.strip_prefix("OTHER") {
        Owner::Other(holder_text(holder))
    } else if let Some(refusal) = crate::hostpath::parse_refusal(line) {
        Owner::Other(format!("unknown, its directory is refused: {refusal}"))
    } else {
        Owner::Other(format!(
            "unknown (the check said `{}`)",
            text::clipped_line(line, HOLDER_MAX)
        ))
    }
}

/// Shell functions shared by every change made under the lock (see
/// [`guarded`] and `detach::start_command`), run as root by a shell that
/// has entered the lock directory through [`crate::hostpath`] (its
/// current directory) and already holds the install lock on descriptor 9:
/// `deployer_lock_ours ATTEMPT` succeeds only when the deploy lock there
/// is held right now by the live lock shell of `ATTEMPT` (its pid, read
/// first, has the lock open on descriptor 8, and the holder line, read
/// after, names the attempt); `deployer_lock_lost` says who holds it
/// instead (a [`LOST`] line on stderr) and exits [`LOST_STATUS`]. Files
/// are named relative to the checked directory.
///
/// Held install lock plus proven deploy lock is one step: a lock shell
/// that expires after the proof leaves the install lock held, so the next
/// deploy is refused (`INSTALLING`) until this change is over; one that
/// expired before it fails the proof, and nothing is changed.
pub const PROOF: &str = r#"deployer_lock_ours() {
    lock_at="$(pwd -P)/deploy.lock"
    pid=$(head -c 32 holder.pid 2>/dev/null)
    case $pid in ''|*[!0-9]*) return 1 ;; esac
    [ "$(readlink "/proc/$pid/fd/8" 2>/dev/null)" = "$lock_at" ] || return 1
    case $(head -c 4096 holder 2>/dev/null | tr '\n' ' ') in
        *"\"attempt\":\"$1\""*) ;;
        *) return 1 ;;
    esac
    [ "$(readlink "/proc/$pid/fd/8" 2>/dev/null)" = "$lock_at" ]
}
deployer_lock_lost() {
    if flock -n deploy.lock true 2>/dev/null; then
        echo "DEPLOYER-LOCK-LOST" >&2
    else
        echo "DEPLOYER-LOCK-LOST $(head -c 4096 holder 2>/dev/null | tr '\n' ' ')" >&2
    fi
    exit 75
}
"#;

/// The exit status of a change refused because the deploy lock was lost.
pub const LOST_STATUS: i32 = 75;

/// The first word of the stderr line of a change refused because the
/// deploy lock was lost; the holder's JSON line (if any) follows.
const LOST: &str = "DEPLOYER-LOCK-LOST";

/// The script of [`guarded`]: `$1` the lock directory, `$2` the install
/// lock (in that directory: only its name is used), `$3` the attempt, `$4`
/// the command line, `$5` `root` or `user` (run as the user sudo was
/// called by, as it would run without the guard). The lock directory is
/// entered through [`crate::hostpath`] (created if missing) for the proof;
/// the command runs from the directory the guard was started in.
const GUARD: &str = r#"set -u
dir=$1 install=${2##*/} attempt=$3 line=$4 as=$5
here=$(pwd)
umask 022
hp_enter "$dir" create
for f in "$install" deploy.lock; do hp_file "$f"; done
exec 9>>"$install" || { echo "deployer: cannot open $dir/$install" >&2; exit 1; }
if ! flock -n 9; then
    echo "deployer: an install or rollback still runs on this host ($(head -c 300 installing 2>/dev/null | tr '\n' ' ')); nothing was changed" >&2
    exit 1
fi
deployer_lock_ours "$attempt" || deployer_lock_lost
cd -- "$here" 2>/dev/null || cd /
user=${SUDO_USER:-root}
if [ "$as" = user ] && [ "$user" != root ]; then
    runuser -u "$user" -- sh -c "$line" 9>&-
else
    sh -c "$line" 9>&-
fi"#;

/// `command`, run on the host only if the deploy lock is `attempt`'s at
/// that very moment, in one root shell that holds the install lock from
/// before the proof until the command has ended (see [`PROOF`]). A lost
/// lock exits [`LOST_STATUS`] and changes nothing; read it with
/// [`lost`]. A command that runs as root (`sudo -n ...`) runs as root; a
/// command from the configuration runs as the login user, as unguarded.
pub fn guarded(attempt: &str, command: &RemoteCommand) -> RemoteCommand {
    let script = crate::hostpath::script(&format!("{PROOF}{GUARD}"));
    guarded_with(&script, LOCK_DIR, detach::INSTALL_LOCK, attempt, command).sudo()
}

/// [`guarded`] with the lock in `dir` (trusted as a host trusts `/`, and
/// owned by this user) and the install lock at `install`, without sudo.
#[cfg(test)]
fn guarded_in(dir: &str, install: &str, attempt: &str, command: &RemoteCommand) -> RemoteCommand {
    let me = rustix::process::geteuid().as_raw();
    let script = crate::hostpath::script_in(dir, me, &format!("{PROOF}{GUARD}"));
    guarded_with(&script, dir, install, attempt, command)
}

fn guarded_with(
    script: &str,
    dir: &str,
    install: &str,
    attempt: &str,
    command: &RemoteCommand,
) -> RemoteCommand {
    let as_root = command.as_str().starts_with("sudo -n ");
    let line = if as_root {
        format!("{}{command}", detach::AS_ROOT)
    } else {
        command.to_string()
    };
    let args = [
        "-c",
        script,
        "deployer-guard",
        dir,
        install,
        attempt,
        &line,
        if as_root { "root" } else { "user" },
    ];
    let wrapped = RemoteCommand::new("sh").args(args).named(command.label());
    if command.is_from_config() {
        wrapped.hiding_config()
    } else {
        wrapped
    }
}

/// Who holds the lock now, when `out` is the answer of a change refused
/// because this attempt's deploy lock was lost ([`guarded`], a detached
/// start): the holder's description, or that nobody does.
pub fn lost(out: &crate::transport::Output) -> Option<String> {
    if out.status != LOST_STATUS {
        return None;
    }
    let line = out.stderr.lines().find_map(|l| l.strip_prefix(LOST))?;
    Some(if line.trim().is_empty() {
        "nobody (it expired: no heartbeat for `lock_expiry`, was deployer paused or cut off? or it was broken with `deployer unlock`)".to_string()
    } else {
        holder_text(line)
    })
}

/// The one line that says a change was refused because the lock was
/// lost, with who holds it now (see [`lost`]).
pub fn lost_message(holder: &str) -> String {
    format!("lock lost: this deploy no longer holds the host's deploy lock, now held by {holder}; nothing was changed on the host")
}

/// What [`unlock_command`] said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// Nobody held the lock.
    Free,
    /// The lock held by this holder (description) was broken.
    Broken(String),
}

/// Read what [`unlock_command`] printed (it exited 0).
pub fn parse_unlock(stdout: &str) -> Result<Unlocked, String> {
    let mut lines = stdout.lines();
    match lines.next().map(str::trim) {
        Some("NONE") => Ok(Unlocked::Free),
        Some(first) if first.starts_with("HELD") => {
            let holder = holder_text(first.trim_start_matches("HELD"));
            if lines.any(|l| l.trim() == "BROKEN") {
                Ok(Unlocked::Broken(holder))
            } else {
                Err(format!("the lock held by {holder} was not broken"))
            }
        }
        other => Err(format!(
            "unexpected answer: {}",
            text::one_line(other.unwrap_or(""))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Holder {
        Holder {
            by: "alice@laptop".into(),
            since: "2026-11-21T07:30:05Z".into(),
            pid: 4242,
            action: "deploy".into(),
            package: "fastpath".into(),
            stage: "prod".into(),
            version: Some("0.81~pr748-191".into()),
            attempt: "20261121T073005Z-4242-00".into(),
            why: Some("incident 42 fix".into()),
        }
    }

    #[test]
    fn holder_text_is_an_argument_not_code() {
        let mut h = alice();
        h.why = Some("now; rm -rf / $(id)".into());
        let c = command(&h, 90);
        assert!(c.as_str().starts_with("sudo -n bash -c "), "{c}");
        assert!(
            c.as_str().contains("now; rm -rf / $(id)"),
            "inside one quoted argument: {c}"
        );
        assert!(
            c.as_str().ends_with(" 90 /run/deployer/install.lock"),
            "{c}"
        );
    }

    /// The lock script names the install lock relative to the lock
    /// directory it checked: the two must stay together.
    #[test]
    fn the_install_lock_lives_in_the_lock_directory() {
        assert_eq!(
            std::path::Path::new(detach::INSTALL_LOCK).parent(),
            Some(std::path::Path::new(LOCK_DIR))
        );
    }

    #[test]
    fn answers_tell_everything_about_the_holder() {
        assert_eq!(parse("LOCKED\n"), Answer::Locked);
        let line = format!("BUSY {}", serde_json::to_string(&alice()).unwrap());
        assert_eq!(
            parse(&line),
            Answer::Busy(
                "alice@laptop since 2026-11-21T07:30:05Z (pid 4242): deploy fastpath 0.81~pr748-191 to prod (attempt 20261121T073005Z-4242-00): incident 42 fix".into()
            )
        );
        assert_eq!(
            parse("BUSY "),
            Answer::Busy("another deployer (holder unknown)".into())
        );
        assert_eq!(
            parse("BUSY bob@b since t2 (pid 7)"),
            Answer::Busy("bob@b since t2 (pid 7)".into())
        );
        assert_eq!(
            parse("INSTALLING /var/lib/deployer/runs/x-install"),
            Answer::Installing("/var/lib/deployer/runs/x-install".into())
        );
        assert_eq!(parse("FAILED 1"), Answer::Failed("FAILED 1".into()));
    }

    #[test]
    fn holder_text_from_a_host_cannot_drive_the_terminal() {
        let mut h = alice();
        h.by = "eve\x1b]0;pwned\x07@box".into();
        let Answer::Busy(shown) = parse(&format!("BUSY {}", serde_json::to_string(&h).unwrap()))
        else {
            panic!("busy")
        };
        assert!(
            !shown.contains('\x1b') && !shown.contains('\x07'),
            "{shown}"
        );
    }

    #[test]
    fn unlock_answers() {
        assert_eq!(parse_unlock("NONE\n"), Ok(Unlocked::Free));
        let held = format!(
            "HELD {}\nBROKEN\n",
            serde_json::to_string(&alice()).unwrap()
        );
        assert!(
            matches!(parse_unlock(&held), Ok(Unlocked::Broken(h)) if h.starts_with("alice@laptop"))
        );
        assert!(parse_unlock("HELD x\n").is_err());
        assert!(parse_unlock("").is_err());
    }

    /// A lock directory of the test's own, and the holder of attempt `id`.
    fn private_dir() -> (tempfile::TempDir, String, String) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap().display().to_string();
        let install = format!("{dir}/install.lock");
        (tmp, dir, install)
    }

    /// The lock in `dir`, taken by [`alice`] through a real shell and
    /// held for as long as the connection is kept.
    fn held_by_alice(dir: &str, install: &str) -> crate::transport::local::LocalConnection {
        use crate::transport::Connection;
        let mut conn = crate::transport::local::LocalConnection::new();
        let first = conn
            .hold(
                &command_in(dir, install, &alice(), 30),
                std::time::Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(parse(&first), Answer::Locked);
        conn
    }

    fn sh(command: &RemoteCommand) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command.as_str())
            .output()
            .unwrap()
    }

    /// A holder paused past `lock_expiry`, or whose lock was broken, must
    /// learn it before changing a host: the check tells its own lock from
    /// a free one and from another attempt's.
    #[test]
    fn check_tells_our_lock_from_a_free_one_and_another() {
        use crate::transport::Connection;
        let (_tmp, dir, install) = private_dir();
        let ours = &alice().attempt;
        let check = |attempt: &str| {
            let out = sh(&check_command_in(&dir, attempt));
            parse_check(&String::from_utf8_lossy(&out.stdout))
        };
        assert_eq!(check(ours), Owner::Free);
        // after a reboot, /run is empty: no lock file at all is free too
        let me = rustix::process::geteuid().as_raw();
        let rebooted = format!("{dir}/rebooted");
        let gone = sh(&check_command_with(
            &crate::hostpath::script_in(&dir, me, CHECK),
            &rebooted,
            ours,
        ));
        assert_eq!(
            parse_check(&String::from_utf8_lossy(&gone.stdout)),
            Owner::Free
        );
        assert_eq!(
            parse_unlock(&String::from_utf8_lossy(
                &sh(&unlock_command_with(
                    &crate::hostpath::script_in(&dir, me, UNLOCK),
                    &rebooted
                ))
                .stdout
            )),
            Ok(Unlocked::Free)
        );
        let mut conn = held_by_alice(&dir, &install);
        assert_eq!(check(ours), Owner::Ours);
        match check("20261121T080000Z-7-ff") {
            Owner::Other(who) => assert!(who.starts_with("alice@laptop"), "{who}"),
            other => panic!("{other:?}"),
        }
        conn.release();
        assert_eq!(check(ours), Owner::Free, "released");
        assert_eq!(
            parse_check("garbage"),
            Owner::Other("unknown (the check said `garbage`)".into())
        );
    }

    /// Regression: `unlock` killed, as root, whatever process `holder.pid`
    /// named; a stale file (its holder killed, the pid reused) or one read
    /// before a new holder wrote its own got an unrelated process ended.
    #[test]
    fn unlock_never_ends_a_process_that_does_not_hold_the_lock() {
        use std::process::{Command, Stdio};
        let (_tmp, dir, _) = private_dir();
        let lock = format!("{dir}/deploy.lock");
        let mut holder = Command::new("flock")
            .args(["-o", &lock, "sleep", "30"])
            .spawn()
            .unwrap();
        let mut bystander = Command::new("sleep")
            .arg("30")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(format!("{dir}/holder.pid"), format!("{}\n", bystander.id())).unwrap();
        // wait until `flock` has the lock
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while sh(&check_command_in(&dir, "x")).stdout.starts_with(b"FREE") {
            assert!(
                std::time::Instant::now() < deadline,
                "flock never took the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = sh(&unlock_command_in(&dir));
        let alive = bystander.try_wait().unwrap().is_none();
        let _ = bystander.kill();
        let _ = holder.kill();
        let _ = bystander.wait();
        let _ = holder.wait();
        assert!(alive, "unlock ended a process that did not hold the lock");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is not the shell holding"), "{stderr}");
    }

    /// `unlock` does end the real lock shell, found by its descriptor 8.
    #[test]
    fn unlock_ends_the_shell_that_holds_the_lock() {
        use crate::transport::Connection;
        let (_tmp, dir, install) = private_dir();
        let mut conn = held_by_alice(&dir, &install);
        let out = sh(&unlock_command_in(&dir));
        assert!(out.status.success(), "{out:?}");
        assert!(
            matches!(parse_unlock(&String::from_utf8_lossy(&out.stdout)), Ok(Unlocked::Broken(h)) if h.starts_with("alice@laptop"))
        );
        assert_eq!(
            parse_check(&String::from_utf8_lossy(
                &sh(&check_command_in(&dir, &alice().attempt)).stdout
            )),
            Owner::Free
        );
        conn.release();
    }

    #[test]
    fn a_lock_command_that_says_nothing_is_refused_with_a_reason() {
        match parse("") {
            Answer::Failed(why) => assert!(why.contains("without a word"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    /// The real thing, on this machine: a second holder is told who has
    /// it; the lock goes when the first holder's stdin closes, and also
    /// when its heartbeats stop for `expiry`; `unlock` breaks it.
    #[test]
    fn lock_protocol_works_with_a_real_shell() {
        use crate::transport::{local::LocalConnection, Connection};
        use std::time::{Duration, Instant};
        if rustix::process::geteuid().as_raw() != 0 {
            crate::test_skip::skip("the lock lives in /run/deployer and needs root");
            return;
        }
        let t = Duration::from_secs(10);
        let mut first = LocalConnection::new();
        let mut second = LocalConnection::new();
        assert_eq!(
            parse(&first.hold(&command(&alice(), 30), t).unwrap()),
            Answer::Locked
        );
        let mut bob = alice();
        bob.by = "bob@desk".into();
        match parse(&second.hold(&command(&bob, 30), t).unwrap()) {
            Answer::Busy(who) => assert!(who.starts_with("alice@laptop"), "{who}"),
            other => panic!("{other:?}"),
        }
        first.release();
        second.release();
        assert_eq!(
            parse(&second.hold(&command(&bob, 30), t).unwrap()),
            Answer::Locked
        );
        second.release();

        // a silent holder: no heartbeat at all, expiry 2 s
        let mut silent = LocalConnection::new();
        let line = silent
            .hold_with(&command(&alice(), 2), t, Duration::from_secs(3600))
            .unwrap();
        assert_eq!(parse(&line), Answer::Locked);
        let started = Instant::now();
        let mut other = LocalConnection::new();
        loop {
            let answer = parse(&other.hold(&command(&bob, 30), t).unwrap());
            if answer == Answer::Locked {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the silent holder's lock did not expire: {answer:?}"
            );
            other.release();
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "not before the expiry"
        );

        // unlock breaks the lock that `other` holds
        let mut breaker = LocalConnection::new();
        let out = crate::transport::run(&mut breaker, &unlock_command(), t).unwrap();
        assert!(out.success(), "{out:?}");
        assert!(
            matches!(parse_unlock(&out.stdout), Ok(Unlocked::Broken(h)) if h.starts_with("bob@desk"))
        );
        let out = crate::transport::run(&mut breaker, &unlock_command(), t).unwrap();
        assert_eq!(parse_unlock(&out.stdout), Ok(Unlocked::Free));
        other.release();
        silent.release();
    }

    /// Issue 17 item 4: a link planted at the lock directory is refused
    /// (named, with its owner) by the lock, its check and unlock, and no
    /// file is created where it points.
    #[test]
    fn a_planted_link_at_the_lock_directory_is_refused() {
        use crate::transport::{local::LocalConnection, Connection};
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().canonicalize().unwrap().display().to_string();
        let me = rustix::process::geteuid().as_raw();
        std::fs::create_dir(format!("{top}/elsewhere")).unwrap();
        std::os::unix::fs::symlink(format!("{top}/elsewhere"), format!("{top}/deployer")).unwrap();
        let dir = format!("{top}/deployer");
        let script = crate::hostpath::script_in(&top, me, SCRIPT);
        let c = command_with(&script, &dir, &format!("{dir}/install.lock"), &alice(), 30);
        let mut conn = LocalConnection::new();
        let first = conn.hold(&c, std::time::Duration::from_secs(10)).unwrap();
        conn.release();
        match parse(&first) {
            Answer::Failed(why) => {
                assert!(why.starts_with("refusing to lock as root: `"), "{why}");
                assert!(why.contains(&format!("{dir}` (owner ")), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let check = check_command_with(&crate::hostpath::script_in(&top, me, CHECK), &dir, "x");
        assert!(
            matches!(parse_check(&String::from_utf8_lossy(&sh(&check).stdout)), Owner::Other(w) if w.contains("refused"))
        );
        let unlock = unlock_command_with(&crate::hostpath::script_in(&top, me, UNLOCK), &dir);
        let out = sh(&unlock);
        assert_eq!(
            out.status.code(),
            Some(crate::hostpath::REFUSED_STATUS),
            "{out:?}"
        );
        assert_eq!(
            std::fs::read_dir(format!("{top}/elsewhere"))
                .unwrap()
                .count(),
            0
        );
    }

    /// Issue 17 item 1: a change under the lock runs only while the lock is
    /// the attempt's, proven by the shell that runs it while it holds the
    /// install lock (so no deploy can take the host until it is over); a
    /// free lock or another attempt's changes nothing and says who.
    #[test]
    fn a_guarded_change_runs_only_under_its_own_lock() {
        use crate::transport::Connection;
        let (tmp, dir, install) = private_dir();
        let marker = tmp.path().join("changed");
        let change = RemoteCommand::new("sh").args([
            "-c",
            "flock -n \"$1\" true && echo install-lock-free > \"$2\" || echo install-lock-held > \"$2\"",
            "x",
            &install,
            &marker.display().to_string(),
        ]);
        let run = |attempt: &str| {
            let out = sh(&guarded_in(&dir, &install, attempt, &change));
            crate::transport::Output {
                status: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                ..Default::default()
            }
        };
        let ours = alice().attempt;
        let free = run(&ours);
        assert!(
            lost(&free).is_some_and(|w| w.starts_with("nobody")),
            "{free:?}"
        );
        assert!(!marker.exists(), "nothing changed without the lock");

        let mut conn = held_by_alice(&dir, &install);
        let other = run("20261121T080000Z-7-ff");
        assert!(
            lost(&other).is_some_and(|w| w.starts_with("alice@laptop")),
            "{other:?}"
        );
        assert!(!marker.exists(), "nothing changed under another's lock");

        let done = run(&ours);
        assert!(done.success() && lost(&done).is_none(), "{done:?}");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "install-lock-held\n",
            "the install lock is held while the change runs"
        );
        conn.release();
        assert!(lost(&run(&ours)).is_some(), "released: lost");
        assert!(lost(&crate::transport::Output::default()).is_none());
    }

    /// A configuration command wrapped in the guard is still named, not
    /// shown, in logs.
    #[test]
    fn a_guarded_configuration_command_stays_hidden_in_logs() {
        let c = guarded(
            "a-1",
            &RemoteCommand::from_config("curl -H token:s3cret x", "restart command"),
        );
        assert!(!c.for_log().contains("s3cret"), "{}", c.for_log());
        assert_eq!(c.label(), "restart command");
        assert!(c.as_str().ends_with(" user"), "runs as the login user: {c}");
        let root = guarded("a-1", &RemoteCommand::new("apt-mark").arg("hold").sudo());
        assert!(
            root.as_str().starts_with("sudo -n sh -c ") && root.as_str().ends_with(" root"),
            "{root}"
        );
    }
}
