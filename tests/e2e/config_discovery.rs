//! Finding and reading `deployer.ini` on a real file system: `locate`'s
//! precedence (`--config` > `DEPLOYER_CONFIG` > walking up from the working
//! directory), `load`'s errors, and its refusal of files that someone else
//! could have written. Every test works in its own temporary directory and
//! passes the environment in as a value, never through `std::env`, so the
//! tests can run in parallel.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::common::skip::skip;
use deployer::config::{load, locate, ConfigError};

const VALID: &str =
    "[environment]\ndeb_packages = dpkg\nstages = test\n[stage:test]\nhosts = local\n";

/// A temporary tree; `file` and `dir` create paths inside it.
struct Tree {
    root: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            root: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    fn dir(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(&path).expect("create directory");
        path
    }

    /// A valid configuration at `relative`, mode 0644 whatever the umask.
    fn file(&self, relative: &str) -> PathBuf {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).expect("create parent");
        fs::write(&path, VALID).expect("write file");
        chmod(&path, 0o644);
        path
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Whether this test runs as root, as it must to give files away. Under
/// `CI=true` it must.
fn root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        skip("giving a file to another user needs root");
    }
    root
}

/// A uid that is nobody here (nor, under sudo, the person's).
const STRANGER: u32 = 54_321;

fn not_found(explicit: Option<&Path>, env: Option<OsString>, cwd: &Path) -> ConfigError {
    match locate(explicit, env, cwd) {
        Ok(path) => panic!("expected an error, found `{}`", path.display()),
        Err(e) => e,
    }
}

/// Whether some directory above the temporary root already holds a
/// configuration (a shared machine may have one in `/tmp`), which would make
/// "not found" untestable from there.
fn config_above(dir: &Path) -> bool {
    dir.ancestors()
        .skip(1)
        .any(|d| d.join("deployer.ini").is_file() || d.join(".deployer.ini").is_file())
}

#[test]
fn finds_the_file_in_the_working_directory() {
    let tree = Tree::new();
    let file = tree.file("deployer.ini");
    assert_eq!(locate(None, None, tree.root.path()).unwrap(), file);
}

#[test]
fn walks_up_from_nested_directories() {
    let tree = Tree::new();
    let file = tree.file("project/deployer.ini");
    let deep = tree.dir("project/src/a/b/c");
    assert_eq!(locate(None, None, &deep).unwrap(), file);
}

#[test]
fn finds_a_hidden_file() {
    let tree = Tree::new();
    let file = tree.file("project/.deployer.ini");
    let deep = tree.dir("project/sub");
    assert_eq!(locate(None, None, &deep).unwrap(), file);
}

#[test]
fn plain_name_wins_over_hidden_in_the_same_directory() {
    let tree = Tree::new();
    tree.file("project/.deployer.ini");
    let plain = tree.file("project/deployer.ini");
    assert_eq!(locate(None, None, &tree.path("project")).unwrap(), plain);
}

#[test]
fn nearest_directory_wins_over_file_name_order() {
    let tree = Tree::new();
    tree.file("project/deployer.ini");
    let nearer = tree.file("project/sub/.deployer.ini");
    assert_eq!(
        locate(None, None, &tree.path("project/sub")).unwrap(),
        nearer
    );
}

#[test]
fn a_directory_named_deployer_ini_is_skipped() {
    let tree = Tree::new();
    let file = tree.file("project/deployer.ini");
    tree.dir("project/sub/deployer.ini");
    assert_eq!(locate(None, None, &tree.path("project/sub")).unwrap(), file);
}

/// A `deployer.ini` that is there but cannot be used (a link whose
/// target is gone, a named pipe) stops the search with an error: taking
/// the next file up would run another pipeline's configuration.
#[test]
fn an_unusable_deployer_ini_stops_the_search() {
    let tree = Tree::new();
    tree.file("project/deployer.ini");
    let sub = tree.dir("project/sub");
    symlink(tree.path("gone/deployer.ini"), sub.join("deployer.ini")).unwrap();
    let e = not_found(None, None, &sub);
    assert_eq!(e.path.as_deref(), Some(sub.join("deployer.ini").as_path()));
    assert!(
        e.message
            .contains("a symbolic link to something that does not exist"),
        "{e}"
    );
    assert!(e.note.unwrap().contains("does not search further up"));

    let other = tree.dir("project/other");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        other.join(".deployer.ini"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let e = not_found(None, None, &other);
    assert!(e.message.contains("it is not a regular file"), "{e}");
}

#[test]
fn explicit_beats_env_beats_walk() {
    let tree = Tree::new();
    let walked = tree.file("project/deployer.ini");
    let from_env = tree.file("env.ini");
    let explicit = tree.file("explicit.ini");
    let cwd = tree.path("project");
    let env = || Some(OsString::from(&from_env));

    assert_eq!(locate(Some(&explicit), env(), &cwd).unwrap(), explicit);
    assert_eq!(locate(None, env(), &cwd).unwrap(), from_env);
    assert_eq!(locate(None, None, &cwd).unwrap(), walked);
}

#[test]
fn empty_env_counts_as_unset() {
    let tree = Tree::new();
    let walked = tree.file("deployer.ini");
    let found = locate(None, Some(OsString::new()), tree.root.path()).unwrap();
    assert_eq!(found, walked);
}

#[test]
fn relative_paths_are_taken_from_the_working_directory() {
    let tree = Tree::new();
    let file = tree.file("project/conf/pipeline.ini");
    let cwd = tree.path("project");
    assert_eq!(
        locate(Some(Path::new("conf/pipeline.ini")), None, &cwd).unwrap(),
        file
    );
    assert_eq!(
        locate(None, Some("conf/pipeline.ini".into()), &cwd).unwrap(),
        file
    );
}

#[test]
fn missing_explicit_file_is_an_error_even_if_others_exist() {
    let tree = Tree::new();
    tree.file("deployer.ini");
    let env = tree.file("env.ini");
    let missing = tree.path("typo.ini");
    let e = not_found(Some(&missing), Some(env.into()), tree.root.path());
    assert_eq!(e.path.as_deref(), Some(missing.as_path()));
    assert_eq!(
        e.message,
        "configuration file not found (given by `--config`)"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "`{}`: configuration file not found (given by `--config`)",
            missing.display()
        )
    );
    assert!(e.note.unwrap().contains("`--config`"));
}

