// R3 `test_asyncio_run_only_coro`: `asyncio.run(1)` is an error; here it does not compile.
fn main() {
    let _ = runner::run(1);
}
