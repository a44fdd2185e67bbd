//! The runner's own executor for `!Send` tasks, used on every loop that has no native
//! [`LocalSpawner`].
//!
//! Local tasks are polled by the wrapper of the main future (and by close), so they progress
//! during runs, on the runner's own thread, on every backend, multi-thread ones included. A
//! task's waker (which may be called from any thread) queues the task's slot and wakes the main
//! future. A loop whose tasks have never been local pays one relaxed atomic load per poll of the
//! main future.
//!
//! # Ownership
//!
//! An executor belongs to one runner and one thread. The runner holds the executor's `Send` half,
//! its [`LocalQueue`], which names the thread; the `!Send` half (the tasks) stays on that thread,
//! in a list of the executors living there, found by the identity of the queue the runner holds
//! (never by an address that a later runner could reuse). When the runner goes (closed, or
//! dropped anywhere), it releases its queue: on the executor's own thread the executor leaves the
//! list at once and its remaining tasks are dropped there and then; from any other thread the
//! executor is marked orphaned, and its thread drops it (and its tasks) the next time it enters a
//! runner's run or close, or at the latest when it exits.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};

use atomic_waker::AtomicWaker;
use slab::Slab;

use crate::error::RunError;
use crate::event_loop::{LocalBoxFuture, LocalSpawner};
use crate::lock::lock;

/// The executors living on this thread.
struct Home(RefCell<Vec<Rc<LocalExecutor>>>);

impl Drop for Home {
    fn drop(&mut self) {
        // Thread exit: the tasks' destructors may need thread-locals that are already gone; a
        // panic from one of them must not abort the process from a thread-local destructor.
        for ex in mem::take(self.0.get_mut()) {
            if ex.queue.orphaned.load(Ordering::Acquire) {
                ORPHANS.fetch_sub(1, Ordering::AcqRel);
            }
            let _ = catch_unwind(AssertUnwindSafe(|| drop(ex)));
        }
    }
}

thread_local! {
    static HOME: Home = const { Home(RefCell::new(Vec::new())) };
}

/// Executors orphaned on some thread and not yet dropped there: while it is 0, entering a run
/// costs one relaxed load for them.
static ORPHANS: AtomicUsize = AtomicUsize::new(0);

/// A runner's local tasks, as its shared state keeps them (`Send + Sync`).
#[derive(Default)]
pub(crate) struct LocalState {
    /// The thread the local tasks live on: while any is alive, the runner runs and closes only
    /// there.
    home: Mutex<Option<ThreadId>>,
    /// Local tasks spawned and not yet ended.
    alive: AtomicUsize,
    /// The `Send` half of the runner's own executor, naming its thread.
    queue: Mutex<Option<Arc<LocalQueue>>>,
    /// Set once the runner's own executor exists: until then, driving local tasks costs one
    /// relaxed load.
    pub(crate) has_local: AtomicBool,
}

impl LocalState {
    /// `Err(WrongThread)` while local tasks are alive on another thread than the calling one.
    #[inline]
    pub(crate) fn check_home(&self) -> Result<(), RunError> {
        if self.alive.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        self.check_home_slow()
    }

    #[inline(never)]
    fn check_home_slow(&self) -> Result<(), RunError> {
        match *lock(&self.home) {
            Some(home) if home != thread::current().id() => Err(RunError::WrongThread),
            _ => Ok(()),
        }
    }

    /// Makes the calling thread the home of the local tasks, unless some are alive on another
    /// thread (`false` then).
    pub(crate) fn claim_home(&self) -> bool {
        let here = thread::current().id();
        let mut home = lock(&self.home);
        match *home {
            Some(h) if h != here && self.alive.load(Ordering::Acquire) > 0 => false,
            _ => {
                *home = Some(here);
                true
            }
        }
    }

    /// True while some local task is alive.
    pub(crate) fn any_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire) != 0
    }

    /// A local task was spawned.
    pub(crate) fn started(&self) {
        self.alive.fetch_add(1, Ordering::AcqRel);
    }

    /// A local task ended (its future is gone).
    pub(crate) fn ended(&self) {
        self.alive.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `Send + Sync` half of an executor: the slots woken since the last drive, shared with the
/// wakers, and the thread the executor lives on.
pub(crate) struct LocalQueue {
    slots: Mutex<Vec<usize>>,
    any: AtomicBool,
    main: AtomicWaker,
    home: ThreadId,
    /// Set when the runner let go of the executor while it was on another thread.
    orphaned: AtomicBool,
}

struct SlotWaker {
    slot: usize,
    queue: Arc<LocalQueue>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.queue.slots).push(self.slot);
        self.queue.any.store(true, Ordering::Release);
        self.queue.main.wake();
    }
}

