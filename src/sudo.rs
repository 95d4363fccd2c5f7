//! The sudo probe: one command that asks a host whether its login user may
//! run commands as root without a password, the reading of sudo's answer
//! into a class of fault, and the fix each class needs. `check`, deploys,
//! freezes, unlocks and `refresh-badges` all ask through [`probe`], so
//! that they agree and give the same advice.
//!
//! The probe runs in the C locale, because sudo's words are read here and
//! a host's session may speak another language (pam_env's
//! `/etc/default/locale`); `LANGUAGE` needs no clearing, gettext ignores
//! it in `C`. It is a plain shell line, not a `sh -c` of its own, so that
//! the `local` transport run by root, which makes `sudo -n` a shell
//! function that just runs the command, answers for itself: a root shell
//! without sudo works.
//!
//! When `sudo -n true` fails, `sudo -n -v` tells "not in sudoers" (`Sorry,
//! user U may not run sudo on H.`) from "a password is required", which
//! `sudo -n true` says for both (sudo 1.9.13 on the testbed).
//!
//! This module reads and words answers; it never decides whether to go
//! on: its callers refuse.

use std::time::Duration;

use crate::command::RemoteCommand;
use crate::error::{ExitStatus, Fatal, HostError};
use crate::fleet::{Answer, Fleet, Member};
use crate::transport::{Output, TargetKind};

/// The probe's marker, first on its line (the fake transport knows it by
/// this).
pub const MARKER: &str = "deployer-sudo-probe";

/// Prints `ok`, `missing`, or `failed` followed by what `sudo -n true`
/// said, a `#validate` line, and what `sudo -n -v` said. Always exits 0
/// when the shell runs it.
const SCRIPT: &str = ": deployer-sudo-probe; LC_ALL=C; export LC_ALL; \
if ! command -v sudo >/dev/null 2>&1; then echo missing; \
elif said=$(sudo -n true 2>&1); then echo ok; \
else echo failed; printf '%s\\n' \"$said\"; echo '#validate'; sudo -n -v 2>&1; fi; true";

/// The probe, as a command for any transport.
pub fn probe() -> RemoteCommand {
    RemoteCommand::trusted(SCRIPT, "sudo -n true")
}

/// What sudo said, by the fix it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `sudo -n true` works.
    Works,
    /// sudo wants a password (`sudo: a password is required`), also when
    /// the user may run some commands without one but not all.
    Password,
    /// `Defaults requiretty`: `sudo: sorry, you must have a tty to run
    /// sudo`, whatever NOPASSWD says.
    NoTty,
    /// The user is not in sudoers, or may not run this command; sudo's
    /// words (one safe line).
    NotAllowed(String),
    /// There is no `sudo` in the login user's PATH.
    Missing,
    /// Anything else; what was said (one safe line).
    Other(String),
}

/// Read the probe's output.
pub fn read(out: &Output) -> Verdict {
    let mut lines = out.stdout.lines();
    let first = lines.next().unwrap_or("").trim();
    match first {
        "ok" if out.success() => return Verdict::Works,
        "missing" if out.success() => return Verdict::Missing,
        "failed" if out.success() => {}
        _ => return Verdict::Other(crate::transport::failure(out)),
    }
    let rest: Vec<&str> = lines.collect();
    let split = rest.iter().position(|l| *l == "#validate");
    let (said, validate) = match split {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..], &[][..]),
    };
    classify(&said.join("\n"), &validate.join("\n"))
}

/// Classify what `sudo -n true` said (`said`) and, after it failed, what
/// `sudo -n -v` said (`validate`), both in the C locale.
pub fn classify(said: &str, validate: &str) -> Verdict {
    let shown = |s: &str| crate::text::clipped_line(s.trim(), crate::text::REMOTE_TEXT_MAX);
    let both = format!("{said}\n{validate}");
    if said.contains("you must have a tty to run sudo") {
        return Verdict::NoTty;
    }
    if let Some(line) = both.lines().find(|l| {
        l.contains("may not run sudo on")
            || l.contains("is not in the sudoers file")
            || l.contains("is not allowed to execute")
    }) {
        return Verdict::NotAllowed(shown(line));
    }
    if crate::transport::sudo_wants_password(said) {
        return Verdict::Password;
    }
    if said.trim().is_empty() {
        return Verdict::Other("`sudo -n true` failed without a message".to_string());
    }
    Verdict::Other(shown(said))
}

/// The NOPASSWD line that lets `user` run everything deployer needs.
fn nopasswd(user: &str) -> String {
    format!(
        "a line `{user} ALL=(ALL) NOPASSWD: ALL` in a file of /etc/sudoers.d/ (`visudo -f \
         /etc/sudoers.d/{user}`)"
    )
}

impl Verdict {
    /// Whether sudo works.
    pub fn works(&self) -> bool {
        *self == Verdict::Works
    }

