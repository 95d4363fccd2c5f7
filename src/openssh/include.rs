//! Which files an `Include` may name and trust, by OpenSSH's rules: its
//! glob(3) patterns (OpenBSD's, as Debian's ssh is built with), the
//! nesting limit, and Debian's rule for a group-writable file. Matching
//! only: the directories are read by [`crate::ssh_config`].

/// How deep `Include` may nest, as in OpenSSH.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 16;

/// One element of a pattern for one path component, as OpenSSH's
/// `glob(3)` (OpenBSD's, which Debian's ssh is built with) compiles it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GlobItem {
    /// A byte that must be there; `quoted` when a backslash protected it
    /// (then it is never special, not even a leading `.`).
    Byte { byte: u8, quoted: bool },
    /// `?`: any one byte.
    One,
    /// `*`: any run of bytes.
    All,
    /// `[...]` or `[!...]`: one byte in (or not in) the set.
    Set {
        negated: bool,
        members: Vec<SetMember>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SetMember {
    Byte(u8),
    /// `a-z`: from and to, inclusive, compared as unsigned bytes.
    Range(u8, u8),
    /// `[:alpha:]`…, in the C locale: its index in [`GLOB_CLASSES`].
    Class(usize),
}

/// Whether a byte is in a glob(3) `[:name:]` class.
pub(crate) type ByteClass = fn(&u8) -> bool;

/// The `[:name:]` classes glob(3) knows.
pub(crate) const GLOB_CLASSES: &[(&str, ByteClass)] = &[
    ("alnum", u8::is_ascii_alphanumeric),
    ("alpha", u8::is_ascii_alphabetic),
    ("blank", |b| *b == b' ' || *b == b'\t'),
    ("cntrl", u8::is_ascii_control),
    ("digit", u8::is_ascii_digit),
    ("graph", u8::is_ascii_graphic),
    ("lower", u8::is_ascii_lowercase),
    ("print", |b| b.is_ascii_graphic() || *b == b' '),
    ("punct", u8::is_ascii_punctuation),
    ("space", |b| b" \t\n\x0b\x0c\r".contains(b)),
    ("upper", u8::is_ascii_uppercase),
    ("xdigit", u8::is_ascii_hexdigit),
];

/// Compiles one path component of an `Include` pattern by glob(3)'s rules:
/// a backslash quotes the next byte; `*` and `?` are wildcards; `[` opens
/// a set only when an unquoted `]` follows (after the first member, so a
/// `]` first is a member), `!` first negates it (`^` does not), `a-z` is
/// a range unless the `-` is last, `[:alpha:]`… are classes. `None` for
/// an unknown class name, with which glob(3) matches nothing.
pub(crate) fn compile_glob(component: &[u8]) -> Option<Vec<GlobItem>> {
    // (byte, quoted)
    let mut chars = Vec::with_capacity(component.len());
    let mut bytes = component.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => chars.push((bytes.next().unwrap_or(b'\\'), true)),
            _ => chars.push((b, false)),
        }
    }
    let plain = |i: usize, want: u8| chars.get(i) == Some(&(want, false));
    let mut items = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (b, quoted) = chars[i];
        i += 1;
        match (b, quoted) {
            (b'?', false) => items.push(GlobItem::One),
            (b'*', false) => {
                if items.last() != Some(&GlobItem::All) {
                    items.push(GlobItem::All);
                }
            }
            (b'[', false) => {
                let negated = plain(i, b'!');
                let first = i + usize::from(negated);
                let closed = first < chars.len() && chars[first + 1..].contains(&(b']', false));
                if !closed {
                    items.push(GlobItem::Byte { byte: b'[', quoted });
                    continue;
                }
                let mut members = Vec::new();
                let mut j = first;
                // The first member may be `]` itself.
                let mut at_start = true;
                while j < chars.len() {
                    if !at_start && plain(j, b']') {
                        j += 1;
                        break;
                    }
                    at_start = false;
                    if plain(j, b'[') && plain(j + 1, b':') {
                        match glob_class(&chars, j + 2) {
                            Some(Ok((class, next))) => {
                                members.push(SetMember::Class(class));
                                j = next;
                                continue;
                            }
                            Some(Err(())) => return None,
                            // Not a class: `[` is a member.
                            None => {}
                        }
                    }
                    let (c, _) = chars[j];
                    match chars.get(j + 2) {
                        Some(&(end, _)) if plain(j + 1, b'-') && !plain(j + 2, b']') => {
                            members.push(SetMember::Range(c, end));
                            j += 3;
                        }
                        _ => {
                            members.push(SetMember::Byte(c));
                            j += 1;
                        }
                    }
                }
                items.push(GlobItem::Set { negated, members });
                i = j;
            }
            _ => items.push(GlobItem::Byte { byte: b, quoted }),
        }
    }
    Some(items)
}

