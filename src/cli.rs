//! The command line, and nothing else: clap derive definitions with help
//! text. Meaning is given to these values in `app`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{exit_status_help, ExitStatus, ExitStatus::*};

/// The examples of `deployer --help` (and of the manual page).
pub const EXAMPLES: &str = "Examples:\n  deployer                      status of every stage\n  deployer --json               the same, for scripts\n  deployer --check              exit 4 if a rollout is pending, 5 on regression or drift\n  deployer --config deployer.ini.example";

/// What `deployer rollback` says about itself, with or without arguments.
const ROLLBACK_HELP: &str = "How the version is chosen:\n  With VERSION, that version; it must not be newer than what any host of the stage runs\n  (a rollback never moves a host forward; `deploy` does). Without it, the version the stage\n  ran before its most recent successful `deploy` or `promote` of PACKAGE, read from the\n  history its hosts keep merged with the local one (every operator's attempts, as\n  `deployer history --hosts STAGE` lists them). The plan names that record: id, who, when.\n  When the hosts it changed ran different versions before it, or nothing is on record,\n  the rollback is refused and lists the candidates, each with the command that picks it.\n\nInto a frozen stage:\n  A rollback to a version the stage ran before (according to that history) is allowed\n  with `--reason`; it is confirmed as on a critical stage (`--yes` skips the question)\n  and recorded as a rollback under freeze. Anything else stays refused unless\n  `--override-freeze --reason`.\n\nOtherwise it is a deploy: the same plan, lock, checks, history and notifications.\n\nExamples:\n  deployer rollback fastpath prod                      back to what prod ran before its last deploy\n  deployer rollback fastpath prod --dry-run            show that version and where it comes from\n  deployer rollback fastpath prod 0.77~pr705-119       back to exactly this version\n  deployer rollback fastpath prod --reason \"INC-42\"    into a frozen prod";

/// The exit statuses of `deploy` and `promote`.
const DEPLOY_STATUSES: &[ExitStatus] = &[
    Success,
    Usage,
    Unreachable,
    Refused,
    FailedUnchanged,
    FailedPartial,
    Interrupted,
];

/// The text after a command's options in `--help`: its examples, then the
/// exit statuses it may end with (every one when `statuses` is empty),
/// worded as the one table in `error` words them.
pub fn after_help(examples: &str, statuses: &[ExitStatus]) -> String {
    format!("{examples}\n\n{}", exit_status_help(statuses))
}

/// Take Debian packages through a pipeline of stages over SSH.
///
/// Without a command, shows which version of each package runs on each
/// stage: `►►` marks a pending rollout (the left stage runs a newer
/// version), `⚠` a regression (the right stage runs a newer one).
#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version = env!("DEPLOYER_VERSION"),
    after_long_help = after_help(EXAMPLES, &[])
)]
pub struct Cli {
    /// Read this configuration file instead of searching for deployer.ini
    /// [env: DEPLOYER_CONFIG, read when --config is not given].
    ///
    /// The file must belong to you or root and be writable by nobody else,
    /// wherever it is found: it names the commands deployer runs.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Record host keys of hosts never seen before (changed keys are still refused).
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,

    /// Print nothing when all went well, only problems (for cron): warnings
    /// and errors on stderr, and the report of a deploy that failed.
    /// Refused together with `--verbose`, as cargo refuses it.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Say more on stderr: `-v` logs every command run on each host (and
    /// a deploy shows every host's apt output); `-vv` also connections,
    /// timings and exit statuses. Commands from the configuration
    /// (`health_check`) are named, not shown.
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Status options (when no command is given).
    #[command(flatten)]
    pub status: StatusArgs,

    /// What to do; `status` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The command line of this process; on a mistake, clap's message and
    /// exit status 2, as for any other usage error.
    pub fn from_env() -> Cli {
        let cli = Cli::parse();
        if let Err(e) = cli.check() {
            e.exit();
        }
        cli
    }

    /// The rules clap cannot enforce: `--quiet` with `--verbose` is
    /// refused wherever each is written (a conflict between global
    /// arguments given to different subcommands, `-v hosts -q`, escapes
    /// clap's own check).
    pub fn check(&self) -> Result<(), clap::Error> {
        if self.quiet && self.verbose > 0 {
            return Err(<Cli as clap::CommandFactory>::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "the argument '--quiet' cannot be used with '--verbose'",
            ));
        }
        Ok(())
    }
}

