//! What ships beside the binary: shell completion scripts, checked by the
//! shells themselves, the dynamic completion asked through a real bash,
//! and the manual page, read by `man`/`groff`. The Debian package itself
//! is built by `packaging/build-deb` (see `deb_package_has_every_file`).

use crate::common::bin;
use crate::common::skip::skip;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const SUBCOMMANDS: &[&str] = &[
    "status",
    "deploy",
    "promote",
    "freeze",
    "unfreeze",
    "unlock",
    "hosts",
    "refresh-badges",
    "history",
    "completions",
    "man",
    "init",
    "versions",
    "changes",
    "check",
];

/// `deployer` in the test's working directory, without a home of its own.
fn deployer() -> Command {
    bin::scrubbed(bin::BIN)
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::inherit()).output().expect("runs");
    assert!(out.status.success(), "{cmd:?}: {}", out.status);
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Whether `program` is on PATH; if not, says the test is skipped (or
/// panics under CI=true, where `tests/run-all` installed it).
fn have(program: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let why = format!("no `{program}` on PATH (Debian package `{package}`)");
        skip(&why);
    }
    found
}

/// Run `shell ARGS script` on the script text; it must succeed.
fn shell_accepts(shell: &str, args: &[&str], script: &str, dir: &Path) {
    let path = dir.join(format!("completion.{shell}"));
    std::fs::write(&path, script).unwrap();
    let out = Command::new(shell)
        .args(args)
        .arg(&path)
        .output()
        .expect("the shell runs");
    assert!(
        out.status.success(),
        "{shell} rejects its completion script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn static_completion_scripts_parse_and_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, check) in [
        ("bash", &["-n"][..]),
        ("zsh", &["-n"][..]),
        ("fish", &["--no-execute"][..]),
    ] {
        let script = stdout_of(deployer().args(["completions", shell]));
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} script lacks `{sub}`");
        }
        assert!(script.contains("dry-run"), "{shell} script lacks flags");
        if have(shell, shell) {
            shell_accepts(shell, check, &script, dir.path());
        }
    }
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let out = deployer()
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bash") && err.contains("fish"), "{err}");
}

/// The dynamic bash script, sourced in a real bash that completes
/// `deployer deploy bash <TAB>` and `deployer history --hosts p<TAB>`:
/// the names come from the deployer.ini of the current directory.
#[test]
fn dynamic_bash_completion_offers_stages_and_packages_from_the_config() {
    if !have("bash", "bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deployer.ini");
    std::fs::write(
        &config,
        "[environment]\ndeb_packages = fastpath ooni-api\nstages = test hel prod\n\
         [stage:test]\nhosts = local\n[stage:hel]\nhosts = local\n[stage:prod]\nhosts = local\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = stdout_of(deployer().args(["completions", "bash", "--dynamic"]));
    std::fs::write(dir.path().join("dynamic.bash"), &script).unwrap();
    let bin_dir = Path::new(bin::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ask = |words: &str| -> Vec<String> {
        // COMP_WORDS / COMP_CWORD as bash sets them before calling the function
        let program = format!(
            "source ./dynamic.bash\nCOMP_WORDS=({words})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             COMP_TYPE=9\n_clap_complete_deployer deployer \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
        );
        let out = bin::scrubbed("bash")
            .args(["--norc", "--noprofile", "-c", &program])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let packages = ask("deployer deploy ''");
    assert!(
        packages.contains(&"fastpath".to_owned()) && packages.contains(&"ooni-api".to_owned()),
        "{packages:?}"
    );
    let stages = ask("deployer deploy fastpath ''");
    for s in ["test", "hel", "prod"] {
        assert!(stages.contains(&s.to_owned()), "{stages:?}");
    }
    let prefixed = ask("deployer history --hosts p");
    assert_eq!(prefixed, ["prod"]);
    let subcommands = ask("deployer comp");
    assert_eq!(subcommands, ["completions"]);
}

/// Without a readable configuration, names are simply not offered: no
/// error text lands in the user's prompt.
#[test]
fn dynamic_completion_without_a_config_offers_no_names_and_prints_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = deployer()
        .current_dir(dir.path())
        .env("DEPLOYER_COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .args(["--", "deployer", "deploy", ""])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(!words.contains("fastpath"), "{words}");
}

#[test]
fn man_page_renders_with_man_and_lists_the_commands() {
    let roff = stdout_of(deployer().arg("man"));
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH deployer 1"),
        "{roff}"
    );
    if !have("man", "man-db") || !have("groff", "groff-base") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("deployer.1");
    std::fs::write(&page, &roff).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("PAGER", "cat")
        .env("MANPAGER", "cat")
        .output()
        .expect("man runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "--config",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
    ] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "`{sub}` not in:\n{text}");
    }
    // groff's own warnings (-ww) about the roff clap_mangen wrote; -k:
    // through preconv, as man-db does, for the `►►` and `⚠` of the text
    let checked = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .arg(&page)
        .output()
        .expect("groff runs");
    assert!(checked.status.success());
    assert_eq!(
        String::from_utf8_lossy(&checked.stderr),
        "",
        "groff warnings"
    );
}