/// One local task: its future (taken out while it is polled) and, when the runner itself polls
/// it, its waker. `id` tells a task from a later one in the same slot.
struct Entry {
    id: u64,
    fut: Option<LocalBoxFuture>,
    waker: Option<Waker>,
}

pub(crate) struct LocalExecutor {
    queue: Arc<LocalQueue>,
    tasks: RefCell<Slab<Entry>>,
    next_id: Cell<u64>,
}

impl LocalExecutor {
    fn insert(
        &self,
        fut: LocalBoxFuture,
        waker: impl FnOnce(usize) -> Option<Waker>,
    ) -> (usize, u64) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let key = entry.key();
        entry.insert(Entry {
            id,
            fut: Some(fut),
            waker: waker(key),
        });
        (key, id)
    }

    /// Takes the future of task `(key, id)` out for a poll.
    fn take(&self, key: usize, id: u64) -> Option<LocalBoxFuture> {
        self.tasks
            .borrow_mut()
            .get_mut(key)
            .filter(|e| e.id == id)
            .and_then(|e| e.fut.take())
    }

    /// Puts a polled future back, or drops it when the task is done or its entry went meanwhile
    /// (the executor was released): `true` when the task is over.
    fn put_back(&self, key: usize, id: u64, fut: LocalBoxFuture, done: bool) -> bool {
        let mut tasks = self.tasks.borrow_mut();
        let alive = tasks.get(key).is_some_and(|e| e.id == id);
        if alive && !done {
            tasks[key].fut = Some(fut);
            return false;
        }
        let entry = if alive { tasks.try_remove(key) } else { None };
        drop(tasks);
        drop(entry);
        drop(fut);
        true
    }

    /// Drops every task left, outside any borrow: their destructors may spawn.
    fn drop_tasks(&self) {
        let tasks = mem::take(&mut *self.tasks.borrow_mut());
        drop(tasks);
    }
}

/// Where a runner's local tasks go from the running thread: always into the runner's own
/// executor, which owns their futures; polled by the runner itself, or, when the loop has a
/// native local spawner, by a [`Shim`] task spawned on it.
pub(crate) struct LocalTarget {
    pub(crate) own: Rc<LocalExecutor>,
    pub(crate) native: Option<Rc<dyn LocalSpawner>>,
}

impl LocalTarget {
    pub(crate) fn spawn(&self, fut: LocalBoxFuture) {
        match &self.native {
            Some(native) => {
                let (key, id) = self.own.insert(fut, |_| None);
                native.spawn_local(Box::pin(Shim {
                    ex: Rc::downgrade(&self.own),
                    key,
                    id,
                }));
            }
            None => {
                let queue = self.own.queue.clone();
                let (key, _) = self.own.insert(fut, |key| {
                    Some(Waker::from(Arc::new(SlotWaker { slot: key, queue })))
                });
                // Never polled inline: queued, like every spawn.
                lock(&self.own.queue.slots).push(key);
                self.own.queue.any.store(true, Ordering::Release);
                self.own.queue.main.wake();
            }
        }
    }
}

/// The native loop's task for one local task: polls the future the runner's executor owns, so
/// that releasing the executor drops the future whatever the loop does with its task.
struct Shim {
    ex: Weak<LocalExecutor>,
    key: usize,
    id: u64,
}

impl Future for Shim {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(ex) = self.ex.upgrade() else {
            return Poll::Ready(());
        };
        let Some(mut fut) = ex.take(self.key, self.id) else {
            return Poll::Ready(());
        };
        let done = fut.as_mut().poll(cx).is_ready();
        if ex.put_back(self.key, self.id, fut, done) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        // The loop dropped its task before it completed: the task ends with it, as a task the
        // loop drops does.
        if let Some(ex) = self.ex.upgrade() {
            if let Some(fut) = ex.take(self.key, self.id) {
                ex.put_back(self.key, self.id, fut, true);
            }
        }
    }
}

/// `shared`'s executor on this thread, if it has one here. Drops this thread's orphaned
/// executors first: entering a run or close is when a thread takes them back. Two loads, inline,
/// when there is neither.
#[inline]
pub(crate) fn find(shared: &LocalState) -> Option<Rc<LocalExecutor>> {
    if ORPHANS.load(Ordering::Relaxed) == 0 && !shared.has_local.load(Ordering::Acquire) {
        return None;
    }
    find_slow(shared)
}

