//! Debug mode: slow polls and pending tasks at close (asyncio's debug mode).
//!
//! Off, debug mode costs one load of a `bool` per poll: no clock reads, no per-task metadata.
//! On, each poll of a task or of the main future reads the clock twice.
//!
//! A poll is charged with its own time only. Some loops poll a task inside the poll that spawned
//! it (glommio's `spawn_local` runs a new task's first poll right away), so a poll's wall time may
//! include other tasks' polls; those are subtracted, and each slow stretch is reported once, for
//! the task that spent it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::diagnostic::{Diagnostic, DiagnosticKind, TaskInfo};
use crate::shared::{self, Shared};

thread_local! {
    /// Time spent, so far, in timed polls nested inside the timed poll running on this thread.
    static NESTED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// True when the runner running the caller is in debug mode; false outside any run.
///
/// Inside the main future, tasks (on any worker thread) and blocking jobs spawned through a
/// runner, this is that runner's [`Runner::is_debug`](crate::Runner::is_debug): set with
/// [`Builder::debug`](crate::Builder::debug), or else by `RUNNER_DEBUG=1` (or `true`) when the
/// runner was built.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # type Runner = runner::Runner<runner::testing::TestLoop>;
/// let mut rt = Runner::builder().debug(true).build();
/// assert!(rt.run(async { runner::is_debug() }).unwrap());
/// assert!(!runner::is_debug(), "outside any run");
/// ```
pub fn is_debug() -> bool {
    shared::with_current(|s| s.is_some_and(|s| s.config.debug))
}

/// The start of a timed poll: made only in debug mode, right before the poll.
pub(crate) struct PollStart {
    at: Instant,
    /// The enclosing poll's nested time, put back (plus this poll) when this one ends.
    outer_nested: Duration,
}

impl PollStart {
    pub(crate) fn now() -> Self {
        PollStart {
            outer_nested: NESTED.with(|n| n.replace(Duration::ZERO)),
            at: Instant::now(),
        }
    }
}

/// Reports the poll that started at `start` if its own time (minus the timed polls nested in it)
/// exceeded the threshold.
pub(crate) fn check_poll(shared: &Shared, info: &TaskInfo, start: PollStart) {
    let total = start.at.elapsed();
    let nested = NESTED.with(|n| n.replace(start.outer_nested + total));
    let took = total.saturating_sub(nested);
    if took > shared.config.slow_poll {
        shared.report(&Diagnostic {
            kind: DiagnosticKind::SlowPoll,
            task: info.clone(),
            payload: None,
            message: None,
            duration: Some(took),
        });
    }
}
