//! Host keys: which algorithms to offer first, the decision on the key a
//! host offers (as OpenSSH would with the known_hosts files, see
//! [`crate::openssh::known_hosts`]), and recording a new key under accept-new.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ssh2::{MethodType, Session};

use crate::error::HostError;
use crate::local_file;
use crate::openssh::known_hosts::{self, HostNames, KnownHostsFile, Verdict};
use crate::transport::known_cache::KnownHostsCache;
use crate::transport::{io_error, HostKeyPolicy, SshTarget};

/// Host key algorithms to offer, best first: those of the key types that
/// known_hosts lists for the host first, then the others, as OpenSSH
/// orders them (`order_hostkeyalgs`). A host known only by its ECDSA key
/// thus negotiates ECDSA, and one that no longer offers the known type
/// shows up as changed, as with `ssh`.
pub fn host_key_preference(known_types: &[String]) -> String {
    const ORDER: [(&str, &str); 5] = [
        ("ssh-ed25519", "ssh-ed25519"),
        ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
        ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
        ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
        ("ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"),
    ];
    let known = |t: &str| known_types.iter().any(|k| k == t);
    let first = ORDER.iter().filter(|(t, _)| known(t));
    let last = ORDER.iter().filter(|(t, _)| !known(t));
    first
        .chain(last)
        .map(|(_, algs)| *algs)
        .collect::<Vec<_>>()
        .join(",")
}

/// The names `target`'s key is looked up under in known_hosts.
pub(super) fn host_names(target: &SshTarget) -> HostNames {
    HostNames::new(
        &target.host_name,
        target.port,
        target.host_key_alias.as_deref(),
    )
}

/// Before the handshake: read `target`'s known_hosts files (through the
/// run's `known`) and offer the host-key algorithms of the key types they
/// list for it first. Returns the files, for [`check_host_key`] after the
/// handshake.
pub fn prefer_known_host_keys(
    session: &Session,
    target: &SshTarget,
    known: &KnownHostsCache,
) -> Result<Vec<Arc<KnownHostsFile>>, HostError> {
    let files = known.files(target)?;
    let types = known_hosts::known_key_types(&files, &host_names(target).primary);
    // An algorithm name libssh2 lacks is dropped by it; an error here only
    // means the defaults stay, which the key check still guards.
    let _ = session.method_pref(MethodType::HostKey, &host_key_preference(&types));
    Ok(files)
}

/// After the handshake: decide on the key the host offered, as OpenSSH
/// would with `files` ([`known_hosts::check`]); under accept-new, record
/// the key of a host no line names (and have `known` read that file
/// again).
pub fn check_host_key(
    session: &Session,
    target: &SshTarget,
    files: &[Arc<KnownHostsFile>],
    known: &KnownHostsCache,
) -> Result<(), HostError> {
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| HostError::Ssh("the host sent no host key".to_string()))?;
    let key_type = known_hosts::blob_key_type(blob)
        .unwrap_or("unknown")
        .to_string();
    let fingerprint = known_hosts::fingerprint(blob);
    let host = target.alias.clone();
    let names = host_names(target);
    // where accept-new writes: the first user file, as with OpenSSH (with
    // none, nothing is recorded)
    let primary = target.known_hosts.first();
    match known_hosts::check(files, &names, blob) {
        Verdict::Match { .. } => Ok(()),
        Verdict::Revoked { file, line } => Err(HostError::HostKeyRevoked {
            host,
            key_type,
            fingerprint,
            known_hosts: file,
            line,
        }),
        Verdict::Changed { known } => Err(HostError::HostKeyChanged {
            host,
            key_type,
            fingerprint,
            known,
        }),
        Verdict::CertAuthority { file, line } => Err(HostError::HostKeyCertAuthority {
            host,
            key_type,
            fingerprint,
            known_hosts: file,
            line,
        }),
        Verdict::Unknown => match (target.policy, primary) {
            (HostKeyPolicy::AcceptNew, Some(path)) => {
                let recorded = record_host_key(target, &names.primary, blob, path);
                known.forget(path);
                recorded
            }
            (HostKeyPolicy::AcceptNew, None) => Err(HostError::HostKeyNotRecorded {
                host,
                known_hosts: PathBuf::from("UserKnownHostsFile"),
                message: "no user known_hosts file is configured".to_string(),
            }),
            (HostKeyPolicy::Strict, _) => Err(HostError::HostKeyUnknown {
                host,
                key_type,
                fingerprint,
                known_hosts: primary
                    .or(target.global_known_hosts.first())
                    .cloned()
                    .unwrap_or_default(),
            }),
        },
    }
}

