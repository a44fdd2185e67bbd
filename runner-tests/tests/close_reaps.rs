//! Close on a loop whose shutdown drops every task it holds (`EventLoop::reaps_at_shutdown`):
//! the futures of pending tasks are dropped in place, once each, with the runner's context
//! installed, and the backend's tasks left for the loop's shutdown to drop. Nothing is leaked:
//! once the runner is gone, what only the task cells held (a context variable's value) and what
//! only the runner's shared state held (its exception handler) are freed.
//!
//! Also on the loops that do not reap, where close waits for every task instead.

// Every test here is per backend, on the two whose loops reap (tokio, smol): with neither
// compiled in, there is nothing to run.
#![cfg(any(feature = "tokio", feature = "smol"))]

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use runner::{ContextVar, EventLoop};
use runner_conformance::{watchdog, watchdog_limit, Kit};

/// Pending tasks per runner: some parked for good, some waking themselves all the time (queued
/// in the backend, or being polled on a worker, when close cancels them).
const PARKED: usize = 300;
const BUSY: usize = 8;
const CYCLES: usize = 50;

/// Only the task cells hold it (the context each task was spawned with).
static HELD: ContextVar<Arc<()>> = ContextVar::new("close_reaps.held");

/// Counts its drops, and the drops that saw the runner's context installed.
struct Probe {
    drops: Arc<AtomicUsize>,
    in_context: Arc<AtomicUsize>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if runner::LoopHandle::try_current().is_some() && HELD.get().is_some() {
            self.in_context.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn cycle<L: EventLoop>(kit: &Kit<L>) {
    let by_handler = Arc::new(());
    let weak_shared = Arc::downgrade(&by_handler);
    let by_cells = Arc::new(());
    let weak_cells = Arc::downgrade(&by_cells);
    let drops = Arc::new(AtomicUsize::new(0));
    let in_context = Arc::new(AtomicUsize::new(0));
    let mut rt = kit
        .builder()
        .exception_handler(move |_| {
            let _held = &by_handler;
        })
        .build();
    let (d, c) = (drops.clone(), in_context.clone());
    rt.run(async move {
        let _token = HELD.set(by_cells);
        for i in 0..PARKED + BUSY {
            let probe = Probe {
                drops: d.clone(),
                in_context: c.clone(),
            };
            runner::spawn(async move {
                let _probe = probe;
                if i < PARKED {
                    pending::<()>().await;
                } else {
                    loop {
                        runner::yield_now().await;
                    }
                }
            });
        }
        runner::yield_now().await;
    })
    .unwrap();
    let report = rt.close().unwrap();
    let name = kit.name();
    assert_eq!(report.cancelled, PARKED + BUSY, "{name}: {report}");
    assert_eq!(report.finished + report.panicked, 0, "{name}: {report}");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        PARKED + BUSY,
        "{name}: every future dropped exactly once, by close"
    );
    assert_eq!(
        in_context.load(Ordering::SeqCst),
        PARKED + BUSY,
        "{name}: every future dropped with the runner and its context installed"
    );
    drop(rt);
    assert!(
        weak_cells.upgrade().is_none(),
        "{name}: a task cell outlives its runner"
    );
    assert!(
        weak_shared.upgrade().is_none(),
        "{name}: the runner's shared state outlives the runner"
    );
    assert_eq!(drops.load(Ordering::SeqCst), PARKED + BUSY, "{name}");
}

fn cycles<L: EventLoop>(kit: Kit<L>) {
    let what = format!("close_reaps on {}", kit.name());
    watchdog(&what, watchdog_limit(), move || {
        for _ in 0..CYCLES {
            cycle(&kit);
        }
    });
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_multi() {
    let lp = runner::tokio::TokioLoop::multi_thread(2).unwrap();
    assert!(lp.reaps_at_shutdown(), "tokio's runtime drops its tasks");
    drop(lp);
    cycles(Kit::new("tokio_multi", || {
        runner::tokio::TokioLoop::multi_thread(2)
    }));
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_current() {
    cycles(Kit::new(
        "tokio_current",
        runner::tokio::TokioLoop::current_thread,
    ));
}

#[cfg(feature = "smol")]
#[test]
fn smol_multi() {
    cycles(Kit::new("smol_multi", || {
        runner::smol::SmolLoop::multi_thread(2)
    }));
}

#[cfg(feature = "smol")]
#[test]
fn smol_local() {
    cycles(Kit::new("smol_local", runner::smol::SmolLoop::local));
}

/// An executor kept alive through `SmolLoop::executor` would keep the tasks it holds past the
/// loop's shutdown: the loop says it does not reap, and close waits for every task as before,
/// with nothing left behind either.
#[cfg(feature = "smol")]
#[test]
fn smol_multi_with_a_shared_executor() {
    use std::sync::Mutex;

    type Executor = async_executor::Executor<'static>;
    static KEPT: Mutex<Vec<Arc<Executor>>> = Mutex::new(Vec::new());

    let lp = runner::smol::SmolLoop::multi_thread(2).unwrap();
    assert!(lp.reaps_at_shutdown(), "the loop holds its executor alone");
    let ex = lp.executor().clone();
    assert!(!lp.reaps_at_shutdown(), "a clone of the executor is kept");
    drop(ex);
    drop(lp);
    cycles(Kit::new("smol_multi_shared", || {
        let lp = runner::smol::SmolLoop::multi_thread(2)?;
        KEPT.lock().unwrap().push(lp.executor().clone());
        Ok(lp)
    }));
    let kept = std::mem::take(&mut *KEPT.lock().unwrap());
    assert_eq!(kept.len(), CYCLES);
    for ex in &kept {
        assert!(
            ex.is_empty(),
            "the runner's tasks left in a shared executor"
        );
    }
}
