//! Helpers shared by the integration tests' modules.

pub mod bin;
pub mod browser;
pub mod cli;
pub mod deadline;
pub mod skip;
pub mod testbed;
