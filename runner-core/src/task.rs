//! Executor-neutral tasks: [`spawn`], [`spawn_local`], [`spawn_blocking`] and [`JoinHandle`].
//!
//! Every task spawned through the runner is wrapped once, here, whatever the backend: the
//! wrapper catches the task's panics, installs the runner and the task's [`Context`] around each
//! poll, drops the future when the task is aborted, times polls in debug mode, and registers the
//! task with its runner so that close can cancel it and account for it.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context as TaskCx, Poll, Waker};
use std::time::Instant;

use atomic_waker::AtomicWaker;
use pin_project_lite::pin_project;

use crate::context::{self, Context};
use crate::diagnostic::{Diagnostic, DiagnosticKind, TaskInfo, UnhandledPanic};
use crate::error::{panic_message, JoinError, RunError, SpawnError, TaskPanicked};
use crate::scope;
use crate::shared::{lock, BlockingInfo, Outcome, Shared, TaskRef};

const ABORTED: u8 = 1;
const COMPLETE: u8 = 2;
/// Close dropped the future in place; the backend's task is an empty shell that close waits to
/// see polled (or dropped) once, so that no shell is left queued when the loop shuts down.
const SHELL: u8 = 4;

pub(crate) struct Header {
    key: usize,
    /// A `spawn_local` task: its end is counted in `LocalState`.
    local: bool,
    state: AtomicU8,
    driver: AtomicWaker,
    pub(crate) info: TaskInfo,
    pub(crate) spawned_at: Option<Instant>,
    shared: Weak<Shared>,
}

impl Header {
    fn new(key: usize, meta: Meta, shared: &Arc<Shared>, cancelled: bool, local: bool) -> Self {
        Header {
            key,
            local,
            state: AtomicU8::new(if cancelled { ABORTED } else { 0 }),
            driver: AtomicWaker::new(),
            spawned_at: shared.config.debug.then(Instant::now),
            info: TaskInfo {
                name: meta.name,
                location: meta.location,
                main: false,
            },
            shared: Arc::downgrade(shared),
        }
    }

    pub(crate) fn abort(&self) {
        if self.state.fetch_or(ABORTED, Ordering::AcqRel) & (ABORTED | COMPLETE) == 0 {
            self.driver.wake();
        }
    }

    fn is_aborted(&self) -> bool {
        self.state.load(Ordering::Acquire) & ABORTED != 0
    }

    fn is_complete(&self) -> bool {
        self.state.load(Ordering::Acquire) & COMPLETE != 0
    }
}

impl TaskRef for Header {
    fn info(&self) -> &TaskInfo {
        &self.info
    }

    fn spawned_at(&self) -> Option<Instant> {
        self.spawned_at
    }

    fn abort(&self) {
        Header::abort(self);
    }
}

struct Slot<T> {
    output: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
    detached: bool,
    taken: bool,
    /// The panic in `output` was already reported (it happened during close): dropping the
    /// handle unread must not report it a second time.
    reported: bool,
}

/// A task's shared cell: its header (inline for `Send` tasks, in its own allocation for local
/// tasks, whose output need not be `Send`) and its output slot.
struct Task<T, H> {
    header: H,
    slot: Mutex<Slot<T>>,
}

impl<T, H: Borrow<Header>> Task<T, H> {
    fn new(header: H) -> Self {
        Task {
            header,
            slot: Mutex::new(Slot {
                output: None,
                waker: None,
                detached: false,
                taken: false,
                reported: false,
            }),
        }
    }

    fn header(&self) -> &Header {
        self.header.borrow()
    }

