//! A task's state word: eight independent bits in one byte, every transition the engine makes as
//! a method returning what its caller must do, and the protocols around a `Send` task's future
//! (poll, drop, close's in-place cancel, the runner's own queue) as functions that the real code
//! and the loom models (`loom.rs`) both call.
//!
//! Every transition is a `fetch_or` or `fetch_and`, or a compare-and-swap where a bit may only
//! change while another is clear (close taking `RUNNING` and setting `SHELL` as one step; the
//! handle clearing `JOIN_WAKER` only before `COMPLETE`), so no transition is lost to a race.
//! Under `--cfg loom` the word is loom's atomic, so that the models check this very code.
//!
//! - `RUNNING`: held by whoever polls or drops a `Send` task's future (`Cell::run`): the backend's
//!   wrapper ([`drive`], [`release`]) or close ([`cancel_now`]). Taken by setting it when clear,
//!   given back with `fetch_and`; it grants exclusive access to the future and its context, and
//!   its acquire/release orders each holder's writes before the next one's reads. The backend
//!   never polls and drops one task at once, so the only contention is close's, which only
//!   *tries*: finding `RUNNING` set it flags `ABORTED` and wakes the task instead. A poll finding
//!   close holding it registers the waker and returns `Pending`: close wakes the task once it
//!   lets go (or, had it let go before the registration, the poll sees `RUNNING` clear on a
//!   second look and wakes the task itself), and that next poll finds the shell. The task's waker
//!   (`Header::driver`, for `abort` and close) is registered only by a poll that stays pending,
//!   before it lets go of `RUNNING`; an `ABORTED` set during the poll shows in the word that
//!   `fetch_and` returns, and the task then wakes itself.
//! - `ABORTED`: set by `JoinHandle::abort`, by close ([`cancel_now`], `abort`) and at spawn for a
//!   task born cancelled; never cleared. Once it is set, the next poll of the task drops its
//!   future instead of polling it. `abort` wakes the task's waker only on the transition from
//!   neither `ABORTED` nor `COMPLETE`, so a task is woken for it at most once.
//! - `COMPLETE`: set once, by `Task::complete`, after the output is stored, so that
//!   `JoinHandle::is_finished()` means the output is there to take; from then on the output is
//!   the handle's. A task whose handle was dropped (`DETACHED`) gets it too, its output dropped by
//!   `complete` instead of stored. Set after the registry has counted the task: whoever sees it
//!   sees a task close no longer counts. Set only once the future was dropped, by the holder of
//!   `RUNNING` for a `Send` task: whoever sees it needs neither `RUNNING` nor the future.
//! - `SHELL`: set by close in the same step as it takes `RUNNING` to drop the future in place; the
//!   backend's task is then an empty shell. Cleared (with `fetch_and`) by the first poll or drop of
//!   the wrapper that sees it, which alone tells close (`Shared::shell_done`): close waits for
//!   every shell, so that no task is left queued in a backend when the loop shuts down. Not set
//!   on a loop whose shutdown drops every task it holds (`EventLoop::reaps_at_shutdown`, close's
//!   `TaskRef::cancel_now(false)`): there the empty task is neither woken nor waited for, and its
//!   drop at shutdown (or a poll before it) finds it `COMPLETE` and only lets go of the cell.
//! - `TAKEN`: set once, by the `JoinHandle` that took the output (after `COMPLETE`), and read only
//!   by that handle: polled again it panics, and its drop has nothing left to do (no output, no
//!   report).
//! - `JOIN_WAKER`: the handle's waker is stored in the cell. The handle writes the waker only while
//!   this is clear, sets it after writing, and clears it to replace the waker only while
//!   `COMPLETE` is clear (a compare-and-swap); `complete` reads the waker only when the
//!   `fetch_or` that sets `COMPLETE` returns it set. Never both at once: no lock.
//! - `DETACHED`: set once, by the handle's drop when it did not take the output. If the `fetch_or`
//!   that sets it returns `COMPLETE`, the handle drops the output; otherwise `complete` sees it
//!   (before storing the output, or in the word its own `fetch_or` returns) and drops or reports
//!   the output itself. Exactly one of them does.
//! - `SCHEDULED`: only for a task on the runner's own queue (`Header::own`). Set by the task's
//!   waker ([`State::schedule`]); the waker that sets it finding none of it, `COMPLETE` and
//!   `RUNNING` queues the cell, so a task is queued at most once. Cleared by the poll that takes
//!   the cell off the queue ([`poll_own`]), in the same step as it takes `RUNNING`, before the
//!   future is polled. A wake during the poll (from any thread) only sets it, and the poll
//!   queues the task again as it lets go of `RUNNING`: so on a multi-thread loop, where pumps
//!   on several workers take cells off one queue, no two polls of a task overlap. Close finding
//!   a pump's poll holding `RUNNING` sets it with `ABORTED` in one step (`close_take_for_cancel`).
//!
//! Transitions: `0 -> ABORTED -> ABORTED|COMPLETE`, `0 -> COMPLETE`, and, for close,
//! `ABORTED -> ABORTED|SHELL|COMPLETE -> ABORTED|COMPLETE`; `RUNNING` comes and goes around each
//! poll; `JOIN_WAKER` comes and goes until `COMPLETE`, then stays; `TAKEN` or `DETACHED` (never
//! both) is added once, by the handle.

