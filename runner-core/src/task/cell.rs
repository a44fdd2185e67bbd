//! The task cell: the header with its state word, the output slot, and, for a `Send` task, its
//! future with what polls it.

use std::borrow::Borrow;
use std::cell::UnsafeCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context as TaskCx, Poll, Waker};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use pin_project_lite::pin_project;

use crate::context::Context;
use crate::diagnostic::{Diagnostic, DiagnosticKind, TaskInfo, UnhandledPanic};
use crate::error::{panic_message, JoinError, RunError, TaskPanicked};
use crate::shared::{Outcome, Shared, TaskRef};

use super::state::{self, State};

/// What every task has, whatever holds its future: its registry key, its state word, and what
/// diagnostics show of it. 32 bytes: the waker of a task's last pending poll, which a task on
/// the runner's own queue does not need (its cell is its own waker), is kept beside the header
/// by the tasks that need one ([`Cell`] on a multi-thread loop, [`LocalHeader`]).
///
/// `repr(C)`, the key, the state word and the flags first: one 8-byte word, which the spawn
/// writes whole instead of byte by byte before the cell is copied into its allocation.
#[repr(C)]
pub(crate) struct Header {
    /// The registry's key: `u32` beside the state word and the flags, in one word. Given at
    /// construction, or for a cell made before it is registered (so that its allocation is not
    /// made under the registry's shard lock) stored once by [`Header::registered`], under that
    /// lock, before anyone else can reach the task: relaxed loads and stores suffice, since
    /// whoever ends the task got it through the spawn.
    key: AtomicU32,
    /// The state word (see `task::state`).
    pub(crate) state: State,
    /// A `spawn_local` task: its end is counted in `LocalState`.
    pub(crate) local: bool,
    /// A `Send` task on the runner's own queue (a current-thread loop; see `task::own`): its cell
    /// is its own waker, and it has no backend task (no shell at close).
    pub(crate) own: bool,
    /// The header holds a weak count of `shared`, else a strong one (see `shared`).
    weak: bool,
    location: &'static Location<'static>,
    /// The name and, in debug mode, the spawn time: boxed, and only for a task that has one.
    extras: Option<Box<Extras>>,
    /// The runner: with a weak count for a local task or a blocking job, whose handle may outlive
    /// the runner; with a strong one in a [`Cell`], whose polls lend it to the thread-local
    /// scope (see [`Lent`]): one pointer for both, and no `Weak` to upgrade per wake.
    shared: NonNull<Shared>,
}

// SAFETY: `shared` points to a `Shared`, which is `Send + Sync`, and is only read through
// `with_shared`, while a count keeps it alive; everything else in the header is `Send + Sync`.
unsafe impl Send for Header {}
// SAFETY: as for `Send`.
unsafe impl Sync for Header {}

impl Drop for Header {
    #[inline]
    fn drop(&mut self) {
        if self.weak {
            // SAFETY: `new` took this weak count (`Weak::into_raw`) and only this drop gives it
            // back.
            drop(unsafe { Weak::from_raw(self.shared.as_ptr()) });
        } else {
            // SAFETY: `strong` took this strong count (`Arc::into_raw`) and only this drop gives
            // it back (a `Lent` borrows it and never gives it back).
            drop(unsafe { Arc::from_raw(self.shared.as_ptr()) });
        }
    }
}

/// What only some tasks have: a name ([`Builder::name`](super::Builder::name)), and in debug
/// mode the spawn time.
struct Extras {
    name: Option<Arc<str>>,
    /// In debug mode, when the task was spawned (see [`Header::spawned_at`]); 0 otherwise.
    spawned: u64,
}

