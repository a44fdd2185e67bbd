//! The task registry: every task a runner tracks, kept in shards, and close's handshake with the
//! spawns and completions that race it.
//!
//! Spawning a task adds it (`register`), its end removes it (`deregister`): each takes the lock
//! of one shard only, so threads that spawn at the same time do not wait for each other. A
//! task's key names its shard (the low bits) and its place in the shard's slab (the rest). A
//! thread's spawns go round the shards, each thread from its own starting shard (threads are
//! numbered as they first spawn), as tokio's task lists are sharded by task id: a thread spawning
//! in a burst while the loop's workers end its earlier tasks (which take the shard of each task,
//! whichever thread ends it) then rarely meets them at one lock. Sending each thread's spawns to
//! one shard measured the contended lock as the top of the profile on a multi-thread loop. There are a power of two of shards, more the more threads can run
//! at once (see `shard_count`); a current-thread loop's registry has one, and a spawn there
//! looks up no home shard. A current-thread loop's registry also has a side without a lock for
//! the loop's own thread: see "The loop's side".
//!
//! # Entries without a count
//!
//! An entry is a pointer to the task (`Entry`, 16 bytes), and most entries hold no reference
//! count: a spawn clones no `Arc` into the registry, and a task's end drops none. That is sound
//! because a task always leaves the registry (`deregister`, under its shard's lock) before its
//! allocation can be freed: the cell of a task the backend runs ends before the backend's task
//! lets go of it (its drop cancels and completes a task that has not ended), a local task's
//! header ends before its driver lets go of it (the same way), and nothing that can fail runs
//! between a registration and the making of that owner. The task ends while that owner still
//! holds its count (in the owner's drop, before the count goes), never in the task's own
//! destructor: that runs once the last count is gone, and a count close took meanwhile would
//! bring a task being freed back. Close never uses an entry as it is: it
//! takes a count of each task *under the shard's lock*, while it finds the entry there (the task
//! has not left, so it is alive), and cancels the task through that count. A task on the runner's
//! own queue is the exception: nothing else keeps a pending one alive once no waker and no handle
//! hold it, so its entry holds a count, given back when it leaves.
//!
//! # The loop's side
//!
//! On a current-thread loop nearly every task is a cell on the runner's own queue spawned from
//! the loop's thread, inside the runner's run or close, and it ends there too. Those tasks are
//! kept apart, on the registry's *loop side* (`LoopSide`): a slab in an `UnsafeCell` and the
//! outcomes counted there in plain fields, with no lock and no read-modify-write to register or
//! end a task. Its keys carry `HERE` (the low bit; the shard's keys are shifted past it), so
//! `deregister` tells the two apart. Who may reach it (the invariant every `unsafe` there names,
//! "the calling thread has the loop's side to itself"):
//!
//! - `register_here`: a spawn of a cell on the runner's own queue from the thread whose scope
//!   owner (`scope::Origin::inside`) is the runner, that is, inside its run or close. Only one
//!   thread can be inside those at a time (`Runner::run` takes `&mut self`; close consumes the
//!   runner), and a runner moves to another thread only through what hands it over.
//! - `deregister` of a loop-side key: such a cell ends only inside the run or close (polled by
//!   the own queue's drive, which runs only there, or cancelled in place by close), or in
//!   `close::abandon`, which has the runner to itself (no run or close is under way; it cancels
//!   what `abandon` returned). Nothing else ends it: its owned entry keeps it alive until then.
//! - close's methods (`begin_grace`, `seal_if_idle`, `begin_cancelling`, `poll_drained`,
//!   `outcomes`, `abandon`): called by the closing thread, which has the runner to itself.
//!
//! Every other spawn (a `LoopHandle`, a blocking job, another runner's task, a local task, a
//! spawn between runs) goes to the shard, under its lock, as on a multi-thread loop, and ends
//! there from wherever it ends. A multi-thread loop's registry has no loop side.
//!
//! # The phase
//!
//! Close moves the registry through its phases, in this order and only forward; every transition
//! is made by the closing thread:
//!
//! - `Open`: spawns are accepted; a task that ends is not counted.
//! - `Grace` (`begin_grace`): close has begun. Spawns are still accepted; a task that ends from
//!   now on is counted in the outcomes.
//! - `Cancelling` (`begin_cancelling`, which returns every task then alive, for close to cancel):
//!   only spawns from the runner's own loop are accepted, born cancelled; any other spawn is
//!   refused, so that threads which keep spawning cannot keep close from ever returning.
//! - `Closed` (`poll_drained` with `seal`, once no task is left, or `abandon`): every spawn is
//!   refused.
//!
//! # Why no spawn slips past close
//!
//! A spawn reads the phase *under its shard's lock*, and close changes the phase *before* it
//! locks each shard to collect its tasks. So for each shard, either the spawn's critical section
//! comes first and close finds the task there, or it comes second and the spawn sees the new
//! phase (the lock orders the two). Sealing checks that every shard is empty and stores `Closed`
//! while it holds every shard's lock at once: a spawn either added its task before (the shard is
//! not empty, nothing is sealed) or sees `Closed` and is refused.
//!
//! The loop side needs no lock for this: its spawns are made by the closing thread itself
//! (inside close) or before close had the runner, so they are ordered with close's phase
//! changes, its collection and its seal by program order (and a loop spawn is accepted while
//! cancelling anyway, born cancelled). The seal looks at the loop side first: empty then, it
//! stays empty while the shards' locks are taken, since only this thread could add to it.
//!
//! # Counting and waking
//!
//! A task's outcome is counted at one point, in `deregister`, when it leaves its shard while the
//! phase is past `Open`: never twice (a task leaves once), and never after it was joined (the task
//! cell calls `deregister` before its output can be seen; a task joined before close began read
//! `Open` here). Close reads the counts once every shard is empty, which it saw under each
//! shard's lock, so it sees every count made before. The loop side's counts are plain fields,
//! written and read by the thread that has the loop side to itself: close's, or one that handed
//! the runner over to it.
//!
//! Close waits for the shards to empty with `poll_drained`, which stores its waker and *then*
//! looks at the shards. A task that empties a shard while close is under way takes that waker
//! after it unlocked the shard: if close looked at the shard before the task left it, its waker
//! was stored before, and the task finds it. A shard emptied while the phase was still `Open` is
//! seen empty by close, which sets the phase before it first looks. The loop side is one more
//! shard here: the task that empties it while close is under way takes the waker the same way
//! (on close's own thread, between close's polls).

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::task::{Context as TaskCx, Poll, Waker};
use std::time::Instant;

