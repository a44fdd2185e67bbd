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

/// The raw glommio rows' executor: one, reused (a fresh one leaks an eventfd, glommio#448).
#[cfg(target_os = "linux")]
#[allow(dead_code)] // only the benches with glommio rows
pub(crate) fn glommio_raw() -> glommio::LocalExecutor {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .make()
        .unwrap()
}

/// `tasks` glommio tasks spawned, each returning its index, then joined in order: with
/// `spawn_local`, which polls each new task inline before it returns, or (`QUEUED`) with
/// `spawn_local_into` the current task queue, which queues it, as the runner does. Run inside
/// the glommio executor.
#[cfg(target_os = "linux")]
#[allow(dead_code)] // only the benches with glommio rows
pub(crate) async fn glommio_spawn_join<const QUEUED: bool>(tasks: usize) -> usize {
    let hs: Vec<_> = if QUEUED {
        let q = glommio::executor().current_task_queue();
        (0..tasks)
            .map(|i| glommio::spawn_local_into(async move { i }, q).unwrap())
            .collect()
    } else {
        (0..tasks)
            .map(|i| glommio::spawn_local(async move { i }))
            .collect()
    };
    let mut n = 0;
    for h in hs {
        n += h.await;
    }
    n
}