    /// Hands the output to the join handle, or reports it when nobody will read it.
    ///
    /// A panic is reported exactly once: here when the handle is already gone or close is under
    /// way, otherwise by the handle's `Drop` if it is dropped unread.
    fn complete(&self, result: Result<T, JoinError>, shared: Option<&Shared>) {
        let header = self.header();
        let outcome = match &result {
            Ok(_) => Outcome::Finished,
            Err(e) if e.is_panic() => Outcome::Panicked,
            Err(_) => Outcome::Cancelled,
        };
        // Counted first, at this one point, before anyone can see the output: a task joined
        // before close began has left the registry by then and is never counted by close.
        let closing = shared.is_some_and(|s| s.deregister(header.key, outcome));
        if header.local {
            if let Some(s) = shared {
                s.local.ended();
            }
        }
        let mut slot = lock(&self.slot);
        let waker = slot.waker.take();
        let mut unread = None;
        let mut during_close = None;
        if slot.detached {
            unread = Some(result);
        } else {
            if closing {
                if let Err(e) = &result {
                    if e.is_panic() {
                        // Close cannot know whether the holder will ever look: report the
                        // message now and leave the payload to the handle.
                        during_close = Some(e.message().to_owned());
                        slot.reported = true;
                    }
                }
            }
            slot.output = Some(result);
        }
        // Set under the slot lock, after the output is stored: `is_finished()` then means the
        // output is there to take.
        header.state.fetch_or(COMPLETE, Ordering::AcqRel);
        drop(slot);
        if let Some(w) = waker {
            w.wake();
        }
        if let (Some(message), Some(s)) = (during_close, shared) {
            s.report(&Diagnostic {
                kind: DiagnosticKind::PanicDuringShutdown,
                task: header.info.clone(),
                payload: None,
                message: Some(message),
                duration: None,
            });
        }
        if let Some(unread) = unread {
            drop_unread(unread, shared, &header.info, closing);
        }
    }
}

/// Drops an output nobody will read: a panic is reported; a value is dropped under
/// `catch_unwind`, and a panic of its destructor reported in its turn (it must reach neither the
/// loop nor whoever dropped the handle, and nothing is lost silently).
fn drop_unread<T>(
    unread: Result<T, JoinError>,
    shared: Option<&Shared>,
    info: &TaskInfo,
    closing: bool,
) {
    match unread {
        Err(e) if e.is_panic() => report_unobserved(shared, info, e, closing),
        Err(_) => {}
        Ok(v) => {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| drop(v))) {
                report_unobserved(shared, info, JoinError::panic(payload), closing);
            }
        }
    }
}

/// Reports a panic nobody will read. Without a runner (the handle outlived it), the default
/// handler still prints it: nothing is lost silently.
fn report_unobserved(shared: Option<&Shared>, info: &TaskInfo, e: JoinError, closing: bool) {
    let payload = e.into_panic();
    let message = panic_message(payload.as_ref()).to_owned();
    let d = Diagnostic {
        kind: if closing {
            DiagnosticKind::PanicDuringShutdown
        } else {
            DiagnosticKind::UnobservedPanic
        },
        task: info.clone(),
        payload: Some(payload),
        message: None,
        duration: None,
    };
    let Some(shared) = shared else {
        crate::diagnostic::default_handler(&d);
        return;
    };
    shared.report(&d);
    if !closing && shared.config.unhandled == UnhandledPanic::ShutdownRunner {
        shared.abort_main(RunError::TaskPanicked(TaskPanicked {
            task: info.to_string(),
            message,
        }));
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Running { #[pin] fut: F },
        Done,
    }
}

/// What a running task needs besides its future: its runner (lent to the thread-local scope
/// around each poll) and its context.
struct Env {
    scope: Option<Arc<Shared>>,
    ctx: Context,
}

/// Drops the future with the task's runner and context installed (its destructors may use
/// them). A destructor that panics makes the task's result that panic, as tokio does: the
/// cleanup of a cancelled task failed, and someone must hear of it.
fn drop_future<F>(stage: Pin<&mut Stage<F>>, env: &mut Env) -> Result<(), JoinError> {
    let _scope = scope::Enter::new(&mut env.scope);
    let _ctx = context::Enter::new(&mut env.ctx);
    let mut stage = stage;
    catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done))).map_err(JoinError::panic)
}

/// Cancels a task that is still running: drops its future (see [`drop_future`]) and completes
/// it as cancelled. Nothing to do for a task that has ended.
fn cancel<F: Future, H: Borrow<Header>>(
    mut stage: Pin<&mut Stage<F>>,
    env: &mut Env,
    task: &Task<F::Output, H>,
) {
    if let StageProj::Running { .. } = stage.as_mut().project() {
        let shared = env.scope.clone();
        let result = drop_future(stage, env).and(Err(JoinError::cancelled()));
        task.complete(result, shared.as_deref());
    }
}

