//! [`JoinHandle`]: an owned permission to await a task's output.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskCx, Poll};

use crate::error::JoinError;
use crate::lock::lock;

use super::cell::*;

/// An owned permission to await a task's output.
///
/// **Dropping a `JoinHandle` detaches the task**: it keeps running, and if it then panics, the
/// panic goes to the runner's exception handler (nothing is lost silently). This is the same
/// rule on every backend. [`abort`](Self::abort) cancels the task: its future is dropped on its
/// loop's thread, and awaiting the handle then gives a [`JoinError`] that
/// [`is_cancelled`](JoinError::is_cancelled).
///
/// A `JoinHandle` can be awaited from any thread and any executor (it is `Send` when `T` is), for
/// example with `futures_lite::future::block_on` on a plain thread: Python's
/// `run_coroutine_threadsafe`.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # fn main() { let mut rt = runner::Runner::<runner::testing::TestLoop>::new();
/// rt.run(async {
///     let handle = runner::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// })
/// .unwrap();
/// # }
/// ```
///
/// # Panics
///
/// Polling the handle again after it returned `Ready` panics.
///
/// # Cancel safety
///
/// Dropping the `await` of a handle loses nothing: the output stays in the task until the handle
/// is polled again or dropped.
pub struct JoinHandle<T> {
    pub(crate) inner: Inner<T>,
}

pub(crate) enum Inner<T> {
    Shared(Arc<dyn Output<T>>),
    Local(Arc<Task<T, Arc<Header>>>),
    Blocking(Arc<Task<T, Header>>),
}

impl<T> JoinHandle<T> {
    pub(crate) fn header(&self) -> &Header {
        self.parts().0
    }

    /// The task's header and output slot, found with one dynamic call for a `Send` task.
    #[inline]
    fn parts(&self) -> (&Header, &Mutex<Slot<T>>) {
        match &self.inner {
            Inner::Shared(c) => {
                let t = c.task();
                (&t.header, &t.slot)
            }
            Inner::Blocking(t) => (&t.header, &t.slot),
            Inner::Local(t) => (&t.header, &t.slot),
        }
    }

    /// Cancels the task. Its future is dropped on its loop's thread the next time the loop runs,
    /// and the handle then yields a cancelled [`JoinError`] (or, if the future's destructor
    /// panicked, that panic, as with tokio). Does nothing to a task that has already finished,
    /// nor to a blocking job that has started.
    pub fn abort(&self) {
        self.header().abort();
    }

    /// True once the task has finished, by any path: its output (or error) is ready.
    pub fn is_finished(&self) -> bool {
        self.header().is_complete()
    }

    /// The name given with [`Builder::name`](super::Builder::name), if any.
    pub fn name(&self) -> Option<&str> {
        self.header().info.name()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let (header, slot) = self.parts();
        let state = &header.state;
        // Only this handle sets `TAKEN`: a relaxed load sees its own earlier store.
        assert!(
            state.load(Ordering::Relaxed) & TAKEN == 0,
            "`JoinHandle` polled after it completed: await it once"
        );
        let mut slot = lock(slot);
        if let Some(out) = slot.output.take() {
            drop(slot);
            state.fetch_or(TAKEN, Ordering::Relaxed);
            return Poll::Ready(out);
        }
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    #[inline]
    fn drop(&mut self) {
        if self.header().state.load(Ordering::Relaxed) & TAKEN == 0 {
            self.detach();
        }
        // Otherwise the output was taken, and with it everything the slot held for this handle:
        // the task had completed (taking the waker) and needs no `detached` any more.
    }
}

impl<T> JoinHandle<T> {
    /// Drops a handle that has not taken the output: the task is detached, and an output already
    /// there is dropped (a panic reported) here.
    fn detach(&mut self) {
        let (header, slot) = self.parts();
        let mut slot = lock(slot);
        slot.detached = true;
        slot.waker = None;
        let output = slot.output.take();
        let reported = slot.reported;
        drop(slot);
        let unread = match output {
            Some(Err(e)) if e.is_panic() && reported => None,
            other => other,
        };
        if let Some(unread) = unread {
            // Not reported yet, so any panic happened before close began: an unobserved panic,
            // even if the handle is only dropped now. (Under `ShutdownRunner`, a runner that is
            // closing has no run left to end; the abort it records is never read.)
            let shared = header.shared.upgrade();
            drop_unread(unread, shared.as_deref(), &header.info, false);
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.header().info)
            .field("finished", &self.is_finished())
            .finish()
    }
}
