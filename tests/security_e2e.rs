//! End-to-end tests of issue 24 ("secrets and trust"): each reproduces an
//! attack on the testbed's real hosts (or on this machine's files) and
//! shows that deployer refuses it. Named after the items.

mod common;

use std::path::Path;

use common::cli::{deployer, NEW, OLD};
use common::testbed::Testbed;
use serde_json::Value;

/// `deployer --json` (the status view): its exit status, and the error
/// shown for `host` (empty when it answered).
fn status_error(tb: &Testbed, host: &str) -> (i32, String) {
    common::cli::host_status(tb, host, &[])
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

/// `deployer --json` (status) as if run through `sudo` by uid 1000 (the
/// tests run as root): its exit status, stdout and stderr.
fn status_under_sudo(tb: &Testbed) -> (i32, String, String) {
    common::cli::run(
        tb.deployer()
            .arg("--json")
            .env("SUDO_UID", "1000")
            .env("SUDO_USER", "alice")
            .env("SUDO_GID", "1000"),
    )
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

/// Item 3: run as root through sudo, deployer trusts only root's files to
/// tell it what to run and where to connect: deployer.ini, the ssh
/// configuration it names (which ssh itself, like `ssh -F`, would not
/// check) and the identity files. The person behind sudo owning one is
/// refused, with the reason and the fix.
#[test]
fn sec_item3_under_sudo_only_roots_files_decide_what_runs() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    let ini = tb.write_config(&["fastpath"], "connect_timeout = 20", "");
    chown(&ini, 1000);
    let (code, out, err) = status_under_sudo(&tb);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("refusing to use this configuration")
            && err.contains("it is not owned by root, who runs deployer")
            && err.contains("through sudo too")
            && err.contains("chown root"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    chown(&ini, 0);

    // The ssh configuration deployer.ini names.
    let named = tb.dir().join("ssh-config");
    std::fs::copy(tb.ssh_config(), &named).unwrap();
    chown(&named, 1000);
    let ini = tb.write_config(
        &["fastpath"],
        &format!("ssh_config = {}\nconnect_timeout = 20", named.display()),
        "",
    );
    let (code, error) = status_error(&tb, "test-1");
    assert_eq!((code, error.as_str()), (0, ""), "not under sudo, as ssh -F");
    let (code, out, err) = status_under_sudo(&tb);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("bad owner or permissions on ssh config")
            && err.contains(&named.display().to_string())
            && err.contains("owner uid 1000"),
        "{err}"
    );
    chown(&named, 0);
    std::fs::remove_file(&ini).unwrap();
    tb.write_config(&["fastpath"], "connect_timeout = 20", "");

    // The identity file.
    let key = tb.home().join(".ssh/id_ed25519");
    chown(&key, 1000);
    let (code, out, err) = status_under_sudo(&tb);
    assert_eq!(code, 3, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let error = v["stages"][0]["hosts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("authentication failed")
            && error.contains("owned by uid 1000, not root")
            && error.contains("chown root"),
        "{error}"
    );
    chown(&key, 0);
    let (code, out, err) = status_under_sudo(&tb);
    assert_eq!(code, 0, "{out}{err}");
}

/// Item 3: a private key that others can read is refused as ssh refuses
/// it ("UNPROTECTED PRIVATE KEY FILE"), and used again once it is 0600.
#[test]
fn sec_item3_a_private_key_others_can_read_is_refused_as_ssh_refuses_it() {
    use std::os::unix::fs::PermissionsExt;

    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 20", "");
    let key = tb.home().join(".ssh/id_ed25519");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, error) = status_error(&tb, "test-1");
    assert_eq!(code, 3, "{error}");
    assert!(
        error.contains("UNPROTECTED PRIVATE KEY FILE")
            && error.contains("permissions 0644 are too open")
            && error.contains("chmod 600"),
        "{error}"
    );
    let ssh = tb.ssh("test-1", "deployer", "true");
    assert!(!ssh.status.success());
    assert!(
        String::from_utf8_lossy(&ssh.stderr).contains("UNPROTECTED PRIVATE KEY FILE"),
        "{ssh:?}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, error) = status_error(&tb, "test-1");
    assert_eq!((code, error.as_str()), (0, ""));
}

/// Item 6: `promote` never moves a stage backwards: with `prod` ahead of
/// `test`, `promote fastpath prod --yes` (and `--force`) is refused,
/// naming the host and the rollback to ask for by name, and nothing
/// changes; that rollback, asked for, goes through.
#[test]
fn sec_item6_promote_never_moves_a_stage_backwards() {
    let Some(tb) = common::cli::two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    tb.set_versions("prod-1", &[("fastpath", Some(NEW))]);
    for extra in [
        &["--yes"][..],
        &["--yes", "--force", "--reason", "I know"][..],
        &["--dry-run"][..],
    ] {
        let mut args = vec!["promote", "fastpath", "prod"];
        args.extend_from_slice(extra);
        let (code, out, err) = deployer(&tb, &args);
        assert_eq!(code, 6, "{extra:?}: {out}{err}");
        assert!(
            err.contains(&format!(
                "refusing to promote `fastpath` to `prod`: it would move the stage backwards, to {OLD} (what `test` runs)"
            )) && err.contains(&format!("prod-1 (prod) runs {NEW}"))
                && err.contains(&format!("`deployer deploy fastpath prod {OLD}`")),
            "{extra:?}: {err}"
        );
        assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(NEW));
    }
    assert_eq!(common::cli::last(&tb)["outcome"], "refused");

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", OLD, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));
}

/// Item 4: root on a host writes into its history a forgery with the id
/// of a local record, and a record claiming a deploy to another stage.
/// `history --hosts` shows the local record (never the host's), marks
/// both forgeries with where they came from, and warns; JSON says the
/// same.
#[test]
fn sec_item4_a_host_cannot_rewrite_or_invent_the_past() {
    let Some(tb) = common::cli::two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let mine = common::cli::last(&tb);
    let id = mine["id"].as_str().unwrap().to_string();

    let mut forged = mine.clone();
    forged["user"] = "mallory".into();
    forged["version"] = "6.6.6-1".into();
    let mut elsewhere = mine.clone();
    elsewhere["id"] = "forged-prod-1".into();
    elsewhere["stage"] = "prod".into();
    elsewhere["time"] = "2026-01-01T00:00:00Z".into();
    let lines = format!("{forged}\n{elsewhere}\n");
    let out = tb.exec(
        "test-1",
        &format!(
            "printf '%s' '{}' >> /var/log/deployer/history.jsonl",
            lines.replace('\'', "'\\''")
        ),
    );
    assert!(out.status.success(), "{out:?}");

    let (code, out, err) = deployer(&tb, &["history", "--hosts", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    // the local record, marked as such, with the disagreement
    assert!(!out.contains("mallory"), "{out}");
    let blocks: Vec<&str> = out.split("\n2026").collect();
    let local = blocks
        .iter()
        .find(|b| b.contains(&format!("fastpath {NEW} -> test  success")))
        .unwrap_or_else(|| panic!("no local record in {out}"));
    assert!(local.contains("from: local history"), "{out}");
    assert!(
        local.contains(&format!(
            "WARNING: host `test-1` holds a different record with the id `{id}`"
        )),
        "{out}"
    );
    let claim = blocks
        .iter()
        .find(|b| b.contains(&format!("fastpath {NEW} -> prod")))
        .unwrap_or_else(|| panic!("no forged prod record in {out}"));
    assert!(claim.contains("from: host `test-1`"), "{out}");
    assert!(
        claim.contains("WARNING: host `test-1` is in stage `test`, but its history holds a record (id `forged-prod-1`) of `deploy` on stage `prod`"),
        "{out}"
    );
    assert!(
        err.contains(&format!("holds a different record with the id `{id}`"))
            && err.contains("id `forged-prod-1`"),
        "{err}"
    );

    let (code, out, err) = deployer(&tb, &["history", "--hosts", "test", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{out}");
    let local = listed.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(local["source"], "local");
    assert_eq!(local["version"], NEW);
    assert_eq!(local["user"], mine["user"]);
    assert_eq!(local["disagreements"].as_array().unwrap().len(), 1);
    let claim = listed.iter().find(|r| r["id"] == "forged-prod-1").unwrap();
    assert_eq!(claim["source"], "host");
    assert_eq!(claim["source_host"], "test-1");
    assert_eq!(claim["disagreements"].as_array().unwrap().len(), 1);
}
