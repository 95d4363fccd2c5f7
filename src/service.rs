//! The service that runs a package: its systemd units (or the generic
//! commands that stand for them on hosts without systemd), the commands
//! that restart it, read its state and show its logs, and the parsing of
//! what they print.
//!
//! Pure: this module builds [`RemoteCommand`]s and reads text; it runs
//! nothing. Every unit name it puts in a command was checked by
//! [`parse_unit`] and is quoted anyway; configuration commands
//! (`restart_command`, `logs_command`) are taken as written, like
//! `health_check`: the configuration file is trusted.

use std::fmt;

use crate::command::RemoteCommand;

/// How many of a failed host's last log lines the report and the history
/// keep.
pub const TAIL_LINES: usize = 20;

/// How many log lines of the canary are shown after its health check
/// (without `--follow-logs`).
pub const CANARY_LINES: usize = 100;

/// The longest log line kept, in characters.
pub const LINE_MAX: usize = 300;

/// The unit types systemd knows, as unit name suffixes.
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
    "device",
    "slice",
    "scope",
];

/// What `units` accepts, for the `note:` line of an error.
pub const ACCEPTED_UNIT: &str = "accepted: systemd unit names separated by spaces, such as \
    `nginx.service`, `fastpath` (for `fastpath.service`) or `worker@2.service`: \
    letters, digits and `:-_.\\`, one `@` before an instance, at most 255 characters, \
    ending in a unit type (.service, .socket, .timer, .target, ...) or none (.service)";

/// A systemd unit name, checked: `nginx.service`, `worker@2.service`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unit(String);

impl Unit {
    /// The full name, with its type suffix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Check one unit name as systemd does (`unit_name_is_valid`): a name
/// without a type gets `.service`, as `systemctl` gives it. Templates
/// (`worker@.service`) are refused: only an instance can be restarted.
/// The error says what is wrong with it.
pub fn parse_unit(text: &str) -> Result<Unit, String> {
    let has_type = text
        .rsplit_once('.')
        .is_some_and(|(_, suffix)| UNIT_TYPES.contains(&suffix));
    let name = if has_type {
        text.to_string()
    } else {
        format!("{text}.service")
    };
    let (prefix, _) = name.rsplit_once('.').expect("a suffix");
    if name.chars().count() > 255 {
        return Err("a unit name has at most 255 characters".into());
    }
    if prefix.is_empty() {
        return Err("the name before the unit type is empty".into());
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(format!(
            "`{}` is not allowed in a unit name",
            crate::text::one_line(&c.to_string())
        ));
    }
    match prefix.split_once('@') {
        Some((_, instance)) if instance.contains('@') => {
            Err("a unit name has at most one `@`".into())
        }
        Some(("", _)) => Err("the name before `@` is empty".into()),
        Some((_, "")) => Err(format!(
            "`{name}` is a template: name an instance, such as `{}`",
            name.replacen("@.", "@1.", 1)
        )),
        _ => Ok(Unit(name)),
    }
}

/// The `[package:NAME]` keys about the service that runs the package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    /// `units`: the systemd units that run the package.
    pub units: Vec<Unit>,
    /// `restart`: restart them after each install (default no).
    pub restart: bool,
    /// `restart_command`: restarts the service where there is no systemd;
    /// used instead of `systemctl restart` when set.
    pub restart_command: Option<String>,
    /// `logs_command`: prints the service's recent log lines where there is
    /// no journald; used instead of `journalctl` when set.
    pub logs_command: Option<String>,
}

impl Service {
    /// Whether anything about the service is configured.
    pub fn is_set(&self) -> bool {
        !self.units.is_empty() || self.restart_command.is_some() || self.logs_command.is_some()
    }

    /// Whether a deploy restarts the service.
    pub fn restarts(&self) -> bool {
        self.restart && (self.restart_command.is_some() || !self.units.is_empty())
    }

    /// Whether its logs can be read on the host (with systemd when it
    /// takes the units' journal).
    pub fn has_logs(&self) -> bool {
        self.logs_command.is_some() || !self.units.is_empty()
    }

    /// Whether the commands need systemd on the host.
    pub fn needs_systemd(&self) -> bool {
        !self.units.is_empty()
            && ((self.restarts() && self.restart_command.is_none()) || self.logs_command.is_none())
    }

