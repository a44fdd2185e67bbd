//! The `Runner`: one object that owns an event loop's whole life.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll, Waker};

use pin_project_lite::pin_project;

use crate::builder::Builder;
use crate::close::{self, CloseReport, Live};
use crate::context::{self, Context};
use crate::diagnostic::TaskInfo;
use crate::error::RunError;
use crate::event_loop::{RawTask, Spawner};
use crate::factory::LoopFactory;
use crate::handle::LoopHandle;
use crate::nesting;
use crate::scope;
use crate::shared::{Config, LastWaker, Shared};
use crate::signal;
use crate::EventLoop;

/// Where a `Runner` is in its life.
///
/// ```text
///  Created --(first run / get_loop / handle)--> Initialized --(close / drop)--> Closed
///     ^  \__ factory failed: stays Created,        |   \__ run failed or panicked:
///     |      next call retries                     |       stays Initialized
///     \__ close on Created: no-op                  \__ close from inside a run: NestedRun,
///                                                      stays Initialized
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing exists yet: no loop, no context snapshot. `close` does nothing and leaves the
    /// runner usable.
    Created,
    /// The loop exists, the runner's context was snapshotted, and `run` can be called any number
    /// of times.
    Initialized,
    /// The loop was shut down. Every call returns [`RunError::Closed`] without polling anything;
    /// `close` does nothing.
    Closed,
}

enum Inner<L> {
    Created,
    Initialized(Live<L>),
    Closed,
}

/// Owns an event loop's whole life: Python's `asyncio.Runner`.
///
/// The loop is made lazily, by the runner's [`LoopFactory`], on the first [`run`](Self::run),
/// [`get_loop`](Self::get_loop) or [`handle`](Self::handle). Every `run` executes on that one
/// loop, in one shared [`Context`], so a context variable set in one run is seen by the next.
/// Dropping the runner closes it.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # type Runner = runner::Runner<runner::testing::TestLoop>;
/// let mut rt = Runner::new();
/// assert_eq!(rt.run(async { 1 + 1 }).unwrap(), 2);
/// assert_eq!(rt.run(async { "again, same loop" }).unwrap(), "again, same loop");
/// let report = rt.close().unwrap();
/// assert_eq!(report.cancelled, 0);
/// ```
///
/// # States
///
/// See [`State`]: `Created` until first use, then `Initialized`, then `Closed` for good. A failed
/// factory leaves the runner `Created`; a failed or panicking `run` leaves it `Initialized`.
///
/// # Shutdown
///
/// [`close`](Self::close) (or drop) runs, in order:
/// 1. [`shutdown_requested()`](crate::shutdown_requested) resolves in every task;
/// 2. the loop keeps running until every task spawned through the runner has finished, or
///    [`Builder::shutdown_grace`] (default 0) runs out;
/// 3. every remaining task is cancelled and its future dropped on the loop's own thread, so its
///    destructors run (tasks spawned meanwhile are cancelled too): in bulk, on the thread running
///    close, each with the runner and its own context installed; from then on, spawns from
///    outside this runner's loop (other threads, blocking jobs, tasks of other runners) are
///    refused;
/// 4. panics nobody observed are reported to the exception handler as they happen;
/// 5. blocking jobs get [`Builder::blocking_shutdown_timeout`] (default 10 s), then the ones still
///    running are reported and left behind: close never waits forever on them;
/// 6. the loop is shut down and a [`CloseReport`] returned, in which every task that was alive
///    when close began ends as finished, cancelled or panicked.
pub struct Runner<L: EventLoop> {
    inner: Inner<L>,
    factory: Box<dyn LoopFactory<L>>,
    config: Config,
    /// The runner's copy of the main future's waker it stored last (see
    /// `Shared::register_main_cached`), kept from one `run` to the next.
    last_waker: LastWaker,
}

impl<L: EventLoop> Runner<L> {
    /// A runner on the backend's default loop ([`EventLoop::default_loop`]), with default
    /// settings. Nothing is created until first use.
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// A [`Builder`] to configure a runner.
    pub fn builder() -> Builder<L> {
        Builder::new()
    }

    pub(crate) fn from_parts(factory: Box<dyn LoopFactory<L>>, config: Config) -> Self {
        Runner {
            inner: Inner::Created,
            factory,
            config,
            last_waker: LastWaker::default(),
        }
    }

