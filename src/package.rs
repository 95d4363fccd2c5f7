//! Debian package names: the only package text that may reach a remote
//! command line.
//!
//! This module owns which strings are package names (Debian policy 5.6.1)
//! and how to split the `name:arch` form that dpkg-query prints. Because
//! the accepted alphabet contains no shell metacharacters, a
//! [`PackageName`] can be placed in a remote command without quoting; the
//! check here is that guarantee, so it must stay strict. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

/// What a package name may contain, for error messages.
const ACCEPTED: &str =
    "use lowercase letters, digits, `+`, `-` and `.`, starting with a letter or digit, \
     at least 2 characters";

/// A valid Debian binary package name (policy 5.6.1): at least two
/// characters, only lowercase ASCII letters, digits, `+`, `-` and `.`,
/// starting with a letter or digit.
///
/// Ordered and hashed by its text; serialized as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

/// Why a string is not a Debian package name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid Debian package name: {reason}")]
pub struct PackageNameError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it, and what would be accepted.
    pub reason: String,
}

impl PackageName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
}

impl FromStr for PackageName {
    type Err = PackageNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |problem: String| PackageNameError {
            input: s.to_string(),
            reason: format!("{problem} ({ACCEPTED})"),
        };
        if s.is_empty() {
            return Err(fail("it is empty".to_string()));
        }
        if let Some(c) = s.chars().find(|&c| !is_name_char(c)) {
            // Characters that would vanish or clash inside backticks are
            // shown quoted instead.
            let shown = if c.is_whitespace() || c.is_control() || c == '`' {
                format!("{c:?}")
            } else {
                format!("`{c}`")
            };
            let problem = if c.is_ascii_uppercase() {
                format!("uppercase {shown} is not allowed")
            } else {
                format!("{shown} is not allowed")
            };
            return Err(fail(problem));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(fail("it must start with a letter or digit".to_string()));
        }
        if s.len() < 2 {
            return Err(fail("it is too short".to_string()));
        }
        Ok(PackageName(s.to_string()))
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for PackageName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Splits what dpkg-query prints for `${binary:Package}` into the package
/// name and its architecture qualifier: `libc6:amd64` gives
/// `("libc6", Some("amd64"))`, `fastpath` gives `("fastpath", None)`.
///
/// Package names never contain `:`, so the split is at the first one; the
/// parts are not validated. A trailing `:` yields `Some("")`.
pub fn split_arch(s: &str) -> (&str, Option<&str>) {
    match s.split_once(':') {
        Some((name, arch)) => (name, Some(arch)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for name in [
            "fastpath",
            "ooni-backend",
            "libc6",
            "g++",
            "libstdc++6",
            "python3.11",
            "0ad",
            "xz",
            "a.b+c-d",
            "9x",
        ] {
            let parsed: PackageName = name.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.as_str(), name);
            assert_eq!(parsed.to_string(), name);
        }
    }

    #[test]
    fn invalid_names_say_what_is_wrong_and_what_is_accepted() {
        let table: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("a", "it is too short"),
            ("-x", "it must start with a letter or digit"),
            ("+x", "it must start with a letter or digit"),
            (".hidden", "it must start with a letter or digit"),
            ("Fast_Path", "uppercase `F` is not allowed"),
            ("fast_path", "`_` is not allowed"),
            ("FASTPATH", "uppercase `F` is not allowed"),
            ("fastpath;rm -rf /", "`;` is not allowed"),
            ("$(id)", "`$` is not allowed"),
            ("`id`", "'`' is not allowed"),
            ("a b", "' ' is not allowed"),
            ("a\nb", "'\\n' is not allowed"),
            ("a\tb", "'\\t' is not allowed"),
            ("fastpath&&id", "`&` is not allowed"),
            ("fastpath|sh", "`|` is not allowed"),
            ("fast'path", "`'` is not allowed"),
            ("fast\"path", "`\"` is not allowed"),
            ("../etc", "`/` is not allowed"),
            ("libc6:amd64", "`:` is not allowed"),
            ("pkg=1.0", "`=` is not allowed"),
            ("fastpäth", "`ä` is not allowed"),
        ];
        for &(input, problem) in table {
            let err = input
                .parse::<PackageName>()
                .expect_err(&format!("{input:?} should be rejected"));
            assert_eq!(err.input, input);
            assert_eq!(err.reason, format!("{problem} ({ACCEPTED})"), "{input:?}");
        }
    }

    #[test]
    fn error_message_reads_well() {
        let err = "Fast_Path".parse::<PackageName>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`Fast_Path` is not a valid Debian package name: uppercase `F` is not allowed \
             (use lowercase letters, digits, `+`, `-` and `.`, starting with a letter or digit, \
             at least 2 characters)"
        );
    }

    #[test]
    fn split_arch_cases() {
        let table: &[(&str, &str, Option<&str>)] = &[
            ("libc6:amd64", "libc6", Some("amd64")),
            ("libc6:i386", "libc6", Some("i386")),
            ("fastpath", "fastpath", None),
            ("python3:any", "python3", Some("any")),
            ("odd:", "odd", Some("")),
        ];
        for &(input, name, arch) in table {
            assert_eq!(split_arch(input), (name, arch), "{input}");
        }
    }

    #[test]
    fn serializes_and_orders_as_text() {
        let a: PackageName = "alpha".parse().unwrap();
        let b: PackageName = "beta".parse().unwrap();
        assert!(a < b);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#""alpha""#);
    }
}
