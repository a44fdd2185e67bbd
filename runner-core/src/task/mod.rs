//! Executor-neutral tasks: [`spawn`](fn@spawn), [`spawn_local`], [`spawn_blocking`] and [`JoinHandle`].
//!
//! Every task spawned through the runner is wrapped once, here, whatever the backend: the
//! wrapper catches the task's panics, installs the runner and the task's [`Context`] around each
//! poll, drops the future when the task is aborted, times polls in debug mode, and registers the
//! task with its runner so that close can cancel it and account for it.

mod blocking;
mod cell;
mod harness;
mod join;
#[cfg(all(test, loom))]
mod loom;
pub(crate) mod own;
pub(crate) mod pump;
mod spawn;
mod state;

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use crate::context::Context;
use crate::error::SpawnError;
use crate::scope;

use blocking::spawn_blocking_on;
pub(crate) use cell::Meta;
pub use join::JoinHandle;
use spawn::spawn_from;
use spawn::spawn_local_on;
pub(crate) use spawn::spawn_on;

/// Configures a task before spawning it: today its name, shown in diagnostics.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # fn main() { let mut rt = runner::Runner::<runner::testing::TestLoop>::new();
/// rt.run(async {
///     let h = runner::task::Builder::new().name("fetch").spawn(async { 1 });
///     assert_eq!(h.name(), Some("fetch"));
///     assert_eq!(h.await.unwrap(), 1);
/// })
/// .unwrap();
/// # }
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<Arc<str>>,
}

impl Builder {
    /// A builder for an unnamed task.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// [`spawn`](fn@spawn) with this configuration.
    ///
    /// # Panics
    ///
    /// Outside any run; see [`try_spawn`](Self::try_spawn).
    #[track_caller]
    pub fn spawn<F>(self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        unwrap_spawn(self.try_spawn(fut))
    }

    /// [`try_spawn`] with this configuration.
    ///
    /// # Errors
    ///
    /// As [`try_spawn`].
    #[track_caller]
    pub fn try_spawn<F>(self, fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let meta = self.meta(Location::caller());
        scope::with_spawn(|s, origin| {
            let s = s.ok_or(SpawnError::NoRunner)?;
            let here = origin.here(s);
            spawn_from(
                s,
                origin.from_loop,
                here,
                fut,
                Context::copy_current(),
                meta,
            )
        })
    }

    /// [`spawn_local`] with this configuration.
    ///
    /// # Panics
    ///
    /// As [`spawn_local`].
    #[track_caller]
    pub fn spawn_local<F>(self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        unwrap_spawn(self.try_spawn_local(fut))
    }

    /// [`try_spawn_local`] with this configuration.
    ///
    /// # Errors
    ///
    /// As [`try_spawn_local`].
    #[track_caller]
    pub fn try_spawn_local<F>(self, fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let meta = self.meta(Location::caller());
        scope::with_current(|s| spawn_local_on(s.ok_or(SpawnError::NoRunner)?, fut, meta))
    }

    /// [`spawn_blocking`] with this configuration.
    ///
    /// # Panics
    ///
    /// Outside any run.
    #[track_caller]
    pub fn spawn_blocking<F, R>(self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let meta = self.meta(Location::caller());
        unwrap_spawn(scope::with_current(|s| {
            Ok(spawn_blocking_on(s.ok_or(SpawnError::NoRunner)?, f, meta))
        }))
    }

    fn meta(self, location: &'static Location<'static>) -> Meta {
        Meta {
            name: self.name,
            location,
        }
    }
}

