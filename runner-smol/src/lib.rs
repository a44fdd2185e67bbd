//! The smol backend of [`runner`](https://docs.rs/runner): [`SmolLoop`].
//!
//! A `SmolLoop` is an `async_executor::Executor` driven by `async_io::block_on`, so async-io's
//! reactor and timers run inside every `run`. `SmolLoop::local` runs tasks on the runner's thread
//! only, inside runs; `SmolLoop::multi_thread(n)` adds `n` threads that run the executor all the
//! time, joined at shutdown. Blocking jobs go to the `blocking` crate's pool, timers are
//! `async_io::Timer`s.

#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use async_executor::Executor;
use runner_core::{BlockingJob, BoxFuture, EventLoop, RawTask, Spawner};

/// At most this many tasks are run by `shutdown` (see there).
const TICKS_AT_SHUTDOWN: usize = 100_000;

/// An async-executor + async-io loop.
///
/// # Examples
///
/// ```
/// # mod runner { pub use runner_core::*; pub mod smol { pub use runner_smol::SmolLoop; } }
/// use runner::smol::SmolLoop;
///
/// let mut rt = runner::Runner::<SmolLoop>::default(); // SmolLoop::local()
/// assert_eq!(rt.run(async { 40 + 2 }).unwrap(), 42);
/// ```
pub struct SmolLoop {
    ex: Arc<Executor<'static>>,
    threads: Vec<JoinHandle<()>>,
    stop: Option<async_channel::Sender<()>>,
}

impl SmolLoop {
    /// A loop whose tasks run on the runner's thread, inside `run` only.
    ///
    /// # Errors
    ///
    /// Never; returns `io::Result` to be a loop factory as it is.
    pub fn local() -> io::Result<Self> {
        Ok(SmolLoop {
            ex: Arc::new(Executor::new()),
            threads: Vec::new(),
            stop: None,
        })
    }

    /// A loop with `threads` extra threads (at least 1) that run its tasks all the time, also
    /// between runs. They are joined at shutdown.
    ///
    /// # Errors
    ///
    /// When a thread cannot be spawned.
    pub fn multi_thread(threads: usize) -> io::Result<Self> {
        let mut lp = Self::local()?;
        let (tx, rx) = async_channel::bounded::<()>(1);
        for i in 0..threads.max(1) {
            let ex = lp.ex.clone();
            let rx = rx.clone();
            let t = thread::Builder::new()
                .name(format!("runner-smol-{i}"))
                .spawn(move || {
                    let _ = async_io::block_on(ex.run(rx.recv()));
                });
            match t {
                Ok(t) => lp.threads.push(t),
                Err(e) => {
                    drop(tx);
                    lp.join();
                    return Err(e);
                }
            }
        }
        lp.stop = Some(tx);
        Ok(lp)
    }

    /// True for a multi-thread loop.
    pub fn is_multi_thread(&self) -> bool {
        self.stop.is_some()
    }

    /// The executor, to use async-executor's API directly.
    ///
    /// The loop drops the executor, and with it every task it still holds, at shutdown. A clone
    /// that outlives the loop keeps those tasks instead: while one exists, the runner's close
    /// waits until the executor has polled each task it cancelled
    /// ([`EventLoop::reaps_at_shutdown`] says `false`).
    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.ex
    }

    fn join(&mut self) {
        self.stop = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl EventLoop for SmolLoop {
    fn default_loop() -> io::Result<Self> {
        Self::local()
    }

    fn is_multi_thread(&self) -> bool {
        self.stop.is_some()
    }

    /// The loop's own threads (`multi_thread`'s `threads`).
    fn workers(&self) -> usize {
        self.threads.len().max(1)
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        // `!Send` tasks are run by the runner itself (runner-core's local executor), so no
        // `LocalExecutor` is nested around every run.
        async_io::block_on(self.ex.run(fut))
    }

    fn enter<R, F: FnOnce() -> R>(&self, f: F) -> Option<R> {
        // Tasks and timers reach the executor and the reactor through handles: no context to
        // enter.
        Some(f())
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        Arc::new(SmolSpawner {
            ex: Arc::downgrade(&self.ex),
        })
    }

    fn reaps_at_shutdown(&self) -> bool {
        // The executor drops every task it holds when its last reference goes, and the loop
        // (with its threads, joined at shutdown) holds the only ones: the spawner holds a
        // `Weak`. A clone taken through `executor()` keeps the executor, and with it the
        // runner's tasks, past shutdown: then the runner waits for its tasks instead.
        Arc::strong_count(&self.ex) <= 1 + self.threads.len()
    }

    fn shutdown(mut self) {
        self.join();
        // After a normal close only the tasks close cancelled in place are left, empty, for the
        // executor's drop (the loop's, below) to let go of. After a runner was dropped where it
        // could not drive its loop, its tasks were aborted and woken: polling them once here, on
        // the loop's thread, drops their futures, also when a clone of the executor (taken
        // through `executor()`) outlives the loop. Bounded, because a task that is not the
        // runner's may wake itself forever.
        for _ in 0..TICKS_AT_SHUTDOWN {
            if !self.ex.try_tick() {
                break;
            }
        }
    }
}

impl Drop for SmolLoop {
    fn drop(&mut self) {
        self.join();
    }
}

impl fmt::Debug for SmolLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolLoop")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

/// Holds the executor weakly: the runner's state holds the spawner, its tasks hold the runner's
/// state, and the executor holds the tasks, so a strong reference here would keep the executor,
/// and every task left in it, alive through that cycle after the loop is gone. Weak, the loop's
/// drop is the executor's, which drops every task it still holds (see `reaps_at_shutdown`).
struct SmolSpawner {
    ex: Weak<Executor<'static>>,
}

impl SmolSpawner {
    #[inline]
    fn spawn_on<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        // Without the loop (the runner refuses spawns once closed, so only a spawn racing the
        // loop's drop gets here), the task is dropped here, as a loop shutting down drops it.
        if let Some(ex) = self.ex.upgrade() {
            ex.spawn(task).detach();
        }
    }
}

impl Spawner for SmolSpawner {
    fn spawn(&self, task: BoxFuture) {
        self.spawn_on(task);
    }

    fn spawn_task(&self, task: RawTask) {
        // Stored in the executor's task as it is: no box.
        self.spawn_on(task);
    }

    fn spawn_blocking(&self, job: BlockingJob) {
        blocking::unblock(job).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }
}
