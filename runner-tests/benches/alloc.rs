//! Allocations per pending task: what `runner::spawn` costs in heap allocations and retained
//! bytes, next to the raw backend's own spawn of the same future, on every backend flavour.
//!
//! Not a criterion bench: allocation counts are exact, so one measurement is the figure.
//! `scripts/bench.py` runs it (`cargo bench --all-features --bench alloc`) and reads the lines it
//! prints (`ALLOC {json}`), which become rows of docs/PERFORMANCE.md.
//!
//! Counted on the spawning thread: the allocations (and reallocations) made while spawning `N`
//! tasks that stay pending, and the bytes those spawns leave allocated (allocated minus freed),
//! each divided by `N`. Queues and slabs that grow by doubling round away over `N` spawns; a
//! first round of `N` warms them up and is not counted. On the multi-thread flavours a worker
//! may poll a task on another thread: what it allocates there is not counted (a pending task
//! allocates nothing when polled).
//!
//! Each measurement yields once first, so that it runs inside the backend's `block_on`: where the
//! loop allows the inline first poll of the main future (`EventLoop::enter`), spawns made during
//! that poll are held back and handed to the backend only afterwards, so the backend's own
//! allocation would go uncounted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::pending;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(allocs: usize, bytes: isize) {
    let _ = ALLOCS.try_with(|a| a.set(a.get() + allocs));
    let _ = LIVE.try_with(|l| l.set(l.get() + bytes));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are const-initialised thread-local `Cell`s, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size() as isize);
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1, layout.size() as isize);
        // SAFETY: forwarded as is; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, -(layout.size() as isize));
        // SAFETY: forwarded as is; `ptr` came from `System` through the methods above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1, new_size as isize - layout.size() as isize);
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 4_000;

/// Allocations and retained bytes per call of `spawn_one`, averaged over `N` calls, after a
/// first uncounted round.
fn per_spawn(mut spawn_one: impl FnMut()) -> (f64, f64) {
    for _ in 0..N {
        spawn_one();
    }
    let (a0, l0) = (ALLOCS.with(Cell::get), LIVE.with(Cell::get));
    for _ in 0..N {
        spawn_one();
    }
    let (a1, l1) = (ALLOCS.with(Cell::get), LIVE.with(Cell::get));
    ((a1 - a0) as f64 / N as f64, (l1 - l0) as f64 / N as f64)
}

fn report(backend: &str, kind: &str, (allocs, bytes): (f64, f64)) {
    println!(
        "ALLOC {{\"op\": \"spawn_pending\", \"backend\": \"{backend}\", \"kind\": \"{kind}\", \
         \"allocs\": {allocs:.3}, \"bytes\": {bytes:.1}}}"
    );
}

fn tokio() {
    use runner::tokio::TokioLoop;
    for (name, make) in [
        ("tokio_current", TokioLoop::current_thread as fn() -> _),
        ("tokio_multi", || TokioLoop::multi_thread(2)),
    ] {
        let mut rt = runner::Runner::builder().loop_factory(make).build();
        let handle = rt.get_loop().unwrap().handle().clone();
        let (ours, raw) = rt
            .run(async move {
                runner::yield_now().await;
                let ours = per_spawn(|| drop(runner::spawn(pending::<()>())));
                let raw = per_spawn(|| drop(handle.spawn(pending::<()>())));
                (ours, raw)
            })
            .unwrap();
        report(name, "raw", raw);
        report(name, "runner", ours);
    }
}

fn smol() {
    use runner::smol::SmolLoop;
    for (name, make) in [
        ("smol_local", SmolLoop::local as fn() -> _),
        ("smol_multi", || SmolLoop::multi_thread(2)),
    ] {
        let mut rt = runner::Runner::builder().loop_factory(make).build();
        let ex = rt.get_loop().unwrap().executor().clone();
        let (ours, raw) = rt
            .run(async move {
                runner::yield_now().await;
                let ours = per_spawn(|| drop(runner::spawn(pending::<()>())));
                let raw = per_spawn(|| ex.spawn(pending::<()>()).detach());
                (ours, raw)
            })
            .unwrap();
        report(name, "raw", raw);
        report(name, "runner", ours);
    }
}

fn glommio() {
    use runner::glommio::GlommioLoop;
    let mut rt = runner::Runner::builder()
        .loop_factory(GlommioLoop::new)
        .build();
    let (ours, raw) = rt
        .run(async move {
            runner::yield_now().await;
            let ours = per_spawn(|| drop(runner::spawn(pending::<()>())));
            let raw = per_spawn(|| drop(glommio::spawn_local(pending::<()>()).detach()));
            (ours, raw)
        })
        .unwrap();
    report("glommio", "raw", raw);
    report("glommio", "runner", ours);
    // glommio's executor drops none of its tasks when it goes: the raw tasks stay parked.
}

fn main() {
    tokio();
    smol();
    glommio();
}
