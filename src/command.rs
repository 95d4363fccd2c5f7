//! Remote command lines, built so that no unchecked text can change their
//! meaning: every argument is shell-quoted, and only literals written in this
//! crate (or trusted configuration such as a health check) are raw.
//!
//! This module builds text; it never runs anything.

use std::fmt;

/// A command line for a POSIX shell on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    line: String,
    label: String,
    /// Holds text from the configuration (`health_check`), which may carry
    /// a secret: logs name it instead of showing it.
    from_config: bool,
}

impl RemoteCommand {
    /// Start a command with `program`, a literal written in this crate.
    pub fn new(program: &'static str) -> Self {
        RemoteCommand {
            line: program.to_string(),
            label: program.to_string(),
            from_config: false,
        }
    }

    /// A trusted script written in this crate. `label` names it in
    /// messages.
    pub fn trusted(script: &str, label: &str) -> Self {
        RemoteCommand {
            line: script.to_string(),
            label: label.to_string(),
            from_config: false,
        }
    }

    /// A script from the configuration file (a health check): trusted like
    /// the file, but it may carry a secret, so logs name it by `label`
    /// instead of showing it.
    pub fn from_config(script: &str, label: &str) -> Self {
        RemoteCommand {
            from_config: true,
            ..RemoteCommand::trusted(script, label)
        }
    }

    /// Append one argument, quoted.
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<str>) -> Self {
        self.line.push(' ');
        self.line.push_str(&quote(arg.as_ref()));
        self
    }

    /// Append several arguments, each quoted.
    #[must_use]
    pub fn args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        args.into_iter().fold(self, RemoteCommand::arg)
    }

    /// Run through `sudo -n` (never prompt: a password request is an error).
    #[must_use]
    pub fn sudo(mut self) -> Self {
        self.line = format!("sudo -n {}", self.line);
        self
    }

    /// Run with `NAME=value` in the environment (through `env`, so that it
    /// also works under sudo); names are literals.
    #[must_use]
    pub fn env(mut self, name: &'static str, value: &str) -> Self {
        self.line = format!("env {name}={} {}", quote(value), self.line);
        self
    }

    /// Redirect stderr into stdout, so both arrive in order.
    #[must_use]
    pub fn merge_stderr(mut self) -> Self {
        self.line.push_str(" 2>&1");
        self
    }

    /// `self; next`: run `next` whatever `self` returned.
    #[must_use]
    pub fn then(mut self, next: RemoteCommand) -> Self {
        self.line = format!("{}; {}", self.line, next.line);
        self.from_config |= next.from_config;
        self
    }

    /// The command for a log line: the full line, or for one that holds
    /// configuration text (a health check, which may carry a secret) only
    /// its name.
    pub fn for_log(&self) -> std::borrow::Cow<'_, str> {
        if self.from_config {
            format!("[{} from the configuration, not shown]", self.label).into()
        } else {
            self.line.as_str().into()
        }
    }

    /// Whether the command holds configuration text (see [`Self::for_log`]).
    pub fn is_from_config(&self) -> bool {
        self.from_config
    }

    /// Treat the command as holding configuration text: a wrapper around
    /// such a command is named in logs, never shown.
    #[must_use]
    pub fn hiding_config(mut self) -> Self {
        self.from_config = true;
        self
    }

    /// Name the command in messages (`then` keeps the first part's name).
    #[must_use]
    pub fn named(mut self, label: &str) -> Self {
        self.label = label.to_string();
        self
    }

    /// The full command line as sent to the host's shell.
    pub fn as_str(&self) -> &str {
        &self.line
    }

    /// A short name for messages (the program name).
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl fmt::Display for RemoteCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// Quote `s` for a POSIX shell. Plain words are left readable; anything
/// else is wrapped in single quotes, with embedded `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'.' | b'/' | b':' | b'=' | b'+' | b',' | b'@' | b'%' | b'-'
                )
        });
    if plain {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Run `command` on this machine as a host's shell would, under `umask
/// 077` (as a hardened sudo may), without its leading `sudo -n`, feeding it
/// `stdin`: (status, stdout, stderr). For unit tests of remote scripts.
#[cfg(test)]
pub(crate) fn run_here(command: &RemoteCommand, stdin: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let line = command.as_str();
    let line = line.strip_prefix("sudo -n ").unwrap_or(line);
    let mut child = Command::new("sh")
        .args(["-c", &format!("umask 077; {line}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("stdin written");
    let out = child.wait_with_output().expect("sh ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn logs_name_configuration_commands_instead_of_showing_them() {
        let check = RemoteCommand::from_config("curl -H 'Authorization: SECRET' x", "health check");
        assert_eq!(
            check.for_log(),
            "[health check from the configuration, not shown]"
        );
        let chained = RemoteCommand::new("true").then(check);
        assert!(!chained.for_log().contains("SECRET"));
        let plain = RemoteCommand::new("dpkg-query").arg("-W");
        assert_eq!(plain.for_log(), "dpkg-query -W");
    }

    use super::*;

    #[test]
    fn plain_words_stay_readable() {
        for w in ["fastpath=0.81", "-y", "1:1.0-1", "/var/lib/dpkg"] {
            assert_eq!(quote(w), w);
        }
    }

    #[test]
    fn everything_else_is_single_quoted() {
        let cases = [
            ("", "''"),
            ("a b", "'a b'"),
            ("$(id)", "'$(id)'"),
            ("x;rm -rf /", "'x;rm -rf /'"),
            ("it's", r"'it'\''s'"),
            ("`id`", "'`id`'"),
            ("~root", "'~root'"),
            // bash expands `~` after `=` or `:` even in plain arguments
            ("fastpath=0.81~pr748-191", "'fastpath=0.81~pr748-191'"),
            ("a\nb", "'a\nb'"),
            ("${Package}\t${Version}", "'${Package}\t${Version}'"),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want, "quoting {input:?}");
        }
    }

    #[test]
    fn quoted_text_survives_a_real_shell() {
        let nasty = [
            "it's",
            "$(echo pwned)",
            "a b\tc",
            "\\",
            "'; echo pwned; '",
            "*",
        ];
        for s in nasty {
            let cmd = RemoteCommand::new("printf").arg("%s").arg(s);
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd.as_str())
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), s, "{cmd}");
        }
    }

    #[test]
    fn builder_composes_sudo_env_and_sequences() {
        let cmd = RemoteCommand::new("apt-get")
            .args(["install", "-y", "fast path"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .sudo()
            .then(RemoteCommand::new("true"));
        assert_eq!(
            cmd.as_str(),
            "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y 'fast path'; true"
        );
        assert_eq!(cmd.label(), "apt-get");
    }
}
