//! The command line. TODO

/// deployer
#[derive(Debug, clap::Parser)]
pub struct Cli {}
