//! Compile-time checks of `run`: R3 and N5 (only futures are accepted), N18 (no `Debug` needed
//! of the output), and `JoinHandle`'s auto traits.

#[cfg(feature = "tokio")]
#[test]
fn run_accepts_only_futures_and_needs_no_debug() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/run/*.rs");
    t.pass("tests/ui/run_pass/*.rs");
}
