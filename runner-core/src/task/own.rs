//! The runner's own run queue, for `Send` tasks on current-thread loops.
//!
//! On a loop whose [`EventLoop::is_multi_thread`](crate::EventLoop::is_multi_thread) is false,
//! every task runs on the thread of the run anyway, inside the backend's `block_on`. There a
//! `Send` task spawned through the runner is not handed to the backend's spawner: its cell is its
//! own waker, queued here when woken, and polled by the main future's wrapper (and close's) after
//! each pending poll, as local tasks are (see `scope::drive_local_after`). No backend task, no second
//! wrapper, no shell for close to wait for.
//!
//! Fairness: one drive polls the tasks queued when it began, then those queued meanwhile (woken by
//! the ones before, or yielding), batch after batch, until it has made 61 polls (tokio's
//! `event_interval`; more only when its first batch alone is larger); if tasks are still queued it
//! wakes the main future and returns, so that the backend polls its own I/O and timers before
//! they run. A task that yields forever never starves the loop.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Context as TaskCx;

use crate::lock::lock;

/// How many task polls one drive may make before it lets the backend poll its I/O and timers
/// (more only when the first batch alone is larger): tokio's `event_interval`.
const BUDGET: usize = 61;

/// A task on the runner's own queue: a `Send` task's cell.
pub(crate) trait OwnTask: Send + Sync + 'static {
    /// Polls the task once; it was taken off the queue.
    fn poll_own(self: Arc<Self>);
}

/// The runner's own queue (in `Shared`): the cells woken since the last drive.
pub(crate) struct OwnQueue {
    queue: Mutex<VecDeque<Arc<dyn OwnTask>>>,
    /// The driver's batch, kept between drives for its allocation.
    spare: Mutex<VecDeque<Arc<dyn OwnTask>>>,
    /// Something was queued since the last drive took the queue.
    any: AtomicBool,
    /// Set from the start of a poll of the main future until its waker is registered again after
    /// it: the loop's thread will look at `any` again, so a push need not wake it.
    active: AtomicBool,
    /// Set by [`clear`](Self::clear), under the queue's lock: every task has ended, and a wake
    /// still racing in from another thread queues nothing (its cell would keep the runner alive
    /// through its header, and the runner the cell).
    closed: AtomicBool,
}

impl Default for OwnQueue {
    fn default() -> Self {
        OwnQueue {
            queue: Mutex::new(VecDeque::new()),
            spare: Mutex::new(VecDeque::new()),
            any: AtomicBool::new(false),
            active: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }
}

impl OwnQueue {
    /// Queues `task` (its `SCHEDULED` bit was just set): true when the caller must wake the main
    /// future (`Shared::main_waker`), false when the loop's thread will look anyway.
    #[must_use]
    pub(crate) fn push(&self, task: Arc<dyn OwnTask>) -> bool {
        let mut queue = lock(&self.queue);
        if self.closed.load(Ordering::Relaxed) {
            drop(queue);
            drop(task);
            return false;
        }
        queue.push_back(task);
        drop(queue);
        // `SeqCst` with the store of `active` and the load of `any` in `registered`: either that
        // load sees `any`, or this load sees `active` clear, after the main future's waker was
        // registered, and the caller wakes it.
        self.any.store(true, Ordering::SeqCst);
        !self.active.load(Ordering::SeqCst)
    }

