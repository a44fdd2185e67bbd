// N5 `test_run_non_coro`: `runner.run(123)` is an error; here it does not compile.
fn main() {
    let mut rt: runner::Runner = runner::Runner::new();
    let _ = rt.run(123);
}
