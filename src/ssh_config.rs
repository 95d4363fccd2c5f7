//! Loading OpenSSH client configuration from disk: the user's file, the
//! system file and what they `Include`, each file's owner and permissions
//! checked as ssh checks them (asking the user and group databases
//! through [`crate::sys`]), and the local facts a resolution needs
//! ([`ResolveContext::of_this_process`]). The rules themselves (parsing,
//! keywords, values, `Host`/`Match` resolution, tokens, glob patterns) are
//! pure and live in [`crate::openssh`]; this module is their I/O edge.

use crate::openssh::config::{Item, ItemKind};
use crate::openssh::include::{
    compile_glob, glob_match, group_write_is_harmless, GlobItem, GroupFacts, MAX_INCLUDE_DEPTH,
};
use crate::openssh::parse::parse_items;
use crate::openssh::tokens::expand_tilde;
use std::path::{Path, PathBuf};

pub use crate::openssh::kex;
pub use crate::openssh::{
    is_known_keyword, known_keywords, parse_jump_list, HostSettings, JumpHost, ResolveContext,
    SshConfigError, SshConfigFile, SshConfigWarning, StrictHostKeyChecking,
};

/// The system-wide client configuration, read after the user's.
pub const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

impl ResolveContext {
    /// The facts of this process: `home`, the account `local_user`, the
    /// uid, `gethostname` and the environment.
    pub fn of_this_process(home: &Path, local_user: &str) -> ResolveContext {
        ResolveContext {
            home: home.to_path_buf(),
            local_user: local_user.to_string(),
            uid: rustix::process::getuid().as_raw(),
            local_host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            env: std::env::vars().collect(),
            user: None,
            port: None,
            proxy_jump: None,
        }
    }
}

impl SshConfigFile {
    /// Reads and parses the user's config at `path` and then the system
    /// config at `system` (each optional: a missing file is an empty one,
    /// as for ssh; pass `None` to read no system file, as `ssh -F` does),
    /// replacing each `Include` with the files it names: relative names
    /// are taken from `home/.ssh/` (from `/etc/ssh/` in the system file),
    /// `~` means `home`, `*` and `?` expand like a shell glob, and names
    /// that match nothing are skipped, as ssh does.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Read`] when a file cannot be read (see
    /// [`SshConfigError::is_not_found`] for a missing user file),
    /// [`SshConfigError::Permissions`] when the user's file or any
    /// included file is owned by another user (not root) or writable by
    /// group or others, as ssh checks for `~/.ssh/config` (the system file
    /// itself is not checked, its includes are),
    /// [`SshConfigError::Invalid`] for a bad line in any of the files, and
    /// [`SshConfigError::IncludeTooDeep`] for runaway `Include` chains.
    pub fn load_with_system(
        path: &Path,
        system: Option<&Path>,
        home: &Path,
    ) -> Result<SshConfigFile, SshConfigError> {
        let file = Self::load_user_file(path, home, true)?;
        match system {
            Some(system) => file.with_system(system, home),
            None => Ok(file),
        }
    }

    /// [`load_with_system`](Self::load_with_system) with no system file:
    /// only the user's `path` (`~/.ssh/config`) and what it includes.
    ///
    /// # Errors
    ///
    /// As for [`load_with_system`](Self::load_with_system).
    pub fn load(path: &Path, home: &Path) -> Result<SshConfigFile, SshConfigError> {
        Self::load_with_system(path, None, home)
    }

    /// Like [`load`](Self::load), for a file named explicitly (ssh's `-F`,
    /// deployer.ini's `ssh_config`): as ssh, its own owner and permissions
    /// are not checked, those of the files it includes are.
    ///
    /// # Errors
    ///
    /// As for [`load_with_system`](Self::load_with_system).
    ///
    /// Run as root through sudo, it is checked too: it decides where
    /// deployer connects as root, so only root may have written it.
    pub fn load_named(path: &Path, home: &Path) -> Result<SshConfigFile, SshConfigError> {
        Self::load_user_file(path, home, crate::operator::sudo_uid().is_some())
    }

    fn load_user_file(
        path: &Path,
        home: &Path,
        check_permissions: bool,
    ) -> Result<SshConfigFile, SshConfigError> {
        let mut warnings = Vec::new();
        let user = load_file(path, home, true, check_permissions, 0, &mut warnings)?;
        Ok(SshConfigFile {
            files: vec![user],
            warnings,
        })
    }

