//! Debian package versions: parsing and ordering exactly as dpkg does.
//!
//! This module owns the meaning of a version string: which strings are
//! versions at all, and how two of them compare (`dpkg --compare-versions`).
//! It is pure: it never runs dpkg or reads package lists; the oracle test in
//! `tests/e2e/version_oracle.rs` is where we check ourselves against the real
//! dpkg.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// A Debian version `[epoch:]upstream[-revision]`, ordered like dpkg.
///
/// Accepted syntax (dpkg's `parseversion`, treating its warnings as errors):
///
/// - the text is not empty and contains no whitespace;
/// - `epoch`, if present, is everything before the first `:`; it is a
///   non-empty run of ASCII digits no greater than 2147483647 (dpkg stores
///   it in a C `int`);
/// - `revision`, if present, is everything after the last `-`; it is not
///   empty and uses only ASCII letters, digits, `.`, `+` and `~`;
/// - `upstream` is what remains; it is not empty, starts with a digit and
///   uses only ASCII letters, digits, `.`, `+`, `~`, `-` and `:`. Because of
///   how the string is split, a `:` can only appear in it when there is an
///   epoch and a `-` only when there is a revision.
///
/// Equality follows the ordering, not the text: `1.0`, `1.0-0`, `0:1.0` and
/// `1.00` are all equal, as dpkg says. [`Display`](fmt::Display) and
/// serialization keep the original text.
#[derive(Debug, Clone)]
pub struct Version {
    original: String,
    epoch: u32,
    /// Byte range of the upstream part inside `original`.
    upstream: (usize, usize),
    /// Byte offset where the revision starts (after the `-`), if any.
    revision: Option<usize>,
}

/// Why a string is not a Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid Debian version: {reason}")]
pub struct VersionError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Version {
    /// The epoch, `0` when the version has none.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream part: between the epoch's `:` and the revision's `-`.
    pub fn upstream(&self) -> &str {
        &self.original[self.upstream.0..self.upstream.1]
    }

    /// The Debian revision after the last `-`, or `""` when there is none
    /// (which dpkg orders like `0`).
    pub fn revision(&self) -> &str {
        match self.revision {
            Some(start) => &self.original[start..],
            None => "",
        }
    }

    /// The text the version was parsed from.
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| VersionError {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(fail("it is empty"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(fail("it contains whitespace"));
        }

        let (epoch, upstream_start) = match s.find(':') {
            None => (0, 0),
            Some(colon) => {
                let digits = &s[..colon];
                if digits.is_empty() {
                    return Err(fail("the epoch before `:` is empty"));
                }
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail("the epoch before `:` is not a number"));
                }
                // dpkg keeps the epoch in a C int.
                let epoch = digits
                    .parse::<i32>()
                    .ok()
                    .and_then(|e| u32::try_from(e).ok())
                    .ok_or_else(|| fail("the epoch before `:` is too big"))?;
                if colon + 1 == s.len() {
                    return Err(fail("nothing follows the epoch's `:`"));
                }
                (epoch, colon + 1)
            }
        };

        let rest = &s[upstream_start..];
        let (upstream_end, revision) = match rest.rfind('-') {
            None => (s.len(), None),
            Some(hyphen) => {
                let start = upstream_start + hyphen + 1;
                if start == s.len() {
                    return Err(fail("the revision after the last `-` is empty"));
                }
                (upstream_start + hyphen, Some(start))
            }
        };

        let upstream = &s[upstream_start..upstream_end];
        match upstream.bytes().next() {
            None => return Err(fail("the upstream version is empty")),
            Some(b) if !b.is_ascii_digit() => {
                return Err(fail("the upstream version must start with a digit"))
            }
            Some(_) => {}
        }
        if let Some(c) = upstream
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".+~-:".contains(c)))
        {
            return Err(fail(&format!(
                "`{c}` is not allowed in the upstream version \
                 (use letters, digits, `.`, `+`, `~`, `-` and `:`)"
            )));
        }
        if let Some(start) = revision {
            if let Some(c) = s[start..]
                .chars()
                .find(|&c| !(c.is_ascii_alphanumeric() || ".+~".contains(c)))
            {
                return Err(fail(&format!(
                    "`{c}` is not allowed in the revision \
                     (use letters, digits, `.`, `+` and `~`)"
                )));
            }
        }

        Ok(Version {
            original: s.to_string(),
            epoch,
            upstream: (upstream_start, upstream_end),
            revision,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.original)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| compare_part(self.revision(), other.revision()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    /// Hashes the canonical form, so that versions dpkg calls equal
    /// (`1.0`, `1.00`, `1.0-0`, `0:1.0`) hash alike.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        hash_part(self.upstream(), state);
        hash_part(self.revision(), state);
    }
}