/// The instant debug-mode spawn times count from: a `u64` of nanoseconds instead of an
/// `Option<Instant>` (8 bytes less).
static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Header {
    /// The header of a local task or a blocking job: it holds a weak count of `shared`.
    #[inline]
    pub(crate) fn new(
        key: usize,
        meta: Meta,
        shared: &Arc<Shared>,
        cancelled: bool,
        local: bool,
    ) -> Self {
        let weak = Weak::into_raw(Arc::downgrade(shared)).cast_mut();
        let weak = NonNull::new(weak).expect("a `Weak` of a live `Arc` is not null");
        Header::with_count(
            key,
            meta,
            shared,
            State::new(cancelled),
            local,
            false,
            weak,
            true,
        )
    }

    /// The header of a [`Cell`]: it holds a strong count of `shared`. `own`: a task on the
    /// runner's own queue, queued at spawn (`SCHEDULED`).
    #[inline(always)]
    fn strong(key: usize, meta: Meta, shared: &Arc<Shared>, cancelled: bool, own: bool) -> Self {
        let strong = Arc::into_raw(shared.clone()).cast_mut();
        let strong = NonNull::new(strong).expect("an `Arc` is not null");
        let state = if own {
            State::new_scheduled(cancelled)
        } else {
            State::new(cancelled)
        };
        Header::with_count(key, meta, shared, state, false, own, strong, false)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn with_count(
        key: usize,
        meta: Meta,
        shared: &Arc<Shared>,
        state: State,
        local: bool,
        own: bool,
        counted: NonNull<Shared>,
        weak: bool,
    ) -> Self {
        let key = AtomicU32::new(key_u32(key));
        let spawned = if shared.config.debug { spawn_time() } else { 0 };
        let extras = (meta.name.is_some() || spawned != 0).then(|| {
            Box::new(Extras {
                name: meta.name,
                spawned,
            })
        });
        Header {
            key,
            state,
            local,
            own,
            weak,
            location: meta.location,
            extras,
            shared: counted,
        }
    }

    /// Calls `f` with the task's runner, or `None` once it is gone (only a local task or a
    /// blocking job can outlive it).
    #[inline]
    pub(crate) fn with_shared<R>(&self, f: impl FnOnce(Option<&Shared>) -> R) -> R {
        if self.weak {
            // SAFETY: the header holds a weak count of this pointer (taken in `new`, given back
            // in `drop`); the `ManuallyDrop` keeps this use of it from giving it back.
            let weak = ManuallyDrop::new(unsafe { Weak::from_raw(self.shared.as_ptr()) });
            let shared = weak.upgrade();
            f(shared.as_deref())
        } else {
            // SAFETY: the header holds a strong count of this pointer (taken in `strong`, given
            // back in `drop`): the runner is alive while the header is.
            f(Some(unsafe { self.shared.as_ref() }))
        }
    }

    /// The registry's key.
    #[inline]
    pub(crate) fn key(&self) -> usize {
        let key = self.key.load(Ordering::Relaxed);
        if key == u32::MAX {
            usize::MAX
        } else {
            key as usize
        }
    }

    /// A task made before it was registered is registered: its key, and whether it is born
    /// cancelled. Called once, by the registry's `make`, under the shard's lock.
    #[inline]
    pub(crate) fn registered(&self, key: usize, cancelled: bool) {
        self.key.store(key_u32(key), Ordering::Relaxed);
        if cancelled {
            // Nobody can have seen the task yet: nobody to wake.
            let _ = self.state.abort();
        }
    }

    /// The name given at spawn, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        self.extras.as_ref()?.name.as_deref()
    }

    /// What diagnostics show of the task.
    pub(crate) fn info(&self) -> TaskInfo {
        TaskInfo {
            name: self.extras.as_ref().and_then(|e| e.name.clone()),
            location: self.location,
            main: false,
        }
    }

    /// In debug mode, when the task was spawned.
    pub(crate) fn spawned_at(&self) -> Option<Instant> {
        let at = self.extras.as_ref()?.spawned.checked_sub(1)?;
        Some(*EPOCH.get()? + Duration::from_nanos(at))
    }

    /// Sets `ABORTED`: true on the transition from neither `ABORTED` nor `COMPLETE`, when the
    /// caller must wake the task (so that it is woken for it at most once).
    #[inline]
    pub(crate) fn abort(&self) -> bool {
        self.state.abort()
    }

    #[inline]
    pub(crate) fn is_aborted(&self) -> bool {
        self.state.is_aborted()
    }

    #[inline]
    pub(crate) fn is_complete(&self) -> bool {
        self.state.is_complete()
    }
}

/// A registry key as [`Header::key`] holds it. A key past `u32` would take 2 billion tasks alive
/// at once on a current-thread loop (a key's low bit names the registry's side there), and
/// 2^32 divided by the number of shards in one shard on a multi-thread loop (blocking jobs and
/// cells not yet registered, which have none, pass `usize::MAX`, kept as `u32::MAX`).
#[inline]
fn key_u32(key: usize) -> u32 {
    if key == usize::MAX {
        u32::MAX
    } else {
        u32::try_from(key)
            .expect("too many tasks alive at once: a registry key must fit in 32 bits")
    }
}