    /// Where the runner is in its life.
    pub fn state(&self) -> State {
        match self.inner {
            Inner::Created => State::Created,
            Inner::Initialized(_) => State::Initialized,
            Inner::Closed => State::Closed,
        }
    }

    /// True when debug mode is on: [`Builder::debug`], or else `RUNNER_DEBUG=1` (or `true`) when
    /// the runner was built.
    pub fn is_debug(&self) -> bool {
        self.config.debug
    }

    #[inline]
    fn live(&mut self) -> Result<&mut Live<L>, RunError> {
        if !matches!(self.inner, Inner::Initialized(_)) {
            self.init()?;
        }
        match &mut self.inner {
            Inner::Initialized(live) => Ok(live),
            _ => unreachable!("initialized above"),
        }
    }

    /// Makes the loop of a `Created` runner; `Closed` after close.
    #[cold]
    fn init(&mut self) -> Result<(), RunError> {
        match self.inner {
            Inner::Initialized(_) => Ok(()),
            Inner::Closed => Err(RunError::Closed),
            Inner::Created => {
                let lp = self.factory.make().map_err(RunError::LoopCreation)?;
                let multi_thread = lp.is_multi_thread();
                // Pumps on a multi-thread loop unless `backend_tasks`, as many as its workers at
                // most; the worker count is asked only then: a loop's default answer reads the
                // machine's parallelism (system calls, tens of microseconds).
                let pumps = (multi_thread && !self.config.backend_tasks).then(|| lp.workers());
                let shared = Arc::new(Shared::new(
                    lp.spawner(),
                    self.config.clone(),
                    multi_thread,
                    pumps,
                ));
                self.inner = Inner::Initialized(Live {
                    lp,
                    scope: Some(shared.clone()),
                    shared,
                    ctx: Context::copy_current(),
                });
                Ok(())
            }
        }
    }

    /// The runner's loop, made now if it does not exist yet.
    ///
    /// # Errors
    ///
    /// [`RunError::Closed`] after close; [`RunError::LoopCreation`] when the factory fails (the
    /// runner stays `Created`).
    pub fn get_loop(&mut self) -> Result<&L, RunError> {
        self.live().map(|live| &live.lp)
    }

    /// A handle that spawns onto this runner's loop from any thread.
    ///
    /// # Errors
    ///
    /// As [`get_loop`](Self::get_loop).
    pub fn handle(&mut self) -> Result<LoopHandle, RunError> {
        self.live().map(|live| LoopHandle::new(live.shared.clone()))
    }

    /// Runs `fut` to completion on the runner's loop and returns its output.
    ///
    /// The future runs in the runner's context (shared by every `run`). Tasks it spawns keep
    /// running after it returns; on a current-thread loop they progress only inside `run` (as in
    /// Python), on a multi-thread loop also between runs. A panic in `fut` reaches the caller
    /// with its original payload, and the runner stays usable.
    ///
    /// # Examples
    ///
    /// ```
    /// # use runner_core as runner;
    /// # type Runner = runner::Runner<runner::testing::TestLoop>;
    /// let mut rt = Runner::new();
    /// let out: Result<u8, String> = rt.run(async { Err("spam".to_string()) }).unwrap();
    /// assert_eq!(out.unwrap_err(), "spam");
    /// ```
    ///
    /// # Errors
    ///
    /// - [`RunError::NestedRun`] when a loop is already running on this thread (inside a run, a
    ///   task, or a tokio runtime); nothing is polled and the outer run goes on.
    /// - [`RunError::Closed`] after close; nothing is polled.
    /// - [`RunError::LoopCreation`] when the factory fails.
    /// - [`RunError::Interrupted`] when Ctrl-C cancelled the main future.
    /// - [`RunError::TaskPanicked`] with [`UnhandledPanic::ShutdownRunner`](crate::UnhandledPanic).
    /// - [`RunError::WrongThread`] when local tasks live on another thread.
    ///
    /// # Panics
    ///
    /// Resumes the main future's panic, if it panics.
    #[track_caller]
    pub fn run<F: IntoFuture>(&mut self, fut: F) -> Result<F::Output, RunError> {
        self.run_inner(None, fut.into_future(), Location::caller())
    }