/// accept-new: append `blob` for `name` to `path`, hashed when
/// `HashKnownHosts yes`.
pub(super) fn record_host_key(
    target: &SshTarget,
    name: &str,
    blob: &[u8],
    path: &Path,
) -> Result<(), HostError> {
    let refuse = |message: String| HostError::HostKeyNotRecorded {
        host: target.alias.clone(),
        known_hosts: path.to_path_buf(),
        message,
    };
    // As OpenSSH: a name that would not read back as itself is not written
    // (and an unknown key that cannot be recorded is refused).
    let names = [
        Some(("host name", target.host_name.as_str())),
        target
            .host_key_alias
            .as_deref()
            .map(|a| ("HostKeyAlias", a)),
    ];
    if let Some((what, bad)) = names
        .into_iter()
        .flatten()
        .find(|(_, n)| !known_hosts::recordable(n))
    {
        return Err(refuse(format!(
            "the {what} `{}` cannot be written into a known_hosts file: a name recorded \
             there has only letters, digits and `.-_:%`, so nothing else is written, whatever \
             the configuration says (check `HostName` and `HostKeyAlias` in the ssh \
             configuration)",
            crate::text::one_line(bad)
        )));
    }
    let mut salt = [0u8; 20];
    if target.hash_known_hosts {
        fill_random(&mut salt).map_err(|e| refuse(format!("no random salt: {e}")))?;
    }
    let line = known_hosts::entry_line(name, blob, target.hash_known_hosts.then_some(&salt[..]))
        .ok_or_else(|| refuse("the host key does not name its type".to_string()))?;
    append_known_host(path, &line).map_err(|e| {
        io_error(
            &e,
            || format!("recording the new host key in `{}`", path.display()),
            |e| refuse(e.to_string()),
        )
    })
}

pub(super) fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        filled +=
            rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    Ok(())
}

