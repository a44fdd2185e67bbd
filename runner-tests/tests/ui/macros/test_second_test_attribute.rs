#[runner::test]
#[test]
async fn t() {}

fn main() {}
