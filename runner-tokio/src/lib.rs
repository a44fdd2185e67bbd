//! The tokio backend of [`runner`](https://docs.rs/runner): [`TokioLoop`].
//!
//! A `TokioLoop` owns a tokio runtime, current-thread or multi-thread, with its I/O and time
//! drivers enabled, so tokio's own sockets and timers work inside runs. The runner's tasks are
//! ordinary tokio tasks (wrapped once by `runner-core`), its blocking jobs go to tokio's blocking
//! pool, and `runner::time` uses tokio's timer.

#![forbid(unsafe_code)]

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use runner_core::{BlockingJob, BoxFuture, EventLoop, RawTask, Spawner};
use tokio::runtime::{Builder, Handle, Runtime};

thread_local! {
    /// Set while one of our blocking jobs runs: the runtime and the blocking task that run it.
    /// tokio allows `block_on` on its blocking threads, but not inside a runtime the job entered
    /// itself (another runtime's `block_on`, or a task of one), which changes the current runtime
    /// or task.
    static IN_BLOCKING: Cell<Option<(tokio::runtime::Id, Option<tokio::task::Id>)>> =
        const { Cell::new(None) };

    /// The parker of [`TokioLoop`]'s multi-thread `block_on` on this thread: made once per
    /// thread, so that a run builds no waker.
    static PARKER: ThreadParker = ThreadParker::new();
}

/// A tokio runtime as a runner's loop.
///
/// # Examples
///
/// ```
/// # mod runner { pub use runner_core::*; pub mod tokio { pub use runner_tokio::TokioLoop; } }
/// use runner::tokio::TokioLoop;
///
/// let mut rt = runner::Builder::<TokioLoop>::default()
///     .loop_factory(|| TokioLoop::multi_thread(2))
///     .build();
/// assert_eq!(rt.run(async { 40 + 2 }).unwrap(), 42);
/// ```
pub struct TokioLoop {
    rt: Option<Runtime>,
    blocking: Arc<AtomicUsize>,
    /// Read once: the flavour decides the `block_on` path of every run.
    multi_thread: bool,
}

impl TokioLoop {
    /// A current-thread runtime: tasks run on the runner's thread, inside `run` only (Python's
    /// model). The default loop of the `runner` facade. `spawn_local` works on it (the runner
    /// runs `!Send` tasks itself, so runs need no tokio `LocalSet`).
    ///
    /// # Errors
    ///
    /// When tokio cannot create its I/O driver.
    pub fn current_thread() -> io::Result<Self> {
        Self::from_runtime(Builder::new_current_thread().enable_all().build()?)
    }

    /// A multi-thread runtime with `workers` worker threads (at least 1): tasks also progress
    /// between runs.
    ///
    /// A run enters the runtime's context ([`Handle::enter`]: [`Handle::current`],
    /// `tokio::spawn`, tokio's timers and I/O, `block_in_place` work in it) and polls its future
    /// on the calling thread, parked between polls, as tokio's `block_on` does; without tokio's
    /// "driving a runtime" mark, which is what lets `Runtime::block_on` and `Handle::block_on`
    /// refuse a nested call. The runner refuses its own nested runs ([`RunError::NestedRun`]);
    /// a tokio `block_on` called inside a run blocks the thread until its future completes, as
    /// it would inside a blocking job.
    ///
    /// [`RunError::NestedRun`]: runner_core::RunError::NestedRun
    ///
    /// # Errors
    ///
    /// When tokio cannot create its driver or threads.
    pub fn multi_thread(workers: usize) -> io::Result<Self> {
        let rt = Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("runner-tokio-worker")
            .enable_all()
            .build()?;
        Self::from_runtime(rt)
    }

    /// Wraps a runtime you configured yourself.
    ///
    /// # Errors
    ///
    /// Never; returns `io::Result` so that `|| TokioLoop::from_runtime(..)` is a loop factory.
    pub fn from_runtime(rt: Runtime) -> io::Result<Self> {
        let multi_thread =
            rt.handle().runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread;
        Ok(TokioLoop {
            rt: Some(rt),
            blocking: Arc::new(AtomicUsize::new(0)),
            multi_thread,
        })
    }

    /// The tokio runtime's handle, to use tokio APIs directly.
    pub fn handle(&self) -> &Handle {
        self.runtime().handle()
    }

    /// True for a multi-thread runtime.
    pub fn is_multi_thread(&self) -> bool {
        self.multi_thread
    }

    fn runtime(&self) -> &Runtime {
        self.rt.as_ref().expect("the runtime lives until shutdown")
    }
}

impl EventLoop for TokioLoop {
    fn default_loop() -> io::Result<Self> {
        Self::current_thread()
    }

