//! The task engine: local executors owned by their runner, exact counts at close, refusal of
//! foreign spawns while close cancels, and panics in destructors (of a task's future, of its
//! output) handled as tokio handles them (CONTRACT §3 "Tasks", §4 "Close").
//!
//! Every case that could hang runs under a watchdog, which turns a hang into a failure naming
//! the case.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskCx, Poll};
use std::thread;
use std::time::{Duration, Instant};

use runner_core::time::{sleep, timeout};
use runner_core::{DiagnosticKind, EventLoop, RunError, Runner};

use crate::cases::tasks::{eventually, recorder, DropCount, PATIENCE};
use crate::Kit;

/// How long a case may take before [`watchdog`] calls it a hang.
const HANG: Duration = Duration::from_secs(60);

/// Runs `case` on a thread of its own and fails with a message naming `what` if it has not
/// returned within [`HANG`]; a panic in `case` is resumed here.
fn watchdog<L: EventLoop>(kit: &Kit<L>, what: &str, case: fn(&Kit<L>)) {
    let (tx, rx) = mpsc::channel();
    let k = kit.clone();
    let t = thread::spawn(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&k)));
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(HANG) {
        Ok(()) => {
            if let Err(p) = t.join().expect("caught above") {
                std::panic::resume_unwind(p);
            }
        }
        Err(_) => panic!("{}: {what} hung for {HANG:?}", kit.name()),
    }
}

/// Panics when dropped: an output or a future whose destructor fails.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("output destructor panicked");
        }
    }
}

/// Bug 1: "local executors are owned by their runner". A runner dropped inside another runner's
/// run leaves nothing behind on the thread: runners made afterwards (at whatever address) run
/// their `spawn_local` tasks.
pub fn local_tasks_run_after_a_runner_dropped_in_another_run<L: EventLoop>(kit: &Kit<L>) {
    if !kit.capabilities().local_tasks {
        return;
    }
    watchdog(kit, "spawn_local after a nested drop", |kit| {
        for round in 0..50 {
            // A runner whose local tasks have all ended (so nothing keeps its state alive once it
            // is dropped), dropped inside another runner's run.
            let mut inner = kit.runner();
            inner
                .run(async { runner_core::spawn_local(async { 1 }).await.unwrap() })
                .unwrap();
            let mut outer = kit.runner();
            outer.run(async move { drop(inner) }).unwrap();
            drop(outer);
            let mut next = kit.runner();
            let out = next
                .run(async { timeout(PATIENCE, runner_core::spawn_local(async { 7 })).await })
                .unwrap();
            assert_eq!(
                out.expect("the local task was never polled").unwrap(),
                7,
                "{}: round {round}",
                kit.name()
            );
            next.close().unwrap();
        }
    });
}

/// Sets a flag when dropped, then holds the loop's close until `until` is set (or `PATIENCE`).
struct Gate {
    dropped: Arc<AtomicBool>,
    until: Arc<AtomicBool>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + PATIENCE;
        while !self.until.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Bug 2: "once close is cancelling, spawns from outside the loop are refused". A task of
/// *another* runner (running its own loop on another thread) is outside this loop: its spawn
/// onto this runner's `LoopHandle` while close cancels is refused, not accepted born cancelled,
/// and the report counts only this runner's own task.
pub fn spawns_from_another_runner_are_refused_while_closing<L: EventLoop>(kit: &Kit<L>) {
    watchdog(kit, "close racing another runner's spawn", |kit| {
        let mut rt = kit.runner();
        let handle = rt.handle().unwrap();
        let cancelling = Arc::new(AtomicBool::new(false));
        let attempted = Arc::new(AtomicBool::new(false));
        let gate = Gate {
            dropped: cancelling.clone(),
            until: attempted.clone(),
        };
        rt.run(async move {
            runner_core::spawn(async move {
                let _gate = gate;
                pending::<()>().await
            });
            runner_core::yield_now().await;
        })
        .unwrap();
        let (c, a, k) = (cancelling.clone(), attempted.clone(), kit.clone());
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let other = thread::spawn(move || {
            let mut other = k.runner();
            let refused = other
                .run(async move {
                    runner_core::spawn(async move {
                        assert!(eventually(|| c.load(Ordering::SeqCst)).await);
                        let guard = DropCount(d);
                        let r = handle.spawn(async move {
                            let _guard = guard;
                        });
                        a.store(true, Ordering::SeqCst);
                        r.is_err()
                    })
                    .await
                    .unwrap()
                })
                .unwrap();
            other.close().unwrap();
            refused
        });
        let report = rt.close().unwrap();
        let refused = other.join().unwrap();
        assert!(refused, "{}: the spawn was accepted", kit.name());
        assert_eq!(
            (report.cancelled, report.finished, report.panicked),
            (1, 0, 0),
            "{}: {report}",
            kit.name()
        );
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "{}", kit.name());
    });
}

