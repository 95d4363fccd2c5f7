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
