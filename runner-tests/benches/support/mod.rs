//! What the benches share: the workloads and criterion's settings, so that every table measures
//! the same thing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A loop factory as an application passes one to `Builder::loop_factory`: the backend's
/// constructor itself or a closure, zero-sized (a `fn` pointer would cost each runner a boxed
/// pointer the application does not pay).
#[allow(dead_code)] // smol_multi builds its runners itself
pub(crate) trait Factory<L>: FnMut() -> std::io::Result<L> + Copy + Send + 'static {}
impl<L, F: FnMut() -> std::io::Result<L> + Copy + Send + 'static> Factory<L> for F {}

/// Yields `n` times (waking itself each time), then returns 7.
#[allow(dead_code)] // glommio_order uses none
pub(crate) struct YieldN(pub(crate) u32);

impl Future for YieldN {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.0 == 0 {
            return Poll::Ready(7);
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Criterion's settings for the side-by-side tables (short, no plots: scripts/bench.py repeats
/// the whole run instead).
#[allow(dead_code)] // callgrind_ops uses no criterion
pub(crate) fn config() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .without_plots()
}
