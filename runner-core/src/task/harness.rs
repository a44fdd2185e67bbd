//! The harness every task's poll goes through, and the wrappers the backends run.

use std::borrow::Borrow;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll, Wake, Waker};
use std::time::Instant;

use atomic_waker::AtomicWaker;
use pin_project_lite::pin_project;

use crate::context;
use crate::diagnostic::TaskInfo;
use crate::error::JoinError;
use crate::event_loop::Drive;
use crate::scope;
use crate::shared::TaskRef;

use super::cell::*;
use super::own::OwnTask;
use super::state::{self, Holder, Poller};

/// Drops the future with the task's runner and context installed (its destructors may use
/// them). A destructor that panics makes the task's result that panic, as tokio does: the
/// cleanup of a cancelled task failed, and someone must hear of it.
///
/// With `installed`, the caller knows the task's runner is already the scope's current one, with
/// a loop marked as running (close's drive): the drop does not enter it again.
pub(crate) fn drop_future<F>(
    stage: Pin<&mut Stage<F>>,
    env: &mut EnvMut<'_>,
    installed: bool,
) -> Result<(), JoinError> {
    let _scope = (!installed).then(|| scope::Enter::new(env.scope));
    let _ctx = context::Enter::new(env.ctx);
    let mut stage = stage;
    catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done))).map_err(JoinError::panic)
}

/// Cancels a task that is still running: drops its future (see [`drop_future`]) and completes
/// it as cancelled. Nothing to do for a task that has ended.
/// `installed`: as for [`drop_future`].
pub(crate) fn cancel<F: Future, H: Borrow<Header>>(
    mut stage: Pin<&mut Stage<F>>,
    env: &mut EnvMut<'_>,
    task: &Task<F::Output, H>,
    installed: bool,
) {
    if let StageProj::Running { .. } = stage.as_mut().project() {
        let result = drop_future(stage, env, installed).and(Err(JoinError::cancelled()));
        task.complete(result, env.scope.as_deref());
    }
}

/// The harness every task's poll goes through, whatever the backend and whoever holds the
/// future: catches the task's panics, installs the runner and the task's context, drops the
/// future when the task was aborted, times polls in debug mode, and completes the task.
pub(crate) fn poll_task<F: Future, H: Borrow<Header>>(
    mut stage: Pin<&mut Stage<F>>,
    env: &mut EnvMut<'_>,
    task: &Task<F::Output, H>,
    driver: &AtomicWaker,
    cx: &mut TaskCx<'_>,
) -> Poll<()> {
    let header = task.header();
    if let StageProj::Done = stage.as_mut().project() {
        return Poll::Ready(());
    }
    driver.register(cx.waker());
    // Checked after registering: an abort before this is seen here, one after it wakes the new
    // waker.
    let aborted = header.is_aborted();
    poll_registered(stage, env, task, cx, aborted, false)
}

/// [`poll_task`] once the waker is registered and the state word read after it: `aborted` when
/// it had `ABORTED`. With `installed`, the caller knows the task's runner is already the
/// thread-local scope's current one, with a loop marked as running (the drive of the runner's
/// own queue, inside its run or close): the poll does not enter it again.
#[inline(always)]
fn poll_registered<F: Future, H: Borrow<Header>>(
    mut stage: Pin<&mut Stage<F>>,
    env: &mut EnvMut<'_>,
    task: &Task<F::Output, H>,
    cx: &mut TaskCx<'_>,
    aborted: bool,
    installed: bool,
) -> Poll<()> {
    let header = task.header();
    if let StageProj::Done = stage.as_mut().project() {
        return Poll::Ready(());
    }
    if aborted {
        cancel(stage, env, task, installed);
        return Poll::Ready(());
    }
    let debug = env.scope.as_ref().filter(|s| s.config.debug).cloned();
    let result = {
        let _scope = (!installed).then(|| scope::Enter::new(env.scope));
        let _ctx = context::Enter::new(env.ctx);
        let start = debug.as_ref().map(|_| crate::debug::PollStart::now());
        let r = catch_unwind(AssertUnwindSafe(|| poll_stage(stage.as_mut(), cx)));
        if let (Some(s), Some(start)) = (&debug, start) {
            crate::debug::check_poll(s, &header.info(), start);
        }
        match r {
            Ok(Poll::Pending) => return Poll::Pending,
            // The finished future is dropped here, inside the same entry: its destructors run
            // with the runner and the context installed, as a cancelled one's do.
            Ok(Poll::Ready(v)) => drop_finished(stage, v),
            // `poll_stage` dropped the future during the unwind.
            Err(payload) => Err(JoinError::panic(payload)),
        }
    };
    task.complete(result, env.scope.as_deref());
    Poll::Ready(())
}

