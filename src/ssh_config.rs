//! OpenSSH client configuration (`~/.ssh/config`): parse and resolve the
//! options for one host alias.
//!
//! This module owns the meaning of the handful of ssh_config(5) options
//! deployer honours (`HostName`, `User`, `Port`, `IdentityFile`,
//! `UserKnownHostsFile`, `StrictHostKeyChecking`, `ConnectTimeout`,
//! `HostKeyAlias`, `IdentitiesOnly`),
//! with OpenSSH's rules: keywords are case-insensitive, `Host` blocks select
//! lines by pattern, and the first value obtained for an option wins.
//! Parsing and resolving are pure; only [`SshConfigFile::load`] reads files
//! (the config itself and what it `Include`s). It must not connect anywhere
//! or look at the environment: the caller passes the home directory in.
//!
//! Not supported: `Match` blocks (their options are skipped, with a
//! warning), `%` tokens other than the ones documented on [`HostSettings`],
//! and `~user` paths.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How deep `Include` may nest, as in OpenSSH.
const MAX_INCLUDE_DEPTH: usize = 16;

/// What `StrictHostKeyChecking` says to do with unknown or changed host
/// keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    /// `yes`/`true`: never add keys; refuse unknown hosts.
    Yes,
    /// `accept-new`: add keys of new hosts, refuse changed keys.
    AcceptNew,
    /// `no`/`false`/`off`: add new keys and connect even if a key changed.
    No,
    /// `ask`: ask the user (ssh's default).
    Ask,
}

/// The options deployer uses, as resolved for one host alias.
///
/// `None` (or an empty list) means the config does not set the option and
/// the caller applies ssh's default. Paths have `~` and the `%d` (home),
/// `%h` (resolved host name), `%n` (alias as given) and `%%` tokens
/// expanded; other `%` tokens are left as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// `HostName`: the real host to connect to, with `%h` replaced by the
    /// alias and `%%` by `%`, lowercased as ssh does.
    pub host_name: Option<String>,
    /// `User`: the remote login name.
    pub user: Option<String>,
    /// `Port`: the remote TCP port.
    pub port: Option<u16>,
    /// `IdentityFile`: every private key named by a matching block, in
    /// order, without duplicates (unlike other options, these accumulate).
    pub identity_files: Vec<PathBuf>,
    /// `UserKnownHostsFile`: the files to check host keys against; the
    /// first is where new keys are written. `none` is given as `/dev/null`,
    /// which behaves the same: nothing is trusted or recorded.
    pub user_known_hosts_files: Vec<PathBuf>,
    /// `StrictHostKeyChecking`.
    pub strict_host_key_checking: Option<StrictHostKeyChecking>,
    /// `ConnectTimeout`; zero means ssh applies no timeout of its own.
    pub connect_timeout: Option<Duration>,
    /// `HostKeyAlias`: the name to look the host key up under instead of
    /// the host name.
    pub host_key_alias: Option<String>,
    /// `IdentitiesOnly`: use only the configured identity files, not every
    /// key the agent offers.
    pub identities_only: Option<bool>,
}

/// A parsed ssh client config: the lines deployer cares about, each with
/// the `Host` patterns that must match for it to apply.
#[derive(Debug, Clone, Default)]
pub struct SshConfigFile {
    lines: Vec<Line>,
    warnings: Vec<SshConfigWarning>,
}

/// Something in the config that deployer ignores but the user should know
/// about, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfigWarning {
    /// The file the construct is in.
    pub path: PathBuf,
    /// Its 1-based line number.
    pub line: usize,
    /// What is ignored and why.
    pub message: String,
}