    /// [`run`](Self::run), in `ctx` instead of the runner's context. Sets made by the future stay
    /// in `ctx`.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    #[track_caller]
    pub fn run_with_context<F: IntoFuture>(
        &mut self,
        ctx: &mut Context,
        fut: F,
    ) -> Result<F::Output, RunError> {
        self.run_inner(Some(ctx), fut.into_future(), Location::caller())
    }

    fn run_inner<F: Future>(
        &mut self,
        ctx: Option<&mut Context>,
        fut: F,
        location: &'static Location<'static>,
    ) -> Result<F::Output, RunError> {
        if scope::loop_running() || nesting::runtime_driving::<L>() {
            return Err(RunError::NestedRun);
        }
        if !matches!(self.inner, Inner::Initialized(_)) {
            self.init()?;
        }
        let Inner::Initialized(live) = &mut self.inner else {
            unreachable!("initialized above")
        };
        live.shared.local.check_home()?;
        let Live {
            lp,
            shared,
            scope,
            ctx: runner_ctx,
        } = live;
        let main = Main {
            fut,
            shared,
            last_waker: &mut self.last_waker,
            inline: true,
            location,
        };
        let outcome = {
            let own = crate::local::find(&shared.local);
            let run = scope::RunScope::enter(scope, shared, lp.local_spawner(), own);
            let entered = context::Enter::new(ctx.unwrap_or(runner_ctx));
            let mut signal = Some(signal::RunGuard::enter(shared));
            let outcome = {
                // One inline poll first where the loop allows it (see `EventLoop::enter`): a
                // main future that is ready at once costs no `block_on`. The runner's own spawns
                // made during it are held back until then (see `scope::defer`).
                let mut main = pin!(main);
                let first = lp.enter(|| main.as_mut().poll(&mut TaskCx::from_waker(Waker::noop())));
                *main.as_mut().project().inline = false;
                let held = run.end_inline();
                let mut outcome = match (first, held) {
                    (Some(Poll::Ready(outcome)), held) => {
                        if let Some(held) = held {
                            spawn_all(&*shared.spawner, held);
                        }
                        outcome
                    }
                    (_, None) => lp.block_on(Inlined(main)),
                    (_, Some(held)) => lp.block_on(SpawnHeld {
                        held,
                        spawner: &*shared.spawner,
                        main,
                    }),
                };
                if let MainOutcome::Done(_) = outcome {
                    if signal.take().is_some_and(signal::RunGuard::finish) {
                        // A Ctrl-C counted for this run arrived after the future's last poll.
                        outcome = MainOutcome::Aborted(RunError::Interrupted);
                    }
                }
                outcome
                // The main future is dropped here, in the runner's scope and context.
            };
            // The drops an unwinding run makes too, in the same order.
            drop(signal);
            drop(entered);
            run.exit();
            outcome
        };
        match outcome {
            MainOutcome::Done(v) => Ok(v),
            MainOutcome::Panicked(p) => resume_unwind(p),
            MainOutcome::Aborted(e) => Err(e),
        }
    }

    /// Closes the runner: see [Shutdown](Runner#shutdown). Idempotent: on a `Created` runner it
    /// does nothing (the runner stays usable), on a `Closed` one it does nothing and returns an
    /// empty report.
    ///
    /// # Errors
    ///
    /// [`RunError::NestedRun`] when called while a loop is running on this thread (for example
    /// from inside one of the runner's own tasks): the runner stays `Initialized` and can be
    /// closed later. [`RunError::WrongThread`] when local tasks live on another thread.
    pub fn close(&mut self) -> Result<CloseReport, RunError> {
        let Inner::Initialized(live) = &self.inner else {
            return Ok(CloseReport::default());
        };
        if scope::loop_running() || nesting::runtime_driving::<L>() {
            return Err(RunError::NestedRun);
        }
        live.shared.local.check_home()?;
        let Inner::Initialized(live) = std::mem::replace(&mut self.inner, Inner::Closed) else {
            unreachable!("checked above")
        };
        let shared = live.shared.clone();
        let report = close::shutdown(live);
        self.forget_waker(&shared);
        Ok(report)
    }

    /// Lets go of the main future's last waker, the runner's copy and the stored one: a closed
    /// loop's waker may hold its driver (and its descriptors), and the runner's shared state may
    /// outlive it in a `LoopHandle`.
    fn forget_waker(&mut self, shared: &Shared) {
        self.last_waker = LastWaker::default();
        shared.forget_main_waker();
    }
}

