//! Executor-neutral tasks: spawn, abort, panics, `LoopHandle`, timers and blocking jobs
//! (CONTRACT §2 "Public names", §3 "Tasks").

use std::future::pending;
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use runner_core::time::{sleep, timeout};
use runner_core::{ContextVar, Diagnostic, DiagnosticKind, EventLoop, RunError, SpawnError};

use crate::Kit;

/// How long a case waits for something that takes microseconds when the machine is idle. The
/// bound only turns a hang into a failure; it is generous because tests share a loaded machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// Waits on the loop (without blocking it) until `done()` is true; false if `PATIENCE` ran out.
pub(crate) async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(1)).await;
    }
    true
}

/// The diagnostics an exception handler received, in order.
pub(crate) type Seen = Arc<Mutex<Vec<(DiagnosticKind, Option<String>, Option<String>)>>>;

/// An exception handler that records each diagnostic's kind, task name and panic message.
pub(crate) fn recorder() -> (Seen, impl Fn(&Diagnostic) + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    (seen, move |d: &Diagnostic| {
        s.lock().unwrap().push((
            d.kind(),
            d.task().name().map(str::to_owned),
            d.message().map(str::to_owned),
        ))
    })
}

/// Counts its drops.
pub(crate) struct DropCount(pub(crate) Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// "`runner::spawn` needs `Send + 'static` and works on every backend": spawn and join a value.
pub fn spawn_and_join_value<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let out = rt
        .run(async {
            let h = runner_core::spawn(async {
                runner_core::yield_now().await;
                String::from("value")
            });
            h.await.unwrap()
        })
        .unwrap();
    assert_eq!(out, "value", "{}", kit.name());
}

/// Issue 3: "10,000 spawn/join": every output comes back to its own handle.
pub fn spawn_join_10_000<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let sum = rt
        .run(async {
            let handles: Vec<_> = (0..10_000u64)
                .map(|i| runner_core::spawn(async move { i * 2 }))
                .collect();
            let mut sum = 0;
            for (i, h) in handles.into_iter().enumerate() {
                let v = h.await.unwrap();
                assert_eq!(v, i as u64 * 2);
                sum += v;
            }
            sum
        })
        .unwrap();
    assert_eq!(sum, 2 * (0..10_000u64).sum::<u64>(), "{}", kit.name());
}

/// Where and how a task's future was dropped.
#[derive(Debug, Clone, Copy)]
struct Dropped {
    thread: ThreadId,
    /// A spawn made from the destructor succeeded: the runner's scope was installed, i.e. the
    /// future was dropped by the loop, not by whoever called `abort`.
    in_scope: bool,
}

struct DropProbe(Arc<Mutex<Option<Dropped>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let in_scope = runner_core::try_spawn(async {}).is_ok();
        *self.0.lock().unwrap() = Some(Dropped {
            thread: thread::current().id(),
            in_scope,
        });
    }
}

/// "`abort()` cancels, the future is dropped on its loop's thread, and awaiting the handle then
/// gives a cancelled `JoinError`; `is_finished()`". The abort is made from a plain thread: the
/// future is still dropped by the loop (on the runner's thread for local loops, on a loop thread
/// other than the aborting one for multi-thread loops).
pub fn abort_drops_future_on_loop_thread<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let probe = Arc::new(Mutex::new(None));
    let p = probe.clone();
    let runner_thread = thread::current().id();
    let (aborter, finished_before, finished_after, cancelled) = rt
        .run(async move {
            // Made here and moved in, so that it is dropped with the future even if the abort
            // comes before the task's first poll (on a multi-thread loop it may).
            let probe = DropProbe(p);
            let mut h = runner_core::spawn(async move {
                let _probe = probe;
                pending::<()>().await
            });
            runner_core::yield_now().await;
            let finished_before = h.is_finished();
            let aborter = thread::scope(|s| {
                s.spawn(|| {
                    h.abort();
                    thread::current().id()
                })
                .join()
                .unwrap()
            });
            let err = (&mut h).await.unwrap_err();
            (
                aborter,
                finished_before,
                h.is_finished(),
                err.is_cancelled(),
            )
        })
        .unwrap();
    assert!(
        !finished_before,
        "{}: a pending task is not finished",
        kit.name()
    );
    assert!(
        cancelled,
        "{}: awaiting an aborted task is cancelled",
        kit.name()
    );
    assert!(
        finished_after,
        "{}: an aborted task is finished",
        kit.name()
    );
    let dropped = probe.lock().unwrap().expect("the future was dropped");
    assert!(dropped.in_scope, "{}: dropped outside the loop", kit.name());
    assert_ne!(
        dropped.thread,
        aborter,
        "{}: dropped by the aborting thread",
        kit.name()
    );
    if !kit.capabilities().multi_thread {
        assert_eq!(
            dropped.thread,
            runner_thread,
            "{}: dropped off the loop",
            kit.name()
        );
    }
}