    #[inline]
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        if self.multi_thread {
            park_loop(self.handle(), fut)
        } else {
            self.runtime().block_on(fut)
        }
    }

    #[inline]
    fn enter<R, F: FnOnce() -> R>(&self, f: F) -> Option<R> {
        // On both flavours, although the multi-thread `block_on` (`park_loop`) is as cheap as
        // an inline poll: without it, `spawn_join_10k` on tokio multi-thread measured slower
        // (the main future's spawns made straight from its first poll, instead of held back and
        // handed to the runtime in one batch from inside `block_on`): see PERFORMANCE.md.
        let _guard = self.handle().enter();
        Some(f())
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        Arc::new(TokioSpawner {
            handle: self.handle().clone(),
            blocking: self.blocking.clone(),
        })
    }

    fn is_multi_thread(&self) -> bool {
        TokioLoop::is_multi_thread(self)
    }

    /// The runtime's worker threads.
    fn workers(&self) -> usize {
        self.handle().metrics().num_workers()
    }

    fn reaps_at_shutdown(&self) -> bool {
        // The loop owns its runtime, and dropping a runtime (or `shutdown_background`) shuts
        // down every task it owns, idle ones included.
        true
    }

    fn is_nested() -> bool {
        let Ok(current) = Handle::try_current() else {
            return false;
        };
        match IN_BLOCKING.with(Cell::get) {
            // On a blocking thread of ours: nested only if the job entered a runtime since.
            Some((runtime, task)) => current.id() != runtime || tokio::task::try_id() != task,
            None => true,
        }
    }

    fn shutdown(mut self) {
        let rt = self.rt.take().expect("shut down once");
        if Handle::try_current().is_ok() || self.blocking.load(Ordering::Acquire) > 0 {
            // Dropping a runtime inside another one panics, and a plain drop would wait for the
            // blocking jobs the runner already gave up on.
            rt.shutdown_background();
        } else {
            drop(rt);
        }
    }
}

impl Drop for TokioLoop {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if Handle::try_current().is_ok() {
                rt.shutdown_background();
            }
        }
    }
}

impl fmt::Debug for TokioLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioLoop")
            .field("multi_thread", &TokioLoop::is_multi_thread(self))
            .finish_non_exhaustive()
    }
}

/// `block_on` on a multi-thread runtime: the runtime's context entered once (as
/// [`Handle::enter`]), then `fut` polled on this thread, parking between polls.
///
/// This is what tokio's own `block_on` does on a multi-thread runtime, whose workers drive its
/// I/O and timers: the calling thread only polls its future and parks. tokio's adds a second
/// entry (`enter_runtime`: the "driving a runtime" flag, a fresh RNG seed) and a coop budget per
/// poll, about 350 instructions a run of a future that yields 10 times; the runner refuses a
/// nested run itself, [`Handle::current`] and `block_in_place` work under [`Handle::enter`]
/// alone. A run's first poll is still made inline (`enter`), before this loop.
fn park_loop<F: Future>(handle: &Handle, fut: F) -> F::Output {
    let _entered = handle.enter();
    let mut fut = Some(fut);
    // `try_with`: a `block_on` from another thread-local's destructor makes its own parker.
    let done = PARKER.try_with(|here| {
        if here.busy.replace(true) {
            // Nested (the runner makes no such call, a direct user of the loop may): the outer
            // loop's wakes stay its own.
            return None;
        }
        let _busy = Busy(&here.busy);
        fut.take().map(|fut| park_with(here, fut))
    });
    match (done, fut) {
        (Ok(Some(v)), _) => v,
        (_, Some(fut)) => park_with(&ThreadParker::new(), fut),
        (_, None) => unreachable!("a future is polled to completion or handed back"),
    }
}

#[inline(always)]
fn park_with<F: Future>(here: &ThreadParker, fut: F) -> F::Output {
    // A wake left over from an earlier `block_on` (its waker's clones live on) is stale here.
    here.parker.notified.store(false, Ordering::Relaxed);
    let mut cx = Context::from_waker(&here.waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        here.parker.park();
    }
}

/// A thread's [`Parker`], its waker, and whether a `park_loop` uses them.
struct ThreadParker {
    parker: Arc<Parker>,
    waker: Waker,
    busy: Cell<bool>,
}

impl ThreadParker {
    /// A parker for the calling thread.
    #[cold]
    fn new() -> Self {
        let parker = Arc::new(Parker {
            notified: AtomicBool::new(false),
            thread: thread::current(),
        });
        ThreadParker {
            waker: Waker::from(parker.clone()),
            parker,
            busy: Cell::new(false),
        }
    }
}

/// Clears [`ThreadParker::busy`] when a `park_loop` ends, also by unwinding.
struct Busy<'a>(&'a Cell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// Wakes the thread parked in `park_loop`: a flag of its own, so that a `thread::park` token
/// the future consumed itself (a blocking call inside a poll) loses no wake.
struct Parker {
    notified: AtomicBool,
    thread: Thread,
}

