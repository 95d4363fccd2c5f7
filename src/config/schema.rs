//! The one table of deployer.ini's sections and their keys ([`SECTIONS`]),
//! and the did-you-mean hints drawn from it.
//!
//! A new section kind, or a new key, is one entry here (plus the code in
//! `mod.rs` that reads its value into [`super::Config`]). This module only
//! names things; it reads no text and checks no values.

/// How a key's value is written, which decides what the reader accepts
/// around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// One value on one line (a number, a path, `yes`/`no`...).
    Single,
    /// Items separated by whitespace; may go on in indented lines.
    List,
    /// A shell command, kept as written (`#` and `;` are the shell's).
    Command,
}

/// One key of a section kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key, in lower case.
    pub name: &'static str,
    /// How its value is written.
    pub form: Form,
    /// Its default (`required` when it has none and must be given).
    pub default: &'static str,
    /// What it sets, in one line (deployer.ini(5) and docs/reference.md).
    pub meaning: &'static str,
}

/// One kind of section: `[KIND]`, or `[KIND:NAME]` when `named`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionKind {
    /// `environment`, `stage`, ...
    pub kind: &'static str,
    /// Whether headers carry a name after a `:` (`[stage:prod]`).
    pub named: bool,
    /// The keys it accepts.
    pub keys: &'static [Key],
}

const fn single(name: &'static str, default: &'static str, meaning: &'static str) -> Key {
    Key {
        name,
        form: Form::Single,
        default,
        meaning,
    }
}

const fn list(name: &'static str, default: &'static str, meaning: &'static str) -> Key {
    Key {
        name,
        form: Form::List,
        default,
        meaning,
    }
}

const fn command(name: &'static str, default: &'static str, meaning: &'static str) -> Key {
    Key {
        name,
        form: Form::Command,
        default,
        meaning,
    }
}

/// `[environment]`: the packages, the stages, and settings for every host.
pub const ENVIRONMENT: SectionKind = SectionKind {
    kind: "environment",
    named: false,
    keys: &[
        single("badges_path", "none", "the directory on every host where `refresh-badges` writes `PKG.svg`"),
        list("deb_packages", "required", "the packages managed, in display order"),
        list("stages", "required", "the stages, least critical first"),
        single("ssh_user", "`User` from the ssh config, else your account's name (as OpenSSH: not `$USER`)", "the login user for every host"),
        single("ssh_port", "`Port` from the ssh config, else 22", "the port for every host"),
        list("ssh_identity_file", "none", "extra private keys, tried after the agent, before `IdentityFile`"),
        single("ssh_config", "`~/.ssh/config`, then `/etc/ssh/ssh_config`", "the OpenSSH client configuration to read instead (like `ssh -F`)"),
        single("ssh_proxy_jump", "`ProxyJump` from the ssh config", "jump hosts, `[user@]host[:port]` separated by commas, first hop first, or `none` (like `ssh -J`)"),
        single("known_hosts", "`UserKnownHostsFile`, else `~/.ssh/known_hosts`", "the known hosts file for host keys (and where accepted new keys are recorded)"),
        single("accept_new_host_keys", "no", "record the keys of hosts never seen before (changed keys are still refused)"),
        single("connect_timeout", "`ConnectTimeout`, else 10s", "TCP connect, SSH handshake and login"),
        single("command_timeout", "30s", "one read-only command (`dpkg-query`, `apt-cache`)"),
        single("deploy_timeout", "10m", "one host's `apt-get` run"),
        single("lock_timeout", "60s", "how long apt waits for a dpkg or lists lock held by someone else"),
        single("lock_expiry", "90s", "a deploy lock frees itself this long after its holder's last heartbeat"),
        single("parallelism", "64", "hosts contacted at once"),
        single("max_startups", "8", "connections starting (not yet logged in) at once to one SSH server"),
        single("history_file", "`deployer-history.jsonl` beside the configuration", "the local audit log"),
        single("batch_size", "1", "hosts changed at once after the first: a count, or a percentage of the hosts taking part (`25%`, rounded up)"),
        single("rollback_on_failure", "no", "put changed hosts back when a rollout fails"),
        single("badges_after_deploy", "yes", "refresh the badges of the hosts a deploy changed, over its connections (only with `badges_path`)"),
        single("badges_png", "no", "also write `PKG.png` beside every SVG badge (as `refresh-badges --png`)"),
        single("dashboard_changes", "6h", "the window of the dashboard's \"Last changes\" (the hosts' timeline, two short reads per host and refresh), e.g. `2h`, `1d`, or `no`"),
        single("dashboard_refresh", "5m", "how often the dashboard page (`refresh-badges --output`) reloads itself; older than three of these, it shows itself stale; `0` = never"),
    ],
};

