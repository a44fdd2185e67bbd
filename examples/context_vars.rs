//! Context variables, Python's `contextvars`: a request id set in the main future is seen by the
//! tasks it spawns (each gets a copy of the context at spawn time), a task's own `set` never leaks
//! back, and one runner keeps one context across its runs.
//!
//! ```text
//! cargo run --example context_vars
//! ```

use runner::{Context, ContextVar};

static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");

async fn log(msg: &str) -> String {
    runner::yield_now().await;
    let line = format!("[request {:?}] {msg}", REQUEST_ID.get());
    println!("{line}");
    line
}

fn main() -> Result<(), runner::RunError> {
    let mut rt: runner::Runner = runner::Runner::new();

    rt.run(async {
        let token = REQUEST_ID.set(7);
        log("handling").await;

        // The task starts with a copy of the context as it is now: it sees 7...
        let task = runner::spawn(async {
            log("in a task").await;
            // ...and what it sets stays in its own copy.
            REQUEST_ID.set(99);
            log("task set 99").await;
        });
        task.await.unwrap();
        assert_eq!(
            REQUEST_ID.get(),
            Some(7),
            "the task's set did not leak back"
        );

        REQUEST_ID.reset(token).unwrap();
        assert_eq!(REQUEST_ID.get(), None);
        REQUEST_ID.set(1);
    })?;

    // Every run of one runner shares the runner's context (Python's `Runner.run`).
    let seen = rt.run(async { REQUEST_ID.get() })?;
    assert_eq!(seen, Some(1));
    println!("the next run sees {seen:?}");

    // An explicit context, as `Runner.run(coro, context=ctx)`: sets stay in `ctx`.
    let mut ctx = Context::new();
    rt.run_with_context(&mut ctx, async { REQUEST_ID.set(42) })?;
    assert_eq!(ctx.run(|| REQUEST_ID.get()), Some(42));
    assert_eq!(rt.run(async { REQUEST_ID.get() })?, Some(1));
    println!("an explicit context keeps its own value: 42");
    Ok(())
}
