//! What every phase needs ([`Context`]: the configuration, the console,
//! the options, the signals), and the hosts' states as read before and
//! after the change ([`Facts`]).

use crate::config::Config;
use crate::console::Console;
use crate::fleet::Fleet;
use crate::interrupt::Interrupt;
use crate::matrix::{self, HostReport, Matrix};

use super::request::Options;

/// What every phase needs: the configuration, where to talk, the options,
/// and whether the operator asked to stop.
pub struct Context<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// Output and prompt.
    pub console: &'a Console,
    /// How to carry it out.
    pub opts: &'a Options,
    /// Signals received.
    pub interrupt: &'a Interrupt,
}

/// The hosts' states, and the matrix of the stages connected to.
pub struct Facts {
    /// What each host said.
    pub reports: Vec<HostReport>,
    /// The matrix of those stages.
    pub matrix: Matrix,
}

/// Read every connected host's state and build the matrix.
pub fn read_facts(cx: &Context<'_>, fleet: &mut Fleet, stages: Option<&[usize]>) -> Facts {
    let reports = fleet.status(&cx.config.packages, cx.config.ssh.command_timeout);
    let matrix = matrix::for_config(cx.config, stages, &reports);
    Facts { reports, matrix }
}
