//! The state machine: lazy init, run, close, nesting, failures (CONTRACT §3 "State machine",
//! "run"; upstream R1, R2, R5, R11, N3, N4, N6–N10, N12).

use std::future::IntoFuture;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use runner_core::{EventLoop, RunError, State};

use crate::Kit;

/// R1 `test_asyncio_run_return`: "`run(async { yield_now().await; 42 })` is `Ok(42)`".
pub fn r1_run_return<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let out = rt.run(async {
        runner_core::yield_now().await;
        42
    });
    assert_eq!(out.unwrap(), 42, "{}", kit.name());
}

/// R2 `test_asyncio_run_raises`: "a future that panics with "spam": the panic reaches the caller"
/// with its original payload.
pub fn r2_run_panics_with_payload<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let err = catch_unwind(AssertUnwindSafe(|| {
        rt.run(async {
            runner_core::yield_now().await;
            std::panic::panic_any(String::from("spam"))
        })
    }))
    .expect_err("the panic must reach the caller");
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("spam")
    );
}

/// R2, the Rust half: "one returning `Err` gives `Ok(Err(..))`".
pub fn r2_run_err_is_ok_err<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let out: Result<(), &str> = rt
        .run(async {
            runner_core::yield_now().await;
            Err("spam")
        })
        .unwrap();
    assert_eq!(out, Err("spam"));
}

/// R5 `test_asyncio_run_from_running_loop`: "`runner::run` / another runner's `run` inside a run:
/// `RunError::NestedRun`, the outer run continues". The inner future is never polled.
pub fn r5_run_inside_run_is_nested<L: EventLoop>(kit: &Kit<L>) {
    let mut outer = kit.runner();
    let inner_kit = kit.clone();
    let polled = Arc::new(AtomicBool::new(false));
    let p = polled.clone();
    let out = outer
        .run(async move {
            let mut inner = inner_kit.runner();
            let r = inner.run(async move { p.store(true, Ordering::SeqCst) });
            runner_core::yield_now().await;
            (
                matches!(r, Err(RunError::NestedRun)),
                r.map_err(|e| e.to_string()),
            )
        })
        .unwrap();
    assert!(out.0, "expected NestedRun, got {:?}", out.1);
    assert!(
        !polled.load(Ordering::SeqCst),
        "the nested future was polled"
    );
    assert!(
        out.1
            .unwrap_err()
            .contains("cannot be called from a running event loop"),
        "the message names the misuse"
    );
}

/// N12 `test_recursive_run`: a run from inside a running loop is `NestedRun` ("cannot be called
/// from a running event loop"), never a panic or a hang, here from inside a spawned task (on a
/// worker thread, for multi-thread loops); the outer run goes on and returns. Re-entering the
/// *same* runner cannot be written: `run` takes `&mut self`.
pub fn n12_recursive_run_is_nested<L: EventLoop>(kit: &Kit<L>) {
    let mut outer = kit.runner();
    let inner_kit = kit.clone();
    let (nested, after) = outer
        .run(async move {
            let handle = runner_core::spawn(async move {
                // Made and dropped inside the task: the drop must not block or panic either.
                let mut inner = inner_kit.runner();
                matches!(inner.run(async { 1 }), Err(RunError::NestedRun))
            });
            let nested = handle.await.unwrap();
            runner_core::yield_now().await;
            (nested, 5)
        })
        .unwrap();
    assert!(
        nested,
        "{}: run inside a task must be NestedRun",
        kit.name()
    );
    assert_eq!(after, 5);
}

/// "close from inside one of the runner's own tasks ... is an error, never a deadlock": close
/// while a loop runs on this thread returns `NestedRun` and the runner stays `Initialized`.
pub fn nested_close_is_an_error<L: EventLoop>(kit: &Kit<L>) {
    let mut victim = kit.runner();
    victim.run(async {}).unwrap();
    let victim = Arc::new(Mutex::new(victim));
    let v = victim.clone();
    let mut outer = kit.runner();
    let r = outer
        .run(async move { v.lock().unwrap().close().map(|_| ()) })
        .unwrap();
    assert!(matches!(r, Err(RunError::NestedRun)), "{r:?}");
    let mut victim = Arc::try_unwrap(victim).ok().unwrap().into_inner().unwrap();
    assert_eq!(victim.state(), State::Initialized);
    victim.close().unwrap();
    assert_eq!(victim.state(), State::Closed);
}

