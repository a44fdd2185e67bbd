//! "`AnyLoop` is `Send` unless the `glommio` feature is on; `Runner<AnyLoop>` follows." Checked
//! at compile time, as tokio's `tests/async_send_sync.rs` does.

#![allow(dead_code)]

fn require_send<T: Send>() {}
fn require_sync<T: Sync>() {}

#[cfg(not(all(feature = "glommio", target_os = "linux")))]
#[test]
fn any_loop_and_its_runner_are_send_without_glommio() {
    require_send::<runner::AnyLoop>();
    require_send::<runner::Runner<runner::AnyLoop>>();
}

#[test]
fn backend_is_a_plain_value() {
    require_send::<runner::Backend>();
    require_sync::<runner::Backend>();
    let b = runner::Backend::SmolMulti;
    let copy = b;
    assert_eq!(format!("{b}/{copy:?}"), "smol-multi/SmolMulti");
    assert_eq!(format!("[{b:>12}]"), "[  smol-multi]");
}
