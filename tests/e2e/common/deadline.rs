//! Deadlines for tests that wait on something concurrent (another thread,
//! a child process, a host frozen on purpose): a regression that makes the
//! wait endless fails the test, naming what hung, instead of hanging the
//! whole suite. The limits are generous, for a loaded machine; the tests
//! keep their own tighter checks of how long things took.

use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, Output};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Run `f` on a thread of its own and return what it returns; fail the
/// test if it has not returned within `limit`. A panic in `f` is the
/// test's panic. A thread that hung is left behind (the test has failed).
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    within_else(limit, what, || {}, f)
}

/// [`within`] for `f` waiting on the process `pid` (a child of this
/// test): past `limit` the process is killed first, so that nothing of the
/// test outlives it.
pub fn process_within<T: Send + 'static>(
    pid: u32,
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    within_else(limit, what, move || kill(pid), f)
}

/// Everything `child` still prints and its exit status, as
/// [`Child::wait_with_output`], within `limit`; past it the child is
/// killed and the test fails.
pub fn output_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    process_within(pid, limit, what, move || {
        child.wait_with_output().expect("wait for the child")
    })
}

fn within_else<T: Send + 'static>(
    limit: Duration,
    what: &str,
    on_timeout: impl FnOnce(),
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("{what} (deadline {limit:?})"))
        .spawn(move || {
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("start a thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(RecvTimeoutError::Timeout) => {
            on_timeout();
            panic!("{what}: still waiting after {limit:?}; a hang, not a slow machine");
        }
        Err(RecvTimeoutError::Disconnected) => unreachable!("the thread always sends"),
    }
}

/// SIGKILL to `pid`; it may have ended meanwhile.
fn kill(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// A wait that hangs fails at its deadline, and the child waited for is
/// killed; what ends in time is returned as it is.
#[test]
fn a_hang_fails_at_the_deadline_and_its_child_is_killed() {
    let limit = Duration::from_millis(300);
    assert_eq!(within(Duration::from_secs(60), "a quick answer", || 42), 42);
    let hung = panic::catch_unwind(|| {
        within(limit, "a sleeper", || {
            std::thread::sleep(Duration::from_secs(60))
        })
    });
    let message = *hung.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.starts_with("a sleeper: still waiting after 300ms"),
        "{message}"
    );

    let child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = child.id();
    let hung = panic::catch_unwind(|| output_within(child, limit, "sleep 600"));
    assert!(hung.is_err(), "sleep 600 ended within {limit:?}");
    // killed, then reaped by the waiting thread
    let gone = super::testbed::poll(Duration::from_secs(60), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(gone, "sleep 600 (pid {pid}) still runs");
}
