//! End-to-end tests of host-key trust: the `deployer` binary against the
//! testbed's real sshd hosts (keys of three types each), with known_hosts
//! files written for each case, and the system `ssh` asked the same
//! question where the point is "the same as ssh".

use crate::common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::testbed::Testbed;
use serde_json::Value;

/// The keys of `alias` as the testbed's known_hosts lists them: `(type,
/// base64)`, one per key type.
fn keys(tb: &Testbed, alias: &str) -> Vec<(String, String)> {
    let address = &tb.host(alias).address;
    let text = std::fs::read_to_string(tb.home().join(".ssh/known_hosts")).unwrap();
    let keys: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&address.as_str())).then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect();
    assert_eq!(keys.len(), 3, "three keys of {alias} in {text}");
    keys
}

/// The key of `alias` of type `key_type`, as `TYPE BASE64`.
fn key(tb: &Testbed, alias: &str, key_type: &str) -> String {
    let (t, k) = keys(tb, alias)
        .into_iter()
        .find(|(t, _)| t == key_type)
        .unwrap_or_else(|| panic!("no {key_type} key of {alias}"));
    format!("{t} {k}")
}

/// Write `deployer.ini` for stage `test` with `known_hosts = path`.
fn config_with_known_hosts(tb: &Testbed, path: &Path) {
    tb.write_config(
        &["fastpath"],
        &format!("known_hosts = {}\nconnect_timeout = 10", path.display()),
        "",
    );
}

/// Run `deployer --json` (the status view) with `extra` arguments: its
/// exit status and the error shown for `host` (empty when it answered).
fn status(tb: &Testbed, host: &str, extra: &[&str]) -> (i32, String) {
    common::cli::host_status(tb, host, extra)
}

/// The system `ssh` to `alias` with `known_hosts` as its only known_hosts
/// file and StrictHostKeyChecking `strict`: whether it ran `true`.
fn ssh_connects(tb: &Testbed, alias: &str, known_hosts: &Path, strict: &str) -> (bool, String) {
    let out = tb.ssh_with(
        alias,
        "deployer",
        &[
            "-o",
            &format!("UserKnownHostsFile={}", known_hosts.display()),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            &format!("StrictHostKeyChecking={strict}"),
        ],
        "true",
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// A key listed for the host that is not the one it offers: refused by
/// ssh and by deployer, which names both keys and the line, and never
/// records the offered one, even under accept-new.
#[test]
fn a_changed_host_key_is_refused_and_never_recorded() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    let address = &tb.host("test-1").address;
    // test-2's key, listed as test-1's
    let wrong = key(&tb, "test-2", "ssh-ed25519");
    let text = format!("# another host's key\n{address} {wrong}\n");
    let known = write(&tb.dir().join("known_hosts.changed"), &text);
    config_with_known_hosts(&tb, &known);

    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let (code, error) = status(&tb, "test-1", extra);
        assert_eq!(code, 3, "{error}");
        assert!(error.contains("HOST KEY CHANGED for `test-1`"), "{error}");
        assert!(
            error.contains(&format!("{}:2", known.display())),
            "names the line: {error}"
        );
        assert!(!error.contains("accept-new"), "{error}");
        // (accept-new does record test-2, whose address no line names)
        let after = std::fs::read_to_string(&known).unwrap();
        assert!(after.starts_with(&text), "{after}");
        for (_, k) in keys(&tb, "test-1") {
            assert!(!after.contains(&k), "test-1's key recorded: {after}");
        }
    }
    let (connects, stderr) = ssh_connects(&tb, "test-1", &known, "accept-new");
    assert!(
        !connects && stderr.contains("HOST IDENTIFICATION HAS CHANGED"),
        "{stderr}"
    );
}

