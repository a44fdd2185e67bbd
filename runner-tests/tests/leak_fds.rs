//! "A thousand create/run/close cycles leak no file descriptors on any backend." This file is
//! its own test binary, and its tests run one at a time, each on a thread of its own that is
//! joined before the next starts: a thread's glommio executor closes its descriptors when its
//! thread exits, which must not happen while another test is counting.

// Every test here is per backend: with none compiled in, there is nothing to run.
#![cfg(any(
    feature = "tokio",
    feature = "smol",
    all(feature = "glommio", target_os = "linux")
))]

use std::sync::Mutex;

use runner_conformance::cases::lifecycle::many_cycles_leak_no_fds;
use runner_conformance::Kit;

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `body` alone, on its own thread, and waits for that thread to be gone.
fn isolated(body: impl FnOnce() + Send + 'static) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(panic) = std::thread::spawn(body).join() {
        std::panic::resume_unwind(panic);
    }
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_current() {
    isolated(|| {
        many_cycles_leak_no_fds(&Kit::new(
            "tokio_current",
            runner::tokio::TokioLoop::current_thread,
        ))
    });
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_multi() {
    isolated(|| {
        many_cycles_leak_no_fds(&Kit::new("tokio_multi", || {
            runner::tokio::TokioLoop::multi_thread(2)
        }))
    });
}

#[cfg(feature = "smol")]
#[test]
fn smol_local() {
    isolated(|| many_cycles_leak_no_fds(&Kit::new("smol_local", runner::smol::SmolLoop::local)));
}

#[cfg(feature = "smol")]
#[test]
fn smol_multi() {
    isolated(|| {
        many_cycles_leak_no_fds(&Kit::new("smol_multi", || {
            runner::smol::SmolLoop::multi_thread(2)
        }))
    });
}

#[cfg(all(feature = "glommio", target_os = "linux"))]
#[test]
fn glommio() {
    isolated(|| many_cycles_leak_no_fds(&Kit::new("glommio", runner::glommio::GlommioLoop::new)));
}
