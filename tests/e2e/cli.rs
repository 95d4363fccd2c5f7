//! The binary on this machine, without the testbed: the main job on a
//! `local` stage, configuration errors, and hostile input rejected before
//! any host is contacted.

use crate::common::bin::{self, run as output};
use crate::common::skip::skip;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// `deployer` with `dir` as its working directory and home.
fn deployer(dir: &Path) -> Command {
    bin::deployer(dir, dir)
}

/// A configuration file only its owner can write, whatever the umask:
/// deployer refuses any other.
fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// The README's first command: the status of the example's `local` stages.
#[test]
fn example_config_shows_local_versions() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = output(
        deployer(dir.path())
            .arg("--config")
            .arg(&example)
            .arg("--color=never"),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let real = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "dpkg"])
        .output()
        .unwrap();
    let dpkg_version = String::from_utf8_lossy(&real.stdout).to_string();
    let row = stdout
        .lines()
        .find(|l| l.starts_with("dpkg "))
        .expect("a dpkg row");
    assert_eq!(row.matches(dpkg_version.as_str()).count(), 2, "{stdout}");
    assert!(
        stdout.lines().next().unwrap().starts_with("Package"),
        "{stdout}"
    );
}

#[test]
fn missing_config_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    std::fs::create_dir_all(&nested).unwrap();
    let (code, _, stderr) = output(&mut deployer(&nested));
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: no `deployer.ini` or `.deployer.ini` found"),
        "{stderr}"
    );
    assert!(stderr.contains("note:"), "{stderr}");
}

#[test]
fn config_error_names_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        &dir.path().join("deployer.ini"),
        "[environment]\ndeb_packages = fastpath\nstages = test prdo\n[stage:test]\nhosts = local\n[stage:prod]\nhosts = local\n",
    );
    let (code, _, stderr) = output(&mut deployer(dir.path()));
    assert_eq!(code, 2);
    assert!(stderr.contains("deployer.ini` line 3"), "{stderr}");
    assert!(stderr.contains("`prdo`"), "{stderr}");
    assert!(stderr.contains("note:"), "{stderr}");
}

/// A listener standing in for a host: if deployer connected, we would see it.
fn config_with_listener(dir: &Path) -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    write_config(
        &dir.join("deployer.ini"),
        &format!(
            "[environment]\ndeb_packages = fastpath\nstages = test prod\n[stage:test]\nhosts = 127.0.0.1:{port}\n[stage:prod]\nhosts = local\n"
        ),
    );
    listener
}

