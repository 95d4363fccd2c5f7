//! known_hosts files and the trust OpenSSH gives them: which key a host may
//! offer, decided from the files' bytes (pure).
//!
//! The rules are OpenSSH's (`hostfile.c`, `match.c`, `sshconnect.c`):
//! - a line is `[@marker] NAMES TYPE BASE64 [comment]`, fields split by
//!   spaces and tabs; comments (`#`), blank lines and lines that do not
//!   parse are skipped one by one, never the whole file, and bytes that are
//!   not UTF-8 are just bytes;
//! - NAMES is either one hashed name (`|1|salt|hash`, HMAC-SHA1 of the name
//!   keyed by the salt) or a comma list of patterns with `*` and `?`, where
//!   a matching `!pattern` means the line does not apply; names are
//!   compared lower-cased;
//! - a host is looked up as `name` on port 22, `[name]:port` on another
//!   port, and by its `HostKeyAlias` alone (no port) when it has one; a
//!   host on another port that no line lists under `[name]:port` may still
//!   match a key listed under its bare name;
//! - every file counts: a key listed for the host in any file is trusted,
//!   and a host listed only with other keys has CHANGED;
//! - `@revoked` refuses a key, in any file. Deployer applies it whatever
//!   the line's host names (OpenSSH only for the hosts the line names):
//!   a revoked key is refused for every host;
//! - `@cert-authority` lines trust host certificates, which deployer does
//!   not support (libssh2 cannot negotiate them): a host that only such a
//!   line vouches for is refused, never treated as unknown.
//!
//! This module must not open files or sockets: [`parse`] takes bytes, and
//! the SSH transport reads the files, asks [`check`] and writes what
//! [`entry_line`] makes.

use std::borrow::Borrow;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The key types OpenSSH reads from known_hosts, with the type their key
/// blob carries (the RSA signature names are read as RSA keys).
const KEY_TYPES: [(&str, &str); 18] = [
    ("ssh-ed25519", "ssh-ed25519"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
    ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
    ("ssh-rsa", "ssh-rsa"),
    ("rsa-sha2-256", "ssh-rsa"),
    ("rsa-sha2-512", "ssh-rsa"),
    ("ssh-dss", "ssh-dss"),
    (
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ),
    ("sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519@openssh.com"),
    (
        "ssh-ed25519-cert-v01@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
    ),
    (
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    ),
    (
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    ),
    (
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    ),
    (
        "ssh-rsa-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
    ),
    (
        "ssh-dss-cert-v01@openssh.com",
        "ssh-dss-cert-v01@openssh.com",
    ),
    (
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    ),
    (
        "sk-ssh-ed25519-cert-v01@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
    ),
];

/// What a line says about the key it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A host key.
    None,
    /// `@revoked`: never trust this key.
    Revoked,
    /// `@cert-authority`: trust host certificates signed by this key.
    CertAuthority,
}

/// The host names of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    /// `|1|salt|hash`: the salt, and the hash decoded (`None` when the
    /// field is not written as OpenSSH writes it, which no name matches:
    /// OpenSSH compares the encoded text).
    Hashed {
        salt: Vec<u8>,
        hash: Option<Vec<u8>>,
    },
    /// A comma list of patterns, lower-cased.
    Patterns(Vec<u8>),
}

/// One usable line of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    line: usize,
    marker: Marker,
    names: Names,
    /// The key's type, as its blob names it (`ssh-rsa` for `rsa-sha2-256`).
    key_type: String,
    blob: Vec<u8>,
}

/// A known_hosts file, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHostsFile {
    path: PathBuf,
    entries: Vec<Entry>,
    /// The entries (indices, in line order) of each name that lines list
    /// literally (a name without wildcards or negation)...
    by_name: std::collections::HashMap<Vec<u8>, Vec<usize>>,
    /// ...and every other entry (hashed names, patterns), which each
    /// lookup tries in turn: a file of plain names is looked up without
    /// going through every line.
    others: Vec<usize>,
}

