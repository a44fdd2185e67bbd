#[runner::main(flavor = "multi_thread", workers = 0)]
async fn main() {}
