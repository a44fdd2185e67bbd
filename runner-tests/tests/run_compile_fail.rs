//! Compile-time checks of the public API: R3 and N5 (only futures are accepted), N18 (no `Debug`
//! needed of the output), `JoinHandle`'s auto traits, and the spellings that must compile with no
//! type annotation (`Runner::new()`, `Runner::builder().loop_factory(..)`,
//! `Runner::<SmolLoop>::default()`), as a user crate outside the workspace writes them.

#[cfg(feature = "tokio")]
#[test]
fn run_accepts_only_futures_and_needs_no_debug() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/run/*.rs");
    t.pass("tests/ui/run_pass/*.rs");
    if cfg!(feature = "smol") {
        t.pass("tests/ui/run_pass_smol/*.rs");
    }
}