impl fmt::Display for SshConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// Why an ssh config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    /// A line ssh itself would reject.
    #[error("{}:{}: {}", .path.display(), .line, .message)]
    Invalid {
        /// The file with the bad line.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// A config file exists but cannot be read.
    #[error("cannot read ssh config `{}`", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `Include` chains deeper than OpenSSH allows (probably a loop).
    #[error(
        "{}:{}: `Include` nests more than {MAX_INCLUDE_DEPTH} files deep (does a file include itself?)",
        .path.display(), .line
    )]
    IncludeTooDeep {
        /// The file with the innermost `Include`.
        path: PathBuf,
        /// Its 1-based line number.
        line: usize,
    },
}

impl SshConfigError {
    /// True when the top-level file does not exist, which ssh treats as an
    /// empty config.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SshConfigError::Read { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// One meaningful line, with the conditions under which it applies.
#[derive(Debug, Clone)]
struct Line {
    /// All must match: the enclosing `Host` block, plus those of the lines
    /// that `Include`d this one.
    guards: Vec<Guard>,
    directive: Directive,
    /// Where it came from, for errors about `Include`.
    path: PathBuf,
    number: usize,
}

#[derive(Debug, Clone)]
enum Guard {
    /// A `Host` line's patterns.
    Host(Vec<HostPattern>),
    /// A `Match` block: unsupported, so never applies.
    Never,
}

#[derive(Debug, Clone)]
struct HostPattern {
    negated: bool,
    pattern: String,
}

#[derive(Debug, Clone)]
enum Directive {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    UserKnownHostsFiles(Vec<String>),
    StrictHostKeyChecking(StrictHostKeyChecking),
    ConnectTimeout(Duration),
    HostKeyAlias(String),
    IdentitiesOnly(bool),
    /// Unresolved `Include` arguments; [`SshConfigFile::load`] replaces them
    /// with the included lines.
    Include(Vec<String>),
}

impl Guard {
    fn matches(&self, alias: &str) -> bool {
        match self {
            Guard::Never => false,
            // Like ssh: any matching negated pattern vetoes the line, and
            // otherwise one positive match is needed.
            Guard::Host(patterns) => {
                let mut matched = false;
                for p in patterns {
                    if wildcard_match(&p.pattern, alias) {
                        if p.negated {
                            return false;
                        }
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

/// Matches `text` against an ssh pattern: `*` is any run of characters,
/// `?` exactly one; everything else matches itself, case-sensitively.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has swallowed.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Splits a config line into its lowercased keyword and its arguments, the
/// way ssh does: `Keyword value`, `Keyword=value` or `Keyword = value`;
/// double or single quotes group words; `#` at the start of a word begins a
/// comment. Returns `None` for blank and comment lines.
fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }

    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                (c, Some(q)) if c == q => quote = None,
                ('"' | '\'', None) => quote = Some(c),
                (c, None) if c.is_whitespace() => break,
                ('\\', _) if matches!(chars.peek(), Some('"' | '\'' | '\\' | ' ')) => {
                    word.extend(chars.next());
                }
                (c, _) => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("unterminated quote `{q}`"));
        }
        args.push(word);
    }
    Ok(Some((keyword, args)))
}

/// Parses an OpenSSH time value (`ConnectTimeout`): a number of seconds,
/// or numbers with units `s`, `m`, `h`, `d`, `w` such as `1m30s`.
fn parse_time(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = match rest.chars().next() {
            None => 1,
            Some(c) => {
                rest = &rest[1..];
                match c.to_ascii_lowercase() {
                    's' => 1,
                    'm' => 60,
                    'h' => 60 * 60,
                    'd' => 24 * 60 * 60,
                    'w' => 7 * 24 * 60 * 60,
                    _ => return None,
                }
            }
        };
        total = total.checked_add(number.checked_mul(unit)?)?;
    }
    // ssh keeps times in a C int.
    i32::try_from(total)
        .ok()
        .map(|_| Duration::from_secs(total))
}

fn parse_strict(text: &str) -> Option<StrictHostKeyChecking> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(StrictHostKeyChecking::Yes),
        "accept-new" => Some(StrictHostKeyChecking::AcceptNew),
        "no" | "false" | "off" => Some(StrictHostKeyChecking::No),
        "ask" => Some(StrictHostKeyChecking::Ask),
        _ => None,
    }
}

