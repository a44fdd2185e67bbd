//! The thread-local scope: which runner is current on this thread, how many loops are running
//! on it, and, inside a runner's run or close, where its local tasks go. One thread-local for
//! all of it, so entering and leaving costs one access each.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use crate::event_loop::{LocalSpawner, RawTask};
use crate::local::{LocalExecutor, LocalTarget};
use crate::shared::Shared;
use crate::task::own::{self, Here, OwnTask};

/// The runner running on this thread, and how many loops are running on it (runs, closes, and
/// task polls nest). One thread-local for both, so entering and leaving costs one access each.
struct Ambient {
    scope: Cell<Option<Arc<Shared>>>,
    depth: Cell<usize>,
    /// The runner whose `run` (or close) this thread is inside, as its address; 0 when none.
    /// Only that runner's main future drives local tasks here, and only its own-queue tasks go
    /// to `here`.
    owner: Cell<usize>,
    /// The thread's half of `owner`'s own run queue (see `task::own`): emptied into the
    /// runner's shared queue whenever `owner` is cleared.
    here: Here,
    /// The loop's native local spawner, when it has one.
    local: Cell<Option<Rc<dyn LocalSpawner>>>,
    /// The running runner's own local executor on this thread, once it has one.
    own: Cell<Option<Rc<LocalExecutor>>>,
    /// The runner whose main future's inline first poll is running on this thread (see
    /// [`RunScope`]), as its address; 0 when none. Its own spawns made then are held in `held`
    /// and handed to its loop from inside its `block_on`.
    inline: Cell<usize>,
    /// The spawns held back during an inline first poll: empty, unallocated, unless one was made.
    held: Cell<Vec<RawTask>>,
}

/// Holds `task` back when this thread is in the inline first poll of `shared`'s main future;
/// gives it back otherwise.
///
/// A spawn onto the polling runner's own loop made then, handed to the loop from outside its
/// `block_on`, would take the loop's cross-thread path (tokio's injection queue and a wake-up of
/// its driver, a system call); from inside `block_on` it takes the local one. Spawns onto other
/// runners' loops go through at once: they take their loop's cross-thread path either way.
pub(crate) fn defer(shared: &Shared, task: RawTask) -> Option<RawTask> {
    AMBIENT.with(|a| {
        if a.inline.get() != shared as *const Shared as usize {
            return Some(task);
        }
        let mut held = a.held.take();
        held.push(task);
        a.held.set(held);
        None
    })
}

thread_local! {
    static AMBIENT: Ambient = const {
        Ambient {
            scope: Cell::new(None),
            depth: Cell::new(0),
            owner: Cell::new(0),
            here: Here::new(),
            local: Cell::new(None),
            own: Cell::new(None),
            inline: Cell::new(0),
            held: Cell::new(Vec::new()),
        }
    };
}

/// Calls `f` with the runner of the current scope, if any.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    with_spawn(|shared, _| f(shared))
}

/// Where a spawn is made from, as the thread-local scope says: read with the current runner in
/// one access ([`with_spawn`]).
#[derive(Clone, Copy)]
pub(crate) struct Origin<'a> {
    /// A runner's loop is running on this thread ([`loop_running`]).
    pub(crate) from_loop: bool,
    /// The runner whose run or close this thread is inside, as its address; 0 when none.
    owner: usize,
    /// The thread's half of `owner`'s own run queue (see `task::own`).
    here: &'a Here,
}

impl<'a> Origin<'a> {
    /// True when this thread is inside `shared`'s run or close: it has `shared`'s loop side of
    /// the registry to itself (see `registry`, "The loop's side").
    #[inline]
    pub(crate) fn inside(self, shared: &Shared) -> bool {
        self.owner == shared as *const Shared as usize
    }

    /// The thread's own queue when this thread is inside `shared`'s run or close
    /// ([`inside`](Self::inside)), for a spawn to queue its cell without a second thread-local
    /// access ([`push_own_here`]).
    #[inline]
    pub(crate) fn here(self, shared: &Shared) -> Option<&'a Here> {
        self.inside(shared).then_some(self.here)
    }
}