    /// The plan's lines about the service: what is restarted, and whose
    /// logs the canary shows.
    pub fn describe(&self) -> String {
        let units = self
            .units
            .iter()
            .map(Unit::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let mut s = String::new();
        if self.restarts() {
            let what = match &self.restart_command {
                Some(_) => "`restart_command`".to_string(),
                None => units.clone(),
            };
            s.push_str(&format!(
                "Restart, on each host after its install, before its health check: {what}\n"
            ));
        } else if !self.units.is_empty() {
            s.push_str(&format!("Restart: no (`restart = no`) for {units}\n"));
        }
        if self.logs_command.is_some() {
            s.push_str("Service log shown on the canary: `logs_command`\n");
        } else if !self.units.is_empty() {
            s.push_str(&format!(
                "Service log shown on the canary: the journal of {units}\n"
            ));
        }
        s
    }

    /// The command that restarts the service.
    pub fn restart_command(&self) -> RemoteCommand {
        match &self.restart_command {
            Some(c) => RemoteCommand::from_config(c, "restart command"),
            None => RemoteCommand::new("systemctl")
                .arg("restart")
                .arg("--")
                .args(self.units.iter().map(Unit::as_str))
                .sudo()
                .named("systemctl restart"),
        }
    }

    /// The command that prints the units' state (`systemctl show`), read
    /// by [`parse_states`]; `None` without units.
    pub fn state_command(&self) -> Option<RemoteCommand> {
        (!self.units.is_empty()).then(|| {
            RemoteCommand::new("systemctl")
                .args(["show", "--property=Id,ActiveState,SubState", "--"])
                .args(self.units.iter().map(Unit::as_str))
                .named("systemctl show")
        })
    }

    /// The command that prints the service's log lines since `since`
    /// (seconds since the epoch, the host's clock), at most `lines` of
    /// them (the last ones); following them when `follow`. `logs_command`
    /// gets the time in `DEPLOYER_SINCE`. `None` when there are no logs.
    pub fn logs_command(&self, since: u64, lines: usize, follow: bool) -> Option<RemoteCommand> {
        if let Some(c) = &self.logs_command {
            let script = format!("DEPLOYER_SINCE={since}; export DEPLOYER_SINCE; {c}");
            return Some(RemoteCommand::from_config(&script, "logs command"));
        }
        if self.units.is_empty() {
            return None;
        }
        let mut cmd = RemoteCommand::new("journalctl");
        for unit in &self.units {
            cmd = cmd.arg("-u").arg(unit.as_str());
        }
        cmd = cmd
            .arg("--since")
            .arg(format!("@{since}"))
            .args(["--no-pager", "-o", "short-iso", "-n"])
            .arg(lines.to_string());
        if follow {
            cmd = cmd.arg("-f");
        }
        Some(cmd.sudo().named("journalctl"))
    }
}

/// Prints `SYSTEMD` when the host runs systemd: `systemctl` is there and
/// the host was booted with it (`/run/systemd/system`, as
/// `sd_booted()` checks).
pub fn systemd_probe() -> RemoteCommand {
    RemoteCommand::trusted(
        "if command -v systemctl >/dev/null 2>&1 && test -d /run/systemd/system; then echo SYSTEMD; \
         elif command -v systemctl >/dev/null 2>&1; then echo NOT-BOOTED; else echo NO-SYSTEMCTL; fi",
        "systemd probe",
    )
}

/// Why a host cannot serve the units, from [`systemd_probe`]'s output;
/// `None` when it runs systemd.
pub fn without_systemd(host: &str, probe: &str) -> Option<String> {
    let why = match probe.trim() {
        "SYSTEMD" => return None,
        "NOT-BOOTED" => "has `systemctl` but was not booted with systemd (no /run/systemd/system)",
        "NO-SYSTEMCTL" => "has no `systemctl`",
        other => {
            return Some(format!(
                "host `{host}`: cannot tell whether it runs systemd (the probe printed `{}`)",
                crate::text::clipped_line(other, 80)
            ))
        }
    };
    Some(format!(
        "host `{host}` does not run systemd: it {why}; set `restart_command` and `logs_command` in its `[package:NAME]` section for such hosts"
    ))
}

/// The time on the host, in seconds since the epoch.
pub fn clock_command() -> RemoteCommand {
    RemoteCommand::new("date").arg("+%s")
}

/// The state of one unit, as `systemctl show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    /// `Id`: the unit's name.
    pub unit: String,
    /// `ActiveState`: `active`, `failed`, `activating`...
    pub active: String,
    /// `SubState`: `running`, `exited`, `dead`...
    pub sub: String,
}

