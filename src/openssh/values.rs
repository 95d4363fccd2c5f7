//! The values of ssh_config options, checked as ssh checks them when it
//! reads a line: numbers, times, ports, flags, jump hosts, algorithm
//! names as `ssh -Q` lists them, forwardings, and the `${VAR}` a line
//! needs. (`Port` by service name reads `/etc/services`, as ssh's
//! `getservbyname` does: the one file read here.)

use super::pattern::wildcard_match;
use std::fmt;
use std::time::Duration;

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

/// One hop of `ProxyJump`: `[user@]host[:port]` or
/// `ssh://[user@]host[:port]`, as written (the host is resolved through
/// the ssh config again, like a target of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    /// The login user before `@`, if any.
    pub user: Option<String>,
    /// The host (alias) as written, brackets of an IPv6 literal removed.
    pub host: String,
    /// The port after `:`, if any.
    pub port: Option<u16>,
}

impl fmt::Display for JumpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

/// Parses an OpenSSH time value (`ConnectTimeout`): a number of seconds,
/// or numbers with units `s`, `m`, `h`, `d`, `w` such as `1m30s`.
pub(crate) fn parse_time(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        // `strtol` skips white space and takes a sign; ssh refuses only
        // negative numbers.
        rest = rest.trim_start_matches(C_SPACE);
        let negative = rest.starts_with('-');
        rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        if negative && number != 0 {
            return None;
        }
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

pub(crate) fn parse_strict(text: &str) -> Option<StrictHostKeyChecking> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(StrictHostKeyChecking::Yes),
        "accept-new" => Some(StrictHostKeyChecking::AcceptNew),
        "no" | "false" | "off" => Some(StrictHostKeyChecking::No),
        "ask" => Some(StrictHostKeyChecking::Ask),
        _ => None,
    }
}

pub(crate) fn parse_flag(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// A TCP port as ssh's `a2port` reads it: a number, or a service name
/// from `/etc/services` (`ssh`).
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    if let Some(number) = c_integer(text).filter(|n| (0..=65535).contains(n)) {
        return u16::try_from(number).ok().filter(|&p| p != 0);
    }
    service_port(
        text,
        &std::fs::read_to_string("/etc/services").unwrap_or_default(),
    )
}

/// The TCP port of service `name` (or one of its aliases) in the text of
/// an `/etc/services` file.
pub(crate) fn service_port(name: &str, services: &str) -> Option<u16> {
    for line in services.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(service), Some(port_proto)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((port, "tcp")) = port_proto.split_once('/') else {
            continue;
        };
        if service == name || words.any(|alias| alias == name) {
            return port.parse().ok().filter(|&p| p != 0);
        }
    }
    None
}

/// One `ProxyJump` hop: `[user@]host[:port]`, `[user@][v6]:port`, or
/// `ssh://[user@]host[:port]`.
pub(crate) fn parse_jump_host(text: &str) -> Option<JumpHost> {
    let (text, uri) = match text.strip_prefix("ssh://") {
        Some(rest) => (rest.strip_suffix('/').unwrap_or(rest), true),
        None => (text, false),
    };
    let (user, rest) = match text.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return None,
        None => (None, text),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) if !uri || !p.contains(':') => (h, Some(p)),
            Some(_) => return None,
            None => (rest, None),
        }
    };
    // ssh checks a URI's host as a domain name, and only `/` and `@`
    // otherwise.
    if host.is_empty() || host.contains(['/', '@']) || (uri && !valid_domain(host)) {
        return None;
    }
    let port = match port {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Some(JumpHost {
        user,
        host: host.to_string(),
        port,
    })
}

/// `ProxyJump`'s value: `none`, or comma-separated hops, first hop first.
pub(crate) fn parse_proxy_jump(raw: &str) -> Option<Option<Vec<JumpHost>>> {
    let text = raw.split('#').next().unwrap_or("").trim_end();
    if text.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    text.split(',')
        .map(parse_jump_host)
        .collect::<Option<Vec<_>>>()
        .map(Some)
}

/// Parses a deployer.ini `ssh_proxy_jump` value, ssh's `-J` syntax:
/// `none`, or `[user@]host[:port]` hops separated by commas, first hop
/// first. `Ok(vec![])` is `none`.
///
/// # Errors
///
/// When a hop is not of that form.
pub fn parse_jump_list(text: &str) -> Result<Vec<JumpHost>, String> {
    match parse_proxy_jump(text) {
        Some(hops) => Ok(hops.unwrap_or_default()),
        None => Err(format!(
            "`{text}` is not `none` or a comma-separated list of `[user@]host[:port]`"
        )),
    }
}