/// `[stage:NAME]`: one stage of `stages`.
pub const STAGE: SectionKind = SectionKind {
    kind: "stage",
    named: true,
    keys: &[list("hosts", "required", "`name`, `user@name`, `name:port`, `[2001:db8::1]:port`, or `local`"), single("critical", "yes for every stage but the first", "ask for confirmation before deploying"), single("ssh_proxy_jump", "`ProxyJump` from the ssh config", "jump hosts, `[user@]host[:port]` separated by commas, first hop first, or `none` (like `ssh -J`)"), list("gates", "none", "the `[gate:NAME]` sections each batch of a forward deploy or promotion must pass"), single("bake", "5m (with gates)", "how long the canary must pass its gates before the next batch starts (`0`: one evaluation)"), single("batch_bake", "0 (one evaluation)", "how long each later batch must pass its gates before the next one starts"), single("batch_size", "the `[environment]` one", "this stage's batch size: a count, or a percentage of the hosts taking part (`25%`, rounded up)"), single("max_failures", "0", "hosts after the canary that may fail before the rollout halts: a count, or a percentage of the hosts taking part (`10%`, rounded down); 0 halts on the first failure"), single("alert_matchers", "none", "Alertmanager matchers added to `[alerts] matchers` for this stage (needs `[alerts]`)"),
        list("deploy_windows", "none (any time)", "when forward deploys and promotions go, e.g. `Mon-Thu 09:00-16:00, Fri 09:00-12:00` (needs `timezone`)"),
        list("freeze_dates", "none", "dates closed all day, e.g. `2026-12-24..2027-01-02, 2027-04-05` (needs `timezone`)"),
        single("timezone", "none", "the IANA time zone of `deploy_windows` and `freeze_dates`, e.g. `Europe/Rome`"), single("approvals", "0", "how many people other than the operator must sign a plan (`deployer approve FILE`) before a forward deploy or promotion"), single("allowed_signers", "none (required with `approvals`)", "the OpenSSH allowed_signers file the approvals are verified against, relative to deployer.ini's directory")],
};

/// `[package:NAME]`: options of one package of `deb_packages`.
pub const PACKAGE: SectionKind = SectionKind {
    kind: "package",
    named: true,
    keys: &[
        command("health_check", "none", "shell command run on each host after its install"),
        single("hold", "no", "pin the deployed version with `apt-mark hold`; deploys release and set it"),
        list("units", "none", "systemd units that run the package (`fastpath` is `fastpath.service`)"),
        single("restart", "no", "restart the units on each host after its install, before the health check"),
        command("restart_command", "none", "shell command that restarts the service, instead of `systemctl` (hosts without systemd)"),
        command("logs_command", "none", "shell command printing the service's recent log lines, instead of `journalctl`"),
        single("alert_matchers", "none", "Alertmanager matchers added to `[alerts] matchers` for deploys of this package (needs `[alerts]`)"),
        list("gates", "none", "`[gate:NAME]` sections this package's deploys must pass, added to the stage's"),
    ],
};

