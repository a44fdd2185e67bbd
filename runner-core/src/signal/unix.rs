//! The Unix implementation: one SIGINT handler per process, a watcher thread, atomics per run.
//! The design and its edges are in the parent module's docs.

use std::cell::Cell;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use slab::Slab;

use super::Interruptible;
use crate::error::RunError;
use crate::lock::lock;

/// Whether our handler is SIGINT's disposition, as far as the runner knows.
const UNCHECKED: u8 = 0;
const OURS: u8 = 1;
const NOT_OURS: u8 = 2;
static HOOK: AtomicU8 = AtomicU8::new(UNCHECKED);
/// Serialises the one-time check and installation.
static INSTALL: Mutex<()> = Mutex::new(());

/// Whether a run intercepts Ctrl-C right now, with the next one: the handler's only question.
/// Only the main thread writes this one (runs on one thread never overlap: a nested run is
/// refused before it starts), so it takes plain stores, not read-modify-writes.
static MAIN_INTERCEPTING: AtomicBool = AtomicBool::new(false);
/// Intercepting runs on other threads (`Interrupt::Always`), which may overlap.
static OTHERS_INTERCEPTING: AtomicUsize = AtomicUsize::new(0);
/// The signal clock: how many Ctrl-Cs the handler has counted. The handler's increment is the
/// moment a Ctrl-C arrives; a run reads the clock when it starts intercepting, so the watcher,
/// however late, gives Ctrl-C number `s` only to runs that read at most `s` and are still the
/// runs it saw then, never to a later one. The socket's bytes only wake the watcher up.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// The write end of the watcher's socket pair, written by the handler.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The process that installed the handler: a forked child inherits the handler, not the watcher.
static OWNER: AtomicI32 = AtomicI32::new(0);
/// Every runner that ever intercepted and is still alive; an entry leaves when its
/// [`RunnerSignal`] drops.
static RUNNERS: Mutex<Slab<Weak<dyn Interruptible>>> = Mutex::new(Slab::new());

// A runner's word: bit 0 "a run intercepts", bits 1-2 how many Ctrl-Cs that run got (0, 1, 2+),
// the rest a generation number that tells one run from the next (for the grace deadline).
const RUNNING: usize = 1;
const HITS: usize = 0b110;
const HIT_SHIFT: u32 = 1;
const GEN_SHIFT: u32 = 3;

/// [`RunnerSignal::key`] before the runner's first intercepting run.
const NO_KEY: usize = usize::MAX;

/// A runner's part of the Ctrl-C state; lives in the runner's shared state.
pub(crate) struct RunnerSignal {
    state: AtomicUsize,
    /// [`SIGNALS`] when the run in progress started intercepting: Ctrl-Cs numbered from this on
    /// arrived during it. Written by the run's thread before its word says `RUNNING` (which
    /// publishes it), read by the watcher after.
    since: AtomicUsize,
    /// Held by the watcher from its decision about a run to the end of its effects, so the run's
    /// exit knows when they are all visible.
    dispatch: Mutex<()>,
    /// The runner's slot in `RUNNERS`, taken on its first intercepting run; [`NO_KEY`] until
    /// then. Written once, under `RUNNERS`'s lock (an atomic rather than a `OnceLock`, whose
    /// `set` costs a runner's first run some 80 instructions).
    key: AtomicUsize,
}

impl RunnerSignal {
    pub(crate) fn new() -> Self {
        RunnerSignal {
            state: AtomicUsize::new(0),
            since: AtomicUsize::new(0),
            dispatch: Mutex::new(()),
            key: AtomicUsize::new(NO_KEY),
        }
    }
}

impl Drop for RunnerSignal {
    fn drop(&mut self) {
        let key = *self.key.get_mut();
        if key != NO_KEY {
            // Never called under the `RUNNERS` lock: the watcher drops the runners it upgraded
            // after releasing it.
            lock(&RUNNERS).try_remove(key);
        }
    }
}

