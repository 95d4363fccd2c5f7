//! What dpkg says about the managed packages on one host: the single
//! command that asks, and the pure parser of its answer.
//!
//! One command per host: `dpkg-query` for every package at once, followed
//! by the stage freeze record, so that a status run costs one round trip.
//! Besides each package's [`PackageState`], dpkg's selection tells whether
//! the package is held (`apt-mark hold`); the hold is kept apart from the
//! state, which it does not change.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::freeze::{self, Freeze};
use crate::package::{split_arch, PackageName};
use crate::transport::Output;
use crate::version::Version;

const FORMAT: &str = "${binary:Package}\t${Version}\t${db:Status-Abbrev}\n";
const EXIT_MARK: &str = "#dpkg-query-exit ";
const FREEZE_MARK: &str = "#freeze";
const FILE_MARK: &str = "#file ";
const UNREADABLE_MARK: &str = "#unreadable ";

/// The state of one package on one host, as dpkg records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageState {
    /// Installed and configured (`ii`).
    Installed(Version),
    /// Never installed, or purged.
    NotInstalled,
    /// Removed, configuration files left (`rc`).
    ConfigFiles(Option<Version>),
    /// Half-installed, unpacked, half-configured, awaiting triggers, or
    /// flagged "reinstall required": present but not working for sure.
    Broken {
        /// The version dpkg recorded, if any.
        version: Option<Version>,
        /// dpkg's name for the state, e.g. `half-configured`.
        state: String,
    },
}

impl PackageState {
    /// The version that counts when comparing stages: `None` for absent.
    pub fn version(&self) -> Option<&Version> {
        match self {
            PackageState::Installed(v) => Some(v),
            PackageState::Broken { version, .. } => version.as_ref(),
            PackageState::NotInstalled | PackageState::ConfigFiles(_) => None,
        }
    }

    /// Whether the package is absent for practical purposes.
    pub fn is_absent(&self) -> bool {
        matches!(
            self,
            PackageState::NotInstalled | PackageState::ConfigFiles(_)
        )
    }

    /// A short machine-readable name: `installed`, `not-installed`,
    /// `config-files` or `broken`.
    pub fn kind(&self) -> &'static str {
        match self {
            PackageState::Installed(_) => "installed",
            PackageState::NotInstalled => "not-installed",
            PackageState::ConfigFiles(_) => "config-files",
            PackageState::Broken { .. } => "broken",
        }
    }

    /// Whether two hosts in these states count as running the same thing
    /// (absent is absent, whether or not config files are left).
    pub fn same_as(&self, other: &PackageState) -> bool {
        match (self, other) {
            (a, b) if a.is_absent() && b.is_absent() => true,
            (PackageState::Installed(a), PackageState::Installed(b)) => a == b,
            (
                PackageState::Broken {
                    version: a,
                    state: sa,
                },
                PackageState::Broken {
                    version: b,
                    state: sb,
                },
            ) => a == b && sa == sb,
            _ => false,
        }
    }
}

impl fmt::Display for PackageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageState::Installed(v) => write!(f, "{v}"),
            PackageState::NotInstalled => f.write_str("-"),
            PackageState::ConfigFiles(_) => f.write_str("- (config files left)"),
            PackageState::Broken {
                version: Some(v),
                state,
            } => write!(f, "{v} [{state}]"),
            PackageState::Broken {
                version: None,
                state,
            } => write!(f, "? [{state}]"),
        }
    }
}

impl Serialize for PackageState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("state", self.kind())?;
        map.serialize_entry(
            "version",
            &match self {
                PackageState::ConfigFiles(v) => v.as_ref().map(ToString::to_string),
                other => other.version().map(ToString::to_string),
            },
        )?;
        if let PackageState::Broken { state, .. } = self {
            map.serialize_entry("dpkg_state", state)?;
        }
        map.end()
    }
}

/// Everything one host said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostStatus {
    /// Each managed package's state.
    pub packages: BTreeMap<PackageName, PackageState>,
    /// The managed packages held with `apt-mark hold` (dpkg's selection
    /// `hold`, the `h` of `hi`), whatever their state: apt will not
    /// install, upgrade or remove them without being told to.
    pub held: BTreeSet<PackageName>,
    /// The freeze records found on the host, one per frozen stage.
    pub freezes: Vec<Freeze>,
}