/// A key that known_hosts lists, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownKey {
    /// Key type, e.g. `ssh-ed25519`.
    pub key_type: String,
    /// `SHA256:...`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// The file listing it.
    pub file: PathBuf,
    /// Its line there, from 1.
    pub line: usize,
}

impl std::fmt::Display for KnownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}:{})",
            self.key_type,
            self.fingerprint,
            self.file.display(),
            self.line
        )
    }
}

/// What known_hosts says about the key a host offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is listed for the host: trust it.
    Match {
        /// The file listing it.
        file: PathBuf,
        /// Its line there.
        line: usize,
    },
    /// A `@revoked` line names the key: refuse, whatever else lists it.
    Revoked {
        /// The file revoking it.
        file: PathBuf,
        /// Its line there.
        line: usize,
    },
    /// The host is listed, with other keys only: refuse (a changed key is
    /// never recorded).
    Changed {
        /// The keys listed for the host.
        known: Vec<KnownKey>,
    },
    /// A `@cert-authority` line vouches for the host, and no line lists
    /// its key: refuse, as deployer cannot check host certificates.
    CertAuthority {
        /// The file with the `@cert-authority` line.
        file: PathBuf,
        /// Its line there.
        line: usize,
    },
    /// No line names the host: unknown (`accept-new` may record it).
    Unknown,
}

/// The names a host's key is looked up under, as OpenSSH forms them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNames {
    /// The name recorded and looked up first: the `HostKeyAlias` alone, or
    /// the host name, as `[name]:port` on a port other than 22;
    /// lower-cased.
    pub primary: String,
    /// The bare host name, tried for a host on another port when no line
    /// lists `[name]:port` (never recorded).
    pub bare: Option<String>,
}

impl HostNames {
    /// The names for `host_name` on `port`, or for `alias` when the host
    /// has a `HostKeyAlias` (then the port plays no part).
    pub fn new(host_name: &str, port: u16, alias: Option<&str>) -> HostNames {
        match alias {
            Some(alias) => HostNames {
                primary: alias.to_ascii_lowercase(),
                bare: None,
            },
            None => {
                let host = host_name.to_ascii_lowercase();
                if port == 22 || port == 0 {
                    HostNames {
                        primary: host,
                        bare: None,
                    }
                } else {
                    HostNames {
                        primary: format!("[{host}]:{port}"),
                        bare: Some(host),
                    }
                }
            }
        }
    }
}

/// Parse the bytes of the known_hosts file at `path` (named in verdicts).
/// Lines that do not parse are skipped, as OpenSSH skips them.
pub fn parse(path: &Path, bytes: &[u8]) -> KnownHostsFile {
    let entries: Vec<Entry> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, line)| parse_line(i + 1, line))
        .collect();
    let mut by_name: std::collections::HashMap<Vec<u8>, Vec<usize>> =
        std::collections::HashMap::new();
    let mut others = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match &e.names {
            Names::Patterns(list) if !list.iter().any(|b| b"*?!".contains(b)) => {
                let mut names: Vec<&[u8]> = list.split(|&b| b == b',').collect();
                names.sort_unstable();
                names.dedup();
                for name in names {
                    by_name.entry(name.to_vec()).or_default().push(i);
                }
            }
            _ => others.push(i),
        }
    }
    KnownHostsFile {
        path: path.to_path_buf(),
        entries,
        by_name,
        others,
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The next field of `rest` (split at spaces and tabs) and what follows it.
fn field(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = rest.iter().position(|&b| !is_blank(b))?;
    let rest = &rest[start..];
    let end = rest.iter().position(|&b| is_blank(b)).unwrap_or(rest.len());
    Some((&rest[..end], &rest[end..]))
}

fn parse_line(number: usize, line: &[u8]) -> Option<Entry> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (mut first, mut rest) = field(line)?;
    if first.starts_with(b"#") {
        return None;
    }
    let mut marker = Marker::None;
    if first.starts_with(b"@") {
        marker = match first {
            b"@revoked" => Marker::Revoked,
            b"@cert-authority" => Marker::CertAuthority,
            _ => return None,
        };
        (first, rest) = field(rest)?;
        // only one marker is allowed
        if first.starts_with(b"@") {
            return None;
        }
    }
    let names = if first.starts_with(b"|") {
        let (salt, hash) = hashed_parts(first)?;
        Names::Hashed { salt, hash }
    } else {
        Names::Patterns(first.to_ascii_lowercase())
    };
    let (type_field, rest) = field(rest)?;
    let (blob_field, _comment) = field(rest)?;
    let type_name = std::str::from_utf8(type_field).ok()?;
    let (_, blob_type) = KEY_TYPES.iter().find(|(name, _)| *name == type_name)?;
    let blob = B64.decode(blob_field).ok()?;
    if blob_key_type(&blob)? != *blob_type {
        return None;
    }
    Some(Entry {
        line: number,
        marker,
        names,
        key_type: (*blob_type).to_string(),
        blob,
    })
}

