// N18 `test_no_repr_is_call_on_the_task_result`: `run` never formats its output; it does not even
// require `Debug` of it.
struct NoDebug(u8);

fn main() {
    let mut rt: runner::Runner = runner::Runner::new();
    let out = rt.run(async { NoDebug(7) }).unwrap();
    assert_eq!(out.0, 7);
    let out = runner::run(async { NoDebug(8) }).unwrap();
    assert_eq!(out.0, 8);
}
