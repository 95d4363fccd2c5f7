//! End-to-end, on a terminal: the status view says which host it waits
//! for while one hangs, and nothing of the kind when piped or `--quiet`.
//! The terminal is a real pseudo-terminal from util-linux's `script`.

use crate::common;

use common::testbed::Testbed;

/// Run the testbed's deployer with `args` on a pseudo-terminal; what the
/// terminal showed.
fn on_terminal(tb: &Testbed, args: &str) -> String {
    let out = common::bin::scrubbed("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{} {args}", common::bin::BIN),
            "/dev/null",
        ])
        .env("HOME", tb.home())
        .env("TERM", "xterm")
        .current_dir(tb.dir())
        .output()
        .expect("script runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_terminal_is_told_which_host_the_view_waits_for() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 4", "");
    let _hung = tb.hang("test-2");

    let shown = on_terminal(&tb, "status");

    assert!(
        shown.contains("waiting for 1 host: test-2 ("),
        "the terminal showed: {shown:?}"
    );
    assert!(shown.contains("timed out"), "{shown:?}");
    let quiet = on_terminal(&tb, "status --quiet");
    assert!(!quiet.contains("waiting for 1 host"), "{quiet:?}");
    assert!(
        quiet.contains("timed out"),
        "problems still show: {quiet:?}"
    );
    // a deploy waits for its hosts the same way, and its words keep clear
    // of the line
    let shown = on_terminal(&tb, "deploy fastpath test --yes");
    assert!(shown.contains("waiting for 1 host: test-2 ("), "{shown:?}");
    assert!(shown.contains("no host was changed"), "{shown:?}");
    let (_, out, err) = common::cli::deployer(&tb, &["status"]);
    assert!(!out.contains("waiting for 1 host") && !err.contains("waiting for 1 host"));
}

/// Whether `c` is one of the spinner's frames (indicatif's default
/// spinner draws braille patterns).
fn is_spinner_frame(c: char) -> bool {
    ('\u{2800}'..='\u{28ff}').contains(&c)
}

/// Regression: indicatif's `reset()` after `finish_and_clear()` drew the
/// spinner once more, so every run on a terminal left a stray glyph in
/// front of what it printed next.
#[test]
fn no_spinner_glyph_is_left_on_the_terminal() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 4", "");

    // every host answers at once: no line is needed, and none is drawn
    let shown = on_terminal(&tb, "status");
    assert!(shown.contains("fastpath"), "{shown:?}");
    assert!(!shown.contains(is_spinner_frame), "{shown:?}");

    // one hangs: the line is drawn while waiting, and the line it was last
    // drawn on is erased before anything else is written there
    let _hung = tb.hang("test-2");
    let shown = on_terminal(&tb, "status");
    let last = shown
        .rfind(is_spinner_frame)
        .unwrap_or_else(|| panic!("the waiting line was never drawn: {shown:?}"));
    let rest = &shown[last..];
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    assert!(
        line.contains("\x1b[2K"),
        "the spinner's last line is not erased: {line:?} in {shown:?}"
    );
    assert!(shown.contains("timed out"), "{shown:?}");
}
