//! The text `deployer init` writes, and the reading of an Ansible
//! inventory (the JSON of `ansible-inventory --list`) into stages and
//! hosts. Pure: values in, text out; finding, running and writing files is
//! `app::init`'s job.
//!
//! The text is meant to be read and edited by a person: every key it sets
//! is explained in a comment above it, and it must load as written
//! (`config::parse`), so `deployer` works in the directory at once.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The stages of a new configuration, in order, each with its hosts as
/// `deployer.ini` writes them (`local`, `name`, `user@name:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageHosts {
    /// The stage name (an Ansible group name, for an inventory).
    pub name: String,
    /// The hosts, in order, each once.
    pub hosts: Vec<String>,
}

/// Why an inventory gives no stages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InventoryError {
    /// What is wrong, naming the group or host.
    pub message: String,
    /// What would be accepted, or what to do.
    pub note: String,
}

impl InventoryError {
    fn new(message: impl Into<String>, note: impl Into<String>) -> Self {
        InventoryError {
            message: message.into(),
            note: note.into(),
        }
    }
}

/// The stages of a configuration that needs no SSH: `test`, `staging` and
/// `prod`, each on `local` (this machine).
pub fn local_stages() -> Vec<StageHosts> {
    ["test", "staging", "prod"]
        .iter()
        .map(|name| StageHosts {
            name: (*name).to_owned(),
            hosts: vec!["local".to_owned()],
        })
        .collect()
}

/// Groups that are Ansible's own, never a stage by default.
const IMPLICIT_GROUPS: &[&str] = &["all", "ungrouped"];

/// Read the JSON of `ansible-inventory --list` into one stage per group:
/// the groups named in `wanted`, in that order, else every group directly
/// under `all`, in the inventory's order, except `ungrouped`. A
/// group's hosts include those of its child groups. `ansible_host`,
/// `ansible_user` and `ansible_port` (or their `ansible_ssh_*` forms)
/// become `user@host:port`; `ansible_connection=local` becomes `local`.
pub fn stages_from_inventory(
    json: &str,
    wanted: Option<&[String]>,
) -> Result<Vec<StageHosts>, InventoryError> {
    let root: Value = serde_json::from_str(json).map_err(|e| {
        InventoryError::new(
            format!("the inventory is not valid JSON: {e}"),
            "give an inventory file Ansible reads, or the output of \
             `ansible-inventory -i INVENTORY --list` saved to a file",
        )
    })?;
    let Some(groups) = root.as_object() else {
        return Err(InventoryError::new(
            "the inventory JSON is not an object of groups",
            "expected the output of `ansible-inventory -i INVENTORY --list`",
        ));
    };
    let hostvars = groups
        .get("_meta")
        .and_then(|m| m.get("hostvars"))
        .and_then(Value::as_object);
    let names: Vec<String> = match wanted {
        Some(w) => w.to_vec(),
        None => default_groups(groups),
    };
    if names.is_empty() {
        return Err(InventoryError::new(
            "the inventory has no groups besides `all` and `ungrouped`",
            "put the hosts of each stage in a group of its own (one group per stage), \
             or name the groups with `--stages`",
        ));
    }
    let mut stages = Vec::new();
    for name in &names {
        if !groups.contains_key(name.as_str()) || name == "_meta" {
            return Err(InventoryError::new(
                format!("group `{name}` is not in the inventory"),
                format!("its groups: {}", list(&known_groups(groups))),
            ));
        }
        let mut members = Vec::new();
        collect_hosts(groups, name, &mut members, &mut Vec::new());
        if members.is_empty() {
            return Err(InventoryError::new(
                format!("group `{name}` has no hosts"),
                "every stage needs at least one host; leave the group out with `--stages`",
            ));
        }
        let mut hosts: Vec<String> = Vec::new();
        for member in &members {
            let vars = hostvars.and_then(|h| h.get(member.as_str()));
            let entry = host_entry(member, vars).map_err(|why| {
                InventoryError::new(
                    format!("host `{member}` of group `{name}`: {why}"),
                    "fix its variables in the inventory, or edit the written file",
                )
            })?;
            if !hosts.contains(&entry) {
                hosts.push(entry);
            }
        }
        stages.push(StageHosts {
            name: name.clone(),
            hosts,
        });
    }
    check_each_host_in_one_stage(&stages)?;
    Ok(stages)
}

