//! Blocking jobs on the loop's pool.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::context::Context;
use crate::error::JoinError;
use crate::lock::lock;
use crate::scope;
use crate::shared::{BlockingInfo, Shared};

use super::cell::*;
use super::join::*;

pub(crate) fn spawn_blocking_on<F, R>(shared: &Arc<Shared>, f: F, meta: Meta) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let header = Header::new(usize::MAX, meta, shared, false, false);
    let key = lock(&shared.blocking).insert(BlockingInfo {
        info: header.info(),
        since: Instant::now(),
    });
    let task = Arc::new(Task::new(header));
    let job = BlockingJobGuard {
        task: Some(task.clone()),
        shared: Arc::downgrade(shared),
        key,
    };
    let mut ctx = Context::copy_current();
    shared.spawner.spawn_blocking(Box::new(move || {
        // Moves the whole guard in, so its `Drop` runs when the closure ends or is dropped.
        let mut job = job;
        let Some(task) = job.task.take() else { return };
        let mut scope = job.shared.upgrade();
        let result = if task.header.is_aborted() {
            Err(JoinError::cancelled())
        } else {
            let _scope = scope::Enter::with_running(&mut scope, false);
            catch_unwind(AssertUnwindSafe(|| ctx.run(f))).map_err(JoinError::panic)
        };
        task.complete(result, scope.as_deref());
    }));
    JoinHandle { inner: task }
}

/// Owned by a blocking job's closure. Blocking jobs are not in the task registry (`usize::MAX`
/// matches no key there) but in their own set, which close waits on with a timeout; the guard
/// takes the job out of that set however the closure ends: run, panicked, or dropped unrun by a
/// pool that is shutting down, in which case the handle gets a cancelled error instead of
/// waiting forever.
pub(crate) struct BlockingJobGuard<R: Send + 'static> {
    pub(crate) task: Option<Arc<Task<R, Header>>>,
    pub(crate) shared: Weak<Shared>,
    pub(crate) key: usize,
}

impl<R: Send + 'static> Drop for BlockingJobGuard<R> {
    fn drop(&mut self) {
        let shared = self.shared.upgrade();
        if let Some(task) = self.task.take() {
            task.complete(Err(JoinError::cancelled()), shared.as_deref());
        }
        if let Some(s) = shared {
            let mut set = lock(&s.blocking);
            set.try_remove(self.key);
            drop(set);
            s.blocking_done.notify_all();
        }
    }
}