/// The deployer pages a text refers to, as `deployer-deploy(1)`:
/// (`deployer-deploy`, `1`).
fn page_references(text: &str) -> Vec<(String, char)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("deployer") {
        let rest = &text[at..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
            .unwrap_or(rest.len());
        let after = &rest.as_bytes()[name_len..];
        if after.len() >= 3 && after[0] == b'(' && after[1].is_ascii_digit() && after[2] == b')' {
            found.push((rest[..name_len].to_owned(), after[1] as char));
        }
    }
    found
}

#[test]
fn man_output_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man");
    stdout_of(deployer().arg("man").arg("--output-dir").arg(&out_dir));
    for page in [
        "deployer.1",
        "deployer-deploy.1",
        "deployer-history.1",
        "deployer.ini.5",
    ] {
        let text = std::fs::read_to_string(out_dir.join(page)).expect(page);
        assert!(text.contains(".TH"), "{page}");
    }
    // no page names one that is not there (as `deployer-help(1)` was)
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    for page in &written {
        let text = std::fs::read_to_string(out_dir.join(page)).unwrap();
        let unescaped = text
            .replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "");
        for (name, section) in page_references(&unescaped) {
            let want = format!("{name}.{section}");
            assert!(
                written.contains(&want),
                "{page} names {name}({section}); pages: {written:?}"
            );
        }
    }
}

/// The Maintainer the package test builds with (`DEB_MAINTAINER`).
const MAINTAINER: &str = "Ada Operator <ada@ops.example.org>";

/// `copyright` in Debian's machine-readable format (copyright-format 1.0):
/// the whole work under MIT or Apache-2.0, a stand-alone paragraph for
/// each, the MIT text the one of `license_mit` (blank lines as ` .`).
fn copyright_is_machine_readable(copyright: &str, license_mit: &str) {
    let paragraphs: Vec<&str> = copyright.split("\n\n").collect();
    assert_eq!(paragraphs.len(), 4, "{copyright}");
    assert!(
        paragraphs[0].starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        ),
        "{copyright}"
    );
    assert!(paragraphs[0].contains("\nUpstream-Name: deployer"));
    let files = paragraphs[1];
    assert!(files.starts_with("Files: *\nCopyright: 2026 The deployer developers\n"));
    assert!(files.ends_with("\nLicense: MIT or Apache-2.0"), "{files}");
    let mit = paragraphs[2].strip_prefix("License: MIT\n").expect("MIT");
    let text: Vec<&str> = license_mit
        .lines()
        .skip_while(|l| !l.starts_with("Copyright (c) "))
        .skip(1)
        .skip_while(|l| l.is_empty())
        .collect();
    let quoted: Vec<String> = text
        .iter()
        .map(|l| {
            if l.is_empty() {
                " .".into()
            } else {
                format!(" {l}")
            }
        })
        .collect();
    assert_eq!(mit.trim_end(), quoted.join("\n"), "the MIT text differs");
    let apache = paragraphs[3]
        .strip_prefix("License: Apache-2.0\n")
        .expect("Apache-2.0");
    assert!(apache.contains("/usr/share/common-licenses/Apache-2.0"));
    for l in copyright.lines().filter(|l| l.starts_with(' ')) {
        assert!(
            !l.trim().is_empty(),
            "a blank continuation line: {copyright}"
        );
    }
}