/// The argument of a keyword that takes exactly one.
pub(crate) fn single<'a>(keyword: &str, args: &'a [String]) -> Result<&'a str, String> {
    match args {
        [one] => Ok(one),
        [] => Err(format!("`{keyword}` needs a value")),
        _ => Err(format!(
            "`{keyword}` takes one value, found {} (quote values that contain spaces)",
            args.len()
        )),
    }
}

/// ssh's yes/no table (`multistate_flag`), compared case-insensitively.
pub(crate) const FLAG: &[&str] = &["yes", "no", "true", "false"];
/// The names ssh's `Ciphers` accepts (`ssh -Q cipher` on Debian's 9.2p1).
pub(crate) const CIPHERS: &[&str] = &[
    "3des-cbc",
    "aes128-cbc",
    "aes192-cbc",
    "aes256-cbc",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
];
/// The names ssh's `MACs` accepts (`ssh -Q mac`).
pub(crate) const MACS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
/// The names ssh's `KexAlgorithms` accepts: `ssh -Q kex` of Debian's
/// 9.2p1, and `mlkem768x25519-sha256`, which OpenSSH 10 adds (and makes
/// its default), as deployer negotiates it too.
pub(crate) const KEX: &[&str] = &[
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group-exchange-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "mlkem768x25519-sha256",
];
/// Key and signature algorithm names (`ssh -Q key-sig`), for
/// `HostKeyAlgorithms`, `PubkeyAcceptedAlgorithms` and the like.
pub(crate) const KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-512-cert-v01@openssh.com",
];
/// Debian's GSSAPI key exchange algorithms (`ssh -Q kex-gss`); a name
/// is accepted when it starts with one of them.
pub(crate) const GSS_KEX_PREFIXES: &[&str] = &[
    "gss-gex-sha1-",
    "gss-group1-sha1-",
    "gss-group14-sha1-",
    "gss-group14-sha256-",
    "gss-group16-sha512-",
    "gss-nistp256-sha256-",
    "gss-curve25519-sha256-",
];
/// Short key type names ssh also takes in key algorithm lists, any case.
pub(crate) const KEY_SHORT_NAMES: &[&str] =
    &["dsa", "ecdsa", "ecdsa-sk", "ed25519", "ed25519-sk", "rsa"];
pub(crate) const LOG_LEVELS: &[&str] = &[
    "quiet", "fatal", "error", "info", "verbose", "debug", "debug1", "debug2", "debug3",
];
pub(crate) const LOG_FACILITIES: &[&str] = &[
    "daemon", "user", "auth", "authpriv", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
pub(crate) const IPQOS: &[&str] = &[
    "none",
    "af11",
    "af12",
    "af13",
    "af21",
    "af22",
    "af23",
    "af31",
    "af32",
    "af33",
    "af41",
    "af42",
    "af43",
    "cs0",
    "cs1",
    "cs2",
    "cs3",
    "cs4",
    "cs5",
    "cs6",
    "cs7",
    "ef",
    "le",
    "lowdelay",
    "throughput",
    "reliability",
];

/// What C's `isspace` calls white space.
pub(crate) const C_SPACE: &[char] = &[' ', '\t', '\n', '\x0b', '\x0c', '\r'];

/// A C `strtol`-style integer: optional sign, then decimal digits, nothing
/// after. `None` when it is not one (or does not fit in an `i64`).
pub(crate) fn c_integer(text: &str) -> Option<i64> {
    // `strtol` skips leading white space.
    let text = text.trim_start_matches(C_SPACE);
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = digits.parse().ok()?;
    Some(if text.starts_with('-') { -value } else { value })
}

/// ssh's `strtonum(text, 0, INT_MAX)`, used for its integer options.
pub(crate) fn c_count(text: &str) -> bool {
    c_integer(text).is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n))
}

/// ssh's `convtime`: `none` is not a time here.
pub(crate) fn c_time(text: &str) -> bool {
    parse_time(text).is_some()
}

/// The argument at `index`, or the "missing argument" error.
pub(crate) fn arg_at<'a>(
    keyword: &str,
    args: &'a [String],
    index: usize,
) -> Result<&'a str, String> {
    match args.get(index) {
        Some(arg) if !arg.is_empty() => Ok(arg),
        _ => Err(format!("`{keyword}` needs a value")),
    }
}

