//! One operation, repeated, for `valgrind --tool=callgrind`: instruction counts per operation,
//! runner against the raw backend, that a noisy machine does not disturb.
//!
//! `scripts/bench.py` builds this binary (`cargo bench --all-features --bench callgrind_ops
//! --no-run`) and runs it under callgrind twice per row, with `N` and `2N` iterations:
//!
//! ```text
//! callgrind_ops <op> <raw|runner> <backend> <iterations>
//! ```
//!
//! The difference of the two totals divided by `N` is the cost of one iteration, without the
//! process start, the loop's creation and everything else done once. Only the current-thread
//! flavours are measured: on a multi-thread loop the workers' spinning and parking depend on the
//! scheduling, so their counts are not repeatable (`tokio_multi` is accepted, for profiling by
//! hand, but not listed). Run without arguments (as `cargo bench` does),
//! it lists the operations and exits.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;

use runner::smol::SmolLoop;
use runner::tokio::TokioLoop;
use runner::{EventLoop, Runner};
use support::{glommio_raw, Factory, YieldN};

mod support;

/// The operations, each with what one iteration does.
const OPS: [(&str, &str); 7] = [
    ("run_ready", "one `run` of a ready future"),
    ("run_yield10", "one `run` of a future that yields 10 times"),
    (
        "spawn_join_100",
        "one `run` that spawns 100 tasks and joins them",
    ),
    (
        "spawn_join_10k",
        "one `run` that spawns 10,000 tasks and joins them (criterion's row, for profiling)",
    ),
    (
        "task_yield100",
        "one `run` that spawns a task yielding 100 times and joins it",
    ),
    (
        "create_close",
        "a loop made, one `run` of a ready future, closed",
    ),
    (
        "cancel_100_at_close",
        "a loop made, 100 pending tasks spawned, closed",
    ),
];

const BACKENDS: [&str; 3] = ["tokio_current", "smol_local", "glommio"];

/// A raw backend: what one iteration of each operation is without the runner.
trait Raw {
    fn make() -> Self;
    fn block_on<F: Future>(&self, fut: F) -> F::Output;
    /// Spawns onto the loop from inside `block_on`; the output is joined by the returned future.
    /// That future is boxed, which costs raw a `malloc` and a `free` per task that the runner's
    /// row does not pay: only `task_yield100` uses it (one task of 100 polls per iteration);
    /// the spawn_join rows join the backend's handles as they are ([`Raw::spawn_join`]).
    fn spawn<F: Future<Output = u32> + Send + 'static>(
        &self,
        fut: F,
    ) -> Pin<Box<dyn Future<Output = u32>>>;
    /// Spawns a task that never completes, left to the loop's shutdown.
    fn spawn_pending(&self);
    /// Spawns `n` tasks and joins them inside `block_on`, each join handle as the backend gives
    /// it (no box), as criterion's `spawn_join_10k` row does.
    fn spawn_join(&self, n: u32) -> u32;
}

/// tokio's runtime: current-thread, or with `MULTI` the multi-thread one with two workers, as
/// `TokioLoop::multi_thread(2)`. The multi-thread one is not in [`BACKENDS`]: its workers'
/// parking makes the counts vary from run to run (by some hundreds of instructions per
/// iteration), so it is for profiling by hand, not for the tables.
struct RawTokio<const MULTI: bool>(tokio::runtime::Runtime);

impl<const MULTI: bool> Raw for RawTokio<MULTI> {
    fn make() -> Self {
        let mut builder = if MULTI {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        RawTokio(builder.enable_all().build().unwrap())
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
    fn spawn<F: Future<Output = u32> + Send + 'static>(
        &self,
        fut: F,
    ) -> Pin<Box<dyn Future<Output = u32>>> {
        let h = tokio::spawn(fut);
        Box::pin(async move { h.await.unwrap() })
    }
    fn spawn_pending(&self) {
        tokio::spawn(std::future::pending::<()>());
    }
    fn spawn_join(&self, n: u32) -> u32 {
        self.0.block_on(async {
            let hs: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
            let mut s = 0;
            for h in hs {
                s += h.await.unwrap();
            }
            s
        })
    }
}

struct RawSmol(std::sync::Arc<async_executor::Executor<'static>>);

impl Raw for RawSmol {
    fn make() -> Self {
        RawSmol(std::sync::Arc::new(async_executor::Executor::new()))
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        async_io::block_on(self.0.run(fut))
    }
    fn spawn<F: Future<Output = u32> + Send + 'static>(
        &self,
        fut: F,
    ) -> Pin<Box<dyn Future<Output = u32>>> {
        Box::pin(self.0.spawn(fut))
    }
    fn spawn_pending(&self) {
        self.0.spawn(std::future::pending::<()>()).detach();
    }
    fn spawn_join(&self, n: u32) -> u32 {
        async_io::block_on(self.0.run(async {
            let hs: Vec<_> = (0..n).map(|i| self.0.spawn(async move { i })).collect();
            let mut s = 0;
            for h in hs {
                s += h.await;
            }
            s
        }))
    }
}

struct RawGlommio(glommio::LocalExecutor);

impl Raw for RawGlommio {
    fn make() -> Self {
        RawGlommio(glommio_raw())
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.run(fut)
    }
    fn spawn<F: Future<Output = u32> + Send + 'static>(
        &self,
        fut: F,
    ) -> Pin<Box<dyn Future<Output = u32>>> {
        let h = glommio::spawn_local(fut);
        Box::pin(h)
    }
    fn spawn_pending(&self) {
        glommio::spawn_local(std::future::pending::<()>()).detach();
    }
    fn spawn_join(&self, n: u32) -> u32 {
        self.0.run(async {
            let hs: Vec<_> = (0..n)
                .map(|i| glommio::spawn_local(async move { i }))
                .collect();
            let mut s = 0;
            for h in hs {
                s += h.await;
            }
            s
        })
    }
}

