//! Helpers shared by the integration tests' modules.

pub mod bin;
pub mod browser;
pub mod cli;
pub mod deadline;
// The same file as the library's unit tests skip with: one owner.
#[path = "../../../src/test_skip.rs"]
pub mod skip;
pub mod testbed;