/// One value that must be one of `table` (any case), as ssh's
/// `parse_multistate`.
pub(crate) fn one_of(keyword: &str, args: &[String], table: &[&str]) -> Result<usize, String> {
    let value = arg_at(keyword, args, 0)?;
    if table.iter().any(|t| t.eq_ignore_ascii_case(value)) {
        Ok(1)
    } else {
        Err(format!(
            "`{keyword}` must be one of {}, not `{value}`",
            table
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// An algorithm list as ssh checks it: a leading `-` is not checked, a
/// leading `+` or `^` is dropped, then each comma-separated name up to the
/// first empty one must be one `known` accepts.
pub(crate) fn algorithm_list(
    keyword: &str,
    args: &[String],
    what: &str,
    known: &dyn Fn(&str) -> bool,
) -> Result<usize, String> {
    let value = arg_at(keyword, args, 0)?;
    if value.starts_with('-') {
        return Ok(1);
    }
    let list = value.strip_prefix(['+', '^']).unwrap_or(value);
    let bad = if list.is_empty() {
        Some("")
    } else {
        list.split(',')
            .take_while(|name| !name.is_empty())
            .find(|name| !known(name))
    };
    match bad {
        None => Ok(1),
        Some(name) => Err(format!(
            "`{keyword}`: `{name}` is not one of the {what} this ssh knows (see `ssh -Q {}`)",
            match what {
                "ciphers" => "cipher",
                "MACs" => "mac",
                "key exchange algorithms" => "kex",
                _ => "key-sig",
            }
        )),
    }
}

/// A key algorithm name, a short key type name, or a pattern (possibly
/// negated) that matches some key algorithm name.
pub(crate) fn key_algorithm_known(name: &str) -> bool {
    if KEY_ALGORITHMS.contains(&name)
        || KEY_SHORT_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
    {
        return true;
    }
    let pattern = name.strip_prefix('!').unwrap_or(name);
    KEY_ALGORITHMS.iter().any(|k| wildcard_match(pattern, k))
}

/// A list whose `none` must stand alone and whose values may not be empty.
pub(crate) fn list_with_none(keyword: &str, args: &[String]) -> Result<usize, String> {
    if args.iter().any(String::is_empty) {
        return Err(format!("`{keyword}` has an empty value"));
    }
    if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
        return Err(format!("`{keyword}`: `none` must be its only value"));
    }
    Ok(args.len())
}

/// ssh's `valid_domain` for `CanonicalDomains`.
pub(crate) fn valid_domain(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && !name.contains("..")
        && bytes
            .iter()
            .all(|&b| b == b'.' || b == b'-' || b == b'_' || b.is_ascii_alphanumeric())
}

/// ssh's `scan_scaled` for `RekeyLimit`: an optional sign, digits with at
/// most one `.` (none at all reads as 0), then optionally a unit `B`, `K`,
/// `M`, `G`, `T`, `P` or `E` (any case) not followed by a letter or digit.
/// The number of bytes, or `None` when ssh refuses it.
pub(crate) fn scaled_size(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, after) = rest.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || whole.len() >= 21 {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if whole > i128::from(i64::MAX) {
        return None;
    }
    let mut chars = after.chars();
    let shift = match chars.next().map(|c| c.to_ascii_uppercase()) {
        None => 0,
        Some('B') => 0,
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        Some('T') => 40,
        Some('P') => 50,
        Some('E') => 60,
        Some(_) => return None,
    };
    if chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let scale = 1i128 << shift;
    let mut total = whole * scale;
    if total > i128::from(i64::MAX) {
        return None;
    }
    if shift > 0 && !fraction.is_empty() {
        let digits = &fraction[..fraction.len().min(19)];
        let part: f64 = format!("0.{digits}").parse().ok()?;
        total += (part * scale as f64) as i128;
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).ok()
}

/// An environment expansion check as ssh makes for `IdentityAgent` and
/// `ForwardAgent` paths: every `${` must close, and a legacy `$NAME` must
/// be a valid name.
pub(crate) fn agent_path(keyword: &str, value: &str) -> Result<(), String> {
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        let Some(end) = rest[at..].find('}') else {
            return Err(format!("`{keyword}`: unterminated `${{` in `{value}`"));
        };
        rest = &rest[at + end + 1..];
    }
    if let Some(name) = value.strip_prefix('$') {
        if !name.starts_with('{')
            && (name.is_empty() || !name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()))
        {
            return Err(format!(
                "`{keyword}`: `{value}` is not a valid environment name"
            ));
        }
    }
    Ok(())
}

/// Checks the values of one option line as ssh's `process_config_line`
/// does, for every keyword ssh knows, whether or not the line applies to
/// the host (ssh checks them all when it reads the file). Errors name the
/// keyword, the value and what is accepted.
pub(crate) fn check_values(keyword: &str, args: &[String]) -> Result<(), String> {
    let k = keyword;
    let used = match keyword {
        "forwardx11"
        | "forwardx11trusted"
        | "gatewayports"
        | "exitonforwardfailure"
        | "passwordauthentication"
        | "kbdinteractiveauthentication"
        | "challengeresponseauthentication"
        | "skeyauthentication"
        | "tisauthentication"
        | "hostbasedauthentication"
        | "gssapiauthentication"
        | "gssapidelegatecredentials"
        | "batchmode"
        | "checkhostip"
        | "tcpkeepalive"
        | "keepalive"
        | "nohostauthenticationforlocalhost"
        | "clearallforwardings"
        | "enablesshkeysign"
        | "identitiesonly"
        | "hashknownhosts"
        | "permitlocalcommand"
        | "visualhostkey"
        | "stdinnull"
        | "forkafterauthentication"
        | "proxyusefdpass"
        | "canonicalizefallbacklocal"
        | "streamlocalbindunlink"
        | "enableescapecommandline"
        | "gssapikeyexchange"
        | "gssapirenewalforcesrekey"
        | "gssapitrustdns" => one_of(k, args, FLAG)?,
        "pubkeyauthentication" | "dsaauthentication" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "unbound", "host-bound"],
        )?,
        "verifyhostkeydns" | "updatehostkeys" => {
            one_of(k, args, &["yes", "no", "true", "false", "ask"])?
        }
        "stricthostkeychecking" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "ask", "off", "accept-new"],
        )?,
        "compression" => one_of(k, args, &["yes", "no"])?,
        "addressfamily" => one_of(k, args, &["inet", "inet6", "any"])?,
        "controlmaster" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "auto", "ask", "autoask"],
        )?,
        "tunnel" => one_of(
            k,
            args,
            &["yes", "no", "true", "false", "ethernet", "point-to-point"],
        )?,
        "requesttty" => one_of(k, args, &["yes", "no", "true", "false", "force", "auto"])?,
        "sessiontype" => one_of(k, args, &["none", "subsystem", "default"])?,
        "canonicalizehostname" => one_of(k, args, &["yes", "no", "true", "false", "always"])?,
        "connecttimeout"
        | "forwardx11timeout"
        | "serveraliveinterval"
        | "protocolkeepalives"
        | "setuptimeout" => {
            let value = arg_at(k, args, 0)?;
            if value != "none" && !c_time(value) {
                return Err(format!(
                    "`{k}` must be `none` or a time such as `10` or `1m30s`, not `{value}`"
                ));
            }
            1
        }
        "numberofpasswordprompts"
        | "connectionattempts"
        | "serveralivecountmax"
        | "canonicalizemaxdots"
        | "requiredrsasize" => {
            let value = args.first().map(String::as_str).unwrap_or("");
            if !c_count(value) {
                return Err(format!(
                    "`{k}` must be a whole number from 0 to 2147483647, not `{value}`"
                ));
            }
            1
        }
        "kbdinteractivedevices"
        | "xauthlocation"
        | "user"
        | "hostname"
        | "hostkeyalias"
        | "preferredauthentications"
        | "bindaddress"
        | "bindinterface"
        | "pkcs11provider"
        | "smartcarddevice"
        | "securitykeyprovider"
        | "controlpath"
        | "ignoreunknown"
        | "revokedhostkeys"
        | "identityfile"
        | "identityfile2"
        | "certificatefile"
        | "gssapiclientidentity"
        | "gssapiserveridentity" => {
            arg_at(k, args, 0)?;
            1
        }
        "globalknownhostsfile" | "userknownhostsfile" | "logverbose" => list_with_none(k, args)?,
        "port" => {
            let value = arg_at(k, args, 0)?;
            if parse_port(value).is_none() {
                return Err(format!(
                    "`Port` must be a number from 1 to 65535 or a service name from \
                     `/etc/services`, not `{value}`"
                ));
            }
            1
        }
        "ciphers" => algorithm_list(k, args, "ciphers", &|n| CIPHERS.contains(&n))?,
        "macs" => algorithm_list(k, args, "MACs", &|n| MACS.contains(&n))?,
        "kexalgorithms" => {
            algorithm_list(k, args, "key exchange algorithms", &|n| KEX.contains(&n))?
        }
        "hostkeyalgorithms"
        | "casignaturealgorithms"
        | "hostbasedacceptedalgorithms"
        | "hostbasedkeytypes"
        | "pubkeyacceptedalgorithms"
        | "pubkeyacceptedkeytypes" => {
            algorithm_list(k, args, "key algorithms", &key_algorithm_known)?
        }
        "loglevel" => one_of(k, args, LOG_LEVELS)?,
        "syslogfacility" => one_of(k, args, LOG_FACILITIES)?,
        "fingerprinthash" => one_of(k, args, &["md5", "sha1", "sha256", "sha384", "sha512"])?,
        "escapechar" => {
            let value = arg_at(k, args, 0)?;
            let b = value.as_bytes();
            let ok = value == "none"
                || b.len() == 1
                || (b.len() == 2 && b[0] == b'^' && (64..128).contains(&b[1]));
            if !ok {
                return Err(format!(
                    "`EscapeChar` must be `none`, one character or `^` and a character, \
                     not `{value}`"
                ));
            }
            1
        }
        "controlpersist" => {
            let value = arg_at(k, args, 0)?;
            if !["yes", "no", "true", "false"].contains(&value) && !c_time(value) {
                return Err(format!(
                    "`ControlPersist` must be `yes`, `no` or a time such as `10m`, not `{value}`"
                ));
            }
            1
        }
        "tunneldevice" => {
            let value = arg_at(k, args, 0)?;
            let id = |s: &str| {
                s.eq_ignore_ascii_case("any")
                    || c_integer(s).is_some_and(|n| (0..=0x7fff_fffd).contains(&n))
            };
            let ok = match value.split_once(':') {
                Some((local, remote)) => id(local) && id(remote),
                None => id(value),
            };
            if !ok {
                return Err(format!(
                    "`TunnelDevice` must be `local[:remote]`, each a number or `any`, \
                     not `{value}`"
                ));
            }
            1
        }
        "ipqos" => {
            let qos =
                |s: &str| IPQOS.iter().any(|q| q.eq_ignore_ascii_case(s)) || c_ipqos_number(s);
            for value in args.iter().take(2) {
                if !qos(value) {
                    return Err(format!(
                        "`IPQoS` must be DSCP names such as `af21` or `cs1`, `lowdelay`, \
                         `throughput`, `reliability`, `none` or a number 0-255, not `{value}`"
                    ));
                }
            }
            if args.is_empty() {
                return Err("`IPQoS` needs a value".to_string());
            }
            args.len().min(2)
        }
        "rekeylimit" => {
            let value = arg_at(k, args, 0)?;
            if value != "default" {
                let size = scaled_size(value).ok_or_else(|| {
                    format!("`RekeyLimit` must be a size such as `1G` or `default`, not `{value}`")
                })?;
                if size != 0 && size < 16 {
                    return Err(format!("`RekeyLimit` `{value}` is too small"));
                }
            }
            match args.get(1).map(String::as_str) {
                None => 1,
                Some("none") => 2,
                Some(time) if c_time(time) => 2,
                Some(time) => {
                    return Err(format!(
                        "`RekeyLimit`: `{time}` is not `none` or a time such as `1h`"
                    ))
                }
            }
        }
        "streamlocalbindmask" => {
            let value = arg_at(k, args, 0)?;
            let digits = value.strip_prefix('+').unwrap_or(value);
            let octal = digits
                .bytes()
                .position(|b| !(b'0'..=b'7').contains(&b))
                .unwrap_or(digits.len());
            let ok =
                octal > 0 && u32::from_str_radix(&digits[..octal], 8).is_ok_and(|m| m <= 0o777);
            if !ok {
                return Err(format!(
                    "`StreamLocalBindMask` must be an octal mode up to 0777, not `{value}`"
                ));
            }
            // ssh reads the octal prefix and ignores what follows.
            1
        }
        "addkeystoagent" => {
            let value = arg_at(k, args, 0)?;
            let table = ["yes", "no", "true", "false", "ask", "confirm"];
            let known = table.iter().find(|t| t.eq_ignore_ascii_case(value));
            let ok = match (known, args.get(1)) {
                (Some(&"confirm"), Some(time)) => c_time(time),
                (Some(_), None) => true,
                (None, None) => c_time(value),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "`AddKeysToAgent` must be `yes`, `no`, `ask`, `confirm` (optionally \
                     with a time) or a time, not `{}`",
                    args.join(" ")
                ));
            }
            args.len()
        }
        "identityagent" => {
            agent_path(k, arg_at(k, args, 0)?)?;
            1
        }
        "forwardagent" => {
            let value = arg_at(k, args, 0)?;
            if !FLAG.iter().any(|f| f.eq_ignore_ascii_case(value)) {
                agent_path(k, value)?;
            }
            1
        }
        "sendenv" => {
            if args.iter().any(|a| a.is_empty() || a.contains('=')) {
                return Err("`SendEnv` takes variable names (patterns), without `=`".to_string());
            }
            args.len()
        }
        "setenv" => {
            if args.iter().any(|a| !a.contains('=')) {
                return Err("`SetEnv` takes `NAME=VALUE` pairs".to_string());
            }
            args.len()
        }
        "canonicaldomains" => {
            list_with_none(k, args)?;
            if let Some(bad) = args
                .iter()
                .find(|a| !a.eq_ignore_ascii_case("none") && !valid_domain(a))
            {
                return Err(format!("`CanonicalDomains`: `{bad}` is not a domain name"));
            }
            args.len()
        }
        "canonicalizepermittedcnames" => {
            if args.len() > 1 && args.iter().any(|a| a.eq_ignore_ascii_case("none")) {
                return Err(format!("`{k}`: `none` must be its only value"));
            }
            if let Some(bad) = args.iter().find(|a| {
                !a.eq_ignore_ascii_case("none")
                    && a.as_str() != "*"
                    && a.split_once(':').is_none_or(|(_, to)| to.is_empty())
            }) {
                return Err(format!(
                    "`{k}`: `{bad}` is not `none`, `*` or `source_domains:target_domains`"
                ));
            }
            args.len()
        }
        "localforward" | "remoteforward" | "dynamicforward" => {
            let remote = k == "remoteforward";
            let (spec, dynamic, used) = forward_spec(k, args)?;
            if !forward_is_valid(&spec, dynamic, remote) {
                return Err(format!(
                    "`{k}`: bad forwarding specification `{}` (ssh_config(5): \
                     `[bind_address:]port host:hostport` or socket paths)",
                    args[..used].join(" ")
                ));
            }
            used
        }
        "permitremoteopen" => {
            for (i, arg) in args.iter().enumerate() {
                if arg.eq_ignore_ascii_case("none") || arg.eq_ignore_ascii_case("any") {
                    if args.len() > 1 {
                        return Err(format!("`{k}`: `{arg}` must be its only value"));
                    }
                    continue;
                }
                let port = host_port_delimited(arg).and_then(|(_, port)| port);
                let ok = port.is_some_and(|p| p == "*" || a2port(p) > 0);
                if !ok {
                    return Err(format!(
                        "`{k}`: value {} `{arg}` is not `host:port` (port a number or `*`), \
                         `any` or `none`",
                        i + 1
                    ));
                }
            }
            args.len()
        }
        "gssapikexalgorithms" => {
            let value = arg_at(k, args, 0)?;
            if let Some(bad) = value
                .split(',')
                .take_while(|n| !n.is_empty())
                .find(|n| !GSS_KEX_PREFIXES.iter().any(|p| n.starts_with(p)))
            {
                return Err(format!(
                    "`GSSAPIKexAlgorithms`: `{bad}` is not one of this ssh's GSSAPI key \
                     exchange algorithms (see `ssh -Q kex-gss`)"
                ));
            }
            1
        }
        // Commands, `ProxyJump`, `PermitRemoteOpen`, and the keywords ssh
        // reads and discards take any words; ours are checked by
        // `parse_option`.
        _ => args.len(),
    };
    if args.len() > used {
        return Err(format!(
            "`{keyword}` takes {used} value{}, found {} (ssh refuses extra arguments)",
            if used == 1 { "" } else { "s" },
            args.len()
        ));
    }
    Ok(())
}

