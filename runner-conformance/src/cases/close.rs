//! Graceful close: the six steps, the `CloseReport`, the exception handler and the
//! unhandled-panic policy (CONTRACT §3 "close, in order", "Diagnostics"; upstream R6, R7, R8).

use std::future::pending;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use runner_core::time::sleep;
use runner_core::{DiagnosticKind, EventLoop, RunError, UnhandledPanic};

use crate::cases::tasks::{eventually, recorder, DropCount, PATIENCE};
use crate::Kit;

/// R6 `test_asyncio_run_cancels_hanging_tasks`: "a leftover task is cancelled by close; its drop
/// guard ran; the run returned 123". The leftover's handle then reads cancelled.
// Returning the leftover's handle out of the run is the point: it is checked after close.
#[allow(clippy::async_yields_async)]
pub fn r6_close_cancels_hanging_tasks<L: EventLoop>(kit: &Kit<L>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let guard = DropCount(dropped.clone());
    let mut rt = kit.runner();
    let (out, leftover) = rt
        .run(async move {
            let leftover = runner_core::spawn(async move {
                let _guard = guard;
                sleep(PATIENCE).await;
            });
            (123, leftover)
        })
        .unwrap();
    assert_eq!(out, 123);
    assert!(!leftover.is_finished());
    let report = rt.close().unwrap();
    assert_eq!(report.cancelled, 1, "{}: {report}", kit.name());
    assert_eq!((report.finished, report.panicked), (0, 0));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the drop guard ran in close"
    );
    assert!(leftover.is_finished());
    let err = futures_lite::future::block_on(leftover).unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
}

/// R7 `test_asyncio_run_reports_hanging_tasks_errors`: "a leftover task that panics during the
/// grace reaches the exception handler with its task and payload". It is the handler's last call
/// and the report counts it as panicked; the run returned 123.
pub fn r7_panic_during_grace_reaches_handler<L: EventLoop>(kit: &Kit<L>) {
    let payloads = Arc::new(Mutex::new(Vec::new()));
    let p = payloads.clone();
    let (seen, record) = recorder();
    let mut rt = kit
        .builder()
        .shutdown_grace(PATIENCE)
        .exception_handler(move |d| {
            record(d);
            let payload = d.payload().and_then(|p| p.downcast_ref::<&str>().copied());
            p.lock().unwrap().push(payload);
        })
        .build();
    let out = rt
        .run(async {
            runner_core::task::Builder::new()
                .name("leftover")
                .spawn(async {
                    runner_core::shutdown_requested().await;
                    panic!("division by zero")
                });
            123
        })
        .unwrap();
    assert_eq!(out, 123);
    let start = Instant::now();
    let report = rt.close().unwrap();
    assert_eq!(report.panicked, 1, "{}: {report}", kit.name());
    assert_eq!((report.finished, report.cancelled), (0, 0));
    // Every task ended before the grace ran out: close did not wait for it.
    assert!(start.elapsed() < PATIENCE / 2);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.last(),
        Some(&(
            DiagnosticKind::PanicDuringShutdown,
            Some("leftover".to_owned()),
            Some("division by zero".to_owned())
        )),
        "{}: {seen:?}",
        kit.name()
    );
    assert_eq!(
        payloads.lock().unwrap().last(),
        Some(&Some("division by zero"))
    );
}

/// A stream-like object (Python's async generator) that records when it is dropped.
struct Stream(Arc<Mutex<Vec<&'static str>>>);

impl Drop for Stream {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("stream dropped");
    }
}

/// The cleanup of a task when it is cancelled (Python's `except CancelledError: 1/0`).
struct CancelHandler(Arc<Mutex<Vec<&'static str>>>);

impl Drop for CancelHandler {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("task cancelled");
        panic!("division by zero");
    }
}

