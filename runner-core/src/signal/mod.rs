//! Ctrl-C scoped to `run`: the first SIGINT cancels the main future.
//!
//! # What a user sees
//!
//! With [`Interrupt::Auto`] (the default), while a `run` is in progress on the process's main
//! thread and SIGINT still had its default disposition, the first Ctrl-C cancels the main future:
//! it is dropped (on the loop's thread, so its destructors run) and `run` returns
//! [`RunError::Interrupted`](crate::RunError::Interrupted). With
//! [`Builder::interrupt_grace`](crate::Builder::interrupt_grace), [`interrupted()`] resolves
//! instead and the main future has the grace to finish (its output is then returned); a second
//! Ctrl-C, or the end of the grace, drops it. Outside `run`, after `run` returned by any path
//! (value, error, panic, interruption), Ctrl-C ends the process exactly as the default
//! disposition does: it is killed by SIGINT.
//!
//! # Design: one handler per process, no system call per run
//!
//! Python installs its handler at the start of each run and restores the default at the end.
//! That is two `sigaction` calls per run, more than a whole `run` of a ready future costs here, so
//! the runner does something else with the same observable behaviour:
//!
//! - The first `run` that wants to intercept (`Auto` on the main thread, or `Always`) asks the
//!   kernel once for SIGINT's disposition. If it is the default (`SIG_DFL`), the runner installs
//!   its handler **once for the life of the process**, plus a watcher thread (`runner-sigint`)
//!   blocked on a pipe. If it is anything else (a user's handler, `SIG_IGN`), the runner never
//!   installs anything and no run ever intercepts; that answer is also kept for good.
//! - Each run only touches atomics, with no system call and one read-modify-write: a
//!   process-wide "a run intercepts" flag (plain stores: only the main thread writes it; runs on
//!   other threads, possible with `Always`, keep a counter instead), and the runner's own
//!   "running, generation n, k Ctrl-Cs seen" word. Main-thread detection is cached per thread.
//!   Measured with callgrind on tokio's current-thread loop, a `run` of a ready future with
//!   `Auto` on the main thread executes about 50 instructions more than with `Never` (2,099
//!   against 2,051), and `Never` about 10 more than before this module existed.
//! - The handler is async-signal-safe. It reads the flag. When no run intercepts, it puts
//!   `SIG_DFL` back and re-raises SIGINT, both async-signal-safe: the signal is delivered again
//!   as soon as the handler returns, now with the default action, and the process dies by SIGINT
//!   as if the runner had never been there. Otherwise it bumps a counter and writes one byte to
//!   the pipe; nothing else.
//! - The watcher thread, a normal thread, does the rest: it finds the runs in progress, cancels
//!   them through the runner's own wake path ([`RunError::Interrupted`](crate::RunError)), or fires
//!   [`interrupted()`] and keeps the grace deadline in its `poll` timeout. A loop parked in its
//!   reactor is woken like by any cross-thread wake.
//! - A Ctrl-C is never lost, whatever the timing. If the run ended between the signal and the
//!   watcher (a window of microseconds), the process dies as by default. If the watcher counted
//!   it for the run but the main future's last poll had already finished, the run returns
//!   `Interrupted` all the same and its value is dropped (Python loses the result the same way);
//!   if that last poll panicked, the panic goes on and the `Interrupted` ends the runner's next
//!   run instead.
//!
//! # Edges
//!
//! - **A handler installed after ours wins.** `sigaction` replaces ours: we are never called
//!   again and nothing of ours runs. A library that chains to the previous handler (signal-hook,
//!   and so `tokio::signal`) calls ours from its own; the handler asks the kernel which handler is
//!   installed (`sigaction` is async-signal-safe) and, when it is not ours, does nothing at all.
//! - **SIG_DFL restored by the user after ours was installed:** runs do not intercept any more
//!   (the default action kills the process). Setting a handler of one's own after the first
//!   check and then going back to `SIG_DFL` does not make runs intercept again either. Both edges
//!   fall back to the default behaviour, never to a swallowed Ctrl-C.
//! - **Racing installers:** the one-time check and the installation are two calls; a handler
//!   another thread installs in between is overwritten. Install your handler before the first
//!   `run` (or use [`Interrupt::Never`]) if that can happen.
//! - **fork:** a child that inherited our handler gets the default behaviour (the handler checks
//!   the process id).
//! - **Several intercepting runs at once** (possible only with `Always`, on several threads): a
//!   Ctrl-C cancels all of them.
//! - **Other platforms** (not Unix): nothing is installed, `run` never intercepts, Ctrl-C does
//!   what the platform does by default, and [`interrupted()`] never resolves.
//!
//! # `unsafe`
//!
//! This module is the only place in `runner-core` that allows `unsafe` (the crate denies it
//! elsewhere): installing a signal handler and writing to a pipe from it are FFI calls with no
//! safe std equivalent. Every block carries a `// SAFETY:` line.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use crate::scope::SignalWait;
use crate::shared::Shared;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

