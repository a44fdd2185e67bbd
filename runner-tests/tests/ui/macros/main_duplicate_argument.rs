#[runner::main(backend = "tokio", backend = "tokio")]
async fn main() {}
