//! Which keys to offer a host, and in what order: OpenSSH's order
//! (`pubkey_prepare` in its sshconnect2.c), decided from public keys alone.
//!
//! Pure: the caller reads the files and asks the agent; nothing here opens
//! a file or a socket. The public key of an `IdentityFile` is found as
//! OpenSSH finds it: the file itself when it is a public key, else the
//! `.pub` beside it, else the clear public part of an OpenSSH-format private
//! key (also present when the key is passphrase-protected).

use base64::Engine as _;

/// One authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The agent's key at this index (in the agent's order).
    Agent(usize),
    /// The identity file at this index (in the configured order).
    File(usize),
}

/// The attempts, in OpenSSH's order: agent keys that match a configured
/// identity file (in the agent's order), then the other agent keys unless
/// `identities_only`, then the identity files not already offered through
/// the agent (in the configured order). `agent` holds the agent's key
/// blobs; `files` each identity file's public key blob, if known.
pub fn order(agent: &[Vec<u8>], files: &[Option<Vec<u8>>], identities_only: bool) -> Vec<Attempt> {
    let mut file_used = vec![false; files.len()];
    let mut matched = Vec::new();
    let mut others = Vec::new();
    for (j, blob) in agent.iter().enumerate() {
        let found = files
            .iter()
            .enumerate()
            .position(|(i, f)| !file_used[i] && f.as_deref() == Some(blob.as_slice()));
        match found {
            Some(i) => {
                file_used[i] = true;
                matched.push(Attempt::Agent(j));
            }
            None if !identities_only => others.push(Attempt::Agent(j)),
            None => {}
        }
    }
    let rest = (0..files.len())
        .filter(|&i| !file_used[i])
        .map(Attempt::File);
    matched.into_iter().chain(others).chain(rest).collect()
}

/// Why a private key file owned by `owner` with `mode` must not be used
/// by a process of real uid `uid`, or `None` when it may.
///
/// OpenSSH's rule (`sshkey_perm_ok`): a key the user owns that group or
/// others can read or write is ignored ("UNPROTECTED PRIVATE KEY FILE");
/// one owned by another account (root's, read by a user) is not judged.
/// Run as root through sudo (`sudo`), a key must also be root's own: the
/// person behind sudo could otherwise choose what deployer logs in with
/// as root.
pub fn key_file_refusal(owner: u32, mode: u32, uid: u32, sudo: bool) -> Option<String> {
    if sudo && owner != 0 {
        return Some(format!(
            "owned by uid {owner}, not root: run as root through sudo, deployer uses only \
             key files root owns; `chown root` the file (and `chmod 600` it)"
        ));
    }
    (owner == uid && mode & 0o077 != 0).then(|| {
        format!(
            "UNPROTECTED PRIVATE KEY FILE: permissions {:04o} are too open, ssh ignores a \
             private key that others can access; `chmod 600` it",
            mode & 0o7777
        )
    })
}

/// The key blob of a public key file's text (`TYPE BASE64 [COMMENT]`), if
/// it is one.
pub fn public_key_blob(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let mut fields = line.split_whitespace();
    let key_type = fields.next()?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(fields.next()?)
        .ok()?;
    // the blob names its own type: a line that says otherwise is not a key
    (first_string(&blob)? == key_type.as_bytes()).then_some(blob)
}

const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END: &str = "-----END OPENSSH PRIVATE KEY-----";
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";

/// What a private key file's text says about the key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKeyInfo {
    /// The public key blob, when the format keeps it in the clear (the
    /// OpenSSH format does; PEM does not).
    pub public: Option<Vec<u8>>,
    /// Whether a passphrase is needed to use it.
    pub encrypted: bool,
}

/// The container of an OpenSSH-format private key, decoded: its cipher
/// and KDF names, how many keys it holds, the first public key blob (when
/// it holds one), and the bytes after that blob (the private section of a
/// one-key file).
struct OpensshKey {
    cipher: Vec<u8>,
    kdf: Vec<u8>,
    count: u32,
    public: Option<Vec<u8>>,
    rest: Vec<u8>,
}

/// The OpenSSH-format private key in `text`, if there is one.
fn openssh_key(text: &str) -> Option<OpensshKey> {
    let start = text.find(OPENSSH_BEGIN)?;
    let body = &text[start + OPENSSH_BEGIN.len()..];
    let body = &body[..body.find(OPENSSH_END)?];
    let b64: String = body.split_whitespace().collect();
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let mut rest = raw.strip_prefix(OPENSSH_MAGIC)?;
    let cipher = take_string(&mut rest)?.to_vec();
    let kdf = take_string(&mut rest)?.to_vec();
    let _kdf_options = take_string(&mut rest)?;
    let count = take_u32(&mut rest)?;
    let public = if count >= 1 {
        Some(take_string(&mut rest)?.to_vec())
    } else {
        None
    };
    Some(OpensshKey {
        cipher,
        kdf,
        count,
        public,
        rest: rest.to_vec(),
    })
}

