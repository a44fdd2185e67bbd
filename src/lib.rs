//! Python's [`asyncio.Runner`](https://docs.python.org/3/library/asyncio-runner.html) for Rust:
//! one object that owns an event loop's whole life, runs many futures on it, and shuts it down
//! so that nothing is lost, on tokio, smol, glommio, or a loop you write.
//!
//! # A short tour
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use std::time::Duration;
//!
//! // `runner::run` is `asyncio.run`: a new runner on the default loop, one run, close.
//! assert_eq!(runner::run(async { 42 }).unwrap(), 42);
//!
//! // A `Runner` keeps its loop across runs, and closes it when dropped.
//! let mut rt: runner::Runner = runner::Runner::new();
//! let task = rt.run(async { runner::spawn(async { "spawned" }) }).unwrap();
//! assert_eq!(rt.run(task).unwrap().unwrap(), "spawned");
//! rt.run(runner::time::sleep(Duration::from_millis(1))).unwrap();
//! let report = rt.close().unwrap();
//! println!("{report}");
//! # }
//! ```
//!
//! - [`Runner`]: lazy loop creation, [`run`](Runner::run) any number of times on one loop and
//!   one [`Context`], [`close`](Runner::close) that cancels what is left and returns a
//!   [`CloseReport`].
//! - Executor-neutral tasks and timers: [`spawn`], [`spawn_local`], [`spawn_blocking`],
//!   [`JoinHandle`], [`time::sleep`], [`time::timeout`], [`yield_now`]; [`LoopHandle`] to spawn
//!   from other threads.
//! - [`ContextVar`]: Python's `contextvars`, inherited by spawned tasks on every backend.
//! - Ctrl-C scoped to `run` ([`Interrupt`]), debug mode ([`Builder::debug`]), and one exception
//!   handler for every [`Diagnostic`].
//!
//! # Feature flags
//!
//! | feature | default | what |
//! |---|---|---|
//! | `tokio` | yes | [`tokio::TokioLoop`]: current-thread and multi-thread |
//! | `smol` | no | [`smol::SmolLoop`]: async-executor + async-io |
//! | `glommio` | no | [`glommio::GlommioLoop`]: Linux only |
//!
//! The features are additive. [`DefaultLoop`] is the first one enabled of tokio
//! (`TokioLoop::current_thread()`), then smol (`SmolLoop::local()`), then glommio. With none of
//! them, `DefaultLoop` is the std-only [`TestLoop`](crate::testing::TestLoop).
//!
//! # Platforms
//!
//! tokio and smol: everywhere they run. glommio: Linux 5.8+ with io_uring; the `glommio` module
//! is empty elsewhere. Ctrl-C interception uses POSIX signals; elsewhere `run` does not intercept
//! Ctrl-C.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod any_loop;

pub use any_loop::{AnyLoop, Backend, RUNNER_BACKEND};
pub use runner_core::*;

/// MAIN_DOCS
#[doc(inline)]
pub use runner_macros::main;

/// TEST_DOCS
#[doc(inline)]
pub use runner_macros::test;

/// The tokio backend.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio {
    pub use runner_tokio::TokioLoop;
}

/// The smol backend.
#[cfg(feature = "smol")]
#[cfg_attr(docsrs, doc(cfg(feature = "smol")))]
pub mod smol {
    pub use runner_smol::SmolLoop;
}

/// The glommio backend (Linux only).
#[cfg(feature = "glommio")]
#[cfg_attr(docsrs, doc(cfg(feature = "glommio")))]
pub mod glommio {
    #[cfg(target_os = "linux")]
    pub use runner_glommio::GlommioLoop;
}

cfg_if::cfg_if! {
    if #[cfg(feature = "tokio")] {
        /// The loop `Runner::new()` and [`run`] use: see the crate docs for the precedence.
        pub type DefaultLoop = runner_tokio::TokioLoop;
    } else if #[cfg(feature = "smol")] {
        /// The loop `Runner::new()` and [`run`] use: see the crate docs for the precedence.
        pub type DefaultLoop = runner_smol::SmolLoop;
    } else if #[cfg(all(feature = "glommio", target_os = "linux"))] {
        /// The loop `Runner::new()` and [`run`] use: see the crate docs for the precedence.
        pub type DefaultLoop = runner_glommio::GlommioLoop;
    } else {
        /// The loop `Runner::new()` and [`run`] use: with no backend feature, the std-only
        /// reference loop.
        pub type DefaultLoop = runner_core::testing::TestLoop;
    }
}

/// The lifecycle object, on [`DefaultLoop`] unless you name another loop.
///
/// Name the loop in a turbofish (`Runner::<SmolLoop>::new()`) or let the context pin it
/// (`let rt: Runner = Runner::new();`): Rust does not infer a type alias's default parameter in
/// an expression. [`builder()`] starts a builder on the default loop with no annotation.
pub type Runner<L = DefaultLoop> = runner_core::Runner<L>;

/// Configures a [`Runner`]; `Runner::builder()` starts one.
pub type Builder<L = DefaultLoop> = runner_core::Builder<L>;

/// A [`Builder`] for a runner on the [`DefaultLoop`]; the same as `Runner::<DefaultLoop>::builder()`.
///
/// Rust does not use a type alias's default parameter to infer a type, so `Runner::builder()`
/// needs its loop type pinned by the context (`let rt: Runner = Runner::builder().build();`);
/// this function needs nothing.
///
/// # Examples
///
/// ```
/// let mut rt = runner::builder().debug(true).build();
/// assert!(rt.run(async { runner::is_debug() }).unwrap());
/// ```
pub fn builder() -> Builder<DefaultLoop> {
    Builder::<DefaultLoop>::new()
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
    let mut rt = Runner::<DefaultLoop>::new();
    let out = rt.run(fut);
    drop(rt);
    out
}
