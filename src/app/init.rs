//! `deployer init`: write a commented `deployer.ini` into the current
//! directory, from scratch (every stage on `local`) or from an Ansible
//! inventory. The edge around the pure `crate::init`: it reads the
//! inventory (running `ansible-inventory` when it is not JSON already),
//! refuses to replace any existing configuration, and creates the file
//! mode 0644, whatever the umask, so deployer accepts it.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::Cli;
use crate::error::{ExitStatus, Fatal};
use crate::init::{self, Origin, StageHosts};
use crate::text;

/// `deployer init`: refused with `--config`, since it writes
/// `deployer.ini` in the current directory ([`run`]).
pub(super) fn command(cli: &Cli, request: &Request<'_>) -> Result<ExitStatus, Fatal> {
    if let Some(path) = &cli.config {
        return Err(Fatal::usage(format!(
            "`--config {}` does not go with `init`, which writes `deployer.ini` in the \
             current directory",
            path.display()
        ))
        .note("run `deployer init` in the directory the file belongs in"));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Fatal::usage(format!("cannot read the current directory: {e}")))?;
    run(&cwd, request)
}

/// The names deployer looks for in a directory; `init` writes the first
/// and will not write beside either.
const NAMES: [&str; 2] = ["deployer.ini", ".deployer.ini"];

/// What `deployer init` was asked for.
pub(crate) struct Request<'a> {
    /// `--from-ansible INVENTORY`.
    pub from_ansible: Option<&'a Path>,
    /// `--stages`: the inventory groups to use, in order.
    pub stages: Option<&'a [String]>,
    /// `--packages`: `deb_packages`.
    pub packages: &'a [String],
    /// `--allow-executable-inventory`: let Ansible run a script or plugin
    /// inventory.
    pub allow_executable: bool,
}

/// Write `deployer.ini` in `dir`; say what was written on stdout.
pub(crate) fn run(dir: &Path, request: &Request<'_>) -> Result<ExitStatus, Fatal> {
    let path = dir.join(NAMES[0]);
    for name in NAMES {
        let existing = dir.join(name);
        if existing.symlink_metadata().is_ok() {
            return Err(
                Fatal::usage(format!("`{}` already exists", existing.display())).note(
                    "deployer init never replaces a configuration: edit that one, or move it \
                 away and run `deployer init` again",
                ),
            );
        }
    }
    let packages = split_list(request.packages);
    let (stages, origin) = match request.from_ansible {
        None => (init::local_stages(), Origin::Local),
        Some(inventory) => (
            read_inventory(inventory, request.stages, request.allow_executable)?,
            Origin::Ansible(inventory.display().to_string()),
        ),
    };
    let text = init::ini_text(&stages, &packages, &origin);
    // what we write must be what deployer reads: checked before writing
    crate::config::parse(&path, &text).map_err(|e| {
        Fatal::from(e).note(match &origin {
            Origin::Local => "this is a bug in `deployer init`".to_owned(),
            Origin::Ansible(_) => {
                "a group or host name of the inventory is not one deployer.ini accepts; \
                 choose groups with `--stages`, or fix the name in the inventory"
                    .to_owned()
            }
        })
    })?;
    write_new(&path, &text)?;
    let hosts: usize = stages.iter().map(|s| s.hosts.len()).sum();
    super::output::emit(|out| {
        writeln!(
            out,
            "wrote `{}`: stages {}, {hosts} host entr{}",
            path.display(),
            stages
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(" → "),
            if hosts == 1 { "y" } else { "ies" }
        )?;
        if packages.is_empty() {
            writeln!(
                out,
                "next: put your packages in `deb_packages` (it lists `{}` for now), then run `deployer`",
                init::PLACEHOLDER_PACKAGE
            )
        } else {
            writeln!(out, "next: run `deployer` to see what runs where")
        }
    })?;
    Ok(ExitStatus::Success)
}

