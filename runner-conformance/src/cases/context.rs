//! Context variables with Python's `contextvars` semantics (CONTRACT §3 "Context variables";
//! upstream N11).
//!
//! Every case runs its body inside a fresh [`Context`], so the test thread's own context is left
//! as it was, whichever thread the harness runs it on.

use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use runner_core::{Context, ContextError, ContextVar, EventLoop};

use crate::Kit;

static N11: ContextVar<i32> = ContextVar::with_default("n11", -1);
static SNAP: ContextVar<u32> = ContextVar::new("snapshot");
static VAL: ContextVar<u64> = ContextVar::new("val");
static OTHER: ContextVar<u64> = ContextVar::with_default("other", 100);

fn isolated<R>(f: impl FnOnce() -> R) -> R {
    Context::new().run(f)
}

/// N11 `test_run_keeps_context`: "runs share one context: -1, then 1, then 2". Every `run`
/// executes in the one runner context, so a value set in one run is seen by the next.
pub fn n11_run_keeps_context<L: EventLoop>(kit: &Kit<L>) {
    isolated(|| {
        async fn f(x: i32) -> i32 {
            let ret = N11.get().unwrap();
            N11.set(x);
            runner_core::yield_now().await;
            ret
        }
        let mut rt = kit.runner();
        assert_eq!(rt.run(f(1)).unwrap(), -1, "{}", kit.name());
        assert_eq!(rt.run(f(2)).unwrap(), 1, "{}", kit.name());
        assert_eq!(rt.run(async { N11.get() }).unwrap(), Some(2));
        // The runner's context is its own: the caller's was never touched.
        assert_eq!(N11.get(), Some(-1));
    })
}

/// "The runner snapshots the caller's context at lazy init": a value the caller set before the
/// first use is seen by every run; one set after it is not.
pub fn context_is_snapshotted_at_lazy_init<L: EventLoop>(kit: &Kit<L>) {
    isolated(|| {
        let mut rt = kit.runner();
        SNAP.set(1);
        // Building did not snapshot: the runner is still `Created`.
        SNAP.set(2);
        rt.get_loop().unwrap();
        SNAP.set(3);
        assert_eq!(rt.run(async { SNAP.get() }).unwrap(), Some(2));
        let seen_by_task = rt
            .run(async { runner_core::spawn(async { SNAP.get() }).await.unwrap() })
            .unwrap();
        assert_eq!(seen_by_task, Some(2), "{}", kit.name());
        rt.run(async { SNAP.set(4) }).unwrap();
        assert_eq!(SNAP.get(), Some(3), "a run's set leaked to the caller");
    })
}

/// "`run_with_context` uses the given context instead": the future sees the context's values,
/// its sets stay in it, and the runner's own context is untouched.
pub fn run_with_context_uses_the_given_context<L: EventLoop>(kit: &Kit<L>) {
    isolated(|| {
        let mut rt = kit.runner();
        rt.run(async { VAL.set(1) }).unwrap();
        let mut ctx = Context::new();
        ctx.run(|| VAL.set(10));
        let (seen, task_saw) = rt
            .run_with_context(&mut ctx, async {
                let seen = VAL.get();
                VAL.set(11);
                runner_core::yield_now().await;
                // A task spawned here copies the explicit context, not the runner's.
                let task_saw = runner_core::spawn(async { VAL.get() }).await.unwrap();
                (seen, task_saw)
            })
            .unwrap();
        assert_eq!(seen, Some(10), "{}", kit.name());
        assert_eq!(task_saw, Some(11));
        assert_eq!(ctx.run(|| VAL.get()), Some(11), "the set stays in ctx");
        assert_eq!(rt.run(async { VAL.get() }).unwrap(), Some(1));
        assert_eq!(VAL.get(), None);
    })
}