/// R8 `test_asyncio_run_closes_gens_after_hanging_tasks_errors`: "a stream held by a leftover
/// task is dropped by close, after the task was cancelled". The main future panics (FancyExit);
/// the leftover's cancellation cleanup panics too, which is reported, and the stream it held is
/// still dropped, after it, before close returns.
pub fn r8_close_drops_stream_after_cancelled_task<L: EventLoop>(kit: &Kit<L>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (seen, handler) = recorder();
    let mut rt = kit.builder().exception_handler(handler).build();
    let l = log.clone();
    let fancy = catch_unwind(AssertUnwindSafe(|| {
        rt.run(async move {
            let started = Arc::new(AtomicBool::new(false));
            let s = started.clone();
            runner_core::task::Builder::new()
                .name("spin")
                .spawn(async move {
                    let _stream = Stream(l.clone());
                    let _cancel = CancelHandler(l);
                    s.store(true, Ordering::SeqCst);
                    loop {
                        sleep(Duration::from_millis(10)).await;
                    }
                });
            // The task's locals exist once it has been polled.
            assert!(eventually(|| started.load(Ordering::SeqCst)).await);
            std::panic::panic_any("FancyExit")
        })
    }))
    .unwrap_err();
    assert_eq!(fancy.downcast_ref::<&str>(), Some(&"FancyExit"));
    let report = rt.close().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec!["task cancelled", "stream dropped"],
        "{}",
        kit.name()
    );
    assert_eq!(report.panicked, 1, "{}: {report}", kit.name());
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&(
            DiagnosticKind::PanicDuringShutdown,
            Some("spin".to_owned()),
            Some("division by zero".to_owned())
        ))
    );
}

/// Issue 4: "10,000 pending tasks at close: the report says 10,000 cancelled and each task's
/// drop guard ran".
pub fn close_cancels_10_000_pending_tasks<L: EventLoop>(kit: &Kit<L>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let mut rt = kit.runner();
    rt.run(async move {
        for _ in 0..10_000 {
            let guard = DropCount(d.clone());
            runner_core::spawn(async move {
                let _guard = guard;
                pending::<()>().await
            });
        }
        runner_core::yield_now().await;
    })
    .unwrap();
    let report = rt.close().unwrap();
    assert_eq!(report.cancelled, 10_000, "{}: {report}", kit.name());
    assert_eq!((report.finished, report.panicked), (0, 0));
    assert_eq!(dropped.load(Ordering::SeqCst), 10_000, "{}", kit.name());
}

