//! The runner's own run queue, for `Send` tasks on current-thread loops.
//!
//! On a loop whose [`EventLoop::is_multi_thread`](crate::EventLoop::is_multi_thread) is false,
//! every task runs on the thread of the run anyway, inside the backend's `block_on`. There a
//! `Send` task spawned through the runner is not handed to the backend's spawner: its cell is its
//! own waker, queued here when woken, and polled by the main future's wrapper (and close's) after
//! each pending poll, as local tasks are (see `scope::drive_local_after`). No backend task, no second
//! wrapper, no shell for close to wait for.
//!
//! # Two queues
//!
//! - **The thread's queue** ([`Here`], a thread-local): a push made on the thread inside this
//!   runner's run (or close) while its main future's poll is under way, between
//!   [`before`](OwnQueue::before) and [`registered`](OwnQueue::registered) (`active` set): a
//!   spawn from the main future or a task, a task waking itself or another. No lock, no
//!   read-modify-write, no barrier, and no wake of the main future: the drive that follows
//!   the current poll ([`drive`](OwnQueue::drive)), or the batch under way, takes it. It is
//!   keyed by the runner (the scope's `owner`: the address of the runner whose run or close
//!   this thread is inside, set and cleared by `scope`, which holds `Here` beside it): a task of
//!   another runner waking one of this runner's cells on this thread (a runner run in a
//!   blocking job, say) takes the shared path. Nothing runs between the drive and
//!   `registered` (`scope::drive_local_after` polls local tasks first), so no push lands here
//!   unseen.
//!   When the run (or close) leaves the thread, returning or unwinding, [`leave`] moves what is
//!   left to the shared queue, with `any` set: the next run or close, on whatever thread, finds
//!   it there, and polls its main future (which drives the queue) before it can block.
//! - **The shared queue** (a `Mutex`, in `Shared`): every other push (a waker on another thread,
//!   a `LoopHandle` spawn, a blocking job, a wake from the backend's own tasks or reactor after
//!   the main future's waker was registered, a push between runs). It sets `any`, and wakes the
//!   main future when it is the one that set it: the handshake below. The drive appends it,
//!   when `any` says it holds something, to the thread's queue under one lock.
//!
//! The handshake of the shared queue: a push sets `any` under the queue's lock and returns
//! whether it was clear; the caller then wakes the main future through the waker stored last
//! (`Shared::main_waker`, under its own lock). The drive clears `any` under the queue's lock as
//! it takes the queue. So the first push after a drive took the queue wakes the main future,
//! and the pushes after it, until the next drive, need not: the poll that wake causes drives the
//! queue, and takes them too (they are in it before that drive's lock, or find `any` clear
//! after it and wake again). The waker a push wakes is the one the loop's thread polls with:
//! either it is unchanged (`Shared::register_main_cached` checks it after every pending poll),
//! or the loop's thread stores it, under the waker's lock, and then loads `any`
//! ([`registered`](OwnQueue::registered)): a push whose wake read the waker before that store set
//! `any` before it, and the load after the store sees it, and the main future is woken at once.
//! No fence on either side, and none at each pending poll of the main future: a `SeqCst` fence
//! there (a Dekker pair with the push, as this handshake once was) cost about 9 ns a poll, a
//! tenth of a glommio `run_yield10` (docs/PERFORMANCE.md). The price: a push from another thread while the
//! main future is being polled wakes it once, for a poll that may find nothing new; as tokio's
//! own current-thread scheduler unparks its driver at every remote schedule. task/loom.rs
//! models the handshake with both a stored waker and one stored during the race.
//!
//! Fairness: one drive polls the tasks queued when it began (both queues), then those queued
//! meanwhile (woken by the ones before, or yielding), batch after batch, until it has made 61
//! polls (tokio's `event_interval`; more only when its first batch alone is larger); if tasks
//! are still queued it sets `any` (seen by `registered`, which wakes the main future), so that
//! the backend polls its own I/O and timers before they run. A task that yields forever never
//! starves the loop.
//!
//! A task is in at most one queue, at most once: its `SCHEDULED` bit is set by whoever queues it
//! and cleared by its poll (`state::wake_own`, `state::poll_own`).
//!
//! At close's end (or a runner abandoned), [`clear`](OwnQueue::clear) drops the shared queue's
//! cells and closes it: a push from then on queues nothing. The thread's queue holds none of the
//! runner's cells then: no run or close of it is under way, and each one's end emptied it.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::task::Context as TaskCx;