/// "A spawned task gets a copy of the spawner's context at spawn time: its own sets never leak
/// back": the task sees the spawner's values at spawn time, the spawner's later sets never reach
/// it, and its sets never reach the spawner. Through `spawn`, `task::Builder`, a task spawned by
/// a task, and `spawn_local` where the loop runs local tasks.
pub fn spawn_copies_context_without_leak_back<L: EventLoop>(kit: &Kit<L>) {
    let local = kit.capabilities().local_tasks;
    isolated(|| {
        let mut rt = kit.runner();
        let out = rt
            .run(async move {
                VAL.set(1);
                // Each task waits for the spawner's later set before it reads.
                let gate = Arc::new(Gate::default());
                let task = |g: Arc<Gate>| async move {
                    let before = VAL.get();
                    g.wait().await;
                    let after = VAL.get();
                    VAL.set(99);
                    OTHER.set(99);
                    runner_core::yield_now().await;
                    // A grandchild: copies the child's context, as it is when spawned.
                    let grandchild = runner_core::spawn(async { (VAL.get(), OTHER.get()) });
                    VAL.set(98);
                    let grandchild = grandchild.await.unwrap();
                    (before, after, grandchild, VAL.get())
                };
                let plain = runner_core::spawn(task(gate.clone()));
                let named = runner_core::task::Builder::new()
                    .name("named")
                    .spawn(task(gate.clone()));
                let local = local.then(|| runner_core::spawn_local(task(gate.clone())));
                VAL.set(2);
                gate.open();
                let mut results = vec![plain.await.unwrap(), named.await.unwrap()];
                if let Some(l) = local {
                    results.push(l.await.unwrap());
                }
                (results, VAL.get(), OTHER.get())
            })
            .unwrap();
        let (results, spawner_val, spawner_other) = out;
        for r in &results {
            assert_eq!(
                *r,
                (Some(1), Some(1), (Some(99), Some(99)), Some(98)),
                "{}: (at spawn, after the spawner's set, grandchild, own)",
                kit.name()
            );
        }
        assert_eq!(spawner_val, Some(2), "a task's set leaked back");
        assert_eq!(spawner_other, Some(100), "a task's set leaked back");
        assert_eq!(rt.run(async { VAL.get() }).unwrap(), Some(2));
    })
}

/// "This holds ... for `LoopHandle::spawn`": a task spawned through a handle from another thread
/// runs in a copy of that thread's current context, taken at spawn time.
pub fn handle_spawn_uses_the_calling_threads_context<L: EventLoop>(kit: &Kit<L>) {
    isolated(|| {
        let mut rt = kit.runner();
        rt.run(async { VAL.set(1) }).unwrap();
        let handle = rt.handle().unwrap();
        let task = thread::spawn(move || {
            // A fresh thread starts with an empty context.
            let empty = handle.spawn(async { VAL.get() }).unwrap();
            VAL.set(7);
            let seven = handle
                .spawn(async {
                    let v = VAL.get();
                    VAL.set(70);
                    v
                })
                .unwrap();
            VAL.set(8);
            (empty, seven)
        })
        .join()
        .unwrap();
        let (empty, seven) = task;
        let (empty, seven, runner_val) = rt
            .run(async move { (empty.await.unwrap(), seven.await.unwrap(), VAL.get()) })
            .unwrap();
        assert_eq!(empty, None, "{}", kit.name());
        assert_eq!(seven, Some(7), "{}", kit.name());
        assert_eq!(runner_val, Some(1), "the task's set leaked into the runner");
    })
}

/// "`spawn_blocking` closures run in a copy of the spawner's context": the closure sees the
/// spawner's values, its sets stay in its copy.
pub fn spawn_blocking_runs_in_a_copy_of_the_context<L: EventLoop>(kit: &Kit<L>) {
    isolated(|| {
        let mut rt = kit.runner();
        let (inside, after) = rt
            .run(async {
                VAL.set(5);
                let inside = runner_core::spawn_blocking(|| {
                    let v = VAL.get();
                    VAL.set(6);
                    (v, VAL.get())
                })
                .await
                .unwrap();
                (inside, VAL.get())
            })
            .unwrap();
        assert_eq!(inside, (Some(5), Some(6)), "{}", kit.name());
        assert_eq!(after, Some(5), "the blocking job's set leaked back");
    })
}