/// Now, as [`Extras::spawned`] holds it: never 0.
#[cold]
fn spawn_time() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    let since = Instant::now().saturating_duration_since(epoch).as_nanos();
    u64::try_from(since).unwrap_or(u64::MAX - 1) + 1
}

/// A local task's header, in its own allocation (its output need not be `Send`), with the
/// waker of its last pending poll (for `abort` and close).
pub(crate) struct LocalHeader {
    pub(crate) header: Header,
    pub(crate) driver: AtomicWaker,
}

impl LocalHeader {
    pub(crate) fn abort(&self) {
        if self.header.abort() {
            self.driver.wake();
        }
    }
}

impl Borrow<Header> for Arc<LocalHeader> {
    fn borrow(&self) -> &Header {
        &self.header
    }
}

impl TaskRef for LocalHeader {
    fn info(&self) -> TaskInfo {
        self.header.info()
    }

    fn spawned_at(&self) -> Option<Instant> {
        self.header.spawned_at()
    }

    fn abort(&self) {
        LocalHeader::abort(self);
    }
}

/// Where the waker of a `Send` task's last pending poll is kept: an [`AtomicWaker`] for a task
/// the backend runs (a multi-thread loop), nothing for a task on the runner's own queue, whose
/// cell is its own waker.
pub(crate) trait Driver: Default + Send + Sync + 'static {
    /// A task on the runner's own queue.
    const OWN: bool;

    fn register(&self, waker: &Waker);

    fn wake(&self);
}

impl Driver for AtomicWaker {
    const OWN: bool = false;

    #[inline]
    fn register(&self, waker: &Waker) {
        AtomicWaker::register(self, waker);
    }

    #[inline]
    fn wake(&self) {
        AtomicWaker::wake(self);
    }
}

/// The [`Driver`] of a task on the runner's own queue: none.
#[derive(Default)]
pub(crate) struct OwnQueued;

impl Driver for OwnQueued {
    const OWN: bool = true;

    #[inline]
    fn register(&self, _: &Waker) {}

    #[inline]
    fn wake(&self) {}
}

/// A task's shared cell: its header (inline for `Send` tasks, in its own allocation for local
/// tasks, whose output need not be `Send`), its output and its join handle's waker. Who may use
/// the output and the waker is written in the state word (see `task::state`'s `COMPLETE`,
/// `JOIN_WAKER`, `DETACHED`, and [`state::JoinSlots`]): no lock.
pub(crate) struct Task<T, H> {
    pub(crate) header: H,
    /// Written once, by `complete` before it sets `COMPLETE` (unless `DETACHED` is set), then the
    /// handle's (or, when the handle was dropped meanwhile, `complete`'s again).
    out: UnsafeCell<Out<T>>,
    /// The handle's waker: written by the handle while `JOIN_WAKER` is clear, only read (by both
    /// sides) while it is set.
    waker: UnsafeCell<Option<Waker>>,
}

pub(crate) enum Out<T> {
    /// Nothing yet, or taken.
    Empty,
    Value(Result<T, JoinError>),
    /// A panic already reported (it happened during close): dropping the handle unread must not
    /// report it a second time.
    Reported(JoinError),
}

impl<T> Out<T> {
    fn take(&mut self) -> Self {
        std::mem::replace(self, Out::Empty)
    }

    /// What is left to report or drop of an output nobody read.
    fn unread(&mut self) -> Option<Result<T, JoinError>> {
        match self.take() {
            Out::Value(v) => Some(v),
            Out::Reported(_) | Out::Empty => None,
        }
    }

    /// The output, for the handle.
    fn read(&mut self) -> Option<Result<T, JoinError>> {
        match self.take() {
            Out::Value(v) => Some(v),
            Out::Reported(e) => Some(Err(e)),
            Out::Empty => None,
        }
    }
}

// SAFETY: `out` and `waker` are reached only as the state word allows (see `Task`'s methods):
// the output moves between threads once, hence `T: Send`; the waker is `Send + Sync`.
unsafe impl<T: Send, H: Sync> Sync for Task<T, H> {}

impl<T, H: Borrow<Header>> Task<T, H> {
    pub(crate) fn new(header: H) -> Self {
        Task {
            header,
            out: UnsafeCell::new(Out::Empty),
            waker: UnsafeCell::new(None),
        }
    }

    #[inline]
    pub(crate) fn header(&self) -> &Header {
        self.header.borrow()
    }

