//! `deployer init` in a temporary directory: the file it writes (mode,
//! owner, comments), that deployer then runs on it as written, that it
//! never replaces a configuration, and `--from-ansible` from a JSON
//! inventory and (where Ansible is installed) a real INI inventory read
//! through `ansible-inventory`.

use crate::common::bin::{self, run as output};
use crate::common::skip::skip;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// `deployer` with `dir` as its working directory and home.
fn deployer(dir: &Path) -> Command {
    bin::deployer(dir, dir)
}

/// `deployer init ARGS` under umask 077 (cron's, some hardened shells'),
/// through `sh` so the umask is really the process's.
fn init_under_umask_077(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut sh = bin::scrubbed("sh");
    sh.args(["-c", r#"umask 077; exec "$0" init "$@""#, bin::BIN])
        .args(args)
        .current_dir(dir)
        .env("HOME", dir);
    output(&mut sh)
}

#[test]
fn init_writes_a_commented_file_that_deployer_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = init_under_umask_077(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("wrote") && out.contains("deployer.ini"),
        "{out}"
    );
    let path = dir.path().join("deployer.ini");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644, "mode whatever the umask");
    assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().filter(|l| l.starts_with('#')).count() > 20);
    let config = deployer::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.stages.len(), 3);
    // and deployer, started in that directory, finds and uses it: the
    // status of base-files on this machine, every stage in agreement
    let (code, out, err) = output(deployer(dir.path()).args(["--color=never", "--check"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("base-files"), "{out}");
    assert!(out.contains("test") && out.contains("staging") && out.contains("prod"));
}

#[test]
fn init_never_replaces_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["deployer.ini", ".deployer.ini"] {
        let path = dir.path().join(name);
        std::fs::write(&path, "mine\n").unwrap();
        let (code, out, err) = output(deployer(dir.path()).arg("init"));
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains(&format!("error: `{}` already exists", path.display())),
            "{err}"
        );
        assert!(err.contains("note: "), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine\n");
        std::fs::remove_file(&path).unwrap();
    }
    assert!(!dir.path().join("deployer.ini").exists());
}

#[test]
fn init_lists_the_packages_given() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) =
        output(deployer(dir.path()).args(["init", "--packages", "fastpath,ooni-api"]));
    assert_eq!(code, 0, "{err}");
    let config = deployer::config::load(&dir.path().join("deployer.ini")).unwrap();
    let names: Vec<&str> = config.packages.iter().map(|p| p.as_str()).collect();
    assert_eq!(names, ["fastpath", "ooni-api"]);
}

const LISTED: &str = r#"{
    "_meta": {"hostvars": {
        "test-1": {"ansible_host": "10.0.0.1", "ansible_user": "deploy"},
        "hel-1": {"ansible_host": "backend-hel.example.org", "ansible_port": 2222},
        "prod-2": {"ansible_host": "2001:db8::2", "ansible_port": 22, "ansible_user": "ops"},
        "ctl": {"ansible_connection": "local"}
    }},
    "all": {"children": ["ungrouped", "test", "hel", "prod"]},
    "hel": {"hosts": ["hel-1"]},
    "prod": {"children": ["prod_eu"], "hosts": ["prod-1"]},
    "prod_eu": {"hosts": ["prod-2"]},
    "test": {"hosts": ["test-1"]},
    "ungrouped": {"hosts": ["ctl"]}
}"#;

/// The hosts of each stage of the `deployer.ini` in `dir`, as written.
fn stages_in(dir: &Path) -> Vec<(String, Vec<String>)> {
    let config = deployer::config::load(&dir.join("deployer.ini")).expect("loads");
    config
        .stages
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.hosts.iter().map(ToString::to_string).collect(),
            )
        })
        .collect()
}

fn owned(stages: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    stages
        .iter()
        .map(|(n, h)| ((*n).to_owned(), h.iter().map(|h| (*h).to_owned()).collect()))
        .collect()
}

