//! Issue 13: races in the task engine's handshakes (the runner's own run queue and its `leave`,
//! registry entries without a reference count, a multi-thread cell registered under the shard's
//! lock), on every loop, with exact counts.
//!
//! Every task here is wrapped in a [`Tracked`] future, which counts its drops (a second drop is a
//! failure), its completions, and a poll after its drop (a failure). The scenarios:
//!
//! 1. [`hops`]: a runner with tasks left queued on its own queue, run on thread A, run on B, a
//!    run that panics midway on C (after spawning and waking), closed on D.
//! 2. [`slow_wakers`]: tasks woken from other threads by wakers that sleep or yield, cloned and
//!    dropped there, while the main future is polled and while close runs.
//! 3. [`close_races`]: close racing two threads of `LoopHandle` spawns, while a third thread
//!    aborts or drops the `JoinHandle`s; destructors that spawn (refused or cancelled) or panic.
//! 4. [`nested`]: a runner run inside a blocking job of another runner, waking the outer
//!    runner's cells; a run inside a task of another runner is refused (`NestedRun`).
//! 5. [`churn`]: many runners made and dropped (addresses reused), closed, dropped on another
//!    thread, or abandoned inside another runner's run, with pending tasks whose destructors
//!    count; every destructor runs once, and a `Weak` to an object the tasks hold is dead.
//! 6. [`remote_wakes`]: the main future awaits tasks that only another thread wakes, after
//!    pauses of varied length, on fresh runners and on runners run many times: a wake lost
//!    between a push from that thread and the main future's registration is a hang.
//!
//! Each backend and scenario runs on a thread of its own under a watchdog, so a hang fails with
//! the backend's and the scenario's name, the iteration and its phase, instead of stalling the
//! suite. The watchdog bounds progress (an iteration that does not end within a minute), not the
//! whole scenario: on a loaded 2-core machine a scenario of hundreds of runners and threads may
//! take minutes, and a bound on its total once failed healthy runs as hangs.

use std::future::{pending, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use runner::{EventLoop, RunError, Runner};
use runner_conformance::Kit;

/// How long a scenario may go without finishing an iteration: past it, a hang turns into a
/// failure (`RACES_HANG_SECS` sets another). A bound on progress, not on the whole scenario,
/// which may take minutes on a loaded 2-core machine.
const STALL: Duration = Duration::from_secs(60);

/// Iterations, fewer in debug builds.
fn iters(release: usize) -> usize {
    if cfg!(debug_assertions) {
        (release / 8).max(10)
    } else {
        release
    }
}

/// What every tracked future of one iteration adds to.
#[derive(Default)]
struct Counts {
    /// Futures dropped (each exactly once).
    drops: AtomicUsize,
    /// Futures that returned `Ready`.
    done: AtomicUsize,
    /// Futures the runner accepted (counted before the spawn, taken back on a refusal).
    spawned: AtomicUsize,
    /// Polls after a drop, second drops: each one a failure.
    bad: AtomicUsize,
    /// Tasks spawned by destructors and accepted.
    children: AtomicUsize,
    /// Destructors that panicked on the loop.
    panics: AtomicUsize,
}

impl Counts {
    fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDrop {
    Nothing,
    /// Spawns a pending task (accepted only while the loop runs the drop).
    Spawns,
    /// Panics, when dropped by the loop.
    Panics,
}

/// A future that counts its end and its drop, and notices a poll after its drop.
struct Tracked<F> {
    fut: Pin<Box<F>>,
    counts: Arc<Counts>,
    /// Set by the drop; a poll that sees it is a failure (the flag outlives the future).
    dropped: Arc<AtomicBool>,
    on_drop: OnDrop,
    /// Something a runner-held object keeps alive (its `Weak` must die).
    _keep: Option<Arc<()>>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if self.dropped.load(Ordering::SeqCst) {
            self.counts.bad.fetch_add(1, Ordering::SeqCst);
        }
        let out = self.fut.as_mut().poll(cx);
        if out.is_ready() {
            self.counts.done.fetch_add(1, Ordering::SeqCst);
        }
        out
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            self.counts.bad.fetch_add(1, Ordering::SeqCst);
        }
        self.counts.drops.fetch_add(1, Ordering::SeqCst);
        match self.on_drop {
            OnDrop::Nothing => {}
            OnDrop::Spawns => {
                let counts = self.counts.clone();
                // Counted before the spawn can drop the child (on a refusal), so the drops
                // never run ahead of what is expected.
                counts.children.fetch_add(1, Ordering::SeqCst);
                let child = track(&counts, OnDrop::Nothing, None, pending::<()>());
                if runner::try_spawn(child).is_err() {
                    // Refused: dropped unpolled, not the runner's task.
                    counts.children.fetch_sub(1, Ordering::SeqCst);
                    counts.drops.fetch_sub(1, Ordering::SeqCst);
                }
            }
            OnDrop::Panics => {
                if !thread::panicking() && runner::LoopHandle::try_current().is_some() {
                    self.counts.panics.fetch_add(1, Ordering::SeqCst);
                    panic!("probe destructor");
                }
            }
        }
    }
}

