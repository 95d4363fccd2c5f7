//! The `deployer` binary: parse the command line, hand it to the library,
//! turn the outcome into an exit status. Nothing else lives here.

#![deny(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    // `DEPLOYER_COMPLETE=bash deployer -- ...`: a shell asking for completions
    deployer::complete_from_env();
    let cli = deployer::cli::Cli::parse();
    deployer::run(cli).into()
}