#[test]
fn injection_through_package_stage_or_version_is_rejected_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let listener = config_with_listener(dir.path());
    let attempts: [&[&str]; 7] = [
        &["deploy", "fastpath;id", "test"],
        &["deploy", "$(touch /tmp/pwned)", "test"],
        &["deploy", "fastpath", "test;id"],
        &["deploy", "fastpath", "test", "1.0;id"],
        &["deploy", "fastpath", "test", "1.0 -o APT::x=1"],
        &["deploy", "fastpath", "test", "$(id)"],
        &["promote", "fastpath", "`id`"],
    ];
    for args in attempts {
        let (code, stdout, stderr) = output(deployer(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stdout.is_empty(),
            "{args:?} printed a matrix, so it connected: {stdout}"
        );
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{args:?} reached the host: {other:?}"),
        }
    }
    // every attempt is on record, refused, with the text as typed
    let history = std::fs::read_to_string(dir.path().join("deployer-history.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), attempts.len());
    assert!(records
        .iter()
        .all(|r| r["outcome"] == "refused" && r["hosts"] == serde_json::json!([])));
    assert_eq!(records[1]["package"], "$(touch /tmp/pwned)");
    assert!(!Path::new("/tmp/pwned").exists());
}

#[test]
fn unknown_package_and_stage_list_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let _listener = config_with_listener(dir.path());
    let (code, _, stderr) = output(deployer(dir.path()).args(["deploy", "fastpth"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`fastpth` is not one of `deb_packages`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: packages in `deb_packages`: fastpath"),
        "{stderr}"
    );
    let (code, _, stderr) = output(deployer(dir.path()).args(["deploy", "fastpath", "prdo"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("stage `prdo` is not in `stages` (test, prod)"),
        "{stderr}"
    );
}

#[test]
fn force_needs_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let _listener = config_with_listener(dir.path());
    let (code, _, stderr) =
        output(deployer(dir.path()).args(["deploy", "fastpath", "test", "--force"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--reason"), "{stderr}");
}

#[test]
fn closed_pipe_exits_quietly() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    let mut child = deployer(dir.path())
        .arg("--config")
        .arg(&example)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no panic, no error on a closed pipe"
    );
}

/// Clap used to fold `DEPLOYER_CONFIG` into `--config`, so a wrong value was
/// blamed on a flag nobody typed.
#[test]
fn a_wrong_deployer_config_is_blamed_on_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = output(deployer(dir.path()).env("DEPLOYER_CONFIG", "gone.ini"));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: `{}`: configuration file not found (given by `DEPLOYER_CONFIG`)",
            dir.path().join("gone.ini").display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("note: fix `DEPLOYER_CONFIG`"), "{stderr}");
    // `--config` still wins over the variable.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let (code, _, stderr) = output(
        deployer(dir.path())
            .env("DEPLOYER_CONFIG", "gone.ini")
            .arg("--config")
            .arg(&example),
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_config_others_can_write_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deployer.ini");
    let marker = dir.path().join("ran");
    write_config(
        &config,
        &format!(
            "[environment]\ndeb_packages = dpkg\nstages = test\n[stage:test]\nhosts = local\n[package:dpkg]\nhealth_check = touch {}\n",
            marker.display()
        ),
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o664)).unwrap();
    for args in [&[][..], &["deploy", "dpkg", "--dry-run"], &["history"]] {
        let (code, stdout, stderr) = output(deployer(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.starts_with(&format!(
                "error: `{}`: refusing to use this configuration, owned by ",
                config.display()
            )),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("with mode 0664: its group can write to it"),
            "{stderr}"
        );
        assert!(stderr.contains("\nnote: "), "{stderr}");
    }
    assert!(!marker.exists());
}

fn write_history(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join("deployer-history.jsonl"), lines.join("\n") + "\n").unwrap();
}

fn history_line(id: &str, outcome: &str) -> String {
    format!(
        r#"{{"id":"{id}","time":"2026-11-21T07:30:05Z","user":"alice","as_user":"root","machine":"laptop","action":"deploy","package":"dpkg","stage":"test","version":"1.0","outcome":"{outcome}","hosts":[]}}"#
    )
}

#[test]
fn history_skips_a_torn_line_with_a_warning_and_merges_attempts() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        &dir.path().join("deployer.ini"),
        "[environment]\ndeb_packages = dpkg\nstages = test\n[stage:test]\nhosts = local\n",
    );
    write_history(
        dir.path(),
        &[
            history_line("a", "started"),
            r#"{"id":"b","time":"2026-"#.to_string(),
            history_line("a", "success"),
            history_line("c", "started"),
        ],
    );
    let (code, stdout, stderr) = output(deployer(dir.path()).arg("history"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>().len(),
        1,
        "one warning: {stderr}"
    );
    assert!(
        stderr.starts_with(&format!(
            "warning: `{}` line 2: skipped, not a history record: ",
            dir.path().join("deployer-history.jsonl").display()
        )),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0]
            .contains("started, no end recorded (killed, or still running)  alice@laptop (sudo)"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("dpkg 1.0 -> test  success  alice@laptop (sudo)"),
        "{stdout}"
    );
}

