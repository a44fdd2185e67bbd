use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::marker::PhantomData;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{RawWakerVTable, Waker};
use std::thread::{self, ThreadId};
use std::time::Instant;

use glommio::{LocalExecutor, LocalExecutorBuilder, Placement, TaskQueueHandle};
use runner_core::{
    BlockingJob, BoxFuture, EventLoop, LocalBoxFuture, LocalSpawner, RawTask, Spawner,
};

/// Registered I/O memory per executor; see the crate docs.
const IO_MEMORY: usize = 512 << 10;

thread_local! {
    static EXECUTOR: RefCell<Option<Rc<LocalExecutor>>> = const { RefCell::new(None) };
    /// Set while one of our loops runs the executor on this thread.
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    /// The local spawner every loop on this thread lends its runs: no allocation per loop.
    static LOCAL_SPAWNER: Rc<dyn LocalSpawner> = Rc::new(GlommioLocalSpawner);
    /// How many `GlommioLoop`s this thread has: the last one to go empties the injector.
    static LOOPS: Cell<usize> = const { Cell::new(0) };
    /// The spawner every loop on this thread hands out (see `Injector`).
    static INJECTOR: Arc<Injector> = Arc::new(Injector {
        home: thread::current().id(),
        queue: Mutex::new(Queue {
            tasks: VecDeque::new(),
            waker: None,
        }),
        pending: AtomicBool::new(false),
    });
}

fn thread_executor() -> io::Result<Rc<LocalExecutor>> {
    EXECUTOR.with(|e| {
        if let Some(ex) = e.borrow().as_ref() {
            return Ok(ex.clone());
        }
        let ex = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(IO_MEMORY)
            .make()
            .map_err(|err| io::Error::other(format!("glommio executor: {err}")))?;
        let ex = Rc::new(ex);
        *e.borrow_mut() = Some(ex.clone());
        Ok(ex)
    })
}

/// A glommio `LocalExecutor` as a runner's loop: thread-per-core, io_uring based, `!Send`.
///
/// # Examples
///
/// ```
/// # mod runner { pub use runner_core::*; pub mod glommio { pub use runner_glommio::GlommioLoop; } }
/// use runner::glommio::GlommioLoop;
///
/// let mut rt = runner::Runner::<GlommioLoop>::default();
/// assert_eq!(rt.run(async { 40 + 2 }).unwrap(), 42);
/// ```
pub struct GlommioLoop {
    ex: Rc<LocalExecutor>,
    inject: Arc<Injector>,
    /// The thread's one local spawner, lent to every run: no allocation per loop or run.
    local: Rc<dyn LocalSpawner>,
    _not_send: PhantomData<*const ()>,
}

/// The loops' spawner: spawns from the loop's thread go straight into its executor, others are
/// queued here for the thread's next poll of a main task. One per thread, shared by all its
/// loops as they share the thread's executor: a task spawned for one loop while another runs
/// on the thread would run in that run all the same (a closed loop's spawns are refused before
/// they get here). It saves each loop an allocation and its free.
struct Injector {
    home: ThreadId,
    queue: Mutex<Queue>,
    /// Set after a push, cleared by the drain that takes it: the loop locks the queue only when
    /// something was pushed since its last drain, not on every poll of its main task.
    pending: AtomicBool,
}

/// What the loop's thread and the injecting threads share, under one lock.
struct Queue {
    tasks: VecDeque<Injected>,
    /// The waker of the loop's main task (one per `block_on`, dropped as it ends, inside the
    /// executor: see `GlommioLoop::block_on`), stored when it changes and woken
    /// by reference, so that it stays stored: no atomic operation per poll of the main task (an
    /// `AtomicWaker` takes two per registration, and its `wake` empties it).
    waker: Option<Waker>,
}

/// A task spawned from another thread, as it was handed over: queued without a box of its own.
enum Injected {
    Boxed(BoxFuture),
    Task(RawTask),
}

impl GlommioLoop {
    /// A loop on this thread's glommio executor (made on first use; see the crate docs).
    ///
    /// # Errors
    ///
    /// When glommio cannot set up io_uring (old kernel, seccomp, or a memlock limit under
    /// 512 KiB).
    pub fn new() -> io::Result<Self> {
        let ex = thread_executor()?;
        LOOPS.with(|n| n.set(n.get() + 1));
        Ok(GlommioLoop {
            ex,
            inject: INJECTOR.with(Arc::clone),
            local: LOCAL_SPAWNER.with(Rc::clone),
            _not_send: PhantomData,
        })
    }
}