/// Why ssh, after reading the files, refuses the value obtained for one
/// of the [`Opt::Checked`] options, if it does.
pub(crate) fn refused_obtained_value(keyword: &str, value: &str) -> Option<String> {
    match keyword {
        "ConnectionAttempts" => (c_integer(value).unwrap_or(0) <= 0)
            .then(|| format!("`ConnectionAttempts {value}`: ssh refuses fewer than 1 attempt")),
        "CanonicalizePermittedCNAMEs" => (!value.eq_ignore_ascii_case("none")).then(|| {
            format!(
                "`CanonicalizePermittedCNAMEs {value}`: ssh would look the name up in \
                 DNS and follow CNAMEs to another name; deployer does not, so it refuses \
                 the host rather than reach another one"
            )
        }),
        // Expanded with the host's tokens in `finish`.
        "ControlPath" | "IdentityAgent" | "ForwardAgent" | "RemoteCommand" => None,
        // ssh expands `HostKeyAlgorithms` against the names it knows when
        // it connects (and for `-G`): `-` only removes names; otherwise a
        // negated name is an error, and so is a plain list matching none.
        _ => {
            if value.starts_with('-') {
                return None;
            }
            let list = value.strip_prefix(['+', '^']);
            let names = list.unwrap_or(value);
            if names.split(',').any(|n| n.starts_with('!')) {
                return Some(format!(
                    "`HostKeyAlgorithms {value}`: ssh refuses `!` here (use a `-` list \
                     to remove algorithms)"
                ));
            }
            let matches = KEY_ALGORITHMS
                .iter()
                .any(|k| names.split(',').any(|n| wildcard_match(n, k)));
            (list.is_none() && !matches).then(|| {
                format!(
                    "`HostKeyAlgorithms {value}` matches none of the algorithms this ssh \
                     supports (see `ssh -Q key-sig`), so ssh refuses it"
                )
            })
        }
    }
}

