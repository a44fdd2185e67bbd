//! Loom models of a task's state word and of the runner's own queue, driving the engine's own
//! code (`task::state`, whose word is loom's atomic under `--cfg loom`, and `task::own`, whose
//! lock, flags and fences are loom's there) with stand-ins only for what loom cannot host: the
//! future is a `loom::cell::UnsafeCell<bool>` (so loom also checks that no two parties ever touch
//! it at once), the wakers are flags, the runner's shell count is a counter, and a task on the
//! own queue is a poll counter.
//!
//! - Close's in-place cancel against a poll, or a drop, of the backend's task: the protocols
//!   `state::drive`, `state::release` and `state::cancel_now`, which `Cell::drive`,
//!   `Cell::release` and `TaskRef::cancel_now` (harness.rs) call, with this model's [`Holder`]
//!   and [`Poller`] in place of the cell's.
//! - The hand-over of a task's output to its join handle without a lock: the protocols
//!   `state::complete`, `state::poll_join` and `state::detach`, which `Task::complete`,
//!   `Task::poll_join` and `Task::detach` (cell.rs) call, with this model's `JoinSlots` (the
//!   output and the handle's waker as `UnsafeCell`s) in place of the cell's.
//! - A task on the runner's own queue (current-thread loops): `state::wake_own`,
//!   `state::abort_own` (its waker and `abort`, from any thread) and `state::poll_own` (the loop
//!   thread's poll), as `Cell::wake_by_ref`, `Cell::abort` and `OwnTask::poll_own` call them: a
//!   task is queued at most once, no wake is lost, an abort is seen.
//! - The shared half of that queue (`OwnQueue`, own.rs, itself): pushes from another thread
//!   (`OwnQueue::push`, which sets `any` under the lock and says whether it found it clear,
//!   then `Shared::push_own`'s wake of the waker stored under its own lock) race the loop
//!   thread's poll of the main future (`before`, `drive`, whose `take_shared` clears `any` under
//!   the lock, the waker stored under its lock or found stored, and `registered`, which loads
//!   `any`): every push is polled by the drive, or leaves `any` set and the main future woken.
//! - The runner's own queue on a multi-thread loop (task/pump.rs), where pumps on several
//!   workers take cells off one queue: two pumps polling a task while a third party wakes or
//!   aborts it (`state::poll_own`, whose caller queues again a task woken during its poll, and
//!   `State::schedule`, which queues none while `RUNNING` is held): no two polls overlap, the
//!   task is queued at most once, no wake is lost, an abort is seen; close's in-place cancel
//!   (`state::cancel_now` with `own`) against a pump's poll (`close_take_for_cancel` flagging
//!   the poll with `ABORTED|SCHEDULED`): the future is dropped once, and the task ends complete.
//!   These drive the state word's code with the `Own` stand-in, popped by two threads.
//! - The pumps' queue itself (`Pumps`, pump.rs, its lock, atomics and fences loom's; its
//!   `is_empty` reads without the lock, as `concurrent-queue`'s, so that only the fences order
//!   a push and a pump parking): a push (`Pumps::push`: the queue, a `SeqCst` fence, then
//!   `sleeping`) races the pump's turn finding the queue empty and parking (`Pumps::park`:
//!   `sleeping`, a fence, then the queue), with one pump or two on their own threads: the turn
//!   polls the task or a parked pump was woken, and a pump parks once (one entry in `idle`); a
//!   push races close's end (`Pumps::clear`) with a pump parked: the task is cancelled, unpolled,
//!   nothing is left queued, the pump is woken and ends; and pushes from two threads racing to
//!   make the first pump (`Pumps::grow`): one is made, no more than the loop's workers. A
//!   stand-in `Spawner` keeps the pumps (`RawTask`s) for the model to poll with a flag for a
//!   waker.
//!
//! Each model of the last two items was seen to fail with one mutation of the real code (listed
//! above the models).
//!
//! The models of three threads run with a preemption bound (5), as tokio's do: loom's
//! exhaustive search over `two_pumps_and_a_waker` ran past ten minutes.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p runner-core --lib --release task::loom
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::own::{Here, OwnQueue, OwnTask};
use super::pump::Pumps;
use super::state::{self, Holder, JoinSlots, Poller, State};
use crate::{BlockingJob, BoxFuture, RawTask, Spawner};

/// Runs `f` on a thread of its own, with a clone of `x` moved there: the other party of a model.
fn on_thread<T: 'static, R: 'static>(
    x: &Arc<T>,
    f: impl FnOnce(&T) -> R + 'static,
) -> thread::JoinHandle<R> {
    let x = x.clone();
    thread::spawn(move || f(&x))
}

/// A `Send` task's cell, as `Cell` is to the protocols: its state word, its future, its
/// registered waker, and its runner's shell count.
struct Model {
    state: State,
    /// `Cell::run`: whether the future is still there.
    run: UnsafeCell<bool>,
    /// `Shared::shells`.
    shells: AtomicUsize,
    /// The backend's waker was registered (`Header::driver`).
    registered: AtomicBool,
    /// The backend's task was woken, through its registered waker or by its poll.
    woken: AtomicBool,
    /// Times the future was dropped.
    drops: AtomicUsize,
}

impl Model {
    fn new() -> Self {
        Model {
            state: State::new(false),
            run: UnsafeCell::new(true),
            shells: AtomicUsize::new(0),
            registered: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            drops: AtomicUsize::new(0),
        }
    }

