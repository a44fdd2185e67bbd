//! The glommio backend of [`runner`](https://docs.rs/runner): [`GlommioLoop`] (Linux only; this
//! crate is empty elsewhere).
//!
//! # Design
//!
//! glommio 0.9 leaks an eventfd and about 0.8 MB with every `LocalExecutor` it drops
//! (DataDog/glommio#448), so a runner that made one executor per loop would leak on every
//! create/close cycle. A `GlommioLoop` therefore borrows **one executor per thread**, made on the
//! thread's first loop and reused by every later one; closing a loop cancels and drops its own
//! tasks (the runner does that on every backend) and leaves the executor for the next loop. Two
//! loops alive on one thread share the executor, so one's tasks also progress during the other's
//! runs; each close still touches only its own tasks.
//!
//! The executor is made with 512 KiB of registered I/O memory instead of glommio's default
//! 10 MiB, which is more than the default `RLIMIT_MEMLOCK` of many machines (8 MiB).
//!
//! Tasks spawned from other threads (through a `LoopHandle`) go into a queue that the loop drains
//! while it runs; glommio wakers may be woken from any thread, so the push wakes a parked loop.
//! Like the executor, that queue is one per thread, shared by the thread's loops: a task spawned
//! for one loop from another thread while a second loop of the thread runs starts in that run,
//! as the tasks the loops spawn on their own thread already do. What is left in it when the
//! thread's last loop goes is dropped then, on that thread.
//! `runner::time` uses async-io's timer here, because glommio's own timer is `!Send` and the
//! runner's timers must work inside `Send` tasks. Blocking jobs go to the `blocking` crate's pool:
//! glommio's `spawn_blocking` can only be called on the executor's thread.

#![forbid(unsafe_code)]

#[cfg(target_os = "linux")]
mod imp;

#[cfg(target_os = "linux")]
pub use imp::GlommioLoop;