/// When to use ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and NO_COLOR is not set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Options of the status view.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Print the full status as JSON (shape documented in docs/reference.md);
    /// the same as `--format json`.
    #[arg(long)]
    pub json: bool,

    /// How to print the status: `text` (the matrix, the default), `json`
    /// (as `--json`), or `prometheus` (metrics in Prometheus' text format,
    /// for node_exporter's textfile collector; printed even with `--quiet`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<StatusFormat>,

    /// Also report by exit status: 4 if a rollout is pending, 5 if anything
    /// regressed, drifted inside a stage or is broken (3, unreachable
    /// hosts, takes precedence).
    #[arg(long)]
    pub check: bool,

    /// Only this stage (repeatable); only its hosts are contacted.
    #[arg(long = "stage", value_name = "STAGE")]
    pub stages: Vec<String>,

    /// Only this package (repeatable).
    #[arg(long = "package", value_name = "PACKAGE")]
    pub packages: Vec<String>,

    /// Only this host, as written in `hosts` or by its name (repeatable);
    /// only the hosts named are contacted.
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
}

/// How the status view is printed (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    /// The matrix, for people.
    Text,
    /// The full status as JSON.
    Json,
    /// Metrics in Prometheus' text exposition format.
    Prometheus,
}

impl StatusArgs {
    /// The format asked for: `--format`, else JSON with `--json`, else
    /// text. `--json` with another `--format` is an error.
    pub fn format(&self) -> Result<StatusFormat, String> {
        match (self.json, self.format) {
            (true, Some(f)) if f != StatusFormat::Json => Err(format!(
                "`--json` and `--format {}` ask for two formats",
                f.to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_string())
            )),
            (true, _) => Ok(StatusFormat::Json),
            (false, f) => Ok(f.unwrap_or(StatusFormat::Text)),
        }
    }

    /// Whether a filter (`--stage`, `--package`, `--host`) was given.
    pub fn filtered(&self) -> bool {
        !(self.stages.is_empty() && self.packages.is_empty() && self.hosts.is_empty())
    }

    /// These options together with `other`'s (given before the command):
    /// either flag, every filter.
    pub fn merged(&self, other: &StatusArgs) -> StatusArgs {
        let both = |a: &[String], b: &[String]| [a, b].concat();
        StatusArgs {
            json: self.json || other.json,
            format: self.format.or(other.format),
            check: self.check || other.check,
            stages: both(&other.stages, &self.stages),
            packages: both(&other.packages, &self.packages),
            hosts: both(&other.hosts, &self.hosts),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the version matrix (the default).
    Status(StatusArgs),
    /// Install a version of a package on every host of a stage: the newest
    /// installable one, or exactly VERSION (an upgrade or a rollback).
    #[command(
        after_long_help = after_help(
            "Examples:\n  deployer deploy fastpath                     newest version to the first stage\n  deployer deploy fastpath prod 0.81~pr748-191 exactly this version to prod\n  deployer deploy fastpath prod 0.77~pr705-119 roll prod back\n  deployer deploy fastpath hel --dry-run       show the plan, change nothing",
            DEPLOY_STATUSES
        )
    )]
    Deploy {
        /// The package, one of `deb_packages` (with `--plan`, the plan's).
        #[arg(required_unless_present = "plan")]
        package: Option<String>,
        /// The stage; the first stage when omitted.
        stage: Option<String>,
        /// The exact version; the newest installable one when omitted.
        version: Option<String>,
        /// How to carry it out.
        #[command(flatten)]
        opts: DeployArgs,
    },
    /// Roll a package back on a stage: to VERSION, or to the version the
    /// stage ran before its latest deploy or promotion, found in the
    /// history its hosts keep. A freeze lets it through with `--reason`.
    #[command(
        arg_required_else_help = true,
        after_help = after_help(ROLLBACK_HELP, DEPLOY_STATUSES),
        after_long_help = after_help(ROLLBACK_HELP, DEPLOY_STATUSES)
    )]
    Rollback {
        /// The package, one of `deb_packages` (with `--plan`, the plan's).
        #[arg(required_unless_present = "plan")]
        package: Option<String>,
        /// The stage; the first stage when omitted.
        stage: Option<String>,
        /// The version to go back to; when omitted, the one the stage ran
        /// before its latest successful deploy or promotion.
        version: Option<String>,
        /// How to carry it out.
        #[command(flatten)]
        opts: DeployArgs,
    },
    /// Deploy to STAGE the version that runs on the stage before it.
    #[command(
        after_long_help = after_help(
            "Examples:\n  deployer promote fastpath        to the first stage that is behind its left neighbour\n  deployer promote fastpath prod   what runs on the stage before prod, to prod",
            DEPLOY_STATUSES
        )
    )]
    Promote {
        /// The package, one of `deb_packages` (with `--plan`, the plan's).
        #[arg(required_unless_present = "plan")]
        package: Option<String>,
        /// The stage to promote to; the first stage behind its left
        /// neighbour when omitted.
        stage: Option<String>,
        /// How to carry it out.
        #[command(flatten)]
        opts: DeployArgs,
    },
    /// Show a plan written by `--dry-run --plan-out FILE` and sign its exact
    /// bytes with your SSH key (`ssh-keygen -Y sign -n deployer-plan`),
    /// appending the signature to FILE.sig.
    #[command(
        after_long_help = after_help(
            "Examples:\n  deployer approve plan.json              sign with the agent's first key, else ~/.ssh/id_ed25519\n  deployer approve plan.json -i ~/.ssh/id_ed25519 --yes",
            &[Success, Usage, Refused]
        )
    )]
    Approve {
        /// The plan file.
        file: PathBuf,
        /// The private key to sign with (default: the agent's first key,
        /// else the default identity, as ssh does).
        #[arg(short = 'i', value_name = "KEY")]
        identity: Option<PathBuf>,
        /// Sign without asking for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Freeze a stage during an incident: deploy and promote are refused
    /// until `unfreeze` (a rollback to a version the stage ran before goes
    /// through with `--reason`). Recorded on the stage's hosts.
    Freeze {
        /// The stage.
        stage: String,
        /// Why (shown to everyone who tries to deploy).
        #[arg(long)]
        reason: String,
        /// Print the history record of the change as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Lift a stage freeze.
    Unfreeze {
        /// The stage.
        stage: String,
        /// Why the freeze ends: recorded in the history, and told to the
        /// team with the `unfreeze` notification.
        #[arg(long)]
        reason: Option<String>,
        /// Print the history record of the change as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Break the deploy lock of a stage (a holder that is gone or must be
    /// stopped). Recorded in the history. A running install keeps its own
    /// lock.
    Unlock {
        /// The stage.
        stage: String,
        /// Required: breaking a lock may cut off a deploy in progress.
        #[arg(long)]
        force: bool,
        /// Why (kept in the history).
        #[arg(long)]
        reason: String,
        /// Print the history record of the change as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show how every host will be reached (address, port, user, keys,
    /// known_hosts files, jump hosts, keepalives, key exchange algorithms),
    /// from deployer.ini and the ssh config, without connecting: the `ssh
    /// -G` of deployer.
    Hosts {
        /// Only this stage.
        stage: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also connect (a handshake, no login to the host itself) and say
        /// what deployer decides about each host's key and which key
        /// exchange was negotiated; records nothing.
        #[arg(long)]
        check: bool,
    },
    /// Write status badges: on every host, `badges_path/PKG.svg` showing
    /// the version installed there; with `--output DIR`, also the badges
    /// of every stage and host and a dashboard page into DIR.
    #[command(
        name = "refresh-badges",
        alias = "refresh_badges",
        after_long_help = after_help(
            "Examples:\n  deployer refresh_badges --quiet                 from cron: badges on every host, silent when all went well\n  deployer refresh-badges --output /var/www/pipeline   also DIR/STAGE/PKG.svg, DIR/host/HOST/PKG.svg and DIR/index.html\n  deployer refresh-badges --output out --no-host-badges --png",
            &[Success, Internal, Usage, Unreachable]
        )
    )]
    RefreshBadges(BadgeArgs),
    /// Show the deploy history, newest first.
    #[command(
        after_long_help = "Examples:\n  deployer history                     this machine's log\n  deployer history fastpath --stage prod\n  deployer history --hosts prod        also what every operator did to prod, as its hosts recorded it\n  deployer history --hosts --since 6h  every stage's hosts, the last six hours\n  deployer history --limit 5           the newest five attempts"
    )]
    History {
        /// Only this package.
        package: Option<String>,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Also read the history kept on every host of STAGE (every
        /// operator's attempts there), merged with the local log; without
        /// STAGE, the hosts of `--stage`, or of every stage.
        #[arg(long, value_name = "STAGE", num_args = 0..=1, default_missing_value = "")]
        hosts: Option<String>,
        /// Only attempts started since then: a duration back from now
        /// (`30m`, `2h`, `3d`) or a time with its offset
        /// (`2026-12-07T05:30:00Z`, `2026-12-07 06:30+01:00`).
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Only the newest N attempts.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What changed packages on the hosts, oldest first: dpkg's log
    /// (installs, upgrades, removals, with versions, gzipped rotations
    /// included), each change attributed to the deployer attempt it
    /// belongs to (who, why, attempt id), else to the apt run in apt's
    /// history (its command line and `Requested-By`), else to dpkg alone.
    /// Read-only; logs the login user cannot read are read through
    /// `sudo -n`, never anything else.
    #[command(
        after_long_help = after_help(
            "Examples:\n  deployer timeline                          every stage, the last two hours\n  deployer timeline prod --since 30m\n  deployer timeline --host prod-2 --package openssl --since 3d\n  deployer timeline --since '2026-12-07 05:30+01:00' --json",
            &[Success, Usage, Unreachable]
        )
    )]
    Timeline {
        /// Only this stage (default: every stage).
        stage: Option<String>,
        /// Changes since then: a duration back from now (`30m`, `2h`,
        /// `3d`, `1w`) or a time with its offset (`2026-12-07T05:30:00Z`,
        /// `2026-12-07 06:30+01:00`); a time without an offset is refused.
        #[arg(long, value_name = "DURATION|TIME", default_value = crate::timeline::DEFAULT_SINCE)]
        since: String,
        /// Only this host (repeatable); only these hosts are contacted.
        #[arg(long, value_name = "HOST")]
        host: Vec<String>,
        /// Only this package (repeatable); any package, not only
        /// `deb_packages`.
        #[arg(long, value_name = "PKG")]
        package: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the configuration, then every host end to end: reachable,
    /// host key known, login, `sudo -n`, dpkg and apt present,
    /// `badges_path` writable, and the stage the host says it is in
    /// (`DEPLOYMENT=` in /etc/machine-info). Changes nothing.
    #[command(
        after_long_help = after_help(
            "Examples:\n  deployer check             every host of every stage\n  deployer check prod --json",
            &[Success, Usage, Unreachable]
        )
    )]
    Check {
        /// Only this stage.
        stage: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the versions of a package each stage's hosts can install,
    /// newest first in dpkg order, marking the candidate and what each host
    /// runs. Runs `apt-get update` on the hosts first (as a deploy does).
    #[command(
        after_long_help = after_help(
            "Examples:\n  deployer versions fastpath              every stage, after apt-get update\n  deployer versions fastpath prod --no-update --json",
            &[Success, Usage, Unreachable]
        )
    )]
    Versions {
        /// The package, one of `deb_packages`.
        package: String,
        /// Only this stage.
        stage: Option<String>,
        /// Read the hosts' current package lists: no `apt-get update`
        /// (which needs sudo).
        #[arg(long)]
        no_update: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: subcommands and flags; with
    /// `--dynamic`, also stage and package names from the configuration.
    #[command(
        after_long_help = "Examples:\n  deployer completions bash > ~/.local/share/bash-completion/completions/deployer\n  deployer completions zsh > ~/.zfunc/_deployer          (with fpath+=~/.zfunc)\n  deployer completions fish > ~/.config/fish/completions/deployer.fish\n  echo 'source <(deployer completions bash --dynamic)' >> ~/.bashrc"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
        /// Print a script that asks deployer for each completion, so that
        /// stage and package names come from the deployer.ini found from
        /// the current directory (or DEPLOYER_CONFIG). Source it from the
        /// shell's startup file: it must match the installed deployer.
        #[arg(long)]
        dynamic: bool,
    },
    /// Print the manual page (roff): `deployer man | man -l -`.
    Man {
        /// Write every page (deployer.1, one deployer-COMMAND.1 per
        /// command, and deployer.ini.5) into DIR instead.
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
    /// Write a commented deployer.ini in the current directory (never
    /// replacing one): every stage on this machine (`local`), or the
    /// stages and hosts of an Ansible inventory.
    #[command(
        after_long_help = "Examples:\n  deployer init                                     test, staging, prod on this machine\n  deployer init --packages fastpath,ooni-api\n  deployer init --from-ansible inventory/hosts.ini  one stage per group of the inventory\n  deployer init --from-ansible hosts.yml --stages test,hel,prod"
    )]
    Init {
        /// Take stages and hosts from this Ansible inventory: one stage per
        /// group, `ansible_host`/`ansible_user`/`ansible_port` as
        /// `user@host:port`. Read through `ansible-inventory -i INVENTORY
        /// --list`, unless it is that command's JSON output already.
        #[arg(long, value_name = "INVENTORY")]
        from_ansible: Option<PathBuf>,
        /// The inventory groups to make stages of, in pipeline order
        /// (default: every group under `all` but `ungrouped`).
        #[arg(
            long,
            value_name = "GROUP,...",
            value_delimiter = ',',
            requires = "from_ansible"
        )]
        stages: Option<Vec<String>>,
        /// Let Ansible run an inventory script or plugin (an executable
        /// inventory file, one starting with `#!`, or one naming a
        /// `plugin:`), which is refused otherwise: it runs code on this
        /// machine to learn the hosts.
        #[arg(long, requires = "from_ansible")]
        allow_executable_inventory: bool,
        /// The packages to list in `deb_packages` (default: `base-files`,
        /// as a placeholder that every Debian host has).
        #[arg(long, value_name = "PKG,...", value_delimiter = ',')]
        packages: Vec<String>,
    },
    /// Show the Debian changelog entries a deploy would send out (or, for
    /// a rollback, take back), newest first, with a count of hosts per
    /// starting version, without deploying. Read from the target version's
    /// own package on one host of the stage; read-only (no apt-get update,
    /// no sudo).
    #[command(
        after_long_help = after_help(
            "Examples:\n  deployer changes fastpath                      what `deployer deploy fastpath` would send to the first stage\n  deployer changes fastpath prod                 what the version apt would install on prod brings\n  deployer changes fastpath prod 0.77~pr705-119  what a rollback of prod would take back\n  deployer changes fastpath prod --json",
            &[Success, Usage, Unreachable]
        )
    )]
    Changes {
        /// The package, one of `deb_packages`.
        package: String,
        /// The stage; the first stage when omitted (as `deploy`).
        stage: Option<String>,
        /// The target version; when omitted, the version apt would install
        /// on the stage's hosts (as `deploy`; the newest when they
        /// disagree).
        version: Option<String>,
        /// Print JSON: every selected entry with all its change lines.
        #[arg(long)]
        json: bool,
    },
}

