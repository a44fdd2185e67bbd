//! Closing a runner: the six steps of [`Runner::close`](crate::Runner::close).

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use crate::context::{self, Context};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::local;
use crate::lock::lock;
use crate::registry::{TaskArc, TaskRef};
use crate::scope::{self, WithLocal};
use crate::shared::Shared;
use crate::EventLoop;

/// What `Runner::close` did. Every task that was alive when close began,
/// or was spawned while it ran, is counted exactly once in `finished`, `cancelled` or `panicked`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Tasks that finished by themselves during the shutdown grace.
    pub finished: usize,
    /// Tasks that close cancelled (their futures were dropped on the loop's thread).
    pub cancelled: usize,
    /// Tasks that panicked while the runner was closing, including a cancelled task whose
    /// destructor panicked (each was reported to the exception handler).
    pub panicked: usize,
    /// Blocking jobs still running when `blocking_shutdown_timeout` ran out; each was reported and
    /// left behind.
    pub blocking_left_behind: usize,
}

impl fmt::Display for CloseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} finished, {} cancelled, {} panicked, {} blocking jobs left behind",
            self.finished, self.cancelled, self.panicked, self.blocking_left_behind
        )
    }
}

/// A runner's live parts: its loop, its shared state and its context. `Runner` holds them while
/// `Initialized`; close consumes them.
pub(crate) struct Live<L> {
    pub(crate) lp: L,
    pub(crate) shared: Arc<Shared>,
    /// A second reference to `shared`, lent to the thread-local scope for the length of each
    /// `run` (and given back), so a run costs no reference counting.
    pub(crate) scope: Option<Arc<Shared>>,
    pub(crate) ctx: Context,
}

pub(crate) fn shutdown<L: EventLoop>(live: Live<L>) -> CloseReport {
    let Live {
        lp,
        shared,
        mut scope,
        mut ctx,
    } = live;
    shared.registry.begin_grace();
    shared.shutdown.fire();
    // Nothing spawned through the runner is alive (no task, no local task, no shell of an
    // earlier cancel): steps 2 and 3 have nothing to do, so the loop is not driven once more.
    // The registry is sealed as the drained close seals it.
    let idle = !shared.local.any_alive()
        && shared.shells.load(Ordering::Acquire) == 0
        && shared.registry.seal_if_idle();
    if idle {
        local::release(&shared.local);
    } else {
        let _local = scope::EnterLocal::new(&shared, lp.local_spawner());
        let _scope = scope::Enter::new(&mut scope);
        let _ctx = context::Enter::new(&mut ctx);
        let close = pin!(drive_close(&shared, lp.reaps_at_shutdown()));
        lp.block_on(WithLocal {
            shared: &shared,
            fut: close,
        });
        // Every local task has ended by now; let go of the runner's executor.
        local::release(&shared.local);
    }
    // Every task has ended: what is left on the runner's own queue is only cells to let go of,
    // and a wake racing in from another thread queues nothing from now on.
    shared.clear_own_queues();
    let outcomes = shared.registry.outcomes();
    let blocking_left_behind = wait_blocking(&shared);
    lp.shutdown();
    CloseReport {
        finished: outcomes.finished,
        cancelled: outcomes.cancelled,
        panicked: outcomes.panicked,
        blocking_left_behind,
    }
}

/// Steps 2 and 3, on the loop. With `reaps` (`EventLoop::reaps_at_shutdown`), the backend's
/// tasks of the futures dropped in place are left for the loop's shutdown to drop: no shell to
/// wake and wait for (see `task::state`'s `SHELL`).
async fn drive_close(shared: &Arc<Shared>, reaps: bool) {
    let grace = shared.config.shutdown_grace;
    if !grace.is_zero() {
        let mut timer = shared.spawner.sleep_until(Instant::now() + grace);
        let mut drained = pin!(poll_fn(|cx| shared.poll_drained(cx, false)));
        poll_fn(|cx| {
            if drained.as_mut().poll(cx).is_ready() || timer.as_mut().poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
    let pending: Vec<TaskArc<dyn TaskRef>> = shared.registry.begin_cancelling();
    if shared.config.debug {
        for t in &pending {
            shared.report(&Diagnostic {
                kind: DiagnosticKind::PendingAtClose,
                task: t.info(),
                payload: None,
                message: None,
                duration: t.spawned_at().map(|at| at.elapsed()),
            });
        }
    }
    // In bulk, here on the loop's thread with the runner and context installed: each future is
    // dropped in place (see `TaskRef::cancel_now`), not polled once more. `shutdown` made the
    // runner the scope's current one around this drive: the drops need not enter it again.
    for t in &pending {
        t.cancel_now(!reaps, true);
    }
    drop(pending);
    poll_fn(|cx| shared.poll_drained(cx, true)).await;
    poll_fn(|cx| shared.poll_shells(cx)).await;
}

/// Step 5: gives blocking jobs their timeout, then reports and counts the ones left behind.
fn wait_blocking(shared: &Shared) -> usize {
    let mut set = lock(&shared.blocking);
    if set.is_empty() {
        // The common case: no clock read.
        return 0;
    }
    let deadline = Instant::now() + shared.config.blocking_timeout;
    while !set.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        set = shared
            .blocking_done
            .wait_timeout(set, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    let left: Vec<Diagnostic> = set
        .iter()
        .map(|(_, job)| Diagnostic {
            kind: DiagnosticKind::BlockingLeftBehind,
            task: job.info.clone(),
            payload: None,
            message: None,
            duration: Some(job.since.elapsed()),
        })
        .collect();
    drop(set);
    for d in &left {
        shared.report(d);
    }
    left.len()
}

/// Drop of a runner where its loop cannot be driven (inside another loop, or on a thread its
/// local tasks do not live on): every task is marked cancelled so that whatever polls it next
/// drops it, new spawns are refused, and the backend shuts down without blocking.
pub(crate) fn abandon<L: EventLoop>(live: Live<L>) {
    let Live { lp, shared, .. } = live;
    let pending: Vec<TaskArc<dyn TaskRef>> = shared.registry.abandon();
    shared.shutdown.fire();
    for t in &pending {
        if shared.multi_thread && shared.pumps.is_none() {
            t.abort();
        } else {
            // Nothing will poll a task on the runner's own queue again: its future is dropped
            // here (local tasks are aborted, and dropped with their executor below). On a
            // multi-thread loop, one a pump is polling right now is flagged: that poll queues it
            // again as it ends, and the queue (closed below, or not yet) cancels it
            // (`Pumps::clear`, `Pumps::push`): its future is dropped on that pump's thread.
            t.cancel_now(true, false);
        }
    }
    // Local tasks on this thread are dropped now, with their destructors; on another thread,
    // when that thread next runs a loop (see `local.rs`).
    local::release(&shared.local);
    eprintln!(
        "runner: a runner was dropped where its loop cannot run ({} tasks left); close it outside any running loop instead",
        pending.len()
    );
    drop(pending);
    // And the cells left queued let go of, which breaks the cycle through their runner.
    shared.clear_own_queues();
    lp.shutdown();
}