/// The groups directly under `all`, in the inventory's order, except
/// `ungrouped`; without `all`, every group (in name order, as JSON objects
/// are read). Nested groups are left out: they would put a host in its
/// group and in every parent, and deployer puts a host in one stage only
/// (`--stages` chooses them).
fn default_groups(groups: &Map<String, Value>) -> Vec<String> {
    let top = if groups.contains_key("all") {
        children(groups, "all")
    } else {
        known_groups(groups)
    };
    top.into_iter()
        .filter(|g| !IMPLICIT_GROUPS.contains(&g.as_str()))
        .collect()
}

fn children(groups: &Map<String, Value>, group: &str) -> Vec<String> {
    string_list(groups.get(group).and_then(|g| g.get("children")))
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The group names of the inventory, for an error note.
fn known_groups(groups: &Map<String, Value>) -> Vec<String> {
    groups
        .keys()
        .filter(|k| k.as_str() != "_meta")
        .cloned()
        .collect()
}

/// The hosts of `group` and of its children, in order, each once.
fn collect_hosts(
    groups: &Map<String, Value>,
    group: &str,
    out: &mut Vec<String>,
    seen: &mut Vec<String>,
) {
    if seen.iter().any(|g| g == group) {
        return; // a cycle Ansible would refuse; do not loop
    }
    seen.push(group.to_owned());
    for host in string_list(groups.get(group).and_then(|g| g.get("hosts"))) {
        if !out.contains(&host) {
            out.push(host);
        }
    }
    for child in children(groups, group) {
        collect_hosts(groups, &child, out, seen);
    }
}

/// `user@host:port` from the inventory name and its variables.
fn host_entry(name: &str, vars: Option<&Value>) -> Result<String, String> {
    let var = |keys: &[&str]| -> Result<Option<String>, String> {
        for key in keys {
            match vars.and_then(|v| v.get(*key)) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => return Ok(Some(s.clone())),
                Some(Value::Number(n)) => return Ok(Some(n.to_string())),
                Some(other) => {
                    return Err(format!("`{key}` is {other}, expected a string or a number"))
                }
            }
        }
        Ok(None)
    };
    if var(&["ansible_connection"])?.as_deref() == Some("local") {
        return Ok("local".to_owned());
    }
    let host = var(&["ansible_host", "ansible_ssh_host"])?.unwrap_or_else(|| name.to_owned());
    let user = var(&["ansible_user", "ansible_ssh_user"])?;
    let port = var(&["ansible_port", "ansible_ssh_port"])?;
    let mut entry = String::new();
    if let Some(user) = user {
        entry.push_str(&user);
        entry.push('@');
    }
    // an IPv6 address goes in brackets, as in ssh's `-J` and deployer.ini
    if host.contains(':') && !host.starts_with('[') {
        let _ = write!(entry, "[{host}]");
    } else {
        entry.push_str(&host);
    }
    if let Some(port) = port {
        let _ = write!(entry, ":{port}");
    }
    Ok(entry)
}

