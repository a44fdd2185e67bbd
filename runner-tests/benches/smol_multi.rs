//! The smol multi-thread rows of docs/PERFORMANCE.md: the same operations as
//! `benches/runner_vs_raw.rs` (same criterion group names, so `scripts/bench.py` reads them as
//! rows of the same tables), on `SmolLoop::multi_thread(2)` against a raw `async_executor::Executor`
//! run by two worker threads and the caller, the way `SmolLoop::multi_thread` runs it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use async_executor::Executor;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use runner::smol::SmolLoop;
use runner::Runner;
use support::{config, YieldN};

mod support;

const TASKS: usize = 10_000;
const ROW: &str = "smol_multi";

struct Parked;

impl Future for Parked {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// A raw multi-thread smol executor: two workers run it until it is dropped.
struct RawMulti {
    ex: Arc<Executor<'static>>,
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl RawMulti {
    fn new() -> Self {
        let ex = Arc::new(Executor::new());
        let (tx, rx) = async_channel::bounded::<()>(1);
        let threads = (0..2)
            .map(|_| {
                let (ex, rx) = (ex.clone(), rx.clone());
                std::thread::spawn(move || {
                    let _ = async_io::block_on(ex.run(rx.recv()));
                })
            })
            .collect();
        RawMulti {
            ex,
            stop: Some(tx),
            threads,
        }
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        async_io::block_on(self.ex.run(fut))
    }
}

impl Drop for RawMulti {
    fn drop(&mut self) {
        self.stop = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn runner() -> Runner<SmolLoop> {
    let mut rt = Runner::builder()
        .loop_factory(|| SmolLoop::multi_thread(2))
        .interrupt(runner::Interrupt::Auto)
        .build();
    rt.get_loop().unwrap();
    rt
}

fn run_ready(c: &mut Criterion) {
    let mut g = c.benchmark_group("run_ready");
    let raw = RawMulti::new();
    g.bench_function(format!("raw/{ROW}"), |b| {
        b.iter(|| raw.block_on(async { 1 }))
    });
    drop(raw);
    let mut rt = runner();
    g.bench_function(format!("runner/{ROW}"), |b| {
        b.iter(|| rt.run(async { 1 }).unwrap())
    });
    g.finish();
}

fn run_yield10(c: &mut Criterion) {
    let mut g = c.benchmark_group("run_yield10");
    let raw = RawMulti::new();
    g.bench_function(format!("raw/{ROW}"), |b| {
        b.iter(|| raw.block_on(YieldN(10)))
    });
    drop(raw);
    let mut rt = runner();
    g.bench_function(format!("runner/{ROW}"), |b| {
        b.iter(|| rt.run(YieldN(10)).unwrap())
    });
    g.finish();
}

fn spawn_join_10k(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join_10k");
    g.sample_size(20);
    let raw = RawMulti::new();
    g.bench_function(format!("raw/{ROW}"), |b| {
        b.iter(|| {
            raw.block_on(async {
                let hs: Vec<_> = (0..TASKS).map(|i| raw.ex.spawn(async move { i })).collect();
                let mut n = 0;
                for h in hs {
                    n += h.await;
                }
                n
            })
        })
    });
    drop(raw);
    let mut rt = runner();
    g.bench_function(format!("runner/{ROW}"), |b| {
        b.iter(|| {
            rt.run(async {
                let hs: Vec<_> = (0..TASKS)
                    .map(|i| runner::spawn(async move { i }))
                    .collect();
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

fn create_close(c: &mut Criterion) {
    let mut g = c.benchmark_group("create_close");
    g.sample_size(20);
    g.bench_function(format!("raw/{ROW}"), |b| {
        b.iter(|| RawMulti::new().block_on(async { 1 }))
    });
    g.bench_function(format!("runner/{ROW}"), |b| {
        b.iter(|| {
            let mut rt = Runner::builder()
                .loop_factory(|| SmolLoop::multi_thread(2))
                .build();
            let v = rt.run(async { 1 }).unwrap();
            rt.close().unwrap();
            v
        })
    });
    g.finish();
}

fn cancel_10k_at_close(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel_10k_at_close");
    g.sample_size(10);
    g.bench_function(format!("raw/{ROW}"), |b| {
        b.iter_batched(
            RawMulti::new,
            |raw| {
                raw.block_on(async {
                    for _ in 0..TASKS {
                        raw.ex.spawn(Parked).detach();
                    }
                    futures_lite::future::yield_now().await;
                });
                // Stops and joins the workers, then drops the executor and with it every task.
                drop(raw)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(format!("runner/{ROW}"), |b| {
        b.iter_batched(
            runner,
            |mut rt| {
                rt.run(async {
                    for _ in 0..TASKS {
                        runner::spawn(Parked);
                    }
                    runner::yield_now().await;
                })
                .unwrap();
                rt.close().unwrap().cancelled
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = run_ready, run_yield10, spawn_join_10k, create_close, cancel_10k_at_close
}
criterion_main!(benches);