/// The salt of a hashed name `|1|salt|hash` (20 bytes, as OpenSSH wants)
/// and its hash, decoded once so that a lookup compares bytes; the hash
/// is `None` unless the field reads back exactly as OpenSSH writes it.
fn hashed_parts(field: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let rest = field.strip_prefix(b"|1|")?;
    let end = rest.iter().position(|&b| b == b'|')?;
    let salt = B64.decode(&rest[..end]).ok()?;
    if salt.len() != 20 {
        return None;
    }
    let hash = B64
        .decode(&rest[end + 1..])
        .ok()
        .filter(|hash| hash_name_with(&salt, hash).as_bytes() == field);
    Some((salt, hash))
}

/// The key type a public key blob names (its first string).
pub fn blob_key_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?);
    let name = blob.get(4..4 + usize::try_from(len).ok()?)?;
    std::str::from_utf8(name).ok()
}

/// The hashed form of `name` with `salt`: `|1|salt|hash`.
pub fn hash_name(name: &str, salt: &[u8]) -> String {
    hash_name_with(salt, &name_mac(name, salt))
}

/// `|1|salt|hash`, written out.
fn hash_name_with(salt: &[u8], hash: &[u8]) -> String {
    format!("|1|{}|{}", B64.encode(salt), B64.encode(hash))
}

/// HMAC-SHA1 of `name` keyed with `salt`: the hash of a hashed name.
fn name_mac(name: &str, salt: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The SHA256 fingerprint of a public key blob, as `ssh-keygen -l` shows it.
pub fn fingerprint(blob: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(blob))
    )
}

/// Whether `pattern` (lower-cased, `*` and `?`) matches all of `name`.
fn match_pattern(name: &[u8], pattern: &[u8]) -> bool {
    // Positions in the pattern still alive, advanced one name byte at a
    // time: linear in the product of the lengths, whatever the stars.
    let mut states = vec![false; pattern.len() + 1];
    let close = |states: &mut Vec<bool>| {
        for i in 0..pattern.len() {
            if states[i] && pattern[i] == b'*' {
                states[i + 1] = true;
            }
        }
    };
    states[0] = true;
    close(&mut states);
    for &c in name {
        let mut next = vec![false; pattern.len() + 1];
        for i in 0..pattern.len() {
            if !states[i] {
                continue;
            }
            match pattern[i] {
                b'*' => next[i] = true,
                b'?' => next[i + 1] = true,
                p if p == c => next[i + 1] = true,
                _ => {}
            }
        }
        close(&mut next);
        if !next.iter().any(|&s| s) {
            return false;
        }
        states = next;
    }
    states[pattern.len()]
}

