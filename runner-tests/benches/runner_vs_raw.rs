//! The facade against the raw backend, side by side in one process: for each operation a group
//! holding `raw/<backend>` and `runner/<backend>`.
//!
//! ```text
//! cargo bench --bench runner_vs_raw --all-features
//! ```
//!
//! `scripts/bench.py` runs this three times with CPython's numbers beside it and writes
//! `docs/PERFORMANCE.md` and `target/bench-summary.json`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use runner::glommio::GlommioLoop;
use runner::smol::SmolLoop;
use runner::tokio::TokioLoop;
use runner::{ContextVar, EventLoop, Runner};
use support::{config, glommio_raw, glommio_spawn_join, Factory, YieldN};

mod support;

const TASKS: usize = 10_000;

/// Never completes; keeps its waker, as a task parked on I/O would.
struct Parked(Option<std::task::Waker>);

impl Future for Parked {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0 = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn tokio_current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tokio_multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The runner's row for one backend: a runner on `factory`'s loop, built once.
fn runner_on<L: EventLoop>(factory: impl Factory<L>) -> Runner<L> {
    let mut rt = Runner::builder()
        .loop_factory(factory)
        .interrupt(runner::Interrupt::Auto)
        .build();
    rt.get_loop().unwrap();
    rt
}

fn tokio_multi_loop() -> std::io::Result<TokioLoop> {
    TokioLoop::multi_thread(2)
}

/// Benches `body` on a runner of every backend.
macro_rules! runner_rows {
    ($g:expr, |$rt:ident| $body:expr) => {{
        let mut $rt = runner_on(TokioLoop::current_thread);
        $g.bench_function("runner/tokio_current", |b| b.iter(|| $body));
        drop($rt);
        let mut $rt = runner_on(tokio_multi_loop);
        $g.bench_function("runner/tokio_multi", |b| b.iter(|| $body));
        drop($rt);
        let mut $rt = runner_on(SmolLoop::local);
        $g.bench_function("runner/smol_local", |b| b.iter(|| $body));
        drop($rt);
        let mut $rt = runner_on(GlommioLoop::new);
        $g.bench_function("runner/glommio", |b| b.iter(|| $body));
        drop($rt);
    }};
}

fn run_ready(c: &mut Criterion) {
    let mut g = c.benchmark_group("run_ready");
    let rt = tokio_current();
    g.bench_function("raw/tokio_current", |b| b.iter(|| rt.block_on(async { 1 })));
    let rt = tokio_multi();
    g.bench_function("raw/tokio_multi", |b| b.iter(|| rt.block_on(async { 1 })));
    let ex = async_executor::Executor::new();
    g.bench_function("raw/smol_local", |b| {
        b.iter(|| async_io::block_on(ex.run(async { 1 })))
    });
    let ex = glommio_raw();
    g.bench_function("raw/glommio", |b| b.iter(|| ex.run(async { 1 })));
    drop(ex);
    runner_rows!(g, |rt| rt.run(async { 1 }).unwrap());
    g.finish();
}

fn run_yield10(c: &mut Criterion) {
    let mut g = c.benchmark_group("run_yield10");
    let rt = tokio_current();
    g.bench_function("raw/tokio_current", |b| b.iter(|| rt.block_on(YieldN(10))));
    let rt = tokio_multi();
    g.bench_function("raw/tokio_multi", |b| b.iter(|| rt.block_on(YieldN(10))));
    let ex = async_executor::Executor::new();
    g.bench_function("raw/smol_local", |b| {
        b.iter(|| async_io::block_on(ex.run(YieldN(10))))
    });
    let ex = glommio_raw();
    g.bench_function("raw/glommio", |b| b.iter(|| ex.run(YieldN(10))));
    drop(ex);
    runner_rows!(g, |rt| rt.run(YieldN(10)).unwrap());
    g.finish();
}

fn spawn_join_10k(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join_10k");
    g.sample_size(20);
    let rt = tokio_current();
    let raw_tokio = || async {
        let hs: Vec<_> = (0..TASKS).map(|i| tokio::spawn(async move { i })).collect();
        let mut n = 0;
        for h in hs {
            n += h.await.unwrap();
        }
        n
    };
    g.bench_function("raw/tokio_current", |b| b.iter(|| rt.block_on(raw_tokio())));
    let rt = tokio_multi();
    g.bench_function("raw/tokio_multi", |b| b.iter(|| rt.block_on(raw_tokio())));
    let ex = Arc::new(async_executor::Executor::new());
    g.bench_function("raw/smol_local", |b| {
        b.iter(|| {
            async_io::block_on(ex.run(async {
                let hs: Vec<_> = (0..TASKS).map(|i| ex.spawn(async move { i })).collect();
                let mut n = 0;
                for h in hs {
                    n += h.await;
                }
                n
            }))
        })
    });
    let gex = glommio_raw();
    g.bench_function("raw/glommio", |b| {
        b.iter(|| gex.run(glommio_spawn_join::<false>(TASKS)))
    });
    // glommio's `spawn_local` polls the new task inline before it returns; the runner never
    // polls a task inside its spawn. This row queues each task instead (`spawn_local_into` the
    // current queue), as the runner does: what that order costs glommio itself (bench.py shows
    // it for information, not as a target).
    g.bench_function("lazy/glommio", |b| {
        b.iter(|| gex.run(glommio_spawn_join::<true>(TASKS)))
    });
    drop(gex);
    runner_rows!(g, |rt| rt
        .run(async {
            let hs: Vec<_> = (0..TASKS)
                .map(|i| runner::spawn(async move { i }))
                .collect();
            let mut n = 0;
            for h in hs {
                n += h.await.unwrap();
            }
            n
        })
        .unwrap());
    g.finish();
}

fn create_close(c: &mut Criterion) {
    let mut g = c.benchmark_group("create_close");
    g.sample_size(20);
    g.bench_function("raw/tokio_current", |b| {
        b.iter(|| tokio_current().block_on(async { 1 }))
    });
    g.bench_function("raw/tokio_multi", |b| {
        b.iter(|| tokio_multi().block_on(async { 1 }))
    });
    g.bench_function("raw/smol_local", |b| {
        b.iter(|| async_io::block_on(async_executor::Executor::new().run(async { 1 })))
    });
    // A raw glommio executor per iteration leaks an eventfd each time (glommio#448), which would
    // exhaust descriptors over a benchmark; the raw row therefore reuses one executor, as the
    // runner's glommio backend does.
    let gex = glommio_raw();
    g.bench_function("raw/glommio", |b| b.iter(|| gex.run(async { 1 })));
    drop(gex);
    fn cycle<L: EventLoop>(factory: impl Factory<L>) -> i32 {
        let mut rt = Runner::builder().loop_factory(factory).build();
        let v = rt.run(async { 1 }).unwrap();
        rt.close().unwrap();
        v
    }
    g.bench_function("runner/tokio_current", |b| {
        b.iter(|| cycle(TokioLoop::current_thread))
    });
    g.bench_function("runner/tokio_multi", |b| b.iter(|| cycle(tokio_multi_loop)));
    g.bench_function("runner/smol_local", |b| b.iter(|| cycle(SmolLoop::local)));
    g.bench_function("runner/glommio", |b| b.iter(|| cycle(GlommioLoop::new)));
    g.finish();
}

fn cancel_10k_at_close(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel_10k_at_close");
    g.sample_size(10);
    let spawn_parked_tokio = || async {
        for _ in 0..TASKS {
            tokio::spawn(Parked(None));
        }
        tokio::task::yield_now().await;
    };
    g.bench_function("raw/tokio_current", |b| {
        b.iter_batched(
            tokio_current,
            |rt| {
                rt.block_on(spawn_parked_tokio());
                drop(rt)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("raw/tokio_multi", |b| {
        b.iter_batched(
            tokio_multi,
            |rt| {
                rt.block_on(spawn_parked_tokio());
                drop(rt)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("raw/smol_local", |b| {
        b.iter_batched(
            async_executor::Executor::new,
            |ex| {
                async_io::block_on(ex.run(async {
                    for _ in 0..TASKS {
                        ex.spawn(Parked(None)).detach();
                    }
                    futures_lite::future::yield_now().await;
                }));
                drop(ex)
            },
            BatchSize::PerIteration,
        )
    });
    // glommio's executor drops none of its tasks when it goes: the raw row cancels through the
    // handles, on a reused executor.
    let gex = glommio_raw();
    g.bench_function("raw/glommio", |b| {
        b.iter(|| {
            gex.run(async {
                let hs: Vec<_> = (0..TASKS)
                    .map(|_| glommio::spawn_local(Parked(None)))
                    .collect();
                glommio::yield_if_needed().await;
                for h in hs {
                    h.cancel().await;
                }
            })
        })
    });
    drop(gex);
    fn cycle<L: EventLoop>(mut rt: Runner<L>) -> usize {
        rt.run(async {
            for _ in 0..TASKS {
                runner::spawn(Parked(None));
            }
            runner::yield_now().await;
        })
        .unwrap();
        rt.close().unwrap().cancelled
    }
    fn fresh<L: EventLoop>(factory: impl Factory<L>) -> impl FnMut() -> Runner<L> {
        move || runner_on(factory)
    }
    g.bench_function("runner/tokio_current", |b| {
        b.iter_batched(
            fresh(TokioLoop::current_thread),
            cycle,
            BatchSize::PerIteration,
        )
    });
    g.bench_function("runner/tokio_multi", |b| {
        b.iter_batched(fresh(tokio_multi_loop), cycle, BatchSize::PerIteration)
    });
    g.bench_function("runner/smol_local", |b| {
        b.iter_batched(fresh(SmolLoop::local), cycle, BatchSize::PerIteration)
    });
    g.bench_function("runner/glommio", |b| {
        b.iter_batched(fresh(GlommioLoop::new), cycle, BatchSize::PerIteration)
    });
    g.finish();
}

static VAR: ContextVar<u64> = ContextVar::new("bench");

thread_local! {
    static RAW: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn contextvars(c: &mut Criterion) {
    let mut g = c.benchmark_group("contextvar_get");
    g.bench_function("raw/thread_local", |b| {
        b.iter(|| RAW.with(|r| std::hint::black_box(r.get())))
    });
    let _t = VAR.set(5);
    g.bench_function("runner/any", |b| b.iter(|| std::hint::black_box(VAR.get())));
    g.finish();
    let mut g = c.benchmark_group("contextvar_set");
    g.bench_function("raw/thread_local", |b| {
        b.iter(|| RAW.with(|r| r.set(std::hint::black_box(9))))
    });
    g.bench_function("runner/any", |b| {
        b.iter(|| drop(VAR.set(std::hint::black_box(9))))
    });
    g.finish();
}

/// The per-poll cost of the task wrapper (context, scope, panic catching, abort check): a task
/// that yields 100 times, spawned through the runner and through tokio directly.
fn poll_wrapper(c: &mut Criterion) {
    let mut g = c.benchmark_group("task_yield100");
    let rt = tokio_current();
    g.bench_function("raw/tokio_current", |b| {
        b.iter(|| rt.block_on(async { tokio::spawn(YieldN(100)).await.unwrap() }))
    });
    let mut r = runner_on(TokioLoop::current_thread);
    g.bench_function("runner/tokio_current", |b| {
        b.iter(|| {
            r.run(async { runner::spawn(YieldN(100)).await.unwrap() })
                .unwrap()
        })
    });
    g.finish();
}

/// 1,000 zero-length sleeps in a row, on the loop's own timer.
fn sleep_1k(c: &mut Criterion) {
    const SLEEPS: usize = 1_000;
    let mut g = c.benchmark_group("sleep_1k");
    // A loop whose timer rounds a zero-length sleep up to its tick (1 ms for tokio) takes a
    // second per iteration: ten samples.
    g.sample_size(10);
    let rt = tokio_current();
    g.bench_function("raw/tokio_current", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..SLEEPS {
                    tokio::time::sleep(Duration::ZERO).await;
                }
            })
        })
    });
    let rt = tokio_multi();
    g.bench_function("raw/tokio_multi", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..SLEEPS {
                    tokio::time::sleep(Duration::ZERO).await;
                }
            })
        })
    });
    g.bench_function("raw/smol_local", |b| {
        b.iter(|| {
            async_io::block_on(async {
                for _ in 0..SLEEPS {
                    async_io::Timer::after(Duration::ZERO).await;
                }
            })
        })
    });
    let gex = glommio_raw();
    g.bench_function("raw/glommio", |b| {
        b.iter(|| {
            gex.run(async {
                for _ in 0..SLEEPS {
                    glommio::timer::sleep(Duration::ZERO).await;
                }
            })
        })
    });
    drop(gex);
    runner_rows!(g, |rt| rt
        .run(async {
            for _ in 0..SLEEPS {
                runner::time::sleep(Duration::ZERO).await;
            }
        })
        .unwrap());
    g.finish();
}