fn parse_flag(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// Checks that `HostName` uses only the tokens ssh expands in it.
fn check_host_name_tokens(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('h' | '%') => {}
                Some(t) => {
                    return Err(format!(
                        "`HostName` accepts only the `%h` and `%%` tokens, not `%{t}`"
                    ))
                }
                None => return Err("`HostName` ends with a lone `%` (write `%%`)".to_string()),
            }
        }
    }
    Ok(())
}

/// The argument of a keyword that takes exactly one.
fn single<'a>(keyword: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [one] => Ok(one),
        [] => Err(format!("`{keyword}` needs a value")),
        _ => Err(format!(
            "`{keyword}` takes one value, found {} (quote values that contain spaces)",
            args.len()
        )),
    }
}

impl SshConfigFile {
    /// Parses config text; `source` is only used to say where problems are.
    ///
    /// `Include` lines are kept unresolved (and ignored by
    /// [`resolve`](Self::resolve)); [`load`](Self::load) resolves them.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Invalid`] for a line ssh would reject: an option
    /// of ours with a bad value, a `Host` without patterns, an unterminated
    /// quote.
    pub fn parse(text: &str, source: &Path) -> Result<SshConfigFile, SshConfigError> {
        let mut file = SshConfigFile::default();
        let mut guard: Option<Guard> = None;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let invalid = |message: String| SshConfigError::Invalid {
                path: source.to_path_buf(),
                line: number,
                message,
            };
            let Some((keyword, args)) = split_line(raw).map_err(invalid)? else {
                continue;
            };
            let directive = match keyword.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(invalid("`Host` needs at least one pattern".to_string()));
                    }
                    let patterns = args
                        .iter()
                        .map(|arg| match arg.strip_prefix('!') {
                            Some(p) => HostPattern {
                                negated: true,
                                pattern: p.to_string(),
                            },
                            None => HostPattern {
                                negated: false,
                                pattern: arg.clone(),
                            },
                        })
                        .collect();
                    guard = Some(Guard::Host(patterns));
                    continue;
                }
                "match" => {
                    file.warnings.push(SshConfigWarning {
                        path: source.to_path_buf(),
                        line: number,
                        message: "`Match` blocks are not supported; deployer ignores the \
                                  options up to the next `Host` or `Match` line"
                            .to_string(),
                    });
                    guard = Some(Guard::Never);
                    continue;
                }
                "include" => {
                    if args.is_empty() {
                        return Err(invalid("`Include` needs a file name".to_string()));
                    }
                    Directive::Include(args)
                }
                "hostname" => {
                    let value = single("HostName", &args).map_err(invalid)?;
                    check_host_name_tokens(value).map_err(invalid)?;
                    Directive::HostName(value.to_string())
                }
                "user" => Directive::User(single("User", &args).map_err(invalid)?.to_string()),
                "port" => {
                    let value = single("Port", &args).map_err(invalid)?;
                    let port = value.parse::<u16>().ok().filter(|&p| p != 0);
                    Directive::Port(port.ok_or_else(|| {
                        invalid(format!(
                            "`Port` must be a number from 1 to 65535, not `{value}`"
                        ))
                    })?)
                }
                "identityfile" => {
                    Directive::IdentityFile(single("IdentityFile", &args).map_err(invalid)?.into())
                }
                "userknownhostsfile" => {
                    if args.is_empty() {
                        return Err(invalid("`UserKnownHostsFile` needs a file name".into()));
                    }
                    Directive::UserKnownHostsFiles(args)
                }
                "stricthostkeychecking" => {
                    let value = single("StrictHostKeyChecking", &args).map_err(invalid)?;
                    Directive::StrictHostKeyChecking(parse_strict(value).ok_or_else(|| {
                        invalid(format!(
                            "`StrictHostKeyChecking` must be `yes`, `accept-new`, `no`, \
                             `ask` or `off`, not `{value}`"
                        ))
                    })?)
                }
                "connecttimeout" => {
                    let value = single("ConnectTimeout", &args).map_err(invalid)?;
                    Directive::ConnectTimeout(parse_time(value).ok_or_else(|| {
                        invalid(format!(
                            "`ConnectTimeout` must be a number of seconds such as `10`, \
                             or a time with units such as `1m30s`, not `{value}`"
                        ))
                    })?)
                }
                "hostkeyalias" => {
                    Directive::HostKeyAlias(single("HostKeyAlias", &args).map_err(invalid)?.into())
                }
                "identitiesonly" => {
                    let value = single("IdentitiesOnly", &args).map_err(invalid)?;
                    Directive::IdentitiesOnly(parse_flag(value).ok_or_else(|| {
                        invalid(format!(
                            "`IdentitiesOnly` must be `yes` or `no`, not `{value}`"
                        ))
                    })?)
                }
                // ssh has hundreds of options; the rest are not ours to check.
                _ => continue,
            };
            file.lines.push(Line {
                guards: guard.iter().cloned().collect(),
                directive,
                path: source.to_path_buf(),
                number,
            });
        }
        Ok(file)
    }

    /// Reads and parses the config at `path`, replacing each `Include` with
    /// the files it names: relative names are taken from `home/.ssh/`, `~`
    /// means `home`, `*` and `?` expand like a shell glob, and names that
    /// match nothing are skipped, as ssh does.
    ///
    /// # Errors
    ///
    /// [`SshConfigError::Read`] when a file cannot be read (see
    /// [`SshConfigError::is_not_found`] for a missing top-level file),
    /// [`SshConfigError::Invalid`] for a bad line in any of the files, and
    /// [`SshConfigError::IncludeTooDeep`] for runaway `Include` chains.
    pub fn load(path: &Path, home: &Path) -> Result<SshConfigFile, SshConfigError> {
        Self::load_nested(path, home, 0)
    }

    fn load_nested(path: &Path, home: &Path, depth: usize) -> Result<Self, SshConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| SshConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = Self::parse(&text, path)?;
        let mut file = SshConfigFile {
            lines: Vec::new(),
            warnings: parsed.warnings,
        };
        for line in parsed.lines {
            let Directive::Include(names) = &line.directive else {
                file.lines.push(line);
                continue;
            };
            if depth + 1 >= MAX_INCLUDE_DEPTH {
                return Err(SshConfigError::IncludeTooDeep {
                    path: line.path.clone(),
                    line: line.number,
                });
            }
            for name in names {
                for included_path in expand_include(name, home) {
                    let included = Self::load_nested(&included_path, home, depth + 1)?;
                    file.warnings.extend(included.warnings);
                    // The included lines apply only where the Include line
                    // itself applies.
                    file.lines
                        .extend(included.lines.into_iter().map(|mut inner| {
                            inner.guards.splice(0..0, line.guards.iter().cloned());
                            inner
                        }));
                }
            }
        }
        Ok(file)
    }

    /// Constructs deployer ignores, such as `Match` blocks, to show the user.
    pub fn warnings(&self) -> &[SshConfigWarning] {
        &self.warnings
    }

    /// The settings for `alias` (the host as typed, e.g. in deployer.ini):
    /// for each option, the first value from a line whose `Host` patterns
    /// match, except `IdentityFile`, which accumulates. `home` expands `~`
    /// and `%d` in paths.
    pub fn resolve(&self, alias: &str, home: &Path) -> HostSettings {
        let mut settings = HostSettings::default();
        let mut identity_files: Vec<&str> = Vec::new();
        let mut known_hosts: Option<&[String]> = None;
        for line in &self.lines {
            if !line.guards.iter().all(|g| g.matches(alias)) {
                continue;
            }
            match &line.directive {
                Directive::HostName(v) => {
                    settings.host_name.get_or_insert_with(|| {
                        expand_tokens(v, &[('h', alias)]).to_ascii_lowercase()
                    });
                }
                Directive::User(v) => {
                    settings.user.get_or_insert_with(|| v.clone());
                }
                Directive::Port(p) => {
                    settings.port.get_or_insert(*p);
                }
                Directive::IdentityFile(v) => {
                    if !identity_files.contains(&v.as_str()) {
                        identity_files.push(v);
                    }
                }
                Directive::UserKnownHostsFiles(v) => {
                    known_hosts.get_or_insert(v);
                }
                Directive::StrictHostKeyChecking(s) => {
                    settings.strict_host_key_checking.get_or_insert(*s);
                }
                Directive::ConnectTimeout(t) => {
                    settings.connect_timeout.get_or_insert(*t);
                }
                Directive::HostKeyAlias(v) => {
                    settings.host_key_alias.get_or_insert_with(|| v.clone());
                }
                Directive::IdentitiesOnly(b) => {
                    settings.identities_only.get_or_insert(*b);
                }
                Directive::Include(_) => {}
            }
        }

        let host = settings
            .host_name
            .clone()
            .unwrap_or_else(|| alias.to_ascii_lowercase());
        let home_text = home.to_string_lossy();
        let expand = |path: &str| {
            let path = expand_tokens(path, &[('d', &home_text), ('h', &host), ('n', alias)]);
            expand_tilde(&path, home)
        };
        settings.identity_files = identity_files.into_iter().map(expand).collect();
        settings.user_known_hosts_files = known_hosts
            .unwrap_or_default()
            .iter()
            .map(|p| {
                if p.eq_ignore_ascii_case("none") {
                    PathBuf::from("/dev/null")
                } else {
                    expand(p)
                }
            })
            .collect();
        settings
    }
}