/// Whether the comma list `patterns` names `name`: some pattern matches
/// and no `!pattern` does.
fn match_list(name: &[u8], patterns: &[u8]) -> bool {
    let mut positive = false;
    for sub in patterns.split(|&b| b == b',') {
        let (negated, sub) = match sub.strip_prefix(b"!") {
            Some(s) => (true, s),
            None => (false, sub),
        };
        // OpenSSH gives up on a list with a pattern this long
        if sub.len() >= 1023 {
            return false;
        }
        // most lines list plain names: compared as bytes, no matcher
        let literal = !sub.iter().any(|&b| b == b'*' || b == b'?');
        if (literal && sub == name) || (!literal && match_pattern(name, sub)) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

impl Entry {
    /// Whether this line names `name` (lower-cased).
    fn names(&self, name: &str) -> bool {
        match &self.names {
            Names::Hashed { salt, hash } => {
                hash.as_ref().is_some_and(|h| *h == name_mac(name, salt))
            }
            Names::Patterns(p) => match_list(name.as_bytes(), p),
        }
    }
}

impl KnownHostsFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The numbers of the lines naming `name`, whatever their marker: what
    /// `ssh-keygen -F name` finds.
    pub fn lines_naming(&self, name: &str) -> Vec<usize> {
        let name = name.to_ascii_lowercase();
        self.naming(&name).map(|e| e.line).collect()
    }

    /// The entries naming `name` (lower-cased), in line order: those
    /// listing it literally, and those of the others that match it.
    fn naming<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let listed: &[usize] = self.by_name.get(name.as_bytes()).map_or(&[], Vec::as_slice);
        let (mut a, mut b) = (listed.iter().peekable(), self.others.iter().peekable());
        std::iter::from_fn(move || loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => return None,
            };
            let e = &self.entries[*next.expect("peeked")];
            if e.names(name) {
                return Some(e);
            }
        })
    }
}

/// Entries of every file naming `name`, with their file. One pass over
/// every line: a caller that looks at them more than once collects them.
fn naming<'a, F: Borrow<KnownHostsFile>>(
    files: &'a [F],
    name: &'a str,
) -> impl Iterator<Item = (&'a Path, &'a Entry)> + 'a {
    files
        .iter()
        .map(Borrow::borrow)
        .flat_map(move |f: &'a KnownHostsFile| f.naming(name).map(move |e| (f.path.as_path(), e)))
}

/// What `files` (the user's, then the global ones) say about the key
/// (`blob`, as the host sent it) offered by the host looked up as `names`.
/// `files` are [`KnownHostsFile`]s, owned or shared (one parse per run).
pub fn check<F: Borrow<KnownHostsFile>>(files: &[F], names: &HostNames, blob: &[u8]) -> Verdict {
    if let Some((file, line)) = revoked(files, blob) {
        return Verdict::Revoked {
            file: file.to_path_buf(),
            line,
        };
    }
    let primary: Vec<(&Path, &Entry)> = naming(files, &names.primary).collect();
    let listed: Vec<&(&Path, &Entry)> = primary
        .iter()
        .filter(|(_, e)| e.marker == Marker::None)
        .collect();
    let found = |(file, e): &(&Path, &Entry)| Verdict::Match {
        file: file.to_path_buf(),
        line: e.line,
    };
    if let Some(hit) = listed.iter().find(|(_, e)| e.blob == blob) {
        return found(hit);
    }
    if !listed.is_empty() {
        return Verdict::Changed {
            known: listed
                .iter()
                .map(|(file, e)| KnownKey {
                    key_type: e.key_type.clone(),
                    fingerprint: fingerprint(&e.blob),
                    file: file.to_path_buf(),
                    line: e.line,
                })
                .collect(),
        };
    }
    if let Some(bare) = &names.bare {
        if let Some(hit) =
            naming(files, bare).find(|(_, e)| e.marker == Marker::None && e.blob == blob)
        {
            return found(&hit);
        }
    }
    if let Some((file, e)) = primary
        .iter()
        .find(|(_, e)| e.marker == Marker::CertAuthority)
    {
        return Verdict::CertAuthority {
            file: file.to_path_buf(),
            line: e.line,
        };
    }
    Verdict::Unknown
}