/// ssh's `a2port`: a port number (0 included) or a TCP service name, or
/// -1.
pub(crate) fn a2port(text: &str) -> i32 {
    if c_integer(text) == Some(0) {
        return 0;
    }
    parse_port(text).map_or(-1, i32::from)
}

/// ssh's `hpdelim`: splits `host[:rest]` or `[host]:rest`; `None` when the
/// text is not of that form (or uses `/` as the separator). The port part
/// is `None` when there is no `:`.
pub(crate) fn host_port_delimited(text: &str) -> Option<(&str, Option<&str>)> {
    let end = if text.starts_with('[') {
        text.find(']')? + 1
    } else {
        text.find([':', '/']).unwrap_or(text.len())
    };
    match text[end..].chars().next() {
        None => Some((&text[..end], None)),
        Some(':') => Some((&text[..end], Some(&text[end + 1..]))),
        _ => None,
    }
}

/// The fields of a forwarding specification, as ssh's `parse_fwd_field`
/// splits them: `(text, is a path)`, or `None` when malformed.
pub(crate) fn forward_fields(spec: &str) -> Option<Vec<(String, bool)>> {
    let mut fields = Vec::new();
    let mut rest: Vec<char> = spec.trim_start().chars().collect();
    while !rest.is_empty() {
        if fields.len() == 4 {
            return None;
        }
        if rest[0] == '[' {
            let close = rest.iter().position(|&c| c == ']')?;
            if !matches!(rest.get(close + 1), None | Some(':')) {
                return None;
            }
            let field: String = rest[1..close].iter().collect();
            let is_path = field.contains('/');
            fields.push((field, is_path));
            rest.drain(..(close + 2).min(rest.len()));
            continue;
        }
        let mut field = String::new();
        let mut is_path = false;
        let mut i = 0;
        while i < rest.len() {
            match rest[i] {
                '\\' => {
                    i += 1;
                    field.push(*rest.get(i)?);
                }
                ':' => break,
                c => {
                    is_path |= c == '/';
                    field.push(c);
                }
            }
            i += 1;
        }
        fields.push((field, is_path));
        rest.drain(..(i + 1).min(rest.len()));
    }
    Some(fields)
}

