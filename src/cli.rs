//! The command line, and nothing else: clap derive definitions with help
//! text. Meaning is given to these values in `app`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Take Debian packages through a pipeline of stages over SSH.
///
/// Without a command, shows which version of each package runs on each
/// stage: `►►` marks a pending rollout (the left stage runs a newer
/// version), `⚠` a regression (the right stage runs a newer one).
#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    args_conflicts_with_subcommands = true,
    after_long_help = "Examples:\n  deployer                      status of every stage\n  deployer --json               the same, for scripts\n  deployer --check              exit 4 if a rollout is pending, 5 on regression or drift\n  deployer --config deployer.ini.example"
)]
pub struct Cli {
    /// Read this configuration file instead of searching for deployer.ini.
    #[arg(long, global = true, env = "DEPLOYER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Record host keys of hosts never seen before (changed keys are still refused).
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,

    /// Status options (when no command is given).
    #[command(flatten)]
    pub status: StatusArgs,

    /// What to do; `status` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// When to use ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and NO_COLOR is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Options of the status view.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Print the full status as JSON (shape documented in the README).
    #[arg(long)]
    pub json: bool,

    /// Also report by exit status: 4 if a rollout is pending, 5 if anything
    /// regressed, drifted inside a stage or is broken (3, unreachable
    /// hosts, takes precedence).
    #[arg(long)]
    pub check: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the version matrix (the default).
    Status(StatusArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn status_flags_work_with_and_without_the_subcommand() {
        let top = Cli::try_parse_from(["deployer", "--json"]).unwrap();
        assert!(top.status.json && top.command.is_none());
        let sub = Cli::try_parse_from(["deployer", "status", "--check"]).unwrap();
        assert!(matches!(
            sub.command,
            Some(Command::Status(StatusArgs { check: true, .. }))
        ));
    }
}