/// A `[:name:]` class whose name starts at `start` (after `[:`): the
/// class and where the set goes on, `Err` for an unknown name, `None`
/// when no unquoted `:]` follows (then it is no class).
pub(crate) fn glob_class(chars: &[(u8, bool)], start: usize) -> Option<Result<(usize, usize), ()>> {
    let colon = start + chars[start..].iter().position(|&c| c == (b':', false))?;
    if chars.get(colon + 1) != Some(&(b']', false)) {
        return None;
    }
    let name: Vec<u8> = chars[start..colon].iter().map(|&(b, _)| b).collect();
    let quoted = chars[start..colon].iter().any(|&(_, q)| q);
    Some(
        GLOB_CLASSES
            .iter()
            .position(|(n, _)| !quoted && n.as_bytes() == name.as_slice())
            .map(|class| (class, colon + 2))
            .ok_or(()),
    )
}

/// Whether a compiled component matches a directory entry's name, byte
/// by byte; a name starting with `.` only matches a pattern starting with
/// an unquoted `.` (never a wildcard or a set).
pub(crate) fn glob_match(items: &[GlobItem], name: &[u8]) -> bool {
    if name.first() == Some(&b'.')
        && items.first()
            != Some(&GlobItem::Byte {
                byte: b'.',
                quoted: false,
            })
    {
        return false;
    }
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and where its next try starts in the name.
    let mut star: Option<(usize, usize)> = None;
    loop {
        let step = match items.get(pi) {
            None if ni == name.len() => return true,
            None => false,
            Some(GlobItem::All) => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(item) => name.get(ni).is_some_and(|&k| match item {
                GlobItem::Byte { byte, .. } => *byte == k,
                GlobItem::One | GlobItem::All => true,
                GlobItem::Set { negated, members } => {
                    let hit = members.iter().any(|m| match m {
                        SetMember::Byte(b) => *b == k,
                        SetMember::Range(from, to) => (*from..=*to).contains(&k),
                        SetMember::Class(class) => (GLOB_CLASSES[*class].1)(&k),
                    });
                    hit != *negated
                }
            }),
        };
        if step {
            pi += 1;
            ni += 1;
            continue;
        }
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
}

/// What the user and group databases say about a group-writable file's
/// group, for [`group_write_is_harmless`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupFacts {
    /// The group's supplementary members, `None` when the group is unknown.
    pub(crate) members: Option<Vec<String>>,
    /// The uids of every account whose primary group it is.
    pub(crate) primary_of: Vec<u32>,
    /// The file owner's account name, `None` when the uid has no entry.
    pub(crate) owner_name: Option<String>,
}

/// Debian's rule for a group-writable config file (its OpenSSH patch
/// "Allow harmless group-writability", for user-private groups): harmless
/// when the group exists, every account with it as primary group is the
/// running user (`me`), it lists at most one supplementary member and that
/// member is the file's owner, and it has at least one member of either
/// kind. Anything unknown is not harmless.
pub(crate) fn group_write_is_harmless(facts: &GroupFacts, me: u32) -> bool {
    let (Some(members), Some(owner)) = (&facts.members, &facts.owner_name) else {
        return false;
    };
    if facts.primary_of.iter().any(|&uid| uid != me) {
        return false;
    }
    match members.as_slice() {
        [] => !facts.primary_of.is_empty(),
        [only] => only == owner,
        _ => false,
    }
}
