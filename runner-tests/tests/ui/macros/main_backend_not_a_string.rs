#[runner::main(backend = smol)]
async fn main() {}