#[test]
fn from_ansible_json_makes_one_stage_per_group_with_user_host_port() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.json"), LISTED).unwrap();
    // no ansible-inventory on PATH: the JSON needs none
    let (code, out, err) = output(deployer(dir.path()).env("PATH", "/nonexistent").args([
        "init",
        "--from-ansible",
        "inventory.json",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("test → hel → prod"), "{out}");
    assert_eq!(
        stages_in(dir.path()),
        owned(&[
            ("test", &["deploy@10.0.0.1"]),
            ("hel", &["backend-hel.example.org:2222"]),
            ("prod", &["prod-1", "ops@[2001:db8::2]:22"]),
        ])
    );
    let text = std::fs::read_to_string(dir.path().join("deployer.ini")).unwrap();
    assert!(text.contains("from the Ansible inventory `inventory.json`"));
}

#[test]
fn from_ansible_stages_flag_picks_groups_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.json"), LISTED).unwrap();
    let (code, out, err) = output(deployer(dir.path()).args([
        "init",
        "--from-ansible",
        "inventory.json",
        "--stages",
        "hel,prod_eu",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        stages_in(dir.path()),
        owned(&[
            ("hel", &["backend-hel.example.org:2222"]),
            ("prod_eu", &["ops@[2001:db8::2]:22"]),
        ])
    );
}

#[test]
fn from_ansible_errors_name_the_group_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.json"), LISTED).unwrap();
    let (code, _, err) = output(deployer(dir.path()).args([
        "init",
        "--from-ansible",
        "inventory.json",
        "--stages",
        "test,prdo",
    ]));
    assert_eq!(code, 2);
    assert!(
        err.contains("error: inventory `inventory.json`: group `prdo` is not in the inventory"),
        "{err}"
    );
    assert!(
        err.contains("note: its groups:") && err.contains("`prod`"),
        "{err}"
    );
    assert!(!dir.path().join("deployer.ini").exists());
    // --config names a file to read, not where to write
    let (code, _, err) = output(deployer(dir.path()).args(["--config", "x.ini", "init"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`--config x.ini` does not go with `init`"),
        "{err}"
    );
    assert!(!dir.path().join("x.ini").exists());
    // --stages without an inventory makes no sense
    let (code, _, err) = output(deployer(dir.path()).args(["init", "--stages", "a,b"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from-ansible"), "{err}");
}

#[test]
fn from_ansible_without_ansible_inventory_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts.ini"), "[test]\ntest-1\n").unwrap();
    let (code, _, err) = output(deployer(dir.path()).env("PATH", "/nonexistent").args([
        "init",
        "--from-ansible",
        "hosts.ini",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("error: `ansible-inventory` is not installed"),
        "{err}"
    );
    assert!(err.contains("apt-get install ansible-core"), "{err}");
    assert!(!dir.path().join("deployer.ini").exists());
}

/// A real INI inventory, read by the real `ansible-inventory`.
#[test]
fn from_ansible_reads_an_ini_inventory_through_ansible_inventory() {
    if !have_ansible_inventory() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.ini"),
        "ctl ansible_connection=local\n\n\
         [test]\ntest-1 ansible_host=10.0.0.1 ansible_user=deploy\n\n\
         [hel]\nhel-1 ansible_host=backend-hel.example.org ansible_port=2222\n\n\
         [prod]\nprod-1\n\n\
         [prod_eu]\nprod-2 ansible_host=2001:db8::2 ansible_user=ops ansible_port=22\n\n\
         [prod:children]\nprod_eu\n",
    )
    .unwrap();
    let (code, out, err) = output(
        deployer(dir.path())
            .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
            .args(["init", "--from-ansible", "hosts.ini"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        stages_in(dir.path()),
        owned(&[
            ("test", &["deploy@10.0.0.1"]),
            ("hel", &["backend-hel.example.org:2222"]),
            ("prod", &["prod-1", "ops@[2001:db8::2]:22"]),
        ])
    );
    // an inventory Ansible cannot parse is an error with its words, not
    // an empty pipeline
    std::fs::remove_file(dir.path().join("deployer.ini")).unwrap();
    std::fs::write(dir.path().join("bad.ini"), "[test\nx y z = = =\n").unwrap();
    let (code, _, err) = output(
        deployer(dir.path())
            .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
            .args(["init", "--from-ansible", "bad.ini"]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`ansible-inventory -i bad.ini --list` failed"),
        "{err}"
    );
    assert!(!dir.path().join("deployer.ini").exists());
}

/// Issue 24 item 6: an inventory Ansible would run (an executable file
/// whatever its name, one starting with `#!`, a plugin configuration, or
/// such a file in an inventory directory) is refused, saying why and
/// naming the flag that allows it; the script never runs and nothing is
/// written. `--allow-executable-inventory` lets Ansible run it.
#[test]
fn from_ansible_refuses_an_executable_inventory_unless_allowed() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let script = format!(
        "#!/bin/sh\ntouch {}\necho '{{\"_meta\": {{\"hostvars\": {{}}}}, \"all\": {{\"children\": [\"test\"]}}, \"test\": {{\"hosts\": [\"test-1\"]}}}}'\n",
        ran.display()
    );
    let hosts = dir.path().join("hosts.json");
    std::fs::write(&hosts, &script).unwrap();
    std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("aws_ec2.yml"),
        "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n",
    )
    .unwrap();
    let inventory_dir = dir.path().join("inventory");
    std::fs::create_dir(&inventory_dir).unwrap();
    std::fs::write(inventory_dir.join("static.ini"), "[test]\ntest-1\n").unwrap();
    std::fs::write(inventory_dir.join("dynamic"), "#!/bin/sh\necho {}\n").unwrap();

    let cases = [
        ("hosts.json", "hosts.json", "it is executable (mode 0755)"),
        ("aws_ec2.yml", "aws_ec2.yml", "it names an inventory plugin"),
        ("inventory", "inventory/dynamic", "it starts with `#!`"),
    ];
    for (arg, named, why) in cases {
        let (code, out, err) = output(
            deployer(dir.path())
                .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
                .args(["init", "--from-ansible", arg]),
        );
        assert_eq!(code, 2, "{out}{err}");
        assert!(
            err.contains(&format!(
                "error: refusing to read the inventory `{named}`: {why}"
            )) && err.contains("--allow-executable-inventory"),
            "{err}"
        );
        assert!(!ran.exists(), "{arg}: the script ran");
        assert!(!dir.path().join("deployer.ini").exists());
    }

    // Asked for, Ansible runs the script.
    if !have_ansible_inventory() {
        return;
    }
    let (code, out, err) = output(
        deployer(dir.path())
            .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
            .args([
                "init",
                "--from-ansible",
                "hosts.json",
                "--allow-executable-inventory",
            ]),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(ran.exists());
    assert_eq!(stages_in(dir.path()), owned(&[("test", &["test-1"])]));
}

/// Whether `ansible-inventory` is on PATH; when it is not, says the test
/// is skipped (and fails under `CI=true`, where nothing skips).
fn have_ansible_inventory() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v ansible-inventory"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let why = "no `ansible-inventory` on PATH (Debian package `ansible-core`)";
        skip(why);
    }
    found
}
