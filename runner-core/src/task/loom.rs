//! A loom model of close's in-place cancel against a poll, or a drop, of the backend's task: the
//! `run` lock, the state word's `ABORTED`/`SHELL`/`COMPLETE` bits and the runner's shell count, as
//! `TaskRef::cancel_now`, `Cell::drive` and `Cell::release` (harness.rs) and `Header::shell_done`
//! (cell.rs) use them.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p runner-core --lib --release task::loom
//! ```

use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use super::cell::{ABORTED, COMPLETE, SHELL};

struct Model {
    state: AtomicU8,
    /// The `run` lock, guarding whether the future is still there.
    run: Mutex<bool>,
    /// `Shared::shells`.
    shells: AtomicUsize,
    /// The backend's task was woken.
    woken: AtomicBool,
    /// Times the future was dropped.
    drops: AtomicUsize,
}

impl Model {
    /// `TaskRef::cancel_now` for a cell.
    fn cancel_now(&self) {
        self.state.fetch_or(ABORTED, Ordering::AcqRel);
        let mut run = match self.run.try_lock() {
            Ok(run) => run,
            Err(_) => {
                self.woken.store(true, Ordering::Release);
                return;
            }
        };
        if !*run {
            return;
        }
        self.shells.fetch_add(1, Ordering::AcqRel);
        self.state.fetch_or(SHELL, Ordering::AcqRel);
        *run = false;
        self.drops.fetch_add(1, Ordering::AcqRel);
        self.state.fetch_or(COMPLETE, Ordering::AcqRel);
        drop(run);
        self.woken.store(true, Ordering::Release);
    }

    /// The backend polls the wrapper: `Driver::poll`, then `Header::shell_done`. True when the
    /// wrapper returned `Ready`: the backend's task is over, later wake-ups poll nothing.
    fn poll(&self) -> bool {
        let mut run = self.run.lock().unwrap();
        if *run && self.state.load(Ordering::Acquire) & ABORTED != 0 {
            *run = false;
            self.drops.fetch_add(1, Ordering::AcqRel);
            self.state.fetch_or(COMPLETE, Ordering::AcqRel);
        }
        let ready = !*run;
        drop(run);
        self.shell_done();
        ready
    }

    /// The backend drops the wrapper: `Cell::release`. The lock is skipped once `COMPLETE` is
    /// set, which is set only after the future was dropped.
    fn release(&self) {
        if self.state.load(Ordering::Acquire) & COMPLETE == 0 {
            let mut run = self.run.lock().unwrap();
            if *run {
                *run = false;
                self.drops.fetch_add(1, Ordering::AcqRel);
                self.state.fetch_or(COMPLETE, Ordering::AcqRel);
            }
        }
        self.shell_done();
    }

    fn shell_done(&self) {
        if self.state.load(Ordering::Acquire) & SHELL != 0
            && self.state.fetch_and(!SHELL, Ordering::AcqRel) & SHELL != 0
        {
            self.shells.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Close cancels while the backend polls the task (a stale wake-up); the backend polls again
/// when woken. The future is dropped exactly once, the task completes, and close's shell count
/// comes back to zero (close never waits forever, and never counts a shell twice).
#[test]
fn cancel_in_place_races_a_poll() {
    loom::model(|| {
        let m = Arc::new(Model {
            state: AtomicU8::new(0),
            run: Mutex::new(true),
            shells: AtomicUsize::new(0),
            woken: AtomicBool::new(false),
            drops: AtomicUsize::new(0),
        });
        let backend = {
            let m = m.clone();
            thread::spawn(move || m.poll())
        };
        m.cancel_now();
        let finished = backend.join().unwrap();
        if !finished && m.woken.load(Ordering::Acquire) {
            assert!(m.poll());
        }
        assert_eq!(m.drops.load(Ordering::Acquire), 1);
        assert_ne!(m.state.load(Ordering::Acquire) & COMPLETE, 0);
        assert_eq!(m.shells.load(Ordering::Acquire), 0);
    });
}

/// Close cancels while the backend drops its task (a loop shutting down): the future is dropped
/// exactly once, by one of them, and close's shell count comes back to zero, also when the drop
/// skips the lock because the task is complete.
#[test]
fn cancel_in_place_races_a_drop() {
    loom::model(|| {
        let m = Arc::new(Model {
            state: AtomicU8::new(0),
            run: Mutex::new(true),
            shells: AtomicUsize::new(0),
            woken: AtomicBool::new(false),
            drops: AtomicUsize::new(0),
        });
        let backend = {
            let m = m.clone();
            thread::spawn(move || m.release())
        };
        m.cancel_now();
        backend.join().unwrap();
        assert_eq!(m.drops.load(Ordering::Acquire), 1);
        assert_ne!(m.state.load(Ordering::Acquire) & COMPLETE, 0);
        assert_eq!(m.shells.load(Ordering::Acquire), 0);
    });
}
