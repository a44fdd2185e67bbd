//! The runner's own run queue on multi-thread loops (runner-core's `task::pump`), from the
//! outside: a `Send` task is no backend task of its own (tokio counts at most one pump per
//! worker alive, against one task per spawn with `backend_tasks`); a task that blocks its worker
//! does not stop the others; a task woken from other threads while it is being polled is never
//! polled twice at once, and every wake leads to a poll. Exact counts, under a watchdog.
//! Only tokio and smol have multi-thread loops: nothing here for glommio alone.
#![cfg(any(feature = "tokio", feature = "smol"))]

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use runner::{EventLoop, Runner};

/// Runs `test` on a thread of its own, failing with `hang` if it has not ended in 120 s.
fn watchdog(hang: &'static str, test: impl FnOnce() + Send + 'static) {
    let (finished, watchdog) = mpsc::channel();
    let t = thread::spawn(move || {
        test();
        finished.send(()).unwrap();
    });
    if watchdog.recv_timeout(Duration::from_secs(120)).is_err() {
        if t.is_finished() {
            // It panicked: its own message is the failure.
            t.join().unwrap();
        }
        panic!("{hang}");
    }
    t.join().unwrap();
}

#[cfg(feature = "tokio")]
fn tokio_multi(backend_tasks: bool) -> Runner<runner::tokio::TokioLoop> {
    Runner::builder()
        .loop_factory(|| runner::tokio::TokioLoop::multi_thread(2))
        .backend_tasks(backend_tasks)
        .build()
}

#[cfg(feature = "smol")]
fn smol_multi() -> Runner<runner::smol::SmolLoop> {
    Runner::builder()
        .loop_factory(|| runner::smol::SmolLoop::multi_thread(2))
        .build()
}

/// Spawns 1,000 pending tasks and counts the tokio tasks alive meanwhile.
#[cfg(feature = "tokio")]
fn tokio_tasks_for_1000(backend_tasks: bool) -> usize {
    let mut rt = tokio_multi(backend_tasks);
    let handle = rt.get_loop().unwrap().handle().clone();
    let alive = rt
        .run(async move {
            let hs: Vec<_> = (0..1000)
                .map(|_| runner::spawn(std::future::pending::<()>()))
                .collect();
            // Every task has had its first poll (each yields nothing: they stay pending).
            runner::time::sleep(Duration::from_millis(50)).await;
            let alive = handle.metrics().num_alive_tasks();
            drop(hs);
            alive
        })
        .unwrap();
    assert_eq!(rt.close().unwrap().cancelled, 1000);
    alive
}

#[cfg(feature = "tokio")]
#[test]
fn on_tokio_multi_thread_the_tasks_are_no_tokio_tasks_but_one_pump_per_worker_at_most() {
    watchdog("the tasks were not spawned", || {
        let pumps = tokio_tasks_for_1000(false);
        assert!(
            (1..=2).contains(&pumps),
            "{pumps} tokio tasks for 1,000 runner tasks on 2 workers"
        );
        assert_eq!(tokio_tasks_for_1000(true), 1000, "with backend_tasks");
    });
}

/// Task A blocks its worker thread until task B, spawned after it, has run. Not on smol: there
/// the run's own thread runs the executor's tasks too (`SmolLoop::block_on` is the executor's
/// `run`), so A may block the main future itself, with backend tasks as with pumps.
#[cfg(feature = "tokio")]
fn blocked_worker<L: EventLoop>(mut rt: Runner<L>) {
    for _ in 0..20 {
        let got = rt
            .run(async {
                let (tx, rx) = mpsc::channel::<u32>();
                let a = runner::spawn(async move { rx.recv().unwrap() });
                // A has started blocking (on one of the two workers) before B is spawned.
                runner::time::sleep(Duration::from_millis(5)).await;
                let b = runner::spawn(async move { tx.send(7).unwrap() });
                b.await.unwrap();
                a.await.unwrap()
            })
            .unwrap();
        assert_eq!(got, 7);
    }
    let report = rt.close().unwrap();
    assert_eq!((report.finished, report.cancelled), (0, 0));
}

#[cfg(feature = "tokio")]
#[test]
fn a_task_blocking_its_worker_does_not_stop_the_others_on_tokio() {
    watchdog("the task behind the blocked one never ran", || {
        blocked_worker(tokio_multi(false));
    });
}

/// A future that fails if two polls of it overlap, and leaves its waker for other threads
/// (`shared`) or only wakes itself, on each pending poll: a wake lost to a race is then a hang.
struct Exclusive {
    in_poll: Arc<AtomicBool>,
    slot: Arc<Mutex<Option<Waker>>>,
    shared: bool,
    polls: usize,
    until: usize,
}

impl Future for Exclusive {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        assert!(
            !self.in_poll.swap(true, Ordering::SeqCst),
            "two polls of one task at once"
        );
        self.polls += 1;
        // Give the wakers on other threads time to wake it while this poll holds it.
        thread::yield_now();
        if self.shared {
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
        }
        let out = if self.polls >= self.until {
            Poll::Ready(self.polls)
        } else {
            // And wake itself, as a yield does: queued again as the poll ends.
            if !self.shared || self.polls % 2 == 0 {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        };
        self.in_poll.store(false, Ordering::SeqCst);
        out
    }
}