impl Injector {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the waker of the loop's main task; called once its main future returned `Pending`
    /// (and again if the waker changed). A push between the poll's drain and this store found
    /// no waker (or the one replaced) to wake: its flag is looked at here, after the store, and
    /// the main task woken to drain it. A push after the store takes the lock after it and
    /// finds the waker.
    #[cold]
    fn register(&self, waker: &Waker) {
        let old = self.lock().waker.replace(waker.clone());
        drop(old);
        if self.pending.load(Ordering::Relaxed) {
            waker.wake_by_ref();
        }
    }

    /// Drops the stored waker of the loop's main task: its `block_on` is over.
    fn forget_waker(&self) {
        let old = self.lock().waker.take();
        drop(old);
    }

    /// Drops the stored waker and every queued task, outside the lock: the thread's last loop
    /// is going (see `GlommioLoop`'s `Drop`).
    fn empty(&self) {
        let (left, waker) = {
            let mut queue = self.lock();
            // Under the lock, as a drain takes the queue.
            self.pending.store(false, Ordering::Relaxed);
            (std::mem::take(&mut queue.tasks), queue.waker.take())
        };
        drop(left);
        drop(waker);
    }

    /// Spawns what was queued so far. Takes the whole queue at once rather than popping until it
    /// is empty: threads that keep injecting must not keep the loop inside this call (close
    /// would never get polled). What arrives later wakes the loop's main task again.
    fn drain(&self) {
        // A push sets the flag under the lock before it reads the stored waker. One this swap
        // misses either reads the waker stored before it (under the same lock) and wakes the
        // main task to drain again, or comes before the waker is first stored, and `register`
        // finds its flag.
        // A load first: no read-modify-write at each poll of the main task when nothing was
        // pushed (a push's store is seen by the poll its wake causes, if not by this one).
        if !self.pending.load(Ordering::Relaxed) || !self.pending.swap(false, Ordering::Acquire) {
            return;
        }
        let batch = std::mem::take(&mut self.lock().tasks);
        for task in batch {
            match task {
                Injected::Boxed(task) => schedule_local(task),
                Injected::Task(task) => schedule_local(task),
            }
        }
    }
}

/// Queues `task` on this thread's executor. `glommio::spawn_local` polls a new task inline,
/// before returning, which the `EventLoop` contract forbids (a spawner that holds a lock or a
/// `RefCell` borrow the new task needs would deadlock or panic); spawning into a task queue
/// schedules it instead. The default queue always exists; were it missing, the task would be
/// dropped here, which ends it as cancelled rather than losing it.
fn schedule_local(task: impl Future<Output = ()> + 'static) {
    if let Ok(task) = glommio::spawn_local_into(task, TaskQueueHandle::default()) {
        drop(task.detach());
    }
}

impl EventLoop for GlommioLoop {
    fn default_loop() -> io::Result<Self> {
        Self::new()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        struct Running;
        impl Drop for Running {
            fn drop(&mut self) {
                RUNNING.with(|r| r.set(false));
            }
        }
        RUNNING.with(|r| r.set(true));
        let _running = Running;
        let inject = &*self.inject;
        self.ex.run(async move {
            let mut fut = pin!(fut);
            // The waker this run stored, by its data and vtable pointers: the main task's waker
            // does not change during a run, so it is stored once per run, not at every poll.
            // Only this thread replaces the stored waker, which keeps its task (and so the
            // pointers) alive meanwhile: equal pointers are the stored waker.
            let mut stored: Option<(*const (), *const RawWakerVTable)> = None;
            let out = poll_fn(|cx| {
                inject.drain();
                let poll = fut.as_mut().poll(cx);
                if poll.is_pending() {
                    // Stored only once the main future waits: a run whose future is ready at
                    // its first poll (a `create_close`, a `run_ready`) never needs waking.
                    let waker = cx.waker();
                    let now = (waker.data(), waker.vtable() as *const RawWakerVTable);
                    if stored != Some(now) {
                        inject.register(waker);
                        stored = Some(now);
                    }
                }
                poll
            })
            .await;
            // Let go of the stored waker here, inside the executor, where glommio drops a
            // waker of its own task by counting down. Dropped later, outside (by `shutdown` at
            // close, when no run replaces it), it is a foreign drop: glommio sends the task
            // over a channel to be woken and destroyed at the executor's next run, about 320
            // instructions of a glommio `create_close` and 4 % of its time. A push meanwhile
            // finds no waker, and the next run's first poll drains it (see `Injector::drain`).
            if stored.is_some() {
                inject.forget_waker();
            }
            out
        })
    }