/// Drops a future that returned `v`. A destructor that panics makes the task's result that panic
/// (the cleanup failed, and someone must hear of it), and `v` is dropped with it; a panic of
/// `v`'s own destructor then is caught and dropped: the first panic is the result.
#[inline]
fn drop_finished<F: Future>(
    mut stage: Pin<&mut Stage<F>>,
    v: F::Output,
) -> Result<F::Output, JoinError> {
    match catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done))) {
        Ok(()) => Ok(v),
        Err(payload) => {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(v)));
            Err(JoinError::panic(payload))
        }
    }
}

pin_project! {
    /// The wrapper a local task runs in: its future inline, polled by the runner's own local
    /// executor (which owns it) on the runner's thread.
    pub(crate) struct LocalDriver<F: Future> {
        #[pin]
        pub(crate) stage: Stage<F>,
        pub(crate) task: Arc<Task<F::Output, Arc<LocalHeader>>>,
        pub(crate) env: Env,
    }

    impl<F: Future> PinnedDrop for LocalDriver<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before it completed (its runner let go of it): the future is dropped here,
            // on its thread, and the task ends cancelled.
            let this = this.project();
            cancel(this.stage, &mut this.env.as_mut(), this.task, false);
        }
    }
}

impl<F: Future> Future for LocalDriver<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        let this = self.project();
        poll_task(
            this.stage,
            &mut this.env.as_mut(),
            this.task,
            &this.task.header.driver,
            cx,
        )
    }
}

/// The wrapper a `Send` task runs in on the backend: its [`Cell`], behind a
/// [`RawTask`](crate::RawTask) (which is an `Arc<dyn Drive>`: no allocation of its own).
impl<F, D> Drive for Cell<F, D>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    fn poll_driver(&self, cx: &mut TaskCx<'_>) -> Poll<()> {
        self.drive(cx)
    }

    fn drop_driver(&self) {
        self.release();
    }
}

impl<F: Future, D: Driver> Cell<F, D> {
    /// A poll of the backend's task: takes `RUNNING`, polls the future (see [`poll_task`]), lets
    /// go, and tells close if the task was a shell (see [`state::drive`]).
    #[inline]
    pub(crate) fn drive(&self, cx: &mut TaskCx<'_>) -> Poll<()> {
        state::drive(
            &self.task.header.state,
            self,
            &mut Backend { cell: self, cx },
        )
    }

    /// The backend dropped its task. Before it completed (a loop shutting down), the future is
    /// dropped here, on the loop's thread, and the task ends cancelled (see [`state::release`]).
    #[inline]
    pub(crate) fn release(&self) {
        state::release(&self.task.header.state, self);
    }
}

