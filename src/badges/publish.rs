//! Writing badge files where they are served: into `badges_path` on a host,
//! over the session the run already has, and into a local directory.
//!
//! Both ways are atomic and idempotent. Each file is written to a
//! temporary file in its own directory and renamed into place, so a web
//! server never serves half a badge; a file whose bytes did not change is
//! left alone (its modification time, and so caches and ETags, stay valid).
//! On a host everything travels in two commands per host: a read-only
//! look at the badges already there (their SHA-256), then, for the files
//! that changed only, one root write with the file names as arguments
//! (quoted; each is a package name and a fixed extension) and the contents
//! on stdin as a tar archive. A badge that is not there yet is simply one
//! to write, as is every badge of a directory that is empty or missing.
//! Both commands walk `badges_path` through [`crate::hostpath`], so root
//! never writes through a link or a directory another user could change.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeMap;

use super::Board;
use crate::badge::{Badge, Fonts, PngError};
use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::fleet::{Fleet, Member};
use crate::matrix::HostReport;
use crate::package::PackageName;
use crate::transport::{self, Exec, Output};

/// One file to write: its name inside the directory, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The file name (no directory part).
    pub name: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// What happened to a directory's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Files written (new, or changed).
    pub written: Vec<String>,
    /// Files already there with the same content, left alone.
    pub unchanged: Vec<String>,
}

/// Why a host's badges were not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostWriteError {
    /// The host could not be reached, or the command could not run.
    #[error("{0}")]
    Host(#[from] HostError),
    /// A component of the directory, or a badge's file name, is a link or
    /// can be changed by a user other than root: nothing was written.
    #[error("refusing to write the badges in `{dir}` as root: {refusal}\n  note: {}", refusal.fix())]
    Refused {
        /// The directory on the host.
        dir: String,
        /// The component at fault, as the host described it.
        refusal: Box<crate::hostpath::Refusal>,
    },
    /// The command ran and failed (sudo, a full disk, a file in the way).
    #[error("cannot write the badges in `{dir}`: {why}")]
    Failed {
        /// The directory on the host.
        dir: String,
        /// What the host said, made safe to print.
        why: String,
    },
}

/// The read-only check run first on a host, without sudo (badges are
/// world-readable): the SHA-256 of each badge already there. `$1` is the
/// directory, the other arguments the file names. A missing directory or
/// file prints nothing for it (it is one to write); a link or a directory
/// others can write on the way, or a badge that is a link, is refused (see
/// [`crate::hostpath`]) before anything is written.
const CHECK_SCRIPT: &str = r#"hp_enter "$1"
[ -z "$hp_missing" ] || exit 0
shift
n=$#
for f; do
    hp_file "$f"
    if [ -e "$f" ]; then set -- "$@" "$f"; fi
done
shift "$n"
[ "$#" -eq 0 ] || exec sha256sum -- "$@"
"#;

/// The write, run as root through `sudo -n`, for the files that changed
/// only. `$1` is the directory, the other arguments the file names; stdin
/// is a tar archive of those files. The directory is entered through
/// [`crate::hostpath`] (created if missing), and everything after is
/// relative to it: the files are unpacked into a fresh directory beside
/// the badges, given mode 0644, then renamed into place by one `mv` (a
/// `rename` per file, so each badge is replaced whole). A directory or a
/// link where a badge should be is an error, never moved into or
/// followed. A constant number of processes, however many badges.
const WRITE_SCRIPT: &str = r#"set -eu
umask 022
hp_enter "$1" create
shift
for f; do hp_file "$f"; done
tmp=$(mktemp -d -- .deployer-badges.XXXXXX)
trap 'rm -rf -- "$tmp"' EXIT
tar -x -m --no-same-owner --no-same-permissions -C "$tmp" -f - -- "$@"
(cd -- "$tmp" && chmod 0644 -- "$@" && mv -f -- "$@" ..)
echo written "$@"
"#;

/// The two scripts, with the [`crate::hostpath`] functions for the paths
/// they may trust.
struct Scripts {
    check: String,
    write: String,
}

