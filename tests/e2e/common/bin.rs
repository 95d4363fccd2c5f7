//! The one way the tests run the `deployer` binary: [`deployer`] builds the
//! command, [`run`] runs it. The command gets nothing of the developer's
//! environment that deployer reads (their `DEPLOYER_CONFIG` would otherwise
//! point a test at their own pipeline), only what the test gives it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_deployer");

/// The environment variables deployer reads, besides `HOME` (which every
/// command here sets): its configuration file, clap's completion request,
/// the ssh agent, who ran it under sudo, and the terminal and colour
/// settings. Any other `DEPLOYER_*` is removed too. A test that needs one
/// sets it on the command.
pub const INPUTS: [&str; 11] = [
    "DEPLOYER_CONFIG",
    "DEPLOYER_COMPLETE",
    "SSH_AUTH_SOCK",
    "SUDO_USER",
    "SUDO_UID",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "TERM",
    "COLUMNS",
    "LINES",
];

/// `program` with every environment input of deployer removed (see
/// [`INPUTS`]): for a wrapper that runs [`BIN`], such as `script` for a
/// terminal or `sh` for a umask. Prefer [`deployer`].
pub fn scrubbed(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DEPLOYER_") {
            cmd.env_remove(name);
        }
    }
    for name in INPUTS {
        cmd.env_remove(name);
    }
    cmd
}

/// `deployer` run in `dir` with `HOME` set to `home` and no other
/// environment input (see [`scrubbed`]).
pub fn deployer(dir: &Path, home: &Path) -> Command {
    let mut cmd = scrubbed(BIN);
    cmd.current_dir(dir).env("HOME", home);
    cmd
}

/// Run `cmd` with stdin closed: (exit status, stdout, stderr); the status
/// is -1 when a signal ended it.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("the command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Nothing deployer reads leaks from this process's environment into the
/// commands: under `CI=true` the environment has `DEPLOYER_TESTBED_CACHE`
/// at least, and a developer's shell may have their `DEPLOYER_CONFIG`.
#[test]
fn the_commands_get_no_environment_input_of_the_developer() {
    let dir = tempfile::tempdir().unwrap();
    let removed: Vec<String> = deployer(dir.path(), dir.path())
        .get_envs()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    for name in INPUTS {
        assert!(removed.iter().any(|r| r == name), "{name} is not removed");
    }
    let (code, env, err) = run(&mut scrubbed("env"));
    assert_eq!(code, 0, "{err}");
    for line in env.lines() {
        let name = line.split('=').next().unwrap_or_default();
        assert!(
            !name.starts_with("DEPLOYER_") && !INPUTS.contains(&name),
            "{name} reaches the command"
        );
    }
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
}
