//! Where the floor of `spawn_join_10k` on glommio is, for an engine that keeps the runner's
//! order (a spawned task first runs after its spawner waits, as in asyncio and tokio) and not
//! glommio's (`spawn_local` polls the new task inline, before it returns). Not one of
//! `scripts/bench.py`'s tables: a probe, run by hand, whose figures docs/PERFORMANCE.md quotes.
//!
//! ```text
//! cargo bench -p runner-tests --features glommio --bench glommio_order
//! ```
//!
//! One group, `glommio_order`, all on one reused glommio executor, each row 10,000 tasks
//! spawned, each returning its index, then joined in order:
//! - `raw/inline`: `glommio::spawn_local`, which polls each task inside the spawn;
//! - `raw/queued`: `glommio::spawn_local_into` the current task queue, which queues it;
//! - `lean/bare`: async-task cells on a thread-local queue that the main future drains after
//!   each pending poll, as the runner's own queue is driven: the leanest engine with the
//!   runner's order (one allocation per task, a state word, an 8-byte handle);
//! - `lean/registry`, `lean/count`, `lean/wrapper`: `lean/bare` plus one piece of what the
//!   runner keeps per task: a slab entry from spawn to end (what close cancels and counts), a
//!   count of the runner held by the task (`Arc` clone and drop), or a wrapper around each poll
//!   (the task's context installed in a thread-local and restored, `catch_unwind`, an output
//!   that can carry a panic);
//! - `lean/all`: the three together;
//! - `runner`: `runner::spawn` on a `GlommioLoop` runner.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_task::Runnable;
use criterion::{criterion_group, criterion_main, Criterion};
use runner::glommio::GlommioLoop;
use runner::Runner;
use support::{config, glommio_raw, glommio_spawn_join};

mod support;

const TASKS: usize = 10_000;

thread_local! {
    /// The lean engine's queue: tasks scheduled and not yet run.
    static QUEUE: RefCell<VecDeque<Runnable>> = const { RefCell::new(VecDeque::new()) };
    /// The lean engine's registry: one entry per task from its spawn to its end.
    static REGISTRY: RefCell<slab::Slab<usize>> = const { RefCell::new(slab::Slab::new()) };
    /// The running task's key, as the runner installs a task's context around its poll.
    static CURRENT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Queues a lean task for its first poll.
fn lean_schedule<T>(fut: impl Future<Output = T> + Send + 'static) -> async_task::Task<T>
where
    T: Send + 'static,
{
    let (runnable, task) = async_task::spawn(fut, |r| QUEUE.with(|q| q.borrow_mut().push_back(r)));
    runnable.schedule();
    task
}

/// A lean task's output: `Err` carries a panic, as a `JoinError` does (one pointer).
type Out = Result<usize, Box<str>>;

/// Spawns `fut` as a lean task that keeps a registry entry (`ENTRY`), a count of the runner
/// (`COUNT`) and a wrapper around each poll (`WRAP`), as asked.
fn lean_spawn<const ENTRY: bool, const COUNT: bool, const WRAP: bool>(
    fut: impl Future<Output = usize> + Send + 'static,
    runner: &Arc<u64>,
) -> async_task::Task<Out> {
    let key = if ENTRY {
        REGISTRY.with(|r| r.borrow_mut().insert(0))
    } else {
        usize::MAX
    };
    let count = COUNT.then(|| runner.clone());
    lean_schedule(async move {
        let mut fut = pin!(fut);
        let out = poll_fn(|cx| {
            if !WRAP {
                return fut.as_mut().poll(cx).map(Ok);
            }
            let outer = CURRENT.with(|c| c.replace(key));
            let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx)));
            CURRENT.with(|c| c.set(outer));
            match polled {
                Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                Ok(Poll::Pending) => Poll::Pending,
                Err(_) => Poll::Ready(Err("panicked".into())),
            }
        })
        .await;
        if ENTRY {
            REGISTRY.with(|r| r.borrow_mut().remove(key));
        }
        drop(count);
        out
    })
}

/// The main future of the lean rows: polls `body`, and after each pending poll runs what is
/// queued, until `body` is ready or nothing is queued.
async fn drive<F: Future>(body: F) -> F::Output {
    let mut body = pin!(body);
    poll_fn(|cx: &mut Context<'_>| loop {
        if let Poll::Ready(v) = body.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        let batch = QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()));
        if batch.is_empty() {
            return Poll::Pending;
        }
        for r in batch {
            r.run();
        }
    })
    .await
}

/// A lean task's output, as the joiner reads it.
trait Joined {
    fn value(self) -> usize;
}

impl Joined for usize {
    fn value(self) -> usize {
        self
    }
}

impl Joined for Out {
    fn value(self) -> usize {
        self.unwrap()
    }
}

/// A lean row: 10,000 tasks spawned by `spawn`, joined in order.
async fn lean_row<T, S>(spawn: S) -> usize
where
    S: Fn(usize, &Arc<u64>) -> async_task::Task<T>,
    T: Joined,
{
    drive(async move {
        let runner = Arc::new(0);
        let hs: Vec<_> = (0..TASKS).map(|i| spawn(i, &runner)).collect();
        let mut n = 0usize;
        for h in hs {
            n = n.wrapping_add(h.await.value());
        }
        n
    })
    .await
}

fn glommio_order(c: &mut Criterion) {
    let mut g = c.benchmark_group("glommio_order");
    g.sample_size(20);
    let gex = glommio_raw();
    g.bench_function("raw/inline", |b| {
        b.iter(|| gex.run(glommio_spawn_join::<false>(TASKS)))
    });
    g.bench_function("raw/queued", |b| {
        b.iter(|| gex.run(glommio_spawn_join::<true>(TASKS)))
    });
    macro_rules! lean {
        ($name:literal, $spawn:expr) => {
            g.bench_function($name, |b| b.iter(|| gex.run(lean_row($spawn))));
        };
    }
    lean!("lean/bare", |i, _| lean_schedule(async move { i }));
    lean!("lean/shell", |i, r| lean_spawn::<false, false, false>(
        async move { i },
        r
    ));
    lean!("lean/registry", |i, r| lean_spawn::<true, false, false>(
        async move { i },
        r
    ));
    lean!("lean/count", |i, r| lean_spawn::<false, true, false>(
        async move { i },
        r
    ));
    lean!("lean/wrapper", |i, r| lean_spawn::<false, false, true>(
        async move { i },
        r
    ));
    lean!("lean/all", |i, r| lean_spawn::<true, true, true>(
        async move { i },
        r
    ));
    drop(gex);
    let mut rt = Runner::builder()
        .loop_factory(GlommioLoop::new)
        .interrupt(runner::Interrupt::Auto)
        .build();
    g.bench_function("runner", |b| {
        b.iter(|| {
            rt.run(async {
                let hs: Vec<_> = (0..TASKS)
                    .map(|i| runner::spawn(async move { i }))
                    .collect();
                let mut n = 0usize;
                for h in hs {
                    n = n.wrapping_add(h.await.unwrap());
                }
                n
            })
            .unwrap()
        })
    });
    rt.close().unwrap();
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = glommio_order
}
criterion_main!(benches);