#[inline(never)]
fn find_slow(shared: &LocalState) -> Option<Rc<LocalExecutor>> {
    if ORPHANS.load(Ordering::Relaxed) != 0 {
        drop_orphans();
    }
    if !shared.has_local.load(Ordering::Acquire) {
        return None;
    }
    let queue = lock(&shared.queue).clone()?;
    if queue.home != thread::current().id() {
        return None;
    }
    HOME.with(|h| {
        h.0.borrow()
            .iter()
            .find(|ex| Arc::ptr_eq(&ex.queue, &queue))
            .cloned()
    })
}

/// Drops this thread's orphaned executors, with their tasks.
fn drop_orphans() {
    let orphans: Vec<Rc<LocalExecutor>> = HOME.with(|h| {
        let mut h = h.0.borrow_mut();
        if h.iter().any(|ex| ex.queue.orphaned.load(Ordering::Acquire)) {
            let (gone, kept) = mem::take(&mut *h)
                .into_iter()
                .partition(|ex| ex.queue.orphaned.load(Ordering::Acquire));
            *h = kept;
            gone
        } else {
            Vec::new()
        }
    });
    for ex in orphans {
        ORPHANS.fetch_sub(1, Ordering::AcqRel);
        ex.drop_tasks();
    }
}

/// A new executor for `shared` on this thread, replacing the one it had elsewhere (which has no
/// task left: the runner moves only then).
pub(crate) fn create(shared: &LocalState) -> Rc<LocalExecutor> {
    let ex = Rc::new(LocalExecutor {
        queue: Arc::new(LocalQueue {
            slots: Mutex::new(Vec::new()),
            any: AtomicBool::new(false),
            main: AtomicWaker::new(),
            home: thread::current().id(),
            orphaned: AtomicBool::new(false),
        }),
        tasks: RefCell::new(Slab::new()),
        next_id: Cell::new(0),
    });
    let old = lock(&shared.queue).replace(ex.queue.clone());
    if let Some(old) = old {
        orphan(&old);
    }
    HOME.with(|h| h.0.borrow_mut().push(ex.clone()));
    shared.has_local.store(true, Ordering::Release);
    ex
}

/// Leaves an executor to its thread, which drops it when it next enters a run or close.
fn orphan(queue: &LocalQueue) {
    // Counted before it is marked: the thread that drops it counts it down.
    ORPHANS.fetch_add(1, Ordering::AcqRel);
    queue.orphaned.store(true, Ordering::Release);
}

/// Lets go of `shared`'s executor: dropped now with its tasks when this is its thread, left to its
/// thread otherwise (see the module docs).
pub(crate) fn release(shared: &LocalState) {
    if !shared.has_local.load(Ordering::Acquire) {
        return;
    }
    let Some(queue) = lock(&shared.queue).take() else {
        return;
    };
    if queue.home != thread::current().id() {
        orphan(&queue);
        return;
    }
    queue.orphaned.store(true, Ordering::Release);
    let ex = HOME.with(|h| {
        let mut h = h.0.borrow_mut();
        h.iter()
            .position(|ex| Arc::ptr_eq(&ex.queue, &queue))
            .map(|i| h.swap_remove(i))
    });
    if let Some(ex) = ex {
        ex.drop_tasks();
    }
}

/// Polls the local tasks of `ex` woken since the last call, on this thread; registers `cx`'s
/// waker to be woken when one is woken again. Called before and after each poll of the main
/// future: the main future itself may spawn local tasks, and their first wake-up happens before
/// any waker is registered.
pub(crate) fn drive(ex: &LocalExecutor, cx: &mut Context<'_>) {
    ex.queue.main.register(cx.waker());
    if !ex.queue.any.swap(false, Ordering::AcqRel) {
        return;
    }
    let woken = mem::take(&mut *lock(&ex.queue.slots));
    for slot in woken {
        // Taken out of the table for the poll: the task may spawn local tasks itself.
        let taken = ex.tasks.borrow_mut().get_mut(slot).and_then(|e| {
            let waker = e.waker.clone()?;
            e.fut.take().map(|f| (f, waker, e.id))
        });
        let Some((mut fut, waker, id)) = taken else {
            continue;
        };
        // The task wrapper (`task::harness`) catches the task's panics; a poll here never unwinds.
        let done = fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        ex.put_back(slot, id, fut, done);
    }
    // Tasks woken during this batch (by each other, or by themselves when they yield) run in the
    // next one: come back soon rather than loop here and starve the main future.
    if ex.queue.any.load(Ordering::Acquire) {
        cx.waker().wake_by_ref();
    }
}
