//! `[gate:NAME]` sections, and the `gates` a stage or a package names:
//! read into [`crate::gate::Gate`]s, checked once (a template's unknown
//! placeholder, a bad condition, a key that does not fit the gate's kind,
//! a gate named but not defined: all errors naming the file and line).

use std::collections::BTreeMap;
use std::time::Duration;

use super::value::{self, Invalid};
use super::{schema, ConfigError, Reader, Section};
use crate::gate::{self, Check, Compare, Condition, Gate, NoData, Span, Template};

/// The keys only some kinds take, and which.
const KIND_KEYS: &[(&str, &[&str])] = &[
    ("url", &["prometheus", "http"]),
    ("query", &["prometheus"]),
    ("condition", &["prometheus"]),
    ("compare", &["prometheus"]),
    ("max_ratio", &["prometheus"]),
    ("max_delta", &["prometheus"]),
    ("status", &["http"]),
    ("body", &["http"]),
    ("command", &["command"]),
];

/// `bake`, `batch_bake`: `0` or a duration.
pub(crate) fn parse_bake(s: &str) -> Result<Duration, Invalid> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    value::parse_duration(s).map_err(|e| {
        Invalid::new(
            e.reason,
            "accepted: `0` (one evaluation, no waiting), or whole seconds, bare or with `s`, \
             or minutes with `m`: `30s`, `5m`",
        )
    })
}

fn parse_kind(s: &str) -> Result<&'static str, Invalid> {
    match s.trim() {
        "prometheus" => Ok("prometheus"),
        "http" => Ok("http"),
        "command" => Ok("command"),
        _ => Err(Invalid::new(
            "not a kind of gate",
            "accepted: `prometheus`, `http` or `command`",
        )),
    }
}

fn parse_template(s: &str) -> Result<Template, Invalid> {
    Template::parse(s.trim()).map_err(|why| {
        Invalid::new(
            why,
            "a placeholder is one of `{host}`, `{address}`, `{stage}`, `{package}`, `{version}`; \
             other braces are kept as they are",
        )
    })
}

fn parse_url(s: &str) -> Result<Template, Invalid> {
    const ACCEPTED: &str = "accepted: an `http://` or `https://` URL, which may hold \
                            placeholders: `http://{address}:8080/health`";
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(Invalid::new("not an `http://` or `https://` URL", ACCEPTED));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::new(
            "a URL has no spaces or control characters",
            ACCEPTED,
        ));
    }
    parse_template(s)
}

fn parse_condition(s: &str) -> Result<Condition, Invalid> {
    Condition::parse(s).map_err(|why| Invalid::new(why, gate::condition::ACCEPTED))
}

fn parse_compare(s: &str) -> Result<(), Invalid> {
    match s.trim() {
        "others" => Ok(()),
        _ => Err(Invalid::new(
            "not a comparison",
            "accepted: `others` (the mean of the stage's other hosts)",
        )),
    }
}

fn parse_limit(s: &str) -> Result<f64, Invalid> {
    let accepted = "accepted: a number greater than zero, e.g. `2` or `0.005`";
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(Invalid::new("not a number greater than zero", accepted)),
    }
}

fn parse_status(s: &str) -> Result<u16, Invalid> {
    value::parse_count(
        s,
        100,
        599,
        "accepted: an HTTP status from 100 to 599 (default 200)",
    )
    .map(|n| u16::try_from(n).expect("checked range"))
}

fn parse_gate_count(s: &str) -> Result<u32, Invalid> {
    value::parse_count(s, 1, 100_000, "accepted: a whole number from 1 to 100000")
        .map(|n| u32::try_from(n).expect("checked range"))
}

fn parse_failure_limit(s: &str) -> Result<u32, Invalid> {
    value::parse_count(
        s,
        0,
        100_000,
        "accepted: a whole number from 0 (the default) up",
    )
    .map(|n| u32::try_from(n).expect("checked range"))
}

fn parse_no_data(s: &str) -> Result<NoData, Invalid> {
    match s.trim() {
        "fail" => Ok(NoData::Fail),
        "pause" => Ok(NoData::Pause),
        "pass" => Ok(NoData::Pass),
        _ => Err(Invalid::new(
            "expected `fail`, `pause` or `pass`",
            "accepted: `fail` (the default: no data is not success), `pause` (ask the \
             operator; fail without a terminal) or `pass`",
        )),
    }
}