/// R11, R12 `test_asyncio_run_loop_factory`, N3 `test_custom_factory`: "the factory is called
/// once, with no arguments; `get_loop()` is its loop". The factory puts a marker task on the loop
/// it makes (through the loop's own spawner) before handing it over; a second one is put through
/// `get_loop()`'s spawner between runs. Both must run in the runner's runs, and on a
/// current-thread loop, whose tasks run only inside its `block_on`, neither runs before a run:
/// so the loop the runner drives and the one `get_loop()` returns are the one the factory made.
pub fn r11_factory_called_once_and_get_loop_is_its_loop<L: EventLoop>(kit: &Kit<L>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut make = kit.factory();
    let from_factory = Arc::new(AtomicBool::new(false));
    let f = from_factory.clone();
    let mut rt = runner_core::Runner::<L>::builder()
        .loop_factory(move || {
            c.fetch_add(1, Ordering::SeqCst);
            let lp = make()?;
            let f = f.clone();
            lp.spawner()
                .spawn(Box::pin(async move { f.store(true, Ordering::SeqCst) }));
            Ok(lp)
        })
        .build();
    let name = kit.name();
    let current_thread = !kit.capabilities().multi_thread;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing is created before first use"
    );
    assert_eq!(rt.state(), State::Created);
    rt.get_loop().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    if current_thread {
        assert!(
            !from_factory.load(Ordering::SeqCst),
            "{name}: ran before any run"
        );
    }
    let fa = from_factory.clone();
    assert!(
        rt.run(crate::cases::tasks::eventually(
            move || fa.load(Ordering::SeqCst)
        ))
        .unwrap(),
        "{name}: the runner's run does not drive the loop the factory made"
    );
    let from_get_loop = Arc::new(AtomicBool::new(false));
    let g = from_get_loop.clone();
    rt.get_loop()
        .unwrap()
        .spawner()
        .spawn(Box::pin(async move { g.store(true, Ordering::SeqCst) }));
    if current_thread {
        assert!(
            !from_get_loop.load(Ordering::SeqCst),
            "{name}: ran between runs"
        );
    }
    let ga = from_get_loop.clone();
    assert!(
        rt.run(crate::cases::tasks::eventually(
            move || ga.load(Ordering::SeqCst)
        ))
        .unwrap(),
        "{name}: the loop get_loop() returns is not the one the runner drives"
    );
    let _ = rt.handle().unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the factory is called exactly once"
    );
    assert_eq!(rt.state(), State::Initialized);
}

/// N4 `test_run`: "run returns; after close every call is `Closed`".
pub fn n4_run_then_close<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    assert_eq!(
        rt.run(async {
            runner_core::yield_now().await;
            "done"
        })
        .unwrap(),
        "done"
    );
    rt.close().unwrap();
    assert_eq!(rt.state(), State::Closed);
    assert!(matches!(rt.get_loop(), Err(RunError::Closed)));
    assert!(matches!(rt.handle(), Err(RunError::Closed)));
}

/// N8 `test_explicit_close`: "`get_loop()` (lazy init), then `close()`; `get_loop()` then
/// raises" `Closed`.
pub fn n8_explicit_close<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    rt.get_loop().unwrap();
    assert_eq!(rt.state(), State::Initialized);
    rt.close().unwrap();
    assert!(matches!(rt.get_loop(), Err(RunError::Closed)));
}

/// N9 `test_double_close`: "a second close is a no-op".
pub fn n9_double_close<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    rt.get_loop().unwrap();
    rt.close().unwrap();
    let second = rt.close().unwrap();
    assert_eq!(second, runner_core::CloseReport::default());
    assert_eq!(rt.state(), State::Closed);
}

