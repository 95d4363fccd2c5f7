//! OpenSSH client configuration (`~/.ssh/config`, then
//! `/etc/ssh/ssh_config`): parse, and resolve the options of one host the
//! way `ssh -G` does.
//!
//! This module owns the meaning of the ssh_config(5) options deployer
//! honours (`HostName`, `User`, `Port`, `IdentityFile`, `UserKnownHostsFile`,
//! `GlobalKnownHostsFile`, `StrictHostKeyChecking`, `HashKnownHosts`,
//! `ConnectTimeout`, `HostKeyAlias`, `IdentitiesOnly`, `ServerAliveInterval`,
//! `ServerAliveCountMax`, `KexAlgorithms`, `ProxyJump`), and of the options that would change
//! where ssh connects, which it refuses rather than ignores (`ProxyCommand`,
//! `CanonicalizeHostname`, `Match` criteria it cannot evaluate). It follows
//! OpenSSH 9.2's readconf.c and ssh.c: keywords are case-insensitive, lines
//! apply under the last `Host` or `Match` line that matched, the first
//! value obtained for an option wins (the user's file is read before the
//! system file), `Host` patterns match the name as typed case-sensitively,
//! `Match host`/`originalhost` case-insensitively, and `%` tokens and
//! `${VAR}` are expanded in the options where ssh expands them.
//!
//! Parsing and resolving are pure: the local facts ssh would look up (user,
//! uid, host name, environment) arrive in a [`ResolveContext`]. Only
//! [`SshConfigFile::load`] reads files (the config, what it `Include`s, and
//! `/etc/services` for `Port ssh`) and checks their owner and permissions
//! as ssh does (with Debian's allowance for a group of the user's own).
//!
//! Keywords are those of OpenSSH 9.2's client as Debian builds it: an
//! unknown one refuses the configuration, as ssh's "Bad configuration
//! option" does, unless an `IgnoreUnknown` obtained before it lists it;
//! deprecated ones are accepted silently, unsupported ones with a warning.
//! The values of every keyword are checked as ssh checks them when it reads
//! a line, whether or not the line applies to the host (yes/no flags and
//! ssh's other value tables, numbers, times, ports, log levels, algorithm
//! names as `ssh -Q` lists them, forwardings, extra arguments…); the few
//! checks ssh makes only on the value it obtained (`ConnectionAttempts`,
//! `HostKeyAlgorithms`, a `ProxyJump` looping to the host itself) are made
//! when resolving, and `CanonicalizePermittedCNAMEs` refuses the host, as
//! following CNAMEs would change where it connects.
//!
//! It must not connect anywhere or run anything: a `Match exec` is
//! refused, never run or guessed.

//! This folder is pure: it never opens a file or a socket (but for
//! `/etc/services`, see [`values`]); [`crate::ssh_config`] loads the files
//! and [`crate::transport`] reads the known_hosts files. One module per job:
//!
//! - [`keywords`]: the keywords ssh knows;
//! - [`lexer`]: a line into keyword and arguments;
//! - [`values`]: every value checked as ssh checks it;
//! - [`options`]: the table of the options deployer honours, one row each;
//! - [`parse`]: a file's text into items;
//! - [`pattern`]: ssh's wildcard patterns and pattern lists;
//! - [`resolve`]: `Host`/`Match` blocks and the first value obtained;
//! - [`tokens`]: `%` tokens, `${VAR}` and `~`;
//! - [`include`]: `Include` glob patterns and the permission rule;
//! - [`kex`]: key exchange lists (OpenSSH 10's default, `KexAlgorithms`);
//! - [`config`]: the public values ([`SshConfigFile`], [`HostSettings`]…);
//! - [`known_hosts`]: known_hosts lines and the trust ssh gives them.

pub mod config;
pub(crate) mod include;
pub mod kex;
pub mod keywords;
pub mod known_hosts;
pub(crate) mod lexer;
pub(crate) mod options;
pub(crate) mod parse;
pub(crate) mod pattern;
pub(crate) mod resolve;
pub(crate) mod tokens;
pub(crate) mod values;

#[cfg(test)]
pub(crate) mod tests;

pub use config::{HostSettings, ResolveContext, SshConfigError, SshConfigFile, SshConfigWarning};
pub use keywords::{is_known_keyword, known_keywords};
pub use values::{parse_jump_list, JumpHost, StrictHostKeyChecking};