    /// What is wrong, in one line, for `user`; `None` when sudo works.
    pub fn problem(&self, user: &str) -> Option<String> {
        Some(match self {
            Verdict::Works => return None,
            Verdict::Password => HostError::SudoPassword {
                user: user.to_string(),
            }
            .to_string(),
            Verdict::NoTty => "sudo on the host wants a terminal (`Defaults requiretty`): it said \
                 `sorry, you must have a tty to run sudo`, and deployer never has one"
                .to_string(),
            Verdict::NotAllowed(said) => {
                format!("`{user}` may not run commands as root through sudo: sudo said `{said}`")
            }
            Verdict::Missing => "`sudo` is not installed (not in the login user's PATH)".into(),
            Verdict::Other(said) => format!("`sudo -n true` failed: {said}"),
        })
    }

    /// The fix, for a `note:` line, naming `user` and `host`; `None` when
    /// sudo works.
    pub fn fix(&self, user: &str, host: &str) -> Option<String> {
        Some(match self {
            Verdict::Works => return None,
            Verdict::Password => format!(
                "allow `{user}` to run commands as root without a password on `{host}`: {}",
                nopasswd(user)
            ),
            Verdict::NoTty => format!(
                "exempt `{user}` from `requiretty` on `{host}`: a line `Defaults:{user} \
                 !requiretty` in a file of /etc/sudoers.d/ (`visudo -f /etc/sudoers.d/{user}`); \
                 a NOPASSWD line alone does not help"
            ),
            Verdict::NotAllowed(_) => format!(
                "give `{user}` the right to run every command as root on `{host}`: {}",
                nopasswd(user)
            ),
            Verdict::Missing => format!(
                "install sudo on `{host}` as root (`apt-get install sudo`), then allow `{user}`: {}",
                nopasswd(user)
            ),
            Verdict::Other(_) => format!(
                "run `sudo -n true` on `{host}` as `{user}` to see why; deployer needs \
                 passwordless sudo there: {}",
                nopasswd(user)
            ),
        })
    }
}

/// The user sudo is asked for on `member`: the login user, or on the
/// `local` transport the user running deployer.
pub fn user_of(member: &Member) -> String {
    match member.target().kind {
        TargetKind::Local => crate::operator::login_name(),
        TargetKind::Ssh(_) => member.login_user(),
    }
}

/// One host's answer to the probe: the user asked for, and the verdict
/// (or why the host could not answer).
pub type HostAnswer = (String, Result<Verdict, HostError>);

/// Probe `member`.
pub fn ask(member: &mut Member, timeout: Duration) -> HostAnswer {
    let user = user_of(member);
    (user, member.run(&probe(), timeout).map(|out| read(&out)))
}

/// Probe every host of `stage`, all at once.
pub fn ask_stage(fleet: &mut Fleet, stage: &str, timeout: Duration) -> Vec<Answer<HostAnswer>> {
    fleet.on_stage(stage, |m| ask(m, timeout))
}

/// The notes of a refusal for the hosts where sudo does not work: per
/// host, `HOST: problem` then the fix. A host that could not answer is
/// named with its error when `unreachable` is true, else left out (for
/// callers that report it elsewhere).
pub fn refusal_notes(answers: &[Answer<HostAnswer>], unreachable: bool) -> Vec<String> {
    let mut notes = Vec::new();
    for (host, (user, answer)) in answers {
        match answer {
            Ok(verdict) => {
                if let (Some(problem), Some(fix)) = (verdict.problem(user), verdict.fix(user, host))
                {
                    notes.push(format!("{host}: {problem}"));
                    notes.push(fix);
                }
            }
            Err(e) if unreachable => notes.push(format!("{host}: {e}")),
            Err(_) => {}
        }
    }
    notes
}

/// How many hosts of `answers` answered that sudo does not work (hosts
/// that could not answer are not counted).
pub fn failing(answers: &[Answer<HostAnswer>]) -> usize {
    answers
        .iter()
        .filter(|(_, (_, a))| a.as_ref().is_ok_and(|v| !v.works()))
        .count()
}