/// N10 `test_second_with_block_raises`: "after close every call is `Closed`, the future is never
/// polled".
pub fn n10_closed_runner_never_polls<L: EventLoop>(kit: &Kit<L>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut rt = kit.runner();
    let l = log.clone();
    rt.run(async move { l.lock().unwrap().push(1) }).unwrap();
    rt.close().unwrap();
    let l = log.clone();
    let r = rt.run(async move { l.lock().unwrap().push(2) });
    assert!(matches!(r, Err(RunError::Closed)), "{r:?}");
    assert_eq!(r.unwrap_err().to_string(), "runner is closed");
    assert_eq!(*log.lock().unwrap(), vec![1]);
}

/// "`close()` on `Created` does nothing and leaves it usable".
pub fn close_on_created_is_noop<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    assert_eq!(rt.close().unwrap(), runner_core::CloseReport::default());
    assert_eq!(rt.state(), State::Created);
    assert_eq!(rt.run(async { 1 }).unwrap(), 1);
    assert_eq!(rt.state(), State::Initialized);
}

/// "A factory error is returned as `RunError::LoopCreation` and leaves the runner `Created`, so
/// the next call retries."
pub fn factory_failure_leaves_created_and_retries<L: EventLoop>(kit: &Kit<L>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let mut make = kit.factory();
    let mut rt = runner_core::Runner::<L>::builder()
        .loop_factory(move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(io::Error::other("no loop today"))
            } else {
                make()
            }
        })
        .build();
    let err = rt.run(async { 1 }).unwrap_err();
    assert!(matches!(err, RunError::LoopCreation(_)), "{err:?}");
    // One line that carries the cause (and no `source()`, so a chain printer shows it once).
    assert_eq!(
        err.to_string(),
        "the event loop could not be created: no loop today"
    );
    assert_eq!(rt.state(), State::Created);
    assert_eq!(rt.run(async { 2 }).unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// "A panic in the main future reaches the caller with its original payload (`resume_unwind`),
/// and the runner stays usable."
pub fn panic_in_main_keeps_runner_usable<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    for _ in 0..3 {
        let err = catch_unwind(AssertUnwindSafe(|| {
            rt.run(async {
                runner_core::yield_now().await;
                panic!("boom")
            })
        }))
        .expect_err("the panic reaches the caller");
        assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
        assert_eq!(rt.state(), State::Initialized);
        assert_eq!(rt.run(async { 7 }).unwrap(), 7);
    }
}

/// N6 `test_run_future`: "`run` accepts a `JoinHandle`".
// Returning the handle out of a run is the point: the next `run` awaits it.
#[allow(clippy::async_yields_async)]
pub fn n6_run_accepts_join_handle<L: EventLoop>(kit: &Kit<L>) {
    let mut rt = kit.runner();
    let handle = rt
        .run(async { runner_core::spawn(async { "done" }) })
        .unwrap();
    assert_eq!(rt.run(handle).unwrap().unwrap(), "done");
}

/// N7 `test_run_awaitable`: "`run` accepts ... any `IntoFuture`".
pub fn n7_run_accepts_into_future<L: EventLoop>(kit: &Kit<L>) {
    struct Awaitable;
    impl IntoFuture for Awaitable {
        type Output = &'static str;
        type IntoFuture = std::future::Ready<&'static str>;
        fn into_future(self) -> Self::IntoFuture {
            std::future::ready("done")
        }
    }
    let mut rt = kit.runner();
    assert_eq!(rt.run(Awaitable).unwrap(), "done");
}

/// Number of open file descriptors of this process (Linux; `None` elsewhere).
pub fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// "A thousand create/run/close cycles leak no file descriptors ... on any backend."
///
/// Counts the process's descriptors, so run it in a test binary where nothing else runs at the
/// same time (the kit's `leak` test file does).
pub fn many_cycles_leak_no_fds<L: EventLoop>(kit: &Kit<L>) {
    // Warm up: process-wide things made once (async-io's reactor, a thread's glommio executor,
    // the blocking pool) are not leaks.
    for _ in 0..3 {
        let mut rt = kit.runner();
        rt.run(async { runner_core::spawn(async {}).await.unwrap() })
            .unwrap();
        rt.close().unwrap();
    }
    // A cycle may never park its loop (on a current-thread loop the runner polls its tasks
    // itself): one sleep makes whatever a parked loop makes once (async-io's reactor: an epoll,
    // an eventfd and a timerfd), so that a later park is not counted as a leak.
    let mut rt = kit.runner();
    rt.run(runner_core::time::sleep(std::time::Duration::from_millis(
        1,
    )))
    .unwrap();
    rt.close().unwrap();
    let Some(before) = open_fds() else { return };
    for _ in 0..1000 {
        let mut rt = kit.runner();
        rt.run(async { runner_core::spawn(async {}).await.unwrap() })
            .unwrap();
        rt.close().unwrap();
    }
    let after = open_fds().unwrap();
    assert_eq!(
        after,
        before,
        "{}: fds before {before}, after 1000 cycles {after}",
        kit.name()
    );
}

