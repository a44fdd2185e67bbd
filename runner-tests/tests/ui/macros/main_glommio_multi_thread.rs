#[runner::main(backend = "glommio", flavor = "multi_thread")]
async fn main() {}
