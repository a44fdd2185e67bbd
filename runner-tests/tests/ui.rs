//! The one compile-time suite (trybuild builds its cases in a target of its own, so one suite
//! builds the dependencies once):
//!
//! - "Bad attribute arguments give a compile error that names the valid ones": each file under
//!   `tests/ui/macros/` must fail to compile with the error in its `.stderr` beside it.
//! - `run`: R3 and N5 (only futures are accepted), N18 (no `Debug` needed of the output), and
//!   `JoinHandle`'s auto traits (`tests/ui/run/`).
//! - The spellings that must compile with no type annotation, as a user crate outside the
//!   workspace writes them: `Runner::new()`, `Runner::builder().loop_factory(..)`,
//!   `Runner::<SmolLoop>::default()` (`tests/ui/run_pass/`, `tests/ui/run_pass_smol/`).
//!
//! Regenerate the expected output after a deliberate change of wording with
//! `TRYBUILD=overwrite cargo test -p runner-tests --all-features --test ui`.

#[test]
fn compile_time_checks() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/macros/*.rs");
    // Naming a backend whose feature is off: only observable in a build without it.
    if !cfg!(feature = "smol") {
        t.compile_fail("tests/ui/macros_without_smol/*.rs");
    }
    if cfg!(feature = "tokio") {
        t.compile_fail("tests/ui/run/*.rs");
        t.pass("tests/ui/run_pass/*.rs");
    }
    if cfg!(feature = "smol") {
        t.pass("tests/ui/run_pass_smol/*.rs");
    }
}
