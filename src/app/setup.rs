//! The configuration of a run and the hosts it reaches: `deployer.ini`
//! found and loaded, every host resolved through the ssh configuration as
//! `ssh -G` would, and the connections to one stage.

use std::path::PathBuf;

use crate::cli::Cli;
use crate::config::{self, Config};
use crate::deploy;
use crate::error::Fatal;
use crate::fleet::Fleet;
use crate::operator;
use crate::ssh_config::{ResolveContext, SshConfigFile};
use crate::transport::{self, LocalContext, Target};

use super::output::warn;

/// The operator's home directory, and the login name OpenSSH would use by
/// default: the account of the real uid, not `$USER`.
pub(super) fn local_context(cli: &Cli) -> LocalContext {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    let user = operator::login_name();
    LocalContext {
        resolve: Some(ResolveContext::of_this_process(&home, &user)),
        home,
        user,
        accept_new: cli.accept_new_host_keys,
    }
}

/// Find and read `deployer.ini`, printing its warnings.
pub(super) fn load_config(cli: &Cli) -> Result<Config, Fatal> {
    let cwd = std::env::current_dir()
        .map_err(|e| Fatal::usage(format!("cannot read the current directory: {e}")))?;
    let path = config::locate(
        cli.config.as_deref(),
        std::env::var_os("DEPLOYER_CONFIG"),
        &cwd,
    )?;
    let config = config::load(&path)?;
    for w in &config.warnings {
        warn(cli, w);
    }
    Ok(config)
}

/// Every host of every stage, resolved through `~/.ssh/config`.
pub(super) fn targets(cli: &Cli, config: &Config) -> Result<Vec<Target>, Fatal> {
    let local = local_context(cli);
    // `~/` in deployer.ini was expanded when it was loaded.
    let path = config
        .ssh
        .ssh_config
        .clone()
        .unwrap_or_else(|| local.home.join(".ssh/config"));
    // The user's file, then the system's, as ssh reads them.
    // As ssh, the permissions of `~/.ssh/config` are checked, not those of
    // a file named explicitly (`ssh -F`); included files always are.
    let loaded = match config.ssh.ssh_config {
        None => SshConfigFile::load(&path, &local.home),
        Some(_) => SshConfigFile::load_named(&path, &local.home),
    };
    let user_file = match loaded {
        Ok(f) => Ok(f),
        Err(e) if e.is_not_found() && config.ssh.ssh_config.is_none() => {
            Ok(SshConfigFile::default())
        }
        Err(e) => Err(e),
    };
    let system = std::path::Path::new(crate::ssh_config::SYSTEM_CONFIG);
    // As `ssh -F`, a config named in deployer.ini replaces both.
    let both = user_file.and_then(|f| match config.ssh.ssh_config {
        None => f.with_system(system, &local.home),
        Some(_) => Ok(f),
    });
    let ssh_config = match both {
        Ok(f) => f,
        Err(e) => {
            return Err(
                Fatal::usage(format!("cannot use the ssh client configuration: {e}"))
                    .note("fix the file, or point `ssh_config` in deployer.ini at another one"),
            )
        }
    };
    for w in ssh_config.warnings() {
        warn(cli, &w.to_string());
    }
    transport::resolve_targets(config, &ssh_config, &local).map_err(|e| {
        Fatal::usage(format!("cannot reach a host as ssh would: {e}")).note(
            "deployer follows ~/.ssh/config and /etc/ssh/ssh_config as `ssh -G` does, and \
             refuses a host rather than reach it another way; `deployer hosts` shows what \
             it resolves for each host",
        )
    })
}

/// Connections to the hosts of one stage only.
pub(super) fn stage_fleet(cli: &Cli, config: &Config, stage: &str) -> Result<Fleet, Fatal> {
    deploy::check_stage(config, stage)?;
    let all = targets(cli, config)?;
    let mine = all.into_iter().filter(|t| t.stage == stage).collect();
    Ok(Fleet::connect(mine, config.parallelism))
}
