//! A loom model of close's in-place cancel against a poll, or a drop, of the backend's task: the
//! state word's `RUNNING`/`ABORTED`/`SHELL`/`COMPLETE` bits guarding the future, the waker
//! registered only by a poll that stays pending, and the runner's shell count, as `Cell::drive`,
//! `Cell::release` and `TaskRef::cancel_now` (harness.rs) and `Header::shell_done` (cell.rs) use
//! them. The future is a `loom::cell::UnsafeCell`, so loom also checks that no two of them ever
//! touch it at once.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p runner-core --lib --release task::loom
//! ```

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::cell::{ABORTED, COMPLETE, RUNNING, SHELL};

struct Model {
    state: AtomicU8,
    /// `Cell::run`: whether the future is still there.
    run: UnsafeCell<bool>,
    /// `Shared::shells`.
    shells: AtomicUsize,
    /// The backend's waker was registered (`Header::driver`).
    registered: AtomicBool,
    /// The backend's task was woken through its registered waker.
    woken: AtomicBool,
    /// Times the future was dropped.
    drops: AtomicUsize,
}

impl Model {
    fn new() -> Self {
        Model {
            state: AtomicU8::new(0),
            run: UnsafeCell::new(true),
            shells: AtomicUsize::new(0),
            registered: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            drops: AtomicUsize::new(0),
        }
    }

    /// `AtomicWaker::register`: a read-modify-write, as the waker's own are.
    fn register(&self) {
        self.registered.swap(true, Ordering::AcqRel);
    }

    /// `AtomicWaker::wake`: wakes the registered waker, if any (a read-modify-write too).
    fn wake(&self) {
        if self.registered.fetch_or(false, Ordering::AcqRel) {
            self.woken.store(true, Ordering::Release);
        }
    }

    /// Drops the future and completes the task, `RUNNING` held.
    fn cancel(&self) {
        self.run.with_mut(|run| {
            // SAFETY: the caller holds `RUNNING`; loom checks that no one else is in here.
            let run = unsafe { &mut *run };
            if *run {
                *run = false;
                self.drops.fetch_add(1, Ordering::AcqRel);
                self.state.fetch_or(COMPLETE, Ordering::AcqRel);
            }
        });
    }

    /// `TaskRef::cancel_now` for a cell.
    fn cancel_now(&self) {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur & COMPLETE != 0 {
                return;
            }
            if cur & RUNNING != 0 {
                self.state.fetch_or(ABORTED, Ordering::AcqRel);
                self.wake();
                return;
            }
            match self.state.compare_exchange_weak(
                cur,
                cur | ABORTED | RUNNING | SHELL,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.shells.fetch_add(1, Ordering::AcqRel);
        self.cancel();
        self.state.fetch_and(!RUNNING, Ordering::AcqRel);
        self.wake();
    }

    /// The backend polls the wrapper: `Cell::drive`. True when it returned `Ready`: the
    /// backend's task is over, later wake-ups poll nothing. The future itself stays pending; the
    /// waker is registered only then (this may be the task's first poll).
    fn poll(&self) -> bool {
        let prev = self.state.fetch_or(RUNNING, Ordering::AcqRel);
        if prev & RUNNING != 0 {
            self.register();
            if self.state.load(Ordering::Acquire) & RUNNING == 0 {
                self.woken.store(true, Ordering::Release);
            }
            return false;
        }
        if prev & ABORTED != 0 {
            self.cancel();
        }
        // SAFETY: `RUNNING` held, as above.
        let ready = self.run.with(|run| unsafe { !*run });
        if !ready {
            self.register();
        }
        let after = self.state.fetch_and(!RUNNING, Ordering::AcqRel);
        if after & SHELL != 0 {
            self.shell_done();
        }
        if !ready && after & ABORTED != 0 {
            self.woken.store(true, Ordering::Release);
        }
        ready
    }

    /// The backend drops the wrapper: `Cell::release`.
    fn release(&self) {
        if self.state.load(Ordering::Acquire) & COMPLETE == 0
            && self.state.fetch_or(RUNNING, Ordering::AcqRel) & RUNNING == 0
        {
            self.cancel();
            self.state.fetch_and(!RUNNING, Ordering::AcqRel);
        }
        self.shell_done();
    }

    /// `Header::shell_done` and `Shared::shell_done`.
    fn shell_done(&self) {
        if self.state.load(Ordering::Acquire) & SHELL != 0
            && self.state.fetch_and(!SHELL, Ordering::AcqRel) & SHELL != 0
        {
            self.shells.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Once every party is done: the future was dropped exactly once, the task completed, and
    /// close's shell count is back to zero (close never waits forever, nor counts a shell twice).
    fn check(&self) {
        assert_eq!(self.drops.load(Ordering::Acquire), 1);
        assert_ne!(self.state.load(Ordering::Acquire) & COMPLETE, 0);
        assert_eq!(self.state.load(Ordering::Acquire) & RUNNING, 0);
        assert_eq!(self.shells.load(Ordering::Acquire), 0);
    }
}

/// Close cancels while the backend polls the task (a stale wake-up). A poll that returns
/// `Pending` has been woken (no lost wake-up), and the poll that follows ends the task.
#[test]
fn cancel_in_place_races_a_poll() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let backend = {
            let m = m.clone();
            thread::spawn(move || m.poll())
        };
        m.cancel_now();
        let finished = backend.join().unwrap();
        if !finished {
            assert!(
                m.woken.load(Ordering::Acquire),
                "a pending task was never woken"
            );
            assert!(m.poll());
        }
        m.check();
    });
}

/// Close cancels while the backend drops its task (a loop shutting down): the future is dropped
/// by one of them, and the drop is counted as the shell's when close got there first, also when
/// it skips `RUNNING` because the task is complete.
#[test]
fn cancel_in_place_races_a_drop() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let backend = {
            let m = m.clone();
            thread::spawn(move || m.release())
        };
        m.cancel_now();
        backend.join().unwrap();
        m.check();
    });
}

/// The backend polls a task that close finds running, then drops it: close's flag reaches the
/// poll or the drop, and the future is dropped once.
#[test]
fn cancel_in_place_races_a_poll_then_a_drop() {
    loom::model(|| {
        let m = Arc::new(Model::new());
        let backend = {
            let m = m.clone();
            thread::spawn(move || {
                if !m.poll() {
                    m.release();
                }
            })
        };
        m.cancel_now();
        backend.join().unwrap();
        m.check();
    });
}
