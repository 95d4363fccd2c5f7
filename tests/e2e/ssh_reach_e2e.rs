//! End-to-end tests of how deployer reaches hosts, on the testbed's real
//! sshd hosts, with OpenSSH's `ssh` as the reference where the point is
//! "the same as ssh": keys offered in OpenSSH's order (an agent full of
//! keys, a passphrase-protected key in the agent under `IdentitiesOnly`),
//! and jump hosts (one hop, two hops, many targets sharing one session to
//! the jump host).

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::testbed::{poll, tcp_peers_of, Testbed};
use deployer::command::RemoteCommand;
use deployer::fleet::Fleet;
use deployer::transport::{self, Exec, Reach, SshTarget, Target, TargetKind};

/// An ssh-agent of this test's own, listening on a socket in a temporary
/// directory; killed (by its PID) when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("run ssh-agent");
        assert!(
            poll(Duration::from_secs(5), || socket.exists()),
            "ssh-agent did not listen"
        );
        Agent {
            child,
            socket,
            _dir: dir,
        }
    }

    /// `ssh-add` `key`, answering its passphrase prompt with `passphrase`
    /// (through `SSH_ASKPASS`, with no terminal: `setsid`).
    fn add(&self, key: &Path, passphrase: Option<&str>) {
        let mut cmd = Command::new("setsid");
        cmd.arg("-w")
            .arg("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null());
        let askpass = key.with_extension("askpass");
        if let Some(pass) = passphrase {
            std::fs::write(&askpass, format!("#!/bin/sh\necho '{pass}'\n")).unwrap();
            std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
            cmd.env("SSH_ASKPASS", &askpass)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .env("DISPLAY", ":0");
        }
        let out = cmd.output().expect("run ssh-add");
        assert!(out.status.success(), "ssh-add {}: {out:?}", key.display());
    }

    /// The agent's keys, as `ssh-add -l` lists them.
    fn list(&self) -> String {
        let out = Command::new("ssh-add")
            .arg("-l")
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .expect("run ssh-add -l");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key at `path` (and `path.pub`).
fn keygen(path: &Path, passphrase: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "{out:?}");
}

/// A home of its own for one run: `.ssh/config` as given (`%K` is the
/// testbed's known_hosts file), no key files unless the test puts some.
fn home_with_config(tb: &Testbed, config: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir(&ssh).unwrap();
    let known = tb.home().join(".ssh/known_hosts");
    std::fs::write(
        ssh.join("config"),
        config.replace("%K", &known.display().to_string()),
    )
    .unwrap();
    home
}

/// `deployer status` with `home` as `HOME` and `agent` as the ssh-agent.
fn deployer_status(tb: &Testbed, home: &Path, agent: Option<&Agent>) -> Output {
    let mut cmd = tb.deployer();
    cmd.env("HOME", home).arg("status");
    if let Some(agent) = agent {
        cmd.env("SSH_AUTH_SOCK", &agent.socket);
    }
    cmd.output().expect("run deployer")
}

/// `ssh -F HOME/.ssh/config host true` with `agent`.
fn ssh_true(home: &Path, host: &str, agent: &Agent) -> Output {
    Command::new("ssh")
        .arg("-F")
        .arg(home.join(".ssh/config"))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            host,
            "true",
        ])
        .env("SSH_AUTH_SOCK", &agent.socket)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An agent holding seven unrelated keys before the right one: with the