#[cfg(loom)]
use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;

/// The task was cancelled: its next poll drops its future.
const ABORTED: u8 = 1;
/// The task has ended and its output (or error) is stored.
const COMPLETE: u8 = 2;
/// Close dropped the future in place; the backend's task is an empty shell that close waits to
/// see polled (or dropped) once, so that no shell is left queued when the loop shuts down.
const SHELL: u8 = 4;
/// The join handle took the output.
const TAKEN: u8 = 8;
/// A `Send` task's future is being polled or dropped, by its holder alone.
const RUNNING: u8 = 16;
/// The join handle's waker is stored: only read, by either side, while this is set.
const JOIN_WAKER: u8 = 32;
/// The join handle was dropped without taking the output.
const DETACHED: u8 = 64;
/// A task on the runner's own queue (`Header::own`) is queued there, to be polled once: set by
/// its waker on the transition that queues it, cleared by the poll that takes it off.
const SCHEDULED: u8 = 128;

/// A task's state word (see the module's docs for each bit).
pub(crate) struct State(AtomicU8);

/// The word as one transition found it (or left it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(u8);

impl Snapshot {
    #[inline(always)]
    pub(crate) fn is_aborted(self) -> bool {
        self.0 & ABORTED != 0
    }

    #[inline(always)]
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }

    #[inline(always)]
    pub(crate) fn is_shell(self) -> bool {
        self.0 & SHELL != 0
    }

    #[inline(always)]
    pub(crate) fn is_taken(self) -> bool {
        self.0 & TAKEN != 0
    }

    #[inline(always)]
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }

    #[inline(always)]
    pub(crate) fn has_join_waker(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }

    #[inline(always)]
    pub(crate) fn is_detached(self) -> bool {
        self.0 & DETACHED != 0
    }

    #[inline(always)]
    pub(crate) fn is_scheduled(self) -> bool {
        self.0 & SCHEDULED != 0
    }
}

/// [`State::try_take_running`]'s outcome.
#[must_use]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Running {
    /// `RUNNING` was clear and is now the caller's; `aborted`: the word had `ABORTED`.
    Taken { aborted: bool },
    /// Someone else holds it (close, dropping the future in place).
    Busy,
}

/// [`State::close_take_for_cancel`]'s outcome.
#[must_use]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CancelNow {
    /// `RUNNING` (and `ABORTED`, and `SHELL` if asked) set in one step: the future is close's to
    /// drop.
    Taken,
    /// Held by a poll or drop right now: `ABORTED` is set instead, and the caller wakes the task.
    Busy,
    /// The task has ended: nothing to cancel.
    Done,
}

impl State {
    /// A task's word at construction: `ABORTED` for a task born cancelled.
    #[inline(always)]
    pub(crate) fn new(aborted: bool) -> Self {
        State(AtomicU8::new(if aborted { ABORTED } else { 0 }))
    }

    /// The word of a task on the runner's own queue, queued at spawn for its first poll:
    /// `SCHEDULED`, and `ABORTED` when it is born cancelled (one store with the rest of the
    /// header, rather than a `set_scheduled_unshared` after it, which only the loom models use).
    #[inline(always)]
    pub(crate) fn new_scheduled(aborted: bool) -> Self {
        State(AtomicU8::new(SCHEDULED | if aborted { ABORTED } else { 0 }))
    }

