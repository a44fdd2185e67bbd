//! Ctrl-C scoped to `run`: the first SIGINT cancels the main future.
//!
//! # What a user sees
//!
//! With [`Interrupt::Auto`] (the default), while a `run` is in progress on the process's main
//! thread and SIGINT still had its default disposition, the first Ctrl-C cancels the main future:
//! it is dropped (on the loop's thread, so its destructors run) and `run` returns
//! [`RunError::Interrupted`]. With [`Builder::interrupt_grace`](crate::Builder::interrupt_grace),
//! [`interrupted()`](crate::interrupted) resolves instead and the main future has the grace to
//! finish (its output is then returned); a second Ctrl-C, or the end of the grace, drops it.
//! Outside `run`, after `run` returned by any path (value, error, panic, interruption), Ctrl-C
//! ends the process exactly as the default disposition does: it is killed by SIGINT.
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
//!   blocked on a socket pair (close-on-exec from birth, so a child process started at any
//!   moment inherits neither end). If it is anything else (a user's handler, `SIG_IGN`), the
//!   runner never installs anything and no run ever intercepts; that answer is also kept for
//!   good.
//! - Each run only touches atomics, with no system call and one read-modify-write: a
//!   process-wide "a run intercepts" flag (plain stores: only the main thread writes it; runs on
//!   other threads, possible with `Always`, keep a counter instead), and the runner's own
//!   "running, generation n, k Ctrl-Cs seen" word, plus a read of the Ctrl-C clock (below).
//!   Main-thread detection is cached per thread. Measured with callgrind (the `bench-runs`
//!   modes of `examples/ctrl_c.rs`: 10,000 runs of a ready future on the main thread, minus a
//!   baseline of none), a `run` with `Auto` executes 33 instructions more than with `Never` on
//!   core's `TestLoop` (764 against 731) and 51 more on tokio's current-thread loop (1,459
//!   against 1,408).
//! - The handler is async-signal-safe. It numbers the Ctrl-C on a process-wide clock (one
//!   atomic increment) and reads the flag. When no run intercepts, it does what the default
//!   action does, at once: `SIG_DFL` back, SIGINT unblocked and raised (signal-hook's
//!   `emulate_default_handler`), and the process dies by SIGINT as if the runner had never been
//!   there. Otherwise it writes one byte to the socket pair; nothing else.
//! - The watcher thread, a normal thread, does the rest: it finds the runs in progress, cancels
//!   them through the runner's own wake path ([`RunError::Interrupted`](crate::RunError)), or fires
//!   [`interrupted()`](crate::interrupted) and keeps the grace deadline in its read timeout. A loop parked in its
//!   reactor is woken like by any cross-thread wake.
//! - A Ctrl-C belongs to the run that was intercepting when it arrived, or to none; never to a
//!   later run, however late the watcher is. The handler numbers each Ctrl-C on a process-wide
//!   clock (its first act, the moment of arrival) and each run reads the clock when it starts
//!   intercepting; the watcher gives Ctrl-C number `s` only to runs still in progress that read
//!   at most `s`.
//! - A Ctrl-C is never lost, whatever the timing. If the run ended between the signal and the
//!   watcher (a window of microseconds), the process dies as by default, even when the runner's
//!   next run has begun meanwhile. If the watcher counted it for the run but the main future's
//!   last poll had already finished, the run returns `Interrupted` all the same and its value is
//!   dropped (Python loses the result the same way); if that last poll panicked, the panic goes
//!   on and the `Interrupted` ends the runner's next run instead.
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
//!   what the platform does by default, and [`interrupted()`](crate::interrupted) never resolves.
//!
//! # signal-hook: what it carries, what stays hand-written
//!
//! tokio's signals are signal-hook-registry: one process-wide handler per signal, installed on
//! the first `register` and never removed, which calls the previous handler (chaining) and then
//! every registered action; `unregister` drops an action but leaves the handler in place.
//! signal-hook adds, among others, `low_level::emulate_default_handler` and a pipe helper built
//! on the registry. Against our three rules:
//!
//! - **A user's own handler is never replaced.** With the registry, our action and a user's
//!   `tokio::signal::ctrl_c()` registered after our first run would be peers in one list, and
//!   the registry has no way to ask whether another action is there: between runs ours would
//!   kill the process under the user's listener. Hand-written, the runner installs its handler
//!   only over `SIG_DFL`, and a later handler (the registry's included) is installed over ours
//!   and is seen by `sigaction`: ours then does nothing. The registry's chaining is the opposite
//!   of what the contract asks (with a handler of the user's, runs do not intercept at all).
//! - **The default is restored when no run intercepts.** The registry never gives the default
//!   disposition back. Here the handler does, from the signal itself; this is what signal-hook's
//!   `emulate_default_handler` is for, and it is used: it puts `SIG_DFL` back, unblocks SIGINT
//!   and raises it, with `abort` as its last resort, and is documented async-signal-safe.
//! - **No system call per run.** Both ways hold it: the registry's `register` (a lock, an
//!   allocation, a `sigaction`) would run once, like ours.
//!
//! So: `emulate_default_handler` from signal-hook, the errno save and restore from `errno`
//! (what signal-hook-registry's own handler uses), the socket pair and the watcher's reads from
//! std; hand-written stay the disposition check and installation (`sigaction`: signal-hook has
//! no query and its registry cannot leave a user's handler alone), the handler, and its one
//! `write` (std's `Write` for a socket is not documented async-signal-safe). `unix.rs` went from
//! 561 lines (419 of code, 22 `unsafe` blocks: `pipe` + `fcntl`, `poll`, `read`, the default
//! action and errno by platform, all FFI) to 502 (353 of code, 10 `unsafe` blocks; its unit test
//! aside), while it gained the Ctrl-C clock; this file's docs grew by the clock and this
//! section. The cost per run moved by 3 instructions: `Auto` over `Never` was 30 on `TestLoop`
//! (761 against 731) and 48 on tokio (1,447 against 1,399) before; the clock read and its store
//! are the difference.
//!
//! # `unsafe`
//!
//! This module is the only place in `runner-core` that allows `unsafe` (the crate denies it
//! elsewhere): installing a signal handler, asking for the disposition, and writing to a socket
//! from the handler are FFI calls with no safe std equivalent. Every block carries a
//! `// SAFETY:` line.