/// deployer's rule, checked here so the error names the groups: a host
/// (other than `local`) belongs to one stage only.
fn check_each_host_in_one_stage(stages: &[StageHosts]) -> Result<(), InventoryError> {
    for (i, a) in stages.iter().enumerate() {
        for b in &stages[i + 1..] {
            if let Some(host) = a
                .hosts
                .iter()
                .find(|h| h.as_str() != "local" && b.hosts.contains(h))
            {
                return Err(InventoryError::new(
                    format!(
                        "host `{host}` is in both group `{}` and group `{}`",
                        a.name, b.name
                    ),
                    "deployer puts a host in one stage only: choose groups that do not \
                     overlap with `--stages GROUP,GROUP,...`",
                ));
            }
        }
    }
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the stages of a new file came from, for its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `deployer init`: every stage on this machine.
    Local,
    /// `deployer init --from-ansible INVENTORY`.
    Ansible(String),
}

/// The package a new file lists until the user names their own: present
/// on every Debian system, so the status view shows a real version at once.
pub const PLACEHOLDER_PACKAGE: &str = "base-files";

/// The commented `deployer.ini` for `stages` and `packages` (the
/// placeholder when empty).
pub fn ini_text(stages: &[StageHosts], packages: &[String], origin: &Origin) -> String {
    let mut t = String::new();
    let stage_names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    let packages = if packages.is_empty() {
        PLACEHOLDER_PACKAGE.to_owned()
    } else {
        packages.join(" ")
    };
    t.push_str("# deployer.ini, written by `deployer init`");
    match origin {
        Origin::Local => t.push_str(".\n"),
        Origin::Ansible(inv) => {
            let _ = writeln!(t, " from the Ansible inventory `{inv}`.");
        }
    }
    t.push_str(
        "#\n\
         # Comments are whole lines starting with `#` or `;`; there are no comments\n\
         # after a value. Lists are separated by spaces. Every key is described in\n\
         # `man deployer.ini`, deployer.ini.example and docs/reference.md.\n\
         #\n\
         # deployer only reads this file while it belongs to you (or root) and nobody\n\
         # else can write to it: it decides which commands run on your hosts.\n\
         #\n\
         # Try it: `deployer` shows which version of each package runs on each stage;\n\
         # `deployer hosts` shows how each host will be reached.\n\
         \n\
         [environment]\n\
         \n\
         # deb_packages: the Debian packages you deploy, in display order.\n",
    );
    if packages == PLACEHOLDER_PACKAGE {
        let _ = writeln!(
            t,
            "# `{PLACEHOLDER_PACKAGE}` is on every Debian host, so `deployer` shows something\n\
             # at once: replace it with your own packages."
        );
    }
    let _ = writeln!(t, "deb_packages = {packages}\n");
    let _ = writeln!(
        t,
        "# stages: the stages a package goes through, least critical first. Each\n\
         # needs a [stage:NAME] section below. Deploying to any stage but the first\n\
         # asks for confirmation (`critical = no` in its section turns that off).\n\
         stages = {}\n",
        stage_names.join(" ")
    );
    t.push_str(
        "# Optional settings, with their defaults (uncomment to change):\n\
         # ssh_user = deploy\n\
         # parallelism = 64\n\
         # batch_size = 1\n\
         # rollback_on_failure = no\n\
         # badges_path = /var/www/package_badges\n\
         \n\
         # --- One section per stage. hosts: `name`, `user@name`, `name:port`,\n\
         # `user@name:port` or `[IPv6]:port`, separated by spaces; SSH options\n\
         # belong in ~/.ssh/config under a `Host` entry. `local` is this machine,\n\
         # without SSH.\n",
    );
    for (i, stage) in stages.iter().enumerate() {
        let _ = writeln!(t, "\n[stage:{}]", stage.name);
        if origin == &Origin::Local {
            let _ = writeln!(
                t,
                "# hosts = {n}-1.example.org deploy@{n}-2.example.org:2222",
                n = stage.name
            );
        }
        let _ = writeln!(t, "hosts = {}", stage.hosts.join(" "));
        if i == 0 {
            t.push_str("# critical = no  (the default for the first stage)\n");
        } else {
            t.push_str("# critical = yes  (the default for every stage but the first)\n");
        }
    }
    // a package of the user's own, else a made-up service name
    let example = match packages.split(' ').next() {
        Some(p) if p != PLACEHOLDER_PACKAGE => p,
        _ => "my-service",
    };
    let _ = writeln!(
        t,
        "\n# --- Optional: one [package:NAME] section per package that needs one.\n\
         # health_check: a command run on each host after the install; a non-zero\n\
         # exit fails the deploy there. hold = yes: `apt-mark hold` after the install.\n\
         # [package:{example}]\n\
         # health_check = systemctl is-active --quiet {example}.service\n\
         # hold = no"
    );
    t
}

