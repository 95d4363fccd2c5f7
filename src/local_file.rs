//! Files deployer writes on this machine (the local history, known_hosts,
//! badges under `--output`): where it agrees to write, and how it opens
//! them so that nobody else can redirect the write.
//!
//! A file is opened without following a final symbolic link
//! (`O_NOFOLLOW`), and only in a directory that nobody but the user
//! running deployer (the person behind sudo too) and root can write to, as
//! OpenSSH checks its own files: whoever can write the directory can put a
//! link or another file in the file's place. Nothing here decides what is
//! written; the callers own their formats. This module must not touch
//! hosts, and is the one owner of these rules for local writes, and of the
//! durable append ([`append_line`]) that the history and known_hosts use.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use crate::operator;

/// Why a directory with `owner` and `mode` must not hold files deployer
/// writes, or `None` when it may: it must be owned by one of `own` (root,
/// the user) and writable by nobody else, sticky or not (a sticky
/// directory such as `/tmp` still lets anyone create the name first).
pub fn unsafe_dir(owner: u32, mode: u32, own: &[u32]) -> Option<String> {
    let mut problems = Vec::new();
    if !own.contains(&owner) {
        problems.push(format!("it is owned by uid {owner}, neither you nor root"));
    }
    if let Some(writers) = operator::others_can_write(mode) {
        problems.push(writers.to_string());
    }
    (!problems.is_empty()).then(|| problems.join(", and "))
}

/// Refuse `dir` as a place to write when [`unsafe_dir`] says so, with an
/// error (kind `PermissionDenied`) that names it and gives the fix.
///
/// # Errors
///
/// When `dir` cannot be examined, or is not safe to write in.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    judge_dir(dir, meta.uid(), meta.mode())
}

/// [`check_dir`] of what `dir` was found to be.
fn judge_dir(dir: &Path, owner: u32, mode: u32) -> io::Result<()> {
    match unsafe_dir(owner, mode, &operator::own_uids()) {
        None => Ok(()),
        Some(why) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to write in the directory `{}` (mode {:04o}): {why}; whoever can \
                 write it can put a link to another file in this file's place. Use a \
                 directory only you (or root) can write, or fix this one with `chmod go-w {}`",
                dir.display(),
                mode & 0o7777,
                crate::command::quote(&dir.display().to_string())
            ),
        )),
    }
}