/// A Maintainer that is not `Name <address>` is refused before anything
/// is built, with the fix.
#[test]
fn build_deb_refuses_a_malformed_maintainer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for bad in [
        "nobody",
        "Ada <ada>",
        "<ada@example.org>",
        "Ada <a@b>\nX: y",
    ] {
        let out = Command::new(root.join("packaging/build-deb"))
            .env("DEB_MAINTAINER", bad)
            .stdin(Stdio::null())
            .output()
            .expect("packaging/build-deb runs");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("packaging/build-deb: error: the maintainer `")
                && err.contains("note: set DEB_MAINTAINER"),
            "{bad:?}: {err}"
        );
        assert!(!err.contains("Compiling"), "it built first: {err}");
    }
}

/// `packaging/build-deb`: the release binary, one manual page per command
/// and `deployer.ini(5)`, the three completion scripts at their Debian
/// paths, the example configuration, the README with the docs/ it links
/// to, and the copyright file, in a package whose binary runs
/// and has no symbols, maintained by whom `DEB_MAINTAINER` says.
/// Needs cargo-deb (`tests/run-all` installs it); builds in release mode,
/// so it takes a few minutes the first time.
#[test]
fn deb_package_has_every_file() {
    let has_cargo_deb = Command::new(env!("CARGO"))
        .args(["deb", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_cargo_deb {
        let why = "no `cargo deb` (`cargo install --locked cargo-deb`; tests/run-all does)";
        skip(why);
        return;
    }
    if !have("dpkg-deb", "dpkg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = bin::scrubbed(root.join("packaging/build-deb"))
        .arg("--output")
        .arg(dir.path())
        .env("DEB_MAINTAINER", MAINTAINER)
        .stdin(Stdio::null())
        .output()
        .expect("packaging/build-deb runs");
    assert!(
        out.status.success(),
        "packaging/build-deb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let debs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = &debs[0];
    let name = deb.file_name().unwrap().to_string_lossy();
    assert!(
        name.starts_with(&format!("deployer_{}-1_", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    let listing = stdout_of(Command::new("dpkg-deb").arg("-c").arg(deb));
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in [
        "./usr/bin/deployer",
        "./usr/share/man/man1/deployer.1.gz",
        "./usr/share/man/man1/deployer-deploy.1.gz",
        "./usr/share/man/man1/deployer-init.1.gz",
        "./usr/share/man/man5/deployer.ini.5.gz",
        "./usr/share/bash-completion/completions/deployer",
        "./usr/share/zsh/vendor-completions/_deployer",
        "./usr/share/fish/vendor_completions.d/deployer.fish",
        "./usr/share/doc/deployer/deployer.ini.example",
        "./usr/share/doc/deployer/README.md",
        "./usr/share/doc/deployer/docs/guide.md",
        "./usr/share/doc/deployer/docs/reference.md",
        "./usr/share/doc/deployer/docs/troubleshooting.md",
        "./usr/share/doc/deployer/copyright",
    ] {
        assert!(
            paths.contains(&want),
            "{want} not in the package:\n{listing}"
        );
    }
    assert!(
        listing.lines().any(|l| l.starts_with("-rwxr-xr-x ")
            && (l.contains(" root/root ") || l.contains(" 0/0 "))
            && l.ends_with(" ./usr/bin/deployer")),
        "{listing}"
    );

    let control = stdout_of(Command::new("dpkg-deb").arg("-f").arg(deb));
    for field in [
        "Package: deployer",
        "Section: admin",
        &format!("Maintainer: {MAINTAINER}\n"),
        "Depends: ",
    ] {
        assert!(control.contains(field), "no `{field}` in:\n{control}");
    }
    assert!(control.contains("libc6"), "{control}");
    // OpenSSL is built in (the vendored 3.5+ that gives libssh2 ML-KEM),
    // so the package does not depend on the system's libssl3
    assert!(!control.contains("libssl"), "{control}");

    // what it installs works: the binary runs, the pages and scripts are
    // the ones it generates
    let tree = dir.path().join("tree");
    stdout_of(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree));
    copyright_is_machine_readable(
        &std::fs::read_to_string(tree.join("usr/share/doc/deployer/copyright")).unwrap(),
        &std::fs::read_to_string(root.join("LICENSE-MIT")).unwrap(),
    );
    let bin = tree.join("usr/bin/deployer");
    // the same commit as the binary under test, so the same version line
    let version = stdout_of(Command::new(&bin).arg("--version"));
    assert_eq!(version, stdout_of(deployer().arg("--version")));
    assert!(
        version.starts_with(&format!("deployer {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let bash = std::fs::read_to_string(tree.join("usr/share/bash-completion/completions/deployer"))
        .unwrap();
    assert_eq!(
        bash,
        stdout_of(Command::new(&bin).args(["completions", "bash"]))
    );
    if have("readelf", "binutils") {
        let sections = stdout_of(Command::new("readelf").arg("-S").arg(&bin));
        assert!(
            !sections.contains(".symtab"),
            "the binary keeps its symbols"
        );
    }
    if have("man", "man-db") {
        let page = Command::new("man")
            .arg("-l")
            .arg(tree.join("usr/share/man/man1/deployer-init.1.gz"))
            .env("MANWIDTH", "100")
            .env("PAGER", "cat")
            .env("MANPAGER", "cat")
            .output()
            .expect("man runs");
        let text = String::from_utf8_lossy(&page.stdout);
        assert!(text.contains("--from-ansible"), "{text}");
        for (page, needles) in [
            (
                "usr/share/man/man1/deployer.1.gz",
                &["EXIT STATUS", "ENVIRONMENT", "FILES"][..],
            ),
            (
                "usr/share/man/man5/deployer.ini.5.gz",
                &["deb_packages", "[stage:NAME]"][..],
            ),
        ] {
            let shown = Command::new("man")
                .arg("-l")
                .arg(tree.join(page))
                .env("MANWIDTH", "100")
                .env("PAGER", "cat")
                .env("MANPAGER", "cat")
                .output()
                .expect("man runs");
            let text = String::from_utf8_lossy(&shown.stdout);
            for needle in needles {
                assert!(text.contains(needle), "`{needle}` not in {page}:\n{text}");
            }
        }
        // every page another page names is in the package
        let listed: Vec<&str> = paths.iter().map(|p| p.trim_start_matches("./")).collect();
        let top = stdout_of(
            Command::new("man")
                .arg("-l")
                .arg(tree.join("usr/share/man/man1/deployer.1.gz"))
                .env("MANWIDTH", "400")
                .env("PAGER", "cat")
                .env("MANPAGER", "cat"),
        );
        for (name, section) in page_references(&top) {
            let want = format!("usr/share/man/man{section}/{name}.{section}.gz");
            assert!(
                listed.contains(&want.as_str()),
                "deployer.1 names {name}({section}), not in the package"
            );
        }
    }
}

/// clap_complete's default variable, `COMPLETE`, is too generic a name: set
/// for anything else, it would turn every run into a completion request.
#[test]
fn an_unrelated_complete_variable_does_not_hijack_the_run() {
    let version = stdout_of(deployer().env("COMPLETE", "1").arg("--version"));
    assert_eq!(version, stdout_of(deployer().arg("--version")));
    assert!(
        version.starts_with(&format!("deployer {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
}
