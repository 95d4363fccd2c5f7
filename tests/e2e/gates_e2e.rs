//! End-to-end tests of gates (issue 21): a canary baked on its gates
//! before the rollout goes on, on the testbed's real Debian hosts. The
//! `prometheus` gates ask a real Prometheus (Debian's `prometheus`),
//! started here on loopback, which scrapes a real node_exporter
//! (`prometheus-node-exporter`) whose textfile collector serves the
//! `.prom` file the test writes, one series per host; so each value a
//! gate judges went through real Prometheus, and the test makes it bad in
//! the middle of a bake. The `http` gate asks a tiny local server (the
//! thing proven is deployer's own gate, against any service). Each test
//! reads the hosts afterwards (dpkg) and the records, local and on the
//! host.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;

use common::cli::{free_port, host_last, host_result, last, run, NEW, OLD};
use common::deadline;
use common::skip::skip;
use common::testbed::Testbed;
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// How long a daemon may take to answer, or a metric to reach Prometheus,
/// on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(90);

/// A child process killed (by its pid) and reaped when dropped.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url`: its status and body, or `None` when nothing answers.
fn get(url: &str) -> Option<(u16, String)> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    match agent.get(url).call() {
        Ok(r) => Some((r.status(), r.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(code, r)) => Some((code, r.into_string().unwrap_or_default())),
        Err(_) => None,
    }
}

/// Wait until `check` holds, or fail naming `what`.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A real Prometheus scraping a real node_exporter every second, whose
/// textfile collector reads `app.prom` in `textfiles`.
struct Metrics {
    dir: tempfile::TempDir,
    /// Prometheus' URL, `http://127.0.0.1:PORT`.
    url: String,
    _exporter: Daemon,
    _prometheus: Daemon,
}

