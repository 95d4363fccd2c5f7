//! Interrupts: SIGINT, SIGTERM and SIGHUP during a deploy.
//!
//! Before any host is being changed, a signal runs the "last words" the
//! deploy registered (recording the attempt as interrupted) and exits at
//! once: nothing was changed. Once the rollout has begun, the first signal
//! asks it to stop: the hosts in flight finish, no new batch starts, the
//! rollback policy applies, and the outcome is recorded as interrupted. A
//! second signal runs the last words then registered (recording what is
//! known) and exits at once.
//!
//! Whether changes have begun and what the last words are sit under one
//! lock, held from the decision to exit until the exit: the deploy cannot
//! start changing hosts between a signal's "nothing was changed" and the
//! record that says so. The notices go to stderr, and a stderr that is
//! gone (a hung-up terminal after SIGHUP, a closed pipe) does not stop the
//! next signal from being handled.
//!
//! Without [`Interrupt::install`], signals keep their default meaning; an
//! [`Interrupt`] can still be raised by hand (tests).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::ExitStatus;

type LastWords = Box<dyn FnOnce() + Send>;

/// What a signal must know, under one lock.
#[derive(Default)]
struct State {
    changing: bool,
    last_words: Option<LastWords>,
}

/// Where the notices go: stderr, or (tests) anything that can be written.
type Notices = Arc<Mutex<Box<dyn Write + Send>>>;

/// Signals received so far, and what to do on the second one.
#[derive(Clone)]
pub struct Interrupt {
    count: Arc<AtomicUsize>,
    state: Arc<Mutex<State>>,
    installed: bool,
    notices: Notices,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            count: Arc::default(),
            state: Arc::default(),
            installed: false,
            notices: Arc::new(Mutex::new(Box::new(std::io::stderr()))),
        }
    }
}

impl Interrupt {
    /// An interrupt that only [`Interrupt::raise`] triggers.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Catch SIGINT, SIGTERM and SIGHUP from now on.
    pub fn install() -> std::io::Result<Interrupt> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let interrupt = Interrupt {
            installed: true,
            ..Interrupt::new()
        };
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let handle = interrupt.clone();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                let name = match signal {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                handle.raise_named(name);
            }
        });
        Ok(interrupt)
    }

    /// Whether the operator asked to stop.
    pub fn requested(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// Act as if a signal had arrived.
    pub fn raise(&self) {
        self.raise_named("an interrupt");
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tell the operator on stderr; a stderr that cannot be written to is
    /// no reason to stop handling signals.
    fn notice(&self, text: &str) {
        let mut out = self.notices.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "\ndeployer: {text}");
        let _ = out.flush();
    }

    fn raise_named(&self, name: &str) {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        let state = self.state();
        if n == 1 && self.installed && !state.changing {
            self.notice(&format!(
                "{name} received before any host was changed: stopping"
            ));
            Self::exit_now(state);
        }
        if n == 1 {
            self.notice(&format!(
                "{name} received: letting the hosts in flight finish, starting no new batch (send it again to stop at once)"
            ));
            return;
        }
        self.notice(&format!("{name} received again: recording and exiting now"));
        Self::exit_now(state);
    }

    /// Run the last words, then exit with status 9, holding the state so
    /// that nothing begins meanwhile.
    fn exit_now(mut state: MutexGuard<'_, State>) -> ! {
        if let Some(words) = state.last_words.take() {
            words();
        }
        std::process::exit(ExitStatus::Interrupted as i32);
    }

    /// From now on hosts are being changed: a first signal no longer exits
    /// at once, it stops the rollout after the hosts in flight.
    pub fn changing(&self) {
        self.state().changing = true;
    }

    /// What to run before exiting at once (replaces the previous one).
    /// Only meaningful after [`Interrupt::install`].
    pub fn on_exit(&self, words: impl FnOnce() + Send + 'static) {
        self.state().last_words = Some(Box::new(words));
    }

    /// Take the last words registered so far, to run them by hand (tests:
    /// a second signal would exit the test process).
    #[cfg(test)]
    pub fn take_last_words(&self) -> Option<Box<dyn FnOnce() + Send>> {
        self.state().last_words.take()
    }

    /// Send the notices to `out` instead of stderr (tests).
    #[cfg(test)]
    fn notices_to(mut self, out: Box<dyn Write + Send>) -> Interrupt {
        self.notices = Arc::new(Mutex::new(out));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_raise_is_a_request_not_an_exit() {
        let i = Interrupt::new();
        assert!(!i.requested());
        i.raise();
        assert!(i.requested());
        assert!(i.clone().requested(), "clones share the state");
    }

    /// A stderr that fails every write, as a hung-up terminal does.
    struct Gone;

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        }
    }

    /// Regression: the notices were written with `eprintln!`, which panics
    /// when stderr is gone (the terminal hung up: the very SIGHUP being
    /// handled); the panic ended the signal thread, and every later signal
    /// was caught and ignored, so a second signal no longer stopped deployer.
    #[test]
    fn a_notice_to_a_gone_stderr_does_not_end_the_signal_handling() {
        let i = Interrupt::new().notices_to(Box::new(Gone));
        i.changing();
        let raised = std::thread::spawn({
            let i = i.clone();
            move || i.raise()
        })
        .join();
        assert!(raised.is_ok(), "the signal thread panicked");
        assert!(i.requested());
    }

    #[test]
    fn last_words_can_be_replaced_and_taken() {
        let i = Interrupt::new();
        assert!(i.take_last_words().is_none());
        let said = Arc::new(AtomicUsize::new(0));
        let first = Arc::clone(&said);
        i.on_exit(move || {
            first.fetch_add(1, Ordering::SeqCst);
        });
        let second = Arc::clone(&said);
        i.on_exit(move || {
            second.fetch_add(10, Ordering::SeqCst);
        });
        (i.take_last_words().unwrap())();
        assert_eq!(said.load(Ordering::SeqCst), 10);
        assert!(i.take_last_words().is_none());
    }
}