    /// Sets `SCHEDULED` before the cell is shared (a task on the runner's own queue, queued once
    /// at spawn for its first poll). The engine builds such a word whole, with
    /// [`new_scheduled`](Self::new_scheduled); the loom models start from a plain one.
    #[cfg(all(test, loom))]
    pub(crate) fn set_scheduled_unshared(&mut self) {
        self.0.with_mut(|s| *s |= SCHEDULED);
    }

    #[inline(always)]
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_aborted(&self) -> bool {
        self.load().is_aborted()
    }

    #[inline]
    pub(crate) fn is_complete(&self) -> bool {
        self.load().is_complete()
    }

    /// `TAKEN`, read only by the handle that sets it: a relaxed load sees its own earlier store.
    #[inline(always)]
    pub(crate) fn is_taken_by_me(&self) -> bool {
        Snapshot(self.0.load(Ordering::Relaxed)).is_taken()
    }

    /// Sets `ABORTED`: true on the transition from neither `ABORTED` nor `COMPLETE`, when the
    /// caller must wake the task (so that it is woken for it at most once).
    #[inline]
    #[must_use]
    pub(crate) fn abort(&self) -> bool {
        self.0.fetch_or(ABORTED, Ordering::AcqRel) & (ABORTED | COMPLETE) == 0
    }

    /// Takes `RUNNING` to poll the future (`Cell::drive`).
    #[inline(always)]
    pub(crate) fn try_take_running(&self) -> Running {
        let prev = Snapshot(self.0.fetch_or(RUNNING, Ordering::AcqRel));
        if prev.is_running() {
            Running::Busy
        } else {
            Running::Taken {
                aborted: prev.is_aborted(),
            }
        }
    }

    /// Takes `RUNNING` to drop the future (`Cell::release`), unless the task is complete (the
    /// future is gone, and `RUNNING` is not taken) or someone else holds it (close, dropping the
    /// future; the backend never drops and polls one task at once): true when taken.
    #[inline(always)]
    pub(crate) fn try_take_running_to_drop(&self) -> bool {
        !self.is_complete() && !Snapshot(self.0.fetch_or(RUNNING, Ordering::AcqRel)).is_running()
    }

    /// Lets go of `RUNNING`: the word as it was just before (a `SHELL` close made meanwhile, an
    /// `ABORTED` set during the poll).
    #[inline(always)]
    pub(crate) fn release_running(&self) -> Snapshot {
        Snapshot(self.0.fetch_and(!RUNNING, Ordering::AcqRel))
    }

    /// Close's in-place cancel: takes `RUNNING` together with `ABORTED` (and `SHELL` with
    /// `leave_shell`) in one step when nobody holds it and the task has not ended; finding it
    /// held, sets `ABORTED` only.
    ///
    /// `own`: a task on the runner's own queue, which registers no waker. Found held (a pump's
    /// poll on a multi-thread loop), it gets `SCHEDULED` with `ABORTED`, in one step that requires
    /// `RUNNING` still held: the poll queues it again as it lets go ([`poll_own`]), and its next
    /// poll drops the future. Let go meanwhile, the loop goes round and close takes it.
    #[inline(always)]
    pub(crate) fn close_take_for_cancel(&self, leave_shell: bool, own: bool) -> CancelNow {
        let shell_bit = if leave_shell { SHELL } else { 0 };
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            if cur & COMPLETE != 0 {
                return CancelNow::Done;
            }
            let (next, outcome) = if cur & RUNNING == 0 {
                (cur | ABORTED | RUNNING | shell_bit, CancelNow::Taken)
            } else if own {
                (cur | ABORTED | SCHEDULED, CancelNow::Busy)
            } else {
                self.0.fetch_or(ABORTED, Ordering::AcqRel);
                return CancelNow::Busy;
            };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return outcome,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Clears `SHELL`: true on the transition, when the caller tells close (one load on the
    /// per-poll path, where there is no shell).
    #[inline(always)]
    pub(crate) fn take_shell(&self) -> bool {
        self.load().is_shell() && self.take_shell_slow()
    }

    #[cold]
    fn take_shell_slow(&self) -> bool {
        Snapshot(self.0.fetch_and(!SHELL, Ordering::AcqRel)).is_shell()
    }

    /// Sets `SCHEDULED`: true on the transition from none of it, `COMPLETE` and `RUNNING`, when
    /// the caller must queue the cell (so that it is queued at most once). Set while `RUNNING` is
    /// held, the cell is queued by the holder as it lets go ([`poll_own`]).
    #[inline(always)]
    #[must_use]
    pub(crate) fn schedule(&self) -> bool {
        self.0.fetch_or(SCHEDULED, Ordering::AcqRel) & (SCHEDULED | COMPLETE | RUNNING) == 0
    }

    /// The own queue's poll took the cell off the queue: clears `SCHEDULED` and takes `RUNNING`
    /// in one step, unless close holds `RUNNING` (on a multi-thread loop, dropping the future
    /// from the loop's thread while a pump takes the cell off the queue on a worker): then it
    /// clears `SCHEDULED` only, and close completes the task. The word as it was; `RUNNING` in
    /// it says the poll has nothing to do. Only one poll takes a cell off the queue at a time (it
    /// is queued at most once, and never while a poll holds `RUNNING`).
    #[inline(always)]
    pub(crate) fn take_scheduled_and_running(&self) -> Snapshot {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            // Checked in the loom models too, which run in release mode.
            if cfg!(any(debug_assertions, loom)) {
                assert!(cur & SCHEDULED != 0, "a cell off the queue is scheduled");
            }
            let next = if cur & RUNNING != 0 {
                cur & !SCHEDULED
            } else {
                (cur & !SCHEDULED) | RUNNING
            };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Snapshot(cur),
                Err(actual) => cur = actual,
            }
        }
    }