/// A run that intercepts; dropping it ends the interception.
pub(crate) struct Active<'a> {
    /// The runner's own state, for the path every run takes.
    sig: &'a RunnerSignal,
    shared: &'a dyn Interruptible,
    /// The runner's word with no run in progress: the generation of this run.
    idle: usize,
    main: bool,
}

thread_local! {
    /// 0: not asked yet, 1: this is the process's main thread, 2: it is not.
    static MAIN: Cell<u8> = const { Cell::new(0) };
}

/// True on the process's main thread (asked once per thread).
#[inline]
pub(crate) fn on_main_thread() -> bool {
    match MAIN.get() {
        1 => true,
        2 => false,
        _ => {
            let main = is_main_thread();
            MAIN.set(if main { 1 } else { 2 });
            main
        }
    }
}

#[cold]
fn is_main_thread() -> bool {
    cfg_main_thread()
}

#[cfg(target_os = "linux")]
fn cfg_main_thread() -> bool {
    // SAFETY: both calls have no preconditions; `syscall(SYS_gettid)` rather than `gettid()`,
    // which needs glibc 2.30.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t == libc::getpid() }
}

#[cfg(target_os = "android")]
fn cfg_main_thread() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() == libc::getpid() }
}

#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "openbsd"
))]
fn cfg_main_thread() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::pthread_main_np() == 1 }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "openbsd"
)))]
fn cfg_main_thread() -> bool {
    // No portable question: std names the thread that runs `main` "main".
    thread::current().name() == Some("main")
}

/// Starts intercepting for one run of `shared` on this thread (`main`: the process's main
/// thread); `None` when SIGINT is not ours to handle.
#[inline(always)]
pub(crate) fn enter<S: Interruptible>(shared: &Arc<S>, main: bool) -> Option<Active<'_>> {
    let ours = match HOOK.load(Ordering::Acquire) {
        OURS => true,
        UNCHECKED => install(),
        _ => false,
    };
    if !ours {
        return None;
    }
    let sig = shared.sigint();
    if sig.key.load(Ordering::Relaxed) == NO_KEY {
        register(shared);
    }
    // Only this run's thread changes the word while no run is in progress (the watcher only
    // touches a running word), so a load and a store suffice.
    let idle = (sig.state.load(Ordering::Relaxed) & !(RUNNING | HITS)).wrapping_add(1 << GEN_SHIFT);
    // The flag first, then the clock, then the word. A Ctrl-C counted before the clock read is
    // not this run's (it predates the run: the process dies of it, as by default); one counted
    // after is. Between the clock read and the word, a quick watcher finds no run and the
    // process dies, a slow one gives it to this run: both are "the run it arrived in, or none".
    if main {
        MAIN_INTERCEPTING.store(true, Ordering::Release);
    } else {
        OTHERS_INTERCEPTING.fetch_add(1, Ordering::AcqRel);
    }
    sig.since
        .store(SIGNALS.load(Ordering::SeqCst), Ordering::Relaxed);
    sig.state.store(idle | RUNNING, Ordering::Release);
    Some(Active {
        sig,
        shared: &**shared,
        idle,
        main,
    })
}

#[cold]
fn register<S: Interruptible>(shared: &Arc<S>) {
    let mut runners = lock(&RUNNERS);
    let sig = shared.sigint();
    if sig.key.load(Ordering::Relaxed) == NO_KEY {
        let weak: Weak<dyn Interruptible> = Arc::<S>::downgrade(shared);
        let key = runners.insert(weak);
        sig.key.store(key, Ordering::Relaxed);
    }
}

impl Active<'_> {
    /// Stops intercepting; true when the watcher counted a Ctrl-C for this run.
    #[inline]
    fn exit(&mut self) -> bool {
        if self.main {
            MAIN_INTERCEPTING.store(false, Ordering::Release);
        } else {
            OTHERS_INTERCEPTING.fetch_sub(1, Ordering::AcqRel);
        }
        // The one read-modify-write of a run: it tells, atomically, whether the watcher counted
        // a Ctrl-C for this run before the run stopped intercepting. A swap, not a `fetch_and`
        // (a compare-exchange loop on x86): while the run was in progress only the hit bits
        // could change.
        let old = self.sig.state.swap(self.idle, Ordering::AcqRel);
        old & HITS != 0 && after_interrupted_run(self.shared)
    }
}

