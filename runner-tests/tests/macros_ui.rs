//! "Bad attribute arguments give a compile error that names the valid ones": each file under
//! `tests/ui/macros/` must fail to compile with the error in its `.stderr` beside it.
//!
//! Regenerate the expected output after a deliberate change of wording with
//! `TRYBUILD=overwrite cargo test --test macros_ui`.

#[test]
fn bad_arguments_name_the_valid_ones() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/macros/*.rs");
    // Naming a backend whose feature is off: only observable in a build without it.
    if !cfg!(feature = "smol") {
        t.compile_fail("tests/ui/macros_without_smol/*.rs");
    }
}
