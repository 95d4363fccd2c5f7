//! `deployer::known_hosts` against OpenSSH itself:
//! - which lines name a host, against `ssh-keygen -F NAME -f FILE`, on a
//!   corpus with every kind of entry (plain, hashed by `ssh-keygen -H`,
//!   `[host]:port`, lists, wildcards, negation, markers, mixed case);
//! - whether a host is trusted, against the system `ssh` with
//!   `StrictHostKeyChecking=yes` on the testbed's real hosts, for the
//!   verdicts that matter (deployer connecting through its transport).

use crate::common;

use std::path::Path;
use std::process::Command;

use common::testbed::Testbed;
use deployer::openssh::known_hosts;
use deployer::transport::{self, HostKeyPolicy, TargetKind};

/// Whether `ssh-keygen` can be run here (CI must have it).
fn have_ssh_keygen() -> bool {
    let ok = Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_ok_and(|o| !o.stderr.is_empty());
    if !ok {
        common::skip::skip("no ssh-keygen");
    }
    ok
}

/// A fresh public key of `key_type`, as `TYPE BASE64`.
fn new_key(dir: &Path, key_type: &str) -> String {
    let path = dir.join(format!("key-{key_type}"));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", "", "-t", key_type, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let f: Vec<&str> = text.split_whitespace().collect();
    format!("{} {}", f[0], f[1])
}

/// The lines `ssh-keygen -F name -f file` finds.
fn ssh_keygen_finds(file: &Path, name: &str) -> Vec<usize> {
    let out = Command::new("ssh-keygen")
        .args(["-F", name, "-f"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&format!("# Host {name} found: line "))?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// Every kind of entry, and names that each do or do not match.
#[test]
fn lines_naming_a_host_are_those_ssh_keygen_finds() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ed = new_key(dir.path(), "ed25519");
    let ec = new_key(dir.path(), "ecdsa");
    let rsa = new_key(dir.path(), "rsa");
    let corpus = [
        "# a comment".to_string(),
        String::new(),
        format!("web.example.com {ed}"),
        format!("WEB2.Example.COM {ec}"),
        format!("db1,db2,10.0.0.5 {rsa}"),
        format!("[web.example.com]:2222 {ed}"),
        format!("[10.0.0.5]:2222,alias-x {ec}"),
        format!("*.internal {ed}"),
        format!("host-? {rsa}"),
        format!("*.corp,!secret.corp {ed}"),
        format!("!nothing,web.example.com {ec}"),
        format!("@revoked revoked.example.com {ed}"),
        format!("@cert-authority *.ca.example {ec}"),
        format!("@revoked [*]:2222 {rsa}"),
        format!("tab.example\t{ed}"),
        format!("  indented.example {ed} with a comment"),
        format!("web.example.com {ed} # listed twice"),
    ]
    .join("\n")
        + "\n";
    // lines both skip (which `ssh-keygen -H` refuses to rewrite): a
    // line cut short, an unknown marker, key types neither knows (a
    // made-up one, and names a newer OpenSSH might bring, with a real
    // key's blob and with one of their own); then good ones after them,
    // one ending in CRLF
    let blob = ed.split_whitespace().nth(1).unwrap();
    let invalid = format!(
        "broken.example ssh-ed25519\n@unknown marker.example {ed}\n\
         future.example ssh-made-up-v99@example.org {blob}\n\
         future.example ssh-ed448 AAAACXNzaC1lZDQ0OAAAAAEA\n\
         future.example ssh-mldsa65@openssh.com {blob}\n\
         @revoked future.example ssh-made-up-v99@example.org {blob}\n\
         crlf.example {ed}\r\nweb.example.com {ed}\n"
    );
    let plain = dir.path().join("known_hosts");
    std::fs::write(&plain, &corpus).unwrap();
    // the same, hashed by OpenSSH (wildcard and marker lines stay plain)
    let hashed = dir.path().join("known_hosts.hashed");
    std::fs::write(&hashed, &corpus).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read_to_string(&hashed)
            .unwrap()
            .matches("|1|")
            .count()
            >= 8,
        "hashed"
    );
    for file in [&plain, &hashed] {
        let mut text = std::fs::read_to_string(file).unwrap();
        text.push_str(&invalid);
        std::fs::write(file, text).unwrap();
    }

    let names = [
        "web.example.com",
        "WEB.Example.com",
        "web2.example.com",
        "Web2.Example.Com",
        "db1",
        "db2",
        "db3",
        "10.0.0.5",
        "[10.0.0.5]:2222",
        "alias-x",
        "[web.example.com]:2222",
        "[web.example.com]:22",
        "a.internal",
        "x.y.internal",
        "internal",
        "host-1",
        "host-12",
        "open.corp",
        "secret.corp",
        "Secret.Corp",
        "nothing",
        "revoked.example.com",
        "foo.ca.example",
        "[foo]:2222",
        "tab.example",
        "indented.example",
        "broken.example",
        "marker.example",
        "future.example",
        "crlf.example",
        "unlisted",
    ];
    let mut compared = 0;
    for file in [&plain, &hashed] {
        let parsed = known_hosts::parse(file, &std::fs::read(file).unwrap());
        for name in names {
            // ssh lower-cases a name before looking it up; `ssh-keygen -F`
            // leaves that to its caller
            let want = ssh_keygen_finds(file, &name.to_ascii_lowercase());
            assert_eq!(
                parsed.lines_naming(name),
                want,
                "{name} in {}:\n{}",
                file.display(),
                std::fs::read_to_string(file).unwrap()
            );
            compared += usize::from(!want.is_empty());
        }
    }
    assert!(compared > 30, "only {compared} names found anything");
}