fn track<F: Future>(
    counts: &Arc<Counts>,
    on_drop: OnDrop,
    keep: Option<Arc<()>>,
    fut: F,
) -> Tracked<F> {
    Tracked {
        fut: Box::pin(fut),
        counts: counts.clone(),
        dropped: Arc::new(AtomicBool::new(false)),
        on_drop,
        _keep: keep,
    }
}

/// Spawns `fut` tracked through `runner::spawn`, counting it as accepted.
fn spawn_tracked<F>(counts: &Arc<Counts>, fut: F) -> runner::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    counts.spawned.fetch_add(1, Ordering::SeqCst);
    runner::spawn(track(counts, OnDrop::Nothing, None, fut))
}

/// Pending until woken `wakes` times by whoever holds the wakers it leaves in `slot`
/// (`usize::MAX`: forever).
fn wait_wakes(slot: Arc<Mutex<Vec<Waker>>>, wakes: usize) -> impl Future<Output = ()> + Send {
    let mut polls = 0usize;
    std::future::poll_fn(move |cx| {
        if polls >= wakes {
            return Poll::Ready(());
        }
        polls += 1;
        slot.lock().unwrap().push(cx.waker().clone());
        Poll::Pending
    })
}

fn wake_all(slot: &Mutex<Vec<Waker>>) {
    let ws: Vec<Waker> = std::mem::take(&mut *slot.lock().unwrap());
    for w in ws {
        w.wake();
    }
}

fn assert_clean(name: &str, what: &str, i: usize, c: &Counts) {
    assert_eq!(
        Counts::get(&c.bad),
        0,
        "{name}: {what} {i}: a task was polled after its drop or dropped twice"
    );
    assert_eq!(
        Counts::get(&c.drops),
        Counts::get(&c.spawned) + Counts::get(&c.children),
        "{name}: {what} {i}: every accepted future dropped exactly once"
    );
}

/// Waits (bounded) until `c.drops` reaches what was accepted: on multi-thread loops a future
/// that was aborted is dropped by the worker that polls it next, maybe after close returned.
fn settle(c: &Counts) {
    let until = Instant::now() + Duration::from_secs(10);
    while Counts::get(&c.drops) < Counts::get(&c.spawned) + Counts::get(&c.children)
        && Instant::now() < until
    {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Where a scenario is, for its watchdog: the iteration, the phase within it, and since when.
struct Progress(Mutex<(usize, &'static str, Instant)>);

thread_local! {
    /// The scenario's [`Progress`], on the thread that runs it.
    static PROGRESS: std::cell::RefCell<Option<Arc<Progress>>> =
        const { std::cell::RefCell::new(None) };
}

fn set_progress(f: impl FnOnce(&mut (usize, &'static str, Instant))) {
    PROGRESS.with(|p| {
        if let Some(p) = &*p.borrow() {
            f(&mut p.0.lock().unwrap());
        }
    });
}

/// Iteration `i` begins (the watchdog's clock starts again).
fn beat(i: usize) {
    set_progress(|p| *p = (i, "start", Instant::now()));
}

/// The iteration enters `what` (named in a hang's failure).
fn phase(what: &'static str) {
    set_progress(|p| {
        p.1 = what;
        p.2 = Instant::now();
    });
}

/// Runs `f` on a thread of its own; an iteration that makes no progress for [`STALL`] fails
/// with `what`, the iteration and its phase.
fn watchdog(what: String, f: impl FnOnce() + Send + 'static) {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let quiet = [&"probe destructor", &"main panics", &"task panics"];
            if !quiet.iter().any(|q| p.downcast_ref::<&str>() == Some(q)) {
                hook(info);
            }
        }));
    });
    let progress = Arc::new(Progress(Mutex::new((0, "start", Instant::now()))));
    let (tx, rx) = mpsc::channel();
    let seen = progress.clone();
    let t = thread::spawn(move || {
        PROGRESS.with(|p| *p.borrow_mut() = Some(seen));
        let started = Instant::now();
        f();
        let _ = tx.send(started.elapsed());
    });
    let stall = std::env::var("RACES_HANG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(STALL, Duration::from_secs);
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(took) => {
                t.join().unwrap();
                eprintln!("{what}: {took:?}");
                return;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The scenario panicked: its failure, not a hang.
                if let Err(p) = t.join() {
                    std::panic::resume_unwind(p);
                }
                unreachable!("{what}: the scenario ended without reporting");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let (i, at, since) = *progress.0.lock().unwrap();
                let stuck = since.elapsed();
                if stuck > stall {
                    panic!("{what}: iteration {i} hung in its {at} for {stuck:?}");
                }
            }
        }
    }
}

