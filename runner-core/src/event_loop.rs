//! The contract between the runner and an event loop.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Instant;

/// A boxed `Send` future with no output: what the runner hands a loop to spawn.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A boxed `!Send` future with no output: what the runner hands a local loop to spawn.
pub type LocalBoxFuture = Pin<Box<dyn Future<Output = ()> + 'static>>;

/// A task of the runner's, as the runner hands it to [`Spawner::spawn_task`]: a future with no
/// output, which the loop runs as [`Spawner::spawn`] runs a [`BoxFuture`]. On a multi-thread
/// loop it is one of the runner's *pumps* (which poll the runner's `Send` tasks off its own
/// queue, see [`spawn`](crate::spawn)), or, with
/// [`Builder::backend_tasks`](crate::Builder::backend_tasks), one `Send` task; dropping such a
/// task before it completed cancels it. A loop must not drop the tasks it is given before its
/// [`shutdown`](EventLoop::shutdown) (or the runner's close): the tasks a pump would have polled
/// wait for the next pump.
///
/// It is a reference to a cell the runner allocated (the task's, or the pump's):
/// it costs no allocation of its own, and it is `Unpin`, so a loop can store it as it is (in its
/// own task, a queue, an enum) without boxing it. Polling it polls the task through the runner's
/// harness (panics caught, context installed, cancellation seen); it returns `Ready` once the
/// task has ended, and is not to be polled after that. Dropped before then (a loop shutting down
/// with the task still queued), it drops the task's future there, on the dropping thread, and
/// the task's [`JoinHandle`](crate::JoinHandle) reports it cancelled.
///
/// What it costs a loop that ignores it: [`Spawner::spawn_task`]'s default boxes it (one
/// allocation) and calls [`Spawner::spawn`].
pub struct RawTask {
    cell: Arc<dyn Drive>,
}

/// What a [`RawTask`] refers to: a task cell, whatever its future (see `task::harness`).
pub(crate) trait Drive: Send + Sync + 'static {
    /// Polls the task once; `Ready` when it has ended.
    fn poll_driver(&self, cx: &mut TaskCx<'_>) -> Poll<()>;

    /// The loop has let go of the task: cancels it if it has not ended.
    fn drop_driver(&self);
}

impl RawTask {
    pub(crate) fn new(cell: Arc<dyn Drive>) -> Self {
        RawTask { cell }
    }
}

impl Future for RawTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        self.cell.poll_driver(cx)
    }
}

impl Drop for RawTask {
    fn drop(&mut self) {
        self.cell.drop_driver();
    }
}

impl fmt::Debug for RawTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTask").finish_non_exhaustive()
    }
}

/// A blocking job for the loop's blocking pool.
pub type BlockingJob = Box<dyn FnOnce() + Send + 'static>;

