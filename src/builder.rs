//! [`Builder`]: Python's `Runner(debug=..., loop_factory=...)` and the settings tokio's runtime
//! builder has.

use std::fmt;
use std::io;
use std::time::Duration;

use runner_core::{Diagnostic, EventLoop, Interrupt, UnhandledPanic};

use crate::{DefaultLoop, Runner};

/// Configures a [`Runner`]: Python's `Runner(debug=..., loop_factory=...)`, and what tokio's
/// runtime builder sets.
///
/// [`Runner::builder()`] (or [`runner::builder()`](crate::builder())) starts one on the
/// [`DefaultLoop`] with no type annotation; [`loop_factory`](Self::loop_factory) switches it to
/// any other loop type, which the compiler infers from the factory. Setters take and return
/// `self`; [`build`](Self::build) cannot fail, because nothing is created before the runner's
/// first use. A dropped builder makes nothing.
///
/// | setting | default |
/// |---|---|
/// | [`loop_factory`](Self::loop_factory) | the loop type's [`EventLoop::default_loop`] |
/// | [`debug`](Self::debug) | `RUNNER_DEBUG=1` or `true` in the environment, else off |
/// | [`shutdown_grace`](Self::shutdown_grace) | 0: tasks are cancelled at once, as in Python |
/// | [`blocking_shutdown_timeout`](Self::blocking_shutdown_timeout) | 10 s |
/// | [`exception_handler`](Self::exception_handler) | a line on stderr and a `tracing` event |
/// | [`unhandled_panic`](Self::unhandled_panic) | [`UnhandledPanic::Report`] |
/// | [`interrupt`](Self::interrupt), [`interrupt_grace`](Self::interrupt_grace) | [`Interrupt::Auto`], no grace |
/// | [`slow_poll_threshold`](Self::slow_poll_threshold) | 100 ms |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let mut rt = runner::Runner::builder()
///     .shutdown_grace(Duration::from_millis(50))
///     .debug(true)
///     .build();
/// assert!(rt.is_debug());
/// assert_eq!(rt.run(async { 5 }).unwrap(), 5);
/// ```
///
/// Another loop, inferred from the factory (Python's `loop_factory`):
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use runner::tokio::TokioLoop;
///
/// let mut rt = runner::Runner::builder()
///     .loop_factory(|| TokioLoop::multi_thread(2))
///     .build(); // a Runner<TokioLoop>
/// assert!(rt.get_loop().unwrap().is_multi_thread());
/// # }
/// ```
pub struct Builder<L: EventLoop = DefaultLoop>(runner_core::Builder<L>);

impl Builder<DefaultLoop> {
    /// A builder on the [`DefaultLoop`] with the defaults above; the same as
    /// [`Runner::builder()`]. For another loop type's default loop, write
    /// `Builder::<SmolLoop>::default()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = runner::Builder::new().build();
    /// assert_eq!(rt.run(async { 1 }).unwrap(), 1);
    /// ```
    #[inline]
    pub fn new() -> Self {
        Builder(runner_core::Builder::new())
    }
}

impl<L: EventLoop> Builder<L> {
    /// Turns debug mode on or off (asyncio's debug mode: slow polls are reported with the task's
    /// spawn location). When never called, `RUNNER_DEBUG=1` or `RUNNER_DEBUG=true` in the
    /// environment turns it on; an explicit `debug(false)` wins over the variable.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = runner::Runner::builder().debug(true).build();
    /// assert!(rt.run(async { runner::is_debug() }).unwrap());
    /// ```
    #[inline]
    pub fn debug(self, on: bool) -> Self {
        Builder(self.0.debug(on))
    }

