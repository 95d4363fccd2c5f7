//! Value grammars: the text of one `key = value` setting -> a typed value,
//! or an [`Invalid`] saying what is wrong and what is accepted.
//!
//! Pure functions of one value's text: they know neither the key, the
//! section nor the line (the caller words the error with those), and never
//! look at anything but their argument.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::{NotifyEvent, WebhookFormat, LOCAL_HOST, MAX_PARALLELISM};
use crate::plan::Share;
use crate::ssh_config::JumpHost;

pub(crate) const ACCEPTED_BOOL: &str =
    "accepted: `yes`, `no`, `true`, `false`, `on`, `off`, `1`, `0`";
pub(crate) const ACCEPTED_DURATION: &str =
    "accepted: whole seconds greater than zero, bare or with `s`, or minutes with `m`: `30`, `30s`, `2m`";
pub(crate) const ACCEPTED_STAGE: &str =
    "stage names are a letter or digit followed by letters, digits, \
                              `_`, `.` or `-` (they become parts of file names)";
pub(crate) const ACCEPTED_PACKAGE: &str = "Debian package names are lowercase letters, digits, `+`, `-` and \
                                `.`, start with a letter or digit, and are at least 2 characters long";

/// Why a value was refused: what is wrong, and what is accepted.
pub(crate) struct Invalid {
    /// What is wrong, e.g. "not a duration".
    pub(crate) reason: String,
    /// What would be accepted, for the `note:` line.
    pub(crate) accepted: String,
}

impl Invalid {
    pub(crate) fn new(reason: impl Into<String>, accepted: impl Into<String>) -> Self {
        Invalid {
            reason: reason.into(),
            accepted: accepted.into(),
        }
    }
}

/// A host as written in `hosts`: `[user@]name[:port]`, or `local`.
///
/// Host text reaches SSH and the logs, so only this narrow grammar is
/// accepted: `name` is `[A-Za-z0-9][A-Za-z0-9._-]*` and `user` is
/// `[A-Za-z0-9_][A-Za-z0-9._-]*`. Nothing can start with `-`, and there is no
/// room for spaces, quotes or shell punctuation.
///
/// Parsed once, when the configuration is read; `Display` (and
/// [`HostSpec::as_str`]) give the text as written, which is how messages,
/// the history and the matrix name the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The login user before `@`, if any.
    pub user: Option<String>,
    /// The host name or address.
    pub name: String,
    /// The port after `:`, if any.
    pub port: Option<u16>,
    /// The text as written.
    written: String,
}

impl HostSpec {
    /// Split and check host text; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<HostSpec, String> {
        if text.starts_with('#') || text.starts_with(';') {
            return Err(
                "it looks like a comment, but comments must be on a line of their own".into(),
            );
        }
        let (user, rest) = match text.split_once('@') {
            Some((user, rest)) => {
                if !is_user_name(user) {
                    return Err(format!(
                        "the user `{user}` must be letters, digits, `_`, `.` or `-`, \
                         not starting with `.` or `-`"
                    ));
                }
                (Some(user.to_string()), rest)
            }
            None => (None, text),
        };
        let (name, port) = match bracketed(rest)? {
            Some(parsed) => parsed,
            None => match rest.split_once(':') {
                Some((name, port)) => match port.parse::<u16>() {
                    Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => (name, Some(p)),
                    _ => {
                        return Err(format!(
                            "the port `{port}` must be a number from 1 to 65535"
                        ))
                    }
                },
                None => (rest, None),
            },
        };
        if !is_host_name(name) && name.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "the host name `{name}` must be letters, digits, `.`, `_` or `-`, \
                 starting with a letter or digit"
            ));
        }
        if name == LOCAL_HOST && (user.is_some() || port.is_some()) {
            return Err("`local` means this machine and takes no user or port".into());
        }
        Ok(HostSpec {
            user,
            name: name.to_string(),
            port,
            written: text.to_string(),
        })
    }

    /// Whether this is `local`: this machine, reached without SSH.
    pub fn is_local(&self) -> bool {
        self.name == LOCAL_HOST && self.user.is_none() && self.port.is_none()
    }

    /// The host as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.written
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl PartialEq<str> for HostSpec {
    fn eq(&self, other: &str) -> bool {
        self.written == other
    }
}

impl PartialEq<&str> for HostSpec {
    fn eq(&self, other: &&str) -> bool {
        self.written == *other
    }
}