/// A key marked `@revoked` is refused, by ssh and by deployer, and
/// accept-new does not record it (there is no other line to go by).
#[test]
fn a_revoked_host_key_is_refused_and_not_recorded_under_accept_new() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let text = keys(&tb, "test-1")
        .iter()
        .map(|(t, k)| format!("@revoked * {t} {k}\n"))
        .collect::<String>();
    let known = write(&tb.dir().join("known_hosts.revoked"), &text);
    config_with_known_hosts(&tb, &known);

    let (code, error) = status(&tb, "test-1", &["--accept-new-host-keys"]);
    assert_eq!(code, 3, "{error}");
    assert!(error.contains("is REVOKED"), "{error}");
    assert!(error.contains(&known.display().to_string()), "{error}");
    assert_eq!(std::fs::read_to_string(&known).unwrap(), text);

    let (connects, stderr) = ssh_connects(&tb, "test-1", &known, "accept-new");
    assert!(!connects && stderr.contains("REVOKED"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&known).unwrap(), text);
}

/// A host known only by its ECDSA key, under a hashed name (what
/// `HashKnownHosts yes` writes): deployer offers ECDSA first and connects,
/// as ssh does.
#[test]
fn a_host_known_only_by_a_hashed_ecdsa_key_connects() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let address = &tb.host("test-1").address;
    let known = write(
        &tb.dir().join("known_hosts.hashed"),
        format!("{address} {}\n", key(&tb, "test-1", "ecdsa-sha2-nistp256")),
    );
    let hash = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known)
        .output()
        .unwrap();
    assert!(hash.status.success(), "{hash:?}");
    let text = std::fs::read_to_string(&known).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains(address.as_str()),
        "{text}"
    );
    config_with_known_hosts(&tb, &known);

    let (code, error) = status(&tb, "test-1", &[]);
    assert_eq!((code, error.as_str()), (0, ""));
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        text,
        "nothing added"
    );
    assert!(ssh_connects(&tb, "test-1", &known, "yes").0);
}

/// Bytes that are not UTF-8 in a comment spoil nothing; a known_hosts file
/// that cannot be read refuses the host (even under accept-new, which
/// would otherwise record a key that file may list as changed).
#[test]
fn a_non_utf8_known_hosts_file_works_and_an_unreadable_one_refuses() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let mut bytes = b"# caf\xe9 \xff\xfe written by another tool\n".to_vec();
    bytes.extend(std::fs::read(tb.home().join(".ssh/known_hosts")).unwrap());
    let known = write(&tb.dir().join("known_hosts.latin1"), &bytes);
    config_with_known_hosts(&tb, &known);
    let (code, error) = status(&tb, "test-1", &[]);
    assert_eq!((code, error.as_str()), (0, ""));
    assert!(ssh_connects(&tb, "test-1", &known, "yes").0);

    // a directory where the file should be: it exists, and cannot be read
    let unreadable = tb.dir().join("known_hosts.dir");
    std::fs::create_dir(&unreadable).unwrap();
    config_with_known_hosts(&tb, &unreadable);
    let (code, error) = status(&tb, "test-1", &["--accept-new-host-keys"]);
    assert_eq!(code, 3, "{error}");
    assert!(
        error.contains(&format!(
            "cannot read the known_hosts file `{}`",
            unreadable.display()
        )) && error.contains("Is a directory"),
        "{error}"
    );
    assert_eq!(std::fs::read_dir(&unreadable).unwrap().count(), 0);
}