/// R9 `test_asyncio_run_set_event_loop`, N17 `test_set_event_loop_called_once`: "the ambient loop
/// handle is set inside the run and in tasks, and absent outside".
pub fn r9_ambient_handle_inside_run_and_tasks<L: EventLoop>(kit: &Kit<L>) {
    use runner_core::LoopHandle;
    assert!(LoopHandle::try_current().is_none(), "absent before any run");
    let mut rt = kit.runner();
    let mine = rt.handle().unwrap();
    let (in_main, in_task) = rt
        .run(async {
            let main = LoopHandle::current();
            let task = runner_core::spawn(async { LoopHandle::current() })
                .await
                .unwrap();
            (main, task)
        })
        .unwrap();
    assert!(
        in_main.same_runner(&mine),
        "inside the run it is this runner's"
    );
    assert!(
        in_task.same_runner(&mine),
        "inside a task it is this runner's"
    );
    assert!(LoopHandle::try_current().is_none(), "absent after the run");
    let other = kit.runner().handle().unwrap();
    assert!(!other.same_runner(&mine));
}

/// The backport's extra tests (asyncio-runner-reference §6.4): a runner inside a worker thread
/// has no SIGINT path and returns its result, and runners on different threads run concurrently:
/// a run on a worker thread waits for something only the main thread's run does, and both
/// finish. (A deadline turns a missing concurrency into a failure instead of a hang.)
pub fn concurrent_runners_on_threads<L: EventLoop>(kit: &Kit<L>) {
    use std::time::Duration;
    let flag = Arc::new(AtomicBool::new(false));
    let worker = {
        let kit = kit.clone();
        let flag = flag.clone();
        std::thread::spawn(move || {
            let mut rt = kit.runner();
            rt.run(runner_core::time::timeout(
                Duration::from_secs(30),
                async move {
                    while !flag.load(Ordering::SeqCst) {
                        runner_core::time::sleep(Duration::from_millis(1)).await;
                    }
                    "worker saw the main thread's run"
                },
            ))
            .unwrap()
        })
    };
    let mut rt = kit.runner();
    let f = flag.clone();
    rt.run(async move {
        runner_core::yield_now().await;
        f.store(true, Ordering::SeqCst);
    })
    .unwrap();
    let out = worker.join().expect("the worker's runner does not panic");
    assert_eq!(
        out,
        Ok("worker saw the main thread's run"),
        "{}",
        kit.name()
    );
}

/// "The capabilities (`Caps`) a kit declares are the loop's": `multi_thread` is
/// `EventLoop::is_multi_thread()` of a loop the factory makes, `local_tasks` is whether
/// `spawn_local` works on the runner's thread, `send` whether `Runner<L>` is `Send` (see
/// [`check_caps`](crate::check_caps), which every stamped test also runs first).
pub fn caps_match_the_loop<L: EventLoop>(kit: &Kit<L>) {
    crate::check_caps(kit);
}

