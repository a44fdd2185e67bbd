//! The Display text of every error: lowercase, one level, the cause in `source()` (tokio's
//! `tests/sync_errors.rs`).

use std::error::Error;
use std::io;

use runner::{ContextError, RunError, SpawnError};

#[test]
fn run_error_display() {
    assert_eq!(RunError::Closed.to_string(), "runner is closed");
    assert_eq!(
        RunError::NestedRun.to_string(),
        "cannot be called from a running event loop: a runner's loop (or a tokio runtime) is already running on this thread"
    );
    assert_eq!(
        RunError::Interrupted.to_string(),
        "run was interrupted by ctrl-c (SIGINT)"
    );
    let creation = RunError::LoopCreation(io::Error::other("no io_uring"));
    assert_eq!(creation.to_string(), "the event loop could not be created");
    assert_eq!(creation.source().unwrap().to_string(), "no io_uring");
    assert!(RunError::Closed.source().is_none());
    assert!(RunError::WrongThread.to_string().contains("spawn_local"));
}

#[test]
fn spawn_and_context_error_display() {
    assert!(SpawnError::NoRunner.to_string().contains("Runner::run"));
    assert_eq!(SpawnError::Closed.to_string(), "runner is closed");
    assert!(SpawnError::LocalUnsupported
        .to_string()
        .contains("spawn_local"));
    assert_eq!(
        ContextError::WrongVar.to_string(),
        "token was created by a different context variable"
    );
    assert_eq!(
        ContextError::WrongContext.to_string(),
        "token was created in a different context"
    );
}

#[test]
fn join_error_display() {
    let mut rt = runner::Runner::<runner::testing::TestLoop>::new();
    let (cancelled, panicked) = rt
        .run(async {
            let pending = runner::spawn(std::future::pending::<()>());
            pending.abort();
            let panics = runner::spawn(async { panic!("spam") });
            (pending.await.unwrap_err(), panics.await.unwrap_err())
        })
        .unwrap();
    assert!(cancelled.is_cancelled() && !cancelled.is_panic());
    assert_eq!(cancelled.to_string(), "task was cancelled");
    assert!(panicked.is_panic());
    assert_eq!(panicked.to_string(), "task panicked: spam");
    assert_eq!(panicked.into_panic().downcast_ref::<&str>(), Some(&"spam"));
}

#[test]
fn spawn_outside_a_run_panics_naming_the_fix() {
    let err = std::panic::catch_unwind(|| runner::spawn(async {})).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("Runner::run"), "{msg}");
    assert!(matches!(
        runner::try_spawn(async {}),
        Err(SpawnError::NoRunner)
    ));
}