/// An event loop that a `Runner` can own: tokio, smol, glommio, or your own.
///
/// The runner does everything that is not executor-specific itself: it wraps every task so that
/// panics are caught, context variables are installed, tasks are tracked and cancelled at close,
/// and diagnostics are reported. A loop only has to run futures. What an implementation must
/// guarantee is written under each method; the conformance kit (`runner-conformance`) checks each
/// sentence, so run it on your loop.
///
/// # Lifecycle
///
/// The runner makes the loop through its [`LoopFactory`](crate::LoopFactory), calls
/// [`spawner`](Self::spawner) and [`local_spawner`](Self::local_spawner) once right after, calls
/// [`block_on`](Self::block_on) for every `run` and once more during close, and finally
/// [`shutdown`](Self::shutdown). By the time `shutdown` is called every task the runner spawned
/// has finished or been dropped, so the loop has nothing of the runner's left to wait for.
pub trait EventLoop: Sized + 'static {
    /// Makes a loop in the backend's default configuration; what `Runner::new`
    /// uses.
    ///
    /// # Errors
    ///
    /// Whatever the backend's constructor fails with (file descriptors, threads, io_uring).
    fn default_loop() -> io::Result<Self>;

    /// Runs `fut` to completion on the calling thread, driving the loop (its tasks, timers and
    /// I/O) while it waits.
    ///
    /// # Contract
    ///
    /// - `fut` is polled on the calling thread only, and never after it returned `Ready`.
    /// - While `block_on` runs, tasks spawned through the [`Spawner`] make progress, whether they
    ///   were spawned before the call, from inside it, or from other threads.
    /// - While nothing is ready (every task and `fut` pending, timers not yet due), the calling
    ///   thread parks until a waker, a timer or I/O wakes it: it does not spin. The kit measures
    ///   the thread's CPU time during a sleep (`idle::sleeping_main_future_parks`).
    /// - A panic in `fut` or in a task never reaches `block_on`: the runner catches both. The loop
    ///   must stay usable after `block_on` returns, for the next call.
    /// - The runner never calls `block_on` re-entrantly; it checks [`is_nested`](Self::is_nested)
    ///   and its own bookkeeping first.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;

    /// A handle that spawns `Send` tasks, blocking jobs and timers onto this loop from any thread.
    ///
    /// # Contract
    ///
    /// - [`Spawner::spawn`] (and [`Spawner::spawn_task`]) never polls the task inline; it queues
    ///   it. Queued tasks run when the loop next runs: on a current-thread loop that is inside
    ///   [`block_on`](Self::block_on), on a multi-thread loop as soon as a worker is free.
    /// - Every task it accepted is eventually polled to completion or dropped; it drops tasks on a
    ///   thread of the loop.
    /// - A task may complete without its waker being called by anyone but the runner: at close,
    ///   the runner drops the futures of pending tasks in place (on its own thread, in bulk) and
    ///   wakes each task once, so that its next poll returns `Ready` at once; close waits for that
    ///   poll (or for the task to be dropped), so that no task of the runner's is left queued when
    ///   [`shutdown`](Self::shutdown) is called. A loop whose `shutdown` drops every task it
    ///   holds says so ([`reaps_at_shutdown`](Self::reaps_at_shutdown)): its tasks are then
    ///   neither woken nor waited for, and `shutdown` drops them.
    fn spawner(&self) -> Arc<dyn Spawner>;

    /// A handle that spawns `!Send` tasks onto this loop, when it can run them; `None` otherwise
    /// (the default).
    ///
    /// # Contract
    ///
    /// Called on the calling thread at the start of every `block_on` the runner makes, and used
    /// only on that thread. Local tasks spawned through it must make progress in every later
    /// `block_on` on the same thread (including the one under way). A loop that is `Send` keeps
    /// its local executor per thread; the runner itself refuses to run or close on another thread
    /// while local tasks are alive ([`RunError::WrongThread`](crate::RunError::WrongThread)).
    ///
    /// The runner keeps every local task's future itself (so that it can drop them when the
    /// runner goes, wherever that happens): what it hands this spawner is a small task that polls
    /// the runner's future when woken, and ends at once when the runner has let go of it.
    fn local_spawner(&self) -> Option<Rc<dyn LocalSpawner>> {
        None
    }

    /// Runs `f` on the calling thread inside the loop's context (its runtime entered, as tokio's
    /// `Handle::enter`), without driving the loop; `None` when the loop cannot do that (the
    /// default), and then `f` is not called.
    ///
    /// The runner uses it to poll the main future of every `run` once inline, before
    /// [`block_on`](Self::block_on): a future that is ready at once is then done without
    /// starting the loop; a pending one goes to `block_on`, which polls it again with a real
    /// waker (the inline poll's waker does nothing).
    ///
    /// # Contract
    ///
    /// Return `Some` only if any future the loop can run may be polled inside `f`: everything
    /// it needs from the loop (spawning, timers, I/O registration) must work there. The tokio
    /// backend enters the runtime's context; the smol backend needs no
    /// context (its tasks and timers reach the executor and the reactor through handles). The
    /// glommio backend returns `None`: glommio's timers, I/O and `spawn_local` work only inside
    /// its executor's `run`.
    ///
    /// A loop whose `block_on` costs no more than entering its context may return `None` too:
    /// then a pending main future is polled once less per `run`, but the spawns its first poll
    /// makes are no longer held back and handed to the loop in one batch from inside `block_on`
    /// (on tokio multi-thread that measured slower for a main future that spawns thousands).
    fn enter<R, F: FnOnce() -> R>(&self, f: F) -> Option<R> {
        let _ = f;
        None
    }

    /// True when the loop runs tasks on worker threads of its own, so that they also progress
    /// between runs. On a loop that says `false`, the runner runs its `Send` tasks on its own run
    /// queue inside [`block_on`](Self::block_on) instead of spawning them (see
    /// [`spawn`](crate::spawn)). Read once, when the runner makes the loop; shown by
    /// [`LoopHandle::is_multi_thread`](crate::LoopHandle::is_multi_thread). The default is
    /// `false`.
    fn is_multi_thread(&self) -> bool {
        false
    }

    /// How many worker threads a multi-thread loop runs tasks on: the most *pumps* the runner
    /// makes, the backend tasks that poll its `Send` tasks off its own queue on such a loop (see
    /// [`spawn`](crate::spawn)). Read once, when the runner makes the loop, and only if
    /// [`is_multi_thread`](Self::is_multi_thread) says `true` (and
    /// [`Builder::backend_tasks`](crate::Builder::backend_tasks) is off). The default is the
    /// machine's [`available_parallelism`](std::thread::available_parallelism) (1 if unknown),
    /// read once per process; a loop that knows its worker count says it.
    fn workers(&self) -> usize {
        crate::registry::parallelism()
    }

    /// True when the calling thread is inside a runtime this loop cannot be nested in (for a tokio
    /// backend: any tokio runtime context). The runner then returns
    /// [`RunError::NestedRun`](crate::RunError::NestedRun) instead of calling `block_on`.
    fn is_nested() -> bool {
        false
    }

    /// True when [`shutdown`](Self::shutdown) drops every task the loop still holds, queued or
    /// idle (as tokio's runtime does when it is dropped, and an `async_executor::Executor` when
    /// its last reference goes). The default is `false`.
    ///
    /// Close drops the futures of pending tasks in place either way (on its own thread, with the
    /// runner and context installed). A loop that says `false` gets each of those tasks woken
    /// once, and close waits until the loop has polled or dropped every one of them (see
    /// [`spawner`](Self::spawner)), so that none is left queued when `shutdown` is called. A
    /// loop that says `true` saves that round (a wake and a poll per task): the tasks are left as
    /// they are, empty, for `shutdown` to drop; all that their drop does is let go of the
    /// runner's reference to the task (nothing of the task's own is dropped there).
    ///
    /// # Contract
    ///
    /// Return `true` only if `shutdown` drops every task the [`Spawner`] accepted that has not
    /// completed: before it returns, or at the latest on the loop's own threads as they stop
    /// (tokio's `shutdown_background`). Read once per close, on the runner's thread, before the
    /// tasks are cancelled. A loop that shares its executor with others (one built on a handle
    /// to a runtime it does not own, an executor someone else keeps alive) says `false`, or
    /// those tasks stay queued there until that executor goes.
    fn reaps_at_shutdown(&self) -> bool {
        false
    }

    /// Shuts the loop down, after the runner's close. Must not wait for blocking jobs that are
    /// still running (the runner has already given them their timeout and reported them), and must
    /// not panic when called from inside another runtime. The default drops the loop.
    fn shutdown(self) {
        drop(self);
    }
}

