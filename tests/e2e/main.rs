//! The integration tests: one test binary (`cargo test --test e2e`), one
//! module per subject, so the crate is linked once instead of once per file.
//!
//! Run one module with `cargo test --test e2e status_e2e::`. The helpers
//! every module shares are in [`common`]: the testbed of real Debian hosts,
//! the one way to run the `deployer` binary, and the one way to skip.

mod common;

mod alerts_e2e;
mod approvals_e2e;
mod badges_e2e;
mod batches_e2e;
mod changes_e2e;
mod check_e2e;
mod cli;
mod config_discovery;
mod dashboard_browser;
mod dashboard_e2e;
mod deb_cache_e2e;
mod deploy_e2e;
mod docs;
mod fail_closed_e2e;
mod gates_e2e;
mod init;
mod json_e2e;
mod kex_e2e;
mod known_hosts_oracle;
mod metrics_e2e;
mod notify_e2e;
mod packaging;
mod restart_e2e;
mod rollback_e2e;
mod runbook_e2e;
mod security_e2e;
mod skip_e2e;
mod ssh_config_oracle;
mod ssh_reach_e2e;
mod ssh_trust_e2e;
mod status_e2e;
mod terminal_e2e;
mod testbed;
mod timeline_e2e;
mod transport_e2e;
mod version_oracle;
mod versions_e2e;
mod windows_e2e;
