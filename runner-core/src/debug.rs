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
use crate::scope;
use crate::shared::Shared;

thread_local! {
    /// Time spent, so far, in timed polls nested inside the timed poll running on this thread.
    static NESTED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// True when the runner running the caller is in debug mode; false outside any run.
///
/// Inside the main future, tasks (on any worker thread) and blocking jobs spawned through a
/// runner, this is that runner's `Runner::is_debug`: set with
/// `Builder::debug`, or else by `RUNNER_DEBUG=1` (or `true`) when the
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
    scope::with_current(|s| s.is_some_and(|s| s.config.debug))
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::thread::sleep;

    use super::*;
    use crate::builder::DEFAULT_SLOW_POLL_THRESHOLD;
    use crate::diagnostic::UnhandledPanic;
    use crate::shared::Config;
    use crate::signal::Interrupt;
    use crate::testing::TestLoop;
    use crate::EventLoop;

    fn info(main: bool) -> TaskInfo {
        TaskInfo {
            name: None,
            location: std::panic::Location::caller(),
            main,
        }
    }

    // A loop that polls a new task inside its spawner's poll (glommio does): the 150 ms are the
    // inner task's, reported once, for it; the outer poll's own 20 ms are under the threshold.
    #[test]
    fn nested_polls_are_charged_to_the_inner_one() {
        let seen: Arc<Mutex<Vec<(bool, Duration)>>> = Arc::default();
        let sink = seen.clone();
        let shared = Shared::new(
            TestLoop::new().unwrap().spawner(),
            Config {
                debug: true,
                slow_poll: DEFAULT_SLOW_POLL_THRESHOLD,
                handler: Arc::new(move |d| {
                    let took = d.duration().unwrap();
                    sink.lock().unwrap().push((d.task().is_main(), took));
                }),
                unhandled: UnhandledPanic::Report,
                shutdown_grace: Duration::ZERO,
                blocking_timeout: Duration::ZERO,
                interrupt: Interrupt::Never,
                interrupt_grace: None,
                backend_tasks: false,
            },
            false,
            None,
        );
        let outer = PollStart::now();
        sleep(Duration::from_millis(20));
        let inner = PollStart::now();
        sleep(Duration::from_millis(150));
        check_poll(&shared, &info(false), inner);
        check_poll(&shared, &info(true), outer);
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "{seen:?}");
            assert!(!seen[0].0, "the inner task, not the outer");
            assert!(seen[0].1 >= Duration::from_millis(150));
        }
        // A later poll on this thread is charged in full: nothing nested is left over.
        let next = PollStart::now();
        sleep(Duration::from_millis(150));
        check_poll(&shared, &info(true), next);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[1].0 && seen[1].1 >= Duration::from_millis(150));
    }
}
