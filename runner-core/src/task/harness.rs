//! The harness every task's poll goes through, and the wrappers the backends run.

use std::borrow::Borrow;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;

use crate::context;
use crate::diagnostic::TaskInfo;
use crate::error::JoinError;
use crate::lock::lock;
use crate::scope;
use crate::shared::TaskRef;

use super::cell::*;

/// Drops the future with the task's runner and context installed (its destructors may use
/// them). A destructor that panics makes the task's result that panic, as tokio does: the
/// cleanup of a cancelled task failed, and someone must hear of it.
pub(crate) fn drop_future<F>(stage: Pin<&mut Stage<F>>, env: &mut Env) -> Result<(), JoinError> {
    let _scope = scope::Enter::new(&mut env.scope);
    let _ctx = context::Enter::new(&mut env.ctx);
    let mut stage = stage;
    catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done))).map_err(JoinError::panic)
}

/// Cancels a task that is still running: drops its future (see [`drop_future`]) and completes
/// it as cancelled. Nothing to do for a task that has ended.
pub(crate) fn cancel<F: Future, H: Borrow<Header>>(
    mut stage: Pin<&mut Stage<F>>,
    env: &mut Env,
    task: &Task<F::Output, H>,
) {
    if let StageProj::Running { .. } = stage.as_mut().project() {
        let result = drop_future(stage, env).and(Err(JoinError::cancelled()));
        task.complete(result, env.scope.as_deref());
    }
}

/// The harness every task's poll goes through, whatever the backend and whoever holds the
/// future: catches the task's panics, installs the runner and the task's context, drops the
/// future when the task was aborted, times polls in debug mode, and completes the task.
pub(crate) fn poll_task<F: Future, H: Borrow<Header>>(
    mut stage: Pin<&mut Stage<F>>,
    env: &mut Env,
    task: &Task<F::Output, H>,
    cx: &mut TaskCx<'_>,
) -> Poll<()> {
    let header = task.header();
    if let StageProj::Done = stage.as_mut().project() {
        return Poll::Ready(());
    }
    header.driver.register(cx.waker());
    // Checked after registering: an abort before this is seen here, one after it wakes the new
    // waker.
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
        pub(crate) task: Arc<Task<F::Output, Arc<Header>>>,
        pub(crate) env: Env,
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

/// The wrapper a `Send` task runs in on the backend: a reference to its [`Cell`].
pub(crate) struct Driver<F: Future> {
    pub(crate) cell: Arc<Cell<F>>,
}

impl<F: Future> Future for Driver<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        self.cell.drive(cx)
    }
}

impl<F: Future> Drop for Driver<F> {
    fn drop(&mut self) {
        self.cell.release();
    }
}

impl<F: Future> Cell<F> {
    /// A poll of the backend's task: polls the future under the `run` lock (see
    /// [`poll_task`]), then tells close if the task was a shell.
    #[inline]
    pub(crate) fn drive(&self, cx: &mut TaskCx<'_>) -> Poll<()> {
        let mut run = lock(&self.run);
        let (stage, env) = run.parts();
        let out = poll_task(stage, env, &self.task, cx);
        drop(run);
        self.task.header.shell_done();
        out
    }

    /// The backend dropped its task. Before it completed (a loop shutting down), the future is
    /// dropped here, on the loop's thread, and the task ends cancelled. Once completed, the
    /// future is gone (`COMPLETE` is set only after it was dropped) and the lock is not taken.
    #[inline]
    pub(crate) fn release(&self) {
        if !self.task.header.is_complete() {
            let mut run = lock(&self.run);
            let (stage, env) = run.parts();
            cancel(stage, env, &self.task);
        }
        self.task.header.shell_done();
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
