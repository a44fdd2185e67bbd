#[runner::test(all_backends, flavor = "multi_thread")]
async fn t() {}

fn main() {}
