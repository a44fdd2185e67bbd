//! Which public types are `Send`, `Sync` and `'static`, per backend (tokio's
//! `tests/async_send_sync.rs`). A regression here is a breaking change.

#![allow(dead_code)]

use runner::{
    CloseReport, Context, ContextError, Diagnostic, JoinError, JoinHandle, LoopHandle, RunError,
    SpawnError, State,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn stat<T: 'static>() {}

fn error<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn runners_on_send_loops_are_send() {
    send::<runner::Runner<runner::testing::TestLoop>>();
    #[cfg(feature = "tokio")]
    send::<runner::Runner<runner::tokio::TokioLoop>>();
    #[cfg(feature = "smol")]
    send::<runner::Runner<runner::smol::SmolLoop>>();
}

#[test]
fn handles_are_send_and_sync() {
    send::<LoopHandle>();
    sync::<LoopHandle>();
    send::<JoinHandle<u8>>();
    sync::<JoinHandle<u8>>();
    stat::<JoinHandle<u8>>();
    send::<Context>();
    sync::<Context>();
    send::<CloseReport>();
    send::<State>();
    send::<Diagnostic>();
}

#[test]
fn errors_are_error_send_sync_static() {
    error::<RunError>();
    error::<SpawnError>();
    error::<ContextError>();
    error::<JoinError>();
    let e: Box<dyn std::error::Error + Send> = Box::new(cancelled_join_error());
    assert_eq!(e.to_string(), "task was cancelled");
}

fn cancelled_join_error() -> JoinError {
    let mut rt = runner::Runner::<runner::testing::TestLoop>::default();
    rt.run(async {
        let h = runner::spawn(std::future::pending::<()>());
        h.abort();
        h.await.unwrap_err()
    })
    .unwrap()
}