    /// `complete`'s first look: the word, checked not to be `COMPLETE` (the output is written
    /// without a lock on the strength of this: a second call would race with the handle taking
    /// the first output).
    #[inline]
    pub(crate) fn before_complete(&self) -> Snapshot {
        let cur = self.load();
        assert!(!cur.is_complete(), "a task completes once");
        cur
    }

    /// Sets `COMPLETE` (after the output is stored): the word as it was, whose `DETACHED` or
    /// `JOIN_WAKER` says who the output and the handle's waker are for.
    #[inline]
    pub(crate) fn set_complete(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(COMPLETE, Ordering::AcqRel))
    }

    /// Clears `JOIN_WAKER` so that the handle may replace its waker, only while `COMPLETE` is
    /// clear (`complete` may be reading it once it is): `Err` with the word once complete.
    #[inline]
    pub(crate) fn unset_join_waker(&self, mut cur: Snapshot) -> Result<(), Snapshot> {
        while !cur.is_complete() {
            match self.0.compare_exchange_weak(
                cur.0,
                cur.0 & !JOIN_WAKER,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = Snapshot(actual),
            }
        }
        Err(cur)
    }

    /// Sets `JOIN_WAKER` once the handle wrote its waker: `Err` with the word when `COMPLETE`
    /// was set before (then `complete` did not see the waker, and the output is there).
    #[inline]
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        let prev = Snapshot(self.0.fetch_or(JOIN_WAKER, Ordering::AcqRel));
        if prev.is_complete() {
            Err(prev)
        } else {
            Ok(())
        }
    }

    /// The handle took the output.
    #[inline]
    pub(crate) fn set_taken(&self) {
        self.0.fetch_or(TAKEN, Ordering::Relaxed);
    }

    /// The handle is dropped before it took the output: true when the task was complete (the
    /// output is the handle's to drop), false when `complete` will see `DETACHED`.
    #[inline]
    #[must_use]
    pub(crate) fn set_detached(&self) -> bool {
        Snapshot(self.0.fetch_or(DETACHED, Ordering::AcqRel)).is_complete()
    }
}

/// What the protocols of a `Send` task's future need of whoever runs them: the real cell
/// (harness.rs) or a loom model's stand-in.
pub(crate) trait Holder {
    /// Drops the future, if it is still there, and completes the task cancelled.
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING`. With `in_scope`, the task's runner is already the
    /// thread-local scope's current one (close's drive), and the drop need not enter it again.
    unsafe fn cancel(&self, in_scope: bool);

    /// Wakes the waker of the task's last pending poll (`Header::driver`), if any.
    fn wake_driver(&self);

    /// Close made the backend's task a shell: counted for close to wait for.
    fn shell_made(&self);

    /// The backend is done with a shell: tell close.
    fn shell_done(&self);
}

/// What a poll of the backend's task needs besides its [`Holder`]: the future and the poll's
/// waker.
pub(crate) trait Poller {
    /// Polls the future, or drops it when `aborted`, and completes the task once it ends.
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING`.
    unsafe fn poll(&mut self, aborted: bool) -> Poll<()>;

