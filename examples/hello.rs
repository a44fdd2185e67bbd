//! Hello World on the default backend: an async function run to completion, as
//! `asyncio.run(main())` does.
//!
//! ```text
//! cargo run --example hello
//! ```

async fn hello() {
    runner::yield_now().await;
    println!("Hello World");
}

fn main() -> Result<(), runner::RunError> {
    runner::run(hello())
}