/// A forwarding's fields as ssh's `parse_forward` reads them: (listen
/// port, listen socket path, connect port, connect socket path, hosts);
/// `None` for a number of fields it refuses.
pub(crate) type ForwardParts<'a> = (i32, Option<&'a str>, i32, Option<&'a str>, Vec<&'a str>);

pub(crate) fn forward_parts(f: &[(String, bool)]) -> Option<ForwardParts<'_>> {
    Some(match f.len() {
        1 if f[0].1 => (-2, Some(&f[0].0), 0, None, vec![]),
        1 => (a2port(&f[0].0), None, 0, None, vec![]),
        2 if f[0].1 && f[1].1 => (-2, Some(&f[0].0), -2, Some(&f[1].0), vec![]),
        2 if f[1].1 => (a2port(&f[0].0), None, -2, Some(&f[1].0), vec![]),
        2 => (a2port(&f[1].0), None, 0, None, vec![&f[0].0]),
        3 if f[0].1 => (-2, Some(&f[0].0), a2port(&f[2].0), None, vec![&f[1].0]),
        3 if f[2].1 => (a2port(&f[1].0), None, -2, Some(&f[2].0), vec![&f[0].0]),
        3 => (a2port(&f[0].0), None, a2port(&f[2].0), None, vec![&f[1].0]),
        4 => (
            a2port(&f[1].0),
            None,
            a2port(&f[3].0),
            None,
            vec![&f[0].0, &f[2].0],
        ),
        _ => return None,
    })
}