    /// Registers the poll's waker as the task's (`Header::driver`).
    fn register(&mut self);

    /// Wakes the poll's waker.
    fn wake_self(&mut self);
}

/// A poll of the backend's task (`Cell::drive`): takes `RUNNING`, polls the future, lets go, and
/// tells close if the task was a shell.
///
/// The waker is registered (for `abort` and close) only when the task stays pending, before
/// `RUNNING` is let go: a task that ends on its first poll never registers one. Whoever sets
/// `ABORTED` after that release finds the waker (both are read-modify-writes of the state word,
/// in one order); an abort during the poll is seen in the word the release returns, and the task
/// wakes itself.
#[inline(always)]
pub(crate) fn drive(state: &State, holder: &impl Holder, poller: &mut impl Poller) -> Poll<()> {
    let Running::Taken { aborted } = state.try_take_running() else {
        // Close holds the future (`cancel_now`; the backend never polls one task twice at once):
        // it wakes the task once it lets go, and that poll finds the shell. Checked again after
        // registering: had close let go and woken before the registration (the waker's own
        // read-modify-writes order the two), the task wakes itself.
        poller.register();
        if !state.load().is_running() {
            poller.wake_self();
        }
        return Poll::Pending;
    };
    // SAFETY: `RUNNING` was clear and `try_take_running` set it: it is held here until
    // `release_running` below.
    let out = unsafe { poller.poll(aborted) };
    if out.is_pending() {
        poller.register();
    }
    let after = state.release_running();
    if after.is_shell() {
        shell_done(state, || holder.shell_done());
    }
    if out.is_pending() && after.is_aborted() {
        // Aborted (or flagged by close) during this poll: the next poll drops the future.
        poller.wake_self();
    }
    out
}

/// The backend dropped its task (`Cell::release`). Before it completed (a loop shutting down),
/// the future is dropped here, and the task ends cancelled. Once completed, the future is gone
/// (`COMPLETE` is set only after it was dropped) and `RUNNING` is not taken. Finding `RUNNING`
/// taken, by close (which drops the future): close took it and set `SHELL` in one step, so this
/// drop is the shell's, counted by `shell_done`.
#[inline(always)]
pub(crate) fn release(state: &State, holder: &impl Holder) {
    if state.try_take_running_to_drop() {
        // SAFETY: `RUNNING` was clear and `try_take_running_to_drop` set it: it is held here
        // until `release_running` below.
        unsafe { holder.cancel(false) };
        let _ = state.release_running();
    }
    shell_done(state, || holder.shell_done());
}

/// The backend is done with a shell (see `SHELL`): `tell` close, once.
#[inline(always)]
pub(crate) fn shell_done(state: &State, tell: impl FnOnce()) {
    if state.take_shell() {
        tell();
    }
}

/// Close's in-place cancel (`TaskRef::cancel_now`): the future is dropped here when nobody holds
/// it; a poll holding it is flagged `ABORTED` and its task woken, so that its next poll drops it.
///
/// With `leave_shell` (a loop whose shutdown does not drop its tasks), the backend's task of a
/// future dropped here is made a shell (see `SHELL`), counted, and woken, for close to wait for;
/// without, it is left as it is (idle, or queued from an earlier wake) for the loop's shutdown to
/// drop (`EventLoop::reaps_at_shutdown`): its drop ([`release`]), or a poll before that, finds the
/// task `COMPLETE` and only lets go of the cell. `own`: a task on the runner's own queue, which
/// has no backend task (no shell). On a current-thread loop it is never found running (only its
/// poll, on the loop's thread, and close, on the same thread outside any poll, take `RUNNING`);
/// on a multi-thread loop a pump's poll may hold it, and queues it again as it lets go (see
/// [`State::close_take_for_cancel`]). `in_scope`: the
/// caller (close's drive) made the task's runner the scope's current one already.
#[inline(always)]
pub(crate) fn cancel_now(
    state: &State,
    holder: &impl Holder,
    leave_shell: bool,
    in_scope: bool,
    own: bool,
) {
    // `SHELL` in the same step as `RUNNING`: a drop of the backend's task that finds `RUNNING`
    // taken by close (`release`) knows it is the shell's drop. Left queued, a task on the
    // runner's own queue finds itself complete on its next turn.
    let shell = leave_shell && !own;
    match state.close_take_for_cancel(shell, own) {
        CancelNow::Done => {}
        CancelNow::Busy if own => {
            // A pump's poll holds it (multi-thread loops only): it queues the task again as it
            // lets go, `SCHEDULED` having been set with `ABORTED` while it held `RUNNING`.
        }
        CancelNow::Busy => {
            // Being polled (or dropped) on another thread right now: that poll's next turn sees
            // the flag; make sure there is one.
            holder.wake_driver();
        }
        CancelNow::Taken => {
            // Counted once the shell is marked: a shell's drop on another thread in between
            // takes one off before this adds it (the count wraps for that moment), and close
            // reads the count only once every `cancel_now` has returned.
            if shell {
                holder.shell_made();
            }
            // SAFETY: `RUNNING` was clear and `close_take_for_cancel` set it: it is held here
            // until `release_running` below.
            unsafe { holder.cancel(in_scope) };
            let _ = state.release_running();
            if shell {
                holder.wake_driver();
            }
        }
    }
}

