//! A model-based test of the runner's state machine: random sequences of operations, checked
//! against a small reference model after every step. Runs on any loop; see
//! `runner-tests/tests/lifecycle_model.rs`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use runner_core::{EventLoop, JoinHandle, RunError, State};

use crate::cases::tasks::{eventually, PATIENCE};
use crate::Kit;

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Op {
    /// `run` a future that yields once and returns the value.
    RunValue(u8),
    /// `run` a future that panics.
    RunPanic,
    /// `run` a future that returns `Err`.
    RunErr(u8),
    /// `get_loop`.
    GetLoop,
    /// `handle`, then spawn a ready task through it, between runs; a run then lets it finish.
    HandleSpawn(u8),
    /// Spawn, inside a run, a task that never completes. (With a shutdown grace, a
    /// [`SpawnWatcher`](Op::SpawnWatcher) instead: a task that never completes would hold close
    /// for the whole grace.)
    SpawnPending,
    /// Spawn, inside a run, a task that completes with the value; the run waits until it has.
    SpawnReady(u8),
    /// Spawn, inside a run, a task that completes with the value, and await its handle in the
    /// same run: its output is taken before the run returns, so it has ended for close.
    SpawnJoin(u8),
    /// Spawn, inside a run, a task that waits for `shutdown_requested()` and then returns the
    /// value: it finishes in close's grace. (Without a grace, a
    /// [`SpawnPending`](Op::SpawnPending) instead: with no grace whether it finishes or is
    /// cancelled is a race the contract leaves open.)
    SpawnWatcher(u8),
    /// Spawn, inside a run, a task that waits for `shutdown_requested()` and then panics (as
    /// [`SpawnWatcher`](Op::SpawnWatcher) without a grace).
    SpawnPanicker,
    /// Abort the i-th kept handle (modulo their number).
    Abort(usize),
    /// Drop the i-th kept handle.
    DropHandle(usize),
    /// Await the i-th kept handle when that cannot hang (a task that has ended or was aborted,
    /// or any task after close).
    Await(usize),
    /// `close`.
    Close,
    /// Another runner's `run` inside a run.
    NestedRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ready(u8),
    Pending,
    Watcher(u8),
    Panicker,
}

/// The model of one spawned task.
struct Task {
    kind: Kind,
    /// It has ended (finished, or aborted and dropped) before close began: close does not count
    /// it.
    ended: bool,
    /// Aborted on a current-thread loop where no run has dropped it yet: close counts it as
    /// cancelled (a run in between drops it and makes it `ended`).
    abort_pending: bool,
    /// Aborted before close, while it had not ended.
    aborted: bool,
    /// Set by its future's destructor.
    dropped: Arc<AtomicBool>,
    handle: Option<JoinHandle<u8>>,
}

/// Sets its flag when dropped: with the future that holds it.
struct Guard(Arc<AtomicBool>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A future that never completes.
struct Forever;

impl Future for Forever {
    type Output = u8;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
        Poll::Pending
    }
}

fn is_closed<T>(r: &Result<T, RunError>) -> bool {
    matches!(r, Err(RunError::Closed))
}