/// "This holds on every backend, multi-thread included": 1,000 concurrent tasks each set their
/// own value and read it back across 10 yields, and each also reads back the value its spawner
/// set just before spawning it: zero cross-talk. (That a task keeps its context when it moves to
/// another worker is `task_keeps_its_context_across_worker_threads`, which makes it move.)
pub fn thousand_tasks_keep_their_own_values<L: EventLoop>(kit: &Kit<L>) {
    const TASKS: u64 = 1_000;
    const YIELDS: usize = 10;
    isolated(|| {
        let mut rt = kit.runner();
        let (wrong, spawner_val) = rt
            .run(async {
                let mut handles = Vec::new();
                for i in 0..TASKS {
                    OTHER.set(i);
                    handles.push(runner_core::spawn(async move {
                        VAL.set(i);
                        let mut wrong = 0;
                        for _ in 0..YIELDS {
                            runner_core::yield_now().await;
                            wrong += usize::from(VAL.get() != Some(i));
                            wrong += usize::from(OTHER.get() != Some(i));
                        }
                        wrong
                    }));
                }
                let mut wrong = 0;
                for h in handles {
                    wrong += h.await.unwrap();
                }
                (wrong, (VAL.get(), OTHER.get()))
            })
            .unwrap();
        assert_eq!(
            wrong,
            0,
            "{}: reads that saw another task's value",
            kit.name()
        );
        assert_eq!(spawner_val, (None, Some(TASKS - 1)));
    })
}

/// "A task that moves between tokio's or smol's worker threads keeps its context" (issue 5), on
/// the multi-thread flavours. The task makes itself move: it spawns a task that blocks its worker
/// for 10 ms and yields, so an idle worker picks it up. Attempts are bounded (200 × 10 ms); each
/// one that does not move is simply retried. On current-thread loops it checks the same
/// sequence without the move.
pub fn task_keeps_its_context_across_worker_threads<L: EventLoop>(kit: &Kit<L>) {
    let multi = kit.capabilities().multi_thread;
    isolated(|| {
        let mut rt = kit.runner();
        let (moved, val, runner_val) = rt
            .run(async move {
                let task = runner_core::spawn(async move {
                    VAL.set(42);
                    let start: ThreadId = thread::current().id();
                    let mut moved = false;
                    for _ in 0..200 {
                        drop(runner_core::spawn(async {
                            thread::sleep(Duration::from_millis(10));
                        }));
                        runner_core::yield_now().await;
                        runner_core::yield_now().await;
                        if thread::current().id() != start {
                            moved = true;
                            break;
                        }
                        if !multi {
                            break;
                        }
                    }
                    // Read after the move, and once more after another yield.
                    let a = VAL.get();
                    runner_core::yield_now().await;
                    (moved, a, VAL.get())
                });
                let (moved, a, b) = task.await.unwrap();
                (moved, (a, b), VAL.get())
            })
            .unwrap();
        if multi {
            assert!(
                moved,
                "{}: the task never moved to another worker",
                kit.name()
            );
        }
        assert_eq!(val, (Some(42), Some(42)), "{}", kit.name());
        assert_eq!(runner_val, None, "the task's set leaked back");
    })
}