/// The refusal of a command (`what`, e.g. `freeze`) on `stage` when sudo
/// does not work on some host that answered (exit status 6), with each
/// host's fault and fix; `None` when it works wherever it was asked.
/// Hosts that did not answer are left to the caller, which reports them
/// with the rest of its work.
pub fn refusal(what: &str, stage: &str, answers: &[Answer<HostAnswer>]) -> Option<Fatal> {
    let count = failing(answers);
    if count == 0 {
        return None;
    }
    let mut f = Fatal::usage(format!(
        "cannot {what} `{stage}`: sudo does not work without a password on {count} host(s)"
    ))
    .status(ExitStatus::Refused);
    f.notes = refusal_notes(answers, false);
    f.notes.push("no host was changed".to_string());
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(status: i32, stdout: &str) -> Output {
        Output {
            status,
            stdout: stdout.into(),
            stderr: String::new(),
            stdout_dropped: 0,
            stderr_dropped: 0,
        }
    }

    /// sudo 1.9.13's words on the testbed, for each sudoers set-up
    /// (`sudo -n true`, then `sudo -n -v`).
    #[test]
    fn sudo_answers_are_classified() {
        let cases = [
            ("ok\n", Verdict::Works),
            ("missing\n", Verdict::Missing),
            (
                // `deployer ALL=(ALL) ALL`
                "failed\nsudo: a password is required\n#validate\nsudo: a password is required\n",
                Verdict::Password,
            ),
            (
                // NOPASSWD for apt-get only: `true` wants a password
                "failed\nsudo: a password is required\n#validate\n",
                Verdict::Password,
            ),
            (
                // `Defaults requiretty`, with or without NOPASSWD
                "failed\nsudo: sorry, you must have a tty to run sudo\n#validate\nsudo: sorry, you must have a tty to run sudo\n",
                Verdict::NoTty,
            ),
            (
                // no sudoers entry at all
                "failed\nsudo: a password is required\n#validate\nSorry, user deployer may not run sudo on test-1.\n",
                Verdict::NotAllowed("Sorry, user deployer may not run sudo on test-1.".into()),
            ),
            (
                "failed\nsudo: unable to resolve host x\x1b[2J\n#validate\n",
                Verdict::Other("sudo: unable to resolve host x\\x1b[2J".into()),
            ),
        ];
        for (stdout, want) in cases {
            assert_eq!(read(&output(0, stdout)), want, "{stdout:?}");
        }
        // the shell could not run the probe at all
        assert!(matches!(read(&output(2, "")), Verdict::Other(_)));
        assert!(matches!(read(&output(0, "what\n")), Verdict::Other(_)));
    }

    #[test]
    fn each_fault_has_its_own_fix() {
        let verdicts = [
            Verdict::Password,
            Verdict::NoTty,
            Verdict::NotAllowed("Sorry".into()),
            Verdict::Missing,
            Verdict::Other("odd".into()),
        ];
        let fixes: Vec<String> = verdicts
            .iter()
            .map(|v| v.fix("deployer", "prod-1").unwrap())
            .collect();
        for (i, f) in fixes.iter().enumerate() {
            assert!(f.contains("`prod-1`"), "{f}");
            assert!(
                fixes.iter().skip(i + 1).all(|g| g != f),
                "two faults share a fix: {f}"
            );
        }
        assert!(
            fixes[1].contains("Defaults:deployer !requiretty"),
            "{}",
            fixes[1]
        );
        assert!(!fixes[1].starts_with("allow"), "{}", fixes[1]);
        assert!(fixes[3].contains("apt-get install sudo"));
        assert!(Verdict::NoTty
            .problem("deployer")
            .unwrap()
            .contains("requiretty"));
        assert_eq!(Verdict::Works.problem("deployer"), None);
        assert_eq!(Verdict::Works.fix("deployer", "h"), None);
    }

    #[test]
    fn the_probe_speaks_c_and_needs_no_nested_shell() {
        let line = probe();
        assert!(line
            .as_str()
            .starts_with(": deployer-sudo-probe; LC_ALL=C; export LC_ALL;"));
        // `sudo` is called by the line itself, where a `local` root shell's
        // function can stand in for it
        assert!(!line.as_str().contains("sh -c"));
        assert!(!line.as_str().contains("env LC_ALL=C sudo"));
    }

    /// The probe, run here by a real shell with a `sudo` that is a script
    /// printing each answer, and a root shell's stand-in function.
    #[test]
    fn the_probe_runs_in_a_real_shell() {
        let dir = std::env::temp_dir().join(format!("deployer-sudo-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("sudo");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$LC_ALL\" = C ] || echo \"locale $LC_ALL\" >&2\ncase \"$2\" in\n  -v) echo 'Sorry, user deployer may not run sudo on h.' >&2; exit 1;;\n  *) echo 'sudo: a password is required' >&2; exit 1;;\nesac\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = |prefix: &str, path: &str| {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("{prefix}{}", probe().as_str()))
                .env("PATH", path)
                .env("LC_ALL", "de_DE.UTF-8")
                .output()
                .unwrap();
            read(&output(
                out.status.code().unwrap_or(-1),
                &String::from_utf8_lossy(&out.stdout),
            ))
        };
        let with_fake = format!("{}:/usr/bin:/bin", dir.display());
        assert_eq!(
            run("", &with_fake),
            Verdict::NotAllowed("Sorry, user deployer may not run sudo on h.".into())
        );
        // no sudo anywhere on the PATH (the shell's builtins still work)
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert_eq!(run("", &empty.display().to_string()), Verdict::Missing);
        // the `local` transport as root: `sudo -n` is a function
        assert_eq!(
            run(
                "sudo() { [ \"$1\" = -n ] && shift; \"$@\"; }; ",
                &empty.display().to_string()
            ),
            Verdict::Works
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
