//! The one way a test skips: when this machine lacks what it needs (root,
//! a program, the testbed). Under `CI=true` nothing skips: [`skip`] panics
//! with the reason. Elsewhere it says why on stderr, which libtest hides
//! when the test passes, and appends a line to [`LOG`], which
//! `tests/run-all` counts and shows at the end of the run.

use std::io::Write;

/// Where skips are recorded, one line each: `<test>: <why>`.
pub const LOG: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.txt");

/// Whether this run is CI's (`CI=true`), where every test must run.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Skip (the rest of) the calling test because of `why`; the caller then
/// returns. Panics under `CI=true`.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(!ci(), "{test}: CI=true, where nothing skips, but {why}");
    eprintln!("skipped: {why}");
    let line = format!("{test}: {why}\n");
    let logged = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(LOG)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = logged {
        eprintln!("warning: cannot record the skip in {LOG}: {e}");
    }
}