    fn spawner(&self) -> Arc<dyn Spawner> {
        // The injector is the spawner: no allocation of its own.
        self.inject.clone()
    }

    fn local_spawner(&self) -> Option<Rc<dyn LocalSpawner>> {
        Some(self.local.clone())
    }

    fn is_nested() -> bool {
        RUNNING.with(Cell::get)
    }

    fn shutdown(self) {
        // See `Drop`: a loop shut down and one dropped unused end alike.
        drop(self);
    }
}

impl Drop for GlommioLoop {
    fn drop(&mut self) {
        // The thread's queue outlives its loops. Tasks of this loop's runner were all run or
        // dropped by its close (spawns from other threads after it sealed itself were refused);
        // what the queue holds is another loop's, for the thread's next run, unless this was
        // the thread's last loop: then whatever is left (the empty shells of a runner dropped
        // where it could not run) is dropped here, on the loop's thread, and with it the
        // cycle through their runner (a shell holds its runner, which holds the queue). So is
        // a waker stored by a `block_on` that unwound; not one of a run in progress (a loop
        // dropped inside another loop's run), whose pushes it wakes.
        let last = LOOPS.with(|n| {
            n.set(n.get() - 1);
            n.get() == 0
        });
        if RUNNING.with(Cell::get) {
            return;
        }
        if last {
            self.inject.empty();
        } else {
            self.inject.forget_waker();
        }
    }
}

impl fmt::Debug for GlommioLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlommioLoop").finish_non_exhaustive()
    }
}

/// The loop's spawner is its injector (`GlommioLoop::spawner`).
impl Injector {
    /// True on the loop's own thread while its executor runs: a task goes straight into it.
    fn at_home(&self) -> bool {
        RUNNING.with(Cell::get) && thread::current().id() == self.home
    }

    /// Queues `task` for the loop's thread, which spawns it when it next drains the queue.
    fn inject(&self, task: Injected) {
        let waker = {
            let mut queue = self.lock();
            queue.tasks.push_back(task);
            // Under the lock, before the waker is read: see `Injector::drain`.
            self.pending.store(true, Ordering::Release);
            queue.waker.clone()
        };
        // The loop's main task re-drains on every wake-up; a glommio waker may be woken from any
        // thread, which also unparks an executor sleeping in io_uring. Woken outside the lock.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Spawner for Injector {
    fn spawn(&self, task: BoxFuture) {
        if self.at_home() {
            schedule_local(task);
        } else {
            self.inject(Injected::Boxed(task));
        }
    }

    fn spawn_task(&self, task: RawTask) {
        // Stored in glommio's task (or the queue) as it is: no box.
        if self.at_home() {
            schedule_local(task);
        } else {
            self.inject(Injected::Task(task));
        }
    }

    fn spawn_blocking(&self, job: BlockingJob) {
        blocking::unblock(job).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }
}

struct GlommioLocalSpawner;

impl LocalSpawner for GlommioLocalSpawner {
    fn spawn_local(&self, task: LocalBoxFuture) {
        schedule_local(task);
    }
}

#[cfg(test)]
mod tests {
    //! The injector around the waker of the loop's main task, which each `block_on` drops as it
    //! ends: a task injected from another thread between two runs runs in the next one; one
    //! injected while a run waits wakes it.

    use std::future::{poll_fn, Future};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};
    use std::thread;

    use runner_core::EventLoop;

    use super::GlommioLoop;

    /// What an injected task tells the main future: how many ran, and the waker to wake.
    #[derive(Default)]
    struct Seen {
        ran: AtomicUsize,
        waker: Mutex<Option<Waker>>,
    }

    fn inject_from_another_thread(lp: &GlommioLoop, seen: &Arc<Seen>) {
        let spawner = lp.spawner();
        let seen = seen.clone();
        thread::spawn(move || {
            spawner.spawn(Box::pin(async move {
                seen.ran.fetch_add(1, Ordering::SeqCst);
                let waker = seen.waker.lock().unwrap().take();
                if let Some(w) = waker {
                    w.wake();
                }
            }));
        })
        .join()
        .unwrap();
    }

