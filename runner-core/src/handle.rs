//! Spawning onto a runner's loop from any thread.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use crate::context::Context;
use crate::error::{RunError, MSG_NO_RUNTIME};
use crate::scope;
use crate::shared::Shared;
use crate::task::{spawn_on, JoinHandle, Meta};

/// A handle to a runner's loop: spawn onto it from any thread (Python's
/// `run_coroutine_threadsafe`). `Send + Sync + Clone`; dropping it does nothing to the loop.
///
/// Tasks spawned through a handle are the runner's tasks like any other: tracked, cancelled at
/// close, and counted in the [`CloseReport`](crate::CloseReport). On a current-thread loop they
/// are queued until the loop next runs.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # type Runner = runner::Runner<runner::testing::TestLoop>;
/// let mut rt = Runner::new();
/// let handle = rt.handle().unwrap();
/// let task = std::thread::spawn(move || handle.spawn(async { 7 }).unwrap())
///     .join()
///     .unwrap();
/// assert_eq!(rt.run(task).unwrap().unwrap(), 7);
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

impl LoopHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LoopHandle { shared }
    }

    /// Spawns `fut` onto the loop, in a copy of the calling thread's current [`Context`].
    ///
    /// # Errors
    ///
    /// [`RunError::Closed`] once the runner is closed, or once its close has started cancelling
    /// tasks (from then on, spawns from outside the loop are refused, so that threads that keep
    /// spawning cannot keep close from finishing); the future is dropped unpolled. A spawn that
    /// returns `Ok` is always accounted for: its task ends finished, cancelled or panicked in the
    /// [`CloseReport`](crate::CloseReport).
    #[track_caller]
    pub fn spawn<F>(&self, fut: F) -> Result<JoinHandle<F::Output>, RunError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let meta = Meta {
            name: None,
            location: Location::caller(),
        };
        let from_loop = scope::running_here(&self.shared);
        spawn_on(&self.shared, from_loop, fut, Context::copy_current(), meta)
            .map_err(RunError::from)
    }

    /// The handle of the runner running the caller: inside a `run`, in its tasks (on any worker
    /// thread) and in its blocking jobs. Python's `get_running_loop()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use runner_core as runner;
    /// # type Runner = runner::Runner<runner::testing::TestLoop>;
    /// assert!(runner::LoopHandle::try_current().is_none());
    /// let inside = Runner::new()
    ///     .run(async { runner::LoopHandle::try_current().is_some() })
    ///     .unwrap();
    /// assert!(inside);
    /// ```
    ///
    /// # Panics
    ///
    /// Outside any run; see [`try_current`](Self::try_current).
    #[track_caller]
    pub fn current() -> LoopHandle {
        Self::try_current().unwrap_or_else(|| panic!("LoopHandle::current: {MSG_NO_RUNTIME}"))
    }

    /// [`current`](Self::current), or `None` outside any run.
    pub fn try_current() -> Option<LoopHandle> {
        scope::with_current(|s| s.cloned()).map(LoopHandle::new)
    }

    /// True when both handles point to the same runner.
    pub fn same_runner(&self, other: &LoopHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// True when the runner's loop runs tasks on worker threads of its own (so they also progress
    /// between runs, and `spawn_local` is refused on those threads).
    pub fn is_multi_thread(&self) -> bool {
        self.shared.multi_thread
    }

    /// True when debug mode is on for this runner.
    pub fn is_debug(&self) -> bool {
        self.shared.config.debug
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").finish_non_exhaustive()
    }
}
