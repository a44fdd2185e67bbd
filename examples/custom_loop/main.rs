//! Swapping the event loop, as Python users swap in uvloop with `loop_factory`: a small loop
//! written by hand over `async-task`, and a configured `TokioLoop::multi_thread(2)`, each handed
//! to `Builder::loop_factory`.
//!
//! ```text
//! cargo run --example custom_loop
//! ```

mod minimal_loop;

use std::time::Duration;

use minimal_loop::MiniLoop;

async fn work(label: &str) -> String {
    let tasks: Vec<_> = (1..=3u64)
        .map(|i| {
            runner::spawn(async move {
                runner::time::sleep(Duration::from_millis(5 * i)).await;
                i
            })
        })
        .collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.expect("task");
    }
    format!("{label}: sum of spawned tasks = {sum}")
}

fn main() -> Result<(), runner::RunError> {
    let mut mini = runner::builder().loop_factory(MiniLoop::new).build();
    println!("{}", mini.run(work("hand-written loop"))?);
    println!("{}", mini.close()?);

    #[cfg(feature = "tokio")]
    {
        let mut tokio = runner::builder()
            .loop_factory(|| runner::tokio::TokioLoop::multi_thread(2))
            .build();
        println!("{}", tokio.run(work("tokio multi_thread(2)"))?);
        println!("{}", tokio.close()?);
    }
    Ok(())
}