/// "With a grace, tasks that watch `shutdown_requested()` and finish in time count as finished,
/// the rest cancelled." The grace (2 s) only bounds how long the loop waits for the 10 watchers,
/// which need one poll each; close then waits out the grace for the 5 others.
pub fn grace_finishes_watchers_and_cancels_the_rest<L: EventLoop>(kit: &Kit<L>) {
    const GRACE: Duration = Duration::from_secs(2);
    let cleaned = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (c, d) = (cleaned.clone(), dropped.clone());
    let mut rt = kit.builder().shutdown_grace(GRACE).build();
    rt.run(async move {
        for _ in 0..10 {
            let c = c.clone();
            runner_core::spawn(async move {
                runner_core::shutdown_requested().await;
                runner_core::yield_now().await;
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
        for _ in 0..5 {
            let guard = DropCount(d.clone());
            runner_core::spawn(async move {
                let _guard = guard;
                pending::<()>().await
            });
        }
    })
    .unwrap();
    let start = Instant::now();
    let report = rt.close().unwrap();
    assert_eq!(
        (report.finished, report.cancelled, report.panicked),
        (10, 5, 0),
        "{}: {report}",
        kit.name()
    );
    assert_eq!(cleaned.load(Ordering::SeqCst), 10);
    assert_eq!(dropped.load(Ordering::SeqCst), 5);
    assert!(start.elapsed() >= GRACE, "the grace was cut short");
}

/// "Tasks spawned during the grace are cancelled too (Python leaks them; we don't)", and so are
/// tasks spawned while close cancels (here from a cancelled task's destructor): all counted.
pub fn tasks_spawned_during_close_are_cancelled_and_counted<L: EventLoop>(kit: &Kit<L>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let mut rt = kit
        .builder()
        .shutdown_grace(Duration::from_millis(300))
        .build();

    struct SpawnOnDrop(Arc<AtomicUsize>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let guard = DropCount(self.0.clone());
            runner_core::spawn(async move {
                let _guard = guard;
                pending::<()>().await
            });
        }
    }

    rt.run(async move {
        let d2 = d.clone();
        runner_core::spawn(async move {
            runner_core::shutdown_requested().await;
            for _ in 0..3 {
                let guard = DropCount(d2.clone());
                runner_core::spawn(async move {
                    let _guard = guard;
                    pending::<()>().await
                });
            }
            pending::<()>().await
        });
        runner_core::spawn(async move {
            let _spawner = SpawnOnDrop(d);
            pending::<()>().await
        });
        runner_core::yield_now().await;
    })
    .unwrap();
    let report = rt.close().unwrap();
    // The watcher, its 3 children, the destructor-spawner and its child.
    assert_eq!(report.cancelled, 6, "{}: {report}", kit.name());
    assert_eq!((report.finished, report.panicked), (0, 0));
    assert_eq!(dropped.load(Ordering::SeqCst), 4, "{}", kit.name());
}

/// "Blocking jobs get `blocking_shutdown_timeout`, then are reported and left behind, never
/// waited on forever": a job that would block 60 s with a 200 ms timeout; close returns in under
/// 2 s (a bound ten times the timeout, for a loaded machine) and reports it, once. The job is
/// then released and its handle still gets its value.
// The handle is returned out of the run on purpose: it is awaited after close.
#[allow(clippy::async_yields_async)]
pub fn blocking_job_left_behind_is_reported<L: EventLoop>(kit: &Kit<L>) {
    let (seen, handler) = recorder();
    let mut rt = kit
        .builder()
        .blocking_shutdown_timeout(Duration::from_millis(200))
        .exception_handler(handler)
        .build();
    let (release, wait) = mpsc::channel::<()>();
    let started = Arc::new(AtomicBool::new(false));
    let (s, s2) = (started.clone(), started.clone());
    let job = rt
        .run(async move {
            let job = runner_core::task::Builder::new()
                .name("stuck")
                .spawn_blocking(move || {
                    s.store(true, Ordering::SeqCst);
                    let _ = wait.recv_timeout(Duration::from_secs(60));
                    "released"
                });
            assert!(eventually(|| s2.load(Ordering::SeqCst)).await);
            job
        })
        .unwrap();
    let start = Instant::now();
    let report = rt.close().unwrap();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{}: close took {took:?}",
        kit.name()
    );
    assert!(
        took >= Duration::from_millis(200),
        "the timeout was not given"
    );
    assert_eq!(report.blocking_left_behind, 1, "{}: {report}", kit.name());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(
            DiagnosticKind::BlockingLeftBehind,
            Some("stuck".to_owned()),
            None
        )]
    );
    release.send(()).unwrap();
    assert_eq!(futures_lite::future::block_on(job).unwrap(), "released");
}

/// A blocking job left behind may spawn another after the loop shut down: its handle ends (with
/// the value, or cancelled where the pool refuses new work) instead of hanging.
// The handle is returned out of the run on purpose: it is awaited after close.
#[allow(clippy::async_yields_async)]
pub fn blocking_spawn_after_close_never_hangs<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit
        .builder()
        .blocking_shutdown_timeout(Duration::ZERO)
        .build();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let started = Arc::new(AtomicBool::new(false));
    let (s, s2) = (started.clone(), started);
    let job = rt
        .run(async move {
            let job = runner_core::spawn_blocking(move || {
                s.store(true, Ordering::SeqCst);
                closed_rx.recv().unwrap();
                let inner = runner_core::spawn_blocking(|| 5);
                futures_lite::future::block_on(inner)
            });
            // A job that starts after its runner is gone has no runner to spawn onto.
            assert!(eventually(|| s2.load(Ordering::SeqCst)).await);
            job
        })
        .unwrap();
    let report = rt.close().unwrap();
    assert_eq!(report.blocking_left_behind, 1);
    drop(rt);
    closed_tx.send(()).unwrap();
    // Under the kit's watchdog: a hang fails the case. Which of the two endings comes depends on
    // whether the loop's blocking pool outlives the loop (smol's is global, tokio's is not); a
    // panic or any other value fails.
    let out = futures_lite::future::block_on(job).unwrap();
    assert!(
        matches!(&out, Ok(5)) || matches!(&out, Err(e) if e.is_cancelled()),
        "{}: the inner job ended with {out:?}, neither its value nor cancelled",
        kit.name()
    );
}