use slab::Slab;

use crate::diagnostic::TaskInfo;
use crate::error::SpawnError;

#[cfg(loom)]
use ::loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(loom)]
use ::loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard};

#[cfg(test)]
mod fake;
#[cfg(all(test, loom))]
mod loom;

/// Where close is: see the module docs. Only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Open = 0,
    Grace = 1,
    Cancelling = 2,
    Closed = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Open,
            1 => Phase::Grace,
            2 => Phase::Cancelling,
            _ => Phase::Closed,
        }
    }
}

/// Outcomes of the tasks that ended while the runner was closing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcomes {
    pub(crate) finished: usize,
    pub(crate) cancelled: usize,
    pub(crate) panicked: usize,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Finished,
    Cancelled,
    Panicked,
}

/// What close reaches of a task, through a count it took of the task's entry: enough to cancel
/// it and describe it.
pub(crate) trait TaskRef: Send + Sync + 'static {
    fn info(&self) -> TaskInfo;

    fn spawned_at(&self) -> Option<Instant>;

    /// Marks the task cancelled and wakes it, so that its next poll drops its future.
    fn abort(&self);

    /// Cancels the task now, on the calling thread (close's, with the runner installed):
    /// drops its future in place when nobody is polling it, or else makes sure its next poll
    /// drops it. The default, for tasks whose future lives elsewhere (local tasks), aborts it.
    ///
    /// With `leave_shell`, the backend's task of a future dropped in place is made a shell for
    /// close to wake and wait for (see `task::state`'s `SHELL`); without (a loop whose shutdown
    /// drops every task it still holds, `EventLoop::reaps_at_shutdown`), it is left as it is,
    /// neither made a shell nor woken, for that shutdown to drop.
    ///
    /// With `in_scope`, the caller (close's drive, `close::drive_close`) made the task's runner
    /// the thread-local scope's current one, with a loop marked as running: a future dropped
    /// here need not enter it again.
    fn cancel_now(&self, leave_shell: bool, in_scope: bool) {
        let _ = (leave_shell, in_scope);
        self.abort();
    }
}

#[cfg(loom)]
pub(crate) use ::loom::sync::Arc as TaskArc;
/// The reference-counted pointer of the tasks the registry reaches: `std`'s, except in the
/// registry's loom model, where loom's finds a count taken of a task already freed.
#[cfg(not(loom))]
pub(crate) use std::sync::Arc as TaskArc;

/// A registry entry: where a task is, 16 bytes, mostly without a reference count of its own.
///
/// A *borrowed* entry ([`Entry::borrowed`]) holds no count: the task keeps its allocation alive
/// itself until it has left the registry (`deregister`, under its shard's lock), so a spawn and a
/// task's end cost no reference counting here. An *owned* entry ([`Entry::owned`]) holds one,
/// given back when the task leaves: for a task that nothing else may keep alive until close
/// cancels it (a task on the runner's own queue that no waker and no handle hold any more).
/// Close reaches a task only through a count it takes under the shard's lock while it finds the
/// entry there (`snapshot`): the task has not left, so its allocation is alive.
///
/// The low bit of the data pointer (a task is at least 2-aligned) marks an owned entry.
pub(crate) struct Entry(NonNull<dyn TaskRef>);

/// The low bit of an owned entry's data pointer.
const OWNED: usize = 1;

// SAFETY: an entry is a pointer to a task that is `Send + Sync` (`TaskRef`'s bounds), used only
// as `Entry`'s methods say, under its shard's lock or by the one that removed it.
unsafe impl Send for Entry {}

impl Entry {
    /// An entry without a reference count, for the task at `task` ([`TaskArc::as_ptr`]).
    ///
    /// # Safety
    ///
    /// `task` points into a live [`TaskArc`] allocation, and the task must leave the registry
    /// (`Registry::deregister` with the key `register` gave it) before the last count of that
    /// allocation is dropped: whatever holds the task until then must make it end first,
    /// whichever way it ends (completed, cancelled, dropped by a backend that shuts down, or a
    /// panic before anything polls it).
    #[inline]
    pub(crate) unsafe fn borrowed<T: TaskRef>(task: *const T) -> Entry {
        Entry::tagged(task, 0)
    }