/// Two plain threads each spawn 10,000 tasks onto a multi-thread loop through its handle; the
/// tasks are then joined.
fn spawn_2threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_2threads");
    g.sample_size(10);
    let rt = tokio_multi();
    g.bench_function("raw/tokio_multi", |b| {
        b.iter(|| {
            let joins: Vec<_> = (0..2)
                .map(|_| {
                    let h = rt.handle().clone();
                    std::thread::spawn(move || {
                        (0..TASKS)
                            .map(|i| h.spawn(async move { i }))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let hs: Vec<_> = joins.into_iter().flat_map(|j| j.join().unwrap()).collect();
            rt.block_on(async {
                let mut n = 0;
                for h in hs {
                    n += h.await.unwrap();
                }
                n
            })
        })
    });
    let mut r = runner_on(tokio_multi_loop);
    let handle = r.handle().unwrap();
    g.bench_function("runner/tokio_multi", |b| {
        b.iter(|| {
            let joins: Vec<_> = (0..2)
                .map(|_| {
                    let h = handle.clone();
                    std::thread::spawn(move || {
                        (0..TASKS)
                            .map(|i| h.spawn(async move { i }).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let hs: Vec<_> = joins.into_iter().flat_map(|j| j.join().unwrap()).collect();
            r.run(async {
                let mut n = 0;
                for h in hs {
                    n += h.await.unwrap();
                }
                n
            })
            .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = run_ready, run_yield10, spawn_join_10k, create_close, cancel_10k_at_close,
        contextvars, poll_wrapper, sleep_1k, spawn_2threads
}
criterion_main!(benches);