/// Spawns onto an [`EventLoop`] from any thread. See [`EventLoop::spawner`] for the contract.
///
/// Two methods queue a task: [`spawn`](Self::spawn) takes a [`BoxFuture`], and
/// [`spawn_task`](Self::spawn_task) takes the runner's own [`RawTask`], which is what the runner
/// spawns its pumps through on a multi-thread loop ([`EventLoop::is_multi_thread`]; at most one
/// per worker, see [`spawn`](crate::spawn)), and every `Send` task with
/// [`Builder::backend_tasks`](crate::Builder::backend_tasks); on a current-thread loop the
/// runner runs its `Send` tasks on its own queue, inside [`EventLoop::block_on`], and uses
/// neither. Its default boxes the task and calls `spawn`, so a loop of
/// your own needs only `spawn` (one `impl`, with the three required methods). A loop that can
/// store a `RawTask` as it is (generic over the future it spawns, as `tokio::spawn` and
/// `async_executor::Executor::spawn` are) overrides `spawn_task` to save that allocation: one
/// per spawned task. The contract is the same for both.
///
/// # Examples
///
/// A loop that keeps its queued tasks in a queue of its own stores both kinds as they are:
///
/// ```
/// # use runner_core as runner;
/// use std::collections::VecDeque;
/// use std::sync::Mutex;
/// use std::time::Instant;
///
/// use runner::{BlockingJob, BoxFuture, RawTask, Spawner};
///
/// enum Job {
///     Boxed(BoxFuture),
///     Task(RawTask),
/// }
///
/// struct QueueSpawner {
///     queue: Mutex<VecDeque<Job>>,
/// }
///
/// impl Spawner for QueueSpawner {
///     fn spawn(&self, task: BoxFuture) {
///         self.queue.lock().unwrap().push_back(Job::Boxed(task));
///     }
///
///     fn spawn_task(&self, task: RawTask) {
///         self.queue.lock().unwrap().push_back(Job::Task(task));
///     }
///     # fn spawn_blocking(&self, job: BlockingJob) { std::thread::spawn(job); }
///     # fn sleep_until(&self, _: Instant) -> BoxFuture { Box::pin(std::future::pending()) }
/// }
/// ```
pub trait Spawner: Send + Sync + 'static {
    /// Queues a task on the loop.
    fn spawn(&self, task: BoxFuture);

    /// Queues one of the runner's tasks on the loop, as [`spawn`](Self::spawn) does: on a
    /// multi-thread loop the runner spawns its pumps (and, with
    /// [`Builder::backend_tasks`](crate::Builder::backend_tasks), every `Send` task) through this
    /// method. The default boxes `task` and calls `spawn`;
    /// override it only to save that allocation (see the [trait docs](Spawner)).
    fn spawn_task(&self, task: RawTask) {
        self.spawn(Box::pin(task));
    }

    /// Runs `job` on the loop's pool of blocking threads.
    fn spawn_blocking(&self, job: BlockingJob);

    /// A future that completes at `deadline`, driven by the loop's own timer. It may be polled
    /// from any task of the loop.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture;
}

