//! End-to-end tests of the transport on the testbed's real hosts (real
//! sshd, real sudo, real processes): timeouts that end the command on the
//! host and keep the connection, hosts that stop answering, held commands
//! kept fed, and a machine that runs out of file descriptors.

use crate::common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::deadline::within;
use common::testbed::{poll, Testbed};
use deployer::command::RemoteCommand;
use deployer::error::HostError;
use deployer::transport::{self, Connection, Exec, Target, END_GRACE};

/// Past this a wait on a host has hung (see [`within`]); the tests check
/// their own, much shorter, bounds on how long the waits took.
const HANG: Duration = Duration::from_secs(120);

/// A testbed of `hosts` hosts in stage `test`, with its `deployer.ini`.
fn testbed(hosts: usize) -> Option<Testbed> {
    let tb = Testbed::start(&[("test", hosts)])?;
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    Some(tb)
}

/// How deployer reaches `host`: from the testbed's `deployer.ini` and
/// `~/.ssh/config`.
fn target(tb: &Testbed, host: &str) -> Target {
    common::cli::target(tb, host, false)
}

/// An SSH connection to `host`, made as deployer makes it.
fn connect(tb: &Testbed, host: &str) -> Box<dyn Connection> {
    transport::connect(&target(tb, host)).unwrap_or_else(|e| panic!("connect to {host}: {e}"))
}

fn exec(
    conn: &mut dyn Connection,
    command: &RemoteCommand,
    timeout: Duration,
) -> Result<transport::Output, HostError> {
    conn.exec(Exec::new(command, timeout))
}

/// How many processes of `host` have `needle` in their command line.
fn processes(tb: &Testbed, host: &str, needle: &str) -> usize {
    let out = tb.exec(
        host,
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done",
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// A command that overruns its timeout is ended on the host, children
/// (and what runs under sudo) included, and the same connection runs the
/// next command.
#[test]
fn a_timed_out_command_is_ended_on_the_host_and_the_connection_stays() {
    let Some(tb) = testbed(1) else {
        return;
    };
    let mut conn = connect(&tb, "test-1");
    let sleepers = RemoteCommand::trusted(
        "sh -c 'sleep 3001 & sudo -n sleep 3002 & sleep 3003'",
        "sleepers",
    );
    // they are really running before the timeout
    let watcher = std::thread::scope(|s| {
        let seen = s.spawn(|| {
            poll(Duration::from_secs(3), || {
                processes(&tb, "test-1", "sleep 300") >= 3
            })
        });
        let started = Instant::now();
        let (back, result) = within(HANG, "a command past its 3 s timeout", move || {
            let result = exec(conn.as_mut(), &sleepers, Duration::from_secs(3));
            (conn, result)
        });
        (seen.join().unwrap(), result, started.elapsed(), back)
    });
    let (seen, result, took, mut conn) = watcher;
    assert!(seen, "the sleeps never ran");
    assert!(
        matches!(result, Err(HostError::Timeout { .. })),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(3) + END_GRACE, "took {took:?}");
    assert!(conn.is_open());
    let out = exec(
        conn.as_mut(),
        &RemoteCommand::new("echo").arg("still here"),
        Duration::from_secs(10),
    )
    .expect("the same connection runs the next command");
    assert_eq!((out.status, out.stdout.as_str()), (0, "still here\n"));
    assert_eq!(
        out.stderr, "",
        "the process group line is not the command's"
    );
    assert!(
        poll(Duration::from_secs(2), || processes(
            &tb,
            "test-1",
            "sleep 300"
        ) == 0),
        "a sleep outlived its timed-out command: {}",
        processes(&tb, "test-1", "sleep 300")
    );
}

/// A host that stops answering (every process stopped) loses its
/// connection within the timeout and the grace, whether it stops during a
/// command or before one; the connection then says it is closed and fails
/// at once.
#[test]
fn a_frozen_host_is_disconnected_not_waited_for() {
    let Some(tb) = testbed(1) else {
        return;
    };
    let mut during = connect(&tb, "test-1");
    let mut before = connect(&tb, "test-1");
    let timeout = Duration::from_secs(2);
    let (result, took, _frozen, back) = std::thread::scope(|s| {
        let freezer = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(500));
            tb.freeze("test-1")
        });
        let started = Instant::now();
        let (back, result) = within(HANG, "a command on a host frozen meanwhile", move || {
            let result = exec(
                during.as_mut(),
                &RemoteCommand::new("sleep").arg("30"),
                timeout,
            );
            (during, result)
        });
        (result, started.elapsed(), freezer.join().unwrap(), back)
    });
    let mut during = back;
    assert!(
        matches!(result, Err(HostError::Disconnected(_))),
        "{result:?}"
    );
    assert!(
        took < timeout + END_GRACE + Duration::from_secs(1),
        "took {took:?}"
    );
    assert!(!during.is_open());
    let started = Instant::now();
    let again = exec(during.as_mut(), &RemoteCommand::new("true"), timeout);
    assert!(
        matches!(again, Err(HostError::Disconnected(_))),
        "{again:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(100));

    let started = Instant::now();
    let (before, result) = within(HANG, "a command on a frozen host", move || {
        let result = exec(before.as_mut(), &RemoteCommand::new("true"), timeout);
        (before, result)
    });
    let took = started.elapsed();
    assert!(
        matches!(result, Err(HostError::Disconnected(_))),
        "{result:?}"
    );
    assert!(
        took < timeout + END_GRACE + Duration::from_secs(1),
        "took {took:?}"
    );
    assert!(!before.is_open());

    let started = Instant::now();
    within(HANG, "closing connections to a frozen host", move || {
        drop(during);
        drop(before);
    });
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "closing waited for the host"
    );
}

