//! Debian package names: the only package text that may reach a remote
//! command line. STUB: replaced by the version work.

use std::fmt;
use std::str::FromStr;

/// A valid Debian binary package name (policy 5.6.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct PackageName(String);

/// Why a string is not a Debian package name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid Debian package name: {reason}")]
pub struct PackageNameError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PackageName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PackageName {
    type Err = PackageNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(PackageName(s.to_string()))
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Split what dpkg-query prints as `${binary:Package}` (`libc6:amd64`) into
/// the name and the architecture qualifier. STUB.
pub fn split_arch(s: &str) -> (&str, Option<&str>) {
    match s.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    }
}