/// `[gate:NAME]`: evidence a canary (and each later batch) must show.
pub const GATE: SectionKind = SectionKind {
    kind: "gate",
    named: true,
    keys: &[
        single("kind", "required", "`prometheus` (a PromQL query), `http` (a URL fetched from this machine) or `command` (a shell command on the host)"),
        command("url", "required (prometheus, http)", "the Prometheus server, or the URL to fetch; `{host}`, `{address}`, `{stage}`, `{package}`, `{version}` are filled in (percent-encoded)"),
        command("query", "required (prometheus)", "an instant PromQL query giving one series for the host; placeholders as in `url`, escaped for PromQL strings"),
        single("condition", "required (prometheus) unless `compare`", "what the host's value must satisfy: `<`, `<=`, `>`, `>=`, `==` or `!=` and a number, e.g. `< 0.01`"),
        single("compare", "none", "`others` (prometheus): the host's value against the mean of the stage's other hosts (higher is worse)"),
        single("max_ratio", "none", "with `compare`: the host's value may be at most this many times the others' mean"),
        single("max_delta", "none", "with `compare`: the host's value may be at most this much above the others' mean"),
        single("status", "200", "(http) the HTTP status expected"),
        command("body", "none", "(http) text the answer's body must contain"),
        command("command", "required (command)", "(command) shell command run on each host, which must exit 0"),
        single("interval", "30s", "time between two evaluations"),
        single("bake", "the stage's `bake`", "how long this gate must stay good on the canary (`0`: once); not with `count`"),
        single("count", "none", "evaluations the canary must pass, `interval` apart, instead of `bake`"),
        single("failure_limit", "0", "failed evaluations tolerated before the gate fails"),
        single("no_data", "fail", "what an evaluation without data counts as: `fail`, `pause` (ask the operator; fail without a terminal) or `pass`"),
    ],
};

/// `[notify]`: who hears about deploys (a webhook, a local command).
pub const NOTIFY: SectionKind = SectionKind {
    kind: "notify",
    named: false,
    keys: &[
        single("webhook_url", "none", "`http://` or `https://` URL that receives a POST for each event"),
        single("webhook_format", "`text`", "`text` (plain-text body, ntfy style) or `slack` (JSON `{\"text\": ...}`)"),
        single("webhook_allow_http", "no", "accept an `http://` `webhook_url`, which carries its token in clear (refused otherwise)"),
        command("notify_command", "none", "shell command run here for each event, the history record as JSON on stdin"),
        list("notify_on", "all", "events announced: `start success failure interrupt` (deploys, promotions, rollbacks), `rollback`, `freeze unfreeze unlock`; a record goes out when any of its events is listed"),
    ],
};

/// `[alerts]`: the Alertmanager whose alerts hold forward deploys.
pub const ALERTS: SectionKind = SectionKind {
    kind: "alerts",
    named: false,
    keys: &[
        single("alertmanager_url", "required", "Alertmanager's base URL, `http://` or `https://` (e.g. `http://alertmanager:9093`)"),
        single("matchers", "none (every alert)", "Alertmanager matchers, comma-separated, that an active alert must meet to hold deploys, e.g. `severity=\"page\", service=~\"fastpath.*\"`"),
        single("on_unreachable", "refuse", "`refuse` or `allow`: what a deploy does when Alertmanager cannot be asked"),
    ],
};

/// Every section kind deployer reads.
pub const SECTIONS: &[SectionKind] = &[ENVIRONMENT, STAGE, PACKAGE, NOTIFY, ALERTS, GATE];

impl SectionKind {
    /// How the header is shown in messages: `[environment]`, `[stage:NAME]`.
    pub fn header(&self) -> String {
        if self.named {
            format!("[{}:NAME]", self.kind)
        } else {
            format!("[{}]", self.kind)
        }
    }

    /// The section name of the one called `name` of this named kind:
    /// `stage:prod`.
    pub fn section_name(&self, name: &str) -> String {
        debug_assert!(self.named);
        format!("{}:{name}", self.kind)
    }

    /// The key called `name` (lower case), if this kind has it.
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// The names of its keys.
    pub fn key_names(&self) -> impl Iterator<Item = &'static str> + Clone {
        self.keys.iter().map(|k| k.name)
    }
}