// The shared half's lock, flags and fences are loom's under `--cfg loom`, so that the loom model
// of the handshake (task/loom.rs) drives this code; `std`'s otherwise.
#[cfg(loom)]
use ::loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
use ::loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
use std::sync::Mutex;

#[cfg(not(loom))]
use crate::lock::lock;

/// `crate::lock::lock`, for loom's mutex.
#[cfg(loom)]
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many task polls one drive may make before it lets the backend poll its I/O and timers
/// (more only when the first batch alone is larger): tokio's `event_interval`.
const BUDGET: usize = 61;

/// A task on the runner's own queue: a `Send` task's cell.
pub(crate) trait OwnTask: Send + Sync + 'static {
    /// Polls the task once; it was taken off the queue. With `installed`, the task's runner is
    /// the thread-local scope's current one already (see [`OwnQueue::drive`]), and the poll
    /// does not enter it again.
    fn poll_own(self: Arc<Self>, installed: bool);

    /// Drops the task's future unpolled, if it is still there: the queue is closed (a multi-thread
    /// loop's pumps, see `task::pump`), and the task, queued (woken, or flagged by close while a
    /// pump polled it), was cancelled or flagged `ABORTED` already. Letting go of the cell alone
    /// would leave a future that holds its own waker (and so its cell) alive for good.
    fn cancel_closed(self: Arc<Self>);
}

/// The thread's queue (see the [module docs](self)): the tasks of the runner whose run (or
/// close) this thread is inside, queued from this thread while its main future's poll is under
/// way. It lives in the thread-local scope (`scope`), which knows whose run that is; only that
/// runner's drive takes from it, and [`leave`] empties it when the run leaves the thread.
///
/// A `RefCell` and not a lock: only its thread touches it. No borrow is held while a task is
/// polled or dropped, so a push from a poll never finds it borrowed.
///
/// Two `Vec`s rather than a ring buffer: pushes go to the back of `queue`; a drive takes the
/// whole of it as one batch (`spare`, empty, taking its place) and polls the batch in order, so a
/// push and a pop are a `Vec`'s push and an iterator's step.
pub(crate) struct Here {
    queue: RefCell<Queue>,
    /// An empty queue, with the allocation of the batch before: swapped in for the next batch.
    spare: Cell<Queue>,
}

/// A queue of tasks, oldest first.
type Queue = Vec<Arc<dyn OwnTask>>;

impl Here {
    pub(crate) const fn new() -> Self {
        Here {
            queue: RefCell::new(Vec::new()),
            spare: Cell::new(Vec::new()),
        }
    }