impl<F: Future, D: Driver> Cell<F, D> {
    /// [`Holder::cancel`], `installed` as for [`drop_future`].
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING` until after this returns.
    #[inline]
    unsafe fn cancel_held(&self, installed: bool) {
        // SAFETY: the caller's.
        let run = unsafe { self.run() };
        let (stage, ctx) = run.parts();
        // Without `COMPLETE` the future is still there (see `COMPLETE`); with it, `cancel` does
        // nothing.
        cancel(
            stage,
            &mut Lent::new(&self.task.header).env(ctx),
            &self.task,
            installed,
        );
    }
}

/// The cell as the state word's protocols reach it.
impl<F: Future, D: Driver> Holder for Cell<F, D> {
    #[inline]
    unsafe fn cancel(&self, in_scope: bool) {
        // SAFETY: the caller holds `RUNNING` until after this returns.
        unsafe { self.cancel_held(in_scope) };
    }

    #[inline]
    fn wake_driver(&self) {
        self.driver.wake();
    }

    #[inline]
    fn shell_made(&self) {
        self.task.header.with_shared(|s| {
            if let Some(s) = s {
                s.shells.fetch_add(1, Ordering::AcqRel);
            }
        });
    }

    #[inline]
    fn shell_done(&self) {
        self.task.header.tell_shell_done();
    }
}

/// A poll of the backend's task, as [`state::drive`] reaches it.
struct Backend<'a, 'b, F: Future, D> {
    cell: &'a Cell<F, D>,
    cx: &'a mut TaskCx<'b>,
}

impl<F: Future, D: Driver> Poller for Backend<'_, '_, F, D> {
    #[inline(always)]
    unsafe fn poll(&mut self, aborted: bool) -> Poll<()> {
        // SAFETY: the caller holds `RUNNING` until after this returns.
        let run = unsafe { self.cell.run() };
        let (stage, ctx) = run.parts();
        let mut lent = Lent::new(&self.cell.task.header);
        poll_registered(
            stage,
            &mut lent.env(ctx),
            &self.cell.task,
            self.cx,
            aborted,
            false,
        )
    }

    #[inline(always)]
    fn register(&mut self) {
        self.cell.driver.register(self.cx.waker());
    }

    #[inline(always)]
    fn wake_self(&mut self) {
        self.cx.waker().wake_by_ref();
    }
}

impl<F, D> Cell<F, D>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    /// `JoinHandle::abort`: see [`Header::abort`]. A task on the runner's own queue registers no
    /// waker: it is queued instead (hence the `Arc`).
    pub(crate) fn abort(self: Arc<Self>) {
        let header = &self.task.header;
        if !D::OWN {
            if header.abort() {
                self.driver.wake();
            }
        } else if state::abort_own(&header.state) {
            Self::enqueue(&self);
        }
    }

    /// Queues the cell on its runner's own queue (once `state::wake_own` or `state::abort_own`
    /// said so): on this thread's queue inside the runner's run while its main future is being
    /// polled, on the shared one otherwise (`scope::push_own`); once the runner has closed, the
    /// queue takes nothing (`OwnQueue::clear`). The runner is reached without upgrading a
    /// `Weak` (a compare-and-swap on the runner's count and a decrement, per wake):
    /// the cell keeps it alive (see `Header::with_shared`), and `me`, borrowed until the push
    /// has returned, keeps the cell alive (the queue's own reference may be polled and dropped
    /// on the loop's thread before the push returns).
    #[inline]
    fn enqueue(me: &Arc<Self>) {
        me.task.header.with_shared(|shared| {
            if let Some(shared) = shared {
                crate::scope::push_own(shared, me.clone());
            }
        });
    }
}

/// A task on the runner's own queue is woken by queuing its cell there (see `task::own`).
impl<F, D> Wake for Cell<F, D>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if state::wake_own(&self.task.header.state) {
            Self::enqueue(self);
        }
    }
}

/// A waker that borrows an `Arc`'s reference instead of taking one of its own: no reference
/// counting per poll. Its clones take their own.
struct WakerRef<'a> {
    waker: ManuallyDrop<Waker>,
    _arc: PhantomData<&'a ()>,
}

impl<'a> WakerRef<'a> {
    #[inline]
    fn new<W: Wake + Send + Sync + 'static>(me: &'a Arc<W>) -> Self {
        // SAFETY: the `Arc` made from `me`'s pointer takes no reference of its own and is never
        // dropped (the waker holding it is in a `ManuallyDrop`, and a `Waker` is woken by value
        // only through a clone); it lives no longer than the borrow of `me`, which keeps the
        // count at least 1 meanwhile.
        let arc = unsafe { Arc::from_raw(Arc::as_ptr(me)) };
        WakerRef {
            waker: ManuallyDrop::new(Waker::from(arc)),
            _arc: PhantomData,
        }
    }
}

impl Deref for WakerRef<'_> {
    type Target = Waker;

    fn deref(&self) -> &Waker {
        &self.waker
    }
}

impl<F, D> OwnTask for Cell<F, D>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    /// A poll of a task on the runner's own queue, by the loop's thread or a pump: clears
    /// `SCHEDULED` and takes `RUNNING` in one step, polls the future with the cell itself as the
    /// waker (see [`poll_task`]; no waker is registered: `abort` queues the cell), lets go, and
    /// queues the cell again if it was woken meanwhile (see [`state::poll_own`]).
    fn poll_own(self: Arc<Self>, installed: bool) {
        let requeue = Self::take_own(&self, |stage, env, aborted| {
            let waker = WakerRef::new(&self);
            let mut cx = TaskCx::from_waker(&waker);
            let _ = poll_registered(stage, env, &self.task, &mut cx, aborted, installed);
        });
        if requeue {
            Self::enqueue(&self);
        }
    }

    /// The queue is closed: takes the cell off it as a poll would, and drops the future
    /// unpolled, with the runner and the task's context installed, if it is still there (the
    /// task flagged `ABORTED` while a pump polled it, as `close::abandon` does).
    #[cold]
    fn cancel_closed(self: Arc<Self>) {
        let _ = Self::take_own(&self, |stage, env, _| cancel(stage, env, &self.task, false));
    }
}

impl<F, D> Cell<F, D>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    /// The step of [`OwnTask::poll_own`] and [`OwnTask::cancel_closed`] (see
    /// [`state::poll_own`]): `f` gets the future's stage, the task's environment and whether
    /// it was aborted, with `RUNNING` held. True when the caller must queue the cell again.
    #[inline(always)]
    fn take_own(me: &Arc<Self>, f: impl FnOnce(Pin<&mut Stage<F>>, &mut EnvMut<'_>, bool)) -> bool {
        let header = &me.task.header;
        state::poll_own(&header.state, |aborted| {
            // SAFETY: `state::poll_own` calls this with `RUNNING` held, and lets go of it only
            // after this returns.
            let run = unsafe { me.run() };
            let (stage, ctx) = run.parts();
            f(stage, &mut Lent::new(header).env(ctx), aborted);
        })
    }
}

/// Polls a running stage. If the poll panics, the future is dropped during the unwind (with the
/// runner and context still installed), as tokio drops it: its destructors see
/// `thread::panicking()`, so a `MutexGuard` held across an `.await` poisons its mutex. A panic of
/// that destructor is caught and dropped: the poll's panic is the task's result.
pub(crate) fn poll_stage<F: Future>(
    stage: Pin<&mut Stage<F>>,
    cx: &mut TaskCx<'_>,
) -> Poll<F::Output> {
    pub(crate) struct DropOnUnwind<'a, F>(Pin<&'a mut Stage<F>>);

    impl<F> Drop for DropOnUnwind<'_, F> {
        fn drop(&mut self) {
            let stage = self.0.as_mut();
            let _ = catch_unwind(AssertUnwindSafe(move || {
                let mut stage = stage;
                stage.set(Stage::Done)
            }));
        }
    }

    let mut guard = DropOnUnwind(stage);
    let out = match guard.0.as_mut().project() {
        StageProj::Running { fut } => fut.poll(cx),
        StageProj::Done => unreachable!("polled only while running"),
    };
    std::mem::forget(guard);
    out
}

impl<F, D> TaskRef for Cell<F, D>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    fn info(&self) -> TaskInfo {
        self.task.header.info()
    }

    fn spawned_at(&self) -> Option<Instant> {
        self.task.header.spawned_at()
    }

    /// Close's abort, only where the loop cannot run (`close::abandon`), and only on a
    /// multi-thread loop: there a task on the runner's own queue is cancelled in place instead.
    fn abort(&self) {
        debug_assert!(
            !self.task.header.own,
            "cancel_now for a task on the own queue"
        );
        if self.task.header.abort() {
            self.driver.wake();
        }
    }

    /// Close's in-place cancel: see [`state::cancel_now`].
    fn cancel_now(&self, leave_shell: bool, in_scope: bool) {
        // `D::OWN` is `header.own`, known at compile time.
        state::cancel_now(&self.task.header.state, self, leave_shell, in_scope, D::OWN);
    }
}

#[cfg(test)]
mod tests {
    //! The backend's side of a `Send` task's cell under Miri, driven by hand: a drop before
    //! completion, and close's in-place cancel finding the future being polled.

    use std::future::{pending, poll_fn, Future};
    use std::panic::Location;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context as TaskCx, Poll, Waker};

    use super::{Cell, Meta};
    use crate::context::Context;
    use crate::event_loop::RawTask;
    use crate::shared::{Entry, Shared, TaskRef};
    use crate::testing::TestLoop;
    use crate::Runner;
    use atomic_waker::AtomicWaker;

    use crate::testing::Count;

    /// A registered cell around `fut`, with the wrapper the backend would run.
    fn cell<F>(shared: &Arc<Shared>, fut: F) -> (Arc<Cell<F, AtomicWaker>>, RawTask)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let cell = shared
            .register(true, |key, cancelled| {
                let meta = Meta {
                    name: None,
                    location: Location::caller(),
                };
                let cell: Arc<Cell<F, AtomicWaker>> =
                    Arc::new(Cell::new(key, meta, cancelled, fut, shared, Context::new()));
                // SAFETY: as in `spawn_on`: the wrapper made below completes the task before it
                // lets go of its count.
                (unsafe { Entry::borrowed(Arc::as_ptr(&cell)) }, cell)
            })
            .unwrap();
        let driver = RawTask::new(cell.clone());
        (cell, driver)
    }

    /// The `Shared` of the runner whose run this is.
    fn current_shared() -> Arc<Shared> {
        crate::scope::with_current(|s| s.unwrap().clone())
    }

    /// A future that never ends, and counts its drop in `drops`.
    fn pending_counted(drops: &Arc<AtomicUsize>) -> impl Future<Output = ()> + Send + 'static {
        let count = Count(drops.clone());
        async move {
            let _count = count;
            pending::<()>().await
        }
    }

    /// Runs the future `body` makes, given a drop counter for [`pending_counted`], in a run of
    /// a new runner: the runner (not closed) and the counter.
    fn run_counting<F: Future<Output = ()>>(
        body: impl FnOnce(Arc<AtomicUsize>) -> F,
    ) -> (Runner<TestLoop>, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut rt = Runner::<TestLoop>::new();
        rt.run(body(drops.clone())).unwrap();
        (rt, drops)
    }

    fn poll(driver: &mut RawTask) -> Poll<()> {
        Pin::new(driver).poll(&mut TaskCx::from_waker(Waker::noop()))
    }

    /// A detached task that ends on the backend while close is collecting tasks: close's
    /// in-place cancel finds it ended and leaves no shell (a shell of a task whose backend task
    /// has finished is never polled or dropped again, and close would wait for it forever).
    #[test]
    fn a_detached_task_that_ended_is_no_shell() {
        let mut rt = Runner::<TestLoop>::new();
        rt.run(async move {
            let shared = current_shared();
            let (cell, mut driver) = cell(&shared, async { 7u32 });
            // The join handle was dropped: the output is dropped by `complete`.
            cell.task.detach();
            // Close collects it (a count under the shard's lock), then it ends on the backend.
            let pending = shared.registry.begin_cancelling();
            assert_eq!(pending.len(), 1);
            assert!(poll(&mut driver).is_ready());
            drop(driver);
            for t in &pending {
                t.cancel_now(true, false);
            }
            drop(pending);
            let shells = shared.shells.load(Ordering::SeqCst);
            if shells != 0 {
                // Let close go (the backend will never see this shell), then fail.
                shared.shell_done();
            }
            assert_eq!(shells, 0, "no shell left");
            assert!(cell.task.header.is_complete());
        })
        .unwrap();
        let report = rt.close().unwrap();
        assert_eq!(report.finished, 1);
    }

    #[test]
    fn dropped_before_completion_drops_the_future_once() {
        let (_rt, drops) = run_counting(|d| async move {
            let shared = current_shared();
            let (cell, mut driver) = cell(&shared, pending_counted(&d));
            assert!(poll(&mut driver).is_pending());
            drop(driver);
            assert_eq!(d.load(Ordering::SeqCst), 1);
            assert!(cell.task.header.is_complete());
            let out = cell.task.take_output();
            assert!(out.unwrap().unwrap_err().is_cancelled());
        });
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn cancel_now_during_a_poll_flags_it_for_the_next_one() {
        let (_rt, drops) = run_counting(|d| async move {
            let shared = current_shared();
            let me: Arc<Mutex<Option<Arc<dyn TaskRef>>>> = Arc::default();
            let count = Count(d.clone());
            let slot = me.clone();
            let (cell, mut driver) = cell(&shared, async move {
                let _count = count;
                // Close's in-place cancel while this poll holds the future: it only flags it.
                poll_fn(|_| {
                    if let Some(me) = slot.lock().unwrap().take() {
                        me.cancel_now(true, false);
                    }
                    Poll::<()>::Pending
                })
                .await
            });
            *me.lock().unwrap() = Some(cell.clone());
            assert!(poll(&mut driver).is_pending());
            assert_eq!(d.load(Ordering::SeqCst), 0);
            assert!(poll(&mut driver).is_ready());
            assert_eq!(d.load(Ordering::SeqCst), 1);
            // Nothing left for close once the task has ended.
            cell.cancel_now(true, false);
            drop(driver);
            let out = cell.task.take_output();
            assert!(out.unwrap().unwrap_err().is_cancelled());
        });
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    /// A cell's registry entry holds no count (`registry::Entry::borrowed`): the backend drops
    /// its task on another thread (which ends it and lets go of the cell) while close collects
    /// and cancels the tasks. Close reaches the cell only through a count it took while the cell
    /// was registered (Miri checks the accesses), the future is dropped once, and the task is
    /// counted once.
    #[test]
    fn backend_drop_races_close_collecting() {
        for _ in 0..if cfg!(miri) { 4 } else { 500 } {
            let (mut rt, drops) = run_counting(|d| async move {
                let shared = current_shared();
                let (cell, mut driver) = cell(&shared, pending_counted(&d));
                assert!(poll(&mut driver).is_pending());
                // Close begins before the race: however the task ends, it is counted.
                shared.registry.begin_grace();
                let backend = std::thread::spawn(move || {
                    drop(driver);
                    drop(cell);
                });
                let pending = shared.registry.begin_cancelling();
                for t in &pending {
                    t.cancel_now(true, false);
                }
                drop(pending);
                backend.join().unwrap();
                assert_eq!(d.load(Ordering::SeqCst), 1);
            });
            let report = rt.close().unwrap();
            assert_eq!(report.cancelled, 1);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
    }

    /// A local task's registry entry holds no count either (`registry::Entry::borrowed`): its
    /// header leaves the registry when the task completes, by its last poll, an abort or close,
    /// and close reaches the pending ones through counts of its own (Miri checks the accesses).
    #[test]
    fn local_tasks_leave_the_registry_before_they_are_freed() {
        let (mut rt, drops) = run_counting(|d| async move {
            let done = crate::spawn_local(async { std::rc::Rc::new(7) });
            let aborted = crate::spawn_local(pending_counted(&d));
            for _ in 0..2 {
                drop(crate::spawn_local(pending_counted(&d)));
            }
            assert_eq!(*done.await.unwrap(), 7);
            aborted.abort();
            assert!(aborted.await.unwrap_err().is_cancelled());
            assert_eq!(d.load(Ordering::SeqCst), 1);
        });
        let report = rt.close().unwrap();
        assert_eq!(report.cancelled, 2);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    }

    /// On a loop that reaps its tasks at shutdown: the future is dropped in place, the
    /// backend's task is neither made a shell nor woken, and a later poll (a stale wake-up) or
    /// the backend's drop finds the task complete and only lets go of the cell.
    #[test]
    fn reaped_cancel_leaves_no_shell_and_wakes_nothing() {
        struct Wakes(AtomicUsize);
        impl std::task::Wake for Wakes {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let (_rt, drops) = run_counting(|d| async move {
            let shared = current_shared();
            for polled in [true, false] {
                let (cell, mut driver) = cell(&shared, pending_counted(&d));
                let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
                let waker = Waker::from(wakes.clone());
                let pending = Pin::new(&mut driver).poll(&mut TaskCx::from_waker(&waker));
                assert!(pending.is_pending());
                let before = d.load(Ordering::SeqCst);
                cell.cancel_now(false, false);
                assert_eq!(d.load(Ordering::SeqCst), before + 1, "dropped in place");
                assert_eq!(shared.shells.load(Ordering::SeqCst), 0, "no shell");
                assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "not woken");
                if polled {
                    assert!(poll(&mut driver).is_ready());
                }
                drop(driver);
                assert_eq!(
                    Arc::strong_count(&cell),
                    1,
                    "the backend let go of the cell"
                );
                assert_eq!(shared.shells.load(Ordering::SeqCst), 0);
                assert_eq!(d.load(Ordering::SeqCst), before + 1, "dropped once");
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn cancel_in_place_leaves_a_shell_counted_until_polled_or_dropped() {
        let (_rt, drops) = run_counting(|d| async move {
            let shared = current_shared();
            for polled in [true, false] {
                let (cell, mut driver) = cell(&shared, pending_counted(&d));
                assert!(poll(&mut driver).is_pending());
                let before = d.load(Ordering::SeqCst);
                cell.cancel_now(true, false);
                assert_eq!(d.load(Ordering::SeqCst), before + 1);
                assert_eq!(shared.shells.load(Ordering::SeqCst), 1);
                if polled {
                    assert!(poll(&mut driver).is_ready());
                    assert_eq!(shared.shells.load(Ordering::SeqCst), 0);
                }
                drop(driver);
                assert_eq!(shared.shells.load(Ordering::SeqCst), 0);
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}