/// dpkg's weight for one byte of a non-digit run: `~` before the end of
/// the run, the end before letters, letters before everything else.
fn weight(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b'~') => -1,
        Some(b) if b.is_ascii_digit() => 0,
        Some(b) if b.is_ascii_alphabetic() => i32::from(b),
        Some(b) => i32::from(b) + 256,
    }
}

/// Splits off the leading run of bytes that satisfy `pred`.
fn take_while(s: &[u8], pred: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().position(|&b| !pred(b)).unwrap_or(s.len());
    s.split_at(n)
}

/// Compares two digit runs as numbers of any length.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let (_, a) = take_while(a, |b| b == b'0');
    let (_, b) = take_while(b, |b| b == b'0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's `verrevcmp`: alternate non-digit runs (byte by byte, by
/// [`weight`]) and digit runs (numerically) until one side differs.
fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (a_text, a_rest) = take_while(a, |c| !c.is_ascii_digit());
        let (b_text, b_rest) = take_while(b, |c| !c.is_ascii_digit());
        for i in 0..a_text.len().max(b_text.len()) {
            let ord = weight(a_text.get(i).copied()).cmp(&weight(b_text.get(i).copied()));
            if ord != Ordering::Equal {
                return ord;
            }
        }
        let (a_num, a_rest) = take_while(a_rest, |c| c.is_ascii_digit());
        let (b_num, b_rest) = take_while(b_rest, |c| c.is_ascii_digit());
        let ord = compare_digits(a_num, b_num);
        if ord != Ordering::Equal {
            return ord;
        }
        a = a_rest;
        b = b_rest;
    }
    Ordering::Equal
}

