//! Nested runs against foreign runtimes: with a backend compiled in, a runner of *any* backend run
//! on a thread that a tokio runtime is driving (its `block_on`, one of its tasks, a blocking job
//! that entered one) returns `RunError::NestedRun` without polling anything, never hangs and never
//! panics; where tokio itself allows a `block_on` (a runner's own blocking job) the run goes on.
//!
//! The conformance kit cannot see foreign runtimes (it depends on no runtime), so these cases live
//! here. Each case runs on every backend flavour compiled in, each on its own thread under a
//! watchdog, and names the flavours that failed.

#![cfg(feature = "tokio")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use runner::{AnyLoop, Backend, RunError, Runner};

/// Longer than any case takes on a loaded machine; a hang fails the test instead of blocking it.
const WATCHDOG: Duration = Duration::from_secs(60);

fn runner_on(backend: Backend) -> Runner<AnyLoop> {
    Runner::builder()
        .loop_factory(move || AnyLoop::with_workers(backend, 2))
        .build()
}

fn foreign_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `case` once per backend flavour compiled in, each on a new thread under the watchdog,
/// and panics naming every flavour whose case failed, panicked or hung.
fn on_every_backend(what: &str, case: fn(Backend) -> Result<(), String>) {
    let mut failures = Vec::new();
    for backend in Backend::compiled() {
        let (tx, rx) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            let caught = std::panic::catch_unwind(|| case(backend));
            let _ = tx.send(match caught {
                Ok(outcome) => outcome,
                Err(p) => Err(format!("panicked: {}", runner::panic_message(p.as_ref()))),
            });
        });
        match rx.recv_timeout(WATCHDOG) {
            Ok(Ok(())) => worker.join().unwrap(),
            Ok(Err(why)) => {
                worker.join().unwrap();
                failures.push(format!("{backend}: {why}"));
            }
            Err(_) => failures.push(format!("{backend}: hung for {WATCHDOG:?}")),
        }
    }
    assert!(failures.is_empty(), "{what}:\n  {}", failures.join("\n  "));
}

/// The inner run's outcome: `Ok` when it was refused with `NestedRun` and its future was not
/// polled.
fn refused(r: Result<(), RunError>, polled: &AtomicBool) -> Result<(), String> {
    match r {
        Err(RunError::NestedRun) if !polled.load(Ordering::SeqCst) => Ok(()),
        Err(RunError::NestedRun) => Err("NestedRun, but the future was polled".into()),
        other => Err(format!("expected NestedRun, got {other:?}")),
    }
}

#[test]
fn a_run_inside_a_tokio_block_on_is_nested() {
    on_every_backend("run inside a foreign tokio block_on", |backend| {
        // A runner whose loop exists (Initialized), so that close and drop are exercised too.
        let mut rt = runner_on(backend);
        rt.run(async {}).map_err(|e| format!("outside: {e}"))?;
        let polled = Arc::new(AtomicBool::new(false));
        let p = polled.clone();
        let (mut rt, run, close) = foreign_current_thread().block_on(async move {
            let run = rt.run(async move { p.store(true, Ordering::SeqCst) });
            let close = rt.close().map(drop);
            (rt, run, close)
        });
        refused(run, &polled)?;
        if !matches!(close, Err(RunError::NestedRun)) {
            return Err(format!("close inside: expected NestedRun, got {close:?}"));
        }
        // Refused inside, usable outside: the loop was not touched.
        let after = rt.run(async { 7 }).map_err(|e| format!("after: {e}"))?;
        assert_eq!(after, 7);
        rt.close().map_err(|e| format!("close after: {e}"))?;
        Ok(())
    });
}

#[test]
#[allow(clippy::async_yields_async)] // the run returns the task's handle, on purpose
fn an_initialized_runner_dropped_inside_a_tokio_block_on_neither_hangs_nor_panics() {
    on_every_backend("drop inside a foreign tokio block_on", |backend| {
        let mut rt = runner_on(backend);
        let _forever = rt
            .run(async { runner::spawn(std::future::pending::<()>()) })
            .map_err(|e| format!("outside: {e}"))?;
        foreign_current_thread().block_on(async move { drop(rt) });
        Ok(())
    });
}

#[test]
fn a_run_inside_a_tokio_task_is_nested() {
    on_every_backend("run inside a task of a foreign tokio runtime", |backend| {
        let foreign = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcome = foreign.block_on(async move {
            tokio::spawn(async move {
                let polled = AtomicBool::new(false);
                // Made inside the task: a glommio runner is not `Send`.
                let r = runner_on(backend).run(async { polled.store(true, Ordering::SeqCst) });
                refused(r, &polled)
            })
            .await
            .map_err(|e| format!("the tokio task failed: {e}"))
        });
        outcome?
    });
}

#[test]
fn a_run_inside_a_runtime_that_a_blocking_job_entered_is_nested() {
    on_every_backend(
        "run inside a foreign tokio runtime entered by a runner's blocking job",
        |outer_backend| {
            let mut outer = runner_on(outer_backend);
            let outcomes = outer
                .run(async {
                    runner::spawn_blocking(|| {
                        Backend::compiled()
                            .map(|inner| {
                                let polled = Arc::new(AtomicBool::new(false));
                                let p = polled.clone();
                                let r = foreign_current_thread().block_on(async move {
                                    runner_on(inner)
                                        .run(async move { p.store(true, Ordering::SeqCst) })
                                });
                                refused(r, &polled).map_err(|why| format!("inner {inner}: {why}"))
                            })
                            .collect::<Vec<_>>()
                    })
                    .await
                })
                .map_err(|e| format!("outer run: {e}"))?
                .map_err(|e| format!("the blocking job failed: {e}"))?;
            outcomes.into_iter().collect()
        },
    );
}

#[test]
fn a_run_on_a_runners_own_blocking_job_is_allowed() {
    on_every_backend("run on a runner's blocking job", |outer_backend| {
        let mut outer = runner_on(outer_backend);
        let outcomes = outer
            .run(async {
                runner::spawn_blocking(|| {
                    Backend::compiled()
                        .map(|inner| {
                            let mut rt = runner_on(inner);
                            match rt.run(async { runner::spawn(async { 6 * 7 }).await.unwrap() }) {
                                Ok(42) => Ok(()),
                                other => Err(format!("inner {inner}: got {other:?}")),
                            }
                        })
                        .collect::<Vec<_>>()
                })
                .await
            })
            .map_err(|e| format!("outer run: {e}"))?
            .map_err(|e| format!("the blocking job failed: {e}"))?;
        outcomes.into_iter().collect()
    });
}
