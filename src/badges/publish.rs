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

use base64::Engine;

use std::collections::BTreeMap;

use super::Board;
use crate::badge::{Badge, Fonts, PngError};
use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::fleet::{Fleet, Member};
use crate::matrix::HostReport;
use crate::package::PackageName;
use crate::transport::{self, Exec};

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

/// The script run (as root, through `sudo -n`) on a host. `$1` is the
/// directory, the other arguments the file names; stdin has one base64
/// line per file, in the same order. For each file it prints `written
/// NAME` or `unchanged NAME`. `mv -T` never moves a file into a directory
/// that sits where a badge should be: that is an error.
const HOST_SCRIPT: &str = r#"set -u
umask 022
dir=$1
shift
mkdir -p -- "$dir" || exit 1
tmp=
trap 'if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi' EXIT
for name in "$@"; do
    IFS= read -r line || { echo "deployer-badges: the contents of $name did not arrive" >&2; exit 1; }
    tmp=$(mktemp -- "$dir/.$name.XXXXXX") || exit 1
    printf '%s' "$line" | base64 -d > "$tmp" || exit 1
    if [ -f "$dir/$name" ] && [ ! -L "$dir/$name" ] && cmp -s -- "$tmp" "$dir/$name"; then
        rm -f -- "$tmp"
        tmp=
        echo "unchanged $name"
    else
        chmod 0644 -- "$tmp" || exit 1
        mv -f -T -- "$tmp" "$dir/$name" || exit 1
        tmp=
        echo "written $name"
    fi
done
"#;

/// The command that writes `names` into `dir` on a host (contents from
/// [`host_stdin`]).
pub fn host_command(dir: &Path, names: &[&str]) -> RemoteCommand {
    RemoteCommand::new("sh")
        .args(["-c", HOST_SCRIPT, "deployer-badges"])
        .arg(dir.to_string_lossy())
        .args(names)
        .sudo()
        .named("badges")
}

/// The stdin of [`host_command`]: each file's content as one base64 line.
pub fn host_stdin(files: &[File]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in files {
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(&f.bytes)
                .as_bytes(),
        );
        out.push(b'\n');
    }
    out
}

/// What [`host_command`] printed, checked against the names it was given:
/// every name must be accounted for, in order.
pub fn parse_host_output(stdout: &str, names: &[&str]) -> Result<Written, String> {
    let mut written = Written::default();
    let mut lines = stdout.lines();
    for name in names {
        match lines.next().and_then(|l| l.split_once(' ')) {
            Some(("written", n)) if n == *name => written.written.push(n.to_string()),
            Some(("unchanged", n)) if n == *name => written.unchanged.push(n.to_string()),
            _ => return Err(format!("it did not confirm `{name}`")),
        }
    }
    Ok(written)
}

/// Write `files` into `dir` on the host of `member`, over its session.
pub fn write_on_host(
    member: &mut Member,
    dir: &Path,
    files: &[File],
    timeout: Duration,
) -> Result<Written, HostWriteError> {
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let command = host_command(dir, &names);
    let stdin = host_stdin(files);
    let out = member.exec(Exec {
        command: &command,
        timeout,
        stdin: Some(&stdin),
        on_output: None,
    })?;
    let failed = |why: String| HostWriteError::Failed {
        dir: dir.display().to_string(),
        why,
    };
    if !out.success() {
        return Err(failed(transport::failure(&out)));
    }
    parse_host_output(&out.stdout, &names).map_err(failed)
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
) -> Vec<HostOutcome> {
    fleet.on_each(
        |t| files.contains_key(&(t.stage.clone(), t.host.clone())),
        |m| {
            let (stage, host) = (m.target().stage.clone(), m.host().to_string());
            let report = reports.iter().find(|r| r.stage == stage && r.host == host);
            let result = match report.map(|r| &r.result) {
                Some(Ok(_)) => {
                    let mine = &files[&(stage.clone(), host.clone())];
                    write_on_host(m, dir, mine, timeout)
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
    fs::create_dir_all(dir)?;
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

    /// Run the host command here, as a host's shell would (without sudo).
    fn run_here(dir: &Path, files: &[File]) -> (i32, String, String) {
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        crate::command::run_here(&host_command(dir, &names), &host_stdin(files))
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn host_script_writes_atomically_with_mode_0644_and_skips_unchanged() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("www/badges");
        let files = [
            file("fastpath.svg", b"<svg>1</svg>"),
            file("ooni-api.svg", b"<svg>\n2 &amp; 'x'\n</svg>\n"),
        ];
        let (status, out, err) = run_here(&dir, &files);
        assert_eq!(status, 0, "{err}");
        let names = ["fastpath.svg", "ooni-api.svg"];
        let w = parse_host_output(&out, &names).unwrap();
        assert_eq!(w.written, names);
        for f in &files {
            assert_eq!(fs::read(dir.join(&f.name)).unwrap(), f.bytes);
            // the umask of the caller (077) does not reach the badge
            assert_eq!(mode(&dir.join(&f.name)), 0o644);
        }
        assert_eq!(mode(&dir), 0o755);
        let before = fs::metadata(dir.join("fastpath.svg"))
            .unwrap()
            .modified()
            .unwrap();
        // again, one changed: only that one is written
        let files = [
            file("fastpath.svg", b"<svg>1</svg>"),
            file("ooni-api.svg", b"<svg>3</svg>"),
        ];
        let (status, out, err) = run_here(&dir, &files);
        assert_eq!(status, 0, "{err}");
        let w = parse_host_output(&out, &names).unwrap();
        assert_eq!(w.unchanged, ["fastpath.svg"]);
        assert_eq!(w.written, ["ooni-api.svg"]);
        assert_eq!(fs::read(dir.join("ooni-api.svg")).unwrap(), b"<svg>3</svg>");
        let after = fs::metadata(dir.join("fastpath.svg"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        // no temporary file is left behind
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[test]
    fn host_script_refuses_a_directory_in_the_way_and_leaves_no_temporary() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("fastpath.svg")).unwrap();
        let (status, _, err) = run_here(root.path(), &[file("fastpath.svg", b"x")]);
        assert_ne!(status, 0);
        assert!(!err.is_empty());
        assert!(root.path().join("fastpath.svg").is_dir());
        let left: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn host_output_must_confirm_every_name_in_order() {
        let names = ["a.svg", "b.svg"];
        assert!(parse_host_output("written a.svg\n", &names).is_err());
        assert!(parse_host_output("written b.svg\nwritten a.svg\n", &names).is_err());
        assert!(parse_host_output("written a.svg\nremoved b.svg\n", &names).is_err());
        let w = parse_host_output("unchanged a.svg\nwritten b.svg\n", &names).unwrap();
        assert_eq!((w.unchanged.len(), w.written.len()), (1, 1));
    }

    #[test]
    fn host_command_quotes_the_directory() {
        let c = host_command(Path::new("/srv/my badges/$(reboot)"), &["a.svg"]);
        assert!(c.as_str().starts_with("sudo -n sh -c "));
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