impl Drop for Active<'_> {
    /// The run ended by an error or a panic: an `Interrupted` the main future did not see (it
    /// panicked first) stays pending and ends the runner's next run, rather than being lost.
    #[inline]
    fn drop(&mut self) {
        self.exit();
    }
}

/// The run's main future finished with a value: true when a Ctrl-C counted for the run came
/// too late for the future to see it, so the run must return `Interrupted` all the same (Python
/// loses the result the same way). Takes that pending `Interrupted`.
#[inline]
pub(crate) fn finish(mut active: Active<'_>) -> bool {
    let shared = active.shared;
    let hit = active.exit();
    std::mem::forget(active);
    if !hit {
        return false;
    }
    match shared.take_main_abort() {
        Some(RunError::Interrupted) => true,
        // Another error came first (abort_main keeps the first): it ends the next run.
        Some(other) => {
            shared.abort_main(other);
            false
        }
        None => false,
    }
}

/// After a run the watcher counted a Ctrl-C for; returns true.
#[cold]
fn after_interrupted_run(shared: &dyn Interruptible) -> bool {
    // The watcher holds this lock from its look at the word to its last effect on the run: once
    // we have it, every abort or fire it decided on has happened.
    drop(lock(&shared.sigint().dispatch));
    // `interrupted()` is per run: re-armed for the next one.
    shared.interrupted().reset();
    true
}

/// Checks SIGINT's disposition once per process and installs our handler if it is the default.
#[cold]
fn install() -> bool {
    let _g = lock(&INSTALL);
    match HOOK.load(Ordering::Acquire) {
        OURS => return true,
        NOT_OURS => return false,
        _ => {}
    }
    // An error (no thread, no socket) means: do not intercept, as on a platform without signals.
    let ours = try_install().unwrap_or(false);
    HOOK.store(if ours { OURS } else { NOT_OURS }, Ordering::Release);
    ours
}

fn try_install() -> io::Result<bool> {
    if current_handler()? != libc::SIG_DFL {
        return Ok(false);
    }
    // A socket pair rather than a pipe: std makes it close-on-exec atomically
    // (`socketpair(SOCK_CLOEXEC)`) where the platform can (Linux, Android, the BSDs; macOS has no
    // such flag and std sets it just after), so a `fork` + `exec` on another thread never
    // inherits it; `pipe2(O_CLOEXEC)` would need `unsafe` and is missing on macOS. The write end
    // is non-blocking: the handler must never block on a full buffer (a full buffer already
    // means a pending wake-up).
    let (read, write) = UnixStream::pair()?;
    write.set_nonblocking(true)?;
    // On an error both ends are closed (the closure that owns `read` is dropped).
    thread::Builder::new()
        .name("runner-sigint".into())
        .spawn(move || watch(read))?;
    // SAFETY: no preconditions.
    OWNER.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    // The write end lives for the rest of the process: the handler may write at any moment.
    WAKE_FD.store(write.into_raw_fd(), Ordering::Release);
    set_handler(on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t)?;
    Ok(true)
}

