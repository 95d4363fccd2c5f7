//! The documentation cannot rot: README.md and every page of docs/ are read
//! here, and
//! - every fenced block carries a language, so none escapes the checks;
//! - every `sh` block is valid bash (`bash -n`), and runs no plain `sudo`
//!   (a root shell without sudo would fail: `$(command -v sudo)` instead);
//! - every `deployer` command in an `sh` block, a `console` transcript
//!   (`$ deployer …`) or a table cell is parsed by the real command line
//!   (`try_get_matches_from`), and those that need no host (`man`,
//!   `completions`, `init`, `hosts`, the status view of `local` stages,
//!   `--help`) are run in a temporary directory with the example
//!   configuration, and must succeed;
//! - the quick start's toolchain step, run with stand-ins for `cargo`,
//!   `rustup`, `apt-get` and `sudo`, installs Rust only when `cargo` is
//!   missing or too old, and never replaces a rustup toolchain;
//! - the exit-status table of docs/reference.md is the one of
//!   `src/error.rs`, the key table is the configuration schema's, and
//!   every command has its entry;
//! - every relative link leads to a file, and every `#anchor` to a heading
//!   or an `<a id>` of that file.
//! - the reference's commands are generated from the command line
//!   (`DEPLOYER_BLESS_DOCS=1` rewrites them), every troubleshooting entry
//!   has its own anchor, and every JSON example parses.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::CommandFactory;
use deployer::cli::Cli;
use deployer::config::schema::SECTIONS;
use deployer::error::{exit_status_markdown, EXIT_STATUS_PRECEDENCE};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown page of docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            (p, text)
        })
        .collect()
}

fn name(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced block: its language, its first line's number, its lines with
/// the fence's indentation removed.
struct Block {
    lang: String,
    line: usize,
    body: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(lang) = trimmed.strip_prefix("```") {
            match open.take() {
                None => {
                    open = Some((
                        indent,
                        Block {
                            lang: lang.trim().to_owned(),
                            line: i + 1,
                            body: Vec::new(),
                        },
                    ))
                }
                Some((_, block)) => out.push(block),
            }
        } else if let Some((indent, block)) = &mut open {
            let cut = line
                .char_indices()
                .take_while(|(n, c)| *n < *indent && *c == ' ')
                .count();
            block.body.push(line[cut..].to_owned());
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    out
}

/// A shell line cut into words and operators, as far as the docs need:
/// quotes, backslashes, comments, `|`, `&&`, `;`, `>`, `<`, `$(`, `<(`, `)`.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let flush = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => break,
            ' ' | '\t' => flush(&mut word, &mut in_word, &mut words),
            '|' | '&' | ';' | '>' | ')' => {
                flush(&mut word, &mut in_word, &mut words);
                words.push(c.to_string());
            }
            '<' | '$' if chars.peek() == Some(&'(') => {
                flush(&mut word, &mut in_word, &mut words);
                chars.next();
                words.push(format!("{c}("));
            }
            '<' => {
                flush(&mut word, &mut in_word, &mut words);
                words.push("<".into());
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut in_word, &mut words);
    words
}

fn is_operator(word: &str) -> bool {
    matches!(word, "|" | "&" | ";" | ">" | "<" | ")" | "$(" | "<(")
}

/// The argument lists of every `deployer` command on a shell line
/// (`deployer ARGS`, `cargo run -- ARGS`), quoted text included.
fn deployer_commands(line: &str) -> Vec<Vec<String>> {
    let words = shell_words(line);
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let at_command = i == 0 || is_operator(&words[i - 1]);
        let args_from = if w == "deployer" && at_command {
            Some(i + 1)
        } else if w == "cargo"
            && at_command
            && words[i + 1..].starts_with(&["run".into(), "--".into()])
        {
            Some(i + 3)
        } else {
            None
        };
        if let Some(from) = args_from {
            let args: Vec<String> = words[from..]
                .iter()
                .take_while(|w| !is_operator(w))
                .cloned()
                .collect();
            found.push(args);
        }
        // quoted text that holds a command: `echo 'source <(deployer ...)'`
        if w.contains("deployer ") && !is_operator(w) && w != "deployer" {
            found.extend(deployer_commands(w));
        }
    }
    found
}