    /// Polls the tasks queued when it begins, at most; returns how many it took.
    fn batch(&self) -> usize {
        if !self.any.load(Ordering::Acquire) {
            return 0;
        }
        self.any.store(false, Ordering::SeqCst);
        let mut queue = lock(&self.queue);
        if queue.len() <= 1 {
            // One task (a yield, a wake-up): no batch to set aside.
            let Some(task) = queue.pop_front() else {
                return 0;
            };
            drop(queue);
            task.poll_own();
            return 1;
        }
        let mut batch = std::mem::take(&mut *lock(&self.spare));
        std::mem::swap(&mut batch, &mut *queue);
        drop(queue);
        // Whatever unwinds out of a task's drop leaves the rest queued, not lost.
        struct Rest<'a>(&'a OwnQueue, VecDeque<Arc<dyn OwnTask>>);
        impl Drop for Rest<'_> {
            fn drop(&mut self) {
                if !self.1.is_empty() {
                    let mut q = lock(&self.0.queue);
                    for t in self.1.drain(..).rev() {
                        q.push_front(t);
                    }
                    self.0.any.store(true, Ordering::SeqCst);
                }
                let batch = std::mem::take(&mut self.1);
                *lock(&self.0.spare) = batch;
            }
        }
        let mut rest = Rest(self, batch);
        let taken = rest.1.len();
        while let Some(task) = rest.1.pop_front() {
            task.poll_own();
        }
        taken
    }

    /// Before a poll of the main future (or close's): pushes from now on need not wake it. No
    /// task is polled here: as with the backends' own `block_on`, the main future is polled first
    /// (a close that comes first cancels queued tasks before any of them is polled).
    #[inline]
    pub(crate) fn before(&self) {
        // Relaxed (a plain store, not a fence): a push that reads this `true` (a `SeqCst` load)
        // reads a store earlier in `active`'s modification order than `registered`'s `false`,
        // so that load precedes the store of `false` in the `SeqCst` order, and `registered`'s
        // load of `any`, after that store, sees the push's `any`. A push that misses it wakes
        // the main future, once, for nothing.
        self.active.store(true, Ordering::Relaxed);
    }

    /// The drive after a pending poll of the main future (or close's): polls the queued tasks,
    /// batch after batch, until `BUDGET` polls. [`registered`](Self::registered) follows, once
    /// the main future's waker is registered.
    #[inline]
    pub(crate) fn after(&self) {
        // Nothing queued (the common case of a main future that waits alone): one load, no call.
        if self.any.load(Ordering::Acquire) {
            self.drive();
        }
    }

    #[inline(never)]
    fn drive(&self) {
        // Batch after batch (tasks woken by the ones before, or yielding) until `BUDGET` polls:
        // the backend's turn comes no later than that, as tokio's scheduler polls its driver
        // every 61 tasks.
        let mut polled = 0;
        while polled < BUDGET {
            let n = self.batch();
            if n == 0 {
                break;
            }
            polled += n;
        }
    }

    /// The main future's waker (`Shared::main_waker`) is registered: pushes from now on wake it,
    /// and if tasks are still queued it is woken at once, so that the backend gets its turn
    /// before they run.
    #[inline]
    pub(crate) fn registered(&self, cx: &mut TaskCx<'_>) {
        self.active.store(false, Ordering::SeqCst);
        if self.any.load(Ordering::SeqCst) {
            cx.waker().wake_by_ref();
        }
    }

    /// Drops every task left queued, for good (close's end, or a runner abandoned): their
    /// futures are gone already, and dropping them breaks the cycle through their header's
    /// runner. A push from now on queues nothing.
    pub(crate) fn clear(&self) {
        let left = {
            let mut queue = lock(&self.queue);
            self.closed.store(true, Ordering::Relaxed);
            std::mem::take(&mut *queue)
        };
        let spare = std::mem::take(&mut *lock(&self.spare));
        self.any.store(false, Ordering::SeqCst);
        drop(left);
        drop(spare);
    }
}

#[cfg(test)]
mod tests {
    //! The cell as its own waker, under Miri: the borrowed waker of a poll cloned, woken by
    //! value and by reference from another thread, and dropped unwoken; an abort that queues.

    use std::future::{pending, poll_fn};
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    use crate::testing::TestLoop;
    use crate::Runner;

    #[test]
    fn cell_waker_clones_wake_from_another_thread() {
        let mut rt = Runner::<TestLoop>::new();
        let polls = rt
            .run(async {
                let saved: Arc<Mutex<Option<Waker>>> = Arc::default();
                let s = saved.clone();
                let h = crate::spawn(async move {
                    let mut polls = 0;
                    poll_fn(|cx| {
                        polls += 1;
                        match polls {
                            // A clone dropped unwoken, then one kept for another thread.
                            1 => {
                                drop(cx.waker().clone());
                                *s.lock().unwrap() = Some(cx.waker().clone());
                                Poll::Pending
                            }
                            // Woken by reference here, by value on the thread below.
                            2 => {
                                cx.waker().wake_by_ref();
                                Poll::Pending
                            }
                            _ => Poll::Ready(polls),
                        }
                    })
                    .await
                });
                while saved.lock().unwrap().is_none() {
                    crate::yield_now().await;
                }
                let w = saved.lock().unwrap().take().unwrap();
                std::thread::spawn(move || w.wake()).join().unwrap();
                h.await.unwrap()
            })
            .unwrap();
        assert_eq!(polls, 3);
        rt.close().unwrap();
    }

    #[test]
    fn abort_queues_a_pending_task_once() {
        let mut rt = Runner::<TestLoop>::new();
        rt.run(async {
            let h = crate::spawn(pending::<()>());
            crate::yield_now().await;
            h.abort();
            h.abort();
            assert!(h.await.unwrap_err().is_cancelled());
        })
        .unwrap();
        assert_eq!(rt.close().unwrap().cancelled, 0);
    }
}