#[test]
fn history_hosts_merges_the_logs_of_a_stage() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        &dir.path().join("deployer.ini"),
        "[environment]\ndeb_packages = dpkg\nstages = test\n[stage:test]\nhosts = local\n",
    );
    write_history(dir.path(), &[history_line("a", "success")]);
    // `local` reads this machine's /var/log/deployer, which may or may not
    // exist: the local record is listed either way, exactly once.
    let (code, stdout, stderr) =
        output(deployer(dir.path()).args(["history", "--hosts", "test", "--json"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        records.iter().filter(|r| r["id"] == "a").count(),
        1,
        "{stdout}"
    );
    let (code, _, stderr) = output(deployer(dir.path()).args(["history", "--hosts", "prdo"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`prdo`"), "{stderr}");
}

/// `refresh_badges` on the example's `local` stages: the badges written
/// into `badges_path` on "the host" (this machine), the local `--output`
/// tree, and nothing to write at all refused before anything is read.
#[test]
fn refresh_badges_on_local_stages() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = output(
        deployer(dir.path())
            .arg("--config")
            .arg(&example)
            .arg("refresh_badges"),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("nowhere to write badges"), "{err}");
    assert!(err.contains("deployer.ini.example"), "{err}");

    let site = dir.path().join("site");
    let (code, out, err) = output(
        deployer(dir.path())
            .arg("--config")
            .arg(&example)
            .args(["refresh-badges", "--no-host-badges", "--output"])
            .arg(&site),
    );
    assert_eq!(code, 0, "{out}{err}");
    let real = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "dpkg"])
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&real.stdout).to_string();
    let badge = std::fs::read_to_string(site.join("test/dpkg.svg")).unwrap();
    assert!(
        badge.contains(&format!("aria-label=\"dpkg: {version}\"")),
        "{badge}"
    );
    assert!(site.join("host/local/bash.svg").is_file());
    // under cron's umask too, what a web server reads is readable
    let strict = dir.path().join("strict");
    let (code, out, err) = output(
        bin::scrubbed("sh")
            .arg("-c")
            .arg("umask 077; exec \"$0\" \"$@\"")
            .arg(bin::BIN)
            .arg("--config")
            .arg(&example)
            .args(["refresh-badges", "--no-host-badges", "--output"])
            .arg(strict.join("site"))
            .current_dir(dir.path())
            .env("HOME", dir.path()),
    );
    assert_eq!(code, 0, "{out}{err}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for d in ["", "site", "site/test", "site/host", "site/host/local"] {
        assert_eq!(mode(&strict.join(d)), 0o755, "{d}");
    }
    for f in [
        "site/index.html",
        "site/test/dpkg.svg",
        "site/host/local/apt.svg",
    ] {
        assert_eq!(mode(&strict.join(f)), 0o644, "{f}");
    }
    let page = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(page.contains(&version));

    // badges_path on `local` hosts: written on this machine, with sudo -n
    // (a no-op as root); skipped unless root, as sudo may ask for a password
    if !rustix::process::geteuid().is_root() {
        skip("badges_path on a local host needs root (sudo -n)");
        return;
    }
    let with_badges = |badges: &Path| {
        let text = std::fs::read_to_string(&example).unwrap().replacen(
            "\n[environment]\n",
            &format!("\n[environment]\nbadges_path = {}\n", badges.display()),
            1,
        );
        write_config(&dir.path().join("deployer.ini"), &text);
    };
    // under the world-writable /tmp, root refuses to write (issue 17 item 4)
    let unsafe_badges = dir.path().join("www/badges");
    with_badges(&unsafe_badges);
    let (code, out, err) = output(deployer(dir.path()).args(["refresh_badges", "--quiet"]));
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("refusing to write the badges in")
            && err.contains("can be written by users other than root"),
        "{err}"
    );
    assert!(!unsafe_badges.exists(), "nothing created: {err}");
    // in a directory only root can write: written
    let safe = tempfile::Builder::new()
        .prefix("deployer-cli-badges.")
        .tempdir_in("/var/lib")
        .unwrap();
    let badges = safe.path().join("www/badges");
    with_badges(&badges);
    let (code, out, err) = output(deployer(dir.path()).args(["refresh_badges", "--quiet"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "");
    let badge = std::fs::read_to_string(badges.join("dpkg.svg")).unwrap();
    assert!(badge.contains(&format!("dpkg: {version}")), "{badge}");
    let mode = std::fs::metadata(badges.join("dpkg.svg"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

/// Colour follows `--color`, then NO_COLOR, CLICOLOR_FORCE and CLICOLOR
/// (output piped here, so `auto` alone means no colour); warnings on
/// stderr are coloured like errors.
#[test]
fn colour_follows_the_usual_environment_variables() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&example).unwrap().replacen(
        "\n[environment]\n",
        "\n[environment]\nbadge_path = /x\n",
        1,
    );
    let config = dir.path().join("deployer.ini");
    write_config(&config, &text);
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = deployer(dir.path());
        cmd.env("TERM", "xterm");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (code, out, err) = output(cmd.args(args));
        assert_eq!(code, 0, "{out}{err}");
        (out.contains('\x1b'), err.contains('\x1b'), err)
    };
    assert!(!run(&[], &[]).0, "piped: no colour");
    assert!(run(&[("CLICOLOR_FORCE", "1")], &[]).0);
    assert!(!run(&[("CLICOLOR", "0")], &[]).0);
    assert!(!run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &[]).0);
    assert!(run(&[("NO_COLOR", "1")], &["--color=always"]).0);
    assert!(!run(&[("CLICOLOR_FORCE", "1")], &["--color=never"]).0);
    // the unknown key's warning: plain, then coloured like an error
    let (_, coloured, err) = run(&[], &[]);
    assert!(!coloured && err.starts_with("warning: "), "{err}");
    let (_, coloured, err) = run(&[], &["--color=always"]);
    assert!(coloured && err.contains("warning\x1b[0m: "), "{err:?}");
}

