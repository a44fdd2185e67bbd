//! The task the registry's tests and loom models register: enough of one to be cancelled and
//! counted, with the registry's own atomics (loom's under `--cfg loom`).

use std::panic::Location;
use std::sync::{Arc, Weak};
use std::time::Instant;

#[cfg(loom)]
use ::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{Entry, Outcome, Registry, TaskArc, TaskRef};
use crate::diagnostic::TaskInfo;
use crate::error::SpawnError;

/// A task whose cancellation ends it at once, as close's in-place cancel does for a task nobody
/// is polling; `end` stands for `Task::complete`, which the cell's state word makes run once per
/// task (modelled in `task::loom`). Registered with a borrowed entry (no count), it is held by a
/// [`Held`], which ends it before it lets go of its count: it always leaves the registry before
/// its allocation goes.
pub(super) struct Fake {
    info: TaskInfo,
    reg: Weak<Registry>,
    pub(super) key: AtomicUsize,
    pub(super) ended: AtomicBool,
    /// What `deregister` said: the task ended while the runner was closing.
    pub(super) counted: AtomicBool,
}

impl Fake {
    /// The task registered under `key` in `reg`.
    #[track_caller]
    pub(super) fn new(reg: &Arc<Registry>, key: usize) -> TaskArc<Fake> {
        TaskArc::new(Fake {
            info: TaskInfo {
                name: None,
                location: Location::caller(),
                main: false,
            },
            reg: Arc::downgrade(reg),
            key: AtomicUsize::new(key),
            ended: AtomicBool::new(false),
            counted: AtomicBool::new(false),
        })
    }

    /// Ends the task once: `deregister`'s answer (ended while closing), `None` when it had
    /// already ended or the registry is gone.
    pub(super) fn end(&self, outcome: Outcome) -> Option<bool> {
        if self.ended.swap(true, Ordering::AcqRel) {
            return None;
        }
        let reg = self.reg.upgrade()?;
        let closing = reg.deregister(self.key.load(Ordering::Acquire), outcome);
        self.counted.store(closing, Ordering::Release);
        Some(closing)
    }
}

/// What the backend holds of a registered [`Fake`]: its drop ends the task (cancelled, unless it
/// had ended) *before* it lets go of its count, as a backend's task does (`RawTask`'s drop calls
/// `Cell::release`), so that the task has left the registry before its last count can go. Other
/// counts ([`Held::arc`], as a join handle's) may outlive it or not.
pub(super) struct Held(TaskArc<Fake>);

impl Held {
    /// Another count of the task, which does not end it.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(super) fn arc(&self) -> TaskArc<Fake> {
        self.0.clone()
    }
}

impl std::ops::Deref for Held {
    type Target = Fake;

    fn deref(&self) -> &Fake {
        &self.0
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.end(Outcome::Cancelled);
    }
}

impl TaskRef for Fake {
    fn info(&self) -> TaskInfo {
        self.info.clone()
    }

    fn spawned_at(&self) -> Option<Instant> {
        None
    }

    fn abort(&self) {
        self.end(Outcome::Cancelled);
    }
}

/// `Shared::register` into `shard`: the task, held as the backend holds it, and whether it was
/// born cancelled.
pub(super) fn spawn_in(
    reg: &Arc<Registry>,
    shard: usize,
    from_loop: bool,
) -> Result<(Held, bool), SpawnError> {
    reg.register_in(shard, from_loop, |key, cancelled| {
        let task = Held(Fake::new(reg, key));
        // SAFETY: the `Held` returned ends the task before it lets go of its count, and nothing
        // between here and the caller can fail.
        (
            unsafe { Entry::borrowed(TaskArc::as_ptr(&task.0)) },
            (task, cancelled),
        )
    })
}

/// `Registry::register_here`: the task, registered on the loop's side of a current-thread loop's
/// registry, held as [`spawn_in`]'s are, and whether it was born cancelled. The calling thread
/// stands for the loop's: it alone may register and end tasks there and call close's methods.
pub(super) fn spawn_here(reg: &Arc<Registry>) -> Result<(Held, bool), SpawnError> {
    // SAFETY: the caller's thread is the loop's (see above). The `Held` returned ends the task
    // before it lets go of its count, on that thread (or by close's cancel there), and nothing
    // between here and the caller can fail.
    unsafe {
        reg.register_here(|key, cancelled| {
            let task = Held(Fake::new(reg, key));
            (Entry::borrowed(TaskArc::as_ptr(&task.0)), (task, cancelled))
        })
    }
}
