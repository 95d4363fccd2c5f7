//! Running the `deployer` binary against a testbed, and reading what it
//! recorded: shared by the end-to-end test files.

use deployer::ssh_config::SshConfigFile;
use deployer::transport::{self, LocalContext, Target};
use serde_json::Value;

use super::testbed::{HostKind, Testbed};

/// The version of `fastpath` the testbed's repository calls new.
pub const NEW: &str = "0.81~pr748-191";
/// The version of `fastpath` it calls old.
pub const OLD: &str = "0.77~pr705-119";

pub use super::bin::run;

/// `deployer --color=never ARGS` in the testbed's directory.
pub fn deployer(tb: &Testbed, args: &[&str]) -> (i32, String, String) {
    run(tb.deployer().arg("--color=never").args(args))
}

/// The local history, one entry per attempt: an attempt's `started` line
/// is replaced by its final record (same id), in the order attempts began.
/// Lines that are not JSON (a torn write a test made) are left out.
pub fn history(tb: &Testbed) -> Vec<Value> {
    let path = tb.dir().join("deployer-history.jsonl");
    let mut out: Vec<Value> = Vec::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match out
            .iter_mut()
            .find(|r| r["id"].is_string() && r["id"] == record["id"])
        {
            Some(earlier) => *earlier = record,
            None => out.push(record),
        }
    }
    out
}

/// The records `host` keeps in its own history
/// (`/var/log/deployer/history.jsonl`), in file order; lines that are not
/// JSON are left out.
pub fn host_records(tb: &Testbed, host: &str) -> Vec<Value> {
    tb.read_file(host, "/var/log/deployer/history.jsonl")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The newest record `host` keeps in its own history.
pub fn host_last(tb: &Testbed, host: &str) -> Value {
    host_records(tb, host)
        .pop()
        .unwrap_or_else(|| panic!("{host} keeps no record"))
}

/// What every host of stage `test` runs of `fastpath`, in host order.
pub fn versions(tb: &Testbed) -> Vec<Option<String>> {
    tb.hosts("test")
        .iter()
        .map(|h| tb.installed(&h.alias, "fastpath"))
        .collect()
}

/// A TCP port on 127.0.0.1 free a moment ago, for a server a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a port")
        .local_addr()
        .unwrap()
        .port()
}

/// The newest deploy on record stopped after its canary (`test-1`
/// changed, `test-2` untouched), interrupted, its reason saying `why`.
pub fn stopped_after_the_canary(tb: &Testbed, why: &str) {
    let r = history(tb)
        .into_iter()
        .rev()
        .find(|r| r["action"] == "deploy")
        .expect("a deploy on record");
    assert_eq!(r["outcome"], "interrupted", "{r}");
    assert!(r["reason"].as_str().is_some_and(|s| s.contains(why)), "{r}");
    assert_eq!(host_result(&r, "test-1"), "changed");
    assert_eq!(host_result(&r, "test-2"), "untouched");
}

/// The newest attempt's record.
pub fn last(tb: &Testbed) -> Value {
    history(tb).pop().expect("a history record")
}

/// The result recorded for `host` in `record`.
pub fn host_result(record: &Value, host: &str) -> String {
    record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("{host} not in {record}"))["result"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Stages `test` and `prod` of `hosts_per_stage` hosts each, with the
/// testbed's packages configured; `extra_env` and `sections` are added to
/// `deployer.ini` verbatim.
pub fn two_stages(hosts_per_stage: usize, extra_env: &str, sections: &str) -> Option<Testbed> {
    two_stages_as(HostKind::Bookworm, hosts_per_stage, extra_env, sections)
}

/// [`two_stages`] with every host of `kind`.
pub fn two_stages_as(
    kind: HostKind,
    hosts_per_stage: usize,
    extra_env: &str,
    sections: &str,
) -> Option<Testbed> {
    let tb = Testbed::start_as(
        kind,
        &[("test", hosts_per_stage), ("prod", hosts_per_stage)],
    )?;
    tb.write_config(
        &[
            "fastpath",
            "analysis",
            "detector",
            "badpostinst",
            "healthd",
            "slowpkg",
        ],
        extra_env,
        sections,
    );
    Some(tb)
}

/// How deployer reaches `host` of `tb`, resolved from the testbed's
/// `deployer.ini` and `~/.ssh/config` as deployer resolves it (new keys
/// accepted when `accept_new`).
pub fn target(tb: &Testbed, host: &str, accept_new: bool) -> Target {
    let config = deployer::config::load(&tb.dir().join("deployer.ini")).expect("deployer.ini");
    let ssh = SshConfigFile::load(&tb.ssh_config(), tb.home()).expect("ssh config");
    let local = LocalContext {
        home: tb.home().to_path_buf(),
        user: "deployer".to_string(),
        accept_new,
        resolve: None,
    };
    transport::resolve_targets(&config, &ssh, &local)
        .expect("resolvable")
        .into_iter()
        .find(|t| t.host == host)
        .unwrap_or_else(|| panic!("no target {host}"))
}

/// A webhook: an HTTP server here answering every request with `status`;
/// each request's (request line, body) is sent on the channel.
pub fn webhook_server(status: u16) -> (String, std::sync::mpsc::Receiver<(String, String)>) {
    use std::io::{BufRead, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim_end().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            if tx
                .send((line, String::from_utf8_lossy(&body).into_owned()))
                .is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

/// Run `deployer --json` (the status view) with `extra` arguments: its
/// exit status and the error shown for `host` (empty when it answered).
pub fn host_status(tb: &Testbed, host: &str, extra: &[&str]) -> (i32, String) {
    let out = tb.deployer().arg("--json").args(extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let h = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["hosts"].as_array().unwrap())
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no host {host} in {v}"));
    let error = h["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        h["reachable"] == true,
        error.is_empty(),
        "reachable exactly when no error: {h}"
    );
    (out.status.code().unwrap_or(-1), error)
}

/// The check of `host` named `name` in a `deployer check --json` report.
pub fn check_item<'v>(v: &'v Value, host: &str, name: &str) -> &'v Value {
    v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("{host} not in {v}"))["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} of {host} in {v}"))
}

/// The names in `dir` inside `host` (hidden ones too), sorted.
pub fn listing(tb: &Testbed, host: &str, dir: &str) -> Vec<String> {
    let out = tb.exec(host, &format!("ls -A {}", deployer::command::quote(dir)));
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}