/// A mistyped stage or package gets a `did you mean` note wherever the
/// command line names one, and nothing is contacted.
#[test]
fn mistyped_stage_and_package_names_suggest_the_close_one() {
    let dir = tempfile::tempdir().unwrap();
    let listener = config_with_listener(dir.path());
    let cases: [(&[&str], &str); 12] = [
        (&["deploy", "fastpth"], "fastpath"),
        (&["deploy", "fastpath", "prdo"], "prod"),
        (&["promote", "fastpath", "PROD"], "prod"),
        (&["freeze", "tset", "--reason", "x"], "test"),
        (&["unfreeze", "prdo"], "prod"),
        (&["unlock", "prdo", "--force", "--reason", "x"], "prod"),
        (&["hosts", "tesst"], "test"),
        (&["deploy", "FastPath"], "fastpath"),
        (&["versions", "fastpth"], "fastpath"),
        (&["versions", "fastpath", "prdo"], "prod"),
        (&["changes", "fastpth"], "fastpath"),
        (&["changes", "fastpath", "prdo", "1.0"], "prod"),
    ];
    for (args, guess) in cases {
        let (code, stdout, stderr) = output(deployer(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains(&format!("\nnote: did you mean `{guess}`?\n")),
            "{args:?}: {stderr}"
        );
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{args:?} reached the host: {other:?}"),
        }
    }
    // nothing close: no guess, the list of names still
    let (code, _, stderr) = output(deployer(dir.path()).args(["deploy", "fastpath", "staging"]));
    assert_eq!(code, 2);
    assert!(!stderr.contains("did you mean"), "{stderr}");
    assert!(stderr.contains("(test, prod)"), "{stderr}");
    // history of a stage no longer configured is still shown, with a warning
    let (code, stdout, stderr) = output(deployer(dir.path()).args(["history", "--stage", "prdo"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.starts_with("warning: stage `prdo` is not in `stages` (test, prod); showing its records anyway\nnote: did you mean `prod`?\n"),
        "{stderr}"
    );
}

/// `status --stage/--package/--host` contact only the hosts they keep,
/// and the matrix shows only what they select.
#[test]
fn status_filters_contact_only_the_hosts_they_keep() {
    let dir = tempfile::tempdir().unwrap();
    let listener = config_with_listener(dir.path());
    let untouched = |what: &str| match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("{what} reached the test host: {other:?}"),
    };
    for args in [
        &["status", "--stage", "prod", "--json"][..],
        &["--stage", "prod", "--json"][..],
        &["status", "--host", "local", "--json"][..],
    ] {
        let (code, stdout, stderr) = output(deployer(dir.path()).args(args));
        assert_eq!(code, 0, "{args:?}: {stdout}{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let stages: Vec<&str> = v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(stages, ["prod"], "{args:?}: {stdout}");
        untouched(&format!("{args:?}"));
    }
    // a package filter: only that row (the one package here, by name)
    let (code, stdout, stderr) = output(deployer(dir.path()).args([
        "status",
        "--stage",
        "prod",
        "--package",
        "fastpath",
        "--color=never",
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.lines().any(|l| l.starts_with("fastpath ")),
        "{stdout}"
    );
    assert!(!stdout.contains("test"), "{stdout}");
    untouched("--package");
    // mistyped names are refused before anything is contacted
    for (args, guess) in [
        (&["status", "--stage", "prdo"][..], "prod"),
        (&["status", "--package", "fastpth"][..], "fastpath"),
        (&["status", "--host", "locl"][..], "local"),
    ] {
        let (code, _, stderr) = output(deployer(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("note: did you mean `{guess}`?")),
            "{args:?}: {stderr}"
        );
        untouched(&format!("{args:?}"));
    }
    // filters before another command are refused
    let (code, _, stderr) = output(deployer(dir.path()).args(["--stage", "prod", "history"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("go with the status view"), "{stderr}");
}

/// `--json` before or after the command that prints JSON; refused before
/// one that does not.
#[test]
fn json_goes_before_or_after_the_command() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        output(
            deployer(dir.path())
                .arg("--config")
                .arg(&example)
                .args(args),
        )
    };
    for args in [
        &["--json", "status"][..],
        &["status", "--json"],
        &["--json", "hosts"],
        &["hosts", "--json"],
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        assert!(v.is_object() || v.is_array(), "{args:?}");
    }
    for args in [
        &["--json", "refresh-badges", "--output", "site"][..],
        &["--json", "man"],
        &["--json", "completions", "bash"],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("with a command that prints JSON"), "{err}");
    }
}

/// `-q`: nothing when all is well, in either position.
#[test]
fn quiet_prints_nothing_when_all_is_well() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    for args in [&["-q"][..], &["status", "--quiet"], &["--quiet", "hosts"]] {
        let (code, out, err) = output(
            deployer(dir.path())
                .arg("--config")
                .arg(&example)
                .args(args),
        );
        assert_eq!(code, 0, "{args:?}: {err}");
        if args.contains(&"hosts") {
            // a listing asked for is not a progress report
            assert!(!out.is_empty(), "{args:?}");
        } else {
            assert_eq!((out.as_str(), err.as_str()), ("", ""), "{args:?}");
        }
    }
}

/// `-v` logs every command run on each host on stderr, `-vv` also
/// connections and exit statuses; without it, nothing.
#[test]
fn verbose_logs_the_commands_run_on_each_host() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let (code, out, err) = output(
            deployer(dir.path())
                .arg("--config")
                .arg(&example)
                .args(extra),
        );
        assert_eq!(code, 0, "{out}{err}");
        (out, err)
    };
    let (_, err) = run(&[]);
    assert_eq!(err, "");
    let (out, err) = run(&["-v"]);
    assert!(out.contains("Package"), "the view is unchanged: {out}");
    assert!(
        err.contains("host=local") && err.contains("command=dpkg-query -W"),
        "{err}"
    );
    assert!(!err.contains("status=0"), "{err}");
    let (_, err) = run(&["status", "-vv"]);
    assert!(
        err.contains("connected") && err.contains("status=0"),
        "{err}"
    );
}

