//! End-to-end tests of issue 24 ("secrets and trust boundaries"), each on
//! the testbed's real hosts where hosts are involved: the attack or the
//! leak is reproduced, then every place it could reach is searched.
//! Tests are named `sec_itemN_...` after the items.

use crate::common;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cli::{deployer, two_stages, webhook_server, NEW, OLD};
use common::testbed::{Publish, Testbed};
use serde_json::Value;

/// The secret that a configured command carries (a token in its text).
const TOKEN: &str = "tok-5ecr3t-9f2c";
/// A line only the service's (root-only) log holds.
const JOURNAL: &str = "service said JOURNAL-7731";
/// A version newer than [`NEW`], published by the tests that need one.
const NEWER: &str = "0.82~pr760-200";

/// A syslog listening inside `host`: a datagram socket bound at the
/// host's `/dev/log` (the testbed hosts run no syslog daemon), so that
/// `logger` and sudo on the host deliver here; a thread reads every
/// message at once (a full socket would block the host's senders).
fn syslog_of(tb: &Testbed, host: &str) -> Arc<Mutex<String>> {
    let path = format!("/proc/{}/root/dev/log", tb.host(host).init_pid);
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).expect("bind the host's /dev/log");
    let got = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            let mut all = kept.lock().unwrap();
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            all.push('\n');
        }
    });
    got
}

