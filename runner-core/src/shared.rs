//! The state a runner shares with its tasks, handles and the thread-local scope.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context as TaskCx, Poll, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use slab::Slab;

use crate::diagnostic::{Diagnostic, Handler, TaskInfo, UnhandledPanic};
use crate::error::{RunError, SpawnError};
use crate::event_loop::Spawner;
use crate::latch::Latch;
use crate::local::LocalState;
use crate::lock::lock;
use crate::registry::Registry;
pub(crate) use crate::registry::{Entry, Outcome, TaskRef};
use crate::signal::{Interrupt, Interruptible, RunnerSignal};
use crate::task::own::{OwnQueue, OwnTask};
use crate::task::pump::Pumps;

/// Everything the builder decided, fixed at `build()`.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) debug: bool,
    pub(crate) slow_poll: Duration,
    pub(crate) handler: Handler,
    pub(crate) unhandled: UnhandledPanic,
    pub(crate) shutdown_grace: Duration,
    pub(crate) blocking_timeout: Duration,
    pub(crate) interrupt: Interrupt,
    pub(crate) interrupt_grace: Option<Duration>,
    /// `Builder::backend_tasks`: no pumps on a multi-thread loop.
    pub(crate) backend_tasks: bool,
}

/// What the runner keeps of a running blocking job, to report it if it outlives close.
pub(crate) struct BlockingInfo {
    pub(crate) info: TaskInfo,
    pub(crate) since: Instant,
}

/// A runner's copy of the waker its main future stored last in `Shared::main_waker`, and the
/// vtable of the waker it was cloned from: a clone may carry another vtable than its original (a
/// vtable instantiated in two codegen units, as tokio's), and then `Waker::will_wake` between the
/// copy and the waker the backend polls with is false every time for the same waker.
#[derive(Default)]
pub(crate) struct LastWaker {
    copy: Option<Waker>,
    vtable: usize,
}

impl LastWaker {
    /// True when `waker` wakes the task of the stored one: it has the copy's data and the copy's
    /// vtable or its original's. The copy keeps its data alive, so no other waker can have that
    /// data pointer meanwhile.
    #[inline]
    fn is(&self, waker: &Waker) -> bool {
        self.copy.as_ref().is_some_and(|copy| {
            waker.data() == copy.data()
                && (ptr::eq(waker.vtable(), copy.vtable())
                    || waker.vtable() as *const RawWakerVTable as usize == self.vtable)
        })
    }
}

pub(crate) struct Shared {
    pub(crate) spawner: Arc<dyn Spawner>,
    pub(crate) config: Config,
    /// `EventLoop::is_multi_thread` of the loop, read when it was made.
    pub(crate) multi_thread: bool,
    /// The tasks it tracks, and where close is.
    pub(crate) registry: Registry,
    /// Fired when close begins: `shutdown_requested()`.
    pub(crate) shutdown: Latch,
    /// Fired by the first SIGINT of a run with an interrupt grace: `interrupted()`.
    pub(crate) interrupt: Latch,
    /// This runner's Ctrl-C state (the signal module's).
    pub(crate) sigint: RunnerSignal,
    /// Set when the running `run` must return an error and drop its main future.
    abort_main: Mutex<Option<RunError>>,
    abort_flag: AtomicBool,
    /// The waker of the main future (or of close), for [`abort_main`](Self::abort_main) and
    /// [`push_own`](Self::push_own). Unlike an `AtomicWaker`, a wake leaves it in place: a main
    /// future polled again with the same waker registers nothing (see
    /// [`register_main_cached`](Self::register_main_cached)). Written only by the loop's thread.
    main_waker: Mutex<Option<Waker>>,
    /// Tasks close cancelled in place whose empty shell the backend has not polled or dropped
    /// yet; close waits for none to be left.
    pub(crate) shells: AtomicUsize,
    shells_waker: AtomicWaker,
    pub(crate) blocking: Mutex<Slab<BlockingInfo>>,
    pub(crate) blocking_done: Condvar,
    /// The runner's local tasks: their thread, how many are alive, its own executor.
    pub(crate) local: LocalState,
    /// The runner's own run queue: its `Send` tasks on a current-thread loop (see `task::own`).
    pub(crate) own: OwnQueue,
    /// The runner's own run queue on a multi-thread loop, and its pumps (see `task::pump`).
    pub(crate) pumps: Option<Arc<Pumps>>,
}