/// Python's token rules inside runs and tasks: `reset` puts back the previous value, or the
/// absence (then the default shows); a token is valid across runs (one runner context) and
/// across a task's awaits; a token from another context is `WrongContext`, one from another
/// variable is `WrongVar`.
pub fn token_rules_in_runs_and_tasks<L: EventLoop>(kit: &Kit<L>) {
    isolated(|| {
        let mut rt = kit.runner();
        let (t_val, t_other) = rt.run(async { (VAL.set(1), OTHER.set(1)) }).unwrap();
        // The next run resets tokens made by the previous one: same runner context.
        let (first, second) = rt
            .run(async move {
                let t2 = VAL.set(2);
                assert_eq!(t2.old_value(), Some(1));
                VAL.reset(t2).unwrap();
                let after_t2 = VAL.get();
                VAL.reset(t_val).unwrap();
                OTHER.reset(t_other).unwrap();
                (after_t2, (VAL.get(), OTHER.get()))
            })
            .unwrap();
        assert_eq!(first, Some(1), "{}", kit.name());
        assert_eq!(second, (None, Some(100)), "absence, then the default");

        let results = rt
            .run(async {
                let in_main = VAL.set(3);
                let task = runner_core::spawn(async move {
                    // Made in the main future's context: not this task's.
                    let foreign = VAL.reset(in_main);
                    let own = VAL.set(4);
                    runner_core::yield_now().await;
                    let wrong_var = OTHER.reset(OTHER.set(5)).and_then(|_| {
                        let t = VAL.set(6);
                        OTHER.reset(t)
                    });
                    let own_ok = VAL.reset(own);
                    (foreign, wrong_var, own_ok, VAL.get())
                });
                let r = task.await.unwrap();
                (r, VAL.get())
            })
            .unwrap();
        let ((foreign, wrong_var, own_ok, task_val), main_val) = results;
        assert_eq!(foreign, Err(ContextError::WrongContext), "{}", kit.name());
        assert_eq!(wrong_var, Err(ContextError::WrongVar));
        assert_eq!(own_ok, Ok(()));
        // The task's copy had 3; the reset of the own token put 3 back, the later 6 included.
        assert_eq!(task_val, Some(3));
        assert_eq!(main_val, Some(3));

        // A token from a `run_with_context` context is foreign to the runner's.
        let mut ctx = Context::new();
        let t = rt.run_with_context(&mut ctx, async { VAL.set(7) }).unwrap();
        let r = rt.run(async move { VAL.reset(t) }).unwrap();
        assert_eq!(r, Err(ContextError::WrongContext));
        assert_eq!(ctx.run(|| VAL.get()), Some(7));
    })
}

/// "Every remaining task is cancelled and dropped on the loop's own thread, so its destructors
/// run": in the task's own context, like its polls. Through close, and through `abort`.
pub fn cancelled_task_is_dropped_in_its_own_context<L: EventLoop>(kit: &Kit<L>) {
    struct ReadsOnDrop(Arc<Mutex<Vec<Option<u64>>>>);
    impl Drop for ReadsOnDrop {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(VAL.get());
        }
    }
    isolated(|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut rt = kit.runner();
        let s = seen.clone();
        rt.run(async move {
            VAL.set(1);
            for own in [2, 3] {
                let guard = ReadsOnDrop(s.clone());
                let started = Arc::new(Gate::default());
                let st = started.clone();
                let h = runner_core::spawn(async move {
                    let _guard = guard;
                    VAL.set(own);
                    st.open();
                    std::future::pending::<()>().await
                });
                started.wait().await;
                if own == 3 {
                    h.abort();
                    assert!(h.await.unwrap_err().is_cancelled());
                }
            }
        })
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), [Some(3)], "{}: abort", kit.name());
        rt.close().unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            [Some(3), Some(2)],
            "{}: close",
            kit.name()
        );
    })
}

/// A one-shot latch for the cases: `wait` resolves once `open` was called, from any thread.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, Vec<std::task::Waker>)>,
}

impl Gate {
    fn open(&self) {
        let wakers = {
            let mut s = self.state.lock().unwrap();
            s.0 = true;
            std::mem::take(&mut s.1)
        };
        for w in wakers {
            w.wake();
        }
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut s = self.state.lock().unwrap();
            if s.0 {
                std::task::Poll::Ready(())
            } else {
                s.1.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}