    /// Hands the output to the join handle, or reports it when nobody will read it. Called once.
    ///
    /// A panic is reported exactly once: here when the handle is already gone or close is under
    /// way, otherwise by the handle's `Drop` if it is dropped unread.
    #[inline]
    pub(crate) fn complete(&self, result: Result<T, JoinError>, shared: Option<&Shared>) {
        let header = self.header();
        let outcome = match &result {
            Ok(_) => Outcome::Finished,
            Err(e) if e.is_panic() => Outcome::Panicked,
            Err(_) => Outcome::Cancelled,
        };
        // Counted first, at this one point, before anyone can see the output: a task joined
        // before close began has left the registry by then and is never counted by close.
        // Whatever `shared` says: a task leaves the registry while its runner is alive (a
        // borrowed registry entry relies on it; see `registry::Entry`).
        let closing = match shared {
            Some(s) => s.deregister(header.key(), outcome),
            None => deregister_outliving(header, outcome),
        };
        if header.local {
            if let Some(s) = shared {
                s.local.ended();
            }
        }
        if closing && outcome == Outcome::Panicked {
            self.complete_panicked_during_close(result, shared);
            return;
        }
        if let Some(unread) = state::complete(&header.state, self, result, Out::Value) {
            drop_unread_cold(unread, shared, header, closing);
        }
    }

    /// [`complete`](Self::complete) of a task that panicked while its runner was closing: close
    /// cannot know whether the holder will ever look, so the message is reported now and the
    /// payload left to the handle.
    #[cold]
    #[inline(never)]
    fn complete_panicked_during_close(
        &self,
        result: Result<T, JoinError>,
        shared: Option<&Shared>,
    ) {
        let header = self.header();
        let mut during_close = None;
        let unread = state::complete(&header.state, self, result, |result| match result {
            Err(e) if e.is_panic() => {
                during_close = Some(e.message().to_owned());
                Out::Reported(e)
            }
            result => Out::Value(result),
        });
        if let (Some(message), Some(s)) = (during_close, shared) {
            s.report(&Diagnostic {
                kind: DiagnosticKind::PanicDuringShutdown,
                task: header.info(),
                payload: None,
                message: Some(message),
                duration: None,
            });
        }
        if let Some(unread) = unread {
            drop_unread(unread, shared, &header.info(), true);
        }
    }

    /// The join handle's poll: the output once `COMPLETE` is set, or its waker registered.
    ///
    /// # Panics
    ///
    /// Once the output was taken.
    pub(crate) fn poll_join(&self, cx: &mut TaskCx<'_>) -> Poll<Result<T, JoinError>> {
        state::poll_join(&self.header().state, self, cx.waker())
    }

    /// The join handle is dropped before it took the output: the task is detached, and an
    /// output already there is dropped (a panic reported) here.
    pub(crate) fn detach(&self) {
        let header = self.header();
        if let Some(unread) = state::detach(&header.state, self) {
            // Not reported yet, so any panic happened before close began: an unobserved panic,
            // even if the handle is only dropped now. (Under `ShutdownRunner`, a runner that is
            // closing has no run left to end; the abort it records is never read.)
            header.with_shared(|shared| drop_unread(unread, shared, &header.info(), false));
        }
    }

    /// The output, taken by hand (tests).
    #[cfg(test)]
    pub(crate) fn take_output(&self) -> Option<Result<T, JoinError>> {
        assert!(self.header().is_complete());
        // SAFETY: as in `poll_join`: complete, and no handle uses this task.
        unsafe { (*self.out.get()).read() }
    }
}

/// The output slot and the handle's waker, as the state word guards them (see
/// [`state::JoinSlots`] for when each method may be called).
impl<T, H> state::JoinSlots for Task<T, H> {
    type Output = Result<T, JoinError>;
    type Stored = Out<T>;
    type Waker = Waker;

    #[inline]
    unsafe fn store(&self, out: Out<T>) {
        // SAFETY: before `COMPLETE`, by `complete` alone: nobody else reaches the output.
        unsafe { *self.out.get() = out };
    }

    #[inline]
    unsafe fn take_unread(&self) -> Option<Result<T, JoinError>> {
        // SAFETY: the output is the caller's (see `JoinSlots::take_unread`).
        unsafe { (*self.out.get()).unread() }
    }

    #[inline]
    unsafe fn take(&self) -> Option<Result<T, JoinError>> {
        // SAFETY: the output is the handle's (see `JoinSlots::take`), and the handle is the
        // caller.
        unsafe { (*self.out.get()).read() }
    }