/// Bug 3: "every task that was alive when close began ends as finished, cancelled or
/// panicked": a task whose output was already taken through its handle was not alive then, and
/// close does not count it.
pub fn tasks_joined_before_close_are_not_counted<L: EventLoop>(kit: &Kit<L>) {
    watchdog(kit, "join then close", |kit| {
        for round in 0..200 {
            let mut rt = kit.runner();
            let handles = rt
                .run(async {
                    (0..4u32)
                        .map(|i| runner_core::spawn(async move { i }))
                        .collect::<Vec<_>>()
                })
                .unwrap();
            // Joined from this plain thread (tasks progress here on multi-thread loops), the
            // last one just before close begins; in a second run elsewhere.
            let mut outputs = Vec::new();
            if kit.capabilities().multi_thread {
                for h in handles {
                    outputs.push(futures_lite::future::block_on(h).unwrap());
                }
            } else {
                outputs = rt
                    .run(async {
                        let mut out = Vec::new();
                        for h in handles {
                            out.push(h.await.unwrap());
                        }
                        out
                    })
                    .unwrap();
            }
            assert_eq!(outputs, [0, 1, 2, 3], "{}", kit.name());
            let report = rt.close().unwrap();
            assert_eq!(
                (report.finished, report.cancelled, report.panicked),
                (0, 0, 0),
                "{}: round {round}: {report}",
                kit.name()
            );
        }
    });
}

/// A runner holding one pending local task, and the count of that task's drops (0 so far).
fn with_pending_local_task<L: EventLoop>(kit: &Kit<L>) -> (Runner<L>, Arc<AtomicUsize>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut rt = kit.runner();
    let d = dropped.clone();
    rt.run(async move {
        let guard = DropCount(d);
        runner_core::spawn_local(async move {
            let _guard = guard;
            pending::<()>().await
        });
        runner_core::yield_now().await;
    })
    .unwrap();
    (rt, dropped)
}

/// Bug 4: "a runner dropped in another loop drops its local tasks, on their thread": their
/// destructors run before the drop returns.
pub fn local_tasks_of_a_runner_dropped_in_another_run_are_dropped<L: EventLoop>(kit: &Kit<L>) {
    if !kit.capabilities().local_tasks {
        return;
    }
    watchdog(kit, "nested drop of a runner with local tasks", |kit| {
        let (inner, dropped) = with_pending_local_task(kit);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        let mut outer = kit.runner();
        let d = dropped.clone();
        let seen = outer
            .run(async move {
                drop(inner);
                d.load(Ordering::SeqCst)
            })
            .unwrap();
        assert_eq!(seen, 1, "{}: dropped with its runner", kit.name());
        outer.close().unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "{}", kit.name());
    });
}

/// Bug 4, across threads: a runner with pending local tasks dropped on another thread leaves
/// them to their own thread, which drops them when it next runs a loop.
pub fn local_tasks_of_a_runner_dropped_elsewhere_are_dropped_at_home<L: EventLoop>(kit: &Kit<L>) {
    if !kit.capabilities().local_tasks {
        return;
    }
    watchdog(kit, "drop on another thread", |kit| {
        let (rt, dropped) = with_pending_local_task(kit);
        // The job swaps in a fresh runner, so the one with local tasks is dropped over there.
        let k = kit.clone();
        if kit
            .on_other_thread(rt, move |rt| drop(std::mem::replace(rt, k.runner())))
            .is_none()
        {
            return;
        }
        let mut next = kit.runner();
        next.run(async {}).unwrap();
        next.close().unwrap();
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "{}", kit.name());
    });
}