/// The base64 blob of a `TYPE BLOB` known_hosts key.
fn ed_blob(key: &str) -> &str {
    key.split_whitespace().nth(1).unwrap_or_default()
}

/// One case: known_hosts text for the user file and the global one, a
/// `HostKeyAlias`, and whether ssh connects.
struct Case {
    name: &'static str,
    user: String,
    global: String,
    alias: Option<&'static str>,
    ssh_connects: bool,
    deployer_connects: bool,
}

/// Real ssh and deployer, with the same known_hosts files, decide alike
/// (connect or refuse) for every kind of entry; where they differ, on the
/// safe side, the case says so.
#[test]
fn deployer_trusts_what_ssh_trusts() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    let a = tb.host("test-1").address.clone();
    let known = std::fs::read_to_string(tb.home().join(".ssh/known_hosts")).unwrap();
    let key_of = |address: &str, key_type: &str| -> String {
        known
            .lines()
            .find(|l| l.starts_with(&format!("{address} {key_type} ")))
            .unwrap_or_else(|| panic!("no {key_type} key of {address}"))
            .split_once(' ')
            .unwrap()
            .1
            .to_string()
    };
    let ed = key_of(&a, "ssh-ed25519");
    let ec = key_of(&a, "ecdsa-sha2-nistp256");
    let rsa = key_of(&a, "ssh-rsa");
    let wrong = key_of(&tb.host("test-2").address, "ssh-ed25519");
    let salt = [7u8; 20];
    let hashed = |name: &str| known_hosts::hash_name(name, &salt);
    let (wild, other) = (
        format!("{}.*", &a[..a.rfind('.').unwrap()]),
        "other.example",
    );
    let case = |name, user: String, ssh_connects| Case {
        name,
        user,
        global: String::new(),
        alias: None,
        ssh_connects,
        deployer_connects: ssh_connects,
    };
    let cases = vec![
        case("plain", format!("{a} {ed}\n"), true),
        case("plain rsa only", format!("{a} {rsa}\n"), true),
        case("hashed ecdsa only", format!("{} {ec}\n", hashed(&a)), true),
        case("changed", format!("{a} {wrong}\n"), false),
        case(
            "changed and right",
            format!("{a} {wrong}\n{a} {ed}\n"),
            true,
        ),
        case("list", format!("{other},{a} {ec}\n"), true),
        case("wildcard", format!("{wild} {ed}\n"), true),
        case("negated", format!("{wild},!{a} {ed}\n"), false),
        case("other port", format!("[{a}]:2222 {ed}\n"), false),
        case("unknown", format!("{other} {ed}\n"), false),
        // a key type neither knows (a newer host key algorithm, a made-up
        // one) is skipped: never trusted, and no reason to refuse the
        // host's other keys
        case(
            "only a key of an unknown type",
            format!("{a} ssh-mldsa65@openssh.com {}\n", ed_blob(&ed)),
            false,
        ),
        case(
            "unknown types, then the key",
            format!(
                "{a} ssh-made-up-v99@example.org {}\n{a} ssh-ed448 AAAA\n{a} {ed}\n",
                ed_blob(&ed)
            ),
            true,
        ),
        case("revoked", format!("{a} {ed}\n@revoked * {ed}\n"), false),
        // the revoked type is not asked for: the host's good ECDSA key is
        case(
            "revoked ed25519, good ecdsa",
            format!("{a} {ed}\n{a} {ec}\n{a} {rsa}\n@revoked * {ed}\n"),
            true,
        ),
        case(
            "cert-authority only",
            format!("@cert-authority * {ed}\n"),
            false,
        ),
        case(
            "cert-authority and key",
            format!("@cert-authority * {wrong}\n{a} {ed}\n"),
            true,
        ),
        Case {
            alias: Some("Web-1"),
            ..case("alias, mixed case", format!("WEB-1 {ed}\n"), true)
        },
        Case {
            alias: Some("WEB-1"),
            ..case(
                "alias hashed lower-case",
                format!("{} {ec}\n", hashed("web-1")),
                true,
            )
        },
        Case {
            alias: Some("web-1"),
            ..case("alias not the address", format!("{a} {ed}\n"), false)
        },
        Case {
            global: format!("{a} {ed}\n"),
            ..case(
                "stale user key, right global key",
                format!("{a} {wrong}\n"),
                true,
            )
        },
        Case {
            global: format!("@revoked * {ed}\n"),
            ..case("revoked in the global file", format!("{a} {ed}\n"), false)
        },
        Case {
            // OpenSSH applies `@revoked` to the hosts the line names only;
            // deployer refuses a revoked key for every host
            deployer_connects: false,
            ..case(
                "revoked for another host",
                format!("@revoked {other} {ed}\n{a} {ed}\n"),
                true,
            )
        },
    ];

    let user_file = tb.dir().join("oracle_known_hosts");
    let global_file = tb.dir().join("oracle_global_known_hosts");
    let mut failures = Vec::new();
    for c in &cases {
        std::fs::write(&user_file, &c.user).unwrap();
        std::fs::write(&global_file, &c.global).unwrap();
        let options = ssh_options(&user_file, &global_file, c.alias);
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let out = tb.ssh_with("test-1", "deployer", &options, "true");
        let ssh = out.status.success();

        let mut target = common::cli::target(&tb, "test-1", false);
        let TargetKind::Ssh(s) = &mut target.kind else {
            panic!("ssh target")
        };
        s.known_hosts = vec![user_file.clone()];
        s.global_known_hosts = vec![global_file.clone()];
        s.host_key_alias = c.alias.map(str::to_string);
        s.policy = HostKeyPolicy::Strict;
        let ours = transport::connect(&target);
        let deployer = ours.is_ok();
        if (ssh, deployer) != (c.ssh_connects, c.deployer_connects) {
            failures.push(format!(
                "{}: ssh {} (expected {}), deployer {} (expected {}): {}\n{}",
                c.name,
                ssh,
                c.ssh_connects,
                deployer,
                c.deployer_connects,
                ours.err().map(|e| e.to_string()).unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // the files are never written to under StrictHostKeyChecking yes
        assert_eq!(std::fs::read_to_string(&user_file).unwrap(), c.user);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn ssh_options(user: &Path, global: &Path, alias: Option<&str>) -> Vec<String> {
    let mut o: Vec<String> = [
        format!("UserKnownHostsFile={}", user.display()),
        format!("GlobalKnownHostsFile={}", global.display()),
        "StrictHostKeyChecking=yes".to_string(),
    ]
    .into_iter()
    .flat_map(|opt| ["-o".to_string(), opt])
    .collect();
    if let Some(alias) = alias {
        o.extend(["-o".to_string(), format!("HostKeyAlias={alias}")]);
    }
    o
}