impl Scripts {
    /// On a host: paths from `/`, owned by root.
    fn host() -> Scripts {
        Scripts {
            check: crate::hostpath::script(CHECK_SCRIPT),
            write: crate::hostpath::script(WRITE_SCRIPT),
        }
    }
}

/// The read-only command listing the SHA-256 of `names` in `dir`.
pub fn check_command(dir: &Path, names: &[&str]) -> RemoteCommand {
    check_with(&Scripts::host(), dir, names)
}

fn check_with(scripts: &Scripts, dir: &Path, names: &[&str]) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", &scripts.check, "deployer-badges"])
        .arg(dir.to_string_lossy())
        .args(names)
        .named("badges")
}

/// The files among `files` whose bytes differ from what [`check_command`]
/// printed (`sha256sum` lines), or that it did not list.
pub fn changed<'f>(files: &'f [File], check_output: &str) -> Vec<&'f File> {
    let there: BTreeMap<&str, &str> = check_output
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(hash, name)| (name, hash))
        .collect();
    files
        .iter()
        .filter(|f| there.get(f.name.as_str()) != Some(&hex_sha256(&f.bytes).as_str()))
        .collect()
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The command that writes `names` into `dir` on a host (contents from
/// [`write_stdin`]).
pub fn write_command(dir: &Path, names: &[&str]) -> RemoteCommand {
    write_with_scripts(&Scripts::host(), dir, names)
}

fn write_with_scripts(scripts: &Scripts, dir: &Path, names: &[&str]) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", &scripts.write, "deployer-badges"])
        .arg(dir.to_string_lossy())
        .args(names)
        .sudo()
        .named("badges")
}

/// The stdin of [`write_command`]: a tar archive of `files`.
pub fn write_stdin(files: &[&File]) -> Vec<u8> {
    let mut archive = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(f.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(0);
        archive
            .append_data(&mut header, &f.name, f.bytes.as_slice())
            .expect("a tar archive in memory");
    }
    archive.into_inner().expect("a tar archive in memory")
}

/// What [`write_command`] printed, checked against the names it was given.
pub fn parse_write_output(stdout: &str, names: &[&str]) -> Result<(), String> {
    let said: Vec<&str> = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("written "))
        .map(|l| l.split(' ').collect())
        .unwrap_or_default();
    if said == names {
        Ok(())
    } else {
        Err(format!(
            "it did not confirm the badges it wrote ({})",
            names.join(", ")
        ))
    }
}

/// Write `files` into `dir` on the host of `member`, over its session:
/// first a read-only look at what is there, then, only when something
/// changed, one `sudo -n` command that writes the changed files. With
/// `attempt` (after a deploy), each runs only while that attempt's deploy
/// lock is proven on the host (`lock::guarded`); a lost lock writes
/// nothing and says so.
pub fn write_on_host(
    member: &mut Member,
    dir: &Path,
    files: &[File],
    timeout: Duration,
    attempt: Option<&str>,
) -> Result<Written, HostWriteError> {
    write_with(
        |command, stdin| {
            // after a deploy, only under its proven lock (`lock::guarded`)
            let guarded = attempt.map(|a| crate::lock::guarded(a, command));
            let mut out = member.exec(Exec {
                command: guarded.as_ref().unwrap_or(command),
                timeout,
                stdin,
                on_output: None,
            })?;
            if let Some(holder) = crate::lock::lost(&out) {
                out.stderr = crate::lock::lost_message(&holder);
            }
            Ok(out)
        },
        &Scripts::host(),
        dir,
        files,
    )
}