/// Feeds `state` with a form of `part` that is identical for parts
/// [`compare_part`] calls equal: each (non-digit run, number) step with the
/// number's leading zeros dropped, and trailing steps that are just `0`
/// (which compare equal to nothing) left out.
fn hash_part<H: Hasher>(part: &str, state: &mut H) {
    let mut steps = Vec::new();
    let mut rest = part.as_bytes();
    while !rest.is_empty() {
        let (text, after) = take_while(rest, |c| !c.is_ascii_digit());
        let (num, after) = take_while(after, |c| c.is_ascii_digit());
        let (_, num) = take_while(num, |c| c == b'0');
        steps.push((text, num));
        rest = after;
    }
    while steps
        .last()
        .is_some_and(|(text, num)| text.is_empty() && num.is_empty())
    {
        steps.pop();
    }
    steps.len().hash(state);
    for (text, num) in steps {
        text.hash(state);
        num.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;
    use Ordering::{Equal, Greater, Less};

    fn v(s: &str) -> Version {
        s.parse()
            .unwrap_or_else(|e| panic!("test version should parse: {e}"))
    }

    fn hash_of(version: &Version) -> u64 {
        let mut h = DefaultHasher::new();
        version.hash(&mut h);
        h.finish()
    }

    #[test]
    fn ordering_matches_dpkg() {
        let table: &[(&str, &str, Ordering)] = &[
            // plain numbers and separators
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.2", "1.10", Less),
            ("1.0", "1.0.1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0b", Less),
            ("1.0a", "1.0.", Less),
            ("1.0+", "1.0.", Less),
            ("1.0Z", "1.0a", Less),
            // tildes sort before everything, even the end
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~~a", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~beta", "1.0~rc", Less),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1.0~rc1-1", "1.0~rc1-2", Less),
            ("1.0-1~bpo1", "1.0-1", Less),
            // epochs win over everything else
            ("1:1.0-1", "2.0-1", Greater),
            ("0:1.0", "1.0", Equal),
            ("1:0.1", "0:9.9", Greater),
            ("10:1", "9:1", Greater),
            ("1:1.0-1", "1:1.0-1", Equal),
            // binNMUs and revisions
            ("1.0-1+b1", "1.0-1", Greater),
            ("1.0-1+b2", "1.0-1+b10", Less),
            ("1.0-1", "1.0-1.1", Less),
            ("1.0-2", "1.0-10", Less),
            ("1.0", "1.0-0", Equal),
            ("1.0", "1.0-1", Less),
            ("1.0-0.1", "1.0", Greater),
            // leading zeros are ignored in digit runs
            ("1.01", "1.1", Equal),
            ("1.001", "1.1", Equal),
            ("1.00", "1.0", Equal),
            ("007", "7", Equal),
            ("1.010", "1.9", Greater),
            // hyphens inside upstream when there is a revision
            ("1.0-rc1-1", "1.0-1", Greater),
            ("2:1.0-beta-3", "2:1.0-beta-10", Less),
            // colons inside upstream when there is an epoch
            ("1:1:2-1", "1:1:10-1", Less),
            // digit runs far beyond u64 must not overflow
            (
                "1.123456789012345678901234567890",
                "1.123456789012345678901234567891",
                Less,
            ),
            ("99999999999999999999999", "100000000000000000000000", Less),
            // this project's real versions
            ("0.81~pr748-191", "0.77~pr705-119", Greater),
            ("1.10~pr692-102", "1.9~pr659-61", Greater),
            ("1.0.79~pr751-194", "1.0.79", Less),
            ("1.0.79~pr751-194", "1.0.78-1", Greater),
            ("1.0.79~pr751-194", "1.0.79~pr751-195", Less),
            ("1.0.79~pr751-194", "1.0.79~pr76-194", Greater),
        ];
        for &(a, b, expected) in table {
            assert_eq!(v(a).cmp(&v(b)), expected, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), expected.reverse(), "{b} vs {a}");
            assert_eq!(v(a) == v(b), expected == Equal, "{a} == {b}");
            if expected == Equal {
                assert_eq!(hash_of(&v(a)), hash_of(&v(b)), "hash {a} vs {b}");
            }
        }
    }

    #[test]
    fn parts_are_split_at_first_colon_and_last_hyphen() {
        let table: &[(&str, u32, &str, &str)] = &[
            ("1.0", 0, "1.0", ""),
            ("1.0-1", 0, "1.0", "1"),
            ("2:1.0-1", 2, "1.0", "1"),
            ("1:2:3-4-5", 1, "2:3-4", "5"),
            ("0.81~pr748-191", 0, "0.81~pr748", "191"),
            ("00:1", 0, "1", ""),
        ];
        for &(text, epoch, upstream, revision) in table {
            let version = v(text);
            assert_eq!(version.epoch(), epoch, "{text}");
            assert_eq!(version.upstream(), upstream, "{text}");
            assert_eq!(version.revision(), revision, "{text}");
            assert_eq!(version.to_string(), text);
            assert_eq!(version.as_str(), text);
        }
    }

    #[test]
    fn invalid_versions_say_why() {
        let table: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("1.0 ", "it contains whitespace"),
            ("1 .0", "it contains whitespace"),
            (":1.0", "the epoch before `:` is empty"),
            ("a:1.0", "the epoch before `:` is not a number"),
            ("-1:1.0", "the epoch before `:` is not a number"),
            ("2147483648:1.0", "the epoch before `:` is too big"),
            ("99999999999999999999:1", "the epoch before `:` is too big"),
            ("1:", "nothing follows the epoch's `:`"),
            ("1.0-", "the revision after the last `-` is empty"),
            ("1:-1", "the upstream version is empty"),
            ("-1", "the upstream version is empty"),
            ("a1.0", "the upstream version must start with a digit"),
            ("~1", "the upstream version must start with a digit"),
            (
                "1.0_1",
                "`_` is not allowed in the upstream version \
                 (use letters, digits, `.`, `+`, `~`, `-` and `:`)",
            ),
            (
                "1.0;rm",
                "`;` is not allowed in the upstream version \
                 (use letters, digits, `.`, `+`, `~`, `-` and `:`)",
            ),
            (
                "1:1.0-1:2",
                "`:` is not allowed in the revision (use letters, digits, `.`, `+` and `~`)",
            ),
            (
                "1.0-é",
                "`é` is not allowed in the revision (use letters, digits, `.`, `+` and `~`)",
            ),
        ];
        for &(input, reason) in table {
            let err = input.parse::<Version>().expect_err(input);
            assert_eq!(err.input, input);
            assert_eq!(err.reason, reason, "{input:?}");
        }
    }

    #[test]
    fn error_message_names_the_input() {
        let err = "1.0-".parse::<Version>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`1.0-` is not a valid Debian version: the revision after the last `-` is empty"
        );
    }

    #[test]
    fn serializes_as_the_original_text() {
        let json = serde_json::to_string(&v("1:01.0-1")).unwrap();
        assert_eq!(json, r#""1:01.0-1""#);
    }

    #[test]
    fn sorting_a_list() {
        let mut list: Vec<Version> = ["1.0", "1.0~rc1", "1:0.1", "1.0-1", "1.0+b1", "0.9"]
            .into_iter()
            .map(v)
            .collect();
        list.sort();
        let sorted: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            sorted,
            ["0.9", "1.0~rc1", "1.0", "1.0-1", "1.0+b1", "1:0.1"]
        );
    }
}