/// The directory `path` is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Open `path` to append to it, readable too, creating it with `mode`
/// when it is missing; `true` when this call created it. Its directory
/// must pass [`check_dir`], checked on the directory as opened, and the
/// file is opened in that very directory (`openat`), so that what was
/// checked is where the file is; a final symbolic link is not followed
/// (the open fails), and anything but a regular file is refused.
///
/// # Errors
///
/// When the directory is unsafe, the name is a symbolic link or not a
/// regular file, or the file cannot be opened.
pub fn open_append(path: &Path, mode: u32) -> io::Result<(File, bool)> {
    use rustix::fs::{Mode, OFlags};
    let dir = parent_dir(path);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` does not name a file", path.display()),
        )
    })?;
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&dir_fd)?;
    judge_dir(dir, st.st_uid, st.st_mode)?;
    let flags =
        OFlags::RDWR | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let open = |extra: OFlags| {
        rustix::fs::openat(&dir_fd, name, flags | extra, Mode::from_raw_mode(mode))
            .map(File::from)
            .map_err(io::Error::from)
    };
    let (file, created) = match open(OFlags::CREATE | OFlags::EXCL) {
        Ok(f) => (f, true),
        // Someone else created it first (or it was there all along).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            (open(OFlags::CREATE).map_err(|e| link(path, e))?, false)
        }
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "`{}` is not a regular file",
            path.display()
        )));
    }
    Ok((file, created))
}

/// Append `line` to the file at `path` durably, as a line of its own.
///
/// Missing directories are created and a new file gets `mode`; the file is
/// opened as [`open_append`] opens files (no final symbolic link, a
/// directory only the user and root can write). Under an exclusive `flock`
/// among deployer's own writers, `vet` sees the file first (its position at
/// the start) and may refuse the append with an error, so that a check of
/// what the file holds and the write are one step. If the file's last line
/// lacks its newline (a crash, another program), one is written first. The
/// text then goes out in a single `O_APPEND` write, which lands whole at the
/// end even beside writers that take no lock (for a regular file it is one
/// `write(2)` unless the disk is full); the file is `fsync`ed, and so is
/// its directory when this call created the file.
///
/// # Errors
///
/// When the directory is unsafe, the file cannot be opened, locked, read or
/// written, or `vet` refuses; nothing is written then.
pub fn append_line(
    path: &Path,
    mode: u32,
    line: &[u8],
    vet: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir)?;
    let (file, created) = open_append(path, mode)?;
    let _lock = Flock::exclusive(&file)?;
    vet(&file)?;

    let mut text = Vec::with_capacity(line.len() + 1);
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1)?;
        if last[0] != b'\n' {
            text.push(b'\n');
        }
    }
    text.extend_from_slice(line);
    (&file).write_all(&text)?;
    file.sync_all()?;
    if created {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Prove that [`append_line`] could append to `path`, without writing:
/// create the missing directories and the file (with `mode`, its directory
/// entry made durable), open it as [`open_append`] does and take its lock.
///
/// # Errors
///
/// As [`append_line`], for the same reasons.
pub fn check_appendable(path: &Path, mode: u32) -> io::Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir)?;
    let (file, created) = open_append(path, mode)?;
    drop(Flock::exclusive(&file)?);
    if created {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// An exclusive `flock` on a file, released when dropped.
struct Flock<'a>(&'a File);

impl<'a> Flock<'a> {
    fn exclusive(file: &'a File) -> io::Result<Self> {
        use rustix::fs::{flock, FlockOperation};
        loop {
            match flock(file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(Flock(file)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Flock<'_> {
    fn drop(&mut self) {
        // Closing the file would release it anyway.
        let _ = rustix::fs::flock(self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// `O_NOFOLLOW` on a symbolic link fails with `ELOOP`: say what it means.
fn link(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "`{}` is a symbolic link, which deployer does not follow when it writes; \
                 remove the link (it may have been put there to redirect the write)",
                path.display()
            ),
        )
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn directories_only_the_user_and_root_can_write_are_safe() {
        let own = [0, 1000];
        assert_eq!(unsafe_dir(1000, 0o40755, &own), None);
        assert_eq!(unsafe_dir(0, 0o40700, &own), None);
        assert_eq!(unsafe_dir(0, 0o41755, &own), None);
        assert_eq!(
            unsafe_dir(1000, 0o42775, &own).as_deref(),
            Some("its group can write to it")
        );
        assert_eq!(
            unsafe_dir(0, 0o41777, &own).as_deref(),
            Some("its group and every other user can write to it")
        );
        assert_eq!(
            unsafe_dir(1001, 0o40757, &own).as_deref(),
            Some("it is owned by uid 1001, neither you nor root, and every other user can write to it")
        );
    }

    #[test]
    fn a_final_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let link_path = dir.path().join("log");
        std::os::unix::fs::symlink(&target, &link_path).unwrap();
        let e = open_append(&link_path, 0o644).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        // a dangling link is not followed into a new file either
        std::fs::remove_file(&target).unwrap();
        assert!(open_append(&link_path, 0o644).is_err());
        assert!(!target.exists());
    }

    /// The directory is checked as opened, and the file created in it:
    /// a link to an open directory, on the way, does not get around that.
    #[test]
    fn a_link_to_a_directory_others_can_write_is_refused_too() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let via = dir.path().join("via");
        std::os::unix::fs::symlink(&open, &via).unwrap();
        let e = open_append(&via.join("log"), 0o644).unwrap_err();
        assert!(e.to_string().contains("every other user can write"), "{e}");
        assert!(!open.join("log").exists());
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_append(&open.join("log"), 0o644).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("every other user can write"), "{e}");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        assert!(!open.join("log").exists());
        let (_, created) = open_append(&dir.path().join("log"), 0o644).unwrap();
        assert!(created);
        let (_, created) = open_append(&dir.path().join("log"), 0o644).unwrap();
        assert!(!created);
    }
    #[test]
    fn append_line_adds_whole_lines_and_a_missing_newline_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/deeper/log");
        append_line(&path, 0o600, b"one\n", |_| Ok(())).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // a crash (or another program) left the last line unterminated
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"torn").unwrap();
        append_line(&path, 0o600, b"two\n", |_| Ok(())).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntorn\ntwo\n");
    }

    /// What the vetting sees is the whole file, read from its start under
    /// the lock; when it refuses, nothing is written.
    #[test]
    fn append_line_writes_nothing_when_the_vetting_refuses() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "web ssh-ed25519 AAAA\nexport EVIL=1\n").unwrap();
        let mut seen = Vec::new();
        let e = append_line(&path, 0o600, b"db ssh-ed25519 BBBB\n", |mut f| {
            f.read_to_end(&mut seen)?;
            Err(io::Error::other("line 2 is not a known_hosts line"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "line 2 is not a known_hosts line");
        assert_eq!(seen, b"web ssh-ed25519 AAAA\nexport EVIL=1\n");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "web ssh-ed25519 AAAA\nexport EVIL=1\n"
        );
    }

    #[test]
    fn append_line_keeps_to_the_rules_of_open_append() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let link_path = dir.path().join("log");
        std::os::unix::fs::symlink(&target, &link_path).unwrap();
        let e = append_line(&link_path, 0o644, b"x\n", |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(append_line(&open.join("log"), 0o644, b"x\n", |_| Ok(())).is_err());
        assert!(check_appendable(&open.join("log"), 0o644).is_err());
        assert!(!open.join("log").exists());
    }

    #[test]
    fn check_appendable_creates_the_file_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/history.jsonl");
        check_appendable(&path, 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    /// Writers in many threads at once: every line arrives whole.
    #[test]
    fn concurrent_appends_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::thread::scope(|s| {
            for t in 0..8 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..25 {
                        let line = format!("{t}-{i}-{}\n", "x".repeat(5000));
                        append_line(path, 0o644, line.as_bytes(), |_| Ok(())).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 200);
        let mut names: Vec<&str> = lines
            .iter()
            .map(|l| {
                let (name, rest) = l.rsplit_once('-').unwrap();
                assert_eq!(rest, "x".repeat(5000), "a torn line");
                name
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 200);
    }
}
