//! End-to-end tests of `[alerts]` (issue 21, item 4) against a real
//! Alertmanager (Debian's `prometheus-alertmanager`, started here on
//! loopback with a generated configuration and its own data directory) and
//! the testbed's real Debian hosts. Alerts are raised through
//! Alertmanager's API v2, silenced with `amtool silence add`, inhibited by
//! an `inhibit_rules` entry of its configuration; each test reads dpkg on
//! the hosts afterwards, and the history.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common;

use common::cli::{
    deployer, free_port, host_last, last, stopped_after_the_canary, versions, NEW, OLD,
};
use common::testbed::{poll, Testbed};
use serde_json::{json, Value};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const AMTOOL: &str = "/usr/bin/amtool";

/// A version of `fastpath` between [`OLD`] and [`NEW`].
const MID: &str = "0.79~pr720-150";

/// Alertmanager's configuration: one receiver that sends nothing, and an
/// inhibition: a firing `Outage` mutes `Inhibited` alerts of its service.
const CONFIG: &str = "\
route:
  receiver: none
receivers:
  - name: none
inhibit_rules:
  - source_matchers: ['alertname=\"Outage\"']
    target_matchers: ['alertname=\"Inhibited\"']
    equal: ['service']
";

/// A real Alertmanager on a free loopback port, killed (by its pid) and
/// its data directory removed when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Start one and wait until it says it is ready; `None` (the skip
    /// recorded, a failure under `CI=true`) when it is not installed.
    fn start() -> Option<Alertmanager> {
        for program in [ALERTMANAGER, AMTOOL] {
            if !Path::new(program).exists() {
                common::skip::skip(&format!(
                    "{program} is missing (Debian's `prometheus-alertmanager` package)"
                ));
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("deployer-alertmanager-")
            .tempdir()
            .unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, CONFIG).unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // no gossip with other instances
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager {
            child,
            url,
            _dir: dir,
        };
        let ready = poll(Duration::from_secs(120), || {
            ureq::get(&format!("{}/-/ready", am.url)).call().is_ok()
        });
        assert!(ready, "alertmanager never got ready: {}", am.log());
        Some(am)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("log")).unwrap_or_default()
    }

    /// Raise alerts through the API (`POST /api/v2/alerts`): each is
    /// `(labels, summary)`.
    fn fire(&self, alerts: &[(&[(&str, &str)], &str)]) {
        let body: Vec<Value> = alerts
            .iter()
            .map(|(labels, summary)| {
                let labels: serde_json::Map<String, Value> = labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect();
                json!({"labels": labels, "annotations": {"summary": summary}})
            })
            .collect();
        ureq::post(&format!("{}/api/v2/alerts", self.url))
            .set("Content-Type", "application/json")
            .send_string(&Value::Array(body).to_string())
            .expect("alerts accepted");
    }

    /// `amtool ARGS` against this Alertmanager; its stdout.
    fn amtool(&self, args: &[&str]) -> String {
        let out = Command::new(AMTOOL)
            .arg(format!("--alertmanager.url={}", self.url))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run amtool");
        assert!(
            out.status.success(),
            "amtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Silence the alerts `alertname=NAME` with `amtool silence add`.
    fn silence(&self, name: &str) {
        let id = self.amtool(&[
            "silence",
            "add",
            "--author=tester",
            "--comment=known, being fixed",
            &format!("alertname={name}"),
        ]);
        assert!(!id.trim().is_empty());
    }

    /// The alerts Alertmanager reports, silenced and inhibited ones too.
    fn all(&self) -> Vec<Value> {
        let mut body = String::new();
        ureq::get(&format!("{}/api/v2/alerts", self.url))
            .call()
            .unwrap()
            .into_reader()
            .read_to_string(&mut body)
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Wait until Alertmanager reports the alert `name` muted by
    /// `how` (`silencedBy` or `inhibitedBy`).
    fn wait_muted(&self, name: &str, how: &str) {
        let muted = poll(Duration::from_secs(60), || {
            self.all().iter().any(|a| {
                a["labels"]["alertname"] == name
                    && a["status"][how].as_array().is_some_and(|v| !v.is_empty())
            })
        });
        assert!(muted, "`{name}` never got {how}: {:?}", self.all());
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[alerts]` section for Alertmanager at `url`.
fn alerts_section(url: &str, extra: &str) -> String {
    format!(
        "[alerts]\nalertmanager_url = {url}\nmatchers = severity=~\"critical|page\", service=\"fastpath\"\n{extra}"
    )
}

/// One stage `test` of `hosts` hosts at [`OLD`] (with [`MID`] published),
/// `fastpath` configured with `sections` added.
fn testbed(hosts: usize, sections: &str) -> Option<Testbed> {
    let tb = Testbed::start(&[("test", hosts)])?;
    tb.write_config(&["fastpath"], "", sections);
    tb.publish("fastpath", MID);
    for h in tb.hosts("test") {
        tb.set_versions(&h.alias, &[("fastpath", Some(OLD))]);
    }
    Some(tb)
}

/// A matching alert refuses a deploy, naming it, and `status` shows the
/// stage held; `--override-freeze --reason` goes through and is on record;
/// a rollback goes through while it fires; once silenced, a deploy goes.
#[test]
fn a_firing_alert_refuses_a_deploy_a_rollback_goes_and_a_silence_lets_it_go() {
    let Some(am) = Alertmanager::start() else {
        return;
    };
    let Some(tb) = testbed(2, &alerts_section(&am.url, "")) else {
        return;
    };
    am.fire(&[(
        &[
            ("alertname", "FastpathErrors"),
            ("severity", "page"),
            ("service", "fastpath"),
        ],
        "error rate above 5%",
    )]);

    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains(
            "error: stage `test` is held by 1 alert firing in Alertmanager: FastpathErrors"
        ),
        "{err}"
    );
    // the alert named: its labels, since when, its summary
    let named = err
        .lines()
        .find(|l| l.contains("FastpathErrors {"))
        .unwrap_or_else(|| panic!("no alert line in {err}"));
    assert!(
        named.contains("service=\"fastpath\", severity=\"page\"} since 20")
            && named.ends_with(": error rate above 5%"),
        "{named}"
    );
    assert!(err.contains("--override-freeze --reason"), "{err}");
    assert!(err.contains("no host was changed"), "{err}");
    assert_eq!(versions(&tb), [Some(OLD.into()), Some(OLD.into())]);
    let r = last(&tb);
    assert_eq!(r["outcome"], "refused", "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("FastpathErrors"),
        "{r}"
    );
    // a promotion-like plan says so too: the dry run refuses the same way
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--dry-run"]);
    assert_eq!(code, 6, "{err}");

    // status shows the stage held, as text and as JSON
    let (_, out, _) = deployer(&tb, &["status"]);
    assert!(out.contains("test [held by alerts]"), "{out}");
    assert!(out.contains("test: FastpathErrors {"), "{out}");
    let (code, out, err) = deployer(&tb, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stages"][0]["alerts"]["state"], "held", "{v}");
    assert!(
        v["stages"][0]["alerts"]["alerts"][0]
            .as_str()
            .unwrap()
            .starts_with("FastpathErrors {"),
        "{v}"
    );
    // and in the metrics for node_exporter's textfile collector
    let (_, out, _) = deployer(&tb, &["status", "--format", "prometheus"]);
    assert!(
        out.contains("# TYPE deployer_held_by_alerts gauge")
            && out.contains("deployer_held_by_alerts{stage=\"test\"} 1\n"),
        "{out}"
    );

    // the recorded break-glass
    let (code, out, err) = deployer(
        &tb,
        &[
            "deploy",
            "fastpath",
            "test",
            MID,
            "--yes",
            "--override-freeze",
            "--reason",
            "hotfix for the incident",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Warning: deploying (--override-freeze) into stage `test` held by alerts:"),
        "{out}"
    );
    assert_eq!(versions(&tb), [Some(MID.into()), Some(MID.into())]);
    let r = last(&tb);
    assert_eq!(r["outcome"], "success", "{r}");
    assert!(r["forced"].as_bool().unwrap(), "{r}");
    let overridden = r["alerts_overridden"].as_array().expect("alerts on record");
    assert_eq!(overridden.len(), 1, "{r}");
    assert!(
        overridden[0]
            .as_str()
            .unwrap()
            .starts_with("FastpathErrors {"),
        "{r}"
    );
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("freeze overridden: hotfix for the incident")
            && reason.contains("alerts overridden: FastpathErrors"),
        "{reason}"
    );
    // the hosts keep it too
    let on_host = host_last(&tb, "test-1");
    assert_eq!(on_host["id"], r["id"]);
    assert_eq!(on_host["alerts_overridden"], r["alerts_overridden"]);

    // a rollback goes through while the alert fires
    let (code, out, err) = deployer(&tb, &["rollback", "fastpath", "test", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&tb), [Some(OLD.into()), Some(OLD.into())]);
    assert_eq!(last(&tb)["action"], "rollback");
    assert!(last(&tb).get("alerts_overridden").is_none());

    // silenced, it no longer holds the stage
    am.silence("FastpathErrors");
    am.wait_muted("FastpathErrors", "silencedBy");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&tb), [Some(NEW.into()), Some(NEW.into())]);
    let (_, out, _) = deployer(&tb, &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stages"][0]["alerts"]["state"], "clear", "{v}");
    let (_, out, _) = deployer(&tb, &["status", "--format", "prometheus"]);
    assert!(
        out.contains("deployer_held_by_alerts{stage=\"test\"} 0\n"),
        "{out}"
    );
}

/// Stages' `alert_matchers` narrow what holds each: an alert for `prod`
/// refuses the promotion into it (nothing installed there) while deploys
/// to `test` go; the dashboard shows `prod` held, `test` not.
#[test]
fn an_alert_for_one_stage_refuses_the_promotion_into_it_only() {
    let Some(am) = Alertmanager::start() else {
        return;
    };
    let Some(tb) = Testbed::start(&[("test", 1), ("prod", 1)]) else {
        return;
    };
    tb.write_config(&["fastpath"], "", &alerts_section(&am.url, ""));
    let path = tb.dir().join("deployer.ini");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[stage:prod]\n"), "{text}");
    // each stage narrows `[alerts]`' matchers to its own alerts
    let text = text
        .replacen(
            "[stage:prod]\n",
            "[stage:prod]\nalert_matchers = env=prod\n",
            1,
        )
        .replacen(
            "[stage:test]\n",
            "[stage:test]\nalert_matchers = env=test\n",
            1,
        );
    std::fs::write(&path, text).unwrap();
    for h in ["test-1", "prod-1"] {
        tb.set_versions(h, &[("fastpath", Some(OLD))]);
    }
    am.fire(&[(
        &[
            ("alertname", "ProdLatency"),
            ("severity", "critical"),
            ("service", "fastpath"),
            ("env", "prod"),
        ],
        "p99 above 2s",
    )]);
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 0, "test is not held: {out}{err}");
    assert_eq!(tb.installed("test-1", "fastpath").as_deref(), Some(NEW));
    let (code, out, err) = deployer(&tb, &["promote", "fastpath", "--yes"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains("stage `prod` is held by 1 alert firing in Alertmanager: ProdLatency"),
        "{err}"
    );
    assert_eq!(tb.installed("prod-1", "fastpath").as_deref(), Some(OLD));
    let r = last(&tb);
    assert_eq!(
        (&r["action"], &r["outcome"]),
        (&json!("promote"), &json!("refused"))
    );

    let dir = tb.dir().join("dashboard");
    let (code, out, err) = deployer(&tb, &["refresh-badges", "--output", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        page.contains("Held by alerts: new deploys and promotions refused"),
        "{page}"
    );
    assert!(
        page.contains("<li><strong>prod</strong>: ProdLatency {"),
        "{page}"
    );
    assert!(!page.contains("<li><strong>test</strong>: "), "{page}");
}

/// An inhibited alert and alerts the matchers do not select do not hold
/// the stage (the inhibiting alert itself is `severity=info`, not
/// selected either); a stage's `alert_matchers` narrow what holds it.
#[test]
fn inhibited_and_unmatched_alerts_do_not_refuse() {
    let Some(am) = Alertmanager::start() else {
        return;
    };
    let Some(tb) = testbed(1, &alerts_section(&am.url, "")) else {
        return;
    };
    // the stage's own matcher, under its section
    let path = tb.dir().join("deployer.ini");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[stage:test]\n"), "{text}");
    let text = text.replacen(
        "[stage:test]\n",
        "[stage:test]\nalert_matchers = env!=\"staging\"\n",
        1,
    );
    std::fs::write(&path, text).unwrap();

    am.fire(&[
        (
            &[
                ("alertname", "Outage"),
                ("severity", "info"),
                ("service", "fastpath"),
            ],
            "the whole site is down",
        ),
        (
            &[
                ("alertname", "Inhibited"),
                ("severity", "page"),
                ("service", "fastpath"),
            ],
            "muted by the outage",
        ),
        (
            &[
                ("alertname", "OtherService"),
                ("severity", "page"),
                ("service", "api"),
            ],
            "not ours",
        ),
        (
            &[
                ("alertname", "Warning"),
                ("severity", "warning"),
                ("service", "fastpath"),
            ],
            "not severe",
        ),
        (
            &[
                ("alertname", "StagingOnly"),
                ("severity", "critical"),
                ("service", "fastpath"),
                ("env", "staging"),
            ],
            "another stage's",
        ),
    ]);
    am.wait_muted("Inhibited", "inhibitedBy");
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(versions(&tb), [Some(NEW.into())]);
    assert!(!err.contains("alert"), "{err}");
    // the plan names the check it ran, with the stage's matcher
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", MID, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "Alerts, asked before the lock and before every batch: active alerts matching \
             severity=~\"critical|page\", service=\"fastpath\", env!=\"staging\", neither \
             silenced nor inhibited"
        ),
        "{out}"
    );
    let (code, out, _) = deployer(
        &tb,
        &["deploy", "fastpath", "test", MID, "--dry-run", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["alerts"]["now"], "clear", "{plan}");

    // the same alert without `env=staging` does hold the stage
    am.fire(&[(
        &[
            ("alertname", "StagingOnly"),
            ("severity", "critical"),
            ("service", "fastpath"),
        ],
        "now everywhere",
    )]);
    let (code, _, err) = deployer(&tb, &["deploy", "fastpath", "test", MID]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("StagingOnly"), "{err}");
    assert_eq!(versions(&tb), [Some(NEW.into())]);
}

/// An Alertmanager that cannot be reached refuses (fail closed) and says
/// how to change that; with `on_unreachable = allow` the deploy goes on
/// with a warning; `status` shows it unreachable, not clear.
#[test]
fn an_unreachable_alertmanager_refuses_unless_allowed() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let Some(tb) = testbed(1, &alerts_section(&url, "")) else {
        return;
    };
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(
        err.contains(&format!(
            "error: cannot check the alerts holding stage `test`: Alertmanager at {url}: it cannot be reached"
        )),
        "{err}"
    );
    assert!(
        err.contains("`on_unreachable = refuse` in `[alerts]`, the default")
            && err.contains("set `on_unreachable = allow`"),
        "{err}"
    );
    assert_eq!(versions(&tb), [Some(OLD.into())]);
    assert_eq!(last(&tb)["outcome"], "refused");
    let (_, out, _) = deployer(&tb, &["status", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stages"][0]["alerts"]["state"], "unreachable", "{v}");
    // unknown is not "not held": no sample for the stage
    let (_, out, _) = deployer(&tb, &["status", "--format", "prometheus"]);
    assert!(!out.contains("deployer_held_by_alerts{"), "{out}");
    let (_, out, _) = deployer(&tb, &["status"]);
    assert!(out.contains("test [alerts unknown]"), "{out}");
    assert!(out.contains("not known to be clear"), "{out}");

    // something that answers, but not with a list of alerts: refused too
    let (not_am, requests) = common::cli::webhook_server(200);
    tb.write_config(&["fastpath"], "", &alerts_section(&not_am, ""));
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 6, "{out}{err}");
    assert!(err.contains("its answer is not a list of alerts"), "{err}");
    let (asked, _) = requests.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        asked.starts_with("GET /hook/api/v2/alerts?active=true&silenced=false&inhibited=false"),
        "{asked}"
    );
    assert!(
        asked.contains(
            "&filter=severity%3D%7E%22critical%7Cpage%22&filter=service%3D%22fastpath%22 "
        ),
        "{asked}"
    );
    assert_eq!(versions(&tb), [Some(OLD.into())]);

    tb.write_config(
        &["fastpath"],
        "",
        &alerts_section(&url, "on_unreachable = allow\n"),
    );
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: the alerts holding stage `test` cannot be checked")
            && err.contains("as `on_unreachable = allow` in `[alerts]` says"),
        "{err}"
    );
    assert_eq!(versions(&tb), [Some(NEW.into())]);
}

/// An alert that starts firing while the rollout runs (the canary's health
/// check raises it, from the host, over the shared loopback network) stops
/// the rollout before the next batch, as a freeze does: exit status 9,
/// the later hosts untouched, the alert on record.
#[test]
fn an_alert_firing_between_batches_stops_the_rollout() {
    let Some(am) = Alertmanager::start() else {
        return;
    };
    let port = am.url.rsplit(':').next().unwrap().to_string();
    // bash's /dev/tcp, on the host: POST one alert, succeed on HTTP 200
    let raise = format!(
        "bash -c 'body=\"[{{\\\"labels\\\":{{\\\"alertname\\\":\\\"CanaryErrors\\\",\\\"severity\\\":\\\"page\\\",\\\"service\\\":\\\"fastpath\\\"}}}}]\"; \
         exec 3<>/dev/tcp/127.0.0.1/{port} && \
         printf \"POST /api/v2/alerts HTTP/1.0\\r\\nHost: am\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n%s\" \"${{#body}}\" \"$body\" >&3 && \
         head -n 1 <&3 | grep -q \" 200 \"'"
    );
    let sections = format!(
        "[package:fastpath]\nhealth_check = {raise}\n{}",
        alerts_section(&am.url, "")
    );
    let Some(tb) = testbed(3, &sections) else {
        return;
    };
    let (code, out, err) = deployer(&tb, &["deploy", "fastpath", "test", NEW, "--yes"]);
    assert_eq!(code, 9, "{out}{err}");
    assert!(
        out.contains("Stage `test` is held by alerts now: batch 2/3 and later are not started."),
        "{out}"
    );
    assert!(out.contains("CanaryErrors {"), "{out}");
    assert!(out.contains("STOPPED (alerts are firing)"), "{out}");
    assert_eq!(
        versions(&tb),
        [Some(NEW.into()), Some(OLD.into()), Some(OLD.into())]
    );
    stopped_after_the_canary(&tb, "alerts fired during the rollout: CanaryErrors {");
}

/// deployer's selection is Alertmanager's own: for each list of matchers
/// (written as an operator would, quoted or not), the alerts deployer
/// gets are the ones `amtool alert query` lists (active, neither silenced
/// nor inhibited), on the same alerts.
#[test]
fn deployer_selects_the_alerts_amtool_selects() {
    let Some(am) = Alertmanager::start() else {
        return;
    };
    am.fire(&[
        (
            &[
                ("alertname", "A"),
                ("severity", "critical"),
                ("service", "fastpath"),
            ],
            "a",
        ),
        (
            &[
                ("alertname", "B"),
                ("severity", "page"),
                ("service", "api"),
                ("team", "db"),
            ],
            "b",
        ),
        (
            &[
                ("alertname", "C"),
                ("severity", "crit"),
                ("service", "fastpath"),
                ("env", "prod"),
            ],
            "c",
        ),
        (
            &[
                ("alertname", "D"),
                ("severity", "warning"),
                ("service", "fast,path"),
            ],
            "d",
        ),
        (
            &[
                ("alertname", "Silenced"),
                ("severity", "page"),
                ("service", "fastpath"),
            ],
            "s",
        ),
        (
            &[
                ("alertname", "Outage"),
                ("severity", "info"),
                ("service", "api"),
            ],
            "o",
        ),
        (
            &[
                ("alertname", "Inhibited"),
                ("severity", "page"),
                ("service", "api"),
            ],
            "i",
        ),
    ]);
    am.silence("Silenced");
    am.wait_muted("Silenced", "silencedBy");
    am.wait_muted("Inhibited", "inhibitedBy");
    let lists: &[&[&str]] = &[
        &[r#"severity=~"critical|page""#],
        // anchored: `crit` is not `critical`
        &["severity=~crit"],
        &[r#"severity=~"crit.*""#, r#"service!="api""#],
        &["service!~fast.*"],
        &[r#"team="""#],
        &[r#"team!="""#],
        &[r#"env!~"prod|staging""#, "severity!=warning"],
        &[r#"service="fast,path""#],
        &[r#"alertname=~"[A-C]""#],
        &[r#"severity=~"page|critical|crit|warning|info""#],
    ];
    for written in lists {
        let text = written.join(", ");
        let matchers = deployer::alerts::matcher::parse_list(&text)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let mut ours: Vec<String> =
            deployer::alerts::client::active_alerts(&am.url, &matchers, Duration::from_secs(30))
                .unwrap()
                .iter()
                .map(|a| a.name().to_string())
                .collect();
        let mut args = vec!["alert", "query", "--output=json"];
        args.extend_from_slice(written);
        let theirs: Vec<Value> = serde_json::from_str(&am.amtool(&args)).unwrap();
        let mut theirs: Vec<String> = theirs
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "matchers {text}");
        assert!(!ours.contains(&"Silenced".to_string()), "{text}");
        assert!(!ours.contains(&"Inhibited".to_string()), "{text}");
    }
    // the lists above select something, and not everything
    let all =
        deployer::alerts::client::active_alerts(&am.url, &[], Duration::from_secs(30)).unwrap();
    assert_eq!(all.len(), 5, "{all:?}");
}
