//! Python's [`asyncio.Runner`](https://docs.python.org/3/library/asyncio-runner.html) for Rust:
//! one object that owns an event loop's whole life, runs many futures on it, and shuts it down
//! so that nothing is lost, on tokio, smol, glommio, or a loop you write.
//!
//! # A short tour
//!
//! **One call**, `asyncio.run(main())`: [`run`] makes a runner on the [`DefaultLoop`], runs the
//! future, and closes the runner. [`#[runner::main]`](macro@main) is the same as an attribute.
//!
//! ```
//! assert_eq!(runner::run(async { runner::yield_now().await; 42 }).unwrap(), 42);
//! ```
//!
//! **One runner, many runs.** A [`Runner`] creates its loop lazily, keeps it (and one
//! [`Context`]) across any number of [`run`](Runner::run)s, and closes it when you call
//! [`close`](Runner::close) or drop it. Close resolves [`shutdown_requested`] in every task,
//! cancels the tasks still running on the loop's own thread so their destructors run, and
//! returns a [`CloseReport`]. The grace between the two, [`Builder::shutdown_grace`], is **0 by
//! default**, as in Python: set it when tasks should finish their work on
//! `shutdown_requested()` instead of being cancelled at once.
//!
//! ```
//! use std::time::Duration;
//!
//! let mut rt = runner::Runner::new();
//! let task = rt.run(async { runner::spawn(async { "spawned" }) }).unwrap();
//! assert_eq!(rt.run(task).unwrap().unwrap(), "spawned");
//!
//! let forever = rt.run(async { runner::spawn(runner::time::sleep(Duration::from_secs(60))) }).unwrap();
//! let report = rt.close().unwrap();
//! assert_eq!(report.cancelled, 1);
//! println!("{report}"); // 0 finished, 1 cancelled, 0 panicked, 0 blocking jobs left behind
//! # drop(forever);
//! ```
//!
//! **Executor-neutral code.** [`spawn`], [`spawn_local`], [`spawn_blocking`], [`JoinHandle`],
//! [`time::sleep`], [`time::timeout`] and [`yield_now`] work inside any run on any backend, so a
//! library written against them runs on whichever loop the application picks (the
//! `library_neutral` example). [`LoopHandle`] spawns onto a runner's loop from other threads.
//!
//! ```
//! use std::time::Duration;
//!
//! async fn fetch_twice() -> u32 {
//!     let a = runner::spawn(async { 20 });
//!     let b = runner::spawn_blocking(|| 22);
//!     runner::time::timeout(Duration::from_secs(5), async { a.await.unwrap() + b.await.unwrap() })
//!         .await
//!         .unwrap()
//! }
//! assert_eq!(runner::run(fetch_twice()).unwrap(), 42);
//! ```
//!
//! **Context variables**, Python's `contextvars`: a [`ContextVar`] set before a spawn is seen by
//! the task, on every backend, and the task's own sets stay in its copy.
//!
//! ```
//! static USER: runner::ContextVar<&str> = runner::ContextVar::new("user");
//!
//! runner::run(async {
//!     USER.set("ada");
//!     let seen = runner::spawn(async { USER.get() }).await.unwrap();
//!     assert_eq!(seen, Some("ada"));
//! })
//! .unwrap();
//! ```
//!
//! **The loop is yours to pick**: [`Runner::new()`] takes the [`DefaultLoop`];
//! `Runner::<SmolLoop>::default()` a backend's default loop; a factory
//! ([`Builder::loop_factory`], Python's `loop_factory`) any loop, its type inferred;
//! [`AnyLoop`] picks from `RUNNER_BACKEND` at run time; or write your own [`EventLoop`] (the
//! `custom_loop` example).
//!
//! ```
//! # #[cfg(any(feature = "tokio", feature = "smol", feature = "glommio"))] {
//! let mut rt = runner::Runner::builder()
//!     .loop_factory(runner::AnyLoop::from_env)
//!     .build();
//! assert_eq!(rt.run(async { 1 + 1 }).unwrap(), 2);
//! # }
//! ```
//!
//! **Tests on every backend**: [`#[runner::test(all_backends)]`](macro@test) runs one async test
//! body once per backend flavour compiled in and names the backend that failed.
//!
//! **What else**: Ctrl-C scoped to `run` ([`Interrupt`], [`interrupted`]), debug mode
//! ([`Builder::debug`] or `RUNNER_DEBUG=1`: slow polls with the task's spawn location), and one
//! exception handler ([`Builder::exception_handler`]) for every [`Diagnostic`].
//!
//! # Nested runs
//!
//! [`Runner::run`] (and [`run`], [`Runner::close`]) returns [`RunError::NestedRun`], polling
//! nothing, where a blocking run would stall or break the loop already driving the thread:
//!
//! - inside a run or a task of any runner, on every backend;
//! - with the `tokio` feature on, inside any tokio runtime, whatever the runner's backend: its
//!   `block_on`, one of its tasks, or a runtime that a blocking job entered (a smol runner there
//!   would otherwise wait on tokio timers that cannot fire, and a tokio one would panic);
//! - with the `glommio` feature on, inside a glommio runner's run.
//!
//! A runner's own blocking jobs ([`spawn_blocking`]) may run another runner, as tokio allows
//! `block_on` on its blocking threads. Dropping a runner where it cannot run closes it without
//! blocking: its tasks are cancelled, the loop is not driven. On a multi-thread loop a task that
//! one of the loop's workers is polling at that moment is cancelled as that poll ends, on that
//! worker (its future dropped there): nothing waits for the poll.
//!
//! What cannot be detected, because the runtime offers no public way to ask, is allowed:
//!
//! - inside smol's or async-io's `block_on` or an `async_executor` not owned by a runner (async-io
//!   keeps its "inside `block_on`" state private): the runner runs, blocking that other loop's
//!   thread until it returns;
//! - inside a `glommio::LocalExecutor` not owned by a runner (glommio's executor thread-local is
//!   private; glommio itself panics when a second executor runs on the thread);
//! - on a blocking thread of a tokio runtime that a runner does not own (tokio does not tell its
//!   blocking threads from its workers): refused with `NestedRun`, where tokio would allow it;
//!   a blocking job that calls `Handle::block_on` on the runtime that runs it (tokio does not
//!   tell that `block_on` from the job itself): tokio panics;
//! - tokio's own `Runtime::block_on` or `Handle::block_on` inside a run on tokio multi-thread:
//!   the runner polls the main future in a park loop of its own under `Handle::enter` (what
//!   tokio's `block_on` does there, at raw tokio's cost), without tokio's private "driving a
//!   runtime" mark, so tokio does not refuse it: it blocks the run's thread until its future is
//!   done, as inside a blocking job, while the workers run the tasks. On tokio current-thread
//!   tokio refuses it (a panic) as inside its own `block_on`, except in the main future's
//!   first poll, which the runner makes inline under `Handle::enter` alone on both flavours
//!   (see `EventLoop::enter`): there it blocks as on multi-thread.
//!
//! # Neutral I/O
//!
//! `runner` has no I/O of its own: its tasks and timers are neutral, sockets come from a crate.
//! A library that must run unchanged on every backend uses [async-io]'s `Async<TcpStream>` (or
//! async-net, which wraps it): it carries its own reactor, so it works inside any run on all five
//! flavours (the `neutral_io` example: an echo server and client on loopback, on each backend).
//! What that costs, measured by the example (threads named `async-io` in the process):
//!
//! | backend | async-io's reactor | extra threads |
//! |---|---|---|
//! | `smol` | is the loop's own: the runner's thread drives it inside `block_on` | 0 |
//! | `smol-multi` | the loop's, and its background driver thread | 1 per process |
//! | `tokio`, `tokio-multi` | runs beside tokio's I/O driver; each readiness event is a cross-thread wake-up | 1 per process |
//! | `glommio` | runs beside glommio's io_uring | 1 per process |
//!
//! An application that knows its backend uses that backend's I/O instead, with no extra reactor:
//! `tokio::net` inside runs on [`TokioLoop`][TokioLoop] (its runtime is entered for every
//! run and task), `glommio::net` on [`GlommioLoop`][GlommioLoop], async-io or async-net
//! on [`SmolLoop`][SmolLoop]. tokio's types need a tokio runtime: on another backend they
//! fail with tokio's own panic ("there is no reactor running").
//!
//! [async-io]: https://docs.rs/async-io
//!
//! # Feature flags
//!
//! | feature | default | what |
//! |---|---|---|
//! | `tokio` | yes | [`tokio::TokioLoop`][TokioLoop]: current-thread and multi-thread |
//! | `smol` | no | [`smol::SmolLoop`][SmolLoop]: async-executor + async-io, local and multi-thread |
//! | `glommio` | no | [`glommio::GlommioLoop`][GlommioLoop]: Linux only |
//!
//! The features are additive. [`DefaultLoop`] is the first one enabled of tokio
//! (`TokioLoop::current_thread()`), then smol (`SmolLoop::local()`), then glommio. With none of
//! them, `DefaultLoop` is the std-only [`TestLoop`](crate::testing::TestLoop). The features also
//! decide what [`AnyLoop`] can pick and what `#[runner::test(all_backends)]` runs on. In docs built
//! without a backend's feature, the links to that backend lead to this section.
//!
//! # Platforms
//!
//! tokio and smol: everywhere they run. glommio: Linux 5.8+ with io_uring; the `glommio` module
//! is empty elsewhere. Ctrl-C interception uses POSIX signals; elsewhere `run` does not intercept
//! Ctrl-C. The minimum Rust version is 1.85 (tokio's).
//!
//! # Coming from asyncio
//!
//! | asyncio | runner |
//! |---|---|
//! | `asyncio.run(main())` | [`runner::run(main())`](run), or [`#[runner::main]`](macro@main) on `async fn main` |
//! | `asyncio.Runner(debug=.., loop_factory=..)` | [`Runner::new()`](Runner), [`runner::builder()`](fn@builder)`.debug(..).loop_factory(..).build()` |
//! | `with asyncio.Runner() as r:` | a `Runner` value: dropping it closes it |
//! | `Runner.run(coro)` | [`Runner::run`]: any [`IntoFuture`](std::future::IntoFuture), `Result<T, RunError>` |
//! | `Runner.run(coro, context=ctx)` | [`Runner::run_with_context`] |
//! | `Runner.get_loop()` | [`Runner::get_loop`] |
//! | `Runner.close()` | [`Runner::close`], which returns a [`CloseReport`]; idempotent |
//! | `RuntimeError: cannot be called from a running event loop` | [`RunError::NestedRun`] |
//! | `KeyboardInterrupt` out of `run` | [`RunError::Interrupted`]; `#[runner::main]` exits with 130 |
//! | `asyncio.create_task(coro)` | [`spawn`] (`Send`), [`spawn_local`] (`!Send`, on the runner's thread) |
//! | `task.cancel()`, `CancelledError` | [`JoinHandle::abort`], [`JoinError::is_cancelled`] |
//! | `asyncio.to_thread(f)`, `loop.run_in_executor(None, f)` | [`spawn_blocking`] |
//! | `asyncio.sleep(d)`, `asyncio.sleep(0)` | [`time::sleep`], [`yield_now`] |
//! | `asyncio.wait_for(aw, t)`, `asyncio.timeout(t)` | [`time::timeout`] |
//! | `contextvars.ContextVar`, `.get()`, `.set()`, `.reset(token)` | [`ContextVar`], [`get`](ContextVar::get), [`set`](ContextVar::set), [`reset`](ContextVar::reset) |
//! | `contextvars.copy_context()`, `ctx.run(f)` | [`Context::copy_current`], [`Context::run`] |
//! | `asyncio.run_coroutine_threadsafe(coro, loop)` | [`Runner::handle`], then [`LoopHandle::spawn`] from any thread |
//! | `loop.set_debug(True)`, `PYTHONASYNCIODEBUG=1`, `slow_callback_duration` | [`Builder::debug`], `RUNNER_DEBUG=1`, [`Builder::slow_poll_threshold`] |
//! | `loop_factory=uvloop.new_event_loop` | [`Builder::loop_factory`], [`AnyLoop`] (`RUNNER_BACKEND`), your own [`EventLoop`] |
//! | `loop.set_exception_handler(h)` | [`Builder::exception_handler`], which receives a [`Diagnostic`] |
//! | `loop.shutdown_default_executor(timeout)` | [`Builder::blocking_shutdown_timeout`] |
//!
//! # Coming from tokio
//!
//! | tokio | runner |
//! |---|---|
//! | `#[tokio::main]`, `#[tokio::main(flavor = "multi_thread", worker_threads = 4)]` | [`#[runner::main]`](macro@main), `#[runner::main(flavor = "multi_thread", workers = 4)]` (the default flavor is current-thread) |
//! | `#[tokio::test]` | [`#[runner::test]`](macro@test), or `#[runner::test(all_backends)]` for every backend |
//! | `Runtime::new()`, `runtime::Builder` | [`Runner::new()`](Runner), [`runner::builder()`](fn@builder), [`tokio::TokioLoop`][TokioLoop] |
//! | `Runtime::block_on(fut)` | [`Runner::run`]: returns [`RunError::NestedRun`] where tokio panics |
//! | `tokio::spawn`, `task::spawn_local` (in a `LocalSet`), `task::spawn_blocking` | [`spawn`], [`spawn_local`] (no `LocalSet` needed), [`spawn_blocking`] |
//! | `Handle::spawn` | [`LoopHandle::spawn`] |
//! | `tokio::time::{sleep, timeout}`, `task::yield_now` | [`time::sleep`], [`time::timeout`], [`yield_now`] |
//! | `task_local!` | [`ContextVar`]: inherited by spawned tasks, not scoped to one future |
//! | `JoinHandle`, `JoinError::{is_cancelled, is_panic, into_panic}` | [`JoinHandle`], [`JoinError`]: the same names |
//! | dropping a `Runtime`, `Runtime::shutdown_timeout(t)` | [`Runner::close`]: an optional grace ([`Builder::shutdown_grace`], default 0), cancellation on the loop's thread, [`Builder::blocking_shutdown_timeout`], and a [`CloseReport`] |
//! | `tokio::signal::ctrl_c()` | [`interrupted`] inside a run; [`Interrupt`] to choose whether `run` intercepts at all |
//! | `runtime::Builder::unhandled_panic` (unstable) | [`Builder::unhandled_panic`] with [`UnhandledPanic`] |
//! | `Handle::current()` for tokio APIs | [`TokioLoop::handle`][TokioLoop::handle] via [`Runner::get_loop`]; tokio's own I/O and timers work inside a run on `TokioLoop` |
//!
// The backends' links resolve with their feature; without it they point to the feature flags.
#![cfg_attr(feature = "tokio", doc = "[TokioLoop]: tokio::TokioLoop")]
#![cfg_attr(
    feature = "tokio",
    doc = "[TokioLoop::handle]: tokio::TokioLoop::handle"
)]
#![cfg_attr(not(feature = "tokio"), doc = "[TokioLoop]: crate#feature-flags")]
#![cfg_attr(
    not(feature = "tokio"),
    doc = "[TokioLoop::handle]: crate#feature-flags"
)]
#![cfg_attr(feature = "smol", doc = "[SmolLoop]: smol::SmolLoop")]
#![cfg_attr(not(feature = "smol"), doc = "[SmolLoop]: crate#feature-flags")]
#![cfg_attr(feature = "glommio", doc = "[GlommioLoop]: glommio::GlommioLoop")]
#![cfg_attr(not(feature = "glommio"), doc = "[GlommioLoop]: crate#feature-flags")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;
mod any_loop;
mod backend;
mod builder;
mod runner;