/// The key types listed for `name` (host keys only, hashed lines
/// included), in file order, each once: the host-key algorithms to offer
/// first, as OpenSSH does. As with OpenSSH, a type counts only when the
/// first key listed of that type is not revoked: a host whose revoked
/// ed25519 key is still listed, beside a good ECDSA one, negotiates ECDSA.
pub fn known_key_types<F: Borrow<KnownHostsFile>>(files: &[F], name: &str) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut types = Vec::new();
    for (_, e) in naming(files, name) {
        if e.marker != Marker::None || seen.contains(&e.key_type.as_str()) {
            continue;
        }
        seen.push(&e.key_type);
        if revoked(files, &e.blob).is_none() {
            types.push(e.key_type.clone());
        }
    }
    types
}

/// The `@revoked` line naming `blob`, in any file, whatever its host names.
fn revoked<'a, F: Borrow<KnownHostsFile>>(
    files: &'a [F],
    blob: &[u8],
) -> Option<(&'a Path, usize)> {
    files
        .iter()
        .map(Borrow::borrow)
        .find_map(|f: &'a KnownHostsFile| {
            f.entries
                .iter()
                .find(|e| e.marker == Marker::Revoked && e.blob == blob)
                .map(|e| (f.path.as_path(), e.line))
        })
}

/// Whether `name` may be written into a known_hosts file as a host name
/// (or, `[name]:port`, around one): ASCII letters, digits, and `.`, `-`,
/// `_`, `:` and `%` (IPv6 addresses and their zones), not starting with
/// `-`. Nothing else is written, whatever a configuration says: no
/// blanks, commas, pattern, marker or quoting characters, which would not
/// read back as the same name, and none of the shell's `$`, `` ` ``, `;`,
/// `(`…, so that a file mistaken for a known_hosts file (a shell's start-up
/// file) never receives a command.
pub fn recordable(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:%".contains(&b))
}

/// The 1-based number of the first line of `bytes` that is neither blank,
/// nor a comment, nor a known_hosts entry deployer can read, if any: a
/// file with such a line may not be a known_hosts file at all (a shell's
/// start-up file named by mistake, or by a hostile configuration), and
/// nothing is appended to it.
pub fn foreign_line(bytes: &[u8]) -> Option<usize> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .find_map(|(i, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let text = line.trim_ascii_start();
            let fine =
                text.is_empty() || text.starts_with(b"#") || parse_line(i + 1, line).is_some();
            (!fine).then_some(i + 1)
        })
}

