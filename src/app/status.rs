//! The status view (`deployer` alone, or `deployer status`): the matrix of
//! versions per stage, as text, JSON or Prometheus metrics, and the exit
//! status `--check` asks for.

use crate::cli::{Cli, StatusArgs, StatusFormat};
use crate::error::{ExitStatus, Fatal};
use crate::fleet::Fleet;
use crate::matrix;
use crate::render::{self, Color};

use super::output::{emit, waiting};
use super::selection;
use super::setup::{load_config, targets};

/// The status view of the hosts `args` selects: status 3 when some host
/// did not answer; with `--check`, 5 for regressions, drift or broken
/// packages, else 4 for pending ones; with `--quiet`, printed only when
/// the status is not 0 (metrics, `--format prometheus`, are data for a
/// file: always printed).
pub(super) fn command(cli: &Cli, args: &StatusArgs, color: Color) -> Result<ExitStatus, Fatal> {
    let format = args
        .format()
        .map_err(|e| Fatal::usage(e).note("give one of them: `--format json` is `--json`"))?;
    let config = load_config(cli)?;
    // the filters are checked before any host is contacted, and only the
    // hosts they keep are
    let only = selection::Selection::new(&config, &args.stages, &args.packages, &args.hosts)?;
    let mine = targets(cli, &config)?
        .into_iter()
        .filter(|t| only.keeps(t))
        .collect();
    let mut fleet = Fleet::unopened(mine, config.parallelism, waiting(cli));
    let reports = fleet.survey(&only.packages, config.ssh.command_timeout);
    let read_at = u64::try_from(crate::history::now_unix()).unwrap_or(0);
    let mut m = matrix::build(&only.packages, &only.columns, &reports);
    crate::alerts::mark_stages(config.alerts.as_ref(), &mut m);
    crate::window::mark_stages(&config, &mut m, crate::window::now());
    let s = m.summary();
    let status = if s.answered < s.hosts {
        ExitStatus::Unreachable
    } else if args.check && (s.regressions > 0 || s.drift > 0 || s.broken > 0) {
        ExitStatus::Attention
    } else if args.check && s.pending > 0 {
        ExitStatus::Pending
    } else {
        ExitStatus::Success
    };
    // --quiet: the view only when it says something is wrong
    if cli.quiet && status == ExitStatus::Success && format != StatusFormat::Prometheus {
        return Ok(status);
    }
    match format {
        StatusFormat::Json => emit(|out| render::json(&m, &reports, out))?,
        StatusFormat::Text => emit(|out| render::text(&m, color, out))?,
        StatusFormat::Prometheus => {
            // with `[alerts]`: a stage Alertmanager could not be asked
            // about has no sample (unknown is not "not held")
            let held: Option<Vec<(String, bool)>> = config.alerts.as_ref().map(|_| {
                m.columns
                    .iter()
                    .filter_map(|c| match &c.alerts {
                        Some(crate::alerts::Hold::Unreachable { .. }) | None => None,
                        Some(hold) => Some((c.name.clone(), hold.held())),
                    })
                    .collect()
            });
            let extra = render::PrometheusExtra {
                read_at,
                held_by_alerts: held.as_deref(),
            };
            emit(|out| render::prometheus(&m, &reports, &extra, out))?;
        }
    }
    Ok(status)
}