/// The shells `deployer completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU Bash (with the bash-completion package).
    Bash,
    /// Z shell.
    Zsh,
    /// The friendly interactive shell.
    Fish,
}

/// Options shared by `deploy`, `rollback` and `promote`.
#[derive(Debug, Clone, Default, Args)]
pub struct DeployArgs {
    /// Print the plan (hosts, versions, commands, what apt would do) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation on a critical stage.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Override the stage order guard (needs --reason). Does not override a freeze.
    #[arg(long)]
    pub force: bool,
    /// Deploy into a frozen stage, one held by alerts, or one outside its
    /// deploy windows (needs --reason; recorded). A rollback to a version
    /// the stage ran before needs only --reason.
    #[arg(long)]
    pub override_freeze: bool,
    /// Why --force, --override-freeze or a rollback into a frozen stage is
    /// done; kept in the history.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// After the first host, change N hosts at a time, or N% of the hosts
    /// taking part, rounded up (default: `batch_size`).
    #[arg(long, value_name = "N|N%", value_parser = parse_batch)]
    pub batch: Option<crate::plan::Share>,
    /// When the rollout fails, put the changed hosts back on their previous version.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Let apt also remove, install or upgrade other packages (shown in the plan).
    #[arg(long)]
    pub allow_dependency_changes: bool,
    /// Stream the service's logs on the first host (the canary) while its health check runs.
    #[arg(long)]
    pub follow_logs: bool,
    /// Deploy to hosts that hold the package (`apt-mark hold`); the hold is set again after.
    #[arg(long)]
    pub allow_held: bool,
    /// Go ahead on the hosts that answer: hosts of the stage that cannot be reached are left out (not locked, not changed) and recorded as skipped.
    #[arg(long)]
    pub skip_unreachable: bool,
    /// Leave HOST of the stage alone (as `deployer hosts` names it); repeatable. Recorded as skipped.
    #[arg(long, value_name = "HOST")]
    pub exclude: Vec<String>,
    /// Print the result as JSON on stdout: the history record of the
    /// attempt, or with --dry-run the plan; the progress goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// With --dry-run: also write the plan to FILE, for `deployer approve`
    /// and `--plan` (hosts' states, apt's changes, the configuration's
    /// digest, who made it, when it expires).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub plan_out: Option<PathBuf>,
    /// How long a plan written by --plan-out stays good (s, m, h, d, w).
    #[arg(long, value_name = "DURATION", default_value = crate::approval::DEFAULT_EXPIRES, value_parser = parse_expires, requires = "plan_out")]
    pub expires: std::time::Duration,
    /// Carry out exactly the plan in FILE (from --plan-out), checked
    /// against the hosts and the configuration, with the approvals
    /// (`FILE.sig`) the stage's `approvals` asks for.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "plan_out"])]
    pub plan: Option<PathBuf>,
}