/// `[v6]` or `[v6]:port`: an IPv6 literal in brackets, as ssh writes it;
/// `None` when `text` does not start with `[`.
pub(crate) fn bracketed(text: &str) -> Result<Option<(&str, Option<u16>)>, String> {
    let Some(inner) = text.strip_prefix('[') else {
        return Ok(None);
    };
    let Some((address, after)) = inner.split_once(']') else {
        return Err(format!(
            "`{text}` has `[` without `]`; write IPv6 addresses as `[2001:db8::1]:22`"
        ));
    };
    if address.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(format!("`{address}` in brackets is not an IPv6 address"));
    }
    let port = match after {
        "" => None,
        _ => match after.strip_prefix(':').map(|p| (p, p.parse::<u16>())) {
            Some((p, Ok(port))) if port > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(port),
            _ => {
                return Err(format!(
                    "the port `{}` must be a number from 1 to 65535",
                    after.trim_start_matches(':')
                ))
            }
        },
    };
    Ok(Some((address, port)))
}

pub(crate) fn is_host_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(crate) fn is_user_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(crate) fn is_stage_name(s: &str) -> bool {
    // Same alphabet as a host name: `[A-Za-z0-9][A-Za-z0-9_.-]*`.
    is_host_name(s)
}

/// `units`: systemd unit names, checked as systemd does (see
/// [`crate::service::parse_unit`]).
pub(crate) fn parse_units(s: &str) -> Result<Vec<crate::service::Unit>, Invalid> {
    s.split_whitespace()
        .map(|word| {
            crate::service::parse_unit(word).map_err(|why| {
                Invalid::new(
                    format!(
                        "`{}` is not a unit name: {why}",
                        crate::text::one_line(word)
                    ),
                    crate::service::ACCEPTED_UNIT,
                )
            })
        })
        .collect()
}

/// The default `dashboard_changes`: six hours.
pub(crate) const DEFAULT_DASHBOARD_CHANGES: u64 = 6 * 3600;

/// `dashboard_changes`: a window such as `6h` (as `deployer timeline
/// --since` takes a duration), or `no` for none.
pub(crate) fn parse_window(s: &str) -> Result<Option<u64>, Invalid> {
    const ACCEPTED: &str =
        "accepted: a duration with its unit, `30m`, `6h`, `2d` (s, m, h, d, w), or `no`";
    if matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "no" | "off" | "false"
    ) {
        return Ok(None);
    }
    match crate::timeline::parse_duration(s.trim()) {
        Some(secs) if secs > 0 => Ok(Some(secs.unsigned_abs())),
        _ => Err(Invalid::new("not a window", ACCEPTED)),
    }
}

pub(crate) fn parse_bool(s: &str) -> Result<bool, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(Invalid::new("expected yes or no", ACCEPTED_BOOL)),
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, Invalid> {
    let s = s.trim();
    let (digits, unit) = match s.strip_suffix('m') {
        Some(d) => (d, 60),
        None => (s.strip_suffix('s').unwrap_or(s), 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new("not a duration", ACCEPTED_DURATION));
    }
    let seconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| Invalid::new("too large", ACCEPTED_DURATION))?;
    if seconds == 0 {
        return Err(Invalid::new(
            "it must be longer than zero",
            ACCEPTED_DURATION,
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// The shortest `lock_expiry`: heartbeats go out every sixth of it, and one
/// heartbeat may wait a few seconds for a busy connection; shorter, a live
/// deploy could lose its lock.
pub const MIN_LOCK_EXPIRY: Duration = Duration::from_secs(10);

pub(crate) fn parse_lock_expiry(s: &str) -> Result<Duration, Invalid> {
    let accepted = "accepted: a duration of at least 10s, e.g. `90s` or `2m` (default 90s)";
    let d = parse_duration(s).map_err(|e| Invalid::new(e.reason, accepted))?;
    if d < MIN_LOCK_EXPIRY {
        return Err(Invalid::new("too short", accepted));
    }
    Ok(d)
}

/// The shortest and the longest `dashboard_refresh` (`0`, off, aside):
/// a wall screen reloading more often than every 10 s would flicker and
/// load the web server for nothing; one reloading less often than daily
/// is not on a wall.
pub const DASHBOARD_REFRESH_RANGE: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(86_400));

/// `dashboard_refresh`: `0` (off: `None`), or a duration from 10s to
/// 24h.
pub(crate) fn parse_dashboard_refresh(s: &str) -> Result<Option<Duration>, Invalid> {
    let accepted = "accepted: `0` (the page never reloads itself), or a duration from \
                    10s to 1440m, e.g. `60` (seconds), `90s` or `5m`: set it to how often \
                    cron runs `refresh_badges` (default 5m)";
    if s.trim() == "0" {
        return Ok(None);
    }
    let d = parse_duration(s).map_err(|e| Invalid::new(e.reason, accepted))?;
    let (min, max) = DASHBOARD_REFRESH_RANGE;
    if d < min {
        return Err(Invalid::new("too short", accepted));
    }
    if d > max {
        return Err(Invalid::new("too long", accepted));
    }
    Ok(Some(d))
}

pub(crate) fn parse_count(
    s: &str,
    min: usize,
    max: usize,
    accepted: &str,
) -> Result<usize, Invalid> {
    let s = s.trim();
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new("not a whole number", accepted));
    }
    match s.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Invalid::new("out of range", accepted)),
    }
}