/// "`UnhandledPanic::ShutdownRunner`: a detached task's panic makes the current `run` return
/// `RunError::TaskPanicked` promptly, its main future dropped", on every flavour; the runner stays
/// usable and the panic was also reported.
pub fn shutdown_runner_policy_ends_the_run<L: EventLoop>(kit: &Kit<L>) {
    let (seen, handler) = recorder();
    let mut rt = kit
        .builder()
        .unhandled_panic(UnhandledPanic::ShutdownRunner)
        .exception_handler(handler)
        .build();
    let main_dropped = Arc::new(AtomicUsize::new(0));
    let guard = DropCount(main_dropped.clone());
    let start = Instant::now();
    let err = rt
        .run(async move {
            let _guard = guard;
            runner_core::task::Builder::new()
                .name("bomb")
                .spawn(async { panic!("kaboom") });
            sleep(PATIENCE).await;
        })
        .unwrap_err();
    assert!(
        start.elapsed() < PATIENCE / 2,
        "{}: not promptly",
        kit.name()
    );
    let RunError::TaskPanicked(p) = &err else {
        panic!("{}: expected TaskPanicked, got {err:?}", kit.name())
    };
    assert!(p.task().contains("bomb"), "{}", p.task());
    assert_eq!(p.message(), "kaboom");
    assert!(err.to_string().contains("kaboom"), "{err}");
    assert_eq!(
        main_dropped.load(Ordering::SeqCst),
        1,
        "the main future was dropped"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(rt.run(async { 1 }).unwrap(), 1, "the runner stays usable");
}

/// "A `LoopHandle::spawn` racing with close either returns `Closed` or its task appears in the
/// report": 4 threads spawn pending tasks until refused, while close runs. Every accepted task is
/// counted (cancelled) and its drop guard ran; close returns although the threads keep trying.
pub fn handle_spawns_racing_close_are_refused_or_counted<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    rt.run(async {}).unwrap();
    let handle = rt.handle().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (handle, dropped, accepted) = (handle.clone(), dropped.clone(), accepted.clone());
            thread::spawn(move || {
                let mut refused = 0;
                loop {
                    let guard = DropCount(dropped.clone());
                    match handle.spawn(async move {
                        let _guard = guard;
                        pending::<()>().await
                    }) {
                        Ok(_) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(RunError::Closed) => refused += 1,
                        Err(e) => panic!("{e:?}"),
                    }
                    if refused > 0 {
                        return refused;
                    }
                }
            })
        })
        .collect();
    // Let every thread get going, so close really races them.
    let deadline = Instant::now() + PATIENCE;
    while accepted.load(Ordering::SeqCst) < 4_000 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    let report = rt.close().unwrap();
    let refused: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 4);
    let accepted = accepted.load(Ordering::SeqCst);
    assert!(accepted >= 4_000, "{}", kit.name());
    assert_eq!(
        report.finished + report.cancelled + report.panicked,
        accepted,
        "{}: {report}",
        kit.name()
    );
    assert_eq!(dropped.load(Ordering::SeqCst), accepted + refused);
}

