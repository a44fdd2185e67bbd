//! [`JoinHandle`]: an owned permission to await a task's output.

use std::borrow::Borrow;
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
    /// The task's cell (a `Send` task's, a local task's or a blocking job's), type-erased: one
    /// pointer and a vtable, 16 bytes, returned in registers.
    pub(crate) inner: Arc<dyn Join<T>>,
}

// SAFETY: a handle shares its task with the task's runner and whichever thread completes it, so
// it may cross threads only when the output does: every `Join<T>` behind a handle is `Send + Sync`
// when `T: Send` (a `Send` task's `Cell`, whose future is `Send` too, and a local task's or a
// blocking job's `Task`, which are `Sync` and `Send` for `T: Send`), as the `Arc`s a handle held
// before it was erased to `dyn Join<T>`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: as for `Send`: shared references reach only the cell's state word and, through it,
// the output once (`Task`'s `Sync` needs `T: Send`).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

/// What a [`JoinHandle`] reaches of its task, whatever holds the future: one virtual call per
/// use.
pub(crate) trait Join<T> {
    fn header(&self) -> &Header;

    fn poll_join(&self, cx: &mut TaskCx<'_>) -> Poll<Result<T, JoinError>>;

    /// The handle is dropped: detaches the task unless the handle took its output.
    fn drop_handle(&self);

    /// `JoinHandle::abort`.
    fn abort(self: Arc<Self>);
}

/// The handle's drop: once the output is taken there is nothing left to do (no output, no
/// report).
#[inline]
fn drop_handle<T, H: Borrow<Header>>(task: &Task<T, H>) {
    if !task.header().state.is_taken_by_me() {
        task.detach();
    }
}

impl<F, D> Join<F::Output> for Cell<F, D>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    D: Driver,
{
    fn header(&self) -> &Header {
        &self.task.header
    }

    fn poll_join(&self, cx: &mut TaskCx<'_>) -> Poll<Result<F::Output, JoinError>> {
        self.task.poll_join(cx)
    }

    fn drop_handle(&self) {
        drop_handle(&self.task);
    }

    /// A task on the runner's own queue is its own waker: see `Cell::abort`.
    fn abort(self: Arc<Self>) {
        Cell::abort(self);
    }
}

/// A local task's.
impl<T: 'static> Join<T> for Task<T, Arc<LocalHeader>> {
    fn header(&self) -> &Header {
        &self.header.header
    }

    fn poll_join(&self, cx: &mut TaskCx<'_>) -> Poll<Result<T, JoinError>> {
        Task::poll_join(self, cx)
    }

    fn drop_handle(&self) {
        drop_handle(self);
    }

    fn abort(self: Arc<Self>) {
        self.header.abort();
    }
}

/// A blocking job's.
impl<T: Send + 'static> Join<T> for Task<T, Header> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn poll_join(&self, cx: &mut TaskCx<'_>) -> Poll<Result<T, JoinError>> {
        Task::poll_join(self, cx)
    }

    fn drop_handle(&self) {
        drop_handle(self);
    }

    /// A blocking job checks the flag once, before it starts; no waker.
    fn abort(self: Arc<Self>) {
        self.header.abort();
    }
}

impl<T> JoinHandle<T> {
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        self.inner.header()
    }

    /// Cancels the task. Its future is dropped on its loop's thread the next time the loop runs,
    /// and the handle then yields a cancelled [`JoinError`] (or, if the future's destructor
    /// panicked, that panic, as with tokio). Does nothing to a task that has already finished,
    /// nor to a blocking job that has started.
    pub fn abort(&self) {
        self.inner.clone().abort();
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

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        self.inner.poll_join(cx)
    }
}

impl<T> Drop for JoinHandle<T> {
    #[inline]
    fn drop(&mut self) {
        self.inner.drop_handle();
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

    /// One pointer and a vtable, returned in registers: no store and reload through memory at
    /// each spawn.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn the_handle_is_two_words() {
        assert_eq!(std::mem::size_of::<super::JoinHandle<u64>>(), 16);
        assert_eq!(std::mem::size_of::<Option<super::JoinHandle<u64>>>(), 16);
    }

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