#[track_caller]
fn unwrap_spawn<T>(r: Result<T, SpawnError>) -> T {
    match r {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

/// Spawns a task onto the loop of the runner that is running it, whatever the backend.
///
/// Works inside any `run`, inside tasks (on any worker thread), and inside blocking jobs spawned
/// through the runner. The task gets a copy of the spawner's [`Context`]. Dropping the returned
/// handle detaches the task; see [`JoinHandle`].
///
/// The task is no backend task of its own: it runs on the runner's own run queue, one allocation
/// (its cell, which is also its waker and what the [`JoinHandle`] holds).
///
/// - On a current-thread loop it is polled inside the backend's `block_on` after each pending
///   poll of the main future, as the runner's `!Send` tasks are. There one drive polls the tasks
///   queued when it begins, then those queued meanwhile, up to 61 polls (more only when its first
///   batch alone is larger), and then lets the backend poll its I/O and timers before the rest:
///   a task that yields forever does not starve the loop.
/// - On a multi-thread loop ([`EventLoop::is_multi_thread`](crate::EventLoop::is_multi_thread)) it
///   is polled by *pumps*: backend tasks, at most one per worker thread
///   ([`EventLoop::workers`](crate::EventLoop::workers)), made through
///   [`Spawner::spawn_task`](crate::Spawner::spawn_task) as they are needed, that take tasks
///   off one shared queue one at a time, so a task that blocks its worker holds up no other. A
///   pump polls up to 61 tasks per turn, then yields to the backend (its other tasks, I/O and
///   timers); the backend's scheduler moves the pumps between its workers. What differs from a
///   backend task: the backend sees the pump, not the task (tokio's task id, its runtime
///   metrics per task, and its cooperative budget, which the tasks of one turn share), and a
///   task spawned from a worker goes to the shared queue, not to that worker's own.
///   [`Builder::backend_tasks`](crate::Builder::backend_tasks) makes every task a backend task
///   again, spawned through `spawn_task`.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # fn main() { let mut rt = runner::Runner::<runner::testing::TestLoop>::new();
/// let sum = rt
///     .run(async {
///         let handles: Vec<_> = (0..10u64).map(|i| runner::spawn(async move { i })).collect();
///         let mut sum = 0;
///         for h in handles {
///             sum += h.await.unwrap();
///         }
///         sum
///     })
///     .unwrap();
/// assert_eq!(sum, 45);
/// # }
/// ```
///
/// # Panics
///
/// Outside any run, or once the runner is closed: the message names `Runner::run`. See
/// [`try_spawn`] for the non-panicking twin.
#[track_caller]
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new().spawn(fut)
}

/// [`spawn`](fn@spawn) that returns an error instead of panicking.
///
/// # Errors
///
/// [`SpawnError::NoRunner`] outside any run; [`SpawnError::Closed`] once the runner is closed,
/// or, from a thread that is not running the loop (a blocking job), once its close has started
/// cancelling tasks.
#[track_caller]
pub fn try_spawn<F>(fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Builder::new().try_spawn(fut)
}

/// Spawns a `!Send` task onto the current runner's loop, on the runner's own thread.
///
/// Works on every loop: the runner runs local tasks itself (or hands them to the loop's native
/// local spawner, as glommio's), polling them on the runner's thread while a `run` (or close) is
/// under way, like the main future. So they progress during runs only, on multi-thread loops too,
/// and a runner with local tasks must then run and close on that thread
/// ([`RunError::WrongThread`](crate::RunError::WrongThread) otherwise) for as long as one of
/// them is alive; once they have all ended, the runner may move again.
///
/// The runner owns its local tasks. Dropped on their thread (even inside another runner's run),
/// it drops them there and then, their destructors running before the drop returns. Dropped on
/// another thread, it leaves them to their thread, which drops them the next time it enters a
/// runner's run or close, or at the latest when it exits.
///
/// # Panics
///
/// Outside any run, or from a task running on a worker thread of a multi-thread loop (which is
/// not the runner's thread); see [`try_spawn_local`].
#[track_caller]
pub fn spawn_local<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().spawn_local(fut)
}

/// [`spawn_local`] that returns an error instead of panicking.
///
/// # Errors
///
/// [`SpawnError::NoRunner`], [`SpawnError::Closed`], or [`SpawnError::LocalUnsupported`].
#[track_caller]
pub fn try_spawn_local<F>(fut: F) -> Result<JoinHandle<F::Output>, SpawnError>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Builder::new().try_spawn_local(fut)
}

/// Runs a blocking closure on the loop's blocking pool (tokio's, `blocking`'s for smol,
/// glommio's), in a copy of the caller's [`Context`].
///
/// A job cannot be interrupted once started: close gives running jobs
/// `blocking_shutdown_timeout`, then reports and leaves behind the ones still running.
///
/// # Panics
///
/// Outside any run.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    Builder::new().spawn_blocking(f)
}

#[cfg(test)]
mod tests {
    //! The task cell under Miri: poll, complete, abort, and close's in-place cancel.

    use std::future::pending;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::testing::TestLoop;
    use crate::Runner;

    use crate::testing::Count;

    #[test]
    fn cell_polls_completes_aborts_and_cancels_in_place() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut rt = Runner::<TestLoop>::new();
        let d = drops.clone();
        let (value, aborted) = rt
            .run(async move {
                let count = Count(d.clone());
                let h = super::spawn(async move {
                    let _count = count;
                    crate::yield_now().await;
                    String::from("done")
                });
                let count = Count(d.clone());
                let a = super::spawn(async move {
                    let _count = count;
                    pending::<()>().await
                });
                crate::yield_now().await;
                a.abort();
                for _ in 0..3 {
                    let count = Count(d.clone());
                    super::spawn(async move {
                        let _count = count;
                        pending::<()>().await
                    });
                }
                (h.await.unwrap(), a.await.unwrap_err().is_cancelled())
            })
            .unwrap();
        assert_eq!(value, "done");
        assert!(aborted);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        let report = rt.close().unwrap();
        assert_eq!(report.cancelled, 3);
        assert_eq!(drops.load(Ordering::SeqCst), 5);
    }
}