    /// Adds the system file (or another file read after the others) to an
    /// already loaded config; a missing file is an empty one.
    ///
    /// # Errors
    ///
    /// As for [`load_with_system`](Self::load_with_system).
    pub fn with_system(mut self, system: &Path, home: &Path) -> Result<Self, SshConfigError> {
        match load_file(system, home, false, false, 0, &mut self.warnings) {
            Ok(items) => self.files.push(items),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        Ok(self)
    }
}

/// Reads one file and, recursively, what it includes (whose owner and
/// permissions are always checked, as ssh does).
pub(crate) fn load_file(
    path: &Path,
    home: &Path,
    user_file: bool,
    check_permissions: bool,
    depth: usize,
    warnings: &mut Vec<SshConfigWarning>,
) -> Result<Vec<Item>, SshConfigError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let read_error = |source| SshConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    if check_permissions {
        // The file as opened (fstat), so it cannot be swapped in between.
        let meta = file.metadata().map_err(read_error)?;
        let me = rustix::process::getuid().as_raw();
        let owner_ok = meta.uid() == 0 || meta.uid() == me;
        let mode_ok = meta.mode() & 0o002 == 0
            && (meta.mode() & 0o020 == 0
                || group_write_is_harmless(&group_facts(meta.gid(), meta.uid()), me));
        if !owner_ok || !mode_ok {
            return Err(SshConfigError::Permissions {
                path: path.to_path_buf(),
                uid: meta.uid(),
                mode: meta.mode() & 0o7777,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_error)?;
    let mut items = parse_items(&text, path, warnings)?;
    for item in &mut items {
        let ItemKind::Include(names, files) = &mut item.kind else {
            continue;
        };
        if depth + 1 >= MAX_INCLUDE_DEPTH {
            return Err(SshConfigError::IncludeTooDeep {
                path: item.path.clone(),
                line: item.number,
            });
        }
        for name in names.iter() {
            if name.starts_with('~') && !user_file {
                return Err(SshConfigError::Invalid {
                    path: item.path.clone(),
                    line: item.number,
                    message: format!("bad include path `{name}`: `~` only in the user's file"),
                });
            }
            let base = if user_file {
                home.join(".ssh")
            } else {
                PathBuf::from("/etc/ssh")
            };
            for included in expand_include(name, home, &base) {
                match load_file(&included, home, user_file, true, depth + 1, warnings) {
                    Ok(f) => files.push(f),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(items)
}

/// Asks the system's user and group databases (NSS, as ssh does, through
/// [`crate::sys`]) about group `gid` and the file owner `owner`.
pub(crate) fn group_facts(gid: u32, owner: u32) -> GroupFacts {
    GroupFacts {
        members: crate::sys::group_members(gid),
        primary_of: crate::sys::primary_members(gid),
        owner_name: crate::sys::user_name(owner),
    }
}

/// The files an `Include` argument names, as ssh's `glob(3)` finds them:
/// each path component with a `*`, `?` or `[` set is matched against its
/// directory's entries (see [`compile_glob`] and [`glob_match`]), the
/// others are taken as written (backslashes removed); only regular files
/// are kept, sorted byte by byte as glob(3) sorts them.
pub(crate) fn expand_include(name: &str, home: &Path, base: &Path) -> Vec<PathBuf> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let path = match expand_tilde(name, home) {
        Ok(p) => PathBuf::from(p),
        Err(_) => return Vec::new(),
    };
    let path = if path.is_absolute() {
        path
    } else {
        base.join(path)
    };
    let mut candidates = vec![PathBuf::new()];
    for component in path.components() {
        let Some(items) = compile_glob(component.as_os_str().as_bytes()) else {
            return Vec::new();
        };
        let literal: Option<Vec<u8>> = items
            .iter()
            .map(|item| match item {
                GlobItem::Byte { byte, .. } => Some(*byte),
                _ => None,
            })
            .collect();
        if let Some(literal) = literal {
            for c in &mut candidates {
                c.push(OsStr::from_bytes(&literal));
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &candidates {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            // glob(3) reads `.` and `..` too, which `read_dir` leaves out.
            let dots = [".", ".."].map(std::ffi::OsString::from);
            let names = entries.flatten().map(|e| e.file_name()).chain(dots);
            for file_name in names {
                if glob_match(&items, file_name.as_bytes()) {
                    next.push(dir.join(&file_name));
                }
            }
        }
        candidates = next;
    }
    candidates.retain(|p| p.is_file());
    candidates.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openssh::tests::with_home;

    #[test]
    fn match_exec_in_a_block_that_does_not_apply_is_not_refused() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(
            ssh.join("vpn"),
            "Match exec \"test -e /run/vpn\"\n  Port 1\n",
        )
        .unwrap();
        std::fs::write(
            ssh.join("config"),
            "Host office-*\n  Include vpn\nHost *\n  User u\n",
        )
        .unwrap();
        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        let cx = with_home(home.path());
        assert_eq!(file.resolve("web", &cx).unwrap().user.as_deref(), Some("u"));
        assert!(file.resolve("office-1", &cx).is_err());
    }

    #[test]
    fn load_splices_includes_under_their_host_block() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("config.d")).unwrap();
        std::fs::write(
            ssh.join("config"),
            "Host *.ooni.org\n  Include config.d/*.conf\nHost *\n  User fallback\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/a.conf"), "Port 2222\nMatch all\n").unwrap();
        std::fs::write(
            ssh.join("config.d/b.conf"),
            "Host ams-*\n  User ams\nHost *\n  IdentityFile ~/.ssh/ooni\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/ignored.txt"), "User wrong\n").unwrap();

        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        let ams = file
            .resolve("ams-pg.ooni.org", &with_home(home.path()))
            .unwrap();
        assert_eq!(ams.port, Some(2222));
        assert_eq!(ams.user.as_deref(), Some("ams"));
        assert_eq!(ams.identity_files, vec![ssh.join("ooni")]);

        let fsn = file
            .resolve("fsn.ooni.org", &with_home(home.path()))
            .unwrap();
        assert_eq!(fsn.user.as_deref(), Some("fallback"));
        assert_eq!(fsn.port, Some(2222));

        // Included lines do not escape the Host block that included them.
        let other = file
            .resolve("example.com", &with_home(home.path()))
            .unwrap();
        assert_eq!(other.port, None);
        assert!(other.identity_files.is_empty());

        // `Match all` in an included file does not escape it either.
        assert!(file.warnings().is_empty());
    }

    #[test]
    fn files_others_can_write_are_refused_except_a_named_top_file() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let config = ssh.join("config");
        let part = ssh.join("part");
        std::fs::write(&config, format!("Include {}\n", part.display())).unwrap();
        std::fs::write(&part, "User me\n").unwrap();
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(&config, 0o644);
        mode(&part, 0o600);
        assert!(SshConfigFile::load(&config, home.path()).is_ok());

        mode(&config, 0o666);
        let err = SshConfigFile::load(&config, home.path()).unwrap_err();
        assert!(
            matches!(&err, SshConfigError::Permissions { path, mode: 0o666, .. } if *path == config),
            "{err}"
        );
        // Named explicitly (ssh -F), the file itself is not checked...
        assert!(SshConfigFile::load_named(&config, home.path()).is_ok());
        // ...but what it includes is, and so are the system file's includes.
        mode(&part, 0o606);
        for err in [
            SshConfigFile::load_named(&config, home.path()).unwrap_err(),
            SshConfigFile::default()
                .with_system(&config, home.path())
                .unwrap_err(),
        ] {
            assert!(
                matches!(&err, SshConfigError::Permissions { path, mode: 0o606, .. } if *path == part),
                "{err}"
            );
        }
        assert!(
            err.to_string().contains("; `chown` it to yourself"),
            "{err}"
        );
    }

    #[test]
    fn load_reports_missing_files_and_include_loops() {
        let home = tempfile::tempdir().unwrap();
        let missing = SshConfigFile::load(&home.path().join("nope"), home.path()).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");

        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("config"), "Include config\n").unwrap();
        let err = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap_err();
        assert!(
            matches!(err, SshConfigError::IncludeTooDeep { line: 1, .. }),
            "{err}"
        );

        // A missing include is skipped, as ssh does.
        std::fs::write(ssh.join("config"), "Include absent\nUser me\n").unwrap();
        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        assert_eq!(
            file.resolve("h", &with_home(home.path()))
                .unwrap()
                .user
                .as_deref(),
            Some("me")
        );
    }

    #[test]
    fn include_glob_classes_select_files_in_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["a1", "a2", "ab", ".a3", "b1"] {
            std::fs::write(d.join(name), "").unwrap();
        }
        for sub in ["s-", "s"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            std::fs::write(d.join(sub).join("x"), "").unwrap();
        }
        std::fs::create_dir_all(d.join("a4")).unwrap();
        let found = |pattern: &str| -> Vec<String> {
            expand_include(pattern, d, d)
                .iter()
                .map(|p| p.strip_prefix(d).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(found("a[0-9]"), ["a1", "a2"]);
        assert_eq!(found("[!b]*"), ["a1", "a2", "ab"]);
        assert_eq!(found(".a[0-9]"), [".a3"]);
        // strcmp order: `s-/x` before `s/x`.
        assert_eq!(found("s*/x"), ["s-/x", "s/x"]);
    }
}