impl<L: EventLoop> Default for Runner<L> {
    fn default() -> Self {
        Runner::new()
    }
}

impl<L: EventLoop> Drop for Runner<L> {
    fn drop(&mut self) {
        let Inner::Initialized(live) = &self.inner else {
            return;
        };
        if scope::loop_running()
            || nesting::runtime_driving::<L>()
            || live.shared.local.check_home().is_err()
        {
            // The loop cannot be driven from here: cancel what can be cancelled and let the
            // backend drop the rest without blocking.
            if let Inner::Initialized(live) = std::mem::replace(&mut self.inner, Inner::Closed) {
                let shared = live.shared.clone();
                close::abandon(live);
                self.forget_waker(&shared);
            }
            return;
        }
        if std::thread::panicking() {
            // Never a double panic: a failure while closing during unwinding is printed instead.
            if catch_unwind(AssertUnwindSafe(|| self.close())).is_err() {
                eprintln!("runner: closing the runner panicked while the thread was panicking");
            }
        } else {
            let _ = self.close();
        }
    }
}

impl<L: EventLoop> fmt::Debug for Runner<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("state", &self.state())
            .field("debug", &self.config.debug)
            .finish_non_exhaustive()
    }
}

/// Hands the spawns held back during the inline first poll to the loop from inside `block_on`
/// (see `scope::defer`), then runs the main future.
struct SpawnHeld<'a, F> {
    held: Vec<RawTask>,
    spawner: &'a dyn Spawner,
    main: F,
}

impl<F: Future + Unpin> Future for SpawnHeld<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
        if !self.held.is_empty() {
            let this = &mut *self;
            spawn_all(this.spawner, std::mem::take(&mut this.held));
        }
        Pin::new(&mut self.main).poll(cx)
    }
}

/// The pinned main future as `block_on` gets it: a `Pin<&mut Main>` would be polled through
/// core's `Pin` forwarding, which the backend's park loop does not inline, so that every poll of
/// the main future was a call with a full prologue; this poll is the main future's, inlined.
struct Inlined<'a, F>(Pin<&'a mut F>);

impl<F: Future> Future for Inlined<'_, F> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// Hands `held` to the loop, in order.
#[cold]
fn spawn_all(spawner: &dyn Spawner, held: Vec<RawTask>) {
    for task in held {
        spawner.spawn_task(task);
    }
}

enum MainOutcome<T> {
    Done(T),
    Panicked(Box<dyn std::any::Any + Send>),
    Aborted(RunError),
}

pin_project! {
    /// The main future's wrapper: catches its panic (so the loop is never unwound through), ends
    /// it early when the runner must abort the run, and times its polls in debug mode.
    struct Main<'a, F> {
        #[pin]
        fut: F,
        shared: &'a Shared,
        last_waker: &'a mut LastWaker,
        // Set for the inline first poll only.
        inline: bool,
        // Where `run` was called, for debug mode's slow-poll reports.
        location: &'static Location<'static>,
    }
}

impl<F: Future> Future for Main<'_, F> {
    type Output = MainOutcome<F::Output>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let shared = *this.shared;
        // Checked before polling: a `ShutdownRunner` panic between runs ends the next run here,
        // before its future is polled.
        if let Some(err) = shared.take_main_abort() {
            return Poll::Ready(MainOutcome::Aborted(err));
        }
        scope::drive_local(shared, cx);
        let polled = if shared.config.debug {
            poll_timed(this.fut, cx, shared, this.location)
        } else {
            catch_unwind(AssertUnwindSafe(|| this.fut.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => {
                if *this.inline {
                    // The inline first poll (`EventLoop::enter`): `block_on` polls it again at
                    // once, and that poll drives the queues and registers its waker (a no-op
                    // one here).
                    return Poll::Pending;
                }
                scope::drive_local_after(shared, cx);
                // Only a pending future can be woken to be aborted: a ready one costs no waker
                // registration. The flag is checked again after registering, so an abort that
                // raced with the poll is not missed.
                shared.register_main_cached(cx, this.last_waker);
                match shared.take_main_abort() {
                    Some(err) => Poll::Ready(MainOutcome::Aborted(err)),
                    None => Poll::Pending,
                }
            }
            Ok(Poll::Ready(v)) => Poll::Ready(MainOutcome::Done(v)),
            Err(p) => Poll::Ready(MainOutcome::Panicked(p)),
        }
    }
}

