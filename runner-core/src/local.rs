//! The runner's own executor for `!Send` tasks, used on every loop that has no native
//! [`LocalSpawner`](crate::LocalSpawner).
//!
//! Local tasks live on the runner's thread, in a thread-local table keyed by the runner, and are
//! polled by the wrapper of the main future (and by close), so they progress during runs, on the
//! runner's own thread, on every backend, multi-thread ones included. A task's waker (which may be
//! called from any thread) queues the task's slot and wakes the main future. A loop whose tasks
//! have never been local pays one relaxed atomic load per poll of the main future.

use std::cell::RefCell;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use slab::Slab;

use crate::event_loop::{LocalBoxFuture, LocalSpawner};
use crate::shared::{lock, Shared};

thread_local! {
    /// This thread's local executors, one per runner that spawned local tasks here.
    static EXECUTORS: RefCell<Vec<(usize, Rc<LocalExecutor>)>> = const { RefCell::new(Vec::new()) };
}

/// The slots woken since the last drive; shared with the wakers, so `Send + Sync`.
struct Ready {
    slots: Mutex<Vec<usize>>,
    any: AtomicBool,
    main: AtomicWaker,
}

struct SlotWaker {
    slot: usize,
    ready: Arc<Ready>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.ready.slots).push(self.slot);
        self.ready.any.store(true, Ordering::Release);
        self.ready.main.wake();
    }
}

pub(crate) struct LocalExecutor {
    tasks: RefCell<Slab<(Option<LocalBoxFuture>, Waker)>>,
    ready: Arc<Ready>,
}

impl LocalSpawner for LocalExecutor {
    fn spawn_local(&self, task: LocalBoxFuture) {
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let waker = Waker::from(Arc::new(SlotWaker {
            slot: entry.key(),
            ready: self.ready.clone(),
        }));
        // Never polled inline: queued, like every spawn.
        waker.wake_by_ref();
        entry.insert((Some(task), waker));
    }
}

fn key(shared: &Shared) -> usize {
    shared as *const Shared as usize
}

/// This thread's executor for `shared`, made on first use.
pub(crate) fn executor(shared: &Shared) -> Rc<LocalExecutor> {
    let k = key(shared);
    EXECUTORS.with(|e| {
        let mut e = e.borrow_mut();
        if let Some((_, ex)) = e.iter().find(|(id, _)| *id == k) {
            return ex.clone();
        }
        let ex = Rc::new(LocalExecutor {
            tasks: RefCell::new(Slab::new()),
            ready: Arc::new(Ready {
                slots: Mutex::new(Vec::new()),
                any: AtomicBool::new(false),
                main: AtomicWaker::new(),
            }),
        });
        e.push((k, ex.clone()));
        shared.has_local.store(true, Ordering::Release);
        ex
    })
}

/// Removes `shared`'s executor from this thread (after close: its tasks are all gone).
pub(crate) fn forget(shared: &Shared) {
    if shared.has_local.load(Ordering::Acquire) {
        let k = key(shared);
        let gone = EXECUTORS.with(|e| {
            let mut e = e.borrow_mut();
            e.iter()
                .position(|(id, _)| *id == k)
                .map(|i| e.swap_remove(i))
        });
        drop(gone);
    }
}

/// Polls the local tasks woken since the last call, on this thread; registers `cx`'s waker to be
/// woken when one is woken again. Called before and after each poll of the main future: the
/// main future itself may spawn local tasks, and their first wake-up happens before any waker is
/// registered.
pub(crate) fn drive(shared: &Shared, cx: &mut Context<'_>) {
    if !shared.has_local.load(Ordering::Relaxed) {
        return;
    }
    let k = key(shared);
    let Some(ex) = EXECUTORS.with(|e| {
        e.borrow()
            .iter()
            .find(|(id, _)| *id == k)
            .map(|(_, ex)| ex.clone())
    }) else {
        return;
    };
    ex.ready.main.register(cx.waker());
    if !ex.ready.any.swap(false, Ordering::AcqRel) {
        return;
    }
    let woken = mem::take(&mut *lock(&ex.ready.slots));
    for slot in woken {
        // Taken out of the table for the poll: the task may spawn local tasks itself.
        let taken = ex
            .tasks
            .borrow_mut()
            .get_mut(slot)
            .and_then(|(fut, waker)| fut.take().map(|f| (f, waker.clone())));
        let Some((mut fut, waker)) = taken else {
            continue;
        };
        // The task wrapper (`task::Driver`) catches the task's panics; a poll here never unwinds.
        let done = fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        let mut tasks = ex.tasks.borrow_mut();
        if done {
            let entry = tasks.remove(slot);
            drop(tasks);
            drop(entry);
            drop(fut);
        } else if let Some(entry) = tasks.get_mut(slot) {
            entry.0 = Some(fut);
        }
    }
    // Tasks woken during this batch (by each other, or by themselves when they yield) run in the
    // next one: come back soon rather than loop here and starve the main future.
    if ex.ready.any.load(Ordering::Acquire) {
        cx.waker().wake_by_ref();
    }
}

/// Runs `fut`, driving `shared`'s local tasks around each of its polls.
pub(crate) struct WithLocal<'a, F> {
    pub(crate) shared: &'a Shared,
    pub(crate) fut: Pin<&'a mut F>,
}

impl<F: Future> Future for WithLocal<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        drive(self.shared, cx);
        let out = self.fut.as_mut().poll(cx);
        if out.is_pending() {
            drive(self.shared, cx);
        }
        out
    }
}