#[test]
fn missing_env_file_is_an_error_naming_the_variable() {
    let tree = Tree::new();
    tree.file("deployer.ini");
    let missing = tree.path("gone.ini");
    let e = not_found(None, Some(missing.clone().into()), tree.root.path());
    assert_eq!(e.path.as_deref(), Some(missing.as_path()));
    assert_eq!(
        e.message,
        "configuration file not found (given by `DEPLOYER_CONFIG`)"
    );
    assert!(e.note.unwrap().contains("unset it"));
}

#[test]
fn explicit_directory_is_an_error() {
    let tree = Tree::new();
    let dir = tree.dir("conf");
    let e = not_found(Some(&dir), None, tree.root.path());
    assert!(e.message.starts_with("is a directory"), "{e:?}");
    assert!(e.note.unwrap().starts_with("name the file itself"));
}

#[test]
fn not_found_lists_where_it_looked() {
    let tree = Tree::new();
    let cwd = tree.dir("a");
    if config_above(tree.root.path()) {
        eprintln!("skipped: a deployer.ini exists above the temporary directory");
        return;
    }
    let e = not_found(None, None, &cwd);
    assert_eq!(e.path, None);
    assert_eq!(e.line, None);
    assert!(
        e.message.starts_with(&format!(
            "no `deployer.ini` or `.deployer.ini` found in `{}`, `{}`",
            cwd.display(),
            tree.root.path().display()
        )),
        "{}",
        e.message
    );
    assert!(e.message.ends_with(", `/`"), "{}", e.message);
    let note = e.note.unwrap();
    assert!(note.contains("deployer.ini.example"), "{note}");
    assert!(note.contains("--config"), "{note}");
    assert!(note.contains("DEPLOYER_CONFIG"), "{note}");
}

#[test]
fn not_found_abbreviates_a_long_list() {
    let tree = Tree::new();
    let cwd = tree.dir("1/2/3/4/5/6/7/8/9");
    if config_above(tree.root.path()) {
        eprintln!("skipped: a deployer.ini exists above the temporary directory");
        return;
    }
    let e = not_found(None, None, &cwd);
    let searched = cwd.ancestors().count();
    assert!(
        e.message
            .contains(&format!(", ... ({} more) ..., ", searched - 5)),
        "{}",
        e.message
    );
    assert!(e.message.contains(&format!("`{}`", cwd.display())));
    assert!(e
        .message
        .contains(&format!("`{}`", tree.path("1/2/3/4/5/6/7").display())));
    assert!(!e
        .message
        .contains(&format!("`{}`", tree.path("1/2/3/4/5/6").display())));
    assert!(e.message.ends_with(", `/`"), "{}", e.message);
}

#[test]
fn load_reads_and_parses() {
    let tree = Tree::new();
    let file = tree.file("deployer.ini");
    let config = load(&file).unwrap();
    assert_eq!(config.path, file);
    assert_eq!(config.stages[0].hosts, ["local"]);
    assert!(config.stages[0].hosts[0].is_local());
    assert_eq!(config.history_file, tree.path("deployer-history.jsonl"));
}