/// Append `line` to the known_hosts file `path` in one `O_APPEND` write
/// (which lands whole at the end, beside writers such as `ssh` that take
/// no lock), under an exclusive `flock` among deployer's own writers, so
/// that the check of what the file holds and the write are one step.
/// A file whose last line lacks its newline gets one first, so the new
/// line stays a line of its own.
///
/// The file is opened as [`local_file::open_append`] opens files (no
/// final symbolic link, a directory only the user and root can write),
/// and nothing is appended to a file with a line that is not a known_hosts
/// line ([`known_hosts::foreign_line`]): it may be another file named by
/// mistake or by a hostile configuration, such as a shell's start-up file.
pub fn append_known_host(path: &Path, line: &str) -> std::io::Result<()> {
    local_file::append_line(path, 0o600, line.as_bytes(), |mut f| {
        let mut held = Vec::new();
        f.read_to_end(&mut held)?;
        match known_hosts::foreign_line(&held) {
            None => Ok(()),
            Some(number) => Err(std::io::Error::other(format!(
                "line {number} of `{}` is not a known_hosts line, so it may not be a known_hosts \
                 file at all: nothing is appended to it (check `known_hosts` in deployer.ini and \
                 `UserKnownHostsFile` in the ssh configuration, or remove that line)",
                path.display()
            ))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn target(dir: &Path) -> SshTarget {
        SshTarget {
            port: 2222,
            known_hosts: vec![dir.join("missing"), dir.join("user")],
            global_known_hosts: vec![dir.join("global")],
            ..SshTarget::example("prod-1", "10.0.0.1")
        }
    }

    /// Every file is read, the global ones too, as bytes; a missing one
    /// is none; one that cannot be read refuses the host.
    #[test]
    fn known_hosts_files_are_read_as_bytes_and_unreadable_ones_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        fs::write(dir.path().join("user"), b"# caf\xe9\n").unwrap();
        fs::write(dir.path().join("global"), b"").unwrap();
        let files = KnownHostsCache::default().files(&t).unwrap();
        let paths: Vec<&Path> = files.iter().map(|f| f.path()).collect();
        assert_eq!(paths, [dir.path().join("user"), dir.path().join("global")]);

        fs::create_dir(dir.path().join("missing")).unwrap();
        let e = KnownHostsCache::default().files(&t).unwrap_err();
        assert!(matches!(e, HostError::KnownHostsUnreadable { .. }), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains(&format!("`{}`", dir.path().join("missing").display()))
                && shown.contains("prod-1"),
            "{shown}"
        );
    }

    /// A known_hosts line for `name` with an Ed25519 key told apart by `n`.
    fn key_line(name: &str, n: u8) -> String {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[n; 32]);
        known_hosts::entry_line(name, &blob, None).unwrap()
    }

    /// Appending gives a file without a final newline one first.
    #[test]
    fn recorded_keys_are_lines_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".ssh/known_hosts");
        let (a, b, c) = (key_line("a", 1), key_line("b", 2), key_line("c", 3));
        append_known_host(&path, &a).unwrap();
        fs::write(&path, a.trim_end()).unwrap();
        append_known_host(&path, &b).unwrap();
        append_known_host(&path, &c).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{a}{b}{c}"));
    }

    /// A regression test for a checkout whose deployer.ini pointed
    /// `known_hosts` at a shell's start-up file: nothing is appended to a
    /// file with a line that is not a known_hosts line, nor through a
    /// symbolic link.
    #[test]
    fn keys_are_never_appended_to_a_file_that_is_not_a_known_hosts_file() {
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join(".bashrc");
        let text = "# ~/.bashrc\nexport PATH=$PATH:~/bin\n";
        fs::write(&rc, text).unwrap();
        let e = append_known_host(&rc, &key_line("web", 1)).unwrap_err();
        assert!(
            e.to_string().contains("line 2 of") && e.to_string().contains("not a known_hosts line"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&rc).unwrap(), text);

        let known = dir.path().join("known_hosts");
        std::os::unix::fs::symlink(&rc, &known).unwrap();
        let e = append_known_host(&known, &key_line("web", 1)).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&rc).unwrap(), text);
    }

    #[test]
    fn revoked_keys_name_their_line() {
        let e = HostError::HostKeyRevoked {
            host: "prod-1".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:abc".into(),
            known_hosts: PathBuf::from("/etc/ssh/ssh_known_hosts"),
            line: 3,
        };
        assert_eq!(
            e.to_string(),
            "host key for `prod-1` is REVOKED: it offered ssh-ed25519 SHA256:abc, which \
             /etc/ssh/ssh_known_hosts:3 marks `@revoked`"
        );
    }

    /// Every resolved address is tried, in order, until one answers: a
    /// first address that refuses does not end the attempt, and when all
    /// fail, the error names each.
    #[test]
    fn host_key_preference_puts_known_types_first() {
        assert_eq!(
            host_key_preference(&["ecdsa-sha2-nistp256".into()]),
            "ecdsa-sha2-nistp256,ssh-ed25519,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,\
             rsa-sha2-512,rsa-sha2-256,ssh-rsa"
        );
        assert!(
            host_key_preference(&["ssh-rsa".into(), "ssh-ed25519".into()])
                .starts_with("ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa,ecdsa")
        );
        let all = host_key_preference(&[]);
        assert!(all.starts_with("ssh-ed25519,ecdsa"), "{all}");
        // a type we cannot negotiate leaves the usual order
        assert_eq!(
            host_key_preference(&["sk-ssh-ed25519@openssh.com".into()]),
            all
        );
    }
}
