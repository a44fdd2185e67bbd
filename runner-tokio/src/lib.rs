//! The tokio backend of [`runner`](https://docs.rs/runner): [`TokioLoop`].
//!
//! A `TokioLoop` owns a tokio runtime, current-thread or multi-thread, with its I/O and time
//! drivers enabled, so tokio's own sockets and timers work inside runs. The runner's tasks are
//! ordinary tokio tasks (wrapped once by `runner-core`), its blocking jobs go to tokio's blocking
//! pool, and `runner::time` uses tokio's timer.

#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use runner_core::{BlockingJob, BoxFuture, EventLoop, LocalBoxFuture, LocalSpawner, Spawner};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::LocalSet;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Each current-thread loop's `LocalSet` on this thread (a `LocalSet` is `!Send`, the loop is
    /// `Send`): `!Send` tasks live with the thread that spawned them.
    /// The spawner is kept beside its set so that `local_spawner` (called on every run) costs a
    /// lookup and an `Rc` clone, not an allocation.
    static LOCAL_SETS: RefCell<Vec<(u64, Rc<TokioLocalSpawner>)>> = const { RefCell::new(Vec::new()) };
    /// Set while one of our blocking jobs runs: tokio allows `block_on` on its blocking threads.
    static IN_BLOCKING: Cell<bool> = const { Cell::new(false) };
}

/// A tokio runtime as a runner's loop.
///
/// # Examples
///
/// ```
/// use runner_tokio::TokioLoop;
/// use runner_core::Runner;
///
/// let mut rt = Runner::<TokioLoop>::builder()
///     .loop_factory(|| TokioLoop::multi_thread(2))
///     .build();
/// assert_eq!(rt.run(async { 40 + 2 }).unwrap(), 42);
/// ```
pub struct TokioLoop {
    rt: Option<Runtime>,
    id: u64,
    flavor: Flavor,
    blocking: Arc<AtomicUsize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    CurrentThread,
    Local,
    MultiThread,
}

impl TokioLoop {
    /// A current-thread runtime: tasks run on the runner's thread, inside `run` only (Python's
    /// model). The default loop of the `runner` facade.
    ///
    /// `spawn_local` is not available on it, as `tokio::task::spawn_local` is not outside a
    /// `LocalSet`: running every `run` inside a `LocalSet` costs about a fifth of a bare
    /// `block_on`, which users who never spawn `!Send` tasks should not pay. Use
    /// [`local`](Self::local) for that.
    ///
    /// # Errors
    ///
    /// When tokio cannot create its I/O driver.
    pub fn current_thread() -> io::Result<Self> {
        Self::with(
            Builder::new_current_thread().enable_all().build()?,
            Flavor::CurrentThread,
        )
    }

    /// A current-thread runtime whose runs execute inside a tokio `LocalSet`, so that
    /// `runner::spawn_local` works: `!Send` tasks run on the runner's thread, inside runs.
    ///
    /// # Errors
    ///
    /// When tokio cannot create its I/O driver.
    pub fn local() -> io::Result<Self> {
        Self::with(
            Builder::new_current_thread().enable_all().build()?,
            Flavor::Local,
        )
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
        Self::with(rt, Flavor::MultiThread)
    }

    /// Wraps a runtime you configured yourself.
    ///
    /// # Errors
    ///
    /// Never; returns `io::Result` so that `|| TokioLoop::from_runtime(..)` is a loop factory.
    pub fn from_runtime(rt: Runtime) -> io::Result<Self> {
        let flavor = match rt.handle().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => Flavor::CurrentThread,
            _ => Flavor::MultiThread,
        };
        Self::with(rt, flavor)
    }

    fn with(rt: Runtime, flavor: Flavor) -> io::Result<Self> {
        Ok(TokioLoop {
            rt: Some(rt),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            flavor,
            blocking: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The tokio runtime's handle, to use tokio APIs directly.
    pub fn handle(&self) -> &Handle {
        self.runtime().handle()
    }

    /// True for a multi-thread runtime.
    pub fn is_multi_thread(&self) -> bool {
        self.flavor == Flavor::MultiThread
    }

    fn runtime(&self) -> &Runtime {
        self.rt.as_ref().expect("the runtime lives until shutdown")
    }

    fn local_set(&self) -> Rc<TokioLocalSpawner> {
        LOCAL_SETS.with(|sets| {
            let mut sets = sets.borrow_mut();
            if let Some((_, local)) = sets.iter().find(|(id, _)| *id == self.id) {
                return local.clone();
            }
            let local = Rc::new(TokioLocalSpawner(LocalSet::new()));
            sets.push((self.id, local.clone()));
            local
        })
    }
}

impl EventLoop for TokioLoop {
    fn default_loop() -> io::Result<Self> {
        Self::current_thread()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match self.flavor {
            Flavor::Local => self.local_set().0.block_on(self.runtime(), fut),
            Flavor::CurrentThread | Flavor::MultiThread => self.runtime().block_on(fut),
        }
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        Arc::new(TokioSpawner {
            handle: self.handle().clone(),
            blocking: self.blocking.clone(),
        })
    }

    fn local_spawner(&self) -> Option<Rc<dyn LocalSpawner>> {
        match self.flavor {
            Flavor::Local => Some(self.local_set()),
            Flavor::CurrentThread | Flavor::MultiThread => None,
        }
    }

    fn is_nested() -> bool {
        Handle::try_current().is_ok() && !IN_BLOCKING.with(Cell::get)
    }

    fn shutdown(mut self) {
        LOCAL_SETS.with(|sets| sets.borrow_mut().retain(|(id, _)| *id != self.id));
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
            .field("flavor", &self.flavor)
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

    fn spawn_blocking(&self, job: BlockingJob) {
        let count = self.blocking.clone();
        count.fetch_add(1, Ordering::AcqRel);
        drop(self.handle.spawn_blocking(move || {
            struct Done(Arc<AtomicUsize>);
            impl Drop for Done {
                fn drop(&mut self) {
                    IN_BLOCKING.with(|b| b.set(false));
                    self.0.fetch_sub(1, Ordering::AcqRel);
                }
            }
            let _done = Done(count);
            IN_BLOCKING.with(|b| b.set(true));
            job()
        }));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let _enter = self.handle.enter();
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

struct TokioLocalSpawner(LocalSet);

impl LocalSpawner for TokioLocalSpawner {
    fn spawn_local(&self, task: LocalBoxFuture) {
        drop(self.0.spawn_local(task));
    }
}
