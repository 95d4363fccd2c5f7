//! `%` tokens, `${VAR}` and `~` in the options where ssh expands them.

use super::config::{Item, SshConfigError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `%` tokens ssh expands (besides `%%`) in `IdentityFile`,
/// `CertificateFile`, `UserKnownHostsFile`, `ControlPath`,
/// `IdentityAgent`, `ForwardAgent`, `RemoteCommand` and the socket paths of
/// forwardings: OpenSSH 9.2's `DEFAULT_CLIENT_PERCENT_EXPAND_ARGS`. Any
/// other token there makes ssh refuse the configuration.
pub(crate) const CLIENT_TOKENS: &[char] = &['C', 'L', 'i', 'k', 'l', 'n', 'p', 'd', 'h', 'r', 'u'];

/// `HostName` with `%h` (the alias) and `%%` expanded, the only tokens
/// ssh expands there (ssh refuses the configuration for any other, and
/// leaves `${VAR}` as written).
pub(crate) fn expand_host_name(value: &str, alias: &str) -> Result<String, String> {
    expand_percent_dollar(value, &[('h', alias)], None)
        .map_err(|m| format!("`HostName {value}`: {m}"))
}

/// A `HostName` ssh refuses (a token other than `%h`), at its own line
/// (`item`, the line being evaluated, when it was not recorded).
pub(crate) fn host_name_error(
    at: Option<&(PathBuf, usize)>,
    item: &Item,
    message: String,
) -> SshConfigError {
    let (path, line) = at
        .cloned()
        .unwrap_or_else(|| (item.path.clone(), item.number));
    SshConfigError::Invalid {
        path,
        line,
        message,
    }
}

/// `${VAR}` replaced from `env` (an unset one by nothing: lines that need
/// one are refused before, see `required_env`), as ssh does when it reads
/// a forwarding.
pub(crate) fn expand_dollar(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else { break };
        out.push_str(&rest[..at]);
        out.push_str(env.get(&after[..end]).map_or("", String::as_str));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// An IPv4 or IPv6 address literal (which ssh does not lowercase).
pub(crate) fn is_address(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

/// `%` tokens from `tokens`, `%%`, and `${VAR}` from `env`, as ssh's
/// `percent_dollar_expand`: an unknown token, a lone `%`, an unterminated
/// or empty `${` or an unset variable is an error. Without `env`, as ssh's
/// `percent_expand`: `${VAR}` stays as written.
pub(crate) fn expand_percent_dollar(
    text: &str,
    tokens: &[(char, &str)],
    env: Option<&BTreeMap<String, String>>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let (Some(after), Some(env)) = (rest.strip_prefix("${"), env) {
            let Some(end) = after.find('}') else {
                return Err("`${` without a closing `}`".to_string());
            };
            let name = &after[..end];
            if name.is_empty() {
                return Err("empty `${}`".to_string());
            }
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => return Err(format!("environment variable `{name}` is not set")),
            }
            rest = &after[end + 1..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(t) = rest.chars().next() else {
            return Err("a lone `%` at the end (write `%%`)".to_string());
        };
        rest = &rest[t.len_utf8()..];
        if t == '%' {
            out.push('%');
        } else if let Some((_, v)) = tokens.iter().find(|(k, _)| *k == t) {
            out.push_str(v);
        } else {
            let known: Vec<String> = tokens.iter().map(|(k, _)| format!("`%{k}`")).collect();
            return Err(format!(
                "ssh refuses the token `%{t}` here (\"unknown key %{t}\"); it expands only {} \
                 and `%%` (a literal `%`)",
                known.join(", ")
            ));
        }
    }
    Ok(out)
}

/// `~` or `~/...` relative to `home`; `~user` is refused; anything else
/// unchanged.
pub(crate) fn expand_tilde(path: &str, home: &Path) -> Result<String, String> {
    let Some(rest) = path.strip_prefix('~') else {
        return Ok(path.to_string());
    };
    if !rest.is_empty() && !rest.starts_with('/') {
        return Err(format!(
            "`{path}`: `~user` paths are not supported; write the full path"
        ));
    }
    let rest = rest.trim_start_matches('/');
    let home = home.to_string_lossy();
    let home = home.trim_end_matches('/');
    Ok(format!("{home}/{rest}"))
}

/// SHA-1 of `data` in lower-case hex: ssh's `%C` is the SHA-1 of the local
/// host name, remote host, port and user.
pub(crate) fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