impl Parker {
    /// Returns once woken since the last return; a wake that came first returns at once.
    fn park(&self) {
        while !self.notified.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

struct TokioSpawner {
    handle: Handle,
    blocking: Arc<AtomicUsize>,
}

impl Spawner for TokioSpawner {
    fn spawn(&self, task: BoxFuture) {
        drop(self.handle.spawn(task));
    }

    fn spawn_task(&self, task: RawTask) {
        // Stored in tokio's task as it is: no box.
        drop(self.handle.spawn(task));
    }

    fn spawn_blocking(&self, job: BlockingJob) {
        let count = self.blocking.clone();
        count.fetch_add(1, Ordering::AcqRel);
        drop(self.handle.spawn_blocking(move || {
            struct Done(Arc<AtomicUsize>);
            impl Drop for Done {
                fn drop(&mut self) {
                    IN_BLOCKING.with(|b| b.set(None));
                    self.0.fetch_sub(1, Ordering::AcqRel);
                }
            }
            let _done = Done(count);
            let here = (Handle::current().id(), tokio::task::try_id());
            IN_BLOCKING.with(|b| b.set(Some(here)));
            job()
        }));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let _enter = self.handle.enter();
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::task::{Poll, Waker};
    use std::thread;
    use std::time::Duration;

    use runner_core::{EventLoop, RunError, Runner};

    use super::TokioLoop;

    /// Runs `f` on a thread of its own and fails, naming `what`, if it takes over 20 s.
    fn watchdog(what: &str, f: impl FnOnce() + Send + 'static) {
        let (done, finished) = mpsc::channel();
        let test = thread::spawn(move || {
            f();
            done.send(()).unwrap();
        });
        if finished.recv_timeout(Duration::from_secs(20)).is_err() {
            panic!("hung: {what}");
        }
        test.join().unwrap();
    }

    fn multi() -> Runner<TokioLoop> {
        Runner::<TokioLoop>::builder()
            .loop_factory(|| TokioLoop::multi_thread(2))
            .build()
    }

    /// A multi-thread run polls in the runtime's context (`Handle::enter`) without tokio's
    /// `enter_runtime`: what a run needs from tokio still works, and a nested run is refused.
    #[test]
    fn multi_thread_run_is_inside_the_runtime_context() {
        watchdog("a multi-thread run using tokio's APIs", || {
            let mut rt = multi();
            let id = rt.get_loop().unwrap().handle().id();
            let out = rt
                .run(async move {
                    assert_eq!(tokio::runtime::Handle::current().id(), id);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let task = tokio::spawn(async { 40 }).await.unwrap();
                    let blocking = tokio::task::block_in_place(|| 2);
                    let nested = Runner::<TokioLoop>::new().run(async { 0 });
                    assert!(matches!(nested, Err(RunError::NestedRun)), "{nested:?}");
                    assert!(TokioLoop::is_nested());
                    task + blocking
                })
                .unwrap();
            assert_eq!(out, 42);
            assert!(!TokioLoop::is_nested(), "the context is left after the run");
        });
    }

    /// The thread's parker is reused from run to run: a wake from another thread reaches each
    /// run, and a wake left over from an earlier run (a stale waker clone) ends no later one
    /// early or late.
    #[test]
    fn multi_thread_runs_are_woken_from_other_threads() {
        watchdog("a multi-thread run woken from another thread", || {
            let mut rt = multi();
            let mut stale = None;
            for _ in 0..50 {
                let flag = Arc::new(AtomicBool::new(false));
                let waker = rt
                    .run({
                        let flag = flag.clone();
                        async move {
                            // The waker of the latest poll: the first poll is the run's inline
                            // one, with a waker that wakes nothing.
                            let slot = Arc::new(Mutex::new(None::<Waker>));
                            let mut started = false;
                            poll_fn(|cx| {
                                *slot.lock().unwrap() = Some(cx.waker().clone());
                                if flag.load(Ordering::SeqCst) {
                                    return Poll::Ready(());
                                }
                                if !started {
                                    started = true;
                                    let (flag, slot) = (flag.clone(), slot.clone());
                                    thread::spawn(move || {
                                        thread::sleep(Duration::from_millis(1));
                                        flag.store(true, Ordering::SeqCst);
                                        let w = slot.lock().unwrap().clone();
                                        w.expect("polled once").wake();
                                    });
                                }
                                Poll::Pending
                            })
                            .await;
                            let w = slot.lock().unwrap().take();
                            w.expect("polled")
                        }
                    })
                    .unwrap();
                if let Some(old) = stale.replace(waker) {
                    old.wake();
                }
            }
        });
    }

    /// `block_on` called inside `block_on` on the same thread (the runner never does; a direct
    /// user of the loop can): each has its own parker, and the outer one still hears its wake.
    #[test]
    fn nested_block_on_keeps_the_outer_wake() {
        watchdog("the outer block_on after an inner one", || {
            let lp = TokioLoop::multi_thread(1).unwrap();
            let flag = Arc::new(AtomicBool::new(false));
            let mut started = false;
            let inner_lp = TokioLoop::multi_thread(1).unwrap();
            lp.block_on(poll_fn(|cx| {
                if flag.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                if !started {
                    started = true;
                    let (flag, w) = (flag.clone(), cx.waker().clone());
                    thread::spawn(move || {
                        flag.store(true, Ordering::SeqCst);
                        w.wake();
                    });
                    // The outer wake most likely arrives while the inner loop parks.
                    inner_lp.block_on(tokio::time::sleep(Duration::from_millis(20)));
                }
                Poll::Pending
            }));
            lp.shutdown();
            inner_lp.shutdown();
        });
    }
}
