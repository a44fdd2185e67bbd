//! Graceful close: a shutdown grace, tasks that watch `runner::shutdown_requested()`, a bound on
//! blocking jobs, the exception handler, and the `CloseReport` that accounts for every task.
//!
//! Three workers notice the shutdown and flush within the grace (finished); a stubborn task
//! ignores it and is cancelled when the grace runs out, its destructor running on the loop; one
//! task panics while shutting down (reported to the handler, counted as panicked); a blocking job
//! that would take a minute is reported and left behind after `blocking_shutdown_timeout`, so
//! close still returns in about a second. (Rust's panic hook also prints the panic as it
//! happens, as it does for any panic.)
//!
//! ```text
//! cargo run --example graceful_shutdown
//! ```

use std::time::{Duration, Instant};

struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        println!("{}: cancelled, cleaning up", self.0);
    }
}

fn main() -> Result<(), runner::RunError> {
    let mut rt: runner::Runner = runner::builder()
        .shutdown_grace(Duration::from_millis(500))
        .blocking_shutdown_timeout(Duration::from_millis(200))
        .exception_handler(|d| eprintln!("exception handler: {d}"))
        .build();

    rt.run(async {
        for id in 0..3 {
            runner::task::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(async move {
                    runner::shutdown_requested().await;
                    runner::time::sleep(Duration::from_millis(50 * (id + 1))).await;
                    println!("worker-{id}: flushed and finished within the grace");
                });
        }
        runner::task::Builder::new().name("stubborn").spawn(async {
            let _cleanup = Cleanup("stubborn");
            runner::time::sleep(Duration::from_secs(3600)).await;
        });
        runner::task::Builder::new().name("fragile").spawn(async {
            runner::shutdown_requested().await;
            panic!("could not save state");
        });
        runner::task::Builder::new()
            .name("slow-io")
            .spawn_blocking(|| std::thread::sleep(Duration::from_secs(60)));
        runner::yield_now().await;
        println!("main: done, closing");
    })?;

    let start = Instant::now();
    let report = rt.close()?;
    println!("close took {:?}: {report}", start.elapsed());
    Ok(())
}