/// Read a private key file's text; `None` when it is not a private key.
pub fn private_key_info(text: &[u8]) -> Option<PrivateKeyInfo> {
    let text = std::str::from_utf8(text).ok()?;
    if text.contains(OPENSSH_BEGIN) {
        let key = openssh_key(text)?;
        return Some(PrivateKeyInfo {
            public: key.public,
            encrypted: key.cipher != b"none",
        });
    }
    if text.contains("-----BEGIN ") && text.contains(" PRIVATE KEY-----") {
        return Some(PrivateKeyInfo {
            public: None,
            encrypted: text.contains("Proc-Type: 4,ENCRYPTED")
                || text.contains("BEGIN ENCRYPTED PRIVATE KEY"),
        });
    }
    None
}

/// The secret of an unencrypted Ed25519 key in OpenSSH's format (what
/// `ssh-keygen -t ed25519` writes without a passphrase): the 32-byte seed
/// and the public key blob. `None` for any other key, which libssh2 reads
/// itself. The private part must agree with the public one (the check
/// integers match, the key's public half is the blob's).
pub fn ed25519_secret(text: &[u8]) -> Option<([u8; 32], Vec<u8>)> {
    let key = openssh_key(std::str::from_utf8(text).ok()?)?;
    if key.cipher != b"none" || key.kdf != b"none" || key.count != 1 {
        return None;
    }
    let blob = key.public?;
    let mut rest = key.rest.as_slice();
    let mut private = take_string(&mut rest)?;
    let (check1, check2) = (take_u32(&mut private)?, take_u32(&mut private)?);
    if check1 != check2 || take_string(&mut private)? != b"ssh-ed25519" {
        return None;
    }
    let public = take_string(&mut private)?;
    let secret = take_string(&mut private)?;
    let mut in_blob = blob.as_slice();
    if take_string(&mut in_blob)? != b"ssh-ed25519"
        || take_string(&mut in_blob)? != public
        || public.len() != 32
        || secret.len() != 64
        || &secret[32..] != public
    {
        return None;
    }
    Some((secret[..32].try_into().ok()?, blob))
}

fn take_u32(rest: &mut &[u8]) -> Option<u32> {
    let (n, tail) = rest.split_first_chunk::<4>()?;
    *rest = tail;
    Some(u32::from_be_bytes(*n))
}

fn take_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u32(rest)?).ok()?;
    if rest.len() < len {
        return None;
    }
    let (s, tail) = rest.split_at(len);
    *rest = tail;
    Some(s)
}