/// Forward connections to 127.0.0.1:PORT (returned) to `to`:22, so that a
/// testbed host answers on a port other than 22.
fn forward(to: &str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let to = format!("{to}:22");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&to) else {
                continue;
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            pipe(server, client);
        }
    });
    port
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// With `HostKeyAlias`, the key is looked up under the alias alone, never
/// `[alias]:port`, whatever the port (OpenSSH's rule): the host, reached
/// on another port, connects when the bare alias lists its key, and is
/// unknown when only `[alias]:port` does. ssh agrees on both.
#[test]
fn host_key_alias_on_another_port_is_looked_up_bare() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let port = forward(&tb.host("test-1").address);
    let ed25519 = key(&tb, "test-1", "ssh-ed25519");
    let known = tb.dir().join("known_hosts.alias");
    let ssh_config = write(
        &tb.dir().join("ssh_config.alias"),
        format!(
            "Host aliased\n    HostName 127.0.0.1\n    Port {port}\n    User deployer\n    \
             IdentityFile {}\n    IdentitiesOnly yes\n    HostKeyAlias Web-Key\n    \
             UserKnownHostsFile {}\n    GlobalKnownHostsFile /dev/null\n    \
             StrictHostKeyChecking yes\n",
            tb.home().join(".ssh/id_ed25519").display(),
            known.display()
        ),
    );
    write(
        &tb.dir().join("deployer.ini"),
        format!(
            "[environment]\ndeb_packages = fastpath\nstages = test\nssh_config = {}\n\
             connect_timeout = 10\n\n[stage:test]\nhosts = aliased\n",
            ssh_config.display()
        ),
    );
    let ssh = |known_hosts_text: &str| {
        write(&known, known_hosts_text);
        Command::new("ssh")
            .arg("-F")
            .arg(&ssh_config)
            .args(["-o", "BatchMode=yes", "aliased", "true"])
            .env("HOME", tb.home())
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // the alias alone, lower-cased as ssh records it
    let out: Output = ssh(&format!("web-key {ed25519}\n"));
    assert!(out.status.success(), "ssh: {out:?}");
    let (code, error) = status(&tb, "aliased", &[]);
    assert_eq!((code, error.as_str()), (0, ""));

    // with the port: neither ssh nor deployer looks there
    let out = ssh(&format!("[web-key]:{port} {ed25519}\n"));
    assert!(!out.status.success(), "ssh: {out:?}");
    let (code, error) = status(&tb, "aliased", &[]);
    assert_eq!(code, 3);
    assert!(error.contains("is not known"), "{error}");
}

/// accept-new records each unknown host once, a whole line each although
/// hosts are contacted at once, and the next run trusts them; so does ssh.
#[test]
fn accept_new_records_whole_lines_that_ssh_reads() {
    let Some(tb) = Testbed::start(&[("test", 4)]) else {
        return;
    };
    // plain names here (Debian's /etc/ssh/ssh_config says HashKnownHosts
    // yes, which the hashed-recording test covers)
    tb.append_ssh_config("Host *\n    HashKnownHosts no\n");
    // the last line lacks its newline: the first key recorded adds one
    let known = write(&tb.dir().join("known_hosts.new"), "# start, no newline");
    config_with_known_hosts(&tb, &known);
    let (code, error) = status(&tb, "test-1", &[]);
    assert_eq!(code, 3);
    assert!(error.contains("is not known"), "{error}");

    let (code, error) = status(&tb, "test-1", &["--accept-new-host-keys"]);
    assert_eq!((code, error.as_str()), (0, ""));
    let text = std::fs::read_to_string(&known).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], "# start, no newline");
    for host in tb.all_hosts() {
        let listed: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("{} ", host.address)))
            .collect();
        assert_eq!(listed.len(), 1, "{} in {text}", host.alias);
        let fields: Vec<&str> = listed[0].split(' ').collect();
        assert_eq!(fields.len(), 3, "{}", listed[0]);
        assert!(keys(&tb, &host.alias).contains(&(fields[1].to_string(), fields[2].to_string())));
        assert!(
            ssh_connects(&tb, &host.alias, &known, "yes").0,
            "{}",
            host.alias
        );
    }
    let (code, error) = status(&tb, "test-4", &[]);
    assert_eq!((code, error.as_str()), (0, ""));
    assert_eq!(std::fs::read_to_string(&known).unwrap(), text);
}