/// Spawns `!Send` tasks onto a local [`EventLoop`], on the loop's own thread.
pub trait LocalSpawner: 'static {
    /// Queues a local task on the loop.
    fn spawn_local(&self, task: LocalBoxFuture);
}

#[cfg(test)]
mod tests {
    //! [`RawTask`] through a loop that does not override [`Spawner::spawn_task`], and through
    //! one that drops it unpolled.

    use std::future::{pending, Future};
    use std::io;
    use std::marker::PhantomData;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use super::{BlockingJob, BoxFuture, EventLoop, RawTask, Spawner};
    use crate::testing::TestLoop;
    use crate::Runner;

    /// [`TestLoop`] behind the spawner `S` makes of its own.
    struct Over<S>(TestLoop, PhantomData<fn() -> S>);

    trait Wrap: Spawner {
        fn wrap(inner: Arc<dyn Spawner>) -> Self;
    }

    impl<S: Wrap> EventLoop for Over<S> {
        fn default_loop() -> io::Result<Self> {
            Ok(Over(TestLoop::new()?, PhantomData))
        }

        fn block_on<F: Future>(&self, fut: F) -> F::Output {
            self.0.block_on(fut)
        }

        fn spawner(&self) -> Arc<dyn Spawner> {
            Arc::new(S::wrap(self.0.spawner()))
        }