pub use any_loop::AnyLoop;
pub use backend::{Backend, DefaultLoop, RUNNER_BACKEND};
pub use builder::Builder;
pub use runner::Runner;
#[doc(inline)]
pub use runner_core::*;

/// Runs an `async fn` on a new [`Runner`], then closes it: `asyncio.run(main())` as an attribute,
/// and the counterpart of `#[tokio::main]`.
///
/// The function's body runs as the main future of a runner on the [`DefaultLoop`]
/// (current-thread) unless the arguments say otherwise; the runner is closed before the function
/// returns, so leftover tasks are cancelled and their destructors have run. The function may
/// return anything the body returns: `()`, a value, or a `Result` (for `main`, any `Result` that
/// [`Termination`](std::process::Termination) accepts). It works on any `async fn`, not only
/// `main`, which makes an async function callable from sync code.
///
/// | argument | values | default |
/// |---|---|---|
/// | `backend` | `"tokio"`, `"smol"`, `"glommio"` | the [`DefaultLoop`]'s backend |
/// | `flavor` | `"current_thread"`, `"multi_thread"` | `"current_thread"` |
/// | `workers` | an integer ≥ 1, with `flavor = "multi_thread"` | one per CPU |
/// | `print_close_report` | a flag: print the runner's [`CloseReport`] to stderr after closing | off |
///
/// Naming a backend whose feature is off, or any other argument, is a compile error that names
/// the valid choices.
///
/// # The close report
///
/// The runner is closed with [`Runner::close`] when the body returns (or is interrupted). With
/// `print_close_report`, the [`CloseReport`] goes to stderr as one line, which shows what the
/// program left behind at exit:
///
/// ```text
/// #[runner::main] closed the runner: 0 finished, 2 cancelled, 0 panicked, 0 blocking jobs left behind
/// ```
///
/// A program that needs the report as a value builds its own [`Runner`] in a plain `fn main`
/// and calls [`Runner::close`] (see [`Builder::shutdown_grace`] to let tasks finish first).
///
/// # Ctrl-C
///
/// When the first Ctrl-C interrupts the run ([`RunError::Interrupted`]), the runner is closed and
/// the process exits with status 130, as a shell reports a process killed by SIGINT.
///
/// # Panics
///
/// A panic of the body reaches the caller with its payload, after the runner is closed. Any other
/// [`RunError`] (the loop could not be created, or the function was called inside a run) panics
/// with the error's text.
///
/// # Examples
///
/// ```
/// #[runner::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let task = runner::spawn(async { 40 + 2 });
///     assert_eq!(task.await?, 42);
///     Ok(())
/// }
/// ```
///
/// Printing the close report:
///
/// ```
/// #[runner::main(print_close_report)]
/// async fn main() {
///     // Left running: cancelled by the close, and counted in the report on stderr.
///     let _ticker = runner::spawn(std::future::pending::<()>());
/// }
/// ```
///
/// On another backend and flavour, and on a function that is not `main`:
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// #[runner::main(backend = "tokio", flavor = "multi_thread", workers = 2)]
/// async fn answer() -> u32 {
///     runner::spawn(async { 42 }).await.unwrap()
/// }
///
/// assert_eq!(answer(), 42);
/// # }
/// ```
#[doc(inline)]
pub use runner_macros::main;

