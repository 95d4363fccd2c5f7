//! End-to-end tests of issue 24 ("secrets and trust"): each reproduces an
//! attack on the testbed's real hosts (or on this machine's files) and
//! shows that deployer refuses it. Named after the items.

mod common;

use common::cli::{deployer, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// `deployer --json` (the status view): its exit status, and the error
/// shown for `host` (empty when it answered).
fn status_error(tb: &Testbed, host: &str) -> (i32, String) {
    let out = tb.deployer().arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let h = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["hosts"].as_array().unwrap())
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no host {host} in {v}"));
    (
        out.status.code().unwrap_or(-1),
        h["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// A shell start-up file, as a hostile checkout would name it.
const BASHRC: &str = "# ~/.bashrc: executed by bash(1) for non-login shells.\n\
                      export PATH=\"$HOME/bin:$PATH\"\nalias ll='ls -l'\n";

/// Item 2, the hostile checkout: its deployer.ini points `known_hosts` at a
/// `~/.bashrc`-like file with accept-new, and its ssh configuration gives
/// a `HostKeyAlias` that is a shell command. Plain `deployer` (status)
/// writes nothing into that file, and says why: the alias is refused by
/// name, and without it the file is refused as not a known_hosts file.
#[test]
fn sec_item2_a_hostile_checkout_writes_nothing_into_a_shell_file() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let bashrc = tb.dir().join("bashrc");
    std::fs::write(&bashrc, BASHRC).unwrap();
    let pwned = tb.dir().join("pwned");
    let include = format!("Include {}\n", tb.ssh_config().display());
    let hostile_ssh = tb.dir().join("checkout-ssh-config");
    for alias in [
        format!("\"$(touch {})\"", pwned.display()),
        format!("$(touch>{})", pwned.display()),
    ] {
        std::fs::write(
            &hostile_ssh,
            format!("Host *\n    HostKeyAlias {alias}\n{include}"),
        )
        .unwrap();
        tb.write_config(
            &["fastpath"],
            &format!(
                "known_hosts = {}\naccept_new_host_keys = yes\nssh_config = {}\nconnect_timeout = 20",
                bashrc.display(),
                hostile_ssh.display()
            ),
            "",
        );
        let (code, error) = status_error(&tb, "test-1");
        assert_eq!(code, 3, "{error}");
        assert!(
            error.contains("the HostKeyAlias `$(touch")
                && error.contains("cannot be written into a known_hosts file"),
            "{alias}: {error}"
        );
        assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), BASHRC);
    }
    // Without the alias, the key would be recorded: not into this file.
    std::fs::write(&hostile_ssh, &include).unwrap();
    let (code, error) = status_error(&tb, "test-1");
    assert_eq!(code, 3, "{error}");
    assert!(
        error.contains("line 2 of") && error.contains("is not a known_hosts line"),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), BASHRC);
    // and nothing ever ran the alias
    assert!(!pwned.exists());
}

/// Item 2: a local history file that is a symbolic link (planted by
/// someone who can write the checkout) is not followed: the deploy is
/// refused before any host is changed, and the link's target is intact.
#[test]
fn sec_item2_a_symlinked_history_file_is_refused() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let precious = tb.dir().join("precious");
    std::fs::write(&precious, "root's own file\n").unwrap();
    let history = tb.dir().join("deployer-history.jsonl");
    std::os::unix::fs::symlink(&precious, &history).unwrap();

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("deployer-history.jsonl") && err.contains("is a symbolic link"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "root's own file\n"
    );
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));

    // A directory others can write is refused the same way.
    std::fs::remove_file(&history).unwrap();
    let shared = tb.dir().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    tb.write_config(
        &["fastpath"],
        &format!("history_file = {}/h.jsonl", shared.display()),
        "",
    );
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("every other user can write to it") && err.contains("chmod go-w"),
        "{err}"
    );
    assert!(!shared.join("h.jsonl").exists());
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
}
