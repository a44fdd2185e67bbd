#[runner::test(backends = "all")]
async fn t() {}

fn main() {}
