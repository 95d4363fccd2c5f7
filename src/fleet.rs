//! The hosts of a run: one connection per host, opened concurrently and
//! kept for the whole run, so that status, locks, apt and health checks
//! all travel over the same session.

use std::ops::Range;
use std::time::Duration;

use crate::command::RemoteCommand;
use crate::error::HostError;
use crate::fanout;
use crate::matrix::HostReport;
use crate::package::PackageName;
use crate::status;
use crate::transport::{self, Connection, Output, Target};

/// One host and its connection (or why there is none).
pub struct Member {
    /// Where the host is.
    pub target: Target,
    /// The open connection, or the reason it could not be opened or was
    /// given up on.
    pub conn: Result<Box<dyn Connection>, HostError>,
}

impl Member {
    /// Run `command` on this host; a host without a connection answers with
    /// the reason it has none. A host that timed out or dropped the
    /// connection is given up on, so later commands fail at once instead of
    /// waiting for it again.
    pub fn run(&mut self, command: &RemoteCommand, timeout: Duration) -> Result<Output, HostError> {
        let result = match &mut self.conn {
            Ok(conn) => transport::run(conn.as_mut(), command, timeout),
            Err(e) => Err(e.clone()),
        };
        if let Err(e @ (HostError::Timeout { .. } | HostError::Disconnected(_))) = &result {
            self.lose(e.clone());
        }
        result
    }

    /// Mark this host as lost (e.g. after a timeout mid-command): later
    /// commands fail at once with `error` instead of waiting again.
    pub fn lose(&mut self, error: HostError) {
        self.conn = Err(error);
    }
}

/// Every host of every stage, in configuration order.
pub struct Fleet {
    /// The hosts; those of one stage are contiguous.
    pub members: Vec<Member>,
    /// How many hosts are worked on at once.
    pub parallelism: usize,
}

impl Fleet {
    /// Connect to every target at once.
    pub fn connect(targets: Vec<Target>, parallelism: usize) -> Fleet {
        type Slot = (Target, Option<Result<Box<dyn Connection>, HostError>>);
        let mut slots: Vec<Slot> = targets.into_iter().map(|t| (t, None)).collect();
        fanout::map(&mut slots, parallelism, |(t, conn)| {
            *conn = Some(transport::connect(t));
        });
        let members = slots
            .into_iter()
            .map(|(target, conn)| Member {
                target,
                conn: conn.expect("every host was tried"),
            })
            .collect();
        Fleet {
            members,
            parallelism,
        }
    }

    /// The positions of `stage`'s hosts in [`Fleet::members`].
    pub fn stage_range(&self, stage: &str) -> Range<usize> {
        let start = self
            .members
            .iter()
            .position(|m| m.target.stage == stage)
            .unwrap_or(self.members.len());
        let len = self.members[start..]
            .iter()
            .take_while(|m| m.target.stage == stage)
            .count();
        start..start + len
    }

    /// The position in [`Fleet::members`] of `host` of `stage`.
    ///
    /// # Panics
    /// When the host is not in the fleet: callers only ask for configured hosts.
    pub fn position(&self, stage: &str, host: &str) -> usize {
        self.members
            .iter()
            .position(|m| m.target.stage == stage && m.target.host == host)
            .unwrap_or_else(|| panic!("`{host}` of `{stage}` is not in the fleet"))
    }

    /// The hosts of `stage`.
    pub fn stage_mut(&mut self, stage: &str) -> &mut [Member] {
        let r = self.stage_range(stage);
        &mut self.members[r]
    }

    /// Read every host's package states, all hosts at once.
    pub fn status(&mut self, packages: &[PackageName], timeout: Duration) -> Vec<HostReport> {
        let command = status::query_command(packages);
        fanout::map(&mut self.members, self.parallelism, |m| {
            let result = m
                .run(&command, timeout)
                .and_then(|out| status::parse(packages, &out));
            HostReport {
                stage: m.target.stage.clone(),
                host: m.target.host.clone(),
                result,
            }
        })
    }
}
