//! A minimal event loop, std only: the reference implementation of the [`EventLoop`] contract,
//! and the loop this crate's own examples and tests run on.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::event_loop::{BlockingJob, BoxFuture, RawTask, Spawner};
use crate::lock::lock;
use crate::EventLoop;

/// A single-threaded loop in about a hundred lines: a run queue, a timer heap, and a thread per
/// blocking job. Tasks progress only inside [`block_on`](EventLoop::block_on). It is correct, not
/// fast; use a real backend for real work.
///
/// Its spawner stores each task as it gets it, a [`BoxFuture`] from
/// [`Spawner::spawn`] or a [`RawTask`] from [`Spawner::spawn_task`], so that the runner's tasks
/// cost no box.
#[derive(Debug)]
pub struct TestLoop {
    core: Arc<Core>,
}

struct Core {
    queue: Mutex<VecDeque<Arc<dyn Run>>>,
    timers: Mutex<BinaryHeap<Reverse<(Instant, u64)>>>,
    timer_wakers: Mutex<Vec<(u64, Waker)>>,
    next_timer: Mutex<u64>,
    runner: Mutex<Option<Thread>>,
    notified: AtomicBool,
}

/// A queued task: its future (a [`BoxFuture`] or the runner's [`RawTask`], stored as it is) and
/// whether it is in the run queue.
struct Cell<F> {
    fut: Mutex<Option<F>>,
    queued: AtomicBool,
    core: Arc<Core>,
}

/// A [`Cell`] whatever its future, as the run queue holds it.
trait Run: Send + Sync {
    /// Polls the task once with itself as the waker.
    fn run(self: Arc<Self>);
}

impl<F: Future<Output = ()> + Send + Unpin + 'static> Run for Cell<F> {
    fn run(self: Arc<Self>) {
        self.queued.store(false, Ordering::Release);
        let waker = Waker::from(self.clone());
        let mut slot = lock(&self.fut);
        if let Some(f) = slot.as_mut() {
            if Pin::new(f)
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                *slot = None;
            }
        }
    }
}

impl<F: Future<Output = ()> + Send + Unpin + 'static> Wake for Cell<F> {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.core.queue).push_back(self.clone());
            self.core.notify();
        }
    }
}

struct Notify(Arc<Core>);

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.0.notify();
    }
}

impl Core {
    fn notify(&self) {
        self.notified.store(true, Ordering::Release);
        if let Some(t) = lock(&self.runner).as_ref() {
            t.unpark();
        }
    }

    /// Wakes the timers that are due.
    fn fire_timers(&self) {
        let now = Instant::now();
        let mut heap = lock(&self.timers);
        while let Some(Reverse((at, id))) = heap.peek().copied() {
            if at > now {
                return;
            }
            heap.pop();
            let mut wakers = lock(&self.timer_wakers);
            if let Some(i) = wakers.iter().position(|(k, _)| *k == id) {
                wakers.swap_remove(i).1.wake();
            }
        }
    }
}

impl TestLoop {
    /// A new loop. Never fails; returns `io::Result` to be a [`LoopFactory`](crate::LoopFactory)
    /// as it is.
    pub fn new() -> io::Result<Self> {
        Ok(TestLoop {
            core: Arc::new(Core {
                queue: Mutex::new(VecDeque::new()),
                timers: Mutex::new(BinaryHeap::new()),
                timer_wakers: Mutex::new(Vec::new()),
                next_timer: Mutex::new(0),
                runner: Mutex::new(None),
                notified: AtomicBool::new(false),
            }),
        })
    }
}

impl EventLoop for TestLoop {
    fn default_loop() -> io::Result<Self> {
        TestLoop::new()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let core = &self.core;
        let prev = lock(&core.runner).replace(thread::current());
        let waker = Waker::from(Arc::new(Notify(core.clone())));
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        let out = loop {
            core.notified.store(false, Ordering::Release);
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                break v;
            }
            core.fire_timers();
            let batch: Vec<_> = lock(&core.queue).drain(..).collect();
            for cell in batch {
                cell.run();
            }
            if !core.notified.load(Ordering::Acquire) && lock(&core.queue).is_empty() {
                // The next deadline after the polls, so a timer made by one of them counts.
                let next = lock(&core.timers).peek().map(|Reverse((at, _))| *at);
                match next {
                    Some(at) => thread::park_timeout(at.saturating_duration_since(Instant::now())),
                    None => thread::park(),
                }
            }
        };
        *lock(&core.runner) = prev;
        out
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        Arc::new(TestSpawner {
            core: self.core.clone(),
        })
    }
}

struct TestSpawner {
    core: Arc<Core>,
}

impl TestSpawner {
    /// Queues `fut` in a cell of its own, stored as it is.
    fn queue<F: Future<Output = ()> + Send + Unpin + 'static>(&self, fut: F) {
        Waker::from(Arc::new(Cell {
            fut: Mutex::new(Some(fut)),
            queued: AtomicBool::new(false),
            core: self.core.clone(),
        }))
        .wake();
    }
}

impl Spawner for TestSpawner {
    fn spawn(&self, task: BoxFuture) {
        self.queue(task);
    }

    fn spawn_task(&self, task: RawTask) {
        self.queue(task);
    }

    fn spawn_blocking(&self, job: BlockingJob) {
        thread::spawn(job);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let core = self.core.clone();
        let id = {
            let mut n = lock(&core.next_timer);
            *n += 1;
            *n
        };
        lock(&core.timers).push(Reverse((deadline, id)));
        // A timer made on another thread may be earlier than the deadline the loop parks for.
        let on_loop = lock(&core.runner)
            .as_ref()
            .is_some_and(|t| t.id() == thread::current().id());
        if !on_loop {
            core.notify();
        }
        Box::pin(std::future::poll_fn(move |cx| {
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            let mut wakers = lock(&core.timer_wakers);
            match wakers.iter_mut().find(|(k, _)| *k == id) {
                Some((_, w)) => w.clone_from(cx.waker()),
                None => wakers.push((id, cx.waker().clone())),
            }
            // No notify: the loop parks until the earliest deadline in the heap, read after
            // its polls. Notifying here made every poll of a pending sleep wake the loop, which
            // then spun until the deadline.
            drop(wakers);
            Poll::Pending
        }))
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

// The boxed futures are polled behind a mutex only by the loop's thread; the `Pin` is stable
// because the box never moves its contents.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Pin<Box<dyn Future<Output = ()> + Send>>>();
};

/// Counts its drops into a shared counter: what the engine's own tests hang on futures to see
/// them dropped exactly once.
#[cfg(test)]
pub(crate) struct Count(pub(crate) std::sync::Arc<std::sync::atomic::AtomicUsize>);

#[cfg(test)]
impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
