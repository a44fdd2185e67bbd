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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
        Ok(TokioLoop {
            rt: Some(rt),
            blocking: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The tokio runtime's handle, to use tokio APIs directly.
    pub fn handle(&self) -> &Handle {
        self.runtime().handle()
    }

    /// True for a multi-thread runtime.
    pub fn is_multi_thread(&self) -> bool {
        self.handle().runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread
    }

    fn runtime(&self) -> &Runtime {
        self.rt.as_ref().expect("the runtime lives until shutdown")
    }
}

impl EventLoop for TokioLoop {
    fn default_loop() -> io::Result<Self> {
        Self::current_thread()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.runtime().block_on(fut)
    }

    fn enter<R, F: FnOnce() -> R>(&self, f: F) -> Option<R> {
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