/// On a real terminal (a pseudo-terminal from util-linux's `script`),
/// colour is on, unless `TERM=dumb` or `NO_COLOR`.
#[test]
fn a_dumb_terminal_gets_no_colour() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    let shown = |term: &str, no_color: Option<&str>| {
        let mut cmd = bin::scrubbed("script");
        cmd.args(["-q", "-e", "-c"])
            .arg(format!("{} --config {}", bin::BIN, example.display()))
            .arg("/dev/null")
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("TERM", term);
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let (code, out, err) = output(&mut cmd);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("Package"), "{out}");
        // the bold header of the view; the terminal's own codes aside
        out.contains("\x1b[1mPackage")
    };
    assert!(shown("xterm", None), "a terminal gets colour");
    assert!(!shown("dumb", None), "TERM=dumb");
    assert!(!shown("xterm", Some("1")), "NO_COLOR");
}

/// `changes` checks its version before contacting a host, like `deploy`.
#[test]
fn changes_refuses_an_invalid_version_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let listener = config_with_listener(dir.path());
    let (code, stdout, stderr) =
        output(deployer(dir.path()).args(["changes", "fastpath", "prod", "not a version"]));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("note: a Debian version is"), "{stderr}");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host was reached: {other:?}"),
    }
}

/// `--version` as cargo's: `deployer 0.1.0 (96ddee9 2026-12-07)`, the
/// commit built and its date, when built from a git checkout (as this
/// test's binary is, when git is here to say so); the version alone
/// otherwise.
#[test]
fn version_names_the_commit_and_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = output(deployer(dir.path()).arg("--version"));
    assert_eq!(code, 0, "{err}");
    let head = Command::new("git")
        .args([
            "log",
            "-1",
            "--date=format-local:%Y-%m-%d",
            "--format=%h %cd",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TZ", "UTC")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let version = format!("deployer {}", env!("CARGO_PKG_VERSION"));
    match head {
        Some(head) => assert_eq!(out, format!("{version} ({head})\n")),
        None => assert_eq!(out, format!("{version}\n")),
    }
}

/// `-q` and `-v` say opposite things: refused together, in any position,
/// before anything runs (as cargo refuses them).
#[test]
fn quiet_and_verbose_together_are_refused() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deployer.ini.example");
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["-q", "-v"][..],
        &["--verbose", "--quiet", "status"],
        &["check", "-q", "-vv"],
        &["-v", "hosts", "--quiet"],
    ] {
        let (code, out, err) = output(
            deployer(dir.path())
                .arg("--config")
                .arg(&example)
                .args(args),
        );
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert_eq!(out, "", "{args:?}");
        assert!(
            err.starts_with("error: the argument '--") && err.contains("cannot be used with '--"),
            "{args:?}: {err}"
        );
    }
}