impl Metrics {
    /// Start both, or skip (the programs missing) and return `None`.
    fn start() -> Option<Metrics> {
        for program in [PROMETHEUS, NODE_EXPORTER] {
            if !Path::new(program).is_file() {
                skip(&format!(
                    "{program} is missing (apt-get install prometheus prometheus-node-exporter)"
                ));
                return None;
            }
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let textfiles = dir.path().join("textfiles");
        std::fs::create_dir(&textfiles).unwrap();
        let exporter_port = free_port();
        let exporter = Daemon {
            child: Command::new(NODE_EXPORTER)
                .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
                .arg("--collector.disable-defaults")
                .arg("--collector.textfile")
                .arg(format!(
                    "--collector.textfile.directory={}",
                    textfiles.display()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start node_exporter"),
        };
        let exporter_url = format!("http://127.0.0.1:{exporter_port}/metrics");
        wait_for("node_exporter answers", || get(&exporter_url).is_some());
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: node\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{exporter_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let prometheus = Daemon {
            child: Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus"),
        };
        let url = format!("http://127.0.0.1:{port}");
        wait_for("Prometheus is ready", || {
            get(&format!("{url}/-/ready")).is_some_and(|(s, _)| s == 200)
        });
        Some(Metrics {
            dir,
            url,
            _exporter: exporter,
            _prometheus: prometheus,
        })
    }

    /// Serve `app_errors_ratio{host=H} V` for each (H, V), and wait until
    /// Prometheus has scraped exactly these values.
    fn set(&self, values: &[(&str, f64)]) {
        let text: String = values
            .iter()
            .map(|(h, v)| format!("app_errors_ratio{{host=\"{h}\"}} {v}\n"))
            .collect();
        let dir = self.dir.path().join("textfiles");
        let tmp = dir.join("app.prom.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join("app.prom")).unwrap();
        for (h, v) in values {
            wait_for(&format!("Prometheus sees {h} at {v}"), || {
                self.value(h) == Some(*v)
            });
        }
    }

    /// What Prometheus answers now for `host`'s ratio.
    fn value(&self, host: &str) -> Option<f64> {
        let query = format!("app_errors_ratio{{host=\"{host}\"}}");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .build();
        let text = agent
            .get(&format!("{}/api/v1/query", self.url))
            .query("query", &query)
            .call()
            .ok()?
            .into_string()
            .ok()?;
        let body: Value = serde_json::from_str(&text).ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }
}

/// A testbed stage `test` of `hosts` hosts all running fastpath OLD, with
/// `sections` and `stage_keys` (added to `[stage:test]`) in deployer.ini,
/// and the rollback policy on.
fn stage(hosts: usize, stage_keys: &str, sections: &str) -> Option<Testbed> {
    let tb = Testbed::start(&[("test", hosts)])?;
    let path = tb.write_config(&["fastpath"], "rollback_on_failure = yes", sections);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[stage:test]\n"), "{text}");
    let text = text.replacen("[stage:test]\n", &format!("[stage:test]\n{stage_keys}"), 1);
    std::fs::write(&path, text).unwrap();
    for h in tb.hosts("test") {
        tb.set_versions(&h.alias, &[("fastpath", Some(OLD))]);
    }
    Some(tb)
}

/// A `prometheus` gate `errors` on `url` with `extra` keys.
fn prometheus_gate(url: &str, query: &str, extra: &str) -> String {
    format!(
        "[gate:errors]\nkind = prometheus\nurl = {url}\nquery = {query}\ninterval = 1s\n{extra}"
    )
}

/// The per-host query of these tests.
const PER_HOST: &str = "app_errors_ratio{host=\"{host}\"}";

/// `deployer deploy fastpath test NEW`: exit status, stdout, stderr.
fn deploy(tb: &Testbed) -> (i32, String, String) {
    let mut cmd = tb.deployer();
    cmd.args(["--color=never", "deploy", "fastpath", "test", NEW]);
    cmd.stdin(Stdio::null());
    run(&mut cmd)
}

/// The gate records of `host` in `record`.
fn gates_of<'v>(record: &'v Value, host: &str) -> &'v Vec<Value> {
    record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("{host} not in {record}"))["gates"]
        .as_array()
        .unwrap_or_else(|| panic!("{host} has no gate records: {record}"))
}

#[test]
fn a_good_canary_bakes_then_a_metric_gone_bad_mid_bake_rolls_it_back() {
    let Some(metrics) = Metrics::start() else {
        return;
    };
    let sections = format!(
        "{}[package:fastpath]\n",
        prometheus_gate(&metrics.url, PER_HOST, "condition = < 0.01\n")
    );
    let Some(tb) = stage(2, "gates = errors\nbake = 3s\nbatch_bake = 0\n", &sections) else {
        return;
    };
    metrics.set(&[("test-1", 0.002), ("test-2", 0.003)]);

    // 1. a good canary: baked for 3 s, then the next batch, baked once
    let (code, out, err) = deploy(&tb);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Baking test-1 (the canary): `errors` for 3s, every 1s"),
        "{out}"
    );
    assert!(
        out.contains("test-1: gate `errors` pass: 0.002; < 0.01"),
        "{out}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }
    let record = last(&tb);
    let canary = gates_of(&record, "test-1");
    assert!(
        canary.len() >= 4,
        "evaluations at 0, 1, 2 and 3 s: {canary:?}"
    );
    for g in canary {
        assert_eq!(g["gate"], "errors");
        assert_eq!(g["verdict"], "pass", "{g}");
        assert_eq!(g["value"], 0.002, "{g}");
    }
    let batch = gates_of(&record, "test-2");
    assert_eq!(batch.len(), 1, "batch_bake = 0: once: {batch:?}");
    assert_eq!(batch[0]["value"], 0.003);
    // the canary's last evaluation came before the next batch's first
    let t = |g: &Value| g["time"].as_str().unwrap().to_string();
    assert!(t(canary.last().unwrap()) <= t(&batch[0]));
    let kept = host_last(&tb, "test-1");
    assert_eq!(kept["id"], record["id"], "{kept}");
    assert!(
        gates_of(&kept, "test-1").len() >= 4,
        "kept on the host too: {kept}"
    );

    // 2. the next release: the metric goes bad in the middle of the bake
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let path = tb.dir().join("deployer.ini");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("bake = 3s\n", "bake = 60s\n");
    std::fs::write(&path, text).unwrap();
    let mut child = tb
        .deployer()
        .args(["--color=never", "deploy", "fastpath", "test", NEW])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start deployer");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let lines = Arc::new(Mutex::new(String::new()));
    let seen = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let mut all = seen.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    loop {
        let line = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no good evaluation: {}", lines.lock().unwrap()));
        if line.contains("test-1: gate `errors` pass") {
            break;
        }
    }
    metrics.set(&[("test-1", 0.5), ("test-2", 0.003)]);
    let output = deadline::output_within(child, PATIENCE, "deployer, its canary failing");
    let out = lines.lock().unwrap().clone();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{out}{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "failed before the end of its bake"
    );
    assert!(
        out.contains("test-1: gate `errors` FAIL: 0.5, not < 0.01"),
        "{out}"
    );
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some(OLD),
        "rolled back"
    );
    assert_eq!(
        tb.installed("test-2", "fastpath").as_deref(),
        Some(OLD),
        "never started"
    );
    let record = last(&tb);
    assert_eq!(host_result(&record, "test-1"), "rolled-back", "{record}");
    assert_eq!(host_result(&record, "test-2"), "untouched", "{record}");
    let message = record["hosts"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("gate `errors` failed: 0.5, not < 0.01"),
        "{message}"
    );
    let evaluations = gates_of(&record, "test-1");
    assert_eq!(evaluations[0]["verdict"], "pass");
    let bad = evaluations.last().unwrap();
    assert_eq!(
        (bad["verdict"].as_str(), bad["value"].as_f64()),
        (Some("fail"), Some(0.5))
    );
    let kept = host_last(&tb, "test-1");
    assert_eq!(gates_of(&kept, "test-1").last().unwrap()["verdict"], "fail");
}

#[test]
fn no_data_is_not_success_and_a_pause_without_a_terminal_fails_closed() {
    let Some(metrics) = Metrics::start() else {
        return;
    };
    let missing = "app_requests_never_exported{host=\"{host}\"}";
    let sections = format!(
        "{}[package:fastpath]\ngates = errors\n",
        prometheus_gate(&metrics.url, missing, "condition = < 0.01\nbake = 2s\n")
    );
    let Some(tb) = stage(2, "", &sections) else {
        return;
    };
    metrics.set(&[("test-1", 0.002), ("test-2", 0.002)]);

    // the default, no_data = fail
    let (code, out, err) = deploy(&tb);
    assert_eq!(code, 8, "{out}{err}");
    assert!(
        out.contains("test-1: gate `errors` no data: the query returned no series"),
        "{out}"
    );
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some(OLD),
        "rolled back"
    );
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
    let record = last(&tb);
    assert_eq!(host_result(&record, "test-1"), "rolled-back");
    let g = &gates_of(&record, "test-1")[0];
    assert_eq!(g["verdict"], "no-data", "{g}");
    assert!(g.get("value").is_none(), "{g}");

