//! End-to-end tests of the transport on the testbed's real hosts (real
//! sshd, real sudo, real processes): timeouts that end the command on the
//! host and keep the connection, hosts that stop answering, held commands
//! kept fed, and a machine that runs out of file descriptors.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::testbed::Testbed;

/// Run `cmd` and return its exit status and everything it printed.
fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("deployer runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// With too few descriptors for its hosts, deployer says so, per host, and
/// never blames the host: a key file or known_hosts it could not open is
/// not "authentication failed" nor "host key not known".
#[test]
fn running_out_of_descriptors_is_reported_as_such() {
    let Some(tb) = Testbed::start(&[("test", 12)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    // Enough room to start and read the configuration, far too little for
    // twelve connections. The hard limit is lowered too, so that deployer
    // cannot raise the soft one.
    const LIMIT: u64 = 12;
    let mut cmd = tb.deployer();
    cmd.arg("--color=never");
    // SAFETY: setrlimit is a single system call, safe between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setrlimit(
                rustix::process::Resource::Nofile,
                rustix::process::Rlimit {
                    current: Some(LIMIT),
                    maximum: Some(LIMIT),
                },
            )
            .map_err(std::io::Error::from)
        });
    }
    let (code, text) = run(&mut cmd);
    assert_eq!(code, 3, "some hosts unreachable -> exit 3:\n{text}");
    assert!(
        text.contains("ran out of file descriptors while"),
        "the descriptor problem is named:\n{text}"
    );
    assert!(
        text.contains("raise `ulimit -n` or lower `parallelism`"),
        "{text}"
    );
    for wrong in ["authentication failed", "is not known", "HOST KEY"] {
        assert!(
            !text.contains(wrong),
            "`{wrong}` blamed on the host:\n{text}"
        );
    }

    // the same run with the limits of this machine reaches every host
    let (code, text) = run(tb.deployer().arg("--color=never"));
    assert_eq!(code, 0, "{text}");
}
