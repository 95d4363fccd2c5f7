//! The one way a test skips, for the unit tests here and the integration
//! tests (`tests/e2e/common/mod.rs` compiles this same file): when this
//! machine lacks what a test needs (root, a program, fonts, the testbed).
//! Under `CI=true` nothing skips: [`skip`] panics with the reason.
//! Elsewhere it says why on stderr, which libtest hides when the test
//! passes, and appends `<test>: <why>` to `skipped-tests.txt` in the
//! target directory's `tmp/`, which `tests/run-all` counts and shows at the
//! end of the run.

use std::io::Write;
use std::path::PathBuf;

/// Whether this run is CI's (`CI=true`), where every test must run.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Where skips are recorded: `<target>/tmp/skipped-tests.txt`, found from
/// the test binary's own path, `<target>/<profile>/deps/<name>`.
pub fn log() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?;
    Some(target.join("tmp").join("skipped-tests.txt"))
}

/// Skip (the rest of) the calling test because of `why`; the caller then
/// returns. Panics under `CI=true`.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(!ci(), "{test}: CI=true, where nothing skips, but {why}");
    eprintln!("skipped: {why}");
    let Some(log) = log() else {
        eprintln!("warning: cannot tell where to record the skip");
        return;
    };
    let line = format!("{test}: {}\n", why.replace('\n', " "));
    let recorded = log
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
        })
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = recorded {
        eprintln!("warning: cannot record the skip in {}: {e}", log.display());
    }
}
