//! An idle loop sleeps: while nothing is ready, [`block_on`](runner_core::EventLoop::block_on)
//! parks its thread instead of polling in a loop.

use std::time::Duration;

use runner_core::time::sleep;
use runner_core::EventLoop;

use crate::Kit;

/// How long the main future sleeps.
const SLEEP: Duration = Duration::from_millis(500);

/// The most CPU time the calling thread may use during [`SLEEP`]. Parked, a loop uses well under
/// a millisecond (timer bookkeeping, one wake-up); a loop that spins uses most of the 500 ms. The
/// bound is generous because tests share a loaded machine, where every wake-up is dearer.
const CPU_BOUND: Duration = Duration::from_millis(100);

/// "While `block_on` waits, the loop parks its thread until a task, a timer or a wake-up is
/// ready": a main future sleeping 500 ms costs the calling thread almost no CPU time (measured
/// with `getrusage(RUSAGE_THREAD)`), whether the sleep is in the main future or in a task it
/// awaits. The reference loop once spun here: the pending poll of its timer woke the loop.
///
/// Linux only (`RUSAGE_THREAD`: other tests run on other threads of the same process, so a
/// process-wide figure would count them); elsewhere the case returns at once.
pub fn sleeping_main_future_parks<L: EventLoop>(kit: &Kit<L>) {
    let Some(before) = thread_cpu_time() else {
        return;
    };
    let mut rt = kit.runner();
    // The loop's creation and first run (threads, reactors) are outside the measure.
    rt.run(async {}).unwrap();

    let before_main = thread_cpu_time().unwrap_or(before);
    rt.run(sleep(SLEEP)).unwrap();
    let in_main = thread_cpu_time().unwrap_or(before_main) - before_main;

    let before_task = thread_cpu_time().unwrap_or(before);
    rt.run(async { runner_core::spawn(sleep(SLEEP)).await.unwrap() })
        .unwrap();
    let in_task = thread_cpu_time().unwrap_or(before_task) - before_task;

    rt.close().unwrap();
    assert!(
        in_main < CPU_BOUND,
        "{}: the runner's thread used {in_main:?} of CPU time while the main future slept \
         {SLEEP:?} (bound {CPU_BOUND:?}): block_on must park while nothing is ready",
        kit.name()
    );
    assert!(
        in_task < CPU_BOUND,
        "{}: the runner's thread used {in_task:?} of CPU time while a task slept {SLEEP:?} \
         (bound {CPU_BOUND:?}): block_on must park while nothing is ready",
        kit.name()
    );
}

/// The CPU time (user and system) the calling thread has used; `None` where there is no
/// per-thread figure.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // getrusage: FFI with no std equivalent
fn thread_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid for writes of one `rusage`; RUSAGE_THREAD has no other
    // precondition.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: zeroed is a valid `rusage`, and the call above succeeded, so it is filled in.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}