/// The kind of the section called `name`, and the name after `KIND:` for
/// named kinds; `None` for a section deployer does not know.
pub fn kind_of(name: &str) -> Option<(&'static SectionKind, Option<&str>)> {
    SECTIONS.iter().find_map(|kind| {
        if kind.named {
            let rest = name.strip_prefix(kind.kind)?.strip_prefix(':')?;
            Some((kind, Some(rest)))
        } else {
            (name == kind.kind).then_some((kind, None))
        }
    })
}

/// Where a key deployer knows belongs, e.g. `[stage:NAME]`, for "wrong
/// section" hints.
pub fn home_of_key(key: &str) -> Option<String> {
    SECTIONS
        .iter()
        .find(|kind| kind.key(key).is_some())
        .map(SectionKind::header)
}

/// "`[environment]`, `[stage:NAME]`, `[package:NAME]` and `[notify]`".
pub fn known_sections() -> String {
    let headers: Vec<String> = SECTIONS
        .iter()
        .map(|kind| format!("`{}`", kind.header()))
        .collect();
    match headers.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The section deployer probably meant by the unknown `name`, as a header
/// (`[stage:test]` for `[stages:test]`).
pub fn meant_section(name: &str) -> Option<String> {
    match name.split_once(':') {
        Some((kind, rest)) => {
            let named = SECTIONS.iter().filter(|k| k.named).map(|k| k.kind);
            closest(kind, named).map(|k| format!("[{k}:{rest}]"))
        }
        None => {
            let plain = SECTIONS.iter().filter(|k| !k.named).map(|k| k.kind);
            closest(name, plain).map(|k| format!("[{k}]"))
        }
    }
}

/// The known name closest to a mistyped one (see [`crate::suggest`]).
pub fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    crate::suggest::closest(word, candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_only_for_close_words() {
        let keys = ["hosts", "critical"];
        assert_eq!(closest("host", keys.into_iter()), Some("hosts"));
        assert_eq!(closest("HOSTS", keys.into_iter()), Some("hosts"));
        assert_eq!(closest("critcal", keys.into_iter()), Some("critical"));
        assert_eq!(closest("users", keys.into_iter()), None);
        assert_eq!(closest("x", keys.into_iter()), None);
        assert_eq!(closest("hsots", keys.into_iter()), Some("hosts"));
    }

    #[test]
    fn kinds_are_found_by_header() {
        assert_eq!(
            kind_of("environment").map(|(k, n)| (k.kind, n)),
            Some(("environment", None))
        );
        assert_eq!(
            kind_of("stage:prod").map(|(k, n)| (k.kind, n)),
            Some(("stage", Some("prod")))
        );
        assert_eq!(
            kind_of("Environment"),
            None,
            "section names keep their case"
        );
        assert_eq!(kind_of("stage"), None);
        assert_eq!(kind_of("stages:x"), None);
        assert_eq!(home_of_key("hosts").as_deref(), Some("[stage:NAME]"));
        assert_eq!(home_of_key("nope"), None);
        assert_eq!(meant_section("stages:x").as_deref(), Some("[stage:x]"));
        assert_eq!(
            meant_section("enviroment").as_deref(),
            Some("[environment]")
        );
        assert_eq!(meant_section("global"), None);
        assert_eq!(meant_section("notfy").as_deref(), Some("[notify]"));
        assert_eq!(
            known_sections(),
            "`[environment]`, `[stage:NAME]`, `[package:NAME]`, `[notify]`, `[alerts]` and `[gate:NAME]`"
        );
    }

    /// Every key is lower case (lookups are), and no kind lists a key twice.
    #[test]
    fn the_table_is_consistent() {
        for kind in SECTIONS {
            for (i, key) in kind.keys.iter().enumerate() {
                assert_eq!(key.name, key.name.to_lowercase());
                assert!(
                    kind.keys[..i].iter().all(|k| k.name != key.name),
                    "{}",
                    key.name
                );
            }
        }
    }
}