/// What a Windows editor saves: a byte order mark, `\r\n` line ends, and
/// here ConfigParser's other spellings (`Key: value`, an indented
/// continuation line). It used to fail on the invisible first character.
#[test]
fn load_reads_a_file_saved_with_a_bom_and_crlf() {
    let tree = Tree::new();
    let file = tree.path("deployer.ini");
    let text = "\u{feff}[environment]\nDeb_Packages: dpkg\n    apt\nstages = test\n[stage:test]\nhosts = local\n";
    fs::write(&file, text.replace('\n', "\r\n")).unwrap();
    chmod(&file, 0o644);
    let config = load(&file).unwrap();
    let packages: Vec<&str> = config.packages.iter().map(|p| p.as_str()).collect();
    assert_eq!(packages, ["dpkg", "apt"]);
    assert_eq!(config.stages[0].hosts, ["local"]);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn load_reports_the_line_of_a_problem() {
    let tree = Tree::new();
    let file = tree.path("deployer.ini");
    fs::write(
        &file,
        VALID.replace("hosts = local", "hosts = local\nhosts = x"),
    )
    .unwrap();
    let e = load(&file).unwrap_err();
    assert_eq!(e.line, Some(6));
    assert!(e
        .to_string()
        .starts_with(&format!("`{}` line 6: ", file.display())));
}

#[test]
fn load_of_a_missing_file() {
    let tree = Tree::new();
    let file = tree.path("deployer.ini");
    let e = load(&file).unwrap_err();
    assert_eq!(e.path.as_deref(), Some(file.as_path()));
    assert!(
        e.message.starts_with("cannot read the configuration: "),
        "{e:?}"
    );
    assert!(e.note.is_some());
}

#[test]
fn load_of_a_file_that_is_not_text() {
    let tree = Tree::new();
    let file = tree.path("deployer.ini");
    fs::write(&file, b"[environment]\n\xff\xfe\n").unwrap();
    let e = load(&file).unwrap_err();
    assert_eq!(e.note.as_deref(), Some("the file must be UTF-8 text"));
}

/// The README tells newcomers to run with `--config deployer.ini.example`.
#[test]
fn the_example_loads_from_the_repository_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = locate(Some(Path::new("deployer.ini.example")), None, root).unwrap();
    let config = load(&path).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert!(config.stages.iter().all(|s| s.hosts == ["local"]));
}

// --- trust ----------------------------------------------------------------

/// `load`'s refusal of `path`, checked for what every refusal must say.
fn refused(path: &Path) -> ConfigError {
    let e = load(path).expect_err("an untrusted file was loaded");
    assert_eq!(e.path.as_deref(), Some(path));
    assert!(
        e.message
            .starts_with("refusing to use this configuration, owned by "),
        "{e:?}"
    );
    let note = e.note.clone().unwrap();
    assert!(note.contains("`chown "), "{note}");
    assert!(note.contains("`chmod go-w "), "{note}");
    assert!(note.contains("`--config` and `DEPLOYER_CONFIG`"), "{note}");
    e
}

#[test]
fn a_found_file_owned_by_someone_else_is_refused() {
    if !root() {
        return;
    }
    let tree = Tree::new();
    let file = tree.file("project/deployer.ini");
    chown(&file, Some(STRANGER), None).unwrap();
    let found = locate(None, None, &tree.dir("project/sub")).unwrap();
    assert_eq!(found, file);
    let e = refused(&found);
    assert!(
        e.message.starts_with(&format!(
            "refusing to use this configuration, owned by uid {STRANGER} with mode 0644: it is "
        )),
        "{e:?}"
    );
    assert!(e
        .to_string()
        .starts_with(&format!("`{}`: ", file.display())));
}

#[test]
fn group_or_world_writable_files_are_refused() {
    for (mode, says) in [
        (0o664, "its group can write to it"),
        (0o646, "every other user can write to it"),
        (0o666, "its group and every other user can write to it"),
        (0o660, "its group can write to it"),
    ] {
        let tree = Tree::new();
        let file = tree.file("deployer.ini");
        chmod(&file, mode);
        let e = refused(&locate(None, None, tree.root.path()).unwrap());
        assert!(
            e.message.contains(&format!("with mode {mode:04o}: {says}")),
            "{mode:o}: {e:?}"
        );
    }
}

#[test]
fn named_files_are_checked_like_found_ones() {
    let tree = Tree::new();
    let explicit = tree.file("conf/explicit.ini");
    let from_env = tree.file("conf/env.ini");
    chmod(&explicit, 0o664);
    chmod(&from_env, 0o646);
    let cwd = tree.root.path();
    refused(&locate(Some(&explicit), None, cwd).unwrap());
    refused(&locate(None, Some(from_env.clone().into()), cwd).unwrap());
    // Put right as the note says, they load.
    chmod(&explicit, 0o644);
    chmod(&from_env, 0o600);
    load(&explicit).unwrap();
    load(&from_env).unwrap();
}

#[test]
fn a_link_to_someone_elses_file_is_refused() {
    if !root() {
        return;
    }
    let tree = Tree::new();
    let theirs = tree.file("elsewhere/deployer.ini");
    chown(&theirs, Some(STRANGER), Some(STRANGER)).unwrap();
    let link = tree.path("project/deployer.ini");
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(&theirs, &link).unwrap();
    let e = refused(&locate(None, None, &tree.path("project")).unwrap());
    assert!(e.message.contains(&format!("uid {STRANGER}")), "{e:?}");
}

#[test]
fn root_owned_files_that_only_root_can_write_are_trusted() {
    if !root() {
        return;
    }
    let tree = Tree::new();
    let file = tree.file("deployer.ini");
    chown(&file, Some(0), Some(STRANGER)).unwrap();
    chmod(&file, 0o640);
    load(&file).unwrap();
}
