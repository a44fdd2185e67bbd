#[runner::main(flavor = "multi")]
async fn main() {}
