//! The options deployer honours, as one table ([`OPTIONS`]): for each, its
//! keywords (aliases included) and how its value is read. The first value
//! obtained for each one wins, as in ssh ([`Obtained`]); resolving reads
//! them by name. Adding an option that works this way is one row here and
//! its use where the host's settings are made (`resolve`).
//!
//! The few options that do not fit one slot stay lines of their own in
//! [`Opt`]: `IdentityFile` and `CertificateFile` accumulate, forwardings
//! accumulate, and `ProxyJump`/`ProxyCommand` share one slot.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::values::{
    parse_flag, parse_port, parse_strict, parse_time, single, JumpHost, StrictHostKeyChecking,
};

/// How the value of an option in [`OPTIONS`] is read (and checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One word, as written.
    Text,
    /// A port: a number or a service name ([`Value::Port`]).
    Port,
    /// `yes`/`no` ([`Value::Flag`]).
    Flag,
    /// A time, `none` meaning zero ([`Value::Time`]).
    Time,
    /// A whole number that fits ssh's `int` ([`Value::Count`]).
    Count,
    /// `StrictHostKeyChecking`'s values ([`Value::Strict`]).
    Strict,
    /// File names, or `none` alone ([`Value::Files`]).
    Files,
    /// `CanonicalizeHostname`: `yes`, `no` or `always`, lowercased.
    Canonicalize,
    /// Not used, but checked again once obtained
    /// ([`super::values::refused_obtained_value`]): the arguments joined.
    Checked,
    /// Like [`Kind::Checked`], the line's text as written after the keyword.
    CheckedRaw,
}

/// One option of the table.
#[derive(Debug)]
pub(crate) struct Honoured {
    /// The name ssh gives it, used in messages and to look the value up.
    pub(crate) name: &'static str,
    /// The keywords that set it, lowercase (aliases ssh still honours).
    pub(crate) keywords: &'static [&'static str],
    /// How its value is read.
    pub(crate) kind: Kind,
}

const fn row(name: &'static str, keywords: &'static [&'static str], kind: Kind) -> Honoured {
    Honoured {
        name,
        keywords,
        kind,
    }
}

/// Every option whose first value obtained wins, one row each.
pub(crate) const OPTIONS: &[Honoured] = &[
    row("HostName", &["hostname"], Kind::Text),
    row("User", &["user"], Kind::Text),
    row("Port", &["port"], Kind::Port),
    row("UserKnownHostsFile", &["userknownhostsfile"], Kind::Files),
    row(
        "GlobalKnownHostsFile",
        &["globalknownhostsfile"],
        Kind::Files,
    ),
    row(
        "StrictHostKeyChecking",
        &["stricthostkeychecking"],
        Kind::Strict,
    ),
    row("HashKnownHosts", &["hashknownhosts"], Kind::Flag),
    row("ConnectTimeout", &["connecttimeout"], Kind::Time),
    row("HostKeyAlias", &["hostkeyalias"], Kind::Text),
    row("IdentitiesOnly", &["identitiesonly"], Kind::Flag),
    // Debian's ssh also takes `ProtocolKeepAlives` and `SetupTimeOut`.
    row(
        "ServerAliveInterval",
        &["serveraliveinterval", "protocolkeepalives", "setuptimeout"],
        Kind::Time,
    ),
    row("ServerAliveCountMax", &["serveralivecountmax"], Kind::Count),
    row(
        "CanonicalizeHostname",
        &["canonicalizehostname"],
        Kind::Canonicalize,
    ),
    // a pattern list of keywords
    row("IgnoreUnknown", &["ignoreunknown"], Kind::Text),
    row("ConnectionAttempts", &["connectionattempts"], Kind::Checked),
    row(
        "CanonicalizePermittedCNAMEs",
        &["canonicalizepermittedcnames"],
        Kind::Checked,
    ),
    row("HostKeyAlgorithms", &["hostkeyalgorithms"], Kind::Checked),
    // names checked as the line is read; the list made in `resolve`
    row("KexAlgorithms", &["kexalgorithms"], Kind::Text),
    row("ControlPath", &["controlpath"], Kind::Checked),
    row("IdentityAgent", &["identityagent"], Kind::Checked),
    row("ForwardAgent", &["forwardagent"], Kind::Checked),
    row("RemoteCommand", &["remotecommand"], Kind::CheckedRaw),
];

/// The row of the table `keyword` (lowercase) sets, if any.
pub(crate) fn honoured(keyword: &str) -> Option<&'static Honoured> {
    OPTIONS.iter().find(|o| o.keywords.contains(&keyword))
}

/// A value read by its [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(String),
    Port(u16),
    Flag(bool),
    Time(Duration),
    Count(u32),
    Strict(StrictHostKeyChecking),
    Files(Vec<String>),
}

