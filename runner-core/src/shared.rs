//! The state a runner shares with its tasks, handles and the thread-local scope.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context as TaskCx, Poll, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use slab::Slab;

use crate::diagnostic::{Diagnostic, Handler, UnhandledPanic};
use crate::error::{RunError, SpawnError};
use crate::event_loop::{LocalSpawner, Spawner};
use crate::local::{LocalExecutor, LocalTarget};
use crate::signal::Interrupt;
use crate::task::TaskRef;

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
}

/// Where close is. Spawns are accepted until `Closed`; from `Cancelling` on they are born
/// cancelled, so a task spawned while close runs is still counted and dropped on the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Open,
    Grace,
    Cancelling,
    Closed,
}

/// Outcomes of the tasks that ended while the runner was closing.
#[derive(Debug, Default, Clone, Copy)]
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

pub(crate) struct Registry {
    pub(crate) tasks: Slab<Arc<dyn TaskRef>>,
    pub(crate) phase: Phase,
    pub(crate) outcomes: Outcomes,
    waiter: Option<Waker>,
}

/// A one-shot broadcast that any number of futures can wait on.
pub(crate) struct Signal {
    fired: AtomicBool,
    wakers: Mutex<Slab<Waker>>,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Signal {
            fired: AtomicBool::new(false),
            wakers: Mutex::new(Slab::new()),
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    pub(crate) fn fire(&self) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        let wakers: Vec<Waker> = lock(&self.wakers).drain().collect();
        for w in wakers {
            w.wake();
        }
    }

    pub(crate) fn reset(&self) {
        self.fired.store(false, Ordering::Release);
    }

    /// Polls for the signal; `key` remembers this waiter's slot between polls.
    pub(crate) fn poll(&self, key: &mut Option<usize>, cx: &mut TaskCx<'_>) -> Poll<()> {
        if self.is_fired() {
            return Poll::Ready(());
        }
        let mut wakers = lock(&self.wakers);
        match key.and_then(|k| wakers.get_mut(k)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => w.clone_from(cx.waker()),
            None => *key = Some(wakers.insert(cx.waker().clone())),
        }
        drop(wakers);
        // `fire` sets the flag before draining: checking again after registering cannot miss it.
        if self.is_fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub(crate) fn forget(&self, key: Option<usize>) {
        if let Some(k) = key {
            let mut wakers = lock(&self.wakers);
            if wakers.contains(k) {
                wakers.remove(k);
            }
        }
    }
}

/// Waits for one of the current runner's one-shot signals: what `shutdown_requested()` and
/// `interrupted()` return, wrapped.
pub(crate) struct SignalWait {
    shared: Arc<Shared>,
    key: Option<usize>,
    signal: fn(&Shared) -> &Signal,
}

impl SignalWait {
    /// Waits on `signal` of the runner running the caller.
    ///
    /// # Panics
    ///
    /// Outside any run, with a message naming `what`.
    #[track_caller]
    pub(crate) fn current(what: &str, signal: fn(&Shared) -> &Signal) -> Self {
        let shared = with_current(|s| s.cloned())
            .unwrap_or_else(|| panic!("{what}: {}", crate::error::MSG_NO_RUNTIME));
        SignalWait {
            shared,
            key: None,
            signal,
        }
    }
}

impl std::future::Future for SignalWait {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        let this = &mut *self;
        (this.signal)(&this.shared).poll(&mut this.key, cx)
    }
}

impl Drop for SignalWait {
    fn drop(&mut self) {
        (self.signal)(&self.shared).forget(self.key.take());
    }
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data consistent
/// before anything that can panic runs (user code never runs under these locks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct Shared {
    pub(crate) spawner: Arc<dyn Spawner>,
    pub(crate) config: Config,
    /// `EventLoop::is_multi_thread` of the loop, read when it was made.
    pub(crate) multi_thread: bool,
    registry: Mutex<Registry>,
    /// Fired when close begins: `shutdown_requested()`.
    pub(crate) shutdown: Signal,
    /// Fired by the first SIGINT of a run with an interrupt grace: `interrupted()`.
    pub(crate) interrupt: Signal,
    /// This runner's Ctrl-C state (the signal module's).
    pub(crate) sigint: crate::signal::RunnerSignal,
    /// Set when the running `run` must return an error and drop its main future.
    abort_main: Mutex<Option<RunError>>,
    abort_flag: AtomicBool,
    pub(crate) main_waker: AtomicWaker,
    /// Tasks close cancelled in place whose empty shell the backend has not polled or dropped
    /// yet; close waits for none to be left.
    pub(crate) shells: AtomicUsize,
    shells_waker: AtomicWaker,
    pub(crate) blocking: Mutex<Slab<crate::task::BlockingInfo>>,
    pub(crate) blocking_done: Condvar,
    /// The thread the runner's local tasks live on: while any is alive (`local_alive`), the
    /// runner runs and closes only there.
    pub(crate) local_home: Mutex<Option<ThreadId>>,
    /// Local tasks spawned and not yet ended.
    pub(crate) local_alive: AtomicUsize,
    /// The `Send` half of the runner's own local executor, naming its thread (see `local.rs`).
    pub(crate) local: Mutex<Option<Arc<crate::local::LocalQueue>>>,
    /// Set once the runner's own local executor exists: until then, driving local tasks costs
    /// one relaxed load.
    pub(crate) has_local: AtomicBool,
}