/// The line recording `blob` for `name` (as [`HostNames::primary`] gives
/// it), hashed with `salt` (20 random bytes) when given, ending in a
/// newline.
pub fn entry_line(name: &str, blob: &[u8], salt: Option<&[u8]>) -> Option<String> {
    let key_type = blob_key_type(blob)?;
    let names = match salt {
        Some(salt) => hash_name(name, salt),
        None => name.to_string(),
    };
    Some(format!("{names} {key_type} {}\n", B64.encode(blob)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake key blob of `key_type`, told apart by `n`.
    fn key(key_type: &str, n: u8) -> Vec<u8> {
        let mut blob = Vec::new();
        for part in [key_type.as_bytes(), &[n; 32][..]] {
            blob.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
            blob.extend_from_slice(part);
        }
        blob
    }

    fn line(names: &str, blob: &[u8]) -> String {
        format!(
            "{names} {} {}\n",
            blob_key_type(blob).unwrap(),
            B64.encode(blob)
        )
    }

    fn file(name: &str, text: &str) -> KnownHostsFile {
        parse(Path::new(name), text.as_bytes())
    }

    const SALT: [u8; 20] = [9; 20];

    #[test]
    fn patterns_match_as_openssh_does() {
        let table: &[(&str, &str, bool)] = &[
            ("web", "web", true),
            ("web", "WEB", true),
            ("web", "db,web", true),
            ("web", "we?", true),
            ("web", "w*", true),
            ("web", "*", true),
            ("web", "*b*", true),
            ("web", "we", false),
            ("web", "webs", false),
            ("web", "w?", false),
            ("web", "*,!web", false),
            ("web", "!web,web", false),
            ("web", "!db", false),
            ("web", "!db,w*", true),
            ("[web]:2222", "[web]:2222", true),
            ("[web]:2222", "web", false),
            ("[web]:2222", "[w*]:*", true),
            ("web", "", false),
            ("", "*", true),
        ];
        for (name, patterns, want) in table {
            let got = match_list(name.as_bytes(), patterns.to_ascii_lowercase().as_bytes());
            assert_eq!(got, *want, "{name} against {patterns}");
        }
    }

    #[test]
    fn hashed_names_are_hmac_sha1_of_the_name() {
        let hashed = hash_name("web", &SALT);
        assert!(
            hashed.starts_with("|1|CQkJCQkJCQkJCQkJCQkJCQkJCQk=|"),
            "{hashed}"
        );
        let f = file("kh", &line(&hashed, &key("ssh-ed25519", 1)));
        assert_eq!(f.lines_naming("web"), vec![1]);
        assert_eq!(f.lines_naming("WEB"), vec![1]);
        assert!(f.lines_naming("db").is_empty());
        // a bad salt spoils the line, not the file
        let text = format!(
            "|1|c2FsdA==|x ssh-ed25519 {}\n{}",
            B64.encode(key("ssh-ed25519", 1)),
            line(&hashed, &key("ssh-ed25519", 1))
        );
        assert_eq!(file("kh", &text).lines_naming("web"), vec![2]);
    }

    #[test]
    fn lines_that_do_not_parse_are_skipped_one_by_one() {
        let good = key("ssh-ed25519", 1);
        let mut bytes = b"# caf\xe9 \xff not UTF-8\n\n   \t\n".to_vec();
        bytes.extend_from_slice(b"web ssh-ed25519\n");
        bytes.extend_from_slice(b"web ssh-ed25519 !!!notbase64\n");
        bytes.extend_from_slice(b"web foo-key AAAA\n");
        bytes.extend_from_slice(b"@bogus web ssh-ed25519 AAAA\n");
        bytes.extend_from_slice(
            format!("web ssh-rsa {}\n", B64.encode(&good)).as_bytes(), // type and blob differ
        );
        bytes.extend_from_slice(line("web", &good).trim_end().as_bytes());
        bytes.extend_from_slice(b" comment \xfe\r\n");
        let f = parse(Path::new("kh"), &bytes);
        assert_eq!(f.lines_naming("web"), vec![9]);
    }

    #[test]
    fn verdicts() {
        let a = key("ssh-ed25519", 1);
        let b = key("ssh-ed25519", 2);
        let ec = key("ecdsa-sha2-nistp256", 3);
        let names = HostNames::new("Web", 22, None);
        let check1 = |text: &str, blob: &[u8]| check(&[file("u", text)], &names, blob);
        let matched = |line| Verdict::Match {
            file: "u".into(),
            line,
        };

        assert_eq!(check1(&line("web", &a), &a), matched(1));
        assert_eq!(check1(&line("WEB,db", &a), &a), matched(1));
        assert_eq!(check1(&line("w*", &a), &a), matched(1));
        assert_eq!(check1(&line(&hash_name("web", &SALT), &a), &a), matched(1));
        assert_eq!(check1(&line("w*,!web", &a), &a), Verdict::Unknown);
        assert_eq!(check1(&line("db", &a), &a), Verdict::Unknown);
        assert_eq!(check1("", &a), Verdict::Unknown);
        let Verdict::Changed { known } = check1(&(line("web", &b) + &line("web", &ec)), &a) else {
            panic!("changed")
        };
        assert_eq!(
            known
                .iter()
                .map(|k| (k.key_type.as_str(), k.line))
                .collect::<Vec<_>>(),
            vec![("ssh-ed25519", 1), ("ecdsa-sha2-nistp256", 2)]
        );
        assert_eq!(known[0].fingerprint, fingerprint(&b));
        assert!(known[0].to_string().ends_with(" (u:1)"), "{}", known[0]);
        // any line listing the key wins over lines listing others
        assert_eq!(
            check1(&(line("web", &b) + &line("web", &a)), &a),
            matched(2)
        );
        // revoked wins over everything, whatever names it has
        let revoked = format!("@revoked nothere {}", &line("", &a)[1..]);
        assert_eq!(
            check1(&(line("web", &a) + &revoked), &a),
            Verdict::Revoked {
                file: "u".into(),
                line: 2
            }
        );
        assert_eq!(check1(&(line("web", &b) + &revoked), &b), matched(1));
        // a certificate authority for the host, and no key of its own
        let ca = format!("@cert-authority *.example,web {}", &line("", &b)[1..]);
        assert_eq!(
            check1(&ca, &a),
            Verdict::CertAuthority {
                file: "u".into(),
                line: 1
            }
        );
        assert_eq!(check1(&(ca.clone() + &line("web", &a)), &a), matched(2));
        assert!(matches!(
            check1(&(ca + &line("web", &b)), &a),
            Verdict::Changed { .. }
        ));
    }

    #[test]
    fn a_key_type_deployer_does_not_know_is_skipped_never_trusted() {
        // a newer host key algorithm (its blob of its own type) or a
        // made-up one: the line is skipped as ssh skips it, so it neither
        // vouches for the host nor makes its known key look changed
        let ed = key("ssh-ed25519", 1);
        let names = HostNames::new("web", 22, None);
        for new_type in ["ssh-mldsa65@openssh.com", "ssh-made-up-v99@example.org"] {
            let new = key(new_type, 2);
            let text = format!("web {new_type} {}\n", B64.encode(&new));
            let f = file("u", &text);
            assert!(f.lines_naming("web").is_empty(), "{new_type}");
            assert_eq!(known_key_types(&[&f], "web"), Vec::<String>::new());
            assert_eq!(check(&[&f], &names, &new), Verdict::Unknown);
            assert_eq!(check(&[&f], &names, &ed), Verdict::Unknown);
            let both = file("u", &(text + &line("web", &ed)));
            assert_eq!(
                check(&[&both], &names, &ed),
                Verdict::Match {
                    file: "u".into(),
                    line: 2
                }
            );
        }
    }

    #[test]
    fn every_file_counts_global_ones_too() {
        let (old, new) = (key("ssh-ed25519", 1), key("ssh-ed25519", 2));
        let user = file("user", &line("web", &old));
        let global = file("global", &line("web", &new));
        let names = HostNames::new("web", 22, None);
        assert_eq!(
            check(&[user.clone(), global.clone()], &names, &new),
            Verdict::Match {
                file: "global".into(),
                line: 1
            }
        );
        let revoking = file("global", &format!("@revoked * {}", &line("", &new)[1..]));
        assert!(matches!(
            check(
                &[user, file("g", &line("web", &new)), revoking],
                &names,
                &new
            ),
            Verdict::Revoked { .. }
        ));
    }

    #[test]
    fn ports_and_aliases_are_looked_up_as_openssh_does() {
        assert_eq!(
            HostNames::new("10.0.0.1", 2222, None),
            HostNames {
                primary: "[10.0.0.1]:2222".into(),
                bare: Some("10.0.0.1".into())
            }
        );
        assert_eq!(HostNames::new("Web", 22, None).primary, "web");
        assert_eq!(
            HostNames::new("10.0.0.1", 2222, Some("Web-Key")),
            HostNames {
                primary: "web-key".into(),
                bare: None
            }
        );
        let (a, b) = (key("ssh-ed25519", 1), key("ssh-ed25519", 2));
        let on_port = HostNames::new("web", 2222, None);
        let at = |text: &str, blob: &[u8]| check(&[file("u", text)], &on_port, blob);
        assert!(matches!(
            at(&line("[web]:2222", &a), &a),
            Verdict::Match { .. }
        ));
        // the bare name serves when the port is not listed at all
        assert!(matches!(at(&line("web", &a), &a), Verdict::Match { .. }));
        assert_eq!(at(&line("web", &b), &a), Verdict::Unknown);
        // but never against a key listed for that port
        assert!(matches!(
            at(&(line("[web]:2222", &b) + &line("web", &a)), &a),
            Verdict::Changed { .. }
        ));
        // an alias is looked up alone, never with a port
        let alias = HostNames::new("10.0.0.1", 2222, Some("web"));
        let f = [file("u", &line("web", &a))];
        assert!(matches!(check(&f, &alias, &a), Verdict::Match { .. }));
        let f = [file("u", &line("[web]:2222", &a))];
        assert_eq!(check(&f, &alias, &a), Verdict::Unknown);
    }

    #[test]
    fn known_key_types_include_hashed_lines_and_skip_markers() {
        let text = [
            line(&hash_name("web", &SALT), &key("ecdsa-sha2-nistp256", 1)),
            line("web,db", &key("ssh-ed25519", 2)),
            line("web", &key("ssh-ed25519", 3)),
            format!("@revoked web {}", &line("", &key("ssh-rsa", 4))[1..]),
            format!("@cert-authority web {}", &line("", &key("ssh-dss", 5))[1..]),
            line("[web]:2222", &key("ssh-rsa", 6)),
            // a type whose first key is revoked does not count
            line("web", &key("ssh-rsa", 7)),
            line("web", &key("ssh-rsa", 8)),
            format!("@revoked other {}", &line("", &key("ssh-rsa", 7))[1..]),
        ]
        .concat();
        let f = [file("u", &text)];
        assert_eq!(
            known_key_types(&f, "web"),
            vec!["ecdsa-sha2-nistp256", "ssh-ed25519"]
        );
        assert_eq!(known_key_types(&f, "[web]:2222"), vec!["ssh-rsa"]);
    }

    #[test]
    fn recorded_lines_read_back() {
        let a = key("ssh-ed25519", 1);
        for salt in [None, Some(&SALT[..])] {
            let text = entry_line("[web]:2222", &a, salt).unwrap();
            assert!(text.ends_with('\n'));
            assert_eq!(salt.is_some(), text.starts_with("|1|"), "{text}");
            let f = [file("u", &text)];
            let names = HostNames::new("WEB", 2222, None);
            assert!(matches!(check(&f, &names, &a), Verdict::Match { .. }));
        }
        assert!(recordable("web.example") && recordable("2001:db8::1"));
        assert!(recordable("fe80::1%eth0") && recordable("db_1.example"));
        for bad in [
            "",
            "a b",
            "a,b",
            "*",
            "h[1]",
            "a|b",
            "x\ny",
            "!web",
            "$(touch /tmp/pwned)",
            "$(id>/tmp/pwned)",
            "`id`",
            "a;b",
            "a&b",
            "-oProxyCommand=x",
            "caf\u{e9}",
        ] {
            assert!(!recordable(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_file_with_a_line_that_is_not_a_host_key_is_foreign() {
        let a = entry_line("web", &key("ssh-ed25519", 1), None).unwrap();
        let hashed = entry_line("web", &key("ssh-ed25519", 2), Some(&SALT[..])).unwrap();
        let ours = format!("# keys\n\n  \t\n{a}@revoked {a}{hashed}\r\n");
        assert_eq!(foreign_line(ours.as_bytes()), None);
        assert_eq!(foreign_line(b""), None);
        let rc = format!("{a}# ~/.bashrc\nexport PATH=$PATH:~/bin\n");
        assert_eq!(foreign_line(rc.as_bytes()), Some(3));
        assert_eq!(foreign_line(b"web ssh-ed25519 not-base64!\n"), Some(1));
    }

    #[test]
    fn fingerprints_are_ssh_keygens() {
        // `ssh-keygen -lf` of this public key says SHA256:... below
        let blob = B64
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIN96EDRrSQMTpxJPjxR3YO7TJeSGZx67ttVi0mk04XgM")
            .unwrap();
        assert_eq!(
            fingerprint(&blob),
            "SHA256:K6TBfBvb/uqCbGaN9yJkvILQK8Szu8OWvGUxUpiyNkw"
        );
    }
}
