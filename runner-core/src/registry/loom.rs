//! A loom model of the registry's close handshake: spawns and completions on other threads
//! racing close's phase changes, its collection of the tasks to cancel, the seal, and the
//! drained wake-up. Unlike the cell's model (`task::loom`), it runs the registry's own code:
//! under `--cfg loom` the registry's shard locks, phase and counts are loom's.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p runner-core --lib --release registry::loom
//! ```

use std::future::poll_fn;
use std::sync::Arc;

use ::loom::sync::atomic::Ordering;
use ::loom::thread;

use super::fake::{spawn_here, spawn_in};
use super::{Outcome, Outcomes, Registry};
use crate::error::SpawnError;

/// `close::drive_close` after its grace: cancel what was alive, then wait for the registry to
/// drain and seal it. Returns how many tasks close cancelled.
fn close(reg: &Registry) -> usize {
    let pending = reg.begin_cancelling();
    for t in &pending {
        t.cancel_now(true, true);
    }
    ::loom::future::block_on(poll_fn(|cx| reg.poll_drained(cx, true)));
    pending.len()
}

fn total(o: Outcomes) -> usize {
    o.finished + o.cancelled + o.panicked
}

/// A `LoopHandle` spawn on another thread races close's move to `Cancelling`, its task pending
/// until cancelled. Either it is refused, or it is accepted before the move (not born
/// cancelled) and close finds and cancels it: close never waits forever for a task it missed,
/// and counts it exactly once.
#[test]
fn foreign_spawn_races_cancelling() {
    ::loom::model(|| {
        let reg = Arc::new(Registry::with_shards(2));
        reg.begin_grace();
        let spawner = {
            let reg = reg.clone();
            thread::spawn(move || spawn_in(&reg, 1, false).ok())
        };
        close(&reg);
        let spawned = spawner.join().unwrap();
        let outcomes = reg.outcomes();
        match spawned {
            Some((task, born_cancelled)) => {
                assert!(!born_cancelled, "a foreign spawn is never born cancelled");
                assert!(task.ended.load(Ordering::Acquire), "close missed the task");
                assert!(task.counted.load(Ordering::Acquire));
                assert_eq!(outcomes.cancelled, 1);
            }
            None => assert_eq!(outcomes, Outcomes::default()),
        }
        assert!(matches!(spawn_in(&reg, 0, true), Err(SpawnError::Closed)));
    });
}

/// A task alive when close begins finishes by itself on another thread while close cancels and
/// waits. It is ended once, counted exactly when its `deregister` said close was
/// under way, and close, waiting for it, is woken.
#[test]
fn completion_races_close() {
    ::loom::model(|| {
        let reg = Arc::new(Registry::with_shards(2));
        let (task, _) = spawn_in(&reg, 1, false).unwrap();
        reg.begin_grace();
        let worker = {
            let task = task.arc();
            thread::spawn(move || task.end(Outcome::Finished))
        };
        close(&reg);
        worker.join().unwrap();
        assert!(task.ended.load(Ordering::Acquire));
        // Close began before the task could end: its outcome is counted, whoever ended it.
        assert!(task.counted.load(Ordering::Acquire));
        assert_eq!(total(reg.outcomes()), 1);
    });
}

/// A task that was joined before close began is never counted by close.
#[test]
fn completion_before_close_is_not_counted() {
    ::loom::model(|| {
        let reg = Arc::new(Registry::with_shards(2));
        let (task, _) = spawn_in(&reg, 1, false).unwrap();
        let worker = {
            let task = task.arc();
            thread::spawn(move || task.end(Outcome::Finished))
        };
        // The join: close begins only after the task's output was seen.
        worker.join().unwrap();
        reg.begin_grace();
        close(&reg);
        assert!(!task.counted.load(Ordering::Acquire));
        assert_eq!(reg.outcomes(), Outcomes::default());
    });
}

/// While close seals, a task of the loop (a worker thread) spawns, born cancelled, and its
/// first poll ends it. Either the seal waits for it, and it is counted, or it is refused: no
/// task is accepted after the seal or left uncounted.
#[test]
fn loop_spawn_races_seal() {
    ::loom::model(|| {
        let reg = Arc::new(Registry::with_shards(2));
        reg.begin_grace();
        let pending = reg.begin_cancelling();
        assert!(pending.is_empty());
        let worker = {
            let reg = reg.clone();
            thread::spawn(move || match spawn_in(&reg, 1, true) {
                Ok((task, born_cancelled)) => {
                    assert!(
                        born_cancelled,
                        "a loop spawn while cancelling is born cancelled"
                    );
                    task.end(Outcome::Cancelled);
                    true
                }
                Err(SpawnError::Closed) => false,
                Err(e) => panic!("{e}"),
            })
        };
        ::loom::future::block_on(poll_fn(|cx| reg.poll_drained(cx, true)));
        // Read before the worker is joined: the seal alone must order its count before this.
        let outcomes = reg.outcomes();
        let accepted = worker.join().unwrap();
        assert_eq!(outcomes.cancelled, usize::from(accepted));
    });
}

