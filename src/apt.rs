//! What apt says, and the apt commands we send.
//!
//! This module owns the apt command lines (update, policy, install, remove,
//! simulation) and the reading of apt's output: `apt-cache policy`, the
//! `apt-get -s` summary, and hints for the common failures. It is pure: it
//! builds [`RemoteCommand`]s and parses text, and never runs anything.
//! Every command asks for `LANG=C`, because the parsers here only know
//! apt's untranslated wording.

use crate::command::RemoteCommand;
use crate::package::{split_arch, PackageName};
use crate::version::Version;

/// What `apt-cache policy` says about one package on one host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// The installed version, `None` when not installed.
    pub installed: Option<Version>,
    /// The version `apt-get install PKG` would pick, `None` when there is
    /// none.
    pub candidate: Option<Version>,
    /// Versions some repository offers (not just the local dpkg status),
    /// highest first, without duplicates.
    pub available: Vec<Version>,
}

/// Parse the output of `LANG=C apt-cache policy PKG` for `package`.
///
/// apt prints nothing at all for a package it does not know; that is a
/// [`Policy`] with nothing installed and nothing available. The header is
/// `NAME:` or, for a foreign architecture, `NAME:ARCH:`; when several
/// sections match, the native one (no architecture) wins, and other
/// packages' sections are skipped. `W:` and `N:` lines are ignored and an
/// `E:` line is the error.
///
/// In the version table, a version line has a five-column prefix (five
/// spaces, or ` *** ` for the installed one), and its sources are indented
/// deeper. The indentation decides, never the look of the token: a version
/// can be `500`, just like a priority.
pub fn parse_policy(package: &PackageName, text: &str) -> Result<Policy, String> {
    let mut sections: Vec<Section> = Vec::new();
    let mut others: Vec<&str> = Vec::new();
    // Index into `sections` of the section being read; `None` inside
    // another package's section.
    let mut current: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') {
            match current {
                Some(s) => sections[s].lines.push((number, line)),
                None if !others.is_empty() => {}
                None => {
                    return Err(format!(
                        "line {number}: `{}` comes before any package header",
                        line.trim()
                    ))
                }
            }
            continue;
        }
        if let Some(message) = line.strip_prefix("E: ") {
            return Err(message.to_string());
        }
        if line.starts_with("W: ") || line.starts_with("N: ") {
            continue;
        }
        let Some(header) = line.strip_suffix(':') else {
            return Err(format!(
                "line {number}: expected a package header like `{package}:`, found `{line}`"
            ));
        };
        let (name, arch) = split_arch(header);
        if name == package.as_str() {
            sections.push(Section {
                arch,
                lines: Vec::new(),
            });
            current = Some(sections.len() - 1);
        } else {
            others.push(header);
            current = None;
        }
    }
    if sections.is_empty() && !others.is_empty() {
        return Err(format!(
            "apt-cache printed no policy for `{package}`, only for {}",
            others
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let chosen = sections
        .iter()
        .find(|section| section.arch.is_none())
        .or_else(|| sections.first());
    match chosen {
        None => Ok(Policy::default()),
        Some(section) => parse_section(&section.lines),
    }
}

/// One package's section of `apt-cache policy` output.
struct Section<'a> {
    /// The architecture qualifier of the header, if any.
    arch: Option<&'a str>,
    /// The lines after the header, with their 1-based numbers.
    lines: Vec<(usize, &'a str)>,
}

/// One package section of `apt-cache policy`, header excluded.
fn parse_section(lines: &[(usize, &str)]) -> Result<Policy, String> {
    let mut installed = None;
    let mut candidate = None;
    let mut in_table = false;
    // (version, offered by a repository)
    let mut table: Vec<(Version, bool)> = Vec::new();

    for &(number, line) in lines {
        let at = |what: String| format!("line {number}: {what}");
        if !in_table {
            let field = line.trim();
            if field == "Version table:" {
                in_table = true;
            } else if let Some(v) = field.strip_prefix("Installed:") {
                installed = Some(optional_version(v).map_err(at)?);
            } else if let Some(v) = field.strip_prefix("Candidate:") {
                candidate = Some(optional_version(v).map_err(at)?);
            } else if field.starts_with("Package pin:") {
                // The pinned version is also in the table; nothing to keep.
            } else {
                return Err(at(format!("unexpected `{field}` before the version table")));
            }
            continue;
        }
        let prefix = line.get(..5).unwrap_or("");
        let rest = line.get(5..).unwrap_or("");
        let is_version_line = (prefix == "     " || prefix == " *** ") && !rest.starts_with(' ');
        if is_version_line {
            let text = rest.split_whitespace().next().unwrap_or("");
            let version: Version = text.parse().map_err(|e| at(format!("{e}")))?;
            table.push((version, false));
        } else if prefix == "     " {
            let Some((version, offered)) = table.last_mut() else {
                return Err(at(format!("source `{}` before any version", line.trim())));
            };
            let mut words = line.split_whitespace();
            let priority = words.next().unwrap_or("");
            if priority.parse::<i32>().is_err() {
                return Err(at(format!(
                    "expected `PRIORITY SOURCE` for {version}, found `{}`",
                    line.trim()
                )));
            }
            let source: Vec<&str> = words.collect();
            if source != ["/var/lib/dpkg/status"] {
                *offered = true;
            }
        } else {
            return Err(at(format!(
                "cannot read `{}` in the version table",
                line.trim()
            )));
        }
    }

    let (Some(installed), Some(candidate)) = (installed, candidate) else {
        return Err("the policy lacks its `Installed:` or `Candidate:` line".to_string());
    };
    let mut available: Vec<Version> = table
        .into_iter()
        .filter(|(_, o)| *o)
        .map(|(v, _)| v)
        .collect();
    available.sort_by(|a, b| b.cmp(a));
    available.dedup();
    Ok(Policy {
        installed,
        candidate,
        available,
    })
}

/// `(none)` is `None`; anything else must be a version.
fn optional_version(text: &str) -> Result<Option<Version>, String> {
    match text.trim() {
        "(none)" => Ok(None),
        v => v.parse().map(Some).map_err(|e| format!("{e}")),
    }
}

/// Wraps an apt-get line for unattended use as root: English output, no
/// debconf questions, and `sudo -n` so that a password prompt is an error.
fn as_root(cmd: RemoteCommand) -> RemoteCommand {
    cmd.env("LANG", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .sudo()
}

fn lock_timeout(secs: u64) -> String {
    format!("DPkg::Lock::Timeout={secs}")
}

/// `apt-get update`, as root: refresh the package lists.
pub fn update() -> RemoteCommand {
    as_root(RemoteCommand::new("apt-get").args(["update", "-q"]))
}

/// `apt-cache policy` for one package, in English (see [`parse_policy`]).
/// Needs no root.
pub fn policy(package: &PackageName) -> RemoteCommand {
    // `--` is accepted by apt-cache (checked with apt 2.6), although a
    // PackageName can never start with `-` anyway.
    RemoteCommand::new("apt-cache")
        .args(["policy", "--"])
        .arg(package.as_str())
        .env("LANG", "C")
}

/// Install exactly `version` of `package`.
///
/// The real run is `apt-get install -y` as root, keeping locally changed
/// configuration files (`--force-confdef --force-confold`) and waiting up to
/// `lock_timeout_secs` for the dpkg lock; `downgrade` adds
/// `--allow-downgrades`. With `simulate`, the same line runs as
/// `apt-get -s` without sudo and without `-y`: a simulation needs no root,
/// takes no lock and changes nothing (see [`simulation_summary`]).
pub fn install(
    package: &PackageName,
    version: &Version,
    downgrade: bool,
    lock_timeout_secs: u64,
    simulate: bool,
) -> RemoteCommand {
    let mut cmd = RemoteCommand::new("apt-get");
    cmd = if simulate {
        cmd.args(["-s", "install"])
    } else {
        cmd.args(["install", "-y"])
    };
    cmd = cmd.args([
        "-q",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        &lock_timeout(lock_timeout_secs),
    ]);
    if downgrade {
        cmd = cmd.arg("--allow-downgrades");
    }
    cmd = cmd.arg(format!("{package}={version}"));
    if simulate {
        cmd.env("LANG", "C")
    } else {
        as_root(cmd)
    }
}

/// Remove `package` (configuration files stay), as root: how a rollback
/// returns a host to "not installed".
pub fn remove(package: &PackageName, lock_timeout_secs: u64) -> RemoteCommand {
    as_root(
        RemoteCommand::new("apt-get")
            .args(["remove", "-y", "-q", "-o", &lock_timeout(lock_timeout_secs)])
            .arg(package.as_str()),
    )
}

/// What `apt-get -s` would do: its `Inst`, `Remv`, `Purg` and `Conf` lines,
/// trimmed, in order.
pub fn simulation_summary(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            ["Inst ", "Remv ", "Purg ", "Conf "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

/// A one-line explanation of a common apt or dpkg failure found in
/// `output` (stdout and stderr together), or `None` when none is
/// recognised. When several apply, the root cause wins (sudo, then locks,
/// then an interrupted dpkg, then missing packages, then maintainer
/// scripts).
pub fn failure_hint(output: &str) -> Option<String> {
    let checks: [fn(&str) -> Option<String>; 6] = [
        sudo_hint,
        lock_hint,
        interrupted_hint,
        version_not_found_hint,
        unknown_package_hint,
        script_hint,
    ];
    checks.iter().find_map(|check| check(output))
}

fn sudo_hint(output: &str) -> Option<String> {
    if output.contains("sudo: a password is required")
        || output.contains("sudo: a terminal is required")
    {
        return Some(
            "sudo wants a password on this host; allow the deploy user to run apt-get \
             without one (NOPASSWD in sudoers)"
                .to_string(),
        );
    }
    if output.contains("is not in the sudoers file") || output.contains("is not allowed to execute")
    {
        return Some("the deploy user may not run apt-get through sudo on this host".to_string());
    }
    None
}

fn lock_hint(output: &str) -> Option<String> {
    // apt 2.x: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held
    // by process 1234 (apt-get)"; older: "... lock-frontend - open (11: ...)".
    let (lock, after) = match output.split_once("Could not get lock ") {
        Some((_, after)) => {
            let end = after
                .find(|c: char| c.is_whitespace())
                .unwrap_or(after.len());
            (after[..end].trim_end_matches('.'), after)
        }
        None if output.contains("Unable to acquire the dpkg frontend lock") => {
            ("/var/lib/dpkg/lock-frontend", "")
        }
        None => return None,
    };
    let which = if lock.starts_with("/var/lib/dpkg/") {
        "the dpkg lock".to_string()
    } else {
        format!("the apt lock `{lock}`")
    };
    let first_line = after.lines().next().unwrap_or("");
    let holder = first_line.split_once("held by process ").map(|(_, rest)| {
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let name = rest
            .split_once('(')
            .and_then(|(_, n)| n.split_once(')'))
            .map(|(n, _)| n);
        match name {
            Some(name) => format!(" (pid {pid}, {name})"),
            None => format!(" (pid {pid})"),
        }
    });
    Some(format!(
        "{which} is held by another process{}; wait for it to finish, or raise the lock timeout",
        holder.unwrap_or_default()
    ))
}

fn interrupted_hint(output: &str) -> Option<String> {
    output.contains("dpkg was interrupted").then(|| {
        "an earlier dpkg run was interrupted; run `sudo dpkg --configure -a` on the host, then retry".to_string()
    })
}

fn version_not_found_hint(output: &str) -> Option<String> {
    // E: Version '0.81~pr748-191' for 'fastpath' was not found
    let line = output
        .lines()
        .find(|l| l.contains("E: Version '") && l.contains("was not found"))?;
    let mut quoted = line.split('\'').skip(1).step_by(2);
    let version = quoted.next()?;
    let package = quoted.next()?;
    Some(format!(
        "version {version} of `{package}` is not in this host's package lists \
         (is the repository configured, and was `apt-get update` run?)"
    ))
}

fn unknown_package_hint(output: &str) -> Option<String> {
    // E: Unable to locate package fastpath
    let (_, rest) = output.split_once("E: Unable to locate package ")?;
    let package = rest.split_whitespace().next().unwrap_or("");
    Some(format!(
        "apt does not know `{package}` on this host (no configured repository offers it, \
         or the package lists are stale)"
    ))
}

fn script_hint(output: &str) -> Option<String> {
    // dpkg 1.21: "installed fastpath package post-installation script
    // subprocess returned error exit status 1"; older dpkg said
    // "subprocess installed post-installation script returned error exit
    // status 1".
    const SCRIPTS: [(&str, &str); 4] = [
        ("post-installation script", "postinst"),
        ("pre-installation script", "preinst"),
        ("pre-removal script", "prerm"),
        ("post-removal script", "postrm"),
    ];
    output.lines().find_map(|line| {
        let (_, name) = SCRIPTS.iter().find(|(phrase, _)| line.contains(phrase))?;
        let (_, status) = line.split_once("returned error exit status ")?;
        let status: String = status.chars().take_while(char::is_ascii_digit).collect();
        Some(format!(
            "the package's {name} failed (exit status {status})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PackageName {
        s.parse().unwrap()
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn versions(list: &[&str]) -> Vec<Version> {
        list.iter().map(|s| v(s)).collect()
    }

    fn fixture(file: &str) -> String {
        let path = format!("{}/tests/data/apt/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn policy_fixtures() {
        /// (fixture, package, installed, candidate, available)
        type Case = (
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            &'static [&'static str],
        );
        let cases: [Case; 8] = [
            (
                "policy-testbed.txt",
                "fastpath",
                Some("0.77~pr705-119"),
                Some("0.81~pr748-191"),
                &["0.81~pr748-191", "0.77~pr705-119"],
            ),
            // Real output from Debian 12: the installed version is only in
            // the dpkg status, so it cannot be reinstalled.
            (
                "policy-bash-bookworm.txt",
                "bash",
                Some("5.2.15-2+b8"),
                Some("5.2.15-2+b13"),
                &["5.2.15-2+b13"],
            ),
            (
                "policy-dpkg-bookworm.txt",
                "dpkg",
                Some("1.21.23"),
                Some("1.21.23"),
                &["1.21.23"],
            ),
            (
                "policy-apt-bookworm.txt",
                "apt",
                Some("2.6.1"),
                Some("2.6.2"),
                &["2.6.2", "2.6.1"],
            ),
            // The candidate is the lower-looking one: a pin, or another
            // repository's priority; `available` is still ordered by dpkg.
            (
                "policy-epoch.txt",
                "fastpath",
                None,
                Some("1:1.0-1"),
                &["1:1.0-1", "2.0-1"],
            ),
            // Versions that look like priorities, a negative priority, a pin.
            (
                "policy-pinned.txt",
                "fastpath",
                Some("500"),
                Some("500"),
                &["501", "500", "499"],
            ),
            (
                "policy-multiarch.txt",
                "multilib",
                Some("1.2-1"),
                Some("1.3-1"),
                &["1.3-1"],
            ),
            ("policy-unknown.txt", "fastpath", None, None, &[]),
        ];
        for (file, package, installed, candidate, available) in cases {
            let policy = parse_policy(&name(package), &fixture(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let want = Policy {
                installed: installed.map(v),
                candidate: candidate.map(v),
                available: versions(available),
            };
            assert_eq!(policy, want, "{file}");
            // Version equality is dpkg's; the text must survive too.
            let shown: Vec<String> = policy.available.iter().map(ToString::to_string).collect();
            assert_eq!(shown, available, "{file}");
        }
    }

    #[test]
    fn native_section_wins_over_a_foreign_architecture() {
        let text = "\
multilib:i386:
  Installed: (none)
  Candidate: 1.0-1
  Version table:
     1.0-1 500
        500 http://deb.example.org/debian bookworm/main i386 Packages
multilib:
  Installed: 2.0-1
  Candidate: 2.0-1
  Version table:
 *** 2.0-1 500
        500 http://deb.example.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
";
        let policy = parse_policy(&name("multilib"), text).unwrap();
        assert_eq!(policy.installed, Some(v("2.0-1")));
        assert_eq!(policy.available, versions(&["2.0-1"]));
    }

    #[test]
    fn other_packages_sections_are_skipped() {
        let text = format!(
            "{}{}",
            fixture("policy-testbed.txt"),
            fixture("policy-bash-bookworm.txt")
        );
        let policy = parse_policy(&name("bash"), &text).unwrap();
        assert_eq!(policy.candidate, Some(v("5.2.15-2+b13")));
        let policy = parse_policy(&name("fastpath"), &text).unwrap();
        assert_eq!(policy.candidate, Some(v("0.81~pr748-191")));
        let err = parse_policy(&name("dpkg"), &text).unwrap_err();
        assert_eq!(
            err,
            "apt-cache printed no policy for `dpkg`, only for `fastpath`, `bash`"
        );
    }

    #[test]
    fn duplicate_versions_are_listed_once() {
        let text = "\
fastpath:
  Installed: (none)
  Candidate: 1.0
  Version table:
     1.0 500
        500 file:/srv/repo ./ Packages
     1.0 500
        500 http://deb.example.org/debian bookworm/main amd64 Packages
";
        let policy = parse_policy(&name("fastpath"), text).unwrap();
        assert_eq!(policy.available, versions(&["1.0"]));
    }

    #[test]
    fn malformed_policies_are_errors() {
        let cases = [
            ("Installed: 1.0\n", "line 1: expected a package header like `fastpath:`, found `Installed: 1.0`"),
            ("  Installed: 1.0\n", "line 1: `Installed: 1.0` comes before any package header"),
            ("fastpath:\n  Installed: 1.0\n", "the policy lacks its `Installed:` or `Candidate:` line"),
            (
                "fastpath:\n  Installed: not a version\n",
                "line 2: `not a version` is not a valid Debian version: ",
            ),
            (
                "fastpath:\n  Installed: 1.0\n  Candidate: 1.0\n  Version table:\n        500 file:/srv/repo ./ Packages\n",
                "line 5: source `500 file:/srv/repo ./ Packages` before any version",
            ),
            (
                "fastpath:\n  Installed: 1.0\n  Candidate: 1.0\n  Version table:\n   1.0 500\n",
                "line 5: cannot read `1.0 500` in the version table",
            ),
            (
                "fastpath:\n  Installed: 1.0\n  Candidate: 1.0\n  Version table:\n     1.0 500\n        high file:/srv/repo\n",
                "line 6: expected `PRIORITY SOURCE` for 1.0, found `high file:/srv/repo`",
            ),
            ("E: Could not open lock file /var/lib/apt/lists/lock\n", "Could not open lock file /var/lib/apt/lists/lock"),
        ];
        for (text, want) in cases {
            let err = parse_policy(&name("fastpath"), text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn warnings_are_ignored() {
        let text = format!(
            "W: Some index files failed to download.\n{}",
            fixture("policy-testbed.txt")
        );
        let policy = parse_policy(&name("fastpath"), &text).unwrap();
        assert_eq!(policy.installed, Some(v("0.77~pr705-119")));
    }

    #[test]
    fn command_lines() {
        let fastpath = name("fastpath");
        let target = v("0.81~pr748-191");
        let cases = [
            (
                update(),
                "sudo -n env DEBIAN_FRONTEND=noninteractive env LANG=C apt-get update -q",
            ),
            (policy(&fastpath), "env LANG=C apt-cache policy -- fastpath"),
            (
                install(&fastpath, &target, false, 60, false),
                "sudo -n env DEBIAN_FRONTEND=noninteractive env LANG=C apt-get install -y -q \
                 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                 -o DPkg::Lock::Timeout=60 'fastpath=0.81~pr748-191'",
            ),
            (
                install(&fastpath, &v("1:0.5-1"), true, 0, false),
                "sudo -n env DEBIAN_FRONTEND=noninteractive env LANG=C apt-get install -y -q \
                 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                 -o DPkg::Lock::Timeout=0 --allow-downgrades fastpath=1:0.5-1",
            ),
            (
                install(&fastpath, &target, true, 60, true),
                "env LANG=C apt-get -s install -q \
                 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                 -o DPkg::Lock::Timeout=60 --allow-downgrades 'fastpath=0.81~pr748-191'",
            ),
            (
                remove(&fastpath, 30),
                "sudo -n env DEBIAN_FRONTEND=noninteractive env LANG=C apt-get remove -y -q \
                 -o DPkg::Lock::Timeout=30 fastpath",
            ),
        ];
        for (cmd, want) in cases {
            assert_eq!(cmd.as_str(), want);
            assert!(cmd.label().starts_with("apt-"), "{}", cmd.label());
        }
    }

    #[test]
    fn simulation_summary_keeps_the_actions() {
        // Real `apt-get -s install bash=5.2.15-2+b13` output on Debian 12,
        // run as an unprivileged user, plus a removal.
        let text = "\
NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
      Keep also in mind that locking is deactivated,
      so don't depend on the relevance to the real current situation!
Reading package lists...
Building dependency tree...
Reading state information...
Suggested packages:
  bash-doc
The following packages will be upgraded:
  bash
1 upgraded, 0 newly installed, 0 to remove and 124 not upgraded.
Remv fastpath-legacy [0.1-1]
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
";
        assert_eq!(
            simulation_summary(text),
            [
                "Remv fastpath-legacy [0.1-1]",
                "Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])",
                "Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])",
            ]
        );
        assert!(
            simulation_summary("bash is already the newest version (5.2.15-2+b8).\n").is_empty()
        );
    }

    #[test]
    fn failure_hints() {
        let cases: [(&str, Option<&str>); 12] = [
            // apt 2.6, observed with a lock held through fcntl.
            (
                "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4892 (apt-get)\n\
                 E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n",
                Some("the dpkg lock is held by another process (pid 4892, apt-get); wait for it to finish, or raise the lock timeout"),
            ),
            (
                "E: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)\n",
                Some("the dpkg lock is held by another process; wait for it to finish, or raise the lock timeout"),
            ),
            (
                "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 77\n",
                Some("the apt lock `/var/lib/apt/lists/lock` is held by another process (pid 77); wait for it to finish, or raise the lock timeout"),
            ),
            (
                "sudo: a password is required\n",
                Some("sudo wants a password on this host; allow the deploy user to run apt-get without one (NOPASSWD in sudoers)"),
            ),
            (
                "deploy is not in the sudoers file.  This incident will be reported.\n",
                Some("the deploy user may not run apt-get through sudo on this host"),
            ),
            (
                "Reading package lists...\nE: Version '0.81~pr748-191' for 'fastpath' was not found\n",
                Some("version 0.81~pr748-191 of `fastpath` is not in this host's package lists (is the repository configured, and was `apt-get update` run?)"),
            ),
            (
                "E: Unable to locate package fastpath\n",
                Some("apt does not know `fastpath` on this host (no configured repository offers it, or the package lists are stale)"),
            ),
            (
                "Setting up fastpath (0.81~pr748-191) ...\n\
                 dpkg: error processing package fastpath (--configure):\n \
                 installed fastpath package post-installation script subprocess returned error exit status 3\n\
                 Errors were encountered while processing:\n fastpath\n",
                Some("the package's postinst failed (exit status 3)"),
            ),
            (
                "dpkg: error processing archive fastpath.deb (--unpack):\n \
                 new fastpath package pre-installation script subprocess returned error exit status 1\n",
                Some("the package's preinst failed (exit status 1)"),
            ),
            (
                "E: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to correct the problem.\n",
                Some("an earlier dpkg run was interrupted; run `sudo dpkg --configure -a` on the host, then retry"),
            ),
            // The root cause wins over its consequences.
            (
                "installed fastpath package post-installation script subprocess returned error exit status 1\n\
                 E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n",
                Some("an earlier dpkg run was interrupted; run `sudo dpkg --configure -a` on the host, then retry"),
            ),
            ("E: Sub-process /usr/bin/dpkg returned an error code (1)\n", None),
        ];
        for (output, want) in cases {
            assert_eq!(failure_hint(output).as_deref(), want, "{output}");
        }
    }
}
