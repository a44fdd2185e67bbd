//! [`Runner`]: one object that owns an event loop's whole life.

use std::fmt;
use std::future::IntoFuture;

use runner_core::{CloseReport, Context, EventLoop, LoopHandle, RunError, State};

use crate::{Builder, DefaultLoop};

/// Owns an event loop's whole life: Python's `asyncio.Runner`, on the [`DefaultLoop`] unless you
/// name another loop.
///
/// The loop is made lazily, on the first [`run`](Self::run), [`get_loop`](Self::get_loop) or
/// [`handle`](Self::handle). Every `run` executes on that one loop, in one shared [`Context`], so
/// a context variable set in one run is seen by the next. Dropping the runner closes it, as
/// [`close`](Self::close) does, discarding the report.
///
/// # Which loop
///
/// | you write | the loop |
/// |---|---|
/// | `Runner::new()`, `Runner::builder()...build()` | the [`DefaultLoop`], no annotation needed |
/// | `Runner::builder().loop_factory(SmolLoop::local).build()` | inferred from the factory: `Runner<SmolLoop>` |
/// | `Runner::<SmolLoop>::default()`, `Builder::<SmolLoop>::default()` | that loop type's [`EventLoop::default_loop`] |
/// | `Runner::<AnyLoop>::default()` | the backend `RUNNER_BACKEND` names ([`AnyLoop`](crate::AnyLoop)) |
///
/// `new` and `builder` belong to the default loop so that the compiler needs no annotation
/// (`HashMap::new()` does the same); `Runner::<SmolLoop>::new()` does not compile, write
/// `Runner::<SmolLoop>::default()`.
///
/// # Examples
///
/// ```
/// let mut rt = runner::Runner::new();
/// assert_eq!(rt.run(async { 1 + 1 }).unwrap(), 2);
/// assert_eq!(rt.run(async { "again, same loop" }).unwrap(), "again, same loop");
/// let report = rt.close().unwrap();
/// assert_eq!(report.cancelled, 0);
/// ```
///
/// A specific backend's default loop:
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use runner::{smol::SmolLoop, Runner};
///
/// let mut rt = Runner::<SmolLoop>::default(); // SmolLoop::local()
/// assert_eq!(rt.run(async { runner::spawn_local(async { 3 }).await.unwrap() }).unwrap(), 3);
/// # }
/// ```
///
/// # States
///
/// See [`State`]: `Created` until first use, then `Initialized`, then `Closed` for good. A failed
/// loop factory leaves the runner `Created` (the next use tries again); a failed or panicking
/// `run` leaves it `Initialized`.
///
/// ```
/// use runner::{RunError, Runner, State};
///
/// let mut rt = Runner::new();
/// assert_eq!(rt.state(), State::Created); // no loop yet
/// assert_eq!(rt.run(async { 1 }).unwrap(), 1);
/// assert_eq!(rt.state(), State::Initialized);
/// rt.close().unwrap();
/// assert!(matches!(rt.run(async { 2 }), Err(RunError::Closed)));
/// ```
///
/// # Shutdown
///
/// [`close`](Self::close) (or drop) runs, in order:
/// 1. [`shutdown_requested()`](crate::shutdown_requested) resolves in every task;
/// 2. the loop keeps running until every task spawned through the runner has finished, or
///    [`Builder::shutdown_grace`] runs out. **The default grace is 0**, as in Python: without a
///    grace, tasks are cancelled at once, and a task waiting on `shutdown_requested()` does not
///    get to run its clean-up;
/// 3. every remaining task is cancelled and its future dropped on the loop's own thread, so its
///    destructors run (tasks spawned meanwhile are cancelled too);
/// 4. panics nobody observed are reported to the exception handler as they happen;
/// 5. blocking jobs get [`Builder::blocking_shutdown_timeout`] (default 10 s), then the ones still
///    running are reported and left behind: close never waits forever on them;
/// 6. the loop is shut down and a [`CloseReport`] returned, in which every task that was alive
///    when close began ends as finished, cancelled or panicked.
///
/// A drop where the loop cannot be driven (inside a run, inside another runtime, or on another
/// thread than the one holding `spawn_local` tasks) cancels what it can without blocking.
pub struct Runner<L: EventLoop = DefaultLoop>(runner_core::Runner<L>);