/// "`Drop` while panicking never double-panics or aborts": a runner dropped during unwinding,
/// whose leftover task's destructor panics and whose exception handler panics too. The original
/// panic comes out; the leftover was still dropped.
pub fn drop_while_panicking_never_double_panics<L: EventLoop>(kit: &Kit<L>) {
    struct PanicOnDrop(Arc<AtomicUsize>);
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("destructor");
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let kit = kit.clone();
    let err = catch_unwind(AssertUnwindSafe(move || {
        let mut rt = kit
            .builder()
            .exception_handler(|_| panic!("handler"))
            .build();
        rt.run(async move {
            let guard = PanicOnDrop(d);
            runner_core::spawn(async move {
                let _guard = guard;
                pending::<()>().await
            });
        })
        .unwrap();
        panic!("first");
    }))
    .unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"first"));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

/// "Drop inside a foreign runtime": a runner dropped inside another runner's run cannot drive
/// its loop. It must neither block (the drop returns within 10 s, and the kit's watchdog fails
/// the case if it never does), nor panic, nor let its pending tasks' futures be polled again;
/// the outer run goes on.
pub fn drop_inside_another_run_does_not_block<L: EventLoop>(kit: &Kit<L>) {
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let mut inner = kit.runner();
    inner
        .run(async move {
            runner_core::spawn(async move {
                loop {
                    p.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(5)).await;
                }
            });
            runner_core::yield_now().await;
        })
        .unwrap();
    let mut outer = kit.runner();
    let out = outer
        .run(async move {
            let start = Instant::now();
            drop(inner);
            let took = start.elapsed();
            sleep(Duration::from_millis(20)).await;
            (7, took)
        })
        .unwrap();
    assert_eq!(out.0, 7);
    assert!(
        out.1 < Duration::from_secs(10),
        "{}: the drop blocked for {:?}",
        kit.name(),
        out.1
    );
    let after = polls.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(50));
    outer.run(sleep(Duration::from_millis(20))).unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), after, "{}", kit.name());
}

/// Tasks queued through a `LoopHandle` before the loop ever ran (glommio's injection queue, a
/// current-thread loop's queue) are cancelled and counted by a close that comes first; none is
/// polled.
pub fn close_cancels_tasks_queued_before_any_run<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let handle = rt.handle().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let polled = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (guard, p, h) = (DropCount(dropped.clone()), polled.clone(), handle.clone());
            thread::spawn(move || {
                h.spawn(async move {
                    let _guard = guard;
                    // Multi-thread loops may start it: then it waits here.
                    p.store(true, Ordering::SeqCst);
                    pending::<()>().await
                })
                .unwrap()
            })
            .join()
            .unwrap()
        })
        .collect();
    let report = rt.close().unwrap();
    assert_eq!(report.cancelled, 3, "{}: {report}", kit.name());
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
    if !kit.capabilities().multi_thread {
        assert!(!polled.load(Ordering::SeqCst), "{}", kit.name());
    }
    for h in handles {
        assert!(futures_lite::future::block_on(h)
            .unwrap_err()
            .is_cancelled());
    }
}

/// `UnhandledPanic::ShutdownRunner`: "when no run is in progress, the next `run` returns it
/// without polling its future". Here the panic is left unread in a handle that is dropped
/// between runs.
// Returning the handle out of the run is the point: it is dropped between runs.
#[allow(clippy::async_yields_async)]
pub fn shutdown_runner_policy_between_runs<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit
        .builder()
        .unhandled_panic(UnhandledPanic::ShutdownRunner)
        .exception_handler(|_| {})
        .build();
    let h = rt
        .run(async {
            let h = runner_core::spawn(async { panic!("late") });
            assert!(eventually(|| h.is_finished()).await);
            h
        })
        .unwrap();
    drop(h);
    let polled = Arc::new(AtomicBool::new(false));
    let p = polled.clone();
    let err = rt
        .run(async move { p.store(true, Ordering::SeqCst) })
        .unwrap_err();
    assert!(
        matches!(err, RunError::TaskPanicked(_)),
        "{}: {err:?}",
        kit.name()
    );
    assert!(!polled.load(Ordering::SeqCst));
    assert_eq!(rt.run(async { 2 }).unwrap(), 2, "only once");
}
