//! `deployer completions SHELL` and `deployer man`: shell completion
//! scripts (`clap_complete`) and manual pages (`crate::manual`), generated
//! from the very `clap` definitions in `cli`, so they never fall out of
//! step with the command line.
//!
//! Two kinds of completion script:
//! - static (the default): subcommands, flags and fixed values, written
//!   once into a file (the Debian package ships them);
//! - dynamic (`--dynamic`): a small script that asks `deployer` itself for
//!   each completion (`DEPLOYER_COMPLETE=SHELL deployer -- WORDS`, answered by
//!   [`complete_from_env`] before anything else runs), which also offers
//!   the stage and package names of the configuration found from the
//!   current directory (or `DEPLOYER_CONFIG`).
//!
//! Completing must never print an error or touch a host: a configuration
//! that cannot be read simply offers no names.

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use clap_complete::{ArgValueCandidates, CompletionCandidate};

use super::output::emit;
use crate::cli::{Cli, CompletionShell};
use crate::config;
use crate::error::{ExitStatus, Fatal};

/// The environment variable that turns a run of `deployer` into a
/// completion request (clap_complete's protocol). Not clap_complete's
/// default `COMPLETE`: a name that generic may be set for something else,
/// and deployer would then answer as a completer instead of running.
pub const COMPLETE_VAR: &str = "DEPLOYER_COMPLETE";

/// Answer a completion request and exit, when `DEPLOYER_COMPLETE` is set in the
/// environment (by a script of `deployer completions SHELL --dynamic`);
/// otherwise return at once. Call first thing in `main`.
pub fn complete_from_env() {
    clap_complete::CompleteEnv::with_factory(command_with_names)
        .var(COMPLETE_VAR)
        .complete();
}

/// The command line of [`Cli`], with the positional arguments and flags
/// that take a stage (`stage`, `history --hosts`) or a package (`package`)
/// completed from the configuration.
pub fn command_with_names() -> clap::Command {
    with_names(Cli::command())
}

fn with_names(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| match a.get_id().as_str() {
        "stage" | "hosts" => a.add(ArgValueCandidates::new(|| names(Names::Stages))),
        "package" => a.add(ArgValueCandidates::new(|| names(Names::Packages))),
        _ => a,
    })
    .mut_subcommands(with_names)
}

#[derive(Clone, Copy)]
enum Names {
    Stages,
    Packages,
}

/// The stage or package names of the configuration deployer would read
/// here; none when it cannot be found or read.
fn names(which: Names) -> Vec<CompletionCandidate> {
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    let Ok(path) = config::locate(None, std::env::var_os("DEPLOYER_CONFIG"), &cwd) else {
        return Vec::new();
    };
    let Ok(config) = config::load(&path) else {
        return Vec::new();
    };
    match which {
        Names::Stages => config
            .stages
            .iter()
            .map(|s| CompletionCandidate::new(s.name.clone()))
            .collect(),
        Names::Packages => config
            .packages
            .iter()
            .map(|p| CompletionCandidate::new(p.to_string()))
            .collect(),
    }
}

/// Write the completion script for `shell`: static, or the dynamic
/// registration script when `dynamic`.
pub fn write_script(shell: CompletionShell, dynamic: bool, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    let bin = cmd.get_name().to_owned();
    if dynamic {
        let env: &dyn EnvCompleter = match shell {
            CompletionShell::Bash => &Bash,
            CompletionShell::Zsh => &Zsh,
            CompletionShell::Fish => &Fish,
        };
        // the script runs whatever `deployer` is first in PATH, as typed
        return env.write_registration(COMPLETE_VAR, &bin, &bin, &bin, out);
    }
    let generator = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut cmd, bin, out);
    Ok(())
}

/// Write the manual page `deployer.1` (roff; see [`crate::manual`]).
pub fn write_man(out: &mut dyn Write) -> io::Result<()> {
    crate::manual::write_deployer_1(out)
}

/// `deployer completions SHELL [--dynamic]`.
pub(crate) fn completions(shell: CompletionShell, dynamic: bool) -> Result<ExitStatus, Fatal> {
    emit(|out| write_script(shell, dynamic, out))?;
    Ok(ExitStatus::Success)
}

/// `deployer man [--output-dir DIR]`: the page on stdout, or every page
/// (`deployer.1`, `deployer-COMMAND.1`, `deployer.ini.5`) written into DIR.
pub(crate) fn man(output_dir: Option<&Path>) -> Result<ExitStatus, Fatal> {
    let Some(dir) = output_dir else {
        emit(write_man)?;
        return Ok(ExitStatus::Success);
    };
    crate::manual::write_pages(dir).map_err(|e| {
        Fatal::usage(format!(
            "cannot write the manual pages into `{}`: {e}",
            dir.display()
        ))
        .status(ExitStatus::Internal)
    })?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: CompletionShell, dynamic: bool) -> String {
        let mut out = Vec::new();
        write_script(shell, dynamic, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_static_script_names_every_subcommand() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let text = script(shell, false);
            for sub in Cli::command().get_subcommands() {
                assert!(
                    text.contains(sub.get_name()),
                    "{shell:?} script lacks `{}`",
                    sub.get_name()
                );
            }
        }
    }

    #[test]
    fn dynamic_scripts_call_deployer_back_with_complete_set() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let text = script(shell, true);
            assert!(text.contains("DEPLOYER_COMPLETE="), "{shell:?}: {text}");
            assert!(text.contains("deployer"), "{shell:?}: {text}");
        }
    }

    #[test]
    fn stage_and_package_arguments_get_candidates() {
        let cmd = command_with_names();
        let deploy = cmd.find_subcommand("deploy").expect("deploy");
        for id in ["package", "stage"] {
            let arg = deploy.get_arguments().find(|a| a.get_id() == id).unwrap();
            assert!(
                arg.get::<ArgValueCandidates>().is_some(),
                "deploy {id} has no candidates"
            );
        }
        let history = cmd.find_subcommand("history").expect("history");
        let hosts = history
            .get_arguments()
            .find(|a| a.get_id() == "hosts")
            .unwrap();
        assert!(hosts.get::<ArgValueCandidates>().is_some());
        let timeline = cmd.find_subcommand("timeline").expect("timeline");
        let candidates = |id: &str| {
            timeline
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap()
                .get::<ArgValueCandidates>()
                .is_some()
        };
        assert!(candidates("stage") && candidates("package"));
        assert!(!candidates("host"), "a host is not a stage");
    }

    #[test]
    fn the_man_page_has_its_sections() {
        let mut out = Vec::new();
        write_man(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for needle in [".TH deployer 1", ".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS"] {
            assert!(text.contains(needle), "no `{needle}` in:\n{text}");
        }
        assert!(text.contains("deploy"));
    }
}