/// Two tasks in two shards end on two threads while close waits for the registry to drain:
/// close is woken by whichever empties the registry last, never left waiting.
///
/// Three threads: bounded to three preemptions (all interleavings take minutes), as tokio
/// bounds its own models in CI.
#[test]
fn drained_wake_up_across_shards() {
    let mut model = ::loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let reg = Arc::new(Registry::with_shards(2));
        let (a, _) = spawn_in(&reg, 0, false).unwrap();
        let (b, _) = spawn_in(&reg, 1, false).unwrap();
        reg.begin_grace();
        let threads: Vec<_> = [a, b]
            .into_iter()
            .map(|t| thread::spawn(move || t.end(Outcome::Finished)))
            .collect();
        ::loom::future::block_on(poll_fn(|cx| reg.poll_drained(cx, false)));
        assert_eq!(reg.outcomes().finished, 2);
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// A task that ends and lets go of its last count on another thread (a backend dropping its
/// task) while close collects the tasks to cancel, its entry holding no count (`Entry::borrowed`):
/// close either finds it, under the shard's lock before it left, and holds a count of its own
/// while it cancels it, or does not find it. Never a count taken of a freed task (loom's `Arc`
/// panics on one), and the task is counted exactly once.
#[test]
fn end_and_free_race_collecting() {
    ::loom::model(|| {
        let reg = Arc::new(Registry::with_shards(2));
        let (task, _) = spawn_in(&reg, 1, false).unwrap();
        reg.begin_grace();
        let worker = thread::spawn(move || {
            task.end(Outcome::Finished);
            drop(task);
        });
        let collected = close(&reg);
        worker.join().unwrap();
        assert!(collected <= 1);
        assert_eq!(total(reg.outcomes()), 1);
    });
}

/// A task dropped on another thread without ending first, as a backend drops a task it never
/// polled: the drop ends it before it lets go (`Cell::release`), racing close's collection and
/// the seal. Counted once, cancelled by whichever of the two got there first.
#[test]
fn drop_without_end_races_close() {
    ::loom::model(|| {
        let reg = Arc::new(Registry::with_shards(2));
        let (task, _) = spawn_in(&reg, 0, false).unwrap();
        reg.begin_grace();
        let worker = thread::spawn(move || drop(task));
        close(&reg);
        worker.join().unwrap();
        assert_eq!(reg.outcomes().cancelled, 1);
        assert!(matches!(spawn_in(&reg, 0, true), Err(SpawnError::Closed)));
    });
}

/// A current-thread loop's registry: a `LoopHandle` spawn on another thread (the locked shard)
/// races close's move to `Cancelling`, made on the loop's thread, which has a task on the
/// registry's loop side (no lock) and spawns one more there after the move. The foreign spawn is
/// refused, or accepted before the move and found and cancelled by close; the loop side's tasks
/// are cancelled (the late one born so); close drains and seals, and counts each task once.
#[test]
fn foreign_spawn_races_cancelling_beside_the_loop_side() {
    ::loom::model(|| {
        let reg = Arc::new(Registry::new(false));
        let (mine, _) = spawn_here(&reg).unwrap();
        reg.begin_grace();
        let spawner = {
            let reg = reg.clone();
            thread::spawn(move || spawn_in(&reg, 0, false).ok())
        };
        let pending = reg.begin_cancelling();
        let (late, born_cancelled) = spawn_here(&reg).unwrap();
        assert!(
            born_cancelled,
            "a loop spawn while cancelling is born cancelled"
        );
        for t in &pending {
            t.cancel_now(true, false);
        }
        drop(pending);
        // Its first poll finds it cancelled.
        assert_eq!(late.end(Outcome::Cancelled), Some(true));
        ::loom::future::block_on(poll_fn(|cx| reg.poll_drained(cx, true)));
        let outcomes = reg.outcomes();
        assert!(mine.ended.load(Ordering::Acquire));
        let spawned = spawner.join().unwrap();
        match &spawned {
            Some((task, born_cancelled)) => {
                assert!(!born_cancelled, "a foreign spawn is never born cancelled");
                assert!(task.ended.load(Ordering::Acquire), "close missed the task");
                assert!(task.counted.load(Ordering::Acquire));
                assert_eq!(outcomes.cancelled, 3);
            }
            None => assert_eq!(outcomes.cancelled, 2),
        }
        assert_eq!(total(outcomes), outcomes.cancelled);
        assert!(matches!(spawn_here(&reg), Err(SpawnError::Closed)));
        assert!(matches!(spawn_in(&reg, 0, true), Err(SpawnError::Closed)));
    });
}