/// With `HashKnownHosts yes`, accept-new records a hashed name, which
/// `ssh-keygen -F` finds and ssh trusts.
#[test]
fn accept_new_records_hashed_names_when_asked() {
    use deployer::transport::{self, HostKeyPolicy, TargetKind};

    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let known = tb.dir().join("known_hosts.hashed-new");
    config_with_known_hosts(&tb, &known);
    let mut target = common::cli::target(&tb, "test-1", true);
    let TargetKind::Ssh(s) = &mut target.kind else {
        panic!("ssh target")
    };
    assert_eq!(
        (s.policy, &s.known_hosts[..]),
        (HostKeyPolicy::AcceptNew, &[known.clone()][..])
    );
    s.hash_known_hosts = true;
    s.global_known_hosts = Vec::new();
    drop(transport::connect(&target).expect("accepted"));

    let address = &tb.host("test-1").address;
    let text = std::fs::read_to_string(&known).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains(address.as_str()),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    let found = Command::new("ssh-keygen")
        .args(["-F", address, "-f"])
        .arg(&known)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&found.stdout).contains("found: line 1"),
        "{found:?}"
    );
    assert!(ssh_connects(&tb, "test-1", &known, "yes").0);
    // and trusted from then on
    let TargetKind::Ssh(s) = &mut target.kind else {
        panic!("ssh target")
    };
    s.policy = HostKeyPolicy::Strict;
    drop(transport::connect(&target).expect("trusted"));
    assert_eq!(std::fs::read_to_string(&known).unwrap(), text);
}

/// A host vouched for only by a `@cert-authority` line is refused with a
/// message saying why (host certificates), which never points to
/// accept-new; accept-new records nothing for it.
#[test]
fn a_host_only_a_certificate_authority_vouches_for_is_refused() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let text = format!(
        "@cert-authority 127.77.* {}\n",
        key(&tb, "test-1", "ssh-ed25519")
    );
    let known = write(&tb.dir().join("known_hosts.ca"), &text);
    config_with_known_hosts(&tb, &known);
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let (code, error) = status(&tb, "test-1", extra);
        assert_eq!(code, 3, "{error}");
        assert!(
            error.contains("does not support host certificates")
                && error.contains(&format!("{}:1", known.display())),
            "{error}"
        );
        assert!(!error.contains("accept"), "{error}");
        assert_eq!(std::fs::read_to_string(&known).unwrap(), text);
    }
    assert!(!ssh_connects(&tb, "test-1", &known, "yes").0);
}

/// `deployer hosts --check` says, host by host, what deployer decides
/// about its key (through jump hosts too), and records nothing, even
/// under accept-new.
#[test]
fn hosts_check_gives_each_verdict_and_records_nothing() {
    let Some(tb) = Testbed::start(&[("test", 2), ("prod", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    tb.append_ssh_config("Host prod-1\n    ProxyJump test-1\n");
    let _changed = tb.change_host_key("test-2");
    let run = |extra: &[&str]| {
        tb.deployer()
            .args(["--color=never", "hosts", "--check", "--json"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdict = |host: &str| {
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == host)
            .unwrap()["host_key"]
            .clone()
    };
    assert_eq!(verdict("test-1")["ok"], true, "{v}");
    assert_eq!(verdict("prod-1")["ok"], true, "through its jump host: {v}");
    let changed = verdict("test-2");
    assert_eq!(changed["ok"], false);
    assert!(
        changed["verdict"]
            .as_str()
            .unwrap()
            .contains("HOST KEY CHANGED"),
        "{changed}"
    );

    // an unknown host under accept-new: said so, not recorded
    let known = tb.dir().join("known_hosts.empty");
    std::fs::write(&known, "").unwrap();
    config_with_known_hosts(&tb, &known);
    let out = run(&["--accept-new-host-keys", "test"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v["hosts"][0]["host_key"];
    assert!(
        first["verdict"].as_str().unwrap().contains("not known"),
        "{first}"
    );
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        "",
        "nothing recorded"
    );
}