/// The harness every task's poll goes through, whatever the backend and whoever holds the
/// future: catches the task's panics, installs the runner and the task's context, drops the
/// future when the task was aborted, times polls in debug mode, and completes the task.
fn poll_task<F: Future, H: Borrow<Header>>(
    mut stage: Pin<&mut Stage<F>>,
    env: &mut Env,
    task: &Task<F::Output, H>,
    cx: &mut TaskCx<'_>,
) -> Poll<()> {
    let header = task.header();
    if let StageProj::Done = stage.as_mut().project() {
        return Poll::Ready(());
    }
    if !header.is_aborted() {
        header.driver.register(cx.waker());
    }
    // Checked again after registering: an abort in between has woken the new waker or is
    // seen here.
    if header.is_aborted() {
        cancel(stage, env, task);
        return Poll::Ready(());
    }
    let debug = env.scope.as_ref().filter(|s| s.config.debug).cloned();
    let result = {
        let _scope = scope::Enter::new(&mut env.scope);
        let _ctx = context::Enter::new(&mut env.ctx);
        let start = debug.as_ref().map(|_| crate::debug::PollStart::now());
        let r = catch_unwind(AssertUnwindSafe(|| poll_stage(stage.as_mut(), cx)));
        if let (Some(s), Some(start)) = (&debug, start) {
            crate::debug::check_poll(s, &header.info, start);
        }
        r
    };
    let result = match result {
        Ok(Poll::Pending) => return Poll::Pending,
        Ok(Poll::Ready(v)) => Ok(v),
        Err(payload) => Err(JoinError::panic(payload)),
    };
    let shared = env.scope.clone();
    let dropped = drop_future(stage, env);
    // A panicking destructor overrides a value (dropped with it), not an earlier panic.
    let result = match (result, dropped) {
        (Ok(_), Err(e)) => Err(e),
        (result, _) => result,
    };
    task.complete(result, shared.as_deref());
    Poll::Ready(())
}

pin_project! {
    /// The wrapper a local task runs in: its future inline, polled by the runner's own local
    /// executor (which owns it) on the runner's thread.
    struct LocalDriver<F: Future> {
        #[pin]
        stage: Stage<F>,
        task: Arc<Task<F::Output, Arc<Header>>>,
        env: Env,
    }

    impl<F: Future> PinnedDrop for LocalDriver<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before it completed (its runner let go of it): the future is dropped here,
            // on its thread, and the task ends cancelled.
            let this = this.project();
            cancel(this.stage, this.env, this.task);
        }
    }
}

impl<F: Future> Future for LocalDriver<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        let this = self.project();
        poll_task(this.stage, this.env, this.task, cx)
    }
}

/// A `Send` task's cell, shared by the wrapper the backend runs, the [`JoinHandle`] and the
/// registry: the task's header and output slot, and its future with what polls it. The future
/// lives here rather than in the backend's task so that close can drop it in place, on its own
/// thread, without a wake-and-poll round through the backend.
struct Cell<F: Future> {
    task: Task<F::Output, Header>,
    /// Locked by whoever polls or drops the future: the backend's wrapper, or close. Never
    /// contended but by close, which only tries it.
    run: Mutex<Run<F>>,
}

struct Run<F> {
    stage: Stage<F>,
    env: Env,
}

impl<F: Future> Run<F> {
    fn parts(&mut self) -> (Pin<&mut Stage<F>>, &mut Env) {
        // SAFETY: a `Run` lives only inside a `Cell` in an `Arc`, which is never moved out of its
        // allocation, and its stage is only ever replaced through `Pin::set` or dropped in
        // place with the cell: the future is never moved once polled.
        let stage = unsafe { Pin::new_unchecked(&mut self.stage) };
        (stage, &mut self.env)
    }
}

/// The output side of a `Send` task's cell, whatever its future: what a [`JoinHandle`] holds.
trait Output<T>: Send + Sync {
    fn task(&self) -> &Task<T, Header>;
}

impl<F> Output<F::Output> for Cell<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn task(&self) -> &Task<F::Output, Header> {
        &self.task
    }
}

