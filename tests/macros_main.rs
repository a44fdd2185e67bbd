//! `#[runner::main]`: the body runs on a new runner of the chosen backend and flavour, the
//! function returns its output (a value, `()` or a `Result`), and the runner is closed first.
//!
//! The attribute works on any `async fn`, not only `main`, which is what lets these tests call
//! the generated functions. Exit status 130 on Ctrl-C is in `macros_main_interrupt.rs`.

#[path = "support/probe.rs"]
mod probe;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[runner::main]
async fn default_backend() -> &'static str {
    runner::yield_now().await;
    probe::current_backend()
}

#[test]
fn runs_on_the_default_backend() {
    let expected = runner::Backend::default_backend().map_or("test-loop", |b| b.name());
    assert_eq!(default_backend(), expected);
}

#[runner::main]
async fn unit_body() {
    runner::yield_now().await;
}

#[test]
fn a_unit_body_returns_unit() {
    let () = unit_body();
}

#[runner::main]
async fn fallible(fail: bool) -> Result<u8, io::Error> {
    if fail {
        // `?` in the body converts as it does in the function the user wrote.
        Err(io::Error::other("nope"))?;
    }
    Ok(7)
}

#[test]
fn a_result_body_returns_its_result() {
    assert_eq!(fallible(false).unwrap(), 7);
    assert_eq!(fallible(true).unwrap_err().to_string(), "nope");
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[runner::main]
async fn leaves_a_task(dropped: Arc<AtomicBool>) -> bool {
    let guard = SetOnDrop(dropped.clone());
    let _detached = runner::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    runner::yield_now().await;
    dropped.load(Ordering::SeqCst)
}

#[test]
fn the_runner_is_closed_before_the_function_returns() {
    let dropped = Arc::new(AtomicBool::new(false));
    let seen_inside = leaves_a_task(dropped.clone());
    assert!(!seen_inside, "the task was alive during the run");
    assert!(
        dropped.load(Ordering::SeqCst),
        "close cancelled and dropped the leftover task before `leaves_a_task` returned"
    );
}

#[test]
#[should_panic(expected = "#[runner::main]: cannot be called from a running event loop")]
fn a_run_error_panics_with_its_text() {
    // Inside a run, the generated function's own run is a nested run.
    runner::run(async {
        default_backend();
    })
    .unwrap();
}

#[cfg(feature = "tokio")]
mod tokio_flavours {
    use super::probe;

    #[runner::main(backend = "tokio")]
    async fn current() -> &'static str {
        probe::current_backend()
    }

    #[runner::main(backend = "tokio", flavor = "multi_thread", workers = 3)]
    async fn multi() -> (&'static str, String, usize) {
        let thread = runner::spawn(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        (
            probe::current_backend(),
            thread.unwrap_or_default(),
            workers,
        )
    }

    #[runner::main(flavor = "multi_thread")]
    async fn default_multi() -> &'static str {
        probe::current_backend()
    }

    #[test]
    fn backend_and_flavor_are_honoured() {
        assert_eq!(current(), "tokio");
        let (backend, thread, workers) = multi();
        assert_eq!(backend, "tokio-multi");
        assert_eq!(workers, 3);
        assert_eq!(
            thread, "runner-tokio-worker",
            "spawned tasks run on the workers"
        );
        // tokio is the default backend whenever its feature is on.
        assert_eq!(default_multi(), "tokio-multi");
    }
}

#[cfg(feature = "smol")]
mod smol_flavours {
    use super::probe;

    #[runner::main(backend = "smol")]
    async fn local() -> &'static str {
        probe::current_backend()
    }

    #[runner::main(backend = "smol", flavor = "multi_thread", workers = 2)]
    async fn multi() -> &'static str {
        probe::current_backend()
    }

    #[test]
    fn backend_and_flavor_are_honoured() {
        assert_eq!(local(), "smol");
        assert_eq!(multi(), "smol-multi");
    }
}

#[cfg(all(feature = "glommio", target_os = "linux"))]
mod glommio_flavour {
    use super::probe;

    #[runner::main(backend = "glommio")]
    async fn on_glommio() -> &'static str {
        let local = runner::spawn_local(async { probe::current_backend() });
        local.await.unwrap()
    }

    #[test]
    fn backend_is_honoured() {
        assert_eq!(on_glommio(), "glommio");
    }
}
