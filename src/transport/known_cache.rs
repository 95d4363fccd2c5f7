//! The known_hosts files of one run, each read and parsed once and shared
//! by every connection (the rules that read them are [`crate::openssh::known_hosts`]).

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{io_error, lock, SshTarget};
use crate::error::HostError;
use crate::openssh::known_hosts::{self, KnownHostsFile};

/// known_hosts files, each read and parsed the first time a connection
/// needs it, then shared by every connection of the run. A file a key is
/// recorded into (accept-new) is read again by the next connection.
#[derive(Default)]
pub struct KnownHostsCache {
    files: Mutex<HashMap<PathBuf, Arc<Mutex<Cached>>>>,
}

/// One path's state: not read yet, missing, or parsed.
#[derive(Default)]
enum Cached {
    #[default]
    Unread,
    Missing,
    Parsed(Arc<KnownHostsFile>),
}

impl KnownHostsCache {
    /// Every known_hosts file of `target` that exists, parsed: the user's
    /// files, then the global ones. A missing file lists no host; any
    /// other failure to read one refuses the host (never "key unknown",
    /// which accept-new would record), and is not remembered: the next
    /// connection tries again.
    pub fn files(&self, target: &SshTarget) -> Result<Vec<Arc<KnownHostsFile>>, HostError> {
        let mut files = Vec::new();
        for path in target.known_hosts.iter().chain(&target.global_known_hosts) {
            let slot = self.slot(path);
            // one reader per file; the others wait for its parse
            let mut cached = lock(&slot);
            if let Cached::Unread = *cached {
                *cached = read(target, path)?;
            }
            if let Cached::Parsed(file) = &*cached {
                files.push(Arc::clone(file));
            }
        }
        Ok(files)
    }

    /// Read `path` again on its next use: a key was written into it.
    pub fn forget(&self, path: &Path) {
        *lock(&self.slot(path)) = Cached::Unread;
    }

    fn slot(&self, path: &Path) -> Arc<Mutex<Cached>> {
        let mut files = lock(&self.files);
        Arc::clone(files.entry(path.to_path_buf()).or_default())
    }
}

/// `path`, read and parsed, for `target`'s messages.
fn read(target: &SshTarget, path: &Path) -> Result<Cached, HostError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Cached::Parsed(Arc::new(known_hosts::parse(path, &bytes)))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Cached::Missing),
        Err(e) => Err(io_error(
            &e,
            || format!("reading `{}`", path.display()),
            |e| HostError::KnownHostsUnreadable {
                host: target.alias.clone(),
                path: path.to_path_buf(),
                message: e.to_string(),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(alias: &str, host: &str, dir: &Path) -> SshTarget {
        SshTarget {
            known_hosts: vec![dir.join("missing"), dir.join("user")],
            global_known_hosts: vec![dir.join("global")],
            ..SshTarget::example(alias, host)
        }
    }

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    /// Each file is parsed once and shared; a forgotten one is read again,
    /// so a key recorded during the run is seen by the next connection.
    #[test]
    fn known_hosts_files_are_read_once_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let t = target("a", "10.0.0.1", dir.path());
        fs::write(dir.path().join("user"), format!("10.0.0.1 {KEY}\n")).unwrap();
        let cache = KnownHostsCache::default();
        let first = cache.files(&t).unwrap();
        assert_eq!(first.len(), 1, "the missing files list nothing");
        fs::write(dir.path().join("global"), format!("10.0.0.2 {KEY}\n")).unwrap();
        let second = cache.files(&t).unwrap();
        assert!(Arc::ptr_eq(&first[0], &second[0]), "parsed once");
        assert_eq!(second.len(), 1, "a missing file is remembered as missing");
        cache.forget(&dir.path().join("global"));
        let third = cache.files(&t).unwrap();
        assert_eq!(third.len(), 2);
        assert_eq!(third[1].lines_naming("10.0.0.2"), [1]);
    }

    /// A file that cannot be read refuses the host, and is tried again by
    /// the next connection rather than remembered.
    #[test]
    fn unreadable_known_hosts_refuse_and_are_retried() {
        let dir = tempfile::tempdir().unwrap();
        let t = target("a", "10.0.0.1", dir.path());
        fs::create_dir(dir.path().join("user")).unwrap();
        let cache = KnownHostsCache::default();
        let e = cache.files(&t).unwrap_err();
        assert!(matches!(e, HostError::KnownHostsUnreadable { .. }), "{e}");
        fs::remove_dir(dir.path().join("user")).unwrap();
        fs::write(dir.path().join("user"), format!("10.0.0.1 {KEY}\n")).unwrap();
        assert_eq!(cache.files(&t).unwrap().len(), 1);
    }
}
