//! [`JoinHandle`]: an owned permission to await a task's output.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use crate::error::JoinError;

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
    Local(Arc<Task<T, Arc<LocalHeader>>>),
    Blocking(Arc<Task<T, Header>>),
}

impl<T> JoinHandle<T> {
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        match &self.inner {
            Inner::Shared(c) => c.task().header(),
            Inner::Blocking(t) => t.header(),
            Inner::Local(t) => t.header(),
        }
    }

    /// Cancels the task. Its future is dropped on its loop's thread the next time the loop runs,
    /// and the handle then yields a cancelled [`JoinError`] (or, if the future's destructor
    /// panicked, that panic, as with tokio). Does nothing to a task that has already finished,
    /// nor to a blocking job that has started.
    pub fn abort(&self) {
        match &self.inner {
            // A task on the runner's own queue is its own waker.
            Inner::Shared(c) => c.clone().abort(),
            Inner::Local(t) => t.header.abort(),
            // A blocking job checks the flag once, before it starts; no waker.
            Inner::Blocking(t) => {
                t.header.abort();
            }
        }
    }

    /// True once the task has finished, by any path: its output (or error) is ready.
    pub fn is_finished(&self) -> bool {
        self.header().is_complete()
    }

    /// The name given with [`Builder::name`](super::Builder::name), if any.
    pub fn name(&self) -> Option<&str> {
        self.header().name()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        match &self.inner {
            Inner::Shared(c) => c.task().poll_join(cx),
            Inner::Blocking(t) => t.poll_join(cx),
            Inner::Local(t) => t.poll_join(cx),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    #[inline]
    fn drop(&mut self) {
        // Once the output is taken there is nothing left to do: no output, no report.
        if !self.header().state.is_taken_by_me() {
            match &self.inner {
                Inner::Shared(c) => c.task().detach(),
                Inner::Blocking(t) => t.detach(),
                Inner::Local(t) => t.detach(),
            }
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.header().info())
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! The output's hand-over without a lock, under Miri: across threads (blocking jobs complete
    //! on a thread of their own), with the handle's waker replaced, and with the handle dropped
    //! unread while the job may be completing.

    use std::future::{poll_fn, Future};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context as TaskCx, Poll, Waker};

    use crate::testing::TestLoop;
    use crate::Runner;

    use crate::testing::Count;

    #[test]
    fn output_handed_over_across_threads_and_wakers() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut rt = Runner::<TestLoop>::new();
        let d = drops.clone();
        rt.run(async move {
            for i in 0..3u32 {
                let h = crate::task::spawn_blocking(move || i * 2);
                assert_eq!(h.await.unwrap(), i * 2);
            }
            // Polled once with a waker of its own, then awaited: the waker is replaced.
            let mut h = crate::task::spawn(async {
                for _ in 0..3 {
                    crate::yield_now().await;
                }
                String::from("done")
            });
            let first = Pin::new(&mut h).poll(&mut TaskCx::from_waker(Waker::noop()));
            assert!(first.is_pending());
            assert_eq!(h.await.unwrap(), "done");
            // Dropped unread, while the job may be completing on its thread.
            let count = Count(d.clone());
            drop(crate::task::spawn_blocking(move || count));
            poll_fn(|cx| {
                if d.load(Ordering::SeqCst) == 1 {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            })
            .await;
        })
        .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
