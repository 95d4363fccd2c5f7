//! What a run shows: the colour decisions, the console of a command, the
//! `warning:` and `error:` lines on stderr, `-v` logs, and writing a
//! command's result to stdout.

use std::io::{self, IsTerminal, Write};

use crate::cli::{Cli, ColorChoice};
use crate::console::Console;
use crate::error::{ExitStatus, Fatal};
use crate::render::Color;

/// `-v` and `-vv`: log lines on stderr (`tracing`), every command run on
/// each host, then connections, timings and exit statuses. Nothing
/// without `-v`.
pub(super) fn start_logs(cli: &Cli) {
    let level = match cli.verbose {
        0 => return,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(stderr_color(cli) == Color::Always)
        .try_init();
}

/// Colour on or off: `--color always|never`; otherwise off with
/// `NO_COLOR` (non-empty), on with `CLICOLOR_FORCE` (non-empty, as
/// `anstyle-query` and clap read it), off with `CLICOLOR=0`, else on for a
/// terminal whose `TERM` is not `dumb`.
pub(super) fn decide_color(choice: ColorChoice, is_terminal: bool) -> Color {
    match choice {
        ColorChoice::Always => Color::Always,
        ColorChoice::Never => Color::Never,
        ColorChoice::Auto if anstyle_query::no_color() => Color::Never,
        ColorChoice::Auto if anstyle_query::clicolor_force() => Color::Always,
        ColorChoice::Auto if anstyle_query::clicolor() == Some(false) => Color::Never,
        ColorChoice::Auto if is_terminal && anstyle_query::term_supports_color() => Color::Always,
        ColorChoice::Auto => Color::Never,
    }
}

/// The colour decision for stderr.
pub(super) fn stderr_color(cli: &Cli) -> Color {
    decide_color(cli.color, io::stderr().is_terminal())
}

/// The console of this run: stdout coloured as `color`, stderr as its own
/// decision.
pub(super) fn console(cli: &Cli, color: Color) -> Console {
    Console::stdio_colors(color, stderr_color(cli))
        .quiet(cli.quiet)
        .with_waiting(crate::console::Waiting::on_terminal(cli.quiet))
}

/// What shows, on a terminal, the hosts a long fan-out waits for.
pub(super) fn waiting(cli: &Cli) -> Option<std::sync::Arc<dyn crate::fleet::Watch>> {
    crate::console::Waiting::on_terminal(cli.quiet).map(|w| w as _)
}

/// Run `work` with the console of this run. With `json`, its words go to
/// stderr, and its result document is printed on stdout afterwards: for
/// deploys, promotions, rollbacks, freezes and unlocks the attempt's
/// history record, refused ones included; `null` only when there is none
/// (an error before any attempt, such as an unreadable configuration: the
/// error is on stderr, the exit status says which).
pub(super) fn with_console(
    cli: &Cli,
    color: Color,
    json: bool,
    work: impl FnOnce(&Console) -> Result<ExitStatus, Fatal>,
) -> Result<ExitStatus, Fatal> {
    if !json {
        return work(&console(cli, color));
    }
    let console = Console::for_json(stderr_color(cli))
        .quiet(cli.quiet)
        .with_waiting(crate::console::Waiting::on_terminal(cli.quiet));
    let result = work(&console);
    let document = console.take_document().unwrap_or(serde_json::Value::Null);
    emit(|out| {
        serde_json::to_writer_pretty(&mut *out, &document)?;
        writeln!(out)
    })?;
    result
}

/// Print `fatal` on stderr: its `error:` line, then its `note:` lines.
pub(super) fn print_fatal(fatal: &Fatal, color: Color) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{}: {}", color.error_label(), fatal.message);
    for n in &fatal.notes {
        let _ = writeln!(err, "note: {n}");
    }
}

/// Print `warning: MESSAGE` on stderr, coloured as stderr allows.
pub(super) fn warn(cli: &Cli, message: &str) {
    let _ = writeln!(
        io::stderr(),
        "{}: {message}",
        stderr_color(cli).warning_label()
    );
}

/// Write to stdout; a closed pipe (`deployer | head`) is not an error.
pub(super) fn emit(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), Fatal> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            Err(Fatal::usage(format!("cannot write the output: {e}")).status(ExitStatus::Internal))
        }
    }
}