impl<F> TaskRef for Cell<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn info(&self) -> &TaskInfo {
        &self.task.header.info
    }

    fn spawned_at(&self) -> Option<Instant> {
        self.task.header.spawned_at
    }

    fn abort(&self) {
        self.task.header.abort();
    }

    fn cancel_now(&self) {
        let header = &self.task.header;
        header.state.fetch_or(ABORTED, Ordering::AcqRel);
        let mut run = match self.run.try_lock() {
            Ok(run) => run,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                // Being polled on another thread right now: that poll's next turn sees the
                // flag; make sure there is one.
                header.driver.wake();
                return;
            }
        };
        let (mut stage, env) = run.parts();
        if let StageProj::Done = stage.as_mut().project() {
            return;
        }
        // Marked while the lock is held, so that no poll of the backend's task can miss it:
        // once the future is gone the task is an empty shell, which close waits to see polled
        // or dropped (see `SHELL`).
        if let Some(s) = &env.scope {
            s.shells.fetch_add(1, Ordering::AcqRel);
            header.state.fetch_or(SHELL, Ordering::AcqRel);
        }
        cancel(stage, env, &self.task);
        drop(run);
        header.driver.wake();
    }
}

impl Header {
    /// The backend is done with a shell (see `SHELL`): tell close.
    fn shell_done(&self) {
        if self.state.load(Ordering::Acquire) & SHELL != 0
            && self.state.fetch_and(!SHELL, Ordering::AcqRel) & SHELL != 0
        {
            if let Some(s) = self.shared.upgrade() {
                s.shell_done();
            }
        }
    }
}

/// The wrapper a `Send` task runs in on the backend: a reference to its [`Cell`].
struct Driver<F: Future> {
    cell: Arc<Cell<F>>,
}

impl<F: Future> Future for Driver<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        let cell = &*self.cell;
        let mut run = lock(&cell.run);
        let (stage, env) = run.parts();
        let out = poll_task(stage, env, &cell.task, cx);
        drop(run);
        cell.task.header.shell_done();
        out
    }
}

impl<F: Future> Drop for Driver<F> {
    fn drop(&mut self) {
        // The backend dropped the task before it completed (a loop shutting down): the future
        // is dropped here, on the loop's thread, and the task ends cancelled.
        let cell = &*self.cell;
        let mut run = lock(&cell.run);
        let (stage, env) = run.parts();
        cancel(stage, env, &cell.task);
        drop(run);
        cell.task.header.shell_done();
    }
}

/// Polls a running stage. If the poll panics, the future is dropped during the unwind (with the
/// runner and context still installed), as tokio drops it: its destructors see
/// `thread::panicking()`, so a `MutexGuard` held across an `.await` poisons its mutex. A panic of
/// that destructor is caught and dropped: the poll's panic is the task's result.
fn poll_stage<F: Future>(stage: Pin<&mut Stage<F>>, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
    struct DropOnUnwind<'a, F>(Pin<&'a mut Stage<F>>);

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

/// An owned permission to await a task's output.
///
/// **Dropping a `JoinHandle` detaches the task**: it keeps running, and if it then panics, the
/// panic goes to the runner's exception handler (nothing is lost silently). This is the same
/// rule on every backend. [`abort`](Self::abort) cancels the task: its future is dropped on its
/// loop's thread, and awaiting the handle then gives a [`JoinError`] that
/// [`is_cancelled`](JoinError::is_cancelled).
///
/// A `JoinHandle` can be awaited from any thread and any executor (it is `Send` when `T` is), for
/// example with `futures_lite::future::block_on` on a plain thread: Python's
/// `run_coroutine_threadsafe`.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # fn main() { let mut rt = runner::Runner::<runner::testing::TestLoop>::new();
/// rt.run(async {
///     let handle = runner::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// })
/// .unwrap();
/// # }
/// ```
///
/// # Panics
///
/// Polling the handle again after it returned `Ready` panics.
///
/// # Cancel safety
///
/// Dropping the `await` of a handle loses nothing: the output stays in the task until the handle
/// is polled again or dropped.
pub struct JoinHandle<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Shared(Arc<dyn Output<T>>),
    Local(Arc<Task<T, Arc<Header>>>),
    Blocking(Arc<Task<T, Header>>),
}

