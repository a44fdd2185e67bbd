//! "A thousand create/run/close cycles leak no file descriptors on any backend." This file is
//! its own test binary, and its tests take one lock, so nothing else moves the fd count.

use std::sync::Mutex;

use runner_conformance::cases::lifecycle::many_cycles_leak_no_fds;
use runner_conformance::Kit;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_current() {
    let _g = serial();
    many_cycles_leak_no_fds(&Kit::new(
        "tokio_current",
        runner::tokio::TokioLoop::current_thread,
    ));
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_multi() {
    let _g = serial();
    many_cycles_leak_no_fds(&Kit::new("tokio_multi", || {
        runner::tokio::TokioLoop::multi_thread(2)
    }));
}

#[cfg(feature = "smol")]
#[test]
fn smol_local() {
    let _g = serial();
    many_cycles_leak_no_fds(&Kit::new("smol_local", runner::smol::SmolLoop::local));
}

#[cfg(feature = "smol")]
#[test]
fn smol_multi() {
    let _g = serial();
    many_cycles_leak_no_fds(&Kit::new("smol_multi", || {
        runner::smol::SmolLoop::multi_thread(2)
    }));
}

#[cfg(all(feature = "glommio", target_os = "linux"))]
#[test]
fn glommio() {
    let _g = serial();
    // On a thread of its own, joined under the lock: the thread's glommio executor closes its
    // io_uring descriptors when the thread exits, which must not happen while another test
    // measures.
    std::thread::spawn(|| {
        many_cycles_leak_no_fds(&Kit::new("glommio", runner::glommio::GlommioLoop::new))
    })
    .join()
    .unwrap();
}