use std::sync::Arc;
use std::time::Duration;

use crate::error::RunError;
use crate::latch::Latch;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

#[cfg(not(unix))]
#[path = "other.rs"]
mod imp;

pub(crate) use imp::RunnerSignal;

/// A runner as this module sees it: its part of the Ctrl-C state, what it asked for, and the
/// means to end its run or fire its [`interrupted()`](crate::interrupted). The runner's shared
/// state implements it; a trait, so that this module sits below that state rather than in a
/// circle with it.
pub(crate) trait Interruptible: Send + Sync + 'static {
    /// The runner's Ctrl-C state.
    fn sigint(&self) -> &RunnerSignal;

    /// Whether its runs intercept Ctrl-C ([`Builder::interrupt`](crate::Builder::interrupt)).
    fn interrupt(&self) -> Interrupt;

    /// [`Builder::interrupt_grace`](crate::Builder::interrupt_grace).
    fn interrupt_grace(&self) -> Option<Duration>;

    /// The latch behind [`interrupted()`](crate::interrupted).
    fn interrupted(&self) -> &Latch;

    /// Makes the running `run` (or the next one) return `err`.
    fn abort_main(&self, err: RunError);

    /// Takes the error the running `run` was to return, if any.
    fn take_main_abort(&self) -> Option<RunError>;
}

/// Whether `run` intercepts Ctrl-C (SIGINT).
///
/// Set with `Builder::interrupt`. Whatever the choice, a handler
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
    #[inline(always)] // on the path of every run
    pub(crate) fn enter<S: Interruptible>(shared: &'a Arc<S>) -> Self {
        let active = match shared.interrupt() {
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
