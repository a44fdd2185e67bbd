//! Issue 13: "1,000 iterations per backend of close racing two threads of `LoopHandle` spawns,
//! aborts racing completion, tasks whose destructors spawn or panic; every accepted task counted
//! exactly once, every future dropped exactly once, no hang."
//!
//! Each backend runs on a thread of its own under a watchdog, so a hang fails with the backend's
//! name instead of stalling the suite.

use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use runner::EventLoop;
use runner_conformance::Kit;

const ITERATIONS: usize = 1_000;
/// The bound on one backend's whole run: a hang turns into a failure.
const HANG: Duration = Duration::from_secs(240);

/// Counts its drops; what it does when dropped depends on `kind`.
struct Probe {
    drops: Arc<AtomicUsize>,
    kind: Kind,
    /// Children spawned by destructors, accepted.
    children: Arc<AtomicUsize>,
}

#[derive(Clone, Copy)]
enum Kind {
    Plain,
    /// Spawns a pending task from its destructor (accepted only while the loop runs it).
    Spawns,
    /// Panics in its destructor.
    Panics,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        match self.kind {
            Kind::Plain => {}
            Kind::Spawns => {
                let child = Probe {
                    drops: self.drops.clone(),
                    kind: Kind::Plain,
                    children: self.children.clone(),
                };
                let children = self.children.clone();
                // The count goes up before the spawn can drop the child (on a refusal), so the
                // drops never run ahead of what is expected.
                children.fetch_add(1, Ordering::SeqCst);
                if runner::try_spawn(async move {
                    let _child = child;
                    pending::<()>().await
                })
                .is_err()
                {
                    // Refused: the child was dropped unpolled and is not the runner's task.
                    children.fetch_sub(1, Ordering::SeqCst);
                    self.drops.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Kind::Panics => {
                // Only when the loop drops it: a refused spawn drops it in the spawning thread.
                if !thread::panicking() && runner::LoopHandle::try_current().is_some() {
                    panic!("probe destructor");
                }
            }
        }
    }
}

/// One iteration: two threads spawn through `LoopHandle`s while close runs; a run aborts tasks
/// while they complete. Checks every count.
fn iteration<L: EventLoop>(kit: &Kit<L>, i: usize) {
    let mut rt = kit.builder().exception_handler(|_| {}).build();
    let handle = rt.handle().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let children = Arc::new(AtomicUsize::new(0));

    // Aborts racing completion, inside a run: each task ends once, finished or cancelled.
    let (d, c) = (drops.clone(), children.clone());
    let raced = rt
        .run(async move {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let probe = Probe {
                        drops: d.clone(),
                        kind: Kind::Plain,
                        children: c.clone(),
                    };
                    runner::spawn(async move {
                        let _probe = probe;
                        runner::yield_now().await;
                        1u8
                    })
                })
                .collect();
            // Aborted from a plain thread while the loop completes them.
            let aborter = thread::spawn(move || {
                for h in &handles {
                    h.abort();
                }
                handles
            });
            while !aborter.is_finished() {
                runner::yield_now().await;
            }
            let mut ended = 0;
            for h in aborter.join().unwrap() {
                match h.await {
                    Ok(v) => ended += usize::from(v),
                    Err(e) => {
                        assert!(e.is_cancelled(), "{e}");
                        ended += 1;
                    }
                }
            }
            ended
        })
        .unwrap();
    assert_eq!(raced, 8);
    assert_eq!(drops.load(Ordering::SeqCst), 8, "{}: {i}", kit.name());

    // Close racing two threads of handle spawns.
    let accepted = Arc::new(AtomicUsize::new(0));
    let expected_panics = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(3));
    let spawners: Vec<_> = (0..2)
        .map(|t| {
            let (h, a, p, s, b) = (
                handle.clone(),
                accepted.clone(),
                expected_panics.clone(),
                stop.clone(),
                start.clone(),
            );
            let (d, c) = (drops.clone(), children.clone());
            thread::spawn(move || {
                b.wait();
                let mut n = 0usize;
                while !s.load(Ordering::SeqCst) && n < 200 {
                    let kind = match (n + t) % 5 {
                        0 => Kind::Spawns,
                        1 => Kind::Panics,
                        _ => Kind::Plain,
                    };
                    let probe = Probe {
                        drops: d.clone(),
                        kind,
                        children: c.clone(),
                    };
                    match h.spawn(async move {
                        let _probe = probe;
                        pending::<()>().await
                    }) {
                        Ok(_) => {
                            a.fetch_add(1, Ordering::SeqCst);
                            if matches!(kind, Kind::Panics) {
                                p.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(_) => {
                            // Refused: dropped unpolled, not the runner's.
                            d.fetch_sub(1, Ordering::SeqCst);
                            break;
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();
    start.wait();
    // Let some spawns land first, on some iterations.
    if i % 2 == 0 {
        thread::yield_now();
    }
    let report = rt.close().unwrap();
    stop.store(true, Ordering::SeqCst);
    for s in spawners {
        s.join().unwrap();
    }
    let accepted = accepted.load(Ordering::SeqCst);
    let children = children.load(Ordering::SeqCst);
    assert_eq!(
        report.finished + report.cancelled + report.panicked,
        accepted + children,
        "{}: iteration {i}: {report}, {accepted} accepted, {children} children",
        kit.name()
    );
    assert_eq!(
        report.panicked,
        expected_panics.load(Ordering::SeqCst),
        "{}: iteration {i}: {report}",
        kit.name()
    );
    assert_eq!(
        drops.load(Ordering::SeqCst),
        8 + accepted + children,
        "{}: iteration {i}: every future dropped exactly once",
        kit.name()
    );
}

fn stress<L: EventLoop>(kit: Kit<L>) {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&"probe destructor") {
                hook(info);
            }
        }));
    });
    let (tx, rx) = mpsc::channel();
    let name = kit.name();
    let t = thread::spawn(move || {
        let started = Instant::now();
        for i in 0..ITERATIONS {
            iteration(&kit, i);
        }
        let _ = tx.send(started.elapsed());
    });
    match rx.recv_timeout(HANG) {
        Ok(took) => {
            t.join().unwrap();
            eprintln!("{name}: {ITERATIONS} iterations in {took:?}");
        }
        Err(_) => {
            if t.is_finished() {
                if let Err(p) = t.join() {
                    std::panic::resume_unwind(p);
                }
            }
            panic!("{name}: the stress test hung for {HANG:?}");
        }
    }
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_current() {
    stress(Kit::new(
        "tokio_current",
        runner::tokio::TokioLoop::current_thread,
    ));
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_multi() {
    stress(
        Kit::new("tokio_multi", || runner::tokio::TokioLoop::multi_thread(2)).multi_thread(true),
    );
}

#[cfg(feature = "smol")]
#[test]
fn smol_local() {
    stress(Kit::new("smol_local", runner::smol::SmolLoop::local));
}

#[cfg(feature = "smol")]
#[test]
fn smol_multi() {
    stress(Kit::new("smol_multi", || runner::smol::SmolLoop::multi_thread(2)).multi_thread(true));
}

#[cfg(all(feature = "glommio", target_os = "linux"))]
#[test]
fn glommio() {
    stress(Kit::new("glommio", runner::glommio::GlommioLoop::new).send(false));
}

#[test]
fn test_loop() {
    stress(Kit::new("test_loop", runner::testing::TestLoop::new));
}