/// Bug 5: "if a detached task then panics, the panic goes to the runner's exception handler":
/// also when the panic is its output's destructor. The loop goes on and close returns.
pub fn detached_output_destructor_panic_reaches_handler<L: EventLoop>(kit: &Kit<L>) {
    watchdog(kit, "detached output destructor panic", |kit| {
        let (seen, handler) = recorder();
        let mut rt = kit.builder().exception_handler(handler).build();
        let s = seen.clone();
        let heard = rt
            .run(async move {
                drop(runner_core::spawn(async {
                    runner_core::yield_now().await;
                    PanicOnDrop
                }));
                eventually(|| !s.lock().unwrap().is_empty()).await
            })
            .unwrap();
        assert!(heard, "{}: the handler never heard of it", kit.name());
        let report = rt.close().unwrap();
        assert_eq!(report.panicked + report.cancelled, 0, "{}", kit.name());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{}: {seen:?}", kit.name());
        assert_eq!(seen[0].0, DiagnosticKind::UnobservedPanic, "{}", kit.name());
        assert_eq!(
            seen[0].2.as_deref(),
            Some("output destructor panicked"),
            "{}",
            kit.name()
        );
    });
}

/// Bug 6: "a runner with local tasks must run and close on their thread": once they have all
/// ended, the runner is free to move again.
// The first run's output is a handle, awaited in a later run.
#[allow(clippy::async_yields_async)]
pub fn wrong_thread_only_while_local_tasks_live<L: EventLoop>(kit: &Kit<L>) {
    if !kit.capabilities().local_tasks {
        return;
    }
    watchdog(kit, "moving a runner", |kit| {
        let mut rt = kit.runner();
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        let h = rt
            .run(async move {
                runner_core::spawn_local(async move {
                    while !r.load(Ordering::SeqCst) {
                        sleep(Duration::from_millis(1)).await;
                    }
                    5
                })
            })
            .unwrap();
        let result = Arc::new(Mutex::new(None));
        let out = result.clone();
        let Some(mut rt) = kit.on_other_thread(rt, move |rt| {
            *out.lock().unwrap() = Some(rt.run(async {}).map(drop));
        }) else {
            return;
        };
        let r = result.lock().unwrap().take();
        assert!(
            matches!(r, Some(Err(RunError::WrongThread))),
            "{}: {r:?}",
            kit.name()
        );
        release.store(true, Ordering::SeqCst);
        assert_eq!(rt.run(h).unwrap().unwrap(), 5, "{}", kit.name());
        let out = result.clone();
        let rt = kit
            .on_other_thread(rt, move |rt| {
                let r = rt.run(async { runner_core::spawn_local(async { 6 }).await.unwrap() });
                *out.lock().unwrap() = Some(r.map(|v| assert_eq!(v, 6)));
                // Local tasks now live on that thread, which has none left either: close there.
                rt.close().unwrap();
            })
            .expect("moved once already");
        let r = result.lock().unwrap().take();
        assert!(
            matches!(r, Some(Ok(()))),
            "{}: no local task alive, the runner may move: {r:?}",
            kit.name()
        );
        drop(rt);
    });
}

/// Bug 7: dropping the `JoinHandle` of a finished task whose output's destructor panics does not
/// unwind into whoever drops it (tokio's `join_handle_panic`); the handler hears of it.
pub fn dropping_a_handle_whose_output_panics_on_drop<L: EventLoop>(kit: &Kit<L>) {
    watchdog(kit, "handle drop with a panicking output", |kit| {
        let (seen, handler) = recorder();
        let mut rt = kit.builder().exception_handler(handler).build();
        let out = rt
            .run(async {
                let h = runner_core::spawn(async { PanicOnDrop });
                let done = eventually(|| h.is_finished()).await;
                drop(h);
                done
            })
            .unwrap();
        assert!(out, "{}", kit.name());
        rt.close().unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{}: {seen:?}", kit.name());
        assert_eq!(seen[0].0, DiagnosticKind::UnobservedPanic, "{}", kit.name());
    });
}