/// [`write_on_host`] with the commands run by `run` (command, stdin).
fn write_with(
    mut run: impl FnMut(&RemoteCommand, Option<&[u8]>) -> Result<Output, HostError>,
    scripts: &Scripts,
    dir: &Path,
    files: &[File],
) -> Result<Written, HostWriteError> {
    let failed = |why: String| HostWriteError::Failed {
        dir: dir.display().to_string(),
        why,
    };
    let refused_or_failed = |out: &Output| match crate::hostpath::parse_refusal(&out.stderr) {
        Some(refusal) => HostWriteError::Refused {
            dir: dir.display().to_string(),
            refusal: Box::new(refusal),
        },
        None => failed(transport::failure(out)),
    };
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let out = run(&check_with(scripts, dir, &names), None)?;
    if !out.success() {
        return Err(refused_or_failed(&out));
    }
    let changed = changed(files, &out.stdout);
    let mut result = Written::default();
    for f in files {
        if !changed.iter().any(|c| c.name == f.name) {
            result.unchanged.push(f.name.clone());
        }
    }
    if changed.is_empty() {
        return Ok(result);
    }
    let names: Vec<&str> = changed.iter().map(|f| f.name.as_str()).collect();
    let out = run(
        &write_with_scripts(scripts, dir, &names),
        Some(&write_stdin(&changed)),
    )?;
    if !out.success() {
        return Err(refused_or_failed(&out));
    }
    parse_write_output(&out.stdout, &names).map_err(failed)?;
    result.written = names.iter().map(|n| n.to_string()).collect();
    Ok(result)
}

/// How writing one host's badges went.
#[derive(Debug)]
pub struct HostOutcome {
    /// The host's stage.
    pub stage: String,
    /// The host as written in the configuration.
    pub host: String,
    /// What was written, or why nothing was.
    pub result: Result<Written, HostWriteError>,
}

/// The files of each host's badges in `board` (those `keep` accepts, by
/// stage and host): `PKG.svg`, and `PKG.png` with `png`. Rendered before
/// any host is written, so a rendering problem changes nothing anywhere.
pub fn host_files(
    board: &Board,
    png: Option<&Fonts>,
    keep: impl Fn(&str, &str) -> bool,
) -> Result<HostFiles, PngError> {
    let mut files = HostFiles::new();
    for b in board.hosts.iter().filter(|b| keep(&b.stage, &b.host)) {
        files
            .entry((b.stage.clone(), b.host.clone()))
            .or_default()
            .extend(badge_files(&b.package, &b.badge, png)?);
    }
    Ok(files)
}

/// One badge's files: `PKG.svg`, and `PKG.png` with `png`.
pub fn badge_files(
    package: &PackageName,
    badge: &Badge,
    png: Option<&Fonts>,
) -> Result<Vec<File>, PngError> {
    let mut files = vec![File {
        name: format!("{package}.svg"),
        bytes: badge.svg().into_bytes(),
    }];
    if let Some(fonts) = png {
        files.push(File {
            name: format!("{package}.png"),
            bytes: badge.png(fonts, PNG_SCALE)?,
        });
    }
    Ok(files)
}

/// How much larger than the SVG's 20 px a PNG badge is drawn: 40 px high,
/// sharp on high-density screens and in chat clients that scale it down.
pub const PNG_SCALE: f32 = 2.0;

/// Each host's files, by (stage, host).
pub type HostFiles = BTreeMap<(String, String), Vec<File>>;