    // no_data = pause, and no terminal to ask
    let path = tb.dir().join("deployer.ini");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("bake = 2s\n", "bake = 2s\nno_data = pause\n");
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = deploy(&tb);
    assert_eq!(code, 8, "{out}{err}");
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some(OLD),
        "rolled back"
    );
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
    let record = last(&tb);
    let message = record["hosts"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("inconclusive (the query returned no series)")
            && message.contains("there is no terminal to ask"),
        "{message}"
    );
    let g = &gates_of(&record, "test-1")[0];
    assert_eq!(g["verdict"], "no-data");
    assert!(
        g["detail"]
            .as_str()
            .unwrap()
            .ends_with("no terminal to ask: failed closed"),
        "{g}"
    );
}

#[test]
fn compare_others_blames_no_canary_for_a_bad_hour_but_catches_one_worse_than_its_peers() {
    let Some(metrics) = Metrics::start() else {
        return;
    };
    let sections = format!(
        "{}[package:fastpath]\n",
        prometheus_gate(
            &metrics.url,
            PER_HOST,
            "compare = others\nmax_ratio = 2\nbake = 2s\n"
        )
    );
    let Some(tb) = stage(3, "gates = errors\n", &sections) else {
        return;
    };

    // a bad hour for the whole stage: high, but the canary no worse
    metrics.set(&[("test-1", 0.2), ("test-2", 0.25), ("test-3", 0.15)]);
    let (code, out, err) = deploy(&tb);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("test-1: gate `errors` pass: 0.2; the others' mean 0.2"),
        "{out}"
    );
    for h in ["test-1", "test-2", "test-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }

    // a calm stage and a canary five times worse, under an absolute 1 %
    for h in ["test-1", "test-2", "test-3"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let path = tb.dir().join("deployer.ini");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "compare = others\n",
        "compare = others\ncondition = < 0.01\n",
    );
    std::fs::write(&path, text).unwrap();
    metrics.set(&[("test-1", 0.005), ("test-2", 0.001), ("test-3", 0.001)]);
    let (code, out, err) = deploy(&tb);
    assert_eq!(code, 8, "{out}{err}");
    assert!(
        out.contains("test-1: gate `errors` FAIL: 0.005 against the others' mean 0.001: more than 2 times it"),
        "{out}"
    );
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some(OLD),
        "rolled back"
    );
    for h in ["test-2", "test-3"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(OLD), "{h}");
    }
    let record = last(&tb);
    assert_eq!(host_result(&record, "test-1"), "rolled-back");
    let g = gates_of(&record, "test-1").last().unwrap().clone();
    assert_eq!(
        (g["verdict"].as_str(), g["value"].as_f64()),
        (Some("fail"), Some(0.005))
    );
}