fn current_handler() -> io::Result<libc::sighandler_t> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is valid for writes.
    if unsafe { libc::sigaction(libc::SIGINT, ptr::null(), old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zeroed is a valid `sigaction`, and the kernel filled it in.
    Ok(unsafe { old.assume_init() }.sa_sigaction)
}

fn set_handler(handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: an all-zero `sigaction` is valid; every field we rely on is set below.
    let mut sa: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    sa.sa_sigaction = handler;
    // SA_RESTART: code interrupted by a Ctrl-C we handle must not see EINTR it would not have seen
    // without us. SA_ONSTACK: work on threads that run on an alternate signal stack.
    sa.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `sa` is a valid action, the handler is async-signal-safe (see `on_sigint`).
    let rc = unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether SIGINT's disposition is still our handler. Async-signal-safe (`sigaction` is on the
/// POSIX list).
fn installed_is_ours() -> bool {
    matches!(current_handler(), Ok(h) if h == on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t)
}

/// The default action, now: signal-hook puts `SIG_DFL` back, unblocks SIGINT and raises it, so
/// the process dies by SIGINT at once, in the handler or on the watcher thread alike (with
/// `abort` as its last resort). Async-signal-safe.
fn die_by_default() {
    let _ = signal_hook::low_level::emulate_default_handler(libc::SIGINT);
}

/// The handler. Async-signal-safe: atomics, `getpid`, `sigaction`, `write`, errno, and
/// signal-hook's `emulate_default_handler` (`sigaction`, `sigprocmask`, `raise`, `abort`).
extern "C" fn on_sigint(_: libc::c_int) {
    let _errno = ErrnoGuard::save();
    // SAFETY: no preconditions; async-signal-safe.
    let forked = unsafe { libc::getpid() } != OWNER.load(Ordering::Relaxed);
    // When another handler was installed over ours and chains to it (signal-hook does), that
    // handler is in charge: do nothing at all.
    if !installed_is_ours() {
        return;
    }
    if forked {
        die_by_default();
        return;
    }
    // The moment of arrival, as early as the handler can mark it: see `SIGNALS`.
    SIGNALS.fetch_add(1, Ordering::SeqCst);
    let intercepting =
        MAIN_INTERCEPTING.load(Ordering::SeqCst) || OTHERS_INTERCEPTING.load(Ordering::SeqCst) > 0;
    if !intercepting {
        // No run intercepts: behave as if we were not there. A flag read a moment stale means
        // the signal came just as a run began (the run had not read the clock yet, so the
        // Ctrl-C is not its own).
        die_by_default();
        return;
    }
    let byte = 1u8;
    // SAFETY: `WAKE_FD` is the socket pair's write end, never closed once published; it is
    // non-blocking, and a failed write (full buffer) still leaves a wake-up pending.
    unsafe {
        libc::write(
            WAKE_FD.load(Ordering::Acquire),
            ptr::addr_of!(byte).cast(),
            1,
        );
    }
}

/// Restores `errno` on drop: the handler must not change what the interrupted code sees (a
/// `write` to a full socket buffer sets it).
struct ErrnoGuard(errno::Errno);

impl ErrnoGuard {
    fn save() -> Self {
        ErrnoGuard(errno::errno())
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        errno::set_errno(self.0);
    }
}

/// A grace in progress: the run of generation `gen` is aborted at `at` unless it returned.
struct Grace {
    runner: Weak<dyn Interruptible>,
    gen: usize,
    at: Instant,
}

/// The watcher thread: waits for the handler's bytes and for grace deadlines.
fn watch(mut wake: UnixStream) {
    let mut graces: Vec<Grace> = Vec::new();
    // Ctrl-Cs dispatched so far, by the clock of `SIGNALS`: none. Not a read of the clock here,
    // which could miss a Ctrl-C counted before this thread first got to run.
    let mut dispatched = 0;
    let mut buf = [0u8; 64];
    loop {
        let timeout = graces
            .iter()
            .map(|g| g.at)
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()));
        // A deadline already past skips the read (a zero timeout is refused by `set_read_timeout`).
        if timeout != Some(Duration::ZERO) && wake.set_read_timeout(timeout).is_ok() {
            // Bytes, a timeout (`WouldBlock`/`TimedOut`) or EINTR: each just goes round. The
            // bytes only wake us; bytes left unread make the next read return at once.
            let _ = wake.read(&mut buf);
        }
        let counted = SIGNALS.load(Ordering::SeqCst);
        for signal in dispatched..counted {
            if !dispatch(signal, &mut graces) {
                // Every run that was intercepting when the signal came has returned since: the
                // Ctrl-C came "after the run", and is not lost (nor given to a later run).
                if installed_is_ours() {
                    die_by_default();
                }
            }
        }
        dispatched = counted;
        let now = Instant::now();
        graces.retain(|g| {
            if g.at <= now {
                expire(g);
                false
            } else {
                true
            }
        });
    }
}

