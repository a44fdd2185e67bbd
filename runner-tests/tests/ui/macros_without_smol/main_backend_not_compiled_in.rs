// Compiled only by a build of `runner` without its `smol` feature.
#[runner::main(backend = "smol")]
async fn main() {}