/// A poll of a task on the runner's own queue (`OwnTask::poll_own`), by the loop's thread (a
/// current-thread loop) or a pump (a multi-thread loop's worker): clears `SCHEDULED` and takes
/// `RUNNING` in one step, polls the future (`poll(aborted)`), lets go, and returns true if
/// the task was woken (or aborted, or flagged by close) meanwhile, for the caller to queue it
/// again: a wake that finds `RUNNING`
/// held sets `SCHEDULED` and queues nothing, so that no second poll can take the cell off the
/// queue while this one runs. A task close cancelled after it was queued has nothing left to
/// poll; one close is cancelling right now (on a multi-thread loop) is close's to complete.
///
/// `poll` is called with `RUNNING` held: it may use the future. True when the caller must queue
/// the task again.
#[inline(always)]
#[must_use]
pub(crate) fn poll_own(state: &State, poll: impl FnOnce(bool)) -> bool {
    let prev = state.take_scheduled_and_running();
    if prev.is_running() {
        return false;
    }
    if !prev.is_complete() {
        poll(prev.is_aborted());
    }
    let after = state.release_running();
    after.is_scheduled() && !after.is_complete()
}

/// A wake of a task on the runner's own queue: true when the caller must queue the cell (not
/// when a poll holds it: that poll queues it as it lets go, see [`poll_own`]).
#[inline(always)]
pub(crate) fn wake_own(state: &State) -> bool {
    state.schedule()
}

/// `JoinHandle::abort` of a task on the runner's own queue, which registers no waker: true when
/// the caller must queue the cell (the first abort of a task neither complete nor queued).
#[inline]
pub(crate) fn abort_own(state: &State) -> bool {
    state.abort() && state.schedule()
}

/// The slots of a task's cell that the state word guards for the join hand-over: the output and
/// the join handle's waker (`Task`, cell.rs, or a loom model's stand-ins). Each method says when
/// it may be called; [`complete`], [`poll_join`] and [`detach`] call them only then.
pub(crate) trait JoinSlots {
    /// The output as the handle reads it.
    type Output;
    /// The output as it is stored (it may say that a panic was already reported).
    type Stored;
    /// The handle's waker.
    type Waker: ?Sized;

    /// Stores the output.
    ///
    /// # Safety
    ///
    /// Before `COMPLETE`, by `complete` alone.
    unsafe fn store(&self, out: Self::Stored);

    /// Takes what is left to report or drop of an output nobody read.
    ///
    /// # Safety
    ///
    /// The output is the caller's: `COMPLETE` and `DETACHED` are both set, and the caller saw
    /// the other one set in the word its own read-modify-write returned.
    unsafe fn take_unread(&self) -> Option<Self::Output>;

    /// Takes the output, for the handle.
    ///
    /// # Safety
    ///
    /// The handle saw `COMPLETE` (acquire), and `DETACHED` is clear.
    unsafe fn take(&self) -> Option<Self::Output>;

    /// Wakes the handle's stored waker.
    ///
    /// # Safety
    ///
    /// `JOIN_WAKER` and `COMPLETE` are both set: the waker is only read.
    unsafe fn wake_join(&self);

    /// Whether the stored waker would wake `waker`.
    ///
    /// # Safety
    ///
    /// `JOIN_WAKER` is set: the waker is only read.
    unsafe fn same_waker(&self, waker: &Self::Waker) -> bool;

