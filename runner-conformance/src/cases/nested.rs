//! Nested runs seen from inside the runners (CONTRACT §3 "run": "called while any runner's loop
//! is running on this thread, it returns `RunError::NestedRun` ... and never panics, deadlocks or
//! blocks"). Foreign runtimes (a tokio runtime driving the thread) are outside the kit's sight:
//! the facade's `tests/nested_runs.rs` checks those on every backend.

use std::sync::mpsc;
use std::time::Duration;

use runner_core::{EventLoop, RunError, State};

use crate::Kit;

/// Longer than any case takes on a loaded machine: a hang fails the case instead of blocking.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `case` on a thread of its own and fails, naming the loop, when it does not return within
/// [`WATCHDOG`]; a panic of the case is resumed here.
fn watched<L: EventLoop>(kit: &Kit<L>, what: &str, case: fn(Kit<L>)) {
    let (tx, rx) = mpsc::channel();
    let k = kit.clone();
    let worker = std::thread::spawn(move || {
        case(k);
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = worker.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{}: {what} hung for {WATCHDOG:?}", kit.name())
        }
    }
}

/// "A runner's own blocking jobs may run another runner" (tokio allows `block_on` on its blocking
/// threads): a blocking job is not inside the loop, so a fresh runner of the same loop runs there,
/// spawns, and closes.
pub fn a_blocking_job_may_run_another_runner<L: EventLoop>(kit: &Kit<L>) {
    watched(kit, "a runner on a blocking job", |kit| {
        let mut outer = kit.runner();
        let inner_kit = kit.clone();
        let out = outer
            .run(async move {
                runner_core::spawn_blocking(move || {
                    let mut inner = inner_kit.runner();
                    let v = inner.run(async { runner_core::spawn(async { 6 * 7 }).await });
                    let closed = inner.close().map(|r| r.cancelled);
                    (v.map(|j| j.ok()), closed)
                })
                .await
            })
            .unwrap()
            .unwrap();
        assert!(
            matches!(out, (Ok(Some(42)), Ok(0))),
            "{}: inner run on a blocking job: {out:?}",
            kit.name()
        );
    });
}

/// "Never panics, deadlocks or blocks", for a drop: an initialized runner with a pending task,
/// dropped inside another runner's run, is abandoned without driving its loop; the outer run goes
/// on and returns.
#[allow(clippy::async_yields_async)] // the first run returns the pending task's handle
pub fn a_runner_dropped_inside_a_run_neither_blocks_nor_panics<L: EventLoop>(kit: &Kit<L>) {
    watched(kit, "a drop inside a run", |kit| {
        let mut victim = kit.runner();
        let _pending = victim
            .run(async { runner_core::spawn(std::future::pending::<()>()) })
            .unwrap();
        assert_eq!(victim.state(), State::Initialized);
        let mut outer = kit.runner();
        let (nested, after) = outer
            .run(async move {
                let nested = matches!(victim.run(async {}), Err(RunError::NestedRun));
                drop(victim);
                runner_core::yield_now().await;
                (nested, 5)
            })
            .unwrap();
        assert!(nested, "{}: run of another runner inside a run", kit.name());
        assert_eq!(after, 5);
        outer.close().unwrap();
    });
}
