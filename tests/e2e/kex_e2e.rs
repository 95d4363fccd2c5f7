//! The key exchange against real servers: bookworm's OpenSSH 9.2 sshd
//! (no ML-KEM) and trixie's OpenSSH 10 (ML-KEM its default). What
//! deployer says it negotiated (`hosts --check`, `-vv`) is checked against
//! what the server itself logs, and a server restricted to ML-KEM alone is
//! checked to refuse OpenSSH 9.2's client before deployer reaches it.

use std::process::{Output, Stdio};

use serde_json::Value;

use crate::common::testbed::{HostKind, Testbed};

const ML_KEM: &str = "mlkem768x25519-sha256";

/// `deployer hosts --check --json` (and `-vv`): the exit status, the JSON
/// and the log on stderr.
fn hosts_check(tb: &Testbed) -> (Option<i32>, Value, String) {
    let out: Output = tb
        .deployer()
        .args(["--color=never", "-vv", "hosts", "--check", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), json, stderr)
}

/// The `host_key` part of `host`'s entry.
fn checked<'a>(v: &'a Value, host: &str) -> &'a Value {
    &v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no {host} in {v}"))["host_key"]
}

/// The `-vv` handshake line of `address`.
fn handshake_line<'a>(stderr: &'a str, host: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.contains("handshake") && l.contains(&format!("host={host}")))
        .unwrap_or_else(|| panic!("no handshake line for {host}:\n{stderr}"))
}

/// Have `host`'s sshd log the key exchange it agrees on (`LogLevel
/// DEBUG1`), plus `extra` lines, through a drop-in read before the
/// testbed's own, and restart it. The sshd must be the testbed's plain one
/// (it logs to /var/log/sshd.log).
fn sshd_drop_in(tb: &Testbed, host: &str, extra: &str) {
    let text = format!("LogLevel DEBUG1\n{extra}");
    let out = tb.exec(
        host,
        &format!("printf '%s' '{text}' > /etc/ssh/sshd_config.d/00-kex-test.conf && : > /var/log/sshd.log"),
    );
    assert!(out.status.success(), "{out:?}");
    // stopped, then started again with the same keys and the new config
    drop(tb.stop_sshd(host));
}

/// The key exchange `host`'s sshd logged for the connections since its
/// restart.
fn server_kex(tb: &Testbed, host: &str) -> Vec<String> {
    tb.read_file(host, "/var/log/sshd.log")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split("kex: algorithm: ").nth(1))
        .map(|k| k.trim().trim_end_matches("[preauth]").trim().to_string())
        .collect()
}

#[test]
fn bookworm_negotiates_curve25519_and_trixie_ml_kem() {
    let Some(tb) = Testbed::start_kinds(&[
        ("test", 1, HostKind::Bookworm),
        ("test", 1, HostKind::Trixie),
    ]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    sshd_drop_in(&tb, "test-1", "");
    sshd_drop_in(&tb, "test-2", "");

    let (code, v, stderr) = hosts_check(&tb);
    assert_eq!(code, Some(0), "{v}\n{stderr}");
    // OpenSSH 9.2 offers no ML-KEM, and deployer runs no sntrup761: the
    // best both run is curve25519
    assert_eq!(checked(&v, "test-1")["kex"], "curve25519-sha256", "{v}");
    assert_eq!(checked(&v, "test-2")["kex"], ML_KEM, "{v}");
    for (host, kex) in [("test-1", "curve25519-sha256"), ("test-2", ML_KEM)] {
        assert!(handshake_line(&stderr, host).contains(kex), "{stderr}");
        // the server agrees: its own log names the same algorithm
        assert_eq!(server_kex(&tb, host), [kex], "{host}");
        // what deployer offers, ML-KEM first, is shown without connecting
        let offer = v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == host)
            .unwrap()["ssh"]["kex"]
            .clone();
        assert_eq!(offer[0], ML_KEM, "{offer}");
        assert_eq!(offer[1], "curve25519-sha256", "{offer}");
    }

    // the text view says it on a line of its own
    let out = tb
        .deployer()
        .args(["--color=never", "hosts", "--check"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("  negotiated   {ML_KEM}")), "{text}");
    assert!(text.contains("  negotiated   curve25519-sha256"), "{text}");
}

