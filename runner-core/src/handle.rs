//! Spawning onto a runner's loop from any thread.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;

use crate::context::Context;
use crate::error::RunError;
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
        spawn_on(&self.shared, fut, Context::copy_current(), meta).map_err(RunError::from)
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