    /// An entry that holds the reference count `task` stands for, given back when the task
    /// leaves.
    ///
    /// # Safety
    ///
    /// `task` comes from [`TaskArc::into_raw`], and its count is the entry's from now on.
    #[inline]
    pub(crate) unsafe fn owned<T: TaskRef>(task: *const T) -> Entry {
        Entry::tagged(task, OWNED)
    }

    /// `task`'s pointer, erased to `dyn TaskRef`, with `tag` in its free low bit.
    #[inline]
    fn tagged<T: TaskRef>(task: *const T, tag: usize) -> Entry {
        const {
            assert!(
                std::mem::align_of::<T>() > OWNED,
                "the tag needs a free low bit"
            )
        };
        let task = task as *const dyn TaskRef;
        let tagged = task.map_addr(|a| a | tag).cast_mut();
        Entry(NonNull::new(tagged).expect("an `Arc`'s pointer is not null"))
    }

    /// The task's pointer, as [`TaskArc::as_ptr`] gives it.
    #[inline]
    fn ptr(&self) -> *const dyn TaskRef {
        self.0.as_ptr().cast_const().map_addr(|a| a & !OWNED)
    }

    /// A new reference count of the task: for close, under the task's shard lock, while the
    /// entry is in the shard.
    #[inline]
    fn counted(&self) -> TaskArc<dyn TaskRef> {
        let ptr = self.ptr();
        // SAFETY: the entry is in its shard, looked at under the shard's lock: the task has not
        // left the registry, so its allocation is alive with a count (a borrowed entry's task
        // leaves before its last count goes, see `borrowed`; an owned entry holds one), and
        // `ptr` is the `Arc`'s own pointer. The new count is the `Arc` made from it.
        unsafe {
            TaskArc::increment_strong_count(ptr);
            TaskArc::from_raw(ptr)
        }
    }
}

impl Drop for Entry {
    /// An owned entry gives its count back: after the shard's lock is let go (`deregister`),
    /// since the count may be the task's last and dropping a task runs user code.
    #[inline]
    fn drop(&mut self) {
        if self.0.as_ptr().addr() & OWNED != 0 {
            // SAFETY: an owned entry holds the count `TaskArc::into_raw` kept (`owned`), given
            // back only here, once.
            drop(unsafe { TaskArc::from_raw(self.ptr()) });
        }
    }
}

type Tasks = Slab<Entry>;

/// One shard, padded to 128 bytes so that the locks and slab heads of neighbouring shards are
/// never on one cache line (nor, mostly, on one pair of lines for the adjacent-line prefetcher),
/// and threads spawning into neighbouring shards do not share one. Padded rather than aligned:
/// an over-aligned allocation costs a runner's creation a `memalign`.
struct Shard {
    tasks: Mutex<Tasks>,
    _pad: [u8; SHARD_PAD],
}

const SHARD_PAD: usize = 128usize.saturating_sub(std::mem::size_of::<Mutex<Tasks>>());

impl Shard {
    fn new() -> Self {
        Shard {
            tasks: Mutex::new(Slab::new()),
            _pad: [0; SHARD_PAD],
        }
    }
}

/// A registry's shards: a current-thread loop's one in place (its loop thread registers on its
/// own side, so the shard serves spawns from other threads alone), which saves each runner an
/// allocation and its free; a multi-thread loop's in one boxed slice.
enum Shards {
    One(Shard),
    Many(Box<[Shard]>),
}

impl Shards {
    #[inline]
    fn all(&self) -> &[Shard] {
        match self {
            Shards::One(shard) => std::slice::from_ref(shard),
            Shards::Many(shards) => shards,
        }
    }
}

/// The tasks a runner tracks and where close is: see the module docs.
pub(crate) struct Registry {
    shards: Shards,
    /// `shards.len() - 1`: a key's shard is `key & mask`.
    mask: usize,
    /// `log2(shards.len())`: a key is `slab key << shift | shard`.
    shift: u32,
    /// A [`Phase`], written only by the closing thread.
    phase: AtomicU8,
    /// Close waiting for the shards to empty (`poll_drained`); taken only once the phase is past
    /// `Open`, so it costs the spawn and completion path nothing before close.
    waiter: Mutex<Option<Waker>>,
    finished: AtomicUsize,
    cancelled: AtomicUsize,
    panicked: AtomicUsize,
    /// [`HERE`] in a current-thread loop's registry, whose keys with it set are `here`'s; 0 in
    /// a multi-thread loop's, whose keys all name a shard.
    here_tag: usize,
    /// The loop thread's side of a current-thread loop's registry: see "The loop's side".
    here: LoopSide,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("shards", &self.shards.all().len())
            .field("phase", &self.phase())
            .finish_non_exhaustive()
    }
}

/// Locks a shard or the waiter, ignoring poisoning: nothing that can panic runs under these
/// locks but `register`'s `make`, which leaves the slab untouched if it panics.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many shards a registry gets: a power of two, four per thread that can run at once on a
/// multi-thread loop (as tokio sizes its own task lists), at most 64; one on a current-thread
/// loop, where the loop's thread makes nearly every spawn and every end (only `LoopHandle`s and
/// blocking jobs spawn from other threads), and a spawn then looks up no home shard.
fn shard_count(multi_thread: bool) -> usize {
    if !multi_thread {
        return 1;
    }
    (parallelism() * 4).next_power_of_two().min(64)
}