/// The Unix socket paths of a forwarding (its listen and connect paths),
/// in which ssh expands `%` tokens.
pub(crate) fn forward_socket_paths(spec: &str) -> Vec<String> {
    let Some(f) = forward_fields(spec) else {
        return Vec::new();
    };
    let Some((_, listen, _, connect, _)) = forward_parts(&f) else {
        return Vec::new();
    };
    [listen, connect]
        .into_iter()
        .flatten()
        .map(str::to_string)
        .collect()
}

/// ssh's `parse_forward` verdict for a `LocalForward` (joined `listen:target`),
/// `RemoteForward` or `DynamicForward` specification. Specifications with
/// `${` are left to ssh's environment expansion and accepted.
pub(crate) fn forward_is_valid(spec: &str, dynamic: bool, remote: bool) -> bool {
    if spec.contains("${") {
        return true;
    }
    let Some(f) = forward_fields(spec) else {
        return false;
    };
    let Some((listen_port, listen_path, connect_port, connect_path, hosts)) = forward_parts(&f)
    else {
        return false;
    };
    if dynamic {
        if f.len() > 2 {
            return false;
        }
    } else {
        if f.len() < 3 && connect_path.is_none() && listen_path.is_none() {
            return false;
        }
        if connect_port <= 0 && connect_path.is_none() {
            return false;
        }
    }
    if (listen_port < 0 && listen_path.is_none()) || (!remote && listen_port == 0) {
        return false;
    }
    // NI_MAXHOST and the size of a socket path.
    hosts.iter().all(|h| h.len() < 1025)
        && [listen_path, connect_path]
            .iter()
            .flatten()
            .all(|p| p.len() < 108)
}

