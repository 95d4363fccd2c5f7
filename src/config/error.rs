//! [`ConfigError`]: what is wrong with a configuration, where, and how to
//! fix it. Only the type and its wording live here; deciding what is wrong
//! is the business of the other `config` modules.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem, with enough context to fix it.
///
/// `Display` gives "`PATH` line N: MESSAGE"; the `note` is separate so the
/// caller can print it on its own `note:` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file at fault, when there is one.
    pub path: Option<PathBuf>,
    /// 1-based line at fault, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What would be accepted, or how to fix it.
    pub note: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(path), Some(line)) => write!(f, "`{}` line {line}: ", path.display())?,
            (Some(path), None) => write!(f, "`{}`: ", path.display())?,
            (None, _) => {}
        }
        f.write_str(&self.message)
    }
}

impl ConfigError {
    pub(crate) fn new(
        path: Option<&Path>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            path: path.map(Path::to_path_buf),
            line,
            message: message.into(),
            note: None,
        }
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_path_and_line_first_and_leaves_the_note_out() {
        let e = ConfigError::new(Some(Path::new("/x/deployer.ini")), Some(3), "bad thing")
            .note("fix it");
        assert_eq!(e.to_string(), "`/x/deployer.ini` line 3: bad thing");
        let e = ConfigError::new(Some(Path::new("/x/deployer.ini")), None, "bad thing");
        assert_eq!(e.to_string(), "`/x/deployer.ini`: bad thing");
        let e = ConfigError::new(None, None, "bad thing");
        assert_eq!(e.to_string(), "bad thing");
    }
}
