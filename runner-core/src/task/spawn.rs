//! The spawn paths: a `Send` task into a cell on the loop, a local task onto the runner's thread.

use std::future::Future;
use std::sync::Arc;

use atomic_waker::AtomicWaker;

use crate::context::Context;
use crate::error::SpawnError;
use crate::event_loop::RawTask;
use crate::scope;
use crate::shared::{Entry, Shared};
use crate::task::own::Here;
use crate::task::pump::Pumps;

use super::cell::*;
use super::harness::*;
use super::join::*;

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
    spawn_from(shared, from_loop, None, fut, ctx, meta)
}

/// [`spawn_on`], with `here` the thread's own queue when this thread is inside `shared`'s run
/// or close (`scope::Origin::here`): on a current-thread loop the task is then registered on the
/// registry's loop side, without a lock (`Registry::register_here`), and queued without a second
/// thread-local access.
#[inline]
pub(crate) fn spawn_from<F>(
    shared: &Arc<Shared>,
    from_loop: bool,
    here: Option<&Here>,
    fut: F,
    ctx: Context,
    meta: Meta,
) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if !shared.multi_thread {
        return spawn_own(shared, from_loop, here, fut, ctx, meta);
    }
    if let Some(pumps) = &shared.pumps {
        return spawn_pumped(shared, pumps, from_loop, fut, ctx, meta);
    }
    let cell: Arc<Cell<F, AtomicWaker>> =
        register_made(shared, from_loop, fut, ctx, meta, |cell| {
            // SAFETY: the cell leaves the registry in `Task::complete`, before its last count
            // can go: the backend's task (made below, with nothing in between that can fail)
            // holds a count until it is dropped, and its drop completes the task first
            // (`Cell::release`; or close holds `RUNNING` and a count of its own, and completes
            // it).
            unsafe { Entry::borrowed(Arc::as_ptr(cell)) }
        })?;
    // The backend's task is the cell itself, type-erased: no allocation beyond the cell.
    let task = RawTask::new(cell.clone());
    if let Some(task) = scope::defer(shared, task) {
        shared.spawner.spawn_task(task);
    }
    Ok(JoinHandle { inner: cell })
}

/// [`spawn_on`] on a multi-thread loop: the cell goes onto the runner's own queue there, for its
/// pumps (see `task::pump`), not to the backend.
#[inline]
fn spawn_pumped<F>(
    shared: &Arc<Shared>,
    pumps: &Arc<Pumps>,
    from_loop: bool,
    fut: F,
    ctx: Context,
    meta: Meta,
) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // Born `SCHEDULED`: queued below, once.
    let cell: Arc<Cell<F, OwnQueued>> = register_made(shared, from_loop, fut, ctx, meta, |cell| {
        // Owned: a pending task that no waker and no handle hold is kept for close to cancel.
        // SAFETY: from `into_raw`: the entry takes that count.
        unsafe { Entry::owned(Arc::into_raw(cell.clone())) }
    })?;
    pumps.push(cell.clone());
    Ok(JoinHandle { inner: cell })
}

/// A `Send` task's cell on a multi-thread loop, made and then registered (`entry` makes its
/// registry entry): the allocation and the runner's count are not taken under the shard's lock,
/// which the tasks ending on the loop's workers take too.
#[inline(always)]
fn register_made<F, D>(
    shared: &Arc<Shared>,
    from_loop: bool,
    fut: F,
    ctx: Context,
    meta: Meta,
    entry: impl FnOnce(&Arc<Cell<F, D>>) -> Entry,
) -> Result<Arc<Cell<F, D>>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    let cell = Arc::new(Cell::new(usize::MAX, meta, false, fut, shared, ctx));
    shared.register(from_loop, move |key, cancelled| {
        cell.task.header.registered(key, cancelled);
        (entry(&cell), cell)
    })
}

/// [`spawn_on`] on a current-thread loop: the cell goes onto the runner's own queue (see
/// `task::own`), not to the backend.
#[inline]
fn spawn_own<F>(
    shared: &Arc<Shared>,
    from_loop: bool,
    here: Option<&Here>,
    fut: F,
    ctx: Context,
    meta: Meta,
) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let make = |key, cancelled| {
        // Born `SCHEDULED`: queued below, once, for its first poll.
        let cell: Cell<F, OwnQueued> = Cell::new(key, meta, cancelled, fut, shared, ctx);
        let cell = Arc::new(cell);
        // Owned: a pending task that no waker and no handle hold is kept for close to cancel.
        // SAFETY: from `into_raw`: the entry takes that count.
        (unsafe { Entry::owned(Arc::into_raw(cell.clone())) }, cell)
    };
    let cell = if let Some(here) = here {
        // SAFETY: `here`: this thread is inside `shared`'s run or close (the scope's owner), and
        // the loop is current-thread. A cell on the runner's own queue ends only inside its run
        // or close (polled by the drive of the own queue, or cancelled in place by close) or in
        // `close::abandon`, which cancels what the registry gives it.
        let cell = unsafe { shared.registry.register_here(make)? };
        scope::push_own_here(shared, here, cell.clone());
        cell
    } else {
        let cell = shared.register(from_loop, make)?;
        scope::push_own(shared, cell.clone());
        cell
    };
    Ok(JoinHandle { inner: cell })
}

pub(crate) fn spawn_local_on<F>(
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
    // Before the task is registered: nothing between its registration and its driver may fail.
    let ctx = Context::copy_current();
    let header = shared.register(scope::loop_running(), |key, cancelled| {
        let header = Arc::new(LocalHeader {
            header: Header::new(key, meta, shared, cancelled, true),
            driver: AtomicWaker::new(),
        });
        // SAFETY: the header leaves the registry in `Task::complete`, before its last count can
        // go: the task's cell holds it, and the driver made below (with nothing in between that
        // can fail) holds the cell until it completes the task, by its last poll or its drop.
        (unsafe { Entry::borrowed(Arc::as_ptr(&header)) }, header)
    })?;
    // Counted before the task can run, and ended in `Task::complete`.
    shared.local.started();
    let task = Arc::new(Task::new(header));
    let driver = LocalDriver {
        stage: Stage::Running { fut },
        task: task.clone(),
        env: Env {
            scope: Some(shared.clone()),
            ctx,
        },
    };
    local.spawn(Box::pin(driver));
    Ok(JoinHandle { inner: task })
}
