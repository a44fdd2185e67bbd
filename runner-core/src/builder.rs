//! Configuring a [`Runner`].

use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::diagnostic::{default_handler, Diagnostic, Handler, UnhandledPanic};
use crate::factory::LoopFactory;
use crate::shared::Config;
use crate::signal::Interrupt;
use crate::{EventLoop, Runner};

/// Default for `Builder::blocking_shutdown_timeout`.
pub const DEFAULT_BLOCKING_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default for `Builder::slow_poll_threshold`: asyncio's `slow_callback_duration`.
pub const DEFAULT_SLOW_POLL_THRESHOLD: Duration = Duration::from_millis(100);

/// Configures a [`Runner`] (Python's `Runner(debug=..., loop_factory=...)` and more).
///
/// Applications use `runner::Builder`, the facade's wrapper of this type, where every setting is
/// documented with examples; this one is what backends and the conformance kit build on.
///
/// Setters take and return `self`; [`build`](Self::build) is infallible because nothing is
/// created before the runner's first use.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # use runner::testing::TestLoop;
/// use std::time::Duration;
///
/// let mut calls = 0;
/// let mut rt = runner::Runner::<TestLoop>::builder()
///     .loop_factory(move || {
///         calls += 1;
///         TestLoop::new()
///     })
///     .shutdown_grace(Duration::from_millis(50))
///     .debug(true)
///     .build();
/// assert!(rt.is_debug());
/// assert_eq!(rt.run(async { 5 }).unwrap(), 5);
/// ```
pub struct Builder<L: EventLoop> {
    factory: Option<Box<dyn LoopFactory<L>>>,
    debug: Option<bool>,
    slow_poll: Duration,
    handler: Option<Handler>,
    unhandled: UnhandledPanic,
    shutdown_grace: Duration,
    blocking_timeout: Duration,
    interrupt: Interrupt,
    interrupt_grace: Option<Duration>,
    backend_tasks: bool,
}

impl<L: EventLoop> Builder<L> {
    /// A builder with the defaults: the backend's default loop, debug from `RUNNER_DEBUG`, no
    /// shutdown grace, a 10 s blocking timeout, `Interrupt::Auto` with no grace,
    /// `UnhandledPanic::Report`, and the default exception handler.
    pub fn new() -> Self {
        Builder {
            factory: None,
            debug: None,
            slow_poll: DEFAULT_SLOW_POLL_THRESHOLD,
            handler: None,
            unhandled: UnhandledPanic::Report,
            shutdown_grace: Duration::ZERO,
            blocking_timeout: DEFAULT_BLOCKING_SHUTDOWN_TIMEOUT,
            interrupt: Interrupt::Auto,
            interrupt_grace: None,
            backend_tasks: false,
        }
    }