/// [`with_current`] for a spawn: `f` also gets the spawn's [`Origin`], read in the same
/// thread-local access.
#[inline]
pub(crate) fn with_spawn<R>(f: impl FnOnce(Option<&Arc<Shared>>, Origin<'_>) -> R) -> R {
    AMBIENT.with(|a| {
        let origin = Origin {
            from_loop: a.depth.get() > 0,
            owner: a.owner.get(),
            here: &a.here,
        };
        let cur = a.scope.take();
        struct Restore<'a>(&'a Cell<Option<Arc<Shared>>>, Option<Arc<Shared>>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1.take());
            }
        }
        let restore = Restore(&a.scope, cur);
        f(restore.1.as_ref(), origin)
    })
}

/// True while a runner's loop is running on this thread: inside `run`, inside close, or inside
/// the poll of one of a runner's tasks (on any backend's worker thread).
#[inline]
pub(crate) fn loop_running() -> bool {
    AMBIENT.with(|a| a.depth.get() > 0)
}

/// True while `shared`'s own loop is running on this thread and `shared` is the current runner:
/// inside its run or close, or one of its tasks' polls or destructors. Not to be called inside
/// [`with_current`] (which lends the current runner out for its length): there, compare its
/// argument instead.
pub(crate) fn running_here(shared: &Arc<Shared>) -> bool {
    loop_running() && with_current(|cur| cur.is_some_and(|c| Arc::ptr_eq(c, shared)))
}

/// Makes `shared` the current runner and marks a loop as running on this thread, until dropped.
/// `slot` lends its `Arc` to the thread-local and gets it back on drop: no reference counting on
/// the per-poll path.
pub(crate) struct Enter<'a> {
    slot: &'a mut Option<Arc<Shared>>,
    running: bool,
}

impl<'a> Enter<'a> {
    #[inline]
    pub(crate) fn new(slot: &'a mut Option<Arc<Shared>>) -> Self {
        Self::with_running(slot, true)
    }

    /// `running: false` makes the runner current without marking a loop as running: for blocking
    /// jobs, which may spawn onto the loop and may also run another runner.
    #[inline]
    pub(crate) fn with_running(slot: &'a mut Option<Arc<Shared>>, running: bool) -> Self {
        // A swap in place, in and again out: no reference count touched, nothing dropped, so
        // neither end has drop glue and both inline into the task wrapper's poll.
        AMBIENT.with(|a| {
            a.scope.swap(Cell::from_mut(slot));
            if running {
                a.depth.set(a.depth.get() + 1);
            }
        });
        Enter { slot, running }
    }
}

impl Drop for Enter<'_> {
    #[inline]
    fn drop(&mut self) {
        // `slot` holds the previous runner while entered; swap it back in.
        AMBIENT.with(|a| {
            if self.running {
                a.depth.set(a.depth.get() - 1);
            }
            a.scope.swap(Cell::from_mut(self.slot));
        });
    }
}

/// Marks this thread as running `shared`'s `run` (or close), with the loop's native local
/// spawner if it has one, until dropped. A run never nests in another on one thread, so there is
/// nothing to restore. The drop, returning or unwinding, hands what is left in the thread's own
/// queue back to `shared` (see `task::own::leave`).
pub(crate) struct EnterLocal<'a> {
    shared: &'a Shared,
}

impl<'a> EnterLocal<'a> {
    pub(crate) fn new(shared: &'a Shared, native: Option<Rc<dyn LocalSpawner>>) -> Self {
        let own = crate::local::find(&shared.local);
        AMBIENT.with(|a| {
            a.owner.set(shared as *const Shared as usize);
            if native.is_some() {
                a.local.set(native);
            }
            a.own.set(own);
        });
        EnterLocal { shared }
    }
}

impl Drop for EnterLocal<'_> {
    fn drop(&mut self) {
        let (native, own) = AMBIENT.with(|a| {
            a.owner.set(0);
            own::leave(&a.here, &self.shared.own);
            (a.local.take(), a.own.take())
        });
        drop(native);
        drop(own);
    }
}

/// Everything a `run` installs on this thread, in one thread-local access on entry and one on
/// exit: `shared` as the current runner and a loop marked as running (as [`Enter`]), the run's
/// owner for local tasks with the loop's native local spawner and the runner's own executor (as
/// [`EnterLocal`]), and the inline first poll of the main future under way, until
/// [`end_inline`](Self::end_inline): the runner's own spawns made meanwhile are held back (see
/// [`defer`]). A run never nests in another on one thread, so only the current runner (`None`
/// but inside a blocking job) is restored.
pub(crate) struct RunScope<'a> {
    slot: &'a mut Option<Arc<Shared>>,
}

