//! The futures a task awaits to hear that its run is winding down: [`shutdown_requested()`]
//! (close began) and [`interrupted()`] (a Ctrl-C arrived during a run with a grace). Both wait on
//! one of the current runner's one-shot latches (see `latch.rs`), which close and the signal
//! module fire.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskCx, Poll};

use crate::latch::{Latch, LatchWait};
use crate::scope::with_current;
use crate::shared::Shared;

/// Waits for one of the current runner's one-shot latches: what `shutdown_requested()` and
/// `interrupted()` return, wrapped.
type SignalWait = LatchWait<Shared>;

impl LatchWait<Shared> {
    /// Waits on `latch` of the runner running the caller.
    ///
    /// # Panics
    ///
    /// Outside any run, with a message naming `what`.
    #[track_caller]
    fn current(what: &str, latch: fn(&Shared) -> &Latch) -> Self {
        let shared = with_current(|s| s.cloned())
            .unwrap_or_else(|| panic!("{what}: {}", crate::error::MSG_NO_RUNTIME));
        LatchWait::new(shared, latch)
    }
}

/// `Future` and `Debug` for a public future that wraps a [`SignalWait`]; the two differ only in
/// their name.
macro_rules! waits_on_a_latch {
    ($name:ident) => {
        impl Future for $name {
            type Output = ();

            fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
                Pin::new(&mut self.0).poll(cx)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

/// Resolves when the runner running the caller begins to close: the signal to finish up
/// within `Builder::shutdown_grace`. That grace is 0 unless set, and then close cancels
/// the task right after this resolves: set a grace for clean-up to run.
///
/// # Panics
///
/// Outside any run.
#[track_caller]
pub fn shutdown_requested() -> ShutdownRequested {
    ShutdownRequested(SignalWait::current("runner::shutdown_requested", |s| {
        &s.shutdown
    }))
}

/// The future of [`shutdown_requested`]. Dropping it stops waiting; nothing else happens.
pub struct ShutdownRequested(SignalWait);

waits_on_a_latch!(ShutdownRequested);

/// Resolves when the first Ctrl-C of the current run arrives (with an
/// `interrupt_grace` set, the main future then has the grace
/// to finish).
///
/// Without a grace the main future is dropped at the first Ctrl-C, so only spawned tasks can
/// observe this. It never resolves when the run does not intercept Ctrl-C (see
/// [`Interrupt`](crate::Interrupt)). After the interrupted run returns, it is re-armed for the
/// next run.
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

waits_on_a_latch!(Interrupted);