/// Waits on this thread (no run) until `done()`, for at most [`PATIENCE`].
fn wait_here(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The flags of the aborted tasks a run must see dropped before doing anything else.
fn abort_flags(tasks: &[Task]) -> Vec<Arc<AtomicBool>> {
    tasks
        .iter()
        .filter(|t| t.abort_pending)
        .map(|t| t.dropped.clone())
        .collect()
}

/// The start of every run: every task aborted since the last run has been dropped (on a
/// current-thread loop only a run drops them).
async fn settle(flags: Vec<Arc<AtomicBool>>) {
    let settled = eventually(|| flags.iter().all(|f| f.load(Ordering::SeqCst))).await;
    assert!(settled, "an aborted task was never dropped by the loop");
}

/// Runs `ops` on a runner of `kit`, checking every step against the model; with `grace`, the
/// runner has a long shutdown grace. Panics with the step and the loop's name on the first
/// mismatch.
///
/// The model predicts the state after every step, every value a run or a handle gives, and
/// every [`CloseReport`](runner_core::CloseReport) exactly: `finished`, `cancelled` and
/// `panicked` count the tasks that had not ended when close began, by what they do in close.
/// To make that exact, every step leaves no race behind: a ready task is waited for until it
/// has finished, an abort on a multi-thread loop is waited for until the task has ended, and on
/// a current-thread loop the next run first waits until the aborted tasks are dropped.
// Spawning returns the handle out of the run on purpose.
#[allow(clippy::async_yields_async)]
pub fn check_sequence<L: EventLoop>(kit: &Kit<L>, grace: bool, ops: &[Op]) {
    let name = kit.name();
    let multi = kit.capabilities().multi_thread;
    let mut builder = kit.builder().exception_handler(|_| {});
    if grace {
        builder = builder.shutdown_grace(PATIENCE);
    }
    let mut rt = builder.build();
    let mut model = State::Created;
    let mut tasks: Vec<Task> = Vec::new();

    // Indices (into `tasks`) of the tasks whose handles are kept, in spawn order.
    fn kept(tasks: &[Task]) -> Vec<usize> {
        (0..tasks.len())
            .filter(|&i| tasks[i].handle.is_some())
            .collect()
    }
    // A successful run drops every pending abort.
    fn ran(tasks: &mut [Task]) {
        for t in tasks.iter_mut().filter(|t| t.abort_pending) {
            t.abort_pending = false;
            t.ended = true;
        }
    }

    for (step, op) in ops.iter().enumerate() {
        let at = format!("{name}: step {step} {op:?}");
        let op = match op {
            Op::SpawnPending if grace => Op::SpawnWatcher(0),
            Op::SpawnWatcher(_) | Op::SpawnPanicker if !grace => Op::SpawnPending,
            op => op.clone(),
        };
        match op {
            Op::RunValue(v) => {
                let flags = abort_flags(&tasks);
                let r = rt.run(async move {
                    settle(flags).await;
                    runner_core::yield_now().await;
                    v
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert_eq!(r.unwrap(), v, "{at}");
                    model = State::Initialized;
                    ran(&mut tasks);
                }
            }
            Op::RunPanic => {
                let flags = abort_flags(&tasks);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    rt.run(async move {
                        settle(flags).await;
                        runner_core::yield_now().await;
                        panic!("model panic")
                    })
                }));
                if model == State::Closed {
                    assert!(is_closed(&r.expect(&at)), "{at}");
                } else {
                    assert!(r.is_err(), "{at}: the panic must reach the caller");
                    model = State::Initialized;
                    ran(&mut tasks);
                }
            }
            Op::RunErr(v) => {
                let flags = abort_flags(&tasks);
                let r = rt.run(async move {
                    settle(flags).await;
                    Err::<(), u8>(v)
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert_eq!(r.unwrap(), Err(v), "{at}");
                    model = State::Initialized;
                    ran(&mut tasks);
                }
            }
            Op::SpawnJoin(v) => {
                let flags = abort_flags(&tasks);
                let dropped = Arc::new(AtomicBool::new(false));
                let guard = Guard(dropped.clone());
                let r = rt.run(async move {
                    settle(flags).await;
                    runner_core::spawn(async move {
                        let _guard = guard;
                        v
                    })
                    .await
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert_eq!(r.expect(&at).expect(&at), v, "{at}");
                    model = State::Initialized;
                    ran(&mut tasks);
                    tasks.push(Task {
                        kind: Kind::Ready(v),
                        ended: true,
                        abort_pending: false,
                        aborted: false,
                        dropped,
                        handle: None,
                    });
                }
            }
            Op::GetLoop => {
                let r = rt.get_loop().map(|_| ());
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert!(r.is_ok(), "{at}");
                    model = State::Initialized;
                }
            }
            Op::HandleSpawn(v) => match rt.handle() {
                Ok(h) => {
                    assert_ne!(model, State::Closed, "{at}");
                    model = State::Initialized;
                    let dropped = Arc::new(AtomicBool::new(false));
                    let guard = Guard(dropped.clone());
                    let handle = h
                        .spawn(async move {
                            let _guard = guard;
                            v
                        })
                        .expect(&at);
                    let flags = abort_flags(&tasks);
                    let finished = rt
                        .run(async {
                            settle(flags).await;
                            eventually(|| handle.is_finished()).await
                        })
                        .expect(&at);
                    assert!(finished, "{at}: the task never ran");
                    ran(&mut tasks);
                    tasks.push(Task {
                        kind: Kind::Ready(v),
                        ended: true,
                        abort_pending: false,
                        aborted: false,
                        dropped,
                        handle: Some(handle),
                    });
                }
                Err(e) => assert!(
                    model == State::Closed && matches!(e, RunError::Closed),
                    "{at}"
                ),
            },
            Op::SpawnPending | Op::SpawnReady(_) | Op::SpawnWatcher(_) | Op::SpawnPanicker => {
                let kind = match op {
                    Op::SpawnReady(v) => Kind::Ready(v),
                    Op::SpawnWatcher(v) => Kind::Watcher(v),
                    Op::SpawnPanicker => Kind::Panicker,
                    _ => Kind::Pending,
                };
                let dropped = Arc::new(AtomicBool::new(false));
                let guard = Guard(dropped.clone());
                let flags = abort_flags(&tasks);
                let r = rt.run(async move {
                    settle(flags).await;
                    let h = match kind {
                        Kind::Ready(v) => runner_core::spawn(async move {
                            let _guard = guard;
                            v
                        }),
                        Kind::Pending => runner_core::spawn(async move {
                            let _guard = guard;
                            Forever.await
                        }),
                        Kind::Watcher(v) => runner_core::spawn(async move {
                            let _guard = guard;
                            runner_core::shutdown_requested().await;
                            v
                        }),
                        Kind::Panicker => runner_core::spawn(async move {
                            let _guard = guard;
                            runner_core::shutdown_requested().await;
                            panic!("model panic")
                        }),
                    };
                    if matches!(kind, Kind::Ready(_)) {
                        assert!(eventually(|| h.is_finished()).await, "never ran");
                    }
                    h
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    model = State::Initialized;
                    ran(&mut tasks);
                    tasks.push(Task {
                        kind,
                        ended: matches!(kind, Kind::Ready(_)),
                        abort_pending: false,
                        aborted: false,
                        dropped,
                        handle: Some(r.expect(&at)),
                    });
                }
            }
            Op::Abort(i) => {
                let kept = kept(&tasks);
                if kept.is_empty() {
                    continue;
                }
                let t = &mut tasks[kept[i % kept.len()]];
                let h = t.handle.as_ref().unwrap();
                h.abort();
                if !t.ended && model != State::Closed {
                    t.aborted = true;
                    if multi {
                        // A worker drops it: wait until it has ended, so that close cannot race
                        // with it.
                        let dropped = &t.dropped;
                        assert!(
                            wait_here(|| h.is_finished() && dropped.load(Ordering::SeqCst)),
                            "{at}: never ended"
                        );
                        t.ended = true;
                    } else {
                        t.abort_pending = true;
                    }
                }
            }
            Op::DropHandle(i) => {
                let kept = kept(&tasks);
                if !kept.is_empty() {
                    tasks[kept[i % kept.len()]].handle = None;
                }
            }
            Op::Await(i) => {
                let kept = kept(&tasks);
                if kept.is_empty() {
                    continue;
                }
                let t = &mut tasks[kept[i % kept.len()]];
                let aborted = t.aborted;
                let safe = model == State::Closed || t.ended || t.abort_pending;
                if !safe {
                    continue;
                }
                let handle = t.handle.take().unwrap();
                let out = if model == State::Closed {
                    futures_lite::future::block_on(handle)
                } else {
                    let flags = abort_flags(&tasks);
                    let out = rt
                        .run(async move {
                            settle(flags).await;
                            handle.await
                        })
                        .expect(&at);
                    ran(&mut tasks);
                    out
                };
                let t = &tasks[kept[i % kept.len()]];
                match (t.kind, out) {
                    (Kind::Ready(v), Ok(got)) => assert_eq!(got, v, "{at}"),
                    (Kind::Watcher(v), Ok(got)) => {
                        assert!(!aborted && model == State::Closed, "{at}");
                        assert_eq!(got, v, "{at}");
                    }
                    (Kind::Panicker, Err(e)) if e.is_panic() => {
                        assert!(!aborted && model == State::Closed, "{at}: {e}")
                    }
                    (Kind::Pending | Kind::Watcher(_) | Kind::Panicker, Err(e)) => assert!(
                        e.is_cancelled() && (aborted || model == State::Closed),
                        "{at}: {e}"
                    ),
                    (kind, out) => panic!("{at}: a {kind:?} task gave {out:?}"),
                }
            }
            Op::Close => {
                let report = rt.close().expect(&at);
                match model {
                    State::Created | State::Closed => {
                        assert_eq!(report, runner_core::CloseReport::default(), "{at}")
                    }
                    State::Initialized => {
                        model = State::Closed;
                        let alive = || tasks.iter().filter(|t| !t.ended);
                        let count = |k: fn(&Task) -> bool| alive().filter(|t| k(t)).count();
                        let finished =
                            count(|t| !t.abort_pending && matches!(t.kind, Kind::Watcher(_)));
                        let panicked = count(|t| !t.abort_pending && t.kind == Kind::Panicker);
                        let cancelled = count(|t| t.abort_pending || t.kind == Kind::Pending);
                        assert_eq!(
                            (report.finished, report.cancelled, report.panicked),
                            (finished, cancelled, panicked),
                            "{at}: the report (finished, cancelled, panicked) is {report}; \
                             the model expects ({finished}, {cancelled}, {panicked})"
                        );
                        assert_eq!(report.blocking_left_behind, 0, "{at}");
                        assert!(
                            tasks.iter().all(|t| t.dropped.load(Ordering::SeqCst)),
                            "{at}: every task's future was dropped by close"
                        );
                        assert!(
                            tasks
                                .iter()
                                .all(|t| t.handle.as_ref().is_none_or(|h| h.is_finished())),
                            "{at}"
                        );
                        for t in &mut tasks {
                            t.ended = true;
                            t.abort_pending = false;
                        }
                    }
                }
            }
            Op::NestedRun => {
                let inner = kit.clone();
                let flags = abort_flags(&tasks);
                let r = rt.run(async move {
                    settle(flags).await;
                    matches!(inner.runner().run(async { 1 }), Err(RunError::NestedRun))
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert!(r.unwrap(), "{at}");
                    model = State::Initialized;
                    ran(&mut tasks);
                }
            }
        }
        assert_eq!(rt.state(), model, "{at}: state");
    }
    drop(rt);
    assert!(
        tasks.iter().all(|t| t.dropped.load(Ordering::SeqCst)),
        "{name}: dropping the runner drops every task's future"
    );
}