/// right key named by `IdentityFile`, `ssh` offers it first and so does
/// deployer (sshd's `MaxAuthTries 6` would end the login before the
/// eighth key). Without that `IdentityFile`, both are refused, and
/// deployer reports the host's reason.
#[test]
fn an_agent_full_of_keys_offers_the_configured_one_first() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    let addr = tb.host("test-1").address.clone();
    let agent = Agent::start();
    let keys = tempfile::tempdir().unwrap();
    for n in 1..=7 {
        let key = keys.path().join(format!("unrelated-{n}"));
        keygen(&key, "");
        agent.add(&key, None);
    }
    let right = tb.home().join(".ssh/id_ed25519");
    agent.add(&right, None);
    assert_eq!(agent.list().lines().count(), 8, "{}", agent.list());

    let config = |identity: &str| {
        format!(
            "Host test-1\n  HostName {addr}\n  User deployer\n  IdentityFile {identity}\n  \
             UserKnownHostsFile %K\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
        )
    };
    // the IdentityFile is the right key's public half only: the private
    // key is in the agent alone, so the agent is what logs in
    let public_only = keys.path().join("right.pub");
    std::fs::copy(right.with_extension("pub"), &public_only).unwrap();
    let home = home_with_config(&tb, &config(&public_only.display().to_string()));
    let ssh = ssh_true(home.path(), "test-1", &agent);
    assert!(ssh.status.success(), "ssh: {}", text(&ssh));
    let ours = deployer_status(&tb, home.path(), Some(&agent));
    assert_eq!(ours.status.code(), Some(0), "deployer: {}", text(&ours));

    // no IdentityFile naming the right key: the agent's order, and the
    // host closes the connection after six refused keys
    let home = home_with_config(
        &tb,
        &config(&keys.path().join("absent").display().to_string()),
    );
    let ssh = ssh_true(home.path(), "test-1", &agent);
    assert!(!ssh.status.success(), "ssh: {}", text(&ssh));
    assert!(
        text(&ssh).contains("Too many authentication failures"),
        "ssh: {}",
        text(&ssh)
    );
    let ours = deployer_status(&tb, home.path(), Some(&agent));
    assert_eq!(ours.status.code(), Some(3), "deployer: {}", text(&ours));
    assert!(
        text(&ours).contains("the host closed the connection while authenticating `deployer`: Too many authentication failures"),
        "deployer: {}",
        text(&ours)
    );
}

/// A passphrase-protected key, loaded in the agent, is used under
/// `IdentitiesOnly yes` when `IdentityFile` names it (as `ssh` does);
/// without the agent it is reported as passphrase-protected.
#[test]
fn a_passphrase_protected_key_in_the_agent_is_used_with_identities_only() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    let addr = tb.host("test-1").address.clone();
    let keys = tempfile::tempdir().unwrap();
    let locked = keys.path().join("locked");
    keygen(&locked, "open sesame");
    let public = std::fs::read_to_string(locked.with_extension("pub")).unwrap();
    let added = tb.exec(
        "test-1",
        &format!(
            "echo '{}' >> /home/deployer/.ssh/authorized_keys",
            public.trim()
        ),
    );
    assert!(added.status.success(), "{added:?}");
    // an unrelated key first: IdentitiesOnly must keep it out
    let agent = Agent::start();
    let unrelated = keys.path().join("unrelated");
    keygen(&unrelated, "");
    agent.add(&unrelated, None);
    agent.add(&locked, Some("open sesame"));
    assert_eq!(agent.list().lines().count(), 2, "{}", agent.list());

    let home = home_with_config(
        &tb,
        &format!(
            "Host test-1\n  HostName {addr}\n  User deployer\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile %K\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
            locked.display()
        ),
    );
    let ssh = ssh_true(home.path(), "test-1", &agent);
    assert!(ssh.status.success(), "ssh: {}", text(&ssh));
    let ours = deployer_status(&tb, home.path(), Some(&agent));
    assert_eq!(ours.status.code(), Some(0), "deployer: {}", text(&ours));

    let without = deployer_status(&tb, home.path(), None);
    assert_eq!(
        without.status.code(),
        Some(3),
        "deployer: {}",
        text(&without)
    );
    assert!(
        text(&without).contains("passphrase-protected"),
        "deployer: {}",
        text(&without)
    );
}

/// How deployer reaches `host` of `tb`: from the testbed's `deployer.ini`
/// and `~/.ssh/config`.
fn ssh_target(tb: &Testbed, host: &str) -> SshTarget {
    let target = common::cli::target(tb, host, false);
    match target.kind {
        TargetKind::Ssh(s) => s,
        TargetKind::Local => panic!("{host} is local"),
    }
}

/// `host` reached through `jumps` (first hop first).
fn behind(tb: &Testbed, host: &str, jumps: &[&str]) -> Target {
    let mut target = ssh_target(tb, host);
    target.jump = jumps.iter().map(|j| ssh_target(tb, j)).collect();
    Target {
        stage: tb.host(host).stage.clone(),
        host: host.to_string(),
        kind: TargetKind::Ssh(target),
    }
}

fn hostname(conn: &mut dyn transport::Connection) -> String {
    let out = conn
        .exec(Exec::new(
            &RemoteCommand::new("hostname"),
            Duration::from_secs(10),
        ))
        .expect("hostname runs");
    assert_eq!(out.status, 0, "{out:?}");
    out.stdout.trim().to_string()
}

fn ssh_port(tb: &Testbed, host: &str) -> String {
    format!("{}:22", tb.host(host).address)
}