/// ssh's `parse_ipqos` number: `strtol` with base 0 (decimal, `0x` hex,
/// `0` octal), 0 to 255.
pub(crate) fn c_ipqos_number(text: &str) -> bool {
    let text = text.trim_start_matches(C_SPACE);
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        u32::from_str_radix(hex, 16).ok()
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        u32::from_str_radix(&unsigned[1..], 8).ok()
    } else if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        unsigned.parse().ok()
    } else {
        None
    };
    match value {
        Some(0) => true,
        Some(v) => !negative && v <= 255,
        None => false,
    }
}

/// A forwarding's specification as ssh parses it (`listen:target`, or
/// the listen part alone for a dynamic one), whether it is dynamic, and
/// how many arguments it takes. `keyword` is matched case-insensitively.
pub(crate) fn forward_spec(
    keyword: &str,
    args: &[String],
) -> Result<(String, bool, usize), String> {
    let k = keyword.to_ascii_lowercase();
    let listen = arg_at(keyword, args, 0)?;
    Ok(match (k.as_str(), args.get(1).filter(|a| !a.is_empty())) {
        ("dynamicforward", _) => (listen.to_string(), true, 1),
        (_, Some(target)) => (format!("{listen}:{target}"), false, 2),
        ("remoteforward", None) => (listen.to_string(), true, 1),
        _ => return Err(format!("`{keyword}` needs a listen address and a target")),
    })
}

/// The `${VAR}` names ssh expands while reading a line (the agent socket
/// of `ForwardAgent` and `IdentityAgent`, forwarding specifications), which
/// it refuses when they are not set, whether or not the line applies.
pub(crate) fn required_env(keyword: &str, args: &[String]) -> Vec<String> {
    let values: &[String] = match keyword {
        "forwardagent"
            if args
                .first()
                .is_some_and(|a| FLAG.iter().any(|f| f.eq_ignore_ascii_case(a))) =>
        {
            &[]
        }
        "forwardagent" | "identityagent" => &args[..args.len().min(1)],
        "localforward" | "remoteforward" => &args[..args.len().min(2)],
        "dynamicforward" => &args[..args.len().min(1)],
        _ => &[],
    };
    let mut names = Vec::new();
    for value in values {
        let mut rest = value.as_str();
        while let Some(at) = rest.find("${") {
            let after = &rest[at + 2..];
            let Some(end) = after.find('}') else { break };
            names.push(after[..end].to_string());
            rest = &after[end + 1..];
        }
    }
    names
}