/// Moves a runner to another thread for a job and back (`None` where the runner is not `Send`:
/// the job runs on this thread).
type Mover<L> = fn(Runner<L>, Job<L>) -> Runner<L>;

/// A job on a runner, on whichever thread the [`Mover`] picks.
type Job<L> = Box<dyn FnOnce(&mut Runner<L>) + Send>;

fn send_mover<L: EventLoop>(mut rt: Runner<L>, job: Job<L>) -> Runner<L>
where
    Runner<L>: Send,
{
    thread::spawn(move || {
        job(&mut rt);
        rt
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The [`Mover`] of a runner that is not `Send` (glommio's): the job runs on this thread.
#[cfg_attr(not(all(feature = "glommio", target_os = "linux")), allow(dead_code))]
fn same_thread<L: EventLoop>(mut rt: Runner<L>, job: Job<L>) -> Runner<L> {
    job(&mut rt);
    rt
}

/// A loop under test: its kit and how to move its runners.
struct Backend<L: EventLoop> {
    kit: Kit<L>,
    mover: Mover<L>,
    multi: bool,
}

impl<L: EventLoop> Backend<L> {
    fn runner(&self) -> Runner<L> {
        runner::builder()
            .loop_factory(self.kit.factory())
            .exception_handler(|_| {})
            .build()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A runner with own-queue tasks left queued, moved between threads, a run panicking midway.

/// Spawns a mix of tasks and wakes those waiting in `slot`; returns at once, so the woken and
/// the new ones are left queued when the run leaves the thread.
fn spawn_mix(c: &Arc<Counts>, slot: &Arc<Mutex<Vec<Waker>>>, n: usize, multi: bool) {
    for j in 0..n {
        match j % 4 {
            0 => {
                drop(spawn_tracked(c, async {
                    for _ in 0..3 {
                        runner::yield_now().await;
                    }
                }));
            }
            1 => drop(spawn_tracked(c, wait_wakes(slot.clone(), usize::MAX))),
            2 => drop(spawn_tracked(c, wait_wakes(slot.clone(), 2))),
            _ => {
                // A task that spawns and wakes from inside a poll (own-queue pushes from a task).
                let (c2, s2) = (c.clone(), slot.clone());
                drop(spawn_tracked(c, async move {
                    drop(spawn_tracked(&c2, wait_wakes(s2.clone(), 1)));
                    wake_all(&s2);
                    if !multi {
                        runner::yield_now().await;
                    }
                }));
            }
        }
    }
    wake_all(slot);
}

fn hops_iteration<L: EventLoop>(b: &Backend<L>, i: usize) {
    let name = b.kit.name();
    let c = Arc::new(Counts::default());
    let slot = Arc::new(Mutex::new(Vec::new()));
    let multi = b.multi;
    let rt = b.runner();

    // A: spawn and wake, return at once: tasks left on the thread's queue move to the shared one.
    let (c1, s1) = (c.clone(), slot.clone());
    let rt = (b.mover)(
        rt,
        Box::new(move |rt| {
            rt.run(async move { spawn_mix(&c1, &s1, 12, multi) })
                .unwrap()
        }),
    );
    // B: a run that wakes, yields a little, and returns with tasks still queued.
    let (c2, s2) = (c.clone(), slot.clone());
    let rt = (b.mover)(
        rt,
        Box::new(move |rt| {
            rt.run(async move {
                wake_all(&s2);
                for _ in 0..(i % 3) {
                    runner::yield_now().await;
                }
                spawn_mix(&c2, &s2, 8, multi);
            })
            .unwrap()
        }),
    );
    // C: a run that panics midway, after spawning and waking.
    let (c3, s3) = (c.clone(), slot.clone());
    let rt = (b.mover)(
        rt,
        Box::new(move |rt| {
            let r = catch_unwind(AssertUnwindSafe(|| {
                rt.run(async move {
                    spawn_mix(&c3, &s3, 8, multi);
                    if i % 2 == 0 {
                        runner::yield_now().await;
                    }
                    wake_all(&s3);
                    spawn_mix(&c3, &s3, 4, multi);
                    panic!("main panics");
                })
            }));
            let p = r.expect_err("the main future panicked");
            assert_eq!(p.downcast_ref::<&str>(), Some(&"main panics"));
        }),
    );
    // D: close.
    phase("close");
    let c4 = c.clone();
    let _rt = (b.mover)(
        rt,
        Box::new(move |rt| {
            let done_before = Counts::get(&c4.done);
            let report = rt.close().unwrap();
            let done_after = Counts::get(&c4.done);
            let spawned = Counts::get(&c4.spawned);
            assert_eq!(report.panicked, 0, "{name}: {i}: {report}");
            if !multi {
                // Tasks progress only inside run and close: what was not done before close is
                // in the report, each once.
                assert_eq!(
                    report.finished,
                    done_after - done_before,
                    "{name}: hops {i}: {report}"
                );
                assert_eq!(
                    report.finished + report.cancelled,
                    spawned - done_before,
                    "{name}: hops {i}: {report}, {spawned} spawned, {done_before} done before"
                );
            }
            // On multi-thread loops a task can return `Ready` before close begins and leave the
            // registry after: only the sum below is exact there.
            assert_eq!(
                done_after + report.cancelled,
                spawned,
                "{name}: hops {i}: {report}"
            );
        }),
    );
    settle(&c);
    assert_clean(name, "hops", i, &c);
}

fn hops<L: EventLoop>(b: Backend<L>) {
    for i in 0..iters(600) {
        beat(i);
        let t = Instant::now();
        hops_iteration(&b, i);
        if std::env::var_os("RACES_TRACE").is_some() {
            eprintln!("hops {i}: {:?}", t.elapsed());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Slow wakers on other threads, while the main future is polled and while close runs.

fn slow_wakers_iteration<L: EventLoop>(b: &Backend<L>, i: usize) {
    let name = b.kit.name();
    let c = Arc::new(Counts::default());
    let slot: Arc<Mutex<Vec<Waker>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let wakers: Vec<_> = (0..2)
        .map(|t| {
            let (slot, stop) = (slot.clone(), stop.clone());
            thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let w = slot.lock().unwrap().pop();
                    match w {
                        Some(w) => {
                            let clone = w.clone();
                            match (n + t) % 4 {
                                0 => thread::sleep(Duration::from_micros(20)),
                                1 => thread::yield_now(),
                                _ => {}
                            }
                            clone.wake_by_ref();
                            // The original dropped here, the clone after another yield.
                            drop(w);
                            if n % 3 == 0 {
                                thread::yield_now();
                            }
                            drop(clone);
                        }
                        None => thread::yield_now(),
                    }
                    n += 1;
                }
            })
        })
        .collect();

    phase("run");
    let mut rt = b.runner();
    let (c1, s1) = (c.clone(), slot.clone());
    let forever = 6usize;
    let late = 6usize;
    rt.run(async move {
        for j in 0..24 {
            drop(spawn_tracked(&c1, wait_wakes(s1.clone(), 1 + j % 5)));
        }
        for _ in 0..forever {
            drop(spawn_tracked(&c1, wait_wakes(s1.clone(), usize::MAX)));
        }
        // Every finite task ends: the main future is polled meanwhile, and wakes some itself.
        while Counts::get(&c1.done) < 24 {
            if let Some(w) = s1.lock().unwrap().pop() {
                w.wake();
            }
            runner::yield_now().await;
        }
        // Left for close: woken by the other threads as close runs.
        for j in 0..late {
            drop(spawn_tracked(&c1, wait_wakes(s1.clone(), 1 + j % 3)));
        }
    })
    .unwrap();
    if i % 2 == 0 {
        thread::yield_now();
    }
    let done_before = Counts::get(&c.done);
    phase("close");
    let report = rt.close().unwrap();
    let done_after = Counts::get(&c.done);
    stop.store(true, Ordering::SeqCst);
    for w in wakers {
        w.join().unwrap();
    }
    // Wakers still held after close: waking them must do nothing.
    wake_all(&slot);
    drop(rt);
    settle(&c);
    assert_eq!(report.panicked, 0, "{name}: slow wakers {i}: {report}");
    assert_eq!(
        done_after + report.cancelled,
        24 + forever + late,
        "{name}: {i}: {report}"
    );
    if b.multi {
        assert!(
            report.cancelled >= forever,
            "{name}: slow wakers {i}: {report}"
        );
    } else {
        assert_eq!(
            report.finished,
            done_after - done_before,
            "{name}: slow wakers {i}: {report}"
        );
        assert_eq!(
            report.finished + report.cancelled,
            forever + late - (done_before - 24),
            "{name}: slow wakers {i}: {report}"
        );
    }
    assert_clean(name, "slow wakers", i, &c);
}

fn slow_wakers<L: EventLoop>(b: Backend<L>) {
    for i in 0..iters(400) {
        beat(i);
        slow_wakers_iteration(&b, i);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Close racing handle spawns, JoinHandles aborted and dropped on another thread.

fn close_races_iteration<L: EventLoop>(b: &Backend<L>, i: usize) {
    let name = b.kit.name();
    let c = Arc::new(Counts::default());
    let mut rt = b.runner();
    let handle = rt.handle().unwrap();
    // Some runs before, so the loop has run (and, on multi-thread loops, runs between).
    if i % 2 == 0 {
        let c0 = c.clone();
        rt.run(async move {
            for _ in 0..4 {
                drop(spawn_tracked(&c0, async { runner::yield_now().await }));
            }
        })
        .unwrap();
    }
    // Tasks whose end never depends on abort: pending forever, with a panicking destructor.
    let panickers = Arc::new(AtomicUsize::new(0));
    let aborts = Arc::new(AtomicUsize::new(0));
    let (jtx, jrx) = mpsc::channel::<runner::JoinHandle<()>>();
    let start = Arc::new(std::sync::Barrier::new(3));
    let spawners: Vec<_> = (0..2)
        .map(|t| {
            let (h, c, p, jtx, start) = (
                handle.clone(),
                c.clone(),
                panickers.clone(),
                jtx.clone(),
                start.clone(),
            );
            thread::spawn(move || {
                start.wait();
                for n in 0..120usize {
                    let on_drop = match (n + t) % 6 {
                        0 => OnDrop::Spawns,
                        1 => OnDrop::Panics,
                        _ => OnDrop::Nothing,
                    };
                    let quick = (n + t) % 3 == 2;
                    c.spawned.fetch_add(1, Ordering::SeqCst);
                    let fut = track(&c, on_drop, None, async move {
                        if quick {
                            runner::yield_now().await;
                        } else {
                            pending::<()>().await;
                        }
                    });
                    match h.spawn(fut) {
                        Ok(j) => {
                            if on_drop == OnDrop::Panics {
                                // Never aborted: ends at close, as panicked.
                                p.fetch_add(1, Ordering::SeqCst);
                                drop(j);
                            } else if jtx.send(j).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            assert!(matches!(e, RunError::Closed), "{e}");
                            c.spawned.fetch_sub(1, Ordering::SeqCst);
                            c.drops.fetch_sub(1, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    drop(jtx);
    // Aborts some, drops others, keeps the rest to await after close.
    let ab = aborts.clone();
    let aborter = thread::spawn(move || {
        let mut kept = Vec::new();
        for (n, j) in jrx.into_iter().enumerate() {
            match n % 3 {
                0 => {
                    j.abort();
                    ab.fetch_add(1, Ordering::SeqCst);
                    drop(j);
                }
                1 => drop(j),
                _ => {
                    if n % 2 == 0 {
                        j.abort();
                        ab.fetch_add(1, Ordering::SeqCst);
                    }
                    kept.push(j);
                }
            }
        }
        kept
    });
    start.wait();
    if i % 3 == 0 {
        thread::yield_now();
    }
    phase("close");
    let report = rt.close().unwrap();
    for s in spawners {
        s.join().unwrap();
    }
    let kept = aborter.join().unwrap();
    // Every kept handle ends: finished or cancelled, never hanging.
    for j in kept {
        match futures_lite::future::block_on(j) {
            Ok(()) => {}
            Err(e) => assert!(e.is_cancelled(), "{name}: {i}: {e}"),
        }
    }
    drop(rt);
    settle(&c);
    let accepted = Counts::get(&c.spawned) + Counts::get(&c.children);
    let total = report.finished + report.cancelled + report.panicked;
    assert_eq!(
        report.panicked,
        panickers.load(Ordering::SeqCst),
        "{name}: close races {i}: {report}"
    );
    assert_eq!(
        report.panicked,
        Counts::get(&c.panics),
        "{name}: close races {i}: {report}"
    );
    assert!(
        total <= accepted,
        "{name}: close races {i}: {report}, {accepted} accepted"
    );
    if !b.multi {
        // Handle spawns and aborts are queued for the loop, which runs only in close: every
        // task ends in it, and is in the report once.
        assert_eq!(
            total, accepted,
            "{name}: close races {i}: {report}, {accepted} accepted"
        );
        assert_eq!(
            report.finished,
            Counts::get(&c.done),
            "{name}: close races {i}: {report}"
        );
    }
    assert_clean(name, "close races", i, &c);
}

fn close_races<L: EventLoop>(b: Backend<L>) {
    for i in 0..iters(400) {
        beat(i);
        close_races_iteration(&b, i);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A runner run inside a blocking job, and inside a task, of another runner.

fn nested_iteration<L: EventLoop>(b: &Backend<L>, inner: &Arc<Kit<L>>, i: usize) {
    let name = b.kit.name();
    let c = Arc::new(Counts::default());
    let slot: Arc<Mutex<Vec<Waker>>> = Arc::new(Mutex::new(Vec::new()));
    let mut rt = b.runner();
    let (c1, s1, inner) = (c.clone(), slot.clone(), inner.clone());
    let nested_ok = rt
        .run(async move {
            // Cells of the outer runner, waiting for a wake from the inner runner's run.
            let outer: Vec<_> = (0..6)
                .map(|_| spawn_tracked(&c1, wait_wakes(s1.clone(), 1)))
                .collect();
            // Every outer cell has been polled once and left its waker, before the inner runner
            // wakes them: on a multi-thread loop a worker may reach a cell only later, and a
            // cell first polled after the inner runner's wakes would wait forever.
            while s1.lock().unwrap().len() < outer.len() {
                runner::yield_now().await;
            }
            // Inside a task of this runner: another runner's run is refused, its future unpolled.
            let inner_kit = inner.clone();
            let refused = spawn_tracked(&c1, async move {
                let mut other = runner::builder()
                    .loop_factory(inner_kit.factory())
                    .exception_handler(|_| {})
                    .build();
                let polled = Arc::new(AtomicBool::new(false));
                let p = polled.clone();
                let r = other.run(async move { p.store(true, Ordering::SeqCst) });
                assert!(matches!(r, Err(RunError::NestedRun)), "{r:?}");
                assert!(!polled.load(Ordering::SeqCst));
                // Dropped here, inside a running loop: abandoned, nothing to cancel.
            });
            refused.await.unwrap();
            // Inside a blocking job: a runner of its own, which wakes the outer cells from its
            // tasks and its main future.
            let (c2, s2) = (c1.clone(), s1.clone());
            let job = runner::spawn_blocking(move || {
                let mut other = runner::builder()
                    .loop_factory(inner.factory())
                    .exception_handler(|_| {})
                    .build();
                let (c3, s4) = (c2.clone(), s2.clone());
                let r = other.run(async move {
                    let s3 = s2.clone();
                    let t = spawn_tracked(&c3, async move {
                        // The first half woken from a task of the inner runner.
                        let ws: Vec<Waker> = {
                            let mut g = s3.lock().unwrap();
                            let k = g.len() / 2;
                            g.drain(..k).collect()
                        };
                        for w in ws {
                            w.wake();
                        }
                        runner::yield_now().await;
                    });
                    t.await.unwrap();
                    wake_all(&s2);
                });
                let report = other.close().unwrap();
                (r.is_ok(), report, s4)
            });
            let (ok, report, s2) = job.await.unwrap();
            if !ok {
                // The blocking job's thread was inside the backend's runtime: nothing woke the
                // cells.
                wake_all(&s2);
            } else {
                assert_eq!(
                    report.finished + report.cancelled + report.panicked,
                    0,
                    "{report}"
                );
            }
            for j in outer {
                j.await.unwrap();
            }
            ok
        })
        .unwrap();
    phase("close");
    let report = rt.close().unwrap();
    assert_eq!(
        report.finished + report.cancelled + report.panicked,
        0,
        "{name}: nested {i} (ran: {nested_ok}): {report}"
    );
    let expected = 6 + 1 + usize::from(nested_ok);
    assert_eq!(Counts::get(&c.spawned), expected, "{name}: nested {i}");
    assert_eq!(Counts::get(&c.done), expected, "{name}: nested {i}");
    assert_clean(name, "nested", i, &c);
}

fn nested<L: EventLoop>(b: Backend<L>) {
    let inner = Arc::new(Kit::new(b.kit.name(), {
        let f = std::sync::Mutex::new(b.kit.factory());
        move || (f.lock().unwrap())()
    }));
    for i in 0..iters(200) {
        beat(i);
        nested_iteration(&b, &inner, i);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Many runners made and dropped: closed, dropped elsewhere, abandoned inside another run.

fn churn<L: EventLoop>(b: Backend<L>) {
    let name = b.kit.name();
    let mut host = b.runner();
    for i in 0..iters(800) {
        beat(i);
        let c = Arc::new(Counts::default());
        let held = Arc::new(());
        let weak: Weak<()> = Arc::downgrade(&held);
        let slot: Arc<Mutex<Vec<Waker>>> = Arc::new(Mutex::new(Vec::new()));
        let mut rt = b.runner();
        let (c1, s1, h1) = (c.clone(), slot.clone(), held.clone());
        rt.run(async move {
            for j in 0..6 {
                c1.spawned.fetch_add(1, Ordering::SeqCst);
                let fut = track(
                    &c1,
                    OnDrop::Nothing,
                    Some(h1.clone()),
                    wait_wakes(s1.clone(), if j % 2 == 0 { usize::MAX } else { 2 }),
                );
                drop(runner::spawn(fut));
            }
            // Polled once (on current-thread loops), then woken and left queued as the run
            // returns.
            runner::yield_now().await;
            wake_all(&s1);
        })
        .unwrap();
        drop(held);
        match i % 3 {
            0 => {
                phase("close");
                let report = rt.close().unwrap();
                assert_eq!(
                    report.cancelled + Counts::get(&c.done),
                    6,
                    "{name}: churn {i}: {report}"
                );
                drop(rt);
            }
            1 => {
                // Dropped (closing) on another thread where the runner can move.
                drop((b.mover)(rt, Box::new(|_| {})));
            }
            _ => {
                // Abandoned: dropped inside another runner's run, where its loop cannot run.
                let mut cell = Some(rt);
                let cell = &mut cell;
                host.run(async move {
                    drop(cell.take());
                })
                .unwrap();
            }
        }
        // Wakers outliving their runner do nothing.
        wake_all(&slot);
        settle(&c);
        assert_clean(name, "churn", i, &c);
        let until = Instant::now() + Duration::from_secs(10);
        while weak.strong_count() > 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            weak.strong_count(),
            0,
            "{name}: churn {i}: a runner-held object outlived its runner"
        );
    }
    let report = host.close().unwrap();
    assert_eq!(report.finished + report.cancelled + report.panicked, 0);
}

// ---------------------------------------------------------------------------------------------
// The minimal case of the multi-thread hang: tasks that yield a while and finish, left running
// as the run returns, and close at once. On tokio and smol multi-thread loops close never
// returns, within a few thousand iterations (often within a few hundred).

fn close_yielders<L: EventLoop>(b: Backend<L>) {
    let name = b.kit.name();
    for i in 0..iters(3000) {
        beat(i);
        let c = Arc::new(Counts::default());
        let mut rt = b.runner();
        let c1 = c.clone();
        rt.run(async move {
            for j in 0..8usize {
                drop(spawn_tracked(&c1, async move {
                    for _ in 0..(j * 20) {
                        runner::yield_now().await;
                    }
                }));
            }
        })
        .unwrap();
        let done_before = Counts::get(&c.done);
        phase("close");
        let report = rt.close().unwrap();
        settle(&c);
        assert_eq!(
            report.cancelled + Counts::get(&c.done),
            8,
            "{name}: yielders {i}: {report}"
        );
        if !b.multi {
            assert_eq!(
                report.finished,
                Counts::get(&c.done) - done_before,
                "{name}: {i}: {report}"
            );
        }
        assert_clean(name, "yielders", i, &c);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The main future waits on tasks woken only from another thread: nothing else wakes it (no
// yield loop), so a wake the own queue's handshake loses is a hang, which the watchdog reports.

/// Wakes what `slot` holds, from its own thread, each wake after a pause that varies (none, a
/// spin, a yield, a sleep), so that the wakes land before, during and after the loop thread's
/// poll of the main future and its registration of the waker; until `stop`.
fn remote_waker(slot: Arc<Mutex<Vec<Waker>>>, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let w = slot.lock().unwrap().pop();
            let Some(w) = w else {
                std::hint::spin_loop();
                continue;
            };
            match n % 5 {
                0 => {}
                1 => (0..200).for_each(|_| std::hint::spin_loop()),
                2 => thread::yield_now(),
                3 => thread::sleep(Duration::from_micros(5)),
                _ => (0..2000).for_each(|_| std::hint::spin_loop()),
            }
            w.wake();
            n += 1;
        }
    })
}

fn remote_wakes<L: EventLoop>(b: Backend<L>) {
    let name = b.kit.name();
    let slot: Arc<Mutex<Vec<Waker>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let waker = remote_waker(slot.clone(), stop.clone());
    let c = Arc::new(Counts::default());
    // Runs on fresh runners and on runners run many times (a run's first pending poll stores
    // the main future's waker; later ones on tokio and smol often find it stored).
    let per_runner = 25;
    let mut runs = 0;
    for r in 0..iters(80) {
        let mut rt = b.runner();
        for k in 0..per_runner {
            let i = r * per_runner + k;
            beat(i);
            phase("run");
            let (c1, s1) = (c.clone(), slot.clone());
            let joined = rt
                .run(async move {
                    let tasks = 1 + i % 3;
                    let hs: Vec<_> = (0..tasks)
                        .map(|t| spawn_tracked(&c1, wait_wakes(s1.clone(), 1 + (i + t) % 2)))
                        .collect();
                    let mut joined = 0;
                    for h in hs {
                        h.await.unwrap();
                        joined += 1;
                    }
                    joined
                })
                .unwrap();
            assert_eq!(joined, 1 + i % 3, "{name}: remote wakes {i}");
            runs += 1;
        }
        phase("close");
        let report = rt.close().unwrap();
        assert_eq!(
            report.finished + report.cancelled + report.panicked,
            0,
            "{name}: remote wakes {r}: every task was joined before close: {report}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    waker.join().unwrap();
    settle(&c);
    let expected: usize = (0..runs).map(|i| 1 + i % 3).sum();
    assert_eq!(Counts::get(&c.spawned), expected, "{name}: remote wakes");
    assert_eq!(Counts::get(&c.done), expected, "{name}: remote wakes");
    assert_clean(name, "remote wakes", runs, &c);
}

// ---------------------------------------------------------------------------------------------
// The backends.

macro_rules! backend_tests {
    ($modname:ident, $cfg:meta, $name:literal, $factory:expr, multi = $multi:expr, mover = $mover:expr,
     hops = [$($hops:meta)*], slow = [$($slow:meta)*], close = [$($close:meta)*],
     yielders = [$($yielders:meta)*], nested = [$($nested:meta)*]) => {
        #[$cfg]
        mod $modname {
            use super::*;

            fn backend() -> Backend<impl EventLoop> {
                Backend {
                    kit: Kit::new($name, $factory).multi_thread($multi),
                    mover: $mover,
                    multi: $multi,
                }
            }

            #[test]
            $(#[$hops])*
            fn hops() {
                watchdog(format!("{}: hops", $name), || super::hops(backend()));
            }

            #[test]
            $(#[$slow])*
            fn slow_wakers() {
                watchdog(format!("{}: slow wakers", $name), || {
                    super::slow_wakers(backend())
                });
            }

            #[test]
            $(#[$close])*
            fn close_races() {
                watchdog(format!("{}: close races", $name), || {
                    super::close_races(backend())
                });
            }

            #[test]
            $(#[$yielders])*
            fn close_yielders() {
                watchdog(format!("{}: close yielders", $name), || {
                    super::close_yielders(backend())
                });
            }

            #[test]
            $(#[$nested])*
            fn nested() {
                watchdog(format!("{}: nested", $name), || super::nested(backend()));
            }

            #[test]
            fn churn() {
                watchdog(format!("{}: churn", $name), || super::churn(backend()));
            }

            #[test]
            fn remote_wakes() {
                watchdog(format!("{}: remote wakes", $name), || {
                    super::remote_wakes(backend())
                });
            }
        }
    };
}

backend_tests!(
    tokio_current,
    cfg(feature = "tokio"),
    "tokio_current",
    runner::tokio::TokioLoop::current_thread,
    multi = false,
    mover = send_mover,
    hops = [],
    slow = [],
    close = [],
    yielders = [],
    nested = []
);
backend_tests!(
    tokio_multi,
    cfg(feature = "tokio"),
    "tokio_multi",
    || runner::tokio::TokioLoop::multi_thread(2),
    multi = true,
    mover = send_mover,
    hops = [],
    slow = [],
    close = [],
    yielders = [],
    nested = []
);
backend_tests!(
    smol_local,
    cfg(feature = "smol"),
    "smol_local",
    runner::smol::SmolLoop::local,
    multi = false,
    mover = send_mover,
    hops = [],
    slow = [],
    close = [],
    yielders = [],
    nested = []
);
backend_tests!(
    smol_multi,
    cfg(feature = "smol"),
    "smol_multi",
    || runner::smol::SmolLoop::multi_thread(2),
    multi = true,
    mover = send_mover,
    hops = [],
    slow = [],
    close = [],
    yielders = [],
    nested = []
);
backend_tests!(
    glommio,
    cfg(all(feature = "glommio", target_os = "linux")),
    "glommio",
    runner::glommio::GlommioLoop::new,
    multi = false,
    mover = same_thread,
    hops = [],
    slow = [],
    close = [],
    yielders = [],
    nested = []
);
backend_tests!(
    test_loop,
    cfg(all()),
    "test_loop",
    runner::testing::TestLoop::new,
    multi = false,
    mover = send_mover,
    hops = [],
    slow = [],
    close = [],
    yielders = [],
    nested = []
);