impl Runner<DefaultLoop> {
    /// A runner on the [`DefaultLoop`], with default settings. Nothing is created until first
    /// use. For another loop type's default loop, write `Runner::<SmolLoop>::default()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = runner::Runner::new();
    /// assert_eq!(rt.run(async { 6 * 7 }).unwrap(), 42);
    /// ```
    #[inline]
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// A [`Builder`] on the [`DefaultLoop`]; its [`loop_factory`](Builder::loop_factory) switches
    /// it to another loop type.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let mut rt = runner::Runner::builder()
    ///     .loop_factory(runner::smol::SmolLoop::local)
    ///     .build(); // a Runner<SmolLoop>
    /// assert_eq!(rt.run(async { 1 }).unwrap(), 1);
    /// # }
    /// ```
    #[inline]
    pub fn builder() -> Builder<DefaultLoop> {
        Builder::new()
    }
}

impl<L: EventLoop> Runner<L> {
    /// Where the runner is in its life: see [States](Runner#states).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = runner::Runner::new();
    /// assert_eq!(rt.state(), runner::State::Created);
    /// ```
    #[inline]
    pub fn state(&self) -> State {
        self.0.state()
    }

    /// True when debug mode is on: [`Builder::debug`], or else `RUNNER_DEBUG=1` (or `true`) when
    /// the runner was built.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(runner::Runner::builder().debug(true).build().is_debug());
    /// ```
    #[inline]
    pub fn is_debug(&self) -> bool {
        self.0.is_debug()
    }