/// Runs an `async fn` test on a new [`Runner`]; with `all_backends`, once on every backend flavour
/// compiled in.
///
/// Adds `#[test]`, so do not write it yourself. The test may return `()` or a `Result`, and may
/// carry `#[should_panic]` or `#[ignore]`. Without `all_backends` it takes the same `backend`,
/// `flavor` and `workers` arguments as [`#[runner::main]`](macro@main) and runs on the
/// [`DefaultLoop`] by default; a run error fails the test with its text.
///
/// # `all_backends`
///
/// `#[runner::test(all_backends)]` makes the body a fresh future for each backend flavour this
/// build of `runner` has, in order `tokio`, `tokio-multi`, `smol`, `smol-multi`, `glommio` (the
/// [`Backend`] names; the multi-thread flavours with 2 workers; [`TestLoop`](testing::TestLoop)
/// when no backend feature is on), each on a new runner that is closed before the next. Every
/// flavour runs even after one fails; then the test panics with a message naming each failed
/// flavour and its panic message or `Err`:
///
/// ```text
/// #[runner::test(all_backends)] failed on 1 of 5 backends (tokio, tokio-multi, smol, smol-multi, glommio):
///   smol-multi: panicked: assertion failed: ...
/// ```
///
/// This is what a library written against [`spawn`] and [`time`] uses to check itself on every
/// executor its users may pick: enable the backend features in its dev-dependencies
/// (`runner = { version = "..", features = ["tokio", "smol", "glommio"] }`). The body must be valid on
/// multi-thread loops, so it uses [`spawn`] rather than [`spawn_local`].
///
/// # Examples
///
/// ```
/// #[runner::test]
/// async fn spawns() {
///     assert_eq!(runner::spawn(async { 1 }).await.unwrap(), 1);
/// }
///
/// #[runner::test(all_backends)]
/// async fn times_out_everywhere() -> Result<(), runner::JoinError> {
///     use std::time::Duration;
///     let slow = runner::time::sleep(Duration::from_secs(60));
///     assert!(runner::time::timeout(Duration::from_millis(1), slow).await.is_err());
///     runner::spawn(async {}).await
/// }
/// # fn main() {}
/// ```
#[doc(inline)]
pub use runner_macros::test;

