//! Key exchange lists as OpenSSH builds them: OpenSSH 10's default order
//! ([`DEFAULT`]) and how a `KexAlgorithms` value changes a default list
//! ([`assemble`], ssh's `kex_assemble_names`). The names ssh accepts in
//! the value are checked when a line is read ([`super::values::KEX`]).
//!
//! Pure, and about OpenSSH's rules only: which of these names deployer's
//! SSH library can run is the transport's business
//! (`crate::transport::ssh::kex`).

use super::pattern::match_pattern_list;

/// OpenSSH 10's client default for `KexAlgorithms`, best first: the
/// post-quantum hybrids (ML-KEM, then Streamlined NTRU Prime), then the
/// classical exchanges.
pub const DEFAULT: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
];

/// The list a `KexAlgorithms` value makes of `default`, as ssh makes it:
/// no value keeps `default`; `+names` appends the names `default` lacks;
/// `-patterns` removes the names any pattern matches (wildcards and `!`
/// as in ssh's pattern lists); `^names` puts the names first and
/// `default`'s others after them; a plain list replaces `default`. A name
/// is never listed twice.
///
/// # Errors
///
/// When the list comes out empty (every name removed, or an empty value):
/// ssh cannot agree on a key exchange with no names, so it is refused
/// here with the value named.
pub fn assemble(value: Option<&str>, default: &[&str]) -> Result<Vec<String>, String> {
    let Some(value) = value else {
        return Ok(default.iter().map(|n| n.to_string()).collect());
    };
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    };
    let defaults = || default.iter().map(|n| n.to_string());
    let listed: Vec<String> = if let Some(patterns) = value.strip_prefix('-') {
        default
            .iter()
            .filter(|n| !match_pattern_list(n, patterns, false))
            .map(|n| n.to_string())
            .collect()
    } else if let Some(list) = value.strip_prefix('+') {
        defaults().chain(names(list)).collect()
    } else if let Some(list) = value.strip_prefix('^') {
        names(list).into_iter().chain(defaults()).collect()
    } else {
        names(value)
    };
    let mut out: Vec<String> = Vec::new();
    for name in listed {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.is_empty() {
        return Err(format!(
            "`KexAlgorithms {value}` leaves no key exchange algorithm, so no server \
             can be reached (name at least one, e.g. `curve25519-sha256`)"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &[&str] = &["a", "b-1", "b-2", "c"];

    fn list(value: Option<&str>) -> String {
        assemble(value, D).unwrap().join(",")
    }

    #[test]
    fn a_value_changes_the_default_as_ssh_changes_it() {
        assert_eq!(list(None), "a,b-1,b-2,c");
        assert_eq!(list(Some("c,a")), "c,a");
        assert_eq!(list(Some("+x,a")), "a,b-1,b-2,c,x");
        assert_eq!(list(Some("^c,x")), "c,x,a,b-1,b-2");
        assert_eq!(list(Some("-b-*")), "a,c");
        assert_eq!(list(Some("-a,c")), "b-1,b-2");
        // a negated pattern alone matches nothing, so removes nothing
        assert_eq!(list(Some("-!a")), "a,b-1,b-2,c");
        assert_eq!(list(Some("c,c,a")), "c,a");
    }

    #[test]
    fn a_list_left_empty_is_refused_with_the_value() {
        let e = assemble(Some("-*"), D).unwrap_err();
        assert!(e.contains("`KexAlgorithms -*`"), "{e}");
        assert!(assemble(Some(""), D).is_err());
    }

    #[test]
    fn the_default_puts_ml_kem_first_as_openssh_10_does() {
        assert_eq!(DEFAULT[0], "mlkem768x25519-sha256");
        assert_eq!(DEFAULT[3], "curve25519-sha256");
        assert!(DEFAULT
            .iter()
            .all(|n| super::super::values::KEX.contains(n)));
    }
}