/// Replaces `%x` tokens from `values` and `%%`; leaves unknown tokens as
/// written.
fn expand_tokens(text: &str, values: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match values.iter().find(|(k, _)| *k == t) {
                Some((_, value)) => out.push_str(value),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// `~` or `~/...` relative to `home`; anything else unchanged.
fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        home.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(path)
    }
}

/// The files an `Include` argument names, sorted; reads directories only
/// to expand `*` and `?`.
fn expand_include(name: &str, home: &Path) -> Vec<PathBuf> {
    let path = expand_tilde(name, home);
    let path = if path.is_absolute() {
        path
    } else {
        home.join(".ssh").join(path)
    };
    let mut candidates = vec![PathBuf::new()];
    for component in path.components() {
        let part = component.as_os_str().to_string_lossy();
        if !part.contains(['*', '?']) {
            for c in &mut candidates {
                c.push(component);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &candidates {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                // Like glob(3), wildcards do not match a leading dot.
                let hidden = file_name.starts_with('.') && !part.starts_with('.');
                if !hidden && wildcard_match(&part, &file_name) {
                    next.push(dir.join(&file_name));
                }
            }
        }
        candidates = next;
    }
    candidates.retain(|p| p.is_file());
    candidates.sort();
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "/home/op";

    fn parse(text: &str) -> SshConfigFile {
        SshConfigFile::parse(text, Path::new("config")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn resolve(text: &str, alias: &str) -> HostSettings {
        parse(text).resolve(alias, Path::new(HOME))
    }

    #[test]
    fn wildcard_patterns() {
        let table: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("*.ooni.org", "ams-pg.ooni.org", true),
            ("*.ooni.org", "ooni.org", false),
            ("ams-*", "ams-pg.ooni.org", true),
            ("ams-?", "ams-1", true),
            ("ams-?", "ams-12", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*x", "xxxx", true),
            ("web", "web", true),
            ("web", "Web", false),
            ("web", "web1", false),
        ];
        for &(pattern, text, expected) in table {
            assert_eq!(
                wildcard_match(pattern, text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn host_lines_with_several_patterns_and_negation() {
        let config = "Host *.ooni.org !ams-* backend\n  User matched\n";
        let table: &[(&str, Option<&str>)] = &[
            ("fsn.ooni.org", Some("matched")),
            ("backend", Some("matched")),
            ("ams-pg.ooni.org", None),
            ("example.com", None),
        ];
        for &(alias, user) in table {
            assert_eq!(resolve(config, alias).user.as_deref(), user, "{alias}");
        }
        // A negated pattern alone never selects anything.
        assert_eq!(resolve("Host !foo\n User x\n", "bar").user, None);
    }

    #[test]
    fn first_obtained_value_wins_and_defaults_go_last() {
        let config = "\
# global options apply to every host
ConnectTimeout 5

Host web*
  User deploy
  Port 2222

Host web1
  User other
  Port 22
  HostName 10.0.0.1

Host *
  User fallback
  Port 2200
  StrictHostKeyChecking accept-new
";
        let web1 = resolve(config, "web1");
        assert_eq!(web1.user.as_deref(), Some("deploy"));
        assert_eq!(web1.port, Some(2222));
        assert_eq!(web1.host_name.as_deref(), Some("10.0.0.1"));
        assert_eq!(web1.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            web1.strict_host_key_checking,
            Some(StrictHostKeyChecking::AcceptNew)
        );

        let db = resolve(config, "db");
        assert_eq!(db.user.as_deref(), Some("fallback"));
        assert_eq!(db.port, Some(2200));
        assert_eq!(db.host_name, None);
    }

    #[test]
    fn nothing_set_gives_defaults() {
        assert_eq!(resolve("", "any"), HostSettings::default());
        assert_eq!(
            resolve("Host other\n User x\n", "any"),
            HostSettings::default()
        );
    }

    #[test]
    fn host_name_tokens() {
        let table: &[(&str, &str, &str)] = &[
            ("HostName %h.example.org", "web", "web.example.org"),
            ("HostName %h.example.org", "Web", "web.example.org"),
            ("HostName 100%%.%h", "x", "100%.x"),
            ("HostName EXAMPLE.org", "x", "example.org"),
        ];
        for &(line, alias, expected) in table {
            let config = format!("Host *\n {line}\n");
            assert_eq!(
                resolve(&config, alias).host_name.as_deref(),
                Some(expected),
                "{line}"
            );
        }
    }

    #[test]
    fn line_syntax_variants() {
        let table: &[(&str, &str)] = &[
            ("User alice", "alice"),
            ("User=alice", "alice"),
            ("User = alice", "alice"),
            ("  user\talice  ", "alice"),
            ("USER alice", "alice"),
            ("uSeR=alice # who we are", "alice"),
            ("User \"alice\"", "alice"),
            ("User 'alice'", "alice"),
            ("User \"al ice\"", "al ice"),
            ("User al\"ice\"", "alice"),
            ("User \"#notacomment\"", "#notacomment"),
        ];
        for &(line, user) in table {
            assert_eq!(resolve(line, "h").user.as_deref(), Some(user), "{line:?}");
        }
    }

    #[test]
    fn all_options_with_paths_expanded() {
        let config = r#"
Host ams-pg
  HostName ams-pg.ooni.org
  IdentityFile ~/.ssh/id_%h
  IdentityFile "/keys/with space"
  UserKnownHostsFile ~/.ssh/known_hosts_deploy %d/.ssh/known_hosts
  StrictHostKeyChecking yes
  ConnectTimeout 1m30s
  HostKeyAlias ams-pg-key
  IdentitiesOnly yes
  BatchMode yes
  ControlMaster auto
Host *
  IdentityFile ~/.ssh/id_ed25519
  IdentityFile ~/.ssh/id_%h
  IdentityFile %n.key
  UserKnownHostsFile /ignored
"#;
        let settings = resolve(config, "ams-pg");
        assert_eq!(
            settings,
            HostSettings {
                host_name: Some("ams-pg.ooni.org".into()),
                user: None,
                port: None,
                identity_files: vec![
                    "/home/op/.ssh/id_ams-pg.ooni.org".into(),
                    "/keys/with space".into(),
                    "/home/op/.ssh/id_ed25519".into(),
                    "ams-pg.key".into(),
                ],
                user_known_hosts_files: vec![
                    "/home/op/.ssh/known_hosts_deploy".into(),
                    "/home/op/.ssh/known_hosts".into(),
                ],
                strict_host_key_checking: Some(StrictHostKeyChecking::Yes),
                connect_timeout: Some(Duration::from_secs(90)),
                host_key_alias: Some("ams-pg-key".into()),
                identities_only: Some(true),
            }
        );
    }

    #[test]
    fn strict_host_key_checking_values() {
        use StrictHostKeyChecking::*;
        let table: &[(&str, StrictHostKeyChecking)] = &[
            ("yes", Yes),
            ("true", Yes),
            ("accept-new", AcceptNew),
            ("Accept-New", AcceptNew),
            ("no", No),
            ("false", No),
            ("off", No),
            ("ask", Ask),
        ];
        for &(value, expected) in table {
            let config = format!("StrictHostKeyChecking {value}");
            assert_eq!(
                resolve(&config, "h").strict_host_key_checking,
                Some(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn connect_timeout_values() {
        let table: &[(&str, u64)] = &[
            ("10", 10),
            ("0", 0),
            ("1m", 60),
            ("1m30s", 90),
            ("1M30S", 90),
            ("2h", 7200),
            ("1d", 86400),
            ("1w", 604_800),
            ("5s5", 10),
        ];
        for &(value, seconds) in table {
            let config = format!("ConnectTimeout {value}");
            assert_eq!(
                resolve(&config, "h").connect_timeout,
                Some(Duration::from_secs(seconds)),
                "{value}"
            );
        }
    }

    #[test]
    fn known_hosts_none_trusts_and_records_nothing() {
        let settings = resolve("UserKnownHostsFile none", "h");
        assert_eq!(
            settings.user_known_hosts_files,
            vec![PathBuf::from("/dev/null")]
        );
    }

    #[test]
    fn match_blocks_are_skipped_with_a_warning() {
        let config = "\
Match host web exec \"true\"
  User from-match
  Port 1
Host web
  User from-host
";
        let file = parse(config);
        let settings = file.resolve("web", Path::new(HOME));
        assert_eq!(settings.user.as_deref(), Some("from-host"));
        assert_eq!(settings.port, None);
        assert_eq!(file.warnings().len(), 1);
        assert_eq!(
            file.warnings()[0].to_string(),
            "config:1: `Match` blocks are not supported; deployer ignores the options \
             up to the next `Host` or `Match` line"
        );
    }

    #[test]
    fn errors_name_file_line_and_what_is_accepted() {
        let table: &[(&str, &str)] = &[
            (
                "Host a\n  Port ssh\n",
                "config:2: `Port` must be a number from 1 to 65535, not `ssh`",
            ),
            (
                "Port 0",
                "config:1: `Port` must be a number from 1 to 65535, not `0`",
            ),
            (
                "Port 65536",
                "config:1: `Port` must be a number from 1 to 65535, not `65536`",
            ),
            (
                "\n\n\nConnectTimeout 5x",
                "config:4: `ConnectTimeout` must be a number of seconds such as `10`, \
                 or a time with units such as `1m30s`, not `5x`",
            ),
            (
                "ConnectTimeout -1",
                "config:1: `ConnectTimeout` must be a number of seconds such as `10`, \
                 or a time with units such as `1m30s`, not `-1`",
            ),
            (
                "StrictHostKeyChecking maybe",
                "config:1: `StrictHostKeyChecking` must be `yes`, `accept-new`, `no`, \
                 `ask` or `off`, not `maybe`",
            ),
            (
                "IdentitiesOnly sometimes",
                "config:1: `IdentitiesOnly` must be `yes` or `no`, not `sometimes`",
            ),
            ("Host", "config:1: `Host` needs at least one pattern"),
            ("User", "config:1: `User` needs a value"),
            (
                "IdentityFile ~/a b",
                "config:1: `IdentityFile` takes one value, found 2 \
                 (quote values that contain spaces)",
            ),
            ("User \"alice", "config:1: unterminated quote `\"`"),
            (
                "HostName %r.example",
                "config:1: `HostName` accepts only the `%h` and `%%` tokens, not `%r`",
            ),
        ];
        for &(config, message) in table {
            let err = SshConfigFile::parse(config, Path::new("config"))
                .expect_err(&format!("{config:?} should be rejected"));
            assert_eq!(err.to_string(), message, "{config:?}");
        }
    }

    #[test]
    fn unknown_keywords_are_ignored() {
        let config = "ForwardAgent yes\nControlPath ~/.ssh/cm-%C\nSomeFutureOption x y z\n";
        assert_eq!(resolve(config, "h"), HostSettings::default());
        assert!(parse(config).warnings().is_empty());
    }

    #[test]
    fn unresolved_includes_are_ignored_by_parse() {
        let settings = resolve("Include config.d/*\nUser me\n", "h");
        assert_eq!(settings.user.as_deref(), Some("me"));
    }

    #[test]
    fn load_splices_includes_under_their_host_block() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("config.d")).unwrap();
        std::fs::write(
            ssh.join("config"),
            "Host *.ooni.org\n  Include config.d/*.conf\nHost *\n  User fallback\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/a.conf"), "Port 2222\nMatch all\n").unwrap();
        std::fs::write(
            ssh.join("config.d/b.conf"),
            "Host ams-*\n  User ams\nHost *\n  IdentityFile ~/.ssh/ooni\n",
        )
        .unwrap();
        std::fs::write(ssh.join("config.d/ignored.txt"), "User wrong\n").unwrap();

        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        let ams = file.resolve("ams-pg.ooni.org", home.path());
        assert_eq!(ams.port, Some(2222));
        assert_eq!(ams.user.as_deref(), Some("ams"));
        assert_eq!(ams.identity_files, vec![ssh.join("ooni")]);

        let fsn = file.resolve("fsn.ooni.org", home.path());
        assert_eq!(fsn.user.as_deref(), Some("fallback"));
        assert_eq!(fsn.port, Some(2222));

        // Included lines do not escape the Host block that included them.
        let other = file.resolve("example.com", home.path());
        assert_eq!(other.port, None);
        assert!(other.identity_files.is_empty());

        assert_eq!(file.warnings().len(), 1);
        assert_eq!(file.warnings()[0].path, ssh.join("config.d/a.conf"));
        assert_eq!(file.warnings()[0].line, 2);
    }

    #[test]
    fn load_reports_missing_files_and_include_loops() {
        let home = tempfile::tempdir().unwrap();
        let missing = SshConfigFile::load(&home.path().join("nope"), home.path()).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");

        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("config"), "Include config\n").unwrap();
        let err = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap_err();
        assert!(
            matches!(err, SshConfigError::IncludeTooDeep { line: 1, .. }),
            "{err}"
        );

        // A missing include is skipped, as ssh does.
        std::fs::write(ssh.join("config"), "Include absent\nUser me\n").unwrap();
        let file = SshConfigFile::load(&ssh.join("config"), home.path()).unwrap();
        assert_eq!(file.resolve("h", home.path()).user.as_deref(), Some("me"));
    }
}