fn first_string(blob: &[u8]) -> Option<&[u8]> {
    let mut rest = blob;
    take_string(&mut rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_others_can_read_are_refused_as_ssh_does() {
        // (owner, mode, uid, sudo, refused)
        let cases = [
            (1000, 0o100_600, 1000, false, None),
            (1000, 0o100_400, 1000, false, None),
            (
                1000,
                0o100_644,
                1000,
                false,
                Some("permissions 0644 are too open"),
            ),
            (
                1000,
                0o100_640,
                1000,
                false,
                Some("permissions 0640 are too open"),
            ),
            (
                0,
                0o100_604,
                0,
                false,
                Some("permissions 0604 are too open"),
            ),
            // another account's key is not judged by its mode
            (0, 0o100_644, 1000, false, None),
            // under sudo, root's own key only
            (0, 0o100_600, 0, true, None),
            (
                1000,
                0o100_600,
                0,
                true,
                Some("owned by uid 1000, not root"),
            ),
            (0, 0o100_640, 0, true, Some("UNPROTECTED PRIVATE KEY FILE")),
        ];
        for (owner, mode, uid, sudo, want) in cases {
            let got = key_file_refusal(owner, mode, uid, sudo);
            match want {
                None => assert_eq!(got, None, "{owner} {mode:o} {uid} {sudo}"),
                Some(w) => {
                    let got = got.unwrap_or_else(|| panic!("{owner} {mode:o} {uid} {sudo}"));
                    assert!(got.contains(w), "{got}");
                }
            }
        }
    }
    use Attempt::{Agent, File};

    fn key(n: u8) -> Vec<u8> {
        let mut blob = Vec::new();
        for part in [&b"ssh-ed25519"[..], &[n; 32][..]] {
            blob.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
            blob.extend_from_slice(part);
        }
        blob
    }

    #[test]
    fn agent_keys_named_by_identity_files_go_first() {
        let agent: Vec<Vec<u8>> = (1..=8).map(key).collect();
        // the right key is the agent's last, and the second file
        let files = vec![None, Some(key(8)), Some(key(42))];
        assert_eq!(
            order(&agent, &files, false),
            vec![
                Agent(7),
                Agent(0),
                Agent(1),
                Agent(2),
                Agent(3),
                Agent(4),
                Agent(5),
                Agent(6),
                File(0),
                File(2)
            ]
        );
    }

    #[test]
    fn identities_only_still_uses_matching_agent_keys() {
        let agent = vec![key(1), key(2), key(3)];
        let files = vec![Some(key(3)), Some(key(9))];
        assert_eq!(
            order(&agent, &files, true),
            vec![Agent(2), File(1)],
            "a passphrase-protected key loaded in the agent is used"
        );
        assert_eq!(order(&[], &files, true), vec![File(0), File(1)]);
        assert_eq!(order(&agent, &[], true), vec![]);
    }

    #[test]
    fn agent_order_is_kept_among_matching_keys() {
        // OpenSSH walks the agent's list, not the files'
        let agent = vec![key(2), key(1)];
        let files = vec![Some(key(1)), Some(key(2))];
        assert_eq!(order(&agent, &files, true), vec![Agent(0), Agent(1)]);
    }

    #[test]
    fn public_key_files_are_read() {
        let engine = &base64::engine::general_purpose::STANDARD;
        let line = format!("ssh-ed25519 {} me@there\n", engine.encode(key(5)));
        assert_eq!(public_key_blob(line.as_bytes()), Some(key(5)));
        let lying = format!("ssh-rsa {} me@there\n", engine.encode(key(5)));
        assert_eq!(public_key_blob(lying.as_bytes()), None);
        assert_eq!(public_key_blob(b"not a key"), None);
        assert_eq!(public_key_blob(b"\xff\xfe"), None);
    }

    /// The public part of OpenSSH-format private keys, plain or
    /// passphrase-protected, is the one `ssh-keygen -y` prints.
    #[test]
    fn private_keys_show_their_public_part() {
        let dir = tempfile::tempdir().unwrap();
        for (name, pass) in [("plain", ""), ("locked", "secret")] {
            let path = dir.path().join(name);
            let made = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", pass, "-C", "x", "-f"])
                .arg(&path)
                .status()
                .expect("ssh-keygen runs");
            assert!(made.success());
            let private = std::fs::read(&path).unwrap();
            let public = std::fs::read(path.with_extension("pub")).unwrap();
            let info = private_key_info(&private).expect("a private key");
            assert_eq!(info.public, public_key_blob(&public), "{name}");
            assert!(info.public.is_some());
            assert_eq!(info.encrypted, !pass.is_empty(), "{name}");
        }
        let pem = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nxx\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            private_key_info(pem),
            Some(PrivateKeyInfo {
                public: None,
                encrypted: true
            })
        );
        assert_eq!(private_key_info(b"ssh-ed25519 AAAA"), None);
    }

    /// The seed of a plain Ed25519 key gives the public key `ssh-keygen`
    /// wrote, and a signature that key verifies; a passphrase-protected
    /// key, another key type or a damaged file gives none.
    #[test]
    fn plain_ed25519_keys_give_their_seed() {
        use ed25519_dalek::{Signer, Verifier};
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, kind: &str, pass: &str| {
            let path = dir.path().join(name);
            let made = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", pass, "-C", "x", "-f"])
                .arg(&path)
                .status()
                .expect("ssh-keygen runs");
            assert!(made.success());
            (
                std::fs::read(&path).unwrap(),
                std::fs::read(path.with_extension("pub")).unwrap(),
            )
        };
        let (private, public) = make("plain", "ed25519", "");
        let (seed, blob) = ed25519_secret(&private).expect("a plain ed25519 key");
        assert_eq!(Some(blob.clone()), public_key_blob(&public));
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(&blob[blob.len() - 32..], key.verifying_key().as_bytes());
        let signature = key.sign(b"session data");
        let verifier =
            ed25519_dalek::VerifyingKey::from_bytes(blob[blob.len() - 32..].try_into().unwrap())
                .unwrap();
        assert!(verifier.verify(b"session data", &signature).is_ok());

        let (locked, _) = make("locked", "ed25519", "secret");
        assert_eq!(ed25519_secret(&locked), None);
        let (ecdsa, _) = make("ecdsa", "ecdsa", "");
        assert_eq!(ed25519_secret(&ecdsa), None);
        let text = String::from_utf8(private).unwrap();
        let damaged = text.replacen("AAAA", "AAAB", 1);
        assert_eq!(ed25519_secret(damaged.as_bytes()), None);
    }
}