    #[inline]
    unsafe fn wake_join(&self) {
        // SAFETY: `JOIN_WAKER` and `COMPLETE` are both set: the handle writes the waker no more,
        // so it is only read.
        if let Some(w) = unsafe { &*self.waker.get() } {
            w.wake_by_ref();
        }
    }

    #[inline]
    unsafe fn same_waker(&self, waker: &Waker) -> bool {
        // SAFETY: `JOIN_WAKER` is set: the waker is only read, by either side.
        let stored = unsafe { &*self.waker.get() };
        stored.as_ref().is_some_and(|w| w.will_wake(waker))
    }

    #[inline]
    unsafe fn set_waker(&self, waker: &Waker) {
        // SAFETY: `JOIN_WAKER` is clear and only the handle, the caller, sets it: `complete` does
        // not touch the waker.
        unsafe { *self.waker.get() = Some(waker.clone()) };
    }
}

/// Drops an output nobody will read: a panic is reported; a value is dropped under
/// `catch_unwind`, and a panic of its destructor reported in its turn (it must reach neither the
/// loop nor whoever dropped the handle, and nothing is lost silently).
pub(crate) fn drop_unread<T>(
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

/// [`Task::complete`]'s deregistration when the caller has no runner at hand (a local task's
/// end after its runner's last strong count may have gone): out of line, rare.
#[cold]
#[inline(never)]
fn deregister_outliving(header: &Header, outcome: Outcome) -> bool {
    header.with_shared(|s| s.is_some_and(|s| s.deregister(header.key(), outcome)))
}

/// [`drop_unread`] of a detached task's output, out of [`Task::complete`]'s common path.
#[cold]
#[inline(never)]
fn drop_unread_cold<T>(
    unread: Result<T, JoinError>,
    shared: Option<&Shared>,
    header: &Header,
    closing: bool,
) {
    drop_unread(unread, shared, &header.info(), closing);
}

/// Reports a panic nobody will read. Without a runner (the handle outlived it), the default
/// handler still prints it: nothing is lost silently.
pub(crate) fn report_unobserved(
    shared: Option<&Shared>,
    info: &TaskInfo,
    e: JoinError,
    closing: bool,
) {
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
    pub(crate) enum Stage<F> {
        Running { #[pin] fut: F },
        Done,
    }
}

/// A `Send` task's cell, shared by the wrapper the backend runs, the [`JoinHandle`](super::JoinHandle) and the
/// registry: the task's header and output slot, and its future with what polls it. The future
/// lives here rather than in the backend's task so that close can drop it in place, on its own
/// thread, without a wake-and-poll round through the backend.
pub(crate) struct Cell<F: Future, D> {
    pub(crate) task: Task<F::Output, Header>,
    /// The backend's waker of the task's last pending poll (see [`Driver`]).
    pub(crate) driver: D,
    /// Used only by the holder of `RUNNING` in the header's state word (see [`Cell::run`]): the
    /// backend's wrapper, or close, which only tries to take it.
    pub(crate) run: UnsafeCell<Run<F>>,
}

// SAFETY: `run` is only reached through `Cell::run`, by the one holder of `RUNNING` at a time
// (the future and its context move between threads with it, hence `F: Send`); everything else in
// the cell is `Sync` on its own.
unsafe impl<F, D> Sync for Cell<F, D>
where
    F: Future + Send,
    F::Output: Send,
    D: Sync,
{
}

impl<F: Future, D: Driver> Cell<F, D> {
    /// A running task's cell: `fut` to be polled in `ctx`, with `shared` as its runner; the
    /// other arguments are [`Header::new`]'s. The header holds the cell's (strong) reference to
    /// its runner. A cell on the runner's own queue ([`OwnQueued`]) is born `SCHEDULED`: its
    /// spawn queues it once, for its first poll.
    #[inline(always)]
    pub(crate) fn new(
        key: usize,
        meta: Meta,
        cancelled: bool,
        fut: F,
        shared: &Arc<Shared>,
        ctx: Context,
    ) -> Self {
        Cell {
            task: Task::new(Header::strong(key, meta, shared, cancelled, D::OWN)),
            driver: D::default(),
            run: UnsafeCell::new(Run {
                stage: Stage::Running { fut },
                ctx,
            }),
        }
    }

    /// The future and what polls it.
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING` (it set the bit, finding it clear) for as long as it uses the
    /// result, and lets go of it only after its last use.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn run(&self) -> &mut Run<F> {
        // SAFETY: the caller holds `RUNNING`, which every other user of `run` must take first:
        // no other reference to it exists until the caller lets go.
        unsafe { &mut *self.run.get() }
    }
}

pub(crate) struct Run<F> {
    pub(crate) stage: Stage<F>,
    pub(crate) ctx: Context,
}

impl<F: Future> Run<F> {
    pub(crate) fn parts(&mut self) -> (Pin<&mut Stage<F>>, &mut Context) {
        // SAFETY: a `Run` lives only inside a `Cell` in an `Arc`, which is never moved out of its
        // allocation, and its stage is only ever replaced through `Pin::set` or dropped in
        // place with the cell: the future is never moved once polled.
        let stage = unsafe { Pin::new_unchecked(&mut self.stage) };
        (stage, &mut self.ctx)
    }
}

impl Header {
    /// Tells close that the backend is done with a shell (`Shared::shell_done`).
    #[cold]
    pub(crate) fn tell_shell_done(&self) {
        self.with_shared(|s| {
            if let Some(s) = s {
                s.shell_done();
            }
        });
    }
}

/// What a local task needs besides its future: its runner (lent to the thread-local scope
/// around each poll) and its context.
pub(crate) struct Env {
    pub(crate) scope: Option<Arc<Shared>>,
    pub(crate) ctx: Context,
}

impl Env {
    pub(crate) fn as_mut(&mut self) -> EnvMut<'_> {
        EnvMut {
            scope: &mut self.scope,
            ctx: &mut self.ctx,
        }
    }
}

/// What the harness needs besides the future for one poll or drop: the slot that lends the
/// task's runner to the thread-local scope (`scope::Enter` swaps it in and back out, and
/// `with_current` gives back what it takes: the slot holds the same runner again afterwards),
/// and the task's context.
pub(crate) struct EnvMut<'a> {
    pub(crate) scope: &'a mut Option<Arc<Shared>>,
    pub(crate) ctx: &'a mut Context,
}

/// A [`Cell`]'s runner, lent for one poll or drop: the header's strong count, borrowed as an
/// `Arc` (no reference counting per poll) and never given back. A cell stores one pointer to
/// its runner, in its header, where a waker on another thread reaches it while the poll has
/// lent it out.
pub(crate) struct Lent(Option<Arc<Shared>>);

impl Lent {
    #[inline]
    pub(crate) fn new(header: &Header) -> Self {
        debug_assert!(!header.weak, "only a cell's header lends its runner");
        // SAFETY: the header holds a strong count of this pointer (`Header::strong`), alive
        // for as long as the header, which outlives this `Lent` (the caller holds the cell
        // throughout). The `Arc` made here takes no count of its own: `drop` forgets it.
        Lent(Some(unsafe { Arc::from_raw(header.shared.as_ptr()) }))
    }

    #[inline]
    pub(crate) fn env<'a>(&'a mut self, ctx: &'a mut Context) -> EnvMut<'a> {
        EnvMut {
            scope: &mut self.0,
            ctx,
        }
    }
}

impl Drop for Lent {
    #[inline]
    fn drop(&mut self) {
        // The scope gave the runner back (see `EnvMut`): the header's count, not this one's.
        if let Some(lent) = self.0.take() {
            std::mem::forget(lent);
        }
    }
}

/// Name and spawn location of a task.
pub(crate) struct Meta {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) location: &'static Location<'static>,
}

#[cfg(all(test, not(loom), target_pointer_width = "64"))]
mod tests {
    //! The cell's size, which is what a pending task costs on a current-thread loop (issue 13:
    //! at most 64 bytes over the backend's own task).

    use std::future::Pending;
    use std::mem::size_of;

    use atomic_waker::AtomicWaker;

    use super::{Cell, Header, OwnQueued, Task};
    use crate::error::JoinError;

    #[test]
    fn the_cell_stays_small() {
        assert_eq!(size_of::<Header>(), 32);
        assert_eq!(size_of::<JoinError>(), 8);
        assert_eq!(size_of::<Task<(), Header>>(), 64);
        // Header (with the runner), output slot, join waker, stage and context.
        assert_eq!(size_of::<Cell<Pending<()>, OwnQueued>>(), 88);
        // A task the backend runs keeps its waker too.
        assert_eq!(size_of::<Cell<Pending<()>, AtomicWaker>>(), 112);
    }
}
