//! Writing badge files where they are served: into `badges_path` on a host,
//! over the session the run already has, and into a local directory.
//!
//! Both ways are atomic and idempotent. Each file is written to a
//! temporary file in its own directory and renamed into place, so a web
//! server never serves half a badge; a file whose bytes did not change is
//! left alone (its modification time, and so caches and ETags, stay valid).
//! On a host everything travels in one command per host: the file names as
//! arguments (quoted; each is a package name and a fixed extension), the
//! contents on stdin, one base64 line per file.

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
/// directory, the other arguments the file names; a missing file or
/// directory prints nothing for it.
const CHECK_SCRIPT: &str = r#"cd -- "$1" 2>/dev/null || exit 0
shift
exec sha256sum -- "$@" 2>/dev/null
"#;

/// The write, run as root through `sudo -n`, for the files that changed
/// only. `$1` is the directory, the other arguments the file names; stdin
/// is a tar archive of those files. They are unpacked into a fresh
/// directory beside the badges, given mode 0644, then renamed into place
/// by one `mv` (a `rename` per file, so each badge is replaced whole). A
/// directory where a badge should be is an error, never moved into. A
/// constant number of processes, however many badges.
const WRITE_SCRIPT: &str = r#"set -eu
umask 022
dir=$1
shift
[ -d "$dir" ] || mkdir -p -- "$dir"
tmp=$(mktemp -d -- "$dir/.deployer-badges.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
cd -- "$tmp"
tar -x -m --no-same-owner --no-same-permissions -f - -- "$@"
chmod 0644 -- "$@"
mv -f -- "$@" "$dir/"
echo written "$@"
"#;

/// The read-only command listing the SHA-256 of `names` in `dir`.
pub fn check_command(dir: &Path, names: &[&str]) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", CHECK_SCRIPT, "deployer-badges"])
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
    RemoteCommand::new("sh")
        .args(["-c", WRITE_SCRIPT, "deployer-badges"])
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
        dir,
        files,
    )
}

/// [`write_on_host`] with the commands run by `run` (command, stdin).
fn write_with(
    mut run: impl FnMut(&RemoteCommand, Option<&[u8]>) -> Result<Output, HostError>,
    dir: &Path,
    files: &[File],
) -> Result<Written, HostWriteError> {
    let failed = |why: String| HostWriteError::Failed {
        dir: dir.display().to_string(),
        why,
    };
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let out = run(&check_command(dir, &names), None)?;
    if !out.success() {
        return Err(failed(transport::failure(&out)));
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
    let out = run(&write_command(dir, &names), Some(&write_stdin(&changed)))?;
    if !out.success() {
        return Err(failed(transport::failure(&out)));
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

/// Write each host's `files` into `dir` on that host, all hosts at once,
/// each over its own session. A host whose status could not be read is not
/// written to: its outcome is the reason.
pub fn to_hosts(
    fleet: &mut Fleet,
    files: &HostFiles,
    reports: &[HostReport],
    dir: &Path,
    timeout: Duration,
    attempt: Option<&str>,
) -> Vec<HostOutcome> {
    fleet.on_each(
        |t| files.contains_key(&(t.stage.clone(), t.host.clone())),
        |m| {
            let (stage, host) = (m.target().stage.clone(), m.host().to_string());
            let report = reports.iter().find(|r| r.stage == stage && r.host == host);
            let result = match report.map(|r| &r.result) {
                Some(Ok(_)) => {
                    let mine = &files[&(stage.clone(), host.clone())];
                    write_on_host(m, dir, mine, timeout, attempt)
                }
                Some(Err(e)) => Err(HostWriteError::Host(e.clone())),
                None => Err(HostWriteError::Host(HostError::Ssh(
                    "its status was not read".to_string(),
                ))),
            };
            HostOutcome {
                stage,
                host,
                result,
            }
        },
    )
}

/// Write `bytes` to `dir/name` on this machine, creating `dir`: through a
/// temporary file in `dir` renamed into place, mode 0644; left alone when
/// the file already holds these bytes. True when written.
pub fn write_local(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<bool> {
    let path = dir.join(name);
    if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && fs::read(&path)? == bytes {
        return Ok(false);
    }
    create_dirs(dir)?;
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

    /// Write `files` into `dir` here, as a host's shell would run the
    /// commands (without sudo, under umask 077).
    fn run_here(dir: &Path, files: &[File]) -> Result<Written, HostWriteError> {
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
            dir,
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
        let w = run_here(&dir, &files).unwrap();
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
        let w = run_here(&dir, &files).unwrap();
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
        let w = run_here(&dir, &files).unwrap();
        assert_eq!((w.written.len(), w.unchanged.len()), (0, 2));
    }

    #[test]
    fn host_scripts_refuse_a_directory_in_the_way_and_leave_no_temporary() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("fastpath.svg")).unwrap();
        let e = run_here(root.path(), &[file("fastpath.svg", b"x")]).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot write the badges in `"),
            "{e}"
        );
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
}