    /// Stores `waker` as the handle's.
    ///
    /// # Safety
    ///
    /// By the handle, while `JOIN_WAKER` is clear (then `complete` does not touch the waker).
    unsafe fn set_waker(&self, waker: &Self::Waker);
}

/// Hands the output to the join handle (`Task::complete`, once the registry counted the task):
/// stores `stored(result)` and sets `COMPLETE`, waking the handle's waker; or gives `result`
/// back, to be dropped or reported by the caller, when the handle was dropped first (`DETACHED`,
/// before the output was stored or before `COMPLETE`).
///
/// # Panics
///
/// When the task was complete already (a second call would race with the handle taking the
/// first output).
#[inline]
pub(crate) fn complete<S: JoinSlots>(
    state: &State,
    slots: &S,
    result: S::Output,
    stored: impl FnOnce(S::Output) -> S::Stored,
) -> Option<S::Output> {
    if state.before_complete().is_detached() {
        // Ended all the same: the future is gone. Close's in-place cancel (`cancel_now`) and
        // the backend's drop of its task (`release`) must see it, or close would make a shell
        // of a task whose backend task has finished, and wait for that shell forever.
        let _ = state.set_complete();
        return Some(result);
    }
    // SAFETY: before `COMPLETE` the output is this call's alone: the handle reads it only once
    // it has seen `COMPLETE`, and `complete` runs once.
    unsafe { slots.store(stored(result)) };
    // After the output is stored: `is_finished()` then means the output is there to take.
    let prev = state.set_complete();
    if prev.is_detached() {
        // SAFETY: the handle was dropped before `COMPLETE` (it saw none, so it left the output
        // alone): the output is still this call's.
        unsafe { slots.take_unread() }
    } else {
        if prev.has_join_waker() {
            // SAFETY: `JOIN_WAKER` and `COMPLETE` are both set: the handle writes the waker no
            // more, so it is only read.
            unsafe { slots.wake_join() };
        }
        None
    }
}

/// The join handle's poll (`Task::poll_join`): the output once `COMPLETE` is set, or `waker`
/// stored (replacing a different one) for `complete` to wake.
///
/// # Panics
///
/// Once the output was taken.
#[inline]
pub(crate) fn poll_join<S: JoinSlots>(
    state: &State,
    slots: &S,
    waker: &S::Waker,
) -> Poll<S::Output> {
    let cur = state.load();
    // Only the handle sets `TAKEN`: the load sees its own earlier store.
    assert!(
        !cur.is_taken(),
        "`JoinHandle` polled after it completed: await it once"
    );
    if !cur.is_complete() {
        let mut waker_unset = !cur.has_join_waker();
        if cur.has_join_waker() {
            // SAFETY: `JOIN_WAKER` is set: the waker is only read, by either side.
            if unsafe { slots.same_waker(waker) } {
                // `complete` wakes it, whenever it sets `COMPLETE`.
                return Poll::Pending;
            }
            // Taken back to be replaced, only while the task is not complete (`complete` may be
            // reading it once it is).
            waker_unset = state.unset_join_waker(cur).is_ok();
        }
        if waker_unset {
            // SAFETY: `JOIN_WAKER` is clear and only this handle sets it: `complete` does not
            // touch the waker.
            unsafe { slots.set_waker(waker) };
            // `complete` sets `COMPLETE` after this (and then wakes the waker), or before (and
            // this sees it).
            if state.set_join_waker().is_ok() {
                return Poll::Pending;
            }
        }
    }
    // SAFETY: `COMPLETE` was seen (acquire): the output was stored before it, and `complete`
    // touches it again only if `DETACHED` is set, which only this handle's drop sets.
    let out = unsafe { slots.take() };
    state.set_taken();
    Poll::Ready(out.expect("a completed task's output is taken once"))
}

/// The join handle is dropped before it took the output (`Task::detach`): what is left of an
/// output already there, for the caller to drop or report; nothing when `complete` has yet to
/// run (it sees `DETACHED` and keeps the output).
#[inline]
pub(crate) fn detach<S: JoinSlots>(state: &State, slots: &S) -> Option<S::Output> {
    if !state.set_detached() {
        return None;
    }
    // SAFETY: `COMPLETE` was seen (acquire) without `DETACHED` before it: `complete` is done
    // with the output, which is the handle's.
    unsafe { slots.take_unread() }
}