/// "Races between abort and completion": a task aborted at every point around its completion
/// ends exactly once, as its value or as cancelled, its future dropped exactly once, and nothing
/// is reported.
pub fn abort_racing_completion_ends_once<L: EventLoop>(kit: &Kit<L>) {
    let (seen, handler) = recorder();
    let mut rt = kit.builder().exception_handler(handler).build();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let (done, cancelled) = rt
        .run(async move {
            let (mut done, mut cancelled) = (0, 0);
            for i in 0..1_000usize {
                let guard = DropCount(d.clone());
                let h = runner_core::spawn(async move {
                    let _guard = guard;
                    for _ in 0..i % 3 {
                        runner_core::yield_now().await;
                    }
                    i
                });
                for _ in 0..i % 4 {
                    runner_core::yield_now().await;
                }
                h.abort();
                match h.await {
                    Ok(v) => {
                        assert_eq!(v, i);
                        done += 1
                    }
                    Err(e) => {
                        assert!(e.is_cancelled(), "{e}");
                        cancelled += 1
                    }
                }
            }
            (done, cancelled)
        })
        .unwrap();
    assert_eq!(done + cancelled, 1_000);
    assert_eq!(drops.load(Ordering::SeqCst), 1_000, "{}", kit.name());
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

/// "A panic inside a task never takes the loop down: it is the `JoinError` of its handle", with
/// its payload (`is_panic`, `into_panic`); an observed panic is not reported; the loop keeps
/// running tasks, in this run and the next.
pub fn panicking_task_gives_join_error<L: EventLoop>(kit: &Kit<L>) {
    let (seen, handler) = recorder();
    let mut rt = kit.builder().exception_handler(handler).build();
    let after = rt
        .run(async {
            let err = runner_core::spawn(async {
                runner_core::yield_now().await;
                std::panic::panic_any(String::from("boom"))
            })
            .await
            .unwrap_err();
            assert!(err.is_panic() && !err.is_cancelled(), "{err:?}");
            assert_eq!(err.to_string(), "task panicked: boom");
            let payload = err.into_panic();
            assert_eq!(payload.downcast_ref::<String>().unwrap(), "boom");
            runner_core::spawn(async { 5 }).await.unwrap()
        })
        .unwrap();
    assert_eq!(after, 5);
    assert_eq!(
        rt.run(async { runner_core::spawn(async { 6 }).await })
            .unwrap()
            .unwrap(),
        6
    );
    rt.close().unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

/// "If the handle was dropped, it goes to the exception handler": a detached panicking task does
/// not stop the run, and is reported once, with its name and message.
pub fn detached_panic_reaches_handler<L: EventLoop>(kit: &Kit<L>) {
    let (seen, handler) = recorder();
    let mut rt = kit.builder().exception_handler(handler).build();
    let s = seen.clone();
    let out = rt
        .run(async move {
            drop(
                runner_core::task::Builder::new()
                    .name("detached")
                    .spawn(async { panic!("boom") }),
            );
            assert!(eventually(|| !s.lock().unwrap().is_empty()).await);
            runner_core::spawn(async { 7 }).await.unwrap()
        })
        .unwrap();
    assert_eq!(out, 7, "{}", kit.name());
    rt.close().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        vec![(
            DiagnosticKind::UnobservedPanic,
            Some("detached".to_owned()),
            Some("boom".to_owned())
        )],
        "{}",
        kit.name()
    );
}

/// "JoinHandle drop vs completion": 300 panicking tasks whose handles are dropped before, around
/// and after the panic. Each panic is reported exactly once.
pub fn unobserved_panics_reported_exactly_once<L: EventLoop>(kit: &Kit<L>) {
    let (seen, handler) = recorder();
    let mut rt = kit.builder().exception_handler(handler).build();
    let s = seen.clone();
    rt.run(async move {
        for i in 0..300usize {
            let h = runner_core::spawn(async move {
                for _ in 0..i % 2 {
                    runner_core::yield_now().await;
                }
                panic!("boom")
            });
            for _ in 0..i % 3 {
                runner_core::yield_now().await;
            }
            drop(h);
        }
        assert!(eventually(|| s.lock().unwrap().len() >= 300).await);
        // Anything reported twice would arrive now.
        sleep(Duration::from_millis(20)).await;
    })
    .unwrap();
    rt.close().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 300, "{}", kit.name());
    assert!(seen
        .iter()
        .all(|(k, _, m)| *k == DiagnosticKind::UnobservedPanic && m.as_deref() == Some("boom")));
}