/// The one command that reads every managed package's state on a host.
pub fn query_command(packages: &[PackageName]) -> RemoteCommand {
    RemoteCommand::new("dpkg-query")
        .args(["-W", "-f", FORMAT, "--"])
        .args(packages.iter().map(PackageName::as_str))
        .then(RemoteCommand::trusted(
            &format!(
                "echo \"{EXIT_MARK}$?\"; echo '{FREEZE_MARK}'; d={dir}; p=${{d%/*}}; if [ -e \"$p\" ] && ! [ -x \"$p\" ]; then echo \"{UNREADABLE_MARK}$p\"; elif [ -e \"$d\" ] && ! {{ [ -r \"$d\" ] && [ -x \"$d\" ]; }}; then echo \"{UNREADABLE_MARK}$d\"; fi; for f in \"$d\"/*; do [ -f \"$f\" ] || continue; if [ -r \"$f\" ]; then echo \"{FILE_MARK}${{f##*/}}\"; cat \"$f\"; echo; else echo \"{UNREADABLE_MARK}$f\"; fi; done; true",
                dir = freeze::DIR
            ),
            "dpkg-query",
        ))
}

fn dpkg_state_name(c: char) -> &'static str {
    match c {
        'H' => "half-installed",
        'U' => "unpacked",
        'F' => "half-configured",
        'W' => "triggers-awaited",
        't' => "triggers-pending",
        _ => "unknown state",
    }
}

/// One line of dpkg-query: the package, its state, and whether it is held.
fn parse_line(line: &str) -> Result<(PackageName, PackageState, bool), String> {
    let mut fields = line.split('\t');
    let (Some(name), Some(version), Some(abbrev)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(format!("expected 3 tab-separated fields in `{line}`"));
    };
    let (bare, _arch) = split_arch(name);
    let package: PackageName = bare.parse().map_err(|e| format!("{e}"))?;
    let version = if version.is_empty() {
        None
    } else {
        Some(version.parse::<Version>().map_err(|e| e.to_string())?)
    };
    let mut chars = abbrev.chars();
    // The selection: `u`nknown, `i`nstall, `h`old, `r`emove or `p`urge.
    let held = chars.next() == Some('h');
    let status = chars.next().unwrap_or(' ');
    let error = chars.next().unwrap_or(' ');
    let state = match (status, error) {
        ('n', _) => PackageState::NotInstalled,
        ('c', _) => PackageState::ConfigFiles(version),
        ('i', ' ') => match version {
            Some(v) => PackageState::Installed(v),
            None => return Err(format!("`{name}` is installed but has no version")),
        },
        ('i', _) => PackageState::Broken {
            version,
            state: "reinstall-required".to_string(),
        },
        (other, _) => PackageState::Broken {
            version,
            state: dpkg_state_name(other).to_string(),
        },
    };
    Ok((package, state, held))
}