/// The tokio backend: [`TokioLoop`](tokio::TokioLoop), a current-thread or multi-thread tokio
/// runtime. tokio's own I/O, timers and `Handle::current()` work inside its runs.
///
/// # Examples
///
/// ```
/// use runner::tokio::TokioLoop;
///
/// let mut rt = runner::Runner::builder()
///     .loop_factory(|| TokioLoop::multi_thread(2))
///     .build();
/// assert!(rt.get_loop().unwrap().is_multi_thread());
/// assert_eq!(rt.run(async { runner::spawn(async { 7 }).await.unwrap() }).unwrap(), 7);
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio {
    pub use runner_tokio::TokioLoop;
}

/// The smol backend: [`SmolLoop`](smol::SmolLoop), async-executor with async-io's reactor and
/// timers, local or with worker threads.
///
/// # Examples
///
/// ```
/// use runner::smol::SmolLoop;
///
/// let mut rt = runner::Runner::<SmolLoop>::default(); // SmolLoop::local()
/// let local = rt.run(async { runner::spawn_local(async { "not Send is fine" }) }).unwrap();
/// assert_eq!(rt.run(local).unwrap().unwrap(), "not Send is fine");
/// ```
#[cfg(feature = "smol")]
#[cfg_attr(docsrs, doc(cfg(feature = "smol")))]
pub mod smol {
    pub use runner_smol::SmolLoop;
}

