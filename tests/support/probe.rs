//! Which backend flavour is running the caller: lets tests check that an attribute or an
//! `AnyLoop` picked the loop it was asked for, from the inside.

#[allow(unused_imports)]
use runner::EventLoop;

/// The `RUNNER_BACKEND` name of the loop running the calling future (`test-loop` when no backend
/// feature is on). Must be called inside a run.
pub(crate) fn current_backend() -> &'static str {
    // Multi-thread flavours refuse `!Send` tasks: the contract's one observable difference.
    let multi = runner::try_spawn_local(async {}).is_err();
    #[cfg(feature = "tokio")]
    if <runner::tokio::TokioLoop as EventLoop>::is_nested() {
        // `spawn_local` does not tell tokio's flavours apart: only `TokioLoop::local` runs a
        // `LocalSet`.
        let flavor = tokio::runtime::Handle::current().runtime_flavor();
        return if flavor == tokio::runtime::RuntimeFlavor::MultiThread {
            "tokio-multi"
        } else {
            "tokio"
        };
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