/// The machine's [`available_parallelism`](std::thread::available_parallelism) (1 if unknown),
/// read once per process: it reads the affinity mask and the cgroup limits (system calls, tens
/// of microseconds).
pub(crate) fn parallelism() -> usize {
    static PARALLELISM: OnceLock<usize> = OnceLock::new();
    *PARALLELISM
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// The shard hint of the calling thread's next spawn, modulo the number of shards: the thread's
/// number (given as it first spawns) plus its spawns so far, so that its spawns go round the
/// shards. Only a hint: any shard would be correct.
fn shard_hint() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    // A spawn from a thread-local destructor, after `NUMBER` is gone, goes to shard 0.
    NUMBER
        .try_with(|n| {
            let mut v = n.get();
            if v == usize::MAX {
                v = NEXT.fetch_add(1, Ordering::Relaxed);
            }
            // The next spawn's: the following shard (never the sentinel).
            n.set(v.wrapping_add(1) & (usize::MAX >> 1));
            v
        })
        .unwrap_or(0)
}

impl Registry {
    /// A registry for a runner whose loop is multi-thread or not.
    pub(crate) fn new(multi_thread: bool) -> Self {
        Registry::build(shard_count(multi_thread), !multi_thread)
    }

    /// A registry with `n` shards, a power of two.
    #[cfg(test)]
    pub(crate) fn with_shards(n: usize) -> Self {
        Registry::build(n, false)
    }

    /// `n` shards, and with `here` the loop thread's side of a current-thread loop's registry,
    /// whose keys carry [`HERE`] (the shards' keys are then shifted past it).
    fn build(n: usize, here: bool) -> Self {
        assert!(
            n.is_power_of_two(),
            "the shard count must be a power of two"
        );
        let shift = n.trailing_zeros() + u32::from(here);
        Registry {
            shards: if n == 1 {
                Shards::One(Shard::new())
            } else {
                Shards::Many((0..n).map(|_| Shard::new()).collect())
            },
            mask: n - 1,
            shift,
            phase: AtomicU8::new(Phase::Open as u8),
            waiter: Mutex::new(None),
            finished: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            panicked: AtomicUsize::new(0),
            here_tag: if here { HERE } else { 0 },
            here: LoopSide::new(),
        }
    }

    fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Moves the phase forward to `to` (never back). Only the closing thread writes the phase.
    fn advance(&self, to: Phase) {
        if self.phase() < to {
            self.phase.store(to as u8, Ordering::Release);
        }
    }

    /// Adds a task to the calling thread's shard. `make` runs under the shard's lock with the
    /// task's key and whether it is born cancelled, and returns the task's entry: the less it
    /// does, the shorter the lock is held (a multi-thread loop's cell is made before, and `make`
    /// only stores its key), since tasks that end on other threads take the same lock. A refused
    /// spawn drops `make` after letting go of the lock.
    ///
    /// Once close is cancelling, only spawns made from the runner's own loop (`from_loop`) are
    /// accepted, born cancelled; any other is refused, as every spawn once the registry is
    /// `Closed`.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] when the spawn is refused.
    pub(crate) fn register<R>(
        &self,
        from_loop: bool,
        make: impl FnOnce(usize, bool) -> (Entry, R),
    ) -> Result<R, SpawnError> {
        // One shard: no thread-local access to find the home shard.
        let shard = if self.mask == 0 {
            0
        } else {
            shard_hint() & self.mask
        };
        self.register_in(shard, from_loop, make)
    }

    /// `register` into shard `shard` (less than the number of shards).
    pub(crate) fn register_in<R>(
        &self,
        shard: usize,
        from_loop: bool,
        make: impl FnOnce(usize, bool) -> (Entry, R),
    ) -> Result<R, SpawnError> {
        let mut tasks = lock(&self.shards.all()[shard].tasks);
        // Under the shard's lock: see "Why no spawn slips past close".
        let phase = self.phase.load(Ordering::Acquire);
        let cancelled = phase >= Phase::Cancelling as u8;
        if phase == Phase::Closed as u8 || (cancelled && !from_loop) {
            // The refused task (which `make` may hold) is dropped outside the lock: its drop runs
            // user code, which may spawn.
            drop(tasks);
            drop(make);
            return Err(SpawnError::Closed);
        }
        let entry = tasks.vacant_entry();
        let (task, out) = make(entry.key() << self.shift | shard, cancelled);
        entry.insert(task);
        Ok(out)
    }

    /// Removes an ended task and counts its outcome when close is under way; true when it was
    /// (the task ended while the runner was closing).
    ///
    /// The one point where a task's outcome is counted: the task cell calls it before the output
    /// is handed to the join handle, so a task joined before close began is never counted.
    #[must_use]
    #[inline]
    pub(crate) fn deregister(&self, key: usize, outcome: Outcome) -> bool {
        // `usize::MAX` is no key (a blocking job's, which was never registered): it is told
        // only whether close is under way, by the shards' path.
        if key & self.here_tag != 0 && key != usize::MAX {
            // SAFETY: only `register_here` gives a key with the tag, and its caller promised
            // that the task ends only where the loop's side is the calling thread's (see "The
            // loop's side").
            return unsafe { self.deregister_here(key, outcome) };
        }
        self.deregister_shard(key, outcome)
    }