/// Item 1: a failing health check whose text holds a token, on a service
/// whose log holds a line of its own. The token is nowhere: not in the
/// output, the `-v` log, the local history, the history on the hosts,
/// their syslog, nor what `notify_command` gets; the dry run names the
/// check without showing it. The service's log line reaches the
/// operator's output, never the history that every user of a host reads.
#[test]
fn sec_item1_a_failing_health_check_and_the_service_log_stay_secret() {
    let dir = tempfile::tempdir().unwrap();
    let notified = dir.path().join("notified.jsonl");
    let sections = format!(
        "[package:fastpath]\n\
         health_check = test \"$(echo {TOKEN})\" = nope\n\
         logs_command = echo '{JOURNAL}'; : {TOKEN}\n\
         [notify]\n\
         notify_command = cat >> {}\n",
        notified.display()
    );
    let Some(tb) = two_stages(2, "", &sections) else {
        return;
    };
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
        // a dry run reads the lists as they are
        assert!(tb.exec(h, "apt-get update -q").status.success());
    }
    let logs: Vec<(&str, Arc<Mutex<String>>)> = ["test-1", "test-2"]
        .into_iter()
        .map(|h| (h, syslog_of(&tb, h)))
        .collect();

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("`health_check` of `[package:fastpath]` (from the configuration, not shown)"),
        "{out}"
    );
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "{out}{err}");
    let (code, out, err) = deployer(
        &tb,
        &["deploy", "fastpath", "test", NEW, "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(TOKEN) && !err.contains(TOKEN), "{out}{err}");

    let (code, out, err) = deployer(&tb, &["-v", "deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 8, "{out}{err}");
    // the failure is named, and the operator sees the service's log
    assert!(
        out.contains("test-1: FAILED: the health check of `fastpath` failed (exit status 1)"),
        "{out}"
    );
    assert!(out.contains(JOURNAL), "the operator's output has it: {out}");
    assert!(
        err.contains("[health check from the configuration, not shown]"),
        "-v names the check: {err}"
    );
    assert!(!out.contains(TOKEN), "output: {out}");
    assert!(!err.contains(TOKEN), "-v log: {err}");

    let local = std::fs::read_to_string(tb.dir().join("deployer-history.jsonl")).unwrap();
    assert!(
        local.contains("the health check of `fastpath` failed"),
        "{local}"
    );
    assert!(!local.contains(TOKEN), "local history: {local}");
    // the operator's own history keeps the failed host's log lines
    assert!(local.contains("JOURNAL-7731"), "{local}");

    let told = std::fs::read_to_string(&notified).expect("notify_command ran");
    assert!(
        told.contains("the health check of `fastpath` failed"),
        "{told}"
    );
    assert!(!told.contains(TOKEN), "notify_command's input: {told}");

    for (host, log) in &logs {
        let kept = tb
            .read_file(host, "/var/log/deployer/history.jsonl")
            .unwrap_or_else(|| panic!("{host} keeps a history"));
        assert!(
            kept.contains("the health check of `fastpath` failed"),
            "{host}: {kept}"
        );
        assert!(!kept.contains(TOKEN), "{host}'s history: {kept}");
        assert!(!kept.contains("JOURNAL-7731"), "{host}'s history: {kept}");
        let said = log.lock().unwrap().clone();
        if *host == "test-1" {
            assert!(said.contains("deployer"), "{host}'s syslog got nothing");
        }
        assert!(!said.contains(TOKEN), "{host}'s syslog: {said}");
    }
}

/// Build `fastpath` at `version` here, with a changelog naming `entry` and
/// a file of `big` zero bytes (which compresses to almost nothing); the
/// .deb's path.
fn big_package(dir: &std::path::Path, version: &str, entry: &str, big: u64) -> PathBuf {
    let root = dir.join("pkg");
    let doc = root.join("usr/share/doc/fastpath");
    std::fs::create_dir_all(&doc).unwrap();
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/fastpath")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: fastpath\nVersion: {version}\nArchitecture: all\n\
             Maintainer: t <t@example.invalid>\nDescription: a big one\n"
        ),
    )
    .unwrap();
    let changelog = format!(
        "fastpath ({version}) unstable; urgency=medium\n\n  * {entry}\n\n \
         -- t <t@example.invalid>  Mon, 07 Dec 2026 00:00:00 +0000\n"
    );
    let mut gz = Command::new("gzip")
        .args(["-9n"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(doc.join("changelog.Debian.gz")).unwrap())
        .spawn()
        .unwrap();
    gz.stdin
        .take()
        .unwrap()
        .write_all(changelog.as_bytes())
        .unwrap();
    assert!(gz.wait().unwrap().success());
    let file = std::fs::File::create(root.join("usr/share/fastpath/big")).unwrap();
    file.set_len(big).unwrap();
    let deb = dir.join(format!("fastpath_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["-Zgzip", "-z1", "--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    deb
}

/// Item 5: the changelog review takes only the changelog out of the
/// package, through pipes. The package holds a 64 MiB file and the host's
/// `/tmp` is a 2 MiB tmpfs: unpacking the package there (as before) fails,
/// streaming reads the changelog, and `/tmp` is left empty.
#[test]
fn sec_item5_the_changelog_review_unpacks_nothing_on_the_host() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    assert!(tb.exec("test-1", "apt-get update -q").status.success());
    let dir = tempfile::tempdir().unwrap();
    let entry = "Streamed out of a package with a big file.";
    let deb = big_package(dir.path(), NEW, entry, 64 << 20);
    assert!(std::fs::metadata(&deb).unwrap().len() < 1 << 20);
    let root = format!("/proc/{}/root", tb.host("test-1").init_pid);
    // the package apt would download, already in the host's cache
    std::fs::copy(
        &deb,
        format!("{root}/var/cache/apt/archives/fastpath_{NEW}_all.deb"),
    )
    .unwrap();
    let mount = tb.exec(
        "test-1",
        "mount -t tmpfs -o size=2m,mode=1777 sec-small-tmp /tmp",
    );
    assert!(mount.status.success(), "{mount:?}");

    let (code, out, err) = deployer(&tb, &["changes", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(entry), "the changelog was read: {out}{err}");
    let left: Vec<_> = std::fs::read_dir(format!("{root}/tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the host's /tmp: {left:?}");
}

/// Item 5: under `-v`, a host that prints a line that never ends (an apt
/// hook printing 20 MB without a newline) does not make deployer hold,
/// nor print, more than its bound of that line.
#[test]
fn sec_item5_a_line_that_never_ends_is_kept_bounded_under_v() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let hook = tb.exec(
        "test-1",
        "cat > /etc/apt/apt.conf.d/99endless <<'X'\nDPkg::Pre-Invoke { \"yes xxxxxxxx | tr -d '[:space:]' | head -c 20000000\"; };\nX",
    );
    assert!(hook.status.success(), "{hook:?}");
    let (code, out, err) = deployer(&tb, &["-v", "deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{}{err}", &out[..out.len().min(20_000)]);
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let longest = out.lines().max_by_key(|l| l.len()).unwrap_or_default();
    assert!(
        longest.len() <= deployer::lines::LINE_KEPT + 200,
        "a line of {} bytes was printed: {}…",
        longest.len(),
        &longest[..300]
    );
    let cut = out
        .lines()
        .find(|l| l.starts_with("test-1 | xxxx"))
        .expect("the long line, cut");
    assert!(cut.contains(" more bytes)"), "{}", &cut[cut.len() - 100..]);
}

/// Item 6: an `http://` webhook would carry its token in clear: the
/// configuration is refused (the URL shown as scheme and host only), and
/// nothing is deployed nor announced, until `webhook_allow_http = yes`.
#[test]
fn sec_item6_an_http_webhook_is_refused_unless_allowed() {
    let (url, posts) = webhook_server(200);
    let url = format!("{url}/{TOKEN}");
    let Some(tb) = two_stages(1, "", &format!("[notify]\nwebhook_url = {url}\n")) else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("`webhook_url` in `[notify]` is a plain `http://` URL (http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("webhook_allow_http = yes"), "{err}");
    assert!(!err.contains(TOKEN) && !out.contains(TOKEN), "{out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(OLD));
    assert!(posts.try_recv().is_err(), "nothing was announced");

    tb.write_config(
        &["fastpath"],
        "",
        &format!("[notify]\nwebhook_url = {url}\nwebhook_allow_http = yes\n"),
    );
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let (line, _) = posts.recv_timeout(Duration::from_secs(30)).expect("a POST");
    assert!(line.starts_with(&format!("POST /hook/{TOKEN} ")), "{line}");
}

/// Item 6: Slack-format text escapes `&`, `<` and `>`: a changelog line
/// cannot ping the channel nor disguise a link.
#[test]
fn sec_item6_slack_text_cannot_ping_the_channel() {
    let (url, posts) = webhook_server(200);
    let sections = format!(
        "[notify]\nwebhook_url = {url}\nwebhook_allow_http = yes\nwebhook_format = slack\n\
         notify_on = success\n"
    );
    let Some(tb) = two_stages(1, "", &sections) else {
        return;
    };
    let changelog = format!(
        "fastpath ({NEWER}) unstable; urgency=medium\n\n  \
         * <!channel> urgent: see <https://evil.example/|the runbook> & act\n\n \
         -- t <t@example.invalid>  Mon, 07 Dec 2026 00:00:00 +0000\n"
    );
    tb.publish_with(
        "fastpath",
        NEWER,
        &Publish {
            changelog: Some(&changelog),
            ..Publish::default()
        },
    );
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, body) = posts.recv_timeout(Duration::from_secs(30)).expect("a POST");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains(
            "&lt;!channel&gt; urgent: see &lt;https://evil.example/|the runbook&gt; &amp; act"
        ),
        "{text}"
    );
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
}

/// Item 1: a mistyped `webhook_url` is shown as scheme and host only in
/// the configuration error, never with its path (where the token is).
#[test]
fn sec_item1_a_mistyped_webhook_url_is_shown_without_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deployer.ini");
    std::fs::write(
        &config,
        format!(
            "[environment]\ndeb_packages = fastpath\nstages = test\n[stage:test]\nhosts = local\n\
             [notify]\nwebhook_url = https://hooks.example.org/services/{TOKEN} oops\n"
        ),
    )
    .unwrap();
    let (code, out, err) = common::bin::run(
        common::bin::deployer(dir.path(), dir.path())
            .arg("--config")
            .arg(&config)
            .arg("status"),
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains(
            "`webhook_url` in `[notify]` has an invalid value `https://hooks.example.org/…`"
        ),
        "{err}"
    );
    assert!(!err.contains(TOKEN) && !out.contains(TOKEN), "{out}{err}");
}

/// Item 5: a changelog review that runs past its time is ended on the
/// host, and its temporary directory goes with it. The host's `gzip`
/// hangs (a stand-in in `/usr/local/bin`, first in ssh's `PATH`), so the
/// review times out after `deploy_timeout`; `/tmp` then holds nothing new
/// and nothing is left running.
#[test]
fn sec_item5_a_timed_out_changelog_review_leaves_nothing_behind() {
    let Some(tb) = two_stages(1, "deploy_timeout = 3s", "") else {
        return;
    };
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    assert!(tb.exec("test-1", "apt-get update -q").status.success());
    let root = format!("/proc/{}/root", tb.host("test-1").init_pid);
    let hang = format!("{root}/usr/local/bin/gzip");
    std::fs::write(&hang, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&hang, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let listing = || -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = std::fs::read_dir(format!("{root}/tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();

    let (code, out, err) = deployer(&tb, &["changes", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "a review without its changelog: {out}{err}");
    assert!(
        out.contains("timed out after 3s while running `changelog`"),
        "{out}{err}"
    );
    // the host ends the review's process group before deployer returns
    assert_eq!(listing(), before, "left in the host's /tmp");
    let running: Vec<String> = tb
        .processes("test-1")
        .into_iter()
        .filter(|p| p.contains("sleep 600") || p.contains("deployer-changelog"))
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");
}

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

/// Issue 24 item 1 (run directories): a run's log (apt's and the
/// maintainer scripts' full output) is `0640 root:adm` in a `0750
/// root:adm` directory, as apt keeps the same text, so the deploy user
/// cannot read it without sudo; the runs are pruned to the last
/// `detach::RUNS_KEPT`, finished runs only.
#[test]
fn sec_item1_run_logs_are_root_and_adm_only_and_pruned() {
    let Some(tb) = two_stages(1, "", "") else {
        return;
    };
    let kept = deployer::detach::RUNS_KEPT;
    tb.set_versions("test-1", &[("fastpath", Some(OLD))]);
    // earlier runs, finished, and one that never ended (died with its host)
    let extra = 4;
    let made = tb.exec(
        "test-1",
        &format!(
            "set -e; install -d -m 0750 -g adm /var/lib/deployer/runs; cd /var/lib/deployer/runs
             for i in $(seq 10 {}); do d=20200101T0000${{i}}Z-1-00-install; mkdir $d; echo 0 > $d/status; done
             mkdir 20190101T000000Z-1-00-install",
            9 + kept + extra
        ),
    );
    assert!(made.status.success(), "{made:?}");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 0, "{out}{err}");
    let listing = tb.exec("test-1", "ls -1 /var/lib/deployer/runs");
    let runs: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(runs.len(), kept + 1, "{runs:?}");
    assert!(
        runs.contains(&"20190101T000000Z-1-00-install".to_string()),
        "an unfinished run is kept: {runs:?}"
    );
    assert!(
        !runs.contains(&"20200101T000010Z-1-00-install".to_string()),
        "the oldest finished run is gone: {runs:?}"
    );
    let run = runs
        .iter()
        .find(|r| {
            r.ends_with("-install") && !r.starts_with("20190101") && !r.starts_with("20200101")
        })
        .unwrap_or_else(|| panic!("the deploy's run: {runs:?}"));
    let stat = tb.exec(
        "test-1",
        &format!(
            "cd /var/lib/deployer/runs && stat -c '%a %U:%G %n' . {run} {run}/log {run}/status"
        ),
    );
    assert_eq!(
        String::from_utf8_lossy(&stat.stdout),
        format!("750 root:adm .\n750 root:adm {run}\n640 root:adm {run}/log\n640 root:adm {run}/status\n"),
        "{stat:?}"
    );
    let log = tb
        .read_file("test-1", &format!("/var/lib/deployer/runs/{run}/log"))
        .unwrap();
    assert!(log.contains("Setting up fastpath"), "{log}");
    let peek = tb.ssh(
        "test-1",
        "deployer",
        &format!("cat /var/lib/deployer/runs/{run}/log"),
    );
    assert!(
        !peek.status.success(),
        "the deploy user reads the log without sudo: {peek:?}"
    );

    // a second deploy: still the last `kept`, plus the unfinished one
    tb.publish("fastpath", NEWER);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEWER]);
    assert_eq!(code, 0, "{out}{err}");
    let listing = tb.exec("test-1", "ls -1 /var/lib/deployer/runs");
    let after = String::from_utf8_lossy(&listing.stdout).lines().count();
    assert_eq!(after, kept + 1, "{listing:?}");
}
