//! The heavy suites of the `runner` workspace, in a package of their own so that building an
//! example or the README's test command does not build them: the conformance kit on every loop
//! (`tests/conformance_backends.rs`), the proptest models (`tests/lifecycle_model.rs`,
//! `tests/context_model.rs`), the one compile-fail suite (`tests/ui.rs`, trybuild), the leak
//! checks (`tests/leak_fds.rs`, `tests/close_cycles.rs`) and the criterion benches
//! (`benches/runner_vs_raw.rs`). Not published; nothing in this library.
//!
//! ```text
//! cargo test -p runner-tests --all-features
//! cargo bench -p runner-tests --all-features --bench runner_vs_raw
//! ```

#![forbid(unsafe_code)]