    /// [`deregister`](Self::deregister) of a task in a shard.
    fn deregister_shard(&self, key: usize, outcome: Outcome) -> bool {
        let mut tasks = lock(&self.shards.all()[key & self.mask].tasks);
        // An owned entry's count is given back after the lock is released: it may be the last
        // one, and dropping the task runs user code (the output's destructor).
        let removed = tasks.try_remove(key >> self.shift);
        let closing = self.phase.load(Ordering::Acquire) != Phase::Open as u8;
        if removed.is_some() && closing {
            // Relaxed: close reads the counts after it saw this shard empty under its lock.
            let count = match outcome {
                Outcome::Finished => &self.finished,
                Outcome::Cancelled => &self.cancelled,
                Outcome::Panicked => &self.panicked,
            };
            count.fetch_add(1, Ordering::Relaxed);
        }
        let emptied = closing && tasks.is_empty();
        drop(tasks);
        drop(removed);
        if emptied {
            self.wake_waiter();
        }
        closing
    }

    /// Ready when no task is left; with `seal`, the registry then refuses every spawn, decided
    /// with every shard locked, so no spawn can slip in between.
    pub(crate) fn poll_drained(&self, cx: &mut TaskCx<'_>, seal: bool) -> Poll<()> {
        {
            let mut waiter = lock(&self.waiter);
            match &*waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waiter = Some(cx.waker().clone()),
            }
        }
        let drained = if seal {
            self.seal_when_empty()
        } else {
            // SAFETY: close's thread, which has the loop's side to itself (see "The loop's
            // side").
            (unsafe { self.here.is_empty() })
                && self.shards.all().iter().all(|s| lock(&s.tasks).is_empty())
        };
        if drained {
            lock(&self.waiter).take();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Close with nothing to wait for: when no task is alive, seals the registry at once (every
    /// spawn refused from now on, decided with every shard locked, as `poll_drained`'s seal) and
    /// returns `true`; otherwise changes nothing.
    #[must_use = "a sealed registry means close has no task left to drive"]
    pub(crate) fn seal_if_idle(&self) -> bool {
        self.seal_when_empty()
    }

    /// With every shard locked at once: when all are empty, moves to `Closed` and returns `true`.
    fn seal_when_empty(&self) -> bool {
        // SAFETY: close's thread (or a test's), which has the loop's side to itself (see "The
        // loop's side"): nothing registers there meanwhile, so it stays empty while the shards'
        // locks are taken.
        if !unsafe { self.here.is_empty() } {
            return false;
        }
        let shards = match &self.shards {
            Shards::One(shard) => {
                // A current-thread loop: its lock alone, no guard list to allocate.
                let tasks = lock(&shard.tasks);
                let empty = tasks.is_empty();
                if empty {
                    self.advance(Phase::Closed);
                }
                return empty;
            }
            Shards::Many(shards) => shards,
        };
        let shards: Vec<MutexGuard<'_, Tasks>> = shards.iter().map(|s| lock(&s.tasks)).collect();
        let empty = shards.iter().all(|t| t.is_empty());
        if empty {
            self.advance(Phase::Closed);
        }
        empty
    }

    /// Close begins: spawns are still accepted, and every task that ends from now on is counted.
    pub(crate) fn begin_grace(&self) {
        self.advance(Phase::Grace);
    }

    /// Close starts cancelling: from now on only the loop's own spawns are accepted, born
    /// cancelled. Returns every task alive at that point, for close to cancel.
    #[must_use = "close must cancel every task alive when it began cancelling"]
    pub(crate) fn begin_cancelling(&self) -> Vec<TaskArc<dyn TaskRef>> {
        self.advance(Phase::Cancelling);
        self.snapshot()
    }

    /// The runner is dropped where its loop cannot run: every spawn is refused from now on.
    /// Returns every task still alive, to be aborted.
    #[must_use = "the tasks left when the runner is abandoned must be aborted"]
    pub(crate) fn abandon(&self) -> Vec<TaskArc<dyn TaskRef>> {
        self.advance(Phase::Closed);
        self.snapshot()
    }

    /// Every task now in the registry, each shard looked at under its lock after the phase was
    /// moved (see "Why no spawn slips past close").
    fn snapshot(&self) -> Vec<TaskArc<dyn TaskRef>> {
        let mut all = Vec::new();
        // SAFETY: close's (or `abandon`'s) thread, which has the loop's side to itself (see
        // "The loop's side").
        unsafe { self.here.collect(&mut all) };
        for shard in self.shards.all().iter() {
            let tasks = lock(&shard.tasks);
            all.reserve(tasks.len());
            // Counted under the lock: see `Entry::counted`.
            all.extend(tasks.iter().map(|(_, t)| t.counted()));
        }
        all
    }

    /// The outcomes counted so far; final once `poll_drained` was ready.
    pub(crate) fn outcomes(&self) -> Outcomes {
        // SAFETY: close's thread, which has the loop's side to itself (see "The loop's side").
        let here = unsafe { self.here.outcomes() };
        Outcomes {
            finished: self.finished.load(Ordering::Relaxed) + here.finished,
            cancelled: self.cancelled.load(Ordering::Relaxed) + here.cancelled,
            panicked: self.panicked.load(Ordering::Relaxed) + here.panicked,
        }
    }

    /// Close may be waiting for the last shard (or the loop's side) to empty: see "Counting and
    /// waking".
    fn wake_waiter(&self) {
        let waker = lock(&self.waiter).take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

// ---- The loop's side of a current-thread loop's registry (see "The loop's side"). ----

/// The tag of a key registered on the loop's side ([`Registry::register_here`]): its low bit.
const HERE: usize = 1;

/// The loop thread's side of a current-thread loop's registry: the tasks registered from the
/// thread inside the runner's run or close, and the outcomes counted there, in plain fields
/// without a lock (see "The loop's side" in the module docs for who may reach them).
struct LoopSide {
    tasks: UnsafeCell<Tasks>,
    finished: Cell<usize>,
    cancelled: Cell<usize>,
    panicked: Cell<usize>,
}

// SAFETY: the fields are reached only by the thread that has the loop's side to itself (inside
// the runner's run or close, or abandoning it; see "The loop's side"), one thread at a time, each
// handing over to the next through what hands the runner over (`&mut Runner`).
unsafe impl Sync for LoopSide {}

impl LoopSide {
    fn new() -> Self {
        LoopSide {
            tasks: UnsafeCell::new(Slab::new()),
            finished: Cell::new(0),
            cancelled: Cell::new(0),
            panicked: Cell::new(0),
        }
    }

    /// # Safety
    ///
    /// The calling thread has the loop's side to itself (see "The loop's side").
    unsafe fn is_empty(&self) -> bool {
        // SAFETY: the caller's; no `&mut` to the slab outlives a `LoopSide` method.
        unsafe { (*self.tasks.get()).is_empty() }
    }

    /// A count of each task on this side, into `all`.
    ///
    /// # Safety
    ///
    /// As [`is_empty`](Self::is_empty).
    unsafe fn collect(&self, all: &mut Vec<TaskArc<dyn TaskRef>>) {
        // SAFETY: the caller's; `counted` runs no code of the task's.
        let tasks = unsafe { &*self.tasks.get() };
        all.reserve(tasks.len());
        // The entries are here, so their tasks are alive: see `Entry::counted`.
        all.extend(tasks.iter().map(|(_, t)| t.counted()));
    }

    /// # Safety
    ///
    /// As [`is_empty`](Self::is_empty).
    unsafe fn outcomes(&self) -> Outcomes {
        Outcomes {
            finished: self.finished.get(),
            cancelled: self.cancelled.get(),
            panicked: self.panicked.get(),
        }
    }
}

impl Registry {
    /// [`register`](Self::register) from the loop's thread of a current-thread loop, inside the
    /// runner's run or close (a spawn from its own loop, `from_loop`): onto the loop's side, with
    /// no lock and no read-modify-write. The key carries [`HERE`].
    ///
    /// # Errors
    ///
    /// [`SpawnError::Closed`] once the registry is `Closed`.
    ///
    /// # Safety
    ///
    /// The calling thread is inside the run or close of this registry's runner (the scope's
    /// `owner` is the runner), and the task ends (`deregister`) only on a thread inside that
    /// runner's run or close, or in [`abandon`](Self::abandon)'s cancelling of what it returned
    /// (a task on the runner's own queue: polled only there, cancelled in place by close or
    /// abandon). The registry is a current-thread loop's ([`Registry::new`]).
    #[inline]
    pub(crate) unsafe fn register_here<R>(
        &self,
        make: impl FnOnce(usize, bool) -> (Entry, R),
    ) -> Result<R, SpawnError> {
        debug_assert_eq!(self.here_tag, HERE, "a current-thread loop's registry");
        // Written only by the closing thread, which is this one (or handed the runner over to
        // it): relaxed.
        let phase = self.phase.load(Ordering::Relaxed);
        if phase == Phase::Closed as u8 {
            drop(make);
            return Err(SpawnError::Closed);
        }
        // SAFETY: the caller's: this thread is inside the runner's run or close, which no other
        // thread can be inside now, so it has the loop's side to itself. The `&mut` ends before
        // anything of the task's runs (`make` only builds the task and its entry).
        let tasks = unsafe { &mut *self.here.tasks.get() };
        let entry = tasks.vacant_entry();
        let (task, out) = make(entry.key() << 1 | HERE, phase >= Phase::Cancelling as u8);
        entry.insert(task);
        Ok(out)
    }

    /// [`deregister`](Self::deregister) of a task on the loop's side.
    ///
    /// # Safety
    ///
    /// The calling thread has the loop's side to itself (see [`register_here`](Self::register_here)).
    #[inline(always)]
    unsafe fn deregister_here(&self, key: usize, outcome: Outcome) -> bool {
        let (removed, emptied) = {
            // SAFETY: the caller's; the `&mut` ends in this block, before the entry is dropped
            // (its count may be the task's last: its drop runs user code, which may spawn).
            let tasks = unsafe { &mut *self.here.tasks.get() };
            let removed = tasks.try_remove(key >> 1);
            (removed, tasks.is_empty())
        };
        // Written by this thread (close) or before it had the runner: relaxed.
        let closing = self.phase.load(Ordering::Relaxed) != Phase::Open as u8;
        if removed.is_some() && closing {
            let count = match outcome {
                Outcome::Finished => &self.here.finished,
                Outcome::Cancelled => &self.here.cancelled,
                Outcome::Panicked => &self.here.panicked,
            };
            count.set(count.get() + 1);
        }
        drop(removed);
        if closing && emptied {
            self.wake_waiter();
        }
        closing
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};

    use super::fake::{spawn_here, spawn_in, Fake};
    use super::*;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::Release);
        }
    }

    #[test]
    fn keys_name_their_shard() {
        let reg = Arc::new(Registry::with_shards(4));
        // Kept alive: a `Fake` leaves the registry when it is dropped.
        let mut tasks = Vec::new();
        for shard in 0..4 {
            for n in 0..3 {
                let (t, _) = spawn_in(&reg, shard, false).unwrap();
                let key = t.key.load(Ordering::Acquire);
                assert_eq!(key & 3, shard);
                assert_eq!(key >> 2, n);
                tasks.push(t);
            }
        }
        assert_eq!(reg.snapshot().len(), 12);
        for t in reg.snapshot() {
            t.abort();
        }
        assert!(reg.snapshot().is_empty());
        assert_eq!(
            reg.outcomes(),
            Outcomes::default(),
            "nothing counted while open"
        );
    }

    #[test]
    fn shard_counts_are_powers_of_two() {
        for multi in [false, true] {
            let n = shard_count(multi);
            assert!(n.is_power_of_two() && n <= 64, "{n} shards");
        }
        assert_eq!(shard_count(false), 1, "one shard on a current-thread loop");
        assert!(shard_hint() & Registry::new(true).mask < shard_count(true));
    }

    #[test]
    fn close_handshake() {
        let reg = Arc::new(Registry::with_shards(2));
        let (quits, _) = spawn_in(&reg, 0, false).unwrap();
        let (stays, _) = spawn_in(&reg, 1, false).unwrap();
        assert_eq!(
            quits.end(Outcome::Finished),
            Some(false),
            "ended while open"
        );

        reg.begin_grace();
        let (late, cancelled) = spawn_in(&reg, 1, false).unwrap();
        assert!(!cancelled);
        assert_eq!(late.end(Outcome::Panicked), Some(true));

        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let pending = reg.begin_cancelling();
        assert_eq!(pending.len(), 1);
        assert!(matches!(spawn_in(&reg, 0, false), Err(SpawnError::Closed)));
        let (born, cancelled) = spawn_in(&reg, 0, true).unwrap();
        assert!(
            cancelled,
            "a loop spawn during cancelling is born cancelled"
        );

        assert!(reg.poll_drained(&mut cx, true).is_pending());
        for t in &pending {
            t.cancel_now(true, false);
        }
        // A shard that empties wakes close, which finds the other one still holding a task.
        assert!(flag.0.swap(false, Ordering::AcqRel));
        assert!(reg.poll_drained(&mut cx, true).is_pending());
        assert_eq!(born.end(Outcome::Cancelled), Some(true));
        assert!(flag.0.load(Ordering::Acquire), "the last task woke close");
        assert!(reg.poll_drained(&mut cx, true).is_ready());
        assert!(matches!(spawn_in(&reg, 1, true), Err(SpawnError::Closed)));
        assert_eq!(
            reg.outcomes(),
            Outcomes {
                finished: 0,
                cancelled: 2,
                panicked: 1
            }
        );
        drop(stays);
    }

    /// Tasks that end and are freed on another thread while close collects them, their entries
    /// holding no count: close reaches each through a count it took under the shard's lock, and
    /// never a freed one (Miri checks the accesses); each is counted once.
    #[test]
    fn tasks_freed_while_close_collects() {
        for _ in 0..if cfg!(miri) { 10 } else { 200 } {
            let reg = Arc::new(Registry::with_shards(2));
            let tasks: Vec<_> = (0..4)
                .map(|n| spawn_in(&reg, n % 2, false).unwrap().0)
                .collect();
            // Owned entries (as tasks on the runner's own queue have) take a count of their own.
            let owned: Vec<_> = (0..2)
                .map(|_| {
                    reg.register_in(1, false, |key, _| {
                        let t = Fake::new(&reg, key);
                        // SAFETY: from `into_raw`: the entry takes that count.
                        (unsafe { Entry::owned(Arc::into_raw(t.clone())) }, t)
                    })
                    .unwrap()
                })
                .collect();
            reg.begin_grace();
            let worker = std::thread::spawn(move || {
                for (n, t) in tasks.into_iter().enumerate() {
                    if n % 2 == 0 {
                        t.end(Outcome::Finished);
                    }
                    // The odd ones end in their drop, cancelled.
                    drop(t);
                }
                drop(owned);
            });
            let pending = reg.begin_cancelling();
            for t in &pending {
                let _ = t.info();
                t.cancel_now(true, false);
            }
            drop(pending);
            worker.join().unwrap();
            assert!(reg.snapshot().is_empty());
            let o = reg.outcomes();
            assert_eq!(o.finished + o.cancelled, 6, "{o:?}");
        }
    }

    /// A loop-side registration of a [`Fake`] with an owned entry (as a cell on the runner's
    /// own queue has): the task and whether it was born cancelled.
    fn spawn_here_owned(reg: &Arc<Registry>) -> Result<(Arc<Fake>, bool), SpawnError> {
        // SAFETY: the test's thread stands for the loop's: it alone registers and ends tasks on
        // the loop's side and calls close's methods. The entry takes the count from `into_raw`.
        unsafe {
            reg.register_here(|key, cancelled| {
                let t = Fake::new(reg, key);
                (Entry::owned(Arc::into_raw(t.clone())), (t, cancelled))
            })
        }
    }

    /// A current-thread loop's registry through close: tasks on the loop's side (no lock) and
    /// one spawned and ended on another thread (the shard). Close collects both sides, waits
    /// for both to empty (each emptying wakes it), a loop-side spawn while cancelling is born
    /// cancelled, none once sealed, and each task is counted once (Miri checks the accesses).
    #[test]
    fn loop_side_and_shard_through_close() {
        let reg = Arc::new(Registry::new(false));
        let (a, _) = spawn_here_owned(&reg).unwrap();
        let (b, _) = spawn_here_owned(&reg).unwrap();
        let key = a.key.load(Ordering::Acquire);
        assert_eq!(key & HERE, HERE, "a loop-side key carries the tag");
        let foreign = {
            let reg = reg.clone();
            std::thread::spawn(move || {
                reg.register(false, |key, _| {
                    let t = Fake::new(&reg, key);
                    // SAFETY: from `into_raw`: the entry takes that count.
                    (unsafe { Entry::owned(Arc::into_raw(t.clone())) }, t)
                })
                .unwrap()
            })
            .join()
            .unwrap()
        };
        assert_eq!(
            foreign.key.load(Ordering::Acquire) & HERE,
            0,
            "a shard's key"
        );
        assert_eq!(a.end(Outcome::Finished), Some(false), "ended while open");

        reg.begin_grace();
        assert_eq!(b.end(Outcome::Panicked), Some(true));
        let (c, cancelled) = spawn_here_owned(&reg).unwrap();
        assert!(!cancelled);
        let pending = reg.begin_cancelling();
        assert_eq!(pending.len(), 2, "the loop side's task and the shard's");
        let (d, cancelled) = spawn_here_owned(&reg).unwrap();
        assert!(
            cancelled,
            "a loop spawn during cancelling is born cancelled"
        );
        assert!(matches!(spawn_in(&reg, 0, false), Err(SpawnError::Closed)));

        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(reg.poll_drained(&mut cx, true).is_pending());
        // The shard's task ends on another thread, and its shard empties: close is woken.
        std::thread::spawn(move || {
            assert_eq!(foreign.end(Outcome::Cancelled), Some(true));
        })
        .join()
        .unwrap();
        assert!(flag.0.swap(false, Ordering::AcqRel));
        assert!(reg.poll_drained(&mut cx, true).is_pending());
        for t in &pending {
            t.cancel_now(true, false);
        }
        assert!(c.ended.load(Ordering::Acquire));
        assert!(
            !flag.0.load(Ordering::Acquire),
            "`d` is left on the loop side"
        );
        assert!(reg.poll_drained(&mut cx, true).is_pending());
        assert_eq!(d.end(Outcome::Cancelled), Some(true));
        assert!(
            flag.0.load(Ordering::Acquire),
            "the loop side's last task woke close"
        );
        assert!(reg.poll_drained(&mut cx, true).is_ready());
        assert!(matches!(spawn_here_owned(&reg), Err(SpawnError::Closed)));
        assert_eq!(
            reg.outcomes(),
            Outcomes {
                finished: 0,
                cancelled: 3,
                panicked: 1
            }
        );
        drop(pending);
        // Only the test's counts are left: the registry gave its own back.
        assert_eq!(Arc::strong_count(&c), 1);
        assert_eq!(Arc::strong_count(&d), 1);
    }

    /// A blocking job's end (no key: `usize::MAX`) on another thread is told whether close is
    /// under way and leaves the loop side alone, though the tag bit is set in it (Miri finds a
    /// race with the loop's thread otherwise).
    #[test]
    fn no_key_never_reaches_the_loop_side() {
        let reg = Arc::new(Registry::new(false));
        let (a, _) = spawn_here(&reg).unwrap();
        let ends = |reg: &Arc<Registry>| {
            let reg = reg.clone();
            std::thread::spawn(move || reg.deregister(usize::MAX, Outcome::Finished))
        };
        let open = ends(&reg);
        let (b, _) = spawn_here(&reg).unwrap();
        assert!(!open.join().unwrap(), "open");
        reg.begin_grace();
        let closing = ends(&reg);
        assert_eq!(b.end(Outcome::Finished), Some(true));
        assert!(closing.join().unwrap(), "closing");
        assert_eq!(reg.snapshot().len(), 1, "`a` is still there");
        assert_eq!(reg.outcomes().finished, 1, "only `b` counted");
        drop(a);
    }

    /// A runner abandoned with tasks on the loop's side: they are returned to be cancelled,
    /// every spawn is refused, and an idle current-thread registry seals at once.
    #[test]
    fn loop_side_abandoned_and_idle_seal() {
        let reg = Arc::new(Registry::new(false));
        let (a, _) = spawn_here(&reg).unwrap();
        assert!(!reg.seal_if_idle(), "a task on the loop side is alive");
        let pending = reg.abandon();
        assert_eq!(pending.len(), 1);
        assert!(matches!(spawn_here(&reg), Err(SpawnError::Closed)));
        for t in &pending {
            t.abort();
        }
        assert!(a.ended.load(Ordering::Acquire));
        assert_eq!(reg.outcomes().cancelled, 1);
        drop(pending);

        let idle = Registry::new(false);
        assert!(idle.seal_if_idle());
    }

    #[test]
    fn threads_spawn_into_their_own_shards() {
        let reg = Arc::new(Registry::with_shards(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let reg = reg.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let (t, _) = reg
                            .register(false, |key, _| {
                                let t = Fake::new(&reg, key);
                                // SAFETY: from `into_raw`: the entry takes that count.
                                let entry = unsafe { Entry::owned(Arc::into_raw(t.clone())) };
                                (entry, (t, false))
                            })
                            .unwrap();
                        assert_eq!(t.end(Outcome::Finished), Some(false));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        reg.begin_grace();
        let drained = pin!(std::future::poll_fn(|cx| reg.poll_drained(cx, true)));
        let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
        assert!(drained.poll(&mut Context::from_waker(&waker)).is_ready());
        assert!(matches!(spawn_in(&reg, 0, true), Err(SpawnError::Closed)));
    }
}