impl UnitState {
    /// Whether the unit runs (or is starting: a restart just happened).
    pub fn is_up(&self) -> bool {
        matches!(self.active.as_str(), "active" | "activating" | "reloading")
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {} ({})", self.unit, self.active, self.sub)
    }
}

/// The units' states from `systemctl show -p Id,ActiveState,SubState`
/// (one block of `KEY=value` lines per unit, blocks apart by a blank
/// line). Host text: every value is made one safe line and clipped.
pub fn parse_states(text: &str) -> Vec<UnitState> {
    let safe = |v: &str| crate::text::clipped_line(v, 80);
    text.split("\n\n")
        .filter_map(|block| {
            let mut state = UnitState {
                unit: String::new(),
                active: String::new(),
                sub: String::new(),
            };
            for line in block.lines() {
                match line.split_once('=') {
                    Some(("Id", v)) => state.unit = safe(v),
                    Some(("ActiveState", v)) => state.active = safe(v),
                    Some(("SubState", v)) => state.sub = safe(v),
                    _ => {}
                }
            }
            (!state.unit.is_empty()).then_some(state)
        })
        .collect()
}

/// The last `n` lines of `text` (host output), each made one safe line
/// and clipped to [`LINE_MAX`]; blank lines left out.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| crate::text::clipped_line(l.trim_end_matches('\r'), LINE_MAX))
        .collect()
}

