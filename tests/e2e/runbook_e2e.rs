//! The incident runbook of `docs/runbook.md`, followed literally on the
//! testbed's real hosts: every `console` block of the page is one step;
//! its `$ deployer …` line runs as written (through bash, with `deployer`
//! on the PATH, in the testbed's directory), on a real terminal when the
//! step answers a question, and every other line shown must be printed
//! (`…` stands for any text), with the exit status the page gives
//! (`$ echo $?`). The world does what the page says: `prod-3` is down from
//! the start and answers again before step 5.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::cli::{deployer, history, NEW, OLD};
use common::testbed::Testbed;

/// One step of the runbook: a command, what it prints, the answer typed
/// to its question (if any), its exit status.
#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
    answer: Option<&'static str>,
    status: i32,
}

/// The question a step answers, as the page shows it answered.
const QUESTION: &str = "Type `yes` to go on: yes";

/// The steps of the page, in order.
fn steps(page: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```console" {
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let command = block[0]
            .strip_prefix("$ ")
            .unwrap_or_else(|| panic!("a step starts with its command: {block:?}"))
            .to_string();
        let at = block
            .iter()
            .position(|l| *l == "$ echo $?")
            .unwrap_or_else(|| panic!("a step gives its exit status: {block:?}"));
        // the answer typed shows where the terminal echoed it, which is
        // not always after the question: the question alone is looked for
        let shown: Vec<String> = block[1..at]
            .iter()
            .filter(|l| l.trim() != "…")
            .map(|l| match l.strip_suffix("yes") {
                Some(question) if *l == QUESTION => question.to_string(),
                _ => l.to_string(),
            })
            .collect();
        steps.push(Step {
            answer: block[1..at].contains(&QUESTION).then_some("yes\n"),
            shown,
            command,
            status: block[at + 1].parse().expect("a number"),
        });
    }
    steps
}

/// Whether `line` shows `pattern`: its pieces between `…`, in order.
fn shows(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for piece in pattern.split('…') {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The printed text as lines, without a terminal's escapes and carriage
/// returns (a progress line redrawn is several lines).
fn printed_lines(text: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ … final byte in @..~; other escapes: one more char
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        plain.push(if c == '\r' { '\n' } else { c });
    }
    plain.lines().map(str::to_string).collect()
}

/// Run one step as written: (exit status, what it printed).
fn run(tb: &Testbed, bin_dir: &Path, step: &Step) -> (i32, String) {
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd: Command = match step.answer {
        // a question wants a terminal: util-linux's `script` gives one
        Some(_) => {
            let mut c = common::bin::scrubbed("script");
            c.args(["-q", "-e", "-c", &step.command, "/dev/null"])
                .env("TERM", "dumb");
            c
        }
        None => {
            let mut c = common::bin::scrubbed("bash");
            c.args(["-c", &step.command]);
            c
        }
    };
    cmd.env("PATH", path)
        .env("HOME", tb.home())
        .env("NO_COLOR", "1")
        .current_dir(tb.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the step runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(answer) = step.answer {
            stdin
                .write_all(answer.as_bytes())
                .expect("the answer is typed");
        }
    }
    let out = child.wait_with_output().expect("the step ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_incident_runbook_works_as_written() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runbook.md"))
        .expect("docs/runbook.md");
    let steps = steps(&page);
    assert_eq!(
        steps.len(),
        6,
        "freeze, timeline, rollback, verify, finish, unfreeze: {steps:#?}"
    );
    assert_eq!(
        steps[2].command, steps[4].command,
        "step 5 is the same rollback again, as the page says"
    );
    let Some(tb) = Testbed::start(&[("test", 1), ("prod", 3)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    // an hour ago: 0.81~pr748-191 went out to prod, after test
    tb.set_versions("test-1", &[("fastpath", Some(NEW))]);
    for h in ["prod-1", "prod-2", "prod-3"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "prod", NEW, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    // `deployer` on the PATH, as an operator has it
    let bin_dir = tempfile::tempdir().expect("a directory");
    std::os::unix::fs::symlink(common::bin::BIN, bin_dir.path().join("deployer"))
        .expect("a link to the binary");

    // the incident: prod-3 stops answering
    let down = tb.stop_sshd("prod-3");
    let mut down = Some(down);
    for (i, step) in steps.iter().enumerate() {
        if i == 4 {
            // "When prod-3 answers again"
            down.take().expect("prod-3 is down until now").undo();
        }
        let (status, text) = run(&tb, bin_dir.path(), step);
        let printed = printed_lines(&text);
        for pattern in &step.shown {
            assert!(
                printed.iter().any(|l| shows(l, pattern)),
                "step {} (`{}`) did not print `{pattern}`; it printed:\n{text}",
                i + 1,
                step.command
            );
        }
        assert_eq!(
            status,
            step.status,
            "step {} (`{}`) exit status; it printed:\n{text}",
            i + 1,
            step.command
        );
    }

    // the hosts themselves: every host back on the old version, no freeze
    for h in ["prod-1", "prod-2", "prod-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
        assert_eq!(
            tb.read_file(h, "/var/lib/deployer/freeze/prod"),
            None,
            "{h}"
        );
    }
    // the record of the incident
    let records = history(&tb);
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        ["deploy", "freeze", "rollback", "rollback", "unfreeze"],
        "{records:#?}"
    );
    let (first, second) = (&records[2], &records[3]);
    for r in [first, second] {
        assert_eq!(r["under_freeze"], true, "{r}");
        assert_eq!(r["outcome"], "success", "{r}");
    }
    let result = |r: &serde_json::Value, host: &str| {
        r["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == host)
            .map(|h| h["result"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        result(first, "prod-3").as_deref(),
        Some("skipped"),
        "{first}"
    );
    assert_eq!(
        result(first, "prod-1").as_deref(),
        Some("changed"),
        "{first}"
    );
    assert_eq!(
        result(second, "prod-3").as_deref(),
        Some("changed"),
        "{second}"
    );
    assert_eq!(
        result(second, "prod-1").as_deref(),
        Some("unchanged"),
        "{second}"
    );
}

/// A freeze made while a host was down holds on the others (exit 3); the
/// same command again completes it on that host once it answers, with the
/// record that stands and without touching the others; after that, a
/// freeze is refused as before.
#[test]
fn a_freeze_a_host_missed_is_completed_when_it_answers() {
    let Some(tb) = Testbed::start(&[("prod", 2)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    let record = "/var/lib/deployer/freeze/prod";
    let down = tb.stop_sshd("prod-2");
    let (code, out, err) = deployer(&tb, &["freeze", "prod", "--reason", "incident 9"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("now frozen on 1 of 2 host(s)"), "{out}");
    assert!(err.contains("completes the freeze there"), "{err}");
    let first = tb.read_file("prod-1", record).expect("prod-1 is frozen");
    assert!(first.contains("incident 9"), "{first}");
    // still down: nothing more can be done, and the status says so
    let (code, out, err) = deployer(&tb, &["freeze", "prod", "--reason", "again"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("completing the freeze on prod-2"), "{out}");
    down.undo();
    assert_eq!(tb.read_file("prod-2", record), None);
    let (code, out, err) = deployer(&tb, &["freeze", "prod", "--reason", "a new reason"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("completing the freeze on prod-2"), "{out}");
    assert!(out.contains("the reason given now is not used"), "{out}");
    // the record that stands, byte for byte, and prod-1 left as it was
    assert_eq!(tb.read_file("prod-2", record).as_deref(), Some(&*first));
    assert_eq!(tb.read_file("prod-1", record).as_deref(), Some(&*first));
    let last = history(&tb).pop().expect("a record");
    assert_eq!(last["action"], "freeze");
    assert_eq!(
        last["reason"], "completing the freeze: incident 9",
        "{last}"
    );
    let hosts: Vec<&str> = last["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["prod-2"], "only the host that lacked it: {last}");
    // every host frozen: a second freeze is refused, as before
    let (code, out, err) = deployer(&tb, &["freeze", "prod", "--reason", "third"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("is already frozen"), "{err}");
}