    /// Queues `task` (its `SCHEDULED` bit was just set). The caller checked that this thread is
    /// inside the run (or close) of `task`'s runner, and that the runner's main future is being
    /// polled (`OwnQueue::active_here`). Gives `task` back if the queue is borrowed (never
    /// expected: no borrow outlives a push or a pop), for the shared path.
    #[inline]
    pub(crate) fn push(&self, task: Arc<dyn OwnTask>) -> Result<(), Arc<dyn OwnTask>> {
        match self.queue.try_borrow_mut() {
            Ok(mut queue) => {
                queue.push(task);
                Ok(())
            }
            Err(_) => Err(task),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    /// The task queued last: the only one, when the drive takes it.
    #[inline]
    fn pop_last(&self) -> Option<Arc<dyn OwnTask>> {
        self.queue.borrow_mut().pop()
    }

    /// Everything queued, oldest first, as one batch: the queue starts again empty (with the
    /// allocation of the batch before). The batch goes back with [`done`](Self::done).
    #[inline]
    fn take_batch(&self) -> Queue {
        let spare = self.spare.take();
        std::mem::replace(&mut *self.queue.borrow_mut(), spare)
    }

    /// A batch polled to its end: its allocation is kept for the next one.
    #[inline]
    fn done(&self, batch: Queue) {
        debug_assert!(batch.is_empty());
        self.spare.set(batch);
    }

    /// A batch left unfinished (a poll unwound): its tasks go back in front of the ones queued
    /// meanwhile, where [`leave`] finds them.
    #[cold]
    fn put_back(&self, rest: &mut std::vec::Drain<'_, Arc<dyn OwnTask>>) {
        let rest: Queue = rest.collect();
        if let Ok(mut queue) = self.queue.try_borrow_mut() {
            queue.splice(0..0, rest);
        }
    }
}

/// The rest of a batch being polled: given back to the thread's queue if a poll unwinds.
struct Rest<'a, 'b> {
    tasks: std::vec::Drain<'b, Arc<dyn OwnTask>>,
    here: &'a Here,
}

impl Drop for Rest<'_, '_> {
    #[inline]
    fn drop(&mut self) {
        if self.tasks.len() != 0 {
            self.here.put_back(&mut self.tasks);
        }
    }
}

/// The run (or close) of `own`'s runner leaves this thread, returning or unwinding, and `here`
/// is no longer its: what is left in it moves to the shared queue, with `any` set, so that the
/// next run or close finds it wherever it runs (see the [module docs](self)). Called by `scope`
/// once it has cleared the thread's owner, so no push comes here meanwhile.
#[inline]
pub(crate) fn leave(here: &Here, own: &OwnQueue) {
    if here.len() != 0 {
        own.requeue(here);
    }
    // Relaxed: the next run reads it on whatever thread it is handed to, after that hand-over.
    own.here.store(false, Ordering::Relaxed);
}

/// The runner's own queue (in `Shared`): its shared half, and the handshake with the main
/// future's waker (see the [module docs](self)).
pub(crate) struct OwnQueue {
    /// Tasks queued from anywhere but the thread inside the run while its main future is being
    /// polled.
    queue: Mutex<Queue>,
    /// Something may be queued that a drive has not seen: set by a push to `queue` (under its
    /// lock: the push that finds it clear wakes the main future), and by a drive that left
    /// tasks in the thread's queue; cleared under `queue`'s lock by the drive that takes it.
    any: AtomicBool,
    /// Set from the start of a poll of the main future until its waker is registered again after
    /// it: a push from that thread may go to the thread's queue, which the drive after the poll
    /// takes. Read and written only by the thread inside the run.
    active: AtomicBool,
    /// The thread's queue may hold something: set by a push there, cleared by the drive that
    /// empties it and by [`leave`]. Read and written only on the thread inside the run (plain
    /// loads and stores), so that a drive with nothing to do costs no thread-local access.
    here: AtomicBool,
    /// Set by [`clear`](Self::clear), under the queue's lock: every task has ended, and a wake
    /// still racing in from another thread queues nothing (its cell would keep the runner alive
    /// through its header, and the runner the cell).
    closed: AtomicBool,
}

impl Default for OwnQueue {
    fn default() -> Self {
        OwnQueue {
            queue: Mutex::new(Vec::new()),
            any: AtomicBool::new(false),
            active: AtomicBool::new(false),
            here: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }
}

impl OwnQueue {
    /// Whether the main future is being polled: asked on the thread inside this runner's run (or
    /// close), before a push to the thread's queue.
    ///
    /// Relaxed: `active` is written only by the thread inside the run (in `before` and
    /// `registered`), and this load is made on that thread, so it reads that thread's last
    /// store (a runner that moved to another thread was handed over with a synchronization,
    /// `Runner` being `Send` and `run` taking `&mut self`). A value left set by an earlier run
    /// (its main future ended without `registered`) is harmless: a run's main future is polled
    /// once more at least, and the drive after it takes the thread's queue.
    #[inline]
    pub(crate) fn active_here(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Queues `task` (its `SCHEDULED` bit was just set) on the shared queue: true when the caller
    /// must wake the main future (`Shared::main_waker`), because this push found `any` clear;
    /// false when an earlier push since the last drive woke it already (or the loop's thread
    /// will look anyway), or the queue is closed.
    #[must_use]
    pub(crate) fn push(&self, task: Arc<dyn OwnTask>) -> bool {
        let mut queue = lock(&self.queue);
        if self.closed.load(Ordering::Relaxed) {
            drop(queue);
            drop(task);
            return false;
        }
        queue.push(task);
        // Under the lock, as the drive clears it (`take_shared`): a push whose `swap` finds it
        // set has its task in the queue before the drive that the first push's wake causes
        // takes it (see the module docs).
        let woken = self.any.swap(true, Ordering::Relaxed);
        drop(queue);
        !woken
    }

    /// [`leave`]: the thread's queue, moved behind the shared one (the thread keeps its queue's
    /// allocation), with `any` set for the next drive. No wake: no run is polling a main future
    /// now, and the next run polls its own before it can block.
    #[cold]
    fn requeue(&self, here: &Here) {
        let mut mine = here.queue.borrow_mut();
        let mut queue = lock(&self.queue);
        if self.closed.load(Ordering::Relaxed) {
            drop(queue);
            let left = std::mem::take(&mut *mine);
            drop(mine);
            drop(left);
            return;
        }
        queue.extend(mine.drain(..));
        self.any.store(true, Ordering::Relaxed);
    }

    /// Before a poll of the main future (or close's): pushes from now on need not wake it. No
    /// task is polled here: as with the backends' own `block_on`, the main future is polled first
    /// (a close that comes first cancels queued tasks before any of them is polled).
    #[inline]
    pub(crate) fn before(&self) {
        // Relaxed, a plain store: `active` is read only on this thread.
        self.active.store(true, Ordering::Relaxed);
    }

    /// Whether the drive after a pending poll of the main future has anything to do: two plain
    /// loads, and no access to the thread-local (the common case of a main future that waits
    /// alone). Asked on the thread inside the run; [`drive`](Self::drive) follows if so.
    #[inline]
    pub(crate) fn wants_drive(&self) -> bool {
        self.any.load(Ordering::Relaxed) || self.here.load(Ordering::Relaxed)
    }

    /// A push went to the thread's queue (`scope::push_own`, on the thread inside the run).
    #[inline]
    pub(crate) fn pushed_here(&self) {
        // Relaxed, a plain store: `here` is read and written only on the thread inside the run.
        self.here.store(true, Ordering::Relaxed);
    }

    /// The drive after a pending poll of the main future (or close's), on the thread inside the
    /// run, with that thread's queue: polls the queued tasks, batch after batch, until `BUDGET`
    /// polls. [`registered`](Self::registered) follows, once the main future's waker is
    /// registered, with no task polled in between. `installed`: this runner is the thread-local
    /// scope's current one, with a loop marked as running (as inside its run or close, outside
    /// any task's poll), so that each poll need not enter it (`OwnTask::poll_own`).
    #[inline(never)]
    pub(crate) fn drive(&self, here: &Here, installed: bool) {
        // Batch after batch (tasks woken by the ones before, or yielding) until `BUDGET` polls:
        // the backend's turn comes no later than that, as tokio's scheduler polls its driver
        // every 61 tasks. A batch is what both queues hold when it begins; the tasks queued
        // meanwhile go behind it, in the thread's queue.
        let mut polled = 0;
        loop {
            self.take_shared(here);
            let n = here.len();
            if n == 0 {
                break;
            }
            if n == 1 {
                // One task (one that yields, say): taken alone, with nothing to give back if its
                // poll unwinds.
                if let Some(task) = here.pop_last() {
                    task.poll_own(installed);
                }
            } else {
                let mut batch = here.take_batch();
                // A task's poll that unwinds (a handler's panic) gives the rest of the batch
                // back to the thread's queue (`Rest`), where `leave` finds it.
                let mut rest = Rest {
                    tasks: batch.drain(..),
                    here,
                };
                for task in rest.tasks.by_ref() {
                    task.poll_own(installed);
                }
                drop(rest);
                here.done(batch);
            }
            polled += n;
            if polled >= BUDGET {
                break;
            }
        }
        let left = here.len() != 0;
        if left {
            // Left for after the backend's turn: `registered` (next on this thread: a relaxed
            // store is seen by its load) wakes the main future, and the next drive takes them.
            self.any.store(true, Ordering::Relaxed);
        }
        self.here.store(left, Ordering::Relaxed);
    }

    /// Appends the shared queue to the thread's, if a push may have queued anything.
    #[inline]
    fn take_shared(&self, here: &Here) {
        // Relaxed: the lock below orders the queue's contents; `any` only says whether to take it.
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let mut queue = lock(&self.queue);
        // Cleared under the lock, before taking: a push whose `any` this overwrites had its
        // critical section before this one (a push after it stores `any` after this lock was
        // released), so its task is taken here.
        self.any.store(false, Ordering::Relaxed);
        if queue.is_empty() {
            return;
        }
        let mut mine = here.queue.borrow_mut();
        if mine.is_empty() {
            // Each keeps an allocation: the swap hands the shared one's over, and an empty one
            // back.
            std::mem::swap(&mut *mine, &mut *queue);
        } else {
            mine.append(&mut queue);
        }
    }

    /// The main future's waker (`Shared::main_waker`) is registered, stored under its lock just
    /// now or found stored already: pushes from now on go to the shared queue and wake it, and
    /// if tasks are still queued (left by the drive, or pushed by another thread whose wake read
    /// the waker before it was stored) it is woken at once, so that the backend gets its turn
    /// before they run.
    #[inline]
    pub(crate) fn registered(&self, cx: &mut TaskCx<'_>) {
        self.active.store(false, Ordering::Relaxed);
        // Relaxed, no fence: a push whose wake read the waker before it was stored set `any`
        // before that read, under the waker's lock, which this thread took afterwards to store
        // it; a push whose wake reads it after wakes it (see the module docs).
        if self.any.load(Ordering::Relaxed) {
            cx.waker().wake_by_ref();
        }
    }

    /// Drops every task left queued, for good (close's end, or a runner abandoned): their
    /// futures are gone already, and dropping them breaks the cycle through their header's
    /// runner. A push from now on queues nothing. The thread's queue holds none of them: no run
    /// or close of the runner is under way (its `leave` emptied it).
    pub(crate) fn clear(&self) {
        let left = {
            let mut queue = lock(&self.queue);
            self.closed.store(true, Ordering::Relaxed);
            self.any.store(false, Ordering::Relaxed);
            std::mem::take(&mut *queue)
        };
        drop(left);
    }
}

#[cfg(test)]
mod tests {
    //! The cell as its own waker, under Miri: the borrowed waker of a poll cloned, woken by
    //! value and by reference from another thread, and dropped unwoken; an abort that queues.
    //! The two queues: the thread's queue left by a run that panics, taken by the next run on
    //! another thread; a cell woken by another runner's task; pushes from another thread racing
    //! the drive.

    use std::future::{pending, poll_fn, Future};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::task::{Context, Poll, Waker};
    use std::thread::{self, ThreadId};
    use std::time::Duration;

    use crate::testing::TestLoop;
    use crate::Runner;

    /// Runs `test` on a thread of its own, failing with `hang` if it has not ended in 60 s.
    fn watchdog(hang: &'static str, test: impl FnOnce() + Send + 'static) {
        let (finished, watchdog) = mpsc::channel();
        let t = thread::spawn(move || {
            test();
            finished.send(()).unwrap();
        });
        if watchdog.recv_timeout(Duration::from_secs(60)).is_err() {
            if t.is_finished() {
                // It panicked: its own message is the failure.
                t.join().unwrap();
            }
            panic!("{hang}");
        }
        t.join().unwrap();
    }

    /// Spawns `n` tasks that each count one in `ran`.
    fn spawn_counting(ran: &Arc<AtomicUsize>, n: usize) {
        for _ in 0..n {
            let ran = ran.clone();
            drop(crate::spawn(async move {
                ran.fetch_add(1, Ordering::SeqCst);
            }));
        }
    }

    /// A main future that is ready at once, and whose destructor spawns three tasks (into the
    /// thread's queue: the run is still inside its last poll's drive window) and panics, which
    /// unwinds out of `run`.
    struct SpawnsAndPanicsOnDrop(Arc<AtomicUsize>);

    impl Future for SpawnsAndPanicsOnDrop {
        type Output = ();

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            Poll::Ready(())
        }
    }

    impl Drop for SpawnsAndPanicsOnDrop {
        fn drop(&mut self) {
            spawn_counting(&self.0, 3);
            panic!("the main future's destructor panics");
        }
    }

    #[test]
    fn tasks_left_by_runs_that_panic_run_in_the_next_run_on_another_thread() {
        watchdog("tasks queued on the first thread never ran", || {
            let mut rt = Runner::<TestLoop>::new();
            let ran = Arc::new(AtomicUsize::new(0));
            // Spawned during the main future's one poll, which then panics (caught, and
            // resumed once the run has left the thread).
            let r = ran.clone();
            let out = catch_unwind(AssertUnwindSafe(|| {
                rt.run(async move {
                    spawn_counting(&r, 5);
                    panic!("the main future panics");
                })
            }));
            assert!(out.is_err());
            // Spawned by the main future's destructor, whose panic unwinds through the run.
            let out = catch_unwind(AssertUnwindSafe(|| {
                rt.run(SpawnsAndPanicsOnDrop(ran.clone()))
            }));
            assert!(out.is_err());
            assert_eq!(ran.load(Ordering::SeqCst), 0, "no task had a drive yet");
            let report = thread::spawn(move || {
                rt.run(async {
                    while ran.load(Ordering::SeqCst) < 8 {
                        crate::yield_now().await;
                    }
                })
                .unwrap();
                assert_eq!(ran.load(Ordering::SeqCst), 8);
                let report = rt.close().unwrap();
                // Each ran once, all before close: none left to count, none run twice.
                assert_eq!(ran.load(Ordering::SeqCst), 8);
                report
            })
            .join()
            .unwrap();
            assert_eq!(
                (report.finished, report.cancelled, report.panicked),
                (0, 0, 0)
            );
        });
    }

    #[test]
    fn a_cell_woken_by_another_runners_task_is_polled_by_its_own_runner() {
        watchdog("the woken cell never ran", || {
            let mut a = Runner::<TestLoop>::new();
            let home = thread::current().id();
            let saved: Arc<Mutex<Option<Waker>>> = Arc::default();
            let polled_on: Arc<Mutex<Vec<ThreadId>>> = Arc::default();
            let (s, p) = (saved.clone(), polled_on.clone());
            a.run(async move {
                let mut woken = false;
                let x = crate::spawn(poll_fn(move |cx| {
                    p.lock().unwrap().push(thread::current().id());
                    if woken {
                        return Poll::Ready(());
                    }
                    woken = true;
                    *s.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Pending
                }));
                while saved.lock().unwrap().is_none() {
                    crate::yield_now().await;
                }
                // Runner B runs on a blocking job's thread; its task wakes runner A's cell
                // there, inside B's drive, while A's main future is being polled (blocked below
                // until the wake is done): A's cell must go to A's queue, not to that thread's.
                let saved = saved.clone();
                let (go, go_rx) = mpsc::channel::<()>();
                let (done, done_rx) = mpsc::channel::<()>();
                let b = crate::spawn_blocking(move || {
                    let mut b = Runner::<TestLoop>::new();
                    b.run(async move {
                        let waker = saved.lock().unwrap().take().unwrap();
                        crate::spawn(async move {
                            go_rx.recv().unwrap();
                            waker.wake();
                            done.send(()).unwrap();
                        })
                        .await
                        .unwrap();
                    })
                    .unwrap();
                    b.close().unwrap()
                });
                poll_fn(|_| {
                    go.send(()).unwrap();
                    done_rx.recv().unwrap();
                    Poll::Ready(())
                })
                .await;
                let report = b.await.unwrap();
                assert_eq!((report.finished, report.cancelled), (0, 0));
                x.await.unwrap();
            })
            .unwrap();
            assert_eq!(*polled_on.lock().unwrap(), [home, home]);
            let report = a.close().unwrap();
            assert_eq!((report.finished, report.cancelled), (0, 0));
        });
    }

    /// A task that yields forever gets `BUDGET` polls per drive, on the thread's queue, and the
    /// tasks left over wake the main future (which registers no waker of its own here) after the
    /// backend's turn: exact counts of polls on both sides.
    #[test]
    fn a_task_yielding_forever_gets_the_budget_per_drive_and_wakes_the_main_future() {
        watchdog(
            "the main future was not woken after the budget ran out",
            || {
                let mut rt = Runner::<TestLoop>::new();
                let (count, main_polls) = rt
                    .run(async {
                        let count = Arc::new(AtomicUsize::new(0));
                        let c = count.clone();
                        let spinner = crate::spawn(async move {
                            loop {
                                c.fetch_add(1, Ordering::SeqCst);
                                crate::yield_now().await;
                            }
                        });
                        let mut main_polls = 0;
                        poll_fn(|_| {
                            main_polls += 1;
                            if count.load(Ordering::SeqCst) >= 200 {
                                Poll::Ready(())
                            } else {
                                Poll::Pending
                            }
                        })
                        .await;
                        spinner.abort();
                        assert!(spinner.await.unwrap_err().is_cancelled());
                        (count.load(Ordering::SeqCst), main_polls)
                    })
                    .unwrap();
                // Four drives of 61 polls each, one after each pending poll of the main future.
                assert_eq!((count, main_polls), (4 * super::BUDGET, 5));
                let report = rt.close().unwrap();
                assert_eq!((report.finished, report.cancelled), (0, 0));
            },
        );
    }

    /// A task that ends once another thread has counted `rounds` events for it, yielding (a
    /// push from the loop's thread) after each: its waker is pushed from the other thread while
    /// the drive runs.
    async fn waits_for_events(
        events: Arc<AtomicUsize>,
        slot: Arc<Mutex<Option<Waker>>>,
        rounds: usize,
    ) -> usize {
        let mut seen = 0;
        while seen < rounds {
            poll_fn(|cx| {
                *slot.lock().unwrap() = Some(cx.waker().clone());
                if events.load(Ordering::SeqCst) > seen {
                    seen += 1;
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            crate::yield_now().await;
        }
        seen
    }

    #[test]
    fn pushes_from_another_thread_race_the_drive() {
        const TASKS: usize = 4;
        const ROUNDS: usize = 6;
        watchdog("a task woken from another thread was lost", || {
            let mut rt = Runner::<TestLoop>::new();
            let events: Vec<_> = (0..TASKS).map(|_| Arc::new(AtomicUsize::new(0))).collect();
            let slots: Vec<Arc<Mutex<Option<Waker>>>> =
                (0..TASKS).map(|_| Arc::default()).collect();
            let (ev, sl) = (events.clone(), slots.clone());
            let waker_thread = thread::spawn(move || {
                for _ in 0..ROUNDS {
                    for (e, s) in ev.iter().zip(&sl) {
                        e.fetch_add(1, Ordering::SeqCst);
                        if let Some(w) = s.lock().unwrap().take() {
                            w.wake();
                        }
                    }
                    thread::yield_now();
                }
            });
            let seen = rt
                .run(async move {
                    let handles: Vec<_> = events
                        .iter()
                        .zip(&slots)
                        .map(|(e, s)| crate::spawn(waits_for_events(e.clone(), s.clone(), ROUNDS)))
                        .collect();
                    let mut seen = Vec::new();
                    for h in handles {
                        seen.push(h.await.unwrap());
                    }
                    seen
                })
                .unwrap();
            waker_thread.join().unwrap();
            assert_eq!(seen, [ROUNDS; TASKS]);
            let report = rt.close().unwrap();
            assert_eq!((report.finished, report.cancelled), (0, 0));
        });
    }

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

    thread_local! {
        static HERE: super::Here = const { super::Here::new() };
    }

    /// A task that records its poll in `log`; with `then`, pushes it onto `HERE` and panics.
    struct Probe {
        name: char,
        log: Arc<Mutex<Vec<char>>>,
        then: Mutex<Option<Arc<Probe>>>,
    }

    impl super::OwnTask for Probe {
        fn poll_own(self: Arc<Self>, _: bool) {
            self.log.lock().unwrap().push(self.name);
            let then = self.then.lock().unwrap().take();
            if let Some(next) = then {
                HERE.with(|here| assert!(here.push(next).is_ok()));
                panic!("a poll unwinds out of the drive");
            }
        }

        fn cancel_closed(self: Arc<Self>) {
            unreachable!("the thread's queue is never closed");
        }
    }

    /// A poll that unwinds out of a drive gives the rest of its batch back to the thread's
    /// queue, in front of what was queued meanwhile; the next drive polls them in that order.
    #[test]
    fn a_batch_left_by_a_poll_that_unwinds_goes_back_in_order() {
        let own = super::OwnQueue::default();
        let log: Arc<Mutex<Vec<char>>> = Arc::default();
        let probe = |name, then| {
            Arc::new(Probe {
                name,
                log: log.clone(),
                then: Mutex::new(then),
            })
        };
        let d = probe('d', None);
        HERE.with(|here| {
            for task in [
                probe('a', None),
                probe('b', Some(d)),
                probe('c', None),
                probe('e', None),
            ] {
                assert!(here.push(task).is_ok());
            }
            let out = catch_unwind(AssertUnwindSafe(|| own.drive(here, true)));
            assert!(out.is_err());
            assert_eq!(*log.lock().unwrap(), ['a', 'b']);
            own.drive(here, true);
            assert_eq!(*log.lock().unwrap(), ['a', 'b', 'c', 'e', 'd']);
            assert_eq!(here.len(), 0);
        });
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
