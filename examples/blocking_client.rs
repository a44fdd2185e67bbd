//! A blocking API over an async one, as `reqwest::blocking` wraps its async client with a tokio
//! runtime: the sync `Client` keeps one long-lived `Runner` (one loop, created on first use) and
//! runs each call on it, so background tasks and timers live across calls, and dropping the client
//! closes the loop and reports what was still running.
//!
//! ```text
//! cargo run --example blocking_client
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The async client a library would ship.
mod async_client {
    use super::*;

    #[derive(Clone, Default)]
    pub(crate) struct Client {
        pub(crate) requests: Arc<AtomicU64>,
    }

    impl Client {
        pub(crate) async fn get(&self, path: &str) -> Result<String, String> {
            runner::time::sleep(Duration::from_millis(2)).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            match path {
                "/missing" => Err(format!("404 for {path}")),
                _ => Ok(format!("200 OK for {path}")),
            }
        }

        /// A background keep-alive that lives as long as the loop: it shows why the blocking
        /// client keeps one runner instead of making one per call.
        pub(crate) async fn keep_alive(self) {
            loop {
                runner::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// The blocking facade over it: one runner for the client's whole life.
mod blocking {
    use super::async_client;
    use runner::{RunError, Runner};

    pub(crate) struct Client {
        inner: async_client::Client,
        rt: Runner<runner::DefaultLoop>,
    }

    #[derive(Debug)]
    pub(crate) enum Error {
        Request(String),
        Runtime(RunError),
    }

    impl From<RunError> for Error {
        fn from(e: RunError) -> Self {
            Error::Runtime(e)
        }
    }

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Error::Request(e) => write!(f, "request failed: {e}"),
                Error::Runtime(e) => write!(f, "runtime failed: {e}"),
            }
        }
    }

    impl Client {
        pub(crate) fn new() -> Result<Client, Error> {
            let inner = async_client::Client::default();
            let mut rt = runner::builder().build();
            // The background task is spawned once, into the client's loop, and lives across calls.
            let keep_alive = inner.clone().keep_alive();
            rt.run(async move { drop(runner::spawn(keep_alive)) })?;
            Ok(Client { inner, rt })
        }

        /// Blocks on the async `get`. Called from inside an async context, it returns
        /// `RunError::NestedRun` instead of deadlocking (reqwest::blocking panics there).
        pub(crate) fn get(&mut self, path: &str) -> Result<String, Error> {
            let inner = self.inner.clone();
            let path = path.to_owned();
            self.rt
                .run(async move { inner.get(&path).await })?
                .map_err(Error::Request)
        }

        pub(crate) fn requests(&self) -> u64 {
            self.inner
                .requests
                .load(std::sync::atomic::Ordering::Relaxed)
        }

        /// Closes the loop now, returning what the close did (dropping the client does the same
        /// silently).
        pub(crate) fn close(mut self) -> Result<runner::CloseReport, Error> {
            Ok(self.rt.close()?)
        }
    }
}

fn main() -> Result<(), blocking::Error> {
    let mut client = blocking::Client::new()?;
    println!("{}", client.get("/")?);
    println!("{}", client.get("/users")?);
    match client.get("/missing") {
        Err(blocking::Error::Request(e)) => println!("as expected: {e}"),
        other => panic!("expected a request error, got {other:?}"),
    }
    assert_eq!(client.requests(), 3);

    // Misuse from async code is an error, not a deadlock.
    let nested = runner::run(async move {
        let r = client.get("/");
        (r.is_err(), client)
    })
    .unwrap();
    let (was_err, client) = nested;
    assert!(was_err);
    println!("calling the blocking client inside a run: refused with NestedRun");

    let report = client.close()?;
    // The keep-alive task was still running: close cancelled it.
    assert_eq!(report.cancelled, 1);
    println!("closed: {report}");
    Ok(())
}