        /// Claimed, so that the runner hands its tasks to the spawner (`spawn_task`), as it does
        /// only on multi-thread loops with `backend_tasks`: otherwise they go onto its own queue.
        fn is_multi_thread(&self) -> bool {
            true
        }
    }

    /// Only the required methods: every task goes through `spawn`, counted.
    struct Required(Arc<dyn Spawner>);

    static BOXED: AtomicUsize = AtomicUsize::new(0);

    impl Wrap for Required {
        fn wrap(inner: Arc<dyn Spawner>) -> Self {
            Required(inner)
        }
    }

    impl Spawner for Required {
        fn spawn(&self, task: BoxFuture) {
            BOXED.fetch_add(1, Ordering::SeqCst);
            self.0.spawn(task);
        }

        fn spawn_blocking(&self, job: BlockingJob) {
            self.0.spawn_blocking(job);
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture {
            self.0.sleep_until(deadline)
        }
    }

    /// Drops every task of the runner's unpolled.
    struct Dropping(Arc<dyn Spawner>);

    impl Wrap for Dropping {
        fn wrap(inner: Arc<dyn Spawner>) -> Self {
            Dropping(inner)
        }
    }

    impl Spawner for Dropping {
        fn spawn(&self, task: BoxFuture) {
            self.0.spawn(task);
        }

        fn spawn_task(&self, task: RawTask) {
            drop(task);
        }

        fn spawn_blocking(&self, job: BlockingJob) {
            self.0.spawn_blocking(job);
        }

        fn sleep_until(&self, deadline: Instant) -> BoxFuture {
            self.0.sleep_until(deadline)
        }
    }

    use crate::testing::Count;

    /// A spawner with only the required methods gets every task through `spawn`, boxed (with
    /// `backend_tasks`: one backend task per runner task), and runs, aborts and cancels them at
    /// close as any loop does.
    #[test]
    fn default_spawn_task_boxes_into_spawn() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut rt = Runner::<Over<Required>>::builder()
            .backend_tasks(true)
            .build();
        let before = BOXED.load(Ordering::SeqCst);
        let d = drops.clone();
        let (sum, aborted) = rt
            .run(async move {
                let hs: Vec<_> = (1..=3u32).map(|i| crate::spawn(async move { i })).collect();
                let count = Count(d.clone());
                let a = crate::spawn(async move {
                    let _count = count;
                    pending::<()>().await
                });
                let count = Count(d);
                crate::spawn(async move {
                    let _count = count;
                    pending::<()>().await
                });
                let mut sum = 0;
                for h in hs {
                    sum += h.await.unwrap();
                }
                a.abort();
                (sum, a.await.unwrap_err().is_cancelled())
            })
            .unwrap();
        assert_eq!((sum, aborted), (6, true));
        assert_eq!(BOXED.load(Ordering::SeqCst) - before, 5);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(rt.close().unwrap().cancelled, 1);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    /// A task the loop drops unpolled ends cancelled, its future dropped once, there.
    #[test]
    fn raw_task_dropped_unpolled_cancels() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut rt = Runner::<Over<Dropping>>::builder()
            .backend_tasks(true)
            .build();
        let d = drops.clone();
        let err = rt
            .run(async move {
                let count = Count(d.clone());
                let h = crate::spawn(async move {
                    let _count = count;
                    pending::<()>().await
                });
                // Dropped by the loop at once: the future is gone before anyone polls it.
                assert_eq!(d.load(Ordering::SeqCst), 1);
                h.await.unwrap_err()
            })
            .unwrap();
        assert!(err.is_cancelled());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        rt.close().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
