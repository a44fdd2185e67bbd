//! A small event loop written by hand over `async-task`: what a user writes to run the runner on
//! a loop of their own (Python's `loop_factory`, the way people swap in uvloop).
//!
//! One run queue of `async_task::Runnable`s, drained by `block_on` on the runner's thread; timers
//! from async-io; blocking jobs on plain threads. Local (`!Send`) tasks are supported too, because
//! they only ever run on the thread that called `block_on`.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use async_task::Runnable;
use runner::{BlockingJob, BoxFuture, EventLoop, LocalBoxFuture, LocalSpawner, Spawner};

/// The loop. `Send`, so `Runner<MiniLoop>` is `Send` too.
#[derive(Clone)]
pub(crate) struct MiniLoop {
    queue: Arc<Queue>,
}

struct Queue {
    runnables: Mutex<VecDeque<Runnable>>,
    runner: Mutex<Option<Thread>>,
    notified: AtomicBool,
}

impl Queue {
    fn push(&self, r: Runnable) {
        self.runnables.lock().unwrap().push_back(r);
        self.notify();
    }

    fn notify(&self) {
        self.notified.store(true, Ordering::Release);
        if let Some(t) = self.runner.lock().unwrap().as_ref() {
            t.unpark();
        }
    }
}

impl Wake for Queue {
    fn wake(self: Arc<Self>) {
        self.notify();
    }
}

impl MiniLoop {
    /// A new loop; never fails, but returns `io::Result` to be a loop factory as it is.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(MiniLoop {
            queue: Arc::new(Queue {
                runnables: Mutex::new(VecDeque::new()),
                runner: Mutex::new(None),
                notified: AtomicBool::new(false),
            }),
        })
    }
}

impl EventLoop for MiniLoop {
    fn default_loop() -> io::Result<Self> {
        MiniLoop::new()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let q = &self.queue;
        let prev = q.runner.lock().unwrap().replace(thread::current());
        let waker = Waker::from(q.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        let out = loop {
            q.notified.store(false, Ordering::Release);
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                break v;
            }
            // Run what is queued now; tasks woken meanwhile wait for the next turn, so the main
            // future is polled between batches.
            let batch = q.runnables.lock().unwrap().len();
            for _ in 0..batch {
                let Some(r) = q.runnables.lock().unwrap().pop_front() else {
                    break;
                };
                r.run();
            }
            if !q.notified.load(Ordering::Acquire) && q.runnables.lock().unwrap().is_empty() {
                thread::park();
            }
        };
        *q.runner.lock().unwrap() = prev;
        out
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        Arc::new(self.clone())
    }

    fn local_spawner(&self) -> Option<Rc<dyn LocalSpawner>> {
        Some(Rc::new(self.clone()))
    }
}

// Only the required methods: `spawn_task` keeps its default, which boxes the runner's task and
// calls `spawn` (used only by a loop that reports itself multi-thread: on a current-thread loop
// such as this one, the runner runs its `Send` tasks on its own queue inside `block_on`). (`async_task::spawn` is generic over the future, so overriding it to call
// `async_task::spawn(task, ..)` as `spawn` does would save that box.)
impl Spawner for MiniLoop {
    fn spawn(&self, task: BoxFuture) {
        let q = self.queue.clone();
        let (runnable, task) = async_task::spawn(task, move |r| q.push(r));
        task.detach();
        runnable.schedule();
    }

    fn spawn_blocking(&self, job: BlockingJob) {
        thread::spawn(job);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }
}

impl LocalSpawner for MiniLoop {
    fn spawn_local(&self, task: LocalBoxFuture) {
        let q = self.queue.clone();
        let (runnable, task) = async_task::spawn_local(task, move |r| q.push(r));
        task.detach();
        runnable.schedule();
    }
}