/// Write each host's `files` into `dir` on that host, `parallelism` hosts
/// at a time, each over its own session ([`Fleet::visit`]: a host not
/// connected yet is connected to, written to and closed). `refuse` is
/// asked first, over the same session: a reason it gives is the host's
/// outcome and nothing is written there. A host whose status could not be
/// read is not written to (nor connected to): its outcome is the reason.
/// Outcomes in fleet order.
pub fn to_hosts(
    fleet: &mut Fleet,
    files: &HostFiles,
    reports: &[HostReport],
    dir: &Path,
    timeout: Duration,
    attempt: Option<&str>,
    refuse: impl Fn(&mut Member) -> Option<String> + Sync,
) -> Vec<HostOutcome> {
    let report = |stage: &str, host: &str| {
        reports
            .iter()
            .find(|r| r.stage == stage && r.host == host)
            .map(|r| &r.result)
    };
    let read = |t: &crate::transport::Target| {
        files.contains_key(&(t.stage.clone(), t.host.clone()))
            && matches!(report(&t.stage, &t.host), Some(Ok(_)))
    };
    let mut outcomes = fleet.visit(read, |m| {
        let (stage, host) = (m.target().stage.clone(), m.host().to_string());
        let result = match refuse(m) {
            Some(why) => Err(HostWriteError::Failed {
                dir: dir.display().to_string(),
                why,
            }),
            None => write_on_host(
                m,
                dir,
                &files[&(stage.clone(), host.clone())],
                timeout,
                attempt,
            ),
        };
        HostOutcome {
            stage,
            host,
            result,
        }
    });
    outcomes.extend(
        fleet
            .members()
            .iter()
            .map(Member::target)
            .filter(|t| files.contains_key(&(t.stage.clone(), t.host.clone())) && !read(t))
            .map(|t| HostOutcome {
                stage: t.stage.clone(),
                host: t.host.clone(),
                result: Err(HostWriteError::Host(match report(&t.stage, &t.host) {
                    Some(Err(e)) => e.clone(),
                    _ => HostError::Ssh("its status was not read".to_string()),
                })),
            }),
    );
    let at = |o: &HostOutcome| {
        fleet
            .members()
            .iter()
            .position(|m| m.target().stage == o.stage && m.host() == o.host)
    };
    outcomes.sort_by_key(|o| at(o));
    outcomes
}

/// Write `bytes` to `dir/name` on this machine, creating `dir`: through a
/// temporary file in `dir` renamed into place, mode 0644; left alone when
/// the file already holds these bytes. True when written. The rename
/// replaces a symbolic link rather than follow it, and `dir` must be one
/// that only the user and root can write ([`crate::local_file::check_dir`]).
pub fn write_local(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<bool> {
    let path = dir.join(name);
    if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && fs::read(&path)? == bytes {
        return Ok(false);
    }
    create_dirs(dir)?;
    crate::local_file::check_dir(dir)?;
    let tmp = temporary(dir, name)?;
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(io::Error::other(format!(
                "`{}` is a directory",
                path.display()
            )));
        }
        fs::rename(&tmp, &path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| true)
}