impl<T> JoinHandle<T> {
    fn header(&self) -> &Header {
        match &self.inner {
            Inner::Shared(c) => c.task().header(),
            Inner::Blocking(t) => t.header(),
            Inner::Local(t) => t.header(),
        }
    }

    fn slot(&self) -> &Mutex<Slot<T>> {
        match &self.inner {
            Inner::Shared(c) => &c.task().slot,
            Inner::Blocking(t) => &t.slot,
            Inner::Local(t) => &t.slot,
        }
    }

    /// Cancels the task. Its future is dropped on its loop's thread the next time the loop runs,
    /// and the handle then yields a cancelled [`JoinError`] (or, if the future's destructor
    /// panicked, that panic, as with tokio). Does nothing to a task that has already finished,
    /// nor to a blocking job that has started.
    pub fn abort(&self) {
        self.header().abort();
    }

    /// True once the task has finished, by any path: its output (or error) is ready.
    pub fn is_finished(&self) -> bool {
        self.header().is_complete()
    }

    /// The name given with [`Builder::name`], if any.
    pub fn name(&self) -> Option<&str> {
        self.header().info.name()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let mut slot = lock(self.slot());
        if let Some(out) = slot.output.take() {
            slot.taken = true;
            return Poll::Ready(out);
        }
        assert!(
            !slot.taken,
            "`JoinHandle` polled after it completed: await it once"
        );
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let mut slot = lock(self.slot());
        slot.detached = true;
        slot.waker = None;
        let output = slot.output.take();
        let reported = slot.reported;
        drop(slot);
        let unread = match output {
            Some(Err(e)) if e.is_panic() && reported => None,
            other => other,
        };
        if let Some(unread) = unread {
            // Not reported yet, so any panic happened before close began: an unobserved panic,
            // even if the handle is only dropped now. (Under `ShutdownRunner`, a runner that is
            // closing has no run left to end; the abort it records is never read.)
            let header = self.header();
            let shared = header.shared.upgrade();
            drop_unread(unread, shared.as_deref(), &header.info, false);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.header().info)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Name and spawn location of a task.
pub(crate) struct Meta {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) location: &'static Location<'static>,
}

/// Spawns a `Send` task onto `shared`'s loop, in `ctx`; `from_loop` as in `Shared::register`.
pub(crate) fn spawn_on<F>(
    shared: &Arc<Shared>,
    from_loop: bool,
    fut: F,
    ctx: Context,
    meta: Meta,
) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let cell = shared.register(from_loop, |key, cancelled| {
        let cell = Arc::new(Cell {
            task: Task::new(Header::new(key, meta, shared, cancelled, false)),
            run: Mutex::new(Run {
                stage: Stage::Running { fut },
                env: Env {
                    scope: Some(shared.clone()),
                    ctx,
                },
            }),
        });
        (cell.clone() as Arc<dyn TaskRef>, cell)
    })?;
    shared
        .spawner
        .spawn(Box::pin(Driver { cell: cell.clone() }));
    Ok(JoinHandle {
        inner: Inner::Shared(cell),
    })
}

fn spawn_local_on<F>(
    shared: &Arc<Shared>,
    fut: F,
    meta: Meta,
) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let local = scope::local_spawner(shared).ok_or(SpawnError::LocalUnsupported)?;
    if !shared.local.claim_home() {
        return Err(SpawnError::LocalUnsupported);
    }
    let header = shared.register(scope::loop_running(), |key, cancelled| {
        let header = Arc::new(Header::new(key, meta, shared, cancelled, true));
        (header.clone() as Arc<dyn TaskRef>, header)
    })?;
    // Counted before the task can run, and ended in `Task::complete`.
    shared.local.started();
    let task = Arc::new(Task::new(header));
    let driver = LocalDriver {
        stage: Stage::Running { fut },
        task: task.clone(),
        env: Env {
            scope: Some(shared.clone()),
            ctx: Context::copy_current(),
        },
    };
    local.spawn(Box::pin(driver));
    Ok(JoinHandle {
        inner: Inner::Local(task),
    })
}