#[test]
fn a_server_restricted_to_ml_kem_is_reached() {
    let Some(tb) = Testbed::start_kinds(&[("test", 1, HostKind::Trixie)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    sshd_drop_in(&tb, "test-1", &format!("KexAlgorithms {ML_KEM}\n"));
    // the server really offers ML-KEM alone: sshd says so, and this
    // machine's OpenSSH 9.2 client, which does not run it, is refused
    let t = tb.exec("test-1", "sshd -T | grep -i '^kexalgorithms'");
    assert_eq!(
        String::from_utf8_lossy(&t.stdout).trim(),
        format!("kexalgorithms {ML_KEM}")
    );
    let ssh = tb.ssh("test-1", "deployer", "true");
    assert!(!ssh.status.success(), "{ssh:?}");
    assert!(
        String::from_utf8_lossy(&ssh.stderr).contains("no matching key exchange method"),
        "{ssh:?}"
    );

    let (code, v, stderr) = hosts_check(&tb);
    assert_eq!(code, Some(0), "{v}\n{stderr}");
    assert_eq!(checked(&v, "test-1")["kex"], ML_KEM, "{v}");
    // the server's log: no match with OpenSSH 9.2's client, then ML-KEM
    assert_eq!(server_kex(&tb, "test-1"), ["(no match)", ML_KEM]);
    // and a whole command runs there: status reads the installed versions
    let out = tb
        .deployer()
        .args(["--color=never", "status", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let after = server_kex(&tb, "test-1");
    assert!(
        after.len() > 2 && after[1..].iter().all(|k| k == ML_KEM),
        "{after:?}"
    );
}

#[test]
fn a_client_kex_the_server_lacks_fails_naming_both_lists() {
    let Some(tb) = Testbed::start_kinds(&[("test", 3, HostKind::Bookworm)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    // test-1 directly; test-3 through test-2 (whose own key exchange is
    // the default), so the server's list is read through the tunnel too
    tb.append_ssh_config(&format!(
        "Host test-1\n    KexAlgorithms {ML_KEM}\n\
         Host test-3\n    ProxyJump test-2\n    KexAlgorithms {ML_KEM}\n"
    ));
    let (code, v, stderr) = hosts_check(&tb);
    assert_eq!(code, Some(3), "{v}\n{stderr}");
    assert_eq!(checked(&v, "test-2")["ok"], true, "{v}");
    for host in ["test-1", "test-3"] {
        let verdict = checked(&v, host);
        assert_eq!(verdict["ok"], false, "{v}");
        let why = verdict["verdict"].as_str().unwrap();
        assert!(
            why.contains("no key exchange algorithm in common")
                && why.contains(&format!("deployer offered {ML_KEM};")),
            "{why}"
        );
        // the server's own list, read from it: OpenSSH 9.2's, no ML-KEM
        let server = why.split("the server offers ").nth(1).unwrap_or_default();
        assert!(server.contains("curve25519-sha256"), "{why}");
        assert!(
            server.contains("sntrup761x25519-sha512@openssh.com"),
            "{why}"
        );
        assert!(!server.contains("mlkem"), "{why}");
        assert!(!server.contains("kex-strict"), "signals left out: {why}");
    }

    // a command fails the same way, with the fix in a note
    let out = tb
        .deployer()
        .args(["--color=never", "check", "test"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("no key exchange algorithm in common"), "{all}");
    assert!(all.contains("KexAlgorithms"), "{all}");
}

#[test]
fn kex_lists_are_the_ones_openssh_10_makes() {
    // OpenSSH 10's own client, run on a trixie host, is the oracle for
    // deployer's default and for what `KexAlgorithms` makes of it (the
    // local OpenSSH 9.2 does not know ML-KEM)
    let Some(tb) = Testbed::start_kinds(&[("test", 1, HostKind::Trixie)]) else {
        return;
    };
    let ssh_g = |value: Option<&str>| -> String {
        let option = value.map_or(String::new(), |v| format!("-o 'KexAlgorithms={v}'"));
        let out = tb.exec(
            "test-1",
            &format!("ssh -F /dev/null {option} -G h | sed -n 's/^kexalgorithms //p'"),
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(ssh_g(None), deployer::ssh_config::kex::DEFAULT.join(","));
    for value in [
        ML_KEM,
        "^curve25519-sha256",
        "+diffie-hellman-group14-sha1",
        "-sntrup*,ecdh*",
        "-mlkem*",
        "curve25519-sha256,mlkem768x25519-sha256",
    ] {
        let ours =
            deployer::ssh_config::kex::assemble(Some(value), deployer::ssh_config::kex::DEFAULT)
                .unwrap()
                .join(",");
        assert_eq!(ours, ssh_g(Some(value)), "KexAlgorithms {value}");
    }
}