/// `check`, with `logs` running beside it in the background: the logs on
/// stdout, the check's own output on stderr, and the check's exit status.
/// The logs command runs in a session of its own (`setsid`), so that once
/// the check is over (and a second for the last lines to arrive) its
/// whole process group is stopped, `sudo` and pipes included. For
/// `--follow-logs`.
pub fn beside(check: &str, logs: &RemoteCommand) -> RemoteCommand {
    let script = format!(
        "setsid sh -c {} </dev/null & deployer_logs=$!; {{ {check}\n}} >&2; deployer_status=$?; \
         sleep 1; kill -TERM -$deployer_logs 2>/dev/null || kill -TERM $deployer_logs 2>/dev/null; \
         wait $deployer_logs 2>/dev/null; exit $deployer_status",
        crate::command::quote(logs.as_str())
    );
    RemoteCommand::from_config(&script, "health check")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(s: &str) -> Unit {
        parse_unit(s).unwrap()
    }

    #[test]
    fn unit_names_follow_systemd() {
        assert_eq!(unit("nginx.service").as_str(), "nginx.service");
        assert_eq!(unit("fastpath").as_str(), "fastpath.service");
        assert_eq!(unit("worker@2.service").as_str(), "worker@2.service");
        assert_eq!(unit("app.socket").as_str(), "app.socket");
        assert_eq!(unit("a-b_c:d\\x2d.timer").as_str(), "a-b_c:d\\x2d.timer");
        // an unknown type is part of the name: `foo.bar.service`
        assert_eq!(unit("foo.bar").as_str(), "foo.bar.service");
        for bad in [
            "a b",
            "x;reboot",
            "$(id)",
            "a/b.service",
            ".service",
            "@x.service",
            "a@b@c.service",
            "é.service",
        ] {
            assert!(parse_unit(bad).is_err(), "{bad}");
        }
        assert!(parse_unit("worker@.service")
            .unwrap_err()
            .contains("`worker@1.service`"));
        assert!(parse_unit(&"a".repeat(250)).is_err());
        assert!(parse_unit(&"a".repeat(247)).is_ok());
        assert!(parse_unit("a\u{1b}[2J").unwrap_err().contains("\\x1b"));
    }

    fn systemd() -> Service {
        Service {
            units: vec![unit("fastpath"), unit("worker@1")],
            restart: true,
            ..Service::default()
        }
    }

    #[test]
    fn commands_quote_and_name_the_units() {
        let s = systemd();
        assert_eq!(
            s.restart_command().as_str(),
            "sudo -n systemctl restart -- fastpath.service worker@1.service"
        );
        assert_eq!(
            s.state_command().unwrap().as_str(),
            "systemctl show --property=Id,ActiveState,SubState -- fastpath.service worker@1.service"
        );
        assert_eq!(
            s.logs_command(1700000000, 20, false).unwrap().as_str(),
            "sudo -n journalctl -u fastpath.service -u worker@1.service --since @1700000000 --no-pager -o short-iso -n 20"
        );
        assert!(s
            .logs_command(5, 20, true)
            .unwrap()
            .as_str()
            .ends_with(" -n 20 -f"));
        assert!(s.needs_systemd());
        assert!(s.restarts());
        assert_eq!(
            s.describe(),
            "Restart, on each host after its install, before its health check: fastpath.service worker@1.service\n\
             Service log shown on the canary: the journal of fastpath.service worker@1.service\n"
        );
        // a unit with a backslash is quoted
        let odd = Service {
            units: vec![unit("a\\x2db")],
            ..Service::default()
        };
        assert!(odd
            .state_command()
            .unwrap()
            .as_str()
            .ends_with("-- 'a\\x2db.service'"));
    }

    #[test]
    fn generic_commands_replace_systemd() {
        let s = Service {
            units: vec![unit("fastpath")],
            restart: true,
            restart_command: Some("/etc/init.d/fastpath restart".into()),
            logs_command: Some("tail -n 50 /var/log/fastpath.log".into()),
        };
        assert!(!s.needs_systemd());
        let r = s.restart_command();
        assert_eq!(r.as_str(), "/etc/init.d/fastpath restart");
        assert_eq!(r.label(), "restart command");
        let l = s.logs_command(42, 20, true).unwrap();
        assert_eq!(
            l.as_str(),
            "DEPLOYER_SINCE=42; export DEPLOYER_SINCE; tail -n 50 /var/log/fastpath.log"
        );
        // configuration text is never shown in logs
        assert!(!l.for_log().contains("tail"));
        let off = Service {
            restart: false,
            ..s.clone()
        };
        assert!(!off.restarts());
        assert!(!Service::default().is_set());
        assert!(Service::default().logs_command(1, 1, false).is_none());
    }

    #[test]
    fn systemd_absence_is_worded() {
        assert_eq!(without_systemd("h", "SYSTEMD\n"), None);
        let no = without_systemd("web1", "NO-SYSTEMCTL\n").unwrap();
        assert!(no.contains("host `web1`"), "{no}");
        assert!(no.contains("`restart_command`") && no.contains("`logs_command`"));
        let not_booted = without_systemd("web1", "NOT-BOOTED").unwrap();
        assert!(not_booted.contains("/run/systemd/system"), "{not_booted}");
        let odd = without_systemd("web1", "\u{1b}]0;x").unwrap();
        assert!(odd.contains("\\x1b"), "{odd}");
    }

    #[test]
    fn states_are_parsed_and_sanitised() {
        let text = "Id=fastpath.service\nActiveState=active\nSubState=running\n\n\
                    ActiveState=failed\nSubState=failed\nId=worker@1.service\n";
        let states = parse_states(text);
        assert_eq!(states.len(), 2);
        assert!(states[0].is_up());
        assert_eq!(
            states[0].to_string(),
            "fastpath.service is active (running)"
        );
        assert!(!states[1].is_up());
        assert_eq!(states[1].unit, "worker@1.service");
        let evil = parse_states("Id=x\u{1b}[2J\nActiveState=active\n");
        assert_eq!(evil[0].unit, "x\\x1b[2J");
        assert!(parse_states("").is_empty());
    }

    #[test]
    fn tails_are_bounded() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let tail = last_lines(&text, TAIL_LINES);
        assert_eq!(tail.len(), 20);
        assert_eq!(tail[0], "line 11");
        assert_eq!(tail[19], "line 30");
        let long = last_lines(&format!("{}\n\n\u{7}bell\n", "x".repeat(1000)), 5);
        assert_eq!(long.len(), 2);
        assert!(long[0].ends_with("(700 more characters)"));
        assert_eq!(long[1], "\\x07bell");
    }

    #[test]
    fn logs_run_beside_the_check() {
        let s = systemd();
        let logs = s.logs_command(7, 100, true).unwrap();
        let c = beside("curl -fs localhost/health", &logs);
        assert!(
            c.as_str().starts_with("setsid sh -c 'sudo -n journalctl "),
            "{c}"
        );
        assert!(c.as_str().contains("{ curl -fs localhost/health\n} >&2"));
        assert!(c.as_str().ends_with("exit $deployer_status"));
        assert_eq!(c.label(), "health check");
    }
}
