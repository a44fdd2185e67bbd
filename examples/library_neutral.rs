//! A library written once against `runner::spawn` and `runner::time`, with no executor named
//! anywhere in it, run unchanged on every backend flavour this build has.
//!
//! ```text
//! cargo run --example library_neutral --all-features
//! ```
//!
//! (`--all-features` adds smol and, on Linux, glommio to the default tokio.)

/// The "library": a retrying fetch with a deadline and a fan-out, executor-neutral.
mod crawler {
    use std::time::Duration;

    /// Pretends to fetch `url`: fails on its first attempt for odd ids, then answers.
    async fn fetch(id: u32, attempt: u32) -> Result<String, String> {
        runner::time::sleep(Duration::from_millis(u64::from(id % 3))).await;
        if id % 2 == 1 && attempt == 0 {
            Err(format!("page {id}: transient error"))
        } else {
            Ok(format!("page {id}"))
        }
    }

    /// Fetches with one retry and a per-attempt timeout.
    async fn fetch_with_retry(id: u32) -> Result<String, String> {
        let mut last = String::new();
        for attempt in 0..2 {
            match runner::time::timeout(Duration::from_secs(5), fetch(id, attempt)).await {
                Ok(Ok(page)) => return Ok(page),
                Ok(Err(e)) => last = e,
                Err(elapsed) => last = format!("page {id}: {elapsed}"),
            }
            runner::yield_now().await;
        }
        Err(last)
    }

    /// Fetches every page concurrently, one task each; returns them in order.
    pub(crate) async fn crawl(pages: u32) -> Vec<String> {
        let tasks: Vec<_> = (0..pages)
            .map(|id| runner::spawn(fetch_with_retry(id)))
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(
                task.await
                    .expect("no task panics")
                    .expect("one retry is enough"),
            );
        }
        out
    }
}

fn main() {
    let mut ran = 0;
    for backend in runner::Backend::compiled() {
        let mut rt = runner::Runner::builder()
            .loop_factory(move || runner::AnyLoop::with_workers(backend, 2))
            .build();
        let pages = rt.run(crawler::crawl(8)).expect("the run completes");
        assert_eq!(pages.len(), 8);
        assert_eq!(pages[7], "page 7");
        let report = rt.close().expect("close succeeds");
        println!(
            "{backend:<11} crawled {} pages; close: {report}",
            pages.len()
        );
        ran += 1;
    }
    assert!(ran > 0, "enable at least one backend feature");
}