/// A panic held by a handle that is dropped unread after the run that spawned it ended is still
/// reported, once, when the handle is dropped (nothing is lost silently).
// The handle is returned out of the run on purpose: it is awaited after close.
#[allow(clippy::async_yields_async)]
pub fn unread_panic_reported_when_handle_dropped<L: EventLoop>(kit: &Kit<L>) {
    let (seen, handler) = recorder();
    let mut rt = kit.builder().exception_handler(handler).build();
    let h = rt
        .run(async {
            let h = runner_core::spawn(async { panic!("late") });
            assert!(eventually(|| h.is_finished()).await);
            h
        })
        .unwrap();
    assert!(h.is_finished());
    assert!(seen.lock().unwrap().is_empty());
    drop(h);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(
            DiagnosticKind::UnobservedPanic,
            None,
            Some("late".to_owned())
        )],
        "{}",
        kit.name()
    );
}

/// "Works ... from inside spawned tasks": three levels of spawns.
pub fn spawn_from_inside_a_task<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let out = rt
        .run(async {
            runner_core::spawn(async {
                let inner = runner_core::spawn(async {
                    runner_core::spawn(async { 1 }).await.unwrap() + 10
                });
                inner.await.unwrap() + 100
            })
            .await
            .unwrap()
        })
        .unwrap();
    assert_eq!(out, 111, "{}", kit.name());
}