#[cfg(not(unix))]
#[path = "other.rs"]
mod imp;

pub(crate) use imp::RunnerSignal;

/// Whether `run` intercepts Ctrl-C (SIGINT).
///
/// Set with [`Builder::interrupt`](crate::Builder::interrupt). Whatever the choice, a handler
/// the user installed is never replaced or called, and after `run` returns Ctrl-C kills the
/// process as it does by default.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # type Runner = runner::Runner<runner::testing::TestLoop>;
/// use runner::Interrupt;
///
/// // A worker thread that wants Ctrl-C to cancel its run too.
/// let mut rt = Runner::builder().interrupt(Interrupt::Always).build();
/// assert_eq!(rt.run(async { 7 }).unwrap(), 7);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Interrupt {
    /// Intercept during `run`, on the process's main thread, and only while SIGINT has its
    /// default disposition (no handler of the user's is ever replaced). The default.
    #[default]
    Auto,
    /// As `Auto`, but on any thread: the runner still never replaces a user's handler.
    Always,
    /// Never intercept: SIGINT keeps whatever disposition the process gave it.
    Never,
}

/// Lives for the duration of one `run`: the run intercepts Ctrl-C while it exists (when it
/// should at all; see the module docs).
pub(crate) struct RunGuard<'a> {
    active: Option<imp::Active<'a>>,
}

impl<'a> RunGuard<'a> {
    /// Starts intercepting for the run of `shared`, if its configuration, the thread and the
    /// process's SIGINT disposition allow it.
    #[inline]
    pub(crate) fn enter(shared: &'a Arc<Shared>) -> Self {
        let active = match shared.config.interrupt {
            Interrupt::Never => None,
            Interrupt::Auto => {
                if imp::on_main_thread() {
                    imp::enter(shared, true)
                } else {
                    None
                }
            }
            Interrupt::Always => imp::enter(shared, imp::on_main_thread()),
        };
        RunGuard { active }
    }

    /// Ends the interception after the main future finished with a value. True when a Ctrl-C
    /// counted for this run came too late for the future to see it: the run is interrupted all
    /// the same (the value is dropped, as Python loses the result), so that Ctrl-C is not lost.
    #[inline(always)] // on the path of every run: no call for `Never`
    pub(crate) fn finish(self) -> bool {
        match self.active {
            None => false,
            Some(active) => imp::finish(active),
        }
    }
}

/// Resolves when the first Ctrl-C of the current run arrives (with an
/// [`interrupt_grace`](crate::Builder::interrupt_grace) set, the main future then has the grace
/// to finish).
///
/// Without a grace the main future is dropped at the first Ctrl-C, so only spawned tasks can
/// observe this. It never resolves when the run does not intercept Ctrl-C (see [`Interrupt`]).
/// After the interrupted run returns, it is re-armed for the next run.
///
/// # Examples
///
/// ```no_run
/// # use runner_core as runner;
/// # type Runner = runner::Runner<runner::testing::TestLoop>;
/// use std::time::Duration;
///
/// let mut rt = Runner::builder().interrupt_grace(Duration::from_secs(5)).build();
/// let saved = rt.run(async {
///     runner::interrupted().await;
///     "flushed" // finishing within the grace: `run` returns this
/// });
/// assert_eq!(saved.unwrap(), "flushed");
/// ```
///
/// # Panics
///
/// Outside any run.
#[track_caller]
pub fn interrupted() -> Interrupted {
    Interrupted(SignalWait::current("runner::interrupted", |s| &s.interrupt))
}

/// The future of [`interrupted`].
///
/// Dropping it stops waiting; nothing else happens.
pub struct Interrupted(SignalWait);

impl Future for Interrupted {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl fmt::Debug for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupted").finish_non_exhaustive()
    }
}
