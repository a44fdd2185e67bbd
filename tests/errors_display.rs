//! The Display text of every error: lowercase, one line that carries its cause (tokio's
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
    assert_eq!(
        creation.to_string(),
        "the event loop could not be created: no io_uring"
    );
    // The cause is in the text, so a chain printer must not find it again in `source()`.
    assert!(creation.source().is_none());
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
    let mut rt = runner::Runner::<runner::testing::TestLoop>::default();
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

/// The cause of a failed loop factory reaches the user in one line: for `AnyLoop`, the valid
/// `RUNNER_BACKEND` values.
#[test]
fn loop_creation_display_carries_the_cause() {
    let mut rt = runner::Runner::builder()
        .loop_factory(|| runner::AnyLoop::new(runner::Backend::from_name("bad")?))
        .build();
    let err = rt.run(async {}).unwrap_err();
    assert!(matches!(err, RunError::LoopCreation(_)), "{err:?}");
    let text = err.to_string();
    let choices: Vec<&str> = runner::Backend::compiled().map(|b| b.name()).collect();
    let expected = if choices.is_empty() {
        "the event loop could not be created: RUNNER_BACKEND=\"bad\" is not a backend: none: this build of `runner` has no backend feature on (enable `tokio`, `smol` or `glommio`)".to_owned()
    } else {
        format!(
            "the event loop could not be created: RUNNER_BACKEND=\"bad\" is not a backend: choose one of {}, or leave it unset",
            choices.join(", ")
        )
    };
    assert_eq!(text, expected);
    assert!(!text.contains('\n'), "one line: {text}");
}
