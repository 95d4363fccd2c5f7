//! Who is running deployer, and from where: the one operator identity that
//! the history, the deploy lock and freezes record; the local account whose
//! name SSH logs in with by default; and which owners of a configuration
//! file are trusted, and whose directories deployer writes in.
//!
//! Under `sudo` (effective uid 0 and `SUDO_USER` set), the person is
//! `SUDO_USER`, and the identity says that it ran as root. `$USER` and
//! `$LOGNAME` are never read: any process can set them, and sudo may pass
//! the caller's on. Only [`Operator::current`], [`login_name`],
//! [`trusted_owners`], [`own_uids`], [`sudo_uid`] and [`user_name`] look at the process and the password
//! database; the rules themselves ([`identify`], [`trusted`], [`owners`]) are pure.

use std::fmt;

/// The person running deployer, on which machine, and as which account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The person: `SUDO_USER` under sudo, else the name of the real uid in
    /// the password database (its number when it has no entry).
    pub user: String,
    /// This machine's host name.
    pub machine: String,
    /// The account deployer runs as when that is not [`Operator::user`]:
    /// `root` under sudo.
    pub as_user: Option<String>,
}

/// What [`identify`] needs to know about the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Whether the effective uid is 0.
    pub root: bool,
    /// The account name of the real uid.
    pub real_user: String,
    /// The account name of the effective uid.
    pub effective_user: String,
    /// `SUDO_USER`, if set.
    pub sudo_user: Option<String>,
}

impl Operator {
    /// The operator of this process.
    pub fn current() -> Operator {
        let euid = rustix::process::geteuid();
        let process = Process {
            root: euid.is_root(),
            real_user: login_name(),
            effective_user: name_or_number(euid.as_raw()),
            sudo_user: std::env::var("SUDO_USER").ok(),
        };
        identify(&process, host_name())
    }

    /// `alice@laptop`, or `alice@laptop (sudo)` when run through sudo.
    pub fn display(&self) -> String {
        display(&self.user, &self.machine, self.as_user.as_deref())
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// `user@machine`, followed by ` (sudo)` when `as_user` is `root`, or by
/// ` (as NAME)` for another account: how an identity is shown everywhere.
pub fn display(user: &str, machine: &str, as_user: Option<&str>) -> String {
    match as_user {
        None => format!("{user}@{machine}"),
        Some("root") => format!("{user}@{machine} (sudo)"),
        Some(other) => format!("{user}@{machine} (as {other})"),
    }
}

/// The operator of `process` on `machine`.
///
/// `SUDO_USER` is believed only when the effective uid is 0: then the
/// process could write anything anyway, and sudo is what set it. Any other
/// process could set it to anyone's name.
pub fn identify(process: &Process, machine: String) -> Operator {
    let sudo_user = process
        .sudo_user
        .as_deref()
        .filter(|u| process.root && !u.is_empty() && *u != process.effective_user);
    match sudo_user {
        Some(person) => Operator {
            user: person.to_string(),
            machine,
            as_user: Some(process.effective_user.clone()),
        },
        None => Operator {
            user: process.real_user.clone(),
            machine,
            as_user: (process.effective_user != process.real_user)
                .then(|| process.effective_user.clone()),
        },
    }
}

/// The user name OpenSSH logs in with when none is configured: the name of
/// the real uid in the password database (`getpwuid(getuid())`), not
/// `$USER`. Under sudo that is `root`. The uid's number when it has no
/// entry.
pub fn login_name() -> String {
    name_or_number(rustix::process::getuid().as_raw())
}

/// The uids whose files deployer trusts to tell it what to run or where
/// to connect (deployer.ini, ssh_config and what it includes, identity
/// files): root and the effective uid. Under sudo that is root alone: a
/// file the person behind sudo can write would let them run anything as
/// root, when sudo may have allowed them only `deployer`.
pub fn trusted_owners() -> Vec<u32> {
    trusted(rustix::process::geteuid().as_raw())
}

/// The pure rule of [`trusted_owners`].
pub fn trusted(euid: u32) -> Vec<u32> {
    let mut uids = vec![0];
    if euid != 0 {
        uids.push(euid);
    }
    uids
}

/// The uids that count as "you" for the directories deployer writes its
/// own files in: root, the effective uid, and under sudo (effective uid 0)
/// the uid in `SUDO_UID`, the person's own directories.
pub fn own_uids() -> Vec<u32> {
    owners(
        rustix::process::geteuid().as_raw(),
        sudo_uid_var().as_deref(),
    )
}

/// The uid of the person behind sudo, when deployer runs as root through
/// sudo (effective uid 0, `SUDO_UID` set to another uid).
pub fn sudo_uid() -> Option<u32> {
    let euid = rustix::process::geteuid().as_raw();
    owners(euid, sudo_uid_var().as_deref())
        .get(1)
        .copied()
        .filter(|_| euid == 0)
}

fn sudo_uid_var() -> Option<String> {
    std::env::var("SUDO_UID").ok()
}

/// The pure rule of [`own_uids`].
pub fn owners(euid: u32, sudo_uid: Option<&str>) -> Vec<u32> {
    let mut uids = vec![0];
    if euid != 0 {
        uids.push(euid);
    } else if let Some(uid) = sudo_uid.and_then(|s| s.parse::<u32>().ok()) {
        if uid != 0 {
            uids.push(uid);
        }
    }
    uids
}

/// Who besides a file's owner can write it, by its permission bits
/// `mode`, as a clause for messages ("its group can write to it"), or
/// `None` when nobody else can. The one wording of that fact for the
/// configuration and for the directories deployer writes in.
pub fn others_can_write(mode: u32) -> Option<&'static str> {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("its group and every other user can write to it"),
        (true, false) => Some("its group can write to it"),
        (false, true) => Some("every other user can write to it"),
        (false, false) => None,
    }
}

