//! The smol backend of [`runner`](https://docs.rs/runner): [`SmolLoop`].
//!
//! A `SmolLoop` is an `async_executor::Executor` driven by `async_io::block_on`, so async-io's
//! reactor and timers run inside every `run`. `SmolLoop::local` runs tasks on the runner's thread
//! only, inside runs; `SmolLoop::multi_thread(n)` adds `n` threads that run the executor all the
//! time, joined at shutdown. Blocking jobs go to the `blocking` crate's pool, timers are
//! `async_io::Timer`s.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use async_executor::{Executor, LocalExecutor};
use runner_core::{BlockingJob, BoxFuture, EventLoop, LocalBoxFuture, LocalSpawner, Spawner};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// At most this many tasks are run by `shutdown` (see there).
const TICKS_AT_SHUTDOWN: usize = 100_000;

thread_local! {
    /// Each local loop's `LocalExecutor` on this thread (it is `!Send`, the loop is `Send`).
    /// Kept as the spawner itself so that `local_spawner` (called on every run) does not allocate.
    static LOCALS: RefCell<Vec<(u64, Rc<SmolLocalSpawner>)>> = const { RefCell::new(Vec::new()) };
}

/// An async-executor + async-io loop.
///
/// # Examples
///
/// ```
/// use runner_core::Runner;
/// use runner_smol::SmolLoop;
///
/// let mut rt = Runner::<SmolLoop>::new();
/// assert_eq!(rt.run(async { 40 + 2 }).unwrap(), 42);
/// ```
pub struct SmolLoop {
    ex: Arc<Executor<'static>>,
    id: u64,
    threads: Vec<JoinHandle<()>>,
    stop: Option<async_channel::Sender<()>>,
}

impl SmolLoop {
    /// A loop whose tasks run on the runner's thread, inside `run` only. `spawn_local` works on
    /// it.
    ///
    /// # Errors
    ///
    /// Never; returns `io::Result` to be a loop factory as it is.
    pub fn local() -> io::Result<Self> {
        Ok(SmolLoop {
            ex: Arc::new(Executor::new()),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
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
    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.ex
    }

    fn local_executor(&self) -> Rc<SmolLocalSpawner> {
        LOCALS.with(|l| {
            let mut l = l.borrow_mut();
            if let Some((_, local)) = l.iter().find(|(id, _)| *id == self.id) {
                return local.clone();
            }
            let local = Rc::new(SmolLocalSpawner(LocalExecutor::new()));
            l.push((self.id, local.clone()));
            local
        })
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

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        if self.is_multi_thread() {
            async_io::block_on(self.ex.run(fut))
        } else {
            let local = self.local_executor();
            async_io::block_on(local.0.run(self.ex.run(fut)))
        }
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        Arc::new(SmolSpawner {
            ex: self.ex.clone(),
        })
    }

    fn local_spawner(&self) -> Option<Rc<dyn LocalSpawner>> {
        if self.is_multi_thread() {
            None
        } else {
            Some(self.local_executor())
        }
    }

    fn shutdown(mut self) {
        // Dropping the local executor drops its tasks, here on the loop's thread.
        LOCALS.with(|l| l.borrow_mut().retain(|(id, _)| *id != self.id));
        self.join();
        // After a normal close nothing is left. After a runner was dropped where it could not
        // drive its loop, its tasks were aborted and woken: polling them once here, on the
        // loop's thread, drops their futures. Without it they would stay queued in an executor
        // that they themselves keep alive. Bounded, because a task that is not the runner's
        // (spawned through `executor()`) may wake itself forever.
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

struct SmolSpawner {
    ex: Arc<Executor<'static>>,
}

impl Spawner for SmolSpawner {
    fn spawn(&self, task: BoxFuture) {
        self.ex.spawn(task).detach();
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

struct SmolLocalSpawner(LocalExecutor<'static>);

impl LocalSpawner for SmolLocalSpawner {
    fn spawn_local(&self, task: LocalBoxFuture) {
        self.0.spawn(task).detach();
    }
}
