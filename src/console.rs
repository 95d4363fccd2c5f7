//! Where a command's words go: standard output, standard error, the colour
//! decision and the confirmation prompt, bundled in one value that is
//! passed down. Reports and prompts are written through it, so a test can
//! capture them and answer the prompt. On a terminal it also owns the
//! line saying which hosts a fan-out still waits for ([`Waiting`]), kept
//! out of the way of every line it prints.
//!
//! It is shared by the threads of a rollout (`-v` streams every host's
//! output), so each line is written whole under a lock. A closed pipe is
//! not an error here: the work goes on and its record is kept.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use crate::matrix::Matrix;
use crate::render::{self, Color};

/// Answers a yes/no question typed by a person.
pub trait Prompt: Send {
    /// Show `question` and read one line; `None` when there is nobody to
    /// ask (no terminal).
    fn ask(&mut self, question: &str) -> Option<String>;
}

/// The real prompt: stdin, only when it is a terminal.
struct Terminal;

impl Prompt for Terminal {
    fn ask(&mut self, question: &str) -> Option<String> {
        if !io::stdin().is_terminal() {
            return None;
        }
        let mut err = io::stderr().lock();
        let _ = write!(err, "{question}");
        let _ = err.flush();
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer).ok()?;
        Some(answer)
    }
}

type Sink = Box<dyn Write + Send>;

/// Standard output and error, colour and prompt of one run.
pub struct Console {
    out: Mutex<Sink>,
    err: Mutex<Sink>,
    prompt: Mutex<Box<dyn Prompt>>,
    /// Whether to colour what goes to stdout (matrices).
    pub color: Color,
    /// Whether to colour what goes to stderr (the `warning` label).
    pub err_color: Color,
    /// The command's result as one JSON document, for `--json`.
    document: Mutex<Option<serde_json::Value>>,
    /// `--quiet`: [`Console::say`] and [`Console::matrix`] print nothing;
    /// warnings, errors and [`Console::report`] still do.
    pub quiet: bool,
    /// The "waiting for" line on the terminal, if any: hidden while a line
    /// is written, so that the two never mix.
    waiting: Option<std::sync::Arc<Waiting>>,
}

impl Console {
    /// The process's own stdout, stderr and terminal, both coloured as
    /// `color` says.
    pub fn stdio(color: Color) -> Console {
        Console::stdio_colors(color, color)
    }

    /// The process's own stdout, stderr and terminal, each with its own
    /// colour decision (one may be a terminal and the other a pipe).
    pub fn stdio_colors(color: Color, err_color: Color) -> Console {
        Console {
            out: Mutex::new(Box::new(io::stdout())),
            err: Mutex::new(Box::new(io::stderr())),
            prompt: Mutex::new(Box::new(Terminal)),
            color,
            err_color,
            document: Mutex::new(None),
            quiet: false,
            waiting: None,
        }
    }

    /// For `--json`: the words of the run go to stderr, so that stdout
    /// carries only the result document (see [`Console::document`]).
    pub fn for_json(err_color: Color) -> Console {
        Console {
            out: Mutex::new(Box::new(io::stderr())),
            ..Console::stdio_colors(err_color, err_color)
        }
    }

    /// A console writing into `out` and `err` and answering prompts with
    /// `prompt` (for tests).
    pub fn new(out: Sink, err: Sink, prompt: Box<dyn Prompt>, color: Color) -> Console {
        Console {
            out: Mutex::new(out),
            err: Mutex::new(err),
            prompt: Mutex::new(prompt),
            color,
            err_color: color,
            document: Mutex::new(None),
            quiet: false,
            waiting: None,
        }
    }

    /// The same console, keeping `waiting`'s line out of the way of what
    /// it prints.
    pub fn with_waiting(mut self, waiting: Option<std::sync::Arc<Waiting>>) -> Console {
        self.waiting = waiting;
        self
    }

    /// The "waiting for" line as a [`crate::fleet::Watch`], for the fleet
    /// whose words this console prints.
    pub fn watch(&self) -> Option<std::sync::Arc<dyn crate::fleet::Watch>> {
        self.waiting
            .clone()
            .map(|w| w as std::sync::Arc<dyn crate::fleet::Watch>)
    }