/// The glommio backend (Linux only): [`GlommioLoop`](glommio::GlommioLoop), a thread-per-core
/// io_uring executor. Its runners are not `Send`.
///
/// # Examples
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use runner::glommio::GlommioLoop;
///
/// let mut rt = runner::Runner::<GlommioLoop>::default();
/// assert_eq!(rt.run(async { runner::spawn(async { 3 }).await.unwrap() }).unwrap(), 3);
/// # }
/// ```
#[cfg(feature = "glommio")]
#[cfg_attr(docsrs, doc(cfg(feature = "glommio")))]
pub mod glommio {
    #[cfg(target_os = "linux")]
    pub use runner_glommio::GlommioLoop;
}

/// A [`Builder`] for a runner on the [`DefaultLoop`]: the same as [`Runner::builder()`].
///
/// # Examples
///
/// ```
/// let mut rt = runner::builder().debug(true).build();
/// assert!(rt.run(async { runner::is_debug() }).unwrap());
/// ```
pub fn builder() -> Builder<DefaultLoop> {
    Builder::new()
}

/// Python's `asyncio.run`: runs `fut` on a new runner on the [`DefaultLoop`], then closes it.
///
/// # Examples
///
/// ```
/// assert_eq!(runner::run(async { runner::yield_now().await; 42 }).unwrap(), 42);
/// ```
///
/// # Errors
///
/// As [`Runner::run`]; [`RunError::NestedRun`] is returned before any loop is made.
///
/// # Panics
///
/// Resumes the future's panic, after closing the runner.
#[track_caller]
pub fn run<F: std::future::IntoFuture>(fut: F) -> Result<F::Output, RunError> {
    let mut rt = Runner::new();
    let out = rt.run(fut);
    drop(rt);
    out
}