impl Shared {
    /// `pumps`: the most pumps the runner's own queue gets (the loop's workers,
    /// `EventLoop::workers`), on a multi-thread loop without `backend_tasks`; `None` elsewhere.
    pub(crate) fn new(
        spawner: Arc<dyn Spawner>,
        config: Config,
        multi_thread: bool,
        pumps: Option<usize>,
    ) -> Self {
        let pumps = pumps.map(|max| Arc::new(Pumps::new(spawner.clone(), max)));
        Shared {
            pumps,
            spawner,
            config,
            multi_thread,
            registry: Registry::new(multi_thread),
            shutdown: Latch::new(),
            interrupt: Latch::new(),
            sigint: RunnerSignal::new(),
            abort_main: Mutex::new(None),
            abort_flag: AtomicBool::new(false),
            main_waker: Mutex::new(None),
            shells: AtomicUsize::new(0),
            shells_waker: AtomicWaker::new(),
            blocking: Mutex::new(Slab::new()),
            blocking_done: Condvar::new(),
            local: LocalState::default(),
            own: OwnQueue::default(),
        }
    }

    /// Adds a task: [`Registry::register`].
    ///
    /// `from_loop` says the spawn comes from this runner's own loop (one of its tasks' polls or
    /// destructors, the close itself; see `scope::loop_running`): once close is cancelling, only
    /// those are accepted, born cancelled; a spawn from anywhere else (a `LoopHandle` on another
    /// thread, a blocking job, a task of another runner) is refused. Otherwise threads that keep
    /// spawning could keep the registry from ever draining, and close from ever returning.
    #[inline]
    pub(crate) fn register<R>(
        &self,
        from_loop: bool,
        make: impl FnOnce(usize, bool) -> (Entry, R),
    ) -> Result<R, SpawnError> {
        self.registry.register(from_loop, make)
    }

    /// Removes an ended task, counting its outcome if close is under way:
    /// [`Registry::deregister`].
    #[inline]
    #[must_use]
    pub(crate) fn deregister(&self, key: usize, outcome: Outcome) -> bool {
        self.registry.deregister(key, outcome)
    }

    /// Ready when no task is left, sealed with `seal`: [`Registry::poll_drained`].
    pub(crate) fn poll_drained(&self, cx: &mut TaskCx<'_>, seal: bool) -> Poll<()> {
        self.registry.poll_drained(cx, seal)
    }

