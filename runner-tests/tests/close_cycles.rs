//! Issue 4: "1,000 cycles of create / spawn 100 pending tasks / close leave the fd count unchanged
//! and RSS growth under 16 MB on each backend." Both are process-wide measures, so this is its
//! own test binary with a single test: nothing else runs while it measures.

// Every test here is per backend: with none compiled in, there is nothing to run.
#![cfg(any(
    feature = "tokio",
    feature = "smol",
    all(feature = "glommio", target_os = "linux")
))]

use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use runner::EventLoop;
use runner_conformance::cases::lifecycle::open_fds;
use runner_conformance::Kit;

/// Resident set size in bytes, from `/proc/self/statm` (Linux; `None` elsewhere).
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: `sysconf` only reads a system constant; it has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * usize::try_from(page).ok()?)
}

struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// One cycle: a runner, 100 tasks left pending, close. Checks the report on the way, so a cycle
/// that leaked by not cancelling would fail here rather than only in the totals.
fn cycle<L: EventLoop>(kit: &Kit<L>, dropped: &Arc<AtomicUsize>) {
    let mut rt = kit.runner();
    let d = dropped.clone();
    rt.run(async move {
        for _ in 0..100 {
            let guard = Guard(d.clone());
            runner::spawn(async move {
                let _guard = guard;
                pending::<()>().await
            });
        }
        runner::yield_now().await;
    })
    .unwrap();
    let report = rt.close().unwrap();
    assert_eq!(report.cancelled, 100, "{}: {report}", kit.name());
}

const MB: usize = 1 << 20;

fn cycles_leak_nothing<L: EventLoop>(kit: Kit<L>) {
    let dropped = Arc::new(AtomicUsize::new(0));
    // Warm up: process-wide things made once (async-io's reactor thread, a thread's glommio
    // executor, blocking pools, allocator arenas) are not leaks.
    for _ in 0..20 {
        cycle(&kit, &dropped);
    }
    // A cycle may never park its loop (on a current-thread loop the runner polls its tasks
    // itself): one sleep makes whatever a parked loop makes once (async-io's reactor: an epoll,
    // an eventfd and a timerfd), so that a later park is not counted as a leak.
    let mut rt = kit.runner();
    rt.run(runner::time::sleep(std::time::Duration::from_millis(1)))
        .unwrap();
    rt.close().unwrap();
    let (Some(fds_before), Some(rss_before)) = (open_fds(), rss()) else {
        return;
    };
    for _ in 0..1_000 {
        cycle(&kit, &dropped);
    }
    let (fds_after, rss_after) = (open_fds().unwrap(), rss().unwrap());
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        1_020 * 100,
        "{}",
        kit.name()
    );
    assert_eq!(
        fds_after,
        fds_before,
        "{}: fds before {fds_before}, after 1,000 cycles {fds_after}",
        kit.name()
    );
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "{}: RSS {:.1} MB -> {:.1} MB after 1,000 cycles (growth {:.2} MB), fds {fds_after}",
        kit.name(),
        rss_before as f64 / MB as f64,
        rss_after as f64 / MB as f64,
        growth as f64 / MB as f64
    );
    assert!(
        growth < 16 * MB,
        "{}: RSS grew by {growth} bytes over 1,000 cycles",
        kit.name()
    );
}

/// One test, every backend in turn on this one thread: a glommio executor lives in a thread-local
/// and closes its io_uring descriptors when its thread exits, which, with a test per backend,
/// would happen while the next test measures.
#[test]
fn every_backend() {
    #[cfg(feature = "tokio")]
    {
        use runner::tokio::TokioLoop;
        cycles_leak_nothing(Kit::new("tokio_current", TokioLoop::current_thread));
        cycles_leak_nothing(Kit::new("tokio_multi", || TokioLoop::multi_thread(2)));
    }
    #[cfg(feature = "smol")]
    {
        use runner::smol::SmolLoop;
        cycles_leak_nothing(Kit::new("smol_local", SmolLoop::local));
        cycles_leak_nothing(Kit::new("smol_multi", || SmolLoop::multi_thread(2)));
    }
    #[cfg(all(feature = "glommio", target_os = "linux"))]
    cycles_leak_nothing(Kit::new("glommio", runner::glommio::GlommioLoop::new));
}