/// Every documented `deployer` command: (where, arguments).
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, text) in pages() {
        for block in blocks(&text) {
            let lines: Vec<String> = match block.lang.as_str() {
                "sh" => block
                    .body
                    .join("\n")
                    .replace("\\\n", " ")
                    .lines()
                    .map(str::to_owned)
                    .collect(),
                "console" => block
                    .body
                    .iter()
                    .filter_map(|l| l.strip_prefix("$ ").map(str::to_owned))
                    .collect(),
                _ => continue,
            };
            for line in lines {
                for args in deployer_commands(&line) {
                    out.push((format!("{}:{}: {line}", name(&path), block.line), args));
                }
            }
        }
        // table cells: | ... | `deployer ...` |
        for (n, line) in text.lines().enumerate() {
            if !line.starts_with('|') {
                continue;
            }
            for cell in line.split('`').skip(1).step_by(2) {
                if cell.starts_with("deployer ") || cell == "deployer" {
                    for args in deployer_commands(cell) {
                        out.push((format!("{}:{}: {cell}", name(&path), n + 1), args));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_fenced_block_says_what_it_holds() {
    for (path, text) in pages() {
        for block in blocks(&text) {
            assert!(
                !block.lang.is_empty(),
                "{}:{}: a fenced block without a language (sh, console, text, ini, json...)",
                name(&path),
                block.line
            );
        }
    }
}

#[test]
fn shell_blocks_are_valid_bash_without_plain_sudo() {
    let mut checked = 0;
    for (path, text) in pages() {
        for block in blocks(&text).into_iter().filter(|b| b.lang == "sh") {
            let script = block.body.join("\n");
            let out = Command::new("bash")
                .args(["-n", "-c", &script])
                .output()
                .expect("bash runs");
            assert!(
                out.status.success(),
                "{}:{}: bash -n: {}",
                name(&path),
                block.line,
                String::from_utf8_lossy(&out.stderr)
            );
            for line in script.replace("\\\n", " ").lines() {
                let words = shell_words(line);
                for (i, w) in words.iter().enumerate() {
                    let at_command = i == 0 || is_operator(&words[i - 1]);
                    assert!(
                        !(w == "sudo" && at_command),
                        "{}:{}: plain `sudo` fails in a root shell without it; use `$(command -v sudo)`: {line}",
                        name(&path),
                        block.line
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} shell blocks found");
}

#[test]
fn every_documented_command_is_accepted_by_the_command_line() {
    let commands = documented_commands();
    assert!(
        commands.len() >= 40,
        "only {} commands found",
        commands.len()
    );
    for (place, args) in &commands {
        let argv = std::iter::once("deployer".to_owned()).chain(args.iter().cloned());
        if let Err(e) = Cli::command().try_get_matches_from(argv) {
            // --help and --version end the parse early: they are fine
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            assert!(
                matches!(e.kind(), DisplayHelp | DisplayVersion),
                "{place}: the command line refuses it:\n{e}"
            );
        }
    }
}

/// A directory with the example configuration as `deployer.ini` (and under
/// its own name), mode 0644, as HOME too, so no ssh config of the
/// developer's is read.
fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for to in ["deployer.ini", "deployer.ini.example"] {
        let path = dir.path().join(to);
        std::fs::copy(root().join("deployer.ini.example"), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

fn deployer_in(dir: &Path, args: &[String]) -> std::process::Output {
    // as the shell would: `~/x` is HOME's, and HOME is `dir`
    let args = args.iter().map(|a| match a.strip_prefix("~/") {
        Some(rest) => dir.join(rest).into_os_string(),
        None => a.into(),
    });
    crate::common::bin::deployer(dir, dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("deployer runs")
}

/// Whether a documented command needs no host: it is run then.
fn runs_without_hosts(args: &[String]) -> bool {
    let command = args
        .iter()
        .find(|a| !a.starts_with('-') && !a.contains('.'));
    let flag = |f: &str| args.iter().any(|a| a == f);
    if flag("--help") || flag("-h") || flag("--version") {
        return true;
    }
    match command.map(String::as_str) {
        Some("man" | "completions") => true,
        // an inventory of the reader's own is not here
        Some("init") => !flag("--from-ansible"),
        // the example's stages are all `local`; `--check` would connect
        Some("hosts") => !flag("--check"),
        None | Some("status") => {
            !flag("--check")
                && args
                    .iter()
                    .all(|a| a.starts_with("--") || a.ends_with(".example"))
        }
        _ => false,
    }
}

#[test]
fn documented_commands_that_need_no_host_run() {
    let mut ran = BTreeSet::new();
    for (place, args) in documented_commands() {
        if !runs_without_hosts(&args) {
            continue;
        }
        // `init` writes deployer.ini: a directory without one
        let dir = if args.first().map(String::as_str) == Some("init") {
            tempfile::tempdir().unwrap()
        } else {
            example_dir()
        };
        let out = deployer_in(dir.path(), &args);
        assert!(
            out.status.success(),
            "{place}: exit status {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        if args.first().map(String::as_str) == Some("init") {
            assert!(
                dir.path().join("deployer.ini").is_file(),
                "{place}: no deployer.ini"
            );
        } else if let Some(at) = args.iter().position(|a| a == "--output-dir") {
            let out_dir = dir.path().join(args[at + 1].trim_start_matches("~/"));
            for page in ["deployer.1", "deployer-deploy.1", "deployer.ini.5"] {
                assert!(out_dir.join(page).is_file(), "{place}: no {page}");
            }
        } else {
            assert!(!out.stdout.is_empty(), "{place}: printed nothing");
        }
        ran.insert(args.first().cloned().unwrap_or_default());
    }
    for want in ["man", "completions", "init", "hosts", "--config"] {
        assert!(
            ran.contains(want),
            "no documented `deployer {want}` was run: {ran:?}"
        );
    }
}

/// The quick start's toolchain step, run with stand-ins that log what they
/// were asked: (cargo's version or `None` for a failing cargo, whether
/// rustup is there) -> the log.
fn toolchain_step(cargo: Option<&str>, rustup: bool) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = blocks(&readme)
        .into_iter()
        .find(|b| b.lang == "sh" && b.body.iter().any(|l| l.contains("cargo --version")))
        .expect("the quick start's toolchain block");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("log");
    let stub = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{}'\n{body}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    match cargo {
        Some(v) => stub("cargo", &format!("echo 'cargo {v} (0000000 2026-01-01)'")),
        None => stub("cargo", "exit 127"),
    }
    if rustup {
        stub("rustup", "");
    }
    stub("apt-get", "");
    stub("sudo", "exec \"$@\"");
    for tool in ["awk", "sh"] {
        let real = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let real = String::from_utf8(real.stdout).unwrap();
        std::os::unix::fs::symlink(real.trim(), bin.join(tool)).unwrap();
    }
    let out = Command::new("/bin/bash")
        .args(["--norc", "--noprofile", "-e", "-c", &block.body.join("\n")])
        .env_clear()
        .env("PATH", &bin)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[test]
fn the_quick_start_installs_rust_only_when_cargo_is_missing_or_too_old() {
    let installs_rust = |log: &str| {
        log.lines().any(|l| {
            l.starts_with("apt-get install") && (l.contains(" cargo") || l.contains("cargo-web"))
        })
    };
    let new_enough = toolchain_step(Some("1.85.0"), false);
    assert!(!installs_rust(&new_enough), "{new_enough}");
    assert!(
        new_enough.contains("apt-get install -y gcc make perl pkg-config"),
        "{new_enough}"
    );
    let newer = toolchain_step(Some("1.95.1"), true);
    assert!(
        !installs_rust(&newer) && !newer.contains("rustup"),
        "{newer}"
    );

    let too_old = toolchain_step(Some("1.65.0"), false);
    assert!(installs_rust(&too_old), "{too_old}");
    let missing = toolchain_step(None, false);
    assert!(installs_rust(&missing), "{missing}");

    // a rustup toolchain is updated, never replaced by Debian's packages
    let rustup_old = toolchain_step(Some("1.80.0"), true);
    assert!(!installs_rust(&rustup_old), "{rustup_old}");
    assert!(rustup_old.contains("rustup update stable"), "{rustup_old}");
}

#[test]
fn the_exit_status_table_is_the_one_of_the_code() {
    let reference = std::fs::read_to_string(root().join("docs/reference.md")).unwrap();
    let section = reference
        .split("\n## Exit statuses\n")
        .nth(1)
        .expect("docs/reference.md has `## Exit statuses`");
    let section = section.split("\n## ").next().unwrap();
    let table: String = section
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        table,
        exit_status_markdown(),
        "docs/reference.md, `## Exit statuses`"
    );
    assert!(section.contains(EXIT_STATUS_PRECEDENCE));
    // and nowhere else a second copy of it
    for (path, text) in pages() {
        if !path.ends_with("docs/reference.md") {
            assert!(
                !text.contains("| Status | Meaning |"),
                "{}: a second exit-status table; link to reference.md#exit-statuses",
                name(&path)
            );
        }
    }
}

#[test]
fn the_key_table_is_the_schema() {
    let reference = std::fs::read_to_string(root().join("docs/reference.md")).unwrap();
    let rows: Vec<&str> = reference
        .lines()
        .filter(|l| l.starts_with("| `") && l.matches(" | ").count() == 3)
        .collect();
    let mut want = Vec::new();
    for kind in SECTIONS {
        for key in kind.keys {
            want.push(format!(
                "| `{}` | `{}` | {} | {} |",
                key.name,
                kind.header(),
                key.default,
                key.meaning
            ));
        }
    }
    assert_eq!(rows, want, "docs/reference.md's key table");
}

#[test]
fn every_command_has_its_entry_in_the_reference() {
    let reference = std::fs::read_to_string(root().join("docs/reference.md")).unwrap();
    for sub in Cli::command().get_subcommands() {
        let heading = format!("\n### `deployer {}`\n", sub.get_name());
        assert!(
            reference.contains(&heading),
            "no {heading:?} in docs/reference.md"
        );
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as `-`; a repeated one gets `-1`, `-2`...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        if let Some(rest) = line.split("<a id=\"").nth(1) {
            found.insert(rest.split('"').next().unwrap().to_owned());
        }
        let Some(title) = line.strip_prefix('#').map(|t| t.trim_start_matches('#')) else {
            continue;
        };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut candidate = slug.clone();
        let mut n = 0;
        while found.contains(&candidate) {
            n += 1;
            candidate = format!("{slug}-{n}");
        }
        found.insert(candidate);
    }
    found
}

#[test]
fn every_relative_link_leads_somewhere() {
    let mut checked = 0;
    for (path, text) in pages() {
        let dir = path.parent().unwrap();
        for (at, _) in text.match_indices("](") {
            let target = &text[at + 2..];
            let target = &target[..target.find(')').expect("closed link")];
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            assert!(
                file.exists(),
                "{}: link to {target}: no such file",
                name(&path)
            );
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&file).expect("a page");
                assert!(
                    anchors(&text).contains(anchor),
                    "{}: link to {target}: no such anchor",
                    name(&path)
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} links");
}

#[test]
fn the_helpers_here_read_shell_as_bash_does() {
    assert_eq!(
        deployer_commands("echo 'source <(deployer completions bash --dynamic)' >> ~/.bashrc"),
        [["completions", "bash", "--dynamic"]]
    );
    assert_eq!(
        deployer_commands("cd /srv && deployer freeze prod --reason \"incident 42\" # note"),
        [["freeze", "prod", "--reason", "incident 42"]]
    );
    assert_eq!(deployer_commands("cargo run -- init"), [["init"]]);
    assert!(deployer_commands("echo deployer").is_empty());
    assert!(anchors("## Logs: `-v` and `-vv`\n").contains("logs--v-and--vv"));
}

/// Where the guide tells each command's story.
fn guide_of(command: &str) -> &'static str {
    match command {
        "status" => "guide.md#part-of-the-pipeline-deployer-status-filters",
        "deploy" | "promote" => "guide.md#deploying-safely",
        "rollback" => "guide.md#rolling-back",
        "freeze" | "unfreeze" => "guide.md#freezes",
        "unlock" => "guide.md#a-lock-left-behind",
        "hosts" => "#how-hosts-are-reached",
        "refresh-badges" => "guide.md#badges-and-cron",
        "history" => "guide.md#history",
        "timeline" => "guide.md#what-changed-here-deployer-timeline",
        "check" => "guide.md#checking-the-hosts-deployer-check",
        "versions" => "guide.md#what-can-be-installed-deployer-versions",
        "changes" => {
            "guide.md#what-is-about-to-go-out-the-changelog-in-the-plan-and-deployer-changes"
        }
        "init" => "guide.md#starting-a-configuration",
        _ => "../README.md#install",
    }
}

/// The `## Commands` entries of docs/reference.md, from the command line
/// itself: each command's synopsis, what it does, and its own arguments
/// and options with their help (the global options are listed once).
fn commands_markdown() -> String {
    let mut cli = Cli::command();
    cli.build();
    let mut out = String::new();
    let flag_of = |a: &clap::Arg| -> String {
        let value = a
            .get_value_names()
            .filter(|_| a.get_action().takes_values())
            .map(|v| v.iter().map(|n| format!(" <{n}>")).collect::<String>())
            .unwrap_or_default();
        match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}{value}"),
            (None, Some(l)) => format!("--{l}{value}"),
            (Some(s), None) => format!("-{s}{value}"),
            (None, None) if a.is_required_set() => {
                format!("<{}>", a.get_id().as_str().to_uppercase())
            }
            (None, None) => format!("[{}]", a.get_id().as_str().to_uppercase()),
        }
    };
    let help_of = |a: &clap::Arg| {
        let help = a.get_help().map(ToString::to_string).unwrap_or_default();
        if help.ends_with(['.', ']', ')']) {
            help
        } else {
            format!("{help}.")
        }
    };
    out.push_str("Global options, before or after the command:\n\n");
    for a in cli.get_arguments().filter(|a| a.is_global_set()) {
        out.push_str(&format!("- `{}`: {}\n", flag_of(a), help_of(a)));
    }
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ").trim();
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        let about = if about.ends_with('.') {
            about
        } else {
            format!("{about}.")
        };
        out.push_str(&format!(
            "\n### `deployer {}`\n\n`{usage}`\n\n{about} More: [{}]({}).\n\n",
            sub.get_name(),
            match guide_of(sub.get_name()) {
                g if g.starts_with("guide") => "the guide",
                g if g.starts_with('#') => "below",
                _ => "the README",
            },
            guide_of(sub.get_name()),
        ));
        for a in sub
            .get_arguments()
            .filter(|a| !a.is_global_set() && !a.is_hide_set() && a.get_id() != "help")
        {
            out.push_str(&format!("- `{}`: {}\n", flag_of(a), help_of(a)));
        }
    }
    out
}

const COMMANDS_START: &str = "<!-- generated from src/cli.rs: DEPLOYER_BLESS_DOCS=1 cargo test --test e2e docs:: rewrites it -->\n";
const COMMANDS_END: &str = "<!-- end of the generated commands -->\n";

#[test]
fn the_commands_of_the_reference_are_the_command_line() {
    let path = root().join("docs/reference.md");
    let reference = std::fs::read_to_string(&path).unwrap();
    let (before, rest) = reference
        .split_once(COMMANDS_START)
        .expect("docs/reference.md marks its generated commands");
    let (current, after) = rest.split_once(COMMANDS_END).expect("the end marker");
    let want = commands_markdown();
    if std::env::var_os("DEPLOYER_BLESS_DOCS").is_some() {
        std::fs::write(
            &path,
            format!("{before}{COMMANDS_START}{want}{COMMANDS_END}{after}"),
        )
        .unwrap();
        return;
    }
    let differ = current
        .lines()
        .zip(want.lines())
        .find(|(have, want)| have != want)
        .map(|(have, want)| format!("docs/reference.md: {have}\nthe command line: {want}"));
    assert!(
        current == want,
        "docs/reference.md's commands differ from the command line \
         (DEPLOYER_BLESS_DOCS=1 cargo test --test e2e docs:: rewrites them):\n{}",
        differ.unwrap_or_else(|| "a line more or less".into())
    );
}

/// Each troubleshooting entry has an anchor of its own, so a message, a
/// chat or another page can link to its fix.
#[test]
fn every_troubleshooting_entry_is_anchored_once() {
    let text = std::fs::read_to_string(root().join("docs/troubleshooting.md")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut ids = BTreeSet::new();
    let mut entries = 0;
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with("### ") {
            continue;
        }
        entries += 1;
        let anchor = i
            .checked_sub(1)
            .and_then(|j| lines[j].strip_prefix("<a id=\""))
            .and_then(|rest| rest.strip_suffix("\"></a>"));
        let Some(id) = anchor else {
            panic!(
                "docs/troubleshooting.md:{}: `{line}` has no `<a id>` above it",
                i + 1
            );
        };
        assert!(ids.insert(id.to_owned()), "the anchor `{id}` is used twice");
    }
    assert!(entries >= 30, "only {entries} entries");
}

/// The JSON shapes shown are JSON.
#[test]
fn every_json_block_parses() {
    let mut parsed = 0;
    for (path, text) in pages() {
        for block in blocks(&text).into_iter().filter(|b| b.lang == "json") {
            let body = block.body.join("\n");
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
                panic!("{}:{}: not JSON: {e}", name(&path), block.line);
            }
            parsed += 1;
        }
    }
    assert!(parsed >= 5, "only {parsed} JSON blocks");
}