pub(crate) fn parse_parallelism(s: &str) -> Result<usize, Invalid> {
    parse_count(
        s,
        1,
        MAX_PARALLELISM,
        "accepted: a whole number from 1 to 1024 (default 64)",
    )
}

pub(crate) fn parse_max_startups(s: &str) -> Result<usize, Invalid> {
    parse_count(
        s,
        1,
        MAX_PARALLELISM,
        "accepted: a whole number from 1 to 1024 (default 8, below sshd's default \
         `MaxStartups 10:30:100`)",
    )
}

pub(crate) fn parse_batch_size(s: &str) -> Result<Share, Invalid> {
    Share::parse(s.trim(), 1).map_err(|reason| Invalid::new(reason, ACCEPTED_BATCH_SIZE))
}

/// What `batch_size` (and `--batch`) accept.
pub const ACCEPTED_BATCH_SIZE: &str = "accepted: a whole number of hosts, at least 1, or a \
     percentage of the hosts taking part from 1% to 100%, written without a space (`25%`), \
     rounded up (default 1)";

/// `max_failures`: a count, or a percentage of the stage's hosts taking
/// part, rounded down.
pub(crate) fn parse_max_failures(s: &str) -> Result<Share, Invalid> {
    Share::parse(s.trim(), 0).map_err(|reason| {
        Invalid::new(
            reason,
            "accepted: a whole number of hosts (0, the default, halts on the first failure), \
             or a percentage of the hosts taking part from 0% to 100%, written without a space \
             (`10%`), rounded down",
        )
    })
}

pub(crate) fn parse_port(s: &str) -> Result<u16, Invalid> {
    let accepted = "accepted: a whole number from 1 to 65535";
    parse_count(s, 1, 65535, accepted).map(|n| u16::try_from(n).expect("checked range"))
}

pub(crate) fn parse_user(s: &str) -> Result<String, Invalid> {
    let s = s.trim();
    if is_user_name(s) {
        Ok(s.to_string())
    } else {
        Err(Invalid::new(
            "not a user name",
            "accepted: letters, digits, `_`, `.` and `-`, starting with a letter, digit or `_`",
        ))
    }
}

/// `ssh_proxy_jump`: `none`, or `[user@]host[:port]` hops separated by
/// commas (IPv6 literals in brackets), each in the narrow grammar of
/// `hosts`.
pub(crate) fn parse_proxy_jump(s: &str) -> Result<Vec<JumpHost>, Invalid> {
    const ACCEPTED: &str = "accepted: `none`, or jump hosts `[user@]host[:port]` separated by \
                            commas, first hop first, e.g. `bastion.example.org` or \
                            `ops@bastion:2222,inner-bastion`";
    let s = s.trim();
    let hops = crate::ssh_config::parse_jump_list(s).map_err(|e| Invalid::new(e, ACCEPTED))?;
    for hop in &hops {
        let host_ok = is_host_name(&hop.host) || hop.host.parse::<std::net::Ipv6Addr>().is_ok();
        let user_ok = hop.user.as_deref().is_none_or(is_user_name);
        if !host_ok || !user_ok || hop.host == LOCAL_HOST {
            return Err(Invalid::new(
                format!("`{hop}` is not a host name (with optional user and port)"),
                ACCEPTED,
            ));
        }
    }
    Ok(hops)
}