    /// Waits until `n` injected tasks have run: only their wakes (through the injector's wake
    /// of the main task, which drains the queue) end the wait.
    async fn until_ran(seen: &Seen, n: usize) {
        poll_fn(|cx| {
            *seen.waker.lock().unwrap() = Some(cx.waker().clone());
            if seen.ran.load(Ordering::SeqCst) >= n {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    #[test]
    fn injected_tasks_run_between_and_during_runs() {
        let lp = GlommioLoop::new().unwrap();
        let seen = Arc::new(Seen::default());
        // The main task's waker is stored by the first poll and dropped as the run ends.
        lp.block_on(async {});
        inject_from_another_thread(&lp, &seen);
        assert_eq!(seen.ran.load(Ordering::SeqCst), 0, "no run: nothing ran");
        lp.block_on(until_ran(&seen, 1));
        for n in 2..50 {
            lp.block_on(async {
                let mut wait = std::pin::pin!(until_ran(&seen, n));
                let mut injected = false;
                poll_fn(|cx| {
                    let polled = wait.as_mut().poll(cx);
                    if polled.is_pending() && !injected {
                        // Injected while this run waits: its push wakes the main task.
                        injected = true;
                        inject_from_another_thread(&lp, &seen);
                    }
                    polled
                })
                .await;
            });
        }
        assert_eq!(seen.ran.load(Ordering::SeqCst), 49);
        lp.shutdown();
    }

    /// The main task's waker is stored only after its first `Pending`: a push from another
    /// thread racing that first poll is drained all the same, whether it lands before the
    /// store (every third run waits in its first poll until the push is done), during it or
    /// after it. Each run waits for its one injected task, so a lost wake-up hangs the test.
    #[test]
    fn injections_racing_the_first_pending_poll_are_drained() {
        use std::sync::atomic::AtomicBool;

        let lp = GlommioLoop::new().unwrap();
        let seen = Arc::new(Seen::default());
        for n in 1..=2_000 {
            let spawner = lp.spawner();
            let task_seen = seen.clone();
            let pushed = Arc::new(AtomicBool::new(false));
            let pusher_pushed = pushed.clone();
            let pause = n % 7;
            let pusher = thread::spawn(move || {
                for _ in 0..pause * 50 {
                    std::hint::spin_loop();
                }
                spawner.spawn(Box::pin(async move {
                    task_seen.ran.fetch_add(1, Ordering::SeqCst);
                    let waker = task_seen.waker.lock().unwrap().take();
                    if let Some(w) = waker {
                        w.wake();
                    }
                }));
                pusher_pushed.store(true, Ordering::SeqCst);
            });
            lp.block_on(async {
                if n % 3 == 0 {
                    while !pushed.load(Ordering::SeqCst) {
                        std::hint::spin_loop();
                    }
                }
                until_ran(&seen, n).await;
            });
            pusher.join().unwrap();
        }
        assert_eq!(seen.ran.load(Ordering::SeqCst), 2_000);
        lp.shutdown();
    }

    /// Counts its drop: a task that was dropped, run or not.
    struct DropCount(Arc<AtomicUsize>);

    impl Drop for DropCount {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The thread's queue outlives its loops: a task injected for a loop that goes away while
    /// another loop of the thread lives runs in that loop's next run; once the thread's last
    /// loop goes, what is left in the queue is dropped with it, on the loop's thread.
    #[test]
    fn the_threads_last_loop_drops_what_is_left_in_its_queue() {
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let inject = |lp: &GlommioLoop| {
            let spawner = lp.spawner();
            let (ran, guard) = (ran.clone(), DropCount(dropped.clone()));
            thread::spawn(move || {
                spawner.spawn(Box::pin(async move {
                    let _guard = guard;
                    ran.fetch_add(1, Ordering::SeqCst);
                }));
            })
            .join()
            .unwrap();
        };

        let first = GlommioLoop::new().unwrap();
        let second = GlommioLoop::new().unwrap();
        inject(&first);
        first.shutdown();
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            0,
            "another loop lives: kept"
        );
        second.block_on(async {});
        assert_eq!(ran.load(Ordering::SeqCst), 1, "run in the other loop's run");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);

        inject(&second);
        second.shutdown();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the last loop went: not run");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            2,
            "but dropped, with the last loop"
        );

        // A later loop on the thread starts with an empty queue.
        let third = GlommioLoop::new().unwrap();
        third.block_on(async {});
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        third.shutdown();
    }
}