    pub(crate) fn shell_done(&self) {
        if self.shells.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shells_waker.wake();
        }
    }

    /// Ready when the backend has seen every shell close left (see `SHELL` in `task::state`).
    pub(crate) fn poll_shells(&self, cx: &mut TaskCx<'_>) -> Poll<()> {
        if self.shells.load(Ordering::Acquire) == 0 {
            return Poll::Ready(());
        }
        self.shells_waker.register(cx.waker());
        if self.shells.load(Ordering::Acquire) == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Queues a task on the shared half of the runner's own queue (see `task::own`; the
    /// thread's half is `scope::push_own`'s), waking the main future unless an earlier push,
    /// since the last drive took the queue, did (or the loop's thread will look anyway).
    #[inline]
    pub(crate) fn push_own(&self, task: Arc<dyn OwnTask>) {
        if let Some(pumps) = &self.pumps {
            return push_pumped(pumps, task);
        }
        if self.own.push(task) {
            self.wake_main();
        }
    }

    /// Closes the runner's own queues for good, at close's end or when the runner is abandoned:
    /// what they hold is let go of (`OwnQueue::clear`) or cancelled (`Pumps::clear`), and a push
    /// from then on queues nothing.
    pub(crate) fn clear_own_queues(&self) {
        self.own.clear();
        if let Some(pumps) = &self.pumps {
            pumps.clear();
        }
    }

    /// Wakes the main future (or close), through the waker it registered last.
    fn wake_main(&self) {
        // Cloned out and woken outside the lock: a waker's `wake` may run anything, this
        // runner's spawns included.
        let waker = lock(&self.main_waker).clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Registers the waker of the main future (or of close) after its pending poll: for
    /// [`abort_main`](Self::abort_main) and for the tasks on the runner's own queue.
    #[inline]
    pub(crate) fn register_main(&self, cx: &mut TaskCx<'_>) {
        self.store_main_waker(cx.waker(), &mut LastWaker::default());
        if !self.multi_thread {
            self.own.registered(cx);
        }
    }

    /// [`register_main`](Self::register_main) for the main future of a `run`, with `last`, the
    /// runner's copy of the waker stored last: no lock and no reference counting when `cx`'s
    /// waker is the one stored (a backend's `block_on` polls with one waker, often the same for
    /// every `block_on` on a thread). `last` must be the one copy kept for this runner.
    ///
    /// Skipping is sound because the stored waker stays in place: every wake from now on wakes
    /// it (under the lock it was stored under), and a wake that came before it was stored set
    /// its flag first (`abort_main`, `OwnQueue::push`), which the caller checks after this.
    #[inline]
    pub(crate) fn register_main_cached(&self, cx: &mut TaskCx<'_>, last: &mut LastWaker) {
        if !last.is(cx.waker()) {
            self.store_main_waker(cx.waker(), last);
        }
        if !self.multi_thread {
            self.own.registered(cx);
        }
    }

    /// Drops the stored waker of the main future: the runner is closed.
    pub(crate) fn forget_main_waker(&self) {
        let old = lock(&self.main_waker).take();
        drop(old);
    }

    #[inline(never)]
    fn store_main_waker(&self, waker: &Waker, last: &mut LastWaker) {
        // Forgotten first: a clone that unwinds leaves no copy that differs from the stored one.
        last.copy = None;
        let new = waker.clone();
        let old = lock(&self.main_waker).replace(new);
        drop(old);
        *last = LastWaker {
            copy: Some(waker.clone()),
            vtable: waker.vtable() as *const RawWakerVTable as usize,
        };
    }

    /// Makes the running `run` (or the next one) return `err`.
    pub(crate) fn abort_main(&self, err: RunError) {
        let mut slot = lock(&self.abort_main);
        if slot.is_none() {
            *slot = Some(err);
        }
        self.abort_flag.store(true, Ordering::Release);
        drop(slot);
        self.wake_main();
    }

    /// Checked at every poll of the main future: inline, one load when no abort is pending.
    #[inline]
    pub(crate) fn take_main_abort(&self) -> Option<RunError> {
        if !self.abort_flag.load(Ordering::Acquire) {
            return None;
        }
        self.take_main_abort_slow()
    }

    #[cold]
    fn take_main_abort_slow(&self) -> Option<RunError> {
        self.abort_flag.store(false, Ordering::Release);
        lock(&self.abort_main).take()
    }

    pub(crate) fn report(&self, d: &Diagnostic) {
        // A handler that panics must not take the loop (or a drop during unwinding) down.
        let handler = &self.config.handler;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(d))).is_err() {
            eprintln!("runner: the exception handler panicked while reporting: {d}");
        }
    }
}

impl Interruptible for Shared {
    fn sigint(&self) -> &RunnerSignal {
        &self.sigint
    }

    fn interrupt(&self) -> Interrupt {
        self.config.interrupt
    }

    fn interrupt_grace(&self) -> Option<Duration> {
        self.config.interrupt_grace
    }

    fn interrupted(&self) -> &Latch {
        &self.interrupt
    }

    fn abort_main(&self, err: RunError) {
        Shared::abort_main(self, err);
    }

    fn take_main_abort(&self) -> Option<RunError> {
        Shared::take_main_abort(self)
    }
}

/// [`Shared::push_own`] on a multi-thread loop: out of line, so that the current-thread path
/// (the spawn's and the wake's, inlined where they are made) stays small.
#[inline(never)]
fn push_pumped(pumps: &Arc<Pumps>, task: Arc<dyn OwnTask>) {
    pumps.push(task);
}