/// `EventLoop::spawner`: "Queued tasks run when the loop next runs: on a current-thread loop that
/// is inside `block_on`, on a multi-thread loop as soon as a worker is free." Between two runs, a
/// task spawned in the first run (waiting on a timer that fires after it returned) and one spawned
/// through a `LoopHandle` both finish on a multi-thread loop, with no run; on a current-thread
/// loop neither is polled in a 200 ms window with no run. The next run then finishes both.
// Returning the task's handle out of the run is the point: it is checked between runs.
#[allow(clippy::async_yields_async)]
pub fn progress_between_runs_follows_multi_thread<L: EventLoop>(kit: &Kit<L>) {
    use std::time::{Duration, Instant};
    let multi = kit.capabilities().multi_thread;
    let name = kit.name();
    let mut rt = kit.runner();
    let handle = rt.handle().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let timed = rt
        .run(async move {
            runner_core::spawn(async move {
                runner_core::time::sleep(Duration::from_millis(10)).await;
                r.fetch_add(1, Ordering::SeqCst);
            })
        })
        .unwrap();
    let r = ran.clone();
    let queued = handle
        .spawn(async move {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    if multi {
        let deadline = Instant::now() + Duration::from_secs(60);
        while ran.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            ran.load(Ordering::SeqCst),
            2,
            "{name}: a multi-thread loop did not run its tasks between runs"
        );
        assert!(timed.is_finished() && queued.is_finished(), "{name}");
    } else {
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "{name}: a current-thread loop polled tasks outside a run"
        );
        assert!(!timed.is_finished() && !queued.is_finished(), "{name}");
    }
    rt.run(async move {
        timed.await.unwrap();
        queued.await.unwrap();
    })
    .unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 2, "{name}");
    let report = rt.close().unwrap();
    assert_eq!(
        report,
        runner_core::CloseReport::default(),
        "{name}: {report}"
    );
}

/// "The runner is `Send` (it may be moved to another thread between runs)" where `Caps::send`
/// says so: a runner used on this thread is moved to another thread for its second run, and back
/// for a third and its close. The second run sees the context the first one set (one runner
/// context), finishes a task the first one spawned (which waits for the second run), runs on the
/// other thread, and close then has nothing left to cancel. On a loop whose runner is not `Send`
/// the claim does not apply; the kit's `send` capability is checked against the type by
/// [`check_caps`](crate::check_caps).
pub fn send_runner_moves_to_another_thread_between_runs<L: EventLoop>(kit: &Kit<L>) {
    let name = kit.name();
    match (kit.capabilities().send, kit.with_send_runner()) {
        (true, Some(check)) => check(kit),
        (false, None) => {}
        (declared, proof) => {
            assert!(
                kit.runner_is_send().is_some(),
                "{name}: run this case through `suite!`, which can tell whether Runner<L> is Send"
            );
            panic!(
                "{name}: the kit declares send = {declared}, but Runner<L> is{} Send",
                if proof.is_some() { "" } else { " not" }
            );
        }
    }
}

static MOVED_VAR: runner_core::ContextVar<u32> = runner_core::ContextVar::new("moved_var");

/// The body of `send_runner_moves_to_another_thread_between_runs`, where `Runner<L>: Send`.
// Returning the task's handle out of the run is the point: the next run, elsewhere, joins it.
#[allow(clippy::async_yields_async)]
pub(crate) fn move_runner_between_runs<L: EventLoop>(kit: &Kit<L>)
where
    runner_core::Runner<L>: Send,
{
    let name = kit.name();
    let mut rt = kit.runner();
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let task = rt
        .run(async move {
            MOVED_VAR.set(7);
            runner_core::spawn(async move {
                while !g.load(Ordering::SeqCst) {
                    runner_core::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                5
            })
        })
        .unwrap();
    let home = std::thread::current().id();
    let (mut rt, (seen, joined, there)) = std::thread::spawn(move || {
        let out = rt
            .run(async move {
                go.store(true, Ordering::SeqCst);
                let joined = task.await.unwrap();
                (MOVED_VAR.get(), joined, std::thread::current().id())
            })
            .unwrap();
        (rt, out)
    })
    .join()
    .expect("the moved runner's run does not panic");
    assert_ne!(
        there, home,
        "{name}: the second run was not on another thread"
    );
    assert_eq!(seen, Some(7), "{name}: the moved runner lost its context");
    assert_eq!(joined, 5, "{name}");
    assert_eq!(
        rt.run(async { MOVED_VAR.get() }).unwrap(),
        Some(7),
        "{name}"
    );
    let report = rt.close().unwrap();
    assert_eq!(
        report,
        runner_core::CloseReport::default(),
        "{name}: {report}"
    );
}