/// Issue 3: "4 OS threads each spawning 10,000 tasks through a `LoopHandle` while the loop runs:
/// all 40,000 run exactly once", and each handle yields its own output.
pub fn loop_handle_40_000_from_4_threads<L: EventLoop>(kit: &Kit<L>) {
    const PER: usize = 10_000;
    let mut rt = kit.runner();
    let handle = rt.handle().unwrap();
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..4 * PER).map(|_| AtomicU8::new(0)).collect());
    let total = Arc::new(AtomicUsize::new(0));
    let (r, t) = (runs.clone(), total.clone());
    let handles = rt
        .run(async move {
            let threads: Vec<_> = (0..4)
                .map(|k| {
                    let (handle, runs, total) = (handle.clone(), r.clone(), t.clone());
                    thread::spawn(move || {
                        (k * PER..(k + 1) * PER)
                            .map(|i| {
                                let (runs, total) = (runs.clone(), total.clone());
                                handle
                                    .spawn(async move {
                                        runs[i].fetch_add(1, Ordering::SeqCst);
                                        total.fetch_add(1, Ordering::SeqCst);
                                        i
                                    })
                                    .unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            assert!(eventually(|| t.load(Ordering::SeqCst) == 4 * PER).await);
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert!(
        runs.iter().all(|n| n.load(Ordering::SeqCst) == 1),
        "{}",
        kit.name()
    );
    let outputs = rt
        .run(async move {
            let mut out = Vec::with_capacity(handles.len());
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        })
        .unwrap();
    assert!(outputs.iter().enumerate().all(|(i, v)| i == *v));
    assert_eq!(total.load(Ordering::SeqCst), 4 * PER, "{}", kit.name());
}

/// "`LoopHandle::spawn` works from any thread on every backend (queued until the loop next
/// runs)": a spawn before the first run, from another thread. On a current-thread loop it waits
/// for the first run (nothing runs it before); on a multi-thread loop a worker runs it with no
/// run at all. Either way the handle then gives its value.
pub fn loop_handle_spawn_before_first_run_is_queued<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let handle = rt.handle().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let h = thread::spawn(move || {
        handle
            .spawn(async move {
                r.store(true, Ordering::SeqCst);
                "queued"
            })
            .unwrap()
    })
    .join()
    .unwrap();
    if kit.capabilities().multi_thread {
        let deadline = Instant::now() + PATIENCE;
        while !h.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(
            ran.load(Ordering::SeqCst) && h.is_finished(),
            "{}: a multi-thread loop's workers did not run it before any run",
            kit.name()
        );
    } else {
        // Nothing can run it: the loop has not run yet.
        thread::sleep(Duration::from_millis(50));
        assert!(!ran.load(Ordering::SeqCst), "{}", kit.name());
        assert!(!h.is_finished());
    }
    assert_eq!(rt.run(h).unwrap().unwrap(), "queued", "{}", kit.name());
    assert!(ran.load(Ordering::SeqCst));
}

/// "The returned `JoinHandle` can be awaited from any thread or executor (e.g.
/// `futures_lite::future::block_on` on a plain thread)": Python's `run_coroutine_threadsafe`.
pub fn join_handle_awaited_on_plain_thread<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let handle = rt.handle().unwrap();
    let waiter = thread::spawn(move || {
        let h = handle
            .spawn(async {
                sleep(Duration::from_millis(10)).await;
                42
            })
            .unwrap();
        futures_lite::future::block_on(h).unwrap()
    });
    let finished = rt.run(eventually(|| waiter.is_finished())).unwrap();
    assert!(
        finished,
        "{}: the plain thread never got its value",
        kit.name()
    );
    assert_eq!(waiter.join().unwrap(), 42);
}

/// "`runner::time` uses each backend's own timer": `sleep` waits at least its duration, in the
/// main future and in a task (on a worker thread on multi-thread loops); `timeout` gives the
/// output in time and `Elapsed` after, dropping the slow future.
pub fn sleep_and_timeout<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    rt.run(async {
        let start = Instant::now();
        sleep(Duration::from_millis(30)).await;
        assert!(start.elapsed() >= Duration::from_millis(30));
        let in_task = runner_core::spawn(async {
            let start = Instant::now();
            sleep(Duration::from_millis(30)).await;
            start.elapsed()
        });
        assert!(in_task.await.unwrap() >= Duration::from_millis(30));

        assert_eq!(timeout(PATIENCE, async { 1 }).await, Ok(1));
        assert_eq!(
            timeout(PATIENCE, async {
                sleep(Duration::from_millis(5)).await;
                2
            })
            .await,
            Ok(2)
        );
        let dropped = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(dropped.clone());
        let start = Instant::now();
        let r = timeout(Duration::from_millis(20), async move {
            let _guard = guard;
            sleep(PATIENCE).await;
        })
        .await;
        let err = r.unwrap_err();
        assert_eq!(err.to_string(), "deadline has elapsed");
        assert!(start.elapsed() >= Duration::from_millis(20));
        // Expired, not hung: far below the slow future's sleep.
        assert!(start.elapsed() < PATIENCE / 2);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the slow future was dropped"
        );
    })
    .unwrap();
}

static BLOCKING_VAR: ContextVar<u32> = ContextVar::new("blocking_var");

/// "`spawn_blocking` on the backend's blocking pool": it returns its value, runs off the
/// runner's thread, in a copy of the caller's context (its own sets do not leak back).
pub fn spawn_blocking_returns_value_in_context_copy<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let here = thread::current().id();
    let (seen, other_thread, after) = rt
        .run(async move {
            BLOCKING_VAR.set(1);
            let (seen, other_thread) = runner_core::spawn_blocking(move || {
                let seen = BLOCKING_VAR.get();
                BLOCKING_VAR.set(2);
                (seen, thread::current().id() != here)
            })
            .await
            .unwrap();
            (seen, other_thread, BLOCKING_VAR.get())
        })
        .unwrap();
    assert_eq!(
        seen,
        Some(1),
        "{}: the job sees the caller's context",
        kit.name()
    );
    assert!(
        other_thread,
        "{}: the job ran on the runner's thread",
        kit.name()
    );
    assert_eq!(after, Some(1), "{}: the job's set leaked back", kit.name());
    let err = rt
        .run(async { runner_core::spawn_blocking(|| -> u8 { panic!("in pool") }).await })
        .unwrap()
        .unwrap_err();
    assert!(err.is_panic(), "{err:?}");
}

/// "Outside any run, `try_spawn` returns an error and `spawn` panics with a message that says
/// so" (and names `Runner::run`), before any runner exists and after one ran.
pub fn errors_outside_a_run<L: EventLoop>(kit: &Kit<L>) {
    fn check(when: &str) {
        let err = runner_core::try_spawn(async {}).unwrap_err();
        assert_eq!(err, SpawnError::NoRunner, "{when}");
        assert!(matches!(
            runner_core::try_spawn_local(async {}),
            Err(SpawnError::NoRunner)
        ));
        let panic = catch_unwind(|| drop(runner_core::spawn(async {}))).unwrap_err();
        let msg = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(msg.contains("Runner::run"), "{when}: {msg}");
        assert_eq!(*msg, err.to_string());
        assert!(catch_unwind(|| drop(runner_core::spawn_blocking(|| ()))).is_err());
    }
    check("before any runner");
    let mut rt = kit.runner();
    rt.run(async {}).unwrap();
    check("after a run");
}

/// "`spawn_local` works on local loops and returns a clear error where the loop cannot run
/// `!Send` tasks".
pub fn spawn_local_follows_capabilities<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let local = kit.capabilities().local_tasks;
    let name = kit.name();
    rt.run(async move {
        let shared = std::rc::Rc::new(5);
        let s = shared.clone();
        match runner_core::try_spawn_local(async move {
            runner_core::yield_now().await;
            *s + 1
        }) {
            Ok(h) => {
                assert!(
                    local,
                    "{name}: spawn_local worked on a loop without local tasks"
                );
                assert_eq!(h.await.unwrap(), 6);
            }
            Err(e) => {
                assert!(local.then_some(()).is_none(), "{name}: {e}");
                assert_eq!(e, SpawnError::LocalUnsupported);
                assert!(e.to_string().contains("spawn_local"), "{e}");
            }
        }
    })
    .unwrap();
}

/// "After close it returns `Closed`": the future is dropped, never polled.
pub fn loop_handle_spawn_after_close_is_closed<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let handle = rt.handle().unwrap();
    rt.run(async {}).unwrap();
    rt.close().unwrap();
    let polled = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (p, guard) = (polled.clone(), DropCount(dropped.clone()));
    let r = handle.spawn(async move {
        let _guard = guard;
        p.store(true, Ordering::SeqCst);
    });
    assert!(matches!(r, Err(RunError::Closed)), "{}: {r:?}", kit.name());
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert!(!polled.load(Ordering::SeqCst));
}

