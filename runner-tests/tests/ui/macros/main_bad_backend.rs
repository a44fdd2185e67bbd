#[runner::main(backend = "asyncio")]
async fn main() {}
