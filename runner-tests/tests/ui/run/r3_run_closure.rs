// R3 `test_asyncio_run_only_coro`: `asyncio.run(lambda: None)` is an error; here it does not
// compile: a closure is not a future.
fn main() {
    let _ = runner::run(|| ());
}