impl Honoured {
    /// Reads the arguments of a line that sets this option (`keyword` as
    /// written, lowercased; `raw`, the text after it), as ssh checks them.
    pub(crate) fn read(&self, keyword: &str, args: &[String], raw: &str) -> Result<Value, String> {
        let name = self.name;
        Ok(match self.kind {
            Kind::Text => Value::Text(single(name, args)?.to_string()),
            Kind::Port => {
                let value = single(name, args)?;
                Value::Port(parse_port(value).ok_or_else(|| {
                    format!(
                        "`{name}` must be a number from 1 to 65535 or a service name from \
                         `/etc/services`, not `{value}`"
                    )
                })?)
            }
            Kind::Files => {
                if args.is_empty() {
                    return Err(format!("`{keyword}` needs a file name"));
                }
                if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
                    return Err(format!("`{keyword}`: `none` must be its only value"));
                }
                Value::Files(args.to_vec())
            }
            Kind::Strict => {
                let value = single(name, args)?;
                Value::Strict(parse_strict(value).ok_or_else(|| {
                    format!(
                        "`{name}` must be `yes`, `accept-new`, `no`, `ask` or `off`, not \
                         `{value}`"
                    )
                })?)
            }
            Kind::Time => {
                let value = single(name, args)?;
                let time = if value == "none" {
                    Some(Duration::ZERO)
                } else {
                    parse_time(value)
                };
                Value::Time(time.ok_or_else(|| {
                    format!(
                        "`{name}` must be a number of seconds such as `10`, \
                         or a time with units such as `1m30s`, not `{value}`"
                    )
                })?)
            }
            Kind::Count => {
                let value = single(name, args)?;
                Value::Count(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|&n| i32::try_from(n).is_ok())
                        .ok_or_else(|| format!("`{name}` must be a whole number, not `{value}`"))?,
                )
            }
            Kind::Flag => {
                let value = single(name, args)?;
                Value::Flag(
                    parse_flag(value)
                        .ok_or_else(|| format!("`{name}` must be `yes` or `no`, not `{value}`"))?,
                )
            }
            Kind::Canonicalize => {
                let value = single(name, args)?;
                let lower = value.to_ascii_lowercase();
                if !["yes", "no", "true", "false", "always"].contains(&lower.as_str()) {
                    return Err(format!(
                        "`{name}` must be `yes`, `no` or `always`, not `{value}`"
                    ));
                }
                Value::Text(lower)
            }
            Kind::Checked => Value::Text(args.join(" ")),
            Kind::CheckedRaw => Value::Text(raw.to_string()),
        })
    }
}

/// Where a line is: file and line number.
pub(crate) type At = (PathBuf, usize);

/// The first value obtained for each option of [`OPTIONS`], with where it
/// was set (the first value wins, as in ssh).
#[derive(Debug, Default)]
pub(crate) struct Obtained(BTreeMap<&'static str, (Value, At)>);

impl Obtained {
    /// Keeps `value` for option `name` unless one was obtained already.
    pub(crate) fn offer(&mut self, name: &'static str, value: &Value, at: At) {
        self.0.entry(name).or_insert_with(|| (value.clone(), at));
    }

    /// The value obtained for `name` and where, if any.
    pub(crate) fn get(&self, name: &str) -> Option<&(Value, At)> {
        self.0.get(name)
    }

    /// Where the value obtained for `name` was set.
    pub(crate) fn at(&self, name: &str) -> Option<&At> {
        self.get(name).map(|(_, at)| at)
    }

    /// The options obtained, by name, with where.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &Value, &At)> + '_ {
        self.0.iter().map(|(name, (value, at))| (*name, value, at))
    }

    /// The text obtained for `name` (a [`Kind::Text`] or checked option).
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some((Value::Text(t), _)) => Some(t),
            _ => None,
        }
    }

    /// The port obtained for `name`.
    pub(crate) fn port(&self, name: &str) -> Option<u16> {
        match self.get(name) {
            Some((Value::Port(p), _)) => Some(*p),
            _ => None,
        }
    }

    /// The flag obtained for `name`.
    pub(crate) fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some((Value::Flag(b), _)) => Some(*b),
            _ => None,
        }
    }

    /// The time obtained for `name`.
    pub(crate) fn time(&self, name: &str) -> Option<Duration> {
        match self.get(name) {
            Some((Value::Time(t), _)) => Some(*t),
            _ => None,
        }
    }

    /// The count obtained for `name`.
    pub(crate) fn count(&self, name: &str) -> Option<u32> {
        match self.get(name) {
            Some((Value::Count(n), _)) => Some(*n),
            _ => None,
        }
    }

    /// The `StrictHostKeyChecking` value obtained for `name`.
    pub(crate) fn strict(&self, name: &str) -> Option<StrictHostKeyChecking> {
        match self.get(name) {
            Some((Value::Strict(s), _)) => Some(*s),
            _ => None,
        }
    }

    /// The file names obtained for `name`.
    pub(crate) fn files(&self, name: &str) -> Option<&[String]> {
        match self.get(name) {
            Some((Value::Files(f), _)) => Some(f),
            _ => None,
        }
    }
}

/// One option line deployer uses, parsed.
#[derive(Debug, Clone)]
pub(crate) enum Opt {
    /// An option of [`OPTIONS`] (its name) and its value.
    First(&'static str, Value),
    IdentityFile(String),
    /// `None` for `none`.
    ProxyJump(Option<Vec<JumpHost>>),
    /// `none` or a command.
    ProxyCommand(String),
    /// `LocalForward`, `RemoteForward`, `DynamicForward`: canonical
    /// keyword and arguments, for the `%` tokens of their socket paths.
    Forward(&'static str, Vec<String>),
    /// `CertificateFile`: not used, but ssh expands its tokens and
    /// variables when it loads the keys, and refuses what it cannot.
    CertificateFile(String),
}