pub(crate) fn parse_path(s: &str) -> Result<PathBuf, Invalid> {
    let s = s.trim();
    if s.starts_with('~') && s != "~" && !s.starts_with("~/") {
        return Err(Invalid::new(
            "only `~/` (your own home) is expanded",
            "write the full path, or start it with `~/`",
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(
            "it contains a control character",
            "write the path on one line, as plain text",
        ));
    }
    Ok(PathBuf::from(s))
}

/// A directory on the hosts: absolute, since a host has no working
/// directory of ours and `~` would be this machine's home.
pub(crate) fn parse_host_dir(s: &str) -> Result<PathBuf, Invalid> {
    let path = parse_path(s)?;
    if !path.is_absolute() {
        return Err(Invalid::new(
            "it is a directory on every host, so it must be an absolute path",
            "write the full path, e.g. `/var/www/package_badges`",
        ));
    }
    Ok(path)
}

pub(crate) fn parse_path_list(s: &str) -> Result<Vec<PathBuf>, Invalid> {
    s.split_whitespace().map(parse_path).collect()
}

/// `webhook_url`: an `http://` or `https://` URL with a host, kept as
/// written; no spaces or control characters.
pub(crate) fn parse_webhook_url(s: &str) -> Result<String, Invalid> {
    const ACCEPTED: &str = "accepted: an `http://` or `https://` URL, e.g. \
                            `https://ntfy.example.org/deploys` or \
                            `https://hooks.slack.com/services/...`";
    let s = s.trim();
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(
            "a URL has no spaces or control characters",
            ACCEPTED,
        ));
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(Invalid::new("not a URL", ACCEPTED));
    };
    if !is_scheme(scheme) {
        // not shown: what comes before `://` is then no scheme, and may
        // be a token
        return Err(Invalid::new("not a URL", ACCEPTED));
    }
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Invalid::new(
            format!("the scheme `{scheme}` is neither `http` nor `https`"),
            ACCEPTED,
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((address, port)) if address.parse::<std::net::Ipv6Addr>().is_ok() => {
                check_url_port(port.strip_prefix(':'), port.is_empty())?;
                return Ok(s.to_string());
            }
            _ => {
                return Err(Invalid::new(
                    "the IPv6 address in brackets is not valid",
                    ACCEPTED,
                ))
            }
        },
        None => match host_port.split_once(':') {
            Some((host, port)) => {
                check_url_port(Some(port), false)?;
                host
            }
            None => host_port,
        },
    };
    if !is_host_name(host) {
        return Err(Invalid::new(
            if host.is_empty() {
                "it has no host".to_string()
            } else {
                format!("`{host}` is not a host name")
            },
            ACCEPTED,
        ));
    }
    Ok(s.to_string())
}

/// Alertmanager matchers (`[alerts] matchers`, `alert_matchers`): the
/// matcher at fault and what is wrong with it, or the list.
pub(crate) fn parse_matchers(s: &str) -> Result<Vec<crate::alerts::Matcher>, Invalid> {
    crate::alerts::matcher::parse_list(s).map_err(|bad| {
        Invalid::new(
            format!(
                "the matcher `{}`: {}",
                crate::text::clipped_line(&bad.matcher, 200),
                bad.reason
            ),
            crate::alerts::matcher::ACCEPTED,
        )
    })
}

/// `on_unreachable`: `refuse` or `allow`.
pub(crate) fn parse_on_unreachable(s: &str) -> Result<crate::alerts::OnUnreachable, Invalid> {
    match s.trim() {
        "refuse" => Ok(crate::alerts::OnUnreachable::Refuse),
        "allow" => Ok(crate::alerts::OnUnreachable::Allow),
        _ => Err(Invalid::new(
            "neither `refuse` nor `allow`",
            "accepted: `refuse` (the default: a deploy is refused when Alertmanager cannot be \
             asked) or `allow` (it goes on, with a warning)",
        )),
    }
}

/// A webhook URL as every message shows it: its scheme and host (with the
/// port), never its user part, path, query or fragment, which may hold a
/// token; `…` marks what was left out. Text that does not even look like
/// a URL is not shown at all.
pub fn webhook_shown(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not shown: it may hold a token)".to_string();
    };
    let scheme_ok = is_scheme(scheme);
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .split(char::is_whitespace)
        .next()
        .unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'));
    let mut shown = format!(
        "{}://{}",
        if scheme_ok { scheme } else { "…" },
        if host_ok { host } else { "…" }
    );
    if host.len() != rest.len() {
        shown.push_str("/…");
    }
    shown
}