fn spawn_blocking_on<F, R>(shared: &Arc<Shared>, f: F, meta: Meta) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let header = Header::new(usize::MAX, meta, shared, false, false);
    let key = lock(&shared.blocking).insert(BlockingInfo {
        info: header.info.clone(),
        since: Instant::now(),
    });
    let task = Arc::new(Task::new(header));
    let job = BlockingJobGuard {
        task: Some(task.clone()),
        shared: Arc::downgrade(shared),
        key,
    };
    let mut ctx = Context::copy_current();
    shared.spawner.spawn_blocking(Box::new(move || {
        // Moves the whole guard in, so its `Drop` runs when the closure ends or is dropped.
        let mut job = job;
        let Some(task) = job.task.take() else { return };
        let mut scope = job.shared.upgrade();
        let result = if task.header.is_aborted() {
            Err(JoinError::cancelled())
        } else {
            let _scope = scope::Enter::with_running(&mut scope, false);
            catch_unwind(AssertUnwindSafe(|| ctx.run(f))).map_err(JoinError::panic)
        };
        task.complete(result, scope.as_deref());
    }));
    JoinHandle {
        inner: Inner::Blocking(task),
    }
}

/// Owned by a blocking job's closure. Blocking jobs are not in the task registry (`usize::MAX`
/// matches no key there) but in their own set, which close waits on with a timeout; the guard
/// takes the job out of that set however the closure ends: run, panicked, or dropped unrun by a
/// pool that is shutting down, in which case the handle gets a cancelled error instead of
/// waiting forever.
struct BlockingJobGuard<R: Send + 'static> {
    task: Option<Arc<Task<R, Header>>>,
    shared: Weak<Shared>,
    key: usize,
}

impl<R: Send + 'static> Drop for BlockingJobGuard<R> {
    fn drop(&mut self) {
        let shared = self.shared.upgrade();
        if let Some(task) = self.task.take() {
            task.complete(Err(JoinError::cancelled()), shared.as_deref());
        }
        if let Some(s) = shared {
            let mut set = lock(&s.blocking);
            set.try_remove(self.key);
            drop(set);
            s.blocking_done.notify_all();
        }
    }
}

/// Configures a task before spawning it: today its name, shown in diagnostics.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # fn main() { let mut rt = runner::Runner::<runner::testing::TestLoop>::new();
/// rt.run(async {
///     let h = runner::task::Builder::new().name("fetch").spawn(async { 1 });
///     assert_eq!(h.name(), Some("fetch"));
///     assert_eq!(h.await.unwrap(), 1);
/// })
/// .unwrap();
/// # }
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<Arc<str>>,
}

impl Builder {
    /// A builder for an unnamed task.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// [`spawn`] with this configuration.
    ///
    /// # Panics
    ///
    /// Outside any run; see [`try_spawn`](Self::try_spawn).
    #[track_caller]
    pub fn spawn<F>(self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        unwrap_spawn(self.try_spawn(fut))
    }

    /// [`try_spawn`] with this configuration.
    ///
    /// # Errors
    ///
    /// As [`try_spawn`].
    #[track_caller]
    pub fn try_spawn<F>(self, fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let meta = self.meta(Location::caller());
        scope::with_current(|s| {
            let s = s.ok_or(SpawnError::NoRunner)?;
            spawn_on(s, scope::loop_running(), fut, Context::copy_current(), meta)
        })
    }

    /// [`spawn_local`] with this configuration.
    ///
    /// # Panics
    ///
    /// As [`spawn_local`].
    #[track_caller]
    pub fn spawn_local<F>(self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        unwrap_spawn(self.try_spawn_local(fut))
    }

    /// [`try_spawn_local`] with this configuration.
    ///
    /// # Errors
    ///
    /// As [`try_spawn_local`].
    #[track_caller]
    pub fn try_spawn_local<F>(self, fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let meta = self.meta(Location::caller());
        scope::with_current(|s| spawn_local_on(s.ok_or(SpawnError::NoRunner)?, fut, meta))
    }

    /// [`spawn_blocking`] with this configuration.
    ///
    /// # Panics
    ///
    /// Outside any run.
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let meta = self.meta(Location::caller());
        unwrap_spawn(scope::with_current(|s| {
            Ok(spawn_blocking_on(s.ok_or(SpawnError::NoRunner)?, f, meta))
        }))
    }

    fn meta(self, location: &'static Location<'static>) -> Meta {
        Meta {
            name: self.name,
            location,
        }
    }
}