fn parse_command(s: &str) -> Result<String, Invalid> {
    Ok(s.trim().to_string())
}

impl<'a> Reader<'a> {
    /// Every `[gate:NAME]` section, by NAME.
    pub(super) fn gates(&mut self) -> Result<BTreeMap<String, Gate>, ConfigError> {
        let mut gates = BTreeMap::new();
        let raws: Vec<_> = self.sections_of(&schema::GATE).collect();
        for (raw, name) in raws {
            let Some(section) = self.section(&raw.name) else {
                continue;
            };
            if !value::is_stage_name(name) {
                return Err(self
                    .error(
                        Some(raw.line),
                        format!("`[{}]` has an invalid gate name", raw.name),
                    )
                    .note(
                        "gate names are a letter or digit followed by letters, digits, `_`, \
                         `.` or `-`",
                    ));
            }
            if name == "health_check" {
                return Err(self
                    .error(
                        Some(raw.line),
                        "`[gate:health_check]`: `health_check` names the health check in the \
                         records, not a gate",
                    )
                    .note(
                        "call the gate something else; `[package:NAME] health_check` is the \
                         `command` gate run once after each install",
                    ));
            }
            self.check_unknown_keys(&section);
            let gate = self.gate(&section, name)?;
            gates.insert(name.to_string(), gate);
        }
        Ok(gates)
    }

    /// One `[gate:NAME]`.
    fn gate(&self, section: &Section<'a>, name: &str) -> Result<Gate, ConfigError> {
        let Some(kind) = self.value(section, "kind", parse_kind)? else {
            return Err(self
                .error(
                    Some(section.line()),
                    format!("`[{}]` has no `kind` key", section.name()),
                )
                .note("add `kind = prometheus`, `kind = http` or `kind = command`"));
        };
        for (key, kinds) in KIND_KEYS {
            if kinds.contains(&kind) {
                continue;
            }
            if let Some((_, line)) = self.get(section, key)? {
                let takes: Vec<String> = kinds.iter().map(|k| format!("`{k}`")).collect();
                return Err(self
                    .error(
                        line,
                        format!(
                            "`{key}` in `[{}]` does not apply to a `{kind}` gate",
                            section.name()
                        ),
                    )
                    .note(format!(
                        "`{key}` is for {} gates; remove it, or change `kind`",
                        takes.join(" and ")
                    )));
            }
        }
        let required = |key: &str, example: &str| {
            self.error(
                Some(section.line()),
                format!(
                    "`[{}]`, a `{kind}` gate, has no `{key}` key",
                    section.name()
                ),
            )
            .note(format!("add a line like `{key} = {example}`"))
        };
        let check = match kind {
            "prometheus" => {
                let url = self
                    .value(section, "url", parse_url)?
                    .ok_or_else(|| required("url", "http://prometheus.example.org:9090"))?;
                let query = self
                    .value(section, "query", parse_template)?
                    .ok_or_else(|| {
                        required("query", "sum(rate(errors_total{host=\"{host}\"}[5m]))")
                    })?;
                let condition = self.value(section, "condition", parse_condition)?;
                let compare = match self.value(section, "compare", parse_compare)? {
                    Some(()) => Some(Compare {
                        max_ratio: self.value(section, "max_ratio", parse_limit)?,
                        max_delta: self.value(section, "max_delta", parse_limit)?,
                    }),
                    None => None,
                };
                let limits = ["max_ratio", "max_delta"];
                match &compare {
                    Some(c) if c.max_ratio.is_none() && c.max_delta.is_none() => {
                        let line = self.get(section, "compare")?.and_then(|(_, l)| l);
                        return Err(self
                            .error(
                                line,
                                format!(
                                    "`compare = others` in `[{}]` has no limit",
                                    section.name()
                                ),
                            )
                            .note("add `max_ratio = 2` or `max_delta = 0.01` (or both)"));
                    }
                    None => {
                        for key in limits {
                            if let Some((_, line)) = self.get(section, key)? {
                                return Err(self
                                    .error(
                                        line,
                                        format!(
                                            "`{key}` in `[{}]` needs `compare = others`",
                                            section.name()
                                        ),
                                    )
                                    .note("add `compare = others`, or remove the line"));
                            }
                        }
                    }
                    Some(_) => {}
                }
                if condition.is_none() && compare.is_none() {
                    return Err(required("condition", "< 0.01"));
                }
                Check::Prometheus {
                    url,
                    query,
                    condition,
                    compare,
                }
            }
            "http" => Check::Http {
                url: self
                    .value(section, "url", parse_url)?
                    .ok_or_else(|| required("url", "http://{address}:8080/health"))?,
                status: self
                    .value(section, "status", parse_status)?
                    .unwrap_or(gate::DEFAULT_STATUS),
                body: self.value(section, "body", parse_command)?,
            },
            _ => Check::Command {
                command: self
                    .value(section, "command", parse_command)?
                    .ok_or_else(|| required("command", "curl -fsS http://localhost:8080/health"))?,
            },
        };
        let bake = self.value(section, "bake", parse_bake)?;
        let count = self.value(section, "count", parse_gate_count)?;
        let span = match (bake, count) {
            (Some(_), Some(_)) => {
                let line = self.get(section, "count")?.and_then(|(_, l)| l);
                return Err(self
                    .error(
                        line,
                        format!("`[{}]` has both `bake` and `count`", section.name()),
                    )
                    .note("a gate is evaluated for a time (`bake`) or a number of times (`count`): keep one"));
            }
            (Some(d), None) => Some(Span::Bake(d)),
            (None, Some(n)) => Some(Span::Count(n)),
            (None, None) => None,
        };
        Ok(Gate {
            name: name.to_string(),
            check,
            interval: self
                .value(section, "interval", value::parse_duration)?
                .unwrap_or(gate::DEFAULT_INTERVAL),
            span,
            failure_limit: self
                .value(section, "failure_limit", parse_failure_limit)?
                .unwrap_or(0),
            no_data: self
                .value(section, "no_data", parse_no_data)?
                .unwrap_or_default(),
        })
    }

