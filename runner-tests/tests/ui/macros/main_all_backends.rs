#[runner::main(all_backends)]
async fn main() {}