/// A poll of the main future in debug mode, timed for the slow-poll report; out of line, so
/// that the poll of every run without debug mode carries no clock or report.
#[inline(never)]
fn poll_timed<F: Future>(
    fut: Pin<&mut F>,
    cx: &mut TaskCx<'_>,
    shared: &Shared,
    location: &'static Location<'static>,
) -> std::thread::Result<Poll<F::Output>> {
    let start = crate::debug::PollStart::now();
    let polled = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
    let info = TaskInfo {
        name: None,
        location,
        main: true,
    };
    crate::debug::check_poll(shared, &info, start);
    polled
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::task::{Poll, Waker};
    use std::thread;
    use std::time::Duration;

    use crate::testing::TestLoop;
    use crate::Runner;

    /// The main future's waker is stored once; polled again with the same waker after a wake
    /// from another thread, it registers nothing (`Shared::register_main_cached`), so the next
    /// wake from another thread must still find it stored.
    #[test]
    fn main_future_woken_again_from_another_thread_without_registering_again() {
        let (finished, watchdog) = mpsc::channel();
        let test = thread::spawn(move || {
            let mut rt = Runner::<TestLoop>::new();
            let handle = rt.handle().unwrap();
            let done = Arc::new(AtomicUsize::new(0));
            let waiting: Arc<Mutex<Option<Waker>>> = Arc::default();
            let (go, go_rx) = mpsc::channel::<()>();
            let spawner = {
                let (done, waiting) = (done.clone(), waiting.clone());
                thread::spawn(move || {
                    while go_rx.recv().is_ok() {
                        // Let the main future park first: the spawn's wake is then the only one.
                        thread::sleep(Duration::from_millis(20));
                        let (done, waiting) = (done.clone(), waiting.clone());
                        handle
                            .spawn(async move {
                                done.fetch_add(1, Ordering::SeqCst);
                                if let Some(waker) = waiting.lock().unwrap().take() {
                                    waker.wake();
                                }
                            })
                            .unwrap();
                    }
                })
            };
            rt.run(async {
                for round in 1..=3 {
                    go.send(()).unwrap();
                    poll_fn(|cx| {
                        *waiting.lock().unwrap() = Some(cx.waker().clone());
                        if done.load(Ordering::SeqCst) >= round {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                }
            })
            .unwrap();
            drop(go);
            spawner.join().unwrap();
            finished.send(()).unwrap();
        });
        watchdog
            .recv_timeout(Duration::from_secs(20))
            .expect("a wake from another thread never reached the main future");
        test.join().unwrap();
    }

    /// A current-thread runner end to end: its tasks spawned inside a run take the loop side,
    /// one of them ends in the next run on another thread (the runner handed over), a
    /// `LoopHandle` spawn from another thread takes the shard, and close cancels and counts
    /// each pending one once (Miri checks the loop side's accesses across the hand-over).
    #[test]
    fn current_thread_runner_loop_side_across_threads() {
        let mut rt = Runner::<TestLoop>::new();
        let handle = rt.handle().unwrap();
        let go = Arc::new(AtomicBool::new(false));
        let g = go.clone();
        let later = rt
            .run(async move {
                for _ in 0..2 {
                    crate::spawn(std::future::pending::<()>());
                }
                assert_eq!(crate::spawn(async { 7 }).await.unwrap(), 7);
                let later = crate::spawn(async move {
                    while !g.load(Ordering::Acquire) {
                        crate::yield_now().await;
                    }
                    8
                });
                std::thread::spawn(move || drop(handle.spawn(std::future::pending::<()>())))
                    .join()
                    .unwrap();
                // Handed out of the run, to be awaited in the next one.
                Some(later)
            })
            .unwrap()
            .unwrap();
        let mut rt = std::thread::spawn(move || {
            let v = rt
                .run(async move {
                    go.store(true, Ordering::Release);
                    later.await.unwrap()
                })
                .unwrap();
            assert_eq!(v, 8);
            rt
        })
        .join()
        .unwrap();
        let report = rt.close().unwrap();
        assert_eq!(
            (report.finished, report.cancelled, report.panicked),
            (0, 3, 0),
            "two loop-side tasks and the handle's, each counted once"
        );
    }
}