/// `--packages a,b c`: commas or spaces.
fn split_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|i| i.split([',', ' ']))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The stages of an inventory: a file holding the JSON of
/// `ansible-inventory --list` is read as it is; anything else is handed
/// to `ansible-inventory`.
/// An inventory that Ansible would run code to read is refused unless
/// `allow_executable` ([`refuse_executable`]).
fn read_inventory(
    inventory: &Path,
    wanted: Option<&[String]>,
    allow_executable: bool,
) -> Result<Vec<StageHosts>, Fatal> {
    let wanted = wanted.map(split_list);
    let json = match std::fs::read_to_string(inventory) {
        Ok(text) if is_listed_json(&text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Fatal::usage(format!(
                "the inventory `{}` does not exist",
                inventory.display()
            ))
            .note("give the path of an Ansible inventory (file or directory)"))
        }
        _ => {
            if !allow_executable {
                refuse_executable(inventory)?;
            }
            ansible_inventory_list(inventory)?
        }
    };
    init::stages_from_inventory(&json, wanted.as_deref()).map_err(|e| {
        Fatal::usage(format!(
            "inventory `{}`: {}",
            inventory.display(),
            e.message
        ))
        .note(e.note)
    })
}

/// Refuse an inventory that Ansible would run rather than read
/// ([`init::executable_inventory`]): the file, or any file of a directory
/// inventory (but its `group_vars` and `host_vars`, which hold variables).
/// Running a cloned repository's script to learn host names is not what
/// `init` should do behind the operator's back.
fn refuse_executable(inventory: &Path) -> Result<(), Fatal> {
    let Some((file, why)) = executable_in(inventory, 0) else {
        return Ok(());
    };
    Err(Fatal::usage(format!(
        "refusing to read the inventory `{}`: {why}",
        file.display()
    ))
    .note(
        "deployer init lets Ansible run inventory scripts and plugins only when asked: pass \
         `--allow-executable-inventory` if you trust this one, or give a static inventory \
         (INI, YAML or JSON, not executable) or the output of `ansible-inventory --list`",
    ))
}

/// The first file under `path` that Ansible would run, and why.
fn executable_in(path: &Path, depth: usize) -> Option<(PathBuf, String)> {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        if depth > 8 {
            return None;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                !name.starts_with('.') && name != "group_vars" && name != "host_vars"
            })
            .collect();
        entries.sort();
        return entries.iter().find_map(|p| executable_in(p, depth + 1));
    }
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64 * 1024).read_to_end(&mut head);
    }
    init::executable_inventory(meta.mode(), &head).map(|why| (path.to_path_buf(), why))
}

/// Whether `text` is already the output of `ansible-inventory --list`
/// (a JSON object with `_meta`), rather than an inventory source such as
/// an INI, YAML or static JSON file.
fn is_listed_json(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.get("_meta").is_some())
}

/// Run `ansible-inventory -i INVENTORY --list` and return its JSON.
fn ansible_inventory_list(inventory: &Path) -> Result<String, Fatal> {
    let output = Command::new("ansible-inventory")
        .arg("-i")
        .arg(inventory)
        .arg("--list")
        // an inventory Ansible cannot parse is an error, not an empty list
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_NOCOLOR", "true")
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Fatal::usage(format!(
                "`ansible-inventory` is not installed, and `{}` is not the JSON of \
                 `ansible-inventory --list`",
                inventory.display()
            ))
            .note(
                "install Ansible (Debian: `apt-get install ansible-core`), or run \
                 `ansible-inventory -i INVENTORY --list > inventory.json` where Ansible is \
                 and pass `--from-ansible inventory.json`",
            ))
        }
        Err(e) => {
            return Err(Fatal::usage(format!("cannot run `ansible-inventory`: {e}"))
                .status(ExitStatus::Internal))
        }
    };
    if !output.status.success() {
        let why = text::clipped_line(
            String::from_utf8_lossy(&output.stderr).trim(),
            text::REMOTE_TEXT_MAX,
        );
        return Err(Fatal::usage(format!(
            "`ansible-inventory -i {} --list` failed ({}): {why}",
            inventory.display(),
            output.status
        ))
        .note("fix the inventory so that Ansible reads it, or give its `--list` JSON"));
    }
    String::from_utf8(output.stdout).map_err(|_| {
        Fatal::usage("`ansible-inventory --list` printed text that is not UTF-8")
            .note("host and group names must be UTF-8")
    })
}

/// Create `path` (never replacing a file, even one created meanwhile),
/// mode 0644 whatever the umask, and write `text` into it.
fn write_new(path: &PathBuf, text: &str) -> Result<(), Fatal> {
    let fail = |e: std::io::Error| {
        let exists = e.kind() == ErrorKind::AlreadyExists;
        let f = Fatal::usage(format!("cannot write `{}`: {e}", path.display()));
        if exists {
            f.note("deployer init never replaces a configuration")
        } else {
            f.note("run `deployer init` in a directory you can write to")
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(fail)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(fail)
}