impl<'a> RunScope<'a> {
    /// Enters the run of `shared`, whose second reference `slot` lends to the thread-local
    /// until the drop (as [`Enter::new`]).
    #[inline]
    pub(crate) fn enter(
        slot: &'a mut Option<Arc<Shared>>,
        shared: &Shared,
        native: Option<Rc<dyn LocalSpawner>>,
        own: Option<Rc<LocalExecutor>>,
    ) -> Self {
        let addr = shared as *const Shared as usize;
        AMBIENT.with(|a| {
            a.scope.swap(Cell::from_mut(slot));
            a.depth.set(a.depth.get() + 1);
            a.owner.set(addr);
            a.inline.set(addr);
        });
        if native.is_some() || own.is_some() {
            set_locals(native, own);
        }
        RunScope { slot }
    }

    /// Ends the inline first poll: the spawns held back meanwhile, in order, for the runner's
    /// loop, if there were any.
    #[inline]
    pub(crate) fn end_inline(&self) -> Option<Vec<RawTask>> {
        let held = AMBIENT.with(|a| {
            a.inline.set(0);
            a.held.take()
        });
        if held.capacity() == 0 {
            // Nothing was held (the common case): nothing to drop either.
            std::mem::forget(held);
            None
        } else {
            Some(held)
        }
    }
}

impl RunScope<'_> {
    /// Leaves the run: [`Drop`] inline, for the path of every `run` that does not unwind.
    #[inline(always)]
    pub(crate) fn exit(self) {
        let mut this = std::mem::ManuallyDrop::new(self);
        this.leave();
    }

    #[inline(always)]
    fn leave(&mut self) {
        let (native, own, held) = AMBIENT.with(|a| {
            a.depth.set(a.depth.get() - 1);
            a.scope.swap(Cell::from_mut(self.slot));
            a.owner.set(0);
            // What the run left in the thread's own queue, back to the runner (the slot holds
            // it again since the swap above).
            if let Some(shared) = self.slot.as_deref() {
                own::leave(&a.here, &shared.own);
            }
            // Still set only when the inline poll unwound.
            let held = (a.inline.replace(0) != 0).then(|| a.held.take());
            (a.local.take(), a.own.take(), held)
        });
        if let Some(held) = held {
            spawn_held(self.slot.as_deref(), held);
        }
        if native.is_some() || own.is_some() {
            drop_locals(native, own);
        }
    }
}

impl Drop for RunScope<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The loop's native local spawner and the runner's own executor, for the run being entered.
#[inline(never)]
fn set_locals(native: Option<Rc<dyn LocalSpawner>>, own: Option<Rc<LocalExecutor>>) {
    AMBIENT.with(|a| {
        a.local.set(native);
        a.own.set(own);
    });
}

#[inline(never)]
fn drop_locals(native: Option<Rc<dyn LocalSpawner>>, own: Option<Rc<LocalExecutor>>) {
    drop(native);
    drop(own);
}

/// Unwinding out of the inline poll: the spawns held back go to the loop now rather than be lost.
#[cold]
fn spawn_held(shared: Option<&Shared>, held: Vec<RawTask>) {
    if let Some(shared) = shared {
        for task in held {
            shared.spawner.spawn_task(task);
        }
    }
}

/// The own local executor of the runner whose run (or close) this thread is inside.
pub(crate) fn own_local() -> Option<Rc<LocalExecutor>> {
    AMBIENT.with(|a| {
        let own = a.own.take();
        let out = own.clone();
        a.own.set(own);
        out
    })
}

/// Where `shared`'s local tasks can be spawned from here: the runner's own executor (polled by
/// the runner, or through the loop's native local spawner when it has one), when this thread is
/// running `shared`'s `run`; `None` elsewhere (a worker thread of a multi-thread loop, another
/// runner's run).
pub(crate) fn local_spawner(shared: &Shared) -> Option<LocalTarget> {
    let (owner, native) = AMBIENT.with(|a| {
        let native = a.local.take();
        let out = native.clone();
        a.local.set(native);
        (a.owner.get(), out)
    });
    if owner != shared as *const Shared as usize {
        return None;
    }
    let own = own_local().unwrap_or_else(|| {
        let ex = crate::local::create(&shared.local);
        AMBIENT.with(|a| a.own.set(Some(ex.clone())));
        ex
    });
    Some(LocalTarget { own, native })
}

