//! Issue 3: "keep spawn to at most one allocation beyond the backend's own where you can."
//!
//! Counts the heap allocations made on the spawning thread by `runner::spawn` and by the raw
//! backend's spawn of the same future, on each backend. Today `runner::spawn` makes two beyond
//! the backend's: the task cell (an `Arc` shared by the join handle, the registry and the driver)
//! and the `Box` that the `Spawner` trait takes the driver future in. The test prints the figures
//! and fails on a regression (a third allocation).
//!
//! Its own binary: the counting allocator must not slow down or count the other tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter
// is a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from `System` through `alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const N: usize = 2_000;

/// Allocations per call of `spawn_one`, averaged over `N` calls (the registry's slab and the
/// backends' queues grow by doubling, which rounds away).
fn per_spawn(mut spawn_one: impl FnMut()) -> f64 {
    let before = ALLOCS.with(Cell::get);
    for _ in 0..N {
        spawn_one();
    }
    (ALLOCS.with(Cell::get) - before) as f64 / N as f64
}

fn check(name: &str, ours: f64, raw: f64) {
    eprintln!("{name}: runner::spawn {ours:.2} allocations, raw backend spawn {raw:.2}");
    let extra = ours - raw;
    assert!(
        extra < 2.5,
        "{name}: runner::spawn makes {extra:.2} allocations beyond the backend's"
    );
}

#[cfg(feature = "tokio")]
#[test]
fn tokio() {
    use runner::tokio::TokioLoop;
    for (name, make) in [
        ("tokio_current", TokioLoop::current_thread as fn() -> _),
        ("tokio_multi", || TokioLoop::multi_thread(1)),
    ] {
        let mut rt = runner::Runner::builder().loop_factory(make).build();
        let handle = rt.get_loop().unwrap().handle().clone();
        let (ours, raw) = rt
            .run(async move {
                // Warm up the registry and the queues.
                per_spawn(|| drop(runner::spawn(async {})));
                per_spawn(|| drop(handle.spawn(async {})));
                let ours = per_spawn(|| drop(runner::spawn(async {})));
                let raw = per_spawn(|| drop(handle.spawn(async {})));
                (ours, raw)
            })
            .unwrap();
        check(name, ours, raw);
    }
}

#[cfg(feature = "smol")]
#[test]
fn smol() {
    use runner::smol::SmolLoop;
    for (name, make) in [
        ("smol_local", SmolLoop::local as fn() -> _),
        ("smol_multi", || SmolLoop::multi_thread(1)),
    ] {
        let mut rt = runner::Runner::builder().loop_factory(make).build();
        let ex = rt.get_loop().unwrap().executor().clone();
        let (ours, raw) = rt
            .run(async move {
                per_spawn(|| drop(runner::spawn(async {})));
                per_spawn(|| ex.spawn(async {}).detach());
                let ours = per_spawn(|| drop(runner::spawn(async {})));
                let raw = per_spawn(|| ex.spawn(async {}).detach());
                (ours, raw)
            })
            .unwrap();
        check(name, ours, raw);
    }
}