#[track_caller]
fn unwrap_spawn<T>(r: Result<T, SpawnError>) -> T {
    match r {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

/// Spawns a task onto the loop of the runner that is running it, whatever the backend.
///
/// Works inside any `run`, inside tasks (on any worker thread), and inside blocking jobs spawned
/// through the runner. The task gets a copy of the spawner's [`Context`]. Dropping the returned
/// handle detaches the task; see [`JoinHandle`].
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # fn main() { let mut rt = runner::Runner::<runner::testing::TestLoop>::new();
/// let sum = rt
///     .run(async {
///         let handles: Vec<_> = (0..10u64).map(|i| runner::spawn(async move { i })).collect();
///         let mut sum = 0;
///         for h in handles {
///             sum += h.await.unwrap();
///         }
///         sum
///     })
///     .unwrap();
/// assert_eq!(sum, 45);
/// # }
/// ```
///
/// # Panics
///
/// Outside any run, or once the runner is closed: the message names `Runner::run`. See
/// [`try_spawn`] for the non-panicking twin.
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new().spawn(fut)
}

/// [`spawn`] that returns an error instead of panicking.
///
/// # Errors
///
/// [`SpawnError::NoRunner`] outside any run; [`SpawnError::Closed`] once the runner is closed,
/// or, from a thread that is not running the loop (a blocking job), once its close has started
/// cancelling tasks.
#[track_caller]
pub fn try_spawn<F>(fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new().try_spawn(fut)
}

/// Spawns a `!Send` task onto the current runner's loop, on the runner's own thread.
///
/// Works on every loop: the runner runs local tasks itself (or hands them to the loop's native
/// local spawner, as glommio's), polling them on the runner's thread while a `run` (or close) is
/// under way, like the main future. So they progress during runs only, on multi-thread loops too,
/// and a runner with local tasks must then run and close on that thread
/// ([`RunError::WrongThread`] otherwise).
///
/// # Panics
///
/// Outside any run, or from a task running on a worker thread of a multi-thread loop (which is
/// not the runner's thread); see [`try_spawn_local`].
#[track_caller]
pub fn spawn_local<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().spawn_local(fut)
}

/// [`spawn_local`] that returns an error instead of panicking.
///
/// # Errors
///
/// [`SpawnError::NoRunner`], [`SpawnError::Closed`], or [`SpawnError::LocalUnsupported`].
#[track_caller]
pub fn try_spawn_local<F>(fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().try_spawn_local(fut)
}

/// Runs a blocking closure on the loop's blocking pool (tokio's, `blocking`'s for smol,
/// glommio's), in a copy of the caller's [`Context`].
///
/// A job cannot be interrupted once started: close gives running jobs
/// `blocking_shutdown_timeout`, then reports and leaves behind the ones still running.
///
/// # Panics
///
/// Outside any run.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Builder::new().spawn_blocking(f)
}

#[cfg(test)]
mod tests {
    //! The task cell under Miri: poll, complete, abort, and close's in-place cancel.

    use std::future::pending;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::testing::TestLoop;
    use crate::Runner;

    struct Count(Arc<AtomicUsize>);

    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn cell_polls_completes_aborts_and_cancels_in_place() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut rt = Runner::<TestLoop>::new();
        let d = drops.clone();
        let (value, aborted) = rt
            .run(async move {
                let count = Count(d.clone());
                let h = super::spawn(async move {
                    let _count = count;
                    crate::yield_now().await;
                    String::from("done")
                });
                let count = Count(d.clone());
                let a = super::spawn(async move {
                    let _count = count;
                    pending::<()>().await
                });
                crate::yield_now().await;
                a.abort();
                for _ in 0..3 {
                    let count = Count(d.clone());
                    super::spawn(async move {
                        let _count = count;
                        pending::<()>().await
                    });
                }
                (h.await.unwrap(), a.await.unwrap_err().is_cancelled())
            })
            .unwrap();
        assert_eq!(value, "done");
        assert!(aborted);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        let report = rt.close().unwrap();
        assert_eq!(report.cancelled, 3);
        assert_eq!(drops.load(Ordering::SeqCst), 5);
    }
}