/// A held command is sent a newline every heartbeat while other commands
/// run on the same connection, and ends once released.
#[test]
fn a_held_command_is_kept_fed_while_others_run() {
    let Some(tb) = testbed(1) else {
        return;
    };
    let mut conn = connect(&tb, "test-1");
    let beats = "/tmp/deployer-beats";
    let script = "echo ready; while read -t 3 l; do echo beat >> \"$1\"; done; echo gone >> \"$1\"";
    let held = RemoteCommand::new("bash").args(["-c", script, "beater", beats]);
    let line = conn
        .hold_with(&held, Duration::from_secs(10), Duration::from_secs(1))
        .expect("held");
    assert_eq!(line, "ready");
    let read = || {
        let out = tb.exec("test-1", &format!("cat {beats} 2>/dev/null || true"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // other commands keep running on the same session meanwhile
    let until = Instant::now() + Duration::from_secs(8);
    let mut runs = 0;
    while Instant::now() < until {
        let out = exec(
            conn.as_mut(),
            &RemoteCommand::new("echo").arg("hi"),
            Duration::from_secs(10),
        )
        .expect("commands run beside the held one");
        assert_eq!(out.stdout, "hi\n");
        runs += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(runs > 10, "only {runs} commands in 8 s");
    let text = read();
    assert!(text.matches("beat").count() >= 5, "{text:?}");
    assert!(!text.contains("gone"), "the held command gave up: {text:?}");
    conn.release();
    assert!(
        poll(Duration::from_secs(3), || read().contains("gone")),
        "the held command did not end on release: {:?}",
        read()
    );
    assert!(conn.is_open());
}

/// A host key marked `@revoked` in known_hosts is refused, although
/// another line lists it as the host's key (OpenSSH's rule; libssh2 alone
/// skips `@revoked` lines and would accept it).
#[test]
fn a_revoked_host_key_is_refused() {
    let Some(tb) = testbed(1) else {
        return;
    };
    drop(connect(&tb, "test-1"));
    let address = &tb.host("test-1").address;
    let known = tb.home().join(".ssh/known_hosts");
    let text = std::fs::read_to_string(&known).unwrap();
    let revoked: String = text
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(address.as_str()))
        .map(|l| format!("@revoked * {}\n", l.split_once(' ').unwrap().1))
        .collect();
    assert!(!revoked.is_empty(), "no key of {address} in {text}");
    std::fs::write(&known, format!("{text}{revoked}")).unwrap();

    match transport::connect(&target(&tb, "test-1")) {
        Err(e @ HostError::HostKeyRevoked { .. }) => {
            assert!(e.to_string().contains("is REVOKED"), "{e}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a revoked host key was accepted"),
    }
}

/// The first line of a held command is its answer (a lock holder): a host
/// that sends megabytes without a newline does not make deployer keep
/// them, and the line after it is still the command's.
#[test]
fn a_held_commands_first_line_is_bounded() {
    let Some(tb) = testbed(1) else {
        return;
    };
    let mut conn = connect(&tb, "test-1");
    let flood = RemoteCommand::trusted(
        "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo next; cat >/dev/null",
        "flood",
    );
    // the first line is read a byte at a time (what follows it is the
    // command's): a megabyte takes seconds in a debug build, and minutes on
    // a machine loaded with other work; the deadline is not what is tested
    let line = conn
        .hold_with(&flood, Duration::from_secs(300), Duration::from_secs(1))
        .expect("held");
    assert_eq!(line.len(), 64 * 1024, "kept {} bytes", line.len());
    assert!(line.bytes().all(|b| b == b'x'));
    conn.release();
    assert!(conn.is_open());
}

/// Run `cmd` and return its exit status and everything it printed.
fn run(cmd: &mut Command) -> (i32, String) {
    let (code, stdout, stderr) = common::bin::run(cmd);
    (code, format!("{stdout}{stderr}"))
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

/// Over SSH too, a command printing far more than deployer keeps leaves
/// only the tail in memory, and the streaming callback sees every byte.
#[test]
fn a_flood_of_output_over_ssh_keeps_only_its_tail() {
    let Some(tb) = testbed(1) else {
        return;
    };
    let mut conn = connect(&tb, "test-1");
    const FLOOD: u64 = 40_000_000;
    let cmd = RemoteCommand::trusted(
        "head -c 40000000 /dev/zero | tr '\\0' x; echo; echo done >&2",
        "flood",
    );
    let mut seen = 0u64;
    let mut sink = |stream: transport::Stream, bytes: &[u8]| {
        if stream == transport::Stream::Stdout {
            seen += bytes.len() as u64;
        }
    };
    let out = conn
        .exec(Exec {
            command: &cmd,
            timeout: Duration::from_secs(120),
            stdin: None,
            on_output: Some(&mut sink),
        })
        .expect("the flood runs");
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(seen, FLOOD + 1);
    assert_eq!(out.stdout.len(), transport::OUTPUT_LIMIT);
    assert_eq!(
        out.stdout_dropped,
        FLOOD + 1 - transport::OUTPUT_LIMIT as u64
    );
    assert!(out.stdout.trim_end().bytes().all(|b| b == b'x'));
    assert_eq!((out.stderr.as_str(), out.stderr_dropped), ("done\n", 0));
    assert!(out.dropped_note(transport::Stream::Stdout).is_some());

    // input larger than the SSH window arrives whole...
    let input = vec![b'y'; 8 << 20];
    let counted = conn
        .exec(Exec {
            stdin: Some(&input),
            ..Exec::new(&RemoteCommand::new("wc").arg("-c"), Duration::from_secs(60))
        })
        .expect("the upload runs");
    assert_eq!(counted.stdout.trim(), (8 << 20).to_string());
    // ...and a command that exits without reading it is not a lost host
    let quitter = conn
        .exec(Exec {
            stdin: Some(&input),
            ..Exec::new(
                &RemoteCommand::trusted("exit 3", "quitter"),
                Duration::from_secs(60),
            )
        })
        .expect("a command that reads no input still has a status");
    assert_eq!(quitter.status, 3);
    assert!(conn.is_open());
}