/// Records whether it was dropped during an unwind.
struct UnwindProbe(Arc<Mutex<Option<bool>>>);

impl Drop for UnwindProbe {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(thread::panicking());
    }
}

/// A hand-written future (no coroutine to drop its locals on the way out) whose second poll
/// panics.
struct PanicsOnSecondPoll {
    _probe: UnwindProbe,
    polled: bool,
}

impl Future for PanicsOnSecondPoll {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.polled, true) {
            panic!("boom in poll");
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Bug 8: a future whose `poll` panics is dropped during the unwind, as tokio drops it: its
/// destructors see `thread::panicking()` (so a `MutexGuard` held across an `.await` poisons its
/// mutex), and the handle gets the poll's panic.
pub fn panicking_future_is_dropped_while_unwinding<L: EventLoop>(kit: &Kit<L>) {
    watchdog(kit, "panicking poll", |kit| {
        let probe = Arc::new(Mutex::new(None));
        let p = probe.clone();
        let mut rt = kit.runner();
        let err = rt
            .run(async move {
                runner_core::spawn(PanicsOnSecondPoll {
                    _probe: UnwindProbe(p),
                    polled: false,
                })
                .await
                .unwrap_err()
            })
            .unwrap();
        assert!(err.is_panic(), "{}", kit.name());
        assert_eq!(
            *probe.lock().unwrap(),
            Some(true),
            "{}: dropped during the unwind",
            kit.name()
        );
        rt.close().unwrap();
    });
}

/// tokio's `task_abort`: aborting a finished task changes nothing, and its handle still gives
/// the output; aborting twice, or after the handle was polled, is harmless.
pub fn abort_after_finish_keeps_the_output<L: EventLoop>(kit: &Kit<L>) {
    watchdog(kit, "abort after finish", |kit| {
        let mut rt = kit.runner();
        let out = rt
            .run(async {
                let h = runner_core::spawn(async { 3 });
                assert!(eventually(|| h.is_finished()).await);
                h.abort();
                h.abort();
                h.await
            })
            .unwrap();
        assert_eq!(out.unwrap(), 3, "{}", kit.name());
        let report = rt.close().unwrap();
        assert_eq!(report.cancelled + report.finished, 0, "{}", kit.name());
    });
}

/// Fairness of the run queue: a task that yields forever does not starve the loop's timers, on
/// any loop (on current-thread ones the runner polls its tasks on its own queue, at most the ones
/// queued when a drive begins, and lets the backend poll its I/O and timers in between). The main
/// future's sleep and a sleeping task's both complete while the yielding task keeps running.
pub fn yielding_task_does_not_starve_timers<L: EventLoop>(kit: &Kit<L>) {
    watchdog(kit, "a task yielding forever beside a sleep", |kit| {
        let mut rt = kit.runner();
        let yields = Arc::new(AtomicUsize::new(0));
        let y = yields.clone();
        let (seen, slept) = rt
            .run(async move {
                let y2 = y.clone();
                let spinner = runner_core::spawn(async move {
                    loop {
                        y2.fetch_add(1, Ordering::SeqCst);
                        runner_core::yield_now().await;
                    }
                });
                let sleeper = runner_core::spawn(async {
                    sleep(Duration::from_millis(20)).await;
                    true
                });
                sleep(Duration::from_millis(30)).await;
                let slept = sleeper.await.unwrap();
                let seen = y.load(Ordering::SeqCst);
                spinner.abort();
                assert!(spinner.await.unwrap_err().is_cancelled());
                (seen, slept)
            })
            .unwrap();
        assert!(slept, "{}", kit.name());
        assert!(
            seen > 1,
            "{}: the yielding task ran ({seen} polls)",
            kit.name()
        );
        let report = rt.close().unwrap();
        assert_eq!(
            report.cancelled + report.finished,
            0,
            "{}: {report}",
            kit.name()
        );
    });
}