/// Why Ansible would run code to read the inventory file with permission
/// bits `mode` that starts with `head`, or `None` when it only reads it:
/// an executable file (any `x` bit) is run as a script whatever its name
/// (`hosts.json` too), a `#!` line marks a script, and a top-level
/// `plugin:` key hands the file to an inventory plugin.
pub fn executable_inventory(mode: u32, head: &[u8]) -> Option<String> {
    if mode & 0o111 != 0 {
        return Some(format!(
            "it is executable (mode {:04o}), and Ansible runs an executable inventory as a \
             script, whatever its name",
            mode & 0o7777
        ));
    }
    if head.starts_with(b"#!") {
        return Some("it starts with `#!`, as a script does".to_string());
    }
    let names_plugin = head.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        line.strip_prefix(b"plugin")
            .is_some_and(|rest| rest.trim_ascii_start().starts_with(b":"))
            || line.trim_ascii_start().starts_with(b"\"plugin\"")
    });
    names_plugin.then(|| {
        "it names an inventory plugin (`plugin:`), which runs code to list the hosts".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_inventories_are_told_apart_from_files_ansible_only_reads() {
        let ini = b"[test]\ntest-1 ansible_host=10.0.0.1\n";
        assert_eq!(executable_inventory(0o100_644, ini), None);
        assert_eq!(
            executable_inventory(0o100_600, b"all:\n  hosts:\n    plugin-1:\n"),
            None
        );
        assert_eq!(
            executable_inventory(0o100_644, b"{\"all\": {\"hosts\": {}}}"),
            None
        );
        let why = |mode, head: &[u8]| executable_inventory(mode, head).unwrap_or_default();
        assert!(why(0o100_744, ini).contains("executable (mode 0744)"));
        assert!(why(0o100_645, ini).contains("executable (mode 0645)"));
        assert!(why(0o100_644, b"#!/usr/bin/env python3\nprint('{}')\n").contains("`#!`"));
        assert!(why(0o100_644, b"# aws\nplugin: amazon.aws.aws_ec2\n").contains("plugin"));
        assert!(why(0o100_644, b"plugin : script\n").contains("plugin"));
        assert!(why(0o100_644, b"{\n  \"plugin\": \"constructed\"\n}").contains("plugin"));
    }
    use std::path::Path;

    /// The shape `ansible-inventory --list` prints (ansible-core 2.14).
    const INVENTORY: &str = r#"{
        "_meta": {"hostvars": {
            "test-1": {"ansible_host": "10.0.0.1", "ansible_user": "deploy"},
            "hel-1": {"ansible_host": "backend-hel.example.org", "ansible_port": 2222},
            "prod-1": {},
            "prod-2": {"ansible_host": "2001:db8::2", "ansible_user": "ops", "ansible_port": "22"},
            "ctl": {"ansible_connection": "local"}
        }},
        "all": {"children": ["ungrouped", "test", "hel", "prod"]},
        "ungrouped": {"hosts": ["ctl"]},
        "test": {"hosts": ["test-1"]},
        "hel": {"hosts": ["hel-1"]},
        "prod": {"children": ["prod_eu"], "hosts": ["prod-1"]},
        "prod_eu": {"hosts": ["prod-2"]}
    }"#;

    fn stage(name: &str, hosts: &[&str]) -> StageHosts {
        StageHosts {
            name: name.to_owned(),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        }
    }

    #[test]
    fn groups_under_all_become_stages_with_their_hostvars() {
        let stages = stages_from_inventory(INVENTORY, None).unwrap();
        assert_eq!(
            stages,
            [
                stage("test", &["deploy@10.0.0.1"]),
                stage("hel", &["backend-hel.example.org:2222"]),
                stage("prod", &["prod-1", "ops@[2001:db8::2]:22"]),
            ]
        );
    }

    #[test]
    fn stages_flag_chooses_groups_and_their_order() {
        let wanted = ["prod_eu".to_owned(), "ungrouped".to_owned()];
        let stages = stages_from_inventory(INVENTORY, Some(&wanted)).unwrap();
        assert_eq!(
            stages,
            [
                stage("prod_eu", &["ops@[2001:db8::2]:22"]),
                stage("ungrouped", &["local"]),
            ]
        );
    }

    #[test]
    fn an_unknown_group_is_named_with_the_groups_there_are() {
        let wanted = ["prdo".to_owned()];
        let e = stages_from_inventory(INVENTORY, Some(&wanted)).unwrap_err();
        assert_eq!(e.message, "group `prdo` is not in the inventory");
        assert!(
            e.note.contains("`prod`") && e.note.contains("`hel`"),
            "{e:?}"
        );
    }

    #[test]
    fn a_host_in_two_chosen_groups_is_refused() {
        let wanted = ["prod".to_owned(), "prod_eu".to_owned()];
        let e = stages_from_inventory(INVENTORY, Some(&wanted)).unwrap_err();
        assert!(e.message.contains("ops@[2001:db8::2]:22"), "{e:?}");
        assert!(e.note.contains("--stages"));
    }

    #[test]
    fn an_inventory_without_groups_says_what_to_do() {
        let json = r#"{"_meta": {"hostvars": {}}, "all": {"children": ["ungrouped"]},
                       "ungrouped": {"hosts": ["a"]}}"#;
        let e = stages_from_inventory(json, None).unwrap_err();
        assert!(e.message.contains("no groups"), "{e:?}");
        let e = stages_from_inventory("[1, 2]", None).unwrap_err();
        assert!(e.message.contains("not an object"), "{e:?}");
        let e = stages_from_inventory("all:\n  hosts:", None).unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{e:?}");
    }

    #[test]
    fn a_hostvar_of_the_wrong_type_names_the_host() {
        let json = r#"{"_meta": {"hostvars": {"a": {"ansible_port": [22]}}},
                       "all": {"children": ["web"]}, "web": {"hosts": ["a"]}}"#;
        let e = stages_from_inventory(json, None).unwrap_err();
        assert!(e.message.starts_with("host `a` of group `web`"), "{e:?}");
        assert!(e.message.contains("ansible_port"), "{e:?}");
    }

    #[test]
    fn the_local_file_parses_and_runs_everything_on_this_machine() {
        let text = ini_text(&local_stages(), &[], &Origin::Local);
        let config = crate::config::parse(Path::new("deployer.ini"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let names: Vec<&str> = config.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["test", "staging", "prod"]);
        assert_eq!(config.packages.len(), 1);
        assert_eq!(config.packages[0].as_str(), PLACEHOLDER_PACKAGE);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert!(!config.stages[0].critical && config.stages[2].critical);
    }

    #[test]
    fn the_inventory_file_parses_with_its_hosts() {
        let stages = stages_from_inventory(INVENTORY, None).unwrap();
        let packages = ["fastpath".to_owned(), "ooni-api".to_owned()];
        let text = ini_text(&stages, &packages, &Origin::Ansible("hosts.ini".into()));
        assert!(text.contains("from the Ansible inventory `hosts.ini`"));
        let config = crate::config::parse(Path::new("deployer.ini"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let prod: Vec<String> = config.stages[2]
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(prod, ["prod-1", "ops@[2001:db8::2]:22"]);
        assert_eq!(config.packages.len(), 2);
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }
}