    /// The runner's loop (Python's `Runner.get_loop()`), made now if it does not exist yet: to
    /// reach the backend's own API, such as [`TokioLoop::handle`][TokioLoop::handle].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// let mut rt = runner::Runner::<runner::tokio::TokioLoop>::default();
    /// let tokio_handle = rt.get_loop().unwrap().handle().clone();
    /// # drop(tokio_handle);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`RunError::Closed`] after close; [`RunError::LoopCreation`] when the factory fails (the
    /// runner stays `Created`).
    ///
    #[cfg_attr(
        feature = "tokio",
        doc = "[TokioLoop::handle]: crate::tokio::TokioLoop::handle"
    )]
    #[cfg_attr(
        not(feature = "tokio"),
        doc = "[TokioLoop::handle]: crate#feature-flags"
    )]
    #[inline]
    pub fn get_loop(&mut self) -> Result<&L, RunError> {
        self.0.get_loop()
    }

    /// A [`LoopHandle`] that spawns onto this runner's loop from any thread (asyncio's
    /// `run_coroutine_threadsafe`), making the loop now if it does not exist yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = runner::Runner::new();
    /// let handle = rt.handle().unwrap();
    /// let task = std::thread::spawn(move || handle.spawn(async { 7 }).unwrap())
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(rt.run(task).unwrap().unwrap(), 7);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get_loop`](Self::get_loop).
    #[inline]
    pub fn handle(&mut self) -> Result<LoopHandle, RunError> {
        self.0.handle()
    }

    /// Runs `fut` to completion on the runner's loop and returns its output (Python's
    /// `Runner.run`).
    ///
    /// The future runs in the runner's context (shared by every `run`). Tasks it spawns keep
    /// running after it returns; on a current-thread loop they progress only inside `run` (as in
    /// Python), on a multi-thread loop also between runs. A panic in `fut` reaches the caller
    /// with its original payload, and the runner stays usable.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = runner::Runner::new();
    /// let out: Result<u8, String> = rt.run(async { Err("spam".to_string()) }).unwrap();
    /// assert_eq!(out.unwrap_err(), "spam");
    /// ```
    ///
    /// # Errors
    ///
    /// - [`RunError::NestedRun`] when an event loop is already driving this thread: inside a run
    ///   or a task of any runner, or inside a runtime of a backend compiled in (a tokio
    ///   runtime's `block_on` or task, see the crate docs' "Nested runs"); nothing is polled and
    ///   the outer run goes on.
    /// - [`RunError::Closed`] after close; nothing is polled.
    /// - [`RunError::LoopCreation`] when the factory fails.
    /// - [`RunError::Interrupted`] when Ctrl-C cancelled the main future.
    /// - [`RunError::TaskPanicked`] with
    ///   [`UnhandledPanic::ShutdownRunner`](crate::UnhandledPanic::ShutdownRunner).
    /// - [`RunError::WrongThread`] when `spawn_local` tasks live on another thread.
    ///
    /// # Panics
    ///
    /// Resumes the main future's panic, if it panics.
    #[inline]
    #[track_caller]
    pub fn run<F: IntoFuture>(&mut self, fut: F) -> Result<F::Output, RunError> {
        self.0.run(fut)
    }

    /// [`run`](Self::run) in `ctx` instead of the runner's context (Python's
    /// `Runner.run(coro, context=ctx)`): sets made by the future stay in `ctx`.
    ///
    /// # Examples
    ///
    /// ```
    /// static USER: runner::ContextVar<&str> = runner::ContextVar::new("user");
    ///
    /// let mut rt = runner::Runner::new();
    /// let mut ctx = runner::Context::new();
    /// rt.run_with_context(&mut ctx, async { USER.set("ada") }).unwrap();
    /// assert_eq!(ctx.run(|| USER.get()), Some("ada"));
    /// assert_eq!(rt.run(async { USER.get() }).unwrap(), None); // the runner's own context
    /// ```
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    ///
    /// # Panics
    ///
    /// As [`run`](Self::run).
    #[inline]
    #[track_caller]
    pub fn run_with_context<F: IntoFuture>(
        &mut self,
        ctx: &mut Context,
        fut: F,
    ) -> Result<F::Output, RunError> {
        self.0.run_with_context(ctx, fut)
    }

    /// Closes the runner (Python's `Runner.close()`): see [Shutdown](Runner#shutdown).
    /// Idempotent: on a `Created` runner it does nothing (the runner stays usable), on a `Closed`
    /// one it does nothing and returns an empty report.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = runner::Runner::new();
    /// let _forever = rt.run(async { runner::spawn(std::future::pending::<()>()) }).unwrap();
    /// let report = rt.close().unwrap();
    /// assert_eq!(report.cancelled, 1);
    /// assert_eq!(report.to_string(), "0 finished, 1 cancelled, 0 panicked, 0 blocking jobs left behind");
    /// ```
    ///
    /// # Errors
    ///
    /// [`RunError::NestedRun`] when called while a loop is driving this thread (for example from
    /// inside one of the runner's own tasks): the runner stays `Initialized` and can be closed
    /// later. [`RunError::WrongThread`] when `spawn_local` tasks live on another thread.
    #[inline]
    pub fn close(&mut self) -> Result<CloseReport, RunError> {
        self.0.close()
    }
}

/// A runner on `L`'s default loop ([`EventLoop::default_loop`]): the spelling for a specific
/// backend, `Runner::<SmolLoop>::default()`.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use runner::{tokio::TokioLoop, Runner};
///
/// let mut rt = Runner::<TokioLoop>::default(); // TokioLoop::current_thread()
/// assert_eq!(rt.run(async { 4 }).unwrap(), 4);
/// # }
/// ```
impl<L: EventLoop> Default for Runner<L> {
    #[inline]
    fn default() -> Self {
        Builder::default().build()
    }
}

impl<L: EventLoop> fmt::Debug for Runner<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The engine's runner, as `runner-core` code (a conformance kit, a backend's tests) takes it.
impl<L: EventLoop> From<Runner<L>> for runner_core::Runner<L> {
    #[inline]
    fn from(rt: Runner<L>) -> Self {
        rt.0
    }
}

/// Wraps the engine's runner. The nesting probes of the backends compiled in are registered, as
/// for a runner the facade builds.
impl<L: EventLoop> From<runner_core::Runner<L>> for Runner<L> {
    #[inline]
    fn from(rt: runner_core::Runner<L>) -> Self {
        crate::backend::register_nesting_probes();
        Runner(rt)
    }
}