/// A target behind a jump host is reached through it: the jump host's
/// sshd holds the TCP connection to the target, and this process holds
/// none; the same through two jump hosts, each hop holding the next.
#[test]
fn targets_behind_jump_hosts_are_reached_through_them() {
    let Some(tb) = Testbed::start(&[("test", 3)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    let me = std::process::id();
    let jumps = Reach::default();
    let mut one = transport::connect_with(&behind(&tb, "test-2", &["test-1"]), &jumps)
        .expect("test-2 through test-1");
    assert_eq!(hostname(one.as_mut()), "test-2");
    assert!(
        tb.tcp_peers("test-1").contains(&ssh_port(&tb, "test-2")),
        "test-1 does not hold the connection to test-2: {:?}",
        tb.tcp_peers("test-1")
    );
    let mine = tcp_peers_of(&[me]);
    assert!(mine.contains(&ssh_port(&tb, "test-1")), "{mine:?}");
    assert!(!mine.contains(&ssh_port(&tb, "test-2")), "{mine:?}");
    drop(one);

    let jumps = Reach::default();
    let mut two = transport::connect_with(&behind(&tb, "test-3", &["test-1", "test-2"]), &jumps)
        .expect("test-3 through test-1 and test-2");
    assert_eq!(hostname(two.as_mut()), "test-3");
    assert!(
        tb.tcp_peers("test-1").contains(&ssh_port(&tb, "test-2")),
        "{:?}",
        tb.tcp_peers("test-1")
    );
    assert!(
        tb.tcp_peers("test-2").contains(&ssh_port(&tb, "test-3")),
        "{:?}",
        tb.tcp_peers("test-2")
    );
    let mine = tcp_peers_of(&[me]);
    assert!(!mine.contains(&ssh_port(&tb, "test-2")), "{mine:?}");
    assert!(!mine.contains(&ssh_port(&tb, "test-3")), "{mine:?}");

    // bulk both ways through both tunnels: an upload, and output larger
    // than any window
    let upload = vec![b'x'; 3_000_000];
    let count = RemoteCommand::new("wc").arg("-c");
    let mut exec = Exec::new(&count, Duration::from_secs(30));
    exec.stdin = Some(&upload);
    let out = two.exec(exec).expect("an upload through two jump hosts");
    assert_eq!(out.stdout.trim(), "3000000", "{out:?}");
    let out = two
        .exec(Exec::new(
            &RemoteCommand::new("head").args(["-c", "5000000", "/dev/zero"]),
            Duration::from_secs(30),
        ))
        .expect("output through two jump hosts");
    assert_eq!(out.status, 0);
    assert_eq!(out.stdout.len() as u64 + out.stdout_dropped, 5_000_000);
}

/// A jump host whose key is not known is refused as a target would be:
/// the target is not reached.
#[test]
fn a_jump_host_with_an_unknown_key_is_refused() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    let mut target = behind(&tb, "test-2", &["test-1"]);
    let TargetKind::Ssh(ssh) = &mut target.kind else {
        unreachable!()
    };
    let empty = tb.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    ssh.jump[0].known_hosts = vec![empty];
    let e = transport::connect(&target).map(|_| ()).unwrap_err();
    assert!(
        e.to_string().contains("host key for `test-1` is not known"),
        "{e}"
    );
}

/// Sixteen targets behind one jump host, connected at once as a run
/// connects them, go through ONE session to the jump host.
#[test]
fn many_targets_share_one_session_to_their_jump_host() {
    let Some(tb) = Testbed::start(&[("bastion", 1), ("test", 16)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 20", "");
    let targets: Vec<Target> = tb
        .hosts("test")
        .iter()
        .map(|h| behind(&tb, &h.alias, &["bastion-1"]))
        .collect();
    let mut fleet = Fleet::connect(targets, 16);
    for m in fleet.members() {
        assert!(m.error().is_none(), "{}: {:?}", m.host(), m.error());
    }
    let answers = fleet.run_on_stage(
        "test",
        &RemoteCommand::new("hostname"),
        Duration::from_secs(20),
    );
    for (host, answer) in &answers {
        let out = answer.as_ref().unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(out.stdout.trim(), host);
    }
    let sessions = tb
        .processes("bastion-1")
        .into_iter()
        .filter(|p| p.starts_with("sshd: deployer [priv]"))
        .count();
    assert_eq!(sessions, 1, "{:?}", tb.processes("bastion-1"));
    let peers = tb.tcp_peers("bastion-1");
    for h in tb.hosts("test") {
        assert!(peers.contains(&ssh_port(&tb, &h.alias)), "{peers:?}");
    }
}

/// What the jump host cannot do is reported as such, within
/// `connect_timeout` for the whole chain: a target it cannot reach, a
/// target that accepts but never answers. A lost session to the jump host
/// loses the targets behind it, and the next connection opens a new one.
#[test]
fn jump_host_failures_are_reported_and_bounded() {
    let Some(tb) = Testbed::start(&[("test", 2)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 3", "");
    let jumps = Reach::default();

    let mut closed = behind(&tb, "test-2", &["test-1"]);
    if let TargetKind::Ssh(s) = &mut closed.kind {
        s.port = 1;
    }
    let e = transport::connect_with(&closed, &jumps)
        .map(|_| ())
        .unwrap_err();
    let want = format!(
        "cannot connect to {}:1 through the jump host `test-1`",
        tb.host("test-2").address
    );
    assert!(e.to_string().starts_with(&want), "{e}");

    let hung = tb.hang("test-2");
    let started = std::time::Instant::now();
    let e = transport::connect_with(&behind(&tb, "test-2", &["test-1"]), &jumps)
        .map(|_| ())
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(e, deployer::error::HostError::Timeout { .. }),
        "{e}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    hung.undo();

    let mut conn = transport::connect_with(&behind(&tb, "test-2", &["test-1"]), &jumps)
        .expect("test-2 through test-1");
    assert_eq!(hostname(conn.as_mut()), "test-2");
    assert!(tb.drop_sessions("test-1") >= 2);
    let lost = conn.exec(Exec::new(
        &RemoteCommand::new("hostname"),
        Duration::from_secs(5),
    ));
    assert!(
        matches!(lost, Err(deployer::error::HostError::Disconnected(_))),
        "{lost:?}"
    );
    let mut again = transport::connect_with(&behind(&tb, "test-2", &["test-1"]), &jumps)
        .expect("a new session to test-1");
    assert_eq!(hostname(again.as_mut()), "test-2");
}

/// `ServerAliveInterval 1` and `ServerAliveCountMax 2`: a host that
/// answers its keepalives stays connected while idle; one that stops
/// answering (every process stopped) is given up on once three intervals
/// pass in silence (more than two keepalives unanswered, as ssh), with no
/// command running.
#[test]
fn server_alive_settings_give_up_on_a_silent_host() {
    let Some(tb) = Testbed::start(&[("test", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "connect_timeout = 10", "");
    let mut target = behind(&tb, "test-1", &[]);
    if let TargetKind::Ssh(s) = &mut target.kind {
        s.server_alive = Some((Duration::from_secs(1), 2));
    }
    let conn = transport::connect(&target).expect("test-1");
    // answered keepalives: still open well past the limit
    std::thread::sleep(Duration::from_secs(4));
    assert!(conn.is_open(), "an idle host that answers was given up on");
    let frozen = tb.freeze("test-1");
    // given up once two keepalive intervals pass in silence: the last
    // answer came up to an interval before the freeze
    assert!(
        poll(Duration::from_secs(8), || !conn.is_open()),
        "a silent host was kept"
    );
    frozen.undo();
}

/// `ProxyJump` from the ssh config, through the `deployer` binary: the
/// status of a host behind a jump host is read through it (with the jump
/// host down, the target cannot be reached either, though its own sshd is
/// up), and `deployer hosts` shows the route.
#[test]
fn proxy_jump_in_the_ssh_config_routes_the_deployer_through_the_jump_host() {
    let Some(tb) = Testbed::start(&[("test", 1), ("prod", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", "");
    tb.append_ssh_config("Host prod-1\n    ProxyJump test-1\n");

    let out = tb
        .deployer()
        .args(["--color=never", "hosts", "prod"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jump = format!("@{}:22", tb.host("test-1").address);
    assert!(
        shown
            .lines()
            .any(|l| l.trim_start().starts_with("through") && l.contains(&jump)),
        "the route names the jump host ({jump}): {shown}"
    );

    let run = |args: &[&str]| {
        tb.deployer()
            .arg("--color=never")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let up = run(&[]);
    assert_eq!(up.status.code(), Some(0), "{}", text_of(&up));

    let _down = tb.stop_sshd("test-1");
    let down = run(&["--json"]);
    assert_eq!(down.status.code(), Some(3), "{}", text_of(&down));
    let v: serde_json::Value = serde_json::from_slice(&down.stdout).unwrap();
    let unreachable: Vec<String> = v["unreachable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["host"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        unreachable,
        ["test-1", "prod-1"],
        "prod-1's sshd is up, but its route goes through test-1"
    );
}

fn text_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