/// A tiny HTTP server answering every request with the status and body
/// of `answer` at that moment; the paths asked go on the channel.
fn service(answer: Arc<Mutex<(u16, String)>>) -> (u16, mpsc::Receiver<String>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                    break;
                }
            }
            let (status, body) = answer.lock().unwrap().clone();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            if tx.send(path).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[test]
fn an_http_gate_passes_on_its_status_and_body_and_fails_on_either() {
    let answer = Arc::new(Mutex::new((200, "status: ok\n".to_string())));
    let (port, asked) = service(answer.clone());
    let sections = format!(
        "[gate:health]\nkind = http\nurl = http://127.0.0.1:{port}/health?host={{host}}&v={{version}}\n\
         body = status: ok\ninterval = 1s\ncount = 2\n[package:fastpath]\ngates = health\n"
    );
    let Some(tb) = stage(2, "", &sections) else {
        return;
    };
    let (code, out, err) = deploy(&tb);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("test-1: gate `health` pass: HTTP 200"),
        "{out}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }
    let paths: Vec<String> = asked.try_iter().collect();
    // `0.81~pr748-191`: `~` and `-` are unreserved, kept as they are
    let version = NEW;
    assert!(
        paths.contains(&format!("/health?host=test-1&v={version}")),
        "templated and percent-encoded: {paths:?}"
    );
    let record = last(&tb);
    assert_eq!(gates_of(&record, "test-1").len(), 2, "count = 2");
    assert_eq!(gates_of(&record, "test-1")[0]["value"], 200.0);

    for (status, body, says) in [
        (503, "status: ok\n", "answered HTTP 503, not 200"),
        (
            200,
            "status: degraded\n",
            "its body does not contain `status: ok`",
        ),
    ] {
        for h in ["test-1", "test-2"] {
            tb.set_versions(h, &[("fastpath", Some(OLD))]);
        }
        *answer.lock().unwrap() = (status, body.to_string());
        let (code, out, err) = deploy(&tb);
        assert_eq!(code, 8, "{status}: {out}{err}");
        assert!(out.contains(says), "{out}");
        assert_eq!(
            tb.installed("test-1", "fastpath").as_deref(),
            Some(OLD),
            "rolled back"
        );
        assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
        let record = last(&tb);
        assert_eq!(host_result(&record, "test-1"), "rolled-back");
        assert_eq!(gates_of(&record, "test-1")[0]["verdict"], "fail");
        *answer.lock().unwrap() = (200, "status: ok\n".to_string());
    }
}