    /// Makes the loop with `f` instead of the loop type's default: Python's `loop_factory`. `f` is
    /// called once, with no arguments, on the runner's first use; when it fails, that use returns
    /// [`RunError::LoopCreation`](crate::RunError::LoopCreation) and the next use calls `f`
    /// again. The builder's loop type becomes `M`, inferred from `f`, so no annotation is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use runner::smol::SmolLoop;
    ///
    /// let mut rt: runner::Runner<SmolLoop> = runner::Runner::builder()
    ///     .loop_factory(|| SmolLoop::multi_thread(2))
    ///     .build();
    /// assert_eq!(rt.run(async { runner::spawn(async { 2 }).await.unwrap() }).unwrap(), 2);
    /// # }
    /// ```
    #[inline]
    pub fn loop_factory<M, F>(self, f: F) -> Builder<M>
    where
        M: EventLoop,
        F: FnMut() -> io::Result<M> + Send + 'static,
    {
        Builder(self.0.loop_factory(f))
    }

    /// How long close lets tasks finish by themselves, after
    /// [`shutdown_requested()`](crate::shutdown_requested) resolves in them, before cancelling
    /// the rest. Default 0: cancel at once, as Python does, so a task that waits on
    /// `shutdown_requested()` to clean up gets a chance only with a grace set here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut rt = runner::Runner::builder()
    ///     .shutdown_grace(Duration::from_secs(1))
    ///     .build();
    /// let _saver = rt
    ///     .run(async {
    ///         runner::spawn(async {
    ///             runner::shutdown_requested().await;
    ///             "saved" // finishes within the grace: counted as finished
    ///         })
    ///     })
    ///     .unwrap();
    /// assert_eq!(rt.close().unwrap().finished, 1);
    /// ```
    #[inline]
    pub fn shutdown_grace(self, grace: Duration) -> Self {
        Builder(self.0.shutdown_grace(grace))
    }

    /// How long close waits for running blocking jobs before reporting them and leaving them
    /// behind. Default 10 s ([`DEFAULT_BLOCKING_SHUTDOWN_TIMEOUT`](crate::DEFAULT_BLOCKING_SHUTDOWN_TIMEOUT)):
    /// long enough for ordinary blocking I/O to finish, short enough that a stuck job never hangs
    /// a process's exit (tokio waits forever; Python 3.12+ waits 300 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = runner::Runner::builder()
    ///     .blocking_shutdown_timeout(Duration::from_secs(1))
    ///     .build();
    /// # drop(rt);
    /// ```
    #[inline]
    pub fn blocking_shutdown_timeout(self, timeout: Duration) -> Self {
        Builder(self.0.blocking_shutdown_timeout(timeout))
    }

    /// The one function that receives every [`Diagnostic`]: unobserved panics, panics during
    /// shutdown, slow polls, tasks pending at close, blocking jobs left behind (asyncio's
    /// `loop.set_exception_handler`). Replaces the default, which prints a line to stderr and
    /// emits a `tracing` event. A handler that panics is caught; it runs on whatever thread the
    /// event happened on.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let mut rt = runner::Runner::builder()
    ///     .exception_handler(move |d| sink.lock().unwrap().push(d.to_string()))
    ///     .build();
    /// rt.run(async {
    ///     drop(runner::spawn(async { panic!("nobody awaits me") }));
    ///     runner::time::sleep(std::time::Duration::from_millis(20)).await; // let it run
    /// })
    /// .unwrap();
    /// rt.close().unwrap();
    /// assert!(seen.lock().unwrap().iter().any(|d| d.contains("nobody awaits me")));
    /// ```
    #[inline]
    pub fn exception_handler<H>(self, h: H) -> Self
    where
        H: Fn(&Diagnostic) + Send + Sync + 'static,
    {
        Builder(self.0.exception_handler(h))
    }

    /// What a panic that nobody observes does; see [`UnhandledPanic`]. Default: report it to the
    /// exception handler and go on.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = runner::Runner::builder()
    ///     .unhandled_panic(runner::UnhandledPanic::ShutdownRunner)
    ///     .build();
    /// # drop(rt);
    /// ```
    #[inline]
    pub fn unhandled_panic(self, policy: UnhandledPanic) -> Self {
        Builder(self.0.unhandled_panic(policy))
    }