    /// The `gates` of a `[stage:NAME]` or `[package:NAME]`: each must be a
    /// `[gate:NAME]` of `defined`.
    pub(super) fn gate_names(
        &self,
        section: &Section<'a>,
        defined: &BTreeMap<String, Gate>,
    ) -> Result<Vec<String>, ConfigError> {
        let Some((text, line)) = self.get(section, "gates")? else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = Vec::new();
        for name in text.split_whitespace() {
            if !defined.contains_key(name) {
                let mut note = match defined.len() {
                    0 => "there is no `[gate:NAME]` section".to_string(),
                    _ => format!(
                        "gates defined: {}",
                        defined
                            .keys()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                if let Some(close) = schema::closest(name, defined.keys().map(String::as_str)) {
                    note = format!("did you mean `{close}`? {note}");
                }
                return Err(self
                    .error(
                        line,
                        format!(
                            "`gates` in `[{}]` names `{name}`, but there is no `[gate:{name}]` section",
                            section.name()
                        ),
                    )
                    .note(note));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{parse, Config, ConfigError};
    use crate::gate::{Check, NoData, Span};
    use std::time::Duration;

    const BASE: &str = "\
[environment]
deb_packages = foo bar
stages = test prod
[stage:test]
hosts = t1 t2
[stage:prod]
hosts = p1
";

    fn ok(extra: &str) -> Config {
        let config = parse(Path::new("/etc/deployer.ini"), &format!("{BASE}{extra}"))
            .unwrap_or_else(|e| panic!("{e}: {:?}", e.note));
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        config
    }

    fn err(extra: &str) -> ConfigError {
        parse(Path::new("/etc/deployer.ini"), &format!("{BASE}{extra}")).unwrap_err()
    }

    fn line_of(extra: &str, needle: &str) -> usize {
        format!("{BASE}{extra}")
            .lines()
            .position(|l| l.starts_with(needle))
            .expect("the line")
            + 1
    }

    const ERRORS: &str = "
[gate:errors]
kind = prometheus
url = http://prom:9090
query = sum(rate(errors{host=\"{host}\"}[1m]))
condition = < 0.01
interval = 5s
bake = 2m
failure_limit = 1
no_data = pause
";

    #[test]
    fn a_prometheus_gate_and_the_stage_and_package_that_name_it() {
        let extra = format!(
            "{ERRORS}[gate:health]\nkind = http\nurl = http://{{address}}:8080/health\n\
             status = 204\nbody = ok\n[gate:cmd]\nkind = command\ncommand = test -f /x # kept\n\
             count = 3\n[package:foo]\ngates = cmd\n"
        );
        let text = format!("{BASE}{extra}").replace(
            "[stage:prod]\n",
            "[stage:prod]\ngates = errors health\nbake = 10m\nbatch_bake = 0\n",
        );
        let config = parse(Path::new("/etc/deployer.ini"), &text).unwrap();
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let g = &config.gates["errors"];
        assert_eq!(g.interval, Duration::from_secs(5));
        assert_eq!(g.span, Some(Span::Bake(Duration::from_secs(120))));
        assert_eq!((g.failure_limit, g.no_data), (1, NoData::Pause));
        match &g.check {
            Check::Prometheus {
                url,
                query,
                condition,
                compare,
            } => {
                assert_eq!(url.as_str(), "http://prom:9090");
                assert!(query.per_host());
                assert_eq!(condition.unwrap().to_string(), "< 0.01");
                assert!(compare.is_none());
            }
            other => panic!("{other:?}"),
        }
        match &config.gates["health"].check {
            Check::Http { status, body, .. } => {
                assert_eq!((*status, body.as_deref()), (204, Some("ok")))
            }
            other => panic!("{other:?}"),
        }
        let cmd = &config.gates["cmd"];
        assert_eq!(cmd.span, Some(Span::Count(3)));
        assert_eq!(cmd.no_data, NoData::Fail, "no data is not success");
        assert_eq!(cmd.interval, crate::gate::DEFAULT_INTERVAL);
        let prod = config.stage("prod").unwrap();
        assert_eq!(prod.gates, ["errors", "health"]);
        assert_eq!(prod.bake, Some(Duration::from_secs(600)));
        assert_eq!(prod.batch_bake, Some(Duration::ZERO));
        let test = config.stage("test").unwrap();
        assert!(test.gates.is_empty() && test.bake.is_none());
        let foo: crate::package::PackageName = "foo".parse().unwrap();
        assert_eq!(config.package_gates[&foo], ["cmd"]);
    }

    #[test]
    fn compare_others() {
        let config = ok(
            "[gate:e]\nkind = prometheus\nurl = http://p\nquery = x{host=\"{host}\"}\n\
                         compare = others\nmax_ratio = 2\nmax_delta = 0.01\n",
        );
        match &config.gates["e"].check {
            Check::Prometheus {
                condition, compare, ..
            } => {
                assert!(condition.is_none(), "optional with compare");
                let c = compare.unwrap();
                assert_eq!((c.max_ratio, c.max_delta), (Some(2.0), Some(0.01)));
            }
            other => panic!("{other:?}"),
        }
        let e = err("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x\ncompare = others\n");
        assert!(e.message.contains("has no limit"), "{e}");
        let e = err("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x\ncondition = < 1\nmax_ratio = 2\n");
        assert!(e.message.contains("needs `compare = others`"), "{e}");
        let e = err("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x\ncompare = mean\n");
        assert!(e.message.contains("`compare`"), "{e}");
        let e = err("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x\ncompare = others\nmax_ratio = -1\n");
        assert!(e.message.contains("`max_ratio`"), "{e}");
    }

    #[test]
    fn bad_gates_are_errors_naming_the_line_and_what_is_accepted() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // (extra, the line's start, in the message, in the note)
            ("[gate:e]\nkind = graphite\n", "kind", "`kind`", "`prometheus`, `http`"),
            ("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x{host=\"{hots}\"}\ncondition = < 1\n", "query", "`{hots}`", "`{host}`"),
            ("[gate:e]\nkind = http\nurl = http://{hostname}/\n", "url", "`{hostname}`", "`{address}`"),
            ("[gate:e]\nkind = http\nurl = ftp://x/\n", "url", "not an `http://`", "accepted"),
            ("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x\ncondition = 0.01\n", "condition", "comparison", "`<`"),
            ("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x\ncondition = < one\n", "condition", "`one` is not a number", "`>= 0.99`"),
            ("[gate:e]\nkind = http\nurl = http://p\nquery = x\n", "query", "does not apply to a `http` gate", "`prometheus`"),
            ("[gate:e]\nkind = command\ncommand = true\nstatus = 200\n", "status", "does not apply", "`http`"),
            ("[gate:e]\nkind = http\nurl = http://p\nstatus = 99\n", "status", "out of range", "100 to 599"),
            ("[gate:e]\nkind = command\ncommand = true\nbake = 1m\ncount = 3\n", "count", "both `bake` and `count`", "keep one"),
            ("[gate:e]\nkind = command\ncommand = true\nno_data = ignore\n", "no_data", "`no_data`", "`pause`"),
            ("[gate:e]\nkind = command\ncommand = true\ninterval = 0\n", "interval", "`interval`", "accepted"),
            ("[gate:e]\nkind = command\ncommand = true\nfailure_limit = -1\n", "failure_limit", "`failure_limit`", "whole number"),
        ];
        for (extra, at, says, note) in cases {
            let e = err(extra);
            assert_eq!(e.line, Some(line_of(extra, at)), "{extra}: {e}");
            assert!(e.message.contains(says), "{extra}: {e}");
            let n = e.note.clone().unwrap_or_default();
            assert!(n.contains(note), "{extra}: {n}");
            assert!(
                e.to_string().starts_with("`/etc/deployer.ini` line "),
                "{e}"
            );
        }
    }

    #[test]
    fn missing_keys_and_undefined_gates() {
        let e = err("[gate:e]\nurl = http://p\n");
        assert!(e.message.contains("has no `kind` key"), "{e}");
        let e = err("[gate:e]\nkind = prometheus\nquery = x\ncondition = < 1\n");
        assert!(e.message.contains("has no `url` key"), "{e}");
        let e = err("[gate:e]\nkind = prometheus\nurl = http://p\nquery = x\n");
        assert!(e.message.contains("has no `condition` key"), "{e}");
        let e = err("[gate:e]\nkind = command\n");
        assert!(e.message.contains("has no `command` key"), "{e}");
        let extra = "[gate:errors]\nkind = command\ncommand = true\n";
        let text =
            format!("{BASE}{extra}").replace("[stage:prod]\n", "[stage:prod]\ngates = erors\n");
        let e = parse(Path::new("/etc/deployer.ini"), &text).unwrap_err();
        assert!(
            e.message
                .contains("names `erors`, but there is no `[gate:erors]` section"),
            "{e}"
        );
        assert!(e.note.unwrap().contains("did you mean `errors`?"));
        assert_eq!(
            e.line,
            Some(text.lines().position(|l| l.starts_with("gates")).unwrap() + 1)
        );
        let e = err("[package:foo]\ngates = nope\n");
        assert!(e.message.contains("`[package:foo]` names `nope`"), "{e}");
        let e = err("[gate:health_check]\nkind = command\ncommand = true\n");
        assert!(e.message.contains("names the health check"), "{e}");
        let e = err("[stage:x]\nhosts = a\n[gate:a b]\nkind = command\ncommand = true\n");
        assert!(e.message.contains("invalid gate name"), "{e}");
    }

    #[test]
    fn bakes_accept_zero_and_durations() {
        let text = BASE.replace(
            "[stage:prod]\n",
            "[stage:prod]\nbake = 90s\nbatch_bake = 0\n",
        );
        let config = parse(Path::new("/x"), &text).unwrap();
        let prod = config.stage("prod").unwrap();
        assert_eq!(prod.bake, Some(Duration::from_secs(90)));
        assert_eq!(prod.batch_bake, Some(Duration::ZERO));
        let text = BASE.replace("[stage:prod]\n", "[stage:prod]\nbake = soon\n");
        let e = parse(Path::new("/x"), &text).unwrap_err();
        assert!(e.message.contains("`bake`"), "{e}");
        assert!(e.note.unwrap().contains("`0`"));
    }
}
