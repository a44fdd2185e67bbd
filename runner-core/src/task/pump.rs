//! The runner's own run queue on multi-thread loops, drained by pumps on the loop's workers.
//!
//! On a loop whose [`EventLoop::is_multi_thread`](crate::EventLoop::is_multi_thread) is true, a
//! `Send` task spawned through the runner is not handed to the backend's spawner either (as on a
//! current-thread loop, see `task::own`): its cell is its own waker, queued on one queue
//! ([`Pumps`]) shared by every thread, and polled by *pumps*: up to one backend task per worker
//! thread of the loop ([`EventLoop::workers`](crate::EventLoop::workers)), each taking cells off
//! the queue one at a time and polling them. So a task is one allocation (its cell), and a spawn
//! is a push onto a lock-free queue, where a backend task per runner task would cost a second
//! allocation, the backend's scheduling, and cross-thread frees.
//!
//! - **Pumps are made on demand**: a push that finds no pump idle makes one more, up to the
//!   loop's worker count; a pump never ends before the queue closes (at close's end), except by
//!   a panic unwinding out of a poll (an exception handler's), which makes a new one first.
//! - **Idle pumps park**: a pump that finds the queue empty stores its waker in `idle` and goes
//!   pending; a push wakes one idle pump. The handshake: a push stores its task, then a `SeqCst`
//!   fence, then loads `sleeping`; a pump parking stores `sleeping`, then a fence, then looks at
//!   the queue again (a Dekker pair, as `task::own`'s, and modelled with loom in task/loom.rs):
//!   either the push sees the pump parked and wakes it, or the pump sees the task and stays.
//! - **Fairness**: a pump makes at most [`BUDGET`] polls per turn, then wakes itself and lets
//!   the backend run its other tasks, I/O and timers; the backend's own scheduler (tokio's work
//!   stealing, async-executor's) moves the pumps between its workers.
//! - **No task polled twice at once**: a task is on the queue at most once, and a wake during
//!   its poll only marks it, the poll queuing it again as it ends (`state::poll_own`).
//! - **Close** cancels in place as on a current-thread loop; a task a pump is polling right then
//!   is flagged, queued again by that poll, and dropped by its next (`state::cancel_now`). At
//!   close's end [`clear`](Pumps::clear) closes the queue (a push from then on cancels its task
//!   instead of queuing it), cancels what it held, and wakes the idle pumps, which end. "Cancels"
//!   there drops a future still in its cell (`OwnTask::cancel_closed`): a runner abandoned where
//!   its loop cannot run (`close::abandon`) only flags the tasks the pumps are polling, whose
//!   polls queue them again as they end, after the queue may have closed; and a future that
//!   holds its own waker would otherwise keep its cell, and itself, alive for good.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll, Waker};

#[cfg(loom)]
use ::loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
use ::loom::sync::Mutex;
#[cfg(not(loom))]
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::Mutex;

use crate::event_loop::{Drive, RawTask, Spawner};
use crate::task::own::OwnTask;

/// How many tasks a pump polls per turn before it lets the backend run its other tasks.
pub(crate) const BUDGET: usize = 61;

/// The queue itself: lock-free (`concurrent-queue`), or a lock under loom, which cannot see
/// inside `concurrent-queue`'s atomics.
#[cfg(not(loom))]
struct Queue(concurrent_queue::ConcurrentQueue<Arc<dyn OwnTask>>);

#[cfg(not(loom))]
impl Queue {
    fn new() -> Self {
        Queue(concurrent_queue::ConcurrentQueue::unbounded())
    }

    /// Queues `task`, or gives it back once the queue is closed.
    #[inline]
    fn push(&self, task: Arc<dyn OwnTask>) -> Result<(), Arc<dyn OwnTask>> {
        self.0.push(task).map_err(|e| e.into_inner())
    }

