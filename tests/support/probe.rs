//! Which backend flavour is running the caller: lets tests check that an attribute or an
//! `AnyLoop` picked the loop it was asked for, from the inside.

#[allow(unused_imports)]
use runner::EventLoop;

/// The `RUNNER_BACKEND` name of the loop running the calling future (`test-loop` when no backend
/// feature is on). Must be called inside a run.
pub(crate) fn current_backend() -> &'static str {
    let multi = runner::LoopHandle::current().is_multi_thread();
    #[cfg(feature = "tokio")]
    if <runner::tokio::TokioLoop as EventLoop>::is_nested() {
        return if multi { "tokio-multi" } else { "tokio" };
    }
    #[cfg(all(feature = "glommio", target_os = "linux"))]
    if <runner::glommio::GlommioLoop as EventLoop>::is_nested() {
        return "glommio";
    }
    if cfg!(feature = "smol") {
        return if multi { "smol-multi" } else { "smol" };
    }
    "test-loop"
}
