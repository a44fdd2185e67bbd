//! `#[runner::test]` and `#[runner::test(all_backends)]`: a test body runs on the chosen backend,
//! or once per backend flavour compiled in, and a failure names the backend it happened on.

#[path = "support/probe.rs"]
mod probe;

use std::cell::Cell;
use std::sync::Mutex;

thread_local! {
    /// Set while a checking test calls one of the `#[ignore]`d bodies below: the bodies do their
    /// part only then, so `cargo test -- --include-ignored` runs them as harmless no-ops. The
    /// main future is polled on the calling thread on every backend, so the flag is visible there.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

fn armed() -> bool {
    ARMED.with(Cell::get)
}

/// Calls `f` armed and returns its panic message, if it panicked.
fn panic_message(f: fn()) -> Option<String> {
    ARMED.with(|a| a.set(true));
    let caught = std::panic::catch_unwind(f);
    ARMED.with(|a| a.set(false));
    let payload = caught.err()?;
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}

#[runner::test]
async fn runs_on_the_default_backend() {
    let expected = runner::Backend::default_backend().map_or("test-loop", |b| b.name());
    assert_eq!(probe::current_backend(), expected);
}

#[runner::test]
async fn may_return_a_result() -> Result<(), std::io::Error> {
    runner::yield_now().await;
    Ok(())
}

#[runner::test]
#[should_panic(expected = "boom")]
async fn a_panicking_body_fails_the_test() {
    panic!("boom");
}

#[cfg(feature = "smol")]
#[runner::test(backend = "smol", flavor = "multi_thread")]
async fn honours_backend_and_flavor() {
    assert_eq!(probe::current_backend(), "smol-multi");
}

/// The backend each run of `records_its_backends` saw, in order.
static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

#[runner::test(all_backends)]
#[ignore = "called by `all_backends_runs_the_body_once_per_backend`, which checks what it saw"]
async fn records_its_backends() {
    if !armed() {
        return;
    }
    // Tasks and timers work on each flavour.
    let here = runner::spawn(async { probe::current_backend() });
    runner::time::sleep(std::time::Duration::from_millis(1)).await;
    let backend = here.await.unwrap();
    assert_eq!(backend, probe::current_backend());
    SEEN.lock().unwrap().push(backend);
}

#[test]
fn all_backends_runs_the_body_once_per_backend() {
    assert_eq!(panic_message(records_its_backends), None);
    let mut expected: Vec<&str> = runner::Backend::compiled().map(|b| b.name()).collect();
    if expected.is_empty() {
        expected.push("test-loop");
    }
    assert_eq!(*SEEN.lock().unwrap(), expected);
}

#[runner::test(all_backends)]
async fn all_backends_accepts_a_result() -> Result<(), String> {
    runner::yield_now().await;
    Ok(())
}

#[runner::test(all_backends)]
#[ignore = "called by `a_failure_names_its_backend`"]
async fn misbehaves_on_multi_thread_flavours() {
    // Stands for a library bug that shows only where tasks run on worker threads.
    if armed() && probe::current_backend().ends_with("-multi") {
        panic!("a bug that shows on multi-thread flavours only");
    }
}

#[runner::test(all_backends)]
#[ignore = "called by `an_error_names_its_backend`"]
async fn errs_on_smol() -> Result<(), String> {
    match probe::current_backend() {
        "smol" if armed() => Err("not on smol".to_owned()),
        _ => Ok(()),
    }
}

#[test]
fn a_failure_names_its_backend() {
    let multi: Vec<&str> = runner::Backend::compiled()
        .filter(|b| b.is_multi_thread())
        .map(|b| b.name())
        .collect();
    let Some(msg) = panic_message(misbehaves_on_multi_thread_flavours) else {
        assert!(
            multi.is_empty(),
            "the test passed although {multi:?} are compiled in"
        );
        return;
    };
    let total = runner::Backend::compiled().count();
    assert!(
        msg.starts_with(&format!(
            "#[runner::test(all_backends)] failed on {} of {total} backends",
            multi.len()
        )),
        "{msg}"
    );
    for b in runner::Backend::compiled() {
        let line = format!(
            "\n  {}: panicked: a bug that shows on multi-thread flavours only",
            b.name()
        );
        assert_eq!(msg.contains(&line), b.is_multi_thread(), "{b}: {msg}");
    }
}

#[test]
fn an_error_names_its_backend() {
    let msg = panic_message(errs_on_smol);
    if cfg!(feature = "smol") {
        let msg = msg.expect("the smol run returned Err");
        assert!(
            msg.ends_with("\n  smol: returned Err(\"not on smol\")"),
            "{msg}"
        );
        assert!(!msg.contains("smol-multi:"), "{msg}");
    } else {
        assert_eq!(msg, None);
    }
}