    /// Turns debug mode on or off (asyncio's debug mode). When never called, `RUNNER_DEBUG=1` or
    /// `RUNNER_DEBUG=true` in the environment turns it on; an explicit `debug(false)` wins over
    /// the variable.
    ///
    /// The variable is read by each [`build`](Self::build) that needs it (as asyncio reads
    /// `PYTHONASYNCIODEBUG` for each runner), so a change made with [`std::env::set_var`]
    /// reaches the runners built afterwards.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
        self
    }

    /// Makes the loop with `f` instead of the backend's default: Python's `loop_factory`. `f` is
    /// called once, with no arguments, on first use; when it fails, the next use calls it again.
    /// This changes the runner's loop type to `M`.
    pub fn loop_factory<M, F>(self, f: F) -> Builder<M>
    where
        M: EventLoop,
        F: FnMut() -> io::Result<M> + Send + 'static,
    {
        Builder {
            factory: Some(Box::new(f)),
            debug: self.debug,
            slow_poll: self.slow_poll,
            handler: self.handler,
            unhandled: self.unhandled,
            shutdown_grace: self.shutdown_grace,
            blocking_timeout: self.blocking_timeout,
            interrupt: self.interrupt,
            interrupt_grace: self.interrupt_grace,
            backend_tasks: self.backend_tasks,
        }
    }

    /// How long close lets tasks finish by themselves (after
    /// [`shutdown_requested()`](crate::shutdown_requested) resolves) before cancelling them.
    /// Default 0: cancel at once, as Python does.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long close waits for running blocking jobs before reporting them and leaving them
    /// behind. Default 10 s ([`DEFAULT_BLOCKING_SHUTDOWN_TIMEOUT`]): long enough for ordinary
    /// blocking I/O to finish, short enough that a stuck job never hangs a process's exit (tokio
    /// waits forever; Python 3.12+ waits 300 s).
    pub fn blocking_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.blocking_timeout = timeout;
        self
    }

    /// The one function that receives every [`Diagnostic`]: unobserved panics, panics during
    /// shutdown, slow polls, tasks pending at close, blocking jobs left behind. Replaces the
    /// default, which prints a line to stderr and emits a `tracing` event. A handler that panics
    /// is caught; it runs on whatever thread the event happened on.
    pub fn exception_handler<H>(mut self, h: H) -> Self
    where
        H: Fn(&Diagnostic) + Send + Sync + 'static,
    {
        self.handler = Some(Arc::new(h));
        self
    }

    /// What a panic that nobody observes does; see [`UnhandledPanic`]. Default: report it.
    pub fn unhandled_panic(mut self, policy: UnhandledPanic) -> Self {
        self.unhandled = policy;
        self
    }

    /// Whether `run` turns Ctrl-C into a cancellation of the main future; see [`Interrupt`].
    pub fn interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// After the first Ctrl-C, how long the main future may go on (it sees
    /// [`interrupted()`](crate::interrupted) resolve) before it is dropped. Default: none, drop
    /// it at once. A second Ctrl-C ends the grace at once.
    pub fn interrupt_grace(mut self, grace: Duration) -> Self {
        self.interrupt_grace = Some(grace);
        self
    }

    /// Debug mode reports polls slower than this. Default 100 ms
    /// ([`DEFAULT_SLOW_POLL_THRESHOLD`]).
    pub fn slow_poll_threshold(mut self, threshold: Duration) -> Self {
        self.slow_poll = threshold;
        self
    }

    /// On a multi-thread loop, hands every `Send` task to the backend's own scheduler, one
    /// backend task per runner task, instead of the runner's own queue and its pumps (see
    /// [`spawn`](crate::spawn)). Default `false`. No effect on a current-thread loop.
    pub fn backend_tasks(mut self, on: bool) -> Self {
        self.backend_tasks = on;
        self
    }

    /// Builds the runner. Creates nothing: the loop is made on first use.
    pub fn build(self) -> Runner<L> {
        let debug = self.debug.unwrap_or_else(debug_from_env);
        let factory = self
            .factory
            // The function item itself, zero-sized: a `Box` of it allocates nothing.
            .unwrap_or_else(|| Box::new(L::default_loop));
        Runner::from_parts(
            factory,
            Config {
                debug,
                slow_poll: self.slow_poll,
                handler: self.handler.unwrap_or_else(default_handler_arc),
                unhandled: self.unhandled,
                shutdown_grace: self.shutdown_grace,
                blocking_timeout: self.blocking_timeout,
                interrupt: self.interrupt,
                interrupt_grace: self.interrupt_grace,
                backend_tasks: self.backend_tasks,
            },
        )
    }
}

/// The default exception handler, one `Arc` for the process: a runner built without a handler
/// of its own takes a count of it instead of an allocation.
fn default_handler_arc() -> Handler {
    static DEFAULT: OnceLock<Handler> = OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(default_handler)).clone()
}

/// `RUNNER_DEBUG` is on when it is `1` or `true` (any case), like `PYTHONASYNCIODEBUG`. Read at
/// each build (see [`Builder::debug`]): a `getenv` under std's environment lock, some hundreds
/// of instructions of `create_close` (docs/PERFORMANCE.md).
fn debug_from_env() -> bool {
    std::env::var("RUNNER_DEBUG")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}

impl<L: EventLoop> Default for Builder<L> {
    fn default() -> Self {
        Builder::new()
    }
}

impl<L: EventLoop> fmt::Debug for Builder<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("custom_factory", &self.factory.is_some())
            .field("debug", &self.debug)
            .field("slow_poll_threshold", &self.slow_poll)
            .field("unhandled_panic", &self.unhandled)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("blocking_shutdown_timeout", &self.blocking_timeout)
            .field("interrupt", &self.interrupt)
            .field("interrupt_grace", &self.interrupt_grace)
            .field("backend_tasks", &self.backend_tasks)
            .finish_non_exhaustive()
    }
}
