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
//! Without [`Interrupt::install`], signals keep their default meaning; an
//! [`Interrupt`] can still be raised by hand (tests).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::ExitStatus;

type LastWords = Box<dyn FnOnce() + Send>;

/// Signals received so far, and what to do on the second one.
#[derive(Clone, Default)]
pub struct Interrupt {
    count: Arc<AtomicUsize>,
    last_words: Arc<Mutex<Option<LastWords>>>,
    installed: bool,
    changing: Arc<std::sync::atomic::AtomicBool>,
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

    fn raise_named(&self, name: &str) {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 && self.installed && !self.changing.load(Ordering::SeqCst) {
            eprintln!("\ndeployer: {name} received before any host was changed: stopping");
            self.exit_now();
        }
        if n == 1 {
            eprintln!(
                "\ndeployer: {name} received: letting the hosts in flight finish, starting no new batch (send it again to stop at once)"
            );
            return;
        }
        eprintln!("\ndeployer: {name} received again: recording and exiting now");
        self.exit_now();
    }

    /// Run the last words, then exit with status 9.
    fn exit_now(&self) {
        let words = self
            .last_words
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(words) = words {
            words();
        }
        std::process::exit(ExitStatus::Interrupted as i32);
    }

    /// From now on hosts are being changed: a first signal no longer exits
    /// at once, it stops the rollout after the hosts in flight.
    pub fn changing(&self) {
        self.changing.store(true, Ordering::SeqCst);
    }

    /// What to run before exiting at once (replaces the previous one).
    /// Only meaningful after [`Interrupt::install`].
    pub fn on_exit(&self, words: impl FnOnce() + Send + 'static) {
        *self.last_words.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(words));
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
}
