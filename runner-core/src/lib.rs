//! The contract behind [`runner`](https://docs.rs/runner): the [`EventLoop`] and [`LoopFactory`]
//! traits, and everything that is the same on every backend, written once against them: the
//! [`Runner`] state machine, executor-neutral tasks ([`spawn`], [`JoinHandle`]), timers
//! ([`time`]), context variables ([`ContextVar`]), Ctrl-C handling, debug mode, and diagnostics.
//!
//! Applications use the `runner` crate, which re-exports all of this and adds the tokio, smol and
//! glommio backends. Depend on `runner-core` directly to write a backend of your own.
//!
//! # Writing a backend
//!
//! Implement [`EventLoop`] (run a future on the calling thread while driving the loop) and
//! [`Spawner`] (queue `Send` tasks from any thread, run blocking jobs, make timers); optionally
//! [`LocalSpawner`] for `!Send` tasks, and [`Spawner::spawn_task`] to take the runner's tasks
//! without boxing them. The runner does the rest: it wraps every task (panics,
//! context, cancellation, tracking, debug timing), so a loop never sees a user future directly.
//! The runner even runs its `Send` tasks itself, on its own run queue (see [`spawn`]): on a
//! current-thread loop ([`EventLoop::is_multi_thread`] false, the default) inside
//! [`EventLoop::block_on`], where the runner then calls its [`Spawner`] only for blocking jobs
//! and timers; on a multi-thread loop from *pumps*, at most one backend task per worker
//! ([`EventLoop::workers`]). The same one `impl` plugs the loop in either way.
//! [`testing::TestLoop`] is a complete implementation in about a hundred lines. Then run the
//! conformance kit on it: add `runner-conformance` as a dev-dependency and write, in
//! `tests/conformance.rs`, `runner_conformance::suite!(|| MyLoop::new());`.

// `unsafe` lives only in the signal module (FFI to install a SIGINT handler), in the task cell
// (pinning a future inside its `Arc`) and in the registry (entries without a reference count):
// see their SAFETY lines.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod close;
mod context;
mod debug;
mod diagnostic;
mod error;
mod event_loop;
mod factory;
mod handle;
mod latch;
mod local;
mod lock;
mod nesting;
#[allow(unsafe_code)]
mod registry;
mod runner;
mod scope;
mod shared;
#[allow(unsafe_code)]
mod signal;
#[allow(unsafe_code)]
pub mod task;
pub mod testing;
pub mod time;
mod wait;

pub use builder::{Builder, DEFAULT_BLOCKING_SHUTDOWN_TIMEOUT, DEFAULT_SLOW_POLL_THRESHOLD};
pub use close::CloseReport;
pub use context::{Context, ContextVar, Token};
pub use debug::is_debug;
pub use diagnostic::{Diagnostic, DiagnosticKind, TaskInfo, UnhandledPanic};
#[doc(hidden)]
pub use error::panic_message;
pub use error::{ContextError, JoinError, RunError, SpawnError, TaskPanicked};
pub use event_loop::{
    BlockingJob, BoxFuture, EventLoop, LocalBoxFuture, LocalSpawner, RawTask, Spawner,
};
pub use factory::LoopFactory;
pub use handle::LoopHandle;
pub use nesting::{register_runtime_probe, RuntimeProbe};
pub use runner::{Runner, State};
pub use signal::Interrupt;
pub use task::{spawn, spawn_blocking, spawn_local, try_spawn, try_spawn_local, JoinHandle};
pub use time::yield_now;
pub use wait::{interrupted, shutdown_requested, Interrupted, ShutdownRequested};
