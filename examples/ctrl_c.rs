//! Ctrl-C scoped to `run`, as Python's `asyncio.Runner` does it: the first Ctrl-C cancels the
//! main future (`run` returns `RunError::Interrupted`), or with `interrupt_grace` lets it see
//! `runner::interrupted()` and finish; once `run` has returned, Ctrl-C kills the process as
//! usual; a handler of your own, or a run off the main thread, is left alone.
//!
//! ```text
//! cargo run --example ctrl_c -- tokio busy        # then press Ctrl-C
//! cargo run --example ctrl_c --features smol,glommio -- <backend> <scenario>
//! ```
//!
//! `<backend>`: `tokio`, `tokio-multi`, `smol`, `smol-multi`, `glommio` (with its feature).
//! `<scenario>`:
//! - `busy`: a yield loop; Ctrl-C: `Interrupted`, its drop guard runs, exit code 130.
//! - `wait`: awaits something that never completes; Ctrl-C: `Interrupted`, the awaited thing
//!   is dropped, exit code 130.
//! - `grace`: 60 s of grace; the main future waits for `interrupted()` and returns a value,
//!   which is printed; exit code 0.
//! - `grace-twice`: 60 s of grace, the main future ignores the first Ctrl-C; a second one ends
//!   the run at once: `Interrupted`, exit code 130.
//! - `after-value`, `after-panic`, `after-interrupted`: a run that returned a value, panicked, or
//!   was interrupted (one Ctrl-C), then a Ctrl-C outside any run kills the process by SIGINT.
//! - `user-handler`: a SIGINT handler of the program's own, installed before any run; the run
//!   waits until that handler has seen Ctrl-C and returns normally; exit code 0.
//! - `user-handler-late`: the same, installed after a first run (so after the runner's own) and
//!   chaining to the previous handler, as signal-hook (and `tokio::signal`) do.
//! - `run-loop`: short runs back to back; a Ctrl-C lands in a run (`Interrupted`, exit code 130)
//!   or between two (the process is killed by SIGINT), and is never lost.
//! - `thread`: after a run on the main thread, a run with `Interrupt::Auto` on another thread
//!   does not intercept: Ctrl-C kills the process by SIGINT.
//! - `thread-always`: the same with `Interrupt::Always`: `Interrupted`, exit code 130.
//!
//! The example prints `READY` when it waits for a Ctrl-C (and `READY2` before a second one), so a
//! test driving it knows when to send the signal.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use runner::{EventLoop, Interrupt, RunError, Runner};

/// Prints when dropped: shows that a cancelled future's destructors ran.
struct DropGuard(&'static str);

impl Drop for DropGuard {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

/// A future that never completes, and says when it is dropped.
struct Never;

impl Future for Never {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for Never {
    fn drop(&mut self) {
        println!("awaited thing dropped");
    }
}

/// Exit code of a process ended by Ctrl-C, by the shells' convention (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;

fn report<T: std::fmt::Display>(out: Result<T, RunError>) -> i32 {
    match out {
        Ok(v) => {
            println!("run returned: {v}");
            0
        }
        Err(RunError::Interrupted) => {
            println!("run: interrupted");
            EXIT_INTERRUPTED
        }
        Err(e) => {
            println!("run failed: {e}");
            1
        }
    }
}

/// Blocks until a Ctrl-C kills the process (or a minute passes: then it exits 2).
fn wait_to_be_killed() -> i32 {
    println!("READY");
    std::thread::sleep(Duration::from_secs(60));
    println!("still alive");
    2
}

fn scenario<L, F>(make: F, name: &str) -> i32
where
    L: EventLoop,
    F: Fn() -> io::Result<L> + Send + Copy + 'static,
{
    let builder = || Runner::builder().loop_factory(make);
    match name {
        "busy" => {
            let mut rt = builder().build();
            report(rt.run(async {
                let _guard = DropGuard("drop guard ran");
                println!("READY");
                let mut spins: u64 = 0;
                loop {
                    runner::yield_now().await;
                    spins += 1;
                    if spins == u64::MAX {
                        break "never";
                    }
                }
            }))
        }
        "wait" => {
            let mut rt = builder().build();
            report(rt.run(async {
                let _guard = DropGuard("drop guard ran");
                println!("READY");
                Never.await;
                "never"
            }))
        }
        "grace" => {
            let mut rt = builder().interrupt_grace(Duration::from_secs(60)).build();
            report(rt.run(async {
                println!("READY");
                runner::interrupted().await;
                println!("main future saw interrupted()");
                // Some cleanup that takes a few loop turns and a timer.
                runner::time::sleep(Duration::from_millis(10)).await;
                "saved"
            }))
        }
        "grace-twice" => {
            let mut rt = builder().interrupt_grace(Duration::from_secs(60)).build();
            report(rt.run(async {
                let _guard = DropGuard("drop guard ran");
                println!("READY");
                runner::interrupted().await;
                println!("READY2");
                Never.await;
                "never"
            }))
        }
        "after-value" => {
            let mut rt = builder().build();
            report(rt.run(async { 1 }));
            wait_to_be_killed()
        }
        "after-panic" => {
            let mut rt = builder().build();
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.run(async { panic!("the main future panicked") })
            }));
            println!("run panicked: {}", caught.is_err());
            wait_to_be_killed()
        }
        "after-interrupted" => {
            let mut rt = builder().build();
            report(rt.run(async {
                println!("READY");
                Never.await;
                "never"
            }));
            println!("READY2");
            std::thread::sleep(Duration::from_secs(60));
            println!("still alive");
            2
        }
        "run-loop" => {
            let mut rt = builder().build();
            println!("READY");
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                if let Err(e) = rt.run(runner::yield_now()) {
                    return report::<&str>(Err(e));
                }
            }
            println!("still alive");
            2
        }
        "user-handler" => {
            user_handler::install(false);
            let mut rt = builder().build();
            report(rt.run(wait_for_user_handler()))
        }
        "user-handler-late" => {
            let mut rt = builder().build();
            report(rt.run(async { "first run" }));
            user_handler::install(true);
            report(rt.run(wait_for_user_handler()))
        }
        "thread" | "thread-always" => {
            let mut rt = builder().build();
            report(rt.run(async { "a run on the main thread" }));
            let interrupt = if name == "thread" {
                Interrupt::Auto
            } else {
                Interrupt::Always
            };
            let worker = std::thread::spawn(move || {
                let mut rt = Runner::builder()
                    .loop_factory(make)
                    .interrupt(interrupt)
                    .build();
                report(rt.run(async {
                    println!("READY");
                    Never.await;
                    "never"
                }))
            });
            worker.join().unwrap_or(1)
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            2
        }
    }
}