/// Read the output of [`query_command`]. Packages dpkg does not know are
/// [`PackageState::NotInstalled`]; that is not an error.
///
/// An answer that is not whole is an error, never a host without freezes:
/// output cut by the transport's limit, or without its freeze section.
pub fn parse(packages: &[PackageName], output: &Output) -> Result<HostStatus, HostError> {
    let protocol = |message: String| HostError::Protocol {
        command: "dpkg-query".to_string(),
        message,
    };
    if output.stdout_dropped > 0 {
        return Err(protocol(format!(
            "the answer is longer than deployer keeps ({} bytes dropped), so its freeze records \
             cannot be trusted; look for large files in `{}`",
            output.stdout_dropped,
            freeze::DIR
        )));
    }
    let mut status = HostStatus::default();
    let mut exit = None;
    let mut lines = output.stdout.lines();
    for line in lines.by_ref() {
        if let Some(code) = line.strip_prefix(EXIT_MARK) {
            exit = code.trim().parse::<i32>().ok();
            break;
        }
        if line.is_empty() {
            continue;
        }
        let (name, state, held) = parse_line(line).map_err(protocol)?;
        if !packages.contains(&name) {
            continue;
        }
        // Held on any architecture counts: apt would refuse to move it.
        if held {
            status.held.insert(name.clone());
        }
        // Several architectures of one package: keep the one that is
        // installed, else the first seen.
        let keep = match status.packages.get(&name) {
            None => true,
            Some(old) => {
                !matches!(old, PackageState::Installed(_))
                    && matches!(state, PackageState::Installed(_))
            }
        };
        if keep {
            status.packages.insert(name, state);
        }
    }
    match exit {
        // 1: some packages are unknown to dpkg, which only means "not installed"
        Some(0 | 1) => {}
        Some(code) => {
            return Err(HostError::Command {
                command: "dpkg-query".to_string(),
                status: code,
                output: output.stderr.trim().to_string(),
            })
        }
        None => {
            return Err(HostError::Command {
                command: "dpkg-query".to_string(),
                status: output.status,
                output: if output.stderr.trim().is_empty() {
                    "the command did not finish".to_string()
                } else {
                    output.stderr.trim().to_string()
                },
            })
        }
    }
    match lines.next() {
        Some(FREEZE_MARK) => {}
        other => {
            return Err(protocol(format!(
                "expected `{FREEZE_MARK}` after dpkg's answer, found {}",
                other.map_or("the end of the output".to_string(), |l| format!("`{l}`"))
            )))
        }
    }
    let mut current: Option<(String, Vec<&str>)> = None;
    let finish = |entry: Option<(String, Vec<&str>)>, out: &mut Vec<Freeze>| {
        if let Some((stage, text)) = entry {
            let mut f = Freeze::from_text(&text.join("\n"));
            f.stage = stage;
            out.push(f);
        }
    };
    for line in lines {
        if let Some(path) = line.strip_prefix(UNREADABLE_MARK) {
            finish(current.take(), &mut status.freezes);
            status.freezes.push(Freeze::unreadable(path));
        } else if let Some(stage) = line.strip_prefix(FILE_MARK) {
            finish(current.take(), &mut status.freezes);
            current = Some((stage.to_string(), Vec::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push(line);
        }
    }
    finish(current.take(), &mut status.freezes);
    for p in packages {
        status
            .packages
            .entry(p.clone())
            .or_insert(PackageState::NotInstalled);
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<PackageName> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn out(stdout: &str) -> Output {
        Output {
            status: 0,
            stdout: stdout.to_string(),
            stderr: String::new(),
            ..Output::default()
        }
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn command_quotes_the_format_and_lists_every_package() {
        let cmd = query_command(&names(&["fastpath", "ooni-api"]));
        assert!(cmd
            .as_str()
            .starts_with("dpkg-query -W -f '${binary:Package}\t${Version}\t${db:Status-Abbrev}\n' -- fastpath ooni-api; "));
    }

    #[test]
    fn reads_every_dpkg_state() {
        let pk = names(&[
            "fastpath", "analysis", "detector", "ooni-api", "gone", "libc6", "never",
        ]);
        let text = "\
fastpath\t0.81~pr748-191\tii \n\
analysis\t1.9~pr659-61\tiF \n\
detector\t1:1.0-1\tiU \n\
ooni-api\t1.0.79~pr751-194\trc \n\
gone\t\tun \n\
libc6:amd64\t2.36-9+deb12u4\tii \n\
#dpkg-query-exit 1\n#freeze\n";
        let s = parse(&pk, &out(text)).unwrap();
        let get = |n: &str| s.packages[&n.parse::<PackageName>().unwrap()].clone();
        assert_eq!(
            get("fastpath"),
            PackageState::Installed(v("0.81~pr748-191"))
        );
        assert_eq!(
            get("analysis"),
            PackageState::Broken {
                version: Some(v("1.9~pr659-61")),
                state: "half-configured".into()
            }
        );
        assert_eq!(
            get("detector"),
            PackageState::Broken {
                version: Some(v("1:1.0-1")),
                state: "unpacked".into()
            }
        );
        assert_eq!(
            get("ooni-api"),
            PackageState::ConfigFiles(Some(v("1.0.79~pr751-194")))
        );
        assert_eq!(get("gone"), PackageState::NotInstalled);
        assert_eq!(get("libc6"), PackageState::Installed(v("2.36-9+deb12u4")));
        assert_eq!(get("never"), PackageState::NotInstalled);
        assert!(s.freezes.is_empty());
    }

    #[test]
    fn held_packages_keep_their_state() {
        // Real dpkg-query output (tests/data/apt/capture.sh): `fastpath`
        // held with `apt-mark hold`, next to packages that are not.
        let fixture = |file: &str| {
            let path = format!("{}/tests/data/apt/{file}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let pk = names(&[
            "fastpath",
            "libfastpath",
            "fastpath-legacy",
            "fastpath-data",
        ]);
        let text = format!(
            "{}#dpkg-query-exit 1\n#freeze\n",
            fixture("dpkg-query-held.txt")
        );
        let s = parse(&pk, &out(&text)).unwrap();
        assert_eq!(
            s.packages[&pk[0]],
            PackageState::Installed(v("0.77~pr705-119"))
        );
        assert_eq!(s.held, names(&["fastpath"]).into_iter().collect());
        assert_eq!(s.packages[&pk[3]], PackageState::Installed(v("1.0-1")));
        assert_eq!(s.packages[&pk[2]], PackageState::NotInstalled);

        let text = format!(
            "{}#dpkg-query-exit 1\n#freeze\n",
            fixture("dpkg-query-after-allow-change-held.txt")
        );
        let s = parse(&pk, &out(&text)).unwrap();
        assert!(s.held.is_empty());
        assert_eq!(s.packages[&pk[2]], PackageState::NotInstalled);

        // a hold on a removed package, and on one architecture only
        let text = "fastpath\t0.77-1\thc \nmultilib:i386\t1.0-1\thi \nmultilib:amd64\t1.0-1\tii \n#dpkg-query-exit 0\n#freeze\n";
        let pk = names(&["fastpath", "multilib"]);
        let s = parse(&pk, &out(text)).unwrap();
        assert_eq!(
            s.packages[&pk[0]],
            PackageState::ConfigFiles(Some(v("0.77-1")))
        );
        assert_eq!(s.held.len(), 2);
    }

    #[test]
    fn reinstall_required_flag_is_broken() {
        let pk = names(&["fastpath"]);
        let s = parse(
            &pk,
            &out("fastpath\t1.0-1\tiiR\n#dpkg-query-exit 0\n#freeze\n"),
        )
        .unwrap();
        assert_eq!(s.packages[&pk[0]].kind(), "broken");
    }

    #[test]
    fn prefers_the_installed_architecture() {
        let pk = names(&["multilib"]);
        let text =
            "multilib:i386\t\tun \nmultilib:amd64\t1.1-1\tii \n#dpkg-query-exit 0\n#freeze\n";
        let s = parse(&pk, &out(text)).unwrap();
        assert_eq!(s.packages[&pk[0]], PackageState::Installed(v("1.1-1")));
    }

    #[test]
    fn empty_answer_for_unknown_packages_is_not_a_failure() {
        let pk = names(&["fastpath"]);
        let s = parse(&pk, &out("#dpkg-query-exit 1\n#freeze\n")).unwrap();
        assert_eq!(s.packages[&pk[0]], PackageState::NotInstalled);
    }

    #[test]
    fn freeze_records_are_returned_per_stage() {
        let pk = names(&["fastpath"]);
        let text = "#dpkg-query-exit 1\n#freeze\n#file prod\n{\"by\":\"alice@a\",\"since\":\"t\",\"reason\":\"db\"}\n\n#file test\nask bob first\n\n";
        let s = parse(&pk, &out(text)).unwrap();
        assert_eq!(s.freezes.len(), 2);
        assert_eq!(s.freezes[0].stage, "prod");
        assert_eq!(s.freezes[0].describe(), "frozen by alice@a since t: db");
        assert_eq!(s.freezes[1].stage, "test");
        assert_eq!(s.freezes[1].reason, "ask bob first");
        let none = parse(&pk, &out("#dpkg-query-exit 1\n#freeze\n")).unwrap();
        assert!(none.freezes.is_empty());
    }

    #[test]
    fn an_unreadable_freeze_record_freezes_every_stage() {
        let pk = names(&["fastpath"]);
        let text = "#dpkg-query-exit 1\n#freeze\n#file test\nask bob\n\n#unreadable /var/lib/deployer/freeze/prod\n";
        let s = parse(&pk, &out(text)).unwrap();
        assert_eq!(s.freezes.len(), 2);
        assert_eq!(s.freezes[0].reason, "ask bob");
        let f = &s.freezes[1];
        assert!(f.applies_to("prod") && f.applies_to("test"), "{f:?}");
        assert!(f.reason.contains("/var/lib/deployer/freeze/prod"));
    }

    #[test]
    fn dpkg_query_failure_is_reported_with_stderr() {
        let pk = names(&["fastpath"]);
        let o = Output {
            status: 0,
            stdout: "#dpkg-query-exit 2\n#freeze\n".into(),
            stderr: "dpkg-query: error: database is locked\n".into(),
            ..Output::default()
        };
        let e = parse(&pk, &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`dpkg-query` exited with status 2: dpkg-query: error: database is locked"
        );
        let missing = Output {
            status: 127,
            stdout: String::new(),
            stderr: "sh: dpkg-query: not found".into(),
            ..Output::default()
        };
        assert!(parse(&pk, &missing)
            .unwrap_err()
            .to_string()
            .contains("127"));
    }

    /// Freezes must hold: an answer whose freeze section is missing or
    /// cut off is no answer, not a host without freezes.
    #[test]
    fn an_answer_that_is_not_whole_is_not_an_unfrozen_host() {
        let pk = names(&["fastpath"]);
        for text in [
            "fastpath\t1.0-1\tii \n#dpkg-query-exit 0\n",
            "fastpath\t1.0-1\tii \n#dpkg-query-exit 0\nsomething else\n#file prod\nx\n",
        ] {
            let e = parse(&pk, &out(text)).unwrap_err();
            assert!(matches!(e, HostError::Protocol { .. }), "{text:?}: {e}");
            assert!(e.to_string().contains("expected `#freeze`"), "{e}");
        }
        let cut = Output {
            stdout_dropped: 12,
            ..out("#dpkg-query-exit 1\n#freeze\n")
        };
        let e = parse(&pk, &cut).unwrap_err();
        assert!(e.to_string().contains("12 bytes dropped"), "{e}");
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let pk = names(&["fastpath"]);
        let e = parse(&pk, &out("nonsense\n#dpkg-query-exit 0\n")).unwrap_err();
        assert!(matches!(e, HostError::Protocol { .. }), "{e}");
    }
}