/// How many tasks a `spawn_join_*` op spawns.
fn tasks(op: &str) -> u32 {
    if op == "spawn_join_10k" {
        10_000
    } else {
        100
    }
}

fn raw<R: Raw>(op: &str, n: u32) {
    match op {
        "create_close" => {
            // glommio: a fresh executor per iteration leaks an eventfd (glommio#448), so the raw
            // row reuses one executor, as the runner's glommio backend does.
            if std::any::type_name::<R>().contains("Glommio") {
                let r = R::make();
                for _ in 0..n {
                    black_box(r.block_on(async { 1 }));
                }
            } else {
                for _ in 0..n {
                    let r = R::make();
                    black_box(r.block_on(async { 1 }));
                }
            }
        }
        "cancel_100_at_close" => {
            for _ in 0..n {
                let r = R::make();
                r.block_on(async {
                    for _ in 0..100 {
                        r.spawn_pending();
                    }
                });
            }
        }
        _ => {
            let r = R::make();
            for _ in 0..n {
                black_box(match op {
                    "run_ready" => r.block_on(async { 1 }),
                    "run_yield10" => r.block_on(YieldN(10)),
                    // The backend's own handles, unboxed, as criterion's row joins them (a box
                    // per handle once cost raw a `malloc` and `free` per task, about half of
                    // glommio's own task, and flattered the runner).
                    "spawn_join_100" | "spawn_join_10k" => r.spawn_join(tasks(op)),
                    "task_yield100" => r.block_on(async { r.spawn(YieldN(100)).await }),
                    _ => unreachable!(),
                });
            }
        }
    }
}

fn runner_on<L: EventLoop>(factory: impl Factory<L>) -> Runner<L> {
    // The default settings, what an application gets (`Interrupt::Auto` on the main thread).
    Runner::builder().loop_factory(factory).build()
}

fn ours<L: EventLoop>(op: &str, n: u32, factory: impl Factory<L>) {
    match op {
        "create_close" => {
            for _ in 0..n {
                let mut rt = runner_on(factory);
                black_box(rt.run(async { 1 }).unwrap());
                rt.close().unwrap();
            }
        }
        "cancel_100_at_close" => {
            for _ in 0..n {
                let mut rt = runner_on(factory);
                rt.run(async {
                    for _ in 0..100 {
                        drop(runner::spawn(std::future::pending::<()>()));
                    }
                })
                .unwrap();
                black_box(rt.close().unwrap());
            }
        }
        _ => {
            let mut rt = runner_on(factory);
            for _ in 0..n {
                black_box(match op {
                    "run_ready" => rt.run(async { 1 }).unwrap(),
                    "run_yield10" => rt.run(YieldN(10)).unwrap(),
                    "spawn_join_100" | "spawn_join_10k" => rt
                        .run(async {
                            let hs: Vec<_> = (0..tasks(op))
                                .map(|i| runner::spawn(async move { i }))
                                .collect();
                            let mut s = 0;
                            for h in hs {
                                s += h.await.unwrap();
                            }
                            s
                        })
                        .unwrap(),
                    "task_yield100" => rt
                        .run(async { runner::spawn(YieldN(100)).await.unwrap() })
                        .unwrap(),
                    _ => unreachable!(),
                });
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [op, kind, backend, n] = args.as_slice() else {
        eprintln!("usage: callgrind_ops <op> <raw|runner> <backend> <iterations>");
        for (op, what) in OPS {
            println!("OP {op}: {what}");
        }
        println!("BACKENDS {}", BACKENDS.join(" "));
        return;
    };
    let n: u32 = n.parse().expect("iterations: a number");
    assert!(OPS.iter().any(|(o, _)| o == op), "unknown op {op}");
    match (kind.as_str(), backend.as_str()) {
        ("raw", "tokio_current") => raw::<RawTokio<false>>(op, n),
        ("raw", "tokio_multi") => raw::<RawTokio<true>>(op, n),
        ("raw", "smol_local") => raw::<RawSmol>(op, n),
        ("raw", "glommio") => raw::<RawGlommio>(op, n),
        ("runner", "tokio_current") => ours(op, n, TokioLoop::current_thread),
        ("runner", "tokio_multi") => ours(op, n, || TokioLoop::multi_thread(2)),
        ("runner", "smol_local") => ours(op, n, SmolLoop::local),
        ("runner", "glommio") => ours(op, n, runner::glommio::GlommioLoop::new),
        _ => panic!("unknown kind or backend: {kind} {backend}"),
    }
}