    /// Run `write` with the "waiting for" line hidden.
    fn aside<T>(&self, write: impl FnOnce() -> T) -> T {
        match self.waiting.as_deref().and_then(Waiting::shown) {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// The same console, printing only problems.
    pub fn quiet(mut self, quiet: bool) -> Console {
        self.quiet = quiet;
        self
    }

    /// Print one line (or several) on stdout, unless quiet.
    pub fn say(&self, text: &str) {
        if !self.quiet {
            self.report(text);
        }
    }

    /// Print one line (or several) on stdout, even when quiet: the report
    /// of something that went wrong.
    pub fn report(&self, text: &str) {
        self.aside(|| {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        });
    }

    /// Print `warning: ...` on stderr.
    pub fn warn(&self, text: &str) {
        self.aside(|| {
            let mut err = self.err.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(err, "{}: {text}", self.err_color.warning_label());
        });
    }

    /// Print a matrix under a title, unless quiet.
    pub fn matrix(&self, title: &str, m: &Matrix) {
        if self.quiet {
            return;
        }
        self.aside(|| {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(out, "{title}");
            let _ = render::text(m, self.color, &mut *out);
            let _ = writeln!(out);
            let _ = out.flush();
        });
    }

    /// Keep `value` as the command's result (the last one kept wins), for
    /// `--json` to print.
    pub fn document(&self, value: serde_json::Value) {
        *self.document.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// The result kept by [`Console::document`], if any.
    pub fn take_document(&self) -> Option<serde_json::Value> {
        self.document
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Ask a question; `None` when nobody can answer.
    pub fn ask(&self, question: &str) -> Option<String> {
        self.aside(|| {
            self.prompt
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ask(question)
        })
    }
}

/// On a terminal, which hosts a long fan-out still waits for: "waiting
/// for 1 host: prod-3 (8 s)", on stderr, from the first second on, gone
/// when the work ends. Only for terminals (never piped, never with
/// `--quiet`): the caller decides, [`Waiting::on_terminal`] helps.
///
/// A run may wait on several fan-outs one after the other: each gets a
/// line of its own, drawn from its first message on and cleared for good
/// when it ends. (A finished indicatif bar cannot be used again: `reset()`
/// draws it once more, which left a stray spinner glyph on the terminal
/// after every run.)
pub struct Waiting {
    /// The line of the fan-out in progress, if it has shown one.
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Waiting {
    /// A spinner on stderr, if stderr is a terminal (not `TERM=dumb`) and
    /// `quiet` is off.
    pub fn on_terminal(quiet: bool) -> Option<std::sync::Arc<Waiting>> {
        // a `dumb` terminal cannot take the line back
        if quiet || !io::stderr().is_terminal() || !anstyle_query::term_supports_color() {
            return None;
        }
        Some(std::sync::Arc::new(Waiting {
            bar: Mutex::new(None),
        }))
    }

    /// A new, undrawn line on stderr.
    fn new_bar() -> indicatif::ProgressBar {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style);
        }
        bar
    }

    /// The line on the terminal now, if any.
    fn shown(&self) -> Option<indicatif::ProgressBar> {
        crate::transport::lock(&self.bar).clone()
    }

    /// The line shown: at most three hosts named, then how many more.
    pub fn message(hosts: &[String], elapsed: std::time::Duration) -> String {
        let n = hosts.len();
        let mut named: Vec<String> = hosts
            .iter()
            .take(3)
            .map(|h| crate::text::one_line(h))
            .collect();
        if n > 3 {
            named.push(format!("{} more", n - 3));
        }
        format!(
            "waiting for {n} host{}: {} ({} s)",
            if n == 1 { "" } else { "s" },
            named.join(", "),
            elapsed.as_secs()
        )
    }
}

impl crate::fleet::Watch for Waiting {
    fn waiting(&self, hosts: &[String], elapsed: std::time::Duration) {
        if elapsed >= std::time::Duration::from_secs(1) && !hosts.is_empty() {
            let mut bar = crate::transport::lock(&self.bar);
            let bar = bar.get_or_insert_with(Waiting::new_bar);
            bar.set_message(Waiting::message(hosts, elapsed));
            bar.tick();
        }
    }

    fn done(&self) {
        // taken away before it is cleared: the next fan-out draws a new one
        if let Some(bar) = crate::transport::lock(&self.bar).take() {
            bar.finish_and_clear();
        }
    }
}

/// A writer into a shared buffer, to read back what was written (tests).
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A prompt with canned answers, in order (tests); `None` once they run out.
pub struct Scripted(pub Vec<Option<String>>);

impl Prompt for Scripted {
    fn ask(&mut self, _question: &str) -> Option<String> {
        if self.0.is_empty() {
            None
        } else {
            self.0.remove(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_waiting_line_names_three_hosts_then_counts() {
        let hosts = |n: usize| (1..=n).map(|i| format!("prod-{i}")).collect::<Vec<_>>();
        assert_eq!(
            Waiting::message(&hosts(1), Duration::from_millis(8400)),
            "waiting for 1 host: prod-1 (8 s)"
        );
        assert_eq!(
            Waiting::message(&hosts(5), Duration::from_secs(2)),
            "waiting for 5 hosts: prod-1, prod-2, prod-3, 2 more (2 s)"
        );
        let odd = ["evil\x1b[2J".to_string()];
        assert!(Waiting::message(&odd, Duration::ZERO).contains("evil\\x1b[2J"));
    }
}