/// `deployer deploy fastpath test NEW` on a real pseudo-terminal
/// (util-linux's `script`), `typed` typed ahead on it: exit status and
/// what the terminal showed. The typing end stays open until deployer
/// ends, so no end of input reaches it.
fn deploy_on_terminal(tb: &Testbed, typed: &str) -> (Option<i32>, String) {
    use std::io::Write;
    let mut child = common::bin::scrubbed("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!(
                "{} --color=never deploy fastpath test {NEW}",
                common::bin::BIN
            ),
            "/dev/null",
        ])
        .env("HOME", tb.home())
        .env("TERM", "dumb")
        .current_dir(tb.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut keys = child.stdin.take().unwrap();
    keys.write_all(typed.as_bytes()).unwrap();
    keys.flush().unwrap();
    let output = deadline::output_within(child, PATIENCE, "deployer on a terminal");
    drop(keys);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_pause_on_a_terminal_asks_and_honours_each_answer() {
    let Some(metrics) = Metrics::start() else {
        return;
    };
    let missing = "app_requests_never_exported{host=\"{host}\"}";
    let sections = format!(
        "{}no_data = pause\n[package:fastpath]\ngates = errors\n",
        prometheus_gate(&metrics.url, missing, "condition = < 0.01\ncount = 2\n")
    );
    let Some(tb) = stage(2, "", &sections) else {
        return;
    };
    // the canary: keep waiting once, then continue twice (its count); the
    // next batch: continue once
    let (code, shown) = deploy_on_terminal(&tb, "w\nc\nc\nc\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(
            "test-1: gate `errors` is inconclusive (the query returned no series). [c]ontinue, \
             [r]oll back, or [w]ait and look again?"
        ),
        "{shown}"
    );
    for h in ["test-1", "test-2"] {
        assert_eq!(tb.installed(h, "fastpath").as_deref(), Some(NEW), "{h}");
    }
    let record = last(&tb);
    let chose: Vec<&str> = gates_of(&record, "test-1")
        .iter()
        .map(|g| g["detail"].as_str().unwrap())
        .collect();
    assert_eq!(chose.len(), 3, "{chose:?}");
    assert!(
        chose[0].ends_with("the operator chose to keep waiting"),
        "{chose:?}"
    );
    assert!(
        chose[1].ends_with("the operator chose to continue"),
        "{chose:?}"
    );
    assert!(
        chose[2].ends_with("the operator chose to continue"),
        "{chose:?}"
    );

    // roll back
    for h in ["test-1", "test-2"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    let (code, shown) = deploy_on_terminal(&tb, "r\n");
    assert_eq!(code, Some(8), "{shown}");
    assert_eq!(
        tb.installed("test-1", "fastpath").as_deref(),
        Some(OLD),
        "rolled back"
    );
    assert_eq!(tb.installed("test-2", "fastpath").as_deref(), Some(OLD));
    let record = last(&tb);
    assert_eq!(host_result(&record, "test-1"), "rolled-back");
    let message = record["hosts"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("the operator chose to roll back"),
        "{message}"
    );
}