/// The name of `uid` in the password database, if it has one (asked
/// through [`crate::sys`], the one owner of those lookups).
pub use crate::sys::user_name;

fn name_or_number(uid: u32) -> String {
    user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// This machine's host name (`uname -n`).
pub fn host_name() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if name.is_empty() {
        "unknown".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(root: bool, real: &str, effective: &str, sudo_user: Option<&str>) -> Process {
        Process {
            root,
            real_user: real.to_string(),
            effective_user: effective.to_string(),
            sudo_user: sudo_user.map(str::to_string),
        }
    }

    #[test]
    fn who_is_recorded() {
        // (process, user, as_user, display)
        let cases = [
            (
                process(false, "alice", "alice", None),
                "alice",
                None,
                "alice@laptop",
            ),
            // `sudo deployer`: the person is SUDO_USER, running as root.
            (
                process(true, "root", "root", Some("alice")),
                "alice",
                Some("root"),
                "alice@laptop (sudo)",
            ),
            // A root login shell: nobody to name but root.
            (
                process(true, "root", "root", None),
                "root",
                None,
                "root@laptop",
            ),
            (
                process(true, "root", "root", Some("")),
                "root",
                None,
                "root@laptop",
            ),
            // `sudo -s` from root, then sudo again: SUDO_USER is root itself.
            (
                process(true, "root", "root", Some("root")),
                "root",
                None,
                "root@laptop",
            ),
            // Anyone can set SUDO_USER; without root it proves nothing.
            (
                process(false, "mallory", "mallory", Some("alice")),
                "mallory",
                None,
                "mallory@laptop",
            ),
            // `sudo -u deploy deployer`: the account that runs is deploy.
            (
                process(false, "deploy", "deploy", Some("alice")),
                "deploy",
                None,
                "deploy@laptop",
            ),
            // A set-uid run: real and effective accounts differ.
            (
                process(false, "alice", "deploy", None),
                "alice",
                Some("deploy"),
                "alice@laptop (as deploy)",
            ),
        ];
        for (p, user, as_user, shown) in cases {
            let op = identify(&p, "laptop".to_string());
            assert_eq!(op.user, user, "{p:?}");
            assert_eq!(op.machine, "laptop");
            assert_eq!(op.as_user.as_deref(), as_user, "{p:?}");
            assert_eq!(op.display(), shown, "{p:?}");
            assert_eq!(op.to_string(), shown, "{p:?}");
        }
    }

    #[test]
    fn under_sudo_only_roots_files_are_trusted() {
        assert_eq!(trusted(1000), [0, 1000]);
        assert_eq!(trusted(0), [0]);
    }

    #[test]
    fn own_uids_rule() {
        let cases: [(u32, Option<&str>, &[u32]); 6] = [
            (1000, None, &[0, 1000]),
            // Only root's word on SUDO_UID counts.
            (1000, Some("1001"), &[0, 1000]),
            (0, None, &[0]),
            (0, Some("1000"), &[0, 1000]),
            (0, Some("0"), &[0]),
            (0, Some("alice"), &[0]),
        ];
        for (euid, sudo_uid, want) in cases {
            assert_eq!(owners(euid, sudo_uid), want, "{euid} {sudo_uid:?}");
        }
    }

    #[test]
    fn this_process_has_a_name_and_a_machine() {
        let op = Operator::current();
        assert!(!op.user.is_empty());
        assert!(!op.machine.is_empty());
        assert!(!login_name().is_empty());
        assert_eq!(user_name(0).as_deref(), Some("root"));
        let real = rustix::process::getuid().as_raw();
        assert_eq!(login_name(), name_or_number(real));
        assert!(trusted_owners().contains(&0));
        assert!(own_uids().contains(&0));
    }

    #[test]
    fn a_uid_without_an_account_has_no_name() {
        assert_eq!(user_name(3_999_999_999), None);
        assert_eq!(name_or_number(3_999_999_999), "3999999999");
    }
}
