//! A model-based test of the runner's state machine: random sequences of operations, checked
//! against a small reference model after every step. Runs on any loop; see
//! `runner-tests/tests/lifecycle_model.rs`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use runner_core::{EventLoop, JoinHandle, RunError, State};

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
    /// `handle`, then spawn a ready task through it.
    HandleSpawn(u8),
    /// Spawn, inside a run, a task that never completes and counts its drop.
    SpawnPending,
    /// Spawn, inside a run, a task that completes with the value.
    SpawnReady(u8),
    /// Abort the i-th kept handle (modulo their number).
    Abort(usize),
    /// Drop the i-th kept handle.
    DropHandle(usize),
    /// Await the i-th kept handle when that cannot hang (a ready task, an aborted task, or any
    /// task after close).
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
}

struct Kept {
    kind: Kind,
    aborted: bool,
    handle: JoinHandle<u8>,
}

/// A future that never completes and counts its drop.
struct Forever(Arc<AtomicUsize>);

impl Future for Forever {
    type Output = u8;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn is_closed<T>(r: &Result<T, RunError>) -> bool {
    matches!(r, Err(RunError::Closed))
}

/// Runs `ops` on a runner of `kit`, checking every step against the model. Panics with the step
/// and the loop's name on the first mismatch.
// Spawning returns the handle out of the run on purpose.
#[allow(clippy::async_yields_async)]
pub fn check_sequence<L: EventLoop>(kit: &Kit<L>, ops: &[Op]) {
    let name = kit.name();
    let mut rt = kit.builder().exception_handler(|_| {}).build();
    let mut model = State::Created;
    let mut kept: Vec<Kept> = Vec::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut pending_spawned = 0usize;

    for (step, op) in ops.iter().enumerate() {
        let at = format!("{name}: step {step} {op:?}");
        match op.clone() {
            Op::RunValue(v) => {
                let r = rt.run(async move {
                    runner_core::yield_now().await;
                    v
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert_eq!(r.unwrap(), v, "{at}");
                    model = State::Initialized;
                }
            }
            Op::RunPanic => {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    rt.run(async {
                        runner_core::yield_now().await;
                        panic!("model panic")
                    })
                }));
                if model == State::Closed {
                    assert!(is_closed(&r.expect(&at)), "{at}");
                } else {
                    assert!(r.is_err(), "{at}: the panic must reach the caller");
                    model = State::Initialized;
                }
            }
            Op::RunErr(v) => {
                let r = rt.run(async move { Err::<(), u8>(v) });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert_eq!(r.unwrap(), Err(v), "{at}");
                    model = State::Initialized;
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
                    let handle = h.spawn(async move { v }).expect(&at);
                    kept.push(Kept {
                        kind: Kind::Ready(v),
                        aborted: false,
                        handle,
                    });
                }
                Err(e) => assert!(
                    model == State::Closed && matches!(e, RunError::Closed),
                    "{at}"
                ),
            },
            Op::SpawnPending | Op::SpawnReady(_) => {
                let kind = match op {
                    Op::SpawnReady(v) => Kind::Ready(*v),
                    _ => Kind::Pending,
                };
                let d = drops.clone();
                let r = rt.run(async move {
                    match kind {
                        Kind::Ready(v) => runner_core::spawn(async move { v }),
                        Kind::Pending => runner_core::spawn(Forever(d)),
                    }
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    model = State::Initialized;
                    if kind == Kind::Pending {
                        pending_spawned += 1;
                    }
                    kept.push(Kept {
                        kind,
                        aborted: false,
                        handle: r.expect(&at),
                    });
                }
            }
            Op::Abort(i) => {
                if !kept.is_empty() {
                    let n = kept.len();
                    let k = &mut kept[i % n];
                    k.handle.abort();
                    k.aborted = true;
                }
            }
            Op::DropHandle(i) => {
                if !kept.is_empty() {
                    let n = kept.len();
                    drop(kept.remove(i % n));
                }
            }
            Op::Await(i) => {
                if kept.is_empty() {
                    continue;
                }
                let n = kept.len();
                let k = &kept[i % n];
                let safe = model == State::Closed || k.aborted || matches!(k.kind, Kind::Ready(_));
                if !safe {
                    continue;
                }
                let k = kept.remove(i % n);
                let out = if model == State::Closed {
                    futures_lite::future::block_on(k.handle)
                } else {
                    rt.run(k.handle).expect(&at)
                };
                match (k.kind, out) {
                    (Kind::Ready(v), Ok(got)) => assert_eq!(got, v, "{at}"),
                    // A ready task aborted (or cancelled by close) before it ran.
                    (_, Err(e)) => assert!(
                        e.is_cancelled() && (k.aborted || model == State::Closed),
                        "{at}: {e}"
                    ),
                    (Kind::Pending, Ok(_)) => panic!("{at}: a pending task completed"),
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
                        assert_eq!(
                            drops.load(Ordering::SeqCst),
                            pending_spawned,
                            "{at}: every pending task was dropped by close"
                        );
                        let live_pending = kept
                            .iter()
                            .filter(|k| k.kind == Kind::Pending && !k.aborted)
                            .count();
                        assert!(
                            report.cancelled >= live_pending,
                            "{at}: {report:?}, {live_pending} pending tasks were alive"
                        );
                        assert_eq!(report.panicked, 0, "{at}");
                        assert!(kept.iter().all(|k| k.handle.is_finished()), "{at}");
                    }
                }
            }
            Op::NestedRun => {
                let inner = kit.clone();
                let r = rt.run(async move {
                    matches!(inner.runner().run(async { 1 }), Err(RunError::NestedRun))
                });
                if model == State::Closed {
                    assert!(is_closed(&r), "{at}");
                } else {
                    assert!(r.unwrap(), "{at}");
                    model = State::Initialized;
                }
            }
        }
        assert_eq!(rt.state(), model, "{at}: state");
    }
    drop(rt);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        pending_spawned,
        "{name}: dropping the runner drops every pending task"
    );
}