/// Whether `s` is a URL scheme: a letter, then letters, digits, `+`, `-`
/// or `.` (RFC 3986).
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The port of a URL: absent, or 1 to 65535.
fn check_url_port(port: Option<&str>, absent: bool) -> Result<(), Invalid> {
    match port {
        None if absent => Ok(()),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0) => Ok(()),
        _ => Err(Invalid::new(
            "the port must be a number from 1 to 65535",
            "accepted: an `http://` or `https://` URL, e.g. `https://ntfy.example.org:8443/deploys`",
        )),
    }
}

/// `webhook_format`: `text` or `slack`.
pub(crate) fn parse_webhook_format(s: &str) -> Result<WebhookFormat, Invalid> {
    match s.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(WebhookFormat::Text),
        "slack" => Ok(WebhookFormat::Slack),
        _ => Err(Invalid::new(
            "expected `text` or `slack`",
            "accepted: `text` (a plain-text POST, as ntfy takes), or `slack` (a JSON \
             `{\"text\": ...}` body, as Slack, Mattermost and Rocket.Chat incoming \
             webhooks take); default `text`",
        )),
    }
}

/// `notify_on`: events separated by whitespace, each once.
pub(crate) fn parse_notify_on(s: &str) -> Result<Vec<NotifyEvent>, Invalid> {
    let accepted = format!(
        "accepted: one or more of {}, separated by spaces (default: all)",
        NotifyEvent::ALL
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut events = Vec::new();
    for word in s.split_whitespace() {
        let Some(event) = NotifyEvent::ALL.into_iter().find(|e| e.as_str() == word) else {
            return Err(Invalid::new(format!("`{word}` is not an event"), accepted));
        };
        if events.contains(&event) {
            return Err(Invalid::new(format!("`{word}` is listed twice"), accepted));
        }
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_grammar() {
        let valid = [
            "local",
            "a",
            "10.0.0.1",
            "backend-fsn.ooni.org",
            "root@a.b",
            "_deploy@h",
            "a:2222",
            "u.x-1@host_1.example.org:22",
        ];
        for host in valid {
            HostSpec::parse(host).unwrap_or_else(|e| panic!("`{host}`: {e}"));
        }
        let invalid = [
            "-oProxyCommand=x",
            "a;b",
            "a|b",
            "$(reboot)",
            "`id`",
            "a/b",
            "'a'",
            "\"a\"",
            "user@",
            "@host",
            "-u@host",
            "a@b@c",
            "host:",
            "host:0",
            "host:65536",
            "host:+22",
            "host:2a",
            "[::1",
            "[web1]:22",
            "[::1]:0",
            "::1",
            ".host",
            "local:22",
            "root@local",
            "#comment",
            "ho\u{e9}st",
        ];
        for host in invalid {
            assert!(HostSpec::parse(host).is_err(), "`{host}` was accepted");
        }
        // (text, user, name, port, as displayed)
        let valid = [
            (
                "deploy@web1:2222",
                Some("deploy"),
                "web1",
                Some(2222),
                "deploy@web1:2222",
            ),
            ("web1", None, "web1", None, "web1"),
            (
                "Web1.example.org",
                None,
                "Web1.example.org",
                None,
                "Web1.example.org",
            ),
            // Shown as written, leading zero and all.
            ("vm:02201", None, "vm", Some(2201), "vm:02201"),
            (
                "_svc@10.0.0.1",
                Some("_svc"),
                "10.0.0.1",
                None,
                "_svc@10.0.0.1",
            ),
            ("local", None, "local", None, "local"),
            (
                "[2001:db8::1]:2222",
                None,
                "2001:db8::1",
                Some(2222),
                "[2001:db8::1]:2222",
            ),
            ("op@[::1]", Some("op"), "::1", None, "op@[::1]"),
        ];
        for (text, user, name, port, shown) in valid {
            let spec = HostSpec::parse(text).unwrap();
            assert_eq!(spec.user.as_deref(), user, "{text}");
            assert_eq!(spec.name, name, "{text}");
            assert_eq!(spec.port, port, "{text}");
            assert_eq!(spec.to_string(), shown, "{text}");
            assert_eq!(spec.as_str(), shown, "{text}");
            assert_eq!(spec, *shown, "{text}");
        }
        assert!(HostSpec::parse("local").unwrap().is_local());
        assert!(!HostSpec::parse("localhost").unwrap().is_local());
    }
}