    /// Whether [`Runner::run`] turns Ctrl-C into a cancellation of the main future; see
    /// [`Interrupt`]. Default [`Interrupt::Auto`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = runner::Runner::builder().interrupt(runner::Interrupt::Never).build();
    /// # drop(rt);
    /// ```
    #[inline]
    pub fn interrupt(self, interrupt: Interrupt) -> Self {
        Builder(self.0.interrupt(interrupt))
    }

    /// After the first Ctrl-C, how long the main future may go on (it sees
    /// [`interrupted()`](crate::interrupted) resolve) before it is dropped. Default: none, drop
    /// it at once. A second Ctrl-C ends the grace at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = runner::Runner::builder()
    ///     .interrupt_grace(Duration::from_secs(2))
    ///     .build();
    /// # drop(rt);
    /// ```
    #[inline]
    pub fn interrupt_grace(self, grace: Duration) -> Self {
        Builder(self.0.interrupt_grace(grace))
    }

    /// Debug mode reports polls slower than this (asyncio's `slow_callback_duration`). Default
    /// 100 ms ([`DEFAULT_SLOW_POLL_THRESHOLD`](crate::DEFAULT_SLOW_POLL_THRESHOLD)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = runner::Runner::builder()
    ///     .debug(true)
    ///     .slow_poll_threshold(Duration::from_millis(10))
    ///     .build();
    /// # drop(rt);
    /// ```
    #[inline]
    pub fn slow_poll_threshold(self, threshold: Duration) -> Self {
        Builder(self.0.slow_poll_threshold(threshold))
    }

    /// On a multi-thread loop, hands every `Send` task to the backend's own scheduler (one tokio
    /// or async-executor task per runner task, with its work stealing) instead of the runner's
    /// own run queue. Default `false`: on a multi-thread loop the runner queues its `Send` tasks
    /// itself, and polls them from *pumps*, up to one backend task per worker thread (see
    /// [`spawn`](crate::spawn)), which costs one allocation per task instead of two and spawns
    /// several times faster. Turn this on for what only the backend's own tasks give: tokio's
    /// task ids, `tokio::task::yield_now` seen by tokio's scheduler, tokio's runtime metrics
    /// per task. No effect on a current-thread loop, where the runner's own queue is always used.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = runner::Runner::builder().backend_tasks(true).build();
    /// assert_eq!(rt.run(async { runner::spawn(async { 2 }).await.unwrap() }).unwrap(), 2);
    /// ```
    #[inline]
    pub fn backend_tasks(self, on: bool) -> Self {
        Builder(self.0.backend_tasks(on))
    }

    /// Builds the runner. Creates nothing: the loop is made on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = runner::Runner::builder().build();
    /// assert_eq!(rt.state(), runner::State::Created);
    /// ```
    #[inline]
    pub fn build(self) -> Runner<L> {
        Runner::from(self.0.build())
    }
}

/// A builder on `L`'s default loop ([`EventLoop::default_loop`]): the spelling for a specific
/// backend, `Builder::<SmolLoop>::default()`.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use runner::{smol::SmolLoop, Builder};
///
/// let mut rt = Builder::<SmolLoop>::default().debug(false).build();
/// assert_eq!(rt.run(async { 3 }).unwrap(), 3);
/// # }
/// ```
impl<L: EventLoop> Default for Builder<L> {
    #[inline]
    fn default() -> Self {
        Builder(runner_core::Builder::default())
    }
}

impl<L: EventLoop> fmt::Debug for Builder<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The engine's builder, as `runner-core` code (a conformance kit, a backend's tests) takes it.
impl<L: EventLoop> From<Builder<L>> for runner_core::Builder<L> {
    #[inline]
    fn from(b: Builder<L>) -> Self {
        b.0
    }
}

/// Wraps the engine's builder.
impl<L: EventLoop> From<runner_core::Builder<L>> for Builder<L> {
    #[inline]
    fn from(b: runner_core::Builder<L>) -> Self {
        Builder(b)
    }
}