/// Waits (on timers, not by spinning) until the program's own handler saw a Ctrl-C.
async fn wait_for_user_handler() -> &'static str {
    println!("READY");
    while !user_handler::SEEN.load(Ordering::SeqCst) {
        runner::time::sleep(Duration::from_millis(5)).await;
    }
    "the program's own handler saw ctrl-c"
}

#[cfg(unix)]
mod user_handler {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    pub(super) static SEEN: AtomicBool = AtomicBool::new(false);
    /// The handler that was installed before ours, to chain to (signal-hook's habit).
    static PREVIOUS: AtomicUsize = AtomicUsize::new(0);

    extern "C" fn on_sigint(sig: libc::c_int) {
        SEEN.store(true, Ordering::SeqCst);
        let prev = PREVIOUS.load(Ordering::SeqCst);
        if prev != 0 && prev != libc::SIG_DFL && prev != libc::SIG_IGN {
            // SAFETY: `prev` is a plain `fn(c_int)` handler taken from `sigaction` (the runner's
            // handler does not use SA_SIGINFO).
            let prev: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
            prev(sig);
        }
    }

    /// Installs the program's own SIGINT handler; with `chain`, it calls the previous one too.
    pub(super) fn install(chain: bool) {
        // SAFETY: a zeroed `sigaction` is valid, every field we need is set; the handler only
        // touches atomics (and the previous handler, itself async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGINT, &sa, &mut old), 0);
            if chain {
                PREVIOUS.store(old.sa_sigaction, Ordering::SeqCst);
            }
            println!(
                "user handler installed (the previous one was {})",
                if old.sa_sigaction == libc::SIG_DFL {
                    "the default"
                } else {
                    "a handler"
                }
            );
        }
    }
}

#[cfg(not(unix))]
mod user_handler {
    use super::*;

    pub(super) static SEEN: AtomicBool = AtomicBool::new(false);

    pub(super) fn install(_chain: bool) {
        eprintln!("this scenario needs Unix signals");
        std::process::exit(2);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(backend), Some(name)) = (args.first(), args.get(1)) else {
        eprintln!("usage: ctrl_c <backend> <scenario> (see the example's docs)");
        std::process::exit(2);
    };
    let code = match backend.as_str() {
        #[cfg(feature = "tokio")]
        "tokio" => scenario(runner::tokio::TokioLoop::current_thread, name),
        #[cfg(feature = "tokio")]
        "tokio-multi" => scenario(|| runner::tokio::TokioLoop::multi_thread(2), name),
        #[cfg(feature = "smol")]
        "smol" => scenario(runner::smol::SmolLoop::local, name),
        #[cfg(feature = "smol")]
        "smol-multi" => scenario(|| runner::smol::SmolLoop::multi_thread(2), name),
        #[cfg(all(feature = "glommio", target_os = "linux"))]
        "glommio" => scenario(runner::glommio::GlommioLoop::new, name),
        other => {
            eprintln!("backend {other:?} is unknown or not compiled in (see --features)");
            2
        }
    };
    std::process::exit(code);
}