thread_local! {
    /// True on this thread while a spawn call is under way.
    static IN_SPAWN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Spawns `make()`'s task with [`IN_SPAWN`] set around the call: a task polled inline, inside the
/// call, sees it set on its thread; one polled later, or on a worker thread, does not.
fn spawn_marked<T>(spawn: impl FnOnce() -> T) -> T {
    IN_SPAWN.with(|f| f.set(true));
    let out = spawn();
    IN_SPAWN.with(|f| f.set(false));
    out
}

/// "`Spawner::spawn` never polls the task inline; it queues it" (the `EventLoop` contract), for
/// `spawn` and `spawn_local`, from the main future and from a task: a spawner holding a lock or
/// a `RefCell` borrow the new task needs must not deadlock or panic. (glommio's own
/// `spawn_local` runs the new task at once.) Each new task records whether it was first polled
/// inside the spawn call that made it (a thread-local flag set around the call), which holds
/// whichever thread polls it, so multi-thread loops are checked as fully as local ones.
pub fn spawn_never_polls_inline<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let caps = kit.capabilities();
    let name = kit.name();
    rt.run(async move {
        let h = spawn_marked(|| runner_core::spawn(async { IN_SPAWN.with(|f| f.get()) }));
        assert!(!h.await.unwrap(), "{name}: spawn polled the task inline");
        let from_task = runner_core::spawn(async move {
            let h = spawn_marked(|| runner_core::spawn(async { IN_SPAWN.with(|f| f.get()) }));
            h.await.unwrap()
        });
        assert!(
            !from_task.await.unwrap(),
            "{name}: spawn from a task polled the new task inline"
        );
        if caps.local_tasks {
            let h = spawn_marked(|| runner_core::spawn_local(async { IN_SPAWN.with(|f| f.get()) }));
            assert!(
                !h.await.unwrap(),
                "{name}: spawn_local polled the task inline"
            );
            let cell = std::rc::Rc::new(std::cell::RefCell::new(0));
            let c = cell.clone();
            let borrow = cell.borrow_mut();
            let h = runner_core::spawn_local(async move { *c.borrow_mut() += 1 });
            drop(borrow);
            h.await.unwrap();
            assert_eq!(*cell.borrow(), 1);
        }
        // A lock the new task needs, held across the spawn: an inline poll would deadlock.
        let lock = Arc::new(Mutex::new(0));
        let l = lock.clone();
        let guard = lock.lock().unwrap();
        let h = runner_core::spawn(async move { *l.lock().unwrap() += 1 });
        drop(guard);
        h.await.unwrap();
        assert_eq!(*lock.lock().unwrap(), 1);
    })
    .unwrap();
}