impl Shared {
    pub(crate) fn new(spawner: Arc<dyn Spawner>, config: Config, multi_thread: bool) -> Self {
        Shared {
            spawner,
            config,
            multi_thread,
            registry: Mutex::new(Registry {
                tasks: Slab::new(),
                phase: Phase::Open,
                outcomes: Outcomes::default(),
                waiter: None,
            }),
            shutdown: Signal::new(),
            interrupt: Signal::new(),
            sigint: crate::signal::RunnerSignal::new(),
            abort_main: Mutex::new(None),
            abort_flag: AtomicBool::new(false),
            main_waker: AtomicWaker::new(),
            shells: AtomicUsize::new(0),
            shells_waker: AtomicWaker::new(),
            blocking: Mutex::new(Slab::new()),
            blocking_done: Condvar::new(),
            local_home: Mutex::new(None),
            local_alive: AtomicUsize::new(0),
            local: Mutex::new(None),
            has_local: AtomicBool::new(false),
        }
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }

    /// Adds a task. `make` runs under the registry lock with the task's key and whether it is
    /// born cancelled.
    ///
    /// Once close is cancelling, only spawns made from this runner's own loop (one of its tasks'
    /// polls or destructors, the close itself) are accepted, born cancelled; a spawn from anywhere
    /// else (a `LoopHandle` on another thread, a blocking job, a task of another runner) is
    /// refused. Otherwise threads that keep spawning could keep the registry from ever draining,
    /// and close from ever returning.
    ///
    /// `from_loop` says the spawn comes from this runner's own loop (see [`running_here`]).
    pub(crate) fn register<R>(
        &self,
        from_loop: bool,
        make: impl FnOnce(usize, bool) -> (Arc<dyn TaskRef>, R),
    ) -> Result<R, SpawnError> {
        let mut reg = self.registry();
        let cancelled = reg.phase >= Phase::Cancelling;
        if reg.phase == Phase::Closed || (cancelled && !from_loop) {
            return Err(SpawnError::Closed);
        }
        let entry = reg.tasks.vacant_entry();
        let (task, out) = make(entry.key(), cancelled);
        entry.insert(task);
        Ok(out)
    }

    /// Removes a finished task and counts its outcome when close is under way; true when it
    /// was (the task ended while the runner was closing).
    ///
    /// The one point where a task's outcome is counted: called before the output is handed to
    /// the join handle, so a task joined before close began is never counted by close.
    #[must_use]
    pub(crate) fn deregister(&self, key: usize, outcome: Outcome) -> bool {
        let mut reg = self.registry();
        // The registry's reference is dropped after the lock is released: it may be the last one,
        // and dropping the task runs user code (the output's destructor).
        let removed = reg.tasks.try_remove(key);
        let closing = reg.phase > Phase::Open;
        if removed.is_some() && closing {
            match outcome {
                Outcome::Finished => reg.outcomes.finished += 1,
                Outcome::Cancelled => reg.outcomes.cancelled += 1,
                Outcome::Panicked => reg.outcomes.panicked += 1,
            }
        }
        let waker = if reg.tasks.is_empty() {
            reg.waiter.take()
        } else {
            None
        };
        drop(reg);
        drop(removed);
        if let Some(w) = waker {
            w.wake();
        }
        closing
    }