/// Create `dir` and its missing parents with mode 0755, whatever the
/// umask (cron's may be 077): a web server must be able to read them.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A name for a temporary file beside `dir/name` that does not exist yet.
fn temporary(dir: &Path, name: &str) -> io::Result<PathBuf> {
    for attempt in 0..100u32 {
        let tmp = dir.join(format!(".{name}.{}.{attempt}", std::process::id()));
        if fs::symlink_metadata(&tmp).is_err() {
            return Ok(tmp);
        }
    }
    Err(io::Error::other(format!(
        "cannot find a free temporary name for `{name}` in `{}`",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: &[u8]) -> File {
        File {
            name: name.to_string(),
            bytes: bytes.to_vec(),
        }
    }

    impl Scripts {
        /// For paths under `top` (the test's own directory), owned by
        /// this user.
        fn under(top: &Path) -> Scripts {
            let top = top.canonicalize().unwrap().display().to_string();
            let me = rustix::process::geteuid().as_raw();
            Scripts {
                check: crate::hostpath::script_in(&top, me, CHECK_SCRIPT),
                write: crate::hostpath::script_in(&top, me, WRITE_SCRIPT),
            }
        }
    }

    /// Write `files` into `dir` here, as a host's shell would run the
    /// commands (without sudo, under umask 077), trusting the test's own
    /// directory `top` as a host trusts `/`.
    fn run_in(top: &Path, dir: &Path, files: &[File]) -> Result<Written, HostWriteError> {
        let dir = top
            .canonicalize()
            .unwrap()
            .join(dir.strip_prefix(top).unwrap());
        write_with(
            |command, stdin| {
                let (status, stdout, stderr) =
                    crate::command::run_here(command, stdin.unwrap_or_default());
                Ok(Output {
                    status,
                    stdout,
                    stderr,
                    stdout_dropped: 0,
                    stderr_dropped: 0,
                })
            },
            &Scripts::under(top),
            &dir,
            files,
        )
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn host_scripts_write_atomically_with_mode_0644_and_skip_unchanged() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("www/badges");
        let files = [
            file("fastpath.svg", b"<svg>1</svg>"),
            file("ooni-api.svg", b"<svg>\n2 &amp; 'x'\n</svg>\n"),
            file("ooni-api.png", b"\x89PNG\r\n\x1a\n\0\xff binary"),
        ];
        let w = run_in(root.path(), &dir, &files).unwrap();
        let names = ["fastpath.svg", "ooni-api.svg", "ooni-api.png"];
        assert_eq!(w.written, names);
        assert!(w.unchanged.is_empty());
        for f in &files {
            assert_eq!(fs::read(dir.join(&f.name)).unwrap(), f.bytes);
            // the umask of the caller (077) does not reach the badge
            assert_eq!(mode(&dir.join(&f.name)), 0o644);
        }
        assert_eq!(mode(&dir), 0o755);
        use std::os::unix::fs::MetadataExt;
        let ino = |name: &str| fs::metadata(dir.join(name)).unwrap().ino();
        let before = (ino("fastpath.svg"), ino("ooni-api.svg"));
        // again, one changed: only that one is written, by a rename
        let files = [
            file("fastpath.svg", b"<svg>1</svg>"),
            file("ooni-api.svg", b"<svg>3</svg>"),
        ];
        let w = run_in(root.path(), &dir, &files).unwrap();
        assert_eq!(w.unchanged, ["fastpath.svg"]);
        assert_eq!(w.written, ["ooni-api.svg"]);
        assert_eq!(fs::read(dir.join("ooni-api.svg")).unwrap(), b"<svg>3</svg>");
        assert_eq!(ino("fastpath.svg"), before.0);
        assert_ne!(ino("ooni-api.svg"), before.1);
        // no temporary file or directory is left behind
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 3, "{left:?}");
        // nothing changed: nothing written
        let w = run_in(root.path(), &dir, &files).unwrap();
        assert_eq!((w.written.len(), w.unchanged.len()), (0, 2));
    }

    #[test]
    fn host_scripts_refuse_a_directory_in_the_way_and_leave_no_temporary() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("fastpath.svg")).unwrap();
        let e = run_in(root.path(), root.path(), &[file("fastpath.svg", b"x")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("refusing to write the badges in `"),
            "{e}"
        );
        assert!(e.to_string().contains("is in the way"), "{e}");
        assert!(root.path().join("fastpath.svg").is_dir());
        assert_eq!(
            fs::read_dir(root.path().join("fastpath.svg"))
                .unwrap()
                .count(),
            0
        );
        let left: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    /// Regression (issue 17 item 5): a badge not written yet made the
    /// read-only check fail (`sha256sum` of a missing file), so a new
    /// package, or an empty badge directory, never got its badge.
    #[test]
    fn a_badge_not_there_yet_is_one_to_write() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("badges");
        fs::create_dir(&dir).unwrap();
        // an existing but empty directory
        let w = run_in(root.path(), &dir, &[file("fastpath.svg", b"1")]).unwrap();
        assert_eq!(w.written, ["fastpath.svg"]);
        // a package added to the configuration: its badge is new
        let files = [file("fastpath.svg", b"1"), file("detector.svg", b"2")];
        let w = run_in(root.path(), &dir, &files).unwrap();
        assert_eq!(
            (w.written, w.unchanged),
            (
                vec!["detector.svg".to_string()],
                vec!["fastpath.svg".to_string()]
            )
        );
        assert_eq!(fs::read(dir.join("detector.svg")).unwrap(), b"2");
    }

    /// Issue 17 item 4: a link planted at the directory, on the way to it
    /// or at a badge's name is refused, naming it and its owner, and
    /// nothing is written through it.
    #[test]
    fn links_on_the_way_or_at_a_badge_are_refused_and_not_followed() {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::create_dir(root.path().join("www")).unwrap();
        let refused = |e: HostWriteError| match e {
            HostWriteError::Refused { refusal, .. } => refusal,
            other => panic!("{other}"),
        };
        symlink(&target, root.path().join("www/badges")).unwrap();
        let r = refused(
            run_in(
                root.path(),
                &root.path().join("www/badges"),
                &[file("fastpath.svg", b"x")],
            )
            .unwrap_err(),
        );
        assert!(r.path.ends_with("/www/badges"), "{r:?}");
        assert_eq!(r.kind, crate::hostpath::Kind::Link);
        assert_eq!(r.uid, rustix::process::geteuid().as_raw().to_string());
        fs::remove_file(root.path().join("www/badges")).unwrap();
        fs::create_dir(root.path().join("www/badges")).unwrap();
        symlink(
            target.join("fastpath.svg"),
            root.path().join("www/badges/fastpath.svg"),
        )
        .unwrap();
        let e = run_in(
            root.path(),
            &root.path().join("www/badges"),
            &[file("fastpath.svg", b"x")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("fastpath.svg` (owner "), "{e}");
        assert!(e.to_string().contains("note: replace the link"), "{e}");
        assert_eq!(
            fs::read_dir(&target).unwrap().count(),
            0,
            "nothing written through a link"
        );
    }

    #[test]
    fn a_badge_counts_as_unchanged_only_with_the_same_bytes() {
        let files = [file("a.svg", b"one"), file("b.svg", b"two")];
        let listing = format!(
            "{}  a.svg\n{}  b.svg\n",
            hex_sha256(b"one"),
            hex_sha256(b"2")
        );
        let names: Vec<&str> = changed(&files, &listing)
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["b.svg"]);
        assert_eq!(changed(&files, "").len(), 2);
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn write_output_must_confirm_every_name_in_order() {
        let names = ["a.svg", "b.svg"];
        assert!(parse_write_output("written a.svg\n", &names).is_err());
        assert!(parse_write_output("written b.svg a.svg\n", &names).is_err());
        assert!(parse_write_output("", &names).is_err());
        assert!(parse_write_output("written a.svg b.svg\n", &names).is_ok());
    }

    #[test]
    fn host_commands_quote_the_directory() {
        let dir = Path::new("/srv/my badges/$(reboot)");
        let c = write_command(dir, &["a.svg"]);
        assert!(c.as_str().starts_with("sudo -n sh -c "));
        assert!(c.as_str().contains("'/srv/my badges/$(reboot)'"), "{c}");
        let c = check_command(dir, &["a.svg"]);
        assert!(c.as_str().starts_with("sh -c "), "read-only, no sudo: {c}");
        assert!(c.as_str().contains("'/srv/my badges/$(reboot)'"), "{c}");
    }

    #[test]
    fn local_write_is_idempotent_and_mode_0644() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out/prod");
        assert!(write_local(&dir, "fastpath.svg", b"one").unwrap());
        assert_eq!(fs::read(dir.join("fastpath.svg")).unwrap(), b"one");
        assert_eq!(mode(&dir.join("fastpath.svg")), 0o644);
        assert!(!write_local(&dir, "fastpath.svg", b"one").unwrap());
        assert!(write_local(&dir, "fastpath.svg", b"two").unwrap());
        assert_eq!(fs::read(dir.join("fastpath.svg")).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::create_dir(dir.join("x.svg")).unwrap();
        assert!(write_local(&dir, "x.svg", b"x").is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
    }

    /// Badges under `--output` are never written through a symbolic link
    /// (the link is replaced, its target untouched), nor in a directory
    /// others can write.
    #[test]
    fn local_write_neither_follows_a_link_nor_writes_where_others_can() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        fs::create_dir(&dir).unwrap();
        let target = root.path().join("precious");
        fs::write(&target, "keep\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("fastpath.svg")).unwrap();
        assert!(write_local(&dir, "fastpath.svg", b"<svg/>").unwrap());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
        assert!(fs::symlink_metadata(dir.join("fastpath.svg"))
            .unwrap()
            .is_file());

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = write_local(&dir, "analysis.svg", b"<svg/>").unwrap_err();
        assert!(e.to_string().contains("every other user can write"), "{e}");
        assert!(!dir.join("analysis.svg").exists());
    }
}
