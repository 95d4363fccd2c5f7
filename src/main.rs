//! The `deployer` binary: parse the command line, hand it to the library,
//! turn the outcome into an exit status. Nothing else lives here.

fn main() -> std::process::ExitCode {
    // `DEPLOYER_COMPLETE=bash deployer -- ...`: a shell asking for completions
    deployer::complete_from_env();
    let cli = deployer::cli::Cli::from_env();
    deployer::run(cli).into()
}