    /// `TaskRef::cancel_now` for a cell: `leave_shell` on a loop that does not reap its tasks
    /// at shutdown.
    fn cancel_now(&self, leave_shell: bool) {
        state::cancel_now(&self.state, self, leave_shell, false, false);
    }

    /// The backend polls the wrapper: `Cell::drive`. True when it returned `Ready`: the
    /// backend's task is over, later wake-ups poll nothing. The future itself stays pending.
    fn poll(&self) -> bool {
        state::drive(&self.state, self, &mut ModelPoll(self)).is_ready()
    }

    /// The backend drops the wrapper: `Cell::release`.
    fn release(&self) {
        state::release(&self.state, self);
    }

    /// Drops the future, `RUNNING` held, and completes the task as `Task::complete` does.
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING`.
    unsafe fn drop_future(&self, run: *mut bool) -> bool {
        // SAFETY: the caller holds `RUNNING`; loom checks that no one else is in here.
        let run = unsafe { &mut *run };
        if !*run {
            return false;
        }
        *run = false;
        self.drops.fetch_add(1, Ordering::AcqRel);
        assert!(!self.state.before_complete().is_detached());
        let _ = self.state.set_complete();
        true
    }

    /// Once every party is done: the future was dropped exactly once, the task completed, and
    /// close's shell count is back to zero (close never waits forever, nor counts a shell twice).
    fn check(&self) {
        assert_eq!(self.drops.load(Ordering::Acquire), 1);
        let state = self.state.load();
        assert!(state.is_complete());
        assert!(!state.is_running());
        assert_eq!(self.shells.load(Ordering::Acquire), 0);
    }
}

impl Holder for Model {
    unsafe fn cancel(&self, _in_scope: bool) {
        // SAFETY: the caller holds `RUNNING`.
        self.run.with_mut(|run| unsafe { self.drop_future(run) });
    }

    /// `AtomicWaker::wake`: wakes the registered waker, if any (a read-modify-write, as the
    /// waker's own are).
    fn wake_driver(&self) {
        if self.registered.fetch_or(false, Ordering::AcqRel) {
            self.woken.store(true, Ordering::Release);
        }
    }

    fn shell_made(&self) {
        self.shells.fetch_add(1, Ordering::AcqRel);
    }

    fn shell_done(&self) {
        self.shells.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A poll of the backend's task, with a waker that sets `Model::woken`.
struct ModelPoll<'a>(&'a Model);

impl Poller for ModelPoll<'_> {
    /// `poll_registered`: a future already dropped is `Ready`; an aborted one is dropped; else
    /// the future stays pending.
    unsafe fn poll(&mut self, aborted: bool) -> Poll<()> {
        let m = self.0;
        m.run.with_mut(|run| {
            // SAFETY: the caller holds `RUNNING`; loom checks that no one else is in here.
            if !unsafe { *run } {
                Poll::Ready(())
            } else if aborted {
                // SAFETY: as above.
                unsafe { m.drop_future(run) };
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// `AtomicWaker::register`: a read-modify-write, as the waker's own are.
    fn register(&mut self) {
        self.0.registered.swap(true, Ordering::AcqRel);
    }

    fn wake_self(&mut self) {
        self.0.woken.store(true, Ordering::Release);
    }
}

/// Close cancels while the backend polls the task (a stale wake-up). A poll that returns
/// `Pending` has been woken (no lost wake-up), and the poll that follows ends the task.
#[test]
fn cancel_in_place_races_a_poll() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let backend = on_thread(&m, |m| m.poll());
        m.cancel_now(true);
        let finished = backend.join().unwrap();
        if !finished {
            assert!(
                m.woken.load(Ordering::Acquire),
                "a pending task was never woken"
            );
            assert!(m.poll());
        }
        m.check();
    });
}

/// Close cancels while the backend drops its task (a loop shutting down): the future is dropped
/// by one of them, and the drop is counted as the shell's when close got there first, also when
/// it skips `RUNNING` because the task is complete.
#[test]
fn cancel_in_place_races_a_drop() {
    cancel_in_place_races(Model::release);
}

/// The backend polls a task that close finds running, then drops it: close's flag reaches the
/// poll or the drop, and the future is dropped once.
#[test]
fn cancel_in_place_races_a_poll_then_a_drop() {
    cancel_in_place_races(|m| {
        if !m.poll() {
            m.release();
        }
    });
}

/// Close's in-place cancel (leaving a shell) races `backend`, the backend's side of the task,
/// on another thread; once both are done, the future was dropped once and no shell is left.
fn cancel_in_place_races(backend: fn(&Model)) {
    loom::model(move || {
        let m = Arc::new(Model::new());
        let backend = on_thread(&m, backend);
        m.cancel_now(true);
        backend.join().unwrap();
        m.check();
    });
}

/// Close cancels in place on a loop that reaps its tasks at shutdown (`cancel_now(false)`) while
/// the backend polls the task (a stale wake-up); then the loop's shutdown drops the backend's
/// task, pending or not. Nothing is woken or waited for: the future is dropped once, by close or
/// by that poll, and no shell is counted.
#[test]
fn reaped_cancel_races_a_poll_then_the_shutdown_drop() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let backend = on_thread(&m, |m| {
            if !m.poll() {
                // Close's flag reached the poll, which woke the task itself: its next
                // poll ends it; or the task is idle until the shutdown drops it.
                if m.woken.load(Ordering::Acquire) {
                    m.poll();
                }
            }
        });
        m.cancel_now(false);
        backend.join().unwrap();
        // Close waits for its shells before the loop shuts down: a shell here would be dropped
        // only by that shutdown, and close would wait forever.
        assert_eq!(m.shells.load(Ordering::Acquire), 0, "a shell left to reap");
        // The loop's shutdown, after close.
        m.release();
        m.check();
    });
}

/// A task's output and its join handle's waker (a number standing for a waker).
struct Join {
    state: State,
    out: UnsafeCell<Option<u32>>,
    waker: UnsafeCell<Option<usize>>,
    /// The waker `complete` woke, 0 for none.
    woken: AtomicUsize,
    /// Outputs dropped unread, by `complete` or the handle's drop.
    unread: AtomicUsize,
}

impl Join {
    fn new() -> Self {
        Join {
            state: State::new(false),
            out: UnsafeCell::new(None),
            waker: UnsafeCell::new(None),
            woken: AtomicUsize::new(0),
            unread: AtomicUsize::new(0),
        }
    }

    /// `Task::complete`, once the registry counted the task.
    fn complete(&self, v: u32) {
        if state::complete(&self.state, self, v, Some).is_some() {
            self.unread.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// `Task::poll_join` with waker `w`.
    fn poll(&self, w: usize) -> Option<u32> {
        match state::poll_join(&self.state, self, &w) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        }
    }

    /// `Task::detach`, the handle's drop before it took the output.
    fn detach(&self) {
        if state::detach(&self.state, self).is_some() {
            self.unread.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The output and the waker as `UnsafeCell`s: loom checks that the state word orders every
/// access to them.
impl JoinSlots for Join {
    type Output = u32;
    type Stored = Option<u32>;
    type Waker = usize;

    unsafe fn store(&self, out: Option<u32>) {
        // SAFETY: see `JoinSlots::store`; loom checks it.
        self.out.with_mut(|o| unsafe { *o = out });
    }

    unsafe fn take_unread(&self) -> Option<u32> {
        // SAFETY: see `JoinSlots::take_unread`; loom checks it.
        self.out.with_mut(|o| unsafe { (*o).take() })
    }

    unsafe fn take(&self) -> Option<u32> {
        // SAFETY: see `JoinSlots::take`; loom checks it.
        self.out.with_mut(|o| unsafe { (*o).take() })
    }

    unsafe fn wake_join(&self) {
        // SAFETY: see `JoinSlots::wake_join`; loom checks it.
        if let Some(w) = self.waker.with(|w| unsafe { *w }) {
            self.woken.store(w, Ordering::Release);
        }
    }

    unsafe fn same_waker(&self, waker: &usize) -> bool {
        // SAFETY: see `JoinSlots::same_waker`; loom checks it.
        self.waker.with(|w| unsafe { *w }) == Some(*waker)
    }

    unsafe fn set_waker(&self, waker: &usize) {
        // SAFETY: see `JoinSlots::set_waker`; loom checks it.
        self.waker.with_mut(|w| unsafe { *w = Some(*waker) });
    }
}

/// The task completes while its handle polls, changing its waker between two polls: the output
/// reaches the handle once, and a handle left pending was woken through its latest waker.
#[test]
fn output_handed_over_while_the_handle_polls() {
    loom::model(|| {
        let j = Arc::new(Join::new());
        let task = on_thread(&j, |j| j.complete(7));
        let mut got = j.poll(1);
        let mut last = 1;
        if got.is_none() {
            got = j.poll(2);
            last = 2;
        }
        task.join().unwrap();
        if got.is_none() {
            assert_eq!(
                j.woken.load(Ordering::Acquire),
                last,
                "a pending handle never woken"
            );
            got = j.poll(last);
        }
        assert_eq!(got, Some(7));
        assert_eq!(j.unread.load(Ordering::Acquire), 0);
    });
}

/// The task completes while its handle, polled once, is dropped: the output is taken by the
/// handle or dropped unread, by exactly one side.
#[test]
fn output_handed_over_while_the_handle_is_dropped() {
    loom::model(|| {
        let j = Arc::new(Join::new());
        let task = on_thread(&j, |j| j.complete(7));
        let got = j.poll(1);
        if got.is_none() {
            j.detach();
        }
        task.join().unwrap();
        let unread = j.unread.load(Ordering::Acquire);
        assert_eq!(usize::from(got.is_some()) + unread, 1);
    });
}

/// A task on the runner's own queue: its state word, its entries in the queue, its future.
struct Own {
    state: State,
    /// Entries of the cell in the runner's queue.
    queued: AtomicUsize,
    /// Whether the future is still there.
    run: UnsafeCell<bool>,
    polls: AtomicUsize,
    drops: AtomicUsize,
    /// Events the future waits for: counted by [`wake_event`](Self::wake_event) before it
    /// wakes the task, and read by each poll (an acquire load, as a future reads its channel).
    events: AtomicUsize,
    /// The count the latest poll read: short of `events` once every poll is done, a wake was
    /// lost.
    seen: AtomicUsize,
}

impl Own {
    /// Spawned: queued once, with `SCHEDULED` set (`spawn_own`).
    fn new() -> Self {
        let mut state = State::new(false);
        state.set_scheduled_unshared();
        Own {
            state,
            queued: AtomicUsize::new(1),
            run: UnsafeCell::new(true),
            polls: AtomicUsize::new(0),
            drops: AtomicUsize::new(0),
            events: AtomicUsize::new(0),
            seen: AtomicUsize::new(0),
        }
    }

    /// `Cell::enqueue`.
    fn enqueue(&self) {
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        assert_eq!(before, 0, "a task queued twice");
    }

    /// The cell's `Wake::wake_by_ref`.
    fn wake(&self) {
        if state::wake_own(&self.state) {
            self.enqueue();
        }
    }

    /// An event the future waits for happens, and wakes the task.
    fn wake_event(&self) {
        self.events.fetch_add(1, Ordering::Release);
        self.wake();
    }

    /// `Cell::abort` for a task on the runner's own queue.
    fn abort(&self) {
        if state::abort_own(&self.state) {
            self.enqueue();
        }
    }

    /// The drive on the loop's thread, or a pump on a worker: takes the cell off the queue, if
    /// it is there, and polls it (`OwnTask::poll_own`); the future stays pending unless
    /// `finish`. False when the queue was empty.
    fn drive_once(&self, finish: bool) -> bool {
        // One pop, as the queue's: of two pumps, one takes the cell.
        if self
            .queued
            .compare_exchange(1, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let requeue = state::poll_own(&self.state, |aborted| {
            self.run.with_mut(|run| {
                // SAFETY: `RUNNING` is held; loom checks that no one else is in here.
                let run = unsafe { &mut *run };
                assert!(*run, "a complete task polled");
                if aborted || finish {
                    *run = false;
                    self.drops.fetch_add(1, Ordering::AcqRel);
                    assert!(!self.state.before_complete().is_detached());
                    let _ = self.state.set_complete();
                } else {
                    self.polls.fetch_add(1, Ordering::AcqRel);
                    let events = self.events.load(Ordering::Acquire);
                    self.seen.store(events, Ordering::Relaxed);
                }
            });
        });
        if requeue {
            self.enqueue();
        }
        true
    }

    /// Every drive until the queue is empty.
    fn drain(&self) {
        while self.drive_once(false) {}
    }

    /// At rest, until the task completes: `SCHEDULED` set exactly when the cell is queued, so
    /// no wake is lost and none queues it twice. (Once complete, a wake may set the bit and
    /// queues nothing: nothing is left to poll.)
    fn check_rest(&self) {
        let state = self.state.load();
        let queued = self.queued.load(Ordering::Acquire);
        assert!(queued <= 1);
        assert!(!state.is_running());
        if !state.is_complete() {
            assert_eq!(state.is_scheduled(), queued == 1);
        }
    }
}

/// A waker on another thread races the loop's polls of a task on the runner's own queue: the
/// task is queued at most once, and a wake after the poll took it off queues it again.
#[test]
fn own_queue_wake_races_a_poll() {
    loom::model(|| {
        let t = Arc::new(Own::new());
        let waker = on_thread(&t, |t| {
            t.wake();
            t.wake();
        });
        t.drive_once(false);
        t.drive_once(false);
        waker.join().unwrap();
        t.check_rest();
        // Whatever the order, the wakes left the task queued or were followed by a poll: the
        // drain empties the queue and clears the bit.
        t.drain();
        t.check_rest();
        assert!(!t.state.load().is_scheduled());
        assert!(t.polls.load(Ordering::Acquire) >= 1);
    });
}

/// `abort` from another thread races a poll (and the task completing): the future is dropped
/// exactly once, by the poll that sees `ABORTED` or by the one that finishes it.
#[test]
fn own_queue_abort_races_a_poll() {
    loom::model(|| {
        let t = Arc::new(Own::new());
        let aborter = on_thread(&t, |t| t.abort());
        t.drive_once(false);
        aborter.join().unwrap();
        t.check_rest();
        t.drain();
        t.check_rest();
        assert_eq!(t.drops.load(Ordering::Acquire), 1, "the abort was lost");
        assert!(t.state.load().is_complete());
    });
}

/// A wake races the task finishing: a wake after `COMPLETE` queues nothing, one before it leaves
/// a cell that the next drive lets go of without polling.
#[test]
fn own_queue_wake_races_completion() {
    loom::model(|| {
        let t = Arc::new(Own::new());
        let waker = on_thread(&t, |t| t.wake());
        t.drive_once(true);
        waker.join().unwrap();
        t.check_rest();
        t.drain();
        assert_eq!(t.drops.load(Ordering::Acquire), 1);
        assert_eq!(t.queued.load(Ordering::Acquire), 0);
    });
}

/// A task on the runner's own queue, for the model of its shared half: a poll only counts (one
/// each), and so does a cancel once its queue is closed ([`CANCELLED`] each).
struct Counted(std::sync::Arc<AtomicUsize>);

/// What `Counted::cancel_closed` adds to the count.
const CANCELLED: usize = 1 << 16;

impl OwnTask for Counted {
    fn poll_own(self: std::sync::Arc<Self>, _: bool) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn cancel_closed(self: std::sync::Arc<Self>) {
        self.0.fetch_add(CANCELLED, Ordering::AcqRel);
    }
}

/// The main future's waker (`Shared::main_waker`): a flag.
struct MainWaker(AtomicBool);

impl Wake for MainWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Two pushes from another thread (`OwnQueue::push`, and `Shared::push_own`'s wake, when it says
/// so, of the waker stored in `Shared::main_waker`, under its lock) race a poll of the main
/// future on the loop's thread (`OwnQueue::before`, the drive, whose batches take the shared
/// queue under its lock, the main future's waker, then `OwnQueue::registered`): every task the
/// drive did not poll is still queued, seen by `wants_drive` (`any` set), and the main future
/// was woken, so the next poll's drive polls it. `active` starts clear (the main future waits,
/// registered) or set (left by a run whose main future ended); the waker is stored already
/// (`Shared::register_main_cached` finding it unchanged, the common case) or stored by the loop's
/// thread during the race, under the lock (a run's first pending poll), the slot empty before.
/// The model drives own.rs's code, whose lock and flags are loom's here.
///
/// Seen to fail when `registered` skips its load of `any` (a wake lost), and when `push` sets
/// `any` before its task is in the queue (a push left unseen).
#[test]
fn own_queue_push_races_the_drive_and_registration() {
    for active in [false, true] {
        for stored in [true, false] {
            loom::model(move || own_queue_push_race(active, stored));
        }
    }
}

fn own_queue_push_race(active: bool, stored: bool) {
    let q = Arc::new(OwnQueue::default());
    if active {
        q.before();
    }
    let polls = std::sync::Arc::new(AtomicUsize::new(0));
    let main = std::sync::Arc::new(MainWaker(AtomicBool::new(false)));
    let waker = Waker::from(main.clone());
    // `Shared::main_waker`.
    let slot = Arc::new(loom::sync::Mutex::new(stored.then(|| waker.clone())));
    let pusher = {
        let (q, polls, slot) = (q.clone(), polls.clone(), slot.clone());
        thread::spawn(move || {
            for _ in 0..2 {
                if q.push(std::sync::Arc::new(Counted(polls.clone()))) {
                    // `Shared::wake_main`: cloned out under the lock, woken outside it.
                    let w = slot.lock().unwrap().clone();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            }
        })
    };
    let here = Here::new();
    q.before();
    q.drive(&here, true);
    if !stored {
        // `Shared::store_main_waker`.
        *slot.lock().unwrap() = Some(waker.clone());
    }
    q.registered(&mut Context::from_waker(&waker));
    pusher.join().unwrap();
    let polled = polls.load(Ordering::Acquire);
    if polled < 2 {
        assert!(q.wants_drive(), "a push left unseen");
        assert!(main.0.load(Ordering::Acquire), "a wake-up lost");
    }
    // The next poll of the main future (woken for nothing, maybe), and its drive if it wants
    // one: every task polled once, nothing left.
    q.before();
    if q.wants_drive() {
        q.drive(&here, true);
    }
    assert_eq!(polls.load(Ordering::Acquire), 2);
    assert!(!q.wants_drive());
}

/// A push from another thread races close's end (`OwnQueue::clear`): the task is dropped, by
/// the push (the queue closed) or by `clear`, and never left queued, where its cell would keep
/// the runner alive through its header. Drives own.rs's code, as above.
#[test]
fn own_queue_push_races_clear() {
    loom::model(|| {
        let q = Arc::new(OwnQueue::default());
        let polls = std::sync::Arc::new(AtomicUsize::new(0));
        let pusher = {
            let (q, polls) = (q.clone(), polls.clone());
            thread::spawn(move || {
                // Whether it wakes the main future does not matter: nothing polls it any more.
                let _ = q.push(std::sync::Arc::new(Counted(polls)));
            })
        };
        q.clear();
        pusher.join().unwrap();
        assert_eq!(
            std::sync::Arc::strong_count(&polls),
            1,
            "a task left queued after clear"
        );
        assert_eq!(polls.load(Ordering::Acquire), 0);
    });
}

/// Runs `f` under loom with at most `bound` preemptions per execution (as tokio's models do):
/// for the models of three threads, which loom's exhaustive search would take too long over.
fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    builder.check(f);
}

/// Close's side of a task on the runner's own queue: `TaskRef::cancel_now` drops the future
/// (`Cell::cancel_held`); such a task has no backend task, so nothing is woken and no shell made.
impl Holder for Own {
    unsafe fn cancel(&self, _in_scope: bool) {
        self.run.with_mut(|run| {
            // SAFETY: the caller holds `RUNNING`; loom checks that no one else is in here.
            let run = unsafe { &mut *run };
            if *run {
                *run = false;
                self.drops.fetch_add(1, Ordering::AcqRel);
                assert!(!self.state.before_complete().is_detached());
                let _ = self.state.set_complete();
            }
        });
    }

    fn wake_driver(&self) {
        panic!("close woke the backend task of a task on the own queue, which has none");
    }

    fn shell_made(&self) {
        panic!("close made a shell of a task on the own queue");
    }

    fn shell_done(&self) {
        panic!("a shell of a task on the own queue");
    }
}

impl Own {
    /// A pump on a multi-thread loop's worker: up to two turns, each taking the cell off the
    /// queue if it is there.
    fn pump(&self) {
        self.drive_once(false);
        self.drive_once(false);
    }

    /// Once every party is done and the queue drained: every event was seen by a poll (no wake
    /// lost), nothing is queued, and `SCHEDULED` is clear.
    fn check_drained(&self) {
        self.check_rest();
        assert_eq!(self.queued.load(Ordering::Acquire), 0);
        assert!(!self.state.load().is_scheduled());
        assert_eq!(
            self.seen.load(Ordering::Acquire),
            self.events.load(Ordering::Acquire),
            "a wake lost: no poll began after the last event"
        );
    }
}

// Multi-thread loops (task/pump.rs): two pumps take a task on the runner's own queue off the
// queue while a third party wakes it; close cancels it while a pump polls it; and the pumps'
// own queue (`Pumps`) against pumps parking, against close's end, and pushes making pumps.
//
// Each model was seen to fail with one mutation of the real code, then restored:
// - `two_pumps_and_a_waker`: `State::schedule` also queueing while `RUNNING` is held (its mask
//   without `RUNNING`); `poll_own` not calling `requeue`; and `take_scheduled_and_running`
//   without its acquire (a relaxed load and a release-only compare-and-swap: the poll misses
//   the event, "a wake lost").
// - `two_pumps_and_an_abort`: `abort_own` queuing on the abort's transition alone, without
//   `schedule` ("a task queued twice"); and `abort_own` queuing nothing ("the abort was lost").
// - `close_cancels_during_a_pumps_poll` (and `..._and_a_wake`): `close_take_for_cancel`'s
//   own-queue branch setting `ABORTED` only, without `SCHEDULED`; and `poll_own` polling when
//   it finds close holding `RUNNING` (loom: the future's cell written by both).
// - `push_races_a_pump_parking`: `Pumps::park` without its fence; `Pumps::push` loading
//   `sleeping` before its fence, or without its fence; and `Pumps::park` pushing a second entry
//   for a pump parked already (as it did before this model caught it). With `is_empty` taking
//   the queue's lock, the fence mutations pass: hence the lock-free `is_empty` under loom.
// - `push_races_clear_with_a_pump_parked`: `Pumps::clear` not waking the idle pumps.
// - `push_races_two_pumps_parking`: `Pumps::park` without its fence; `Pumps::push` without its
//   fence; `Pumps::park` pushing a second entry for a pump parked already.
// - `pushes_race_to_make_the_first_pump`: `Pumps::grow` taking a place with `fetch_add`
//   instead of its compare-and-swap against `max`.

/// A task on the runner's own queue, taken off it by two pumps (each as many as two times) while
/// `third` acts on it from the model's thread; the pumps joined, the rest checked and the queue
/// drained.
fn beside_two_pumps(third: impl FnOnce(&Own)) -> Arc<Own> {
    let t = Arc::new(Own::new());
    let pumps = [on_thread(&t, Own::pump), on_thread(&t, Own::pump)];
    third(&t);
    for pump in pumps {
        pump.join().unwrap();
    }
    t.check_rest();
    t.drain();
    t
}

/// Two pumps take a task off the runner's own queue, each as many as two times, while a third
/// party wakes it twice (an event each time): no two polls overlap (the future's `UnsafeCell`),
/// the task is queued at most once (`Own::enqueue`), and once all are done and the queue
/// drained, the last poll saw the last event (no wake lost).
#[test]
fn two_pumps_and_a_waker() {
    model_bounded(5, || {
        let t = beside_two_pumps(|t| {
            t.wake_event();
            t.wake_event();
        });
        t.check_drained();
        assert!(t.polls.load(Ordering::Acquire) >= 1);
    });
}

/// Two pumps take a task off the runner's own queue while a third party wakes it and aborts it
/// (`JoinHandle::abort`): no two polls overlap, it is queued at most once, and once all are
/// done and the queue drained, the future was dropped exactly once and the task is complete.
#[test]
fn two_pumps_and_an_abort() {
    model_bounded(5, || {
        let t = beside_two_pumps(|t| {
            t.wake_event();
            t.abort();
        });
        assert_eq!(t.drops.load(Ordering::Acquire), 1, "the abort was lost");
        assert!(t.state.load().is_complete());
        assert_eq!(t.queued.load(Ordering::Acquire), 0);
    });
}

/// Close's in-place cancel of `t` and everyone else done: the rest checked; the task complete,
/// or queued once for the poll that drops its future; after the drain the future was dropped
/// exactly once, and the task is complete, not running, and not queued.
fn check_cancelled_once(t: &Own) {
    t.check_rest();
    assert!(
        t.state.load().is_complete() || t.queued.load(Ordering::Acquire) == 1,
        "a cancelled task left pending and not queued"
    );
    t.drain();
    assert_eq!(t.drops.load(Ordering::Acquire), 1);
    let state = t.state.load();
    assert!(state.is_complete() && !state.is_running());
    assert_eq!(t.queued.load(Ordering::Acquire), 0);
}

/// Close's in-place cancel (`state::cancel_now` with `own`) on the runner's thread while a pump
/// takes the task off the queue and polls it (pending), twice: close drops the future, or finds
/// the poll holding it and flags it, and that poll queues it again for the next to drop. Once
/// both are done, the task is complete or queued for that next poll (nothing left idle that
/// would need one); after the drain the future was dropped exactly once and the task is
/// complete.
#[test]
fn close_cancels_during_a_pumps_poll() {
    for leave_shell in [false, true] {
        loom::model(move || {
            let t = Arc::new(Own::new());
            let pump = on_thread(&t, Own::pump);
            state::cancel_now(&t.state, &*t, leave_shell, false, true);
            pump.join().unwrap();
            check_cancelled_once(&t);
        });
    }
}

/// As above, with a waker on a third thread (an event the task waits for): a wake finding
/// close or the pump holding `RUNNING` queues nothing, and close's flag and the wake together
/// queue the task once; the future is still dropped exactly once, and the task ends complete
/// with nothing queued.
#[test]
fn close_cancels_during_a_pumps_poll_and_a_wake() {
    model_bounded(5, || {
        let t = Arc::new(Own::new());
        let pump = on_thread(&t, Own::pump);
        let waker = on_thread(&t, Own::wake_event);
        state::cancel_now(&t.state, &*t, true, false, true);
        pump.join().unwrap();
        waker.join().unwrap();
        check_cancelled_once(&t);
    });
}

/// The spawner behind `Pumps` in the models: it keeps the pumps it is given, for the model to
/// poll.
#[derive(Default)]
struct PumpSpawner(loom::sync::Mutex<Vec<RawTask>>);

impl PumpSpawner {
    /// The pumps made since the last call.
    fn take(&self) -> Vec<RawTask> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Spawner for PumpSpawner {
    fn spawn(&self, _: BoxFuture) {
        unreachable!("pumps are spawned with spawn_task");
    }

    fn spawn_task(&self, task: RawTask) {
        self.0.lock().unwrap().push(task);
    }

    fn spawn_blocking(&self, _: BlockingJob) {
        unreachable!("no blocking jobs here");
    }

    fn sleep_until(&self, _: Instant) -> BoxFuture {
        unreachable!("no timers here");
    }
}

/// One turn of `pump` (`Pumps::turn`, through the backend's `RawTask`), with `waker`.
fn turn(pump: &mut RawTask, waker: &Waker) -> Poll<()> {
    Pin::new(pump).poll(&mut Context::from_waker(waker))
}

/// `Pumps` with room for one pump, made by a first push (of a task counting its polls in
/// `first`) and handed back: not yet polled.
fn one_pump(first: &std::sync::Arc<AtomicUsize>) -> (std::sync::Arc<Pumps>, RawTask) {
    let spawner = std::sync::Arc::new(PumpSpawner::default());
    let pumps = std::sync::Arc::new(Pumps::new(spawner.clone(), 1));
    pumps.push(std::sync::Arc::new(Counted(first.clone())));
    let mut made = spawner.take();
    assert_eq!(made.len(), 1, "the first push makes a pump");
    (pumps, made.pop().unwrap())
}

/// A push from another thread (`Pumps::push`: the queue, a `SeqCst` fence, `sleeping`) races
/// the one pump's turn, which polls the first task and then finds the queue empty and parks
/// (`Pumps::park`: `sleeping`, a fence, the queue again): the turn polled the pushed task, or
/// the push woke the pump, whose next turn polls it. Drives pump.rs's code, whose lock,
/// atomics and fences are loom's here (its queue's `is_empty` reads without the lock, as
/// `concurrent-queue`'s does).
#[test]
fn push_races_a_pump_parking() {
    loom::model(|| {
        let first = std::sync::Arc::new(AtomicUsize::new(0));
        let pushed = std::sync::Arc::new(AtomicUsize::new(0));
        let (pumps, mut pump) = one_pump(&first);
        let pusher = {
            let (pumps, pushed) = (pumps.clone(), pushed.clone());
            thread::spawn(move || pumps.push(std::sync::Arc::new(Counted(pushed))))
        };
        let woken = std::sync::Arc::new(MainWaker(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        assert!(turn(&mut pump, &waker).is_pending());
        pusher.join().unwrap();
        assert_eq!(first.load(Ordering::Acquire), 1);
        if pushed.load(Ordering::Acquire) == 0 {
            assert!(
                woken.0.load(Ordering::Acquire),
                "a push left to a parked pump"
            );
        }
        // Parked, or woken for a (spurious) turn: a pump neither parked nor woken would never
        // be polled again, and later pushes, finding none asleep and no room for another,
        // would queue tasks for nobody.
        assert!(
            pumps.sleeping() == 1 || woken.0.load(Ordering::Acquire),
            "the pump neither parked nor woken"
        );
        // The backend polls the woken pump (for the pushed task, or spuriously: a push that
        // found it parking woke it as it found the task).
        if woken.0.swap(false, Ordering::AcqRel) {
            assert!(turn(&mut pump, &waker).is_pending());
        }
        assert_eq!(pushed.load(Ordering::Acquire), 1);
        assert_eq!(pumps.queued(), 0);
        assert_eq!(pumps.live(), 1);
        // Parked once: a second entry in `idle` would be a stale waker that a push could pop
        // instead of a parked pump's (once its pump has ended, a wake lost), and would count
        // in `sleeping` for a pump that is not asleep.
        assert_eq!(pumps.sleeping(), 1, "the pump parked twice");
        // Close's end: the parked pump is woken, and ends.
        pumps.clear();
        assert!(turn(&mut pump, &waker).is_ready());
        assert_eq!(pumps.live(), 0);
    });
}

/// A push from another thread races close's end (`Pumps::clear`) while the one pump is parked:
/// the pushed task is cancelled once and never polled (`OwnTask::cancel_closed`), by the push
/// (the queue closed) or by `clear`, and never left queued; the parked pump was woken (by the push or by `clear`), and its next turn ends
/// it. Drives pump.rs's code, as above.
#[test]
fn push_races_clear_with_a_pump_parked() {
    loom::model(|| {
        let first = std::sync::Arc::new(AtomicUsize::new(0));
        let pushed = std::sync::Arc::new(AtomicUsize::new(0));
        let (pumps, mut pump) = one_pump(&first);
        let woken = std::sync::Arc::new(MainWaker(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        assert!(turn(&mut pump, &waker).is_pending());
        assert_eq!(first.load(Ordering::Acquire), 1);
        let pusher = {
            let (pumps, pushed) = (pumps.clone(), pushed.clone());
            thread::spawn(move || pumps.push(std::sync::Arc::new(Counted(pushed))))
        };
        pumps.clear();
        pusher.join().unwrap();
        assert_eq!(pumps.queued(), 0, "a task left queued after clear");
        assert_eq!(
            std::sync::Arc::strong_count(&pushed),
            1,
            "a task kept after clear"
        );
        assert!(woken.0.load(Ordering::Acquire), "a parked pump left parked");
        assert!(turn(&mut pump, &waker).is_ready());
        assert_eq!(
            pushed.load(Ordering::Acquire),
            CANCELLED,
            "the task not cancelled once, or polled"
        );
        assert_eq!(pumps.live(), 0);
        assert_eq!(pumps.sleeping(), 0);
    });
}

/// Pushes from two threads race to make the first pump of `Pumps` with room for one
/// (`Pumps::grow`, a compare-and-swap of `live` against the loop's worker count): exactly one
/// pump is made, and its first turn polls both tasks. Drives pump.rs's code, as above.
#[test]
fn pushes_race_to_make_the_first_pump() {
    loom::model(|| {
        let polls = std::sync::Arc::new(AtomicUsize::new(0));
        let spawner = std::sync::Arc::new(PumpSpawner::default());
        let pumps = std::sync::Arc::new(Pumps::new(spawner.clone(), 1));
        let pushers = [0, 1].map(|_| {
            let (pumps, polls) = (pumps.clone(), polls.clone());
            thread::spawn(move || pumps.push(std::sync::Arc::new(Counted(polls))))
        });
        for pusher in pushers {
            pusher.join().unwrap();
        }
        let mut made = spawner.take();
        assert_eq!(made.len(), 1, "pumps made beyond the loop's workers");
        assert_eq!(pumps.live(), 1);
        let mut pump = made.pop().unwrap();
        let woken = std::sync::Arc::new(MainWaker(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        assert!(turn(&mut pump, &waker).is_pending());
        assert_eq!(polls.load(Ordering::Acquire), 2);
        assert_eq!(pumps.queued(), 0);
        pumps.clear();
        assert!(turn(&mut pump, &waker).is_ready());
        assert_eq!(pumps.live(), 0);
    });
}

/// A push from another thread races two pumps, each on its own thread, whose turns poll the
/// tasks queued before and find the queue empty and park: every task is polled by a turn, or a
/// parked pump was woken and its next turn polls it; each pump ends parked once (one entry in
/// `idle`) or woken. Drives pump.rs's code, as above.
#[test]
fn push_races_two_pumps_parking() {
    model_bounded(5, || {
        let polls = std::sync::Arc::new(AtomicUsize::new(0));
        let spawner = std::sync::Arc::new(PumpSpawner::default());
        let pumps = std::sync::Arc::new(Pumps::new(spawner.clone(), 2));
        // Each push finds no pump asleep and room for one more: two pumps.
        pumps.push(std::sync::Arc::new(Counted(polls.clone())));
        pumps.push(std::sync::Arc::new(Counted(polls.clone())));
        let made = spawner.take();
        assert_eq!(made.len(), 2);
        let flags = [0, 1].map(|_| std::sync::Arc::new(MainWaker(AtomicBool::new(false))));
        let mut made = made.into_iter().zip(flags.clone()).map(|(mut pump, flag)| {
            thread::spawn(move || {
                let waker = Waker::from(flag);
                assert!(turn(&mut pump, &waker).is_pending());
                pump
            })
        });
        let first = made.next().unwrap();
        let second = made.next().unwrap();
        pumps.push(std::sync::Arc::new(Counted(polls.clone())));
        let mut made = [first.join().unwrap(), second.join().unwrap()];
        if polls.load(Ordering::Acquire) < 3 {
            assert!(
                flags.iter().any(|f| f.0.load(Ordering::Acquire)),
                "a push left to parked pumps"
            );
        }
        // The backend polls the woken pumps.
        for (pump, flag) in made.iter_mut().zip(&flags) {
            if flag.0.swap(false, Ordering::AcqRel) {
                let waker = Waker::from(flag.clone());
                assert!(turn(pump, &waker).is_pending());
            }
        }
        assert_eq!(polls.load(Ordering::Acquire), 3);
        assert_eq!(pumps.queued(), 0);
        assert_eq!(pumps.sleeping(), 2, "each pump parked once");
        pumps.clear();
        for (pump, flag) in made.iter_mut().zip(&flags) {
            assert!(flag.0.load(Ordering::Acquire), "a parked pump left parked");
            let waker = Waker::from(flag.clone());
            assert!(turn(pump, &waker).is_ready());
        }
        assert_eq!(pumps.live(), 0);
    });
}
