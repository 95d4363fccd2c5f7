//! End-to-end test of `deployer status --format prometheus` on real
//! Debian hosts: the metrics pass the real `promtool check metrics`, and a
//! real node_exporter serving them through its textfile collector returns
//! the series and values of the matrix (a pending rollout, a drift, a host
//! down).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cli::{deployer, NEW, OLD};
use common::skip::skip;
use common::testbed::{poll, Testbed};

const PROMTOOL: &str = "/usr/bin/promtool";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// A node_exporter started by the test, serving the textfile collector of
/// one directory on a loopback port; killed (by its pid) on drop.
struct NodeExporter {
    child: Child,
    url: String,
}

impl NodeExporter {
    /// Start it on `dir`, and wait until it answers.
    fn start(dir: &Path) -> NodeExporter {
        // a free port: the kernel's choice, given back before the exporter
        // takes it
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(NODE_EXPORTER)
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter");
        let exporter = NodeExporter {
            child,
            url: format!("http://127.0.0.1:{port}/metrics"),
        };
        assert!(
            poll(Duration::from_secs(60), || exporter.get().is_some()),
            "node_exporter did not answer on {} within 60 s",
            exporter.url
        );
        exporter
    }

    /// Its `/metrics`, when it answers.
    fn get(&self) -> Option<String> {
        let response = ureq::get(&self.url)
            .timeout(Duration::from_secs(10))
            .call()
            .ok()?;
        response.into_string().ok()
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sample's name and labels.
type Series = (String, BTreeMap<String, String>);

/// The samples of a text exposition: each series (name, labels) and its
/// value. Label values are unescaped.
fn samples(text: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("}"))),
            None => (series, BTreeMap::new()),
        };
        out.insert((name.to_string(), labels), value.parse().expect("a value"));
    }
    out
}

/// `a="x",b="y \"z\""` as a map.
fn parse_labels(mut text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !text.is_empty() {
        let (name, rest) = text.split_once("=\"").expect("name=\"");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (_, '\\') => match chars.next().expect("an escape").1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        out.insert(name.to_string(), value);
        text = rest[end + 1..].trim_start_matches(',');
    }
    out
}

/// The value of `name` with exactly `labels`.
fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples.get(&(name.to_string(), labels)).copied()
}

#[test]
fn status_metrics_pass_promtool_and_node_exporter_serves_them() {
    for program in [PROMTOOL, NODE_EXPORTER] {
        if !Path::new(program).exists() {
            skip(&format!(
                "{program} is not installed (Debian's `prometheus` and \
                 `prometheus-node-exporter` packages)"
            ));
            return;
        }
    }
    let Some(tb) = Testbed::start(&[("test", 2), ("prod", 3)]) else {
        return;
    };
    tb.write_config(&["fastpath", "analysis"], "connect_timeout = 5", "");
    // fastpath: test runs NEW, prod OLD (a rollout pending into prod);
    // analysis: the two hosts of test disagree (drift)
    tb.set_versions(
        "test-1",
        &[("fastpath", Some(NEW)), ("analysis", Some("1.9~pr659-61"))],
    );
    tb.set_versions(
        "test-2",
        &[
            ("fastpath", Some(NEW)),
            ("analysis", Some("1.10~pr692-102")),
        ],
    );
    for h in ["prod-1", "prod-2", "prod-3"] {
        tb.set_versions(h, &[("fastpath", Some(OLD)), ("analysis", None)]);
    }
    let _down = tb.stop_sshd("prod-3");

    let (code, metrics, err) = deployer(&tb, &["status", "--format", "prometheus"]);
    assert_eq!(code, 3, "a host is down: {metrics}{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployer.prom");
    std::fs::write(&file, &metrics).unwrap();

    let checked = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("run promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let exporter = NodeExporter::start(dir.path());
    let served = exporter.get().expect("node_exporter's metrics");
    let s = samples(&served);
    let expect = |name: &str, labels: &[(&str, &str)], want: f64| {
        assert_eq!(
            value(&s, name, labels),
            Some(want),
            "{name}{labels:?} in\n{served}"
        );
    };
    expect("node_textfile_scrape_error", &[], 0.0);
    expect(
        "deployer_pending",
        &[("stage", "prod"), ("package", "fastpath")],
        1.0,
    );
    expect(
        "deployer_regression",
        &[("stage", "prod"), ("package", "fastpath")],
        0.0,
    );
    expect(
        "deployer_drift",
        &[("stage", "test"), ("package", "analysis")],
        1.0,
    );
    expect(
        "deployer_drift",
        &[("stage", "test"), ("package", "fastpath")],
        0.0,
    );
    expect(
        "deployer_drift",
        &[("stage", "prod"), ("package", "fastpath")],
        0.0,
    );
    for (host, up) in [("prod-1", 1.0), ("prod-2", 1.0), ("prod-3", 0.0)] {
        expect("deployer_host_up", &[("stage", "prod"), ("host", host)], up);
    }
    expect(
        "deployer_package_info",
        &[
            ("stage", "test"),
            ("host", "test-2"),
            ("package", "analysis"),
            ("version", "1.10~pr692-102"),
        ],
        1.0,
    );
    expect(
        "deployer_package_info",
        &[
            ("stage", "prod"),
            ("host", "prod-1"),
            ("package", "fastpath"),
            ("version", OLD),
        ],
        1.0,
    );
    expect(
        "deployer_broken",
        &[
            ("stage", "prod"),
            ("host", "prod-2"),
            ("package", "fastpath"),
        ],
        0.0,
    );
    expect("deployer_frozen", &[("stage", "prod")], 0.0);
    // the host that did not answer has no package samples, and analysis,
    // absent from prod, no version
    assert!(
        !s.keys()
            .any(|(name, l)| name.starts_with("deployer_package")
                && (l.get("host").map(String::as_str) == Some("prod-3")
                    || (l.get("stage").map(String::as_str) == Some("prod")
                        && l.get("package").map(String::as_str) == Some("analysis")))),
        "{served}"
    );
    let read_at = value(&s, "deployer_status_read_timestamp_seconds", &[]).expect("read at");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        read_at <= now && now - read_at < 3600.0,
        "{read_at} vs {now}"
    );
    drop(exporter);

    // the metrics are data for a file: --quiet, which silences a status
    // view that says nothing is wrong, does not silence them
    let (code, quiet, err) = deployer(
        &tb,
        &[
            "--quiet",
            "status",
            "--format",
            "prometheus",
            "--stage",
            "test",
        ],
    );
    assert_eq!(code, 0, "every host of test answered: {quiet}{err}");
    assert!(
        quiet.contains("deployer_host_up{stage=\"test\",host=\"test-1\"} 1"),
        "{quiet}"
    );
    assert!(!quiet.contains("stage=\"prod\""), "{quiet}");
}