    #[inline]
    fn pop(&self) -> Option<Arc<dyn OwnTask>> {
        self.0.pop().ok()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn close(&self) {
        self.0.close();
    }
}

/// Under loom: the tasks behind a lock, and their count in an atomic that the lock's holder
/// updates and [`is_empty`](Self::is_empty) reads without the lock, as `concurrent-queue`'s
/// `is_empty` reads its indices. Were `is_empty` to take the lock, the lock alone would order a
/// push and a pump's parking whatever the fences, and the models (task/loom.rs) could not check
/// them.
#[cfg(loom)]
struct Queue {
    tasks: Mutex<(std::collections::VecDeque<Arc<dyn OwnTask>>, bool)>,
    len: AtomicUsize,
}

#[cfg(loom)]
impl Queue {
    fn new() -> Self {
        Queue {
            tasks: Mutex::new((std::collections::VecDeque::new(), false)),
            len: AtomicUsize::new(0),
        }
    }

    fn push(&self, task: Arc<dyn OwnTask>) -> Result<(), Arc<dyn OwnTask>> {
        let mut q = lock(&self.tasks);
        if q.1 {
            return Err(task);
        }
        q.0.push_back(task);
        self.len.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn pop(&self) -> Option<Arc<dyn OwnTask>> {
        let mut q = lock(&self.tasks);
        let task = q.0.pop_front();
        if task.is_some() {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        task
    }

    /// `concurrent-queue`'s is two `SeqCst` loads (which loom treats as acquire loads).
    fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    fn close(&self) {
        lock(&self.tasks).1 = true;
    }
}

/// The runner's own queue on a multi-thread loop, and its pumps (see the [module docs](self)).
pub(crate) struct Pumps {
    queue: Queue,
    /// The wakers of the pumps parked on an empty queue, with each pump's number.
    idle: Mutex<Vec<(usize, Waker)>>,
    /// `idle`'s length, read by a push without the lock.
    sleeping: AtomicUsize,
    /// Pumps made and not ended.
    live: AtomicUsize,
    /// Numbers for new pumps.
    next: AtomicUsize,
    /// The most pumps at once: the loop's worker count.
    max: usize,
    /// Set by [`clear`](Self::clear): pumps end.
    closed: AtomicBool,
    /// Where new pumps go.
    spawner: Arc<dyn Spawner>,
}

impl Pumps {
    pub(crate) fn new(spawner: Arc<dyn Spawner>, max: usize) -> Self {
        Pumps {
            queue: Queue::new(),
            idle: Mutex::new(Vec::new()),
            sleeping: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            max: max.max(1),
            closed: AtomicBool::new(false),
            spawner,
        }
    }

    /// Queues `task` (its `SCHEDULED` bit was just set), and wakes an idle pump, or makes one if
    /// none is idle and fewer than the loop's workers are alive. Once the queue is closed, the
    /// task is cancelled here instead (`OwnTask::cancel_closed`): every task has ended or been
    /// flagged `ABORTED` by then (a runner abandoned while a pump polled the task), and its
    /// future, if still there, may hold its own waker.
    #[inline]
    pub(crate) fn push(self: &Arc<Self>, task: Arc<dyn OwnTask>) {
        if let Err(task) = self.queue.push(task) {
            task.cancel_closed();
            return;
        }
        // See the module docs: a store (the queue's), a `SeqCst` fence, a load, against the
        // pump's in `park`.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) != 0 {
            self.wake_one();
        } else if self.live.load(Ordering::Relaxed) < self.max {
            self.grow();
        }
    }

    /// Wakes one parked pump, if one is still parked.
    #[cold]
    fn wake_one(&self) {
        let waker = {
            let mut idle = lock(&self.idle);
            let waker = idle.pop().map(|(_, w)| w);
            self.sleeping.store(idle.len(), Ordering::Relaxed);
            waker
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Makes one more pump, unless the loop's worker count is reached meanwhile.
    #[cold]
    fn grow(self: &Arc<Self>) {
        let mut live = self.live.load(Ordering::Relaxed);
        while live < self.max {
            match self.live.compare_exchange_weak(
                live,
                live + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let id = self.next.fetch_add(1, Ordering::Relaxed);
                    let pump = Pump {
                        pumps: self.clone(),
                        id,
                        ended: AtomicBool::new(false),
                    };
                    self.spawner.spawn_task(RawTask::new(Arc::new(pump)));
                    return;
                }
                Err(actual) => live = actual,
            }
        }
    }

    /// Closes the queue for good (close's end, or a runner abandoned): the tasks left on it are
    /// cancelled (`OwnTask::cancel_closed`: every task has ended, or was flagged `ABORTED` by
    /// `close::abandon` while a pump polled it, and that poll queued it again as it let go), a
    /// push from now on cancels its task instead of queuing it, and the idle pumps are woken, to
    /// end.
    pub(crate) fn clear(&self) {
        self.closed.store(true, Ordering::Release);
        self.queue.close();
        while let Some(task) = self.queue.pop() {
            task.cancel_closed();
        }
        let idle = std::mem::take(&mut *lock(&self.idle));
        self.sleeping.store(0, Ordering::Relaxed);
        for (_, waker) in idle {
            waker.wake();
        }
    }

    /// A pump's turn: polls tasks off the queue, one at a time, up to [`BUDGET`]; parks when it
    /// finds the queue empty. `Ready` once the queue is closed.
    fn turn(&self, id: usize, cx: &mut TaskCx<'_>) -> Poll<()> {
        let mut polled = 0;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            match self.queue.pop() {
                Some(task) => {
                    task.poll_own(false);
                    polled += 1;
                    if polled == BUDGET {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                None => {
                    if self.park(id, cx) {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// Parks pump `id` with `cx`'s waker: true if it stays parked, false if the queue turned out
    /// not to be empty (or closed) after all (it is then no longer parked, or its waker was
    /// woken by a push meanwhile: a spurious poll later, harmless).
    fn park(&self, id: usize, cx: &mut TaskCx<'_>) -> bool {
        {
            let mut idle = lock(&self.idle);
            // Parked already: a poll for a wake that a push made as this pump, parking, found
            // the task anyway (see below), or a spurious one. Its entry takes the new waker, so
            // that a pump has one entry at most: a second, stale, would count in `sleeping` for
            // a pump that is not asleep and take a push's wake while the pump is busy (instead
            // of a parked pump's, or a new pump), and, left behind by a pump that ended
            // (`ended` removes one), lose it.
            match idle.iter_mut().find(|(p, _)| *p == id) {
                Some((_, waker)) => waker.clone_from(cx.waker()),
                None => idle.push((id, cx.waker().clone())),
            }
            self.sleeping.store(idle.len(), Ordering::Relaxed);
        }
        // See `push`.
        fence(Ordering::SeqCst);
        if self.queue.is_empty() && !self.closed.load(Ordering::Acquire) {
            return true;
        }
        let mut idle = lock(&self.idle);
        if let Some(i) = idle.iter().position(|(p, _)| *p == id) {
            idle.swap_remove(i);
            self.sleeping.store(idle.len(), Ordering::Relaxed);
        }
        false
    }

    /// Pump `id` ends (its queue closed, the loop dropped it, or a poll unwound).
    fn ended(&self, id: usize) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        let mut idle = lock(&self.idle);
        if let Some(i) = idle.iter().position(|(p, _)| *p == id) {
            idle.swap_remove(i);
            self.sleeping.store(idle.len(), Ordering::Relaxed);
        }
    }
}

/// What the loom models (task/loom.rs) read of the pumps once their threads are joined.
#[cfg(all(test, loom))]
impl Pumps {
    /// Tasks on the queue.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len.load(Ordering::Acquire)
    }

    /// Pumps made and not ended.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Pumps parked.
    pub(crate) fn sleeping(&self) -> usize {
        lock(&self.idle).len()
    }
}

#[cfg(not(loom))]
use crate::lock::lock;

/// `crate::lock::lock`, for loom's mutex.
#[cfg(loom)]
fn lock<T>(m: &Mutex<T>) -> ::loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A pump: the backend's task that polls the runner's tasks off [`Pumps`].
struct Pump {
    pumps: Arc<Pumps>,
    id: usize,
    /// Counted out of `Pumps::live` already (a poll unwound, or the queue closed).
    ended: AtomicBool,
}

impl Pump {
    fn end(&self) {
        if !self.ended.swap(true, Ordering::AcqRel) {
            self.pumps.ended(self.id);
        }
    }
}

impl Drive for Pump {
    fn poll_driver(&self, cx: &mut TaskCx<'_>) -> Poll<()> {
        if self.ended.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        match catch_unwind(AssertUnwindSafe(|| self.pumps.turn(self.id, cx))) {
            Ok(Poll::Ready(())) => {
                self.end();
                Poll::Ready(())
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => {
                // A poll unwound (an exception handler's panic): the backend sees it as it would
                // a task's of its own, and a new pump takes this one's place first, so that the
                // tasks still queued are polled.
                self.end();
                // As in `park`: `live` lowered, a fence, then the queue, against a push's task,
                // fence, `live`: either that push sees room and makes a pump, or this sees its
                // task.
                fence(Ordering::SeqCst);
                if !self.pumps.closed.load(Ordering::Acquire) && !self.pumps.queue.is_empty() {
                    self.pumps.grow();
                }
                resume_unwind(panic)
            }
        }
    }

    fn drop_driver(&self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    //! `Pumps` driven by hand: the pumps a push makes, a turn's budget, parking and the wake of
    //! a parked pump, a poll that unwinds, and the queue closed by `clear`.

    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Instant;

    use super::{Pumps, BUDGET};
    use crate::event_loop::{BlockingJob, BoxFuture, RawTask, Spawner};
    use crate::task::own::OwnTask;

    /// A spawner that keeps the pumps it is given, for the test to poll by hand.
    #[derive(Default)]
    struct Keep(Mutex<Vec<Option<RawTask>>>);

    impl Spawner for Keep {
        fn spawn(&self, _: BoxFuture) {
            unreachable!("pumps go through spawn_task");
        }

        fn spawn_task(&self, task: RawTask) {
            self.0.lock().unwrap().push(Some(task));
        }

        fn spawn_blocking(&self, _: BlockingJob) {
            unreachable!();
        }

        fn sleep_until(&self, _: Instant) -> BoxFuture {
            unreachable!();
        }
    }

    /// A pump's waker: a flag.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A task that counts its polls, and panics on them with `panics`.
    struct Probe {
        polls: Arc<AtomicUsize>,
        panics: bool,
    }

    /// What a cancel once the queue is closed adds to a [`Probe`]'s count.
    const CANCELLED: usize = 1 << 16;

    impl OwnTask for Probe {
        fn poll_own(self: Arc<Self>, _: bool) {
            self.polls.fetch_add(1, Ordering::SeqCst);
            assert!(!self.panics, "a poll unwinds out of the pump");
        }

        /// Counted as [`CANCELLED`] polls.
        fn cancel_closed(self: Arc<Self>) {
            self.polls.fetch_add(CANCELLED, Ordering::SeqCst);
        }
    }

    fn setup(max: usize) -> (Arc<Keep>, Arc<Pumps>, Arc<AtomicUsize>) {
        let keep = Arc::new(Keep::default());
        let pumps = Arc::new(Pumps::new(keep.clone(), max));
        (keep, pumps, Arc::default())
    }

    /// Closes the queue and drops the pumps: the pumps hold `Pumps`, which holds the spawner
    /// that keeps them (as a runtime's tasks hold its handle until it shuts down).
    fn teardown(keep: &Keep, pumps: &Pumps) {
        pumps.clear();
        let left: Vec<_> = keep.0.lock().unwrap().drain(..).collect();
        drop(left);
        assert_eq!(pumps.live.load(Ordering::SeqCst), 0);
    }

    fn push(pumps: &Arc<Pumps>, polls: &Arc<AtomicUsize>, n: usize) {
        for _ in 0..n {
            pumps.push(Arc::new(Probe {
                polls: polls.clone(),
                panics: false,
            }));
        }
    }

    /// Polls pump `i` once with `flag` as its waker (outside `keep`'s lock: the poll may make a
    /// pump). A poll that unwinds leaves the pump with the unwind, as a backend would drop it.
    fn turn(keep: &Keep, i: usize, flag: &Arc<Flag>) -> Poll<()> {
        let waker = Waker::from(flag.clone());
        let mut pump = keep.0.lock().unwrap()[i]
            .take()
            .expect("a pump not dropped");
        let out = Pin::new(&mut pump).poll(&mut Context::from_waker(&waker));
        keep.0.lock().unwrap()[i] = Some(pump);
        out
    }

    #[test]
    fn pushes_make_one_pump_per_worker_at_most() {
        let (keep, pumps, polls) = setup(2);
        push(&pumps, &polls, 1);
        assert_eq!(keep.0.lock().unwrap().len(), 1);
        // No pump has run yet, so none is idle: the second push makes the second, and no more.
        push(&pumps, &polls, 10);
        assert_eq!(keep.0.lock().unwrap().len(), 2);
        assert_eq!(pumps.live.load(Ordering::SeqCst), 2);
        teardown(&keep, &pumps);
    }

    #[test]
    fn a_turn_polls_the_budget_then_wakes_itself() {
        let (keep, pumps, polls) = setup(1);
        push(&pumps, &polls, BUDGET + 5);
        let flag = Arc::new(Flag::default());
        assert!(turn(&keep, 0, &flag).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), BUDGET);
        assert!(
            flag.0.swap(false, Ordering::SeqCst),
            "woke itself for its next turn"
        );
        assert_eq!(pumps.sleeping.load(Ordering::SeqCst), 0);
        // The rest, then the queue is empty: the pump parks.
        assert!(turn(&keep, 0, &flag).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), BUDGET + 5);
        assert!(!flag.0.load(Ordering::SeqCst));
        assert_eq!(pumps.sleeping.load(Ordering::SeqCst), 1);
        // A push wakes the parked pump (and makes none: it is the one worker's).
        push(&pumps, &polls, 1);
        assert!(
            flag.0.swap(false, Ordering::SeqCst),
            "the parked pump was woken"
        );
        assert_eq!(pumps.sleeping.load(Ordering::SeqCst), 0);
        assert_eq!(keep.0.lock().unwrap().len(), 1);
        assert!(turn(&keep, 0, &flag).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), BUDGET + 6);
        teardown(&keep, &pumps);
    }

    #[test]
    fn a_poll_that_unwinds_leaves_a_new_pump_for_the_rest() {
        let (keep, pumps, polls) = setup(1);
        pumps.push(Arc::new(Probe {
            polls: polls.clone(),
            panics: true,
        }));
        push(&pumps, &polls, 3);
        let flag = Arc::new(Flag::default());
        let out = catch_unwind(AssertUnwindSafe(|| turn(&keep, 0, &flag)));
        assert!(out.is_err(), "the panic reaches the backend");
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // The first pump ended (dropped by the unwind, as a backend drops a task that
        // panicked), counted out once, and a second took its place.
        assert_eq!(keep.0.lock().unwrap().len(), 2);
        assert!(keep.0.lock().unwrap()[0].is_none());
        assert_eq!(pumps.live.load(Ordering::SeqCst), 1);
        assert!(turn(&keep, 1, &flag).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 4);
        teardown(&keep, &pumps);
    }

    #[test]
    fn clear_drops_the_queue_ends_the_pumps_and_refuses_pushes() {
        let (keep, pumps, polls) = setup(2);
        let flag = Arc::new(Flag::default());
        push(&pumps, &polls, 1);
        // The first pump polls the task and parks; the second is made by the next push.
        assert!(turn(&keep, 0, &flag).is_pending());
        let task = Arc::new(Probe {
            polls: polls.clone(),
            panics: false,
        });
        pumps.push(task.clone());
        assert!(flag.0.swap(false, Ordering::SeqCst));
        pumps.clear();
        assert_eq!(Arc::strong_count(&task), 1, "the queued task was let go of");
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1 + CANCELLED,
            "the queued task cancelled, unpolled"
        );
        pumps.push(task.clone());
        assert_eq!(
            Arc::strong_count(&task),
            1,
            "a push after clear queues nothing"
        );
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1 + 2 * CANCELLED,
            "a task pushed after clear cancelled, unpolled"
        );
        let n = keep.0.lock().unwrap().len();
        assert_eq!(n, 1);
        assert!(turn(&keep, 0, &flag).is_ready());
        assert_eq!(pumps.live.load(Ordering::SeqCst), 0);
        assert_eq!(polls.load(Ordering::SeqCst), 1 + 2 * CANCELLED);
        teardown(&keep, &pumps);
    }
}