/// 8 tasks, each polled 20 times: half woken by themselves and by two threads that wake whatever
/// waker each task left, as fast as they can, while the tasks are being polled; half woken only
/// by themselves, during their polls (the wake that a pump's poll must queue again).
fn overlapping_wakes<L: EventLoop>(rt: &mut Runner<L>) {
    const TASKS: usize = 8;
    const POLLS: usize = 20;
    let slots: Vec<Arc<Mutex<Option<Waker>>>> = (0..TASKS).map(|_| Arc::default()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let wakers: Vec<_> = (0..2)
        .map(|_| {
            let (slots, stop) = (slots.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    for s in &slots {
                        let w = s.lock().unwrap().clone();
                        if let Some(w) = w {
                            w.wake();
                        }
                    }
                    thread::yield_now();
                }
            })
        })
        .collect();
    let s = slots.clone();
    let polls = rt
        .run(async move {
            let hs: Vec<_> = s
                .iter()
                .enumerate()
                .map(|(i, slot)| {
                    runner::spawn(Exclusive {
                        in_poll: Arc::default(),
                        slot: slot.clone(),
                        shared: i % 2 == 0,
                        polls: 0,
                        until: POLLS,
                    })
                })
                .collect();
            let mut polls = Vec::new();
            for h in hs {
                polls.push(h.await.unwrap());
            }
            polls
        })
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for w in wakers {
        w.join().unwrap();
    }
    assert_eq!(polls, [POLLS; TASKS]);
}

fn overlapping_wakes_many<L: EventLoop>(mut rt: Runner<L>, iterations: usize) {
    for _ in 0..iterations {
        overlapping_wakes(&mut rt);
    }
    let report = rt.close().unwrap();
    assert_eq!((report.finished, report.cancelled), (0, 0));
}

/// Fewer in debug builds.
fn iterations() -> usize {
    if cfg!(debug_assertions) {
        50
    } else {
        1000
    }
}

#[cfg(feature = "tokio")]
#[test]
fn a_task_woken_during_its_poll_is_never_polled_twice_at_once_on_tokio() {
    watchdog("a wake was lost", || {
        overlapping_wakes_many(tokio_multi(false), iterations());
    });
}

#[cfg(feature = "smol")]
#[test]
fn a_task_woken_during_its_poll_is_never_polled_twice_at_once_on_smol() {
    watchdog("a wake was lost", || {
        overlapping_wakes_many(smol_multi(), iterations());
    });
}

/// Close cancelling tasks that pumps are polling right then: every future dropped once, every
/// task counted once.
fn close_while_polled<L: EventLoop>(make: impl Fn() -> Runner<L>, iterations: usize) {
    const TASKS: usize = 16;
    for _ in 0..iterations {
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut rt = make();
        let d = dropped.clone();
        rt.run(async move {
            for _ in 0..TASKS {
                let guard = Count(d.clone());
                drop(runner::spawn(async move {
                    let _guard = guard;
                    // Yields forever, each poll long enough to be caught by close.
                    poll_fn(|cx| {
                        thread::yield_now();
                        cx.waker().wake_by_ref();
                        Poll::<()>::Pending
                    })
                    .await
                }));
            }
            runner::time::sleep(Duration::from_millis(1)).await;
        })
        .unwrap();
        let report = rt.close().unwrap();
        assert_eq!(
            (report.finished, report.cancelled, report.panicked),
            (0, TASKS, 0)
        );
        assert_eq!(dropped.load(Ordering::SeqCst), TASKS);
    }
}

struct Count(Arc<AtomicUsize>);

impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(feature = "tokio")]
#[test]
fn close_cancels_tasks_the_pumps_are_polling_on_tokio() {
    watchdog("close did not end", || {
        close_while_polled(|| tokio_multi(false), iterations() / 4);
    });
}

#[cfg(feature = "smol")]
#[test]
fn close_cancels_tasks_the_pumps_are_polling_on_smol() {
    watchdog("close did not end", || {
        close_while_polled(smol_multi, iterations() / 4);
    });
}

/// A future that keeps its own task's waker (in itself, as a future waiting on a channel it owns
/// does): a cycle through its cell that only dropping the future breaks. Its poll signals
/// `polling` and sleeps, so that the runner is dropped while a pump holds it.
struct KeepsOwnWaker {
    polling: Option<mpsc::Sender<()>>,
    waker: Option<Waker>,
    _count: Count,
}

impl Future for KeepsOwnWaker {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(polling) = self.polling.take() {
            polling.send(()).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A runner dropped inside another runner's run (where its loop cannot run: it is abandoned)
/// while a pump is polling one of its tasks: the task's future is still dropped, once the poll
/// has ended, though the future holds its own waker (and so its cell).
fn abandoned_while_polled<L: EventLoop>(make: impl Fn() -> Runner<L>, iterations: usize) {
    let mut host = runner::Runner::new();
    for i in 0..iterations {
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut rt = make();
        let (polling, polled) = mpsc::channel();
        let d = dropped.clone();
        rt.run(async move {
            drop(runner::spawn(KeepsOwnWaker {
                polling: Some(polling),
                waker: None,
                _count: Count(d),
            }));
            // The task's first poll is under way on a pump (and sleeping) when the run returns.
            // Waited for blocking the main future's thread, so that a worker polls the task
            // (smol's `block_on` thread runs the executor's tasks too, between the main future's
            // polls).
            polled.recv().unwrap();
        })
        .unwrap();
        let mut cell = Some(rt);
        let cell = &mut cell;
        host.run(async move { drop(cell.take()) }).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while dropped.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "iteration {i}: the future of a task polled as its runner was abandoned"
        );
    }
    host.close().unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn a_runner_abandoned_while_a_pump_polls_drops_the_future_on_tokio() {
    watchdog("the abandoned runner did not end", || {
        abandoned_while_polled(|| tokio_multi(false), 20);
    });
}

#[cfg(feature = "smol")]
#[test]
fn a_runner_abandoned_while_a_pump_polls_drops_the_future_on_smol() {
    watchdog("the abandoned runner did not end", || {
        abandoned_while_polled(smol_multi, 20);
    });
}