/// Ctrl-C number `signal`: every run that was intercepting when it arrived, and still is,
/// counts it. False when there is none.
fn dispatch(signal: usize, graces: &mut Vec<Grace>) -> bool {
    // Upgraded under the lock, used and dropped after it: dropping the last reference to a
    // runner takes the lock again.
    let runners: Vec<Arc<dyn Interruptible>> = lock(&RUNNERS)
        .iter()
        .filter_map(|(_, w)| w.upgrade())
        .collect();
    let mut claimed = false;
    for shared in &runners {
        let sig = shared.sigint();
        let _g = lock(&sig.dispatch);
        let cur = sig.state.load(Ordering::Acquire);
        // The Relaxed `since` is the one this word's `RUNNING` published, or a later run's, which
        // the compare-exchange below then refuses (the word changed in between).
        if cur & RUNNING == 0 || sig.since.load(Ordering::Relaxed) > signal {
            // Not running, or a later run than the one the Ctrl-C arrived in.
            continue;
        }
        let hits = ((cur & HITS) >> HIT_SHIFT) + 1;
        let next = (cur & !HITS) | (hits.min(2) << HIT_SHIFT);
        if sig
            .state
            .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // The run returned meanwhile (only its own exit changes a running word).
            continue;
        }
        claimed = true;
        match shared.interrupt_grace() {
            Some(grace) if hits == 1 => {
                shared.interrupted().fire();
                graces.push(Grace {
                    runner: Arc::downgrade(shared),
                    gen: cur >> GEN_SHIFT,
                    at: Instant::now() + grace,
                });
            }
            _ => shared.abort_main(RunError::Interrupted),
        }
    }
    claimed
}

/// The end of a grace: aborts the run if it is the one that got the Ctrl-C and still running.
fn expire(g: &Grace) {
    let Some(shared) = g.runner.upgrade() else {
        return;
    };
    let sig = shared.sigint();
    let guard = lock(&sig.dispatch);
    let cur = sig.state.load(Ordering::Acquire);
    if cur & RUNNING != 0 && cur >> GEN_SHIFT == g.gen {
        shared.abort_main(RunError::Interrupted);
    }
    drop(guard);
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::*;
    use crate::testing::TestLoop;
    use crate::{Interrupt, Runner};

    /// The watcher's rule, with the test as the handler (it ticks the clock) and as the watcher
    /// (it dispatches): no `sigaction`, no thread, so it also runs under Miri.
    #[test]
    fn ctrl_c_goes_to_the_run_it_arrived_in_never_to_a_later_one() {
        // Runs intercept as if the handler were installed. Only `Always` runs (this test's)
        // intercept off the main thread, so the other tests are not affected.
        HOOK.store(OURS, Ordering::Release);
        let mut rt = Runner::<TestLoop>::builder()
            .interrupt(Interrupt::Always)
            .build();

        // Arrives during the run and is dispatched while it lasts: that run is interrupted.
        let out = rt.run(async {
            let signal = SIGNALS.fetch_add(1, Ordering::SeqCst);
            assert!(dispatch(signal, &mut Vec::new()), "the run it arrived in");
            pending::<()>().await
        });
        assert!(matches!(out, Err(RunError::Interrupted)), "{out:?}");

        // Arrives during a run that returns before the watcher gets to it...
        let late = rt.run(async { SIGNALS.fetch_add(1, Ordering::SeqCst) });
        let late = late.expect("dispatched after the run: the run returned its value");
        // ...and dispatched during the next run, it finds no run of its own (the process dies
        // by default): the next run is not interrupted.
        let next = rt.run(async move { dispatch(late, &mut Vec::new()) });
        assert_eq!(next.ok(), Some(false), "the next run must not count it");
        // Nor is the run after.
        assert_eq!(rt.run(async { 7 }).ok(), Some(7));
    }
}
