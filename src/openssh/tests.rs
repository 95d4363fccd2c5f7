//! The unit tests of the ssh_config rules (those of loading files are
//! beside [`crate::ssh_config`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::config::*;
use super::include::*;
use super::keywords::*;
use super::lexer::*;
use super::pattern::*;
use super::tokens::*;
use super::values::*;

const HOME: &str = "/home/op";

fn parse(text: &str) -> SshConfigFile {
    SshConfigFile::parse(text, Path::new("config")).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn context() -> ResolveContext {
    ResolveContext {
        home: PathBuf::from(HOME),
        local_user: "op".into(),
        uid: 1000,
        local_host: "laptop.example.org".into(),
        env: [("HOME".to_string(), HOME.to_string())].into(),
        ..ResolveContext::default()
    }
}

fn resolve(text: &str, alias: &str) -> HostSettings {
    parse(text)
        .resolve(alias, &context())
        .unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn with_home(home: &Path) -> ResolveContext {
    ResolveContext {
        home: home.to_path_buf(),
        ..context()
    }
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
    assert_eq!(db.host_name.as_deref(), Some("db"));
}

#[test]
fn nothing_set_gives_defaults() {
    let defaults = HostSettings {
        host_name: Some("any".into()),
        ..HostSettings::default()
    };
    assert_eq!(resolve("", "Any"), defaults);
    assert_eq!(resolve("Host other\n User x\n", "any"), defaults);
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
            ..HostSettings::default()
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
fn match_criteria_as_ssh_evaluates_them() {
    let config = "\
Match originalhost WEB*,!web9 user op
  Port 2000
Match host *.internal localuser op
  User inside
Match host *,!db* all
  IdentitiesOnly yes
Match !localuser op
  ServerAliveInterval 5
Host db1
  HostName db1.internal
Match host db1.internal
  HashKnownHosts yes
Match all
  ServerAliveCountMax 7
";
    let web = resolve(config, "web1");
    assert_eq!(web.port, Some(2000));
    assert_eq!(web.user, None);
    assert_eq!(web.identities_only, Some(true));
    assert_eq!(web.server_alive_interval, None);
    assert_eq!(web.server_alive_count_max, Some(7));
    assert_eq!(resolve(config, "web9").port, None);

    let db = resolve(config, "db1");
    assert_eq!(db.port, None);
    // `Match host` sees the HostName set so far, lowercased.
    assert_eq!(db.hash_known_hosts, Some(true));
    assert_eq!(db.identities_only, None);
    assert_eq!(db.host_name.as_deref(), Some("db1.internal"));

    // `Match user` sees the user given on the command line.
    let file = parse("Match user deploy\n  Port 2222\n");
    let mut cx = context();
    assert_eq!(file.resolve("h", &cx).unwrap().port, None);
    cx.user = Some("deploy".into());
    assert_eq!(file.resolve("h", &cx).unwrap().port, Some(2222));
}

#[test]
fn hosts_ssh_cannot_be_matched_without_running_something_are_refused() {
    let config = "\
Host web*
  User web
Match host web* exec \"test -e /tmp/vpn\"
  ProxyJump bastion
Match host other !exec \"true\"
  Port 1
";
    let file = parse(config);
    let err = file.resolve("web1", &context()).unwrap_err();
    assert_eq!(
        err.to_string()
            .split(':')
            .take(3)
            .collect::<Vec<_>>()
            .join(":"),
        "host `web1`: config:3"
    );
    assert!(
        err.to_string().contains("`Match exec test -e /tmp/vpn`"),
        "{err}"
    );
    // When another criterion already fails, the outcome is known.
    assert_eq!(file.resolve("db", &context()).unwrap().port, None);
    for refused in [
        "Match final\n",
        "Match canonical host x\n",
        "Match localnetwork 10.0.0.0/8\n",
        "Match tagged x\n",
        "ProxyCommand ssh -W %h:%p bastion\n",
        "CanonicalizeHostname yes\n",
        "CanonicalizeHostname always\n",
    ] {
        let err = parse(refused).resolve("h", &context()).unwrap_err();
        assert!(
            matches!(err, SshConfigError::Unsupported { line: 1, .. }),
            "{refused}: {err}"
        );
    }
    // ProxyJump first wins over a later ProxyCommand, and the reverse.
    let jump = resolve("ProxyJump a\nProxyCommand nc %h %p\n", "h");
    assert_eq!(jump.proxy_jump.unwrap()[0].host, "a");
    assert!(parse("ProxyCommand nc %h %p\nProxyJump a\n")
        .resolve("h", &context())
        .is_err());
    assert_eq!(
        resolve("ProxyCommand none\nProxyJump a\n", "h").proxy_jump,
        None
    );
    assert_eq!(resolve("CanonicalizeHostname no\n", "h").port, None);
}

#[test]
fn tokens_expanded_per_option() {
    let config = "\
Host *
  HostName %h.example.org
  User bob
  Port 2222
  IdentityFile ~/.ssh/id_%h_%r_%p_%u_%n_%L_%l_%i_%%
  UserKnownHostsFile %d/kh_%k ${HOME}/second
  GlobalKnownHostsFile ~/global
";
    let s = resolve(config, "Web");
    assert_eq!(s.host_name.as_deref(), Some("web.example.org"));
    assert_eq!(
        s.identity_files,
        vec![PathBuf::from(
            "/home/op/.ssh/id_web.example.org_bob_2222_op_Web_laptop_laptop.example.org_1000_%"
        )]
    );
    assert_eq!(
        s.user_known_hosts_files,
        vec![
            PathBuf::from("/home/op/kh_Web"),
            PathBuf::from("/home/op/second")
        ]
    );
    assert_eq!(
        s.global_known_hosts_files,
        Some(vec![PathBuf::from("/home/op/global")])
    );
    // %k is the HostKeyAlias when there is one, lowercased.
    let s = resolve("HostKeyAlias KeyName\nUserKnownHostsFile /kh_%k\n", "h");
    assert_eq!(s.user_known_hosts_files, vec![PathBuf::from("/kh_keyname")]);
    // ssh refuses unknown tokens and unset variables.
    for bad in [
        "IdentityFile /k_%z",
        "IdentityFile /k_${NOPE}",
        "UserKnownHostsFile /k_%",
        "HostName %r.example",
        "IdentityFile ~other/key",
    ] {
        assert!(parse(bad).resolve("h", &context()).is_err(), "{bad}");
    }
}

#[test]
fn values_are_checked_as_ssh_checks_them_even_where_no_line_applies() {
    let refused = |text: &str| {
        SshConfigFile::parse(text, Path::new("/cfg"))
            .err()
            .map(|e| e.to_string())
    };
    for text in [
        "Compression maybe\n",
        "Host other\n  ForwardAgent ${X\n",
        "Match host other\n  LogLevel LOUD\n",
        "Port 0\n",
        "Host x\n  Port 70000\n",
        "ConnectTimeout -1\n",
        "AddressFamily inet7\n",
        "RequestTTY sometimes\n",
        "ControlMaster maybe\n",
        "Ciphers aes128-ctr,bogus\n",
        "HostKeyAlgorithms foo*\n",
        "ForwardX11 yes no\n",
        "LocalForward 8080\n",
        "PermitRemoteOpen host\n",
        "IPQoS af21 cs1 ef\n",
    ] {
        let message = refused(text).unwrap_or_else(|| panic!("accepted: {text}"));
        assert!(message.starts_with("/cfg:"), "{message}");
    }
    let message = refused("Host a\n  AddressFamily inet7\n").unwrap();
    assert!(
        message.contains("/cfg:2") && message.contains("`inet6`"),
        "{message}"
    );
    for text in [
        "Compression yes\nForwardAgent $SSH_AUTH_SOCK\nLogLevel debug3\n",
        "Ciphers -bogus\nMACs +hmac-sha1\nHostKeyAlgorithms ssh-ed25519*,rsa\n",
        "LocalForward 127.0.0.1:8080 [::1]:80\nRemoteForward 0\nDynamicForward 1080\n",
        "ConnectTimeout +5\nPort +22\nRekeyLimit 1G 1h\nIPQoS 0x10\n",
    ] {
        assert_eq!(refused(text), None, "{text}");
    }
    // What ssh checks only on the value it obtained.
    assert!(resolve_err("ConnectionAttempts 0\n").contains("ConnectionAttempts"));
    assert!(resolve_err("HostKeyAlgorithms !ssh-rsa\n").contains("HostKeyAlgorithms"));
    assert!(resolve_err("ProxyJump h\n").contains("jumphost loop"));
    let _ = resolve("Host other\n  ConnectionAttempts 0\n", "h");
    // `${VAR}` ssh expands while reading: set or not, on every line.
    let err = resolve_err("Host other\n  IdentityAgent ${UNSET}/a\n");
    assert!(err.contains(":2") && err.contains("${UNSET}"), "{err}");
    let _ = resolve("Host other\n  LocalForward 1 ${HOME}:2\n", "h");
    // Tokens ssh expands in the obtained value only.
    assert!(resolve_err("ControlPath /a/%Z\n").contains("%Z"));
    let _ = resolve("Host other\n  ControlPath /a/%Z\n", "h");
}

fn resolve_err(text: &str) -> String {
    parse(text)
        .resolve("h", &context())
        .expect_err(text)
        .to_string()
}

#[test]
fn sha1_of_known_vectors() {
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(
        sha1_hex(&[b'a'; 1000]),
        "291e9a6c66994949b57ba5e650361e98fc36b1ba"
    );
}

#[test]
fn ports_as_ssh_reads_them() {
    let services =
        "ssh\t\t22/tcp\t\t\t# SSH Remote Login Protocol\nhttp 80/tcp www\ndomain 53/udp\n";
    assert_eq!(service_port("ssh", services), Some(22));
    assert_eq!(service_port("www", services), Some(80));
    assert_eq!(service_port("domain", services), None);
    assert_eq!(parse_port("2222"), Some(2222));
    assert_eq!(parse_port("0"), None);
}

#[test]
fn proxy_jump_values() {
    let s = resolve(
        "ProxyJump ops@bastion:2222,[2001:db8::1]:22,ssh://u@inner # c\n",
        "h",
    );
    let hops: Vec<String> = s
        .proxy_jump
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(hops, ["ops@bastion:2222", "[2001:db8::1]:22", "u@inner"]);
    assert_eq!(resolve("ProxyJump none\n", "h").proxy_jump, Some(vec![]));
    assert!(SshConfigFile::parse("ProxyJump a,,b\n", Path::new("config")).is_err());
}

#[test]
fn errors_name_file_line_and_what_is_accepted() {
    let table: &[(&str, &str)] = &[
        (
            "Host a\n  Port nosuchservice\n",
            "config:2: `Port` must be a number from 1 to 65535 or a service name \
             from `/etc/services`, not `nosuchservice`",
        ),
        (
            "Port 0",
            "config:1: `Port` must be a number from 1 to 65535 or a service name \
             from `/etc/services`, not `0`",
        ),
        (
            "Port 65536",
            "config:1: `Port` must be a number from 1 to 65535 or a service name \
             from `/etc/services`, not `65536`",
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
    ];
    for &(config, message) in table {
        let err = SshConfigFile::parse(config, Path::new("config"))
            .expect_err(&format!("{config:?} should be rejected"));
        assert_eq!(err.to_string(), message, "{config:?}");
    }
}

#[test]
fn keywords_of_ssh_that_deployer_does_not_use_are_accepted() {
    let config = "ForwardAgent yes\nControlPath ~/.ssh/cm-%C\nCipher x\nProtocol 2\n\
                  GSSAPIKeyExchange yes\n";
    assert_eq!(resolve(config, "h").host_name.as_deref(), Some("h"));
    assert!(parse(config).warnings().is_empty());
    assert!(KNOWN_KEYWORDS.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(UNSUPPORTED_KEYWORDS.iter().all(|k| is_known_keyword(k)));
}

#[test]
fn unsupported_keywords_are_accepted_with_a_warning() {
    let file = parse("Host x\n  KerberosAuthentication yes\n");
    assert_eq!(
        file.warnings()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["config:2: `kerberosauthentication` is not supported by OpenSSH; ignored, as ssh does"]
    );
    assert!(file.resolve("h", &context()).is_ok());
}

#[test]
fn aliases_ssh_still_honours() {
    let s = resolve("IdentityFile2 /k\nSetupTimeOut 7\n", "h");
    assert_eq!(s.identity_files, vec![PathBuf::from("/k")]);
    assert_eq!(s.server_alive_interval, Some(Duration::from_secs(7)));
    let s = resolve("ProtocolKeepAlives 9\n", "h");
    assert_eq!(s.server_alive_interval, Some(Duration::from_secs(9)));
}

#[test]
fn unknown_keywords_are_refused_unless_ignore_unknown_lists_them_first() {
    let refused = |text: &str, alias: &str| {
        parse(text)
            .resolve(alias, &context())
            .expect_err(text)
            .to_string()
    };
    // Wherever it is, whichever host: ssh checks every line.
    assert_eq!(
        refused("Host other\n  SomeFutureOption x y\n", "h"),
        "config:2: `somefutureoption` is not an option of OpenSSH 9.2, which refuses \
         the file (\"Bad configuration option\"); list it in `IgnoreUnknown` before \
         this line if it is meant for another ssh"
    );
    // Listed (patterns, any case) before it, in a block that applies.
    let ok = "IgnoreUnknown useKeychain,Future*\nUseKeychain yes\nFutureThing 1\nUser u\n";
    assert_eq!(resolve(ok, "h").user.as_deref(), Some("u"));
    // Listed after it.
    assert!(refused("UseKeychain yes\nIgnoreUnknown UseKeychain\n", "h").contains(":1:"));
    // Listed in a block that does not apply to this host.
    let per_host = "Host mac\n  IgnoreUnknown UseKeychain\nHost *\n  UseKeychain yes\n";
    assert!(parse(per_host).resolve("mac", &context()).is_ok());
    assert!(refused(per_host, "h").contains(":4:"));
    // The first `IgnoreUnknown` obtained wins; a negation vetoes.
    assert!(refused("IgnoreUnknown a\nIgnoreUnknown b\nB 1\n", "h").contains(":3:"));
    assert!(refused("IgnoreUnknown *,!b\nB 1\n", "h").contains(":2:"));
    // Without a value, even a listed keyword is refused at once.
    let err = SshConfigFile::parse("IgnoreUnknown x\nX\n", Path::new("config")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config:2: `x` needs a value (ssh refuses a keyword without one)"
    );
}

#[test]
fn unresolved_includes_are_ignored_by_parse() {
    let settings = resolve("Include config.d/*\nUser me\n", "h");
    assert_eq!(settings.user.as_deref(), Some("me"));
}

#[test]
fn group_write_is_harmless_only_in_a_private_group_of_the_user() {
    let facts = |members: Option<&[&str]>, primary_of: &[u32], owner: Option<&str>| GroupFacts {
        members: members.map(|m| m.iter().map(|s| s.to_string()).collect()),
        primary_of: primary_of.to_vec(),
        owner_name: owner.map(str::to_string),
    };
    // alice's own group, primary for her alone.
    assert!(group_write_is_harmless(
        &facts(Some(&[]), &[1000], Some("alice")),
        1000
    ));
    // Or listing her alone as a supplementary member.
    assert!(group_write_is_harmless(
        &facts(Some(&["alice"]), &[], Some("alice")),
        1000
    ));
    assert!(group_write_is_harmless(
        &facts(Some(&["alice"]), &[1000], Some("alice")),
        1000
    ));
    // Someone else's primary group, another member, two members, no one.
    assert!(!group_write_is_harmless(
        &facts(Some(&[]), &[1000, 1001], Some("alice")),
        1000
    ));
    assert!(!group_write_is_harmless(
        &facts(Some(&["bob"]), &[1000], Some("alice")),
        1000
    ));
    assert!(!group_write_is_harmless(
        &facts(Some(&["alice", "bob"]), &[], Some("alice")),
        1000
    ));
    assert!(!group_write_is_harmless(
        &facts(Some(&[]), &[], Some("alice")),
        1000
    ));
    // An unknown group or owner.
    assert!(!group_write_is_harmless(
        &facts(None, &[1000], Some("alice")),
        1000
    ));
    assert!(!group_write_is_harmless(
        &facts(Some(&[]), &[1000], None),
        1000
    ));
}

#[test]
fn backslashes_split_as_ssh_argv_split() {
    let words = |line: &str| split_line(line).unwrap().unwrap().1;
    // Inside quotes `\ ` keeps its backslash; outside it escapes.
    assert_eq!(words(r#"IdentityFile "/k/a\ b""#), [r"/k/a\ b"]);
    assert_eq!(words(r"IdentityFile /k/a\ b"), ["/k/a b"]);
    // Quotes and backslashes are escaped anywhere.
    assert_eq!(
        words(r#"IdentityFile "a\"b" 'c\'d' e\\f"#),
        [r#"a"b"#, "c'd", r"e\f"]
    );
    // Before anything else the backslash stays.
    assert_eq!(words(r#"IdentityFile a\qb "c\qd""#), [r"a\qb", r"c\qd"]);
    // Words split at spaces and tabs only.
    assert_eq!(words("User a\u{b}b\tc"), ["a\u{b}b", "c"]);
    assert!(split_line(r#"IdentityFile "a\""#).is_err());
}

#[test]
fn include_globs_follow_glob3() {
    let m = |pattern: &str, name: &str| {
        compile_glob(pattern.as_bytes()).is_some_and(|g| glob_match(&g, name.as_bytes()))
    };
    let table: &[(&str, &str, bool)] = &[
        ("a[0-9]", "a7", true),
        ("a[0-9]", "ab", false),
        ("a[!0-9]", "ab", true),
        ("a[!0-9]", "a7", false),
        // `^` does not negate in OpenBSD's glob(3).
        ("[^a]x", "^x", true),
        ("[^a]x", "bx", false),
        // `]` first is a member; `-` last is one.
        ("[]]x", "]x", true),
        ("[!]]x", "]x", false),
        ("[a-]x", "-x", true),
        ("[z-a]x", "mx", false),
        // An unclosed `[` is itself.
        ("a[", "a[", true),
        ("[!", "[!", true),
        ("[[:digit:]]1", "71", true),
        ("[[:alpha:]x]1", "x1", true),
        ("[[:alpha:]x]1", "71", false),
        // A leading `.` only by a literal, unquoted `.`.
        ("*", ".hidden", false),
        ("?hidden", ".hidden", false),
        ("[.]hidden", ".hidden", false),
        ("\\.hidden", ".hidden", false),
        (".h*", ".hidden", true),
        // Backslash quotes.
        ("\\*", "*", true),
        ("\\*", "x", false),
        ("a\\1", "a1", true),
        // Bytes, not characters.
        ("??", "\u{e9}", true),
        ("?1", "\u{e9}1", false),
        ("*[0-9]", "ab12", true),
        ("*[0-9]", "ab1x", false),
    ];
    for (pattern, name, want) in table {
        assert_eq!(m(pattern, name), *want, "`{pattern}` against `{name}`");
    }
    // An unknown class matches nothing at all.
    assert!(compile_glob(b"[[:bogus:]]").is_none());
}

#[test]
fn host_name_tokens_ssh_refuses_are_refused_at_their_line() {
    let config = "Host other\n  HostName %r.never\nHost *\n  User u\n  HostName %r.example\n";
    let e = parse(config)
        .resolve("h", &context())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("config:5: `HostName %r.example`"), "{e}");
    assert!(e.contains("`%r`") && e.contains("only `%h`"), "{e}");
    // Found before a `Match host` line that needs it, still at its line.
    let config = "HostName x%u\nMatch host x*\n  User u\n";
    let e = parse(config)
        .resolve("h", &context())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("config:1: `HostName x%u`"), "{e}");
    // `${VAR}` stays as written in `HostName`, as ssh leaves it.
    assert_eq!(
        resolve("HostName a${B}", "h").host_name.as_deref(),
        Some("a${b}")
    );
    // `RemoteCommand` and forwarding socket paths take ssh's client tokens.
    for (line, token) in [
        ("RemoteCommand echo %T", "%T"),
        ("LocalForward /s/%j /t", "%j"),
        ("RemoteForward 8080 /t/%z", "%z"),
        ("CertificateFile /c/%j", "%j"),
    ] {
        let e = parse(line)
            .resolve("h", &context())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config:1: `") && e.contains(&format!("`{token}`")),
            "{e}"
        );
    }
    let s = resolve(
        "RemoteCommand echo %h %% ${X}\nLocalForward /s/%C /t/%r\n",
        "h",
    );
    assert_eq!(s.host_name.as_deref(), Some("h"));
}

#[test]
fn a_key_file_spelled_twice_is_listed_once_and_marked() {
    let s = resolve(
        "Host h\n  IdentityFile ~/.ssh/k\nHost *\n  IdentityFile ~/.ssh/k\n  \
         IdentityFile %d/.ssh/k\n  IdentityFile /home/op/.ssh/k\n  IdentityFile /j\n",
        "h",
    );
    let key = PathBuf::from("/home/op/.ssh/k");
    assert_eq!(s.identity_files, [key.clone(), PathBuf::from("/j")]);
    assert_eq!(s.identity_files_repeated, [key]);
    // The same line twice (ssh drops the repeat too) is no repetition
    // to report.
    let s = resolve("IdentityFile /j\nHost *\n  IdentityFile /j\n", "h");
    assert_eq!(s.identity_files, [PathBuf::from("/j")]);
    assert!(s.identity_files_repeated.is_empty());
}

#[test]
fn kex_algorithms_take_openssh_10s_names_and_refuse_unknown_ones() {
    let refused = |text: &str| {
        SshConfigFile::parse(text, Path::new("/cfg"))
            .err()
            .map(|e| e.to_string())
    };
    // ML-KEM is one of OpenSSH 10's names, and deployer runs it, though
    // the local OpenSSH 9.2 does not know it
    for text in [
        "KexAlgorithms mlkem768x25519-sha256\n",
        "KexAlgorithms ^mlkem768x25519-sha256\n",
        "KexAlgorithms +mlkem768x25519-sha256,curve25519-sha256\n",
    ] {
        assert_eq!(refused(text), None, "{text}");
    }
    let message = refused("Host a\n  KexAlgorithms mlkem768x25519-sha256,mlkem9000\n").unwrap();
    assert!(
        message.starts_with("/cfg:2:") && message.contains("`mlkem9000`"),
        "{message}"
    );
    // the value as written is what resolving gives, the first one winning
    let s = resolve(
        "Host h\n  KexAlgorithms -ecdh*\nHost *\n  KexAlgorithms curve25519-sha256\n",
        "h",
    );
    assert_eq!(s.kex_algorithms.as_deref(), Some("-ecdh*"));
    assert_eq!(resolve("User u\n", "h").kex_algorithms, None);
    // a list left empty is refused with its line
    let err = resolve_err("Host h\n  KexAlgorithms -*\n");
    assert!(
        err.contains(":2") && err.contains("KexAlgorithms -*"),
        "{err}"
    );
}