/// `--expires`: a whole number and a unit, as `--since` takes durations.
fn parse_expires(text: &str) -> Result<std::time::Duration, String> {
    match crate::timeline::parse_duration(text.trim()) {
        Some(secs) if secs > 0 => Ok(std::time::Duration::from_secs(secs.unsigned_abs())),
        _ => Err(
            "accepted: a whole number and a unit, e.g. `30m`, `24h`, `3d` (s, m, h, d, w)".into(),
        ),
    }
}

/// `--batch`: as `batch_size` is written.
fn parse_batch(text: &str) -> Result<crate::plan::Share, String> {
    crate::plan::Share::parse(text, 1).map_err(|reason| {
        format!(
            "{reason}; {}",
            crate::config::ACCEPTED_BATCH_SIZE.replace(" (default 1)", "")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn deployer_config_is_not_folded_into_config() {
        // `app` reads DEPLOYER_CONFIG itself, so errors can name it.
        let config = Cli::command()
            .get_arguments()
            .find(|a| a.get_id() == "config")
            .expect("--config")
            .get_env()
            .map(ToOwned::to_owned);
        assert_eq!(config, None);
    }

    #[test]
    fn history_takes_a_stage_for_hosts() {
        let cli =
            Cli::try_parse_from(["deployer", "history", "fastpath", "--hosts", "prod"]).unwrap();
        let Some(Command::History { package, hosts, .. }) = cli.command else {
            panic!("history")
        };
        assert_eq!(package.as_deref(), Some("fastpath"));
        assert_eq!(hosts.as_deref(), Some("prod"));
    }

    #[test]
    fn status_flags_work_with_and_without_the_subcommand() {
        let top = Cli::try_parse_from(["deployer", "--json"]).unwrap();
        assert!(top.status.json && top.command.is_none());
        let sub = Cli::try_parse_from(["deployer", "status", "--check"]).unwrap();
        assert!(matches!(
            sub.command,
            Some(Command::Status(StatusArgs { check: true, .. }))
        ));
    }
}

/// Options of `refresh-badges`.
#[derive(Debug, Clone, Default, Args)]
pub struct BadgeArgs {
    /// Also write, on this machine, one badge per package per stage
    /// (DIR/STAGE/PKG.svg), per host (DIR/host/HOST/PKG.svg), and the
    /// dashboard DIR/index.html.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Also write a PNG beside every SVG badge (as `badges_png = yes`).
    #[arg(long)]
    pub png: bool,
    /// Do not write on the hosts, only into --output DIR.
    #[arg(long, requires = "output")]
    pub no_host_badges: bool,
}