/// "`spawn_local` ... returns a clear error where the loop cannot run `!Send` tasks": local tasks
/// run on the runner's own thread, so `try_spawn_local` works from a task polled there (where the
/// loop has local tasks) and is `LocalUnsupported` from a task on a worker thread of a
/// multi-thread loop. Tasks are spawned until one has run on a worker thread (multi-thread
/// loops; bounded) and every attempt is checked against the thread it ran on.
pub fn spawn_local_off_the_runner_thread<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let caps = kit.capabilities();
    let runner_thread = std::thread::current().id();
    let attempts = rt
        .run(async move {
            let mut attempts = Vec::new();
            let deadline = Instant::now() + PATIENCE;
            loop {
                let batch: Vec<_> = (0..8)
                    .map(|_| {
                        runner_core::spawn(async move {
                            runner_core::yield_now().await;
                            let here = std::thread::current().id() == runner_thread;
                            let r = runner_core::try_spawn_local(async { 1 }).map(drop);
                            (here, r)
                        })
                    })
                    .collect();
                for h in batch {
                    attempts.push(h.await.unwrap());
                }
                let off = attempts.iter().any(|(here, _)| !here);
                if !caps.multi_thread || off || Instant::now() > deadline {
                    break attempts;
                }
            }
        })
        .unwrap();
    let name = kit.name();
    for (on_runner_thread, spawned) in &attempts {
        if *on_runner_thread {
            let expected = if caps.local_tasks {
                Ok(())
            } else {
                Err(SpawnError::LocalUnsupported)
            };
            assert_eq!(*spawned, expected, "{name}: on the runner's thread");
        } else {
            assert!(
                caps.multi_thread,
                "{name}: a task ran off the runner's thread"
            );
            assert_eq!(
                *spawned,
                Err(SpawnError::LocalUnsupported),
                "{name}: on a worker thread"
            );
        }
    }
    if caps.multi_thread {
        assert!(
            attempts.iter().any(|(here, _)| !here),
            "{name}: no task ever ran on a worker thread"
        );
    }
    rt.close().unwrap();
}
