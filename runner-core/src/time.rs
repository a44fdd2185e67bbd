//! Executor-neutral timers: each backend's own timer behind one API.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskCx, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::error::MSG_NO_RUNTIME;
use crate::event_loop::BoxFuture;
use crate::scope;

/// Waits until `duration` has passed, on the current runner's loop timer.
///
/// A zero `duration` (or any deadline already passed at the first poll) is ready at that poll,
/// without yielding and without a timer, on every backend, as smol's and glommio's own sleeps
/// are (tokio's waits for its timer's next tick, about a millisecond). Python's
/// `await asyncio.sleep(0)`, which lets the other ready tasks run first, is [`yield_now`].
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # type Runner = runner::Runner<runner::testing::TestLoop>;
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// Runner::new().run(runner::time::sleep(Duration::from_millis(20))).unwrap();
/// assert!(start.elapsed() >= Duration::from_millis(20));
/// ```
///
/// # Panics
///
/// When first polled outside any runner (the timer belongs to a loop), whatever the duration.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Waits until `deadline`, on the current runner's loop timer. A deadline already passed at
/// the first poll is ready there, without yielding (see [`sleep`]).
///
/// # Panics
///
/// When first polled outside any runner.
pub fn sleep_until(deadline: Instant) -> Sleep {
    // The loop's timer is made at the first poll that finds the deadline ahead: a sleep whose
    // deadline has passed by then (a zero-length one) costs no timer and no allocation.
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future of [`sleep`] and [`sleep_until`]. Dropping it cancels the timer.
pub struct Sleep {
    deadline: Instant,
    timer: Option<BoxFuture>,
}

impl Sleep {
    /// When the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        if self.timer.is_none() {
            let deadline = self.deadline;
            // Outside any runner even a sleep already over panics, as any other does: code that
            // passes its tests with zero durations must not panic with longer ones.
            let timer = scope::with_current(|s| {
                let s = s.unwrap_or_else(|| panic!("runner::time::sleep: {MSG_NO_RUNTIME}"));
                (Instant::now() < deadline).then(|| s.spawner.sleep_until(deadline))
            });
            match timer {
                Some(t) => self.timer = Some(t),
                None => return Poll::Ready(()),
            }
        }
        self.timer.as_mut().expect("set above").as_mut().poll(cx)
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// The error of [`timeout`]: the time ran out first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `fut`, giving up after `duration`: `Ok(output)` or `Err(Elapsed)`, in which case `fut`
/// is dropped.
///
/// # Examples
///
/// ```
/// # use runner_core as runner;
/// # type Runner = runner::Runner<runner::testing::TestLoop>;
/// use std::time::Duration;
/// use runner::time::{sleep, timeout};
///
/// let mut rt = Runner::new();
/// rt.run(async {
///     assert_eq!(timeout(Duration::from_secs(5), async { 1 }).await, Ok(1));
///     assert!(timeout(Duration::from_millis(10), sleep(Duration::from_secs(5))).await.is_err());
/// })
/// .unwrap();
/// ```
///
/// # Cancel safety
///
/// As cancel safe as `fut` itself.
pub fn timeout<F: std::future::IntoFuture>(duration: Duration, fut: F) -> Timeout<F::IntoFuture> {
    Timeout {
        fut: fut.into_future(),
        sleep: sleep(duration),
    }
}

pin_project! {
    /// The future of [`timeout`].
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        fut: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Yields once to the loop: returns `Pending` after waking itself, so other tasks run first
/// (Python's `await asyncio.sleep(0)`).
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::pin;
    use std::task::{Context, Waker};
    use std::time::{Duration, Instant};

    use crate::error::MSG_NO_RUNTIME;

    /// The message of the panic of a sleep's first poll on a thread with no runner.
    fn first_poll_outside(sleep: super::Sleep) -> String {
        let payload = catch_unwind(AssertUnwindSafe(move || {
            let sleep = pin!(sleep);
            let _ = sleep.poll(&mut Context::from_waker(Waker::noop()));
        }))
        .expect_err("a sleep polled outside any runner panics");
        crate::error::panic_message(&*payload).to_owned()
    }

    #[test]
    fn a_sleep_polled_outside_any_runner_panics_whatever_its_duration() {
        let message = format!("runner::time::sleep: {MSG_NO_RUNTIME}");
        assert_eq!(
            first_poll_outside(super::sleep(Duration::from_secs(5))),
            message
        );
        assert_eq!(first_poll_outside(super::sleep(Duration::ZERO)), message);
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(first_poll_outside(super::sleep_until(past)), message);
    }
}
