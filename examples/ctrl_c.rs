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
//! - `boundary`: rounds of two runs back to back: the first raises SIGINT on its own thread
//!   (so the signal certainly arrives during it) and returns after 0 to 225 µs of yields (the
//!   watcher thread's usual latency, so that it is sometimes in time, sometimes late); the
//!   second sleeps 20 ms.
//!   The Ctrl-C interrupts the first run, or, when it came too late for that, kills the process
//!   by SIGINT; it never interrupts the second (that prints `second run: interrupted`, exit
//!   code 3). After 50 rounds, exit code 0.
//! - `fork-exec`: a thread spawns this example (its `fds` mode) in a loop while the first run
//!   makes the loop and the Ctrl-C handler's descriptors; every child lists the descriptors it
//!   inherited. Prints `leaked: none` (exit code 0) or the leaked descriptors (exit code 1).
//! - `bench-runs <n>`, `bench-runs-never <n>`: `n` runs of a ready future (with
//!   `Interrupt::Auto`, or `Interrupt::Never`) and nothing else: what the signal module costs per
//!   run, measured with callgrind (the difference between two counts of runs, divided).
//!
//! `<backend>` may also be `test`: core's reference loop (`runner::testing::TestLoop`).
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
        "fork-exec" => fork_exec::scenario(builder().build()),
        "boundary" => {
            let mut rt = builder().build();
            let seed = std::process::id() as usize;
            for round in 0..50 {
                let linger = Duration::from_micros(((seed + round * 7) % 16) as u64 * 15);
                let first = rt.run(async {
                    raise_sigint();
                    let start = std::time::Instant::now();
                    while start.elapsed() < linger {
                        runner::yield_now().await;
                    }
                    "first"
                });
                match first {
                    Err(RunError::Interrupted) => println!("round {round}: first run interrupted"),
                    // Too late for the first run: the process is about to die by SIGINT.
                    Ok(_) => println!("round {round}: first run returned"),
                    Err(e) => return report::<&str>(Err(e)),
                }
                let second = rt.run(runner::time::sleep(Duration::from_millis(20)));
                if let Err(e) = second {
                    println!("round {round}: second run: {e}");
                    return 3;
                }
            }
            println!("rounds: 50");
            0
        }
        "bench-runs" | "bench-runs-never" => {
            let n: u64 = std::env::args()
                .nth(3)
                .and_then(|n| n.parse().ok())
                .unwrap_or(10_000);
            let interrupt = if name == "bench-runs" {
                Interrupt::Auto
            } else {
                Interrupt::Never
            };
            let mut rt = builder().interrupt(interrupt).build();
            // Lazy init (the loop, the handler's one-time check) stays outside the count.
            rt.run(async {}).unwrap_or_default();
            for _ in 0..n {
                if let Err(e) = rt.run(async {}) {
                    return report::<&str>(Err(e));
                }
            }
            println!("{n} runs");
            0
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            2
        }
    }
}

/// Sends SIGINT to the calling thread: its handler has run by the time this returns.
fn raise_sigint() {
    #[cfg(unix)]
    // SAFETY: plain FFI call with no preconditions.
    unsafe {
        libc::raise(libc::SIGINT);
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

/// Children forked and exec'd while the first run makes its descriptors inherit none of them.
#[cfg(unix)]
mod fork_exec {
    use super::*;
    use std::collections::BTreeSet;
    use std::process::Command;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Children spawned while the first run is under way, at least.
    const CHILDREN: usize = 20;

    /// The descriptors above stderr open in this process.
    pub(super) fn open_fds() -> BTreeSet<i32> {
        (3..1024)
            // SAFETY: F_GETFD on any number is harmless: it fails with EBADF when not open.
            .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
            .collect()
    }

    /// The `fds` mode: this process's descriptors above stderr, one line, before anything else
    /// opens one.
    pub(super) fn print_fds() -> ! {
        let fds: Vec<String> = open_fds().iter().map(i32::to_string).collect();
        println!("{}", fds.join(" "));
        std::process::exit(0);
    }

    pub(super) fn scenario<L: EventLoop>(mut rt: Runner<L>) -> i32 {
        // Whatever this process inherited (a jobserver's descriptors, say) its children inherit
        // too, rightly: only descriptors made from here on count.
        let inherited = open_fds();
        let exe = std::env::current_exe().expect("the example's path");
        let spawned = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let leaked = Arc::new(Mutex::new(BTreeSet::new()));
        let forker = {
            let (spawned, stop, leaked, inherited) = (
                spawned.clone(),
                stop.clone(),
                leaked.clone(),
                inherited.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let out = Command::new(&exe)
                        .arg("fds")
                        .output()
                        .expect("spawn the fds child");
                    let text = String::from_utf8_lossy(&out.stdout);
                    let fds = text
                        .split_whitespace()
                        .filter_map(|f| f.parse::<i32>().ok());
                    leaked
                        .lock()
                        .unwrap()
                        .extend(fds.filter(|fd| !inherited.contains(fd)));
                    spawned.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while spawned.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        // The first run: it makes the loop and installs the Ctrl-C handler (its socket pair and
        // thread) while the forker is busy, then lets it spawn some more.
        let before = spawned.load(Ordering::SeqCst);
        let out = rt.run(async {
            while spawned.load(Ordering::SeqCst) < before + CHILDREN && Instant::now() < deadline {
                runner::time::sleep(Duration::from_millis(1)).await;
            }
        });
        stop.store(true, Ordering::SeqCst);
        forker.join().expect("the forker thread");
        if let Err(e) = out {
            return report::<&str>(Err(e));
        }
        let made: Vec<i32> = open_fds().difference(&inherited).copied().collect();
        println!("children: {}", spawned.load(Ordering::SeqCst));
        println!("descriptors made: {made:?}");
        let leaked = leaked.lock().unwrap();
        if leaked.is_empty() {
            println!("leaked: none");
            0
        } else {
            println!("leaked: {leaked:?}");
            1
        }
    }
}

#[cfg(not(unix))]
mod fork_exec {
    use super::*;

    pub(super) fn print_fds() -> ! {
        std::process::exit(2);
    }

    pub(super) fn scenario<L: EventLoop>(_rt: Runner<L>) -> i32 {
        eprintln!("this scenario needs Unix");
        2
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
    if args.first().map(String::as_str) == Some("fds") {
        fork_exec::print_fds();
    }
    let (Some(backend), Some(name)) = (args.first(), args.get(1)) else {
        eprintln!("usage: ctrl_c <backend> <scenario> (see the example's docs)");
        std::process::exit(2);
    };
    let code = match backend.as_str() {
        "test" => scenario(runner::testing::TestLoop::new, name),
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