    /// Ready when no tracked task is left; with `seal`, the registry then refuses new tasks, in
    /// the same critical section, so no spawn can slip in between.
    pub(crate) fn poll_drained(&self, cx: &mut TaskCx<'_>, seal: bool) -> Poll<()> {
        let mut reg = self.registry();
        if reg.tasks.is_empty() {
            if seal {
                reg.phase = Phase::Closed;
            }
            Poll::Ready(())
        } else {
            reg.waiter = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    pub(crate) fn shell_done(&self) {
        if self.shells.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shells_waker.wake();
        }
    }

    /// Ready when the backend has seen every shell close left (see `task::SHELL`).
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

    /// Makes the running `run` (or the next one) return `err`.
    pub(crate) fn abort_main(&self, err: RunError) {
        let mut slot = lock(&self.abort_main);
        if slot.is_none() {
            *slot = Some(err);
        }
        self.abort_flag.store(true, Ordering::Release);
        drop(slot);
        self.main_waker.wake();
    }

    pub(crate) fn take_main_abort(&self) -> Option<RunError> {
        if !self.abort_flag.load(Ordering::Acquire) {
            return None;
        }
        self.abort_flag.store(false, Ordering::Release);
        lock(&self.abort_main).take()
    }

    /// `Err(WrongThread)` while local tasks are alive on another thread than the calling one.
    pub(crate) fn check_home(&self) -> Result<(), RunError> {
        if self.local_alive.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        match *lock(&self.local_home) {
            Some(home) if home != std::thread::current().id() => Err(RunError::WrongThread),
            _ => Ok(()),
        }
    }

    /// Makes the calling thread the home of the runner's local tasks, unless some are alive on
    /// another thread (`false` then).
    pub(crate) fn claim_local_home(&self) -> bool {
        let here = std::thread::current().id();
        let mut home = lock(&self.local_home);
        match *home {
            Some(h) if h != here && self.local_alive.load(Ordering::Acquire) > 0 => false,
            _ => {
                *home = Some(here);
                true
            }
        }
    }

    pub(crate) fn report(&self, d: &Diagnostic) {
        // A handler that panics must not take the loop (or a drop during unwinding) down.
        let handler = &self.config.handler;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(d))).is_err() {
            eprintln!("runner: the exception handler panicked while reporting: {d}");
        }
    }
}

/// The runner running on this thread, and how many loops are running on it (runs, closes, and
/// task polls nest). One thread-local for both, so entering and leaving costs one access each.
struct Ambient {
    scope: Cell<Option<Arc<Shared>>>,
    depth: Cell<usize>,
    /// The runner whose `run` (or close) this thread is inside, as its address; 0 when none.
    /// Only that runner's main future drives local tasks here.
    owner: Cell<usize>,
    /// The loop's native local spawner, when it has one.
    local: Cell<Option<Rc<dyn LocalSpawner>>>,
    /// The running runner's own local executor on this thread, once it has one.
    own: Cell<Option<Rc<LocalExecutor>>>,
}

thread_local! {
    static AMBIENT: Ambient = const {
        Ambient {
            scope: Cell::new(None),
            depth: Cell::new(0),
            owner: Cell::new(0),
            local: Cell::new(None),
            own: Cell::new(None),
        }
    };
}

/// Calls `f` with the runner of the current scope, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    AMBIENT.with(|a| {
        let cur = a.scope.take();
        struct Restore<'a>(&'a Cell<Option<Arc<Shared>>>, Option<Arc<Shared>>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1.take());
            }
        }
        let restore = Restore(&a.scope, cur);
        f(restore.1.as_ref())
    })
}

/// True while a runner's loop is running on this thread: inside `run`, inside close, or inside
/// the poll of one of a runner's tasks (on any backend's worker thread).
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
    pub(crate) fn new(slot: &'a mut Option<Arc<Shared>>) -> Self {
        Self::with_running(slot, true)
    }

    /// `running: false` makes the runner current without marking a loop as running: for blocking
    /// jobs, which may spawn onto the loop and may also run another runner.
    pub(crate) fn with_running(slot: &'a mut Option<Arc<Shared>>, running: bool) -> Self {
        AMBIENT.with(|a| {
            *slot = a.scope.replace(slot.take());
            if running {
                a.depth.set(a.depth.get() + 1);
            }
        });
        Enter { slot, running }
    }
}

impl Drop for Enter<'_> {
    fn drop(&mut self) {
        let prev = self.slot.take();
        *self.slot = AMBIENT.with(|a| {
            if self.running {
                a.depth.set(a.depth.get() - 1);
            }
            a.scope.replace(prev)
        });
    }
}

/// Marks this thread as running `shared`'s `run` (or close), with the loop's native local
/// spawner if it has one, until dropped. A run never nests in another on one thread, so there is
/// nothing to restore.
pub(crate) struct EnterLocal(());

impl EnterLocal {
    pub(crate) fn new(shared: &Shared, native: Option<Rc<dyn LocalSpawner>>) -> Self {
        let own = crate::local::find(shared);
        AMBIENT.with(|a| {
            a.owner.set(shared as *const Shared as usize);
            if native.is_some() {
                a.local.set(native);
            }
            a.own.set(own);
        });
        EnterLocal(())
    }
}

impl Drop for EnterLocal {
    fn drop(&mut self) {
        let (native, own) = AMBIENT.with(|a| {
            a.owner.set(0);
            (a.local.take(), a.own.take())
        });
        drop(native);
        drop(own);
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
        let ex = crate::local::create(shared);
        AMBIENT.with(|a| a.own.set(Some(ex.clone())));
        ex
    });
    Some(LocalTarget { own, native })
}