/// Polls the local tasks of the runner whose run (or close) this thread is inside (see
/// `local::drive`); one relaxed load when it has none.
///
/// Called before each poll of the main future (or close's); [`drive_local_after`] follows a
/// pending poll, and polls the tasks on the runner's own queue too (current-thread loops; see
/// `task::own`).
#[inline]
pub(crate) fn drive_local(shared: &Shared, cx: &mut TaskCx<'_>) {
    if !shared.multi_thread {
        shared.own.before();
    }
    drive_local_tasks(shared, cx);
}

/// [`drive_local`] after a pending poll of the main future (or close's): polls the tasks queued
/// meanwhile. `Shared::register_main` follows.
///
/// The local tasks are polled first, so that the runner's own tasks they wake or spawn are
/// polled in this drive too: between the drive of the own queue and `Shared::register_main`
/// nothing runs (see `task::own`).
#[inline]
pub(crate) fn drive_local_after(shared: &Shared, cx: &mut TaskCx<'_>) {
    drive_local_tasks(shared, cx);
    if !shared.multi_thread && shared.own.wants_drive() {
        AMBIENT.with(|a| {
            debug_assert_eq!(
                a.owner.get(),
                shared as *const Shared as usize,
                "the own queue is driven only inside its runner's run or close"
            );
            // The run (or close) made `shared` the current runner and marked a loop as running
            // (`RunScope`, `Enter`); checked all the same, once per drive rather than entered
            // once per task's poll.
            let cur = a.scope.take();
            let installed =
                a.depth.get() > 0 && cur.as_deref().is_some_and(|c| std::ptr::eq(c, shared));
            a.scope.set(cur);
            shared.own.drive(&a.here, installed);
        });
    }
}

/// Queues `task`, a cell of `shared`'s own run queue whose `SCHEDULED` bit was just set (see
/// `task::own`): on this thread's queue when this thread is inside `shared`'s run (or close) and
/// its main future is being polled (no lock, no wake), on the runner's shared queue otherwise
/// (`Shared::push_own`: a lock, and a wake of the main future unless it is being polled).
#[inline]
pub(crate) fn push_own(shared: &Shared, task: Arc<dyn OwnTask>) {
    let addr = shared as *const Shared as usize;
    let mut task = Some(task);
    // `try_with`: a wake from another thread-local's destructor as this thread exits (when no
    // run can be under way) takes the shared path.
    let _ = AMBIENT.try_with(|a| {
        if a.owner.get() == addr && shared.own.active_here() {
            if let Some(t) = task.take() {
                task = a.here.push(t).err();
                if task.is_none() {
                    shared.own.pushed_here();
                }
            }
        }
    });
    if let Some(task) = task {
        shared.push_own(task);
    }
}

/// [`push_own`] from a spawn made on the thread inside `shared`'s run (or close), with that
/// thread's queue at hand ([`Origin::here`]): no second thread-local access.
#[inline(always)]
pub(crate) fn push_own_here(shared: &Shared, here: &Here, task: Arc<dyn OwnTask>) {
    let task = if shared.own.active_here() {
        match here.push(task) {
            Ok(()) => {
                shared.own.pushed_here();
                return;
            }
            Err(task) => task,
        }
    } else {
        task
    };
    shared.push_own(task);
}

#[inline]
fn drive_local_tasks(shared: &Shared, cx: &mut TaskCx<'_>) {
    if !shared.local.has_local.load(Ordering::Relaxed) {
        return;
    }
    drive_own_local(cx);
}

#[inline(never)]
fn drive_own_local(cx: &mut TaskCx<'_>) {
    if let Some(ex) = own_local() {
        crate::local::drive(&ex, cx);
    }
}

/// Runs `fut`, driving `shared`'s local tasks around each of its polls.
pub(crate) struct WithLocal<'a, F> {
    pub(crate) shared: &'a Shared,
    pub(crate) fut: Pin<&'a mut F>,
}

impl<F: Future> Future for WithLocal<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
        drive_local(self.shared, cx);
        let out = self.fut.as_mut().poll(cx);
        if out.is_pending() {
            drive_local_after(self.shared, cx);
            self.shared.register_main(cx);
        }
        out
    }
}
